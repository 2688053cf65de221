/*
 * datagram.c - encoder and decoder of pufs datagrams.
 *
 * As in proto/proto.c, tables drive both directions: a body field table
 * lists every field a datagram body can carry, in wire order, and a type
 * table says which of them each type uses; a record field table and a
 * kind table do the same for the change records of a TRAP.  Encoder and
 * decoder walk the same tables and share one set of checks, so what the
 * encoder writes the decoder accepts, and re-encoding a decoded datagram
 * gives back the same bytes.  Strings, counts, export entries and
 * attribute records are written and read by proto/wire.c, the same code
 * as in the TCP frames, with the datagram's widths (u16 lengths and
 * counts, u8 export flags).
 *
 * Limits: pure code, no I/O, no clock.  The encoder writes into the
 * caller's buffer and never more than DGRAM_MAX bytes.  Decoded strings
 * point into the caller's buffer; only the exports, hits and traps
 * arrays are allocated (malloc(3)), and dgram_clear() frees them.  The
 * MAC is carried, not computed: that is the security code's job.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "datagram.h"
#include "wire.h"

#define FLAG_MASK DGRAM_FLAG_MAC /* header flags in v1 */
#define AFLAG_MASK (DGRAM_ANNOUNCE_ANSWER | DGRAM_ANNOUNCE_PARTIAL)
#define COUNT_MAX UINT16_MAX              /* counts are u16 */
#define ATTR_LEN 92                       /* wire size of struct proto_attr */
#define HDR_MIN (DGRAM_FIXED_LEN + 4 + 4) /* name, uri "x" */
#define EXPORT_MIN (4 + 4 + 4 + 1)        /* name "x", at "/" */
#define HIT_MIN (4 + ATTR_LEN)
#define TRAP_MIN (1 + 4 + 8 + 3) /* path "" */

/* The shape of a field on the wire. */
enum field_kind {
	K_U32 = WIRE_K_U32, /* the simple ones: proto/wire.c's */
	K_U64 = WIRE_K_U64,
	K_I64 = WIRE_K_U64, /* an int64_t: the same eight bytes */
	K_TEXT = WIRE_K_TEXT,
	K_PATH = WIRE_K_PATH,
	K_UPATH = WIRE_K_UPATH,
	K_ATTR = WIRE_K_ATTR,
	K_AFLAGS = WIRE_K_MAX, /* u8, DGRAM_ANNOUNCE_* bits only */
	K_EXPORTS,             /* u16 count + export entries */
	K_HITS,                /* u16 count + hits */
	K_TRAPS,               /* u16 count (>= 1) + change records */
};

/* One field: its bit in the masks, its shape and where it lives. */
struct field {
	uint32_t bit;
	enum field_kind kind;
	size_t off;  /* the member */
	size_t off2; /* its count, for the arrays */
};

/* Body fields, in wire order. */
#define B_AFLAGS (1u << 0)
#define B_UPTIME (1u << 1)
#define B_REQID (1u << 2)
#define B_PATH (1u << 3)
#define B_EXPORTS (1u << 4)
#define B_HITS (1u << 5)
#define B_TARGET (1u << 6)
#define B_TBOOT (1u << 7)
#define B_FIRST (1u << 8)
#define B_LAST (1u << 9)
#define B_TRAPS (1u << 10)

#define BF(bit, kind, member) \
	{ \
		bit, kind, offsetof(struct dgram, member), 0 \
	}
#define BA(bit, kind, member, count) \
	{ \
		bit, kind, offsetof(struct dgram, member), \
		    offsetof(struct dgram, count) \
	}
static const struct field body_fields[] = {
	BF(B_AFLAGS, K_AFLAGS, aflags),
	BF(B_UPTIME, K_U64, uptime_ms),
	BF(B_REQID, K_U64, req_id),
	BF(B_PATH, K_UPATH, path),
	BA(B_EXPORTS, K_EXPORTS, exports, nexports),
	BA(B_HITS, K_HITS, hits, nhits),
	BF(B_TARGET, K_TEXT, target),
	BF(B_TBOOT, K_U64, target_boot),
	BF(B_FIRST, K_U64, first),
	BF(B_LAST, K_U64, last),
	BA(B_TRAPS, K_TRAPS, traps, ntraps),
};

/* Change record fields after the kind byte, in wire order. */
#define T_EXPORT (1u << 0)
#define T_TIME (1u << 1)
#define T_PATH (1u << 2)
#define T_EXPORT2 (1u << 3)
#define T_PATH2 (1u << 4)
#define T_ATTR (1u << 5)
#define T_OFFSET (1u << 6)
#define T_LENGTH (1u << 7)
#define T_COMMON (T_EXPORT | T_TIME | T_PATH)

#define TF(bit, kind, member) \
	{ \
		bit, kind, offsetof(struct dgram_trap, member), 0 \
	}
static const struct field trap_fields[] = {
	TF(T_EXPORT, K_U32, export_id),
	TF(T_TIME, K_I64, time),
	TF(T_PATH, K_PATH, path),
	TF(T_EXPORT2, K_U32, export2),
	TF(T_PATH2, K_PATH, path2),
	TF(T_ATTR, K_ATTR, attr),
	TF(T_OFFSET, K_U64, offset),
	TF(T_LENGTH, K_U64, length),
};

#define NFIELDS(a) (sizeof(a) / sizeof(a)[0])

/* A datagram type or a change kind: its log name and its fields. */
struct spec {
	const char *name;
	uint32_t fields; /* B_* or T_* */
};

static const struct spec types[DGRAM_TYPE_MAX] = {
	[DGRAM_ANNOUNCE] = { "announce", B_AFLAGS | B_UPTIME | B_EXPORTS },
	[DGRAM_HEARTBEAT] = { "heartbeat", B_UPTIME },
	[DGRAM_GOODBYE] = { "goodbye", 0 },
	[DGRAM_LOCATE] = { "locate", B_REQID | B_PATH },
	[DGRAM_LOCATED] = { "located", B_REQID | B_PATH | B_HITS },
	[DGRAM_TRAP] = { "trap", B_TRAPS },
	[DGRAM_RESEND] = { "resend", B_TARGET | B_TBOOT | B_FIRST | B_LAST },
};

static const struct spec kinds[DGRAM_KIND_MAX] = {
	[DGRAM_CREATE] = { "create", T_COMMON | T_ATTR },
	[DGRAM_REMOVE] = { "remove", T_COMMON },
	[DGRAM_RENAME] = { "rename", T_COMMON | T_EXPORT2 | T_PATH2 },
	[DGRAM_ATTR] = { "attr", T_COMMON | T_ATTR },
	[DGRAM_DATA] = { "data", T_COMMON | T_OFFSET | T_LENGTH },
};

/* The spec of a datagram type, or NULL for an unknown one. */
static const struct spec *
dgram_type_spec(int type)
{
	if (type <= 0 || type >= DGRAM_TYPE_MAX)
		return NULL;
	return &types[type];
}

/* The spec of a change kind, or NULL for an unknown one. */
static const struct spec *
dgram_kind_spec(int kind)
{
	if (kind <= 0 || kind >= DGRAM_KIND_MAX)
		return NULL;
	return &kinds[kind];
}

/* The log name of a datagram type. */
const char *
dgram_type_name(int type)
{
	const struct spec *sp = dgram_type_spec(type);

	return sp != NULL ? sp->name : "unknown";
}

/* The log name of a change kind. */
const char *
dgram_kind_name(int kind)
{
	const struct spec *sp = dgram_kind_spec(kind);

	return sp != NULL ? sp->name : "unknown";
}

/* The rules between fields of a body, beyond each field's own. */
static bool
dgram_body_ok(const struct dgram *d)
{
	switch (d->type) {
	case DGRAM_TRAP:
		return d->seq >= 1;
	case DGRAM_RESEND:
		return d->first >= 1 && d->first <= d->last;
	}
	return true;
}

/* The rules between fields of a change record. */
static bool
dgram_trap_ok(const struct dgram_trap *t)
{
	if (t->kind != DGRAM_DATA)
		return true;
	return t->length >= 1 && t->offset <= UINT64_MAX - t->length;
}

static void enc_field(struct wire_enc *, const struct field *, const void *);

/* Append one change record: kind, then the fields the kind lists. */
static void
enc_trap(struct wire_enc *e, const struct dgram_trap *t)
{
	const struct spec *sp;
	size_t i;

	if ((sp = dgram_kind_spec(t->kind)) == NULL) {
		wire_enc_check(e, false);
		return;
	}
	wire_enc_int(e, t->kind, 1);
	for (i = 0; i < NFIELDS(trap_fields); i++) {
		if (sp->fields & trap_fields[i].bit)
			enc_field(e, &trap_fields[i], t);
	}
	wire_enc_check(e, dgram_trap_ok(t));
}

/* Append one field of the struct at base. */
static void
enc_field(struct wire_enc *e, const struct field *f, const void *base)
{
	const char *m = (const char *)base + f->off;
	size_t i,
	    n = f->off2 != 0 ? *(const size_t *)((const char *)base + f->off2)
			     : 0;
	const struct proto_export *x;
	const struct dgram_hit *h;
	const struct dgram_trap *t;

	switch (f->kind) {
	case K_AFLAGS:
		wire_enc_check(e, (*(const uint8_t *)m & ~AFLAG_MASK) == 0);
		wire_enc_int(e, *(const uint8_t *)m, 1);
		break;
	case K_EXPORTS:
		x = *(struct proto_export *const *)m;
		wire_enc_check(e, n <= PROTO_MAX_EXPORTS);
		if (!wire_enc_count(e, x, n, 2))
			break;
		for (i = 0; i < n && e->err == 0; i++)
			wire_enc_export(e, &x[i], 1);
		break;
	case K_HITS:
		h = *(struct dgram_hit *const *)m;
		if (!wire_enc_count(e, h, n, 2))
			break;
		for (i = 0; i < n && e->err == 0; i++) {
			wire_enc_int(e, h[i].export_id, 4);
			wire_enc_attr(e, &h[i].attr);
		}
		break;
	case K_TRAPS:
		t = *(struct dgram_trap *const *)m;
		wire_enc_check(e, n >= 1);
		if (!wire_enc_count(e, t, n, 2))
			break;
		for (i = 0; i < n && e->err == 0; i++)
			enc_trap(e, &t[i]);
		break;
	default:
		wire_enc_field(e, f->kind, m);
		break;
	}
}

/* Start encoding into buf, cap bytes of which (at most DGRAM_MAX) count. */
static void
enc_begin(struct wire_enc *e, uint8_t *buf, size_t cap)
{
	wire_enc_fixed(e, buf, cap < DGRAM_MAX ? cap : DGRAM_MAX, 2);
}

/* Append the header of d, of the given type. */
static void
enc_header(struct wire_enc *e, const struct dgram *d, int type)
{
	wire_enc_check(e, dgram_type_spec(type) != NULL);
	wire_enc_check(e, (d->flags & ~FLAG_MASK) == 0);
	wire_enc_check(e, type != DGRAM_TRAP || d->seq >= 1);
	wire_enc_int(e, DGRAM_MAGIC, 4);
	wire_enc_int(e, DGRAM_VERSION, 1);
	wire_enc_int(e, type, 1);
	wire_enc_int(e, d->flags, 1);
	wire_enc_int(e, 0, 1);
	wire_enc_int(e, d->boot_id, 8);
	wire_enc_int(e, d->seq, 8);
	wire_enc_int(e, (uint64_t)d->time, 8);
	wire_enc_str(e, WIRE_TEXT, d->name);
	wire_enc_str(e, WIRE_TEXT, d->uri);
}

/* Append the trailer, serial and MAC, if d's flags ask for one. */
static void
enc_mac(struct wire_enc *e, const struct dgram *d)
{
	static const uint8_t zeros[DGRAM_MAC_LEN];

	if ((d->flags & DGRAM_FLAG_MAC) == 0)
		return;
	wire_enc_int(e, d->serial, 8);
	wire_enc_bytes(e, d->mac != NULL ? d->mac : zeros, DGRAM_MAC_LEN);
}

/* Encode one whole datagram into buf. */
int
dgram_encode(const struct dgram *d, uint8_t *buf, size_t cap, size_t *len)
{
	const struct spec *sp;
	struct wire_enc e;
	size_t i;

	*len = 0;
	if ((sp = dgram_type_spec(d->type)) == NULL)
		return -EINVAL;
	enc_begin(&e, buf, cap);
	enc_header(&e, d, d->type);
	for (i = 0; i < NFIELDS(body_fields) && e.err == 0; i++) {
		if (sp->fields & body_fields[i].bit)
			enc_field(&e, &body_fields[i], d);
	}
	wire_enc_check(&e, dgram_body_ok(d));
	enc_mac(&e, d);
	if (e.err != 0)
		return e.err;
	*len = e.len;
	return e.len <= e.cap ? 0 : -EMSGSIZE;
}

/* Encode a TRAP of as many leading records of recs[] as fit. */
int
dgram_encode_traps(const struct dgram *hdr, const struct dgram_trap *recs,
    size_t n, uint8_t *buf, size_t cap, size_t *len, size_t *taken)
{
	struct wire_enc e;
	size_t at, mark, i, maclen;

	*len = 0;
	*taken = 0;
	if (n == 0 || recs == NULL)
		return -EINVAL;
	maclen = (hdr->flags & DGRAM_FLAG_MAC) ? DGRAM_TRAILER_LEN : 0;
	enc_begin(&e, buf, cap);
	enc_header(&e, hdr, DGRAM_TRAP);
	at = e.len;
	wire_enc_int(&e, 0, 2); /* the count, patched below */
	if (e.err != 0)
		return e.err;
	if (e.len + maclen > e.cap)
		return -EMSGSIZE;
	e.cap -= maclen;
	for (i = 0; i < n && i < COUNT_MAX; i++) {
		mark = e.len;
		enc_trap(&e, &recs[i]);
		if (e.err != 0)
			return e.err;
		if (e.len > e.cap) {
			e.len = mark;
			break;
		}
	}
	if (i == 0)
		return -EMSGSIZE;
	e.cap += maclen;
	wire_put_le(buf + at, i, 2);
	enc_mac(&e, hdr);
	*len = e.len;
	*taken = i;
	return 0;
}

static void dec_field(struct wire_dec *, const struct field *, void *);

/* Consume one change record. */
static void
dec_trap(struct wire_dec *d, struct dgram_trap *t)
{
	const struct spec *sp;
	size_t i;

	t->kind = wire_dec_int(d, 1);
	if (!wire_dec_check(d, (sp = dgram_kind_spec(t->kind)) != NULL))
		return;
	for (i = 0; i < NFIELDS(trap_fields) && d->err == 0; i++) {
		if (sp->fields & trap_fields[i].bit)
			dec_field(d, &trap_fields[i], t);
	}
	wire_dec_check(d, dgram_trap_ok(t));
}

/* Consume one field into the struct at base. */
static void
dec_field(struct wire_dec *d, const struct field *f, void *base)
{
	char *m = (char *)base + f->off;
	size_t *np = (size_t *)((char *)base + f->off2);
	struct proto_export *x;
	struct dgram_hit *h;
	struct dgram_trap *t;
	size_t i;

	switch (f->kind) {
	case K_AFLAGS:
		*(uint8_t *)m = wire_dec_int(d, 1);
		wire_dec_check(d, (*(uint8_t *)m & ~AFLAG_MASK) == 0);
		break;
	case K_EXPORTS:
		if (!wire_dec_array(d, 2, m, np, sizeof *x, EXPORT_MIN,
			PROTO_MAX_EXPORTS))
			break;
		x = *(struct proto_export **)m;
		for (i = 0; i < *np && d->err == 0; i++)
			wire_dec_export(d, &x[i], 1);
		break;
	case K_HITS:
		if (!wire_dec_array(d, 2, m, np, sizeof *h, HIT_MIN, COUNT_MAX))
			break;
		h = *(struct dgram_hit **)m;
		for (i = 0; i < *np && d->err == 0; i++) {
			h[i].export_id = wire_dec_int(d, 4);
			wire_dec_attr(d, &h[i].attr);
		}
		break;
	case K_TRAPS:
		if (!wire_dec_array(d, 2, m, np, sizeof *t, TRAP_MIN,
			COUNT_MAX)) {
			wire_dec_check(d, false); /* a TRAP has a record */
			break;
		}
		t = *(struct dgram_trap **)m;
		for (i = 0; i < *np && d->err == 0; i++)
			dec_trap(d, &t[i]);
		break;
	default:
		wire_dec_field(d, f->kind, m);
		break;
	}
}

/*
 * Check the fixed header of the len-byte datagram at buf: length bounds,
 * magic, version, a known type, flags, reserved byte, room for the
 * trailer.
 * Fills *type and *flags; 0 or -EPROTO.
 */
static int
dec_fixed(const uint8_t *buf, size_t len, uint8_t *type, uint8_t *flags)
{
	if (buf == NULL || len < HDR_MIN || len > DGRAM_MAX)
		return -EPROTO;
	if (wire_get_le(buf, 4) != DGRAM_MAGIC || buf[4] != DGRAM_VERSION)
		return -EPROTO;
	*type = buf[5];
	*flags = buf[6];
	if (dgram_type_spec(*type) == NULL || (*flags & ~FLAG_MASK) != 0 ||
	    buf[7] != 0)
		return -EPROTO;
	if ((*flags & DGRAM_FLAG_MAC) && len < HDR_MIN + DGRAM_TRAILER_LEN)
		return -EPROTO;
	return 0;
}

/* Decode one whole datagram of exactly len bytes. */
int
dgram_decode(const uint8_t *buf, size_t len, struct dgram *d)
{
	const struct spec *sp;
	struct wire_dec c;
	size_t i, maclen;

	memset(d, 0, sizeof *d);
	if (dec_fixed(buf, len, &d->type, &d->flags) != 0) {
		memset(d, 0, sizeof *d);
		return -EPROTO;
	}
	sp = dgram_type_spec(d->type);
	maclen = (d->flags & DGRAM_FLAG_MAC) ? DGRAM_TRAILER_LEN : 0;
	wire_dec_init(&c, buf + 8, len - 8 - maclen, 2);
	d->boot_id = wire_dec_int(&c, 8);
	d->seq = wire_dec_int(&c, 8);
	d->time = (int64_t)wire_dec_int(&c, 8);
	d->name = wire_dec_str(&c, WIRE_TEXT);
	d->uri = wire_dec_str(&c, WIRE_TEXT);
	for (i = 0; i < NFIELDS(body_fields) && c.err == 0; i++) {
		if (sp->fields & body_fields[i].bit)
			dec_field(&c, &body_fields[i], d);
	}
	wire_dec_check(&c, dgram_body_ok(d));
	if (wire_dec_end(&c) != 0) {
		dgram_clear(d);
		memset(d, 0, sizeof *d);
		return c.err;
	}
	if (maclen != 0) {
		d->serial = wire_get_le(buf + len - maclen, 8);
		d->mac = buf + len - DGRAM_MAC_LEN;
		d->mac_off = len - DGRAM_MAC_LEN;
	}
	return 0;
}

/* The offset of the MAC of the datagram at buf, from its header alone. */
int
dgram_mac_locate(const uint8_t *buf, size_t len, size_t *off)
{
	uint8_t type, flags;

	if (dec_fixed(buf, len, &type, &flags) != 0)
		return -EPROTO;
	if ((flags & DGRAM_FLAG_MAC) == 0)
		return -ENOENT;
	*off = len - DGRAM_MAC_LEN;
	return 0;
}

/* Free what decoding allocated: exports, hits and traps. */
void
dgram_clear(struct dgram *d)
{
	free(d->exports);
	d->exports = NULL;
	d->nexports = 0;
	free(d->hits);
	d->hits = NULL;
	d->nhits = 0;
	free(d->traps);
	d->traps = NULL;
	d->ntraps = 0;
}
