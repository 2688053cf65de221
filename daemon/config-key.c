/*
 * config-key.c - the table of sections and keys, and how one value is
 * stored into its field and checked again.
 *
 * Each key names its type, its field (an offset into struct config,
 * struct config_export or struct config_cluster) and its rules: a range,
 * a power of two, a check of the string.  config_key_store() parses and
 * checks a value from any source; config_key_validate() checks the
 * stored values once more, since callers may fill fields directly.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config-int.h"

static const char *const config_key_discovery_names[] = {
	[DISCOVERY_MULTICAST] = "multicast",
	[DISCOVERY_UNICAST] = "unicast",
	NULL,
};

static const char *const config_key_create_names[] = {
	[CREATE_LOCAL] = "local",
	[CREATE_MOSTFREE] = "mostfree",
	[CREATE_ROUNDROBIN] = "roundrobin",
	NULL,
};

static const char *const config_key_identity_names[] = {
	[IDENTITY_DAEMON] = "daemon",
	[IDENTITY_CALLER] = "caller",
	NULL,
};

static const char *const config_key_balance_names[] = {
	[BALANCE_ROUNDROBIN] = "roundrobin",
	[BALANCE_LEASTLOAD] = "leastload",
	NULL,
};

_Static_assert(sizeof(enum config_discovery) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_create_policy) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_balance) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_identity) == sizeof(int), "enum size");

#define C(f) offsetof(struct config, f)
#define E(f) offsetof(struct config_export, f)
#define L(f) offsetof(struct config_cluster, f)
#define K(n, t, o) .name = (n), .type = (t), .off = (o)

static const struct config_key config_key_peer[] = {
	{ K("name", CONFIG_STRING, C(name)), .check = config_check_name },
	{ K("listen", CONFIG_STRING, C(listen)),
	    .check = config_check_hostport },
	{ K("discovery", CONFIG_ENUM, C(discovery)),
	    .names = config_key_discovery_names },
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
	    .names = config_key_create_names },
	{ K("max_handles", CONFIG_U32, C(max_handles)), .min = 1,
	    .max = 1 << 20 },
	{ K("metrics", CONFIG_STRING, C(metrics)), .optional = true,
	    .check = config_check_hostport },
	{ .name = NULL },
};

static const struct config_key config_key_cache[] = {
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

static const struct config_key config_key_security[] = {
	{ K("key_file", CONFIG_STRING, C(key_file)), .optional = true },
	{ K("encrypt", CONFIG_BOOL, C(encrypt)) },
	{ K("identity", CONFIG_ENUM, C(identity)),
	    .names = config_key_identity_names },
	{ K("root_squash", CONFIG_BOOL, C(root_squash)) },
	{ .name = NULL },
};

static const struct config_key config_key_export[] = {
	{ K("path", CONFIG_STRING, E(path)), .check = config_check_abspath },
	{ K("at", CONFIG_AT, E(at)) },
	{ K("read_only", CONFIG_BOOL, E(read_only)) },
	{ .name = NULL },
};

static const struct config_key config_key_cluster[] = {
	{ K("path", CONFIG_STRING, L(path)), .check = config_check_abspath },
	{ K("at", CONFIG_AT, L(at)) },
	{ K("balance", CONFIG_ENUM, L(balance)),
	    .names = config_key_balance_names },
	{ .name = NULL },
};

#undef C
#undef E
#undef L
#undef K

static const struct config_section config_key_sections[] = {
	{ "peer", CONFIG_BASE_CONFIG, config_key_peer },
	{ "cache", CONFIG_BASE_CONFIG, config_key_cache },
	{ "security", CONFIG_BASE_CONFIG, config_key_security },
	{ "export", CONFIG_BASE_EXPORT, config_key_export },
	{ "cluster", CONFIG_BASE_CLUSTER, config_key_cluster },
};

/* The section whose name is the len bytes at name, or NULL. */
const struct config_section *
config_key_section(const char *name, size_t len)
{
	const struct config_section *sec;
	size_t i;

	for (i = 0;
	     i < sizeof config_key_sections / sizeof *config_key_sections;
	     i++) {
		sec = &config_key_sections[i];
		if (strlen(sec->name) == len &&
		    strncmp(sec->name, name, len) == 0)
			return sec;
	}
	return NULL;
}

/* Find key in a section's table. */
const struct config_key *
config_key_find(const struct config_section *sec, const char *key)
{
	const struct config_key *k;

	for (k = sec->keys; k->name != NULL; k++)
		if (strcmp(k->name, key) == 0)
			return k;
	return NULL;
}

/* Check an integer or size against the key's range. */
static int
config_key_range(const struct config_key *k, uint64_t v, char *why, size_t len)
{
	char a[32], b[32], c[32];

	if (k->type == CONFIG_SIZE) {
		if (v >= k->min && v <= k->max &&
		    (!k->pow2 || (v & (v - 1)) == 0))
			return 0;
		config_msg_size(v, a, sizeof a);
		config_msg_size(k->min, b, sizeof b);
		config_msg_size(k->max, c, sizeof c);
		if (k->max == UINT64_MAX)
			return config_msg_error(why, len, "%s is less than %s",
			    a, b);
		return config_msg_error(why, len,
		    "%s is not %sbetween %s and %s", a,
		    k->pow2 ? "a power of two " : "", b, c);
	}
	if (v >= k->min && v <= k->max)
		return 0;
	return config_msg_error(why, len, "%llu is out of range %llu..%llu",
	    (unsigned long long)v, (unsigned long long)k->min,
	    (unsigned long long)k->max);
}

/* Check a duration against the key's lower bound. */
static int
config_key_duration(const struct config_key *k, double v, char *why, size_t len)
{
	if (v != v || v > CONFIG_DURATION_MAX)
		return config_msg_error(why, len, "bad duration %g", v);
	if (k->positive && v <= 0)
		return config_msg_error(why, len,
		    "must be more than 0 seconds");
	if (v < 0)
		return config_msg_error(why, len, "must not be negative");
	return 0;
}

/*
 * Parse value for key k and store it into base (the section's
 * structure); with append, add to a list key (a continuation line).
 * why gets the reason of an error.
 */
int
config_key_store(const struct config_key *k, void *base, const char *value,
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
		return config_msg_error(why, len,
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
		free(*(char **)field);
		*(char **)field = xstrdup(value);
		return 0;
	case CONFIG_AT:
		if (config_parse_at(value, &s) == -1)
			return config_msg_error(why, len,
			    "bad union path '%s' (absolute, no . or ..)",
			    value);
		free(*(char **)field);
		*(char **)field = s;
		return 0;
	case CONFIG_LIST:
		if (config_parse_list(value, k->check, &list, &n, why, len) ==
		    -1) {
			config_parse_free_list(list, n);
			return -1;
		}
		dst = field;
		count = (size_t *)((char *)base + k->count_off);
		if (!append) {
			config_parse_free_list(*dst, *count);
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
			return config_msg_error(why, len, "bad integer '%s'",
			    value);
		if (config_key_range(k, v, why, len) == -1)
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
			return config_msg_error(why, len, "bad size '%s'",
			    value);
		if (config_key_range(k, v, why, len) == -1)
			return -1;
		*(uint64_t *)field = v;
		return 0;
	case CONFIG_DURATION:
		if (config_parse_duration(value, &d) == -1)
			return config_msg_error(why, len, "bad duration '%s'",
			    value);
		if (config_key_duration(k, d, why, len) == -1)
			return -1;
		*(double *)field = d;
		return 0;
	case CONFIG_BOOL:
		if (config_parse_bool(value, &b) == -1)
			return config_msg_error(why, len,
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
		config_msg_error(why, len, "bad value '%s' (", value);
		for (i = 0; k->names[i] != NULL; i++)
			config_msg_append(why, len, "%s%s", i ? " | " : "",
			    k->names[i]);
		return config_msg_append(why, len, ")");
	}
	fatalx("%s: bad key type %d", __func__, (int)k->type);
}

/* Check a stored value of key k against its rules once more. */
static int
config_key_recheck(const struct config_key *k, const void *base, char *why,
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
			return k->optional
			    ? 0
			    : config_msg_error(why, len, "not set");
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
		return config_key_range(k, *(const uint16_t *)field, why, len);
	case CONFIG_INT:
		if (*(const int *)field < 0)
			return config_msg_error(why, len, "%d is negative",
			    *(const int *)field);
		return config_key_range(k, (uint64_t) * (const int *)field, why,
		    len);
	case CONFIG_U32:
		return config_key_range(k, *(const uint32_t *)field, why, len);
	case CONFIG_SIZE:
		return config_key_range(k, *(const uint64_t *)field, why, len);
	case CONFIG_DURATION:
		return config_key_duration(k, *(const double *)field, why, len);
	case CONFIG_BOOL:
		return 0;
	case CONFIG_ENUM:
		n = (size_t) * (const int *)field;
		for (i = 0; k->names[i] != NULL; i++)
			if (i == n)
				return 0;
		return config_msg_error(why, len, "bad value %d",
		    *(const int *)field);
	}
	fatalx("%s: bad key type %d", __func__, (int)k->type);
}

/*
 * Check every key of section once more, as stored at base.  name is the
 * export's or cluster's, NULL for the other sections; the error names
 * "section.key" or "section:name.key".
 */
int
config_key_validate(const char *section, const char *name, const void *base,
    char *err, size_t errlen)
{
	const struct config_section *sec;
	const struct config_key *k;
	char why[CONFIG_ERRLEN];

	if ((sec = config_key_section(section, strlen(section))) == NULL)
		fatalx("%s: no section %s", __func__, section);
	for (k = sec->keys; k->name != NULL; k++) {
		if (config_key_recheck(k, base, why, sizeof why) == 0)
			continue;
		if (name == NULL)
			return config_msg_error(err, errlen, "%s.%s: %s",
			    section, k->name, why);
		return config_msg_error(err, errlen, "%s:%s.%s: %s", section,
		    name, k->name, why);
	}
	return 0;
}
