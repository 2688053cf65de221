/*
 * status.c - `pufs status` and `pufs debug`: ask a running daemon over its
 * control socket and print its answer.
 *
 * `pufs status` exits 0 only once the daemon's mount answers: before
 * that, and once it is leaving, the daemon answers "error: ..." and we
 * exit 1, so it serves as a container's readiness check.  A daemon that
 * does not answer within STATUS_TIMEOUT_S is taken for stuck (exit 1).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "pufs.h"

#define STATUS_TIMEOUT_S 10

/* Usage of the status command. */
static void
status_usage(FILE *f)
{
	fprintf(f, "usage: pufs status [-s SOCKET] [--json]\n");
}

/* The default socket of a daemon with the default name (host name). */
static char *
status_default_socket(void)
{
	struct config cfg;
	char *path;

	config_init(&cfg);
	path = config_default_control_socket(cfg.name);
	config_free(&cfg);
	return path;
}

/*
 * Send req to the daemon at path (NULL: the default one), print the
 * answer and free path.  An answer starting "error:" is the daemon's
 * refusal: told on standard error, exit status 1.
 */
static int
status_request(char *path, const char *req)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { STATUS_TIMEOUT_S, 0 };
	char buf[8192];
	bool first = true, refused = false;
	ssize_t n;
	int fd;

	if (path == NULL)
		path = status_default_socket();
	if (strlen(path) >= sizeof sun.sun_path) {
		cli_warnx("%s: socket path too long", path);
		free(path);
		return 2;
	}
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
		cli_warnx("no daemon answers at %s: %s", path, strerror(errno));
		free(path);
		return 1;
	}
	free(path);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		cli_warnx("control socket: %s", strerror(errno));
		close(fd);
		return 1;
	}
	while ((n = read(fd, buf, sizeof buf)) > 0) {
		size_t skip = 0;

		if (first && n >= 7 && strncmp(buf, "error: ", 7) == 0) {
			refused = true;
			fputs("pufs: ", stderr);
			skip = 7;
		}
		first = false;
		fwrite(buf + skip, 1, (size_t)n - skip,
		    refused ? stderr : stdout);
	}
	close(fd);
	if (n < 0) {
		cli_warnx("control socket: %s",
		    errno == EAGAIN ? "no answer in time" : strerror(errno));
		return 1;
	}
	return refused ? 1 : 0;
}

/* Run `pufs status`; returns the exit status. */
int
status_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *path = NULL;
	const char *req = "status\n";
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "s:jh", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			free(path);
			path = xstrdup(optarg);
			break;
		case 'j':
			req = "status json\n";
			break;
		case 'h':
			status_usage(stdout);
			return 0;
		default:
			status_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		status_usage(stderr);
		return 2;
	}
	return status_request(path, req);
}

/* Usage of the debug command. */
static void
status_debug_usage(FILE *f)
{
	fprintf(f, "usage: pufs debug [-s SOCKET] advance MS\n");
}

/*
 * Run `pufs debug advance MS`: move the daemon's clock, for tests; the
 * daemon refuses unless it runs with -o debug.time_control=on.
 */
int
status_debug_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *path = NULL, req[64];
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "s:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			free(path);
			path = xstrdup(optarg);
			break;
		case 'h':
			status_debug_usage(stdout);
			return 0;
		default:
			status_debug_usage(stderr);
			free(path);
			return 2;
		}
	}
	if (argc - optind != 2 || strcmp(argv[optind], "advance") != 0 ||
	    strspn(argv[optind + 1], "0123456789") !=
		strlen(argv[optind + 1]) ||
	    argv[optind + 1][0] == '\0' || strlen(argv[optind + 1]) > 20) {
		status_debug_usage(stderr);
		free(path);
		return 2;
	}
	snprintf(req, sizeof req, "debug advance %s\n", argv[optind + 1]);
	return status_request(path, req);
}
