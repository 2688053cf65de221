/*
 * cluster.c - replicated directories: every peer with a [cluster:NAME]
 * section holds a replica of NAME, an export named "cluster:NAME" that
 * its HELLO announces like any other (cluster_init() adds it to the
 * exports before they are opened).  Peers without the section learn
 * of the set from those exports, so every peer of the union sees it.
 *
 * A replica's state is its own peer's word: resyncing (live, being
 * brought up to date: written to, never read from) or in sync.  Each
 * peer tells every other the state of its replicas in a CLUSTER
 * request when the other comes up and whenever the state changes, and
 * the answer tells it the other's.  Until a peer has said, its replica
 * counts as resyncing, so nobody reads a replica that has just come
 * back.
 *
 * The view: the hits of one name on several replicas make one entry
 * (the lowest-named replica in sync gives its attributes, st_ino is a
 * hash of the cluster and the union path, the same on every peer), and
 * replicas not in sync are not listed while one in sync is; a directory
 * made here has every replica in sync as a copy, not only the one that
 * answered (cluster_made_dir()).  Calls about a file go to a replica in
 * sync: an open for reading to this peer's own replica if it is in
 * sync, else by `balance`; the other calls to the lowest-named one.  A read
 * whose replica fails goes on with the file reopened on another
 * (cluster_failover()).
 *
 * Writes: an answer without an error to a change of a replica
 * (create, mkdir, rename, unlink, setattr, xattrs...) is held by the
 * call layer until the same change is made on every other live
 * replica; a writable open opens twins on the others, and each WRITE
 * frame of the write-back goes to the twins too, its answer held until
 * they have it (write-behind, below); a flush or fsync syncs the twins
 * and gives them the handle's times, and a replica that may lack a
 * frame gets the file copied whole (move.c's copy: its name replaced
 * atomically, with the source's times), before close(2) or fsync(2)
 * returns.  A replica that fails a repeated change or a write is told
 * (CLUSTER with PROTO_CLUSTER_DESYNC) and resyncs.
 *
 * Resync (a replica brings itself up to date): at start, when told it
 * is out of sync, and when it was cut off from every other replica and
 * one in sync comes back.  It compares its tree with a replica in sync,
 * directory by directory (full listings: type, size, mtime), and each
 * difference is decided by the time the replica was last known in sync
 * with another (`apart`, kept as the mtime of a hidden stamp file in
 * the replica's root, touched every CLUSTER_STAMP_MS while in sync):
 * a file changed on one side only since then goes to the other side;
 * changed on both, the later mtime keeps the name and the other version
 * is kept beside it as NAME@URI of its peer; a name only here and not
 * changed since apart was removed elsewhere and goes.  In a cluster's
 * directories names are literal: NAME@URI names that file, not a
 * replica's copy.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "cluster.h"
#include "merge.h"

#define CLUSTER_GRACE_MS 1500 /* at start: time to hear of the others */
#define CLUSTER_TICK_MS 250
#define CLUSTER_SETTLE_MS 2500 /* after a cut: time for all to be back */
#define CLUSTER_STAMP_MS 2000
#define CLUSTER_STAMP MOVE_PREFIX "cluster-stamp"
#define CLUSTER_COPIES 32   /* copies in flight */
#define CLUSTER_LISTINGS 16 /* directory pairs a resync compares at once */
#define CLUSTER_ALONE 0x4   /* flags: cut off from the others till now */

enum cl_state { CL_DOWN, CL_RESYNC, CL_SYNC };

static const char *const cl_state_names[] = { "down", "resyncing", "in sync" };

/* What a peer said of its replica, on the stream of epoch. */
struct cl_said {
	struct peer *peer;
	uint64_t epoch;
	enum cl_state st;
	bool alone;
	uint64_t picks;      /* opens we sent it */
	uint64_t told_epoch; /* the stream we last told our state on */
	uint64_t told_ms;
};

struct cl_resync;

/* One replica set, ours or only heard of. */
struct cl {
	char *name;  /* NAME; owned */
	char *xname; /* the exports' name, "cluster:NAME"; owned */
	enum config_balance balance;
	bool local;           /* we hold a replica */
	uint32_t self_export; /* its export id */
	enum cl_state st;     /* our replica's */
	bool alone;           /* cut off from every other replica */
	bool decided;         /* the start's decision is made */
	uint64_t retry_ms;    /* no resync before (one failed) */
	uint64_t back_ms;     /* alone: when another replica came back */
	uint64_t apart_ns;    /* last known in sync with another; 0: never */
	uint64_t stamp_ms;    /* loop_now_ms() of the last stamp */
	uint64_t rr, wrr;     /* round robin: opens to read, to write */
	struct cl_said *said;
	size_t nsaid;
	struct cl_resync *rs; /* running, or NULL */
	bool again;           /* resync again when this one ends */
	/* figures */
	uint64_t opens, reads; /* served by our replica */
	uint64_t runs, failovers, desyncs, fanouts, copies;
	uint64_t mirrored; /* bytes written to twins (write-behind) */
	uint64_t rs_dirs, rs_files, rs_copied, rs_removed, rs_conflicts;
	uint64_t rs_journal, rs_full; /* runs by the journals, compared whole */
	uint64_t rs_paths;            /* paths the journals named, last run */
	double rs_last_s;
};

static struct {
	struct cl **v;
	size_t n;
	struct timer tick;
	uint64_t start_ms;
} cls;

/* --- the sets and their replicas --- */

/* Whether a set's name is one a configuration could give. */
static bool
cl_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 63)
		return false;
	return strspn(name,
		   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		   "0123456789._-") == n;
}

/*
 * Where this peer's round robin starts: its rank among the peers it
 * knows, by name.  Peers opening at once then start on different
 * replicas (three readers on three peers: one replica each), as they
 * would not from a hash of their names (two of three on one, often).
 */
static size_t
cl_rank(void)
{
	struct peer *p, *self = peer_self();
	size_t k = 0;

	TAILQ_FOREACH(p, &peers, entry)
	if (!p->self && self != NULL && strcmp(p->name, self->name) < 0)
		k++;
	return k;
}

/* The set named name (without the prefix), made if make. */
static struct cl *
cl_get(const char *name, bool make)
{
	struct cl *cl;

	for (size_t i = 0; i < cls.n; i++)
		if (strcmp(cls.v[i]->name, name) == 0)
			return cls.v[i];
	if (!make || cls.n >= PROTO_MAX_EXPORTS || !cl_name_ok(name))
		return NULL;
	cl = xcalloc(1, sizeof *cl);
	cl->name = xstrdup(name);
	xasprintf(&cl->xname, "%s%s", CLUSTER_PREFIX, name);
	cl->st = CL_DOWN;
	cls.v = xreallocarray(cls.v, cls.n + 1, sizeof *cls.v);
	cls.v[cls.n++] = cl;
	return cl;
}

/* The set export export_id of p is a replica of, or NULL. */
static struct cl *
cl_of(const struct peer *p, uint32_t export_id)
{
	const char *name;

	if (p == NULL || export_id >= p->nexports)
		return NULL;
	name = p->exports[export_id].name;
	if (strncmp(name, CLUSTER_PREFIX, sizeof CLUSTER_PREFIX - 1) != 0)
		return NULL;
	return cl_get(name + sizeof CLUSTER_PREFIX - 1, true);
}

/* Whether export export_id of p is a replica. */
bool
cluster_export(const struct peer *p, uint32_t export_id)
{
	return cl_of(p, export_id) != NULL;
}

/* The export id of cl's replica on p, or -1. */
static int64_t
cl_export_on(const struct cl *cl, const struct peer *p)
{
	for (uint32_t i = 0; i < p->nexports; i++)
		if (strcmp(p->exports[i].name, cl->xname) == 0)
			return i;
	return -1;
}

/* What p said of its replica of cl (made empty if new). */
static struct cl_said *
cl_said(struct cl *cl, struct peer *p)
{
	for (size_t i = 0; i < cl->nsaid; i++)
		if (cl->said[i].peer == p)
			return &cl->said[i];
	cl->said = xreallocarray(cl->said, cl->nsaid + 1, sizeof *cl->said);
	memset(&cl->said[cl->nsaid], 0, sizeof *cl->said);
	cl->said[cl->nsaid].peer = p;
	return &cl->said[cl->nsaid++];
}

/* The state of p's replica of cl as we see it now. */
static enum cl_state
cl_state_of(struct cl *cl, struct peer *p)
{
	struct cl_said *s;

	if (p->self)
		return cl->local ? cl->st : CL_DOWN;
	if (p->state != PEER_UP || cl_export_on(cl, p) < 0)
		return CL_DOWN;
	s = cl_said(cl, p);
	if (s->epoch != p->epoch)
		return CL_RESYNC; /* not said on this stream yet */
	return s->st;
}

/* A live replica: its peer, export and state. */
struct cl_rep {
	struct peer *peer;
	uint32_t export_id;
	enum cl_state st;
};

/* The live replicas of cl, by peer name, in *out (freed by the caller). */
static size_t
cl_reps(struct cl *cl, struct cl_rep **out)
{
	struct peer *p;
	size_t n = 0, cap = 4;
	int64_t ex;

	*out = xcalloc(cap, sizeof **out);
	TAILQ_FOREACH(p, &peers, entry)
	{
		enum cl_state st = cl_state_of(cl, p);

		if (st == CL_DOWN || (ex = cl_export_on(cl, p)) < 0)
			continue;
		if (n == cap) {
			cap *= 2;
			*out = xreallocarray(*out, cap, sizeof **out);
		}
		(*out)[n++] = (struct cl_rep){ p, (uint32_t)ex, st };
	}
	return n;
}

/* How many live replicas of cl other than ours are in sync. */
static size_t
cl_others_in_sync(struct cl *cl)
{
	struct cl_rep *r;
	size_t n = cl_reps(cl, &r), k = 0;

	for (size_t i = 0; i < n; i++)
		if (!r[i].peer->self && r[i].st == CL_SYNC)
			k++;
	free(r);
	return k;
}

/* The wall clock in ns: file times are the holders' wall clocks. */
static uint64_t
cl_wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t
cl_time_ns(const struct proto_time *t)
{
	return t->sec < 0 ? 0 : (uint64_t)t->sec * 1000000000ull + t->nsec;
}

/* --- telling the others --- */

static void cl_decide(struct cl *);
static void cl_wait_kick(void);

/* Our CLUSTER flags for cl: our replica's state, and whether alone. */
static uint32_t
cl_flags(const struct cl *cl)
{
	uint32_t f = PROTO_CLUSTER_NONE;

	if (cl->local && cl->st == CL_SYNC)
		f = PROTO_CLUSTER_SYNC;
	else if (cl->local)
		f = PROTO_CLUSTER_RESYNC;
	return f | (cl->local && cl->alone ? CLUSTER_ALONE : 0);
}

/* Take what p says of its replica of cl (flags of a CLUSTER). */
static void
cl_heard(struct cl *cl, struct peer *p, uint64_t flags)
{
	struct cl_said *s = cl_said(cl, p);
	uint64_t st = flags & 3;
	enum cl_state was = cl_state_of(cl, p);

	s->epoch = p->epoch;
	s->st = st == PROTO_CLUSTER_SYNC ? CL_SYNC
	    : st == PROTO_CLUSTER_RESYNC ? CL_RESYNC
					 : CL_DOWN;
	s->alone = (flags & CLUSTER_ALONE) != 0;
	if (was != s->st)
		log_info("cluster %s: the replica of %s is %s", cl->name,
		    log_escape(p->name), cl_state_names[s->st]);
	cl_decide(cl);
	cl_wait_kick();
}

/* A CLUSTER we sent came back: the other's state. */
static void
cl_told_cb(struct call *c)
{
	struct cl *cl = cl_get(c->req.path, false);

	if (c->rep.error != 0)
		log_debug("cluster %s: telling %s: %s", c->req.path,
		    log_escape(c->peer->name), strerror(-c->rep.error));
	if (cl == NULL || c->rep.error != 0)
		return;
	if (c->rep.value > (PROTO_CLUSTER_SYNC | CLUSTER_ALONE))
		return;
	if (cl_export_on(cl, c->peer) >= 0)
		cl_heard(cl, c->peer, c->rep.value);
}

/* Send p our state of cl; desync: tell it a write to its replica failed. */
static void
cl_tell(struct cl *cl, struct peer *p, bool desync)
{
	struct call *c;

	if (p->self || p->state != PEER_UP)
		return;
	c = call_new(p, PROTO_CLUSTER, 0, cl->name, cl_told_cb, NULL);
	c->nohold = true;
	c->req.flags = cl_flags(cl);
	c->req.offset2 = desync ? PROTO_CLUSTER_DESYNC : 0;
	call_send(c);
}

/* Tell every live peer our state of cl. */
static void
cl_tell_all(struct cl *cl)
{
	struct peer *p;

	TAILQ_FOREACH(p, &peers, entry)
	cl_tell(cl, p, false);
}

/* Change our replica's state (told to everyone). */
static void
cl_set_state(struct cl *cl, enum cl_state st)
{
	if (cl->st == st)
		return;
	log_info("cluster %s: this replica is %s", cl->name,
	    cl_state_names[st]);
	cl->st = st;
	cl_tell_all(cl);
	cl_wait_kick();
}

/* A peer's CLUSTER request: what it says; our state is the answer. */
uint64_t
cluster_answer(struct peer *p, const struct proto_req *q)
{
	struct cl *cl = cl_get(q->path, false);

	/* Only sets a peer holds or we hold are kept. */
	for (uint32_t i = 0; cl == NULL && i < p->nexports; i++)
		if (strncmp(p->exports[i].name, CLUSTER_PREFIX,
			sizeof CLUSTER_PREFIX - 1) == 0 &&
		    strcmp(p->exports[i].name + sizeof CLUSTER_PREFIX - 1,
			q->path) == 0)
			cl = cl_get(q->path, true);
	if (cl == NULL || q->flags > (PROTO_CLUSTER_SYNC | CLUSTER_ALONE))
		return PROTO_CLUSTER_NONE;
	if (cl_export_on(cl, p) >= 0)
		cl_heard(cl, p, q->flags);
	if (q->offset2 == PROTO_CLUSTER_DESYNC && cl->local) {
		log_warnx("cluster %s: %s failed a write here: resyncing",
		    cl->name, log_escape(p->name));
		cl->desyncs++;
		if (cl->rs != NULL)
			cl->again = true;
		cl_set_state(cl, CL_RESYNC);
		cl_decide(cl);
	}
	return cl_flags(cl);
}

/* A change failed on p's replica: it is out of sync till it resyncs. */
static void
cl_desync(struct cl *cl, struct peer *p, const char *what, int error)
{
	log_warnx("cluster %s: %s on %s failed (%s): out of sync", cl->name,
	    what, log_escape(p->name), strerror(-error));
	cl->desyncs++;
	if (p->self) {
		if (cl->rs != NULL)
			cl->again = true;
		cl_set_state(cl, CL_RESYNC);
		cl_decide(cl);
		return;
	}
	cl_said(cl, p)->st = CL_RESYNC;
	cl_tell(cl, p, true);
}

/* --- copies: move.c's, keeping the source, CLUSTER_COPIES at once --- */

struct cl_copy {
	struct move_spec sp; /* strings owned */
	void (*cb)(void *, int);
	void *arg;
	struct cl_copy *next;
};

static struct {
	struct cl_copy *head, *tail;
	unsigned running;
} cq;

static void cl_copy_run(void);

static void
cl_copy_done(void *arg, int error)
{
	struct cl_copy *cp = arg;

	cq.running--;
	cp->cb(cp->arg, error);
	free(cp->sp.sdir);
	free(cp->sp.sname);
	free(cp->sp.ddir);
	free(cp->sp.dname);
	free(cp);
	cl_copy_run();
}

static void
cl_copy_run(void)
{
	struct cl_copy *cp;

	while (cq.running < CLUSTER_COPIES && (cp = cq.head) != NULL) {
		cq.head = cp->next;
		if (cq.head == NULL)
			cq.tail = NULL;
		cq.running++;
		move_start(&cp->sp, cl_copy_done, cp);
	}
}

/*
 * Copy the file or symlink rel (mode: its type) of (sp, sx) to
 * drel of (dp, dx), replacing it; cb gets 0 or a negative errno.
 */
static void
cl_copy(struct peer *sp, uint32_t sx, const char *rel, struct peer *dp,
    uint32_t dx, const char *drel, uint32_t mode, void (*cb)(void *, int),
    void *arg)
{
	struct cl_copy *cp = xcalloc(1, sizeof *cp);
	const char *s = strrchr(rel, '/'), *d = strrchr(drel, '/');

	cp->sp.speer = sp;
	cp->sp.sexport = sx;
	cp->sp.dpeer = dp;
	cp->sp.dexport = dx;
	cp->sp.sdir = s ? xstrndup(rel, (size_t)(s - rel)) : xstrdup("");
	cp->sp.sname = xstrdup(s ? s + 1 : rel);
	cp->sp.ddir = d ? xstrndup(drel, (size_t)(d - drel)) : xstrdup("");
	cp->sp.dname = xstrdup(d ? d + 1 : drel);
	cp->sp.attr.mode = mode;
	cp->sp.copy = true;
	cp->cb = cb;
	cp->arg = arg;
	if (cq.tail != NULL)
		cq.tail->next = cp;
	else
		cq.head = cp;
	cq.tail = cp;
	cl_copy_run();
}

/* Copies of one file to several replicas; cb when the last is done. */
struct cl_spread {
	struct cl *cl;
	unsigned pending;
	void (*cb)(void *, int);
	void *arg;
};

struct cl_spread_one {
	struct cl_spread *sp;
	struct peer *dest;
};

static void
cl_spread_done(void *arg, int error)
{
	struct cl_spread_one *one = arg;
	struct cl_spread *sp = one->sp;

	if (error != 0)
		cl_desync(sp->cl, one->dest, "a copy", error);
	free(one);
	if (--sp->pending > 0)
		return;
	if (sp->cb != NULL)
		sp->cb(sp->arg, 0);
	free(sp);
}

/*
 * Copy rel of replica (src, sx) to drel on every other live replica
 * (and on src itself when drel differs); cb (if any) when all are done.
 * Returns how many copies went out (0: cb was not called).
 */
static unsigned
cl_spread(struct cl *cl, struct peer *src, uint32_t sx, const char *rel,
    const char *drel, uint32_t mode, void (*cb)(void *, int), void *arg)
{
	struct cl_spread *sp = xcalloc(1, sizeof *sp);
	struct cl_rep *r;
	size_t n = cl_reps(cl, &r);
	unsigned sent = 0;

	sp->cl = cl;
	sp->cb = cb;
	sp->arg = arg;
	sp->pending = 1; /* till all are out */
	for (size_t i = 0; i < n; i++) {
		struct cl_spread_one *one;

		if (r[i].peer == src && strcmp(rel, drel) == 0)
			continue;
		one = xcalloc(1, sizeof *one);
		one->sp = sp;
		one->dest = r[i].peer;
		sp->pending++;
		sent++;
		cl->copies++;
		cl_copy(src, sx, rel, r[i].peer, r[i].export_id, drel, mode,
		    cl_spread_done, one);
	}
	free(r);
	if (--sp->pending == 0) {
		free(sp);
		return 0;
	}
	return sent;
}

/* --- the view --- */

/*
 * The hits of one name with those of a set's replicas merged: replicas
 * not in sync dropped while one in sync has the name, and one
 * non-directory per set, the first (lowest peer name).  NULL when
 * nothing changes; else a new array and *n its length.
 */
struct hit *
cluster_collapse(const struct hit *hits, size_t *n)
{
	struct cl **of = xcalloc(*n, sizeof *of);
	bool *sync = xcalloc(*n, sizeof *sync);
	struct hit *out = NULL;
	size_t k = 0, any = 0;

	for (size_t i = 0; i < *n; i++) {
		of[i] = cl_of(hits[i].peer, hits[i].export_id);
		if (of[i] != NULL) {
			any++;
			sync[i] = cl_state_of(of[i], hits[i].peer) == CL_SYNC;
		}
	}
	if (any < 1)
		goto done;
	out = xcalloc(*n, sizeof *out);
	for (size_t i = 0; i < *n; i++) {
		bool drop = false;

		for (size_t j = 0; of[i] != NULL && j < *n && !drop; j++) {
			if (j == i || of[j] != of[i])
				continue;
			/* Another replica in sync answers for this one. */
			if (!sync[i] && sync[j])
				drop = true;
			/* One file per set: the first that stays. */
			if (j < i && !S_ISDIR(hits[i].attr.mode) &&
			    !S_ISDIR(hits[j].attr.mode) && sync[j] == sync[i])
				drop = true;
		}
		if (!drop)
			out[k++] = hits[i];
	}
	*n = k;
done:
	free(of);
	free(sync);
	return out;
}

/* A set's entries show the same st_ino from every peer. */
void
cluster_entry(struct entry *e, const char *upath)
{
	struct cl *cl;

	if (e->isdir)
		cl = e->ncopies > 0
		    ? cl_of(e->copies[0].peer, e->copies[0].export_id)
		    : NULL;
	else
		cl = cl_of(e->peer, e->export_id);
	if (cl != NULL)
		e->ino = node_ino_hash(cl->xname, 0,
		    node_ino_hash(upath, 0, 0));
}

/*
 * The copies of a directory just made on replica (peer, export_id): it
 * first, then every other live replica in sync of its set, which the
 * call layer made it on before the answer came (none but it would be
 * left if it went down before the directory is looked up again).  NULL
 * when the export is no set's.
 */
struct copy *
cluster_made_dir(struct peer *peer, uint32_t export_id, size_t *n)
{
	struct cl *cl = cl_of(peer, export_id);
	struct cl_rep *r;
	struct copy *c;
	size_t nr, k = 0;

	if (cl == NULL)
		return NULL;
	nr = cl_reps(cl, &r);
	c = xcalloc(nr + 1, sizeof *c);
	c[k++] = (struct copy){ peer, export_id };
	for (size_t i = 0; i < nr; i++)
		if (r[i].peer != peer && r[i].st == CL_SYNC)
			c[k++] = (struct copy){ r[i].peer, r[i].export_id };
	free(r);
	*n = k;
	return c;
}

/* Whether names in directory node dir are literal (a set's directory). */
bool
cluster_literal(const struct node *dir)
{
	return dir->isdir && dir->ncopies > 0 &&
	    cl_of(dir->copies[0].peer, dir->copies[0].export_id) != NULL;
}

/* The load of a replica for leastload: calls we have out, and its rtt. */
static double
cl_load(struct cl *cl, const struct cl_rep *r)
{
	if (r->peer->self)
		return 0;
	return (1.0 + (double)stream_calls(r->peer->stream)) *
	    (r->peer->rtt_ms > 0.05 ? r->peer->rtt_ms : 0.05) +
	    (double)(cl_said(cl, r->peer)->picks % 4) * 0.001;
}

/* The next turn of cl's round robin for an open with flags. */
static uint64_t
cl_turn(struct cl *cl, uint32_t flags)
{
	return (flags & (O_ACCMODE | O_TRUNC)) == O_RDONLY ? cl->rr++
							   : cl->wrr++;
}

/*
 * A replica of cl for a call of type with flags: 0 and *peer,
 * *export_id for one in sync; CLUSTER_WAIT when none is but one is live
 * (it resyncs, or decides); -EIO when none is live.
 *
 * Round robin starts at our rank among the peers, so that peers that
 * opened as many files for reading each read the next file from a
 * different replica; opens to write, which write every replica anyway,
 * count apart and do not move the readers' turn.
 */
static int
cl_pick(struct cl *cl, uint8_t type, uint32_t flags, struct peer **peer,
    uint32_t *export_id)
{
	struct cl_rep *r, *best = NULL;
	size_t nr, k = 0;

	nr = cl_reps(cl, &r);
	for (size_t i = 0; i < nr; i++)
		if (r[i].st == CL_SYNC)
			r[k++] = r[i];
	if (k == 0) {
		free(r);
		return nr > 0 ? CLUSTER_WAIT : -EIO;
	}
	best = &r[0];
	if (type == PROTO_OPEN) {
		for (size_t i = 0; i < k; i++)
			if (r[i].peer->self)
				best = &r[i];
		if (!best->peer->self && cl->balance == BALANCE_ROUNDROBIN)
			best = &r[(cl_turn(cl, flags) + cl_rank()) % k];
		else if (!best->peer->self)
			for (size_t i = 1; i < k; i++)
				if (cl_load(cl, &r[i]) < cl_load(cl, best))
					best = &r[i];
		if (!best->peer->self)
			cl_said(cl, best->peer)->picks++;
	}
	*peer = best->peer;
	*export_id = best->export_id;
	free(r);
	return 0;
}

/*
 * Where a call of type with flags about file node n goes: 0 and *peer,
 * *export_id for a replica in sync, 1 when n is no set's, -EIO when no
 * replica of its set is live, CLUSTER_WAIT when the live ones are not in
 * sync yet: the call, made for any of them, is handed to cluster_wait().
 */
int
cluster_route(struct node *n, uint8_t type, uint32_t flags, struct peer **peer,
    uint32_t *export_id)
{
	struct cl *cl;
	struct cl_rep *r;
	int rc;

	if (n->isdir || (cl = cl_of(n->peer, n->export_id)) == NULL)
		return 1;
	if ((rc = cl_pick(cl, type, flags, peer, export_id)) != CLUSTER_WAIT)
		return rc;
	(void)cl_reps(cl, &r); /* a live one, for call_new() */
	*peer = r[0].peer;
	*export_id = r[0].export_id;
	free(r);
	return CLUSTER_WAIT;
}

/* --- calls waiting for a replica in sync --- */

/*
 * A call about a replicated file made while no live replica was in
 * sync (one that just came back and decides, or resyncs): sent when
 * one is, failed with EIO when none is live any more or op_timeout
 * passed, so that nothing waits on the set's state for ever.
 */
struct cl_wait {
	struct call *c;
	struct cl *cl;
	uint64_t deadline_ms;
	bool parked; /* call_send() was called: we send it */
};

static struct {
	struct cl_wait *v;
	size_t n;
	struct event *ev; /* runs cl_wait_run() */
} cw;

/* Call c, from fsop_call(), waits for a replica in sync (CLUSTER_WAIT). */
void
cluster_wait(struct call *c)
{
	struct cl *cl = cl_of(c->peer, c->req.export_id);

	if (cl == NULL)
		fatalx("cluster: a call to wait on no set");
	cw.v = xreallocarray(cw.v, cw.n + 1, sizeof *cw.v);
	cw.v[cw.n++] = (struct cl_wait){ .c = c,
		.cl = cl,
		.deadline_ms = loop_now_ms() +
		    (uint64_t)(conf->op_timeout * 1000) };
}

/*
 * Try waiting call i: sent (or failed) and taken off the list (true),
 * or it waits on.  Only once it is parked: before, its caller still
 * fills it in.
 */
static bool
cl_wait_try(size_t i, uint64_t now)
{
	struct cl_wait w = cw.v[i];
	struct peer *p;
	uint32_t x;
	int rc;

	rc = cl_pick(w.cl, w.c->req.type, w.c->req.flags, &p, &x);
	if (rc == CLUSTER_WAIT && now < w.deadline_ms)
		return false;
	cw.v[i] = cw.v[--cw.n];
	if (rc == 0) {
		w.c->peer = p;
		w.c->req.export_id = x;
		call_send(w.c); /* not on the list: it goes */
		return true;
	}
	log_debug("cluster %s: %s waited for a replica in sync: %s", w.cl->name,
	    proto_type_name(w.c->req.type),
	    rc < 0 ? "none is live" : "op_timeout passed");
	memset(&w.c->rep, 0, sizeof w.c->rep);
	w.c->rep.type = w.c->req.type;
	w.c->rep.id = w.c->req.id;
	w.c->rep.error = -EIO;
	call_resume(w.c); /* never sent: freed after its callback */
	return true;
}

/* Run cl_wait_run() in ms (0: from the loop, at once). */
static void
cl_wait_arm(uint64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000),
		(suseconds_t)(ms % 1000) * 1000 };

	evtimer_add(cw.ev, &tv);
}

/* The states changed, or a deadline passed: send or fail what waits. */
static void
cl_wait_run(evutil_socket_t fd, short what, void *arg)
{
	uint64_t now = loop_now_ms(), next = UINT64_MAX;

	(void)fd;
	(void)what;
	(void)arg;
	for (size_t i = 0; i < cw.n;)
		if (!cw.v[i].parked || !cl_wait_try(i, now))
			i++;
	for (size_t i = 0; i < cw.n; i++)
		if (cw.v[i].parked && cw.v[i].deadline_ms < next)
			next = cw.v[i].deadline_ms;
	if (next != UINT64_MAX)
		cl_wait_arm(next > now ? next - now : 0);
}

/* A replica's state changed: the calls waiting may go (from the loop). */
static void
cl_wait_kick(void)
{
	if (cw.n > 0)
		cl_wait_arm(0);
}

/* --- write-behind: each WRITE frame to every replica --- */

/*
 * A writable handle of a replica has a twin on every other live replica
 * (opened with it, cl_hold()), and each WRITE frame of the write-back
 * goes to the twins as it goes to the handle, its bytes taken from the
 * frame, not read back; the frame's answer waits for theirs, so a
 * write-back is done when every replica has it.  A flush or fsync then
 * only syncs the twins (fsync) and gives them the handle's times.  A
 * replica that may lack a frame (no twin, one opened later, a write of
 * it failed) gets the file copied whole instead, as before.
 */

/* A writable handle's twin on another replica. */
struct cl_twin {
	struct peer *peer;
	uint64_t epoch; /* its stream: a restarted peer's fh are others */
	uint32_t export_id;
	uint64_t fh;
	uint64_t since; /* cls.seq when it opened */
	bool failed;    /* a write failed: it lacks bytes */
};

/* The twins of handle fh of (peer, epoch), a replica. */
struct cl_mirror {
	struct cl *cl;
	struct peer *peer;
	uint64_t epoch;
	uint64_t fh;
	uint64_t node;    /* its node's id once written through; 0: unknown */
	char *rel;        /* the file's path in the replicas; owned */
	unsigned opening; /* twins' opens out */
	struct cl_twin *tw;
	size_t ntw;
	struct peer *was; /* the handle's before its replica died, or NULL */
	uint64_t was_epoch, was_fh;
	struct cl_mirror *next;
};

/* A node written since its last flush. */
struct cl_dirty {
	uint64_t node;
	uint64_t first;       /* cls.seq at its first write */
	uint64_t unmapped;    /* cls.unmapped then */
	struct peer **missed; /* live replicas a frame did not reach */
	size_t nmissed;
	bool flushing; /* a flush took it: later writes make another */
	struct cl_dirty *next;
};

/* A WRITE frame whose answer waits for the twins' writes. */
struct cl_wfan {
	struct call *orig; /* compared with, never followed till claimed */
	uint64_t id;       /* orig's request id: the pointer may be reused */
	struct cl *cl;
	uint64_t node;
	struct peer *peer; /* the handle's: (peer, epoch, fh) */
	uint64_t epoch, fh;
	unsigned pending;
	bool held;
	bool rescue;      /* orig failed with its replica: a twin may answer */
	struct peer **ok; /* the twins that wrote it */
	size_t nok;
	uint64_t done_ms; /* unclaimed since (orig failed) */
	struct cl_wfan *next;
};

static struct {
	struct cl_mirror *mirrors;
	struct cl_dirty *dirty;
	struct cl_wfan *wfans;
	uint64_t seq;
	uint64_t unmapped; /* frames to a replica through no known handle */
} cm;

static bool cl_fo_error(int error);

static struct cl_mirror *
cl_mirror_find(const struct peer *p, uint64_t epoch, uint64_t fh)
{
	struct cl_mirror *m;

	for (m = cm.mirrors; m != NULL; m = m->next)
		if (m->peer == p && m->epoch == epoch && m->fh == fh)
			return m;
	return NULL;
}

/* A writable open of a replica answered: its twins are noted. */
static struct cl_mirror *
cl_mirror_new(struct cl *cl, const struct call *c)
{
	struct cl_mirror *m = xcalloc(1, sizeof *m);

	m->cl = cl;
	m->peer = c->peer;
	m->epoch = c->peer->epoch;
	m->fh = c->rep.fh;
	m->rel = c->req.type == PROTO_CREATE
	    ? xpathjoin(c->req.path, c->req.name)
	    : xstrdup(c->req.path);
	m->next = cm.mirrors;
	cm.mirrors = m;
	return m;
}

/* A twin's OPEN or CREATE (call c) answered. */
static void
cl_mirror_twin(struct cl_mirror *m, const struct call *c)
{
	m->tw = xreallocarray(m->tw, m->ntw + 1, sizeof *m->tw);
	m->tw[m->ntw++] = (struct cl_twin){ c->peer, c->peer->epoch,
		c->req.export_id, c->rep.fh, ++cm.seq, false };
}

/* Whether twin t can still be written: its peer's stream is the same. */
static bool
cl_twin_live(const struct cl_twin *t)
{
	return !t->failed && t->peer->state == PEER_UP &&
	    t->peer->epoch == t->epoch;
}

/* The twin of m on p, if it has every byte written since seq first. */
static struct cl_twin *
cl_twin_ok(struct cl_mirror *m, const struct peer *p, uint64_t first)
{
	for (size_t i = 0; i < m->ntw; i++)
		if (m->tw[i].peer == p)
			return cl_twin_live(&m->tw[i]) && m->tw[i].since < first
			    ? &m->tw[i]
			    : NULL;
	return NULL;
}

/* p did not get a frame of node: its next flush copies the file there. */
static void
cl_dirty_miss(uint64_t node, struct peer *p)
{
	for (struct cl_dirty *d = cm.dirty; d != NULL; d = d->next) {
		size_t i;

		if (d->node != node)
			continue;
		for (i = 0; i < d->nmissed && d->missed[i] != p; i++)
			;
		if (i < d->nmissed)
			continue;
		d->missed = xreallocarray(d->missed, d->nmissed + 1,
		    sizeof *d->missed);
		d->missed[d->nmissed++] = p;
	}
}

/* The mirror of handle (p, epoch, fh), or of the one it was before. */
static struct cl_mirror *
cl_mirror_of(const struct peer *p, uint64_t epoch, uint64_t fh)
{
	struct cl_mirror *m;

	for (m = cm.mirrors; m != NULL; m = m->next)
		if ((m->peer == p && m->epoch == epoch && m->fh == fh) ||
		    (m->was == p && m->was_epoch == epoch && m->was_fh == fh))
			return m;
	return NULL;
}

/*
 * The replica of handle h (m's) died while h was open for writing: a
 * twin that has every byte written since the file was last flushed
 * becomes the handle, and the others stay its twins.  Whether one did.
 */
static bool
cl_promote(struct cl_mirror *m, struct handle *h)
{
	uint64_t first = UINT64_MAX;
	struct cl_twin t;
	size_t i;

	for (struct cl_dirty *d = cm.dirty; d != NULL; d = d->next)
		if (m->node != 0 && d->node == m->node && d->first < first)
			first = d->first;
	for (i = 0; i < m->ntw; i++)
		if (cl_twin_live(&m->tw[i]) && m->tw[i].since < first)
			break;
	if (i == m->ntw || m->opening != 0)
		return false;
	t = m->tw[i];
	log_warnx("cluster %s: %s died with %s open for writing: going on on "
		  "%s",
	    m->cl->name, log_escape(m->peer->name), log_escape(m->rel),
	    log_escape(t.peer->name));
	m->cl->failovers++;
	m->was = m->peer;
	m->was_epoch = m->epoch;
	m->was_fh = m->fh;
	m->peer = t.peer;
	m->epoch = t.epoch;
	m->fh = t.fh;
	memmove(&m->tw[i], &m->tw[i + 1], (m->ntw - i - 1) * sizeof *m->tw);
	m->ntw--;
	h->peer = t.peer;
	h->epoch = t.epoch;
	h->export_id = t.export_id;
	h->fh = t.fh;
	return true;
}

/* Promote a twin of m if its handle's replica is gone. */
static bool
cl_mirror_failover(struct cl_mirror *m)
{
	struct node *n;
	struct handle *h;

	if (m->peer->state == PEER_UP && m->peer->epoch == m->epoch)
		return false;
	if (m->node == 0 || (n = node_get(m->node)) == NULL)
		return false;
	TAILQ_FOREACH(h, &n->handles, nentry)
	if (h->peer == m->peer && h->epoch == m->epoch && h->fh == m->fh)
		return cl_promote(m, h);
	return false;
}

/*
 * Handle h, open for writing, lost its replica: a twin takes its place
 * if one can (io.c asks before it fails a write).  Whether one did.
 */
bool
cluster_write_failover(struct handle *h)
{
	struct cl_mirror *m = cl_mirror_find(h->peer, h->epoch, h->fh);

	if (m == NULL || (h->flags & O_ACCMODE) == O_RDONLY ||
	    (h->peer->state == PEER_UP && h->epoch == h->peer->epoch))
		return false;
	return cl_promote(m, h);
}

/*
 * A frame (c) through a handle whose replica died: it is written if the
 * twin that took the handle's place wrote it.
 */
static void
cl_wfan_rescue(struct cl_wfan *wf, struct call *c)
{
	struct cl_mirror *m;

	if (!wf->rescue || c->rep.error == 0 ||
	    (m = cl_mirror_of(wf->peer, wf->epoch, wf->fh)) == NULL ||
	    m->peer == wf->peer)
		return;
	for (size_t i = 0; i < wf->nok; i++)
		if (wf->ok[i] == m->peer) {
			c->rep.error = 0;
			c->rep.value = c->req.type == PROTO_WRITE
			    ? c->req.datalen
			    : 0;
			c->rep.has_attr = false;
			return;
		}
}

/* Release the twins of m, free it. */
static void
cl_mirror_free(struct cl_mirror *m)
{
	struct cl_mirror **pp;

	for (pp = &cm.mirrors; *pp != m; pp = &(*pp)->next)
		;
	*pp = m->next;
	for (size_t i = 0; i < m->ntw; i++) {
		struct call *c;

		if (m->tw[i].peer->state != PEER_UP ||
		    m->tw[i].peer->epoch != m->tw[i].epoch)
			continue;
		c = call_new(m->tw[i].peer, PROTO_RELEASE, m->tw[i].export_id,
		    NULL, NULL, NULL);
		c->nohold = true;
		c->req.fh = m->tw[i].fh;
		call_send(c);
	}
	free(m->tw);
	free(m->rel);
	free(m);
}

static void
cl_wfan_free(struct cl_wfan *wf)
{
	struct cl_wfan **pp;

	for (pp = &cm.wfans; *pp != wf; pp = &(*pp)->next)
		;
	*pp = wf->next;
	free(wf->ok);
	free(wf);
}

/* One twin's WRITE or FSYNC came back. */
static void
cl_twin_write_cb(struct call *c)
{
	struct cl_wfan *wf = c->arg;
	int err = c->rep.error;
	struct cl_mirror *m;

	if (err == 0 && c->req.type == PROTO_WRITE &&
	    c->rep.value != c->req.datalen)
		err = -ENOSPC; /* a short write: the disk is full */
	if (err != 0) {
		if ((m = cl_mirror_find(wf->peer, wf->epoch, wf->fh)) != NULL)
			for (size_t i = 0; i < m->ntw; i++)
				if (m->tw[i].peer == c->peer)
					m->tw[i].failed = true;
		cl_dirty_miss(wf->node, c->peer);
		if (c->peer->state == PEER_UP)
			cl_desync(wf->cl, c->peer, proto_type_name(c->req.type),
			    err);
	} else {
		wf->ok = xreallocarray(wf->ok, wf->nok + 1, sizeof *wf->ok);
		wf->ok[wf->nok++] = c->peer;
	}
	if (--wf->pending > 0)
		return;
	if (wf->held) {
		struct call *o = wf->orig;

		cl_wfan_rescue(wf, o);
		cl_wfan_free(wf);
		call_resume(o);
		return;
	}
	wf->done_ms = loop_now_ms();
}

/*
 * The send hook's part: a WRITE frame to a replica's handle goes to its
 * twins too, with the frame's bytes (still there: call_send() has not
 * encoded them yet); an FSYNC too, so that the replicas sync at once.
 */
static void
cl_mirror_write(struct call *c)
{
	struct cl_mirror *m = cl_mirror_find(c->peer, c->peer->epoch,
	    c->req.fh);
	struct cl_wfan *wf;
	struct cl_rep *r;
	size_t n;

	if (c->req.type == PROTO_WRITE && (m == NULL || m->node == 0)) {
		if (cl_of(c->peer, c->req.export_id) != NULL)
			cm.unmapped++; /* whose bytes, unknown: copy all */
		return;
	}
	if (m == NULL)
		return; /* an FSYNC of a directory, or of a reader */
	n = c->req.type == PROTO_WRITE ? cl_reps(m->cl, &r) : 0;
	for (struct cl_dirty *d = cm.dirty; n > 0 && d != NULL; d = d->next)
		for (size_t i = 0; d->node == m->node && i < n; i++)
			if (r[i].peer != m->peer &&
			    cl_twin_ok(m, r[i].peer, d->first) == NULL)
				cl_dirty_miss(m->node, r[i].peer);
	if (n > 0)
		free(r);
	wf = xcalloc(1, sizeof *wf);
	wf->orig = c;
	wf->id = c->req.id;
	wf->cl = m->cl;
	wf->node = m->node;
	wf->peer = m->peer;
	wf->epoch = m->epoch;
	wf->fh = m->fh;
	for (size_t i = 0; i < m->ntw; i++) {
		struct cl_twin *t = &m->tw[i];
		struct call *w;

		if (!cl_twin_live(t))
			continue;
		w = call_new(t->peer, c->req.type, t->export_id, NULL,
		    cl_twin_write_cb, wf);
		w->nohold = true;
		w->req.fh = t->fh;
		w->req.offset = c->req.offset;
		w->req.flags = c->req.flags;
		wf->pending++;
		if (c->req.type == PROTO_FSYNC) {
			call_send(w);
			continue;
		}
		/*
		 * A peer's stream encodes the frame as it is sent: it may
		 * share c's bytes, with no buffer made and faulted in per
		 * frame (c itself goes after, and its stream may take
		 * them then: call_frame_data()).  Our own worker reads it
		 * later: a copy.
		 */
		if (t->peer->self)
			call_set_data(w, c->req.data, c->req.datalen);
		else {
			w->req.data = c->req.data;
			w->req.datalen = c->req.datalen;
		}
		m->cl->mirrored += c->req.datalen;
		call_send(w);
		if (!t->peer->self) /* encoded, or failed: not read again */
			w->req.data = NULL;
	}
	if (wf->pending == 0) {
		free(wf);
		return;
	}
	wf->next = cm.wfans;
	cm.wfans = wf;
}

/* The answer hook's part: a WRITE answer waits for its twins'. */
static bool
cl_mirror_answer(struct call *c)
{
	struct cl_wfan *wf;

	for (wf = cm.wfans; wf != NULL; wf = wf->next)
		if (wf->orig == c && wf->id == c->req.id && !wf->held)
			break;
	if (wf == NULL)
		return false;
	if (c->rep.error != 0 && cl_fo_error(c->rep.error) &&
	    !(wf->peer->state == PEER_UP && wf->peer->epoch == wf->epoch)) {
		struct cl_mirror *m = cl_mirror_find(wf->peer, wf->epoch,
		    wf->fh);

		if (m != NULL)
			(void)cl_mirror_failover(m);
		wf->rescue = true;
	}
	if (wf->pending == 0) {
		cl_wfan_rescue(wf, c);
		cl_wfan_free(wf);
		return false;
	}
	wf->held = true;
	return true;
}

/* The send hook's part: a RELEASE of a handle releases its twins. */
static void
cl_mirror_release(const struct call *c)
{
	struct cl_mirror *m = cl_mirror_find(c->peer, c->peer->epoch,
	    c->req.fh);

	if (m != NULL && m->opening == 0)
		cl_mirror_free(m);
}

/*
 * Every tick: twins of handles whose stream is gone are released, and
 * write fans whose frame failed (never claimed) are forgotten.
 */
static void
cl_mirror_tick(uint64_t now)
{
	struct cl_mirror *m, *mnext;
	struct cl_wfan *wf, *wnext;

	for (m = cm.mirrors; m != NULL; m = mnext) {
		mnext = m->next;
		if (m->opening != 0 ||
		    (m->peer->state == PEER_UP && m->peer->epoch == m->epoch))
			continue;
		/*
		 * The handle's replica died mid-write: the frames it had
		 * out may have reached one twin and not another.  The
		 * first live twin's file goes to the other replicas.
		 */
		for (size_t i = 0; m->node != 0 && i < m->ntw; i++) {
			if (!cl_twin_live(&m->tw[i]))
				continue;
			log_warnx("cluster %s: %s died with %s open for "
				  "writing: copied from %s",
			    m->cl->name, log_escape(m->peer->name),
			    log_escape(m->rel),
			    log_escape(m->tw[i].peer->name));
			(void)cl_spread(m->cl, m->tw[i].peer,
			    m->tw[i].export_id, m->rel, m->rel, S_IFREG, NULL,
			    NULL);
			break;
		}
		cl_mirror_free(m);
	}
	for (wf = cm.wfans; wf != NULL; wf = wnext) {
		wnext = wf->next;
		if (!wf->held && wf->pending == 0 &&
		    now > wf->done_ms + 2 * (uint64_t)(conf->op_timeout * 1000))
			cl_wfan_free(wf);
	}
}

/* A file was written through a handle: its next flush sees to it. */
void
cluster_wrote(struct node *n)
{
	struct cl_dirty *d;
	struct handle *h;

	if (n->isdir || cl_of(n->peer, n->export_id) == NULL)
		return;
	TAILQ_FOREACH(h, &n->handles, nentry)
	{
		struct cl_mirror *m = cl_mirror_find(h->peer, h->epoch, h->fh);

		if (m != NULL)
			m->node = n->id;
	}
	for (d = cm.dirty; d != NULL; d = d->next)
		if (d->node == n->id && !d->flushing)
			return;
	d = xcalloc(1, sizeof *d);
	d->node = n->id;
	d->first = ++cm.seq;
	d->unmapped = cm.unmapped;
	d->next = cm.dirty;
	cm.dirty = d;
}

static void
cl_dirty_free(struct cl_dirty *d)
{
	struct cl_dirty **pp;

	for (pp = &cm.dirty; *pp != d; pp = &(*pp)->next)
		;
	*pp = d->next;
	free(d->missed);
	free(d);
}

/*
 * The twin on p of a handle of d's node that has every byte written
 * since d began, or NULL: p gets a copy.
 */
static struct cl_twin *
cl_dirty_twin(const struct cl_dirty *d, const struct peer *p)
{
	struct cl_mirror *m;
	struct cl_twin *t;

	if (d->unmapped != cm.unmapped)
		return NULL;
	for (size_t i = 0; i < d->nmissed; i++)
		if (d->missed[i] == p)
			return NULL;
	for (m = cm.mirrors; m != NULL; m = m->next)
		if (m->node == d->node && m->peer->epoch == m->epoch &&
		    (t = cl_twin_ok(m, p, d->first)) != NULL)
			return t;
	return NULL;
}

/* A flush or fsync whose file is then seen to on the other replicas. */
struct cl_flush {
	io_done_cb cb;
	void *arg;
	struct cl *cl;
	struct peer *src;
	uint32_t sx;
	uint64_t fh;
	bool sync;
	char *rel;
	struct cl_dirty *d;
	int error;
	size_t len;
	unsigned pending;       /* the copies, the twins' phases, the first */
	unsigned phase;         /* first phase: the STAT and the FSYNCs out */
	struct proto_attr attr; /* the handle's, for the twins' times */
	bool have_attr;
	struct cl_flush_twin {
		struct peer *peer;
		uint32_t export_id;
		uint64_t fh;
		bool synced; /* the handle's FSYNC went to its twin there */
	} * tw;
	size_t ntw;
};

static void
cl_flush_step(struct cl_flush *fl)
{
	if (--fl->pending > 0)
		return;
	fl->cb(fl->arg, fl->error, NULL, fl->len);
	cl_dirty_free(fl->d);
	free(fl->tw);
	free(fl->rel);
	free(fl);
}

static void
cl_flush_copied(void *arg, int error)
{
	(void)error; /* cl_spread_done() marked what failed */
	cl_flush_step(arg);
}

/* A twin's SETATTR (its times) came back. */
static void
cl_flush_timed(struct call *c)
{
	struct cl_flush *fl = c->arg;

	if (c->rep.error != 0 && c->peer->state == PEER_UP)
		cl_desync(fl->cl, c->peer, "a setattr", c->rep.error);
	cl_flush_step(fl);
}

/* The twins have the bytes (and fsync'd them): now the times. */
static void
cl_flush_times(struct cl_flush *fl)
{
	for (size_t i = 0; i < fl->ntw; i++) {
		struct call *c;

		if (!fl->have_attr) {
			cl_desync(fl->cl, fl->tw[i].peer, "a stat", -EIO);
			continue;
		}
		c = call_new(fl->tw[i].peer, PROTO_SETATTR, fl->tw[i].export_id,
		    NULL, cl_flush_timed, fl);
		c->nohold = true;
		c->req.fh = fl->tw[i].fh;
		c->req.valid = PROTO_SET_ATIME | PROTO_SET_MTIME;
		c->req.atime = fl->attr.atime;
		c->req.mtime = fl->attr.mtime;
		fl->pending++;
		call_send(c);
	}
}

/* The handle's STAT or a twin's FSYNC came back. */
static void
cl_flush_synced(struct call *c)
{
	struct cl_flush *fl = c->arg;

	if (c->req.type == PROTO_STAT) {
		fl->have_attr = c->rep.error == 0;
		fl->attr = c->rep.attr;
	} else if (c->rep.error != 0 && c->peer->state == PEER_UP) {
		cl_desync(fl->cl, c->peer, "an fsync", c->rep.error);
		for (size_t i = 0; i < fl->ntw; i++)
			if (fl->tw[i].peer == c->peer)
				fl->tw[i] = fl->tw[--fl->ntw];
	}
	if (--fl->phase > 0)
		return;
	cl_flush_times(fl);
	cl_flush_step(fl); /* the first phase's */
}

/*
 * The file is on its replica: the other replicas with every frame
 * (twins) are synced and given its times, the rest get a copy.  After
 * a failed write-back every other replica gets a copy: its twin may
 * have bytes the handle's replica refused.
 */
static void
cl_flushed(void *arg, int error, const void *data, size_t len)
{
	struct cl_flush *fl = arg;
	struct cl_mirror *hm;
	struct cl_rep *r;
	struct call *c;
	size_t n;

	(void)data;
	fl->len = len;
	fl->error = error;
	fl->pending = 1; /* till the copies and the phase are out */
	if (fl->src->state != PEER_UP) {
		cl_flush_step(fl);
		return;
	}
	hm = cl_mirror_find(fl->src, fl->src->epoch, fl->fh);
	n = cl_reps(fl->cl, &r);
	fl->tw = xcalloc(n, sizeof *fl->tw);
	for (size_t i = 0; i < n; i++) {
		struct cl_spread_one *one;
		struct cl_twin *t;

		if (r[i].peer == fl->src)
			continue;
		if (error == 0 &&
		    (t = cl_dirty_twin(fl->d, r[i].peer)) != NULL) {
			fl->tw[fl->ntw++] = (struct cl_flush_twin){ t->peer,
				t->export_id, t->fh,
				hm != NULL &&
				    cl_twin_ok(hm, t->peer, UINT64_MAX) };
			continue;
		}
		one = xcalloc(1, sizeof *one);
		one->sp = xcalloc(1, sizeof *one->sp);
		one->sp->cl = fl->cl;
		one->sp->pending = 1;
		one->sp->cb = cl_flush_copied;
		one->sp->arg = fl;
		one->dest = r[i].peer;
		fl->pending++;
		fl->cl->copies++;
		cl_copy(fl->src, fl->sx, fl->rel, r[i].peer, r[i].export_id,
		    fl->rel, S_IFREG, cl_spread_done, one);
	}
	free(r);
	if (fl->ntw == 0) {
		cl_flush_step(fl);
		return;
	}
	/*
	 * First phase: the handle's times, and the fsyncs of the twins
	 * the handle's FSYNC did not reach (the send hook's).
	 */
	fl->pending++;
	fl->phase = 1;
	c = call_new(fl->src, PROTO_STAT, fl->sx, NULL, cl_flush_synced, fl);
	c->nohold = true;
	c->req.fh = fl->fh;
	call_send(c);
	for (size_t i = 0; fl->sync && i < fl->ntw; i++) {
		if (fl->tw[i].synced)
			continue;
		fl->phase++;
		c = call_new(fl->tw[i].peer, PROTO_FSYNC, fl->tw[i].export_id,
		    NULL, cl_flush_synced, fl);
		c->nohold = true;
		c->req.fh = fl->tw[i].fh;
		call_send(c);
	}
	cl_flush_step(fl);
}

/*
 * Before a flush or fsync (sync) through h: if its file was written
 * since, *cb and *arg become ours, which see that every other live
 * replica has it before they call the caller's.
 */
void
cluster_flush_wrap(struct handle *h, bool sync, io_done_cb *cb, void **arg)
{
	struct cl_flush *fl;
	struct cl_dirty *d;
	struct cl *cl;
	char *upath;

	/*
	 * Only a handle that writes: a reader's may be on another replica
	 * (balanced), which does not have the bytes written back yet.
	 */
	if ((h->flags & O_ACCMODE) == O_RDONLY)
		return;
	for (d = cm.dirty; d != NULL; d = d->next)
		if (d->node == h->node->id && !d->flushing)
			break;
	if (d == NULL || (cl = cl_of(h->peer, h->export_id)) == NULL)
		return;
	fl = xcalloc(1, sizeof *fl);
	upath = node_path(h->node);
	fl->rel = merge_relpath(h->peer->exports[h->export_id].at, upath);
	free(upath);
	if (fl->rel == NULL) {
		free(fl);
		return;
	}
	d->flushing = true;
	fl->d = d;
	fl->cb = *cb;
	fl->arg = *arg;
	fl->cl = cl;
	fl->src = h->peer;
	fl->sx = h->export_id;
	fl->fh = h->fh;
	fl->sync = sync;
	*cb = cl_flushed;
	*arg = fl;
}

/* The call layer's send hook: a call that waits is parked, not sent. */
static bool
cl_send_hold(struct call *c)
{
	size_t i;

	if ((c->req.type == PROTO_WRITE || c->req.type == PROTO_FSYNC) &&
	    !c->nohold)
		cl_mirror_write(c);
	else if (c->req.type == PROTO_RELEASE)
		cl_mirror_release(c);
	for (i = 0; i < cw.n; i++)
		if (cw.v[i].c == c)
			break;
	if (i == cw.n)
		return false;
	/* In sync meanwhile: it goes now, after all. */
	if (cl_pick(cw.v[i].cl, c->req.type, c->req.flags, &c->peer,
		&c->req.export_id) == 0) {
		cw.v[i] = cw.v[--cw.n];
		return false;
	}
	log_debug("cluster %s: %s waits for a replica in sync",
	    cw.v[i].cl->name, proto_type_name(c->req.type));
	cw.v[i].parked = true;
	cl_wait_arm(0); /* its deadline is counted from there on */
	return true;
}

/* --- failover --- */

struct cl_fo_wait {
	void (*cb)(void *, int);
	void *arg;
	int error;
	struct event *ev;
};

/* A failover of node n: its handles reopened on another replica. */
struct cl_fo {
	struct node *n; /* holds a ref */
	unsigned pending;
	int error;
	struct cl_fo_wait *w;
	size_t nw;
	struct cl_fo *next;
};

static struct cl_fo *fos;

static void
cl_fo_fire(evutil_socket_t fd, short what, void *arg)
{
	struct cl_fo_wait *w = arg;

	(void)fd;
	(void)what;
	event_free(w->ev);
	w->cb(w->arg, w->error);
	free(w);
}

/* Answer a waiter from the loop, never from inside the call that asks. */
static void
cl_fo_later(void (*cb)(void *, int), void *arg, int error)
{
	struct cl_fo_wait *w = xcalloc(1, sizeof *w);
	struct timeval tv = { 0, 0 };

	w->cb = cb;
	w->arg = arg;
	w->error = error;
	w->ev = evtimer_new(loop_base, cl_fo_fire, w);
	if (w->ev == NULL)
		fatalx("cluster: evtimer_new failed");
	evtimer_add(w->ev, &tv);
}

/* The failover of fo is over: tell who waits. */
static void
cl_fo_end(struct cl_fo *fo)
{
	struct cl_fo **pp;

	for (pp = &fos; *pp != fo; pp = &(*pp)->next)
		;
	*pp = fo->next;
	for (size_t i = 0; i < fo->nw; i++)
		cl_fo_later(fo->w[i].cb, fo->w[i].arg, fo->error);
	node_unref(fo->n);
	free(fo->w);
	free(fo);
}

/* A handle's reopen. */
struct cl_reopen {
	struct cl_fo *fo;
	struct handle *h;
	struct peer *was;
};

static void
cl_reopen_cb(struct call *c)
{
	struct cl_reopen *ro = c->arg;
	struct cl_fo *fo = ro->fo;
	struct handle *h;

	TAILQ_FOREACH(h, &fo->n->handles, nentry)
	if (h == ro->h && h->peer == ro->was)
		break;
	if (c->rep.error != 0) {
		if (fo->error == 0)
			fo->error = c->rep.error;
	} else if (h == NULL) {
		/* Closed meanwhile: nobody needs the new handle. */
		struct call *r = call_new(c->peer, PROTO_RELEASE,
		    c->req.export_id, NULL, NULL, NULL);

		r->req.fh = c->rep.fh;
		call_send(r);
	} else {
		h->peer = c->peer;
		h->epoch = c->peer->epoch;
		h->export_id = c->req.export_id;
		h->fh = c->rep.fh;
	}
	free(ro);
	if (--fo->pending == 0)
		cl_fo_end(fo);
}

/* Whether error means the replica is gone, not the file wrong. */
static bool
cl_fo_error(int error)
{
	return error == -EIO || error == -ETIMEDOUT || error == -ECONNRESET ||
	    error == -EPIPE || error == -ENOTCONN || error == -EBADF ||
	    error == -ESHUTDOWN || error == -ECONNABORTED;
}

/*
 * Whether call c, by the handle of a replica, failed because the replica
 * is gone (its caller asks another by path), not because of the file.
 */
bool
cluster_gone(const struct call *c)
{
	return c->req.fh != 0 && cl_fo_error(c->rep.error) &&
	    cl_of(c->peer, c->req.export_id) != NULL;
}

/*
 * A read of file node n on replica failed failed with error: reopen
 * its handles on that replica (and on replicas gone) on another in
 * sync.  0: cb (arg, 0 or the error) runs later, from the loop, once
 * the handles moved; -1: n is no set's, the error is not one of a
 * replica gone, or no other replica is in sync (the read fails).
 */
int
cluster_failover(struct node *n, struct peer *failed, int error,
    void (*cb)(void *, int), void *arg)
{
	struct cl *cl;
	struct cl_fo *fo;
	struct cl_rep *r, *to = NULL;
	struct handle *h;
	size_t nr, k = 0;
	char *upath, *rel;

	if (n->isdir || !cl_fo_error(error) ||
	    (cl = cl_of(n->peer, n->export_id)) == NULL) {
		log_debug("cluster: no failover: %s, %s",
		    n->isdir ? "dir" : "file", strerror(-error));
		return -1;
	}
	for (fo = fos; fo != NULL; fo = fo->next)
		if (fo->n == n)
			break;
	if (fo != NULL) {
		fo->w = xreallocarray(fo->w, fo->nw + 1, sizeof *fo->w);
		fo->w[fo->nw++] = (struct cl_fo_wait){ .cb = cb, .arg = arg };
		return 0;
	}
	nr = cl_reps(cl, &r);
	for (size_t i = 0; i < nr; i++)
		if (r[i].st == CL_SYNC && r[i].peer != failed)
			r[k++] = r[i];
	if (k == 0) {
		log_debug("cluster %s: no failover: no replica", cl->name);
		free(r);
		return -1;
	}
	to = &r[cl->rr++ % k];
	for (size_t i = 0; i < k; i++)
		if (r[i].peer->self)
			to = &r[i];
	log_info("cluster %s: %s failed a read (%s): going on on %s", cl->name,
	    log_escape(failed != NULL ? failed->name : "?"), strerror(-error),
	    log_escape(to->peer->name));
	cl->failovers++;
	fo = xcalloc(1, sizeof *fo);
	fo->n = n;
	node_ref(n);
	fo->w = xcalloc(1, sizeof *fo->w);
	fo->w[0] = (struct cl_fo_wait){ .cb = cb, .arg = arg };
	fo->nw = 1;
	fo->pending = 1;
	fo->next = fos;
	fos = fo;
	upath = node_path(n);
	rel = merge_relpath(to->peer->exports[to->export_id].at, upath);
	free(upath);
	TAILQ_FOREACH(h, &n->handles, nentry)
	{
		struct cl_reopen *ro;
		struct call *c;

		if (h->peer != failed && h->peer->state == PEER_UP &&
		    h->epoch == h->peer->epoch)
			continue;
		if (rel == NULL) {
			fo->error = -EIO; /* not under the replica's at */
			break;
		}
		ro = xcalloc(1, sizeof *ro);
		ro->fo = fo;
		ro->h = h;
		ro->was = h->peer;
		c = call_new(to->peer, PROTO_OPEN, to->export_id, rel,
		    cl_reopen_cb, ro);
		c->nohold = true;
		c->req.flags = (uint32_t)(h->flags &
		    ~(O_TRUNC | O_CREAT | O_EXCL));
		fo->pending++;
		call_send(c);
	}
	free(rel);
	free(r);
	if (--fo->pending == 0)
		cl_fo_end(fo);
	return 0;
}

/* --- writes: changes repeated on every replica --- */

/* A change held until the other replicas have it too. */
struct cl_fan {
	struct call *orig;
	struct cl *cl;
	unsigned pending;
	struct cl_mirror *mir; /* a writable open's: twins to note */
};

static void
cl_fan_step(struct cl_fan *fan)
{
	if (--fan->pending > 0)
		return;
	call_resume(fan->orig);
	free(fan);
}

/* An answer of a repeated change. */
static void
cl_fan_cb(struct call *c)
{
	struct cl_fan *fan = c->arg;
	int err = c->rep.error;
	uint8_t t = c->req.type;

	dircache_expected(c->peer, &c->req, err == 0);
	/* What the change would have made is so already. */
	if ((err == -ENOENT && (t == PROTO_UNLINK || t == PROTO_RMDIR)) ||
	    (err == -EEXIST && t == PROTO_MKDIR) ||
	    (err == -ENODATA && t == PROTO_REMOVEXATTR))
		err = 0;
	if (err != 0)
		cl_desync(fan->cl, c->peer, proto_type_name(t), err);
	if (fan->mir != NULL && (t == PROTO_OPEN || t == PROTO_CREATE)) {
		if (err == 0 && c->rep.error == 0)
			cl_mirror_twin(fan->mir, c); /* a twin to write to */
		fan->mir->opening--;
	}
	cl_fan_step(fan);
}

static void
cl_fan_copied(void *arg, int error)
{
	(void)error; /* cl_spread() marked what failed */
	cl_fan_step(arg);
}

/* Whether the last component of path is hidden (a move's copy). */
static bool
cl_hidden_path(const char *path)
{
	const char *s = strrchr(path, '/');

	return move_hidden(s != NULL ? s + 1 : path);
}

/* The same change as q, for replica (p, x) of the set; NULL: none. */
static struct call *
cl_fan_call(struct cl_fan *fan, const struct call *o, struct peer *p,
    uint32_t x)
{
	const struct proto_req *q = &o->req;
	uint8_t type = q->type;
	struct call *c;

	c = call_new(p, type, x, q->path, cl_fan_cb, fan);
	c->nohold = true;
	c->caller = o->caller;
	c->req.cred = q->cred;
	if (q->name[0] != '\0')
		call_set_name(c, q->name);
	if (q->path2[0] != '\0' || q->name2[0] != '\0')
		call_set_dest(c, x, q->path2, q->name2);
	if (q->datalen > 0)
		call_set_data(c, q->data, q->datalen);
	c->req.flags = q->flags;
	c->req.mode = q->mode;
	c->req.uid = q->uid;
	c->req.gid = q->gid;
	c->req.rdev = q->rdev;
	c->req.valid = q->valid;
	c->req.atime = q->atime;
	c->req.mtime = q->mtime;
	c->req.offset = q->offset;
	c->req.length = q->length;
	/*
	 * A writable open or a create opens the twin: for writing only, at
	 * the offsets the frames say (no O_APPEND), a create one that must
	 * be new there too.
	 */
	if (type == PROTO_CREATE || type == PROTO_OPEN)
		c->req.flags = (q->flags &
				   ~(uint32_t)(O_ACCMODE | O_APPEND | O_CREAT |
				       O_EXCL)) |
		    O_WRONLY;
	if (type == PROTO_CREATE)
		c->req.flags = (c->req.flags & ~(uint32_t)O_TRUNC) | O_EXCL;
	return c;
}

/*
 * The call layer's hold: an answer without an error to a change of a
 * replica waits till the change is repeated on every other live one.
 */
static bool
cl_hold(struct call *c)
{
	const struct proto_req *q = &c->req;
	struct cl_fan *fan;
	struct cl *cl;
	struct cl_rep *r;
	size_t n;

	switch (q->type) {
	case PROTO_WRITE:
	case PROTO_FSYNC:
		return cl_mirror_answer(c);
	case PROTO_OPEN:
		/* O_RDONLY | O_TRUNC empties the file: every replica's. */
		if ((q->flags & (O_ACCMODE | O_TRUNC)) == O_RDONLY)
			return false;
		break;
	case PROTO_SETATTR:
	case PROTO_MKNOD:
	case PROTO_MKDIR:
	case PROTO_SYMLINK:
	case PROTO_LINK:
	case PROTO_UNLINK:
	case PROTO_RMDIR:
	case PROTO_RENAME:
	case PROTO_CREATE:
	case PROTO_SETXATTR:
	case PROTO_REMOVEXATTR:
	case PROTO_REPLACE:
		break;
	default:
		return false;
	}
	if ((cl = cl_of(c->peer, q->export_id)) == NULL)
		return false;
	if ((q->type == PROTO_LINK || q->type == PROTO_RENAME ||
		q->type == PROTO_REPLACE) &&
	    q->export2 != q->export_id)
		return false; /* out of the set: move.c's business */
	if ((q->name[0] != '\0' && move_hidden(q->name) &&
		q->type != PROTO_RENAME && q->type != PROTO_REPLACE) ||
	    (q->type == PROTO_SETATTR && cl_hidden_path(q->path)))
		return false; /* a move's copy, not there yet */
	fan = xcalloc(1, sizeof *fan);
	fan->orig = c;
	fan->cl = cl;
	fan->pending = 1;
	cl->fanouts++;
	if (q->type == PROTO_RENAME && move_hidden(q->name)) {
		/* A file moved in from another peer: copy what it made. */
		char *rel = xpathjoin(q->path2, q->name2);
		unsigned sent;

		fan->pending++;
		sent = cl_spread(cl, c->peer, q->export_id, rel, rel, S_IFREG,
		    cl_fan_copied, fan);
		if (sent == 0)
			fan->pending--;
		free(rel);
		cl_fan_step(fan);
		return true;
	}
	if (q->type == PROTO_OPEN || q->type == PROTO_CREATE)
		fan->mir = cl_mirror_new(cl, c);
	n = cl_reps(cl, &r);
	for (size_t i = 0; i < n; i++) {
		struct call *d;

		if (r[i].peer == c->peer)
			continue;
		d = cl_fan_call(fan, c, r[i].peer, r[i].export_id);
		fan->pending++;
		if (fan->mir != NULL)
			fan->mir->opening++;
		dircache_expect(d->peer, &d->req);
		call_send(d);
	}
	free(r);
	cl_fan_step(fan);
	return true;
}

/* Requests our replicas served: their figures. */
void
cluster_served(const struct proto_req *q, const struct proto_rep *rep,
    uint32_t owner)
{
	struct cl *cl;
	uint32_t x;
	char *path;

	if (rep->error != 0)
		return;
	if (q->type == PROTO_OPEN) {
		if ((cl = cl_of(peer_self(), q->export_id)) != NULL)
			cl->opens++;
		return;
	}
	if (q->type != PROTO_READ ||
	    (path = export_fh_path(q->fh, owner, &x)) == NULL)
		return;
	free(path);
	if ((cl = cl_of(peer_self(), x)) != NULL)
		cl->reads++;
}

/* --- resync: our replica brought up to date from one in sync --- */

/* One entry of a listing. */
struct cl_ent {
	char *name;
	struct proto_attr attr;
};

/* A directory compared: our listing and the source's. */
struct cl_pair {
	struct cl_resync *rs;
	char *rel;
	struct cl_ent *e[2]; /* 0: ours, 1: the source's */
	size_t n[2];
	char **only; /* the names to compare (sorted), NULL: all */
	size_t nonly, conly;
	bool shallow; /* subdirectories both have are not compared */
	int got, error;
	struct cl_pair *next; /* rs->todo */
};

/* A path a journal named, with the global time of its last change. */
struct cl_chg {
	char *path;
	uint64_t ns;
};

struct cl_resync {
	struct cl *cl;
	struct peer *src;
	uint32_t sx;
	uint64_t apart_ns;
	uint64_t started_ms;
	struct cl_pair *todo; /* directories to compare */
	unsigned listing;     /* pairs being listed */
	unsigned out;         /* changes out */
	int error;
	/* By the journals: what changed on each side since apart. */
	bool scanned;    /* our side by a scan of our replica */
	uint64_t since;  /* apart, in the union's global time */
	unsigned asking; /* CHANGES out */
	bool sure[2];    /* 0: ours, 1: the source's journal holds it all */
	struct cl_chg *chg[2]; /* by path, unique once both are in */
	size_t nchg[2], cap[2];
	char **whole; /* directories our scan found changed */
	size_t nwhole;
};

static void cl_rs_next(struct cl_resync *);
static void cl_rs_asked(struct cl_resync *);
static void cl_rs_free_paths(struct cl_resync *);
static void cl_rs_changes(struct cl_resync *, struct peer *, uint32_t,
    uint64_t since, uint64_t after);

static int
cl_ent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct cl_ent *)a)->name,
	    ((const struct cl_ent *)b)->name);
}

static int
cl_str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
cl_pair_free(struct cl_pair *pr)
{
	for (int s = 0; s < 2; s++) {
		for (size_t i = 0; i < pr->n[s]; i++)
			free(pr->e[s][i].name);
		free(pr->e[s]);
	}
	for (size_t i = 0; i < pr->nonly; i++)
		free(pr->only[i]);
	free(pr->only);
	free(pr->rel);
	free(pr);
}

/* Queue directory rel for comparison. */
static void
cl_rs_push(struct cl_resync *rs, const char *rel)
{
	struct cl_pair *pr = xcalloc(1, sizeof *pr);

	pr->rs = rs;
	pr->rel = xstrdup(rel);
	pr->next = rs->todo;
	rs->todo = pr;
}

/* A change of the resync came back. */
static void
cl_rs_change_done(struct cl_resync *rs, int error, const char *what)
{
	if (error != 0 && error != -EEXIST && error != -ENOENT) {
		log_warnx("cluster %s: resync: %s: %s", rs->cl->name, what,
		    strerror(-error));
		if (rs->error == 0)
			rs->error = error;
	}
	rs->out--;
	cl_rs_next(rs);
}

static void
cl_rs_copied(void *arg, int error)
{
	struct cl_resync *rs = arg;

	if (error == 0)
		rs->cl->rs_copied++;
	cl_rs_change_done(rs, error, "a copy");
}

/* A MKDIR of a directory only one side has: then compare inside. */
struct cl_mkdir {
	struct cl_resync *rs;
	char *rel;
};

static void
cl_rs_mkdir_cb(struct call *c)
{
	struct cl_mkdir *mk = c->arg;

	if (c->rep.error == 0 || c->rep.error == -EEXIST)
		cl_rs_push(mk->rs, mk->rel);
	cl_rs_change_done(mk->rs, c->rep.error, "mkdir");
	free(mk->rel);
	free(mk);
}

static void
cl_rs_call_cb(struct call *c)
{
	cl_rs_change_done(c->arg, c->rep.error, proto_type_name(c->req.type));
}

/* A call of the resync to replica (p, x). */
static struct call *
cl_rs_call(struct cl_resync *rs, struct peer *p, uint32_t x, uint8_t type,
    const char *path, void (*cb)(struct call *), void *arg)
{
	struct call *c = call_new(p, type, x, path, cb, arg);

	c->nohold = true;
	rs->out++;
	return c;
}

/* Our work that removes a tree of our replica, on a worker. */
struct cl_rmtree {
	struct work work;
	struct cl_resync *rs;
	char *path; /* absolute, in our replica */
	int error;
};

static int
cl_rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)f;
	if (flag == FTW_DP)
		return rmdir(path) == -1 ? -1 : 0;
	return unlink(path) == -1 ? -1 : 0;
}

static void
cl_rmtree_run(struct work *w)
{
	struct cl_rmtree *rt = (struct cl_rmtree *)w;

	if (nftw(rt->path, cl_rm_one, 16, FTW_DEPTH | FTW_PHYS) == -1)
		rt->error = -errno;
}

static void
cl_rmtree_done(struct work *w)
{
	struct cl_rmtree *rt = (struct cl_rmtree *)w;

	free(rt->path);
	cl_rs_change_done(rt->rs, rt->error, "removing a tree");
	free(rt);
}

/* Remove entry rel (a directory: all of it) of our replica. */
static void
cl_rs_remove(struct cl_resync *rs, const char *dir, const struct cl_ent *e)
{
	struct cl *cl = rs->cl;
	struct peer *self = peer_self();
	struct call *c;

	cl->rs_removed++;
	if (S_ISDIR(e->attr.mode)) {
		struct cl_rmtree *rt = xcalloc(1, sizeof *rt);
		char *rel = xpathjoin(dir, e->name);

		rt->rs = rs;
		xasprintf(&rt->path, "%s/%s",
		    self->exports[cl->self_export].path, rel);
		free(rel);
		rt->work.run = cl_rmtree_run;
		rt->work.done = cl_rmtree_done;
		rs->out++;
		worker_submit(&rt->work);
		return;
	}
	c = cl_rs_call(rs, self, cl->self_export, PROTO_UNLINK, dir,
	    cl_rs_call_cb, rs);
	call_set_name(c, e->name);
	dircache_expect(self, &c->req);
	call_send(c);
}

/*
 * A file we removed while apart, unchanged on the others since: it goes
 * from every other live replica too.
 */
static void
cl_rs_unspread(struct cl_resync *rs, const char *dir, const struct cl_ent *e)
{
	struct cl_rep *r;
	size_t n = cl_reps(rs->cl, &r);

	rs->cl->rs_removed++;
	for (size_t i = 0; i < n; i++) {
		struct call *c;

		if (r[i].peer->self)
			continue;
		c = cl_rs_call(rs, r[i].peer, r[i].export_id, PROTO_UNLINK, dir,
		    cl_rs_call_cb, rs);
		call_set_name(c, e->name);
		dircache_expect(r[i].peer, &c->req);
		call_send(c);
	}
	free(r);
}

/* Make directory dir/e->name on replica (p, x), then compare it. */
static void
cl_rs_mkdir(struct cl_resync *rs, struct peer *p, uint32_t x, const char *dir,
    const struct cl_ent *e)
{
	struct cl_mkdir *mk = xcalloc(1, sizeof *mk);
	struct call *c;

	mk->rs = rs;
	mk->rel = xpathjoin(dir, e->name);
	c = cl_rs_call(rs, p, x, PROTO_MKDIR, dir, cl_rs_mkdir_cb, mk);
	call_set_name(c, e->name);
	c->req.mode = e->attr.mode & 07777;
	dircache_expect(p, &c->req);
	call_send(c);
}

/* Copy rel from (sp, sx) to drel on every other live replica. */
static void
cl_rs_spread(struct cl_resync *rs, struct peer *sp, uint32_t sx,
    const char *rel, const char *drel, uint32_t mode)
{
	rs->out++;
	if (cl_spread(rs->cl, sp, sx, rel, drel, mode, cl_rs_copied, rs) == 0)
		rs->out--;
}

/* Copy rel from (sp, sx) to (dp, dx), the same path. */
static void
cl_rs_copy(struct cl_resync *rs, struct peer *sp, uint32_t sx, struct peer *dp,
    uint32_t dx, const char *rel, uint32_t mode)
{
	rs->out++;
	rs->cl->copies++;
	cl_copy(sp, sx, rel, dp, dx, rel, mode, cl_rs_copied, rs);
}

/* Whether two entries show the same file. */
static bool
cl_same(const struct cl_ent *a, const struct cl_ent *b)
{
	return (a->attr.mode & S_IFMT) == (b->attr.mode & S_IFMT) &&
	    a->attr.size == b->attr.size &&
	    a->attr.mtime.sec == b->attr.mtime.sec &&
	    a->attr.mtime.nsec == b->attr.mtime.nsec;
}

/*
 * A file changed on both sides while apart: the later change keeps the
 * name on every replica (mine_wins: ours), the other version goes beside
 * it as NAME@URI of its peer.
 */
static void
cl_rs_conflict(struct cl_resync *rs, const char *dir, const struct cl_ent *m,
    const struct cl_ent *t, bool mine_wins)
{
	struct cl *cl = rs->cl;
	struct peer *self = peer_self();
	struct peer *lp = mine_wins ? rs->src : self;
	uint32_t lx = mine_wins ? rs->sx : cl->self_export;
	char *rel = xpathjoin(dir, m->name), *lname, *lrel;

	cl->rs_conflicts++;
	xasprintf(&lname, "%s@%s", m->name, lp->uri);
	lrel = xpathjoin(dir, lname);
	log_warnx("cluster %s: %s changed on %s and %s while apart: the "
		  "version of %s stays as %s",
	    cl->name, rel, log_escape(self->name), log_escape(rs->src->name),
	    log_escape(lp->name), lname);
	/* The loser's version under its new name everywhere, ... */
	cl_rs_spread(rs, lp, lx, rel, lrel, m->attr.mode & S_IFMT);
	/* ... then the winner's under the name (after: copies queue). */
	if (mine_wins)
		cl_rs_spread(rs, self, cl->self_export, rel, rel,
		    m->attr.mode & S_IFMT);
	else
		cl_rs_copy(rs, rs->src, rs->sx, self, cl->self_export, rel,
		    t->attr.mode & S_IFMT);
	free(rel);
	free(lname);
	free(lrel);
}

/* Whether path is among the sorted strings v (n of them). */
static bool
cl_among(char *const *v, size_t n, const char *path)
{
	return n > 0 && bsearch(&path, v, n, sizeof *v, cl_str_cmp) != NULL;
}

static int
cl_chg_cmp(const void *a, const void *b)
{
	return strcmp(((const struct cl_chg *)a)->path,
	    ((const struct cl_chg *)b)->path);
}

/* Append (a copy of path, ns) to v (*n of *cap). */
static void
cl_chg_add(struct cl_chg **v, size_t *n, size_t *cap, const char *path,
    uint64_t ns)
{
	if (*n == *cap) {
		*cap = *cap ? 2 * *cap : 64;
		*v = xreallocarray(*v, *cap, sizeof **v);
	}
	(*v)[(*n)++] = (struct cl_chg){ xstrdup(path), ns };
}

/* Add a path of side s changed at global time ns. */
static void
cl_chg_push(struct cl_resync *rs, int s, const char *path, uint64_t ns)
{
	cl_chg_add(&rs->chg[s], &rs->nchg[s], &rs->cap[s], path, ns);
}

/* Sort side s's paths, one each, with its latest time. */
static void
cl_chg_unique(struct cl_resync *rs, int s)
{
	struct cl_chg *v = rs->chg[s];
	size_t k = 0;

	if (rs->nchg[s] < 2)
		return;
	qsort(v, rs->nchg[s], sizeof *v, cl_chg_cmp);
	for (size_t i = 1; i < rs->nchg[s]; i++) {
		if (strcmp(v[i].path, v[k].path) != 0) {
			v[++k] = v[i];
			continue;
		}
		if (v[i].ns > v[k].ns)
			v[k].ns = v[i].ns;
		free(v[i].path);
	}
	rs->nchg[s] = k + 1;
}

/*
 * When side s last changed rel while apart, by its journal (global
 * time), or 0 when it names no such change.
 */
static uint64_t
cl_rs_when(const struct cl_resync *rs, int s, const char *rel)
{
	struct cl_chg key = { (char *)rel, 0 }, *c;

	if (rs->nchg[s] == 0)
		return 0;
	c = bsearch(&key, rs->chg[s], rs->nchg[s], sizeof key, cl_chg_cmp);
	return c != NULL ? (c->ns != 0 ? c->ns : 1) : 0;
}

/*
 * Whether side s (0: ours, 1: the source's) changed rel while apart: its
 * journal says so, or the entry's mtime is after apart.
 */
static bool
cl_rs_new(const struct cl_resync *rs, int s, const char *rel,
    const struct cl_ent *e)
{
	return e != NULL &&
	    (cl_rs_when(rs, s, rel) != 0 ||
		cl_time_ns(&e->attr.mtime) > rs->apart_ns);
}

/* The patch of a file of ours came back: done, or copy it whole. */
struct cl_fetch {
	struct cl_resync *rs;
	char *rel;
	uint32_t mode;
};

static void
cl_rs_patched(void *arg, int result, uint64_t moved)
{
	struct cl_fetch *f = arg;
	struct cl_resync *rs = f->rs;

	(void)moved;
	if (result == PATCH_WHOLE) {
		cl_rs_copy(rs, rs->src, rs->sx, peer_self(),
		    rs->cl->self_export, f->rel, f->mode);
		result = 0;
	}
	free(f->rel);
	free(f);
	cl_rs_change_done(rs, result, "a patch");
}

/*
 * Our replica has rel in another version than the source's t: make it
 * the source's, by the blocks that differ when both are regular files.
 */
static void
cl_rs_fetch(struct cl_resync *rs, const char *rel, const struct cl_ent *m,
    const struct cl_ent *t)
{
	struct cl_fetch *f;

	if (!S_ISREG(m->attr.mode) || !S_ISREG(t->attr.mode) ||
	    m->attr.size == 0 || t->attr.size == 0) {
		cl_rs_copy(rs, rs->src, rs->sx, peer_self(),
		    rs->cl->self_export, rel, t->attr.mode & S_IFMT);
		return;
	}
	f = xcalloc(1, sizeof *f);
	f->rs = rs;
	f->rel = xstrdup(rel);
	f->mode = t->attr.mode & S_IFMT;
	rs->out++;
	patch_start(rs->src, rs->sx, peer_self(), rs->cl->self_export, rel,
	    &t->attr, cl_rs_patched, f);
}

/*
 * Decide what to do with one name of directory dir (m ours, t theirs);
 * deep: compare the subdirectories both have too.
 */
static void
cl_rs_name(struct cl_resync *rs, const char *dir, const struct cl_ent *m,
    const struct cl_ent *t, bool deep)
{
	struct cl *cl = rs->cl;
	struct peer *self = peer_self();
	char *rel = xpathjoin(dir, m != NULL ? m->name : t->name);
	bool mnew = cl_rs_new(rs, 0, rel, m);
	bool tnew = cl_rs_new(rs, 1, rel, t);
	/* By the journals, when both name it: the later change. */
	uint64_t wm = cl_rs_when(rs, 0, rel), wt = cl_rs_when(rs, 1, rel);

	cl->rs_files++;
	if (m != NULL && t != NULL && S_ISDIR(m->attr.mode) &&
	    S_ISDIR(t->attr.mode)) {
		if (deep)
			cl_rs_push(rs, rel);
	} else if (m == NULL && wm != 0 && wm > wt && !S_ISDIR(t->attr.mode)) {
		/* Removed here while apart, not changed there since. */
		cl_rs_unspread(rs, dir, t);
	} else if (m == NULL) {
		if (S_ISDIR(t->attr.mode))
			cl_rs_mkdir(rs, self, cl->self_export, dir, t);
		else
			cl_rs_copy(rs, rs->src, rs->sx, self, cl->self_export,
			    rel, t->attr.mode & S_IFMT);
	} else if (t == NULL) {
		/*
		 * Removed there while apart: by its journal, when ours names
		 * no later change here.  A directory's mtime alone does not
		 * say it changed here: this resync's own removals below it
		 * move it.
		 */
		if (!mnew || (wt != 0 && wt > wm))
			cl_rs_remove(rs, dir, m);
		else if (S_ISDIR(m->attr.mode)) {
			/* Made here while apart: make it there, compare. */
			cl_rs_mkdir(rs, rs->src, rs->sx, dir, m);
		} else
			cl_rs_spread(rs, self, cl->self_export, rel, rel,
			    m->attr.mode & S_IFMT);
	} else if (cl_same(m, t)) {
		/* nothing */
	} else if (S_ISDIR(m->attr.mode) || S_ISDIR(t->attr.mode)) {
		log_warnx("cluster %s: resync: %s is a directory on one "
			  "replica only: left as it is",
		    cl->name, rel);
	} else if (mnew && tnew) {
		cl_rs_conflict(rs, dir, m, t,
		    wm != 0 && wt != 0 ? wm > wt
				       : cl_time_ns(&m->attr.mtime) >
			    cl_time_ns(&t->attr.mtime));
	} else if (mnew) {
		cl_rs_spread(rs, self, cl->self_export, rel, rel,
		    m->attr.mode & S_IFMT);
	} else {
		cl_rs_fetch(rs, rel, m, t);
	}
	free(rel);
}

/* Both listings of pr are in: compare them. */
static void
cl_rs_compare(struct cl_pair *pr)
{
	struct cl_resync *rs = pr->rs;
	size_t i = 0, j = 0;

	rs->cl->rs_dirs++;
	for (int s = 0; s < 2; s++)
		if (pr->n[s] > 1)
			qsort(pr->e[s], pr->n[s], sizeof *pr->e[s], cl_ent_cmp);
	while (i < pr->n[0] || j < pr->n[1]) {
		const struct cl_ent *m = i < pr->n[0] ? &pr->e[0][i] : NULL;
		const struct cl_ent *t = j < pr->n[1] ? &pr->e[1][j] : NULL;
		int c = m == NULL ? 1
		    : t == NULL   ? -1
				  : strcmp(m->name, t->name);

		if (c < 0)
			t = NULL, i++;
		else if (c > 0)
			m = NULL, j++;
		else
			i++, j++;
		if (move_hidden(m != NULL ? m->name : t->name))
			continue;
		if (pr->only != NULL &&
		    !cl_among(pr->only, pr->nonly,
			m != NULL ? m->name : t->name))
			continue;
		cl_rs_name(rs, pr->rel, m, t, pr->only == NULL && !pr->shallow);
	}
}

/* A listing of one side of a pair came back. */
static void
cl_rs_list_cb(struct call *c)
{
	struct cl_pair *pr = c->arg;
	struct cl_resync *rs = pr->rs;
	int s = c->peer->self ? 0 : 1;

	/*
	 * A directory the source lacks is empty there; one of ours missing
	 * when the journals named it was made while apart, and its
	 * parent's comparison makes it whole.
	 */
	if (c->rep.error == -ENOENT && s == 0 &&
	    (pr->only != NULL || pr->shallow)) {
		if (pr->error == 0)
			pr->error = -ENOENT;
	} else if (c->rep.error != 0 && !(c->rep.error == -ENOENT && s == 1)) {
		if (pr->error == 0)
			pr->error = c->rep.error;
	} else if (c->rep.error == 0) {
		pr->e[s] = xcalloc(c->rep.nents + 1, sizeof *pr->e[s]);
		for (size_t i = 0; i < c->rep.nents; i++) {
			pr->e[s][i].name = xstrdup(c->rep.ents[i].name);
			pr->e[s][i].attr = c->rep.ents[i].attr;
		}
		pr->n[s] = c->rep.nents;
	}
	if (++pr->got < 2)
		return;
	rs->listing--;
	if (pr->error == -ENOENT && (pr->only != NULL || pr->shallow)) {
		/* nothing here to compare */
	} else if (pr->error != 0) {
		log_warnx("cluster %s: resync: listing %s: %s", rs->cl->name,
		    pr->rel[0] ? pr->rel : "/", strerror(-pr->error));
		if (rs->error == 0)
			rs->error = pr->error;
	} else
		cl_rs_compare(pr);
	cl_pair_free(pr);
	cl_rs_next(rs);
}

/* The resync of cl is over. */
static void
cl_rs_end(struct cl_resync *rs)
{
	struct cl *cl = rs->cl;
	double s = (double)(loop_now_ms() - rs->started_ms) / 1000.0;

	cl->rs = NULL;
	cl->rs_last_s = s;
	if (rs->error != 0 || cl->again || rs->src->state != PEER_UP) {
		log_warnx("cluster %s: resync from %s %s after %.1f s: again",
		    cl->name, log_escape(rs->src->name),
		    rs->error != 0 ? "failed" : "cut short", s);
		cl->again = false;
		cl->retry_ms = loop_now_ms() + 1000;
		cl_rs_free_paths(rs);
		free(rs);
		cl_decide(cl);
		return;
	}
	cl->runs++;
	log_info("cluster %s: resync from %s done in %.2f s (%llu copies, "
		 "%llu removed, %llu conflicts)",
	    cl->name, log_escape(rs->src->name), s,
	    (unsigned long long)cl->rs_copied,
	    (unsigned long long)cl->rs_removed,
	    (unsigned long long)cl->rs_conflicts);
	cl_rs_free_paths(rs);
	free(rs);
	cl->alone = false;
	cl->stamp_ms = 0;
	cl_set_state(cl, CL_SYNC);
}

/* Keep the resync going: list, compare, change; end when all is done. */
static void
cl_rs_next(struct cl_resync *rs)
{
	struct peer *self = peer_self();
	struct cl_pair *pr;

	while (rs->error == 0 && rs->listing < CLUSTER_LISTINGS &&
	    (pr = rs->todo) != NULL) {
		struct call *c;

		rs->todo = pr->next;
		rs->listing++;
		c = call_new(self, PROTO_READDIR, rs->cl->self_export, pr->rel,
		    cl_rs_list_cb, pr);
		c->nohold = true;
		call_send(c);
		c = call_new(rs->src, PROTO_READDIR, rs->sx, pr->rel,
		    cl_rs_list_cb, pr);
		c->nohold = true;
		call_send(c);
	}
	if (rs->listing > 0 || rs->out > 0)
		return;
	while ((pr = rs->todo) != NULL) {
		rs->todo = pr->next;
		cl_pair_free(pr);
	}
	cl_rs_end(rs);
}

/* Free the paths and directories the journals named. */
static void
cl_rs_free_paths(struct cl_resync *rs)
{
	for (int s = 0; s < 2; s++) {
		for (size_t i = 0; i < rs->nchg[s]; i++)
			free(rs->chg[s][i].path);
		free(rs->chg[s]);
		rs->chg[s] = NULL;
		rs->nchg[s] = rs->cap[s] = 0;
	}
	for (size_t i = 0; i < rs->nwhole; i++)
		free(rs->whole[i]);
	free(rs->whole);
	rs->whole = NULL;
	rs->nwhole = 0;
}

/* Append path to v (*n of *cap). */
static void
cl_push_str(char ***v, size_t *n, size_t *cap, const char *path)
{
	if (*n == *cap) {
		*cap = *cap ? 2 * *cap : 64;
		*v = xreallocarray(*v, *cap, sizeof **v);
	}
	(*v)[(*n)++] = xstrdup(path);
}

/*
 * The pair comparing directory dir, from the todo list or new (only:
 * the names to compare, or all with shallow).
 */
static struct cl_pair *
cl_rs_pair(struct cl_resync *rs, const char *dir)
{
	for (struct cl_pair *pr = rs->todo; pr != NULL; pr = pr->next)
		if (strcmp(pr->rel, dir) == 0)
			return pr;
	cl_rs_push(rs, dir);
	return rs->todo;
}

/*
 * Both journals (or our scan) are in: compare only the names they gave
 * (the directories our scan found changed: all their names), never
 * descending but into directories one side lacks.
 */
static void
cl_rs_plan(struct cl_resync *rs)
{
	size_t total = 0;

	rs->cl->rs_journal++;
	for (int s = 0; s < 2; s++) {
		cl_chg_unique(rs, s);
		total += rs->nchg[s];
	}
	rs->cl->rs_paths = total;
	log_info("cluster %s: resync by the journals: %zu paths here, %zu on "
		 "%s, %zu directories changed here",
	    rs->cl->name, rs->nchg[0], rs->nchg[1], log_escape(rs->src->name),
	    rs->nwhole);
	for (size_t i = 0; i < rs->nwhole; i++)
		cl_rs_pair(rs, rs->whole[i])->shallow = true;
	for (int s = 0; s < 2; s++)
		for (size_t i = 0; i < rs->nchg[s]; i++) {
			const char *p = rs->chg[s][i].path;
			const char *slash = strrchr(p, '/');
			char *dir = slash != NULL
			    ? xstrndup(p, (size_t)(slash - p))
			    : xstrdup("");
			struct cl_pair *pr = cl_rs_pair(rs, dir);

			free(dir);
			if (!pr->shallow)
				cl_push_str(&pr->only, &pr->nonly, &pr->conly,
				    slash != NULL ? slash + 1 : p);
		}
	/* A shallow pair got no names: it compares all of them. */
	for (struct cl_pair *pr = rs->todo; pr != NULL; pr = pr->next)
		journal_unique(pr->only, &pr->nonly);
	cl_rs_next(rs);
}

/* Our work that finds what changed in our replica since a time. */
struct cl_scan {
	struct work work;
	struct cl_resync *rs;
	char *root; /* our replica's */
	uint64_t since_ns;
	struct cl_chg *chg; /* the paths, with their ctimes (wall clock) */
	char **dirs;
	size_t nchg, cchg, ndirs, cdirs;
	int error;
};

static __thread struct cl_scan *cl_scanning; /* nftw has no argument */

static int
cl_scan_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	struct cl_scan *sc = cl_scanning;
	const char *rel = path + strlen(sc->root);
	uint64_t ctime;

	while (*rel == '/')
		rel++;
	if (flag == FTW_NS)
		return 0; /* gone meanwhile: its directory changed */
	if (move_hidden(path + f->base))
		return flag == FTW_D ? FTW_SKIP_SUBTREE : 0;
	ctime = (uint64_t)st->st_ctim.tv_sec * 1000000000ull +
	    (uint64_t)st->st_ctim.tv_nsec;
	if (flag == FTW_DNR && *rel != '\0') /* unreadable: compare it */
		cl_push_str(&sc->dirs, &sc->ndirs, &sc->cdirs, rel);
	if (ctime < sc->since_ns)
		return 0;
	if (flag == FTW_D)
		cl_push_str(&sc->dirs, &sc->ndirs, &sc->cdirs, rel);
	if (*rel != '\0')
		cl_chg_add(&sc->chg, &sc->nchg, &sc->cchg, rel, ctime);
	return 0;
}

static void
cl_scan_run(struct work *w)
{
	struct cl_scan *sc = (struct cl_scan *)w;

	cl_scanning = sc;
	if (nftw(sc->root, cl_scan_one, 16, FTW_PHYS | FTW_ACTIONRETVAL) == -1)
		sc->error = -errno;
	cl_scanning = NULL;
}

static void
cl_scan_done(struct work *w)
{
	struct cl_scan *sc = (struct cl_scan *)w;
	struct cl_resync *rs = sc->rs;

	rs->asking--;
	if (sc->error != 0) {
		log_warnx("cluster %s: resync: looking for changes here: %s",
		    rs->cl->name, strerror(-sc->error));
		rs->sure[1] = false; /* compare everything */
	}
	/* File times are the wall clock's: in global time, as the records. */
	int64_t off = (int64_t)(clock_global_ns() - cl_wall_ns());

	for (size_t i = 0; i < sc->nchg; i++)
		sc->chg[i].ns = (uint64_t)((int64_t)sc->chg[i].ns + off);
	free(rs->chg[0]); /* emptied before the scan */
	rs->chg[0] = sc->chg;
	rs->nchg[0] = sc->nchg;
	rs->cap[0] = sc->cchg;
	rs->whole = sc->dirs;
	rs->nwhole = sc->ndirs;
	free(sc->root);
	free(sc);
	rs->sure[0] = true;
	cl_rs_asked(rs);
}

/*
 * Our journal does not reach back to apart (we restarted since): what
 * changed in our replica is what the disk says changed since then, by
 * ctime, which no program sets back.  A directory whose entries changed
 * is compared whole.
 */
static void
cl_rs_scan(struct cl_resync *rs, uint64_t since_ns)
{
	struct cl_scan *sc = xcalloc(1, sizeof *sc);

	sc->rs = rs;
	sc->root = xstrdup(peer_self()->exports[rs->cl->self_export].path);
	sc->since_ns = since_ns;
	sc->work.run = cl_scan_run;
	sc->work.done = cl_scan_done;
	rs->asking++;
	worker_submit(&sc->work);
}

/* Every journal has answered: by them, or compare everything. */
static void
cl_rs_asked(struct cl_resync *rs)
{
	if (rs->asking > 0)
		return;
	if (rs->error == 0 && rs->sure[1] && !rs->sure[0] && !rs->scanned) {
		for (size_t i = 0; i < rs->nchg[0]; i++)
			free(rs->chg[0][i].path);
		rs->nchg[0] = 0;
		rs->scanned = true;
		cl_rs_scan(rs, rs->apart_ns + 1); /* file times: wall clock */
		return;
	}
	if (rs->error != 0 || !rs->sure[1] || !rs->sure[0]) {
		if (rs->error == 0)
			log_info("cluster %s: resync: the journal of %s does "
				 "not reach back to %.3f: comparing all",
			    rs->cl->name,
			    log_escape(
				rs->sure[1] ? "this peer" : rs->src->name),
			    (double)rs->since / 1e9);
		rs->error = 0;
		cl_rs_free_paths(rs);
		rs->cl->rs_full++;
		cl_rs_push(rs, "");
		cl_rs_next(rs);
		return;
	}
	cl_rs_plan(rs);
}

/*
 * Whether a path a journal gave is one of an export's entries: not
 * empty, no empty, "." or ".." component, not absolute.
 */
static bool
cl_rel_ok(const char *path)
{
	const char *c = path;

	do {
		size_t n = strcspn(c, "/");

		if (n == 0 || (n == 1 && c[0] == '.') ||
		    (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		c += n;
	} while (*c++ == '/');
	return true;
}

/* An answer to CHANGES: its paths; the next page, or done. */
static void
cl_rs_changes_cb(struct call *c)
{
	struct cl_resync *rs = c->arg;
	int s = c->peer->self ? 0 : 1;
	const uint8_t *p = c->rep.data,
		      *end = p != NULL ? p + c->rep.datalen : p;
	const char *path;
	uint64_t ns;
	int rc;

	rs->asking--;
	if (c->rep.error != 0) {
		log_warnx("cluster %s: resync: changes of %s: %s", rs->cl->name,
		    log_escape(c->peer->name), strerror(-c->rep.error));
		rs->sure[s] = false;
		cl_rs_asked(rs);
		return;
	}
	while ((rc = proto_changes_next(&p, end, &ns, &path)) > 0)
		if (cl_rel_ok(path))
			cl_chg_push(rs, s, path, ns);
	/* A record cut short: what follows it cannot be known. */
	rs->sure[s] = (c->rep.flags & PROTO_CHANGES_SURE) != 0 && rc == 0;
	if (rs->sure[s] && (c->rep.flags & PROTO_CHANGES_MORE)) {
		cl_rs_changes(rs, c->peer, (uint32_t)c->req.export_id,
		    c->req.offset, c->rep.value);
		return;
	}
	cl_rs_asked(rs);
}

/* Ask (p, x)'s journal for what changed since, after change number. */
static void
cl_rs_changes(struct cl_resync *rs, struct peer *p, uint32_t x, uint64_t since,
    uint64_t after)
{
	struct call *c = call_new(p, PROTO_CHANGES, x, NULL, cl_rs_changes_cb,
	    rs);

	c->nohold = true;
	c->req.offset = since;
	c->req.offset2 = after;
	rs->asking++;
	call_send(c);
}

/* Start bringing our replica of cl up to date from (src, its export). */
static void
cl_resync(struct cl *cl, struct peer *src)
{
	struct cl_resync *rs = xcalloc(1, sizeof *rs);

	rs->cl = cl;
	rs->src = src;
	rs->sx = (uint32_t)cl_export_on(cl, src);
	rs->apart_ns = cl->apart_ns;
	rs->started_ms = loop_now_ms();
	cl->rs = rs;
	cl->rs_dirs = cl->rs_files = cl->rs_copied = cl->rs_removed =
	    cl->rs_conflicts = 0;
	log_info("cluster %s: resync from %s (apart since %.3f)", cl->name,
	    log_escape(src->name), (double)rs->apart_ns / 1e9);
	cl_set_state(cl, CL_RESYNC);
	if (rs->apart_ns == 0) { /* never in sync: compare everything */
		cl->rs_full++;
		cl_rs_push(rs, "");
		cl_rs_next(rs);
		return;
	}
	/*
	 * What changed after apart (our wall clock, as file times are), in
	 * the global time of the journals' records.
	 */
	rs->since = rs->apart_ns + 1 + clock_global_ns() - cl_wall_ns();
	cl_rs_changes(rs, src, rs->sx, rs->since, 0);
	cl_rs_changes(rs, peer_self(), cl->self_export, rs->since, 0);
}

/*
 * What our replica of cl does now, from what the others said: resync
 * from one in sync that was not cut off (or, for a replica that has
 * just started, from one that was); wait while a lower-named one
 * decides too; or be in sync as it is (the first, or the others resync
 * from it).
 */
static void
cl_decide(struct cl *cl)
{
	struct cl_rep *r;
	struct peer *self = peer_self();
	struct peer *src = NULL, *lone = NULL;
	bool unknown = false, lower = false;
	uint64_t now = loop_now_ms();
	size_t n;

	if (!cl->local || cl->rs != NULL || cl->st == CL_SYNC ||
	    now < cl->retry_ms)
		return;
	n = cl_reps(cl, &r);
	for (size_t i = 0; i < n; i++) {
		struct peer *p = r[i].peer;
		struct cl_said *s;

		if (p->self)
			continue;
		s = cl_said(cl, p);
		if (s->epoch != p->epoch) {
			unknown = true; /* not said yet */
			continue;
		}
		if (r[i].st == CL_SYNC && !s->alone && src == NULL)
			src = p;
		if (r[i].st == CL_SYNC && s->alone && lone == NULL)
			lone = p;
		/*
		 * It decides first: one cut off from the others (it has
		 * what changed meanwhile) before one that just started;
		 * else the lower name.
		 */
		if ((s->alone && !cl->alone) ||
		    (strcmp(p->name, self->name) < 0 &&
			(s->alone || (r[i].st == CL_RESYNC && !cl->alone))))
			lower = true;
	}
	free(r);
	/*
	 * Back from a cut, with others in sync: they redial within 2 s
	 * (their backoff), and what changed here must reach every one of
	 * them, not only the first back.  Replicas that just started pull
	 * from us anyway.
	 */
	if (cl->alone && now < cl->back_ms + CLUSTER_SETTLE_MS &&
	    (src != NULL || lone != NULL || unknown))
		return;
	if (src == NULL && !cl->alone && lone != NULL && !lower)
		src = lone; /* we just started: it has what happened */
	if (src != NULL) {
		cl->decided = true;
		cl_resync(cl, src);
		return;
	}
	if (!cl->decided && now < cls.start_ms + CLUSTER_GRACE_MS)
		return; /* at start: the others may not have said yet */
	/*
	 * A replica that has not said its state on this stream may be the
	 * one to learn from: wait for it (at start, not forever, for a
	 * peer that never answers).
	 */
	if (unknown &&
	    (cl->alone || cl->decided ||
		now < cls.start_ms + 10 * CLUSTER_GRACE_MS))
		return;
	if (lower)
		return;
	/* Nobody to learn from: in sync as we are. */
	cl->decided = true;
	cl->alone = false;
	cl_set_state(cl, CL_SYNC);
}

/* --- the stamp: when our replica was last in sync with another --- */

static void
cl_stamp_cb(struct call *c)
{
	struct cl *cl = cl_get(c->arg, false);

	if (cl == NULL)
		return;
	if (c->req.type == PROTO_STAT) {
		if (c->rep.error == 0)
			cl->apart_ns = cl_time_ns(&c->rep.attr.mtime);
		log_info("cluster %s: last in sync %s", cl->name,
		    cl->apart_ns ? "known" : "never");
		return;
	}
	if (c->rep.error == -ENOENT && c->req.type == PROTO_SETATTR) {
		struct call *m = call_new(peer_self(), PROTO_MKNOD,
		    cl->self_export, "", cl_stamp_cb, cl->name);

		m->nohold = true;
		call_set_name(m, CLUSTER_STAMP);
		m->req.mode = S_IFREG | 0600;
		call_send(m);
	}
}

/* Touch the stamp of cl (or ask it, at start). */
static void
cl_stamp(struct cl *cl, bool ask)
{
	struct call *c = call_new(peer_self(), ask ? PROTO_STAT : PROTO_SETATTR,
	    cl->self_export, CLUSTER_STAMP, cl_stamp_cb, cl->name);

	c->nohold = true;
	c->req.valid = PROTO_SET_MTIME_NOW | PROTO_SET_MTIME;
	call_send(c);
}

/*
 * Tell peers that came up our state (once per stream), and ask those
 * whose replica has not said its state yet (again every second).
 */
static void
cl_tell_new(void)
{
	uint64_t now = loop_now_ms();
	struct peer *p;

	for (size_t i = 0; i < cls.n; i++) {
		struct cl *cl = cls.v[i];

		TAILQ_FOREACH(p, &peers, entry)
		{
			struct cl_said *s;
			bool holds;

			if (p->self || p->state != PEER_UP || p->stream == NULL)
				continue;
			holds = cl_export_on(cl, p) >= 0;
			if (!cl->local && !holds)
				continue;
			s = cl_said(cl, p);
			if (s->told_epoch == p->epoch &&
			    (!holds || s->epoch == p->epoch ||
				now < s->told_ms + 1000))
				continue;
			s->told_epoch = p->epoch;
			s->told_ms = now;
			cl_tell(cl, p, false);
		}
	}
}

/* Every CLUSTER_TICK_MS: decisions due, stamps, states to tell. */
static void
cl_tick(struct timer *t, void *arg)
{
	uint64_t now = loop_now_ms();

	(void)arg;
	for (size_t i = 0; i < cls.n; i++) {
		struct cl *cl = cls.v[i];

		if (!cl->local)
			continue;
		cl_decide(cl);
		if (cl->st == CL_SYNC && !cl->alone &&
		    cl_others_in_sync(cl) > 0 &&
		    now >= cl->stamp_ms + CLUSTER_STAMP_MS) {
			cl->stamp_ms = now;
			cl->apart_ns = cl_wall_ns();
			cl_stamp(cl, false);
		}
	}
	cl_tell_new();
	cl_mirror_tick(now);
	timer_wheel_add(loop_wheel(), t, now + CLUSTER_TICK_MS);
}

/* A peer came up or went down. */
static void
cl_peer_state(struct peer *p, enum peer_state old)
{
	(void)old;
	if (p->self)
		return;
	cl_wait_kick(); /* a replica came or went */
	for (uint32_t i = 0; i < p->nexports; i++)
		(void)cl_of(p, i); /* sets only heard of */
	if (p->state != PEER_UP)
		for (struct cl_mirror *m = cm.mirrors; m != NULL; m = m->next)
			if (m->peer == p)
				(void)cl_mirror_failover(m);
	for (size_t i = 0; i < cls.n; i++) {
		struct cl *cl = cls.v[i];

		if (p->state == PEER_UP) {
			if (cl->local && cl->alone && cl->st == CL_SYNC &&
			    cl_export_on(cl, p) >= 0) {
				/* Back among others: no reads till decided. */
				log_info("cluster %s: %s is back: deciding",
				    cl->name, log_escape(p->name));
				cl->st = CL_RESYNC;
				cl->back_ms = loop_now_ms();
				cl_tell_all(cl);
			}
			continue; /* told from the tick: its stream is set */
		}
		if (!cl->local || cl->st != CL_SYNC || cl->alone ||
		    cl_export_on(cl, p) < 0 || cl_others_in_sync(cl) > 0)
			continue;
		/*
		 * Cut off from every other replica: changes made here from
		 * now on (and in the last dead_after) may clash with theirs.
		 */
		cl->alone = true;
		cl->apart_ns = cl_wall_ns() -
		    (uint64_t)(conf->dead_after * 1e9);
		log_warnx("cluster %s: no other replica in sync is live",
		    cl->name);
	}
}

/* --- start, status --- */

/*
 * Add an export "cluster:NAME" per [cluster:NAME] section, after the
 * others, before the exports are opened.
 */
void
cluster_init(struct config *cfg)
{
	size_t n = cfg->nexports;

	cfg->exports = xreallocarray(cfg->exports, n + cfg->nclusters,
	    sizeof *cfg->exports);
	for (size_t i = 0; i < cfg->nclusters; i++) {
		struct config_export *e = &cfg->exports[n + i];
		struct cl *cl = cl_get(cfg->clusters[i].name, true);

		memset(e, 0, sizeof *e);
		xasprintf(&e->name, "%s%s", CLUSTER_PREFIX,
		    cfg->clusters[i].name);
		e->path = xstrdup(cfg->clusters[i].path);
		e->at = xstrdup(cfg->clusters[i].at);
		cl->local = true;
		cl->self_export = (uint32_t)(n + i);
		cl->balance = cfg->clusters[i].balance;
		cl->st = CL_RESYNC;
	}
	cfg->nexports = n + cfg->nclusters;
}

/* Start: listen to peers and answers, ask our stamps, tick. */
void
cluster_start(void)
{
	cls.start_ms = loop_now_ms();
	peer_on_state(cl_peer_state);
	call_hold_answers(cl_hold);
	call_hold_sends(cl_send_hold);
	if ((cw.ev = evtimer_new(loop_base, cl_wait_run, NULL)) == NULL)
		fatalx("cluster: evtimer_new failed");
	answer_on_cluster(cluster_answer);
	for (size_t i = 0; i < cls.n; i++)
		if (cls.v[i]->local)
			cl_stamp(cls.v[i], true);
	timer_init(&cls.tick, cl_tick, NULL);
	timer_wheel_add(loop_wheel(), &cls.tick,
	    loop_now_ms() + CLUSTER_TICK_MS);
}

void
cluster_free(void)
{
	timer_wheel_del(loop_wheel(), &cls.tick);
	if (cw.ev != NULL)
		event_free(cw.ev);
	free(cw.v); /* calls still parked (past the drain) die with us */
	memset(&cw, 0, sizeof cw);
	for (size_t i = 0; i < cls.n; i++) {
		free(cls.v[i]->name);
		free(cls.v[i]->xname);
		free(cls.v[i]->said);
		free(cls.v[i]);
	}
	free(cls.v);
	memset(&cls, 0, sizeof cls);
	while (cm.mirrors != NULL) {
		struct cl_mirror *m = cm.mirrors;

		cm.mirrors = m->next;
		free(m->tw);
		free(m->rel);
		free(m);
	}
	while (cm.dirty != NULL)
		cl_dirty_free(cm.dirty);
	while (cm.wfans != NULL)
		cl_wfan_free(cm.wfans);
}

/*
 * How resyncs went: by the journals or comparing all, and the files
 * patched block by block (every set's: patch.c counts them together).
 */
static void
cl_status_journal(struct evbuffer *b, const struct cl *cl, bool json)
{
	struct patch_stats ps;

	patch_stats(&ps);
	evbuffer_add_printf(b,
	    json ? "%s\"by_journal\":%llu,\"compared_all\":%llu,"
		   "\"journal_paths\":%llu,\"patch\":{\"files\":%llu,"
		   "\"same\":%llu,\"patched\":%llu,\"bytes\":%llu}},"
		 : "  %-12s resync: %llu by the journals, %llu comparing "
		   "all, %llu paths named last; blocks: %llu files "
		   "checked, %llu the same, %llu patched, %llu bytes\n",
	    json ? "" : cl->name, (unsigned long long)cl->rs_journal,
	    (unsigned long long)cl->rs_full, (unsigned long long)cl->rs_paths,
	    (unsigned long long)ps.started, (unsigned long long)ps.same,
	    (unsigned long long)ps.patched, (unsigned long long)ps.bytes);
}

/* How many of our handles open for writing are on p's replicas. */
static size_t
cl_writing(const struct peer *p)
{
	size_t n = 0;

	for (struct cl_mirror *m = cm.mirrors; m != NULL; m = m->next)
		if (m->peer == p && m->epoch == p->epoch)
			n++;
	return n;
}

/* The sets, their replicas and figures, for `pufs status`. */
void
cluster_status(struct evbuffer *b, bool json)
{
	static const char *const bal[] = { "roundrobin", "leastload" };

	evbuffer_add_printf(b, json ? "\"clusters\":[" : "clusters:%s\n",
	    json || cls.n > 0 ? "" : " none");
	for (size_t i = 0; i < cls.n; i++) {
		struct cl *cl = cls.v[i];
		struct peer *p;
		bool first = true;

		if (json) {
			evbuffer_add_printf(b,
			    "%s{\"name\":\"%s\",\"balance\":\"%s\","
			    "\"local\":%s,\"state\":\"%s\",\"opens\":%llu,"
			    "\"reads\":%llu,\"failovers\":%llu,"
			    "\"fanouts\":%llu,\"copies\":%llu,\"mirrored\":%"
			    "llu,"
			    "\"desyncs\":%llu,\"resync\":{\"runs\":%llu,"
			    "\"running\":%s,\"dirs\":%llu,\"names\":%llu,"
			    "\"copied\":%llu,\"removed\":%llu,"
			    "\"conflicts\":%llu,\"last_s\":%.3f,",
			    i ? "," : "", cl->name, bal[cl->balance],
			    cl->local ? "true" : "false",
			    cl->local ? cl_state_names[cl->st] : "none",
			    (unsigned long long)cl->opens,
			    (unsigned long long)cl->reads,
			    (unsigned long long)cl->failovers,
			    (unsigned long long)cl->fanouts,
			    (unsigned long long)cl->copies,
			    (unsigned long long)cl->mirrored,
			    (unsigned long long)cl->desyncs,
			    (unsigned long long)cl->runs,
			    cl->rs ? "true" : "false",
			    (unsigned long long)cl->rs_dirs,
			    (unsigned long long)cl->rs_files,
			    (unsigned long long)cl->rs_copied,
			    (unsigned long long)cl->rs_removed,
			    (unsigned long long)cl->rs_conflicts,
			    cl->rs_last_s);
			cl_status_journal(b, cl, json);
			evbuffer_add_printf(b, "\"replicas\":[");
		} else {
			evbuffer_add_printf(b,
			    "  %-12s %s; here: %s, %llu opens, %llu reads "
			    "served; %llu failovers, %llu changes repeated, "
			    "%llu copies, %llu bytes written behind, %llu out "
			    "of sync\n"
			    "  %-12s resync: %llu done%s, %llu dirs, %llu "
			    "names, %llu copied, %llu removed, %llu "
			    "conflicts, last %.2f s\n",
			    cl->name, bal[cl->balance],
			    cl->local ? cl_state_names[cl->st] : "no replica",
			    (unsigned long long)cl->opens,
			    (unsigned long long)cl->reads,
			    (unsigned long long)cl->failovers,
			    (unsigned long long)cl->fanouts,
			    (unsigned long long)cl->copies,
			    (unsigned long long)cl->mirrored,
			    (unsigned long long)cl->desyncs, "",
			    (unsigned long long)cl->runs,
			    cl->rs ? " (running)" : "",
			    (unsigned long long)cl->rs_dirs,
			    (unsigned long long)cl->rs_files,
			    (unsigned long long)cl->rs_copied,
			    (unsigned long long)cl->rs_removed,
			    (unsigned long long)cl->rs_conflicts,
			    cl->rs_last_s);
			cl_status_journal(b, cl, json);
		}
		TAILQ_FOREACH(p, &peers, entry)
		{
			if (cl_export_on(cl, p) < 0 || (p->self && !cl->local))
				continue;
			size_t w = cl_writing(p);
			char more[64] = "";

			if (!json && w > 0)
				snprintf(more, sizeof more,
				    " (%zu files written through it)", w);
			/* Names and URIs come from peers: escaped. */
			if (json)
				evbuffer_add_printf(b,
				    "%s{\"peer\":\"%s\",\"uri\":\"%s\","
				    "\"state\":\"%s\",\"writing\":%zu}",
				    first ? "" : ",", log_escape(p->name),
				    log_escape(p->uri),
				    cl_state_names[cl_state_of(cl, p)], w);
			else
				evbuffer_add_printf(b,
				    "    replica %-12s %-22s %s%s\n",
				    log_escape(p->name), log_escape(p->uri),
				    cl_state_names[cl_state_of(cl, p)], more);
			first = false;
		}
		if (json)
			evbuffer_add_printf(b, "]}");
	}
	if (json)
		evbuffer_add_printf(b, "],");
}
