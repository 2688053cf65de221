/*
 * serve.c - the operations of the serving side, one request each, on
 * the objects export_serve() found for it: paths resolved beneath the
 * export's root (beneath.c), open files through the handle table
 * (handle.c), within what the owner's identity allows (identity.c).
 * Each returns 0 or a negative errno and fills the reply's body.
 *
 * This code runs on worker threads, like the rest of the serving side.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "export-int.h"
#include "journal.h"
#include "log.h"
#include "watch.h"

/* Listings served whole and as deltas (updated from the workers). */
static uint64_t serve_lists_full, serve_lists_delta;

/* How many listings were served whole and as deltas. */
void
export_list_stats(uint64_t *full, uint64_t *delta)
{
	*full = __atomic_load_n(&serve_lists_full, __ATOMIC_RELAXED);
	*delta = __atomic_load_n(&serve_lists_delta, __ATOMIC_RELAXED);
}

/* Convert a struct stat into the wire record. */
void
serve_attr(const struct stat *st, struct proto_attr *a)
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
serve_fstat(int fd, struct proto_attr *a)
{
	struct stat st;

	if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == -1)
		return -errno;
	serve_attr(&st, a);
	return 0;
}

/*
 * Clear the set-ID bits of the regular file at fd (any kind of fd) as a
 * write or truncate by a caller without CAP_FSETID would: S_ISUID, and
 * S_ISGID if the group may execute it (else it marks mandatory locking).
 * The daemon's own writes, root's, would keep them.
 */
static int
serve_kill_setid(int fd)
{
	struct stat st;
	char proc[64];
	mode_t kill;

	if (fstatat(fd, "", &st, AT_EMPTY_PATH) == -1)
		return -errno;
	kill = S_ISUID;
	if (st.st_mode & S_IXGRP)
		kill |= S_ISGID;
	if (!S_ISREG(st.st_mode) || (st.st_mode & kill) == 0)
		return 0;
	beneath_procpath(fd, proc, sizeof proc);
	return chmod(proc, st.st_mode & ~kill & 07777) == -1 ? -errno : 0;
}

/* Stat a name in a directory fd without following it. */
static int
serve_statat(int dfd, const char *name, struct proto_attr *a)
{
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return -errno;
	serve_attr(&st, a);
	return 0;
}

/*
 * SETATTR: change mode, owner, size and times of an object: the file of
 * the handle if the request names one (a handle of the export named,
 * opened on this stream), else the object at path.
 */
int
serve_setattr(struct export *ex, uint32_t owner, const struct proto_req *r,
    struct proto_rep *rep)
{
	uid_t uid = (r->valid & PROTO_SET_UID) ? r->uid : (uid_t)-1;
	gid_t gid = (r->valid & PROTO_SET_GID) ? r->gid : (gid_t)-1;
	char proc[64];
	struct proto_attr a;
	int fd = -1, ofd = -1, rc = 0;
	bool writable = false;

	if (r->fh != 0) {
		ofd = handle_get(r->fh, owner, ex->id, false, &writable);
		if (ofd < 0)
			return ofd;
	} else if ((fd = beneath_obj(ex, r->path)) < 0)
		return fd;
	rc = serve_fstat(ofd >= 0 ? ofd : fd, &a);
	if (rc < 0)
		goto out;
	/*
	 * Refused before anything changes, not half-way through.  The
	 * owner or group the file has already is not given: a requester
	 * may count on that (io_setattr_foreseen()).
	 */
	if (uid == a.uid)
		uid = (uid_t)-1;
	if (gid == a.gid)
		gid = (gid_t)-1;
	if (!identity_chown_ok(owner, uid, gid)) {
		rc = -EPERM;
		goto out;
	}
	beneath_procpath(ofd >= 0 ? ofd : fd, proc, sizeof proc);

	if (r->valid & PROTO_SET_MODE) {
		if (S_ISLNK(a.mode))
			rc = -EOPNOTSUPP;
		else if (chmod(proc, identity_mode(owner, r->mode)) == -1)
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
			rc = ftruncate(ofd, (off_t)r->offset) == -1 ? -errno
								    : 0;
		else if (!S_ISREG(a.mode))
			rc = S_ISDIR(a.mode) ? -EISDIR : -EINVAL;
		else
			rc = truncate(proc, (off_t)r->offset) == -1 ? -errno
								    : 0;
		if (rc < 0)
			goto out;
	}
	if (r->valid &
	    (PROTO_SET_ATIME | PROTO_SET_MTIME | PROTO_SET_ATIME_NOW |
		PROTO_SET_MTIME_NOW)) {
		struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT },
			{ .tv_nsec = UTIME_OMIT } };

		if (r->valid & PROTO_SET_ATIME_NOW)
			ts[0].tv_nsec = UTIME_NOW;
		else if (r->valid & PROTO_SET_ATIME)
			ts[0] = (struct timespec){ r->atime.sec,
				r->atime.nsec };
		if (r->valid & PROTO_SET_MTIME_NOW)
			ts[1].tv_nsec = UTIME_NOW;
		else if (r->valid & PROTO_SET_MTIME)
			ts[1] = (struct timespec){ r->mtime.sec,
				r->mtime.nsec };
		if (S_ISLNK(a.mode)) {
			/* The proc link would be followed: go by parent. */
			char *slash = strrchr(r->path, '/');
			char *parent = slash
			    ? xstrndup(r->path, (size_t)(slash - r->path))
			    : xstrdup("");
			int dfd = beneath_dir(ex, parent);

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
	/* Truncate or chown by a caller without CAP_FSETID: after both. */
	if ((r->valid & PROTO_SET_KILL_SUIDGID) &&
	    (rc = serve_kill_setid(ofd >= 0 ? ofd : fd)) < 0)
		goto out;
	rc = serve_fstat(ofd >= 0 ? ofd : fd, &rep->attr);
out:
	if (fd >= 0)
		close(fd);
	if (ofd >= 0)
		handle_put(r->fh);
	return rc;
}

/*
 * Append entry name with attr to a listing reply under construction;
 * 0 or -ENOMEM (a listing is as large as a peer's directory makes it:
 * running out of memory fails that request, not the daemon).
 */
static int
serve_list_add(struct proto_rep *rep, struct export_mem *mem, size_t *cap,
    size_t *nlen, size_t *ncap, const char *name, const struct proto_attr *a)
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
int
serve_readdir(struct export *ex, const struct proto_req *r,
    struct proto_rep *rep, struct export_mem *mem)
{
	size_t cap = 0, nlen = 0, ncap = 0, nnames = 0;
	struct proto_attr a, gone = { 0 };
	struct dirent *de;
	char **names = NULL;
	uint64_t ckpt;
	DIR *dir;
	int fd, rc = 0;

	fd = beneath_open(ex, r->path, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fd;
	/* Watch first, then take the checkpoint: nothing falls between. */
	watch_add(ex->id, r->path, fd);
	ckpt = journal_seq();
	rep->value = ckpt;
	rep->fh = export_context.global_ns();
	if (r->fh != 0 && r->fh == export_context.boot_id &&
	    watch_since(ex->id, r->path) <= r->offset2 &&
	    journal_since(ex->id, r->path, r->offset2, &names, &nnames) == 0) {
		rep->flags = PROTO_LIST_DELTA;
		__atomic_add_fetch(&serve_lists_delta, 1, __ATOMIC_RELAXED);
		for (size_t i = 0; i < nnames; i++) {
			if (serve_statat(fd, names[i], &a) < 0)
				a = gone;
			if (rc == 0)
				rc = serve_list_add(rep, mem, &cap, &nlen,
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
	__atomic_add_fetch(&serve_lists_full, 1, __ATOMIC_RELAXED);
	errno = 0;
	while ((de = readdir(dir)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (rep->nents == PROTO_MAX_LISTING) {
			closedir(dir);
			return -EOVERFLOW; /* never cut short silently */
		}
		if (serve_statat(dirfd(dir), de->d_name, &a) < 0)
			continue; /* vanished meanwhile */
		if ((rc = serve_list_add(rep, mem, &cap, &nlen, &ncap,
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
int
serve_read(uint32_t owner, const struct proto_req *r, struct proto_rep *rep,
    struct export_mem *mem)
{
	size_t len = r->length, done = 0, head = proto_rep_data_at(PROTO_READ);
	ssize_t n;
	char *buf;
	int fd;

	if (len > PROTO_MAX_DATA)
		return -EINVAL;
	if ((fd = handle_get(r->fh, owner, HANDLE_ANY_EXPORT, false, NULL)) < 0)
		return fd;
	/*
	 * Up to 16 MiB a request: out of memory fails the request.  Read
	 * to where the reply's frame carries the bytes: the frame is made
	 * around them (stream.c), not copied.
	 */
	if ((mem->data = malloc(head + (len ? len : 1))) == NULL) {
		handle_put(r->fh);
		return -ENOMEM;
	}
	buf = (char *)mem->data + head;
	mem->head = head;
	while (done < len) {
		n = pread(fd, buf + done, len - done,
		    (off_t)(r->offset + done));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			int e = errno;

			handle_put(r->fh);
			return -e;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	handle_put(r->fh);
	rep->data = buf;
	rep->datalen = done;
	return 0;
}

/* Write the request's data at offset through a handle. */
int
serve_write(uint32_t owner, const struct proto_req *r, struct proto_rep *rep)
{
	size_t done = 0;
	ssize_t n;
	int fd, rc;

	if ((fd = handle_get(r->fh, owner, HANDLE_ANY_EXPORT, true, NULL)) < 0)
		return fd;
	/* Before the bytes land, as a local write(2) does. */
	if ((r->flags & PROTO_KILL_SUIDGID) &&
	    (rc = serve_kill_setid(fd)) < 0) {
		handle_put(r->fh);
		return rc;
	}
	/* The file before and after (PROTO_CAP_CHANGE_ATTR). */
	rep->has_attr = serve_fstat(fd, &rep->attr_before) == 0;
	while (done < r->datalen) {
		n = pwrite(fd, (const char *)r->data + done, r->datalen - done,
		    (off_t)(r->offset + done));
		if (n == -1 && errno == EINTR)
			continue;
		/*
		 * Stopped short, bytes written or not: the error, so that
		 * the requester, whose write-back fails whole either way,
		 * reports why (ENOSPC, EDQUOT), not a bare EIO.
		 */
		if (n == -1) {
			int e = errno;

			handle_put(r->fh);
			return -e;
		}
		done += (size_t)n;
	}
	if (rep->has_attr)
		rep->has_attr = serve_fstat(fd, &rep->attr) == 0;
	handle_put(r->fh);
	rep->value = done;
	return 0;
}

/* Open flags a peer may ask for; O_CREAT only through CREATE. */
static int
serve_open_flags(uint32_t flags)
{
	return (int)(flags &
		   (O_ACCMODE | O_APPEND | O_TRUNC | O_NONBLOCK | O_SYNC |
		       O_DSYNC | O_NOATIME | O_DIRECTORY | O_EXCL)) |
	    O_NOFOLLOW | O_CLOEXEC;
}

/*
 * The attributes of directory dfd after a change of its entries, for
 * the reply (PROTO_CAP_DIR_ATTR): the requester need not ask for them.
 */
static void
serve_dir_attr(int dfd, struct proto_rep *rep)
{
	rep->has_dir_attr = serve_fstat(dfd, &rep->dir_attr) == 0;
}

/*
 * The descriptor OPEN or CREATE asks for, or a negative errno.  CREATE
 * makes the file with O_EXCL; if the name exists (and the peer did not
 * ask for O_EXCL) it opens what is there as OPEN does, so an existing
 * FIFO or device is refused, not opened.
 */
static int
serve_open_fd(struct export *ex, const struct proto_req *r, int flags,
    mode_t mode, struct proto_rep *rep)
{
	int fd = -EEXIST, pfd, dfd;

	if (r->type == PROTO_OPEN) {
		if ((pfd = beneath_obj(ex, r->path)) < 0)
			return pfd;
		fd = beneath_reopen(pfd, flags);
		close(pfd);
		return fd;
	}
	if ((dfd = beneath_dir(ex, r->path)) < 0)
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
		fd = beneath_reopen(pfd, flags);
		close(pfd);
	}
	if (fd >= 0)
		serve_dir_attr(dfd, rep);
	close(dfd);
	return fd;
}

/*
 * OPEN or CREATE: a new handle plus the object's attributes.  The slot
 * is reserved first, so a peer over max_handles creates nothing.
 */
int
serve_open_file(struct export *ex, uint32_t owner, const struct proto_req *r,
    struct proto_rep *rep)
{
	int flags = serve_open_flags(r->flags), fd, slot, rc;
	char *path;

	if ((slot = handle_reserve(owner)) < 0)
		return slot;
	if ((fd = serve_open_fd(ex, r, flags, identity_mode(owner, r->mode),
		 rep)) < 0) {
		handle_cancel(slot);
		return fd;
	}
	/* Emptied by O_TRUNC for a caller without CAP_FSETID. */
	if ((flags & O_TRUNC) && (r->flags & PROTO_KILL_SUIDGID) &&
	    (rc = serve_kill_setid(fd)) < 0) {
		close(fd);
		handle_cancel(slot);
		return rc;
	}
	if ((rc = serve_fstat(fd, &rep->attr)) < 0) {
		close(fd);
		handle_cancel(slot);
		return rc;
	}
	if (r->type == PROTO_CREATE)
		path = xpathjoin(r->path, r->name);
	else
		path = xstrdup(r->path);
	rep->fh = handle_new(slot, fd, ex, (flags & O_ACCMODE) != O_RDONLY,
	    path);
	return 0;
}

/*
 * Create a non-regular entry (MKNOD, MKDIR, SYMLINK) and stat it.  A
 * guarded peer gets no device node (EPERM); FIFOs and sockets it may.
 */
int
serve_make(struct export *ex, uint32_t owner, const struct proto_req *r,
    struct proto_rep *rep)
{
	mode_t type = (mode_t)r->mode & S_IFMT;
	char *target;
	int dfd, rc = 0;

	if (r->type == PROTO_MKNOD && (S_ISCHR(type) || S_ISBLK(type)) &&
	    identity_guarded(owner))
		return -EPERM;
	if ((dfd = beneath_dir(ex, r->path)) < 0)
		return dfd;
	switch (r->type) {
	case PROTO_MKNOD:
		if (mknodat(dfd, r->name, type | identity_mode(owner, r->mode),
			(dev_t)r->rdev) == -1)
			rc = -errno;
		break;
	case PROTO_MKDIR:
		if (mkdirat(dfd, r->name, identity_mode(owner, r->mode)) == -1)
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
		rc = serve_statat(dfd, r->name, &rep->attr);
	if (rc == 0)
		serve_dir_attr(dfd, rep);
	close(dfd);
	return rc;
}

/* LINK: a new name in path2/name2 for the object at path. */
int
serve_link(struct export *ex, struct export *ex2, const struct proto_req *r,
    struct proto_rep *rep)
{
	char proc[64];
	int fd, dfd, rc = 0;

	if ((fd = beneath_obj(ex, r->path)) < 0)
		return fd;
	if ((dfd = beneath_dir(ex2, r->path2)) < 0) {
		close(fd);
		return dfd;
	}
	beneath_procpath(fd, proc, sizeof proc);
	if (linkat(AT_FDCWD, proc, dfd, r->name2, AT_SYMLINK_FOLLOW) == -1)
		rc = -errno;
	if (rc == 0)
		rc = serve_statat(dfd, r->name2, &rep->attr);
	if (rc == 0)
		serve_dir_attr(dfd, rep);
	close(fd);
	close(dfd);
	return rc;
}

/* UNLINK, RMDIR. */
int
serve_remove(struct export *ex, const struct proto_req *r,
    struct proto_rep *rep)
{
	int dfd, ofd = -1, rc = 0;

	if ((dfd = beneath_dir(ex, r->path)) < 0)
		return dfd;
	/*
	 * A file with other names: what they show after (its link count
	 * and change time), for the reply (PROTO_CAP_CHANGE_ATTR).
	 */
	if (r->type == PROTO_UNLINK &&
	    (ofd = openat(dfd, r->name, O_PATH | O_NOFOLLOW | O_CLOEXEC)) >=
		0 &&
	    (serve_fstat(ofd, &rep->attr) < 0 || !S_ISREG(rep->attr.mode) ||
		rep->attr.nlink < 2)) {
		close(ofd);
		ofd = -1;
	}
	if (unlinkat(dfd, r->name, r->type == PROTO_RMDIR ? AT_REMOVEDIR : 0) ==
	    -1)
		rc = -errno;
	else {
		serve_dir_attr(dfd, rep);
		rep->has_attr = ofd >= 0 && serve_fstat(ofd, &rep->attr) == 0 &&
		    rep->attr.nlink > 0;
	}
	if (ofd >= 0)
		close(ofd);
	close(dfd);
	return rc;
}

/* RENAME within this peer (flags: RENAME_NOREPLACE, RENAME_EXCHANGE). */
int
serve_rename(struct export *ex, struct export *ex2, const struct proto_req *r)
{
	int dfd, dfd2, rc = 0;

	if ((dfd = beneath_dir(ex, r->path)) < 0)
		return dfd;
	if ((dfd2 = beneath_dir(ex2, r->path2)) < 0) {
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
 * REPLACE: make path/name anew (O_EXCL) with the request's bytes, fsync
 * it, give it the times asked, and rename it over path2/name2: a whole
 * small file moved here in one request.  Until the rename nothing is
 * visible but the temporary name, which any failure removes again, so
 * the destination is the old file or the new one, never a part.
 */
int
serve_replace(struct export *ex, struct export *ex2, uint32_t owner,
    const struct proto_req *r, struct proto_rep *rep)
{
	struct timespec ts[2] = { { r->atime.sec, r->atime.nsec },
		{ r->mtime.sec, r->mtime.nsec } };
	size_t done = 0;
	ssize_t n;
	int dfd, dfd2, fd, rc = 0;

	/* An exchange would leave the old file at the temporary name. */
	if (r->flags & ~(uint32_t)RENAME_NOREPLACE)
		return -EINVAL;
	if ((dfd = beneath_dir(ex, r->path)) < 0)
		return dfd;
	if ((dfd2 = beneath_dir(ex2, r->path2)) < 0) {
		close(dfd);
		return dfd2;
	}
	fd = openat(dfd, r->name,
	    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    identity_mode(owner, r->mode & 07777));
	if (fd == -1) {
		rc = -errno;
		goto out;
	}
	while (rc == 0 && done < r->datalen) {
		n = pwrite(fd, (const char *)r->data + done, r->datalen - done,
		    (off_t)done);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			rc = -errno;
		else if (n == 0)
			rc = -ENOSPC;
		else
			done += (size_t)n;
	}
	if (rc == 0 && fsync(fd) == -1)
		rc = -errno;
	if (rc == 0 && futimens(fd, ts) == -1)
		rc = -errno;
	if (rc == 0)
		rc = serve_fstat(fd, &rep->attr);
	if (rc == 0 && renameat2(dfd, r->name, dfd2, r->name2, r->flags) == -1)
		rc = -errno;
	close(fd);
	if (rc < 0)
		unlinkat(dfd, r->name, 0);
out:
	close(dfd);
	close(dfd2);
	return rc;
}

/*
 * The xattr calls, on the object's /proc path (never on a symlink).
 * Other peers set or remove no trusted.* or security.* attribute.
 */
int
serve_xattr(struct export *ex, uint32_t owner, const struct proto_req *r,
    struct proto_rep *rep, struct export_mem *mem)
{
	struct proto_attr a;
	char proc[64];
	ssize_t n = 0;
	int fd, rc;

	if ((r->type == PROTO_SETXATTR || r->type == PROTO_REMOVEXATTR) &&
	    identity_peer_limited(owner) && identity_xattr_privileged(r->name))
		return -EPERM;
	if ((fd = beneath_obj(ex, r->path)) < 0)
		return fd;
	if ((rc = serve_fstat(fd, &a)) < 0)
		goto out;
	if (S_ISLNK(a.mode)) {
		/* Linux allows no user.* xattrs on links: report none. */
		rc = r->type == PROTO_LISTXATTR ? 0
		    : r->type == PROTO_GETXATTR ? -ENODATA
						: -EPERM;
		goto out;
	}
	beneath_procpath(fd, proc, sizeof proc);
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
		if (r->length > 0 && (mem->data = malloc(r->length)) == NULL) {
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
int
serve_fh_op(uint32_t owner, const struct proto_req *r, struct proto_rep *rep)
{
	off_t off, off2;
	ssize_t n;
	int fd, fd2, rc = 0;

	fd = handle_get(r->fh, owner,
	    r->type == PROTO_STAT ? r->export_id : HANDLE_ANY_EXPORT,
	    r->type == PROTO_FALLOCATE, NULL);
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
		if ((fd2 = handle_get(r->fh2, owner, HANDLE_ANY_EXPORT, true,
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
		handle_put(r->fh2);
		break;
	case PROTO_STAT:
		rc = serve_fstat(fd, &rep->attr);
		break;
	default:
		rc = -EINVAL;
	}
	handle_put(r->fh);
	return rc;
}

/* STAT, READLINK, STATFS, ACCESS, FSYNCDIR: by path. */
int
serve_path_op(struct export *ex, const struct proto_req *r,
    struct proto_rep *rep, struct export_mem *mem)
{
	struct statvfs sv;
	ssize_t n;
	int fd, rc = 0;

	fd = beneath_open(ex, r->path,
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
		for (int tries = 0; (rc = serve_fstat(fd, &rep->attr)) == 0 &&
		     rep->attr.nlink == 0 && !S_ISDIR(rep->attr.mode) &&
		     tries < 8;
		     tries++) {
			close(fd);
			if ((fd = beneath_open(ex, r->path, O_PATH)) < 0)
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
			.bsize = sv.f_bsize,
			.frsize = sv.f_frsize,
			.blocks = sv.f_blocks,
			.bfree = sv.f_bfree,
			.bavail = sv.f_bavail,
			.files = sv.f_files,
			.ffree = sv.f_ffree,
			.favail = sv.f_favail,
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
