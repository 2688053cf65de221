/*
 * fs.c - the FUSE low-level glue: the kernel's requests, on the loop.
 *
 * The FUSE channel fd is non-blocking and read from a libevent callback
 * with fuse_session_receive_buf() / fuse_session_process_buf().  A
 * handler either replies at once or parks what it needs in a struct
 * fsop (copies: the kernel's arguments die with the handler) and replies
 * from the callback of the calls it sends; every path ends in exactly
 * one fuse_reply_*.  Lookup counts go up on every entry reply.
 *
 * Multi-step requests are small state machines stepped by fsop_step():
 * create-like requests check the name is free in the whole merged
 * directory, pick a holder by create_policy, then create; rename
 * resolves source and destination, checks the one-peer rule (EXDEV),
 * then renames every copy.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <event2/event.h>

#include "pufs.h"

/* Requests read from the channel per callback, so others get a turn. */
#define FS_BATCH	32

static struct {
	struct fuse_session *se;
	struct event *ev;
	struct fuse_buf buf;
	char *mountpoint;
	unsigned long requests;
	unsigned rr;		/* create_policy roundrobin cursor */
	bool refusing;		/* leaving: every request gets EIO */
	bool se_stuck;		/* the notifier never let go of se */
} fs;

enum fsop_state {
	FS_CHECK,		/* is the name free in the merged directory? */
	FS_PLACE,		/* choose the holder */
	FS_MAKE,		/* create on it */
	FS_RESOLVE,		/* unlink, rmdir, rename: what are the names? */
	FS_ACT,			/* send the change to every holder */
	FS_STATE_MAX
};

/* A parked request: everything a later step needs, copied. */
struct fsop {
	fuse_req_t req;
	enum fsop_state state;
	uint8_t type;		/* PROTO_MKDIR, PROTO_RENAME, ... */
	struct node *dir;	/* parent (holds a ref) */
	struct node *dir2;	/* rename/link target parent (ref) */
	struct node *node;	/* object (ref) */
	char *name, *name2;	/* as the kernel gave them */
	char *base;		/* name without "@URI" */
	struct peer *pin;
	mode_t mode;
	dev_t rdev;
	int flags;
	char *target;		/* symlink target */
	struct fuse_file_info fi;
	struct entry src, dst;
	bool have_src, have_dst;
	struct copy *cands;	/* placement candidates */
	size_t ncands;
	struct copy chosen;
	uint64_t best;
	unsigned pending;
	int error;
	struct proto_attr attr;
	bool have_attr;
	bool checked_empty;	/* rmdir: every copy was seen empty */
	bool cloned;		/* dir2's path was cloned onto the source's */
	struct statvfs sv;	/* statfs sum */
};

static void fsop_step(struct fsop *);
static struct node *fs_node(fuse_ino_t);

/* A new parked request. */
static struct fsop *
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
static struct fsop *
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
static void
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
static void
fsop_done(struct fsop *op, int error)
{
	fuse_reply_err(op->req, error < 0 ? -error : error);
	fsop_free(op);
}

/* Fill a struct stat from wire attributes. */
static void
fs_fill_stat(const struct proto_attr *a, uint64_t ino, struct stat *st)
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

/* Build the entry reply for node n and count the lookup. */
static void
fs_entry_param(struct node *n, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof *e);
	e->ino = n->id;
	e->attr_timeout = conf->attr_timeout;
	e->entry_timeout = conf->attr_timeout;
	fs_fill_stat(&n->attr, n->ino, &e->attr);
	n->nlookup++;
}

/* Reply an entry for n. */
static void
fs_reply_entry(fuse_req_t req, struct node *n)
{
	struct fuse_entry_param e;

	fs_entry_param(n, &e);
	if (fuse_reply_entry(req, &e) != 0)
		node_forget(n, 1);	/* the kernel did not get it */
}

/* The node of an inode number; NULL only on a kernel bug. */
static struct node *
fs_node(fuse_ino_t ino)
{
	struct node *n = node_get(ino);

	if (n == NULL)
		log_warnx("fuse: unknown inode %llu", (unsigned long long)ino);
	return n;
}

/* The directory node ino, or NULL with EIO or ENOTDIR replied. */
static struct node *
fs_dir_node(fuse_req_t req, fuse_ino_t ino)
{
	struct node *n = fs_node(ino);

	if (n == NULL || !n->isdir) {
		fuse_reply_err(req, n == NULL ? EIO : ENOTDIR);
		return NULL;
	}
	return n;
}

/*
 * Where n is held: its holder, or for a directory its primary copy.
 * Returns 0, -ENOENT (no live holder) or 1 for a virtual directory.
 */
static int
fs_holder(struct node *n, struct peer **peer, uint32_t *export_id)
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

/* The path of node n inside export (peer, id); NULL if not there. */
static char *
fs_relpath(struct node *n, struct peer *peer, uint32_t export_id)
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

/* A call about node n on its holder; NULL with *err set on failure. */
static struct call *
fs_node_call(struct node *n, uint8_t type, void (*cb)(struct call *),
    void *arg, int *err)
{
	struct peer *peer;
	uint32_t export_id;
	struct call *c;
	char *rel;
	int rc;

	if ((rc = fs_holder(n, &peer, &export_id)) != 0) {
		*err = rc > 0 ? EROFS : -rc;
		return NULL;
	}
	if ((rel = fs_relpath(n, peer, export_id)) == NULL) {
		*err = ENOENT;
		return NULL;
	}
	c = call_new(peer, type, export_id, rel, cb, arg);
	free(rel);
	return c;
}

/* Synthesised attributes of the root of an empty union. */
static void
fs_root_attr(struct node *n)
{
	union_virtual_attr("/", &n->attr);
	n->attr.ino = FUSE_ROOT_ID;
	n->ino = FUSE_ROOT_ID;
}

/* The RELEASE of a closed handle came back; nobody waits for it. */
static void
fs_release_cb(struct call *c)
{
	if (c->rep.error != 0)
		log_debug("release: %s", strerror(c->rep.error));
}

/* A handle for the file node n opened by call c (OPEN or CREATE). */
static struct handle *
fs_handle_new(struct node *n, struct call *c)
{
	struct handle *h = xcalloc(1, sizeof *h);

	h->node = n;
	node_ref(n);
	h->peer = c->peer;
	h->epoch = c->peer->epoch;
	h->export_id = c->req.export_id;
	h->fh = c->rep.fh;
	TAILQ_INSERT_TAIL(&n->handles, h, nentry);
	return h;
}

/* Forget a handle (its RELEASE, if any, is already sent). */
static void
fs_handle_free(struct handle *h)
{
	TAILQ_REMOVE(&h->node->handles, h, nentry);
	node_unref(h->node);
	free(h);
}

/*
 * A live open handle of n, if any: attributes asked without one still go
 * by handle, so an open file renamed or unlinked elsewhere still answers.
 */
static struct handle *
fs_any_handle(struct node *n)
{
	struct handle *h;

	TAILQ_FOREACH(h, &n->handles, nentry)
		if (io_handle_live(h))
			return h;
	return NULL;
}

/*
 * Invalidations are written to the kernel by their own thread.  The
 * kernel may hold a page or inode lock of the inode while a request on
 * it waits for our answer; written from the loop, an invalidation would
 * wait for that lock while the loop is the one that must answer: a
 * deadlock.  From the notifier thread it just waits its turn.
 */
struct fs_inval {
	uint64_t ino;		/* the inode, or the parent of name */
	int64_t off;		/* -1: attributes only; else data from off */
	int64_t len;		/* bytes of data; 0: to the end */
	char *name;		/* an entry of ino to forget; owned */
};

/* The notifier's queue: a ring of cap slots, n queued from head. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct fs_inval *q;
	size_t head, n, cap;
	bool stop;
	bool exited;		/* the thread wrote its last one */
	pthread_t thread;
	bool running;
} fsn = { .lock = PTHREAD_MUTEX_INITIALIZER,
	  .cond = PTHREAD_COND_INITIALIZER };

/* Notifier thread: write queued invalidations until told to stop. */
static void *
fs_notify_main(void *arg)
{
	struct fs_inval iv;
	int rc;

	(void)arg;
	pthread_mutex_lock(&fsn.lock);
	for (;;) {
		while (fsn.n == 0 && !fsn.stop)
			pthread_cond_wait(&fsn.cond, &fsn.lock);
		if (fsn.n == 0)
			break;
		iv = fsn.q[fsn.head];
		fsn.head = (fsn.head + 1) % fsn.cap;
		fsn.n--;
		pthread_mutex_unlock(&fsn.lock);
		if (iv.name != NULL)
			rc = fuse_lowlevel_notify_inval_entry(fs.se, iv.ino,
			    iv.name, strlen(iv.name));
		else
			rc = fuse_lowlevel_notify_inval_inode(fs.se, iv.ino,
			    iv.off, iv.len);
		if (rc != 0 && rc != -ENOENT)
			log_debug("fuse: inval %llu %s: %s",
			    (unsigned long long)iv.ino,
			    iv.name ? iv.name : "", strerror(-rc));
		free(iv.name);
		pthread_mutex_lock(&fsn.lock);
	}
	fsn.exited = true;
	pthread_mutex_unlock(&fsn.lock);
	return NULL;
}

/* Hand one invalidation to the notifier thread. */
static void
fs_inval_queue(struct fs_inval iv)
{
	if (fs.se == NULL || !fsn.running || fs.refusing) {
		free(iv.name);
		return;
	}
	pthread_mutex_lock(&fsn.lock);
	if (fsn.n == fsn.cap) {
		/* Grow, unwrapping the ring into the new array's start. */
		size_t cap = fsn.cap ? fsn.cap * 2 : 64;
		struct fs_inval *q = xreallocarray(NULL, cap, sizeof *q);

		for (size_t i = 0; i < fsn.n; i++)
			q[i] = fsn.q[(fsn.head + i) % fsn.cap];
		free(fsn.q);
		fsn.q = q;
		fsn.cap = cap;
		fsn.head = 0;
	}
	fsn.q[(fsn.head + fsn.n++) % fsn.cap] = iv;
	pthread_cond_signal(&fsn.cond);
	pthread_mutex_unlock(&fsn.lock);
}

/* Queue an invalidation of n (off -1: attributes; 0: data too). */
static void
fs_inval(struct node *n, int64_t off)
{
	if (n->nlookup > 0)
		fs_inval_queue((struct fs_inval){ n->id, off, 0, NULL });
}

/* The kernel must forget its cached attributes and data of n. */
void
fs_forget_data(struct node *n, uint64_t off, uint64_t len)
{
	n->xattrs_known = false;
	if (n->nlookup > 0)
		fs_inval_queue((struct fs_inval){ n->id, (int64_t)off,
		    (int64_t)len, NULL });
}

/* The kernel must forget its attributes of n. */
void
fs_forget_attr(struct node *n)
{
	n->xattrs_known = false;
	fs_inval(n, -1);
}

/* The kernel must look name up again in directory dir. */
void
fs_forget_entry(struct node *dir, const char *name)
{
	if (dir->nlookup > 0 || dir->parent == NULL)
		fs_inval_queue((struct fs_inval){ dir->id, -1, 0,
		    xstrdup(name) });
}

/* node_foreach: invalidate nodes that are the same object as arg. */
static void
fs_inval_same(struct node *n, void *arg)
{
	const struct node *like = arg;

	if (!n->isdir && n->peer == like->peer && n->attr.dev ==
	    like->attr.dev && n->attr.ino == like->attr.ino && n != like)
		fs_inval(n, n->data_seen ? 0 : -1);
}

/*
 * The object behind n changed through n (its link count, or its data):
 * every other name of it, a separate inode to the kernel, must re-ask.
 */
static void
fs_inval_links(struct node *n)
{
	node_foreach(fs_inval_same, n);
}

/* --- lookup, forget --- */

/* lookup: the merged answer for name. */
static void
fs_lookup_cb(void *arg, int error, struct entry *e)
{
	struct fsop *op = arg;
	struct node *n;

	if (error != 0) {
		fsop_done(op, error);
		return;
	}
	n = union_node(op->dir, e);
	fs_reply_entry(op->req, n);
	fsop_free(op);
}

static void
fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct node *dir = fs_dir_node(req, parent);
	struct fsop *op;

	if (dir == NULL)
		return;
	op = fsop_new(req, PROTO_STAT);
	op->dir = dir;
	node_ref(dir);
	union_resolve(dir, name, fs_lookup_cb, op);
}

static void
fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct node *n = node_get(ino);

	if (n == NULL)
		fatalx("forget of unknown inode %llu",
		    (unsigned long long)ino);
	node_forget(n, nlookup);
	fuse_reply_none(req);
}

static void
fs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *f)
{
	for (size_t i = 0; i < count; i++) {
		struct node *n = node_get(f[i].ino);

		if (n == NULL)
			fatalx("forget of unknown inode %llu",
			    (unsigned long long)f[i].ino);
		node_forget(n, f[i].nlookup);
	}
	fuse_reply_none(req);
}

/* --- getattr, setattr --- */

/*
 * The attributes of file n from its holder's fresh cached listing of its
 * directory, into n->attr; whether there was one.
 */
static bool
fs_attr_from_listing(struct node *n)
{
	const struct export *ex;
	const struct lent *e;
	struct listing *l;
	char *upath, *rel, *slash;
	bool stale, found = false;

	if (n->isdir || n->peer == NULL || n->peer->state != PEER_UP ||
	    (ex = union_export(n->peer, n->export_id)) == NULL)
		return false;
	upath = node_path(n);
	rel = union_relpath(ex, upath);
	free(upath);
	if (rel == NULL || rel[0] == '\0') {
		free(rel);
		return false;
	}
	slash = strrchr(rel, '/');
	if (slash != NULL)
		*slash = '\0';
	l = dircache_get(n->peer, n->export_id, slash != NULL ? rel : "",
	    &stale);
	if (l != NULL && !stale &&
	    (e = listing_find(l, slash != NULL ? slash + 1 : rel)) != NULL &&
	    (e->attr.mode & S_IFMT) == (n->attr.mode & S_IFMT)) {
		n->attr = e->attr;
		found = true;
	}
	free(rel);
	return found;
}

/* An attr reply from a holder: remember and pass on. */
static void
fs_attr_cb(struct call *c)
{
	struct fsop *op = c->arg;
	struct handle *h;
	struct stat st;

	if (c->rep.error == ENOENT && c->req.fh == 0 && !op->node->isdir &&
	    (h = fs_any_handle(op->node)) != NULL) {
		/* Unlinked or renamed away, but open here: ask the file. */
		struct call *c2 = call_new(h->peer, PROTO_STAT, h->export_id,
		    NULL, fs_attr_cb, op);

		c2->req.fh = h->fh;
		call_send(c2);
		return;
	}
	if (c->rep.error != 0) {
		fsop_done(op, c->rep.error);
		return;
	}
	op->node->attr = c->rep.attr;
	if (op->node->isdir && op->node->ncopies > 1)
		op->node->attr.nlink = 1;
	fs_fill_stat(&op->node->attr, op->node->ino, &st);
	fuse_reply_attr(op->req, &st, conf->attr_timeout);
	fsop_free(op);
}

static void
fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct node *n = fs_node(ino);
	struct handle *h = NULL;
	struct fsop *op;
	struct call *c;
	struct stat st;
	int err = 0;

	if (n != NULL && fi != NULL && !n->isdir)
		h = (struct handle *)fi->fh;
	if (n == NULL) {
		fuse_reply_err(req, EIO);
		return;
	}
	if (h != NULL && !io_handle_live(h)) {
		/* Opened from a peer that left or restarted since. */
		fuse_reply_err(req, EIO);
		return;
	}
	if (h == NULL && fs_attr_from_listing(n)) {
		fs_fill_stat(&n->attr, n->ino, &st);
		fuse_reply_attr(req, &st, conf->attr_timeout);
		return;
	}
	op = fsop_new(req, PROTO_STAT);
	op->node = n;
	node_ref(n);
	if (h != NULL) {
		c = call_new(h->peer, PROTO_STAT, h->export_id, NULL,
		    fs_attr_cb, op);
		c->req.fh = h->fh;
	} else if ((c = fs_node_call(n, PROTO_STAT, fs_attr_cb, op, &err))
	    == NULL && err == EROFS) {
		/* A virtual directory: its attributes are made up. */
		if (n->parent == NULL)
			fs_root_attr(n);
		fs_fill_stat(&n->attr, n->ino, &st);
		fuse_reply_attr(req, &st, conf->attr_timeout);
		fsop_free(op);
		return;
	}
	if (c == NULL) {
		fsop_done(op, err);
		return;
	}
	call_send(c);
}

/* One SETATTR answer of possibly several (directory copies). */
static void
fs_setattr_cb(struct call *c)
{
	struct fsop *op = c->arg;
	struct stat st;

	op->pending--;
	if (c->rep.error != 0 && op->error == 0)
		op->error = c->rep.error;
	if (c->rep.error == 0 && !op->have_attr) {
		op->attr = c->rep.attr;
		op->have_attr = true;
	}
	if (op->pending > 0)
		return;
	if (op->error != 0) {
		fsop_done(op, op->error);
		return;
	}
	op->node->attr = op->attr;
	fs_fill_stat(&op->node->attr, op->node->ino, &st);
	fuse_reply_attr(op->req, &st, conf->attr_timeout);
	fsop_free(op);
}

/* Fill the SETATTR fields of a call from the kernel's request. */
static void
fs_setattr_req(struct call *c, const struct stat *a, int to_set)
{
	struct proto_req *r = &c->req;

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

static void
fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
    struct fuse_file_info *fi)
{
	struct node *n = fs_node(ino);
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
		int err = 0;

		if (fi != NULL)
			h = (struct handle *)fi->fh;
		if (h != NULL && io_handle_live(h)) {
			c = call_new(h->peer, PROTO_SETATTR, h->export_id,
			    NULL, fs_setattr_cb, op);
			c->req.fh = h->fh;
			if ((rel = fs_relpath(n, h->peer, h->export_id))) {
				free(c->strs[0]);
				c->req.path = c->strs[0] = rel;
			}
		} else if ((c = fs_node_call(n, PROTO_SETATTR, fs_setattr_cb,
		    op, &err)) == NULL) {
			fsop_done(op, err);
			return;
		}
		fs_setattr_req(c, attr, to_set);
		call_send(c);
		return;
	}
	/* A directory: every copy changes, the primary answers. */
	copies = union_copies(n, &nc);
	op->pending = 0;
	for (size_t i = 0; i < nc; i++) {
		if ((rel = fs_relpath(n, copies[i].peer, copies[i].export_id))
		    == NULL)
			continue;
		c = call_new(copies[i].peer, PROTO_SETATTR,
		    copies[i].export_id, rel, fs_setattr_cb, op);
		free(rel);
		fs_setattr_req(c, attr, to_set);
		op->pending++;
		call_send(c);
	}
	free(copies);
	if (op->pending == 0)
		fsop_done(op, EROFS);
}

/* --- readlink --- */

static void
fs_readlink_cb(struct call *c)
{
	struct fsop *op = c->arg;
	char *s;

	if (c->rep.error != 0) {
		fsop_done(op, c->rep.error);
		return;
	}
	s = xstrndup(c->rep.data, c->rep.datalen);
	fuse_reply_readlink(op->req, s);
	free(s);
	fsop_free(op);
}

/* A request about one node answered by a simple callback. */
static void
fs_simple(fuse_req_t req, fuse_ino_t ino, uint8_t type,
    void (*cb)(struct call *), struct call **out)
{
	struct fsop *op;
	struct call *c;
	int err = 0;

	*out = NULL;
	if ((op = fsop_node(req, ino, type)) == NULL)
		return;
	if ((c = fs_node_call(op->node, type, cb, op, &err)) == NULL) {
		fsop_done(op, err);
		return;
	}
	*out = c;
}

static void
fs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct call *c;

	fs_simple(req, ino, PROTO_READLINK, fs_readlink_cb, &c);
	if (c != NULL)
		call_send(c);
}

/* --- mknod, mkdir, symlink, create: check, place, make --- */

/* The name is free (or taken) in the merged directory. */
static void
fs_check_cb(void *arg, int error, struct entry *e)
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
	op->state = FS_PLACE;
	fsop_step(op);
}

/* A STATFS answer while placing by free space. */
static void
fs_place_cb(struct call *c)
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
	op->state = FS_MAKE;
	fsop_step(op);
}

/* The writable copies of the parent a new entry may go to. */
static void
fs_candidates(struct fsop *op, size_t *nall)
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
fs_place(struct fsop *op)
{
	enum config_create_policy policy = conf->create_policy;
	size_t i;

	if (op->ncands == 1) {
		op->chosen = op->cands[0];
		op->state = FS_MAKE;
		fsop_step(op);
		return;
	}
	if (policy == CREATE_LOCAL) {
		for (i = 0; i < op->ncands; i++) {
			if (op->cands[i].peer->self) {
				op->chosen = op->cands[i];
				op->state = FS_MAKE;
				fsop_step(op);
				return;
			}
		}
		policy = CREATE_MOSTFREE;
	}
	if (policy == CREATE_ROUNDROBIN) {
		op->chosen = op->cands[fs.rr++ % op->ncands];
		op->state = FS_MAKE;
		fsop_step(op);
		return;
	}
	op->pending = (unsigned)op->ncands;
	for (i = 0; i < op->ncands; i++) {
		struct call *c = call_new(op->cands[i].peer, PROTO_STATFS,
		    op->cands[i].export_id, "", fs_place_cb, op);

		c->idx = (unsigned)i;
		call_send(c);
	}
}

/* The entry was made: reply with its new node (and handle). */
static void
fs_make_cb(struct call *c)
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
	h = fs_handle_new(n, c);
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
		    h->export_id, NULL, fs_release_cb, NULL);

		node_forget(n, 1);	/* the handle still holds n */
		rc->req.fh = h->fh;
		call_send(rc);
		fs_handle_free(h);
	}
	fsop_free(op);
}

/* Send the create-like call to the chosen copy. */
static void
fs_make(struct fsop *op)
{
	char *rel = fs_relpath(op->dir, op->chosen.peer,
	    op->chosen.export_id);
	struct call *c;

	if (rel == NULL) {
		fsop_done(op, ENOENT);
		return;
	}
	c = call_new(op->chosen.peer, op->type, op->chosen.export_id, rel,
	    fs_make_cb, op);
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
fs_make_start(fuse_req_t req, uint8_t type, fuse_ino_t parent,
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
	fs_candidates(op, &nall);
	if (op->ncands == 0) {
		fsop_done(op, nall > 0 || dir->isvirtual ||
		    dir->parent == NULL ? EROFS : ENOENT);
		return;
	}
	dpath = node_path(dir);
	/* One holder in all: its own EEXIST is the answer. */
	op->state = nall == 1 && op->pin == NULL &&
	    !union_has_virtual_below(dpath) ? FS_PLACE : FS_CHECK;
	free(dpath);
	fsop_step(op);
}

static void
fs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
    dev_t rdev)
{
	fs_make_start(req, PROTO_MKNOD, parent, name, mode, rdev, NULL, NULL);
}

static void
fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	fs_make_start(req, PROTO_MKDIR, parent, name, mode, 0, NULL, NULL);
}

static void
fs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
    const char *name)
{
	fs_make_start(req, PROTO_SYMLINK, parent, name, 0, 0, link, NULL);
}

static void
fs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
    struct fuse_file_info *fi)
{
	fs_make_start(req, PROTO_CREATE, parent, name, mode, 0, NULL, fi);
}

/* --- unlink, rmdir, rename, link: resolve, check, act --- */

/*
 * A rename is done: the kernel's nodes follow the names.  A file that
 * moved lands in op->chosen, its new holder's export.
 */
static void
fs_renamed(struct fsop *op)
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
	} else if (n != NULL) {
		node_move(n, op->dir2, op->name2);
		if (!n->isdir) {	/* it may have changed export */
			n->peer = op->chosen.peer;
			n->export_id = op->chosen.export_id;
		}
	} else if (n2 != NULL)
		node_unlink(n2);
}

/* One answer of the change sent to every holder. */
static void
fs_act_cb(struct call *c)
{
	struct fsop *op = c->arg;
	struct node *n;

	op->pending--;
	if (c->rep.error != 0 && (op->error == 0 || c->rep.error == ENOTEMPTY))
		op->error = c->rep.error;
	if (c->rep.error == 0 && c->req.type == PROTO_LINK) {
		op->attr = c->rep.attr;
		op->chosen = (struct copy){ c->peer, c->req.export2 };
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
				fs_inval_links(n);
			node_unlink(n);
		}
		break;
	case PROTO_RENAME:
		fs_renamed(op);
		break;
	case PROTO_LINK: {
		struct entry e = { 0 };

		e.name = xstrdup(op->name2);
		e.peer = op->chosen.peer;
		e.export_id = op->chosen.export_id;
		e.attr = op->attr;
		e.ino = node_ino_hash(e.peer->name, e.attr.dev, e.attr.ino);
		n = union_node(op->dir2, &e);
		entry_clear(&e);
		fs_reply_entry(op->req, n);
		fs_inval_links(n);
		fs_inval(n, -1);
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
fs_act_one(struct fsop *op, struct peer *peer, uint32_t export_id,
    struct copy *dest)
{
	char *rel = fs_relpath(op->dir, peer, export_id), *rel2 = NULL;
	struct call *c;

	if (rel == NULL)
		return -ENOENT;
	c = call_new(peer, op->type, export_id, rel, fs_act_cb, op);
	free(rel);
	call_set_name(c, op->base);
	if (dest != NULL) {
		rel2 = fs_relpath(op->dir2, dest->peer, dest->export_id);
		if (rel2 == NULL)
			rel2 = xstrdup("");
		call_set_dest(c, dest->export_id, rel2, op->name2);
		free(rel2);
	}
	c->req.flags = (uint32_t)op->flags;
	op->pending++;
	call_send(c);
	return 0;
}

/* Where dir2 has a copy on peer, preferring the same export. */
static bool
fs_dest_copy(struct node *dir2, struct peer *peer, uint32_t export_id,
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
fs_copy_is_root(struct node *dir, const char *name, const struct copy *c)
{
	const struct export *ex = union_export(c->peer, c->export_id);
	char *dpath = node_path(dir), *upath;
	bool root;

	xasprintf(&upath, "%s/%s", strcmp(dpath, "/") == 0 ? "" : dpath,
	    name);
	root = ex != NULL && strcmp(ex->at, upath) == 0;
	free(dpath);
	free(upath);
	return root;
}

/* A copy's listing came back: non-empty means ENOTEMPTY for all. */
static void
fs_rmdir_check_cb(struct call *c)
{
	struct fsop *op = c->arg;

	op->pending--;
	if (c->rep.error == 0 && c->rep.nents > 0)
		op->error = ENOTEMPTY;
	else if (c->rep.error != 0 && c->rep.error != ENOENT &&
	    op->error == 0)
		op->error = c->rep.error;
	if (op->pending > 0)
		return;
	if (op->error != 0) {
		fsop_done(op, op->error);
		return;
	}
	op->checked_empty = true;
	fsop_step(op);
}

/* List every copy of the directory to be removed. */
static void
fs_rmdir_check(struct fsop *op)
{
	struct entry *s = &op->src;
	char *dpath, *upath, *rel;

	dpath = node_path(op->dir);
	xasprintf(&upath, "%s/%s", strcmp(dpath, "/") == 0 ? "" : dpath,
	    op->base);
	op->pending = 1;
	for (size_t i = 0; i < s->ncopies; i++) {
		const struct export *ex = union_export(s->copies[i].peer,
		    s->copies[i].export_id);

		if (ex == NULL || (rel = union_relpath(ex, upath)) == NULL)
			continue;
		op->pending++;
		call_send(call_new(s->copies[i].peer, PROTO_READDIR,
		    s->copies[i].export_id, rel, fs_rmdir_check_cb, op));
		free(rel);
	}
	free(dpath);
	free(upath);
	if (--op->pending == 0) {
		op->checked_empty = true;
		fsop_step(op);
	}
}

static void fs_act(struct fsop *);
static void fs_link_dst_cb(void *, int, struct entry *);

/* The path of dir2 now exists on the source's peer: carry on there. */
static void
fs_clone_done(void *arg, int error)
{
	struct fsop *op = arg;
	struct copy *c;

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
		fs_link_dst_cb(op, -ENOENT, NULL);
	else
		fs_act(op);
}

/*
 * A rename or link to a new name in a directory the source's peer does
 * not hold: make the directory's path there first (mkdir with the
 * union's modes, as mergerfs clones a path onto a branch).  Returns
 * false when it cannot (EXDEV then).
 */
static bool
fs_clone(struct fsop *op, struct peer *peer, uint32_t export_id)
{
	const struct export *ex = union_export(peer, export_id);
	char *rel = fs_relpath(op->dir2, peer, export_id);
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
		modes[i - 1] = d->attr.mode & 07777 ? d->attr.mode & 07777 :
		    0755;
	op->cloned = true;
	op->chosen = (struct copy){ peer, export_id };
	move_clone(peer, export_id, rel, modes, n, fs_clone_done, op);
	free(modes);
	free(rel);
	return true;
}

/* A move to another peer ended: the kernel's node follows the file. */
static void
fs_move_done(void *arg, int error)
{
	struct fsop *op = arg;
	struct node *n;

	if (error == 0) {
		fs_renamed(op);
		/* Another holder, another inode: attributes and data. */
		if ((n = node_child(op->dir2, op->name2)) != NULL) {
			n->data_seen = false;
			fs_inval(n, 0);
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
fs_move(struct fsop *op)
{
	struct entry *s = &op->src, *d = &op->dst;
	const struct export *sx = union_export(s->peer, s->export_id);
	const struct export *dx = union_export(d->peer, d->export_id);
	struct move_spec sp = {
		.speer = s->peer, .sexport = s->export_id,
		.dpeer = d->peer, .dexport = d->export_id,
		.sname = op->base, .dname = op->name2, .attr = s->attr,
	};

	if ((op->flags & RENAME_EXCHANGE) ||
	    !(S_ISREG(s->attr.mode) || S_ISLNK(s->attr.mode)) ||
	    (S_ISREG(s->attr.mode) && s->attr.nlink > 1)) {
		fsop_done(op, EXDEV);
		return;
	}
	if (sx == NULL || dx == NULL) {
		fsop_done(op, ENOENT);
		return;
	}
	if (sx->read_only || dx->read_only) {
		fsop_done(op, EROFS);
		return;
	}
	op->chosen = (struct copy){ d->peer, d->export_id };
	sp.sdir = fs_relpath(op->dir, s->peer, s->export_id);
	sp.ddir = fs_relpath(op->dir2, d->peer, d->export_id);
	if (sp.sdir == NULL || sp.ddir == NULL)
		fsop_done(op, ENOENT);
	else
		move_start(&sp, fs_move_done, op);
	free(sp.sdir);
	free(sp.ddir);
}

/* Everything is known: send the change(s). */
static void
fs_act(struct fsop *op)
{
	struct entry *s = &op->src, *d = &op->dst;
	const struct export *ex;
	struct copy dest;
	size_t i;

	op->pending = 1;	/* held while sending */
	switch (op->type) {
	case PROTO_UNLINK:
		if (s->isdir) {
			fsop_done(op, EISDIR);
			return;
		}
		fs_act_one(op, s->peer, s->export_id, NULL);
		break;
	case PROTO_RMDIR:
		if (!s->isdir) {
			fsop_done(op, ENOTDIR);
			return;
		}
		if (s->isvirtual) {
			fsop_done(op, EBUSY);
			return;
		}
		for (i = 0; i < s->ncopies; i++)
			if (fs_copy_is_root(op->dir, op->base, &s->copies[i])) {
				fsop_done(op, EBUSY);
				return;
			}
		if (s->ncopies > 1 && !op->checked_empty) {
			/* Every copy must be empty before any goes. */
			op->pending = 0;
			fs_rmdir_check(op);
			return;
		}
		for (i = 0; i < s->ncopies; i++)
			fs_act_one(op, s->copies[i].peer,
			    s->copies[i].export_id, NULL);
		break;
	case PROTO_RENAME:
		if (op->have_dst && (op->flags & RENAME_NOREPLACE)) {
			fsop_done(op, EEXIST);
			return;
		}
		if (!op->have_dst && (op->flags & RENAME_EXCHANGE)) {
			fsop_done(op, ENOENT);
			return;
		}
		if (!s->isdir) {
			if (op->have_dst && d->isdir &&
			    !(op->flags & RENAME_EXCHANGE)) {
				fsop_done(op, EISDIR);
				return;
			}
			if (op->have_dst && !d->isdir && d->peer != s->peer) {
				op->pending = 0;
				fs_move(op);
				return;
			}
			/* Over an existing file: into its export, or not. */
			if (!fs_dest_copy(op->dir2, s->peer, op->have_dst &&
			    !d->isdir ? d->export_id : s->export_id,
			    op->have_dst && !d->isdir, &dest)) {
				op->pending = 0;
				if (op->have_dst ||
				    !fs_clone(op, s->peer, s->export_id))
					fsop_done(op, EXDEV);
				return;
			}
			ex = union_export(dest.peer, dest.export_id);
			if (ex == NULL || ex->read_only) {
				fsop_done(op, EROFS);
				return;
			}
			op->chosen = dest;
			fs_act_one(op, s->peer, s->export_id, &dest);
			break;
		}
		if (s->isvirtual) {
			fsop_done(op, EXDEV);
			return;
		}
		if (op->have_dst && !d->isdir &&
		    !(op->flags & RENAME_EXCHANGE)) {
			fsop_done(op, ENOTDIR);
			return;
		}
		/* Every copy moves within its own export. */
		for (i = 0; i < s->ncopies; i++) {
			if (fs_copy_is_root(op->dir, op->base, &s->copies[i])) {
				fsop_done(op, EBUSY);
				return;
			}
			if (!fs_dest_copy(op->dir2, s->copies[i].peer,
			    s->copies[i].export_id, true, &dest)) {
				/* One copy to a new name: clone the path. */
				op->pending = 0;
				if (s->ncopies > 1 || op->have_dst ||
				    !fs_clone(op, s->copies[i].peer,
				    s->copies[i].export_id))
					fsop_done(op, EXDEV);
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
				fsop_done(op, EXDEV);
				return;
			}
		}
		for (i = 0; i < s->ncopies; i++) {
			fs_dest_copy(op->dir2, s->copies[i].peer,
			    s->copies[i].export_id, true, &dest);
			fs_act_one(op, s->copies[i].peer,
			    s->copies[i].export_id, &dest);
		}
		break;
	case PROTO_LINK:
		break;		/* sent by fs_link_dst_cb */
	default:
		fsop_done(op, EINVAL);
		return;
	}
	op->pending--;
	if (op->pending == 0)
		fsop_done(op, op->error != 0 ? op->error : EIO);
}

/* The source name resolved. */
/* Both names of the request are resolved: on to act, or the error. */
static void
fs_resolved(struct fsop *op)
{
	if (--op->pending > 0)
		return;
	if (op->error != 0) {
		fsop_done(op, op->error);
		return;
	}
	op->state = FS_ACT;
	fsop_step(op);
}

/* The source name resolved (of a rename: perhaps before the target). */
static void
fs_src_cb(void *arg, int error, struct entry *e)
{
	struct fsop *op = arg;

	if (error != 0)
		op->error = error;	/* the source's error comes first */
	else {
		op->src = *e;
		memset(e, 0, sizeof *e);	/* ownership moved */
		op->have_src = true;
	}
	fs_resolved(op);
}

/* The destination name resolved (or does not exist). */
static void
fs_dst_cb(void *arg, int error, struct entry *e)
{
	struct fsop *op = arg;

	if (error != 0 && error != -ENOENT && op->error == 0)
		op->error = error;
	if (error == 0) {
		op->dst = *e;
		memset(e, 0, sizeof *e);
		op->have_dst = true;
	}
	fs_resolved(op);
}

/* Begin unlink, rmdir or rename. */
static void
fs_change_start(fuse_req_t req, uint8_t type, fuse_ino_t parent,
    const char *name, fuse_ino_t newparent, const char *newname,
    unsigned flags)
{
	struct node *dir = fs_node(parent), *dir2 = NULL;
	struct fsop *op;
	size_t baselen;

	if (dir == NULL) {
		fuse_reply_err(req, EIO);
		return;
	}
	if (type == PROTO_RENAME && (dir2 = fs_node(newparent)) == NULL) {
		fuse_reply_err(req, EIO);
		return;
	}
	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	op = fsop_new(req, type);
	op->dir = dir;
	node_ref(dir);
	if (dir2 != NULL) {
		op->dir2 = dir2;
		node_ref(dir2);
		op->name2 = xstrdup(newname);
		if (strlen(newname) >= PROTO_MAX_NAME) {
			fsop_done(op, ENAMETOOLONG);
			return;
		}
		if (move_hidden(newname)) {
			fsop_done(op, EINVAL);
			return;
		}
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
	op->state = FS_RESOLVE;
	fsop_step(op);
}

static void
fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fs_change_start(req, PROTO_UNLINK, parent, name, 0, NULL, 0);
}

static void
fs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fs_change_start(req, PROTO_RMDIR, parent, name, 0, NULL, 0);
}

static void
fs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
    fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	fs_change_start(req, PROTO_RENAME, parent, name, newparent, newname,
	    flags);
}

/* link: the target name must be free anywhere in the merged dir. */
static void
fs_link_dst_cb(void *arg, int error, struct entry *e)
{
	struct fsop *op = arg;
	struct copy dest;
	struct node *n = op->node;
	char *rel, *rel2;
	struct call *c;

	(void)e;
	if (error == 0) {
		fsop_done(op, EEXIST);
		return;
	}
	if (error != -ENOENT) {
		fsop_done(op, error);
		return;
	}
	if (!fs_dest_copy(op->dir2, n->peer, n->export_id, false, &dest)) {
		if (!fs_clone(op, n->peer, n->export_id))
			fsop_done(op, EXDEV);
		return;
	}
	if ((rel = fs_relpath(n, n->peer, n->export_id)) == NULL) {
		fsop_done(op, ENOENT);
		return;
	}
	rel2 = fs_relpath(op->dir2, dest.peer, dest.export_id);
	c = call_new(n->peer, PROTO_LINK, n->export_id, rel, fs_act_cb, op);
	call_set_dest(c, dest.export_id, rel2 != NULL ? rel2 : "",
	    op->name2);
	free(rel);
	free(rel2);
	op->pending = 1;
	call_send(c);
}

static void
fs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
    const char *newname)
{
	struct node *n = fs_node(ino), *dir2 = fs_node(newparent);
	struct fsop *op;

	if (n == NULL || dir2 == NULL) {
		fuse_reply_err(req, EIO);
		return;
	}
	if (n->isdir) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (n->peer == NULL || n->peer->state != PEER_UP) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	op = fsop_new(req, PROTO_LINK);
	op->node = n;
	node_ref(n);
	op->dir2 = dir2;
	node_ref(dir2);
	op->name2 = xstrdup(newname);
	union_resolve_any(dir2, newname, fs_link_dst_cb, op);
}

/* Advance a parked multi-step request. */
static void
fsop_step(struct fsop *op)
{
	switch (op->state) {
	case FS_CHECK:
		union_resolve_any(op->dir, op->base, fs_check_cb, op);
		break;
	case FS_PLACE:
		fs_place(op);
		break;
	case FS_MAKE:
		fs_make(op);
		break;
	case FS_RESOLVE:
		/* A rename asks for both names at once: one round trip. */
		op->pending = op->type == PROTO_RENAME ? 2 : 1;
		op->error = 0;
		union_resolve(op->dir, op->name, fs_src_cb, op);
		if (op->type == PROTO_RENAME)
			union_resolve(op->dir2, op->name2, fs_dst_cb, op);
		break;
	case FS_ACT:
		fs_act(op);
		break;
	default:
		fatalx("fsop: bad state %d", op->state);
	}
}

/* --- open, read, write, release, fsync --- */

static void
fs_open_cb(struct call *c)
{
	struct fsop *op = c->arg;
	struct node *n = op->node;
	const struct proto_attr *a = &c->rep.attr;
	struct handle *h;

	if (c->rep.error != 0) {
		fsop_done(op, c->rep.error);
		return;
	}
	h = fs_handle_new(n, c);
	h->flags = op->fi.flags;
	/* Keep the page cache only if the file is as it was. */
	op->fi.keep_cache = n->data_seen && !(op->fi.flags & O_TRUNC) &&
	    n->data_mtime.sec == a->mtime.sec &&
	    n->data_mtime.nsec == a->mtime.nsec && n->data_size == a->size;
	/*
	 * Close-to-open: if the file changed since the kernel last saw its
	 * attributes, make it ask again before it trusts its cached size
	 * (fstat and the read path refresh invalid attributes; the cached
	 * listing was brought up to date by the call layer, so whatever
	 * answers sees these).  Written before the open's reply, so the
	 * kernel's next getattr is newer than the invalidation.  Attributes
	 * only: this takes no inode lock, so it is safe from the loop.
	 */
	if (!op->fi.keep_cache || n->attr.size != a->size ||
	    n->attr.mtime.sec != a->mtime.sec ||
	    n->attr.mtime.nsec != a->mtime.nsec)
		fuse_lowlevel_notify_inval_inode(fs.se, n->id, -1, 0);
	n->data_seen = true;
	n->data_mtime = a->mtime;
	n->data_size = a->size;
	n->attr = *a;
	op->fi.fh = (uint64_t)(uintptr_t)h;
	op->fi.direct_io = conf->direct_io;
	if (fuse_reply_open(op->req, &op->fi) != 0) {
		struct call *rc = call_new(h->peer, PROTO_RELEASE,
		    h->export_id, NULL, fs_release_cb, NULL);

		rc->req.fh = h->fh;
		call_send(rc);
		fs_handle_free(h);
	}
	fsop_free(op);
}

static void
fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct call *c;
	struct fsop *op;

	fs_simple(req, ino, PROTO_OPEN, fs_open_cb, &c);
	if (c == NULL)
		return;
	op = c->arg;
	if (op->node->isdir) {
		/* Directories are opened through opendir. */
		op->fi = *fi;
	}
	op->fi = *fi;
	c->req.flags = (uint32_t)fi->flags;
	call_send(c);
}

/* io_read done: the bytes go straight to the kernel. */
static void
fs_read_done(void *arg, int error, const void *data, size_t len)
{
	fuse_req_t req = arg;

	if (error != 0)
		fuse_reply_err(req, -error);
	else
		fuse_reply_buf(req, data, len);
}

static void
fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)fi->fh;

	(void)ino;
	io_read(h, (uint64_t)off, size, fs_read_done, req);
}

/* io_write done: other names of a hard-linked file must re-read. */
static void
fs_write_done(void *arg, int error, const void *data, size_t len)
{
	struct fsop *op = arg;

	(void)data;
	if (error == 0 && op->node->attr.nlink > 1)
		fs_inval_links(op->node);
	if (error != 0)
		fuse_reply_err(op->req, -error);
	else
		fuse_reply_write(op->req, len);
	fsop_free(op);
}

static void
fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
    off_t off, struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)fi->fh;
	struct fsop *op = fsop_new(req, PROTO_WRITE);

	(void)ino;
	op->node = h->node;
	node_ref(h->node);
	io_write(h, (uint64_t)off, buf, size, fs_write_done, op);
}

static void
fs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* Writes are synchronous with the holder: nothing is pending. */
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void
fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)fi->fh;
	struct call *c;

	(void)ino;
	if (io_handle_live(h)) {
		c = call_new(h->peer, PROTO_RELEASE, h->export_id, NULL,
		    fs_release_cb, NULL);
		c->req.fh = h->fh;
		call_send(c);
	}
	fs_handle_free(h);
	fuse_reply_err(req, 0);
}

/* An answer that is only an error code. */
static void
fs_err_cb(struct call *c)
{
	fsop_done(c->arg, c->rep.error);
}

/* A call on an open handle, answered by cb. */
static struct call *
fs_handle_call(fuse_req_t req, struct fuse_file_info *fi, uint8_t type,
    void (*cb)(struct call *))
{
	struct handle *h = (struct handle *)fi->fh;
	struct fsop *op = fsop_new(req, type);
	struct call *c;

	if (!io_handle_live(h)) {
		fsop_done(op, EIO);
		return NULL;
	}
	c = call_new(h->peer, type, h->export_id, NULL, cb, op);
	c->req.fh = h->fh;
	return c;
}

static void
fs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
    struct fuse_file_info *fi)
{
	struct call *c = fs_handle_call(req, fi, PROTO_FSYNC, fs_err_cb);

	(void)ino;
	if (c == NULL)
		return;
	c->req.flags = datasync ? 1 : 0;
	call_send(c);
}

static void
fs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
    off_t length, struct fuse_file_info *fi)
{
	struct call *c = fs_handle_call(req, fi, PROTO_FALLOCATE, fs_err_cb);

	(void)ino;
	if (c == NULL)
		return;
	c->req.flags = (uint32_t)mode;
	c->req.offset = (uint64_t)offset;
	c->req.length = (uint64_t)length;
	call_send(c);
}

/* An answer that is a number: an offset (lseek) or a count (copy). */
static void
fs_value_cb(struct call *c)
{
	struct fsop *op = c->arg;

	if (c->rep.error != 0) {
		fsop_done(op, c->rep.error);
		return;
	}
	if (c->req.type == PROTO_LSEEK)
		fuse_reply_lseek(op->req, (off_t)c->rep.value);
	else
		fuse_reply_write(op->req, (size_t)c->rep.value);
	fsop_free(op);
}

static void
fs_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
    struct fuse_file_info *fi)
{
	struct call *c = fs_handle_call(req, fi, PROTO_LSEEK, fs_value_cb);

	(void)ino;
	if (c == NULL)
		return;
	c->req.offset = (uint64_t)off;
	c->req.flags = (uint32_t)whence;
	call_send(c);
}

static void
fs_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
    struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
    struct fuse_file_info *fi_out, size_t len, int flags)
{
	struct handle *hi = (struct handle *)fi_in->fh;
	struct handle *ho = (struct handle *)fi_out->fh;
	struct call *c;

	(void)ino_in;
	(void)ino_out;
	if (flags != 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (hi->peer != ho->peer) {
		fuse_reply_err(req, EXDEV);
		return;
	}
	c = fs_handle_call(req, fi_in, PROTO_COPY_RANGE, fs_value_cb);
	if (c == NULL)
		return;
	c->req.offset = (uint64_t)off_in;
	c->req.fh2 = ho->fh;
	c->req.offset2 = (uint64_t)off_out;
	c->req.length = len;
	call_send(c);
}

/* --- directories --- */

/* An open directory: a snapshot of the merged listing. */
struct dirh {
	struct node *node;	/* holds a ref */
	struct entry *ents;	/* owned */
	size_t nents;
	bool loaded;
	LIST_ENTRY(dirh) entry;	/* fs_dirs, freed at unmount if open */
};
static LIST_HEAD(, dirh) fs_dirs = LIST_HEAD_INITIALIZER(fs_dirs);

/* A parked readdir. */
struct rdop {
	fuse_req_t req;
	struct dirh *d;
	size_t size;
	off_t off;
	bool plus;
};

static void
fs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct node *n = fs_dir_node(req, ino);
	struct dirh *d;

	if (n == NULL)
		return;
	d = xcalloc(1, sizeof *d);
	d->node = n;
	node_ref(n);
	fi->fh = (uint64_t)(uintptr_t)d;
	if (fuse_reply_open(req, fi) != 0) {
		node_unref(n);
		free(d);
		return;
	}
	LIST_INSERT_HEAD(&fs_dirs, d, entry);
}

/* Drop a directory handle's snapshot. */
static void
fs_dirh_clear(struct dirh *d)
{
	for (size_t i = 0; i < d->nents; i++)
		entry_clear(&d->ents[i]);
	free(d->ents);
	d->ents = NULL;
	d->nents = 0;
	d->loaded = false;
}

/* Fill one reply buffer from the snapshot, starting at rd->off. */
static void
fs_readdir_fill(struct rdop *rd)
{
	struct dirh *d = rd->d;
	char *buf = xmalloc(rd->size), *p = buf;
	size_t rem = rd->size, len;
	off_t i;

	/* Offsets: 0 ".", 1 "..", 2 + k the k-th entry; next is i + 1. */
	for (i = rd->off; (size_t)i < d->nents + 2; i++) {
		struct fuse_entry_param e;
		struct node *n = NULL;
		const char *name;

		memset(&e, 0, sizeof e);
		if (i < 2) {
			name = i == 0 ? "." : "..";
			e.attr.st_mode = S_IFDIR;
			e.attr.st_ino = i == 0 ? d->node->ino :
			    d->node->parent != NULL ? d->node->parent->ino :
			    FUSE_ROOT_ID;
		} else {
			struct entry *en = &d->ents[i - 2];

			name = en->name;
			if (rd->plus) {
				n = union_node(d->node, en);
				fs_entry_param(n, &e);
			} else {
				e.attr.st_mode = en->attr.mode;
				e.attr.st_ino = en->ino;
			}
		}
		if (rd->plus)
			len = fuse_add_direntry_plus(rd->req, p, rem, name,
			    &e, i + 1);
		else
			len = fuse_add_direntry(rd->req, p, rem, name,
			    &e.attr, i + 1);
		if (len > rem) {
			if (n != NULL)	/* not sent: not counted */
				node_forget(n, 1);
			break;
		}
		p += len;
		rem -= len;
	}
	fuse_reply_buf(rd->req, buf, rd->size - rem);
	free(buf);
	node_unref(d->node);	/* the request's ref */
	free(rd);
}

/* The merged listing is in. */
static void
fs_list_cb(void *arg, int error, struct entry *ents, size_t n)
{
	struct rdop *rd = arg;
	struct dirh *d = rd->d;

	if (error != 0) {
		fuse_reply_err(rd->req, -error);
		node_unref(d->node);
		free(rd);
		return;
	}
	fs_dirh_clear(d);
	d->ents = xcalloc(n + 1, sizeof *d->ents);
	if (n > 0) {
		memcpy(d->ents, ents, n * sizeof *ents);
		memset(ents, 0, n * sizeof *ents);	/* ownership moved */
	}
	d->nents = n;
	d->loaded = true;
	fs_readdir_fill(rd);
}

/* readdir and readdirplus: list at offset 0, then serve the snapshot. */
static void
fs_readdir_common(fuse_req_t req, size_t size, off_t off,
    struct fuse_file_info *fi, bool plus)
{
	struct dirh *d = (struct dirh *)fi->fh;
	struct rdop *rd = xcalloc(1, sizeof *rd);

	rd->req = req;
	rd->d = d;
	rd->size = size;
	rd->off = off;
	rd->plus = plus;
	node_ref(d->node);
	if (off == 0 || !d->loaded)
		union_list(d->node, fs_list_cb, rd);
	else
		fs_readdir_fill(rd);
}

static void
fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	(void)ino;
	fs_readdir_common(req, size, off, fi, false);
}

static void
fs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	(void)ino;
	fs_readdir_common(req, size, off, fi, true);
}

static void
fs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dirh *d = (struct dirh *)fi->fh;

	(void)ino;
	LIST_REMOVE(d, entry);
	fs_dirh_clear(d);
	node_unref(d->node);
	free(d);
	fuse_reply_err(req, 0);
}

static void
fs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
    struct fuse_file_info *fi)
{
	struct call *c;

	(void)fi;
	fs_simple(req, ino, PROTO_FSYNCDIR, fs_err_cb, &c);
	if (c == NULL)
		return;
	c->req.flags = datasync ? 1 : 0;
	call_send(c);
}

/* --- statfs, access, xattrs --- */

/* One export's STATFS: add it to the union's sum. */
static void
fs_statfs_cb(struct call *c)
{
	struct fsop *op = c->arg;
	const struct proto_statfs *s = &c->rep.statfs;
	struct statvfs *sv = &op->sv;
	uint64_t scale;

	op->pending--;
	if (c->rep.error == 0 && s->frsize > 0) {
		/* Sum in units of 4 KiB so different block sizes add up. */
		scale = s->frsize;
		sv->f_blocks += s->blocks * scale / 4096;
		sv->f_bfree += s->bfree * scale / 4096;
		sv->f_bavail += s->bavail * scale / 4096;
		sv->f_files += s->files;
		sv->f_ffree += s->ffree;
		sv->f_favail += s->favail;
		if (sv->f_namemax == 0 || s->namemax < sv->f_namemax)
			sv->f_namemax = s->namemax;
	}
	if (op->pending > 0)
		return;
	sv->f_bsize = (unsigned long)conf->block_size;
	sv->f_frsize = 4096;
	if (sv->f_namemax == 0)
		sv->f_namemax = 255;
	fuse_reply_statfs(op->req, sv);
	fsop_free(op);
}

static void
fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fsop *op = fsop_new(req, PROTO_STATFS);
	struct peer *p;

	(void)ino;
	op->pending = 1;
	TAILQ_FOREACH(p, &peers, entry) {
		if (p->state != PEER_UP)
			continue;
		for (uint32_t e = 0; e < p->nexports; e++) {
			op->pending++;
			call_send(call_new(p, PROTO_STATFS, e, "",
			    fs_statfs_cb, op));
		}
	}
	if (--op->pending == 0) {
		struct statvfs sv = { .f_bsize = (unsigned long)conf->block_size,
		    .f_frsize = 4096, .f_namemax = 255 };

		fuse_reply_statfs(req, &sv);
		fsop_free(op);
	}
}

static void
fs_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct fsop *op;
	struct call *c;
	int err = 0;

	if ((op = fsop_node(req, ino, PROTO_ACCESS)) == NULL)
		return;
	if ((c = fs_node_call(op->node, PROTO_ACCESS, fs_err_cb, op, &err)) ==
	    NULL) {
		fsop_done(op, err == EROFS && !(mask & W_OK) ? 0 : err);
		return;
	}
	c->req.flags = (uint32_t)mask;
	call_send(c);
}

/*
 * Extended attributes.  The names of a node's attributes are cached for
 * attr_timeout (LISTXATTR), so that asking for one it does not have, as
 * ls -l does twice per file, is answered here instead of by its holder.
 * A change through pufs, or a trap, makes the list be asked again.
 * POSIX ACLs and security labels do not cross the union: those names
 * are answered EOPNOTSUPP here, never asked of the holder, and left out
 * of listings, so ls -l, cp -a and tar stop asking after the first file.
 */

/* Whether an xattr name is one of those the union does not carry. */
static bool
fs_xattr_local(const char *name)
{
	return strncmp(name, "security.", 9) == 0 ||
	    strncmp(name, "system.posix_acl_", 17) == 0;
}

static void
fs_xattr_cb(struct call *c)
{
	struct fsop *op = c->arg;

	if (c->rep.error != 0) {
		fsop_done(op, c->rep.error);
		return;
	}
	if (c->req.length == 0)
		fuse_reply_xattr(op->req, (size_t)c->rep.value);
	else
		fuse_reply_buf(op->req, c->rep.data, c->rep.datalen);
	fsop_free(op);
}

/* Whether n's cached attribute names are there and fresh. */
static bool
fs_xattrs_fresh(const struct node *n)
{
	return n->xattrs_known && loop_now_ms() < n->xattrs_until;
}

/* Whether name is in n's cached list of attribute names. */
static bool
fs_xattrs_has(const struct node *n, const char *name)
{
	for (size_t off = 0; off < n->xattrs_len;
	    off += strlen(n->xattrs + off) + 1)
		if (strcmp(n->xattrs + off, name) == 0)
			return true;
	return false;
}

/* Answer a parked getxattr or listxattr from n's cached names. */
static void
fs_xattrs_answer(struct fsop *op)
{
	struct node *n = op->node;
	struct call *c;
	int err = 0;

	if (n->xattrs_error != 0) {
		fsop_done(op, n->xattrs_error);
		return;
	}
	if (op->type == PROTO_LISTXATTR) {
		if (op->flags == 0)
			fuse_reply_xattr(op->req, n->xattrs_len);
		else if ((size_t)op->flags < n->xattrs_len)
			fuse_reply_err(op->req, ERANGE);
		else
			fuse_reply_buf(op->req, n->xattrs, n->xattrs_len);
		fsop_free(op);
		return;
	}
	if (!fs_xattrs_has(n, op->name)) {
		fsop_done(op, ENODATA);
		return;
	}
	if ((c = fs_node_call(n, PROTO_GETXATTR, fs_xattr_cb, op, &err)) ==
	    NULL) {
		fsop_done(op, err);
		return;
	}
	call_set_name(c, op->name);
	c->req.length = (uint64_t)op->flags;
	call_send(c);
}

/* The list of names came back: cache it, then answer. */
static void
fs_xattrs_cb(struct call *c)
{
	struct fsop *op = c->arg;
	struct node *n = op->node;

	free(n->xattrs);
	n->xattrs = NULL;
	n->xattrs_len = 0;
	n->xattrs_error = c->rep.error;
	if (c->rep.error == 0 && c->rep.datalen > 0) {
		const char *names = c->rep.data;
		size_t len;

		/* Keep the names whole and only those the union carries. */
		n->xattrs = xmalloc(c->rep.datalen);
		for (size_t off = 0; off < c->rep.datalen; off += len + 1) {
			len = strnlen(names + off, c->rep.datalen - off);
			if (off + len == c->rep.datalen)
				break;
			if (fs_xattr_local(names + off))
				continue;
			memcpy(n->xattrs + n->xattrs_len, names + off, len + 1);
			n->xattrs_len += len + 1;
		}
	}
	n->xattrs_known = true;
	n->xattrs_until = loop_now_ms() + (uint64_t)(conf->attr_timeout *
	    1000);
	fs_xattrs_answer(op);
}

/* A getxattr (name) or listxattr: from the cache, or fill it first. */
static void
fs_xattrs_start(fuse_req_t req, fuse_ino_t ino, uint8_t type,
    const char *name, size_t size)
{
	struct fsop *op;
	struct node *n;
	struct call *c;
	int err = 0;

	if ((op = fsop_node(req, ino, type)) == NULL)
		return;
	n = op->node;
	op->name = name != NULL ? xstrdup(name) : NULL;
	op->flags = (int)(size > PROTO_MAX_XATTR ? PROTO_MAX_XATTR : size);
	if (fs_xattrs_fresh(n)) {
		fs_xattrs_answer(op);
		return;
	}
	if ((c = fs_node_call(n, PROTO_LISTXATTR, fs_xattrs_cb, op, &err)) ==
	    NULL) {
		fsop_done(op, err);
		return;
	}
	c->req.length = PROTO_MAX_XATTR;
	call_send(c);
}

/* node_foreach: forget the cached names of the same object as arg. */
static void
fs_xattrs_drop_same(struct node *n, void *arg)
{
	const struct node *like = arg;

	if (n->peer == like->peer && n->attr.dev == like->attr.dev &&
	    n->attr.ino == like->attr.ino)
		n->xattrs_known = false;
}

/* A change of attributes answered: the cached names are old now. */
static void
fs_xattr_changed_cb(struct call *c)
{
	struct fsop *op = c->arg;

	op->node->xattrs_known = false;
	if (!op->node->isdir && op->node->attr.nlink > 1)
		node_foreach(fs_xattrs_drop_same, op->node);
	fsop_done(op, c->rep.error);
}

static void
fs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
    const char *value, size_t size, int flags)
{
	struct call *c;

	if (fs_xattr_local(name)) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	if (size > PROTO_MAX_XATTR) {
		fuse_reply_err(req, E2BIG);
		return;
	}
	fs_simple(req, ino, PROTO_SETXATTR, fs_xattr_changed_cb, &c);
	if (c == NULL)
		return;
	call_set_name(c, name);
	call_set_data(c, value, size);
	c->req.flags = (uint32_t)flags;
	call_send(c);
}

static void
fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	if (fs_xattr_local(name)) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	fs_xattrs_start(req, ino, PROTO_GETXATTR, name, size);
}

static void
fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	fs_xattrs_start(req, ino, PROTO_LISTXATTR, NULL, size);
}

static void
fs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct call *c;

	if (fs_xattr_local(name)) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	fs_simple(req, ino, PROTO_REMOVEXATTR, fs_xattr_changed_cb, &c);
	if (c == NULL)
		return;
	call_set_name(c, name);
	call_send(c);
}

/* --- session --- */

static void
fs_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	conn->max_background = 64;
	conn->congestion_threshold = 48;
	conn->max_readahead = conn->max_readahead > (1u << 20) ?
	    conn->max_readahead : (1u << 20);
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	/* The holder's data changes only under our control or is seen at
	 * open (close-to-open) and on attribute refresh. */
	if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA)
		conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	log_debug("fuse: init, max_write %u, max_readahead %u",
	    conn->max_write, conn->max_readahead);
}

static const struct fuse_lowlevel_ops fs_ops = {
	.init = fs_init,
	.lookup = fs_lookup,
	.forget = fs_forget,
	.forget_multi = fs_forget_multi,
	.getattr = fs_getattr,
	.setattr = fs_setattr,
	.readlink = fs_readlink,
	.mknod = fs_mknod,
	.mkdir = fs_mkdir,
	.unlink = fs_unlink,
	.rmdir = fs_rmdir,
	.symlink = fs_symlink,
	.rename = fs_rename,
	.link = fs_link,
	.open = fs_open,
	.read = fs_read,
	.write = fs_write,
	.flush = fs_flush,
	.release = fs_release,
	.fsync = fs_fsync,
	.opendir = fs_opendir,
	.readdir = fs_readdir,
	.readdirplus = fs_readdirplus,
	.releasedir = fs_releasedir,
	.fsyncdir = fs_fsyncdir,
	.statfs = fs_statfs,
	.setxattr = fs_setxattr,
	.getxattr = fs_getxattr,
	.listxattr = fs_listxattr,
	.removexattr = fs_removexattr,
	.access = fs_access,
	.create = fs_create,
	.fallocate = fs_fallocate,
	.copy_file_range = fs_copy_file_range,
	.lseek = fs_lseek,
};

/*
 * Answer a kernel request read while leaving with EIO, without parking
 * anything: written raw, so no request outlives the session.  Forgets
 * and interrupts take no answer.
 */
static void
fs_refuse(const struct fuse_buf *buf)
{
	const struct fuse_in_header *in = buf->mem;
	struct fuse_out_header out;

	if (buf->size < sizeof *in || in->opcode == FUSE_FORGET ||
	    in->opcode == FUSE_BATCH_FORGET || in->opcode == FUSE_INTERRUPT)
		return;
	out = (struct fuse_out_header){ .len = sizeof out, .error = -EIO,
	    .unique = in->unique };
	if (write(fuse_session_fd(fs.se), &out, sizeof out) == -1 &&
	    errno != ENOENT)
		log_debug("fuse: refusing a request: %s", strerror(errno));
}

/* The channel is readable: process a batch of kernel requests. */
static void
fs_read_cb(evutil_socket_t fd, short what, void *arg)
{
	int res;

	(void)fd;
	(void)what;
	(void)arg;
	for (int i = 0; i < FS_BATCH; i++) {
		res = fuse_session_receive_buf(fs.se, &fs.buf);
		if (res == -EINTR)
			continue;
		if (res == -EAGAIN)
			return;
		if (res <= 0 || fuse_session_exited(fs.se)) {
			if (res < 0 && res != -ENODEV)
				log_warnx("fuse: receive: %s", strerror(-res));
			log_info("fuse: %s was unmounted", fs.mountpoint);
			loop_exit(0);
			return;
		}
		fs.requests++;
		if (fs.refusing)
			fs_refuse(&fs.buf);
		else
			fuse_session_process_buf(fs.se, &fs.buf);
	}
}

/* Mount the union and start reading the channel. */
int
fs_mount(const struct config *cfg)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	char *opts;
	int fd, flags;

	xasprintf(&opts, "fsname=pufs,subtype=pufs%s",
	    geteuid() == 0 ? ",allow_other,default_permissions" :
	    ",default_permissions");
	if (fuse_opt_add_arg(&args, "pufs") != 0 ||
	    fuse_opt_add_arg(&args, "-o") != 0 ||
	    fuse_opt_add_arg(&args, opts) != 0)
		fatalx("fuse_opt_add_arg failed");
	free(opts);
	if (cfg->debug && getenv("PUFS_FUSE_DEBUG") != NULL)
		fuse_opt_add_arg(&args, "-d");
	fs.se = fuse_session_new(&args, &fs_ops, sizeof fs_ops, NULL);
	fuse_opt_free_args(&args);
	if (fs.se == NULL) {
		log_warnx("fuse: cannot create the session");
		return -1;
	}
	if (fuse_session_mount(fs.se, cfg->mountpoint) != 0) {
		log_warnx("fuse: cannot mount %s", cfg->mountpoint);
		fuse_session_destroy(fs.se);
		fs.se = NULL;
		return -1;
	}
	fs.mountpoint = xstrdup(cfg->mountpoint);
	fd = fuse_session_fd(fs.se);
	flags = fcntl(fd, F_GETFL);
	if (flags == -1 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1)
		fatal("fuse: cannot make the channel non-blocking");
	if (pthread_create(&fsn.thread, NULL, fs_notify_main, NULL) != 0)
		fatalx("fuse: cannot start the notifier thread");
	fsn.running = true;
	fs.ev = event_new(loop_base, fd, EV_READ | EV_PERSIST, fs_read_cb,
	    NULL);
	if (fs.ev == NULL || event_add(fs.ev, NULL) == -1)
		fatalx("fuse: cannot watch the channel");
	return 0;
}

/* Stop or resume reading the kernel while a peer stream is congested. */
void
fs_throttle(bool on)
{
	if (fs.ev == NULL)
		return;
	if (on)
		event_del(fs.ev);
	else
		event_add(fs.ev, NULL);
}

/* Stop taking new kernel requests (before draining). */
void
fs_stop(void)
{
	if (fs.ev != NULL) {
		event_free(fs.ev);
		fs.ev = NULL;
	}
}

/* Whether the notifier thread has written its last invalidation. */
static bool
fs_notifier_done(void)
{
	bool done;

	pthread_mutex_lock(&fsn.lock);
	done = fsn.exited;
	pthread_mutex_unlock(&fsn.lock);
	return done;
}

/*
 * Abort our FUSE connection through fusectl: the last resort when the
 * notifier stays blocked in the kernel (every request pending there
 * fails, and its locks go).  Its number is the minor of the mount's
 * device, found in mountinfo (a stat of our own mount would ask us).
 */
static void
fs_abort_connection(void)
{
	char line[8192], path[64], mnt[4096];
	unsigned major, minor;
	bool found = false;
	FILE *f;
	int fd;

	if ((f = fopen("/proc/self/mountinfo", "re")) == NULL)
		return;
	while (!found && fgets(line, sizeof line, f) != NULL)
		found = sscanf(line, "%*u %*u %u:%u %*s %4095s", &major,
		    &minor, mnt) == 3 && strcmp(mnt, fs.mountpoint) == 0;
	fclose(f);
	if (!found)
		return;
	snprintf(path, sizeof path, "/sys/fs/fuse/connections/%u/abort",
	    minor);
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) == -1 ||
	    write(fd, "1", 1) != 1)
		log_warn("fuse: cannot abort the connection (%s)", path);
	else
		log_warnx("fuse: the kernel did not take our last "
		    "invalidations; connection aborted");
	if (fd != -1)
		close(fd);
}

/*
 * Stop the notifier.  It may be blocked in the kernel, on a page or
 * inode lock that a request we have not answered holds (a readahead
 * READ, a lookup): so until it is out, every request the kernel sends
 * is answered EIO at once.  If it is still blocked after a while, the
 * connection is aborted.  Returns whether the thread was joined.
 */
static bool
fs_notifier_stop(void)
{
	uint64_t deadline = loop_mono_us() + 2000000;
	struct timeval tick = { 0, 10000 };
	bool aborted = false;

	pthread_mutex_lock(&fsn.lock);
	fsn.stop = true;
	for (size_t i = 0; i < fsn.n; i++)
		free(fsn.q[(fsn.head + i) % fsn.cap].name);
	fsn.n = 0;	/* nothing to invalidate in a dying mount */
	pthread_cond_signal(&fsn.cond);
	pthread_mutex_unlock(&fsn.lock);

	fs.refusing = true;
	fs.ev = event_new(loop_base, fuse_session_fd(fs.se),
	    EV_READ | EV_PERSIST, fs_read_cb, NULL);
	if (fs.ev != NULL)
		event_add(fs.ev, NULL);
	while (!fs_notifier_done()) {
		if (loop_mono_us() > deadline) {
			if (aborted)
				break;
			fs_abort_connection();
			aborted = true;
			deadline = loop_mono_us() + 1000000;
		}
		event_base_loopexit(loop_base, &tick);
		event_base_dispatch(loop_base);
	}
	fs_stop();
	if (!fs_notifier_done()) {
		log_warnx("fuse: the notifier is stuck in the kernel; "
		    "leaving it");
		return false;
	}
	pthread_join(fsn.thread, NULL);
	fsn.running = false;
	free(fsn.q);
	fsn.q = NULL;
	return true;
}

/*
 * Unmount.  Requests still parked (a worker's late answer) are answered
 * into the closed channel harmlessly; the session itself goes in
 * fs_free(), once nothing can answer any more.
 */
void
fs_unmount(void)
{
	fs_stop();
	if (fs.se == NULL || fs.mountpoint == NULL)
		return;
	if (fsn.running && !fs_notifier_stop())
		fs.se_stuck = true;
	fuse_session_exit(fs.se);
	fuse_session_unmount(fs.se);
	log_info("fuse: unmounted %s", fs.mountpoint);
	free(fs.mountpoint);
	fs.mountpoint = NULL;
}

/* Release the session, after the workers are gone and answered. */
void
fs_free(void)
{
	if (fs.se == NULL)
		return;
	fs_unmount();
	/* A notifier stuck in the kernel still uses the session. */
	if (!fs.se_stuck)
		fuse_session_destroy(fs.se);
	while (!LIST_EMPTY(&fs_dirs)) {
		struct dirh *d = LIST_FIRST(&fs_dirs);

		LIST_REMOVE(d, entry);
		fs_dirh_clear(d);
		free(d);
	}
	fs.se = NULL;
	free(fs.buf.mem);
	fs.buf.mem = NULL;
}

/* Figures for status. */
void
fs_stats(unsigned long *requests, unsigned long *inflight)
{
	*requests = fs.requests;
	*inflight = call_inflight();
}
