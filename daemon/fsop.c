/*
 * fsop.c - parked FUSE requests, and what every handler shares.
 *
 * A handler that cannot answer at once parks what it needs in a struct
 * fsop (copies: the kernel's arguments die with the handler) and replies
 * from the callback of the calls it sends.  Multi-step requests are
 * state machines, stepped by place_step() (create-like) and
 * change_step() (unlink, rmdir, rename, link); a state changes only in
 * fsop_set_state().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include <fuse_lowlevel.h>

#include "cluster.h"
#include "fs.h"

/* A new parked request. */
struct fsop *
fsop_new(fuse_req_t req, uint8_t type)
{
	struct fsop *op = xcalloc(1, sizeof *op);

	op->req = req;
	op->type = type;
	op->start_us = loop_mono_us();
	return op;
}

/*
 * A parked request about inode ino, holding its node, in *out; -EIO if
 * the kernel named an inode we do not know.
 */
int
fsop_node(fuse_req_t req, fuse_ino_t ino, uint8_t type, struct fsop **out)
{
	struct node *n = fsop_inode(ino);
	struct fsop *op;

	if (n == NULL)
		return -EIO;
	op = fsop_new(req, type);
	op->node = n;
	node_ref(n);
	*out = op;
	return 0;
}

/* Free a parked request after its reply. */
void
fsop_free(struct fsop *op)
{
	latency_fuse_done(op->type, op->start_us);
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
	if (error > 0)
		fatalx("fsop: positive error %d", error);
	fuse_reply_err(op->req, -error);
	fsop_free(op);
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
	log_debug("fsop %p: %s -> %s", (void *)op, fsop_state_names[op->state],
	    fsop_state_names[state]);
	op->state = state;
}

/* Fill a struct stat from wire attributes. */
void
fsop_fill_stat(const struct proto_attr *a, uint64_t ino, struct stat *st)
{
	memset(st, 0, sizeof *st);
	st->st_ino = ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_rdev = a->rdev;
	st->st_size = (off_t)a->size;
	st->st_blocks = (blkcnt_t)a->blocks;
	st->st_blksize = (blksize_t)conf->block_size;
	st->st_atim.tv_sec = a->atime.sec;
	st->st_atim.tv_nsec = a->atime.nsec;
	st->st_mtim.tv_sec = a->mtime.sec;
	st->st_mtim.tv_nsec = a->mtime.nsec;
	st->st_ctim.tv_sec = a->ctime.sec;
	st->st_ctim.tv_nsec = a->ctime.nsec;
}

/*
 * Fill a struct stat for node n: its attributes, with the size of what
 * was written here and is not on the holder yet.
 */
void
fsop_node_stat(const struct node *n, struct stat *st)
{
	fsop_fill_stat(&n->attr, n->ino, st);
	if (!n->isdir && n->wsize > n->attr.size)
		st->st_size = (off_t)n->wsize;
}

/*
 * n's attributes go to the kernel now: how long it may keep them,
 * attr_timeout.  Given while bytes written here are not on the holder
 * yet, whose times and block count change when they land there, they
 * are noted, and the kernel is told to forget them once the file is
 * clean, before the close(2) or fsync(2) that waits for it returns
 * (io_wb_cleaned()): kept, make(1) and rsync -u would see the times
 * from before the write.  Not a validity of 0 instead: every read of a
 * dirty file would ask again (FUSE_AUTO_INVAL_DATA).
 */
double
fsop_attr_given(struct node *n)
{
	if (!n->isdir && io_dirty(n))
		n->attr_early = true;
	return conf->attr_timeout;
}

/* Build the entry reply for node n and count the lookup. */
void
fsop_entry_param(struct node *n, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof *e);
	e->ino = n->id;
	e->attr_timeout = fsop_attr_given(n);
	e->entry_timeout = conf->attr_timeout;
	fsop_node_stat(n, &e->attr);
	n->nlookup++;
}

/* Reply an entry for n. */
void
fsop_reply_entry(fuse_req_t req, struct node *n)
{
	struct fuse_entry_param e;

	fsop_entry_param(n, &e);
	if (fuse_reply_entry(req, &e) != 0)
		node_forget(n, 1); /* the kernel did not get it */
}

/* The node of an inode number; NULL only on a kernel bug. */
struct node *
fsop_inode(fuse_ino_t ino)
{
	struct node *n = node_get(ino);

	if (n == NULL)
		log_warnx("fuse: unknown inode %llu", (unsigned long long)ino);
	return n;
}

/* The directory node ino in *out, or -EIO or -ENOTDIR. */
int
fsop_dir_node(fuse_ino_t ino, struct node **out)
{
	struct node *n = fsop_inode(ino);

	if (n == NULL)
		return -EIO;
	if (!n->isdir)
		return -ENOTDIR;
	*out = n;
	return 0;
}

/*
 * Where n is held: its holder, or for a directory its primary copy.
 * Returns 0, -ENOENT (no live holder) or 1 for a virtual directory.
 */
static int
fsop_holder(struct node *n, struct peer **peer, uint32_t *export_id)
{
	struct copy *c;
	size_t nc;

	if (!n->isdir) {
		if (n->peer == NULL || n->peer->state != PEER_UP)
			return -ENOENT;
		*peer = n->peer;
		*export_id = n->export_id;
		return 0;
	}
	c = union_copies(n, &nc);
	if (nc == 0) {
		free(c);
		return n->isvirtual || n->parent == NULL ? 1 : -ENOENT;
	}
	*peer = c[0].peer;
	*export_id = c[0].export_id;
	free(c);
	return 0;
}

/*
 * What resolving a name that must be free answered, as the request's
 * error: 0 when the name is free (ENOENT), -EEXIST when it is taken,
 * else the resolution's own error.
 */
int
fsop_name_free(int error)
{
	if (error == 0)
		return -EEXIST;
	return error == -ENOENT ? 0 : error;
}

/* The path of node n inside export (peer, id); NULL if not there. */
char *
fsop_relpath(struct node *n, struct peer *peer, uint32_t export_id)
{
	const struct export *ex = union_export(peer, export_id);
	char *upath, *rel;

	if (ex == NULL)
		return NULL;
	upath = node_path(n);
	rel = union_relpath(ex, upath);
	free(upath);
	return rel;
}

/*
 * A call about node n on its holder, its request's flags set to flags
 * (a replicated file's open goes where its access mode says); NULL with
 * *err (< 0) on failure.
 */
struct call *
fsop_call_flags(struct node *n, uint8_t type, uint32_t flags,
    void (*cb)(struct call *), void *arg, int *err)
{
	struct peer *peer;
	uint32_t export_id;
	struct call *c;
	char *rel;
	int rc, route;

	/* Its path is another's now: callers that can go by handle do. */
	if (node_unnamed(n)) {
		*err = -ENOENT;
		return NULL;
	}
	/* A replicated file: a replica in sync, by the set's rules. */
	if ((route = cluster_route(n, type, flags, &peer, &export_id)) == 1)
		rc = fsop_holder(n, &peer, &export_id);
	else
		rc = route < 0 ? route : 0;
	if (rc != 0) {
		*err = rc > 0 ? -EROFS : rc;
		return NULL;
	}
	if ((rel = fsop_relpath(n, peer, export_id)) == NULL) {
		*err = -ENOENT;
		return NULL;
	}
	c = call_new(peer, type, export_id, rel, cb, arg);
	free(rel);
	c->req.flags = flags;
	if (route == CLUSTER_WAIT)
		cluster_wait(c); /* sent once a replica is in sync */
	return c;
}

/* A call about node n on its holder; NULL with *err (< 0) on failure. */
struct call *
fsop_call(struct node *n, uint8_t type, void (*cb)(struct call *), void *arg,
    int *err)
{
	return fsop_call_flags(n, type, 0, cb, arg, err);
}

/* Synthesised attributes of the root of an empty union. */
void
fsop_root_attr(struct node *n)
{
	union_virtual_attr("/", &n->attr);
	n->attr.ino = FUSE_ROOT_ID;
	node_set_ino(n, FUSE_ROOT_ID);
}

/*
 * A call about node ino answered by cb, parked for req, in *out (to be
 * filled and sent); an error if there can be none.
 */
int
fsop_simple(fuse_req_t req, fuse_ino_t ino, uint8_t type,
    void (*cb)(struct call *), struct call **out)
{
	struct fsop *op;
	int err;

	if ((err = fsop_node(req, ino, type, &op)) < 0)
		return err;
	if ((*out = fsop_call(op->node, type, cb, op, &err)) == NULL) {
		fsop_free(op);
		return err;
	}
	return 0;
}

/* An answer that is only an error code. */
void
fsop_err_cb(struct call *c)
{
	fsop_done(c->arg, c->rep.error);
}
