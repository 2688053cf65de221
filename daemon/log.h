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

#define PRINTFLIKE(f, a) __attribute__((format(printf, f, a)))

void log_init(int debug);
int log_debug_enabled(void);
void log_warn(const char *, ...) PRINTFLIKE(1, 2);
void log_warnx(const char *, ...) PRINTFLIKE(1, 2);
void log_info(const char *, ...) PRINTFLIKE(1, 2);
void log_debug(const char *, ...) PRINTFLIKE(1, 2);
__attribute__((noreturn)) void fatal(const char *, ...) PRINTFLIKE(1, 2);
__attribute__((noreturn)) void fatalx(const char *, ...) PRINTFLIKE(1, 2);
/* A message to the user of a command ("pufs: ..."), no timestamp. */
void cli_warnx(const char *, ...) PRINTFLIKE(1, 2);

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
