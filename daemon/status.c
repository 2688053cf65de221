/*
 * status.c - `pufs status`: ask a running daemon over its control socket
 * and print its answer.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "pufs.h"

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
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char *path = NULL, buf[8192];
	const char *req = "status\n";
	ssize_t n;
	int ch, fd;

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
	if (path == NULL)
		path = status_default_socket();
	if (strlen(path) >= sizeof sun.sun_path) {
		cli_warnx("%s: socket path too long", path);
		free(path);
		return 2;
	}
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1 || connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
		cli_warnx("no daemon answers at %s: %s", path,
		    strerror(errno));
		free(path);
		return 1;
	}
	free(path);
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		cli_warnx("control socket: %s", strerror(errno));
		close(fd);
		return 1;
	}
	while ((n = read(fd, buf, sizeof buf)) > 0)
		fwrite(buf, 1, (size_t)n, stdout);
	close(fd);
	if (n < 0) {
		cli_warnx("control socket: %s", strerror(errno));
		return 1;
	}
	return 0;
}
