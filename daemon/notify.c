/*
 * notify.c - the FUSE notifier: invalidations written to the kernel by
 * their own thread.
 *
 * The kernel may hold a page or inode lock of the inode while a request
 * on it waits for our answer; written from the loop, an invalidation
 * would wait for that lock while the loop is the one that must answer: a
 * deadlock.  From the notifier thread it just waits its turn.  The loop
 * queues into a ring; the thread is the only reader.
 *
 * It also keeps the record of the negative entries the kernel holds
 * (lookups answered "no such name" with an entry timeout), so that a
 * name appearing by any way but our own create (a trap, a peer joining,
 * a listing refreshed) can make the kernel forget that it is absent.
 * The record is the loop's alone.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <fuse_lowlevel.h>

#include "fs.h"

/* One invalidation to write. */
struct notify_rec {
	uint64_t ino; /* the inode, or the parent of name */
	int64_t off;  /* -1: attributes only; else data from off */
	int64_t len;  /* bytes of data; 0: to the end */
	char *name;   /* an entry of ino to forget; owned */
};

/* The notifier's queue: a ring of cap slots, n queued from head. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct notify_rec *q;
	size_t head, n, cap;
	bool stop;                /* set on the loop; no more are queued */
	bool exited;              /* the thread wrote its last one */
	uint64_t queued, written; /* counts, for notify_wait */
	pthread_cond_t wcond;     /* written grew */
	pthread_t thread;
	bool running;
	struct fuse_session *se;
} nq = { .lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
	.wcond = PTHREAD_COND_INITIALIZER };

/*
 * A negative entry the kernel may hold: name absent from directory dir;
 * or, with no name, a mark that dir changed lately (notify_listing).
 */
struct notify_neg {
	uint64_t dir;   /* FUSE nodeid (never reused) */
	char *name;     /* owned; NULL: a mark */
	uint64_t until; /* loop_mono_us(): the kernel's clock, not ours */
	LIST_ENTRY(notify_neg) entry;
};

/*
 * At most this many are recorded; past it a lookup's "no such name" is
 * not cached by the kernel (NOTIFY_NEG_MAX entries of a few dozen bytes).
 */
#define NOTIFY_NEG_MAX 16384
#define NOTIFY_NEG_BUCKETS 4096 /* by directory and name */

/*
 * How long after a change of a directory its absent names are not
 * cached: a name being replaced from another peer can be missing from
 * an answer for a moment, and the kernel would keep that until the
 * next change.
 */
#define NOTIFY_QUIET_US 1000000

static struct {
	LIST_HEAD(, notify_neg) b[NOTIFY_NEG_BUCKETS];
	size_t n;
} neg;

static void notify_neg_drop(struct notify_neg *, bool inval);
static void notify_mark(struct node *);

/* Notifier thread: write queued invalidations until told to stop. */
static void *
notify_main(void *arg)
{
	struct notify_rec iv;
	int rc;

	(void)arg;
	pthread_mutex_lock(&nq.lock);
	for (;;) {
		while (nq.n == 0 && !nq.stop)
			pthread_cond_wait(&nq.cond, &nq.lock);
		if (nq.n == 0)
			break;
		iv = nq.q[nq.head];
		nq.head = (nq.head + 1) % nq.cap;
		nq.n--;
		pthread_mutex_unlock(&nq.lock);
		if (iv.name != NULL)
			rc = fuse_lowlevel_notify_inval_entry(nq.se, iv.ino,
			    iv.name, strlen(iv.name));
		else
			rc = fuse_lowlevel_notify_inval_inode(nq.se, iv.ino,
			    iv.off, iv.len);
		if (rc != 0 && rc != -ENOENT)
			log_debug("fuse: inval %llu %s: %s",
			    (unsigned long long)iv.ino, iv.name ? iv.name : "",
			    strerror(-rc));
		free(iv.name);
		pthread_mutex_lock(&nq.lock);
		nq.written++;
		pthread_cond_broadcast(&nq.wcond);
	}
	nq.exited = true;
	pthread_cond_broadcast(&nq.wcond);
	pthread_mutex_unlock(&nq.lock);
	return NULL;
}

/* Start the notifier thread for session se. */
void
notify_start(struct fuse_session *se)
{
	nq.se = se;
	if (pthread_create(&nq.thread, NULL, notify_main, NULL) != 0)
		fatalx("fuse: cannot start the notifier thread");
	nq.running = true;
}

/* Hand one invalidation to the notifier thread. */
static void
notify_queue(struct notify_rec iv)
{
	if (nq.se == NULL || !nq.running || nq.stop) {
		free(iv.name);
		return;
	}
	pthread_mutex_lock(&nq.lock);
	if (nq.n == nq.cap) {
		/* Grow, unwrapping the ring into the new array's start. */
		size_t cap = nq.cap ? nq.cap * 2 : 64;
		struct notify_rec *q = xreallocarray(NULL, cap, sizeof *q);

		for (size_t i = 0; i < nq.n; i++)
			q[i] = nq.q[(nq.head + i) % nq.cap];
		free(nq.q);
		nq.q = q;
		nq.cap = cap;
		nq.head = 0;
	}
	nq.q[(nq.head + nq.n++) % nq.cap] = iv;
	nq.queued++;
	pthread_cond_signal(&nq.cond);
	pthread_mutex_unlock(&nq.lock);
}

/* Queue an invalidation of inode ino: off -1 attributes, else data. */
void
notify_inode(uint64_t ino, int64_t off, int64_t len)
{
	notify_queue((struct notify_rec){ ino, off, len, NULL });
}

/* Queue the forgetting of entry name of directory inode parent. */
void
notify_entry(uint64_t parent, const char *name)
{
	notify_queue((struct notify_rec){ parent, -1, 0, xstrdup(name) });
}

/* Queue an invalidation of n (off -1: attributes; 0: data too). */
void
notify_inval(struct node *n, int64_t off)
{
	if (n->nlookup > 0)
		notify_inode(n->id, off, 0);
}

/*
 * Queue an invalidation of directory dir's attributes and of the listing
 * the kernel keeps of it (dir.c's cache_readdir): its pages go, so the
 * next readdir asks us.  The root is known to the kernel without a
 * lookup.
 */
void
notify_listing(struct node *dir)
{
	if (dir->nlookup > 0 || dir->parent == NULL)
		notify_inode(dir->id, 0, 0);
	notify_mark(dir);
}

/*
 * Invalidate n's attributes now, from the loop: attributes only take
 * no inode lock, so this cannot deadlock.
 */
void
notify_attr_now(struct node *n)
{
	fuse_lowlevel_notify_inval_inode(nq.se, n->id, -1, 0);
}

/*
 * Invalidate inode ino's cached data now, from the calling thread: a
 * worker's, never the loop's (it may wait on a page lock that a kernel
 * request waiting for the loop holds).  Returns 0 or a negative errno.
 */
int
notify_data_now(uint64_t ino)
{
	if (nq.se == NULL)
		return -ENOTCONN;
	return fuse_lowlevel_notify_inval_inode(nq.se, ino, 0, 0);
}

/*
 * n is another name of an object that changed: the kernel forgets its
 * attributes now, and its pages, if it has any.
 */
void
notify_other_name(struct node *n)
{
	if (n->nlookup == 0)
		return;
	notify_attr_now(n);
	if (n->data_seen)
		notify_inode(n->id, 0, 0);
}

/* node_foreach_name: invalidate nodes of the same object as arg. */
static void
notify_same(struct node *n, void *arg)
{
	if (node_other_name(n, arg))
		notify_other_name(n);
}

/*
 * The object behind n changed through n (its link count, or its data):
 * every other name of it, a separate inode to the kernel, must re-ask.
 * Their attributes go at once, before the change is answered, so that
 * a stat right after link(2) or unlink(2) returns sees the new count.
 */
void
notify_links(struct node *n)
{
	node_foreach_name(n, notify_same, n);
}

/*
 * The loop: how many invalidations were queued so far, for a worker
 * to wait for with notify_wait() before something is answered that
 * must find them done.
 */
uint64_t
notify_seq(void)
{
	uint64_t seq;

	pthread_mutex_lock(&nq.lock);
	seq = nq.queued;
	pthread_mutex_unlock(&nq.lock);
	return seq;
}

/*
 * A worker (never the loop, for which the notifier may wait): wait
 * until the first seq invalidations queued have been written, or the
 * notifier has stopped.
 */
void
notify_wait(uint64_t seq)
{
	pthread_mutex_lock(&nq.lock);
	while (nq.running && !nq.exited && !nq.stop && nq.written < seq)
		pthread_cond_wait(&nq.wcond, &nq.lock);
	pthread_mutex_unlock(&nq.lock);
}

/* Whether the notifier thread runs (started and not joined). */
bool
notify_running(void)
{
	return nq.running;
}

/* Tell the thread to stop; what is queued is dropped (a dying mount). */
void
notify_stop(void)
{
	pthread_mutex_lock(&nq.lock);
	nq.stop = true;
	for (size_t i = 0; i < nq.n; i++)
		free(nq.q[(nq.head + i) % nq.cap].name);
	nq.written += nq.n; /* dropped: nobody waits for them */
	nq.n = 0;
	pthread_cond_signal(&nq.cond);
	pthread_cond_broadcast(&nq.wcond);
	pthread_mutex_unlock(&nq.lock);
}

/* Whether the notifier thread has written its last invalidation. */
bool
notify_exited(void)
{
	bool done;

	pthread_mutex_lock(&nq.lock);
	done = nq.exited;
	pthread_mutex_unlock(&nq.lock);
	return done;
}

/* Join the exited thread and free its queue. */
void
notify_join(void)
{
	pthread_join(nq.thread, NULL);
	nq.running = false;
	free(nq.q);
	nq.q = NULL;
	for (unsigned i = 0; i < NOTIFY_NEG_BUCKETS; i++)
		while (!LIST_EMPTY(&neg.b[i]))
			notify_neg_drop(LIST_FIRST(&neg.b[i]), false);
}

/* --- negative entries --- */

/*
 * The bucket of name's negative entry in directory dir, or with a NULL
 * name of dir's mark: by name too, so that the thousands of names a
 * directory being filled was asked for do not share one.
 */
static unsigned
notify_neg_bucket(uint64_t dir, const char *name)
{
	uint64_t h = dir * 0x9e3779b97f4a7c15ULL;

	for (const unsigned char *c = (const unsigned char *)name;
	     c != NULL && *c != '\0'; c++)
		h = (h ^ *c) * 0x100000001b3ULL;
	return (unsigned)((h * 0x9e3779b97f4a7c15ULL) >> 54) %
	    NOTIFY_NEG_BUCKETS;
}

/*
 * Whether the kernel holds the name of record ng present now: we made
 * it (or found it) since, and our answer replaced its negative entry.
 * Forgetting that entry would drop the file's inode, and a directory's
 * whole tree, for nothing.
 */
static bool
notify_neg_present(const struct notify_neg *ng)
{
	struct node *dir = node_get(ng->dir), *n;

	n = dir != NULL ? node_child(dir, ng->name) : NULL;
	return n != NULL && n->linked && n->nlookup > 0 && n->placed_ms != 0;
}

/* Drop a record; with inval, the kernel forgets the entry too. */
static void
notify_neg_drop(struct notify_neg *ng, bool inval)
{
	LIST_REMOVE(ng, entry);
	if (inval && ng->name != NULL && ng->until > loop_mono_us() &&
	    !notify_neg_present(ng))
		notify_entry(ng->dir, ng->name);
	free(ng->name);
	free(ng);
	neg.n--;
}

/* Drop the records of bucket b that the kernel has let expire. */
static void
notify_neg_prune(unsigned b, uint64_t now)
{
	struct notify_neg *ng, *next;

	for (ng = LIST_FIRST(&neg.b[b]); ng != NULL; ng = next) {
		next = LIST_NEXT(ng, entry);
		if (ng->until <= now)
			notify_neg_drop(ng, false);
	}
}

/*
 * The kernel is about to be told that name is absent from dir, for
 * timeout seconds: record it.  Returns false when the record is full or
 * dir changed lately (NOTIFY_QUIET_US); the answer must then not be
 * cached.
 */
bool
notify_negative(struct node *dir, const char *name, double timeout)
{
	unsigned b = notify_neg_bucket(dir->id, name);
	unsigned bm = notify_neg_bucket(dir->id, NULL);
	uint64_t now = loop_mono_us();
	/* A second more than the kernel's jiffies may round it up to. */
	uint64_t until = now + (uint64_t)(timeout * 1e6) + 1000000;
	struct notify_neg *ng;

	notify_neg_prune(bm, now);
	LIST_FOREACH(ng, &neg.b[bm], entry)
	{
		if (ng->dir == dir->id && ng->name == NULL)
			return false; /* changed lately */
	}
	notify_neg_prune(b, now);
	LIST_FOREACH(ng, &neg.b[b], entry)
	{
		if (ng->dir == dir->id && ng->name != NULL &&
		    strcmp(ng->name, name) == 0) {
			ng->until = until;
			return true;
		}
	}
	if (neg.n >= NOTIFY_NEG_MAX) {
		for (unsigned i = 0; i < NOTIFY_NEG_BUCKETS; i++)
			notify_neg_prune(i, now);
		if (neg.n >= NOTIFY_NEG_MAX)
			return false;
	}
	ng = xcalloc(1, sizeof *ng);
	ng->dir = dir->id;
	ng->name = xstrdup(name);
	ng->until = until;
	LIST_INSERT_HEAD(&neg.b[b], ng, entry);
	neg.n++;
	return true;
}

/* Name appeared in dir: forget it as absent, if the kernel holds that. */
void
notify_appeared_name(struct node *dir, const char *name)
{
	unsigned b = notify_neg_bucket(dir->id, name);
	struct notify_neg *ng;

	LIST_FOREACH(ng, &neg.b[b], entry)
	{
		if (ng->dir == dir->id && ng->name != NULL &&
		    strcmp(ng->name, name) == 0) {
			notify_neg_drop(ng, true);
			return;
		}
	}
}

/* dir changed: cache none of its absent names for a while. */
static void
notify_mark(struct node *dir)
{
	unsigned b = notify_neg_bucket(dir->id, NULL);
	uint64_t now = loop_mono_us();
	struct notify_neg *ng;

	notify_neg_prune(b, now);
	LIST_FOREACH(ng, &neg.b[b], entry)
	{
		if (ng->dir == dir->id && ng->name == NULL) {
			ng->until = now + NOTIFY_QUIET_US;
			return;
		}
	}
	/* Marks are not held to NOTIFY_NEG_MAX: one a directory, brief. */
	ng = xcalloc(1, sizeof *ng);
	ng->dir = dir->id;
	ng->until = now + NOTIFY_QUIET_US;
	LIST_INSERT_HEAD(&neg.b[b], ng, entry);
	neg.n++;
}

/*
 * Any name may have appeared in dir: forget those it holds as absent
 * (every bucket, since they go by name).
 */
void
notify_appeared_dir(struct node *dir)
{
	struct notify_neg *ng, *next;

	for (unsigned i = 0; i < NOTIFY_NEG_BUCKETS; i++)
		for (ng = LIST_FIRST(&neg.b[i]); ng != NULL; ng = next) {
			next = LIST_NEXT(ng, entry);
			if (ng->dir == dir->id && ng->name != NULL)
				notify_neg_drop(ng, true);
		}
}

/* Names may have appeared anywhere (a peer came or went): forget all. */
void
notify_appeared_all(void)
{
	for (unsigned i = 0; i < NOTIFY_NEG_BUCKETS; i++)
		while (!LIST_EMPTY(&neg.b[i]))
			notify_neg_drop(LIST_FIRST(&neg.b[i]), true);
}
