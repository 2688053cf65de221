/*
 * timer-wheel.c - a hierarchical timing wheel (Varghese & Lauck, in the
 * cascading form of the classic BSD and Linux timer wheels).
 *
 * Time is cut into ticks of tick_ms milliseconds; a timer's tick is
 * expires / tick_ms.  Five levels of 64 slots each: level 0 holds timers
 * due within 64 ticks, one tick per slot; level L holds those due within
 * 64^(L+1) ticks, 64^L ticks per slot.  When the current tick crosses a
 * level-L slot boundary that slot is "cascaded": its timers are placed
 * again, now into finer levels.  The levels span 2^30 ticks (12.4 days at
 * 1 ms, 124 days at 10 ms).  A timer further away waits on a "far" list
 * whose earliest tick is tracked (a lower bound, as deletions leave it
 * stale); when that tick comes within the span the list is scanned and
 * what is in range moves into the levels.  So a far timer never fires
 * early, and costs one scan of the far list rather than one cascade per
 * span, but many far timers spread over years cost quadratic scanning.
 *
 * Firing is exact, not rounded to ticks: an advance to now fires every
 * timer whose expiry is <= now, in expiry order (ties in no promised
 * order).  The slot of the current tick may hold timers due later in the
 * same tick; each advance scans that one slot, which is why tick_ms
 * should stay small next to the timers' spacing.  A bitmap of non-empty
 * slots per level lets an advance jump over empty stretches, so a jump of
 * days costs only the slots that hold timers.
 *
 * Each armed timer sits on exactly one list: a wheel slot; the far list;
 * the "due" list of timers armed at or before the current time, which
 * fire on the next advance (so a callback re-arming its timer in the past
 * cannot loop); or the work list being fired.  A callback may add or
 * delete any timer, but must not advance or free the wheel (an advance
 * from a callback returns 0).  Times are capped at 2^63 - 1 ms; a clock
 * that goes backwards is treated as standing still.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "cache.h"

#define TW_BITS 6
#define TW_SLOTS (1u << TW_BITS)
#define TW_MASK ((uint64_t)TW_SLOTS - 1)
#define TW_LEVELS 5
#define TW_SPAN ((uint64_t)1 << (TW_BITS * TW_LEVELS))
#define TW_TIME_MAX ((uint64_t)INT64_MAX)
#define TW_NONE UINT64_MAX

/* Values of timer->slot that are not wheel slots. */
#define TW_SLOT_DUE 0xfffffff0u
#define TW_SLOT_WORK 0xfffffff1u
#define TW_SLOT_FAR 0xfffffff2u

struct timer_wheel {
	uint64_t now;  /* ms; every wheel timer expires after it */
	uint64_t cur;  /* current tick; earlier ticks are all fired */
	uint32_t tick; /* ms per tick */
	size_t count;  /* armed timers, on any list */
	bool running;  /* inside timer_wheel_advance() */
	uint64_t used[TW_LEVELS]; /* bit i: slot i is not empty */
	uint64_t far_min;         /* <= the earliest tick on the far list */
	struct timer far;         /* list head: beyond the levels' span */
	struct timer due;         /* list head: armed at or before now */
	struct timer work;        /* list head: being fired */
	struct timer slots[TW_LEVELS][TW_SLOTS]; /* list heads */
};

/* Make a list head empty. */
static void
tw_list_init(struct timer *head)
{
	head->next = head->prev = head;
}

/* Whether a list is empty. */
static bool
tw_list_empty(const struct timer *head)
{
	return head->next == head;
}

/* Append t at the tail of a list. */
static void
tw_list_append(struct timer *head, struct timer *t)
{
	t->prev = head->prev;
	t->next = head;
	head->prev->next = t;
	head->prev = t;
}

/* Move every element of from to the tail of to, leaving from empty. */
static void
tw_list_splice(struct timer *to, struct timer *from)
{
	if (tw_list_empty(from))
		return;
	from->next->prev = to->prev;
	to->prev->next = from->next;
	from->prev->next = to;
	to->prev = from->prev;
	tw_list_init(from);
}

/* The list head a slot number names. */
static struct timer *
tw_head(struct timer_wheel *w, uint32_t slot)
{
	if (slot == TW_SLOT_DUE)
		return &w->due;
	if (slot == TW_SLOT_WORK)
		return &w->work;
	if (slot == TW_SLOT_FAR)
		return &w->far;
	return &w->slots[slot / TW_SLOTS][slot % TW_SLOTS];
}

/* Take t off whatever list holds it, keeping the slot bitmap true. */
static void
tw_unlink(struct timer_wheel *w, struct timer *t)
{
	struct timer *head = tw_head(w, t->slot);

	t->prev->next = t->next;
	t->next->prev = t->prev;
	t->next = t->prev = NULL;
	if (t->slot < TW_LEVELS * TW_SLOTS && tw_list_empty(head))
		w->used[t->slot / TW_SLOTS] &= ~(
		    (uint64_t)1 << (t->slot % TW_SLOTS));
	w->count--;
}

/*
 * Put an idle timer that expires after w->now into its slot, relative to
 * the current tick, or on the far list when beyond the span.
 */
static void
tw_place(struct timer_wheel *w, struct timer *t)
{
	uint64_t key = t->expires / w->tick, delta;
	unsigned int level;
	uint32_t idx;

	w->count++;
	delta = key - w->cur; /* key >= cur: t expires after now */
	if (delta >= TW_SPAN) {
		t->slot = TW_SLOT_FAR;
		tw_list_append(&w->far, t);
		if (key < w->far_min)
			w->far_min = key;
		return;
	}
	for (level = 0; level < TW_LEVELS - 1; level++)
		if (delta < (uint64_t)1 << (TW_BITS * (level + 1)))
			break;
	idx = (uint32_t)((key >> (TW_BITS * level)) & TW_MASK);
	t->slot = level * TW_SLOTS + idx;
	tw_list_append(&w->slots[level][idx], t);
	w->used[level] |= (uint64_t)1 << idx;
}

/* Distance from bit start, going up and wrapping, to the first set bit. */
static unsigned int
tw_first_set(uint64_t bits, unsigned int start)
{
	uint64_t rot = start == 0
	    ? bits
	    : (bits >> start) | (bits << (TW_SLOTS - start));

	return (unsigned int)__builtin_ctzll(rot);
}

/*
 * The first tick at or after the current one where something happens: a
 * level-0 slot whose timers fall due, a coarser slot that cascades, or
 * the far list coming within the span.  *exact says whether that tick
 * holds level-0 timers that nothing coarser precedes or ties.  TW_NONE
 * when the wheel is empty.  Without far, the far list is left out.
 */
static uint64_t
tw_next_event(const struct timer_wheel *w, bool *exact, bool far)
{
	uint64_t best = TW_NONE, t, base;
	unsigned int level, shift;

	*exact = false;
	if (w->used[0] != 0) {
		best = w->cur +
		    tw_first_set(w->used[0], (unsigned int)(w->cur & TW_MASK));
		*exact = true;
	}
	for (level = 1; level < TW_LEVELS; level++) {
		if (w->used[level] == 0)
			continue;
		shift = TW_BITS * level;
		base = (w->cur >> shift) + 1;
		t = (base +
			tw_first_set(w->used[level],
			    (unsigned int)(base & TW_MASK)))
		    << shift;
		if (t <= best) {
			best = t;
			*exact = false;
		}
	}
	if (far && !tw_list_empty(&w->far) &&
	    w->far_min - (TW_SPAN - 1) <= best) {
		best = w->far_min - (TW_SPAN - 1);
		*exact = false;
	}
	return best;
}

/*
 * Entering tick w->cur: re-place the timers of each coarser slot that
 * begins at this tick, so that every timer of this tick is on level 0,
 * and pull in the far timers that came within the span.
 */
static void
tw_cascade(struct timer_wheel *w)
{
	struct timer list, *t, *next;
	unsigned int level, shift;
	uint32_t idx;
	uint64_t key;

	if (!tw_list_empty(&w->far) && w->far_min - (TW_SPAN - 1) <= w->cur) {
		w->far_min = TW_NONE;
		for (t = w->far.next; t != &w->far; t = next) {
			next = t->next;
			key = t->expires / w->tick;
			if (key - w->cur < TW_SPAN) {
				tw_unlink(w, t);
				tw_place(w, t);
			} else if (key < w->far_min)
				w->far_min = key;
		}
	}

	for (level = 1; level < TW_LEVELS; level++) {
		shift = TW_BITS * level;
		if ((w->cur & (((uint64_t)1 << shift) - 1)) != 0)
			break;
		idx = (uint32_t)((w->cur >> shift) & TW_MASK);
		if ((w->used[level] & ((uint64_t)1 << idx)) == 0)
			continue;
		tw_list_init(&list);
		tw_list_splice(&list, &w->slots[level][idx]);
		w->used[level] &= ~((uint64_t)1 << idx);
		while (!tw_list_empty(&list)) {
			t = list.next;
			t->prev->next = t->next;
			t->next->prev = t->prev;
			w->count--;
			tw_place(w, t);
		}
	}
}

/* Merge two NULL-terminated lists sorted by expiry; a first on ties. */
static struct timer *
tw_merge(struct timer *a, struct timer *b)
{
	struct timer head, *tail = &head;

	while (a != NULL && b != NULL) {
		if (b->expires < a->expires) {
			tail->next = b;
			b = b->next;
		} else {
			tail->next = a;
			a = a->next;
		}
		tail = tail->next;
	}
	tail->next = a != NULL ? a : b;
	return head.next;
}

/* Stable sort of the work list by expiry; a pass when already sorted. */
static void
tw_sort_work(struct timer_wheel *w)
{
	struct timer *head = &w->work, *t, *run[64], *rest, *list, *prev;
	unsigned int i;
	bool sorted = true;

	for (t = head->next; t != head && t->next != head; t = t->next)
		if (t->next->expires < t->expires) {
			sorted = false;
			break;
		}
	if (sorted)
		return;

	/* Classic bottom-up merge sort: run[i] holds 2^i elements. */
	for (i = 0; i < 64; i++)
		run[i] = NULL;
	head->prev->next = NULL;
	for (t = head->next; t != NULL; t = rest) {
		rest = t->next;
		t->next = NULL;
		for (i = 0; run[i] != NULL; i++) {
			t = tw_merge(run[i], t);
			run[i] = NULL;
		}
		run[i] = t;
	}
	list = NULL;
	for (i = 0; i < 64; i++)
		if (run[i] != NULL)
			list = tw_merge(run[i], list);

	prev = head;
	for (t = list; t != NULL; t = t->next) {
		t->prev = prev;
		prev->next = t;
		prev = t;
	}
	prev->next = head;
	head->prev = prev;
}

/* Fire the work list in expiry order; returns how many fired. */
static size_t
tw_fire_work(struct timer_wheel *w)
{
	struct timer *t;
	size_t fired = 0;

	tw_sort_work(w);
	while (!tw_list_empty(&w->work)) {
		t = w->work.next;
		tw_unlink(w, t);
		fired++;
		t->cb(t, t->arg); /* may add, delete or free t */
	}
	return fired;
}

/* Move the timers of one list to the work list. */
static void
tw_take(struct timer_wheel *w, struct timer *head)
{
	struct timer *t;

	for (t = head->next; t != head; t = t->next)
		t->slot = TW_SLOT_WORK;
	tw_list_splice(&w->work, head);
}

/* A wheel whose current time is now_ms; tick_ms is its granularity. */
struct timer_wheel *
timer_wheel_new(uint64_t now_ms, uint32_t tick_ms)
{
	struct timer_wheel *w;
	unsigned int level, i;

	if (tick_ms == 0)
		return NULL;
	if ((w = calloc(1, sizeof *w)) == NULL)
		return NULL;
	if (now_ms > TW_TIME_MAX)
		now_ms = TW_TIME_MAX;
	w->now = now_ms;
	w->tick = tick_ms;
	w->cur = now_ms / tick_ms;
	w->far_min = TW_NONE;
	tw_list_init(&w->far);
	tw_list_init(&w->due);
	tw_list_init(&w->work);
	for (level = 0; level < TW_LEVELS; level++)
		for (i = 0; i < TW_SLOTS; i++)
			tw_list_init(&w->slots[level][i]);
	return w;
}

/* Free the wheel; pending timers are dropped without firing. */
void
timer_wheel_free(struct timer_wheel *w)
{
	unsigned int i;
	struct timer *head;

	if (w == NULL)
		return;
	/* Leave the dropped timers idle rather than pointing into w. */
	for (i = 0; i < TW_LEVELS * TW_SLOTS + 3; i++) {
		if (i < TW_LEVELS * TW_SLOTS)
			head = &w->slots[i / TW_SLOTS][i % TW_SLOTS];
		else
			head = tw_head(w,
			    TW_SLOT_DUE + i - TW_LEVELS * TW_SLOTS);
		while (!tw_list_empty(head))
			tw_unlink(w, head->next);
	}
	free(w);
}

/* Prepare an embedded timer; it starts idle. */
void
timer_init(struct timer *t, void (*cb)(struct timer *, void *), void *arg)
{
	t->expires = 0;
	t->cb = cb;
	t->arg = arg;
	t->next = t->prev = NULL;
	t->slot = 0;
}

/* Whether the timer is armed. */
bool
timer_pending(const struct timer *t)
{
	return t->next != NULL;
}

/* Arm or re-arm; a time at or before now waits for the next advance. */
void
timer_wheel_add(struct timer_wheel *w, struct timer *t, uint64_t expires_ms)
{
	if (timer_pending(t))
		tw_unlink(w, t);
	if (expires_ms > TW_TIME_MAX)
		expires_ms = TW_TIME_MAX;
	t->expires = expires_ms;
	if (expires_ms <= w->now) {
		t->slot = TW_SLOT_DUE;
		tw_list_append(&w->due, t);
		w->count++;
		return;
	}
	tw_place(w, t);
}

/* Disarm; harmless on an idle timer. */
void
timer_wheel_del(struct timer_wheel *w, struct timer *t)
{
	if (timer_pending(t))
		tw_unlink(w, t);
}

/*
 * Move to now_ms, firing what is due: first the due list, then each
 * whole tick before now_ms's own, then the part of now_ms's tick that is
 * due.  While a whole tick fires, the wheel's time is that tick's last
 * millisecond, so a callback arming a timer later than that sees it fire
 * in this same advance, in order.
 */
size_t
timer_wheel_advance(struct timer_wheel *w, uint64_t now_ms)
{
	struct timer *head, *t, *next;
	uint64_t target, ev;
	size_t fired;
	bool exact;

	if (w->running)
		return 0;
	w->running = true;
	if (now_ms > TW_TIME_MAX)
		now_ms = TW_TIME_MAX;
	if (now_ms < w->now)
		now_ms = w->now;

	tw_take(w, &w->due);
	fired = tw_fire_work(w);

	target = now_ms / w->tick;
	while (w->cur < target) {
		head = &w->slots[0][w->cur & TW_MASK];
		if (!tw_list_empty(head)) {
			w->now = (w->cur + 1) * w->tick - 1;
			w->used[0] &= ~((uint64_t)1 << (w->cur & TW_MASK));
			tw_take(w, head);
			fired += tw_fire_work(w);
		}
		ev = tw_next_event(w, &exact, true);
		if (ev <= w->cur) /* cannot be: this tick is empty */
			ev = w->cur + 1;
		w->cur = ev < target ? ev : target;
		tw_cascade(w);
	}

	w->now = now_ms;
	head = &w->slots[0][w->cur & TW_MASK];
	for (t = head->next; t != head; t = next) {
		next = t->next;
		if (t->expires <= now_ms) {
			tw_unlink(w, t);
			t->slot = TW_SLOT_WORK;
			tw_list_append(&w->work, t);
			w->count++;
		}
	}
	fired += tw_fire_work(w);

	w->running = false;
	return fired;
}

/*
 * Milliseconds until the earliest pending expiry (0 if overdue), or -1.
 * Exact when that timer is on level 0; otherwise the start of the coarse
 * slot that holds it, or the far list's bound, early but never late.
 */
int64_t
timer_wheel_next(const struct timer_wheel *w)
{
	const struct timer *head, *t;
	uint64_t ev, at = TW_NONE;
	bool exact;

	if (!tw_list_empty(&w->due) || !tw_list_empty(&w->work))
		return 0;
	ev = tw_next_event(w, &exact, false);
	if (exact) {
		head = &w->slots[0][ev & TW_MASK];
		for (t = head->next; t != head; t = t->next)
			if (t->expires < at)
				at = t->expires;
	} else if (ev != TW_NONE)
		at = ev * w->tick;
	if (!tw_list_empty(&w->far) && w->far_min * w->tick < at)
		at = w->far_min * w->tick;
	if (at == TW_NONE)
		return -1;
	if (at <= w->now)
		return 0;
	return (int64_t)(at - w->now);
}

/* Number of armed timers. */
size_t
timer_wheel_count(const struct timer_wheel *w)
{
	return w->count;
}

/* The wheel's current time. */
uint64_t
timer_wheel_now(const struct timer_wheel *w)
{
	return w->now;
}
