/*
 * fuzz-datagram.c - libFuzzer target for the datagram codec in
 * discovery/.
 *
 * The input is one datagram.  Whatever decodes is encoded again: the
 * encoding is canonical, so the bytes must be the input's, and decoding
 * them must give an equal structure.  A TRAP must also come back whole
 * from the batch encoder, and dgram_mac_locate() must agree with the
 * decoder about the MAC.  The authenticated forms go through
 * discovery/dgram-auth.c under a fixed key: the input itself must fail
 * the MAC (nobody forges HMAC-SHA256 by chance); a datagram with the MAC
 * flag, sealed under the key, must pass once, then be a replay, fail the
 * MAC with a byte flipped, and be outside the window a second too late.
 * A difference aborts, and so does any sanitizer report.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "datagram.h"
#include "dgram-auth.h"
#include "wire.h"
#include "wiretest.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Whether two change records are equal. */
static int
trap_eq(const struct dgram_trap *a, const struct dgram_trap *b)
{
	return a->kind == b->kind && a->export_id == b->export_id &&
	    a->time == b->time && str_eq(a->path, b->path) &&
	    a->export2 == b->export2 && str_eq(a->path2, b->path2) &&
	    attr_eq(&a->attr, &b->attr) && a->offset == b->offset &&
	    a->length == b->length;
}

/* Whether two decoded datagrams are equal in every field. */
static int
dgram_eq(const struct dgram *a, const struct dgram *b)
{
	size_t i;

	if (a->type != b->type || a->flags != b->flags ||
	    a->boot_id != b->boot_id || a->seq != b->seq ||
	    a->time != b->time || !str_eq(a->name, b->name) ||
	    !str_eq(a->uri, b->uri) || a->aflags != b->aflags ||
	    a->uptime_ms != b->uptime_ms || a->req_id != b->req_id ||
	    !str_eq(a->path, b->path) || !str_eq(a->target, b->target) ||
	    a->target_boot != b->target_boot || a->first != b->first ||
	    a->last != b->last || a->nexports != b->nexports ||
	    a->nhits != b->nhits || a->ntraps != b->ntraps ||
	    a->mac_off != b->mac_off || (a->mac == NULL) != (b->mac == NULL))
		return 0;
	if (a->mac != NULL && memcmp(a->mac, b->mac, DGRAM_MAC_LEN) != 0)
		return 0;
	for (i = 0; i < a->nexports; i++) {
		if (!export_eq(&a->exports[i], &b->exports[i]))
			return 0;
	}
	for (i = 0; i < a->nhits; i++) {
		if (a->hits[i].export_id != b->hits[i].export_id ||
		    !attr_eq(&a->hits[i].attr, &b->hits[i].attr))
			return 0;
	}
	for (i = 0; i < a->ntraps; i++) {
		if (!trap_eq(&a->traps[i], &b->traps[i]))
			return 0;
	}
	return 1;
}

static const unsigned char fuzz_key[] = "fuzz fuzz fuzz fuzz fuzz fuzz fuzz";

/* The checks of a decoded datagram d with the MAC flag, len bytes. */
static void
fuzz_auth(const struct dgram *d, const uint8_t *data, size_t len)
{
	struct dgram_auth *a = dgram_auth_new(fuzz_key, sizeof fuzz_key - 1);
	enum dgram_auth_verdict v;
	uint8_t buf[DGRAM_MAX];
	size_t at;

	if (a == NULL)
		abort();
	memcpy(buf, data, len);
	if (dgram_auth_seal(a, buf, len) != 0)
		abort();
	v = dgram_auth_check(a, buf, len, d->time, NULL, NULL);
	if (v != (d->serial == 0 ? DGRAM_AUTH_REPLAY : DGRAM_AUTH_OK))
		abort();
	if (dgram_auth_check(a, buf, len, d->time, NULL, NULL) !=
	    DGRAM_AUTH_REPLAY)
		abort();
	/* One byte flipped, anywhere: bad MAC. */
	at = (size_t)data[len / 2] * 7 % len;
	buf[at] ^= 0x20;
	if (dgram_auth_check(a, buf, len, d->time, NULL, NULL) !=
	    DGRAM_AUTH_MAC)
		abort();
	buf[at] ^= 0x20;
	/* The next serial, a second beyond the window: too late. */
	wire_put_le(buf + len - DGRAM_TRAILER_LEN, d->serial + 1, 8);
	if (dgram_auth_seal(a, buf, len) != 0)
		abort();
	if (d->time >= INT64_MIN + DGRAM_AUTH_WINDOW_NS + 1000000000 &&
	    dgram_auth_check(a, buf, len,
		d->time - DGRAM_AUTH_WINDOW_NS - 1000000000, NULL,
		NULL) != DGRAM_AUTH_WINDOW)
		abort();
	dgram_auth_free(a);
}

/* Decode the input; if it decodes, check the round trips. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t buf[DGRAM_MAX];
	struct dgram d, d2;
	size_t len, taken, off;
	int error;

	static struct dgram_auth *auth;

	if (auth == NULL &&
	    (auth = dgram_auth_new(fuzz_key, sizeof fuzz_key - 1)) == NULL)
		abort();
	/* Whatever the input, its MAC is not ours. */
	if (dgram_auth_check(auth, data, size, 0, NULL, NULL) != DGRAM_AUTH_MAC)
		abort();
	error = dgram_mac_locate(data, size, &off);
	if (dgram_decode(data, size, &d) != 0)
		return 0;
	if (d.mac != NULL ? error != 0 || off != d.mac_off : error != -ENOENT)
		abort();
	if (dgram_encode(&d, buf, sizeof buf, &len) != 0)
		abort();
	if (len != size || memcmp(buf, data, size) != 0)
		abort();
	if (dgram_decode(buf, len, &d2) != 0)
		abort();
	/* The MAC of the copy lies in buf, not in data: compare bytes. */
	if (!dgram_eq(&d, &d2))
		abort();
	dgram_clear(&d2);
	if (d.type == DGRAM_TRAP) {
		if (dgram_encode_traps(&d, d.traps, d.ntraps, buf, sizeof buf,
			&len, &taken) != 0)
			abort();
		if (taken != d.ntraps || len != size ||
		    memcmp(buf, data, size) != 0)
			abort();
	}
	if (d.mac != NULL)
		fuzz_auth(&d, data, size);
	dgram_clear(&d);
	return 0;
}
