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

enum stream_state {
	STREAM_CONNECTING, /* TCP connect in progress (initiator) */
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
	struct call_bucket calls[STREAM_BUCKETS]; /* waiting replies */
	unsigned ncalls;
	unsigned serving; /* requests on the workers */
	size_t reserved;  /* their frames and expected replies, bytes */
	unsigned refs;    /* serving + the stream itself */
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
	void (*say_bye)(struct stream *, const struct proto_req *);
	uint64_t (*new_id)(void);
	void (*frame_free)(void *); /* a received frame, done with */
};

/* hello.c */
extern struct log_rate hello_log_refused;

void hello_init(const struct stream_ops *);
void hello_body(struct proto_hello *);
bool hello_ok(struct stream *, const struct proto_hello *);
void hello_established(struct stream *, const struct proto_hello *);

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
