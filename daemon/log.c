/*
 * log.c - levelled logging to standard error.
 *
 * The daemon is a foreground process: standard error is its log.  Lines
 * carry a wall-clock timestamp with milliseconds so logs of several peers
 * can be merged by time.  libevent's own messages are routed here too.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <event2/event.h>

#include "log.h"

static int log_debug_on;

/* Write one line: timestamp, level, message, optional errno text. */
static void
log_vwrite(const char *level, int errnum, const char *fmt, va_list ap)
{
	char msg[1024], stamp[32];
	struct timeval tv;
	struct tm tm;

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%H:%M:%S", &tm);
	vsnprintf(msg, sizeof msg, fmt, ap);
	if (errnum != 0)
		fprintf(stderr, "%s.%03ld pufs %s: %s: %s\n", stamp,
		    (long)tv.tv_usec / 1000, level, msg, strerror(errnum));
	else
		fprintf(stderr, "%s.%03ld pufs %s: %s\n", stamp,
		    (long)tv.tv_usec / 1000, level, msg);
}

/* libevent's log callback: its warnings and errors become ours. */
static void
log_event_cb(int severity, const char *msg)
{
	switch (severity) {
	case EVENT_LOG_DEBUG:
		log_debug("libevent: %s", msg);
		break;
	case EVENT_LOG_MSG:
		log_info("libevent: %s", msg);
		break;
	default:
		log_warnx("libevent: %s", msg);
		break;
	}
}

/* Set the level; route libevent's log through ours. */
void
log_init(int debug)
{
	log_debug_on = debug;
	setvbuf(stderr, NULL, _IOLBF, 0);
	event_set_log_callback(log_event_cb);
}

/* Whether debug lines are written (to skip building costly ones). */
int
log_debug_enabled(void)
{
	return log_debug_on;
}

/* A warning with the text of errno appended. */
void
log_warn(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vwrite("warning", saved, fmt, ap);
	va_end(ap);
	errno = saved;
}

/* A warning without errno. */
void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite("warning", 0, fmt, ap);
	va_end(ap);
}

/* An informational line. */
void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite("info", 0, fmt, ap);
	va_end(ap);
}

/* A debug line, written only with -d. */
void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!log_debug_on)
		return;
	va_start(ap, fmt);
	log_vwrite("debug", 0, fmt, ap);
	va_end(ap);
}

/* A broken invariant with errno: log and abort. */
void
fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vwrite("fatal", saved, fmt, ap);
	va_end(ap);
	abort();
}

/* A broken invariant: log and abort. */
void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite("fatal", 0, fmt, ap);
	va_end(ap);
	abort();
}

/* A message to the user of a command, as command-line tools print them. */
void
cli_warnx(const char *fmt, ...)
{
	va_list ap;

	fputs("pufs: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
