/*
 * lock.c - the FUSE requests on locks: getlk, setlk and flock, and the
 * POSIX locks a close(2) drops (flush with its lock owner).  Each goes
 * to the file's holder, which holds the lock on the real file
 * (locktab.c there), so locks exclude each other across the union as on
 * NFS.  Nothing of a lock is kept here but which owners may hold POSIX
 * locks through which handle, so that their close drops them.
 *
 * Coherence: a lock is how programs on different peers agree on a
 * file's contents.  So every lock and unlock first sends the bytes
 * written here to the holder, and every lock granted drops what the
 * caches here (ours and the kernel's) hold of the file's data and
 * attributes before it is answered, unless the holder says nobody but
 * this peer changed the file since the last lock granted here: what
 * the owner reads under the lock is what the holder has.  The holder's
 * grant carries the file's change number and the number since which
 * only we changed it (PROTO_CAP_LOCK_GEN, locktab.c); the last number
 * seen is kept per file (lock_seen, at most LOCK_SEEN_MAX files, the
 * least recently locked forgotten), with the holder it came from.
 *
 * A SETLK that waits has no op_timeout: it waits as long as the
 * application does, and ends with its holder's stream (EIO).  An
 * interrupt sends LKCANCEL; the holder's answer (EINTR, or the lock if
 * it was granted first) is the one the application gets.
 *
 * Leases (PROTO_CAP_LOCK_LEASE, locktab.c): a POSIX SETLK asks the
 * holder to lend the file's locks (PROTO_LK_BORROW); once it has
 * (PROTO_FLAG_LENT), the POSIX and OFD lock requests about the file are
 * decided here, against the locks this peer's owners hold of it
 * (lock_rec), with no round trip, no write-back and no cache dropped:
 * nobody else can lock the file, and anybody else's change makes the
 * holder want it back.  A LEASE call waits for that; then the requests
 * wait while what was written here goes to the holder, each lock held
 * goes back as a SETLK with PROTO_LK_RETURN and LKRETURN ends the
 * lease; then the waiters and the requests that came meanwhile go to
 * the holder, as without a lease.  If the holder's stream dies the
 * lease and its locks die with it, as locks held there do.  flock(2)
 * locks are never lent.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

#include <fuse_lowlevel.h>

#include "fs.h"

/* A POSIX lock owner that may hold locks of a file through a handle. */
struct lock_held {
	struct handle *h; /* taken through it; dropped at its release */
	uint64_t owner;
	TAILQ_ENTRY(lock_held) entry;
};

static TAILQ_HEAD(, lock_held) lock_helds = TAILQ_HEAD_INITIALIZER(lock_helds);

/* Files whose last change number seen is kept. */
#define LOCK_SEEN_MAX 256

/* The holder's change number of a file at the last grant here. */
struct lock_seen {
	uint64_t ino;      /* the node's FUSE id (never reused) */
	struct peer *peer; /* the holder it came from, in its boot */
	uint64_t boot_id;
	uint64_t gen;
	TAILQ_ENTRY(lock_seen) entry; /* the most recently locked first */
};

static TAILQ_HEAD(lock_seen_list,
    lock_seen) lock_seens = TAILQ_HEAD_INITIALIZER(lock_seens);
static unsigned lock_nseen;
static struct lock_stats lock_st;

/* A POSIX lock held here under a lease. */
struct lock_rec {
	struct handle *h; /* taken through it; goes with it */
	uint64_t owner;
	uint64_t start, end; /* inclusive */
	uint32_t type;       /* PROTO_LK_RDLCK or _WRLCK */
	TAILQ_ENTRY(lock_rec) entry;
};

TAILQ_HEAD(lock_op_list, lock_op);

/* A file whose POSIX locks its holder lent us. */
struct lock_lease {
	uint64_t ino; /* the node's FUSE id */
	struct peer *peer;
	uint64_t boot_id;
	uint32_t export_id;
	uint64_t watch_id;  /* our LEASE call, which LKRETURN names */
	bool recalled;      /* wanted back, or given: requests wait */
	bool ended;         /* given back: out of lock_leases */
	bool watch_done;    /* the LEASE call's answer came */
	bool waking;        /* lock_lease_wake() runs */
	unsigned returning; /* locks given back, not yet answered */
	TAILQ_HEAD(, lock_rec) recs;
	struct lock_op_list waiters; /* wait for a lock held here */
	struct lock_op_list queued;  /* came during the recall */
	TAILQ_ENTRY(lock_lease) entry;
};

static TAILQ_HEAD(, lock_lease) lock_leases = TAILQ_HEAD_INITIALIZER(
    lock_leases);

/* The counters of locks granted here. */
void
lock_stats(struct lock_stats *st)
{
	*st = lock_st;
}

/* A lock request in flight. */
struct lock_op {
	struct work work; /* the kernel's pages of the file, dropped */
	fuse_req_t req;
	struct handle *h; /* the kernel holds the file until the reply */
	uint64_t ino;     /* FUSE inode of h's node */
	uint64_t owner;
	uint64_t start, end; /* inclusive; PROTO_LK_EOF: to the end */
	uint32_t flags;      /* PROTO_LK_* */
	uint64_t id;         /* of the SETLK call, for LKCANCEL */
	bool sent;           /* the SETLK is on its way */
	bool answered;       /* its answer came: nothing to cancel */
	bool interrupted;
	bool flush;         /* answering a flush: its error, not the lock's */
	int flush_error;    /* the flush's write-back error */
	uint64_t names_seq; /* the kernel forgets its directory's names */
	bool getlk;
	struct lock_lease *parked; /* in its waiters or queued */
	TAILQ_ENTRY(lock_op) lentry;
};

/* Whether a lock of owner may be held through h. */
static struct lock_held *
lock_held_find(struct handle *h, uint64_t owner)
{
	struct lock_held *lh;

	TAILQ_FOREACH(lh, &lock_helds, entry)
	if (lh->h == h && lh->owner == owner)
		return lh;
	return NULL;
}

/* Forget that owner holds POSIX locks of h's file (through any handle). */
static void
lock_held_drop(struct handle *h, uint64_t owner)
{
	struct lock_held *lh, *next;

	for (lh = TAILQ_FIRST(&lock_helds); lh != NULL; lh = next) {
		next = TAILQ_NEXT(lh, entry);
		if (lh->h->node == h->node && lh->owner == owner) {
			TAILQ_REMOVE(&lock_helds, lh, entry);
			free(lh);
		}
	}
}

/* A handle of owner's POSIX locks of h's file, if any is held. */
static struct handle *
lock_held_any(struct handle *h, uint64_t owner)
{
	struct lock_held *lh;

	TAILQ_FOREACH(lh, &lock_helds, entry)
	if (lh->h->node == h->node && lh->owner == owner &&
	    io_handle_live(lh->h))
		return io_handle_live(h) ? h : lh->h;
	return NULL;
}

static void lock_lease_wake(struct lock_lease *);
static bool lock_lease_idle(struct lock_lease *, struct lock_op *);

/* The kernel releases h: whatever was held through it is gone. */
void
lock_release(struct handle *h)
{
	struct lock_held *lh, *next;
	struct lock_rec *x, *xnext;
	struct lock_lease *l, *lnext;
	bool any;

	for (lh = TAILQ_FIRST(&lock_helds); lh != NULL; lh = next) {
		next = TAILQ_NEXT(lh, entry);
		if (lh->h == h) {
			TAILQ_REMOVE(&lock_helds, lh, entry);
			free(lh);
		}
	}
	TAILQ_FOREACH(l, &lock_leases, entry)
	{
		any = false;
		for (x = TAILQ_FIRST(&l->recs); x != NULL; x = xnext) {
			xnext = TAILQ_NEXT(x, entry);
			if (x->h == h) {
				TAILQ_REMOVE(&l->recs, x, entry);
				free(x);
				any = true;
			}
		}
		if (any)
			lock_lease_wake(l);
	}
	for (l = TAILQ_FIRST(&lock_leases); l != NULL; l = lnext) {
		lnext = TAILQ_NEXT(l, entry);
		if (l->ino == h->node->id && l->peer == h->peer)
			(void)lock_lease_idle(l, NULL);
	}
}

/* A new request about lock owner's locks through the kernel's handle. */
static struct lock_op *
lock_op_new(fuse_req_t req, struct handle *h, uint64_t owner)
{
	struct lock_op *op = xcalloc(1, sizeof *op);

	op->req = req;
	op->h = h;
	op->ino = h->node->id;
	op->owner = owner;
	return op;
}

/* Reply an error (0: done) and free the request. */
static void
lock_reply(struct lock_op *op, int error)
{
	fuse_reply_err(op->req, op->flush ? -op->flush_error : -error);
	free(op);
}

/* The range of a struct flock (SEEK_SET), as the wire says it. */
static int
lock_range(const struct flock *fl, uint64_t *start, uint64_t *end)
{
	if (fl->l_start < 0 || fl->l_len < 0)
		return -EINVAL;
	*start = (uint64_t)fl->l_start;
	if (fl->l_len == 0)
		*end = (uint64_t)PROTO_LK_EOF;
	else if ((uint64_t)fl->l_len - 1 > (uint64_t)PROTO_LK_EOF - *start)
		return -EOVERFLOW;
	else
		*end = *start + (uint64_t)fl->l_len - 1;
	return 0;
}

/* The wire's type of F_RDLCK, F_WRLCK, F_UNLCK. */
static int
lock_type(short type, uint32_t *out)
{
	switch (type) {
	case F_RDLCK:
		*out = PROTO_LK_RDLCK;
		return 0;
	case F_WRLCK:
		*out = PROTO_LK_WRLCK;
		return 0;
	case F_UNLCK:
		*out = PROTO_LK_UNLCK;
		return 0;
	default:
		return -EINVAL;
	}
}

/* A lock call about op's handle; NULL if the holder is gone. */
static struct call *
lock_call(struct lock_op *op, struct handle *h, uint8_t type,
    void (*cb)(struct call *))
{
	struct call *c;

	if (!io_handle_live(h))
		return NULL;
	c = call_new(h->peer, type, h->export_id, NULL, cb, op);
	c->req.fh = h->fh;
	c->req.fh2 = op->owner;
	c->req.offset = op->start;
	c->req.offset2 = op->end;
	c->req.flags = op->flags;
	if (type == PROTO_SETLK && !(op->flags & PROTO_LK_FLOCK))
		c->req.flags |= PROTO_LK_BORROW; /* dropped if not known */
	return c;
}

static void lock_go(struct lock_op *);
static void lock_lent(struct lock_op *, const struct proto_rep *);

/* --- getlk --- */

static void lock_reply_lock(struct lock_op *, const struct proto_lock *);

/* GETLK came back: the first conflicting lock, or F_UNLCK. */
static void
lock_get_cb(struct call *c)
{
	struct lock_op *op = c->arg;
	const struct proto_lock *l = &c->rep.lock;

	if (c->rep.error != 0) {
		lock_reply(op, c->rep.error);
		return;
	}
	if (c->rep.lent) {
		lock_lent(op, NULL);
		return;
	}
	lock_reply_lock(op, l);
}

/* Answer a GETLK: the conflicting lock l (type F_UNLCK: none). */
static void
lock_reply_lock(struct lock_op *op, const struct proto_lock *l)
{
	struct flock fl;

	memset(&fl, 0, sizeof fl);
	fl.l_whence = SEEK_SET;
	if (l->type == PROTO_LK_UNLCK)
		fl.l_type = F_UNLCK;
	else {
		fl.l_type = l->type == PROTO_LK_WRLCK ? F_WRLCK : F_RDLCK;
		fl.l_start = (off_t)l->start;
		fl.l_len = l->end == (uint64_t)PROTO_LK_EOF
		    ? 0
		    : (off_t)(l->end - l->start + 1);
		fl.l_pid = (pid_t)l->pid;
	}
	fuse_reply_lock(op->req, &fl);
	free(op);
}

/*
 * A request about the POSIX lock the kernel describes in *lock, through
 * the kernel's handle fi: *out, or a negative errno.
 */
static int
lock_op_posix(fuse_req_t req, struct fuse_file_info *fi,
    const struct flock *lock, struct lock_op **out)
{
	struct handle *h = (struct handle *)fi->fh;
	struct lock_op *op;
	int err;

	if (!io_handle_live(h))
		return -EIO;
	op = lock_op_new(req, h, fi->lock_owner);
	if ((err = lock_type(lock->l_type, &op->flags)) < 0 ||
	    (err = lock_range(lock, &op->start, &op->end)) < 0) {
		free(op);
		return err;
	}
	*out = op;
	return 0;
}

void
lock_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
    struct flock *lock)
{
	struct lock_op *op;
	int err;

	(void)ino;
	if ((err = lock_op_posix(req, fi, lock, &op)) < 0) {
		fuse_reply_err(req, -err);
		return;
	}
	if (op->flags == PROTO_LK_UNLCK) {
		lock_reply(op, -EINVAL);
		return;
	}
	op->getlk = true;
	lock_go(op);
}

/* --- setlk, flock --- */

/* Worker: the kernel drops its pages of the file the lock covers. */
static void
lock_inval_run(struct work *w)
{
	struct lock_op *op = (struct lock_op *)w;
	int rc;

	notify_wait(op->names_seq);
	if ((rc = notify_data_now(op->ino)) != 0 && rc != -ENOENT)
		log_debug("locks: inval %llu: %s", (unsigned long long)op->ino,
		    strerror(-rc));
}

/* Loop: the kernel holds nothing old of the file: the lock is granted. */
static void
lock_inval_done(struct work *w)
{
	lock_reply((struct lock_op *)w, 0);
}

/* What lock_forget_names() forgets: the names of dir but keep's. */
struct lock_names {
	struct node *dir;
	const struct node *keep;
};

/* node_foreach: the kernel forgets a file's name in arg's directory. */
static void
lock_names_node(struct node *n, void *arg)
{
	const struct lock_names *ln = arg;

	if (n->parent == ln->dir && n != ln->keep && !n->isdir && n->linked &&
	    n->nlookup > 0)
		notify_entry(ln->dir->id, n->name);
}

/*
 * A lock on keep was granted: what its owner now finds in keep's
 * directory must be what its holder has, though the traps of the
 * changes made there under the lock before (SQLite's journal, made and
 * removed by another peer) may not have come yet.  The kernel forgets
 * the names it holds there, present (files only: a directory may be a
 * working directory) and absent, and the cached listings ask their
 * holders again.  The forgetting is queued; notify_seq() counts it.
 */
static void
lock_forget_names(struct node *dir, const struct node *keep)
{
	struct lock_names ln = { dir, keep };
	struct copy *copies;
	size_t ncopies;
	char *rel;

	if (dir == NULL)
		return;
	copies = union_copies(dir, &ncopies);
	for (size_t i = 0; i < ncopies; i++) {
		rel = fsop_relpath(dir, copies[i].peer, copies[i].export_id);
		if (rel != NULL)
			dircache_stale(copies[i].peer, copies[i].export_id,
			    rel);
		free(rel);
	}
	free(copies);
	if (dir->nlookup > 0 || dir->parent == NULL)
		node_foreach(lock_names_node, &ln);
	notify_appeared_dir(dir);
	notify_listing(dir);
}

/*
 * Whether what is cached here of op's file is still the holder's after
 * the grant rep: nobody but us changed it since our last grant from
 * the same holder.  The number seen becomes rep's.
 */
static bool
lock_unchanged(struct lock_op *op, const struct proto_rep *rep)
{
	struct peer *p = op->h->peer;
	struct lock_seen *ls;
	bool same = false;

	TAILQ_FOREACH(ls, &lock_seens, entry)
	if (ls->ino == op->ino)
		break;
	if (!rep->has_lock_gen) {
		if (ls != NULL) {
			TAILQ_REMOVE(&lock_seens, ls, entry);
			lock_nseen--;
			free(ls);
		}
		return false;
	}
	if (ls != NULL) {
		same = ls->peer == p && ls->boot_id == p->boot_id &&
		    ls->gen >= rep->lock_since;
		TAILQ_REMOVE(&lock_seens, ls, entry);
	} else if (lock_nseen < LOCK_SEEN_MAX) {
		ls = xcalloc(1, sizeof *ls);
		lock_nseen++;
	} else {
		ls = TAILQ_LAST(&lock_seens, lock_seen_list);
		TAILQ_REMOVE(&lock_seens, ls, entry);
	}
	ls->ino = op->ino;
	ls->peer = p;
	ls->boot_id = p->boot_id;
	ls->gen = rep->lock_gen;
	TAILQ_INSERT_HEAD(&lock_seens, ls, entry);
	return same;
}

/*
 * A lock was granted: what is cached here of the file may be older
 * than the holder's, which the owner may now read; drop it, the data
 * on a worker (never from the loop), then answer.  If nobody else
 * changed the file, nothing cached is old: answered at once.
 */
static void
lock_granted(struct lock_op *op, const struct proto_rep *rep)
{
	struct node *n = op->h->node;
	const struct proto_attr *a = &rep->attr;

	lock_st.granted++;
	if (lock_unchanged(op, rep)) {
		lock_st.kept++;
		if (!io_dirty(n))
			n->attr = *a;
		lock_reply(op, 0);
		return;
	}
	if (!io_dirty(n)) {
		io_forget(n, 0, 0);
		n->attr = *a;
	}
	notify_attr_now(n);
	lock_forget_names(n->parent, n);
	op->names_seq = notify_seq();
	op->work.run = lock_inval_run;
	op->work.done = lock_inval_done;
	worker_submit(&op->work);
}

/* SETLK came back: granted, dropped, refused or cancelled. */
static void
lock_set_cb(struct call *c)
{
	struct lock_op *op = c->arg;
	uint32_t type = op->flags & PROTO_LK_TYPE;
	bool posix = (op->flags & PROTO_LK_FLOCK) == 0;
	struct lock_held *lh;

	op->answered = true;
	if (c->rep.error != 0) {
		lock_reply(op, c->rep.error);
		return;
	}
	if (c->rep.lent) {
		lock_lent(op, &c->rep);
		return;
	}
	if (posix && type == PROTO_LK_UNLCK && op->start == 0 &&
	    op->end == (uint64_t)PROTO_LK_EOF)
		lock_held_drop(op->h, op->owner);
	if (type == PROTO_LK_UNLCK || op->flush) {
		lock_reply(op, 0);
		return;
	}
	if (posix && lock_held_find(op->h, op->owner) == NULL) {
		lh = xcalloc(1, sizeof *lh);
		lh->h = op->h;
		lh->owner = op->owner;
		TAILQ_INSERT_TAIL(&lock_helds, lh, entry);
	}
	lock_granted(op, &c->rep);
}

/* The holder's answer to LKCANCEL; the SETLK's own answer says it all. */
static void
lock_cancel_cb(struct call *c)
{
	if (c->rep.error != 0 && c->rep.error != -ENOENT)
		log_debug("locks: cancel: %s", strerror(-c->rep.error));
}

/*
 * The kernel interrupts a waiting lock (a signal): the holder is asked
 * to cancel it.  Before it is sent, it is not sent at all.
 */
static void
lock_interrupt(fuse_req_t req, void *arg)
{
	struct lock_op *op = arg;
	struct call *c;

	(void)req;
	op->interrupted = true;
	if (op->parked != NULL && !op->parked->recalled) {
		/* Waits for a lock held here: no holder to ask. */
		TAILQ_REMOVE(&op->parked->waiters, op, lentry);
		op->parked = NULL;
		lock_reply(op, -EINTR);
		return;
	}
	if (!op->sent || op->answered || !(op->flags & PROTO_LK_WAIT) ||
	    !io_handle_live(op->h))
		return;
	c = call_new(op->h->peer, PROTO_LKCANCEL, op->h->export_id, NULL,
	    lock_cancel_cb, NULL);
	c->req.offset = op->id;
	call_send(c);
}

/* The file is clean on its holder: send the SETLK. */
static void
lock_set_send(void *arg, int error, const void *data, size_t len)
{
	struct lock_op *op = arg;
	struct call *c;

	(void)data;
	(void)len;
	if (error != 0)
		log_debug("locks: write-back before a lock: %s",
		    strerror(-error));
	if (op->interrupted && (op->flags & PROTO_LK_WAIT)) {
		lock_reply(op, -EINTR);
		return;
	}
	if ((c = lock_call(op, op->h, PROTO_SETLK, lock_set_cb)) == NULL) {
		lock_reply(op, -EIO);
		return;
	}
	op->id = c->req.id;
	op->sent = true;
	call_send(c);
	if (op->flags & PROTO_LK_WAIT)
		call_untimed(c);
}

/* Send a SETLK of op: the bytes written here go to the holder first. */
static void
lock_set_remote(struct lock_op *op)
{
	int err;

	if ((err = io_barrier(op->h->node, lock_set_send, op)) < 0)
		lock_reply(op, err);
}

/* Start a SETLK of op. */
static void
lock_set_start(struct lock_op *op)
{
	if (op->flags & PROTO_LK_WAIT)
		fuse_req_interrupt_func(op->req, lock_interrupt, op);
	lock_go(op);
}

void
lock_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
    struct flock *lock, int sleep)
{
	struct lock_op *op;
	int err;

	(void)ino;
	if ((err = lock_op_posix(req, fi, lock, &op)) < 0) {
		fuse_reply_err(req, -err);
		return;
	}
	if (sleep && op->flags != PROTO_LK_UNLCK)
		op->flags |= PROTO_LK_WAIT;
	lock_set_start(op);
}

void
lock_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int how)
{
	struct handle *h = (struct handle *)fi->fh;
	struct lock_op *op;

	(void)ino;
	if (!io_handle_live(h)) {
		fuse_reply_err(req, EIO);
		return;
	}
	op = lock_op_new(req, h, fi->lock_owner);
	op->start = 0;
	op->end = (uint64_t)PROTO_LK_EOF;
	switch (how & ~LOCK_NB) {
	case LOCK_SH:
		op->flags = PROTO_LK_RDLCK;
		break;
	case LOCK_EX:
		op->flags = PROTO_LK_WRLCK;
		break;
	case LOCK_UN:
		op->flags = PROTO_LK_UNLCK;
		break;
	default:
		free(op);
		fuse_reply_err(req, EINVAL);
		return;
	}
	op->flags |= PROTO_LK_FLOCK;
	if (!(how & LOCK_NB) && (how & ~LOCK_NB) != LOCK_UN)
		op->flags |= PROTO_LK_WAIT;
	lock_set_start(op);
}

/* --- flush --- */

/* The flush's write-back ended: drop owner's POSIX locks, then answer. */
static void
lock_flushed(void *arg, int error, const void *data, size_t len)
{
	struct lock_op *op = arg;

	(void)data;
	(void)len;
	op->flush_error = error;
	op->start = 0;
	op->end = (uint64_t)PROTO_LK_EOF;
	op->flags = PROTO_LK_UNLCK;
	lock_go(op);
}

/* A flush's unlock of owner's POSIX locks at the holder. */
static void
lock_flush_remote(struct lock_op *op)
{
	struct handle *via;
	struct call *c;

	if ((via = lock_held_any(op->h, op->owner)) == NULL) {
		lock_held_drop(op->h, op->owner);
		lock_reply(op, 0);
		return;
	}
	lock_held_drop(op->h, op->owner);
	if ((c = lock_call(op, via, PROTO_SETLK, lock_set_cb)) == NULL) {
		lock_reply(op, 0);
		return;
	}
	op->sent = true;
	call_send(c);
}

/*
 * close(2) of a file by lock owner (FUSE flush): what was written goes
 * to the holder, then the owner's POSIX locks of the file go, as a
 * close drops a process's locks; answered after both.  Returns 0, or a
 * negative errno when nothing could start (the caller answers it).
 */
int
lock_flush(fuse_req_t req, struct handle *h, uint64_t owner)
{
	struct lock_op *op = lock_op_new(req, h, owner);
	int err;

	op->flush = true;
	if ((err = io_flush(h, lock_flushed, op)) < 0)
		free(op);
	return err;
}

/* --- leases --- */

/* The lease of op's file from its holder, or NULL. */
static struct lock_lease *
lock_lease_of(const struct lock_op *op)
{
	struct peer *p = op->h->peer;
	struct lock_lease *l;

	TAILQ_FOREACH(l, &lock_leases, entry)
	if (l->ino == op->ino && l->peer == p && l->boot_id == p->boot_id)
		return l;
	return NULL;
}

/* Send op to the holder, as without a lease. */
static void
lock_remote(struct lock_op *op)
{
	if (op->getlk)
		call_send(lock_call(op, op->h, PROTO_GETLK, lock_get_cb));
	else if (op->flush)
		lock_flush_remote(op);
	else
		lock_set_remote(op);
}

/* Whether lock x and the range start..end overlap. */
static bool
lock_rec_overlaps(const struct lock_rec *x, uint64_t start, uint64_t end)
{
	return x->start <= end && start <= x->end;
}

/* The first lock held here of another owner that op's would conflict with. */
static struct lock_rec *
lock_rec_conflict(struct lock_lease *l, const struct lock_op *op)
{
	uint32_t type = op->flags & PROTO_LK_TYPE;
	struct lock_rec *x;

	TAILQ_FOREACH(x, &l->recs, entry)
	if (x->owner != op->owner && lock_rec_overlaps(x, op->start, op->end) &&
	    (x->type == PROTO_LK_WRLCK || type == PROTO_LK_WRLCK))
		return x;
	return NULL;
}

/* A piece start..end of lock x, kept when the rest of x goes. */
static void
lock_rec_piece(struct lock_lease *l, const struct lock_rec *x, uint64_t start,
    uint64_t end)
{
	struct lock_rec *y = xmalloc(sizeof *y);

	*y = *x;
	y->start = start;
	y->end = end;
	TAILQ_INSERT_TAIL(&l->recs, y, entry);
}

/*
 * Owner's locks of the range start..end become type (PROTO_LK_UNLCK:
 * none), taken through h, as fcntl(2) replaces a process's own locks:
 * what the range leaves of the old ones stays.
 */
static void
lock_rec_set(struct lock_lease *l, struct handle *h, uint64_t owner,
    uint64_t start, uint64_t end, uint32_t type)
{
	struct lock_rec *x, *next, *y;

	for (x = TAILQ_FIRST(&l->recs); x != NULL; x = next) {
		next = TAILQ_NEXT(x, entry);
		if (x->owner != owner || !lock_rec_overlaps(x, start, end))
			continue;
		TAILQ_REMOVE(&l->recs, x, entry);
		if (x->start < start)
			lock_rec_piece(l, x, x->start, start - 1);
		if (x->end > end)
			lock_rec_piece(l, x, end + 1, x->end);
		free(x);
	}
	if (type == PROTO_LK_UNLCK)
		return;
	y = xcalloc(1, sizeof *y);
	y->h = h;
	y->owner = owner;
	y->start = start;
	y->end = end;
	y->type = type;
	TAILQ_INSERT_TAIL(&l->recs, y, entry);
}

/*
 * Decide op here, under lease l.  rep: the holder's answer that lent
 * the file, for the first request (its change numbers say whether the
 * caches may be kept); NULL for the others, which nobody else's change
 * can have come before (it would have recalled the lease).
 */
static void
lock_local(struct lock_lease *l, struct lock_op *op,
    const struct proto_rep *rep)
{
	uint32_t type = op->flags & PROTO_LK_TYPE;
	struct proto_lock pl;
	struct lock_rec *x;

	lock_st.local++;
	if (op->getlk) {
		memset(&pl, 0, sizeof pl);
		pl.type = PROTO_LK_UNLCK;
		if ((x = lock_rec_conflict(l, op)) != NULL) {
			pl.type = x->type;
			pl.start = x->start;
			pl.end = x->end;
		}
		lock_reply_lock(op, &pl);
		return;
	}
	if (op->flush) {
		lock_rec_set(l, NULL, op->owner, 0, (uint64_t)PROTO_LK_EOF,
		    PROTO_LK_UNLCK);
		lock_held_drop(op->h, op->owner);
		lock_lease_wake(l);
		if (!lock_lease_idle(l, op))
			lock_reply(op, 0);
		return;
	}
	if (type != PROTO_LK_UNLCK && lock_rec_conflict(l, op) != NULL) {
		if (!(op->flags & PROTO_LK_WAIT)) {
			lock_reply(op, -EAGAIN);
		} else if (op->interrupted) {
			lock_reply(op, -EINTR);
		} else {
			op->parked = l;
			TAILQ_INSERT_TAIL(&l->waiters, op, lentry);
		}
		return;
	}
	lock_rec_set(l, op->h, op->owner, op->start, op->end, type);
	if (type == PROTO_LK_UNLCK) {
		lock_reply(op, 0);
	} else if (rep != NULL) {
		lock_granted(op, rep);
	} else {
		lock_st.granted++;
		lock_st.kept++;
		lock_reply(op, 0);
	}
	if (type != PROTO_LK_WRLCK)
		lock_lease_wake(l); /* gone or shared now: waiters may go on */
}

/* Locks went here: the waiters of l are tried again, in order. */
static void
lock_lease_wake(struct lock_lease *l)
{
	struct lock_op_list again;
	struct lock_op *op;

	if (l->waking || l->recalled)
		return;
	l->waking = true;
	TAILQ_INIT(&again);
	TAILQ_CONCAT(&again, &l->waiters, lentry);
	while ((op = TAILQ_FIRST(&again)) != NULL) {
		TAILQ_REMOVE(&again, op, lentry);
		op->parked = NULL;
		lock_local(l, op, NULL);
	}
	l->waking = false;
}

/* Decide op here under its file's lease, wait behind a recall, or ask. */
static void
lock_go(struct lock_op *op)
{
	struct lock_lease *l;

	if ((op->flags & PROTO_LK_FLOCK) || (l = lock_lease_of(op)) == NULL) {
		lock_remote(op);
	} else if (l->recalled) {
		op->parked = l;
		TAILQ_INSERT_TAIL(&l->queued, op, lentry);
	} else
		lock_local(l, op, NULL);
}

/* The lease is over: what waited here goes to the holder. */
static void
lock_lease_free(struct lock_lease *l, int error)
{
	struct lock_rec *x;
	struct lock_op *op;

	TAILQ_REMOVE(&lock_leases, l, entry);
	while ((x = TAILQ_FIRST(&l->recs)) != NULL) {
		TAILQ_REMOVE(&l->recs, x, entry);
		free(x);
	}
	TAILQ_CONCAT(&l->waiters, &l->queued, lentry);
	while ((op = TAILQ_FIRST(&l->waiters)) != NULL) {
		TAILQ_REMOVE(&l->waiters, op, lentry);
		op->parked = NULL;
		if (error != 0 && !op->getlk && !op->flush &&
		    (op->flags & PROTO_LK_WAIT))
			lock_reply(op, error); /* waited on a dead stream */
		else if (op->flags & PROTO_LK_WAIT && op->interrupted)
			lock_reply(op, -EINTR);
		else
			lock_remote(op);
	}
	l->ended = true;
	if (l->watch_done)
		free(l); /* else its answer frees it */
}

/* LKRETURN was answered: the close that gave the lease back is (op). */
static void
lock_lease_returned_cb(struct call *c)
{
	if (c->rep.error != 0)
		log_debug("locks: lease return: %s", strerror(-c->rep.error));
	if (c->arg != NULL)
		lock_reply(c->arg, 0);
}

/*
 * Every lock went back to the holder: the lease ends.  op: a close
 * answered once the holder has it back (so that a program on the
 * holder's disk that locks the file next finds it free), or NULL.
 */
static void
lock_lease_end(struct lock_lease *l, struct lock_op *op)
{
	struct call *c;

	c = call_new(l->peer, PROTO_LKRETURN, l->export_id, NULL,
	    lock_lease_returned_cb, op);
	c->req.offset = l->watch_id;
	call_send(c);
	lock_st.returned++;
	lock_lease_free(l, 0);
}

/*
 * Nothing of l's file is locked or waited for here any more (a close,
 * a handle gone): the lease goes back at once, op answered after.
 */
static bool
lock_lease_idle(struct lock_lease *l, struct lock_op *op)
{
	if (l->recalled || !TAILQ_EMPTY(&l->recs) ||
	    !TAILQ_EMPTY(&l->waiters) || !TAILQ_EMPTY(&l->queued))
		return false;
	l->recalled = true;
	lock_lease_end(l, op);
	return true;
}

/* A lock given back was taken at the holder (or could not be). */
static void
lock_lease_back_cb(struct call *c)
{
	struct lock_lease *l = c->arg;

	if (c->rep.error != 0)
		log_warnx("locks: a lent lock could not be given back: %s",
		    strerror(-c->rep.error));
	if (--l->returning == 0)
		lock_lease_end(l, NULL);
}

/* What was written here is on the holder: the locks go back. */
static void
lock_lease_flushed(void *arg, int error, const void *data, size_t len)
{
	struct lock_lease *l = arg;
	struct lock_held *lh;
	struct lock_rec *x;
	struct call *c;

	(void)data;
	(void)len;
	if (error != 0)
		log_debug("locks: write-back before a lease's return: %s",
		    strerror(-error));
	l->returning++; /* none ends it before the last is sent */
	TAILQ_FOREACH(x, &l->recs, entry)
	{
		if (!io_handle_live(x->h))
			continue;
		c = call_new(x->h->peer, PROTO_SETLK, x->h->export_id, NULL,
		    lock_lease_back_cb, l);
		c->req.fh = x->h->fh;
		c->req.fh2 = x->owner;
		c->req.offset = x->start;
		c->req.offset2 = x->end;
		c->req.flags = x->type | PROTO_LK_RETURN;
		l->returning++;
		call_send(c);
		if (lock_held_find(x->h, x->owner) == NULL) {
			lh = xcalloc(1, sizeof *lh);
			lh->h = x->h;
			lh->owner = x->owner;
			TAILQ_INSERT_TAIL(&lock_helds, lh, entry);
		}
	}
	if (--l->returning == 0)
		lock_lease_end(l, NULL);
}

/*
 * LEASE came back: the holder wants the file's locks back (or the
 * stream is gone, and they with it).
 */
static void
lock_lease_watch_cb(struct call *c)
{
	struct lock_lease *l = c->arg;
	struct node *n;

	if (l->ended) {
		free(l); /* given back already */
		return;
	}
	l->watch_done = true;
	if (c->rep.error != 0 && c->rep.error != -ENOENT) {
		log_debug("locks: lease lost: %s", strerror(-c->rep.error));
		lock_lease_free(l, c->rep.error);
		return;
	}
	l->recalled = true;
	if ((n = node_get(l->ino)) == NULL ||
	    io_barrier(n, lock_lease_flushed, l) < 0)
		lock_lease_flushed(l, 0, NULL, 0);
}

/*
 * The holder lent op's file (rep): the lease is noted, and its LEASE
 * sent, the first time; op is decided here.
 */
static void
lock_lent(struct lock_op *op, const struct proto_rep *rep)
{
	struct lock_lease *l;
	struct handle *h = op->h;
	struct call *c;

	if ((l = lock_lease_of(op)) != NULL) {
		if (l->recalled)
			lock_go(op); /* behind the recall */
		else
			lock_local(l, op, NULL);
		return;
	}
	l = xcalloc(1, sizeof *l);
	l->ino = op->ino;
	l->peer = h->peer;
	l->boot_id = h->peer->boot_id;
	l->export_id = h->export_id;
	TAILQ_INIT(&l->recs);
	TAILQ_INIT(&l->waiters);
	TAILQ_INIT(&l->queued);
	TAILQ_INSERT_TAIL(&lock_leases, l, entry);
	lock_st.borrowed++;
	c = call_new(h->peer, PROTO_LEASE, h->export_id, NULL,
	    lock_lease_watch_cb, l);
	c->req.fh = h->fh;
	l->watch_id = c->req.id;
	/* Before anything op sends (an LKRETURN names this LEASE). */
	call_send(c);
	call_untimed(c);
	lock_local(l, op, rep);
}
