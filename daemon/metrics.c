/*
 * metrics.c - `[peer] metrics`: the figures of `pufs status` for
 * Prometheus, over HTTP.
 *
 * libevent's evhttp serves GET (and HEAD) /metrics from the loop in the
 * text exposition format (version 0.0.4); any other path is 404, any
 * other method 405.  The page is built at once from the same counters
 * control.c reports, so it costs one pass over the peers and the op
 * types and never waits.  Names follow node_exporter's rules: a pufs_
 * prefix, _total on counters, base units (_bytes, _seconds), and labels
 * (peer, op, state, ...) rather than one name per peer or per type.
 * Peer names and URIs come from peers: a label value keeps only
 * printable ASCII, so the page always parses.  The endpoint has no
 * authentication: bind it to loopback or a management network.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "pufs.h"

#define METRICS_TIMEOUT_S 10
#define METRICS_MAX_HEADERS 8192

static struct evhttp *metrics_http;

/* "# HELP" and "# TYPE" of a family. */
static void
metrics_family(struct evbuffer *b, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
	    type);
}

/*
 * s as a label value in buf of len bytes: printable ASCII, " and \
 * escaped, anything else '_'; cut short if it does not fit.
 */
static const char *
metrics_clean(char *buf, size_t len, const char *s)
{
	size_t o = 0;

	for (; *s != '\0' && o + 3 < len; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			buf[o++] = '\\';
		buf[o++] = ch < 0x20 || ch > 0x7e ? '_' : (char)ch;
	}
	buf[o] = '\0';
	return buf;
}

/* Append s as a label value (see metrics_clean()). */
static void
metrics_label(struct evbuffer *b, const char *s)
{
	char buf[LOG_ESCAPE_MAX];

	evbuffer_add_printf(b, "%s", metrics_clean(buf, sizeof buf, s));
}

/* A family of one sample without labels. */
static void
metrics_one(struct evbuffer *b, const char *name, const char *type,
    const char *help, double v)
{
	metrics_family(b, name, type, help);
	evbuffer_add_printf(b, "%s %.15g\n", name, v);
}

/* A counter of one sample. */
static void
metrics_counter(struct evbuffer *b, const char *name, const char *help,
    uint64_t v)
{
	metrics_family(b, name, "counter", help);
	evbuffer_add_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

/* This peer: its name, version, uptime, clock and exports. */
static void
metrics_self(struct evbuffer *b)
{
	struct peer *self = peer_self();
	double off, err;
	const char *ref;

	metrics_family(b, "pufs_info", "gauge",
	    "This peer's name, contact URI, version and boot id (always 1).");
	evbuffer_add_printf(b, "pufs_info{peer=\"");
	metrics_label(b, self->name);
	evbuffer_add_printf(b, "\",uri=\"");
	metrics_label(b, self->uri);
	evbuffer_add_printf(b, "\",version=\"%s\",boot_id=\"%016llx\"} 1\n",
	    PUFS_VERSION, (unsigned long long)peer_boot_id());
	metrics_one(b, "pufs_uptime_seconds", "gauge",
	    "Seconds since this daemon started.", loop_uptime());
	clock_status(&off, &err, &ref);
	metrics_one(b, "pufs_clock_offset_seconds", "gauge",
	    "Offset of the union's global clock from this host's.", off);
	metrics_one(b, "pufs_clock_error_seconds", "gauge",
	    "Error bound of the global clock offset.", err);
	metrics_family(b, "pufs_clock_info", "gauge",
	    "The peer the global clock follows (always 1).");
	evbuffer_add_printf(b, "pufs_clock_info{reference=\"");
	metrics_label(b, ref);
	evbuffer_add_printf(b, "\"} 1\n");
	metrics_family(b, "pufs_export_info", "gauge",
	    "This peer's exports (always 1).");
	for (uint32_t i = 0; i < self->nexports; i++) {
		const struct export *ex = &self->exports[i];

		evbuffer_add_printf(b, "pufs_export_info{export=\"");
		metrics_label(b, ex->name);
		evbuffer_add_printf(b, "\",path=\"");
		metrics_label(b, ex->path);
		evbuffer_add_printf(b, "\",at=\"");
		metrics_label(b, ex->at);
		evbuffer_add_printf(b, "\",read_only=\"%s\"} 1\n",
		    ex->read_only ? "true" : "false");
	}
}

/* The other peers: state, round trip, last heard, exports. */
static void
metrics_peers(struct evbuffer *b)
{
	static const struct {
		const char *name, *help;
	} fam[] = {
		{ "pufs_peer_state",
		    "Known peers by state: 1 for the state the peer is in." },
		{ "pufs_peer_rtt_seconds", "Smoothed ping round trip." },
		{ "pufs_peer_last_heard_seconds",
		    "Seconds since the peer was last heard from." },
		{ "pufs_peer_exports", "Exports the peer announced." },
	};
	char name[LOG_ESCAPE_MAX], uri[LOG_ESCAPE_MAX];
	struct peer *p;
	double v;

	for (size_t f = 0; f < sizeof fam / sizeof *fam; f++) {
		metrics_family(b, fam[f].name, "gauge", fam[f].help);
		TAILQ_FOREACH(p, &peers, entry)
		{
			if (p->self)
				continue;
			metrics_clean(name, sizeof name, p->name);
			metrics_clean(uri, sizeof uri, p->uri);
			for (int s = 0; f == 0 && s < PEER_STATE_MAX; s++)
				evbuffer_add_printf(b,
				    "pufs_peer_state{peer=\"%s\",uri=\"%s\","
				    "state=\"%s\"} %d\n",
				    name, uri, peer_state_name(s),
				    (int)p->state == s);
			if (f == 0)
				continue;
			v = f == 1 ? p->rtt_ms / 1000.0
			    : f == 2
			    ? (double)(loop_now_ms() - p->last_heard) / 1e3
			    : p->nexports;
			evbuffer_add_printf(b, "%s{peer=\"%s\"} %.15g\n",
			    fam[f].name, name, v);
		}
	}
}

/* Discovery: datagrams, peers and addresses known, trap senders. */
static void
metrics_discovery(struct evbuffer *b)
{
	uint64_t sent, recv, drop;
	unsigned known, addrs;

	mcast_stats(&sent, &recv, &drop);
	peer_counts(&known, &addrs);
	metrics_family(b, "pufs_discovery_info", "gauge",
	    "How peers are found: mode, multicast group and port (always 1).");
	evbuffer_add_printf(b, "pufs_discovery_info{mode=\"%s\",group=\"",
	    conf->discovery == DISCOVERY_MULTICAST ? "multicast" : "unicast");
	metrics_label(b, conf->multicast_group);
	evbuffer_add_printf(b, "\",port=\"%u\"} 1\n", conf->multicast_port);
	metrics_family(b, "pufs_discovery_datagrams_total", "counter",
	    "Discovery datagrams, by what became of them.");
	evbuffer_add_printf(b,
	    "pufs_discovery_datagrams_total{state=\"sent\"} %llu\n"
	    "pufs_discovery_datagrams_total{state=\"received\"} %llu\n"
	    "pufs_discovery_datagrams_total{state=\"dropped\"} %llu\n",
	    (unsigned long long)sent, (unsigned long long)recv,
	    (unsigned long long)drop);
	metrics_one(b, "pufs_peers_known", "gauge",
	    "Peers known to this one (itself not counted).", known);
	metrics_one(b, "pufs_peer_addresses", "gauge",
	    "Contact addresses heard of.", addrs);
	metrics_one(b, "pufs_trap_senders", "gauge",
	    "Peers whose trap sequence is followed.", trap_senders());
}

/* A family of counters split by one label: n pairs of value and count. */
static void
metrics_split(struct evbuffer *b, const char *name, const char *help,
    const char *label, size_t n, const char *const *values,
    const uint64_t *counts)
{
	metrics_family(b, name, "counter", help);
	for (size_t i = 0; i < n; i++)
		evbuffer_add_printf(b, "%s{%s=\"%s\"} %llu\n", name, label,
		    values[i], (unsigned long long)counts[i]);
}

/* The metadata cache, location asks, listings, name checks, moves. */
static void
metrics_meta(struct evbuffer *b)
{
	static const char *const hm[] = { "hit", "miss", "stale" };
	static const char *const kinds[] = { "full", "delta" };
	struct meta_cache_stats mc;
	struct locate_stats ls;
	struct union_check_stats cs;
	uint64_t v[3];

	dircache_stats(&mc);
	metrics_one(b, "pufs_cache_entries", "gauge",
	    "Entries in the metadata cache.", (double)mc.entries);
	metrics_one(b, "pufs_cache_bytes", "gauge",
	    "Bytes the metadata cache holds.", (double)mc.bytes);
	metrics_one(b, "pufs_cache_budget_bytes", "gauge",
	    "Bytes the metadata cache may hold.",
	    (double)(conf->cache_size / 4));
	v[0] = mc.hits, v[1] = mc.misses, v[2] = mc.stale_hits;
	metrics_split(b, "pufs_cache_lookups_total",
	    "Metadata cache lookups, by result.", "result", 3, hm, v);
	metrics_counter(b, "pufs_cache_expired_total",
	    "Metadata cache entries expired.", mc.expired);
	metrics_counter(b, "pufs_cache_evicted_total",
	    "Metadata cache entries evicted to make room.", mc.evicted);
	find_stats(&ls);
	metrics_counter(b, "pufs_locate_sent_total", "LOCATE datagrams sent.",
	    ls.sent);
	metrics_counter(b, "pufs_locate_answers_total",
	    "LOCATED answers taken.", ls.answers);
	metrics_counter(b, "pufs_locate_late_total",
	    "LOCATED answers after the window.", ls.late);
	metrics_counter(b, "pufs_locate_fallbacks_total",
	    "Peers asked over TCP after the window.", ls.fallbacks);
	metrics_counter(b, "pufs_locate_served_total",
	    "LOCATE asks this peer answered.", ls.served);
	export_list_stats(&v[0], &v[1]);
	metrics_split(b, "pufs_listings_total",
	    "Directory listings served, whole or as changes.", "kind", 2, kinds,
	    v);
	union_check_stats(&cs);
	metrics_counter(b, "pufs_name_checks_total",
	    "Names checked free before a create.", cs.done);
	metrics_counter(b, "pufs_name_checks_local_total",
	    "Name checks answered from cached listings alone.", cs.local);
	metrics_counter(b, "pufs_name_check_calls_total",
	    "Holders asked by name checks.", cs.calls);
	move_stats(&v[0], &v[1], &v[2]);
	metrics_counter(b, "pufs_moves_total",
	    "Files moved to another peer by rename.", v[0]);
	metrics_counter(b, "pufs_moved_bytes_total",
	    "Bytes of the files moved to another peer.", v[1]);
	metrics_counter(b, "pufs_moves_failed_total",
	    "Moves to another peer that failed.", v[2]);
}

/* The data path: block cache and write-back. */
static void
metrics_data(struct evbuffer *b)
{
	static const char *const hm[] = { "hit", "miss", "bypass" };
	static const char *const ba[] = { "behind", "after" };
	struct block_cache_stats bc;
	struct io_stats st;
	uint64_t v[3];

	io_stats(&st, &bc);
	metrics_family(b, "pufs_data_cache_blocks", "gauge",
	    "Blocks in the data cache, by state.");
	evbuffer_add_printf(b,
	    "pufs_data_cache_blocks{state=\"clean\"} %llu\n"
	    "pufs_data_cache_blocks{state=\"dirty\"} %llu\n",
	    (unsigned long long)bc.clean_blocks,
	    (unsigned long long)bc.dirty_blocks);
	metrics_one(b, "pufs_data_cache_bytes", "gauge",
	    "Bytes the data cache holds.", (double)bc.bytes);
	metrics_one(b, "pufs_data_cache_dirty_bytes", "gauge",
	    "Written bytes not yet on their holders.", (double)bc.dirty_bytes);
	metrics_one(b, "pufs_data_cache_budget_bytes", "gauge",
	    "Bytes the data cache may hold (cache_size).",
	    (double)conf->cache_size);
	v[0] = st.read_hits, v[1] = st.read_misses, v[2] = st.read_bypass;
	metrics_split(b, "pufs_data_reads_total",
	    "Reads, by how they were served.", "result", 3, hm, v);
	v[0] = st.ra_hits, v[1] = st.ra_misses;
	metrics_split(b, "pufs_data_readahead_total",
	    "Read-ahead blocks, read after fetching (hit) or waited for.",
	    "result", 2, hm, v);
	metrics_counter(b, "pufs_data_written_back_bytes_total",
	    "Bytes written back to holders from the cache.", st.written_back);
	metrics_counter(b, "pufs_data_writeback_frames_total",
	    "WRITE frames that carried them.", st.wb_frames);
	metrics_counter(b, "pufs_data_writeback_errors_total",
	    "Write-backs that failed.", st.wb_errors);
	metrics_counter(b, "pufs_data_write_waits_total",
	    "Writes that waited for room in the cache.", st.write_waits);
	v[0] = st.fsync_behind, v[1] = st.fsync_after;
	metrics_split(b, "pufs_data_fsyncs_total",
	    "FSYNCs sent, right behind their WRITEs or after their answers.",
	    "sent", 2, ba, v);
	metrics_counter(b, "pufs_data_setattrs_behind_total",
	    "SETATTRs sent right behind the WRITEs of their file.",
	    st.setattr_behind);
	metrics_counter(b, "pufs_data_setattrs_deferred_total",
	    "Of those, SETATTRs answered before the holder, which the next "
	    "flush waits for.",
	    st.setattr_deferred);
	v[0] = bc.evicted, v[1] = bc.invalidated;
	metrics_family(b, "pufs_data_cache_dropped_blocks_total", "counter",
	    "Blocks evicted to make room or invalidated by a change.");
	for (int i = 0; i < 2; i++)
		evbuffer_add_printf(b,
		    "pufs_data_cache_dropped_blocks_total{reason=\"%s\"} "
		    "%llu\n",
		    i ? "invalidated" : "evicted", (unsigned long long)v[i]);
}

/* Traps sent and received. */
static void
metrics_traps(struct evbuffer *b)
{
	static const char *const st[] = { "noted", "merged", "sent",
		"unsendable", "applied", "disk" };
	struct trap_stats ts;
	uint64_t v[6];

	trap_stats(&ts);
	metrics_counter(b, "pufs_traps_sent_total", "TRAP datagrams sent.",
	    ts.sent);
	metrics_counter(b, "pufs_traps_received_total",
	    "TRAP datagrams received.", ts.received);
	v[0] = ts.noted, v[1] = ts.merged, v[2] = ts.records_sent;
	v[3] = ts.unsendable, v[4] = ts.records_applied, v[5] = ts.disk;
	metrics_split(b, "pufs_trap_records_total",
	    "Change records: noted here, merged into a batch, sent, too large "
	    "to send, applied from peers, seen on disk.",
	    "state", 6, st, v);
	metrics_counter(b, "pufs_trap_gaps_total",
	    "Gaps seen in peers' trap sequences.", ts.gaps);
	metrics_counter(b, "pufs_trap_resyncs_total",
	    "Resynchronisations after a gap.", ts.resyncs);
}

/* Requests, calls, workers, the loop. */
static void
metrics_work(struct evbuffer *b)
{
	struct worker_stats ws;
	unsigned long req, inflight;

	fs_stats(&req, &inflight);
	worker_stats(&ws);
	metrics_one(b, "pufs_inodes", "gauge", "Inodes the kernel knows.",
	    (double)node_count());
	metrics_one(b, "pufs_open_files", "gauge",
	    "Handles open on this peer's exports.",
	    (double)export_open_handles());
	metrics_counter(b, "pufs_fuse_requests_total",
	    "Requests read from the kernel.", req);
	metrics_one(b, "pufs_calls_in_flight", "gauge",
	    "Calls sent and not answered yet.", (double)inflight);
	metrics_counter(b, "pufs_call_timeouts_total",
	    "Calls that timed out (op_timeout).", stats.call_timeouts);
	metrics_family(b, "pufs_calls_total", "counter",
	    "Calls sent to holders, by request type.");
	for (int t = PROTO_HELLO; t < PROTO_TYPE_MAX; t++)
		if (stats.ops[t] != 0)
			evbuffer_add_printf(b,
			    "pufs_calls_total{op=\"%s\"} %lu\n",
			    proto_type_name(t), stats.ops[t]);
	metrics_one(b, "pufs_worker_threads", "gauge", "Disk worker threads.",
	    ws.threads);
	metrics_one(b, "pufs_workers_busy", "gauge",
	    "Disk workers running a request.", ws.busy);
	metrics_one(b, "pufs_worker_queue_length", "gauge",
	    "Requests waiting for a disk worker.", ws.queued);
	metrics_counter(b, "pufs_worker_requests_total",
	    "Requests the disk workers completed.", ws.completed);
	metrics_one(b, "pufs_worker_queue_wait_max_seconds", "gauge",
	    "Longest wait of a request for a disk worker.",
	    (double)ws.max_wait_us / 1e6);
	metrics_one(b, "pufs_loop_lag_max_seconds", "gauge",
	    "Longest lateness of the event loop's probe timer.",
	    (double)stats.loop_lag_max_us / 1e6);
}

/* What metrics_hist() writes: which family, into which buffer. */
struct metrics_hist_arg {
	struct evbuffer *b;
	bool calls; /* the calls' family, else the FUSE requests' */
};

/* latency_foreach: one histogram's buckets (cumulative), sum and count. */
static void
metrics_hist(const char *peer, uint8_t type, const struct latency_hist *h,
    void *arg)
{
	struct metrics_hist_arg *a = arg;
	const char *name = a->calls ? "pufs_call_duration_seconds"
				    : "pufs_fuse_request_duration_seconds";
	char labels[LOG_ESCAPE_MAX + 64], clean[LOG_ESCAPE_MAX];
	uint64_t cum = 0;

	if ((peer != NULL) != a->calls)
		return;
	if (peer != NULL)
		snprintf(labels, sizeof labels, "peer=\"%s\",op=\"%s\"",
		    metrics_clean(clean, sizeof clean, peer),
		    proto_type_name(type));
	else
		snprintf(labels, sizeof labels, "op=\"%s\"",
		    proto_type_name(type));
	for (int i = 0; i < LATENCY_NBOUNDS; i++) {
		cum += h->bucket[i];
		evbuffer_add_printf(a->b, "%s_bucket{%s,le=\"%g\"} %llu\n",
		    name, labels, (double)latency_bounds_us[i] / 1e6,
		    (unsigned long long)cum);
	}
	evbuffer_add_printf(a->b,
	    "%s_bucket{%s,le=\"+Inf\"} %llu\n%s_sum{%s} %.6f\n"
	    "%s_count{%s} %llu\n",
	    name, labels, (unsigned long long)h->count, name, labels,
	    (double)h->sum_us / 1e6, name, labels,
	    (unsigned long long)h->count);
}

/* The latency histograms of FUSE requests and of calls by peer. */
static void
metrics_latency(struct evbuffer *b)
{
	struct metrics_hist_arg a = { b, false };

	metrics_family(b, "pufs_fuse_request_duration_seconds", "histogram",
	    "Time from a parked FUSE request to its reply, by type.");
	latency_foreach(metrics_hist, &a);
	a.calls = true;
	metrics_family(b, "pufs_call_duration_seconds", "histogram",
	    "Time from sending a call to its answer or timeout, by holder "
	    "and type.");
	latency_foreach(metrics_hist, &a);
}

/* The whole page. */
static void
metrics_page(struct evbuffer *b)
{
	metrics_self(b);
	metrics_peers(b);
	metrics_discovery(b);
	metrics_meta(b);
	metrics_data(b);
	metrics_traps(b);
	metrics_work(b);
	metrics_latency(b);
}

/* Every request: /metrics gets the page, anything else an error. */
static void
metrics_request_cb(struct evhttp_request *req, void *arg)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	struct evbuffer *b;

	(void)arg;
	if (path == NULL || strcmp(path, "/metrics") != 0) {
		evhttp_send_error(req, HTTP_NOTFOUND, NULL);
		return;
	}
	if ((b = evbuffer_new()) == NULL) {
		evhttp_send_error(req, HTTP_SERVUNAVAIL, NULL);
		return;
	}
	evhttp_add_header(out, "Content-Type",
	    "text/plain; version=0.0.4; charset=utf-8");
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		/* Not evhttp_send_error(): it drops the Allow header. */
		evhttp_add_header(out, "Allow", "GET, HEAD");
		evbuffer_add_printf(b, "405 Method Not Allowed\n");
		evhttp_send_reply(req, 405, "Method Not Allowed", b);
	} else {
		metrics_page(b);
		evhttp_send_reply(req, HTTP_OK, "OK", b);
	}
	evbuffer_free(b);
}

/*
 * Listen on cfg->metrics, if set; -1 with a logged reason if the address
 * cannot be bound.
 */
int
metrics_init(const struct config *cfg)
{
	char host[256];
	const char *colon, *h;
	size_t n;
	long port;

	if (cfg->metrics == NULL)
		return 0;
	/* Checked by config: HOST:PORT or [ADDR]:PORT. */
	colon = strrchr(cfg->metrics, ':');
	h = cfg->metrics;
	n = (size_t)(colon - h);
	if (*h == '[') {
		h++;
		n -= 2;
	}
	if (n >= sizeof host)
		n = sizeof host - 1;
	memcpy(host, h, n);
	host[n] = '\0';
	port = strtol(colon + 1, NULL, 10);
	if ((metrics_http = evhttp_new(loop_base)) == NULL)
		fatalx("metrics: evhttp_new failed");
	evhttp_set_timeout(metrics_http, METRICS_TIMEOUT_S);
	evhttp_set_max_headers_size(metrics_http, METRICS_MAX_HEADERS);
	evhttp_set_max_body_size(metrics_http, 0);
	evhttp_set_allowed_methods(metrics_http,
	    EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
		EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
		EVHTTP_REQ_PATCH);
	evhttp_set_gencb(metrics_http, metrics_request_cb, NULL);
	if (evhttp_bind_socket(metrics_http, host, (uint16_t)port) != 0) {
		log_warn("metrics: cannot listen on %s", cfg->metrics);
		evhttp_free(metrics_http);
		metrics_http = NULL;
		return -1;
	}
	log_info("metrics: serving http://%s/metrics", cfg->metrics);
	return 0;
}

/* Stop serving. */
void
metrics_close(void)
{
	if (metrics_http == NULL)
		return;
	evhttp_free(metrics_http);
	metrics_http = NULL;
}
