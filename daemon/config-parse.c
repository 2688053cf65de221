/*
 * config-parse.c - the parsers of configuration values: integers, sizes,
 * durations, booleans, lists and union paths.
 *
 * Each takes the whole string and refuses anything around the value
 * (blanks, signs where none is allowed, a second suffix): a typo is an
 * error, never a different number.  They return 0 or -1 and say nothing;
 * the caller, who knows the key, writes the message.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config-int.h"

/* Parse a decimal unsigned integer; *end is set after its digits. */
int
config_parse_uint(const char *s, const char **end, uint64_t *out)
{
	uint64_t v = 0;

	if (!isdigit((unsigned char)*s))
		return -1;
	for (; isdigit((unsigned char)*s); s++) {
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*end = s;
	*out = v;
	return 0;
}

/* Parse a size: digits, then K, M, G or T (binary), then B or iB. */
int
config_parse_size(const char *s, uint64_t *out)
{
	const char *p, *units = "kmgt", *u;
	uint64_t v;
	int shift = 0;

	if (config_parse_uint(s, &p, &v) == -1)
		return -1;
	if (*p != '\0' &&
	    (u = strchr(units, tolower((unsigned char)*p))) != NULL) {
		shift = 10 * (int)(u - units + 1);
		p++;
		if (strcasecmp(p, "ib") == 0)
			p += 2;
	}
	if (strcasecmp(p, "b") == 0)
		p++;
	if (*p != '\0')
		return -1;
	if (shift != 0 && v > (UINT64_MAX >> shift))
		return -1;
	*out = v << shift;
	return 0;
}

/* Parse a duration, with an optional sign if signed_ok. */
static int
config_parse_duration_sign(const char *s, double *out, bool signed_ok)
{
	double v = 0, scale = 1;
	int neg = 0, digits = 0;

	if (signed_ok && (*s == '-' || *s == '+'))
		neg = *s++ == '-';
	for (; isdigit((unsigned char)*s); s++, digits++) {
		v = v * 10 + (*s - '0');
		if (v > CONFIG_DURATION_MAX)
			return -1;
	}
	if (*s == '.') {
		for (s++; isdigit((unsigned char)*s); s++, digits++) {
			scale /= 10;
			v += (*s - '0') * scale;
		}
	}
	if (digits == 0)
		return -1;
	if (strcasecmp(s, "ms") == 0)
		v /= 1000;
	else if (*s != '\0' && strcasecmp(s, "s") != 0)
		return -1;
	*out = neg ? -v : v;
	return 0;
}

/* Parse a duration in seconds: "2", "0.5", "0.5s", "100ms". */
int
config_parse_duration(const char *s, double *out)
{
	return config_parse_duration_sign(s, out, false);
}

/* Parse a clock skew: a duration with an optional sign, "-300ms". */
int
config_parse_skew(const char *s, double *out)
{
	return config_parse_duration_sign(s, out, true);
}

/* Parse a boolean: yes/no, true/false, on/off, 1/0. */
int
config_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1", NULL };
	static const char *const no[] = { "no", "false", "off", "0", NULL };
	int i;

	for (i = 0; yes[i] != NULL; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

/*
 * Split a list on blanks and commas, check each entry and append it to
 * *list.  On error why says which entry; what was appended stays, for
 * the caller to free.
 */
int
config_parse_list(const char *value, config_check_fn *check, char ***list,
    size_t *n, char *why, size_t len)
{
	const char *p, *sep = " \t,";
	char *item;
	size_t l;

	for (p = value + strspn(value, sep); *p != '\0';
	     p += l, p += strspn(p, sep)) {
		l = strcspn(p, sep);
		item = xstrndup(p, l);
		if (check != NULL && check(item, why, len) == -1) {
			free(item);
			return -1;
		}
		*list = xreallocarray(*list, *n + 1, sizeof **list);
		(*list)[(*n)++] = item;
	}
	return 0;
}

/* Normalise a union path: one "/" between parts, none at the end. */
int
config_parse_at(const char *s, char **out)
{
	const char *p, *end;
	char *buf, *q;
	size_t n;

	if (s == NULL || *s != '/')
		return -1;
	buf = q = xmalloc(strlen(s) + 2);
	for (p = s; *p != '\0'; p = end) {
		p += strspn(p, "/");
		end = p + strcspn(p, "/");
		n = (size_t)(end - p);
		if (n == 0)
			break;
		if ((n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.')) {
			free(buf);
			return -1;
		}
		*q++ = '/';
		memcpy(q, p, n);
		q += n;
	}
	if (q == buf)
		*q++ = '/';
	*q = '\0';
	*out = buf;
	return 0;
}

/* Free a list of strings, as config_parse_list() makes them. */
void
config_parse_free_list(char **list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(list[i]);
	free(list);
}
