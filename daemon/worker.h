/*
 * worker.h - a pool of threads that run blocking disk syscalls off the
 * event loop and hand completions back to it.
 */
#ifndef PUFS_WORKER_H
#define PUFS_WORKER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

struct event_base;

/*
 * A work item.  Items of the same nonzero key run one at a time, in the
 * order submitted (writes through one handle: the kernel serialises a
 * file's buffered writes anyway, and threads that wait for its lock
 * spin on another CPU meanwhile); items of key 0 run as they come.
 */
struct work {
	void (*run)(struct work *);  /* in a worker thread */
	void (*done)(struct work *); /* back on the loop thread */
	uint64_t key;                /* serialises; 0: none */
	TAILQ_ENTRY(work) entry;     /* queue link; owned by the pool */
	unsigned long long t_submit; /* us; set by worker_submit() */
};

void worker_init(struct event_base *, int nthreads);

/*
 * The calling thread's credentials, for one request of another user:
 * worker_become() takes uid and gid as the thread's file system uid and
 * gid, groups as its supplementary groups, and, unless privileged,
 * drops every capability the thread has; the kernel then checks what
 * the thread does as it would for that user.  Only this thread changes.
 * 0, or -EPERM when the kernel refused (the daemon is not root), the
 * thread unchanged.  worker_restore() takes the daemon's own back.
 */
int worker_become(uint32_t uid, uint32_t gid, const uint32_t *groups,
    uint32_t ngroups, bool privileged);
void worker_restore(void);
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
