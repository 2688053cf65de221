/*
 * dir.c - open directories: opendir takes no snapshot; readdir at
 * offset 0 lists the merged directory into the handle, and later
 * offsets are served from that snapshot.
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
	bool loaded;
	LIST_ENTRY(dirh) entry; /* dir_handles, freed at unmount if open */
};
static LIST_HEAD(, dirh) dir_handles = LIST_HEAD_INITIALIZER(dir_handles);

/* A parked readdir. */
struct rdop {
	fuse_req_t req;
	struct dirh *d;
	size_t size;
	off_t off;
	bool plus;
};

void
dir_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct node *n;
	struct dirh *d;
	int err;

	if ((err = fsop_dir_node(ino, &n)) < 0) {
		fuse_reply_err(req, -err);
		return;
	}
	d = xcalloc(1, sizeof *d);
	d->node = n;
	node_ref(n);
	fi->fh = (uint64_t)(uintptr_t)d;
	if (fuse_reply_open(req, fi) != 0) {
		node_unref(n);
		free(d);
		return;
	}
	LIST_INSERT_HEAD(&dir_handles, d, entry);
}

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

/* Fill one reply buffer from the snapshot, starting at rd->off. */
static void
dir_fill(struct rdop *rd)
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
	dir_clear(d);
	d->ents = xcalloc(n + 1, sizeof *d->ents);
	if (n > 0) {
		memcpy(d->ents, ents, n * sizeof *ents);
		memset(ents, 0, n * sizeof *ents); /* ownership moved */
	}
	d->nents = n;
	d->loaded = true;
	dir_fill(rd);
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
	if (off == 0 || !d->loaded)
		union_list(d->node, dir_list_cb, rd);
	else
		dir_fill(rd);
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
