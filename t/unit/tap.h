/*
 * tap.h - a tiny Test Anything Protocol producer for the C unit tests.
 *
 * Header-only: every test program is one file that includes this.  The
 * results go to standard output, where meson (protocol: 'tap') reads
 * them; diagnostics are "#" lines.  Not thread-safe, and a test that
 * crashes stops its own output, which meson reports as a failure.
 */
#ifndef PUFS_TAP_H
#define PUFS_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define TAP_UNUSED __attribute__((unused))
#define TAP_PRINTF(f, a) __attribute__((format(printf, f, a)))

static int tap_planned = -1; /* -1: no plan yet */
static int tap_run;          /* tests reported so far */
static int tap_failed;       /* of which failed */

/* Print the plan; call once, before the first test, or never. */
TAP_UNUSED static void
tap_plan(int n)
{
	tap_planned = n;
	printf("1..%d\n", n);
	fflush(stdout);
}

/* Print one "#" line per line of text. */
TAP_UNUSED TAP_PRINTF(1, 0) static void tap_vdiag(const char *fmt, va_list ap)
{
	char buf[4096], *line, *nl;

	vsnprintf(buf, sizeof buf, fmt, ap);
	for (line = buf;; line = nl + 1) {
		if ((nl = strchr(line, '\n')) != NULL)
			*nl = '\0';
		printf("# %s\n", line);
		if (nl == NULL || nl[1] == '\0')
			break;
	}
	fflush(stdout);
}

/* A diagnostic line (or lines) that is not a test result. */
TAP_UNUSED TAP_PRINTF(1, 2) static void tap_diag(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_vdiag(fmt, ap);
	va_end(ap);
}

/* Report one test: ok when cond is non-zero. */
TAP_UNUSED TAP_PRINTF(2, 3) static void tap_ok(int cond, const char *fmt, ...)
{
	char name[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(name, sizeof name, fmt, ap);
	va_end(ap);
	tap_run++;
	if (!cond)
		tap_failed++;
	/* A '#' in the name would start a directive: keep it out. */
	for (char *p = name; *p != '\0'; p++)
		if (*p == '#' || *p == '\n')
			*p = ' ';
	printf("%sok %d - %s\n", cond ? "" : "not ", tap_run, name);
	fflush(stdout);
}

/* Report whether two integers are equal; on failure show both. */
TAP_UNUSED static void
tap_is_int(long long got, long long want, const char *name)
{
	tap_ok(got == want, "%s", name);
	if (got != want)
		tap_diag("  got: %lld\n  want: %lld", got, want);
}

/* Report whether two strings are equal (NULL equals only NULL). */
TAP_UNUSED static void
tap_is_str(const char *got, const char *want, const char *name)
{
	int same;

	if (got == NULL || want == NULL)
		same = got == want;
	else
		same = strcmp(got, want) == 0;
	tap_ok(same, "%s", name);
	if (!same)
		tap_diag("  got: %s%s%s\n  want: %s%s%s", got ? "\"" : "",
		    got ? got : "NULL", got ? "\"" : "", want ? "\"" : "",
		    want ? want : "NULL", want ? "\"" : "");
}

/*
 * Finish: print the plan if none was given; returns the exit status, 0
 * when every test passed and the plan (if any) was met, 1 otherwise.
 */
TAP_UNUSED static int
tap_done(void)
{
	if (tap_planned < 0)
		printf("1..%d\n", tap_run);
	else if (tap_planned != tap_run)
		tap_diag("planned %d tests but ran %d", tap_planned, tap_run);
	if (tap_failed > 0)
		tap_diag("failed %d of %d tests", tap_failed, tap_run);
	fflush(stdout);
	return tap_failed > 0 || (tap_planned >= 0 && tap_planned != tap_run);
}

#endif
