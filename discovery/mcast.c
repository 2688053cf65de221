/*
 * mcast.c - multicast membership: how peers find each other; and the
 * datagram socket that carries traps, in unicast mode too.
 *
 * With discovery = multicast (the default), the daemon joins the group
 * multicast_group:multicast_port (IPv4 or IPv6) and sends datagrams
 * (discovery/datagram.h): ANNOUNCE when it starts (three times, at 0,
 * 100 and 300 ms, since datagrams get lost), HEARTBEAT every `heartbeat`
 * seconds, GOODBYE when it leaves.  A peer heard of for the first time,
 * or heard again while it has no stream, is dialed at the URI it
 * announces (a seed made on the fly, see peer.c); the stream's handshake
 * then makes it UP, and its heartbeats over the stream keep it so.  A
 * newcomer's ANNOUNCE is answered with ours, so it need not wait for a
 * heartbeat to learn of us; as we dial it too, it waits a moment for
 * our stream before it dials us.  Anyone can send a datagram, so a datagram
 * only suggests: a GOODBYE makes us ask the peer's stream whether it
 * still answers (peer_said_goodbye), and the stream decides.  Traps
 * and location requests sit above the socket: they send through it and
 * register as receivers of what arrives (mcast_on_receive()).
 *
 * Our own datagrams come back (multicast loop is on, so several daemons
 * on one host find each other) and are recognised by name and boot id.
 * Malformed datagrams, and those whose peer name or URI breaks the
 * rules of proto_peer_name_ok() and proto_uri_ok(), are counted and
 * dropped (logged at most LOG_RATE_PER_SEC a second); they never reach
 * anything else.
 *
 * With a key (conf->key), every datagram we send carries a serial and a
 * MAC (discovery/dgram-auth.c), and every datagram that arrives is
 * judged by them before it is even decoded: one without a valid MAC, one
 * replayed, one whose timestamp is outside the window of our estimate of
 * the union's time is counted and dropped, so nothing is made from it.
 * A newcomer (no stream of its boot is up) may still be off by more than
 * the window, as its clock is not yet the union's: its ANNOUNCE and
 * HEARTBEAT pass within the wider first-contact window, since all they
 * can do is make us dial it, and the dial's handshake proves the secret.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "datagram.h"
#include "dgram-auth.h"
#include "discovery.h"
#include "export.h" /* struct export: our exports, announced */
#include "log.h"
#include "loop.h"

#define MCAST_ANNOUNCE_REPEATS 3
#define MCAST_RECEIVERS 4

static struct {
	int fd;
	bool unicast; /* to each peer, not to a group */
	struct event *ev;
	struct sockaddr_storage group; /* where we send */
	socklen_t grouplen;
	struct timer beat;
	int announces; /* ANNOUNCEs sent at start */
	uint64_t sent, received, dropped;
	struct log_rate log_bad;  /* malformed datagrams */
	struct log_rate log_auth; /* datagrams failing authentication */
	uint64_t trap_seq;        /* our last TRAP's number (trap.c) */
	struct dgram_auth *auth;  /* with a key: MACs and replay checks */
	uint64_t serial;          /* our last datagram's serial */
	mcast_receive_cb receivers[MCAST_RECEIVERS];
	unsigned nreceivers;
} mc = { .fd = -1,
	.log_bad = LOG_RATE_INIT("malformed datagrams"),
	.log_auth = LOG_RATE_INIT("unauthenticated datagrams") };

/* Fill the common header of a datagram of ours. */
void
mcast_fill_header(struct dgram *d, uint8_t type)
{
	struct peer *self = peer_self();

	memset(d, 0, sizeof *d);
	d->type = type;
	d->boot_id = peer_boot_id();
	d->seq = mc.trap_seq;
	d->time = (int64_t)clock_global_ns();
	d->name = self->name;
	d->uri = self->uri;
	d->uptime_ms = (uint64_t)(loop_uptime() * 1000);
	if (mc.auth != NULL) {
		d->flags |= DGRAM_FLAG_MAC;
		d->serial = ++mc.serial;
	}
}

/*
 * Send an encoded datagram to the group (unicast: to every live peer),
 * with a key sealed with its MAC first.
 */
void
mcast_send_bytes(const uint8_t *bytes, size_t len)
{
	struct sockaddr_storage ss;
	uint8_t buf[DGRAM_MAX];
	socklen_t sslen;
	struct peer *p;

	if (mc.fd == -1 || len > sizeof buf)
		return;
	memcpy(buf, bytes, len);
	if (mc.auth != NULL && dgram_auth_seal(mc.auth, buf, len) != 0) {
		log_warnx("multicast: a datagram without the MAC flag; not "
			  "sent");
		return;
	}
	if (!mc.unicast) {
		if (sendto(mc.fd, buf, len, 0, (struct sockaddr *)&mc.group,
			mc.grouplen) == -1)
			log_debug("multicast: send: %s", strerror(errno));
		else
			mc.sent++;
		return;
	}
	TAILQ_FOREACH(p, &peers, entry)
	{
		if (p->self || p->state != PEER_UP ||
		    peer_dgram_addr(p, &ss, &sslen) == -1)
			continue;
		if (sendto(mc.fd, buf, len, 0, (struct sockaddr *)&ss, sslen) ==
		    -1)
			log_debug("datagram to %s: %s", p->name,
			    strerror(errno));
		else
			mc.sent++;
	}
}

/* Encode and send one datagram to the group. */
static void
mcast_send(struct dgram *d)
{
	uint8_t buf[DGRAM_MAX];
	size_t len;
	int rc;

	if ((rc = dgram_encode(d, buf, sizeof buf, &len)) != 0) {
		log_warnx("multicast: cannot encode %s: %s",
		    dgram_type_name(d->type), strerror(-rc));
		return;
	}
	mcast_send_bytes(buf, len);
}

/* Ask the group who holds union path upath (request id). */
void
mcast_locate(uint64_t id, const char *upath)
{
	struct dgram d;

	mcast_fill_header(&d, DGRAM_LOCATE);
	d.req_id = id;
	d.path = upath;
	mcast_send(&d);
}

/* Answer request id: what we hold at upath (n hits, maybe none). */
void
mcast_located(uint64_t id, const char *upath, const uint32_t *exports,
    const struct proto_attr *attrs, size_t n)
{
	struct dgram_hit *hits = xcalloc(n + 1, sizeof *hits);
	struct dgram d;

	for (size_t i = 0; i < n; i++)
		hits[i] = (struct dgram_hit){ exports[i], attrs[i] };
	mcast_fill_header(&d, DGRAM_LOCATED);
	d.req_id = id;
	d.path = upath;
	d.hits = hits;
	d.nhits = n;
	mcast_send(&d);
	free(hits);
}

/* Send our ANNOUNCE (with as many exports as fit). */
static void
mcast_announce(bool answer)
{
	struct peer *self = peer_self();
	struct proto_export *ex;
	struct dgram d;
	uint8_t buf[DGRAM_MAX];
	size_t len, n = self->nexports;

	ex = xcalloc(n + 1, sizeof *ex);
	for (size_t i = 0; i < n; i++) {
		ex[i].id = self->exports[i].id;
		ex[i].name = self->exports[i].name;
		ex[i].at = self->exports[i].at;
		ex[i].read_only = self->exports[i].read_only;
	}
	mcast_fill_header(&d, DGRAM_ANNOUNCE);
	d.aflags = answer ? DGRAM_ANNOUNCE_ANSWER : 0;
	d.exports = ex;
	/* The exports are a courtesy (the handshake carries them all). */
	for (d.nexports = n;
	     d.nexports > 0 && dgram_encode(&d, buf, sizeof buf, &len) != 0;
	     d.nexports--)
		d.aflags |= DGRAM_ANNOUNCE_PARTIAL;
	mcast_send(&d);
	free(ex);
}

/* The heartbeat timer: ANNOUNCE a few times at start, then HEARTBEAT. */
static void
mcast_beat(struct timer *t, void *arg)
{
	static const uint64_t start_ms[MCAST_ANNOUNCE_REPEATS] = { 0, 100,
		300 };
	struct dgram d;
	uint64_t next;

	(void)t;
	(void)arg;
	if (mc.announces < MCAST_ANNOUNCE_REPEATS) {
		mcast_announce(false);
		if (++mc.announces < MCAST_ANNOUNCE_REPEATS)
			next = start_ms[mc.announces] -
			    start_ms[mc.announces - 1];
		else
			next = (uint64_t)(conf->heartbeat * 1000);
	} else {
		mcast_fill_header(&d, DGRAM_HEARTBEAT);
		mcast_send(&d);
		next = (uint64_t)(conf->heartbeat * 1000);
	}
	timer_wheel_add(loop_wheel(), &mc.beat, loop_now_ms() + next);
	loop_wheel_kick();
}

/* Hand every datagram of another peer to fn too (traps, locate.c). */
void
mcast_on_receive(mcast_receive_cb fn)
{
	if (mc.nreceivers == MCAST_RECEIVERS)
		fatalx("multicast: more than %d receivers", MCAST_RECEIVERS);
	mc.receivers[mc.nreceivers++] = fn;
}

/* The number of our last TRAP, from now on in every datagram we send. */
void
mcast_set_trap_seq(uint64_t seq)
{
	mc.trap_seq = seq;
}

/* Whether no stream of boot boot_id is up: its sender is new to us. */
static bool
mcast_newcomer(uint64_t boot, void *arg)
{
	struct peer *p;

	(void)arg;
	TAILQ_FOREACH(p, &peers, entry)
	if (!p->self && p->state == PEER_UP && p->boot_id == boot)
		return false;
	return true;
}

/*
 * With a key: whether the n-byte datagram buf from `from` passes the
 * MAC, window and replay checks; the others are counted and dropped,
 * before anything is made from them.
 */
static bool
mcast_authentic(const uint8_t *buf, size_t n,
    const struct sockaddr_storage *from, socklen_t fromlen)
{
	enum dgram_auth_verdict v;
	char addr[128];

	if (mc.auth == NULL)
		return true;
	v = dgram_auth_check(mc.auth, buf, n, (int64_t)clock_global_ns(),
	    mcast_newcomer, NULL);
	if (v == DGRAM_AUTH_OK || v == DGRAM_AUTH_FIRST)
		return true;
	mc.dropped++;
	if (log_rate_ok(&mc.log_auth, loop_now_ms())) {
		peer_format_addr((const struct sockaddr *)from, fromlen, addr,
		    sizeof addr);
		log_warnx("multicast: datagram from %s (%zu bytes): %s; "
			  "dropped",
		    addr, n, dgram_auth_verdict_name(v));
	}
	return false;
}

/* A datagram arrived. */
static void
mcast_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sockaddr_storage from;
	socklen_t fromlen;
	uint8_t buf[DGRAM_MAX + 1];
	char addr[128];
	struct dgram d;
	bool answer;
	ssize_t n;
	int rc;

	(void)what;
	(void)arg;
	for (int i = 0; i < 64; i++) {
		fromlen = sizeof from;
		n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from,
		    &fromlen);
		if (n == -1) {
			if (errno != EAGAIN && errno != EINTR)
				log_warn("multicast: receive");
			return;
		}
		if (!mcast_authentic(buf, (size_t)n, &from, fromlen))
			continue;
		if ((rc = dgram_decode(buf, (size_t)n, &d)) != 0) {
			mc.dropped++;
			if (!log_rate_ok(&mc.log_bad, loop_now_ms()))
				continue;
			peer_format_addr((struct sockaddr *)&from, fromlen,
			    addr, sizeof addr);
			log_warnx("multicast: malformed datagram from %s (%zd "
				  "bytes): %s; dropped",
			    addr, n, strerror(-rc));
			continue;
		}
		if (!proto_peer_name_ok(d.name) || !proto_uri_ok(d.uri)) {
			mc.dropped++;
			if (log_rate_ok(&mc.log_bad, loop_now_ms())) {
				peer_format_addr((struct sockaddr *)&from,
				    fromlen, addr, sizeof addr);
				log_warnx(
				    "multicast: %s from %s names peer "
				    "\"%s\" at \"%s\": not a valid name and "
				    "URI; dropped",
				    dgram_type_name(d.type), addr,
				    log_escape(d.name), log_escape(d.uri));
			}
			dgram_clear(&d);
			continue;
		}
		if (d.boot_id == peer_boot_id() &&
		    strcmp(d.name, peer_self()->name) == 0) {
			dgram_clear(&d);
			continue; /* our own, looped back */
		}
		mc.received++;
		for (unsigned r = 0; r < mc.nreceivers; r++)
			mc.receivers[r](&d);
		switch (d.type) {
		case DGRAM_ANNOUNCE:
		case DGRAM_HEARTBEAT:
			answer = d.type == DGRAM_ANNOUNCE &&
			    (d.aflags & DGRAM_ANNOUNCE_ANSWER);
			if (peer_discovered(d.name, d.uri, d.boot_id, answer) &&
			    d.type == DGRAM_ANNOUNCE && !answer)
				mcast_announce(true);
			break;
		case DGRAM_GOODBYE:
			peer_said_goodbye(d.name, d.boot_id);
			break;
		case DGRAM_TRAP:
		case DGRAM_LOCATE:
		case DGRAM_LOCATED:
			break; /* the receivers' (trap.c, locate.c) */
		default:
			log_debug("multicast: %s from %s ignored",
			    dgram_type_name(d.type), d.name);
			break;
		}
		dgram_clear(&d);
	}
}

/* With a key: the MAC context of our datagrams; 0 or -1. */
static int
mcast_auth_init(const struct config *cfg)
{
	if (cfg->key == NULL)
		return 0;
	if ((mc.auth = dgram_auth_new(cfg->key, cfg->key_len)) == NULL) {
		log_warnx("datagrams: cannot set up the MAC (libcrypto)");
		return -1;
	}
	log_info("datagrams: HMAC-SHA256 with the key of %s", cfg->key_file);
	return 0;
}

/* Join the group on the configured interface; 0 or -1. */
static int
mcast_join(const struct config *cfg, unsigned ifindex)
{
	int one = 1, ttl = cfg->multicast_ttl;

	if (mc.group.ss_family == AF_INET) {
		struct sockaddr_in *g = (struct sockaddr_in *)&mc.group;
		struct ip_mreqn mr = { .imr_multiaddr = g->sin_addr,
			.imr_ifindex = (int)ifindex };

		if (setsockopt(mc.fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr,
			sizeof mr) == -1 ||
		    setsockopt(mc.fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl,
			sizeof ttl) == -1 ||
		    setsockopt(mc.fd, IPPROTO_IP, IP_MULTICAST_LOOP, &one,
			sizeof one) == -1)
			return -1;
		if (ifindex != 0 &&
		    setsockopt(mc.fd, IPPROTO_IP, IP_MULTICAST_IF, &mr,
			sizeof mr) == -1)
			return -1;
		return 0;
	}
	struct sockaddr_in6 *g6 = (struct sockaddr_in6 *)&mc.group;
	struct ipv6_mreq mr6 = { .ipv6mr_multiaddr = g6->sin6_addr,
		.ipv6mr_interface = ifindex };

	if (setsockopt(mc.fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &mr6,
		sizeof mr6) == -1 ||
	    setsockopt(mc.fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &ttl,
		sizeof ttl) == -1 ||
	    setsockopt(mc.fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &one,
		sizeof one) == -1)
		return -1;
	if (ifindex != 0 &&
	    setsockopt(mc.fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &ifindex,
		sizeof ifindex) == -1)
		return -1;
	g6->sin6_scope_id = ifindex;
	return 0;
}

/* Open the multicast socket and start announcing; 0 or -1. */
int
mcast_init(const struct config *cfg)
{
	struct sockaddr_storage bindaddr = { 0 };
	unsigned ifindex = 0;
	int one = 1;

	if (mcast_auth_init(cfg) == -1)
		return -1;
	memset(&mc.group, 0, sizeof mc.group);
	if (inet_pton(AF_INET, cfg->multicast_group,
		&((struct sockaddr_in *)&mc.group)->sin_addr) == 1) {
		struct sockaddr_in *g = (struct sockaddr_in *)&mc.group;

		g->sin_family = AF_INET;
		g->sin_port = htons(cfg->multicast_port);
		mc.grouplen = sizeof *g;
		/* Bound to the group: only its datagrams arrive. */
		memcpy(&bindaddr, g, sizeof *g);
	} else if (inet_pton(AF_INET6, cfg->multicast_group,
		       &((struct sockaddr_in6 *)&mc.group)->sin6_addr) == 1) {
		struct sockaddr_in6 *g6 = (struct sockaddr_in6 *)&mc.group;
		struct sockaddr_in6 *b6 = (struct sockaddr_in6 *)&bindaddr;

		g6->sin6_family = AF_INET6;
		g6->sin6_port = htons(cfg->multicast_port);
		mc.grouplen = sizeof *g6;
		b6->sin6_family = AF_INET6;
		b6->sin6_port = g6->sin6_port;
		b6->sin6_addr = g6->sin6_addr;
	} else {
		log_warnx("multicast group %s: not an address",
		    cfg->multicast_group);
		return -1;
	}
	if (cfg->multicast_interface != NULL &&
	    (ifindex = if_nametoindex(cfg->multicast_interface)) == 0) {
		log_warn("multicast interface %s", cfg->multicast_interface);
		return -1;
	}
	mc.fd = socket(mc.group.ss_family,
	    SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (mc.fd == -1 ||
	    setsockopt(mc.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ==
		-1 ||
	    setsockopt(mc.fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) ==
		-1 ||
	    bind(mc.fd, (struct sockaddr *)&bindaddr, mc.grouplen) == -1 ||
	    mcast_join(cfg, ifindex) == -1) {
		log_warn("multicast %s port %u", cfg->multicast_group,
		    cfg->multicast_port);
		if (mc.fd != -1)
			close(mc.fd);
		mc.fd = -1;
		return -1;
	}
	mc.ev = event_new(loop_base, mc.fd, EV_READ | EV_PERSIST, mcast_read_cb,
	    NULL);
	if (mc.ev == NULL || event_add(mc.ev, NULL) == -1)
		fatalx("multicast: cannot watch the socket");
	timer_init(&mc.beat, mcast_beat, NULL);
	mcast_beat(&mc.beat, NULL);
	log_info("multicast discovery on %s port %u%s%s", cfg->multicast_group,
	    cfg->multicast_port, cfg->multicast_interface ? " via " : "",
	    cfg->multicast_interface ? cfg->multicast_interface : "");
	return 0;
}

/*
 * Unicast mode: the same datagrams (heartbeats carrying trap numbers,
 * traps, goodbye) go to each live peer's address, on the UDP port of the
 * same number as its TCP listener.
 */
int
mcast_init_unicast(const struct config *cfg)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (peer_listen_addr(cfg, &ss, &len) == -1 ||
	    mcast_auth_init(cfg) == -1)
		return -1;
	mc.unicast = true;
	mc.fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (mc.fd == -1 || bind(mc.fd, (struct sockaddr *)&ss, len) == -1) {
		log_warn("datagrams on %s", cfg->listen);
		if (mc.fd != -1)
			close(mc.fd);
		mc.fd = -1;
		return -1;
	}
	mc.ev = event_new(loop_base, mc.fd, EV_READ | EV_PERSIST, mcast_read_cb,
	    NULL);
	if (mc.ev == NULL || event_add(mc.ev, NULL) == -1)
		fatalx("datagrams: cannot watch the socket");
	timer_init(&mc.beat, mcast_beat, NULL);
	mc.announces = MCAST_ANNOUNCE_REPEATS; /* nobody to announce to */
	mcast_beat(&mc.beat, NULL);
	log_info("unicast discovery; datagrams on %s", cfg->listen);
	return 0;
}

/* Say goodbye to the group and close the socket. */
void
mcast_leave(void)
{
	struct dgram d;

	if (mc.fd == -1)
		return;
	mcast_fill_header(&d, DGRAM_GOODBYE);
	mcast_send(&d);
	timer_wheel_del(loop_wheel(), &mc.beat);
	event_free(mc.ev);
	close(mc.fd);
	mc.fd = -1;
	dgram_auth_free(mc.auth);
	mc.auth = NULL;
}

/* Datagram counters for status. */
void
mcast_stats(uint64_t *sent, uint64_t *received, uint64_t *dropped)
{
	*sent = mc.sent;
	*received = mc.received;
	*dropped = mc.dropped;
}

/* Authentication counters for status; false without a key. */
bool
mcast_auth_stats(struct mcast_auth_stats *st)
{
	struct dgram_auth_stats a;

	memset(st, 0, sizeof *st);
	if (mc.auth == NULL)
		return false;
	dgram_auth_stats(mc.auth, &a);
	st->mac = a.mac;
	st->replay = a.replay;
	st->window = a.window;
	st->first_contact = a.first_contact;
	st->senders = a.senders;
	return true;
}
