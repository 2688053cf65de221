/*
 * trapq.c - the sender's coalescing queue of change records, and the
 * receiver's gap detection on trap numbers.
 *
 * Limits: coalescing looks for a queued record of the same kind, export
 * and path with a linear scan from the newest; a batch holds what
 * changed within trap_delay, so the queue stays short.  Records are not
 * reordered: a REMOVE after a CREATE of the same path stays after it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "trapq.h"

struct trapq {
	struct dgram_trap *recs; /* strings owned */
	size_t n, cap;
	struct trapq_stats stats;
};

/* An empty queue, or NULL. */
struct trapq *
trapq_new(void)
{
	return calloc(1, sizeof(struct trapq));
}

/* Free a record's strings. */
static void
trapq_rec_free(struct dgram_trap *r)
{
	free((char *)r->path);
	free((char *)r->path2);
}

/* Free the queue and what it holds. */
void
trapq_free(struct trapq *q)
{
	if (q == NULL)
		return;
	for (size_t i = 0; i < q->n; i++)
		trapq_rec_free(&q->recs[i]);
	free(q->recs);
	free(q);
}

/* Merge rec into the queued record r of the same kind and path. */
static void
trapq_merge(struct dgram_trap *r, const struct dgram_trap *rec)
{
	uint64_t end, rend;

	switch (rec->kind) {
	case DGRAM_DATA:
		end = r->offset + r->length;
		rend = rec->offset + rec->length;
		if (rec->offset < r->offset)
			r->offset = rec->offset;
		r->length = (rend > end ? rend : end) - r->offset;
		break;
	case DGRAM_CREATE:
	case DGRAM_ATTR:
		r->attr = rec->attr;
		break;
	default:
		break;
	}
	if (rec->time > r->time)
		r->time = rec->time;
}

/* Queue rec, or merge it into a queued record about the same thing. */
int
trapq_add(struct trapq *q, const struct dgram_trap *rec)
{
	struct dgram_trap *r;
	size_t i;

	q->stats.added++;
	if (rec->kind == DGRAM_DATA || rec->kind == DGRAM_ATTR ||
	    rec->kind == DGRAM_CREATE) {
		for (i = q->n; i-- > 0;) {
			r = &q->recs[i];
			if (r->export_id != rec->export_id ||
			    strcmp(r->path, rec->path) != 0)
				continue;
			if (r->kind != rec->kind)
				break; /* something else happened since */
			trapq_merge(r, rec);
			q->stats.merged++;
			return 0;
		}
	}
	if (q->n == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 32;
		struct dgram_trap *p = reallocarray(q->recs, cap, sizeof *p);

		if (p == NULL)
			return -ENOMEM;
		q->recs = p;
		q->cap = cap;
	}
	r = &q->recs[q->n];
	*r = *rec;
	r->path = strdup(rec->path != NULL ? rec->path : "");
	r->path2 = rec->path2 != NULL ? strdup(rec->path2) : NULL;
	if (r->path == NULL || (rec->path2 != NULL && r->path2 == NULL)) {
		trapq_rec_free(r);
		return -ENOMEM;
	}
	q->n++;
	return 0;
}

/* The queued records. */
const struct dgram_trap *
trapq_records(const struct trapq *q, size_t *n)
{
	*n = q->n;
	return q->recs;
}

/* Drop the n oldest records. */
void
trapq_consume(struct trapq *q, size_t n)
{
	if (n > q->n)
		n = q->n;
	for (size_t i = 0; i < n; i++)
		trapq_rec_free(&q->recs[i]);
	memmove(q->recs, q->recs + n, (q->n - n) * sizeof *q->recs);
	q->n -= n;
}

/* The queue's counters. */
void
trapq_stats(const struct trapq *q, struct trapq_stats *st)
{
	*st = q->stats;
}

/* See trapq.h. */
enum trapq_verdict
trapq_seq_check(struct trapq_seq *s, uint64_t boot, bool is_trap, uint64_t seq)
{
	enum trapq_verdict v = TRAPQ_OK;

	if (s->boot != boot) {
		/* A new sender, or a restart: start from what it says. */
		s->boot = boot;
		s->last = is_trap && seq > 0 ? seq - 1 : seq;
		v = TRAPQ_NEW;
	}
	if (is_trap) {
		if (seq > s->last + 1)
			v = TRAPQ_GAP;
		if (seq > s->last)
			s->last = seq;
	} else if (seq > s->last) {
		/* The sender sent TRAPs we never saw. */
		s->last = seq;
		v = TRAPQ_GAP;
	}
	return v;
}
