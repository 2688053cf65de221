/*
 * locate.c - answering location requests: which of our exports hold a
 * union path.
 *
 * A LOCATE names a union path.  Every export of ours grafted at or above
 * it is asked (a STAT on the disk workers, like any call); when all have
 * answered, one LOCATED carries what exists (possibly nothing: that too
 * is an answer, so the asker need not wait for us).
 */
#include <stdlib.h>
#include <string.h>

#include "pufs.h"

struct locate_answer {
	uint64_t id;
	char *upath;		/* owned */
	unsigned pending;
	uint32_t *exports;	/* hits; owned */
	struct proto_attr *attrs;
	size_t n;
};

static uint64_t served;

/* LOCATEs answered so far. */
uint64_t
locate_served(void)
{
	return served;
}

/* Send the answer once every export has been asked. */
static void
locate_finish(struct locate_answer *a)
{
	if (--a->pending > 0)
		return;
	mcast_located(a->id, a->upath, a->exports, a->attrs, a->n);
	served++;
	free(a->exports);
	free(a->attrs);
	free(a->upath);
	free(a);
}

/* One export's STAT came back. */
static void
locate_stat_cb(struct call *c)
{
	struct locate_answer *a = c->arg;

	if (c->rep.error == 0) {
		a->exports[a->n] = c->req.export_id;
		a->attrs[a->n] = c->rep.attr;
		a->n++;
	}
	locate_finish(a);
}

/* Peer asker wants to know what we hold at upath (request id). */
void
locate_answer(struct peer *asker, uint64_t id, const char *upath)
{
	struct peer *self = peer_self();
	struct locate_answer *a;
	char *rel;

	(void)asker;
	if (upath[0] != '/')
		return;
	a = xcalloc(1, sizeof *a);
	a->id = id;
	a->upath = xstrdup(upath);
	a->exports = xcalloc(self->nexports + 1, sizeof *a->exports);
	a->attrs = xcalloc(self->nexports + 1, sizeof *a->attrs);
	a->pending = 1;
	for (uint32_t e = 0; e < self->nexports; e++) {
		if ((rel = union_relpath(&self->exports[e], upath)) == NULL)
			continue;
		if (!proto_path_ok(rel)) {
			free(rel);
			continue;
		}
		a->pending++;
		call_send(call_new(self, PROTO_STAT, e, rel, locate_stat_cb,
		    a));
		free(rel);
	}
	locate_finish(a);
}
