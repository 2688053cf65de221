/*
 * test-meta-cache.c - unit tests of cache/meta-cache.c.
 *
 * Scripted cases (put, get, replace, drop, touch, expiry by moving the
 * wheel, stale entries, LRU order, drop_prefix, -E2BIG, counters), a
 * table that grows and shrinks under lookups, then randomised runs
 * checked after every operation against a reference model (a small
 * array with LRU stamps), and figures printed as TAP comments.  Every
 * payload is a malloc'd counter whose free function records that it ran,
 * so each is checked to be freed exactly once.  The seed is fixed so
 * failures repeat; PUFS_SEED overrides it.
 */
#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "tap.h"
#include "testutil.h"

#define MAX_PAYLOADS 200000

/*
 * Payloads: each is a malloc'd int holding its id; freed[id] counts the
 * runs of its free function.
 */
static unsigned char freed[MAX_PAYLOADS];
static int next_id;
static size_t total_freed;

/* A new payload with a fresh id. */
static int *
pl_new(void)
{
	int *p = malloc(sizeof *p);

	if (p == NULL || next_id >= MAX_PAYLOADS)
		abort();
	*p = next_id++;
	freed[*p] = 0;
	return p;
}

/* The free function given to the cache. */
static void
pl_free(void *v)
{
	int *p = v;

	freed[*p]++;
	total_freed++;
	free(p);
}

/* The id behind a payload pointer, or -1 for NULL. */
static int
pl_id(const void *v)
{
	return v == NULL ? -1 : *(const int *)v;
}

/* Put with the counting free function; the common case of the tests. */
static int
put(struct meta_cache *c, int kind, const char *key, int *p, size_t bytes,
    uint64_t expires, int flags)
{
	return meta_cache_put(c, kind, key, strlen(key), p, bytes, pl_free,
	    expires, flags);
}

/* Get by a string key; the payload's id or -1. */
static int
get(struct meta_cache *c, int kind, const char *key)
{
	return pl_id(meta_cache_get(c, kind, key, strlen(key)));
}

/* Get_stale by a string key; the payload's id or -1, and staleness. */
static int
get_stale(struct meta_cache *c, int kind, const char *key, bool *stale)
{
	return pl_id(meta_cache_get_stale(c, kind, key, strlen(key), stale));
}

/* The counters, by value. */
static struct meta_cache_stats
stats(const struct meta_cache *c)
{
	struct meta_cache_stats st;

	meta_cache_stats(c, &st);
	return st;
}

/* Put, get, replace, drop, touch and the counters, with no expiry. */
static void
test_basic(void)
{
	struct timer_wheel *w = timer_wheel_new(1000, 1);
	struct meta_cache *c = meta_cache_new(w, 1 << 20);
	struct meta_cache_stats st;
	size_t ov = meta_cache_entry_overhead();
	int *a = pl_new(), *b = pl_new(), *d = pl_new(), *x;
	int ia = *a, ib = *b, id = *d, ix;
	bool stale = true;

	tap_ok(c != NULL, "a cache is made");
	tap_ok(meta_cache_new(NULL, 100) == NULL, "a cache needs a wheel");
	tap_ok(ov >= 64 && ov <= 256, "overhead %zu bytes per entry", ov);

	tap_is_int(get(c, 0, "a"), -1, "get on an empty cache misses");
	tap_is_int(put(c, 0, "a", a, 10, 5000, 0), 0, "put a");
	tap_is_int(get(c, 0, "a"), ia, "get a");
	tap_is_int(get(c, 1, "a"), -1, "the same key in another kind misses");
	tap_is_int(get(c, 0, "ab"), -1, "a longer key misses");
	tap_is_int(meta_cache_get(c, 0, "a", 0) == NULL, 1,
	    "a shorter key misses");
	tap_is_int(get_stale(c, 0, "a", &stale), ia,
	    "get_stale of a fresh entry");
	tap_ok(!stale, "and it says fresh");

	tap_is_int(put(c, 0, "a", b, 20, 5000, 0), 0, "replace a");
	tap_is_int(freed[ia], 1, "the replaced payload is freed");
	tap_is_int(get(c, 0, "a"), ib, "get a gives the new payload");
	tap_is_int(put(c, 0, "a", b, 30, 6000, 0), 0,
	    "put the same payload again");
	tap_is_int(freed[ib], 0, "which is not freed");

	tap_is_int(meta_cache_put(c, 0, "", 0, d, 1, pl_free, 5000, 0), 0,
	    "an empty key is a key");
	tap_is_int(pl_id(meta_cache_get(c, 0, NULL, 0)), id, "and is found");

	st = stats(c);
	tap_is_int((long long)st.entries, 2, "two entries");
	tap_is_int((long long)st.bytes, (long long)(1 + 30 + 0 + 1 + 2 * ov),
	    "bytes are keys + payloads + overhead");
	tap_is_int((long long)st.inserts, 4, "four inserts");
	tap_is_int((long long)st.replaced, 2, "two of them replaced");
	tap_is_int((long long)st.hits, 4, "four hits");
	tap_is_int((long long)st.misses, 4, "four misses");

	tap_is_int(meta_cache_touch(c, 0, "a", 1, 9000), 0, "touch a");
	tap_is_int(meta_cache_touch(c, 0, "zz", 2, 9000), -ENOENT,
	    "touch of a missing key");
	tap_is_int(meta_cache_drop(c, 0, "a", 1), 0, "drop a");
	tap_is_int(freed[ib], 1, "its payload is freed");
	tap_is_int(meta_cache_drop(c, 0, "a", 1), -ENOENT, "drop it again");
	tap_is_int(get(c, 0, "a"), -1, "a is gone");

	x = pl_new();
	ix = *x;
	tap_is_int(put(c, -1, "k", x, 1, 5000, 0), -EINVAL,
	    "a negative kind is refused");
	tap_is_int(put(c, 65536, "k", x, 1, 5000, 0), -EINVAL,
	    "a kind above 65535 is refused");
	tap_is_int(put(c, 0, "k", x, 1, 5000, 0x100), -EINVAL,
	    "an unknown flag is refused");
	tap_is_int(meta_cache_put(c, 0, "k", 1, NULL, 1, pl_free, 5000, 0),
	    -EINVAL, "a NULL payload is refused");
	tap_is_int(freed[ix], 0, "a refused payload is not freed");
	tap_is_int(put(c, 65535, "k", x, 1, 5000, 0), 0, "kind 65535 is fine");
	tap_is_int(meta_cache_get(c, 70000, "k", 1) == NULL, 1,
	    "a get of a bad kind misses");

	meta_cache_free(c);
	tap_ok(freed[id] == 1 && freed[ix] == 1,
	    "meta_cache_free frees the remaining payloads");
	tap_is_int((long long)timer_wheel_count(w), 0,
	    "and leaves no timer on the wheel");
	timer_wheel_free(w);
}

/* Expiry by moving the wheel; touch postpones; a past expiry. */
static void
test_expiry(void)
{
	struct timer_wheel *w = timer_wheel_new(1000, 1);
	struct meta_cache *c = meta_cache_new(w, 1 << 20);
	int *a = pl_new(), *b = pl_new(), *d = pl_new();
	int ia = *a, ib = *b, id = *d;

	put(c, 0, "a", a, 1, 2000, 0);
	put(c, 0, "b", b, 1, 2000, 0);
	put(c, 0, "d", d, 1, 500, 0);
	tap_is_int(get(c, 0, "d"), -1,
	    "an entry put already expired is not returned");
	tap_is_int(meta_cache_touch(c, 0, "b", 1, 3000), 0, "touch b to 3000");
	timer_wheel_advance(w, 1999);
	tap_is_int(get(c, 0, "a"), ia, "a is fresh at 1999");
	tap_is_int(freed[id], 1, "d was dropped by the first advance");
	timer_wheel_advance(w, 2000);
	tap_is_int(get(c, 0, "a"), -1, "a is gone at 2000");
	tap_is_int(freed[ia], 1, "a's payload was freed by the wheel");
	tap_is_int(get(c, 0, "b"), ib, "b, touched, is still fresh");
	timer_wheel_advance(w, 3000);
	tap_is_int(freed[ib], 1, "b expires at 3000");
	tap_is_int((long long)stats(c).expired, 3, "three expiries counted");
	tap_is_int((long long)stats(c).entries, 0, "the cache is empty");
	tap_is_int((long long)stats(c).bytes, 0, "and charges nothing");
	tap_is_int((long long)timer_wheel_count(w), 0, "no timer is left");
	meta_cache_free(c);
	timer_wheel_free(w);
}

/* META_CACHE_KEEP_STALE: kept after expiry, for get_stale only. */
static void
test_stale(void)
{
	struct timer_wheel *w = timer_wheel_new(0, 1);
	struct meta_cache *c = meta_cache_new(w, 1 << 20);
	int *a = pl_new(), *b = pl_new();
	int ia = *a, ib = *b;
	bool stale = false;
	struct meta_cache_stats st;

	put(c, 2, "dir", a, 100, 1000, META_CACHE_KEEP_STALE);
	timer_wheel_advance(w, 1000);
	tap_is_int(freed[ia], 0, "a kept entry is not freed at expiry");
	tap_is_int(get(c, 2, "dir"), -1, "get does not see a stale entry");
	tap_is_int(get_stale(c, 2, "dir", &stale), ia, "get_stale does");
	tap_ok(stale, "and says it is stale");
	tap_is_int((long long)timer_wheel_count(w), 0,
	    "a stale entry holds no timer");
	tap_is_int(meta_cache_touch(c, 2, "dir", 3, 2000), 0,
	    "touching a stale entry");
	tap_is_int(get(c, 2, "dir"), ia, "makes it fresh again");
	timer_wheel_advance(w, 2500);
	tap_is_int(get_stale(c, 2, "dir", &stale), ia, "stale again at 2500");
	tap_ok(stale, "flagged stale");
	tap_is_int(put(c, 2, "dir", b, 120, 4000, META_CACHE_KEEP_STALE), 0,
	    "a refreshed listing replaces the stale one");
	tap_is_int(freed[ia], 1, "the stale payload is freed");
	tap_is_int(get_stale(c, 2, "dir", &stale), ib, "the new one answers");
	tap_ok(!stale, "fresh");
	tap_is_int(put(c, 2, "dir", b, 120, 5000, 0), 0,
	    "put again without the flag");
	timer_wheel_advance(w, 5000);
	tap_is_int(freed[ib], 1, "then it is dropped at expiry");
	tap_is_int(get_stale(c, 2, "dir", &stale), -1, "and get_stale misses");
	tap_ok(!stale, "a miss is not stale");
	st = stats(c);
	tap_is_int((long long)st.stale_hits, 2, "two stale hits counted");
	tap_is_int((long long)st.expired, 3, "three expiries counted");
	meta_cache_free(c);
	timer_wheel_free(w);
}

/* Keys "k0".."k9" in kind 0, for the LRU script. */
static const char *
lru_key(int i)
{
	static char buf[10][4];

	snprintf(buf[i], sizeof buf[i], "k%d", i);
	return buf[i];
}

/* LRU order: gets refresh, touch does not; replacing refreshes. */
static void
test_lru(void)
{
	struct timer_wheel *w = timer_wheel_new(0, 1);
	size_t one = 2 + 100 + meta_cache_entry_overhead();
	struct meta_cache *c = meta_cache_new(w, 3 * one);
	int *p[6], id[6], i;

	for (i = 0; i < 6; i++) {
		p[i] = pl_new();
		id[i] = *p[i];
	}
	for (i = 0; i < 3; i++)
		put(c, 0, lru_key(i), p[i], 100, 10000, 0);
	tap_is_int((long long)stats(c).bytes, (long long)(3 * one),
	    "three entries fill the budget exactly");
	tap_is_int((long long)stats(c).evicted, 0, "nothing evicted yet");
	get(c, 0, lru_key(0));                        /* order now 0, 2, 1 */
	meta_cache_touch(c, 0, lru_key(1), 2, 20000); /* no change */
	put(c, 0, lru_key(3), p[3], 100, 10000, 0);
	tap_is_int(freed[id[1]], 1, "the least recently used (k1) goes first");
	tap_is_int(get(c, 0, lru_key(0)), id[0], "k0, read, stays");
	put(c, 0, lru_key(4), p[4], 100, 10000, 0);
	tap_is_int(freed[id[2]], 1, "then k2");
	put(c, 0, lru_key(3), p[3], 100, 10000, 0); /* refresh k3 */
	put(c, 0, lru_key(5), p[5], 100, 10000, 0);
	tap_is_int(freed[id[0]], 1, "then k0, older than a re-put k3");
	tap_is_int(get(c, 0, lru_key(3)), id[3], "k3 stays");
	tap_is_int(get(c, 0, lru_key(4)), id[4], "k4 stays");
	tap_is_int(get(c, 0, lru_key(5)), id[5], "k5 stays");
	tap_is_int((long long)stats(c).evicted, 3, "three evictions counted");
	tap_ok(stats(c).bytes <= 3 * one, "the budget holds");

	/* A bigger entry evicts as many as it needs. */
	p[0] = pl_new();
	id[0] = *p[0];
	tap_is_int(put(c, 0, "big", p[0], 2 * one, 10000, 0), 0,
	    "an entry of most of the budget");
	tap_is_int((long long)stats(c).entries, 1, "evicts all the others");
	tap_ok(freed[id[3]] == 1 && freed[id[4]] == 1 && freed[id[5]] == 1,
	    "and frees them");
	tap_is_int(get(c, 0, "big"), id[0], "the big one is in");
	meta_cache_free(c);
	timer_wheel_free(w);
}

/* -E2BIG: refused, not taken, and the old entry of the key dropped. */
static void
test_e2big(void)
{
	struct timer_wheel *w = timer_wheel_new(0, 1);
	size_t ov = meta_cache_entry_overhead();
	struct meta_cache *c = meta_cache_new(w, 1000);
	int *a = pl_new(), *b = pl_new(), *d = pl_new();
	int ia = *a, ib = *b;

	tap_is_int(put(c, 0, "a", a, 1000 - ov - 1, 100, 0), 0,
	    "an entry of exactly the budget fits");
	tap_is_int((long long)stats(c).bytes, 1000, "and charges it all");
	tap_is_int(put(c, 0, "a", b, 1000 - ov, 100, 0), -E2BIG,
	    "one byte more is refused");
	tap_is_int(freed[ib], 0, "the refused payload stays the caller's");
	tap_is_int(freed[ia], 1, "the old entry of that key is dropped");
	tap_is_int(get(c, 0, "a"), -1, "so no outdated value remains");
	tap_is_int((long long)stats(c).dropped, 1, "counted as dropped");
	tap_is_int(put(c, 0, "x", b, SIZE_MAX, 100, 0), -E2BIG,
	    "a huge size does not overflow");
	put(c, 0, "d", d, 10, 100, 0);
	tap_is_int(put(c, 0, "d", d, 5000, 100, 0), -E2BIG,
	    "re-putting the same payload too large");
	tap_is_int(freed[*d], 0, "leaves that payload with the caller");
	tap_is_int(get(c, 0, "d"), -1, "and drops the entry");
	pl_free(b);
	pl_free(d);
	meta_cache_free(c);

	c = meta_cache_new(w, 0);
	b = pl_new();
	tap_is_int(put(c, 0, "", b, 0, 100, 0), -E2BIG,
	    "a zero budget refuses everything");
	pl_free(b);
	meta_cache_free(c);
	timer_wheel_free(w);
}

/* drop_prefix: only keys of that kind starting with those bytes. */
static void
test_drop_prefix(void)
{
	struct timer_wheel *w = timer_wheel_new(0, 1);
	struct meta_cache *c = meta_cache_new(w, 1 << 20);
	static const struct {
		int kind;
		const char *key;
		bool gone;
	} keys[] = {
		{ 1, "peerA/x", true },
		{ 1, "peerA/", true },
		{ 1, "peerA/dir/y", true },
		{ 1, "peerA", false },
		{ 1, "peerAB/x", false },
		{ 1, "peerB/x", false },
		{ 2, "peerA/x", false },
		{ 0, "peerA/x", false },
	};
	size_t n = sizeof keys / sizeof keys[0], i, gone = 0, ok = 0;
	int ids[8];
	int *p;

	for (i = 0; i < n; i++) {
		p = pl_new();
		ids[i] = *p;
		put(c, keys[i].kind, keys[i].key, p, 1, 1000, 0);
		gone += keys[i].gone;
	}
	tap_is_int((long long)meta_cache_drop_prefix(c, 1, "peerA/", 6),
	    (long long)gone, "drop_prefix drops the matching entries");
	for (i = 0; i < n; i++)
		ok += freed[ids[i]] == keys[i].gone &&
		    (get(c, keys[i].kind, keys[i].key) == -1) == keys[i].gone;
	tap_is_int((long long)ok, (long long)n, "and only those");
	tap_is_int((long long)meta_cache_drop_prefix(c, 3, "", 0), 0,
	    "an empty kind drops nothing");
	tap_is_int((long long)meta_cache_drop_prefix(c, 1, "", 0), 3,
	    "an empty prefix drops the whole kind");
	tap_is_int((long long)stats(c).entries, 2, "two entries are left");
	tap_is_int((long long)stats(c).dropped, 6, "six drops counted");
	meta_cache_free(c);
	tap_ok(freed[ids[6]] == 1 && freed[ids[7]] == 1,
	    "the rest go with the cache");
	timer_wheel_free(w);
}

/* Free function that counts without freeing: for static payloads. */
static size_t static_frees;

/* Count a release of a payload the test does not allocate. */
static void
static_free(void *v)
{
	static_frees++;
}

/*
 * Grow to many entries and shrink back, checking every entry is found
 * all along (the incremental resize keeps every key reachable).
 */
static void
test_resize(void)
{
	struct timer_wheel *w = timer_wheel_new(0, 1);
	struct meta_cache *c = meta_cache_new(w, (size_t)1 << 30);
	static int payload[50000];
	const int n = 50000;
	char key[32];
	int i, bad = 0, j;

	static_frees = 0;
	for (i = 0; i < n; i++) {
		payload[i] = i;
		snprintf(key, sizeof key, "key-%d", i);
		meta_cache_put(c, i % 3, key, strlen(key), &payload[i], 8,
		    static_free, 1000000, 0);
		j = (int)rng_below((uint64_t)i + 1);
		snprintf(key, sizeof key, "key-%d", j);
		if (meta_cache_get(c, j % 3, key, strlen(key)) != &payload[j])
			bad++;
	}
	tap_is_int(bad, 0, "every key is found while the table grows");
	for (i = 0; i < n; i++) {
		snprintf(key, sizeof key, "key-%d", i);
		if (meta_cache_drop(c, i % 3, key, strlen(key)) != 0)
			bad++;
		if (i + 1 < n) {
			j = i + 1 + (int)rng_below((uint64_t)(n - i - 1));
			snprintf(key, sizeof key, "key-%d", j);
			if (meta_cache_get(c, j % 3, key, strlen(key)) !=
			    &payload[j])
				bad++;
		}
	}
	tap_is_int(bad, 0, "and while it shrinks");
	tap_is_int((long long)static_frees, n, "every payload released once");
	tap_is_int((long long)stats(c).entries, 0, "the cache is empty");
	meta_cache_free(c);
	timer_wheel_free(w);
}

/*
 * The reference model of the randomised run: one slot per possible
 * (kind, key); LRU order by stamps.
 */
#define M_KINDS 3
#define M_KEYS 48
#define M_SLOTS (M_KINDS * M_KEYS)

struct m_ent {
	bool present;
	bool keep;  /* META_CACHE_KEEP_STALE */
	bool armed; /* its timer has not fired since armed */
	uint64_t expires;
	size_t charge;
	uint64_t stamp; /* larger: more recently used */
	int *payload;
	int id;
};

struct model {
	struct m_ent e[M_SLOTS];
	char key[M_SLOTS][24];
	size_t keylen[M_SLOTS];
	size_t budget, bytes, entries;
	uint64_t now, clock;
	struct meta_cache_stats st;
	size_t want_freed;
};

/* Take an entry out of the model; its payload counts as freed. */
static void
m_remove(struct model *m, int s)
{
	m->e[s].present = false;
	m->bytes -= m->e[s].charge;
	m->entries--;
	m->want_freed++;
}

/* Evict the least recently used entries until the budget holds. */
static void
m_make_room(struct model *m)
{
	int s, victim;

	while (m->bytes > m->budget) {
		victim = -1;
		for (s = 0; s < M_SLOTS; s++)
			if (m->e[s].present &&
			    (victim < 0 || m->e[s].stamp < m->e[victim].stamp))
				victim = s;
		m_remove(m, victim);
		m->st.evicted++;
	}
}

/* Compare the cache with the model; false and a diagnostic on mismatch. */
static bool
m_check(struct model *m, struct meta_cache *c, int op, const char *what)
{
	struct meta_cache_stats st = stats(c);
	int s;

#define M_SAME(f) \
	do { \
		if (st.f != m->st.f) { \
			tap_diag("op %d (%s): " #f " %llu, model %llu", op, \
			    what, (unsigned long long)st.f, \
			    (unsigned long long)m->st.f); \
			return false; \
		} \
	} while (0)
	m->st.entries = m->entries;
	m->st.bytes = m->bytes;
	M_SAME(entries);
	M_SAME(bytes);
	M_SAME(hits);
	M_SAME(misses);
	M_SAME(stale_hits);
	M_SAME(inserts);
	M_SAME(replaced);
	M_SAME(expired);
	M_SAME(evicted);
	M_SAME(dropped);
#undef M_SAME
	if (st.bytes > m->budget) {
		tap_diag("op %d (%s): over budget", op, what);
		return false;
	}
	if (total_freed != m->want_freed) {
		tap_diag("op %d (%s): %zu payloads freed, model %zu", op, what,
		    total_freed, m->want_freed);
		return false;
	}
	for (s = 0; s < M_SLOTS; s++)
		if (m->e[s].present && freed[m->e[s].id] != 0) {
			tap_diag("op %d (%s): payload of slot %d freed", op,
			    what, s);
			return false;
		}
	return true;
}

/*
 * One randomised run of nops operations on a cache of the given budget,
 * with the model checked after each; every payload freed exactly once.
 */
static void
test_random(size_t budget, int nops)
{
	struct timer_wheel *w = timer_wheel_new(1000, 1);
	struct meta_cache *c = meta_cache_new(w, budget);
	struct model *m = calloc(1, sizeof *m);
	size_t ov = meta_cache_entry_overhead(), bytes;
	int first_id = next_id, op, s, r, kind, i, id, got, want, rc;
	bool stale, keep, ok = true;
	uint64_t exp;
	int *p;
	const char *what = "";
	char prefix[8];

	if (m == NULL)
		abort();
	m->budget = budget;
	m->now = 1000;
	total_freed = 0;
	for (s = 0; s < M_SLOTS; s++) {
		/* Keys "p<0..5>/<n>" padded to lengths that vary per key. */
		snprintf(m->key[s], sizeof m->key[s], "p%d/%d%.*s",
		    s % M_KEYS % 6, s % M_KEYS, (int)(s % 7), "-------");
		m->keylen[s] = strlen(m->key[s]);
	}

	for (op = 0; op < nops && ok; op++) {
		/* Half the operations go to 4 keys of each kind: some hits. */
		s = (int)rng_below(M_SLOTS);
		if (rng_below(2) == 0)
			s = s / M_KEYS * M_KEYS + s % 4;
		kind = s / M_KEYS;
		r = (int)rng_below(100);
		if (r < 35) {
			what = "put";
			if (rng_below(20) == 0)
				bytes = budget + rng_below(100);
			else
				bytes = rng_below(
				    budget / (rng_below(2) ? 4 : 40));
			exp = m->now - rng_below(50) + rng_below(3000);
			keep = rng_below(2) == 0;
			if (m->e[s].present && rng_below(4) == 0)
				p = m->e[s].payload; /* same payload */
			else
				p = pl_new();
			rc = meta_cache_put(c, kind, m->key[s], m->keylen[s], p,
			    bytes, pl_free, exp,
			    keep ? META_CACHE_KEEP_STALE : 0);
			if (m->keylen[s] + bytes + ov > budget) {
				ok = rc == -E2BIG;
				if (m->e[s].present) {
					m_remove(m, s);
					m->st.dropped++;
					if (m->e[s].payload == p)
						m->want_freed--;
				}
				pl_free(p); /* the caller's to free */
				m->want_freed++;
			} else {
				ok = rc == 0;
				if (m->e[s].present) {
					m->st.replaced++;
					m->bytes -= m->e[s].charge;
					if (m->e[s].payload != p)
						m->want_freed++;
				} else {
					m->entries++;
				}
				m->e[s].present = true;
				m->e[s].keep = keep;
				m->e[s].armed = true;
				m->e[s].expires = exp;
				m->e[s].charge = m->keylen[s] + bytes + ov;
				m->e[s].stamp = ++m->clock;
				m->e[s].payload = p;
				m->e[s].id = *p;
				m->bytes += m->e[s].charge;
				m->st.inserts++;
				m_make_room(m);
			}
		} else if (r < 55) {
			what = "get";
			got = pl_id(
			    meta_cache_get(c, kind, m->key[s], m->keylen[s]));
			want = -1;
			if (m->e[s].present && m->e[s].expires > m->now) {
				want = m->e[s].id;
				m->e[s].stamp = ++m->clock;
				m->st.hits++;
			} else
				m->st.misses++;
			ok = got == want;
		} else if (r < 65) {
			what = "get_stale";
			got = pl_id(meta_cache_get_stale(c, kind, m->key[s],
			    m->keylen[s], &stale));
			want = -1;
			if (m->e[s].present &&
			    (m->e[s].expires > m->now || m->e[s].keep)) {
				want = m->e[s].id;
				m->e[s].stamp = ++m->clock;
				if (m->e[s].expires > m->now)
					m->st.hits++;
				else
					m->st.stale_hits++;
			} else
				m->st.misses++;
			ok = got == want &&
			    stale == (want >= 0 && m->e[s].expires <= m->now);
		} else if (r < 75) {
			what = "touch";
			exp = m->now - rng_below(50) + rng_below(3000);
			rc = meta_cache_touch(c, kind, m->key[s], m->keylen[s],
			    exp);
			ok = rc == (m->e[s].present ? 0 : -ENOENT);
			if (m->e[s].present) {
				m->e[s].expires = exp;
				m->e[s].armed = true;
			}
		} else if (r < 82) {
			what = "drop";
			rc = meta_cache_drop(c, kind, m->key[s], m->keylen[s]);
			ok = rc == (m->e[s].present ? 0 : -ENOENT);
			if (m->e[s].present) {
				m_remove(m, s);
				m->st.dropped++;
			}
		} else if (r < 84) {
			what = "drop_prefix";
			i = (int)rng_below(6);
			snprintf(prefix, sizeof prefix, "p%d/", i);
			want = 0;
			for (s = kind * M_KEYS; s < (kind + 1) * M_KEYS; s++)
				if (m->e[s].present &&
				    strncmp(m->key[s], prefix, 3) == 0) {
					m_remove(m, s);
					m->st.dropped++;
					want++;
				}
			ok = (int)meta_cache_drop_prefix(c, kind, prefix, 3) ==
			    want;
		} else {
			what = "advance";
			m->now += rng_below(rng_below(10) == 0 ? 3000 : 200);
			timer_wheel_advance(w, m->now);
			for (s = 0; s < M_SLOTS; s++) {
				if (!m->e[s].present || !m->e[s].armed ||
				    m->e[s].expires > m->now)
					continue;
				m->st.expired++;
				m->e[s].armed = false;
				if (!m->e[s].keep)
					m_remove(m, s);
			}
		}
		if (!ok)
			tap_diag("op %d (%s) slot %d: wrong answer", op, what,
			    s);
		ok = ok && m_check(m, c, op, what);
	}
	tap_ok(ok,
	    "random run, budget %zu: %d operations agree with the "
	    "model",
	    budget, op);
	tap_diag("  %llu inserts, %llu hits, %llu misses, %llu stale hits, "
		 "%llu expired, %llu evicted, %llu dropped",
	    (unsigned long long)m->st.inserts, (unsigned long long)m->st.hits,
	    (unsigned long long)m->st.misses,
	    (unsigned long long)m->st.stale_hits,
	    (unsigned long long)m->st.expired,
	    (unsigned long long)m->st.evicted,
	    (unsigned long long)m->st.dropped);
	meta_cache_free(c);
	ok = timer_wheel_count(w) == 0;
	for (id = first_id; id < next_id; id++)
		if (freed[id] != 1) {
			tap_diag("payload %d freed %d times", id, freed[id]);
			ok = false;
			break;
		}
	tap_ok(ok, "every payload of the run freed exactly once");
	timer_wheel_free(w);
	free(m);
}

/* Bytes in use by malloc, or 0 where it cannot say (sanitizers). */
static size_t
heap_bytes(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
#else
	return 0;
#endif
}

/*
 * The figures: bytes per entry, then 1e6 entries (40-byte keys, 92-byte
 * payloads) inserted, looked up and expired over a minute of wheel time,
 * and inserted again into a budget of 1e5 entries so each insert evicts.
 * Payloads are one static buffer with a counting free function, so the
 * rates are the cache's own work.
 */
static void
test_figures(void)
{
	const size_t n = 1000000, keylen = 40, plen = 92;
	size_t ov = meta_cache_entry_overhead(), typical = keylen + plen + ov;
	static char payload[92];
	char *keys = malloc(n * keylen);
	struct timer_wheel *w = timer_wheel_new(0, 1);
	struct meta_cache *c = meta_cache_new(w, n * typical);
	size_t i, h0, h1, hits = 0;
	double t0, t1, t2, t3;
	uint64_t now;

	if (keys == NULL || w == NULL || c == NULL)
		abort();
	for (i = 0; i < n; i++) {
		char buf[48];

		snprintf(buf, sizeof buf, "export0/some/dir/name-%018zu", i);
		memcpy(keys + i * keylen, buf, keylen);
	}
	static_frees = 0;
	tap_diag("meta cache: %zu bytes of overhead charged per entry (entry "
		 "header, bucket share, malloc slack)",
	    ov);
	tap_diag("meta cache: an attribute entry (40-byte key, 92-byte "
		 "payload) is charged %zu bytes: %zu per MiB of budget",
	    typical, ((size_t)1 << 20) / typical);

	h0 = heap_bytes();
	t0 = seconds();
	for (i = 0; i < n; i++)
		meta_cache_put(c, 0, keys + i * keylen, keylen, payload, plen,
		    static_free, 1 + rng_below(60000), 0);
	t1 = seconds();
	h1 = heap_bytes();
	for (i = 0; i < n; i++)
		hits += meta_cache_get(c, 0, keys + i * keylen, keylen) != NULL;
	t2 = seconds();
	tap_is_int((long long)stats(c).entries, (long long)n,
	    "a million attribute entries fit their budget");
	tap_is_int((long long)hits, (long long)n, "and are all found");
	if (h1 > h0)
		tap_diag("meta cache: heap use %.1f bytes per entry, key "
			 "included, payload not (charged: %zu)",
		    (double)(h1 - h0) / (double)n, keylen + ov);
	tap_diag("meta cache: %zu inserts in %.3f s: %.2f million inserts/s", n,
	    t1 - t0, (double)n / (t1 - t0) / 1e6);
	tap_diag("meta cache: %zu lookups in %.3f s: %.2f million lookups/s", n,
	    t2 - t1, (double)n / (t2 - t1) / 1e6);

	t2 = seconds();
	hits = meta_cache_drop_prefix(c, 0, "export1/", 8);
	t3 = seconds();
	tap_is_int((long long)hits, 0, "drop_prefix of another export");
	tap_diag("meta cache: drop_prefix over %zu entries in %.1f ms", n,
	    (t3 - t2) * 1e3);

	t2 = seconds();
	for (now = 1; now <= 60000; now++)
		timer_wheel_advance(w, now);
	t3 = seconds();
	tap_is_int((long long)static_frees, (long long)n,
	    "all expire within the minute");
	tap_diag("meta cache: %zu expiries over 60000 advances in %.3f s: "
		 "%.2f million expiries/s",
	    n, t3 - t2, (double)n / (t3 - t2) / 1e6);
	meta_cache_free(c);

	c = meta_cache_new(w, n / 10 * typical);
	static_frees = 0;
	t0 = seconds();
	for (i = 0; i < n; i++)
		meta_cache_put(c, 0, keys + i * keylen, keylen, payload, plen,
		    static_free, 120000, 0);
	t1 = seconds();
	tap_is_int((long long)stats(c).evicted, (long long)(n - n / 10),
	    "a budget of 1e5 entries keeps the last 1e5 of 1e6");
	tap_diag("meta cache: %zu inserts evicting in %.3f s: %.2f million "
		 "inserts/s",
	    n, t1 - t0, (double)n / (t1 - t0) / 1e6);
	meta_cache_free(c);
	tap_is_int((long long)static_frees, (long long)n,
	    "every payload released once");
	timer_wheel_free(w);
	free(keys);
}

int
main(void)
{
	rng_seed();
	test_basic();
	test_expiry();
	test_stale();
	test_lru();
	test_e2big();
	test_drop_prefix();
	test_resize();
	test_random(2000, 20000);
	test_random(6000, 20000);
	test_random(40000, 20000);
	test_figures();
	return tap_done();
}
