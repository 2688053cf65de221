/*
 * ntp.h - estimating the offset between two clocks from round trips,
 * as NTP does: pure arithmetic, no clock reads.
 */
#ifndef PUFS_NTP_H
#define PUFS_NTP_H

#include <stdint.h>

#define NTP_SAMPLES 8

struct ntp_sample {
	int64_t offset; /* ns: remote clock minus ours */
	int64_t error;  /* ns, >= 0: half the round trip */
};

/* The last NTP_SAMPLES samples and the best of them. */
struct ntp {
	struct ntp_sample s[NTP_SAMPLES];
	unsigned n, next;
	int64_t offset, error; /* of the best sample; 0 with none */
};

/* Forget every sample. */
void ntp_reset(struct ntp *);

/*
 * A round trip: t0 and t3 our clock at sending and at the answer, remote
 * the other clock when it answered (all ns).  offset = remote - (t0 +
 * t3) / 2 within (t3 - t0) / 2; of the last NTP_SAMPLES samples the one
 * with the smallest bound is kept (the fastest round trip is the least
 * skewed by queueing).  Returns -1 (and keeps nothing) if t3 < t0.
 */
int ntp_sample(struct ntp *, uint64_t t0, uint64_t t3, uint64_t remote);

#endif
