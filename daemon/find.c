/*
 * find.c - location on the FUSE side: the daemon's half of LOCATE and
 * LOCATED (discovery/locate.c carries the datagrams).
 *
 * Asking: a resolve's asks to other peers' holders are collected here and
 * sent as one LOCATE; the LOCATED answers add their hits to the resolve's
 * gather (gather.c).  Answering: what our own exports hold at a path,
 * for discovery/locate.c to put in its LOCATED.
 */
#include <stdlib.h>
#include <string.h>

#include "merge.h"
#include "pufs.h"

/*
 * Location requests.  With multicast, the holders on other peers that a
 * resolve would ask one by one over TCP are asked at once with one
 * LOCATE datagram; each answers LOCATED with what it holds at that path
 * (nothing, too).  Answers are gathered for a short window; a peer that
 * has not answered by then (a lost datagram, a busy peer) is asked over
 * its stream as before, so a missing answer costs time, never
 * correctness.  An answer after that is counted and dropped.
 */
#define LOCATE_WINDOW_MIN_MS 30

/* What one peer would have been asked, for the fallback. */
struct loc_ask {
	struct peer *peer;
	uint32_t export_id;
	char *rel; /* owned */
	bool graft;
	bool answered;
};

struct locate {
	uint64_t id;
	struct gather *g;
	struct loc_ask *asks; /* owned */
	size_t nasks, cap;
	char *upath; /* the path asked; owned */
	struct timer window;
	LIST_ENTRY(locate) entry;
};

static LIST_HEAD(, locate) locates = LIST_HEAD_INITIALIZER(locates);
static uint64_t locate_next_id;
static struct locate_stats lst;

/* Ask (peer, export, rel): by LOCATE with multicast, else over TCP. */
void
find_ask(struct gather *g, struct peer *p, uint32_t export_id, const char *rel,
    bool graft)
{
	struct locate *l;

	if (p->self || conf->discovery != DISCOVERY_MULTICAST) {
		gather_call(g, p, export_id, PROTO_STAT, rel, graft,
		    gather_stat_cb);
		return;
	}
	if ((l = g->loc) == NULL) {
		l = g->loc = xcalloc(1, sizeof *l);
		l->g = g;
	}
	if (l->nasks == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 4;
		l->asks = xreallocarray(l->asks, l->cap, sizeof *l->asks);
	}
	l->asks[l->nasks++] = (struct loc_ask){ p, export_id, xstrdup(rel),
		graft, false };
}

/* Free a finished location request. */
static void
find_free(struct locate *l)
{
	LIST_REMOVE(l, entry);
	timer_wheel_del(loop_wheel(), &l->window);
	for (size_t i = 0; i < l->nasks; i++)
		free(l->asks[i].rel);
	free(l->asks);
	free(l->upath);
	free(l);
}

/* The request is over (all answered, or the window closed). */
static void
find_done(struct locate *l)
{
	struct gather *g = l->g;

	g->loc = NULL;
	find_free(l);
	g->pending--;
	gather_step(g);
}

/* The window closed: ask the silent peers over their streams. */
static void
find_window(struct timer *t, void *arg)
{
	struct locate *l = arg;
	struct gather *g = l->g;

	(void)t;
	for (size_t i = 0; i < l->nasks; i++) {
		if (l->asks[i].answered)
			continue;
		lst.fallbacks++;
		gather_call(g, l->asks[i].peer, l->asks[i].export_id,
		    PROTO_STAT, l->asks[i].rel, l->asks[i].graft,
		    gather_stat_cb);
	}
	find_done(l);
}

/* Send the LOCATE of the gather's pending asks and open the window. */
void
find_send(struct gather *g, const char *upath)
{
	struct locate *l = g->loc;
	double rtt = 0;
	uint64_t ms;

	l->id = ++locate_next_id;
	l->upath = xstrdup(upath);
	LIST_INSERT_HEAD(&locates, l, entry);
	g->pending++; /* held until done */
	for (size_t i = 0; i < l->nasks; i++)
		if (l->asks[i].peer->rtt_ms > rtt)
			rtt = l->asks[i].peer->rtt_ms;
	ms = (uint64_t)(4 * rtt) > LOCATE_WINDOW_MIN_MS ? (uint64_t)(4 * rtt)
							: LOCATE_WINDOW_MIN_MS;
	timer_init(&l->window, find_window, l);
	timer_wheel_add(loop_wheel(), &l->window, loop_now_ms() + ms);
	loop_wheel_kick();
	lst.sent++;
	mcast_locate(l->id, upath);
}

/*
 * A LOCATED from peer p: its hits at the path asked in request id.
 * Hits of exports we did not ask about (a peer's view may have changed)
 * are taken too: they are what it holds there.
 */
void
find_located(struct peer *p, uint64_t id, const uint32_t *exports,
    const struct proto_attr *attrs, size_t n)
{
	struct locate *l;
	struct gather *g;
	bool all = true, mine = false;

	LIST_FOREACH(l, &locates, entry)
	if (l->id == id)
		break;
	if (l == NULL) {
		lst.late++;
		return;
	}
	g = l->g;
	for (size_t i = 0; i < l->nasks; i++) {
		if (l->asks[i].peer == p && !l->asks[i].answered) {
			l->asks[i].answered = true;
			mine = true;
		}
		all = all && l->asks[i].answered;
	}
	if (!mine)
		return; /* a duplicate, or not asked */
	lst.answers++;
	for (size_t i = 0; i < n; i++) {
		const struct export *ex = exports[i] < p->nexports
		    ? &p->exports[exports[i]]
		    : NULL;

		if (ex != NULL)
			gather_add(g, g->base, p, exports[i], &attrs[i],
			    strcmp(ex->at, l->upath) == 0);
	}
	if (all)
		find_done(l);
}

/* Our exports' answers to a LOCATE, gathered for discovery/locate.c. */
struct find_found {
	unsigned pending;
	uint32_t *exports;        /* hits; owned */
	struct proto_attr *attrs; /* owned */
	size_t n;
	locate_found_cb cb;
	void *arg;
};

/* One more of our exports has answered; the last one calls back. */
static void
find_found_step(struct find_found *f)
{
	if (--f->pending > 0)
		return;
	f->cb(f->arg, f->exports, f->attrs, f->n);
	free(f->exports);
	free(f->attrs);
	free(f);
}

/* One export's STAT came back. */
static void
find_found_cb(struct call *c)
{
	struct find_found *f = c->arg;

	if (c->rep.error == 0) {
		f->exports[f->n] = c->req.export_id;
		f->attrs[f->n] = c->rep.attr;
		f->n++;
	}
	find_found_step(f);
}

/*
 * What our exports hold at union path upath: every export grafted at or
 * above it is asked (a STAT on the disk workers, like any call); cb gets
 * the hits once all have answered.
 */
void
find_local(const char *upath, locate_found_cb cb, void *arg)
{
	struct peer *self = peer_self();
	struct find_found *f = xcalloc(1, sizeof *f);
	char *rel;

	f->exports = xcalloc(self->nexports + 1, sizeof *f->exports);
	f->attrs = xcalloc(self->nexports + 1, sizeof *f->attrs);
	f->cb = cb;
	f->arg = arg;
	f->pending = 1;
	for (uint32_t e = 0; e < self->nexports; e++) {
		if ((rel = merge_relpath(self->exports[e].at, upath)) == NULL)
			continue;
		if (!proto_path_ok(rel)) {
			free(rel);
			continue;
		}
		f->pending++;
		call_send(call_new(self, PROTO_STAT, e, rel, find_found_cb, f));
		free(rel);
	}
	find_found_step(f);
}

/* Figures for status. */
void
find_stats(struct locate_stats *st)
{
	*st = lst;
	st->served = locate_served();
}
