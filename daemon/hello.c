/*
 * hello.c - a stream's handshake (proto/PROTOCOL.md, sections 6 and
 * 6.1): with a key, the challenge-response that proves it both ways
 * before a byte of HELLO; then our HELLO body, the check of the other
 * side's, and attaching the stream to its peer when it is done.  Reaches
 * the stream through the stream_ops of stream.c (stream-int.h).
 *
 * With a key the stream starts in STREAM_AUTH: the initiator sends a
 * CHALLENGE, the acceptor its ANSWER with its proof, the initiator its
 * PROOF and, at once, its HELLO; the acceptor takes that HELLO only
 * after the proof checks out, and the names in both HELLOs must be the
 * names the proofs covered.  Every refusal is counted by reason
 * (hello_refused, `pufs status`) and logged on both sides where the
 * other side can still be told: a keyless peer gets an error it can
 * name, not just a closed socket.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "auth.h"
#include "pufs.h"
#include "stream-int.h"

/* The exchange of one stream, then the name the other side proved. */
struct hello_auth {
	uint8_t ours[AUTH_NONCE_LEN];
	uint8_t theirs[AUTH_NONCE_LEN];
	char name[256]; /* the other side's, from the exchange */
	bool answered;  /* acceptor: our ANSWER is sent */
	bool done;      /* the proofs checked out */
};

struct log_rate hello_log_refused = LOG_RATE_INIT("refused streams");
uint64_t hello_refused[HELLO_REFUSED_MAX];
static const struct stream_ops *hello_ops;
static uint8_t hello_key[AUTH_KEY_LEN]; /* the stream subkey */

static const char *const hello_refusal_names[HELLO_REFUSED_MAX] = { "no_key",
	"keyless_here", "bad_proof", "protocol", "unfinished", "tls" };

/* What the stream lets us do to it (stream_init); the stream subkey. */
void
hello_init(const struct stream_ops *ops)
{
	hello_ops = ops;
	if (conf->key != NULL)
		auth_subkey(conf->key, conf->key_len, AUTH_LABEL_STREAM,
		    hello_key);
}

/* The name of a refusal's counter, for `pufs status`. */
const char *
hello_refusal_name(enum hello_refusal r)
{
	return r < HELLO_REFUSED_MAX ? hello_refusal_names[r] : "unknown";
}

/* Count a refused stream and close it; the caller has logged why. */
static void
hello_refuse(struct stream *s, enum hello_refusal r, const char *why)
{
	hello_refused[r]++;
	s->refused = true;      /* not "unfinished" as well */
	hello_ops->push_out(s); /* a refusal queued for the other side */
	hello_ops->close(s, why);
}

/* Whether to log a refusal now (rate-limited: strangers may flood). */
static bool
hello_log_ok(void)
{
	return log_rate_ok(&hello_log_refused, loop_now_ms());
}

/* Queue an AUTH frame. */
static int
hello_send_auth(struct stream *s, const struct auth_msg *m)
{
	uint8_t buf[AUTH_FRAME_MAX];
	size_t len = auth_encode(m, buf);

	if (len == 0)
		return -EINVAL;
	if (evbuffer_add(bufferevent_get_output(s->bev), buf, len) == -1)
		return -ENOMEM;
	return 0;
}

/* Queue our HELLO request (the initiator, once it may). */
static void
hello_send_hello(struct stream *s)
{
	struct proto_req hello = { .type = PROTO_HELLO, .id = 1 };

	hello_body(&hello.hello);
	if (hello_ops->send_req(s, &hello) != 0)
		hello_ops->close(s, "cannot send hello");
}

/* The initiator is connected: the CHALLENGE with a key, else HELLO. */
void
hello_start(struct stream *s)
{
	struct auth_msg m = { .step = AUTH_CHALLENGE, .version = AUTH_VERSION };

	if (conf->key == NULL) {
		hello_ops->set_state(s, STREAM_HELLO);
		hello_send_hello(s);
		return;
	}
	hello_ops->set_state(s, STREAM_AUTH);
	s->auth = xcalloc(1, sizeof *s->auth);
	RAND_bytes(s->auth->ours, AUTH_NONCE_LEN);
	memcpy(m.nonce, s->auth->ours, AUTH_NONCE_LEN);
	strcpy(m.name, peer_self()->name);
	if (hello_send_auth(s, &m) != 0)
		hello_ops->close(s, "cannot send the challenge");
}

/* Keyless, we are challenged: tell the other side so, and refuse. */
static void
hello_keyless(struct stream *s, const struct auth_msg *m)
{
	struct auth_msg no = { .step = AUTH_ANSWER, .error = EACCES };

	hello_send_auth(s, &no);
	if (hello_log_ok())
		log_warnx("stream %s: peer \"%s\" authenticates with a key, "
			  "and we have no [security] key_file; refused",
		    s->addr, log_escape(m->name));
	hello_refuse(s, HELLO_REFUSED_KEYLESS, "it has a key, we have none");
}

/* Acceptor: the CHALLENGE came; send our ANSWER with our proof. */
static void
hello_on_challenge(struct stream *s, const struct auth_msg *m)
{
	struct auth_msg a = { .step = AUTH_ANSWER };
	const char *self = peer_self()->name;

	if (m->version != AUTH_VERSION) {
		a.error = EPROTONOSUPPORT;
		hello_send_auth(s, &a);
		if (hello_log_ok())
			log_warnx("stream %s: authentication version %u, ours "
				  "is %u; refused",
			    s->addr, m->version, AUTH_VERSION);
		hello_refuse(s, HELLO_REFUSED_PROTOCOL,
		    "authentication version differs");
		return;
	}
	s->auth = xcalloc(1, sizeof *s->auth);
	memcpy(s->auth->theirs, m->nonce, AUTH_NONCE_LEN);
	strcpy(s->auth->name, m->name);
	RAND_bytes(s->auth->ours, AUTH_NONCE_LEN);
	memcpy(a.nonce, s->auth->ours, AUTH_NONCE_LEN);
	strcpy(a.name, self);
	auth_proof(hello_key, true, m->nonce, m->name, a.nonce, self, a.mac);
	s->auth->answered = true;
	if (hello_send_auth(s, &a) != 0)
		hello_ops->close(s, "cannot send the answer");
}

/* Whether the other side's proof is right (the other direction's). */
static bool
hello_proof_ok(struct stream *s, const uint8_t *mac)
{
	const struct hello_auth *a = s->auth;
	const char *self = peer_self()->name;
	uint8_t want[AUTH_MAC_LEN];

	if (s->outbound)
		auth_proof(hello_key, true, a->ours, self, a->theirs, a->name,
		    want);
	else
		auth_proof(hello_key, false, a->theirs, a->name, a->ours, self,
		    want);
	return auth_proof_equal(want, mac);
}

/* Refuse a stream whose other side did not prove our key. */
static void
hello_bad_proof(struct stream *s)
{
	if (hello_log_ok())
		log_warnx("stream %s: peer \"%s\" does not prove our key (its "
			  "[security] key_file differs?); refused",
		    s->addr, log_escape(s->auth->name));
	hello_refuse(s, HELLO_REFUSED_PROOF, "wrong proof of the key");
}

/* The exchange is done: on to HELLO. */
static void
hello_authenticated(struct stream *s)
{
	s->auth->done = true;
	log_debug("stream %s: peer \"%s\" proved the key", s->addr,
	    log_escape(s->auth->name));
	hello_ops->set_state(s, STREAM_HELLO);
	if (s->outbound)
		hello_send_hello(s);
}

/* Initiator: the ANSWER came; check it, then PROOF and HELLO. */
static void
hello_on_answer(struct stream *s, const struct auth_msg *m)
{
	struct auth_msg p = { .step = AUTH_PROOF };
	const char *self = peer_self()->name;

	if (m->error != 0) {
		if (hello_log_ok())
			log_warnx("stream %s: the other side refuses to "
				  "authenticate: %s",
			    s->addr,
			    m->error == EACCES
				? "it has no [security] key_file, and we have"
				  " one"
				: strerror((int)m->error));
		hello_refuse(s,
		    m->error == EACCES ? HELLO_REFUSED_NO_KEY
				       : HELLO_REFUSED_PROTOCOL,
		    "the other side refuses to authenticate");
		return;
	}
	memcpy(s->auth->theirs, m->nonce, AUTH_NONCE_LEN);
	strcpy(s->auth->name, m->name);
	if (!hello_proof_ok(s, m->mac)) {
		p.error = EACCES; /* so that its log says why */
		hello_send_auth(s, &p);
		hello_bad_proof(s);
		return;
	}
	auth_proof(hello_key, false, s->auth->ours, self, m->nonce, m->name,
	    p.mac);
	if (hello_send_auth(s, &p) != 0) {
		hello_ops->close(s, "cannot send the proof");
		return;
	}
	hello_authenticated(s);
}

/* Acceptor: the initiator's PROOF (or its refusal of ours) came. */
static void
hello_on_proof(struct stream *s, const struct auth_msg *m)
{
	if (m->error != 0) {
		if (hello_log_ok())
			log_warnx("stream %s: peer \"%s\" finds that we do not "
				  "prove its key (our [security] key_file "
				  "differs?); refused",
			    s->addr, log_escape(s->auth->name));
		hello_refuse(s, HELLO_REFUSED_PROOF, "our proof was refused");
		return;
	}
	if (!hello_proof_ok(s, m->mac)) {
		hello_bad_proof(s);
		return;
	}
	hello_authenticated(s);
}

/*
 * A frame in STREAM_AUTH that is not an AUTH frame.  A HELLO request
 * comes from a keyless initiator: it gets an EACCES reply to log.
 */
static void
hello_unauthenticated(struct stream *s, const uint8_t *frame)
{
	if (!s->outbound && frame[4] == PROTO_HELLO &&
	    !proto_frame_is_reply(frame)) {
		struct proto_rep rep = { .type = PROTO_HELLO,
			.error = -EACCES };

		for (int i = 7; i >= 0; i--)
			rep.id = rep.id << 8 | frame[8 + i];
		hello_ops->send_rep(s, &rep);
		if (hello_log_ok())
			log_warnx("stream %s: sends HELLO without "
				  "authenticating: it has no [security] "
				  "key_file, and we have one; refused",
			    s->addr);
		hello_refuse(s, HELLO_REFUSED_NO_KEY,
		    "it has no key, we have one");
		return;
	}
	if (hello_log_ok())
		log_warnx("stream %s: a %s frame before authentication; "
			  "refused",
		    s->addr, proto_type_name(frame[4]));
	hello_refuse(s, HELLO_REFUSED_PROTOCOL, "frame before authentication");
}

/*
 * A frame in STREAM_AUTH, or an AUTH frame in any state: the exchange.
 * Returns 0 (the stream may have been closed), or -EPROTO.
 */
int
hello_auth(struct stream *s, const uint8_t *frame, size_t len)
{
	struct auth_msg m;

	if (s->state == STREAM_AUTH && !auth_frame_is_auth(frame)) {
		hello_unauthenticated(s, frame);
		return 0;
	}
	if (auth_decode(frame, len, &m) != 0) {
		if (hello_log_ok())
			log_warnx("stream %s: malformed authentication frame; "
				  "refused",
			    s->addr);
		hello_refuse(s, HELLO_REFUSED_PROTOCOL, "malformed AUTH");
		return 0;
	}
	if (conf->key == NULL && !s->outbound && s->state == STREAM_HELLO &&
	    m.step == AUTH_CHALLENGE) {
		hello_keyless(s, &m);
		return 0;
	}
	if (s->state != STREAM_AUTH)
		return -EPROTO;
	if (s->outbound && m.step == AUTH_ANSWER && s->auth != NULL &&
	    !s->auth->done)
		hello_on_answer(s, &m);
	else if (!s->outbound && m.step == AUTH_CHALLENGE && s->auth == NULL)
		hello_on_challenge(s, &m);
	else if (!s->outbound && m.step == AUTH_PROOF && s->auth != NULL &&
	    s->auth->answered)
		hello_on_proof(s, &m);
	else {
		if (hello_log_ok())
			log_warnx("stream %s: authentication step %u out of "
				  "order; refused",
			    s->addr, m.step);
		hello_refuse(s, HELLO_REFUSED_PROTOCOL, "AUTH out of order");
	}
	return 0;
}

/*
 * Whether the 4 bytes at hdr, which should start a frame before the
 * handshake, start a TLS record instead (handshake or alert, TLS 1.0 to
 * 1.3 record versions): one side has encrypt = yes, the other not.
 * With a key the first frame is small, so its length's high bytes are
 * 0 and cannot be mistaken; without one, a TLS record long enough to
 * make the third byte count says so.
 */
bool
hello_tls_mismatch(struct stream *s, const uint8_t *hdr)
{
	if (s->tls || (hdr[0] != 0x15 && hdr[0] != 0x16) || hdr[1] != 3 ||
	    (hdr[2] != 1 && hdr[2] != 3) ||
	    (s->state != STREAM_AUTH && hdr[3] == 0))
		return false;
	if (hello_log_ok())
		log_warnx("stream %s: the other side speaks TLS and we do not: "
			  "set [security] encrypt the same on both; refused",
		    s->addr);
	hello_refuse(s, HELLO_REFUSED_TLS, "TLS on one side only");
	return true;
}

/* Count a TLS handshake that failed (stream.c logs the error). */
void
hello_tls_failed(struct stream *s, const char *why)
{
	hello_refuse(s, HELLO_REFUSED_TLS, why);
}

/*
 * The stream closes in the middle of the exchange (EOF, deadline,
 * error): counted, unless it was refused for a reason already.
 */
void
hello_auth_closed(struct stream *s, const char *reason)
{
	if (s->state != STREAM_AUTH || s->refused ||
	    (s->auth != NULL && s->auth->done))
		return;
	hello_refused[HELLO_REFUSED_UNFINISHED]++;
	/* Dropped unanswered: a TLS peer, or one that refuses us. */
	if (s->outbound && hello_log_ok())
		log_warnx("stream %s: %s before it answered our challenge "
			  "(does its [security] encrypt differ?)",
		    s->addr, reason);
}

/* Our HELLO was refused with error (a negative errno): say why. */
void
hello_refused_reply(struct stream *s, int error)
{
	if (error == -EACCES) {
		if (hello_log_ok())
			log_warnx("stream %s: handshake refused: the other "
				  "side has a [security] key_file, and we "
				  "have none",
			    s->addr);
		hello_refuse(s, HELLO_REFUSED_KEYLESS,
		    "it has a key, we have none");
		return;
	}
	log_warnx("stream %s: handshake refused: %s", s->addr,
	    error ? strerror(-error) : "protocol version differs");
	hello_ops->close(s, "handshake refused");
}

/*
 * The capabilities we announce and use: all we have, or, in a test
 * daemon (debug.time_control), those of PUFS_TEST_CAPS (a number), so
 * that a peer of an older version can be played.
 */
static uint64_t
hello_caps(void)
{
	const char *v = getenv("PUFS_TEST_CAPS");

	if (!conf->debug_time_control || v == NULL)
		return PROTO_CAPS;
	return strtoull(v, NULL, 0) & PROTO_CAPS;
}

/* Our handshake body. */
void
hello_body(struct proto_hello *h)
{
	struct peer *self = peer_self();
	static struct proto_export ex[PROTO_MAX_EXPORTS];

	memset(h, 0, sizeof *h);
	h->magic = PROTO_MAGIC;
	h->version = PROTO_VERSION;
	h->caps = hello_caps();
	h->name = self->name;
	h->uri = self->uri;
	h->uptime_ms = (uint64_t)(loop_uptime() * 1000);
	h->boot_id = peer_boot_id();
	h->nexports = self->nexports;
	for (uint32_t i = 0; i < self->nexports && i < PROTO_MAX_EXPORTS; i++) {
		ex[i].id = i;
		ex[i].name = self->exports[i].name;
		ex[i].at = self->exports[i].at;
		ex[i].read_only = self->exports[i].read_only;
	}
	h->exports = ex;
}

/*
 * Whether the other side's handshake names a valid peer at a numeric
 * address; if not, the stream is closed (logged, rate-limited).
 */
bool
hello_ok(struct stream *s, const struct proto_hello *h)
{
	if (!proto_peer_name_ok(h->name) || !proto_uri_ok(h->uri)) {
		if (log_rate_ok(&hello_log_refused, loop_now_ms()))
			log_warnx("stream %s: handshake names peer \"%s\" at "
				  "\"%s\": not a valid name and URI; refused",
			    s->addr, log_escape(h->name), log_escape(h->uri));
		hello_ops->close(s, "bad peer name or URI");
		return false;
	}
	if (s->auth != NULL && strcmp(h->name, s->auth->name) != 0) {
		if (hello_log_ok())
			log_warnx("stream %s: handshake names peer \"%s\", but "
				  "\"%s\" authenticated; refused",
			    s->addr, log_escape(h->name),
			    log_escape(s->auth->name));
		hello_refuse(s, HELLO_REFUSED_PROTOCOL, "name differs");
		return false;
	}
	if (!peer_uri_numeric(h->uri)) {
		if (log_rate_ok(&hello_log_refused, loop_now_ms()))
			log_warnx("stream %s: peer %s gives a non-numeric "
				  "address %s; refused",
			    s->addr, h->name, log_escape(h->uri));
		hello_ops->close(s, "non-numeric URI");
		return false;
	}
	return true;
}

/* The handshake is done: attach the stream to its peer. */
void
hello_established(struct stream *s, const struct proto_hello *h)
{
	struct peer *p;
	bool retired;

	if (!hello_ok(s, h))
		return;
	if (strcmp(h->name, peer_self()->name) == 0) {
		hello_ops->close(s, "the other side has our own name");
		return;
	}
	p = peer_attach(h, s, s->outbound, &retired);
	if (p == NULL) {
		/* A stream to that peer exists already and wins. */
		struct proto_req bye = { .type = PROTO_BYE, .id = 0 };

		hello_ops->say_bye(s, &bye);
		hello_ops->close(s, "duplicate stream");
		return;
	}
	s->peer = p;
	s->caps = h->caps & hello_caps();
	hello_ops->set_state(s, STREAM_UP);
	s->last_heard = loop_now_ms();
	hello_ops->flow(s);
	if (retired) {
		/* The loser of crossed dials: the other side closes it. */
		hello_ops->retire(s);
		return;
	}
	/* Ping at once: the first round trip and clock sample. */
	timer_wheel_add(loop_wheel(), &s->hb, loop_now_ms());
	loop_wheel_kick();
}
