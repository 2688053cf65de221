/*
 * wiretest.h - what the tests and the fuzzers of the two wire codecs
 * (proto/proto.c frames, discovery/datagram.c datagrams) share: equality
 * of the records both carry, and a writer of hand-assembled messages.
 *
 * The writer knows nothing of the codecs (it does not call proto/wire.c),
 * so the golden bytes a test compares against are not made by the code
 * under test.  Header-only, static functions; each includer uses what it
 * needs.  The writer does not check bounds: a message must fit in
 * W_MAX bytes, and the caller sets strw before the first string.  The
 * field-check macros need tap.h and expect label, bad, mask, got and
 * want where they are used.
 */
#ifndef PUFS_WIRETEST_H
#define PUFS_WIRETEST_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto.h"

#define WT_UNUSED __attribute__((unused))
#define W_MAX 16384

/* Whether two strings are equal, NULL only equal to NULL. */
WT_UNUSED static int
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* Whether two time records are equal. */
WT_UNUSED static int
time_eq(const struct proto_time *a, const struct proto_time *b)
{
	return a->sec == b->sec && a->nsec == b->nsec;
}

/* Whether two attribute records are equal, field by field. */
WT_UNUSED static int
attr_eq(const struct proto_attr *a, const struct proto_attr *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->mode == b->mode &&
	    a->nlink == b->nlink && a->uid == b->uid && a->gid == b->gid &&
	    a->rdev == b->rdev && a->size == b->size &&
	    a->blocks == b->blocks && time_eq(&a->atime, &b->atime) &&
	    time_eq(&a->mtime, &b->mtime) && time_eq(&a->ctime, &b->ctime);
}

/* Whether two export entries are equal. */
WT_UNUSED static int
export_eq(const struct proto_export *a, const struct proto_export *b)
{
	return a->id == b->id && str_eq(a->name, b->name) &&
	    str_eq(a->at, b->at) && a->read_only == b->read_only;
}

/* Whether two handshake bodies are equal; no exports means no array. */
WT_UNUSED static int
hello_eq(const struct proto_hello *a, const struct proto_hello *b)
{
	uint32_t i;

	if (a->magic != b->magic || a->version != b->version ||
	    a->caps != b->caps || !str_eq(a->name, b->name) ||
	    !str_eq(a->uri, b->uri) || a->uptime_ms != b->uptime_ms ||
	    a->boot_id != b->boot_id || a->nexports != b->nexports)
		return 0;
	if (a->nexports == 0)
		return a->exports == NULL && b->exports == NULL;
	for (i = 0; i < a->nexports; i++) {
		if (!export_eq(&a->exports[i], &b->exports[i]))
			return 0;
	}
	return 1;
}

/*
 * Count and report a field of got that differs from want: the used ones
 * (bit set in mask) must equal want's, the others must be zero.
 */
#define CHECK(cond, what) \
	do { \
		if (!(cond)) { \
			tap_diag("%s: field %s differs", label, what); \
			bad++; \
		} \
	} while (0)
#define USED(bit) ((mask & (bit)) != 0)
#define INT(bit, f) CHECK(got->f == (USED(bit) ? want->f : 0), #f)
#define STR(bit, f) CHECK(str_eq(got->f, USED(bit) ? want->f : NULL), #f)
#define TIME(bit, f) \
	CHECK(USED(bit) ? time_eq(&got->f, &want->f) \
			: got->f.sec == 0 && got->f.nsec == 0, \
	    #f)

/* A hand-assembled message. */
struct w {
	uint8_t b[W_MAX];
	size_t n;
	size_t strw; /* bytes of a string's length: 4 or 2 */
};

/* Append an n-byte little-endian integer. */
WT_UNUSED static void
w_int(struct w *w, uint64_t v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		w->b[w->n++] = (uint8_t)(v >> (8 * i));
}

/* Append raw bytes. */
WT_UNUSED static void
w_raw(struct w *w, const void *p, size_t n)
{
	memcpy(w->b + w->n, p, n);
	w->n += n;
}

/* Append a string field whose length field says len, with n bytes. */
WT_UNUSED static void
w_strn(struct w *w, uint32_t len, const void *p, size_t n)
{
	w_int(w, len, w->strw);
	w_raw(w, p, n);
}

/* Append a well-formed string field. */
WT_UNUSED static void
w_str(struct w *w, const char *s)
{
	w_strn(w, strlen(s) + 1, s, strlen(s) + 1);
}

/* Append the attribute record a, field by field. */
WT_UNUSED static void
w_attr_of(struct w *w, const struct proto_attr *a)
{
	w_int(w, a->dev, 8);
	w_int(w, a->ino, 8);
	w_int(w, a->mode, 4);
	w_int(w, a->nlink, 4);
	w_int(w, a->uid, 4);
	w_int(w, a->gid, 4);
	w_int(w, a->rdev, 8);
	w_int(w, a->size, 8);
	w_int(w, a->blocks, 8);
	w_int(w, (uint64_t)a->atime.sec, 8);
	w_int(w, a->atime.nsec, 4);
	w_int(w, (uint64_t)a->mtime.sec, 8);
	w_int(w, a->mtime.nsec, 4);
	w_int(w, (uint64_t)a->ctime.sec, 8);
	w_int(w, a->ctime.nsec, 4);
}

/* A string of n copies of c, in a static buffer. */
WT_UNUSED static const char *
repeat(int c, size_t n)
{
	static char s[8192];

	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* A valid-looking path of n bytes: 200-byte components, no end slash. */
WT_UNUSED static const char *
long_path(size_t n)
{
	static char s[8192];
	size_t i;

	for (i = 0; i < n; i++)
		s[i] = i % 201 == 200 && i != n - 1 ? '/' : 'x';
	s[n] = '\0';
	return s;
}

#endif
