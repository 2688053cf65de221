/*
 * export-int.h - what the files of the serving side share: the context
 * (export-context.c, set by export.c), resolving beneath an export's
 * root (beneath.c), the handle table (handle.c), the privilege rules
 * (identity.c) and the operations (serve.c).  The rest of the daemon
 * sees export.h only.
 */
#ifndef PUFS_EXPORT_INT_H
#define PUFS_EXPORT_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "export.h"
#include "proto.h"

/* export-context.c */
/* What the serving side was given; set before the first request. */
extern struct export_ctx export_context;

/* beneath.c */
int beneath_open(const struct export *, const char *path, uint64_t flags);
int beneath_obj(const struct export *, const char *path);
int beneath_dir(const struct export *, const char *path);
int beneath_reopen(int pfd, int flags);
void beneath_procpath(int fd, char *buf, size_t len);

/* handle.c */
/* handle_get: the handle may belong to any export of its owner. */
#define HANDLE_ANY_EXPORT UINT32_MAX

int handle_reserve(uint32_t owner);
void handle_cancel(int slot);
uint64_t handle_new(int slot, int fd, const struct export *, bool writable,
    char *path);
int handle_get(uint64_t fh, uint32_t owner, uint32_t export_id, bool write,
    bool *writable);
void handle_put(uint64_t fh);
int handle_release(uint64_t fh, uint32_t owner);
/* Who hears of every handle that goes (fh 0: all of owner's); any thread. */
void handle_on_gone(void (*)(uint64_t fh, uint32_t owner));

/* identity.c */
bool identity_peer_limited(uint32_t owner);
bool identity_guarded(uint32_t owner);
mode_t identity_mode(uint32_t owner, uint32_t mode);
bool identity_chown_ok(uint32_t owner, uid_t, gid_t);
bool identity_xattr_privileged(const char *name);
int identity_enter(const struct proto_req *);
void identity_leave(void);

/* serve.c: one request's operation; 0 or a negative errno. */
struct stat;
void serve_attr(const struct stat *, struct proto_attr *);
int serve_setattr(struct export *, uint32_t owner, const struct proto_req *,
    struct proto_rep *);
int serve_readdir(struct export *, const struct proto_req *, struct proto_rep *,
    struct export_mem *);
int serve_read(uint32_t owner, const struct proto_req *, struct proto_rep *,
    struct export_mem *);
int serve_write(uint32_t owner, const struct proto_req *, struct proto_rep *);
int serve_open_file(struct export *, uint32_t owner, const struct proto_req *,
    struct proto_rep *);
int serve_make(struct export *, uint32_t owner, const struct proto_req *,
    struct proto_rep *);
int serve_link(struct export *, struct export *, const struct proto_req *,
    struct proto_rep *);
int serve_remove(struct export *, const struct proto_req *, struct proto_rep *);
int serve_rename(struct export *, struct export *, const struct proto_req *);
int serve_replace(struct export *, struct export *, uint32_t owner,
    const struct proto_req *, struct proto_rep *);
int serve_xattr(struct export *, uint32_t owner, const struct proto_req *,
    struct proto_rep *, struct export_mem *);
int serve_fh_op(uint32_t owner, const struct proto_req *, struct proto_rep *);
int serve_changes(struct export *, const struct proto_req *, struct proto_rep *,
    struct export_mem *);
int serve_sums(struct export *, const struct proto_req *, struct proto_rep *,
    struct export_mem *);
int serve_path_op(struct export *, const struct proto_req *, struct proto_rep *,
    struct export_mem *);

#endif
