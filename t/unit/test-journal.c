/*
 * test-journal.c - unit test of daemon/journal.c: the query that answers
 * an incremental listing (which names of a directory changed after a
 * checkpoint), table-driven over small rings, its refusals at the
 * ring's edges, the locked path through journal_note() and
 * journal_since(), and a full ring of 16384 changes to one directory,
 * timed (the figure is printed, not asserted).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "log.h"
#include "tap.h"
#include "testutil.h"

#define RING 8

/* One change of a table: number, export, directory, name. */
struct chg {
	uint64_t seq;
	uint32_t export_id;
	const char *dir, *name;
};

/* One case: a ring's changes, a query, and the sorted answer. */
struct qcase {
	const char *what;
	struct chg chg[RING + 4]; /* later ones overwrite earlier */
	uint64_t newest;
	uint32_t export_id;
	const char *dir;
	uint64_t since;
	int rc;
	const char *want; /* names, space-separated, sorted */
};

static const struct qcase cases[] = {
	{ "empty journal, checkpoint 0", { { 0 } }, 0, 0, "", 0, 0, "" },
	{ "checkpoint newer than the journal", { { 1, 0, "", "a" } }, 1, 0, "",
	    2, -1, "" },
	{ "one change in the root", { { 1, 0, "", "a" } }, 1, 0, "", 0, 0,
	    "a" },
	{ "nothing after the checkpoint", { { 1, 0, "", "a" } }, 1, 0, "", 1, 0,
	    "" },
	{ "only the directory asked",
	    { { 1, 0, "d", "a" }, { 2, 0, "", "b" }, { 3, 0, "d/e", "c" },
		{ 4, 0, "d", "f" } },
	    4, 0, "d", 0, 0, "a f" },
	{ "only the export asked",
	    { { 1, 0, "d", "a" }, { 2, 1, "d", "b" }, { 3, 1, "d", "c" } }, 3,
	    1, "d", 0, 0, "b c" },
	{ "only after the checkpoint",
	    { { 1, 0, "", "a" }, { 2, 0, "", "b" }, { 3, 0, "", "c" } }, 3, 0,
	    "", 1, 0, "b c" },
	{ "duplicates once, sorted",
	    { { 1, 0, "", "z" }, { 2, 0, "", "a" }, { 3, 0, "", "z" },
		{ 4, 0, "", "m" }, { 5, 0, "", "a" } },
	    5, 0, "", 0, 0, "a m z" },
	{ "a full ring answers from its oldest",
	    { { 1, 0, "", "x" }, { 2, 0, "", "a" }, { 3, 0, "", "b" },
		{ 4, 0, "", "c" }, { 5, 0, "", "d" }, { 6, 0, "", "e" },
		{ 7, 0, "", "f" }, { 8, 0, "", "g" }, { 9, 0, "", "h" },
		{ 10, 0, "", "i" } },
	    10, 0, "", 2, 0, "b c d e f g h i" },
	{ "a checkpoint older than the ring is refused",
	    { { 1, 0, "", "x" }, { 2, 0, "", "a" }, { 3, 0, "", "b" },
		{ 4, 0, "", "c" }, { 5, 0, "", "d" }, { 6, 0, "", "e" },
		{ 7, 0, "", "f" }, { 8, 0, "", "g" }, { 9, 0, "", "h" },
		{ 10, 0, "", "i" } },
	    10, 0, "", 1, -1, "" },
	{ "a hole in the ring is refused",
	    { { 1, 0, "", "a" }, { 3, 0, "", "c" } }, 3, 0, "", 0, -1, "" },
	{ "the root is not its subdirectories",
	    { { 1, 0, "", "a" }, { 2, 0, "d", "b" }, { 3, 0, "", "c" } }, 3, 0,
	    "", 0, 0, "a c" },
	{ "a directory is matched whole, not as a prefix",
	    { { 1, 0, "d", "a" }, { 2, 0, "dd", "b" }, { 3, 0, "d/x", "c" },
		{ 4, 0, "", "d" } },
	    4, 0, "d", 0, 0, "a" },
	{ "a wrapped ring, checkpoint at its newest: nothing",
	    { { 1, 0, "", "x" }, { 2, 0, "", "a" }, { 3, 0, "", "b" },
		{ 4, 0, "", "c" }, { 5, 0, "", "d" }, { 6, 0, "", "e" },
		{ 7, 0, "", "f" }, { 8, 0, "", "g" }, { 9, 0, "", "h" },
		{ 10, 0, "", "i" } },
	    10, 0, "", 10, 0, "" },
	{ "a wrapped ring, checkpoint past its newest: refused",
	    { { 1, 0, "", "x" }, { 2, 0, "", "a" }, { 3, 0, "", "b" },
		{ 4, 0, "", "c" }, { 5, 0, "", "d" }, { 6, 0, "", "e" },
		{ 7, 0, "", "f" }, { 8, 0, "", "g" }, { 9, 0, "", "h" },
		{ 10, 0, "", "i" } },
	    10, 0, "", 11, -1, "" },
	{ "a wrapped ring keeps only this export's and directory's",
	    { { 1, 0, "d", "x" }, { 2, 0, "d", "a" }, { 3, 1, "d", "b" },
		{ 4, 0, "d", "c" }, { 5, 0, "e", "d" }, { 6, 0, "d", "e" },
		{ 7, 1, "d", "f" }, { 8, 0, "d", "g" }, { 9, 0, "", "h" },
		{ 10, 0, "d", "i" }, { 11, 0, "d", "j" } },
	    11, 0, "d", 4, 0, "e g i j" },
	{ "duplicates across the wrap, once",
	    { { 1, 0, "", "a" }, { 2, 0, "", "b" }, { 3, 0, "", "a" },
		{ 4, 0, "", "b" }, { 5, 0, "", "a" }, { 6, 0, "", "b" },
		{ 7, 0, "", "a" }, { 8, 0, "", "b" }, { 9, 0, "", "c" },
		{ 10, 0, "", "a" }, { 11, 0, "", "b" } },
	    11, 0, "", 3, 0, "a b c" },
};

/* The names as one space-separated string (static). */
static const char *
joined(char **names, size_t n)
{
	static char buf[4096];
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s",
		    i ? " " : "", names[i]);
	return buf;
}

/* Free an answer. */
static void
names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* Run one case of the table. */
static void
run_case(const struct qcase *qc)
{
	struct journal_rec ring[RING] = { { 0 } };
	char **names;
	size_t n;
	int rc;

	for (size_t i = 0;
	     i < sizeof qc->chg / sizeof qc->chg[0] && qc->chg[i].seq != 0;
	     i++) {
		struct journal_rec *r = &ring[qc->chg[i].seq % RING];

		*r = (struct journal_rec){ qc->chg[i].seq, qc->chg[i].export_id,
			(char *)qc->chg[i].dir, (char *)qc->chg[i].name, 0 };
	}
	rc = journal_query(ring, RING, qc->newest, qc->export_id, qc->dir,
	    qc->since, &names, &n);
	if (rc == 0)
		journal_unique(names, &n);
	tap_ok(rc == qc->rc && strcmp(joined(names, n), qc->want) == 0,
	    "%s: rc %d, \"%s\"", qc->what, rc, joined(names, n));
	names_free(names, n);
}

/* The locked path: notes, then since, at the real ring's edges. */
static void
test_locked(void)
{
	char **names, path[64];
	size_t n;
	uint64_t s0;
	int rc;

	s0 = journal_seq();
	journal_note(0, "d/a", 1);
	journal_note(0, "d/b", 1);
	journal_note(0, "d/a", 1);
	journal_note(0, "", 1); /* an export root: not noted */
	journal_note(0, "top", 1);
	tap_ok(journal_seq() == s0 + 4, "four changes noted, the root not");
	rc = journal_since(0, "d", s0, &names, &n);
	tap_ok(rc == 0 && strcmp(joined(names, n), "a b") == 0,
	    "since the start: \"%s\"", joined(names, n));
	names_free(names, n);
	rc = journal_since(0, "", s0, &names, &n);
	tap_ok(rc == 0 && strcmp(joined(names, n), "top") == 0,
	    "the root's: \"%s\"", joined(names, n));
	names_free(names, n);
	tap_ok(journal_since(0, "", journal_seq() + 1, &names, &n) == -1 &&
		names == NULL && n == 0,
	    "a checkpoint from the future is refused");

	/* 16384 changes to distinct names of one directory: a full ring. */
	for (int i = 0; i < 16384; i++) {
		snprintf(path, sizeof path, "big/n%05d", 16383 - i);
		journal_note(1, path, 1);
	}
	s0 = journal_seq() - 16384;
	{
		double t0 = seconds(), t1;

		rc = journal_since(1, "big", s0, &names, &n);
		t1 = seconds();
		tap_diag("journal_since over 16384 changes: %.3f ms",
		    (t1 - t0) * 1e3);
	}
	tap_ok(rc == 0 && n == 16384 && strcmp(names[0], "n00000") == 0 &&
		strcmp(names[16383], "n16383") == 0,
	    "a full ring of 16384 changes answers all of them, sorted");
	names_free(names, n);
	tap_ok(journal_since(1, "big", s0 - 1, &names, &n) == -1,
	    "one change more than the ring holds is refused");
	journal_free();
}

/* The pure query over a full ring, timed apart from its sort. */
static void
test_figure(void)
{
	static struct journal_rec ring[16384];
	static char name[16384][8];
	double t0, t1, t2;
	char **names;
	size_t n;
	int rc;

	for (int i = 0; i < 16384; i++) {
		snprintf(name[i], sizeof name[i], "n%05d", (i * 7919) % 16384);
		ring[(i + 1) % 16384] = (struct journal_rec){ (uint64_t)i + 1,
			0, "big", name[i], 0 };
	}
	t0 = seconds();
	rc = journal_query(ring, 16384, 16384, 0, "big", 0, &names, &n);
	t1 = seconds();
	journal_unique(names, &n);
	t2 = seconds();
	tap_diag("16384 changes: query (under the lock) %.3f ms, "
		 "sort and dedupe (outside it) %.3f ms",
	    (t1 - t0) * 1e3, (t2 - t1) * 1e3);
	tap_ok(rc == 0 && n == 16384, "the pure query over 16384 changes");
	names_free(names, n);
}

int
main(void)
{
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		run_case(&cases[i]);
	test_locked();
	test_figure();
	return tap_done();
}
