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

#include "pufs.h"

#define DIRCACHE_LISTING 1 /* meta-cache kind */

static struct meta_cache *dc;

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
	return l;
}

/* Bytes a listing is charged. */
static size_t
dircache_bytes(const struct listing *l)
{
	size_t b = sizeof *l + l->cap * sizeof *l->ents;

	for (size_t i = 0; i < l->n; i++)
		b += strlen(l->ents[i].name) + 1;
	return b;
}

/*
 * Put (or re-put) l, fresh for attr_timeout.  Returns 0, or a negative
 * errno when the cache would not take it (larger than its budget): l is
 * then the caller's again and no longer cached.
 */
static int
dircache_put(struct peer *p, uint32_t export_id, const char *path,
    struct listing *l)
{
	char key[PROTO_MAX_PATH + 128];
	size_t klen = dircache_key(key, sizeof key, p, export_id, path);
	uint64_t expires = loop_now_ms() +
	    (uint64_t)(conf->attr_timeout * 1000);

	if (klen == 0)
		return -ENAMETOOLONG;
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
 * Merge a delta (nents entries, in any order) into l, sorted by name: the
 * two are walked side by side into a new array; added and changed
 * entries take the delta's attributes, removed ones (mode 0) go.  Pure:
 * only l changes (t/unit/test-merge.c).
 */
void
dircache_merge(struct listing *l, const struct proto_dirent *ents, size_t nents)
{
	const struct proto_dirent **d = xcalloc(nents + 1, sizeof *d);
	struct lent *out = xcalloc(l->n + nents + 1, sizeof *out);
	size_t i = 0, j = 0, k = 0;
	int c;

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
	l->n = k;
	l->cap = l->n + nents + 1;
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
	} else {
		l = xcalloc(1, sizeof *l);
		l->cap = l->n = rep->nents;
		l->ents = xcalloc(l->n + 1, sizeof *l->ents);
		for (size_t i = 0; i < rep->nents; i++) {
			l->ents[i].name = xstrdup(rep->ents[i].name);
			l->ents[i].attr = rep->ents[i].attr;
		}
		if (l->n > 1)
			qsort(l->ents, l->n, sizeof *l->ents, dircache_cmp);
	}
	l->boot = p->boot_id;
	l->gtime = rep->fh;
	l->seq = rep->value;
	if (dircache_put(p, export_id, path, l) != 0)
		*own = true;
	return l;
}

/*
 * We changed entry name of directory dir ourselves and know what it is
 * now (a NULL attr: removed): update a fresh cached listing in place
 * instead of asking the holder again.  A stale one is left to refresh.
 */
void
dircache_set(struct peer *p, uint32_t export_id, const char *dir,
    const char *name, const struct proto_attr *attr)
{
	char key[PROTO_MAX_PATH + 128];
	size_t klen = dircache_key(key, sizeof key, p, export_id, dir);
	struct proto_dirent d = { .name = name };
	struct listing *l;

	if (klen == 0 ||
	    (l = meta_cache_get(dc, DIRCACHE_LISTING, key, klen)) == NULL)
		return;
	if (attr != NULL)
		d.attr = *attr; /* mode 0 in d means removed */
	dircache_merge(l, &d, 1);
	if (dircache_put(p, export_id, dir, l) != 0)
		listing_free(l); /* grew past the budget */
}

/*
 * The holder has just told us the attributes of the entry at path (an
 * open, a stat): a fresh cached listing that shows it must not answer
 * with older ones.  Updated in place; the listing's expiry stays.
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
	if (klen != 0 &&
	    (l = meta_cache_get(dc, DIRCACHE_LISTING, key, klen)) != NULL) {
		e = (struct lent *)listing_find(l, slash ? slash + 1 : path);
		if (e != NULL &&
		    (e->attr.mode & S_IFMT) == (attr->mode & S_IFMT))
			e->attr = *attr;
		else /* it shows another object, or none: ask again */
			dircache_stale(p, export_id, dir);
	}
	free(dir);
}

/* The listing of directory path changed: refresh it at the next use. */
void
dircache_stale(struct peer *p, uint32_t export_id, const char *path)
{
	char key[PROTO_MAX_PATH + 128];
	size_t klen = dircache_key(key, sizeof key, p, export_id, path);

	if (klen != 0)
		meta_cache_touch(dc, DIRCACHE_LISTING, key, klen,
		    timer_wheel_now(loop_wheel()));
}

/* The entry at path (in export) changed: its directory's listing too. */
void
dircache_changed(struct peer *p, uint32_t export_id, const char *path)
{
	const char *slash;
	char *dir;

	if (path == NULL || path[0] == '\0')
		return;
	slash = strrchr(path, '/');
	dir = slash ? xstrndup(path, (size_t)(slash - path)) : xstrdup("");
	dircache_stale(p, export_id, dir);
	free(dir);
}

/* Forget every listing of peer p. */
void
dircache_drop_peer(struct peer *p)
{
	char prefix[PROTO_MAX_NAME + 2];
	int n = snprintf(prefix, sizeof prefix, "%s%c", p->name, 0);

	if (n > 0 && dc != NULL)
		meta_cache_drop_prefix(dc, DIRCACHE_LISTING, prefix, (size_t)n);
}

/* Figures for status. */
void
dircache_stats(struct meta_cache_stats *st)
{
	meta_cache_stats(dc, st);
}
