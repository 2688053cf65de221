/*
 * randread.c - 4 KiB random reads of a file, for bench/data.sh.
 *
 *   randread -w FILE SIZE_MB    make FILE: SIZE_MB MiB of 4 KiB blocks,
 *                               each word of block b holding b * 512 + i
 *                               mixed with a constant, then fsync it
 *   randread FILE NREADS SEED   read NREADS distinct 4 KiB blocks of FILE
 *                               in an order drawn from SEED, one pread(2)
 *                               each, and check every block read
 *
 * The reader opens the file O_RDONLY and gives no advice to the kernel,
 * as most programs do; the blocks are the first NREADS of a permutation
 * of all of them (Fisher-Yates, xorshift64*), so none is read twice and
 * every read is a miss when the caches are cold.  It prints the reads
 * per second and MB/s (10^6 bytes), then the seconds taken.  Any short
 * read, I/O error or wrong byte exits 1 with a message; bad arguments
 * exit 2.  Not a general tool: one thread, one read in flight.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BLK 4096
#define WORDS (BLK / sizeof(uint64_t))
#define MIX 0x9e3779b97f4a7c15ULL

static uint64_t rng;

/* xorshift64*: small, fast and the same on every machine. */
static uint64_t
randread_next(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dULL;
}

/* Fill buf with the words of block b. */
static void
randread_block(uint64_t *buf, uint64_t b)
{
	for (size_t i = 0; i < WORDS; i++)
		buf[i] = (b * WORDS + i) ^ MIX;
}

static double
randread_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A number from argument s, or exit 2 naming what. */
static uint64_t
randread_num(const char *s, const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0' || v == 0) {
		fprintf(stderr, "randread: %s wants a positive number: %s\n",
		    what, s);
		exit(2);
	}
	return (uint64_t)v;
}

static int
randread_make(const char *path, uint64_t mb)
{
	uint64_t buf[WORDS];
	uint64_t n = mb * (1048576 / BLK);
	int fd;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0) {
		fprintf(stderr, "randread: %s: %s\n", path, strerror(errno));
		return 1;
	}
	for (uint64_t b = 0; b < n; b++) {
		randread_block(buf, b);
		if (write(fd, buf, BLK) != BLK) {
			fprintf(stderr, "randread: write %s: %s\n", path,
			    strerror(errno));
			close(fd);
			return 1;
		}
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		fprintf(stderr, "randread: fsync %s: %s\n", path,
		    strerror(errno));
		return 1;
	}
	return 0;
}

static int
randread_run(const char *path, uint64_t nreads, uint64_t seed)
{
	uint64_t buf[WORDS], want[WORDS];
	uint32_t *order;
	uint64_t nblocks, j;
	struct stat st;
	double t0, t;
	ssize_t r;
	int fd;

	if ((fd = open(path, O_RDONLY)) < 0 || fstat(fd, &st) != 0) {
		fprintf(stderr, "randread: %s: %s\n", path, strerror(errno));
		return 1;
	}
	nblocks = (uint64_t)st.st_size / BLK;
	if (nreads > nblocks || nblocks > UINT32_MAX) {
		fprintf(stderr,
		    "randread: %s has %" PRIu64 " blocks, %" PRIu64
		    " reads asked\n",
		    path, nblocks, nreads);
		return 1;
	}
	if ((order = malloc(nblocks * sizeof *order)) == NULL) {
		fprintf(stderr, "randread: %s\n", strerror(ENOMEM));
		return 1;
	}
	for (uint64_t i = 0; i < nblocks; i++)
		order[i] = (uint32_t)i;
	rng = seed * MIX | 1;
	for (uint64_t i = 0; i < nreads; i++) {
		uint32_t tmp;

		j = i + randread_next() % (nblocks - i);
		tmp = order[i];
		order[i] = order[j];
		order[j] = tmp;
	}
	t0 = randread_now();
	for (uint64_t i = 0; i < nreads; i++) {
		r = pread(fd, buf, BLK, (off_t)order[i] * BLK);
		if (r != BLK) {
			fprintf(stderr,
			    "randread: pread %s at %" PRIu64 ": %s\n", path,
			    (uint64_t)order[i] * BLK,
			    r < 0 ? strerror(errno) : "short read");
			return 1;
		}
		randread_block(want, order[i]);
		if (memcmp(buf, want, BLK) != 0) {
			fprintf(stderr,
			    "randread: %s: block %" PRIu32 " is wrong\n", path,
			    order[i]);
			return 1;
		}
	}
	t = randread_now() - t0;
	close(fd);
	free(order);
	printf("%.0f %.1f %.3f\n", (double)nreads / t,
	    (double)nreads * BLK / t / 1e6, t);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "-w") == 0)
		return randread_make(argv[2], randread_num(argv[3], "SIZE_MB"));
	if (argc == 4)
		return randread_run(argv[1], randread_num(argv[2], "NREADS"),
		    randread_num(argv[3], "SEED"));
	fprintf(stderr,
	    "usage: randread -w FILE SIZE_MB\n"
	    "       randread FILE NREADS SEED\n");
	return 2;
}
