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

/* A sender we track trap numbers of. */
struct trap_sender {
	char *name; /* owned */
	struct trapq_seq seq;
	struct trap_sender *next;
};

static struct {
	struct trapq *q;
	struct timer flush;
	uint64_t seq; /* number of our last TRAP */
	struct trap_sender *senders;
	unsigned nsenders;
	struct trap_stats st;
	const struct trap_sink *sink;   /* what changes mean for caches */
	const struct trap_local *local; /* our exports' handles, journal */
} tr;

static void trap_flush(struct timer *, void *);
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
	peer_on_state(trap_peer_state);
	mcast_on_receive(trap_received);
}

/* Release the queue and the sender table. */
void
trap_free(void)
{
	struct trap_sender *s;

	timer_wheel_del(loop_wheel(), &tr.flush);
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

/*
 * Queue one record and make sure a flush is coming.  A change made for
 * another peer, or on disk, is news to our own mount too: with local
 * set, the record is applied to our caches at once, as a received one
 * would be (a change made through our own mount is known there).
 */
static void
trap_add(bool local, struct dgram_trap r)
{
	r.time = (int64_t)clock_global_ns();
	tr.local->noted(r.export_id, r.path);
	if (r.path2 != NULL)
		tr.local->noted(r.export2, r.path2);
	if (trapq_add(tr.q, &r) != 0)
		fatalx("trap: out of memory");
	if (local)
		trap_apply(peer_self(), &r);
	if (!timer_pending(&tr.flush)) {
		timer_wheel_add(loop_wheel(), &tr.flush,
		    loop_now_ms() + (uint64_t)(conf->trap_delay * 1000));
		loop_wheel_kick();
	}
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
		/* An open with O_TRUNC (for writing) empties the file. */
		if ((r->flags & O_TRUNC) && (r->flags & O_ACCMODE) != O_RDONLY)
			trap_add(local,
			    (struct dgram_trap){ .kind = DGRAM_DATA,
				.export_id = ex,
				.path = r->path,
				.length = UINT64_C(1) << 62 });
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
}

/* Send at once what is queued (before leaving). */
void
trap_flush_now(void)
{
	if (tr.q == NULL)
		return;
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
