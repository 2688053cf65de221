/*
 * wire.h - the byte-level cursor primitives that the frame codec
 * (proto/proto.c) and the datagram codec (discovery/datagram.c) share:
 * little-endian integers, checked strings, array counts, export entries,
 * time and attribute records.  Pure code: no I/O.
 *
 * Both codecs keep a sticky error: the first failed check is remembered,
 * later writes and reads do nothing, and the caller looks at err once at
 * the end.  An encoder either grows a malloc(3)ed buffer up to a limit per
 * message (frames) or fills the caller's fixed buffer and keeps counting
 * past its end, so that an oversized message is measured (datagrams).
 * The two wire formats differ in the width of a string's length (u32 in
 * frames, u16 in datagrams), of array counts and of export flags; those
 * widths are parameters, the layout of each record is the same.
 */
#ifndef PUFS_WIRE_H
#define PUFS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define WIRE_EXPORT_RO 0x01u /* export entry flags */

/* What a string must look like. */
enum wire_str {
	WIRE_TEXT,  /* peer, URI, export or xattr name: 1..255 bytes */
	WIRE_PATH,  /* wire_path_ok(): relative to an export root */
	WIRE_NAME,  /* wire_name_ok(): a single component */
	WIRE_UPATH, /* union path: "/" or "/" + wire_path_ok() */
};

/*
 * The shape of a simple field in a codec's field table: the codecs list
 * their own kinds (bounded numbers, arrays, records of their own) from
 * WIRE_K_MAX on and hand the simple ones to wire_enc_field() and
 * wire_dec_field().
 */
enum wire_kind {
	WIRE_K_U32,  /* uint32_t */
	WIRE_K_U64,  /* uint64_t, or an int64_t: the same eight bytes */
	WIRE_K_TIME, /* struct proto_time */
	WIRE_K_ATTR, /* struct proto_attr */
	WIRE_K_TEXT, /* const char *, enum wire_str's kinds */
	WIRE_K_PATH,
	WIRE_K_NAME,
	WIRE_K_UPATH,
	WIRE_K_MAX
};

/* An encoder: the output, where this message began, a sticky error. */
struct wire_enc {
	uint8_t *p;      /* growable: the caller's proto_buf's */
	size_t len, cap; /* fixed: len keeps counting past cap */
	size_t start;    /* where the message began in p */
	size_t max;      /* growable: most bytes of one message */
	bool grow;       /* p is realloc(3)ed as needed */
	size_t strw;     /* bytes of a string's length: 4 or 2 */
	int err;         /* 0, -EINVAL, -EMSGSIZE or -ENOMEM */
};

/* A decoder: a cursor over what is left of the message, a sticky error. */
struct wire_dec {
	const uint8_t *p;
	size_t n;
	size_t strw; /* bytes of a string's length: 4 or 2 */
	int err;     /* 0, -EPROTO or -ENOMEM */
};

void wire_put_le(uint8_t *, uint64_t, size_t);
uint64_t wire_get_le(const uint8_t *, size_t);
/* The rules behind proto_name_ok() and proto_path_ok() (see proto.h). */
bool wire_name_ok(const char *);
bool wire_path_ok(const char *);
bool wire_str_ok(enum wire_str, const char *, size_t);

void wire_enc_grow(struct wire_enc *, uint8_t *p, size_t len, size_t cap,
    size_t max, size_t strw);
void wire_enc_fixed(struct wire_enc *, uint8_t *buf, size_t cap, size_t strw);
uint8_t *wire_enc_reserve(struct wire_enc *, size_t);
void wire_enc_check(struct wire_enc *, bool);
void wire_enc_int(struct wire_enc *, uint64_t, size_t);
void wire_enc_bytes(struct wire_enc *, const void *, size_t);
void wire_enc_str(struct wire_enc *, enum wire_str, const char *);
bool wire_enc_count(struct wire_enc *, const void *array, size_t n, size_t w);
void wire_enc_export(struct wire_enc *, const struct proto_export *,
    size_t flagw);
void wire_enc_time(struct wire_enc *, const struct proto_time *);
void wire_enc_attr(struct wire_enc *, const struct proto_attr *);
void wire_enc_field(struct wire_enc *, int kind, const void *m);

void wire_dec_init(struct wire_dec *, const uint8_t *, size_t, size_t strw);
bool wire_dec_check(struct wire_dec *, bool);
const uint8_t *wire_dec_take(struct wire_dec *, size_t);
uint64_t wire_dec_int(struct wire_dec *, size_t);
const char *wire_dec_str(struct wire_dec *, enum wire_str);
bool wire_dec_array(struct wire_dec *, size_t w, void *arrayp, size_t *np,
    size_t size, size_t min, size_t max);
void wire_dec_export(struct wire_dec *, struct proto_export *, size_t flagw);
void wire_dec_time(struct wire_dec *, struct proto_time *);
void wire_dec_attr(struct wire_dec *, struct proto_attr *);
void wire_dec_field(struct wire_dec *, int kind, void *m);
int wire_dec_end(struct wire_dec *);

#endif
