/*
 * union.c - the union namespace: which holders have a name, and how
 * their answers merge.
 *
 * A directory node knows its copies (the exports, of any peer, where it
 * exists); the root's copies are every export grafted at "/".  Resolving
 * a name asks every copy of the parent, plus every export grafted exactly
 * at the child's path, and merges the answers by the rules of the spec
 * (their pure form, tested by table, is merge.c):
 *
 *   - directories merge; the lowest-named peer's copy (first export of
 *     that peer) supplies the attributes;
 *   - an export grafted below a path makes a virtual directory there;
 *   - a non-directory held by one peer only keeps its plain name; held by
 *     several, or beside a directory, each holder's shows as NAME@URI;
 *   - within one peer, the first export (configuration order) holding a
 *     non-directory shadows the later ones;
 *   - NAME@URI also resolves where there is no clash.
 *
 * Listing applies exactly the same merge to every name, so lookup and
 * readdir always agree.  Both are gathers: one call per holder, merged
 * when the last answer (or its timeout) is in.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "merge.h"
#include "pufs.h"

/* A hit tagged with the base name it was found under (listing). */
struct named_hit {
	const char *name;	/* owned by the gather's arena list */
	struct hit hit;
};

struct gather {
	struct node *dir;	/* holds a ref */
	char *path;		/* the directory's union path */
	char *base;		/* resolve: base name; NULL when listing */
	char *shown;		/* resolve: the name asked for */
	struct peer *pin;	/* resolve: NAME@URI's peer */
	bool any;		/* resolve: does any holder have it at all? */
	unsigned pending;
	int error;		/* first error not ENOENT, negative errno */
	struct named_hit *hits;
	size_t nhits, cap;
	char **names;		/* listing: owned name copies */
	size_t nnames, capnames;
	union_resolve_cb rcb;
	union_list_cb lcb;
	void *arg;
	struct locate *loc;	/* resolve: a LOCATE being gathered */
};

static time_t union_start_time;

static void union_resolve_mode(struct node *, const char *, bool,
    union_resolve_cb, void *);

/* The export id of a peer, or NULL. */
const struct export *
union_export(const struct peer *p, uint32_t id)
{
	return id < p->nexports ? &p->exports[id] : NULL;
}

/*
 * The path of union path upath inside export ex ("" for its root), or
 * NULL when upath is not at or below the export's graft point.
 */
char *
union_relpath(const struct export *ex, const char *upath)
{
	return merge_relpath(ex->at, upath);
}

/* The union path of relpath inside export ex (the reverse of above). */
char *
union_path_of(const struct export *ex, const char *relpath)
{
	return merge_path_of(ex->at, relpath);
}

/* Whether some live export is grafted strictly below upath. */
bool
union_has_virtual_below(const char *upath)
{
	struct peer *p;

	TAILQ_FOREACH(p, &peers, entry) {
		if (p->state != PEER_UP)
			continue;
		for (uint32_t i = 0; i < p->nexports; i++)
			if (merge_below(p->exports[i].at, upath))
				return true;
	}
	return false;
}

/* Attributes of a directory that exists only because of grafting. */
void
union_virtual_attr(const char *upath, struct proto_attr *a)
{
	if (union_start_time == 0)
		union_start_time = time(NULL);
	memset(a, 0, sizeof *a);
	a->mode = S_IFDIR | 0755;
	a->nlink = 2;
	a->uid = geteuid();
	a->gid = getegid();
	a->ino = node_ino_hash("", 0, node_ino_hash(upath, 0, 0));
	a->atime.sec = a->mtime.sec = a->ctime.sec = union_start_time;
}

/* Free what an entry owns. */
void
entry_clear(struct entry *e)
{
	free(e->name);
	free(e->copies);
	memset(e, 0, sizeof *e);
}

/* A hit as the merge rules see it. */
static struct merge_hit
union_merge_hit(const struct hit *h)
{
	return (struct merge_hit){ .holder = h->peer, .peer = h->peer->name,
	    .uri = h->peer->uri, .export_id = h->export_id,
	    .graft = h->graft, .isdir = S_ISDIR(h->attr.mode) };
}

/* Order of peers: by name (the list is sorted, but hits arrive any way). */
static int
union_hit_cmp(const struct hit *a, const struct hit *b)
{
	struct merge_hit ma = union_merge_hit(a), mb = union_merge_hit(b);

	return merge_hit_cmp(&ma, &mb);
}

/* qsort comparator: by name, then holder order. */
static int
union_named_cmp(const void *x, const void *y)
{
	const struct named_hit *a = x, *b = y;
	int c = strcmp(a->name, b->name);

	return c != 0 ? c : union_hit_cmp(&a->hit, &b->hit);
}

/* Fill an entry for a directory from its copies (hits), or virtual. */
static void
union_dir_entry(struct entry *e, const char *name, const char *upath,
    const struct hit *dirs, size_t ndirs, bool nlink_unknown)
{
	e->name = xstrdup(name);
	e->isdir = true;
	if (ndirs == 0) {
		e->isvirtual = true;
		union_virtual_attr(upath, &e->attr);
		e->ino = e->attr.ino;
		return;
	}
	e->copies = xcalloc(ndirs, sizeof *e->copies);
	for (size_t i = 0; i < ndirs; i++)
		e->copies[i] = (struct copy){ dirs[i].peer, dirs[i].export_id };
	e->ncopies = ndirs;
	e->attr = dirs[0].attr;
	e->ino = node_ino_hash(dirs[0].peer->name, dirs[0].attr.dev,
	    dirs[0].attr.ino);
	if (nlink_unknown)
		e->attr.nlink = 1;	/* unknown: disables find's leaf trick */
}

/* Fill an entry for a non-directory hit, shown as name. */
static void
union_file_entry(struct entry *e, const char *name, const struct hit *h)
{
	e->name = xstrdup(name);
	e->peer = h->peer;
	e->export_id = h->export_id;
	e->attr = h->attr;
	e->ino = node_ino_hash(h->peer->name, h->attr.dev, h->attr.ino);
}

/*
 * Merge the sorted hits for one base name into the shown entries,
 * appended to *out, by the rules of merge_name().  upath is the child's
 * union path.
 */
static void
union_merge(const char *base, const char *upath, const struct hit *hits,
    size_t n, bool virtual, struct entry **out, size_t *nout, size_t *cap)
{
	struct merge_hit *mh;
	struct merge_entry *me;
	struct hit *dirs;
	size_t nme;

	if (move_hidden(base))
		return;		/* a copy being moved in: not there yet */
	mh = xcalloc(n, sizeof *mh);
	me = xcalloc(n + 1, sizeof *me);
	for (size_t i = 0; i < n; i++)
		mh[i] = union_merge_hit(&hits[i]);
	nme = merge_name(base, mh, n, virtual, me);
	if (*nout + nme + 1 > *cap) {
		*cap = (*nout + nme + 1) * 2;
		*out = xreallocarray(*out, *cap, sizeof **out);
	}
	for (size_t i = 0; i < nme; i++) {
		struct entry *e = &(*out)[(*nout)++];

		memset(e, 0, sizeof *e);
		if (!me[i].isdir) {
			union_file_entry(e, me[i].name, &hits[me[i].hit]);
			merge_entry_clear(&me[i]);
			continue;
		}
		dirs = xcalloc(me[i].ncopies, sizeof *dirs);
		for (size_t k = 0; k < me[i].ncopies; k++)
			dirs[k] = hits[me[i].copies[k]];
		union_dir_entry(e, me[i].name, upath, dirs, me[i].ncopies,
		    me[i].nlink_unknown);
		free(dirs);
		merge_entry_clear(&me[i]);
	}
	free(me);
	free(mh);
}

/* The copies of a directory node: the root's follow the live exports. */
struct copy *
union_copies(struct node *dir, size_t *n)
{
	struct copy *c;
	struct peer *p;
	size_t k = 0;

	if (dir->parent != NULL) {
		c = xcalloc(dir->ncopies, sizeof *c);
		for (size_t i = 0; i < dir->ncopies; i++)
			if (dir->copies[i].peer->state == PEER_UP)
				c[k++] = dir->copies[i];
		*n = k;
		return c;
	}
	TAILQ_FOREACH(p, &peers, entry)
		if (p->state == PEER_UP)
			k += p->nexports;
	c = xcalloc(k, sizeof *c);
	k = 0;
	TAILQ_FOREACH(p, &peers, entry) {
		if (p->state != PEER_UP)
			continue;
		for (uint32_t i = 0; i < p->nexports; i++)
			if (strcmp(p->exports[i].at, "/") == 0)
				c[k++] = (struct copy){ p, i };
	}
	*n = k;
	return c;
}

/* The union path of name in directory path dpath. */
static char *
union_join(const char *dpath, const char *name)
{
	char *p;

	xasprintf(&p, "%s/%s", strcmp(dpath, "/") == 0 ? "" : dpath, name);
	return p;
}

/* Record a hit in the gather. */
static void
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
static const char *
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
static void
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

/* All answers of a resolve are in: merge and pick the asked name. */
static void
resolve_done(struct gather *g)
{
	struct entry *ents = NULL, found;
	struct hit *hits;
	size_t n = 0, cap = 0, i, nh = 0;
	char *upath = union_join(g->path, g->base);
	bool virtual = g->pin == NULL && union_has_virtual_below(upath);
	int error = -ENOENT;

	if (g->any) {
		/* Held anywhere, under any shown name, or a virtual dir. */
		error = g->nhits > 0 || union_has_virtual_below(upath) ? 0 :
		    g->error != 0 ? g->error : -ENOENT;
		g->rcb(g->arg, error, NULL);
		free(upath);
		gather_free(g);
		return;
	}
	if (g->nhits > 1)
		qsort(g->hits, g->nhits, sizeof *g->hits, union_named_cmp);
	hits = xcalloc(g->nhits + 1, sizeof *hits);
	for (i = 0; i < g->nhits; i++)
		hits[nh++] = g->hits[i].hit;
	memset(&found, 0, sizeof found);
	if (g->pin != NULL) {
		/* NAME@URI: that peer's non-directory, else its directory. */
		struct hit *dirs = xcalloc(nh + 1, sizeof *dirs);
		size_t nd = 0;

		for (i = 0; i < nh; i++) {
			if (!S_ISDIR(hits[i].attr.mode)) {
				union_file_entry(&found, g->shown, &hits[i]);
				error = 0;
				break;
			}
			dirs[nd++] = hits[i];
		}
		if (error != 0 && nd > 0) {
			union_dir_entry(&found, g->shown, upath, dirs, nd,
			    false);
			error = 0;
		}
		free(dirs);
	} else {
		union_merge(g->base, upath, hits, nh, virtual, &ents, &n,
		    &cap);
		for (i = 0; i < n; i++) {
			if (error != 0 && strcmp(ents[i].name, g->shown) == 0) {
				found = ents[i];
				error = 0;
				continue;
			}
			entry_clear(&ents[i]);
		}
		free(ents);
	}
	if (error != 0 && g->error != 0)
		error = g->error;
	g->rcb(g->arg, error, error == 0 ? &found : NULL);
	if (error == 0)
		entry_clear(&found);
	free(hits);
	free(upath);
	gather_free(g);
}

/* All answers of a listing are in: merge name by name. */
static void
list_done(struct gather *g)
{
	struct entry *ents = NULL;
	struct hit *hits;
	size_t n = 0, cap = 0, i, j;
	char *upath;

	if (g->nhits > 1)
		qsort(g->hits, g->nhits, sizeof *g->hits, union_named_cmp);
	hits = xcalloc(g->nhits + 1, sizeof *hits);
	for (i = 0; i < g->nhits; i = j) {
		bool virtual = false;
		size_t nh = 0;

		for (j = i; j < g->nhits &&
		    strcmp(g->hits[j].name, g->hits[i].name) == 0; j++) {
			/* A zero mode marks a virtual directory. */
			if (g->hits[j].hit.peer == NULL)
				virtual = true;
			else
				hits[nh++] = g->hits[j].hit;
		}
		upath = union_join(g->path, g->hits[i].name);
		union_merge(g->hits[i].name, upath, hits, nh, virtual, &ents,
		    &n, &cap);
		free(upath);
	}
	free(hits);
	if (n == 0 && g->error != 0)
		g->lcb(g->arg, g->error, NULL, 0);
	else
		g->lcb(g->arg, 0, ents, n);
	for (i = 0; i < n; i++)
		entry_clear(&ents[i]);
	free(ents);
	gather_free(g);
}

/* Finish the gather when its last call is in. */
static void
gather_step(struct gather *g)
{
	if (g->pending > 0)
		return;
	if (g->base != NULL)
		resolve_done(g);
	else
		list_done(g);
}

/* A STAT answer for resolve (or a graft root's, for a listing). */
static void
gather_stat_cb(struct call *c)
{
	struct gather *g = c->arg;
	const char *name = g->base;

	g->pending--;
	if (c->rep.error != 0)
		gather_error(g, c->rep.error);
	else {
		if (name == NULL) {	/* listing: the graft's last part */
			const char *at = c->peer->exports[c->req.export_id].at;

			name = gather_name(g, strrchr(at, '/') + 1);
		}
		gather_add(g, name, c->peer, c->req.export_id, &c->rep.attr,
		    c->idx == 1);
	}
	gather_step(g);
}

/* Add every entry of a holder's listing to the gather. */
static void
gather_listing(struct gather *g, struct peer *p, uint32_t export_id,
    const struct listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		gather_add(g, gather_name(g, l->ents[i].name), p, export_id,
		    &l->ents[i].attr, false);
}

static void gather_readdir_cb(struct call *);

/* Ask a holder for its listing, incrementally if we have a checkpoint. */
static void
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
		if (own)	/* too large to cache: served from the answer */
			listing_free(l);
	} else	/* a delta, but our base is gone: ask in full */
		gather_readdir(g, c->peer, c->req.export_id, c->req.path,
		    NULL);
	gather_step(g);
}

/* Send one call of a gather. */
static void
gather_call(struct gather *g, struct peer *p, uint32_t export_id,
    uint8_t type, const char *relpath, bool graft, void (*cb)(struct call *))
{
	struct call *c = call_new(p, type, export_id, relpath, cb, g);

	c->idx = graft;
	g->pending++;
	call_send(c);
}

/* A new gather over directory dir. */
static struct gather *
gather_new(struct node *dir)
{
	struct gather *g = xcalloc(1, sizeof *g);

	g->dir = dir;
	node_ref(dir);
	g->path = node_path(dir);
	g->pending = 1;		/* held until every call is sent */
	return g;
}

/*
 * Location requests.  With multicast, the holders on other peers that a
 * resolve would ask one by one over TCP are asked at once with one
 * LOCATE datagram; each answers LOCATED with what it holds at that path
 * (nothing, too).  Answers are gathered for a short window; a peer that
 * has not answered by then (a lost datagram, a busy peer) is asked over
 * its stream as before, so a missing answer costs time, never
 * correctness.  An answer after that is counted and dropped.
 */
#define LOCATE_WINDOW_MIN_MS	30

/* What one peer would have been asked, for the fallback. */
struct loc_ask {
	struct peer *peer;
	uint32_t export_id;
	char *rel;		/* owned */
	bool graft;
	bool answered;
};

struct locate {
	uint64_t id;
	struct gather *g;
	struct loc_ask *asks;	/* owned */
	size_t nasks, cap;
	struct timer window;
	LIST_ENTRY(locate) entry;
};

static LIST_HEAD(, locate) locates = LIST_HEAD_INITIALIZER(locates);
static uint64_t locate_next_id;
static struct locate_stats lst;

/* Ask (peer, export, rel): by LOCATE with multicast, else over TCP. */
static void
union_ask(struct gather *g, struct peer *p, uint32_t export_id,
    const char *rel, bool graft)
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
locate_free(struct locate *l)
{
	LIST_REMOVE(l, entry);
	timer_wheel_del(loop_wheel(), &l->window);
	for (size_t i = 0; i < l->nasks; i++)
		free(l->asks[i].rel);
	free(l->asks);
	free(l);
}

/* The request is over (all answered, or the window closed). */
static void
locate_done(struct locate *l)
{
	struct gather *g = l->g;

	g->loc = NULL;
	locate_free(l);
	g->pending--;
	gather_step(g);
}

/* The window closed: ask the silent peers over their streams. */
static void
locate_window(struct timer *t, void *arg)
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
	locate_done(l);
}

/* Send the LOCATE of the gather's pending asks and open the window. */
static void
locate_send(struct gather *g, const char *upath)
{
	struct locate *l = g->loc;
	double rtt = 0;
	uint64_t ms;

	l->id = ++locate_next_id;
	LIST_INSERT_HEAD(&locates, l, entry);
	g->pending++;		/* held until done */
	for (size_t i = 0; i < l->nasks; i++)
		if (l->asks[i].peer->rtt_ms > rtt)
			rtt = l->asks[i].peer->rtt_ms;
	ms = (uint64_t)(4 * rtt) > LOCATE_WINDOW_MIN_MS ? (uint64_t)(4 * rtt) :
	    LOCATE_WINDOW_MIN_MS;
	timer_init(&l->window, locate_window, l);
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
union_located(struct peer *p, uint64_t id, const uint32_t *exports,
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
		return;		/* a duplicate, or not asked */
	lst.answers++;
	for (size_t i = 0; i < n; i++) {
		const struct export *ex = union_export(p, exports[i]);
		char *upath = union_join(g->path, g->base);

		if (ex != NULL)
			gather_add(g, g->base, p, exports[i], &attrs[i],
			    strcmp(ex->at, upath) == 0);
		free(upath);
	}
	if (all)
		locate_done(l);
}

/* Our exports' answers to a LOCATE, gathered for locate.c. */
struct union_found {
	unsigned pending;
	uint32_t *exports;	/* hits; owned */
	struct proto_attr *attrs;	/* owned */
	size_t n;
	locate_found_cb cb;
	void *arg;
};

/* One more of our exports has answered; the last one calls back. */
static void
union_found_step(struct union_found *f)
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
union_found_cb(struct call *c)
{
	struct union_found *f = c->arg;

	if (c->rep.error == 0) {
		f->exports[f->n] = c->req.export_id;
		f->attrs[f->n] = c->rep.attr;
		f->n++;
	}
	union_found_step(f);
}

/*
 * What our exports hold at union path upath: every export grafted at or
 * above it is asked (a STAT on the disk workers, like any call); cb gets
 * the hits once all have answered.
 */
void
union_locate_local(const char *upath, locate_found_cb cb, void *arg)
{
	struct peer *self = peer_self();
	struct union_found *f = xcalloc(1, sizeof *f);
	char *rel;

	f->exports = xcalloc(self->nexports + 1, sizeof *f->exports);
	f->attrs = xcalloc(self->nexports + 1, sizeof *f->attrs);
	f->cb = cb;
	f->arg = arg;
	f->pending = 1;
	for (uint32_t e = 0; e < self->nexports; e++) {
		if ((rel = union_relpath(&self->exports[e], upath)) == NULL)
			continue;
		if (!proto_path_ok(rel)) {
			free(rel);
			continue;
		}
		f->pending++;
		call_send(call_new(self, PROTO_STAT, e, rel, union_found_cb,
		    f));
		free(rel);
	}
	union_found_step(f);
}

/* Figures for status. */
void
locate_stats(struct locate_stats *st)
{
	*st = lst;
	st->served = locate_served();
}

/* Whether a base name is held anywhere in dir; cb gets 0 or -ENOENT. */
void
union_resolve_any(struct node *dir, const char *base, union_resolve_cb cb,
    void *arg)
{
	union_resolve_mode(dir, base, true, cb, arg);
}

/* Resolve name in dir; see pufs.h. */
void
union_resolve(struct node *dir, const char *name, union_resolve_cb cb,
    void *arg)
{
	union_resolve_mode(dir, name, false, cb, arg);
}

/*
 * Answer a resolve for one copy of the directory from its fresh cached
 * listing, if there is one: a hit when the name is listed.  A name not
 * listed is believed absent too: traps keep listings current, and a lost
 * one makes its sender's listings go.  Returns whether answered.
 */
static bool
union_from_listing(struct gather *g, const struct copy *cp,
    const struct export *ex)
{
	const struct lent *e;
	struct listing *l;
	bool stale;
	char *drel = union_relpath(ex, g->path);

	if (drel == NULL)
		return false;
	l = dircache_get(cp->peer, cp->export_id, drel, &stale);
	free(drel);
	if (l == NULL || stale)
		return false;
	if ((e = listing_find(l, g->base)) != NULL) {
		gather_add(g, g->base, cp->peer, cp->export_id, &e->attr,
		    false);
		return true;
	}
	return true;
}

/* Resolve name in dir, as an entry or (any) as existence alone. */
static void
union_resolve_mode(struct node *dir, const char *name, bool any,
    union_resolve_cb cb, void *arg)
{
	struct gather *g;
	struct copy *copies;
	struct peer *p, *pin;
	size_t ncopies, baselen, i;
	char *upath, *rel;

	if (any) {
		pin = NULL;
		baselen = strlen(name);
	} else
		node_split_name(name, &pin, &baselen);
	if (baselen == 0 || baselen >= PROTO_MAX_NAME) {
		cb(arg, baselen == 0 ? -ENOENT : -ENAMETOOLONG, NULL);
		return;
	}
	g = gather_new(dir);
	g->rcb = cb;
	g->arg = arg;
	g->base = xstrndup(name, baselen);
	g->shown = xstrdup(name);
	g->pin = pin;
	g->any = any;
	if (!proto_name_ok(g->base)) {
		g->pending = 0;
		g->error = -EINVAL;
		gather_step(g);
		return;
	}
	upath = union_join(g->path, g->base);
	copies = union_copies(dir, &ncopies);
	for (i = 0; i < ncopies; i++) {
		const struct export *ex;

		if (pin != NULL && copies[i].peer != pin)
			continue;
		ex = union_export(copies[i].peer, copies[i].export_id);
		if (ex == NULL || (rel = union_relpath(ex, upath)) == NULL)
			continue;
		if (union_from_listing(g, &copies[i], ex)) {
			free(rel);
			continue;
		}
		union_ask(g, copies[i].peer, copies[i].export_id, rel, false);
		free(rel);
	}
	TAILQ_FOREACH(p, &peers, entry) {
		if (p->state != PEER_UP || (pin != NULL && p != pin))
			continue;
		for (uint32_t e = 0; e < p->nexports; e++)
			if (strcmp(p->exports[e].at, upath) == 0)
				union_ask(g, p, e, "", true);
	}
	free(copies);
	if (g->loc != NULL)
		locate_send(g, upath);
	free(upath);
	g->pending--;
	gather_step(g);
}

/* List dir; see pufs.h. */
void
union_list(struct node *dir, union_list_cb cb, void *arg)
{
	struct gather *g = gather_new(dir);
	struct copy *copies;
	struct peer *p;
	size_t ncopies, i, plen = strlen(g->path);
	char *rel;

	g->lcb = cb;
	g->arg = arg;
	copies = union_copies(dir, &ncopies);
	for (i = 0; i < ncopies; i++) {
		const struct export *ex = union_export(copies[i].peer,
		    copies[i].export_id);

		struct listing *l;
		bool stale;

		if (ex == NULL || (rel = union_relpath(ex, g->path)) == NULL)
			continue;
		l = dircache_get(copies[i].peer, copies[i].export_id, rel,
		    &stale);
		if (l != NULL && !stale)
			gather_listing(g, copies[i].peer, copies[i].export_id,
			    l);
		else
			gather_readdir(g, copies[i].peer, copies[i].export_id,
			    rel, l);
		free(rel);
	}
	free(copies);
	if (dir->pin != NULL)
		goto sent;
	/* Exports grafted below: their roots, or virtual directories. */
	TAILQ_FOREACH(p, &peers, entry) {
		if (p->state != PEER_UP)
			continue;
		for (uint32_t e = 0; e < p->nexports; e++) {
			const char *at = p->exports[e].at, *rest, *slash;

			if (!merge_below(at, g->path))
				continue;
			rest = at + (plen == 1 ? 1 : plen + 1);
			slash = strchr(rest, '/');
			if (slash == NULL) {
				gather_call(g, p, e, PROTO_STAT, "", true,
				    gather_stat_cb);
			} else {
				char *nm = xstrndup(rest,
				    (size_t)(slash - rest));
				struct proto_attr va = { 0 };

				gather_add(g, gather_name(g, nm), NULL, 0, &va,
				    false);
				free(nm);
			}
		}
	}
sent:
	g->pending--;
	gather_step(g);
}

/* The node for entry e under dir: reused when it is the same object. */
struct node *
union_node(struct node *dir, struct entry *e)
{
	struct node *n = node_child(dir, e->name);

	/*
	 * Same name, same kind: the same node, even when the object was
	 * replaced (a rename over it, elsewhere).  The kernel then keeps its
	 * inode and dentry and just sees new attributes (and drops the data
	 * cache, as mtime moved); a new node id would make it drop the
	 * dentry in the middle of a path walk.  Another kind of file must be
	 * another inode.
	 */
	if (n != NULL && (n->isdir != e->isdir ||
	    (n->attr.mode & S_IFMT) != (e->attr.mode & S_IFMT))) {
		node_unlink(n);
		n = NULL;
	}
	if (n == NULL) {
		n = node_new(dir, e->name);
		node_split_name(n->name, &n->pin, &n->baselen);
		n->isdir = e->isdir;
	}
	n->isvirtual = e->isvirtual;
	n->peer = e->peer;
	n->export_id = e->export_id;
	if (e->isdir)
		node_set_copies(n, e->copies, e->ncopies);
	n->attr = e->attr;
	n->ino = e->ino;
	return n;
}
