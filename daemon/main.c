/*
 * main.c - the pufs command: `pufs mount`, `pufs status`, `pufs keygen`,
 * --version, --help.
 *
 * `pufs mount` parses and validates the whole configuration first (file,
 * then PUFS_* environment, then -o, then -e), exiting 2 with a message
 * naming the source, line and key on any error; only then does it start
 * the loop, open the exports, the control socket and the FUSE mount.  On
 * SIGINT or SIGTERM it stops reading the kernel, lets requests in flight
 * finish (at most op_timeout), unmounts and exits 0.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "cluster.h"
#include "locktab.h"
#include "pufs.h"

extern char **environ;

/* Worker threads for disk calls: I/O bound, so more than the cores. */
#define MAIN_WORKERS 8

/* The whole usage text. */
static void
main_usage(FILE *f)
{
	fprintf(f,
	    "usage: pufs mount [-c FILE] [-e DIR[:ro]]... "
	    "[-o KEY=VALUE[,KEY=VALUE]...] [-d] MOUNTPOINT\n"
	    "       pufs status [-s SOCKET] [--json]\n"
	    "       pufs keygen FILE\n"
	    "       pufs where PATH...\n"
	    "       pufs debug [-s SOCKET] advance MS\n"
	    "       pufs --version | --help\n"
	    "\n"
	    "  mount    serve this peer's exports and mount the union "
	    "(foreground)\n"
	    "    -c FILE       configuration file (see pufs.ini(5))\n"
	    "    -e DIR[:ro]   export DIR at / (read-only with :ro); "
	    "repeatable\n"
	    "    -o S.KEY=V    override a key of [peer], [cache], [security]\n"
	    "    -d            log debug detail\n"
	    "  status   report on a running daemon (--json: as JSON); exits 0\n"
	    "           only once its mount answers\n"
	    "  where    the peer, URI and export that hold each PATH\n"
	    "  keygen   write a new random union key to FILE (mode 0600)\n"
	    "\n"
	    "Environment: PUFS_SECTION_KEY=VALUE overrides the file, -o "
	    "overrides it.\n"
	    "See pufs(8).\n");
}

/* Wait for the calls in flight to finish, at most op_timeout + 1 s. */
static void
main_drain(void)
{
	uint64_t deadline = loop_now_ms() +
	    (uint64_t)(conf->op_timeout * 1000) + 1000;
	struct timeval tick = { 0, 20000 };

	io_drain(); /* written bytes go back before we leave */
	while ((call_inflight() > 0 || io_busy()) && loop_now_ms() < deadline) {
		event_base_loopexit(loop_base, &tick);
		event_base_dispatch(loop_base);
	}
	if (call_inflight() > 0)
		log_warnx("leaving with %u calls unanswered", call_inflight());
	if (io_busy())
		log_warnx("leaving with written bytes not on their holders");
}

/* The transport, as the peer table dials and asks it. */
static const struct peer_dialer main_dialer = {
	.listen = stream_listen,
	.connect = stream_connect,
	.close = stream_close,
	.retire = stream_retire,
	.probe = stream_probe,
	.may_dial = stream_may_dial,
	.outbound = stream_outbound,
	.started = stream_started,
	.up_since = stream_up_since,
};

/* The export backend, for the peer table's exports. */
static const struct peer_exports main_exports = {
	.open = export_open,
	.close = export_close,
};

/* Our own exports, as traps need them. */
static const struct trap_local main_trap_local = {
	.fh_path = export_fh_path,
	.noted = journal_note,
};

/* The union, for location requests. */
static const struct locate_ops main_locate = {
	.lookup = find_local,
	.located = find_located,
};

/* A request our exports served: traps, locks and the replicas count it. */
static void
main_served(const struct proto_req *r, const struct proto_rep *rep,
    uint32_t owner)
{
	trap_note(r, rep, owner);
	locktab_note(r, rep, owner);
	cluster_served(r, rep, owner);
}

/* Changes on disk were lost: the journal cannot be sure from now. */
static void
main_disk_lost(void)
{
	journal_lost(clock_global_ns());
	trap_skip();
}

/*
 * Wire the layers together: the discovery layer, the transport, the
 * serving side and the loop learn of the rest of the daemon, which they
 * do not include, only through what is registered here.
 */
static void
main_wire(const struct config *cfg)
{
	struct export_ctx ctx = {
		.exports = peer_self()->exports,
		.nexports = peer_self()->nexports,
		.boot_id = peer_boot_id(),
		.max_handles = cfg->max_handles,
		.identity_caller = cfg->identity == IDENTITY_CALLER,
		.root_squash = cfg->root_squash,
		.global_ns = clock_global_ns,
		.disk_change = trap_note_disk,
		.disk_lost = main_disk_lost,
	};

	trap_init(cfg, &inval_sink, &main_trap_local);
	clock_init();
	journal_start(clock_global_ns());
	locate_init(&main_locate);
	stream_init(&call_transport);
	call_observe_answers(inval_answered);
	call_observe_served(main_served);
	export_init(&ctx);
	locktab_init();
	watch_init(&ctx);
	loop_input_listener(fs_throttle);
	cluster_start();
}

/* Run the daemon until a signal or an unmount; the exit status. */
static int
main_daemon(struct config *cfg)
{
	int rc = 1;

	loop_init(cfg);
	worker_init(loop_base, MAIN_WORKERS);
	cluster_init(cfg); /* the replicas are exports too */
	peer_init_self(cfg, &main_exports);
	node_init();
	dircache_init(cfg);
	io_init(cfg);
	main_wire(cfg);
	service_init();
	if (peer_init_net(cfg, &main_dialer) == -1 ||
	    (cfg->discovery == DISCOVERY_MULTICAST
		    ? mcast_init(cfg)
		    : mcast_init_unicast(cfg)) == -1 ||
	    control_init(cfg) == -1 || metrics_init(cfg) == -1 ||
	    fs_mount(cfg) == -1)
		goto leave;
	log_info("peer %s (%s), %zu export%s", peer_self()->name,
	    peer_self()->uri, cfg->nexports, cfg->nexports == 1 ? "" : "s");
	rc = loop_run(); /* service.c says "ready" once the mount answers */
	service_stopping();
	log_info("leaving the union");
	fs_stop();
	locktab_leave();
	main_drain();
leave:
	/* Each of these does nothing if its part never started. */
	control_close();
	metrics_close();
	trap_flush_now(); /* what is queued goes before our GOODBYE */
	mcast_leave();
	stream_leave_all();
	fs_unmount();
	worker_shutdown();
	locktab_free();
	/* Let dead streams' one-shot frees run. */
	event_base_loop(loop_base, EVLOOP_NONBLOCK);
	fs_free();
	watch_free();
	journal_free();
	trap_free();
	dircache_free();
	io_free();
	cluster_free();
	node_free_all();
	peer_free_all();
	latency_free();
	service_close();
	return rc;
}

/* `pufs mount`: parse, validate, run. */
static int
main_mount(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char err[CONFIG_ERRLEN], *file = NULL;
	char **opts = xcalloc((size_t)argc, sizeof *opts);
	char **exps = xcalloc((size_t)argc, sizeof *exps);
	size_t nopts = 0, nexps = 0, i;
	struct config cfg;
	struct stat st;
	int ch, rc = 2;

	config_init(&cfg);
	optind = 1;
	while (
	    (ch = getopt_long(argc, argv, "+c:e:o:dh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			file = optarg;
			break;
		case 'e':
			exps[nexps++] = optarg;
			break;
		case 'o':
			opts[nopts++] = optarg;
			break;
		case 'd':
			cfg.debug = true;
			break;
		case 'h':
			main_usage(stdout);
			rc = 0;
			goto out;
		default:
			main_usage(stderr);
			goto out;
		}
	}
	if (optind + 1 != argc) {
		cli_warnx(optind == argc ? "mount: missing MOUNTPOINT"
					 : "mount: too many arguments");
		main_usage(stderr);
		goto out;
	}
	if (file != NULL && config_load_file(&cfg, file, err, sizeof err)) {
		cli_warnx("%s", err);
		goto out;
	}
	if (config_load_env(&cfg, environ, err, sizeof err) == -1) {
		cli_warnx("%s", err);
		goto out;
	}
	for (i = 0; i < nopts; i++) {
		if (config_load_opts(&cfg, opts[i], err, sizeof err) == -1) {
			cli_warnx("%s", err);
			goto out;
		}
	}
	for (i = 0; i < nexps; i++) {
		if (config_add_export_arg(&cfg, exps[i], err, sizeof err)) {
			cli_warnx("%s", err);
			goto out;
		}
	}
	if (config_validate(&cfg, err, sizeof err) == -1) {
		cli_warnx("%s", err);
		goto out;
	}
	/* Acting as each caller takes setfsuid(2) and setgroups(2). */
	if (cfg.identity == IDENTITY_CALLER && geteuid() != 0) {
		cli_warnx("security.identity: caller needs the daemon to run "
			  "as root");
		goto out;
	}
	if (stat(argv[optind], &st) == -1 || !S_ISDIR(st.st_mode)) {
		cli_warnx("mount: %s: %s", argv[optind],
		    errno != 0 && !S_ISDIR(st.st_mode) ? strerror(errno)
						       : "not a directory");
		goto out;
	}
	cfg.mountpoint = realpath(argv[optind], NULL);
	if (cfg.mountpoint == NULL) {
		cli_warnx("mount: %s: %s", argv[optind], strerror(errno));
		goto out;
	}
	log_init(cfg.debug);
	rc = main_daemon(&cfg);
out:
	free(opts);
	free(exps);
	config_free(&cfg);
	return rc;
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		main_usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("pufs %s\n", PUFS_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		main_usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "mount") == 0)
		return main_mount(argc - 1, argv + 1);
	if (strcmp(argv[1], "status") == 0)
		return status_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "keygen") == 0)
		return keygen_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "where") == 0)
		return where_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "debug") == 0)
		return status_debug_main(argc - 1, argv + 1);
	cli_warnx("unknown command '%s'", argv[1]);
	main_usage(stderr);
	return 2;
}
