/*
 * locate.c - location requests: answering which of our exports hold a
 * union path, and handing the answers we get to whoever asked.
 *
 * A LOCATE names a union path.  The union (daemon/find.c, through the
 * lookup the daemon registers) asks every export of ours grafted at or
 * above it; once all have answered, one LOCATED carries what exists
 * (possibly nothing: that too is an answer, so the asker need not wait
 * for us).  A LOCATED for one of our requests goes to the union's
 * registered taker, which matches it to the resolve that asked.
 */
#include <stdlib.h>
#include <string.h>

#include "datagram.h"
#include "discovery.h"
#include "log.h"

struct locate_answer {
	uint64_t id;
	char *upath; /* owned */
};

static const struct locate_ops *ops;
static uint64_t served;

static void locate_received(const struct dgram *);

/* Start: ops says how to look a path up and where answers go. */
void
locate_init(const struct locate_ops *o)
{
	ops = o;
	mcast_on_receive(locate_received);
}

/* LOCATEs answered so far. */
uint64_t
locate_served(void)
{
	return served;
}

/* Our exports have answered: send what they hold. */
static void
locate_found(void *arg, const uint32_t *exports, const struct proto_attr *attrs,
    size_t n)
{
	struct locate_answer *a = arg;

	mcast_located(a->id, a->upath, exports, attrs, n);
	served++;
	free(a->upath);
	free(a);
}

/* Peer asker wants to know what we hold at upath (request id). */
static void
locate_answer(struct peer *asker, uint64_t id, const char *upath)
{
	struct locate_answer *a;

	(void)asker;
	if (upath[0] != '/')
		return;
	a = xcalloc(1, sizeof *a);
	a->id = id;
	a->upath = xstrdup(upath);
	ops->lookup(upath, locate_found, a);
}

/* A LOCATED: hand its hits to the request that asked. */
static void
locate_took(struct peer *p, const struct dgram *d)
{
	uint32_t *ex = xcalloc(d->nhits + 1, sizeof *ex);
	struct proto_attr *at = xcalloc(d->nhits + 1, sizeof *at);

	for (size_t i = 0; i < d->nhits; i++) {
		ex[i] = d->hits[i].export_id;
		at[i] = d->hits[i].attr;
	}
	ops->located(p, d->req_id, ex, at, d->nhits);
	free(ex);
	free(at);
}

/* mcast.c's receiver: LOCATEs of live peers, LOCATEDs of their boot. */
static void
locate_received(const struct dgram *d)
{
	struct peer *p = peer_by_name(d->name);

	if (p == NULL || p->state != PEER_UP)
		return;
	if (d->type == DGRAM_LOCATE)
		locate_answer(p, d->req_id, d->path);
	else if (d->type == DGRAM_LOCATED && p->boot_id == d->boot_id)
		locate_took(p, d);
}
