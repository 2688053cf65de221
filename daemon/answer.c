/*
 * answer.c - serving the requests the other side of a stream sends us:
 * the handshake's first frame, PING and BYE at once, every other request
 * on the disk workers, answered when done if the stream still lives.
 * What a request will hold until its reply is written counts in the
 * stream's load (stream.c, back-pressure) from its start.  Reaches the
 * stream through the stream_ops of stream.c (stream-int.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "locktab.h"
#include "pufs.h"
#include "stream-int.h"

#define STREAM_REPLY_GUESS 4096       /* reply estimate by default */
#define STREAM_LIST_GUESS (64u << 10) /* READDIR reply estimate */

/* A request from the other side, on a worker. */
struct served {
	struct work work;
	struct stream *s; /* holds a ref */
	uint32_t owner;
	uint8_t *frame; /* owned; req points into it */
	struct proto_req req;
	struct proto_rep rep;
	struct export_mem mem;
	size_t cost;  /* counted in s->reserved */
	bool serving; /* counted in s->serving */
	bool by_fh;   /* in s->by_fh */
	bool parked;  /* waiting for earlier requests (s->parked) */
	bool chained; /* served after another (its then) */
	/*
	 * An FSYNC or SETATTR served right after this request on the same
	 * worker, or ANSWER_SHUT once the worker no longer takes one (atomic:
	 * the loop sets it, the worker takes it).
	 */
	struct served *then;
	struct served *ran; /* the one the worker took from then */
	TAILQ_ENTRY(served) fentry;
};

#define ANSWER_SHUT ((struct served *)(uintptr_t)1)

struct log_rate answer_log_frames = LOG_RATE_INIT("bad frames");
static const struct stream_ops *answer_ops;
static const struct stream_client *answer_client; /* the call layer */
static answer_cluster_fn answer_cluster;          /* cluster.c */

/* Who answers CLUSTER requests (on the loop: they wait on nothing). */
void
answer_on_cluster(answer_cluster_fn fn)
{
	answer_cluster = fn;
}

/* What the stream lets us do to it, and the layer above (stream_init). */
void
answer_init(const struct stream_ops *ops, const struct stream_client *client)
{
	answer_ops = ops;
	answer_client = client;
}

/*
 * Worker: serve a request of the other side, and the FSYNC or SETATTR
 * the loop chained behind it meanwhile, if any (answer_chain).
 */
static void
answer_run(struct work *w)
{
	struct served *sv = (struct served *)w, *then;

	export_serve(sv->owner, &sv->req, &sv->rep, &sv->mem);
	then = __atomic_exchange_n(&sv->then, ANSWER_SHUT, __ATOMIC_ACQ_REL);
	if (then != NULL)
		export_serve(then->owner, &then->req, &then->rep, &then->mem);
	sv->ran = then;
}

/*
 * Order by handle (PROTO_CAP_FSYNC_ORDER, PROTO_CAP_SETATTR_ORDER): an
 * FSYNC, or a SETATTR through a handle, runs only once every request
 * that changes the file through the same handle (WRITE, FALLOCATE,
 * SETATTR, COPY_RANGE, FSYNC) and came before it on the stream has been
 * served, so that a requester may send it right behind its WRITEs
 * without waiting for their answers: the data they carried is on the
 * disk when an FSYNC is answered, and no WRITE served after a SETATTR
 * undoes the times it set.  Everything else runs on the workers in
 * parallel, as it comes.  Those requests in service are
 * kept in arrival order on the stream (at most STREAM_SERVE_MAX).
 */

/* Whether r waits for those that came before it through its handle. */
static bool
answer_ordered(const struct proto_req *r)
{
	return r->type == PROTO_FSYNC ||
	    (r->type == PROTO_SETATTR && r->fh != 0);
}

/* Whether r is one an FSYNC through its handle waits for. */
static bool
answer_changes(const struct proto_req *r)
{
	switch (r->type) {
	case PROTO_WRITE:
	case PROTO_FALLOCATE:
	case PROTO_SETATTR:
	case PROTO_COPY_RANGE:
	case PROTO_FSYNC:
		return r->fh != 0;
	default:
		return false;
	}
}

/*
 * Whether a request that changes sv's file through sv's handle (COPY_RANGE
 * through its second one) came before sv on its stream and is still in
 * service.
 */
static bool
answer_behind(const struct served *sv)
{
	const struct served *o;
	uint64_t fh = sv->req.fh;

	for (o = TAILQ_PREV(sv, served_list, fentry); o != NULL;
	     o = TAILQ_PREV(o, served_list, fentry))
		if (o->req.fh == fh ||
		    (o->req.type == PROTO_COPY_RANGE && o->req.fh2 == fh))
			return true;
	return false;
}

/* Start serving sv on a worker. */
static void
answer_start(struct served *sv)
{
	trap_serving(&sv->req, sv->owner);
	worker_submit(&sv->work);
}

/*
 * The FSYNC or SETATTR sv waits for one request alone, o: if o's worker
 * has not finished it yet, it serves sv right after, so that sv costs no
 * further trip from the loop to a worker and back (a WRITE then FSYNC,
 * sent together, are served as one).  Whether that worked.
 */
static bool
answer_chain(struct served *sv)
{
	struct served *o = NULL, *p, *none = NULL;

	for (p = TAILQ_PREV(sv, served_list, fentry); p != NULL;
	     p = TAILQ_PREV(p, served_list, fentry)) {
		if (p->req.fh != sv->req.fh &&
		    !(p->req.type == PROTO_COPY_RANGE &&
			p->req.fh2 == sv->req.fh))
			continue;
		if (o != NULL)
			return false;
		o = p;
	}
	if (o == NULL || o->parked || o->chained)
		return false;
	sv->chained = __atomic_compare_exchange_n(&o->then, &none, sv, false,
	    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
	return sv->chained;
}

/* sv was served: off the stream's list; the FSYNCs it held may go. */
static void
answer_unlist(struct served *sv)
{
	struct stream *s = sv->s;
	struct served *o, *next;

	if (!sv->by_fh)
		return;
	TAILQ_REMOVE(&s->by_fh, sv, fentry);
	sv->by_fh = false;
	for (o = TAILQ_FIRST(&s->by_fh); o != NULL && s->parked > 0; o = next) {
		next = TAILQ_NEXT(o, fentry);
		if (!o->parked || answer_behind(o))
			continue;
		o->parked = false;
		s->parked--;
		answer_start(o);
	}
}

/* Loop: the request was served; answer if the stream still lives. */
static void
answer_done(struct work *w)
{
	struct served *sv = (struct served *)w;
	struct stream *s = sv->s;
	/* Served on the same worker right after sv: answered after it. */
	struct served *then = sv->ran;

	answer_client->served(&sv->req, &sv->rep, sv->owner);
	if (s->state == STREAM_UP)
		answer_ops->send_served(s, &sv->rep, &sv->mem);
	answer_unlist(sv);
	if (sv->req.type == PROTO_OPEN || sv->req.type == PROTO_CREATE) {
		/* Answered to a dead stream: nobody will release it. */
		if (s->state == STREAM_DEAD && sv->rep.error == 0)
			export_drop_owner(sv->owner);
	}
	export_mem_free(&sv->mem);
	proto_rep_clear(&sv->rep);
	proto_req_clear(&sv->req);
	s->reserved -= sv->cost;
	if (sv->serving)
		s->serving--;
	answer_ops->frame_free(sv->frame);
	free(sv);
	answer_ops->flow(s);
	answer_ops->unref(s);
	if (then != NULL)
		answer_done(&then->work);
}

/* A lock request of the other side was answered (locktab.c). */
static void
answer_lock_done(void *arg)
{
	answer_done(&((struct served *)arg)->work);
}

/* What serving r will hold until its reply is written: frame and reply. */
static size_t
answer_cost(const struct proto_req *r, size_t flen)
{
	switch (r->type) {
	case PROTO_READ:
	case PROTO_GETXATTR:
	case PROTO_LISTXATTR:
		/* Refused above the type's limit; counted up to it. */
		return flen +
		    (size_t)(r->length < PROTO_MAX_DATA ? r->length
							: PROTO_MAX_DATA) +
		    STREAM_REPLY_GUESS;
	case PROTO_READDIR:
		return flen + STREAM_LIST_GUESS;
	default:
		return flen + STREAM_REPLY_GUESS;
	}
}

/*
 * A request we cannot take in (no memory for it): answer it with
 * ENOMEM from its header, or close the stream if that is not possible.
 */
void
answer_refuse(struct stream *s, const uint8_t *hdr, int error)
{
	struct proto_rep rep = { .type = hdr[4], .error = error };

	for (int i = 7; i >= 0; i--)
		rep.id = rep.id << 8 | hdr[8 + i];
	if (s->state != STREAM_UP || proto_frame_is_reply(hdr) ||
	    rep.type == PROTO_HELLO ||
	    strcmp(proto_type_name(rep.type), "unknown") == 0) {
		answer_ops->close(s, strerror(error));
		return;
	}
	if (log_rate_ok(&answer_log_frames, loop_now_ms()))
		log_warnx("peer %s: %s #%llu: %s", s->peer->name,
		    proto_type_name(rep.type), (unsigned long long)rep.id,
		    strerror(error));
	answer_ops->send_rep(s, &rep);
}

/* A request from the other side, in frame (len bytes), which it takes. */
int
answer_request(struct stream *s, uint8_t *frame, size_t len)
{
	struct served *sv;
	struct proto_hello h;
	int rc;

	sv = xcalloc(1, sizeof *sv);
	sv->frame = frame;
	if ((rc = proto_decode_req(sv->frame, len, &sv->req)) != 0) {
		if (rc == -ENOMEM) {
			answer_refuse(s, frame, -ENOMEM);
			rc = 0;
		}
		free(sv->frame);
		free(sv);
		return rc;
	}
	if (s->state == STREAM_HELLO && !s->outbound &&
	    sv->req.type == PROTO_HELLO) {
		struct proto_rep rep = { .type = PROTO_HELLO,
			.id = sv->req.id };

		if (!hello_ok(s, &sv->req.hello)) {
			/* Closed: nothing of ours is sent. */
		} else if (sv->req.hello.version != PROTO_VERSION) {
			rep.error = -EPROTONOSUPPORT;
			answer_ops->send_rep(s, &rep);
			rc = -EPROTONOSUPPORT;
		} else {
			hello_body(&rep.hello);
			answer_ops->send_rep(s, &rep);
			h = sv->req.hello;
			hello_established(s, &h);
		}
		proto_req_clear(&sv->req);
		free(sv->frame);
		free(sv);
		return rc;
	}
	if (s->state != STREAM_UP || sv->req.type == PROTO_HELLO) {
		proto_req_clear(&sv->req);
		free(sv->frame);
		free(sv);
		return -EPROTO;
	}
	switch (sv->req.type) {
	case PROTO_PING: {
		struct proto_rep rep = { .type = PROTO_PING, .id = sv->req.id };

		rep.value = clock_local_ns();
		answer_ops->send_rep(s, &rep);
		free(sv->frame);
		free(sv);
		return 0;
	}
	case PROTO_BYE: {
		struct proto_rep rep = { .type = PROTO_BYE, .id = sv->req.id };

		answer_ops->send_rep(s, &rep);
		free(sv->frame);
		free(sv);
		if (s->peer != NULL && s->peer->stream == s)
			peer_leaving(s->peer);
		answer_ops->close(s, "the peer said goodbye");
		return 0;
	}
	case PROTO_CLUSTER: {
		struct proto_rep rep = { .type = PROTO_CLUSTER,
			.id = sv->req.id };

		if (answer_cluster != NULL && s->peer != NULL)
			rep.value = answer_cluster(s->peer, &sv->req);
		answer_ops->send_rep(s, &rep);
		free(sv->frame);
		free(sv);
		return 0;
	}
	default:
		break;
	}
	sv->s = s;
	sv->owner = s->id;
	sv->cost = answer_cost(&sv->req, len);
	s->reserved += sv->cost;
	s->refs++;
	/*
	 * A lock request may wait as long as another owner keeps its lock:
	 * it does not count among the requests in service, or waiters
	 * would stop the stream being read, its pings and cancels with it
	 * (locktab.c bounds them).
	 */
	sv->serving = !locktab_type(sv->req.type);
	if (sv->serving)
		s->serving++;
	sv->work.run = answer_run;
	sv->work.done = answer_done;
	sv->work.key = export_serve_key(&sv->req);
	if (locktab_type(sv->req.type)) {
		locktab_serve(sv->owner, &sv->req, &sv->rep, answer_lock_done,
		    sv);
		answer_ops->flow(s);
		return 0;
	}
	if (answer_changes(&sv->req)) {
		TAILQ_INSERT_TAIL(&s->by_fh, sv, fentry);
		sv->by_fh = true;
	}
	if (!answer_ordered(&sv->req) || !answer_behind(sv))
		answer_start(sv);
	else if (!answer_chain(sv)) {
		sv->parked = true;
		s->parked++;
	}
	answer_ops->flow(s);
	return 0;
}
