/*
 * test-proto.c - unit test of the wire codec in proto/.
 *
 * Every message type goes through encode and decode (request, reply,
 * error reply) and every field is compared against this file's own table
 * of what each type carries, which is PROTOCOL.md's, not the codec's; the
 * frame sizes are recomputed from the field sizes; a few frames are
 * compared byte for byte with hand-assembled ones.  Then tables of
 * hand-assembled frames that must be accepted or refused, incremental
 * READDIR listings (checkpoints, delta replies with removed entries),
 * encoder refusals, truncation at every byte, and proto_frame_len's edges.
 *
 * "test-proto --corpus DIR" writes the valid frames into DIR as fuzzing
 * seeds and runs no test.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "tap.h"
#include "wiretest.h"

#define NELEM(a) (sizeof(a) / sizeof(a)[0])

/* Request fields as PROTOCOL.md lists them. */
enum {
	F_EXPORT = 1 << 0,
	F_PATH = 1 << 1,
	F_NAME = 1 << 2,
	F_EXPORT2 = 1 << 3,
	F_PATH2 = 1 << 4,
	F_NAME2 = 1 << 5,
	F_FH = 1 << 6,
	F_FH2 = 1 << 7,
	F_OFFSET = 1 << 8,
	F_OFFSET2 = 1 << 9,
	F_LENGTH = 1 << 10,
	F_MODE = 1 << 11,
	F_FLAGS = 1 << 12,
	F_UID = 1 << 13,
	F_GID = 1 << 14,
	F_RDEV = 1 << 15,
	F_VALID = 1 << 16,
	F_ATIME = 1 << 17,
	F_MTIME = 1 << 18,
	F_DATA = 1 << 19,
	F_HELLO = 1 << 20,
};

/* Reply fields (after the error) as PROTOCOL.md lists them. */
enum {
	A_ATTR = 1 << 0,
	A_FH = 1 << 1,
	A_VALUE = 1 << 2,
	A_DATA = 1 << 3,
	A_ENTS = 1 << 4,
	A_STATFS = 1 << 5,
	A_HELLO = 1 << 6,
	A_FLAGS = 1 << 7,
	A_LOCK = 1 << 8,
};

static const struct expect {
	int type;
	const char *name;
	unsigned req, rep;
} expect[] = {
	{ PROTO_HELLO, "hello", F_HELLO, A_HELLO },
	{ PROTO_PING, "ping", 0, A_VALUE },
	{ PROTO_BYE, "bye", 0, 0 },
	{ PROTO_STAT, "stat", F_EXPORT | F_PATH | F_FH, A_ATTR },
	{ PROTO_SETATTR, "setattr",
	    F_EXPORT | F_PATH | F_FH | F_OFFSET | F_MODE | F_UID | F_GID |
		F_VALID | F_ATIME | F_MTIME,
	    A_ATTR },
	{ PROTO_READLINK, "readlink", F_EXPORT | F_PATH, A_DATA },
	{ PROTO_MKNOD, "mknod", F_EXPORT | F_PATH | F_NAME | F_MODE | F_RDEV,
	    A_ATTR },
	{ PROTO_MKDIR, "mkdir", F_EXPORT | F_PATH | F_NAME | F_MODE, A_ATTR },
	{ PROTO_SYMLINK, "symlink", F_EXPORT | F_PATH | F_NAME | F_DATA,
	    A_ATTR },
	{ PROTO_LINK, "link", F_EXPORT | F_PATH | F_EXPORT2 | F_PATH2 | F_NAME2,
	    A_ATTR },
	{ PROTO_UNLINK, "unlink", F_EXPORT | F_PATH | F_NAME, 0 },
	{ PROTO_RMDIR, "rmdir", F_EXPORT | F_PATH | F_NAME, 0 },
	{ PROTO_RENAME, "rename",
	    F_EXPORT | F_PATH | F_NAME | F_EXPORT2 | F_PATH2 | F_NAME2 |
		F_FLAGS,
	    0 },
	{ PROTO_OPEN, "open", F_EXPORT | F_PATH | F_FLAGS, A_ATTR | A_FH },
	{ PROTO_CREATE, "create", F_EXPORT | F_PATH | F_NAME | F_MODE | F_FLAGS,
	    A_ATTR | A_FH },
	{ PROTO_READ, "read", F_FH | F_OFFSET | F_LENGTH, A_DATA },
	{ PROTO_WRITE, "write", F_FH | F_OFFSET | F_DATA, A_VALUE },
	{ PROTO_RELEASE, "release", F_FH, 0 },
	{ PROTO_FSYNC, "fsync", F_FH | F_FLAGS, 0 },
	{ PROTO_FSYNCDIR, "fsyncdir", F_EXPORT | F_PATH | F_FLAGS, 0 },
	{ PROTO_READDIR, "readdir",
	    F_EXPORT | F_PATH | F_FH | F_OFFSET | F_OFFSET2,
	    A_FH | A_VALUE | A_ENTS | A_FLAGS },
	{ PROTO_STATFS, "statfs", F_EXPORT | F_PATH, A_STATFS },
	{ PROTO_ACCESS, "access", F_EXPORT | F_PATH | F_FLAGS, 0 },
	{ PROTO_FALLOCATE, "fallocate", F_FH | F_OFFSET | F_LENGTH | F_FLAGS,
	    0 },
	{ PROTO_SETXATTR, "setxattr",
	    F_EXPORT | F_PATH | F_NAME | F_FLAGS | F_DATA, 0 },
	{ PROTO_GETXATTR, "getxattr", F_EXPORT | F_PATH | F_NAME | F_LENGTH,
	    A_VALUE | A_DATA },
	{ PROTO_LISTXATTR, "listxattr", F_EXPORT | F_PATH | F_LENGTH,
	    A_VALUE | A_DATA },
	{ PROTO_REMOVEXATTR, "removexattr", F_EXPORT | F_PATH | F_NAME, 0 },
	{ PROTO_COPY_RANGE, "copy_range",
	    F_FH | F_FH2 | F_OFFSET | F_OFFSET2 | F_LENGTH, A_VALUE },
	{ PROTO_LSEEK, "lseek", F_FH | F_OFFSET | F_FLAGS, A_VALUE },
	{ PROTO_REPLACE, "replace",
	    F_EXPORT | F_PATH | F_NAME | F_EXPORT2 | F_PATH2 | F_NAME2 |
		F_MODE | F_FLAGS | F_ATIME | F_MTIME | F_DATA,
	    A_ATTR },
	{ PROTO_GETLK, "getlk", F_FH | F_FH2 | F_OFFSET | F_OFFSET2 | F_FLAGS,
	    A_LOCK },
	{ PROTO_SETLK, "setlk", F_FH | F_FH2 | F_OFFSET | F_OFFSET2 | F_FLAGS,
	    A_ATTR },
	{ PROTO_LKCANCEL, "lkcancel", F_OFFSET, 0 },
	{ PROTO_LEASE, "lease", F_FH, 0 },
	{ PROTO_LKRETURN, "lkreturn", F_OFFSET, 0 },
	{ PROTO_CLUSTER, "cluster", F_PATH | F_FLAGS | F_OFFSET2, A_VALUE },
	{ PROTO_CHANGES, "changes", F_EXPORT | F_OFFSET | F_OFFSET2,
	    A_VALUE | A_DATA | A_FLAGS },
	{ PROTO_SUMS, "sums", F_EXPORT | F_PATH | F_OFFSET | F_LENGTH,
	    A_VALUE | A_DATA },
};

static struct proto_export sample_exports[] = {
	{ 1, "music", "/", false },
	{ 0xfffffffe, "home", "/home/shared files", true },
};

static const struct proto_hello sample_hello = {
	PROTO_MAGIC,
	PROTO_VERSION,
	0x8000000000000001ull,
	"alpha",
	"[fe80::1]:7070",
	123456789012ull,
	0xdeadbeefcafef00dull,
	NELEM(sample_exports),
	sample_exports,
};

static const char sample_data[] = "../lib/target.so.1";

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

static struct proto_dirent sample_ents[] = {
	{ "a",
	    { 1, 2, 040755, 2, 0, 0, 0, 4096, 8, { 1, 2 }, { 3, 4 },
		{ 5, 6 } } },
	{ "file.txt@beta:7070",
	    { 7, 8, 0100600, 1, 5, 6, 0, 99, 1, { -7, 0 }, { 8, 1 },
		{ 9, 999999999 } } },
	{ "...", { 0, 0, 0, 0, 0, 0, 0, 0, 0, { 0, 0 }, { 0, 0 }, { 0, 0 } } },
};

/* A request with every field set to a distinct valid value. */
static struct proto_req
full_req(int type)
{
	struct proto_req q = {
		.type = type,
		.id = 0x0123456789abcdefull + type,
		.export_id = 7,
		.path = "dir/sub",
		.name = "user.comment",
		.export2 = 9,
		.path2 = "other/place",
		.name2 = "new name",
		.fh = 0x1122334455667788ull,
		.fh2 = 0x99aabbccddeeff00ull,
		.offset = 1ull << 40,
		.offset2 = 12345,
		.length = 4096,
		.mode = 0100644,
		.flags = 0x8002,
		.uid = 1000,
		.gid = 1001,
		.rdev = 0x0801,
		.valid = PROTO_SET_MODE | PROTO_SET_SIZE | PROTO_SET_MTIME_NOW,
		.atime = { 1700000000, 123456789 },
		.mtime = { -5, 999999999 },
		.data = sample_data,
		.datalen = sizeof sample_data - 1,
		.hello = sample_hello,
	};
	return q;
}

/* A reply with every field set, or an error reply. */
static struct proto_rep
full_rep(int type, int error)
{
	struct proto_rep r = {
		.type = type,
		.id = 0xfedcba9876543210ull - type,
		.error = error,
		.attr = sample_attr,
		.fh = 0x0a0b0c0d0e0f1011ull,
		.value = 65536,
		.data = sample_data,
		.datalen = sizeof sample_data - 1,
		.ents = sample_ents,
		.nents = NELEM(sample_ents),
		.statfs = { 4096, 4096, 1000000, 500000, 400000, 65536, 60000,
		    59000, 255 },
		.hello = sample_hello,
		.flags = PROTO_LIST_DELTA,
		.lock = { 100, 199, PROTO_LK_WRLCK, 0 },
	};
	return r;
}

/* Whether a blob matches (data, n); (NULL, 0) stands for "absent". */
static int
data_eq(const void *got, size_t gotlen, const void *want, size_t wantlen)
{
	if (want == NULL)
		return got == NULL && gotlen == 0;
	return got != NULL && gotlen == wantlen &&
	    memcmp(got, want, wantlen) == 0;
}

/* How many fields of got differ from want (used) or from zero (unused). */
static int
req_diff(const char *label, const struct proto_req *want,
    const struct proto_req *got, unsigned mask)
{
	static const struct proto_hello zero_hello;
	int bad = 0;

	CHECK(got->type == want->type, "type");
	CHECK(got->id == want->id, "id");
	INT(F_EXPORT, export_id);
	STR(F_PATH, path);
	STR(F_NAME, name);
	INT(F_EXPORT2, export2);
	STR(F_PATH2, path2);
	STR(F_NAME2, name2);
	INT(F_FH, fh);
	INT(F_FH2, fh2);
	INT(F_OFFSET, offset);
	INT(F_OFFSET2, offset2);
	INT(F_LENGTH, length);
	INT(F_MODE, mode);
	INT(F_FLAGS, flags);
	INT(F_UID, uid);
	INT(F_GID, gid);
	INT(F_RDEV, rdev);
	INT(F_VALID, valid);
	TIME(F_ATIME, atime);
	TIME(F_MTIME, mtime);
	CHECK(data_eq(got->data, got->datalen, USED(F_DATA) ? want->data : NULL,
		  want->datalen),
	    "data");
	CHECK(hello_eq(&got->hello, USED(F_HELLO) ? &want->hello : &zero_hello),
	    "hello");
	return bad;
}

/* The same for replies; an error reply carries nothing but the error. */
static int
rep_diff(const char *label, const struct proto_rep *want,
    const struct proto_rep *got, unsigned mask)
{
	static const struct proto_hello zero_hello;
	static const struct proto_attr zero_attr;
	static const struct proto_statfs zero_statfs;
	const struct proto_statfs *sf;
	size_t i;
	int bad = 0;

	if (want->error != 0)
		mask = 0;
	CHECK(got->type == want->type, "type");
	CHECK(got->id == want->id, "id");
	CHECK(got->error == want->error, "error");
	CHECK(attr_eq(&got->attr, USED(A_ATTR) ? &want->attr : &zero_attr),
	    "attr");
	INT(A_FH, fh);
	INT(A_VALUE, value);
	CHECK(data_eq(got->data, got->datalen, USED(A_DATA) ? want->data : NULL,
		  want->datalen),
	    "data");
	if (USED(A_ENTS)) {
		CHECK(got->nents == want->nents, "nents");
		for (i = 0; i < got->nents && i < want->nents; i++) {
			CHECK(str_eq(got->ents[i].name, want->ents[i].name),
			    "ents[].name");
			CHECK(attr_eq(&got->ents[i].attr, &want->ents[i].attr),
			    "ents[].attr");
		}
	} else
		CHECK(got->ents == NULL && got->nents == 0, "ents");
	sf = USED(A_STATFS) ? &want->statfs : &zero_statfs;
	CHECK(memcmp(&got->statfs, sf, sizeof *sf) == 0, "statfs");
	CHECK(hello_eq(&got->hello, USED(A_HELLO) ? &want->hello : &zero_hello),
	    "hello");
	INT(A_FLAGS, flags);
	if (USED(A_LOCK))
		CHECK(memcmp(&got->lock, &want->lock, sizeof got->lock) == 0,
		    "lock");
	else
		CHECK(got->lock.start == 0 && got->lock.end == 0 &&
			got->lock.type == 0 && got->lock.pid == 0,
		    "lock");
	return bad;
}

/* Wire size of a string field. */
static size_t
str_size(const char *s)
{
	return 4 + strlen(s) + 1;
}

/* Wire size of a handshake body. */
static size_t
hello_size(const struct proto_hello *h)
{
	size_t n = 4 + 4 + 8 + str_size(h->name) + str_size(h->uri) + 8 + 8 + 4;
	uint32_t i;

	for (i = 0; i < h->nexports; i++)
		n += 4 + str_size(h->exports[i].name) +
		    str_size(h->exports[i].at) + 4;
	return n;
}

/* Frame size of a request from PROTOCOL.md's field sizes. */
static size_t
req_size(const struct proto_req *q, unsigned mask)
{
	size_t n = PROTO_HDR_LEN;

	n += USED(F_EXPORT) ? 4 : 0;
	n += USED(F_PATH) ? str_size(q->path) : 0;
	n += USED(F_NAME) ? str_size(q->name) : 0;
	n += USED(F_EXPORT2) ? 4 : 0;
	n += USED(F_PATH2) ? str_size(q->path2) : 0;
	n += USED(F_NAME2) ? str_size(q->name2) : 0;
	n += USED(F_FH) ? 8 : 0;
	n += USED(F_FH2) ? 8 : 0;
	n += USED(F_OFFSET) ? 8 : 0;
	n += USED(F_OFFSET2) ? 8 : 0;
	n += USED(F_LENGTH) ? 8 : 0;
	n += USED(F_MODE) ? 4 : 0;
	n += USED(F_FLAGS) ? 4 : 0;
	n += USED(F_UID) ? 4 : 0;
	n += USED(F_GID) ? 4 : 0;
	n += USED(F_RDEV) ? 8 : 0;
	n += USED(F_VALID) ? 4 : 0;
	n += USED(F_ATIME) ? 12 : 0;
	n += USED(F_MTIME) ? 12 : 0;
	n += USED(F_DATA) ? 4 + q->datalen : 0;
	n += USED(F_HELLO) ? hello_size(&q->hello) : 0;
	return n;
}

/* Frame size of a reply from PROTOCOL.md's field sizes. */
static size_t
rep_size(const struct proto_rep *r, unsigned mask)
{
	size_t i, n = PROTO_HDR_LEN + 4;

	if (r->error != 0)
		return n;
	n += USED(A_ATTR) ? 92 : 0;
	n += USED(A_FH) ? 8 : 0;
	n += USED(A_VALUE) ? 8 : 0;
	n += USED(A_DATA) ? 4 + r->datalen : 0;
	if (USED(A_ENTS)) {
		n += 4;
		for (i = 0; i < r->nents; i++)
			n += str_size(r->ents[i].name) + 92;
	}
	n += USED(A_STATFS) ? 72 : 0;
	n += USED(A_HELLO) ? hello_size(&r->hello) : 0;
	n += USED(A_FLAGS) ? 4 : 0;
	n += USED(A_LOCK) ? 24 : 0;
	return n;
}

/*
 * Whether every truncation of the frame is refused, both cut short under
 * its own length field and with the length field patched to the cut.
 */
static int
truncations_refused(const uint8_t *frame, size_t len, int reply)
{
	struct proto_req q;
	struct proto_rep r;
	uint8_t *copy;
	size_t k;
	int bad = 0, error;

	if ((copy = malloc(len)) == NULL)
		return 0;
	for (k = 0; k < len; k++) {
		memcpy(copy, frame, len);
		if (reply)
			error = proto_decode_rep(copy, k, &r);
		else
			error = proto_decode_req(copy, k, &q);
		bad += error != -EPROTO;
		if (k < 4)
			continue;
		copy[0] = k & 0xff;
		copy[1] = (k >> 8) & 0xff;
		copy[2] = (k >> 16) & 0xff;
		copy[3] = (k >> 24) & 0xff;
		if (reply)
			error = proto_decode_rep(copy, k, &r);
		else
			error = proto_decode_req(copy, k, &q);
		bad += error != -EPROTO;
	}
	free(copy);
	if (bad != 0)
		tap_diag("%d truncations accepted", bad);
	return bad == 0;
}

/* Whether the frame with one extra byte (length patched) is refused. */
static int
trailing_refused(const uint8_t *frame, size_t len, int reply)
{
	struct proto_req q;
	struct proto_rep r;
	uint8_t *copy;
	int error;

	if ((copy = calloc(1, len + 1)) == NULL)
		return 0;
	memcpy(copy, frame, len);
	copy[0] = (len + 1) & 0xff;
	copy[1] = ((len + 1) >> 8) & 0xff;
	copy[2] = ((len + 1) >> 16) & 0xff;
	copy[3] = ((len + 1) >> 24) & 0xff;
	if (reply)
		error = proto_decode_rep(copy, len + 1, &r);
	else
		error = proto_decode_req(copy, len + 1, &q);
	free(copy);
	return error == -EPROTO;
}

#define PER_TYPE 11

/* Round-trip one type: request, reply, error reply; PER_TYPE tests. */
static void
test_type(const struct expect *x)
{
	struct proto_buf b = { 0 };
	struct proto_req q = full_req(x->type), dq;
	struct proto_rep r = full_rep(x->type, 0), dr;
	struct proto_rep er = full_rep(x->type, -ENOENT);
	unsigned mask;
	char label[64];
	int error;

	mask = x->req;
	snprintf(label, sizeof label, "%s request", x->name);
	error = proto_encode_req(&q, &b);
	tap_ok(error == 0 && b.len == req_size(&q, mask),
	    "%s encodes to %zu bytes", label, req_size(&q, mask));
	error = error ? error : proto_decode_req(b.p, b.len, &dq);
	tap_ok(error == 0 && req_diff(label, &q, &dq, mask) == 0 &&
		!proto_frame_is_reply(b.p),
	    "%s round trip", label);
	tap_ok(truncations_refused(b.p, b.len, 0), "%s truncations refused",
	    label);
	tap_ok(trailing_refused(b.p, b.len, 0), "%s trailing byte refused",
	    label);
	tap_ok(proto_decode_rep(b.p, b.len, &dr) == -EPROTO,
	    "%s refused by the reply decoder", label);
	if (error == 0)
		proto_req_clear(&dq);

	mask = x->rep;
	b.len = 0;
	snprintf(label, sizeof label, "%s reply", x->name);
	error = proto_encode_rep(&r, &b);
	tap_ok(error == 0 && b.len == rep_size(&r, mask),
	    "%s encodes to %zu bytes", label, rep_size(&r, mask));
	error = error ? error : proto_decode_rep(b.p, b.len, &dr);
	tap_ok(error == 0 && rep_diff(label, &r, &dr, mask) == 0 &&
		proto_frame_is_reply(b.p),
	    "%s round trip", label);
	tap_ok(truncations_refused(b.p, b.len, 1) &&
		trailing_refused(b.p, b.len, 1),
	    "%s truncations and trailing byte refused", label);
	tap_ok(proto_decode_req(b.p, b.len, &dq) == -EPROTO,
	    "%s refused by the request decoder", label);
	if (error == 0)
		proto_rep_clear(&dr);

	b.len = 0;
	snprintf(label, sizeof label, "%s error reply", x->name);
	error = proto_encode_rep(&er, &b);
	tap_ok(error == 0 && b.len == PROTO_HDR_LEN + 4,
	    "%s is header and error only", label);
	error = error ? error : proto_decode_rep(b.p, b.len, &dr);
	tap_ok(error == 0 && rep_diff(label, &er, &dr, mask) == 0 &&
		truncations_refused(b.p, b.len, 1) &&
		trailing_refused(b.p, b.len, 1),
	    "%s round trip", label);
	if (error == 0)
		proto_rep_clear(&dr);
	proto_buf_free(&b);
}

/* Start a frame. */
static void
w_hdr(struct w *w, int type, int flags, int reserved, uint64_t id)
{
	w->n = 0;
	w->strw = 4;
	w_int(w, 0, 4);
	w_int(w, type, 1);
	w_int(w, flags, 1);
	w_int(w, reserved, 2);
	w_int(w, id, 8);
}

/* Patch the length field with the frame's size. */
static void
w_end(struct w *w)
{
	size_t n = w->n;

	w->n = 0;
	w_int(w, n, 4);
	w->n = n;
}

/* Append an attribute record: sample_attr, mode and ctime.nsec replaced. */
static void
w_attr_mode(struct w *w, uint32_t mode, uint32_t ctime_nsec)
{
	struct proto_attr a = sample_attr;

	a.mode = mode;
	a.ctime.nsec = ctime_nsec;
	w_attr_of(w, &a);
}

/* Append an attribute record: sample_attr with ctime.nsec replaced. */
static void
w_attr(struct w *w, uint32_t ctime_nsec)
{
	w_attr_mode(w, sample_attr.mode, ctime_nsec);
}

/* A STAT request naming path, given as a raw string field. */
static void
w_stat(struct w *w, uint32_t len, const void *p, size_t n)
{
	w_hdr(w, PROTO_STAT, 0, 0, 1);
	w_int(w, 1, 4);
	w_strn(w, len, p, n);
	w_int(w, 0, 8);
	w_end(w);
}

/* An UNLINK request of name in "dir", or a GETXATTR of xattr name. */
static void
w_named(struct w *w, int type, const char *name)
{
	w_hdr(w, type, 0, 0, 2);
	w_int(w, 1, 4);
	w_str(w, "dir");
	w_str(w, name);
	if (type == PROTO_GETXATTR)
		w_int(w, 0, 8);
	w_end(w);
}

/* A SETATTR request with the given valid bits and times. */
static void
w_setattr(struct w *w, uint32_t valid, uint32_t ansec, uint32_t mnsec)
{
	w_hdr(w, PROTO_SETATTR, 0, 0, 3);
	w_int(w, 1, 4);
	w_str(w, "f");
	w_int(w, 0, 8);   /* fh */
	w_int(w, 100, 8); /* offset: new size */
	w_int(w, 0644, 4);
	w_int(w, 1, 4);
	w_int(w, 2, 4);
	w_int(w, valid, 4);
	w_int(w, 5, 8);
	w_int(w, ansec, 4);
	w_int(w, 6, 8);
	w_int(w, mnsec, 4);
	w_end(w);
}

/* A READ (or GETXATTR, LISTXATTR) request asking for length bytes. */
static void
w_length(struct w *w, int type, uint64_t length)
{
	w_hdr(w, type, 0, 0, 4);
	if (type == PROTO_READ) {
		w_int(w, 9, 8);
		w_int(w, 0, 8);
	} else {
		w_int(w, 1, 4);
		w_str(w, "f");
		if (type == PROTO_GETXATTR)
			w_str(w, "user.x");
	}
	w_int(w, length, 8);
	w_end(w);
}

/* A SYMLINK request with a raw target blob. */
static void
w_symlink(struct w *w, uint32_t len, const void *p, size_t n)
{
	w_hdr(w, PROTO_SYMLINK, 0, 0, 5);
	w_int(w, 1, 4);
	w_str(w, "");
	w_str(w, "link");
	w_strn(w, len, p, n);
	w_end(w);
}

/*
 * A READDIR reply in wire order: checkpoint (fh = global time, value =
 * change number), count, n entries named names[i] with the given mode,
 * flags; then the last cut bytes taken off.
 */
static void
w_readdir_cut(struct w *w, uint32_t flags, uint32_t mode, uint32_t count,
    const char *const *names, size_t n, size_t cut)
{
	size_t i;

	w_hdr(w, PROTO_READDIR, PROTO_FLAG_REPLY, 0, 6);
	w_int(w, 0, 4);
	w_int(w, 1700000000123456789ull, 8);
	w_int(w, 42, 8);
	w_int(w, count, 4);
	for (i = 0; i < n; i++) {
		w_str(w, names[i]);
		w_attr_mode(w, mode, 0);
	}
	w_int(w, flags, 4);
	w->n -= cut;
	w_end(w);
}

/* A whole READDIR reply: count, then n entries named names[i]. */
static void
w_readdir(struct w *w, uint32_t count, const char *const *names, size_t n)
{
	w_readdir_cut(w, 0, sample_attr.mode, count, names, n, 0);
}

/* A READDIR request with a checkpoint, the last cut bytes taken off. */
static void
w_readdir_req(struct w *w, uint64_t boot, uint64_t gtime, uint64_t change,
    size_t cut)
{
	w_hdr(w, PROTO_READDIR, 0, 0, 10);
	w_int(w, 1, 4);
	w_str(w, "dir");
	w_int(w, boot, 8);
	w_int(w, gtime, 8);
	w_int(w, change, 8);
	w->n -= cut;
	w_end(w);
}

/* A HELLO request: magic, name, nexports said and one export sent. */
static void
w_hello(struct w *w, int reply, uint32_t magic, const char *name,
    uint32_t nexports, const char *at, uint32_t flags)
{
	w_hdr(w, PROTO_HELLO, reply ? PROTO_FLAG_REPLY : 0, 0, 7);
	if (reply)
		w_int(w, 0, 4);
	w_int(w, magic, 4);
	w_int(w, 1, 4);
	w_int(w, 0, 8);
	w_str(w, name);
	w_str(w, "127.0.0.1:7070");
	w_int(w, 1, 8);
	w_int(w, 2, 8);
	w_int(w, nexports, 4);
	if (nexports > 0) {
		w_int(w, 3, 4);
		w_str(w, "ex");
		w_str(w, at);
		w_int(w, flags, 4);
	}
	w_end(w);
}

/* A reply with a raw error value and, if body, a trailing attr. */
static void
w_error(struct w *w, int type, uint32_t error, int body)
{
	w_hdr(w, type, PROTO_FLAG_REPLY, 0, 8);
	w_int(w, error, 4);
	if (body)
		w_attr(w, 0);
	w_end(w);
}

/* A request with a raw header and no body. */
static void
w_bare(struct w *w, int type, int flags, int reserved, int extra)
{
	w_hdr(w, type, flags, reserved, 9);
	if (extra)
		w_int(w, 0, 1);
	w_end(w);
}

/*
 * Build hand-assembled frame i into w; its name, whether it is a reply,
 * whether it must be accepted.  NULL past the end of the table.
 */
static const char *
hand_frame(int i, struct w *w, int *reply, int *good)
{
	static const char *const one[] = { "a" }, *const two[] = { "a", "b" };
	static const char *const slash[] = { "a/b" }, *const dots[] = { ".." };
	static const char *const empty[] = { "" };

	*reply = 0;
	*good = 0;
	switch (i) {
	/* accepted */
	case 0:
		*good = 1;
		w_stat(w, 1, "", 1);
		return "stat path \"\"";
	case 1:
		*good = 1;
		w_stat(w, 6, "a/b/c", 6);
		return "stat a/b/c";
	case 2:
		*good = 1;
		w_stat(w, 12, "a..b/.c/..d", 12);
		return "stat a..b/.c/..d";
	case 3:
		*good = 1;
		w_stat(w, 4096, long_path(4095), 4096);
		return "stat 4095-byte path";
	case 4:
		*good = 1;
		w_named(w, PROTO_UNLINK, repeat('n', 255));
		return "unlink 255-byte name";
	case 5:
		*good = 1;
		w_named(w, PROTO_UNLINK, "n@[::1]:7070");
		return "unlink name with @ and :";
	case 6:
		*good = 1;
		w_named(w, PROTO_GETXATTR, "user.a/b");
		return "getxattr name with /";
	case 7:
		*good = 1;
		w_named(w, PROTO_GETXATTR, repeat('x', 255));
		return "getxattr 255-byte name";
	case 8:
		*good = 1;
		w_setattr(w, 0x1ff, 999999999, 0);
		return "setattr valid 0x1ff nsec 999999999";
	case 9:
		*good = 1;
		w_length(w, PROTO_READ, PROTO_MAX_DATA);
		return "read length PROTO_MAX_DATA";
	case 10:
		*good = 1;
		w_length(w, PROTO_LISTXATTR, PROTO_MAX_XATTR);
		return "listxattr length PROTO_MAX_XATTR";
	case 11:
		*good = 1;
		*reply = 1;
		w_readdir(w, 0, NULL, 0);
		return "readdir reply with no entries";
	case 12:
		*good = 1;
		w_hello(w, 0, PROTO_MAGIC, "p", 0, NULL, 0);
		return "hello without exports";
	case 13:
		*good = 1;
		w_symlink(w, 4095, repeat('t', 4095), 4095);
		return "symlink 4095-byte target";
	case 14:
		*good = 1;
		*reply = 1;
		w_error(w, PROTO_STAT, 4095, 0);
		return "error 4095";
	case 15:
		*good = 1;
		w_hello(w, 0, PROTO_MAGIC, "p", 1, "/a/b", 1);
		return "hello read-only export at /a/b";
	case 16:
		*good = 1;
		w_bare(w, PROTO_PING, 0, 0, 0);
		return "ping request";
	/* refused: strings */
	case 17:
		w_stat(w, 3, "abc", 3);
		return "path missing NUL";
	case 18:
		w_stat(w, 4, "a\0b", 4);
		return "path with inner NUL";
	case 19:
		w_stat(w, 0, "", 0);
		return "path length 0";
	case 20:
		w_stat(w, 3, "..", 3);
		return "path ..";
	case 21:
		w_stat(w, 7, "a/../b", 7);
		return "path a/../b";
	case 22:
		w_stat(w, 5, "a//b", 5);
		return "path a//b";
	case 23:
		w_stat(w, 5, "/abs", 5);
		return "path /abs";
	case 24:
		w_stat(w, 3, "a/", 3);
		return "path a/";
	case 25:
		w_stat(w, 2, ".", 2);
		return "path .";
	case 26:
		w_stat(w, 4, "./a", 4);
		return "path ./a";
	case 27:
		w_stat(w, 2, "/", 2);
		return "path /";
	case 28:
		w_stat(w, 4097, long_path(4096), 4097);
		return "path of 4096 bytes";
	case 29:
		w_stat(w, 257, repeat('c', 256), 257);
		return "path component of 256 bytes";
	case 30:
		w_stat(w, 100, "abc", 4);
		return "path length overruns";
	case 31:
		w_stat(w, 0xffffffff, "abc", 4);
		return "path length 2^32-1";
	case 32:
		w_named(w, PROTO_UNLINK, "a/b");
		return "name with /";
	case 33:
		w_named(w, PROTO_UNLINK, "");
		return "name empty";
	case 34:
		w_named(w, PROTO_UNLINK, ".");
		return "name .";
	case 35:
		w_named(w, PROTO_UNLINK, "..");
		return "name ..";
	case 36:
		w_named(w, PROTO_UNLINK, repeat('n', 256));
		return "name of 256 bytes";
	case 37:
		w_named(w, PROTO_GETXATTR, "");
		return "xattr name empty";
	case 38:
		w_named(w, PROTO_GETXATTR, repeat('x', 256));
		return "xattr name of 256 bytes";
	/* refused: numbers */
	case 39:
		w_setattr(w, 0, 1000000000, 0);
		return "atime nsec 1e9";
	case 40:
		w_setattr(w, 0, 0, 0xffffffff);
		return "mtime nsec 2^32-1";
	case 41:
		w_setattr(w, 0x200, 0, 0);
		return "valid bit 0x200";
	case 42:
		w_length(w, PROTO_READ, PROTO_MAX_DATA + 1);
		return "read length PROTO_MAX_DATA+1";
	case 43:
		w_length(w, PROTO_GETXATTR, PROTO_MAX_XATTR + 1);
		return "getxattr length PROTO_MAX_XATTR+1";
	case 44:
		*reply = 1;
		w_hdr(w, PROTO_STAT, PROTO_FLAG_REPLY, 0, 1);
		w_int(w, 0, 4);
		w_attr(w, 1000000000);
		w_end(w);
		return "attr ctime nsec 1e9";
	/* refused: listings and blobs */
	case 45:
		*reply = 1;
		w_readdir(w, PROTO_MAX_DIRENTS + 1, one, 1);
		return "readdir count PROTO_MAX_DIRENTS+1";
	case 46:
		*reply = 1;
		w_readdir(w, 2, one, 1);
		return "readdir count beyond entries";
	case 47:
		*reply = 1;
		w_readdir(w, 1, two, 2);
		return "readdir entries beyond count";
	case 48:
		*reply = 1;
		w_readdir(w, 1, slash, 1);
		return "readdir entry a/b";
	case 49:
		*reply = 1;
		w_readdir(w, 1, dots, 1);
		return "readdir entry ..";
	case 50:
		*reply = 1;
		w_readdir(w, 1, empty, 1);
		return "readdir entry empty";
	case 51:
		w_symlink(w, 0, "", 0);
		return "symlink empty target";
	case 52:
		w_symlink(w, 3, "a\0b", 3);
		return "symlink target with NUL";
	case 53:
		w_symlink(w, 4096, repeat('t', 4096), 4096);
		return "symlink target of 4096 bytes";
	case 54:
		w_symlink(w, 10, "abc", 3);
		return "symlink length overruns";
	case 55:
		*reply = 1;
		w_hdr(w, PROTO_READLINK, PROTO_FLAG_REPLY, 0, 1);
		w_int(w, 0, 4);
		w_strn(w, 2, "a", 2);
		w_end(w);
		return "readlink target with NUL";
	case 56:
		w_hdr(w, PROTO_WRITE, 0, 0, 1);
		w_int(w, 1, 8);
		w_int(w, 0, 8);
		w_strn(w, PROTO_MAX_DATA + 1, "x", 1);
		w_end(w);
		return "write data PROTO_MAX_DATA+1";
	case 57:
		*reply = 1;
		w_hdr(w, PROTO_GETXATTR, PROTO_FLAG_REPLY, 0, 1);
		w_int(w, 0, 4);
		w_int(w, 0, 8);
		w_strn(w, PROTO_MAX_XATTR + 1, "x", 1);
		w_end(w);
		return "getxattr value PROTO_MAX_XATTR+1";
	/* refused: handshake */
	case 58:
		w_hello(w, 0, 0x12345678, "p", 0, NULL, 0);
		return "hello bad magic";
	case 59:
		*reply = 1;
		w_hello(w, 1, 0x53465551, "p", 0, NULL, 0);
		return "hello reply bad magic";
	case 60:
		w_hello(w, 0, PROTO_MAGIC, "p", 257, "/", 0);
		return "hello 257 exports";
	case 61:
		w_hello(w, 0, PROTO_MAGIC, "p", 2, "/", 0);
		return "hello exports beyond frame";
	case 62:
		w_hello(w, 0, PROTO_MAGIC, "p", 1, "/", 2);
		return "hello export flag 2";
	case 63:
		w_hello(w, 0, PROTO_MAGIC, "p", 1, "home", 0);
		return "hello export at relative";
	case 64:
		w_hello(w, 0, PROTO_MAGIC, "p", 1, "/a/", 0);
		return "hello export at /a/";
	case 65:
		w_hello(w, 0, PROTO_MAGIC, "p", 1, "//", 0);
		return "hello export at //";
	case 66:
		w_hello(w, 0, PROTO_MAGIC, "", 0, NULL, 0);
		return "hello empty peer name";
	/* refused: errors and headers */
	case 67:
		*reply = 1;
		w_error(w, PROTO_STAT, ENOENT, 1);
		return "error reply with a body";
	case 68:
		*reply = 1;
		w_error(w, PROTO_STAT, 0xffffffff, 0);
		return "error -1";
	case 69:
		*reply = 1;
		w_error(w, PROTO_STAT, 4096, 0);
		return "error 4096";
	case 70:
		w_bare(w, PROTO_PING, 0, 0, 1);
		return "ping with a body";
	case 71:
		w_bare(w, PROTO_PING, 0x02, 0, 0);
		return "flags bit 1";
	case 72:
		w_bare(w, PROTO_PING, 0x80, 0, 0);
		return "flags bit 7";
	case 73:
		w_bare(w, PROTO_PING, 0, 1, 0);
		return "reserved 1";
	case 74:
		w_bare(w, PROTO_PING, 0, 0x8000, 0);
		return "reserved 0x8000";
	case 75:
		w_bare(w, PROTO_PING, PROTO_FLAG_REPLY, 0, 0);
		return "reply to the request decoder";
	case 76:
		*reply = 1;
		w_bare(w, PROTO_BYE, 0, 0, 0);
		w_int(w, 0, 4);
		w_end(w);
		return "request to the reply decoder";
	case 77:
		w_bare(w, 0, 0, 0, 0);
		return "type 0";
	case 78:
		w_bare(w, PROTO_TYPE_MAX, 0, 0, 0);
		return "type TYPE_MAX";
	case 79:
		w_bare(w, 255, 0, 0, 0);
		return "type 255";
	case 80:
		*reply = 1;
		w_bare(w, PROTO_BYE, PROTO_FLAG_REPLY, 0, 0);
		return "reply without error field";
	case 81:
		w_bare(w, PROTO_PING, 0, 0, 0);
		w->b[0]++;
		return "length field beyond buffer";
	/* incremental listings: checkpoints, flags, removed entries */
	case 82:
		*good = 1;
		w_readdir_req(w, 0, 0, 0, 0);
		return "readdir request for the whole listing";
	case 83:
		*good = 1;
		w_readdir_req(w, ~0ull, ~0ull, ~0ull, 0);
		return "readdir request with checkpoint all ones";
	case 84:
		*good = 1;
		*reply = 1;
		w_readdir_cut(w, PROTO_LIST_DELTA, 0, 2, two, 2, 0);
		return "readdir delta reply of removed entries (mode 0)";
	case 85:
		*good = 1;
		*reply = 1;
		w_readdir_cut(w, PROTO_LIST_DELTA, 0, 0, NULL, 0, 0);
		return "readdir delta reply with no entries";
	case 86:
		*good = 1;
		*reply = 1;
		w_readdir_cut(w, PROTO_LIST_MORE, sample_attr.mode, 1, one, 1,
		    0);
		return "readdir reply flag bit 1 (a page, more follow)";
	case 87:
		*reply = 1;
		w_readdir_cut(w, PROTO_LIST_DELTA | 0x80000000u, 0, 1, one, 1,
		    0);
		return "readdir reply flag bit 31";
	case 88:
		*reply = 1;
		w_readdir_cut(w, 0xffffffff, 0, 0, NULL, 0, 0);
		return "readdir reply flags 2^32-1";
	case 89:
		*reply = 1;
		w_readdir_cut(w, 0, 0100644, 1, one, 1, 4);
		return "readdir reply without flags";
	case 90:
		*reply = 1;
		w_readdir_cut(w, PROTO_LIST_DELTA, 0, 1, one, 1, 2);
		return "readdir reply cut inside flags";
	case 91:
		*reply = 1;
		w_readdir_cut(w, 0, 0, 0, NULL, 0, 4 + 4 + 4);
		return "readdir reply cut inside value";
	case 92:
		*reply = 1;
		w_readdir_cut(w, 0, 0, 0, NULL, 0, 4 + 4 + 8 + 3);
		return "readdir reply cut inside fh";
	case 93:
		*reply = 1;
		w_readdir_cut(w, PROTO_LIST_DELTA, 0, 1, slash, 1, 0);
		return "readdir delta removed entry a/b";
	case 94:
		*reply = 1;
		w_readdir_cut(w, PROTO_LIST_DELTA, 0, 1, dots, 1, 0);
		return "readdir delta removed entry ..";
	case 95:
		*reply = 1;
		w_hdr(w, PROTO_READDIR, PROTO_FLAG_REPLY, 0, 6);
		w_int(w, 0, 4);
		w_int(w, 1, 8);
		w_int(w, 2, 8);
		w_int(w, 1, 4);
		w_str(w, "gone");
		w_attr_mode(w, 0, 1000000000);
		w_int(w, PROTO_LIST_DELTA, 4);
		w_end(w);
		return "readdir delta removed entry ctime nsec 1e9";
	case 96:
		w_readdir_req(w, 1, 2, 3, 24);
		return "readdir request without checkpoint";
	case 97:
		w_readdir_req(w, 1, 2, 3, 5);
		return "readdir request cut inside offset2";
	case 98:
		w_readdir_req(w, 1, 2, 3, 8 + 1);
		return "readdir request cut inside offset";
	case 99:
		w_readdir_req(w, 1, 2, 3, 16 + 7);
		return "readdir request cut inside fh";
	case 100:
		*reply = 1;
		w_readdir_cut(w, PROTO_LIST_DELTA | 0x4, 0, 1, one, 1, 0);
		return "readdir reply flag bit 2";
	case 101:
		*good = 1;
		*reply = 1;
		w_readdir_cut(w, PROTO_LIST_DELTA | PROTO_LIST_MORE, 0, 1, one,
		    1, 0);
		return "readdir delta reply, a page of it";
	}
	return NULL;
}

/* Feed every hand-assembled frame to its decoder. */
static void
test_hand_frames(void)
{
	static struct w w;
	struct proto_req q;
	struct proto_rep r;
	const char *name;
	int i, reply, good, error;

	for (i = 0; (name = hand_frame(i, &w, &reply, &good)) != NULL; i++) {
		if (reply)
			error = proto_decode_rep(w.b, w.n, &r);
		else
			error = proto_decode_req(w.b, w.n, &q);
		tap_ok(error == (good ? 0 : -EPROTO), "%s: %s",
		    good ? "accepted" : "refused", name);
		if (error == 0 && reply)
			proto_rep_clear(&r);
		if (error == 0 && !reply)
			proto_req_clear(&q);
	}
}

/* The number of frames hand_frame() builds. */
static int
hand_frames(void)
{
	static struct w w;
	int i, reply, good;

	for (i = 0; hand_frame(i, &w, &reply, &good) != NULL; i++)
		;
	return i;
}

/* Byte-for-byte comparison of encoder output with assembled frames. */
static void
test_golden(void)
{
	static struct w w;
	struct proto_buf b = { 0 };
	struct proto_req q = { 0 };
	struct proto_rep r = { 0 };

	q.type = PROTO_STAT;
	q.id = 0x0807060504030201ull;
	q.export_id = 0x0d0c0b0a;
	q.path = "dir/sub";
	q.fh = 42;
	w_hdr(&w, PROTO_STAT, 0, 0, q.id);
	w_int(&w, q.export_id, 4);
	w_str(&w, "dir/sub");
	w_int(&w, 42, 8);
	w_end(&w);
	tap_ok(proto_encode_req(&q, &b) == 0 && b.len == 40 && w.n == 40 &&
		memcmp(b.p, w.b, w.n) == 0 &&
		memcmp(b.p,
		    "\x28\0\0\0\x04\0\0\0"
		    "\x01\x02\x03\x04\x05\x06\x07\x08\x0a\x0b\x0c\x0d\x08\0\0\0"
		    "dir/sub\0\x2a\0\0\0\0\0\0\0",
		    40) == 0,
	    "stat request bytes as PROTOCOL.md says");

	r.type = PROTO_STAT;
	r.id = 77;
	r.attr = sample_attr;
	w_hdr(&w, PROTO_STAT, PROTO_FLAG_REPLY, 0, 77);
	w_int(&w, 0, 4);
	w_attr(&w, sample_attr.ctime.nsec);
	w_end(&w);
	b.len = 0;
	tap_ok(proto_encode_rep(&r, &b) == 0 && b.len == w.n &&
		memcmp(b.p, w.b, w.n) == 0,
	    "stat reply bytes as PROTOCOL.md says");

	r.error = -EACCES;
	b.len = 0;
	tap_ok(proto_encode_rep(&r, &b) == 0 && b.len == 20 &&
		memcmp(b.p,
		    "\x14\0\0\0\x04\x01\0\0\x4d\0\0\0\0\0\0\0\x0d\0\0\0",
		    20) == 0,
	    "error reply bytes as PROTOCOL.md says");
	proto_buf_free(&b);
}

/* The entries of a delta listing: one changed, one removed (mode 0). */
static struct proto_dirent delta_ents[] = {
	{ "new", { 0 } },
	{ "gone", { 0 } },
};

/* A READDIR request with a checkpoint, and a delta reply to it. */
static void
delta_frames(struct proto_req *q, struct proto_rep *r)
{
	memset(q, 0, sizeof *q);
	q->type = PROTO_READDIR;
	q->id = 10;
	q->export_id = 1;
	q->path = "dir";
	q->fh = 0xdeadbeefcafef00dull;      /* holder boot id */
	q->offset = 1700000000000000000ull; /* checkpoint global time */
	q->offset2 = 41;                    /* checkpoint change number */
	delta_ents[0].attr = sample_attr;
	memset(r, 0, sizeof *r);
	r->type = PROTO_READDIR;
	r->id = 6;
	r->fh = 1700000000123456789ull;
	r->value = 42;
	r->ents = delta_ents;
	r->nents = NELEM(delta_ents);
	r->flags = PROTO_LIST_DELTA;
}

/*
 * Incremental listings: a request carrying a checkpoint and a delta reply
 * with a removed entry, compared byte for byte with assembled frames and
 * decoded back; a full reply (flags 0) and a request for the whole
 * listing (fh 0).
 */
static void
test_readdir_delta(void)
{
	static struct w w;
	struct proto_buf b = { 0 };
	struct proto_req q, dq;
	struct proto_rep r, dr;
	const unsigned rmask = A_FH | A_VALUE | A_ENTS | A_FLAGS;
	const unsigned qmask = F_EXPORT | F_PATH | F_FH | F_OFFSET | F_OFFSET2;
	int i, error;

	delta_frames(&q, &r);
	w_readdir_req(&w, q.fh, q.offset, q.offset2, 0);
	error = proto_encode_req(&q, &b);
	tap_ok(error == 0 && b.len == w.n && memcmp(b.p, w.b, w.n) == 0,
	    "readdir request with a checkpoint: bytes as PROTOCOL.md says");
	error = error ? error : proto_decode_req(b.p, b.len, &dq);
	tap_ok(error == 0 &&
		req_diff("readdir checkpoint", &q, &dq, qmask) == 0,
	    "readdir request with a checkpoint round trip");

	q.fh = q.offset = q.offset2 = 0;
	b.len = 0;
	error = proto_encode_req(&q, &b);
	error = error ? error : proto_decode_req(b.p, b.len, &dq);
	tap_ok(error == 0 && dq.fh == 0 && dq.offset == 0 && dq.offset2 == 0 &&
		b.len == w.n,
	    "readdir request for the whole listing (fh 0) round trip");

	w_hdr(&w, PROTO_READDIR, PROTO_FLAG_REPLY, 0, 6);
	w_int(&w, 0, 4);
	w_int(&w, r.fh, 8);
	w_int(&w, r.value, 8);
	w_int(&w, 2, 4);
	w_str(&w, "new");
	w_attr(&w, sample_attr.ctime.nsec);
	w_str(&w, "gone");
	for (i = 0; i < 92 / 4; i++)
		w_int(&w, 0, 4);
	w_int(&w, PROTO_LIST_DELTA, 4);
	w_end(&w);
	b.len = 0;
	error = proto_encode_rep(&r, &b);
	tap_ok(error == 0 && b.len == w.n && memcmp(b.p, w.b, w.n) == 0,
	    "readdir delta reply: bytes as PROTOCOL.md says");
	error = error ? error : proto_decode_rep(b.p, b.len, &dr);
	tap_ok(error == 0 && rep_diff("readdir delta", &r, &dr, rmask) == 0 &&
		dr.flags == PROTO_LIST_DELTA && dr.nents == 2 &&
		dr.ents[1].attr.mode == 0 &&
		strcmp(dr.ents[1].name, "gone") == 0,
	    "readdir delta reply with a removed entry round trip");
	if (error == 0)
		proto_rep_clear(&dr);
	tap_ok(truncations_refused(b.p, b.len, 1) &&
		trailing_refused(b.p, b.len, 1),
	    "readdir delta reply truncations and trailing byte refused");

	r.flags = 0;
	r.ents = sample_ents;
	r.nents = NELEM(sample_ents);
	b.len = 0;
	error = proto_encode_rep(&r, &b);
	error = error ? error : proto_decode_rep(b.p, b.len, &dr);
	tap_ok(error == 0 && rep_diff("readdir full", &r, &dr, rmask) == 0 &&
		dr.flags == 0 && memcmp(b.p + b.len - 4, "\0\0\0\0", 4) == 0,
	    "readdir full reply (flags 0) round trip");
	if (error == 0)
		proto_rep_clear(&dr);
	proto_buf_free(&b);
}

#define DELTA_TESTS 7

/* Ways to spoil a valid request; the encoder must refuse each. */
static const char *
spoil_req(int i, struct proto_req *q)
{
	static struct proto_export bad_export[] = { { 1, "x", "rel", 0 } };

	switch (i) {
	case 0:
		q->type = PROTO_STAT;
		q->path = "..";
		return "path ..";
	case 1:
		q->type = PROTO_STAT;
		q->path = "/a";
		return "path /a";
	case 2:
		q->type = PROTO_STAT;
		q->path = NULL;
		return "path NULL";
	case 3:
		q->type = PROTO_MKDIR;
		q->name = "a/b";
		return "name a/b";
	case 4:
		q->type = PROTO_MKDIR;
		q->name = "";
		return "name empty";
	case 5:
		q->type = PROTO_RENAME;
		q->name2 = ".";
		return "name2 .";
	case 6:
		q->type = PROTO_LINK;
		q->path2 = "a//b";
		return "path2 a//b";
	case 7:
		q->type = PROTO_SETXATTR;
		q->name = "";
		return "xattr name empty";
	case 8:
		q->type = PROTO_SETXATTR;
		q->name = repeat('x', 256);
		return "xattr name of 256 bytes";
	case 9:
		q->type = PROTO_SETATTR;
		q->atime.nsec = 1000000000;
		return "atime nsec 1e9";
	case 10:
		q->type = PROTO_SETATTR;
		q->valid = 0x200;
		return "valid 0x200";
	case 11:
		q->type = PROTO_READ;
		q->length = PROTO_MAX_DATA + 1;
		return "read length too large";
	case 12:
		q->type = PROTO_WRITE;
		q->data = NULL;
		return "write data NULL with a length";
	case 13:
		q->type = PROTO_WRITE;
		q->datalen = PROTO_MAX_DATA + 1;
		return "write data too large";
	case 14:
		q->type = PROTO_SYMLINK;
		q->datalen = 0;
		return "symlink empty target";
	case 15:
		q->type = PROTO_SYMLINK;
		q->data = "a\0b";
		q->datalen = 3;
		return "symlink target with NUL";
	case 16:
		q->type = PROTO_HELLO;
		q->hello.magic = 1;
		return "hello bad magic";
	case 17:
		q->type = PROTO_HELLO;
		q->hello.nexports = PROTO_MAX_EXPORTS + 1;
		return "hello too many exports";
	case 18:
		q->type = PROTO_HELLO;
		q->hello.exports = bad_export;
		q->hello.nexports = 1;
		return "hello export at relative";
	case 19:
		q->type = PROTO_HELLO;
		q->hello.uri = NULL;
		return "hello uri NULL";
	case 20:
		q->type = 0;
		return "type 0";
	case 21:
		q->type = PROTO_TYPE_MAX;
		return "type TYPE_MAX";
	case 22:
		q->type = PROTO_GETXATTR;
		q->length = PROTO_MAX_XATTR + 1;
		return "getxattr length too large";
	}
	return NULL;
}

/* Ways to spoil a valid reply. */
static const char *
spoil_rep(int i, struct proto_rep *r)
{
	static struct proto_dirent bad_ent[] = { { "a/b", { 0 } } };

	switch (i) {
	case 0:
		r->error = ENOENT;
		return "positive error";
	case 1:
		r->error = -4096;
		return "error -4096";
	case 2:
		r->type = PROTO_STAT;
		r->attr.mtime.nsec = 1000000000;
		return "attr nsec 1e9";
	case 3:
		r->type = PROTO_READDIR;
		r->ents = bad_ent;
		r->nents = 1;
		return "entry a/b";
	case 4:
		r->type = PROTO_READDIR;
		r->ents = NULL;
		return "entries NULL with a count";
	case 5:
		r->type = PROTO_READDIR;
		r->nents = PROTO_MAX_DIRENTS + 1;
		return "too many entries";
	case 6:
		r->type = PROTO_READ;
		r->datalen = PROTO_MAX_DATA + 1;
		return "read data too large";
	case 7:
		r->type = PROTO_GETXATTR;
		r->datalen = PROTO_MAX_XATTR + 1;
		return "xattr value too large";
	case 8:
		r->type = PROTO_READLINK;
		r->datalen = PROTO_MAX_PATH;
		return "readlink target of 4096 bytes";
	case 9:
		r->type = PROTO_HELLO;
		r->hello.name = "";
		return "hello empty name";
	case 10:
		r->type = 99;
		return "type 99";
	case 11:
		r->type = PROTO_READDIR;
		r->flags = 0x4;
		return "readdir flag bit 2";
	case 12:
		r->type = PROTO_READDIR;
		r->flags = PROTO_LIST_DELTA | 0x80000000u;
		return "readdir flag bit 31";
	}
	return NULL;
}

/* The encoders refuse what the decoders would, and append nothing. */
static void
test_encoder_refusals(void)
{
	struct proto_buf b = { 0 };
	struct proto_req q;
	struct proto_rep r;
	const char *name;
	size_t before;
	int i, error;

	/* Something already in the buffer must survive a refusal. */
	q = full_req(PROTO_PING);
	proto_encode_req(&q, &b);
	before = b.len;
	for (i = 0; q = full_req(PROTO_STAT), (name = spoil_req(i, &q)) != NULL;
	     i++) {
		error = proto_encode_req(&q, &b);
		tap_ok(error == -EINVAL && b.len == before,
		    "encoder refuses request: %s", name);
	}
	for (i = 0;
	     r = full_rep(PROTO_STAT, 0), (name = spoil_rep(i, &r)) != NULL;
	     i++) {
		error = proto_encode_rep(&r, &b);
		tap_ok(error == -EINVAL && b.len == before,
		    "encoder refuses reply: %s", name);
	}
	proto_buf_free(&b);
}

/* The number of spoilt requests and replies. */
static int
spoils(void)
{
	struct proto_req q;
	struct proto_rep r;
	int i, n = 0;

	for (i = 0; spoil_req(i, &q) != NULL; i++)
		n++;
	for (i = 0; spoil_rep(i, &r) != NULL; i++)
		n++;
	return n;
}

static const struct {
	const char *s;
	int name_ok, path_ok;
} names[] = {
	{ "", 0, 1 },
	{ "a", 1, 1 },
	{ ".", 0, 0 },
	{ "..", 0, 0 },
	{ "...", 1, 1 },
	{ ".hidden", 1, 1 },
	{ "a/b", 0, 1 },
	{ "a/./b", 0, 0 },
	{ "a/../b", 0, 0 },
	{ "a//b", 0, 0 },
	{ "/a", 0, 0 },
	{ "a/", 0, 0 },
	{ "/", 0, 0 },
	{ "x@[::1]:7070", 1, 1 },
	{ "sp ace\ttab\n", 1, 1 },
	{ "\xc3\xa9t\xc3\xa9", 1, 1 },
};

/* proto_name_ok and proto_path_ok on a table, lengths and NULL. */
static void
test_names(void)
{
	size_t i;

	for (i = 0; i < NELEM(names); i++) {
		tap_ok(proto_name_ok(names[i].s) == names[i].name_ok &&
			proto_path_ok(names[i].s) == names[i].path_ok,
		    "name_ok %d path_ok %d: \"%s\"", names[i].name_ok,
		    names[i].path_ok, names[i].s);
	}
	tap_ok(proto_name_ok(repeat('n', 255)) &&
		!proto_name_ok(repeat('n', 256)),
	    "names end at 255 bytes");
	tap_ok(proto_path_ok(long_path(4095)) &&
		!proto_path_ok(long_path(4096)),
	    "paths end at 4095 bytes");
	tap_ok(!proto_path_ok(repeat('c', 256)),
	    "path components end at 255 bytes");
	tap_ok(!proto_name_ok(NULL) && !proto_path_ok(NULL), "NULL refused");
}

#define NAMES_TESTS (NELEM(names) + 4)

/* proto_frame_len, proto_frame_is_reply and proto_type_name. */
static void
test_frame_len(void)
{
	static const struct {
		uint8_t b[4];
		size_t n;
		long want;
	} cases[] = {
		{ { 0 }, 0, 0 },
		{ { 16, 0, 0 }, 3, 0 },
		{ { 0, 0, 0, 0 }, 4, -EPROTO },
		{ { 15, 0, 0, 0 }, 4, -EPROTO },
		{ { 16, 0, 0, 0 }, 4, 16 },
		{ { 16, 0, 0, 0 }, 3, 0 },
		{ { 0x00, 0x01, 0, 0 }, 4, 256 },
		{ { 0, 0, 0, 0x02 }, 4, PROTO_MAX_FRAME },
		{ { 1, 0, 0, 0x02 }, 4, -EPROTO },
		{ { 0xff, 0xff, 0xff, 0xff }, 4, -EPROTO },
		{ { 0, 0, 0, 0x80 }, 4, -EPROTO },
	};
	struct proto_buf b = { 0 };
	struct proto_req q = full_req(PROTO_PING);
	struct proto_rep r = full_rep(PROTO_STAT, 0);
	long n1;
	size_t i;

	for (i = 0; i < NELEM(cases); i++) {
		tap_is_int(proto_frame_len(cases[i].b, cases[i].n),
		    cases[i].want, "proto_frame_len case");
	}
	tap_is_int(proto_frame_len(NULL, 0), 0, "proto_frame_len(NULL, 0)");

	/* Two frames back to back split where the lengths say. */
	proto_encode_req(&q, &b);
	proto_encode_rep(&r, &b);
	n1 = proto_frame_len(b.p, b.len);
	tap_ok(n1 == PROTO_HDR_LEN && !proto_frame_is_reply(b.p) &&
		proto_frame_len(b.p + n1, b.len - n1) == (long)(b.len - n1) &&
		proto_frame_is_reply(b.p + n1),
	    "two frames in one buffer split");
	proto_buf_free(&b);

	tap_is_str(proto_type_name(PROTO_STAT), "stat", "type name stat");
	tap_is_str(proto_type_name(PROTO_COPY_RANGE), "copy_range",
	    "type name copy_range");
	tap_is_str(proto_type_name(0), "unknown", "type name 0");
	tap_is_str(proto_type_name(PROTO_TYPE_MAX), "unknown",
	    "type name TYPE_MAX");
	tap_is_str(proto_type_name(-1), "unknown", "type name -1");
}

#define FRAME_LEN_TESTS (11 + 1 + 1 + 5)

/* Frames at the size limits. */
static void
test_large(void)
{
	struct proto_buf b = { 0 };
	struct proto_req q = full_req(PROTO_WRITE), dq;
	struct proto_rep r = full_rep(PROTO_READ, 0), dr;
	struct proto_buf inplace = { 0 };
	struct proto_dirent *ents;
	uint8_t *big, *at;
	size_t i, n;

	if ((big = malloc(PROTO_MAX_DATA)) == NULL)
		abort();
	for (i = 0; i < PROTO_MAX_DATA; i++)
		big[i] = (uint8_t)(i * 7);
	q.data = big;
	q.datalen = PROTO_MAX_DATA;
	tap_ok(proto_encode_req(&q, &b) == 0 &&
		proto_decode_req(b.p, b.len, &dq) == 0 &&
		dq.datalen == PROTO_MAX_DATA &&
		memcmp(dq.data, big, PROTO_MAX_DATA) == 0,
	    "write of PROTO_MAX_DATA round trip");

	b.len = 0;
	r.data = big;
	r.datalen = PROTO_MAX_DATA;
	tap_ok(proto_encode_rep(&r, &b) == 0 &&
		proto_decode_rep(b.p, b.len, &dr) == 0 &&
		dr.datalen == PROTO_MAX_DATA && dr.data == b.p + 24 &&
		memcmp(dr.data, big, PROTO_MAX_DATA) == 0,
	    "read reply of PROTO_MAX_DATA round trip, zero copy");

	/* Read to where the frame carries it: encoded around the data. */
	n = proto_rep_data_at(PROTO_READ);
	if ((inplace.p = malloc(n + PROTO_MAX_DATA)) == NULL)
		abort();
	memcpy(inplace.p + n, big, PROTO_MAX_DATA);
	inplace.cap = n + PROTO_MAX_DATA;
	r.data = inplace.p + n;
	at = inplace.p;
	tap_ok(n == 24 && proto_encode_rep(&r, &inplace) == 0 &&
		inplace.p == at && inplace.len == b.len &&
		memcmp(inplace.p, b.p, b.len) == 0,
	    "read reply encoded in place: the same frame, same buffer");
	tap_ok(proto_rep_data_at(PROTO_READDIR) == 0 &&
		proto_rep_data_at(PROTO_STAT) == 0 &&
		proto_rep_data_at(PROTO_READLINK) == 24,
	    "data in place only for replies of data alone");
	proto_buf_free(&inplace);

	/* A WRITE gathered where its frame carries it (one that clears
	 * set-ID bits): encoded around the data, the frame a copy makes. */
	n = proto_req_data_at(PROTO_WRITE);
	q.data = big;
	q.datalen = PROTO_MAX_DATA;
	q.flags |= PROTO_KILL_SUIDGID;
	b.len = 0;
	if ((inplace.p = malloc(n + PROTO_MAX_DATA + 64)) == NULL)
		abort();
	memcpy(inplace.p + n, big, PROTO_MAX_DATA);
	inplace.cap = n + PROTO_MAX_DATA + 64;
	inplace.len = 0;
	q.data = inplace.p + n;
	at = inplace.p;
	tap_ok(n == PROTO_HDR_LEN + 8 + 8 + 4 &&
		proto_encode_req(&q, &inplace) == 0 && inplace.p == at &&
		(q.data = big, proto_encode_req(&q, &b) == 0) &&
		inplace.len == b.len && memcmp(inplace.p, b.p, b.len) == 0 &&
		proto_decode_req(inplace.p, inplace.len, &dq) == 0 &&
		(dq.flags & PROTO_KILL_SUIDGID) != 0 &&
		memcmp(dq.data, big, PROTO_MAX_DATA) == 0,
	    "write request encoded in place: the same frame, same buffer");
	tap_ok(proto_req_data_at(PROTO_READ) == 0 &&
		proto_req_data_at(PROTO_SETXATTR) == 0 &&
		proto_req_data_at(PROTO_STAT) == 0 &&
		proto_req_data_at(0) == 0 && proto_req_data_at(255) == 0,
	    "requests: data in place only behind fixed fields");
	proto_buf_free(&inplace);
	free(big);

	/*
	 * A listing that cannot fit in PROTO_MAX_FRAME is refused: besides
	 * the entries, the frame holds the header, error, fh, value, count
	 * and flags.
	 */
	n = (PROTO_MAX_FRAME - (PROTO_HDR_LEN + 4 + 8 + 8 + 4 + 4)) /
		(4 + 256 + 92) +
	    1;
	if ((ents = calloc(n, sizeof *ents)) == NULL)
		abort();
	for (i = 0; i < n; i++)
		ents[i].name = repeat('e', 255);
	r = full_rep(PROTO_READDIR, 0);
	r.ents = ents;
	r.nents = n;
	b.len = 0;
	tap_ok(proto_encode_rep(&r, &b) == -EINVAL && b.len == 0,
	    "listing beyond PROTO_MAX_FRAME refused");
	r.nents = n - 1;
	tap_ok(proto_encode_rep(&r, &b) == 0 && b.len <= PROTO_MAX_FRAME &&
		proto_decode_rep(b.p, b.len, &dr) == 0 && dr.nents == n - 1,
	    "listing of %zu 255-byte names round trip", n - 1);
	proto_rep_clear(&dr);
	tap_ok(dr.ents == NULL && dr.nents == 0, "proto_rep_clear resets");
	free(ents);
	proto_buf_free(&b);
	tap_ok(b.p == NULL && b.len == 0 && b.cap == 0,
	    "proto_buf_free resets");
}

#define LARGE_TESTS 10

/*
 * Decode the frames of a paged listing in b: their number in *pages,
 * whether each is within the limits, carries r's checkpoint and kind and
 * PROTO_LIST_MORE exactly when not the last, and whether together they
 * hold r's entries in order.
 */
static int
pages_ok(const struct proto_buf *b, const struct proto_rep *r, int *pages)
{
	struct proto_rep dr;
	size_t off = 0, k = 0;
	long len;
	int ok = 1;

	*pages = 0;
	while (ok && off < b->len) {
		len = proto_frame_len(b->p + off, b->len - off);
		if (len <= 0 || (size_t)len > b->len - off ||
		    proto_decode_rep(b->p + off, (size_t)len, &dr) != 0)
			return 0;
		off += (size_t)len;
		(*pages)++;
		ok = dr.type == PROTO_READDIR && dr.id == r->id &&
		    dr.fh == r->fh && dr.value == r->value &&
		    (dr.flags & PROTO_LIST_DELTA) ==
			(r->flags & PROTO_LIST_DELTA) &&
		    ((dr.flags & PROTO_LIST_MORE) != 0) == (off < b->len) &&
		    dr.nents <= PROTO_MAX_DIRENTS && k + dr.nents <= r->nents;
		for (size_t i = 0; ok && i < dr.nents; i++, k++)
			ok = strcmp(dr.ents[i].name, r->ents[k].name) == 0 &&
			    attr_eq(&dr.ents[i].attr, &r->ents[k].attr);
		proto_rep_clear(&dr);
	}
	return ok && k == r->nents;
}

/* Listings too large for a frame go as pages; the others as one. */
static void
test_paged(void)
{
	struct proto_buf b = { 0 }, one = { 0 };
	struct proto_rep r = full_rep(PROTO_READDIR, 0);
	struct proto_dirent *ents;
	const char *last;
	size_t i, n, before;
	int pages, ok;

	/* A small listing, an error, another type: as proto_encode_rep. */
	tap_ok(proto_encode_rep_paged(&r, &b) == 0 &&
		proto_encode_rep(&r, &one) == 0 && b.len == one.len &&
		memcmp(b.p, one.p, b.len) == 0 && pages_ok(&b, &r, &pages) &&
		pages == 1,
	    "a small listing is one frame, as unpaged");
	b.len = one.len = 0;
	r.nents = 0;
	tap_ok(proto_encode_rep_paged(&r, &b) == 0 &&
		pages_ok(&b, &r, &pages) && pages == 1,
	    "an empty listing is one frame");
	r = full_rep(PROTO_READDIR, -ENOENT);
	b.len = 0;
	tap_ok(proto_encode_rep_paged(&r, &b) == 0 && b.len == 20,
	    "an error reply is one frame of 20 bytes");
	r = full_rep(PROTO_STAT, 0);
	b.len = 0;
	tap_ok(proto_encode_rep_paged(&r, &b) == 0 &&
		proto_encode_rep(&r, &one) == 0 && b.len == one.len &&
		memcmp(b.p, one.p, b.len) == 0,
	    "a stat reply is as unpaged");

	/* 255-byte names beyond one frame: two pages, in order. */
	n = (PROTO_MAX_FRAME - (PROTO_HDR_LEN + 4 + 8 + 8 + 4 + 4)) /
		(4 + 256 + 92) +
	    1;
	if ((ents = calloc(PROTO_MAX_DIRENTS + 1, sizeof *ents)) == NULL)
		abort();
	for (i = 0; i < n; i++) {
		char *nm = strdup(repeat('e', 255));

		if (nm == NULL)
			abort();
		snprintf(nm, 8, "%07zu", i);
		nm[7] = 'e';
		ents[i].name = nm;
		ents[i].attr = sample_attr;
		ents[i].attr.ino = i;
	}
	r = full_rep(PROTO_READDIR, 0);
	r.flags = PROTO_LIST_DELTA;
	r.ents = ents;
	r.nents = n;
	b.len = 0;
	ok = proto_encode_rep_paged(&r, &b) == 0 && pages_ok(&b, &r, &pages);
	tap_ok(ok && pages == 2,
	    "%zu 255-byte names (a delta): %d pages, "
	    "in order",
	    n, pages);

	/* A bad name in the second page: nothing appended at all. */
	before = b.len;
	last = ents[n - 1].name;
	ents[n - 1].name = "a/b";
	tap_ok(proto_encode_rep_paged(&r, &b) == -EINVAL && b.len == before,
	    "a bad entry in a later page: refused, nothing appended");
	ents[n - 1].name = last;
	for (i = 0; i < n; i++)
		free((char *)ents[i].name);

	/*
	 * One entry more than PROTO_MAX_DIRENTS: 101 bytes each, about
	 * 106 MB, so four pages by size (the count never binds first).
	 */
	for (i = 0; i <= PROTO_MAX_DIRENTS; i++) {
		ents[i].name = i % 2 ? "odd" : "even";
		ents[i].attr = sample_attr;
	}
	r.flags = 0;
	r.nents = PROTO_MAX_DIRENTS + 1;
	b.len = 0;
	ok = proto_encode_rep_paged(&r, &b) == 0 && pages_ok(&b, &r, &pages);
	tap_ok(ok && pages == 4, "PROTO_MAX_DIRENTS + 1 entries: %d pages",
	    pages);
	r.flags = PROTO_LIST_MORE;
	b.len = 0;
	tap_ok(proto_encode_rep_paged(&r, &b) == -EINVAL && b.len == 0,
	    "a listing that says MORE itself is refused");
	free(ents);
	proto_buf_free(&b);
	proto_buf_free(&one);
}

#define PAGED_TESTS 8

/* Write one file of the seed corpus. */
static int
write_seed(const char *dir, const char *kind, const char *name,
    const struct proto_buf *b)
{
	char path[4096];
	FILE *f;
	int ok;

	snprintf(path, sizeof path, "%s/%s-%s", dir, kind, name);
	if ((f = fopen(path, "wb")) == NULL)
		return -1;
	ok = fwrite(b->p, 1, b->len, f) == b->len;
	return fclose(f) == 0 && ok ? 0 : -1;
}

/* Write every valid frame of the round-trip tests into dir. */
/* A caller with n groups 100, 101, ... for the credential tests. */
static struct proto_cred
cred_of(uint32_t n)
{
	struct proto_cred c = { .set = true, .uid = 1000, .gid = 1001 };

	c.ngroups = n;
	for (uint32_t i = 0; i < n && i < PROTO_MAX_GROUPS; i++)
		c.groups[i] = 100 + i;
	return c;
}

static int
write_corpus(const char *dir)
{
	struct proto_buf b = { 0 };
	struct proto_req q;
	struct proto_rep r;
	size_t i;
	int error = 0;

	for (i = 0; i < NELEM(expect) && error == 0; i++) {
		q = full_req(expect[i].type);
		b.len = 0;
		error |= proto_encode_req(&q, &b);
		error |= write_seed(dir, "req", expect[i].name, &b);
		r = full_rep(expect[i].type, 0);
		b.len = 0;
		error |= proto_encode_rep(&r, &b);
		error |= write_seed(dir, "rep", expect[i].name, &b);
	}
	r = full_rep(PROTO_STAT, -EIO);
	b.len = 0;
	error |= proto_encode_rep(&r, &b);
	error |= write_seed(dir, "err", "stat", &b);
	delta_frames(&q, &r);
	b.len = 0;
	error |= proto_encode_req(&q, &b);
	error |= write_seed(dir, "req", "readdir-checkpoint", &b);
	b.len = 0;
	error |= proto_encode_rep(&r, &b);
	error |= write_seed(dir, "rep", "readdir-delta", &b);
	r.flags = 0;
	b.len = 0;
	error |= proto_encode_rep(&r, &b);
	error |= write_seed(dir, "rep", "readdir-full", &b);
	r.flags = PROTO_LIST_MORE;
	b.len = 0;
	error |= proto_encode_rep(&r, &b);
	error |= write_seed(dir, "rep", "readdir-page", &b);
	q = full_req(PROTO_CREATE);
	q.cred = cred_of(3);
	b.len = 0;
	error |= proto_encode_req(&q, &b);
	error |= write_seed(dir, "req", "create-cred", &b);
	proto_buf_free(&b);
	return error == 0 ? 0 : 1;
}

/*
 * A WRITE that clears set-ID bits travels with type byte 31 and the
 * body of a WRITE, and decodes as a WRITE with PROTO_KILL_SUIDGID; a
 * reply of type 31 is refused; a stream without the capability carries
 * none of the three requests to clear them.
 */
#define KILL_TESTS 6
static void
test_kill_suidgid(void)
{
	struct proto_buf b = { 0 }, plain = { 0 };
	struct proto_req q = full_req(PROTO_WRITE), dq;
	struct proto_rep dr;
	int error;

	q.flags = PROTO_KILL_SUIDGID;
	error = proto_encode_req(&q, &b);
	q.flags = 0;
	error = error ? error : proto_encode_req(&q, &plain);
	tap_ok(error == 0 && b.len == plain.len && b.p[4] == 31 &&
		plain.p[4] == PROTO_WRITE &&
		memcmp(b.p + 5, plain.p + 5, b.len - 5) == 0,
	    "a killing write is a write's frame with type byte 31");
	error = error ? error : proto_decode_req(b.p, b.len, &dq);
	tap_ok(error == 0 && dq.type == PROTO_WRITE &&
		dq.flags == PROTO_KILL_SUIDGID && dq.datalen == q.datalen,
	    "type 31 decodes as a write with PROTO_KILL_SUIDGID");
	b.p[5] = PROTO_FLAG_REPLY;
	tap_ok(proto_decode_rep(b.p, b.len, &dr) == -EPROTO,
	    "a reply of type 31 is refused");

	q.flags = PROTO_KILL_SUIDGID;
	proto_req_fit_caps(&q, PROTO_CAP_LIST_PAGES);
	tap_ok(q.flags == 0, "without the capability a write kills nothing");
	q = full_req(PROTO_OPEN);
	q.flags = 01001 | PROTO_KILL_SUIDGID;
	proto_req_fit_caps(&q, PROTO_CAP_KILL_SUIDGID);
	tap_ok(q.flags == (01001 | PROTO_KILL_SUIDGID),
	    "with it an open keeps its request to kill");
	q = full_req(PROTO_SETATTR);
	q.valid = PROTO_SET_SIZE | PROTO_SET_KILL_SUIDGID;
	proto_req_fit_caps(&q, 0);
	tap_ok(q.valid == PROTO_SET_SIZE,
	    "without it a setattr only truncates");
	proto_buf_free(&b);
	proto_buf_free(&plain);
}

/*
 * Credentials (PROTO_CAP_CRED): a request that acts on files carries
 * them after its body, header flag 0x02; one that only looks does not,
 * whatever it is given; the flag on another type, on a reply, with too
 * many groups or cut short is refused; a stream without the capability
 * carries none.
 */
#define CRED_TESTS 8
static void
test_cred(void)
{
	struct proto_buf b = { 0 }, plain = { 0 };
	struct proto_req q = full_req(PROTO_CREATE), dq;
	struct proto_rep dr;
	int error, ok;

	error = proto_encode_req(&q, &plain);
	q.cred = cred_of(3);
	error = error ? error : proto_encode_req(&q, &b);
	tap_ok(error == 0 && b.len == plain.len + 12 + 3 * 4 &&
		b.p[5] == PROTO_FLAG_CRED &&
		memcmp(b.p + 6, plain.p + 6, plain.len - 6) == 0,
	    "a create carries its caller after the body, flag 0x02");
	error = error ? error : proto_decode_req(b.p, b.len, &dq);
	tap_ok(error == 0 && dq.cred.set && dq.cred.uid == 1000 &&
		dq.cred.gid == 1001 && dq.cred.ngroups == 3 &&
		dq.cred.groups[2] == 102 && strcmp(dq.name, q.name) == 0,
	    "and decodes with uid, gid and groups");
	tap_ok(truncations_refused(b.p, b.len, 0) &&
		trailing_refused(b.p, b.len, 0),
	    "credentials cut short or followed by more are refused");
	b.p[5] = PROTO_FLAG_CRED | PROTO_FLAG_REPLY;
	tap_ok(proto_decode_rep(b.p, b.len, &dr) == -EPROTO,
	    "a reply with credentials is refused");
	b.p[5] = PROTO_FLAG_CRED;
	b.p[plain.len + 8] = (PROTO_MAX_GROUPS + 1) & 0xff; /* count, LE */
	b.p[plain.len + 9] = (PROTO_MAX_GROUPS + 1) >> 8;
	tap_ok(proto_decode_req(b.p, b.len, &dq) == -EPROTO,
	    "more than PROTO_MAX_GROUPS groups are refused");
	q.cred = cred_of(PROTO_MAX_GROUPS + 1);
	b.len = 0;
	tap_ok(proto_encode_req(&q, &b) == -EINVAL && b.len == 0,
	    "and not encoded");
	q = full_req(PROTO_STAT);
	q.cred = cred_of(1);
	plain.len = b.len = 0;
	error = proto_encode_req(&q, &b);
	q.cred.set = false;
	error = error ? error : proto_encode_req(&q, &plain);
	ok = error == 0 && b.len == plain.len &&
	    memcmp(b.p, plain.p, b.len) == 0;
	b.p[5] = PROTO_FLAG_CRED;
	tap_ok(ok && proto_decode_req(b.p, b.len, &dq) == -EPROTO,
	    "a stat never carries them, and is refused with the flag");
	q = full_req(PROTO_UNLINK);
	q.cred = cred_of(2);
	proto_req_fit_caps(&q, PROTO_CAP_LIST_PAGES | PROTO_CAP_KILL_SUIDGID);
	tap_ok(!q.cred.set, "without the capability no credentials go");
	proto_buf_free(&b);
	proto_buf_free(&plain);
}

/*
 * The directory's attributes (PROTO_CAP_DIR_ATTR): a CREATE or UNLINK
 * reply carries them after its fields, flagged in the header, and they
 * come back whole; no other type, no error reply and no request carries
 * them; a stream without the capability takes them out.
 */
#define DIR_ATTR_TESTS 7
static void
test_dir_attr(void)
{
	struct proto_buf b = { 0 }, plain = { 0 };
	struct proto_rep r = full_rep(PROTO_CREATE, 0), dr;
	struct proto_attr d = sample_attr;
	struct proto_req dq;
	int error;

	d.mode = 040755;
	d.ctime.nsec = 7;
	r.has_dir_attr = true;
	r.dir_attr = d;
	error = proto_encode_rep(&r, &b);
	r.has_dir_attr = false;
	error = error ? error : proto_encode_rep(&r, &plain);
	tap_ok(error == 0 && b.len == plain.len + 92 &&
		b.p[5] == (PROTO_FLAG_REPLY | PROTO_FLAG_DIR_ATTR) &&
		memcmp(b.p + 16, plain.p + 16, plain.len - 16) == 0,
	    "a create reply with its directory's attributes: 92 bytes more");
	error = error ? error : proto_decode_rep(b.p, b.len, &dr);
	tap_ok(error == 0 && dr.has_dir_attr && dr.dir_attr.mode == d.mode &&
		dr.dir_attr.ino == d.ino && dr.dir_attr.ctime.nsec == 7 &&
		dr.attr.mode == sample_attr.mode &&
		dr.attr.ctime.nsec == sample_attr.ctime.nsec,
	    "they decode beside the new file's");
	proto_buf_free(&b);
	r = full_rep(PROTO_UNLINK, 0);
	r.has_dir_attr = true;
	r.dir_attr = d;
	error = proto_encode_rep(&r, &b);
	error = error ? error : proto_decode_rep(b.p, b.len, &dr);
	tap_ok(error == 0 && b.len == 16 + 4 + 92 && dr.has_dir_attr &&
		dr.dir_attr.ctime.nsec == 7,
	    "an unlink reply carries them alone");
	b.p[5] = PROTO_FLAG_DIR_ATTR;
	tap_ok(proto_decode_req(b.p, b.len, &dq) == -EPROTO,
	    "a request with the flag is refused");
	proto_buf_free(&b);
	r = full_rep(PROTO_STAT, 0);
	r.has_dir_attr = true;
	tap_ok(proto_encode_rep(&r, &b) == -EINVAL,
	    "a stat reply cannot carry them");
	r = full_rep(PROTO_UNLINK, -ENOENT);
	r.has_dir_attr = true;
	error = proto_encode_rep(&r, &b);
	tap_ok(error == 0 && b.len == 20 && b.p[5] == PROTO_FLAG_REPLY,
	    "an error reply goes without them");
	r = full_rep(PROTO_CREATE, 0);
	r.has_dir_attr = true;
	proto_rep_fit_caps(&r, PROTO_CAP_LIST_PAGES | PROTO_CAP_KILL_SUIDGID);
	tap_ok(!r.has_dir_attr, "a stream without the capability drops them");
	proto_buf_free(&b);
	proto_buf_free(&plain);
}

/*
 * A granted lock's change numbers (PROTO_CAP_LOCK_GEN): a SETLK reply
 * carries them after its attributes, flagged in the header, and they
 * come back whole; since above gen, another type, an error reply or a
 * request with the flag are refused; a stream without the capability
 * takes them out.
 */
#define LOCK_GEN_TESTS 7
static void
test_lock_gen(void)
{
	struct proto_buf b = { 0 }, plain = { 0 };
	struct proto_rep r = full_rep(PROTO_SETLK, 0), dr;
	struct proto_req dq;
	int error;

	r.has_lock_gen = true;
	r.lock_gen = UINT64_C(0x1234567890abcdef);
	r.lock_since = 17;
	error = proto_encode_rep(&r, &b);
	r.has_lock_gen = false;
	error = error ? error : proto_encode_rep(&r, &plain);
	tap_ok(error == 0 && b.len == plain.len + 16 &&
		b.p[5] == (PROTO_FLAG_REPLY | PROTO_FLAG_LOCK_GEN) &&
		memcmp(b.p + 16, plain.p + 16, plain.len - 16) == 0,
	    "a setlk reply with its change numbers: 16 bytes more");
	error = error ? error : proto_decode_rep(b.p, b.len, &dr);
	tap_ok(error == 0 && dr.has_lock_gen &&
		dr.lock_gen == UINT64_C(0x1234567890abcdef) &&
		dr.lock_since == 17 && dr.attr.mode == sample_attr.mode,
	    "they decode beside the attributes");
	/* since past gen: bytes 20 + 92 + 8 are since's. */
	b.p[PROTO_HDR_LEN + 4 + 92 + 15] = 0xff;
	tap_ok(proto_decode_rep(b.p, b.len, &dr) == -EPROTO,
	    "since above gen is refused");
	b.p[5] = PROTO_FLAG_LOCK_GEN;
	tap_ok(proto_decode_req(b.p, b.len, &dq) == -EPROTO,
	    "a request with the flag is refused");
	proto_buf_free(&b);
	r = full_rep(PROTO_GETLK, 0);
	r.has_lock_gen = true;
	tap_ok(proto_encode_rep(&r, &b) == -EINVAL,
	    "a getlk reply cannot carry them");
	r = full_rep(PROTO_SETLK, -EAGAIN);
	r.has_lock_gen = true;
	error = proto_encode_rep(&r, &b);
	tap_ok(error == 0 && b.len == 20 && b.p[5] == PROTO_FLAG_REPLY,
	    "an error reply goes without them");
	r = full_rep(PROTO_SETLK, 0);
	r.has_lock_gen = true;
	proto_rep_fit_caps(&r, PROTO_CAP_LOCKS | PROTO_CAP_DIR_ATTR);
	tap_ok(!r.has_lock_gen, "a stream without the capability drops them");
	proto_buf_free(&b);
	proto_buf_free(&plain);
}

/*
 * A lent lock (PROTO_CAP_LOCK_LEASE): a GETLK or SETLK reply flags it
 * in the header and adds nothing to the body; another type or a request
 * with the flag is refused; a stream without the capability takes out
 * the flag and the SETLK's PROTO_LK_BORROW.
 */
#define LEASE_TESTS 5
static void
test_lease(void)
{
	struct proto_buf b = { 0 }, plain = { 0 };
	struct proto_rep r = full_rep(PROTO_SETLK, 0), dr;
	struct proto_req q, dq;
	int error;

	r.lent = true;
	error = proto_encode_rep(&r, &b);
	r.lent = false;
	error = error ? error : proto_encode_rep(&r, &plain);
	tap_ok(error == 0 && b.len == plain.len &&
		b.p[5] == (PROTO_FLAG_REPLY | PROTO_FLAG_LENT) &&
		proto_decode_rep(b.p, b.len, &dr) == 0 && dr.lent,
	    "a setlk reply says it is lent, with nothing more");
	proto_rep_clear(&dr);
	r = full_rep(PROTO_GETLK, 0);
	r.lent = true;
	b.len = 0;
	tap_ok(proto_encode_rep(&r, &b) == 0 &&
		proto_decode_rep(b.p, b.len, &dr) == 0 && dr.lent,
	    "so does a getlk reply");
	proto_rep_clear(&dr);
	r = full_rep(PROTO_STAT, 0);
	r.lent = true;
	tap_ok(proto_encode_rep(&r, &b) == -EINVAL,
	    "a stat reply cannot be lent");
	memset(&q, 0, sizeof q);
	q.type = PROTO_STAT;
	q.path = "x";
	plain.len = 0;
	error = proto_encode_req(&q, &plain);
	plain.p[5] = PROTO_FLAG_LENT;
	tap_ok(error == 0 && proto_decode_req(plain.p, plain.len, &dq) != 0,
	    "a request with the flag is refused");
	r = full_rep(PROTO_SETLK, 0);
	r.lent = true;
	memset(&q, 0, sizeof q);
	q.type = PROTO_SETLK;
	q.flags = PROTO_LK_WRLCK | PROTO_LK_BORROW;
	proto_rep_fit_caps(&r, PROTO_CAP_LOCKS | PROTO_CAP_LOCK_GEN);
	proto_req_fit_caps(&q, PROTO_CAP_LOCKS | PROTO_CAP_LOCK_GEN);
	tap_ok(!r.lent && q.flags == PROTO_LK_WRLCK,
	    "a stream without the capability drops both");
	proto_buf_free(&b);
	proto_buf_free(&plain);
}

/*
 * The object's attributes after a change (PROTO_CAP_CHANGE_ATTR): a
 * WRITE reply goes as WRITE_ATTR (38) with the file after and before,
 * an UNLINK reply as UNLINK_ATTR (39) with what the other names show,
 * after its directory's; they decode as WRITE and UNLINK replies; an
 * error reply goes without them, another type cannot carry them, a
 * request of type 38 is refused, and a stream without the capability
 * takes them out.
 */
/*
 * CHANGES records (proto_changes_next()): two records read back with
 * their times and paths, then the end; a record cut in its time, one
 * whose path lacks its NUL, and an empty path.
 */
#define CHANGES_TESTS 4
static void
test_changes_records(void)
{
	static const uint8_t two[] = { 1, 0, 0, 0, 0, 0, 0, 0x80, 'a', '/', 'b',
		0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 'c', 0 };
	static const uint8_t cut[] = { 1, 2, 3 };
	static const uint8_t open_path[] = { 0, 0, 0, 0, 0, 0, 0, 0, 'x', 'y' };
	static const uint8_t empty[] = { 5, 0, 0, 0, 0, 0, 0, 0, 0 };
	const uint8_t *p = two;
	const char *path = NULL, *path2 = NULL;
	uint64_t ns = 0, ns2 = 0;
	int r1, r2, r3;

	r1 = proto_changes_next(&p, two + sizeof two, &ns, &path);
	r2 = proto_changes_next(&p, two + sizeof two, &ns2, &path2);
	r3 = proto_changes_next(&p, two + sizeof two, &ns2, &path2);
	tap_ok(r1 == 1 && r2 == 1 && r3 == 0 &&
		ns == (UINT64_C(0x80) << 56 | 1) && strcmp(path, "a/b") == 0 &&
		ns2 == UINT64_MAX && strcmp(path2, "c") == 0,
	    "changes: two records, little-endian times, then the end");
	p = cut;
	tap_ok(proto_changes_next(&p, cut + sizeof cut, &ns, &path) == -1 &&
		p == cut,
	    "changes: a record cut in its time is refused");
	p = open_path;
	tap_ok(proto_changes_next(&p, open_path + sizeof open_path, &ns,
		   &path) == -1,
	    "changes: a path without its NUL is refused");
	p = empty;
	tap_ok(proto_changes_next(&p, empty + sizeof empty, &ns, &path) == 1 &&
		ns == 5 && path[0] == '\0' && p == empty + sizeof empty,
	    "changes: an empty path is a record (its caller ignores it)");
}

#define CHANGE_ATTR_TESTS 8
static void
test_change_attr(void)
{
	struct proto_buf b = { 0 }, plain = { 0 };
	struct proto_rep r = full_rep(PROTO_WRITE, 0), dr;
	struct proto_req dq;
	int error;

	r.has_attr = true;
	r.attr = sample_attr;
	r.attr_before = sample_attr;
	r.attr_before.size = 7;
	error = proto_encode_rep(&r, &b);
	r.has_attr = false;
	error = error ? error : proto_encode_rep(&r, &plain);
	tap_ok(error == 0 && b.len == plain.len + 2 * 92 &&
		b.p[4] == PROTO_WIRE_WRITE_ATTR && plain.p[4] == PROTO_WRITE,
	    "a write reply with the file's attributes: WRITE_ATTR, 184 bytes "
	    "more");
	error = error ? error : proto_decode_rep(b.p, b.len, &dr);
	tap_ok(error == 0 && dr.type == PROTO_WRITE && dr.has_attr &&
		dr.value == r.value && dr.attr.size == sample_attr.size &&
		dr.attr_before.size == 7,
	    "it decodes as a write reply, after and before");
	proto_buf_free(&b);
	r = full_rep(PROTO_UNLINK, 0);
	r.has_dir_attr = true;
	r.dir_attr = sample_attr;
	r.has_attr = true;
	r.attr = sample_attr;
	r.attr.nlink = 1;
	error = proto_encode_rep(&r, &b);
	error = error ? error : proto_decode_rep(b.p, b.len, &dr);
	tap_ok(error == 0 && b.p[4] == PROTO_WIRE_UNLINK_ATTR &&
		dr.type == PROTO_UNLINK && dr.has_attr && dr.attr.nlink == 1 &&
		dr.has_dir_attr && dr.dir_attr.ino == sample_attr.ino,
	    "an unlink reply as UNLINK_ATTR, beside its directory's");
	b.p[5] = 0;
	tap_ok(proto_decode_req(b.p, b.len, &dq) == -EPROTO,
	    "a request of its type is refused");
	proto_buf_free(&b);
	r = full_rep(PROTO_STAT, 0);
	r.has_attr = true;
	tap_ok(proto_encode_rep(&r, &b) == -EINVAL,
	    "a stat reply cannot carry them");
	r = full_rep(PROTO_WRITE, -ENOSPC);
	r.has_attr = true;
	error = proto_encode_rep(&r, &b);
	tap_ok(error == 0 && b.len == 20 && b.p[4] == PROTO_WRITE,
	    "an error reply goes without them");
	proto_buf_free(&b);
	r = full_rep(PROTO_WRITE, 0);
	r.has_attr = true;
	error = proto_encode_rep(&r, &b);
	/* the error field: 5, with the body still there */
	b.p[PROTO_HDR_LEN] = 5;
	tap_ok(error == 0 && proto_decode_rep(b.p, b.len, &dr) == -EPROTO,
	    "a WRITE_ATTR with an error is refused");
	proto_rep_fit_caps(&r, PROTO_CAPS & ~(uint64_t)PROTO_CAP_CHANGE_ATTR);
	tap_ok(!r.has_attr, "a stream without the capability drops them");
	proto_buf_free(&b);
	proto_buf_free(&plain);
}

int
main(int argc, char **argv)
{
	size_t i;
	int ok;

	if (argc == 3 && strcmp(argv[1], "--corpus") == 0)
		return write_corpus(argv[2]);

	tap_plan(3 + PER_TYPE * (int)NELEM(expect) + 1 + hand_frames() +
	    DELTA_TESTS + spoils() + (int)NAMES_TESTS + FRAME_LEN_TESTS +
	    LARGE_TESTS + PAGED_TESTS + KILL_TESTS + CRED_TESTS +
	    DIR_ATTR_TESTS + LOCK_GEN_TESTS + LEASE_TESTS + CHANGE_ATTR_TESTS +
	    CHANGES_TESTS);
	test_golden();
	for (i = 0; i < NELEM(expect); i++)
		test_type(&expect[i]);
	/*
	 * Every type in order; 31 is WRITE_KILL, a WRITE's wire byte, 38
	 * and 39 are the wire bytes of WRITE_ATTR and UNLINK_ATTR replies
	 * (no type of their own), then CLUSTER (40), CHANGES and SUMS.
	 */
	ok = NELEM(expect) == PROTO_TYPE_MAX - 4;
	for (i = 0; i < NELEM(expect); i++)
		ok = ok &&
		    expect[i].type ==
			(int)i + 1 + (i + 1 >= PROTO_WIRE_WRITE_KILL) +
			    2 * (i + 2 >= PROTO_WIRE_WRITE_ATTR) &&
		    strcmp(proto_type_name(expect[i].type), expect[i].name) ==
			0;
	ok = ok && expect[NELEM(expect) - 1].type == PROTO_SUMS &&
	    expect[NELEM(expect) - 3].type == PROTO_CLUSTER &&
	    PROTO_SUMS == PROTO_TYPE_MAX - 1 && PROTO_CLUSTER == 40 &&
	    PROTO_WIRE_WRITE_ATTR == PROTO_LKRETURN + 1 &&
	    PROTO_WIRE_UNLINK_ATTR + 1 == PROTO_CLUSTER &&
	    strcmp(proto_type_name(PROTO_WIRE_WRITE_ATTR), "unknown") == 0 &&
	    strcmp(proto_type_name(PROTO_WIRE_UNLINK_ATTR), "unknown") == 0;
	tap_ok(ok, "every type tested, names as PROTOCOL.md says");
	test_hand_frames();
	test_readdir_delta();
	test_encoder_refusals();
	test_names();
	test_frame_len();
	test_large();
	test_paged();
	test_kill_suidgid();
	test_cred();
	test_dir_attr();
	test_lock_gen();
	test_lease();
	test_change_attr();
	test_changes_records();
	return tap_done();
}
