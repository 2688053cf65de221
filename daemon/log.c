/*
 * log.c - levelled logging to standard error.
 *
 * The daemon is a foreground process: standard error is its log.  Lines
 * carry a wall-clock timestamp with milliseconds so logs of several peers
 * can be merged by time.  libevent's own messages come here through
 * loop.c, so that this file needs nothing but libc.
 * A control character in a message (a newline, an escape sequence: from
 * a name a peer sent, say) is written as \xNN, so one message is always
 * one line and never drives a terminal.
 *
 * Under systemd, standard error is a stream to journald, which says so in
 * $JOURNAL_STREAM ("DEVICE:INODE" of that stream).  When it is ours,
 * lines start with a syslog priority, "<4>warning: ...", which journald
 * takes off and keeps as the entry's priority, and carry neither a
 * timestamp nor "pufs": the journal records both itself.  A stderr redirected
 * elsewhere (the variable inherited, the stream not) keeps the plain form.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int log_debug_on;
static bool log_journal; /* stderr is journald's stream */

/* syslog(3) priorities, for journald. */
#define LOG_PRI_CRIT 2
#define LOG_PRI_WARNING 4
#define LOG_PRI_INFO 6
#define LOG_PRI_DEBUG 7

/*
 * Write one line: timestamp (or, to journald, the priority pri), level,
 * message, optional errno text.
 */
static void
log_vwrite(int pri, const char *level, int errnum, const char *fmt, va_list ap)
{
	char raw[1024], msg[4 * sizeof raw], stamp[40];
	struct timeval tv;
	struct tm tm;
	size_t o = 0;

	if (log_journal)
		snprintf(stamp, sizeof stamp, "<%d>", pri);
	else {
		gettimeofday(&tv, NULL);
		localtime_r(&tv.tv_sec, &tm);
		o = strftime(stamp, sizeof stamp, "%H:%M:%S", &tm);
		snprintf(stamp + o, sizeof stamp - o, ".%03ld pufs ",
		    (long)tv.tv_usec / 1000);
		o = 0;
	}
	vsnprintf(raw, sizeof raw, fmt, ap);
	for (const char *p = raw; *p != '\0'; p++) {
		unsigned char ch = (unsigned char)*p;

		if (ch < 0x20 || ch == 0x7f)
			o += (size_t)snprintf(msg + o, sizeof msg - o,
			    "\\x%02x", ch);
		else
			msg[o++] = (char)ch;
	}
	msg[o] = '\0';
	if (errnum != 0)
		fprintf(stderr, "%s%s: %s: %s\n", stamp, level, msg,
		    strerror(errnum));
	else
		fprintf(stderr, "%s%s: %s\n", stamp, level, msg);
}

/* Whether $JOURNAL_STREAM names the stream standard error is. */
static bool
log_to_journal(void)
{
	const char *v = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	int end = 0;

	if (v == NULL || sscanf(v, "%llu:%llu%n", &dev, &ino, &end) != 2 ||
	    v[end] != '\0' || fstat(STDERR_FILENO, &st) == -1)
		return false;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

/*
 * Set the level and the form (journald's or the plain one); standard
 * error becomes line-buffered.
 */
void
log_init(int debug)
{
	log_debug_on = debug;
	log_journal = log_to_journal();
	setvbuf(stderr, NULL, _IOLBF, 0);
}

/* A warning with the text of errno appended. */
void
log_warn(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_PRI_WARNING, "warning", saved, fmt, ap);
	va_end(ap);
	errno = saved;
}

/* A warning without errno. */
void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_PRI_WARNING, "warning", 0, fmt, ap);
	va_end(ap);
}

/* An informational line. */
void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_PRI_INFO, "info", 0, fmt, ap);
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
	log_vwrite(LOG_PRI_DEBUG, "debug", 0, fmt, ap);
	va_end(ap);
}

/* A broken invariant with errno: log and abort. */
void
fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_PRI_CRIT, "fatal", saved, fmt, ap);
	va_end(ap);
	abort();
}

/* A broken invariant: log and abort. */
void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_PRI_CRIT, "fatal", 0, fmt, ap);
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

/* Escape s into buf of len bytes (see log.h); returns the length. */
size_t
log_escape_buf(char *buf, size_t len, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, mark = 0; /* mark: where "..." would go */

	if (len == 0)
		return 0;
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;
		bool esc = ch < 0x20 || ch > 0x7e || ch == '\\';

		if (o + 4 <= len)
			mark = o;
		if (o + (esc ? 4 : 1) + 1 > len) {
			o = len >= 4 ? mark : 0;
			if (len >= 4) {
				memcpy(buf + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (!esc) {
			buf[o++] = (char)ch;
			continue;
		}
		buf[o++] = '\\';
		buf[o++] = 'x';
		buf[o++] = hex[ch >> 4];
		buf[o++] = hex[ch & 15];
	}
	buf[o] = '\0';
	return o;
}

/* Escape s into the next of four static buffers. */
const char *
log_escape(const char *s)
{
	static char bufs[4][LOG_ESCAPE_MAX];
	static unsigned next;
	char *b = bufs[next++ % 4];

	log_escape_buf(b, LOG_ESCAPE_MAX, s == NULL ? "(null)" : s);
	return b;
}

/* Whether one more line of this kind may be written at now_ms. */
bool
log_rate_ok(struct log_rate *r, uint64_t now_ms)
{
	if (r->n == 0 || now_ms - r->window >= 1000) {
		if (r->suppressed != 0)
			log_warnx("%s: %lu more such lines suppressed", r->what,
			    r->suppressed);
		r->suppressed = 0;
		r->window = now_ms;
		r->n = 0;
	}
	if (r->n < LOG_RATE_PER_SEC) {
		r->n++;
		return true;
	}
	r->suppressed++;
	return false;
}
