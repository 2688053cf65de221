/*
 * identity.c - whose privilege a request of the serving side uses.
 *
 * Operations run with the daemon's credentials (all_squash).
 * A daemon that runs as root lends none of that privilege to other
 * peers (owner other than 0): it makes no device nodes, clears the
 * set-ID bits of the modes they ask for, gives files to no other owner
 * or group, and sets no trusted.* or security.* attribute for them.
 * Requests of this daemon's own mount are the local kernel's to check.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "export-int.h"
#include "log.h"

/*
 * Whether requests of other peers may use this daemon's privilege:
 * never in this version.  `[security] identity = caller`, which runs
 * each request with the caller's own credentials, is to answer here.
 */
static bool
identity_lends_privilege(void)
{
	return false;
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
