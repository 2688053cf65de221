/*
 * log.h - the one logging API of pufs.
 *
 * Every line goes to standard error with a timestamp and a level; the
 * daemon runs in the foreground and a supervisor collects the stream.
 * log_warn() appends strerror(errno); the "x" variants do not.  fatal()
 * and fatalx() are for broken internal invariants only, never for what a
 * peer or a user sent.
 */
#ifndef PUFS_LOG_H
#define PUFS_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PRINTFLIKE(f, a) __attribute__((format(printf, f, a)))

void log_init(int debug);
void log_warn(const char *, ...) PRINTFLIKE(1, 2);
void log_warnx(const char *, ...) PRINTFLIKE(1, 2);
void log_info(const char *, ...) PRINTFLIKE(1, 2);
void log_debug(const char *, ...) PRINTFLIKE(1, 2);
__attribute__((noreturn)) void fatal(const char *, ...) PRINTFLIKE(1, 2);
__attribute__((noreturn)) void fatalx(const char *, ...) PRINTFLIKE(1, 2);
/* A message to the user of a command ("pufs: ..."), no timestamp. */
void cli_warnx(const char *, ...) PRINTFLIKE(1, 2);

/*
 * What a peer sent, made printable: bytes outside printable ASCII and
 * the backslash become \xNN.  log_escape_buf() writes into buf (always
 * terminated; "..." marks a cut); log_escape() into one of four static
 * buffers, so that one line can show a few such strings.  Loop thread.
 */
#define LOG_ESCAPE_MAX 1024
size_t log_escape_buf(char *buf, size_t len, const char *s);
const char *log_escape(const char *s);

/*
 * Rate limit for one kind of line about what peers sent: at most
 * LOG_RATE_PER_SEC lines a second; the lines held back are counted and
 * told in one "suppressed" line when the next second's first one comes.
 */
#define LOG_RATE_PER_SEC 5
struct log_rate {
	const char *what; /* names the kind in the "suppressed" line */
	uint64_t window;  /* start of the current second, ms */
	unsigned n;       /* lines written in it */
	unsigned long suppressed;
};
#define LOG_RATE_INIT(what) \
	{ \
		(what), 0, 0, 0 \
	}
bool log_rate_ok(struct log_rate *, uint64_t now_ms);

/* xmalloc.c: allocation for control structures; dies on out-of-memory. */
#include <stddef.h>
void *xmalloc(size_t);
void *xcalloc(size_t, size_t);
void *xreallocarray(void *, size_t, size_t);
char *xstrdup(const char *);
char *xstrndup(const char *, size_t);
int xasprintf(char **, const char *, ...) PRINTFLIKE(2, 3);
char *xpathjoin(const char *dir, const char *name);

#endif
