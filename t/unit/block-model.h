/*
 * block-model.h - a reference model of cache/block-cache.c, shared by
 * the unit test (driven by a seeded generator) and the fuzz target
 * (driven by the input's bytes).
 *
 * The model plays the daemon's part too: it holds each file's bytes on
 * the "holder" as a flat array, and performs what io.c would, in any
 * order: get and write blocks, read them, send a READ (hold, then fill
 * and unhold later, or fail), take ranges for a WRITE and end it (ok or
 * failed, the holder's bytes changing on success), another peer's write
 * (the holder's bytes change, then invalidate), truncate, drop a file,
 * next_dirty, file_dirty, find.  Per block it keeps the expected bytes
 * and, per byte, whether it is dirty; a byte is known when the block is
 * valid or the byte dirty.  Blocks the cache evicts are noticed with
 * block_cache_peek() after each call that may evict, and must have been
 * evictable (neither dirty nor busy).  After every operation the cache
 * checks itself (block_cache_check()) and the touched block is compared
 * in full (valid, busy, ranges, known bytes, gen moving exactly when an
 * invalidation should move it); every BM_FULL operations, and after
 * those that touch many blocks, every block and every counter is.
 *
 * A mismatch stops the run: bm_step() answers false with a sentence in
 * m->why.  Not thread-safe; one model per cache.
 */
#ifndef PUFS_BLOCK_MODEL_H
#define PUFS_BLOCK_MODEL_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"

#define BM_UNUSED __attribute__((unused))
#define BM_BS 4096u /* block size of the model's caches */
#define BM_NF 3     /* files */
#define BM_NB 8     /* blocks per file */
#define BM_FSIZE (BM_NB * BM_BS)
#define BM_MAXOPS 24 /* READs and WRITEs in flight */
#define BM_MAXREC (BM_NF * BM_NB + BM_MAXOPS)
#define BM_FULL 64 /* full comparison every so many operations */

/* The model of one block. */
struct bm_rec {
	struct block *b;
	int f;          /* file number, 0 to BM_NF - 1 */
	uint64_t index; /* 0 to BM_NB - 1 */
	bool valid, dropped;
	uint32_t busy;
	uint64_t epoch, seen_epoch; /* invalidations, and as of gen */
	uint64_t gen;               /* b->gen at seen_epoch */
	unsigned char data[BM_BS];
	unsigned char dirty[BM_BS]; /* 1 per dirty byte */
};

enum bm_kind { BM_READ, BM_WRITE };

/* A READ or WRITE in flight. */
struct bm_op {
	enum bm_kind kind;
	struct bm_rec *r;
	uint64_t gen, epoch; /* READ: at sending */
	uint32_t n;          /* WRITE: ranges taken */
	struct block_range rg[4];
	unsigned char snap[BM_BS]; /* WRITE: the bytes sent */
};

struct bm {
	struct block_cache *c;
	size_t budget;
	uint64_t files[BM_NF];
	struct bm_rec *slot[BM_NF][BM_NB];
	struct bm_rec *recs[BM_MAXREC]; /* every live record */
	int nrecs;
	unsigned char holder[BM_NF][BM_FSIZE];
	uint64_t hsize[BM_NF];
	struct bm_op ops[BM_MAXOPS];
	int nops;
	struct block_cache_stats st; /* the counters as the model sees them */
	uint64_t (*draw)(void *);    /* parameters: random or fuzz bytes */
	void *arg;
	unsigned long steps;
	uint64_t opcount[16];
	char why[512];
};

/* Record what went wrong; answers false for the caller to return. */
BM_UNUSED __attribute__((format(printf, 2, 3))) static bool
bm_fail(struct bm *m, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(m->why, sizeof m->why, "step %lu: ", m->steps);
	va_start(ap, fmt);
	vsnprintf(m->why + n, sizeof m->why - (size_t)n, fmt, ap);
	va_end(ap);
	return false;
}

#define BM_CHECK(m, cond, ...) \
	do { \
		if (!(cond)) \
			return bm_fail((m), __VA_ARGS__); \
	} while (0)

/* A parameter in [0, n). */
static uint64_t
bm_draw(struct bm *m, uint64_t n)
{
	return n == 0 ? 0 : m->draw(m->arg) % n;
}

/*
 * n bytes of a pattern seeded by one draw (cheap on fuzz input, and
 * different from one write to the next).
 */
static void
bm_bytes(struct bm *m, unsigned char *p, size_t n)
{
	uint64_t x = bm_draw(m, UINT16_MAX) * 0x9e3779b97f4a7c15ull | 1;
	size_t j;

	for (j = 0; j < n; j++) {
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		p[j] = (unsigned char)((x * 0x2545f4914f6cdd1dull) >> 56);
	}
}

/* What a block without dirty ranges beyond the first is charged. */
static size_t
bm_base(void)
{
	return BM_BS + block_cache_block_overhead();
}

/* A fresh model of a new cache within budget; false without memory. */
BM_UNUSED static bool
bm_init(struct bm *m, size_t budget, uint64_t (*draw)(void *), void *arg)
{
	static const uint64_t files[BM_NF] = { 0, 7, UINT64_MAX };
	int f;

	memset(m, 0, sizeof *m);
	if ((m->c = block_cache_new(BM_BS, budget)) == NULL)
		return false;
	m->budget = budget;
	m->draw = draw;
	m->arg = arg;
	for (f = 0; f < BM_NF; f++)
		m->files[f] = files[f];
	return true;
}

/* Free the cache and every record. */
BM_UNUSED static void
bm_fini(struct bm *m)
{
	int i;

	block_cache_free(m->c);
	for (i = 0; i < m->nrecs; i++)
		free(m->recs[i]);
	m->nrecs = 0;
}

/* Whether r has a dirty byte. */
static bool
bm_anydirty(const struct bm_rec *r)
{
	return memchr(r->dirty, 1, BM_BS) != NULL;
}

/* r's dirty bytes as sorted runs, up to max of them; how many in all. */
static uint32_t
bm_runs(const struct bm_rec *r, struct block_range *out, uint32_t max)
{
	const unsigned char *p = r->dirty, *q;
	uint32_t n = 0, j = 0, lo;

	while (j < BM_BS) {
		if ((q = memchr(p + j, 1, BM_BS - j)) == NULL)
			break;
		lo = (uint32_t)(q - p);
		q = memchr(p + lo, 0, BM_BS - lo);
		j = q != NULL ? (uint32_t)(q - p) : BM_BS;
		if (n < max) {
			out[n].lo = lo;
			out[n].hi = j;
		}
		n++;
	}
	return n;
}

/* Forget r: out of its slot and the record list, and freed. */
static void
bm_rec_free(struct bm *m, struct bm_rec *r)
{
	int i;

	if (!r->dropped)
		m->slot[r->f][r->index] = NULL;
	for (i = 0; m->recs[i] != r; i++)
		;
	m->recs[i] = m->recs[--m->nrecs];
	free(r);
}

/* The cache's rule: an idle block that knows nothing, or dropped, goes. */
static void
bm_let_go(struct bm *m, struct bm_rec *r)
{
	if (r->busy == 0 && (r->dropped || (!r->valid && !bm_anydirty(r))))
		bm_rec_free(m, r);
}

/* Compare one record with its block in full. */
static bool
bm_verify_rec(struct bm *m, struct bm_rec *r)
{
	struct block_range rg[BM_BS / 2];
	unsigned char got[BM_BS];
	struct block *b = r->b;
	uint32_t n, i, j;

	if (r->dropped)
		BM_CHECK(m,
		    block_cache_peek(m->c, m->files[r->f], r->index) != b,
		    "dropped block still found");
	else
		BM_CHECK(m,
		    block_cache_peek(m->c, m->files[r->f], r->index) == b,
		    "block (%d, %llu) not found", r->f,
		    (unsigned long long)r->index);
	BM_CHECK(m, b->file == m->files[r->f] && b->index == r->index,
	    "block key");
	BM_CHECK(m, b->valid == r->valid, "block (%d, %llu) valid %d, want %d",
	    r->f, (unsigned long long)r->index, b->valid, r->valid);
	BM_CHECK(m, b->busy == r->busy, "busy %u, want %u", b->busy, r->busy);
	n = bm_runs(r, rg, BM_BS / 2);
	BM_CHECK(m, b->ndirty == n, "block (%d, %llu) has %u ranges, want %u",
	    r->f, (unsigned long long)r->index, b->ndirty, n);
	for (i = 0; i < n; i++)
		BM_CHECK(m,
		    b->dirty[i].lo == rg[i].lo && b->dirty[i].hi == rg[i].hi,
		    "range %u is [%u, %u), want [%u, %u)", i, b->dirty[i].lo,
		    b->dirty[i].hi, rg[i].lo, rg[i].hi);
	for (i = 0; i < (r->valid ? 1 : n); i++) {
		uint32_t lo = r->valid ? 0 : rg[i].lo;
		uint32_t hi = r->valid ? BM_BS : rg[i].hi;

		block_cache_bytes(b, lo, hi - lo, got + lo);
		if (memcmp(got + lo, r->data + lo, hi - lo) == 0)
			continue;
		for (j = lo; got[j] == r->data[j]; j++)
			;
		return bm_fail(m, "block (%d, %llu) byte %u is %u, want %u",
		    r->f, (unsigned long long)r->index, j, got[j], r->data[j]);
	}
	if (r->epoch != r->seen_epoch) {
		BM_CHECK(m, b->gen != r->gen, "gen did not move");
		r->gen = b->gen;
		r->seen_epoch = r->epoch;
	} else
		BM_CHECK(m, b->gen == r->gen, "gen moved by itself");
	return true;
}

/* The cache checks itself; the cheap counters agree. */
static bool
bm_verify_quick(struct bm *m)
{
	struct block_cache_stats st;
	const char *why = block_cache_check(m->c);

	BM_CHECK(m, why == NULL, "block_cache_check: %s", why);
	block_cache_stats(m->c, &st);
	BM_CHECK(m, st.blocks == (uint64_t)m->nrecs, "%llu blocks, want %d",
	    (unsigned long long)st.blocks, m->nrecs);
	BM_CHECK(m, st.bytes <= m->budget, "over the budget");
	BM_CHECK(m, st.hits == m->st.hits && st.misses == m->st.misses,
	    "hits %llu misses %llu, want %llu %llu",
	    (unsigned long long)st.hits, (unsigned long long)st.misses,
	    (unsigned long long)m->st.hits, (unsigned long long)m->st.misses);
	BM_CHECK(m, st.evicted == m->st.evicted, "evicted %llu, want %llu",
	    (unsigned long long)st.evicted, (unsigned long long)m->st.evicted);
	BM_CHECK(m, st.invalidated == m->st.invalidated,
	    "invalidated %llu, want %llu", (unsigned long long)st.invalidated,
	    (unsigned long long)m->st.invalidated);
	BM_CHECK(m,
	    st.written_back == m->st.written_back &&
		st.writeback_errors == m->st.writeback_errors,
	    "written back or errors");
	return true;
}

/*
 * The records of file only (its file_dirty too), or with only -1, every
 * record and the block counters.
 */
static bool
bm_verify(struct bm *m, int only)
{
	uint64_t dirty_bytes = 0, fdirty[BM_NF] = { 0 }, clean = 0, dirty = 0;
	struct block_cache_stats st;
	uint32_t j, d;
	int i, f;

	for (i = 0; i < m->nrecs; i++) {
		struct bm_rec *r = m->recs[i];

		if (only >= 0 && r->f != only)
			continue;
		if (!bm_verify_rec(m, r))
			return false;
		for (j = d = 0; j < BM_BS; j++)
			d += r->dirty[j];
		dirty_bytes += d;
		fdirty[r->f] += d;
		dirty += d > 0;
		clean += d == 0 && r->valid;
	}
	if (only >= 0) {
		BM_CHECK(m,
		    block_cache_file_dirty(m->c, m->files[only]) ==
			fdirty[only],
		    "file_dirty of file %d", only);
		return bm_verify_quick(m);
	}
	block_cache_stats(m->c, &st);
	BM_CHECK(m, st.dirty_bytes == dirty_bytes,
	    "dirty bytes %llu, want %llu", (unsigned long long)st.dirty_bytes,
	    (unsigned long long)dirty_bytes);
	BM_CHECK(m, st.dirty_blocks == dirty && st.clean_blocks == clean,
	    "dirty blocks %llu clean %llu, want %llu %llu",
	    (unsigned long long)st.dirty_blocks,
	    (unsigned long long)st.clean_blocks, (unsigned long long)dirty,
	    (unsigned long long)clean);
	for (f = 0; f < BM_NF; f++)
		BM_CHECK(m,
		    block_cache_file_dirty(m->c, m->files[f]) == fdirty[f],
		    "file_dirty of file %d", f);
	return bm_verify_quick(m);
}

/* Every record and every counter. */
static bool
bm_verify_all(struct bm *m)
{
	return bm_verify(m, -1);
}

/* After a call that may evict: forget what went, which had to be idle. */
static bool
bm_sync_evictions(struct bm *m)
{
	int i;

	for (i = 0; i < m->nrecs; i++) {
		struct bm_rec *r = m->recs[i];

		if (r->dropped ||
		    block_cache_peek(m->c, m->files[r->f], r->index) == r->b)
			continue;
		BM_CHECK(m, r->busy == 0 && !bm_anydirty(r),
		    "a dirty or busy block went");
		m->st.evicted++;
		bm_rec_free(m, r);
		i--;
	}
	return true;
}

/*
 * block_cache_get() of block i of file f: *out is its record, or NULL
 * when the cache may rightly refuse (only dirty or busy blocks).
 */
static bool
bm_get(struct bm *m, int f, uint64_t i, struct bm_rec **out)
{
	struct block_cache_stats st;
	struct bm_rec *r = m->slot[f][i];
	struct block *b;
	size_t evictable = 0;
	int k;

	*out = NULL;
	errno = 0;
	b = block_cache_get(m->c, m->files[f], i);
	if (r != NULL) {
		BM_CHECK(m, b == r->b, "get answered another block");
		*out = r;
		return true;
	}
	if (b == NULL) {
		BM_CHECK(m, errno == ENOBUFS, "get: errno %d", errno);
		for (k = 0; k < m->nrecs; k++)
			evictable += m->recs[k]->busy == 0 &&
			    !m->recs[k]->dropped && !bm_anydirty(m->recs[k]);
		block_cache_stats(m->c, &st);
		BM_CHECK(m,
		    m->budget - st.bytes + evictable * bm_base() < bm_base(),
		    "get refused with room to make");
		return true;
	}
	if (!bm_sync_evictions(m))
		return false;
	BM_CHECK(m,
	    !b->valid && b->ndirty == 0 && b->busy == 0 &&
		b->file == m->files[f] && b->index == i,
	    "new block's fields");
	if ((r = calloc(1, sizeof *r)) == NULL)
		abort();
	r->b = b;
	r->f = f;
	r->index = i;
	r->gen = b->gen;
	m->slot[f][i] = r;
	m->recs[m->nrecs++] = r;
	*out = r;
	return true;
}

/* A range in a block, often at its edges; len may be 0. */
static void
bm_range(struct bm *m, uint32_t *off, uint32_t *len)
{
	switch (bm_draw(m, 8)) {
	case 0:
		*off = 0;
		*len = BM_BS;
		break;
	case 1:
		*off = 0;
		*len = (uint32_t)bm_draw(m, 64);
		break;
	case 2:
		*len = (uint32_t)bm_draw(m, 64);
		*off = BM_BS - *len;
		break;
	case 3:
		*off = (uint32_t)bm_draw(m, BM_BS + 1);
		*len = 0;
		break;
	case 4:
		*off = (uint32_t)bm_draw(m, BM_BS);
		*len = (uint32_t)bm_draw(m, BM_BS - *off + 1);
		break;
	default:
		/* Small ranges near each other, so they touch and merge. */
		*off = (uint32_t)bm_draw(m, 32) * 16;
		*len = 1 + (uint32_t)bm_draw(m, 24);
		break;
	}
}

/* Write a range of block i of file f. */
static bool
bm_op_write(struct bm *m, int f, uint64_t i)
{
	struct block_range before[BM_BS / 2], after[BM_BS / 2];
	unsigned char buf[BM_BS];
	struct bm_rec *r;
	uint32_t off, len, nb, na;
	int rc;

	if (!bm_get(m, f, i, &r))
		return false;
	if (r == NULL)
		return true;
	bm_range(m, &off, &len);
	bm_bytes(m, buf, len);
	nb = bm_runs(r, before, BM_BS / 2);
	rc = block_cache_write(m->c, r->b, off, buf, len);
	if (rc == -ENOBUFS) {
		BM_CHECK(m, !r->valid && nb >= 1, "write: ENOBUFS");
		return bm_verify_rec(m, r);
	}
	BM_CHECK(m, rc == 0, "write [%u, +%u): %d", off, len, rc);
	memcpy(r->data + off, buf, len);
	memset(r->dirty + off, 1, len);
	na = bm_runs(r, after, BM_BS / 2);
	if (len > 0 && na == 1 && after[0].lo == 0 && after[0].hi == BM_BS)
		r->valid = true; /* a write that leaves all of it dirty */
	if (r->b->ndirty != na && r->valid && r->b->ndirty == 1) {
		/* The budget was full: the ranges merged into one. */
		BM_CHECK(m,
		    r->b->dirty[0].lo == after[0].lo &&
			r->b->dirty[0].hi == after[na - 1].hi,
		    "merged range is not the span");
		memset(r->dirty + after[0].lo, 1,
		    after[na - 1].hi - after[0].lo);
	}
	if (!bm_sync_evictions(m))
		return false;
	return bm_verify_rec(m, r);
}

/* Read a range of block i of file f, through the cache. */
static bool
bm_op_read(struct bm *m, int f, uint64_t i)
{
	struct bm_rec *r = m->slot[f][i];
	unsigned char buf[BM_BS + 1];
	uint32_t off, len, j;
	bool want, got;

	bm_range(m, &off, &len);
	if (bm_draw(m, 16) == 0)
		len += 1; /* sometimes past the block's end */
	if (off + len > BM_BS) {
		BM_CHECK(m,
		    !block_cache_read(m->c, m->files[f], i, off, len, buf),
		    "read past the block");
		return true;
	}
	want = len == 0;
	if (r != NULL && !want) {
		want = r->valid;
		for (j = off; j < off + len && !want; j++)
			if (!r->dirty[j])
				break;
		if (!want && j == off + len)
			want = true;
	}
	if (r != NULL)
		BM_CHECK(m, block_cache_covers(r->b, off, len) == want,
		    "covers [%u, +%u)", off, len);
	got = block_cache_read(m->c, m->files[f], i, off, len, buf);
	BM_CHECK(m, got == want, "read [%u, +%u) of (%d, %llu): %d, want %d",
	    off, len, f, (unsigned long long)i, got, want);
	if (len > 0) {
		if (got)
			m->st.hits++;
		else
			m->st.misses++;
	}
	if (got && len > 0)
		BM_CHECK(m, memcmp(buf, r->data + off, len) == 0,
		    "read the wrong bytes");
	return true;
}

/* Send a READ for block i of file f: get it, hold it. */
static bool
bm_op_read_send(struct bm *m, int f, uint64_t i)
{
	struct bm_op *op;
	struct bm_rec *r;

	if (m->nops == BM_MAXOPS)
		return true;
	if (!bm_get(m, f, i, &r))
		return false;
	if (r == NULL)
		return true;
	block_cache_hold(m->c, r->b);
	r->busy++;
	op = &m->ops[m->nops++];
	op->kind = BM_READ;
	op->r = r;
	op->gen = r->b->gen;
	op->epoch = r->epoch;
	return bm_verify_rec(m, r);
}

/* End a READ in flight: the holder's bytes arrive, or it failed. */
static bool
bm_end_read(struct bm *m, struct bm_op *op)
{
	struct bm_rec *r = op->r;
	uint64_t start = r->index * BM_BS, h = m->hsize[r->f];
	uint32_t len = h > start
	    ? (uint32_t)(h - start < BM_BS ? h - start : BM_BS)
	    : 0;
	const unsigned char *src = m->holder[r->f] + start;
	bool want, got;
	uint32_t j;

	if (bm_draw(m, 8) != 0) {
		want = !r->dropped && r->epoch == op->epoch;
		got = block_cache_fill(m->c, r->b, op->gen, src, len);
		BM_CHECK(m, got == want, "fill answered %d, want %d", got,
		    want);
		if (got) {
			for (j = 0; j < BM_BS; j++)
				if (!r->dirty[j])
					r->data[j] = j < len ? src[j] : 0;
			r->valid = true;
		}
	}
	block_cache_unhold(m->c, r->b);
	r->busy--;
	bm_let_go(m, r);
	return true;
}

/* Take block i of file f's dirty ranges for a WRITE. */
static bool
bm_op_take(struct bm *m, int f, uint64_t i)
{
	struct bm_rec *r = m->slot[f][i];
	struct block_range want[4], got[4];
	uint32_t max, n, k, nw;
	struct bm_op *op;

	if (r == NULL || m->nops == BM_MAXOPS)
		return true;
	max = 1 + (uint32_t)bm_draw(m, 4);
	nw = bm_runs(r, want, 4);
	n = block_cache_writeback_take(m->c, r->b, got, max);
	if (nw == 0) {
		BM_CHECK(m, n == 0, "took ranges from a clean block");
		return bm_verify_rec(m, r);
	}
	if (r->valid) {
		BM_CHECK(m, n == 1, "a valid block gave %u ranges", n);
		for (k = 0; k < BM_BS; k++)
			if (r->dirty[k])
				want[0].hi = k + 1;
		nw = 1;
	} else
		nw = nw < max ? nw : max;
	BM_CHECK(m, n == nw, "took %u ranges, want %u", n, nw);
	op = &m->ops[m->nops++];
	op->kind = BM_WRITE;
	op->r = r;
	op->n = n;
	for (k = 0; k < n; k++) {
		BM_CHECK(m, got[k].lo == want[k].lo && got[k].hi == want[k].hi,
		    "took [%u, %u), want [%u, %u)", got[k].lo, got[k].hi,
		    want[k].lo, want[k].hi);
		op->rg[k] = got[k];
		memset(r->dirty + got[k].lo, 0, got[k].hi - got[k].lo);
		block_cache_bytes(r->b, got[k].lo, got[k].hi - got[k].lo,
		    op->snap + got[k].lo);
	}
	r->busy++;
	r->epoch++;
	return bm_verify_rec(m, r);
}

/* End a WRITE in flight: the holder takes the bytes, or it failed. */
static bool
bm_end_write(struct bm *m, struct bm_op *op)
{
	struct bm_rec *r = op->r;
	uint64_t start = r->index * BM_BS, bytes = 0;
	bool ok = bm_draw(m, 5) != 0;
	uint32_t k;

	for (k = 0; k < op->n; k++) {
		bytes += op->rg[k].hi - op->rg[k].lo;
		if (!ok)
			continue;
		memcpy(m->holder[r->f] + start + op->rg[k].lo,
		    op->snap + op->rg[k].lo, op->rg[k].hi - op->rg[k].lo);
		if (m->hsize[r->f] < start + op->rg[k].hi)
			m->hsize[r->f] = start + op->rg[k].hi;
	}
	block_cache_writeback_done(m->c, r->b, bytes, ok);
	if (ok)
		m->st.written_back += bytes;
	else {
		m->st.writeback_errors++;
		r->valid = false;
	}
	r->epoch++;
	r->busy--;
	bm_let_go(m, r);
	return true;
}

/* End one operation in flight, chosen by the draw. */
static bool
bm_op_end(struct bm *m)
{
	struct bm_op op;
	int k;

	if (m->nops == 0)
		return true;
	k = (int)bm_draw(m, (uint64_t)m->nops);
	op = m->ops[k];
	m->ops[k] = m->ops[--m->nops];
	return op.kind == BM_READ ? bm_end_read(m, &op) : bm_end_write(m, &op);
}

/* Invalidate what the cache holds of [off, off + len) of file f. */
static void
bm_invalidate_model(struct bm *m, int f, uint64_t off, uint64_t len)
{
	uint64_t i, last;
	struct bm_rec *r;

	if (len == 0 || off + len < off)
		last = BM_NB - 1;
	else
		last = (off + len - 1) / BM_BS;
	for (i = off / BM_BS; i <= last && i < BM_NB; i++) {
		if ((r = m->slot[f][i]) == NULL)
			continue;
		if (r->valid || (r->busy == 0 && !bm_anydirty(r)))
			m->st.invalidated++;
		r->valid = false;
		r->epoch++;
		bm_let_go(m, r);
	}
}

/* Another peer writes [off, off + len) of file f; the trap arrives. */
static bool
bm_op_remote_write(struct bm *m, int f)
{
	uint64_t off = bm_draw(m, BM_FSIZE), len, end;

	switch (bm_draw(m, 4)) {
	case 0:
		len = 0; /* to the end */
		break;
	case 1:
		len = UINT64_MAX - bm_draw(m, 4); /* off + len overflows */
		break;
	default:
		len = 1 + bm_draw(m, 2 * BM_BS);
		break;
	}
	/* The bytes that change: at most 64 of an open-ended range. */
	if (len == 0 || len > BM_FSIZE)
		end = off + 64;
	else
		end = off + len;
	if (end > BM_FSIZE)
		end = BM_FSIZE;
	bm_bytes(m, m->holder[f] + off, end - off);
	if (m->hsize[f] < end)
		m->hsize[f] = end;
	block_cache_invalidate(m->c, m->files[f], off, len);
	bm_invalidate_model(m, f, off, len);
	return bm_verify(m, f);
}

/* Drop r as truncate and drop_file do. */
static void
bm_drop_rec(struct bm *m, struct bm_rec *r)
{
	if (r->busy == 0) {
		bm_rec_free(m, r);
		return;
	}
	m->slot[r->f][r->index] = NULL;
	r->dropped = true;
	r->valid = false;
	memset(r->dirty, 0, BM_BS);
	r->epoch++;
}

/* Truncate file f, on the holder and in the cache. */
static bool
bm_op_truncate(struct bm *m, int f)
{
	uint64_t size, keep, i;
	uint32_t cut;
	struct bm_rec *r;

	size = bm_draw(m, 2) ? bm_draw(m, BM_NB + 1) * BM_BS
			     : bm_draw(m, BM_FSIZE + 1);
	if (size < m->hsize[f])
		memset(m->holder[f] + size, 0, m->hsize[f] - size);
	m->hsize[f] = size;
	block_cache_truncate(m->c, m->files[f], size);
	cut = (uint32_t)(size % BM_BS);
	keep = size / BM_BS + (cut != 0);
	for (i = keep; i < BM_NB; i++)
		if ((r = m->slot[f][i]) != NULL)
			bm_drop_rec(m, r);
	if (cut != 0 && (r = m->slot[f][size / BM_BS]) != NULL) {
		memset(r->dirty + cut, 0, BM_BS - cut);
		memset(r->data + cut, 0, BM_BS - cut);
		r->epoch++;
		bm_let_go(m, r);
	}
	return bm_verify(m, f);
}

/* Forget file f. */
static bool
bm_op_drop_file(struct bm *m, int f)
{
	uint64_t i;

	block_cache_drop_file(m->c, m->files[f]);
	for (i = 0; i < BM_NB; i++)
		if (m->slot[f][i] != NULL)
			bm_drop_rec(m, m->slot[f][i]);
	BM_CHECK(m, block_cache_file_dirty(m->c, m->files[f]) == 0,
	    "dirty bytes left after drop_file");
	return bm_verify(m, f);
}

/* next_dirty of file f from a drawn index. */
static bool
bm_op_next_dirty(struct bm *m, int f)
{
	uint64_t from = bm_draw(m, BM_NB + 2), i;
	struct block *want = NULL;

	for (i = from; i < BM_NB && want == NULL; i++)
		if (m->slot[f][i] != NULL && bm_anydirty(m->slot[f][i]))
			want = m->slot[f][i]->b;
	BM_CHECK(m, block_cache_next_dirty(m->c, m->files[f], from) == want,
	    "next_dirty of file %d from %llu", f, (unsigned long long)from);
	return true;
}

/* find of block i of file f. */
static bool
bm_op_find(struct bm *m, int f, uint64_t i)
{
	struct bm_rec *r = m->slot[f][i];

	BM_CHECK(m,
	    block_cache_find(m->c, m->files[f], i) == (r != NULL ? r->b : NULL),
	    "find");
	return true;
}

/*
 * End every operation in flight and drop every file: the cache must be
 * empty then, nothing charged.
 */
BM_UNUSED static bool
bm_drain(struct bm *m)
{
	struct block_cache_stats st;
	int f;

	while (m->nops > 0)
		if (!bm_op_end(m) || !bm_verify_quick(m))
			return false;
	for (f = 0; f < BM_NF; f++)
		if (!bm_op_drop_file(m, f))
			return false;
	block_cache_stats(m->c, &st);
	BM_CHECK(m,
	    st.blocks == 0 && st.bytes == 0 && m->nrecs == 0 &&
		st.dirty_bytes == 0 && st.clean_blocks == 0,
	    "left after draining: %llu blocks, %llu bytes",
	    (unsigned long long)st.blocks, (unsigned long long)st.bytes);
	return true;
}

/* One operation, chosen and parameterised by the draw; false on mismatch. */
BM_UNUSED static bool
bm_step(struct bm *m)
{
	int f = (int)bm_draw(m, BM_NF), kind = (int)bm_draw(m, 16);
	uint64_t i = bm_draw(m, BM_NB);
	bool ok;

	m->steps++;
	m->opcount[kind]++;
	switch (kind) {
	case 0:
	case 1:
	case 2:
	case 3:
		ok = bm_op_write(m, f, i);
		break;
	case 4:
	case 5:
		ok = bm_op_read(m, f, i);
		break;
	case 6:
		ok = bm_op_read_send(m, f, i);
		break;
	case 7:
	case 8:
		ok = bm_op_end(m);
		break;
	case 9:
	case 10:
		ok = bm_op_take(m, f, i);
		break;
	case 11:
		ok = bm_op_remote_write(m, f);
		break;
	case 12:
		ok = bm_draw(m, 4) ? bm_op_truncate(m, f)
				   : bm_op_drop_file(m, f);
		break;
	case 13:
		ok = bm_op_next_dirty(m, f);
		break;
	case 14:
		ok = bm_op_find(m, f, i);
		break;
	default:
		ok = bm_op_read_send(m, f, i) && bm_op_end(m);
		break;
	}
	if (!ok)
		return false;
	if (m->steps % BM_FULL == 0)
		return bm_verify_all(m);
	return bm_verify_quick(m);
}

#endif
