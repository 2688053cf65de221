/*
 * datagram.h - the datagrams pufs peers multicast: membership (ANNOUNCE,
 * HEARTBEAT, GOODBYE), location (LOCATE, LOCATED), change notifications
 * (TRAP) and their repair (RESEND).  Structures, encoders and a
 * bounds-checked decoder.  Pure code: no sockets, no clock, no daemon/
 * headers; errors are negative errno values.
 *
 * proto/DATAGRAMS.md is the normative description of the bytes (the
 * TCP frames are proto/PROTOCOL.md).  A datagram is at most DGRAM_MAX
 * bytes so that it never fragments on a 1500-byte-MTU LAN, IPv4 or
 * IPv6; the encoders refuse anything larger, and dgram_encode_traps()
 * packs as many change records as fit and says how many it took.
 *
 * Numbers on the wire are little-endian.  Attributes travel in the
 * 92-byte layout of struct proto_attr, and paths obey proto_path_ok().
 */
#ifndef PUFS_DATAGRAM_H
#define PUFS_DATAGRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define DGRAM_MAGIC 0x44465550u /* "PUFD" little-endian */
#define DGRAM_VERSION 1
#define DGRAM_MAX 1400     /* whole datagram, MAC included */
#define DGRAM_FIXED_LEN 32 /* header before name and uri */
#define DGRAM_MAC_LEN 32   /* HMAC-SHA256 */
/* With DGRAM_FLAG_MAC: the serial (u64), then the MAC, end a datagram. */
#define DGRAM_TRAILER_LEN (8 + DGRAM_MAC_LEN)

/* Header flags. */
#define DGRAM_FLAG_MAC 0x01 /* a DGRAM_TRAILER_LEN trailer follows */

/* ANNOUNCE flags (dgram.aflags). */
#define DGRAM_ANNOUNCE_ANSWER 0x01  /* answers a newcomer: no answer */
#define DGRAM_ANNOUNCE_PARTIAL 0x02 /* not every export fitted */

enum dgram_type {
	DGRAM_ANNOUNCE = 1, /* aflags uptime_ms exports */
	DGRAM_HEARTBEAT,    /* uptime_ms */
	DGRAM_GOODBYE,      /* nothing */
	DGRAM_LOCATE,       /* req_id path */
	DGRAM_LOCATED,      /* req_id path hits */
	DGRAM_TRAP,         /* traps; header seq is this batch's, >= 1 */
	DGRAM_RESEND,       /* target target_boot first last */
	DGRAM_TYPE_MAX
};

/* What a change record says happened. */
enum dgram_kind {
	DGRAM_CREATE = 1, /* path attr: a new entry */
	DGRAM_REMOVE,     /* path: an entry is gone */
	DGRAM_RENAME,     /* path -> export2 path2 */
	DGRAM_ATTR,       /* path attr: attributes changed */
	DGRAM_DATA,       /* path offset length: bytes changed */
	DGRAM_KIND_MAX
};

/* One change in an export, as a TRAP carries it. */
struct dgram_trap {
	uint8_t kind;           /* enum dgram_kind */
	uint32_t export_id;     /* the sender's export id */
	int64_t time;           /* of the change, global ns */
	const char *path;       /* relative to the export root, "" = root */
	uint32_t export2;       /* RENAME: destination export (same peer) */
	const char *path2;      /* RENAME: destination path */
	struct proto_attr attr; /* CREATE, ATTR: after the change */
	uint64_t offset;        /* DATA: first byte changed */
	uint64_t length;        /* DATA: bytes changed, >= 1, no wrap */
};

/* One export of the answering peer that holds a located path. */
struct dgram_hit {
	uint32_t export_id;
	struct proto_attr attr; /* of the object at that path */
};

/*
 * A datagram.  The header fields are used by every type; which body
 * fields a type uses is listed next to the type above; the others are
 * ignored on encode and zero after decode.  Strings are borrowed: after decode
 * they point into the datagram buffer, which must outlive the struct.
 * After decode the exports, hits and traps arrays are owned by the
 * struct (dgram_clear() frees them); for encode they are the caller's.
 */
struct dgram {
	/* header */
	uint8_t type;     /* enum dgram_type */
	uint8_t flags;    /* DGRAM_FLAG_* */
	uint64_t boot_id; /* random per start of the sender */
	uint64_t seq;     /* TRAP: its number; others: the last TRAP's */
	int64_t time;     /* sender's global time at sending, ns */
	const char *name; /* sender's peer name */
	const char *uri;  /* sender's TCP listener, HOST:PORT */

	/* body */
	uint8_t aflags;               /* ANNOUNCE: DGRAM_ANNOUNCE_* */
	uint64_t uptime_ms;           /* ANNOUNCE, HEARTBEAT */
	uint64_t req_id;              /* LOCATE, LOCATED */
	const char *path;             /* LOCATE, LOCATED: union path "/a/b" */
	struct proto_export *exports; /* ANNOUNCE */
	size_t nexports;
	struct dgram_hit *hits; /* LOCATED; 0 hits = not here */
	size_t nhits;
	const char *target;       /* RESEND: name of the peer asked */
	uint64_t target_boot;     /* RESEND: its boot id */
	uint64_t first, last;     /* RESEND: TRAP numbers, 1 <= first <= last */
	struct dgram_trap *traps; /* TRAP: at least one */
	size_t ntraps;

	/* trailer, with DGRAM_FLAG_MAC */
	uint64_t serial;    /* this datagram's number in the boot, >= 1 */
	const uint8_t *mac; /* DGRAM_MAC_LEN bytes; encode: NULL = zeros */
	size_t mac_off;     /* decode: offset of the MAC = bytes covered */
};

/*
 * Encode d into buf (cap bytes; at most DGRAM_MAX are used).  Sets *len
 * and returns 0; -EINVAL when a field breaks its rules; -EMSGSIZE when
 * the datagram would not fit in cap or DGRAM_MAX bytes, with *len then
 * the size it would need (buf may be NULL with cap 0 to measure).
 * With DGRAM_FLAG_MAC the serial and the MAC occupy the last
 * DGRAM_TRAILER_LEN bytes; the caller computes the MAC over the bytes
 * before it (serial included) and stores it in the last DGRAM_MAC_LEN.
 */
int dgram_encode(const struct dgram *d, uint8_t *buf, size_t cap, size_t *len);

/*
 * Encode a TRAP with the header of hdr (its type and body are ignored)
 * and as many of the n records recs[] as fit, in order.  Sets *taken
 * (>= 1) and *len and returns 0.  -EMSGSIZE with *taken 0 when not even
 * recs[0] fits (the caller must drop that record, see DATAGRAMS.md);
 * -EINVAL when the header, n = 0, or a record tried breaks the rules.
 */
int dgram_encode_traps(const struct dgram *hdr, const struct dgram_trap *recs,
    size_t n, uint8_t *buf, size_t cap, size_t *len, size_t *taken);

/*
 * Decode the len-byte datagram at buf into d.  Every length and count is
 * checked, strings must be NUL-terminated without inner NULs and fit
 * their kind, reserved bits must be zero, trailing bytes are an error.
 * Returns 0, -EPROTO, or -ENOMEM; on error d is zeroed.  The MAC, if
 * flagged, is not checked here: see dgram_mac_locate().
 */
int dgram_decode(const uint8_t *buf, size_t len, struct dgram *d);

/*
 * Where the MAC of the len-byte datagram at buf starts: that offset is
 * also the number of bytes it covers (the serial is the 8 before it).  0 and
 * *off set; -ENOENT when the datagram carries no MAC; -EPROTO when it is not a
 * datagram of this version.  Reads the fixed header only, so a receiver can
 * check the MAC before decoding.
 */
int dgram_mac_locate(const uint8_t *buf, size_t len, size_t *off);

/*
 * Free the arrays a decode allocated and reset their pointers and
 * counts; other fields stay.  Only for decoded structures.  Harmless on a
 * zeroed structure or after a failed decode.
 */
void dgram_clear(struct dgram *d);

/* The name of a type for logs ("announce", "trap"; "unknown"). */
const char *dgram_type_name(int type);

/* The name of a change kind for logs ("create", "data"; "unknown"). */
const char *dgram_kind_name(int kind);

#endif
