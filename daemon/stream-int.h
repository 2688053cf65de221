/*
 * stream-int.h - what the files of a stream share: the stream itself
 * (stream.c), its handshake (hello.c), the requests of the other side
 * it serves (answer.c) and its heartbeat and probe (ping.c).  The files
 * below stream.c reach it only through the stream_ops it gives them at
 * stream_init(), so that no file calls back up into stream.c.  The rest
 * of the daemon sees pufs.h only.
 */
#ifndef PUFS_STREAM_INT_H
#define PUFS_STREAM_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pufs.h"

#define STREAM_BUCKETS 256

/*
 * Bytes one read of a stream's socket (or of its TLS session) fills:
 * libevent rounds a buffer chain, this and its header, up to 128 KiB,
 * which malloc serves from its heap (see io_init()).  A piece of 256 KiB
 * became a 512 KiB chain, mapped and unmapped by malloc each time, and
 * its page faults took a quarter of the reading daemon's time.
 */
#define STREAM_READ_PIECE ((128u << 10) - 256)

enum stream_state {
	STREAM_CONNECTING, /* TCP connect (and TLS) in progress (initiator) */
	STREAM_AUTH,       /* with a key: proving it, before HELLO */
	STREAM_HELLO,      /* handshake in progress */
	STREAM_UP,         /* attached to its peer */
	STREAM_DEAD,       /* closed; freed when unreferenced */
	STREAM_STATE_MAX
};

TAILQ_HEAD(call_bucket, call);

struct stream {
	uint32_t id; /* owner of the handles it opens; never 0 */
	enum stream_state state;
	bool outbound;           /* we are the initiator */
	uint64_t caps;           /* both ends' capabilities, PROTO_CAP_* */
	char *addr;              /* remote address, for logs; owned */
	struct bufferevent *bev; /* NULL once dead */
	struct peer *peer;       /* set when UP */
	struct seed *seed;       /* outbound: the address dialed */
	struct hello_auth *auth; /* with a key: its exchange (hello.c); owned */
	bool tls;                /* the bufferevent is TLS (encrypt = yes) */
	bool refused;            /* counted in hello_refused[] already */
	struct call_bucket calls[STREAM_BUCKETS]; /* waiting replies */
	unsigned ncalls;
	unsigned serving; /* requests on the workers */
	/* Requests by handle in service, in arrival order (answer.c). */
	TAILQ_HEAD(served_list, served) by_fh;
	unsigned parked; /* FSYNCs, SETATTRs held for earlier ones */
	size_t reserved; /* their frames and expected replies, bytes */
	unsigned refs;   /* serving + the stream itself */
	bool reading_paused;
	bool throttling;     /* we asked fs to stop reading the kernel */
	uint64_t started;    /* loop_now_ms() at accept or dial */
	uint64_t up_since;   /* loop_now_ms() at the end of the handshake */
	uint64_t last_heard; /* loop_now_ms() of the last frame */
	size_t out_at_beat;  /* ping_unacked() at the last heartbeat */
	uint64_t ping_id, ping_sent;
	uint64_t ping_t0;     /* clock_local_ns() at sending */
	uint64_t probe_id;    /* the probe's ping, 0: no probe pending */
	char *probe_why;      /* owned */
	struct timer hb;      /* heartbeat / handshake deadline */
	struct timer probe;   /* deadline of the probe's answer */
	struct event *resume; /* continue a batch-limited read */
	struct event *reaper; /* frees the dead stream */
	TAILQ_ENTRY(stream) entry;
};
TAILQ_HEAD(stream_list, stream);

/* stream.c, to the files below it: what they may do to a stream. */
struct stream_ops {
	void (*close)(struct stream *, const char *reason);
	void (*set_state)(struct stream *, enum stream_state);
	void (*flow)(struct stream *); /* after its load changed */
	void (*unref)(struct stream *);
	int (*send_req)(struct stream *, const struct proto_req *);
	void (*send_rep)(struct stream *, struct proto_rep *);
	/* A served reply, encoded in mem's buffer if its data sits there. */
	void (*send_served)(struct stream *, struct proto_rep *,
	    struct export_mem *);
	void (*say_bye)(struct stream *, const struct proto_req *);
	void (*push_out)(struct stream *); /* before a close: last words */
	void (*retire)(struct stream *);   /* lost crossed dials */
	uint64_t (*new_id)(void);
	void (*frame_free)(void *); /* a received frame, done with */
};

/* hello.c */
/* Why streams were refused before HELLO, counted for `pufs status`. */
enum hello_refusal {
	HELLO_REFUSED_NO_KEY,     /* the other side has no key, we have */
	HELLO_REFUSED_KEYLESS,    /* it has a key, we have none */
	HELLO_REFUSED_PROOF,      /* a proof failed: another key */
	HELLO_REFUSED_PROTOCOL,   /* a malformed or misplaced AUTH frame */
	HELLO_REFUSED_UNFINISHED, /* closed or timed out in the exchange */
	HELLO_REFUSED_TLS,        /* TLS failed, or on one side only */
	HELLO_REFUSED_MAX
};

extern struct log_rate hello_log_refused;
extern uint64_t hello_refused[HELLO_REFUSED_MAX];

void hello_init(const struct stream_ops *);
const char *hello_refusal_name(enum hello_refusal);
void hello_start(struct stream *);
int hello_auth(struct stream *, const uint8_t *frame, size_t len);
bool hello_tls_mismatch(struct stream *, const uint8_t *hdr);
void hello_tls_failed(struct stream *, const char *why);
void hello_auth_closed(struct stream *, const char *reason);
void hello_refused_reply(struct stream *, int error);
void hello_body(struct proto_hello *);
bool hello_ok(struct stream *, const struct proto_hello *);
void hello_established(struct stream *, const struct proto_hello *);

/* tls.c */
void tls_init(void (*read_more)(struct bufferevent *));
struct bufferevent *tls_bufferevent(int fd, bool outbound);
struct bufferevent *tls_socket(struct bufferevent *);
size_t tls_queued(struct bufferevent *);
void tls_opened(struct bufferevent *);
const char *tls_cipher(struct bufferevent *);
bool tls_failure(struct bufferevent *, char *buf, size_t len);
struct bufferevent *tls_push_out(struct bufferevent *);

/* answer.c */
extern struct log_rate answer_log_frames;

void answer_init(const struct stream_ops *, const struct stream_client *);
void answer_refuse(struct stream *, const uint8_t *hdr, int error);
int answer_request(struct stream *, uint8_t *frame, size_t len);

/* ping.c */
void ping_init(const struct stream_ops *);
unsigned ping_probe_ms(void);
int ping_send(struct stream *);
void ping_heartbeat(struct timer *, void *);
void ping_probe_expired(struct timer *, void *);

#endif /* PUFS_STREAM_INT_H */
