/*
 * io-file.c - the data path's state: the block cache, the state of each
 * open file (struct io_file), what a block is doing, and the calls on a
 * handle.  The bottom of the data path: io-cache.c (reads, read-ahead,
 * write-behind) and io.c (handles, open, release, the holder's view)
 * both stand on it; it calls neither.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "io-int.h"

struct io_state io;

/* Start the data path: the block cache, within cache_size. */
void
io_init(const struct config *cfg)
{
	size_t budget;

	io.bs = (uint32_t)cfg->block_size;
	/*
	 * Buffers larger than 256 KiB (WRITE frames, large blocks) get a
	 * mapping each and go back to the system when freed.  Left to
	 * itself, glibc raises the threshold at the first such free and
	 * serves them from the heap from then on, where the holes they
	 * leave as they come and go stay resident: megabytes past
	 * cache_size.  Smaller ones come from the heap, which keeps up to
	 * 8 MiB free at its top rather than giving it back: a fresh
	 * mapping costs a page fault a page as it is first written, more
	 * than the copy that fills it, and blocks of the default 128 KiB,
	 * the holder's READ buffers of that size and the stream's input
	 * come and go all the time (the block cache and the stream keep
	 * theirs for reuse, so their holes are filled again).
	 */
	mallopt(M_MMAP_THRESHOLD, 256 << 10);
	mallopt(M_TRIM_THRESHOLD, 8 << 20);
	/*
	 * The cache holds at least four blocks and their bookkeeping,
	 * even under the smallest cache_size the configuration allows
	 * (four blocks' data): the metadata cache's tests run that small.
	 */
	budget = (size_t)cfg->cache_size;
	/* WRITE frames in flight copy blocks: their room is cache_size's. */
	if (budget >= 4 * IO_WB_BYTES)
		budget -= IO_WB_BYTES;
	if (budget < 4 * (io.bs + block_cache_block_overhead()))
		budget = 4 * (io.bs + block_cache_block_overhead());
	if ((io.bc = block_cache_new(io.bs, budget)) == NULL)
		fatal("block cache");
	io.pressure = cfg->cache_size / 2;
	TAILQ_INIT(&io.dirty);
	TAILQ_INIT(&io.space);
}

/* node_foreach: free what the data path holds of n (leaving). */
static void
io_free_node(struct node *n, void *arg)
{
	struct io_file *f = n->io;
	struct io_rd *rd;
	struct io_wait *w;

	(void)arg;
	if (f == NULL)
		return;
	while ((rd = TAILQ_FIRST(&f->reads)) != NULL) {
		TAILQ_REMOVE(&f->reads, rd, entry);
		free(rd);
	}
	while ((w = TAILQ_FIRST(&f->syncs)) != NULL) {
		TAILQ_REMOVE(&f->syncs, w, entry);
		free(w);
	}
	n->io = NULL;
	free(f);
}

/*
 * Free the data path's state when the daemon leaves (dirty bytes were
 * written back by io_drain() or are reported lost); before the nodes.
 */
void
io_free(void)
{
	struct io_wr *w;

	while ((w = TAILQ_FIRST(&io.space)) != NULL) {
		TAILQ_REMOVE(&io.space, w, entry);
		free(w->data);
		free(w);
	}
	node_foreach(io_free_node, NULL);
	block_cache_free(io.bc);
	io.bc = NULL;
}

/* Copy the counters. */
void
io_stats(struct io_stats *st, struct block_cache_stats *bst)
{
	*st = io.st;
	if (io.bc != NULL)
		block_cache_stats(io.bc, bst);
	else
		memset(bst, 0, sizeof *bst);
}

/* What block b is doing (IO_BLK_*). */
unsigned
io_blk_op(const struct block *b)
{
	return (unsigned)(uintptr_t)b->user & IO_BLK_OPS;
}

/* Set what block b is doing; the read-ahead mark is kept. */
void
io_blk_set(struct block *b, unsigned op)
{
	uintptr_t u = (uintptr_t)b->user;

	b->user = (void *)((u & ~(uintptr_t)IO_BLK_OPS) | op);
}

/* The file state of n, made if it has none. */
struct io_file *
io_file_get(struct node *n)
{
	struct io_file *f = n->io;

	if (f != NULL)
		return f;
	f = xcalloc(1, sizeof *f);
	f->node = n;
	node_ref(n);
	f->key = n->id;
	TAILQ_INIT(&f->reads);
	TAILQ_INIT(&f->syncs);
	n->io = f;
	return f;
}

/* Free f if nothing needs it any more. */
void
io_file_put(struct io_file *f)
{
	struct node *n = f->node;

	if (f->pins > 0 || !TAILQ_EMPTY(&n->handles) || f->wb_frames > 0 ||
	    f->sa_frames > 0 || f->rd_frames > 0 || !TAILQ_EMPTY(&f->reads) ||
	    !TAILQ_EMPTY(&f->syncs) || block_cache_file_dirty(io.bc, f->key))
		return;
	for (struct io_wr *w = TAILQ_FIRST(&io.space); w != NULL;
	     w = TAILQ_NEXT(w, entry))
		if (w->f == f)
			return;
	if (f->on_dirty)
		TAILQ_REMOVE(&io.dirty, f, dentry);
	timer_wheel_del(loop_wheel(), &f->wb_timer);
	n->io = NULL;
	free(f);
	node_unref(n);
}

/* Keep f while a caller goes on using it across callbacks. */
void
io_file_pin(struct io_file *f)
{
	f->pins++;
}

/* The caller is done with f: free it if nothing else needs it. */
void
io_file_unpin(struct io_file *f)
{
	f->pins--;
	io_file_put(f);
}

/*
 * The file's size as this peer shows it: the holder's (n->attr, kept
 * fresh by opens, attribute refreshes and traps) or the end of what was
 * written here, if that is further.
 */
uint64_t
io_file_size(const struct io_file *f)
{
	return f->node->wsize > f->node->attr.size ? f->node->wsize
						   : f->node->attr.size;
}

/*
 * Whether n has bytes written here that its holder does not have yet,
 * or attributes set here that it has not confirmed.
 */
bool
io_dirty(const struct node *n)
{
	return n->io != NULL &&
	    (block_cache_file_dirty(io.bc, n->io->key) > 0 ||
		n->io->wb_frames > 0 || n->io->sa_frames > 0);
}

/* Whether n has attributes set here that its holder has not confirmed. */
bool
io_attr_pending(const struct node *n)
{
	return n->io != NULL && n->io->sa_frames > 0;
}

/*
 * Fresh attributes of n arrived from its holder: if its data changed
 * there (size or mtime moved) and nothing is written here, the cached
 * blocks are old.
 */
void
io_attr_seen(struct node *n, const struct proto_attr *a)
{
	if (n->isdir || io.bc == NULL || io_dirty(n))
		return;
	if (n->io != NULL)
		n->io->size_unsure = false;
	if (a->size != n->attr.size || a->mtime.sec != n->attr.mtime.sec ||
	    a->mtime.nsec != n->attr.mtime.nsec) {
		block_cache_invalidate(io.bc, n->id, 0, 0);
		n->wsize = 0;
	}
}

/* Whether the handle's holder still has it (same stream, peer up). */
bool
io_handle_live(const struct handle *h)
{
	return h->peer->state == PEER_UP && h->epoch == h->peer->epoch;
}

/* Whether h may write (and so carry write-back). */
bool
io_handle_writes(const struct handle *h)
{
	return (h->flags & O_ACCMODE) != O_RDONLY;
}

/* Start a call of type on the handle's holder; NULL if it is gone. */
struct call *
io_call_new(struct handle *h, uint8_t type, uint64_t off,
    void (*done)(struct call *), void *arg)
{
	struct call *c;

	if (!io_handle_live(h) && !cluster_write_failover(h))
		return NULL;
	c = call_new(h->peer, type, h->export_id, NULL, done, arg);
	c->req.fh = h->fh;
	c->req.offset = off;
	return c;
}
