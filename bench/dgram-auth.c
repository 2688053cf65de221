/*
 * dgram-auth.c - figures for discovery/dgram-auth.c alone: what a key
 * costs each datagram.  No I/O, one thread.  For a HEARTBEAT (the
 * commonest datagram), a LOCATE of a 30-byte path and a TRAP of as many
 * REMOVEs of 30-byte paths as fit with a key (28, 1386 bytes): the bytes
 * added by the trailer (measured by encoding the datagram with and
 * without DGRAM_FLAG_MAC), the time to seal one (the sender's MAC), and
 * to check one (the receiver's MAC, window and serial checks, each
 * datagram with a new serial).  Each time is the best of -r runs
 * (default 5) of -n datagrams (default 200000); a Markdown table goes to
 * standard output.
 *
 * Built with the tree, never run by the tests: bench-dgram-auth in the
 * discovery/ build directory.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "datagram.h"
#include "dgram-auth.h"
#include "wire.h"

#define T0 1800000000000000000LL

static const unsigned char secret[] = "0123456789abcdef0123456789abcdef";

/* Monotonic time in ns. */
static double
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* A datagram of type with the MAC flag or not, encoded into buf. */
static size_t
make(uint8_t type, bool mac, uint8_t *buf)
{
	static struct dgram_trap recs[28];
	static char path[31];
	struct dgram d = { .type = type,
		.flags = mac ? DGRAM_FLAG_MAC : 0,
		.boot_id = 0x0102030405060708ull,
		.seq = 42,
		.time = T0,
		.name = "alpha",
		.uri = "10.0.0.1:7070",
		.uptime_ms = 1000,
		.req_id = 7,
		.path = "/abcdefghijklmnopqrstuvwxyz0123",
		.serial = 1 };
	size_t len = 0;

	memset(path, 'p', sizeof path - 1);
	for (size_t i = 0; i < 28; i++)
		recs[i] = (struct dgram_trap){ .kind = DGRAM_REMOVE,
			.path = path };
	d.traps = recs;
	d.ntraps = 28;
	if (dgram_encode(&d, buf, DGRAM_MAX, &len) != 0)
		exit(1);
	return len;
}

int
main(int argc, char **argv)
{
	static const struct {
		uint8_t type;
		const char *name;
	} kinds[] = {
		{ DGRAM_HEARTBEAT, "HEARTBEAT" },
		{ DGRAM_LOCATE, "LOCATE, 30-byte path" },
		{ DGRAM_TRAP, "TRAP of 28 REMOVEs" },
	};
	long n = 200000, runs = 5;
	struct dgram_auth *a;
	uint8_t buf[DGRAM_MAX];
	uint64_t serial = 1; /* one boot: serials go on across kinds */
	int ch;

	while ((ch = getopt(argc, argv, "n:r:")) != -1) {
		switch (ch) {
		case 'n':
			n = atol(optarg);
			break;
		case 'r':
			runs = atol(optarg);
			break;
		default:
			fprintf(stderr,
			    "usage: bench-dgram-auth [-n N] [-r RUNS]\n");
			return 2;
		}
	}
	if (n < 1 || runs < 1 || (a = dgram_auth_new(secret, 32)) == NULL)
		return 2;
	printf("| datagram | bytes without key | with key | added | "
	       "seal, us | check, us |\n|---|--:|--:|--:|--:|--:|\n");
	for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
		size_t plain = make(kinds[k].type, false, buf);
		size_t len = make(kinds[k].type, true, buf);
		double seal = 1e30, check = 1e30, t;

		for (long r = 0; r < runs; r++) {
			t = now_ns();
			for (long i = 0; i < n; i++)
				dgram_auth_seal(a, buf, len);
			t = (now_ns() - t) / (double)n;
			seal = t < seal ? t : seal;
		}
		for (long r = 0; r < runs; r++) {
			double spent = 0;

			for (long i = 0; i < n; i++) {
				/* A fresh serial, sealed untimed. */
				wire_put_le(buf + len - DGRAM_TRAILER_LEN,
				    ++serial, 8);
				dgram_auth_seal(a, buf, len);
				t = now_ns();
				if (dgram_auth_check(a, buf, len, T0, NULL,
					NULL) != DGRAM_AUTH_OK)
					return 1;
				spent += now_ns() - t;
			}
			t = spent / (double)n;
			check = t < check ? t : check;
		}
		printf("| %s | %zu | %zu | %zu | %.2f | %.2f |\n",
		    kinds[k].name, plain, len, len - plain, seal / 1e3,
		    check / 1e3);
	}
	dgram_auth_free(a);
	return 0;
}
