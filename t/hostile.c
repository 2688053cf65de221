/*
 * hostile.c - a peer that speaks proto/PROTOCOL.md by hand, for tests of
 * what a serving daemon does with well-formed requests nobody should
 * send (and with frames that are not well-formed at all).
 *
 *   hostile [-v] [-n] [-D] [-q] [-t SECONDS] [-u URI] [-x NAME:AT]
 *           HOST:PORT NAME BOOT_ID
 *
 * Connects to HOST:PORT (IPv4 or [IPv6]), sends a HELLO request as peer
 * NAME with boot id BOOT_ID (decimal or 0x hex), uptime 0 and no
 * exports (but those of -x), and waits for the HELLO reply; then reads a script
 * from standard input, one command a line, and prints one line per reply.
 * Frames are encoded and decoded by proto/proto.c.  Requests of the
 * daemon are answered meanwhile (PING with value 0, BYE, the rest
 * ENOSYS), so a script may wait on its standard input for as long as it
 * likes without the stream being dropped as silent.
 *
 * Options: -v prints the reply's fields after the errno; -n skips the
 * handshake (the script then says `hello` itself, or sends raw frames
 * first); -t is how long a request waits for its reply (default 10 s);
 * -u is the URI announced in HELLO (default: the local address, port 9).
 *
 * Output: for each request, one line whose first word is `ok` or the
 * errno name of the reply (EPERM, ENXIO, ...), `timeout` when no reply
 * came within -t, or `closed` when the stream is gone.  With -v the
 * reply's fields follow (fh=, value=, mode=, size=, uid=, gid=, data=,
 * ents=).  Exit status: 0 when the whole script ran, 1 when the
 * connection or the handshake failed, 2 on bad usage or a bad script
 * line (the message names the line).
 *
 * Script syntax.  Words are separated by blanks; `#` starts a comment.
 * EXPORT is an export id or the name the daemon's HELLO gave it; PATH
 * and DIR are relative paths, `.` for the export root; MODE is octal
 * (file type bits included for mknod: 010644 FIFO, 020644 char device,
 * 060644 block device); FLAGS is a number or names joined by `|`
 * (rdonly wronly rdwr creat excl trunc append nonblock directory sync
 * dsync noatime nofollow, with or without O_); RDEV is a number or
 * MAJOR:MINOR; FH is a number or a $variable.  A request may end in
 * `-> $VAR`, which stores the reply's fh in VAR (for later `$VAR`).
 *
 *   stat EXPORT PATH [fh=FH]
 *   setattr EXPORT PATH [fh=FH] [mode=MODE] [uid=N] [gid=N] [size=N]
 *           [atime=SEC] [mtime=SEC]
 *   readlink EXPORT PATH
 *   mknod EXPORT DIR NAME MODE RDEV
 *   mkdir EXPORT DIR NAME MODE
 *   symlink EXPORT DIR NAME TARGET
 *   link EXPORT PATH EXPORT2 DIR2 NAME2
 *   unlink EXPORT DIR NAME          rmdir EXPORT DIR NAME
 *   rename EXPORT DIR NAME EXPORT2 DIR2 NAME2 [FLAGS]
 *   open EXPORT PATH FLAGS          create EXPORT DIR NAME MODE FLAGS
 *   read FH OFFSET LENGTH           write FH OFFSET TEXT
 *   release FH                      fsync FH [FLAGS]
 *   fsyncdir EXPORT PATH [FLAGS]    readdir EXPORT PATH
 *   statfs EXPORT PATH              access EXPORT PATH MASK
 *   fallocate FH OFFSET LENGTH [MODE]
 *   setxattr EXPORT PATH NAME VALUE [FLAGS]
 *   getxattr EXPORT PATH NAME [LENGTH]
 *   listxattr EXPORT PATH [LENGTH]  removexattr EXPORT PATH NAME
 *   copy FH OFFSET FH2 OFFSET2 LENGTH
 *   lseek FH OFFSET WHENCE          ping     bye
 *   changes EXPORT SINCE_NS AFTER   sums EXPORT PATH OFFSET LENGTH
 *   hello [NAME [BOOT_ID]]          (after -n: the handshake)
 *
 * and the commands that drive the script:
 *
 *   send REQUEST...   send it and go on; its reply is kept for `wait`
 *   wait [SECONDS]    wait (default -t) for the replies of every `send`
 *                     since the last wait; print one line for each, in
 *                     the order they were sent
 *   repeat N LINE...  run LINE (a request or `send REQUEST`) N times
 *   raw HEX...        send these bytes as they are (no reply awaited)
 *   closed [SECONDS]  wait until the daemon closes the stream: prints
 *                     `closed`, or `open` if it did not within SECONDS
 *   echo WORDS...     print WORDS (a marker for a test reading the
 *                     output as it comes)
 *
 * At the end of the script the stream is closed: replies of `send`s not
 * collected by a `wait` are not printed.
 *
 * Commands for the tests of what the network can do to a daemon:
 *
 *   flood-read FH LENGTH N
 *                     send N READs of LENGTH bytes at offset 0 and never
 *                     read the stream again (the replies pile up on the
 *                     daemon; pings go unanswered); prints `sent N`
 *   slow-read BYTES_PER_S N [SECONDS]
 *                     read the stream again (after flood-read), at most
 *                     BYTES_PER_S, until N replies have come: prints
 *                     `replies N` or, if the stream closed or SECONDS
 *                     (default -t) passed first, `closed K` or `timeout K`
 *   raw-len N [FILL]  send a frame length of N (4 bytes), then FILL zero
 *                     bytes, as far as the daemon takes them
 *   dgram HOST:PORT TYPE NAME URI BOOT_ID [SEQ]
 *                     send one datagram (discovery/datagram.c) of TYPE
 *                     announce, heartbeat or goodbye from peer NAME at
 *                     URI; NAME and URI may hold \xNN escapes
 *   dgram-flood HOST:PORT N HOST
 *                     send N heartbeats, each from a new peer name at
 *                     HOST:PORT2 (PORT2 differing each time)
 *
 * With -D no stream is opened (HOST:PORT NAME BOOT_ID are still given);
 * only `dgram`, `dgram-flood` and `echo` make sense then.  -x NAME:AT
 * (up to 8 times) announces an export NAME grafted at AT in the HELLO,
 * so that the daemon sends requests; -q leaves every request of the
 * daemon but PING and BYE unanswered.
 *
 * Extending: a request is one row of `requests[]` (name, type, the
 * fields its words fill); a driving command is one row of `commands[]`.
 * Add rows, keep the words and outputs of the existing ones as they are.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "datagram.h"
#include "proto.h"

#define MAX_WORDS 32
#define MAX_VARS 256

/* A request sent and not yet answered (or answered, for `wait`). */
struct pending {
	uint64_t id;
	uint8_t type;
	bool async; /* from `send`: printed by `wait` */
	bool done;
	char line[512]; /* its result line, once done */
	char var[64];   /* -> $VAR, or "" */
};

static struct {
	int fd;    /* -1 once closed */
	bool deaf; /* after flood-read: the stream is not read */
	bool mute; /* -q: only PING and BYE are answered */
	struct proto_export own[8]; /* -x: exports we announce */
	uint32_t nown;
	unsigned long replies; /* reply frames read, any id */
	int udp;               /* for dgram, made on first use */
	bool verbose;
	double timeout;
	const char *uri;
	const char *name; /* the command line's, for HELLO */
	uint64_t boot_id;
	uint64_t next_id;
	struct pending *pend;
	size_t npend, cap;
	size_t waited; /* async requests before this were printed */
	uint8_t *in;   /* bytes read from the stream */
	size_t inlen, incap;
	struct proto_export *exports; /* from the daemon's HELLO; owned */
	uint32_t nexports;
	char **exnames;
	struct {
		char name[64];
		uint64_t value;
	} vars[MAX_VARS];
	unsigned nvars;
	unsigned lineno;
} h = { .fd = -1, .udp = -1, .timeout = 10, .next_id = 1 };

/* Say what is wrong with the command line or the script, and exit 2. */
static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "hostile: ");
	if (h.lineno > 0)
		fprintf(stderr, "line %u: ", h.lineno);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

/* Monotonic seconds. */
static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The name of an errno value, "ok" for 0. */
static const char *
errname(int e)
{
	const char *n;

	if (e == 0)
		return "ok";
	n = strerrorname_np(e);
	return n != NULL ? n : "E?";
}

/* Write all of buf to the stream; false once it is closed. */
static bool
send_bytes(const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0 && h.fd >= 0) {
		n = send(h.fd, p, len, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			close(h.fd);
			h.fd = -1;
			return false;
		}
		p += n;
		len -= (size_t)n;
	}
	return h.fd >= 0;
}

/* Encode and send a frame of ours. */
static bool
send_req(const struct proto_req *r)
{
	struct proto_buf pb = { 0 };
	bool ok;

	if (proto_encode_req(r, &pb) != 0)
		die("%s: a field is out of the protocol's limits",
		    proto_type_name(r->type));
	ok = send_bytes(pb.p, pb.len);
	proto_buf_free(&pb);
	return ok;
}

/* Answer a request of the daemon. */
static void
answer(const struct proto_req *q)
{
	struct proto_rep rep = { .type = q->type, .id = q->id };
	struct proto_buf pb = { 0 };

	if (q->type != PROTO_PING && q->type != PROTO_BYE) {
		if (h.mute)
			return;
		rep.error = -ENOSYS;
	}
	if (proto_encode_rep(&rep, &pb) == 0)
		send_bytes(pb.p, pb.len);
	proto_buf_free(&pb);
	if (q->type == PROTO_BYE && h.fd >= 0) {
		close(h.fd);
		h.fd = -1;
	}
}

/* Find a variable's slot, making it when make is set. */
static uint64_t *
var_slot(const char *name, bool make)
{
	for (unsigned i = 0; i < h.nvars; i++)
		if (strcmp(h.vars[i].name, name) == 0)
			return &h.vars[i].value;
	if (!make)
		return NULL;
	if (h.nvars == MAX_VARS || strlen(name) >= sizeof h.vars[0].name)
		die("too many or too long variables");
	snprintf(h.vars[h.nvars].name, sizeof h.vars[0].name, "%s", name);
	return &h.vars[h.nvars++].value;
}

/* Append printf output to a result line. */
static void __attribute__((format(printf, 3, 4)))
add(char *line, size_t len, const char *fmt, ...)
{
	size_t n = strlen(line);
	va_list ap;

	if (n + 1 >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(line + n, len - n, fmt, ap);
	va_end(ap);
}

/* Append a blob, C-escaped. */
static void
add_blob(char *line, size_t len, const void *data, size_t n)
{
	const unsigned char *p = data;

	add(line, len, " data=\"");
	for (size_t i = 0; i < n && i < 64; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\')
			add(line, len, "%c", p[i]);
		else
			add(line, len, "\\x%02x", p[i]);
	}
	add(line, len, n > 64 ? "\"..." : "\"");
}

/* A reply came: record its result line. */
static void
on_reply(const struct proto_rep *rep)
{
	struct pending *p = NULL;

	for (size_t i = 0; i < h.npend; i++)
		if (!h.pend[i].done && h.pend[i].id == rep->id) {
			p = &h.pend[i];
			break;
		}
	if (p == NULL)
		return; /* late, after a timeout: dropped */
	p->done = true;
	snprintf(p->line, sizeof p->line, "%s", errname(-rep->error));
	if (rep->error == 0 && p->var[0] != '\0')
		*var_slot(p->var, true) = rep->fh;
	if (!h.verbose || rep->error != 0)
		return;
	if (rep->fh != 0)
		add(p->line, sizeof p->line, " fh=%#llx",
		    (unsigned long long)rep->fh);
	if (rep->value != 0)
		add(p->line, sizeof p->line, " value=%llu",
		    (unsigned long long)rep->value);
	if (rep->attr.mode != 0)
		add(p->line, sizeof p->line, " mode=%o size=%llu uid=%u gid=%u",
		    rep->attr.mode, (unsigned long long)rep->attr.size,
		    rep->attr.uid, rep->attr.gid);
	if (rep->data != NULL)
		add_blob(p->line, sizeof p->line, rep->data, rep->datalen);
	if (rep->type == PROTO_READDIR) {
		add(p->line, sizeof p->line, " ents=%zu", rep->nents);
		for (size_t i = 0; i < rep->nents; i++)
			add(p->line, sizeof p->line, " %s", rep->ents[i].name);
	}
}

/* Close the stream with a reason on standard error. */
static void
lost(const char *why)
{
	if (h.fd >= 0) {
		if (h.verbose)
			fprintf(stderr, "hostile: stream: %s\n", why);
		close(h.fd);
		h.fd = -1;
	}
}

/* Read what the stream has; false if nothing came (or it closed). */
static bool
fill(void)
{
	ssize_t n;

	if (h.incap - h.inlen < 65536) {
		h.incap = h.incap * 2 + 65536;
		if ((h.in = realloc(h.in, h.incap)) == NULL)
			die("out of memory");
	}
	n = recv(h.fd, h.in + h.inlen, h.incap - h.inlen, 0);
	if (n == 0)
		lost("closed by the daemon");
	else if (n < 0 && errno != EINTR && errno != EAGAIN)
		lost(strerror(errno));
	if (n <= 0)
		return false;
	h.inlen += (size_t)n;
	return true;
}

/* Decode and handle every whole frame read so far. */
static void
process_frames(void)
{
	size_t off = 0;

	while (h.fd >= 0) {
		long flen = proto_frame_len(h.in + off, h.inlen - off);

		if (flen < 0) {
			lost("bad frame length");
			break;
		}
		if (flen == 0 || (size_t)flen > h.inlen - off)
			break;
		if (proto_frame_is_reply(h.in + off)) {
			struct proto_rep rep;

			h.replies++;
			if (proto_decode_rep(h.in + off, (size_t)flen, &rep)) {
				lost("undecodable reply");
				break;
			}
			on_reply(&rep);
			proto_rep_clear(&rep);
		} else {
			struct proto_req q;

			if (proto_decode_req(h.in + off, (size_t)flen, &q)) {
				lost("undecodable request");
				break;
			}
			answer(&q);
			proto_req_clear(&q);
		}
		off += (size_t)flen;
	}
	memmove(h.in, h.in + off, h.inlen - off);
	h.inlen -= off;
}

/*
 * Wait for the stream (and standard input, if watch_stdin) until
 * deadline; handle what arrives.  Returns true if standard input is
 * readable.
 */
static bool
poll_once(double deadline, bool watch_stdin)
{
	struct pollfd pfd[2] = {
		{ .fd = h.deaf ? -1 : h.fd, .events = POLLIN },
		{ .fd = 0, .events = POLLIN },
	};
	double left = deadline - now();
	int ms = left <= 0 ? 0 : left > 3600 ? 3600000 : (int)(left * 1000) + 1;

	if (poll(pfd, watch_stdin ? 2 : 1, ms) == -1 && errno != EINTR)
		die("poll: %s", strerror(errno));
	if (h.fd >= 0 && !h.deaf &&
	    (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) && fill())
		process_frames();
	return watch_stdin && (pfd[1].revents & (POLLIN | POLLHUP));
}

/* Wait until request p is answered, the stream closes or deadline. */
static void
await(struct pending *p, double deadline)
{
	size_t i = (size_t)(p - h.pend);

	while (!h.pend[i].done && h.fd >= 0 && now() < deadline)
		poll_once(deadline, false);
	p = &h.pend[i];
	if (!p->done)
		snprintf(p->line, sizeof p->line, "%s",
		    h.fd < 0 ? "closed" : "timeout");
}

/* An export id from a number or a name the daemon announced. */
static uint32_t
parse_export(const char *w)
{
	char *end;
	unsigned long v = strtoul(w, &end, 0);

	if (*w != '\0' && *end == '\0')
		return (uint32_t)v;
	for (uint32_t i = 0; i < h.nexports; i++)
		if (strcmp(h.exnames[i], w) == 0)
			return h.exports[i].id;
	die("no export named '%s'", w);
}

/* A number, or the value of a $variable. */
static uint64_t
parse_num(const char *w, int base)
{
	char *end;
	uint64_t v;

	if (w[0] == '$') {
		uint64_t *slot = var_slot(w + 1, false);

		if (slot == NULL)
			die("unset variable %s", w);
		return *slot;
	}
	errno = 0;
	v = strtoull(w, &end, base);
	if (*w == '\0' || *end != '\0' || errno != 0)
		die("'%s' is not a number", w);
	return v;
}

/* Open flags: a number or names joined by '|'. */
static uint32_t
parse_flags(const char *w)
{
	static const struct {
		const char *name;
		uint32_t flag;
	} names[] = {
		{ "rdonly", O_RDONLY },
		{ "wronly", O_WRONLY },
		{ "rdwr", O_RDWR },
		{ "creat", O_CREAT },
		{ "excl", O_EXCL },
		{ "trunc", O_TRUNC },
		{ "append", O_APPEND },
		{ "nonblock", O_NONBLOCK },
		{ "directory", O_DIRECTORY },
		{ "sync", O_SYNC },
		{ "dsync", O_DSYNC },
		{ "noatime", O_NOATIME },
		{ "nofollow", O_NOFOLLOW },
	};
	char buf[256], *tok, *save;
	uint32_t flags = 0;

	if (w[0] >= '0' && w[0] <= '9')
		return (uint32_t)parse_num(w, 0);
	snprintf(buf, sizeof buf, "%s", w);
	for (tok = strtok_r(buf, "|", &save); tok != NULL;
	     tok = strtok_r(NULL, "|", &save)) {
		size_t i;

		if (strncasecmp(tok, "O_", 2) == 0)
			tok += 2;
		for (i = 0; i < sizeof names / sizeof names[0]; i++)
			if (strcasecmp(tok, names[i].name) == 0)
				break;
		if (i == sizeof names / sizeof names[0])
			die("unknown open flag '%s'", tok);
		flags |= names[i].flag;
	}
	return flags;
}

/* A path word: "." is the export root. */
static const char *
parse_path(const char *w)
{
	return strcmp(w, ".") == 0 ? "" : w;
}

/* A device number: N or MAJOR:MINOR. */
static uint64_t
parse_rdev(const char *w)
{
	const char *colon = strchr(w, ':');
	char major[32];

	if (colon == NULL)
		return parse_num(w, 0);
	snprintf(major, sizeof major, "%.*s", (int)(colon - w), w);
	return makedev(parse_num(major, 0), parse_num(colon + 1, 0));
}

/* key=value options of stat and setattr. */
static void
parse_opts(struct proto_req *r, char **w, int n)
{
	for (int i = 0; i < n; i++) {
		char *eq = strchr(w[i], '=');
		const char *v = eq ? eq + 1 : "";

		if (eq == NULL)
			die("'%s' is not KEY=VALUE", w[i]);
		*eq = '\0';
		if (strcmp(w[i], "fh") == 0)
			r->fh = parse_num(v, 0);
		else if (strcmp(w[i], "mode") == 0) {
			r->mode = (uint32_t)parse_num(v, 8);
			r->valid |= PROTO_SET_MODE;
		} else if (strcmp(w[i], "uid") == 0) {
			r->uid = (uint32_t)parse_num(v, 0);
			r->valid |= PROTO_SET_UID;
		} else if (strcmp(w[i], "gid") == 0) {
			r->gid = (uint32_t)parse_num(v, 0);
			r->valid |= PROTO_SET_GID;
		} else if (strcmp(w[i], "size") == 0) {
			r->offset = parse_num(v, 0);
			r->valid |= PROTO_SET_SIZE;
		} else if (strcmp(w[i], "atime") == 0) {
			r->atime.sec = (int64_t)parse_num(v, 0);
			r->valid |= PROTO_SET_ATIME;
		} else if (strcmp(w[i], "mtime") == 0) {
			r->mtime.sec = (int64_t)parse_num(v, 0);
			r->valid |= PROTO_SET_MTIME;
		} else
			die("unknown option '%s'", w[i]);
	}
}

/*
 * The words of each request, in order: E export, P path, N name,
 * e export2, p path2, n name2, F fh, G fh2, o offset, O offset2,
 * l length, M mode (octal), f flags, d rdev, D data (text), w whence or
 * mode number into flags, k key=value options (the rest).  Lower-case
 * words after '[' are optional.
 */
static const struct request {
	const char *name;
	uint8_t type;
	const char *words;
} requests[] = {
	{ "stat", PROTO_STAT, "EPk" },
	{ "setattr", PROTO_SETATTR, "EPk" },
	{ "readlink", PROTO_READLINK, "EP" },
	{ "mknod", PROTO_MKNOD, "EPNMd" },
	{ "mkdir", PROTO_MKDIR, "EPNM" },
	{ "symlink", PROTO_SYMLINK, "EPND" },
	{ "link", PROTO_LINK, "EPepn" },
	{ "unlink", PROTO_UNLINK, "EPN" },
	{ "rmdir", PROTO_RMDIR, "EPN" },
	{ "rename", PROTO_RENAME, "EPNepn[f" },
	{ "open", PROTO_OPEN, "EPf" },
	{ "create", PROTO_CREATE, "EPNMf" },
	{ "read", PROTO_READ, "Fol" },
	{ "write", PROTO_WRITE, "FoD" },
	{ "release", PROTO_RELEASE, "F" },
	{ "fsync", PROTO_FSYNC, "F[w" },
	{ "fsyncdir", PROTO_FSYNCDIR, "EP[w" },
	{ "readdir", PROTO_READDIR, "EP" },
	{ "statfs", PROTO_STATFS, "EP" },
	{ "access", PROTO_ACCESS, "EPw" },
	{ "fallocate", PROTO_FALLOCATE, "Fol[w" },
	{ "setxattr", PROTO_SETXATTR, "EPND[w" },
	{ "getxattr", PROTO_GETXATTR, "EPN[l" },
	{ "listxattr", PROTO_LISTXATTR, "EP[l" },
	{ "removexattr", PROTO_REMOVEXATTR, "EPN" },
	{ "copy", PROTO_COPY_RANGE, "FoGOl" },
	{ "lseek", PROTO_LSEEK, "Fow" },
	{ "changes", PROTO_CHANGES, "EoO" },
	{ "sums", PROTO_SUMS, "EPol" },
	{ "ping", PROTO_PING, "" },
	{ "bye", PROTO_BYE, "" },
};

/* Fill a request from its words; the syntax is the table's. */
static const struct request *
build(struct proto_req *r, char **w, int n)
{
	const struct request *rq = NULL;
	const char *spec;
	bool optional = false;
	int i = 1;

	for (size_t k = 0; k < sizeof requests / sizeof requests[0]; k++)
		if (strcmp(w[0], requests[k].name) == 0)
			rq = &requests[k];
	if (rq == NULL)
		die("unknown command '%s'", w[0]);
	memset(r, 0, sizeof *r);
	r->type = rq->type;
	r->path = r->path2 = "";
	for (spec = rq->words; *spec != '\0'; spec++) {
		if (*spec == '[') {
			optional = true;
			continue;
		}
		if (*spec == 'k') {
			parse_opts(r, w + i, n - i);
			i = n;
			break;
		}
		if (i >= n) {
			if (optional)
				break;
			die("%s: too few words", rq->name);
		}
		switch (*spec) {
		case 'E':
			r->export_id = parse_export(w[i]);
			break;
		case 'P':
			r->path = parse_path(w[i]);
			break;
		case 'N':
			r->name = w[i];
			break;
		case 'e':
			r->export2 = parse_export(w[i]);
			break;
		case 'p':
			r->path2 = parse_path(w[i]);
			break;
		case 'n':
			r->name2 = w[i];
			break;
		case 'F':
			r->fh = parse_num(w[i], 0);
			break;
		case 'G':
			r->fh2 = parse_num(w[i], 0);
			break;
		case 'o':
			r->offset = parse_num(w[i], 0);
			break;
		case 'O':
			r->offset2 = parse_num(w[i], 0);
			break;
		case 'l':
			r->length = parse_num(w[i], 0);
			break;
		case 'M':
			r->mode = (uint32_t)parse_num(w[i], 8);
			break;
		case 'f':
			r->flags = parse_flags(w[i]);
			break;
		case 'w':
			r->flags = (uint32_t)parse_num(w[i], 0);
			break;
		case 'd':
			r->rdev = parse_rdev(w[i]);
			break;
		case 'D':
			r->data = w[i];
			r->datalen = strlen(w[i]);
			break;
		}
		i++;
	}
	if (i < n)
		die("%s: too many words", rq->name);
	return rq;
}

/* Record a request about to be sent; returns its slot index. */
static size_t
pending_add(uint8_t type, bool async, const char *var)
{
	struct pending *p;

	if (h.npend == h.cap) {
		h.cap = h.cap ? h.cap * 2 : 64;
		if ((h.pend = realloc(h.pend, h.cap * sizeof *h.pend)) == NULL)
			die("out of memory");
	}
	p = &h.pend[h.npend];
	memset(p, 0, sizeof *p);
	p->id = h.next_id++;
	p->type = type;
	p->async = async;
	snprintf(p->var, sizeof p->var, "%s", var ? var : "");
	return h.npend++;
}

/* Print a line and flush it at once (a test may be reading). */
static void
out(const char *line)
{
	printf("%s\n", line);
	fflush(stdout);
}

/* Send one request; wait for and print its reply unless async. */
static void
request(char **w, int n, bool async)
{
	const char *var = NULL;
	struct proto_req r;
	size_t i;

	if (n >= 2 && strcmp(w[n - 2], "->") == 0) {
		var = w[n - 1][0] == '$' ? w[n - 1] + 1 : w[n - 1];
		n -= 2;
	}
	build(&r, w, n);
	i = pending_add(r.type, async, var);
	r.id = h.pend[i].id;
	if (h.fd < 0 || !send_req(&r)) {
		h.pend[i].done = true;
		snprintf(h.pend[i].line, sizeof h.pend[i].line, "closed");
	}
	if (async)
		return;
	await(&h.pend[i], now() + h.timeout);
	h.pend[i].done = true;
	out(h.pend[i].line);
}

/* The handshake: our HELLO, then the daemon's reply. */
static int
handshake(const char *name, uint64_t boot_id)
{
	struct proto_req r = { .type = PROTO_HELLO };
	struct pollfd pfd = { .fd = h.fd, .events = POLLIN };
	double deadline = now() + h.timeout;
	size_t off = 0;

	r.id = h.next_id++;
	r.hello = (struct proto_hello){
		.magic = PROTO_MAGIC,
		.version = PROTO_VERSION,
		.name = name,
		.uri = h.uri,
		.boot_id = boot_id,
		.nexports = h.nown,
		.exports = h.own,
	};
	if (!send_req(&r))
		return ECONNRESET;
	/* Nothing but the HELLO reply may come first. */
	while (h.fd >= 0 && now() < deadline) {
		struct proto_rep rep;
		long flen;
		int e;

		flen = proto_frame_len(h.in, h.inlen);
		if (flen > 0 && (size_t)flen <= h.inlen) {
			if (proto_decode_rep(h.in, (size_t)flen, &rep) != 0 ||
			    rep.type != PROTO_HELLO)
				return EPROTO;
			e = -rep.error;
			if (e == 0) {
				h.nexports = rep.hello.nexports;
				h.exports = rep.hello.exports;
				h.exnames = calloc(h.nexports + 1,
				    sizeof *h.exnames);
				for (uint32_t i = 0; i < h.nexports; i++) {
					h.exnames[i] = strdup(
					    rep.hello.exports[i].name);
					h.exports[i].name = h.exports[i]
								.at = NULL;
				}
				rep.hello.exports = NULL;
			}
			off = (size_t)flen;
			memmove(h.in, h.in + off, h.inlen - off);
			h.inlen -= off;
			proto_rep_clear(&rep);
			if (e == 0)
				process_frames();
			return e;
		}
		if (flen < 0)
			return EPROTO;
		/* Read without handling frames: the reply is ours to take. */
		if (poll(&pfd, 1, 100) > 0)
			fill();
	}
	return h.fd < 0 ? ECONNRESET : ETIMEDOUT;
}

/* Send the bytes of hex words as they are. */
static void
raw(char **w, int n)
{
	uint8_t buf[4096];
	size_t len = 0;

	for (int i = 1; i < n; i++) {
		for (const char *p = w[i]; p[0] != '\0'; p += 2) {
			unsigned v;

			if (p[1] == '\0' || sscanf(p, "%2x", &v) != 1 ||
			    len == sizeof buf)
				die("raw: bad hex '%s'", w[i]);
			buf[len++] = (uint8_t)v;
		}
	}
	send_bytes(buf, len);
}

/* wait [SECONDS]: print the replies of the sends since the last wait. */
static void
cmd_wait(char **w, int n)
{
	double deadline = now() + (n > 1 ? strtod(w[1], NULL) : h.timeout);

	for (size_t i = h.waited; i < h.npend; i++) {
		if (!h.pend[i].async)
			continue;
		await(&h.pend[i], deadline);
		h.pend[i].done = true;
		out(h.pend[i].line);
	}
	h.waited = h.npend;
}

static void run_line(char **w, int n);

/* repeat N LINE...: run LINE N times. */
static void
cmd_repeat(char **w, int n)
{
	unsigned long k;

	if (n < 3)
		die("repeat N LINE...");
	k = (unsigned long)parse_num(w[1], 10);
	for (unsigned long i = 0; i < k; i++) {
		char *copy[MAX_WORDS], buf[MAX_WORDS][256];

		/* The words are parsed in place: give each round a copy. */
		for (int j = 2; j < n; j++) {
			snprintf(buf[j - 2], sizeof buf[0], "%s", w[j]);
			copy[j - 2] = buf[j - 2];
		}
		run_line(copy, n - 2);
	}
}

/* closed [SECONDS]: wait for the daemon to close the stream. */
static void
cmd_closed(char **w, int n)
{
	double deadline = now() + (n > 1 ? strtod(w[1], NULL) : h.timeout);

	while (h.fd >= 0 && now() < deadline)
		poll_once(deadline, false);
	out(h.fd < 0 ? "closed" : "open");
}

/* echo WORDS...: print them. */
static void
cmd_echo(char **w, int n)
{
	char line[1024] = "";

	for (int i = 1; i < n; i++)
		add(line, sizeof line, "%s%s", i > 1 ? " " : "", w[i]);
	out(line);
}

/* send REQUEST...: send it without waiting. */
static void
cmd_send(char **w, int n)
{
	if (n < 2)
		die("send REQUEST...");
	request(w + 1, n - 1, true);
}

/* raw HEX...: send the bytes. */
static void
cmd_raw(char **w, int n)
{
	raw(w, n);
}

/* hello [NAME [BOOT_ID]]: the handshake, after -n. */
static void
cmd_hello(char **w, int n)
{
	int e = handshake(n > 1 ? w[1] : h.name,
	    n > 2 ? parse_num(w[2], 0) : h.boot_id);

	out(e == 0 ? "ok" : h.fd < 0 ? "closed" : errname(e));
}

/* flood-read FH LENGTH N: READs whose replies are never read. */
static void
cmd_flood_read(char **w, int n)
{
	struct proto_req r = { .type = PROTO_READ, .path = "", .path2 = "" };
	unsigned long k, i;
	char line[64];

	if (n != 4)
		die("flood-read FH LENGTH N");
	r.fh = parse_num(w[1], 0);
	r.length = parse_num(w[2], 0);
	k = (unsigned long)parse_num(w[3], 0);
	h.deaf = true;
	for (i = 0; i < k && h.fd >= 0; i++) {
		r.id = h.next_id++;
		send_req(&r);
	}
	snprintf(line, sizeof line, "sent %lu", i);
	out(line);
}

/* slow-read BYTES_PER_S N [SECONDS]: read on, slowly, until N replies. */
static void
cmd_slow_read(char **w, int n)
{
	double rate, t0 = now(), deadline;
	unsigned long want, base = h.replies;
	size_t taken = 0;
	char line[64];

	if (n < 3 || n > 4)
		die("slow-read BYTES_PER_S N [SECONDS]");
	rate = (double)parse_num(w[1], 0);
	want = (unsigned long)parse_num(w[2], 0);
	deadline = t0 + (n > 3 ? strtod(w[3], NULL) : h.timeout);
	h.deaf = false;
	while (h.fd >= 0 && h.replies - base < want && now() < deadline) {
		size_t allow = (size_t)(rate * (now() - t0)) - taken;
		ssize_t got;

		if (allow > 65536)
			allow = 65536;
		if (allow == 0 || h.incap - h.inlen < allow) {
			if (h.incap - h.inlen < 65536) {
				h.incap = h.incap * 2 + 65536;
				if ((h.in = realloc(h.in, h.incap)) == NULL)
					die("out of memory");
			}
			if (allow == 0) {
				nanosleep(&(struct timespec){ 0, 5000000 },
				    NULL);
				continue;
			}
		}
		got = recv(h.fd, h.in + h.inlen, allow, MSG_DONTWAIT);
		if (got == 0) {
			lost("closed by the daemon");
			break;
		}
		if (got < 0) {
			if (errno != EAGAIN && errno != EINTR) {
				lost(strerror(errno));
				break;
			}
			poll(&(struct pollfd){ .fd = h.fd, .events = POLLIN },
			    1, 10);
			continue;
		}
		taken += (size_t)got;
		h.inlen += (size_t)got;
		process_frames();
	}
	snprintf(line, sizeof line, "%s %lu",
	    h.replies - base >= want ? "replies"
		: h.fd < 0           ? "closed"
				     : "timeout",
	    h.replies - base);
	out(line);
}

/* raw-len N [FILL]: a frame length, then FILL zero bytes. */
static void
cmd_raw_len(char **w, int n)
{
	static const uint8_t zeros[65536];
	uint64_t len, fill;
	uint8_t hdr[4];

	if (n < 2 || n > 3)
		die("raw-len N [FILL]");
	len = parse_num(w[1], 0);
	fill = n > 2 ? parse_num(w[2], 0) : 0;
	for (int i = 0; i < 4; i++)
		hdr[i] = (uint8_t)(len >> (8 * i));
	if (!send_bytes(hdr, sizeof hdr))
		return;
	while (fill > 0 && h.fd >= 0) {
		size_t chunk = fill < sizeof zeros ? (size_t)fill
						   : sizeof zeros;

		if (!send_bytes(zeros, chunk))
			break;
		fill -= chunk;
	}
}

/* Copy w into buf, turning \xNN escapes into bytes. */
static void
unescape(char *buf, size_t len, const char *w)
{
	size_t o = 0;
	unsigned v;

	for (; *w != '\0' && o + 1 < len; w++) {
		if (w[0] == '\\' && w[1] == 'x' &&
		    sscanf(w + 2, "%2x", &v) == 1 && v != 0) {
			buf[o++] = (char)v;
			w += 3;
		} else
			buf[o++] = *w;
	}
	buf[o] = '\0';
}

/* Send one encoded datagram to HOST:PORT. */
static void
dgram_send(const char *hostport, const struct dgram *d)
{
	char host[256], *colon;
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM,
		.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV },
			*ai;
	uint8_t buf[DGRAM_MAX];
	size_t len;
	int rc;

	if ((rc = dgram_encode(d, buf, sizeof buf, &len)) != 0)
		die("dgram: cannot encode: %s", strerror(-rc));
	snprintf(host, sizeof host, "%s", hostport);
	if ((colon = strrchr(host, ':')) == NULL)
		die("'%s' is not HOST:PORT", hostport);
	*colon = '\0';
	if ((rc = getaddrinfo(host, colon + 1, &hints, &ai)) != 0)
		die("%s: %s", hostport, gai_strerror(rc));
	if (h.udp == -1 &&
	    (h.udp = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		die("socket: %s", strerror(errno));
	if (sendto(h.udp, buf, len, 0, ai->ai_addr, ai->ai_addrlen) == -1)
		fprintf(stderr, "hostile: dgram to %s: %s\n", hostport,
		    strerror(errno));
	freeaddrinfo(ai);
}

/* The type of a datagram by name. */
static uint8_t
dgram_type_of(const char *w)
{
	if (strcmp(w, "announce") == 0)
		return DGRAM_ANNOUNCE;
	if (strcmp(w, "heartbeat") == 0)
		return DGRAM_HEARTBEAT;
	if (strcmp(w, "goodbye") == 0)
		return DGRAM_GOODBYE;
	die("unknown datagram type '%s'", w);
}

/* dgram HOST:PORT TYPE NAME URI BOOT_ID [SEQ]: one datagram. */
static void
cmd_dgram(char **w, int n)
{
	char name[512], uri[512];
	struct dgram d = { 0 };

	if (n < 6 || n > 7)
		die("dgram HOST:PORT TYPE NAME URI BOOT_ID [SEQ]");
	unescape(name, sizeof name, w[3]);
	unescape(uri, sizeof uri, w[4]);
	d.type = dgram_type_of(w[2]);
	d.name = name;
	d.uri = uri;
	d.boot_id = parse_num(w[5], 0);
	d.seq = n > 6 ? parse_num(w[6], 0) : 0;
	d.uptime_ms = 1;
	dgram_send(w[1], &d);
}

/* dgram-flood HOST:PORT N HOST: heartbeats under new names. */
static void
cmd_dgram_flood(char **w, int n)
{
	char name[64], uri[300];
	struct dgram d = { .type = DGRAM_HEARTBEAT, .uptime_ms = 1 };
	unsigned long k;

	if (n != 4)
		die("dgram-flood HOST:PORT N HOST");
	k = (unsigned long)parse_num(w[2], 0);
	for (unsigned long i = 0; i < k; i++) {
		snprintf(name, sizeof name, "flood-%ld-%lu", (long)getpid(), i);
		snprintf(uri, sizeof uri, "%s:%lu", w[3], 20000 + i % 40000);
		d.name = name;
		d.uri = uri;
		d.boot_id = 0x1000 + i;
		dgram_send(w[1], &d);
		/* Paced, so that the daemon's socket buffer takes them all. */
		if (i % 16 == 15)
			nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
}

/* The commands that drive the script rather than send one request. */
static const struct command {
	const char *name;
	void (*fn)(char **, int);
} commands[] = {
	{ "send", cmd_send },
	{ "wait", cmd_wait },
	{ "repeat", cmd_repeat },
	{ "raw", cmd_raw },
	{ "closed", cmd_closed },
	{ "echo", cmd_echo },
	{ "hello", cmd_hello },
	{ "flood-read", cmd_flood_read },
	{ "slow-read", cmd_slow_read },
	{ "raw-len", cmd_raw_len },
	{ "dgram", cmd_dgram },
	{ "dgram-flood", cmd_dgram_flood },
};

/* Run one script line, already split into words. */
static void
run_line(char **w, int n)
{
	for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
		if (strcmp(w[0], commands[k].name) == 0) {
			commands[k].fn(w, n);
			return;
		}
	request(w, n, false);
}

/* Split a line into words, dropping a comment. */
static int
split(char *line, char **w)
{
	int n = 0;
	char *save, *tok;

	if ((tok = strchr(line, '#')) != NULL)
		*tok = '\0';
	for (tok = strtok_r(line, " \t\r\n", &save); tok != NULL;
	     tok = strtok_r(NULL, " \t\r\n", &save)) {
		if (n == MAX_WORDS)
			die("more than %d words", MAX_WORDS);
		w[n++] = tok;
	}
	return n;
}

/* Read the script; serve the stream while standard input is quiet. */
static void
run_script(void)
{
	char buf[8192];
	size_t len = 0;
	bool eof = false;

	while (!eof || len > 0) {
		char *nl = memchr(buf, '\n', len);
		char *w[MAX_WORDS], line[sizeof buf + 1];
		size_t consumed;
		ssize_t n;
		int nw;

		if (nl == NULL && !eof) {
			if (len == sizeof buf)
				die("line too long");
			if (h.fd >= 0 && !poll_once(now() + 3600, true))
				continue;
			n = read(0, buf + len, sizeof buf - len);
			if (n == -1 && errno == EINTR)
				continue;
			if (n <= 0)
				eof = true;
			else
				len += (size_t)n;
			continue;
		}
		if (nl == NULL)
			nl = buf + len; /* a last line without \n */
		memcpy(line, buf, (size_t)(nl - buf));
		line[nl - buf] = '\0';
		consumed = nl < buf + len ? (size_t)(nl - buf) + 1 : len;
		memmove(buf, buf + consumed, len - consumed);
		len -= consumed;
		h.lineno++;
		if ((nw = split(line, w)) > 0)
			run_line(w, nw);
	}
}

/* Connect to HOST:PORT ([ADDR]:PORT for IPv6). */
static int
dial(const char *hostport)
{
	char host[256], *colon;
	const char *port;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV },
			*ai;
	int fd, one = 1, rc;

	snprintf(host, sizeof host, "%s", hostport);
	if ((colon = strrchr(host, ':')) == NULL)
		die("'%s' is not HOST:PORT", hostport);
	*colon = '\0';
	port = colon + 1;
	if (host[0] == '[' && colon[-1] == ']') {
		colon[-1] = '\0';
		memmove(host, host + 1, strlen(host));
	}
	if ((rc = getaddrinfo(host, port, &hints, &ai)) != 0)
		die("%s: %s", hostport, gai_strerror(rc));
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1 || connect(fd, ai->ai_addr, ai->ai_addrlen) == -1) {
		fprintf(stderr, "hostile: connect %s: %s\n", hostport,
		    strerror(errno));
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

/* The URI to announce: our end of the socket, port 9. */
static char *
local_uri(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	char addr[INET6_ADDRSTRLEN], *uri;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1 ||
	    getnameinfo((struct sockaddr *)&ss, len, addr, sizeof addr, NULL, 0,
		NI_NUMERICHOST) != 0)
		snprintf(addr, sizeof addr, "127.0.0.1");
	if (asprintf(&uri, ss.ss_family == AF_INET6 ? "[%s]:9" : "%s:9",
		addr) == -1)
		die("out of memory");
	return uri;
}

int
main(int argc, char **argv)
{
	bool handshake_first = true, dial_first = true;
	int c, e;

	while ((c = getopt(argc, argv, "vnDqt:u:x:")) != -1) {
		switch (c) {
		case 'q':
			h.mute = true;
			break;
		case 'x': {
			char *colon = strchr(optarg, ':');

			if (colon == NULL || h.nown == 8)
				die("-x NAME:AT, at most 8 times");
			*colon = '\0';
			h.own[h.nown] = (struct proto_export){ .id = h.nown,
				.name = optarg,
				.at = colon + 1 };
			h.nown++;
			break;
		}
		case 'v':
			h.verbose = true;
			break;
		case 'n':
			handshake_first = false;
			break;
		case 'D':
			dial_first = handshake_first = false;
			break;
		case 't':
			h.timeout = strtod(optarg, NULL);
			break;
		case 'u':
			h.uri = optarg;
			break;
		default:
			die("usage: hostile [-v] [-n] [-D] [-q] [-t SECONDS] "
			    "[-u URI] [-x NAME:AT] HOST:PORT NAME BOOT_ID "
			    "< SCRIPT");
		}
	}
	if (argc - optind != 3 || h.timeout <= 0)
		die("usage: hostile [-v] [-n] [-D] [-q] [-t SECONDS] "
		    "[-u URI] [-x NAME:AT] HOST:PORT NAME BOOT_ID < SCRIPT");
	if (dial_first && (h.fd = dial(argv[optind])) == -1)
		return 1;
	if (h.uri == NULL && h.fd >= 0)
		h.uri = local_uri(h.fd);
	h.name = argv[optind + 1];
	h.boot_id = parse_num(argv[optind + 2], 0);
	if (handshake_first && (e = handshake(h.name, h.boot_id)) != 0) {
		fprintf(stderr, "hostile: handshake with %s failed: %s\n",
		    argv[optind], errname(e));
		return 1;
	}
	run_script();
	if (h.fd >= 0)
		close(h.fd);
	return 0;
}
