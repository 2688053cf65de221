/*
 * config.c - the daemon's configuration: its defaults, the sources (the
 * INI file, the environment, -o and -e) and the whole-config checks.
 *
 * Every source goes through config_apply(), which opens the section,
 * finds the key in config-key.c's table and stores the value there,
 * parsed and checked; config_validate() checks the stored values once
 * more (callers may fill fields directly) and then what involves several
 * keys or the file system.  Errors are never logged: each entry point
 * returns -1 with the message in err, and the caller says it.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config-int.h"

/* The sections the environment and -o may set. */
static const char *const config_override_sections[] = {
	"peer",
	"cache",
	"security",
	NULL,
};

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
const struct config_section *
config_open_section(struct config *cfg, const char *section, bool fresh,
    void **base, char *why, size_t len)
{
	const struct config_section *sec;
	const char *colon, *name;
	size_t n;

	colon = strchr(section, ':');
	n = colon != NULL ? (size_t)(colon - section) : strlen(section);
	if ((sec = config_key_section(section, n)) == NULL ||
	    (sec->base == CONFIG_BASE_CONFIG) != (colon == NULL)) {
		config_msg_error(why, len, "unknown section [%s]", section);
		return NULL;
	}
	if (sec->base == CONFIG_BASE_CONFIG) {
		*base = cfg;
		return sec;
	}
	name = colon + 1;
	if (config_check_name(name, NULL, 0) == -1) {
		config_msg_error(why, len,
		    "bad %s name in [%s] (1 to %d of A-Z a-z 0-9 . _ -)",
		    sec->name, section, CONFIG_NAME_MAX);
		return NULL;
	}
	if (sec->base == CONFIG_BASE_EXPORT)
		*base = config_find_export(cfg, name);
	else
		*base = config_find_cluster(cfg, name);
	if (*base != NULL && fresh) {
		config_msg_error(why, len, "duplicate section [%s]", section);
		return NULL;
	}
	if (*base == NULL && sec->base == CONFIG_BASE_EXPORT)
		*base = config_new_export(cfg, name);
	else if (*base == NULL)
		*base = config_new_cluster(cfg, name);
	return sec;
}

/* config_set, or with append add to a list key (a continuation line). */
int
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
		return config_msg_error(err, errlen, "%s: %s", origin, why);
	if ((k = config_key_find(sec, key)) == NULL)
		return config_msg_error(err, errlen,
		    "%s: unknown key '%s' in [%s]", origin, key, section);
	if (config_key_store(k, base, value, append, why, sizeof why) == -1)
		return config_msg_error(err, errlen, "%s: %s.%s: %s", origin,
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
	cfg->identity = IDENTITY_DAEMON;
	cfg->root_squash = true;
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
	config_parse_free_list(cfg->peers, cfg->npeers);
	free(cfg->control_socket);
	free(cfg->metrics);
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
	if (cfg->key != NULL) {
		explicit_bzero(cfg->key, cfg->key_len);
		free(cfg->key);
	}
	free(cfg->mountpoint);
	free(cfg->config_file);
	memset(cfg, 0, sizeof *cfg);
}

/* config_file_parse()'s section header: open it, new if named. */
static int
config_on_section(void *arg, const char *section, char *why, size_t len)
{
	void *base;

	return config_open_section(arg, section, true, &base, why, len) == NULL
	    ? -1
	    : 0;
}

/* config_file_parse()'s key line, or with append its continuation. */
static int
config_on_key(void *arg, const char *section, const char *key,
    const char *value, const char *origin, bool append, char *err,
    size_t errlen)
{
	return config_apply(arg, section, key, value, origin, append, err,
	    errlen);
}

/* Where config_file_parse() delivers what a file holds. */
static const struct config_file_sink config_file_sink = {
	.section = config_on_section,
	.key = config_on_key,
};

/* Parse an INI file into cfg, and remember its name. */
int
config_load_file(struct config *cfg, const char *path, char *err, size_t errlen)
{
	FILE *fp;
	int ret;

	if ((fp = fopen(path, "re")) == NULL)
		return config_msg_error(err, errlen, "%s: cannot open: %s",
		    path, strerror(errno));
	free(cfg->config_file);
	cfg->config_file = xstrdup(path);
	ret = config_file_parse(fp, path, &config_file_sink, cfg, err, errlen);
	fclose(fp);
	return ret;
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
config_load_env(struct config *cfg, char *const *envp, char *err, size_t errlen)
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
				n) == 0 &&
			    var[5 + n] == '_')
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
		if (config_set(cfg, config_override_sections[i], name, eq + 1,
			origin, err, errlen) == -1)
			return -1;
	}
	return 0;
}

/* Apply one -o pair "section.key=value". */
static int
config_load_pair(struct config *cfg, const char *pair, char *err, size_t errlen)
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
		return config_msg_error(err, errlen,
		    "%s: expected section.key=value", origin);
	}
	*dot = '\0';
	*eq = '\0';
	if (strcmp(copy, "debug") == 0 &&
	    strcmp(dot + 1, "time_control") == 0) {
		if (config_parse_bool(eq + 1, &cfg->debug_time_control) == -1)
			ret = config_msg_error(err, errlen,
			    "%s: debug.time_control: bad boolean '%s'", origin,
			    eq + 1);
		else
			ret = 0;
	} else if (strcmp(copy, "debug") == 0) {
		if (strcmp(dot + 1, "clock_skew") != 0)
			ret = config_msg_error(err, errlen,
			    "%s: unknown key '%s' in [debug]", origin, dot + 1);
		else if (config_parse_skew(eq + 1, &skew) == -1)
			ret = config_msg_error(err, errlen,
			    "%s: debug.clock_skew: bad duration '%s'", origin,
			    eq + 1);
		else {
			cfg->debug_clock_skew = skew;
			ret = 0;
		}
	} else if (!config_overridable(copy)) {
		ret = config_msg_error(err, errlen,
		    "%s: only [peer], [cache] and [security] keys can be set "
		    "with -o",
		    origin);
	} else
		ret = config_set(cfg, copy, dot + 1, eq + 1, origin, err,
		    errlen);
	free(copy);
	return ret;
}

/* Apply one -o argument: comma-separated section.key=value pairs. */
int
config_load_opts(struct config *cfg, const char *arg, char *err, size_t errlen)
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

	if (n > 3 &&
	    (strcmp(arg + n - 3, ":ro") == 0 ||
		strcmp(arg + n - 3, ":rw") == 0)) {
		ro = arg[n - 2] == 'r' && arg[n - 1] == 'o';
		n -= 3;
	}
	if (n == 0)
		return config_msg_error(err, errlen,
		    "-e %s: no directory given", arg);
	dir = xstrndup(arg, n);
	real = realpath(dir, NULL);
	free(dir);
	if (real == NULL)
		return config_msg_error(err, errlen, "-e %s: %s", arg,
		    strerror(errno));
	if (stat(real, &st) == -1 || !S_ISDIR(st.st_mode)) {
		free(real);
		return config_msg_error(err, errlen, "-e %s: %s", arg,
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
		return config_msg_error(err, errlen,
		    "%s%s[%s:%s]: no path given", file, sep, kind, name);
	if (stat(path, &st) == -1)
		return config_msg_error(err, errlen,
		    "%s%s[%s:%s]: path '%s': %s", file, sep, kind, name, path,
		    strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return config_msg_error(err, errlen,
		    "%s%s[%s:%s]: path '%s': %s", file, sep, kind, name, path,
		    strerror(ENOTDIR));
	return 0;
}

/* Check exports and clusters: names, paths, union places. */
static int
config_validate_exports(struct config *cfg, char *err, size_t errlen)
{
	char why[CONFIG_ERRLEN];
	struct config_export *e;
	struct config_cluster *c;
	size_t i, j;

	for (i = 0; i < cfg->nexports; i++) {
		e = &cfg->exports[i];
		if (config_check_name(e->name, why, sizeof why) == -1)
			return config_msg_error(err, errlen, "export: %s", why);
		for (j = 0; j < i; j++)
			if (strcmp(cfg->exports[j].name, e->name) == 0)
				return config_msg_error(err, errlen,
				    "duplicate export name '%s'", e->name);
		if (e->path != NULL &&
		    config_key_validate("export", e->name, e, err, errlen) ==
			-1)
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
			return config_msg_error(err, errlen, "cluster: %s",
			    why);
		for (j = 0; j < i; j++)
			if (strcmp(cfg->clusters[j].name, c->name) == 0)
				return config_msg_error(err, errlen,
				    "duplicate cluster name '%s'", c->name);
		if (c->path != NULL &&
		    config_key_validate("cluster", c->name, c, err, errlen) ==
			-1)
			return -1;
		if (config_validate_dir(cfg->config_file, "cluster", c->name,
			c->path, err, errlen) == -1)
			return -1;
		if (c->at == NULL)
			xasprintf(&c->at, "/%s", c->name);
	}
	return 0;
}

/*
 * Read the secret of security.key_file into cfg->key.  Like ssh with a
 * private key, refuse a file that group or others may read or write: the
 * secret is all that keeps strangers out of the union.  The secret is the
 * file's bytes without one trailing newline, so `pufs keygen`'s base64 line
 * and any other long random file serve alike.
 */
static int
config_load_key(struct config *cfg, char *err, size_t errlen)
{
	unsigned char *buf;
	struct stat st;
	ssize_t n;
	size_t len;
	int fd;

	if (cfg->key != NULL) { /* validated before: read it afresh */
		explicit_bzero(cfg->key, cfg->key_len);
		free(cfg->key);
		cfg->key = NULL;
	}
	if ((fd = open(cfg->key_file, O_RDONLY | O_CLOEXEC)) == -1)
		return config_msg_error(err, errlen,
		    "security.key_file: '%s': %s", cfg->key_file,
		    strerror(errno));
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		return config_msg_error(err, errlen,
		    "security.key_file: '%s' is not a regular file",
		    cfg->key_file);
	}
	if ((st.st_mode & 066) != 0) {
		close(fd);
		return config_msg_error(err, errlen,
		    "security.key_file: '%s' is accessible by group or others "
		    "(mode %04o); chmod 600 it",
		    cfg->key_file, (unsigned)(st.st_mode & 07777));
	}
	buf = xmalloc(CONFIG_KEY_MAX + 1);
	len = 0;
	while (len <= CONFIG_KEY_MAX &&
	    (n = read(fd, buf + len, CONFIG_KEY_MAX + 1 - len)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			int e = errno;

			close(fd);
			explicit_bzero(buf, len);
			free(buf);
			return config_msg_error(err, errlen,
			    "security.key_file: '%s': %s", cfg->key_file,
			    strerror(e));
		}
		len += (size_t)n;
	}
	close(fd);
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len < CONFIG_KEY_MIN || len > CONFIG_KEY_MAX) {
		explicit_bzero(buf, CONFIG_KEY_MAX + 1);
		free(buf);
		return config_msg_error(err, errlen,
		    "security.key_file: '%s' holds %s%zu bytes; a key has %d "
		    "to %d (pufs keygen makes one)",
		    cfg->key_file, len > CONFIG_KEY_MAX ? "more than " : "",
		    len > CONFIG_KEY_MAX ? (size_t)CONFIG_KEY_MAX : len,
		    CONFIG_KEY_MIN, CONFIG_KEY_MAX);
	}
	cfg->key = buf;
	cfg->key_len = len;
	return 0;
}

/* Whole-config checks after every source has been applied. */
int
config_validate(struct config *cfg, char *err, size_t errlen)
{
	char a[32], b[32], why[CONFIG_ERRLEN];

	if (config_key_validate("peer", NULL, cfg, err, errlen) == -1 ||
	    config_key_validate("cache", NULL, cfg, err, errlen) == -1 ||
	    config_key_validate("security", NULL, cfg, err, errlen) == -1)
		return -1;
	if (cfg->dead_after <= cfg->heartbeat)
		return config_msg_error(err, errlen,
		    "peer.dead_after: %g must be more than peer.heartbeat %g",
		    cfg->dead_after, cfg->heartbeat);
	if (cfg->cache_size / 4 < cfg->block_size) {
		config_msg_size(cfg->cache_size, a, sizeof a);
		config_msg_size(cfg->block_size, b, sizeof b);
		return config_msg_error(err, errlen,
		    "cache.cache_size: %s is less than 4 blocks of "
		    "cache.block_size %s",
		    a, b);
	}
	if (cfg->encrypt && cfg->key_file == NULL)
		return config_msg_error(err, errlen,
		    "security.encrypt: yes needs security.key_file");
	/* Credentials any host could claim would be no check at all. */
	if (cfg->identity == IDENTITY_CALLER && cfg->key_file == NULL)
		return config_msg_error(err, errlen,
		    "security.identity: caller needs security.key_file "
		    "(without it any host could claim any user)");
	if (cfg->key_file != NULL && config_load_key(cfg, err, errlen) == -1)
		return -1;
	if (cfg->metrics != NULL && strcmp(cfg->metrics, cfg->listen) == 0)
		return config_msg_error(err, errlen,
		    "peer.metrics: %s is peer.listen's address", cfg->metrics);
	if (config_validate_exports(cfg, err, errlen) == -1)
		return -1;
	if (cfg->control_socket == NULL) {
		cfg->control_socket = config_default_control_socket(cfg->name);
		if (config_check_socket(cfg->control_socket, why, sizeof why) ==
		    -1)
			return config_msg_error(err, errlen,
			    "peer.control_socket: default %s", why);
	}
	return 0;
}
