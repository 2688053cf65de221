/*
 * watch.c - inotify on our exports: changes made directly on disk, by
 * local programs, become change notices like those made through pufs.
 *
 * A directory is watched once another peer (or our own mount) has
 * listed it or looked at it: that is exactly what others can hold in
 * their caches, since every path walk stats each directory on the way.
 * Events on a directory's entries (create, delete, move, attributes,
 * writes) go to the serving side's change sink (export.h), where the
 * daemon makes them trap records like those of changes made through
 * pufs.
 *
 * Watches are added from the disk workers (export.c), so the table is
 * locked; events are read on the loop.  If the kernel's event queue
 * overflows we cannot know what changed: the sink is told changes were
 * lost (the next TRAP number is skipped, so every receiver
 * resynchronises with us).
 *
 * Limits: a watch remembers the path its directory had when it was
 * added; a directory renamed on disk drops its own watch (IN_MOVE_SELF)
 * and is watched again under its new name when next listed, but its
 * subdirectories' watches keep their old paths until they are dropped.
 * Without inotify (some file systems, or out of watches) changes on disk
 * are seen after attr_timeout.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <event2/event.h>

#include "datagram.h"
#include "export.h"
#include "journal.h"
#include "log.h"
#include "loop.h"
#include "watch.h"

#define WATCH_MASK \
	(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB | \
	    IN_CLOSE_WRITE | IN_MODIFY | IN_MOVE_SELF | IN_DELETE_SELF | \
	    IN_ONLYDIR | IN_EXCL_UNLINK)

struct watch {
	int wd;
	uint32_t export_id;
	uint64_t since; /* journal number when the watch began */
	char *path;     /* relative to the export root; owned */
	struct watch *next;
};

static struct {
	pthread_mutex_t lock;
	int fd;
	struct event *ev;
	struct watch **tab; /* by wd % nbuckets */
	size_t nbuckets;
	bool warned;
	/* The change sink, of the serving side's context. */
	void (*change)(uint8_t kind, uint32_t export_id, const char *path);
	void (*lost)(void);
} wt = { .lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1 };

/* The watch of wd, or NULL; the caller holds the lock. */
static struct watch *
watch_find(int wd)
{
	struct watch *w;

	for (w = wt.tab[(size_t)wd % wt.nbuckets]; w != NULL; w = w->next)
		if (w->wd == wd)
			return w;
	return NULL;
}

/* Forget wd; the caller holds the lock. */
static void
watch_forget(int wd)
{
	struct watch **pp = &wt.tab[(size_t)wd % wt.nbuckets], *w;

	for (; (w = *pp) != NULL; pp = &w->next) {
		if (w->wd == wd) {
			*pp = w->next;
			free(w->path);
			free(w);
			return;
		}
	}
}

/*
 * Watch the directory open as dirfd, which is path in export export_id.
 * Any thread.  Failing to watch only costs freshness: it is logged once.
 */
void
watch_add(uint32_t export_id, const char *path, int dirfd)
{
	char proc[64];
	struct watch *w;
	int wd;

	if (wt.fd == -1)
		return;
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", dirfd);
	wd = inotify_add_watch(wt.fd, proc, WATCH_MASK);
	pthread_mutex_lock(&wt.lock);
	if (wd == -1) {
		if (!wt.warned)
			log_warn("inotify: cannot watch %s; changes made on "
				 "disk there are seen after attr_timeout",
			    path);
		wt.warned = true;
	} else if ((w = watch_find(wd)) != NULL) {
		if (strcmp(w->path, path) != 0) { /* moved meanwhile */
			free(w->path);
			w->path = xstrdup(path);
			w->since = journal_seq();
		}
	} else {
		w = xcalloc(1, sizeof *w);
		w->wd = wd;
		w->since = journal_seq();
		w->export_id = export_id;
		w->path = xstrdup(path);
		w->next = wt.tab[(size_t)wd % wt.nbuckets];
		wt.tab[(size_t)wd % wt.nbuckets] = w;
	}
	pthread_mutex_unlock(&wt.lock);
}

/*
 * The journal number since which directory path of export_id has been
 * watched without a break, or UINT64_MAX if it is not watched.  Any
 * thread.
 */
uint64_t
watch_since(uint32_t export_id, const char *path)
{
	uint64_t since = UINT64_MAX;
	struct watch *w;

	pthread_mutex_lock(&wt.lock);
	for (size_t i = 0; wt.tab != NULL && i < wt.nbuckets; i++)
		for (w = wt.tab[i]; w != NULL; w = w->next)
			if (w->export_id == export_id &&
			    strcmp(w->path, path) == 0)
				since = w->since;
	pthread_mutex_unlock(&wt.lock);
	return since;
}

/* One event: the change record it means. */
static void
watch_event(const struct inotify_event *ev)
{
	struct watch *w;
	uint32_t export_id;
	char *path;
	uint8_t kind;

	if (ev->mask & IN_Q_OVERFLOW) {
		log_warnx("inotify: events lost; peers will resynchronise");
		wt.lost();
		return;
	}
	pthread_mutex_lock(&wt.lock);
	if ((w = watch_find(ev->wd)) == NULL) {
		pthread_mutex_unlock(&wt.lock);
		return;
	}
	if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) {
		if (ev->mask & IN_MOVE_SELF)
			inotify_rm_watch(wt.fd, ev->wd);
		watch_forget(ev->wd);
		pthread_mutex_unlock(&wt.lock);
		return;
	}
	export_id = w->export_id;
	if (ev->len > 0)
		path = xpathjoin(w->path, ev->name);
	else
		path = xstrdup(w->path);
	pthread_mutex_unlock(&wt.lock);

	if (ev->mask & (IN_CREATE | IN_MOVED_TO))
		kind = DGRAM_CREATE;
	else if (ev->mask & (IN_DELETE | IN_MOVED_FROM))
		kind = DGRAM_REMOVE;
	else if (ev->mask & (IN_MODIFY | IN_CLOSE_WRITE))
		kind = DGRAM_DATA;
	else
		kind = DGRAM_ATTR;
	wt.change(kind, export_id, path);
	free(path);
}

/* The inotify fd is readable. */
static void
watch_read_cb(evutil_socket_t fd, short what, void *arg)
{
	char buf[16384]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	ssize_t n;

	(void)what;
	(void)arg;
	for (int i = 0; i < 16; i++) {
		n = read(fd, buf, sizeof buf);
		if (n <= 0) {
			if (n == -1 && errno != EAGAIN && errno != EINTR)
				log_warn("inotify: read");
			return;
		}
		for (char *p = buf; p < buf + n; p += sizeof *ev + ev->len) {
			ev = (const struct inotify_event *)p;
			watch_event(ev);
		}
	}
}

/* Start watching; changes seen go to ctx's sink. */
void
watch_init(const struct export_ctx *ctx)
{
	wt.change = ctx->disk_change;
	wt.lost = ctx->disk_lost;
	wt.nbuckets = 1024;
	wt.tab = xcalloc(wt.nbuckets, sizeof *wt.tab);
	wt.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (wt.fd == -1) {
		log_warn("inotify: unavailable; changes made on disk are "
			 "seen after attr_timeout");
		return;
	}
	wt.ev = event_new(loop_base, wt.fd, EV_READ | EV_PERSIST, watch_read_cb,
	    NULL);
	if (wt.ev == NULL || event_add(wt.ev, NULL) == -1)
		fatalx("inotify: cannot watch the fd");
}

/* Stop watching; free the table. */
void
watch_free(void)
{
	if (wt.ev != NULL)
		event_free(wt.ev);
	wt.ev = NULL;
	if (wt.fd != -1)
		close(wt.fd);
	wt.fd = -1;
	for (size_t i = 0; wt.tab != NULL && i < wt.nbuckets; i++) {
		while (wt.tab[i] != NULL) {
			struct watch *w = wt.tab[i];

			wt.tab[i] = w->next;
			free(w->path);
			free(w);
		}
	}
	free(wt.tab);
	wt.tab = NULL;
}
