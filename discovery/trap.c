/*
 * trap.c - change notices ("traps"): what this peer's exports changed,
 * told to the others, and what the others' changes mean for our caches.
 *
 * Out: every change a holder makes in an export for anyone (a create,
 * remove, rename, attribute change or write served by export.c) becomes
 * a record in a coalescing queue (discovery/trapq.c).  The queue is
 * flushed at most every trap_delay seconds into as few TRAP datagrams as
 * the records fit, each numbered; every other datagram we send carries
 * the number of our last TRAP.  A record too large for any datagram is
 * not sent, and its number is skipped: receivers see the gap and
 * resynchronise, so nothing is silently missed.
 *
 * A file written on and on would still cost a datagram every trap_delay
 * (14 for 64 MiB in 4 KiB writes at 48 MB/s), so its DATA records back
 * off: the first goes with the next flush, and while the file keeps
 * being written each next one waits twice as long as the one before
 * (trap_delay, 2, 4, 8 ... times it, at most attr_timeout, the bound
 * readers have anyway), held meanwhile as one range (struct trap_hot,
 * TRAP_HOT_MAX files).  What is held joins the queue, to go within
 * trap_delay as any other record, when a file is fsync'ed or a handle
 * is released (a close: not one datagram per fsync, which a database
 * does at each commit), and when another record names it (so records
 * of one path stay in order); it goes at once when the daemon leaves.  A file
 * left alone for its interval and TRAP_HOT_IDLE_MS more starts again at
 * trap_delay.  Our own mount's caches never wait: a local record is applied as
 * it is queued.
 *
 * In: a received TRAP makes the kernel forget what it cached about the
 * names and files it mentions (the trap sink the daemon registers,
 * daemon/inval.c), so the next access asks the holder again.  Forgetting
 * is idempotent, so the order in which TRAPs arrive does not matter.  A
 * gap in a sender's numbers (a lost datagram, found at the next TRAP or
 * within one heartbeat) means we may have missed changes: everything
 * cached from that peer is forgotten at once, and its stream is asked whether
 * it still answers.  The same happens when a peer goes down or restarts.
 *
 * Sender state is kept only for peers that are up, from datagrams of
 * their current boot, and goes when they go down (trap_peer_down()), so
 * datagrams under made-up names or boots make none.
 *
 * Traps travel by multicast, or in unicast mode as the same datagrams
 * sent to each live peer's address (mcast.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "datagram.h"
#include "discovery.h"
#include "log.h"
#include "loop.h"
#include "trapq.h"

/* Files whose DATA records back off (see the top). */
#define TRAP_HOT_MAX 32
/* Beyond its interval, how long a file may rest and still be "on and on". */
#define TRAP_HOT_IDLE_MS 2000

/* A file being written: when its next DATA record may go, and what waits. */
struct trap_hot {
	char *path; /* owned; NULL: a free slot */
	uint32_t export_id;
	unsigned level;        /* its interval is trap_delay << level */
	uint64_t next_ms;      /* loop_now_ms() before which none goes */
	uint64_t last_ms;      /* of its last DATA record */
	bool held;             /* rec waits for next_ms */
	bool queued;           /* a record of it waits for the next flush */
	struct dgram_trap rec; /* held: the ranges so far, as one */
};

/* A sender we track trap numbers of. */
struct trap_sender {
	char *name; /* owned */
	struct trapq_seq seq;
	struct trap_sender *next;
};

static struct {
	struct trapq *q;
	struct timer flush;
	struct timer hot_timer; /* the first held record is due */
	struct trap_hot hot[TRAP_HOT_MAX];
	uint64_t seq; /* number of our last TRAP */
	struct trap_sender *senders;
	unsigned nsenders;
	struct trap_stats st;
	const struct trap_sink *sink;   /* what changes mean for caches */
	const struct trap_local *local; /* our exports' handles, journal */
} tr;

/*
 * Files written through pufs lately: the disk watch sees those writes
 * too (IN_MODIFY, and IN_CLOSE_WRITE at the release), and would make of
 * them a record of the whole file, which tells the writer its own write
 * changed everything it caches.  A disk DATA record of such a file,
 * within TRAP_MINE_MS of its last write or release through pufs, is
 * ours already said (trap_note_disk).  A local program writing it in
 * that moment is seen by the next open, whose attributes differ.
 */
#define TRAP_MINE_SLOTS 256
#define TRAP_MINE_MS 500

static struct trap_mine {
	uint32_t export_id;
	char *path;     /* owned; NULL: free */
	uint64_t until; /* loop_now_ms() */
} trap_mine[TRAP_MINE_SLOTS];

static void trap_flush(struct timer *, void *);
static void trap_hot_due(struct timer *, void *);
static void trap_peer_state(struct peer *, enum peer_state);
static void trap_received(const struct dgram *);

/* Start: the queue, the flush timer and the peer state listener. */
void
trap_init(const struct config *cfg, const struct trap_sink *sink,
    const struct trap_local *local)
{
	(void)cfg;
	tr.sink = sink;
	tr.local = local;
	if ((tr.q = trapq_new()) == NULL)
		fatalx("trap: out of memory");
	timer_init(&tr.flush, trap_flush, NULL);
	timer_init(&tr.hot_timer, trap_hot_due, NULL);
	peer_on_state(trap_peer_state);
	mcast_on_receive(trap_received);
}

/* Release the queue and the sender table. */
void
trap_free(void)
{
	struct trap_sender *s;

	timer_wheel_del(loop_wheel(), &tr.flush);
	timer_wheel_del(loop_wheel(), &tr.hot_timer);
	for (size_t i = 0; i < TRAP_HOT_MAX; i++) {
		free(tr.hot[i].path);
		tr.hot[i].path = NULL;
	}
	for (size_t i = 0; i < TRAP_MINE_SLOTS; i++) {
		free(trap_mine[i].path);
		trap_mine[i].path = NULL;
	}
	trapq_free(tr.q);
	tr.q = NULL;
	while ((s = tr.senders) != NULL) {
		tr.senders = s->next;
		free(s->name);
		free(s);
	}
	tr.nsenders = 0;
}

/* Counters for status. */
void
trap_stats(struct trap_stats *st)
{
	struct trapq_stats qs;

	*st = tr.st;
	if (tr.q != NULL) {
		trapq_stats(tr.q, &qs);
		st->noted = qs.added;
		st->merged = qs.merged;
	}
}

static void trap_apply(struct peer *, const struct dgram_trap *);

/* The interval of a file at backoff level: trap_delay << level, capped. */
static uint64_t
trap_hot_interval(unsigned level)
{
	double ms = conf->trap_delay * 1000;
	double cap = conf->attr_timeout * 1000;

	for (unsigned i = 0; i < level && ms < cap; i++)
		ms *= 2;
	if (ms > cap && cap >= conf->trap_delay * 1000)
		ms = cap;
	return (uint64_t)ms;
}

/* Queue a record; the flush timer is the caller's. */
static void
trap_queue(const struct dgram_trap *r)
{
	if (trapq_add(tr.q, r) != 0)
		fatalx("trap: out of memory");
}

/* Queue what h holds; whether it held anything. */
static bool
trap_hot_release(struct trap_hot *h)
{
	if (!h->held)
		return false;
	h->held = false;
	h->queued = true;
	h->rec.path = h->path;
	trap_queue(&h->rec);
	return true;
}

/* Make sure the queue goes within trap_delay. */
static void
trap_flush_later(void)
{
	if (timer_pending(&tr.flush))
		return;
	timer_wheel_add(loop_wheel(), &tr.flush,
	    loop_now_ms() + (uint64_t)(conf->trap_delay * 1000));
	loop_wheel_kick();
}

/* Send the queue at the next loop turn. */
static void
trap_flush_soon(void)
{
	timer_wheel_del(loop_wheel(), &tr.flush);
	timer_wheel_add(loop_wheel(), &tr.flush, loop_now_ms());
	loop_wheel_kick();
}

/* Arm the hot timer for the first held record due. */
static void
trap_hot_arm(void)
{
	uint64_t first = UINT64_MAX;

	for (size_t i = 0; i < TRAP_HOT_MAX; i++)
		if (tr.hot[i].path != NULL && tr.hot[i].held &&
		    tr.hot[i].next_ms < first)
			first = tr.hot[i].next_ms;
	timer_wheel_del(loop_wheel(), &tr.hot_timer);
	if (first != UINT64_MAX) {
		timer_wheel_add(loop_wheel(), &tr.hot_timer, first);
		loop_wheel_kick();
	}
}

/*
 * A held record goes: its file's next interval doubles, as it was
 * written again within the last one.
 */
static void
trap_hot_send(struct trap_hot *h)
{
	if (trap_hot_release(h)) {
		h->level++;
		trap_flush_soon();
	}
}

/* The hot timer: the held records due go. */
static void
trap_hot_due(struct timer *t, void *arg)
{
	uint64_t now = loop_now_ms();

	(void)t;
	(void)arg;
	for (size_t i = 0; i < TRAP_HOT_MAX; i++)
		if (tr.hot[i].path != NULL && tr.hot[i].held &&
		    tr.hot[i].next_ms <= now)
			trap_hot_send(&tr.hot[i]);
	trap_hot_arm();
}

/* The file's slot, or NULL. */
static struct trap_hot *
trap_hot_find(uint32_t export_id, const char *path)
{
	for (size_t i = 0; i < TRAP_HOT_MAX; i++)
		if (tr.hot[i].path != NULL &&
		    tr.hot[i].export_id == export_id &&
		    strcmp(tr.hot[i].path, path) == 0)
			return &tr.hot[i];
	return NULL;
}

/* The file's slot, made in a free one or the least recently written's. */
static struct trap_hot *
trap_hot_get(uint32_t export_id, const char *path)
{
	struct trap_hot *h, *old = NULL;

	if ((h = trap_hot_find(export_id, path)) != NULL)
		return h;
	for (size_t i = 0; i < TRAP_HOT_MAX && h == NULL; i++)
		if (tr.hot[i].path == NULL)
			h = &tr.hot[i];
		else if (old == NULL || tr.hot[i].last_ms < old->last_ms)
			old = &tr.hot[i];
	if (h == NULL) {
		h = old;
		if (trap_hot_release(h))
			trap_flush_later();
		free(h->path);
	}
	memset(h, 0, sizeof *h);
	h->path = xstrdup(path);
	h->export_id = export_id;
	return h;
}

/*
 * Whether DATA record r waits in its file's slot rather than going with
 * the next flush (see the top).  A record of the file that is queued
 * already takes it in: only what comes after a flush, within the
 * file's interval, waits.
 */
static bool
trap_hot_hold(const struct dgram_trap *r)
{
	uint64_t now = loop_now_ms(), end, hend;
	struct trap_hot *h = trap_hot_get(r->export_id, r->path);

	if (h->held) {
		end = r->offset + r->length;
		hend = h->rec.offset + h->rec.length;
		if (r->offset < h->rec.offset)
			h->rec.offset = r->offset;
		h->rec.length = (end > hend ? end : hend) - h->rec.offset;
		if (r->time > h->rec.time)
			h->rec.time = r->time;
		h->last_ms = now;
		return true;
	}
	if (!h->queued && now < h->next_ms) {
		h->rec = *r;
		h->held = true;
		h->last_ms = now;
		trap_hot_arm();
		return true;
	}
	/*
	 * Written again soon (write-back comes in bursts up to a
	 * writeback_interval apart): the next one waits longer.
	 */
	if (!h->queued) {
		if (h->last_ms != 0 &&
		    now - h->last_ms <=
			trap_hot_interval(h->level) + TRAP_HOT_IDLE_MS)
			h->level++;
		else
			h->level = 0;
		h->queued = true;
	}
	h->last_ms = now;
	return false;
}

/* The queue went: each file's next record waits for its interval. */
static void
trap_hot_flushed(void)
{
	uint64_t now = loop_now_ms();

	for (size_t i = 0; i < TRAP_HOT_MAX; i++)
		if (tr.hot[i].path != NULL && tr.hot[i].queued) {
			tr.hot[i].queued = false;
			tr.hot[i].next_ms = now +
			    trap_hot_interval(tr.hot[i].level);
		}
}

/*
 * Everything held goes with the next flush, as a record of a file not
 * written on and on would (fsync, close), or now (leaving).
 */
static void
trap_hot_release_all(bool now)
{
	bool any = false;

	for (size_t i = 0; i < TRAP_HOT_MAX; i++)
		if (tr.hot[i].path != NULL) {
			any |= trap_hot_release(&tr.hot[i]);
			tr.hot[i].level = 0;
		}
	if (any && now)
		trap_flush_soon();
	else if (any)
		trap_flush_later();
	trap_hot_arm();
}

/*
 * Queue one record and make sure a flush is coming.  A change made for
 * another peer, or on disk, is news to our own mount too: with local
 * set, the record is applied to our caches at once, as a received one
 * would be (a change made through our own mount is known there).
 */
static void
trap_add(bool local, struct dgram_trap r)
{
	struct trap_hot *h;

	r.time = (int64_t)clock_global_ns();
	tr.local->noted(r.export_id, r.path, (uint64_t)r.time);
	if (r.path2 != NULL)
		tr.local->noted(r.export2, r.path2, (uint64_t)r.time);
	if (local)
		trap_apply(peer_self(), &r);
	if (r.kind == DGRAM_DATA) {
		if (trap_hot_hold(&r))
			return;
	} else {
		/* What is held of the paths it names goes first. */
		if ((h = trap_hot_find(r.export_id, r.path)) != NULL)
			trap_hot_release(h);
		if (r.path2 != NULL &&
		    (h = trap_hot_find(r.export2, r.path2)) != NULL)
			trap_hot_release(h);
	}
	trap_queue(&r);
	trap_flush_later();
}

/* The slot of (export_id, path). */
static struct trap_mine *
trap_mine_slot(uint32_t export_id, const char *path)
{
	uint32_t h = 2166136261u ^ export_id;

	for (const unsigned char *c = (const unsigned char *)path; *c; c++)
		h = (h ^ *c) * 16777619u;
	return &trap_mine[h % TRAP_MINE_SLOTS];
}

/* path was written, or a handle of it released, through pufs now. */
static void
trap_mine_note(uint32_t export_id, const char *path)
{
	struct trap_mine *m = trap_mine_slot(export_id, path);

	if (m->path == NULL || m->export_id != export_id ||
	    strcmp(m->path, path) != 0) {
		free(m->path);
		m->path = xstrdup(path);
		m->export_id = export_id;
	}
	m->until = loop_now_ms() + TRAP_MINE_MS;
}

/*
 * A request is about to be served on one of our exports (owner as for
 * trap_note): a WRITE's file is noted before its bytes land, so that the
 * disk watch, which may see them before trap_note, knows them ours.
 */
void
trap_serving(const struct proto_req *r, uint32_t owner)
{
	uint32_t ex;
	char *p;

	if (r->type != PROTO_WRITE ||
	    (p = tr.local->fh_path(r->fh, owner, &ex)) == NULL)
		return;
	trap_mine_note(ex, p);
	free(p);
}

/* Whether path was written through pufs within TRAP_MINE_MS. */
static bool
trap_mine_lately(uint32_t export_id, const char *path)
{
	const struct trap_mine *m = trap_mine_slot(export_id, path);

	return m->path != NULL && m->export_id == export_id &&
	    strcmp(m->path, path) == 0 && m->until > loop_now_ms();
}

/* Note the name r made, path/name, with the attributes of rep. */
static void
trap_created(bool local, const struct proto_req *r, const struct proto_rep *rep)
{
	char *p = xpathjoin(r->path, r->name);

	trap_add(local,
	    (struct dgram_trap){ .kind = DGRAM_CREATE,
		.export_id = r->export_id,
		.path = p,
		.attr = rep->attr });
	free(p);
}

/*
 * A request was served on one of our exports: note what it changed.
 * owner is the stream (or 0, our own mount) its handles belong to.
 */
void
trap_note(const struct proto_req *r, const struct proto_rep *rep,
    uint32_t owner)
{
	bool local = owner != 0;
	uint32_t ex = r->export_id;
	char *p = NULL, *p2 = NULL;

	if (rep->error != 0)
		return;
	switch (r->type) {
	case PROTO_CREATE:
	case PROTO_MKNOD:
	case PROTO_MKDIR:
	case PROTO_SYMLINK:
		trap_created(local, r, rep);
		break;
	case PROTO_LINK:
		p = xpathjoin(r->path2, r->name2);
		trap_add(local,
		    (struct dgram_trap){ .kind = DGRAM_CREATE,
			.export_id = r->export2,
			.path = p,
			.attr = rep->attr });
		/* The link count of the other names changed. */
		trap_add(local,
		    (struct dgram_trap){ .kind = DGRAM_ATTR,
			.export_id = ex,
			.path = r->path,
			.attr = rep->attr });
		break;
	case PROTO_UNLINK:
	case PROTO_RMDIR:
		p = xpathjoin(r->path, r->name);
		trap_add(local,
		    (struct dgram_trap){ .kind = DGRAM_REMOVE,
			.export_id = ex,
			.path = p });
		break;
	case PROTO_REPLACE:
		/* What CREATE, then RENAME, would have said. */
		trap_created(local, r, rep);
		/* FALLTHROUGH */
	case PROTO_RENAME:
		p = xpathjoin(r->path, r->name);
		p2 = xpathjoin(r->path2, r->name2);
		trap_add(local,
		    (struct dgram_trap){ .kind = DGRAM_RENAME,
			.export_id = ex,
			.path = p,
			.export2 = r->export2,
			.path2 = p2 });
		break;
	case PROTO_SETATTR:
		if (r->path[0] == '\0' && r->fh != 0)
			p = tr.local->fh_path(r->fh, owner, &ex);
		trap_add(local,
		    (struct dgram_trap){ .kind = DGRAM_ATTR,
			.export_id = ex,
			.path = p != NULL ? p : r->path,
			.attr = rep->attr });
		break;
	case PROTO_SETXATTR:
	case PROTO_REMOVEXATTR:
		trap_add(local,
		    (struct dgram_trap){ .kind = DGRAM_ATTR,
			.export_id = ex,
			.path = r->path });
		break;
	case PROTO_OPEN:
		/* An open with O_TRUNC (O_RDONLY too) empties the file. */
		if (r->flags & O_TRUNC)
			trap_add(local,
			    (struct dgram_trap){ .kind = DGRAM_DATA,
				.export_id = ex,
				.path = r->path,
				.length = UINT64_C(1) << 62 });
		break;
	case PROTO_FSYNC:
	case PROTO_RELEASE:
		/* A file fsync'ed or closed: what waits goes with the batch. */
		trap_hot_release_all(false);
		if (r->type == PROTO_RELEASE &&
		    (p = tr.local->fh_path(r->fh, owner, &ex)) != NULL &&
		    trap_mine_lately(ex, p))
			trap_mine_note(ex, p); /* its IN_CLOSE_WRITE follows */
		break;
	case PROTO_WRITE:
	case PROTO_FALLOCATE:
	case PROTO_COPY_RANGE: {
		uint64_t off = r->offset, len = 0;

		if (r->type == PROTO_COPY_RANGE) {
			p = tr.local->fh_path(r->fh2, owner, &ex);
			off = r->offset2;
			len = rep->value;
		} else {
			p = tr.local->fh_path(r->fh, owner, &ex);
			len = r->type == PROTO_WRITE ? rep->value : r->length;
		}
		if (p != NULL && len > 0 && r->type == PROTO_WRITE)
			trap_mine_note(ex, p);
		if (p != NULL && len > 0)
			trap_add(local,
			    (struct dgram_trap){ .kind = DGRAM_DATA,
				.export_id = ex,
				.path = p,
				.offset = off,
				.length = len });
		break;
	}
	default:
		break;
	}
	free(p);
	free(p2);
}

/*
 * A change seen on disk (watch.c): the same record as one made through
 * pufs; the attributes are not known, receivers only forget.  Our own
 * mount did not see it either.
 */
void
trap_note_disk(uint8_t kind, uint32_t export_id, const char *path)
{
	if (kind == DGRAM_DATA && trap_mine_lately(export_id, path))
		return; /* our own write, said already */
	tr.st.disk++;
	trap_add(true,
	    (struct dgram_trap){ .kind = kind,
		.export_id = export_id,
		.path = path,
		.length = kind == DGRAM_DATA ? UINT64_C(1) << 62 : 0 });
}

/* Changes were lost: skip a TRAP number, so receivers resynchronise. */
void
trap_skip(void)
{
	mcast_set_trap_seq(++tr.seq);
	tr.st.unsendable++;
}

/* The flush timer: send what is queued, in as few TRAPs as fit. */
static void
trap_flush(struct timer *t, void *arg)
{
	const struct dgram_trap *recs;
	uint8_t buf[DGRAM_MAX];
	struct dgram hdr;
	size_t n, len, taken;
	int rc;

	(void)t;
	(void)arg;
	while ((recs = trapq_records(tr.q, &n)), n > 0) {
		mcast_set_trap_seq(++tr.seq);
		mcast_fill_header(&hdr, DGRAM_TRAP);
		hdr.seq = tr.seq;
		rc = dgram_encode_traps(&hdr, recs, n, buf, sizeof buf, &len,
		    &taken);
		if (rc != 0) {
			/* Unsendable: skip its number so receivers resync. */
			log_warnx("trap: a change of %s cannot be sent (%s); "
				  "peers will resynchronise",
			    recs[0].path, strerror(-rc));
			trapq_consume(tr.q, 1);
			tr.st.unsendable++;
			continue;
		}
		mcast_send_bytes(buf, len);
		trapq_consume(tr.q, taken);
		tr.st.sent++;
		tr.st.records_sent += taken;
	}
	trap_hot_flushed();
}

/* Send at once what is queued (before leaving). */
void
trap_flush_now(void)
{
	if (tr.q == NULL)
		return;
	trap_hot_release_all(true);
	timer_wheel_del(loop_wheel(), &tr.flush);
	trap_flush(NULL, NULL);
}

/* Forget everything cached from peer p (gap, restart, departure). */
static void
trap_resync(struct peer *p)
{
	tr.st.resyncs++;
	log_debug("trap: forgetting what is cached from %s", p->name);
	tr.sink->forget_peer(p);
}

/* Apply one record from peer p. */
static void
trap_apply(struct peer *p, const struct dgram_trap *r)
{
	if (!tr.sink->changed(p, r->kind, r->export_id, r->path, r->offset,
		r->length))
		return;
	if (r->kind == DGRAM_RENAME)
		tr.sink->changed(p, r->kind, r->export2, r->path2, 0, 0);
	tr.st.records_applied++;
}

/* The trap-number state of a sender, made on first sight. */
static struct trap_sender *
trap_sender(const char *name)
{
	struct trap_sender *s;

	for (s = tr.senders; s != NULL; s = s->next)
		if (strcmp(s->name, name) == 0)
			return s;
	s = xcalloc(1, sizeof *s);
	tr.nsenders++;
	s->name = xstrdup(name);
	s->next = tr.senders;
	tr.senders = s;
	return s;
}

/*
 * A peer's state changed: whatever the kernel cached from it is void
 * (gone, or restarted); when it is down its sender state goes too (it
 * is remade when up).
 */
static void
trap_peer_state(struct peer *p, enum peer_state old)
{
	struct trap_sender **sp, *s;

	(void)old;
	if (!p->self)
		trap_resync(p);
	if (p->state != PEER_DOWN)
		return;
	for (sp = &tr.senders; (s = *sp) != NULL; sp = &s->next) {
		if (strcmp(s->name, p->name) == 0) {
			*sp = s->next;
			free(s->name);
			free(s);
			tr.nsenders--;
			return;
		}
	}
}

/* Senders whose trap numbers we follow, for status. */
unsigned
trap_senders(void)
{
	return tr.nsenders;
}

/* Any datagram from another peer: check its trap numbers, apply TRAPs. */
static void
trap_received(const struct dgram *d)
{
	struct peer *p = peer_by_name(d->name);
	struct trap_sender *s;
	enum trapq_verdict v;

	if (d->type == DGRAM_TRAP)
		tr.st.received++;
	if (p == NULL || p->state != PEER_UP || p->boot_id != d->boot_id)
		return; /* nothing of it is cached */
	s = trap_sender(d->name);
	v = trapq_seq_check(&s->seq, d->boot_id, d->type == DGRAM_TRAP, d->seq);
	if (v == TRAPQ_GAP) {
		tr.st.gaps++;
		log_debug("trap: datagrams from %s were lost (now at %llu)",
		    p->name, (unsigned long long)d->seq);
		trap_resync(p);
		peer_probe(p, "a gap in its TRAP numbers");
	}
	for (size_t i = 0; d->type == DGRAM_TRAP && i < d->ntraps; i++)
		trap_apply(p, &d->traps[i]);
}
