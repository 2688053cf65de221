/*
 * stream.c - TCP streams between peers (proto/PROTOCOL.md).
 *
 * One stream per pair of peers, used both ways: our calls go out as
 * requests and wait in a table keyed by request id until their reply
 * comes (in any order); the other side's requests are served on the disk
 * workers and answered when done.  A listing too large for one frame
 * travels in pages when both ends can (PROTO_CAP_LIST_PAGES); its call
 * stays in the table until the last page.  A stream's life:
 *
 *   CONNECTING -> [AUTH ->] HELLO -> UP -> DEAD
 *
 * changed only by stream_set_state().  Every failure (EOF, socket error,
 * a malformed frame, silence longer than dead_after, a handshake that
 * takes longer than STREAM_HELLO_MS or op_timeout) ends in
 * stream_close(s, "reason"), which
 * completes every call waiting on the stream with EIO, releases the file
 * handles the other side opened, tells the peer it lost its stream, and
 * leaves the freeing to a one-shot event once no worker holds the
 * stream any more.  Callbacks start by returning if the stream is dead.
 *
 * With a key, AUTH comes first: the challenge-response of hello.c; with
 * encrypt = yes the bufferevent is TLS (tls.c), CONNECTING lasts until
 * its handshake is done and everything after runs inside it.
 *
 * Untrusted peers: before the handshake a frame is at most
 * STREAM_HELLO_FRAME bytes (a longer length closes the stream before
 * anything is buffered), the handshake has a deadline, and at most
 * STREAM_HANDSHAKES streams each way are in handshake at once.
 *
 * Back-pressure, per stream: the bytes of replies waiting for the other
 * side (the output buffer, plus what the requests on the workers will
 * answer and the frames they hold, counted when they start, so that a
 * READ's buffer counts before a worker allocates it) are its load.
 * Above STREAM_OUT_HIGH, or with STREAM_SERVE_MAX requests in service,
 * no new request of that stream is started (it is not read) until the
 * load is back below STREAM_OUT_LOW; the other streams carry on.  The
 * FUSE channel stops being read (loop_pause_input) only while our own calls
 * wait behind such an output.  One read callback handles at most
 * STREAM_BATCH frames and yields.
 *
 * A stream whose output drains (the other side takes what we send) is
 * alive, even while its answers wait behind our data or we do not read
 * them; one that neither answers nor takes is closed after dead_after,
 * and what it held is freed.
 *
 * A probe (stream_probe) asks whether the other side still answers: a
 * PING that must be answered within STREAM_PROBE_MS, or the stream is
 * closed.  Datagrams that say a peer is gone only ever cause a probe.
 *
 * The handshake is in hello.c, serving the other side's requests in
 * answer.c, the heartbeat and the probe's ping in ping.c; they share
 * struct stream through stream-int.h and call back into this file only
 * through the stream_ops given at stream_init().
 */
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "auth.h"
#include "pufs.h"
#include "stream-int.h"

#define STREAM_BATCH 64
#define STREAM_SERVE_MAX 256
#define STREAM_OUT_HIGH (32u << 20)
#define STREAM_OUT_LOW (8u << 20)
/*
 * The largest frame before the handshake; the largest HELLO a valid
 * configuration makes is 71 KiB.
 */
#define STREAM_HELLO_FRAME (128u << 10)
#define STREAM_HELLO_MS 5000 /* handshake deadline */
#define STREAM_HANDSHAKES 64 /* in handshake, each way */
/*
 * Connections waiting to be accepted: every peer that hears a
 * newcomer's ANNOUNCE dials it at once, and a SYN the queue drops is
 * sent again only a second later.  The kernel caps it at somaxconn.
 */
#define STREAM_BACKLOG 512

static const char *stream_state_names[STREAM_STATE_MAX] = { "connecting",
	"auth", "hello", "up", "dead" };

static struct stream_list streams = TAILQ_HEAD_INITIALIZER(streams);
static struct evconnlistener *listener;
static uint32_t stream_next_id = 1;
static uint64_t stream_next_req; /* request ids, stream_new_id() */
static const struct stream_client *stream_client; /* the call layer */
static unsigned stream_handshaking[2];            /* in handshake: in, out */

static void stream_read_cb(struct bufferevent *, void *);
static void stream_read_more(struct bufferevent *);
static void stream_write_cb(struct bufferevent *, void *);
static void stream_event_cb(struct bufferevent *, short, void *);
static void stream_set_state(struct stream *, enum stream_state);
static void stream_unref(struct stream *);
static void stream_flow(struct stream *);
static int stream_send_req(struct stream *, const struct proto_req *);
static void stream_send_rep(struct stream *, struct proto_rep *);
static void stream_send_served(struct stream *, struct proto_rep *,
    struct export_mem *);
static void stream_say_bye(struct stream *, const struct proto_req *);
static void stream_push_out(struct stream *);
static void stream_buf_put(void *);

/* What the files below the stream may do to one (stream-int.h). */
static const struct stream_ops stream_ops = {
	.close = stream_close,
	.set_state = stream_set_state,
	.flow = stream_flow,
	.unref = stream_unref,
	.send_req = stream_send_req,
	.send_rep = stream_send_rep,
	.send_served = stream_send_served,
	.say_bye = stream_say_bye,
	.push_out = stream_push_out,
	.retire = stream_retire,
	.new_id = stream_new_id,
	.frame_free = stream_buf_put,
};

/* The layer above, which the stream answers (before any stream). */
void
stream_init(const struct stream_client *client)
{
	stream_client = client;
	tls_init(stream_read_more);
	hello_init(&stream_ops);
	answer_init(&stream_ops, client);
	ping_init(&stream_ops);
}

/* A fresh request id (for calls, pings and goodbyes). */
uint64_t
stream_new_id(void)
{
	return ++stream_next_req;
}

/* The handshake deadline: op_timeout, at most STREAM_HELLO_MS. */
static uint64_t
stream_hello_ms(void)
{
	double ms = conf->op_timeout * 1000;

	return ms < STREAM_HELLO_MS ? (uint64_t)ms : STREAM_HELLO_MS;
}

/* Whether a stream in state st counts as in handshake. */
static bool
stream_in_handshake(enum stream_state st)
{
	return st == STREAM_CONNECTING || st == STREAM_AUTH ||
	    st == STREAM_HELLO;
}

/* The one place a stream's state changes; keeps the handshake counts. */
static void
stream_set_state(struct stream *s, enum stream_state st)
{
	if (st >= STREAM_STATE_MAX)
		fatalx("stream %s: bad state %d", s->addr, st);
	log_debug("stream %s: %s -> %s", s->addr, stream_state_names[s->state],
	    stream_state_names[st]);
	if (stream_in_handshake(s->state) && !stream_in_handshake(st))
		stream_handshaking[s->outbound]--;
	s->state = st;
	if (st == STREAM_UP) {
		/* Frames may be large now. */
		s->up_since = loop_now_ms();
		bufferevent_setwatermark(s->bev, EV_READ, 0,
		    2 * PROTO_MAX_FRAME);
	}
}

/* Free a dead stream nobody holds (one-shot event). */
static void
stream_reap(evutil_socket_t fd, short what, void *arg)
{
	struct stream *s = arg;

	(void)fd;
	(void)what;
	event_free(s->resume);
	event_free(s->reaper);
	free(s->auth);
	free(s->probe_why);
	free(s->addr);
	free(s);
}

/* Drop a reference; schedule the free at zero. */
static void
stream_unref(struct stream *s)
{
	if (s->refs == 0)
		fatalx("stream %s: reference underflow", s->addr);
	if (--s->refs == 0)
		event_active(s->reaper, EV_TIMEOUT, 0);
}

/* Take back this stream's pause of the input (the FUSE channel). */
static void
stream_unthrottle(struct stream *s)
{
	if (!s->throttling)
		return;
	s->throttling = false;
	loop_resume_input();
}

/*
 * Back-pressure, after anything that changes a stream's load: stop or
 * resume reading it, and throttle the FUSE channel while our own calls
 * wait behind an output over the high water.
 */
static void
stream_flow(struct stream *s)
{
	size_t out, load;

	if (s->state == STREAM_DEAD)
		return;
	out = evbuffer_get_length(bufferevent_get_output(s->bev));
	load = out + s->reserved;
	if (!s->reading_paused &&
	    (load > STREAM_OUT_HIGH || s->serving >= STREAM_SERVE_MAX)) {
		bufferevent_disable(s->bev, EV_READ);
		s->reading_paused = true;
	} else if (s->reading_paused && load < STREAM_OUT_LOW &&
	    s->serving < STREAM_SERVE_MAX / 2) {
		s->reading_paused = false;
		bufferevent_enable(s->bev, EV_READ);
		event_active(s->resume, EV_TIMEOUT, 0);
	}
	if (!s->throttling && out > STREAM_OUT_HIGH && s->ncalls > 0) {
		s->throttling = true;
		loop_pause_input();
	} else if (s->throttling && (out < STREAM_OUT_LOW || s->ncalls == 0))
		stream_unthrottle(s);
}

/*
 * Close a stream: mark it dead, fail its calls, drop the handles the
 * other side held, tell its peer.  The memory goes later.
 */
void
stream_close(struct stream *s, const char *reason)
{
	struct peer *p = s->peer;
	struct call *c;

	if (s->state == STREAM_DEAD)
		return;
	if (p != NULL)
		log_info("peer %s (%s): stream closed: %s", p->name, s->addr,
		    reason);
	else if (s->state == STREAM_CONNECTING)
		log_debug("stream %s: %s", s->addr, reason);
	else
		log_info("stream %s: closed: %s", s->addr, reason);
	hello_auth_closed(s, reason);
	stream_set_state(s, STREAM_DEAD);
	TAILQ_REMOVE(&streams, s, entry);
	timer_wheel_del(loop_wheel(), &s->hb);
	timer_wheel_del(loop_wheel(), &s->probe);
	event_del(s->resume);
	bufferevent_free(s->bev);
	s->bev = NULL;
	stream_unthrottle(s);
	export_drop_owner(s->id);
	if (s->seed != NULL)
		peer_seed_lost(s->seed, s);
	if (p != NULL)
		peer_stream_lost(p, s, reason);
	for (int b = 0; b < STREAM_BUCKETS; b++) {
		while ((c = TAILQ_FIRST(&s->calls[b])) != NULL) {
			stream_cancel_call(s, c);
			stream_client->fail(c, -EIO);
		}
	}
	stream_unref(s);
}

/* Frames this large are handed to the output buffer, not copied. */
#define STREAM_HAND_OVER (16u << 10)
/* Socket reads past libevent's: bytes a loop turn (pieces: stream-int.h). */
#define STREAM_READ_TURN (4u << 20)

/*
 * Buffers of large frames (data: WRITE requests, READ replies), sent or
 * received, are kept for the next such frame, up to STREAM_POOL_BYTES
 * of them, all streams together.  A fresh buffer of 128 KiB or more is
 * a mapping of its own (io_init() sets the threshold so) whose every
 * page faults in when the frame is written into it, and goes back at
 * its free: at a few hundred MB/s those faults cost more than the
 * copies.  Sizes are rounded up to STREAM_POOL_STEP, so that frames of
 * one kind share buffers; a buffer's size is malloc's, so that whoever
 * holds one (answer.c, a request's service) needs only its address.
 */
#define STREAM_POOL_MIN STREAM_HAND_OVER
#define STREAM_POOL_STEP (64u << 10)
#define STREAM_POOL_BYTES (8u << 20)
#define STREAM_POOL_MAX 32

static struct {
	struct {
		void *p;
		size_t cap;
	} v[STREAM_POOL_MAX];
	size_t n, bytes;
} stream_pool;

/*
 * A buffer of at least need bytes (its size in *cap), kept or new;
 * NULL if there is no memory for it.
 */
static void *
stream_buf_get(size_t need, size_t *cap)
{
	size_t best = stream_pool.n;
	void *p;

	for (size_t i = 0; i < stream_pool.n; i++)
		if (stream_pool.v[i].cap >= need &&
		    stream_pool.v[i].cap <= 2 * need + STREAM_POOL_STEP &&
		    (best == stream_pool.n ||
			stream_pool.v[i].cap < stream_pool.v[best].cap))
			best = i;
	if (best < stream_pool.n) {
		p = stream_pool.v[best].p;
		*cap = stream_pool.v[best].cap;
		stream_pool.bytes -= *cap;
		stream_pool.v[best] = stream_pool.v[--stream_pool.n];
		return p;
	}
	*cap = (need + STREAM_POOL_STEP - 1) / STREAM_POOL_STEP *
	    STREAM_POOL_STEP;
	return malloc(*cap);
}

/* Keep buffer p (from malloc) for a later frame, or free it. */
static void
stream_buf_put(void *p)
{
	size_t cap = malloc_usable_size(p);

	if (cap < STREAM_POOL_MIN || stream_pool.n == STREAM_POOL_MAX ||
	    stream_pool.bytes + cap > STREAM_POOL_BYTES) {
		free(p);
		return;
	}
	stream_pool.v[stream_pool.n].p = p;
	stream_pool.v[stream_pool.n++].cap = cap;
	stream_pool.bytes += cap;
}

/*
 * A buffer of at least need bytes (from malloc), for a frame that is
 * built in it and then handed to stream_send_call() (call_frame_data()).
 */
void *
stream_frame_buf(size_t need)
{
	size_t cap;
	void *p;

	if (need < STREAM_POOL_MIN)
		return xmalloc(need);
	if ((p = stream_buf_get(need, &cap)) == NULL)
		fatal("malloc %zu", need);
	return p;
}

/*
 * An empty frame buffer for a frame that carries len bytes of data:
 * from the pool if it is large, else left to the encoder.
 */
static void
stream_buf_for(struct proto_buf *pb, size_t len)
{
	if (len >= STREAM_POOL_MIN &&
	    (pb->p = stream_buf_get(len + PROTO_HDR_LEN + 4096, &pb->cap)) ==
		NULL)
		pb->cap = 0; /* the encoder tries, and fails cleanly */
}

/* The output buffer is done with a frame handed over to it. */
static void
stream_frame_sent(const void *data, size_t len, void *arg)
{
	(void)len;
	(void)arg;
	stream_buf_put((void *)(uintptr_t)data);
}

/*
 * Append one encoded frame; watch the high water mark.  A large one
 * (data) is handed over, pb left empty: one copy fewer of every byte.
 */
static int
stream_write(struct stream *s, struct proto_buf *pb)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);

	if (pb->len >= STREAM_HAND_OVER) {
		if (evbuffer_add_reference(out, pb->p, pb->len,
			stream_frame_sent, NULL) == -1)
			return -ENOMEM;
		pb->p = NULL;
		pb->len = pb->cap = 0;
	} else if (evbuffer_add(out, pb->p, pb->len) == -1)
		return -ENOMEM;
	stream_flow(s);
	return 0;
}

/*
 * Encode and send a request of ours, into pb if it holds a buffer (the
 * request's data in its place already), else into one of its own.
 */
static int
stream_send_req_in(struct stream *s, const struct proto_req *req,
    struct proto_buf pb)
{
	int rc;

	if (pb.p == NULL)
		stream_buf_for(&pb, req->datalen);
	if ((rc = proto_encode_req(req, &pb)) == 0)
		rc = stream_write(s, &pb);
	proto_buf_free(&pb);
	return rc;
}

/* Encode and send a request of ours. */
static int
stream_send_req(struct stream *s, const struct proto_req *req)
{
	return stream_send_req_in(s, req, (struct proto_buf){ 0 });
}

/*
 * Encode reply rep into pb (an empty buffer, or none) and send it; a
 * reply too big to encode becomes an error.
 */
static void
stream_send_rep_in(struct stream *s, struct proto_rep *rep, struct proto_buf pb)
{
	int rc;

	if ((rc = (s->caps & PROTO_CAP_LIST_PAGES
		     ? proto_encode_rep_paged
		     : proto_encode_rep)(rep, &pb)) != 0) {
		struct proto_rep err = {
			.type = rep->type,
			.id = rep->id,
			.error = rc == -EINVAL ? -EOVERFLOW : -ENOMEM,
		};

		log_warnx("stream %s: %s reply not encodable: %s", s->addr,
		    proto_type_name(rep->type), strerror(-rc));
		proto_buf_free(&pb);
		if (proto_encode_rep(&err, &pb) != 0)
			fatalx("cannot encode an error reply");
	}
	if (stream_write(s, &pb) != 0)
		stream_close(s, "out of memory");
	proto_buf_free(&pb);
}

/* Encode and send a reply. */
static void
stream_send_rep(struct stream *s, struct proto_rep *rep)
{
	struct proto_buf pb = { 0 };

	proto_rep_fit_caps(rep, s->caps);
	stream_buf_for(&pb, rep->datalen);
	stream_send_rep_in(s, rep, pb);
}

/*
 * Encode and send a reply served into mem: in mem's own buffer when the
 * data was read to where the frame carries it (export_mem's head), which
 * the frame then takes, one copy of the data fewer.
 */
static void
stream_send_served(struct stream *s, struct proto_rep *rep,
    struct export_mem *mem)
{
	struct proto_buf pb = { 0 };

	proto_rep_fit_caps(rep, s->caps);
	if (mem->head == 0 || rep->error != 0 ||
	    proto_rep_data_at(rep->type) != mem->head ||
	    rep->data != (const uint8_t *)mem->data + mem->head) {
		stream_send_rep(s, rep);
		return;
	}
	pb.p = mem->data;
	pb.cap = mem->head + rep->datalen;
	mem->data = NULL;
	mem->head = 0;
	stream_send_rep_in(s, rep, pb);
}

/*
 * Push out what is queued before the socket goes (best effort: it is
 * non-blocking); the caller closes.
 */
static void
stream_push_out(struct stream *s)
{
	struct bufferevent *bev = s->tls ? tls_push_out(s->bev) : s->bev;
	struct evbuffer *out = bufferevent_get_output(bev);
	size_t len = evbuffer_get_length(out);

	if (len == 0)
		return;
	if (write(bufferevent_getfd(bev), evbuffer_pullup(out, (ssize_t)len),
		len) == -1)
		log_debug("stream %s: last words: %s", s->addr,
		    strerror(errno));
}

/* Queue a BYE and push it out, goodbye last; the caller closes. */
static void
stream_say_bye(struct stream *s, const struct proto_req *bye)
{
	stream_send_req(s, bye);
	stream_push_out(s);
}

/* The call waiting for reply id, or NULL. */
static struct call *
stream_find_call(struct stream *s, uint64_t id)
{
	struct call *c;

	TAILQ_FOREACH(c, &s->calls[id % STREAM_BUCKETS], tentry)
	if (c->req.id == id)
		return c;
	return NULL;
}

/* Find and remove the call waiting for reply id. */
static struct call *
stream_take_call(struct stream *s, uint64_t id)
{
	struct call *c = stream_find_call(s, id);

	if (c != NULL)
		stream_cancel_call(s, c);
	return c;
}

/*
 * A READDIR reply that may be a page of a paged answer (PROTOCOL.md,
 * READDIR): a page goes to its call, which stays in the table until the
 * last page.  Returns 1 for an ordinary reply (the caller matches it as
 * any other), 0 when the page was taken, or -EPROTO.
 */
static int
stream_on_page(struct stream *s, const struct proto_rep *rep)
{
	bool more = (rep->flags & PROTO_LIST_MORE) != 0;
	struct call *c = stream_find_call(s, rep->id);

	if (more && (s->caps & PROTO_CAP_LIST_PAGES) == 0)
		return -EPROTO; /* pages were not agreed on */
	if (c == NULL || c->req.type != PROTO_READDIR || (!more && !c->paged))
		return 1;
	if (!more)
		stream_cancel_call(s, c);
	if (stream_client->page(c, rep) == 0)
		return 0;
	if (!more)
		stream_client->fail(c, -EIO);
	return -EPROTO;
}

/* Take call c out of the table of s (a reply came, or it timed out). */
void
stream_cancel_call(struct stream *s, struct call *c)
{
	if (c->stream != s)
		fatalx("stream %s: call #%llu is not in its table", s->addr,
		    (unsigned long long)c->req.id);
	TAILQ_REMOVE(&s->calls[c->req.id % STREAM_BUCKETS], c, tentry);
	s->ncalls--;
	c->stream = NULL;
	stream_flow(s); /* our calls no longer wait behind it */
}

/* A reply from the other side. */
static int
stream_on_reply(struct stream *s, const uint8_t *buf, size_t len)
{
	struct proto_rep rep;
	struct call *c;
	int rc;

	if ((rc = proto_decode_rep(buf, len, &rep)) != 0)
		return rc;
	if (rep.type == PROTO_HELLO) {
		if (s->state != STREAM_HELLO || !s->outbound) {
			proto_rep_clear(&rep);
			return -EPROTO;
		}
		if (rep.error != 0 || rep.hello.version != PROTO_VERSION) {
			hello_refused_reply(s, rep.error);
			proto_rep_clear(&rep);
			return 0;
		}
		hello_established(s, &rep.hello);
		proto_rep_clear(&rep);
		return 0;
	}
	if (s->state != STREAM_UP) {
		proto_rep_clear(&rep);
		return -EPROTO;
	}
	if (rep.type == PROTO_PING) {
		if (rep.id == s->ping_id) {
			peer_heard_ping(s->peer, loop_mono_us() - s->ping_sent);
			clock_sample(s->peer, s->ping_t0, clock_local_ns(),
			    rep.value);
		}
		if (s->probe_id != 0 && rep.id == s->probe_id) {
			log_info("peer %s: answered on its stream (%s): kept",
			    s->peer->name, s->probe_why);
			s->probe_id = 0;
			timer_wheel_del(loop_wheel(), &s->probe);
		}
		/* An earlier ping's answer, after a newer ping: nothing. */
		proto_rep_clear(&rep);
		return 0;
	}
	if (rep.type == PROTO_BYE) {
		proto_rep_clear(&rep);
		return 0;
	}
	if (rep.type == PROTO_READDIR && rep.error == 0 &&
	    (rc = stream_on_page(s, &rep)) <= 0) {
		proto_rep_clear(&rep);
		return rc;
	}
	if ((c = stream_take_call(s, rep.id)) == NULL ||
	    c->req.type != rep.type) {
		if (log_rate_ok(&answer_log_frames, loop_now_ms()))
			log_warnx("peer %s: reply #%llu (%s) matches no "
				  "request; dropped",
			    s->peer->name, (unsigned long long)rep.id,
			    proto_type_name(rep.type));
		if (c != NULL)
			stream_client->fail(c, -EIO);
		else /* late: the handle it opened is nobody's */
			stream_client->late(s->peer, &rep);
		proto_rep_clear(&rep);
		return 0;
	}
	stream_client->done(c, &rep);
	return 0;
}

/* Process up to STREAM_BATCH whole frames; yield if more remain. */
static void
stream_process(struct stream *s)
{
	struct evbuffer *in;
	uint8_t hdr[PROTO_HDR_LEN], *frame;
	long flen;
	size_t cap = 0;
	bool reply;
	int n, rc;

	for (n = 0; n < STREAM_BATCH; n++) {
		if (s->state == STREAM_DEAD || s->reading_paused)
			return;
		in = bufferevent_get_input(s->bev);
		if (evbuffer_copyout(in, hdr, 4) < 4)
			return;
		if (s->state != STREAM_UP && hello_tls_mismatch(s, hdr))
			return;
		flen = proto_frame_len(hdr, 4);
		if (flen < 0 ||
		    (s->state != STREAM_UP &&
			flen > (long)STREAM_HELLO_FRAME)) {
			if (log_rate_ok(&answer_log_frames, loop_now_ms()))
				log_warnx("stream %s: frame length %lu %s",
				    s->addr,
				    (unsigned long)(hdr[0] | hdr[1] << 8 |
					hdr[2] << 16 | (uint32_t)hdr[3] << 24),
				    flen < 0 ? "out of bounds"
					     : "too long before the handshake");
			stream_close(s, "bad frame length");
			return;
		}
		if (evbuffer_get_length(in) < (size_t)flen)
			return;
		s->last_heard = loop_now_ms();
		if (s->peer != NULL)
			peer_heard(s->peer);
		/*
		 * A large frame is read into a buffer of the pool, and goes
		 * back there once handled: a reply's when its call's callback
		 * has run, a request's when it has been answered (answer.c).
		 */
		frame = flen >= (long)STREAM_POOL_MIN
		    ? stream_buf_get((size_t)flen, &cap)
		    : malloc((size_t)flen);
		if (frame == NULL) {
			evbuffer_remove(in, hdr, sizeof hdr);
			evbuffer_drain(in, (size_t)flen - sizeof hdr);
			answer_refuse(s, hdr, -ENOMEM);
			continue;
		}
		evbuffer_remove(in, frame, (size_t)flen);
		reply = proto_frame_is_reply(frame);
		if (s->state == STREAM_AUTH || auth_frame_is_auth(frame)) {
			rc = hello_auth(s, frame, (size_t)flen);
			free(frame);
		} else if (reply) {
			rc = stream_on_reply(s, frame, (size_t)flen);
			stream_buf_put(frame);
		} else
			rc = answer_request(s, frame, (size_t)flen);
		if (s->state == STREAM_DEAD)
			return;
		if (rc != 0) {
			if (log_rate_ok(&answer_log_frames, loop_now_ms()))
				log_warnx("stream %s: malformed or unexpected "
					  "frame: %s",
				    s->addr, strerror(-rc));
			stream_close(s, "protocol error");
			return;
		}
	}
	event_active(s->resume, EV_TIMEOUT, 0);
}

/* Bytes arrived. */
static void
stream_read_cb(struct bufferevent *bev, void *arg)
{
	struct stream *s = arg;

	(void)bev;
	/* Under TLS, tls.c reads the socket layer. */
	if (s->state == STREAM_UP && !s->tls)
		stream_read_more(s->bev);
	stream_process(s);
}

/*
 * Read what else the socket of a socket bufferevent (a plain stream's,
 * or a TLS stream's socket layer) holds, in large pieces.  libevent 2.1
 * reads a socket 4 KiB at a time, one read a loop turn: a 1 MiB frame
 * took 256 turns of the loop (each an epoll_wait, a FIONREAD and a timer
 * update), which used most of a core at a few hundred MB/s.  An end of
 * stream or an error is left for libevent to find on its next read.  At
 * most STREAM_READ_TURN bytes a turn, and never past 2 * PROTO_MAX_FRAME
 * in the input.  The bufferevent keeps the end of its input frozen
 * outside its own reads (only the front may be drained): thawed for
 * these.
 */
static void
stream_read_more(struct bufferevent *bev)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	evutil_socket_t fd = bufferevent_getfd(bev);
	struct evbuffer_iovec v[2];
	struct iovec iov[2];
	size_t got = 0, want, left;
	ssize_t r = 0;
	int n;

	if (evbuffer_unfreeze(in, 0) != 0)
		return;
	while (got < STREAM_READ_TURN &&
	    evbuffer_get_length(in) < 2 * PROTO_MAX_FRAME &&
	    (n = evbuffer_reserve_space(in, STREAM_READ_PIECE, v, 2)) > 0) {
		want = 0;
		for (int i = 0; i < n; i++) {
			iov[i].iov_base = v[i].iov_base;
			iov[i].iov_len = v[i].iov_len;
			want += v[i].iov_len;
		}
		if ((r = readv(fd, iov, n)) <= 0) {
			evbuffer_commit_space(in, v, 0);
			break;
		}
		left = (size_t)r;
		for (int i = 0; i < n; i++) {
			if (v[i].iov_len > left)
				v[i].iov_len = left;
			left -= v[i].iov_len;
		}
		evbuffer_commit_space(in, v, n);
		got += (size_t)r;
		if ((size_t)r < want)
			break;
	}
	evbuffer_freeze(in, 0);
}

/* Continue a batch-limited read on the next loop turn. */
static void
stream_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct stream *s = arg;

	(void)fd;
	(void)what;
	if (s->state != STREAM_DEAD)
		stream_process(s);
}

/* The output drained below the low water mark. */
static void
stream_write_cb(struct bufferevent *bev, void *arg)
{
	struct stream *s = arg;

	(void)bev;
	if (s->state == STREAM_DEAD)
		return;
	stream_flow(s);
}

/* Connected, EOF, error: one switch, one exit. */
static void
stream_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct stream *s = arg;
	char buf[256];
	int one = 1;

	if (s->state == STREAM_DEAD)
		return;
	if (what & BEV_EVENT_CONNECTED) {
		if (s->tls) {
			log_debug("stream %s: TLS up: %s", s->addr,
			    tls_cipher(bev));
			tls_opened(bev);
		}
		if (!s->outbound)
			return; /* TLS accepted: the initiator speaks first */
		setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY,
		    &one, sizeof one);
		hello_start(s);
		return;
	}
	if (s->tls && (what & BEV_EVENT_ERROR) &&
	    stream_in_handshake(s->state) && tls_cipher(bev) == NULL &&
	    tls_failure(bev, buf, sizeof buf)) {
		if (log_rate_ok(&hello_log_refused, loop_now_ms()))
			log_warnx("stream %s: TLS handshake failed: %s (the "
				  "other side's [security] key_file or encrypt "
				  "differs?)",
			    s->addr, buf);
		/*
		 * What it sent and TLS left unread would make the close a
		 * reset, which loses the alert that tells it why.
		 */
		while (recv(bufferevent_getfd(bev), buf, sizeof buf,
			   MSG_DONTWAIT) > 0)
			;
		hello_tls_failed(s, "TLS handshake failed");
		return;
	}
	if (what & BEV_EVENT_EOF)
		stream_close(s, "closed by the other side");
	else if (what & BEV_EVENT_ERROR)
		stream_close(s,
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	else if (what & BEV_EVENT_TIMEOUT)
		stream_close(s, "timeout");
}

/*
 * Something (a datagram, a second stream under the same name) says the
 * other side may be gone: ping it, and close the stream unless it
 * answers within the probe deadline.  One probe at a time.
 */
void
stream_probe(struct stream *s, const char *why)
{
	if (s->state != STREAM_UP || s->probe_id != 0)
		return;
	log_info("peer %s: %s; asking on its stream", s->peer->name, why);
	free(s->probe_why);
	s->probe_why = xstrdup(why);
	if (ping_send(s) != 0) {
		stream_close(s, "cannot send ping");
		return;
	}
	s->probe_id = s->ping_id;
	timer_wheel_add(loop_wheel(), &s->probe,
	    loop_now_ms() + ping_probe_ms());
	loop_wheel_kick();
}

/* A new stream around a socket (connected or connecting). */
static struct stream *
stream_new(evutil_socket_t fd, const char *addr, bool outbound)
{
	struct stream *s = xcalloc(1, sizeof *s);

	s->id = stream_next_id++;
	if (stream_next_id == 0)
		stream_next_id = 1;
	s->outbound = outbound;
	s->addr = xstrdup(addr);
	s->refs = 1;
	s->state = outbound     ? STREAM_CONNECTING
	    : conf->key != NULL ? STREAM_AUTH
				: STREAM_HELLO;
	s->started = loop_now_ms();
	stream_handshaking[outbound]++;
	for (int b = 0; b < STREAM_BUCKETS; b++)
		TAILQ_INIT(&s->calls[b]);
	TAILQ_INIT(&s->by_fh);
	s->bev = tls_bufferevent(fd, outbound);
	s->tls = s->bev != NULL;
	if (s->bev == NULL)
		s->bev = bufferevent_socket_new(loop_base, fd,
		    BEV_OPT_CLOSE_ON_FREE);
	s->resume = event_new(loop_base, -1, 0, stream_resume_cb, s);
	s->reaper = event_new(loop_base, -1, 0, stream_reap, s);
	if (s->bev == NULL || s->resume == NULL || s->reaper == NULL)
		fatalx("stream: cannot create events");
	bufferevent_setcb(s->bev, stream_read_cb, stream_write_cb,
	    stream_event_cb, s);
	bufferevent_setwatermark(s->bev, EV_WRITE, STREAM_OUT_LOW, 0);
	/* libevent writes 16 KiB a loop turn unless told otherwise. */
	bufferevent_set_max_single_write(s->bev, STREAM_READ_TURN);
	/* Until the handshake is done, frames are small. */
	bufferevent_setwatermark(s->bev, EV_READ, 0, STREAM_HELLO_FRAME);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	timer_init(&s->hb, ping_heartbeat, s);
	timer_init(&s->probe, ping_probe_expired, s);
	/* Until the handshake is done the heartbeat is its deadline. */
	timer_wheel_add(loop_wheel(), &s->hb,
	    loop_now_ms() + stream_hello_ms());
	loop_wheel_kick();
	TAILQ_INSERT_TAIL(&streams, s, entry);
	return s;
}

/* Dial a seed address; the stream reports back through the seed. */
struct stream *
stream_connect(const struct sockaddr *sa, int salen, const char *addr,
    struct seed *seed)
{
	struct stream *s = stream_new(-1, addr, true);

	s->seed = seed;
	if (bufferevent_socket_connect(s->tls ? tls_socket(s->bev) : s->bev, sa,
		salen) == -1) {
		stream_close(s, "connect failed");
		return NULL;
	}
	return s;
}

/* An incoming connection. */
static void
stream_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	char host[128];
	int one = 1;

	(void)l;
	(void)arg;
	peer_format_addr(sa, (socklen_t)salen, host, sizeof host);
	if (stream_handshaking[0] >= STREAM_HANDSHAKES) {
		if (log_rate_ok(&hello_log_refused, loop_now_ms()))
			log_warnx("stream %s: %u connections in handshake "
				  "already; refused",
			    host, STREAM_HANDSHAKES);
		close(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	stream_new(fd, host, false);
}

/* Listen for peers on address sa, if our handshake fits a first frame. */
int
stream_listen(const struct sockaddr *sa, int salen)
{
	struct proto_req hello = { .type = PROTO_HELLO, .id = 1 };
	struct proto_buf pb = { 0 };

	/* Peers take no larger frame before the handshake: say so now. */
	hello_body(&hello.hello);
	if (proto_encode_req(&hello, &pb) != 0 || pb.len > STREAM_HELLO_FRAME) {
		log_warnx(
		    "exports: the handshake would be %zu bytes, more than "
		    "the %u peers take; export fewer directories or give them "
		    "shorter names and places",
		    pb.len, STREAM_HELLO_FRAME);
		proto_buf_free(&pb);
		return -1;
	}
	proto_buf_free(&pb);
	listener = evconnlistener_new_bind(loop_base, stream_accept_cb, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE,
	    STREAM_BACKLOG, sa, salen);
	if (listener == NULL) {
		log_warn("listen %s", conf->listen);
		return -1;
	}
	return 0;
}

/*
 * Send a call over the stream; it waits in the table for its reply.
 * Returns 0, or a negative errno when it could not be sent (the caller
 * completes it).
 */
int
stream_send_call(struct stream *s, struct call *c)
{
	struct proto_buf pb = { 0 };
	int rc;

	if (s->state != STREAM_UP)
		return -EIO;
	/*
	 * A type the peer does not know: REPLACE goes step by step instead
	 * (ENOSYS to the caller), a lock cannot be held there (ENOLCK).
	 */
	if ((proto_req_caps(&c->req) & ~s->caps) != 0)
		return c->req.type == PROTO_REPLACE ? -ENOSYS : -ENOLCK;
	proto_req_fit_caps(&c->req, s->caps);
	/*
	 * A payload made in its frame's place (call_frame_data()): the
	 * frame is encoded around it, and the buffer is the stream's now.
	 */
	if (c->data_head != 0 &&
	    c->req.data == (const uint8_t *)c->data + c->data_head &&
	    proto_req_data_at(c->req.type) == c->data_head) {
		pb.p = c->data;
		pb.cap = malloc_usable_size(c->data);
		c->data = NULL;
		c->data_head = 0;
	}
	rc = stream_send_req_in(s, &c->req, pb);
	if (pb.p != NULL) /* gone with the frame */
		c->req.data = NULL;
	if (rc != 0)
		return rc == -EINVAL ? -EINVAL : -EIO;
	TAILQ_INSERT_TAIL(&s->calls[c->req.id % STREAM_BUCKETS], c, tentry);
	s->ncalls++;
	c->stream = s;
	return 0;
}

/* Say goodbye on every stream and close them (graceful leave). */
void
stream_leave_all(void)
{
	struct stream *s, *next;
	struct proto_req bye = { .type = PROTO_BYE };

	if (listener != NULL) {
		evconnlistener_free(listener);
		listener = NULL;
	}
	for (s = TAILQ_FIRST(&streams); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		if (s->state == STREAM_UP) {
			bye.id = stream_new_id();
			stream_say_bye(s, &bye);
		}
		stream_close(s, "leaving");
	}
}

/*
 * s lost to the stream of crossed dials that stays (peer_attach): it is
 * no longer its peer's stream, but it answers what comes on it until the
 * other side closes it, or the handshake deadline does (ping_heartbeat).
 */
void
stream_retire(struct stream *s)
{
	log_debug("peer %s (%s): stream retired: the dials crossed",
	    s->peer->name, s->addr);
	timer_wheel_add(loop_wheel(), &s->hb,
	    loop_now_ms() + stream_hello_ms());
	loop_wheel_kick();
}

/* Whether more dials may start (outbound streams in handshake). */
bool
stream_may_dial(void)
{
	return stream_handshaking[1] < STREAM_HANDSHAKES;
}

/* When the stream was accepted or dialed (loop_now_ms()). */
uint64_t
stream_started(const struct stream *s)
{
	return s->started;
}

/* The capabilities both ends of s have (0 for no stream). */
uint64_t
stream_caps(const struct stream *s)
{
	return s != NULL ? s->caps : 0;
}

/* Our calls waiting on s for their answer (0 for no stream). */
unsigned
stream_calls(const struct stream *s)
{
	return s != NULL ? s->ncalls : 0;
}

/* When its handshake completed (loop_now_ms()), 0 before. */
uint64_t
stream_up_since(const struct stream *s)
{
	return s->up_since;
}

/* Whether we opened the stream. */
bool
stream_outbound(const struct stream *s)
{
	return s->outbound;
}

/* The TLS cipher of a stream, or NULL if it is not (yet) encrypted. */
const char *
stream_tls_cipher(const struct stream *s)
{
	return s->tls && s->bev != NULL ? tls_cipher(s->bev) : NULL;
}

/*
 * The streams' part of the report: whether they authenticate and
 * encrypt, and the streams refused before HELLO, by reason (JSON: an
 * object member and a comma; text: a line).
 */
void
stream_status(struct evbuffer *b, bool json)
{
	uint64_t total = 0;

	evbuffer_add_printf(b,
	    json ? "\"streams\":{\"authenticated\":%s,\"encrypted\":%s,"
		   "\"refused\":{"
		 : "streams:  key %s, encrypt %s; refused:",
	    conf->key != NULL ? (json ? "true" : "yes")
			      : (json ? "false" : "no"),
	    conf->encrypt ? (json ? "true" : "yes") : (json ? "false" : "no"));
	for (int r = 0; r < HELLO_REFUSED_MAX; r++) {
		evbuffer_add_printf(b, json ? "%s\"%s\":%llu" : "%s %s %llu",
		    r > 0 ? "," : "", hello_refusal_name(r),
		    (unsigned long long)hello_refused[r]);
		total += hello_refused[r];
	}
	evbuffer_add_printf(b,
	    json ? "},\"refused_total\":%llu}," : " (%llu)\n",
	    (unsigned long long)total);
}
