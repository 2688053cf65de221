/*
 * dircache.c - directory listings of each holder, cached for
 * attr_timeout in the metadata cache (cache/meta-cache.c), and refreshed
 * incrementally.
 *
 * A listing is one holder's answer to READDIR for one directory of one
 * export, sorted by name, with the holder's checkpoint (its boot id, its
 * change number and the global time of the answer).  While fresh it
 * answers listings and lookups without a call.  When it expires it is
 * kept, stale: the next READDIR carries its checkpoint and the holder
 * answers with only what changed since (or in full if it cannot be
 * sure), which is merged in.  A change we make, or a trap about the
 * directory, makes the listing stale at once; a gap in a peer's traps,
 * its departure or restart drops all of its listings.
 *
 * Names and attributes go stale apart: a write or an attribute change
 * leaves the set of names exact, so a stale listing whose names are
 * still fresh can say a name is absent, or held, without a call (a
 * lookup of a new name, the check before a create).  Its names go stale
 * with a trap that may add, remove or rename one, or at its expiry.
 * The attributes of one entry go stale alone when a trap is about that
 * entry only (another's write or attribute change): the others still
 * answer lookups and getattrs, and the listing as a whole counts as
 * stale (dircache_get) until it is refreshed.  The echo of a change of
 * ours changes nothing: its answer put the change in place.
 *
 * Memory: the metadata cache charges each listing its entries and names
 * and evicts the least recently used beyond its budget (a quarter of
 * cache_size).  A listing larger than the whole budget is not cached at
 * all: it serves the listing that asked for it and is freed, and the
 * next listing asks the holder in full again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "datagram.h"
#include "pufs.h"

#define DIRCACHE_LISTING 1  /* meta-cache kinds */
#define DIRCACHE_DIR_ATTR 2 /* struct dircache_dir_attr */

/*
 * A directory's attributes as its holder told them in the answer to a
 * change of ours in it (PROTO_CAP_DIR_ATTR), for the directories no
 * cached listing shows: the kernel asks for them after every create and
 * unlink.  Fresh for attr_timeout; any trap or change about the
 * directory drops them (dircache_trap).
 */
struct dircache_dir_attr {
	uint64_t boot; /* the holder's boot id */
	struct proto_attr attr;
};

static struct meta_cache *dc;

/*
 * A change of ours at a path, in flight or just answered: the traps
 * about it (the holder's, and its disk watch's, which may come before
 * the answer or after a later change of ours) add or remove no name we
 * did not put in place from the answers.  Kept until a little after
 * the traps of the change must have come.
 */
struct dircache_expect {
	struct peer *peer;
	uint32_t export_id;
	uint32_t hash;  /* of path */
	char *path;     /* owned */
	bool echoed;    /* a trap about it came */
	bool answered;  /* kept for its traps */
	uint64_t until; /* wheel ms: forgotten then */
	struct dircache_expect *next;
};

static struct dircache_expect *expects;

static void dircache_dir_attr_drop(struct peer *, uint32_t, const char *);

/* Start the cache; its budget is a quarter of cache_size. */
void
dircache_init(const struct config *cfg)
{
	dc = meta_cache_new(loop_wheel(), (size_t)(cfg->cache_size / 4));
	if (dc == NULL)
		fatalx("dircache: cannot make the metadata cache");
}

/* Free the cache and every listing. */
void
dircache_free(void)
{
	meta_cache_free(dc);
	dc = NULL;
	while (expects != NULL) {
		struct dircache_expect *e = expects;

		expects = e->next;
		free(e->path);
		free(e);
	}
}

/* Free a listing (the cache's free function). */
static void
dircache_listing_free(void *arg)
{
	listing_free(arg);
}

/* Free a listing the cache does not hold (dircache_store's *own). */
void
listing_free(struct listing *l)
{

	for (size_t i = 0; i < l->n; i++)
		free(l->ents[i].name);
	free(l->ents);
	free(l);
}

/* The key of (peer, export, path): name NUL export NUL path. */
static size_t
dircache_key(char *buf, size_t len, const struct peer *p, uint32_t export_id,
    const char *path)
{
	int n = snprintf(buf, len, "%s%c%u%c%s", p->name, 0, export_id, 0,
	    path);

	return n < 0 || (size_t)n >= len ? 0 : (size_t)n;
}

/* qsort / bsearch order of entries. */
static int
dircache_cmp(const void *a, const void *b)
{
	return strcmp(((const struct lent *)a)->name,
	    ((const struct lent *)b)->name);
}

/* The entry called name in l, or NULL. */
const struct lent *
listing_find(const struct listing *l, const char *name)
{
	struct lent key = { .name = (char *)name };

	return l->n
	    ? bsearch(&key, l->ents, l->n, sizeof *l->ents, dircache_cmp)
	    : NULL;
}

/*
 * The cached listing of (p, export_id, path): fresh, or (with *stale
 * set) kept for an incremental refresh; NULL if none or if the holder
 * restarted since.
 */
struct listing *
dircache_get(struct peer *p, uint32_t export_id, const char *path, bool *stale)
{
	char key[PROTO_MAX_PATH + 128];
	size_t klen = dircache_key(key, sizeof key, p, export_id, path);
	struct listing *l;

	*stale = false;
	if (klen == 0 ||
	    (l = meta_cache_get_stale(dc, DIRCACHE_LISTING, key, klen,
		 stale)) == NULL)
		return NULL;
	if (l->boot != p->boot_id) {
		meta_cache_drop(dc, DIRCACHE_LISTING, key, klen);
		return NULL;
	}
	if (l->some_stale)
		*stale = true; /* as a whole; see dircache_ent_fresh */
	return l;
}

/*
 * Whether entry e of listing l (from dircache_get) has fresh
 * attributes: the listing's are, and no trap was about e since.
 */
bool
dircache_ent_fresh(const struct listing *l, const struct lent *e)
{
	return l->attrs_ms > timer_wheel_now(loop_wheel()) && !e->stale;
}

/* Bytes a listing is charged. */
static size_t
dircache_bytes(const struct listing *l)
{
	return sizeof *l + l->cap * sizeof *l->ents + l->name_bytes;
}

/*
 * Put (or re-put) l, fresh for attr_timeout.  Returns 0, or a negative
 * errno when the cache would not take it (larger than its budget): l is
 * then the caller's again and no longer cached.
 */
static int
dircache_put(struct peer *p, uint32_t export_id, const char *path,
    struct listing *l, bool fresh)
{
	char key[PROTO_MAX_PATH + 128];
	size_t klen = dircache_key(key, sizeof key, p, export_id, path);
	uint64_t expires = loop_now_ms();

	if (klen == 0)
		return -ENAMETOOLONG;
	if (fresh) {
		expires += (uint64_t)(conf->attr_timeout * 1000);
		l->names_ms = expires;
	}
	l->attrs_ms = expires;
	return meta_cache_put(dc, DIRCACHE_LISTING, key, klen, l,
	    dircache_bytes(l), dircache_listing_free, expires,
	    META_CACHE_KEEP_STALE);
}

/* qsort order of delta entries by name. */
static int
dircache_dcmp(const void *a, const void *b)
{
	return strcmp((*(const struct proto_dirent *const *)a)->name,
	    (*(const struct proto_dirent *const *)b)->name);
}

/*
 * One entry merged in place, as each of our own creates and removals
 * does: found by bisection, the entries after it moved by one, the
 * array doubled when full.  A new array per entry, as below, made a
 * create in a directory of n entries allocate and zero n of them (a
 * quarter of a MiB at 2,000), and the heap, grown by each larger array
 * in turn, held 180 MiB after 2,000 creates.
 */
static void
dircache_merge_one(struct listing *l, const struct proto_dirent *d)
{
	size_t lo = 0, hi = l->n, mid;
	struct lent *e;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (strcmp(l->ents[mid].name, d->name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	e = &l->ents[lo];
	if (lo < l->n && strcmp(e->name, d->name) == 0) {
		if (d->attr.mode != 0) { /* changed */
			e->attr = d->attr;
			e->stale = false;
			return;
		}
		l->name_bytes -= strlen(e->name) + 1; /* removed */
		free(e->name);
		memmove(e, e + 1, (l->n - lo - 1) * sizeof *e);
		l->n--;
		return;
	}
	/* Removing what is not there is nothing. */
	if (d->attr.mode == 0)
		return;
	/* Room for it, and one more as ever. */
	if (l->n + 2 > l->cap) {
		l->cap = l->cap * 2 > l->n + 2 ? l->cap * 2 : l->n + 2;
		if (l->cap < 8)
			l->cap = 8;
		l->ents = xreallocarray(l->ents, l->cap, sizeof *l->ents);
		e = &l->ents[lo];
	}
	memmove(e + 1, e, (l->n - lo) * sizeof *e);
	*e = (struct lent){ .name = xstrdup(d->name), .attr = d->attr };
	l->name_bytes += strlen(d->name) + 1;
	l->n++;
}

/*
 * Merge a delta (nents entries, in any order) into l, sorted by name: the
 * two are walked side by side into a new array; added and changed
 * entries take the delta's attributes, removed ones (mode 0) go.  Pure:
 * only l changes (t/unit/test-merge.c).
 */
void
dircache_merge(struct listing *l, const struct proto_dirent *ents, size_t nents)
{
	const struct proto_dirent **d;
	struct lent *out;
	size_t i = 0, j = 0, k = 0;
	int c;

	if (nents == 1) {
		dircache_merge_one(l, ents);
		return;
	}
	d = xcalloc(nents + 1, sizeof *d);
	out = xcalloc(l->n + nents + 1, sizeof *out);
	for (size_t x = 0; x < nents; x++)
		d[x] = &ents[x];
	if (nents > 1)
		qsort(d, nents, sizeof *d, dircache_dcmp);
	while (i < l->n || j < nents) {
		if (j == nents)
			c = -1;
		else if (i == l->n)
			c = 1;
		else
			c = strcmp(l->ents[i].name, d[j]->name);
		if (c < 0) {
			out[k++] = l->ents[i++];
			continue;
		}
		if (c == 0)
			free(l->ents[i++].name);
		/* The delta's entry: added or changed, unless removed. */
		if (d[j]->attr.mode != 0) {
			out[k].name = xstrdup(d[j]->name);
			out[k++].attr = d[j]->attr;
		}
		j++;
	}
	free(l->ents);
	free(d);
	l->ents = out;
	l->cap = l->n + nents + 1;
	l->n = k;
	l->name_bytes = 0;
	for (k = 0; k < l->n; k++)
		l->name_bytes += strlen(l->ents[k].name) + 1;
}

/*
 * Store a READDIR answer of (p, export_id, path): a whole listing
 * replaces the cached one, a delta is merged into it.  Returns the
 * listing now cached (valid until the next cache operation), or NULL
 * when a delta came and there is nothing to merge it into (ask again in
 * full then).  A listing larger than the cache's budget is not cached:
 * it is returned with *own set, for the caller to use and then free
 * with listing_free().
 */
struct listing *
dircache_store(struct peer *p, uint32_t export_id, const char *path,
    const struct proto_rep *rep, bool *own)
{
	struct listing *l;
	bool stale;

	*own = false;
	if (rep->flags & PROTO_LIST_DELTA) {
		if ((l = dircache_get(p, export_id, path, &stale)) == NULL)
			return NULL;
		dircache_merge(l, rep->ents, rep->nents);
		/* Current as of the answer, the entries not in it too. */
		for (size_t i = 0; i < l->n; i++)
			l->ents[i].stale = false;
		l->some_stale = false;
	} else {
		struct listing *old = dircache_get(p, export_id, path, &stale);

		l = xcalloc(1, sizeof *l);
		if (old != NULL) /* still hot, if it was */
			l->moved_ms = old->moved_ms;
		l->cap = l->n = rep->nents;
		l->ents = xcalloc(l->n + 1, sizeof *l->ents);
		for (size_t i = 0; i < rep->nents; i++) {
			l->ents[i].name = xstrdup(rep->ents[i].name);
			l->ents[i].attr = rep->ents[i].attr;
			l->name_bytes += strlen(rep->ents[i].name) + 1;
		}
		if (l->n > 1)
			qsort(l->ents, l->n, sizeof *l->ents, dircache_cmp);
	}
	l->boot = p->boot_id;
	l->gtime = rep->fh;
	l->seq = rep->value;
	if (dircache_put(p, export_id, path, l, true) != 0)
		*own = true;
	return l;
}

/*
 * We changed entry name of directory dir ourselves and know what it is
 * now (a NULL attr: removed; left: what the object's other names show
 * after, if the holder said, else NULL): update the cached listing in
 * place instead of asking the holder again.  A fresh one stays fresh;
 * one stale for its attributes alone keeps exact names; one whose names
 * are stale is left to refresh.  Removing one of several hard links
 * changes the others' link count and change time: they take left, or
 * their attributes go stale.
 */
static void
dircache_set_left(struct peer *p, uint32_t export_id, const char *dir,
    const char *name, const struct proto_attr *attr,
    const struct proto_attr *left)
{
	char key[PROTO_MAX_PATH + 128];
	size_t klen = dircache_key(key, sizeof key, p, export_id, dir);
	struct proto_dirent d = { .name = name };
	const struct lent *e;
	struct listing *l;
	bool stale, linked = false;

	if (klen == 0 ||
	    (l = meta_cache_get_stale(dc, DIRCACHE_LISTING, key, klen,
		 &stale)) == NULL ||
	    !dircache_names_fresh(l))
		return;
	if (attr != NULL)
		d.attr = *attr; /* mode 0 in d means removed */
	else if ((e = listing_find(l, name)) != NULL && e->attr.nlink > 1) {
		linked = left != NULL && left->dev == e->attr.dev &&
		    left->ino == e->attr.ino;
		stale |= !linked;
	}
	dircache_merge(l, &d, 1);
	for (size_t i = 0; linked && i < l->n; i++)
		if (l->ents[i].attr.dev == left->dev &&
		    l->ents[i].attr.ino == left->ino)
			l->ents[i].attr = *left;
	if (dircache_put(p, export_id, dir, l, !stale) != 0)
		listing_free(l); /* grew past the budget */
}

/* We made or removed entry name of dir; see dircache_set_left(). */
void
dircache_set(struct peer *p, uint32_t export_id, const char *dir,
    const char *name, const struct proto_attr *attr)
{
	dircache_set_left(p, export_id, dir, name, attr, NULL);
}

/*
 * We unlinked name from dir; left, if not NULL, is what the object's
 * other names show now (PROTO_CAP_CHANGE_ATTR).
 */
void
dircache_unlinked(struct peer *p, uint32_t export_id, const char *dir,
    const char *name, const struct proto_attr *left)
{
	dircache_set_left(p, export_id, dir, name, NULL, left);
}

/*
 * Whether attributes a are older than b: their change time is earlier.
 * A listing taken before a change and stored after it must not take an
 * entry back (its size before our writes went back, say).
 */
bool
dircache_attr_older(const struct proto_attr *a, const struct proto_attr *b)
{
	return a->ctime.sec < b->ctime.sec ||
	    (a->ctime.sec == b->ctime.sec && a->ctime.nsec < b->ctime.nsec);
}

/*
 * The holder has just told us the attributes of the entry at path (an
 * open, a stat, a directory's after a change of ours in it): a cached
 * listing that shows it must not answer with older ones.  Updated in
 * place; the listing's expiry stays.  Two answers may come in another
 * order than they were made: the later change stays.  A listing that
 * does not show it (a name made elsewhere whose trap is on its way,
 * found by asking the holder) does not know its names: stale.
 */
void
dircache_update(struct peer *p, uint32_t export_id, const char *path,
    const struct proto_attr *attr)
{
	char key[PROTO_MAX_PATH + 128];
	const char *slash;
	struct listing *l;
	struct lent *e;
	char *dir;
	size_t klen;

	if (path == NULL || path[0] == '\0')
		return;
	slash = strrchr(path, '/');
	dir = slash ? xstrndup(path, (size_t)(slash - path)) : xstrdup("");
	klen = dircache_key(key, sizeof key, p, export_id, dir);
	/* Stale for its attributes, its names may still answer misses. */
	if (klen != 0 &&
	    (l = meta_cache_get_stale(dc, DIRCACHE_LISTING, key, klen, NULL)) !=
		NULL) {
		e = (struct lent *)listing_find(l, slash ? slash + 1 : path);
		if (e != NULL &&
		    (e->attr.mode & S_IFMT) == (attr->mode & S_IFMT)) {
			if (!dircache_attr_older(attr, &e->attr)) {
				e->attr = *attr;
				e->stale = false;
			}
		} else /* it shows another object, or none: ask again */
			dircache_stale(p, export_id, dir);
	}
	free(dir);
}

/*
 * The listing of directory path changed, perhaps its names too: refresh
 * it at the next use.
 */
void
dircache_stale(struct peer *p, uint32_t export_id, const char *path)
{
	char key[PROTO_MAX_PATH + 128];
	size_t klen = dircache_key(key, sizeof key, p, export_id, path);
	struct listing *l;

	if (klen == 0 ||
	    (l = meta_cache_get_stale(dc, DIRCACHE_LISTING, key, klen, NULL)) ==
		NULL)
		return;
	l->names_ms = 0;
	l->attrs_ms = 0;
	meta_cache_touch(dc, DIRCACHE_LISTING, key, klen,
	    timer_wheel_now(loop_wheel()));
}

/* Whether the names of l are exact now (see the top of the file). */
bool
dircache_names_fresh(const struct listing *l)
{
	return l->names_ms > timer_wheel_now(loop_wheel());
}

/*
 * Whether a name l does not list is surely absent.  Not while the
 * directory is hot: another peer changed its names lately (a trap
 * said so).  Its holder sends the traps of further changes up to
 * trap_delay after them, so one made just now, maybe by a third peer
 * that has already told its user it is done, is in no listing here
 * yet; the holder is asked.  Misses in directories only we change, and
 * in those others left alone for a while, stay local.
 */
bool
dircache_miss_sure(const struct listing *l)
{
	return l->moved_ms <= timer_wheel_now(loop_wheel());
}

/*
 * Another peer changed the names of l: it is hot for two trap delays
 * (the traps of changes made now are sent by then), and a second for
 * their way here and a loaded loop.
 */
static void
dircache_moved(struct listing *l)
{
	l->moved_ms = timer_wheel_now(loop_wheel()) +
	    (uint64_t)((2 * conf->trap_delay + 1) * 1000);
}

/* Free an expected change and unlink it from the list. */
static void
dircache_expect_drop(struct dircache_expect **ep)
{
	struct dircache_expect *e = *ep;

	*ep = e->next;
	free(e->path);
	free(e);
}

/* FNV-1a of a path. */
static uint32_t
dircache_hash(const char *path)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *c = (const unsigned char *)path; *c; c++)
		h = (h ^ *c) * 16777619u;
	return h;
}

/*
 * The change of ours expected at path (with pending, one not answered
 * yet), or NULL; old ones go.
 */
static struct dircache_expect **
dircache_expect_find(struct peer *p, uint32_t export_id, const char *path,
    bool pending)
{
	uint64_t now = timer_wheel_now(loop_wheel());
	uint32_t h = dircache_hash(path);
	struct dircache_expect **ep = &expects;

	while (*ep != NULL) {
		if ((*ep)->until <= now) {
			dircache_expect_drop(ep);
			continue;
		}
		if ((*ep)->hash == h && (*ep)->peer == p &&
		    (*ep)->export_id == export_id &&
		    strcmp((*ep)->path, path) == 0 &&
		    !(pending && (*ep)->answered))
			return ep;
		ep = &(*ep)->next;
	}
	return NULL;
}

/* Whether a trap about path is the echo of a change of ours. */
static bool
dircache_echo(struct peer *p, uint32_t export_id, const char *path)
{
	struct dircache_expect **ep = dircache_expect_find(p, export_id, path,
	    false);

	if (ep == NULL)
		return false;
	(*ep)->echoed = true;
	return true;
}

/* Expect the traps of a change of ours at dir/name. */
static void
dircache_expect_one(struct peer *p, uint32_t export_id, const char *dir,
    const char *name)
{
	struct dircache_expect *e = xcalloc(1, sizeof *e);

	e->peer = p;
	e->export_id = export_id;
	e->path = xpathjoin(dir, name);
	e->hash = dircache_hash(e->path);
	/* Its call times out by then. */
	e->until = timer_wheel_now(loop_wheel()) + 1000 +
	    (uint64_t)(conf->op_timeout * 1000);
	e->next = expects;
	expects = e;
}

/* The change of dircache_expect_one() was answered; see below. */
static void
dircache_expected_one(struct peer *p, uint32_t export_id, const char *dir,
    const char *name, bool done)
{
	char *path = xpathjoin(dir, name);
	struct dircache_expect **ep = dircache_expect_find(p, export_id, path,
	    true);

	free(path);
	if (ep == NULL)
		return;
	if (!done) {
		/* The trap was another's change: names and dir's times. */
		if ((*ep)->echoed) {
			dircache_stale(p, export_id, dir);
			dircache_changed(p, export_id, dir);
		}
		dircache_expect_drop(ep);
		return;
	}
	(*ep)->answered = true;
	(*ep)->until = timer_wheel_now(loop_wheel()) + 500 +
	    (uint64_t)(conf->trap_delay * 2000);
}

/*
 * Whether request r makes, removes or renames a name (a second: two; a
 * link makes only its second, path2/name2).
 */
static bool
dircache_names_req(const struct proto_req *r, bool *two)
{
	*two = r->type == PROTO_RENAME || r->type == PROTO_REPLACE;
	switch (r->type) {
	case PROTO_LINK:
		return r->path2 != NULL && r->name2 != NULL;
	case PROTO_CREATE:
	case PROTO_MKNOD:
	case PROTO_MKDIR:
	case PROTO_SYMLINK:
	case PROTO_UNLINK:
	case PROTO_RMDIR:
	case PROTO_RENAME:
	case PROTO_REPLACE:
		return r->path != NULL && r->name != NULL;
	default:
		return false;
	}
}

/*
 * We are about to send r to p: if it makes, removes or renames a name,
 * the traps about it are echoes until a little after its answer.
 */
void
dircache_expect(struct peer *p, const struct proto_req *r)
{
	bool two;

	if (!dircache_names_req(r, &two))
		return;
	if (r->type == PROTO_LINK)
		dircache_expect_one(p, r->export2, r->path2, r->name2);
	else
		dircache_expect_one(p, r->export_id, r->path, r->name);
	if (two)
		dircache_expect_one(p, r->export2, r->path2, r->name2);
}

/*
 * The answer of r came (done: the change was made).  If it failed, a
 * trap taken for its echo was about someone else's change: the
 * listing's names are stale.  If it was made, its traps may still be on
 * their way: expected for a few trap delays more.
 */
void
dircache_expected(struct peer *p, const struct proto_req *r, bool done)
{
	bool two;

	if (!dircache_names_req(r, &two))
		return;
	if (r->type == PROTO_LINK)
		dircache_expected_one(p, r->export2, r->path2, r->name2, done);
	else
		dircache_expected_one(p, r->export_id, r->path, r->name, done);
	if (two)
		dircache_expected_one(p, r->export2, r->path2, r->name2, done);
}

/* Drop the listings of directory dir/name of p's export and below. */
void
dircache_drop_below(struct peer *p, uint32_t export_id, const char *dir,
    const char *name)
{
	char key[PROTO_MAX_PATH + 128];
	char *path = xpathjoin(dir, name);
	size_t klen = dircache_key(key, sizeof key, p, export_id, path);

	/* By prefix: "a" drops "ab" too, which only costs a new listing. */
	if (klen != 0) {
		meta_cache_drop_prefix(dc, DIRCACHE_LISTING, key, klen);
		meta_cache_drop_prefix(dc, DIRCACHE_DIR_ATTR, key, klen);
	}
	free(path);
}

/* The cached listing of (p, export_id, dir) if its names are exact. */
static struct listing *
dircache_names(struct peer *p, uint32_t export_id, const char *dir)
{
	struct listing *l;
	bool stale;

	l = dircache_get(p, export_id, dir, &stale);
	return l != NULL && dircache_names_fresh(l) ? l : NULL;
}

/*
 * We renamed dir/name to dir2/name2 on p (flags as rename(2)'s) and it
 * worked: the entry moves in the cached listings, whose names stay
 * exact.  What cannot be followed so (a directory, whose own listings
 * are kept by path; an exchange; an entry not listed) makes both
 * listings stale and drops those of the two paths and below.
 */
void
dircache_renamed(struct peer *p, uint32_t export_id, const char *dir,
    const char *name, uint32_t export2, const char *dir2, const char *name2,
    unsigned flags)
{
	struct listing *l, *l2;
	const struct lent *e;
	struct proto_attr a;

	if ((flags & RENAME_EXCHANGE) ||
	    (l = dircache_names(p, export_id, dir)) == NULL ||
	    (e = listing_find(l, name)) == NULL || S_ISDIR(e->attr.mode) ||
	    (l2 = dircache_names(p, export2, dir2)) == NULL) {
		dircache_stale(p, export_id, dir);
		dircache_stale(p, export2, dir2);
		/* A directory's own listings, and below, are of other paths. */
		dircache_drop_below(p, export_id, dir, name);
		dircache_drop_below(p, export2, dir2, name2);
		return;
	}
	a = e->attr;
	if ((e = listing_find(l2, name2)) != NULL && e->attr.dev == a.dev &&
	    e->attr.ino == a.ino)
		return; /* two names of one file: rename(2) did nothing */
	dircache_set(p, export_id, dir, name, NULL);
	dircache_set(p, export2, dir2, name2, &a);
}

/* Forget what dircache_dir_attr_set() kept of directory path. */
static void
dircache_dir_attr_drop(struct peer *p, uint32_t export_id, const char *path)
{
	char key[PROTO_MAX_PATH + 128];
	size_t klen = dircache_key(key, sizeof key, p, export_id, path);

	if (klen != 0)
		meta_cache_drop(dc, DIRCACHE_DIR_ATTR, key, klen);
}

/*
 * The holder answered a change of ours in directory path with the
 * directory's attributes after it: keep them for attr_timeout (the
 * later change, when answers cross).
 */
void
dircache_dir_attr_set(struct peer *p, uint32_t export_id, const char *path,
    const struct proto_attr *attr)
{
	char key[PROTO_MAX_PATH + 128];
	size_t klen = dircache_key(key, sizeof key, p, export_id, path);
	struct dircache_dir_attr *d;

	if (klen == 0)
		return;
	d = meta_cache_get(dc, DIRCACHE_DIR_ATTR, key, klen);
	if (d != NULL && d->boot == p->boot_id &&
	    dircache_attr_older(attr, &d->attr))
		return;
	d = xmalloc(sizeof *d);
	d->boot = p->boot_id;
	d->attr = *attr;
	if (meta_cache_put(dc, DIRCACHE_DIR_ATTR, key, klen, d, sizeof *d, free,
		loop_now_ms() + (uint64_t)(conf->attr_timeout * 1000), 0) != 0)
		free(d);
}

/* What dircache_dir_attr_set() keeps of directory path; whether any. */
bool
dircache_dir_attr(struct peer *p, uint32_t export_id, const char *path,
    struct proto_attr *attr)
{
	char key[PROTO_MAX_PATH + 128];
	size_t klen = dircache_key(key, sizeof key, p, export_id, path);
	struct dircache_dir_attr *d;

	if (klen == 0 ||
	    (d = meta_cache_get(dc, DIRCACHE_DIR_ATTR, key, klen)) == NULL ||
	    d->boot != p->boot_id)
		return false;
	*attr = d->attr;
	return true;
}

/*
 * A trap says the entry at path changed (kind DGRAM_*): its directory's
 * listing goes stale.  Its names stay exact when the record adds none
 * and removes none the listing shows: a creation of a name it lists, a
 * write, an attribute change.  The echo of a change of ours (put in
 * place from its answer by dircache_set, dircache_renamed or, for a
 * write, io-cache.c), a removal of a name it does not list, and a write
 * or attribute change of a name it no longer lists change nothing.
 * Any name another peer makes, removes or renames there makes the
 * directory hot (dircache_miss_sure).  Its attributes kept apart
 * (dircache_dir_attr_set) go.  Returns whether the record is the echo
 * of a change of ours.
 */
bool
dircache_trap(struct peer *p, uint32_t export_id, uint8_t kind,
    const char *path)
{
	char key[PROTO_MAX_PATH + 128];
	const char *slash, *name;
	struct listing *l;
	bool listed, echo;
	char *dir;
	size_t klen;

	if (path == NULL || path[0] == '\0')
		return false;
	dircache_dir_attr_drop(p, export_id, path);
	echo = (kind == DGRAM_CREATE || kind == DGRAM_REMOVE ||
		   kind == DGRAM_RENAME) &&
	    dircache_echo(p, export_id, path);
	slash = strrchr(path, '/');
	dir = slash ? xstrndup(path, (size_t)(slash - path)) : xstrdup("");
	name = slash ? slash + 1 : path;
	klen = dircache_key(key, sizeof key, p, export_id, dir);
	if (klen == 0 ||
	    (l = meta_cache_get_stale(dc, DIRCACHE_LISTING, key, klen, NULL)) ==
		NULL) {
		free(dir);
		return echo;
	}
	listed = listing_find(l, name) != NULL;
	/*
	 * The echo of a change of ours says nothing new: its answer put the
	 * entry in place (or took it out), and what we changed since went
	 * in place or stale then.  Nor does a write or attribute change of
	 * a name the listing no longer shows (a file written, then removed
	 * by us), or a removal of one it never showed.
	 */
	if (echo || (kind == DGRAM_REMOVE && !listed) ||
	    ((kind == DGRAM_DATA || kind == DGRAM_ATTR) && !listed &&
		dircache_names_fresh(l))) {
		free(dir);
		return echo;
	}
	if (kind == DGRAM_CREATE || kind == DGRAM_REMOVE ||
	    kind == DGRAM_RENAME)
		dircache_moved(l);
	if ((kind == DGRAM_CREATE && !listed) || kind == DGRAM_REMOVE ||
	    kind == DGRAM_RENAME)
		l->names_ms = 0;
	else if (listed) {
		/* About this entry alone: the others stay fresh. */
		((struct lent *)listing_find(l, name))->stale = true;
		l->some_stale = true;
		free(dir);
		return echo;
	}
	l->attrs_ms = 0;
	meta_cache_touch(dc, DIRCACHE_LISTING, key, klen,
	    timer_wheel_now(loop_wheel()));
	free(dir);
	return echo;
}

/*
 * We made directory path ourselves: it is empty, and its listing is
 * known without asking.  It has no checkpoint (0): its first refresh
 * is a whole listing.
 */
void
dircache_empty(struct peer *p, uint32_t export_id, const char *path)
{
	struct listing *l = xcalloc(1, sizeof *l);

	l->ents = xcalloc(1, sizeof *l->ents);
	l->cap = 1;
	l->boot = p->boot_id;
	if (dircache_put(p, export_id, path, l, true) != 0)
		listing_free(l);
}

/*
 * The entry at path (in export) changed, not its name: its directory's
 * listing goes stale for its attributes.
 */
void
dircache_changed(struct peer *p, uint32_t export_id, const char *path)
{
	dircache_trap(p, export_id, DGRAM_ATTR, path);
}

/* Forget every listing of peer p. */
void
dircache_drop_peer(struct peer *p)
{
	char prefix[PROTO_MAX_NAME + 2];
	int n = snprintf(prefix, sizeof prefix, "%s%c", p->name, 0);

	if (n > 0 && dc != NULL) {
		meta_cache_drop_prefix(dc, DIRCACHE_LISTING, prefix, (size_t)n);
		meta_cache_drop_prefix(dc, DIRCACHE_DIR_ATTR, prefix,
		    (size_t)n);
	}
}

/* Figures for status. */
void
dircache_stats(struct meta_cache_stats *st)
{
	meta_cache_stats(dc, st);
}
