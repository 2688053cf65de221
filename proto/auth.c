/*
 * auth.c - the AUTH frames of a keyed stream and their proofs (auth.h,
 * proto/PROTOCOL.md section 6.1).
 *
 * Layout after the 16-byte header (type AUTH_TYPE, id 0, the reply flag
 * on the acceptor's ANSWER only): u8 step, u8 version, u16 reserved,
 * u32 error, nonce, proof, u8 name length, name.  Each step carries only
 * its own fields; the others MUST be zero, so that a frame has one
 * meaning.
 */
#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth.h"
#include "proto.h"
#include "wire.h"

#define AUTH_MAX_ERRNO 4095

/* What a step carries. */
enum {
	AUTH_F_VERSION = 1 << 0,
	AUTH_F_NONCE = 1 << 1,
	AUTH_F_MAC = 1 << 2,
	AUTH_F_NAME = 1 << 3,
};

/* The fields of step (a refusal carries none), or -1 if no such step. */
static int
auth_fields(uint8_t step, uint32_t error)
{
	switch (step) {
	case AUTH_CHALLENGE:
		return AUTH_F_VERSION | AUTH_F_NONCE | AUTH_F_NAME;
	case AUTH_ANSWER:
	case AUTH_PROOF:
		if (error != 0)
			return 0;
		return step == AUTH_ANSWER
		    ? AUTH_F_NONCE | AUTH_F_MAC | AUTH_F_NAME
		    : AUTH_F_MAC;
	default:
		return -1;
	}
}

/* Whether n bytes at p are all zero. */
static bool
auth_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	while (n-- > 0)
		acc |= *p++;
	return acc == 0;
}

/* Whether m keeps the rules of its step. */
static bool
auth_valid(const struct auth_msg *m)
{
	int f = auth_fields(m->step, m->error);

	if (f < 0 || m->error > AUTH_MAX_ERRNO)
		return false;
	if (m->step == AUTH_CHALLENGE && m->error != 0)
		return false; /* the initiator refuses with a PROOF */
	if ((f & AUTH_F_VERSION) ? m->version == 0 : m->version != 0)
		return false;
	if (!(f & AUTH_F_NONCE) && !auth_zero(m->nonce, AUTH_NONCE_LEN))
		return false;
	if (!(f & AUTH_F_MAC) && !auth_zero(m->mac, AUTH_MAC_LEN))
		return false;
	if (f & AUTH_F_NAME)
		return proto_peer_name_ok(m->name);
	return m->name[0] == '\0';
}

/* Encode m into buf; its length, or 0 if m breaks its step's rules. */
size_t
auth_encode(const struct auth_msg *m, uint8_t *buf)
{
	size_t nlen, len;

	if (!auth_valid(m))
		return 0;
	nlen = strlen(m->name);
	len = AUTH_FIXED + nlen;
	memset(buf, 0, AUTH_FIXED);
	wire_put_le(buf, len, 4);
	buf[4] = AUTH_TYPE;
	buf[5] = m->step == AUTH_ANSWER ? PROTO_FLAG_REPLY : 0;
	buf[16] = m->step;
	buf[17] = m->version;
	wire_put_le(buf + 20, m->error, 4);
	memcpy(buf + 24, m->nonce, AUTH_NONCE_LEN);
	memcpy(buf + 24 + AUTH_NONCE_LEN, m->mac, AUTH_MAC_LEN);
	buf[AUTH_FIXED - 1] = (uint8_t)nlen;
	memcpy(buf + AUTH_FIXED, m->name, nlen);
	return len;
}

/* Decode and check an AUTH frame of len bytes: 0, or -EPROTO. */
int
auth_decode(const uint8_t *f, size_t len, struct auth_msg *m)
{
	size_t nlen;

	memset(m, 0, sizeof *m);
	if (len < AUTH_FIXED || len > AUTH_FRAME_MAX ||
	    wire_get_le(f, 4) != len || f[4] != AUTH_TYPE ||
	    wire_get_le(f + 6, 2) != 0 || wire_get_le(f + 8, 8) != 0 ||
	    wire_get_le(f + 18, 2) != 0)
		return -EPROTO;
	nlen = f[AUTH_FIXED - 1];
	if (len != AUTH_FIXED + nlen || memchr(f + AUTH_FIXED, 0, nlen))
		return -EPROTO;
	m->step = f[16];
	m->version = f[17];
	m->error = (uint32_t)wire_get_le(f + 20, 4);
	memcpy(m->nonce, f + 24, AUTH_NONCE_LEN);
	memcpy(m->mac, f + 24 + AUTH_NONCE_LEN, AUTH_MAC_LEN);
	memcpy(m->name, f + AUTH_FIXED, nlen);
	/* Only the acceptor's ANSWER is a reply. */
	if (f[5] != (m->step == AUTH_ANSWER ? PROTO_FLAG_REPLY : 0) ||
	    !auth_valid(m))
		return -EPROTO;
	return 0;
}

/* Whether the header's type (offset 4) is AUTH_TYPE. */
bool
auth_frame_is_auth(const uint8_t *frame)
{
	return frame[4] == AUTH_TYPE;
}

/* HMAC-SHA-256(secret, label): the subkey for one use. */
void
auth_subkey(const uint8_t *secret, size_t len, const char *label,
    uint8_t out[AUTH_KEY_LEN])
{
	unsigned int n = AUTH_KEY_LEN;

	HMAC(EVP_sha256(), secret, (int)len, (const uint8_t *)label,
	    strlen(label), out, &n);
}

/* One side's proof over both nonces and names (PROTOCOL.md 6.1). */
void
auth_proof(const uint8_t key[AUTH_KEY_LEN], bool by_acceptor,
    const uint8_t ni[AUTH_NONCE_LEN], const char *name_i,
    const uint8_t na[AUTH_NONCE_LEN], const char *name_a,
    uint8_t out[AUTH_MAC_LEN])
{
	/* direction, nonces, then each name after its length */
	uint8_t msg[10 + 2 * AUTH_NONCE_LEN + 2 * 256], *p = msg;
	size_t li = strnlen(name_i, 255), la = strnlen(name_a, 255);
	unsigned int n = AUTH_MAC_LEN;

	memcpy(p, by_acceptor ? "acceptor\0\0" : "initiator\0", 10);
	p += 10;
	memcpy(p, ni, AUTH_NONCE_LEN);
	p += AUTH_NONCE_LEN;
	memcpy(p, na, AUTH_NONCE_LEN);
	p += AUTH_NONCE_LEN;
	*p++ = (uint8_t)li;
	memcpy(p, name_i, li);
	p += li;
	*p++ = (uint8_t)la;
	memcpy(p, name_a, la);
	p += la;
	HMAC(EVP_sha256(), key, AUTH_KEY_LEN, msg, (size_t)(p - msg), out, &n);
}

/* Constant-time comparison of two proofs. */
bool
auth_proof_equal(const uint8_t *a, const uint8_t *b)
{
	return CRYPTO_memcmp(a, b, AUTH_MAC_LEN) == 0;
}
