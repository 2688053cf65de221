/*
 * identity.c - whose privilege a request of the serving side uses, and
 * whose credentials a request of our mount carries.
 *
 * With `identity = daemon`, operations run with the daemon's credentials
 * (all_squash).  A daemon that runs as root lends none of that privilege
 * to other peers (owner other than 0): it makes no device nodes, clears
 * the set-ID bits of the modes they ask for, gives files to no other
 * owner or group, and sets no trusted.* or security.* attribute for
 * them.  Requests of this daemon's own mount are the local kernel's to
 * check.
 *
 * With `identity = caller`, each request that acts on files (those of
 * proto_type_cred()) runs on its worker thread as the caller it names,
 * ours or another peer's: its uid and gid as the thread's fs uid and
 * gid, its groups, and no capability unless it is root (kept only with
 * `root_squash = no`; else root is nobody, as NFS squashes it).  The
 * holder's kernel then checks and owns everything as on one machine, so
 * none of the limits above apply to it.  A request of such a type that
 * names no caller (a peer with `identity = daemon`, or of an older
 * version) runs as nobody.  Looking (STAT, READDIR) and I/O through a
 * handle keep the daemon's credentials: the mount's kernel checks those
 * with the attributes it is given, as it always did.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "export-int.h"
#include "log.h"
#include "worker.h"

/* Who a squashed root, or a request that names no caller, acts as. */
#define IDENTITY_NOBODY 65534

/* Whether the request this thread serves runs as its caller. */
static __thread bool identity_as_caller;

/* Whether a refusal to switch was logged (once: the workers cannot rate). */
static atomic_bool identity_warned;

/*
 * Whether the daemon's privilege is out of the way of the request being
 * served: it runs as its caller, whose own rights the kernel checks.
 */
static bool
identity_lends_privilege(void)
{
	return identity_as_caller;
}

/* A group id as root_squash leaves it: the root group is nobody's. */
static uint32_t
identity_squash_gid(uint32_t gid)
{
	return gid == 0 && export_context.root_squash ? IDENTITY_NOBODY : gid;
}

/*
 * Before serving r: with identity = caller and a type that acts on
 * files, take on its caller's credentials (nobody without one; root
 * squashed unless root_squash = no).  0, or -EPERM if the kernel would
 * not let us (then nothing is served and nothing changed).
 */
int
identity_enter(const struct proto_req *r)
{
	const struct proto_cred *c = &r->cred;
	uint32_t groups[PROTO_MAX_GROUPS], n = 0, uid, gid;

	if (!export_context.identity_caller || !proto_type_cred(r->type))
		return 0;
	if (!c->set || (c->uid == 0 && export_context.root_squash)) {
		uid = gid = IDENTITY_NOBODY;
	} else {
		uid = c->uid;
		gid = identity_squash_gid(c->gid);
		for (n = 0; n < c->ngroups && n < PROTO_MAX_GROUPS; n++)
			groups[n] = identity_squash_gid(c->groups[n]);
	}
	if (worker_become(uid, gid, groups, n, uid == 0) < 0) {
		if (!atomic_exchange(&identity_warned, true))
			log_warnx("identity: cannot act as uid %u gid %u (the "
				  "daemon needs CAP_SETUID and CAP_SETGID): "
				  "requests refused with EPERM",
			    uid, gid);
		return -EPERM;
	}
	identity_as_caller = true;
	return 0;
}

/* After serving: the daemon's own credentials again, if they were left. */
void
identity_leave(void)
{
	if (!identity_as_caller)
		return;
	worker_restore();
	identity_as_caller = false;
}

/*
 * The supplementary groups of process pid, as fuse_req_getgroups(3)
 * reads them (the Groups line of its status in /proc), up to max of
 * them into groups.  Their number (more than max if there are more), or
 * -1 if the process is gone.
 */
int
identity_groups(uint32_t pid, uint32_t *groups, uint32_t max)
{
	char path[64], line[8192], *p, *end;
	unsigned long g;
	int n = -1;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%u/task/%u/status", pid, pid);
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	while (n < 0 && fgets(line, sizeof line, f) != NULL) {
		if (strncmp(line, "Groups:", 7) != 0)
			continue;
		n = 0;
		for (p = line + 7;; p = end) {
			errno = 0;
			g = strtoul(p, &end, 10);
			if (end == p || errno != 0 || g > UINT32_MAX)
				break;
			if ((uint32_t)n < max)
				groups[n] = (uint32_t)g;
			n++;
		}
	}
	fclose(f);
	return n;
}

/* Whether owner is another peer, kept from what privilege allows. */
bool
identity_peer_limited(uint32_t owner)
{
	return owner != 0 && !identity_lends_privilege();
}

/* Whether owner is another peer and the daemon's privilege is root's. */
bool
identity_guarded(uint32_t owner)
{
	return identity_peer_limited(owner) && geteuid() == 0;
}

/* The permission bits owner asks for, set-ID bits dropped if guarded. */
mode_t
identity_mode(uint32_t owner, uint32_t mode)
{
	mode &= 07777;
	if (identity_guarded(owner))
		mode &= ~(uint32_t)(S_ISUID | S_ISGID);
	return (mode_t)mode;
}

/*
 * Whether owner may give a file to uid and gid ((uid_t)-1, (gid_t)-1:
 * unchanged): a guarded peer only to the daemon's own user, and to its
 * group or one of its supplementary groups, as an unprivileged owner.
 */
bool
identity_chown_ok(uint32_t owner, uid_t uid, gid_t gid)
{
	gid_t *groups;
	int n;
	bool ok;

	if (!identity_guarded(owner))
		return true;
	if (uid != (uid_t)-1 && uid != geteuid())
		return false;
	if (gid == (gid_t)-1 || gid == getegid())
		return true;
	if ((n = getgroups(0, NULL)) <= 0)
		return false;
	groups = xcalloc((size_t)n, sizeof *groups);
	n = getgroups(n, groups);
	ok = false;
	for (int i = 0; i < n && !ok; i++)
		ok = groups[i] == gid;
	free(groups);
	return ok;
}

/* Whether setting an xattr name takes privilege: trusted.*, security.*. */
bool
identity_xattr_privileged(const char *name)
{
	return strncmp(name, "trusted.", 8) == 0 ||
	    strncmp(name, "security.", 9) == 0;
}
