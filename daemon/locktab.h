/*
 * locktab.h - the locks this peer holds on its exports' files for the
 * union (locktab.c): the serving side of GETLK, SETLK and LKCANCEL, for
 * our own mount (owner 0) and for every peer's stream alike.
 */
#ifndef PUFS_LOCKTAB_H
#define PUFS_LOCKTAB_H

#include <stdbool.h>
#include <stdint.h>

#include "proto.h"

/* Once, on the loop, before the first request: the wake-ups it needs. */
void locktab_init(void);
void locktab_free(void);

/* Whether a request type is served here rather than by export_serve(). */
bool locktab_type(uint8_t type);

/*
 * Serve lock request r for owner (0: our mount; else a stream): the
 * answer is written into *rep and done(arg) runs once, on the loop,
 * never from inside this call.  r is copied; a SETLK that waits
 * (PROTO_LK_WAIT) is answered when granted or cancelled, or when its
 * handle is gone, however long that takes.
 */
void locktab_serve(uint32_t owner, const struct proto_req *r,
    struct proto_rep *rep, void (*done)(void *arg), void *arg);

/*
 * On the loop, after request r was served for owner on our exports
 * with answer rep: count it if it changed a locked file's data (the
 * change numbers a granted SETLK carries, locktab.c).
 */
void locktab_note(const struct proto_req *r, const struct proto_rep *rep,
    uint32_t owner);

/* The lock requests served here (`pufs status`). */
struct locktab_stats {
	uint64_t served;   /* GETLK and SETLK, for peers and our mount */
	uint64_t lent;     /* leases lent */
	uint64_t recalled; /* of which wanted back */
};

void locktab_stats(struct locktab_stats *);

/* Leaving: answer every waiter EIO, and the leases' LEASE requests. */
void locktab_leave(void);

#endif
