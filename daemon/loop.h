/*
 * loop.h - the one event loop, its clock and its timer wheel (loop.c).
 * The base every other part of the daemon stands on.
 */
#ifndef PUFS_LOOP_H
#define PUFS_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "cache.h"
#include "config.h"
#include "proto.h"

struct event_base;

struct pufs_stats {
	unsigned long ops[PROTO_TYPE_MAX]; /* calls sent, by type */
	unsigned long fuse_requests;
	unsigned long call_timeouts;
	unsigned long loop_lag_max_us; /* worst timer lateness */
};

extern struct event_base *loop_base;
extern struct pufs_stats stats;
extern const struct config *conf;

void loop_init(const struct config *);
int loop_run(void);
void loop_exit(int);
uint64_t loop_now_ms(void);  /* monotonic ms of this turn, + debug skew */
uint64_t loop_mono_us(void); /* monotonic us, unskewed */
double loop_uptime(void);
struct timer_wheel *loop_wheel(void);
void loop_wheel_kick(void);  /* re-arm after adding an early timer */
void loop_advance(uint64_t); /* debug: move the clock, fire the wheel */

/*
 * Input pause: while the count is above 0, the sources of new work of
 * our own (the FUSE channel) are not read.  The listener is told when
 * the count leaves 0 (true) and comes back to it (false).
 */
void loop_pause_input(void);
void loop_resume_input(void);
void loop_input_listener(void (*)(bool paused));

#endif
