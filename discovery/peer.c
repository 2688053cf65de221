/*
 * peer.c - the members of the union, and the addresses we dial.
 *
 * The list is kept sorted by peer name, because the lowest-named holder
 * of a merged directory supplies its attributes on every peer.  This
 * daemon is a peer like the others, whose exports are served in-process.
 * Another peer is UP while it has a stream (stream.c) that finished its
 * handshake; it goes DOWN when the stream closes (goodbye, error, or
 * silence longer than dead_after) and stays in the list, so its nodes
 * keep pointing at it and it comes back UP when it reconnects.
 *
 * Seeds are the configured addresses (unicast `peers`).  Each is dialed
 * until a stream to its peer is up, with a backoff from 100 ms doubling
 * to 2 s; when its peer goes down it is dialed again.
 *
 * What the network tells is not trusted.  Addresses from datagrams and
 * handshakes must be numeric (the loop never waits for a name server;
 * the configuration's names are resolved before it starts).  A seed
 * made from a datagram is forgotten once its peer has not been heard of
 * for dead_after * 10 and has no stream; there are at most
 * PEER_DYNAMIC_SEEDS of them, and at most PEER_MAX peers.  A second
 * stream under the name of a live peer never displaces its stream (but
 * for two peers dialing each other at once, PEER_RACE_MS): the newcomer
 * is refused and the live stream asked whether it still answers
 * (peer_probe); a GOODBYE datagram is only such a question.
 *
 * The table knows the transport and the export backend only through the
 * dialer and the export operations the daemon gives peer_init_net() and
 * peer_init_self(); whoever reacts to a peer going up or down registers
 * a state listener (peer_on_state()).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "discovery.h"
#include "export.h" /* struct export: the peer table holds them */
#include "log.h"
#include "loop.h"

#define SEED_BACKOFF_MIN_MS 100
#define SEED_BACKOFF_MAX_MS 2000
#define PEER_DYNAMIC_SEEDS 1024 /* addresses heard of by datagram */
#define PEER_MAX 1024           /* other peers known */
#define PEER_RACE_MS \
	1000 /* dials that cross: both started \
		before the first was up */
#define PEER_SWEEP_MS 1000
#define PEER_ANSWER_WAIT_MS 250 /* for the stream of who answered us */
#define PEER_LISTENERS 8

struct seed {
	char *addr; /* as configured; owned */
	struct sockaddr_storage sa;
	socklen_t salen;
	struct stream *s;  /* our connection in progress or up */
	struct peer *peer; /* known after its handshake */
	uint64_t backoff_ms;
	struct timer retry;
	bool dynamic;   /* heard by multicast, not configured */
	uint64_t heard; /* loop_now_ms(): last datagram */
	TAILQ_ENTRY(seed) entry;
};
TAILQ_HEAD(seed_list, seed);

struct peer_list peers = TAILQ_HEAD_INITIALIZER(peers);
static struct seed_list seeds = TAILQ_HEAD_INITIALIZER(seeds);
static struct peer *self;
static uint64_t boot_id;
static unsigned npeers; /* others in the list */
static unsigned nseeds_dynamic;
static struct timer peer_sweep_timer;
static struct log_rate peer_log_addr = LOG_RATE_INIT("peer addresses");
static struct log_rate peer_log_streams = LOG_RATE_INIT("second streams");
static struct log_rate peer_log_found = LOG_RATE_INIT("peers found");
static const struct peer_dialer *dialer; /* the transport */
static const struct peer_exports *exops; /* the export backend */
static peer_state_cb listeners[PEER_LISTENERS];
static unsigned nlisteners;

static int peer_resolve(const char *, struct sockaddr_storage *, socklen_t *,
    bool passive, bool numeric);

static const char *peer_state_names[PEER_STATE_MAX] = {
	[PEER_UP] = "up",
	[PEER_DOWN] = "down",
};

/* The state's name for logs and status. */
const char *
peer_state_name(enum peer_state s)
{
	return s < PEER_STATE_MAX ? peer_state_names[s] : "?";
}

/*
 * Our contact address: the listen address, or where it is a wildcard,
 * the first non-loopback IPv4 address of this host (127.0.0.1 if none).
 */
static char *
peer_self_uri(const char *listen)
{
	const char *colon = strrchr(listen, ':');
	char host[INET6_ADDRSTRLEN] = "127.0.0.1", *uri;
	struct ifaddrs *ifa, *i;
	size_t hlen;

	if (colon == NULL)
		return xstrdup(listen);
	hlen = (size_t)(colon - listen);
	if (!(hlen == 7 && strncmp(listen, "0.0.0.0", 7) == 0) &&
	    !(hlen == 4 && strncmp(listen, "[::]", 4) == 0) && hlen != 0) {
		/* Peers take numeric addresses only: resolve it now. */
		struct sockaddr_storage ss;
		socklen_t sslen;
		char buf[128];

		if (peer_resolve(listen, &ss, &sslen, false, false) == -1)
			return xstrdup(listen);
		peer_format_addr((struct sockaddr *)&ss, sslen, buf,
		    sizeof buf);
		return xstrdup(buf);
	}
	if (getifaddrs(&ifa) == 0) {
		for (i = ifa; i != NULL; i = i->ifa_next) {
			if (i->ifa_addr == NULL ||
			    i->ifa_addr->sa_family != AF_INET ||
			    (i->ifa_flags & IFF_LOOPBACK) ||
			    !(i->ifa_flags & IFF_UP))
				continue;
			inet_ntop(AF_INET,
			    &((struct sockaddr_in *)i->ifa_addr)->sin_addr,
			    host, sizeof host);
			break;
		}
		freeifaddrs(ifa);
	}
	xasprintf(&uri, "%s%s", host, colon);
	return uri;
}

/* Insert p keeping the list sorted by name. */
static void
peer_insert(struct peer *p)
{
	struct peer *q;

	TAILQ_FOREACH(q, &peers, entry)
	{
		if (strcmp(p->name, q->name) < 0) {
			TAILQ_INSERT_BEFORE(q, p, entry);
			return;
		}
	}
	TAILQ_INSERT_TAIL(&peers, p, entry);
}

/* Make this daemon's own peer and open its exports; dies on failure. */
void
peer_init_self(const struct config *cfg, const struct peer_exports *ops)
{
	uint32_t i;
	int rc;

	exops = ops;
	(void)peer_boot_id(); /* made now, read later from workers too */
	self = xcalloc(1, sizeof *self);
	self->name = xstrdup(cfg->name);
	self->uri = peer_self_uri(cfg->listen);
	self->self = true;
	self->state = PEER_UP;
	self->nexports = (uint32_t)cfg->nexports;
	self->exports = xcalloc(cfg->nexports, sizeof *self->exports);
	for (i = 0; i < self->nexports; i++) {
		rc = exops->open(&self->exports[i], &cfg->exports[i], i);
		if (rc < 0) {
			errno = -rc;
			fatal("export %s: %s", cfg->exports[i].name,
			    cfg->exports[i].path);
		}
		log_info("export %s: %s at %s%s", self->exports[i].name,
		    self->exports[i].path, self->exports[i].at,
		    self->exports[i].read_only ? " (read-only)" : "");
	}
	peer_insert(self);
}

/* This daemon's own peer. */
struct peer *
peer_self(void)
{
	return self;
}

/* The peer whose contact address is uri, or NULL. */
struct peer *
peer_by_uri(const char *uri)
{
	struct peer *p;

	TAILQ_FOREACH(p, &peers, entry)
	if (strcmp(p->uri, uri) == 0)
		return p;
	return NULL;
}

/* Tell fn of every peer state change from now on, in order of calls. */
void
peer_on_state(peer_state_cb fn)
{
	if (nlisteners == PEER_LISTENERS)
		fatalx("peer: more than %d state listeners", PEER_LISTENERS);
	listeners[nlisteners++] = fn;
}

/*
 * The one place a peer's state changes; logs the transition and tells
 * the listeners (traps forget what was cached from it, the clock drops
 * it as reference).
 */
static void
peer_set_state(struct peer *p, enum peer_state s)
{
	enum peer_state old = p->state;

	if (s >= PEER_STATE_MAX)
		fatalx("peer %s: bad state %d", p->name, s);
	if (old == s)
		return;
	log_info("peer %s: %s -> %s", p->name, peer_state_name(old),
	    peer_state_name(s));
	p->state = s;
	for (unsigned i = 0; i < nlisteners; i++)
		listeners[i](p, old);
}

/* A random number for this start of the daemon. */
uint64_t
peer_boot_id(void)
{
	while (boot_id == 0)
		if (getrandom(&boot_id, sizeof boot_id, 0) != sizeof boot_id)
			boot_id = (uint64_t)loop_now_ms() ^ (uint64_t)getpid();
	return boot_id;
}

/* "ADDR:PORT" or "[ADDR]:PORT" of a socket address. */
void
peer_format_addr(const struct sockaddr *sa, unsigned salen, char *buf,
    size_t len)
{
	char host[NI_MAXHOST], serv[NI_MAXSERV];

	if (getnameinfo(sa, salen, host, sizeof host, serv, sizeof serv,
		NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(buf, len, "?");
		return;
	}
	if (sa->sa_family == AF_INET6)
		snprintf(buf, len, "[%s]:%s", host, serv);
	else
		snprintf(buf, len, "%s:%s", host, serv);
}

/*
 * Resolve "HOST:PORT" / "[ADDR]:PORT"; 0 or -1.  numeric: addresses
 * from the network, never looked up (names are refused).
 */
static int
peer_resolve(const char *addr, struct sockaddr_storage *ss, socklen_t *len,
    bool passive, bool numeric)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	const char *colon = strrchr(addr, ':');
	char *host;
	int rc;

	if (colon == NULL)
		return -1;
	if (addr[0] == '[' && colon > addr && colon[-1] == ']')
		host = xstrndup(addr + 1, (size_t)(colon - addr - 2));
	else
		host = xstrndup(addr, (size_t)(colon - addr));
	if (passive)
		hints.ai_flags = AI_PASSIVE;
	if (numeric)
		hints.ai_flags |= AI_NUMERICHOST | AI_NUMERICSERV;
	rc = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res);
	free(host);
	if (rc != 0) {
		/* The network's addresses: the caller tells (rate-limited). */
		if (!numeric)
			log_warnx("%s: %s", addr, gai_strerror(rc));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* Whether uri is a numeric address (taken from the network). */
bool
peer_uri_numeric(const char *uri)
{
	struct sockaddr_storage ss;
	socklen_t len;

	return peer_resolve(uri, &ss, &len, false, true) == 0;
}

/*
 * Dial a seed unless its peer is already up; a seed heard of by
 * datagram waits while too many dials are in handshake.
 */
static void
peer_seed_dial(struct seed *sd)
{
	if (sd->s != NULL || (sd->peer != NULL && sd->peer->state == PEER_UP))
		return;
	if (sd->dynamic && !dialer->may_dial()) {
		log_debug("seed %s: too many dials in handshake; later",
		    sd->addr);
		return;
	}
	log_debug("seed %s: dialing", sd->addr);
	sd->s = dialer->connect((struct sockaddr *)&sd->sa, (int)sd->salen,
	    sd->addr, sd);
}

/* The seed's retry timer. */
static void
peer_seed_retry(struct timer *t, void *arg)
{
	(void)t;
	peer_seed_dial(arg);
}

/* Dial the seed again after its backoff. */
static void
peer_seed_later(struct seed *sd)
{
	if (timer_pending(&sd->retry))
		return;
	timer_wheel_add(loop_wheel(), &sd->retry,
	    loop_now_ms() + sd->backoff_ms);
	loop_wheel_kick();
	sd->backoff_ms *= 2;
	if (sd->backoff_ms > SEED_BACKOFF_MAX_MS)
		sd->backoff_ms = SEED_BACKOFF_MAX_MS;
}

/* Our outbound stream for a seed died (or was a duplicate). */
void
peer_seed_lost(struct seed *sd, struct stream *s)
{
	if (sd->s != s)
		return;
	sd->s = NULL;
	/* A seed heard by multicast is dialed again when heard again. */
	if (!sd->dynamic)
		peer_seed_later(sd);
}

/* The peer with this name, or NULL. */
struct peer *
peer_by_name(const char *name)
{
	struct peer *p;

	TAILQ_FOREACH(p, &peers, entry)
	if (strcmp(p->name, name) == 0)
		return p;
	return NULL;
}

/* A new seed for addr (configured, or heard by multicast). */
static struct seed *
peer_seed_new(const char *addr, const struct sockaddr_storage *ss,
    socklen_t len, bool dynamic)
{
	struct seed *sd = xcalloc(1, sizeof *sd);

	sd->addr = xstrdup(addr);
	sd->sa = *ss;
	sd->salen = len;
	sd->dynamic = dynamic;
	sd->heard = loop_now_ms();
	sd->backoff_ms = SEED_BACKOFF_MIN_MS;
	timer_init(&sd->retry, peer_seed_retry, sd);
	TAILQ_INSERT_TAIL(&seeds, sd, entry);
	if (dynamic)
		nseeds_dynamic++;
	return sd;
}

/* Free a seed without a stream. */
static void
peer_seed_free(struct seed *sd)
{
	TAILQ_REMOVE(&seeds, sd, entry);
	timer_wheel_del(loop_wheel(), &sd->retry);
	if (sd->dynamic)
		nseeds_dynamic--;
	free(sd->addr);
	free(sd);
}

/* Whether a datagram-made seed may go: no stream, no live peer. */
static bool
peer_seed_idle(const struct seed *sd)
{
	return sd->dynamic && sd->s == NULL &&
	    (sd->peer == NULL || sd->peer->state != PEER_UP);
}

/*
 * Forget the datagram-made seeds not heard of for dead_after * 10; with
 * room wanted (full), also the one heard of longest ago.  Returns
 * whether there is room for one more.
 */
static bool
peer_seeds_sweep(bool full)
{
	uint64_t now = loop_now_ms(),
		 ttl = (uint64_t)(conf->dead_after * 10000);
	struct seed *sd, *next, *oldest = NULL;

	for (sd = TAILQ_FIRST(&seeds); sd != NULL; sd = next) {
		next = TAILQ_NEXT(sd, entry);
		if (!peer_seed_idle(sd))
			continue;
		if (now - sd->heard > ttl) {
			log_debug("seed %s: not heard of for %.1f s; forgotten",
			    sd->addr, (double)(now - sd->heard) / 1000);
			peer_seed_free(sd);
		} else if (oldest == NULL || sd->heard < oldest->heard)
			oldest = sd;
	}
	if (nseeds_dynamic < PEER_DYNAMIC_SEEDS)
		return true;
	if (!full || oldest == NULL)
		return false;
	peer_seed_free(oldest);
	return true;
}

/* The sweep timer: datagram-made state expires without new datagrams. */
static void
peer_sweep(struct timer *t, void *arg)
{
	(void)t;
	(void)arg;
	peer_seeds_sweep(false);
	timer_wheel_add(loop_wheel(), &peer_sweep_timer,
	    loop_now_ms() + PEER_SWEEP_MS);
	loop_wheel_kick();
}

/* Counts for status: other peers known, datagram-made addresses. */
void
peer_counts(unsigned *known, unsigned *addresses)
{
	*known = npeers;
	*addresses = nseeds_dynamic;
}

/* The address of our listener (TCP, and UDP in unicast mode). */
int
peer_listen_addr(const struct config *cfg, struct sockaddr_storage *ss,
    socklen_t *len)
{
	return peer_resolve(cfg->listen, ss, len, true, false);
}

/* Where datagrams for p go: its URI, resolved once per stream. */
int
peer_dgram_addr(struct peer *p, struct sockaddr_storage *ss, socklen_t *len)
{
	if (p->dglen == 0 &&
	    peer_resolve(p->uri, &p->dgaddr, &p->dglen, false, true) == -1)
		return -1;
	*ss = p->dgaddr;
	*len = p->dglen;
	return 0;
}

/* Listen for peers and dial the seeds; -1 if we cannot listen. */
int
peer_init_net(const struct config *cfg, const struct peer_dialer *d)
{
	struct sockaddr_storage ss, own;
	socklen_t len, ownlen;

	dialer = d;
	if (peer_resolve(cfg->listen, &own, &ownlen, true, false) == -1 ||
	    dialer->listen((struct sockaddr *)&own, (int)ownlen) == -1)
		return -1;
	timer_init(&peer_sweep_timer, peer_sweep, NULL);
	peer_sweep(&peer_sweep_timer, NULL);
	for (size_t i = 0; i < cfg->npeers; i++) {
		if (peer_resolve(cfg->peers[i], &ss, &len, false, false) ==
		    -1) {
			log_warnx("peer address %s: cannot resolve; ignored",
			    cfg->peers[i]);
			continue;
		}
		if ((len == ownlen && memcmp(&ss, &own, len) == 0) ||
		    strcmp(cfg->peers[i], self->uri) == 0)
			continue; /* ourselves, in a shared list */
		peer_seed_dial(peer_seed_new(cfg->peers[i], &ss, len, false));
	}
	return 0;
}

/*
 * A peer announced itself by multicast.  Dial it unless it is up with
 * the same boot id.  Returns whether it was new to us (not up), so that
 * its ANNOUNCE is answered with ours.  dials_us: the datagram answers
 * our ANNOUNCE, and its sender dials us as it answers (mcast.c); our
 * own dial then waits PEER_ANSWER_WAIT_MS for that stream, so that the
 * two dials do not cross (one of them would be dialed and closed for
 * nothing) and a union of N starting peers makes N(N-1)/2 streams, not
 * twice as many.  If its stream does not come, we dial.
 */
bool
peer_discovered(const char *name, const char *uri, uint64_t boot, bool dials_us)
{
	struct peer *p = peer_by_name(name);
	struct sockaddr_storage ss;
	socklen_t len;
	struct seed *sd;

	if (strcmp(name, self->name) == 0) {
		log_warnx("multicast: another peer calls itself %s (%s)", name,
		    uri);
		return false;
	}
	if (p != NULL && p->state == PEER_UP && p->boot_id == boot)
		return false;
	TAILQ_FOREACH(sd, &seeds, entry)
	if (strcmp(sd->addr, uri) == 0)
		break;
	if (sd == NULL) {
		if (peer_resolve(uri, &ss, &len, false, true) == -1) {
			if (log_rate_ok(&peer_log_addr, loop_now_ms()))
				log_warnx("multicast: peer %s announces %s, "
					  "not a numeric address; ignored",
				    name, log_escape(uri));
			return false;
		}
		if (!peer_seeds_sweep(true)) {
			if (log_rate_ok(&peer_log_addr, loop_now_ms()))
				log_warnx("multicast: %u addresses known "
					  "already; %s at %s ignored",
				    PEER_DYNAMIC_SEEDS, name, uri);
			return false;
		}
		sd = peer_seed_new(uri, &ss, len, true);
		if (log_rate_ok(&peer_log_found, loop_now_ms()))
			log_info("multicast: found peer %s at %s", name, uri);
	}
	sd->heard = loop_now_ms();
	if (sd->s != NULL || timer_pending(&sd->retry))
		return true;
	if (dials_us) {
		timer_wheel_add(loop_wheel(), &sd->retry,
		    loop_now_ms() + PEER_ANSWER_WAIT_MS);
		loop_wheel_kick();
	} else
		peer_seed_dial(sd);
	return true;
}

/*
 * A GOODBYE datagram: anyone can send one, so it is only a question.
 * A peer that really leaves says BYE on its stream; the stream of one
 * that did not is asked whether it still answers, and stays if it does.
 */
void
peer_said_goodbye(const char *name, uint64_t boot)
{
	struct peer *p = peer_by_name(name);

	if (p == NULL || p->boot_id != boot)
		return;
	peer_probe(p, "a GOODBYE datagram names it");
}

/* Ask p's stream, if it has one, whether it still answers. */
void
peer_probe(struct peer *p, const char *why)
{
	if (p->stream != NULL)
		dialer->probe(p->stream, why);
}

/* The name of whoever opened stream s (we, or the peer). */
static const char *
peer_initiator(struct peer *p, bool outbound)
{
	return outbound ? self->name : p->name;
}

/*
 * Whether s and the live stream old are the two streams of peers that
 * dialed each other at once: opposite directions, the same boot, and s
 * started before old was up (give or take PEER_RACE_MS).
 */
static bool
peer_dials_crossed(const struct peer *p, const struct proto_hello *h,
    struct stream *s, bool outbound, struct stream *old)
{
	return dialer->outbound(old) != outbound && p->boot_id == h->boot_id &&
	    dialer->started(s) <= dialer->up_since(old) + PEER_RACE_MS;
}

/*
 * A stream finished its handshake with the peer described by h.  Returns
 * the peer, now UP with s as its stream, or NULL when s is refused: the
 * peer has a live stream, which stays, or there are PEER_MAX peers.
 *
 * If the two dials crossed, the stream whose initiator has the lower name
 * stays, and the lower-named peer closes the other once it has the one
 * that stays: the higher-named side has it by then (its handshake ends a
 * reply earlier there), so neither side is ever without a stream to the
 * other.  The higher-named side retires the other stream instead
 * (dialer->retire: it still serves, and is closed if the lower-named
 * peer does not close it in time); when that is s, *retired is set and
 * the peer returned, s not its stream.
 */
struct peer *
peer_attach(const struct proto_hello *h, struct stream *s, bool outbound,
    bool *retired)
{
	struct peer *p = peer_by_name(h->name);
	struct stream *old;
	struct seed *sd;

	*retired = false;
	if (p == NULL) {
		if (npeers >= PEER_MAX) {
			if (log_rate_ok(&peer_log_streams, loop_now_ms()))
				log_warnx("peer %s: %u peers known already; "
					  "refused",
				    h->name, PEER_MAX);
			return NULL;
		}
		p = xcalloc(1, sizeof *p);
		p->name = xstrdup(h->name);
		p->uri = xstrdup(h->uri);
		p->state = PEER_DOWN;
		peer_insert(p);
		npeers++;
	} else if ((old = p->stream) != NULL && old != s) {
		const char *a = peer_initiator(p, outbound);
		const char *b = peer_initiator(p, dialer->outbound(old));
		bool we_close = strcmp(self->name, p->name) < 0;

		if (!peer_dials_crossed(p, h, s, outbound, old)) {
			if (log_rate_ok(&peer_log_streams, loop_now_ms()))
				log_warnx(
				    "peer %s: a second stream (%s, boot "
				    "%016llx) refused; its live stream stays",
				    p->name, outbound ? "dialed" : "accepted",
				    (unsigned long long)h->boot_id);
			dialer->probe(old, "a second stream under its name");
			return NULL;
		}
		if (strcmp(a, b) >= 0) {
			if (we_close)
				return NULL;
			*retired = true;
			return p;
		}
		p->stream = NULL; /* replaced, not lost */
		if (we_close)
			dialer->close(old, "replaced: the dials crossed");
		else
			dialer->retire(old);
	}
	if (p->boot_id != 0 && p->boot_id != h->boot_id)
		log_info("peer %s restarted", p->name);
	free(p->uri);
	p->uri = xstrdup(h->uri);
	for (uint32_t i = 0; i < p->nexports; i++)
		exops->close(&p->exports[i]);
	free(p->exports);
	p->nexports = h->nexports;
	p->exports = xcalloc(h->nexports, sizeof *p->exports);
	for (uint32_t i = 0; i < h->nexports; i++) {
		struct export *ex = &p->exports[i];

		/* Requests carry the holder's id: keep its numbering. */
		ex->id = h->exports[i].id;
		ex->name = xstrdup(h->exports[i].name);
		ex->at = xstrdup(h->exports[i].at);
		ex->path = xstrdup("");
		ex->read_only = h->exports[i].read_only;
		ex->rootfd = -1;
	}
	p->boot_id = h->boot_id;
	p->uptime_ms = h->uptime_ms;
	p->since_ms = loop_now_ms();
	p->last_heard = p->since_ms;
	p->leaving = false;
	p->stream = s;
	p->epoch++;
	p->dglen = 0; /* its URI may have changed */
	TAILQ_FOREACH(sd, &seeds, entry)
	{
		if (sd->s == s || strcmp(sd->addr, p->uri) == 0) {
			sd->peer = p;
			sd->backoff_ms = SEED_BACKOFF_MIN_MS;
		}
	}
	peer_set_state(p, PEER_UP);
	return p;
}

/* The peer's stream s closed: the peer is down unless s was replaced. */
void
peer_stream_lost(struct peer *p, struct stream *s, const char *reason)
{
	struct seed *sd;

	if (p->stream != s)
		return;
	p->stream = NULL;
	log_info("peer %s: %s (%s)", p->name, p->leaving ? "left" : "lost",
	    reason);
	peer_set_state(p, PEER_DOWN);
	TAILQ_FOREACH(sd, &seeds, entry)
	if (sd->peer == p && !sd->dynamic)
		peer_seed_later(sd);
}

/* The peer said goodbye: it leaves, it is not lost. */
void
peer_leaving(struct peer *p)
{
	p->leaving = true;
}

/* A frame arrived from the peer. */
void
peer_heard(struct peer *p)
{
	p->last_heard = loop_now_ms();
}

/* A ping came back after rtt_us microseconds. */
void
peer_heard_ping(struct peer *p, uint64_t rtt_us)
{
	double ms = (double)rtt_us / 1000.0;

	p->rtt_ms = p->rtt_ms == 0 ? ms : 0.8 * p->rtt_ms + 0.2 * ms;
}

/* Free every peer (at exit). */
void
peer_free_all(void)
{
	struct peer *p;
	struct seed *sd;

	while ((sd = TAILQ_FIRST(&seeds)) != NULL) {
		TAILQ_REMOVE(&seeds, sd, entry);
		timer_wheel_del(loop_wheel(), &sd->retry);
		free(sd->addr);
		free(sd);
	}

	timer_wheel_del(loop_wheel(), &peer_sweep_timer);
	nseeds_dynamic = 0;
	while ((p = TAILQ_FIRST(&peers)) != NULL) {
		TAILQ_REMOVE(&peers, p, entry);
		for (uint32_t i = 0; i < p->nexports; i++)
			exops->close(&p->exports[i]);
		free(p->exports);
		free(p->name);
		free(p->uri);
		free(p);
	}
	self = NULL;
	npeers = 0;
	nlisteners = 0;
}
