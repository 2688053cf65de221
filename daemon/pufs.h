/*
 * pufs.h - the daemon's private header, one section per file.
 *
 * The daemon is one event loop (loop.c) that multiplexes the FUSE channel
 * (fs.c), the control socket (control.c) and, through calls (call.c),
 * the holders of exported objects: this peer's own exports, served on
 * worker threads (export.c, worker.c), and later the peers' streams.
 * The union namespace (union.c) turns kernel requests into calls to the
 * holders that have the objects and merges their answers; node.c keeps
 * the inodes the kernel knows.  io.c is the one place file data passes.
 * Membership, traps, the global clock and location requests are the
 * discovery layer below (discovery/discovery.h); main.c wires it in.
 */
#ifndef PUFS_PUFS_H
#define PUFS_PUFS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "cache.h"
#include "config.h"
#include "discovery.h"
#include "export.h"
#include "journal.h"
#include "latency.h"
#include "log.h"
#include "loop.h"
#include "proto.h"
#include "watch.h"
#include "worker.h"

struct event_base;
struct seed;
struct sockaddr;

/* dircache.c */

struct lent {
	char *name; /* owned */
	struct proto_attr attr;
	bool stale; /* a trap said its attributes changed */
};

/* One holder's listing of one directory, with its checkpoint. */
struct listing {
	uint64_t boot;     /* the holder's boot id */
	uint64_t seq;      /* checkpoint: change number */
	uint64_t gtime;    /* checkpoint: global time, ns */
	uint64_t names_ms; /* wheel time its names are exact till */
	uint64_t moved_ms; /* wheel time till which a miss is asked (hot) */
	uint64_t attrs_ms; /* wheel time its attributes are fresh till */
	bool some_stale;   /* an entry is stale (lent.stale) */
	struct lent *ents; /* sorted by name; owned */
	size_t n, cap;
	size_t name_bytes; /* of the names, with their NULs */
};

struct meta_cache_stats;
void dircache_init(const struct config *);
void dircache_free(void);
struct listing *dircache_get(struct peer *, uint32_t export_id,
    const char *path, bool *stale);
struct listing *dircache_store(struct peer *, uint32_t export_id,
    const char *path, const struct proto_rep *, bool *own);
void listing_free(struct listing *);
const struct lent *listing_find(const struct listing *, const char *name);
void dircache_merge(struct listing *, const struct proto_dirent *,
    size_t nents);
void dircache_stale(struct peer *, uint32_t export_id, const char *path);
void dircache_update(struct peer *, uint32_t export_id, const char *path,
    const struct proto_attr *);
void dircache_set(struct peer *, uint32_t export_id, const char *dir,
    const char *name, const struct proto_attr *);
void dircache_unlinked(struct peer *, uint32_t export_id, const char *dir,
    const char *name, const struct proto_attr *left);
void dircache_changed(struct peer *, uint32_t export_id, const char *path);
bool dircache_attr_older(const struct proto_attr *, const struct proto_attr *);
void dircache_dir_attr_set(struct peer *, uint32_t export_id, const char *path,
    const struct proto_attr *);
bool dircache_dir_attr(struct peer *, uint32_t export_id, const char *path,
    struct proto_attr *);
bool dircache_trap(struct peer *, uint32_t export_id, uint8_t kind,
    const char *path);
void dircache_empty(struct peer *, uint32_t export_id, const char *path);
void dircache_expect(struct peer *, const struct proto_req *);
void dircache_expected(struct peer *, const struct proto_req *, bool done);
bool dircache_names_fresh(const struct listing *);
bool dircache_ent_fresh(const struct listing *, const struct lent *);
bool dircache_miss_sure(const struct listing *);
void dircache_drop_below(struct peer *, uint32_t export_id, const char *dir,
    const char *name);
void dircache_renamed(struct peer *, uint32_t export_id, const char *dir,
    const char *name, uint32_t export2, const char *dir2, const char *name2,
    unsigned flags);
void dircache_drop_peer(struct peer *);
void dircache_stats(struct meta_cache_stats *);

/* stream.c */

struct call;

/*
 * What the transport needs of the layer above it (call.c), which it does
 * not call: a reply for a call in its table, the failure of one, a page
 * of a paged READDIR answer (0, or -EPROTO: the stream then fails the
 * call), a reply that matches no call (late), and a request of the other
 * side served by our exports, for owner.
 */
struct stream_client {
	void (*done)(struct call *, struct proto_rep *);
	void (*fail)(struct call *, int error);
	int (*page)(struct call *, const struct proto_rep *);
	void (*late)(struct peer *, const struct proto_rep *);
	void (*served)(const struct proto_req *, const struct proto_rep *,
	    uint32_t owner);
};

void stream_init(const struct stream_client *);
/* answer.c: who answers a peer's CLUSTER request (its state, value). */
typedef uint64_t (*answer_cluster_fn)(struct peer *, const struct proto_req *);
void answer_on_cluster(answer_cluster_fn);
uint64_t stream_new_id(void);
int stream_listen(const struct sockaddr *, int);
struct stream *stream_connect(const struct sockaddr *, int, const char *,
    struct seed *);
void stream_close(struct stream *, const char *reason);
int stream_send_call(struct stream *, struct call *);
void *stream_frame_buf(size_t);
void stream_cancel_call(struct stream *, struct call *);
void stream_leave_all(void);
bool stream_outbound(const struct stream *);
void stream_probe(struct stream *, const char *why);
void stream_retire(struct stream *);
bool stream_may_dial(void);
uint64_t stream_started(const struct stream *);
uint64_t stream_up_since(const struct stream *);
unsigned stream_calls(const struct stream *);
uint64_t stream_caps(const struct stream *);
const char *stream_tls_cipher(const struct stream *);
struct evbuffer;
void stream_status(struct evbuffer *, bool json);

/* call.c */

/*
 * A call: one request to one holder (a peer's export) and its reply.
 * The caller fills req and sends; cb runs once on the loop thread with
 * rep filled (rep.error ETIMEDOUT after op_timeout).  The call belongs
 * to the call layer: cb must copy what it needs and never free it.
 */
/*
 * Whose request the loop is working on, for `identity = caller`: the
 * process of a FUSE request, whose credentials every call made for it
 * carries (proto_type_cred() types only); its groups are read when the
 * first such call is made.  cred.set false: nobody's (pufs's own work).
 */
struct call_caller {
	struct proto_cred cred;
	uint32_t pid; /* whose groups to read */
	bool groups;  /* cred.groups read */
};

struct call {
	struct proto_req req;
	struct proto_rep rep;
	struct peer *peer;
	void (*cb)(struct call *);
	void *arg;
	unsigned idx;     /* caller's slot number, for gathers */
	uint64_t sent_us; /* loop_mono_us() at call_send(), for latency */
	bool nohold;      /* its answer is not held (call_hold_answers()) */

	/* private */
	char *strs[4];    /* owned copies of path, name, path2, name2 */
	void *data;       /* owned copy of req.data */
	size_t data_head; /* req.data is data + data_head (call_frame_data()) */
	struct export_mem mem;
	struct proto_rep wrep; /* written by the transport */
	struct work work;
	struct timer timer;
	bool finished;               /* cb has run */
	bool in_transport;           /* a worker or stream still holds it */
	bool paged;                  /* pages of a READDIR answer are in wrep */
	size_t arena_len, arena_cap; /* their names, in mem.names */
	struct stream *stream;    /* the stream whose table holds it, or NULL */
	TAILQ_ENTRY(call) tentry; /* a stream's table of waiting calls */
	struct call_caller caller; /* whose; its callback runs as theirs */
};

struct call *call_new(struct peer *, uint8_t type, uint32_t export_id,
    const char *path, void (*cb)(struct call *), void *arg);
void call_set_name(struct call *, const char *name);
void call_set_dest(struct call *, uint32_t export2, const char *path2,
    const char *name2);
void call_set_data(struct call *, const void *, size_t);
void *call_data_buf(struct call *, size_t);
void *call_frame_data(struct call *, size_t);
void call_send(struct call *);
void call_untimed(struct call *);
unsigned call_inflight(void);

/*
 * The caller of what the loop does now: set as a FUSE request starts
 * (call_set_caller(), with identity = caller), kept by each call and made
 * current again while its callback runs, so calls made in the callback
 * are that caller's too.  Work that waits other than on a call of its
 * own keeps its caller (call_caller_save()) and makes it current again
 * (call_caller_restore(); NULL: nobody's) before it goes on.
 */
void call_set_caller(uint32_t uid, uint32_t gid, uint32_t pid);
void call_caller_save(struct call_caller *);
void call_caller_restore(const struct call_caller *);
extern const struct stream_client call_transport;

/* Observers: of answers without an error, of requests we served. */
typedef void (*call_answer_fn)(const struct call *);
typedef void (*call_served_fn)(const struct proto_req *,
    const struct proto_rep *, uint32_t owner);
void call_observe_answers(call_answer_fn);
void call_observe_served(call_served_fn);
typedef bool (*call_hold_fn)(struct call *);
void call_hold_answers(call_hold_fn);
void call_hold_sends(call_hold_fn);
void call_resume(struct call *);

/* inval.c: what changes mean for the caches (trap sink, answers). */

extern const struct trap_sink inval_sink;
void inval_answered(const struct call *);

/* node.c */

/* A place where a directory exists: one export of one peer. */
struct copy {
	struct peer *peer;
	uint32_t export_id;
};

struct handle;
TAILQ_HEAD(handle_list, handle);

/*
 * An inode the kernel knows.  Its union path is derived from the parent
 * chain, so renaming a directory moves its whole subtree for free.
 */
struct node {
	uint64_t id;         /* FUSE nodeid, never reused */
	uint64_t nlookup;    /* kernel references */
	unsigned refs;       /* children, handles, requests in flight */
	struct node *parent; /* holds a ref; NULL for the root */
	char *name;          /* as the kernel knows it; owned */
	size_t baselen;      /* length of name without "@URI" */
	struct peer *pin;    /* addressed as NAME@URI, or NULL */
	bool isdir;
	bool isvirtual; /* directory made by grafting only */
	bool linked;    /* in the (parent, name) index */

	/* non-directory: the holder */
	struct peer *peer;
	uint32_t export_id;

	/* directory: where it exists, primary (attribute source) first */
	struct copy *copies; /* owned */
	size_t ncopies;
	uint64_t listed;    /* dir.c: hash of the listing the kernel keeps */
	uint64_t listed_ms; /* dir.c: loop_now_ms() the kernel read it */
	bool held;          /* dir.c: its hold is queued */
	uint64_t forgets;   /* fs.c: times the kernel was told to forget its
			     * entries, for lookups answered after one */

	struct proto_attr attr; /* last seen, of the primary */
	uint64_t ino;           /* st_ino shown */
	uint64_t placed_ms;     /* loop_now_ms() of the last union_node() */

	struct handle_list handles; /* open files of this node */

	/* Its extended attributes' names, cached for attr_timeout. */
	char *xattrs; /* NUL-separated, as listxattr; owned */
	size_t xattrs_len;
	int xattrs_error; /* LISTXATTR's failure, negative errno */
	bool xattrs_known;
	uint64_t xattrs_until; /* loop_now_ms() */

	/* The data path's state of this file (io-file.c), or NULL. */
	struct io_file *io;
	/* End of the bytes written here (io-cache.c): the size shown if
	 * the holder's is smaller (its copy has not caught up yet). */
	uint64_t wsize;

	/* Attributes given to the kernel while bytes were not written back. */
	bool attr_early;
	/* What the kernel's page cache of this file was filled from. */
	bool data_seen;
	struct proto_time data_mtime;
	uint64_t data_size;

	struct node *hnext_id, *hnext_name; /* hash chains */
	struct node *hnext_ino; /* chained by ino (node_set_ino()) */
};

void node_init(void);
void node_free_all(void);
struct node *node_root(void);
struct node *node_get(uint64_t id);
struct node *node_child(struct node *parent, const char *name);
struct node *node_new(struct node *parent, const char *name);
void node_unlink(struct node *);
void node_move(struct node *, struct node *newparent, const char *newname);
void node_ref(struct node *);
void node_unref(struct node *);
void node_forget(struct node *, uint64_t nlookup);
char *node_path(const struct node *); /* union path, xmalloc'd */
char *node_child_path(const struct node *dir, const char *name);
void node_set_copies(struct node *, const struct copy *, size_t);
size_t node_count(void);
void node_foreach(void (*)(struct node *, void *), void *);
void node_set_ino(struct node *, uint64_t ino);
void node_foreach_name(const struct node *like, void (*)(struct node *, void *),
    void *);
bool node_other_name(const struct node *, const struct node *like);
bool node_unnamed(const struct node *);
uint64_t node_ino_hash(const char *peer, uint64_t dev, uint64_t ino);
int node_split_name(const char *name, struct peer **pin, size_t *baselen);

/* union.c */

/* One object found under a name, by one holder. */
struct hit {
	struct peer *peer;
	uint32_t export_id;
	struct proto_attr attr;
	bool graft; /* the export's root, grafted at this path */
};

/* What a name in a merged directory resolves to. */
struct entry {
	char *name; /* shown name, maybe with "@URI"; owned */
	bool isdir, isvirtual;
	struct peer *peer; /* non-directory holder */
	uint32_t export_id;
	struct copy *copies; /* directory copies; owned */
	size_t ncopies;
	struct proto_attr attr; /* primary's, or synthesised */
	uint64_t ino;
};

void entry_clear(struct entry *);
struct copy *union_copies(struct node *dir, size_t *n);
char *union_relpath(const struct export *, const char *upath);
char *union_path_of(const struct export *, const char *relpath);
const struct export *union_export(const struct peer *, uint32_t id);
void union_virtual_attr(const char *upath, struct proto_attr *);
bool union_has_virtual_below(const char *upath);

/*
 * Resolve name in a directory node: ask every copy of the parent (and
 * every export grafted there) and merge by the union's rules.  cb gets
 * 0 and the entry, or a negative errno.
 */
typedef void (*union_resolve_cb)(void *arg, int error, struct entry *);
void union_resolve(struct node *dir, const char *name, union_resolve_cb,
    void *arg);
void union_resolve_asked(struct node *dir, const char *name, union_resolve_cb,
    void *arg);
void union_resolve_holders(struct node *dir, const char *name, union_resolve_cb,
    void *arg);
/* Whether-a-name-is-free checks (before a create or a link), for status. */
struct union_check_stats {
	uint64_t done;  /* checks made */
	uint64_t local; /* answered from cached listings, no call */
	uint64_t calls; /* holders asked (STAT or LOCATE asks) */
};
void union_check_stats(struct union_check_stats *);
void union_resolve_any(struct node *dir, const char *base, union_resolve_cb,
    void *arg);

/* List a directory node: every shown name with its entry. */
typedef void (*union_list_cb)(void *arg, int error, struct entry *, size_t);
void union_list(struct node *dir, union_list_cb, void *arg);

/* The node for an entry under dir (found or made, attrs refreshed). */
struct node *union_node(struct node *dir, struct entry *);
void union_rekey(struct node *);
bool union_split(struct node *, uint64_t ino);
uint64_t union_file_ino(const struct peer *, const struct proto_attr *);

/* gather.c */

/* A hit tagged with the base name it was found under (listing). */
struct named_hit {
	const char *name; /* owned by the gather's arena list */
	struct hit hit;
};

/* One resolve or listing in flight: its calls out, the hits they bring. */
struct gather {
	struct node *dir; /* holds a ref */
	char *path;       /* the directory's union path */
	char *base;       /* resolve: base name; NULL when listing */
	char *shown;      /* resolve: the name asked for */
	struct peer *pin; /* resolve: NAME@URI's peer */
	bool any;         /* resolve: does any holder have it at all? */
	bool holders;     /* resolve: who holds it; old attributes do */
	unsigned pending;
	int error; /* first error not ENOENT, negative errno */
	struct named_hit *hits;
	size_t nhits, cap;
	char **names; /* listing: owned name copies */
	size_t nnames, capnames;
	void (*done)(struct gather *); /* the last answer is in */
	union_resolve_cb rcb;
	union_list_cb lcb;
	void *arg;
	struct locate *loc;        /* resolve: a LOCATE being gathered */
	struct call_caller caller; /* done runs as the caller that asked */
};

struct gather *gather_new(struct node *dir);
void gather_free(struct gather *);
void gather_add(struct gather *, const char *name, struct peer *,
    uint32_t export_id, const struct proto_attr *, bool graft);
const char *gather_name(struct gather *, const char *name);
void gather_listing(struct gather *, struct peer *, uint32_t export_id,
    const struct listing *);
void gather_readdir(struct gather *, struct peer *, uint32_t export_id,
    const char *rel, const struct listing *base);
void gather_call(struct gather *, struct peer *, uint32_t export_id,
    uint8_t type, const char *relpath, bool graft, void (*)(struct call *));
void gather_stat_cb(struct call *);
void gather_step(struct gather *);

/* find.c: location requests (multicast), with discovery/locate.c */
struct locate_stats {
	uint64_t sent;      /* LOCATE datagrams we sent */
	uint64_t answers;   /* LOCATED answers taken */
	uint64_t late;      /* answers after the window */
	uint64_t fallbacks; /* peers asked over TCP after the window */
	uint64_t served;    /* LOCATEs we answered */
};
void find_ask(struct gather *, struct peer *, uint32_t export_id,
    const char *rel, bool graft);
void find_send(struct gather *, const char *upath);
void find_located(struct peer *, uint64_t id, const uint32_t *exports,
    const struct proto_attr *attrs, size_t n);
void find_local(const char *upath, locate_found_cb, void *arg);
void find_stats(struct locate_stats *);

/* fs.c */

int fs_mount(const struct config *);
void fs_stop(void);
void fs_throttle(bool);
void fs_forget_data(struct node *, uint64_t off, uint64_t len);
void fs_forget_attr(struct node *);
void fs_forget_entry(struct node *dir, const char *name);
void fs_forget_listing(struct node *dir);
void fs_forget_absent(struct node *dir, const char *name);
void fs_unmount(void);
void fs_free(void);
void fs_stats(unsigned long *requests, unsigned long *inflight);
unsigned long kernel_op_count(int, const char **);
int kernel_nops(void);

/*
 * io.c, io-read.c, io-write.c: the data path.  Reads and writes go
 * through the block cache (cache/block-cache.c): writes return once their
 * bytes are in it and go to the holder behind (write-behind), reads are
 * answered from it and fetched ahead of a sequential reader.
 */

struct io_file;

struct handle {
	struct node *node; /* holds a ref */
	struct peer *peer;
	uint64_t epoch; /* the peer's stream it was opened on */
	uint32_t export_id;
	uint64_t fh; /* the holder's handle */
	int flags;
	bool closing; /* released by the kernel; waits for write-back */
	bool made;    /* the CREATE that made the file gave it */
	TAILQ_ENTRY(handle) nentry; /* node->handles */
};

/* Locks granted to our mount (lock.c, `pufs status`). */
struct lock_stats {
	uint64_t granted;  /* SETLK and flock locks granted */
	uint64_t kept;     /* of which kept the file's caches: unchanged */
	uint64_t local;    /* lock requests decided here, under a lease */
	uint64_t borrowed; /* leases taken from holders */
	uint64_t returned; /* of which given back */
};

void lock_stats(struct lock_stats *);

/* The data path's counters (`pufs status`). */
struct io_stats {
	uint64_t written_back;   /* bytes written to holders from the cache */
	uint64_t wb_frames;      /* WRITE frames that carried them */
	uint64_t wb_errors;      /* write-backs that failed */
	uint64_t ra_hits;        /* blocks fetched ahead, then read */
	uint64_t ra_misses;      /* blocks a reader had to wait for */
	uint64_t read_hits;      /* reads answered from the cache at once */
	uint64_t read_misses;    /* reads that waited for the holder */
	uint64_t read_bypass;    /* reads sent past the cache (no room) */
	uint64_t write_waits;    /* writes that waited for room */
	uint64_t fsync_behind;   /* FSYNCs sent right behind their WRITEs */
	uint64_t fsync_after;    /* FSYNCs sent once the WRITEs were answered */
	uint64_t setattr_behind; /* SETATTRs sent right behind their WRITEs */
	uint64_t setattr_deferred; /* of those, answered before the holder */
};

/*
 * Callbacks get 0 or a negative errno; a function that returns an error
 * never calls its callback.
 */
typedef void (*io_done_cb)(void *arg, int error, const void *data, size_t len);
typedef void (
    *io_read_cb)(void *arg, int error, const struct iovec *, int iovcnt);
typedef void (
    *io_open_cb)(void *arg, int error, struct handle *, bool keep_cache);
typedef void (*io_attr_cb)(void *arg, int error, const struct proto_attr *);
void io_init(const struct config *);
void io_free(void);
void io_stats(struct io_stats *, struct block_cache_stats *);
bool io_handle_live(const struct handle *);
struct handle *io_handle_any(struct node *);
int io_open(struct node *, int flags, io_open_cb, void *);
struct handle *io_created(struct node *, struct call *, int flags);
void io_release(struct handle *);
int io_read(struct handle *, uint64_t off, size_t size, io_read_cb, void *);
int io_write(struct handle *, uint64_t off, const void *data, size_t size,
    io_done_cb, void *);
int io_flush(struct handle *, io_done_cb, void *);
int io_fsync(struct handle *, bool datasync, io_done_cb, void *);
int io_barrier(struct node *, io_done_cb, void *);
bool io_dirty(const struct node *);
bool io_attr_pending(const struct node *);
void io_attr_seen(struct node *, const struct proto_attr *);
void io_drain(void);
bool io_busy(void);
int io_fallocate(struct handle *, int mode, uint64_t off, uint64_t len,
    io_done_cb, void *);
int io_lseek(struct handle *, uint64_t off, int whence, io_done_cb, void *);
int io_copy_range(struct handle *in, uint64_t off_in, struct handle *out,
    uint64_t off_out, size_t len, io_done_cb, void *);
int io_setattr(struct node *, struct handle *, const struct proto_req *set,
    io_attr_cb, void *);
void io_forget(struct node *, uint64_t off, uint64_t len);
bool io_data_echo(const struct node *, uint64_t off, uint64_t len);
void io_forget_all(struct node *);
void io_links_changed(struct node *, const struct proto_attr *);

/* move.c: rename(2) of a file or symlink onto another peer's name. */

#define MOVE_PREFIX ".pufs-move." /* temporary copies, never shown */

struct move_spec {
	struct peer *speer, *dpeer; /* source's, destination's holder */
	uint32_t sexport, dexport;
	char *sdir, *sname;     /* in the source's export; copied */
	char *ddir, *dname;     /* in the destination's; copied */
	struct proto_attr attr; /* the source's */
	bool copy; /* cluster.c: a copy, the source stays; its calls are
		    * not repeated on other replicas */
};

typedef void (*move_done_cb)(void *arg, int error);
void move_start(const struct move_spec *, move_done_cb, void *arg);
bool move_hidden(const char *name);
void move_stats(uint64_t *moves, uint64_t *bytes, uint64_t *failed);
void move_clone(struct peer *, uint32_t export_id, const char *path,
    const mode_t *modes, size_t n, move_done_cb, void *arg);

/* patch.c: a replica's file made equal to another's, block by block. */

#define PATCH_WHOLE 1 /* patch_start(): copy it whole instead */

struct patch_stats {
	uint64_t started, same, patched; /* files */
	uint64_t bytes;                  /* written into patched ones */
};

typedef void (*patch_done_cb)(void *arg, int result, uint64_t moved);
void patch_start(struct peer *sp, uint32_t sx, struct peer *dp, uint32_t dx,
    const char *rel, const struct proto_attr *want, patch_done_cb, void *arg);
void patch_stats(struct patch_stats *);

/* control.c */

int control_init(const struct config *);
void control_close(void);

/* metrics.c: GET /metrics, with [peer] metrics. */
int metrics_init(const struct config *);
void metrics_close(void);

/* service.c: readiness, and systemd's notify socket. */
void service_init(void);
void service_mounted(void);
void service_stopping(void);
const char *service_not_ready(void);
void service_close(void);

/* status.c */

int status_main(int argc, char **argv);
int status_debug_main(int argc, char **argv);

/* keygen.c */

int keygen_main(int argc, char **argv);

/* where.c */
int where_main(int argc, char **argv);

#endif
