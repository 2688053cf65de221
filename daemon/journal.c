/*
 * journal.c - the holder's numbered record of which directory entries
 * changed, so that a peer whose listing expired can ask for only what
 * changed since its checkpoint (an incremental listing).
 *
 * Every change noted as a trap (through pufs, or seen on disk by inotify)
 * is also noted here as (export, directory, name), numbered from 1 and
 * stamped with the global time.  The journal is a ring of JOURNAL_SIZE
 * records: a checkpoint older than the oldest record it still holds
 * cannot be answered with a delta, and the holder answers in full.  A
 * delta is only trusted for a directory watched (watch.c) since before
 * the checkpoint; otherwise the answer is the whole listing.
 *
 * A replica's resync (cluster.c) asks it for every path of an export
 * changed since a global time (journal_changes()): the answer is sure
 * only if no record (of any export) since then was overwritten, no
 * change was lost (journal_lost(), when the disk watch overflows), and
 * the journal began before.  A note of the same entry as the newest
 * record, made before anybody took a checkpoint after it, only moves
 * that record's time: a file written in many frames takes one record.
 *
 * Notes are made on the loop; deltas are computed on the disk workers,
 * so the ring is locked.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "log.h"

#define JOURNAL_SIZE 16384

static struct {
	pthread_mutex_t lock;
	struct journal_rec ring[JOURNAL_SIZE];
	uint64_t seq;      /* number of the newest record */
	uint64_t handed;   /* the newest checkpoint taken */
	uint64_t start_ns; /* since when it holds every change */
	uint64_t gone_ns;  /* the newest time of a record overwritten */
	uint64_t lost_ns;  /* the newest time changes were lost */
} jr = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Free the records. */
void
journal_free(void)
{
	pthread_mutex_lock(&jr.lock);
	for (size_t i = 0; i < JOURNAL_SIZE; i++) {
		free(jr.ring[i].dir);
		free(jr.ring[i].name);
		jr.ring[i] = (struct journal_rec){ 0 };
	}
	pthread_mutex_unlock(&jr.lock);
}

/* The number of the newest record (a checkpoint); any thread. */
uint64_t
journal_seq(void)
{
	uint64_t s;

	pthread_mutex_lock(&jr.lock);
	s = jr.handed = jr.seq;
	pthread_mutex_unlock(&jr.lock);
	return s;
}

/* Whether record r is of entry (export_id, dir of dlen bytes, name). */
static bool
journal_is(const struct journal_rec *r, uint32_t export_id, const char *dir,
    size_t dlen, const char *name)
{
	return r->seq != 0 && r->export_id == export_id &&
	    strncmp(r->dir, dir, dlen) == 0 && r->dir[dlen] == '\0' &&
	    strcmp(r->name, name) == 0;
}

/*
 * Note that the entry at path (relative to export_id's root) changed at
 * global time ns.
 */
void
journal_note(uint32_t export_id, const char *path, uint64_t ns)
{
	const char *slash = strrchr(path, '/');
	size_t dlen = slash != NULL ? (size_t)(slash - path) : 0;
	const char *name = slash != NULL ? slash + 1 : path;
	struct journal_rec *r;

	if (path[0] == '\0')
		return; /* an export root is nobody's entry */
	pthread_mutex_lock(&jr.lock);
	r = &jr.ring[jr.seq % JOURNAL_SIZE];
	if (jr.seq > jr.handed && journal_is(r, export_id, path, dlen, name)) {
		if (ns > r->ns)
			r->ns = ns;
		pthread_mutex_unlock(&jr.lock);
		return;
	}
	r = &jr.ring[++jr.seq % JOURNAL_SIZE];
	if (r->seq != 0 && r->ns > jr.gone_ns)
		jr.gone_ns = r->ns;
	free(r->dir);
	free(r->name);
	r->seq = jr.seq;
	r->export_id = export_id;
	r->ns = ns;
	r->dir = xstrndup(path, dlen);
	r->name = xstrdup(name);
	pthread_mutex_unlock(&jr.lock);
}

/* The journal holds every change from global time ns (the start). */
void
journal_start(uint64_t ns)
{
	pthread_mutex_lock(&jr.lock);
	jr.start_ns = ns;
	pthread_mutex_unlock(&jr.lock);
}

/* Changes were lost at global time ns (the disk watch overflowed). */
void
journal_lost(uint64_t ns)
{
	pthread_mutex_lock(&jr.lock);
	if (ns > jr.lost_ns)
		jr.lost_ns = ns;
	pthread_mutex_unlock(&jr.lock);
}

/*
 * The paths of export_id's entries changed at or after global time
 * since, in records numbered after `after`: appended to out as records
 * of the change's global time (u64, little-endian) and the path,
 * NUL-terminated (at most max bytes in all), in change order,
 * duplicates kept.  last is the number of the last record looked at
 * (ask again after it when more), sure whether the journal holds every
 * change of the export since then.  Any thread.
 */
void
journal_changes(uint32_t export_id, uint64_t since, uint64_t after,
    struct journal_out *o)
{
	uint64_t first;

	o->len = 0;
	o->more = false;
	pthread_mutex_lock(&jr.lock);
	o->sure = jr.start_ns != 0 && jr.start_ns <= since &&
	    jr.gone_ns < since && jr.lost_ns < since;
	first = jr.seq >= JOURNAL_SIZE ? jr.seq - JOURNAL_SIZE + 1 : 1;
	if (after + 1 > first)
		first = after + 1;
	o->last = after > jr.seq ? jr.seq : after;
	for (uint64_t s = first; s <= jr.seq; s++) {
		const struct journal_rec *r = &jr.ring[s % JOURNAL_SIZE];
		size_t dl, nl;

		if (r->seq != s || r->export_id != export_id || r->ns < since) {
			o->last = s;
			continue;
		}
		dl = strlen(r->dir);
		nl = strlen(r->name);
		if (o->len + 8 + dl + nl + 2 > o->max) {
			o->more = true;
			break;
		}
		for (int i = 0; i < 8; i++)
			o->buf[o->len++] = (char)(r->ns >> (8 * i));
		if (dl > 0) {
			memcpy(o->buf + o->len, r->dir, dl);
			o->buf[o->len + dl++] = '/';
		}
		memcpy(o->buf + o->len + dl, r->name, nl + 1);
		o->len += dl + nl + 1;
		o->last = s;
	}
	pthread_mutex_unlock(&jr.lock);
}

/*
 * The query itself, pure: in ring (size slots, record number k in slot
 * k % size, newest the number of the newest), copies of the names of
 * directory dir of export_id changed after number since, in *names (*n
 * of them, in change order, duplicates kept).  Returns 0, or -1 (and
 * nothing) when since is newer than newest or some record after it is
 * gone.  One pass
 * over the records after since: O(n), no allocation but the copies.
 */
int
journal_query(const struct journal_rec *ring, size_t size, uint64_t newest,
    uint32_t export_id, const char *dir, uint64_t since, char ***names,
    size_t *n)
{
	size_t cap = 0;

	*names = NULL;
	*n = 0;
	if (since > newest || newest - since > size)
		return -1;
	for (uint64_t s = since + 1; s <= newest; s++) {
		const struct journal_rec *r = &ring[s % size];

		if (r->seq != s) { /* overwritten: cannot answer */
			while (*n > 0)
				free((*names)[--*n]);
			free(*names);
			*names = NULL;
			return -1;
		}
		if (r->export_id != export_id || strcmp(r->dir, dir) != 0)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			*names = xreallocarray(*names, cap, sizeof **names);
		}
		(*names)[(*n)++] = xstrdup(r->name);
	}
	return 0;
}

/* qsort order of names. */
static int
journal_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Sort names (*n of them) and drop the duplicates (freed), in place:
 * O(n log n).  Pure.
 */
void
journal_unique(char **names, size_t *n)
{
	size_t k = 0;

	if (*n < 2)
		return;
	qsort(names, *n, sizeof *names, journal_cmp);
	for (size_t i = 1; i < *n; i++) {
		if (strcmp(names[i], names[k]) == 0)
			free(names[i]);
		else
			names[++k] = names[i];
	}
	*n = k + 1;
}

/*
 * The names of directory dir of export_id that changed after number
 * since, in *names (an xmalloc'd array of xmalloc'd strings, *n of them,
 * sorted, duplicates removed).  Returns 0, or -1 when the journal cannot
 * answer (since is older than its oldest record): list in full then.
 * Any thread.  The lock covers only the copying pass; the sort runs
 * outside it, so notes on the loop never wait long.
 */
int
journal_since(uint32_t export_id, const char *dir, uint64_t since,
    char ***names, size_t *n)
{
	int rc;

	pthread_mutex_lock(&jr.lock);
	rc = journal_query(jr.ring, JOURNAL_SIZE, jr.seq, export_id, dir, since,
	    names, n);
	pthread_mutex_unlock(&jr.lock);
	if (rc == 0)
		journal_unique(*names, n);
	return rc;
}
