/*
 * test-dgram-auth.c - MACs and replay checks of datagrams
 * (discovery/dgram-auth.c) against proto/DATAGRAMS.md section 10: the
 * known answer of the example, a wrong key and every flipped byte, no
 * MAC, replays and reordering within the serial window, the timestamp
 * window and the first-contact rule, and the bounded table of boots.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datagram.h"
#include "dgram-auth.h"
#include "tap.h"

#define S 1000000000LL /* ns per second */
#define T0 1700000000000000000LL

static const unsigned char secret[] = "0123456789abcdef0123456789abcdef";
static const unsigned char other[] = "0123456789abcdef0123456789abcdeF";

/* HMAC-SHA256(secret, "pufs datagram v1"), computed elsewhere. */
static const uint8_t want_sub[32] = { 0xeb, 0x55, 0xa9, 0x46, 0xf3, 0xb0, 0x78,
	0xe9, 0x8e, 0xc9, 0xac, 0x1d, 0x09, 0x29, 0xa1, 0x42, 0x63, 0x5b, 0xdf,
	0xa9, 0x1e, 0xea, 0xbb, 0x4c, 0xc4, 0x97, 0x0a, 0x5f, 0x42, 0x08, 0x5c,
	0x75 };

/* The MAC of the example of DATAGRAMS.md section 14, with the key. */
static const uint8_t want_mac[32] = { 0x78, 0x4c, 0xf4, 0x71, 0x9e, 0x6d, 0xef,
	0x5e, 0xa4, 0x3f, 0xec, 0x43, 0x54, 0x97, 0x7d, 0x10, 0xb2, 0xcf, 0x0d,
	0x5d, 0xb3, 0x69, 0xee, 0x56, 0xae, 0x15, 0xf4, 0x90, 0xc8, 0x55, 0x3f,
	0x19 };

/* What the newcomer callback answers, and how often it was asked. */
static bool newcomer_answer;
static int newcomer_asked;

static bool
newcomer(uint64_t boot, void *arg)
{
	(void)boot;
	(void)arg;
	newcomer_asked++;
	return newcomer_answer;
}

/* Encode and seal a datagram of type from boot with serial and time. */
static size_t
make(struct dgram_auth *a, uint8_t *buf, uint8_t type, uint64_t boot,
    uint64_t serial, int64_t time)
{
	struct dgram d = {
		.type = type,
		.flags = DGRAM_FLAG_MAC,
		.boot_id = boot,
		.seq = 42,
		.time = time,
		.name = "a",
		.uri = "h:7",
		.uptime_ms = 1000,
		.req_id = 7,
		.path = "/x",
		.serial = serial,
	};
	static const struct dgram_trap rec = { .kind = DGRAM_REMOVE,
		.path = "x" };
	size_t len = 0;

	if (type == DGRAM_TRAP) {
		d.traps = (struct dgram_trap *)&rec;
		d.ntraps = 1;
	}

	if (dgram_encode(&d, buf, DGRAM_MAX, &len) != 0 ||
	    dgram_auth_seal(a, buf, len) != 0)
		tap_diag("cannot make a datagram");
	return len;
}

/* check(), with the callback. */
static enum dgram_auth_verdict
check(struct dgram_auth *a, const uint8_t *buf, size_t len, int64_t now)
{
	return dgram_auth_check(a, buf, len, now, newcomer, NULL);
}

/* Known answers: the subkey and the example's MAC. */
static void
test_known_answer(void)
{
	uint8_t sub[32], buf[DGRAM_MAX];
	struct dgram_auth *a = dgram_auth_new(secret, 32);
	struct dgram d = { .type = DGRAM_HEARTBEAT,
		.flags = DGRAM_FLAG_MAC,
		.boot_id = 0x0102030405060708ull,
		.seq = 42,
		.time = T0,
		.name = "a",
		.uri = "h:7",
		.uptime_ms = 1000,
		.serial = 1 };
	size_t len = 0;

	tap_ok(dgram_auth_subkey(secret, 32, DGRAM_AUTH_LABEL, sub) == 0 &&
		memcmp(sub, want_sub, 32) == 0,
	    "subkey is HMAC-SHA256(secret, \"pufs datagram v1\")");
	tap_ok(dgram_auth_subkey(secret, 0, DGRAM_AUTH_LABEL, sub) == -EINVAL,
	    "an empty secret is refused");
	tap_ok(dgram_encode(&d, buf, sizeof buf, &len) == 0 && len == 90 &&
		dgram_auth_seal(a, buf, len) == 0 &&
		memcmp(buf + len - 32, want_mac, 32) == 0,
	    "the example HEARTBEAT: 90 bytes (50 + 40), known MAC");
	tap_ok(check(a, buf, len, T0) == DGRAM_AUTH_OK, "and it passes");
	d.flags = 0;
	tap_ok(dgram_encode(&d, buf, sizeof buf, &len) == 0 && len == 50 &&
		dgram_auth_seal(a, buf, len) == -EINVAL,
	    "sealing a datagram without the MAC flag: EINVAL");
	dgram_auth_free(a);
}

/* A wrong key, any byte flipped, no MAC, not a datagram: MAC. */
static void
test_mac(void)
{
	struct dgram_auth *a = dgram_auth_new(secret, 32);
	struct dgram_auth *b = dgram_auth_new(other, 32);
	struct dgram_auth_stats st;
	uint8_t buf[DGRAM_MAX], t[DGRAM_MAX];
	size_t len, i, bad = 0;
	struct dgram d;

	len = make(b, buf, DGRAM_GOODBYE, 9, 1, T0);
	tap_ok(check(a, buf, len, T0) == DGRAM_AUTH_MAC,
	    "a datagram under another key: bad MAC");
	len = make(a, buf, DGRAM_LOCATE, 9, 1, T0);
	for (i = 0; i < len; i++) {
		memcpy(t, buf, len);
		t[i] ^= 0x01;
		bad += check(a, t, len, T0) == DGRAM_AUTH_MAC;
	}
	tap_ok(bad == len, "each of the %zu bytes flipped: bad MAC (%zu)", len,
	    bad);
	tap_ok(check(a, buf, len - 1, T0) == DGRAM_AUTH_MAC,
	    "one byte short: bad MAC");
	memcpy(t, buf, len);
	t[len] = 0;
	tap_ok(check(a, t, len + 1, T0) == DGRAM_AUTH_MAC,
	    "one byte more: bad MAC");
	tap_ok(check(a, (const uint8_t *)"hello", 5, T0) == DGRAM_AUTH_MAC,
	    "not a datagram: bad MAC");
	memset(&d, 0, sizeof d);
	d.type = DGRAM_GOODBYE;
	d.name = "a";
	d.uri = "h:7";
	d.time = T0;
	dgram_encode(&d, t, sizeof t, &len);
	tap_ok(check(a, t, len, T0) == DGRAM_AUTH_MAC,
	    "a datagram without the MAC flag: bad MAC");
	dgram_auth_stats(a, &st);
	tap_ok(st.mac == 1 + bad + 4 && st.passed == 0 && st.senders == 0,
	    "all counted as MAC, no boot followed");
	len = make(a, buf, DGRAM_LOCATE, 9, 1, T0);
	tap_ok(check(a, buf, len, T0) == DGRAM_AUTH_OK,
	    "the untampered datagram still passes: nothing was recorded");
	dgram_auth_free(a);
	dgram_auth_free(b);
}

/* Serials: replays, reordering, the window of DGRAM_AUTH_REORDER. */
static void
test_replay(void)
{
	struct dgram_auth *a = dgram_auth_new(secret, 32);
	struct dgram_auth_stats st;
	uint8_t buf[DGRAM_MAX], keep[DGRAM_MAX];
	size_t len, klen;
	int ok = 1;

	klen = make(a, keep, DGRAM_TRAP, 5, 10, T0);
	tap_ok(check(a, keep, klen, T0) == DGRAM_AUTH_OK, "serial 10 passes");
	tap_ok(check(a, keep, klen, T0) == DGRAM_AUTH_REPLAY,
	    "the same datagram again: replayed");
	len = make(a, buf, DGRAM_TRAP, 5, 10, T0 + 1);
	tap_ok(check(a, buf, len, T0) == DGRAM_AUTH_REPLAY,
	    "serial 10 with another time: replayed");
	len = make(a, buf, DGRAM_TRAP, 6, 10, T0);
	tap_ok(check(a, buf, len, T0) == DGRAM_AUTH_OK,
	    "serial 10 of another boot passes");
	len = make(a, buf, DGRAM_TRAP, 5, 12, T0);
	tap_ok(check(a, buf, len, T0) == DGRAM_AUTH_OK, "serial 12 passes");
	len = make(a, buf, DGRAM_TRAP, 5, 11, T0);
	tap_ok(check(a, buf, len, T0) == DGRAM_AUTH_OK,
	    "serial 11, late, passes once");
	tap_ok(check(a, buf, len, T0) == DGRAM_AUTH_REPLAY,
	    "serial 11 again: replayed");
	len = make(a, buf, DGRAM_TRAP, 5, 9, T0);
	tap_ok(check(a, buf, len, T0) == DGRAM_AUTH_OK,
	    "serial 9, below the first seen, passes once");
	/* Move up by 300: 12 and below are now too old. */
	len = make(a, buf, DGRAM_TRAP, 5, 312, T0);
	tap_ok(check(a, buf, len, T0) == DGRAM_AUTH_OK, "serial 312 passes");
	len = make(a, buf, DGRAM_TRAP, 5, 312 - DGRAM_AUTH_REORDER, T0);
	tap_ok(check(a, buf, len, T0) == DGRAM_AUTH_REPLAY,
	    "a serial %d below the highest: too old, replayed",
	    DGRAM_AUTH_REORDER);
	/* Every serial 57..311 passes once, odd ones down, even ones up. */
	for (uint64_t k = 311; k > 312 - DGRAM_AUTH_REORDER; k -= 2) {
		len = make(a, buf, DGRAM_TRAP, 5, k, T0);
		ok &= check(a, buf, len, T0) == DGRAM_AUTH_OK;
	}
	for (uint64_t k = 312 - DGRAM_AUTH_REORDER + 2; k < 312; k += 2) {
		len = make(a, buf, DGRAM_TRAP, 5, k, T0);
		ok &= check(a, buf, len, T0) == DGRAM_AUTH_OK;
	}
	tap_ok(ok, "each serial of the window passes once, out of order");
	ok = 1;
	for (uint64_t k = 312 - DGRAM_AUTH_REORDER + 1; k <= 312; k++) {
		len = make(a, buf, DGRAM_TRAP, 5, k, T0);
		ok &= check(a, buf, len, T0) == DGRAM_AUTH_REPLAY;
	}
	tap_ok(ok, "and then each is a replay");
	ok = 1;
	/* Steps of 1, 63, 64, 65 and 200 keep every bit in place. */
	for (uint64_t step = 1, k = 1000; step <= 200; step = step == 1 ? 63
		 : step < 65 ? step + 1
			     : 200) {
		k += step;
		len = make(a, buf, DGRAM_TRAP, 5, k, T0);
		ok &= check(a, buf, len, T0) == DGRAM_AUTH_OK;
		len = make(a, buf, DGRAM_TRAP, 5, k - step, T0);
		ok &= check(a, buf, len, T0) ==
		    (k - step == 1000 ? DGRAM_AUTH_OK : DGRAM_AUTH_REPLAY);
		len = make(a, buf, DGRAM_TRAP, 5, k - 1, T0);
		ok &= check(a, buf, len, T0) ==
		    (step == 1 ? DGRAM_AUTH_REPLAY : DGRAM_AUTH_OK);
		if (step == 200)
			break;
	}
	tap_ok(ok, "moves of 1, 63, 64, 65 and 200 serials keep the bitmap");
	len = make(a, buf, DGRAM_TRAP, 7, 0, T0);
	tap_ok(check(a, buf, len, T0) == DGRAM_AUTH_REPLAY,
	    "serial 0 (never sent): replayed");
	dgram_auth_stats(a, &st);
	tap_ok(st.senders == 2, "two boots followed (%u)", st.senders);
	dgram_auth_free(a);
}

/* Timestamps: the window, and the first contact of a newcomer. */
static void
test_window(void)
{
	struct dgram_auth *a = dgram_auth_new(secret, 32);
	struct dgram_auth_stats st;
	uint8_t buf[DGRAM_MAX];
	size_t len;

	len = make(a, buf, DGRAM_TRAP, 5, 1, T0 - DGRAM_AUTH_WINDOW_NS);
	tap_ok(check(a, buf, len, T0) == DGRAM_AUTH_OK,
	    "exactly the window in the past passes");
	len = make(a, buf, DGRAM_TRAP, 5, 2, T0 + DGRAM_AUTH_WINDOW_NS);
	tap_ok(check(a, buf, len, T0) == DGRAM_AUTH_OK,
	    "exactly the window ahead passes");
	len = make(a, buf, DGRAM_TRAP, 5, 3, T0 - DGRAM_AUTH_WINDOW_NS - 1);
	tap_ok(check(a, buf, len, T0) == DGRAM_AUTH_WINDOW,
	    "1 ns more in the past: outside the window");
	tap_ok(check(a, buf, len, T0 - 1) == DGRAM_AUTH_OK,
	    "not recorded: it passes when it is in the window");
	len = make(a, buf, DGRAM_TRAP, 5, 4, T0 + DGRAM_AUTH_WINDOW_NS + 1);
	tap_ok(check(a, buf, len, T0) == DGRAM_AUTH_WINDOW,
	    "1 ns more ahead: outside the window");
	len = make(a, buf, DGRAM_TRAP, 5, 5, INT64_MIN);
	tap_ok(check(a, buf, len, INT64_MAX) == DGRAM_AUTH_WINDOW,
	    "the farthest times: outside, no overflow");

	/* First contact: ANNOUNCE and HEARTBEAT of a newcomer only. */
	newcomer_answer = true;
	newcomer_asked = 0;
	len = make(a, buf, DGRAM_ANNOUNCE, 8, 1, T0 - 600 * S);
	tap_ok(check(a, buf, len, T0) == DGRAM_AUTH_FIRST && newcomer_asked,
	    "a newcomer's ANNOUNCE 10 min off: first contact");
	tap_ok(check(a, buf, len, T0) == DGRAM_AUTH_REPLAY,
	    "the same again: replayed");
	len = make(a, buf, DGRAM_HEARTBEAT, 8, 2, T0 + 600 * S);
	tap_ok(check(a, buf, len, T0) == DGRAM_AUTH_FIRST,
	    "its HEARTBEAT 10 min ahead: first contact");
	len = make(a, buf, DGRAM_GOODBYE, 8, 3, T0 - 600 * S);
	tap_ok(check(a, buf, len, T0) == DGRAM_AUTH_WINDOW,
	    "its GOODBYE 10 min off: outside the window");
	len = make(a, buf, DGRAM_TRAP, 8, 4, T0 - 600 * S);
	tap_ok(check(a, buf, len, T0) == DGRAM_AUTH_WINDOW,
	    "its TRAP 10 min off: outside the window");
	len = make(a, buf, DGRAM_ANNOUNCE, 8, 5, T0 - DGRAM_AUTH_FIRST_NS - 1);
	tap_ok(check(a, buf, len, T0) == DGRAM_AUTH_WINDOW,
	    "its ANNOUNCE beyond the first-contact window: outside");
	newcomer_answer = false;
	newcomer_asked = 0;
	len = make(a, buf, DGRAM_ANNOUNCE, 8, 6, T0 - 600 * S);
	tap_ok(check(a, buf, len, T0) == DGRAM_AUTH_WINDOW && newcomer_asked,
	    "an ANNOUNCE 10 min off of a boot with a stream: outside");
	len = make(a, buf, DGRAM_ANNOUNCE, 8, 7, T0);
	newcomer_asked = 0;
	tap_ok(check(a, buf, len, T0) == DGRAM_AUTH_OK && !newcomer_asked,
	    "within the window nobody is asked");
	tap_ok(dgram_auth_check(a, buf, len, T0 - 600 * S, NULL, NULL) ==
		DGRAM_AUTH_WINDOW,
	    "no callback: no newcomer");
	dgram_auth_stats(a, &st);
	tap_ok(st.passed == 6 && st.first_contact == 2 && st.window == 8 &&
		st.replay == 1 && st.mac == 0,
	    "counted: %llu passed, %llu first, %llu window, %llu replay",
	    (unsigned long long)st.passed, (unsigned long long)st.first_contact,
	    (unsigned long long)st.window, (unsigned long long)st.replay);
	dgram_auth_free(a);
}

/* The table of boots: bounded, expiring, the least recent gives way. */
static void
test_table(void)
{
	struct dgram_auth *a = dgram_auth_new(secret, 32);
	struct dgram_auth_stats st;
	uint8_t buf[DGRAM_MAX];
	size_t len;
	int ok = 1;

	for (uint64_t b = 1; b <= DGRAM_AUTH_SENDERS + 10; b++) {
		len = make(a, buf, DGRAM_HEARTBEAT, b, 1, T0 + (int64_t)b);
		ok &= check(a, buf, len, T0) == DGRAM_AUTH_OK;
	}
	dgram_auth_stats(a, &st);
	tap_ok(ok && st.senders == DGRAM_AUTH_SENDERS, "%d boots: %u followed",
	    DGRAM_AUTH_SENDERS + 10, st.senders);
	len = make(a, buf, DGRAM_HEARTBEAT, DGRAM_AUTH_SENDERS + 10, 1,
	    T0 + DGRAM_AUTH_SENDERS + 10);
	tap_ok(check(a, buf, len, T0) == DGRAM_AUTH_REPLAY,
	    "the latest boot is still followed");
	len = make(a, buf, DGRAM_HEARTBEAT, 1, 1, T0 + 1);
	tap_ok(check(a, buf, len, T0) == DGRAM_AUTH_OK,
	    "the earliest gave way: its serial passes once more");
	/* Later than both windows every boot is forgotten. */
	len = make(a, buf, DGRAM_HEARTBEAT, 99999, 1,
	    T0 + DGRAM_AUTH_FIRST_NS + DGRAM_AUTH_WINDOW_NS + 100 * S);
	tap_ok(check(a, buf, len,
		   T0 + DGRAM_AUTH_FIRST_NS + DGRAM_AUTH_WINDOW_NS + 100 * S) ==
		DGRAM_AUTH_OK,
	    "a boot an hour later passes");
	dgram_auth_stats(a, &st);
	tap_ok(st.senders == 1, "and the expired boots are forgotten (%u left)",
	    st.senders);
	dgram_auth_free(a);
}

int
main(void)
{
	test_known_answer();
	test_mac();
	test_replay();
	test_window();
	test_table();
	tap_ok(strcmp(dgram_auth_verdict_name(DGRAM_AUTH_WINDOW),
		   "outside the window") == 0,
	    "verdict names");
	return tap_done();
}
