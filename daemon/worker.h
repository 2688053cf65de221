/*
 * worker.h - a pool of threads that run blocking disk syscalls off the
 * event loop and hand completions back to it.
 */
#ifndef PUFS_WORKER_H
#define PUFS_WORKER_H

#include <sys/queue.h>

struct event_base;

struct work {
	void (*run)(struct work *);  /* in a worker thread */
	void (*done)(struct work *); /* back on the loop thread */
	TAILQ_ENTRY(work) entry;     /* queue link; owned by the pool */
	unsigned long long t_submit; /* us; set by worker_submit() */
};

void worker_init(struct event_base *, int nthreads);
void worker_submit(struct work *);
void worker_shutdown(void);

/* Figures for pufs status. */
struct worker_stats {
	unsigned long submitted, completed;
	unsigned queued, busy, threads;
	unsigned long max_wait_us; /* longest queueing delay seen */
};
void worker_stats(struct worker_stats *);

#endif
