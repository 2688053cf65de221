/*
 * test-auth.c - unit test of proto/auth.c, the challenge-response of a
 * keyed stream.
 *
 * Known answers for the subkeys and both proofs (computed apart from the
 * code, from PROTOCOL.md section 6.1); a CHALLENGE compared byte for
 * byte with a hand-assembled one; every step through encode and decode;
 * what the encoder and the decoder refuse; truncation at every byte; and
 * that a proof changes with the direction, either nonce and either name.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "tap.h"

static const uint8_t secret[] = "0123456789abcdef0123456789abcdef";

/* Hex of n bytes, in a static buffer. */
static const char *
hex(const uint8_t *p, size_t n)
{
	static char buf[2 * 64 + 1];

	for (size_t i = 0; i < n && i < 64; i++)
		snprintf(buf + 2 * i, 3, "%02x", p[i]);
	return buf;
}

/* A message of step with every field its step carries. */
static struct auth_msg
msg(uint8_t step)
{
	struct auth_msg m = { .step = step };

	if (step == AUTH_CHALLENGE)
		m.version = AUTH_VERSION;
	if (step != AUTH_PROOF) {
		memset(m.nonce, 0xa5, sizeof m.nonce);
		strcpy(m.name, step == AUTH_CHALLENGE ? "alpha" : "beta");
	}
	if (step != AUTH_CHALLENGE)
		memset(m.mac, 0x5a, sizeof m.mac);
	return m;
}

static void
test_known_answers(void)
{
	uint8_t k[AUTH_KEY_LEN], t[AUTH_KEY_LEN], ni[32], na[32], p[32];

	for (int i = 0; i < 32; i++) {
		ni[i] = (uint8_t)i;
		na[i] = (uint8_t)(32 + i);
	}
	auth_subkey(secret, 32, AUTH_LABEL_STREAM, k);
	tap_is_str(hex(k, 32),
	    "6a2153b0e4f7d41c8805a1eb192315b6e8c6800cc5a9556d83375de77930d278",
	    "stream subkey: HMAC-SHA-256(secret, \"pufs stream v1\")");
	auth_subkey(secret, 32, AUTH_LABEL_TLS, t);
	tap_is_str(hex(t, 32),
	    "3f9ab74a3c52f696ec22aa83c2e5078bcda4ce88c93bc504edb2fc8afba64d05",
	    "TLS key: HMAC-SHA-256(secret, \"pufs tls v1\")");
	auth_proof(k, false, ni, "alpha", na, "beta", p);
	tap_is_str(hex(p, 32),
	    "18b49242bf1dd8048a2194a7a604323a6402616331d1264b0996e1848bd8f5c3",
	    "the initiator's proof");
	auth_proof(k, true, ni, "alpha", na, "beta", p);
	tap_is_str(hex(p, 32),
	    "f5856ce37301575a5b44f70edea1d08252931cde006aed5fb89ec43924f138a4",
	    "the acceptor's proof");
}

static void
test_proof_binds(void)
{
	uint8_t k[AUTH_KEY_LEN], ni[32] = { 1 }, na[32] = { 2 }, base[32],
				 p[32];

	auth_subkey(secret, 32, AUTH_LABEL_STREAM, k);
	auth_proof(k, false, ni, "alpha", na, "beta", base);
	auth_proof(k, false, ni, "alpha", na, "beta", p);
	tap_ok(auth_proof_equal(base, p), "a proof is reproducible");
	auth_proof(k, true, ni, "alpha", na, "beta", p);
	tap_ok(!auth_proof_equal(base, p), "the other direction differs");
	auth_proof(k, false, na, "alpha", ni, "beta", p);
	tap_ok(!auth_proof_equal(base, p), "swapped nonces differ");
	auth_proof(k, false, ni, "beta", na, "alpha", p);
	tap_ok(!auth_proof_equal(base, p), "swapped names differ");
	auth_proof(k, false, ni, "alph", na, "abeta", p);
	tap_ok(!auth_proof_equal(base, p), "a name boundary moved differs");
	auth_proof(k, false, ni, "alpha", na, "gamma", p);
	tap_ok(!auth_proof_equal(base, p), "another acceptor name differs");
	na[31] ^= 1;
	auth_proof(k, false, ni, "alpha", na, "beta", p);
	tap_ok(!auth_proof_equal(base, p), "another nonce differs");
	auth_subkey(secret + 1, 31, AUTH_LABEL_STREAM, k);
	auth_proof(k, false, ni, "alpha", na, "beta", p);
	tap_ok(!auth_proof_equal(base, p), "another secret differs");
}

static void
test_bytes(void)
{
	struct auth_msg m = msg(AUTH_CHALLENGE);
	uint8_t want[AUTH_FIXED + 5] = { 94, 0, 0, 0, AUTH_TYPE }, buf[400];
	size_t len;

	want[16] = AUTH_CHALLENGE;
	want[17] = AUTH_VERSION;
	memset(want + 24, 0xa5, 32);
	want[88] = 5;
	memcpy(want + 89, "alpha", 5);
	len = auth_encode(&m, buf);
	tap_is_int((long long)len, sizeof want, "a CHALLENGE is 94 bytes");
	tap_ok(len == sizeof want && memcmp(buf, want, len) == 0,
	    "a CHALLENGE, byte for byte");
	tap_ok(auth_frame_is_auth(buf), "it is an AUTH frame");
	buf[4] = 1;
	tap_ok(!auth_frame_is_auth(buf), "a HELLO is not");
}

static void
test_round_trip(void)
{
	for (uint8_t step = AUTH_CHALLENGE; step <= AUTH_PROOF; step++) {
		struct auth_msg m = msg(step), d;
		uint8_t buf[AUTH_FRAME_MAX];
		size_t len = auth_encode(&m, buf);
		int rc = auth_decode(buf, len, &d);

		tap_ok(len >= AUTH_FIXED && rc == 0 &&
			memcmp(&m, &d, sizeof m) == 0,
		    "step %u: encode, decode, the same", step);
		tap_is_int(buf[5], step == AUTH_ANSWER ? 1 : 0,
		    "step: the reply flag on the ANSWER only");
		for (size_t n = 0; n < len; n++)
			if (auth_decode(buf, n, &d) == 0) {
				tap_ok(0, "step %u: truncated at %zu refused",
				    step, n);
				return;
			}
		tap_ok(1, "step %u: every truncation refused", step);
	}
	/* Refusals: ANSWER and PROOF with an error and nothing else. */
	for (uint8_t step = AUTH_ANSWER; step <= AUTH_PROOF; step++) {
		struct auth_msg m = { .step = step, .error = EACCES }, d;
		uint8_t buf[AUTH_FRAME_MAX];
		size_t len = auth_encode(&m, buf);

		tap_ok(len == AUTH_FIXED && auth_decode(buf, len, &d) == 0 &&
			d.error == EACCES,
		    "step %u: a refusal is the fixed part alone", step);
	}
}

/* Whether auth_encode refuses m. */
static void
refused(struct auth_msg m, const char *what)
{
	uint8_t buf[AUTH_FRAME_MAX];

	tap_is_int((long long)auth_encode(&m, buf), 0, what);
}

static void
test_encode_refusals(void)
{
	struct auth_msg m;

	m = msg(AUTH_CHALLENGE), m.step = 0;
	refused(m, "encode: step 0");
	m = msg(AUTH_CHALLENGE), m.step = 4;
	refused(m, "encode: step 4");
	m = msg(AUTH_CHALLENGE), m.version = 0;
	refused(m, "encode: a CHALLENGE without a version");
	m = msg(AUTH_CHALLENGE), m.error = EACCES;
	refused(m, "encode: a CHALLENGE with an error");
	m = msg(AUTH_CHALLENGE), m.name[0] = '\0';
	refused(m, "encode: a CHALLENGE without a name");
	m = msg(AUTH_CHALLENGE), strcpy(m.name, "a/b");
	refused(m, "encode: a name with a slash");
	m = msg(AUTH_CHALLENGE), m.mac[3] = 1;
	refused(m, "encode: a CHALLENGE with a proof");
	m = msg(AUTH_PROOF), m.nonce[0] = 1;
	refused(m, "encode: a PROOF with a nonce");
	m = msg(AUTH_PROOF), strcpy(m.name, "x");
	refused(m, "encode: a PROOF with a name");
	m = msg(AUTH_ANSWER), m.version = 1;
	refused(m, "encode: an ANSWER with a version");
	m = msg(AUTH_ANSWER), m.error = 4096;
	refused(m, "encode: an errno past 4095");
	m = msg(AUTH_ANSWER), m.error = EACCES;
	refused(m, "encode: a refusal that carries a nonce");
}

/* Whether auth_decode refuses the frame f after change at offset. */
static void
decode_refused(uint8_t step, size_t off, uint8_t val, const char *what)
{
	struct auth_msg m = msg(step), d;
	uint8_t buf[AUTH_FRAME_MAX];
	size_t len = auth_encode(&m, buf);

	buf[off] = val;
	tap_is_int(auth_decode(buf, len, &d), -EPROTO, what);
}

static void
test_decode_refusals(void)
{
	struct auth_msg m = msg(AUTH_CHALLENGE), d;
	uint8_t buf[AUTH_FRAME_MAX + 1];
	size_t len = auth_encode(&m, buf);

	decode_refused(AUTH_CHALLENGE, 5, 1, "decode: a reply CHALLENGE");
	decode_refused(AUTH_ANSWER, 5, 0, "decode: a request ANSWER");
	decode_refused(AUTH_CHALLENGE, 5, 2, "decode: another flag bit");
	decode_refused(AUTH_CHALLENGE, 6, 1, "decode: header reserved");
	decode_refused(AUTH_CHALLENGE, 8, 1, "decode: a request id");
	decode_refused(AUTH_CHALLENGE, 18, 1, "decode: body reserved");
	decode_refused(AUTH_CHALLENGE, 16, 7, "decode: an unknown step");
	decode_refused(AUTH_CHALLENGE, 17, 0, "decode: no version");
	decode_refused(AUTH_CHALLENGE, 4, 1, "decode: another type");
	decode_refused(AUTH_CHALLENGE, 0, 95, "decode: length field differs");
	decode_refused(AUTH_CHALLENGE, 88, 4, "decode: name length short");
	decode_refused(AUTH_CHALLENGE, 90, 0, "decode: a NUL in the name");
	decode_refused(AUTH_CHALLENGE, 90, '/', "decode: a slash in the name");
	decode_refused(AUTH_CHALLENGE, 60, 1, "decode: a CHALLENGE's proof");
	decode_refused(AUTH_ANSWER, 23, 1, "decode: an errno past 4095");
	buf[len] = 0;
	buf[0]++;
	tap_is_int(auth_decode(buf, len + 1, &d), -EPROTO,
	    "decode: a byte after the name");
}

int
main(void)
{
	test_known_answers();
	test_proof_binds();
	test_bytes();
	test_round_trip();
	test_encode_refusals();
	test_decode_refusals();
	return tap_done();
}
