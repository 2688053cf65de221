/*
 * config.c - the daemon's configuration: defaults, the INI file, the
 * environment, -o and -e, and the whole-config checks.
 *
 * Every source goes through config_set(), which finds the key in a table,
 * parses the value and checks its range; config_validate() checks the
 * stored values once more (callers may fill fields directly) and then
 * what involves several keys or the file system.  inih splits the file
 * into lines and pairs; a reader of our own in front of it counts lines,
 * recognises section headers (inih truncates long section names and does
 * not report empty sections) and rejects lines longer than inih's buffer
 * instead of letting it split them.  An indented line without '=' is a
 * continuation: only peer.peers takes one, and it appends to the list.
 * Limits: no include files, no quoting, no values that contain " ;".
 */
#include <sys/stat.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <ini.h>

#include "config.h"
#include "log.h"

/* Longest duration accepted, in seconds (about 31 years). */
#define CONFIG_DURATION_MAX 1e9

/* Longest peer, export or cluster name. */
#define CONFIG_NAME_MAX 63

enum config_type {
	CONFIG_STRING,   /* char *, checked by a function */
	CONFIG_LIST,     /* char ** and a count (peer.peers) */
	CONFIG_PORT,     /* uint16_t */
	CONFIG_INT,      /* int */
	CONFIG_U32,      /* uint32_t */
	CONFIG_SIZE,     /* uint64_t, bytes, with K/M/G/T suffixes */
	CONFIG_DURATION, /* double, seconds */
	CONFIG_BOOL,     /* bool */
	CONFIG_ENUM,     /* an enum, given by name */
	CONFIG_AT,       /* char *, a union path, stored normalised */
};

/* Which structure a section's keys live in. */
enum config_base {
	CONFIG_BASE_CONFIG,
	CONFIG_BASE_EXPORT,
	CONFIG_BASE_CLUSTER,
};

/* One key of a section: where it is stored and what it accepts. */
struct config_key {
	const char *name;
	enum config_type type;
	size_t off;                    /* in the section's structure */
	size_t count_off;              /* lists: where the count is */
	uint64_t min, max;             /* integers and sizes */
	bool pow2;                     /* sizes: a power of two */
	bool positive;                 /* durations: > 0, else >= 0 */
	bool optional;                 /* strings: empty or NULL is unset */
	int (*check)(const char *, char *, size_t); /* strings, lists */
	const char *const *names;      /* enums, NULL-terminated */
};

struct config_section {
	const char *name;              /* "peer", or "export" for export:NAME */
	enum config_base base;
	const struct config_key *keys;
};

static int config_check_name(const char *, char *, size_t);
static int config_check_hostport(const char *, char *, size_t);
static int config_check_group(const char *, char *, size_t);
static int config_check_ifname(const char *, char *, size_t);
static int config_check_socket(const char *, char *, size_t);
static int config_check_abspath(const char *, char *, size_t);

static const char *const config_discovery_names[] = {
	[DISCOVERY_MULTICAST] = "multicast",
	[DISCOVERY_UNICAST] = "unicast",
	NULL,
};

static const char *const config_create_names[] = {
	[CREATE_LOCAL] = "local",
	[CREATE_MOSTFREE] = "mostfree",
	[CREATE_ROUNDROBIN] = "roundrobin",
	NULL,
};

static const char *const config_balance_names[] = {
	[BALANCE_ROUNDROBIN] = "roundrobin",
	[BALANCE_LEASTLOAD] = "leastload",
	NULL,
};

_Static_assert(sizeof(enum config_discovery) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_create_policy) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_balance) == sizeof(int), "enum size");

#define C(f) offsetof(struct config, f)
#define E(f) offsetof(struct config_export, f)
#define L(f) offsetof(struct config_cluster, f)
#define K(n, t, o) .name = (n), .type = (t), .off = (o)

static const struct config_key config_peer_keys[] = {
	{ K("name", CONFIG_STRING, C(name)), .check = config_check_name },
	{ K("listen", CONFIG_STRING, C(listen)),
	    .check = config_check_hostport },
	{ K("discovery", CONFIG_ENUM, C(discovery)),
	    .names = config_discovery_names },
	{ K("multicast_group", CONFIG_STRING, C(multicast_group)),
	    .check = config_check_group },
	{ K("multicast_port", CONFIG_PORT, C(multicast_port)), .min = 1,
	    .max = 65535 },
	{ K("multicast_interface", CONFIG_STRING, C(multicast_interface)),
	    .optional = true, .check = config_check_ifname },
	{ K("multicast_ttl", CONFIG_INT, C(multicast_ttl)), .min = 0,
	    .max = 255 },
	{ K("peers", CONFIG_LIST, C(peers)), .count_off = C(npeers),
	    .check = config_check_hostport },
	{ K("control_socket", CONFIG_STRING, C(control_socket)),
	    .optional = true, .check = config_check_socket },
	{ K("op_timeout", CONFIG_DURATION, C(op_timeout)), .positive = true },
	{ K("heartbeat", CONFIG_DURATION, C(heartbeat)), .positive = true },
	{ K("dead_after", CONFIG_DURATION, C(dead_after)), .positive = true },
	{ K("create_policy", CONFIG_ENUM, C(create_policy)),
	    .names = config_create_names },
	{ K("max_handles", CONFIG_U32, C(max_handles)), .min = 1,
	    .max = 1 << 20 },
	{ .name = NULL },
};

static const struct config_key config_cache_keys[] = {
	{ K("attr_timeout", CONFIG_DURATION, C(attr_timeout)) },
	{ K("trap_delay", CONFIG_DURATION, C(trap_delay)) },
	{ K("block_size", CONFIG_SIZE, C(block_size)), .min = 4096,
	    .max = 16 << 20, .pow2 = true },
	{ K("cache_size", CONFIG_SIZE, C(cache_size)), .min = 4 * 4096,
	    .max = UINT64_MAX },
	{ K("readahead_max", CONFIG_U32, C(readahead_max)), .min = 0,
	    .max = 1024 },
	{ K("writeback_interval", CONFIG_DURATION, C(writeback_interval)),
	    .positive = true },
	{ K("direct_io", CONFIG_BOOL, C(direct_io)) },
	{ .name = NULL },
};

static const struct config_key config_security_keys[] = {
	{ K("key_file", CONFIG_STRING, C(key_file)), .optional = true },
	{ K("encrypt", CONFIG_BOOL, C(encrypt)) },
	{ .name = NULL },
};

static const struct config_key config_export_keys[] = {
	{ K("path", CONFIG_STRING, E(path)), .check = config_check_abspath },
	{ K("at", CONFIG_AT, E(at)) },
	{ K("read_only", CONFIG_BOOL, E(read_only)) },
	{ .name = NULL },
};

static const struct config_key config_cluster_keys[] = {
	{ K("path", CONFIG_STRING, L(path)), .check = config_check_abspath },
	{ K("at", CONFIG_AT, L(at)) },
	{ K("balance", CONFIG_ENUM, L(balance)),
	    .names = config_balance_names },
	{ .name = NULL },
};

#undef C
#undef E
#undef L
#undef K

static const struct config_section config_sections[] = {
	{ "peer", CONFIG_BASE_CONFIG, config_peer_keys },
	{ "cache", CONFIG_BASE_CONFIG, config_cache_keys },
	{ "security", CONFIG_BASE_CONFIG, config_security_keys },
	{ "export", CONFIG_BASE_EXPORT, config_export_keys },
	{ "cluster", CONFIG_BASE_CLUSTER, config_cluster_keys },
};

/* The sections the environment and -o may set. */
static const char *const config_override_sections[] = {
	"peer", "cache", "security", NULL,
};

/* Reading state of one INI file, shared by the reader and the handler. */
struct config_file {
	struct config *cfg;
	const char *path;
	FILE *fp;
	char *buf;                     /* getline buffer; owned */
	size_t bufsize;
	int lineno;                    /* of the line inih is working on */
	char *section;                 /* current section name; owned */
	bool has_key;                  /* a key line since the header */
	bool continuation;             /* this line continues the last key */
	bool failed;                   /* err holds the first error */
	int errline;                   /* its line, 0 if none */
	char *err;
	size_t errlen;
};

/* Format an error message into err (which may be truncated). */
static int PRINTFLIKE(3, 4)
config_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Append to the message in err; returns -1, as config_error() does. */
static int PRINTFLIKE(3, 4)
config_append(char *err, size_t errlen, const char *fmt, ...)
{
	size_t used = strnlen(err, errlen);
	va_list ap;

	if (used + 1 >= errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err + used, errlen - used, fmt, ap);
	va_end(ap);
	return -1;
}

/* Format a byte count with the largest exact binary suffix. */
static void
config_format_size(uint64_t v, char *buf, size_t len)
{
	static const char suffix[] = "KMGT";
	int i = -1;

	while (i < 3 && v != 0 && v % 1024 == 0) {
		v /= 1024;
		i++;
	}
	if (i < 0)
		snprintf(buf, len, "%llu", (unsigned long long)v);
	else
		snprintf(buf, len, "%llu%c", (unsigned long long)v, suffix[i]);
}

/* Parse a decimal unsigned integer with nothing around it. */
static int
config_parse_uint(const char *s, const char **end, uint64_t *out)
{
	uint64_t v = 0;

	if (!isdigit((unsigned char)*s))
		return -1;
	for (; isdigit((unsigned char)*s); s++) {
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*end = s;
	*out = v;
	return 0;
}

/* Parse a size: digits, then K, M, G or T (binary), then B or iB. */
int
config_parse_size(const char *s, uint64_t *out)
{
	const char *p, *units = "kmgt", *u;
	uint64_t v;
	int shift = 0;

	if (config_parse_uint(s, &p, &v) == -1)
		return -1;
	if (*p != '\0' && (u = strchr(units, tolower((unsigned char)*p))) !=
	    NULL) {
		shift = 10 * (int)(u - units + 1);
		p++;
		if (strcasecmp(p, "ib") == 0)
			p += 2;
	}
	if (strcasecmp(p, "b") == 0)
		p++;
	if (*p != '\0')
		return -1;
	if (shift != 0 && v > (UINT64_MAX >> shift))
		return -1;
	*out = v << shift;
	return 0;
}

/* Parse a duration, with an optional sign if signed_ok. */
static int
config_parse_duration_sign(const char *s, double *out, bool signed_ok)
{
	double v = 0, scale = 1;
	int neg = 0, digits = 0;

	if (signed_ok && (*s == '-' || *s == '+'))
		neg = *s++ == '-';
	for (; isdigit((unsigned char)*s); s++, digits++) {
		v = v * 10 + (*s - '0');
		if (v > CONFIG_DURATION_MAX)
			return -1;
	}
	if (*s == '.') {
		for (s++; isdigit((unsigned char)*s); s++, digits++) {
			scale /= 10;
			v += (*s - '0') * scale;
		}
	}
	if (digits == 0)
		return -1;
	if (strcasecmp(s, "ms") == 0)
		v /= 1000;
	else if (*s != '\0' && strcasecmp(s, "s") != 0)
		return -1;
	*out = neg ? -v : v;
	return 0;
}

/* Parse a duration in seconds: "2", "0.5", "0.5s", "100ms". */
int
config_parse_duration(const char *s, double *out)
{
	return config_parse_duration_sign(s, out, false);
}

/* Parse a boolean: yes/no, true/false, on/off, 1/0. */
int
config_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1", NULL };
	static const char *const no[] = { "no", "false", "off", "0", NULL };
	int i;

	for (i = 0; yes[i] != NULL; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

/* Normalise a union path: one "/" between parts, none at the end. */
int
config_normalise_at(const char *s, char **out)
{
	const char *p, *end;
	char *buf, *q;
	size_t n;

	if (s == NULL || *s != '/')
		return -1;
	buf = q = xmalloc(strlen(s) + 2);
	for (p = s; *p != '\0'; p = end) {
		p += strspn(p, "/");
		end = p + strcspn(p, "/");
		n = (size_t)(end - p);
		if (n == 0)
			break;
		if ((n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.')) {
			free(buf);
			return -1;
		}
		*q++ = '/';
		memcpy(q, p, n);
		q += n;
	}
	if (q == buf)
		*q++ = '/';
	*q = '\0';
	*out = buf;
	return 0;
}

/* The control socket used when none is configured, for peer NAME. */
char *
config_default_control_socket(const char *name)
{
	const char *xdg;
	char *path;

	if (geteuid() == 0)
		xasprintf(&path, "/run/pufs/%s.sock", name);
	else if ((xdg = getenv("XDG_RUNTIME_DIR")) != NULL && *xdg == '/')
		xasprintf(&path, "%s/pufs-%s.sock", xdg, name);
	else
		xasprintf(&path, "/tmp/pufs-%u/%s.sock", (unsigned)getuid(),
		    name);
	return path;
}

/* A peer, export or cluster name: 1..63 of [A-Za-z0-9._-]. */
static int
config_check_name(const char *s, char *why, size_t len)
{
	size_t n = strlen(s);

	if (n == 0 || n > CONFIG_NAME_MAX ||
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		"0123456789._-") != n)
		return config_error(why, len,
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
static int
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
		    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			"abcdefghijklmnopqrstuvwxyz0123456789.-_") != n)
			goto bad;
	}
	if (config_check_port(colon + 1) == -1)
		goto bad;
	return 0;
bad:
	return config_error(why, len,
	    "bad address '%s' (HOST:PORT or [IPV6]:PORT, port 1-65535)", s);
}

/* An IPv4 (224.0.0.0/4) or IPv6 (ff00::/8) multicast address. */
static int
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
	return config_error(why, len,
	    "'%s' is not an IPv4 or IPv6 multicast address", s);
}

/* A network interface name. */
static int
config_check_ifname(const char *s, char *why, size_t len)
{
	size_t n = strlen(s);

	if (n == 0 || n >= IFNAMSIZ || strcspn(s, "/: \t") != n)
		return config_error(why, len, "bad interface name '%s'", s);
	return 0;
}

/* A path that fits in a unix socket address. */
static int
config_check_socket(const char *s, char *why, size_t len)
{
	struct sockaddr_un sun;

	if (*s == '\0' || strlen(s) >= sizeof sun.sun_path)
		return config_error(why, len,
		    "socket path '%s' is empty or longer than %zu bytes", s,
		    sizeof sun.sun_path - 1);
	return 0;
}

/* An absolute path. */
static int
config_check_abspath(const char *s, char *why, size_t len)
{
	if (*s != '/')
		return config_error(why, len, "'%s' is not an absolute path",
		    s);
	return 0;
}

/* Check an integer or size against the key's range. */
static int
config_check_range(const struct config_key *k, uint64_t v, char *why,
    size_t len)
{
	char a[32], b[32], c[32];

	if (k->type == CONFIG_SIZE) {
		if (v >= k->min && v <= k->max &&
		    (!k->pow2 || (v & (v - 1)) == 0))
			return 0;
		config_format_size(v, a, sizeof a);
		config_format_size(k->min, b, sizeof b);
		config_format_size(k->max, c, sizeof c);
		if (k->max == UINT64_MAX)
			return config_error(why, len, "%s is less than %s", a,
			    b);
		return config_error(why, len, "%s is not %sbetween %s and %s",
		    a, k->pow2 ? "a power of two " : "", b, c);
	}
	if (v >= k->min && v <= k->max)
		return 0;
	return config_error(why, len, "%llu is out of range %llu..%llu",
	    (unsigned long long)v, (unsigned long long)k->min,
	    (unsigned long long)k->max);
}

/* Check a duration against the key's lower bound. */
static int
config_check_duration(const struct config_key *k, double v, char *why,
    size_t len)
{
	if (v != v || v > CONFIG_DURATION_MAX)
		return config_error(why, len, "bad duration %g", v);
	if (k->positive && v <= 0)
		return config_error(why, len, "must be more than 0 seconds");
	if (v < 0)
		return config_error(why, len, "must not be negative");
	return 0;
}

/* Free a list of strings. */
static void
config_free_list(char **list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

/* Split a list on blanks and commas and append the entries to *list. */
static int
config_parse_list(const struct config_key *k, const char *value,
    char ***list, size_t *n, char *why, size_t len)
{
	const char *p, *sep = " \t,";
	char *item;
	size_t l;

	for (p = value + strspn(value, sep); *p != '\0';
	     p += l, p += strspn(p, sep)) {
		l = strcspn(p, sep);
		item = xstrndup(p, l);
		if (k->check != NULL && k->check(item, why, len) == -1) {
			free(item);
			return -1;
		}
		*list = xreallocarray(*list, *n + 1, sizeof **list);
		(*list)[(*n)++] = item;
	}
	return 0;
}

/* Parse value for key k and store it into base; why gets the reason. */
static int
config_store(const struct config_key *k, void *base, const char *value,
    bool append, char *why, size_t len)
{
	void *field = (char *)base + k->off;
	char **list = NULL, ***dst, *s;
	size_t n = 0, i, *count;
	uint64_t v;
	double d;
	const char *end;
	bool b;

	if (append && k->type != CONFIG_LIST)
		return config_error(why, len,
		    "continuation lines are allowed for peer.peers only");

	switch (k->type) {
	case CONFIG_STRING:
		if (*value == '\0' && k->optional) {
			free(*(char **)field);
			*(char **)field = NULL;
			return 0;
		}
		if (k->check != NULL && k->check(value, why, len) == -1)
			return -1;
		if (k->check == NULL && *value == '\0')
			return config_error(why, len, "empty value");
		free(*(char **)field);
		*(char **)field = xstrdup(value);
		return 0;
	case CONFIG_AT:
		if (config_normalise_at(value, &s) == -1)
			return config_error(why, len,
			    "bad union path '%s' (absolute, no . or ..)",
			    value);
		free(*(char **)field);
		*(char **)field = s;
		return 0;
	case CONFIG_LIST:
		if (config_parse_list(k, value, &list, &n, why, len) == -1) {
			config_free_list(list, n);
			return -1;
		}
		dst = field;
		count = (size_t *)((char *)base + k->count_off);
		if (!append) {
			config_free_list(*dst, *count);
			*dst = list;
			*count = n;
			return 0;
		}
		*dst = xreallocarray(*dst, *count + n, sizeof **dst);
		for (i = 0; i < n; i++)
			(*dst)[(*count)++] = list[i];
		free(list);
		return 0;
	case CONFIG_PORT:
	case CONFIG_INT:
	case CONFIG_U32:
		if (config_parse_uint(value, &end, &v) == -1 || *end != '\0')
			return config_error(why, len, "bad integer '%s'",
			    value);
		if (config_check_range(k, v, why, len) == -1)
			return -1;
		if (k->type == CONFIG_PORT)
			*(uint16_t *)field = (uint16_t)v;
		else if (k->type == CONFIG_INT)
			*(int *)field = (int)v;
		else
			*(uint32_t *)field = (uint32_t)v;
		return 0;
	case CONFIG_SIZE:
		if (config_parse_size(value, &v) == -1)
			return config_error(why, len, "bad size '%s'", value);
		if (config_check_range(k, v, why, len) == -1)
			return -1;
		*(uint64_t *)field = v;
		return 0;
	case CONFIG_DURATION:
		if (config_parse_duration(value, &d) == -1)
			return config_error(why, len, "bad duration '%s'",
			    value);
		if (config_check_duration(k, d, why, len) == -1)
			return -1;
		*(double *)field = d;
		return 0;
	case CONFIG_BOOL:
		if (config_parse_bool(value, &b) == -1)
			return config_error(why, len,
			    "bad boolean '%s' (yes or no)", value);
		*(bool *)field = b;
		return 0;
	case CONFIG_ENUM:
		for (i = 0; k->names[i] != NULL; i++) {
			if (strcasecmp(value, k->names[i]) == 0) {
				*(int *)field = (int)i;
				return 0;
			}
		}
		config_error(why, len, "bad value '%s' (", value);
		for (i = 0; k->names[i] != NULL; i++)
			config_append(why, len, "%s%s", i ? " | " : "",
			    k->names[i]);
		return config_append(why, len, ")");
	}
	fatalx("%s: bad key type %d", __func__, (int)k->type);
}

/* Check a stored value of key k against its rules once more. */
static int
config_recheck(const struct config_key *k, const void *base, char *why,
    size_t len)
{
	const void *field = (const char *)base + k->off;
	const char *s;
	char *const *list;
	size_t n, i;

	switch (k->type) {
	case CONFIG_STRING:
		s = *(char *const *)field;
		if (s == NULL)
			return k->optional ? 0 : config_error(why, len,
			    "not set");
		return k->check == NULL ? 0 : k->check(s, why, len);
	case CONFIG_AT:
		return 0;
	case CONFIG_LIST:
		list = *(char **const *)field;
		n = *(const size_t *)((const char *)base + k->count_off);
		for (i = 0; i < n; i++)
			if (k->check(list[i], why, len) == -1)
				return -1;
		return 0;
	case CONFIG_PORT:
		return config_check_range(k, *(const uint16_t *)field, why,
		    len);
	case CONFIG_INT:
		if (*(const int *)field < 0)
			return config_error(why, len, "%d is negative",
			    *(const int *)field);
		return config_check_range(k, (uint64_t)*(const int *)field,
		    why, len);
	case CONFIG_U32:
		return config_check_range(k, *(const uint32_t *)field, why,
		    len);
	case CONFIG_SIZE:
		return config_check_range(k, *(const uint64_t *)field, why,
		    len);
	case CONFIG_DURATION:
		return config_check_duration(k, *(const double *)field, why,
		    len);
	case CONFIG_BOOL:
		return 0;
	case CONFIG_ENUM:
		n = (size_t)*(const int *)field;
		for (i = 0; k->names[i] != NULL; i++)
			if (i == n)
				return 0;
		return config_error(why, len, "bad value %d",
		    *(const int *)field);
	}
	fatalx("%s: bad key type %d", __func__, (int)k->type);
}

/* Find an export by name. */
static struct config_export *
config_find_export(struct config *cfg, const char *name)
{
	size_t i;

	for (i = 0; i < cfg->nexports; i++)
		if (strcmp(cfg->exports[i].name, name) == 0)
			return &cfg->exports[i];
	return NULL;
}

/* Find a cluster by name. */
static struct config_cluster *
config_find_cluster(struct config *cfg, const char *name)
{
	size_t i;

	for (i = 0; i < cfg->nclusters; i++)
		if (strcmp(cfg->clusters[i].name, name) == 0)
			return &cfg->clusters[i];
	return NULL;
}

/* Append an export named name, exported at "/", and return it. */
static struct config_export *
config_new_export(struct config *cfg, const char *name)
{
	struct config_export *e;

	cfg->exports = xreallocarray(cfg->exports, cfg->nexports + 1,
	    sizeof *cfg->exports);
	e = &cfg->exports[cfg->nexports++];
	memset(e, 0, sizeof *e);
	e->name = xstrdup(name);
	e->at = xstrdup("/");
	return e;
}

/* Append a cluster named name, at "/NAME" until told otherwise. */
static struct config_cluster *
config_new_cluster(struct config *cfg, const char *name)
{
	struct config_cluster *c;

	cfg->clusters = xreallocarray(cfg->clusters, cfg->nclusters + 1,
	    sizeof *cfg->clusters);
	c = &cfg->clusters[cfg->nclusters++];
	memset(c, 0, sizeof *c);
	c->name = xstrdup(name);
	xasprintf(&c->at, "/%s", name);
	c->balance = BALANCE_ROUNDROBIN;
	return c;
}

/*
 * Resolve a section name to its table and storage.  With fresh set, an
 * export or cluster section must not exist yet (a new header in a file).
 */
static const struct config_section *
config_open_section(struct config *cfg, const char *section, bool fresh,
    void **base, char *why, size_t len)
{
	const struct config_section *sec = NULL;
	const char *colon, *name = NULL;
	size_t i, n;

	colon = strchr(section, ':');
	n = colon != NULL ? (size_t)(colon - section) : strlen(section);
	for (i = 0; i < sizeof config_sections / sizeof *config_sections;
	     i++) {
		sec = &config_sections[i];
		if (strlen(sec->name) == n && strncmp(sec->name, section, n) ==
		    0)
			break;
	}
	if (i == sizeof config_sections / sizeof *config_sections ||
	    (sec->base == CONFIG_BASE_CONFIG) != (colon == NULL)) {
		config_error(why, len, "unknown section [%s]", section);
		return NULL;
	}
	if (sec->base == CONFIG_BASE_CONFIG) {
		*base = cfg;
		return sec;
	}
	name = colon + 1;
	if (config_check_name(name, NULL, 0) == -1) {
		config_error(why, len,
		    "bad %s name in [%s] (1 to %d of A-Z a-z 0-9 . _ -)",
		    sec->name, section, CONFIG_NAME_MAX);
		return NULL;
	}
	if (sec->base == CONFIG_BASE_EXPORT)
		*base = config_find_export(cfg, name);
	else
		*base = config_find_cluster(cfg, name);
	if (*base != NULL && fresh) {
		config_error(why, len, "duplicate section [%s]", section);
		return NULL;
	}
	if (*base == NULL && sec->base == CONFIG_BASE_EXPORT)
		*base = config_new_export(cfg, name);
	else if (*base == NULL)
		*base = config_new_cluster(cfg, name);
	return sec;
}

/* Find key in a section's table. */
static const struct config_key *
config_find_key(const struct config_section *sec, const char *key)
{
	const struct config_key *k;

	for (k = sec->keys; k->name != NULL; k++)
		if (strcmp(k->name, key) == 0)
			return k;
	return NULL;
}

/* config_set, or with append add to a list key (a continuation line). */
static int
config_apply(struct config *cfg, const char *section, const char *key,
    const char *value, const char *origin, bool append, char *err,
    size_t errlen)
{
	const struct config_section *sec;
	const struct config_key *k;
	char why[CONFIG_ERRLEN];
	void *base;

	if ((sec = config_open_section(cfg, section, false, &base, why,
	    sizeof why)) == NULL)
		return config_error(err, errlen, "%s: %s", origin, why);
	if ((k = config_find_key(sec, key)) == NULL)
		return config_error(err, errlen,
		    "%s: unknown key '%s' in [%s]", origin, key, section);
	if (config_store(k, base, value, append, why, sizeof why) == -1)
		return config_error(err, errlen, "%s: %s.%s: %s", origin,
		    section, key, why);
	return 0;
}

/* Set one key from any source; errors name origin, section and key. */
int
config_set(struct config *cfg, const char *section, const char *key,
    const char *value, const char *origin, char *err, size_t errlen)
{
	return config_apply(cfg, section, key, value, origin, false, err,
	    errlen);
}

/* Fill in the built-in defaults. */
void
config_init(struct config *cfg)
{
	char host[HOST_NAME_MAX + 1];

	memset(cfg, 0, sizeof *cfg);
	if (gethostname(host, sizeof host) == -1 || host[0] == '\0')
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = '\0';
	cfg->name = xstrdup(host);
	cfg->listen = xstrdup("0.0.0.0:7070");
	cfg->discovery = DISCOVERY_MULTICAST;
	cfg->multicast_group = xstrdup("239.255.70.70");
	cfg->multicast_port = 7070;
	cfg->multicast_ttl = 1;
	cfg->op_timeout = 10;
	cfg->heartbeat = 1;
	cfg->dead_after = 3;
	cfg->create_policy = CREATE_LOCAL;
	cfg->max_handles = 1024;
	cfg->attr_timeout = 5;
	cfg->trap_delay = 0.1;
	cfg->block_size = 128 << 10;
	cfg->cache_size = 256 << 20;
	cfg->readahead_max = 32;
	cfg->writeback_interval = 1;
	cfg->direct_io = false;
	cfg->encrypt = false;
}

/* Release everything the config owns and leave it zeroed. */
void
config_free(struct config *cfg)
{
	size_t i;

	free(cfg->name);
	free(cfg->listen);
	free(cfg->multicast_group);
	free(cfg->multicast_interface);
	config_free_list(cfg->peers, cfg->npeers);
	free(cfg->control_socket);
	for (i = 0; i < cfg->nexports; i++) {
		free(cfg->exports[i].name);
		free(cfg->exports[i].path);
		free(cfg->exports[i].at);
	}
	free(cfg->exports);
	for (i = 0; i < cfg->nclusters; i++) {
		free(cfg->clusters[i].name);
		free(cfg->clusters[i].path);
		free(cfg->clusters[i].at);
	}
	free(cfg->clusters);
	free(cfg->key_file);
	free(cfg->mountpoint);
	free(cfg->config_file);
	memset(cfg, 0, sizeof *cfg);
}

/* Record the first error met while reading a file. */
static void PRINTFLIKE(3, 4)
config_file_fail(struct config_file *cf, int line, const char *fmt, ...)
{
	va_list ap;

	if (cf->failed)
		return;
	cf->failed = true;
	cf->errline = line;
	va_start(ap, fmt);
	vsnprintf(cf->err, cf->errlen, fmt, ap);
	va_end(ap);
}

/* Handle a "[section]" line: open the section or record why not. */
static void
config_file_section(struct config_file *cf, char *p)
{
	char why[CONFIG_ERRLEN], *close, *name, *rest;
	void *base;

	free(cf->section);
	cf->section = NULL;
	cf->has_key = false;
	if ((close = strchr(p, ']')) == NULL) {
		config_file_fail(cf, cf->lineno, "%s:%d: missing ']'",
		    cf->path, cf->lineno);
		return;
	}
	rest = close + 1 + strspn(close + 1, " \t");
	if (*rest != '\0' && *rest != ';' && *rest != '#') {
		config_file_fail(cf, cf->lineno,
		    "%s:%d: text after the section header", cf->path,
		    cf->lineno);
		return;
	}
	*close = '\0';
	name = p + 1 + strspn(p + 1, " \t");
	while (close > name && (close[-1] == ' ' || close[-1] == '\t'))
		*--close = '\0';
	if (config_open_section(cf->cfg, name, true, &base, why,
	    sizeof why) == NULL) {
		config_file_fail(cf, cf->lineno, "%s:%d: %s", cf->path,
		    cf->lineno, why);
		return;
	}
	cf->section = xstrdup(name);
}

/*
 * inih's reader: hand it one line at a time, counting lines, opening
 * sections, and deciding whether an indented line continues the last key
 * (inih would make every indented line a continuation).
 */
static char *
config_file_read(char *str, int num, void *arg)
{
	struct config_file *cf = arg;
	char *line, *p, *c, copy[CONFIG_ERRLEN];
	ssize_t n;

	cf->continuation = false;
	if (cf->failed)
		return NULL;
	errno = 0;
	if ((n = getline(&cf->buf, &cf->bufsize, cf->fp)) == -1) {
		if (ferror(cf->fp))
			config_file_fail(cf, 0, "%s: cannot read: %s",
			    cf->path, strerror(errno));
		return NULL;
	}
	cf->lineno++;
	line = cf->buf;
	if (memchr(line, '\0', (size_t)n) != NULL) {
		config_file_fail(cf, cf->lineno, "%s:%d: NUL byte in line",
		    cf->path, cf->lineno);
		return NULL;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	if (cf->lineno == 1 && strncmp(line, "\xef\xbb\xbf", 3) == 0) {
		line += 3;
		n -= 3;
	}
	if (n > num - 2) {
		config_file_fail(cf, cf->lineno,
		    "%s:%d: line longer than %d characters (split peer.peers "
		    "over indented lines)", cf->path, cf->lineno, num - 2);
		return NULL;
	}
	p = line + strspn(line, " \t");
	if (*p == '[') {
		snprintf(copy, sizeof copy, "%s", p);
		config_file_section(cf, copy);
	} else if (p != line && *p != '\0' && *p != ';' && *p != '#' &&
	    cf->has_key && strchr(p, '=') == NULL) {
		/* inih keeps the comment of a continuation line: cut it. */
		for (c = p; (c = strchr(c, ';')) != NULL; c++) {
			if (c[-1] == ' ' || c[-1] == '\t') {
				*c = '\0';
				break;
			}
		}
		cf->continuation = true;
		p = line;
	}
	snprintf(str, (size_t)num, "%s\n", p);
	return str;
}

/* inih's handler: apply one key of the current section. */
static int
config_file_handler(void *arg, const char *inisection, const char *key,
    const char *value)
{
	struct config_file *cf = arg;
	char origin[PATH_MAX + 32], err[CONFIG_ERRLEN];

	cf->has_key = true;
	if (cf->failed)
		return 0;
	if (cf->section == NULL) {
		config_file_fail(cf, cf->lineno,
		    "%s:%d: key '%s' is outside any [section]", cf->path,
		    cf->lineno, key);
		return 0;
	}
	snprintf(origin, sizeof origin, "%s:%d", cf->path, cf->lineno);
	if (config_apply(cf->cfg, cf->section, key, value, origin,
	    cf->continuation, err, sizeof err) == -1) {
		config_file_fail(cf, cf->lineno, "%s", err);
		return 0;
	}
	return 1;
}

/* Parse an INI file into cfg. */
int
config_load_file(struct config *cfg, const char *path, char *err,
    size_t errlen)
{
	struct config_file cf;
	int ret;

	memset(&cf, 0, sizeof cf);
	cf.cfg = cfg;
	cf.path = path;
	cf.err = err;
	cf.errlen = errlen;
	if ((cf.fp = fopen(path, "re")) == NULL)
		return config_error(err, errlen, "%s: cannot open: %s", path,
		    strerror(errno));
	free(cfg->config_file);
	cfg->config_file = xstrdup(path);

	ret = ini_parse_stream(config_file_read, &cf, config_file_handler,
	    &cf);
	fclose(cf.fp);
	free(cf.buf);
	free(cf.section);
	if (ret > 0 && (!cf.failed || (cf.errline != 0 && ret < cf.errline)))
		return config_error(err, errlen,
		    "%s:%d: syntax error (expected 'key = value' or "
		    "'[section]')", path, ret);
	if (cf.failed)
		return -1;
	if (ret != 0)
		return config_error(err, errlen, "%s: cannot parse", path);
	return 0;
}

/* Whether section may be set from the environment and -o. */
static bool
config_overridable(const char *section)
{
	size_t i;

	for (i = 0; config_override_sections[i] != NULL; i++)
		if (strcmp(config_override_sections[i], section) == 0)
			return true;
	return false;
}

/* Apply PUFS_SECTION_KEY variables. */
int
config_load_env(struct config *cfg, char *const *envp, char *err,
    size_t errlen)
{
	const char *var, *eq, *key;
	char origin[128], name[64];
	size_t i, j, n = 0;

	for (; envp != NULL && *envp != NULL; envp++) {
		var = *envp;
		if (strncmp(var, "PUFS_", 5) != 0 ||
		    (eq = strchr(var, '=')) == NULL)
			continue;
		for (i = 0; config_override_sections[i] != NULL; i++) {
			n = strlen(config_override_sections[i]);
			if (strncasecmp(var + 5, config_override_sections[i],
			    n) == 0 && var[5 + n] == '_')
				break;
		}
		if (config_override_sections[i] == NULL)
			continue;
		key = var + 5 + n + 1;
		n = (size_t)(eq - key);
		if (n >= sizeof name)
			n = sizeof name - 1;
		for (j = 0; j < n; j++)
			name[j] = (char)tolower((unsigned char)key[j]);
		name[n] = '\0';
		snprintf(origin, sizeof origin, "environment %.*s",
		    (int)(eq - var) > 100 ? 100 : (int)(eq - var), var);
		if (config_set(cfg, config_override_sections[i], name,
		    eq + 1, origin, err, errlen) == -1)
			return -1;
	}
	return 0;
}

/* Apply one -o pair "section.key=value". */
static int
config_load_pair(struct config *cfg, const char *pair, char *err,
    size_t errlen)
{
	char *copy, *dot, *eq, origin[CONFIG_ERRLEN];
	double skew;
	int ret;

	snprintf(origin, sizeof origin, "-o %s", pair);
	copy = xstrdup(pair);
	eq = strchr(copy, '=');
	dot = strchr(copy, '.');
	if (eq == NULL || dot == NULL || dot > eq) {
		free(copy);
		return config_error(err, errlen,
		    "%s: expected section.key=value", origin);
	}
	*dot = '\0';
	*eq = '\0';
	if (strcmp(copy, "debug") == 0 &&
	    strcmp(dot + 1, "time_control") == 0) {
		if (config_parse_bool(eq + 1, &cfg->debug_time_control) == -1)
			ret = config_error(err, errlen,
			    "%s: debug.time_control: bad boolean '%s'", origin,
			    eq + 1);
		else
			ret = 0;
	} else if (strcmp(copy, "debug") == 0) {
		if (strcmp(dot + 1, "clock_skew") != 0)
			ret = config_error(err, errlen,
			    "%s: unknown key '%s' in [debug]", origin, dot + 1);
		else if (config_parse_duration_sign(eq + 1, &skew, true) == -1)
			ret = config_error(err, errlen,
			    "%s: debug.clock_skew: bad duration '%s'", origin,
			    eq + 1);
		else {
			cfg->debug_clock_skew = skew;
			ret = 0;
		}
	} else if (!config_overridable(copy)) {
		ret = config_error(err, errlen,
		    "%s: only [peer], [cache] and [security] keys can be set "
		    "with -o", origin);
	} else
		ret = config_set(cfg, copy, dot + 1, eq + 1, origin, err,
		    errlen);
	free(copy);
	return ret;
}

/* Apply one -o argument: comma-separated section.key=value pairs. */
int
config_load_opts(struct config *cfg, const char *arg, char *err,
    size_t errlen)
{
	char *copy, *p, *pair;
	int ret = 0;

	copy = p = xstrdup(arg);
	while (ret == 0 && (pair = strsep(&p, ",")) != NULL) {
		if (*pair != '\0')
			ret = config_load_pair(cfg, pair, err, errlen);
	}
	free(copy);
	return ret;
}

/* Add an export from -e DIR[:ro]; DIR must exist and is resolved. */
int
config_add_export_arg(struct config *cfg, const char *arg, char *err,
    size_t errlen)
{
	struct config_export *e;
	struct stat st;
	char *dir, *real, name[32];
	size_t n = strlen(arg), i;
	bool ro = false;

	if (n > 3 && (strcmp(arg + n - 3, ":ro") == 0 ||
	    strcmp(arg + n - 3, ":rw") == 0)) {
		ro = arg[n - 2] == 'r' && arg[n - 1] == 'o';
		n -= 3;
	}
	if (n == 0)
		return config_error(err, errlen, "-e %s: no directory given",
		    arg);
	dir = xstrndup(arg, n);
	real = realpath(dir, NULL);
	free(dir);
	if (real == NULL)
		return config_error(err, errlen, "-e %s: %s", arg,
		    strerror(errno));
	if (stat(real, &st) == -1 || !S_ISDIR(st.st_mode)) {
		free(real);
		return config_error(err, errlen, "-e %s: %s", arg,
		    strerror(ENOTDIR));
	}
	for (i = 0;; i++) {
		snprintf(name, sizeof name, "e%zu", i);
		if (config_find_export(cfg, name) == NULL)
			break;
	}
	e = config_new_export(cfg, name);
	e->path = real;
	e->read_only = ro;
	e->from_arg = true;
	return 0;
}

/* Re-check every key of a section's table stored at base. */
static int
config_validate_keys(const struct config_key *keys, const void *base,
    const char *section, char *err, size_t errlen)
{
	const struct config_key *k;
	char why[CONFIG_ERRLEN];

	for (k = keys; k->name != NULL; k++)
		if (config_recheck(k, base, why, sizeof why) == -1)
			return config_error(err, errlen, "%s.%s: %s", section,
			    k->name, why);
	return 0;
}

/* Check that an export or cluster path names an existing directory. */
static int
config_validate_dir(const char *file, const char *kind, const char *name,
    const char *path, char *err, size_t errlen)
{
	const char *sep = file != NULL ? ": " : "";
	struct stat st;

	if (file == NULL)
		file = "";
	if (path == NULL)
		return config_error(err, errlen, "%s%s[%s:%s]: no path given",
		    file, sep, kind, name);
	if (stat(path, &st) == -1)
		return config_error(err, errlen, "%s%s[%s:%s]: path '%s': %s",
		    file, sep, kind, name, path, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return config_error(err, errlen, "%s%s[%s:%s]: path '%s': %s",
		    file, sep, kind, name, path, strerror(ENOTDIR));
	return 0;
}

/* Check exports and clusters: names, paths, union places. */
static int
config_validate_exports(struct config *cfg, char *err, size_t errlen)
{
	char section[CONFIG_NAME_MAX + 16], why[CONFIG_ERRLEN];
	struct config_export *e;
	struct config_cluster *c;
	size_t i, j;

	for (i = 0; i < cfg->nexports; i++) {
		e = &cfg->exports[i];
		if (config_check_name(e->name, why, sizeof why) == -1)
			return config_error(err, errlen, "export: %s", why);
		for (j = 0; j < i; j++)
			if (strcmp(cfg->exports[j].name, e->name) == 0)
				return config_error(err, errlen,
				    "duplicate export name '%s'", e->name);
		snprintf(section, sizeof section, "export:%s", e->name);
		if (e->path != NULL && config_validate_keys(config_export_keys,
		    e, section, err, errlen) == -1)
			return -1;
		if (config_validate_dir(e->from_arg ? NULL : cfg->config_file,
		    "export", e->name, e->path, err, errlen) == -1)
			return -1;
		if (e->at == NULL)
			e->at = xstrdup("/");
	}
	for (i = 0; i < cfg->nclusters; i++) {
		c = &cfg->clusters[i];
		if (config_check_name(c->name, why, sizeof why) == -1)
			return config_error(err, errlen, "cluster: %s", why);
		for (j = 0; j < i; j++)
			if (strcmp(cfg->clusters[j].name, c->name) == 0)
				return config_error(err, errlen,
				    "duplicate cluster name '%s'", c->name);
		snprintf(section, sizeof section, "cluster:%s", c->name);
		if (c->path != NULL && config_validate_keys(
		    config_cluster_keys, c, section, err, errlen) == -1)
			return -1;
		if (config_validate_dir(cfg->config_file, "cluster", c->name,
		    c->path, err, errlen) == -1)
			return -1;
		if (c->at == NULL)
			xasprintf(&c->at, "/%s", c->name);
	}
	return 0;
}

/* Whole-config checks after every source has been applied. */
int
config_validate(struct config *cfg, char *err, size_t errlen)
{
	struct stat st;
	char a[32], b[32], why[CONFIG_ERRLEN];

	if (config_validate_keys(config_peer_keys, cfg, "peer", err,
	    errlen) == -1 ||
	    config_validate_keys(config_cache_keys, cfg, "cache", err,
	    errlen) == -1 ||
	    config_validate_keys(config_security_keys, cfg, "security", err,
	    errlen) == -1)
		return -1;
	if (cfg->dead_after <= cfg->heartbeat)
		return config_error(err, errlen,
		    "peer.dead_after: %g must be more than peer.heartbeat %g",
		    cfg->dead_after, cfg->heartbeat);
	if (cfg->cache_size / 4 < cfg->block_size) {
		config_format_size(cfg->cache_size, a, sizeof a);
		config_format_size(cfg->block_size, b, sizeof b);
		return config_error(err, errlen,
		    "cache.cache_size: %s is less than 4 blocks of "
		    "cache.block_size %s", a, b);
	}
	if (cfg->encrypt && cfg->key_file == NULL)
		return config_error(err, errlen,
		    "security.encrypt: yes needs security.key_file");
	if (cfg->key_file != NULL) {
		if (stat(cfg->key_file, &st) == -1)
			return config_error(err, errlen,
			    "security.key_file: '%s': %s", cfg->key_file,
			    strerror(errno));
		if (!S_ISREG(st.st_mode))
			return config_error(err, errlen,
			    "security.key_file: '%s' is not a regular file",
			    cfg->key_file);
	}
	if (config_validate_exports(cfg, err, errlen) == -1)
		return -1;
	if (cfg->control_socket == NULL) {
		cfg->control_socket = config_default_control_socket(cfg->name);
		if (config_check_socket(cfg->control_socket, why,
		    sizeof why) == -1)
			return config_error(err, errlen,
			    "peer.control_socket: default %s", why);
	}
	return 0;
}
