/*
 * config-msg.c - the messages of the configuration library: an error
 * formatted into the caller's buffer, text appended to it, and a byte
 * count written as a user would write it.  Every file of the library
 * reports through these; they call nothing but libc.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config-int.h"

/* Format an error message into err (which may be truncated or NULL). */
int
config_msg_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Append to the message in err; returns -1, as config_msg_error() does. */
int
config_msg_append(char *err, size_t errlen, const char *fmt, ...)
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
void
config_msg_size(uint64_t v, char *buf, size_t len)
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
