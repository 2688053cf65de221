/*
 * move.c - a file or symbolic link moved to another peer: what rename(2)
 * onto a name held by another peer does.
 *
 * The source is copied into the destination's directory on the
 * destination's holder under a hidden temporary name (MOVE_PREFIX, never
 * listed nor found by lookups), made durable with fsync, renamed over
 * the destination there (atomic, as the holder's file system makes it),
 * and only then unlinked on its own holder.  The copy gets the source's
 * mode, times and user.* extended attributes, as a rename on one file
 * system keeps them.  A small regular file with no extended attributes
 * (MOVE_WHOLE at most) is read whole and sent in one REPLACE request,
 * which does those steps on the holder in one round trip; a peer
 * without it (no PROTO_CAP_REPLACE) gets them one by one, as larger
 * files do.  Readers of the destination
 * see the old file or the new one, never a part of either.  If any step
 * before the rename fails (the holder is full, a peer dies), the
 * temporary copy is removed and nothing has changed; the error is the
 * step's.  A failure of the last unlink leaves both names, the
 * destination already new: the rename reports it (EIO), as a local file
 * system that lost the source directory would.
 *
 * One struct move is one such request, a state machine stepped by
 * move_step().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pufs.h"

#define MOVE_CHUNK (1u << 20) /* bytes a READ or WRITE moves */
#define MOVE_WINDOW 8         /* chunks in flight */
#define MOVE_WHOLE MOVE_CHUNK /* moved by one REPLACE up to this size */

/*
 * The steps.  Calls of one step that do not depend on each other go
 * out together and the step ends when the last answer is in, so a small
 * file costs one round trip to the destination (REPLACE), and a large
 * one four and the copy's: create, the writes, fsync with the times,
 * rename.
 */
enum move_state {
	MOVE_OPEN,     /* open the source, create the copy */
	MOVE_READ,     /* a small file: read it whole */
	MOVE_PUT,      /* ... and REPLACE the destination with it */
	MOVE_CREATE,   /* REPLACE unknown or the file grew: create the copy */
	MOVE_READLINK, /* a symlink: read its target */
	MOVE_SYMLINK,  /* make the copy of the symlink */
	MOVE_COPY,     /* read from the source, write to the copy */
	MOVE_XGET,     /* read the source's extended attributes */
	MOVE_XSET,     /* ... and give them to the copy */
	MOVE_SYNC,     /* fsync the copy, give it the source's times */
	MOVE_RENAME,   /* rename it over the destination */
	MOVE_UNLINK,   /* remove the source */
	MOVE_STATE_MAX
};

static const char *const move_state_names[] = {
	"open",
	"read",
	"put",
	"create",
	"readlink",
	"symlink",
	"copy",
	"xget",
	"xset",
	"sync",
	"rename",
	"unlink",
};

/* One user.* extended attribute of the source, for the copy. */
struct move_xattr {
	char *name;
	char *val; /* NULL: not read yet, or gone meanwhile */
	size_t len;
};

struct move {
	enum move_state state; /* changed only by move_set_state() */
	struct move_spec sp;   /* strings owned */
	char *tmp;             /* temporary name in sp.ddir; owned */
	char *target;          /* symlink target; owned */
	uint64_t sfh, dfh;     /* open handles, 0: none */
	bool made;             /* the temporary copy exists */
	bool whole;            /* moved by one REPLACE (a small file) */
	void *buf;             /* the small file's bytes; owned */
	size_t buflen;
	struct move_xattr *x; /* the source's; owned */
	size_t nx;
	uint64_t roff;     /* next offset to read */
	bool eof;          /* the last read came back short */
	unsigned inflight; /* copy calls out */
	int error;         /* first failure, negative errno */
	move_done_cb cb;
	void *arg;
};

static struct {
	uint64_t moves, bytes, failed;
	uint64_t seq;
} mv;

static void move_step(struct move *);

/* Change the state of m; the one place that does. */
static void
move_set_state(struct move *m, enum move_state st)
{
	if (st >= MOVE_STATE_MAX)
		fatalx("move: bad state %d", st);
	log_debug("move %s/%s -> %s/%s: %s -> %s", m->sp.sdir, m->sp.sname,
	    m->sp.ddir, m->sp.dname, move_state_names[m->state],
	    move_state_names[st]);
	m->state = st;
}

/* Whether a name is one of our temporary copies (never shown). */
bool
move_hidden(const char *name)
{
	return strncmp(name, MOVE_PREFIX, sizeof MOVE_PREFIX - 1) == 0;
}

/* Counters for status. */
void
move_stats(uint64_t *moves, uint64_t *bytes, uint64_t *failed)
{
	*moves = mv.moves;
	*bytes = mv.bytes;
	*failed = mv.failed;
}

/* A call of the move on the source's or the destination's holder. */
static struct call *
move_call(struct move *m, bool dest, uint8_t type, const char *path,
    void (*cb)(struct call *))
{
	struct call *c = call_new(dest ? m->sp.dpeer : m->sp.speer, type,
	    dest ? m->sp.dexport : m->sp.sexport, path, cb, m);

	c->nohold = m->sp.copy;
	return c;
}

/* Close a handle nobody waits on. */
static void
move_release(struct move *m, bool dest, uint64_t fh)
{
	struct call *c;

	if (fh == 0)
		return;
	c = move_call(m, dest, PROTO_RELEASE, NULL, NULL);
	c->arg = NULL;
	c->req.fh = fh;
	call_send(c);
}

/* Free m, telling its owner how it ended. */
static void
move_finish(struct move *m)
{
	move_release(m, false, m->sfh);
	move_release(m, true, m->dfh);
	if (m->error != 0 && m->made) {
		/* Undo: the temporary copy goes, nothing else changed. */
		struct call *c = move_call(m, true, PROTO_UNLINK, m->sp.ddir,
		    NULL);

		c->arg = NULL;
		call_set_name(c, m->tmp);
		call_send(c);
	}
	if (m->error != 0)
		mv.failed++;
	else
		mv.moves++;
	m->cb(m->arg, m->error);
	free(m->sp.sdir);
	free(m->sp.sname);
	free(m->sp.ddir);
	free(m->sp.dname);
	free(m->tmp);
	free(m->target);
	free(m->buf);
	for (size_t i = 0; i < m->nx; i++) {
		free(m->x[i].name);
		free(m->x[i].val);
	}
	free(m->x);
	free(m);
}

/* Note the first failure; the move ends once nothing is out. */
static void
move_fail(struct move *m, int error)
{
	if (m->error == 0)
		m->error = error;
	if (m->inflight == 0)
		move_finish(m);
}

/* The names of a LISTXATTR answer that the copy gets: user.* ones. */
static void
move_took_names(struct move *m, const char *names, size_t n)
{
	size_t len;

	for (size_t off = 0; off < n; off += len + 1) {
		len = strnlen(names + off, n - off);
		if (off + len == n)
			break; /* not NUL-ended: not a name */
		if (strncmp(names + off, "user.", 5) != 0 ||
		    strncmp(names + off, "user.pufs.", 10) == 0)
			continue;
		m->x = xreallocarray(m->x, m->nx + 1, sizeof *m->x);
		m->x[m->nx++] = (struct move_xattr){ xstrndup(names + off, len),
			NULL, 0 };
	}
}

/* The value of one extended attribute of the source came back. */
static void
move_took_value(struct move *m, const struct call *c)
{
	for (size_t i = 0; i < m->nx; i++)
		if (strcmp(m->x[i].name, c->req.name) == 0 &&
		    m->x[i].val == NULL) {
			m->x[i].val = xmalloc(c->rep.datalen + 1);
			memcpy(m->x[i].val, c->rep.data, c->rep.datalen);
			m->x[i].len = c->rep.datalen;
			return;
		}
}

/* Take what a step's answer brings; 0 or why the move cannot go on. */
static int
move_took(struct move *m, const struct call *c)
{
	switch (c->req.type) {
	case PROTO_OPEN:
		m->sfh = c->rep.fh;
		/*
		 * What the holder says now decides: another kind of file,
		 * or one with other names (they would stop sharing it), is
		 * not moved.  The copy gets these times and this mode.
		 */
		if (!S_ISREG(c->rep.attr.mode) ||
		    (c->rep.attr.nlink > 1 && !m->sp.copy))
			return -EXDEV;
		m->sp.attr = c->rep.attr;
		break;
	case PROTO_CREATE:
		m->dfh = c->rep.fh;
		/* FALLTHROUGH */
	case PROTO_SYMLINK:
		m->made = true;
		break;
	case PROTO_READLINK:
		m->target = xstrndup(c->rep.data, c->rep.datalen);
		break;
	case PROTO_LISTXATTR:
		move_took_names(m, c->rep.data, c->rep.datalen);
		break;
	case PROTO_GETXATTR:
		move_took_value(m, c);
		break;
	case PROTO_READ:
		free(m->buf);
		m->buf = xmalloc(c->rep.datalen + 1);
		memcpy(m->buf, c->rep.data, c->rep.datalen);
		m->buflen = c->rep.datalen;
		break;
	case PROTO_REPLACE:
		mv.bytes += m->buflen;
		/* FALLTHROUGH */
	case PROTO_RENAME:
		m->made = false; /* it is the destination now */
		break;
	default:
		break;
	}
	return 0;
}

/* An answer of a step (not of the copy): on when the step is done. */
static void
move_cb(struct call *c)
{
	struct move *m = c->arg;
	int error = c->rep.error;

	m->inflight--;
	dircache_expected(c->peer, &c->req, error == 0);
	/*
	 * A file system without extended attributes on either side has
	 * none to give or take; one gone since it was listed is not given.
	 */
	if (((error == -EOPNOTSUPP || error == -ENOTSUP) &&
		(c->req.type == PROTO_LISTXATTR ||
		    c->req.type == PROTO_SETXATTR)) ||
	    (error == -ENODATA && c->req.type == PROTO_GETXATTR))
		error = 0;
	else if (error == 0)
		error = move_took(m, c);
	if (error == -ENOSYS && c->req.type == PROTO_REPLACE) {
		/* The holder does not know REPLACE: step by step. */
		m->whole = false;
	} else if (error != 0) {
		log_debug("move %s/%s: %s: %s", m->sp.sdir, m->sp.sname,
		    move_state_names[m->state], strerror(-error));
		if (m->error == 0)
			m->error = error;
		/* Cut short (a timeout), it may have left its copy. */
		if (c->req.type == PROTO_REPLACE)
			m->made = true;
	}
	if (m->inflight > 0)
		return;
	if (m->error != 0) {
		move_finish(m);
		return;
	}
	switch (m->state) {
	case MOVE_OPEN:
		/* REPLACE makes the file whole: none to give it first. */
		m->whole = m->sp.attr.size <= MOVE_WHOLE && m->nx == 0;
		move_set_state(m, m->whole ? MOVE_READ : MOVE_CREATE);
		break;
	case MOVE_READ:
		/* Grown past what one request takes: copy it in chunks. */
		if (m->buflen > MOVE_WHOLE)
			m->whole = false;
		move_set_state(m, m->whole ? MOVE_PUT : MOVE_CREATE);
		break;
	case MOVE_PUT:
		if (m->whole && m->sp.copy) {
			move_finish(m); /* a copy: the source stays */
			return;
		}
		move_set_state(m, m->whole ? MOVE_UNLINK : MOVE_CREATE);
		break;
	case MOVE_CREATE:
		move_set_state(m, MOVE_COPY);
		break;
	case MOVE_READLINK:
		move_set_state(m, MOVE_SYMLINK);
		break;
	case MOVE_XGET:
		move_set_state(m, MOVE_XSET);
		break;
	case MOVE_XSET:
		move_set_state(m, MOVE_SYNC);
		break;
	case MOVE_SYMLINK:
	case MOVE_SYNC:
		move_set_state(m, MOVE_RENAME);
		break;
	case MOVE_RENAME:
		if (m->sp.copy) {
			move_finish(m);
			return;
		}
		move_set_state(m, MOVE_UNLINK);
		break;
	case MOVE_UNLINK:
		move_finish(m);
		return;
	default:
		fatalx("move: answer in state %s", move_state_names[m->state]);
	}
	move_step(m);
}

static void move_copy(struct move *);

/* A WRITE of the copy came back. */
static void
move_write_cb(struct call *c)
{
	struct move *m = c->arg;

	m->inflight--;
	if (c->rep.error == 0 && c->rep.value != c->req.datalen)
		c->rep.error = -ENOSPC; /* a short write: the disk is full */
	if (c->rep.error != 0) {
		move_fail(m, c->rep.error);
		return;
	}
	mv.bytes += c->rep.value;
	if (m->error != 0) {
		move_fail(m, m->error);
		return;
	}
	move_copy(m);
}

/* A READ of the source came back: write it, read on. */
static void
move_read_cb(struct call *c)
{
	struct move *m = c->arg;
	struct call *w;

	m->inflight--;
	if (c->rep.error != 0 || m->error != 0) {
		move_fail(m, c->rep.error != 0 ? c->rep.error : m->error);
		return;
	}
	if (c->rep.datalen < c->req.length)
		m->eof = true;
	if (c->rep.datalen > 0) {
		w = move_call(m, true, PROTO_WRITE, NULL, move_write_cb);
		w->req.fh = m->dfh;
		w->req.offset = c->req.offset;
		call_set_data(w, c->rep.data, c->rep.datalen);
		m->inflight++;
		call_send(w);
	}
	move_copy(m);
}

/*
 * Keep the copy going: reads and writes at most MOVE_WINDOW chunks in
 * flight; when the source is read and everything written, on to the
 * fsync.
 */
static void
move_copy(struct move *m)
{
	struct call *c;

	if (m->eof) {
		if (m->inflight == 0) {
			move_set_state(m, m->nx > 0 ? MOVE_XGET : MOVE_SYNC);
			move_step(m);
		}
		return;
	}
	if (m->inflight >= MOVE_WINDOW)
		return;
	c = move_call(m, false, PROTO_READ, NULL, move_read_cb);
	c->req.fh = m->sfh;
	c->req.offset = m->roff;
	c->req.length = MOVE_CHUNK;
	m->roff += MOVE_CHUNK;
	m->inflight++;
	call_send(c);
}

/* Send the call of m's state. */
static struct call *
move_send(struct move *m, bool dest, uint8_t type, const char *dir,
    const char *name)
{
	char *path = name != NULL ? xpathjoin(dir, name) : xstrdup(dir);
	struct call *c = move_call(m, dest, type, path, move_cb);

	free(path);
	m->inflight++;
	return c;
}

/* The CREATE of the temporary copy, sent by the caller. */
static struct call *
move_create(struct move *m)
{
	struct call *c = move_send(m, true, PROTO_CREATE, m->sp.ddir, NULL);

	c->req.flags = O_WRONLY | O_EXCL;
	c->req.mode = m->sp.attr.mode & 07777;
	call_set_name(c, m->tmp);
	return c;
}

/* The XGET or XSET calls: one per extended attribute, all at once. */
static void
move_xattrs(struct move *m)
{
	struct call *c;

	for (size_t i = 0; i < m->nx; i++) {
		if (m->state == MOVE_XGET) {
			c = move_send(m, false, PROTO_GETXATTR, m->sp.sdir,
			    m->sp.sname);
			c->req.length = PROTO_MAX_XATTR;
		} else if (m->x[i].val != NULL) {
			c = move_send(m, true, PROTO_SETXATTR, m->sp.ddir,
			    m->tmp);
			call_set_data(c, m->x[i].val, m->x[i].len);
		} else
			continue;
		call_set_name(c, m->x[i].name);
		call_send(c);
	}
	if (m->inflight == 0) { /* every one gone meanwhile */
		move_set_state(m, MOVE_SYNC);
		move_step(m);
	}
}

/* Send the calls of m's state (several at once where they can go). */
static void
move_step(struct move *m)
{
	struct call *c, *c2 = NULL;

	switch (m->state) {
	case MOVE_OPEN:
		c = move_send(m, false, PROTO_OPEN, m->sp.sdir, m->sp.sname);
		c->req.flags = O_RDONLY;
		c2 = move_send(m, false, PROTO_LISTXATTR, m->sp.sdir,
		    m->sp.sname);
		c2->req.length = PROTO_MAX_XATTR;
		break;
	case MOVE_READ:
		/* One byte more than fits: a file that grew is seen. */
		c = move_send(m, false, PROTO_READ, "", NULL);
		c->req.fh = m->sfh;
		c->req.length = MOVE_WHOLE + 1;
		break;
	case MOVE_PUT:
		c = move_send(m, true, PROTO_REPLACE, m->sp.ddir, NULL);
		call_set_name(c, m->tmp);
		call_set_dest(c, m->sp.dexport, m->sp.ddir, m->sp.dname);
		c->req.mode = m->sp.attr.mode & 07777;
		c->req.atime = m->sp.attr.atime;
		c->req.mtime = m->sp.attr.mtime;
		call_set_data(c, m->buf, m->buflen);
		break;
	case MOVE_CREATE:
		c = move_create(m);
		break;
	case MOVE_READLINK:
		c = move_send(m, false, PROTO_READLINK, m->sp.sdir,
		    m->sp.sname);
		break;
	case MOVE_SYMLINK:
		c = move_send(m, true, PROTO_SYMLINK, m->sp.ddir, NULL);
		call_set_data(c, m->target, strlen(m->target));
		call_set_name(c, m->tmp);
		break;
	case MOVE_COPY:
		move_copy(m);
		return;
	case MOVE_XGET:
	case MOVE_XSET:
		move_xattrs(m);
		return;
	case MOVE_SYNC:
		c = move_send(m, true, PROTO_FSYNC, "", NULL);
		c->req.fh = m->dfh;
		c2 = move_send(m, true, PROTO_SETATTR, m->sp.ddir, m->tmp);
		c2->req.valid = PROTO_SET_ATIME | PROTO_SET_MTIME;
		c2->req.atime = m->sp.attr.atime;
		c2->req.mtime = m->sp.attr.mtime;
		break;
	case MOVE_RENAME:
		c = move_send(m, true, PROTO_RENAME, m->sp.ddir, NULL);
		call_set_name(c, m->tmp);
		call_set_dest(c, m->sp.dexport, m->sp.ddir, m->sp.dname);
		break;
	case MOVE_UNLINK:
		c = move_send(m, false, PROTO_UNLINK, m->sp.sdir, NULL);
		call_set_name(c, m->sp.sname);
		break;
	default:
		fatalx("move: step in state %d", m->state);
	}
	/* The cache takes the traps of its names for echoes. */
	dircache_expect(c->peer, &c->req);
	call_send(c);
	if (c2 != NULL) {
		dircache_expect(c2->peer, &c2->req);
		call_send(c2);
	}
}

/*
 * Move the regular file or symlink sp->sdir/sname of its holder over
 * sp->ddir/dname of another (spec copied); cb gets 0 or a negative
 * errno, once, on the loop, never from inside move_start().
 */
void
move_start(const struct move_spec *sp, move_done_cb cb, void *arg)
{
	struct move *m = xcalloc(1, sizeof *m);

	m->sp = *sp;
	m->sp.sdir = xstrdup(sp->sdir);
	m->sp.sname = xstrdup(sp->sname);
	m->sp.ddir = xstrdup(sp->ddir);
	m->sp.dname = xstrdup(sp->dname);
	xasprintf(&m->tmp, "%s%016llx.%llu", MOVE_PREFIX,
	    (unsigned long long)peer_boot_id(), (unsigned long long)++mv.seq);
	m->cb = cb;
	m->arg = arg;
	m->state = S_ISLNK(sp->attr.mode) ? MOVE_READLINK : MOVE_OPEN;
	move_step(m);
}

/* Cloning a directory path onto a peer, one MKDIR at a time. */
struct clone {
	struct peer *peer;
	uint32_t export_id;
	char *path;    /* "a/b/c"; owned */
	mode_t *modes; /* one per component; owned */
	size_t n, i;   /* components, the next one */
	move_done_cb cb;
	void *arg;
};

static void clone_step(struct clone *);

/* The clone ended: tell its owner, free it. */
static void
clone_finish(struct clone *cl, int error)
{
	cl->cb(cl->arg, error);
	free(cl->path);
	free(cl->modes);
	free(cl);
}

/* One MKDIR came back: an existing directory is as good as a new one. */
static void
clone_cb(struct call *c)
{
	struct clone *cl = c->arg;

	if (c->rep.error != 0 && c->rep.error != -EEXIST) {
		clone_finish(cl, c->rep.error);
		return;
	}
	cl->i++;
	clone_step(cl);
}

/* Make component i in the first i (or finish). */
static void
clone_step(struct clone *cl)
{
	const char *start = cl->path, *end;
	char *parent, *name;
	struct call *c;

	if (cl->i == cl->n) {
		clone_finish(cl, 0);
		return;
	}
	for (size_t k = 0; k < cl->i; k++)
		start = strchr(start, '/') + 1;
	end = strchr(start, '/');
	name = end ? xstrndup(start, (size_t)(end - start)) : xstrdup(start);
	parent = xstrndup(cl->path,
	    start == cl->path ? 0 : (size_t)(start - cl->path - 1));
	c = call_new(cl->peer, PROTO_MKDIR, cl->export_id, parent, clone_cb,
	    cl);
	call_set_name(c, name);
	c->req.mode = cl->modes[cl->i];
	call_send(c);
	free(parent);
	free(name);
}

/*
 * Make the directory path (relative to the export, n components, with
 * the given modes) on a peer, as mergerfs clones a path onto a branch;
 * cb gets 0 or a negative errno, later, on the loop.
 */
void
move_clone(struct peer *peer, uint32_t export_id, const char *path,
    const mode_t *modes, size_t n, move_done_cb cb, void *arg)
{
	struct clone *cl = xcalloc(1, sizeof *cl);

	if (n == 0)
		fatalx("move: cloning an empty path");
	cl->peer = peer;
	cl->export_id = export_id;
	cl->path = xstrdup(path);
	cl->modes = xcalloc(n + 1, sizeof *cl->modes);
	memcpy(cl->modes, modes, n * sizeof *modes);
	cl->n = n;
	cl->cb = cb;
	cl->arg = arg;
	clone_step(cl);
}
