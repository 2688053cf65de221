/*
 * merge.c - the union's rules, apart from the peers that answer: how the
 * answers of several holders for one name merge into what the union
 * shows, where a graft point puts an export's paths, and how NAME@URI
 * splits.  union.c gathers the answers and calls these.
 *
 * For one name, the hits (one per holder's copy, sorted by
 * merge_hit_cmp) merge so:
 *
 *   - every directory among them is one merged directory whose copies
 *     are all of them, the first (lowest peer name, then the peer's own
 *     export order, grafts last) the primary;
 *   - with no directory but an export grafted below the name (virtual),
 *     the directory is virtual;
 *   - within one peer the first non-directory shadows the peer's later
 *     ones;
 *   - a non-directory keeps the plain name when it is the only one and
 *     there is no directory; otherwise each peer's shows as NAME@URI.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "merge.h"

/* Order of hits: by peer name, the peer's own exports first, then id. */
int
merge_hit_cmp(const struct merge_hit *a, const struct merge_hit *b)
{
	int c = strcmp(a->peer, b->peer);

	if (c != 0)
		return c;
	if (a->graft != b->graft)
		return a->graft ? 1 : -1;
	return a->export_id < b->export_id ? -1 : a->export_id > b->export_id;
}

/*
 * Merge the sorted hits for base into the entries shown, written to out
 * (room for n + 1); returns how many.  The directory, if any, comes
 * first, then the non-directories in hit order.
 */
size_t
merge_name(const char *base, const struct merge_hit *hits, size_t n,
    bool virtual, struct merge_entry *out)
{
	size_t *files = xcalloc(n, sizeof *files);
	size_t ndirs = 0, nfiles = 0, nout = 0, i, j;
	struct merge_entry *e;

	for (i = 0; i < n; i++) {
		if (hits[i].isdir) {
			ndirs++;
			continue;
		}
		for (j = 0; j < nfiles; j++)
			if (hits[files[j]].holder == hits[i].holder)
				break;
		if (j == nfiles)
			files[nfiles++] = i; /* first per peer */
	}
	if (ndirs > 0 || virtual) {
		e = &out[nout++];
		memset(e, 0, sizeof *e);
		e->name = xstrdup(base);
		e->isdir = true;
		e->isvirtual = ndirs == 0;
		e->nlink_unknown = ndirs > 1 || virtual;
		e->copies = xcalloc(ndirs, sizeof *e->copies);
		for (i = 0; i < n; i++)
			if (hits[i].isdir)
				e->copies[e->ncopies++] = i;
	}
	for (i = 0; i < nfiles; i++) {
		e = &out[nout++];
		memset(e, 0, sizeof *e);
		e->hit = files[i];
		if (nfiles == 1 && ndirs == 0 && !virtual)
			e->name = xstrdup(base);
		else
			xasprintf(&e->name, "%s@%s", base, hits[files[i]].uri);
	}
	free(files);
	return nout;
}

/* Free what an entry owns. */
void
merge_entry_clear(struct merge_entry *e)
{
	free(e->name);
	free(e->copies);
	memset(e, 0, sizeof *e);
}

/*
 * The address part of "BASE@URI": what follows the last '@', with
 * *baselen the length of BASE; NULL (and *baselen the whole length) when
 * there is no '@' or nothing before it.  Whether it names a peer is the
 * caller's question.
 */
const char *
merge_split_name(const char *name, size_t *baselen)
{
	const char *at = strrchr(name, '@');

	*baselen = strlen(name);
	if (at == NULL || at == name)
		return NULL;
	*baselen = (size_t)(at - name);
	return at + 1;
}

/*
 * The path of union path upath inside an export grafted at at ("" for
 * its root), or NULL when upath is not at or below the graft point.
 */
char *
merge_relpath(const char *at, const char *upath)
{
	size_t alen = strlen(at);

	if (strcmp(at, "/") == 0)
		return xstrdup(upath + 1);
	if (strncmp(upath, at, alen) != 0)
		return NULL;
	if (upath[alen] == '\0')
		return xstrdup("");
	if (upath[alen] != '/')
		return NULL;
	return xstrdup(upath + alen + 1);
}

/* The union path of relpath inside an export grafted at at. */
char *
merge_path_of(const char *at, const char *relpath)
{
	char *p;

	if (relpath[0] == '\0')
		return xstrdup(at);
	xasprintf(&p, "%s/%s", strcmp(at, "/") == 0 ? "" : at, relpath);
	return p;
}

/* Whether a is strictly below directory path dir ("/" below nothing). */
bool
merge_below(const char *a, const char *dir)
{
	size_t dlen = strlen(dir);

	if (strcmp(dir, "/") == 0)
		return strcmp(a, "/") != 0;
	return strncmp(a, dir, dlen) == 0 && a[dlen] == '/';
}
