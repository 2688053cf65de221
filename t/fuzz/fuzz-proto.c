/*
 * fuzz-proto.c - libFuzzer target for the wire codec in proto/.
 *
 * The input goes to proto_frame_len() and to both decoders, whole and
 * cut where its length field says.  Whatever decodes is encoded again:
 * the encoding is canonical, so the bytes must be the input's, and
 * decoding them must give an equal structure.  A difference aborts, and
 * so does any sanitizer report.  AUTH frames (the challenge-response of a
 * keyed stream, proto/auth.c) go to auth_decode() the same way.  A
 * CHANGES answer's records go to proto_changes_next().
 */
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "proto.h"
#include "wiretest.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Whether two blobs are equal. */
static int
data_eq(const void *a, size_t alen, const void *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* Whether two callers' credentials are equal (unset ones are). */
static int
cred_eq(const struct proto_cred *a, const struct proto_cred *b)
{
	return a->set == b->set &&
	    (!a->set ||
		(a->uid == b->uid && a->gid == b->gid &&
		    a->ngroups == b->ngroups &&
		    memcmp(a->groups, b->groups,
			a->ngroups * sizeof *a->groups) == 0));
}

/* Whether two requests are equal in every field. */
static int
req_eq(const struct proto_req *a, const struct proto_req *b)
{
	return a->type == b->type && a->id == b->id &&
	    a->export_id == b->export_id && str_eq(a->path, b->path) &&
	    str_eq(a->name, b->name) && a->export2 == b->export2 &&
	    str_eq(a->path2, b->path2) && str_eq(a->name2, b->name2) &&
	    a->fh == b->fh && a->fh2 == b->fh2 && a->offset == b->offset &&
	    a->offset2 == b->offset2 && a->length == b->length &&
	    a->mode == b->mode && a->flags == b->flags && a->uid == b->uid &&
	    a->gid == b->gid && a->rdev == b->rdev && a->valid == b->valid &&
	    time_eq(&a->atime, &b->atime) && time_eq(&a->mtime, &b->mtime) &&
	    data_eq(a->data, a->datalen, b->data, b->datalen) &&
	    hello_eq(&a->hello, &b->hello) && cred_eq(&a->cred, &b->cred);
}

/* Whether two replies are equal in every field. */
static int
rep_eq(const struct proto_rep *a, const struct proto_rep *b)
{
	const struct proto_statfs *s = &a->statfs, *t = &b->statfs;
	size_t i;

	if (a->nents != b->nents)
		return 0;
	for (i = 0; i < a->nents; i++) {
		if (!str_eq(a->ents[i].name, b->ents[i].name) ||
		    !attr_eq(&a->ents[i].attr, &b->ents[i].attr))
			return 0;
	}
	return a->type == b->type && a->id == b->id && a->error == b->error &&
	    attr_eq(&a->attr, &b->attr) && a->fh == b->fh &&
	    a->value == b->value &&
	    data_eq(a->data, a->datalen, b->data, b->datalen) &&
	    s->bsize == t->bsize && s->frsize == t->frsize &&
	    s->blocks == t->blocks && s->bfree == t->bfree &&
	    s->bavail == t->bavail && s->files == t->files &&
	    s->ffree == t->ffree && s->favail == t->favail &&
	    s->namemax == t->namemax && hello_eq(&a->hello, &b->hello) &&
	    a->flags == b->flags;
}

/* Decode buf as a request; if it decodes, check the round trip. */
static void
fuzz_req(const uint8_t *buf, size_t len)
{
	struct proto_buf b = { 0 };
	struct proto_req q, q2;

	if (proto_decode_req(buf, len, &q) != 0)
		return;
	if (proto_frame_is_reply(buf) || proto_frame_len(buf, len) != (long)len)
		abort();
	if (proto_encode_req(&q, &b) != 0)
		abort();
	if (b.len != len || memcmp(b.p, buf, len) != 0)
		abort();
	if (proto_decode_req(b.p, b.len, &q2) != 0 || !req_eq(&q, &q2))
		abort();
	proto_req_clear(&q2);
	proto_req_clear(&q);
	proto_buf_free(&b);
}

/*
 * A CHANGES answer's records: each path ends inside the data, and the
 * walk ends at the end or at a record cut short, never past it.
 */
static void
fuzz_changes(const void *data, size_t len)
{
	const uint8_t *p = data, *end = p != NULL ? p + len : p;
	const char *path;
	uint64_t ns;
	int rc;

	while ((rc = proto_changes_next(&p, end, &ns, &path)) > 0)
		if ((const uint8_t *)path + strlen(path) >= end || p > end)
			abort();
	if (rc == 0 && p != end)
		abort();
}

/* Decode buf as a reply; if it decodes, check the round trip. */
static void
fuzz_rep(const uint8_t *buf, size_t len)
{
	struct proto_buf b = { 0 };
	struct proto_rep r, r2;

	if (proto_decode_rep(buf, len, &r) != 0)
		return;
	if (!proto_frame_is_reply(buf) ||
	    proto_frame_len(buf, len) != (long)len)
		abort();
	if (proto_encode_rep(&r, &b) != 0)
		abort();
	if (b.len != len || memcmp(b.p, buf, len) != 0)
		abort();
	if (proto_decode_rep(b.p, b.len, &r2) != 0 || !rep_eq(&r, &r2))
		abort();
	if (r.type == PROTO_CHANGES)
		fuzz_changes(r.data, r.datalen);
	proto_rep_clear(&r2);
	proto_rep_clear(&r);
	proto_buf_free(&b);
}

/*
 * One input: the whole of it, then the frame its length field names,
 * copied to a buffer of its own size so a read past it is caught.
 */
/*
 * An AUTH frame: what decodes encodes again, and that decodes to the
 * same message.
 */
static void
fuzz_auth(const uint8_t *buf, size_t len)
{
	uint8_t out[AUTH_FRAME_MAX];
	struct auth_msg m, m2;
	size_t n;

	if (len < 16 || !auth_frame_is_auth(buf))
		return;
	memset(&m, 0, sizeof m);
	if (auth_decode(buf, len, &m) != 0)
		return;
	if ((n = auth_encode(&m, out)) == 0 || n > sizeof out)
		abort();
	memset(&m2, 0, sizeof m2);
	if (auth_decode(out, n, &m2) != 0 || m.step != m2.step ||
	    m.version != m2.version || m.error != m2.error ||
	    memcmp(m.nonce, m2.nonce, sizeof m.nonce) != 0 ||
	    memcmp(m.mac, m2.mac, sizeof m.mac) != 0 ||
	    strcmp(m.name, m2.name) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *frame;
	long n;

	fuzz_req(data, size);
	fuzz_rep(data, size);
	fuzz_auth(data, size);
	n = proto_frame_len(data, size);
	if (n > 0 && (size_t)n < size) {
		if ((frame = malloc((size_t)n)) == NULL)
			abort();
		memcpy(frame, data, (size_t)n);
		fuzz_req(frame, (size_t)n);
		fuzz_rep(frame, (size_t)n);
		fuzz_auth(frame, (size_t)n);
		free(frame);
	}
	return 0;
}
