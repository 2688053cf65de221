/*
 * io-int.h - what the files of the data path share: io.c (handles,
 * open, release, the operations that need the holder's view), io-read.c
 * (reads and read-ahead) and io-write.c (writes and write-behind).  Not
 * for the rest of the daemon, which sees only the io_* functions of
 * fs.h.
 */
#ifndef PUFS_IO_INT_H
#define PUFS_IO_INT_H

#include "cache.h"
#include "fs.h"

/* What a block of the cache is doing (its user word, low bits). */
/*
 * Bytes of WRITE frames in flight, all peers together.  Each is a copy
 * of cached blocks, held once, in the stream's output, until the socket
 * takes it (io_wb_payload()), so this bounds what write-behind adds to
 * cache_size.  With 2 MiB (four frames) a 512 MiB write ran at a
 * median 354 MB/s, with 8 MiB at 393 (bench/data.sh's setup, six runs
 * each, load 8); with 4 or 8 MiB t5024's writer peaks at 75 of the 80
 * MiB it allows.  io_init() takes their room out of the block cache's
 * budget, so that cache_size covers the blocks and their copies alike.
 */
#define IO_WB_BYTES (8u << 20)

#define IO_BLK_IDLE 0u
#define IO_BLK_READ 1u  /* a READ is filling it */
#define IO_BLK_WRITE 2u /* a WRITE carries its ranges back */
#define IO_BLK_OPS 3u
#define IO_BLK_AHEAD 4u /* filled by read-ahead, not read since */

struct io_rd;
struct io_wr;
struct io_wait;
TAILQ_HEAD(io_rd_list, io_rd);
TAILQ_HEAD(io_wr_list, io_wr);
TAILQ_HEAD(io_wait_list, io_wait);

/*
 * The data path's state of one file (node->io): created at its first
 * open, freed when it has no handle, no dirty block and nothing in
 * flight.  Its blocks are keyed by the node's id, never reused, so
 * clean blocks may outlive it and serve the next open if the file is
 * unchanged.
 */
struct io_file {
	struct node *node;  /* holds a ref */
	uint64_t key;       /* the node id: the block cache's file */
	int error;          /* a write-back's failure, for the next flush */
	unsigned wb_frames; /* WRITE frames in flight */
	unsigned sa_frames; /* SETATTRs answered here, the holder's awaited */
	unsigned rd_frames; /* READ frames in flight */
	unsigned pins;      /* callers between two steps: not freed yet */
	bool wb_all;        /* next push writes back partial blocks too */
	bool on_dirty;      /* in io.dirty */
	bool size_unsure;   /* changed elsewhere since attributes came */
	bool kill_suidgid;  /* the next WRITE clears set-ID bits (kernel.c) */
	/* The handle the WRITE frames and SETATTRs in flight went by
	 * (wb_frames or sa_frames > 0); wb_mixed: more than one. */
	struct peer *wb_peer;
	uint64_t wb_fh;
	bool wb_mixed;
	struct timer wb_timer;
	struct io_rd_list reads;   /* reads waiting for blocks */
	struct io_wait_list syncs; /* flushes waiting for the file clean */
	TAILQ_ENTRY(io_file) dentry;
	/* read-ahead */
	uint64_t ra_next;   /* offset where the sequential run goes on */
	uint32_t ra_window; /* blocks asked ahead of the reader */
	uint64_t ra_end;    /* first block not yet asked ahead */
};

TAILQ_HEAD(io_file_list, io_file);

/* A write waiting for room in the cache (its bytes copied). */
struct io_wr {
	struct io_file *f;
	uint64_t off;
	size_t size, done;
	unsigned char *data;
	io_done_cb cb;
	void *arg;
	TAILQ_ENTRY(io_wr) entry;
};

/* A read waiting for its blocks. */
struct io_rd {
	struct io_file *f;
	struct handle *h;
	uint64_t off;
	size_t size;
	io_read_cb cb;
	void *arg;
	int tries;
	bool waited;
	TAILQ_ENTRY(io_rd) entry;
};

/* A caller waiting for a file to have no dirty byte. */
struct io_wait {
	io_done_cb cb;
	void *arg;
	bool report; /* gets the file's write-back error (flush, fsync) */
	struct call_caller caller; /* cb runs as the caller that waits */
	TAILQ_ENTRY(io_wait) entry;
};

/* The data path's shared state. */
struct io_state {
	struct block_cache *bc;
	uint32_t bs;               /* block_size */
	uint64_t pressure;         /* dirty bytes past which all go back */
	struct io_file_list dirty; /* files with dirty blocks */
	struct io_wr_list space;   /* writes waiting for room */
	bool draining;             /* leaving: everything goes back */
	struct io_stats st;
};

extern struct io_state io;

/* io.c */
struct io_file *io_file_get(struct node *);
void io_file_put(struct io_file *);
void io_file_pin(struct io_file *);
void io_file_unpin(struct io_file *);
uint64_t io_file_size(const struct io_file *);
unsigned io_blk_op(const struct block *);
void io_blk_set(struct block *, unsigned op);
struct call *io_call_new(struct handle *, uint8_t type, uint64_t off,
    void (*done)(struct call *), void *arg);
bool io_handle_writes(const struct handle *);

/* io-read.c */
void io_read_wake(struct io_file *);
void io_read_fail_block(struct io_file *, uint64_t index, int error);

/* io-write.c */
void io_inflight_by(struct io_file *, const struct handle *);
void io_wb_push(struct io_file *);
bool io_wb_pressure(void);
void io_wb_kick(void);
void io_wb_timer_cb(struct timer *, void *);
void io_wb_fail(struct io_file *, int error);
void io_sync_check(struct io_file *);
void io_sync_start(struct io_file *, bool report, io_done_cb, void *);

#endif
