/*
 * test-names.c - unit test of what guards the daemon against names from
 * the network: the peer name and URI rules (proto/proto.c), the escaping
 * of such strings for logs and status, and the log rate limiter
 * (daemon/log.c).  Table-driven; pure code, no I/O but standard error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "proto.h"
#include "tap.h"

static const struct {
	const char *name;
	int ok;
} names[] = {
	{ "p1", 1 },
	{ "a", 1 },
	{ "alpha beta", 1 },
	{ "caf\xc3\xa9", 1 },
	{ "back\\slash\"quote", 1 },
	{ "x@y", 1 },
	{ "", 0 },
	{ "a/b", 0 },
	{ "/", 0 },
	{ "esc\x1b[31m", 0 },
	{ "nl\n", 0 },
	{ "tab\t", 0 },
	{ "del\x7f", 0 },
};

static const struct {
	const char *uri;
	int ok;
} uris[] = {
	{ "10.0.0.1:7070", 1 },
	{ "h:7", 1 },
	{ "[::1]:1", 1 },
	{ "[fe80::1%eth0]:65535", 1 },
	{ "host.example:80", 1 },
	{ "", 0 },
	{ ":7070", 0 },
	{ "10.0.0.1", 0 },
	{ "10.0.0.1:", 0 },
	{ "10.0.0.1:0", 0 },
	{ "10.0.0.1:65536", 0 },
	{ "10.0.0.1:123456", 0 },
	{ "10.0.0.1:7a", 0 },
	{ "::1:7070", 0 },
	{ "[]:7070", 0 },
	{ "[::1:7070", 0 },
	{ "a/b:1", 0 },
	{ "a\x01:1", 0 },
	{ "[::1]]:1", 0 },
	{ "a b\n:1", 0 },
	{ "[a[b]:1", 0 },
};

static const struct {
	const char *in, *out;
} escapes[] = {
	{ "plain", "plain" },
	{ "esc\x1b[31m", "esc\\x1b[31m" },
	{ "back\\slash", "back\\x5cslash" },
	{ "nl\nx", "nl\\x0ax" },
	{ "caf\xc3\xa9", "caf\\xc3\\xa9" },
	{ "", "" },
};

/* Cutting: the result always fits and ends in "..." when cut. */
static void
test_cut(void)
{
	char buf[8];
	char big[600];
	size_t n;

	n = log_escape_buf(buf, sizeof buf, "abcdefghij");
	tap_is_str(buf, "abcd...", "cut plain text");
	tap_is_int((long long)n, 7, "cut length");
	n = log_escape_buf(buf, sizeof buf, "ab\x01\x02");
	tap_ok(strlen(buf) == n && n < sizeof buf, "cut escape fits: %s", buf);
	tap_is_str(buf, "ab...", "an escape is never split");
	memset(big, 1, sizeof big - 1);
	big[sizeof big - 1] = '\0';
	tap_ok(strlen(log_escape(big)) < LOG_ESCAPE_MAX,
	    "log_escape bounds its output");
	tap_ok(strcmp(log_escape("a"), log_escape("b")) != 0,
	    "two log_escape results in one line differ");
}

/* The limiter: 5 a second, then counted; a new second starts over. */
static void
test_rate(void)
{
	struct log_rate r = LOG_RATE_INIT("test lines");
	int ok = 0;

	for (int i = 0; i < 100; i++)
		ok += log_rate_ok(&r, 1000 + (uint64_t)i);
	tap_is_int(ok, LOG_RATE_PER_SEC, "5 lines in the first second");
	tap_is_int((long long)r.suppressed, 100 - LOG_RATE_PER_SEC,
	    "the others counted");
	tap_ok(log_rate_ok(&r, 2000), "a new second writes again");
	tap_is_int((long long)r.suppressed, 0, "and reports the suppressed");
	ok = 0;
	for (int i = 0; i < 10; i++)
		ok += log_rate_ok(&r, 2500);
	tap_is_int(ok, LOG_RATE_PER_SEC - 1, "the second's budget is shared");
	tap_ok(log_rate_ok(&r, 100000), "much later: written");
}

/* A log line with control characters in it stays one harmless line. */
static void
test_log_line(void)
{
	char buf[512] = "";
	FILE *f = tmpfile();
	int saved = dup(2);
	size_t n;

	if (f == NULL || saved == -1) {
		tap_ok(0, "tmpfile for standard error");
		return;
	}
	fflush(stderr);
	dup2(fileno(f), 2);
	log_warnx("peer %s: hello", "a\nb\x1b[2Jc\x7f");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(f);
	n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	tap_ok(strstr(buf, "peer a\\x0ab\\x1b[2Jc\\x7f: hello\n") != NULL,
	    "control characters in a log line are escaped");
	tap_ok(strchr(buf, '\n') == buf + n - 1, "and it is one line");
}

int
main(void)
{
	char buf[64];

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		log_escape_buf(buf, sizeof buf, names[i].name);
		tap_is_int(proto_peer_name_ok(names[i].name), names[i].ok, buf);
	}
	tap_ok(!proto_peer_name_ok(NULL), "no name");
	memset(buf, 'a', sizeof buf);
	{
		char longname[300];

		memset(longname, 'n', sizeof longname);
		longname[255] = '\0';
		tap_ok(proto_peer_name_ok(longname), "255-byte name");
		longname[255] = 'n';
		longname[256] = '\0';
		tap_ok(!proto_peer_name_ok(longname), "256-byte name refused");
	}
	for (size_t i = 0; i < sizeof uris / sizeof uris[0]; i++) {
		log_escape_buf(buf, sizeof buf, uris[i].uri);
		tap_is_int(proto_uri_ok(uris[i].uri), uris[i].ok, buf);
	}
	for (size_t i = 0; i < sizeof escapes / sizeof escapes[0]; i++) {
		log_escape_buf(buf, sizeof buf, escapes[i].in);
		tap_is_str(buf, escapes[i].out, escapes[i].out);
	}
	test_cut();
	test_rate();
	test_log_line();
	return tap_done();
}
