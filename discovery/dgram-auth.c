/*
 * dgram-auth.c - MACs and replay checks of pufs datagrams.
 *
 * The secret of the key file is not used as it is: each use derives its
 * own subkey, HMAC-SHA256(secret, label), so that datagrams and streams
 * never share a key (the datagram label is DGRAM_AUTH_LABEL).  A
 * datagram's MAC is HMAC-SHA256 under that subkey over every byte
 * before it, the serial of the trailer included.
 *
 * A receiver checks, in this order and before anything else looks at
 * the datagram: the MAC (constant-time comparison); the timestamp
 * against its own estimate of the union's time (DGRAM_AUTH_WINDOW_NS, or
 * DGRAM_AUTH_FIRST_NS for the ANNOUNCE and HEARTBEAT of a newcomer, which
 * only make us dial, and the dial's handshake proves the secret afresh);
 * the serial against the boot's window of recent serials, as IPsec does:
 * the highest serial seen and a bitmap of the DGRAM_AUTH_REORDER below
 * it.  Only a datagram that passes all three is recorded.
 *
 * Limits: at most DGRAM_AUTH_SENDERS boots are followed.  A boot is
 * forgotten once no datagram of it could pass the timestamp check any
 * more (its latest timestamp is older than both windows), or, when the
 * table is full, the one with the oldest latest timestamp gives way;
 * only key holders make entries, and a datagram of a forgotten boot can
 * pass again only within the windows.  A receiver that restarts starts
 * with an empty table: datagrams of the last DGRAM_AUTH_WINDOW_NS can be
 * replayed to it once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "datagram.h"
#include "dgram-auth.h"
#include "wire.h"

#define WORDS (DGRAM_AUTH_REORDER / 64)

/* What is remembered of one boot of a sender. */
struct sender {
	uint64_t boot_id;
	uint64_t high;        /* highest serial accepted */
	uint64_t seen[WORDS]; /* bit i of the whole: high - i accepted */
	int64_t latest;       /* highest timestamp accepted */
};

struct dgram_auth {
	EVP_MAC *mac;
	EVP_MAC_CTX *ctx; /* keyed with the subkey */
	struct sender senders[DGRAM_AUTH_SENDERS];
	unsigned nsenders;
	struct dgram_auth_stats st;
};

/* Derive a subkey: HMAC-SHA256(key = secret, message = label). */
int
dgram_auth_subkey(const unsigned char *secret, size_t len, const char *label,
    unsigned char *out)
{
	unsigned int outlen = 0;

	if (secret == NULL || len == 0 || len > INT32_MAX || label == NULL)
		return -EINVAL;
	if (HMAC(EVP_sha256(), secret, (int)len, (const unsigned char *)label,
		strlen(label), out, &outlen) == NULL ||
	    outlen != DGRAM_AUTH_SUBKEY_LEN)
		return -EINVAL;
	return 0;
}

/* A context keyed with the datagram subkey of the secret. */
struct dgram_auth *
dgram_auth_new(const unsigned char *secret, size_t len)
{
	unsigned char sub[DGRAM_AUTH_SUBKEY_LEN];
	OSSL_PARAM params[2];
	struct dgram_auth *a;

	if ((a = calloc(1, sizeof *a)) == NULL)
		return NULL;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (dgram_auth_subkey(secret, len, DGRAM_AUTH_LABEL, sub) != 0 ||
	    (a->mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL ||
	    (a->ctx = EVP_MAC_CTX_new(a->mac)) == NULL ||
	    EVP_MAC_init(a->ctx, sub, sizeof sub, params) != 1) {
		OPENSSL_cleanse(sub, sizeof sub);
		dgram_auth_free(a);
		return NULL;
	}
	OPENSSL_cleanse(sub, sizeof sub);
	return a;
}

/* Free the context. */
void
dgram_auth_free(struct dgram_auth *a)
{
	if (a == NULL)
		return;
	EVP_MAC_CTX_free(a->ctx);
	EVP_MAC_free(a->mac);
	free(a);
}

/* The MAC of the first n bytes of buf into out; 0 or -EINVAL. */
static int
dgram_auth_mac(struct dgram_auth *a, const uint8_t *buf, size_t n, uint8_t *out)
{
	size_t outlen = 0;

	/* A NULL key re-initialises with the subkey already set. */
	if (EVP_MAC_init(a->ctx, NULL, 0, NULL) != 1 ||
	    EVP_MAC_update(a->ctx, buf, n) != 1 ||
	    EVP_MAC_final(a->ctx, out, &outlen, DGRAM_MAC_LEN) != 1 ||
	    outlen != DGRAM_MAC_LEN)
		return -EINVAL;
	return 0;
}

/* Seal an encoded datagram: its MAC into its last DGRAM_MAC_LEN bytes. */
int
dgram_auth_seal(struct dgram_auth *a, uint8_t *buf, size_t len)
{
	size_t off;

	if (dgram_mac_locate(buf, len, &off) != 0)
		return -EINVAL;
	return dgram_auth_mac(a, buf, off, buf + off);
}

/* The boot's entry, or NULL. */
static struct sender *
dgram_auth_find(struct dgram_auth *a, uint64_t boot_id)
{
	for (unsigned i = 0; i < a->nsenders; i++)
		if (a->senders[i].boot_id == boot_id)
			return &a->senders[i];
	return NULL;
}

/*
 * Room for a new boot: forget the boots none of whose datagrams could
 * pass any more; if none, the one heard of least recently gives way.
 */
static struct sender *
dgram_auth_slot(struct dgram_auth *a, int64_t now_ns)
{
	const int64_t keep = DGRAM_AUTH_FIRST_NS + DGRAM_AUTH_WINDOW_NS;
	unsigned i = 0, oldest = 0;

	while (i < a->nsenders) {
		if (now_ns - a->senders[i].latest > keep)
			a->senders[i] = a->senders[--a->nsenders];
		else
			i++;
	}
	if (a->nsenders < DGRAM_AUTH_SENDERS)
		return &a->senders[a->nsenders++];
	for (i = 1; i < a->nsenders; i++)
		if (a->senders[i].latest < a->senders[oldest].latest)
			oldest = i;
	return &a->senders[oldest];
}

/* Move s's window up by n serials (the new one is bit 0). */
static void
dgram_auth_shift(struct sender *s, uint64_t n)
{
	unsigned words = (unsigned)(n / 64), bits = (unsigned)(n % 64);

	if (n >= DGRAM_AUTH_REORDER) {
		memset(s->seen, 0, sizeof s->seen);
		return;
	}
	for (int i = WORDS - 1; i >= 0; i--) {
		uint64_t w = (unsigned)i >= words ? s->seen[i - words] : 0;
		uint64_t lo = (unsigned)i > words && bits != 0
		    ? s->seen[i - words - 1] >> (64 - bits)
		    : 0;

		s->seen[i] = bits != 0 ? (w << bits) | lo : w;
	}
}

/* Whether serial is new for s; if so, it is recorded. */
static bool
dgram_auth_fresh(struct sender *s, uint64_t serial)
{
	uint64_t back, bit;

	if (serial > s->high) {
		dgram_auth_shift(s, serial - s->high);
		s->high = serial;
		s->seen[0] |= 1;
		return true;
	}
	if ((back = s->high - serial) >= DGRAM_AUTH_REORDER)
		return false;
	bit = (uint64_t)1 << (back % 64);
	if (s->seen[back / 64] & bit)
		return false;
	s->seen[back / 64] |= bit;
	return true;
}

/* Judge one datagram (see dgram-auth.h); counts the verdict. */
enum dgram_auth_verdict
dgram_auth_check(struct dgram_auth *a, const uint8_t *buf, size_t len,
    int64_t now_ns, dgram_auth_newcomer_cb newcomer, void *arg)
{
	uint8_t want[DGRAM_MAC_LEN];
	enum dgram_auth_verdict v = DGRAM_AUTH_OK;
	uint64_t boot, serial, dist;
	struct sender *s;
	int64_t time;
	uint8_t type;
	size_t off;

	if (dgram_mac_locate(buf, len, &off) != 0 ||
	    dgram_auth_mac(a, buf, off, want) != 0 ||
	    CRYPTO_memcmp(want, buf + off, DGRAM_MAC_LEN) != 0) {
		a->st.mac++;
		return DGRAM_AUTH_MAC;
	}
	type = buf[5];
	boot = wire_get_le(buf + 8, 8);
	time = (int64_t)wire_get_le(buf + 24, 8);
	serial = wire_get_le(buf + off - 8, 8);
	/* |time - now|, without overflow for any two int64_t. */
	dist = time > now_ns ? (uint64_t)time - (uint64_t)now_ns
			     : (uint64_t)now_ns - (uint64_t)time;
	if (dist > (uint64_t)DGRAM_AUTH_WINDOW_NS) {
		if (dist > (uint64_t)DGRAM_AUTH_FIRST_NS ||
		    (type != DGRAM_ANNOUNCE && type != DGRAM_HEARTBEAT) ||
		    newcomer == NULL || !newcomer(boot, arg)) {
			a->st.window++;
			return DGRAM_AUTH_WINDOW;
		}
		v = DGRAM_AUTH_FIRST;
	}
	if (serial == 0) {
		a->st.replay++; /* never sent: serials start at 1 */
		return DGRAM_AUTH_REPLAY;
	}
	if ((s = dgram_auth_find(a, boot)) == NULL) {
		s = dgram_auth_slot(a, now_ns);
		memset(s, 0, sizeof *s);
		s->boot_id = boot;
		s->latest = time;
	}
	if (!dgram_auth_fresh(s, serial)) {
		a->st.replay++;
		return DGRAM_AUTH_REPLAY;
	}
	if (time > s->latest)
		s->latest = time;
	a->st.passed++;
	if (v == DGRAM_AUTH_FIRST)
		a->st.first_contact++;
	return v;
}

/* The counters, and how many boots are followed now. */
void
dgram_auth_stats(const struct dgram_auth *a, struct dgram_auth_stats *st)
{
	*st = a->st;
	st->senders = a->nsenders;
}

/* A verdict's name for logs. */
const char *
dgram_auth_verdict_name(enum dgram_auth_verdict v)
{
	switch (v) {
	case DGRAM_AUTH_OK:
		return "ok";
	case DGRAM_AUTH_FIRST:
		return "first contact";
	case DGRAM_AUTH_MAC:
		return "bad MAC";
	case DGRAM_AUTH_REPLAY:
		return "replayed";
	case DGRAM_AUTH_WINDOW:
		return "outside the window";
	}
	return "?";
}
