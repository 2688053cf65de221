/*
 * call.c - one request to one holder, and its reply.
 *
 * A call is the unit every union operation is built from.  To this
 * peer's own exports it runs on a disk worker; to another peer it will
 * travel over that peer's stream.  Either way the caller's callback runs
 * exactly once, on the loop thread, never from inside call_send(), and
 * no later than op_timeout after sending: a holder that does not answer
 * in time yields ETIMEDOUT and its late answer is dropped.
 *
 * Ownership: the call layer owns the call.  The transport writes its
 * answer into a private reply that is copied to call->rep on the loop
 * thread, so a timeout never races a worker.  The call is freed once the
 * callback has run and the transport has let go of it.
 *
 * Who cares about answers and about requests served (the listing cache,
 * traps) registers an observer; the call layer knows neither.
 *
 * With `identity = caller`, a call carries the credentials of whoever
 * the loop is working for when it is made (struct call_caller), and its
 * callback runs as that caller again, so a request's later calls are
 * its caller's too.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "locktab.h"
#include "pufs.h"

/* A caller's credentials after a frame's data: uid, gid, groups. */
#define CALL_FRAME_TAIL (12 + 4 * PROTO_MAX_GROUPS)

static unsigned call_count; /* calls not yet freed */
static struct log_rate call_log_timeouts = LOG_RATE_INIT("call timeouts");
static call_answer_fn call_answer_observer;
static call_served_fn call_served_observer;
static call_hold_fn call_holder;
static call_hold_fn call_send_holder;
static struct call_caller call_caller; /* whose work the loop does now */
static struct log_rate call_log_groups = LOG_RATE_INIT("caller groups");

/* The caller of a FUSE request that starts now (kernel.c). */
void
call_set_caller(uint32_t uid, uint32_t gid, uint32_t pid)
{
	call_caller.cred.set = true;
	call_caller.cred.uid = uid;
	call_caller.cred.gid = gid;
	call_caller.cred.ngroups = 0;
	call_caller.pid = pid;
	call_caller.groups = false;
}

/* Keep the current caller for work that goes on later. */
void
call_caller_save(struct call_caller *cc)
{
	*cc = call_caller;
}

/* Make cc the current caller again (NULL: nobody's). */
void
call_caller_restore(const struct call_caller *cc)
{
	if (cc != NULL)
		call_caller = *cc;
	else
		call_caller.cred.set = false;
}

/*
 * The current caller's groups, read once for all the calls of its
 * request, while it waits for the answer.  Beyond PROTO_MAX_GROUPS the
 * rest are left out, as NFS's AUTH_SYS leaves out those beyond 16.
 */
static void
call_caller_groups(void)
{
	struct proto_cred *cr = &call_caller.cred;
	int n;

	if (!cr->set || call_caller.groups)
		return;
	call_caller.groups = true;
	n = identity_groups(call_caller.pid, cr->groups, PROTO_MAX_GROUPS);
	cr->ngroups = n < 0 ? 0 : (uint32_t)n;
	if (n > PROTO_MAX_GROUPS) {
		cr->ngroups = PROTO_MAX_GROUPS;
		if (log_rate_ok(&call_log_groups, loop_now_ms()))
			log_warnx("identity: uid %u is in %d groups; its "
				  "requests carry the first %d",
			    cr->uid, n, PROTO_MAX_GROUPS);
	}
}

/* Calls sent and not yet completed and freed (shutdown drains them). */
unsigned
call_inflight(void)
{
	return call_count;
}

/* Free a call whose callback ran and whose transport let go. */
static void
call_free(struct call *c)
{
	for (int i = 0; i < 4; i++)
		free(c->strs[i]);
	free(c->data);
	export_mem_free(&c->mem);
	proto_rep_clear(&c->rep);
	proto_rep_clear(&c->wrep); /* pages of an answer cut short */
	free(c);
	call_count--;
}

/* Watch every answer without an error (the caches' keeper). */
void
call_observe_answers(call_answer_fn fn)
{
	call_answer_observer = fn;
}

/* Watch every request served by our exports (traps announce them). */
void
call_observe_served(call_served_fn fn)
{
	call_served_observer = fn;
}

/*
 * Let fn hold back answers without an error, and WRITE and FSYNC
 * answers with one (cluster.c: a change to
 * one replica is repeated on the others first): when it returns true,
 * the callback waits until it calls call_resume().
 */
void
call_hold_answers(call_hold_fn fn)
{
	call_holder = fn;
}

/*
 * Let fn hold back calls as they are sent (cluster.c: one that waits
 * for a replica in sync): when it returns true, it sends the call
 * later with call_send() or fails it with call_resume().
 */
void
call_hold_sends(call_hold_fn fn)
{
	call_send_holder = fn;
}

/*
 * Request r was served by one of our exports with answer rep, for owner
 * (0: our own mount's call; else the stream whose handles it made).
 */
static void
call_served(const struct proto_req *r, const struct proto_rep *rep,
    uint32_t owner)
{
	if (call_served_observer != NULL)
		call_served_observer(r, rep, owner);
}

/* Deliver the reply to the caller, once; free if nobody holds it. */
static void
call_finish(struct call *c)
{
	if (c->rep.error == 0 && call_answer_observer != NULL)
		call_answer_observer(c);
	timer_wheel_del(loop_wheel(), &c->timer);
	latency_call_done(c->peer->name, c->req.type, c->sent_us);
	if ((c->rep.error == 0 || c->req.type == PROTO_WRITE ||
		c->req.type == PROTO_FSYNC) &&
	    !c->nohold && call_holder != NULL && call_holder(c))
		return; /* nothing holds it but the holder, till it resumes */
	call_resume(c);
}

/* Run the callback of an answer held back (call_hold_answers()). */
void
call_resume(struct call *c)
{
	struct call_caller was;

	c->finished = true;
	if (c->cb != NULL) {
		call_caller_save(&was);
		call_caller_restore(&c->caller);
		c->cb(c);
		call_caller_restore(&was);
	}
	if (!c->in_transport)
		call_free(c);
}

/*
 * Deadline passed: answer ETIMEDOUT now.  A call waiting on a stream
 * leaves its table at once and is freed after the callback (its late
 * reply is dropped as unmatched); one on a worker is freed when the
 * worker lets go.
 */
static void
call_timeout(struct timer *t, void *arg)
{
	struct call *c = arg;

	(void)t;
	if (c->finished)
		return;
	if (c->stream != NULL) {
		stream_cancel_call(c->stream, c);
		c->in_transport = false;
	}
	stats.call_timeouts++;
	if (log_rate_ok(&call_log_timeouts, loop_now_ms()))
		log_warnx("peer %s: %s #%llu timed out after %.1fs",
		    c->peer->name, proto_type_name(c->req.type),
		    (unsigned long long)c->req.id, conf->op_timeout);
	memset(&c->rep, 0, sizeof c->rep);
	c->rep.type = c->req.type;
	c->rep.id = c->req.id;
	c->rep.error = -ETIMEDOUT;
	call_finish(c);
}

/* Worker thread: serve the request from this peer's exports. */
static void
call_local_run(struct work *w)
{
	struct call *c = (struct call *)((char *)w -
	    offsetof(struct call, work));

	export_serve(0, &c->req, &c->wrep, &c->mem);
}

/*
 * A late answer to OPEN or CREATE (its call timed out) holds a handle
 * on the holder that nobody will use or release: release it now.
 */
static void
call_release_late(struct peer *p, const struct proto_rep *rep)
{
	struct call *c;

	if ((rep->type != PROTO_OPEN && rep->type != PROTO_CREATE) ||
	    rep->error != 0 || rep->fh == 0)
		return;
	c = call_new(p, PROTO_RELEASE, 0, NULL, NULL, NULL);
	c->req.fh = rep->fh;
	call_send(c);
}

/* Loop thread: a local call completed. */
static void
call_local_done(struct work *w)
{
	struct call *c = (struct call *)((char *)w -
	    offsetof(struct call, work));

	c->in_transport = false;
	call_served(&c->req, &c->wrep, 0);
	if (c->finished) {
		call_release_late(c->peer, &c->wrep);
		proto_rep_clear(&c->wrep);
		call_free(c);
		return;
	}
	c->rep = c->wrep;
	memset(&c->wrep, 0, sizeof c->wrep);
	call_finish(c);
}

/* A lock request to our own exports was answered (locktab.c). */
static void
call_lock_done(void *arg)
{
	call_local_done(&((struct call *)arg)->work);
}

/* The transport has the reply: deliver it (or drop it if late). */
static void
call_transport_done(struct call *c, struct proto_rep *rep)
{
	c->in_transport = false;
	if (c->finished) {
		proto_rep_clear(rep);
		call_free(c);
		return;
	}
	c->rep = *rep;
	memset(rep, 0, sizeof *rep);
	call_finish(c);
}

/*
 * A page of a paged READDIR answer came (PROTOCOL.md, READDIR): its
 * entries join the earlier pages' in wrep, names copied into an arena
 * (offsets until the last page, as the arena may move).  The last page
 * (PROTO_LIST_MORE clear) delivers the whole answer; the transport has
 * taken the call out of its table before.  Returns 0, or -EPROTO when
 * the page does not continue the earlier ones (another checkpoint or
 * kind) or the listing grows past PROTO_MAX_LISTING; the transport
 * then fails the call.
 */
static int
call_transport_page(struct call *c, const struct proto_rep *page)
{
	struct proto_rep *w = &c->wrep, rep;
	size_t len;

	if (c->paged &&
	    (page->fh != w->fh || page->value != w->value ||
		((page->flags ^ w->flags) & PROTO_LIST_DELTA) != 0))
		return -EPROTO;
	if (page->nents > PROTO_MAX_LISTING - w->nents)
		return -EPROTO;
	if (!c->paged) {
		*w = *page;
		w->ents = NULL;
		w->nents = 0;
		c->paged = true;
	}
	w->ents = xreallocarray(w->ents, w->nents + page->nents + 1,
	    sizeof *w->ents);
	for (size_t i = 0; i < page->nents; i++) {
		len = strlen(page->ents[i].name) + 1;
		while (c->arena_len + len > c->arena_cap) {
			c->arena_cap = c->arena_cap ? c->arena_cap * 2 : 65536;
			c->mem.names = xreallocarray(c->mem.names, c->arena_cap,
			    1);
		}
		memcpy(c->mem.names + c->arena_len, page->ents[i].name, len);
		w->ents[w->nents].name = (const char *)(uintptr_t)c->arena_len;
		w->ents[w->nents++].attr = page->ents[i].attr;
		c->arena_len += len;
	}
	if (page->flags & PROTO_LIST_MORE)
		return 0;
	for (size_t i = 0; i < w->nents; i++)
		w->ents[i].name = c->mem.names + (uintptr_t)w->ents[i].name;
	w->flags = page->flags;
	rep = *w;
	memset(w, 0, sizeof *w);
	call_transport_done(c, &rep);
	return 0;
}

/* The transport could not deliver the call: complete it with error. */
static void
call_transport_fail(struct call *c, int error)
{
	struct proto_rep rep = {
		.type = c->req.type,
		.id = c->req.id,
		.error = error,
	};

	call_transport_done(c, &rep);
}

/* One-shot event: fail a call that could not be sent (error in wrep). */
static void
call_unreachable(evutil_socket_t fd, short what, void *arg)
{
	struct call *c = arg;

	(void)fd;
	(void)what;
	call_transport_fail(c, c->wrep.error);
}

/* The call layer, as the transport answers it. */
const struct stream_client call_transport = {
	.done = call_transport_done,
	.fail = call_transport_fail,
	.page = call_transport_page,
	.late = call_release_late,
	.served = call_served,
};

/* A new call of type to (peer, export, path); path may be NULL. */
struct call *
call_new(struct peer *peer, uint8_t type, uint32_t export_id, const char *path,
    void (*cb)(struct call *), void *arg)
{
	struct call *c = xcalloc(1, sizeof *c);

	call_count++;
	c->peer = peer;
	c->cb = cb;
	c->arg = arg;
	c->req.type = type;
	c->req.id = stream_new_id();
	c->req.export_id = export_id;
	c->strs[0] = xstrdup(path != NULL ? path : "");
	c->req.path = c->strs[0];
	c->req.name = "";
	c->req.path2 = "";
	c->req.name2 = "";
	if (proto_type_cred(type))
		call_caller_groups();
	c->caller = call_caller;
	if (proto_type_cred(type))
		c->req.cred = call_caller.cred;
	timer_init(&c->timer, call_timeout, c);
	return c;
}

/* Set the single-component name (or xattr name). */
void
call_set_name(struct call *c, const char *name)
{
	free(c->strs[1]);
	c->strs[1] = xstrdup(name);
	c->req.name = c->strs[1];
}

/* Set the destination of LINK and RENAME. */
void
call_set_dest(struct call *c, uint32_t export2, const char *path2,
    const char *name2)
{
	free(c->strs[2]);
	free(c->strs[3]);
	c->strs[2] = xstrdup(path2);
	c->strs[3] = xstrdup(name2);
	c->req.export2 = export2;
	c->req.path2 = c->strs[2];
	c->req.name2 = c->strs[3];
}

/*
 * Attach a payload, always copied: a worker may still read it after the
 * caller's request is gone (a timeout completes the call first).
 */
void
call_set_data(struct call *c, const void *data, size_t len)
{
	free(c->data);
	c->data = NULL;
	c->data_head = 0;
	if (len > 0) {
		c->data = xmalloc(len);
		memcpy(c->data, data, len);
	}
	c->req.data = c->data;
	c->req.datalen = len;
}

/*
 * Give the call a payload of len bytes to be filled in by the caller
 * (no copy made); the buffer is the call's.
 */
void *
call_data_buf(struct call *c, size_t len)
{
	free(c->data);
	c->data = xmalloc(len > 0 ? len : 1);
	c->data_head = 0;
	c->req.data = c->data;
	c->req.datalen = len;
	return c->data;
}

/*
 * Like call_data_buf(), but with room before the payload for the head of
 * its frame: a peer's stream encodes the frame around the payload and
 * takes the buffer as it sends the call (stream_send_call()), so the
 * bytes are not copied again.  req.data is not to be read after
 * call_send() then.  Our own worker reads the request itself, and a type
 * whose data has no fixed place in its frame is encoded as usual: a
 * plain buffer for those.
 */
void *
call_frame_data(struct call *c, size_t len)
{
	size_t head = c->peer->self ? 0 : proto_req_data_at(c->req.type);

	if (head == 0 || len == 0)
		return call_data_buf(c, len);
	free(c->data);
	/* The frame's fields after the data (credentials) fit too. */
	c->data = stream_frame_buf(head + len + CALL_FRAME_TAIL);
	c->data_head = head;
	c->req.data = (uint8_t *)c->data + head;
	c->req.datalen = len;
	return (uint8_t *)c->data + head;
}

/*
 * A sent call that may wait as long as its caller does (a lock wait):
 * no op_timeout.  The stream's liveness still ends it (EIO).
 */
void
call_untimed(struct call *c)
{
	timer_wheel_del(loop_wheel(), &c->timer);
}

/* Send the call to its holder; the callback runs later. */
void
call_send(struct call *c)
{
	uint64_t deadline;

	if (call_send_holder != NULL && call_send_holder(c))
		return; /* the holder sends it later, or fails it */
	if (c->req.type < PROTO_TYPE_MAX)
		stats.ops[c->req.type]++;
	c->sent_us = loop_mono_us();
	deadline = loop_now_ms() + (uint64_t)(conf->op_timeout * 1000);
	timer_wheel_add(loop_wheel(), &c->timer, deadline);
	loop_wheel_kick();
	c->in_transport = true;
	if (c->peer->self && locktab_type(c->req.type)) {
		locktab_serve(0, &c->req, &c->wrep, call_lock_done, c);
		return;
	}
	if (c->peer->self) {
		c->work.run = call_local_run;
		c->work.done = call_local_done;
		c->work.key = export_serve_key(&c->req);
		worker_submit(&c->work);
		return;
	}
	c->wrep.error = -EIO;
	if (c->peer->state == PEER_UP && c->peer->stream != NULL &&
	    (c->wrep.error = stream_send_call(c->peer->stream, c)) == 0)
		return;
	if (event_base_once(loop_base, -1, EV_TIMEOUT, call_unreachable, c,
		NULL) == -1)
		fatalx("event_base_once failed");
}
