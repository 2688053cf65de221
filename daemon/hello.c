/*
 * hello.c - a stream's handshake (proto/PROTOCOL.md, HELLO): our body
 * of it, the check of the other side's, and attaching the stream to its
 * peer when it is done.  Reaches the stream through the stream_ops of
 * stream.c (stream-int.h).
 */
#include <stdlib.h>
#include <string.h>

#include "pufs.h"
#include "stream-int.h"

struct log_rate hello_log_refused = LOG_RATE_INIT("refused streams");
static const struct stream_ops *hello_ops;

/* What the stream lets us do to it (stream_init). */
void
hello_init(const struct stream_ops *ops)
{
	hello_ops = ops;
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

	if (!hello_ok(s, h))
		return;
	if (strcmp(h->name, peer_self()->name) == 0) {
		hello_ops->close(s, "the other side has our own name");
		return;
	}
	p = peer_attach(h, s, s->outbound);
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
	/* Ping at once: the first round trip and clock sample. */
	timer_wheel_add(loop_wheel(), &s->hb, loop_now_ms());
	loop_wheel_kick();
}
