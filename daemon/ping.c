/*
 * ping.c - a stream's heartbeat and probe: the PING whose answer
 * measures the round trip, the heartbeat timer (the handshake deadline
 * until the stream is up), and the deadline of a probe's answer
 * (stream_probe).  Reaches the stream through the stream_ops of
 * stream.c (stream-int.h).
 */
#include <linux/sockios.h>
#include <stdio.h>
#include <sys/ioctl.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "pufs.h"
#include "stream-int.h"

#define STREAM_PROBE_MS 2000 /* at most; dead_after if less */

static const struct stream_ops *ping_ops;

/* What the stream lets us do to it (stream_init). */
void
ping_init(const struct stream_ops *ops)
{
	ping_ops = ops;
}

/* How long a probe waits for its answer: dead_after, at most 2 s. */
unsigned
ping_probe_ms(void)
{
	double ms = conf->dead_after * 1000;

	return ms < STREAM_PROBE_MS ? (unsigned)ms : STREAM_PROBE_MS;
}

/*
 * Bytes we sent that the other side has not taken: ours (under TLS,
 * the socket layer's records too), the kernel's.
 */
static size_t
ping_unacked(struct stream *s)
{
	size_t out = evbuffer_get_length(bufferevent_get_output(s->bev));
	int queued = 0;

	if (s->tls)
		out += tls_queued(s->bev);
	if (ioctl(bufferevent_getfd(s->bev), SIOCOUTQ, &queued) == 0 &&
	    queued > 0)
		out += (size_t)queued;
	return out;
}

/* Send a ping; its answer measures the round trip. */
int
ping_send(struct stream *s)
{
	struct proto_req ping = { .type = PROTO_PING };

	ping.id = s->ping_id = ping_ops->new_id();
	s->ping_sent = loop_mono_us();
	s->ping_t0 = clock_local_ns();
	return ping_ops->send_req(s, &ping);
}

/* The probe's answer did not come in time. */
void
ping_probe_expired(struct timer *t, void *arg)
{
	struct stream *s = arg;
	char reason[160];

	(void)t;
	if (s->state == STREAM_DEAD || s->probe_id == 0)
		return;
	snprintf(reason, sizeof reason,
	    "no answer to a ping within %u ms "
	    "(%s)",
	    ping_probe_ms(), s->probe_why);
	ping_ops->close(s, reason);
}

/*
 * The heartbeat: during the handshake it is the deadline; once up, it
 * pings every `heartbeat` seconds and drops a peer silent for longer
 * than `dead_after`; for a retired stream (stream_retire) it is the
 * deadline of the other side's close.
 */
void
ping_heartbeat(struct timer *t, void *arg)
{
	struct stream *s = arg;
	uint64_t now = loop_now_ms();
	size_t out;

	(void)t;
	if (s->state == STREAM_DEAD)
		return;
	if (s->state != STREAM_UP) {
		ping_ops->close(s, "handshake timed out");
		return;
	}
	if (s->peer->stream != s) {
		ping_ops->close(s, "retired: the other side kept it open");
		return;
	}
	/*
	 * Its answers may wait behind much data of ours (or we do not read
	 * them, see stream_flow): if it takes what we send, it is alive.
	 */
	out = ping_unacked(s);
	if (out < s->out_at_beat)
		s->last_heard = now;
	s->out_at_beat = out;
	if (now - s->last_heard > (uint64_t)(conf->dead_after * 1000)) {
		ping_ops->close(s, "silent for longer than dead_after");
		return;
	}
	if (ping_send(s) != 0) {
		ping_ops->close(s, "cannot send ping");
		return;
	}
	timer_wheel_add(loop_wheel(), &s->hb,
	    now + (uint64_t)(conf->heartbeat * 1000));
	loop_wheel_kick();
}
