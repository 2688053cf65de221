/*
 * testutil.h - small helpers the randomised unit tests share: a
 * repeatable pseudo-random generator and a clock for the figures.
 *
 * Header-only, static functions and state: each test program has its own
 * generator, seeded with the same constant so that failures repeat,
 * unless PUFS_SEED says otherwise (rng_seed()).  Not thread-safe.
 */
#ifndef PUFS_TESTUTIL_H
#define PUFS_TESTUTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "tap.h"

#define TU_UNUSED __attribute__((unused))

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

/* xorshift64*: a small repeatable generator. */
TU_UNUSED static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

/* Seed the generator from $PUFS_SEED when set, and report the seed. */
TU_UNUSED static void
rng_seed(void)
{
	const char *seed = getenv("PUFS_SEED");

	if (seed != NULL)
		rng_state = strtoull(seed, NULL, 0) | 1;
	tap_diag("seed %llu", (unsigned long long)rng_state);
}

/* A number in [0, n). */
TU_UNUSED static uint64_t
rng_below(uint64_t n)
{
	return n == 0 ? 0 : rng() % n;
}

/* Seconds of CLOCK_MONOTONIC, for the figures. */
TU_UNUSED static double
seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
