/*
 * export.c - the local export backend.
 *
 * Every request names an object by (export, path relative to the export
 * root).  Paths are resolved with openat2(2) from the export's root fd
 * with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS, so
 * neither "..", nor a symbolic link, nor a directory swapped for a link
 * in a race can lead outside the export: the kernel refuses the walk.
 * Operations that create or remove a name resolve the parent that way and
 * then act on a single component with the *at() calls, never following a
 * link in the last component.  Symbolic links are stored and returned
 * verbatim and never followed here.
 *
 * This code runs on worker threads: it touches only its arguments, its
 * context (export_init(), read-only after), the handle table (under its
 * own lock), the journal and the watcher (each under its own).
 *
 * Identity: operations run with the daemon's credentials (all_squash).
 * A daemon that runs as root lends none of that privilege to other
 * peers (owner other than 0): it makes no device nodes, clears the
 * set-ID bits of the modes they ask for, gives files to no other owner
 * or group, and sets no trusted.* or security.* attribute for them.
 * Requests of this daemon's own mount are the local kernel's to check.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "config.h"
#include "export.h"
#include "journal.h"
#include "log.h"
#include "watch.h"

#define EXPORT_RESOLVE \
	(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)

/* What the serving side was given; set before the first request. */
static struct export_ctx ctx;

/*
 * Open file handles.  A handle is (generation << 32 | slot + 1) so a
 * stale or forged handle never reaches another file's descriptor.  A
 * handle is bound to the owner (stream) that opened it and to its
 * export: any other use is EBADF, so one peer cannot use another's
 * handles, nor a handle of a read-only export under a writable
 * export's id.  A handle in use by a request holds a reference; release
 * only marks it and the descriptor is closed when the last user is
 * done, so a peer that releases while reading cannot make us use a
 * recycled fd.
 */
struct fh_slot {
	int fd;			/* FH_FREE, FH_RESERVED or the descriptor */
	char *path;		/* as opened, for change notices; owned */
	uint32_t gen;
	uint32_t owner;
	uint32_t export_id;
	unsigned refs;
	bool released;
	bool writable;		/* opened for writing */
	bool read_only;		/* of a read-only export */
};

/* fh_get: the handle may belong to any export of its owner. */
#define FH_ANY_EXPORT	UINT32_MAX
#define FH_FREE		(-1)
#define FH_RESERVED	(-2)	/* counted for its owner, not usable yet */

static struct {
	pthread_mutex_t lock;
	struct fh_slot *slots;
	uint32_t nslots;
	unsigned nopen;
} fht = { .lock = PTHREAD_MUTEX_INITIALIZER };

/*
 * Reserve a slot for a handle owner is about to open: its index, or
 * -EMFILE when a peer (owner other than 0, this daemon's own mount)
 * already holds max_handles handles here.  Reserving before the open
 * keeps the count exact with opens of one owner on several workers.
 */
static int
fh_reserve(uint32_t owner)
{
	uint32_t i, n, held = 0, free_slot = UINT32_MAX;

	pthread_mutex_lock(&fht.lock);
	for (i = 0; i < fht.nslots; i++) {
		struct fh_slot *s = &fht.slots[i];

		if (s->fd == FH_FREE && free_slot == UINT32_MAX)
			free_slot = i;
		else if (s->owner == owner && (s->fd == FH_RESERVED ||
		    (s->fd >= 0 && !s->released)))
			held++;
	}
	if (owner != 0 && held >= ctx.max_handles) {
		pthread_mutex_unlock(&fht.lock);
		return -EMFILE;
	}
	if ((i = free_slot) == UINT32_MAX) {
		i = fht.nslots;
		n = fht.nslots ? fht.nslots * 2 : 64;
		fht.slots = xreallocarray(fht.slots, n, sizeof *fht.slots);
		for (uint32_t j = fht.nslots; j < n; j++)
			fht.slots[j] = (struct fh_slot){ .fd = FH_FREE };
		fht.nslots = n;
	}
	fht.slots[i].fd = FH_RESERVED;
	fht.slots[i].owner = owner;
	pthread_mutex_unlock(&fht.lock);
	return (int)i;
}

/* Give back a reserved slot whose open failed. */
static void
fh_cancel(int slot)
{
	pthread_mutex_lock(&fht.lock);
	fht.slots[slot].fd = FH_FREE;
	pthread_mutex_unlock(&fht.lock);
}

/* Record fd as the handle of a reserved slot; returns the handle. */
static uint64_t
fh_new(int slot, int fd, const struct export *ex, bool writable, char *path)
{
	struct fh_slot *s;
	uint64_t fh;

	pthread_mutex_lock(&fht.lock);
	s = &fht.slots[slot];
	s->fd = fd;
	s->gen++;
	s->export_id = ex->id;
	s->refs = 1;		/* the open itself */
	s->released = false;
	s->writable = writable;
	s->read_only = ex->read_only;
	s->path = path;
	fht.nopen++;
	fh = ((uint64_t)s->gen << 32) | (uint32_t)(slot + 1);
	pthread_mutex_unlock(&fht.lock);
	return fh;
}

/* Find the slot of a handle; the caller holds the lock. */
static struct fh_slot *
fh_slot_locked(uint64_t fh, uint32_t owner)
{
	uint32_t i = (uint32_t)fh;
	struct fh_slot *s;

	if (i == 0 || i > fht.nslots)
		return NULL;
	s = &fht.slots[i - 1];
	if (s->fd < 0 || s->released || s->gen != (uint32_t)(fh >> 32) ||
	    s->owner != owner)
		return NULL;
	return s;
}

/*
 * Take a reference on a handle of owner opened in export_id (or in any
 * export with FH_ANY_EXPORT), to write through it if write: its fd;
 * -EBADF for a handle that is unknown, another owner's, another
 * export's or (to write) not open for writing; -EROFS to write to a
 * file of a read-only export.  *writable, if not NULL, tells whether
 * the handle is open for writing.
 */
static int
fh_get(uint64_t fh, uint32_t owner, uint32_t export_id, bool write,
    bool *writable)
{
	struct fh_slot *s;
	int fd = -EBADF;

	pthread_mutex_lock(&fht.lock);
	if ((s = fh_slot_locked(fh, owner)) == NULL ||
	    (export_id != FH_ANY_EXPORT && s->export_id != export_id))
		fd = -EBADF;
	else if (write && s->read_only)
		fd = -EROFS;
	else if (write && !s->writable)
		fd = -EBADF;
	else {
		s->refs++;
		fd = s->fd;
		if (writable != NULL)
			*writable = s->writable;
	}
	pthread_mutex_unlock(&fht.lock);
	return fd;
}

/* Drop a reference taken by fh_get or fh_new; close at zero. */
static void
fh_put_slot(struct fh_slot *s)
{
	if (--s->refs == 0) {
		close(s->fd);
		s->fd = FH_FREE;
		free(s->path);
		s->path = NULL;
		fht.nopen--;
	}
}

/* Drop a reference to the handle (by number). */
static void
fh_put(uint64_t fh)
{
	uint32_t i = (uint32_t)fh;

	pthread_mutex_lock(&fht.lock);
	if (i > 0 && i <= fht.nslots && fht.slots[i - 1].fd >= 0 &&
	    fht.slots[i - 1].gen == (uint32_t)(fh >> 32))
		fh_put_slot(&fht.slots[i - 1]);
	pthread_mutex_unlock(&fht.lock);
}

/* Release a handle: no new users; closed when the last one is done. */
static int
fh_release(uint64_t fh, uint32_t owner)
{
	struct fh_slot *s;
	int rc = -EBADF;

	pthread_mutex_lock(&fht.lock);
	if ((s = fh_slot_locked(fh, owner)) != NULL) {
		s->released = true;
		fh_put_slot(s);
		rc = 0;
	}
	pthread_mutex_unlock(&fht.lock);
	return rc;
}

/* Close every handle of owner. */
void
export_drop_owner(uint32_t owner)
{
	pthread_mutex_lock(&fht.lock);
	for (uint32_t i = 0; i < fht.nslots; i++) {
		struct fh_slot *s = &fht.slots[i];

		if (s->fd >= 0 && !s->released && s->owner == owner) {
			s->released = true;
			fh_put_slot(s);
		}
	}
	pthread_mutex_unlock(&fht.lock);
}

/*
 * The export and path a handle was opened as (a copy, or NULL if the
 * handle is unknown): change notices about writes name the file.
 */
char *
export_fh_path(uint64_t fh, uint32_t owner, uint32_t *export_id)
{
	uint32_t i = (uint32_t)fh;
	struct fh_slot *s;
	char *path = NULL;

	pthread_mutex_lock(&fht.lock);
	if (i > 0 && i <= fht.nslots) {
		s = &fht.slots[i - 1];
		if (s->fd >= 0 && s->gen == (uint32_t)(fh >> 32) &&
		    s->owner == owner && s->path != NULL) {
			path = xstrdup(s->path);
			*export_id = s->export_id;
		}
	}
	pthread_mutex_unlock(&fht.lock);
	return path;
}

/* Number of open handles. */
unsigned
export_open_handles(void)
{
	unsigned n;

	pthread_mutex_lock(&fht.lock);
	n = fht.nopen;
	pthread_mutex_unlock(&fht.lock);
	return n;
}

/* Listings served whole and as deltas (updated from the workers). */
static uint64_t export_lists_full, export_lists_delta;

/* How many listings were served whole and as deltas. */
void
export_list_stats(uint64_t *full, uint64_t *delta)
{
	*full = __atomic_load_n(&export_lists_full, __ATOMIC_RELAXED);
	*delta = __atomic_load_n(&export_lists_delta, __ATOMIC_RELAXED);
}

/* Take the serving side's context (a copy) before the first request. */
void
export_init(const struct export_ctx *c)
{
	ctx = *c;
}

/* Open the export's root directory. */
int
export_open(struct export *ex, const struct config_export *ce, uint32_t id)
{
	memset(ex, 0, sizeof *ex);
	ex->id = id;
	ex->name = xstrdup(ce->name);
	ex->path = xstrdup(ce->path);
	ex->at = xstrdup(ce->at);
	ex->read_only = ce->read_only;
	ex->rootfd = open(ce->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (ex->rootfd == -1)
		return -errno;
	return 0;
}

/* Release an export's resources. */
void
export_close(struct export *ex)
{
	if (ex->rootfd > 0)
		close(ex->rootfd);
	free(ex->name);
	free(ex->path);
	free(ex->at);
	memset(ex, 0, sizeof *ex);
}

/* Free what a reply points into. */
void
export_mem_free(struct export_mem *m)
{
	free(m->data);
	free(m->names);
	m->data = NULL;
	m->names = NULL;
}

/* Resolve path beneath the export root with the given open flags. */
static int
export_resolve(const struct export *ex, const char *path, uint64_t flags)
{
	struct open_how how = {
		.flags = flags | O_CLOEXEC | O_NOFOLLOW,
		.resolve = EXPORT_RESOLVE,
	};
	long fd;

	if (!proto_path_ok(path))
		return -EINVAL;
	if (flags & O_CREAT)
		how.mode = 0;
	fd = syscall(SYS_openat2, ex->rootfd, path[0] ? path : ".", &how,
	    sizeof how);
	return fd < 0 ? -errno : (int)fd;
}

/* Resolve an object itself (O_PATH; a final symlink is not followed). */
static int
export_resolve_obj(const struct export *ex, const char *path)
{
	return export_resolve(ex, path, O_PATH);
}

/* Resolve a directory that will hold or lose a name. */
static int
export_resolve_dir(const struct export *ex, const char *path)
{
	return export_resolve(ex, path, O_PATH | O_DIRECTORY);
}

/* Convert a struct stat into the wire record. */
static void
export_attr(const struct stat *st, struct proto_attr *a)
{
	a->dev = st->st_dev;
	a->ino = st->st_ino;
	a->mode = st->st_mode;
	a->nlink = (uint32_t)st->st_nlink;
	a->uid = st->st_uid;
	a->gid = st->st_gid;
	a->rdev = st->st_rdev;
	a->size = (uint64_t)st->st_size;
	a->blocks = (uint64_t)st->st_blocks;
	a->atime.sec = st->st_atim.tv_sec;
	a->atime.nsec = (uint32_t)st->st_atim.tv_nsec;
	a->mtime.sec = st->st_mtim.tv_sec;
	a->mtime.nsec = (uint32_t)st->st_mtim.tv_nsec;
	a->ctime.sec = st->st_ctim.tv_sec;
	a->ctime.nsec = (uint32_t)st->st_ctim.tv_nsec;
}

/* Stat an fd (any kind, O_PATH included) into a. */
static int
export_fstat(int fd, struct proto_attr *a)
{
	struct stat st;

	if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == -1)
		return -errno;
	export_attr(&st, a);
	return 0;
}

/* Stat a name in a directory fd without following it. */
static int
export_statat(int dfd, const char *name, struct proto_attr *a)
{
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return -errno;
	export_attr(&st, a);
	return 0;
}

/* The /proc path of one of our fds, to act on an O_PATH fd's inode. */
static void
export_procpath(int fd, char *buf, size_t len)
{
	snprintf(buf, len, "/proc/self/fd/%d", fd);
}

/*
 * Whether requests of other peers may use this daemon's privilege:
 * never in this version.  `[security] identity = caller`, which runs
 * each request with the caller's own credentials, is to answer here.
 */
static bool
export_lends_privilege(void)
{
	return false;
}

/* Whether owner is another peer, kept from what privilege allows. */
static bool
export_peer_limited(uint32_t owner)
{
	return owner != 0 && !export_lends_privilege();
}

/* Whether owner is another peer and the daemon's privilege is root's. */
static bool
export_guarded(uint32_t owner)
{
	return export_peer_limited(owner) && geteuid() == 0;
}

/* The permission bits owner asks for, set-ID bits dropped if guarded. */
static mode_t
export_mode(uint32_t owner, uint32_t mode)
{
	mode &= 07777;
	if (export_guarded(owner))
		mode &= ~(uint32_t)(S_ISUID | S_ISGID);
	return (mode_t)mode;
}

/*
 * Whether owner may give a file to uid and gid ((uid_t)-1, (gid_t)-1:
 * unchanged): a guarded peer only to the daemon's own user, and to its
 * group or one of its supplementary groups, as an unprivileged owner.
 */
static bool
export_chown_ok(uint32_t owner, uid_t uid, gid_t gid)
{
	gid_t *groups;
	int n;
	bool ok;

	if (!export_guarded(owner))
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
static bool
export_xattr_privileged(const char *name)
{
	return strncmp(name, "trusted.", 8) == 0 ||
	    strncmp(name, "security.", 9) == 0;
}

/* The export a request names, or NULL. */
static struct export *
export_find(uint32_t id)
{
	return id < ctx.nexports ? &ctx.exports[id] : NULL;
}

/* Whether the request type changes something. */
static bool
export_modifies(const struct proto_req *r)
{
	switch (r->type) {
	case PROTO_SETATTR:
	case PROTO_MKNOD:
	case PROTO_MKDIR:
	case PROTO_SYMLINK:
	case PROTO_LINK:
	case PROTO_UNLINK:
	case PROTO_RMDIR:
	case PROTO_RENAME:
	case PROTO_CREATE:
	case PROTO_SETXATTR:
	case PROTO_REMOVEXATTR:
		return true;
	case PROTO_OPEN:
		return (r->flags & O_ACCMODE) != O_RDONLY ||
		    (r->flags & O_TRUNC);
	default:
		return false;
	}
}

/*
 * SETATTR: change mode, owner, size and times of an object: the file of
 * the handle if the request names one (a handle of the export named,
 * opened on this stream), else the object at path.
 */
static int
export_setattr(struct export *ex, uint32_t owner, const struct proto_req *r,
    struct proto_rep *rep)
{
	uid_t uid = (r->valid & PROTO_SET_UID) ? r->uid : (uid_t)-1;
	gid_t gid = (r->valid & PROTO_SET_GID) ? r->gid : (gid_t)-1;
	char proc[64];
	struct proto_attr a;
	int fd = -1, ofd = -1, rc = 0;
	bool writable = false;

	/* Refused before anything changes, not half-way through. */
	if (!export_chown_ok(owner, uid, gid))
		return -EPERM;
	if (r->fh != 0) {
		ofd = fh_get(r->fh, owner, ex->id, false, &writable);
		if (ofd < 0)
			return ofd;
	} else if ((fd = export_resolve_obj(ex, r->path)) < 0)
		return fd;
	rc = export_fstat(ofd >= 0 ? ofd : fd, &a);
	if (rc < 0)
		goto out;
	export_procpath(ofd >= 0 ? ofd : fd, proc, sizeof proc);

	if (r->valid & PROTO_SET_MODE) {
		if (S_ISLNK(a.mode))
			rc = -EOPNOTSUPP;
		else if (chmod(proc, export_mode(owner, r->mode)) == -1)
			rc = -errno;
		if (rc < 0)
			goto out;
	}
	if (r->valid & (PROTO_SET_UID | PROTO_SET_GID)) {
		if (fchownat(ofd >= 0 ? ofd : fd, "", uid, gid,
		    AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == -1) {
			rc = -errno;
			goto out;
		}
	}
	if (r->valid & PROTO_SET_SIZE) {
		if (ofd >= 0 && writable)
			rc = ftruncate(ofd, (off_t)r->offset) == -1 ? -errno : 0;
		else if (!S_ISREG(a.mode))
			rc = S_ISDIR(a.mode) ? -EISDIR : -EINVAL;
		else
			rc = truncate(proc, (off_t)r->offset) == -1 ? -errno : 0;
		if (rc < 0)
			goto out;
	}
	if (r->valid & (PROTO_SET_ATIME | PROTO_SET_MTIME |
	    PROTO_SET_ATIME_NOW | PROTO_SET_MTIME_NOW)) {
		struct timespec ts[2] = {
			{ .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT }
		};

		if (r->valid & PROTO_SET_ATIME_NOW)
			ts[0].tv_nsec = UTIME_NOW;
		else if (r->valid & PROTO_SET_ATIME)
			ts[0] = (struct timespec){ r->atime.sec, r->atime.nsec };
		if (r->valid & PROTO_SET_MTIME_NOW)
			ts[1].tv_nsec = UTIME_NOW;
		else if (r->valid & PROTO_SET_MTIME)
			ts[1] = (struct timespec){ r->mtime.sec, r->mtime.nsec };
		if (S_ISLNK(a.mode)) {
			/* The proc link would be followed: go by parent. */
			char *slash = strrchr(r->path, '/');
			char *parent = slash ?
			    xstrndup(r->path, (size_t)(slash - r->path)) :
			    xstrdup("");
			int dfd = export_resolve_dir(ex, parent);

			free(parent);
			if (dfd < 0) {
				rc = dfd;
				goto out;
			}
			if (utimensat(dfd, slash ? slash + 1 : r->path, ts,
			    AT_SYMLINK_NOFOLLOW) == -1)
				rc = -errno;
			close(dfd);
		} else if (utimensat(AT_FDCWD, proc, ts, 0) == -1)
			rc = -errno;
		if (rc < 0)
			goto out;
	}
	rc = export_fstat(ofd >= 0 ? ofd : fd, &rep->attr);
out:
	if (fd >= 0)
		close(fd);
	if (ofd >= 0)
		fh_put(r->fh);
	return rc;
}

/*
 * Append entry name with attr to a listing reply under construction;
 * 0 or -ENOMEM (a listing is as large as a peer's directory makes it:
 * running out of memory fails that request, not the daemon).
 */
static int
export_list_add(struct proto_rep *rep, struct export_mem *mem, size_t *cap,
    size_t *nlen, size_t *ncap, const char *name,
    const struct proto_attr *a)
{
	size_t len = strlen(name) + 1, n;
	void *p;

	if (rep->nents == *cap) {
		n = *cap ? *cap * 2 : 64;
		if ((p = reallocarray(rep->ents, n, sizeof *rep->ents)) == NULL)
			return -ENOMEM;
		rep->ents = p;
		*cap = n;
	}
	if (*nlen + len > *ncap) {
		for (n = *ncap ? *ncap : 4096; *nlen + len > n; n *= 2)
			;
		if ((p = realloc(mem->names, n)) == NULL)
			return -ENOMEM;
		mem->names = p;
		*ncap = n;
	}
	memcpy(mem->names + *nlen, name, len);
	/* Names are arena offsets while the arena may still move. */
	rep->ents[rep->nents].name = (const char *)(uintptr_t)*nlen;
	rep->ents[rep->nents].attr = *a;
	rep->nents++;
	*nlen += len;
	return 0;
}

/*
 * READDIR: every entry but "." and "..", with its attributes; or, when
 * the asker's checkpoint is one we can answer from the journal, only the
 * entries changed since (removed ones with mode 0).
 */
static int
export_readdir(struct export *ex, const struct proto_req *r,
    struct proto_rep *rep, struct export_mem *mem)
{
	size_t cap = 0, nlen = 0, ncap = 0, nnames = 0;
	struct proto_attr a, gone = { 0 };
	struct dirent *de;
	char **names = NULL;
	uint64_t ckpt;
	DIR *dir;
	int fd, rc = 0;

	fd = export_resolve(ex, r->path, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fd;
	/* Watch first, then take the checkpoint: nothing falls between. */
	watch_add(ex->id, r->path, fd);
	ckpt = journal_seq();
	rep->value = ckpt;
	rep->fh = ctx.global_ns();
	if (r->fh != 0 && r->fh == ctx.boot_id &&
	    watch_since(ex->id, r->path) <= r->offset2 &&
	    journal_since(ex->id, r->path, r->offset2, &names, &nnames) == 0) {
		rep->flags = PROTO_LIST_DELTA;
		__atomic_add_fetch(&export_lists_delta, 1, __ATOMIC_RELAXED);
		for (size_t i = 0; i < nnames; i++) {
			if (export_statat(fd, names[i], &a) < 0)
				a = gone;
			if (rc == 0)
				rc = export_list_add(rep, mem, &cap, &nlen,
				    &ncap, names[i], &a);
			free(names[i]);
		}
		free(names);
		close(fd);
		goto names;
	}
	if ((dir = fdopendir(fd)) == NULL) {
		close(fd);
		return -errno;
	}
	__atomic_add_fetch(&export_lists_full, 1, __ATOMIC_RELAXED);
	errno = 0;
	while ((de = readdir(dir)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (rep->nents == PROTO_MAX_LISTING) {
			closedir(dir);
			return -EOVERFLOW;	/* never cut short silently */
		}
		if (export_statat(dirfd(dir), de->d_name, &a) < 0)
			continue;	/* vanished meanwhile */
		if ((rc = export_list_add(rep, mem, &cap, &nlen, &ncap,
		    de->d_name, &a)) < 0)
			break;
		errno = 0;
	}
	if (errno != 0 && de == NULL && rep->nents == 0) {
		int e = errno;

		closedir(dir);
		return -e;
	}
	closedir(dir);
names:
	if (rc < 0) {
		free(rep->ents);
		rep->ents = NULL;
		rep->nents = 0;
		return rc;
	}
	for (size_t i = 0; i < rep->nents; i++)
		rep->ents[i].name = mem->names + (uintptr_t)rep->ents[i].name;
	return 0;
}

/* Read up to length bytes at offset through a handle. */
static int
export_read(uint32_t owner, const struct proto_req *r, struct proto_rep *rep,
    struct export_mem *mem)
{
	size_t len = r->length, done = 0;
	ssize_t n;
	int fd;

	if (len > PROTO_MAX_DATA)
		return -EINVAL;
	if ((fd = fh_get(r->fh, owner, FH_ANY_EXPORT, false, NULL)) < 0)
		return fd;
	/* Up to 16 MiB a request: out of memory fails the request. */
	if ((mem->data = malloc(len ? len : 1)) == NULL) {
		fh_put(r->fh);
		return -ENOMEM;
	}
	while (done < len) {
		n = pread(fd, (char *)mem->data + done, len - done,
		    (off_t)(r->offset + done));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			int e = errno;

			fh_put(r->fh);
			return -e;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	fh_put(r->fh);
	rep->data = mem->data;
	rep->datalen = done;
	return 0;
}

/* Write the request's data at offset through a handle. */
static int
export_write(uint32_t owner, const struct proto_req *r, struct proto_rep *rep)
{
	size_t done = 0;
	ssize_t n;
	int fd;

	if ((fd = fh_get(r->fh, owner, FH_ANY_EXPORT, true, NULL)) < 0)
		return fd;
	while (done < r->datalen) {
		n = pwrite(fd, (const char *)r->data + done, r->datalen - done,
		    (off_t)(r->offset + done));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			int e = errno;

			fh_put(r->fh);
			if (done > 0)
				break;
			return -e;
		}
		done += (size_t)n;
	}
	if (done < r->datalen && done > 0) {
		rep->value = done;
		return 0;
	}
	fh_put(r->fh);
	rep->value = done;
	return 0;
}

/* Open flags a peer may ask for; O_CREAT only through CREATE. */
static int
export_open_flags(uint32_t flags)
{
	return (int)(flags & (O_ACCMODE | O_APPEND | O_TRUNC | O_NONBLOCK |
	    O_SYNC | O_DSYNC | O_NOATIME | O_DIRECTORY | O_EXCL)) |
	    O_NOFOLLOW | O_CLOEXEC;
}

/*
 * Open the object of an O_PATH descriptor with a peer's open flags, if
 * it is a regular file or a directory.  Anything else is refused before
 * it is opened: a FIFO would block a worker until a writer comes, a
 * device would reach its driver.  ENXIO for those, ELOOP for a symbolic
 * link (as O_NOFOLLOW says).  The reopen goes through the descriptor's
 * /proc link, so it reaches the very inode that was checked.
 */
static int
export_reopen(int pfd, int flags)
{
	struct stat st;
	char proc[64];
	int fd;

	if (fstatat(pfd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == -1)
		return -errno;
	if (S_ISLNK(st.st_mode))
		return -ELOOP;
	if ((flags & O_DIRECTORY) && !S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
		return -ENXIO;
	export_procpath(pfd, proc, sizeof proc);
	fd = open(proc, (flags & ~(O_NOFOLLOW | O_CREAT | O_EXCL)) |
	    O_CLOEXEC);
	return fd == -1 ? -errno : fd;
}

/*
 * The descriptor OPEN or CREATE asks for, or a negative errno.  CREATE
 * makes the file with O_EXCL; if the name exists (and the peer did not
 * ask for O_EXCL) it opens what is there as OPEN does, so an existing
 * FIFO or device is refused, not opened.
 */
static int
export_open_fd(struct export *ex, const struct proto_req *r, int flags,
    mode_t mode)
{
	int fd = -EEXIST, pfd, dfd;

	if (r->type == PROTO_OPEN) {
		if ((pfd = export_resolve_obj(ex, r->path)) < 0)
			return pfd;
		fd = export_reopen(pfd, flags);
		close(pfd);
		return fd;
	}
	if ((dfd = export_resolve_dir(ex, r->path)) < 0)
		return dfd;
	/* A name removed between the two tries: try again, a few times. */
	for (int tries = 0; tries < 8 && fd == -EEXIST; tries++) {
		fd = openat(dfd, r->name, flags | O_CREAT | O_EXCL, mode);
		if (fd >= 0 || errno != EEXIST || (flags & O_EXCL)) {
			fd = fd >= 0 ? fd : -errno;
			break;
		}
		pfd = openat(dfd, r->name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (pfd == -1) {
			fd = errno == ENOENT ? -EEXIST : -errno;
			continue;
		}
		fd = export_reopen(pfd, flags);
		close(pfd);
	}
	close(dfd);
	return fd;
}

/*
 * OPEN or CREATE: a new handle plus the object's attributes.  The slot
 * is reserved first, so a peer over max_handles creates nothing.
 */
static int
export_open_file(struct export *ex, uint32_t owner, const struct proto_req *r,
    struct proto_rep *rep)
{
	int flags = export_open_flags(r->flags), fd, slot, rc;
	char *path;

	if (r->type == PROTO_OPEN && (flags & O_ACCMODE) == O_RDONLY)
		flags &= ~O_TRUNC;
	if ((slot = fh_reserve(owner)) < 0)
		return slot;
	if ((fd = export_open_fd(ex, r, flags, export_mode(owner, r->mode)))
	    < 0) {
		fh_cancel(slot);
		return fd;
	}
	if ((rc = export_fstat(fd, &rep->attr)) < 0) {
		close(fd);
		fh_cancel(slot);
		return rc;
	}
	if (r->type == PROTO_CREATE)
		path = xpathjoin(r->path, r->name);
	else
		path = xstrdup(r->path);
	rep->fh = fh_new(slot, fd, ex, (flags & O_ACCMODE) != O_RDONLY, path);
	return 0;
}

/*
 * Create a non-regular entry (MKNOD, MKDIR, SYMLINK) and stat it.  A
 * guarded peer gets no device node (EPERM); FIFOs and sockets it may.
 */
static int
export_make(struct export *ex, uint32_t owner, const struct proto_req *r,
    struct proto_rep *rep)
{
	mode_t type = (mode_t)r->mode & S_IFMT;
	char *target;
	int dfd, rc = 0;

	if (r->type == PROTO_MKNOD && (S_ISCHR(type) || S_ISBLK(type)) &&
	    export_guarded(owner))
		return -EPERM;
	if ((dfd = export_resolve_dir(ex, r->path)) < 0)
		return dfd;
	switch (r->type) {
	case PROTO_MKNOD:
		if (mknodat(dfd, r->name, type | export_mode(owner, r->mode),
		    (dev_t)r->rdev) == -1)
			rc = -errno;
		break;
	case PROTO_MKDIR:
		if (mkdirat(dfd, r->name, export_mode(owner, r->mode)) == -1)
			rc = -errno;
		break;
	case PROTO_SYMLINK:
		target = xstrndup(r->data, r->datalen);
		if (symlinkat(target, dfd, r->name) == -1)
			rc = -errno;
		free(target);
		break;
	default:
		rc = -EINVAL;
	}
	if (rc == 0)
		rc = export_statat(dfd, r->name, &rep->attr);
	close(dfd);
	return rc;
}

/* LINK: a new name in path2/name2 for the object at path. */
static int
export_link(struct export *ex, struct export *ex2, const struct proto_req *r,
    struct proto_rep *rep)
{
	char proc[64];
	int fd, dfd, rc = 0;

	if ((fd = export_resolve_obj(ex, r->path)) < 0)
		return fd;
	if ((dfd = export_resolve_dir(ex2, r->path2)) < 0) {
		close(fd);
		return dfd;
	}
	export_procpath(fd, proc, sizeof proc);
	if (linkat(AT_FDCWD, proc, dfd, r->name2, AT_SYMLINK_FOLLOW) == -1)
		rc = -errno;
	if (rc == 0)
		rc = export_statat(dfd, r->name2, &rep->attr);
	close(fd);
	close(dfd);
	return rc;
}

/* UNLINK, RMDIR. */
static int
export_remove(struct export *ex, const struct proto_req *r)
{
	int dfd, rc = 0;

	if ((dfd = export_resolve_dir(ex, r->path)) < 0)
		return dfd;
	if (unlinkat(dfd, r->name, r->type == PROTO_RMDIR ? AT_REMOVEDIR : 0)
	    == -1)
		rc = -errno;
	close(dfd);
	return rc;
}

/* RENAME within this peer (flags: RENAME_NOREPLACE, RENAME_EXCHANGE). */
static int
export_rename(struct export *ex, struct export *ex2, const struct proto_req *r)
{
	int dfd, dfd2, rc = 0;

	if ((dfd = export_resolve_dir(ex, r->path)) < 0)
		return dfd;
	if ((dfd2 = export_resolve_dir(ex2, r->path2)) < 0) {
		close(dfd);
		return dfd2;
	}
	if (renameat2(dfd, r->name, dfd2, r->name2, r->flags) == -1)
		rc = -errno;
	close(dfd);
	close(dfd2);
	return rc;
}

/*
 * The xattr calls, on the object's /proc path (never on a symlink).
 * Other peers set or remove no trusted.* or security.* attribute.
 */
static int
export_xattr(struct export *ex, uint32_t owner, const struct proto_req *r,
    struct proto_rep *rep, struct export_mem *mem)
{
	struct proto_attr a;
	char proc[64];
	ssize_t n = 0;
	int fd, rc;

	if ((r->type == PROTO_SETXATTR || r->type == PROTO_REMOVEXATTR) &&
	    export_peer_limited(owner) && export_xattr_privileged(r->name))
		return -EPERM;
	if ((fd = export_resolve_obj(ex, r->path)) < 0)
		return fd;
	if ((rc = export_fstat(fd, &a)) < 0)
		goto out;
	if (S_ISLNK(a.mode)) {
		/* Linux allows no user.* xattrs on links: report none. */
		rc = r->type == PROTO_LISTXATTR ? 0 :
		    r->type == PROTO_GETXATTR ? -ENODATA : -EPERM;
		goto out;
	}
	export_procpath(fd, proc, sizeof proc);
	switch (r->type) {
	case PROTO_SETXATTR:
		if (setxattr(proc, r->name, r->data, r->datalen,
		    (int)r->flags) == -1)
			rc = -errno;
		break;
	case PROTO_REMOVEXATTR:
		if (removexattr(proc, r->name) == -1)
			rc = -errno;
		break;
	case PROTO_GETXATTR:
	case PROTO_LISTXATTR:
		if (r->length > PROTO_MAX_XATTR) {
			rc = -EINVAL;
			break;
		}
		if (r->length > 0 &&
		    (mem->data = malloc(r->length)) == NULL) {
			rc = -ENOMEM;
			break;
		}
		if (r->type == PROTO_GETXATTR)
			n = getxattr(proc, r->name, mem->data, r->length);
		else
			n = listxattr(proc, mem->data, r->length);
		if (n == -1) {
			rc = -errno;
			break;
		}
		rep->value = (uint64_t)n;
		if (r->length > 0) {
			rep->data = mem->data;
			rep->datalen = (size_t)n;
		}
		break;
	default:
		rc = -EINVAL;
	}
out:
	close(fd);
	return rc;
}

/*
 * Operations on an open handle that return nothing but a value.  STAT
 * names the handle's export too; FALLOCATE writes through its handle,
 * COPY_RANGE through its second one.
 */
static int
export_fh_op(uint32_t owner, const struct proto_req *r, struct proto_rep *rep)
{
	off_t off, off2;
	ssize_t n;
	int fd, fd2, rc = 0;

	fd = fh_get(r->fh, owner, r->type == PROTO_STAT ? r->export_id :
	    FH_ANY_EXPORT, r->type == PROTO_FALLOCATE, NULL);
	if (fd < 0)
		return fd;
	switch (r->type) {
	case PROTO_FSYNC:
		if ((r->flags & 1) ? fdatasync(fd) : fsync(fd))
			rc = -errno;
		break;
	case PROTO_FALLOCATE:
		if (fallocate(fd, (int)r->flags, (off_t)r->offset,
		    (off_t)r->length) == -1)
			rc = -errno;
		break;
	case PROTO_LSEEK:
		off = lseek(fd, (off_t)r->offset, (int)r->flags);
		if (off == -1)
			rc = -errno;
		else
			rep->value = (uint64_t)off;
		break;
	case PROTO_COPY_RANGE:
		if ((fd2 = fh_get(r->fh2, owner, FH_ANY_EXPORT, true,
		    NULL)) < 0) {
			rc = fd2;
			break;
		}
		off = (off_t)r->offset;
		off2 = (off_t)r->offset2;
		n = copy_file_range(fd, &off, fd2, &off2, r->length, 0);
		if (n == -1)
			rc = -errno;
		else
			rep->value = (uint64_t)n;
		fh_put(r->fh2);
		break;
	case PROTO_STAT:
		rc = export_fstat(fd, &rep->attr);
		break;
	default:
		rc = -EINVAL;
	}
	fh_put(r->fh);
	return rc;
}

/* STAT, READLINK, STATFS, ACCESS, FSYNCDIR: by path. */
static int
export_path_op(struct export *ex, const struct proto_req *r,
    struct proto_rep *rep, struct export_mem *mem)
{
	struct statvfs sv;
	ssize_t n;
	int fd, rc = 0;

	fd = export_resolve(ex, r->path,
	    r->type == PROTO_FSYNCDIR ? O_RDONLY | O_DIRECTORY : O_PATH);
	if (fd < 0)
		return fd;
	switch (r->type) {
	case PROTO_STAT:
		/*
		 * A rename over the name between resolving and fstat leaves
		 * us holding the replaced, unlinked file: the name now means
		 * the new one, so look again (a few times, then give up).
		 */
		for (int tries = 0; (rc = export_fstat(fd, &rep->attr)) == 0 &&
		    rep->attr.nlink == 0 && !S_ISDIR(rep->attr.mode) &&
		    tries < 8; tries++) {
			close(fd);
			if ((fd = export_resolve(ex, r->path, O_PATH)) < 0)
				return fd;
		}
		/* A directory looked at may be cached by the asker. */
		if (rc == 0 && S_ISDIR(rep->attr.mode))
			watch_add(ex->id, r->path, fd);
		break;
	case PROTO_READLINK:
		mem->data = xmalloc(PROTO_MAX_PATH);
		n = readlinkat(fd, "", mem->data, PROTO_MAX_PATH - 1);
		if (n == -1) {
			rc = errno == ENOENT ? -EINVAL : -errno;
			break;
		}
		rep->data = mem->data;
		rep->datalen = (size_t)n;
		break;
	case PROTO_STATFS:
		if (fstatvfs(fd, &sv) == -1) {
			rc = -errno;
			break;
		}
		rep->statfs = (struct proto_statfs){
			.bsize = sv.f_bsize, .frsize = sv.f_frsize,
			.blocks = sv.f_blocks, .bfree = sv.f_bfree,
			.bavail = sv.f_bavail, .files = sv.f_files,
			.ffree = sv.f_ffree, .favail = sv.f_favail,
			.namemax = sv.f_namemax,
		};
		break;
	case PROTO_ACCESS:
		if ((r->flags & W_OK) && ex->read_only)
			rc = -EROFS;
		else if (faccessat(fd, "", (int)r->flags,
		    AT_EMPTY_PATH | AT_EACCESS) == -1)
			rc = -errno;
		break;
	case PROTO_FSYNCDIR:
		if ((r->flags & 1) ? fdatasync(fd) : fsync(fd))
			rc = -errno;
		break;
	default:
		rc = -EINVAL;
	}
	close(fd);
	return rc;
}

/* Serve one request; fills rep->error (0 or a negative errno) and the body. */
void
export_serve(uint32_t owner, const struct proto_req *r, struct proto_rep *rep,
    struct export_mem *mem)
{
	struct export *ex, *ex2;
	int rc;

	memset(rep, 0, sizeof *rep);
	rep->type = r->type;
	rep->id = r->id;
	ex = export_find(r->export_id);
	ex2 = export_find(r->export2);

	switch (r->type) {
	case PROTO_READ:
	case PROTO_WRITE:
	case PROTO_RELEASE:
	case PROTO_FSYNC:
	case PROTO_FALLOCATE:
	case PROTO_LSEEK:
	case PROTO_COPY_RANGE:
		break;		/* by handle: fh_get checks what it may do */
	case PROTO_STAT:
		if (r->fh != 0)
			break;
		/* FALLTHROUGH */
	default:
		if (ex == NULL) {
			rep->error = -ENOENT;
			return;
		}
		if (ex->read_only && export_modifies(r)) {
			rep->error = -EROFS;
			return;
		}
	}

	switch (r->type) {
	case PROTO_STAT:
		rc = r->fh != 0 ? export_fh_op(owner, r, rep) :
		    export_path_op(ex, r, rep, mem);
		break;
	case PROTO_READLINK:
	case PROTO_STATFS:
	case PROTO_ACCESS:
	case PROTO_FSYNCDIR:
		rc = export_path_op(ex, r, rep, mem);
		break;
	case PROTO_SETATTR:
		rc = export_setattr(ex, owner, r, rep);
		break;
	case PROTO_MKNOD:
	case PROTO_MKDIR:
	case PROTO_SYMLINK:
		rc = export_make(ex, owner, r, rep);
		break;
	case PROTO_LINK:
	case PROTO_RENAME:
		if (ex2 == NULL)
			rc = -ENOENT;
		else if (ex2->read_only)
			rc = -EROFS;
		else if (r->type == PROTO_LINK)
			rc = export_link(ex, ex2, r, rep);
		else
			rc = export_rename(ex, ex2, r);
		break;
	case PROTO_UNLINK:
	case PROTO_RMDIR:
		rc = export_remove(ex, r);
		break;
	case PROTO_OPEN:
	case PROTO_CREATE:
		rc = export_open_file(ex, owner, r, rep);
		break;
	case PROTO_READ:
		rc = export_read(owner, r, rep, mem);
		break;
	case PROTO_WRITE:
		rc = export_write(owner, r, rep);
		break;
	case PROTO_RELEASE:
		rc = fh_release(r->fh, owner);
		break;
	case PROTO_FSYNC:
	case PROTO_FALLOCATE:
	case PROTO_LSEEK:
	case PROTO_COPY_RANGE:
		rc = export_fh_op(owner, r, rep);
		break;
	case PROTO_READDIR:
		rc = export_readdir(ex, r, rep, mem);
		break;
	case PROTO_SETXATTR:
	case PROTO_GETXATTR:
	case PROTO_LISTXATTR:
	case PROTO_REMOVEXATTR:
		rc = export_xattr(ex, owner, r, rep, mem);
		break;
	default:
		rc = -ENOSYS;
	}
	rep->error = rc < 0 ? rc : 0;
}
