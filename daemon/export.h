/*
 * export.h - the serving side's face: the local export backend
 * (export.c, with beneath.c, handle.c, identity.c and serve.c behind
 * it), which serves struct proto_req against directories of this
 * machine, confined beneath each export's root, on the disk workers
 * (worker.h), with the journal (journal.h) and the watcher (watch.h).
 *
 * The serving side knows nothing of FUSE, nodes, the union, peers'
 * streams or traps: what it needs of the rest of the daemon is given
 * once, in a struct export_ctx, before the first request.
 */
#ifndef PUFS_EXPORT_H
#define PUFS_EXPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "proto.h"

struct config_export;

struct export
{
	uint32_t id; /* index in the peer's export list */
	char *name;  /* owned */
	char *path;  /* owned */
	char *at;    /* union path; owned */
	bool read_only;
	int rootfd; /* O_PATH directory fd of path */
};

/*
 * The serving side's context, filled by the daemon (main.c) and given
 * to export_init() and watch_init(), which copy it.  Nothing in it
 * changes after.
 */
struct export_ctx {
	struct export *exports; /* this peer's, id == index; not owned */
	uint32_t nexports;
	uint64_t boot_id;     /* ours; checkpoints name it */
	uint32_t max_handles; /* open handles per peer (owner other than 0) */
	bool identity_caller; /* [security] identity = caller */
	bool root_squash;     /* with it, uid 0 acts as nobody */
	/* The union's global clock in ns, for checkpoints; any thread. */
	uint64_t (*global_ns)(void);
	/*
	 * The change sink, on the loop thread: an entry of a watched
	 * directory changed on disk (kind: enum dgram_kind of
	 * discovery/datagram.h), or changes were lost (inotify overflow).
	 */
	void (*disk_change)(uint8_t kind, uint32_t export_id, const char *path);
	void (*disk_lost)(void);
};

void export_init(const struct export_ctx *);

/* Memory a served reply points into; freed with export_mem_free(). */
struct export_mem {
	void *data;  /* READ, READLINK, xattr payloads */
	char *names; /* READDIR name arena */
	size_t head; /* > 0: the payload is at data + head, room for the
			frame's head before it (proto_rep_data_at()) */
};

int export_open(struct export *, const struct config_export *, uint32_t id);
void export_close(struct export *);

/*
 * Serve one request on the context's exports synchronously; safe to
 * call from any thread.  Open
 * file handles created here belong to `owner` (0: this daemon's own
 * mount; otherwise a peer stream) and are closed by export_drop_owner().
 */
void export_serve(uint32_t owner, const struct proto_req *, struct proto_rep *,
    struct export_mem *);

/*
 * The worker key of a request (struct work): WRITEs through one handle
 * are served one at a time, in order; handles are unique in the daemon.
 */
static inline uint64_t
export_serve_key(const struct proto_req *r)
{
	return r->type == PROTO_WRITE ? r->fh : 0;
}

void export_mem_free(struct export_mem *);

/*
 * The supplementary groups of process pid (identity.c): up to max into
 * groups; their number, or -1 if the process is gone.
 */
int identity_groups(uint32_t pid, uint32_t *groups, uint32_t max);

/* Close every handle an owner still holds (a peer went away). */
void export_drop_owner(uint32_t owner);

/* The export and path of an open handle (owned copy), or NULL. */
char *export_fh_path(uint64_t fh, uint32_t owner, uint32_t *export_id);

/* Listings served whole and as deltas, for status. */
void export_list_stats(uint64_t *full, uint64_t *delta);

/* Number of open file handles, for status. */
unsigned export_open_handles(void);

#endif
