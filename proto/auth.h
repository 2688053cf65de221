/*
 * auth.h - the challenge-response that opens a stream when the union has
 * a key (proto/PROTOCOL.md, section 6.1): the AUTH frames, their codec,
 * and the proofs.  Pure code on libcrypto: no I/O, no state.
 *
 * The initiator sends a CHALLENGE (its nonce and name), the acceptor an
 * ANSWER (its nonce and name, and its proof), the initiator a PROOF.
 * A proof is HMAC-SHA-256, under the stream subkey of the secret, of
 * the direction of its sender, both nonces and both names: it proves the
 * secret, answers only this stream's nonces, and cannot be reflected
 * (the other direction's proof differs) or moved to a stream between
 * other names.
 */
#ifndef PUFS_AUTH_H
#define PUFS_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_TYPE 160  /* header type of an AUTH frame */
#define AUTH_VERSION 1 /* of the exchange, in the CHALLENGE */
#define AUTH_NONCE_LEN 32
#define AUTH_MAC_LEN 32 /* HMAC-SHA-256 */
#define AUTH_KEY_LEN 32 /* a subkey */
#define AUTH_FIXED 89   /* header and fixed body, before the name */
#define AUTH_FRAME_MAX (AUTH_FIXED + 255)

/* The labels of the subkeys of the secret. */
#define AUTH_LABEL_STREAM "pufs stream v1"
#define AUTH_LABEL_TLS "pufs tls v1"

enum auth_step {
	AUTH_CHALLENGE = 1, /* initiator: nonce, name */
	AUTH_ANSWER,        /* acceptor (a reply): nonce, name, proof */
	AUTH_PROOF,         /* initiator: proof */
};

struct auth_msg {
	uint8_t step;    /* enum auth_step */
	uint8_t version; /* AUTH_VERSION in a CHALLENGE, else 0 */
	uint32_t error;  /* an errno: the step is a refusal */
	uint8_t nonce[AUTH_NONCE_LEN];
	uint8_t mac[AUTH_MAC_LEN];
	char name[256]; /* "" where the step carries none */
};

/*
 * Encode m into buf (AUTH_FRAME_MAX bytes).  Returns the frame's
 * length, or 0 when m breaks a rule of its step (nothing to send).
 */
size_t auth_encode(const struct auth_msg *m, uint8_t *buf);

/* Decode an AUTH frame of len bytes.  Returns 0, or -EPROTO. */
int auth_decode(const uint8_t *frame, size_t len, struct auth_msg *m);

/* Whether a whole frame (at least 16 bytes) is an AUTH frame. */
bool auth_frame_is_auth(const uint8_t *frame);

/* The subkey of secret for label: HMAC-SHA-256(secret, label). */
void auth_subkey(const uint8_t *secret, size_t len, const char *label,
    uint8_t out[AUTH_KEY_LEN]);

/*
 * The proof of the side by_acceptor under key, over the initiator's
 * nonce and name and the acceptor's.
 */
void auth_proof(const uint8_t key[AUTH_KEY_LEN], bool by_acceptor,
    const uint8_t ni[AUTH_NONCE_LEN], const char *name_i,
    const uint8_t na[AUTH_NONCE_LEN], const char *name_a,
    uint8_t out[AUTH_MAC_LEN]);

/* Whether two proofs are equal, in a time that does not tell where not. */
bool auth_proof_equal(const uint8_t *, const uint8_t *);

#endif /* PUFS_AUTH_H */
