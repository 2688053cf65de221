/*
 * io.c - the data path: every byte read from or written to a file of
 * the union passes through io_read() and io_write().
 *
 * Today each request becomes one call to the file's holder, moved in one
 * frame of up to the kernel's request size.  This is the one place the
 * block cache (write-behind, read-ahead, invalidation) will sit, so that
 * nothing else in the daemon needs to know whether data came from a
 * holder or from memory.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "fs.h"

struct io_op {
	io_done_cb cb;
	void *arg;
	struct handle *h;
};

/* The file of handle h changed: stale its directory's cached listing. */
static void
io_changed(struct handle *h)
{
	const struct export *ex = union_export(h->peer, h->export_id);
	char *upath, *rel;

	if (ex == NULL)
		return;
	upath = node_path(h->node);
	if ((rel = union_relpath(ex, upath)) != NULL)
		dircache_changed(h->peer, h->export_id, rel);
	free(upath);
	free(rel);
}

/* A READ came back: hand the bytes to the requester. */
static void
io_read_cb(struct call *c)
{
	struct io_op *op = c->arg;

	op->cb(op->arg, -c->rep.error, c->rep.data, c->rep.datalen);
	free(op);
}

/* A WRITE came back: report the count written. */
static void
io_write_cb(struct call *c)
{
	struct io_op *op = c->arg;

	/* Its size and times in its directory's listing are old now. */
	if (c->rep.error == 0)
		io_changed(op->h);

	op->cb(op->arg, -c->rep.error, NULL, (size_t)c->rep.value);
	free(op);
}

/* Whether the handle's holder still has it (same stream, peer up). */
bool
io_handle_live(const struct handle *h)
{
	return h->peer->state == PEER_UP && h->epoch == h->peer->epoch;
}

/* The RELEASE of a closed handle came back; nobody waits for it. */
void
io_release_cb(struct call *c)
{
	if (c->rep.error != 0)
		log_debug("release: %s", strerror(c->rep.error));
}

/* A handle for the file node n opened by call c (OPEN or CREATE). */
struct handle *
io_handle_new(struct node *n, struct call *c)
{
	struct handle *h = xcalloc(1, sizeof *h);

	h->node = n;
	node_ref(n);
	h->peer = c->peer;
	h->epoch = c->peer->epoch;
	h->export_id = c->req.export_id;
	h->fh = c->rep.fh;
	TAILQ_INSERT_TAIL(&n->handles, h, nentry);
	return h;
}

/* Forget a handle (its RELEASE, if any, is already sent). */
void
io_handle_free(struct handle *h)
{
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


/* One-shot: a call on a dead handle fails with EIO. */
static void
io_dead_cb(evutil_socket_t fd, short what, void *arg)
{
	struct io_op *op = arg;

	(void)fd;
	(void)what;
	op->cb(op->arg, -EIO, NULL, 0);
	free(op);
}

/* Start a call of type on the handle's holder; NULL if it is gone. */
static struct call *
io_call(struct handle *h, uint8_t type, uint64_t off,
    void (*done)(struct call *), io_done_cb cb, void *arg)
{
	struct io_op *op = xmalloc(sizeof *op);
	struct call *c;

	op->cb = cb;
	op->arg = arg;
	op->h = h;
	if (!io_handle_live(h)) {
		if (event_base_once(loop_base, -1, EV_TIMEOUT, io_dead_cb, op,
		    NULL) == -1)
			fatalx("event_base_once failed");
		return NULL;
	}
	c = call_new(h->peer, type, h->export_id, NULL, done, op);
	c->req.fh = h->fh;
	c->req.offset = off;
	return c;
}

/* Read size bytes at off; cb gets the data (valid during cb only). */
void
io_read(struct handle *h, uint64_t off, size_t size, io_done_cb cb,
    void *arg)
{
	struct call *c = io_call(h, PROTO_READ, off, io_read_cb, cb, arg);

	if (c == NULL)
		return;
	c->req.length = size;
	call_send(c);
}

/* Write size bytes at off (copied); cb gets the count written. */
void
io_write(struct handle *h, uint64_t off, const void *data, size_t size,
    io_done_cb cb, void *arg)
{
	struct call *c = io_call(h, PROTO_WRITE, off, io_write_cb, cb, arg);

	if (c == NULL)
		return;
	call_set_data(c, data, size);
	call_send(c);
}
