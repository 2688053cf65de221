/*
 * cache.h - the public face of cache/: the timer wheel, the metadata
 * cache and the block cache.  Pure code: no libfuse, no
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

/*
 * block-cache.c: the data cache.  A block holds block_size bytes of one
 * file: it is keyed by (file, index), where file is any 64-bit key the
 * caller picks (the daemon uses its node id) and index is the byte
 * offset divided by block_size.  The cache does no I/O: the caller moves
 * bytes between it and the holder and tells it what happened.
 *
 * What a block knows:
 *  - valid: its bytes are the holder's, as filled by block_cache_fill()
 *    (bytes past the end the holder returned read as zeros), overlaid
 *    with what was written here since;
 *  - dirty ranges: the byte ranges written here and not yet written
 *    back, sorted and disjoint (touching or overlapping writes merge).
 *    A block that is not valid knows only its dirty bytes.
 *  - busy: a count of operations in flight on it (a READ filling it, a
 *    WRITE carrying its ranges back); a busy block is never freed.
 *  - gen: a counter bumped by every invalidation of the block, and when
 *    a write-back of it is taken and when it ends, so that a fill started
 *    before an invalidation or around a write-back (whose READ may have
 *    seen the holder's older bytes) is ignored when it lands.
 *
 * Memory is bounded by a budget: each block is charged block_size plus
 * block_cache_block_overhead() (which includes room for one dirty range)
 * plus 8 bytes per dirty range its range array has room for once it
 * needs more than one.  Making room evicts least recently used blocks
 * that are neither dirty nor busy; a dirty or busy block is never
 * evicted.  When nothing can be evicted, block_cache_get() answers NULL
 * (and block_cache_write() -ENOBUFS) and the caller writes back and
 * waits: that is how dirty data stays within the budget.
 *
 * A block that is neither dirty nor busy may be evicted by the next
 * block_cache_get() or block_cache_write(): hold or write a block before
 * getting another.  A block that is neither valid nor dirty nor busy
 * knows nothing and is freed by the call that leaves it so (unhold,
 * writeback_done, invalidate, truncate): do not touch b after
 * block_cache_unhold() or block_cache_writeback_done() unless another
 * hold or a dirty range keeps it.
 *
 * Every range is in bytes within one block: 0 <= off, off + len <=
 * block_size.  Functions given a range outside the block answer -EINVAL
 * (false for those answering bool) and change nothing.  A range of
 * len 0 within the block is empty: a write of it does nothing and answers
 * 0, and covers and read answer true without counting.  Not thread-safe.
 */
struct block_cache;

struct block_range {
	uint32_t lo, hi; /* bytes [lo, hi) of the block, lo < hi */
};

struct block {
	/* Read-only to the caller. */
	uint64_t file, index;
	uint64_t gen;
	unsigned char *data; /* block_size bytes; known ones below ztail */
	uint32_t ztail;      /* bytes from here on are zeros, data holds none */
	bool valid;
	uint32_t busy;
	struct block_range *dirty; /* ndirty ranges, sorted, disjoint */
	uint32_t ndirty;
	/* The caller's, never touched by the cache (e.g. a waiter list). */
	void *user;
	/* Private to the cache. */
	struct block *hnext;               /* hash chain */
	struct block *lru_prev, *lru_next; /* LRU (clean, idle blocks) */
	struct block *fprev, *fnext;       /* the file's blocks, by index */
	struct block_file *bf;
	size_t charged;
	struct block *tl, *tr;     /* the file's treap, by index */
	struct block_range dirty1; /* room for one range, in the block */
	uint32_t size;             /* block_size, for block_cache_covers() */
	uint32_t cap;              /* ranges dirty has room for */
	uint32_t dbytes;           /* bytes inside the dirty ranges */
	uint8_t flags;             /* BLOCK_* bits of block-cache.c */
};

struct block_cache_stats {
	uint64_t blocks;       /* in the cache now */
	uint64_t bytes;        /* charged now; never above the budget */
	uint64_t clean_blocks; /* valid with no dirty range */
	uint64_t dirty_blocks; /* with at least one dirty range */
	uint64_t dirty_bytes;  /* bytes inside dirty ranges, all blocks */
	uint64_t hits;         /* block_cache_read() answered in full */
	uint64_t misses;       /* block_cache_read() that could not */
	uint64_t evicted;      /* blocks evicted to make room */
	/* Blocks made invalid, or freed, by block_cache_invalidate(). */
	uint64_t invalidated;
	uint64_t written_back; /* bytes reported written by _writeback_done */
	uint64_t writeback_errors; /* _writeback_done calls with ok false */
};

/*
 * An empty cache of blocks of block_size bytes (a power of two, 4 KiB to
 * 16 MiB) within budget_bytes (at least 4 blocks' charge); NULL with
 * errno EINVAL if not, or ENOMEM.
 */
struct block_cache *block_cache_new(uint32_t block_size, size_t budget_bytes);

/* Free the cache and every block, dirty or busy ones included. */
void block_cache_free(struct block_cache *);

uint32_t block_cache_block_size(const struct block_cache *);

/* The block (file, index), marked recently used, or NULL. */
struct block *block_cache_find(struct block_cache *, uint64_t file,
    uint64_t index);

/* Like block_cache_find(), but leaves the LRU alone (for tests, status). */
struct block *block_cache_peek(const struct block_cache *, uint64_t file,
    uint64_t index);

/*
 * The block (file, index), created empty (not valid, nothing dirty, its
 * data not yet any byte's) if absent, evicting to make room.  NULL when the
 * budget holds only dirty or busy blocks (errno ENOBUFS), or ENOMEM.
 */
struct block *block_cache_get(struct block_cache *, uint64_t file,
    uint64_t index);

/*
 * Copy bytes [off, off + len) of b (within the block) into buf, as they
 * stand: those at or past b->ztail are zeros.  Read b->data directly
 * only below b->ztail; the buffer past it was never written.
 */
void block_cache_bytes(const struct block *b, uint32_t off, uint32_t len,
    void *buf);

/* block_size bytes of zeros, for pointing at the tail of a block. */
const unsigned char *block_cache_zeros(const struct block_cache *);

/* Whether bytes [off, off + len) of b are known: b valid, or all dirty. */
bool block_cache_covers(const struct block *b, uint32_t off, uint32_t len);

/*
 * Copy bytes [off, off + len) of (file, index) into buf if the block is
 * there and covers them (counted a hit; the block is marked used):
 * true.  Otherwise false, counted a miss.
 */
bool block_cache_read(struct block_cache *, uint64_t file, uint64_t index,
    uint32_t off, uint32_t len, void *buf);

/*
 * Write len bytes of data at off in b: they become dirty (merged with
 * dirty ranges they touch or overlap); a write that leaves every byte of
 * b dirty makes it valid, as it then knows them all.  0, -EINVAL, or
 * -ENOMEM (the range list could not grow; b is unchanged), or -ENOBUFS:
 * the range list must grow and the budget holds only dirty or busy
 * blocks (b is unchanged; write back and retry, as after
 * block_cache_get() answers NULL).  A valid block never answers
 * -ENOBUFS: its ranges merge into one spanning them, as
 * block_cache_writeback_take() would send anyway.  -ESTALE if b was
 * dropped by truncate or drop_file while held.
 */
int block_cache_write(struct block_cache *, struct block *b, uint32_t off,
    const void *data, uint32_t len);

/*
 * The holder's bytes of the block arrived: len bytes (len < block_size:
 * the file ended there; the rest reads as zeros).  Bytes inside dirty
 * ranges keep what was written here.  The block becomes valid.  If b's
 * gen is no longer gen (invalidated, truncated into or dropped since the
 * read was sent) or len > block_size, nothing changes and the answer is
 * false; else true.
 */
bool block_cache_fill(struct block_cache *, struct block *b, uint64_t gen,
    const void *data, uint32_t len);

/*
 * Mark b busy (one more operation in flight), or one fewer; an unhold
 * without a hold aborts.  Unhold frees b if that leaves it idle and
 * knowing nothing (not valid, not dirty), or if it was dropped.
 */
void block_cache_hold(struct block_cache *, struct block *b);
void block_cache_unhold(struct block_cache *, struct block *b);

/*
 * Take b's dirty ranges for writing back, into out (at most max): they
 * are no longer dirty and b is held (busy) until
 * block_cache_writeback_done().  A valid block gives one range spanning
 * all of its dirty bytes (the bytes between are the holder's own); a
 * block that is not valid gives each range.  Returns the number taken;
 * ranges beyond max stay dirty.  0 if nothing is dirty (b not held).
 * Taking moves b's gen on.
 */
uint32_t block_cache_writeback_take(struct block_cache *, struct block *b,
    struct block_range *out, uint32_t max);

/*
 * The write-back of ranges taken from b ended: bytes were written (ok),
 * or failed.  Drops the hold taken.  On failure b stops being valid
 * (its bytes may no longer match the holder), even if written again
 * since: those newer dirty ranges stay, and the other bytes are read
 * from the holder again rather than served as if it had them.  A block
 * left not valid, not dirty and not busy is freed (ok or not).  Moves
 * b's gen on.
 */
void block_cache_writeback_done(struct block_cache *, struct block *b,
    uint64_t bytes, bool ok);

/*
 * The file's blocks with a dirty range, in index order: the first with
 * index >= from, or NULL.
 */
struct block *block_cache_next_dirty(struct block_cache *, uint64_t file,
    uint64_t from);

/* Bytes inside dirty ranges of the file's blocks. */
uint64_t block_cache_file_dirty(const struct block_cache *, uint64_t file);

/*
 * Bytes [off, off + len) of the file changed elsewhere (len 0: to the
 * end): every block they touch stops being valid and its gen moves on;
 * its dirty ranges stay (a write here is newer).  Blocks left with
 * nothing dirty and not busy are freed.
 */
void block_cache_invalidate(struct block_cache *, uint64_t file, uint64_t off,
    uint64_t len);

/*
 * The file is size bytes long now (truncate): blocks wholly beyond it
 * are dropped (dirty ones too; busy ones are invalidated, no longer
 * found, and freed when let go), dirty ranges are cut at size, and the
 * bytes of the last block past size become zeros; that block's gen moves
 * on, since a READ in flight saw the old length.  Ranges already taken
 * for writing back are the caller's: write back before truncating.
 */
void block_cache_truncate(struct block_cache *, uint64_t file, uint64_t size);

/* Forget every block of the file, dirty ones too (as truncate to 0). */
void block_cache_drop_file(struct block_cache *, uint64_t file);

/* Copy the counters. */
void block_cache_stats(const struct block_cache *, struct block_cache_stats *);

/* Bytes charged per block beyond its data and ranges. */
size_t block_cache_block_overhead(void);

/*
 * Walk the whole cache and check its invariants (indexes, LRU, ranges,
 * counters, budget): NULL, or a sentence saying what is broken.
 * O(blocks); for tests and fuzzing.
 */
const char *block_cache_check(const struct block_cache *);

#endif
