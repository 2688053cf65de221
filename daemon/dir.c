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
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <fuse_lowlevel.h>

#include "fs.h"

/* --- directories --- */

/* An open directory: a snapshot of the merged listing. */
struct dirh {
	struct node *node;  /* holds a ref */
	struct entry *ents; /* owned */
	size_t nents;
	uint64_t hash; /* of the snapshot (dir_hash) */
	bool loaded;
	bool opened;            /* taken by opendir, not served yet */
	LIST_ENTRY(dirh) entry; /* dir_handles, freed at unmount if open */
};
static LIST_HEAD(, dirh) dir_handles = LIST_HEAD_INITIALIZER(dir_handles);

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

/* notify_appeared: whether name is in the snapshot of handle arg. */
static bool
dir_listed(void *arg, const char *name)
{
	const struct dirh *d = arg;

	for (size_t i = 0; i < d->nents; i++)
		if (strcmp(d->ents[i].name, name) == 0)
			return true;
	return false;
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
		notify_appeared(d->node, dir_listed, d);
}

/* Fill one reply buffer from the snapshot, starting at rd->off. */
static void
dir_fill(struct rdop *rd)
{
	struct dirh *d = rd->d;
	char *buf = xmalloc(rd->size), *p = buf;
	size_t rem = rd->size, len;
	off_t i;

	/*
	 * What the kernel keeps is read from offset 0 on: this snapshot,
	 * unless a later part comes from another one.
	 */
	if (rd->off == 0)
		d->node->listed = d->hash;
	else if (d->node->listed != d->hash)
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
			    i + 1);
		else
			len = fuse_add_direntry(rd->req, p, rem, name, &e.attr,
			    i + 1);
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
	free(rd);
}

/* The merged listing is in. */
static void
dir_list_cb(void *arg, int error, struct entry *ents, size_t n)
{
	struct rdop *rd = arg;
	struct dirh *d = rd->d;

	if (error != 0) {
		fuse_reply_err(rd->req, -error);
		node_unref(d->node);
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

/* readdir and readdirplus: list at offset 0, then serve the snapshot. */
static void
dir_read(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi,
    bool plus)
{
	struct dirh *d = (struct dirh *)fi->fh;
	struct rdop *rd = xcalloc(1, sizeof *rd);

	rd->req = req;
	rd->d = d;
	rd->size = size;
	rd->off = off;
	rd->plus = plus;
	node_ref(d->node);
	if ((off == 0 && !d->opened) || !d->loaded) {
		d->opened = false;
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
	(void)ino;
	dir_read(req, size, off, fi, false);
}

void
dir_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	(void)ino;
	dir_read(req, size, off, fi, true);
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
	struct call *c;
	int err;

	(void)fi;
	if ((err = fsop_simple(req, ino, PROTO_FSYNCDIR, fsop_err_cb, &c)) <
	    0) {
		fuse_reply_err(req, -err);
		return;
	}
	c->req.flags = datasync ? 1 : 0;
	call_send(c);
}

/* Free the snapshots of directories still open at unmount. */
void
dir_free_all(void)
{
	while (!LIST_EMPTY(&dir_handles)) {
		struct dirh *d = LIST_FIRST(&dir_handles);

		LIST_REMOVE(d, entry);
		dir_clear(d);
		free(d);
	}
}
