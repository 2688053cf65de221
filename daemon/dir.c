/*
 * dir.c - open directories: opendir lists the merged directory into the
 * handle (a snapshot), the first readdir at offset 0 is served from it,
 * a later one (rewinddir) lists again, and other offsets are served
 * from the snapshot.
 *
 * The kernel keeps what it read of a directory (cache_readdir) and is
 * told at opendir whether that is still good (keep_cache): when the
 * merged listing hashes as the one it last read from offset 0, a warm
 * ls sends no READDIR.  The hash covers what the kernel keeps of an
 * entry: its name, inode number and type (attributes it keeps per
 * inode, and traps invalidate those).  A trap, a peer coming or going,
 * or a change of ours that alters a listing also invalidates the
 * kernel's copy at once (inval.c, through the notifier), so that an
 * open directory rewound sees it too.
 *
 * A kernel that can open directories itself (FUSE_NO_OPENDIR_SUPPORT)
 * is answered ENOSYS at the first opendir and sends no OPENDIR or
 * RELEASEDIR after, for any directory: an open costs nothing, and the
 * listing it keeps (cache_readdir and keep_cache are its defaults then)
 * answers a warm ls with no request at all.  There are no handles then:
 * a readdir at offset 0 takes a snapshot of its own, numbered, and the
 * offsets handed out carry the number (in bits 32 to 62: none is
 * negative), so the readdirs that follow find it again; it goes at the
 * end of the listing, or when too many are open.  What the kernel
 * keeps then goes stale only by the invalidations above, so it is also
 * made to forget a listing attr_timeout after reading it (dir_hold), as
 * opendir's check did: a change no trap announced (a datagram lost)
 * shows within attr_timeout, as the spec bounds it.  PUFS_OPENDIR set
 * in the environment keeps opendir (to compare the two ways).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <fuse_lowlevel.h>

#include "fs.h"

/* --- directories --- */

/*
 * Snapshots kept without opendir, at most: one a listing being read,
 * so more only when many are read at once or left half read.
 */
#define DIR_SNAPS_MAX 64

/* An open directory, or a listing being read: a snapshot of it. */
struct dirh {
	struct node *node;  /* holds a ref */
	struct entry *ents; /* owned */
	size_t nents;
	uint64_t hash; /* of the snapshot (dir_hash) */
	uint32_t gen;  /* without opendir: its number, never 0; else 0 */
	bool loaded;
	bool loading;           /* its listing is being taken */
	bool opened;            /* taken by opendir, not served yet */
	LIST_ENTRY(dirh) entry; /* dir_handles, freed at unmount if open */
	TAILQ_ENTRY(dirh) snap; /* without opendir: dir.snaps, oldest first */
};
static LIST_HEAD(, dirh) dir_handles = LIST_HEAD_INITIALIZER(dir_handles);

/*
 * A listing the kernel read from offset 0, to forget at .until: one a
 * directory (its node's held), moved on when it was read again since.
 */
struct dirhold {
	uint64_t id;    /* the directory's nodeid */
	uint64_t until; /* loop_now_ms() */
	TAILQ_ENTRY(dirhold) entry;
};

static struct {
	bool no_opendir; /* the kernel opens directories itself */
	TAILQ_HEAD(, dirh) snaps;
	size_t nsnaps;
	uint32_t gen; /* the last snapshot's number */
	/* Listings the kernel keeps, until ascending. */
	TAILQ_HEAD(dirholds, dirhold) holds;
	struct timer hold_timer;
} dir = {
	.snaps = TAILQ_HEAD_INITIALIZER(dir.snaps),
	.holds = TAILQ_HEAD_INITIALIZER(dir.holds),
};

/* A parked readdir, or opendir (size 0). */
struct rdop {
	fuse_req_t req;
	struct dirh *d;
	size_t size;
	off_t off;
	bool plus;
	struct fuse_file_info fi; /* opendir's */
};

/* Drop a directory handle's snapshot. */
static void
dir_clear(struct dirh *d)
{
	for (size_t i = 0; i < d->nents; i++)
		entry_clear(&d->ents[i]);
	free(d->ents);
	d->ents = NULL;
	d->nents = 0;
	d->loaded = false;
}

/*
 * The hash of a merged listing as the kernel keeps it (FNV-1a over each
 * entry's name, inode number and type); never 0, which means none.
 */
static uint64_t
dir_hash(const struct entry *ents, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++) {
		uint64_t v[2] = { ents[i].ino, ents[i].attr.mode & S_IFMT };
		const unsigned char *p = (const unsigned char *)ents[i].name;
		size_t len = strlen(ents[i].name) + 1;

		for (size_t k = 0; k < len; k++)
			h = (h ^ p[k]) * 0x100000001b3ULL;
		p = (const unsigned char *)v;
		for (size_t k = 0; k < sizeof v; k++)
			h = (h ^ p[k]) * 0x100000001b3ULL;
	}
	return h != 0 ? h : 1;
}

/*
 * Take a merged listing into d's snapshot (ownership of the entries'
 * contents moves).  A listing that differs from what the kernel keeps
 * may show names it holds absent: it forgets those.
 */
static void
dir_take(struct dirh *d, struct entry *ents, size_t n)
{
	dir_clear(d);
	d->ents = xcalloc(n + 1, sizeof *d->ents);
	if (n > 0) {
		memcpy(d->ents, ents, n * sizeof *ents);
		memset(ents, 0, n * sizeof *ents); /* ownership moved */
	}
	d->nents = n;
	d->loaded = true;
	d->hash = dir_hash(d->ents, n);
	if (d->hash != d->node->listed)
		for (size_t i = 0; i < n; i++)
			notify_appeared_name(d->node, d->ents[i].name);
}

/* The offset the kernel is given for index i of d's listing. */
static off_t
dir_off(const struct dirh *d, off_t i)
{
	return (off_t)((uint64_t)d->gen << 32 | (uint64_t)i);
}

/* Free a snapshot taken without opendir. */
static void
dir_snap_free(struct dirh *d)
{
	TAILQ_REMOVE(&dir.snaps, d, snap);
	dir.nsnaps--;
	dir_clear(d);
	node_unref(d->node);
	free(d);
}

/* Put h in its place among the holds, by until; arm the timer. */
static void
dir_hold_put(struct dirhold *h)
{
	struct dirhold *after;

	/* From the tail: one put now is at or near it. */
	TAILQ_FOREACH_REVERSE(after, &dir.holds, dirholds, entry)
	{
		if (after->until <= h->until)
			break;
	}
	if (after != NULL)
		TAILQ_INSERT_AFTER(&dir.holds, after, h, entry);
	else
		TAILQ_INSERT_HEAD(&dir.holds, h, entry);
	if (TAILQ_FIRST(&dir.holds) == h) {
		timer_wheel_add(loop_wheel(), &dir.hold_timer, h->until);
		loop_wheel_kick();
	}
}

/*
 * The hold timer: make the kernel forget the listings it has kept for
 * attr_timeout; those read again since are held on.
 */
static void
dir_hold_cb(struct timer *t, void *arg)
{
	uint64_t ttl = (uint64_t)(conf->attr_timeout * 1000);
	uint64_t now = loop_now_ms();
	struct dirhold *h;
	struct node *n;

	(void)t;
	(void)arg;
	while ((h = TAILQ_FIRST(&dir.holds)) != NULL && h->until <= now) {
		TAILQ_REMOVE(&dir.holds, h, entry);
		if ((n = node_get(h->id)) == NULL) {
			free(h); /* forgotten by the kernel too */
			continue;
		}
		if (n->listed_ms + ttl > now) {
			h->until = n->listed_ms + ttl;
			dir_hold_put(h);
			continue;
		}
		n->held = false;
		n->listed = 0;
		if (n->nlookup > 0 || n->parent == NULL)
			notify_inode(n->id, 0, 0);
		free(h);
	}
	if (h != NULL) {
		timer_wheel_add(loop_wheel(), &dir.hold_timer, h->until);
		loop_wheel_kick();
	}
}

/* The kernel read n's listing from offset 0 and keeps it. */
static void
dir_hold(struct node *n)
{
	struct dirhold *h;

	n->listed_ms = loop_now_ms();
	if (n->held)
		return; /* its hold moves on when it comes */
	h = xcalloc(1, sizeof *h);
	h->id = n->id;
	h->until = n->listed_ms + (uint64_t)(conf->attr_timeout * 1000);
	n->held = true;
	dir_hold_put(h);
}

/* Fill one reply buffer from the snapshot, starting at rd->off. */
static void
dir_fill(struct rdop *rd)
{
	struct dirh *d = rd->d;
	char *buf = xmalloc(rd->size), *p = buf;
	size_t rem = rd->size, len;
	bool end = (size_t)rd->off >= d->nents + 2;
	off_t i;

	/*
	 * What the kernel keeps is read from offset 0 on: this snapshot,
	 * unless a later part comes from another one.
	 */
	if (rd->off == 0) {
		d->node->listed = d->hash;
		if (d->gen != 0)
			dir_hold(d->node);
	} else if (d->node->listed != d->hash)
		d->node->listed = 0;
	/* Offsets: 0 ".", 1 "..", 2 + k the k-th entry; next is i + 1. */
	for (i = rd->off; (size_t)i < d->nents + 2; i++) {
		struct fuse_entry_param e;
		struct node *n = NULL;
		const char *name;

		memset(&e, 0, sizeof e);
		if (i < 2) {
			name = i == 0 ? "." : "..";
			e.attr.st_mode = S_IFDIR;
			e.attr.st_ino = i == 0        ? d->node->ino
			    : d->node->parent != NULL ? d->node->parent->ino
						      : FUSE_ROOT_ID;
		} else {
			struct entry *en = &d->ents[i - 2];

			name = en->name;
			if (rd->plus) {
				n = union_node(d->node, en);
				fsop_entry_param(n, &e);
			} else {
				e.attr.st_mode = en->attr.mode;
				e.attr.st_ino = en->ino;
			}
		}
		if (rd->plus)
			len = fuse_add_direntry_plus(rd->req, p, rem, name, &e,
			    dir_off(d, i + 1));
		else
			len = fuse_add_direntry(rd->req, p, rem, name, &e.attr,
			    dir_off(d, i + 1));
		if (len > rem) {
			if (n != NULL) /* not sent: not counted */
				node_forget(n, 1);
			break;
		}
		p += len;
		rem -= len;
	}
	fuse_reply_buf(rd->req, buf, rd->size - rem);
	free(buf);
	node_unref(d->node); /* the request's ref */
	/* Without opendir, the end of the listing is the end of it. */
	if (d->gen != 0 && end)
		dir_snap_free(d);
	free(rd);
}

/* The merged listing is in. */
static void
dir_list_cb(void *arg, int error, struct entry *ents, size_t n)
{
	struct rdop *rd = arg;
	struct dirh *d = rd->d;

	d->loading = false;
	if (error != 0) {
		fuse_reply_err(rd->req, -error);
		node_unref(d->node);
		if (d->gen != 0 && !d->loaded)
			dir_snap_free(d);
		free(rd);
		return;
	}
	dir_take(d, ents, n);
	dir_fill(rd);
}

/*
 * opendir's listing is in: the kernel keeps what it read of the
 * directory if that is what we would list now.  A listing that failed
 * is asked again by readdir, which reports the error.
 */
static void
dir_open_cb(void *arg, int error, struct entry *ents, size_t n)
{
	struct rdop *rd = arg;
	struct dirh *d = rd->d;

	rd->fi.cache_readdir = 1;
	if (error == 0) {
		dir_take(d, ents, n);
		d->opened = true;
		rd->fi.keep_cache = d->hash == d->node->listed;
	}
	rd->fi.fh = (uint64_t)(uintptr_t)d;
	if (fuse_reply_open(rd->req, &rd->fi) != 0) {
		dir_clear(d);
		node_unref(d->node);
		free(d);
	} else
		LIST_INSERT_HEAD(&dir_handles, d, entry);
	free(rd);
}

void
dir_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct node *n;
	struct rdop *rd;
	int err;

	/* The kernel opens every directory itself from now on. */
	if (dir.no_opendir) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	if ((err = fsop_dir_node(ino, &n)) < 0) {
		fuse_reply_err(req, -err);
		return;
	}
	rd = xcalloc(1, sizeof *rd);
	rd->req = req;
	rd->fi = *fi;
	rd->d = xcalloc(1, sizeof *rd->d);
	rd->d->node = n;
	node_ref(n);
	union_list(n, dir_open_cb, rd);
}

/*
 * The kernel forgot directory n: no listing of it is read any more (an
 * open directory holds its inode), so its snapshots go, and with them
 * their refs on n, unless a listing is on its way into one.
 */
void
dir_forgotten(struct node *n)
{
	struct dirh *d, *next;

	for (d = TAILQ_FIRST(&dir.snaps); d != NULL; d = next) {
		next = TAILQ_NEXT(d, snap);
		if (d->node == n && !d->loading)
			dir_snap_free(d);
	}
}

/*
 * Without opendir: the snapshot numbered as offset off says, or for
 * offset 0 (or one whose snapshot is gone) a new one of directory ino,
 * to be loaded; NULL with *err set if ino is no directory.
 */
static struct dirh *
dir_snap(fuse_ino_t ino, off_t off, int *err)
{
	uint32_t gen = (uint32_t)((uint64_t)off >> 32);
	struct node *n;
	struct dirh *d;

	if ((*err = fsop_dir_node(ino, &n)) < 0)
		return NULL;
	if (gen != 0) {
		TAILQ_FOREACH(d, &dir.snaps, snap)
		{
			if (d->gen == gen && d->node == n)
				return d;
		}
	}
	if (dir.nsnaps >= DIR_SNAPS_MAX) {
		/* The oldest, unless a listing is on its way into it. */
		TAILQ_FOREACH(d, &dir.snaps, snap)
		{
			if (!d->loading)
				break;
		}
		if (d != NULL)
			dir_snap_free(d);
	}
	d = xcalloc(1, sizeof *d);
	d->node = n;
	node_ref(n);
	/* 31 bits: an offset is never negative, which lseek(2) refuses. */
	if (++dir.gen > INT32_MAX)
		dir.gen = 1;
	d->gen = dir.gen;
	TAILQ_INSERT_TAIL(&dir.snaps, d, snap);
	dir.nsnaps++;
	return d;
}

/* readdir and readdirplus: list at offset 0, then serve the snapshot. */
static void
dir_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi, bool plus)
{
	struct dirh *d = (struct dirh *)fi->fh;
	struct rdop *rd;
	int err;

	if (d == NULL && (d = dir_snap(ino, off, &err)) == NULL) {
		fuse_reply_err(req, -err);
		return;
	}
	/* A snapshot's offsets carry its number; the index is below. */
	if (d->gen != 0)
		off = (off_t)((uint64_t)off & UINT32_MAX);
	rd = xcalloc(1, sizeof *rd);
	rd->req = req;
	rd->d = d;
	rd->size = size;
	rd->off = off;
	rd->plus = plus;
	node_ref(d->node);
	if ((off == 0 && !d->opened) || !d->loaded) {
		d->opened = false;
		d->loading = true;
		union_list(d->node, dir_list_cb, rd);
	} else {
		d->opened = false;
		dir_fill(rd);
	}
}

void
dir_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	dir_read(req, ino, size, off, fi, false);
}

void
dir_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	dir_read(req, ino, size, off, fi, true);
}

void
dir_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dirh *d = (struct dirh *)fi->fh;

	(void)ino;
	LIST_REMOVE(d, entry);
	dir_clear(d);
	node_unref(d->node);
	free(d);
	fuse_reply_err(req, 0);
}

void
dir_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
    struct fuse_file_info *fi)
{
	struct node *n;
	struct call *c;
	int err;

	(void)fi;
	if ((n = fsop_inode(ino)) != NULL && node_unnamed(n)) {
		fuse_reply_err(req, 0); /* removed: nothing of it to sync */
		return;
	}
	if ((err = fsop_simple(req, ino, PROTO_FSYNCDIR, fsop_err_cb, &c)) <
	    0) {
		fuse_reply_err(req, -err);
		return;
	}
	c->req.flags = datasync ? 1 : 0;
	call_send(c);
}

/*
 * The kernel can open directories without asking (capable is the
 * connection's FUSE_CAP_* offer): say so at the next opendir.
 */
void
dir_init(uint64_t capable)
{
	timer_init(&dir.hold_timer, dir_hold_cb, NULL);
	dir.no_opendir = (capable & FUSE_CAP_NO_OPENDIR_SUPPORT) != 0 &&
	    getenv("PUFS_OPENDIR") == NULL;
	log_debug("fuse: directories opened by %s",
	    dir.no_opendir ? "the kernel" : "pufs");
}

/* Free the snapshots of directories still open at unmount. */
void
dir_free_all(void)
{
	struct dirhold *h;

	while (!LIST_EMPTY(&dir_handles)) {
		struct dirh *d = LIST_FIRST(&dir_handles);

		LIST_REMOVE(d, entry);
		dir_clear(d);
		free(d);
	}
	while (!TAILQ_EMPTY(&dir.snaps)) {
		struct dirh *d = TAILQ_FIRST(&dir.snaps);

		TAILQ_REMOVE(&dir.snaps, d, snap);
		dir_clear(d);
		free(d);
	}
	dir.nsnaps = 0;
	timer_wheel_del(loop_wheel(), &dir.hold_timer);
	while ((h = TAILQ_FIRST(&dir.holds)) != NULL) {
		TAILQ_REMOVE(&dir.holds, h, entry);
		free(h);
	}
}
