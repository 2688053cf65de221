/*
 * test-block-cache.c - unit tests of cache/block-cache.c.
 *
 * Scripted cases for each function and each edge: ranges at 0 and at
 * block_size, len 0, touching and overlapping writes merging, writes
 * into a block being written back, a fill overtaken by an invalidation,
 * write-back failures, truncate into a dirty range and into a busy
 * block, drop_file with busy blocks, LRU order, eviction that never takes
 * a dirty or busy block, a budget that holds only dirty blocks (range
 * arrays included), tables that grow.  Then randomised runs against the
 * reference model of block-model.h, 100,000 operations in all over
 * three budgets, with block_cache_check() after every operation.  The
 * seed is fixed so failures repeat; PUFS_SEED overrides it.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "block-model.h"
#include "cache.h"
#include "tap.h"
#include "testutil.h"

#define BS 4096u

/* One block's charge with at most one dirty range. */
static size_t
base(void)
{
	return BS + block_cache_block_overhead();
}

/* A cache of 4 KiB blocks with room for n blocks; aborts on failure. */
static struct block_cache *
mk(size_t n)
{
	struct block_cache *c = block_cache_new(BS, n * base());

	if (c == NULL)
		abort();
	return c;
}

/* The counters, by value. */
static struct block_cache_stats
stats(const struct block_cache *c)
{
	struct block_cache_stats st;

	block_cache_stats(c, &st);
	return st;
}

/* Whether b's ranges are exactly the n pairs lo, hi given. */
static bool
ranges_are(const struct block *b, uint32_t n, ...)
{
	va_list ap;
	uint32_t i;
	bool same = b->ndirty == n;

	va_start(ap, n);
	for (i = 0; i < n && same; i++) {
		uint32_t lo = va_arg(ap, uint32_t), hi = va_arg(ap, uint32_t);

		same = b->dirty[i].lo == lo && b->dirty[i].hi == hi;
	}
	va_end(ap);
	if (!same)
		for (i = 0; i < b->ndirty; i++)
			tap_diag("  range %u: [%u, %u)", i, b->dirty[i].lo,
			    b->dirty[i].hi);
	return same;
}

/* Write n bytes of value v at off. */
static int
wr(struct block_cache *c, struct block *b, uint32_t off, uint32_t n, int v)
{
	unsigned char buf[BS];

	memset(buf, v, sizeof buf);
	return block_cache_write(c, b, off, buf, n);
}

/* Whether bytes [off, off + n) of b all equal v. */
static bool
bytes_are(const struct block *b, uint32_t off, uint32_t n, int v)
{
	unsigned char got[BS];
	uint32_t i;

	block_cache_bytes(b, off, n, got);
	for (i = 0; i < n; i++)
		if (got[i] != (unsigned char)v)
			return false;
	return true;
}

/* Whether the cache's walk agrees with its counters; report if not. */
static void
check(const struct block_cache *c, const char *name)
{
	const char *why = block_cache_check(c);

	tap_ok(why == NULL, "%s: consistent", name);
	if (why != NULL)
		tap_diag("  %s", why);
}

static void
test_new(void)
{
	struct block_cache *c;

	errno = 0;
	tap_ok(block_cache_new(0, 1 << 30) == NULL && errno == EINVAL,
	    "new: block size 0 is EINVAL");
	tap_ok(block_cache_new(2048, 1 << 30) == NULL && errno == EINVAL,
	    "new: 2 KiB blocks are EINVAL");
	tap_ok(block_cache_new(12288, 1 << 30) == NULL && errno == EINVAL,
	    "new: a size not a power of two is EINVAL");
	tap_ok(block_cache_new(32u << 20, (size_t)1 << 34) == NULL &&
		errno == EINVAL,
	    "new: 32 MiB blocks are EINVAL");
	tap_ok(block_cache_new(BS, 4 * base() - 1) == NULL && errno == EINVAL,
	    "new: a budget under four blocks is EINVAL");
	c = block_cache_new(BS, 4 * base());
	tap_ok(c != NULL, "new: four blocks' budget");
	tap_is_int(block_cache_block_size(c), BS, "block_size");
	block_cache_free(c);
	c = block_cache_new(16u << 20,
	    4 * ((16u << 20) + block_cache_block_overhead()));
	tap_ok(c != NULL, "new: 16 MiB blocks");
	block_cache_free(c);
	block_cache_free(NULL);
}

static void
test_get_find(void)
{
	struct block_cache *c = mk(8);
	struct block *b, *b2;

	tap_ok(block_cache_find(c, 1, 0) == NULL, "find: absent");
	b = block_cache_get(c, 1, 5);
	tap_ok(b != NULL && b->file == 1 && b->index == 5 && !b->valid &&
		b->ndirty == 0 && b->busy == 0 && !block_cache_covers(b, 0, 1),
	    "get: an empty block, knowing no byte");
	b2 = block_cache_get(c, 1, 5);
	tap_ok(b2 == b, "get: the same block again");
	tap_ok(block_cache_find(c, 1, 5) == b, "find: it");
	tap_ok(block_cache_peek(c, 1, 5) == b, "peek: it");
	tap_ok(block_cache_find(c, 2, 5) == NULL &&
		block_cache_find(c, 1, 4) == NULL,
	    "find: other keys absent");
	tap_is_int((long long)stats(c).blocks, 1, "stats: one block");
	tap_is_int((long long)stats(c).bytes, (long long)base(),
	    "stats: charged one block");
	tap_is_int((long long)stats(c).clean_blocks, 0,
	    "stats: an empty block is not clean");
	b2 = block_cache_get(c, UINT64_MAX, UINT64_MAX);
	tap_ok(b2 != NULL && b2 != b, "get: extreme keys");
	check(c, "get");
	block_cache_free(c);
}

static void
test_write_ranges(void)
{
	struct block_cache *c = mk(8);
	struct block *b = block_cache_get(c, 1, 0);

	tap_is_int(wr(c, b, 0, 0, 1), 0, "write: len 0 at 0 is a no-op");
	tap_is_int(wr(c, b, BS, 0, 1), 0, "write: len 0 at block_size too");
	tap_ok(b->ndirty == 0 && stats(c).dirty_blocks == 0,
	    "write: len 0 leaves nothing dirty");
	tap_is_int(wr(c, b, BS + 1, 0, 1), -EINVAL,
	    "write: off past block_size is EINVAL");
	tap_is_int(wr(c, b, BS - 1, 2, 1), -EINVAL,
	    "write: a range past the end is EINVAL");
	tap_is_int(block_cache_write(c, b, 10, "x", UINT32_MAX), -EINVAL,
	    "write: a huge len is EINVAL");
	tap_ok(b->ndirty == 0, "write: refused writes change nothing");

	tap_is_int(wr(c, b, 0, 10, 'a'), 0, "write [0, 10)");
	tap_ok(ranges_are(b, 1, 0u, 10u), "one range at 0");
	tap_is_int(wr(c, b, BS - 10, 10, 'z'), 0, "write the last 10 bytes");
	tap_ok(ranges_are(b, 2, 0u, 10u, BS - 10, BS), "two ranges, sorted");
	tap_is_int(wr(c, b, 10, 5, 'b'), 0, "write touching the first");
	tap_ok(ranges_are(b, 2, 0u, 15u, BS - 10, BS), "touching ranges merge");
	tap_is_int(wr(c, b, 100, 10, 'c'), 0, "write [100, 110)");
	tap_is_int(wr(c, b, 50, 10, 'd'), 0, "write [50, 60)");
	tap_ok(ranges_are(b, 4, 0u, 15u, 50u, 60u, 100u, 110u, BS - 10, BS),
	    "four ranges, sorted");
	tap_is_int(wr(c, b, 5, 100, 'e'), 0, "write over three ranges");
	tap_ok(ranges_are(b, 2, 0u, 110u, BS - 10, BS),
	    "overlapped ranges merge into one");
	tap_ok(bytes_are(b, 0, 5, 'a') && bytes_are(b, 5, 100, 'e') &&
		bytes_are(b, 105, 5, 'c'),
	    "the bytes are the latest written");
	tap_is_int((long long)stats(c).dirty_bytes, 120, "dirty_bytes");
	tap_is_int((long long)block_cache_file_dirty(c, 1), 120, "file_dirty");
	tap_is_int((long long)block_cache_file_dirty(c, 2), 0,
	    "file_dirty of a file without blocks");
	tap_is_int(wr(c, b, 0, BS, 'f'), 0, "write the whole block");
	tap_ok(ranges_are(b, 1, 0u, BS), "one range, the whole block");
	tap_is_int((long long)stats(c).dirty_blocks, 1, "one dirty block");
	tap_is_int((long long)stats(c).bytes, (long long)base(),
	    "one range is charged nothing more");
	check(c, "write");
	block_cache_free(c);
}

static void
test_covers_read(void)
{
	struct block_cache *c = mk(8);
	struct block *b = block_cache_get(c, 1, 0);
	unsigned char buf[BS], holder[BS];

	memset(holder, 'h', sizeof holder);
	wr(c, b, 100, 100, 'w');
	tap_ok(block_cache_covers(b, 100, 100), "covers: a dirty range");
	tap_ok(block_cache_covers(b, 150, 50), "covers: inside it, to its end");
	tap_ok(!block_cache_covers(b, 99, 2), "covers: not across its start");
	tap_ok(!block_cache_covers(b, 199, 2), "covers: not across its end");
	tap_ok(block_cache_covers(b, 0, 0) && block_cache_covers(b, BS, 0),
	    "covers: len 0 within the block");
	tap_ok(!block_cache_covers(b, BS + 1, 0), "covers: off past the end");
	tap_ok(block_cache_read(c, 1, 0, 120, 10, buf) &&
		memcmp(buf, "wwwwwwwwww", 10) == 0,
	    "read: dirty bytes of a block not valid");
	tap_ok(!block_cache_read(c, 1, 0, 0, 10, buf),
	    "read: unknown bytes miss");
	tap_ok(!block_cache_read(c, 1, 1, 0, 10, buf), "read: absent block");
	tap_ok(block_cache_read(c, 9, 9, 0, 0, buf),
	    "read: len 0 answers true");
	tap_ok(!block_cache_read(c, 1, 0, BS, 1, buf),
	    "read: past the end answers false");
	tap_is_int((long long)stats(c).hits, 1, "read: one hit");
	tap_is_int((long long)stats(c).misses, 2,
	    "read: two misses (len 0 and bad ranges uncounted)");
	tap_ok(block_cache_fill(c, b, b->gen, holder, 1000), "fill");
	tap_ok(b->valid && bytes_are(b, 0, 100, 'h') &&
		bytes_are(b, 100, 100, 'w') && bytes_are(b, 200, 800, 'h') &&
		bytes_are(b, 1000, BS - 1000, 0),
	    "fill: dirty bytes kept, holder's around, zeros past its end");
	tap_ok(block_cache_covers(b, 0, BS), "covers: all of a valid block");
	tap_ok(block_cache_read(c, 1, 0, BS - 8, 8, buf) &&
		memcmp(buf, "\0\0\0\0\0\0\0\0", 8) == 0,
	    "read: zeros past the holder's end");
	tap_ok(!block_cache_fill(c, b, b->gen, holder, BS + 1),
	    "fill: len past block_size is refused");
	tap_ok(block_cache_fill(c, b, b->gen, holder, 0) &&
		bytes_are(b, 0, 100, 0) && bytes_are(b, 100, 100, 'w'),
	    "fill: len 0, the file ends before the block");
	tap_is_int((long long)stats(c).clean_blocks, 0,
	    "a valid block with a dirty range is not clean");
	check(c, "read");
	block_cache_free(c);
}

static void
test_lru(void)
{
	struct block_cache *c = mk(4);
	struct block *b[5];
	unsigned char buf[8];
	int i;

	for (i = 0; i < 4; i++) {
		b[i] = block_cache_get(c, 1, (uint64_t)i);
		block_cache_fill(c, b[i], b[i]->gen, "data", 4);
	}
	tap_is_int((long long)stats(c).clean_blocks, 4, "four clean blocks");
	block_cache_find(c, 1, 0);            /* 0 is now the most recent */
	block_cache_read(c, 1, 1, 0, 4, buf); /* then 1 */
	b[4] = block_cache_get(c, 1, 4);
	tap_ok(b[4] != NULL && block_cache_peek(c, 1, 2) == NULL,
	    "eviction takes the least recently used");
	tap_ok(block_cache_peek(c, 1, 0) != NULL &&
		block_cache_peek(c, 1, 1) != NULL &&
		block_cache_peek(c, 1, 3) != NULL,
	    "and only it");
	tap_is_int((long long)stats(c).evicted, 1, "evicted counted");
	block_cache_peek(c, 1, 3); /* peek is not a use */
	block_cache_get(c, 2, 0);
	tap_ok(block_cache_peek(c, 1, 3) == NULL, "peek does not refresh");
	check(c, "lru");
	block_cache_free(c);
}

static void
test_never_evict_dirty_busy(void)
{
	struct block_cache *c = mk(4);
	struct block *b[4], *x;
	struct block_range rg[4];
	int i;

	for (i = 0; i < 4; i++)
		b[i] = block_cache_get(c, 1, (uint64_t)i);
	wr(c, b[0], 0, 1, 1);
	wr(c, b[1], 0, 1, 1);
	block_cache_hold(c, b[2]);
	block_cache_hold(c, b[3]);
	errno = 0;
	tap_ok(block_cache_get(c, 1, 9) == NULL && errno == ENOBUFS,
	    "get: ENOBUFS when only dirty or busy blocks are left");
	tap_is_int((long long)stats(c).evicted, 0, "nothing evicted");
	tap_ok(block_cache_peek(c, 1, 0) == b[0] &&
		block_cache_peek(c, 1, 2) == b[2],
	    "dirty and busy blocks stay");
	block_cache_fill(c, b[3], b[3]->gen, "x", 1);
	block_cache_unhold(c, b[3]);
	x = block_cache_get(c, 1, 9);
	tap_ok(x != NULL && block_cache_peek(c, 1, 3) == NULL,
	    "a block clean and idle again is evictable");
	block_cache_hold(c, x);
	tap_is_int((long long)block_cache_writeback_take(c, b[0], rg, 4), 1,
	    "take the dirty block's range");
	tap_ok(block_cache_get(c, 1, 10) == NULL,
	    "a block being written back is not evictable");
	block_cache_writeback_done(c, b[0], 1, true);
	tap_ok(block_cache_peek(c, 1, 0) == NULL,
	    "written back, not valid: freed");
	tap_ok(block_cache_get(c, 1, 10) != NULL, "room again");
	check(c, "evict");
	block_cache_free(c);
}

static void
test_writeback(void)
{
	struct block_cache *c = mk(8);
	struct block *b = block_cache_get(c, 1, 0), *v;
	struct block_range rg[8];
	unsigned char holder[BS];
	uint32_t n;

	memset(holder, 'h', sizeof holder);
	tap_is_int(block_cache_writeback_take(c, b, rg, 8), 0,
	    "take: nothing dirty");
	tap_is_int(b->busy, 0, "take: not held then");
	wr(c, b, 0, 10, 'a');
	wr(c, b, 20, 10, 'b');
	wr(c, b, 40, 10, 'c');
	tap_is_int(block_cache_writeback_take(c, b, rg, 0), 0, "take: max 0");
	n = block_cache_writeback_take(c, b, rg, 2);
	tap_ok(n == 2 && rg[0].lo == 0 && rg[0].hi == 10 && rg[1].lo == 20 &&
		rg[1].hi == 30,
	    "take: a block not valid gives each range, up to max");
	tap_ok(ranges_are(b, 1, 40u, 50u) && b->busy == 1,
	    "take: the rest stays dirty, the block is held");
	tap_is_int((long long)stats(c).dirty_bytes, 10,
	    "dirty_bytes after take");
	wr(c, b, 0, 5, 'n');
	tap_ok(ranges_are(b, 2, 0u, 5u, 40u, 50u),
	    "write into a block being written back: new ranges apart");
	block_cache_writeback_done(c, b, 20, true);
	tap_ok(block_cache_peek(c, 1, 0) == b && b->busy == 0 &&
		ranges_are(b, 2, 0u, 5u, 40u, 50u),
	    "done: the newer ranges stay dirty");
	tap_is_int((long long)stats(c).written_back, 20, "written_back");

	v = block_cache_get(c, 1, 1);
	block_cache_fill(c, v, v->gen, holder, BS);
	wr(c, v, 10, 10, 'a');
	wr(c, v, 100, 10, 'b');
	n = block_cache_writeback_take(c, v, rg, 8);
	tap_ok(n == 1 && rg[0].lo == 10 && rg[0].hi == 110,
	    "take: a valid block gives one span");
	tap_ok(v->ndirty == 0 && v->busy == 1 && v->valid,
	    "take: all of it taken");
	tap_is_int((long long)stats(c).clean_blocks, 1,
	    "a valid block being written back counts clean");
	block_cache_writeback_done(c, v, 100, false);
	tap_ok(block_cache_peek(c, 1, 1) == NULL,
	    "failed write-back of a valid block: freed, holder unknown");
	tap_is_int((long long)stats(c).writeback_errors, 1, "writeback_errors");

	v = block_cache_get(c, 1, 2);
	block_cache_fill(c, v, v->gen, holder, BS);
	wr(c, v, 10, 10, 'a');
	block_cache_writeback_take(c, v, rg, 8);
	wr(c, v, 500, 10, 'z');
	block_cache_writeback_done(c, v, 10, false);
	tap_ok(block_cache_peek(c, 1, 2) == v && !v->valid &&
		ranges_are(v, 1, 500u, 510u) &&
		!block_cache_covers(v, 10, 10) &&
		block_cache_covers(v, 500, 10),
	    "failed write-back, written since: not valid, newer range kept");

	v = block_cache_get(c, 1, 3);
	block_cache_fill(c, v, v->gen, holder, BS);
	wr(c, v, 10, 10, 'a');
	block_cache_writeback_take(c, v, rg, 8);
	block_cache_writeback_done(c, v, 10, true);
	tap_ok(block_cache_peek(c, 1, 3) == v && v->valid && v->ndirty == 0 &&
		bytes_are(v, 10, 10, 'a'),
	    "written back: a valid block is clean, with the bytes written");

	v = block_cache_get(c, 1, 4);
	wr(c, v, 0, BS / 2, 'p');
	tap_ok(!v->valid, "half written: not valid");
	wr(c, v, BS / 2, BS / 2, 'q');
	tap_ok(v->valid && ranges_are(v, 1, 0u, BS),
	    "all of it written: valid, it knows every byte");
	block_cache_writeback_take(c, v, rg, 8);
	block_cache_writeback_done(c, v, BS, true);
	tap_ok(block_cache_peek(c, 1, 4) == v && v->valid && v->ndirty == 0,
	    "written back: kept, clean, for reads");
	check(c, "writeback");
	block_cache_free(c);
}

static void
test_fill_gen(void)
{
	struct block_cache *c = mk(8);
	struct block *b = block_cache_get(c, 1, 0);
	struct block_range rg[4];
	unsigned char holder[BS];
	uint64_t gen;

	memset(holder, 'h', sizeof holder);
	block_cache_hold(c, b);
	gen = b->gen;
	block_cache_invalidate(c, 1, 0, 1);
	tap_ok(b->gen != gen, "invalidate moves gen");
	tap_ok(!block_cache_fill(c, b, gen, holder, BS) && !b->valid,
	    "a fill sent before an invalidation is ignored");
	tap_ok(block_cache_fill(c, b, b->gen, holder, BS) && b->valid,
	    "a fill of the current gen lands");
	block_cache_unhold(c, b);
	tap_ok(block_cache_peek(c, 1, 0) == b, "valid and idle: kept");
	block_cache_hold(c, b);
	block_cache_invalidate(c, 1, 0, 0);
	block_cache_unhold(c, b);
	tap_ok(block_cache_peek(c, 1, 0) == NULL,
	    "invalidated while held, nothing dirty: freed when let go");
	b = block_cache_get(c, 1, 0);
	block_cache_hold(c, b);
	block_cache_unhold(c, b);
	tap_ok(block_cache_peek(c, 1, 0) == NULL,
	    "a READ that failed: the empty block goes with its hold");

	b = block_cache_get(c, 1, 1);
	block_cache_hold(c, b); /* a READ goes out */
	gen = b->gen;
	wr(c, b, 0, 10, 'w');
	tap_ok(b->gen == gen, "a write does not move gen");
	block_cache_writeback_take(c, b, rg, 4);
	tap_ok(b->gen != gen && !block_cache_fill(c, b, gen, holder, BS),
	    "a fill sent before a write-back was taken is ignored");
	block_cache_hold(c, b); /* a READ during the WRITE */
	gen = b->gen;
	block_cache_writeback_done(c, b, 10, true);
	tap_ok(b->gen != gen && !block_cache_fill(c, b, gen, holder, BS),
	    "a fill sent during a write-back is ignored after it");
	tap_ok(block_cache_fill(c, b, b->gen, holder, BS) &&
		bytes_are(b, 0, 10, 'h'),
	    "a fill sent after it lands");
	block_cache_unhold(c, b);
	block_cache_unhold(c, b);
	check(c, "fill");
	block_cache_free(c);
}

static void
test_invalidate(void)
{
	struct block_cache *c = mk(16);
	struct block *b;
	uint64_t i, gen;

	for (i = 0; i < 6; i++) {
		b = block_cache_get(c, 1, i);
		block_cache_fill(c, b, b->gen, "x", 1);
	}
	b = block_cache_get(c, 2, 1);
	block_cache_fill(c, b, b->gen, "x", 1);
	block_cache_invalidate(c, 1, BS, BS);
	tap_ok(block_cache_peek(c, 1, 0) && !block_cache_peek(c, 1, 1) &&
		block_cache_peek(c, 1, 2),
	    "invalidate [bs, 2 bs): exactly block 1");
	block_cache_invalidate(c, 1, 3 * BS - 1, 2);
	tap_ok(!block_cache_peek(c, 1, 2) && !block_cache_peek(c, 1, 3),
	    "a range across a boundary takes both blocks");
	b = block_cache_peek(c, 1, 4);
	wr(c, b, 0, 10, 'd');
	gen = b->gen;
	block_cache_invalidate(c, 1, 4 * BS + 100, 1);
	tap_ok(block_cache_peek(c, 1, 4) == b && !b->valid && b->gen != gen &&
		ranges_are(b, 1, 0u, 10u),
	    "invalidate keeps a dirty block's ranges, not its validity");
	block_cache_invalidate(c, 1, 0, 0);
	tap_ok(!block_cache_peek(c, 1, 0) && !block_cache_peek(c, 1, 5) &&
		block_cache_peek(c, 1, 4) == b,
	    "len 0: to the end");
	tap_ok(block_cache_peek(c, 2, 1) != NULL, "other files untouched");
	block_cache_invalidate(c, 2, BS, UINT64_MAX);
	tap_ok(block_cache_peek(c, 2, 1) == NULL,
	    "an off + len that overflows: to the end");
	tap_is_int((long long)stats(c).invalidated, 7, "invalidated counted");
	block_cache_invalidate(c, 3, 0, 0);
	check(c, "invalidate");
	block_cache_free(c);
}

static void
test_truncate(void)
{
	struct block_cache *c = mk(16);
	struct block *b, *b2, *n;
	struct block_range rg[4];
	unsigned char holder[BS];
	uint64_t gen;

	memset(holder, 'h', sizeof holder);
	b = block_cache_get(c, 1, 0);
	block_cache_fill(c, b, b->gen, holder, BS);
	wr(c, b, 100, 200, 'd');
	wr(c, b, 400, 10, 'e');
	gen = b->gen;
	block_cache_truncate(c, 1, 200);
	tap_ok(ranges_are(b, 1, 100u, 200u), "truncate cuts a dirty range");
	tap_ok(b->valid && bytes_are(b, 0, 100, 'h') &&
		bytes_are(b, 100, 100, 'd') && bytes_are(b, 200, BS - 200, 0),
	    "truncate zeroes the bytes past size, the block stays valid");
	tap_ok(b->gen != gen, "truncate moves the last block's gen");
	tap_is_int((long long)stats(c).dirty_bytes, 100, "dirty bytes cut");

	b2 = block_cache_get(c, 1, 1);
	wr(c, b2, 0, 10, 'x');
	block_cache_hold(c, b2);
	gen = b2->gen;
	n = block_cache_get(c, 1, 2);
	wr(c, n, 0, 10, 'y');
	block_cache_truncate(c, 1, BS);
	tap_ok(block_cache_peek(c, 1, 1) == NULL &&
		block_cache_peek(c, 1, 2) == NULL,
	    "truncate at a boundary drops the blocks from there, dirty ones");
	tap_ok(block_cache_peek(c, 1, 0) == b && ranges_are(b, 1, 100u, 200u),
	    "and keeps the block before");
	tap_is_int((long long)stats(c).blocks, 2,
	    "a busy dropped block still counts until let go");
	tap_is_int((long long)block_cache_file_dirty(c, 1), 100,
	    "its dirty bytes are gone");
	tap_ok(!block_cache_fill(c, b2, gen, holder, BS),
	    "a fill of a dropped block is ignored");
	tap_is_int(wr(c, b2, 0, 1, 'z'), -ESTALE,
	    "a write into a dropped block is ESTALE");
	tap_is_int(block_cache_writeback_take(c, b2, rg, 4), 0,
	    "nothing to take from a dropped block");
	n = block_cache_get(c, 1, 1);
	tap_ok(n != NULL && n != b2, "get makes a new block in its place");
	block_cache_unhold(c, b2);
	tap_is_int((long long)stats(c).blocks, 2,
	    "the dropped block freed when let go");

	block_cache_hold(c, n);
	gen = n->gen;
	block_cache_truncate(c, 1, BS + 10);
	tap_ok(block_cache_peek(c, 1, 1) == n && n->gen != gen &&
		!block_cache_fill(c, n, gen, holder, BS),
	    "truncate into a busy block: a fill in flight is ignored");
	block_cache_unhold(c, n);
	tap_ok(block_cache_peek(c, 1, 1) == NULL,
	    "and the empty block goes with its hold");
	block_cache_truncate(c, 1, 0);
	tap_ok(block_cache_peek(c, 1, 0) == NULL && stats(c).blocks == 0,
	    "truncate to 0 drops everything");
	block_cache_truncate(c, 1, 0);
	check(c, "truncate");
	block_cache_free(c);
}

/*
 * The zero tail: bytes past ztail read as zeros and the buffer there is
 * never written, by a small write, a short fill or a truncate (poisoned
 * here to tell).
 */
static void
test_zero_tail(void)
{
	struct block_cache *c = mk(8);
	unsigned char buf[BS], holder[50];
	struct block *b = block_cache_get(c, 1, 0);

	tap_is_int(b->ztail, 0, "a new block's tail is all of it");
	memset(b->data, 0xaa, BS);
	wr(c, b, 100, 10, 'w');
	tap_is_int(b->ztail, 110, "a write moves the tail to its end");
	tap_ok(b->data[0] == 0xaa && b->data[99] == 0xaa,
	    "the gap below it untouched: nobody's bytes in a block not valid");
	tap_ok(b->data[110] == 0xaa && b->data[BS - 1] == 0xaa,
	    "the buffer past the tail untouched");
	memset(holder, 'h', sizeof holder);
	block_cache_fill(c, b, b->gen, holder, sizeof holder);
	tap_ok(b->valid && b->ztail == 110, "a short fill keeps the tail");
	tap_ok(block_cache_read(c, 1, 0, 0, BS, buf) && buf[0] == 'h' &&
		buf[49] == 'h' && buf[50] == 0 && buf[99] == 0 &&
		buf[100] == 'w' && buf[109] == 'w' && buf[110] == 0 &&
		buf[BS - 1] == 0,
	    "read: holder's, zeros, ours, then the tail's zeros");
	tap_ok(b->data[110] == 0xaa && b->data[BS - 1] == 0xaa,
	    "the fill wrote nothing past the tail");
	block_cache_truncate(c, 1, 20);
	tap_ok(b->ztail == 20 && b->ndirty == 0 && b->valid,
	    "truncate: the tail starts at the size");
	tap_ok(bytes_are(b, 20, BS - 20, 0) && b->data[BS - 1] == 0xaa,
	    "the bytes past it read as zeros, unwritten");
	wr(c, b, 3000, 4, 'x');
	tap_ok(b->ztail == 3004 && bytes_are(b, 20, 2980, 0) &&
		bytes_are(b, 3000, 4, 'x') && b->data[3004] == 0xaa,
	    "a write past the tail of a valid block: zeros up to it");
	check(c, "zero tail");
	block_cache_free(c);

	c = mk(8);
	b = block_cache_get(c, 1, 0);
	memset(b->data, 0xaa, BS);
	block_cache_fill(c, b, b->gen, "", 0);
	tap_ok(b->valid && b->ztail == 0 && bytes_are(b, 0, BS, 0) &&
		b->data[0] == 0xaa,
	    "an empty file's block is all tail, nothing written");
	block_cache_free(c);
}

static void
test_drop_file(void)
{
	struct block_cache *c = mk(16);
	struct block *b[4], *o;
	struct block_range rg[4];
	int i;

	for (i = 0; i < 4; i++) {
		b[i] = block_cache_get(c, 5, (uint64_t)i * 3);
		wr(c, b[i], 0, 10, 'a');
	}
	o = block_cache_get(c, 6, 0);
	wr(c, o, 0, 10, 'o');
	block_cache_hold(c, b[1]);
	block_cache_writeback_take(c, b[2], rg, 4);
	block_cache_drop_file(c, 5);
	tap_ok(block_cache_peek(c, 5, 0) == NULL &&
		block_cache_peek(c, 5, 3) == NULL &&
		block_cache_peek(c, 5, 6) == NULL,
	    "drop_file: no block found");
	tap_ok(block_cache_next_dirty(c, 5, 0) == NULL &&
		block_cache_file_dirty(c, 5) == 0,
	    "drop_file: nothing dirty left");
	tap_is_int((long long)stats(c).blocks, 3,
	    "drop_file: two busy blocks kept until let go");
	tap_ok(block_cache_peek(c, 6, 0) == o && o->ndirty == 1,
	    "drop_file: another file untouched");
	check(c, "drop_file, held");
	block_cache_writeback_done(c, b[2], 10, true);
	block_cache_unhold(c, b[1]);
	tap_is_int((long long)stats(c).blocks, 1,
	    "drop_file: freed when let go");
	tap_is_int((long long)stats(c).dirty_blocks, 1, "one dirty block left");
	block_cache_drop_file(c, 5);
	check(c, "drop_file");
	block_cache_free(c);
}

static void
test_next_dirty(void)
{
	struct block_cache *c = mk(1200);
	uint64_t order[1000], i, j, t, want;
	struct block *b;
	bool ok = true;

	for (i = 0; i < 1000; i++)
		order[i] = i;
	for (i = 999; i > 0; i--) {
		j = rng_below(i + 1);
		t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (i = 0; i < 1000; i++) {
		b = block_cache_get(c, 3, order[i] * 2);
		if (order[i] % 3 == 0)
			wr(c, b, 0, 1, 1);
		else
			block_cache_fill(c, b, b->gen, "x", 1);
	}
	check(c, "1000 blocks in random order");
	tap_ok(block_cache_next_dirty(c, 3, 0) == block_cache_peek(c, 3, 0),
	    "next_dirty from 0");
	for (i = 0; i < 2000 && ok; i++) {
		want = (i + 5) / 6 * 6;
		b = block_cache_next_dirty(c, 3, i);
		ok = want < 2000 ? b != NULL && b->index == want : b == NULL;
	}
	tap_ok(ok, "next_dirty from every index");
	tap_ok(block_cache_next_dirty(c, 3, 1999) == NULL,
	    "next_dirty past the last");
	tap_ok(block_cache_next_dirty(c, 4, 0) == NULL,
	    "next_dirty of a file without blocks");
	tap_is_int((long long)block_cache_file_dirty(c, 3), 334, "file_dirty");
	for (i = 0; i < 1000; i += 2)
		block_cache_invalidate(c, 3, order[i] * 2 * BS, 1);
	check(c, "half invalidated");
	block_cache_truncate(c, 3, 1000 * BS + 1);
	check(c, "truncated to half");
	tap_ok(block_cache_next_dirty(c, 3, 1000) == NULL,
	    "nothing past the truncation");
	block_cache_free(c);
}

static void
test_range_budget(void)
{
	struct block_cache *c = mk(4);
	struct block *b[4], *v;
	uint32_t j;
	int rc = 0, i;

	for (i = 0; i < 4; i++)
		b[i] = block_cache_get(c, 1, (uint64_t)i);
	v = b[3];
	block_cache_fill(c, v, v->gen, "", 0);
	for (i = 0; i < 3; i++)
		wr(c, b[i], 0, 1, 1);
	/* Alternate bytes: every write makes one more range. */
	for (j = 2; j < BS && rc == 0; j += 2)
		rc = wr(c, b[0], j, 1, 1);
	tap_is_int(rc, -ENOBUFS,
	    "write: ENOBUFS when the ranges cannot grow in the budget");
	tap_ok(stats(c).bytes <= 4 * base(), "the budget held");
	tap_ok(block_cache_peek(c, 1, 3) == NULL,
	    "the clean block was evicted for the ranges first");
	check(c, "ranges at the budget");
	block_cache_free(c);

	c = mk(4);
	for (i = 0; i < 4; i++) {
		b[i] = block_cache_get(c, 1, (uint64_t)i);
		wr(c, b[i], 0, 1, 1);
	}
	block_cache_fill(c, b[0], b[0]->gen, "", 0);
	rc = 0;
	for (j = 2; j < BS && rc == 0; j += 2)
		rc = wr(c, b[0], j, 1, 1);
	tap_is_int(rc, 0, "write: a valid block never ENOBUFS");
	tap_ok(b[0]->ndirty < BS / 2, "its ranges merged at the budget");
	tap_ok(b[0]->ndirty == 1 || b[0]->dirty[0].lo == 0,
	    "into a span from the first byte");
	check(c, "valid block ranges at the budget");
	rc = wr(c, b[1], 1000, 1, 1);
	tap_is_int(rc, -ENOBUFS, "write: a second range needs room");
	tap_ok(ranges_are(b[1], 1, 0u, 1u), "b unchanged");
	rc = wr(c, b[1], 1, 10, 2);
	tap_is_int(rc, 0, "write: a touching range needs none");
	block_cache_free(c);

	c = mk(64);
	v = block_cache_get(c, 1, 0);
	rc = 0;
	for (j = 0; j < BS && rc == 0; j += 2)
		rc = wr(c, v, j, 1, 1);
	tap_ok(rc == 0 && v->ndirty == BS / 2, "write: 2048 ranges in a block");
	tap_ok(stats(c).bytes >= base() + (BS / 2) * sizeof(struct block_range),
	    "charged for them");
	for (j = 1; j < BS && rc == 0; j += 2)
		rc = wr(c, v, j, 1, 1);
	tap_ok(ranges_are(v, 1, 0u, BS), "filling the gaps merges them all");
	tap_is_int((long long)stats(c).bytes, (long long)base(),
	    "and the range array goes");
	check(c, "many ranges");
	block_cache_free(c);
}

static void
test_abort(void)
{
	struct block_cache *c;
	struct block *b;
	int status = 0;
	pid_t pid;

	fflush(stdout);
	if ((pid = fork()) == 0) {
		c = mk(4);
		b = block_cache_get(c, 1, 0);
		block_cache_unhold(c, b);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	tap_ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
	    "unhold without a hold aborts");
}

static void
test_growth(void)
{
	struct block_cache *c = mk(40000);
	uint64_t i;
	bool ok = true;

	for (i = 0; i < 30000 && ok; i++)
		ok = block_cache_get(c, i % 1000, i / 1000) != NULL;
	tap_ok(ok, "30000 blocks in 1000 files");
	check(c, "tables grown");
	for (i = 0; i < 30000 && ok; i++)
		ok = block_cache_peek(c, i % 1000, i / 1000) != NULL;
	tap_ok(ok, "all found");
	for (i = 0; i < 1000; i++)
		block_cache_drop_file(c, i);
	tap_ok(stats(c).blocks == 0 && stats(c).bytes == 0, "all dropped");
	check(c, "empty again");
	block_cache_free(c);

	/*
	 * A table doubles a few chains per insert: check it, and find every
	 * block, just after each doubling starts, while both arrays hold.
	 */
	c = mk(20000);
	for (i = 0, ok = true; i < 20000 && ok; i++) {
		uint64_t j;

		ok = block_cache_get(c, 1, i) != NULL;
		if (i < 64 || (i & (i - 1)) != 0)
			continue;
		ok = block_cache_check(c) == NULL;
		for (j = 0; j <= i && ok; j++)
			ok = block_cache_peek(c, 1, j) != NULL;
		if (!ok)
			tap_diag("  at %llu blocks", (unsigned long long)i);
	}
	tap_ok(ok, "20000 blocks of one file, checked while doubling");
	block_cache_free(c);
}

/* The model's draw: the test's generator. */
static uint64_t
draw_rng(void *arg)
{
	(void)arg;
	return rng();
}

/* A randomised run of steps against the model, within nblocks' budget. */
static void
model_run(size_t nblocks, size_t extra, unsigned long steps)
{
	static struct bm m;
	bool ok = true;
	unsigned long i;

	if (!bm_init(&m, nblocks * base() + extra, draw_rng, NULL))
		abort();
	for (i = 0; i < steps && ok; i++)
		ok = bm_step(&m);
	if (ok)
		ok = bm_verify_all(&m) && bm_drain(&m);
	tap_ok(ok, "model: %lu operations, budget of %zu blocks", i, nblocks);
	if (!ok)
		tap_diag("  %s", m.why);
	else
		tap_diag("  evicted %llu, invalidated %llu, errors %llu",
		    (unsigned long long)m.st.evicted,
		    (unsigned long long)m.st.invalidated,
		    (unsigned long long)m.st.writeback_errors);
	bm_fini(&m);
}

int
main(void)
{
	rng_seed();
	test_new();
	test_get_find();
	test_write_ranges();
	test_covers_read();
	test_lru();
	test_never_evict_dirty_busy();
	test_writeback();
	test_fill_gen();
	test_invalidate();
	test_truncate();
	test_zero_tail();
	test_drop_file();
	test_next_dirty();
	test_range_budget();
	test_abort();
	test_growth();
	model_run(5, 100, 34000);
	model_run(12, 0, 33000);
	model_run(40, 0, 33000);
	return tap_done();
}
