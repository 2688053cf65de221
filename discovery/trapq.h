/*
 * trapq.h - change records on their way out (the sender's batch, with
 * coalescing) and trap sequence numbers on their way in (gap detection).
 * Pure code: no sockets, no clock reads, no daemon/ headers.
 */
#ifndef PUFS_TRAPQ_H
#define PUFS_TRAPQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "datagram.h"

/*
 * The sender's queue.  Records are kept in arrival order; a record for
 * the same (kind, export, path) as one already queued is merged into it
 * instead of queued again: DATA ranges become their span, CREATE and ATTR
 * keep the newest attributes.  So a file written in many small writes
 * costs one DATA record per batch.
 */
struct trapq;

struct trapq_stats {
	uint64_t added;  /* records given to trapq_add() */
	uint64_t merged; /* of those, merged into a queued one */
};

struct trapq *trapq_new(void);
void trapq_free(struct trapq *);

/* Queue a copy of rec (its strings are copied); 0 or -ENOMEM. */
int trapq_add(struct trapq *, const struct dgram_trap *rec);

/* The queued records, oldest first; *n gets their number. */
const struct dgram_trap *trapq_records(const struct trapq *, size_t *n);

/* Remove the n oldest records (sent, or dropped as too large). */
void trapq_consume(struct trapq *, size_t n);

void trapq_stats(const struct trapq *, struct trapq_stats *);

/*
 * The receiver's view of one sender's trap numbers.  Every TRAP carries
 * its number; every other datagram carries the number of the sender's
 * last TRAP.  A number beyond the next expected one means datagrams were
 * lost: the receiver must resynchronise what it holds from that sender.
 */
struct trapq_seq {
	uint64_t boot; /* the sender's boot id; 0: never heard */
	uint64_t last; /* highest number seen */
};

enum trapq_verdict {
	TRAPQ_OK,  /* in order (or an old duplicate) */
	TRAPQ_GAP, /* something was lost: resynchronise */
	TRAPQ_NEW, /* first word from this boot of the sender */
};

/*
 * Account for a datagram from a sender with boot id boot: is_trap says
 * whether it is a TRAP numbered seq, else seq is the sender's last TRAP.
 */
enum trapq_verdict trapq_seq_check(struct trapq_seq *, uint64_t boot,
    bool is_trap, uint64_t seq);

#endif
