/*
 * locktab.c - the locks held on this peer's files for the union: every
 * GETLK, SETLK and LKCANCEL, from our own mount (owner 0) or a peer's
 * stream, is served here.
 *
 * A lock owner is (owner: the stream, or 0; lowner: the requester's
 * opaque lock owner).  For each owner and file (and kind: POSIX or
 * flock) the holder keeps one open file description of the file, an
 * entry, on which it takes open file description locks (F_OFD_SETLK),
 * or flock(2) locks for PROTO_LK_FLOCK: owners then conflict with each
 * other exactly as processes of one machine do, whichever peers they
 * are on, and with programs that lock the files here directly.  Byte
 * ranges, read and write locks, upgrades and splits are the kernel's.
 *
 * No lock call ever blocks, on the loop or on a worker: a SETLK that
 * must wait (PROTO_LK_WAIT) is parked and tried again whenever a lock
 * goes by any way pufs sees (an unlock, a handle released, a stream
 * gone: every entry of a handle closes with it), and every
 * LOCKTAB_RETRY_MS besides, for programs that lock on this machine
 * outside pufs.  LKCANCEL answers a parked SETLK with EINTR; once that
 * answer is decided the waiter is never tried again, so it is never
 * granted behind its requester's back.
 *
 * Changes: a lock is how programs on different peers agree on a file's
 * contents, so a requester drops what it caches of a file when a lock
 * of it is granted, unless nobody but itself changed the file since
 * its last grant.  For that every file locked here has a record
 * (lk_file) with a change number, gen, taken from one clock that only
 * goes up (lk.clock, from the real time at start, so numbers of an
 * earlier run of this daemon are all below it), bumped by every write,
 * fallocate, copy into or truncation served here (locktab_note), and
 * the number since which one owner alone made the changes.  A SETLK's
 * answer carries gen and, for its own owner, since
 * (PROTO_CAP_LOCK_GEN): a requester whose last grant saw a number at
 * least since has missed nobody's change.  Records outlive the locks,
 * for the next program that opens and locks the file (SQLite does at
 * every start).  A change made on disk by a
 * program outside pufs is seen at the next grant: the file's size,
 * mtime and ctime, taken after every change counted, differ (as exact
 * as the file system's timestamps); so is a truncation by path, which
 * counts for every file.  Beyond LOCKTAB_FILES_MAX records the least
 * recently locked goes; a record made anew has nobody's changes in it
 * (since = gen), so every requester drops its cache once.
 *
 * Leases: when one peer alone locks a file (POSIX and OFD locks; flock
 * locks are never lent), its SETLK may carry PROTO_LK_BORROW, and the
 * holder then lends it the file's locks: it takes, on a descriptor of
 * its own (the lease's umbrella), a write lock of the whole file, so
 * that programs on this disk and every other requester keep out, and
 * answers PROTO_FLAG_LENT: the borrower decides that request and every
 * later one about the file itself, with no round trip.  A file is lent
 * only when nobody holds a lock of it (the umbrella can be taken), no
 * request waits for one, it is on a local file system (its attempts
 * run on the loop), the handle is open for reading and writing, and
 * nobody else has asked for a lock of it for LOCKTAB_QUIET_MS (so two
 * peers that take turns do not pass the lease to and fro).  The
 * borrower sends LEASE, which is answered when the lease is wanted
 * back: when another owner (a stream, or our mount) asks for a lock of
 * the file, when anybody else changes it through pufs, and, seen every
 * LOCKTAB_RETRY_MS, when a program on this disk waits for a lock of it
 * (/proc/locks) or changes it.  Meanwhile every request about the file
 * is parked, the borrower's own included, but the locks it gives back:
 * it first sends what it wrote, then each lock it holds as a SETLK with
 * PROTO_LK_RETURN (taken on the owner's entry once the umbrella is off
 * that range), then LKRETURN; then the umbrella goes, and the parked
 * requests are decided as if there had been no lease.  A borrower's
 * stream that dies takes its lease with it, as its locks.
 *
 * Threads: an attempt (the handle's fstat, the reopen of the file for
 * a new entry, the F_OFD_SETLK or flock(LOCK_NB)) never waits on a
 * local file system, so for an export on one it runs on the loop and
 * is answered from the next loop turn; on any other (NFS, FUSE, ...,
 * where a lock is itself a request to a server) it runs on a disk
 * worker.  The entries are under lk.mutex, taken by the attempts and by
 * handle.c's release hook, on whatever thread a handle goes.  The
 * requests and the waiters are the loop's alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <linux/magic.h>

#include <event2/event.h>

#include "discovery.h"
#include "export-int.h"
#include "locktab.h"
#include "log.h"
#include "loop.h"
#include "worker.h"

/* Waiters are tried again this often, for locks pufs does not see go. */
#define LOCKTAB_RETRY_MS 200
/* Lock requests one stream may have here at once; beyond, ENOLCK. */
#define LOCKTAB_REQS_MAX 1024
/* Files whose changes are counted (records); the oldest goes beyond. */
#define LOCKTAB_FILES_MAX 1024
/* Buckets of the table of handles whose file is known. */
#define LOCKTAB_FH_BUCKETS 256
/* A file is lent only once nobody else asked for a lock this long. */
#define LOCKTAB_QUIET_MS 1000
/* An attempt's answer: the file is lent (to another): park it. */
#define LOCKTAB_LENT (-EINPROGRESS)

/* A file locked here: its change numbers (see "Changes" above). */
struct lk_file {
	dev_t dev;
	ino_t ino;
	uint64_t gen;   /* lk.clock at its last change counted */
	uint64_t since; /* gen before run_owner's run of changes began */
	uint32_t run_owner;
	bool run;                   /* run_owner made every change since */
	struct timespec mtim, ctim; /* after the last change counted */
	off_t size;
	uint32_t last_owner; /* of the last lock request */
	uint64_t mixed_ms;   /* when another owner than the one before asked */
	TAILQ_ENTRY(lk_file) entry; /* lk.files, the newest last */
};

TAILQ_HEAD(lk_file_list, lk_file);

/* What file a handle of an owner is: a record, or none (f NULL). */
struct lk_fh {
	uint32_t owner;
	uint64_t fh;
	struct lk_file *f;
	LIST_ENTRY(lk_fh) entry;
};

LIST_HEAD(lk_fh_list, lk_fh);

/* One open file description of one file, for one owner's locks. */
struct lk_ent {
	uint32_t owner;  /* stream, or 0 */
	uint64_t lowner; /* the requester's lock owner */
	bool flock;      /* flock(2) locks, not POSIX ones */
	dev_t dev;       /* the file */
	ino_t ino;
	uint64_t fh; /* the handle it was opened through; goes with it */
	int fd;      /* owned */
	bool locked; /* may hold a lock (else open for the next one) */
	TAILQ_ENTRY(lk_ent) entry;
};

TAILQ_HEAD(lk_ent_list, lk_ent);

struct lk_req;

/* A file's POSIX locks lent to one stream (see "Leases" above). */
struct lk_lease {
	dev_t dev;
	ino_t ino;
	uint32_t owner;       /* the borrower's stream */
	int fd;               /* the umbrella; -1 once its stream went */
	struct lk_req *watch; /* the borrower's LEASE, answered at recall */
	uint64_t watch_id;    /* its id, which LKRETURN names */
	bool want;            /* somebody else wants it: recall it */
	bool recalling;       /* the LEASE was answered */
	TAILQ_ENTRY(lk_lease) entry;
};

TAILQ_HEAD(lk_lease_list, lk_lease);

/* One lock request, from its arrival to its answer. */
struct lk_req {
	struct work work;
	uint32_t owner;
	struct proto_req q; /* scalars only: nothing points anywhere */
	struct proto_rep *rep;
	void (*done)(void *);
	void *arg;
	int rc;         /* of the last attempt (run) */
	uint64_t gen;   /* lk.gen when that attempt was made */
	bool parked;    /* in lk.waiters */
	bool running;   /* on a worker */
	bool cancelled; /* LKCANCEL came: answer EINTR, try no more */
	bool noop;      /* answer rc as it is, touch nothing (run) */
	bool inline_;   /* attempts run on the loop (a local file system) */
	dev_t dev;      /* its file, once an attempt has seen it */
	ino_t ino;
	TAILQ_ENTRY(lk_req) entry;  /* lk.reqs */
	TAILQ_ENTRY(lk_req) wentry; /* lk.waiters */
};

TAILQ_HEAD(lk_req_list, lk_req);

static struct {
	/* Under mutex (any thread). */
	pthread_mutex_t mutex;
	struct lk_ent_list ents;
	unsigned nents;
	uint64_t gen; /* bumped when any lock may have gone */
	struct lk_file_list files;
	unsigned nfiles;
	struct lk_fh_list fhs[LOCKTAB_FH_BUCKETS];
	uint64_t clock; /* the last change number given */
	struct lk_lease_list leases;
	struct locktab_stats st;
	/* The loop's. */
	uint64_t seen; /* lk.gen when the waiters were last tried */
	/* The loop's. */
	struct lk_req_list reqs;    /* every request not yet answered */
	struct lk_req_list waiters; /* parked, to be tried again */
	unsigned nwaiters;
	bool *local; /* by export id: a local file system, attempts inline */
	int efd;     /* the release hook wakes the loop */
	struct event *wake_ev;
	struct event *retry_ev;
	bool ready;
} lk = {
	.mutex = PTHREAD_MUTEX_INITIALIZER,
	.ents = TAILQ_HEAD_INITIALIZER(lk.ents),
	.files = TAILQ_HEAD_INITIALIZER(lk.files),
	.leases = TAILQ_HEAD_INITIALIZER(lk.leases),
	.reqs = TAILQ_HEAD_INITIALIZER(lk.reqs),
	.waiters = TAILQ_HEAD_INITIALIZER(lk.waiters),
	.efd = -1,
};

static void locktab_wake(void);

/* Whether type is one of ours. */
bool
locktab_type(uint8_t type)
{
	return type == PROTO_GETLK || type == PROTO_SETLK ||
	    type == PROTO_LKCANCEL || type == PROTO_LEASE ||
	    type == PROTO_LKRETURN;
}

/* The counters of the lock requests served here (`pufs status`). */
void
locktab_stats(struct locktab_stats *st)
{
	pthread_mutex_lock(&lk.mutex);
	*st = lk.st;
	pthread_mutex_unlock(&lk.mutex);
}

/* The live lease of file (dev, ino), or NULL; mutex held. */
static struct lk_lease *
locktab_lease_find(dev_t dev, ino_t ino)
{
	struct lk_lease *l;

	TAILQ_FOREACH(l, &lk.leases, entry)
	if (l->dev == dev && l->ino == ino && l->fd >= 0)
		return l;
	return NULL;
}

/* A monotonic clock in ms, for any thread. */
static uint64_t
locktab_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The bucket of (owner, fh). */
static struct lk_fh_list *
locktab_fh_bucket(uint32_t owner, uint64_t fh)
{
	return &lk.fhs[(fh * 31 + owner) % LOCKTAB_FH_BUCKETS];
}

/* What is known of handle fh of owner, or NULL; mutex held. */
static struct lk_fh *
locktab_fh_find(uint32_t owner, uint64_t fh)
{
	struct lk_fh *m;

	LIST_FOREACH(m, locktab_fh_bucket(owner, fh), entry)
	if (m->owner == owner && m->fh == fh)
		return m;
	return NULL;
}

/* Note that handle fh of owner is of file f (NULL: of no record's). */
static void
locktab_fh_set(uint32_t owner, uint64_t fh, struct lk_file *f)
{
	struct lk_fh *m;

	if ((m = locktab_fh_find(owner, fh)) == NULL) {
		m = xcalloc(1, sizeof *m);
		m->owner = owner;
		m->fh = fh;
		LIST_INSERT_HEAD(locktab_fh_bucket(owner, fh), m, entry);
	}
	m->f = f;
}

/*
 * Forget the handles known to be of file f (NULL: of no record's, all
 * of which may now be of a new one); mutex held.
 */
static void
locktab_fh_forget(const struct lk_file *f)
{
	struct lk_fh *m, *next;

	for (size_t b = 0; b < LOCKTAB_FH_BUCKETS; b++)
		for (m = LIST_FIRST(&lk.fhs[b]); m != NULL; m = next) {
			next = LIST_NEXT(m, entry);
			if (m->f == f) {
				LIST_REMOVE(m, entry);
				free(m);
			}
		}
}

/* The record of file (dev, ino), or NULL; mutex held. */
static struct lk_file *
locktab_file_find(dev_t dev, ino_t ino)
{
	struct lk_file *f;

	TAILQ_FOREACH(f, &lk.files, entry)
	if (f->dev == dev && f->ino == ino)
		return f;
	return NULL;
}

/* Keep the size and times of the file after a change; mutex held. */
static void
locktab_file_stat(struct lk_file *f, const struct stat *st)
{
	f->mtim = st->st_mtim;
	f->ctim = st->st_ctim;
	f->size = st->st_size;
}

/* Whether the file st describes changed since f's last change counted. */
static bool
locktab_file_moved(const struct lk_file *f, const struct stat *st)
{
	return f->size != st->st_size || f->mtim.tv_sec != st->st_mtim.tv_sec ||
	    f->mtim.tv_nsec != st->st_mtim.tv_nsec ||
	    f->ctim.tv_sec != st->st_ctim.tv_sec ||
	    f->ctim.tv_nsec != st->st_ctim.tv_nsec;
}

/* Drop record f, and what points to it; mutex held. */
static void
locktab_file_free(struct lk_file *f)
{
	locktab_fh_forget(f);
	TAILQ_REMOVE(&lk.files, f, entry);
	lk.nfiles--;
	free(f);
}

/* A change of f by owner (UINT32_MAX: by whom is not known). */
static void
locktab_file_changed(struct lk_file *f, uint32_t owner)
{
	if (!f->run || f->run_owner != owner) {
		f->since = f->gen;
		f->run_owner = owner;
		f->run = owner != UINT32_MAX;
	}
	f->gen = ++lk.clock;
	if (!f->run)
		f->since = f->gen;
}

/*
 * The record of the file st describes, made if there is none (nobody's
 * changes in it), and seen now; a change the record has not counted
 * (on disk, outside pufs) is counted.  Mutex held.
 */
static struct lk_file *
locktab_file_get(const struct stat *st)
{
	struct lk_file *f;

	if ((f = locktab_file_find(st->st_dev, st->st_ino)) != NULL) {
		TAILQ_REMOVE(&lk.files, f, entry);
		TAILQ_INSERT_TAIL(&lk.files, f, entry);
		if (locktab_file_moved(f, st)) {
			locktab_file_changed(f, UINT32_MAX);
			locktab_file_stat(f, st);
		}
		return f;
	}
	if (lk.nfiles >= LOCKTAB_FILES_MAX) {
		/* A lent file's changes must be counted: recalled. */
		f = TAILQ_FIRST(&lk.files);
		struct lk_lease *l = locktab_lease_find(f->dev, f->ino);

		if (l != NULL)
			l->want = true;
		locktab_file_free(f);
	}
	f = xcalloc(1, sizeof *f);
	f->dev = st->st_dev;
	f->ino = st->st_ino;
	f->last_owner = UINT32_MAX; /* nobody asked yet */
	f->gen = f->since = ++lk.clock;
	locktab_file_stat(f, st);
	TAILQ_INSERT_TAIL(&lk.files, f, entry);
	lk.nfiles++;
	locktab_fh_forget(NULL);
	return f;
}

/* Close an entry (its locks go) and free it; lk.mutex held. */
static void
locktab_ent_free(struct lk_ent *e)
{
	TAILQ_REMOVE(&lk.ents, e, entry);
	lk.nents--;
	close(e->fd);
	free(e);
	lk.gen++;
}

/*
 * A handle went (any thread): the entries opened through it close, as a
 * process's locks go when it closes the file, and the waiters are tried
 * again.  fh 0: every handle of owner (its stream is gone).
 */
static void
locktab_handle_gone(uint64_t fh, uint32_t owner)
{
	struct lk_ent *e, *next;
	uint64_t one = 1;
	bool any = false;

	struct lk_fh *m, *mnext;
	struct lk_file *f;
	struct lk_lease *l;

	pthread_mutex_lock(&lk.mutex);
	for (e = TAILQ_FIRST(&lk.ents); e != NULL; e = next) {
		next = TAILQ_NEXT(e, entry);
		if (e->owner == owner && (fh == 0 || e->fh == fh)) {
			locktab_ent_free(e);
			any = true;
		}
	}
	for (size_t b = 0; b < LOCKTAB_FH_BUCKETS; b++)
		for (m = LIST_FIRST(&lk.fhs[b]); m != NULL; m = mnext) {
			mnext = LIST_NEXT(m, entry);
			if (m->owner == owner && (fh == 0 || m->fh == fh)) {
				LIST_REMOVE(m, entry);
				free(m);
			}
		}
	/* A stream gone: its number may name another one day. */
	TAILQ_FOREACH(f, &lk.files, entry)
	if (fh == 0 && f->run && f->run_owner == owner)
		locktab_file_changed(f, UINT32_MAX);
	/* Its leases' umbrellas go now; the loop frees the rest. */
	TAILQ_FOREACH(l, &lk.leases, entry)
	if (fh == 0 && l->owner == owner && l->fd >= 0) {
		close(l->fd);
		l->fd = -1;
		lk.gen++;
		any = true;
	}
	pthread_mutex_unlock(&lk.mutex);
	if (any && lk.efd >= 0 && write(lk.efd, &one, sizeof one) == -1)
		log_debug("locks: wake: %s", strerror(errno));
}

/* The entry of (owner, lowner, kind) for file (dev, ino); mutex held. */
static struct lk_ent *
locktab_ent_find(uint32_t owner, uint64_t lowner, bool flock, dev_t dev,
    ino_t ino)
{
	struct lk_ent *e;

	TAILQ_FOREACH(e, &lk.ents, entry)
	if (e->owner == owner && e->lowner == lowner && e->flock == flock &&
	    e->dev == dev && e->ino == ino)
		return e;
	return NULL;
}

/*
 * Whether owner may have one more entry: below its bound, or once one
 * of its entries that holds no lock (kept open for the next lock of
 * its owner) is closed to make room.  Mutex held.
 */
static bool
locktab_room(uint32_t owner)
{
	struct lk_ent *e, *idle = NULL;
	unsigned n = 0;

	if (owner == 0)
		return true;
	TAILQ_FOREACH(e, &lk.ents, entry)
	{
		if (e->owner != owner)
			continue;
		n++;
		if (!e->locked && idle == NULL)
			idle = e;
	}
	if (n < export_context.max_handles)
		return true;
	if (idle == NULL)
		return false;
	locktab_ent_free(idle);
	return true;
}

/* A request's range as a struct flock of type (F_*). */
static void
locktab_flock_of(const struct proto_req *q, short type, struct flock *fl)
{
	memset(fl, 0, sizeof *fl);
	fl->l_type = type;
	fl->l_whence = SEEK_SET;
	fl->l_start = (off_t)q->offset;
	fl->l_len = q->offset2 == (uint64_t)PROTO_LK_EOF
	    ? 0
	    : (off_t)(q->offset2 - q->offset + 1);
}

/* Whether a lock request is well formed; 0 or -EINVAL. */
static int
locktab_check(const struct proto_req *q)
{
	uint32_t type = q->flags & PROTO_LK_TYPE;

	if ((q->flags & ~(uint32_t)PROTO_LK_FLAGS) != 0 ||
	    type > PROTO_LK_UNLCK || q->offset > q->offset2 ||
	    q->offset2 > (uint64_t)PROTO_LK_EOF)
		return -EINVAL;
	if (q->type == PROTO_GETLK &&
	    (type == PROTO_LK_UNLCK || (q->flags & PROTO_LK_FLOCK)))
		return -EINVAL;
	return 0;
}

/* The conflicting lock F_OFD_GETLK found, as the wire says it. */
static void
locktab_conflict(const struct flock *fl, struct proto_lock *l)
{
	memset(l, 0, sizeof *l);
	if (fl->l_type == F_UNLCK) {
		l->type = PROTO_LK_UNLCK;
		return;
	}
	l->type = fl->l_type == F_WRLCK ? PROTO_LK_WRLCK : PROTO_LK_RDLCK;
	l->start = (uint64_t)fl->l_start;
	l->end = fl->l_len == 0 ? (uint64_t)PROTO_LK_EOF
				: (uint64_t)(fl->l_start + fl->l_len - 1);
	/* An OFD lock has no process; another's pid means nothing here. */
	l->pid = 0;
}

/* Take, test or drop the lock q asks for, on entry fd or handle hfd. */
static int
locktab_apply(struct lk_req *r, struct lk_ent *e, int hfd)
{
	const struct proto_req *q = &r->q;
	uint32_t type = q->flags & PROTO_LK_TYPE;
	static const short types[] = { F_RDLCK, F_WRLCK, F_UNLCK };
	struct flock fl;
	int op;

	if (q->type == PROTO_GETLK) {
		locktab_flock_of(q, types[type], &fl);
		if (fcntl(e != NULL ? e->fd : hfd, F_OFD_GETLK, &fl) == -1)
			return -errno;
		locktab_conflict(&fl, &r->rep->lock);
		return 0;
	}
	if (q->flags & PROTO_LK_FLOCK) {
		op = type == PROTO_LK_RDLCK  ? LOCK_SH
		    : type == PROTO_LK_WRLCK ? LOCK_EX
					     : LOCK_UN;
		if (flock(e->fd, op | LOCK_NB) == -1)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
		e->locked = type != PROTO_LK_UNLCK;
		return 0;
	}
	locktab_flock_of(q, types[type], &fl);
	if (fcntl(e->fd, F_OFD_SETLK, &fl) == -1)
		return errno == EACCES ? -EAGAIN : -errno;
	if (type != PROTO_LK_UNLCK)
		e->locked = true;
	else if (q->offset == 0 && q->offset2 == (uint64_t)PROTO_LK_EOF)
		e->locked = false; /* the whole file: nothing is left */
	return 0;
}

/*
 * A granted SETLK's answer: the attributes and change numbers of the
 * file of fd (see "Changes" above).  0 or a negative errno; mutex held.
 */
static int
locktab_grant_rep(struct lk_req *r, int fd)
{
	struct lk_file *f;
	struct stat st;

	if (fstat(fd, &st) == -1)
		return -errno;
	serve_attr(&st, &r->rep->attr);
	f = locktab_file_get(&st);
	if (f->last_owner == UINT32_MAX)
		f->last_owner = r->owner;
	locktab_fh_set(r->owner, r->q.fh, f);
	r->rep->has_lock_gen = true;
	r->rep->lock_gen = f->gen;
	r->rep->lock_since = f->run && f->run_owner == r->owner ? f->since
								: f->gen;
	return 0;
}

/* Whether a parked request waits for a lock of the file st describes. */
static bool
locktab_file_waited(const struct stat *st)
{
	struct lk_req *w;

	TAILQ_FOREACH(w, &lk.waiters, wentry)
	if (w->dev == st->st_dev && w->ino == st->st_ino)
		return true;
	return false;
}

/*
 * Lend the file of handle hfd (st) to r's owner, if it may be (see
 * "Leases" above): true if it was.  Mutex held, on the loop.
 */
static bool
locktab_lend(struct lk_req *r, const struct stat *st, int hfd, int acc)
{
	const struct proto_req *q = &r->q;
	struct lk_file *f = locktab_file_find(st->st_dev, st->st_ino);
	struct lk_lease *l;
	struct flock fl;
	int fd;

	if (q->type != PROTO_SETLK || !(q->flags & PROTO_LK_BORROW) ||
	    (q->flags & PROTO_LK_TYPE) == PROTO_LK_UNLCK ||
	    (q->flags & PROTO_LK_RETURN) || r->owner == 0 || !r->inline_ ||
	    acc != O_RDWR)
		return false;
	if (f != NULL && locktab_now_ms() - f->mixed_ms < LOCKTAB_QUIET_MS)
		return false;
	if (locktab_file_waited(st) || (fd = beneath_reopen(hfd, O_RDWR)) < 0)
		return false;
	memset(&fl, 0, sizeof fl);
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(fd, F_OFD_SETLK, &fl) == -1) {
		close(fd); /* somebody holds a lock of it */
		return false;
	}
	l = xcalloc(1, sizeof *l);
	l->dev = st->st_dev;
	l->ino = st->st_ino;
	l->owner = r->owner;
	l->fd = fd;
	TAILQ_INSERT_TAIL(&lk.leases, l, entry);
	lk.st.lent++;
	return true;
}

/*
 * What a lease makes of POSIX request r about the file st describes
 * (hfd: the request's handle, acc its access mode): LOCKTAB_LENT to
 * park it, 1 if it is answered (lent: the requester decides), 0 to go
 * on as without a lease, or a negative errno.  Mutex held.
 */
static int
locktab_lease_attempt(struct lk_req *r, const struct stat *st, int hfd, int acc)
{
	const struct proto_req *q = &r->q;
	struct lk_file *f = locktab_file_find(st->st_dev, st->st_ino);
	struct lk_lease *l;
	struct flock fl;
	int rc;

	r->dev = st->st_dev;
	r->ino = st->st_ino;
	if (f != NULL) {
		if (f->last_owner != r->owner && f->last_owner != UINT32_MAX)
			f->mixed_ms = locktab_now_ms();
		f->last_owner = r->owner;
	}
	if ((l = locktab_lease_find(st->st_dev, st->st_ino)) == NULL) {
		if (!locktab_lend(r, st, hfd, acc))
			return 0;
	} else if (l->owner != r->owner) {
		l->want = true;
		return LOCKTAB_LENT;
	} else if (q->flags & PROTO_LK_RETURN) {
		/*
		 * Off the umbrella, then onto the owner's entry: a program
		 * on this disk that takes the range in between (two calls
		 * on the loop) makes it fail EAGAIN, which the borrower logs.
		 */
		locktab_flock_of(q, F_UNLCK, &fl);
		return fcntl(l->fd, F_OFD_SETLK, &fl) == -1 ? -errno : 0;
	} else if (l->recalling)
		return LOCKTAB_LENT;
	r->rep->lent = true;
	if (q->type == PROTO_SETLK && (rc = locktab_grant_rep(r, hfd)) < 0)
		return rc;
	return 1;
}

/* Serve one attempt, under lk.mutex; 0 or a negative errno. */
static int
locktab_attempt(struct lk_req *r)
{
	const struct proto_req *q = &r->q;
	uint32_t type = q->flags & PROTO_LK_TYPE;
	bool flock = (q->flags & PROTO_LK_FLOCK) != 0;
	struct lk_ent *e;
	struct stat st;
	int hfd, acc, rc;

	/* POSIX write locks need a handle open for writing, as fcntl(2). */
	hfd = handle_get(q->fh, r->owner, HANDLE_ANY_EXPORT,
	    !flock && type == PROTO_LK_WRLCK && q->type == PROTO_SETLK, NULL);
	if (hfd < 0)
		return hfd == -EROFS ? -EBADF : hfd;
	rc = 0;
	acc = fcntl(hfd, F_GETFL);
	if (acc == -1 || fstat(hfd, &st) == -1) {
		rc = -errno;
		goto out;
	}
	acc &= O_ACCMODE;
	if (!flock && type == PROTO_LK_RDLCK && acc == O_WRONLY &&
	    q->type == PROTO_SETLK) {
		rc = -EBADF;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		goto out;
	}
	if (!flock && (rc = locktab_lease_attempt(r, &st, hfd, acc)) != 0) {
		if (rc == 1)
			rc = 0; /* lent: the requester decides */
		goto out;
	}
	e = locktab_ent_find(r->owner, q->fh2, flock, st.st_dev, st.st_ino);
	if (e == NULL && (q->type == PROTO_GETLK || type == PROTO_LK_UNLCK)) {
		/* Nothing of this owner's to test past or to drop. */
		rc = q->type == PROTO_GETLK ? locktab_apply(r, NULL, hfd) : 0;
		goto out;
	}
	if (e == NULL) {
		if (!locktab_room(r->owner)) {
			rc = -ENOLCK;
			goto out;
		}
		e = xcalloc(1, sizeof *e);
		e->owner = r->owner;
		e->lowner = q->fh2;
		e->flock = flock;
		e->dev = st.st_dev;
		e->ino = st.st_ino;
		e->fh = q->fh;
		if ((e->fd = beneath_reopen(hfd, acc)) < 0) {
			rc = e->fd;
			free(e);
			goto out;
		}
		TAILQ_INSERT_TAIL(&lk.ents, e, entry);
		lk.nents++;
	}
	rc = locktab_apply(r, e, hfd);
	if (rc == 0 && q->type == PROTO_SETLK)
		rc = locktab_grant_rep(r, e->fd);
	/* A lock went (an unlock, a downgrade): the waiters may go on. */
	if (q->type == PROTO_SETLK && type != PROTO_LK_WRLCK && rc == 0)
		lk.gen++;
out:
	handle_put(q->fh);
	return rc;
}

/* One attempt at the request, on a worker or the loop (nothing, if settled). */
static void
locktab_run(struct work *w)
{
	struct lk_req *r = (struct lk_req *)w;

	pthread_mutex_lock(&lk.mutex);
	r->gen = lk.gen;
	if (!r->noop)
		r->rc = locktab_attempt(r);
	pthread_mutex_unlock(&lk.mutex);
}

/* Answer a request and forget it. */
static void
locktab_answer(struct lk_req *r)
{
	struct proto_rep *rep = r->rep;

	rep->type = r->q.type;
	rep->id = r->q.id;
	rep->error = r->rc;
	if (r->rc != 0) {
		memset(&rep->attr, 0, sizeof rep->attr);
		memset(&rep->lock, 0, sizeof rep->lock);
		rep->has_lock_gen = false;
	}
	TAILQ_REMOVE(&lk.reqs, r, entry);
	r->done(r->arg);
	free(r);
}

static void locktab_done(struct work *);
static void locktab_lease_sweep(void);

/* The next loop turn: an attempt made on the loop is answered. */
static void
locktab_next_turn(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	locktab_done(arg);
}

/*
 * Make an attempt at a request (again): on the loop for a local file
 * system, else on a worker; its answer comes later either way.
 */
static void
locktab_submit(struct lk_req *r)
{
	r->running = true;
	if (!r->inline_ && !r->noop) {
		worker_submit(&r->work);
		return;
	}
	locktab_run(&r->work);
	if (event_base_once(loop_base, -1, EV_TIMEOUT, locktab_next_turn,
		&r->work, NULL) == -1)
		fatalx("event_base_once failed");
}

/* Arm the retry timer while someone waits. */
static void
locktab_arm(void)
{
	struct timeval tv = { 0, LOCKTAB_RETRY_MS * 1000 };

	if ((lk.nwaiters > 0 || !TAILQ_EMPTY(&lk.leases)) &&
	    lk.retry_ev != NULL && !evtimer_pending(lk.retry_ev, NULL))
		evtimer_add(lk.retry_ev, &tv);
}

/*
 * Loop: answer the LEASE of every lease somebody else wants (the
 * recall), and free the leases whose stream went, answering theirs.
 */
static void
locktab_lease_sweep(void)
{
	struct lk_req_list answer = TAILQ_HEAD_INITIALIZER(answer);
	struct lk_lease *l, *next;
	struct lk_req *w;

	pthread_mutex_lock(&lk.mutex);
	for (l = TAILQ_FIRST(&lk.leases); l != NULL; l = next) {
		next = TAILQ_NEXT(l, entry);
		if ((w = l->watch) != NULL && (l->fd < 0 || l->want)) {
			w->rc = l->fd < 0 ? -EIO : 0;
			TAILQ_INSERT_TAIL(&answer, w, wentry);
			l->watch = NULL;
			if (l->fd >= 0) {
				l->recalling = true;
				lk.st.recalled++;
			}
		}
		if (l->fd < 0 && l->watch == NULL) {
			TAILQ_REMOVE(&lk.leases, l, entry);
			free(l);
			lk.gen++; /* what it parked may go on */
		}
	}
	pthread_mutex_unlock(&lk.mutex);
	while ((w = TAILQ_FIRST(&answer)) != NULL) {
		TAILQ_REMOVE(&answer, w, wentry);
		locktab_submit(w);
	}
}

/*
 * LEASE of owner: r waits for the recall of the lease of its handle's
 * file, and is not answered now (true); false if owner has no such
 * lease (r is answered ENOENT).
 */
static bool
locktab_lease_watch(struct lk_req *r)
{
	struct lk_lease *l = NULL;
	struct stat st;
	int fd;

	r->noop = true;
	r->rc = -ENOENT;
	if ((fd = handle_get(r->q.fh, r->owner, HANDLE_ANY_EXPORT, false,
		 NULL)) < 0)
		return false;
	pthread_mutex_lock(&lk.mutex);
	if (fstat(fd, &st) == 0 &&
	    (l = locktab_lease_find(st.st_dev, st.st_ino)) != NULL &&
	    (l->owner != r->owner || l->fd < 0 || l->watch != NULL ||
		l->recalling))
		l = NULL;
	if (l != NULL) {
		l->watch = r;
		l->watch_id = r->q.id;
	}
	pthread_mutex_unlock(&lk.mutex);
	handle_put(r->q.fh);
	return l != NULL;
}

/*
 * LKRETURN of owner: the lease whose LEASE was request id is given
 * back, wanted or not (its locks were, before): the umbrella goes, and
 * the requests parked meanwhile are tried.  0, or -ENOENT.
 */
static int
locktab_lease_return(uint32_t owner, uint64_t id)
{
	struct lk_req *w = NULL;
	struct lk_lease *l;
	struct lk_file *f;
	bool recalled = false;

	pthread_mutex_lock(&lk.mutex);
	TAILQ_FOREACH(l, &lk.leases, entry)
	if (l->owner == owner && l->watch_id == id && l->fd >= 0)
		break;
	if (l != NULL) {
		close(l->fd);
		/* Wanted back: the next lend waits till the others are done. */
		if (l->recalling &&
		    (f = locktab_file_find(l->dev, l->ino)) != NULL)
			f->mixed_ms = locktab_now_ms();
		recalled = l->recalling;
		w = l->watch; /* given back unasked: its LEASE is answered */
		TAILQ_REMOVE(&lk.leases, l, entry);
		free(l);
		lk.gen++;
	}
	pthread_mutex_unlock(&lk.mutex);
	/*
	 * The change notices of what the borrower wrote back go now, not
	 * trap_delay later: sent before the parked requests are granted,
	 * they do not reach those requesters after their grant, where the
	 * kernel could drop the attributes a read then asks for (a notice
	 * that crosses a GETATTR makes the kernel keep the old size).
	 */
	if (recalled)
		trap_flush_now();
	if (w != NULL) {
		w->rc = 0;
		locktab_submit(w);
	}
	return l != NULL ? 0 : -ENOENT;
}

/* The files (dev, ino) programs wait to lock, from /proc/locks. */
#define LOCKTAB_WAITED_MAX 64

/*
 * The retry timer, while files are lent: a lease is wanted back when
 * its file changed outside pufs (its size or times are not those of
 * the last change counted) or when a program waits to lock it (a
 * blocked POSIX or OFD lock in /proc/locks; pufs never blocks, so such
 * a waiter is somebody else's).
 */
static void
locktab_lease_poll(void)
{
	struct {
		dev_t dev;
		ino_t ino;
	} waited[LOCKTAB_WAITED_MAX];
	unsigned maj, min, nwaited = 0;
	unsigned long ino;
	struct lk_lease *l;
	struct lk_file *f;
	struct stat st;
	char line[256], kind[16];
	FILE *fp;

	pthread_mutex_lock(&lk.mutex);
	if (TAILQ_EMPTY(&lk.leases)) {
		pthread_mutex_unlock(&lk.mutex);
		return;
	}
	TAILQ_FOREACH(l, &lk.leases, entry)
	{
		if (l->fd < 0 || l->want || fstat(l->fd, &st) == -1 ||
		    (f = locktab_file_find(l->dev, l->ino)) == NULL)
			continue;
		if (locktab_file_moved(f, &st))
			l->want = true;
	}
	pthread_mutex_unlock(&lk.mutex);
	if ((fp = fopen("/proc/locks", "re")) == NULL)
		return;
	while (nwaited < LOCKTAB_WAITED_MAX && fgets(line, sizeof line, fp)) {
		/* "3: -> POSIX  ADVISORY  WRITE 1234 fd:01:5678 0 EOF" */
		if (sscanf(line, "%*s -> %15s %*s %*s %*s %x:%x:%lu", kind,
			&maj, &min, &ino) != 4 ||
		    strcmp(kind, "FLOCK") == 0)
			continue;
		waited[nwaited].dev = makedev(maj, min);
		waited[nwaited++].ino = (ino_t)ino;
	}
	fclose(fp);
	pthread_mutex_lock(&lk.mutex);
	TAILQ_FOREACH(l, &lk.leases, entry)
	for (unsigned i = 0; i < nwaited; i++)
		if (waited[i].dev == l->dev && waited[i].ino == l->ino)
			l->want = true;
	pthread_mutex_unlock(&lk.mutex);
}

/* Loop: an attempt came back: answer, or park it to try again. */
static void
locktab_done(struct work *w)
{
	struct lk_req *r = (struct lk_req *)w;
	uint64_t gen;

	r->running = false;
	if (r->noop) {
		locktab_answer(r);
		return;
	}
	pthread_mutex_lock(&lk.mutex);
	gen = lk.gen;
	pthread_mutex_unlock(&lk.mutex);
	if ((r->rc == -EAGAIN && (r->q.flags & PROTO_LK_WAIT) &&
		r->q.type == PROTO_SETLK) ||
	    r->rc == LOCKTAB_LENT) {
		if (r->cancelled) {
			r->rc = -EINTR;
			locktab_answer(r);
		} else if (gen != r->gen) {
			locktab_submit(r); /* something went meanwhile */
		} else {
			r->parked = true;
			TAILQ_INSERT_TAIL(&lk.waiters, r, wentry);
			lk.nwaiters++;
			locktab_arm();
		}
	} else
		locktab_answer(r);
	if (gen != lk.seen) {
		lk.seen = gen;
		locktab_wake();
	}
	locktab_lease_sweep();
	locktab_arm();
}

/* Take a parked request out of the waiters. */
static void
locktab_unpark(struct lk_req *r)
{
	TAILQ_REMOVE(&lk.waiters, r, wentry);
	lk.nwaiters--;
	r->parked = false;
}

/*
 * Settle a parked request with error rc, on a worker like any answer
 * (never from inside the call that settles it).
 */
static void
locktab_settle(struct lk_req *r, int rc)
{
	locktab_unpark(r);
	r->cancelled = true;
	r->noop = true;
	r->rc = rc;
	locktab_submit(r);
}

/* Try every waiter again: a lock went, or the retry timer fired. */
static void
locktab_wake(void)
{
	struct lk_req *r;

	while ((r = TAILQ_FIRST(&lk.waiters)) != NULL) {
		locktab_unpark(r);
		locktab_submit(r);
	}
}

/* The release hook wrote to the eventfd: locks went on some thread. */
static void
locktab_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	uint64_t n;

	(void)what;
	(void)arg;
	if (read(fd, &n, sizeof n) == -1 && errno != EAGAIN)
		log_debug("locks: wake: %s", strerror(errno));
	locktab_lease_sweep(); /* a stream's leases went with it */
	locktab_wake();
}

/* The retry timer: locks of programs outside pufs may have gone. */
static void
locktab_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	locktab_lease_poll();
	locktab_wake();
	locktab_lease_sweep();
	locktab_arm();
}

/*
 * LKCANCEL of owner's waiting SETLK id: a parked one is answered EINTR
 * now; one being tried is answered EINTR unless that try granted it.
 * 0 if one was found, else -ENOENT (answered already).
 */
static int
locktab_cancel(uint32_t owner, uint64_t id)
{
	struct lk_req *r;

	TAILQ_FOREACH(r, &lk.reqs, entry)
	{
		if (r->owner != owner || r->q.id != id ||
		    r->q.type != PROTO_SETLK || r->noop || r->cancelled)
			continue;
		if (r->parked)
			locktab_settle(r, -EINTR);
		r->cancelled = true;
		return 0;
	}
	return -ENOENT;
}

/* How many requests owner has here, waiting or not. */
static unsigned
locktab_reqs_of(uint32_t owner)
{
	struct lk_req *r;
	unsigned n = 0;

	TAILQ_FOREACH(r, &lk.reqs, entry)
	if (r->owner == owner)
		n++;
	return n;
}

/* Whether the file of handle fh is on a local file system (see top). */
static bool
locktab_local(uint32_t owner, uint64_t fh)
{
	uint32_t id = UINT32_MAX;
	char *path;

	if (lk.local == NULL || (path = export_fh_path(fh, owner, &id)) == NULL)
		return true; /* an unknown handle: EBADF, at once */
	free(path);
	return id < export_context.nexports && lk.local[id];
}

/* Whether a file system of type t never makes a lock call wait. */
static bool
locktab_fs_local(long t)
{
	switch (t) {
	case EXT4_SUPER_MAGIC: /* ext2 and ext3 too */
	case XFS_SUPER_MAGIC:
	case BTRFS_SUPER_MAGIC:
	case TMPFS_MAGIC:
	case RAMFS_MAGIC:
	case F2FS_SUPER_MAGIC:
	case OVERLAYFS_SUPER_MAGIC:
	case 0x2fc12fc1: /* zfs */
	case 0xca451a4e: /* bcachefs */
		return true;
	default:
		return false;
	}
}

/* Serve a lock request (see locktab.h). */
void
locktab_serve(uint32_t owner, const struct proto_req *q, struct proto_rep *rep,
    void (*done)(void *arg), void *arg)
{
	struct lk_req *r = xcalloc(1, sizeof *r);

	memset(rep, 0, sizeof *rep);
	r->owner = owner;
	r->q.type = q->type;
	r->q.id = q->id;
	r->q.fh = q->fh;
	r->q.fh2 = q->fh2;
	r->q.offset = q->offset;
	r->q.offset2 = q->offset2;
	r->q.flags = q->flags;
	r->rep = rep;
	r->done = done;
	r->arg = arg;
	r->work.run = locktab_run;
	r->work.done = locktab_done;
	r->inline_ = locktab_local(owner, q->fh);
	TAILQ_INSERT_TAIL(&lk.reqs, r, entry);
	if (q->type == PROTO_GETLK || q->type == PROTO_SETLK) {
		pthread_mutex_lock(&lk.mutex);
		lk.st.served++;
		pthread_mutex_unlock(&lk.mutex);
	}
	if (q->type == PROTO_LKCANCEL) {
		r->noop = true;
		r->rc = locktab_cancel(owner, q->offset);
	} else if (q->type == PROTO_LEASE) {
		if (locktab_lease_watch(r)) {
			locktab_lease_sweep(); /* wanted already: recalled */
			return;
		}
	} else if (q->type == PROTO_LKRETURN) {
		r->noop = true;
		r->rc = locktab_lease_return(owner, q->offset);
	} else if ((r->rc = locktab_check(q)) != 0)
		r->noop = true;
	else if (owner != 0 && locktab_reqs_of(owner) > LOCKTAB_REQS_MAX) {
		r->noop = true;
		r->rc = -ENOLCK;
	}
	locktab_submit(r);
}

/*
 * A change by owner of a file (dev, ino; 0, 0: of any): a lease of it
 * to somebody else is wanted back, so that the borrower's next lock
 * sees the change.  Mutex held.
 */
static void
locktab_lease_changed(dev_t dev, ino_t ino, uint32_t owner)
{
	struct lk_lease *l;

	TAILQ_FOREACH(l, &lk.leases, entry)
	if (l->owner != owner &&
	    ((dev == 0 && ino == 0) || (l->dev == dev && l->ino == ino)))
		l->want = true;
}

/* A change by owner of the file of its handle fh, if it has a record. */
static void
locktab_note_fh(uint32_t owner, uint64_t fh)
{
	struct lk_file *f = NULL;
	struct lk_fh *m;
	struct stat st;
	int fd;

	if ((m = locktab_fh_find(owner, fh)) != NULL && m->f == NULL)
		return; /* of no record's */
	fd = handle_get(fh, owner, HANDLE_ANY_EXPORT, false, NULL);
	if (fd < 0)
		return; /* gone: so are its changes' readers' handles */
	if (fstat(fd, &st) == -1)
		f = NULL;
	else if (m != NULL)
		f = m->f;
	else {
		f = locktab_file_find(st.st_dev, st.st_ino);
		locktab_fh_set(owner, fh, f);
	}
	if (f != NULL) {
		locktab_file_changed(f, owner);
		locktab_file_stat(f, &st);
		locktab_lease_changed(f->dev, f->ino, owner);
	}
	handle_put(fh);
}

/* A change whose file is not known (a path): it counts for every one. */
static void
locktab_note_all(uint32_t owner)
{
	struct lk_file *f;

	TAILQ_FOREACH(f, &lk.files, entry)
	locktab_file_changed(f, UINT32_MAX);
	locktab_lease_changed(0, 0, owner);
}

/* Count a change request r served here for owner (see locktab.h). */
void
locktab_note(const struct proto_req *r, const struct proto_rep *rep,
    uint32_t owner)
{
	if (rep->error != 0)
		return;
	pthread_mutex_lock(&lk.mutex);
	if (lk.nfiles == 0) {
		pthread_mutex_unlock(&lk.mutex);
		return;
	}
	switch (r->type) {
	case PROTO_WRITE:
	case PROTO_FALLOCATE:
		locktab_note_fh(owner, r->fh);
		break;
	case PROTO_COPY_RANGE:
		locktab_note_fh(owner, r->fh2);
		break;
	case PROTO_SETATTR:
		if (!(r->valid & PROTO_SET_SIZE))
			break;
		if (r->fh != 0)
			locktab_note_fh(owner, r->fh);
		else
			locktab_note_all(owner);
		break;
	case PROTO_OPEN:
	case PROTO_CREATE:
		if (r->flags & O_TRUNC) /* empties it, O_RDONLY too */
			locktab_note_all(owner);
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&lk.mutex);
	locktab_lease_sweep();
}

/* Leaving: every waiter is answered EIO, so none holds the leave up. */
void
locktab_leave(void)
{
	struct lk_lease *l;
	struct lk_req *r;

	while ((r = TAILQ_FIRST(&lk.waiters)) != NULL)
		locktab_settle(r, -EIO);
	pthread_mutex_lock(&lk.mutex);
	TAILQ_FOREACH(l, &lk.leases, entry)
	if (l->fd >= 0) {
		close(l->fd);
		l->fd = -1;
	}
	pthread_mutex_unlock(&lk.mutex);
	locktab_lease_sweep();
}

/* Set up the wake-ups, and hear of every handle that goes. */
void
locktab_init(void)
{
	struct timespec now;

	if ((lk.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		fatal("locks: eventfd");
	lk.wake_ev = event_new(loop_base, lk.efd, EV_READ | EV_PERSIST,
	    locktab_wake_cb, NULL);
	lk.retry_ev = evtimer_new(loop_base, locktab_retry_cb, NULL);
	if (lk.wake_ev == NULL || lk.retry_ev == NULL ||
	    event_add(lk.wake_ev, NULL) == -1)
		fatalx("locks: cannot make the wake-up events");
	clock_gettime(CLOCK_REALTIME, &now);
	lk.clock = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
	for (size_t b = 0; b < LOCKTAB_FH_BUCKETS; b++)
		LIST_INIT(&lk.fhs[b]);
	handle_on_gone(locktab_handle_gone);
	lk.local = xcalloc(export_context.nexports + 1, sizeof *lk.local);
	for (uint32_t i = 0; i < export_context.nexports; i++) {
		struct statfs sf;

		lk.local[i] = fstatfs(export_context.exports[i].rootfd, &sf) ==
			0 &&
		    locktab_fs_local((long)sf.f_type);
	}
	lk.ready = true;
}

/* Let go of the wake-ups (the workers have stopped). */
void
locktab_free(void)
{
	struct lk_lease *l;
	struct lk_file *f;

	if (!lk.ready)
		return;
	handle_on_gone(NULL);
	pthread_mutex_lock(&lk.mutex);
	while ((f = TAILQ_FIRST(&lk.files)) != NULL)
		locktab_file_free(f);
	while ((l = TAILQ_FIRST(&lk.leases)) != NULL) {
		TAILQ_REMOVE(&lk.leases, l, entry);
		if (l->fd >= 0)
			close(l->fd);
		free(l); /* its LEASE went with the streams */
	}
	locktab_fh_forget(NULL);
	pthread_mutex_unlock(&lk.mutex);
	event_free(lk.wake_ev);
	event_free(lk.retry_ev);
	close(lk.efd);
	lk.efd = -1;
	free(lk.local);
	lk.local = NULL;
	lk.ready = false;
}
