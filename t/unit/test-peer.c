/*
 * test-peer.c - unit test of how the peer table (discovery/peer.c)
 * settles two streams to one peer: the second stream of crossed dials
 * (opposite directions, the same boot, begun before the first was up)
 * and a later one.  Of crossed dials the stream opened by the
 * lower-named peer stays, and only the lower-named peer closes the
 * other; the higher-named one retires it; the peer never goes down in
 * between.  A later second stream is refused and the live one probed.
 *
 * The transport is a fake dialer: a "stream" is a struct fake, and
 * closes, retirements and probes are only counted.  This daemon is "m";
 * the other peer is "a" (lower than us) or "z" (higher).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "discovery.h"
#include "loop.h"
#include "pufs.h"
#include "tap.h"

struct fake {
	bool outbound;
	uint64_t started, up_since;
	int closed, retired, probed;
};

#define FAKE(s) ((struct fake *)(void *)(s))
#define STREAM(f) ((struct stream *)(void *)(f))

static int
fake_listen(const struct sockaddr *sa, int len)
{
	(void)sa;
	(void)len;
	return 0;
}

static struct stream *
fake_connect(const struct sockaddr *sa, int len, const char *addr,
    struct seed *sd)
{
	(void)sa;
	(void)len;
	(void)addr;
	(void)sd;
	return NULL;
}

static void
fake_close(struct stream *s, const char *reason)
{
	(void)reason;
	FAKE(s)->closed++;
}

static void
fake_retire(struct stream *s)
{
	FAKE(s)->retired++;
}

static void
fake_probe(struct stream *s, const char *why)
{
	(void)why;
	FAKE(s)->probed++;
}

static bool
fake_may_dial(void)
{
	return true;
}

static bool
fake_outbound(const struct stream *s)
{
	return ((const struct fake *)(const void *)s)->outbound;
}

static uint64_t
fake_started(const struct stream *s)
{
	return ((const struct fake *)(const void *)s)->started;
}

static uint64_t
fake_up_since(const struct stream *s)
{
	return ((const struct fake *)(const void *)s)->up_since;
}

static const struct peer_dialer fake_dialer = {
	.listen = fake_listen,
	.connect = fake_connect,
	.close = fake_close,
	.retire = fake_retire,
	.probe = fake_probe,
	.may_dial = fake_may_dial,
	.outbound = fake_outbound,
	.started = fake_started,
	.up_since = fake_up_since,
};

static int
fake_export_open(struct export *ex, const struct config_export *ce, uint32_t id)
{
	(void)ex;
	(void)ce;
	(void)id;
	return 0;
}

static void
fake_export_close(struct export *ex)
{
	(void)ex;
}

static const struct peer_exports fake_exports = {
	.open = fake_export_open,
	.close = fake_export_close,
};

static int downs; /* transitions to PEER_DOWN seen */

static void
count_downs(struct peer *p, enum peer_state old)
{
	(void)old;
	if (p->state == PEER_DOWN)
		downs++;
}

static struct proto_hello
hello_of(const char *name, uint64_t boot)
{
	struct proto_hello h = {
		.name = name,
		.uri = name[0] == 'a' ? "127.0.0.1:1" : "127.0.0.1:2",
		.boot_id = boot,
	};

	return h;
}

/*
 * One case: the first stream (first_out: we dialed it) is up at 1000 ms;
 * the second, the other way round, began at second_started and finishes
 * its handshake now.  Checks what the table did.
 */
static void
crossed(const char *name, uint64_t boot, bool first_out,
    uint64_t second_started, const char *want, const char *label)
{
	struct fake *first = calloc(1, sizeof *first);
	struct fake *second = calloc(1, sizeof *second);
	struct proto_hello h = hello_of(name, boot);
	struct peer *p;
	bool retired;
	char got[160];

	first->outbound = first_out;
	first->started = 990;
	first->up_since = 1000;
	second->outbound = !first_out;
	second->started = second_started;
	p = peer_attach(&h, STREAM(first), first_out, &retired);
	if (p == NULL || p->stream != STREAM(first) || retired) {
		tap_ok(0, "%s: the first stream is attached", label);
		return;
	}
	downs = 0;
	p = peer_attach(&h, STREAM(second), !first_out, &retired);
	snprintf(got, sizeof got,
	    "%s; stream %s; first closed %d retired %d probed %d; "
	    "second retired %d; downs %d; %s",
	    p == NULL     ? "refused"
		: retired ? "retired"
			  : "attached",
	    p == NULL                         ? "-"
		: p->stream == STREAM(first)  ? "first"
		: p->stream == STREAM(second) ? "second"
					      : "none",
	    first->closed, first->retired, first->probed, second->retired,
	    downs, peer_by_uri(h.uri)->state == PEER_UP ? "up" : "down");
	tap_is_str(got, want, label);
	/* Leave the peer with no stream, as if both had closed. */
	peer_stream_lost(peer_by_uri(h.uri), peer_by_uri(h.uri)->stream,
	    "test");
	free(first);
	free(second);
}

/*
 * "z" is higher than us: we opened the stream that stays, and we close
 * the other.  "a" is lower: its stream stays, and a closes the other.
 * A second stream begun 1.5 s after the first was up did not cross.
 */
static const struct {
	const char *name;
	bool first_out;
	uint64_t second_started;
	const char *want, *label;
} cases[] = {
	{ "z", false, 995,
	    "attached; stream second; first closed 1 retired 0 probed 0; "
	    "second retired 0; downs 0; up",
	    "crossed, z dialed first: ours replaces it, and we close its" },
	{ "z", true, 995,
	    "refused; stream -; first closed 0 retired 0 probed 0; "
	    "second retired 0; downs 0; up",
	    "crossed, ours first: z's is refused, for our caller to close" },
	{ "a", true, 995,
	    "attached; stream second; first closed 0 retired 1 probed 0; "
	    "second retired 0; downs 0; up",
	    "crossed, ours first: a's replaces it, ours is retired" },
	{ "a", false, 995,
	    "retired; stream first; first closed 0 retired 0 probed 0; "
	    "second retired 0; downs 0; up",
	    "crossed, a's first: ours is retired at once" },
	{ "a", false, 2500,
	    "refused; stream -; first closed 0 retired 0 probed 1; "
	    "second retired 0; downs 0; up",
	    "a later second stream: refused, the live one probed" },
	{ "z", true, 2500,
	    "refused; stream -; first closed 0 retired 0 probed 1; "
	    "second retired 0; downs 0; up",
	    "a later second stream from z: refused, the live one probed" },
};

int
main(void)
{
	struct config cfg;

	config_init(&cfg);
	free(cfg.name);
	cfg.name = strdup("m");
	free(cfg.listen);
	cfg.listen = strdup("127.0.0.1:7070");
	loop_init(&cfg);
	peer_init_self(&cfg, &fake_exports);
	if (peer_init_net(&cfg, &fake_dialer) == -1)
		return 1;
	peer_on_state(count_downs);

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		crossed(cases[i].name, i + 1, cases[i].first_out,
		    cases[i].second_started, cases[i].want, cases[i].label);
	peer_free_all();
	config_free(&cfg);
	return tap_done();
}
