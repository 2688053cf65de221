/*
 * loop.c - the one event loop, its clock and its timer wheel.
 *
 * Everything the daemon does runs in callbacks of one libevent base:
 * FUSE requests, completions from the disk workers, peer streams, the
 * control socket, timers.  Signal handlers only set libevent's flags
 * (evsignal), so SIGTERM becomes an ordinary callback.
 *
 * Time: loop_now_ms() is monotonic milliseconds plus the debug skew
 * (-o debug.clock_skew) and what `pufs debug advance` added, so tests can
 * move one daemon's clock.  It is read once per loop turn: every callback
 * of a turn sees the same now, so deadlines computed together agree.
 * Timers with many instances (per-request deadlines, cache expiry) live
 * on a timer wheel driven by a single libevent timer armed at its next
 * expiry.
 * A probe timer measures how late the loop runs callbacks: the worst
 * figure is in pufs status, the evidence that disk calls do not stall it.
 *
 * Flow control: a part whose output backs up (a peer stream) pauses the
 * input, counted, and resumes it once drained; the part that reads the
 * input (the FUSE side) registers a listener that stops and restarts
 * reading.  Neither knows the other.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "log.h"
#include "loop.h"

#define LOOP_TICK_MS 10
#define LOOP_PROBE_MS 100

struct event_base *loop_base;
struct pufs_stats stats;
const struct config *conf;

static struct timer_wheel *wheel;
static struct event *wheel_ev, *sigint_ev, *sigterm_ev, *sighup_ev, *probe_ev;
static uint64_t start_ms, probe_due_us;
static uint64_t now_ms;         /* monotonic ms of this turn */
static struct timeval now_turn; /* libevent's time of that turn */
static uint64_t advanced_ms;    /* sum of loop_advance() */
static int exit_code;
static unsigned input_paused; /* loop_pause_input() count */
static void (*input_listener)(bool);

/* Monotonic microseconds. */
uint64_t
loop_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/*
 * Read the monotonic clock again if a new loop turn began.  libevent
 * caches its time once per turn, after polling and before it runs the
 * callbacks; a cached time that differs from the last one seen is a new
 * turn.  Outside the loop it is the time of day, new at each call, so
 * code that waits outside callbacks (the drain at exit) sees time move.
 */
static void
loop_clock_turn(void)
{
	struct timeval tv = { 0, 0 };

	if (loop_base == NULL ||
	    event_base_gettimeofday_cached(loop_base, &tv) == -1 ||
	    tv.tv_sec != now_turn.tv_sec || tv.tv_usec != now_turn.tv_usec) {
		now_turn = tv;
		now_ms = loop_mono_us() / 1000;
	}
}

/* The daemon's clock in ms: this turn's, moved by the debug skew. */
uint64_t
loop_now_ms(void)
{
	int64_t skew = conf != NULL ? (int64_t)(conf->debug_clock_skew * 1000)
				    : 0;

	loop_clock_turn();
	return (uint64_t)((int64_t)(now_ms + advanced_ms) + skew);
}

/* Seconds since the daemon started. */
double
loop_uptime(void)
{
	return (double)(loop_now_ms() - start_ms) / 1000.0;
}

/* The wheel for per-request and cache timers. */
struct timer_wheel *
loop_wheel(void)
{
	return wheel;
}

/* Arm the libevent timer for the wheel's next expiry. */
void
loop_wheel_kick(void)
{
	int64_t next = timer_wheel_next(wheel), due, now;
	struct timeval tv;

	if (next < 0) {
		evtimer_del(wheel_ev);
		return;
	}
	/* next counts from the wheel's time, which lags behind ours. */
	due = (int64_t)timer_wheel_now(wheel) + next;
	now = (int64_t)loop_now_ms();
	next = due > now ? due - now : 0;
	tv.tv_sec = next / 1000;
	tv.tv_usec = (next % 1000) * 1000;
	evtimer_add(wheel_ev, &tv);
}

/* The wheel's libevent timer: fire what is due, re-arm. */
static void
loop_wheel_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	timer_wheel_advance(wheel, loop_now_ms());
	loop_wheel_kick();
}

/*
 * Move the daemon's clock forward by ms and run every wheel timer that is
 * now due, as if that time had passed.  Only the wheel sees it: libevent's
 * own timers (stream and control timeouts, the lag probe) keep real time.
 */
void
loop_advance(uint64_t ms)
{
	advanced_ms += ms;
	timer_wheel_advance(wheel, loop_now_ms());
	loop_wheel_kick();
}

/* SIGINT, SIGTERM: leave the loop; main() then shuts down in order. */
static void
loop_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	log_info("signal %d: leaving", (int)sig);
	loop_exit(0);
}

/* SIGHUP: nothing to reload; say so. */
static void
loop_sighup_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
	log_info("SIGHUP ignored: the configuration is read at start only");
}

/* The lag probe: how late did this timer run? */
static void
loop_probe_cb(evutil_socket_t fd, short what, void *arg)
{
	uint64_t now = loop_mono_us(), lag;

	(void)fd;
	(void)what;
	(void)arg;
	lag = now > probe_due_us ? now - probe_due_us : 0;
	if (lag > stats.loop_lag_max_us)
		stats.loop_lag_max_us = lag;
	probe_due_us = now + LOOP_PROBE_MS * 1000;
}

/* libevent's log callback: its warnings and errors become ours. */
static void
loop_event_log_cb(int severity, const char *msg)
{
	switch (severity) {
	case EVENT_LOG_DEBUG:
		log_debug("libevent: %s", msg);
		break;
	case EVENT_LOG_MSG:
		log_info("libevent: %s", msg);
		break;
	default:
		log_warnx("libevent: %s", msg);
		break;
	}
}

/* Create the base, the wheel and the signal events. */
void
loop_init(const struct config *cfg)
{
	struct timeval probe = { 0, LOOP_PROBE_MS * 1000 };
	struct event_config *ecfg;

	conf = cfg;
	signal(SIGPIPE, SIG_IGN);
	event_set_log_callback(loop_event_log_cb);
	/*
	 * A precise timer: libevent's turn time then changes at every turn
	 * (a coarse clock repeats for a few ms), which loop_clock_turn()
	 * relies on, and a wheel timer never wakes the loop before it is
	 * due by our clock.
	 */
	if ((ecfg = event_config_new()) == NULL ||
	    event_config_set_flag(ecfg, EVENT_BASE_FLAG_PRECISE_TIMER) == -1)
		fatalx("event_config failed");
	loop_base = event_base_new_with_config(ecfg);
	event_config_free(ecfg);
	if (loop_base == NULL)
		fatalx("event_base_new failed");
	start_ms = loop_now_ms();
	wheel = timer_wheel_new(start_ms, LOOP_TICK_MS);
	if (wheel == NULL)
		fatalx("timer_wheel_new failed");
	wheel_ev = evtimer_new(loop_base, loop_wheel_cb, NULL);
	sigint_ev = evsignal_new(loop_base, SIGINT, loop_signal_cb, NULL);
	sigterm_ev = evsignal_new(loop_base, SIGTERM, loop_signal_cb, NULL);
	sighup_ev = evsignal_new(loop_base, SIGHUP, loop_sighup_cb, NULL);
	probe_ev = event_new(loop_base, -1, EV_PERSIST, loop_probe_cb, NULL);
	if (wheel_ev == NULL || sigint_ev == NULL || sigterm_ev == NULL ||
	    sighup_ev == NULL || probe_ev == NULL)
		fatalx("loop: cannot create events");
	evsignal_add(sigint_ev, NULL);
	evsignal_add(sigterm_ev, NULL);
	evsignal_add(sighup_ev, NULL);
	probe_due_us = loop_mono_us() + LOOP_PROBE_MS * 1000;
	event_add(probe_ev, &probe);
}

/* Run until loop_exit(); returns its code. */
int
loop_run(void)
{
	event_base_dispatch(loop_base);
	return exit_code;
}

/* Ask the loop to stop after the current callback. */
void
loop_exit(int code)
{
	exit_code = code;
	event_base_loopbreak(loop_base);
}

/* Register the one listener of input pauses (the FUSE side's). */
void
loop_input_listener(void (*cb)(bool paused))
{
	input_listener = cb;
}

/* Pause the input once more; the first pause tells the listener. */
void
loop_pause_input(void)
{
	if (input_paused++ == 0 && input_listener != NULL)
		input_listener(true);
}

/* Take one pause back; the last one tells the listener. */
void
loop_resume_input(void)
{
	if (input_paused == 0)
		fatalx("loop: input resumed more than paused");
	if (--input_paused == 0 && input_listener != NULL)
		input_listener(false);
}
