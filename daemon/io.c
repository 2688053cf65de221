/*
 * io.c - the data path: every operation that reads, writes, sizes, syncs
 * or invalidates the data of a file of the union, and the handles it
 * goes through.
 *
 * Reads and writes go through the block cache (cache/block-cache.c):
 * io-read.c answers reads from it and fetches ahead of sequential
 * readers, io-write.c puts writes in it and writes them back to the
 * holder behind the writer.  Here are the handles, open and release, the
 * file state both share, and the operations that need the holder's view
 * of the file (truncate, fallocate, copy_file_range, lseek): those first
 * wait until the file has no dirty byte (io_barrier()).  Nothing else in
 * the daemon needs to know whether data came from a holder or from
 * memory.  A function that starts a call returns 0 and its callback runs
 * once, later; one that cannot start returns a negative errno and its
 * callback never runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster.h"
#include "io-int.h"

/* A request in flight: whom to tell. */
struct io_op {
	io_done_cb cb;
	io_open_cb ocb;
	io_attr_cb acb;
	void *arg;
	struct node *node; /* holds a ref (open, setattr) */
	struct handle *h, *h2;
	struct io_file *f; /* pinned (an fsync behind its write-back) */
	int error;         /* its FSYNC's answer */
	int flags;         /* open flags */
	/* A request held until the file is clean (io_barrier). */
	uint8_t type;
	uint64_t off, off2, len;
	int mode;
	struct proto_req set;
	bool retried;  /* a SETATTR sent again through a handle once */
	bool borrowed; /* a SETATTR sent behind by another's handle */
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
	io_file_get(n);
	return h;
}

/* Tell the holder h is closed, and free it. */
static void
io_release_now(struct handle *h)
{
	struct node *n = h->node;
	struct call *c;

	if (io_handle_live(h)) {
		c = call_new(h->peer, PROTO_RELEASE, h->export_id, NULL,
		    io_release_cb, NULL);
		c->req.fh = h->fh;
		call_send(c);
	}
	TAILQ_REMOVE(&n->handles, h, nentry);
	if (n->io != NULL)
		io_file_put(n->io);
	node_unref(n);
	free(h);
}

/* The write-back a closing handle waited for ended. */
static void
io_release_flushed(void *arg, int error, const void *data, size_t len)
{
	struct handle *h = arg;

	(void)data;
	(void)len;
	if (error != 0)
		log_debug("release: write-back: %s", strerror(-error));
	io_release_now(h);
}

/*
 * Close a handle: its holder is told (if it still has it), h is freed.
 * If the file still has dirty bytes and h is the last handle that can
 * write them, they go back first (the kernel sends no more writes
 * after its release).
 */
void
io_release(struct handle *h)
{
	struct handle *o;
	bool other = false;

	h->closing = true;
	TAILQ_FOREACH(o, &h->node->handles, nentry)
	if (o != h && !o->closing && io_handle_writes(o) && io_handle_live(o))
		other = true;
	if (!other && io_handle_writes(h) && io_dirty(h->node) &&
	    io_barrier(h->node, io_release_flushed, h) == 0)
		return;
	io_release_now(h);
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
	/* Our own blocks are as old as the kernel's pages, unless dirty. */
	if (!keep && !io_dirty(n)) {
		block_cache_invalidate(io.bc, n->id, 0, 0);
		n->wsize = 0;
	}
	h = io_handle_new(n, c, op->flags);
	n->io->size_unsure = false;
	io_seen(n, a);
	if (!io_dirty(n)) {
		n->attr = *a;
		union_rekey(n);
	}
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
	if ((c = fsop_call_flags(n, PROTO_OPEN, (uint32_t)flags, io_open_done,
		 op, &err)) == NULL) {
		free(op);
		return err; /* negative, as fsop_call_flags() sets it */
	}
	op->node = n;
	node_ref(n);
	if (kernel_kill_suidgid())
		c->req.flags |= PROTO_KILL_SUIDGID;
	call_send(c);
	return 0;
}

/* A CREATE of file node n answered by call c: its handle. */
struct handle *
io_created(struct node *n, struct call *c, int flags)
{
	struct handle *h;

	/* A new file: whatever was cached under this node is not it. */
	if (!io_dirty(n))
		block_cache_invalidate(io.bc, n->id, 0, 0);
	h = io_handle_new(n, c, flags);
	/* Only O_EXCL says the holder made it: else it may open another's. */
	h->made = (flags & O_EXCL) != 0;
	n->wsize = 0;
	io_seen(n, &c->rep.attr);
	return h;
}

/* --- calls on a handle --- */

/* An answer that is a number (a count, an offset) or only an error. */
static void
io_value_cb(struct call *c)
{
	struct io_op *op = c->arg;

	op->cb(op->arg, c->rep.error, NULL, (size_t)c->rep.value);
	io_op_free(op);
}

/* --- the holder's view: flush, fsync, barrier --- */

/* The file is clean: ask the holder to sync it, or report the error. */
static void
io_fsync_clean(void *arg, int error, const void *data, size_t len)
{
	struct io_op *op = arg;
	struct call *c;

	(void)data;
	(void)len;
	if (error == 0 &&
	    (c = io_call_new(op->h, PROTO_FSYNC, 0, io_value_cb, op)) == NULL)
		error = -EIO;
	if (error == 0)
		io.st.fsync_after++;
	if (error != 0) {
		op->cb(op->arg, error, NULL, 0);
		io_op_free(op);
		return;
	}
	c->req.flags = op->flags;
	call_send(c);
}

/*
 * The FSYNC sent behind the write-back is answered, and so (answered
 * first on the same stream) are the WRITEs it followed: the fsync's
 * answer is their error if one failed (taken from the file once, as a
 * flush takes it), else the FSYNC's.
 */
static void
io_fsync_behind_end(void *arg, int error, const void *data, size_t len)
{
	struct io_op *op = arg;
	struct io_file *f = op->f;

	(void)data;
	(void)len;
	op->cb(op->arg, error != 0 ? error : op->error, NULL, 0);
	io_op_free(op);
	io_file_unpin(f);
}

/* The FSYNC sent behind the write-back came back. */
static void
io_fsync_behind_cb(struct call *c)
{
	struct io_op *op = c->arg;

	op->error = c->rep.error;
	io_sync_start(op->f, true, io_fsync_behind_end, op);
}

/*
 * Whether h's holder runs a request of capability cap (FSYNC_ORDER,
 * SETATTR_ORDER) after those through h that came before it: not our own
 * export, nor a replicated one, whose writes go to several.
 */
static bool
io_orders(const struct handle *h, uint64_t cap)
{
	return !h->peer->self && !cluster_export(h->peer, h->export_id) &&
	    (stream_caps(h->peer->stream) & cap) != 0;
}

/*
 * Send every dirty byte of f back now, for a request to go right behind
 * them: the live handle the frames in flight went by (h, which may be
 * NULL, when none are), or NULL if some bytes could not go yet, or the
 * frames went by more than one handle or by another peer than h's.
 */
static struct handle *
io_push_all(struct io_file *f, struct handle *h)
{
	struct handle *wh;

	f->wb_all = true;
	io_wb_push(f);
	f->wb_all = false;
	if (block_cache_file_dirty(io.bc, f->key) > 0)
		return NULL;
	if (f->wb_frames == 0 && f->sa_frames == 0)
		return h;
	if (f->wb_mixed || (h != NULL && f->wb_peer != h->peer))
		return NULL;
	TAILQ_FOREACH(wh, &f->node->handles, nentry)
	if (wh->fh == f->wb_fh && wh->peer == f->wb_peer && io_handle_live(wh))
		return wh;
	return NULL;
}

/*
 * On a holder that runs an FSYNC after the WRITEs through its handle
 * that came before it (PROTO_CAP_FSYNC_ORDER): every dirty byte of f
 * goes back now and the FSYNC right behind it, by the handle the frames
 * went by, without waiting for their answers: one round trip, not two.
 * False if that cannot be (our own export, a replicated file, bytes that
 * could not go yet, frames in flight by another handle or by more than
 * one): the caller waits until the file is clean, then sends FSYNC.
 */
static bool
io_fsync_behind(struct io_file *f, struct io_op *op)
{
	struct handle *wh;
	struct call *c;

	if (!io_orders(op->h, PROTO_CAP_FSYNC_ORDER) ||
	    (wh = io_push_all(f, op->h)) == NULL)
		return false;
	if ((c = io_call_new(wh, PROTO_FSYNC, 0, io_fsync_behind_cb, op)) ==
	    NULL)
		return false;
	c->req.flags = (uint32_t)op->flags;
	op->f = f;
	io_file_pin(f);
	io.st.fsync_behind++;
	call_send(c);
	return true;
}

/* Flush the file's data (and metadata unless datasync) to its disk. */
int
io_fsync(struct handle *h, bool datasync, io_done_cb cb, void *arg)
{
	struct io_file *f;
	struct io_op *op;

	if (!io_handle_live(h))
		return -EIO;
	/* Then to the other replicas. */
	cluster_flush_wrap(h, true, &cb, &arg);
	op = io_op_new(arg);
	op->cb = cb;
	op->h = h;
	op->flags = datasync ? 1 : 0;
	f = io_file_get(h->node);
	if (!io_fsync_behind(f, op))
		io_sync_start(f, true, io_fsync_clean, op);
	return 0;
}

/* --- size, space, copies: after a barrier --- */

/*
 * A held request came back: a fallocate or copy_file_range drops the
 * cached bytes it changed on the holder, and may make the file longer.
 */
static void
io_held_done(struct call *c)
{
	struct io_op *op = c->arg;
	struct handle *h = op->h2 != NULL ? op->h2 : op->h; /* the file's */
	struct node *node = h->node;
	uint64_t off = op->h2 != NULL ? op->off2 : op->off;
	uint64_t n = op->type == PROTO_COPY_RANGE ? c->rep.value : op->len;

	/*
	 * A file never written or read here has no io_file: its size too.
	 * Its size and blocks in its directory's listing are old now.
	 */
	if (c->rep.error == 0 && op->type != PROTO_LSEEK) {
		char *rel = fsop_relpath(node, h->peer, h->export_id);

		if (node->io != NULL)
			block_cache_invalidate(io.bc, node->io->key, off, n);
		if (n > 0 && off + n > node->attr.size &&
		    !(op->type == PROTO_FALLOCATE &&
			(op->mode & FALLOC_FL_KEEP_SIZE)))
			node->attr.size = off + n;
		if (rel != NULL)
			dircache_changed(h->peer, h->export_id, rel);
		free(rel);
	}
	op->cb(op->arg, c->rep.error, NULL, (size_t)c->rep.value);
	io_op_free(op);
}

/* A held request's file is clean: send it. */
static void
io_held_send(void *arg, int error, const void *data, size_t len)
{
	struct io_op *op = arg;
	struct call *c;

	(void)data;
	(void)len;
	if (error == 0 &&
	    (c = io_call_new(op->h, op->type, op->off, io_held_done, op)) ==
		NULL)
		error = -EIO;
	if (error != 0) {
		op->cb(op->arg, error, NULL, 0);
		io_op_free(op);
		return;
	}
	switch (op->type) {
	case PROTO_FALLOCATE:
		c->req.flags = (uint32_t)op->mode;
		c->req.length = op->len;
		break;
	case PROTO_LSEEK:
		c->req.flags = (uint32_t)op->mode;
		break;
	case PROTO_COPY_RANGE:
		c->req.fh2 = op->h2->fh;
		c->req.offset2 = op->off2;
		c->req.length = op->len;
		break;
	}
	call_send(c);
}

/* The file of the second handle must be clean too (copy_file_range). */
static void
io_held_second(void *arg, int error, const void *data, size_t len)
{
	struct io_op *op = arg;

	if (error != 0) {
		io_held_send(op, error, data, len);
		return;
	}
	io_barrier(op->h2->node, io_held_send, op);
}

/* Hold a request on h until its file (and h2's) is clean, then send it. */
static int
io_held(struct handle *h, struct handle *h2, uint8_t type, uint64_t off,
    uint64_t off2, uint64_t len, int mode, io_done_cb cb, void *arg)
{
	struct io_op *op;

	if (!io_handle_live(h) || (h2 != NULL && !io_handle_live(h2)))
		return -EIO;
	op = io_op_new(arg);
	op->cb = cb;
	op->h = h;
	op->h2 = h2;
	op->type = type;
	op->off = off;
	op->off2 = off2;
	op->len = len;
	op->mode = mode;
	io_barrier(h->node, h2 != NULL ? io_held_second : io_held_send, op);
	return 0;
}

/* fallocate(2) mode over [off, off + len). */
int
io_fallocate(struct handle *h, int mode, uint64_t off, uint64_t len,
    io_done_cb cb, void *arg)
{
	return io_held(h, NULL, PROTO_FALLOCATE, off, 0, len, mode, cb, arg);
}

/* lseek(2) SEEK_DATA / SEEK_HOLE; cb gets the offset. */
int
io_lseek(struct handle *h, uint64_t off, int whence, io_done_cb cb, void *arg)
{
	return io_held(h, NULL, PROTO_LSEEK, off, 0, 0, whence, cb, arg);
}

/* Copy len bytes from hi at off_in to ho at off_out, on one holder. */
int
io_copy_range(struct handle *hi, uint64_t off_in, struct handle *ho,
    uint64_t off_out, size_t len, io_done_cb cb, void *arg)
{
	if (hi->peer != ho->peer)
		return -EXDEV;
	return io_held(hi, ho, PROTO_COPY_RANGE, off_in, off_out, len, 0, cb,
	    arg);
}

static void io_setattr_cb(struct call *);

/* The fields op changes, into its SETATTR c. */
static void
io_setattr_fill(struct call *c, const struct io_op *op)
{
	c->req.valid = op->set.valid;
	c->req.mode = op->set.mode;
	c->req.uid = op->set.uid;
	c->req.gid = op->set.gid;
	c->req.offset = op->set.offset;
	c->req.atime = op->set.atime;
	c->req.mtime = op->set.mtime;
}

/* op's SETATTR through live handle h, by its path there too. */
static struct call *
io_setattr_call(struct io_op *op, struct handle *h)
{
	char *rel = fsop_relpath(op->node, h->peer, h->export_id);
	struct call *c = call_new(h->peer, PROTO_SETATTR, h->export_id, rel,
	    io_setattr_cb, op);

	free(rel);
	c->req.fh = h->fh;
	io_setattr_fill(c, op);
	return c;
}

/* The file is clean: send the held SETATTR, by handle if it is live. */
static void
io_setattr_send(void *arg, int error, const void *data, size_t len)
{
	struct io_op *op = arg;
	struct node *n = op->node;
	struct handle *h = op->h;
	struct call *c;
	int err = 0;

	(void)data;
	(void)len;
	if (error != 0) {
		op->acb(op->arg, error, NULL);
		io_op_free(op);
		return;
	}
	/* No name any more: by a handle of it (by path, ENOENT). */
	if ((h == NULL || !io_handle_live(h)) && node_unnamed(n) &&
	    (h = io_handle_any(n)) != NULL && h->fh == 0)
		h = NULL;
	if (h != NULL && io_handle_live(h))
		c = io_setattr_call(op, h);
	else if ((c = fsop_call(n, PROTO_SETATTR, io_setattr_cb, op, &err)) ==
	    NULL) {
		op->acb(op->arg, err, NULL);
		io_op_free(op);
		return;
	} else
		io_setattr_fill(c, op);
	call_send(c);
}

/* A SETATTR of a file came back with its new attributes. */
static void
io_setattr_cb(struct call *c)
{
	struct io_op *op = c->arg;
	struct io_file *f = op->node->io;
	struct handle *h;
	int err = c->rep.error;

	if (err == -ENOENT && c->req.fh == 0 && !op->retried &&
	    (h = io_handle_any(op->node)) != NULL) {
		/* Unlinked or renamed away, but open here: change the file. */
		op->retried = true;
		call_send(io_setattr_call(op, h));
		return;
	}
	if (op->borrowed && (err == -EBADF || err == -ESTALE || err == -EIO)) {
		/*
		 * Sent behind the write-back through a handle its caller
		 * did not give, which was closed meanwhile: the old way.
		 */
		op->borrowed = false;
		io_barrier(op->node, io_setattr_send, op);
		return;
	}
	if (err == 0 && (op->set.valid & FUSE_SET_ATTR_SIZE)) {
		block_cache_truncate(io.bc, op->node->id, op->set.offset);
		/* Open here or not: a size written here before is past. */
		op->node->wsize = op->set.offset;
		/* The kernel will ask again; what it gets is these. */
		op->node->attr.size = c->rep.attr.size;
		if (f != NULL)
			f->size_unsure = false;
	}
	op->acb(op->arg, c->rep.error, c->rep.error == 0 ? &c->rep.attr : NULL);
	io_op_free(op);
}

/*
 * What a SETATTR will make of the attributes in *a, as the holder's
 * kernel makes it (io_setattr_foreseen() says when that is sure).  The
 * change time stays until the holder's answer brings its own: a time
 * read off our clock would order wrongly against the holder's.
 */
static void
io_setattr_apply(struct proto_attr *a, const struct proto_req *set)
{
	struct timespec ts;
	struct proto_time now;

	clock_gettime(CLOCK_REALTIME, &ts);
	now.sec = (int64_t)ts.tv_sec;
	now.nsec = (uint32_t)ts.tv_nsec;
	if (set->valid & PROTO_SET_MODE)
		a->mode = (a->mode & S_IFMT) | (set->mode & 07777);
	if (set->valid & PROTO_SET_UID)
		a->uid = set->uid;
	if (set->valid & PROTO_SET_GID)
		a->gid = set->gid;
	if (set->valid & PROTO_SET_ATIME_NOW)
		a->atime = now;
	else if (set->valid & PROTO_SET_ATIME)
		a->atime = set->atime;
	if (set->valid & PROTO_SET_MTIME_NOW)
		a->mtime = now;
	else if (set->valid & PROTO_SET_MTIME)
		a->mtime = set->mtime;
}

/*
 * Whether the holder's answer to the SETATTR of op, to go by handle wh,
 * is known before it comes: the mount's kernel checked the caller as
 * the holder will (default_permissions), on a file that wh's CREATE
 * made (O_EXCL: tar, cp, mkstemp), so that its owner is whom the holder
 * made it for, and what is
 * set is what the file will show.  Not for a size; not for set-ID bits
 * asked or kept (a holder guarding its privilege clears them, a chown
 * clears them); not for a new owner or group (a guarding holder gives
 * files to nobody else); not for a file with other names, or whose
 * attributes may be old.
 */
static bool
io_setattr_foreseen(const struct io_op *op, const struct handle *wh)
{
	const struct node *n = op->node;
	const struct proto_req *set = &op->set;
	const uint32_t setid = S_ISUID | S_ISGID;

	if (!wh->made || (set->valid & PROTO_SET_SIZE) || n->io == NULL ||
	    n->io->size_unsure || n->attr.nlink > 1 || (n->attr.mode & setid))
		return false;
	if ((set->valid & PROTO_SET_MODE) && (set->mode & setid))
		return false;
	if ((set->valid & PROTO_SET_UID) && set->uid != n->attr.uid)
		return false;
	if ((set->valid & PROTO_SET_GID) && set->gid != n->attr.gid)
		return false;
	return true;
}

/*
 * The holder answered a SETATTR answered here before it.  The last of
 * them brings the file's attributes (no WRITE went after it: see
 * io_wb_push()).  A failure is the next flush's or fsync's to report,
 * as a write-back's, and what the kernel was shown is asked again.
 */
static void
io_setattr_deferred_cb(struct call *c)
{
	struct io_op *op = c->arg;
	struct node *n = op->node;
	struct io_file *f = n->io;
	int err = c->rep.error;
	char *rel;

	if (op->borrowed && (err == -EBADF || err == -ESTALE || err == -EIO)) {
		/*
		 * Another's handle, closed meanwhile: through another that
		 * is open, else by path, if the name is still the file's.
		 */
		struct handle *h;
		struct call *c2 = NULL;

		op->borrowed = false;
		TAILQ_FOREACH(h, &n->handles, nentry)
		if (io_handle_live(h) && !h->closing && h->fh != 0 &&
		    h->fh != c->req.fh)
			break;
		if (h != NULL) {
			c2 = io_setattr_call(op, h);
			c2->cb = io_setattr_deferred_cb;
		} else if (!node_unnamed(n) &&
		    (c2 = fsop_call(n, PROTO_SETATTR, io_setattr_deferred_cb,
			 op, &err)) != NULL)
			io_setattr_fill(c2, op);
		if (c2 != NULL) {
			call_send(c2);
			return;
		}
	}
	f->sa_frames--;
	rel = n->peer != NULL ? fsop_relpath(n, n->peer, n->export_id) : NULL;
	if (err != 0) {
		io.st.wb_errors++;
		if (f->error == 0)
			f->error = err;
		log_debug("deferred setattr of node %llu: %s",
		    (unsigned long long)n->id, strerror(-err));
		f->size_unsure = true; /* n->attr is a guess: ask */
		if (rel != NULL)
			dircache_changed(n->peer, n->export_id, rel);
		n->attr_early = true; /* the kernel forgets it once clean */
	} else if (f->sa_frames == 0) {
		const struct proto_attr *a = &c->rep.attr;

		/* The kernel was shown a guess: the holder's, if not it. */
		if (a->mode != n->attr.mode || a->uid != n->attr.uid ||
		    a->gid != n->attr.gid ||
		    a->mtime.sec != n->attr.mtime.sec ||
		    a->mtime.nsec != n->attr.mtime.nsec ||
		    a->atime.sec != n->attr.atime.sec ||
		    a->atime.nsec != n->attr.atime.nsec)
			notify_attr_now(n);
		n->attr = *a;
		if (rel != NULL)
			dircache_update(n->peer, n->export_id, rel, &n->attr);
	}
	free(rel);
	/* Bytes lost meanwhile: their size with them (as io_wb_end()). */
	if (f->sa_frames == 0 && f->error != 0 && !io_dirty(n) &&
	    n->wsize > n->attr.size) {
		n->wsize = 0;
		notify_attr_now(n);
	}
	io_wb_push(f);
	io_sync_check(f);
	io_file_unpin(f);
	io_op_free(op);
}

/*
 * Answer the SETATTR of op here, now, and send it by handle wh, behind
 * the write-back that wh carries: tar(1)'s futimens, fchown and fchmod
 * after its write then cost no round trip each, and the close waits for
 * them all.  The attributes shown are those foreseen until the holder's
 * answer replaces them.
 */
static void
io_setattr_defer(struct io_op *op, struct handle *wh)
{
	struct node *n = op->node;
	struct io_file *f = n->io;
	struct proto_attr a = n->attr;
	struct call *c = io_setattr_call(op, wh);

	c->cb = io_setattr_deferred_cb;
	io_inflight_by(f, wh);
	f->sa_frames++;
	io_file_pin(f);
	io.st.setattr_deferred++;
	io_setattr_apply(&a, &op->set);
	call_send(c);
	op->acb(op->arg, 0, &a);
}

/*
 * On a holder that runs a SETATTR through a handle after the WRITEs
 * through it that came before (PROTO_CAP_SETATTR_ORDER): every dirty
 * byte of the file goes back now and the SETATTR right behind it, by
 * the handle the frames went by, without waiting for their answers.  A
 * write followed by futimens(2), fchown(2) and fchmod(2), as tar(1) and
 * cp -p make, then costs one round trip for the write and the first of
 * them instead of two.  Not for a new size: the cache's blocks past it
 * must be written first or dropped, as the barrier does.  False if that
 * cannot be (see io_fsync_behind()): the caller waits for a clean file.
 */
static bool
io_setattr_behind(struct io_op *op)
{
	struct io_file *f = op->node->io;
	struct handle *wh;

	if ((op->set.valid & PROTO_SET_SIZE) || f == NULL ||
	    (op->h != NULL && !io_orders(op->h, PROTO_CAP_SETATTR_ORDER)) ||
	    (wh = io_push_all(f, op->h)) == NULL || !io_handle_live(wh) ||
	    !io_orders(wh, PROTO_CAP_SETATTR_ORDER))
		return false;
	op->borrowed = wh != op->h;
	io.st.setattr_behind++;
	if (io_setattr_foreseen(op, wh))
		io_setattr_defer(op, wh);
	else
		call_send(io_setattr_call(op, wh));
	return true;
}

/*
 * Change the attributes of file node n, its size among them (truncate):
 * through handle h if it is live, else by path.  set holds the SETATTR
 * fields (valid and the values).  Bytes written here go back first, so
 * that neither a size nor a time set here is undone by them.
 */
int
io_setattr(struct node *n, struct handle *h, const struct proto_req *set,
    io_attr_cb cb, void *arg)
{
	struct io_op *op;

	op = io_op_new(arg);
	op->acb = cb;
	op->node = n;
	node_ref(n);
	op->h = h;
	op->set = *set;
	if (!io_dirty(n) || !io_setattr_behind(op))
		io_barrier(n, io_setattr_send, op);
	return 0;
}

/* n is another file now (moved to another holder): forget its data. */
void
io_forget_all(struct node *n)
{
	n->data_seen = false;
	if (!n->isdir && io.bc != NULL && !io_dirty(n))
		block_cache_invalidate(io.bc, n->id, 0, 0);
	notify_inval(n, 0);
}

/* The object a name's link or unlink changed, and what it shows now. */
struct io_links {
	const struct node *like;
	const struct proto_attr *a; /* NULL: unknown */
};

/* node_foreach_name: another name of the object; its entry is old. */
static void
io_link_attr(struct node *n, void *arg)
{
	const struct io_links *l = arg;
	char *rel;

	if (!node_other_name(n, l->like))
		return;
	if (l->a != NULL && !io_dirty(n) &&
	    !dircache_attr_older(l->a, &n->attr)) {
		io_attr_seen(n, l->a); /* its data changed there: old here */
		n->attr = *l->a;
	}
	if ((rel = fsop_relpath(n, n->peer, n->export_id)) != NULL) {
		if (l->a != NULL)
			dircache_update(n->peer, n->export_id, rel, l->a);
		else
			dircache_changed(n->peer, n->export_id, rel);
		free(rel);
	}
	notify_other_name(n);
}

/*
 * Name n of an object was linked or unlinked, and the holder said what
 * the object's other names show now (a, or NULL if it did not): every
 * other name takes a (its link count and change time), in the node and
 * in its directory's listing, or its entry there goes stale, wherever
 * the directory (ln a b; ln b c showed a's count as 2, and an unlink in
 * one directory left the count of a name in another); the kernel asks
 * again for each.
 */
void
io_links_changed(struct node *n, const struct proto_attr *a)
{
	struct io_links l = { n, a };

	node_foreach_name(n, io_link_attr, &l);
}
