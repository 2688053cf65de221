/*
 * test-timer-wheel.c - unit tests of cache/timer-wheel.c.
 *
 * A table of small scripted cases, then randomised runs checked against
 * a reference model (the armed timers in a list sorted by expiry), then
 * callbacks that re-arm and delete, cascades over hours and days, jumps
 * of years, and a throughput figure printed as a TAP comment.  The seed
 * is fixed so failures repeat; PUFS_SEED overrides it.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "tap.h"
#include "testutil.h"

#define HOUR (3600ull * 1000)
#define DAY (24 * HOUR)

static size_t bench_fired;

/* Callback of the throughput run. */
static void
bench_cb(struct timer *t, void *arg)
{
	bench_fired++;
}

/*
 * The harness: timers under test, each with the model's view of it, and
 * a log of what fired during the current advance.
 */
struct tt {
	struct timer t;
	int id;
	bool armed;       /* model: armed */
	uint64_t expires; /* model: expiry */
	bool late_ok;     /* model: armed in the past during an advance */
};

struct fire {
	int id;
	uint64_t expires;
	uint64_t at; /* timer_wheel_now() inside the callback */
};

struct harness {
	struct timer_wheel *w;
	uint32_t tick;
	struct tt *tt;
	int n;
	struct tt **sorted; /* the reference model: armed, by expiry */
	int nsorted;
	struct fire *log;
	size_t nlog, caplog;
	uint64_t target; /* now_ms of the advance running */
	int errors;      /* mismatches found inside callbacks */
	int chaos;       /* callbacks add and delete at random */
	char first_error[256];
};

static struct harness *H; /* the harness the callbacks report to */

/* Note a mismatch; the first one is kept for the diagnostic. */
static void
h_error(struct harness *h, const char *what, const struct tt *x)
{
	if (h->errors++ == 0)
		snprintf(h->first_error, sizeof h->first_error,
		    "%s: timer %d expires %llu, wheel now %llu", what, x->id,
		    (unsigned long long)x->expires,
		    (unsigned long long)timer_wheel_now(h->w));
}

/* Drop x from the model's sorted list. */
static void
model_remove(struct harness *h, struct tt *x)
{
	int i;

	for (i = 0; i < h->nsorted; i++)
		if (h->sorted[i] == x) {
			memmove(&h->sorted[i], &h->sorted[i + 1],
			    (size_t)(h->nsorted - i - 1) * sizeof *h->sorted);
			h->nsorted--;
			break;
		}
	x->armed = false;
}

/* Insert x into the model's sorted list (after equal expiries). */
static void
model_insert(struct harness *h, struct tt *x)
{
	int i;

	for (i = h->nsorted; i > 0; i--)
		if (h->sorted[i - 1]->expires <= x->expires)
			break;
	memmove(&h->sorted[i + 1], &h->sorted[i],
	    (size_t)(h->nsorted - i) * sizeof *h->sorted);
	h->sorted[i] = x;
	h->nsorted++;
	x->armed = true;
}

/* Arm x in the wheel and the model. */
static void
h_add(struct harness *h, struct tt *x, uint64_t expires)
{
	if (x->armed)
		model_remove(h, x);
	x->expires = expires;
	x->late_ok = h->target != 0 && expires <= timer_wheel_now(h->w);
	model_insert(h, x);
	timer_wheel_add(h->w, &x->t, expires);
}

/* Disarm x in the wheel and the model. */
static void
h_del(struct harness *h, struct tt *x)
{
	if (x->armed)
		model_remove(h, x);
	timer_wheel_del(h->w, &x->t);
}

/* The callback of every harness timer: log, check, maybe stir. */
static void
h_cb(struct timer *t, void *arg)
{
	struct harness *h = H;
	struct tt *x = arg, *y;
	uint64_t now = timer_wheel_now(h->w);
	int k;

	if (!x->armed)
		h_error(h, "fired while disarmed", x);
	if (x->expires > now)
		h_error(h, "fired before its expiry", x);
	if (now > h->target)
		h_error(h, "wheel time beyond the advance", x);
	if (timer_pending(t))
		h_error(h, "still pending in its callback", x);
	if (h->nlog == h->caplog) {
		h->caplog = h->caplog ? 2 * h->caplog : 1024;
		h->log = realloc(h->log, h->caplog * sizeof *h->log);
		if (h->log == NULL)
			abort();
	}
	h->log[h->nlog++] = (struct fire){ x->id, x->expires, now };
	model_remove(h, x);

	if (!h->chaos)
		return;
	for (k = (int)rng_below(4); k > 0; k--) {
		y = &h->tt[rng_below((uint64_t)h->n)];
		switch (rng_below(4)) {
		case 0:
			h_del(h, y);
			break;
		case 1: /* maybe in the past, maybe later in this advance */
			h_add(h, y,
			    now - rng_below(now < 50 ? now : 50) +
				rng_below(300));
			break;
		case 2:
			h_add(h, x, now + rng_below(200)); /* re-arm self */
			break;
		default:
			break;
		}
	}
}

/* A harness of n timers on a new wheel. */
static struct harness *
h_new(int n, uint64_t start, uint32_t tick)
{
	struct harness *h = calloc(1, sizeof *h);
	int i;

	if (h == NULL || (h->tt = calloc((size_t)n, sizeof *h->tt)) == NULL ||
	    (h->sorted = calloc((size_t)n + 1, sizeof *h->sorted)) == NULL)
		abort();
	h->n = n;
	h->tick = tick;
	if ((h->w = timer_wheel_new(start, tick)) == NULL)
		abort();
	for (i = 0; i < n; i++) {
		h->tt[i].id = i;
		timer_init(&h->tt[i].t, h_cb, &h->tt[i]);
	}
	H = h;
	return h;
}

/* Free a harness and its wheel. */
static void
h_free(struct harness *h)
{
	timer_wheel_free(h->w);
	free(h->tt);
	free(h->sorted);
	free(h->log);
	free(h);
	H = NULL;
}

/*
 * Check what the wheel reports against the model: the count, each
 * timer's pending state, and that timer_wheel_next() is never late.
 */
static bool
h_check_state(struct harness *h, char *why, size_t len)
{
	uint64_t now = timer_wheel_now(h->w), first;
	int64_t next = timer_wheel_next(h->w);
	int i;

	if (timer_wheel_count(h->w) != (size_t)h->nsorted) {
		snprintf(why, len, "count %zu, model %d",
		    timer_wheel_count(h->w), h->nsorted);
		return false;
	}
	for (i = 0; i < h->n; i++)
		if (timer_pending(&h->tt[i].t) != h->tt[i].armed) {
			snprintf(why, len, "timer %d pending %d, model %d", i,
			    timer_pending(&h->tt[i].t), h->tt[i].armed);
			return false;
		}
	if (h->nsorted == 0) {
		if (next != -1) {
			snprintf(why, len, "next %lld on an empty wheel",
			    (long long)next);
			return false;
		}
		return true;
	}
	first = h->sorted[0]->expires;
	if (next < 0 || (first <= now && next != 0) ||
	    (first > now && now + (uint64_t)next > first)) {
		snprintf(why, len, "next %lld at %llu, first expiry %llu",
		    (long long)next, (unsigned long long)now,
		    (unsigned long long)first);
		return false;
	}
	return true;
}

/*
 * Advance to target and compare with the model: what fired is exactly
 * the armed timers due by target, in expiry order, each once.
 */
static bool
h_advance(struct harness *h, uint64_t target, char *why, size_t len)
{
	struct tt **want;
	size_t nwant = 0, fired, i;
	int j;

	want = calloc((size_t)h->n + 1, sizeof *want);
	if (want == NULL)
		abort();
	if (!h->chaos)
		for (j = 0; j < h->nsorted && h->sorted[j]->expires <= target;
		     j++)
			want[nwant++] = h->sorted[j];
	h->nlog = 0;
	h->target = target;
	fired = timer_wheel_advance(h->w, target);
	h->target = 0;

	if (h->errors > 0) {
		snprintf(why, len, "%s", h->first_error);
		goto fail;
	}
	if (fired != h->nlog) {
		snprintf(why, len, "advance says %zu fired, %zu callbacks",
		    fired, h->nlog);
		goto fail;
	}
	for (i = 1; i < h->nlog; i++)
		if (h->log[i].expires < h->log[i - 1].expires) {
			snprintf(why, len,
			    "timer %d (%llu) fired after %d "
			    "(%llu)",
			    h->log[i].id, (unsigned long long)h->log[i].expires,
			    h->log[i - 1].id,
			    (unsigned long long)h->log[i - 1].expires);
			goto fail;
		}
	if (!h->chaos) {
		if (nwant != h->nlog) {
			snprintf(why, len,
			    "advance to %llu fired %zu, "
			    "model %zu",
			    (unsigned long long)target, h->nlog, nwant);
			goto fail;
		}
		for (i = 0; i < nwant; i++)
			if (h->log[i].expires != want[i]->expires) {
				snprintf(why, len,
				    "firing %zu: expiry %llu, "
				    "model %llu",
				    i, (unsigned long long)h->log[i].expires,
				    (unsigned long long)want[i]->expires);
				goto fail;
			}
	}
	/* Nothing due may be left, but what a callback armed in the past. */
	for (j = 0; j < h->nsorted && h->sorted[j]->expires <= target; j++)
		if (!h->sorted[j]->late_ok) {
			snprintf(why, len,
			    "timer %d due at %llu left after "
			    "advance to %llu",
			    h->sorted[j]->id,
			    (unsigned long long)h->sorted[j]->expires,
			    (unsigned long long)target);
			goto fail;
		}
	for (j = 0; j < h->nsorted; j++)
		h->sorted[j]->late_ok = false;
	free(want);
	return h_check_state(h, why, len);
fail:
	free(want);
	return false;
}

/* A random expiry relative to now: past, near, far or beyond the span. */
static uint64_t
random_expiry(uint64_t now, uint32_t tick)
{
	switch (rng_below(10)) {
	case 0:
		return now - rng_below(now < 1000 ? now : 1000);
	case 1:
	case 2:
	case 3:
		return now + rng_below(64 * (uint64_t)tick + 5);
	case 4:
	case 5:
		return now + rng_below(5000 * (uint64_t)tick);
	case 6:
		return now + rng_below(HOUR);
	case 7:
		return now + rng_below(3 * DAY);
	case 8:
		return now + rng_below(400 * DAY);
	default:
		return now + rng_below(20);
	}
}

/* A random step of time: none, within a tick, a few ticks, or a leap. */
static uint64_t
random_step(uint32_t tick, bool fine)
{
	if (fine)
		return rng_below(tick + 1);
	switch (rng_below(8)) {
	case 0:
		return 0;
	case 1:
	case 2:
		return rng_below(tick + 1);
	case 3:
	case 4:
		return rng_below(70 * (uint64_t)tick);
	case 5:
		return rng_below(10000 * (uint64_t)tick);
	case 6:
		return rng_below(HOUR);
	default:
		return rng_below(30 * DAY);
	}
}

/*
 * Random adds, deletes and advances against the model.  In the fine
 * mode time moves by at most a tick per advance, and each timer armed
 * in the future must fire within a tick of its expiry.
 */
static void
test_random(uint32_t tick, uint64_t start, int ntimers, int nops, bool fine)
{
	struct harness *h = h_new(ntimers, start, tick);
	char why[512] = "";
	uint64_t now = start, step;
	struct tt *x;
	bool ok = true;
	size_t fired = 0, i;
	int op;

	for (op = 0; op < nops && ok; op++) {
		x = &h->tt[rng_below((uint64_t)ntimers)];
		switch (rng_below(10)) {
		case 0:
		case 1:
		case 2:
		case 3:
			h_add(h, x, random_expiry(now, tick));
			ok = h_check_state(h, why, sizeof why);
			break;
		case 4:
			h_del(h, x);
			ok = h_check_state(h, why, sizeof why);
			break;
		default:
			step = random_step(tick, fine);
			ok = h_advance(h, now + step, why, sizeof why);
			for (i = 0; ok && fine && i < h->nlog; i++)
				if (h->log[i].expires > now &&
				    now + step >= h->log[i].expires + tick) {
					snprintf(why, sizeof why,
					    "timer %d "
					    "at %llu fired at %llu",
					    h->log[i].id,
					    (unsigned long long)h->log[i]
						.expires,
					    (unsigned long long)(now + step));
					ok = false;
				}
			now += step;
			fired += h->nlog;
			break;
		}
	}
	tap_ok(ok,
	    "random: tick %u, start %llu, %d timers, %d ops%s, "
	    "%zu fired",
	    tick, (unsigned long long)start, ntimers, nops,
	    fine ? ", fine steps" : "", fired);
	if (!ok)
		tap_diag("op %d: %s", op, why);
	h_free(h);
}

/* Callbacks that re-arm themselves and add and delete others at random. */
static void
test_chaos(uint32_t tick, int ntimers, int nadv)
{
	struct harness *h = h_new(ntimers, 1000, tick);
	char why[512] = "";
	uint64_t now = 1000;
	size_t fired = 0;
	bool ok = true;
	int i;

	h->chaos = 1;
	for (i = 0; i < ntimers; i++)
		h_add(h, &h->tt[i], now + rng_below(2000));
	for (i = 0; i < nadv && ok; i++) {
		now += rng_below(3) == 0 ? 0 : rng_below(40 * (uint64_t)tick);
		ok = h_advance(h, now, why, sizeof why);
		fired += h->nlog;
	}
	tap_ok(ok && fired > 0,
	    "chaos: tick %u, callbacks re-arm and "
	    "delete, %zu fired",
	    tick, fired);
	if (!ok)
		tap_diag("advance %d: %s", i, why);
	h_free(h);
}

/*
 * Drive the wheel by timer_wheel_next() alone, as the daemon does: every
 * timer must fire exactly at its expiry, without busy waiting.
 */
static void
test_drive_by_next(uint32_t tick)
{
	struct harness *h = h_new(2000, 77, tick);
	char why[512] = "";
	uint64_t now = 77;
	size_t fired = 0, i, wakeups = 0;
	int64_t next;
	bool ok = true;
	int j;

	for (j = 0; j < h->n; j++)
		h_add(h, &h->tt[j],
		    now + 1 + rng_below(j % 3 ? 10000 : 5 * DAY));
	while (ok && (next = timer_wheel_next(h->w)) >= 0) {
		now += (uint64_t)next;
		ok = h_advance(h, now, why, sizeof why);
		for (i = 0; ok && i < h->nlog; i++)
			if (h->log[i].expires != now) {
				snprintf(why, sizeof why,
				    "timer %d at %llu "
				    "fired at %llu",
				    h->log[i].id,
				    (unsigned long long)h->log[i].expires,
				    (unsigned long long)now);
				ok = false;
			}
		fired += h->nlog;
		if (++wakeups > 20 * (size_t)h->n) {
			snprintf(why, sizeof why, "%zu wake-ups", wakeups);
			ok = false;
		}
	}
	tap_ok(ok && fired == (size_t)h->n,
	    "driven by timer_wheel_next: "
	    "tick %u, %zu fired on time in %zu wake-ups",
	    tick, fired, wakeups);
	if (!ok)
		tap_diag("%s", why);
	h_free(h);
}

/*
 * Timers hours and days ahead, past every level and beyond the span:
 * each is silent a millisecond before its expiry and fires at it.
 */
static void
test_exact_far(const char *what, uint32_t tick, uint64_t start,
    const uint64_t *offsets, int n)
{
	struct harness *h = h_new(n, start, tick);
	char why[512] = "";
	bool ok = true;
	int i;

	for (i = 0; i < n; i++)
		h_add(h, &h->tt[i], start + offsets[i]);
	while (ok && h->nsorted > 0) {
		uint64_t e = h->sorted[0]->expires;

		ok = h_advance(h, e - 1, why, sizeof why) &&
		    h_advance(h, e, why, sizeof why);
		if (ok && h->nlog == 0) {
			snprintf(why, sizeof why, "nothing fired at %llu",
			    (unsigned long long)e);
			ok = false;
		}
	}
	tap_ok(ok, "%s: tick %u, %d timers fire exactly", what, tick, n);
	if (!ok)
		tap_diag("%s", why);
	h_free(h);
}

/* Cascades through every level, and timers parked beyond the span. */
static void
test_far(void)
{
	static const uint64_t hours[] = {
		HOUR,
		2 * HOUR + 1,
		3 * HOUR + 30 * 60 * 1000,
		4 * HOUR,
		5 * HOUR + 7,
		23 * HOUR,
		DAY,
		7 * DAY,
		12 * DAY,
		13 * DAY,
		30 * DAY + 3,
		365 * DAY,
		4096ull * DAY,
		63,
		64,
		65,
		4095,
		4096,
		4097,
		262143,
		262144,
		262145,
		16777215,
		16777216,
		16777217,
		1073741823,
		1073741824,
		1073741825,
		3221225472ull,
	};
	const int n = (int)(sizeof hours / sizeof hours[0]);
	uint64_t offsets[600];
	struct harness *h;
	char why[512] = "";
	uint64_t now;
	bool ok = true;
	int i;

	test_exact_far("far timers", 1, 0, hours, n);
	test_exact_far("far timers, odd start", 1, 123456789, hours, n);
	test_exact_far("far timers, coarse tick", 10, 5, hours, n);
	test_exact_far("far timers, 1 s tick", 1000, 999, hours, n);

	for (i = 0; i < 600; i++) /* log-uniform up to 2^44 ms */
		offsets[i] = 1 + rng_below((uint64_t)1 << rng_below(45));
	test_exact_far("random far timers", 1, 1ull << 40, offsets, 600);

	/* Stepping a minute at a time across a month fires each on time. */
	h = h_new(n, 0, 1);
	for (i = 0; i < n; i++)
		h_add(h, &h->tt[i], hours[i]);
	for (now = 0; ok && now <= 31 * DAY; now += 60 * 1000)
		ok = h_advance(h, now, why, sizeof why);
	tap_ok(ok && h->nsorted == 3,
	    "minute steps over a month: %d left "
	    "beyond it",
	    h->nsorted);
	if (!ok)
		tap_diag("%s", why);
	h_free(h);
}

/* Leaps of years in one advance, up to the end of time. */
static void
test_jumps(void)
{
	struct harness *h = h_new(1000, 0, 1);
	struct timer_wheel *w;
	struct timer t;
	char why[512] = "";
	double t0, t1;
	bool ok;
	int i;

	for (i = 0; i < 1000; i++)
		h_add(h, &h->tt[i],
		    1 + rng_below((uint64_t)1 << rng_below(62)));
	t0 = seconds();
	ok = h_advance(h, (uint64_t)1 << 62, why, sizeof why);
	t1 = seconds();
	tap_ok(ok && h->nsorted == 0,
	    "one leap of 2^62 ms fires 1000 "
	    "timers spread over it, in order");
	if (!ok)
		tap_diag("%s", why);
	tap_ok(t1 - t0 < 2.0, "and takes %.1f ms", (t1 - t0) * 1000);

	for (i = 0; i < 10; i++)
		h_add(h, &h->tt[i], ((uint64_t)1 << 62) + (uint64_t)i * DAY);
	h_add(h, &h->tt[10], (uint64_t)INT64_MAX);
	ok = h_advance(h, ((uint64_t)1 << 62) + 3 * DAY, why, sizeof why) &&
	    h->nlog == 4;
	ok = ok && h_advance(h, (uint64_t)INT64_MAX - 1, why, sizeof why) &&
	    h->nlog == 6 && h->nsorted == 1;
	ok = ok && h_advance(h, (uint64_t)INT64_MAX, why, sizeof why) &&
	    h->nlog == 1;
	tap_ok(ok, "times up to the end of the clock");
	if (!ok)
		tap_diag("%s", why);
	h_free(h);

	w = timer_wheel_new(UINT64_MAX - 5, 10);
	timer_init(&t, bench_cb, NULL);
	timer_wheel_add(w, &t, UINT64_MAX);
	tap_ok(timer_wheel_now(w) == (uint64_t)INT64_MAX &&
		timer_wheel_advance(w, UINT64_MAX) == 1 &&
		t.expires == (uint64_t)INT64_MAX,
	    "times past 2^63 - 1 ms are taken as 2^63 - 1");
	tap_ok(timer_wheel_advance(w, 5) == 0 &&
		timer_wheel_now(w) == (uint64_t)INT64_MAX,
	    "time does not go backwards");
	timer_wheel_free(w);
}

/*
 * The scripted cases: a table of steps, each an add, a delete, an
 * advance that must fire the listed timers in that order, or a check of
 * timer_wheel_next().
 */
enum step_op { S_END, S_ADD, S_DEL, S_ADV, S_NEXT, S_COUNT };

struct step {
	enum step_op op;
	int id;
	uint64_t t;
	const char *fires; /* S_ADV: ids in firing order, "" for none */
};

struct script {
	const char *name;
	uint32_t tick;
	uint64_t start;
	struct step steps[16];
};

static const struct script scripts[] = {
	{ "in order, not before", 1, 0,
	    {
		{ S_ADD, 1, 10, NULL },
		{ S_ADD, 2, 5, NULL },
		{ S_ADD, 3, 11, NULL },
		{ S_NEXT, 0, 5, NULL },
		{ S_ADV, 0, 4, "" },
		{ S_ADV, 0, 5, "2" },
		{ S_NEXT, 0, 5, NULL },
		{ S_ADV, 0, 100, "1 3" },
		{ S_NEXT, 0, (uint64_t)-1, NULL },
		{ S_COUNT, 0, 0, NULL },
	    } },
	{ "past and present fire on the next advance", 1, 1000,
	    {
		{ S_ADD, 1, 1000, NULL },
		{ S_ADD, 2, 3, NULL },
		{ S_NEXT, 0, 0, NULL },
		{ S_COUNT, 0, 2, NULL },
		{ S_ADV, 0, 1000, "2 1" },
		{ S_ADV, 0, 1000, "" },
	    } },
	{ "exact within a coarse tick", 10, 0,
	    {
		{ S_ADD, 1, 12, NULL },
		{ S_ADD, 2, 15, NULL },
		{ S_ADD, 3, 19, NULL },
		{ S_ADD, 4, 20, NULL },
		{ S_ADV, 0, 11, "" },
		{ S_NEXT, 0, 1, NULL },
		{ S_ADV, 0, 14, "1" },
		{ S_ADV, 0, 15, "2" },
		{ S_NEXT, 0, 4, NULL },
		{ S_ADV, 0, 19, "3" },
		{ S_ADV, 0, 20, "4" },
	    } },
	{ "delete and re-arm", 1, 0,
	    {
		{ S_ADD, 1, 10, NULL },
		{ S_ADD, 2, 20, NULL },
		{ S_DEL, 1, 0, NULL },
		{ S_DEL, 1, 0, NULL },
		{ S_ADD, 2, 5, NULL },
		{ S_COUNT, 0, 1, NULL },
		{ S_ADV, 0, 30, "2" },
		{ S_DEL, 2, 0, NULL },
		{ S_COUNT, 0, 0, NULL },
	    } },
	{ "level boundaries", 1, 0,
	    {
		{ S_ADD, 1, 63, NULL },
		{ S_ADD, 2, 64, NULL },
		{ S_ADD, 3, 4096, NULL },
		{ S_ADD, 4, 4095, NULL },
		{ S_ADD, 5, 262144, NULL },
		{ S_ADD, 6, 65, NULL },
		{ S_ADV, 0, 63, "1" },
		{ S_ADV, 0, 64, "2" },
		{ S_ADV, 0, 4095, "6 4" },
		{ S_ADV, 0, 4096, "3" },
		{ S_ADV, 0, 262143, "" },
		{ S_ADV, 0, 262144, "5" },
	    } },
	{ "unaligned start, coarse tick", 10, 1000000000037ull,
	    {
		{ S_ADD, 1, 1000000000038ull, NULL },
		{ S_ADD, 2, 1000000000040ull, NULL },
		{ S_ADD, 3, 1000000000041ull, NULL },
		{ S_ADV, 0, 1000000000039ull, "1" },
		{ S_ADV, 0, 1000000000041ull, "2 3" },
	    } },
	{ "a clock going back stands still", 1, 500,
	    {
		{ S_ADD, 1, 550, NULL },
		{ S_ADV, 0, 400, "" },
		{ S_NEXT, 0, 50, NULL },
		{ S_ADV, 0, 550, "1" },
	    } },
};

static char script_log[256];

/* Callback of the scripted timers: append the id to script_log. */
static void
script_cb(struct timer *t, void *arg)
{
	size_t len = strlen(script_log);

	snprintf(script_log + len, sizeof script_log - len, "%s%d",
	    len ? " " : "", (int)(intptr_t)arg);
}

/* Run every scripted case. */
static void
test_scripts(void)
{
	struct timer tm[8];
	const struct script *s;
	const struct step *st;
	struct timer_wheel *w;
	char why[640];
	size_t i;
	int k;

	for (i = 0; i < sizeof scripts / sizeof scripts[0]; i++) {
		s = &scripts[i];
		w = timer_wheel_new(s->start, s->tick);
		for (k = 0; k < 8; k++)
			timer_init(&tm[k], script_cb, (void *)(intptr_t)k);
		why[0] = '\0';
		for (st = s->steps; st->op != S_END && why[0] == '\0'; st++) {
			switch (st->op) {
			case S_ADD:
				timer_wheel_add(w, &tm[st->id], st->t);
				break;
			case S_DEL:
				timer_wheel_del(w, &tm[st->id]);
				break;
			case S_ADV:
				script_log[0] = '\0';
				timer_wheel_advance(w, st->t);
				if (strcmp(script_log, st->fires) != 0)
					snprintf(why, sizeof why,
					    "advance to "
					    "%llu fired \"%s\", want \"%s\"",
					    (unsigned long long)st->t,
					    script_log, st->fires);
				break;
			case S_NEXT:
				if (timer_wheel_next(w) != (int64_t)st->t)
					snprintf(why, sizeof why,
					    "next %lld, "
					    "want %lld",
					    (long long)timer_wheel_next(w),
					    (long long)st->t);
				break;
			case S_COUNT:
				if (timer_wheel_count(w) != st->t)
					snprintf(why, sizeof why,
					    "count %zu, "
					    "want %llu",
					    timer_wheel_count(w),
					    (unsigned long long)st->t);
				break;
			case S_END:
				break;
			}
		}
		tap_ok(why[0] == '\0', "script: %s", s->name);
		if (why[0] != '\0')
			tap_diag("step %d: %s", (int)(st - s->steps), why);
		timer_wheel_free(w);
	}
}

/* Targeted callback behaviour, with counters in one place. */
struct cbt {
	struct timer_wheel *w;
	struct timer a, b, c;
	int na, nb, nc;
	uint64_t period;
	int mode;
};

/* Callback a: what it does depends on the mode under test. */
static void
cbt_a(struct timer *t, void *arg)
{
	struct cbt *c = arg;
	uint64_t now = timer_wheel_now(c->w);

	c->na++;
	switch (c->mode) {
	case 0: /* re-arm itself at the current time */
		timer_wheel_add(c->w, t, now);
		break;
	case 1: /* periodic, drift-free */
		timer_wheel_add(c->w, t, t->expires + c->period);
		break;
	case 2: /* delete b, due later in this advance */
		timer_wheel_del(c->w, &c->b);
		break;
	case 3: /* arm c, due within this advance */
		timer_wheel_add(c->w, &c->c, now + 5);
		break;
	case 4: /* delete itself, already idle: harmless */
		timer_wheel_del(c->w, t);
		break;
	}
}

/* Callbacks b and c only count. */
static void
cbt_b(struct timer *t, void *arg)
{
	((struct cbt *)arg)->nb++;
}

static void
cbt_c(struct timer *t, void *arg)
{
	((struct cbt *)arg)->nc++;
}

/* Callback that frees its own heap-allocated timer. */
static void
free_self(struct timer *t, void *arg)
{
	(*(int *)arg)++;
	free(t);
}

/* A new callback fixture in the given mode, wheel at time 0. */
static void
cbt_setup(struct cbt *c, int mode, uint32_t tick)
{
	memset(c, 0, sizeof *c);
	c->w = timer_wheel_new(0, tick);
	c->mode = mode;
	timer_init(&c->a, cbt_a, c);
	timer_init(&c->b, cbt_b, c);
	timer_init(&c->c, cbt_c, c);
}

/* Callbacks that re-arm and delete. */
static void
test_callbacks(void)
{
	struct cbt c;
	struct timer *heap[3];
	size_t n;
	int freed = 0, i;

	cbt_setup(&c, 0, 1);
	timer_wheel_add(c.w, &c.a, 10);
	n = timer_wheel_advance(c.w, 10);
	tap_ok(n == 1 && c.na == 1 && timer_pending(&c.a),
	    "re-armed at now: fired once, still pending");
	n = timer_wheel_advance(c.w, 10);
	tap_ok(n == 1 && c.na == 2, "and fires again on the next advance");
	timer_wheel_free(c.w);
	tap_ok(!timer_pending(&c.a), "freeing the wheel leaves it idle");

	cbt_setup(&c, 1, 1);
	c.period = 100;
	timer_wheel_add(c.w, &c.a, 100);
	n = timer_wheel_advance(c.w, 1050);
	tap_ok(n == 10 && c.na == 10 && c.a.expires == 1100,
	    "periodic timer catches up: %zu firings in one advance", n);
	timer_wheel_free(c.w);

	cbt_setup(&c, 2, 10);
	timer_wheel_add(c.w, &c.a, 11);
	timer_wheel_add(c.w, &c.b, 15);
	timer_wheel_add(c.w, &c.c, 20);
	n = timer_wheel_advance(c.w, 30);
	tap_ok(n == 2 && c.nb == 0 && c.nc == 1 && !timer_pending(&c.b),
	    "deleting a timer due in the same tick stops it");
	timer_wheel_free(c.w);

	cbt_setup(&c, 2, 1);
	timer_wheel_add(c.w, &c.a, 10);
	timer_wheel_add(c.w, &c.b, 25);
	n = timer_wheel_advance(c.w, 30);
	tap_ok(n == 1 && c.nb == 0 && timer_wheel_count(c.w) == 0,
	    "deleting a timer due later in the same advance stops it");
	timer_wheel_free(c.w);

	cbt_setup(&c, 3, 1);
	timer_wheel_add(c.w, &c.a, 10);
	n = timer_wheel_advance(c.w, 15);
	tap_ok(n == 2 && c.nc == 1,
	    "a timer armed by a callback, due "
	    "within the advance, fires in it");
	timer_wheel_free(c.w);

	cbt_setup(&c, 4, 1);
	timer_wheel_add(c.w, &c.a, 1);
	n = timer_wheel_advance(c.w, 2);
	tap_ok(n == 1 && timer_wheel_count(c.w) == 0,
	    "deleting itself is "
	    "harmless");
	timer_wheel_free(c.w);

	c.w = timer_wheel_new(0, 1);
	for (i = 0; i < 3; i++) {
		if ((heap[i] = malloc(sizeof *heap[i])) == NULL)
			abort();
		timer_init(heap[i], free_self, &freed);
		timer_wheel_add(c.w, heap[i], 5);
	}
	n = timer_wheel_advance(c.w, 5);
	tap_ok(n == 3 && freed == 3, "a callback may free its own timer");
	timer_wheel_free(c.w);

	tap_ok(timer_wheel_new(0, 0) == NULL, "a zero tick is refused");
}

/* Add and fire 1e6 timers spread over a minute, a millisecond at a time. */
static void
test_throughput(void)
{
	const size_t n = 1000000;
	struct timer *ts = calloc(n, sizeof *ts);
	struct timer_wheel *w = timer_wheel_new(0, 1);
	double t0, t1;
	uint64_t now;
	size_t i;

	if (ts == NULL || w == NULL)
		abort();
	bench_fired = 0;
	t0 = seconds();
	for (i = 0; i < n; i++) {
		timer_init(&ts[i], bench_cb, NULL);
		timer_wheel_add(w, &ts[i], 1 + rng_below(60000));
	}
	for (now = 1; now <= 60000; now++)
		timer_wheel_advance(w, now);
	t1 = seconds();
	tap_ok(bench_fired == n && timer_wheel_count(w) == 0,
	    "throughput run fired all %zu timers", n);
	tap_diag("timer wheel: %zu timers added and fired over 60000 "
		 "advances in %.3f s: %.2f million timers/s",
	    n, t1 - t0, (double)n / (t1 - t0) / 1e6);
	timer_wheel_free(w);
	free(ts);
}

int
main(void)
{
	rng_seed();
	test_scripts();
	test_callbacks();
	test_random(1, 0, 200, 20000, false);
	test_random(1, 5, 200, 20000, true);
	test_random(7, 1000003, 300, 20000, false);
	test_random(10, 0, 300, 20000, true);
	test_random(1000, 999, 100, 10000, false);
	test_random(1, 1ull << 50, 500, 20000, false);
	test_chaos(1, 300, 3000);
	test_chaos(10, 300, 3000);
	test_drive_by_next(1);
	test_drive_by_next(10);
	test_far();
	test_jumps();
	test_throughput();
	return tap_done();
}
