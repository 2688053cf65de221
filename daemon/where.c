/*
 * where.c - `pufs where PATH...`: which peer, contact address and export
 * hold each file of a mounted union.
 *
 * It reads the virtual attributes user.pufs.peer, user.pufs.uri and
 * user.pufs.export that the mounting peer answers (xattr.c), so it needs
 * no socket: any user who can see the file can ask.  One line a path,
 * PATH, PEER, URI and EXPORT separated by tabs; a merged directory's
 * fields list every copy, separated by spaces, the primary first.  A
 * symbolic link is followed: the kernel passes user.* attributes only of
 * regular files and directories.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "pufs.h"

#define WHERE_MAX 65536

/* Usage of the where command. */
static void
where_usage(FILE *f)
{
	fprintf(f, "usage: pufs where PATH...\n");
}

/* Attribute name of path into buf; 0 or an errno. */
static int
where_get(const char *path, const char *name, char *buf, size_t len)
{
	ssize_t n = getxattr(path, name, buf, len - 1);

	if (n < 0)
		return errno;
	buf[n] = '\0';
	return 0;
}

/* Print one path's line; 0, or 1 with a message. */
static int
where_one(const char *path)
{
	static const char *const names[] = { "user.pufs.peer", "user.pufs.uri",
		"user.pufs.export" };
	static char vals[3][WHERE_MAX];
	int err;

	for (int i = 0; i < 3; i++) {
		if ((err = where_get(path, names[i], vals[i], WHERE_MAX)) == 0)
			continue;
		if (err == ENODATA || err == ENOTSUP)
			cli_warnx("where: %s: not held by any peer of a pufs "
				  "union (%s)",
			    path, strerror(err));
		else
			cli_warnx("where: %s: %s", path, strerror(err));
		return 1;
	}
	printf("%s\t%s\t%s\t%s\n", path, vals[0], vals[1], vals[2]);
	return 0;
}

/* Run `pufs where`; 0 if every path was answered, else 1 (2: usage). */
int
where_main(int argc, char **argv)
{
	int rc = 0, i = 1;

	if (argc > 1 &&
	    (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		where_usage(stdout);
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "--") == 0)
		i++;
	else if (argc > 1 && argv[1][0] == '-')
		i = argc; /* an option: none is known */
	if (i >= argc) {
		where_usage(stderr);
		return 2;
	}
	for (; i < argc; i++)
		rc |= where_one(argv[i]);
	return rc;
}
