/*
 * fuzz-serve.c - libFuzzer target for the serving side: sessions of a
 * peer's requests, decoded as a stream decodes them and served by the
 * local export backend (daemon/export.c) on two exports of a temporary
 * directory.
 *
 * An input is one session.  It starts with a HELLO, encoded, decoded
 * and checked as stream.c does; then every OP_LEN bytes are one
 * request: a type, an export id (one of ours, or not), paths and names
 * from a small table (links out of the export, "..", names with '/',
 * xattr namespaces), a handle this session opened or a forged one, an
 * owner (two streams), flags and numbers from the input.  The request is
 * encoded with proto_encode_req() and decoded again with
 * proto_decode_req() from a buffer of its own size, exactly as a frame
 * from a peer; what the encoder refuses no peer could send, and is
 * skipped.  Each reply must encode (paged, as to a peer with
 * PROTO_CAP_LIST_PAGES) and decode again.
 *
 * After the session its handles are dropped and the oracle runs: the
 * sentinel file beside the exports must be as it was, nothing may have
 * appeared beside the exports, and the read-only export must list as
 * it did (names, types, modes, sizes).  A difference aborts, as does
 * any sanitizer report.  The writable export is then made afresh, so
 * every input starts from the same tree.
 *
 * Confinement and limits: everything lives in one mkdtemp() directory
 * (on /dev/shm when it exists: fsync and fallocate cost nothing there),
 * removed at exit.  Sizes, offsets and lengths are clipped to 1 MiB, so
 * no input fills it.  The fuzzer may run as root, so MKNOD makes only
 * regular files and sockets: never a device node, and never a FIFO,
 * whose open would block.  Deterministic but for forged handles, which
 * match a real one only by chance.  No network, no threads.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "export.h"
#include "log.h"
#include "watch.h"
#include "worker.h"

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define OP_LEN 24
#define CLIP (1u << 20)
#define MAX_HANDLES 16
#define SENTINEL "outside the exports\n"

static char top[64]; /* the temporary directory */
static char rwdir[96], rodir[96], outside[96];
static struct export exports[2];
static char *ro_listing; /* the read-only export, as made */

/* Stub of watch.c: directories are not watched here. */
void
watch_add(uint32_t export_id, const char *path, int dirfd)
{
	(void)export_id;
	(void)path;
	(void)dirfd;
}

/* Stub of watch.c: watched since the start of time. */
uint64_t
watch_since(uint32_t export_id, const char *path)
{
	(void)export_id;
	(void)path;
	return 0;
}

/*
 * Stubs of worker.c and log.c for identity.c: the fuzzer serves with
 * identity = daemon, so no request takes on another user's credentials.
 */
int
worker_become(uint32_t uid, uint32_t gid, const uint32_t *groups,
    uint32_t ngroups, bool privileged)
{
	(void)uid;
	(void)gid;
	(void)groups;
	(void)ngroups;
	(void)privileged;
	abort();
}

void
worker_restore(void)
{
	abort();
}

void
log_warnx(const char *fmt, ...)
{
	(void)fmt;
}

/* The serving side's clock: a fixed time, for determinism. */
static uint64_t
fuzz_global_ns(void)
{
	return 1700000000000000000ull;
}

/* Print the message of a broken invariant and abort. */
static void __attribute__((noreturn)) die(const char *fmt, va_list ap)
{
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	abort();
}

/* xmalloc.c's way out (log.c's fatal and fatalx, without the log). */
void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	die(fmt, ap);
}

/* The same, for messages without errno. */
void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	die(fmt, ap);
}

/* Paths a request may name, good and bad (the encoder refuses these). */
static const char *const paths[] = {
	"",
	"a",
	"a/f",
	"a/b",
	"a/b/c",
	"l",
	"l/x",
	"a/up",
	"s",
	"big",
	"new",
	"a/new",
	"new/x",
	"d",
	"d/x",
	"lo",
	"missing/x",
	"..",
	"a/../f",
	"/a",
	"a//f",
	"a/",
};

/* Names (and xattr names) a request may name. */
static const char *const names[] = {
	"f",
	"new",
	"new2",
	"l",
	"s",
	"a",
	"b",
	"up",
	"big",
	"d",
	"x",
	"..",
	".",
	"x/y",
	"",
	"user.test",
	"user.other",
	"trusted.x",
	"security.capability",
	"system.posix_acl_access",
};

#define NELEM(a) (sizeof(a) / sizeof(a)[0])

/* Die unless ok: the fixture must be made. */
static void
must(int ok, const char *what)
{
	if (!ok)
		fatal("fuzz-serve: %s: %s", what, strerror(errno));
}

/* Write a file of n bytes of c (or text when n is 0). */
static void
put_file(const char *dir, const char *name, const char *text, size_t n, int c)
{
	char path[256];
	int fd;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	must((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) != -1, path);
	if (n == 0)
		must(write(fd, text, strlen(text)) == (ssize_t)strlen(text),
		    path);
	else {
		char *buf = xmalloc(n);

		memset(buf, c, n);
		must(write(fd, buf, n) == (ssize_t)n, path);
		free(buf);
	}
	close(fd);
}

/* nftw callback: remove one entry (depth first). */
static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	if (remove(path) == -1 && errno != ENOENT)
		fatal("fuzz-serve: remove %s: %s", path, strerror(errno));
	return 0;
}

/* Remove a tree, if it is there. */
static void
rm_tree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Make the writable export's tree afresh. */
static void
make_rw(void)
{
	char p[256];

	rm_tree(rwdir);
	must(mkdir(rwdir, 0755) == 0, rwdir);
	snprintf(p, sizeof p, "%s/a", rwdir);
	must(mkdir(p, 0755) == 0, p);
	snprintf(p, sizeof p, "%s/a/b", rwdir);
	must(mkdir(p, 0755) == 0, p);
	put_file(rwdir, "a/f", "hello\n", 0, 0);
	put_file(rwdir, "big", NULL, 65536, 'z');
	snprintf(p, sizeof p, "%s/l", rwdir);
	must(symlink("../outside", p) == 0, p);
	snprintf(p, sizeof p, "%s/a/up", rwdir);
	must(symlink("../../outside", p) == 0, p);
	snprintf(p, sizeof p, "%s/s", rwdir);
	must(mknod(p, S_IFSOCK | 0644, 0) == 0, p);
}

/* The listing being made by listing_of(). */
static char *lst;
static size_t lst_len, lst_cap;

/* nftw callback: append "path mode size" of one entry to lst. */
static int
list_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	char line[512];
	int n;

	(void)flag;
	(void)f;
	n = snprintf(line, sizeof line, "%s %o %lld\n", path,
	    (unsigned)st->st_mode, (long long)st->st_size);
	if (n < 0)
		return 1;
	while (lst_len + (size_t)n + 1 > lst_cap) {
		lst_cap = lst_cap ? lst_cap * 2 : 4096;
		lst = xreallocarray(lst, lst_cap, 1);
	}
	memcpy(lst + lst_len, line, (size_t)n + 1);
	lst_len += (size_t)n;
	return 0;
}

/*
 * "path mode size" of every entry below dir, xmalloc'd, in directory
 * order (stable while nothing changes there).
 */
static char *
listing_of(const char *dir)
{
	lst = NULL;
	lst_len = lst_cap = 0;
	nftw(dir, list_one, 16, FTW_PHYS);
	return lst != NULL ? lst : xstrdup("");
}

/* Whether what lies beside the exports is as made, and only that. */
static int
outside_intact(void)
{
	char buf[64];
	struct stat st;
	struct dirent *de;
	ssize_t n;
	int fd, others = 0;
	DIR *d;

	if ((fd = open(outside, O_RDONLY | O_NOFOLLOW)) == -1)
		return 0;
	n = read(fd, buf, sizeof buf);
	close(fd);
	if (n != (ssize_t)strlen(SENTINEL) ||
	    memcmp(buf, SENTINEL, (size_t)n) != 0 ||
	    lstat(outside, &st) == -1 || !S_ISREG(st.st_mode) ||
	    (st.st_mode & 07777) != 0644 || st.st_nlink != 1)
		return 0;
	if ((d = opendir(top)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		others += strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0 &&
		    strcmp(de->d_name, "rw") != 0 &&
		    strcmp(de->d_name, "ro") != 0 &&
		    strcmp(de->d_name, "outside") != 0;
	closedir(d);
	return others == 0;
}

/* Remove the temporary directory at exit. */
static void
cleanup(void)
{
	for (size_t i = 0; i < NELEM(exports); i++)
		export_close(&exports[i]);
	if (top[0] != '\0')
		rm_tree(top);
}

/*
 * Remove the temporary directories of earlier runs that died (a crash
 * aborts before atexit): their names carry the PID.
 */
static void
reap(const char *base)
{
	char path[128];
	struct dirent *de;
	int pid;
	DIR *d;

	if ((d = opendir(base)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (sscanf(de->d_name, "pufs-fuzz-serve-%d-", &pid) != 1 ||
		    pid <= 0 || kill(pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(path, sizeof path, "%s/%s", base, de->d_name);
		rm_tree(path);
	}
	closedir(d);
}

/* Make the temporary tree and open the two exports. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct config_export ce[2] = {
		{ .name = "rw", .path = rwdir, .at = "/" },
		{ .name = "ro", .path = rodir, .at = "/ro", .read_only = true },
	};
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	char p[256];

	(void)argc;
	(void)argv;
	reap(base);
	snprintf(top, sizeof top, "%s/pufs-fuzz-serve-%d-XXXXXX", base,
	    (int)getpid());
	must(mkdtemp(top) != NULL, top);
	atexit(cleanup);
	snprintf(rwdir, sizeof rwdir, "%s/rw", top);
	snprintf(rodir, sizeof rodir, "%s/ro", top);
	snprintf(outside, sizeof outside, "%s/outside", top);
	put_file(top, "outside", SENTINEL, 0, 0);
	must(chmod(outside, 0644) == 0, outside);
	make_rw();
	must(mkdir(rodir, 0755) == 0, rodir);
	put_file(rodir, "f", "read only\n", 0, 0);
	snprintf(p, sizeof p, "%s/d", rodir);
	must(mkdir(p, 0755) == 0, p);
	put_file(rodir, "d/x", "x\n", 0, 0);
	snprintf(p, sizeof p, "%s/lo", rodir);
	must(symlink("../outside", p) == 0, p);
	ro_listing = listing_of(rodir);
	for (uint32_t i = 0; i < NELEM(exports); i++)
		must(export_open(&exports[i], &ce[i], i) == 0, ce[i].path);
	/* A fixed boot id, which checkpoints may name; nothing watched. */
	export_init(&(struct export_ctx){ .exports = exports,
	    .nexports = NELEM(exports),
	    .boot_id = 1,
	    .max_handles = MAX_HANDLES / 2,
	    .global_ns = fuzz_global_ns });
	return 0;
}

/* The session's handshake, as stream.c's acceptor takes it. */
static int
hello(void)
{
	struct proto_export ex = { 0, "fuzz", "/", false };
	struct proto_req q = {
		.type = PROTO_HELLO, .id = 1,
		.hello = { PROTO_MAGIC, PROTO_VERSION, PROTO_CAPS, "fuzzer",
		    "127.0.0.1:7070", 1, 2, 1, &ex },
	}, d;
	struct proto_buf b = { 0 };
	int ok;

	if (proto_encode_req(&q, &b) != 0)
		abort();
	ok = proto_decode_req(b.p, b.len, &d) == 0 && d.type == PROTO_HELLO &&
	    d.hello.version == PROTO_VERSION;
	proto_req_clear(&d);
	proto_buf_free(&b);
	return ok;
}

/* Take n bytes (little-endian) at p. */
static uint64_t
take(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	while (n-- > 0)
		v = v << 8 | p[n];
	return v;
}

/* An export id from a selector byte: ours, the next one, or any. */
static uint32_t
export_sel(uint8_t b)
{
	return (b & 3) < 3 ? b & 3 : b >> 2;
}

/* A handle from a selector byte: one the session opened, or forged. */
static uint64_t
handle_sel(uint8_t b, const uint64_t *fhs, size_t nfh, uint64_t raw)
{
	if ((b & 0x80) == 0 && nfh > 0)
		return fhs[b % nfh];
	return raw;
}

/* A payload from a selector byte. */
static void
data_sel(uint8_t b, struct proto_req *q, char *big)
{
	static const char *const pool[] = {
		"x",
		"../outside",
		"/etc/passwd",
		"hello\nworld\n",
		"a/f",
	};

	switch (b % 8) {
	case 5:
		q->data = big; /* a long symlink target */
		q->datalen = PROTO_MAX_PATH - 1;
		break;
	case 6:
		q->data = big; /* the largest xattr value */
		q->datalen = PROTO_MAX_XATTR;
		break;
	case 7:
		q->data = NULL;
		q->datalen = 0;
		break;
	default:
		q->data = pool[b % 8];
		q->datalen = strlen(pool[b % 8]);
	}
}

/* Build request i from OP_LEN bytes at p. */
static void
build(struct proto_req *q, const uint8_t *p, const uint64_t *fhs, size_t nfh,
    char *big, uint64_t id)
{
	uint64_t raw = take(p + 16, 8);
	uint32_t word = (uint32_t)take(p + 12, 4);

	memset(q, 0, sizeof *q);
	q->type = (uint8_t)(1 + p[0] % (PROTO_TYPE_MAX - 1));
	q->id = id;
	q->export_id = export_sel(p[1]);
	q->path = paths[p[2] % NELEM(paths)];
	q->name = names[p[3] % NELEM(names)];
	q->export2 = export_sel(p[4]);
	q->path2 = paths[p[5] % NELEM(paths)];
	q->name2 = names[p[6] % NELEM(names)];
	q->fh = handle_sel(p[7], fhs, nfh, raw);
	q->fh2 = handle_sel(p[9], fhs, nfh, raw ^ 1);
	data_sel(p[8] >> 1, q, big);
	q->offset = raw % CLIP;
	q->offset2 = (raw >> 20) % CLIP;
	q->length = (raw >> 40) % CLIP;
	q->mode = word;
	q->flags = word;
	q->uid = p[10];
	q->gid = p[11];
	q->rdev = raw;
	q->valid = word & PROTO_SET_ALL;
	q->atime = (struct proto_time){ (int64_t)(raw % 4000000000u),
		(uint32_t)(raw % 1000000000u) };
	q->mtime = q->atime;
	switch (q->type) {
	case PROTO_MKNOD:
		/* Never a device (we may be root) nor a FIFO (open blocks). */
		q->mode = (word & 1 ? S_IFSOCK : S_IFREG) | (word & 0777);
		break;
	case PROTO_GETXATTR:
	case PROTO_LISTXATTR:
		q->length %= PROTO_MAX_XATTR + 1;
		break;
	case PROTO_READDIR:
		/* A checkpoint now and then: boot 1, change 0 or any. */
		q->fh = p[10] & 1 ? 1 : 0;
		q->offset = q->fh ? raw : 0;
		q->offset2 = q->fh && (p[11] & 1) ? raw : 0;
		break;
	case PROTO_LSEEK:
		q->flags = word % 6;
		break;
	default:
		break;
	}
}

/* Serve one request from the peer; its reply must encode and decode. */
static void
serve(const struct proto_req *req, uint32_t owner, uint64_t *fhs, size_t *nfh)
{
	struct proto_buf b = { 0 };
	struct proto_req q;
	struct proto_rep rep, d;
	struct export_mem mem = { 0 };
	uint8_t *frame;
	size_t off;
	long len;

	if (proto_encode_req(req, &b) != 0) {
		proto_buf_free(&b);
		return; /* no peer can send it */
	}
	/* Decode from a buffer of the frame's own size, as stream.c. */
	frame = xmalloc(b.len);
	memcpy(frame, b.p, b.len);
	if (proto_decode_req(frame, b.len, &q) != 0)
		abort(); /* what one encodes, the other takes */
	b.len = 0;
	switch (q.type) {
	case PROTO_HELLO: /* a second HELLO: a protocol error */
	case PROTO_PING:  /* answered by the stream itself */
	case PROTO_BYE:
		break;
	default:
		export_serve(owner, &q, &rep, &mem);
		if (rep.type != q.type || rep.id != q.id)
			abort();
		if (proto_encode_rep_paged(&rep, &b) != 0)
			abort(); /* a reply we could not send */
		for (off = 0; off < b.len; off += (size_t)len) {
			len = proto_frame_len(b.p + off, b.len - off);
			if (len <= 0 ||
			    proto_decode_rep(b.p + off, (size_t)len, &d) != 0)
				abort();
			proto_rep_clear(&d);
		}
		if (rep.error == 0 &&
		    (q.type == PROTO_OPEN || q.type == PROTO_CREATE) &&
		    *nfh < MAX_HANDLES)
			fhs[(*nfh)++] = rep.fh;
		export_mem_free(&mem);
		free(rep.ents);
	}
	proto_req_clear(&q);
	free(frame);
	proto_buf_free(&b);
}

/* One session: HELLO, the requests, then the oracle. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char big[PROTO_MAX_XATTR];
	uint64_t fhs[MAX_HANDLES];
	size_t nfh = 0;
	struct proto_req q;
	char *now;

	if (!hello())
		abort();
	memset(big, 'B', sizeof big);
	for (size_t i = 0; i + OP_LEN <= size; i += OP_LEN) {
		build(&q, data + i, fhs, nfh, big, i / OP_LEN + 2);
		serve(&q, 1 + (data[i + 8] & 1), fhs, &nfh);
	}
	export_drop_owner(1);
	export_drop_owner(2);
	if (export_open_handles() != 0)
		abort(); /* a handle outlived its stream */
	if (!outside_intact())
		abort(); /* something reached outside the exports */
	now = listing_of(rodir);
	if (strcmp(now, ro_listing) != 0)
		abort(); /* the read-only export changed */
	free(now);
	make_rw();
	return 0;
}
