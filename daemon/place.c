/*
 * place.c - where a new entry goes: the writable copies of its parent,
 * chosen by create_policy (local, roundrobin, or mostfree, which asks
 * every candidate's STATFS).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <fuse_lowlevel.h>

#include "fs.h"

/* create_policy roundrobin cursor */
static unsigned place_rr;

/* A STATFS answer while placing by free space. */
static void
place_cb(struct call *c)
{
	struct fsop *op = c->arg;
	uint64_t avail = c->rep.statfs.bavail * c->rep.statfs.frsize;

	op->pending--;
	if (c->rep.error == 0 && (avail > op->best || !op->have_attr)) {
		op->best = avail;
		op->have_attr = true;
		op->chosen = op->cands[c->idx];
	}
	if (op->pending > 0)
		return;
	if (!op->have_attr) {
		fsop_done(op, EIO);
		return;
	}
	op->have_attr = false;
	fsop_set_state(op, FS_MAKE);
	fsop_step(op);
}

/* The writable copies of the parent a new entry may go to. */
void
place_candidates(struct fsop *op, size_t *nall)
{
	struct copy *copies = union_copies(op->dir, nall);

	op->cands = xcalloc(*nall + 1, sizeof *op->cands);
	op->ncands = 0;
	for (size_t i = 0; i < *nall; i++) {
		const struct export *ex = union_export(copies[i].peer,
		    copies[i].export_id);

		if (ex == NULL || ex->read_only ||
		    (op->pin != NULL && copies[i].peer != op->pin))
			continue;
		op->cands[op->ncands++] = copies[i];
	}
	free(copies);
}

/* Choose where the new entry goes, by create_policy. */
void
place_choose(struct fsop *op)
{
	enum config_create_policy policy = conf->create_policy;
	size_t i;

	if (op->ncands == 1) {
		op->chosen = op->cands[0];
		fsop_set_state(op, FS_MAKE);
		fsop_step(op);
		return;
	}
	if (policy == CREATE_LOCAL) {
		for (i = 0; i < op->ncands; i++) {
			if (op->cands[i].peer->self) {
				op->chosen = op->cands[i];
				fsop_set_state(op, FS_MAKE);
				fsop_step(op);
				return;
			}
		}
		policy = CREATE_MOSTFREE;
	}
	if (policy == CREATE_ROUNDROBIN) {
		op->chosen = op->cands[place_rr++ % op->ncands];
		fsop_set_state(op, FS_MAKE);
		fsop_step(op);
		return;
	}
	op->pending = (unsigned)op->ncands;
	for (i = 0; i < op->ncands; i++) {
		struct call *c = call_new(op->cands[i].peer, PROTO_STATFS,
		    op->cands[i].export_id, "", place_cb, op);

		c->idx = (unsigned)i;
		call_send(c);
	}
}

/* The entry was made: reply with its new node (and handle). */
