/*
 * config-file.c - the INI file: lines, sections and continuation lines.
 *
 * inih splits the file into lines and pairs; a reader of our own in
 * front of it counts lines, recognises section headers (inih truncates
 * long section names and does not report empty sections) and rejects
 * lines longer than inih's buffer instead of letting it split them.  An
 * indented line without '=' is a continuation: only peer.peers takes
 * one, and it appends to the list.  The first error is kept and named
 * "FILE:LINE: ...".  Limits: no include files, no quoting, no values that
 * contain " ;".
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <ini.h>

#include "config-int.h"

/* Reading state of one INI file, shared by the reader and the handler. */
struct config_file {
	const struct config_file_sink *sink;
	void *arg; /* the sink's */
	const char *path;
	FILE *fp;
	char *buf; /* getline buffer; owned */
	size_t bufsize;
	int lineno;        /* of the line inih is working on */
	char *section;     /* current section name; owned */
	bool has_key;      /* a key line since the header */
	bool continuation; /* this line continues the last key */
	bool failed;       /* err holds the first error */
	int errline;       /* its line, 0 if none */
	char *err;
	size_t errlen;
};

/* Record the first error met while reading a file. */
static void PRINTFLIKE(3, 4)
    config_file_fail(struct config_file *cf, int line, const char *fmt, ...)
{
	va_list ap;

	if (cf->failed)
		return;
	cf->failed = true;
	cf->errline = line;
	va_start(ap, fmt);
	vsnprintf(cf->err, cf->errlen, fmt, ap);
	va_end(ap);
}

/* Handle a "[section]" line: open the section or record why not. */
static void
config_file_section(struct config_file *cf, char *p)
{
	char why[CONFIG_ERRLEN], *close, *name, *rest;

	free(cf->section);
	cf->section = NULL;
	cf->has_key = false;
	if ((close = strchr(p, ']')) == NULL) {
		config_file_fail(cf, cf->lineno, "%s:%d: missing ']'", cf->path,
		    cf->lineno);
		return;
	}
	rest = close + 1 + strspn(close + 1, " \t");
	if (*rest != '\0' && *rest != ';' && *rest != '#') {
		config_file_fail(cf, cf->lineno,
		    "%s:%d: text after the section header", cf->path,
		    cf->lineno);
		return;
	}
	*close = '\0';
	name = p + 1 + strspn(p + 1, " \t");
	while (close > name && (close[-1] == ' ' || close[-1] == '\t'))
		*--close = '\0';
	if (cf->sink->section(cf->arg, name, why, sizeof why) == -1) {
		config_file_fail(cf, cf->lineno, "%s:%d: %s", cf->path,
		    cf->lineno, why);
		return;
	}
	cf->section = xstrdup(name);
}

/*
 * inih's reader: hand it one line at a time, counting lines, opening
 * sections, and deciding whether an indented line continues the last key
 * (inih would make every indented line a continuation).
 */
static char *
config_file_read(char *str, int num, void *arg)
{
	struct config_file *cf = arg;
	char *line, *p, *c, copy[CONFIG_ERRLEN];
	ssize_t n;

	cf->continuation = false;
	if (cf->failed)
		return NULL;
	errno = 0;
	if ((n = getline(&cf->buf, &cf->bufsize, cf->fp)) == -1) {
		if (ferror(cf->fp))
			config_file_fail(cf, 0, "%s: cannot read: %s", cf->path,
			    strerror(errno));
		return NULL;
	}
	cf->lineno++;
	line = cf->buf;
	if (memchr(line, '\0', (size_t)n) != NULL) {
		config_file_fail(cf, cf->lineno, "%s:%d: NUL byte in line",
		    cf->path, cf->lineno);
		return NULL;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	if (cf->lineno == 1 && strncmp(line, "\xef\xbb\xbf", 3) == 0) {
		line += 3;
		n -= 3;
	}
	if (n > num - 2) {
		config_file_fail(cf, cf->lineno,
		    "%s:%d: line longer than %d characters (split peer.peers "
		    "over indented lines)",
		    cf->path, cf->lineno, num - 2);
		return NULL;
	}
	p = line + strspn(line, " \t");
	if (*p == '[') {
		snprintf(copy, sizeof copy, "%s", p);
		config_file_section(cf, copy);
	} else if (p != line && *p != '\0' && *p != ';' && *p != '#' &&
	    cf->has_key && strchr(p, '=') == NULL) {
		/* inih keeps the comment of a continuation line: cut it. */
		for (c = p; (c = strchr(c, ';')) != NULL; c++) {
			if (c[-1] == ' ' || c[-1] == '\t') {
				*c = '\0';
				break;
			}
		}
		cf->continuation = true;
		p = line;
	}
	snprintf(str, (size_t)num, "%s\n", p);
	return str;
}

/* inih's handler: apply one key of the current section. */
static int
config_file_handler(void *arg, const char *inisection, const char *key,
    const char *value)
{
	struct config_file *cf = arg;
	char origin[PATH_MAX + 32], err[CONFIG_ERRLEN];

	cf->has_key = true;
	if (cf->failed)
		return 0;
	if (cf->section == NULL) {
		config_file_fail(cf, cf->lineno,
		    "%s:%d: key '%s' is outside any [section]", cf->path,
		    cf->lineno, key);
		return 0;
	}
	snprintf(origin, sizeof origin, "%s:%d", cf->path, cf->lineno);
	if (cf->sink->key(cf->arg, cf->section, key, value, origin,
		cf->continuation, err, sizeof err) == -1) {
		config_file_fail(cf, cf->lineno, "%s", err);
		return 0;
	}
	return 1;
}

/*
 * Read the open INI file fp, named path in messages, handing each section
 * header and each key to sink with arg.
 */
int
config_file_parse(FILE *fp, const char *path,
    const struct config_file_sink *sink, void *arg, char *err, size_t errlen)
{
	struct config_file cf;
	int ret;

	memset(&cf, 0, sizeof cf);
	cf.sink = sink;
	cf.arg = arg;
	cf.path = path;
	cf.fp = fp;
	cf.err = err;
	cf.errlen = errlen;
	ret = ini_parse_stream(config_file_read, &cf, config_file_handler, &cf);
	free(cf.buf);
	free(cf.section);
	if (ret > 0 && (!cf.failed || (cf.errline != 0 && ret < cf.errline)))
		return config_msg_error(err, errlen,
		    "%s:%d: syntax error (expected 'key = value' or "
		    "'[section]')",
		    path, ret);
	if (cf.failed)
		return -1;
	if (ret != 0)
		return config_msg_error(err, errlen, "%s: cannot parse", path);
	return 0;
}
