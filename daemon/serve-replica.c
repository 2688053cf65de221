/*
 * serve-replica.c - what a replica's resync asks of another (cluster.c):
 * the journal's paths changed since a time (CHANGES) and the digests of
 * a file's blocks (SUMS), so that only what differs is compared and
 * moved.
 *
 * This code runs on worker threads, like the rest of the serving side.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "export-int.h"
#include "journal.h"
#include "log.h"

#define CHANGES_MAX (1u << 20) /* bytes of paths in one answer */

/* CHANGES: the journal's paths of ex changed since offset, after offset2. */
int
serve_changes(struct export *ex, const struct proto_req *r,
    struct proto_rep *rep, struct export_mem *mem)
{
	struct journal_out o = { .max = CHANGES_MAX };

	o.buf = mem->data = xmalloc(o.max);
	journal_changes(ex->id, r->offset, r->offset2, &o);
	rep->data = o.buf;
	rep->datalen = o.len;
	rep->value = o.last;
	rep->flags = (o.sure ? PROTO_CHANGES_SURE : 0) |
	    (o.more ? PROTO_CHANGES_MORE : 0);
	return 0;
}

/*
 * The digest of each PROTO_SUM_BLOCK bytes of fd from offset off, for
 * len bytes or to the end of the file, into out (PROTO_SUM_LEN bytes
 * each: SHA-256, cut).  Returns the number of blocks, or a negative
 * errno.
 */
static long
serve_sum_blocks(int fd, uint64_t off, uint64_t len, uint8_t *out)
{
	uint8_t *buf = xmalloc(PROTO_SUM_BLOCK), md[EVP_MAX_MD_SIZE];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	long n = 0;
	int rc = 0;

	if (ctx == NULL)
		rc = -ENOMEM;
	for (uint64_t o = off; rc == 0 && o < off + len; o += PROTO_SUM_BLOCK) {
		size_t got = 0;
		ssize_t k = 0;

		while (got < PROTO_SUM_BLOCK &&
		    (k = pread(fd, buf + got, PROTO_SUM_BLOCK - got,
			 (off_t)(o + got))) > 0)
			got += (size_t)k;
		if (k < 0) {
			rc = -errno;
			break;
		}
		if (got == 0)
			break; /* the end */
		if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
		    EVP_DigestUpdate(ctx, buf, got) != 1 ||
		    EVP_DigestFinal_ex(ctx, md, NULL) != 1) {
			rc = -EIO;
			break;
		}
		memcpy(out + (size_t)n * PROTO_SUM_LEN, md, PROTO_SUM_LEN);
		n++;
		if (got < PROTO_SUM_BLOCK)
			break;
	}
	EVP_MD_CTX_free(ctx);
	free(buf);
	return rc < 0 ? rc : n;
}

/* SUMS: the digests of the blocks of path from offset, for length. */
int
serve_sums(struct export *ex, const struct proto_req *r, struct proto_rep *rep,
    struct export_mem *mem)
{
	struct stat st = { .st_mode = S_IFREG };
	uint64_t len = r->length;
	long n;
	int fd;

	if (r->offset % PROTO_SUM_BLOCK != 0 ||
	    len > (uint64_t)PROTO_SUM_MAX * PROTO_SUM_BLOCK)
		return -EINVAL;
	fd = beneath_open(ex, r->path, O_RDONLY);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		int e = S_ISREG(st.st_mode) ? -errno : -EINVAL;

		close(fd);
		return e;
	}
	mem->data = xmalloc((size_t)PROTO_SUM_MAX * PROTO_SUM_LEN);
	n = serve_sum_blocks(fd, r->offset, len, mem->data);
	close(fd);
	if (n < 0)
		return (int)n;
	rep->value = (uint64_t)st.st_size;
	rep->data = mem->data;
	rep->datalen = (size_t)n * PROTO_SUM_LEN;
	return 0;
}
