/*
 * proto.c - encoder and decoder of pufs frames.
 *
 * Two field tables list every field a request or a reply can carry, in
 * the one order they travel in; a type table says, as a bit mask per
 * type, which of them its request and its reply use.  The encoder and
 * the decoder both walk those tables and share one set of checks, so
 * they cannot disagree: what the encoder writes the decoder accepts, and
 * re-encoding a decoded frame gives back the same bytes; a READDIR
 * answer too large for one frame is cut into pages of such frames
 * (proto_encode_rep_paged()).  The bytes of
 * each record (integers, strings, export entries, attributes) are
 * proto/wire.c's, which the datagram codec uses too.
 *
 * Limits: pure code, no I/O.  Decoded strings and blobs point into the
 * caller's buffer; only READDIR entries and HELLO exports are allocated
 * (malloc(3)) and proto_rep_clear() / proto_req_clear() free them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "wire.h"

/* flags defined in v1 */
#define PROTO_FLAG_MASK \
	(PROTO_FLAG_REPLY | PROTO_FLAG_CRED | PROTO_FLAG_DIR_ATTR | \
	    PROTO_FLAG_LOCK_GEN | PROTO_FLAG_LENT)
#define ERRNO_MAX 4095                /* as Linux MAX_ERRNO */
#define ATTR_LEN 92                   /* wire size of struct proto_attr */
#define DIRENT_MIN (4 + 2 + ATTR_LEN) /* 1-byte name */
#define EXPORT_MIN (4 + 6 + 6 + 4)    /* "x", "/" */

/* The shape of a field on the wire. */
enum field_kind {
	K_U32 = WIRE_K_U32, /* the simple ones: wire.c's */
	K_U64 = WIRE_K_U64,
	K_TIME = WIRE_K_TIME,
	K_PATH = WIRE_K_PATH,
	K_NAME = WIRE_K_NAME,
	K_XNAME = WIRE_K_TEXT,
	K_ATTR = WIRE_K_ATTR,
	K_LENGTH = WIRE_K_MAX, /* u64 bounded by the type's lenmax */
	K_VALID,               /* u32, PROTO_SET_* bits only */
	K_LISTFLAGS,           /* u32, PROTO_LIST_* bits only */
	K_DATA,                /* u32 length + bytes, bounded by the type */
	K_HELLO,
	K_STATFS,
	K_DIRENTS,
	K_LOCK,
};

/* One field: its bit in the type masks, its shape and where it lives. */
struct field {
	uint32_t bit;
	enum field_kind kind;
	size_t off;  /* the member */
	size_t off2; /* its length or count, for K_DATA, K_DIRENTS */
};

/* Request fields, in wire order. */
#define Q_EXPORT (1u << 0)
#define Q_PATH (1u << 1)
#define Q_NAME (1u << 2)
#define Q_XNAME (1u << 3)
#define Q_EXPORT2 (1u << 4)
#define Q_PATH2 (1u << 5)
#define Q_NAME2 (1u << 6)
#define Q_FH (1u << 7)
#define Q_FH2 (1u << 8)
#define Q_OFFSET (1u << 9)
#define Q_OFFSET2 (1u << 10)
#define Q_LENGTH (1u << 11)
#define Q_MODE (1u << 12)
#define Q_FLAGS (1u << 13)
#define Q_UID (1u << 14)
#define Q_GID (1u << 15)
#define Q_RDEV (1u << 16)
#define Q_VALID (1u << 17)
#define Q_ATIME (1u << 18)
#define Q_MTIME (1u << 19)
#define Q_DATA (1u << 20)
#define Q_HELLO (1u << 21)

#define QF(bit, kind, member) \
	{ \
		bit, kind, offsetof(struct proto_req, member), 0 \
	}
static const struct field req_fields[] = {
	QF(Q_EXPORT, K_U32, export_id),
	QF(Q_PATH, K_PATH, path),
	QF(Q_NAME, K_NAME, name),
	QF(Q_XNAME, K_XNAME, name),
	QF(Q_EXPORT2, K_U32, export2),
	QF(Q_PATH2, K_PATH, path2),
	QF(Q_NAME2, K_NAME, name2),
	QF(Q_FH, K_U64, fh),
	QF(Q_FH2, K_U64, fh2),
	QF(Q_OFFSET, K_U64, offset),
	QF(Q_OFFSET2, K_U64, offset2),
	QF(Q_LENGTH, K_LENGTH, length),
	QF(Q_MODE, K_U32, mode),
	QF(Q_FLAGS, K_U32, flags),
	QF(Q_UID, K_U32, uid),
	QF(Q_GID, K_U32, gid),
	QF(Q_RDEV, K_U64, rdev),
	QF(Q_VALID, K_VALID, valid),
	QF(Q_ATIME, K_TIME, atime),
	QF(Q_MTIME, K_TIME, mtime),
	{ Q_DATA, K_DATA, offsetof(struct proto_req, data),
	    offsetof(struct proto_req, datalen) },
	QF(Q_HELLO, K_HELLO, hello),
};

/* Reply fields after the error, in wire order. */
#define R_ATTR (1u << 0)
#define R_FH (1u << 1)
#define R_VALUE (1u << 2)
#define R_DATA (1u << 3)
#define R_ENTS (1u << 4)
#define R_STATFS (1u << 5)
#define R_HELLO (1u << 6)
#define R_FLAGS (1u << 7) /* added after the others */
#define R_LOCK (1u << 8)  /* last: added after R_FLAGS */

#define RF(bit, kind, member) \
	{ \
		bit, kind, offsetof(struct proto_rep, member), 0 \
	}
static const struct field rep_fields[] = {
	RF(R_ATTR, K_ATTR, attr),
	RF(R_FH, K_U64, fh),
	RF(R_VALUE, K_U64, value),
	{ R_DATA, K_DATA, offsetof(struct proto_rep, data),
	    offsetof(struct proto_rep, datalen) },
	{ R_ENTS, K_DIRENTS, offsetof(struct proto_rep, ents),
	    offsetof(struct proto_rep, nents) },
	RF(R_STATFS, K_STATFS, statfs),
	RF(R_HELLO, K_HELLO, hello),
	RF(R_FLAGS, K_LISTFLAGS, flags),
	RF(R_LOCK, K_LOCK, lock),
};

#define NFIELDS(a) (sizeof(a) / sizeof(a)[0])

/* What one type carries.  No type has data both ways, so one limit. */
struct type_spec {
	const char *name;
	uint32_t req;     /* Q_* */
	uint32_t rep;     /* R_* */
	uint32_t datamax; /* K_DATA: most bytes */
	bool target;      /* K_DATA is a symlink target */
	uint64_t lenmax;  /* K_LENGTH: largest value */
};

#define TARGET_MAX (PROTO_MAX_PATH - 1)
#define ANY UINT64_MAX

static const struct type_spec types[PROTO_TYPE_MAX] = {
	[PROTO_HELLO] = { "hello", Q_HELLO, R_HELLO, 0, false, 0 },
	[PROTO_PING] = { "ping", 0, R_VALUE, 0, false, 0 },
	[PROTO_BYE] = { "bye", 0, 0, 0, false, 0 },
	[PROTO_STAT] = { "stat", Q_EXPORT | Q_PATH | Q_FH, R_ATTR, 0, false,
	    0 },
	[PROTO_SETATTR] = { "setattr",
	    Q_EXPORT | Q_PATH | Q_FH | Q_OFFSET | Q_MODE | Q_UID | Q_GID |
		Q_VALID | Q_ATIME | Q_MTIME,
	    R_ATTR, 0, false, 0 },
	[PROTO_READLINK] = { "readlink", Q_EXPORT | Q_PATH, R_DATA, TARGET_MAX,
	    true, 0 },
	[PROTO_MKNOD] = { "mknod", Q_EXPORT | Q_PATH | Q_NAME | Q_MODE | Q_RDEV,
	    R_ATTR, 0, false, 0 },
	[PROTO_MKDIR] = { "mkdir", Q_EXPORT | Q_PATH | Q_NAME | Q_MODE, R_ATTR,
	    0, false, 0 },
	[PROTO_SYMLINK] = { "symlink", Q_EXPORT | Q_PATH | Q_NAME | Q_DATA,
	    R_ATTR, TARGET_MAX, true, 0 },
	[PROTO_LINK] = { "link",
	    Q_EXPORT | Q_PATH | Q_EXPORT2 | Q_PATH2 | Q_NAME2, R_ATTR, 0, false,
	    0 },
	[PROTO_UNLINK] = { "unlink", Q_EXPORT | Q_PATH | Q_NAME, 0, 0, false,
	    0 },
	[PROTO_RMDIR] = { "rmdir", Q_EXPORT | Q_PATH | Q_NAME, 0, 0, false, 0 },
	[PROTO_RENAME] = { "rename",
	    Q_EXPORT | Q_PATH | Q_NAME | Q_EXPORT2 | Q_PATH2 | Q_NAME2 |
		Q_FLAGS,
	    0, 0, false, 0 },
	[PROTO_OPEN] = { "open", Q_EXPORT | Q_PATH | Q_FLAGS, R_ATTR | R_FH, 0,
	    false, 0 },
	[PROTO_CREATE] = { "create",
	    Q_EXPORT | Q_PATH | Q_NAME | Q_MODE | Q_FLAGS, R_ATTR | R_FH, 0,
	    false, 0 },
	[PROTO_READ] = { "read", Q_FH | Q_OFFSET | Q_LENGTH, R_DATA,
	    PROTO_MAX_DATA, false, PROTO_MAX_DATA },
	[PROTO_WRITE] = { "write", Q_FH | Q_OFFSET | Q_DATA, R_VALUE,
	    PROTO_MAX_DATA, false, 0 },
	[PROTO_RELEASE] = { "release", Q_FH, 0, 0, false, 0 },
	[PROTO_FSYNC] = { "fsync", Q_FH | Q_FLAGS, 0, 0, false, 0 },
	[PROTO_FSYNCDIR] = { "fsyncdir", Q_EXPORT | Q_PATH | Q_FLAGS, 0, 0,
	    false, 0 },
	[PROTO_READDIR] = { "readdir",
	    Q_EXPORT | Q_PATH | Q_FH | Q_OFFSET | Q_OFFSET2,
	    R_FH | R_VALUE | R_ENTS | R_FLAGS, 0, false, 0 },
	[PROTO_STATFS] = { "statfs", Q_EXPORT | Q_PATH, R_STATFS, 0, false, 0 },
	[PROTO_ACCESS] = { "access", Q_EXPORT | Q_PATH | Q_FLAGS, 0, 0, false,
	    0 },
	[PROTO_FALLOCATE] = { "fallocate", Q_FH | Q_OFFSET | Q_LENGTH | Q_FLAGS,
	    0, 0, false, ANY },
	[PROTO_SETXATTR] = { "setxattr",
	    Q_EXPORT | Q_PATH | Q_XNAME | Q_FLAGS | Q_DATA, 0, PROTO_MAX_XATTR,
	    false, 0 },
	[PROTO_GETXATTR] = { "getxattr", Q_EXPORT | Q_PATH | Q_XNAME | Q_LENGTH,
	    R_VALUE | R_DATA, PROTO_MAX_XATTR, false, PROTO_MAX_XATTR },
	[PROTO_LISTXATTR] = { "listxattr", Q_EXPORT | Q_PATH | Q_LENGTH,
	    R_VALUE | R_DATA, PROTO_MAX_XATTR, false, PROTO_MAX_XATTR },
	[PROTO_REMOVEXATTR] = { "removexattr", Q_EXPORT | Q_PATH | Q_XNAME, 0,
	    0, false, 0 },
	[PROTO_COPY_RANGE] = { "copy_range",
	    Q_FH | Q_FH2 | Q_OFFSET | Q_OFFSET2 | Q_LENGTH, R_VALUE, 0, false,
	    ANY },
	[PROTO_LSEEK] = { "lseek", Q_FH | Q_OFFSET | Q_FLAGS, R_VALUE, 0, false,
	    0 },
	[PROTO_REPLACE] = { "replace",
	    Q_EXPORT | Q_PATH | Q_NAME | Q_EXPORT2 | Q_PATH2 | Q_NAME2 |
		Q_MODE | Q_FLAGS | Q_ATIME | Q_MTIME | Q_DATA,
	    R_ATTR, PROTO_MAX_DATA, false, 0 },
	[PROTO_GETLK] = { "getlk",
	    Q_FH | Q_FH2 | Q_OFFSET | Q_OFFSET2 | Q_FLAGS, R_LOCK, 0, false,
	    0 },
	[PROTO_SETLK] = { "setlk",
	    Q_FH | Q_FH2 | Q_OFFSET | Q_OFFSET2 | Q_FLAGS, R_ATTR, 0, false,
	    0 },
	[PROTO_LKCANCEL] = { "lkcancel", Q_OFFSET, 0, 0, false, 0 },
	[PROTO_LEASE] = { "lease", Q_FH, 0, 0, false, 0 },
	[PROTO_LKRETURN] = { "lkreturn", Q_OFFSET, 0, 0, false, 0 },
	[PROTO_CLUSTER] = { "cluster", Q_PATH | Q_FLAGS | Q_OFFSET2, R_VALUE, 0,
	    false, 0 },
	[PROTO_CHANGES] = { "changes", Q_EXPORT | Q_OFFSET | Q_OFFSET2,
	    R_VALUE | R_DATA | R_FLAGS, PROTO_MAX_DATA, false, 0 },
	[PROTO_SUMS] = { "sums", Q_EXPORT | Q_PATH | Q_OFFSET | Q_LENGTH,
	    R_VALUE | R_DATA, PROTO_SUM_MAX *PROTO_SUM_LEN, false,
	    (uint64_t)PROTO_SUM_MAX *PROTO_SUM_BLOCK },
};

/* Whether a reply of type may carry its directory's attributes. */
static bool
proto_dir_attr_type(int type)
{
	switch (type) {
	case PROTO_MKNOD:
	case PROTO_MKDIR:
	case PROTO_SYMLINK:
	case PROTO_CREATE:
	case PROTO_LINK:
	case PROTO_UNLINK:
	case PROTO_RMDIR:
		return true;
	default:
		return false;
	}
}

/* The spec of a type, or NULL for an unknown one. */
static const struct type_spec *
proto_spec(int type)
{
	if (type <= 0 || type >= PROTO_TYPE_MAX || types[type].name == NULL)
		return NULL;
	return &types[type];
}

/* The types whose requests carry their caller's credentials. */
#define CRED_BIT(t) ((uint64_t)1 << (t))
#define CRED_TYPES \
	(CRED_BIT(PROTO_SETATTR) | CRED_BIT(PROTO_MKNOD) | \
	    CRED_BIT(PROTO_MKDIR) | CRED_BIT(PROTO_SYMLINK) | \
	    CRED_BIT(PROTO_LINK) | CRED_BIT(PROTO_UNLINK) | \
	    CRED_BIT(PROTO_RMDIR) | CRED_BIT(PROTO_RENAME) | \
	    CRED_BIT(PROTO_OPEN) | CRED_BIT(PROTO_CREATE) | \
	    CRED_BIT(PROTO_ACCESS) | CRED_BIT(PROTO_SETXATTR) | \
	    CRED_BIT(PROTO_GETXATTR) | CRED_BIT(PROTO_LISTXATTR) | \
	    CRED_BIT(PROTO_REMOVEXATTR) | CRED_BIT(PROTO_REPLACE))
_Static_assert(PROTO_TYPE_MAX <= 64, "CRED_TYPES is one word");

/* Whether requests of type carry their caller's credentials. */
bool
proto_type_cred(int type)
{
	return type > 0 && type < 64 && ((CRED_TYPES >> type) & 1) != 0;
}

/* The log name of a type. */
const char *
proto_type_name(int type)
{
	const struct type_spec *sp = proto_spec(type);

	return sp != NULL ? sp->name : "unknown";
}

/* Whether name is a valid single component (wire.c holds the rule). */
bool
proto_name_ok(const char *name)
{
	return wire_name_ok(name);
}

/* Whether the n bytes at s hold no control character and none of bad. */
static bool
proto_text_clean(const char *s, size_t n, const char *bad)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch < 0x20 || ch == 0x7f || strchr(bad, ch) != NULL)
			return false;
	}
	return true;
}

/* Whether name is a peer name (see proto.h). */
bool
proto_peer_name_ok(const char *name)
{
	size_t n;

	if (name == NULL)
		return false;
	n = strnlen(name, PROTO_MAX_NAME);
	return n >= 1 && n < PROTO_MAX_NAME && proto_text_clean(name, n, "/");
}

/* Whether uri is HOST:PORT or [ADDR]:PORT (see proto.h). */
bool
proto_uri_ok(const char *uri)
{
	const char *colon, *host;
	size_t n, hlen;
	unsigned long port = 0;

	if (uri == NULL)
		return false;
	n = strnlen(uri, PROTO_MAX_NAME);
	if (n == 0 || n >= PROTO_MAX_NAME ||
	    (colon = strrchr(uri, ':')) == NULL)
		return false;
	host = uri;
	hlen = (size_t)(colon - uri);
	if (uri[0] == '[') {
		if (hlen < 3 || colon[-1] != ']')
			return false;
		host++;
		hlen -= 2;
		if (!proto_text_clean(host, hlen, "/[]"))
			return false;
	} else if (hlen == 0 || !proto_text_clean(host, hlen, "/[]:"))
		return false;
	if (colon[1] == '\0' || strlen(colon + 1) > 5)
		return false;
	for (const char *d = colon + 1; *d != '\0'; d++) {
		if (*d < '0' || *d > '9')
			return false;
		port = port * 10 + (unsigned long)(*d - '0');
	}
	return port >= 1 && port <= 65535;
}

/* Whether path is a valid relative path (wire.c holds the rule). */
bool
proto_path_ok(const char *path)
{
	return wire_path_ok(path);
}

/* Whether a blob of n bytes fits the data limits of a type. */
static bool
proto_data_ok(const struct type_spec *sp, const void *p, size_t n)
{
	if (n > sp->datamax)
		return false;
	if (sp->target)
		return n >= 1 && memchr(p, '\0', n) == NULL;
	return true;
}

/* Release an encoder buffer and leave it empty for reuse. */
void
proto_buf_free(struct proto_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* Append a statfs record. */
static void
enc_statfs(struct wire_enc *e, const struct proto_statfs *s)
{
	wire_enc_int(e, s->bsize, 8);
	wire_enc_int(e, s->frsize, 8);
	wire_enc_int(e, s->blocks, 8);
	wire_enc_int(e, s->bfree, 8);
	wire_enc_int(e, s->bavail, 8);
	wire_enc_int(e, s->files, 8);
	wire_enc_int(e, s->ffree, 8);
	wire_enc_int(e, s->favail, 8);
	wire_enc_int(e, s->namemax, 8);
}

/* Append a handshake body. */
static void
enc_hello(struct wire_enc *e, const struct proto_hello *h)
{
	uint32_t i;

	wire_enc_check(e, h->magic == PROTO_MAGIC);
	wire_enc_check(e, h->nexports <= PROTO_MAX_EXPORTS);
	wire_enc_check(e, h->nexports == 0 || h->exports != NULL);
	if (e->err != 0)
		return;
	wire_enc_int(e, h->magic, 4);
	wire_enc_int(e, h->version, 4);
	wire_enc_int(e, h->caps, 8);
	wire_enc_str(e, WIRE_TEXT, h->name);
	wire_enc_str(e, WIRE_TEXT, h->uri);
	wire_enc_int(e, h->uptime_ms, 8);
	wire_enc_int(e, h->boot_id, 8);
	wire_enc_int(e, h->nexports, 4);
	for (i = 0; i < h->nexports && e->err == 0; i++)
		wire_enc_export(e, &h->exports[i], 4);
}

/*
 * Append a directory listing: u32 count, then name and attr each.  Any
 * mode is allowed: in a PROTO_LIST_DELTA reply, mode 0 marks a removal.
 */
static void
enc_dirents(struct wire_enc *e, const struct proto_dirent *ents, size_t n)
{
	size_t i;

	wire_enc_check(e, n <= PROTO_MAX_DIRENTS);
	if (!wire_enc_count(e, ents, n, 4))
		return;
	for (i = 0; i < n && e->err == 0; i++) {
		wire_enc_str(e, WIRE_NAME, ents[i].name);
		wire_enc_attr(e, &ents[i].attr);
	}
}

/* Append a caller's credentials: uid, gid, then the groups, counted. */
static void
enc_cred(struct wire_enc *e, const struct proto_cred *c)
{
	wire_enc_check(e, c->ngroups <= PROTO_MAX_GROUPS);
	if (e->err != 0)
		return;
	wire_enc_int(e, c->uid, 4);
	wire_enc_int(e, c->gid, 4);
	wire_enc_int(e, c->ngroups, 4);
	for (uint32_t i = 0; i < c->ngroups; i++)
		wire_enc_int(e, c->groups[i], 4);
}

/* Whether a GETLK answer is one: a type, and a range (a lock's). */
static bool
proto_lock_ok(const struct proto_lock *l)
{
	if (l->type == PROTO_LK_UNLCK)
		return true;
	return l->type <= PROTO_LK_WRLCK && l->start <= l->end &&
	    l->end <= PROTO_LK_EOF;
}

/* Append a lock record: start, end, type, pid (24 bytes). */
static void
enc_lock(struct wire_enc *e, const struct proto_lock *l)
{
	wire_enc_check(e, proto_lock_ok(l));
	wire_enc_int(e, l->start, 8);
	wire_enc_int(e, l->end, 8);
	wire_enc_int(e, l->type, 4);
	wire_enc_int(e, l->pid, 4);
}

/* Append one field of the struct at base. */
static void
enc_field(struct wire_enc *e, const struct type_spec *sp, const struct field *f,
    const void *base)
{
	const char *m = (const char *)base + f->off;
	const char *m2 = (const char *)base + f->off2;
	const void *data;
	size_t n;

	switch (f->kind) {
	case K_LENGTH:
		wire_enc_check(e, *(const uint64_t *)m <= sp->lenmax);
		wire_enc_int(e, *(const uint64_t *)m, 8);
		break;
	case K_VALID:
		wire_enc_check(e, (*(const uint32_t *)m & ~PROTO_SET_ALL) == 0);
		wire_enc_int(e, *(const uint32_t *)m, 4);
		break;
	case K_LISTFLAGS:
		wire_enc_check(e,
		    (*(const uint32_t *)m & ~PROTO_LIST_FLAGS) == 0);
		wire_enc_int(e, *(const uint32_t *)m, 4);
		break;
	case K_DATA:
		data = *(const void *const *)m;
		n = *(const size_t *)m2;
		wire_enc_check(e,
		    (n == 0 || data != NULL) && proto_data_ok(sp, data, n));
		if (e->err != 0)
			break;
		wire_enc_int(e, n, 4);
		wire_enc_bytes(e, data, n);
		break;
	case K_HELLO:
		enc_hello(e, (const struct proto_hello *)m);
		break;
	case K_STATFS:
		enc_statfs(e, (const struct proto_statfs *)m);
		break;
	case K_DIRENTS:
		enc_dirents(e, *(struct proto_dirent *const *)m,
		    *(const size_t *)m2);
		break;
	case K_LOCK:
		enc_lock(e, (const struct proto_lock *)m);
		break;
	default:
		wire_enc_field(e, f->kind, m);
		break;
	}
}

/* Start a frame: header with the length patched in by enc_end(). */
static void
enc_begin(struct wire_enc *e, struct proto_buf *out, uint8_t type,
    uint8_t flags, uint64_t id)
{
	wire_enc_grow(e, out->p, out->len, out->cap, PROTO_MAX_FRAME, 4);
	wire_enc_int(e, 0, 4);
	wire_enc_int(e, type, 1);
	wire_enc_int(e, flags, 1);
	wire_enc_int(e, 0, 2);
	wire_enc_int(e, id, 8);
}

/*
 * Finish a frame and hand the buffer, perhaps reallocated, back to out;
 * on error the frame is taken back out of it.
 */
static int
enc_end(struct wire_enc *e, struct proto_buf *out)
{
	out->p = e->p;
	out->cap = e->cap;
	if (e->err != 0) {
		out->len = e->start;
		return e->err;
	}
	wire_put_le(e->p + e->start, e->len - e->start, 4);
	out->len = e->len;
	return 0;
}

/* Append a request frame to out; nothing is appended on error. */
int
proto_encode_req(const struct proto_req *q, struct proto_buf *out)
{
	const struct type_spec *sp;
	struct wire_enc e;
	uint8_t type = q->type;
	bool cred = q->cred.set && proto_type_cred(q->type);
	size_t i;

	if ((sp = proto_spec(q->type)) == NULL)
		return -EINVAL;
	/* A WRITE that clears set-ID bits has a type byte of its own. */
	if (type == PROTO_WRITE && (q->flags & PROTO_KILL_SUIDGID))
		type = PROTO_WIRE_WRITE_KILL;
	enc_begin(&e, out, type, cred ? PROTO_FLAG_CRED : 0, q->id);
	for (i = 0; i < NFIELDS(req_fields); i++) {
		if (sp->req & req_fields[i].bit)
			enc_field(&e, sp, &req_fields[i], q);
	}
	if (cred)
		enc_cred(&e, &q->cred);
	return enc_end(&e, out);
}

/* Append a reply frame to out; an error reply carries no body. */
int
proto_encode_rep(const struct proto_rep *r, struct proto_buf *out)
{
	const struct type_spec *sp;
	struct wire_enc e;
	bool dir_attr, lock_gen, lent, change_attr;
	size_t i;

	if ((sp = proto_spec(r->type)) == NULL)
		return -EINVAL;
	if (r->error > 0 || r->error < -ERRNO_MAX)
		return -EINVAL;
	dir_attr = r->error == 0 && r->has_dir_attr;
	if (dir_attr && !proto_dir_attr_type(r->type))
		return -EINVAL;
	lock_gen = r->error == 0 && r->has_lock_gen;
	if (lock_gen && r->type != PROTO_SETLK)
		return -EINVAL;
	lent = r->error == 0 && r->lent;
	if (lent && r->type != PROTO_SETLK && r->type != PROTO_GETLK)
		return -EINVAL;
	change_attr = r->error == 0 && r->has_attr;
	if (change_attr && r->type != PROTO_WRITE && r->type != PROTO_UNLINK)
		return -EINVAL;
	/* The object's attributes after: a type byte of its own. */
	enc_begin(&e, out,
	    !change_attr                 ? r->type
		: r->type == PROTO_WRITE ? PROTO_WIRE_WRITE_ATTR
					 : PROTO_WIRE_UNLINK_ATTR,
	    PROTO_FLAG_REPLY | (dir_attr ? PROTO_FLAG_DIR_ATTR : 0) |
		(lock_gen ? PROTO_FLAG_LOCK_GEN : 0) |
		(lent ? PROTO_FLAG_LENT : 0),
	    r->id);
	wire_enc_int(&e, (uint32_t)-r->error, 4);
	for (i = 0; r->error == 0 && i < NFIELDS(rep_fields); i++) {
		if (sp->rep & rep_fields[i].bit)
			enc_field(&e, sp, &rep_fields[i], r);
	}
	if (dir_attr)
		wire_enc_attr(&e, &r->dir_attr);
	if (lock_gen) {
		wire_enc_int(&e, r->lock_gen, 8);
		wire_enc_int(&e, r->lock_since, 8);
	}
	if (change_attr) {
		wire_enc_attr(&e, &r->attr);
		if (r->type == PROTO_WRITE)
			wire_enc_attr(&e, &r->attr_before);
	}
	return enc_end(&e, out);
}

/*
 * Where the data of a reply of type without an error starts in its
 * frame, or 0 if its reply has other fields.  A server that reads the
 * data to that offset of a buffer of offset + datalen bytes can encode
 * the reply into that buffer: the data is not copied.
 */
size_t
proto_rep_data_at(uint8_t type)
{
	const struct type_spec *sp = proto_spec(type);

	return sp != NULL && sp->rep == R_DATA ? PROTO_HDR_LEN + 4 + 4 : 0;
}

/*
 * Where the data of a request of type starts in its frame, or 0 when it
 * carries none or a field of variable length comes before it.  As with
 * proto_rep_data_at(), a request whose data is at that offset of the
 * buffer it is encoded into already is encoded around it, not copied.
 */
size_t
proto_req_data_at(uint8_t type)
{
	const struct type_spec *sp = proto_spec(type);
	size_t at = PROTO_HDR_LEN;

	if (sp == NULL || (sp->req & Q_DATA) == 0)
		return 0;
	for (size_t i = 0; req_fields[i].bit != Q_DATA; i++) {
		if ((sp->req & req_fields[i].bit) == 0)
			continue;
		switch (req_fields[i].kind) {
		case K_U32:
		case K_VALID:
			at += 4;
			break;
		case K_U64:
		case K_LENGTH:
			at += 8;
			break;
		default:
			return 0;
		}
	}
	return at + 4; /* and the data's length */
}

/* Bytes of a READDIR reply frame besides its entries. */
#define LISTING_FIXED (PROTO_HDR_LEN + 4 + 8 + 8 + 4 + 4)

/* Append a reply; a READDIR listing too large for a frame as pages. */
int
proto_encode_rep_paged(const struct proto_rep *r, struct proto_buf *out)
{
	struct proto_rep page;
	size_t start = out->len, i = 0, k, bytes, len;
	int rc;

	if (r->type != PROTO_READDIR || r->error != 0 ||
	    (r->flags & PROTO_LIST_MORE) != 0 || r->ents == NULL)
		return proto_encode_rep(r, out); /* or its refusal */
	do {
		bytes = LISTING_FIXED;
		for (k = 0; i + k < r->nents && k < PROTO_MAX_DIRENTS; k++) {
			len = 4 +
			    strnlen(r->ents[i + k].name != NULL
				    ? r->ents[i + k].name
				    : "",
				PROTO_MAX_NAME) +
			    1 + ATTR_LEN;
			if (bytes + len > PROTO_MAX_FRAME)
				break;
			bytes += len;
		}
		if (k == 0 && i < r->nents)
			k = 1; /* a bad entry: the encoder says so */
		page = *r;
		page.ents = r->ents + i;
		page.nents = k;
		i += k;
		if (i < r->nents)
			page.flags |= PROTO_LIST_MORE;
		if ((rc = proto_encode_rep(&page, out)) != 0) {
			out->len = start;
			return rc;
		}
	} while (i < r->nents);
	return 0;
}

/* Consume a statfs record. */
static void
dec_statfs(struct wire_dec *d, struct proto_statfs *s)
{
	s->bsize = wire_dec_int(d, 8);
	s->frsize = wire_dec_int(d, 8);
	s->blocks = wire_dec_int(d, 8);
	s->bfree = wire_dec_int(d, 8);
	s->bavail = wire_dec_int(d, 8);
	s->files = wire_dec_int(d, 8);
	s->ffree = wire_dec_int(d, 8);
	s->favail = wire_dec_int(d, 8);
	s->namemax = wire_dec_int(d, 8);
}

/* Consume a handshake body; the exports array is allocated. */
static void
dec_hello(struct wire_dec *d, struct proto_hello *h)
{
	size_t i, n;

	h->magic = wire_dec_int(d, 4);
	if (!wire_dec_check(d, h->magic == PROTO_MAGIC))
		return;
	h->version = wire_dec_int(d, 4);
	h->caps = wire_dec_int(d, 8);
	h->name = wire_dec_str(d, WIRE_TEXT);
	h->uri = wire_dec_str(d, WIRE_TEXT);
	h->uptime_ms = wire_dec_int(d, 8);
	h->boot_id = wire_dec_int(d, 8);
	if (!wire_dec_array(d, 4, &h->exports, &n, sizeof *h->exports,
		EXPORT_MIN, PROTO_MAX_EXPORTS))
		return;
	h->nexports = n;
	for (i = 0; i < n && d->err == 0; i++)
		wire_dec_export(d, &h->exports[i], 4);
}

/* Consume a directory listing; the entry array is allocated. */
static void
dec_dirents(struct wire_dec *d, struct proto_dirent **entsp, size_t *np)
{
	struct proto_dirent *ents;
	size_t i;

	if (!wire_dec_array(d, 4, entsp, np, sizeof **entsp, DIRENT_MIN,
		PROTO_MAX_DIRENTS))
		return;
	ents = *entsp;
	for (i = 0; i < *np && d->err == 0; i++) {
		ents[i].name = wire_dec_str(d, WIRE_NAME);
		wire_dec_attr(d, &ents[i].attr);
	}
}

/* Consume a caller's credentials (the groups bounded before any copy). */
static void
dec_cred(struct wire_dec *d, struct proto_cred *c)
{
	c->uid = wire_dec_int(d, 4);
	c->gid = wire_dec_int(d, 4);
	c->ngroups = wire_dec_int(d, 4);
	if (!wire_dec_check(d, c->ngroups <= PROTO_MAX_GROUPS))
		return;
	for (uint32_t i = 0; i < c->ngroups && d->err == 0; i++)
		c->groups[i] = wire_dec_int(d, 4);
	c->set = d->err == 0;
}

/* Consume a lock record. */
static void
dec_lock(struct wire_dec *d, struct proto_lock *l)
{
	l->start = wire_dec_int(d, 8);
	l->end = wire_dec_int(d, 8);
	l->type = wire_dec_int(d, 4);
	l->pid = wire_dec_int(d, 4);
	wire_dec_check(d, proto_lock_ok(l));
}

/* Consume one field into the struct at base. */
static void
dec_field(struct wire_dec *d, const struct type_spec *sp, const struct field *f,
    void *base)
{
	char *m = (char *)base + f->off;
	char *m2 = (char *)base + f->off2;
	const uint8_t *p;
	size_t n;

	switch (f->kind) {
	case K_LENGTH:
		*(uint64_t *)m = wire_dec_int(d, 8);
		wire_dec_check(d, *(uint64_t *)m <= sp->lenmax);
		break;
	case K_VALID:
		*(uint32_t *)m = wire_dec_int(d, 4);
		wire_dec_check(d, (*(uint32_t *)m & ~PROTO_SET_ALL) == 0);
		break;
	case K_LISTFLAGS:
		*(uint32_t *)m = wire_dec_int(d, 4);
		wire_dec_check(d, (*(uint32_t *)m & ~PROTO_LIST_FLAGS) == 0);
		break;
	case K_DATA:
		n = wire_dec_int(d, 4);
		if (!wire_dec_check(d, n <= sp->datamax))
			break;
		if ((p = wire_dec_take(d, n)) == NULL)
			break;
		if (!wire_dec_check(d, proto_data_ok(sp, p, n)))
			break;
		*(const void **)m = p;
		*(size_t *)m2 = n;
		break;
	case K_HELLO:
		dec_hello(d, (struct proto_hello *)m);
		break;
	case K_STATFS:
		dec_statfs(d, (struct proto_statfs *)m);
		break;
	case K_DIRENTS:
		dec_dirents(d, (struct proto_dirent **)m, (size_t *)m2);
		break;
	case K_LOCK:
		dec_lock(d, (struct proto_lock *)m);
		break;
	default:
		wire_dec_field(d, f->kind, m);
		break;
	}
}

/*
 * Check the header of the len-byte frame at buf; fill type, flags and
 * id and leave the cursor on the body.  The spec of the type, or NULL.
 * Credentials come with requests only, of the types that carry them.
 */
static const struct type_spec *
dec_header(struct wire_dec *d, const uint8_t *buf, size_t len, bool reply,
    uint8_t *type, uint8_t *flagsp, uint64_t *id, bool *change_attr)
{
	const struct type_spec *sp;
	uint8_t flags;

	wire_dec_init(d, buf, len, 4);
	if (len < PROTO_HDR_LEN || buf == NULL || wire_get_le(buf, 4) != len)
		return NULL;
	wire_dec_take(d, 4); /* the length, checked above */
	*type = wire_dec_int(d, 1);
	flags = wire_dec_int(d, 1);
	if (wire_dec_int(d, 2) != 0 || (flags & ~PROTO_FLAG_MASK) != 0)
		return NULL;
	if (((flags & PROTO_FLAG_REPLY) != 0) != reply)
		return NULL;
	/* WRITE_ATTR, UNLINK_ATTR: replies of WRITE and UNLINK. */
	if (change_attr != NULL) {
		*change_attr = reply &&
		    (*type == PROTO_WIRE_WRITE_ATTR ||
			*type == PROTO_WIRE_UNLINK_ATTR);
		if (*change_attr)
			*type = *type == PROTO_WIRE_WRITE_ATTR ? PROTO_WRITE
							       : PROTO_UNLINK;
	}
	if ((flags & PROTO_FLAG_CRED) && (reply || !proto_type_cred(*type)))
		return NULL;
	if ((flags & PROTO_FLAG_DIR_ATTR) &&
	    (!reply || !proto_dir_attr_type(*type)))
		return NULL;
	if ((flags & PROTO_FLAG_LOCK_GEN) && (!reply || *type != PROTO_SETLK))
		return NULL;
	if ((flags & PROTO_FLAG_LENT) &&
	    (!reply || (*type != PROTO_SETLK && *type != PROTO_GETLK)))
		return NULL;
	/* WRITE_KILL: a WRITE's body; it is answered as WRITE. */
	if (*type == PROTO_WIRE_WRITE_KILL && !reply)
		sp = &types[PROTO_WRITE];
	else if ((sp = proto_spec(*type)) == NULL)
		return NULL;
	*id = wire_dec_int(d, 8);
	*flagsp = flags;
	return sp;
}

/* Decode one request frame of exactly len bytes. */
int
proto_decode_req(const uint8_t *buf, size_t len, struct proto_req *q)
{
	const struct type_spec *sp;
	struct wire_dec d;
	uint8_t flags;
	size_t i;
	int error;

	memset(q, 0, sizeof *q);
	sp = dec_header(&d, buf, len, false, &q->type, &flags, &q->id, NULL);
	if (sp == NULL) {
		memset(q, 0, sizeof *q);
		return -EPROTO;
	}
	for (i = 0; i < NFIELDS(req_fields) && d.err == 0; i++) {
		if (sp->req & req_fields[i].bit)
			dec_field(&d, sp, &req_fields[i], q);
	}
	if ((flags & PROTO_FLAG_CRED) && d.err == 0)
		dec_cred(&d, &q->cred);
	if ((error = wire_dec_end(&d)) != 0) {
		proto_req_clear(q);
		memset(q, 0, sizeof *q);
	} else if (q->type == PROTO_WIRE_WRITE_KILL) {
		q->type = PROTO_WRITE;
		q->flags = PROTO_KILL_SUIDGID;
	}
	return error;
}

/* Decode one reply frame of exactly len bytes. */
int
proto_decode_rep(const uint8_t *buf, size_t len, struct proto_rep *r)
{
	const struct type_spec *sp;
	struct wire_dec d;
	uint8_t flags;
	uint32_t e;
	size_t i;
	int error;
	bool change_attr;

	memset(r, 0, sizeof *r);
	sp = dec_header(&d, buf, len, true, &r->type, &flags, &r->id,
	    &change_attr);
	if (sp == NULL) {
		memset(r, 0, sizeof *r);
		return -EPROTO;
	}
	e = wire_dec_int(&d, 4);
	wire_dec_check(&d, e <= ERRNO_MAX);
	/* Out of range, it is refused below; never negated past INT_MIN. */
	r->error = e <= ERRNO_MAX ? -(int32_t)e : -EPROTO;
	for (i = 0; e == 0 && i < NFIELDS(rep_fields) && d.err == 0; i++) {
		if (sp->rep & rep_fields[i].bit)
			dec_field(&d, sp, &rep_fields[i], r);
	}
	/* Only after success: an error reply is its error alone. */
	if (flags & PROTO_FLAG_DIR_ATTR) {
		wire_dec_check(&d, e == 0);
		wire_dec_attr(&d, &r->dir_attr);
		r->has_dir_attr = true;
	}
	if (flags & PROTO_FLAG_LOCK_GEN) {
		wire_dec_check(&d, e == 0);
		r->lock_gen = wire_dec_int(&d, 8);
		r->lock_since = wire_dec_int(&d, 8);
		wire_dec_check(&d, r->lock_since <= r->lock_gen);
		r->has_lock_gen = true;
	}
	if (flags & PROTO_FLAG_LENT) {
		wire_dec_check(&d, e == 0);
		r->lent = true;
	}
	if (change_attr) {
		wire_dec_check(&d, e == 0);
		wire_dec_attr(&d, &r->attr);
		if (r->type == PROTO_WRITE)
			wire_dec_attr(&d, &r->attr_before);
		r->has_attr = true;
	}
	if ((error = wire_dec_end(&d)) != 0) {
		proto_rep_clear(r);
		memset(r, 0, sizeof *r);
	}
	return error;
}

/*
 * Take out of q what a stream without capabilities caps may not carry:
 * the caller's credentials (PROTO_CAP_CRED), the requests to clear
 * set-ID bits (PROTO_CAP_KILL_SUIDGID).  A holder without the latter
 * writes and truncates as it always did.
 */
void
proto_req_fit_caps(struct proto_req *q, uint64_t caps)
{
	if (!(caps & PROTO_CAP_CRED))
		q->cred.set = false;
	if (!(caps & PROTO_CAP_LOCK_LEASE) && q->type == PROTO_SETLK)
		q->flags &= ~(uint32_t)(PROTO_LK_BORROW | PROTO_LK_RETURN);
	if (caps & PROTO_CAP_KILL_SUIDGID)
		return;
	if (q->type == PROTO_WRITE || q->type == PROTO_OPEN)
		q->flags &= ~PROTO_KILL_SUIDGID;
	if (q->type == PROTO_SETATTR)
		q->valid &= ~(uint32_t)PROTO_SET_KILL_SUIDGID;
}

/*
 * Take out of r what a stream without capabilities caps may not carry:
 * the directory's attributes (PROTO_CAP_DIR_ATTR), a lock's change
 * numbers (PROTO_CAP_LOCK_GEN), an object's after a write or unlink
 * (PROTO_CAP_CHANGE_ATTR).
 */
void
proto_rep_fit_caps(struct proto_rep *r, uint64_t caps)
{
	if (!(caps & PROTO_CAP_DIR_ATTR))
		r->has_dir_attr = false;
	if (!(caps & PROTO_CAP_LOCK_GEN))
		r->has_lock_gen = false;
	if (!(caps & PROTO_CAP_LOCK_LEASE))
		r->lent = false;
	if (!(caps & PROTO_CAP_CHANGE_ATTR))
		r->has_attr = false;
}

/*
 * The capabilities a stream needs to carry q: the lock requests and
 * REPLACE are types a peer without their capability would refuse as a
 * protocol error, so they are not sent there at all.
 */
uint64_t
proto_req_caps(const struct proto_req *q)
{
	switch (q->type) {
	case PROTO_GETLK:
	case PROTO_SETLK:
	case PROTO_LKCANCEL:
		return PROTO_CAP_LOCKS;
	case PROTO_LEASE:
	case PROTO_LKRETURN:
		return PROTO_CAP_LOCKS | PROTO_CAP_LOCK_LEASE;
	case PROTO_REPLACE:
		return PROTO_CAP_REPLACE;
	case PROTO_CLUSTER:
	case PROTO_CHANGES:
	case PROTO_SUMS:
		return PROTO_CAP_CLUSTER;
	default:
		return 0;
	}
}

int
proto_changes_next(const uint8_t **p, const uint8_t *end, uint64_t *ns,
    const char **path)
{
	const uint8_t *z;

	if (*p == end)
		return 0;
	if (end - *p < 9 ||
	    (z = memchr(*p + 8, '\0', (size_t)(end - *p - 8))) == NULL)
		return -1;
	*ns = 0;
	for (int i = 7; i >= 0; i--)
		*ns = *ns << 8 | (*p)[i];
	*path = (const char *)*p + 8;
	*p = z + 1;
	return 1;
}

/* The length of the frame at buf, from its first 4 bytes alone. */
long
proto_frame_len(const uint8_t *buf, size_t n)
{
	uint32_t len;

	if (buf == NULL || n < 4)
		return 0;
	len = wire_get_le(buf, 4);
	if (len < PROTO_HDR_LEN || len > PROTO_MAX_FRAME)
		return -EPROTO;
	return len;
}

/* Whether the reply bit (flags, offset 5) is set. */
bool
proto_frame_is_reply(const uint8_t *buf)
{
	return (buf[5] & PROTO_FLAG_REPLY) != 0;
}

/* Free what decoding a request allocated: the HELLO exports. */
void
proto_req_clear(struct proto_req *q)
{
	free(q->hello.exports);
	q->hello.exports = NULL;
	q->hello.nexports = 0;
}

/* Free what decoding a reply allocated: entries and HELLO exports. */
void
proto_rep_clear(struct proto_rep *r)
{
	free(r->ents);
	r->ents = NULL;
	r->nents = 0;
	free(r->hello.exports);
	r->hello.exports = NULL;
	r->hello.nexports = 0;
}
