/*
 * config-check.c - the checks of string values: names, addresses,
 * multicast groups, interface names, socket and absolute paths.
 *
 * Each returns 0, or -1 with the reason in why (which may be NULL when
 * only the verdict matters).  They check syntax only: no DNS, no look at
 * the interfaces or the file system; config_validate() does what needs
 * the machine.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>

#include "config-int.h"

/* A peer, export or cluster name: 1..63 of [A-Za-z0-9._-]. */
int
config_check_name(const char *s, char *why, size_t len)
{
	size_t n = strlen(s);

	if (n == 0 || n > CONFIG_NAME_MAX ||
	    strspn(s,
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		"0123456789._-") != n)
		return config_msg_error(why, len,
		    "bad name '%s' (1 to %d of A-Z a-z 0-9 . _ -)", s,
		    CONFIG_NAME_MAX);
	return 0;
}

/* A port number 1..65535 given in decimal. */
static int
config_check_port(const char *s)
{
	uint64_t v;
	const char *end;

	if (config_parse_uint(s, &end, &v) == -1 || *end != '\0' || v < 1 ||
	    v > 65535)
		return -1;
	return 0;
}

/* HOST:PORT or [IPv6]:PORT, checked by syntax only (no DNS). */
int
config_check_hostport(const char *s, char *why, size_t len)
{
	const char *colon, *close, *pct;
	char addr[INET6_ADDRSTRLEN + IFNAMSIZ + 1];
	struct in6_addr in6;
	size_t n;

	if (*s == '[') {
		close = strchr(s, ']');
		if (close == NULL || close[1] != ':')
			goto bad;
		colon = close + 1;
		n = (size_t)(close - s - 1);
		if (n == 0 || n >= sizeof addr)
			goto bad;
		memcpy(addr, s + 1, n);
		addr[n] = '\0';
		/* A zone ("%eth0") may follow a link-local address. */
		if ((pct = strchr(addr, '%')) != NULL) {
			if (pct[1] == '\0' || strlen(pct + 1) >= IFNAMSIZ ||
			    strchr(pct + 1, '/') != NULL)
				goto bad;
			addr[pct - addr] = '\0';
		}
		if (inet_pton(AF_INET6, addr, &in6) != 1)
			goto bad;
	} else {
		colon = strchr(s, ':');
		n = colon == NULL ? 0 : (size_t)(colon - s);
		if (n == 0 || n > 253 ||
		    strspn(s,
			"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			"abcdefghijklmnopqrstuvwxyz0123456789.-_") != n)
			goto bad;
	}
	if (config_check_port(colon + 1) == -1)
		goto bad;
	return 0;
bad:
	return config_msg_error(why, len,
	    "bad address '%s' (HOST:PORT or [IPV6]:PORT, port 1-65535)", s);
}

/* An IPv4 (224.0.0.0/4) or IPv6 (ff00::/8) multicast address. */
int
config_check_group(const char *s, char *why, size_t len)
{
	struct in_addr in4;
	struct in6_addr in6;

	if (inet_pton(AF_INET, s, &in4) == 1) {
		if ((ntohl(in4.s_addr) >> 28) == 0xe)
			return 0;
	} else if (inet_pton(AF_INET6, s, &in6) == 1) {
		if (in6.s6_addr[0] == 0xff)
			return 0;
	}
	return config_msg_error(why, len,
	    "'%s' is not an IPv4 or IPv6 multicast address", s);
}

/* A network interface name. */
int
config_check_ifname(const char *s, char *why, size_t len)
{
	size_t n = strlen(s);

	if (n == 0 || n >= IFNAMSIZ || strcspn(s, "/: \t") != n)
		return config_msg_error(why, len, "bad interface name '%s'", s);
	return 0;
}

/* A path that fits in a unix socket address. */
int
config_check_socket(const char *s, char *why, size_t len)
{
	struct sockaddr_un sun;

	if (*s == '\0' || strlen(s) >= sizeof sun.sun_path)
		return config_msg_error(why, len,
		    "socket path '%s' is empty or longer than %zu bytes", s,
		    sizeof sun.sun_path - 1);
	return 0;
}

/* An absolute path. */
int
config_check_abspath(const char *s, char *why, size_t len)
{
	if (*s != '/')
		return config_msg_error(why, len,
		    "'%s' is not an absolute path", s);
	return 0;
}
