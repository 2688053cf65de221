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
 * readdir always agree.  Both are gathers (gather.c): one call per
 * holder, merged here when the last answer (or its timeout) is in.  With
 * multicast, a resolve's asks to other peers go as one LOCATE (find.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "merge.h"
#include "fs.h"

static time_t union_start_time;
static struct union_check_stats ucs;

/* What a resolve must learn. */
enum union_mode {
	UNION_ENTRY,   /* the entry, with fresh attributes */
	UNION_HOLDERS, /* the entry; attributes from a stale listing do */
	UNION_ANY,     /* whether any holder has the name */
	UNION_ASKED,   /* the holders, asked: no listing says it is absent */
};

static void union_resolve_mode(struct node *, const char *, enum union_mode,
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

	TAILQ_FOREACH(p, &peers, entry)
	{
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
	return (struct merge_hit){ .holder = h->peer,
		.peer = h->peer->name,
		.uri = h->peer->uri,
		.export_id = h->export_id,
		.graft = h->graft,
		.isdir = S_ISDIR(h->attr.mode) };
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
		e->attr.nlink = 1; /* unknown: disables find's leaf trick */
}

/*
 * n's attributes were replaced by a holder's answer, which may be of
 * another object now (its name was given to another file there): its
 * st_ino follows, so that node_foreach_name() finds it with the other
 * names of that object.  A replicated file's is its path's: kept.
 */
void
union_rekey(struct node *n)
{
	if (n->isdir || n->peer == NULL ||
	    cluster_export(n->peer, n->export_id))
		return;
	node_set_ino(n, union_file_ino(n->peer, &n->attr));
}

/*
 * Whether what n's name holds now (ino, the union inode number of a
 * holder's answer by path) is another file than the one open here
 * through n: its name was given to another file on the holder, or
 * elsewhere.  The descriptors are of the old one, which keeps n, as a
 * file renamed over (node_unnamed()); the name gets a node of its own,
 * and the kernel a new inode for it.  A file not open here keeps its
 * node (union_node()).
 */
bool
union_split(struct node *n, uint64_t ino)
{
	if (n->isdir || n->ino == 0 || n->ino == ino ||
	    TAILQ_EMPTY(&n->handles) || node_unnamed(n))
		return false;
	if (n->nlookup > 0)
		notify_entry(n->parent->id, n->name);
	node_unlink(n);
	return true;
}

/* The union inode number of a holder's file with attributes a. */
uint64_t
union_file_ino(const struct peer *p, const struct proto_attr *a)
{
	return node_ino_hash(p->name, a->dev, a->ino);
}

/* Fill an entry for a non-directory hit, shown as name. */
static void
union_file_entry(struct entry *e, const char *name, const struct hit *h)
{
	e->name = xstrdup(name);
	e->peer = h->peer;
	e->export_id = h->export_id;
	e->attr = h->attr;
	e->ino = union_file_ino(h->peer, &h->attr);
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
	struct hit *dirs, *kept;
	size_t nme;

	if (move_hidden(base))
		return; /* a copy being moved in: not there yet */
	if ((kept = cluster_collapse(hits, &n)) != NULL)
		hits = kept; /* a replicated file shows once */
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
			cluster_entry(e, upath);
			merge_entry_clear(&me[i]);
			continue;
		}
		dirs = xcalloc(me[i].ncopies, sizeof *dirs);
		for (size_t k = 0; k < me[i].ncopies; k++)
			dirs[k] = hits[me[i].copies[k]];
		union_dir_entry(e, me[i].name, upath, dirs, me[i].ncopies,
		    me[i].nlink_unknown);
		cluster_entry(e, upath);
		free(dirs);
		merge_entry_clear(&me[i]);
	}
	free(me);
	free(mh);
	free(kept);
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
	TAILQ_FOREACH(p, &peers, entry)
	{
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

/* All answers of a resolve are in: merge and pick the asked name. */
static void
union_resolve_done(struct gather *g)
{
	struct entry *ents = NULL, found;
	struct hit *hits;
	size_t n = 0, cap = 0, i, nh = 0;
	char *upath = union_join(g->path, g->base);
	bool virtual = g->pin == NULL && union_has_virtual_below(upath);
	int error = -ENOENT;

	if (g->any) {
		/* Held anywhere, under any shown name, or a virtual dir. */
		error = g->nhits > 0 || union_has_virtual_below(upath) ? 0
		    : g->error != 0 ? g->error
				    : -ENOENT;
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
		union_merge(g->base, upath, hits, nh, virtual, &ents, &n, &cap);
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
union_list_done(struct gather *g)
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
		     strcmp(g->hits[j].name, g->hits[i].name) == 0;
		     j++) {
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

/* Whether a base name is held anywhere in dir; cb gets 0 or -ENOENT. */
void
union_resolve_any(struct node *dir, const char *base, union_resolve_cb cb,
    void *arg)
{
	union_resolve_mode(dir, base, UNION_ANY, cb, arg);
}

/* Figures of the name checks, for status. */
void
union_check_stats(struct union_check_stats *st)
{
	*st = ucs;
}

/* Resolve name in dir; see pufs.h. */
void
union_resolve(struct node *dir, const char *name, union_resolve_cb cb,
    void *arg)
{
	union_resolve_mode(dir, name, UNION_ENTRY, cb, arg);
}

/*
 * Resolve name in dir for a change that needs only to know who holds
 * it (unlink, rmdir): a listing stale for its attributes alone answers.
 */
void
union_resolve_holders(struct node *dir, const char *name, union_resolve_cb cb,
    void *arg)
{
	union_resolve_mode(dir, name, UNION_HOLDERS, cb, arg);
}

/*
 * Resolve name in dir asking every copy's holder, whatever the cached
 * listings say: a rename's destination.  A name just made on another
 * peer, whose trap has not come yet, is in no listing; taken for absent,
 * the rename would make a second file of that name here instead of
 * replacing the other.
 */
void
union_resolve_asked(struct node *dir, const char *name, union_resolve_cb cb,
    void *arg)
{
	union_resolve_mode(dir, name, UNION_ASKED, cb, arg);
}

/*
 * Answer a resolve for one copy of the directory from its cached
 * listing, if it can: a hit when the name is listed, nothing when it is
 * not.  A name not listed is believed absent: traps keep listings
 * current, and a lost one makes its sender's listings go.  A listing
 * stale for its attributes alone still knows its names exactly
 * (dircache.c): it says a name is absent, or (for any and holders)
 * who holds it; only a listed name whose attributes are asked for goes
 * to the holder.  Returns whether answered.
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
	if (l == NULL || (stale && !dircache_names_fresh(l)))
		return false;
	if ((e = listing_find(l, g->base)) == NULL)
		return dircache_miss_sure(l); /* else the holder is asked */
	if (!dircache_ent_fresh(l, e) && !g->any && !g->holders)
		return false;
	gather_add(g, g->base, cp->peer, cp->export_id, &e->attr, false);
	return true;
}

/* Resolve name in dir: as an entry, its holders, or existence alone. */
static void
union_resolve_mode(struct node *dir, const char *name, enum union_mode mode,
    union_resolve_cb cb, void *arg)
{
	bool any = mode == UNION_ANY;
	struct gather *g;
	struct copy *copies;
	struct peer *p, *pin;
	size_t ncopies, baselen, i, asked = 0;
	char *upath, *rel;

	if (any || cluster_literal(dir)) {
		pin = NULL; /* a replicated directory's names are literal */
		baselen = strlen(name);
	} else
		node_split_name(name, &pin, &baselen);
	if (baselen == 0 || baselen >= PROTO_MAX_NAME) {
		cb(arg, baselen == 0 ? -ENOENT : -ENAMETOOLONG, NULL);
		return;
	}
	g = gather_new(dir);
	g->done = union_resolve_done;
	g->rcb = cb;
	g->arg = arg;
	g->base = xstrndup(name, baselen);
	g->shown = xstrdup(name);
	g->pin = pin;
	g->any = any;
	g->holders = mode == UNION_HOLDERS || mode == UNION_ASKED;
	if (!proto_name_ok(g->base)) {
		g->pending = 0;
		g->error = -EINVAL;
		gather_step(g);
		return;
	}
	upath = union_join(g->path, g->base);
	copies = union_copies(dir, &ncopies);
	ucs.done += any;
	for (i = 0; i < ncopies; i++) {
		const struct export *ex;

		if (pin != NULL && copies[i].peer != pin)
			continue;
		ex = union_export(copies[i].peer, copies[i].export_id);
		if (ex == NULL || (rel = union_relpath(ex, upath)) == NULL)
			continue;
		if (mode != UNION_ASKED &&
		    union_from_listing(g, &copies[i], ex)) {
			free(rel);
			continue;
		}
		find_ask(g, copies[i].peer, copies[i].export_id, rel, false);
		asked++;
		free(rel);
	}
	TAILQ_FOREACH(p, &peers, entry)
	{
		if (p->state != PEER_UP || (pin != NULL && p != pin))
			continue;
		for (uint32_t e = 0; e < p->nexports; e++)
			if (strcmp(p->exports[e].at, upath) == 0) {
				find_ask(g, p, e, "", true);
				asked++;
			}
	}
	free(copies);
	if (any) {
		ucs.calls += asked;
		ucs.local += asked == 0;
	}
	if (g->loc != NULL)
		find_send(g, upath);
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

	g->done = union_list_done;
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
	TAILQ_FOREACH(p, &peers, entry)
	{
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
	if (n != NULL &&
	    (n->isdir != e->isdir ||
		(n->attr.mode & S_IFMT) != (e->attr.mode & S_IFMT))) {
		node_unlink(n);
		n = NULL;
	}
	if (n != NULL && union_split(n, e->ino))
		n = NULL;
	if (n == NULL) {
		n = node_new(dir, e->name);
		node_split_name(n->name, &n->pin, &n->baselen);
		if (cluster_literal(dir)) {
			n->pin = NULL; /* a replicated directory's: literal */
			n->baselen = strlen(n->name);
		}
		n->isdir = e->isdir;
	}
	n->isvirtual = e->isvirtual;
	n->peer = e->peer;
	n->export_id = e->export_id;
	if (e->isdir)
		node_set_copies(n, e->copies, e->ncopies);
	if (!io_attr_pending(n)) /* else n->attr foresees a change */
		n->attr = e->attr;
	node_set_ino(n, e->ino);
	n->placed_ms = loop_now_ms();
	return n;
}
