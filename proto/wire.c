/*
 * wire.c - the cursor primitives of the frame and datagram codecs.
 *
 * One implementation of every byte both wire formats carry, so that a
 * string, an export entry or an attribute record is checked and laid out
 * the same way in a TCP frame and in a multicast datagram.  Each record
 * is written and read by one pair of functions here; the codecs only say
 * which records a message holds, in which order, with which widths.
 *
 * Limits: pure code, no I/O.  Decoded strings point into the caller's
 * buffer; wire_dec_array() is the only allocation (calloc(3)), and the
 * codec that called it frees the array.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

#define NSEC_MAX 1000000000u

/* Store v little-endian in n bytes at p. */
void
wire_put_le(uint8_t *p, uint64_t v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Read v little-endian from n bytes at p. */
uint64_t
wire_get_le(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* Whether the n bytes at s are a single component other than "." "..". */
static bool
wire_component_ok(const char *s, size_t n)
{
	if (n == 0 || n >= PROTO_MAX_NAME)
		return false;
	if (s[0] == '.' && (n == 1 || (n == 2 && s[1] == '.')))
		return false;
	return memchr(s, '/', n) == NULL;
}

/* Whether name is one component that fits in PROTO_MAX_NAME. */
bool
wire_name_ok(const char *name)
{
	size_t n;

	if (name == NULL)
		return false;
	n = strnlen(name, PROTO_MAX_NAME);
	return wire_component_ok(name, n);
}

/* Whether path is "" or components joined by single slashes. */
bool
wire_path_ok(const char *path)
{
	const char *p, *slash;
	size_t n;

	if (path == NULL)
		return false;
	n = strnlen(path, PROTO_MAX_PATH);
	if (n >= PROTO_MAX_PATH)
		return false;
	if (n == 0)
		return true;
	for (p = path;; p = slash + 1) {
		slash = strchr(p, '/');
		if (slash == NULL)
			return wire_component_ok(p, strlen(p));
		if (!wire_component_ok(p, slash - p))
			return false;
	}
}

/* Whether string s of n bytes (NUL excluded, none inside) fits kind. */
bool
wire_str_ok(enum wire_str kind, const char *s, size_t n)
{
	switch (kind) {
	case WIRE_TEXT:
		return n >= 1 && n < PROTO_MAX_NAME;
	case WIRE_PATH:
		return wire_path_ok(s);
	case WIRE_NAME:
		return wire_name_ok(s);
	case WIRE_UPATH:
		if (n >= PROTO_MAX_PATH || s[0] != '/')
			return false;
		return s[1] == '\0' || wire_path_ok(s + 1);
	}
	return false;
}

/* Start a message at len in the growable buffer p of cap bytes. */
void
wire_enc_grow(struct wire_enc *e, uint8_t *p, size_t len, size_t cap,
    size_t max, size_t strw)
{
	e->p = p;
	e->len = e->start = len;
	e->cap = cap;
	e->max = max;
	e->grow = true;
	e->strw = strw;
	e->err = 0;
}

/* Start a message at the beginning of the caller's buffer of cap bytes. */
void
wire_enc_fixed(struct wire_enc *e, uint8_t *buf, size_t cap, size_t strw)
{
	e->p = buf;
	e->len = e->start = 0;
	e->cap = cap;
	e->max = 0;
	e->grow = false;
	e->strw = strw;
	e->err = 0;
}

/*
 * Account for n more bytes and say where to write them: NULL after an
 * error, or past the end of a fixed buffer (the length still grows).
 * A growable message over max bytes is -EINVAL.
 */
uint8_t *
wire_enc_reserve(struct wire_enc *e, size_t n)
{
	uint8_t *p = NULL;
	size_t cap;

	if (e->err != 0 || n == 0)
		return NULL;
	if (!e->grow) {
		if (e->len <= e->cap && n <= e->cap - e->len)
			p = e->p + e->len;
		e->len += n;
		return p;
	}
	if (n > e->max - (e->len - e->start)) {
		e->err = -EINVAL;
		return NULL;
	}
	if (e->cap - e->len < n) {
		cap = e->cap < 256 ? 256 : e->cap;
		while (cap - e->len < n)
			cap *= 2;
		if ((p = realloc(e->p, cap)) == NULL) {
			e->err = -ENOMEM;
			return NULL;
		}
		e->p = p;
		e->cap = cap;
	}
	p = e->p + e->len;
	e->len += n;
	return p;
}

/* Mark the message invalid (-EINVAL) unless cond holds. */
void
wire_enc_check(struct wire_enc *e, bool cond)
{
	if (!cond && e->err == 0)
		e->err = -EINVAL;
}

/* Append an n-byte little-endian integer. */
void
wire_enc_int(struct wire_enc *e, uint64_t v, size_t n)
{
	uint8_t *p;

	if ((p = wire_enc_reserve(e, n)) != NULL)
		wire_put_le(p, v, n);
}

/* Append n raw bytes; bytes already in place (src is there) stay. */
void
wire_enc_bytes(struct wire_enc *e, const void *src, size_t n)
{
	uint8_t *p;

	if ((p = wire_enc_reserve(e, n)) != NULL && p != src)
		memcpy(p, src, n);
}

/* Append a checked string: its length with the NUL, bytes, NUL. */
void
wire_enc_str(struct wire_enc *e, enum wire_str kind, const char *s)
{
	size_t n;

	if (s == NULL) {
		wire_enc_check(e, false);
		return;
	}
	n = strnlen(s, PROTO_MAX_PATH);
	wire_enc_check(e, n < PROTO_MAX_PATH && wire_str_ok(kind, s, n));
	wire_enc_int(e, n + 1, e->strw);
	wire_enc_bytes(e, s, n + 1);
}

/*
 * Append the w-byte count of an array, refusing a missing array (-EINVAL)
 * and a count w bytes cannot say (-EMSGSIZE).  Whether all is still well.
 */
bool
wire_enc_count(struct wire_enc *e, const void *array, size_t n, size_t w)
{
	wire_enc_check(e, n == 0 || array != NULL);
	if (w < sizeof n && n >> (8 * w) != 0 && e->err == 0)
		e->err = -EMSGSIZE;
	if (e->err != 0)
		return false;
	wire_enc_int(e, n, w);
	return e->err == 0;
}

/* Append an export entry: id, name, union path, flagw bytes of flags. */
void
wire_enc_export(struct wire_enc *e, const struct proto_export *x, size_t flagw)
{
	wire_enc_int(e, x->id, 4);
	wire_enc_str(e, WIRE_TEXT, x->name);
	wire_enc_str(e, WIRE_UPATH, x->at);
	wire_enc_int(e, x->read_only ? WIRE_EXPORT_RO : 0, flagw);
}

/* Append a time record. */
void
wire_enc_time(struct wire_enc *e, const struct proto_time *t)
{
	wire_enc_check(e, t->nsec < NSEC_MAX);
	wire_enc_int(e, (uint64_t)t->sec, 8);
	wire_enc_int(e, t->nsec, 4);
}

/* Append an attribute record (92 bytes). */
void
wire_enc_attr(struct wire_enc *e, const struct proto_attr *a)
{
	wire_enc_int(e, a->dev, 8);
	wire_enc_int(e, a->ino, 8);
	wire_enc_int(e, a->mode, 4);
	wire_enc_int(e, a->nlink, 4);
	wire_enc_int(e, a->uid, 4);
	wire_enc_int(e, a->gid, 4);
	wire_enc_int(e, a->rdev, 8);
	wire_enc_int(e, a->size, 8);
	wire_enc_int(e, a->blocks, 8);
	wire_enc_time(e, &a->atime);
	wire_enc_time(e, &a->mtime);
	wire_enc_time(e, &a->ctime);
}

/* Append the simple field of that kind (enum wire_kind) at m. */
void
wire_enc_field(struct wire_enc *e, int kind, const void *m)
{
	switch (kind) {
	case WIRE_K_U32:
		wire_enc_int(e, *(const uint32_t *)m, 4);
		break;
	case WIRE_K_U64:
		wire_enc_int(e, *(const uint64_t *)m, 8);
		break;
	case WIRE_K_TIME:
		wire_enc_time(e, m);
		break;
	case WIRE_K_ATTR:
		wire_enc_attr(e, m);
		break;
	case WIRE_K_TEXT:
		wire_enc_str(e, WIRE_TEXT, *(const char *const *)m);
		break;
	case WIRE_K_PATH:
		wire_enc_str(e, WIRE_PATH, *(const char *const *)m);
		break;
	case WIRE_K_NAME:
		wire_enc_str(e, WIRE_NAME, *(const char *const *)m);
		break;
	case WIRE_K_UPATH:
		wire_enc_str(e, WIRE_UPATH, *(const char *const *)m);
		break;
	default:
		wire_enc_check(e, false);
		break;
	}
}

/* Start reading the n bytes at p. */
void
wire_dec_init(struct wire_dec *d, const uint8_t *p, size_t n, size_t strw)
{
	d->p = p;
	d->n = n;
	d->strw = strw;
	d->err = 0;
}

/* Refuse the message (-EPROTO) unless cond holds; whether all is well. */
bool
wire_dec_check(struct wire_dec *d, bool cond)
{
	if (!cond && d->err == 0)
		d->err = -EPROTO;
	return d->err == 0;
}

/* Consume n bytes; NULL (and the error set) if fewer are left. */
const uint8_t *
wire_dec_take(struct wire_dec *d, size_t n)
{
	const uint8_t *p;

	if (!wire_dec_check(d, n <= d->n))
		return NULL;
	p = d->p;
	d->p += n;
	d->n -= n;
	return p;
}

/* Consume an n-byte little-endian integer; 0 on error. */
uint64_t
wire_dec_int(struct wire_dec *d, size_t n)
{
	const uint8_t *p;

	if ((p = wire_dec_take(d, n)) == NULL)
		return 0;
	return wire_get_le(p, n);
}

/* Consume a checked string; it points into the message. */
const char *
wire_dec_str(struct wire_dec *d, enum wire_str kind)
{
	const char *s;
	size_t n;

	n = wire_dec_int(d, d->strw);
	if (!wire_dec_check(d, n >= 1 && n <= PROTO_MAX_PATH))
		return NULL;
	if ((s = (const char *)wire_dec_take(d, n)) == NULL)
		return NULL;
	if (!wire_dec_check(d,
		s[n - 1] == '\0' && memchr(s, '\0', n - 1) == NULL))
		return NULL;
	if (!wire_dec_check(d, wire_str_ok(kind, s, n - 1)))
		return NULL;
	return s;
}

/*
 * Consume a w-byte array count and allocate the array: the count must be
 * at most max and leave min bytes per element, checked before calloc(3).
 * Sets *arrayp and *np; false on error or when the count is 0.
 */
bool
wire_dec_array(struct wire_dec *d, size_t w, void *arrayp, size_t *np,
    size_t size, size_t min, size_t max)
{
	size_t n;
	void *p;

	n = wire_dec_int(d, w);
	if (!wire_dec_check(d, n <= max && n <= d->n / min) || n == 0)
		return false;
	if ((p = calloc(n, size)) == NULL) {
		d->err = -ENOMEM;
		return false;
	}
	*(void **)arrayp = p;
	*np = n;
	return true;
}

/* Consume an export entry with flagw bytes of flags. */
void
wire_dec_export(struct wire_dec *d, struct proto_export *x, size_t flagw)
{
	uint64_t flags;

	x->id = wire_dec_int(d, 4);
	x->name = wire_dec_str(d, WIRE_TEXT);
	x->at = wire_dec_str(d, WIRE_UPATH);
	flags = wire_dec_int(d, flagw);
	wire_dec_check(d, (flags & ~(uint64_t)WIRE_EXPORT_RO) == 0);
	x->read_only = (flags & WIRE_EXPORT_RO) != 0;
}

/* Consume a time record. */
void
wire_dec_time(struct wire_dec *d, struct proto_time *t)
{
	t->sec = (int64_t)wire_dec_int(d, 8);
	t->nsec = wire_dec_int(d, 4);
	wire_dec_check(d, t->nsec < NSEC_MAX);
}

/* Consume an attribute record (92 bytes). */
void
wire_dec_attr(struct wire_dec *d, struct proto_attr *a)
{
	a->dev = wire_dec_int(d, 8);
	a->ino = wire_dec_int(d, 8);
	a->mode = wire_dec_int(d, 4);
	a->nlink = wire_dec_int(d, 4);
	a->uid = wire_dec_int(d, 4);
	a->gid = wire_dec_int(d, 4);
	a->rdev = wire_dec_int(d, 8);
	a->size = wire_dec_int(d, 8);
	a->blocks = wire_dec_int(d, 8);
	wire_dec_time(d, &a->atime);
	wire_dec_time(d, &a->mtime);
	wire_dec_time(d, &a->ctime);
}

/* Consume the simple field of that kind (enum wire_kind) into m. */
void
wire_dec_field(struct wire_dec *d, int kind, void *m)
{
	switch (kind) {
	case WIRE_K_U32:
		*(uint32_t *)m = wire_dec_int(d, 4);
		break;
	case WIRE_K_U64:
		*(uint64_t *)m = wire_dec_int(d, 8);
		break;
	case WIRE_K_TIME:
		wire_dec_time(d, m);
		break;
	case WIRE_K_ATTR:
		wire_dec_attr(d, m);
		break;
	case WIRE_K_TEXT:
		*(const char **)m = wire_dec_str(d, WIRE_TEXT);
		break;
	case WIRE_K_PATH:
		*(const char **)m = wire_dec_str(d, WIRE_PATH);
		break;
	case WIRE_K_NAME:
		*(const char **)m = wire_dec_str(d, WIRE_NAME);
		break;
	case WIRE_K_UPATH:
		*(const char **)m = wire_dec_str(d, WIRE_UPATH);
		break;
	default:
		wire_dec_check(d, false);
		break;
	}
}

/* The result of a decode: trailing bytes are an error. */
int
wire_dec_end(struct wire_dec *d)
{
	wire_dec_check(d, d->n == 0);
	return d->err;
}
