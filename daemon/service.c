/*
 * service.c - telling a service manager how the daemon is doing.
 *
 * The daemon is ready once its mount answers: the kernel's INIT has been
 * answered (fs.c calls service_mounted() from it), so a process that
 * touches the mount point gets the union, not an empty directory.  From
 * then on `pufs status` answers (a container runtime's readiness check)
 * and the "ready: mounted" line is logged; once the daemon starts
 * leaving, it is not ready again.
 *
 * Under systemd (Type=notify) $NOTIFY_SOCKET names a datagram socket, a
 * path or "@NAME" in the abstract namespace.  We send READY=1 at that
 * moment, STOPPING=1 when leaving and a STATUS= line with the count of
 * peers up whenever it changes (sd_notify(3)).  The protocol is one
 * datagram of KEY=VALUE lines, so we write it ourselves rather than link
 * libsystemd: pufs runs in containers and on hosts without systemd, and
 * a sendto() is less than a new dependency.  A manager that does not
 * read is not waited for: the socket is non-blocking and a lost
 * datagram is only logged.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "pufs.h"

enum service_state {
	SERVICE_STARTING, /* mounting */
	SERVICE_READY,    /* the mount answers */
	SERVICE_STOPPING, /* leaving the union */
};

static enum service_state service_state;
static int service_fd = -1;
static struct sockaddr_un service_addr;
static socklen_t service_addrlen;
static unsigned service_peers_up = -1u; /* as last told */

/* Send one message to the manager, if there is one. */
static void
service_send(const char *msg)
{
	if (service_fd == -1)
		return;
	if (sendto(service_fd, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL,
		(struct sockaddr *)&service_addr, service_addrlen) == -1)
		log_warn("service: cannot notify %s",
		    service_addr.sun_path[0] ? service_addr.sun_path
					     : service_addr.sun_path + 1);
}

/* Peers other than us that are up. */
static unsigned
service_count_up(void)
{
	struct peer *p;
	unsigned n = 0;

	TAILQ_FOREACH(p, &peers, entry)
	if (!p->self && p->state == PEER_UP)
		n++;
	return n;
}

/* Tell the manager the status line, with READY=1 first if ready is set. */
static void
service_status(bool ready)
{
	char msg[PATH_MAX + 128];
	unsigned n = service_count_up();

	if (!ready && n == service_peers_up)
		return;
	service_peers_up = n;
	snprintf(msg, sizeof msg, "%sSTATUS=mounted %s, %u peer%s up\n",
	    ready ? "READY=1\n" : "", conf->mountpoint, n, n == 1 ? "" : "s");
	service_send(msg);
}

/* peer_on_state: the count of peers up may have changed. */
static void
service_peer_state(struct peer *p, enum peer_state old)
{
	(void)p;
	(void)old;
	if (service_state == SERVICE_READY)
		service_status(false);
}

/*
 * Find the manager's socket in $NOTIFY_SOCKET, if any; a bad value is
 * logged and ignored (the daemon still runs).
 */
void
service_init(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	size_t len;

	peer_on_state(service_peer_state);
	if (path == NULL || *path == '\0')
		return;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') ||
	    len >= sizeof service_addr.sun_path) {
		log_warnx("service: NOTIFY_SOCKET '%s' is not a socket path",
		    log_escape(path));
		return;
	}
	service_addr.sun_family = AF_UNIX;
	memcpy(service_addr.sun_path, path, len);
	if (path[0] == '@')
		service_addr.sun_path[0] = '\0';
	service_addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	    len + (path[0] == '@' ? 0 : 1));
	service_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (service_fd == -1)
		log_warn("service: socket");
	/* Programs the daemon might start do not speak for it. */
	unsetenv("NOTIFY_SOCKET");
}

/* The next loop turn after INIT: its reply is written by then. */
static void
service_ready_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (service_state != SERVICE_STARTING)
		return;
	service_state = SERVICE_READY;
	log_info("ready: mounted %s", conf->mountpoint);
	service_status(true);
}

/* The kernel's INIT is being answered: ready on the next loop turn. */
void
service_mounted(void)
{
	if (event_base_once(loop_base, -1, EV_TIMEOUT, service_ready_cb, NULL,
		NULL) == -1)
		fatalx("event_base_once failed");
}

/* The daemon is leaving: not ready any more. */
void
service_stopping(void)
{
	service_state = SERVICE_STOPPING;
	service_send("STOPPING=1\nSTATUS=leaving the union\n");
}

/* NULL once the mount answers; else why it does not (for status). */
const char *
service_not_ready(void)
{
	switch (service_state) {
	case SERVICE_STARTING:
		return "mounting";
	case SERVICE_READY:
		return NULL;
	case SERVICE_STOPPING:
		break;
	}
	return "leaving the union";
}

/* Close the manager's socket. */
void
service_close(void)
{
	if (service_fd != -1)
		close(service_fd);
	service_fd = -1;
}
