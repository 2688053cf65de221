/*
 * datagram.c - encoder and decoder of pufs datagrams.
 *
 * As in proto/proto.c, tables drive both directions: a body field table
 * lists every field a datagram body can carry, in wire order, and a type
 * table says which of them each type uses; a record field table and a
 * kind table do the same for the change records of a TRAP.  Encoder and
 * decoder walk the same tables and share one set of checks, so what the
 * encoder writes the decoder accepts, and re-encoding a decoded datagram
 * gives back the same bytes.
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

#define FLAG_MASK	DGRAM_FLAG_MAC		/* header flags in v1 */
#define AFLAG_MASK	(DGRAM_ANNOUNCE_ANSWER | DGRAM_ANNOUNCE_PARTIAL)
#define EXPORT_RO	0x01u			/* export entry flags */
#define COUNT_MAX	UINT16_MAX		/* counts are u16 */
#define NSEC_MAX	1000000000u
#define ATTR_LEN	92	/* wire size of struct proto_attr */
#define HDR_MIN		(DGRAM_FIXED_LEN + 4 + 4)	/* name, uri "x" */
#define EXPORT_MIN	(4 + 4 + 4 + 1)		/* name "x", at "/" */
#define HIT_MIN		(4 + ATTR_LEN)
#define TRAP_MIN	(1 + 4 + 8 + 3)		/* path "" */

/* What a string field must look like. */
enum str_kind {
	S_TEXT,		/* peer name, URI, export name: 1..255 bytes */
	S_PATH,		/* proto_path_ok(): relative to an export root */
	S_UPATH,	/* union path: "/" or "/" + proto_path_ok() */
};

/* The shape of a field on the wire. */
enum field_kind {
	K_AFLAGS,	/* u8, DGRAM_ANNOUNCE_* bits only */
	K_U32,
	K_U64,
	K_I64,
	K_TEXT,
	K_PATH,
	K_UPATH,
	K_ATTR,
	K_EXPORTS,	/* u16 count + export entries */
	K_HITS,		/* u16 count + hits */
	K_TRAPS,	/* u16 count (>= 1) + change records */
};

/* One field: its bit in the masks, its shape and where it lives. */
struct field {
	uint32_t bit;
	enum field_kind kind;
	size_t off;		/* the member */
	size_t off2;		/* its count, for the arrays */
};

/* Body fields, in wire order. */
#define B_AFLAGS	(1u << 0)
#define B_UPTIME	(1u << 1)
#define B_REQID		(1u << 2)
#define B_PATH		(1u << 3)
#define B_EXPORTS	(1u << 4)
#define B_HITS		(1u << 5)
#define B_TARGET	(1u << 6)
#define B_TBOOT		(1u << 7)
#define B_FIRST		(1u << 8)
#define B_LAST		(1u << 9)
#define B_TRAPS		(1u << 10)

#define BF(bit, kind, member) \
	{ bit, kind, offsetof(struct dgram, member), 0 }
#define BA(bit, kind, member, count) \
	{ bit, kind, offsetof(struct dgram, member), \
	    offsetof(struct dgram, count) }
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
#define T_EXPORT	(1u << 0)
#define T_TIME		(1u << 1)
#define T_PATH		(1u << 2)
#define T_EXPORT2	(1u << 3)
#define T_PATH2		(1u << 4)
#define T_ATTR		(1u << 5)
#define T_OFFSET	(1u << 6)
#define T_LENGTH	(1u << 7)
#define T_COMMON	(T_EXPORT | T_TIME | T_PATH)

#define TF(bit, kind, member) \
	{ bit, kind, offsetof(struct dgram_trap, member), 0 }
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

#define NFIELDS(a)	(sizeof (a) / sizeof (a)[0])

/* A datagram type or a change kind: its log name and its fields. */
struct spec {
	const char *name;
	uint32_t fields;	/* B_* or T_* */
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

/* Whether string s of n bytes (NUL excluded, none inside) fits kind. */
static bool
dgram_str_ok(enum str_kind kind, const char *s, size_t n)
{
	switch (kind) {
	case S_TEXT:
		return n >= 1 && n < PROTO_MAX_NAME;
	case S_PATH:
		return proto_path_ok(s);
	case S_UPATH:
		if (n >= PROTO_MAX_PATH || s[0] != '/')
			return false;
		return s[1] == '\0' || proto_path_ok(s + 1);
	}
	return false;
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

/*
 * Encoding: the caller's buffer and its capacity, the length so far
 * (which keeps counting past cap, so an oversized datagram is measured),
 * and a sticky error for invalid fields.
 */
struct enc {
	uint8_t *p;
	size_t len, cap;
	int err;
};

/* Store v little-endian in n bytes at p. */
static void
put_le(uint8_t *p, uint64_t v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Account for n more bytes; where to write them, or NULL past cap. */
static uint8_t *
enc_reserve(struct enc *e, size_t n)
{
	uint8_t *p = NULL;

	if (e->err != 0 || n == 0)
		return NULL;
	if (e->len <= e->cap && n <= e->cap - e->len)
		p = e->p + e->len;
	e->len += n;
	return p;
}

/* Set the sticky error unless cond holds. */
static void
enc_check(struct enc *e, bool cond, int err)
{
	if (!cond && e->err == 0)
		e->err = err;
}

/* Append an n-byte little-endian integer. */
static void
enc_int(struct enc *e, uint64_t v, size_t n)
{
	uint8_t *p;

	if ((p = enc_reserve(e, n)) != NULL)
		put_le(p, v, n);
}

/* Append n raw bytes. */
static void
enc_bytes(struct enc *e, const void *src, size_t n)
{
	uint8_t *p;

	if ((p = enc_reserve(e, n)) != NULL)
		memcpy(p, src, n);
}

/* Append a checked string: u16 length with the NUL, bytes, NUL. */
static void
enc_str(struct enc *e, enum str_kind kind, const char *s)
{
	size_t n;

	if (s == NULL) {
		enc_check(e, false, -EINVAL);
		return;
	}
	n = strnlen(s, PROTO_MAX_PATH);
	enc_check(e, n < PROTO_MAX_PATH && dgram_str_ok(kind, s, n), -EINVAL);
	enc_int(e, n + 1, 2);
	enc_bytes(e, s, n + 1);
}

/* Append a time record of an attribute. */
static void
enc_time(struct enc *e, const struct proto_time *t)
{
	enc_check(e, t->nsec < NSEC_MAX, -EINVAL);
	enc_int(e, (uint64_t)t->sec, 8);
	enc_int(e, t->nsec, 4);
}

/* Append an attribute record, laid out as in the TCP protocol. */
static void
enc_attr(struct enc *e, const struct proto_attr *a)
{
	enc_int(e, a->dev, 8);
	enc_int(e, a->ino, 8);
	enc_int(e, a->mode, 4);
	enc_int(e, a->nlink, 4);
	enc_int(e, a->uid, 4);
	enc_int(e, a->gid, 4);
	enc_int(e, a->rdev, 8);
	enc_int(e, a->size, 8);
	enc_int(e, a->blocks, 8);
	enc_time(e, &a->atime);
	enc_time(e, &a->mtime);
	enc_time(e, &a->ctime);
}

/* Append an array count, refusing what a u16 cannot say. */
static bool
enc_count(struct enc *e, const void *array, size_t n)
{
	enc_check(e, n == 0 || array != NULL, -EINVAL);
	enc_check(e, n <= COUNT_MAX, -EMSGSIZE);
	enc_int(e, n, 2);
	return e->err == 0;
}

static void enc_field(struct enc *, const struct field *, const void *);

/* Append one change record: kind, then the fields the kind lists. */
static void
enc_trap(struct enc *e, const struct dgram_trap *t)
{
	const struct spec *sp;
	size_t i;

	if ((sp = dgram_kind_spec(t->kind)) == NULL) {
		enc_check(e, false, -EINVAL);
		return;
	}
	enc_int(e, t->kind, 1);
	for (i = 0; i < NFIELDS(trap_fields); i++) {
		if (sp->fields & trap_fields[i].bit)
			enc_field(e, &trap_fields[i], t);
	}
	enc_check(e, dgram_trap_ok(t), -EINVAL);
}

/* Append one field of the struct at base. */
static void
enc_field(struct enc *e, const struct field *f, const void *base)
{
	const char *m = (const char *)base + f->off;
	size_t i, n = f->off2 != 0 ? *(const size_t *)((const char *)base +
	    f->off2) : 0;
	const struct proto_export *x;
	const struct dgram_hit *h;
	const struct dgram_trap *t;

	switch (f->kind) {
	case K_AFLAGS:
		enc_check(e, (*(const uint8_t *)m & ~AFLAG_MASK) == 0,
		    -EINVAL);
		enc_int(e, *(const uint8_t *)m, 1);
		break;
	case K_U32:
		enc_int(e, *(const uint32_t *)m, 4);
		break;
	case K_U64:
		enc_int(e, *(const uint64_t *)m, 8);
		break;
	case K_I64:
		enc_int(e, (uint64_t)*(const int64_t *)m, 8);
		break;
	case K_TEXT:
		enc_str(e, S_TEXT, *(const char *const *)m);
		break;
	case K_PATH:
		enc_str(e, S_PATH, *(const char *const *)m);
		break;
	case K_UPATH:
		enc_str(e, S_UPATH, *(const char *const *)m);
		break;
	case K_ATTR:
		enc_attr(e, (const struct proto_attr *)m);
		break;
	case K_EXPORTS:
		x = *(struct proto_export *const *)m;
		enc_check(e, n <= PROTO_MAX_EXPORTS, -EINVAL);
		if (!enc_count(e, x, n))
			break;
		for (i = 0; i < n && e->err == 0; i++) {
			enc_int(e, x[i].id, 4);
			enc_str(e, S_TEXT, x[i].name);
			enc_str(e, S_UPATH, x[i].at);
			enc_int(e, x[i].read_only ? EXPORT_RO : 0, 1);
		}
		break;
	case K_HITS:
		h = *(struct dgram_hit *const *)m;
		if (!enc_count(e, h, n))
			break;
		for (i = 0; i < n && e->err == 0; i++) {
			enc_int(e, h[i].export_id, 4);
			enc_attr(e, &h[i].attr);
		}
		break;
	case K_TRAPS:
		t = *(struct dgram_trap *const *)m;
		enc_check(e, n >= 1, -EINVAL);
		if (!enc_count(e, t, n))
			break;
		for (i = 0; i < n && e->err == 0; i++)
			enc_trap(e, &t[i]);
		break;
	}
}

/* Start encoding into buf, cap bytes of which (at most DGRAM_MAX) count. */
static void
enc_begin(struct enc *e, uint8_t *buf, size_t cap)
{
	e->p = buf;
	e->len = 0;
	e->cap = cap < DGRAM_MAX ? cap : DGRAM_MAX;
	e->err = 0;
}

/* Append the header of d, of the given type. */
static void
enc_header(struct enc *e, const struct dgram *d, int type)
{
	enc_check(e, dgram_type_spec(type) != NULL, -EINVAL);
	enc_check(e, (d->flags & ~FLAG_MASK) == 0, -EINVAL);
	enc_check(e, type != DGRAM_TRAP || d->seq >= 1, -EINVAL);
	enc_int(e, DGRAM_MAGIC, 4);
	enc_int(e, DGRAM_VERSION, 1);
	enc_int(e, type, 1);
	enc_int(e, d->flags, 1);
	enc_int(e, 0, 1);
	enc_int(e, d->boot_id, 8);
	enc_int(e, d->seq, 8);
	enc_int(e, (uint64_t)d->time, 8);
	enc_str(e, S_TEXT, d->name);
	enc_str(e, S_TEXT, d->uri);
}

/* Append the MAC trailer if d's flags ask for one. */
static void
enc_mac(struct enc *e, const struct dgram *d)
{
	static const uint8_t zeros[DGRAM_MAC_LEN];

	if (d->flags & DGRAM_FLAG_MAC)
		enc_bytes(e, d->mac != NULL ? d->mac : zeros, DGRAM_MAC_LEN);
}

/* Encode one whole datagram into buf. */
int
dgram_encode(const struct dgram *d, uint8_t *buf, size_t cap, size_t *len)
{
	const struct spec *sp;
	struct enc e;
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
	enc_check(&e, dgram_body_ok(d), -EINVAL);
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
	struct enc e;
	size_t at, mark, i, maclen;

	*len = 0;
	*taken = 0;
	if (n == 0 || recs == NULL)
		return -EINVAL;
	maclen = (hdr->flags & DGRAM_FLAG_MAC) ? DGRAM_MAC_LEN : 0;
	enc_begin(&e, buf, cap);
	enc_header(&e, hdr, DGRAM_TRAP);
	at = e.len;
	enc_int(&e, 0, 2);		/* the count, patched below */
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
	put_le(buf + at, i, 2);
	enc_mac(&e, hdr);
	*len = e.len;
	*taken = i;
	return 0;
}

/* Decoding: a cursor over what is left of the body, a sticky error. */
struct dec {
	const uint8_t *p;
	size_t n;
	int err;
};

/* Read v little-endian from n bytes at p. */
static uint64_t
get_le(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* Refuse the datagram unless cond holds. */
static bool
dec_check(struct dec *d, bool cond)
{
	if (!cond && d->err == 0)
		d->err = -EPROTO;
	return d->err == 0;
}

/* Consume n bytes; NULL (and the error set) if fewer are left. */
static const uint8_t *
dec_take(struct dec *d, size_t n)
{
	const uint8_t *p;

	if (!dec_check(d, n <= d->n))
		return NULL;
	p = d->p;
	d->p += n;
	d->n -= n;
	return p;
}

/* Consume an n-byte little-endian integer; 0 on error. */
static uint64_t
dec_int(struct dec *d, size_t n)
{
	const uint8_t *p;

	if ((p = dec_take(d, n)) == NULL)
		return 0;
	return get_le(p, n);
}

/* Consume a checked string; it points into the datagram. */
static const char *
dec_str(struct dec *d, enum str_kind kind)
{
	const char *s;
	size_t n;

	n = dec_int(d, 2);
	if (!dec_check(d, n >= 1 && n <= PROTO_MAX_PATH))
		return NULL;
	if ((s = (const char *)dec_take(d, n)) == NULL)
		return NULL;
	if (!dec_check(d, s[n - 1] == '\0' && memchr(s, '\0', n - 1) == NULL))
		return NULL;
	if (!dec_check(d, dgram_str_ok(kind, s, n - 1)))
		return NULL;
	return s;
}

/* Consume a time record of an attribute. */
static void
dec_time(struct dec *d, struct proto_time *t)
{
	t->sec = (int64_t)dec_int(d, 8);
	t->nsec = dec_int(d, 4);
	dec_check(d, t->nsec < NSEC_MAX);
}

/* Consume an attribute record. */
static void
dec_attr(struct dec *d, struct proto_attr *a)
{
	a->dev = dec_int(d, 8);
	a->ino = dec_int(d, 8);
	a->mode = dec_int(d, 4);
	a->nlink = dec_int(d, 4);
	a->uid = dec_int(d, 4);
	a->gid = dec_int(d, 4);
	a->rdev = dec_int(d, 8);
	a->size = dec_int(d, 8);
	a->blocks = dec_int(d, 8);
	dec_time(d, &a->atime);
	dec_time(d, &a->mtime);
	dec_time(d, &a->ctime);
}

/*
 * Consume an array count and allocate the array: the count must be at
 * most max and leave min bytes per element, checked before calloc(3).
 * Sets *array and *np; false on error or when the count is 0.
 */
static bool
dec_array(struct dec *d, void *array, size_t *np, size_t size, size_t min,
    size_t max)
{
	size_t n;
	void *p;

	n = dec_int(d, 2);
	if (!dec_check(d, n <= max && n <= d->n / min) || n == 0)
		return false;
	if ((p = calloc(n, size)) == NULL) {
		d->err = -ENOMEM;
		return false;
	}
	*(void **)array = p;
	*np = n;
	return true;
}

static void dec_field(struct dec *, const struct field *, void *);

/* Consume one change record. */
static void
dec_trap(struct dec *d, struct dgram_trap *t)
{
	const struct spec *sp;
	size_t i;

	t->kind = dec_int(d, 1);
	if (!dec_check(d, (sp = dgram_kind_spec(t->kind)) != NULL))
		return;
	for (i = 0; i < NFIELDS(trap_fields) && d->err == 0; i++) {
		if (sp->fields & trap_fields[i].bit)
			dec_field(d, &trap_fields[i], t);
	}
	dec_check(d, dgram_trap_ok(t));
}

/* Consume one field into the struct at base. */
static void
dec_field(struct dec *d, const struct field *f, void *base)
{
	char *m = (char *)base + f->off;
	size_t *np = (size_t *)((char *)base + f->off2);
	struct proto_export *x;
	struct dgram_hit *h;
	struct dgram_trap *t;
	uint8_t flags;
	size_t i;

	switch (f->kind) {
	case K_AFLAGS:
		*(uint8_t *)m = dec_int(d, 1);
		dec_check(d, (*(uint8_t *)m & ~AFLAG_MASK) == 0);
		break;
	case K_U32:
		*(uint32_t *)m = dec_int(d, 4);
		break;
	case K_U64:
		*(uint64_t *)m = dec_int(d, 8);
		break;
	case K_I64:
		*(int64_t *)m = (int64_t)dec_int(d, 8);
		break;
	case K_TEXT:
		*(const char **)m = dec_str(d, S_TEXT);
		break;
	case K_PATH:
		*(const char **)m = dec_str(d, S_PATH);
		break;
	case K_UPATH:
		*(const char **)m = dec_str(d, S_UPATH);
		break;
	case K_ATTR:
		dec_attr(d, (struct proto_attr *)m);
		break;
	case K_EXPORTS:
		if (!dec_array(d, m, np, sizeof *x, EXPORT_MIN,
		    PROTO_MAX_EXPORTS))
			break;
		x = *(struct proto_export **)m;
		for (i = 0; i < *np && d->err == 0; i++) {
			x[i].id = dec_int(d, 4);
			x[i].name = dec_str(d, S_TEXT);
			x[i].at = dec_str(d, S_UPATH);
			flags = dec_int(d, 1);
			dec_check(d, (flags & ~EXPORT_RO) == 0);
			x[i].read_only = (flags & EXPORT_RO) != 0;
		}
		break;
	case K_HITS:
		if (!dec_array(d, m, np, sizeof *h, HIT_MIN, COUNT_MAX))
			break;
		h = *(struct dgram_hit **)m;
		for (i = 0; i < *np && d->err == 0; i++) {
			h[i].export_id = dec_int(d, 4);
			dec_attr(d, &h[i].attr);
		}
		break;
	case K_TRAPS:
		if (!dec_array(d, m, np, sizeof *t, TRAP_MIN, COUNT_MAX)) {
			dec_check(d, false);	/* a TRAP has a record */
			break;
		}
		t = *(struct dgram_trap **)m;
		for (i = 0; i < *np && d->err == 0; i++)
			dec_trap(d, &t[i]);
		break;
	}
}

/*
 * Check the fixed header of the len-byte datagram at buf: length bounds,
 * magic, version, a known type, flags, reserved byte, room for the MAC.
 * Fills *type and *flags; 0 or -EPROTO.
 */
static int
dec_fixed(const uint8_t *buf, size_t len, uint8_t *type, uint8_t *flags)
{
	if (buf == NULL || len < HDR_MIN || len > DGRAM_MAX)
		return -EPROTO;
	if (get_le(buf, 4) != DGRAM_MAGIC || buf[4] != DGRAM_VERSION)
		return -EPROTO;
	*type = buf[5];
	*flags = buf[6];
	if (dgram_type_spec(*type) == NULL || (*flags & ~FLAG_MASK) != 0 ||
	    buf[7] != 0)
		return -EPROTO;
	if ((*flags & DGRAM_FLAG_MAC) && len < HDR_MIN + DGRAM_MAC_LEN)
		return -EPROTO;
	return 0;
}

/* Decode one whole datagram of exactly len bytes. */
int
dgram_decode(const uint8_t *buf, size_t len, struct dgram *d)
{
	const struct spec *sp;
	struct dec c;
	size_t i, maclen;

	memset(d, 0, sizeof *d);
	if (dec_fixed(buf, len, &d->type, &d->flags) != 0) {
		memset(d, 0, sizeof *d);
		return -EPROTO;
	}
	sp = dgram_type_spec(d->type);
	maclen = (d->flags & DGRAM_FLAG_MAC) ? DGRAM_MAC_LEN : 0;
	c.p = buf + 8;
	c.n = len - 8 - maclen;
	c.err = 0;
	d->boot_id = dec_int(&c, 8);
	d->seq = dec_int(&c, 8);
	d->time = (int64_t)dec_int(&c, 8);
	d->name = dec_str(&c, S_TEXT);
	d->uri = dec_str(&c, S_TEXT);
	for (i = 0; i < NFIELDS(body_fields) && c.err == 0; i++) {
		if (sp->fields & body_fields[i].bit)
			dec_field(&c, &body_fields[i], d);
	}
	dec_check(&c, dgram_body_ok(d));
	dec_check(&c, c.n == 0);
	if (c.err != 0) {
		dgram_clear(d);
		memset(d, 0, sizeof *d);
		return c.err;
	}
	if (maclen != 0) {
		d->mac = buf + len - maclen;
		d->mac_off = len - maclen;
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
