/*
 * place.c - mknod, mkdir, symlink and create: check the name is free in
 * the whole merged directory, place the entry on one of the parent's
 * writable copies by create_policy (local, roundrobin, or mostfree,
 * which asks every candidate's STATFS), then make it there.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <fuse_lowlevel.h>

#include "cluster.h"
#include "fs.h"

static void place_step(struct fsop *);

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
		fsop_done(op, -EIO);
		return;
	}
	op->have_attr = false;
	fsop_set_state(op, FS_MAKE);
	place_step(op);
}

/* The writable copies of the parent a new entry may go to. */
static void
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
static void
place_choose(struct fsop *op)
{
	enum config_create_policy policy = conf->create_policy;
	size_t i;

	if (op->ncands == 1) {
		op->chosen = op->cands[0];
		fsop_set_state(op, FS_MAKE);
		place_step(op);
		return;
	}
	if (policy == CREATE_LOCAL) {
		for (i = 0; i < op->ncands; i++) {
			if (op->cands[i].peer->self) {
				op->chosen = op->cands[i];
				fsop_set_state(op, FS_MAKE);
				place_step(op);
				return;
			}
		}
		policy = CREATE_MOSTFREE;
	}
	if (policy == CREATE_ROUNDROBIN) {
		op->chosen = op->cands[place_rr++ % op->ncands];
		fsop_set_state(op, FS_MAKE);
		place_step(op);
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

/* --- mknod, mkdir, symlink, create: check, place, make --- */

/* The name is free (or taken) in the merged directory. */
static void
place_check_cb(void *arg, int error, struct entry *e)
{
	struct fsop *op = arg;

	(void)e;
	if ((error = fsop_name_free(error)) != 0) {
		fsop_done(op, error);
		return;
	}
	fsop_set_state(op, FS_PLACE);
	place_step(op);
}

/* The entry was made: reply with its new node (and handle). */
static void
place_make_cb(struct call *c)
{
	struct fsop *op = c->arg;
	struct entry e = { 0 };
	struct handle *h;
	struct node *n;
	struct fuse_entry_param ep;

	dircache_expected(c->peer, &c->req, c->rep.error == 0);
	if (c->rep.error != 0) {
		fsop_done(op, c->rep.error);
		return;
	}
	e.name = xstrdup(op->name);
	e.attr = c->rep.attr;
	e.ino = union_file_ino(c->peer, &e.attr);
	if (S_ISDIR(e.attr.mode)) {
		char *path = xpathjoin(c->req.path, c->req.name);

		/* Empty, as we made it: its lookups need not ask. */
		dircache_empty(c->peer, c->req.export_id, path);
		free(path);
		e.isdir = true;
		/* A replicated directory is on every replica in sync. */
		e.copies = cluster_made_dir(op->chosen.peer,
		    op->chosen.export_id, &e.ncopies);
		if (e.copies == NULL) {
			e.copies = xcalloc(1, sizeof *e.copies);
			e.copies[0] = op->chosen;
			e.ncopies = 1;
		}
	} else {
		e.peer = c->peer;
		e.export_id = c->req.export_id;
	}
	n = union_node(op->dir, &e);
	entry_clear(&e);
	if (op->type != PROTO_CREATE) {
		fsop_reply_entry(op->req, n);
		fsop_free(op);
		return;
	}
	h = io_created(n, c, op->fi.flags);
	op->fi.fh = (uint64_t)(uintptr_t)h;
	op->fi.direct_io = conf->direct_io;
	fsop_entry_param(n, &ep);
	if (fuse_reply_create(op->req, &ep, &op->fi) != 0) {
		/* The kernel will never release it: do it here. */
		node_forget(n, 1); /* the handle still holds n */
		io_release(h);
	}
	fsop_free(op);
}

/* Send the create-like call to the chosen copy. */
static void
place_make(struct fsop *op)
{
	char *rel = fsop_relpath(op->dir, op->chosen.peer,
	    op->chosen.export_id);
	struct call *c;

	if (rel == NULL) {
		fsop_done(op, -ENOENT);
		return;
	}
	c = call_new(op->chosen.peer, op->type, op->chosen.export_id, rel,
	    place_make_cb, op);
	free(rel);
	call_set_name(c, op->base);
	c->req.mode = op->mode;
	c->req.rdev = op->rdev;
	c->req.flags = (uint32_t)op->fi.flags;
	if (op->target != NULL)
		call_set_data(c, op->target, strlen(op->target));
	dircache_expect(c->peer, &c->req);
	call_send(c);
}

/*
 * Begin a create-like request on parent/name; an error if it cannot
 * begin (the caller replies it), else it is answered when done.
 */
static int
place_start(fuse_req_t req, uint8_t type, fuse_ino_t parent, const char *name,
    mode_t mode, dev_t rdev, const char *target, struct fuse_file_info *fi)
{
	struct node *dir;
	struct fsop *op;
	size_t baselen, nall;
	char *dpath;
	int err;

	if ((err = fsop_dir_node(parent, &dir)) < 0)
		return err;
	op = fsop_new(req, type);
	op->dir = dir;
	node_ref(dir);
	op->name = xstrdup(name);
	node_split_name(name, &op->pin, &baselen);
	op->base = xstrndup(name, baselen);
	op->mode = mode;
	op->rdev = rdev;
	op->target = target != NULL ? xstrdup(target) : NULL;
	if (fi != NULL)
		op->fi = *fi;
	if (baselen >= PROTO_MAX_NAME)
		err = -ENAMETOOLONG;
	else if (!proto_name_ok(op->base) || move_hidden(op->base))
		err = -EINVAL; /* ours are never shown: refused */
	else {
		place_candidates(op, &nall);
		if (op->ncands == 0)
			err = nall > 0 || dir->isvirtual || dir->parent == NULL
			    ? -EROFS
			    : -ENOENT;
	}
	if (err < 0) {
		fsop_free(op);
		return err;
	}
	dpath = node_path(dir);
	/* One holder in all: its own EEXIST is the answer. */
	fsop_set_state(op,
	    nall == 1 && op->pin == NULL && !union_has_virtual_below(dpath)
		? FS_PLACE
		: FS_CHECK);
	free(dpath);
	place_step(op);
	return 0;
}

void
place_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
    dev_t rdev)
{
	int err;

	if ((err = place_start(req, PROTO_MKNOD, parent, name, mode, rdev, NULL,
		 NULL)) < 0)
		fuse_reply_err(req, -err);
}

void
place_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	int err;

	if ((err = place_start(req, PROTO_MKDIR, parent, name, mode, 0, NULL,
		 NULL)) < 0)
		fuse_reply_err(req, -err);
}

void
place_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
    const char *name)
{
	int err;

	if ((err = place_start(req, PROTO_SYMLINK, parent, name, 0, 0, link,
		 NULL)) < 0)
		fuse_reply_err(req, -err);
}

void
place_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
    struct fuse_file_info *fi)
{
	int err;

	if ((err = place_start(req, PROTO_CREATE, parent, name, mode, 0, NULL,
		 fi)) < 0)
		fuse_reply_err(req, -err);
}

/* Advance a create-like request: check, place, make. */
static void
place_step(struct fsop *op)
{
	switch (op->state) {
	case FS_CHECK:
		union_resolve_any(op->dir, op->base, place_check_cb, op);
		break;
	case FS_PLACE:
		place_choose(op);
		break;
	case FS_MAKE:
		place_make(op);
		break;
	default:
		fatalx("fsop: bad state %d", op->state);
	}
}
