/*
 * meta-cache.c - the metadata cache: attributes, directory listings and
 * locations, as opaque payloads keyed by (kind, key bytes), each expiring
 * on the timer wheel, all within a memory budget.
 *
 * Every entry sits in a hash table and on one LRU list (most recently
 * used first).  The table is chained, indexed by a keyed hash (SipHash-1-3
 * with a random seed, so names chosen by a peer cannot pile into one
 * chain), and resized incrementally: a resize allocates the new bucket
 * array and then each later call moves at most MC_STEP buckets, so no
 * call pays for rehashing the whole table.  It doubles when the entries
 * pass two per bucket and halves when they fall below one per two
 * buckets, so it holds between half a bucket and two buckets per entry.
 *
 * Accounting: an entry is charged its key, its payload's stated size and
 * meta_cache_entry_overhead(): the entry header, two bucket pointers (the
 * table's worst steady share) and MC_MALLOC_SLACK for malloc's header
 * and rounding of the entry.  It leaves out the second bucket array that
 * exists while a resize is in progress (up to one more pointer per entry,
 * briefly), and the payload's own malloc slack, which is the caller's.  An
 * insert that goes over the budget evicts from the LRU tail until the
 * total is back under it; the entry just inserted is never the victim,
 * since one larger than the whole budget is refused.
 *
 * Limits: meta_cache_drop_prefix() walks every entry, as the cache keeps
 * no ordered index (about 10 ms per million entries; the unit test
 * prints the figure).  Keys and payloads are limited to 4 GiB each, kinds
 * to 0..65535.  A lookup that answers moves the entry to the LRU head;
 * touch does not, since a trap from another peer is not a use here.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "cache.h"

#define MC_MIN_BUCKETS 64 /* the table never shrinks below this */
#define MC_STEP 16        /* buckets moved per call while resizing */
#define MC_KIND_MAX UINT16_MAX
#define MC_MALLOC_SLACK 16 /* glibc: 8 of header, 8 of rounding on average */

#define MC_CONTAINER(p, type, member) \
	((type *)(void *)((char *)(p)-offsetof(type, member)))

struct mc_link {
	struct mc_link *prev, *next;
};

struct mc_entry {
	struct timer timer;      /* expiry; its arg is the cache */
	struct mc_link lru;      /* on meta_cache.lru */
	struct mc_entry *hnext;  /* hash chain */
	void *payload;           /* owned; freed by free_fn */
	void (*free_fn)(void *); /* may be NULL */
	uint32_t hash;
	uint32_t keylen;
	uint32_t payload_bytes;
	uint16_t kind;
	uint16_t flags; /* META_CACHE_KEEP_STALE */
	unsigned char key[];
};

struct mc_table {
	struct mc_entry **b; /* NULL when not in use */
	size_t mask;         /* buckets - 1 */
};

struct meta_cache {
	struct timer_wheel *w; /* not owned; outlives the cache */
	size_t budget;         /* bytes */
	uint64_t k0, k1;       /* hash seed */
	/*
	 * t[0] is the table; while t[1].b is set a resize is moving t[0]'s
	 * buckets into t[1], and buckets of t[0] below rehash are empty.
	 */
	struct mc_table t[2];
	size_t rehash;
	struct mc_link lru; /* head: next is the most recent */
	struct meta_cache_stats st;
};

/* Rotate a 64-bit word left. */
static inline uint64_t
mc_rotl(uint64_t x, unsigned int b)
{
	return (x << b) | (x >> (64 - b));
}

/* One SipHash round over the state v. */
static inline void
mc_sipround(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = mc_rotl(v[1], 13) ^ v[0];
	v[0] = mc_rotl(v[0], 32);
	v[2] += v[3];
	v[3] = mc_rotl(v[3], 16) ^ v[2];
	v[0] += v[3];
	v[3] = mc_rotl(v[3], 21) ^ v[0];
	v[2] += v[1];
	v[1] = mc_rotl(v[1], 17) ^ v[2];
	v[2] = mc_rotl(v[2], 32);
}

/* SipHash-1-3 of (kind, key) under the cache's seed, folded to 32 bits. */
static uint32_t
mc_hash(const struct meta_cache *c, uint16_t kind, const void *key, size_t len)
{
	const unsigned char *p = key;
	uint64_t k1 = c->k1 ^ ((uint64_t)kind * 0x9e3779b97f4a7c15ull);
	uint64_t v[4] = {
		c->k0 ^ 0x736f6d6570736575ull,
		k1 ^ 0x646f72616e646f6dull,
		c->k0 ^ 0x6c7967656e657261ull,
		k1 ^ 0x7465646279746573ull,
	};
	uint64_t m, last = (uint64_t)len << 56;
	size_t i, left;

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&m, p + i, 8);
		v[3] ^= m;
		mc_sipround(v);
		v[0] ^= m;
	}
	for (left = 0; i < len; i++, left++)
		last |= (uint64_t)p[i] << (8 * left);
	v[3] ^= last;
	mc_sipround(v);
	v[0] ^= last;
	v[2] ^= 0xff;
	mc_sipround(v);
	mc_sipround(v);
	mc_sipround(v);
	m = v[0] ^ v[1] ^ v[2] ^ v[3];
	return (uint32_t)(m ^ (m >> 32));
}

/* Bytes charged per entry beyond its key and payload. */
size_t
meta_cache_entry_overhead(void)
{
	return sizeof(struct mc_entry) + 2 * sizeof(struct mc_entry *) +
	    MC_MALLOC_SLACK;
}

/* What an entry is charged. */
static size_t
mc_charge(const struct mc_entry *e)
{
	return (size_t)e->keylen + e->payload_bytes +
	    meta_cache_entry_overhead();
}

/* Whether an entry of these sizes fits in the budget and in 32 bits. */
static bool
mc_fits(const struct meta_cache *c, size_t keylen, size_t payload_bytes)
{
	size_t b = c->budget;

	if (keylen > UINT32_MAX || payload_bytes > UINT32_MAX)
		return false;
	return keylen <= b && payload_bytes <= b - keylen &&
	    meta_cache_entry_overhead() <= b - keylen - payload_bytes;
}

/* The chain that holds, or would hold, entries of this hash. */
static struct mc_entry **
mc_bucket(struct meta_cache *c, uint32_t hash)
{
	size_t i = hash & c->t[0].mask;

	if (c->t[1].b != NULL && i < c->rehash)
		return &c->t[1].b[hash & c->t[1].mask];
	return &c->t[0].b[i];
}

/* Start moving the table into one of n buckets; skipped without memory. */
static void
mc_resize_start(struct meta_cache *c, size_t n)
{
	struct mc_entry **b;

	if (c->t[1].b != NULL || (b = calloc(n, sizeof *b)) == NULL)
		return;
	c->t[1].b = b;
	c->t[1].mask = n - 1;
	c->rehash = 0;
}

/* Move up to MC_STEP buckets of a resize in progress; finish it. */
static void
mc_resize_step(struct meta_cache *c)
{
	struct mc_entry *e, *next, **to;
	size_t n;

	if (c->t[1].b == NULL)
		return;
	for (n = 0; n < MC_STEP && c->rehash <= c->t[0].mask; n++) {
		for (e = c->t[0].b[c->rehash]; e != NULL; e = next) {
			next = e->hnext;
			to = &c->t[1].b[e->hash & c->t[1].mask];
			e->hnext = *to;
			*to = e;
		}
		c->t[0].b[c->rehash++] = NULL;
	}
	if (c->rehash > c->t[0].mask) {
		free(c->t[0].b);
		c->t[0] = c->t[1];
		c->t[1].b = NULL;
		c->t[1].mask = 0;
		c->rehash = 0;
	}
}

/* Start a resize if the load left its band and none is in progress. */
static void
mc_resize_check(struct meta_cache *c)
{
	size_t n = c->t[0].mask + 1;

	if (c->t[1].b != NULL)
		return;
	/* The hash has 32 bits: more than 2^32 buckets would be idle. */
	if (c->st.entries > 2 * (uint64_t)n && n <= ((size_t)1 << 31) &&
	    n <= SIZE_MAX / sizeof(struct mc_entry *) / 2)
		mc_resize_start(c, 2 * n);
	else if (n > MC_MIN_BUCKETS && c->st.entries < n / 2)
		mc_resize_start(c, n / 2);
}

/* The entry (kind, key) with this hash, or NULL. */
static struct mc_entry *
mc_find(struct meta_cache *c, uint16_t kind, const void *key, size_t keylen,
    uint32_t hash)
{
	struct mc_entry *e;

	for (e = *mc_bucket(c, hash); e != NULL; e = e->hnext)
		if (e->hash == hash && e->kind == kind && e->keylen == keylen &&
		    (keylen == 0 || memcmp(e->key, key, keylen) == 0))
			return e;
	return NULL;
}

/* Take a link off its list. */
static void
mc_link_remove(struct mc_link *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
}

/* Put a link at the head of a list. */
static void
mc_link_push(struct mc_link *head, struct mc_link *l)
{
	l->prev = head;
	l->next = head->next;
	head->next->prev = l;
	head->next = l;
}

/* Link a new entry into the table and at the LRU head; account it. */
static void
mc_insert(struct meta_cache *c, struct mc_entry *e)
{
	struct mc_entry **b = mc_bucket(c, e->hash);

	e->hnext = *b;
	*b = e;
	mc_link_push(&c->lru, &e->lru);
	c->st.entries++;
	c->st.bytes += mc_charge(e);
	mc_resize_check(c);
}

/* Unlink an entry from everything, run its free function and free it. */
static void
mc_release(struct meta_cache *c, struct mc_entry *e)
{
	struct mc_entry **pp;

	for (pp = mc_bucket(c, e->hash); *pp != e; pp = &(*pp)->hnext)
		;
	*pp = e->hnext;
	mc_link_remove(&e->lru);
	timer_wheel_del(c->w, &e->timer);
	c->st.entries--;
	c->st.bytes -= mc_charge(e);
	if (e->free_fn != NULL)
		e->free_fn(e->payload);
	free(e);
	mc_resize_check(c);
	mc_resize_step(c);
}

/* Evict from the LRU tail until the charged bytes fit the budget. */
static void
mc_make_room(struct meta_cache *c)
{
	while (c->st.bytes > c->budget && c->lru.prev != &c->lru) {
		c->st.evicted++;
		mc_release(c, MC_CONTAINER(c->lru.prev, struct mc_entry, lru));
	}
}

/* Timer callback: an entry's expiry came; drop it or leave it stale. */
static void
mc_expire(struct timer *t, void *arg)
{
	struct meta_cache *c = arg;
	struct mc_entry *e = MC_CONTAINER(t, struct mc_entry, timer);

	c->st.expired++;
	if ((e->flags & META_CACHE_KEEP_STALE) == 0)
		mc_release(c, e);
}

/* An empty cache whose entries expire on the wheel, within budget_bytes. */
struct meta_cache *
meta_cache_new(struct timer_wheel *w, size_t budget_bytes)
{
	struct meta_cache *c;
	uint64_t seed[2];

	if (w == NULL)
		return NULL;
	if ((c = calloc(1, sizeof *c)) == NULL)
		return NULL;
	if ((c->t[0].b = calloc(MC_MIN_BUCKETS, sizeof *c->t[0].b)) == NULL) {
		free(c);
		return NULL;
	}
	c->t[0].mask = MC_MIN_BUCKETS - 1;
	c->w = w;
	c->budget = budget_bytes;
	c->lru.prev = c->lru.next = &c->lru;
	/* Without entropy the seed is weak, not absent: still per process. */
	if (getrandom(seed, sizeof seed, GRND_NONBLOCK) !=
	    (ssize_t)sizeof seed) {
		seed[0] = (uint64_t)(uintptr_t)c ^ 0x243f6a8885a308d3ull;
		seed[1] = (uint64_t)(uintptr_t)&seed ^ 0x13198a2e03707344ull;
	}
	c->k0 = seed[0];
	c->k1 = seed[1];
	return c;
}

/* Free the cache, running the free function of every payload. */
void
meta_cache_free(struct meta_cache *c)
{
	struct mc_link *l, *next;
	struct mc_entry *e;

	if (c == NULL)
		return;
	for (l = c->lru.next; l != &c->lru; l = next) {
		next = l->next;
		e = MC_CONTAINER(l, struct mc_entry, lru);
		timer_wheel_del(c->w, &e->timer);
		if (e->free_fn != NULL)
			e->free_fn(e->payload);
		free(e);
	}
	free(c->t[0].b);
	free(c->t[1].b);
	free(c);
}

/* Insert or replace (kind, key); see cache.h for ownership and errors. */
int
meta_cache_put(struct meta_cache *c, int kind, const void *key, size_t keylen,
    void *payload, size_t payload_bytes, void (*free_fn)(void *),
    uint64_t expires_ms, int flags)
{
	void *old_payload;
	void (*old_free)(void *);
	struct mc_entry *e;
	uint32_t hash;

	if (kind < 0 || kind > MC_KIND_MAX || payload == NULL ||
	    (keylen > 0 && key == NULL) ||
	    (flags & ~META_CACHE_KEEP_STALE) != 0)
		return -EINVAL;
	mc_resize_step(c);
	hash = mc_hash(c, (uint16_t)kind, key, keylen);
	e = mc_find(c, (uint16_t)kind, key, keylen, hash);

	if (!mc_fits(c, keylen, payload_bytes)) {
		/* The caller meant to replace it: never keep the old value. */
		if (e != NULL) {
			if (e->payload == payload)
				e->free_fn = NULL; /* the caller keeps it */
			c->st.dropped++;
			mc_release(c, e);
		}
		return -E2BIG;
	}

	if (e != NULL) {
		old_payload = e->payload;
		old_free = e->free_fn;
		c->st.bytes -= mc_charge(e);
		e->payload = payload;
		e->payload_bytes = (uint32_t)payload_bytes;
		e->free_fn = free_fn;
		e->flags = (uint16_t)flags;
		c->st.bytes += mc_charge(e);
		mc_link_remove(&e->lru);
		mc_link_push(&c->lru, &e->lru);
		c->st.replaced++;
		if (old_payload != payload && old_free != NULL)
			old_free(old_payload);
	} else {
		if ((e = malloc(sizeof *e + keylen)) == NULL)
			return -ENOMEM;
		timer_init(&e->timer, mc_expire, c);
		e->payload = payload;
		e->free_fn = free_fn;
		e->hash = hash;
		e->keylen = (uint32_t)keylen;
		e->payload_bytes = (uint32_t)payload_bytes;
		e->kind = (uint16_t)kind;
		e->flags = (uint16_t)flags;
		if (keylen > 0)
			memcpy(e->key, key, keylen);
		mc_insert(c, e);
	}
	timer_wheel_add(c->w, &e->timer, expires_ms);
	c->st.inserts++;
	mc_make_room(c);
	return 0;
}

/*
 * Find (kind, key): a fresh entry, or with stale_ok a kept stale one,
 * marked recently used and counted; NULL (a miss) otherwise.  An entry
 * is fresh while its expiry is after the wheel's time, so an entry whose
 * timer is due but not yet fired is not fresh either.
 */
static struct mc_entry *
mc_lookup(struct meta_cache *c, int kind, const void *key, size_t keylen,
    bool stale_ok, bool *stale)
{
	struct mc_entry *e = NULL;
	bool fresh = false;

	if (kind >= 0 && kind <= MC_KIND_MAX && (keylen == 0 || key != NULL)) {
		mc_resize_step(c);
		e = mc_find(c, (uint16_t)kind, key, keylen,
		    mc_hash(c, (uint16_t)kind, key, keylen));
	}
	if (e != NULL) {
		fresh = e->timer.expires > timer_wheel_now(c->w);
		if (!fresh &&
		    (!stale_ok || (e->flags & META_CACHE_KEEP_STALE) == 0))
			e = NULL;
	}
	if (stale != NULL)
		*stale = e != NULL && !fresh;
	if (e == NULL) {
		c->st.misses++;
		return NULL;
	}
	if (fresh)
		c->st.hits++;
	else
		c->st.stale_hits++;
	mc_link_remove(&e->lru);
	mc_link_push(&c->lru, &e->lru);
	return e;
}

/* The payload of a fresh entry, marked recently used, or NULL. */
void *
meta_cache_get(struct meta_cache *c, int kind, const void *key, size_t keylen)
{
	struct mc_entry *e = mc_lookup(c, kind, key, keylen, false, NULL);

	return e != NULL ? e->payload : NULL;
}

/* Like meta_cache_get(), but a kept stale entry answers too. */
void *
meta_cache_get_stale(struct meta_cache *c, int kind, const void *key,
    size_t keylen, bool *stale)
{
	struct mc_entry *e = mc_lookup(c, kind, key, keylen, true, stale);

	return e != NULL ? e->payload : NULL;
}

/* The entry (kind, key) whatever its state, without counting; or NULL. */
static struct mc_entry *
mc_lookup_quiet(struct meta_cache *c, int kind, const void *key, size_t keylen)
{
	if (kind < 0 || kind > MC_KIND_MAX || (keylen > 0 && key == NULL))
		return NULL;
	mc_resize_step(c);
	return mc_find(c, (uint16_t)kind, key, keylen,
	    mc_hash(c, (uint16_t)kind, key, keylen));
}

/* Move the entry's expiry, leaving its LRU place; 0, or -ENOENT. */
int
meta_cache_touch(struct meta_cache *c, int kind, const void *key, size_t keylen,
    uint64_t new_expires_ms)
{
	struct mc_entry *e = mc_lookup_quiet(c, kind, key, keylen);

	if (e == NULL)
		return -ENOENT;
	timer_wheel_add(c->w, &e->timer, new_expires_ms);
	return 0;
}

/* Drop the entry, freeing its payload; 0, or -ENOENT. */
int
meta_cache_drop(struct meta_cache *c, int kind, const void *key, size_t keylen)
{
	struct mc_entry *e = mc_lookup_quiet(c, kind, key, keylen);

	if (e == NULL)
		return -ENOENT;
	c->st.dropped++;
	mc_release(c, e);
	return 0;
}

/* Drop every entry of kind whose key starts with prefix; a full walk. */
size_t
meta_cache_drop_prefix(struct meta_cache *c, int kind, const void *prefix,
    size_t len)
{
	struct mc_link *l, *next;
	struct mc_entry *e;
	size_t n = 0;

	if (kind < 0 || kind > MC_KIND_MAX || (len > 0 && prefix == NULL))
		return 0;
	for (l = c->lru.next; l != &c->lru; l = next) {
		next = l->next;
		e = MC_CONTAINER(l, struct mc_entry, lru);
		if (e->kind != kind || e->keylen < len ||
		    (len > 0 && memcmp(e->key, prefix, len) != 0))
			continue;
		c->st.dropped++;
		mc_release(c, e);
		n++;
	}
	return n;
}

/* Copy the counters. */
void
meta_cache_stats(const struct meta_cache *c, struct meta_cache_stats *st)
{
	*st = c->st;
}
