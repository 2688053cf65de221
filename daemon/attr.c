/*
 * attr.c - getattr and setattr.  Attributes come from a fresh cached
 * listing when there is one (for an open file, one that still shows the
 * same object), else from the holder (through an open handle if there
 * is one, so a file renamed or unlinked elsewhere still answers fstat).
 * A directory's attributes change on every copy.
 */
#include <errno.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

#include <fuse_lowlevel.h>

#include "cluster.h"
#include "fs.h"

/* --- getattr, setattr --- */

/*
 * The attributes of n from the fresh cached listing of its directory on
 * its holder (for a directory: its primary copy, as attr_cb would ask),
 * or for a directory from what its holder said after a change of ours
 * in it (dircache_dir_attr), into n->attr; whether there were any
 * (with same, only if they are of the object n was, an open file's).  A
 * directory's own listing changing makes the one that shows it stale too
 * (inval.c), as its times and link count change with it.
 */
static bool
attr_from_listing(struct node *n, bool same)
{
	const struct lent *e;
	struct listing *l;
	struct peer *peer;
	struct proto_attr a;
	struct copy *c = NULL;
	uint32_t export_id;
	char *rel, *slash;
	size_t nc;
	bool stale, found = false;

	if (n->isdir) {
		if (n->isvirtual || n->parent == NULL)
			return false;
		c = union_copies(n, &nc);
		if (nc == 0) {
			free(c);
			return false;
		}
		peer = c[0].peer;
		export_id = c[0].export_id;
		free(c);
	} else {
		if (n->peer == NULL || n->peer->state != PEER_UP)
			return false;
		peer = n->peer;
		export_id = n->export_id;
	}
	rel = fsop_relpath(n, peer, export_id);
	if (rel == NULL || rel[0] == '\0') {
		free(rel);
		return false;
	}
	/* A directory we changed: what its holder said after the change. */
	if (n->isdir && dircache_dir_attr(peer, export_id, rel, &a))
		found = true;
	slash = strrchr(rel, '/');
	if (slash != NULL)
		*slash = '\0';
	l = found
	    ? NULL
	    : dircache_get(peer, export_id, slash != NULL ? rel : "", &stale);
	if (l != NULL &&
	    (e = listing_find(l, slash != NULL ? slash + 1 : rel)) != NULL &&
	    dircache_ent_fresh(l, e)) {
		a = e->attr;
		found = true;
	}
	free(rel);
	if (!found || (a.mode & S_IFMT) != (n->attr.mode & S_IFMT) ||
	    dircache_attr_older(&a, &n->attr) ||
	    ((same || (!n->isdir && !TAILQ_EMPTY(&n->handles))) &&
		(a.dev != n->attr.dev || a.ino != n->attr.ino)))
		return false; /* an open file's: its STAT decides (attr_cb) */
	io_attr_seen(n, &a);
	n->attr = a;
	union_rekey(n);
	if (n->isdir && n->ncopies > 1)
		n->attr.nlink = 1; /* as attr_cb */
	return true;
}

/*
 * Whether a STAT's answer a is older than what n shows: of the same
 * file, with an earlier change time.  A STAT sent while the file was
 * dirty may be served before the write-back's WRITE lands on the
 * holder and answered after it: taken, it would put back the size and
 * times from before the write, for attr_timeout, after the close.
 */
static bool
attr_stat_older(const struct node *n, const struct proto_attr *a)
{
	return !n->isdir && a->dev == n->attr.dev && a->ino == n->attr.ino &&
	    dircache_attr_older(a, &n->attr);
}

/*
 * A STAT by path of a file open here found its name nobody's now
 * (ENOENT) or another file's (union_split()): the handle to ask the
 * open file through, else NULL.
 */
static struct handle *
attr_open_elsewhere(struct fsop *op, const struct call *c)
{
	struct handle *h;

	if (c->req.fh != 0 || op->node->isdir ||
	    (h = io_handle_any(op->node)) == NULL || h->fh == 0)
		return NULL;
	if (c->rep.error == -ENOENT)
		return h;
	if (c->rep.error == 0 && !cluster_export(c->peer, c->req.export_id) &&
	    union_split(op->node, union_file_ino(c->peer, &c->rep.attr)))
		return h;
	return NULL;
}

/* An attr reply from a holder: remember and pass on. */
static void
attr_cb(struct call *c)
{
	struct fsop *op = c->arg;
	struct handle *h;
	struct stat st;

	if ((h = attr_open_elsewhere(op, c)) != NULL) {
		struct call *c2 = call_new(h->peer, PROTO_STAT, h->export_id,
		    NULL, attr_cb, op);

		c2->req.fh = h->fh;
		call_send(c2);
		return;
	}
	if (cluster_gone(c)) {
		/* The replica of its handle went: another answers by path. */
		struct call *c2;
		int err;

		if ((c2 = fsop_call(op->node, PROTO_STAT, attr_cb, op, &err)) ==
		    NULL) {
			fsop_done(op, err);
			return;
		}
		call_send(c2);
		return;
	}
	if (c->rep.error != 0) {
		fsop_done(op, c->rep.error);
		return;
	}
	/* Not if older than n's, nor asked before a change set here. */
	if (!attr_stat_older(op->node, &c->rep.attr) &&
	    !io_attr_pending(op->node)) {
		io_attr_seen(op->node, &c->rep.attr);
		op->node->attr = c->rep.attr;
		union_rekey(op->node);
	}
	if (op->node->isdir && op->node->ncopies > 1)
		op->node->attr.nlink = 1;
	fsop_node_stat(op->node, &st);
	fuse_reply_attr(op->req, &st, fsop_attr_given(op->node));
	fsop_free(op);
}

void
attr_get(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct node *n = fsop_inode(ino);
	struct handle *h = NULL;
	struct fsop *op;
	struct call *c;
	struct stat st;
	int err = 0;

	if (n != NULL && fi != NULL && !n->isdir)
		h = (struct handle *)fi->fh;
	if (h != NULL && !io_handle_live(h) &&
	    cluster_export(h->peer, h->export_id))
		h = NULL; /* a replica gone: another answers by path */
	if (n != NULL && node_unnamed(n)) {
		/*
		 * Unlinked, renamed over or removed here, and still open
		 * (fstat): its name is another's now, or nobody's.  A file
		 * open here asks its holder through a handle (nlink 0, as
		 * on one machine); else it shows what it was, with no name.
		 */
		if (h == NULL && !n->isdir)
			h = io_handle_any(n);
		if (h != NULL && h->fh == 0)
			h = NULL; /* a holder's bad answer: not the root */
		if (h == NULL) {
			fsop_node_stat(n, &st);
			st.st_nlink = n->isdir || st.st_nlink <= 1
			    ? 0
			    : st.st_nlink - 1;
			fuse_reply_attr(req, &st, 0);
			return;
		}
	}
	if (n == NULL)
		err = -EIO;
	else if (h != NULL && !io_handle_live(h))
		err = -EIO; /* opened from a peer that left or restarted */
	/* Attributes set here and not confirmed yet: n->attr foresees them. */
	else if (!io_attr_pending(n) && !attr_from_listing(n, h != NULL)) {
		op = fsop_new(req, PROTO_STAT);
		op->node = n;
		node_ref(n);
		if (h != NULL) {
			c = call_new(h->peer, PROTO_STAT, h->export_id, NULL,
			    attr_cb, op);
			c->req.fh = h->fh;
		} else
			c = fsop_call(n, PROTO_STAT, attr_cb, op, &err);
		if (c != NULL) {
			call_send(c); /* attr_cb answers */
			return;
		}
		fsop_free(op);
		if (err == -EROFS) {
			/* A virtual directory: its attributes are made up. */
			err = 0;
			if (n->parent == NULL)
				fsop_root_attr(n);
		}
	}
	if (err < 0) {
		fuse_reply_err(req, -err);
		return;
	}
	fsop_node_stat(n, &st);
	fuse_reply_attr(req, &st, fsop_attr_given(n));
}

/* One SETATTR answer (error negative) of possibly several copies'. */
static void
attr_set_one(struct fsop *op, int error, const struct proto_attr *a)
{
	struct stat st;

	op->pending--;
	if (error != 0 && op->error == 0)
		op->error = error;
	if (error == 0 && !op->have_attr) {
		op->attr = *a;
		op->have_attr = true;
	}
	if (op->pending > 0)
		return;
	if (op->error != 0) {
		fsop_done(op, op->error);
		return;
	}
	op->node->attr = op->attr;
	if (!op->node->isdir && op->attr.nlink > 1)
		/* One inode of the kernel's per name: the others re-ask. */
		io_links_changed(op->node, &op->attr);
	fsop_node_stat(op->node, &st);
	fuse_reply_attr(op->req, &st, fsop_attr_given(op->node));
	fsop_free(op);
}

/* A directory copy's SETATTR came back. */
static void
attr_set_cb(struct call *c)
{
	attr_set_one(c->arg, c->rep.error, &c->rep.attr);
}

/* The file's SETATTR (through io.c) came back. */
static void
attr_set_file_cb(void *arg, int error, const struct proto_attr *a)
{
	attr_set_one(arg, error, a);
}

/* Fill the SETATTR fields of a request from the kernel's. */
static void
attr_set_req(struct proto_req *r, const struct stat *a, int to_set)
{
	if (to_set & FUSE_SET_ATTR_MODE)
		r->valid |= PROTO_SET_MODE;
	if (to_set & FUSE_SET_ATTR_UID)
		r->valid |= PROTO_SET_UID;
	if (to_set & FUSE_SET_ATTR_GID)
		r->valid |= PROTO_SET_GID;
	if (to_set & FUSE_SET_ATTR_SIZE)
		r->valid |= PROTO_SET_SIZE;
	if (to_set & FUSE_SET_ATTR_ATIME)
		r->valid |= PROTO_SET_ATIME;
	if (to_set & FUSE_SET_ATTR_MTIME)
		r->valid |= PROTO_SET_MTIME;
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		r->valid |= PROTO_SET_ATIME_NOW;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		r->valid |= PROTO_SET_MTIME_NOW;
	r->mode = a->st_mode;
	r->uid = a->st_uid;
	r->gid = a->st_gid;
	r->offset = (uint64_t)a->st_size;
	r->atime.sec = a->st_atim.tv_sec;
	r->atime.nsec = (uint32_t)a->st_atim.tv_nsec;
	r->mtime.sec = a->st_mtim.tv_sec;
	r->mtime.nsec = (uint32_t)a->st_mtim.tv_nsec;
}

void
attr_set(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
    struct fuse_file_info *fi)
{
	struct node *n = fsop_inode(ino);
	struct handle *h = NULL;
	struct fsop *op;
	struct copy *copies;
	struct call *c;
	size_t nc;
	char *rel;

	if (n == NULL) {
		fuse_reply_err(req, EIO);
		return;
	}
	op = fsop_new(req, PROTO_SETATTR);
	op->node = n;
	node_ref(n);
	op->pending = 1;
	if (!n->isdir) {
		/* A file's, its size among them, go by the data path. */
		struct proto_req set = { 0 };
		int err;

		if (fi != NULL)
			h = (struct handle *)fi->fh;
		attr_set_req(&set, attr, to_set);
		if (kernel_kill_suidgid())
			set.valid |= PROTO_SET_KILL_SUIDGID;
		if ((err = io_setattr(n, h, &set, attr_set_file_cb, op)) < 0)
			fsop_done(op, err);
		return;
	}
	/* A directory: every copy changes, the primary answers. */
	if (node_unnamed(n)) {
		/* Removed or renamed over: its path is another's now. */
		fsop_done(op, -ENOENT);
		return;
	}
	copies = union_copies(n, &nc);
	op->pending = 0;
	for (size_t i = 0; i < nc; i++) {
		if ((rel = fsop_relpath(n, copies[i].peer,
			 copies[i].export_id)) == NULL)
			continue;
		c = call_new(copies[i].peer, PROTO_SETATTR, copies[i].export_id,
		    rel, attr_set_cb, op);
		free(rel);
		attr_set_req(&c->req, attr, to_set);
		op->pending++;
		call_send(c);
	}
	free(copies);
	if (op->pending == 0)
		fsop_done(op, -EROFS);
}
