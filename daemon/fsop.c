/*
 * fsop.c - parked FUSE requests and their state machines.
 *
 * A handler that cannot answer at once parks what it needs in a struct
 * fsop (copies: the kernel's arguments die with the handler) and replies
 * from the callback of the calls it sends.  Multi-step requests are
 * stepped by fsop_step(), and their state changes only in
 * fsop_set_state().  Create-like requests live here: they check the
 * name is free in the whole merged directory, pick a holder by
 * create_policy (place.c), then create.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include <fuse_lowlevel.h>

#include "fs.h"

/* A new parked request. */
struct fsop *
fsop_new(fuse_req_t req, uint8_t type)
{
	struct fsop *op = xcalloc(1, sizeof *op);

	op->req = req;
	op->type = type;
	return op;
}

/*
 * A parked request about inode ino, holding its node; NULL (and EIO
 * replied) if the kernel named an inode we do not know.
 */
struct fsop *
fsop_node(fuse_req_t req, fuse_ino_t ino, uint8_t type)
{
	struct node *n = fs_node(ino);
	struct fsop *op;

	if (n == NULL) {
		fuse_reply_err(req, EIO);
		return NULL;
	}
	op = fsop_new(req, type);
	op->node = n;
	node_ref(n);
	return op;
}

/* Free a parked request after its reply. */
void
fsop_free(struct fsop *op)
{
	if (op->dir != NULL)
		node_unref(op->dir);
	if (op->dir2 != NULL)
		node_unref(op->dir2);
	if (op->node != NULL)
		node_unref(op->node);
	free(op->name);
	free(op->name2);
	free(op->base);
	free(op->target);
	free(op->cands);
	entry_clear(&op->src);
	entry_clear(&op->dst);
	free(op);
}

/* Reply an error (0 = success without data) and free. */
void
fsop_done(struct fsop *op, int error)
{
	fuse_reply_err(op->req, error < 0 ? -error : error);
	fsop_free(op);
}

/* --- mknod, mkdir, symlink, create: check, place, make --- */

/* The name is free (or taken) in the merged directory. */
static void
fsop_check_cb(void *arg, int error, struct entry *e)
{
	struct fsop *op = arg;

	(void)e;
	if (error == 0) {
		fsop_done(op, EEXIST);
		return;
	}
	if (error != -ENOENT) {
		fsop_done(op, error);
		return;
	}
	fsop_set_state(op, FS_PLACE);
	fsop_step(op);
}

static void
fsop_make_cb(struct call *c)
{
	struct fsop *op = c->arg;
	struct entry e = { 0 };
	struct handle *h;
	struct node *n;
	struct fuse_entry_param ep;

	if (c->rep.error != 0) {
		fsop_done(op, c->rep.error);
		return;
	}
	e.name = xstrdup(op->name);
	e.attr = c->rep.attr;
	e.ino = node_ino_hash(c->peer->name, e.attr.dev, e.attr.ino);
	if (S_ISDIR(e.attr.mode)) {
		e.isdir = true;
		e.copies = xcalloc(1, sizeof *e.copies);
		e.copies[0] = op->chosen;
		e.ncopies = 1;
	} else {
		e.peer = c->peer;
		e.export_id = c->req.export_id;
	}
	n = union_node(op->dir, &e);
	entry_clear(&e);
	if (op->type != PROTO_CREATE) {
		fs_reply_entry(op->req, n);
		fsop_free(op);
		return;
	}
	h = io_handle_new(n, c);
	h->flags = op->fi.flags;
	n->data_seen = true;
	n->data_mtime = c->rep.attr.mtime;
	n->data_size = c->rep.attr.size;
	op->fi.fh = (uint64_t)(uintptr_t)h;
	op->fi.direct_io = conf->direct_io;
	fs_entry_param(n, &ep);
	if (fuse_reply_create(op->req, &ep, &op->fi) != 0) {
		/* The kernel will never release it: do it here. */
		struct call *rc = call_new(h->peer, PROTO_RELEASE,
		    h->export_id, NULL, io_release_cb, NULL);

		node_forget(n, 1);	/* the handle still holds n */
		rc->req.fh = h->fh;
		call_send(rc);
		io_handle_free(h);
	}
	fsop_free(op);
}

/* Send the create-like call to the chosen copy. */
static void
fsop_make(struct fsop *op)
{
	char *rel = fs_relpath(op->dir, op->chosen.peer,
	    op->chosen.export_id);
	struct call *c;

	if (rel == NULL) {
		fsop_done(op, ENOENT);
		return;
	}
	c = call_new(op->chosen.peer, op->type, op->chosen.export_id, rel,
	    fsop_make_cb, op);
	free(rel);
	call_set_name(c, op->base);
	c->req.mode = op->mode;
	c->req.rdev = op->rdev;
	c->req.flags = (uint32_t)op->fi.flags;
	if (op->target != NULL)
		call_set_data(c, op->target, strlen(op->target));
	call_send(c);
}

/* Begin a create-like request on parent/name. */
static void
fsop_make_start(fuse_req_t req, uint8_t type, fuse_ino_t parent,
    const char *name, mode_t mode, dev_t rdev, const char *target,
    struct fuse_file_info *fi)
{
	struct node *dir = fs_dir_node(req, parent);
	struct fsop *op;
	size_t baselen, nall;
	char *dpath;

	if (dir == NULL)
		return;
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
	if (baselen >= PROTO_MAX_NAME) {
		fsop_done(op, ENAMETOOLONG);
		return;
	}
	if (!proto_name_ok(op->base) || move_hidden(op->base)) {
		fsop_done(op, EINVAL);	/* ours are never shown: refused */
		return;
	}
	place_candidates(op, &nall);
	if (op->ncands == 0) {
		fsop_done(op, nall > 0 || dir->isvirtual ||
		    dir->parent == NULL ? EROFS : ENOENT);
		return;
	}
	dpath = node_path(dir);
	/* One holder in all: its own EEXIST is the answer. */
	fsop_set_state(op, nall == 1 && op->pin == NULL &&
	    !union_has_virtual_below(dpath) ? FS_PLACE : FS_CHECK);
	free(dpath);
	fsop_step(op);
}

void
fsop_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
    dev_t rdev)
{
	fsop_make_start(req, PROTO_MKNOD, parent, name, mode, rdev, NULL, NULL);
}

void
fsop_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	fsop_make_start(req, PROTO_MKDIR, parent, name, mode, 0, NULL, NULL);
}

void
fsop_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
    const char *name)
{
	fsop_make_start(req, PROTO_SYMLINK, parent, name, 0, 0, link, NULL);
}

void
fsop_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
    struct fuse_file_info *fi)
{
	fsop_make_start(req, PROTO_CREATE, parent, name, mode, 0, NULL, fi);
}

/* The names of the states, for the log. */
static const char *const fsop_state_names[FS_STATE_MAX] = {
	[FS_NEW] = "new",
	[FS_CHECK] = "check",
	[FS_PLACE] = "place",
	[FS_MAKE] = "make",
	[FS_RESOLVE] = "resolve",
	[FS_ACT] = "act",
};

/* The one place a request's state changes. */
void
fsop_set_state(struct fsop *op, enum fsop_state state)
{
	if (state >= FS_STATE_MAX)
		fatalx("fsop: bad state %d", state);
	log_debug("fsop %p: %s -> %s", (void *)op,
	    fsop_state_names[op->state], fsop_state_names[state]);
	op->state = state;
}

/* Advance a parked multi-step request. */
void
fsop_step(struct fsop *op)
{
	switch (op->state) {
	case FS_CHECK:
		union_resolve_any(op->dir, op->base, fsop_check_cb, op);
		break;
	case FS_PLACE:
		place_choose(op);
		break;
	case FS_MAKE:
		fsop_make(op);
		break;
	case FS_RESOLVE:
		/* A rename asks for both names at once: one round trip. */
		op->pending = op->type == PROTO_RENAME ? 2 : 1;
		op->error = 0;
		union_resolve(op->dir, op->name, change_src_cb, op);
		if (op->type == PROTO_RENAME)
			union_resolve(op->dir2, op->name2, change_dst_cb, op);
		break;
	case FS_ACT:
		change_act(op);
		break;
	default:
		fatalx("fsop: bad state %d", op->state);
	}
}

