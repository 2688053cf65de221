/*
 * latency.c - histograms of how long FUSE requests and calls took.
 *
 * A parked FUSE request is timed from fsop_new() to fsop_free(), after
 * its reply; a call from call_send() to its callback, a timeout included.
 * Calls are kept by peer name, so a peer that leaves and comes back goes
 * on with the same series; at most LATENCY_MAX_PEERS names are kept and
 * the calls to any further peer count under LATENCY_OTHER.  The buckets
 * run from 50 us (a call on a local worker) to 10 s (op_timeout's
 * default).
 */
#include <stdlib.h>
#include <string.h>

#include "pufs.h"

#define LATENCY_MAX_PEERS 256
#define LATENCY_OTHER "(other)"

const uint64_t latency_bounds_us[LATENCY_NBOUNDS] = { 50, 100, 250, 500, 1000,
	2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000,
	2500000, 5000000, 10000000 };

/* The calls to one peer, by type; a histogram is made on first use. */
struct latency_peer {
	char *name;                               /* owned */
	struct latency_hist *ops[PROTO_TYPE_MAX]; /* owned */
};

static struct latency_hist latency_fuse[PROTO_TYPE_MAX];
static struct latency_peer *latency_peers; /* owned */
static size_t latency_npeers;

/* Count one duration of us microseconds into h. */
static void
latency_add(struct latency_hist *h, uint64_t us)
{
	size_t i = 0;

	while (i < LATENCY_NBOUNDS && us > latency_bounds_us[i])
		i++;
	if (i < LATENCY_NBOUNDS)
		h->bucket[i]++;
	h->count++;
	h->sum_us += us;
}

/* Microseconds from start_us to now, 0 if the clock went back. */
static uint64_t
latency_since(uint64_t start_us)
{
	uint64_t now = loop_mono_us();

	return now > start_us ? now - start_us : 0;
}

void
latency_fuse_done(uint8_t type, uint64_t start_us)
{
	if (type < PROTO_TYPE_MAX)
		latency_add(&latency_fuse[type], latency_since(start_us));
}

/* The entry of peer name, made if there is room (else "(other)"'s). */
static struct latency_peer *
latency_peer(const char *name)
{
	struct latency_peer *p;

	for (size_t i = 0; i < latency_npeers; i++)
		if (strcmp(latency_peers[i].name, name) == 0)
			return &latency_peers[i];
	if (latency_npeers == LATENCY_MAX_PEERS - 1 &&
	    strcmp(name, LATENCY_OTHER) != 0)
		return latency_peer(LATENCY_OTHER);
	latency_peers = xreallocarray(latency_peers, latency_npeers + 1,
	    sizeof *latency_peers);
	p = &latency_peers[latency_npeers++];
	memset(p, 0, sizeof *p);
	p->name = xstrdup(name);
	return p;
}

void
latency_call_done(const char *peer, uint8_t type, uint64_t sent_us)
{
	struct latency_peer *p;

	if (type >= PROTO_TYPE_MAX)
		return;
	p = latency_peer(peer);
	if (p->ops[type] == NULL)
		p->ops[type] = xcalloc(1, sizeof *p->ops[type]);
	latency_add(p->ops[type], latency_since(sent_us));
}

void
latency_foreach(latency_fn fn, void *arg)
{
	for (int t = 0; t < PROTO_TYPE_MAX; t++)
		if (latency_fuse[t].count != 0)
			fn(NULL, (uint8_t)t, &latency_fuse[t], arg);
	for (size_t i = 0; i < latency_npeers; i++)
		for (int t = 0; t < PROTO_TYPE_MAX; t++)
			if (latency_peers[i].ops[t] != NULL)
				fn(latency_peers[i].name, (uint8_t)t,
				    latency_peers[i].ops[t], arg);
}

/* Free the peers' histograms (at exit). */
void
latency_free(void)
{
	for (size_t i = 0; i < latency_npeers; i++) {
		for (int t = 0; t < PROTO_TYPE_MAX; t++)
			free(latency_peers[i].ops[t]);
		free(latency_peers[i].name);
	}
	free(latency_peers);
	latency_peers = NULL;
	latency_npeers = 0;
}
