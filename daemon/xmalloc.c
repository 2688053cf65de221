/*
 * xmalloc.c - allocation for control structures.
 *
 * Control structures are small and few; running out of memory for them
 * is not recoverable, so these die instead of returning NULL.  Cache
 * memory never comes from here: it is bounded and evicts instead.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* malloc that dies on failure. */
void *
xmalloc(size_t size)
{
	void *p = malloc(size == 0 ? 1 : size);

	if (p == NULL)
		fatal("malloc %zu", size);
	return p;
}

/* calloc that dies on failure. */
void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size);

	if (p == NULL)
		fatal("calloc %zu x %zu", n, size);
	return p;
}

/* reallocarray that dies on failure or overflow. */
void *
xreallocarray(void *old, size_t n, size_t size)
{
	void *p = reallocarray(old, n == 0 ? 1 : n, size == 0 ? 1 : size);

	if (p == NULL)
		fatal("reallocarray %zu x %zu", n, size);
	return p;
}

/* strdup that dies on failure. */
char *
xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		fatal("strdup");
	return p;
}

/* strndup that dies on failure. */
char *
xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);

	if (p == NULL)
		fatal("strndup");
	return p;
}

/* asprintf that dies on failure. */
int
xasprintf(char **ret, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(ret, fmt, ap);
	va_end(ap);
	if (n < 0)
		fatal("asprintf");
	return n;
}

/* "dir/name" of a path relative to an export root, or name at the root. */
char *
xpathjoin(const char *dir, const char *name)
{
	char *p;

	xasprintf(&p, "%s%s%s", dir, dir[0] ? "/" : "", name);
	return p;
}
