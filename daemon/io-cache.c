/*
 * io-cache.c - reads and writes through the block cache: fills and
 * read-ahead, write-behind, and waiting for a file to be clean.
 *
 * Reads.  A read is a small state machine (struct io_rd): it looks up
 * each block it covers; a block that is missing is fetched with one READ
 * frame of block_size, a block being filled or written back is waited
 * for, and once every block is there the reply is gathered from them
 * without a copy.  A read parks on its file and runs again whenever a
 * block of that file lands.  A block is never fetched twice: one in
 * flight is waited for.
 *
 * Read-ahead follows the file's sequential run: each read that goes on
 * where the last one ended doubles the window of blocks fetched ahead of
 * it, up to readahead_max; a read elsewhere shrinks it to nothing.  The
 * frames ahead are in flight together, at most IO_RD_FRAMES a file.
 *
 * Writes.  A write(2) is answered as soon as its bytes are in the cache.
 * Dirty blocks go back to the holder as WRITE frames, several in flight
 * per file (IO_WB_FILE_FRAMES), per peer (IO_WB_PEER_FRAMES) and at most
 * IO_WB_BYTES of them in all (each is a copy of its blocks: this bounds
 * the memory write-behind needs past cache_size), each carrying up to
 * IO_WB_FRAME bytes of consecutive dirty blocks:
 *
 *  - a block written whole goes at once (a sequential writer streams);
 *  - the rest goes every writeback_interval (a timer on the wheel), when
 *    someone waits for the file to be clean (close, fsync, truncate and
 *    the other io_barrier() callers), when dirty bytes pass half of
 *    cache_size, when a write waits for room, and when the daemon leaves.
 *
 * A block carries one operation at a time (a fill or a write-back), so
 * two frames for the same bytes are never in flight together and the
 * holder cannot apply them out of order.  When the cache is full of
 * dirty and busy blocks a write waits, its bytes copied, until
 * write-backs make room: dirty bytes never pass cache_size.  A write-back
 * that fails is remembered on the file and reported by its next flush
 * or fsync (as NFS does); the bytes it carried are dropped from the
 * cache, so what is read next is the holder's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "io-int.h"

/* --- reads --- */

/* READ frames in flight for one file, ahead and asked. */
#define IO_RD_FRAMES 64

/* A block filled and lost to an invalidation this often: go around it. */
#define IO_RD_TRIES 8

/* One READ frame filling one block. */
struct io_fill {
	struct io_file *f;
	struct block *b;
	uint64_t gen;
};

/* Answer rd and forget it. */
static void
io_rd_done(struct io_rd *rd, int error, const struct iovec *iov, int n)
{
	rd->cb(rd->arg, error, iov, n);
	free(rd);
}

static int io_failover(struct io_file *, struct peer *, int);

/*
 * A read past the cache found its replica gone: it waits with the
 * others while the file moves to another replica (true), or fails.
 */
static bool
io_rd_elsewhere(struct io_rd *rd, struct peer *failed, int error)
{
	if (io_failover(rd->f, failed, error) != 0)
		return false;
	TAILQ_INSERT_TAIL(&rd->f->reads, rd, entry);
	return true;
}

/* A READ sent past the cache came back: its bytes go straight on. */
static void
io_bypass_cb(struct call *c)
{
	struct io_rd *rd = c->arg;
	struct io_file *f = rd->f;
	struct iovec iov = { .iov_base = (void *)(uintptr_t)c->rep.data,
		.iov_len = c->rep.datalen };

	if (c->rep.error == 0 || !io_rd_elsewhere(rd, c->peer, c->rep.error))
		io_rd_done(rd, c->rep.error, &iov, c->rep.error == 0 ? 1 : 0);
	f->rd_frames--;
	io_file_unpin(f);
}

/* The file is clean: the holder has every byte, ask it. */
static void
io_rd_clean(void *arg, int error, const void *data, size_t len)
{
	struct io_rd *rd = arg;
	struct io_file *f = rd->f;
	struct call *c = NULL;

	(void)data;
	(void)len;
	if (error != 0 ||
	    (c = io_call_new(rd->h, PROTO_READ, rd->off, io_bypass_cb, rd)) ==
		NULL) {
		if (error != 0 || !io_rd_elsewhere(rd, rd->h->peer, -EIO))
			io_rd_done(rd, error != 0 ? error : -EIO, NULL, 0);
		io_file_unpin(f);
		return;
	}
	io.st.read_bypass++;
	c->req.length = rd->size;
	rd->f->rd_frames++;
	call_send(c);
}

/*
 * No room to cache, a block that keeps changing, or a size not known
 * for sure: ask the holder, once the bytes written here are there.
 */
static void
io_rd_bypass(struct io_rd *rd)
{
	io_file_pin(rd->f);
	io_sync_start(rd->f, false, io_rd_clean, rd);
}

/* A failover of f's handles ended: its reads go on, or fail. */
static void
io_failover_done(void *arg, int error)
{
	struct io_file *f = arg;
	struct io_rd *rd;

	while (error != 0 && (rd = TAILQ_FIRST(&f->reads)) != NULL) {
		TAILQ_REMOVE(&f->reads, rd, entry);
		io_rd_done(rd, error, NULL, 0);
	}
	io_read_wake(f);
	io_file_unpin(f);
}

/*
 * A replica of a replicated file failed a read: its reads wait while
 * the handles move to another (0), or there is none (-1).
 */
static int
io_failover(struct io_file *f, struct peer *failed, int error)
{
	if (cluster_failover(f->node, failed, error, io_failover_done, f) != 0)
		return -1;
	io_file_pin(f);
	return 0;
}

/* A READ filling a block came back. */
static void
io_fill_cb(struct call *c)
{
	struct io_fill *fl = c->arg;
	struct io_file *f = fl->f;
	struct block *b = fl->b;
	uint64_t index = b->index, end;
	size_t len = c->rep.datalen;

	f->rd_frames--;
	io_blk_set(b, IO_BLK_IDLE);
	if (c->rep.error == 0) {
		if (len > io.bs)
			len = io.bs;
		if (block_cache_fill(io.bc, b, fl->gen, c->rep.data,
			(uint32_t)len)) {
			/* The holder has at least this much now. */
			end = index * io.bs + len;
			if (end > f->node->attr.size)
				f->node->attr.size = end;
		}
	}
	block_cache_unhold(io.bc, b); /* b may be gone from here on */
	free(fl);
	if (c->rep.error != 0) {
		/* Nothing to keep of it; readers waiting for it fail. */
		block_cache_invalidate(io.bc, f->key, index * io.bs, io.bs);
		if (io_failover(f, c->peer, c->rep.error) != 0)
			io_read_fail_block(f, index, c->rep.error);
	}
	io_wb_push(f); /* its dirty ranges may have waited for it */
	io_read_wake(f);
	io_file_unpin(f);
}

/* Fetch block b of f with one READ frame; ahead: for read-ahead. */
static int
io_fetch(struct io_file *f, struct handle *h, struct block *b, bool ahead)
{
	struct io_fill *fl = xcalloc(1, sizeof *fl);
	struct call *c;

	fl->f = f;
	fl->b = b;
	fl->gen = b->gen;
	if ((c = io_call_new(h, PROTO_READ, b->index * io.bs, io_fill_cb,
		 fl)) == NULL) {
		free(fl);
		return -EIO;
	}
	c->req.length = io.bs;
	block_cache_hold(io.bc, b);
	b->user = (void *)(uintptr_t)(IO_BLK_READ | (ahead ? IO_BLK_AHEAD : 0));
	f->rd_frames++;
	io_file_pin(f);
	call_send(c);
	return 0;
}

/*
 * Try to answer rd from the cache, fetching what is missing.  Returns
 * whether rd is done (answered, failed or passed on); if not, it waits.
 */
static bool
io_rd_run(struct io_rd *rd)
{
	struct io_file *f = rd->f;
	uint64_t eff = io_file_size(f), end, first, last;
	struct iovec iov[64], *v = iov;
	struct block *b;
	bool ready = true;
	int n = 0;

	if (!io_handle_live(rd->h)) {
		if (io_failover(f, rd->h->peer, -EIO) == 0)
			return false; /* on another replica */
		io_rd_done(rd, -EIO, NULL, 0);
		return true;
	}
	if (f->size_unsure && rd->off + rd->size > eff) {
		io_rd_bypass(rd);
		return true;
	}
	if (rd->off >= eff || rd->size == 0) {
		io_rd_done(rd, 0, NULL, 0);
		return true;
	}
	end = rd->off + rd->size < eff ? rd->off + rd->size : eff;
	first = rd->off / io.bs;
	last = (end - 1) / io.bs;
	for (uint64_t i = first; i <= last; i++) {
		uint64_t base = i * io.bs;
		uint32_t lo = i == first ? (uint32_t)(rd->off - base) : 0;
		uint32_t hi = i == last ? (uint32_t)(end - base) : io.bs;

		b = block_cache_find(io.bc, f->key, i);
		if (b != NULL && block_cache_covers(b, lo, hi - lo)) {
			if ((uintptr_t)b->user & IO_BLK_AHEAD) {
				io.st.ra_hits++;
				b->user = (void *)((uintptr_t)b->user &
				    ~(uintptr_t)IO_BLK_AHEAD);
			}
			continue;
		}
		ready = false;
		if (b != NULL && io_blk_op(b) != IO_BLK_IDLE)
			continue; /* being filled or written back */
		/* Missing, or dirty bytes only: the rest is the holder's. */
		if (rd->tries++ >= IO_RD_TRIES * (int)(last - first + 1) ||
		    (b == NULL &&
			(b = block_cache_get(io.bc, f->key, i)) == NULL)) {
			io_rd_bypass(rd);
			return true;
		}
		io.st.ra_misses++;
		if (io_fetch(f, rd->h, b, false) < 0) {
			io_rd_done(rd, -EIO, NULL, 0);
			return true;
		}
	}
	if (!ready) {
		rd->waited = true;
		return false;
	}
	/* Two pieces a block at most: its bytes, then its zero tail. */
	if (2 * (last - first + 1) > sizeof iov / sizeof iov[0])
		v = xcalloc(2 * (last - first + 1), sizeof *v);
	for (uint64_t i = first; i <= last; i++) {
		uint64_t base = i * io.bs;
		uint32_t lo = i == first ? (uint32_t)(rd->off - base) : 0;
		uint32_t hi = i == last ? (uint32_t)(end - base) : io.bs;
		uint32_t set;

		b = block_cache_find(io.bc, f->key, i);
		set = b->ztail < hi ? b->ztail : hi;
		if (lo < set) {
			v[n].iov_base = b->data + lo;
			v[n++].iov_len = set - lo;
			lo = set;
		}
		if (lo < hi) {
			v[n].iov_base = (void *)block_cache_zeros(io.bc);
			v[n++].iov_len = hi - lo;
		}
	}
	if (rd->waited)
		io.st.read_misses++;
	else
		io.st.read_hits++;
	io_rd_done(rd, 0, v, n);
	if (v != iov)
		free(v);
	return true;
}

/*
 * Read-ahead for a read of [off, end): grow or shrink the window, then
 * fetch the blocks ahead of end that are neither cached nor in flight.
 */
static void
io_ahead(struct io_file *f, struct handle *h, uint64_t off, uint64_t end)
{
	uint64_t eff = io_file_size(f), tol, from, to, last;
	uint32_t max = conf->readahead_max;
	struct block *b;

	if (max == 0 || end == 0)
		return;
	tol = (uint64_t)(f->ra_window > 0 ? f->ra_window : 1) * io.bs;
	if (off + tol >= f->ra_next && off <= f->ra_next + tol) {
		f->ra_window = f->ra_window == 0 ? 2 : f->ra_window * 2;
		if (f->ra_window > max)
			f->ra_window = max;
		if (end > f->ra_next)
			f->ra_next = end;
	} else {
		f->ra_window = 0;
		f->ra_end = 0;
		f->ra_next = end;
		return;
	}
	if (eff == 0)
		return;
	last = (end - 1) / io.bs;
	from = last + 1 > f->ra_end ? last + 1 : f->ra_end;
	to = last + f->ra_window;
	if (to > (eff - 1) / io.bs)
		to = (eff - 1) / io.bs;
	for (; from <= to && f->rd_frames < IO_RD_FRAMES; from++) {
		if (block_cache_find(io.bc, f->key, from) != NULL)
			continue;
		if ((b = block_cache_get(io.bc, f->key, from)) == NULL ||
		    io_fetch(f, h, b, true) < 0)
			break;
	}
	f->ra_end = from;
}

/* Read size bytes at off; cb gets them as an iovec (valid during cb). */
int
io_read(struct handle *h, uint64_t off, size_t size, io_read_cb cb, void *arg)
{
	struct io_file *f;
	struct io_rd *rd;
	uint64_t end;

	/* A replica gone: the read goes on on another (io_rd_run()). */
	if (!io_handle_live(h) && !cluster_export(h->peer, h->export_id))
		return -EIO;
	f = io_file_get(h->node);
	rd = xcalloc(1, sizeof *rd);
	rd->f = f;
	rd->h = h;
	rd->off = off;
	rd->size = size;
	rd->cb = cb;
	rd->arg = arg;
	end = off + size < io_file_size(f) ? off + size : io_file_size(f);
	io_file_pin(f);
	if (!io_rd_run(rd))
		TAILQ_INSERT_TAIL(&f->reads, rd, entry);
	io_ahead(f, h, off, end);
	io_file_unpin(f);
	return 0;
}

/* A block of f landed: run the reads waiting on f again. */
void
io_read_wake(struct io_file *f)
{
	struct io_rd_list waiting;
	struct io_rd *rd;

	if (TAILQ_EMPTY(&f->reads))
		return;
	io_file_pin(f);
	TAILQ_INIT(&waiting);
	TAILQ_CONCAT(&waiting, &f->reads, entry);
	while ((rd = TAILQ_FIRST(&waiting)) != NULL) {
		TAILQ_REMOVE(&waiting, rd, entry);
		if (!io_rd_run(rd))
			TAILQ_INSERT_TAIL(&f->reads, rd, entry);
	}
	io_file_unpin(f);
}

/* The READ of block index of f failed: so do the reads waiting for it. */
void
io_read_fail_block(struct io_file *f, uint64_t index, int error)
{
	struct io_rd *rd, *next;

	for (rd = TAILQ_FIRST(&f->reads); rd != NULL; rd = next) {
		next = TAILQ_NEXT(rd, entry);
		if (rd->off / io.bs > index ||
		    (rd->off + (rd->size ? rd->size : 1) - 1) / io.bs < index)
			continue;
		TAILQ_REMOVE(&f->reads, rd, entry);
		io_rd_done(rd, error, NULL, 0);
	}
}

/* --- writes --- */

/* Bytes one WRITE frame carries at most. */
#define IO_WB_FRAME (512u << 10)
/* WRITE frames in flight for one file, and to one peer. */
#define IO_WB_FILE_FRAMES 8
#define IO_WB_PEER_FRAMES 16

/* Bytes of WRITE frames sent and not answered yet. */
static uint64_t io_wb_inflight;
/* Blocks one frame may carry (at 4 KiB blocks, 1 MiB: IO_WB_FRAME first). */
#define IO_WB_BLOCKS 256
/* Separate ranges of one block sent at once. */
#define IO_WB_RANGES 16

/* Frames in flight to one peer (a peer is only compared, never used). */
struct io_peer_frames {
	const struct peer *peer;
	unsigned n;
};

static struct {
	struct io_peer_frames *v;
	size_t n, cap;
} io_pf;

/* A write-back: the blocks it carries, in one frame or one per range. */
struct io_wb {
	struct io_file *f;
	struct peer *peer;
	uint32_t export_id;
	unsigned pending; /* frames not answered yet */
	int error;
	/* The holder's attributes of the file before and after each frame
	 * (PROTO_CAP_CHANGE_ATTR); nattr < nframes: some came without. */
	struct proto_attr *before, *after;
	unsigned nframes, nattr;
	uint64_t lo, hi; /* the bytes it carries, first and past the last */
	uint32_t nblk;
	struct {
		struct block *b;
		uint64_t bytes;
	} blk[];
};

/* The frames in flight to p, made if absent. */
static unsigned *
io_peer_count(const struct peer *p)
{
	for (size_t i = 0; i < io_pf.n; i++)
		if (io_pf.v[i].peer == p)
			return &io_pf.v[i].n;
	for (size_t i = 0; i < io_pf.n; i++)
		if (io_pf.v[i].n == 0) {
			io_pf.v[i].peer = p;
			return &io_pf.v[i].n;
		}
	if (io_pf.n == io_pf.cap) {
		io_pf.cap = io_pf.cap ? io_pf.cap * 2 : 8;
		io_pf.v = xreallocarray(io_pf.v, io_pf.cap, sizeof *io_pf.v);
	}
	io_pf.v[io_pf.n].peer = p;
	io_pf.v[io_pf.n].n = 0;
	return &io_pf.v[io_pf.n++].n;
}

/* Whether dirty bytes are past the point where all of them go back. */
bool
io_wb_pressure(void)
{
	struct block_cache_stats bst;

	block_cache_stats(io.bc, &bst);
	return bst.dirty_bytes > io.pressure;
}

/* A live handle of f's file that may write, to carry write-backs. */
static struct handle *
io_wb_handle(struct io_file *f)
{
	struct handle *h;

	TAILQ_FOREACH(h, &f->node->handles, nentry)
	if (io_handle_live(h) && (h->flags & O_ACCMODE) != O_RDONLY)
		return h;
	/* A replicated file's: another replica may take its place. */
	TAILQ_FOREACH(h, &f->node->handles, nentry)
	if (cluster_write_failover(h))
		return h;
	return NULL;
}

/* f has dirty blocks: on the list of such files, its timer armed. */
static void
io_wb_dirtied(struct io_file *f)
{
	if (!f->on_dirty) {
		TAILQ_INSERT_TAIL(&io.dirty, f, dentry);
		f->on_dirty = true;
	}
	if (f->wb_timer.cb == NULL)
		timer_init(&f->wb_timer, io_wb_timer_cb, f);
	if (!timer_pending(&f->wb_timer)) {
		timer_wheel_add(loop_wheel(), &f->wb_timer,
		    loop_now_ms() +
			(uint64_t)(conf->writeback_interval * 1000));
		loop_wheel_kick();
	}
}

/* f has no dirty block left: off the list, timer stopped. */
static void
io_wb_cleaned(struct io_file *f)
{
	if (f->on_dirty) {
		TAILQ_REMOVE(&io.dirty, f, dentry);
		f->on_dirty = false;
	}
	timer_wheel_del(loop_wheel(), &f->wb_timer);
	/* What the kernel was told meanwhile is older than the holder's. */
	if (f->node->attr_early) {
		f->node->attr_early = false;
		notify_attr_now(f->node);
	}
}

/*
 * Writes waiting for room go on, in order, as far as room allows; each
 * one done is answered.
 */
static void io_space_wake(void);

/*
 * Our own write-backs just answered, by node: the DATA traps the holder
 * sends about them (up to two trap delays later) are their echoes, not
 * news (io_data_echo).  A slot taken by another file loses its record,
 * which only costs that file's caches.
 */
#define IO_ECHO_SLOTS 1024

static struct io_echo {
	uint64_t node_id; /* 0: free */
	uint64_t lo, hi;  /* the bytes written back, hull */
	uint64_t until;   /* wheel ms */
} io_echoes[IO_ECHO_SLOTS];

/* Whether a and b are the same state of a file: size and times. */
static bool
io_attr_same(const struct proto_attr *a, const struct proto_attr *b)
{
	return a->size == b->size && a->mtime.sec == b->mtime.sec &&
	    a->mtime.nsec == b->mtime.nsec && a->ctime.sec == b->ctime.sec &&
	    a->ctime.nsec == b->ctime.nsec;
}

/*
 * The file's attributes after write-back wb, if its frames say for sure:
 * every frame found the file as the kernel's pages were filled from it
 * (data_mtime, data_size) or as another frame of wb left it, so nobody
 * else changed it meanwhile; the latest state of them (change time, then
 * size: writes only grow a file) is the file now.  NULL if not sure.
 */
static const struct proto_attr *
io_wb_attr(const struct io_wb *wb)
{
	const struct node *n = wb->f->node;
	const struct proto_attr *last = NULL;

	if (wb->nattr == 0 || wb->nattr < wb->nframes || !n->data_seen)
		return NULL;
	for (unsigned i = 0; i < wb->nattr; i++) {
		const struct proto_attr *b = &wb->before[i];
		bool known = b->size == n->data_size &&
		    b->mtime.sec == n->data_mtime.sec &&
		    b->mtime.nsec == n->data_mtime.nsec;

		for (unsigned j = 0; j < wb->nattr && !known; j++)
			known = j != i && io_attr_same(b, &wb->after[j]);
		if (!known)
			return NULL;
		if (last == NULL || dircache_attr_older(last, &wb->after[i]) ||
		    (!dircache_attr_older(&wb->after[i], last) &&
			wb->after[i].size > last->size))
			last = &wb->after[i];
	}
	return last;
}

/* Note write-back wb of node n as ours, for io_data_echo(). */
static void
io_echo_note(const struct node *n, const struct io_wb *wb)
{
	struct io_echo *e = &io_echoes[n->id % IO_ECHO_SLOTS];
	uint64_t now = timer_wheel_now(loop_wheel());

	if (e->node_id != n->id || e->until <= now) {
		e->node_id = n->id;
		e->lo = wb->lo;
		e->hi = wb->hi;
	} else {
		e->lo = wb->lo < e->lo ? wb->lo : e->lo;
		e->hi = wb->hi > e->hi ? wb->hi : e->hi;
	}
	/* Its trap goes within a trap delay; a second for its way. */
	e->until = now + 1000 + (uint64_t)(conf->trap_delay * 2000);
}

/*
 * Whether a DATA trap about [off, off + len) of n is the echo of write-
 * backs of ours: n's pages and blocks hold those bytes already, and the
 * holder said nobody else changed the file meanwhile (io_wb_attr).
 * Another peer writing the same bytes in the same second is seen at the
 * next open, which compares the file's times (close-to-open).
 */
bool
io_data_echo(const struct node *n, uint64_t off, uint64_t len)
{
	const struct io_echo *e = &io_echoes[n->id % IO_ECHO_SLOTS];

	return e->node_id == n->id &&
	    e->until > timer_wheel_now(loop_wheel()) && off >= e->lo &&
	    len <= e->hi - off && off < e->hi;
}

/*
 * The write-back is answered without an error: the file's size and
 * times in its directory's listing are old.  If the holder said what
 * they are now, and that nobody else changed the file meanwhile, they
 * go in place (a stat after a write asks nobody) and the kernel's pages
 * stay good for the next open; else the listing asks again.
 */
static void
io_wb_attr_done(struct io_wb *wb, const struct proto_attr *a)
{
	struct io_file *f = wb->f;
	struct node *n = f->node;
	char *rel = fsop_relpath(n, wb->peer, wb->export_id);

	if (a != NULL && f->wb_frames == 0 && !io_dirty(n) && !f->size_unsure &&
	    (a->mode & S_IFMT) == (n->attr.mode & S_IFMT) &&
	    !dircache_attr_older(a, &n->attr)) {
		n->attr = *a;
		n->data_mtime = a->mtime;
		n->data_size = a->size;
		io_echo_note(n, wb);
		if (rel != NULL)
			dircache_update(wb->peer, wb->export_id, rel, a);
	} else if (a != NULL && io_attr_pending(n) && f->wb_frames == 0 &&
	    block_cache_file_dirty(io.bc, f->key) == 0 && !f->size_unsure) {
		/*
		 * Ours, with SETATTRs answered here after it: the last of
		 * their answers brings the attributes
		 * (io_setattr_deferred_cb()).
		 */
		io_echo_note(n, wb);
	} else if (rel != NULL)
		dircache_changed(wb->peer, wb->export_id, rel);
	free(rel);
}

/*
 * Block b was written back whole into a file that was empty, which is
 * size bytes now: the holder's bytes of it are b's, and past size there
 * are none.  It stays, valid, for the reads that follow (a block not
 * valid would go once clean, and be read again).
 */
static void
io_blk_known(struct block *b, uint64_t size)
{
	uint64_t base = b->index * io.bs;
	uint32_t len;
	unsigned char *copy;

	if (b->valid || base >= size)
		return;
	len = size - base < io.bs ? (uint32_t)(size - base) : io.bs;
	copy = xmalloc(len);
	block_cache_bytes(b, 0, len, copy);
	block_cache_fill(io.bc, b, b->gen, copy, len);
	free(copy);
}

/* Every frame of write-back wb is answered: its blocks are let go. */
static void
io_wb_end(struct io_wb *wb)
{
	struct io_file *f = wb->f;
	struct node *n = f->node;
	const struct proto_attr *a = wb->error == 0 ? io_wb_attr(wb) : NULL;
	/* One frame made the whole file, from empty: its bytes are ours. */
	bool whole = a != NULL && wb->nframes == 1 && wb->before[0].size == 0 &&
	    wb->lo == 0 && wb->hi == a->size;

	io_file_pin(f);
	for (uint32_t i = 0; i < wb->nblk; i++) {
		if (whole)
			io_blk_known(wb->blk[i].b, a->size);
		io_blk_set(wb->blk[i].b, IO_BLK_IDLE);
		block_cache_writeback_done(io.bc, wb->blk[i].b,
		    wb->blk[i].bytes, wb->error == 0);
	}
	if (wb->error != 0) {
		io.st.wb_errors++;
		if (f->error == 0)
			f->error = wb->error;
		log_debug("write-back of node %llu: %s",
		    (unsigned long long)n->id, strerror(-wb->error));
		/*
		 * The bytes are lost (the next flush says so), and with
		 * them the size they would have made: the holder's again.
		 */
		if (!io_dirty(n) && n->wsize > n->attr.size) {
			n->wsize = 0;
			notify_attr_now(n);
		}
	} else {
		io_wb_attr_done(wb, a);
		/* Other names of a hard-linked file must re-read. */
		if (n->attr.nlink > 1)
			notify_links(n);
	}
	free(wb->before);
	free(wb->after);
	free(wb);
	/*
	 * What the frames freed goes to the other dirty files first: a
	 * writer streaming into f must not keep another file's flush
	 * waiting behind IO_WB_BYTES until it stops.
	 */
	if (f->on_dirty) {
		TAILQ_REMOVE(&io.dirty, f, dentry);
		TAILQ_INSERT_TAIL(&io.dirty, f, dentry);
	}
	io_wb_kick();
	io_wb_push(f);
	io_read_wake(f);
	io_sync_check(f);
	io_space_wake();
	io_wb_kick();
	io_file_unpin(f);
}

/* A WRITE frame of a write-back came back. */
static void
io_wb_done(struct call *c)
{
	struct io_wb *wb = c->arg;
	int err = c->rep.error;

	if (err == 0 && c->rep.value < c->req.datalen)
		err = -EIO; /* the holder stopped short without saying why */
	if (err != 0 && wb->error == 0)
		wb->error = err;
	if (err == 0)
		io.st.written_back += c->req.datalen;
	if (err == 0 && c->rep.has_attr) {
		wb->before = xreallocarray(wb->before, wb->nattr + 1,
		    sizeof *wb->before);
		wb->after = xreallocarray(wb->after, wb->nattr + 1,
		    sizeof *wb->after);
		wb->before[wb->nattr] = c->rep.attr_before;
		wb->after[wb->nattr++] = c->rep.attr;
	}
	io_wb_inflight -= c->req.datalen;
	wb->f->wb_frames--;
	(*io_peer_count(wb->peer))--;
	if (--wb->pending == 0)
		io_wb_end(wb);
}

/* No frame of wb could go (the handle died): it failed at once. */
static void
io_wb_unsent(struct io_wb *wb)
{
	if (wb->pending > 0)
		return;
	wb->error = -EIO;
	io_wb_end(wb);
}

/* A new write-back of up to nblk blocks of f through h. */
static struct io_wb *
io_wb_new(struct io_file *f, struct handle *h, uint32_t nblk)
{
	struct io_wb *wb = xcalloc(1, sizeof *wb + nblk * sizeof wb->blk[0]);

	wb->f = f;
	wb->peer = h->peer;
	wb->export_id = h->export_id;
	return wb;
}

/*
 * A WRITE frame or a deferred SETATTR of f goes by handle h, before
 * f->wb_frames or f->sa_frames counts it: which handle what is in
 * flight went by (io_push_all()).
 */
void
io_inflight_by(struct io_file *f, const struct handle *h)
{
	if (f->wb_frames == 0 && f->sa_frames == 0) {
		f->wb_peer = h->peer;
		f->wb_fh = h->fh;
		f->wb_mixed = false;
	} else if (h->peer != f->wb_peer || h->fh != f->wb_fh)
		f->wb_mixed = true;
}

/* Send one WRITE frame of wb: len bytes at off, gathered by fill. */
static bool
io_wb_frame(struct io_wb *wb, struct handle *h, uint64_t off, uint64_t len)
{
	struct call *c;
	unsigned char *p;
	uint64_t done = 0;

	if ((c = io_call_new(h, PROTO_WRITE, off, io_wb_done, wb)) == NULL)
		return false;
	if (wb->f->kill_suidgid) { /* the holder clears set-ID bits first */
		c->req.flags |= PROTO_KILL_SUIDGID;
		wb->f->kill_suidgid = false;
	}
	/* Gathered where the frame carries them: not copied again. */
	p = call_frame_data(c, len);
	if (wb->nframes++ == 0 || off < wb->lo)
		wb->lo = off;
	if (off + len > wb->hi)
		wb->hi = off + len;
	/* The blocks' bytes in [off, off + len), in order. */
	for (uint32_t i = 0; i < wb->nblk && done < len; i++) {
		struct block *b = wb->blk[i].b;
		uint64_t base = b->index * io.bs;
		uint64_t lo = off + done - base, n = io.bs - lo;

		if (off + done < base || lo >= io.bs)
			continue;
		if (n > len - done)
			n = len - done;
		block_cache_bytes(b, (uint32_t)lo, (uint32_t)n, p + done);
		done += n;
	}
	io_inflight_by(wb->f, h);
	wb->pending++;
	io_wb_inflight += len;
	wb->f->wb_frames++;
	(*io_peer_count(wb->peer))++;
	io.st.wb_frames++;
	call_send(c);
	return true;
}

/*
 * Write back block b, which is not valid and has several dirty ranges:
 * one frame each, in flight together (they are disjoint).
 */
static void
io_wb_ranges(struct io_file *f, struct handle *h, struct block *b)
{
	struct block_range r[IO_WB_RANGES];
	uint32_t n = block_cache_writeback_take(io.bc, b, r, IO_WB_RANGES);
	struct io_wb *wb = io_wb_new(f, h, 1);
	uint64_t bytes = 0, base = b->index * io.bs;

	for (uint32_t i = 0; i < n; i++)
		bytes += r[i].hi - r[i].lo;
	wb->blk[0].b = b;
	wb->blk[0].bytes = bytes;
	wb->nblk = 1;
	io_blk_set(b, IO_BLK_WRITE);
	for (uint32_t i = 0; i < n; i++)
		if (!io_wb_frame(wb, h, base + r[i].lo, r[i].hi - r[i].lo))
			wb->error = -EIO; /* the rest fail too: reported */
	io_wb_unsent(wb);
}

/*
 * Write back a run of consecutive blocks from b: b's dirty span and,
 * while each ends at the block's end, the next block's first range from
 * its start, up to IO_WB_FRAME bytes.  Returns the index after the run.
 */
static uint64_t
io_wb_run(struct io_file *f, struct handle *h, struct block *b)
{
	uint32_t max = IO_WB_FRAME / io.bs;
	struct block_range r;
	struct io_wb *wb;
	uint64_t off, len, index;

	if (max == 0)
		max = 1;
	if (max > IO_WB_BLOCKS)
		max = IO_WB_BLOCKS;
	wb = io_wb_new(f, h, max);
	block_cache_writeback_take(io.bc, b, &r, 1);
	off = b->index * io.bs + r.lo;
	len = r.hi - r.lo;
	wb->blk[0].b = b;
	wb->blk[0].bytes = len;
	wb->nblk = 1;
	io_blk_set(b, IO_BLK_WRITE);
	while (wb->nblk < max && r.hi == io.bs && b->ndirty == 0) {
		struct block *nb = block_cache_find(io.bc, f->key,
		    b->index + 1);

		if (nb == NULL || nb->ndirty == 0 || nb->dirty[0].lo != 0 ||
		    io_blk_op(nb) != IO_BLK_IDLE)
			break;
		b = nb;
		block_cache_writeback_take(io.bc, b, &r, 1);
		wb->blk[wb->nblk].b = b;
		wb->blk[wb->nblk++].bytes = r.hi;
		io_blk_set(b, IO_BLK_WRITE);
		len += r.hi;
	}
	index = b->index + 1;
	if (!io_wb_frame(wb, h, off, len))
		io_wb_unsent(wb);
	return index;
}

/* Whether block b is dirty from its start to its end. */
static bool
io_wb_full(const struct block *b)
{
	return b->ndirty == 1 && b->dirty[0].lo == 0 && b->dirty[0].hi == io.bs;
}

/*
 * Send what f's dirty blocks allow: whole blocks always, partial ones
 * when asked (timer, someone waiting, pressure, leaving), within the
 * frame limits.
 */
void
io_wb_push(struct io_file *f)
{
	bool all = f->wb_all || !TAILQ_EMPTY(&f->syncs) || io.draining ||
	    !TAILQ_EMPTY(&io.space) || io_wb_pressure();
	struct handle *h;
	struct block *b;
	unsigned *peer;
	uint64_t from = 0;

	if (block_cache_file_dirty(io.bc, f->key) == 0) {
		if (f->wb_frames == 0 && f->sa_frames == 0)
			io_wb_cleaned(f);
		return;
	}
	/*
	 * A holder runs a WRITE without waiting for a SETATTR before it:
	 * bytes written after a deferred one wait for its answer.  Sent
	 * now, they could land first, and the file would keep the times
	 * the SETATTR set instead of the write's.
	 */
	if (f->sa_frames > 0)
		return;
	if ((h = io_wb_handle(f)) == NULL) {
		io_wb_fail(f, -EIO);
		return;
	}
	f->wb_all = false;
	peer = io_peer_count(h->peer);
	io_file_pin(f);
	while (f->wb_frames < IO_WB_FILE_FRAMES && *peer < IO_WB_PEER_FRAMES &&
	    io_wb_inflight < IO_WB_BYTES &&
	    (b = block_cache_next_dirty(io.bc, f->key, from)) != NULL) {
		from = b->index + 1;
		if (io_blk_op(b) != IO_BLK_IDLE || (!all && !io_wb_full(b)))
			continue;
		if (!b->valid && b->ndirty > 1)
			io_wb_ranges(f, h, b);
		else
			from = io_wb_run(f, h, b);
		peer = io_peer_count(h->peer);
	}
	io_file_unpin(f);
}

/* Push every file with dirty blocks (frames freed up, pressure, leaving). */
void
io_wb_kick(void)
{
	struct io_file *f, *next;

	for (f = TAILQ_FIRST(&io.dirty); f != NULL; f = next) {
		io_file_pin(f);
		io_wb_push(f);
		next = TAILQ_NEXT(f, dentry);
		io_file_unpin(f);
	}
}

/* writeback_interval passed since f was dirtied: all of it goes. */
void
io_wb_timer_cb(struct timer *t, void *arg)
{
	struct io_file *f = arg;

	(void)t;
	f->wb_all = true;
	io_file_pin(f);
	io_wb_push(f);
	if (block_cache_file_dirty(io.bc, f->key) > 0)
		io_wb_dirtied(f); /* what was busy goes next time */
	io_file_unpin(f);
}

/*
 * f's dirty bytes can never reach the holder (no live handle that may
 * write): they are dropped and the loss reported by the next flush.
 */
void
io_wb_fail(struct io_file *f, int error)
{
	struct block *b;
	uint64_t from = 0;

	io_file_pin(f);
	while ((b = block_cache_next_dirty(io.bc, f->key, from)) != NULL) {
		from = b->index + 1;
		if (io_blk_op(b) == IO_BLK_IDLE)
			block_cache_invalidate(io.bc, f->key, b->index * io.bs,
			    io.bs);
	}
	/* Blocks still busy keep their dirty ranges: drop them too. */
	if (block_cache_file_dirty(io.bc, f->key) > 0 && f->wb_frames == 0 &&
	    f->rd_frames == 0)
		block_cache_drop_file(io.bc, f->key);
	if (f->error == 0)
		f->error = error;
	io.st.wb_errors++;
	log_debug("write-back of node %llu: no handle to carry it",
	    (unsigned long long)f->node->id);
	if (block_cache_file_dirty(io.bc, f->key) == 0 && f->wb_frames == 0 &&
	    f->sa_frames == 0)
		io_wb_cleaned(f);
	io_sync_check(f);
	io_space_wake();
	io_file_unpin(f);
}

/*
 * Put size bytes of data at off of f in the cache, block by block, as
 * far as room allows; returns how many went in.
 */
static size_t
io_write_some(struct io_file *f, uint64_t off, const unsigned char *data,
    size_t size)
{
	size_t done = 0;
	bool full = false;
	struct block *b;

	while (done < size) {
		uint64_t at = off + done, index = at / io.bs;
		uint32_t lo = (uint32_t)(at - index * io.bs);
		uint32_t n = io.bs - lo;

		if (n > size - done)
			n = (uint32_t)(size - done);
		if ((b = block_cache_get(io.bc, f->key, index)) == NULL ||
		    block_cache_write(io.bc, b, lo, data + done, n) < 0)
			break;
		full = full || io_wb_full(b);
		done += n;
	}
	if (done > 0) {
		if (off + done > f->node->wsize)
			f->node->wsize = off + done;
		io_wb_dirtied(f);
	}
	if (full || io_wb_pressure())
		io_wb_push(f);
	if (io_wb_pressure())
		io_wb_kick();
	return done;
}

static void
io_space_wake(void)
{
	struct io_wr *w;
	size_t n;

	while ((w = TAILQ_FIRST(&io.space)) != NULL) {
		n = io_write_some(w->f, w->off + w->done, w->data + w->done,
		    w->size - w->done);
		w->done += n;
		if (w->done < w->size)
			break;
		TAILQ_REMOVE(&io.space, w, entry);
		w->cb(w->arg, 0, NULL, w->size);
		io_file_unpin(w->f);
		free(w->data);
		free(w);
	}
}

/* Write size bytes at off (copied); cb gets the count written. */
int
io_write(struct handle *h, uint64_t off, const void *data, size_t size,
    io_done_cb cb, void *arg)
{
	struct io_file *f;
	struct io_wr *w;
	size_t done = 0;

	if (!io_handle_live(h) && !cluster_write_failover(h))
		return -EIO;
	f = io_file_get(h->node);
	cluster_wrote(h->node); /* seen to on the other replicas */
	/*
	 * A writer that may not keep set-ID bits: the next frame says so,
	 * and goes now, so that a stat soon after sees them gone.
	 */
	if (kernel_kill_suidgid())
		f->kill_suidgid = f->wb_all = true;
	if (TAILQ_EMPTY(&io.space))
		done = io_write_some(f, off, data, size);
	if (f->kill_suidgid)
		io_wb_push(f);
	if (done == size) {
		cb(arg, 0, NULL, size);
		return 0;
	}
	/* No room: wait for write-backs, with the bytes kept. */
	w = xcalloc(1, sizeof *w);
	w->f = f;
	w->off = off;
	w->size = size;
	w->done = done;
	w->data = xmalloc(size - done > 0 ? size : 1);
	memcpy(w->data, data, size);
	w->cb = cb;
	w->arg = arg;
	io_file_pin(f);
	TAILQ_INSERT_TAIL(&io.space, w, entry);
	io.st.write_waits++;
	io_wb_kick(); /* a write waiting makes every file go back whole */
	return 0;
}

/* --- a file clean: flush, barrier, leaving, invalidation --- */

/* Wait until f has nothing dirty and nothing in flight; cb then. */
void
io_sync_start(struct io_file *f, bool report, io_done_cb cb, void *arg)
{
	struct io_wait *w = xcalloc(1, sizeof *w);

	w->cb = cb;
	w->arg = arg;
	w->report = report;
	call_caller_save(&w->caller);
	TAILQ_INSERT_TAIL(&f->syncs, w, entry);
	io_file_pin(f);
	io_wb_push(f);
	io_sync_check(f);
	io_file_unpin(f);
}

/*
 * If f is clean, answer everyone waiting for it: those that report get
 * the write-back error, once (as NFS reports it at the next close).
 */
void
io_sync_check(struct io_file *f)
{
	struct io_wait_list done;
	struct io_wait *w;
	struct call_caller was;
	int error;

	if (TAILQ_EMPTY(&f->syncs) || f->wb_frames > 0 || f->sa_frames > 0 ||
	    block_cache_file_dirty(io.bc, f->key) > 0)
		return;
	TAILQ_INIT(&done);
	TAILQ_CONCAT(&done, &f->syncs, entry);
	error = f->error;
	io_file_pin(f);
	while ((w = TAILQ_FIRST(&done)) != NULL) {
		TAILQ_REMOVE(&done, w, entry);
		if (w->report)
			f->error = 0;
		call_caller_save(&was);
		call_caller_restore(&w->caller);
		w->cb(w->arg, w->report ? error : 0, NULL, 0);
		call_caller_restore(&was);
		free(w);
	}
	io_file_unpin(f);
}

/*
 * Write back n's dirty bytes and wait for them; cb gets 0 (a write-back
 * error waits for the next flush or fsync).  Returns 0, and cb runs now
 * if there is nothing to wait for.
 */
int
io_barrier(struct node *n, io_done_cb cb, void *arg)
{
	if (!io_dirty(n)) {
		cb(arg, 0, NULL, 0);
		return 0;
	}
	io_sync_start(n->io, false, cb, arg);
	return 0;
}

/* close(2) of a descriptor of h's file: write back, report any error. */
int
io_flush(struct handle *h, io_done_cb cb, void *arg)
{
	struct io_file *f = io_file_get(h->node);

	/* Then to the other replicas. */
	cluster_flush_wrap(h, false, &cb, &arg);
	io_sync_start(f, true, cb, arg);
	return 0;
}

/* --- leaving --- */

/* Write back every dirty block (SIGTERM: before the daemon exits). */
void
io_drain(void)
{
	io.draining = true;
	io_wb_kick();
}

/* Whether dirty bytes or write-backs remain. */
bool
io_busy(void)
{
	struct block_cache_stats bst;

	if (io.bc == NULL)
		return false;
	block_cache_stats(io.bc, &bst);
	return bst.dirty_bytes > 0 || !TAILQ_EMPTY(&io.dirty);
}

/* --- invalidation --- */

/*
 * n changed elsewhere in [off, off + len) (len 0: to the end): our
 * blocks of it and the kernel's cached data go.  Bytes written here and
 * not written back yet stay: they are newer.
 */
void
io_forget(struct node *n, uint64_t off, uint64_t len)
{
	if (!n->isdir && io.bc != NULL) {
		block_cache_invalidate(io.bc, n->id, off, len);
		/*
		 * Written elsewhere: its size may have changed too, but a
		 * trap can be older than what we know (our own write-back's,
		 * arriving after a truncate), so it says nothing sure.
		 * Reads past the size known go to the holder until fresh
		 * attributes come.
		 */
		if (n->io != NULL &&
		    (len == 0 || off + len > io_file_size(n->io)))
			n->io->size_unsure = true;
	}
	if (n->nlookup > 0)
		notify_inode(n->id, (int64_t)off, (int64_t)len);
}
