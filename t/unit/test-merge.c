/*
 * test-merge.c - unit test of the union's rules (daemon/merge.c) and of
 * the incremental listing merge (dircache_merge in daemon/dircache.c),
 * table-driven: how several holders' answers for one name merge (clash
 * names NAME@URI, a directory beside files, a peer's first export
 * shadowing its later ones, merged and virtual directories), the order
 * of holders, NAME@URI splitting, graft points, and a READDIR delta
 * applied to a cached listing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "merge.h"
#include "pufs.h"
#include "tap.h"

#define MAXHITS 6

/* A hit of a table: peer (a letter), export, graft, directory. */
struct thit {
	char peer;
	uint32_t export_id;
	bool graft, isdir;
};

/*
 * One case: the hits for a name, already in holder order, whether an
 * export is grafted below it, and the entries shown, written as
 * "NAME/(copies)" for a directory ("NAME/v" virtual, "*" when its nlink
 * is unknown) and "NAME=hit" for a non-directory, space-separated.
 */
struct mcase {
	const char *what;
	struct thit hits[MAXHITS];
	size_t n;
	bool virtual;
	const char *want;
};

static const struct mcase mcases[] = {
	{ "nothing, nothing shown", { { 0 } }, 0, false, "" },
	{ "one file keeps its name", { { 'a', 0, false, false } }, 1, false,
	    "f=0" },
	{ "a file on two peers: each as NAME@URI",
	    { { 'a', 0, false, false }, { 'b', 0, false, false } }, 2, false,
	    "f@a.example:7070=0 f@b.example:7070=1" },
	{ "a directory on one peer", { { 'a', 0, false, true } }, 1, false,
	    "f/(0)" },
	{ "a directory on three peers merges, nlink unknown",
	    { { 'a', 0, false, true }, { 'b', 0, false, true },
		{ 'c', 1, false, true } },
	    3, false, "f/(0,1,2)*" },
	{ "a directory beside a file: the file is NAME@URI",
	    { { 'a', 0, false, true }, { 'b', 0, false, false } }, 2, false,
	    "f/(0) f@b.example:7070=1" },
	{ "a file beside a directory: still the directory wins the name",
	    { { 'a', 0, false, false }, { 'b', 0, false, true } }, 2, false,
	    "f/(1) f@a.example:7070=0" },
	{ "a peer's first export shadows its later ones",
	    { { 'a', 0, false, false }, { 'a', 1, false, false } }, 2, false,
	    "f=0" },
	{ "shadowed within a peer, clashing with another",
	    { { 'a', 0, false, false }, { 'a', 1, false, false },
		{ 'b', 0, false, false } },
	    3, false, "f@a.example:7070=0 f@b.example:7070=2" },
	{ "a directory and a file of one peer",
	    { { 'a', 0, false, true }, { 'a', 1, false, false } }, 2, false,
	    "f/(0) f@a.example:7070=1" },
	{ "a graft below only: a virtual directory", { { 0 } }, 0, true,
	    "f/v*" },
	{ "a graft below and a file: the file is NAME@URI",
	    { { 'a', 0, false, false } }, 1, true, "f/v* f@a.example:7070=0" },
	{ "a graft below and a directory: real, nlink unknown",
	    { { 'a', 0, false, true } }, 1, true, "f/(0)*" },
	{ "an export grafted at the name merges with a directory",
	    { { 'a', 0, false, true }, { 'a', 2, true, true } }, 2, false,
	    "f/(0,1)*" },
};

/* The peer names and URIs of the letters. */
static const char *peer_names[] = { "a", "b", "c" };
static const char *peer_uris[] = { "a.example:7070", "b.example:7070",
	"c.example:7070" };

/* A table hit as merge_name() takes it. */
static struct merge_hit
to_hit(const struct thit *t)
{
	int k = t->peer - 'a';

	return (struct merge_hit){ .holder = peer_names[k],
		.peer = peer_names[k],
		.uri = peer_uris[k],
		.export_id = t->export_id,
		.graft = t->graft,
		.isdir = t->isdir };
}

/* The entries as the table writes them (static). */
static const char *
shown(const struct merge_entry *e, size_t n)
{
	static char buf[1024];
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s",
		    i ? " " : "", e[i].name);
		if (!e[i].isdir) {
			len += (size_t)snprintf(buf + len, sizeof buf - len,
			    "=%zu", e[i].hit);
			continue;
		}
		if (e[i].isvirtual)
			len += (size_t)snprintf(buf + len, sizeof buf - len,
			    "/v");
		else {
			len += (size_t)snprintf(buf + len, sizeof buf - len,
			    "/(");
			for (size_t k = 0; k < e[i].ncopies; k++)
				len += (size_t)snprintf(buf + len,
				    sizeof buf - len, "%s%zu", k ? "," : "",
				    e[i].copies[k]);
			len += (size_t)snprintf(buf + len, sizeof buf - len,
			    ")");
		}
		if (e[i].nlink_unknown)
			len += (size_t)snprintf(buf + len, sizeof buf - len,
			    "*");
	}
	return buf;
}

/* Run one merge case. */
static void
run_merge(const struct mcase *mc)
{
	struct merge_hit hits[MAXHITS];
	struct merge_entry out[MAXHITS + 1];
	size_t n;

	for (size_t i = 0; i < mc->n; i++)
		hits[i] = to_hit(&mc->hits[i]);
	n = merge_name("f", hits, mc->n, mc->virtual, out);
	tap_ok(strcmp(shown(out, n), mc->want) == 0, "%s: \"%s\"", mc->what,
	    shown(out, n));
	for (size_t i = 0; i < n; i++)
		merge_entry_clear(&out[i]);
}

/* qsort comparator over merge_hit_cmp. */
static int
hit_qcmp(const void *a, const void *b)
{
	return merge_hit_cmp(a, b);
}

/* Holders are ordered by peer name, the peer's exports, grafts last. */
static void
test_order(void)
{
	static const struct thit in[] = { { 'b', 0, false, true },
		{ 'a', 1, true, true }, { 'a', 2, false, true },
		{ 'c', 0, false, true }, { 'a', 0, true, true },
		{ 'a', 1, false, true } };
	static const char *want = "a1 a2 a0g a1g b0 c0";
	struct merge_hit h[6];
	char got[64];
	size_t len = 0;

	for (size_t i = 0; i < 6; i++)
		h[i] = to_hit(&in[i]);
	qsort(h, 6, sizeof *h, hit_qcmp);
	got[0] = '\0';
	for (size_t i = 0; i < 6; i++)
		len += (size_t)snprintf(got + len, sizeof got - len, "%s%s%u%s",
		    i ? " " : "", h[i].peer, h[i].export_id,
		    h[i].graft ? "g" : "");
	tap_ok(strcmp(got, want) == 0, "holder order: \"%s\"", got);
}

/* NAME@URI splits at the last '@', not at the first character. */
static void
test_split(void)
{
	static const struct {
		const char *name, *uri;
		size_t baselen;
	} t[] = {
		{ "f@h:7070", "h:7070", 1 },
		{ "f", NULL, 1 },
		{ "@h:7070", NULL, 7 },
		{ "a@b@h:7070", "h:7070", 3 },
		{ "f@", "", 1 },
	};

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		size_t baselen;
		const char *uri = merge_split_name(t[i].name, &baselen);

		tap_ok(baselen == t[i].baselen &&
			(uri == NULL ? t[i].uri == NULL
				     : t[i].uri != NULL &&
				    strcmp(uri, t[i].uri) == 0),
		    "split \"%s\": %zu, %s", t[i].name, baselen,
		    uri ? uri : "(none)");
	}
}

/* Graft points: union paths into an export's paths and back. */
static void
test_grafts(void)
{
	static const struct {
		const char *at, *upath, *rel;
	} t[] = {
		{ "/", "/", "" },
		{ "/", "/x/y", "x/y" },
		{ "/arch", "/arch", "" },
		{ "/arch", "/arch/x", "x" },
		{ "/arch", "/archive", NULL },
		{ "/arch", "/", NULL },
		{ "/a/b", "/a", NULL },
		{ "/a/b", "/a/b/c", "c" },
	};
	static const struct {
		const char *a, *dir;
		bool below;
	} b[] = {
		{ "/a", "/", true },
		{ "/", "/", false },
		{ "/a/b", "/a", true },
		{ "/ab", "/a", false },
		{ "/a", "/a", false },
		{ "/a", "/a/b", false },
	};

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		char *rel = merge_relpath(t[i].at, t[i].upath), *back = NULL;
		bool ok = rel == NULL
		    ? t[i].rel == NULL
		    : t[i].rel != NULL && strcmp(rel, t[i].rel) == 0;

		/* and back again, to where it came from */
		if (ok && rel != NULL) {
			back = merge_path_of(t[i].at, rel);
			ok = strcmp(back, t[i].upath) == 0;
		}
		tap_ok(ok, "%s in the export at %s: %s, back %s", t[i].upath,
		    t[i].at, rel ? rel : "(outside)", back ? back : "-");
		free(rel);
		free(back);
	}
	for (size_t i = 0; i < sizeof b / sizeof b[0]; i++)
		tap_ok(merge_below(b[i].a, b[i].dir) == b[i].below,
		    "%s %s below %s", b[i].a, b[i].below ? "is" : "is not",
		    b[i].dir);
}

/*
 * One delta case: a cached listing (names, sorted), a delta in any
 * order ("name" added or changed to size 1, "-name" removed), and the
 * listing after, "name:size".
 */
struct dcase {
	const char *what;
	const char *listing[6];
	const char *delta[6];
	const char *want;
};

static const struct dcase dcases[] = {
	{ "an empty delta changes nothing", { "a", "b" }, { NULL }, "a:0 b:0" },
	{ "a delta into an empty listing", { NULL }, { "b", "a" }, "a:1 b:1" },
	{ "added in the middle and at both ends", { "b", "d" },
	    { "e", "c", "a" }, "a:1 b:0 c:1 d:0 e:1" },
	{ "a changed entry takes the new attributes", { "a", "b", "c" },
	    { "b" }, "a:0 b:1 c:0" },
	{ "removed entries go", { "a", "b", "c", "d" }, { "-d", "-a" },
	    "b:0 c:0" },
	{ "removing what is not there is nothing", { "a", "c" }, { "-b" },
	    "a:0 c:0" },
	{ "everything removed", { "a", "b" }, { "-b", "-a" }, "" },
	{ "removed, changed and added at once", { "a", "b", "c" },
	    { "-a", "d", "b" }, "b:1 c:0 d:1" },
};

/* Run one delta case through dircache_merge(). */
static void
run_delta(const struct dcase *dc)
{
	struct listing l = { 0 };
	struct proto_dirent d[6];
	char got[256];
	size_t nd = 0, len = 0;

	l.ents = calloc(7, sizeof *l.ents);
	while (l.n < 6 && dc->listing[l.n] != NULL) {
		l.ents[l.n].name = strdup(dc->listing[l.n]);
		l.ents[l.n].attr.mode = S_IFREG | 0644;
		l.n++;
	}
	l.cap = l.n;
	for (; nd < 6 && dc->delta[nd] != NULL; nd++) {
		const char *s = dc->delta[nd];

		memset(&d[nd], 0, sizeof d[nd]);
		d[nd].name = s[0] == '-' ? s + 1 : s;
		if (s[0] != '-') {
			d[nd].attr.mode = S_IFREG | 0644;
			d[nd].attr.size = 1;
		}
	}
	dircache_merge(&l, d, nd);
	got[0] = '\0';
	for (size_t i = 0; i < l.n; i++)
		len += (size_t)snprintf(got + len, sizeof got - len,
		    "%s%s:%llu", i ? " " : "", l.ents[i].name,
		    (unsigned long long)l.ents[i].attr.size);
	tap_ok(strcmp(got, dc->want) == 0 &&
		(l.n == 0 ||
		    listing_find(&l, l.ents[l.n - 1].name) == &l.ents[l.n - 1]),
	    "%s: \"%s\"", dc->what, got);
	for (size_t i = 0; i < l.n; i++)
		free(l.ents[i].name);
	free(l.ents);
}

/*
 * Single-entry deltas, as our own creates and removals make them, many
 * in a row in a random order against a table of which names are there:
 * the listing stays sorted and exact, and its name bytes add up.
 */
static void
test_delta_one(void)
{
	enum { NAMES = 600, STEPS = 6000 };
	static bool in[NAMES];
	static unsigned sz[NAMES];
	struct listing l = { 0 };
	struct proto_dirent d;
	char name[16];
	unsigned long x = 0x9e3779b9u;
	size_t want = 0, bytes, i, nb;
	bool ok = true;

	l.ents = calloc(1, sizeof *l.ents);
	l.cap = 1;
	for (int step = 0; step < STEPS && ok; step++) {
		x = x * 6364136223846793005ul + 1442695040888963407ul;
		unsigned k = (unsigned)(x >> 33) % NAMES;
		int op = (int)((x >> 20) % 3);

		snprintf(name, sizeof name, "f%u", k);
		memset(&d, 0, sizeof d);
		d.name = name;
		if (op != 0) { /* add or change */
			d.attr.mode = S_IFREG | 0644;
			d.attr.size = (uint64_t)step;
			want += !in[k];
			in[k] = true;
			sz[k] = (unsigned)step;
		} else { /* remove, there or not */
			want -= in[k];
			in[k] = false;
		}
		dircache_merge(&l, &d, 1);
		ok = l.n == want && l.cap > l.n;
		for (i = 1; ok && i < l.n; i++)
			ok = strcmp(l.ents[i - 1].name, l.ents[i].name) < 0;
	}
	bytes = 0;
	nb = 0;
	for (unsigned k = 0; ok && k < NAMES; k++) {
		const struct lent *e;

		snprintf(name, sizeof name, "f%u", k);
		e = listing_find(&l, name);
		ok = in[k] ? e != NULL && e->attr.size == sz[k] : e == NULL;
		if (in[k]) {
			bytes += strlen(name) + 1;
			nb++;
		}
	}
	tap_ok(ok && nb == l.n, "single deltas: %d in a row, %zu names exact",
	    STEPS, l.n);
	tap_ok(l.name_bytes == bytes, "single deltas: name bytes %zu, want %zu",
	    l.name_bytes, bytes);
	for (i = 0; i < l.n; i++)
		free(l.ents[i].name);
	free(l.ents);
}

int
main(void)
{
	for (size_t i = 0; i < sizeof mcases / sizeof mcases[0]; i++)
		run_merge(&mcases[i]);
	test_order();
	test_split();
	test_grafts();
	for (size_t i = 0; i < sizeof dcases / sizeof dcases[0]; i++)
		run_delta(&dcases[i]);
	test_delta_one();
	return tap_done();
}
