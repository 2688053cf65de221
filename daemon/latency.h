/*
 * latency.h - how long FUSE requests and calls took (latency.c), kept as
 * histograms for the metrics endpoint.  Loop thread only.
 */
#ifndef PUFS_LATENCY_H
#define PUFS_LATENCY_H

#include <stdint.h>

/* Upper bounds of the buckets, in microseconds; +Inf follows them. */
#define LATENCY_NBOUNDS 17
extern const uint64_t latency_bounds_us[LATENCY_NBOUNDS];

struct latency_hist {
	uint64_t count;
	uint64_t sum_us;
	uint64_t bucket[LATENCY_NBOUNDS]; /* not cumulative: this one only */
};

/* A FUSE request of type (PROTO_*) answered, parked at start_us. */
void latency_fuse_done(uint8_t type, uint64_t start_us);
/* A call of type to peer, sent at sent_us, completed (or timed out). */
void latency_call_done(const char *peer, uint8_t type, uint64_t sent_us);

/*
 * Each histogram with a count, FUSE requests first (peer NULL), then
 * calls by peer name and type.
 */
typedef void (*latency_fn)(const char *peer, uint8_t type,
    const struct latency_hist *, void *arg);
void latency_foreach(latency_fn, void *arg);
void latency_free(void);

#endif
