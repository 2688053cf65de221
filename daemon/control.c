/*
 * control.c - the control socket: `pufs status` asks, the daemon answers.
 *
 * A unix stream socket at control_socket.  A client sends one line,
 * "status" or "status json", and gets the report; the daemon closes the
 * stream once it is written.  "debug advance MS" moves the daemon's clock
 * (loop_advance()); it is refused unless -o debug.time_control is on.  A client
 * that says nothing is dropped after a few seconds, and a line longer than 256
 * bytes is refused, so a stuck or hostile client never holds anything.  A
 * socket file left by a dead daemon is replaced; one a live daemon answers on
 * is not.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "cluster.h"
#include "locktab.h"
#include "pufs.h"

#define CONTROL_TIMEOUT_S 5
#define CONTROL_MAX_LINE 256
#define CONTROL_MAX_ADVANCE_MS (1000ULL * 86400 * 365)

static struct evconnlistener *control_listener;
static char *control_path;

/* The length of the UTF-8 sequence at s, 0 if it is not valid. */
static size_t
control_utf8_len(const unsigned char *s)
{
	size_t n = s[0] >= 0xc2 && s[0] <= 0xdf ? 2
	    : s[0] >= 0xe0 && s[0] <= 0xef      ? 3
	    : s[0] >= 0xf0 && s[0] <= 0xf4      ? 4
						: 0;

	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	/* No overlong forms, surrogates or code points past U+10FFFF. */
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) ||
	    (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
		return 0;
	return n;
}

/*
 * Append s as a JSON string.  Names come from peers: control characters
 * are escaped and bytes that are not UTF-8 become U+FFFD, so the output
 * is always valid JSON.
 */
static void
control_json_str(struct evbuffer *b, const char *s)
{
	evbuffer_add(b, "\"", 1);
	while (*s) {
		unsigned char ch = (unsigned char)*s;
		size_t n;

		if (ch == '"' || ch == '\\')
			evbuffer_add_printf(b, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			evbuffer_add_printf(b, "\\u%04x", ch);
		else if (ch < 0x80)
			evbuffer_add(b, s, 1);
		else if ((n = control_utf8_len((const unsigned char *)s)) > 0) {
			evbuffer_add(b, s, n);
			s += n;
			continue;
		} else
			evbuffer_add_printf(b, "\\ufffd");
		s++;
	}
	evbuffer_add(b, "\"", 1);
}

/* The TLS state of p's stream: its cipher, "none" or "off" (no stream). */
static const char *
control_tls(const struct peer *p)
{
	const char *c;

	if (p->stream == NULL)
		return "off";
	c = stream_tls_cipher(p->stream);
	return c != NULL ? c : "none";
}

/* The data path's part of the JSON report: the block cache, write-back. */
static void
control_io_json(struct evbuffer *b)
{
	struct block_cache_stats bc;
	struct lock_stats ls;
	struct locktab_stats lts;
	struct io_stats st;

	io_stats(&st, &bc);
	evbuffer_add_printf(b,
	    "\"data\":{\"blocks\":%llu,\"bytes\":%llu,"
	    "\"clean_blocks\":%llu,\"dirty_blocks\":%llu,"
	    "\"dirty_bytes\":%llu,\"budget\":%llu,\"written_back\":%llu,"
	    "\"writeback_frames\":%llu,\"writeback_errors\":%llu,"
	    "\"readahead_hits\":%llu,\"readahead_misses\":%llu,"
	    "\"read_hits\":%llu,\"read_misses\":%llu,"
	    "\"read_bypass\":%llu,\"write_waits\":%llu,"
	    "\"fsync_behind\":%llu,\"fsync_after\":%llu,"
	    "\"setattr_behind\":%llu,\"setattr_deferred\":%llu,"
	    "\"evicted\":%llu,\"invalidated\":%llu},",
	    (unsigned long long)bc.blocks, (unsigned long long)bc.bytes,
	    (unsigned long long)bc.clean_blocks,
	    (unsigned long long)bc.dirty_blocks,
	    (unsigned long long)bc.dirty_bytes,
	    (unsigned long long)conf->cache_size,
	    (unsigned long long)st.written_back,
	    (unsigned long long)st.wb_frames, (unsigned long long)st.wb_errors,
	    (unsigned long long)st.ra_hits, (unsigned long long)st.ra_misses,
	    (unsigned long long)st.read_hits,
	    (unsigned long long)st.read_misses,
	    (unsigned long long)st.read_bypass,
	    (unsigned long long)st.write_waits,
	    (unsigned long long)st.fsync_behind,
	    (unsigned long long)st.fsync_after,
	    (unsigned long long)st.setattr_behind,
	    (unsigned long long)st.setattr_deferred,
	    (unsigned long long)bc.evicted, (unsigned long long)bc.invalidated);
	lock_stats(&ls);
	locktab_stats(&lts);
	evbuffer_add_printf(b,
	    "\"locks\":{\"granted\":%llu,\"kept\":%llu,\"local\":%llu,"
	    "\"borrowed\":%llu,\"returned\":%llu,\"served\":%llu,"
	    "\"lent\":%llu,\"recalled\":%llu},",
	    (unsigned long long)ls.granted, (unsigned long long)ls.kept,
	    (unsigned long long)ls.local, (unsigned long long)ls.borrowed,
	    (unsigned long long)ls.returned, (unsigned long long)lts.served,
	    (unsigned long long)lts.lent, (unsigned long long)lts.recalled);
}

/* The report as one JSON object. */
static void
control_status_json(struct evbuffer *b)
{
	struct peer *self = peer_self(), *p;
	uint64_t msent, mrecv, mdrop, moves, mbytes, mfailed;
	struct worker_stats ws;
	struct trap_stats ts;
	struct meta_cache_stats mc;
	uint64_t lfull, ldelta;
	struct locate_stats ls;
	struct union_check_stats cs;
	struct mcast_auth_stats as;
	unsigned long req, inflight;
	unsigned known, addrs;
	bool first = true, auth;
	double off, err;
	const char *ref;

	worker_stats(&ws);
	trap_stats(&ts);
	fs_stats(&req, &inflight);
	evbuffer_add_printf(b, "{\"name\":");
	control_json_str(b, self->name);
	evbuffer_add_printf(b, ",\"uri\":");
	control_json_str(b, self->uri);
	clock_status(&off, &err, &ref);
	evbuffer_add_printf(b, ",\"boot_id\":\"%016llx\"",
	    (unsigned long long)peer_boot_id());
	evbuffer_add_printf(b,
	    ",\"version\":\"%s\",\"uptime\":%.3f,"
	    "\"clock\":{\"offset\":%.6f,\"error\":%.6f,\"reference\":",
	    PUFS_VERSION, loop_uptime(), off, err);
	control_json_str(b, ref);
	evbuffer_add_printf(b, "},\"exports\":[");
	for (uint32_t i = 0; i < self->nexports; i++) {
		evbuffer_add_printf(b, "%s{\"name\":", i ? "," : "");
		control_json_str(b, self->exports[i].name);
		evbuffer_add_printf(b, ",\"path\":");
		control_json_str(b, self->exports[i].path);
		evbuffer_add_printf(b, ",\"at\":");
		control_json_str(b, self->exports[i].at);
		evbuffer_add_printf(b, ",\"read_only\":%s}",
		    self->exports[i].read_only ? "true" : "false");
	}
	evbuffer_add_printf(b, "],\"peers\":[");
	TAILQ_FOREACH(p, &peers, entry)
	{
		if (p->self)
			continue;
		evbuffer_add_printf(b, "%s{\"name\":", first ? "" : ",");
		control_json_str(b, p->name);
		evbuffer_add_printf(b, ",\"uri\":");
		control_json_str(b, p->uri);
		evbuffer_add_printf(b,
		    ",\"state\":\"%s\",\"rtt_ms\":%.3f,"
		    "\"last_heard_s\":%.3f,\"exports\":%u,\"tls\":\"%s\"}",
		    peer_state_name(p->state), p->rtt_ms,
		    (double)(loop_now_ms() - p->last_heard) / 1000.0,
		    p->nexports, control_tls(p));
		first = false;
	}
	mcast_stats(&msent, &mrecv, &mdrop);
	peer_counts(&known, &addrs);
	evbuffer_add_printf(b, "],\"discovery\":{\"mode\":\"%s\",\"group\":",
	    conf->discovery == DISCOVERY_MULTICAST ? "multicast" : "unicast");
	control_json_str(b, conf->multicast_group);
	evbuffer_add_printf(b,
	    ",\"port\":%u,\"sent\":%llu,\"received\":%llu,"
	    "\"dropped\":%llu,\"peers_known\":%u,\"addresses\":%u,"
	    "\"trap_senders\":%u",
	    conf->multicast_port, (unsigned long long)msent,
	    (unsigned long long)mrecv, (unsigned long long)mdrop, known, addrs,
	    trap_senders());
	auth = mcast_auth_stats(&as);
	evbuffer_add_printf(b,
	    ",\"auth\":%s,\"dropped_mac\":%llu,\"dropped_replay\":%llu,"
	    "\"dropped_window\":%llu,\"first_contact\":%llu",
	    auth ? "true" : "false", (unsigned long long)as.mac,
	    (unsigned long long)as.replay, (unsigned long long)as.window,
	    (unsigned long long)as.first_contact);
	dircache_stats(&mc);
	evbuffer_add_printf(b,
	    "},\"cache\":{\"entries\":%llu,\"bytes\":%llu,"
	    "\"hits\":%llu,\"misses\":%llu,\"stale_hits\":%llu,"
	    "\"expired\":%llu,\"evicted\":%llu,\"budget\":%llu},",
	    (unsigned long long)mc.entries, (unsigned long long)mc.bytes,
	    (unsigned long long)mc.hits, (unsigned long long)mc.misses,
	    (unsigned long long)mc.stale_hits, (unsigned long long)mc.expired,
	    (unsigned long long)mc.evicted,
	    (unsigned long long)(conf->cache_size / 4));
	find_stats(&ls);
	evbuffer_add_printf(b,
	    "\"locate\":{\"sent\":%llu,\"answers\":%llu,"
	    "\"late\":%llu,\"fallbacks\":%llu,\"served\":%llu},",
	    (unsigned long long)ls.sent, (unsigned long long)ls.answers,
	    (unsigned long long)ls.late, (unsigned long long)ls.fallbacks,
	    (unsigned long long)ls.served);
	export_list_stats(&lfull, &ldelta);
	evbuffer_add_printf(b, "\"listings\":{\"full\":%llu,\"delta\":%llu},",
	    (unsigned long long)lfull, (unsigned long long)ldelta);
	control_io_json(b);
	stream_status(b, true);
	cluster_status(b, true);
	union_check_stats(&cs);
	evbuffer_add_printf(b,
	    "\"checks\":{\"done\":%llu,\"local\":%llu,\"calls\":%llu},",
	    (unsigned long long)cs.done, (unsigned long long)cs.local,
	    (unsigned long long)cs.calls);
	move_stats(&moves, &mbytes, &mfailed);
	evbuffer_add_printf(b,
	    "\"moves\":{\"done\":%llu,\"bytes\":%llu,"
	    "\"failed\":%llu},",
	    (unsigned long long)moves, (unsigned long long)mbytes,
	    (unsigned long long)mfailed);
	evbuffer_add_printf(b,
	    "\"traps\":{\"sent\":%llu,"
	    "\"records_sent\":%llu,\"noted\":%llu,\"merged\":%llu,"
	    "\"unsendable\":%llu,\"received\":%llu,\"records_applied\":%llu,"
	    "\"gaps\":%llu,\"resyncs\":%llu,\"disk\":%llu},"
	    "\"inodes\":%zu,\"open_files\":%u,\"ops\":{",
	    (unsigned long long)ts.sent, (unsigned long long)ts.records_sent,
	    (unsigned long long)ts.noted, (unsigned long long)ts.merged,
	    (unsigned long long)ts.unsendable, (unsigned long long)ts.received,
	    (unsigned long long)ts.records_applied, (unsigned long long)ts.gaps,
	    (unsigned long long)ts.resyncs, (unsigned long long)ts.disk,
	    node_count(), export_open_handles());
	first = true;
	for (int t = PROTO_HELLO; t < PROTO_TYPE_MAX; t++) {
		if (stats.ops[t] == 0)
			continue;
		evbuffer_add_printf(b, "%s\"%s\":%lu", first ? "" : ",",
		    proto_type_name(t), stats.ops[t]);
		first = false;
	}
	evbuffer_add_printf(b, "},\"fuse_ops\":{");
	first = true;
	for (int i = 0; i < kernel_nops(); i++) {
		const char *name;
		unsigned long k = kernel_op_count(i, &name);

		if (k == 0)
			continue;
		evbuffer_add_printf(b, "%s\"%s\":%lu", first ? "" : ",", name,
		    k);
		first = false;
	}
	evbuffer_add_printf(b,
	    "},\"fuse\":{\"requests\":%lu,"
	    "\"calls_in_flight\":%lu,\"timeouts\":%lu},"
	    "\"workers\":{\"threads\":%u,\"busy\":%u,\"queued\":%u,"
	    "\"completed\":%lu,\"max_queue_wait_us\":%lu},"
	    "\"loop\":{\"max_lag_us\":%lu}}\n",
	    req, inflight, stats.call_timeouts, ws.threads, ws.busy, ws.queued,
	    ws.completed, ws.max_wait_us, stats.loop_lag_max_us);
}

/* The data path's lines of the report for people. */
static void
control_io_text(struct evbuffer *b)
{
	struct block_cache_stats bc;
	struct io_stats st;

	io_stats(&st, &bc);
	evbuffer_add_printf(b,
	    "data:     %llu blocks, %llu bytes clean, %llu dirty, "
	    "budget %llu; read-ahead %llu hits, %llu misses\n"
	    "written:  %llu bytes back in %llu frames, %llu errors, "
	    "%llu writes waited for room; fsync %llu behind the writes, "
	    "%llu after; setattr %llu behind, %llu of them deferred\n",
	    (unsigned long long)bc.blocks,
	    (unsigned long long)(bc.clean_blocks * conf->block_size),
	    (unsigned long long)bc.dirty_bytes,
	    (unsigned long long)conf->cache_size,
	    (unsigned long long)st.ra_hits, (unsigned long long)st.ra_misses,
	    (unsigned long long)st.written_back,
	    (unsigned long long)st.wb_frames, (unsigned long long)st.wb_errors,
	    (unsigned long long)st.write_waits,
	    (unsigned long long)st.fsync_behind,
	    (unsigned long long)st.fsync_after,
	    (unsigned long long)st.setattr_behind,
	    (unsigned long long)st.setattr_deferred);
}

/* The report for people. */
static void
control_status_text(struct evbuffer *b)
{
	struct peer *self = peer_self(), *p;
	uint64_t msent, mrecv, mdrop, moves, mbytes, mfailed;
	struct worker_stats ws;
	struct trap_stats ts;
	struct meta_cache_stats mc;
	struct union_check_stats cs;
	struct mcast_auth_stats as;
	unsigned long req, inflight;
	unsigned known, addrs;
	int n = 0;
	double off, err;
	const char *ref;

	clock_status(&off, &err, &ref);
	trap_stats(&ts);
	dircache_stats(&mc);
	worker_stats(&ws);
	fs_stats(&req, &inflight);
	evbuffer_add_printf(b,
	    "peer:     %s\n"
	    "uri:      %s\n"
	    "version:  %s\n"
	    "uptime:   %.1f s\n"
	    "clock:    offset %+.6f s, error %.6f s (reference: %s)\n",
	    self->name, self->uri, PUFS_VERSION, loop_uptime(), off, err,
	    log_escape(ref));
	evbuffer_add_printf(b, "exports:%s\n", self->nexports ? "" : "  none");
	for (uint32_t i = 0; i < self->nexports; i++)
		evbuffer_add_printf(b, "  %-12s %s at %s%s\n",
		    self->exports[i].name, self->exports[i].path,
		    self->exports[i].at,
		    self->exports[i].read_only ? " (read-only)" : "");
	evbuffer_add_printf(b, "peers:");
	TAILQ_FOREACH(p, &peers, entry)
	{
		if (p->self)
			continue;
		/* Names and URIs come from peers: escaped. */
		evbuffer_add_printf(b,
		    "\n  %-12s %-22s %-5s rtt %.3f ms, "
		    "last heard %.1f s ago, tls %s",
		    log_escape(p->name), log_escape(p->uri),
		    peer_state_name(p->state), p->rtt_ms,
		    (double)(loop_now_ms() - p->last_heard) / 1000.0,
		    control_tls(p));
		n++;
	}
	evbuffer_add_printf(b, "%s\n", n ? "" : "    none");
	mcast_stats(&msent, &mrecv, &mdrop);
	move_stats(&moves, &mbytes, &mfailed);
	peer_counts(&known, &addrs);
	if (conf->discovery == DISCOVERY_MULTICAST)
		evbuffer_add_printf(b,
		    "discovery: multicast %s port %u, %llu "
		    "datagrams sent, %llu received, %llu dropped\n",
		    conf->multicast_group, conf->multicast_port,
		    (unsigned long long)msent, (unsigned long long)mrecv,
		    (unsigned long long)mdrop);
	else
		evbuffer_add_printf(b,
		    "discovery: unicast, %zu addresses, "
		    "%llu datagrams received, %llu dropped\n",
		    conf->npeers, (unsigned long long)mrecv,
		    (unsigned long long)mdrop);
	evbuffer_add_printf(b,
	    "known:    %u peers, %u addresses heard of, "
	    "%u trap senders\n",
	    known, addrs, trap_senders());
	if (mcast_auth_stats(&as))
		evbuffer_add_printf(b,
		    "auth:     datagrams with MAC; dropped %llu bad MAC, "
		    "%llu replayed, %llu outside the window\n",
		    (unsigned long long)as.mac, (unsigned long long)as.replay,
		    (unsigned long long)as.window);
	else
		evbuffer_add_printf(b,
		    "auth:     none (no key_file): datagrams not "
		    "authenticated\n");
	control_io_text(b);
	stream_status(b, false);
	cluster_status(b, false);
	evbuffer_add_printf(b,
	    "cache:    entries %llu, bytes %llu, hits %llu, misses %llu, "
	    "stale %llu\n"
	    "traps:    sent %llu (%llu records of %llu changes), received "
	    "%llu (%llu records), %llu gaps, %llu resyncs\n"
	    "moves:    %llu files to another peer (%llu bytes), %llu failed\n"
	    "inodes:   %zu\n"
	    "open:     %u files\n"
	    "fuse:     %lu requests, %lu calls in flight, %lu timeouts\n"
	    "workers:  %u threads, %u busy, %u queued, %lu done, "
	    "max queue wait %lu us\n"
	    "loop:     max lag %lu us\n"
	    "ops:     ",
	    (unsigned long long)mc.entries, (unsigned long long)mc.bytes,
	    (unsigned long long)mc.hits, (unsigned long long)mc.misses,
	    (unsigned long long)mc.stale_hits, (unsigned long long)ts.sent,
	    (unsigned long long)ts.records_sent, (unsigned long long)ts.noted,
	    (unsigned long long)ts.received,
	    (unsigned long long)ts.records_applied, (unsigned long long)ts.gaps,
	    (unsigned long long)ts.resyncs, (unsigned long long)moves,
	    (unsigned long long)mbytes, (unsigned long long)mfailed,
	    node_count(), export_open_handles(), req, inflight,
	    stats.call_timeouts, ws.threads, ws.busy, ws.queued, ws.completed,
	    ws.max_wait_us, stats.loop_lag_max_us);
	for (int t = PROTO_HELLO; t < PROTO_TYPE_MAX; t++)
		if (stats.ops[t] != 0)
			evbuffer_add_printf(b, " %s %lu", proto_type_name(t),
			    stats.ops[t]);
	union_check_stats(&cs);
	evbuffer_add_printf(b,
	    "\nchecks:   %llu names checked free, %llu from listings alone, "
	    "%llu holders asked\n",
	    (unsigned long long)cs.done, (unsigned long long)cs.local,
	    (unsigned long long)cs.calls);
}

/*
 * "debug advance MS": move the clock by MS and fire what is due.  Only
 * with -o debug.time_control, so a production daemon's timers cannot be
 * driven from its socket.
 */
static void
control_debug_advance(struct evbuffer *b, const char *arg)
{
	unsigned long long ms;
	char *end;

	if (!conf->debug_time_control) {
		evbuffer_add_printf(b, "error: debug.time_control is off\n");
		return;
	}
	errno = 0;
	ms = strtoull(arg, &end, 10);
	if (*arg < '0' || *arg > '9' || *end != '\0' || errno != 0 ||
	    ms > CONTROL_MAX_ADVANCE_MS) {
		evbuffer_add_printf(b, "error: bad milliseconds '%.40s'\n",
		    arg);
		return;
	}
	log_debug("control: clock advanced by %llu ms", ms);
	loop_advance(ms);
	evbuffer_add_printf(b, "advanced %llu ms\n", ms);
}

/* Written out: close. */
static void
control_write_cb(struct bufferevent *bev, void *arg)
{
	(void)arg;
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_free(bev);
}

/* A line from the client. */
static void
control_read_cb(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer *out = bufferevent_get_output(bev);
	char *line;
	size_t len;

	(void)arg;
	line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
	if (line == NULL) {
		if (evbuffer_get_length(in) > CONTROL_MAX_LINE) {
			log_warnx("control: request line too long; dropped");
			bufferevent_free(bev);
		}
		return;
	}
	if (strncmp(line, "status", 6) == 0 && service_not_ready() != NULL)
		evbuffer_add_printf(out, "error: %s\n", service_not_ready());
	else if (strcmp(line, "status json") == 0)
		control_status_json(out);
	else if (strcmp(line, "status") == 0)
		control_status_text(out);
	else if (strncmp(line, "debug advance ", 14) == 0)
		control_debug_advance(out, line + 14);
	else {
		log_warnx("control: unknown request '%.40s'", line);
		evbuffer_add_printf(out, "error: unknown request\n");
	}
	free(line);
	bufferevent_disable(bev, EV_READ);
	bufferevent_setcb(bev, NULL, control_write_cb, NULL, NULL);
}

/* EOF, error or timeout: drop the client. */
static void
control_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)arg;
	if (what & BEV_EVENT_TIMEOUT)
		log_debug("control: client timed out");
	bufferevent_free(bev);
}

/* A client connected. */
static void
control_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct bufferevent *bev;
	struct timeval tv = { CONTROL_TIMEOUT_S, 0 };

	(void)l;
	(void)sa;
	(void)salen;
	(void)arg;
	bev = bufferevent_socket_new(loop_base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		close(fd);
		return;
	}
	bufferevent_setcb(bev, control_read_cb, NULL, control_event_cb, NULL);
	bufferevent_set_timeouts(bev, &tv, &tv);
	bufferevent_enable(bev, EV_READ);
}

/* Whether a live daemon answers at path. */
static bool
control_in_use(const struct sockaddr_un *sun)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool used;

	if (fd == -1)
		return false;
	used = connect(fd, (const struct sockaddr *)sun, sizeof *sun) == 0;
	close(fd);
	return used;
}

/* Create the socket; -1 with a logged reason on failure. */
int
control_init(const struct config *cfg)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char *dir;

	if (strlen(cfg->control_socket) >= sizeof sun.sun_path) {
		log_warnx("control socket %s: path too long",
		    cfg->control_socket);
		return -1;
	}
	strcpy(sun.sun_path, cfg->control_socket);
	dir = xstrdup(cfg->control_socket);
	if (mkdir(dirname(dir), 0755) == -1 && errno != EEXIST) {
		log_warn("control socket directory %s", dir);
		free(dir);
		return -1;
	}
	free(dir);
	if (control_in_use(&sun)) {
		log_warnx("control socket %s: another pufs is running there",
		    cfg->control_socket);
		return -1;
	}
	unlink(cfg->control_socket);
	control_listener = evconnlistener_new_bind(loop_base, control_accept_cb,
	    NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16,
	    (struct sockaddr *)&sun, sizeof sun);
	if (control_listener == NULL) {
		log_warn("control socket %s", cfg->control_socket);
		return -1;
	}
	chmod(cfg->control_socket, 0600);
	control_path = xstrdup(cfg->control_socket);
	return 0;
}

/* Close and remove the socket. */
void
control_close(void)
{
	if (control_listener == NULL)
		return;
	evconnlistener_free(control_listener);
	control_listener = NULL;
	unlink(control_path);
	free(control_path);
	control_path = NULL;
}
