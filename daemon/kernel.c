/*
 * kernel.c - what pufs says to the FUSE kernel module beyond what
 * libfuse 3.14 can: the channel's custom I/O, the mount's read-ahead
 * window, and the connection's abort.
 *
 * The channel is read and written through fuse_session_custom_io() on
 * the fd fuse_session_mount() opened, so every request passes here on
 * its way to libfuse and every answer on its way back.  Three things
 * are done on the way, nothing else is changed:
 *
 * - INIT: the kernel's offer is noted, and the reply libfuse writes gets
 *   the flags libfuse 3.14 never sets, FUSE_PARALLEL_DIROPS (lookups
 *   and listings of one directory in parallel; libfuse 3.17 passes it)
 *   and FUSE_HANDLE_KILLPRIV_V2 (this file system clears the set-ID
 *   bits on write and truncate, so the kernel stops asking for
 *   security.capability before every write), each only if the kernel
 *   offered it.  Once the reply is in, the mount's bdi read-ahead
 *   window is raised (the INIT reply can only lower it).
 * - With KILLPRIV_V2 the kernel says which write, truncate, chown and
 *   O_TRUNC open must clear the set-ID bits (the caller lacks
 *   CAP_FSETID); libfuse 3.14 drops those bits, so the request's are
 *   noted here for its handler (kernel_kill_suidgid()).
 * - With `identity = caller`, the request's uid, gid and pid (what
 *   fuse_req_ctx() would give its handler) become the caller of the
 *   calls it makes (call_set_caller()); fs.c ends that after it.
 *
 * No splice either way: libfuse reads and writes plain buffers through
 * us.  The fd stays non-blocking; EAGAIN goes back to fs.c's loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <fuse_lowlevel.h>
#include <linux/fuse.h>

#include "fs.h"

/* The flags pufs wants in the INIT reply beyond libfuse's own. */
#define KERNEL_WANT ((uint64_t)FUSE_PARALLEL_DIROPS | FUSE_HANDLE_KILLPRIV_V2)

/* Opcodes counted by kernel_read(); the rest count as "other". */
#define KERNEL_NOPS (FUSE_COPY_FILE_RANGE + 1)

/* The read-ahead window a block size alone would not fill: 1 MiB. */
#define KERNEL_RA_CAP (1u << 20)

static struct {
	char *mountpoint; /* owned */
	/* INIT being answered, 0 if none; the notifier thread reads it */
	_Atomic uint64_t init_unique;
	uint64_t offered; /* the kernel's INIT flags (flags2 included) */
	bool kill;        /* the request last read asks to clear set-ID bits */
	unsigned long ops[KERNEL_NOPS]; /* requests read, by opcode */
} kernel;

/* The names of the opcodes counted, as status shows them. */
static const char *const kernel_op_names[KERNEL_NOPS] = {
	[FUSE_LOOKUP] = "lookup",
	[FUSE_FORGET] = "forget",
	[FUSE_GETATTR] = "getattr",
	[FUSE_SETATTR] = "setattr",
	[FUSE_READLINK] = "readlink",
	[FUSE_SYMLINK] = "symlink",
	[FUSE_MKNOD] = "mknod",
	[FUSE_MKDIR] = "mkdir",
	[FUSE_UNLINK] = "unlink",
	[FUSE_RMDIR] = "rmdir",
	[FUSE_RENAME] = "rename",
	[FUSE_LINK] = "link",
	[FUSE_OPEN] = "open",
	[FUSE_READ] = "read",
	[FUSE_WRITE] = "write",
	[FUSE_STATFS] = "statfs",
	[FUSE_RELEASE] = "release",
	[FUSE_FSYNC] = "fsync",
	[FUSE_SETXATTR] = "setxattr",
	[FUSE_GETXATTR] = "getxattr",
	[FUSE_LISTXATTR] = "listxattr",
	[FUSE_REMOVEXATTR] = "removexattr",
	[FUSE_FLUSH] = "flush",
	[FUSE_INIT] = "init",
	[FUSE_OPENDIR] = "opendir",
	[FUSE_READDIR] = "readdir",
	[FUSE_RELEASEDIR] = "releasedir",
	[FUSE_FSYNCDIR] = "fsyncdir",
	[FUSE_GETLK] = "getlk",
	[FUSE_SETLK] = "setlk",
	[FUSE_SETLKW] = "setlkw",
	[FUSE_ACCESS] = "access",
	[FUSE_CREATE] = "create",
	[FUSE_INTERRUPT] = "interrupt",
	[FUSE_BMAP] = "bmap",
	[FUSE_DESTROY] = "destroy",
	[FUSE_IOCTL] = "ioctl",
	[FUSE_POLL] = "poll",
	[FUSE_NOTIFY_REPLY] = "notify_reply",
	[FUSE_BATCH_FORGET] = "batch_forget",
	[FUSE_FALLOCATE] = "fallocate",
	[FUSE_READDIRPLUS] = "readdirplus",
	[FUSE_RENAME2] = "rename2",
	[FUSE_LSEEK] = "lseek",
	[FUSE_COPY_FILE_RANGE] = "copy_file_range",
};

/*
 * Whether the request just read asks the file system to clear set-ID
 * bits: write, truncate or chown (setattr), open with O_TRUNC.
 */
static bool
kernel_wants_kill(const struct fuse_in_header *in, const char *arg, size_t len)
{
	switch (in->opcode) {
	case FUSE_WRITE: {
		const struct fuse_write_in *w = (const void *)arg;

		return len >= offsetof(struct fuse_write_in, lock_owner) &&
		    (w->write_flags & FUSE_WRITE_KILL_SUIDGID) != 0;
	}
	case FUSE_SETATTR: {
		const struct fuse_setattr_in *s = (const void *)arg;

		return len >= sizeof s->valid &&
		    (s->valid & FATTR_KILL_SUIDGID) != 0;
	}
	case FUSE_OPEN: {
		const struct fuse_open_in *o = (const void *)arg;

		return len >= sizeof *o &&
		    (o->open_flags & FUSE_OPEN_KILL_SUIDGID) != 0;
	}
	default:
		return false;
	}
}

/* Note what an INIT request offers, for its reply. */
static void
kernel_note_init(const struct fuse_in_header *in, const char *arg, size_t len)
{
	const struct fuse_init_in *i = (const void *)arg;

	if (len < offsetof(struct fuse_init_in, flags2))
		return;
	kernel.offered = i->flags;
	if ((i->flags & FUSE_INIT_EXT) && len >= sizeof *i)
		kernel.offered |= (uint64_t)i->flags2 << 32;
	atomic_store(&kernel.init_unique, in->unique);
	log_debug("fuse: the kernel speaks %u.%u and offers flags %#llx",
	    i->major, i->minor, (unsigned long long)kernel.offered);
}

/* Where requests of opcode op are counted: 0 for one without a name. */
static int
kernel_op_index(uint32_t op)
{
	return op < KERNEL_NOPS && kernel_op_names[op] != NULL ? (int)op : 0;
}

/* The channel's read: one request, looked at on its way to libfuse. */
static ssize_t
kernel_read(int fd, void *buf, size_t len, void *userdata)
{
	const struct fuse_in_header *in = buf;
	size_t got, arglen;
	ssize_t n;

	(void)userdata;
	kernel.kill = false;
	if ((n = read(fd, buf, len)) < (ssize_t)sizeof *in)
		return n;
	got = (size_t)n < in->len ? (size_t)n : in->len;
	arglen = got > sizeof *in ? got - sizeof *in : 0;
	kernel.ops[kernel_op_index(in->opcode)]++;
	/* Its calls carry the caller's credentials (fuse_req_ctx's). */
	if (conf->identity == IDENTITY_CALLER)
		call_set_caller(in->uid, in->gid, in->pid);
	if (in->opcode == FUSE_INIT)
		kernel_note_init(in, (const char *)(in + 1), arglen);
	else
		kernel.kill = kernel_wants_kill(in, (const char *)(in + 1),
		    arglen);
	return n;
}

/*
 * The requests read of opcode i (0 <= i < kernel_nops()) and its name
 * in *name; index 0 is every opcode without a name of its own.
 */
unsigned long
kernel_op_count(int i, const char **name)
{
	*name = i == 0 ? "other" : kernel_op_names[i];
	return *name != NULL ? kernel.ops[i] : 0;
}

/* The bound of kernel_op_count()'s index. */
int
kernel_nops(void)
{
	return KERNEL_NOPS;
}

/* Whether the request being handled asks to clear set-ID bits. */
bool
kernel_kill_suidgid(void)
{
	return kernel.kill;
}

/* The read-ahead window the mount should have, in bytes. */
uint32_t
kernel_readahead(void)
{
	uint64_t want = (uint64_t)conf->readahead_max * conf->block_size;

	if (want > KERNEL_RA_CAP)
		want = KERNEL_RA_CAP;
	if (want < conf->block_size)
		want = conf->block_size;
	return want > UINT32_MAX ? UINT32_MAX : (uint32_t)want;
}

/* Undo mountinfo's octal escapes (\040 for a space) in place. */
static void
kernel_unescape(char *s)
{
	char *d = s;

	for (; *s != '\0'; s++, d++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*d = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 |
			    (s[3] - '0'));
			s += 3;
		} else
			*d = *s;
	}
	*d = '\0';
}

/*
 * The device numbers of our mount, from mountinfo: a stat(2) of the
 * mount point would ask this very loop.  Returns 0 or -ENOENT.
 */
static int
kernel_mount_dev(unsigned *major, unsigned *minor)
{
	char line[8192], mnt[4096];
	int rc = -ENOENT;
	FILE *f;

	if (kernel.mountpoint == NULL ||
	    (f = fopen("/proc/self/mountinfo", "re")) == NULL)
		return -ENOENT;
	while (rc != 0 && fgets(line, sizeof line, f) != NULL) {
		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", major, minor,
			mnt) != 3)
			continue;
		kernel_unescape(mnt);
		if (strcmp(mnt, kernel.mountpoint) == 0)
			rc = 0;
	}
	fclose(f);
	return rc;
}

/*
 * Raise the mount's read-ahead window (its bdi's read_ahead_kb) to
 * kernel_readahead(), never lowering it.  The kernel starts a FUSE
 * mount at 128 KiB and INIT can only lower that; sysfs takes root.
 */
static void
kernel_raise_readahead(void)
{
	unsigned major, minor, want = kernel_readahead() / 1024, cur = 0;
	char path[80], why[128] = "";
	FILE *f;
	int fd;

	if (kernel_mount_dev(&major, &minor) < 0) {
		log_info("fuse: read-ahead window left as it is: %s is not in "
			 "mountinfo",
		    kernel.mountpoint);
		return;
	}
	snprintf(path, sizeof path, "/sys/class/bdi/%u:%u/read_ahead_kb", major,
	    minor);
	if ((f = fopen(path, "re")) != NULL) {
		if (fscanf(f, "%u", &cur) != 1)
			cur = 0;
		fclose(f);
	}
	if (cur >= want) {
		log_debug("fuse: read-ahead window %u KiB", cur);
		return;
	}
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) == -1)
		snprintf(why, sizeof why, "%s: %s", path, strerror(errno));
	else {
		if (dprintf(fd, "%u\n", want) < 0)
			snprintf(why, sizeof why, "writing %s: %s", path,
			    strerror(errno));
		close(fd);
	}
	if (why[0] != '\0')
		log_info("fuse: read-ahead window left at %u KiB, not raised "
			 "to %u KiB (%s)",
		    cur, want, why);
	else
		log_info("fuse: read-ahead window %u KiB", want);
}

/*
 * Edit the INIT reply in iov (flattened into out, at most outlen bytes)
 * to grant what we want of what the kernel offered.  Returns the reply's
 * length, or 0 if it is not one to edit (an error, a major version
 * handshake, too short).
 */
static size_t
kernel_edit_init(const struct iovec *iov, int count, char *out, size_t outlen)
{
	struct fuse_out_header *oh = (void *)out;
	struct fuse_init_out *o = (void *)(oh + 1);
	size_t len = 0;

	for (int i = 0; i < count; i++) {
		if (iov[i].iov_len > outlen - len)
			return 0;
		memcpy(out + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	if (len < sizeof *oh || oh->error != 0 || len != oh->len)
		return 0;
	if (len - sizeof *oh < offsetof(struct fuse_init_out, max_background) ||
	    o->major != FUSE_KERNEL_VERSION)
		return 0;
	/* Both are in the first word: flags2 (FUSE_INIT_EXT) stays. */
	o->flags |= (uint32_t)(KERNEL_WANT & kernel.offered);
	log_info("fuse: kernel %u.%u, parallel lookups %s, set-ID bits "
		 "cleared by %s, max_readahead %u, max_write %u",
	    o->major, o->minor, o->flags & FUSE_PARALLEL_DIROPS ? "on" : "off",
	    o->flags & FUSE_HANDLE_KILLPRIV_V2 ? "pufs" : "the kernel",
	    o->max_readahead, o->max_write);
	return len;
}

/*
 * The channel's write: answers and notifications, from the loop and the
 * notifier thread.  Only the INIT reply is changed.
 */
static ssize_t
kernel_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	const struct fuse_out_header *oh = iov[0].iov_base;
	uint64_t unique = atomic_load(&kernel.init_unique);
	_Alignas(uint64_t) char
	    out[sizeof(struct fuse_out_header) + sizeof(struct fuse_init_out)];
	size_t len;
	ssize_t n;

	(void)userdata;
	if (unique == 0 || count < 1 || iov[0].iov_len < sizeof *oh ||
	    oh->unique != unique)
		return writev(fd, iov, count);
	atomic_store(&kernel.init_unique, 0);
	if ((len = kernel_edit_init(iov, count, out, sizeof out)) == 0) {
		if (oh->error == 0)
			log_info("fuse: an INIT reply of a shape pufs does not "
				 "know went unchanged");
		return writev(fd, iov, count);
	}
	if ((n = write(fd, out, len)) == (ssize_t)len)
		kernel_raise_readahead();
	return n;
}

/*
 * Put the channel of the session mounted on mountpoint through
 * kernel_read() and kernel_writev().  Returns 0 or a negative errno.
 */
int
kernel_attach(struct fuse_session *se, const char *mountpoint)
{
	static const struct fuse_custom_io io = {
		.read = kernel_read,
		.writev = kernel_writev,
	};

	free(kernel.mountpoint);
	kernel.mountpoint = xstrdup(mountpoint);
	return fuse_session_custom_io(se, &io, fuse_session_fd(se));
}

/*
 * Abort our FUSE connection through fusectl: the last resort when the
 * notifier stays blocked in the kernel (every request pending there
 * fails, and its locks go).  Its number is the minor of the mount's
 * device.
 */
void
kernel_abort(void)
{
	unsigned major, minor;
	char path[64];
	int fd;

	if (kernel_mount_dev(&major, &minor) < 0)
		return;
	snprintf(path, sizeof path, "/sys/fs/fuse/connections/%u/abort", minor);
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) == -1 ||
	    write(fd, "1", 1) != 1)
		log_warn("fuse: cannot abort the connection (%s)", path);
	else
		log_warnx("fuse: the kernel did not take our last "
			  "invalidations; connection aborted");
	if (fd != -1)
		close(fd);
}

/* Forget the mount point (after unmount). */
void
kernel_free(void)
{
	free(kernel.mountpoint);
	kernel.mountpoint = NULL;
}
