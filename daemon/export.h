/*
 * export.h - the local export backend: serves struct proto_req against
 * directories of this machine, confined beneath each export's root.
 */
#ifndef PUFS_EXPORT_H
#define PUFS_EXPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "proto.h"

struct config_export;

struct export {
	uint32_t id;		/* index in the peer's export list */
	char *name;		/* owned */
	char *path;		/* owned */
	char *at;		/* union path; owned */
	bool read_only;
	int rootfd;		/* O_PATH directory fd of path */
};

/* Memory a served reply points into; freed with export_mem_free(). */
struct export_mem {
	void *data;		/* READ, READLINK, xattr payloads */
	char *names;		/* READDIR name arena */
};

int export_open(struct export *, const struct config_export *, uint32_t id);
void export_close(struct export *);

/*
 * Serve one request synchronously; safe to call from any thread.  Open
 * file handles created here belong to `owner` (0: this daemon's own
 * mount; otherwise a peer stream) and are closed by export_drop_owner().
 */
void export_serve(struct export *exports, uint32_t nexports, uint32_t owner,
    const struct proto_req *, struct proto_rep *, struct export_mem *);
void export_mem_free(struct export_mem *);

/* Close every handle an owner still holds (a peer went away). */
void export_drop_owner(uint32_t owner);

/* The export and path of an open handle (owned copy), or NULL. */
char *export_fh_path(uint64_t fh, uint32_t owner, uint32_t *export_id);

/* watch.c: watch a directory of an export for changes made on disk. */
void watch_add(uint32_t export_id, const char *path, int dirfd);
uint64_t watch_since(uint32_t export_id, const char *path);

/* Listings served whole and as deltas, for status. */
void export_list_stats(uint64_t *full, uint64_t *delta);

/* Number of open file handles, for status. */
unsigned export_open_handles(void);

#endif
