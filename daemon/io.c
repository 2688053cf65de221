/*
 * io.c - the data path: every operation that reads, writes, sizes, syncs
 * or invalidates the data of a file of the union, and the handles it
 * goes through.
 *
 * Today each request becomes one call to the file's holder, moved in one
 * frame of up to the kernel's request size.  This is the one place the
 * block cache (write-behind, read-ahead, invalidation) will sit, so that
 * nothing else in the daemon needs to know whether data came from a
 * holder or from memory.  A function that starts a call returns 0 and
 * its callback runs once, later; one that cannot start returns a
 * negative errno and its callback never runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"

/* A request in flight: whom to tell. */
struct io_op {
	io_done_cb cb;
	io_open_cb ocb;
	io_attr_cb acb;
	void *arg;
	struct node *node; /* holds a ref (open, setattr) */
	struct handle *h;
	int flags; /* open flags */
};

/* A new request in flight for arg. */
static struct io_op *
io_op_new(void *arg)
{
	struct io_op *op = xcalloc(1, sizeof *op);

	op->arg = arg;
	return op;
}

/* Forget a request in flight. */
static void
io_op_free(struct io_op *op)
{
	if (op->node != NULL)
		node_unref(op->node);
	free(op);
}

/* --- handles --- */

/* Whether the handle's holder still has it (same stream, peer up). */
bool
io_handle_live(const struct handle *h)
{
	return h->peer->state == PEER_UP && h->epoch == h->peer->epoch;
}

/* The RELEASE of a closed handle came back; nobody waits for it. */
static void
io_release_cb(struct call *c)
{
	if (c->rep.error != 0)
		log_debug("release: %s", strerror(-c->rep.error));
}

/* A handle for the file node n opened by call c (OPEN or CREATE). */
static struct handle *
io_handle_new(struct node *n, struct call *c, int flags)
{
	struct handle *h = xcalloc(1, sizeof *h);

	h->node = n;
	node_ref(n);
	h->peer = c->peer;
	h->epoch = c->peer->epoch;
	h->export_id = c->req.export_id;
	h->fh = c->rep.fh;
	h->flags = flags;
	TAILQ_INSERT_TAIL(&n->handles, h, nentry);
	return h;
}

/* Close a handle: its holder is told (if it still has it), h is freed. */
void
io_release(struct handle *h)
{
	struct call *c;

	if (io_handle_live(h)) {
		c = call_new(h->peer, PROTO_RELEASE, h->export_id, NULL,
		    io_release_cb, NULL);
		c->req.fh = h->fh;
		call_send(c);
	}
	TAILQ_REMOVE(&h->node->handles, h, nentry);
	node_unref(h->node);
	free(h);
}

/*
 * A live open handle of n, if any: attributes asked without one still go
 * by handle, so an open file renamed or unlinked elsewhere still answers.
 */
struct handle *
io_handle_any(struct node *n)
{
	struct handle *h;

	TAILQ_FOREACH(h, &n->handles, nentry)
	if (io_handle_live(h))
		return h;
	return NULL;
}

/* --- open, create --- */

/* The kernel's page cache of n is now filled from a file with attr a. */
static void
io_seen(struct node *n, const struct proto_attr *a)
{
	n->data_seen = true;
	n->data_mtime = a->mtime;
	n->data_size = a->size;
}

/* An OPEN came back: a handle, and whether the page cache still holds. */
static void
io_open_done(struct call *c)
{
	struct io_op *op = c->arg;
	struct node *n = op->node;
	const struct proto_attr *a = &c->rep.attr;
	struct handle *h;
	bool keep;

	if (c->rep.error != 0) {
		op->ocb(op->arg, c->rep.error, NULL, false);
		io_op_free(op);
		return;
	}
	h = io_handle_new(n, c, op->flags);
	/* Keep the page cache only if the file is as it was. */
	keep = n->data_seen && !(op->flags & O_TRUNC) &&
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
	if (!keep || n->attr.size != a->size ||
	    n->attr.mtime.sec != a->mtime.sec ||
	    n->attr.mtime.nsec != a->mtime.nsec)
		notify_attr_now(n);
	io_seen(n, a);
	n->attr = *a;
	op->ocb(op->arg, 0, h, keep);
	io_op_free(op);
}

/* Open file node n with flags; cb gets the handle and keep_cache. */
int
io_open(struct node *n, int flags, io_open_cb cb, void *arg)
{
	struct io_op *op = io_op_new(arg);
	struct call *c;
	int err = 0;

	op->ocb = cb;
	op->flags = flags;
	if ((c = fsop_call(n, PROTO_OPEN, io_open_done, op, &err)) == NULL) {
		free(op);
		return -err;
	}
	op->node = n;
	node_ref(n);
	c->req.flags = (uint32_t)flags;
	if (kernel_kill_suidgid())
		c->req.flags |= PROTO_KILL_SUIDGID;
	call_send(c);
	return 0;
}

/* A CREATE of file node n answered by call c: its handle. */
struct handle *
io_created(struct node *n, struct call *c, int flags)
{
	struct handle *h = io_handle_new(n, c, flags);

	io_seen(n, &c->rep.attr);
	return h;
}

/* --- read, write --- */

/* The file of handle h changed: stale its directory's cached listing. */
static void
io_changed(struct handle *h)
{
	char *rel;

	if ((rel = fsop_relpath(h->node, h->peer, h->export_id)) != NULL)
		dircache_changed(h->peer, h->export_id, rel);
	free(rel);
}

/* A READ came back: hand the bytes to the requester. */
static void
io_read_cb(struct call *c)
{
	struct io_op *op = c->arg;

	op->cb(op->arg, c->rep.error, c->rep.data, c->rep.datalen);
	io_op_free(op);
}

/* A WRITE came back: report the count written. */
static void
io_write_cb(struct call *c)
{
	struct io_op *op = c->arg;

	if (c->rep.error == 0) {
		/* Its size and times in its directory's listing are old. */
		io_changed(op->h);
		/* Other names of a hard-linked file must re-read. */
		if (op->h->node->attr.nlink > 1)
			io_forget_links(op->h->node);
	}
	op->cb(op->arg, c->rep.error, NULL, (size_t)c->rep.value);
	io_op_free(op);
}

/* An answer that is a number (a count, an offset) or only an error. */
static void
io_value_cb(struct call *c)
{
	struct io_op *op = c->arg;

	op->cb(op->arg, c->rep.error, NULL, (size_t)c->rep.value);
	io_op_free(op);
}

/* Start a call of type on the handle's holder; NULL if it is gone. */
static struct call *
io_call(struct handle *h, uint8_t type, uint64_t off,
    void (*done)(struct call *), io_done_cb cb, void *arg)
{
	struct io_op *op;
	struct call *c;

	if (!io_handle_live(h))
		return NULL;
	op = io_op_new(arg);
	op->cb = cb;
	op->h = h;
	c = call_new(h->peer, type, h->export_id, NULL, done, op);
	c->req.fh = h->fh;
	c->req.offset = off;
	return c;
}

/* Read size bytes at off; cb gets the data (valid during cb only). */
int
io_read(struct handle *h, uint64_t off, size_t size, io_done_cb cb, void *arg)
{
	struct call *c = io_call(h, PROTO_READ, off, io_read_cb, cb, arg);

	if (c == NULL)
		return -EIO;
	c->req.length = size;
	call_send(c);
	return 0;
}

/* Write size bytes at off (copied); cb gets the count written. */
int
io_write(struct handle *h, uint64_t off, const void *data, size_t size,
    io_done_cb cb, void *arg)
{
	struct call *c = io_call(h, PROTO_WRITE, off, io_write_cb, cb, arg);

	if (c == NULL)
		return -EIO;
	if (kernel_kill_suidgid())
		c->req.flags = PROTO_KILL_SUIDGID;
	call_set_data(c, data, size);
	call_send(c);
	return 0;
}

/* --- size, sync, space --- */

/* Writes are synchronous with the holder: nothing is pending. */
int
io_flush(struct handle *h)
{
	(void)h;
	return 0;
}

/* Flush the file's data (and metadata unless datasync) to its disk. */
int
io_fsync(struct handle *h, bool datasync, io_done_cb cb, void *arg)
{
	struct call *c = io_call(h, PROTO_FSYNC, 0, io_value_cb, cb, arg);

	if (c == NULL)
		return -EIO;
	c->req.flags = datasync ? 1 : 0;
	call_send(c);
	return 0;
}

/* fallocate(2) mode over [off, off + len). */
int
io_fallocate(struct handle *h, int mode, uint64_t off, uint64_t len,
    io_done_cb cb, void *arg)
{
	struct call *c = io_call(h, PROTO_FALLOCATE, off, io_value_cb, cb, arg);

	if (c == NULL)
		return -EIO;
	c->req.flags = (uint32_t)mode;
	c->req.length = len;
	call_send(c);
	return 0;
}

/* lseek(2) SEEK_DATA / SEEK_HOLE; cb gets the offset. */
int
io_lseek(struct handle *h, uint64_t off, int whence, io_done_cb cb, void *arg)
{
	struct call *c = io_call(h, PROTO_LSEEK, off, io_value_cb, cb, arg);

	if (c == NULL)
		return -EIO;
	c->req.flags = (uint32_t)whence;
	call_send(c);
	return 0;
}

/* Copy len bytes from hi at off_in to ho at off_out, on one holder. */
int
io_copy_range(struct handle *hi, uint64_t off_in, struct handle *ho,
    uint64_t off_out, size_t len, io_done_cb cb, void *arg)
{
	struct call *c;

	if (hi->peer != ho->peer)
		return -EXDEV;
	if ((c = io_call(hi, PROTO_COPY_RANGE, off_in, io_value_cb, cb, arg)) ==
	    NULL)
		return -EIO;
	c->req.fh2 = ho->fh;
	c->req.offset2 = off_out;
	c->req.length = len;
	call_send(c);
	return 0;
}

/* A SETATTR of a file came back with its new attributes. */
static void
io_setattr_cb(struct call *c)
{
	struct io_op *op = c->arg;

	op->acb(op->arg, c->rep.error, c->rep.error == 0 ? &c->rep.attr : NULL);
	io_op_free(op);
}

/*
 * Change the attributes of file node n, its size among them (truncate):
 * through handle h if it is live, else by path.  set holds the SETATTR
 * fields (valid and the values).
 */
int
io_setattr(struct node *n, struct handle *h, const struct proto_req *set,
    io_attr_cb cb, void *arg)
{
	struct io_op *op = io_op_new(arg);
	struct call *c;
	char *rel;
	int err = 0;

	op->acb = cb;
	if (h != NULL && io_handle_live(h)) {
		rel = fsop_relpath(n, h->peer, h->export_id);
		c = call_new(h->peer, PROTO_SETATTR, h->export_id, rel,
		    io_setattr_cb, op);
		free(rel);
		c->req.fh = h->fh;
	} else if ((c = fsop_call(n, PROTO_SETATTR, io_setattr_cb, op, &err)) ==
	    NULL) {
		free(op);
		return -err;
	}
	c->req.valid = set->valid;
	c->req.mode = set->mode;
	c->req.uid = set->uid;
	c->req.gid = set->gid;
	c->req.offset = set->offset;
	c->req.atime = set->atime;
	c->req.mtime = set->mtime;
	call_send(c);
	return 0;
}

/* --- invalidation --- */

/* The kernel must forget its cached data of n in [off, off + len). */
void
io_forget(struct node *n, uint64_t off, uint64_t len)
{
	if (n->nlookup > 0)
		notify_inode(n->id, (int64_t)off, (int64_t)len);
}

/* n is another file now (moved to another holder): forget its data. */
void
io_forget_all(struct node *n)
{
	n->data_seen = false;
	notify_inval(n, 0);
}

/*
 * The object behind n changed through n (its link count, or its data):
 * every other name of it, a separate inode to the kernel, must re-ask.
 */
void
io_forget_links(struct node *n)
{
	notify_links(n);
}
