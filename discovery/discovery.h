/*
 * discovery.h - the discovery layer: the members of the union and the
 * addresses we dial (peer.c), the datagram socket that finds them and
 * carries traps (mcast.c), change notices (trap.c), the global clock
 * (clock.c) and answers to location requests (locate.c).
 *
 * The layer stands on the loop (daemon/loop.h), the log, the
 * configuration and the codecs of this folder.  Everything above it
 * (streams, calls, the export backend, the FUSE side) it reaches only
 * through the interfaces below, which the daemon registers at start:
 * a dialer (the transport), the export backend's open and close, peer
 * state listeners, a trap sink (what a change means for the caches)
 * and the lookups location requests need.
 */
#ifndef PUFS_DISCOVERY_H
#define PUFS_DISCOVERY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "config.h"
#include "proto.h"

struct config_export;
struct dgram;
struct export;
struct seed;
struct stream;

/* peer.c */

/*
 * A member of the union.  This daemon is a peer too (peer_self());
 * its exports are served locally, the others' over their streams.
 */
enum peer_state { PEER_UP, PEER_DOWN, PEER_STATE_MAX };

struct peer {
	char *name; /* owned */
	char *uri;  /* contact address HOST:PORT; owned */
	bool self;
	enum peer_state state;  /* changed only by peer_set_state() */
	struct export *exports; /* id == index; owned */
	uint32_t nexports;
	struct stream *stream; /* while UP (not for self) */
	uint64_t epoch;        /* bumped per stream: old handles are void */
	uint64_t boot_id;
	uint64_t uptime_ms;             /* as announced at handshake */
	uint64_t since_ms;              /* loop_now_ms() at handshake */
	uint64_t last_heard;            /* loop_now_ms() */
	double rtt_ms;                  /* smoothed ping round trip */
	bool leaving;                   /* said goodbye */
	struct sockaddr_storage dgaddr; /* unicast datagrams; 0 len: unset */
	socklen_t dglen;
	TAILQ_ENTRY(peer) entry; /* sorted by name */
};
TAILQ_HEAD(peer_list, peer);

extern struct peer_list peers;

/* What the peer table needs of the transport (daemon/stream.c). */
struct peer_dialer {
	int (*listen)(const struct sockaddr *, int);
	struct stream *(*connect)(const struct sockaddr *, int,
	    const char *addr, struct seed *);
	void (*close)(struct stream *, const char *reason);
	void (*retire)(struct stream *); /* not the peer's; serves a while */
	void (*probe)(struct stream *, const char *why);
	bool (*may_dial)(void);
	bool (*outbound)(const struct stream *);
	uint64_t (*started)(const struct stream *);
	uint64_t (*up_since)(const struct stream *);
};

/* What it needs of the export backend (daemon/export.c). */
struct peer_exports {
	int (*open)(struct export *, const struct config_export *, uint32_t id);
	void (*close)(struct export *);
};

/* Told of every state change of a peer, after it is made. */
typedef void (*peer_state_cb)(struct peer *, enum peer_state old);

void peer_init_self(const struct config *, const struct peer_exports *);
int peer_init_net(const struct config *, const struct peer_dialer *);
void peer_on_state(peer_state_cb);
void peer_free_all(void);
struct peer *peer_self(void);
struct peer *peer_by_uri(const char *uri);
const char *peer_state_name(enum peer_state);
uint64_t peer_boot_id(void);
void peer_format_addr(const struct sockaddr *, unsigned, char *, size_t);
struct peer *peer_attach(const struct proto_hello *, struct stream *,
    bool outbound, bool *retired);
void peer_stream_lost(struct peer *, struct stream *, const char *);
void peer_seed_lost(struct seed *, struct stream *);
void peer_probe(struct peer *, const char *why);
void peer_leaving(struct peer *);
void peer_heard(struct peer *);
void peer_heard_ping(struct peer *, uint64_t rtt_us);
bool peer_discovered(const char *name, const char *uri, uint64_t boot,
    bool dials_us);
void peer_said_goodbye(const char *name, uint64_t boot);

struct peer *peer_by_name(const char *);
bool peer_uri_numeric(const char *uri);
void peer_counts(unsigned *known, unsigned *addresses);
int peer_listen_addr(const struct config *, struct sockaddr_storage *,
    socklen_t *);
int peer_dgram_addr(struct peer *, struct sockaddr_storage *, socklen_t *);

/* mcast.c */

/* Told of every well-formed datagram of another peer. */
typedef void (*mcast_receive_cb)(const struct dgram *);

int mcast_init(const struct config *);
int mcast_init_unicast(const struct config *);
void mcast_leave(void);
void mcast_stats(uint64_t *sent, uint64_t *received, uint64_t *dropped);

/* Datagrams dropped by authentication (with a key), by reason. */
struct mcast_auth_stats {
	uint64_t mac;           /* no MAC or a wrong one */
	uint64_t replay;        /* a serial seen already */
	uint64_t window;        /* a timestamp outside the window */
	uint64_t first_contact; /* passed by the first-contact window */
	unsigned senders;       /* boots whose serials are followed */
};

bool mcast_auth_stats(struct mcast_auth_stats *);
void mcast_fill_header(struct dgram *, uint8_t type);
void mcast_send_bytes(const uint8_t *, size_t);
void mcast_on_receive(mcast_receive_cb);
void mcast_set_trap_seq(uint64_t);
void mcast_locate(uint64_t id, const char *upath);
void mcast_located(uint64_t id, const char *upath, const uint32_t *exports,
    const struct proto_attr *attrs, size_t n);

/* trap.c */

struct trap_stats {
	uint64_t noted, merged;      /* changes noted, merged in a batch */
	uint64_t sent, records_sent; /* TRAP datagrams and their records */
	uint64_t unsendable;         /* records too large: numbers skipped */
	uint64_t received, records_applied;
	uint64_t gaps, resyncs;
	uint64_t disk; /* changes seen on disk (inotify) */
};

/*
 * What a change means for the caches (the FUSE side implements it).
 * changed: path of export export_id of p changed (kind DGRAM_*; a data
 * change covers off, len); false if p has no such export.  forget_peer:
 * forget everything cached from p.
 */
struct trap_sink {
	bool (*changed)(struct peer *, uint8_t kind, uint32_t export_id,
	    const char *path, uint64_t off, uint64_t len);
	void (*forget_peer)(struct peer *);
};

/*
 * What traps need of this peer's own exports: the export and path of
 * an open handle (an owned copy, or NULL), and a change to note in the
 * journal of changes served, with its global time.
 */
struct trap_local {
	char *(*fh_path)(uint64_t fh, uint32_t owner, uint32_t *export_id);
	void (*noted)(uint32_t export_id, const char *path, uint64_t ns);
};

void trap_init(const struct config *, const struct trap_sink *,
    const struct trap_local *);
void trap_free(void);
void trap_note(const struct proto_req *, const struct proto_rep *,
    uint32_t owner);
void trap_note_disk(uint8_t kind, uint32_t export_id, const char *path);
void trap_serving(const struct proto_req *, uint32_t owner);
void trap_skip(void);
void trap_flush_now(void);
unsigned trap_senders(void);
void trap_stats(struct trap_stats *);

/* clock.c */

void clock_init(void);
uint64_t clock_local_ns(void);
uint64_t clock_global_ns(void);
void clock_sample(struct peer *, uint64_t t0, uint64_t t3, uint64_t remote);
void clock_status(double *offset, double *error, const char **reference);

/* locate.c */

/* The hits of our own exports at a path: n exports and their attrs. */
typedef void (*locate_found_cb)(void *arg, const uint32_t *exports,
    const struct proto_attr *attrs, size_t n);

/*
 * What answering and asking need of the union (daemon/find.c): lookup
 * finds what our exports hold at a union path and calls back once;
 * located takes another peer's answer to our request id.
 */
struct locate_ops {
	void (*lookup)(const char *upath, locate_found_cb, void *arg);
	void (*located)(struct peer *, uint64_t id, const uint32_t *exports,
	    const struct proto_attr *attrs, size_t n);
};

void locate_init(const struct locate_ops *);
uint64_t locate_served(void);

#endif
