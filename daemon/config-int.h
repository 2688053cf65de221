/*
 * config-int.h - what the files of the configuration library share and
 * the rest of the daemon does not see (config.h is its public face).
 *
 * config.c holds the entry points and the exports and clusters;
 * config-key.c the key tables and how a value is stored and checked
 * again; config-file.c the INI reader, which hands what it reads to
 * config.c through a sink; config-check.c the checks of string values;
 * config-parse.c the value parsers; config-msg.c the messages all of
 * them write.  Each file calls only files listed after it.  The library
 * stands on libc, inih and libpufsbase (log.c, xmalloc.c) alone.
 */
#ifndef PUFS_CONFIG_INT_H
#define PUFS_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "log.h"

/* Longest duration accepted, in seconds (about 31 years). */
#define CONFIG_DURATION_MAX 1e9

/* Longest peer, export or cluster name. */
#define CONFIG_NAME_MAX 63

/* A check of a string value: 0, or -1 with the reason in why. */
typedef int config_check_fn(const char *, char *why, size_t len);

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
	size_t off;               /* in the section's structure */
	size_t count_off;         /* lists: where the count is */
	uint64_t min, max;        /* integers and sizes */
	bool pow2;                /* sizes: a power of two */
	bool positive;            /* durations: > 0, else >= 0 */
	bool optional;            /* strings: empty or NULL is unset */
	config_check_fn *check;   /* strings, lists */
	const char *const *names; /* enums, NULL-terminated */
};

struct config_section {
	const char *name; /* "peer", or "export" for export:NAME */
	enum config_base base;
	const struct config_key *keys;
};

/* config-msg.c */
int config_msg_error(char *err, size_t errlen, const char *fmt, ...)
    PRINTFLIKE(3, 4);
int config_msg_append(char *err, size_t errlen, const char *fmt, ...)
    PRINTFLIKE(3, 4);
void config_msg_size(uint64_t, char *buf, size_t len);

/* config.c */
const struct config_section *config_open_section(struct config *,
    const char *section, bool fresh, void **base, char *why, size_t len);
int config_apply(struct config *, const char *section, const char *key,
    const char *value, const char *origin, bool append, char *err,
    size_t errlen);

/* config-key.c */
const struct config_section *config_key_section(const char *name, size_t len);
const struct config_key *config_key_find(const struct config_section *,
    const char *key);
int config_key_store(const struct config_key *, void *base, const char *value,
    bool append, char *why, size_t len);
int config_key_validate(const char *section, const char *name, const void *base,
    char *err, size_t errlen);

/*
 * config-file.c: what a file holds goes to a sink, each call returning 0
 * or -1 with the reason in its buffer.  section() opens a header's
 * section; key() sets a key of it, or with append continues its list.
 */
struct config_file_sink {
	int (*section)(void *arg, const char *section, char *why, size_t len);
	int (*key)(void *arg, const char *section, const char *key,
	    const char *value, const char *origin, bool append, char *err,
	    size_t errlen);
};

int config_file_parse(FILE *, const char *path, const struct config_file_sink *,
    void *arg, char *err, size_t errlen);

/* config-parse.c (and the public parsers in config.h) */
int config_parse_uint(const char *, const char **end, uint64_t *);
int config_parse_skew(const char *, double *);
int config_parse_list(const char *, config_check_fn *, char ***list, size_t *n,
    char *why, size_t len);
void config_parse_free_list(char **, size_t);

/* config-check.c */
int config_check_name(const char *, char *, size_t);
int config_check_hostport(const char *, char *, size_t);
int config_check_group(const char *, char *, size_t);
int config_check_ifname(const char *, char *, size_t);
int config_check_socket(const char *, char *, size_t);
int config_check_abspath(const char *, char *, size_t);

#endif
