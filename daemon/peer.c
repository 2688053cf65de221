/*
 * peer.c - the members of the union.
 *
 * The list is kept sorted by peer name, because the lowest-named holder
 * of a merged directory supplies its attributes on every peer.  Only this
 * daemon itself is a member until peer streams are added; it is a peer
 * like the others, whose exports happen to be served in-process.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "pufs.h"

struct peer_list peers = TAILQ_HEAD_INITIALIZER(peers);
static struct peer *self;

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
	    !(hlen == 4 && strncmp(listen, "[::]", 4) == 0) && hlen != 0)
		return xstrdup(listen);
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

	TAILQ_FOREACH(q, &peers, entry) {
		if (strcmp(p->name, q->name) < 0) {
			TAILQ_INSERT_BEFORE(q, p, entry);
			return;
		}
	}
	TAILQ_INSERT_TAIL(&peers, p, entry);
}

/* Make this daemon's own peer and open its exports; dies on failure. */
void
peer_init_self(const struct config *cfg)
{
	uint32_t i;
	int rc;

	self = xcalloc(1, sizeof *self);
	self->name = xstrdup(cfg->name);
	self->uri = peer_self_uri(cfg->listen);
	self->self = true;
	self->state = PEER_UP;
	self->nexports = (uint32_t)cfg->nexports;
	self->exports = xcalloc(cfg->nexports, sizeof *self->exports);
	for (i = 0; i < self->nexports; i++) {
		rc = export_open(&self->exports[i], &cfg->exports[i], i);
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

/* The one place a peer's state changes; logs the transition. */
void
peer_set_state(struct peer *p, enum peer_state s)
{
	if (s >= PEER_STATE_MAX)
		fatalx("peer %s: bad state %d", p->name, s);
	if (p->state == s)
		return;
	log_info("peer %s: %s -> %s", p->name, peer_state_name(p->state),
	    peer_state_name(s));
	p->state = s;
}

/* Free every peer (at exit). */
void
peer_free_all(void)
{
	struct peer *p;

	while ((p = TAILQ_FIRST(&peers)) != NULL) {
		TAILQ_REMOVE(&peers, p, entry);
		for (uint32_t i = 0; i < p->nexports; i++)
			export_close(&p->exports[i]);
		free(p->exports);
		free(p->name);
		free(p->uri);
		free(p);
	}
	self = NULL;
}
