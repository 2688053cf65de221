/*
 * dgram-auth.h - authenticated datagrams: the MAC a sender puts in the
 * trailer of each datagram, and the checks a receiver makes before it
 * decodes one (MAC, replay window of serials, timestamp window).  Pure
 * code on libcrypto: no sockets, no clock reads (the caller passes its
 * estimate of the union's time), no daemon/ headers.
 *
 * proto/DATAGRAMS.md section 10 is the normative description: the
 * subkey, the layout of the trailer, the windows and the rule for a
 * newcomer's first datagrams.  A struct dgram_auth holds one OpenSSL MAC
 * context: it is not thread-safe.
 */
#ifndef PUFS_DGRAM_AUTH_H
#define PUFS_DGRAM_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DGRAM_AUTH_SUBKEY_LEN 32
/* The label of the datagram subkey: HMAC-SHA256(secret, label). */
#define DGRAM_AUTH_LABEL "pufs datagram v1"
/* A timestamp this far from the receiver's time of the union passes. */
#define DGRAM_AUTH_WINDOW_NS (5 * 1000000000LL)
/* ...and this far, for ANNOUNCE and HEARTBEAT of a boot without stream. */
#define DGRAM_AUTH_FIRST_NS (3600 * 1000000000LL)
/* Boots whose recent serials are kept; the least recent gives way. */
#define DGRAM_AUTH_SENDERS 1024
/* Serials below a boot's highest by this many or more are refused. */
#define DGRAM_AUTH_REORDER 256

enum dgram_auth_verdict {
	DGRAM_AUTH_OK,     /* authentic, fresh, first seen */
	DGRAM_AUTH_FIRST,  /* the same, by the first-contact window */
	DGRAM_AUTH_MAC,    /* no MAC, a wrong one, or not a datagram */
	DGRAM_AUTH_REPLAY, /* serial seen already, or too old */
	DGRAM_AUTH_WINDOW, /* timestamp outside the window */
};

struct dgram_auth_stats {
	uint64_t passed;        /* OK and FIRST */
	uint64_t first_contact; /* of those, FIRST */
	uint64_t mac, replay, window;
	unsigned senders; /* boots whose serials are kept now */
};

struct dgram_auth;

/*
 * Whether the sender of boot boot_id is a newcomer (has no stream with
 * us): its ANNOUNCE and HEARTBEAT then pass the first-contact window.
 */
typedef bool (*dgram_auth_newcomer_cb)(uint64_t boot_id, void *arg);

/*
 * Derive the 32-byte subkey of label from the secret (len bytes):
 * HMAC-SHA256(key = secret, message = label).  0, or -EINVAL.
 */
int dgram_auth_subkey(const unsigned char *secret, size_t len,
    const char *label, unsigned char *out);

/* A context for the secret (len >= 1 bytes); NULL on -ENOMEM. */
struct dgram_auth *dgram_auth_new(const unsigned char *secret, size_t len);
void dgram_auth_free(struct dgram_auth *);

/*
 * Compute the MAC of the len-byte datagram at buf (encoded with
 * DGRAM_FLAG_MAC) over the bytes before it and store it in its last
 * DGRAM_MAC_LEN bytes.  0, or -EINVAL when buf is no such datagram.
 */
int dgram_auth_seal(struct dgram_auth *, uint8_t *buf, size_t len);

/*
 * Judge the len-byte datagram at buf, received when the union's time
 * was now_ns by our estimate.  Reads the fixed header and the trailer
 * only; the verdict is counted.  Only OK and FIRST change the state
 * (the boot's serials), so nothing can be made from a datagram that
 * fails.  newcomer may be NULL (no sender is a newcomer).
 */
enum dgram_auth_verdict dgram_auth_check(struct dgram_auth *,
    const uint8_t *buf, size_t len, int64_t now_ns,
    dgram_auth_newcomer_cb newcomer, void *arg);

void dgram_auth_stats(const struct dgram_auth *, struct dgram_auth_stats *);

/* "ok", "first contact", "bad MAC", "replayed", "outside the window". */
const char *dgram_auth_verdict_name(enum dgram_auth_verdict);

#endif
