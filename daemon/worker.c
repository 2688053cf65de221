/*
 * worker.c - the disk worker pool.
 *
 * Blocking syscalls on an export (openat2, pread, fsync, getdents on a
 * slow or remote file system) must not stall the event loop, which also
 * serves the FUSE channel and every peer stream.  Each such call is a
 * struct work: a worker thread runs work->run(), then the work is queued
 * for the loop thread, woken through an eventfd, which calls work->done().
 * The threads touch nothing but the work item and the kernel; all daemon
 * state stays single-threaded on the loop.
 *
 * A request of another user runs with that user's credentials
 * (worker_become()): on Linux credentials belong to each thread, but the
 * C library's setgroups(3) and setfsuid(3) family would change every
 * thread of the process, so the raw system calls are used, which change
 * only the calling one.
 *
 * Limits: the queue is unbounded here; callers bound it (the FUSE
 * channel's max_background and each peer's in-flight cap).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <linux/capability.h>

#include <event2/event.h>

#include "log.h"
#include "worker.h"

TAILQ_HEAD(work_queue, work);

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct work_queue todo;     /* submitted, not started */
	struct work_queue finished; /* run, waiting for done() */
	int efd;                    /* wakes the loop */
	struct event *ev;
	pthread_t *threads;
	uint64_t *running; /* per thread: the key of what it runs, or 0 */
	int nthreads;
	int stopping;
	struct worker_stats stats;
} pool;

/* 32-bit ids: the calls of that name are 16-bit on some machines. */
#ifdef SYS_setfsuid32
#define WORKER_SYS_SETFSUID SYS_setfsuid32
#define WORKER_SYS_SETFSGID SYS_setfsgid32
#define WORKER_SYS_SETGROUPS SYS_setgroups32
#else
#define WORKER_SYS_SETFSUID SYS_setfsuid
#define WORKER_SYS_SETFSGID SYS_setfsgid
#define WORKER_SYS_SETGROUPS SYS_setgroups
#endif

/* The daemon's own credentials, which every thread starts with. */
static struct {
	uint32_t uid, gid; /* effective: the fs ids */
	uint32_t *groups;  /* owned */
	int ngroups;
	struct __user_cap_data_struct cap[2]; /* the thread's sets */
	bool cap_ok;                          /* cap holds them */
} worker_self;

/* Note the daemon's credentials (before the threads start). */
static void
worker_note_self(void)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3,
		0 };
	gid_t *g;
	int n;

	worker_self.uid = (uint32_t)geteuid();
	worker_self.gid = (uint32_t)getegid();
	if ((n = getgroups(0, NULL)) > 0) {
		g = xcalloc((size_t)n, sizeof *g);
		n = getgroups(n, g);
		worker_self.groups = xcalloc((size_t)(n > 0 ? n : 1),
		    sizeof *worker_self.groups);
		for (int i = 0; i < n; i++)
			worker_self.groups[i] = (uint32_t)g[i];
		worker_self.ngroups = n > 0 ? n : 0;
		free(g);
	}
	worker_self.cap_ok = syscall(SYS_capget, &hdr, worker_self.cap) == 0;
}

/* Set this thread's groups (raw: the C library's would set them all). */
static int
worker_setgroups(const uint32_t *groups, size_t n)
{
	gid_t g[n > 0 ? n : 1];

	for (size_t i = 0; i < n; i++)
		g[i] = (gid_t)groups[i];
	return syscall(WORKER_SYS_SETGROUPS, n, g) == -1 ? -errno : 0;
}

/* Set this thread's fs uid or gid; whether the kernel took it. */
static bool
worker_setfs(long nr, uint32_t id)
{
	syscall(nr, id);
	/* It returns the old id, never an error: ask what it is now. */
	return (uint32_t)syscall(nr, (uint32_t)-1) == id;
}

/* Set this thread's effective capabilities: none, or the daemon's. */
static int
worker_setcaps(bool none)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3,
		0 };
	struct __user_cap_data_struct cap[2];

	memcpy(cap, worker_self.cap, sizeof cap);
	if (none)
		cap[0].effective = cap[1].effective = 0;
	return syscall(SYS_capset, &hdr, cap) == -1 ? -errno : 0;
}

/* Run this thread as uid, gid and groups; see worker.h. */
int
worker_become(uint32_t uid, uint32_t gid, const uint32_t *groups,
    uint32_t ngroups, bool privileged)
{
	/* Groups and gid while the capabilities to set them are still on. */
	if (worker_setgroups(groups, ngroups) < 0)
		return -EPERM;
	if (!worker_setfs(WORKER_SYS_SETFSGID, gid) ||
	    !worker_setfs(WORKER_SYS_SETFSUID, uid) ||
	    (!privileged &&
		(!worker_self.cap_ok || worker_setcaps(true) < 0))) {
		worker_restore();
		return -EPERM;
	}
	return 0;
}

/*
 * Take the daemon's own credentials back.  A thread that could not would
 * serve the next request as the last caller: a broken invariant.
 */
void
worker_restore(void)
{
	if (worker_self.cap_ok && worker_setcaps(false) < 0)
		fatal("worker: cannot restore the capabilities");
	if (!worker_setfs(WORKER_SYS_SETFSUID, worker_self.uid) ||
	    !worker_setfs(WORKER_SYS_SETFSGID, worker_self.gid))
		fatalx("worker: cannot restore the fs uid and gid");
	if (worker_setgroups(worker_self.groups, (size_t)worker_self.ngroups) <
	    0)
		fatalx("worker: cannot restore the groups");
}

/* Monotonic microseconds, for queueing-delay figures. */
static uint64_t
worker_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/*
 * The first queued item that may run now: of no key, or of one no
 * thread runs (the lock held).  An item left behind is taken by the
 * thread that runs its key, once that finishes.
 */
static struct work *
worker_take(void)
{
	struct work *w;
	int i;

	TAILQ_FOREACH(w, &pool.todo, entry)
	{
		for (i = 0; w->key != 0 && i < pool.nthreads; i++)
			if (pool.running[i] == w->key)
				break;
		if (w->key == 0 || i == pool.nthreads)
			return w;
	}
	return NULL;
}

/* Thread body: take work, run it, hand it back, until told to stop. */
static void *
worker_main(void *arg)
{
	int self = (int)(intptr_t)arg;
	struct work *w;
	uint64_t one = 1, wait;

	for (;;) {
		pthread_mutex_lock(&pool.lock);
		while ((w = worker_take()) == NULL && !pool.stopping)
			pthread_cond_wait(&pool.cond, &pool.lock);
		if (w == NULL) {
			/* What is left waits for threads that run its keys. */
			pthread_mutex_unlock(&pool.lock);
			return NULL;
		}
		TAILQ_REMOVE(&pool.todo, w, entry);
		pool.running[self] = w->key;
		pool.stats.queued--;
		pool.stats.busy++;
		wait = worker_now_us() - w->t_submit;
		if (wait > pool.stats.max_wait_us)
			pool.stats.max_wait_us = wait;
		pthread_mutex_unlock(&pool.lock);

		w->run(w);

		pthread_mutex_lock(&pool.lock);
		pool.running[self] = 0;
		pool.stats.busy--;
		TAILQ_INSERT_TAIL(&pool.finished, w, entry);
		pthread_mutex_unlock(&pool.lock);
		if (write(pool.efd, &one, sizeof one) < 0 && errno != EAGAIN)
			log_warn("worker: eventfd write");
	}
}

/* Loop callback: call done() of everything the threads finished. */
static void
worker_drain(evutil_socket_t fd, short what, void *arg)
{
	struct work_queue batch = TAILQ_HEAD_INITIALIZER(batch);
	struct work *w;
	uint64_t n;

	(void)what;
	(void)arg;
	if (read(fd, &n, sizeof n) < 0 && errno != EAGAIN)
		log_warn("worker: eventfd read");
	pthread_mutex_lock(&pool.lock);
	TAILQ_CONCAT(&batch, &pool.finished, entry);
	pthread_mutex_unlock(&pool.lock);
	while ((w = TAILQ_FIRST(&batch)) != NULL) {
		TAILQ_REMOVE(&batch, w, entry);
		pool.stats.completed++;
		w->done(w);
	}
}

/* Start nthreads workers whose completions arrive on base. */
void
worker_init(struct event_base *base, int nthreads)
{
	int i, rc;

	worker_note_self();
	pthread_mutex_init(&pool.lock, NULL);
	pthread_cond_init(&pool.cond, NULL);
	TAILQ_INIT(&pool.todo);
	TAILQ_INIT(&pool.finished);
	pool.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (pool.efd == -1)
		fatal("eventfd");
	pool.ev = event_new(base, pool.efd, EV_READ | EV_PERSIST, worker_drain,
	    NULL);
	if (pool.ev == NULL || event_add(pool.ev, NULL) == -1)
		fatalx("worker: cannot add eventfd event");
	pool.threads = xcalloc((size_t)nthreads, sizeof *pool.threads);
	pool.running = xcalloc((size_t)nthreads, sizeof *pool.running);
	pool.nthreads = nthreads;
	pool.stats.threads = (unsigned)nthreads;
	for (i = 0; i < nthreads; i++) {
		rc = pthread_create(&pool.threads[i], NULL, worker_main,
		    (void *)(intptr_t)i);
		if (rc != 0) {
			errno = rc;
			fatal("pthread_create");
		}
	}
}

/* Queue w; its done() runs later on the loop thread. */
void
worker_submit(struct work *w)
{
	w->t_submit = worker_now_us();
	pthread_mutex_lock(&pool.lock);
	TAILQ_INSERT_TAIL(&pool.todo, w, entry);
	pool.stats.submitted++;
	pool.stats.queued++;
	pthread_cond_signal(&pool.cond);
	pthread_mutex_unlock(&pool.lock);
}

/*
 * Stop the threads after the queued work has run, then deliver the
 * remaining completions so nothing is left half done.
 */
void
worker_shutdown(void)
{
	int i;

	if (pool.threads == NULL)
		return;
	pthread_mutex_lock(&pool.lock);
	pool.stopping = 1;
	pthread_cond_broadcast(&pool.cond);
	pthread_mutex_unlock(&pool.lock);
	for (i = 0; i < pool.nthreads; i++)
		pthread_join(pool.threads[i], NULL);
	worker_drain(pool.efd, EV_READ, NULL);
	event_free(pool.ev);
	close(pool.efd);
	free(pool.threads);
	free(pool.running);
	pool.threads = NULL;
	pool.running = NULL;
}

/* Copy the pool's figures. */
void
worker_stats(struct worker_stats *st)
{
	pthread_mutex_lock(&pool.lock);
	*st = pool.stats;
	pthread_mutex_unlock(&pool.lock);
}
