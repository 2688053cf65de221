/*
 * change.c - unlink, rmdir, rename and link: resolve the names, check
 * the one-peer rule (EXDEV, or a move or path clone across peers), then
 * send the change to every holder (a merged directory is removed or
 * renamed on every copy).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fuse_lowlevel.h>

#include "fs.h"

static void change_step(struct fsop *);
static void change_src_cb(void *, int, struct entry *);
static void change_dst_cb(void *, int, struct entry *);

/* --- unlink, rmdir, rename, link: resolve, check, act --- */

/*
 * A rename is done: the kernel's nodes follow the names.  A file that
 * moved lands in op->chosen, its new holder's export.
 */
static void
change_renamed(struct fsop *op)
{
	struct node *n = node_child(op->dir, op->name);
	struct node *n2 = node_child(op->dir2, op->name2);

	if (op->flags & RENAME_EXCHANGE) {
		if (n != NULL)
			node_unlink(n);
		if (n2 != NULL)
			node_move(n2, op->dir, op->name);
		if (n != NULL)
			node_move(n, op->dir2, op->name2);
	} else if (n != NULL && n2 != NULL && node_other_name(n2, n) &&
	    op->chosen.peer == n->peer &&
	    op->chosen.export_id == n->export_id) {
		/*
		 * Two names of one file: rename(2) does nothing and both stay
		 * (the holder's did the same).  The kernel, which took them for
		 * two inodes, moved the source's over the target's name: it is
		 * told to forget that entry, and looks it up again.
		 */
		notify_entry(op->dir2->id, op->name2);
	} else if (n != NULL) {
		node_move(n, op->dir2, op->name2);
		if (!n->isdir) { /* it may have changed export */
			n->peer = op->chosen.peer;
			n->export_id = op->chosen.export_id;
		}
	} else if (n2 != NULL)
		node_unlink(n2);
}

/* One answer of the change sent to every holder. */
static void
change_act_cb(struct call *c)
{
	struct fsop *op = c->arg;
	struct node *n;

	op->pending--;
	dircache_expected(c->peer, &c->req, c->rep.error == 0);
	if (c->req.type == PROTO_RMDIR && c->rep.error == 0)
		/* Its listings are of no directory now. */
		dircache_drop_below(c->peer, c->req.export_id, c->req.path,
		    c->req.name);
	if (c->rep.error != 0 && (op->error == 0 || c->rep.error == -ENOTEMPTY))
		op->error = c->rep.error;
	if (c->rep.error == 0 && c->req.type == PROTO_LINK) {
		op->attr = c->rep.attr;
		op->chosen = (struct copy){ c->peer, c->req.export2 };
	}
	if (c->rep.error == 0 && c->req.type == PROTO_UNLINK &&
	    c->rep.has_attr) { /* what the other names show now */
		op->attr = c->rep.attr;
		op->have_attr = true;
	}
	if (op->pending > 0)
		return;
	if (op->error != 0) {
		fsop_done(op, op->error);
		return;
	}
	switch (op->type) {
	case PROTO_UNLINK:
	case PROTO_RMDIR:
		if ((n = node_child(op->dir, op->name)) != NULL) {
			if (!n->isdir && n->attr.nlink > 1)
				io_links_changed(n,
				    op->have_attr ? &op->attr : NULL);
			node_unlink(n);
		}
		break;
	case PROTO_RENAME:
		change_renamed(op);
		break;
	case PROTO_LINK: {
		struct entry e = { 0 };

		e.name = xstrdup(op->name2);
		e.peer = op->chosen.peer;
		e.export_id = op->chosen.export_id;
		e.attr = op->attr;
		e.ino = union_file_ino(e.peer, &e.attr);
		n = union_node(op->dir2, &e);
		entry_clear(&e);
		io_links_changed(n, &n->attr); /* before the answer */
		fsop_reply_entry(op->req, n);
		notify_inval(n, -1);
		fsop_free(op);
		return;
	}
	default:
		break;
	}
	fsop_done(op, 0);
}

/* Send one change about entry name (in dir) to the copy (peer, export). */
static int
change_act_one(struct fsop *op, struct peer *peer, uint32_t export_id,
    struct copy *dest)
{
	char *rel = fsop_relpath(op->dir, peer, export_id), *rel2 = NULL;
	struct call *c;

	if (rel == NULL)
		return -ENOENT;
	c = call_new(peer, op->type, export_id, rel, change_act_cb, op);
	free(rel);
	call_set_name(c, op->base);
	if (dest != NULL) {
		rel2 = fsop_relpath(op->dir2, dest->peer, dest->export_id);
		if (rel2 == NULL)
			rel2 = xstrdup("");
		call_set_dest(c, dest->export_id, rel2, op->name2);
		free(rel2);
	}
	c->req.flags = (uint32_t)op->flags;
	dircache_expect(peer, &c->req);
	op->pending++;
	call_send(c);
	return 0;
}

/* Where dir2 has a copy on peer, preferring the same export. */
static bool
change_dest_copy(struct node *dir2, struct peer *peer, uint32_t export_id,
    bool same_export_only, struct copy *out)
{
	struct copy *c;
	size_t nc;
	bool found = false;

	c = union_copies(dir2, &nc);
	for (size_t i = 0; i < nc && !found; i++)
		if (c[i].peer == peer && c[i].export_id == export_id) {
			*out = c[i];
			found = true;
		}
	for (size_t i = 0; i < nc && !found && !same_export_only; i++)
		if (c[i].peer == peer) {
			*out = c[i];
			found = true;
		}
	free(c);
	return found;
}

/* Whether a directory copy is an export's own root (cannot move). */
static bool
change_copy_is_root(struct node *dir, const char *name, const struct copy *c)
{
	const struct export *ex = union_export(c->peer, c->export_id);
	char *upath = node_child_path(dir, name);
	bool root;

	root = ex != NULL && strcmp(ex->at, upath) == 0;
	free(upath);
	return root;
}

/* A copy's listing came back: non-empty means ENOTEMPTY for all. */
static void
change_rmdir_check_cb(struct call *c)
{
	struct fsop *op = c->arg;

	op->pending--;
	if (c->rep.error == 0 && c->rep.nents > 0)
		op->error = -ENOTEMPTY;
	else if (c->rep.error != 0 && c->rep.error != -ENOENT && op->error == 0)
		op->error = c->rep.error;
	if (op->pending > 0)
		return;
	if (op->error != 0) {
		fsop_done(op, op->error);
		return;
	}
	op->checked_empty = true;
	change_step(op);
}

/* List every copy of the directory to be removed. */
static void
change_rmdir_check(struct fsop *op)
{
	struct entry *s = &op->src;
	char *upath, *rel;

	upath = node_child_path(op->dir, op->base);
	op->pending = 1;
	for (size_t i = 0; i < s->ncopies; i++) {
		const struct export *ex = union_export(s->copies[i].peer,
		    s->copies[i].export_id);

		if (ex == NULL || (rel = union_relpath(ex, upath)) == NULL)
			continue;
		op->pending++;
		call_send(call_new(s->copies[i].peer, PROTO_READDIR,
		    s->copies[i].export_id, rel, change_rmdir_check_cb, op));
		free(rel);
	}
	free(upath);
	if (--op->pending == 0) {
		op->checked_empty = true;
		change_step(op);
	}
}

static void change_act(struct fsop *);
static void change_link_dst_cb(void *, int, struct entry *);

/* The path of dir2 now exists on the source's peer: carry on there. */
static void
change_clone_done(void *arg, int error)
{
	struct fsop *op = arg;
	struct copy *c;

	/*
	 * A path the caller may not make there (identity = caller): as
	 * across file systems, so that mv(1) copies instead.
	 */
	if (error == -EACCES || error == -EPERM)
		error = -EXDEV;
	if (error != 0) {
		fsop_done(op, error);
		return;
	}
	c = xcalloc(op->dir2->ncopies + 1, sizeof *c);
	memcpy(c, op->dir2->copies, op->dir2->ncopies * sizeof *c);
	c[op->dir2->ncopies] = op->chosen;
	node_set_copies(op->dir2, c, op->dir2->ncopies + 1);
	free(c);
	if (op->type == PROTO_LINK)
		change_link_dst_cb(op, -ENOENT, NULL);
	else
		change_act(op);
}

/*
 * A rename or link to a new name in a directory the source's peer does
 * not hold: make the directory's path there first (mkdir with the
 * union's modes, as mergerfs clones a path onto a branch).  Returns
 * false when it cannot (EXDEV then).
 */
static bool
change_clone(struct fsop *op, struct peer *peer, uint32_t export_id)
{
	const struct export *ex = union_export(peer, export_id);
	char *rel = fsop_relpath(op->dir2, peer, export_id);
	mode_t *modes;
	size_t n = 0;
	struct node *d = op->dir2;

	if (op->cloned || ex == NULL || ex->read_only || rel == NULL ||
	    rel[0] == '\0') {
		free(rel);
		return false;
	}
	for (const char *p = rel; p != NULL; p = strchr(p + 1, '/'))
		n++;
	modes = xcalloc(n, sizeof *modes);
	for (size_t i = n; i > 0; i--, d = d->parent)
		modes[i - 1] = d->attr.mode & 07777 ? d->attr.mode & 07777
						    : 0755;
	op->cloned = true;
	op->chosen = (struct copy){ peer, export_id };
	move_clone(peer, export_id, rel, modes, n, change_clone_done, op);
	free(modes);
	free(rel);
	return true;
}

/* A move to another peer ended: the kernel's node follows the file. */
static void
change_move_done(void *arg, int error)
{
	struct fsop *op = arg;
	struct node *n;

	if (error == 0) {
		change_renamed(op);
		/* Another holder, another inode: attributes and data. */
		if ((n = node_child(op->dir2, op->name2)) != NULL) {
			io_forget_all(n);
		}
	}
	fsop_done(op, error);
}

/*
 * rename(2) of a file or symlink onto a name another peer holds: move
 * it there (move.c).  What cannot be moved atomically, or without
 * losing something, stays EXDEV: an exchange, other kinds of files, a
 * file with other hard links (they would stop sharing it).
 */
static void
change_move(struct fsop *op)
{
	struct entry *s = &op->src, *d = &op->dst;
	const struct export *sx = union_export(s->peer, s->export_id);
	const struct export *dx = union_export(d->peer, d->export_id);
	struct move_spec sp = {
		.speer = s->peer,
		.sexport = s->export_id,
		.dpeer = d->peer,
		.dexport = d->export_id,
		.sname = op->base,
		.dname = op->name2,
		.attr = s->attr,
	};

	if ((op->flags & RENAME_EXCHANGE) ||
	    !(S_ISREG(s->attr.mode) || S_ISLNK(s->attr.mode)) ||
	    (S_ISREG(s->attr.mode) && s->attr.nlink > 1)) {
		fsop_done(op, -EXDEV);
		return;
	}
	if (sx == NULL || dx == NULL) {
		fsop_done(op, -ENOENT);
		return;
	}
	if (sx->read_only || dx->read_only) {
		fsop_done(op, -EROFS);
		return;
	}
	op->chosen = (struct copy){ d->peer, d->export_id };
	sp.sdir = fsop_relpath(op->dir, s->peer, s->export_id);
	sp.ddir = fsop_relpath(op->dir2, d->peer, d->export_id);
	if (sp.sdir == NULL || sp.ddir == NULL)
		fsop_done(op, -ENOENT);
	else
		move_start(&sp, change_move_done, op);
	free(sp.sdir);
	free(sp.ddir);
}

/* Everything is known: send the change(s). */
static void
change_act(struct fsop *op)
{
	struct entry *s = &op->src, *d = &op->dst;
	const struct export *ex;
	struct copy dest;
	size_t i;

	op->pending = 1; /* held while sending */
	switch (op->type) {
	case PROTO_UNLINK:
		if (s->isdir) {
			fsop_done(op, -EISDIR);
			return;
		}
		change_act_one(op, s->peer, s->export_id, NULL);
		break;
	case PROTO_RMDIR:
		if (!s->isdir) {
			fsop_done(op, -ENOTDIR);
			return;
		}
		if (s->isvirtual) {
			fsop_done(op, -EBUSY);
			return;
		}
		for (i = 0; i < s->ncopies; i++)
			if (change_copy_is_root(op->dir, op->base,
				&s->copies[i])) {
				fsop_done(op, -EBUSY);
				return;
			}
		if (s->ncopies > 1 && !op->checked_empty) {
			/* Every copy must be empty before any goes. */
			op->pending = 0;
			change_rmdir_check(op);
			return;
		}
		for (i = 0; i < s->ncopies; i++)
			change_act_one(op, s->copies[i].peer,
			    s->copies[i].export_id, NULL);
		break;
	case PROTO_RENAME:
		if (op->have_dst && (op->flags & RENAME_NOREPLACE)) {
			fsop_done(op, -EEXIST);
			return;
		}
		if (!op->have_dst && (op->flags & RENAME_EXCHANGE)) {
			fsop_done(op, -ENOENT);
			return;
		}
		if (!s->isdir) {
			if (op->have_dst && d->isdir &&
			    !(op->flags & RENAME_EXCHANGE)) {
				fsop_done(op, -EISDIR);
				return;
			}
			if (op->have_dst && !d->isdir && d->peer != s->peer) {
				op->pending = 0;
				change_move(op);
				return;
			}
			/* Over an existing file: into its export, or not. */
			if (!change_dest_copy(op->dir2, s->peer,
				op->have_dst && !d->isdir ? d->export_id
							  : s->export_id,
				op->have_dst && !d->isdir, &dest)) {
				op->pending = 0;
				if (op->have_dst ||
				    !change_clone(op, s->peer, s->export_id))
					fsop_done(op, -EXDEV);
				return;
			}
			ex = union_export(dest.peer, dest.export_id);
			if (ex == NULL || ex->read_only) {
				fsop_done(op, -EROFS);
				return;
			}
			op->chosen = dest;
			change_act_one(op, s->peer, s->export_id, &dest);
			break;
		}
		if (s->isvirtual) {
			fsop_done(op, -EXDEV);
			return;
		}
		if (op->have_dst && !d->isdir &&
		    !(op->flags & RENAME_EXCHANGE)) {
			fsop_done(op, -ENOTDIR);
			return;
		}
		/* Every copy moves within its own export. */
		for (i = 0; i < s->ncopies; i++) {
			if (change_copy_is_root(op->dir, op->base,
				&s->copies[i])) {
				fsop_done(op, -EBUSY);
				return;
			}
			if (!change_dest_copy(op->dir2, s->copies[i].peer,
				s->copies[i].export_id, true, &dest)) {
				/* One copy to a new name: clone the path. */
				op->pending = 0;
				if (s->ncopies > 1 || op->have_dst ||
				    !change_clone(op, s->copies[i].peer,
					s->copies[i].export_id))
					fsop_done(op, -EXDEV);
				return;
			}
		}
		for (i = 0; op->have_dst && i < d->ncopies; i++) {
			size_t j;

			for (j = 0; j < s->ncopies; j++)
				if (s->copies[j].peer == d->copies[i].peer &&
				    s->copies[j].export_id ==
					d->copies[i].export_id)
					break;
			if (j == s->ncopies) {
				fsop_done(op, -EXDEV);
				return;
			}
		}
		for (i = 0; i < s->ncopies; i++) {
			change_dest_copy(op->dir2, s->copies[i].peer,
			    s->copies[i].export_id, true, &dest);
			change_act_one(op, s->copies[i].peer,
			    s->copies[i].export_id, &dest);
		}
		break;
	default: /* a LINK is sent by change_link_dst_cb */
		fsop_done(op, -EINVAL);
		return;
	}
	op->pending--;
	if (op->pending == 0)
		fsop_done(op, op->error != 0 ? op->error : -EIO);
}

/* The source name resolved. */
/* Both names of the request are resolved: on to act, or the error. */
static void
change_resolved(struct fsop *op)
{
	if (--op->pending > 0)
		return;
	if (op->error != 0) {
		fsop_done(op, op->error);
		return;
	}
	fsop_set_state(op, FS_ACT);
	change_step(op);
}

/* The source name resolved (of a rename: perhaps before the target). */
static void
change_src_cb(void *arg, int error, struct entry *e)
{
	struct fsop *op = arg;

	if (error != 0)
		op->error = error; /* the source's error comes first */
	else {
		op->src = *e;
		memset(e, 0, sizeof *e); /* ownership moved */
		op->have_src = true;
	}
	change_resolved(op);
}

/* The destination name resolved (or does not exist). */
static void
change_dst_cb(void *arg, int error, struct entry *e)
{
	struct fsop *op = arg;

	if (error != 0 && error != -ENOENT && op->error == 0)
		op->error = error;
	if (error == 0) {
		op->dst = *e;
		memset(e, 0, sizeof *e);
		op->have_dst = true;
	}
	change_resolved(op);
}

/* The file's bytes written here are on its holder: go on. */
static void
change_flushed(void *arg, int error, const void *data, size_t len)
{
	(void)error; /* a write-back error waits for the next close */
	(void)data;
	(void)len;
	change_step(arg);
}

/*
 * Begin unlink, rmdir or rename; an error if it cannot begin (the
 * caller replies it), else it is answered when done.  A file with bytes
 * written here and not yet on its holder is written back first, so
 * that a rename (a copy, across peers) or an unlink sees all of it.
 */
static int
change_start(fuse_req_t req, uint8_t type, fuse_ino_t parent, const char *name,
    fuse_ino_t newparent, const char *newname, unsigned flags)
{
	struct node *dir = fsop_inode(parent), *dir2 = NULL, *n;
	struct fsop *op;
	size_t baselen;

	if (dir == NULL)
		return -EIO;
	if (type == PROTO_RENAME && (dir2 = fsop_inode(newparent)) == NULL)
		return -EIO;
	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	if (dir2 != NULL && strlen(newname) >= PROTO_MAX_NAME)
		return -ENAMETOOLONG;
	if (dir2 != NULL && move_hidden(newname))
		return -EINVAL;
	op = fsop_new(req, type);
	op->dir = dir;
	node_ref(dir);
	if (dir2 != NULL) {
		op->dir2 = dir2;
		node_ref(dir2);
		op->name2 = xstrdup(newname);
		if (strchr(newname, '@') != NULL) {
			struct peer *pin;

			/* A rename onto NAME@URI means NAME there. */
			node_split_name(newname, &pin, &baselen);
			op->name2[baselen] = '\0';
		}
	}
	op->name = xstrdup(name);
	op->flags = (int)flags;
	node_split_name(name, &op->pin, &baselen);
	op->base = xstrndup(name, baselen);
	fsop_set_state(op, FS_RESOLVE);
	if ((n = node_child(dir, name)) != NULL && io_dirty(n))
		return io_barrier(n, change_flushed, op);
	change_step(op);
	return 0;
}

void
change_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	int err;

	if ((err = change_start(req, PROTO_UNLINK, parent, name, 0, NULL, 0)) <
	    0)
		fuse_reply_err(req, -err);
}

void
change_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	int err;

	if ((err = change_start(req, PROTO_RMDIR, parent, name, 0, NULL, 0)) <
	    0)
		fuse_reply_err(req, -err);
}

void
change_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
    fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	int err;

	if ((err = change_start(req, PROTO_RENAME, parent, name, newparent,
		 newname, flags)) < 0)
		fuse_reply_err(req, -err);
}

/* link: the target name must be free anywhere in the merged dir. */
static void
change_link_dst_cb(void *arg, int error, struct entry *e)
{
	struct fsop *op = arg;
	struct copy dest;
	struct node *n = op->node;
	char *rel, *rel2;
	struct call *c;

	(void)e;
	if ((error = fsop_name_free(error)) != 0) {
		fsop_done(op, error);
		return;
	}
	if (!change_dest_copy(op->dir2, n->peer, n->export_id, false, &dest)) {
		if (!change_clone(op, n->peer, n->export_id))
			fsop_done(op, -EXDEV);
		return;
	}
	if ((rel = fsop_relpath(n, n->peer, n->export_id)) == NULL) {
		fsop_done(op, -ENOENT);
		return;
	}
	rel2 = fsop_relpath(op->dir2, dest.peer, dest.export_id);
	c = call_new(n->peer, PROTO_LINK, n->export_id, rel, change_act_cb, op);
	call_set_dest(c, dest.export_id, rel2 != NULL ? rel2 : "", op->name2);
	free(rel);
	free(rel2);
	/* Its trap is the echo of this link, as an unlink's of an unlink. */
	dircache_expect(n->peer, &c->req);
	op->pending = 1;
	call_send(c);
}

void
change_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
    const char *newname)
{
	struct node *n = fsop_inode(ino), *dir2 = fsop_inode(newparent);
	struct fsop *op;
	int err = 0;

	if (n == NULL || dir2 == NULL)
		err = -EIO;
	else if (n->isdir)
		err = -EPERM;
	else if (n->peer == NULL || n->peer->state != PEER_UP)
		err = -ENOENT;
	if (err < 0) {
		fuse_reply_err(req, -err);
		return;
	}
	op = fsop_new(req, PROTO_LINK);
	op->node = n;
	node_ref(n);
	op->dir2 = dir2;
	node_ref(dir2);
	op->name2 = xstrdup(newname);
	union_resolve_any(dir2, newname, change_link_dst_cb, op);
}

/*
 * A file's node placed (by a lookup, a listing or a create) this
 * recently, within attr_timeout, stands for its holder's answer: the
 * kernel looks the target of a rename up just before it, and the
 * source of a save was made a moment earlier.  Asking again would only
 * repeat that answer a round trip later.
 */
#define CHANGE_PLACED_MS 1000

/* Fill e from dir's child name if it is such a node. */
static bool
change_from_node(struct node *dir, const char *name, struct entry *e)
{
	struct node *n = node_child(dir, name);
	uint64_t fresh = CHANGE_PLACED_MS;

	if (conf->attr_timeout * 1000 < (double)fresh)
		fresh = (uint64_t)(conf->attr_timeout * 1000);
	if (n == NULL || n->isdir || n->pin != NULL || n->peer == NULL ||
	    n->placed_ms == 0 || n->peer->state != PEER_UP ||
	    n->placed_ms + fresh <= loop_now_ms())
		return false;
	memset(e, 0, sizeof *e);
	e->name = xstrdup(name);
	e->peer = n->peer;
	e->export_id = n->export_id;
	e->attr = n->attr;
	e->ino = n->ino;
	return true;
}

/*
 * A rename of a file over another whose nodes are both fresh: resolved
 * without asking (see above).  A holder that changed since finds out
 * the rename or the move itself: it fails there and nothing changes.
 */
static bool
change_rename_from_nodes(struct fsop *op)
{
	if (op->pin != NULL || strchr(op->name2, '@') != NULL ||
	    !change_from_node(op->dir, op->name, &op->src))
		return false;
	if (!change_from_node(op->dir2, op->name2, &op->dst)) {
		entry_clear(&op->src);
		return false;
	}
	op->have_src = op->have_dst = true;
	op->error = 0;
	return true;
}

/* Advance unlink, rmdir, rename or link: resolve, act. */
static void
change_step(struct fsop *op)
{
	switch (op->state) {
	case FS_RESOLVE:
		if (op->type == PROTO_RENAME && change_rename_from_nodes(op)) {
			fsop_set_state(op, FS_ACT);
			change_act(op);
			break;
		}
		/* A rename asks for both names at once: one round trip. */
		op->pending = op->type == PROTO_RENAME ? 2 : 1;
		op->error = 0;
		if (op->type == PROTO_UNLINK || op->type == PROTO_RMDIR)
			union_resolve_holders(op->dir, op->name, change_src_cb,
			    op);
		else
			union_resolve(op->dir, op->name, change_src_cb, op);
		if (op->type == PROTO_RENAME) /* who holds it, asked */
			union_resolve_asked(op->dir2, op->name2, change_dst_cb,
			    op);
		break;
	case FS_ACT:
		change_act(op);
		break;
	default:
		fatalx("fsop: bad state %d", op->state);
	}
}
