/*
 * fsx.c - a randomized file operation checker: runs a long random
 * sequence of operations on one file and checks every result against an
 * in-memory model of what the file must hold.
 *
 *   fsx [-m | -d] [-v] [-N OPS] [-S SEED] [-l MAXLEN] [-b BLOCK]
 *       [-o MODELFILE] [-H HOLDERFILE] FILE
 *
 * FILE is opened read-write, created if needed and emptied; then OPS
 * operations (default 20000) are drawn from a generator seeded with SEED
 * (default: random; printed first, so that a failing run is repeated by
 * giving it back with -S and the same other options).  The operations:
 * write, read (checked), runs of sequential writes and of sequential
 * reads in chunks of one size (what write-behind and read-ahead see),
 * truncate up and down, fallocate (mode 0 and
 * KEEP_SIZE), punch hole, zero range (with and without KEEP_SIZE),
 * copy_file_range between two non-overlapping ranges of the file, fsync,
 * and close and reopen (the size checked by fstat, the whole file read
 * back); with -m also reads through a shared mapping and writes through
 * one followed by msync(MS_SYNC).  Offsets and lengths are unaligned,
 * drawn near block and page boundaries and near the end of the file as
 * often as anywhere; lengths run from 1 byte to a few blocks; reads,
 * writes and fallocates reach past the end of the file.  The file never
 * grows past MAXLEN (default 2 MiB); BLOCK (default 128 KiB, pufs's
 * block_size) only shapes the offsets and lengths drawn.
 *
 * -d says the file system runs with direct_io: no mapping is used, and
 * a shared writable mapping must be refused (it is checked once).  -o
 * writes the model, after a last fsync, close, reopen and full check, to
 * MODELFILE, so that a caller can compare it with the file as stored
 * elsewhere.  -H names the same file as its holder stores it (for pufs:
 * in the export directory of the peer that holds it, read directly):
 * after every fsync(2) and close(2) it must equal the model, size and
 * bytes, since both return only once the data is on the holder.  -v
 * prints every operation.
 *
 * A fallocate mode the file system answers EOPNOTSUPP (or a
 * copy_file_range answered EOPNOTSUPP, EXDEV or ENOSYS) is taken for not
 * supported: said once, left out from then on and listed as "refused" in
 * the summary.  Any other difference (a wrong byte, a wrong count, a
 * wrong size, a failed call) stops the run: the seed, the operation's
 * number, the first differing offset with the expected and actual bytes,
 * the operation that last set the expected byte and the last 30
 * operations are printed, and the exit status is 1.  On success one line
 * counts the operations of each kind and the exit status is 0; bad usage
 * exits 2.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/falloc.h>

#define LOG_KEEP 30 /* operations shown on a failure */

enum kind {
	K_WRITE,
	K_READ,
	K_WRITESEQ,
	K_READSEQ,
	K_TRUNC_UP,
	K_TRUNC_DOWN,
	K_FALLOC,
	K_FALLOC_KEEP,
	K_PUNCH,
	K_ZERO,
	K_ZERO_KEEP,
	K_COPY,
	K_FSYNC,
	K_REOPEN,
	K_MAPREAD,
	K_MAPWRITE,
	K_MAX
};

/* Names, relative weights and fallocate modes of the kinds. */
static const struct {
	const char *name;
	unsigned weight;
	int mode;
} kinds[K_MAX] = {
	[K_WRITE] = { "write", 24, 0 },
	[K_READ] = { "read", 24, 0 },
	[K_WRITESEQ] = { "write_seq", 5, 0 },
	[K_READSEQ] = { "read_seq", 5, 0 },
	[K_TRUNC_UP] = { "truncate_up", 3, 0 },
	[K_TRUNC_DOWN] = { "truncate_down", 3, 0 },
	[K_FALLOC] = { "fallocate", 3, 0 },
	[K_FALLOC_KEEP] = { "fallocate_keep", 3, FALLOC_FL_KEEP_SIZE },
	[K_PUNCH] = { "punch_hole", 4,
	    FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE },
	[K_ZERO] = { "zero_range", 3, FALLOC_FL_ZERO_RANGE },
	[K_ZERO_KEEP] = { "zero_range_keep", 2,
	    FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE },
	[K_COPY] = { "copy_range", 6, 0 },
	[K_FSYNC] = { "fsync", 2, 0 },
	[K_REOPEN] = { "reopen", 1, 0 },
	[K_MAPREAD] = { "mapread", 12, 0 },
	[K_MAPWRITE] = { "mapwrite", 12, 0 },
};

/* One operation as done, for the log of the last ones. */
struct logent {
	unsigned long n; /* operation number, from 1 */
	enum kind kind;
	uint64_t off, len, off2; /* off2: copy destination */
	uint64_t size0, size1;   /* the model's size before and after */
	long long result;        /* count or 0 */
};

static const char *path;
static int fd = -1;
static uint64_t seed, rng;
static unsigned long nops = 20000, opno;
static uint64_t maxlen = 2 << 20, bs = 128 << 10;
static bool use_mmap, direct_io, verbose, finishing;
static const char *modelfile, *holder;
static long pagesize;

static unsigned char *model; /* the file's bytes; zero past size */
static uint32_t *origin;     /* per byte: the operation that set it */
static unsigned char *buf, *data;
static uint64_t size; /* the model's size */
static bool enabled[K_MAX];
static bool refused[K_MAX];
static unsigned long counts[K_MAX], short_copies;
static struct logent logs[LOG_KEEP];

static sigjmp_buf bus_jmp;
static volatile sig_atomic_t bus_armed;

/* splitmix64: small, fast, and the same sequence on every machine. */
static uint64_t
rnd(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A number in [0, n); n > 0. */
static uint64_t
rnd_below(uint64_t n)
{
	return rnd() % n;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: fsx [-m | -d] [-v] [-N OPS] [-S SEED] "
	    "[-l MAXLEN] [-b BLOCK] [-o MODELFILE] [-H HOLDERFILE] FILE\n");
	exit(2);
}

/* Print the operation e as one line. */
static void
log_print(FILE *f, const struct logent *e)
{
	fprintf(f, "  #%-6lu %-15s", e->n, kinds[e->kind].name);
	switch (e->kind) {
	case K_FSYNC:
	case K_REOPEN:
		break;
	case K_TRUNC_UP:
	case K_TRUNC_DOWN:
		fprintf(f, " to %" PRIu64, e->size1);
		break;
	case K_COPY:
		fprintf(f,
		    " %" PRIu64 " -> %" PRIu64 " len %" PRIu64 " (copied %lld)",
		    e->off, e->off2, e->len, e->result);
		break;
	default:
		fprintf(f,
		    " off %" PRIu64 " len %" PRIu64 " [%" PRIu64 ", %" PRIu64
		    ")",
		    e->off, e->len, e->off, e->off + e->len);
	}
	fprintf(f, "  size %" PRIu64 " -> %" PRIu64 "\n", e->size0, e->size1);
}

/* The log entry of operation n, if it is among the last ones. */
static const struct logent *
log_find(unsigned long n)
{
	const struct logent *e = &logs[n % LOG_KEEP];

	return n != 0 && e->n == n ? e : NULL;
}

/* Print the last operations, oldest first. */
static void
log_dump(void)
{
	unsigned long n = opno >= LOG_KEEP ? opno - LOG_KEEP + 1 : 1;

	fprintf(stderr, "fsx: the last %lu operations:\n",
	    opno - n + 1 < LOG_KEEP ? opno - n + 1 : LOG_KEEP);
	for (; n <= opno; n++)
		if (log_find(n) != NULL)
			log_print(stderr, log_find(n));
}

/* Stop the run: what went wrong, how to repeat it, the last operations. */
static void __attribute__((noreturn, format(printf, 1, 2)))
fail(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	if (finishing)
		fprintf(stderr,
		    "fsx: FAILED after the last operation (#%lu) "
		    "of seed %" PRIu64 ": ",
		    opno, seed);
	else if (opno == 0)
		fprintf(stderr,
		    "fsx: FAILED before the first operation of "
		    "seed %" PRIu64 ": ",
		    seed);
	else
		fprintf(stderr,
		    "fsx: FAILED at operation #%lu (%s) of seed "
		    "%" PRIu64 ": ",
		    opno, kinds[logs[opno % LOG_KEEP].kind].name, seed);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fprintf(stderr, "fsx: the model's size is %" PRIu64 "\n", size);
	log_dump();
	fprintf(stderr,
	    "fsx: to repeat: fsx%s%s -N %lu -S %" PRIu64 " -l %" PRIu64
	    " -b %" PRIu64 "%s%s %s\n",
	    use_mmap ? " -m" : "", direct_io ? " -d" : "", nops, seed, maxlen,
	    bs, holder ? " -H " : "", holder ? holder : "", path);
	exit(1);
}

/* The name of errno value e ("EIO"). */
static const char *
errno_name(int e)
{
	const char *s = strerrorname_np(e);

	return s != NULL ? s : "unknown errno";
}

/* fail() for a system call that failed: its name and errno. */
static __attribute__((noreturn)) void fail_errno(const char *);

static void
fail_errno(const char *call)
{
	int e = errno;

	fail("%s: %s (%s)", call, errno_name(e), strerror(e));
}

/* A SIGBUS in copy_mapped() returns there instead of killing fsx. */
static void
bus_handler(int sig)
{
	(void)sig;
	if (bus_armed)
		siglongjmp(bus_jmp, 1);
	signal(SIGBUS, SIG_DFL);
	raise(SIGBUS);
}

/* memcpy(3) to or from a mapping; false if it raised SIGBUS. */
static bool
copy_mapped(void *dst, const void *src, size_t n)
{
	bus_armed = 1;
	if (sigsetjmp(bus_jmp, 1) != 0) {
		bus_armed = 0;
		return false;
	}
	memcpy(dst, src, n);
	bus_armed = 0;
	return true;
}

/* Print 16 bytes of p around offset at (relative to base) in hex. */
static void
hex_line(const char *what, const unsigned char *p, uint64_t base, uint64_t at,
    uint64_t n)
{
	uint64_t i, from = at >= 8 ? at - 8 : 0;

	fprintf(stderr, "fsx:   %-8s @%" PRIu64 ":", what, base + from);
	for (i = from; i < from + 16 && i < n; i++)
		fprintf(stderr, i == at ? " [%02x]" : " %02x", p[i]);
	fputc('\n', stderr);
}

/*
 * Check that got[0..n) is the model's [off, off + n), as read by how;
 * on a difference, fail with the first differing byte, the extent of the
 * differences and the operation that set the expected byte.
 */
static void
check_bytes(const char *how, const unsigned char *got, uint64_t off, uint64_t n)
{
	const unsigned char *want = model + off;
	const struct logent *e;
	uint64_t i, first, last, ndiff = 0;
	uint32_t by;

	if (memcmp(got, want, n) == 0)
		return;
	for (i = 0; got[i] == want[i]; i++)
		;
	first = last = i;
	for (; i < n; i++)
		if (got[i] != want[i]) {
			last = i;
			ndiff++;
		}
	fflush(stdout);
	by = origin[off + first];
	fprintf(stderr,
	    "fsx: %s of [%" PRIu64 ", %" PRIu64 "): first differing byte at "
	    "offset %" PRIu64 " (block %" PRIu64 " + %" PRIu64 "): expected "
	    "0x%02x, got 0x%02x; %" PRIu64 " bytes differ, the last at %" PRIu64
	    "\n",
	    how, off, off + n, off + first, (off + first) / bs,
	    (off + first) % bs, want[first], got[first], ndiff, off + last);
	hex_line("expected", want, off, first, n);
	hex_line("got", got, off, first, n);
	if (by == 0)
		fprintf(stderr,
		    "fsx: the expected byte was never written "
		    "(a hole or an extension: zero)\n");
	else if ((e = log_find(by)) != NULL) {
		fprintf(stderr, "fsx: the expected byte was set by:\n");
		log_print(stderr, e);
	} else
		fprintf(stderr,
		    "fsx: the expected byte was set by operation "
		    "#%" PRIu32 "\n",
		    by);
	fail("%s: data differs from the model at offset %" PRIu64, how,
	    off + first);
}

/* Check the file's size as fstat(2) tells it. */
static void
check_size(const char *when)
{
	struct stat st;

	if (fstat(fd, &st) == -1)
		fail_errno("fstat");
	if ((uint64_t)st.st_size != size)
		fail("fstat %s: size %jd, the model's is %" PRIu64, when,
		    (intmax_t)st.st_size, size);
}

/* The model: bytes [off, off + n) now hold p (NULL: zeros). */
static void
model_set(uint64_t off, const unsigned char *p, uint64_t n)
{
	uint64_t i;

	if (p != NULL)
		memmove(model + off, p, n);
	else
		memset(model + off, 0, n);
	for (i = off; i < off + n; i++)
		origin[i] = (uint32_t)opno;
	if (p != NULL && off + n > size)
		size = off + n;
}

/* The model: the size is now s; what falls off is zero again. */
static void
model_resize(uint64_t s)
{
	uint64_t i;

	if (s < size) {
		memset(model + s, 0, size - s);
		for (i = s; i < size; i++)
			origin[i] = 0;
	}
	size = s;
}

/* An offset in [0, limit): near a block or page boundary, near the end
 * of the file, or anywhere, each about as often. */
static uint64_t
pick_off(uint64_t limit)
{
	int64_t o;

	switch (rnd_below(6)) {
	case 0:
		o = (int64_t)(rnd_below(limit / bs + 1) * bs);
		o += (int64_t)rnd_below(129) - 64;
		break;
	case 1:
		o = (int64_t)(rnd_below(limit / (uint64_t)pagesize + 1) *
		    (uint64_t)pagesize);
		o += (int64_t)rnd_below(33) - 16;
		break;
	case 2:
		o = (int64_t)size + (int64_t)rnd_below(2 * bs + 1) -
		    (int64_t)bs;
		break;
	case 3:
		o = (int64_t)size + (int64_t)rnd_below(65) - 32;
		break;
	default:
		o = (int64_t)rnd_below(limit);
	}
	if (o < 0)
		o = 0;
	if ((uint64_t)o >= limit)
		o = (int64_t)limit - 1;
	return (uint64_t)o;
}

/* A length from 1 byte to a few blocks, at most limit (>= 1). */
static uint64_t
pick_len(uint64_t limit)
{
	int64_t n;

	switch (rnd_below(6)) {
	case 0:
		n = 1 + (int64_t)rnd_below(16);
		break;
	case 1:
		n = 1 + (int64_t)rnd_below(8192);
		break;
	case 2:
		n = (int64_t)((1 + rnd_below(32)) * (uint64_t)pagesize) +
		    (int64_t)rnd_below(17) - 8;
		break;
	case 3:
		n = (int64_t)((1 + rnd_below(3)) * bs) +
		    (int64_t)rnd_below(129) - 64;
		break;
	default:
		n = 1 + (int64_t)rnd_below(3 * bs + bs / 2);
	}
	if (n < 1)
		n = 1;
	if ((uint64_t)n > limit)
		n = (int64_t)limit;
	return (uint64_t)n;
}

/* Fill data[0..n) with new bytes. */
static void
fill(uint64_t n)
{
	uint64_t i, r = 0;

	for (i = 0; i < n; i++) {
		if (i % 8 == 0)
			r = rnd();
		data[i] = (unsigned char)(r >> (i % 8 * 8));
	}
}

static void
op_write(struct logent *e)
{
	ssize_t r;

	fill(e->len);
	r = pwrite(fd, data, e->len, (off_t)e->off);
	if (r == -1)
		fail_errno("pwrite");
	if ((uint64_t)r != e->len)
		fail("pwrite of %" PRIu64 " bytes at %" PRIu64 " wrote %zd",
		    e->len, e->off, r);
	model_set(e->off, data, e->len);
}

/* Sequential writes of [off, off + len) in chunks an application
 * would use, each its own write(2): what write-behind coalesces. */
static void
op_writeseq(struct logent *e)
{
	static const uint64_t chunks[] = { 4096, 65536, 512, 0 };
	uint64_t done, n, c = chunks[rnd_below(4)];
	ssize_t r;

	/* At most 128 calls: each is a round trip today. */
	if (c != 0 && e->len > 128 * c)
		e->len = 128 * c;
	fill(e->len);
	for (done = 0; done < e->len; done += n) {
		n = c != 0 ? c : 1 + rnd_below(16384);
		if (n > e->len - done)
			n = e->len - done;
		r = pwrite(fd, data + done, n, (off_t)(e->off + done));
		if (r == -1)
			fail_errno("pwrite");
		if ((uint64_t)r != n)
			fail("pwrite of %" PRIu64 " bytes at %" PRIu64
			     " wrote %zd",
			    n, e->off + done, r);
		model_set(e->off + done, data + done, n);
	}
}

/*
 * One pread(2) of len bytes at off, checked: the count is what the model
 * has there (all of it, or up to the end of the file), and so are the
 * bytes.  Returns the count.
 */
static uint64_t
read_check(const char *how, uint64_t off, uint64_t len)
{
	uint64_t want = off < size ? (size - off < len ? size - off : len) : 0;
	ssize_t r;

	/* What the call does not fill must not pass for file data. */
	memset(buf, 0xa5, len);
	r = pread(fd, buf, len, (off_t)off);
	if (r == -1)
		fail_errno("pread");
	if ((uint64_t)r != want)
		fail("%s of %" PRIu64 " bytes at %" PRIu64 " returned %zd, "
		     "the model has %" PRIu64 " bytes there (size %" PRIu64 ")",
		    how, len, off, r, want, size);
	check_bytes(how, buf, off, want);
	return want;
}

/* Read the whole file with read(2) in chunks of varying length. */
static void
check_file(const char *when)
{
	uint64_t off = 0, n;
	char how[64];

	snprintf(how, sizeof(how), "read back %s", when);
	while ((n = read_check(how, off, 1 + rnd_below(4 * bs))) != 0)
		off += n;
}

static void
op_read(struct logent *e)
{
	e->result = (long long)read_check("pread", e->off, e->len);
}

/* Sequential reads of [off, off + len) in chunks of one size, as a
 * program reading a file through would: what read-ahead follows. */
static void
op_readseq(struct logent *e)
{
	static const uint64_t chunks[] = { 4096, 65536, 131072, 0 };
	uint64_t done, c = chunks[rnd_below(4)];

	if (c == 0)
		c = 1 + rnd_below(bs);
	for (done = 0; done < e->len; done += c)
		if (read_check("sequential pread", e->off + done, c) < c)
			break;
}

static void
op_truncate(struct logent *e)
{
	if (ftruncate(fd, (off_t)e->size1) == -1)
		fail_errno("ftruncate");
	model_resize(e->size1);
	check_size("after ftruncate");
}

/* fallocate(2) in the kind's mode; false if the mode is refused. */
static bool
op_fallocate(struct logent *e)
{
	int mode = kinds[e->kind].mode;
	uint64_t end = e->off + e->len;

	if (fallocate(fd, mode, (off_t)e->off, (off_t)e->len) == -1) {
		if (errno == EOPNOTSUPP)
			return false;
		fail_errno("fallocate");
	}
	if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
		if (mode & FALLOC_FL_KEEP_SIZE)
			end = end < size ? end : size;
		if (end > e->off)
			model_set(e->off, NULL, end - e->off);
	}
	if (!(mode & FALLOC_FL_KEEP_SIZE) && end > size)
		model_resize(end);
	check_size("after fallocate");
	return true;
}

/* copy_file_range(2) within the file; false if it is refused. */
static bool
op_copy(struct logent *e)
{
	loff_t in = (loff_t)e->off, out = (loff_t)e->off2;
	ssize_t r;

	r = copy_file_range(fd, &in, fd, &out, e->len, 0);
	if (r == -1) {
		if (errno == EOPNOTSUPP || errno == EXDEV || errno == ENOSYS)
			return false;
		fail_errno("copy_file_range");
	}
	e->result = r;
	/* A short copy is allowed, an empty one (with bytes to copy) is
	 * not; the offsets must have moved by the count. */
	if (r == 0 || (uint64_t)r > e->len)
		fail("copy_file_range of %" PRIu64 " bytes %" PRIu64
		     " -> %" PRIu64 " returned %zd",
		    e->len, e->off, e->off2, r);
	if ((uint64_t)in != e->off + (uint64_t)r ||
	    (uint64_t)out != e->off2 + (uint64_t)r)
		fail("copy_file_range returned %zd but moved the offsets to "
		     "%jd and %jd",
		    r, (intmax_t)in, (intmax_t)out);
	if ((uint64_t)r < e->len)
		short_copies++;
	if (e->off2 > size)
		model_resize(e->off2);
	model_set(e->off2, model + e->off, (uint64_t)r);
	check_size("after copy_file_range");
	return true;
}

/*
 * After fsync(2) or close(2) has returned, the holder's copy of the file
 * (-H, read directly from its disk) is the model: nothing written may
 * still wait in a cache on the way.
 */
static void
check_holder(const char *when)
{
	struct stat st;
	uint64_t off = 0;
	ssize_t r;
	char how[80];
	int hfd;

	if (holder == NULL)
		return;
	snprintf(how, sizeof(how), "the holder's copy %s", when);
	if ((hfd = open(holder, O_RDONLY)) == -1)
		fail_errno(holder);
	if (fstat(hfd, &st) == -1)
		fail_errno("fstat of the holder's copy");
	if ((uint64_t)st.st_size != size)
		fail("%s: size %jd, the model's is %" PRIu64, how,
		    (intmax_t)st.st_size, size);
	while ((r = pread(hfd, buf, 4 * bs, (off_t)off)) > 0) {
		if (off + (uint64_t)r > size)
			fail("%s: %zd bytes at %" PRIu64 " past the model's "
			     "size %" PRIu64,
			    how, r, off, size);
		check_bytes(how, buf, off, (uint64_t)r);
		off += (uint64_t)r;
	}
	if (r == -1)
		fail_errno("pread of the holder's copy");
	if (off != size)
		fail("%s: read %" PRIu64 " bytes of %" PRIu64, how, off, size);
	close(hfd);
}

/* Open the file again, as a program that comes back to it would. */
static void
reopen(void)
{
	if (close(fd) == -1)
		fail_errno("close");
	check_holder("after close");
	if ((fd = open(path, O_RDWR)) == -1)
		fail_errno("open");
	check_size("after reopen");
}

/* Map [off, off + len) (more, to the page boundaries) and return the
 * address of off in it; *base and *maplen say what to unmap. */
static unsigned char *
map(uint64_t off, uint64_t len, int prot, void **base, size_t *maplen)
{
	uint64_t pg = off - off % (uint64_t)pagesize;

	*maplen = (size_t)(off + len - pg);
	*base = mmap(NULL, *maplen, prot, MAP_SHARED, fd, (off_t)pg);
	if (*base == MAP_FAILED)
		fail_errno("mmap");
	return (unsigned char *)*base + (off - pg);
}

/* Read [off, off + len) through a shared mapping; when it covers the
 * end of the file, the rest of the last page must read zero. */
static void
op_mapread(struct logent *e)
{
	uint64_t tail = 0, i;
	unsigned char *p;
	size_t maplen;
	void *base;

	if (e->off + e->len == size && size % (uint64_t)pagesize != 0)
		tail = (uint64_t)pagesize - size % (uint64_t)pagesize;
	p = map(e->off, e->len + tail, PROT_READ, &base, &maplen);
	if (!copy_mapped(buf, p, e->len + tail))
		fail("SIGBUS reading the mapping of [%" PRIu64 ", %" PRIu64
		     ") (size %" PRIu64 ")",
		    e->off, e->off + e->len + tail, size);
	check_bytes("mapped read", buf, e->off, e->len);
	for (i = 0; i < tail; i++)
		if (buf[e->len + i] != 0)
			fail("mapped read: byte %" PRIu64 " past the end of "
			     "the file (size %" PRIu64 ") is 0x%02x, not 0",
			    size + i, size, buf[e->len + i]);
	if (munmap(base, maplen) == -1)
		fail_errno("munmap");
}

/* Write [off, off + len) through a shared mapping and msync it; the
 * file is first extended to cover the range. */
static void
op_mapwrite(struct logent *e)
{
	unsigned char *p;
	size_t maplen;
	void *base;

	if (e->off + e->len > size) {
		if (ftruncate(fd, (off_t)(e->off + e->len)) == -1)
			fail_errno("ftruncate");
		model_resize(e->off + e->len);
	}
	fill(e->len);
	p = map(e->off, e->len, PROT_READ | PROT_WRITE, &base, &maplen);
	if (!copy_mapped(p, data, e->len))
		fail("SIGBUS writing the mapping of [%" PRIu64 ", %" PRIu64
		     ") (size %" PRIu64 ")",
		    e->off, e->off + e->len, size);
	if (msync(base, maplen, MS_SYNC) == -1)
		fail_errno("msync");
	if (munmap(base, maplen) == -1)
		fail_errno("munmap");
	model_set(e->off, data, e->len);
	check_size("after a mapped write");
}

/*
 * The weight of kind k now.  Writes past the end grow the file much
 * more often than truncates shrink it, so shrinking gets likelier as
 * the file nears maxlen: otherwise it would sit at maxlen most of the
 * run, and the end of the file, where most bugs live, would stay put.
 */
static unsigned
weight(enum kind k)
{
	if (!enabled[k])
		return 0;
	if (k == K_TRUNC_DOWN)
		return kinds[k].weight + (unsigned)(12 * size / maxlen);
	return kinds[k].weight;
}

/* Draw an enabled kind by weight. */
static enum kind
pick_kind(void)
{
	unsigned total = 0, r;
	int k;

	for (k = 0; k < K_MAX; k++)
		total += weight((enum kind)k);
	r = (unsigned)rnd_below(total);
	for (k = 0; k < K_MAX; k++) {
		if (r < weight((enum kind)k))
			break;
		r -= weight((enum kind)k);
	}
	return (enum kind)k;
}

/*
 * Draw the arguments of an operation of kind k into e; false if k
 * cannot be done on the file as it is (a read through a mapping of an
 * empty file, a copy with no room), and another is drawn.
 */
static bool
draw(enum kind k, struct logent *e)
{
	uint64_t gap;

	e->off = pick_off(maxlen);
	e->len = pick_len(maxlen - e->off);
	switch (k) {
	case K_WRITESEQ:
	case K_READSEQ:
		/* Long runs: up to 8 blocks. */
		e->len = 1 +
		    rnd_below(
			8 * bs < maxlen - e->off ? 8 * bs : maxlen - e->off);
		break;
	case K_TRUNC_UP:
		if (size >= maxlen)
			return false;
		e->size1 = size + 1 + rnd_below(maxlen - size);
		if (rnd_below(2))
			e->size1 = size + pick_len(maxlen - size);
		break;
	case K_TRUNC_DOWN:
		if (size == 0)
			return false;
		e->size1 = rnd_below(8) == 0 ? 0 : pick_off(size);
		break;
	case K_MAPREAD:
	case K_COPY:
		/* The source lies in the file. */
		if (size == 0)
			return false;
		e->off = pick_off(size);
		e->len = pick_len(size - e->off);
		if (k == K_MAPREAD)
			break;
		/* The destination lies before or after the source, with
		 * no overlap, possibly past the end of the file. */
		e->off2 = pick_off(maxlen);
		if (e->off2 + e->len > e->off && e->off2 < e->off + e->len) {
			gap = rnd_below(3) == 0 ? 0 : rnd_below(bs);
			if (rnd_below(2) && e->off >= e->len + gap)
				e->off2 = e->off - e->len - gap;
			else
				e->off2 = e->off + e->len + gap;
		}
		if (e->off2 + e->len > maxlen)
			return false;
		break;
	default:
		break;
	}
	return true;
}

/* Do operation number opno; false if its kind turned out refused. */
static bool
run(struct logent *e)
{
	switch (e->kind) {
	case K_WRITE:
		op_write(e);
		break;
	case K_READ:
		op_read(e);
		break;
	case K_WRITESEQ:
		op_writeseq(e);
		break;
	case K_READSEQ:
		op_readseq(e);
		break;
	case K_TRUNC_UP:
	case K_TRUNC_DOWN:
		op_truncate(e);
		break;
	case K_FALLOC:
	case K_FALLOC_KEEP:
	case K_PUNCH:
	case K_ZERO:
	case K_ZERO_KEEP:
		return op_fallocate(e);
	case K_COPY:
		return op_copy(e);
	case K_FSYNC:
		if (fsync(fd) == -1)
			fail_errno("fsync");
		check_holder("after fsync");
		break;
	case K_REOPEN:
		reopen();
		check_file("after reopen");
		break;
	case K_MAPREAD:
		op_mapread(e);
		break;
	case K_MAPWRITE:
		op_mapwrite(e);
		break;
	case K_MAX:
		abort();
	}
	return true;
}

/* With direct_io, the kernel refuses a shared writable mapping. */
static void
check_no_shared_map(void)
{
	void *p;

	p = mmap(NULL, (size_t)pagesize, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
	    0);
	if (p != MAP_FAILED) {
		munmap(p, (size_t)pagesize);
		fail("direct_io: a shared writable mapping was allowed");
	}
	printf("fsx: direct_io: a shared writable mapping is refused (%s)\n",
	    errno_name(errno));
}

/* After the last operation: everything on disk, read back, and the
 * model saved for the caller. */
static void
finish(void)
{
	FILE *f;

	finishing = true;
	if (fsync(fd) == -1)
		fail_errno("fsync");
	reopen();
	check_file("at the end");
	if (close(fd) == -1)
		fail_errno("close");
	fd = -1;
	if (modelfile == NULL)
		return;
	if ((f = fopen(modelfile, "w")) == NULL ||
	    fwrite(model, 1, size, f) != size || fclose(f) != 0) {
		fprintf(stderr, "fsx: %s: %s\n", modelfile, strerror(errno));
		exit(1);
	}
}

/* Parse a size with an optional K, M or G suffix. */
static uint64_t
parse_size(const char *s)
{
	char *end;
	uint64_t v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno != 0 || end == s)
		usage();
	switch (*end) {
	case 'k':
	case 'K':
		v <<= 10;
		end++;
		break;
	case 'm':
	case 'M':
		v <<= 20;
		end++;
		break;
	case 'g':
	case 'G':
		v <<= 30;
		end++;
		break;
	}
	if (*end != '\0')
		usage();
	return v;
}

int
main(int argc, char **argv)
{
	struct logent *e;
	bool have_seed = false;
	enum kind k;
	int c;

	while ((c = getopt(argc, argv, "mdvN:S:l:b:o:H:")) != -1) {
		switch (c) {
		case 'm':
			use_mmap = true;
			break;
		case 'd':
			direct_io = true;
			break;
		case 'v':
			verbose = true;
			break;
		case 'N':
			nops = (unsigned long)parse_size(optarg);
			break;
		case 'S':
			seed = parse_size(optarg);
			have_seed = true;
			break;
		case 'l':
			maxlen = parse_size(optarg);
			break;
		case 'b':
			bs = parse_size(optarg);
			break;
		case 'o':
			modelfile = optarg;
			break;
		case 'H':
			holder = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1 || (use_mmap && direct_io))
		usage();
	path = argv[optind];
	pagesize = sysconf(_SC_PAGESIZE);
	if (bs < 512 || maxlen < 2 * bs || maxlen > (1ULL << 32) ||
	    nops > UINT32_MAX) {
		fprintf(stderr,
		    "fsx: want -b of 512 or more, -l of at least "
		    "twice -b and at most 4G, -N below 2^32\n");
		exit(2);
	}
	if (!have_seed && getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	seed &= (1ULL << 53) - 1; /* easy to carry in any shell or script */
	rng = seed;

	/* Room for a read or write of up to 4 blocks past any offset. */
	model = calloc(1, maxlen + 4 * bs + (uint64_t)pagesize);
	origin = calloc(maxlen + 4 * bs + (uint64_t)pagesize, sizeof(*origin));
	buf = malloc(maxlen + 4 * bs + (uint64_t)pagesize);
	data = malloc(maxlen + 4 * bs);
	if (model == NULL || origin == NULL || buf == NULL || data == NULL) {
		fprintf(stderr, "fsx: out of memory\n");
		exit(1);
	}
	for (k = 0; k < K_MAX; k++)
		enabled[k] = use_mmap || (k != K_MAPREAD && k != K_MAPWRITE);
	signal(SIGBUS, bus_handler);
	setvbuf(stdout, NULL, _IOLBF, 0);

	printf("fsx: seed %" PRIu64 ", %lu operations, -l %" PRIu64
	       ", -b %" PRIu64 ", mmap %s, direct_io %s, %s\n",
	    seed, nops, maxlen, bs, use_mmap ? "on" : "off",
	    direct_io ? "on" : "off", path);
	if ((fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644)) == -1)
		fail_errno("open");
	check_size("after open with O_TRUNC");
	if (direct_io)
		check_no_shared_map();

	for (opno = 1; opno <= nops; opno++) {
		e = &logs[opno % LOG_KEEP];
		memset(e, 0, sizeof(*e));
		e->n = opno;
		do
			e->kind = pick_kind();
		while (!draw(e->kind, e));
		e->size0 = size;
		if (e->kind != K_TRUNC_UP && e->kind != K_TRUNC_DOWN)
			e->size1 = size;
		if (verbose)
			log_print(stdout, e);
		if (!run(e)) {
			printf("fsx: %s refused (%s): left out from operation "
			       "#%lu on\n",
			    kinds[e->kind].name, errno_name(errno), opno);
			refused[e->kind] = true;
			enabled[e->kind] = false;
			e->size1 = size;
			opno--;
			continue;
		}
		e->size1 = size;
		counts[e->kind]++;
	}
	opno = nops;
	finish();

	printf("fsx: seed %" PRIu64 ": %lu operations passed, size %" PRIu64
	       ":",
	    seed, nops, size);
	for (k = 0; k < K_MAX; k++)
		if (counts[k] != 0)
			printf(" %s %lu", kinds[k].name, counts[k]);
	printf("; short copies %lu; refused:", short_copies);
	c = 0;
	for (k = 0; k < K_MAX; k++)
		if (refused[k]) {
			printf(" %s", kinds[k].name);
			c++;
		}
	printf("%s\n", c ? "" : " none");
	free(model);
	free(origin);
	free(buf);
	free(data);
	return 0;
}
