/*
 * cache.h - the public face of cache/: the timer wheel (and, later, the
 * metadata cache and the block cache).  Pure code: no libfuse, no
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
	uint64_t expires;		/* absolute, ms */
	void (*cb)(struct timer *, void *arg);
	void *arg;
	struct timer *next, *prev;	/* slot list; NULL when idle */
	uint32_t slot;			/* private to the wheel */
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
void timer_wheel_add(struct timer_wheel *, struct timer *,
    uint64_t expires_ms);

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

#endif
