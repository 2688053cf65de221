/*
 * block-cache.c - the data cache: blocks of block_size bytes keyed by
 * (file, index), valid or not, with the byte ranges written here and not
 * yet written back, all within a memory budget.
 *
 * Indexes.  Every block is in one hash table keyed by (file, index); the
 * blocks of each file also hang off a record of that file (struct
 * block_file, in a second table keyed by file), both in a list sorted by
 * index (fprev, fnext) and in a treap keyed by index (tl, tr).  The
 * treap finds the first block at or after an index in O(log n) of that
 * file's blocks, and the list walks on from there, so next_dirty,
 * invalidate, truncate and drop_file cost O(log n + blocks visited) of
 * one file and never look at another file's blocks.  A sorted list alone
 * would have done for appends at the end, but read-ahead, random reads
 * and write-back of a large file insert in the middle, where finding the
 * place costs a walk of the file's blocks.  The treap's priorities are
 * hashed from the blocks' addresses, so no order of indexes unbalances
 * it.  The record goes with the file's last block.
 *
 * Both tables are chained and double when their entries pass one per
 * bucket, incrementally: the new bucket array is allocated and each
 * later insert moves BC_STEP chains of the old one, so no call pays for
 * rehashing a whole table (a full rehash of 65536 blocks took 10 to 25
 * ms here, the blocks' headers being scattered in memory).  They
 * never shrink.  The hash is a 64-bit mixer of the key and a random
 * seed.
 *
 * The LRU holds exactly the blocks that are neither dirty nor busy (nor
 * dropped while busy): eviction takes its tail, so it never touches a
 * dirty or busy block, and a block leaves it when it becomes dirty or
 * busy and comes back, most recent, when it is clean and idle again.
 * One function, bc_settle(), brings a block's LRU place, counters and
 * charge in line with its fields after every change.
 *
 * A block that is neither valid nor dirty nor busy knows nothing; it
 * lives only between block_cache_get() and the caller's first hold or
 * write, and is freed when any later change leaves a block so (unhold,
 * writeback_done, invalidate, truncate).  A busy block that truncate or
 * drop_file removes is unlinked from the indexes (find no longer answers
 * it, get makes a new one) and kept on a list of dropped blocks until
 * its last hold goes.
 *
 * The zero tail: a block's buffer is written only below ztail, the end
 * of the last byte put there, and every byte from ztail on reads as
 * zero.  A fill of a file's short last block, a truncate and the first
 * small write into a new block then touch only the pages they use: a
 * small file's block costs a page or two of memory, not block_size of
 * zeros written out (2,000 six-byte files made 256 MiB of resident
 * zeros of 128 KiB blocks before).  Readers copy through
 * block_cache_bytes(), or point past ztail at block_cache_zeros().
 *
 * Accounting: a block is charged block_size, block_cache_block_overhead()
 * (its header, with room for one dirty range, up to two bucket pointers,
 * malloc's header for the header and the data, and, in the worst case of
 * one block per file, a file record of its own) and 8 bytes per dirty
 * range the heap array holds room for once a block has more than one.
 * Left out: malloc's rounding of a data buffer served by mmap (at most
 * one page per block).  The data buffers of freed blocks kept for new
 * ones (bc_spare_put) are charged block_size each.  Making room evicts
 * spares first, then from the LRU tail, and only when the LRU holds
 * enough to make the room, so a call that fails evicts nothing.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>

#include "cache.h"

#define BC_MIN_BUCKETS 8 /* small, so that small caches double too */
#define BC_MIN_BLOCK 4096u
#define BC_MAX_BLOCK (16u << 20)
#define BC_MALLOC_SLACK 16 /* glibc: 8 of header, 8 of rounding on average */
#define BC_HEAP_RANGES 4   /* first heap array, when a second range comes */
#define BC_STEP 16         /* chains moved per insert while doubling */

/* Bits of struct block's flags. */
#define BLOCK_LRU 0x1     /* on the LRU */
#define BLOCK_DROPPED 0x2 /* unlinked while busy; freed when let go */
#define BLOCK_CLEAN 0x4   /* counted in clean_blocks */
#define BLOCK_DIRTY 0x8   /* counted in dirty_blocks */

struct block_file {
	uint64_t file;
	struct block_file *hnext;  /* hash chain */
	struct block *root;        /* treap by index */
	struct block *head, *tail; /* list by index */
	size_t nblocks;
	size_t ndirty;        /* blocks with a dirty range */
	uint64_t dirty_bytes; /* in those ranges */
};

/*
 * A chained table; the link field lives at offset off in each entry.
 * While old is set the table is doubling: old's chains below moved are
 * empty, the rest still to be moved into b, a few per insert.
 */
struct bc_table {
	void **b;
	size_t mask; /* buckets - 1 */
	void **old;
	size_t old_mask;
	size_t moved;
	size_t n;   /* entries */
	size_t off; /* of the entry's next pointer */
};

struct block_cache {
	uint32_t bs;
	unsigned int shift; /* log2(bs) */
	size_t budget;
	uint64_t seed;
	uint64_t gen; /* the last gen given to a block */
	struct bc_table blocks, files;
	struct block *lru_head, *lru_tail; /* head: most recent */
	size_t lru_bytes;                  /* charged to LRU blocks */
	struct block *dropped;             /* by fnext, fprev */
	void *spares;                      /* freed blocks' data (bc_spare) */
	size_t spare_bytes;                /* block_size each */
	unsigned char *zeros;              /* block_size, read-only */
	struct block_cache_stats st;
};

/* A spare data buffer, kept for the next new block; linked in itself. */
struct bc_spare {
	struct bc_spare *next;
};

/* The murmur3 finaliser: a 64-bit bijection that mixes every bit. */
static inline uint64_t
bc_mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

/* Hash of a block's key; distinct indexes of one file never collide. */
static inline uint64_t
bc_hash(const struct block_cache *c, uint64_t file, uint64_t index)
{
	return bc_mix(((file ^ c->seed) * 0x9e3779b97f4a7c15ull) ^ index);
}

/* Hash of a file's key. */
static inline uint64_t
bc_file_hash(const struct block_cache *c, uint64_t file)
{
	return bc_mix(file ^ c->seed ^ 0x243f6a8885a308d3ull);
}

/* The hash of a table entry, for a rehash. */
static uint64_t
bc_entry_hash(const struct block_cache *c, const struct bc_table *t,
    const void *e)
{
	const struct block *b;

	if (t == &c->files)
		return bc_file_hash(c, ((const struct block_file *)e)->file);
	b = e;
	return bc_hash(c, b->file, b->index);
}

/* The next pointer of a table entry. */
static inline void **
bc_link(const struct bc_table *t, void *e)
{
	return (void **)(void *)((char *)e + t->off);
}

/* An empty table of BC_MIN_BUCKETS; false without memory. */
static bool
bc_table_init(struct bc_table *t, size_t off)
{
	memset(t, 0, sizeof *t);
	t->b = calloc(BC_MIN_BUCKETS, sizeof *t->b);
	t->mask = BC_MIN_BUCKETS - 1;
	t->off = off;
	return t->b != NULL;
}

/* The chain that holds, or would hold, entries of hash h. */
static void **
bc_slot(const struct bc_table *t, uint64_t h)
{
	if (t->old != NULL && (h & t->old_mask) >= t->moved)
		return &t->old[h & t->old_mask];
	return &t->b[h & t->mask];
}

/* Move up to BC_STEP chains of a doubling in progress; finish it. */
static void
bc_table_step(const struct block_cache *c, struct bc_table *t)
{
	size_t stop = t->moved + BC_STEP;
	void *e, *next, **slot;

	for (; t->moved <= t->old_mask && t->moved < stop; t->moved++) {
		for (e = t->old[t->moved]; e != NULL; e = next) {
			next = *bc_link(t, e);
			slot = &t->b[bc_entry_hash(c, t, e) & t->mask];
			*bc_link(t, e) = *slot;
			*slot = e;
		}
		t->old[t->moved] = NULL;
	}
	if (t->moved > t->old_mask) {
		free(t->old);
		t->old = NULL;
	}
}

/*
 * Link e, whose hash is h, into t.  Past one entry per bucket the table
 * starts doubling, kept as it is without memory (chains lengthen).
 */
static void
bc_table_add(const struct block_cache *c, struct bc_table *t, void *e,
    uint64_t h)
{
	void **slot, **b;

	if (t->old != NULL)
		bc_table_step(c, t);
	else if (t->n > t->mask &&
	    (b = calloc((t->mask + 1) * 2, sizeof *b)) != NULL) {
		t->old = t->b;
		t->old_mask = t->mask;
		t->moved = 0;
		t->b = b;
		t->mask = t->mask * 2 + 1;
		bc_table_step(c, t);
	}
	slot = bc_slot(t, h);
	*bc_link(t, e) = *slot;
	*slot = e;
	t->n++;
}

/* Unlink e, whose hash is h, from t. */
static void
bc_table_del(struct bc_table *t, void *e, uint64_t h)
{
	void **p = bc_slot(t, h);

	while (*p != e)
		p = bc_link(t, *p);
	*p = *bc_link(t, e);
	*bc_link(t, e) = NULL;
	t->n--;
}

/* Chains of t, both arrays: the head of chain k of bc_table_chains(). */
static void **
bc_table_chain(const struct bc_table *t, size_t k)
{
	return k <= t->mask ? &t->b[k] : &t->old[k - t->mask - 1];
}

/* How many chains bc_table_chain() answers. */
static size_t
bc_table_chains(const struct bc_table *t)
{
	return t->mask + 1 + (t->old != NULL ? t->old_mask + 1 : 0);
}

/* Free both bucket arrays (not the entries). */
static void
bc_table_fini(struct bc_table *t)
{
	free(t->b);
	free(t->old);
}

/* The block (file, index), or NULL; the LRU is left alone. */
static struct block *
bc_lookup(const struct block_cache *c, uint64_t file, uint64_t index)
{
	struct block *b = *bc_slot(&c->blocks, bc_hash(c, file, index));

	while (b != NULL && (b->file != file || b->index != index))
		b = b->hnext;
	return b;
}

/* The record of file, or NULL. */
static struct block_file *
bc_file_lookup(const struct block_cache *c, uint64_t file)
{
	struct block_file *bf = *bc_slot(&c->files, bc_file_hash(c, file));

	while (bf != NULL && bf->file != file)
		bf = bf->hnext;
	return bf;
}

/* A block's treap priority: its address, mixed. */
static inline uint64_t
bc_prio(const struct block *b)
{
	return bc_mix((uint64_t)(uintptr_t)b);
}

/* Insert b into the treap rooted at t; the new root. */
static struct block *
bc_tree_insert(struct block *t, struct block *b)
{
	struct block *x;

	if (t == NULL)
		return b;
	if (b->index < t->index) {
		t->tl = bc_tree_insert(t->tl, b);
		if (bc_prio(t->tl) > bc_prio(t)) {
			x = t->tl;
			t->tl = x->tr;
			x->tr = t;
			t = x;
		}
	} else {
		t->tr = bc_tree_insert(t->tr, b);
		if (bc_prio(t->tr) > bc_prio(t)) {
			x = t->tr;
			t->tr = x->tl;
			x->tl = t;
			t = x;
		}
	}
	return t;
}

/* Remove b from its file's treap: rotate it down to a leaf, then cut. */
static void
bc_tree_remove(struct block_file *bf, struct block *b)
{
	struct block **l = &bf->root, *x;

	while (*l != b)
		l = b->index < (*l)->index ? &(*l)->tl : &(*l)->tr;
	while (b->tl != NULL && b->tr != NULL) {
		if (bc_prio(b->tl) > bc_prio(b->tr)) {
			x = b->tl;
			b->tl = x->tr;
			x->tr = b;
			*l = x;
			l = &x->tr;
		} else {
			x = b->tr;
			b->tr = x->tl;
			x->tl = b;
			*l = x;
			l = &x->tl;
		}
	}
	*l = b->tl != NULL ? b->tl : b->tr;
	b->tl = b->tr = NULL;
}

/* The file's first block with index >= from, or NULL. */
static struct block *
bc_first_from(const struct block_file *bf, uint64_t from)
{
	struct block *n = bf->root, *best = NULL;

	if (bf->tail == NULL || bf->tail->index < from)
		return NULL;
	while (n != NULL)
		if (n->index >= from) {
			best = n;
			n = n->tl;
		} else
			n = n->tr;
	return best;
}

/* Put b in bf's treap and list; appending at the end needs no search. */
static void
bc_file_attach(struct block_file *bf, struct block *b)
{
	struct block *succ = NULL, *n;

	if (bf->tail != NULL && bf->tail->index > b->index) {
		for (n = bf->root; n != NULL;)
			if (n->index > b->index) {
				succ = n;
				n = n->tl;
			} else
				n = n->tr;
	}
	b->fnext = succ;
	b->fprev = succ != NULL ? succ->fprev : bf->tail;
	if (b->fprev != NULL)
		b->fprev->fnext = b;
	else
		bf->head = b;
	if (succ != NULL)
		succ->fprev = b;
	else
		bf->tail = b;
	bf->root = bc_tree_insert(bf->root, b);
	bf->nblocks++;
	b->bf = bf;
}

/* Take b out of the indexes; its file's record goes with the last block. */
static void
bc_detach(struct block_cache *c, struct block *b)
{
	struct block_file *bf = b->bf;

	bc_table_del(&c->blocks, b, bc_hash(c, b->file, b->index));
	bc_tree_remove(bf, b);
	if (b->fprev != NULL)
		b->fprev->fnext = b->fnext;
	else
		bf->head = b->fnext;
	if (b->fnext != NULL)
		b->fnext->fprev = b->fprev;
	else
		bf->tail = b->fprev;
	b->fprev = b->fnext = NULL;
	b->bf = NULL;
	if (--bf->nblocks == 0) {
		bc_table_del(&c->files, bf, bc_file_hash(c, bf->file));
		free(bf);
	}
}

/* Unlink b from the LRU. */
static void
bc_lru_del(struct block_cache *c, struct block *b)
{
	if (b->lru_prev != NULL)
		b->lru_prev->lru_next = b->lru_next;
	else
		c->lru_head = b->lru_next;
	if (b->lru_next != NULL)
		b->lru_next->lru_prev = b->lru_prev;
	else
		c->lru_tail = b->lru_prev;
	b->lru_prev = b->lru_next = NULL;
	b->flags &= ~BLOCK_LRU;
	c->lru_bytes -= b->charged;
}

/* Link b at the LRU's head, the most recent end. */
static void
bc_lru_add(struct block_cache *c, struct block *b)
{
	b->lru_prev = NULL;
	b->lru_next = c->lru_head;
	if (c->lru_head != NULL)
		c->lru_head->lru_prev = b;
	else
		c->lru_tail = b;
	c->lru_head = b;
	b->flags |= BLOCK_LRU;
	c->lru_bytes += b->charged;
}

/* A use of b: the most recent on the LRU, if it is there. */
static void
bc_touch(struct block_cache *c, struct block *b)
{
	if ((b->flags & BLOCK_LRU) && c->lru_head != b) {
		bc_lru_del(c, b);
		bc_lru_add(c, b);
	}
}

/* Bytes charged per block beyond its data and ranges. */
size_t
block_cache_block_overhead(void)
{
	return sizeof(struct block) + 2 * sizeof(void *) + 2 * BC_MALLOC_SLACK +
	    sizeof(struct block_file) + 2 * sizeof(void *) + BC_MALLOC_SLACK;
}

/* What b is charged, as its fields stand. */
static size_t
bc_charge(const struct block_cache *c, const struct block *b)
{
	size_t heap = b->dirty != &b->dirty1 ? b->cap : 0;

	return c->bs + block_cache_block_overhead() +
	    heap * sizeof(struct block_range);
}

/*
 * Bring b's range storage, LRU place, counters and charge in line with
 * its fields (valid, ndirty, dirty, busy, flags), after any change.
 */
static void
bc_settle(struct block_cache *c, struct block *b)
{
	struct block_file *bf = b->bf;
	uint32_t i, dbytes = 0;
	uint8_t want = 0;
	size_t charge;

	if (b->ndirty <= 1 && b->dirty != &b->dirty1) {
		if (b->ndirty == 1)
			b->dirty1 = b->dirty[0];
		free(b->dirty);
		b->dirty = &b->dirty1;
		b->cap = 1;
	}
	for (i = 0; i < b->ndirty; i++)
		dbytes += b->dirty[i].hi - b->dirty[i].lo;
	c->st.dirty_bytes += (uint64_t)dbytes - b->dbytes;
	if (bf != NULL)
		bf->dirty_bytes += (uint64_t)dbytes - b->dbytes;
	b->dbytes = dbytes;

	if (b->valid && b->ndirty == 0)
		want |= BLOCK_CLEAN;
	if (b->ndirty > 0)
		want |= BLOCK_DIRTY;
	if ((want ^ b->flags) & BLOCK_CLEAN) {
		if (want & BLOCK_CLEAN)
			c->st.clean_blocks++;
		else
			c->st.clean_blocks--;
	}
	if ((want ^ b->flags) & BLOCK_DIRTY) {
		if (want & BLOCK_DIRTY) {
			c->st.dirty_blocks++;
			if (bf != NULL)
				bf->ndirty++;
		} else {
			c->st.dirty_blocks--;
			if (bf != NULL)
				bf->ndirty--;
		}
	}
	b->flags = (b->flags & ~(BLOCK_CLEAN | BLOCK_DIRTY)) | want;

	charge = bc_charge(c, b);
	if (b->flags & BLOCK_LRU)
		c->lru_bytes += charge - b->charged;
	c->st.bytes += charge - b->charged;
	b->charged = charge;

	if (b->busy == 0 && b->ndirty == 0 && !(b->flags & BLOCK_DROPPED)) {
		if (!(b->flags & BLOCK_LRU))
			bc_lru_add(c, b);
	} else if (b->flags & BLOCK_LRU)
		bc_lru_del(c, b);
}

/*
 * The data buffers of freed blocks are kept for new ones, charged to
 * the budget like blocks: a new buffer's pages fault in one by one as
 * it is first written, which costs more than the copy, and blocks come
 * and go all the time (evicted, dropped when a trap or a truncate
 * invalidates them).  So the cache's memory, once grown, stays within
 * the budget for the next blocks; spares are the first to go when room
 * is needed.
 */
static void
bc_spare_put(struct block_cache *c, void *data)
{
	struct bc_spare *sp = data;

	if (c->st.bytes + c->spare_bytes + c->bs > c->budget) {
		free(data);
		return;
	}
	sp->next = c->spares;
	c->spares = sp;
	c->spare_bytes += c->bs;
}

/* A spare data buffer, uncharged, or NULL. */
static void *
bc_spare_take(struct block_cache *c)
{
	struct bc_spare *sp = c->spares;

	if (sp != NULL) {
		c->spares = sp->next;
		c->spare_bytes -= c->bs;
	}
	return sp;
}

/* Free b, wherever it is, and uncount it. */
static void
bc_free(struct block_cache *c, struct block *b)
{
	b->ndirty = 0;
	b->valid = false;
	b->busy = 0;
	b->flags |= BLOCK_DROPPED; /* keeps it off the LRU */
	bc_settle(c, b);
	if (b->bf != NULL)
		bc_detach(c, b);
	else {
		if (b->fprev != NULL)
			b->fprev->fnext = b->fnext;
		else
			c->dropped = b->fnext;
		if (b->fnext != NULL)
			b->fnext->fprev = b->fprev;
	}
	c->st.bytes -= b->charged;
	c->st.blocks--;
	bc_spare_put(c, b->data);
	free(b);
}

/* Free b if it knows nothing and nothing holds it; else settle it. */
static void
bc_let_go(struct block_cache *c, struct block *b)
{
	if (b->busy == 0 && !b->valid && b->ndirty == 0)
		bc_free(c, b);
	else
		bc_settle(c, b);
}

/*
 * Remove b for truncate or drop_file: freed now if idle, else emptied,
 * unlinked from the indexes and kept on the dropped list until let go.
 */
static void
bc_drop(struct block_cache *c, struct block *b)
{
	if (b->busy == 0) {
		bc_free(c, b);
		return;
	}
	b->ndirty = 0;
	b->valid = false;
	b->gen = ++c->gen;
	b->flags |= BLOCK_DROPPED;
	bc_settle(c, b);
	bc_detach(c, b);
	b->fprev = NULL;
	b->fnext = c->dropped;
	if (c->dropped != NULL)
		c->dropped->fprev = b;
	c->dropped = b;
}

/*
 * Make room for need more bytes by evicting from the LRU's tail, only if
 * that can succeed; whether the room is there.
 */
static bool
bc_make_room(struct block_cache *c, size_t need)
{
	struct block *b;

	if (need > c->budget || c->st.bytes - c->lru_bytes > c->budget - need)
		return false;
	while (c->spares != NULL &&
	    c->st.bytes + c->spare_bytes > c->budget - need)
		free(bc_spare_take(c));
	while (c->st.bytes > c->budget - need) {
		b = c->lru_tail;
		c->st.evicted++;
		bc_free(c, b);
	}
	return true;
}

/* Whether [off, off + len) lies within a block. */
static inline bool
bc_range_ok(uint32_t size, uint32_t off, uint32_t len)
{
	return off <= size && len <= size - off;
}

struct block_cache *
block_cache_new(uint32_t block_size, size_t budget_bytes)
{
	struct block_cache *c;
	uint64_t seed;

	if (block_size < BC_MIN_BLOCK || block_size > BC_MAX_BLOCK ||
	    (block_size & (block_size - 1)) != 0 ||
	    budget_bytes / 4 < block_size + block_cache_block_overhead()) {
		errno = EINVAL;
		return NULL;
	}
	if ((c = calloc(1, sizeof *c)) == NULL)
		return NULL;
	if (!bc_table_init(&c->blocks, offsetof(struct block, hnext)) ||
	    !bc_table_init(&c->files, offsetof(struct block_file, hnext))) {
		bc_table_fini(&c->blocks);
		bc_table_fini(&c->files);
		free(c);
		errno = ENOMEM;
		return NULL;
	}
	if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) !=
	    (ssize_t)sizeof seed)
		seed = (uint64_t)(uintptr_t)c ^ 0x13198a2e03707344ull;
	c->seed = seed;
	c->bs = block_size;
	while ((1u << c->shift) < block_size)
		c->shift++;
	c->budget = budget_bytes;
	/* Never written, so it takes no memory: the kernel's zero page. */
	c->zeros = mmap(NULL, block_size, PROT_READ,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (c->zeros == MAP_FAILED) {
		bc_table_fini(&c->blocks);
		bc_table_fini(&c->files);
		free(c);
		errno = ENOMEM;
		return NULL;
	}
	return c;
}

void
block_cache_free(struct block_cache *c)
{
	struct block *b, *next;
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < bc_table_chains(&c->blocks); i++)
		for (b = *bc_table_chain(&c->blocks, i); b != NULL; b = next) {
			next = b->hnext;
			free(b->data);
			if (b->dirty != &b->dirty1)
				free(b->dirty);
			free(b);
		}
	for (b = c->dropped; b != NULL; b = next) {
		next = b->fnext;
		free(b->data);
		free(b);
	}
	for (i = 0; i < bc_table_chains(&c->files); i++) {
		struct block_file *bf, *bnext;

		for (bf = *bc_table_chain(&c->files, i); bf != NULL;
		     bf = bnext) {
			bnext = bf->hnext;
			free(bf);
		}
	}
	while (c->spares != NULL)
		free(bc_spare_take(c));
	bc_table_fini(&c->blocks);
	bc_table_fini(&c->files);
	munmap(c->zeros, c->bs);
	free(c);
}

uint32_t
block_cache_block_size(const struct block_cache *c)
{
	return c->bs;
}

const unsigned char *
block_cache_zeros(const struct block_cache *c)
{
	return c->zeros;
}

void
block_cache_bytes(const struct block *b, uint32_t off, uint32_t len, void *buf)
{
	uint32_t set = off < b->ztail ? b->ztail - off : 0;

	if (set > len)
		set = len;
	memcpy(buf, b->data + off, set);
	memset((unsigned char *)buf + set, 0, len - set);
}

/*
 * Put len bytes of data at off in b's buffer, and move ztail to the
 * write's end: the buffer past it stays untouched.  In a valid block a
 * gap between ztail and off is zeroed first (those bytes read as zeros
 * until now); in one that is not, the bytes outside its dirty ranges
 * are nobody's until a fill writes them, so the gap is left as it is
 * (a first write far into a new block costs no zeroing).
 */
static void
bc_put(struct block *b, uint32_t off, const void *data, uint32_t len)
{
	if (off > b->ztail && b->valid)
		memset(b->data + b->ztail, 0, off - b->ztail);
	memcpy(b->data + off, data, len);
	if (off + len > b->ztail)
		b->ztail = off + len;
}

struct block *
block_cache_peek(const struct block_cache *c, uint64_t file, uint64_t index)
{
	return bc_lookup(c, file, index);
}

struct block *
block_cache_find(struct block_cache *c, uint64_t file, uint64_t index)
{
	struct block *b = bc_lookup(c, file, index);

	if (b != NULL)
		bc_touch(c, b);
	return b;
}

struct block *
block_cache_get(struct block_cache *c, uint64_t file, uint64_t index)
{
	struct block_file *bf;
	struct block *b;
	void *data;

	if ((b = block_cache_find(c, file, index)) != NULL)
		return b;
	/* A spare's charge becomes the block's. */
	data = bc_spare_take(c);
	if (!bc_make_room(c, c->bs + block_cache_block_overhead())) {
		if (data != NULL)
			bc_spare_put(c, data);
		errno = ENOBUFS;
		return NULL;
	}
	/* After the evictions, which may have freed this file's record. */
	/*
	 * The data is not zeroed: its ztail is 0, so no byte of it is read
	 * before a write or a fill puts it there, and a block written
	 * whole, the common case, would pay for it.
	 */
	if ((b = calloc(1, sizeof *b)) == NULL)
		goto nomem;
	if ((b->data = data) == NULL && (b->data = malloc(c->bs)) == NULL)
		goto nomem;
	if ((bf = bc_file_lookup(c, file)) == NULL) {
		if ((bf = calloc(1, sizeof *bf)) == NULL)
			goto nomem;
		bf->file = file;
		bc_table_add(c, &c->files, bf, bc_file_hash(c, file));
	}
	b->file = file;
	b->index = index;
	b->gen = ++c->gen;
	b->size = c->bs;
	b->dirty = &b->dirty1;
	b->cap = 1;
	bc_table_add(c, &c->blocks, b, bc_hash(c, file, index));
	bc_file_attach(bf, b);
	c->st.blocks++;
	bc_settle(c, b);
	return b;
nomem:
	if (b != NULL)
		free(b->data);
	else
		free(data);
	free(b);
	errno = ENOMEM;
	return NULL;
}

/* The first of b's ranges whose hi is at or after off (ndirty if none). */
static uint32_t
bc_range_at(const struct block *b, uint32_t off)
{
	uint32_t lo = 0, hi = b->ndirty, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (b->dirty[mid].hi < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool
block_cache_covers(const struct block *b, uint32_t off, uint32_t len)
{
	uint32_t i;

	if (!bc_range_ok(b->size, off, len))
		return false;
	if (len == 0 || b->valid)
		return true;
	i = bc_range_at(b, off + 1);
	return i < b->ndirty && b->dirty[i].lo <= off &&
	    b->dirty[i].hi >= off + len;
}

bool
block_cache_read(struct block_cache *c, uint64_t file, uint64_t index,
    uint32_t off, uint32_t len, void *buf)
{
	struct block *b;

	if (!bc_range_ok(c->bs, off, len))
		return false;
	if (len == 0)
		return true;
	b = bc_lookup(c, file, index);
	if (b == NULL || !block_cache_covers(b, off, len)) {
		c->st.misses++;
		return false;
	}
	block_cache_bytes(b, off, len, buf);
	bc_touch(c, b);
	c->st.hits++;
	return true;
}

/*
 * Room for one more range in b: grow its array, within the budget (b is
 * off the LRU, so making room cannot evict it).  0, -ENOBUFS, -ENOMEM.
 */
static int
bc_ranges_grow(struct block_cache *c, struct block *b)
{
	uint32_t cap = b->dirty == &b->dirty1 ? BC_HEAP_RANGES : b->cap * 2;
	size_t old = b->dirty == &b->dirty1 ? 0 : b->cap;
	struct block_range *r;

	if (cap <= b->cap || cap > b->size / 2 + 1)
		return -ENOBUFS;
	if (!bc_make_room(c, (cap - old) * sizeof *r))
		return -ENOBUFS;
	if (old == 0) {
		if ((r = malloc(cap * sizeof *r)) == NULL)
			return -ENOMEM;
		r[0] = b->dirty1;
	} else if ((r = realloc(b->dirty, cap * sizeof *r)) == NULL)
		return -ENOMEM;
	b->dirty = r;
	b->cap = cap;
	return 0;
}

int
block_cache_write(struct block_cache *c, struct block *b, uint32_t off,
    const void *data, uint32_t len)
{
	uint32_t i, j, n = b->ndirty, hi = off + len;
	int rc;

	if (!bc_range_ok(c->bs, off, len))
		return -EINVAL;
	if (b->flags & BLOCK_DROPPED)
		return -ESTALE;
	if (len == 0)
		return 0;
	/* Ranges [i, j) touch or overlap [off, hi) and merge with it. */
	i = bc_range_at(b, off);
	for (j = i; j < n && b->dirty[j].lo <= hi; j++)
		;
	if (i == j && n == b->cap) {
		if (b->flags & BLOCK_LRU)
			bc_lru_del(c, b);
		rc = bc_ranges_grow(c, b);
		if (rc == -ENOBUFS && b->valid) {
			/*
			 * The bytes between the ranges of a valid block
			 * are the holder's, so one range spanning them all
			 * writes back the same (writeback_take sends that
			 * span anyway) and needs no more room.
			 */
			b->dirty[0].lo = b->dirty[0].lo < off ? b->dirty[0].lo
							      : off;
			b->dirty[0].hi = b->dirty[n - 1].hi > hi
			    ? b->dirty[n - 1].hi
			    : hi;
			b->ndirty = 1;
			bc_put(b, off, data, len);
			bc_settle(c, b);
			return 0;
		}
		if (rc < 0) {
			bc_settle(c, b);
			return rc;
		}
	}
	bc_put(b, off, data, len);
	if (i == j) {
		memmove(b->dirty + i + 1, b->dirty + i,
		    (n - i) * sizeof *b->dirty);
		b->dirty[i].lo = off;
		b->dirty[i].hi = hi;
		b->ndirty = n + 1;
	} else {
		if (b->dirty[i].lo > off)
			b->dirty[i].lo = off;
		b->dirty[i].hi = b->dirty[j - 1].hi > hi ? b->dirty[j - 1].hi
							 : hi;
		memmove(b->dirty + i + 1, b->dirty + j,
		    (n - j) * sizeof *b->dirty);
		b->ndirty = n - (j - i - 1);
	}
	if (b->ndirty == 1 && b->dirty[0].lo == 0 && b->dirty[0].hi == c->bs)
		b->valid = true; /* it knows every byte */
	bc_settle(c, b);
	return 0;
}

/*
 * Holder's bytes [from, to) of b from data (len bytes, zeros beyond);
 * to is at most the fill's new ztail.
 */
static void
bc_fill_gap(struct block *b, const unsigned char *data, uint32_t len,
    uint32_t from, uint32_t to)
{
	uint32_t copy = to < len ? to : len;

	if (from < copy)
		memcpy(b->data + from, data + from, copy - from);
	else
		copy = from;
	memset(b->data + copy, 0, to - copy);
}

bool
block_cache_fill(struct block_cache *c, struct block *b, uint64_t gen,
    const void *data, uint32_t len)
{
	uint32_t i, pos = 0, end;

	if (b->gen != gen || (b->flags & BLOCK_DROPPED) || len > c->bs)
		return false;
	/* Past both the holder's bytes and ours, zeros: the tail's. */
	end = len > b->ztail ? len : b->ztail;
	for (i = 0; i < b->ndirty; i++) {
		bc_fill_gap(b, data, len, pos, b->dirty[i].lo);
		pos = b->dirty[i].hi;
	}
	bc_fill_gap(b, data, len, pos, end);
	b->ztail = end;
	b->valid = true;
	bc_settle(c, b);
	return true;
}

void
block_cache_hold(struct block_cache *c, struct block *b)
{
	if (b->busy == UINT32_MAX)
		abort();
	b->busy++;
	bc_settle(c, b);
}

void
block_cache_unhold(struct block_cache *c, struct block *b)
{
	if (b->busy == 0)
		abort(); /* more unholds than holds: the caller's bug */
	b->busy--;
	bc_let_go(c, b);
}

uint32_t
block_cache_writeback_take(struct block_cache *c, struct block *b,
    struct block_range *out, uint32_t max)
{
	uint32_t k, n = b->ndirty;

	if (n == 0 || max == 0)
		return 0;
	if (b->valid) {
		out[0].lo = b->dirty[0].lo;
		out[0].hi = b->dirty[n - 1].hi;
		k = n;
	} else {
		k = n < max ? n : max;
		memcpy(out, b->dirty, k * sizeof *out);
		memmove(b->dirty, b->dirty + k, (n - k) * sizeof *out);
	}
	b->ndirty = n - k;
	/* A READ sent before the WRITE may answer the holder's old bytes. */
	b->gen = ++c->gen;
	block_cache_hold(c, b);
	return b->valid ? 1 : k;
}

void
block_cache_writeback_done(struct block_cache *c, struct block *b,
    uint64_t bytes, bool ok)
{
	if (b->busy == 0)
		abort();
	if (ok)
		c->st.written_back += bytes;
	else {
		c->st.writeback_errors++;
		b->valid = false;
	}
	/* A READ sent while the WRITE was in flight may have crossed it. */
	b->gen = ++c->gen;
	block_cache_unhold(c, b);
}

struct block *
block_cache_next_dirty(struct block_cache *c, uint64_t file, uint64_t from)
{
	struct block_file *bf = bc_file_lookup(c, file);
	struct block *b;

	if (bf == NULL || bf->ndirty == 0)
		return NULL;
	for (b = bc_first_from(bf, from); b != NULL; b = b->fnext)
		if (b->ndirty > 0)
			return b;
	return NULL;
}

uint64_t
block_cache_file_dirty(const struct block_cache *c, uint64_t file)
{
	struct block_file *bf = bc_file_lookup(c, file);

	return bf != NULL ? bf->dirty_bytes : 0;
}

void
block_cache_invalidate(struct block_cache *c, uint64_t file, uint64_t off,
    uint64_t len)
{
	struct block_file *bf = bc_file_lookup(c, file);
	struct block *b, *next;
	uint64_t last;

	if (bf == NULL)
		return;
	if (len == 0 || off + len < off)
		last = UINT64_MAX;
	else
		last = (off + len - 1) >> c->shift;
	for (b = bc_first_from(bf, off >> c->shift);
	     b != NULL && b->index <= last; b = next) {
		next = b->fnext; /* NULL if b is the file's last block */
		if (b->valid || (b->ndirty == 0 && b->busy == 0))
			c->st.invalidated++;
		b->valid = false;
		b->gen = ++c->gen;
		bc_let_go(c, b);
	}
}

void
block_cache_truncate(struct block_cache *c, uint64_t file, uint64_t size)
{
	struct block_file *bf = bc_file_lookup(c, file);
	uint32_t cut = (uint32_t)(size & (c->bs - 1)), i, n;
	struct block *b, *next;

	if (bf == NULL)
		return;
	/* Blocks from keep on lie wholly at or past size. */
	b = bc_first_from(bf, (size >> c->shift) + (cut != 0));
	for (; b != NULL; b = next) {
		next = b->fnext;
		bc_drop(c, b);
	}
	if (cut == 0 || (b = bc_lookup(c, file, size >> c->shift)) == NULL)
		return;
	for (i = n = 0; i < b->ndirty && b->dirty[i].lo < cut; i++, n++)
		if (b->dirty[i].hi > cut)
			b->dirty[i].hi = cut;
	b->ndirty = n;
	if (b->ztail > cut)
		b->ztail = cut; /* the bytes past size are zeros */
	b->gen = ++c->gen;      /* a READ in flight saw the old length */
	bc_let_go(c, b);
}

void
block_cache_drop_file(struct block_cache *c, uint64_t file)
{
	struct block_file *bf = bc_file_lookup(c, file);
	struct block *b, *next;

	if (bf == NULL)
		return;
	for (b = bf->head; b != NULL; b = next) {
		next = b->fnext;
		bc_drop(c, b);
	}
}

void
block_cache_stats(const struct block_cache *c, struct block_cache_stats *st)
{
	*st = c->st;
}

/* What a walk of the cache adds up to, for block_cache_check(). */
struct bc_tally {
	uint64_t blocks, bytes, clean, dirty, dirty_bytes;
};

/* Check one block's own fields and add it up; NULL or what is wrong. */
static const char *
bc_check_block(const struct block_cache *c, const struct block *b,
    struct bc_tally *t)
{
	uint32_t i, dbytes = 0;
	bool lru;

	if (b->size != c->bs || b->data == NULL || b->ztail > c->bs)
		return "block size, data or zero tail";
	if (b->ndirty > 0 && b->dirty[b->ndirty - 1].hi > b->ztail)
		return "dirty bytes in the zero tail";
	if ((b->dirty == &b->dirty1) != (b->cap == 1) || b->ndirty > b->cap)
		return "range storage";
	if (b->dirty != &b->dirty1 && b->ndirty <= 1)
		return "heap ranges kept for one range";
	for (i = 0; i < b->ndirty; i++) {
		if (b->dirty[i].lo >= b->dirty[i].hi || b->dirty[i].hi > c->bs)
			return "empty or outside range";
		if (i > 0 && b->dirty[i].lo <= b->dirty[i - 1].hi)
			return "ranges not sorted, disjoint and apart";
		dbytes += b->dirty[i].hi - b->dirty[i].lo;
	}
	if (dbytes != b->dbytes)
		return "dirty bytes of a block";
	if (b->charged != bc_charge(c, b))
		return "charge of a block";
	if (!!(b->flags & BLOCK_CLEAN) != (b->valid && b->ndirty == 0) ||
	    !!(b->flags & BLOCK_DIRTY) != (b->ndirty > 0))
		return "clean or dirty flag";
	lru = b->busy == 0 && b->ndirty == 0 && !(b->flags & BLOCK_DROPPED);
	if (!!(b->flags & BLOCK_LRU) != lru)
		return "on the LRU or not, wrongly";
	if (b->gen > c->gen)
		return "gen from the future";
	t->blocks++;
	t->bytes += b->charged;
	t->clean += b->valid && b->ndirty == 0;
	t->dirty += b->ndirty > 0;
	t->dirty_bytes += dbytes;
	return NULL;
}

/* Check a file's treap below n: order, heap, count; NULL or the fault. */
static const char *
bc_check_tree(const struct block *n, const struct block **prev, size_t *count)
{
	const char *why;

	if (n == NULL)
		return NULL;
	if ((n->tl != NULL && bc_prio(n->tl) > bc_prio(n)) ||
	    (n->tr != NULL && bc_prio(n->tr) > bc_prio(n)))
		return "treap priorities";
	if ((why = bc_check_tree(n->tl, prev, count)) != NULL)
		return why;
	if (*prev != NULL ? (*prev)->fnext != n : n->fprev != NULL)
		return "treap order differs from the list";
	*prev = n;
	++*count;
	return bc_check_tree(n->tr, prev, count);
}

/* Check one file's record and its blocks; NULL or what is wrong. */
static const char *
bc_check_file(const struct block_cache *c, const struct block_file *bf)
{
	const struct block *b, *prev = NULL;
	uint64_t dirty_bytes = 0;
	size_t n = 0, ndirty = 0;
	const char *why;

	for (b = bf->head; b != NULL; prev = b, b = b->fnext) {
		if (b->bf != bf || b->file != bf->file || b->fprev != prev)
			return "file list links";
		if (prev != NULL && prev->index >= b->index)
			return "file list out of order";
		if (bc_lookup(c, b->file, b->index) != b)
			return "a file's block missing from the table";
		n++;
		ndirty += b->ndirty > 0;
		dirty_bytes += b->dbytes;
	}
	if (prev != bf->tail || n != bf->nblocks || n == 0)
		return "file list ends or count";
	if (ndirty != bf->ndirty || dirty_bytes != bf->dirty_bytes)
		return "file dirty counters";
	prev = NULL;
	n = 0;
	if ((why = bc_check_tree(bf->root, &prev, &n)) != NULL)
		return why;
	if (n != bf->nblocks || prev != bf->tail)
		return "treap count";
	return NULL;
}

const char *
block_cache_check(const struct block_cache *c)
{
	struct bc_tally t = { 0, 0, 0, 0, 0 };
	const struct block_file *bf;
	const struct block *b, *prev;
	size_t i, n = 0, files = 0, lru = 0, lru_bytes = 0;
	const char *why;

	for (i = 0; i < bc_table_chains(&c->blocks); i++)
		for (b = *bc_table_chain(&c->blocks, i); b != NULL;
		     b = b->hnext) {
			if (bc_slot(&c->blocks,
				bc_hash(c, b->file, b->index)) !=
			    bc_table_chain(&c->blocks, i))
				return "block in the wrong chain";
			if (b->bf == NULL || (b->flags & BLOCK_DROPPED))
				return "indexed block without a file";
			if ((why = bc_check_block(c, b, &t)) != NULL)
				return why;
			n++;
		}
	if (n != c->blocks.n)
		return "block table count";
	for (prev = NULL, b = c->dropped; b != NULL; prev = b, b = b->fnext) {
		if (b->bf != NULL || !(b->flags & BLOCK_DROPPED) ||
		    b->busy == 0 || b->valid || b->ndirty > 0 ||
		    b->fprev != prev)
			return "dropped block";
		if ((why = bc_check_block(c, b, &t)) != NULL)
			return why;
	}
	for (i = 0; i < bc_table_chains(&c->files); i++)
		for (bf = *bc_table_chain(&c->files, i); bf != NULL;
		     bf = bf->hnext) {
			if (bc_slot(&c->files, bc_file_hash(c, bf->file)) !=
			    bc_table_chain(&c->files, i))
				return "file in the wrong chain";
			if ((why = bc_check_file(c, bf)) != NULL)
				return why;
			files++;
		}
	if (files != c->files.n)
		return "file table count";
	for (prev = NULL, b = c->lru_head; b != NULL;
	     prev = b, b = b->lru_next) {
		if (!(b->flags & BLOCK_LRU) || b->lru_prev != prev)
			return "LRU links";
		lru_bytes += b->charged;
		if (++lru > t.blocks)
			return "LRU loops";
	}
	if (prev != c->lru_tail || lru_bytes != c->lru_bytes)
		return "LRU ends or bytes";
	if (t.blocks != c->st.blocks || t.bytes != c->st.bytes ||
	    t.clean != c->st.clean_blocks || t.dirty != c->st.dirty_blocks ||
	    t.dirty_bytes != c->st.dirty_bytes)
		return "counters differ from a walk";
	if (c->st.bytes > c->budget)
		return "over the budget";
	return NULL;
}
