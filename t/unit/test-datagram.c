/*
 * test-datagram.c - unit test of the datagram codec in discovery/.
 *
 * Every datagram type goes through encode and decode, with and without
 * the MAC trailer, and every field is compared against this file's own
 * table of what each type carries, which is DATAGRAMS.md's, not the
 * codec's; sizes are recomputed from DATAGRAMS.md's field sizes, and one
 * datagram is compared byte for byte with a hand-assembled one.  Then
 * the trap batch encoder on records of varied sizes (every datagram
 * full, none beyond the limit), a table of hand-assembled datagrams that
 * must be accepted or refused, truncation at every byte, and encoder
 * refusals.
 *
 * "test-datagram --corpus DIR" writes valid datagrams into DIR as
 * fuzzing seeds and runs no test.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datagram.h"
#include "tap.h"
#include "wire.h"
#include "wiretest.h"

#define NELEM(a) (sizeof(a) / sizeof(a)[0])

/* Body fields as DATAGRAMS.md lists them. */
enum {
	E_AFLAGS = 1 << 0,
	E_UPTIME = 1 << 1,
	E_REQID = 1 << 2,
	E_PATH = 1 << 3,
	E_EXPORTS = 1 << 4,
	E_HITS = 1 << 5,
	E_TARGET = 1 << 6,
	E_TBOOT = 1 << 7,
	E_FIRST = 1 << 8,
	E_LAST = 1 << 9,
	E_TRAPS = 1 << 10,
};

static const struct expect {
	int type;
	const char *name;
	unsigned body;
} expect[] = {
	{ DGRAM_ANNOUNCE, "announce", E_AFLAGS | E_UPTIME | E_EXPORTS },
	{ DGRAM_HEARTBEAT, "heartbeat", E_UPTIME },
	{ DGRAM_GOODBYE, "goodbye", 0 },
	{ DGRAM_LOCATE, "locate", E_REQID | E_PATH },
	{ DGRAM_LOCATED, "located", E_REQID | E_PATH | E_HITS },
	{ DGRAM_TRAP, "trap", E_TRAPS },
	{ DGRAM_RESEND, "resend", E_TARGET | E_TBOOT | E_FIRST | E_LAST },
};

/* Record fields after kind, export, time and path. */
enum {
	R_DEST = 1 << 0, /* export2, path2 */
	R_ATTR = 1 << 1,
	R_RANGE = 1 << 2, /* offset, length */
};

static const struct kind_expect {
	int kind;
	const char *name;
	unsigned fields;
} kind_expect[] = {
	{ DGRAM_CREATE, "create", R_ATTR },
	{ DGRAM_REMOVE, "remove", 0 },
	{ DGRAM_RENAME, "rename", R_DEST },
	{ DGRAM_ATTR, "attr", R_ATTR },
	{ DGRAM_DATA, "data", R_RANGE },
};

static struct proto_export sample_exports[] = {
	{ 1, "music", "/", false },
	{ 0xfffffffe, "home", "/home/shared files", true },
};

static const struct proto_attr sample_attr = {
	0x0102030405060708ull,
	0x1112131415161718ull,
	0100644,
	3,
	1000,
	1001,
	0x0801,
	0x7fffffffffffffffull,
	12345,
	{ 1700000000, 123456789 },
	{ -1, 999999999 },
	{ 0, 0 },
};

static struct dgram_hit sample_hits[] = {
	{ 0,
	    { 1, 2, 040755, 2, 0, 0, 0, 4096, 8, { 1, 2 }, { 3, 4 },
		{ 5, 6 } } },
	{ 7,
	    { 7, 8, 0100600, 1, 5, 6, 0, 99, 1, { -7, 0 }, { 8, 1 },
		{ 9, 999999999 } } },
	{ 0xffffffff, { .dev = 0 } },
};

/* One record of each kind; every field set, used by the kind or not. */
static struct dgram_trap sample_traps[] = {
	{ DGRAM_CREATE, 1, 1700000000000000001ll, "dir/new file", 11, "x/y",
	    { 9, 10, 0100644, 1, 0, 0, 0, 0, 0, { 1, 0 }, { 2, 0 }, { 3, 0 } },
	    1, 2 },
	{ DGRAM_REMOVE, 2, -1, "", 12, "x/y", { .dev = 0 }, 3, 4 },
	{ DGRAM_RENAME, 3, 0, "a/b", 0xfffffffe, "c/d/e", { .dev = 1 }, 5, 6 },
	{ DGRAM_ATTR, 4, INT64_MAX, "a..b/.c", 14, "z",
	    { 4, 5, 040700, 3, 1, 2, 0, 4096, 8, { 1, 1 }, { 2, 2 },
		{ 3, 999999999 } },
	    7, 8 },
	{ DGRAM_DATA, 0xffffffff, INT64_MIN, "big.iso", 15, "w", { .dev = 2 },
	    1ull << 40, 131072 },
};

static const uint8_t sample_mac[DGRAM_MAC_LEN] = {
	0xa0,
	0xa1,
	0xa2,
	0xa3,
	0xa4,
	0xa5,
	0xa6,
	0xa7,
	0xa8,
	0xa9,
	0xaa,
	0xab,
	0xac,
	0xad,
	0xae,
	0xaf,
	0xb0,
	0xb1,
	0xb2,
	0xb3,
	0xb4,
	0xb5,
	0xb6,
	0xb7,
	0xb8,
	0xb9,
	0xba,
	0xbb,
	0xbc,
	0xbd,
	0xbe,
	0xbf,
};

/* A datagram with every field set to a distinct valid value. */
static struct dgram
full_dgram(int type, int mac)
{
	struct dgram d = {
		.type = type,
		.flags = mac ? DGRAM_FLAG_MAC : 0,
		.boot_id = 0xdeadbeefcafef00dull,
		.seq = 0x0123456789ull + type,
		.time = 1700000000123456789ll,
		.name = "alpha",
		.uri = "[fe80::1]:7070",
		.aflags = DGRAM_ANNOUNCE_ANSWER | DGRAM_ANNOUNCE_PARTIAL,
		.uptime_ms = 123456789012ull,
		.req_id = 0xfedcba9876543210ull,
		.path = "/home/shared files/x",
		.exports = sample_exports,
		.nexports = NELEM(sample_exports),
		.hits = sample_hits,
		.nhits = NELEM(sample_hits),
		.target = "beta",
		.target_boot = 0x55aa55aa55aa55aaull,
		.first = 5,
		.last = 9,
		.traps = sample_traps,
		.ntraps = NELEM(sample_traps),
		.serial = mac ? 0x1122334455667788ull : 0,
		.mac = mac ? sample_mac : NULL,
	};
	return d;
}

/* The fields a record kind uses, from kind_expect[]. */
static unsigned
kind_fields(int kind)
{
	size_t i;

	for (i = 0; i < NELEM(kind_expect); i++)
		if (kind_expect[i].kind == kind)
			return kind_expect[i].fields;
	return 0;
}

/* Whether a decoded record has want's used fields and zero elsewhere. */
static int
trap_eq(const struct dgram_trap *got, const struct dgram_trap *want)
{
	static const struct proto_attr zero_attr;
	unsigned m = kind_fields(want->kind);

	return got->kind == want->kind && got->export_id == want->export_id &&
	    got->time == want->time && str_eq(got->path, want->path) &&
	    got->export2 == ((m & R_DEST) ? want->export2 : 0) &&
	    str_eq(got->path2, (m & R_DEST) ? want->path2 : NULL) &&
	    attr_eq(&got->attr, (m & R_ATTR) ? &want->attr : &zero_attr) &&
	    got->offset == ((m & R_RANGE) ? want->offset : 0) &&
	    got->length == ((m & R_RANGE) ? want->length : 0);
}

/* How many fields of got differ from want (used) or from zero (unused). */
static int
dgram_diff(const char *label, const struct dgram *want, const struct dgram *got,
    unsigned mask)
{
	size_t i;
	int bad = 0;

	CHECK(got->type == want->type, "type");
	CHECK(got->flags == want->flags, "flags");
	CHECK(got->boot_id == want->boot_id, "boot_id");
	CHECK(got->seq == want->seq, "seq");
	CHECK(got->time == want->time, "time");
	CHECK(got->serial == want->serial, "serial");
	CHECK(str_eq(got->name, want->name), "name");
	CHECK(str_eq(got->uri, want->uri), "uri");
	INT(E_AFLAGS, aflags);
	INT(E_UPTIME, uptime_ms);
	INT(E_REQID, req_id);
	STR(E_PATH, path);
	STR(E_TARGET, target);
	INT(E_TBOOT, target_boot);
	INT(E_FIRST, first);
	INT(E_LAST, last);
	CHECK(got->nexports == (USED(E_EXPORTS) ? want->nexports : 0),
	    "nexports");
	for (i = 0; i < got->nexports && i < want->nexports; i++) {
		CHECK(got->exports[i].id == want->exports[i].id, "exports.id");
		CHECK(str_eq(got->exports[i].name, want->exports[i].name),
		    "exports.name");
		CHECK(str_eq(got->exports[i].at, want->exports[i].at),
		    "exports.at");
		CHECK(got->exports[i].read_only == want->exports[i].read_only,
		    "exports.read_only");
	}
	CHECK(got->nexports > 0 || got->exports == NULL, "exports");
	CHECK(got->nhits == (USED(E_HITS) ? want->nhits : 0), "nhits");
	for (i = 0; i < got->nhits && i < want->nhits; i++) {
		CHECK(got->hits[i].export_id == want->hits[i].export_id,
		    "hits.export_id");
		CHECK(attr_eq(&got->hits[i].attr, &want->hits[i].attr),
		    "hits.attr");
	}
	CHECK(got->nhits > 0 || got->hits == NULL, "hits");
	CHECK(got->ntraps == (USED(E_TRAPS) ? want->ntraps : 0), "ntraps");
	for (i = 0; i < got->ntraps && i < want->ntraps; i++)
		CHECK(trap_eq(&got->traps[i], &want->traps[i]), "traps[]");
	CHECK(got->ntraps > 0 || got->traps == NULL, "traps");
	return bad;
}

/* Wire size of a string field: u16 length, bytes, NUL. */
static size_t
str_size(const char *s)
{
	return 2 + strlen(s) + 1;
}

/* Wire size of a change record from DATAGRAMS.md's field sizes. */
static size_t
trap_size(const struct dgram_trap *t)
{
	unsigned m = kind_fields(t->kind);

	return 1 + 4 + 8 + str_size(t->path) +
	    ((m & R_DEST) ? 4 + str_size(t->path2) : 0) +
	    ((m & R_ATTR) ? 92 : 0) + ((m & R_RANGE) ? 16 : 0);
}

/* Wire size of the header of d. */
static size_t
hdr_size(const struct dgram *d)
{
	return 32 + str_size(d->name) + str_size(d->uri);
}

/* Datagram size from DATAGRAMS.md's field sizes. */
static size_t
dgram_size(const struct dgram *d, unsigned mask)
{
	size_t i, n = hdr_size(d);

	n += USED(E_AFLAGS) ? 1 : 0;
	n += USED(E_UPTIME) ? 8 : 0;
	n += USED(E_REQID) ? 8 : 0;
	n += USED(E_PATH) ? str_size(d->path) : 0;
	if (USED(E_EXPORTS)) {
		n += 2;
		for (i = 0; i < d->nexports; i++)
			n += 4 + str_size(d->exports[i].name) +
			    str_size(d->exports[i].at) + 1;
	}
	n += USED(E_HITS) ? 2 + 96 * d->nhits : 0;
	n += USED(E_TARGET) ? str_size(d->target) : 0;
	n += USED(E_TBOOT) ? 8 : 0;
	n += USED(E_FIRST) ? 8 : 0;
	n += USED(E_LAST) ? 8 : 0;
	if (USED(E_TRAPS)) {
		n += 2;
		for (i = 0; i < d->ntraps; i++)
			n += trap_size(&d->traps[i]);
	}
	return n + ((d->flags & DGRAM_FLAG_MAC) ? 40 : 0);
}

/* Decode a copy of the first len bytes of buf, in a buffer of that size. */
static int
decode_copy(const uint8_t *buf, size_t len)
{
	struct dgram d;
	uint8_t *copy;
	int error;

	if ((copy = malloc(len > 0 ? len : 1)) == NULL)
		return -ENOMEM;
	memcpy(copy, buf, len);
	error = dgram_decode(copy, len, &d);
	if (error == 0)
		dgram_clear(&d);
	free(copy);
	return error;
}

/* Whether every truncation of the datagram is refused. */
static int
truncations_refused(const uint8_t *buf, size_t len)
{
	size_t k;
	int bad = 0;

	for (k = 0; k < len; k++)
		bad += decode_copy(buf, k) != -EPROTO;
	if (bad != 0)
		tap_diag("%d truncations accepted", bad);
	return bad == 0;
}

/* Whether the datagram with one more byte at the end is refused. */
static int
trailing_refused(const uint8_t *buf, size_t len)
{
	uint8_t copy[DGRAM_MAX + 1] = { 0 };

	memcpy(copy, buf, len);
	return decode_copy(copy, len + 1) == -EPROTO;
}

#define PER_TYPE 7

/* Round-trip one type, without and with the MAC; PER_TYPE tests. */
static void
test_type(const struct expect *x)
{
	uint8_t buf[DGRAM_MAX], buf2[DGRAM_MAX];
	struct dgram d = full_dgram(x->type, 0), got;
	struct dgram dm = full_dgram(x->type, 1), gotm;
	size_t len, len2, off = 0;
	char label[64];
	int error, errorm, again;

	snprintf(label, sizeof label, "%s", x->name);
	error = dgram_encode(&d, buf, sizeof buf, &len);
	tap_ok(error == 0 && len == dgram_size(&d, x->body),
	    "%s encodes to %zu bytes", label, dgram_size(&d, x->body));
	error = error ? error : dgram_decode(buf, len, &got);
	tap_ok(error == 0 && dgram_diff(label, &d, &got, x->body) == 0 &&
		got.mac == NULL && got.mac_off == 0 &&
		dgram_mac_locate(buf, len, &off) == -ENOENT,
	    "%s round trip", label);
	tap_ok(truncations_refused(buf, len) && trailing_refused(buf, len),
	    "%s truncations and trailing byte refused", label);
	again = error == 0 &&
	    dgram_encode(&got, buf2, sizeof buf2, &len2) == 0 && len2 == len &&
	    memcmp(buf, buf2, len) == 0;
	tap_ok(again, "%s re-encodes to the same bytes", label);

	snprintf(label, sizeof label, "%s with MAC", x->name);
	errorm = dgram_encode(&dm, buf, sizeof buf, &len);
	tap_ok(errorm == 0 && len == dgram_size(&dm, x->body) &&
		len == dgram_size(&d, x->body) + DGRAM_TRAILER_LEN &&
		wire_get_le(buf + len - DGRAM_TRAILER_LEN, 8) == dm.serial &&
		memcmp(buf + len - DGRAM_MAC_LEN, sample_mac, DGRAM_MAC_LEN) ==
		    0,
	    "%s encodes to %zu bytes, serial and MAC last", label,
	    dgram_size(&dm, x->body));
	errorm = errorm ? errorm : dgram_decode(buf, len, &gotm);
	tap_ok(errorm == 0 && dgram_diff(label, &dm, &gotm, x->body) == 0 &&
		gotm.mac == buf + len - DGRAM_MAC_LEN &&
		gotm.mac_off == len - DGRAM_MAC_LEN &&
		dgram_mac_locate(buf, len, &off) == 0 && off == gotm.mac_off,
	    "%s round trip, MAC located", label);
	tap_ok(truncations_refused(buf, len) && trailing_refused(buf, len),
	    "%s truncations and trailing byte refused", label);
	if (error == 0)
		dgram_clear(&got);
	if (errorm == 0)
		dgram_clear(&gotm);
}

/* Start a datagram with a raw fixed header, name "p", uri "h:1". */
static void
w_raw_hdr(struct w *w, uint32_t magic, int version, int type, int flags,
    int reserved, uint64_t seq)
{
	w->n = 0;
	w->strw = 2;
	w_int(w, magic, 4);
	w_int(w, version, 1);
	w_int(w, type, 1);
	w_int(w, flags, 1);
	w_int(w, reserved, 1);
	w_int(w, 0x1122334455667788ull, 8);
	w_int(w, seq, 8);
	w_int(w, 1700000000000000000ull, 8);
}

/* Start a well-formed datagram of a type. */
static void
w_hdr(struct w *w, int type, int flags, uint64_t seq)
{
	w_raw_hdr(w, DGRAM_MAGIC, DGRAM_VERSION, type, flags, 0, seq);
	w_str(w, "p");
	w_str(w, "h:1");
}

/* Append an attribute record: sample_attr with one nsec replaced. */
static void
w_attr(struct w *w, int which, uint32_t nsec)
{
	struct proto_attr a = sample_attr;

	if (which == 0)
		a.atime.nsec = nsec;
	if (which == 1)
		a.mtime.nsec = nsec;
	if (which == 2)
		a.ctime.nsec = nsec;
	w_attr_of(w, &a);
}

/* A TRAP of one record of kind with path (raw string field) and a u16
 * count said; REMOVE and DATA take no more, others get their fields. */
static void
w_trap(struct w *w, uint64_t seq, int count, int kind, uint32_t len,
    const void *p, size_t n)
{
	w_hdr(w, DGRAM_TRAP, 0, seq);
	w_int(w, count, 2);
	w_int(w, kind, 1);
	w_int(w, 3, 4);
	w_int(w, 1700000000000000000ull, 8);
	w_strn(w, len, p, n);
	if (kind == DGRAM_RENAME) {
		w_int(w, 4, 4);
		w_str(w, "b");
	}
	if (kind == DGRAM_CREATE || kind == DGRAM_ATTR)
		w_attr(w, 0, 0);
}

/* A TRAP of one DATA record for [offset, offset + length). */
static void
w_data(struct w *w, uint64_t offset, uint64_t length)
{
	w_trap(w, 1, 1, DGRAM_DATA, 2, "f", 2);
	w_int(w, offset, 8);
	w_int(w, length, 8);
}

/* A LOCATE of a union path given as a raw string field. */
static void
w_locate(struct w *w, uint32_t len, const void *p, size_t n)
{
	w_hdr(w, DGRAM_LOCATE, 0, 0);
	w_int(w, 42, 8);
	w_strn(w, len, p, n);
}

/* A LOCATED with count said and n hits sent, one nsec replaced. */
static void
w_located(struct w *w, int count, int n, uint32_t mtime_nsec)
{
	int i;

	w_hdr(w, DGRAM_LOCATED, 0, 0);
	w_int(w, 42, 8);
	w_str(w, "/a");
	w_int(w, count, 2);
	for (i = 0; i < n; i++) {
		w_int(w, i, 4);
		w_attr(w, 1, mtime_nsec);
	}
}

/* An ANNOUNCE with aflags, count said and one export (name, at, flags)
 * sent when count > 0. */
static void
w_announce(struct w *w, int aflags, int count, const char *name, const char *at,
    int flags)
{
	w_hdr(w, DGRAM_ANNOUNCE, 0, 0);
	w_int(w, aflags, 1);
	w_int(w, 1000, 8);
	w_int(w, count, 2);
	if (count > 0) {
		w_int(w, 5, 4);
		w_str(w, name);
		w_str(w, at);
		w_int(w, flags, 1);
	}
}

/* A RESEND asking for [first, last]. */
static void
w_resend(struct w *w, uint64_t first, uint64_t last)
{
	w_hdr(w, DGRAM_RESEND, 0, 0);
	w_str(w, "q");
	w_int(w, 9, 8);
	w_int(w, first, 8);
	w_int(w, last, 8);
}

/* A HEARTBEAT whose peer name is given as a raw string field. */
static void
w_named(struct w *w, uint32_t len, const void *p, size_t n)
{
	w_raw_hdr(w, DGRAM_MAGIC, DGRAM_VERSION, DGRAM_HEARTBEAT, 0, 0, 0);
	w_strn(w, len, p, n);
	w_str(w, "h:1");
	w_int(w, 1000, 8);
}

/* A GOODBYE with a raw fixed header. */
static void
w_bare(struct w *w, uint32_t magic, int version, int type, int flags,
    int reserved)
{
	w_raw_hdr(w, magic, version, type, flags, reserved, 0);
	w_str(w, "p");
	w_str(w, "h:1");
}

/*
 * Build hand-assembled datagram i into w; its name, whether it must be
 * accepted.  NULL past the end of the table.
 */
static const char *
hand_dgram(int i, struct w *w, int *good)
{
	*good = 0;
	switch (i) {
	/* accepted */
	case 0:
		*good = 1;
		w_bare(w, DGRAM_MAGIC, 1, DGRAM_GOODBYE, 0, 0);
		return "goodbye, the smallest datagram";
	case 1:
		*good = 1;
		w_locate(w, 2, "/", 2);
		return "locate /";
	case 2:
		*good = 1;
		w_locate(w, 14, "/a b/..c/.d/e", 14);
		return "locate /a b/..c/.d/e";
	case 3:
		*good = 1;
		w_located(w, 0, 0, 0);
		return "located with no hits";
	case 4:
		*good = 1;
		w_trap(w, 1, 1, DGRAM_REMOVE, 1, "", 1);
		return "trap remove of the export root";
	case 5:
		*good = 1;
		w_data(w, UINT64_MAX - 1, 1);
		return "trap data ending at 2^64-1";
	case 6:
		*good = 1;
		w_announce(w, 3, 0, NULL, NULL, 0);
		return "announce answer partial, no exports";
	case 7:
		*good = 1;
		w_announce(w, 0, 1, "e", "/a", 1);
		return "announce read-only export at /a";
	case 8:
		*good = 1;
		w_resend(w, 1, 1);
		return "resend 1..1";
	case 9:
		*good = 1;
		w_named(w, 256, repeat('n', 255), 256);
		return "peer name of 255 bytes";
	case 10:
		*good = 1;
		w_bare(w, DGRAM_MAGIC, 1, DGRAM_GOODBYE, DGRAM_FLAG_MAC, 0);
		w_int(w, 1, 8);
		w_raw(w, sample_mac, DGRAM_MAC_LEN);
		return "goodbye with serial and MAC";
	case 11:
		*good = 1;
		w_trap(w, 1, 1, DGRAM_REMOVE, 1341, long_path(1340), 1341);
		return "datagram of exactly 1400 bytes";
	case 12:
		*good = 1;
		w_trap(w, UINT64_MAX, 1, DGRAM_RENAME, 2, "a", 2);
		return "trap rename, seq 2^64-1";
	/* refused: header */
	case 13:
		w_trap(w, 1, 1, DGRAM_REMOVE, 1342, long_path(1341), 1342);
		return "datagram of 1401 bytes";
	case 14:
		w_bare(w, 0x44465551, 1, DGRAM_GOODBYE, 0, 0);
		return "bad magic";
	case 15:
		w_bare(w, PROTO_MAGIC, 1, DGRAM_GOODBYE, 0, 0);
		return "TCP magic";
	case 16:
		w_bare(w, DGRAM_MAGIC, 0, DGRAM_GOODBYE, 0, 0);
		return "version 0";
	case 17:
		w_bare(w, DGRAM_MAGIC, 2, DGRAM_GOODBYE, 0, 0);
		return "version 2";
	case 18:
		w_bare(w, DGRAM_MAGIC, 1, DGRAM_GOODBYE, 0, 1);
		return "reserved byte 1";
	case 19:
		w_bare(w, DGRAM_MAGIC, 1, DGRAM_GOODBYE, 0x02, 0);
		return "flag bit 1";
	case 20:
		w_bare(w, DGRAM_MAGIC, 1, DGRAM_GOODBYE, 0x80, 0);
		return "flag bit 7";
	case 21:
		w_bare(w, DGRAM_MAGIC, 1, 0, 0, 0);
		return "type 0";
	case 22:
		w_bare(w, DGRAM_MAGIC, 1, DGRAM_TYPE_MAX, 0, 0);
		return "type TYPE_MAX";
	case 23:
		w_bare(w, DGRAM_MAGIC, 1, 255, 0, 0);
		return "type 255";
	case 24:
		w_bare(w, DGRAM_MAGIC, 1, DGRAM_GOODBYE, DGRAM_FLAG_MAC, 0);
		return "MAC flag without the MAC";
	case 25:
		w_named(w, 2, "p", 2);
		w->b[6] = DGRAM_FLAG_MAC;
		w_int(w, 1, 8);
		w_raw(w, sample_mac, DGRAM_MAC_LEN - 1);
		return "trailer one byte short";
	case 26:
		w_bare(w, DGRAM_MAGIC, 1, DGRAM_GOODBYE, 0, 0);
		w_int(w, 0, 1);
		return "goodbye with a body";
	/* refused: strings */
	case 27:
		w_named(w, 1, "p", 1);
		return "name missing NUL";
	case 28:
		w_named(w, 4, "a\0b", 4);
		return "name with inner NUL";
	case 29:
		w_named(w, 0, "", 0);
		return "name length 0";
	case 30:
		w_named(w, 1, "", 1);
		return "name empty";
	case 31:
		w_named(w, 257, repeat('n', 256), 257);
		return "name of 256 bytes";
	case 32:
		w_named(w, 100, "p", 2);
		return "name length overruns";
	case 33:
		w_named(w, 0xffff, "p", 2);
		return "name length 65535";
	case 34:
		w_raw_hdr(w, DGRAM_MAGIC, 1, DGRAM_GOODBYE, 0, 0, 0);
		w_str(w, "p");
		w_str(w, "");
		return "uri empty";
	case 35:
		w_locate(w, 2, "a", 2);
		return "locate relative path";
	case 36:
		w_locate(w, 4, "/a/", 4);
		return "locate /a/";
	case 37:
		w_locate(w, 3, "//", 3);
		return "locate //";
	case 38:
		w_locate(w, 8, "/a/../b", 8);
		return "locate /a/../b";
	case 39:
		w_locate(w, 3, "/.", 3);
		return "locate /.";
	case 40:
		w_locate(w, 1, "", 1);
		return "locate empty path";
	case 41:
		w_trap(w, 1, 1, DGRAM_REMOVE, 5, "/abs", 5);
		return "trap path /abs";
	case 42:
		w_trap(w, 1, 1, DGRAM_REMOVE, 5, "a//b", 5);
		return "trap path a//b";
	case 43:
		w_trap(w, 1, 1, DGRAM_REMOVE, 3, "..", 3);
		return "trap path ..";
	case 44:
		w_trap(w, 1, 1, DGRAM_REMOVE, 3, "a/", 3);
		return "trap path a/";
	case 45:
		w_trap(w, 1, 1, DGRAM_REMOVE, 257, repeat('c', 256), 257);
		return "trap path component of 256 bytes";
	case 46:
		w_trap(w, 1, 1, DGRAM_REMOVE, 3, "a\0", 3);
		return "trap path with inner NUL";
	/* refused: records and counts */
	case 47:
		w_trap(w, 1, 1, 0, 2, "a", 2);
		return "trap kind 0";
	case 48:
		w_trap(w, 1, 1, DGRAM_KIND_MAX, 2, "a", 2);
		return "trap kind KIND_MAX";
	case 49:
		w_hdr(w, DGRAM_TRAP, 0, 1);
		w_int(w, 0, 2);
		return "trap with no record";
	case 50:
		w_trap(w, 1, 2, DGRAM_REMOVE, 2, "a", 2);
		return "trap count beyond records";
	case 51:
		w_trap(w, 1, 0xffff, DGRAM_REMOVE, 2, "a", 2);
		return "trap count 65535";
	case 52:
		w_trap(w, 0, 1, DGRAM_REMOVE, 2, "a", 2);
		return "trap seq 0";
	case 53:
		w_data(w, 0, 0);
		return "trap data length 0";
	case 54:
		w_data(w, UINT64_MAX, 1);
		return "trap data wrapping";
	case 55:
		w_hdr(w, DGRAM_TRAP, 0, 1);
		w_int(w, 1, 2);
		w_int(w, DGRAM_ATTR, 1);
		w_int(w, 3, 4);
		w_int(w, 0, 8);
		w_str(w, "a");
		w_attr(w, 0, 1000000000);
		return "trap attr atime nsec 1e9";
	case 56:
		w_hdr(w, DGRAM_TRAP, 0, 1);
		w_int(w, 1, 2);
		w_int(w, DGRAM_CREATE, 1);
		w_int(w, 3, 4);
		w_int(w, 0, 8);
		w_str(w, "a");
		w_attr(w, 2, 0xffffffff);
		return "trap create ctime nsec 2^32-1";
	case 57:
		w_located(w, 1, 1, 1000000000);
		return "located hit mtime nsec 1e9";
	case 58:
		w_located(w, 2, 1, 0);
		return "located count beyond hits";
	case 59:
		w_located(w, 0, 1, 0);
		return "located hits beyond count";
	case 60:
		w_announce(w, 4, 0, NULL, NULL, 0);
		return "announce flag bit 2";
	case 61:
		w_announce(w, 0, 1, "e", "/", 2);
		return "announce export flag bit 1";
	case 62:
		w_announce(w, 0, 2, "e", "/", 0);
		return "announce count beyond exports";
	case 63:
		w_announce(w, 0, 1, "", "/", 0);
		return "announce export name empty";
	case 64:
		w_announce(w, 0, 1, "e", "a", 0);
		return "announce export at relative";
	case 65:
		w_announce(w, 0, 257, "e", "/", 0);
		return "announce 257 exports";
	case 66:
		w_resend(w, 0, 1);
		return "resend first 0";
	case 67:
		w_resend(w, 3, 2);
		return "resend first above last";
	case 68:
		w_trap(w, 1, 1, DGRAM_REMOVE, 2, "a", 2);
		w_int(w, 0, 1);
		return "trap with a trailing byte";
	}
	return NULL;
}

/* Feed every hand-assembled datagram to the decoder. */
static void
test_hand_dgrams(void)
{
	static struct w w;
	const char *name;
	int i, good, error;

	for (i = 0; (name = hand_dgram(i, &w, &good)) != NULL; i++) {
		error = decode_copy(w.b, w.n);
		tap_ok(error == (good ? 0 : -EPROTO), "%s: %s",
		    good ? "accepted" : "refused", name);
	}
}

/* The number of datagrams hand_dgram() builds. */
static int
hand_dgrams(void)
{
	static struct w w;
	int i, good;

	for (i = 0; hand_dgram(i, &w, &good) != NULL; i++)
		;
	return i;
}

#define GOLDEN_TESTS 1

/* Byte-for-byte comparison of a HEARTBEAT with its assembled bytes. */
static void
test_golden(void)
{
	static const uint8_t want[] = {
		0x50, 0x55, 0x46, 0x44, 0x01, 0x02, 0x00, 0x00, /* PUFD */
		0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* boot */
		0x2a, 0, 0, 0, 0, 0, 0, 0,                      /* seq 42 */
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* time -1 */
		0x02, 0x00, 'a', 0x00,                          /* name */
		0x04, 0x00, 'h', ':', '7', 0x00,                /* uri */
		0xe8, 0x03, 0, 0, 0, 0, 0, 0,                   /* 1000 ms */
	};
	struct dgram d = {
		.type = DGRAM_HEARTBEAT,
		.boot_id = 0x0102030405060708ull,
		.seq = 42,
		.time = -1,
		.name = "a",
		.uri = "h:7",
		.uptime_ms = 1000,
	};
	uint8_t buf[DGRAM_MAX];
	size_t len;

	tap_ok(dgram_encode(&d, buf, sizeof buf, &len) == 0 &&
		len == sizeof want && memcmp(buf, want, len) == 0,
	    "heartbeat is %zu bytes, as assembled by hand", sizeof want);
}

/* Whether a batch of len bytes has the size DATAGRAMS.md gives and
 * decodes to the header and the taken records. */
static int
batch_ok(const uint8_t *buf, size_t len, const struct dgram *hdr,
    const struct dgram_trap *recs, size_t taken)
{
	struct dgram d;
	size_t i, want = hdr_size(hdr) + 2;
	int ok;

	for (i = 0; i < taken; i++)
		want += trap_size(&recs[i]);
	want += (hdr->flags & DGRAM_FLAG_MAC) ? DGRAM_TRAILER_LEN : 0;
	if (len != want || dgram_decode(buf, len, &d) != 0) {
		tap_diag("batch of %zu: %zu bytes, want %zu", taken, len, want);
		return 0;
	}
	ok = d.type == DGRAM_TRAP && d.seq == hdr->seq && d.ntraps == taken &&
	    str_eq(d.name, hdr->name) && d.flags == hdr->flags;
	for (i = 0; ok && i < taken; i++)
		ok = trap_eq(&d.traps[i], &recs[i]);
	dgram_clear(&d);
	return ok;
}

/* Fill recs[n] with records of every kind and pseudo-random path
 * lengths up to maxlen, the paths in store. */
static void
make_records(struct dgram_trap *recs, size_t n, char (*store)[2][1400],
    size_t maxlen)
{
	uint32_t r = 12345;
	size_t i, len, len2;

	for (i = 0; i < n; i++) {
		r = r * 1103515245u + 12345u;
		len = 1 + (r >> 8) % maxlen;
		len2 = 1 + (r >> 4) % 60;
		memcpy(store[i][0], long_path(len), len + 1);
		memcpy(store[i][1], long_path(len2), len2 + 1);
		recs[i] = sample_traps[i % NELEM(sample_traps)];
		recs[i].path = store[i][0];
		recs[i].path2 = store[i][1];
		recs[i].time = (int64_t)i;
	}
}

/* Whether n bytes at p still hold the 0xee filler. */
static int
untouched(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != 0xee)
			return 0;
	return 1;
}

/*
 * Pack n records with encode_traps into datagrams of at most cap bytes,
 * the way the daemon will; whether every datagram decodes to its slice,
 * is within cap and DGRAM_MAX, and is full (the next record would not
 * have fit).  *count is the number of datagrams.
 */
static int
pack_all(const struct dgram *hdr0, const struct dgram_trap *recs, size_t n,
    size_t cap, size_t *count)
{
	uint8_t buf[2 * DGRAM_MAX];
	struct dgram hdr = *hdr0;
	size_t at, len, taken, limit = cap < DGRAM_MAX ? cap : DGRAM_MAX;
	int error, ok = 1;

	*count = 0;
	for (at = 0; at < n && ok; at += taken) {
		memset(buf, 0xee, sizeof buf);
		error = dgram_encode_traps(&hdr, recs + at, n - at, buf, cap,
		    &len, &taken);
		if (error != 0 || taken == 0) {
			tap_diag("record %zu: error %d", at, error);
			return 0;
		}
		ok = len <= limit &&
		    untouched(buf + limit, sizeof buf - limit) &&
		    batch_ok(buf, len, &hdr, recs + at, taken);
		if (ok && at + taken < n &&
		    len + trap_size(&recs[at + taken]) <= limit) {
			tap_diag("datagram %zu not full: %zu + %zu <= %zu",
			    *count, len, trap_size(&recs[at + taken]), limit);
			ok = 0;
		}
		hdr.seq++;
		(*count)++;
	}
	return ok;
}

#define BATCH_TESTS 13

/* The trap batch encoder: full datagrams, never beyond the limit. */
static void
test_batch(void)
{
	static struct dgram_trap recs[400];
	static char store[400][2][1400];
	struct dgram hdr = full_dgram(DGRAM_HEARTBEAT, 0);
	struct dgram hdrm = full_dgram(DGRAM_HEARTBEAT, 1);
	struct dgram_trap big[3];
	uint8_t buf[DGRAM_MAX], buf2[DGRAM_MAX];
	size_t count, len, len2, taken, i, sum;
	struct dgram d;
	int ok;

	hdr.seq = hdrm.seq = 1;
	make_records(recs, NELEM(recs), store, 300);
	ok = pack_all(&hdr, recs, NELEM(recs), DGRAM_MAX, &count);
	tap_ok(ok, "400 records, paths 1..300 bytes: %zu full datagrams",
	    count);
	for (i = 0, sum = 0; i < NELEM(recs); i++)
		sum += trap_size(&recs[i]);
	tap_diag("%zu record bytes, %zu datagrams of at most %d bytes", sum,
	    count, DGRAM_MAX);
	ok = pack_all(&hdrm, recs, NELEM(recs), DGRAM_MAX, &count);
	tap_ok(ok, "the same with MAC: %zu full datagrams", count);
	ok = pack_all(&hdr, recs, NELEM(recs), 600, &count);
	tap_ok(ok, "the same into 600-byte buffers: %zu datagrams", count);
	ok = pack_all(&hdr, recs, NELEM(recs), 4 * DGRAM_MAX, &count);
	tap_ok(ok, "a buffer larger than DGRAM_MAX is used up to it only");
	make_records(recs, NELEM(recs), store, 1200);
	ok = pack_all(&hdrm, recs, NELEM(recs), DGRAM_MAX, &count);
	tap_ok(ok, "400 records, paths 1..1200 bytes, MAC: %zu datagrams",
	    count);

	/* Typical records: 30-byte paths. */
	for (i = 0; i < NELEM(sample_traps); i++) {
		big[0] = sample_traps[i];
		big[0].path = long_path(30);
		tap_diag("%s record, 30-byte path: %zu bytes",
		    dgram_kind_name(big[0].kind), trap_size(&big[0]));
	}

	/* A 1320-byte path fits alone; 1400 bytes does not fit at all. */
	big[0] = sample_traps[1];
	big[0].path = "small";
	big[1] = sample_traps[1];
	big[1].path = strdup(long_path(1320));
	big[2] = sample_traps[1];
	big[2].path = strdup(long_path(1400));
	tap_ok(dgram_encode_traps(&hdr, big, 2, buf, sizeof buf, &len,
		   &taken) == 0 &&
		taken == 1,
	    "a 1320-byte path does not join");
	tap_ok(dgram_encode_traps(&hdr, big + 1, 2, buf, sizeof buf, &len,
		   &taken) == 0 &&
		taken == 1 && batch_ok(buf, len, &hdr, big + 1, 1),
	    "a 1320-byte path goes alone (%zu bytes)", len);
	len = 99;
	taken = 99;
	tap_ok(dgram_encode_traps(&hdr, big + 2, 1, buf, sizeof buf, &len,
		   &taken) == -EMSGSIZE &&
		taken == 0 && len == 0,
	    "a 1400-byte path is refused, nothing taken");
	free((char *)big[1].path);
	free((char *)big[2].path);

	/* Refusals and agreement with dgram_encode. */
	big[0] = sample_traps[0];
	big[1] = sample_traps[1];
	big[1].path = "/abs";
	tap_ok(dgram_encode_traps(&hdr, big, 2, buf, sizeof buf, &len,
		   &taken) == -EINVAL &&
		dgram_encode_traps(&hdr, big, 0, buf, sizeof buf, &len,
		    &taken) == -EINVAL,
	    "an invalid record, or "
	    "none, is refused");
	hdr.seq = 0;
	tap_ok(dgram_encode_traps(&hdr, sample_traps, 1, buf, sizeof buf, &len,
		   &taken) == -EINVAL,
	    "a batch with seq 0 is refused");
	hdr.seq = 1;
	tap_ok(dgram_encode_traps(&hdr, sample_traps, 1, buf, 40, &len,
		   &taken) == -EMSGSIZE &&
		taken == 0,
	    "no room for the header");
	d = full_dgram(DGRAM_TRAP, 1);
	d.seq = 1;
	ok = dgram_encode_traps(&d, d.traps, d.ntraps, buf, sizeof buf, &len,
		 &taken) == 0 &&
	    taken == d.ntraps &&
	    dgram_encode(&d, buf2, sizeof buf2, &len2) == 0 && len == len2 &&
	    memcmp(buf, buf2, len) == 0;
	tap_ok(ok, "a batch that fits is what dgram_encode gives");
	d.traps = recs;
	d.ntraps = NELEM(recs);
	ok = dgram_encode(&d, buf, sizeof buf, &len) == -EMSGSIZE &&
	    len > DGRAM_MAX && dgram_encode(&d, NULL, 0, &len2) == -EMSGSIZE &&
	    len2 == len;
	tap_ok(ok, "dgram_encode refuses 400 records, measuring %zu bytes",
	    len);
}

/* An encoder refusal: the change to a full datagram and the error. */
static const char *
spoil(int i, struct dgram *d, struct dgram_trap *t, struct proto_export *x,
    struct dgram_hit *h, int *want)
{
	*want = -EINVAL;
	switch (i) {
	case 0:
		d->type = 0;
		return "type 0";
	case 1:
		d->type = DGRAM_TYPE_MAX;
		return "type TYPE_MAX";
	case 2:
		d->flags = 0x02;
		return "flag bit 1";
	case 3:
		d->name = NULL;
		return "no name";
	case 4:
		d->name = "";
		return "empty name";
	case 5:
		d->uri = repeat('u', 256);
		return "256-byte uri";
	case 6:
		d->type = DGRAM_ANNOUNCE;
		d->aflags = 4;
		return "announce flag bit 2";
	case 7:
		d->type = DGRAM_ANNOUNCE;
		d->nexports = 257;
		return "257 exports";
	case 8:
		d->type = DGRAM_ANNOUNCE;
		x->at = "rel";
		d->exports = x;
		d->nexports = 1;
		return "export at relative";
	case 9:
		d->type = DGRAM_ANNOUNCE;
		d->exports = NULL;
		return "exports NULL with a count";
	case 10:
		d->type = DGRAM_LOCATE;
		d->path = "a/b";
		return "locate relative path";
	case 11:
		d->type = DGRAM_LOCATE;
		d->path = "/a/";
		return "locate /a/";
	case 12:
		d->type = DGRAM_LOCATED;
		h->attr.ctime.nsec = 1000000000;
		d->hits = h;
		d->nhits = 1;
		return "hit ctime nsec 1e9";
	case 13:
		d->type = DGRAM_TRAP;
		d->seq = 0;
		return "trap seq 0";
	case 14:
		d->type = DGRAM_TRAP;
		d->ntraps = 0;
		return "trap no record";
	case 15:
		d->type = DGRAM_TRAP;
		t->kind = 0;
		return "trap kind 0";
	case 16:
		d->type = DGRAM_TRAP;
		t->kind = DGRAM_DATA;
		t->length = 0;
		return "trap data length 0";
	case 17:
		d->type = DGRAM_TRAP;
		t->kind = DGRAM_DATA;
		t->offset = UINT64_MAX;
		return "trap data wrapping";
	case 18:
		d->type = DGRAM_TRAP;
		t->kind = DGRAM_RENAME;
		t->path2 = NULL;
		return "trap rename without path2";
	case 19:
		d->type = DGRAM_TRAP;
		t->path = "..";
		return "trap path ..";
	case 20:
		d->type = DGRAM_TRAP;
		t->kind = DGRAM_ATTR;
		t->attr.mtime.nsec = 1000000000;
		return "trap attr mtime nsec 1e9";
	case 21:
		d->type = DGRAM_RESEND;
		d->first = 0;
		return "resend first 0";
	case 22:
		d->type = DGRAM_RESEND;
		d->first = 10;
		d->last = 9;
		return "resend first above last";
	case 23:
		d->type = DGRAM_LOCATED;
		d->nhits = 14;
		*want = -EMSGSIZE;
		return "located with 14 hits";
	case 24:
		d->type = DGRAM_TRAP;
		d->ntraps = 70000;
		*want = -EMSGSIZE;
		return "trap with 70000 records";
	}
	return NULL;
}

/* The number of refusals spoil() makes. */
static int
spoils(void)
{
	struct dgram d;
	struct dgram_trap t;
	struct proto_export x;
	struct dgram_hit h;
	int i, want;

	for (i = 0; spoil(i, &d, &t, &x, &h, &want) != NULL; i++)
		;
	return i;
}

/* The encoder refuses every spoiled datagram. */
static void
test_encoder_refusals(void)
{
	struct dgram_hit hits[14], h;
	struct dgram_trap t, *many;
	struct dgram d;
	struct proto_export x;
	uint8_t buf[DGRAM_MAX];
	const char *name;
	size_t len, i;
	int want, error;

	for (i = 0; i < NELEM(hits); i++)
		hits[i] = sample_hits[i % NELEM(sample_hits)];
	if ((many = calloc(70000, sizeof *many)) == NULL)
		abort();
	for (i = 0; i < 70000; i++)
		many[i] = sample_traps[1];
	for (i = 0; (int)i < spoils(); i++) {
		d = full_dgram(DGRAM_HEARTBEAT, 0);
		d.hits = hits;
		d.nhits = 1;
		t = sample_traps[0];
		d.traps = &t;
		d.ntraps = 1;
		x = sample_exports[0];
		h = sample_hits[0];
		name = spoil(i, &d, &t, &x, &h, &want);
		if (d.ntraps == 70000)
			d.traps = many;
		error = dgram_encode(&d, buf, sizeof buf, &len);
		tap_ok(error == want && (error != -EINVAL || len == 0),
		    "encoder refuses %s", name);
		if (error != want)
			tap_diag("  got %d, want %d", error, want);
	}
	free(many);
}

#define NAMES_TESTS 2

/* Type and kind names, as DATAGRAMS.md gives them. */
static void
test_names(void)
{
	size_t i;
	int ok;

	ok = NELEM(expect) == DGRAM_TYPE_MAX - 1 &&
	    strcmp(dgram_type_name(0), "unknown") == 0 &&
	    strcmp(dgram_type_name(DGRAM_TYPE_MAX), "unknown") == 0;
	for (i = 0; i < NELEM(expect); i++)
		ok = ok && expect[i].type == (int)i + 1 &&
		    strcmp(dgram_type_name(expect[i].type), expect[i].name) ==
			0;
	tap_ok(ok, "every type tested, names as DATAGRAMS.md says");
	ok = NELEM(kind_expect) == DGRAM_KIND_MAX - 1 &&
	    strcmp(dgram_kind_name(0), "unknown") == 0 &&
	    strcmp(dgram_kind_name(DGRAM_KIND_MAX), "unknown") == 0;
	for (i = 0; i < NELEM(kind_expect); i++)
		ok = ok && kind_expect[i].kind == (int)i + 1 &&
		    strcmp(dgram_kind_name(kind_expect[i].kind),
			kind_expect[i].name) == 0;
	tap_ok(ok, "every record kind tested, names as DATAGRAMS.md says");
}

/* Write one file of the seed corpus. */
static int
write_seed(const char *dir, const char *name, const uint8_t *buf, size_t len)
{
	char path[4096];
	FILE *f;
	int ok;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	if ((f = fopen(path, "wb")) == NULL)
		return -1;
	ok = fwrite(buf, 1, len, f) == len;
	return fclose(f) == 0 && ok ? 0 : -1;
}

/* Write every type, with and without MAC, and two batches into dir. */
static int
write_corpus(const char *dir)
{
	static struct dgram_trap recs[40];
	static char store[40][2][1400];
	uint8_t buf[DGRAM_MAX];
	struct dgram d;
	char name[64];
	size_t i, len, taken;
	int mac, error = 0;

	for (i = 0; i < NELEM(expect); i++) {
		for (mac = 0; mac <= 1; mac++) {
			d = full_dgram(expect[i].type, mac);
			error |= dgram_encode(&d, buf, sizeof buf, &len);
			snprintf(name, sizeof name, "%s%s", expect[i].name,
			    mac ? "-mac" : "");
			error |= write_seed(dir, name, buf, len);
		}
	}
	make_records(recs, NELEM(recs), store, 100);
	d = full_dgram(DGRAM_TRAP, 0);
	d.seq = 1;
	error |= dgram_encode_traps(&d, recs, NELEM(recs), buf, sizeof buf,
	    &len, &taken);
	error |= write_seed(dir, "trap-batch", buf, len);
	d.flags = DGRAM_FLAG_MAC;
	error |= dgram_encode_traps(&d, recs + 5, NELEM(recs) - 5, buf,
	    sizeof buf, &len, &taken);
	error |= write_seed(dir, "trap-batch-mac", buf, len);
	return error == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	size_t i;

	if (argc == 3 && strcmp(argv[1], "--corpus") == 0)
		return write_corpus(argv[2]);

	tap_plan(GOLDEN_TESTS + PER_TYPE * (int)NELEM(expect) + NAMES_TESTS +
	    BATCH_TESTS + hand_dgrams() + spoils());
	test_golden();
	for (i = 0; i < NELEM(expect); i++)
		test_type(&expect[i]);
	test_names();
	test_batch();
	test_hand_dgrams();
	test_encoder_refusals();
	return tap_done();
}
