/*
 * cache.h - the public face of cache/: the timer wheel and the metadata
 * cache (and, later, the block cache).  Pure code: no libfuse, no
 * sockets, no clock reads; callers pass the time in.
 */
#ifndef PUFS_CACHE_H
#define PUFS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * timer-wheel.c: a hierarchical timing wheel (Varghese & Lauck).  Timers
 * are embedded in their owners; adding, re-adding and deleting are O(1),
 * advancing costs O(expired + slots passed).  Time is in milliseconds of
 * any monotonic clock the caller chooses; the wheel never reads a clock,
 * which is what lets tests move time without sleeping.
 */
struct timer_wheel;

struct timer {
	uint64_t expires; /* absolute, ms */
	void (*cb)(struct timer *, void *arg);
	void *arg;
	struct timer *next, *prev; /* slot list; NULL when idle */
	uint32_t slot;             /* private to the wheel */
};

/* A wheel whose current time is now_ms; tick_ms is its granularity. */
struct timer_wheel *timer_wheel_new(uint64_t now_ms, uint32_t tick_ms);

/* Free the wheel; pending timers are dropped without firing. */
void timer_wheel_free(struct timer_wheel *);

/* Prepare an embedded timer; it starts idle. */
void timer_init(struct timer *, void (*cb)(struct timer *, void *), void *);

/* Whether the timer is armed. */
bool timer_pending(const struct timer *);

/*
 * Arm (or re-arm) the timer to fire at expires_ms.  A time at or before
 * the wheel's current time fires on the next advance.
 */
void timer_wheel_add(struct timer_wheel *, struct timer *, uint64_t expires_ms);

/* Disarm; harmless on an idle timer. */
void timer_wheel_del(struct timer_wheel *, struct timer *);

/*
 * Move the wheel's time to now_ms and fire, in expiry order, every timer
 * due by then.  A callback may add or delete any timer, including its
 * own.  Returns the number fired.
 */
size_t timer_wheel_advance(struct timer_wheel *, uint64_t now_ms);

/*
 * Milliseconds from the wheel's current time until the earliest pending
 * expiry (0 if overdue), or -1 when nothing is pending.  The answer may
 * be early by up to one tick of a coarse level, never late.
 */
int64_t timer_wheel_next(const struct timer_wheel *);

/* Number of armed timers. */
size_t timer_wheel_count(const struct timer_wheel *);

/* The wheel's current time. */
uint64_t timer_wheel_now(const struct timer_wheel *);

/*
 * meta-cache.c: the metadata cache.  An entry is (kind, key bytes) mapped
 * to an opaque payload that the cache owns, with an expiry on the timer
 * wheel and a place in one LRU list.  Kinds are small integers (0 to
 * 65535) the caller chooses, e.g. attributes, a listing from one holder,
 * the holders of a name.  Memory is bounded by a budget: each entry is
 * charged keylen + payload_bytes + meta_cache_entry_overhead(), and an
 * insert makes room by evicting the least recently used entries.  An
 * entry is fresh until its expiry; then the wheel drops it, unless it was
 * put with META_CACHE_KEEP_STALE, which keeps it, stale, for
 * meta_cache_get_stale() until it is evicted, dropped or refreshed.  Free
 * functions run inside the call that lets a payload go (put, drop,
 * timer_wheel_advance(), meta_cache_free()) and must not call back into
 * the cache.  Not thread-safe.  The wheel must outlive the cache.
 */
struct meta_cache;

struct meta_cache_stats {
	uint64_t entries;    /* in the cache now */
	uint64_t bytes;      /* charged now; never above the budget */
	uint64_t hits;       /* lookups answered with a fresh entry */
	uint64_t misses;     /* lookups answered with nothing */
	uint64_t stale_hits; /* get_stale answered with a stale entry */
	uint64_t inserts;    /* successful puts, replacements included */
	uint64_t replaced;   /* puts that replaced an entry */
	uint64_t expired;    /* expiries: entries freed or turned stale */
	uint64_t evicted;    /* entries evicted to make room */
	uint64_t dropped;    /* by drop, drop_prefix or a refused put */
};

/* Flag of meta_cache_put(): keep the entry, stale, after its expiry. */
#define META_CACHE_KEEP_STALE 0x1

/* An empty cache whose entries expire on the wheel, within budget_bytes. */
struct meta_cache *meta_cache_new(struct timer_wheel *, size_t budget_bytes);

/* Free the cache, running the free function of every payload. */
void meta_cache_free(struct meta_cache *);

/*
 * Insert or replace the entry (kind, key), fresh until expires_ms; on
 * success the cache owns payload (free_fn, which may be NULL, runs when
 * the entry goes; re-putting the same payload pointer does not free it).
 * Returns 0; -E2BIG when the entry alone exceeds the budget (or 4 GiB),
 * and then any old entry of that key is dropped too; -EINVAL for a NULL
 * payload or a bad kind or flag; -ENOMEM.  On error the caller keeps
 * payload.
 */
int meta_cache_put(struct meta_cache *, int kind, const void *key,
    size_t keylen, void *payload, size_t payload_bytes, void (*free_fn)(void *),
    uint64_t expires_ms, int flags);

/* The payload of a fresh entry, marked recently used, or NULL. */
void *meta_cache_get(struct meta_cache *, int kind, const void *key,
    size_t keylen);

/*
 * Like meta_cache_get(), but also answers with a stale entry kept by
 * META_CACHE_KEEP_STALE; *stale (if not NULL) says which it was.
 */
void *meta_cache_get_stale(struct meta_cache *, int kind, const void *key,
    size_t keylen, bool *stale);

/*
 * Move the entry's expiry to new_expires_ms (fresh again if it was
 * stale) without marking it used; 0, or -ENOENT.
 */
int meta_cache_touch(struct meta_cache *, int kind, const void *key,
    size_t keylen, uint64_t new_expires_ms);

/* Drop the entry, freeing its payload; 0, or -ENOENT. */
int meta_cache_drop(struct meta_cache *, int kind, const void *key,
    size_t keylen);

/*
 * Drop every entry of kind whose key starts with the len bytes of
 * prefix, returning how many; O(entries in the cache).
 */
size_t meta_cache_drop_prefix(struct meta_cache *, int kind, const void *prefix,
    size_t len);

/* Copy the counters. */
void meta_cache_stats(const struct meta_cache *, struct meta_cache_stats *);

/* Bytes charged per entry beyond its key and payload. */
size_t meta_cache_entry_overhead(void);

#endif
