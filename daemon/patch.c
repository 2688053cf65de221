/*
 * patch.c - one file made equal to another replica's by moving only the
 * blocks that differ, what a resync (cluster.c) does to a file its
 * replica has in another version.
 *
 * Both holders give the digests of the file's blocks (SUMS, on their
 * workers).  Equal digests and size: only the times are set.  Otherwise
 * the blocks that differ are read from the source and written in place
 * into the destination, which is then truncated to the source's size,
 * fsynced, and given the source's times.  The destination is written in
 * place, so it must be a replica nobody reads (one being resynced).  A
 * file too large for one SUMS answer, or whose blocks differ more than
 * PATCH_MOST of them, is left to a whole copy: the callback says
 * PATCH_WHOLE.
 *
 * One struct patch is a state machine stepped by its calls' answers.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "pufs.h"

#define PATCH_WINDOW 8          /* blocks in flight */
#define PATCH_MOST(n) ((n) / 2) /* of n blocks, most that may differ */

enum patch_state {
	PATCH_SUMS,  /* the digests of both */
	PATCH_OPEN,  /* open both */
	PATCH_COPY,  /* the blocks that differ */
	PATCH_SYNC,  /* fsync the destination */
	PATCH_TIMES, /* its size and times */
	PATCH_DONE,
};

struct patch {
	enum patch_state state;
	struct peer *sp, *dp;
	uint32_t sx, dx;
	char *rel;
	struct proto_attr want; /* the source's, as listed */
	patch_done_cb cb;
	void *arg;
	uint8_t *sum[2]; /* 0: the source's, 1: the destination's */
	size_t nsum[2];
	uint64_t size; /* the source's, from its SUMS */
	uint64_t sfh, dfh;
	uint64_t *todo; /* blocks that differ */
	size_t ntodo, next;
	unsigned out; /* calls in flight */
	uint64_t moved;
	int error;
};

static struct patch_stats pt;

/* How many files were patched, found equal, and the bytes moved. */
void
patch_stats(struct patch_stats *st)
{
	*st = pt;
}

static void patch_step(struct patch *);

static struct call *
patch_call(struct patch *pa, bool dest, uint8_t type, const char *path,
    void (*cb)(struct call *))
{
	struct call *c = call_new(dest ? pa->dp : pa->sp, type,
	    dest ? pa->dx : pa->sx, path, cb, pa);

	c->nohold = true;
	pa->out++;
	return c;
}

static void
patch_release(struct patch *pa, bool dest, uint64_t fh)
{
	struct call *c;

	if (fh == 0)
		return;
	c = call_new(dest ? pa->dp : pa->sp, PROTO_RELEASE, 0, NULL, NULL,
	    NULL);
	c->nohold = true;
	c->req.fh = fh;
	call_send(c);
}

/* The end: tell the owner, free. */
static void
patch_finish(struct patch *pa, int result)
{
	patch_release(pa, false, pa->sfh);
	patch_release(pa, true, pa->dfh);
	if (result == 0 && pa->moved == 0)
		pt.same++;
	else if (result == 0)
		pt.patched++;
	pt.bytes += pa->moved;
	pa->cb(pa->arg, result, pa->moved);
	free(pa->sum[0]);
	free(pa->sum[1]);
	free(pa->todo);
	free(pa->rel);
	free(pa);
}

/* An answer of pa's calls: note an error; on when the last is in. */
static bool
patch_took(struct patch *pa, const struct call *c)
{
	pa->out--;
	if (c->rep.error != 0 && pa->error == 0)
		pa->error = c->rep.error;
	if (pa->out > 0)
		return false;
	if (pa->error != 0) {
		patch_finish(pa, pa->error);
		return false;
	}
	return true;
}

/* Which blocks differ: all the source has that the destination lacks. */
static int
patch_plan(struct patch *pa)
{
	size_t n = pa->nsum[0];

	if (pa->size > (uint64_t)PROTO_SUM_MAX * PROTO_SUM_BLOCK)
		return PATCH_WHOLE;
	pa->todo = xreallocarray(NULL, n + 1, sizeof *pa->todo);
	for (size_t i = 0; i < n; i++)
		if (i >= pa->nsum[1] ||
		    memcmp(pa->sum[0] + i * PROTO_SUM_LEN,
			pa->sum[1] + i * PROTO_SUM_LEN, PROTO_SUM_LEN) != 0)
			pa->todo[pa->ntodo++] = i;
	if (pa->ntodo > 0 && pa->ntodo > PATCH_MOST(n))
		return PATCH_WHOLE;
	return 0;
}

static void
patch_cb(struct call *c)
{
	struct patch *pa = c->arg;
	int s = c->peer == pa->dp ? 1 : 0;

	if (c->rep.error == 0) {
		switch (c->req.type) {
		case PROTO_SUMS:
			pa->sum[s] = xmalloc(c->rep.datalen + 1);
			if (c->rep.datalen > 0)
				memcpy(pa->sum[s], c->rep.data, c->rep.datalen);
			pa->nsum[s] = c->rep.datalen / PROTO_SUM_LEN;
			if (s == 0)
				pa->size = c->rep.value;
			break;
		case PROTO_OPEN:
			*(s ? &pa->dfh : &pa->sfh) = c->rep.fh;
			break;
		default:
			break;
		}
	}
	if (patch_took(pa, c))
		patch_step(pa);
}

static void patch_copy(struct patch *);

static void
patch_write_cb(struct call *c)
{
	struct patch *pa = c->arg;

	pa->out--;
	if (c->rep.error == 0 && c->rep.value != c->req.datalen)
		c->rep.error = -ENOSPC;
	if (c->rep.error != 0 && pa->error == 0)
		pa->error = c->rep.error;
	if (c->rep.error == 0)
		pa->moved += c->rep.value;
	patch_copy(pa);
}

static void
patch_read_cb(struct call *c)
{
	struct patch *pa = c->arg;
	struct call *w;

	pa->out--;
	if (c->rep.error != 0 && pa->error == 0)
		pa->error = c->rep.error;
	if (pa->error == 0 && c->rep.datalen > 0) {
		w = patch_call(pa, true, PROTO_WRITE, NULL, patch_write_cb);
		w->req.fh = pa->dfh;
		w->req.offset = c->req.offset;
		call_set_data(w, c->rep.data, c->rep.datalen);
		call_send(w);
	}
	patch_copy(pa);
}

/* The blocks that differ, PATCH_WINDOW at once; then the fsync. */
static void
patch_copy(struct patch *pa)
{
	while (pa->error == 0 && pa->next < pa->ntodo &&
	    pa->out < 2 * PATCH_WINDOW) {
		struct call *c = patch_call(pa, false, PROTO_READ, NULL,
		    patch_read_cb);

		c->req.fh = pa->sfh;
		c->req.offset = pa->todo[pa->next++] * PROTO_SUM_BLOCK;
		c->req.length = PROTO_SUM_BLOCK;
		call_send(c);
	}
	if (pa->out > 0)
		return;
	if (pa->error != 0) {
		patch_finish(pa, pa->error);
		return;
	}
	pa->state = PATCH_SYNC;
	patch_step(pa);
}

/* Send the calls of pa's state. */
static void
patch_step(struct patch *pa)
{
	struct call *c;
	int rc;

	switch (pa->state) {
	case PATCH_SUMS:
		for (int s = 0; s < 2; s++) {
			c = patch_call(pa, s == 1, PROTO_SUMS, pa->rel,
			    patch_cb);
			c->req.offset = 0;
			c->req.length = (uint64_t)PROTO_SUM_MAX *
			    PROTO_SUM_BLOCK;
			call_send(c);
		}
		pa->state = PATCH_OPEN;
		break;
	case PATCH_OPEN:
		if ((rc = patch_plan(pa)) != 0) {
			patch_finish(pa, rc);
			return;
		}
		if (pa->ntodo == 0) {
			pa->state = PATCH_TIMES;
			patch_step(pa);
			return;
		}
		for (int s = 0; s < 2; s++) {
			c = patch_call(pa, s == 1, PROTO_OPEN, pa->rel,
			    patch_cb);
			c->req.flags = s == 1 ? O_WRONLY : O_RDONLY;
			call_send(c);
		}
		pa->state = PATCH_COPY;
		break;
	case PATCH_COPY:
		patch_copy(pa);
		break;
	case PATCH_SYNC:
		c = patch_call(pa, true, PROTO_FSYNC, NULL, patch_cb);
		c->req.fh = pa->dfh;
		call_send(c);
		pa->state = PATCH_TIMES;
		break;
	case PATCH_TIMES:
		c = patch_call(pa, true, PROTO_SETATTR, pa->rel, patch_cb);
		c->req.valid = PROTO_SET_SIZE | PROTO_SET_MTIME |
		    PROTO_SET_ATIME;
		c->req.offset = pa->size;
		c->req.mtime = pa->want.mtime;
		c->req.atime = pa->want.atime;
		call_send(c);
		pa->state = PATCH_DONE;
		break;
	case PATCH_DONE:
		patch_finish(pa, 0);
		break;
	}
}

/*
 * Make rel on (dp, dx) what it is on (sp, sx), whose listing showed
 * want, moving only the blocks that differ.  cb gets 0 (done: moved
 * bytes were written), PATCH_WHOLE (copy it whole instead: nothing was
 * changed), or a negative errno.
 */
void
patch_start(struct peer *sp, uint32_t sx, struct peer *dp, uint32_t dx,
    const char *rel, const struct proto_attr *want, patch_done_cb cb, void *arg)
{
	struct patch *pa = xcalloc(1, sizeof *pa);

	pa->sp = sp;
	pa->sx = sx;
	pa->dp = dp;
	pa->dx = dx;
	pa->rel = xstrdup(rel);
	pa->want = *want;
	pa->cb = cb;
	pa->arg = arg;
	pt.started++;
	patch_step(pa);
}
