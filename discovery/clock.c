/*
 * clock.c - the union's global time, estimated NTP-style.
 *
 * Each daemon's local clock is CLOCK_REALTIME, moved by the debug skew
 * (-o debug.clock_skew) so that tests can give peers wrong clocks.  The
 * global time is the local clock of the reference, the live peer with
 * the longest uptime; every other peer estimates its offset from the
 * pings it sends the reference over their stream, NTP's way
 * (discovery/ntp.c: the best of the last 8 round trips).  The reference
 * itself has offset 0.
 *
 * Nothing relies on the clocks agreeing for correctness: change records
 * carry times for information, and incremental listings are checked by
 * sequence numbers as well as times.
 */
#include <string.h>
#include <time.h>

#include "discovery.h"
#include "log.h"
#include "loop.h"
#include "ntp.h"

static struct {
	struct peer *ref; /* NULL: we are the reference */
	uint64_t ref_boot;
	struct ntp est; /* against ref (discovery/ntp.c) */
	uint64_t samples;
} ck;

/* Our local clock, ns: real time plus the debug skew. */
uint64_t
clock_local_ns(void)
{
	struct timespec ts;
	int64_t skew = conf != NULL ? (int64_t)(conf->debug_clock_skew * 1e9)
				    : 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + skew);
}

/* The union's global time, ns (our estimate of the reference's clock). */
uint64_t
clock_global_ns(void)
{
	return (uint64_t)((int64_t)clock_local_ns() + ck.est.offset);
}

/* Milliseconds a peer has been up, now. */
static uint64_t
clock_uptime_ms(const struct peer *p)
{
	if (p->self)
		return (uint64_t)(loop_uptime() * 1000);
	return p->uptime_ms + (loop_now_ms() - p->since_ms);
}

/* The live peer with the longest uptime (ties: the lowest name). */
static struct peer *
clock_pick_reference(void)
{
	struct peer *p, *best = peer_self();

	TAILQ_FOREACH(p, &peers, entry)
	{
		if (p->state != PEER_UP || p == best)
			continue;
		if (clock_uptime_ms(p) > clock_uptime_ms(best) + 1000)
			best = p;
	}
	return best;
}

/* Start over against a new reference (or none). */
static void
clock_reset(struct peer *ref)
{
	ck.ref = ref;
	ck.ref_boot = ref != NULL ? ref->boot_id : 0;
	ntp_reset(&ck.est);
	if (ref != NULL)
		log_info("clock: reference is %s", ref->name);
}

/*
 * A ping to p came back: t0 and t3 our local times at sending and at the
 * answer, remote p's local time in it (ns; 0 if it sent none).
 */
void
clock_sample(struct peer *p, uint64_t t0, uint64_t t3, uint64_t remote)
{
	struct peer *ref = clock_pick_reference();

	if (ref == peer_self())
		ref = NULL;
	if (ref != ck.ref || (ref != NULL && ref->boot_id != ck.ref_boot))
		clock_reset(ref);
	if (p != ref || remote == 0 || ntp_sample(&ck.est, t0, t3, remote) != 0)
		return;
	ck.samples++;
}

/* A peer left: if it was the reference, pick again at the next ping. */
static void
clock_peer_state(struct peer *p, enum peer_state old)
{
	(void)old;
	if (p->state == PEER_DOWN && p == ck.ref)
		clock_reset(NULL);
}

/* Start: follow the peers' states (the reference may leave). */
void
clock_init(void)
{
	peer_on_state(clock_peer_state);
}

/* For status: offset and error bound (s) and the reference's name. */
void
clock_status(double *offset, double *error, const char **reference)
{
	*offset = (double)ck.est.offset / 1e9;
	*error = (double)ck.est.error / 1e9;
	*reference = ck.ref != NULL ? ck.ref->name : peer_self()->name;
}
