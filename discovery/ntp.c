/*
 * ntp.c - the offset of a remote clock from round trips (see ntp.h).
 *
 * Limits: the offset is assumed constant over the last NTP_SAMPLES
 * samples (a few heartbeats); drift is not modelled.
 */
#include <string.h>

#include "ntp.h"

/* Forget every sample. */
void
ntp_reset(struct ntp *c)
{
	memset(c, 0, sizeof *c);
}

/* Add a round trip; keep the best of the last NTP_SAMPLES. */
int
ntp_sample(struct ntp *c, uint64_t t0, uint64_t t3, uint64_t remote)
{
	const struct ntp_sample *best;

	if (t3 < t0)
		return -1;
	c->s[c->next] = (struct ntp_sample){
		.offset = (int64_t)(remote - t0 / 2 - t3 / 2 -
		    (t0 % 2 + t3 % 2) / 2),
		.error = (int64_t)((t3 - t0) / 2),
	};
	c->next = (c->next + 1) % NTP_SAMPLES;
	if (c->n < NTP_SAMPLES)
		c->n++;
	best = &c->s[0];
	for (unsigned i = 1; i < c->n; i++)
		if (c->s[i].error < best->error)
			best = &c->s[i];
	c->offset = best->offset;
	c->error = best->error;
	return 0;
}
