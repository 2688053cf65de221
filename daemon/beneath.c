/*
 * beneath.c - resolving a request's path beneath an export's root.
 *
 * Paths are resolved with openat2(2) from the export's root fd
 * with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS, so
 * neither "..", nor a symbolic link, nor a directory swapped for a link
 * in a race can lead outside the export: the kernel refuses the walk.
 * Operations that create or remove a name resolve the parent that way and
 * then act on a single component with the *at() calls, never following a
 * link in the last component.  Symbolic links are stored and returned
 * verbatim and never followed here.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "export-int.h"

#define BENEATH_RESOLVE \
	(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)

/* Resolve path beneath the export root with the given open flags. */
int
beneath_open(const struct export *ex, const char *path, uint64_t flags)
{
	struct open_how how = {
		.flags = flags | O_CLOEXEC | O_NOFOLLOW,
		.resolve = BENEATH_RESOLVE,
	};
	long fd;

	if (!proto_path_ok(path))
		return -EINVAL;
	if (flags & O_CREAT)
		how.mode = 0;
	fd = syscall(SYS_openat2, ex->rootfd, path[0] ? path : ".", &how,
	    sizeof how);
	return fd < 0 ? -errno : (int)fd;
}

/* Resolve an object itself (O_PATH; a final symlink is not followed). */
int
beneath_obj(const struct export *ex, const char *path)
{
	return beneath_open(ex, path, O_PATH);
}

/* Resolve a directory that will hold or lose a name. */
int
beneath_dir(const struct export *ex, const char *path)
{
	return beneath_open(ex, path, O_PATH | O_DIRECTORY);
}

/* The /proc path of one of our fds, to act on an O_PATH fd's inode. */
void
beneath_procpath(int fd, char *buf, size_t len)
{
	snprintf(buf, len, "/proc/self/fd/%d", fd);
}

/*
 * Open the object of an O_PATH descriptor with a peer's open flags, if
 * it is a regular file or a directory.  Anything else is refused before
 * it is opened: a FIFO would block a worker until a writer comes, a
 * device would reach its driver.  ENXIO for those, ELOOP for a symbolic
 * link (as O_NOFOLLOW says).  The reopen goes through the descriptor's
 * /proc link, so it reaches the very inode that was checked.
 */
int
beneath_reopen(int pfd, int flags)
{
	struct stat st;
	char proc[64];
	int fd;

	if (fstatat(pfd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == -1)
		return -errno;
	if (S_ISLNK(st.st_mode))
		return -ELOOP;
	if ((flags & O_DIRECTORY) && !S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
		return -ENXIO;
	beneath_procpath(pfd, proc, sizeof proc);
	fd = open(proc, (flags & ~(O_NOFOLLOW | O_CREAT | O_EXCL)) | O_CLOEXEC);
	return fd == -1 ? -errno : fd;
}
