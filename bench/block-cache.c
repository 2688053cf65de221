/*
 * block-cache.c - figures for cache/block-cache.c alone: no I/O, one
 * thread, a 256 MiB budget of 128 KiB blocks (override with -b BYTES
 * and -s BLOCK_SIZE).  Each figure is the best of -r runs (default 5)
 * of a timed loop; a Markdown table goes to standard output.
 *
 *  - get+write, new blocks: get a block absent from the cache and write
 *    all of it, until the budget is full of dirty blocks (the file is
 *    dropped between runs, untimed);
 *  - write-behind cycle: the same at steady state, each block also taken
 *    for writing back and its write-back ended, so later gets evict;
 *  - read hit, 4 KiB and whole block: block_cache_read() of valid
 *    blocks, at random places in a full cache;
 *  - invalidate, cached: a 4 KiB range of a valid block, which frees it
 *    (refilled between runs, untimed), and of a dirty block, which stays;
 *  - invalidate, not cached: a 4 KiB range of a 1 TiB file of which the
 *    cache holds blocks, mostly elsewhere;
 *  - find, hit.
 *
 * Built with the tree, never run by the tests: bench-block-cache in the
 * cache/ build directory.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"

static struct block_cache *c;
static uint32_t bs = 128u << 10;
static size_t budget = (size_t)256 << 20;
static size_t nfit; /* blocks the budget holds */
static unsigned char *buf;
static uint64_t rs = 0x9e3779b97f4a7c15ull;

/* xorshift64*, for the places read and invalidated. */
static uint64_t
rnd(void)
{
	rs ^= rs >> 12;
	rs ^= rs << 25;
	rs ^= rs >> 27;
	return rs * 0x2545f4914f6cdd1dull;
}

/* Seconds of CLOCK_MONOTONIC. */
static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Die with a message: a figure taken on a broken cache means nothing. */
static void
die(const char *what)
{
	fprintf(stderr, "bench-block-cache: %s\n", what);
	exit(1);
}

/* Fill file 1 with nfit valid blocks, untimed. */
static void
fill_valid(void)
{
	struct block *b;
	size_t i;

	block_cache_drop_file(c, 1);
	for (i = 0; i < nfit; i++) {
		if ((b = block_cache_get(c, 1, i)) == NULL ||
		    !block_cache_fill(c, b, b->gen, buf, bs))
			die("fill");
	}
}

/* Fill file 1 with nfit blocks not valid, 4 KiB of each dirty, untimed. */
static void
fill_dirty(void)
{
	struct block *b;
	size_t i;

	block_cache_drop_file(c, 1);
	for (i = 0; i < nfit; i++) {
		if ((b = block_cache_get(c, 1, i)) == NULL ||
		    block_cache_write(c, b, bs / 2, buf, 4096) != 0)
			die("fill dirty");
	}
}

/* get+write of whole new blocks until the budget is full; ops done. */
static size_t
run_get_write(void)
{
	struct block *b;
	size_t i;

	for (i = 0; i < nfit; i++)
		if ((b = block_cache_get(c, 2, i)) == NULL ||
		    block_cache_write(c, b, 0, buf, bs) != 0)
			die("get+write");
	return nfit;
}

/* get, write, take, done of whole blocks, evicting at steady state. */
static size_t
run_cycle(void)
{
	static uint64_t next;
	struct block_range rg;
	struct block *b;
	size_t i, n = 2 * nfit;

	for (i = 0; i < n; i++, next++) {
		if ((b = block_cache_get(c, 3, next)) == NULL ||
		    block_cache_write(c, b, 0, buf, bs) != 0 ||
		    block_cache_writeback_take(c, b, &rg, 1) != 1)
			die("cycle");
		block_cache_writeback_done(c, b, rg.hi - rg.lo, true);
	}
	return n;
}

/* Reads of len bytes at random places of file 1's valid blocks. */
static size_t
run_read(uint32_t len)
{
	static unsigned char out[16u << 20];
	size_t i, n = 1000000;
	uint64_t r;

	if (len == bs)
		n = 20000;
	for (i = 0; i < n; i++) {
		r = rnd();
		if (!block_cache_read(c, 1, r % nfit,
			(uint32_t)(r >> 32) % (bs / len) * len, len, out))
			die("read missed");
	}
	return n;
}

static size_t
run_read_4k(void)
{
	return run_read(4096);
}

static size_t
run_read_block(void)
{
	return run_read(bs);
}

/* Invalidate a 4 KiB range of each cached block of file 1, in turn. */
static size_t
run_inval_cached(void)
{
	size_t i;

	for (i = 0; i < nfit; i++)
		block_cache_invalidate(c, 1, i * bs + bs / 2, 4096);
	return nfit;
}

/* Invalidate 4 KiB ranges at random places of a 1 TiB file. */
static size_t
run_inval_absent(void)
{
	size_t i, n = 1000000;

	for (i = 0; i < n; i++)
		block_cache_invalidate(c, 1, (rnd() % (1ull << 40)) & ~4095ull,
		    4096);
	return n;
}

/* Lookups of cached blocks. */
static size_t
run_find(void)
{
	size_t i, n = 2000000;

	for (i = 0; i < n; i++)
		if (block_cache_find(c, 1, rnd() % nfit) == NULL)
			die("find missed");
	return n;
}

/* The best rate of runs runs of fn, with setup (untimed) before each. */
static double
best(size_t (*fn)(void), void (*setup)(void), int runs)
{
	double t, rate, top = 0;
	size_t n;
	int i;

	for (i = 0; i < runs; i++) {
		if (setup != NULL)
			setup();
		t = now();
		n = fn();
		t = now() - t;
		rate = (double)n / t;
		if (rate > top)
			top = rate;
	}
	return top;
}

/* Empty file 2 and the cache's other files, for the next get+write. */
static void
drop_written(void)
{
	block_cache_drop_file(c, 1);
	block_cache_drop_file(c, 2);
	block_cache_drop_file(c, 3);
}

/* Print one row: ops/s and, if bytes per op, what that is in GB/s. */
static void
row(const char *name, double rate, double bytes)
{
	if (bytes > 0)
		printf("| %s | %.0f | %.2f |\n", name, rate,
		    rate * bytes / 1e9);
	else
		printf("| %s | %.0f | |\n", name, rate);
}

int
main(int argc, char **argv)
{
	const char *why;
	int ch, runs = 5;
	double r;

	while ((ch = getopt(argc, argv, "b:r:s:")) != -1)
		switch (ch) {
		case 'b':
			budget = strtoull(optarg, NULL, 0);
			break;
		case 'r':
			runs = atoi(optarg);
			break;
		case 's':
			bs = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		default:
			fprintf(stderr,
			    "usage: bench-block-cache [-b budget] "
			    "[-r runs] [-s block_size]\n");
			return 2;
		}
	if ((c = block_cache_new(bs, budget)) == NULL)
		die(errno == EINVAL ? "bad block size or budget" : "no memory");
	if ((buf = malloc(bs)) == NULL)
		die("no memory");
	memset(buf, 'x', bs);
	nfit = budget / (bs + block_cache_block_overhead());

	printf("Block cache (pure): %u KiB blocks, %zu MiB budget (%zu "
	       "blocks), best of %d\n\n",
	    bs >> 10, budget >> 20, nfit, runs);
	printf("| operation | ops/s | GB/s |\n|---|--:|--:|\n");
	r = best(run_get_write, drop_written, runs);
	row("get+write, whole new blocks", r, bs);
	drop_written();
	r = best(run_cycle, NULL, runs);
	row("get+write+take+done, evicting", r, bs);
	drop_written();
	fill_valid();
	r = best(run_read_4k, NULL, runs);
	row("read hit, 4 KiB", r, 4096);
	r = best(run_read_block, NULL, runs);
	row("read hit, whole block", r, bs);
	r = best(run_find, NULL, runs);
	row("find, hit", r, 0);
	r = best(run_inval_absent, NULL, runs);
	row("invalidate 4 KiB, not cached", r, 0);
	r = best(run_inval_cached, fill_valid, runs);
	row("invalidate 4 KiB of a valid block (freed)", r, 0);
	if (block_cache_peek(c, 1, nfit - 1) != NULL)
		die("invalidate left a valid block");
	r = best(run_inval_cached, fill_dirty, runs);
	row("invalidate 4 KiB of a dirty block (kept)", r, 0);
	if (block_cache_peek(c, 1, nfit - 1) == NULL)
		die("invalidate freed a dirty block");
	if ((why = block_cache_check(c)) != NULL)
		die(why);
	block_cache_free(c);
	free(buf);
	return 0;
}
