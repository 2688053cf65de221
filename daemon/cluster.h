/*
 * cluster.h - replicated directories (cluster.c): the [cluster:NAME]
 * sections of every peer with the same NAME make one replica set.
 *
 * A replica is an export of its peer named CLUSTER_PREFIX NAME (a name
 * no [export:] section can have), announced in HELLO like any other.
 * What the rest of the daemon asks of the set goes through the few
 * functions below, each called from one place: the union shows one
 * copy of each file (cluster_collapse(), cluster_entry()) and a directory
 * made here on every replica in sync (cluster_made_dir()), calls about
 * a file go to a live replica in sync (cluster_route(); while the live
 * ones are not in sync yet, a call waits for one, cluster_wait(), for
 * op_timeout at most), a read whose
 * replica died goes on on another (cluster_failover()), changes are
 * repeated on every live replica before they are answered (the call
 * layer's hold, registered by cluster_start()), every WRITE frame of
 * the write-back goes to every live replica (the call layer's send and
 * answer hooks), and a flush or fsync of a written file syncs them and
 * copies it whole where a frame may be missing (cluster_flush_wrap()).
 */
#ifndef PUFS_CLUSTER_H
#define PUFS_CLUSTER_H

#include "pufs.h"

#define CLUSTER_PREFIX "cluster:"
#define CLUSTER_WAIT 2 /* cluster_route(): no live replica in sync yet */

struct evbuffer;

void cluster_init(struct config *);
void cluster_start(void);
void cluster_free(void);
bool cluster_export(const struct peer *, uint32_t export_id);
int cluster_route(struct node *, uint8_t type, uint32_t flags, struct peer **,
    uint32_t *export_id);
void cluster_wait(struct call *);
struct hit *cluster_collapse(const struct hit *, size_t *n);
void cluster_entry(struct entry *, const char *upath);
bool cluster_literal(const struct node *dir);
struct copy *cluster_made_dir(struct peer *, uint32_t export_id, size_t *n);
int cluster_failover(struct node *, struct peer *failed, int error,
    void (*cb)(void *arg, int error), void *arg);
bool cluster_gone(const struct call *);
bool cluster_write_failover(struct handle *);
void cluster_wrote(struct node *);
void cluster_flush_wrap(struct handle *, bool sync, io_done_cb *, void **arg);
void cluster_served(const struct proto_req *, const struct proto_rep *,
    uint32_t owner);
uint64_t cluster_answer(struct peer *, const struct proto_req *);
void cluster_status(struct evbuffer *, bool json);

#endif
