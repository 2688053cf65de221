/*
 * config.h - the daemon's configuration, parsed and validated whole
 * before anything starts: the face of libpufsconfig (config*.c), a
 * library on libc, inih and libpufsbase alone, so that it is tested
 * without FUSE or libevent.
 *
 * Sources, lowest precedence first: built-in defaults, the INI file (-c),
 * environment variables PUFS_SECTION_KEY, command-line -o section.key=v.
 * -e DIR[:ro] adds exports.  Every error names where it came from (file
 * and line, the environment variable, or the -o argument) and the key.
 */
#ifndef PUFS_CONFIG_H
#define PUFS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum config_discovery {
	DISCOVERY_MULTICAST,
	DISCOVERY_UNICAST,
};

enum config_create_policy {
	CREATE_LOCAL,
	CREATE_MOSTFREE,
	CREATE_ROUNDROBIN,
};

enum config_identity {
	IDENTITY_DAEMON, /* every request as the serving daemon's user */
	IDENTITY_CALLER, /* each request as its caller (needs key_file) */
};

enum config_balance {
	BALANCE_ROUNDROBIN,
	BALANCE_LEASTLOAD,
};

struct config_export {
	char *name; /* section suffix, or "eN" for -e; owned */
	char *path; /* absolute, as given; owned */
	char *at;   /* normalised union path, "/" or "/a/b"; owned */
	bool read_only;
	bool from_arg; /* from -e, not from the file */
};

struct config_cluster {
	char *name; /* owned */
	char *path; /* owned */
	char *at;   /* normalised union path; owned */
	enum config_balance balance;
};

struct config {
	/* [peer] */
	char *name;   /* default: host name; owned */
	char *listen; /* "HOST:PORT", "[ADDR]:PORT"; owned */
	enum config_discovery discovery;
	char *multicast_group; /* IPv4 or IPv6 literal; owned */
	uint16_t multicast_port;
	char *multicast_interface; /* NULL: the system's choice; owned */
	int multicast_ttl;         /* 0..255 */
	char **peers;              /* unicast contact list; owned */
	size_t npeers;
	char *control_socket; /* owned */
	double op_timeout;    /* seconds */
	double heartbeat;     /* seconds */
	double dead_after;    /* seconds */
	enum config_create_policy create_policy;
	uint32_t max_handles; /* open handles per peer, 1..2^20 */
	char *metrics;        /* "HOST:PORT" of /metrics; NULL: off; owned */

	/* [cache] */
	double attr_timeout;       /* seconds */
	double trap_delay;         /* seconds */
	uint64_t block_size;       /* bytes, power of two, 4K..16M */
	uint64_t cache_size;       /* bytes */
	uint32_t readahead_max;    /* blocks */
	double writeback_interval; /* seconds */
	bool direct_io;

	/* [export:NAME] and -e, in order */
	struct config_export *exports; /* owned */
	size_t nexports;

	/* [cluster:NAME] */
	struct config_cluster *clusters; /* owned */
	size_t nclusters;

	/* [security] */
	char *key_file; /* NULL: no authentication; owned */
	bool encrypt;
	/* The secret read from key_file by config_validate(): its bytes
	 * without the trailing newline; NULL when there is none; owned. */
	unsigned char *key;
	size_t key_len;
	enum config_identity identity;
	bool root_squash; /* identity = caller: uid 0 acts as nobody */

	/* command line only */
	bool debug;              /* -d */
	double debug_clock_skew; /* -o debug.clock_skew, tests only */
	bool debug_time_control; /* -o debug.time_control, tests only */
	char *mountpoint;        /* owned */
	char *config_file;       /* -c, NULL if none; owned */
};

/* A key file's secret: at least this many bytes, at most the second. */
#define CONFIG_KEY_MIN 32
#define CONFIG_KEY_MAX 4096

/* Size of the buffer that receives an error message. */
#define CONFIG_ERRLEN 512

/* Fill in the built-in defaults (name = host name, and so on). */
void config_init(struct config *);

/* Release everything the config owns. */
void config_free(struct config *);

/*
 * Parse an INI file into cfg.  Returns 0, or -1 with "FILE:LINE: key: why"
 * in err.  A missing or unreadable file is an error naming the file.
 */
int config_load_file(struct config *, const char *path, char *err,
    size_t errlen);

/*
 * Apply PUFS_SECTION_KEY variables from envp (sections peer, cache,
 * security).  A variable naming one of those sections with an unknown key
 * or a bad value is an error naming the variable.
 */
int config_load_env(struct config *, char *const *envp, char *err,
    size_t errlen);

/*
 * Apply one -o argument: "section.key=value[,section.key=value...]".
 * Commas separate pairs; an error names the pair.
 */
int config_load_opts(struct config *, const char *arg, char *err,
    size_t errlen);

/* Add an export from -e DIR[:ro]: exported at "/", named "eN". */
int config_add_export_arg(struct config *, const char *arg, char *err,
    size_t errlen);

/*
 * Set one key.  origin names where the value came from ("FILE:LINE",
 * "environment PUFS_CACHE_ATTR_TIMEOUT", "-o cache.attr_timeout") and is
 * used in the error message.  Sections "export:NAME" and "cluster:NAME"
 * are accepted here too.
 */
int config_set(struct config *, const char *section, const char *key,
    const char *value, const char *origin, char *err, size_t errlen);

/*
 * Whole-config checks after all sources are applied: every key once
 * more, paths existing directories, names unique, dead_after above
 * heartbeat, the cache four blocks at least, a key file for encrypt and
 * for identity = caller, and the default control socket filled in.  Returns 0
 * or -1 with a message.
 */
int config_validate(struct config *, char *err, size_t errlen);

/* The value parsers (config-parse.c); 0, or -1 with nothing said. */
int config_parse_size(const char *, uint64_t *);
int config_parse_duration(const char *, double *);
int config_parse_bool(const char *, bool *);

/*
 * Normalise a union path ("/a//b/" -> "/a/b") into an allocated string;
 * -1 on a relative path or a "." or ".." part.
 */
int config_parse_at(const char *, char **);

/*
 * The control socket used when none is configured, for peer NAME:
 * /run/pufs/NAME.sock as root, else $XDG_RUNTIME_DIR/pufs-NAME.sock or
 * /tmp/pufs-UID/NAME.sock.  Allocated; the caller frees it.
 */
char *config_default_control_socket(const char *name);

#endif
