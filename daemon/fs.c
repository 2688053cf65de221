/*
 * fs.c - the FUSE session: the ops table, the channel read on the loop,
 * mount and unmount, and the helpers every handler shares.
 *
 * The FUSE channel fd is non-blocking and read from a libevent callback
 * with fuse_session_receive_buf() / fuse_session_process_buf().  A
 * handler either replies at once or parks what it needs in a struct
 * fsop (copies: the kernel's arguments die with the handler) and replies
 * from the callback of the calls it sends; every path ends in exactly
 * one fuse_reply_*.  Lookup counts go up on every entry reply.
 *
 * The handlers live with their subject: fsop.c (parked requests and
 * create-like requests), change.c (unlink, rmdir, rename, link), attr.c,
 * file.c, dir.c and xattr.c; fs.c keeps lookup, forget, readlink,
 * statfs and access.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <event2/event.h>

#include "fs.h"

/* Requests read from the channel per callback, so others get a turn. */
#define FS_BATCH 32

static struct {
	struct fuse_session *se;
	struct event *ev;
	struct fuse_buf buf;
	char *mountpoint;
	unsigned long requests;
	bool refusing; /* leaving: every request gets EIO */
	bool se_stuck; /* the notifier never let go of se */
} fs;

/*
 * Forgettings of entries in any directory, and in all at once: a
 * lookup answered after one that may be about its name is not cached
 * by the kernel (fs_lookup_cb), since its answer may predate it.
 */
static uint64_t fs_forgets_all;

static uint64_t
fs_forgets(const struct node *dir)
{
	return dir->forgets + fs_forgets_all;
}

/* The kernel must forget its cached attributes and data of n (io.c). */
void
fs_forget_data(struct node *n, uint64_t off, uint64_t len)
{
	n->xattrs_known = false;
	io_forget(n, off, len);
}

/* The kernel must forget its attributes of n. */
void
fs_forget_attr(struct node *n)
{
	n->xattrs_known = false;
	notify_inval(n, -1);
}

/* The kernel must look name up again in directory dir. */
void
fs_forget_entry(struct node *dir, const char *name)
{
	dir->forgets++;
	if (dir->nlookup > 0 || dir->parent == NULL)
		notify_entry(dir->id, name);
}

/*
 * Names came or went in directory dir: the kernel must forget its
 * attributes and the listing it keeps of it.
 */
void
fs_forget_listing(struct node *dir)
{
	dir->forgets++;
	notify_listing(dir);
}

/*
 * Name appeared in directory dir (dir NULL: names may have appeared
 * anywhere): the kernel must forget it held them absent.
 */
void
fs_forget_absent(struct node *dir, const char *name)
{
	if (dir == NULL) {
		fs_forgets_all++;
		notify_appeared_all();
	} else {
		dir->forgets++;
		notify_appeared_name(dir, name);
	}
}

/* --- lookup, forget --- */

/*
 * lookup: the merged answer for name.  "No such name" is cached by the
 * kernel as long as an entry (a negative entry): every way a name can
 * appear but our own creation (a trap, a peer joining or leaving, a
 * listing that shows it) makes the kernel forget it (notify.c keeps the
 * record).
 */
static void
fs_lookup_cb(void *arg, int error, struct entry *e)
{
	struct fsop *op = arg;
	struct node *n;

	/*
	 * The kernel was told to forget names of the directory while this
	 * was asked (a trap): the answer may be older than what it forgot,
	 * and a dentry made from it would outlive the change by
	 * attr_timeout.  It is answered, and not kept.
	 */
	bool fresh = fs_forgets(op->dir) == op->forgets;

	/* A node the kernel may still hold stands for nothing now. */
	if (error == -ENOENT && (n = node_child(op->dir, op->name)) != NULL)
		n->placed_ms = 0;
	if (error == -ENOENT && conf->attr_timeout > 0 && fresh &&
	    notify_negative(op->dir, op->name, conf->attr_timeout)) {
		struct fuse_entry_param ne;

		memset(&ne, 0, sizeof ne); /* ino 0: a negative entry */
		ne.entry_timeout = conf->attr_timeout;
		fuse_reply_entry(op->req, &ne);
		fsop_free(op);
		return;
	}
	if (error != 0) {
		fsop_done(op, error);
		return;
	}
	n = union_node(op->dir, e);
	if (fresh) {
		fsop_reply_entry(op->req, n);
	} else {
		struct fuse_entry_param ep;

		fsop_entry_param(n, &ep);
		ep.entry_timeout = 0;
		ep.attr_timeout = 0;
		if (fuse_reply_entry(op->req, &ep) != 0)
			node_forget(n, 1);
	}
	fsop_free(op);
}

static void
fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct node *dir;
	struct fsop *op;
	int err;

	if ((err = fsop_dir_node(parent, &dir)) < 0) {
		fuse_reply_err(req, -err);
		return;
	}
	op = fsop_new(req, PROTO_STAT);
	op->dir = dir;
	op->name = xstrdup(name);
	op->forgets = fs_forgets(dir);
	node_ref(dir);
	union_resolve(dir, name, fs_lookup_cb, op);
}

static void
fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct node *n = node_get(ino);

	if (n == NULL)
		fatalx("forget of unknown inode %llu", (unsigned long long)ino);
	if (n->isdir && n->nlookup <= nlookup)
		dir_forgotten(n);
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
		if (n->isdir && n->nlookup <= f[i].nlookup)
			dir_forgotten(n);
		node_forget(n, f[i].nlookup);
	}
	fuse_reply_none(req);
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

static void
fs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct call *c;
	int err;

	if ((err = fsop_simple(req, ino, PROTO_READLINK, fs_readlink_cb, &c)) <
	    0) {
		fuse_reply_err(req, -err);
		return;
	}
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
	TAILQ_FOREACH(p, &peers, entry)
	{
		if (p->state != PEER_UP)
			continue;
		for (uint32_t e = 0; e < p->nexports; e++) {
			op->pending++;
			call_send(
			    call_new(p, PROTO_STATFS, e, "", fs_statfs_cb, op));
		}
	}
	if (--op->pending == 0) {
		struct statvfs sv = {
			.f_bsize = (unsigned long)conf->block_size,
			.f_frsize = 4096,
			.f_namemax = 255
		};

		fuse_reply_statfs(req, &sv);
		fsop_free(op);
	}
}

static void
fs_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct call *c;
	int err;

	if ((err = fsop_simple(req, ino, PROTO_ACCESS, fsop_err_cb, &c)) < 0) {
		/* A virtual directory: readable, never writable. */
		fuse_reply_err(req, err == -EROFS && !(mask & W_OK) ? 0 : -err);
		return;
	}
	c->req.flags = (uint32_t)mask;
	call_send(c);
}

/* --- session --- */

static void
fs_init(void *userdata, struct fuse_conn_info *conn)
{
	uint32_t ra;

	(void)userdata;
	conn->max_background = 64;
	conn->congestion_threshold = 48;
	/* Never below the window kernel.c gives the bdi, nor 1 MiB. */
	ra = kernel_readahead() > (1u << 20) ? kernel_readahead() : 1u << 20;
	if (conn->max_readahead < ra)
		conn->max_readahead = ra;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	/* libfuse 3.14 does not pass this one on: kernel.c adds it to the
	 * INIT reply, with FUSE_HANDLE_KILLPRIV_V2. */
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	/* The holder's data changes only under our control or is seen at
	 * open (close-to-open) and on attribute refresh. */
	if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA)
		conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	dir_init(conn->capable);
	service_mounted(); /* the mount answers once this is replied */
	log_debug("fuse: init, max_write %u, max_readahead %u", conn->max_write,
	    conn->max_readahead);
}

static const struct fuse_lowlevel_ops fs_ops = {
	.init = fs_init,
	.lookup = fs_lookup,
	.forget = fs_forget,
	.forget_multi = fs_forget_multi,
	.getattr = attr_get,
	.setattr = attr_set,
	.readlink = fs_readlink,
	.mknod = place_mknod,
	.mkdir = place_mkdir,
	.unlink = change_unlink,
	.rmdir = change_rmdir,
	.symlink = place_symlink,
	.rename = change_rename,
	.link = change_link,
	.open = file_open,
	.read = file_read,
	.write = file_write,
	.flush = file_flush,
	.release = file_release,
	.fsync = file_fsync,
	.opendir = dir_open,
	.readdir = dir_readdir,
	.readdirplus = dir_readdirplus,
	.releasedir = dir_release,
	.fsyncdir = dir_fsync,
	.statfs = fs_statfs,
	.setxattr = xattr_set,
	.getxattr = xattr_get,
	.listxattr = xattr_list,
	.removexattr = xattr_remove,
	.access = fs_access,
	.create = place_create,
	.fallocate = file_fallocate,
	.copy_file_range = file_copy_file_range,
	.lseek = file_lseek,
	.getlk = lock_getlk,
	.setlk = lock_setlk,
	.flock = lock_flock,
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
	out = (struct fuse_out_header){ .len = sizeof out,
		.error = -EIO,
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
		call_caller_restore(NULL); /* its caller's work is sent */
	}
}

/* Mount the union and start reading the channel. */
int
fs_mount(const struct config *cfg)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	char *opts;
	int fd, flags, err;

	xasprintf(&opts, "fsname=pufs,subtype=pufs%s",
	    geteuid() == 0 ? ",allow_other,default_permissions"
			   : ",default_permissions");
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
	if ((err = kernel_attach(fs.se, cfg->mountpoint)) < 0) {
		log_warnx("fuse: cannot put the channel through kernel.c: %s",
		    strerror(-err));
		fuse_session_unmount(fs.se);
		fuse_session_destroy(fs.se);
		fs.se = NULL;
		return -1;
	}
	fs.mountpoint = xstrdup(cfg->mountpoint);
	fd = fuse_session_fd(fs.se);
	flags = fcntl(fd, F_GETFL);
	if (flags == -1 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1)
		fatal("fuse: cannot make the channel non-blocking");
	notify_start(fs.se);
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

	notify_stop();

	fs.refusing = true;
	fs.ev = event_new(loop_base, fuse_session_fd(fs.se),
	    EV_READ | EV_PERSIST, fs_read_cb, NULL);
	if (fs.ev != NULL)
		event_add(fs.ev, NULL);
	while (!notify_exited()) {
		if (loop_mono_us() > deadline) {
			if (aborted)
				break;
			kernel_abort();
			aborted = true;
			deadline = loop_mono_us() + 1000000;
		}
		event_base_loopexit(loop_base, &tick);
		event_base_dispatch(loop_base);
	}
	fs_stop();
	if (!notify_exited()) {
		log_warnx("fuse: the notifier is stuck in the kernel; "
			  "leaving it");
		return false;
	}
	notify_join();
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
	if (notify_running() && !fs_notifier_stop())
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
	dir_free_all();
	fs.se = NULL;
	kernel_free();
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
