/*
 * file.c - the FUSE requests on open files: open, read, write, flush,
 * release, fsync, fallocate, lseek and copy_file_range.  Each goes
 * through the data path (io.c); here are only the kernel's side of it
 * and the reply.  A request that io.c cannot start is answered at once
 * with its error; one it starts is answered from its callback.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <fuse_lowlevel.h>

#include "fs.h"

/* A parked open: the kernel's file info, copied. */
struct file_open {
	fuse_req_t req;
	struct node *node; /* the kernel holds it until the reply */
	struct fuse_file_info fi;
};

/*
 * The holder has nothing at n's name any more: the cached listing of
 * its directory goes stale, so that the kernel's next lookup asks.
 */
static void
file_name_gone(struct node *n)
{
	char *rel, *slash;

	if (n->peer == NULL ||
	    (rel = fsop_relpath(n, n->peer, n->export_id)) == NULL)
		return;
	if ((slash = strrchr(rel, '/')) != NULL)
		*slash = '\0';
	else
		rel[0] = '\0';
	dircache_stale(n->peer, n->export_id, rel);
	free(rel);
}

/* io_open done: reply with the handle, or release it if the kernel left. */
static void
file_open_done(void *arg, int error, struct handle *h, bool keep_cache)
{
	struct file_open *fo = arg;

	if (error == -ENOENT) {
		/*
		 * The name went on another peer and its trap is not here
		 * yet (a journal made and removed between two locks, say).
		 * ESTALE makes the kernel look the name up again
		 * (LOOKUP_REVAL) and open what it finds now.
		 */
		file_name_gone(fo->node);
		error = -ESTALE;
	}
	if (error != 0) {
		fuse_reply_err(fo->req, -error);
		free(fo);
		return;
	}
	fo->fi.keep_cache = keep_cache;
	fo->fi.fh = (uint64_t)(uintptr_t)h;
	fo->fi.direct_io = conf->direct_io;
	if (fuse_reply_open(fo->req, &fo->fi) != 0)
		io_release(h); /* the kernel will never release it */
	free(fo);
}

void
file_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct node *n = fsop_inode(ino);
	struct file_open *fo;
	int err;

	if (n == NULL) {
		fuse_reply_err(req, EIO);
		return;
	}
	fo = xcalloc(1, sizeof *fo);
	fo->req = req;
	fo->node = n;
	fo->fi = *fi;
	if ((err = io_open(n, fi->flags, file_open_done, fo)) < 0) {
		free(fo);
		fuse_reply_err(req, -err);
	}
}

/* io_read done: the bytes go to the kernel from where they lie. */
static void
file_read_done(void *arg, int error, const struct iovec *iov, int n)
{
	fuse_req_t req = arg;

	if (error != 0)
		fuse_reply_err(req, -error);
	else
		fuse_reply_iov(req, iov, n);
}

void
file_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)fi->fh;
	int err;

	(void)ino;
	if ((err = io_read(h, (uint64_t)off, size, file_read_done, req)) < 0)
		fuse_reply_err(req, -err);
}

/* io_write, copy_file_range done: the count written. */
static void
file_count_done(void *arg, int error, const void *data, size_t len)
{
	fuse_req_t req = arg;

	(void)data;
	if (error != 0)
		fuse_reply_err(req, -error);
	else
		fuse_reply_write(req, len);
}

void
file_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
    off_t off, struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)fi->fh;
	int err;

	(void)ino;
	if ((err = io_write(h, (uint64_t)off, buf, size, file_count_done,
		 req)) < 0)
		fuse_reply_err(req, -err);
}

/* An answer that is only an error code. */
static void
file_err_done(void *arg, int error, const void *data, size_t len)
{
	(void)data;
	(void)len;
	fuse_reply_err(arg, -error);
}

/*
 * close(2): what was written goes to the holder before it returns, and
 * the closing owner's POSIX locks of the file go (lock.c).
 */
void
file_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int err;

	(void)ino;
	if ((err = lock_flush(req, (struct handle *)fi->fh, fi->lock_owner)) <
	    0)
		fuse_reply_err(req, -err);
}

void
file_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	lock_release((struct handle *)fi->fh);
	io_release((struct handle *)fi->fh);
	fuse_reply_err(req, 0);
}

void
file_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
    struct fuse_file_info *fi)
{
	int err;

	(void)ino;
	if ((err = io_fsync((struct handle *)fi->fh, datasync != 0,
		 file_err_done, req)) < 0)
		fuse_reply_err(req, -err);
}

void
file_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
    off_t length, struct fuse_file_info *fi)
{
	int err;

	(void)ino;
	if ((err = io_fallocate((struct handle *)fi->fh, mode, (uint64_t)offset,
		 (uint64_t)length, file_err_done, req)) < 0)
		fuse_reply_err(req, -err);
}

/* io_lseek done: the offset. */
static void
file_lseek_done(void *arg, int error, const void *data, size_t off)
{
	fuse_req_t req = arg;

	(void)data;
	if (error != 0)
		fuse_reply_err(req, -error);
	else
		fuse_reply_lseek(req, (off_t)off);
}

void
file_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
    struct fuse_file_info *fi)
{
	int err;

	(void)ino;
	if ((err = io_lseek((struct handle *)fi->fh, (uint64_t)off, whence,
		 file_lseek_done, req)) < 0)
		fuse_reply_err(req, -err);
}

void
file_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
    struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
    struct fuse_file_info *fi_out, size_t len, int flags)
{
	int err;

	(void)ino_in;
	(void)ino_out;
	if (flags != 0)
		err = -EINVAL;
	else
		err = io_copy_range((struct handle *)fi_in->fh,
		    (uint64_t)off_in, (struct handle *)fi_out->fh,
		    (uint64_t)off_out, len, file_count_done, req);
	if (err < 0)
		fuse_reply_err(req, -err);
}
