/*
 * file.c - the FUSE requests on open files: open, read, write, flush,
 * release, fsync, fallocate, lseek and copy_file_range.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include <fuse_lowlevel.h>

#include "fs.h"

/* --- open, read, write, release, fsync --- */

static void
file_open_cb(struct call *c)
{
	struct fsop *op = c->arg;
	struct node *n = op->node;
	const struct proto_attr *a = &c->rep.attr;
	struct handle *h;

	if (c->rep.error != 0) {
		fsop_done(op, c->rep.error);
		return;
	}
	h = io_handle_new(n, c);
	h->flags = op->fi.flags;
	/* Keep the page cache only if the file is as it was. */
	op->fi.keep_cache = n->data_seen && !(op->fi.flags & O_TRUNC) &&
	    n->data_mtime.sec == a->mtime.sec &&
	    n->data_mtime.nsec == a->mtime.nsec && n->data_size == a->size;
	/*
	 * Close-to-open: if the file changed since the kernel last saw its
	 * attributes, make it ask again before it trusts its cached size
	 * (fstat and the read path refresh invalid attributes; the cached
	 * listing was brought up to date by the call layer, so whatever
	 * answers sees these).  Written before the open's reply, so the
	 * kernel's next getattr is newer than the invalidation.  Attributes
	 * only: this takes no inode lock, so it is safe from the loop.
	 */
	if (!op->fi.keep_cache || n->attr.size != a->size ||
	    n->attr.mtime.sec != a->mtime.sec ||
	    n->attr.mtime.nsec != a->mtime.nsec)
		notify_attr_now(n);
	n->data_seen = true;
	n->data_mtime = a->mtime;
	n->data_size = a->size;
	n->attr = *a;
	op->fi.fh = (uint64_t)(uintptr_t)h;
	op->fi.direct_io = conf->direct_io;
	if (fuse_reply_open(op->req, &op->fi) != 0) {
		struct call *rc = call_new(h->peer, PROTO_RELEASE,
		    h->export_id, NULL, io_release_cb, NULL);

		rc->req.fh = h->fh;
		call_send(rc);
		io_handle_free(h);
	}
	fsop_free(op);
}

void
file_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct call *c;
	struct fsop *op;

	fsop_simple(req, ino, PROTO_OPEN, file_open_cb, &c);
	if (c == NULL)
		return;
	op = c->arg;
	if (op->node->isdir) {
		/* Directories are opened through opendir. */
		op->fi = *fi;
	}
	op->fi = *fi;
	c->req.flags = (uint32_t)fi->flags;
	call_send(c);
}

/* io_read done: the bytes go straight to the kernel. */
static void
file_read_done(void *arg, int error, const void *data, size_t len)
{
	fuse_req_t req = arg;

	if (error != 0)
		fuse_reply_err(req, -error);
	else
		fuse_reply_buf(req, data, len);
}

void
file_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)fi->fh;

	(void)ino;
	io_read(h, (uint64_t)off, size, file_read_done, req);
}

/* io_write done: other names of a hard-linked file must re-read. */
static void
file_write_done(void *arg, int error, const void *data, size_t len)
{
	struct fsop *op = arg;

	(void)data;
	if (error == 0 && op->node->attr.nlink > 1)
		notify_links(op->node);
	if (error != 0)
		fuse_reply_err(op->req, -error);
	else
		fuse_reply_write(op->req, len);
	fsop_free(op);
}

void
file_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
    off_t off, struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)fi->fh;
	struct fsop *op = fsop_new(req, PROTO_WRITE);

	(void)ino;
	op->node = h->node;
	node_ref(h->node);
	io_write(h, (uint64_t)off, buf, size, file_write_done, op);
}

void
file_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* Writes are synchronous with the holder: nothing is pending. */
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

void
file_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)fi->fh;
	struct call *c;

	(void)ino;
	if (io_handle_live(h)) {
		c = call_new(h->peer, PROTO_RELEASE, h->export_id, NULL,
		    io_release_cb, NULL);
		c->req.fh = h->fh;
		call_send(c);
	}
	io_handle_free(h);
	fuse_reply_err(req, 0);
}

/* A call on an open handle, answered by cb. */
static struct call *
file_handle_call(fuse_req_t req, struct fuse_file_info *fi, uint8_t type,
    void (*cb)(struct call *))
{
	struct handle *h = (struct handle *)fi->fh;
	struct fsop *op = fsop_new(req, type);
	struct call *c;

	if (!io_handle_live(h)) {
		fsop_done(op, EIO);
		return NULL;
	}
	c = call_new(h->peer, type, h->export_id, NULL, cb, op);
	c->req.fh = h->fh;
	return c;
}

void
file_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
    struct fuse_file_info *fi)
{
	struct call *c = file_handle_call(req, fi, PROTO_FSYNC, fsop_err_cb);

	(void)ino;
	if (c == NULL)
		return;
	c->req.flags = datasync ? 1 : 0;
	call_send(c);
}

void
file_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
    off_t length, struct fuse_file_info *fi)
{
	struct call *c = file_handle_call(req, fi, PROTO_FALLOCATE, fsop_err_cb);

	(void)ino;
	if (c == NULL)
		return;
	c->req.flags = (uint32_t)mode;
	c->req.offset = (uint64_t)offset;
	c->req.length = (uint64_t)length;
	call_send(c);
}

/* An answer that is a number: an offset (lseek) or a count (copy). */
static void
file_value_cb(struct call *c)
{
	struct fsop *op = c->arg;

	if (c->rep.error != 0) {
		fsop_done(op, c->rep.error);
		return;
	}
	if (c->req.type == PROTO_LSEEK)
		fuse_reply_lseek(op->req, (off_t)c->rep.value);
	else
		fuse_reply_write(op->req, (size_t)c->rep.value);
	fsop_free(op);
}

void
file_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
    struct fuse_file_info *fi)
{
	struct call *c = file_handle_call(req, fi, PROTO_LSEEK, file_value_cb);

	(void)ino;
	if (c == NULL)
		return;
	c->req.offset = (uint64_t)off;
	c->req.flags = (uint32_t)whence;
	call_send(c);
}

void
file_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
    struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
    struct fuse_file_info *fi_out, size_t len, int flags)
{
	struct handle *hi = (struct handle *)fi_in->fh;
	struct handle *ho = (struct handle *)fi_out->fh;
	struct call *c;

	(void)ino_in;
	(void)ino_out;
	if (flags != 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (hi->peer != ho->peer) {
		fuse_reply_err(req, EXDEV);
		return;
	}
	c = file_handle_call(req, fi_in, PROTO_COPY_RANGE, file_value_cb);
	if (c == NULL)
		return;
	c->req.offset = (uint64_t)off_in;
	c->req.fh2 = ho->fh;
	c->req.offset2 = (uint64_t)off_out;
	c->req.length = len;
	call_send(c);
}

