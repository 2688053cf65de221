/*
 * gather.c - asking every copy of a directory and collecting the
 * answers.
 *
 * A gather is one resolve or one listing in flight: the calls sent to
 * the holders (STAT for a name, READDIR for a listing, or a listing from
 * the cache), and the hits their answers brought.  It counts the calls
 * still out; when the last one is in (or has timed out), its done
 * callback, set by union.c, merges the hits by the union's rules.
 * Location (find.c) adds to it the hits that LOCATED answers bring.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pufs.h"

/* Record a hit in the gather. */
void
gather_add(struct gather *g, const char *name, struct peer *peer,
    uint32_t export_id, const struct proto_attr *a, bool graft)
{
	if (g->nhits == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 16;
		g->hits = xreallocarray(g->hits, g->cap, sizeof *g->hits);
	}
	g->hits[g->nhits++] = (struct named_hit){
		.name = name,
		.hit = { peer, export_id, *a, graft },
	};
}

/* Keep a copy of a listed name for the gather's lifetime. */
const char *
gather_name(struct gather *g, const char *name)
{
	if (g->nnames == g->capnames) {
		g->capnames = g->capnames ? g->capnames * 2 : 64;
		g->names = xreallocarray(g->names, g->capnames,
		    sizeof *g->names);
	}
	return g->names[g->nnames++] = xstrdup(name);
}

/* Free a gather. */
void
gather_free(struct gather *g)
{
	for (size_t i = 0; i < g->nnames; i++)
		free(g->names[i]);
	free(g->names);
	free(g->hits);
	free(g->path);
	free(g->base);
	free(g->shown);
	node_unref(g->dir);
	free(g);
}

/* Note a holder's error: ENOENT and ENOTDIR just mean "not here". */
static void
gather_error(struct gather *g, int error)
{
	if (error != -ENOENT && error != -ENOTDIR && g->error == 0)
		g->error = error;
}

/* Finish the gather when its last call is in: its owner merges. */
void
gather_step(struct gather *g)
{
	struct call_caller was;

	if (g->pending > 0)
		return;
	/* Answers by datagram (find.c) come in as nobody's. */
	call_caller_save(&was);
	call_caller_restore(&g->caller);
	g->done(g);
	call_caller_restore(&was);
}

/* A STAT answer for resolve (or a graft root's, for a listing). */
void
gather_stat_cb(struct call *c)
{
	struct gather *g = c->arg;
	const char *name = g->base;

	g->pending--;
	if (c->rep.error != 0)
		gather_error(g, c->rep.error);
	else {
		if (name == NULL) { /* listing: the graft's last part */
			const char *at = c->peer->exports[c->req.export_id].at;

			name = gather_name(g, strrchr(at, '/') + 1);
		}
		gather_add(g, name, c->peer, c->req.export_id, &c->rep.attr,
		    c->idx == 1);
	}
	gather_step(g);
}

/* Add every entry of a holder's listing to the gather. */
void
gather_listing(struct gather *g, struct peer *p, uint32_t export_id,
    const struct listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		gather_add(g, gather_name(g, l->ents[i].name), p, export_id,
		    &l->ents[i].attr, false);
}

static void gather_readdir_cb(struct call *);

/* Ask a holder for its listing, incrementally if we have a checkpoint. */
void
gather_readdir(struct gather *g, struct peer *p, uint32_t export_id,
    const char *rel, const struct listing *base)
{
	struct call *c = call_new(p, PROTO_READDIR, export_id, rel,
	    gather_readdir_cb, g);

	if (base != NULL) {
		c->req.fh = base->boot;
		c->req.offset = base->gtime;
		c->req.offset2 = base->seq;
	}
	g->pending++;
	call_send(c);
}

/* A READDIR answer for a listing: cache it (merged), then use it. */
static void
gather_readdir_cb(struct call *c)
{
	struct gather *g = c->arg;
	struct listing *l;
	bool own;

	g->pending--;
	if (c->rep.error != 0)
		gather_error(g, c->rep.error);
	else if ((l = dircache_store(c->peer, c->req.export_id, c->req.path,
		      &c->rep, &own)) != NULL) {
		gather_listing(g, c->peer, c->req.export_id, l);
		if (own) /* too large to cache: served from the answer */
			listing_free(l);
	} else /* a delta, but our base is gone: ask in full */
		gather_readdir(g, c->peer, c->req.export_id, c->req.path, NULL);
	gather_step(g);
}

/* Send one call of a gather. */
void
gather_call(struct gather *g, struct peer *p, uint32_t export_id, uint8_t type,
    const char *relpath, bool graft, void (*cb)(struct call *))
{
	struct call *c = call_new(p, type, export_id, relpath, cb, g);

	c->idx = graft;
	g->pending++;
	call_send(c);
}

/* A new gather over directory dir. */
struct gather *
gather_new(struct node *dir)
{
	struct gather *g = xcalloc(1, sizeof *g);

	g->dir = dir;
	node_ref(dir);
	g->path = node_path(dir);
	g->pending = 1; /* held until every call is sent */
	call_caller_save(&g->caller);
	return g;
}
