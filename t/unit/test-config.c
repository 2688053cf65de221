/*
 * test-config.c - unit test of libpufsconfig (daemon/config*.c), which
 * it links alone: defaults, every key with good values and the exact
 * message of each kind of bad one, the value parsers, the precedence of
 * file, environment and -o, -e, config_validate() and pufs.ini.example.
 *
 * Temporary files and directories live under one mkdtemp() directory,
 * removed at the end; nothing else on the machine is touched.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "tap.h"

static char tmpdir[] = "/tmp/pufs-test-config-XXXXXX";
static int nfiles;

/* Write text to a new file under tmpdir; return its path (static). */
static const char *
write_ini(const char *text)
{
	static char path[PATH_MAX];
	FILE *fp;
	int fd;

	snprintf(path, sizeof path, "%s/f%d-XXXXXX", tmpdir, nfiles++);
	if ((fd = mkstemp(path)) == -1 || (fp = fdopen(fd, "w")) == NULL)
		fatal("mkstemp %s", path);
	fputs(text, fp);
	fclose(fp);
	return path;
}

/* Load text as a file into a fresh config; err gets the message. */
static int
load_text(struct config *cfg, const char *text, char *err, const char **path)
{
	const char *p = write_ini(text);

	if (path != NULL)
		*path = p;
	config_init(cfg);
	err[0] = '\0';
	return config_load_file(cfg, p, err, CONFIG_ERRLEN);
}

/* Create a directory under tmpdir and return its path (static). */
static const char *
make_dir(const char *name)
{
	static char path[PATH_MAX];

	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	if (mkdir(path, 0755) == -1 && errno != EEXIST)
		fatal("mkdir %s", path);
	return path;
}

/* The built-in defaults, and that they validate. */
static void
test_defaults(void)
{
	struct config cfg;
	char host[256], err[CONFIG_ERRLEN], *sock;

	config_init(&cfg);
	gethostname(host, sizeof host);
	host[sizeof host - 1] = '\0';
	tap_is_str(cfg.name, host, "default name is the host name");
	tap_is_str(cfg.listen, "0.0.0.0:7070", "default listen");
	tap_is_int(cfg.discovery, DISCOVERY_MULTICAST, "default discovery");
	tap_is_str(cfg.multicast_group, "239.255.70.70", "default group");
	tap_is_int(cfg.multicast_port, 7070, "default multicast_port");
	tap_is_str(cfg.multicast_interface, NULL, "default interface unset");
	tap_is_int(cfg.multicast_ttl, 1, "default multicast_ttl");
	tap_is_int((long long)cfg.npeers, 0, "default peers empty");
	tap_is_str(cfg.control_socket, NULL,
	    "control_socket unset before "
	    "validate");
	tap_ok(cfg.op_timeout == 10, "default op_timeout");
	tap_ok(cfg.heartbeat == 1, "default heartbeat");
	tap_ok(cfg.dead_after == 3, "default dead_after");
	tap_is_int(cfg.create_policy, CREATE_LOCAL, "default create_policy");
	tap_is_int(cfg.max_handles, 1024, "default max_handles");
	tap_is_str(cfg.metrics, NULL, "default metrics off");
	tap_ok(cfg.attr_timeout == 5, "default attr_timeout");
	tap_ok(cfg.trap_delay == 0.1, "default trap_delay");
	tap_is_int((long long)cfg.block_size, 128 << 10, "default block_size");
	tap_is_int((long long)cfg.cache_size, 256 << 20, "default cache_size");
	tap_is_int(cfg.readahead_max, 32, "default readahead_max");
	tap_ok(cfg.writeback_interval == 1, "default writeback_interval");
	tap_ok(!cfg.direct_io, "default direct_io");
	tap_is_int((long long)cfg.nexports, 0, "no exports by default");
	tap_is_int((long long)cfg.nclusters, 0, "no clusters by default");
	tap_is_str(cfg.key_file, NULL, "default key_file unset");
	tap_ok(!cfg.encrypt, "default encrypt");
	tap_is_int(cfg.identity, IDENTITY_DAEMON, "default identity");
	tap_ok(cfg.root_squash, "default root_squash");
	tap_ok(cfg.debug_clock_skew == 0, "default clock skew");

	tap_is_int(config_validate(&cfg, err, sizeof err), 0,
	    "defaults validate");
	sock = config_default_control_socket(host);
	tap_is_str(cfg.control_socket, sock, "validate fills control_socket");
	free(sock);
	config_free(&cfg);

	/* The default socket follows a name set after the defaults. */
	config_init(&cfg);
	config_set(&cfg, "peer", "name", "zeta", "test", err, sizeof err);
	config_validate(&cfg, err, sizeof err);
	sock = config_default_control_socket("zeta");
	tap_is_str(cfg.control_socket, sock, "default socket follows name");
	tap_ok(strstr(sock, "zeta") != NULL, "default socket names the peer");
	free(sock);
	config_free(&cfg);
}

/* Whether config_default_control_socket(name) is want, as we are now. */
static int
socket_is(const char *name, const char *want)
{
	char *got = config_default_control_socket(name);
	int same = strcmp(got, want) == 0;

	free(got);
	return same;
}

/* The default control socket for root and for other users. */
static void
test_default_socket(void)
{
	char want[PATH_MAX];
	pid_t pid;
	int status;

	if (geteuid() == 0) {
		tap_ok(socket_is("a", "/run/pufs/a.sock"), "root: /run/pufs");
		/* The rest as another user, in a child. */
		if ((pid = fork()) == -1)
			fatal("fork");
		if (pid == 0) {
			if (setuid(65534) == -1)
				_exit(2);
			setenv("XDG_RUNTIME_DIR", "/run/user/65534", 1);
			if (!socket_is("a", "/run/user/65534/pufs-a.sock"))
				_exit(3);
			unsetenv("XDG_RUNTIME_DIR");
			if (!socket_is("b", "/tmp/pufs-65534/b.sock"))
				_exit(4);
			_exit(0);
		}
		waitpid(pid, &status, 0);
		tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "user: XDG_RUNTIME_DIR, else /tmp/pufs-UID (status %d)",
		    status);
		return;
	}
	setenv("XDG_RUNTIME_DIR", "/run/user/1", 1);
	tap_ok(socket_is("a", "/run/user/1/pufs-a.sock"), "XDG_RUNTIME_DIR");
	unsetenv("XDG_RUNTIME_DIR");
	snprintf(want, sizeof want, "/tmp/pufs-%u/b.sock", (unsigned)getuid());
	tap_ok(socket_is("b", want), "/tmp/pufs-UID");
}

/* A file setting every key to something other than its default. */
static void
test_every_key(void)
{
	struct config cfg;
	char err[CONFIG_ERRLEN];
	int ret;

	ret = load_text(&cfg,
	    "; a comment\n"
	    "# another\n"
	    "[peer]\n"
	    "name = alpha-1.b_c\n"
	    "listen = [::1]:7071       ; inline comment\n"
	    "discovery = unicast\n"
	    "multicast_group = ff15::70\n"
	    "multicast_port = 7072\n"
	    "multicast_interface = eth0\n"
	    "multicast_ttl = 4\n"
	    "peers = 10.0.0.2:7070 host-b:7070, [fe80::1%eth0]:1\n"
	    "        10.0.0.9:9   ; a comment\n"
	    "control_socket = /tmp/x.sock\n"
	    "op_timeout = 2.5\n"
	    "heartbeat = 500ms\n"
	    "dead_after = 1.5s\n"
	    "create_policy = mostfree\n"
	    "max_handles = 16\n"
	    "metrics = 127.0.0.1:9170\n"
	    "\n"
	    "  [cache]\n"
	    "  attr_timeout = 0\n"
	    "trap_delay = 20ms\n"
	    "block_size = 1M\n"
	    "cache_size = 1GiB\n"
	    "readahead_max = 0\n"
	    "writeback_interval = 0.25\n"
	    "direct_io = yes\n"
	    "[export:share]\n"
	    "path = /srv/share\n"
	    "at = //pub//x/\n"
	    "read_only = on\n"
	    "[cluster:www]\n"
	    "path = /srv/www\n"
	    "balance = leastload\n"
	    "[security]\n"
	    "key_file = /etc/pufs/union.key\n"
	    "encrypt = true\n"
	    "identity = caller\n"
	    "root_squash = no\n",
	    err, NULL);
	tap_is_int(ret, 0, "file with every key loads");
	tap_is_str(ret == 0 ? "" : err, "", "no error message");
	tap_is_str(cfg.name, "alpha-1.b_c", "peer.name");
	tap_is_str(cfg.listen, "[::1]:7071", "peer.listen, inline comment");
	tap_is_str(cfg.metrics, "127.0.0.1:9170", "peer.metrics");
	tap_is_int(cfg.discovery, DISCOVERY_UNICAST, "peer.discovery");
	tap_is_str(cfg.multicast_group, "ff15::70", "peer.multicast_group");
	tap_is_int(cfg.multicast_port, 7072, "peer.multicast_port");
	tap_is_str(cfg.multicast_interface, "eth0", "peer.multicast_interface");
	tap_is_int(cfg.multicast_ttl, 4, "peer.multicast_ttl");
	tap_is_int((long long)cfg.npeers, 4, "peer.peers: four entries");
	if (cfg.npeers == 4) {
		tap_is_str(cfg.peers[0], "10.0.0.2:7070", "peers[0]");
		tap_is_str(cfg.peers[1], "host-b:7070", "peers[1]");
		tap_is_str(cfg.peers[2], "[fe80::1%eth0]:1", "peers[2]");
		tap_is_str(cfg.peers[3], "10.0.0.9:9",
		    "peers[3] from a continuation line");
	}
	tap_is_str(cfg.control_socket, "/tmp/x.sock", "peer.control_socket");
	tap_ok(cfg.op_timeout == 2.5, "peer.op_timeout");
	tap_ok(cfg.heartbeat == 0.5, "peer.heartbeat in ms");
	tap_ok(cfg.dead_after == 1.5, "peer.dead_after in s");
	tap_is_int(cfg.create_policy, CREATE_MOSTFREE, "peer.create_policy");
	tap_is_int(cfg.max_handles, 16, "peer.max_handles");
	tap_ok(cfg.attr_timeout == 0, "cache.attr_timeout, indented key");
	tap_ok(cfg.trap_delay == 0.02, "cache.trap_delay");
	tap_is_int((long long)cfg.block_size, 1 << 20, "cache.block_size");
	tap_is_int((long long)cfg.cache_size, 1 << 30, "cache.cache_size");
	tap_is_int(cfg.readahead_max, 0, "cache.readahead_max");
	tap_ok(cfg.writeback_interval == 0.25, "cache.writeback_interval");
	tap_ok(cfg.direct_io, "cache.direct_io");
	tap_is_int((long long)cfg.nexports, 1, "one export");
	if (cfg.nexports == 1) {
		tap_is_str(cfg.exports[0].name, "share", "export name");
		tap_is_str(cfg.exports[0].path, "/srv/share", "export path");
		tap_is_str(cfg.exports[0].at, "/pub/x", "export at normalised");
		tap_ok(cfg.exports[0].read_only, "export read_only");
	}
	tap_is_int((long long)cfg.nclusters, 1, "one cluster");
	if (cfg.nclusters == 1) {
		tap_is_str(cfg.clusters[0].name, "www", "cluster name");
		tap_is_str(cfg.clusters[0].path, "/srv/www", "cluster path");
		tap_is_str(cfg.clusters[0].at, "/www", "cluster at default");
		tap_is_int(cfg.clusters[0].balance, BALANCE_LEASTLOAD,
		    "cluster balance");
	}
	tap_is_str(cfg.key_file, "/etc/pufs/union.key", "security.key_file");
	tap_ok(cfg.encrypt, "security.encrypt");
	tap_is_int(cfg.identity, IDENTITY_CALLER, "security.identity");
	tap_ok(!cfg.root_squash, "security.root_squash");
	tap_ok(cfg.config_file != NULL, "config_file remembered");
	config_free(&cfg);

	/* Repeated keys: the last one wins; an empty optional unsets. */
	ret = load_text(&cfg,
	    "[peer]\nmulticast_ttl = 2\nmulticast_interface = eth1\n"
	    "peers = a:1 b:2\n[cache]\nblock_size = 64K\n[peer]\n"
	    "multicast_ttl = 3\nmulticast_interface =\npeers = c:3\n"
	    "[export:x]\npath = /a\npath = /b\n",
	    err, NULL);
	tap_is_int(ret, 0, "repeated keys load");
	tap_is_int(cfg.multicast_ttl, 3, "repeated key: last wins");
	tap_is_str(cfg.multicast_interface, NULL, "empty value unsets");
	tap_is_int((long long)cfg.npeers, 1, "peers replaced, not appended");
	tap_is_str(cfg.nexports == 1 ? cfg.exports[0].path : NULL, "/b",
	    "repeated key in an export section: last wins");
	config_free(&cfg);
}

/* config_parse_size on good and bad input. */
static void
test_sizes(void)
{
	static const struct {
		const char *in;
		int ret;
		uint64_t want;
	} t[] = {
		{ "0", 0, 0 },
		{ "4096", 0, 4096 },
		{ "128K", 0, 128 << 10 },
		{ "128k", 0, 128 << 10 },
		{ "128KB", 0, 128 << 10 },
		{ "128KiB", 0, 128 << 10 },
		{ "128kib", 0, 128 << 10 },
		{ "256M", 0, 256 << 20 },
		{ "3G", 0, 3ULL << 30 },
		{ "2T", 0, 2ULL << 40 },
		{ "512B", 0, 512 },
		{ "007", 0, 7 },
		{ "16777215T", 0, 16777215ULL << 40 },
		{ "18446744073709551615", 0, UINT64_MAX },
		{ "18446744073709551616", -1, 0 },
		{ "16777216T", -1, 0 },
		{ "17179869184G", -1, 0 },
		{ "", -1, 0 },
		{ "K", -1, 0 },
		{ "-1", -1, 0 },
		{ "+1", -1, 0 },
		{ " 1", -1, 0 },
		{ "1 ", -1, 0 },
		{ "1.5M", -1, 0 },
		{ "1KK", -1, 0 },
		{ "1iB", -1, 0 },
		{ "1P", -1, 0 },
		{ "1KBB", -1, 0 },
		{ "0x10", -1, 0 },
	};
	uint64_t v;
	size_t i;
	int ret;

	for (i = 0; i < sizeof t / sizeof *t; i++) {
		v = 12345;
		ret = config_parse_size(t[i].in, &v);
		tap_ok(ret == t[i].ret && (ret != 0 || v == t[i].want),
		    "size '%s' -> %s %llu", t[i].in, ret == 0 ? "ok" : "error",
		    (unsigned long long)v);
	}
}

/* config_parse_duration and config_parse_bool on good and bad input. */
static void
test_durations(void)
{
	static const struct {
		const char *in;
		int ret;
		double want;
	} t[] = {
		{ "0", 0, 0 },
		{ "2", 0, 2 },
		{ "0.5", 0, 0.5 },
		{ ".5", 0, 0.5 },
		{ "2s", 0, 2 },
		{ "0.5s", 0, 0.5 },
		{ "100ms", 0, 0.1 },
		{ "1.5ms", 0, 0.0015 },
		{ "100MS", 0, 0.1 },
		{ "1000000000", 0, 1e9 },
		{ "10000000000", -1, 0 },
		{ "", -1, 0 },
		{ ".", -1, 0 },
		{ "s", -1, 0 },
		{ "ms", -1, 0 },
		{ "-1", -1, 0 },
		{ "+1", -1, 0 },
		{ "1e3", -1, 0 },
		{ "inf", -1, 0 },
		{ "nan", -1, 0 },
		{ "1 s", -1, 0 },
		{ "1m", -1, 0 },
		{ "1h", -1, 0 },
		{ "abc", -1, 0 },
		{ "1,5", -1, 0 },
	};
	static const struct {
		const char *in;
		int ret;
		bool want;
	} b[] = {
		{ "yes", 0, true },
		{ "no", 0, false },
		{ "true", 0, true },
		{ "false", 0, false },
		{ "on", 0, true },
		{ "off", 0, false },
		{ "1", 0, true },
		{ "0", 0, false },
		{ "YES", 0, true },
		{ "Off", 0, false },
		{ "", -1, false },
		{ "2", -1, false },
		{ "y", -1, false },
		{ "yes ", -1, false },
	};
	double d;
	bool v;
	size_t i;
	int ret;

	for (i = 0; i < sizeof t / sizeof *t; i++) {
		d = -7;
		ret = config_parse_duration(t[i].in, &d);
		tap_ok(ret == t[i].ret &&
			(ret != 0 ||
			    (d - t[i].want < 1e-12 && t[i].want - d < 1e-12)),
		    "duration '%s' -> %s %g", t[i].in,
		    ret == 0 ? "ok" : "error", d);
	}
	for (i = 0; i < sizeof b / sizeof *b; i++) {
		v = !b[i].want;
		ret = config_parse_bool(b[i].in, &v);
		tap_ok(ret == b[i].ret && (ret != 0 || v == b[i].want),
		    "bool '%s' -> %s", b[i].in, ret == 0 ? "ok" : "error");
	}
}

/* config_parse_at on good and bad union paths. */
static void
test_normalise_at(void)
{
	static const struct {
		const char *in, *want;
	} t[] = {
		{ "/", "/" },
		{ "//", "/" },
		{ "/a", "/a" },
		{ "/a/", "/a" },
		{ "/a//b/", "/a/b" },
		{ "///a///b///", "/a/b" },
		{ "/a.b/..c/c..", "/a.b/..c/c.." },
		{ "/.hidden", "/.hidden" },
		{ "", NULL },
		{ "a", NULL },
		{ "a/b", NULL },
		{ "/.", NULL },
		{ "/..", NULL },
		{ "/a/./b", NULL },
		{ "/a/../b", NULL },
		{ "/a/..", NULL },
		{ ".", NULL },
	};
	char *out;
	size_t i;
	int ret;

	for (i = 0; i < sizeof t / sizeof *t; i++) {
		out = NULL;
		ret = config_parse_at(t[i].in, &out);
		tap_is_str(ret == 0 ? out : NULL, t[i].want, t[i].in);
		tap_ok(ret == (t[i].want != NULL ? 0 : -1), "  and returns %d",
		    ret);
		free(out);
	}
}

/* Errors in a file name the file, the line and the key. */
static void
test_file_errors(void)
{
	static const struct {
		const char *text;
		const char *want; /* after "FILE:" */
	} t[] = {
		{ "[cache]\nattr_timeout = abc\n",
		    "2: cache.attr_timeout: bad duration 'abc'" },
		{ "[cache]\nfoo = 1\n", "2: unknown key 'foo' in [cache]" },
		{ "[peer]\n\n[bar]\nx = 1\n", "3: unknown section [bar]" },
		{ "[bar]\n", "1: unknown section [bar]" },
		{ "[export]\npath = /x\n", "1: unknown section [export]" },
		{ "[peer:x]\n", "1: unknown section [peer:x]" },
		{ "[export:a b]\n", "1: bad export name in [export:a b]" },
		{ "[cluster:]\n", "1: bad cluster name in [cluster:]" },
		{ "[export:a]\npath = /x\n[export:a]\n",
		    "3: duplicate section [export:a]" },
		{ "[peer\n", "1: missing ']'" },
		{ "[peer] x\n", "1: text after the section header" },
		{ "name = x\n", "1: key 'name' is outside any [section]" },
		{ "[peer]\nname\n", "2: syntax error" },
		{ "[peer]\n  name\n", "2: syntax error" },
		{ "[peer]\nname = a b\n", "2: peer.name: bad name 'a b'" },
		{ "[peer]\nname = \n", "2: peer.name: bad name ''" },
		{ "[peer]\nname = "
		  "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
		  "abcd"
		  "\n",
		    "2: peer.name: bad name" },
		{ "[peer]\nlisten = 1.2.3.4\n", "2: peer.listen: bad address" },
		{ "[peer]\nlisten = 1.2.3.4:0\n",
		    "2: peer.listen: bad address" },
		{ "[peer]\nlisten = 1.2.3.4:65536\n",
		    "2: peer.listen: bad address" },
		{ "[peer]\nlisten = ::1:7070\n",
		    "2: peer.listen: bad address" },
		{ "[peer]\nlisten = [::g]:7070\n",
		    "2: peer.listen: bad address" },
		{ "[peer]\nlisten = [::1]7070\n",
		    "2: peer.listen: bad address" },
		{ "[peer]\nlisten = :7070\n", "2: peer.listen: bad address" },
		{ "[peer]\nmetrics = 9170\n",
		    "2: peer.metrics: bad address '9170'" },
		{ "[peer]\nmetrics = 127.0.0.1:0\n",
		    "2: peer.metrics: bad address" },
		{ "[peer]\nmetrics = [::1]:99999\n",
		    "2: peer.metrics: bad address" },
		{ "[peer]\ndiscovery = broadcast\n",
		    "2: peer.discovery: bad value 'broadcast' "
		    "(multicast | unicast)" },
		{ "[peer]\nmulticast_group = 10.0.0.1\n",
		    "2: peer.multicast_group: '10.0.0.1' is not an IPv4 or "
		    "IPv6 "
		    "multicast address" },
		{ "[peer]\nmulticast_group = fe80::1\n",
		    "2: peer.multicast_group:" },
		{ "[peer]\nmulticast_group = 240.0.0.1\n",
		    "2: peer.multicast_group:" },
		{ "[peer]\nmulticast_port = 0\n",
		    "2: peer.multicast_port: 0 is out of range 1..65535" },
		{ "[peer]\nmulticast_port = 70000\n",
		    "2: peer.multicast_port: 70000 is out of range 1..65535" },
		{ "[peer]\nmulticast_ttl = 300\n",
		    "2: peer.multicast_ttl: 300 is out of range 0..255" },
		{ "[peer]\nmulticast_ttl = -1\n",
		    "2: peer.multicast_ttl: bad integer '-1'" },
		{ "[peer]\nmulticast_interface = a/b\n",
		    "2: peer.multicast_interface: bad interface name 'a/b'" },
		{ "[peer]\npeers = 1.2.3.4:5 nope\n",
		    "2: peer.peers: bad address 'nope'" },
		{ "[peer]\nop_timeout = 0\n",
		    "2: peer.op_timeout: must be more than 0 seconds" },
		{ "[peer]\nheartbeat = 0ms\n",
		    "2: peer.heartbeat: must be more than 0 seconds" },
		{ "[peer]\ncreate_policy = random\n",
		    "2: peer.create_policy: bad value 'random' "
		    "(local | mostfree | roundrobin)" },
		{ "[peer]\nname = a\n  b\n",
		    "3: peer.name: continuation lines are allowed for "
		    "peer.peers only" },
		{ "[cache]\nblock_size = 3K\n",
		    "2: cache.block_size: 3K is not a power of two between 4K "
		    "and 16M" },
		{ "[cache]\nblock_size = 32M\n",
		    "2: cache.block_size: 32M is not a power of two" },
		{ "[cache]\nblock_size = 2K\n",
		    "2: cache.block_size: 2K is not" },
		{ "[cache]\nblock_size = 99999999999999999999\n",
		    "2: cache.block_size: bad size '99999999999999999999'" },
		{ "[cache]\ncache_size = 8K\n",
		    "2: cache.cache_size: 8K is less than 16K" },
		{ "[peer]\nmax_handles = 0\n",
		    "2: peer.max_handles: 0 is out of range 1..1048576" },
		{ "[peer]\nmax_handles = lots\n",
		    "2: peer.max_handles: bad integer 'lots'" },
		{ "[cache]\nreadahead_max = 1025\n",
		    "2: cache.readahead_max: 1025 is out of range 0..1024" },
		{ "[cache]\ndirect_io = maybe\n",
		    "2: cache.direct_io: bad boolean 'maybe'" },
		{ "[cache]\nwriteback_interval = 0\n",
		    "2: cache.writeback_interval: must be more than 0" },
		{ "[export:a]\npath = relative/dir\n",
		    "2: export:a.path: 'relative/dir' is not an absolute "
		    "path" },
		{ "[export:a]\nat = /x/../y\n",
		    "2: export:a.at: bad union path '/x/../y'" },
		{ "[export:a]\nat = x\n",
		    "2: export:a.at: bad union path 'x'" },
		{ "[cluster:w]\nbalance = random\n",
		    "2: cluster:w.balance: bad value 'random' "
		    "(roundrobin | leastload)" },
		{ "[security]\nencrypt = 2\n",
		    "2: security.encrypt: bad boolean '2'" },
		{ "[security]\nidentity = user\n",
		    "2: security.identity: bad value 'user' (daemon | "
		    "caller)" },
		{ "[security]\nroot_squash = maybe\n",
		    "2: security.root_squash: bad boolean 'maybe'" },
		{ "[security]\nkey_fil = /x\n",
		    "2: unknown key 'key_fil' in [security]" },
		{ "[cache]\nAttr_Timeout = 1\n",
		    "2: unknown key 'Attr_Timeout' in [cache]" },
		{ "[cache]\nattr_timeout = 1\nfoo = 1\nbar = 2\n",
		    "3: unknown key 'foo' in [cache]" },
		{ "[peer]\nname = x\nbad line\n[cache]\nfoo = 1\n",
		    "3: syntax error" },
	};
	struct config cfg;
	char err[CONFIG_ERRLEN], want[CONFIG_ERRLEN + PATH_MAX];
	const char *path;
	size_t i;
	int ret;

	for (i = 0; i < sizeof t / sizeof *t; i++) {
		ret = load_text(&cfg, t[i].text, err, &path);
		snprintf(want, sizeof want, "%s:%s", path, t[i].want);
		tap_ok(ret == -1 && strncmp(err, want, strlen(want)) == 0,
		    "file error %zu: '%s'", i, err);
		config_free(&cfg);
	}

	/* A line longer than inih's buffer is refused, not split. */
	{
		char text[1024];

		memset(text, 0, sizeof text);
		strcpy(text, "[peer]\npeers =");
		for (i = 0; i < 30; i++)
			strcat(text, " 10.0.0.1:7070");
		strcat(text, "\n");
		ret = load_text(&cfg, text, err, &path);
		snprintf(want, sizeof want, "%s:2: line longer than", path);
		tap_ok(ret == -1 && strncmp(err, want, strlen(want)) == 0,
		    "long line refused: '%s'", err);
		config_free(&cfg);
	}

	/* A missing file, and a directory. */
	config_init(&cfg);
	snprintf(want, sizeof want, "%s/nonexistent.ini", tmpdir);
	ret = config_load_file(&cfg, want, err, sizeof err);
	strcat(want, ": cannot open: No such file or directory");
	tap_ok(ret == -1 && strcmp(err, want) == 0, "missing file: '%s'", err);
	ret = config_load_file(&cfg, tmpdir, err, sizeof err);
	tap_ok(ret == -1 && strstr(err, "Is a directory") != NULL,
	    "directory as file: '%s'", err);
	config_free(&cfg);

	/* CRLF line ends and a byte order mark are accepted. */
	ret = load_text(&cfg, "\xef\xbb\xbf[peer]\r\nname = crlf\r\n", err,
	    NULL);
	tap_ok(ret == 0 && strcmp(cfg.name, "crlf") == 0, "BOM and CRLF: '%s'",
	    err);
	config_free(&cfg);
}

/* Hints that end the messages about names and addresses. */
#define NAME_HINT " (1 to 63 of A-Z a-z 0-9 . _ -)"
#define ADDR_HINT " (HOST:PORT or [IPV6]:PORT, port 1-65535)"
#define A10 "aaaaaaaaaa"
#define X100 \
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
#define HOST253 \
	A10 A10 A10 A10 A10 A10 A10 A10 A10 A10 A10 A10 A10 A10 A10 A10 A10 \
	    A10 A10 A10 A10 A10 A10 A10 A10 "aaa"
#define SOCK107 "/" X100 "xxxxxx"

/*
 * Every key through config_set(): good values, and each kind of bad
 * value with the exact message it gets ("o" is the origin).
 */
static void
test_keys(void)
{
	static const struct {
		const char *section, *key, *value;
		const char *want; /* NULL: accepted */
	} t[] = {
		/* peer.name: a string with a check. */
		{ "peer", "name", "a", NULL },
		{ "peer", "name", "A-z_0.9", NULL },
		{ "peer", "name", A10 A10 A10 A10 A10 A10 "aaa", NULL },
		{ "peer", "name", "", "o: peer.name: bad name ''" NAME_HINT },
		{ "peer", "name", "a b",
		    "o: peer.name: bad name 'a b'" NAME_HINT },
		{ "peer", "name", "a/b",
		    "o: peer.name: bad name 'a/b'" NAME_HINT },
		{ "peer", "name", A10 A10 A10 A10 A10 A10 "aaaa",
		    "o: peer.name: bad name '" A10 A10 A10 A10 A10 A10
		    "aaaa'" NAME_HINT },
		/* peer.listen: an address. */
		{ "peer", "listen", "h:1", NULL },
		{ "peer", "listen", "a.b-c_d:65535", NULL },
		{ "peer", "listen", "[::1]:7070", NULL },
		{ "peer", "listen", "[fe80::1%eth0]:7070", NULL },
		{ "peer", "listen", HOST253 ":1", NULL },
		{ "peer", "listen", HOST253 "a:1",
		    "o: peer.listen: bad address '" HOST253 "a:1'" ADDR_HINT },
		{ "peer", "listen", "",
		    "o: peer.listen: bad address ''" ADDR_HINT },
		{ "peer", "listen", "h",
		    "o: peer.listen: bad address 'h'" ADDR_HINT },
		{ "peer", "listen",
		    "h:", "o: peer.listen: bad address 'h:'" ADDR_HINT },
		{ "peer", "listen", ":1",
		    "o: peer.listen: bad address ':1'" ADDR_HINT },
		{ "peer", "listen", "h:0",
		    "o: peer.listen: bad address 'h:0'" ADDR_HINT },
		{ "peer", "listen", "h:65536",
		    "o: peer.listen: bad address 'h:65536'" ADDR_HINT },
		{ "peer", "listen", "h:+1",
		    "o: peer.listen: bad address 'h:+1'" ADDR_HINT },
		{ "peer", "listen", "h:1 ",
		    "o: peer.listen: bad address 'h:1 '" ADDR_HINT },
		{ "peer", "listen", "h/x:1",
		    "o: peer.listen: bad address 'h/x:1'" ADDR_HINT },
		{ "peer", "listen", "::1:1",
		    "o: peer.listen: bad address "
		    "'::1:1'" ADDR_HINT },
		{ "peer", "listen", "[]:1",
		    "o: peer.listen: bad address '[]:1'" ADDR_HINT },
		{ "peer", "listen", "[::1]",
		    "o: peer.listen: bad address "
		    "'[::1]'" ADDR_HINT },
		{ "peer", "listen", "[::1]1",
		    "o: peer.listen: bad address "
		    "'[::1]1'" ADDR_HINT },
		{ "peer", "listen", "[1.2.3.4]:1",
		    "o: peer.listen: bad address "
		    "'[1.2.3.4]:1'" ADDR_HINT },
		{ "peer", "listen", "[fe80::1%]:1",
		    "o: peer.listen: bad "
		    "address '[fe80::1%]:1'" ADDR_HINT },
		{ "peer", "listen", "[fe80::1%a/b]:1",
		    "o: peer.listen: bad "
		    "address '[fe80::1%a/b]:1'" ADDR_HINT },
		{ "peer", "listen", "[fe80::1%abcdefghijklmnop]:1",
		    "o: peer.listen: bad address "
		    "'[fe80::1%abcdefghijklmnop]:1'" ADDR_HINT },
		/* peer.discovery: an enum. */
		{ "peer", "discovery", "unicast", NULL },
		{ "peer", "discovery", "MultiCast", NULL },
		{ "peer", "discovery", "",
		    "o: peer.discovery: bad value '' "
		    "(multicast | unicast)" },
		{ "peer", "discovery", "uni",
		    "o: peer.discovery: bad value "
		    "'uni' (multicast | unicast)" },
		/* peer.multicast_group: a multicast address. */
		{ "peer", "multicast_group", "224.0.0.1", NULL },
		{ "peer", "multicast_group", "239.255.255.255", NULL },
		{ "peer", "multicast_group", "ff02::1", NULL },
		{ "peer", "multicast_group", "223.255.255.255",
		    "o: peer.multicast_group: '223.255.255.255' is not an IPv4 "
		    "or IPv6 multicast address" },
		{ "peer", "multicast_group", "240.0.0.1",
		    "o: peer.multicast_group: '240.0.0.1' is not an IPv4 or "
		    "IPv6 multicast address" },
		{ "peer", "multicast_group", "fe80::1",
		    "o: peer.multicast_group: 'fe80::1' is not an IPv4 or IPv6 "
		    "multicast address" },
		{ "peer", "multicast_group", "group",
		    "o: peer.multicast_group: 'group' is not an IPv4 or IPv6 "
		    "multicast address" },
		{ "peer", "multicast_group", "",
		    "o: peer.multicast_group: '' is not an IPv4 or IPv6 "
		    "multicast address" },
		/* peer.multicast_port: a port. */
		{ "peer", "multicast_port", "1", NULL },
		{ "peer", "multicast_port", "65535", NULL },
		{ "peer", "multicast_port", "0",
		    "o: peer.multicast_port: 0 is "
		    "out of range 1..65535" },
		{ "peer", "multicast_port", "65536",
		    "o: peer.multicast_port: "
		    "65536 is out of range 1..65535" },
		{ "peer", "multicast_port", "",
		    "o: peer.multicast_port: bad "
		    "integer ''" },
		{ "peer", "multicast_port", "+1",
		    "o: peer.multicast_port: bad "
		    "integer '+1'" },
		{ "peer", "multicast_port", " 1",
		    "o: peer.multicast_port: bad "
		    "integer ' 1'" },
		{ "peer", "multicast_port", "0x10",
		    "o: peer.multicast_port: "
		    "bad integer '0x10'" },
		{ "peer", "multicast_port", "99999999999999999999",
		    "o: peer.multicast_port: bad integer "
		    "'99999999999999999999'" },
		/* peer.multicast_interface: optional, with a check. */
		{ "peer", "multicast_interface", "eth0", NULL },
		{ "peer", "multicast_interface", "abcdefghijklmno", NULL },
		{ "peer", "multicast_interface", "", NULL },
		{ "peer", "multicast_interface", "abcdefghijklmnop",
		    "o: peer.multicast_interface: bad interface name "
		    "'abcdefghijklmnop'" },
		{ "peer", "multicast_interface", "a:b",
		    "o: peer.multicast_interface: bad interface name 'a:b'" },
		{ "peer", "multicast_interface", "a b",
		    "o: peer.multicast_interface: bad interface name 'a b'" },
		/* peer.multicast_ttl: an int. */
		{ "peer", "multicast_ttl", "0", NULL },
		{ "peer", "multicast_ttl", "255", NULL },
		{ "peer", "multicast_ttl", "256",
		    "o: peer.multicast_ttl: 256 "
		    "is out of range 0..255" },
		{ "peer", "multicast_ttl", "-1",
		    "o: peer.multicast_ttl: bad "
		    "integer '-1'" },
		{ "peer", "multicast_ttl", "1.5",
		    "o: peer.multicast_ttl: bad "
		    "integer '1.5'" },
		/* peer.peers: a list of addresses. */
		{ "peer", "peers", "a:1", NULL },
		{ "peer", "peers", " a:1,,b:2\t[::1]:3 ", NULL },
		{ "peer", "peers", "", NULL },
		{ "peer", "peers", "a:1 b",
		    "o: peer.peers: bad address 'b'" ADDR_HINT },
		{ "peer", "peers", "a:1,b:0",
		    "o: peer.peers: bad address "
		    "'b:0'" ADDR_HINT },
		/* peer.control_socket: optional, with a check. */
		{ "peer", "control_socket", "/tmp/s.sock", NULL },
		{ "peer", "control_socket", SOCK107, NULL },
		{ "peer", "control_socket", "", NULL },
		{ "peer", "control_socket", SOCK107 "x",
		    "o: peer.control_socket: socket path '" SOCK107 "x' is "
		    "empty or longer than 107 bytes" },
		/* Durations that must be more than 0. */
		{ "peer", "op_timeout", "1ms", NULL },
		{ "peer", "op_timeout", "1000000000", NULL },
		{ "peer", "op_timeout", "0",
		    "o: peer.op_timeout: must be more "
		    "than 0 seconds" },
		{ "peer", "op_timeout", "0.0s",
		    "o: peer.op_timeout: must be "
		    "more than 0 seconds" },
		{ "peer", "op_timeout", "-1",
		    "o: peer.op_timeout: bad duration "
		    "'-1'" },
		{ "peer", "op_timeout", "1000000001",
		    "o: peer.op_timeout: bad "
		    "duration '1000000001'" },
		{ "peer", "op_timeout", "1m",
		    "o: peer.op_timeout: bad duration "
		    "'1m'" },
		{ "peer", "op_timeout", "",
		    "o: peer.op_timeout: bad duration "
		    "''" },
		{ "peer", "heartbeat", "0.5", NULL },
		{ "peer", "heartbeat", "0ms",
		    "o: peer.heartbeat: must be more "
		    "than 0 seconds" },
		{ "peer", "dead_after", "2s", NULL },
		{ "peer", "dead_after", "0",
		    "o: peer.dead_after: must be more "
		    "than 0 seconds" },
		{ "cache", "writeback_interval", "0.25", NULL },
		{ "cache", "writeback_interval", "0",
		    "o: cache.writeback_interval: must be more than 0 "
		    "seconds" },
		/* peer.create_policy: an enum. */
		{ "peer", "create_policy", "RoundRobin", NULL },
		{ "peer", "create_policy", "random",
		    "o: peer.create_policy: "
		    "bad value 'random' (local | mostfree | roundrobin)" },
		/* peer.max_handles: a uint32_t. */
		{ "peer", "max_handles", "1", NULL },
		{ "peer", "max_handles", "1048576", NULL },
		{ "peer", "max_handles", "0",
		    "o: peer.max_handles: 0 is out "
		    "of range 1..1048576" },
		{ "peer", "max_handles", "1048577",
		    "o: peer.max_handles: "
		    "1048577 is out of range 1..1048576" },
		{ "peer", "max_handles", "4294967296",
		    "o: peer.max_handles: "
		    "4294967296 is out of range 1..1048576" },
		{ "peer", "max_handles", "many",
		    "o: peer.max_handles: bad "
		    "integer 'many'" },
		/* Durations that may be 0. */
		{ "cache", "attr_timeout", "0", NULL },
		{ "cache", "attr_timeout", "1.5ms", NULL },
		{ "cache", "attr_timeout", "-0",
		    "o: cache.attr_timeout: bad "
		    "duration '-0'" },
		{ "cache", "attr_timeout", "1 s",
		    "o: cache.attr_timeout: bad "
		    "duration '1 s'" },
		{ "cache", "trap_delay", "0s", NULL },
		{ "cache", "trap_delay", "nan",
		    "o: cache.trap_delay: bad "
		    "duration 'nan'" },
		/* cache.block_size: a power-of-two size. */
		{ "cache", "block_size", "4K", NULL },
		{ "cache", "block_size", "16MiB", NULL },
		{ "cache", "block_size", "4096", NULL },
		{ "cache", "block_size", "2K",
		    "o: cache.block_size: 2K is not "
		    "a power of two between 4K and 16M" },
		{ "cache", "block_size", "5000",
		    "o: cache.block_size: 5000 is "
		    "not a power of two between 4K and 16M" },
		{ "cache", "block_size", "12K",
		    "o: cache.block_size: 12K is "
		    "not a power of two between 4K and 16M" },
		{ "cache", "block_size", "32M",
		    "o: cache.block_size: 32M is "
		    "not a power of two between 4K and 16M" },
		{ "cache", "block_size", "1.5M",
		    "o: cache.block_size: bad size "
		    "'1.5M'" },
		{ "cache", "block_size", "",
		    "o: cache.block_size: bad size "
		    "''" },
		/* cache.cache_size: a size with a floor only. */
		{ "cache", "cache_size", "16K", NULL },
		{ "cache", "cache_size", "16777215T", NULL },
		{ "cache", "cache_size", "0",
		    "o: cache.cache_size: 0 is less "
		    "than 16K" },
		{ "cache", "cache_size", "16383",
		    "o: cache.cache_size: 16383 "
		    "is less than 16K" },
		{ "cache", "cache_size", "16777216T",
		    "o: cache.cache_size: bad "
		    "size '16777216T'" },
		{ "cache", "cache_size", "1P",
		    "o: cache.cache_size: bad size "
		    "'1P'" },
		/* cache.readahead_max: a uint32_t from 0. */
		{ "cache", "readahead_max", "0", NULL },
		{ "cache", "readahead_max", "1024", NULL },
		{ "cache", "readahead_max", "1025",
		    "o: cache.readahead_max: "
		    "1025 is out of range 0..1024" },
		/* Booleans. */
		{ "cache", "direct_io", "On", NULL },
		{ "cache", "direct_io", "maybe",
		    "o: cache.direct_io: bad "
		    "boolean 'maybe' (yes or no)" },
		{ "cache", "direct_io", "",
		    "o: cache.direct_io: bad boolean "
		    "'' (yes or no)" },
		{ "security", "encrypt", "0", NULL },
		{ "security", "encrypt", "nope",
		    "o: security.encrypt: bad "
		    "boolean 'nope' (yes or no)" },
		/* security.key_file: optional, unchecked until validate. */
		{ "security", "key_file", "/etc/key", NULL },
		{ "security", "key_file", "relative", NULL },
		{ "security", "key_file", "", NULL },
		/* [export:NAME] and [cluster:NAME]. */
		{ "export:a", "path", "/srv", NULL },
		{ "export:a", "path", "srv",
		    "o: export:a.path: 'srv' is not an "
		    "absolute path" },
		{ "export:a", "path", "",
		    "o: export:a.path: '' is not an "
		    "absolute path" },
		{ "export:a", "at", "//x//", NULL },
		{ "export:a", "at", "",
		    "o: export:a.at: bad union path '' "
		    "(absolute, no . or ..)" },
		{ "export:a", "at", "/x/./y",
		    "o: export:a.at: bad union path "
		    "'/x/./y' (absolute, no . or ..)" },
		{ "export:a", "read_only", "false", NULL },
		{ "export:a", "read_only", "ro",
		    "o: export:a.read_only: bad "
		    "boolean 'ro' (yes or no)" },
		{ "cluster:c", "path", "/srv/c", NULL },
		{ "cluster:c", "path", "c",
		    "o: cluster:c.path: 'c' is not an "
		    "absolute path" },
		{ "cluster:c", "at", "/", NULL },
		{ "cluster:c", "at", "/..",
		    "o: cluster:c.at: bad union path "
		    "'/..' (absolute, no . or ..)" },
		{ "cluster:c", "balance", "LeastLoad", NULL },
		{ "cluster:c", "balance", "random",
		    "o: cluster:c.balance: bad "
		    "value 'random' (roundrobin | leastload)" },
		/* Unknown keys and sections. */
		{ "peer", "nope", "1", "o: unknown key 'nope' in [peer]" },
		{ "peer", "Name", "a", "o: unknown key 'Name' in [peer]" },
		{ "export:a", "name", "a",
		    "o: unknown key 'name' in "
		    "[export:a]" },
		{ "bogus", "x", "1", "o: unknown section [bogus]" },
		{ "", "x", "1", "o: unknown section []" },
		{ "export", "path", "/", "o: unknown section [export]" },
		{ "peer:x", "name", "a", "o: unknown section [peer:x]" },
		{ "export:", "path", "/",
		    "o: bad export name in [export:] "
		    "(1 to 63 of A-Z a-z 0-9 . _ -)" },
		{ "cluster:a b", "path", "/",
		    "o: bad cluster name in "
		    "[cluster:a b] (1 to 63 of A-Z a-z 0-9 . _ -)" },
	};
	struct config cfg;
	char err[CONFIG_ERRLEN];
	size_t i;
	int ret;

	for (i = 0; i < sizeof t / sizeof *t; i++) {
		config_init(&cfg);
		strcpy(err, "untouched");
		ret = config_set(&cfg, t[i].section, t[i].key, t[i].value, "o",
		    err, sizeof err);
		if (t[i].want == NULL)
			tap_ok(ret == 0 && strcmp(err, "untouched") == 0,
			    "%s.%s = '%s' accepted: '%s'", t[i].section,
			    t[i].key, t[i].value, err);
		else {
			tap_ok(ret == -1, "%s.%s = '%s' refused", t[i].section,
			    t[i].key, t[i].value);
			tap_is_str(err, t[i].want, "  with its message");
		}
		config_free(&cfg);
	}

	/* Bounds and the empty values that unset, as stored. */
	config_init(&cfg);
	config_set(&cfg, "peer", "multicast_port", "65535", "o", err,
	    sizeof err);
	config_set(&cfg, "peer", "multicast_ttl", "255", "o", err, sizeof err);
	config_set(&cfg, "peer", "max_handles", "1048576", "o", err,
	    sizeof err);
	config_set(&cfg, "cache", "block_size", "16MiB", "o", err, sizeof err);
	config_set(&cfg, "cache", "readahead_max", "1024", "o", err,
	    sizeof err);
	config_set(&cfg, "peer", "discovery", "UNICAST", "o", err, sizeof err);
	tap_is_int(cfg.multicast_port, 65535, "multicast_port 65535 stored");
	tap_is_int(cfg.multicast_ttl, 255, "multicast_ttl 255 stored");
	tap_is_int(cfg.max_handles, 1 << 20, "max_handles 2^20 stored");
	tap_is_int((long long)cfg.block_size, 16 << 20, "block_size 16MiB");
	tap_is_int(cfg.readahead_max, 1024, "readahead_max 1024 stored");
	tap_is_int(cfg.discovery, DISCOVERY_UNICAST, "enum case ignored");
	config_set(&cfg, "peer", "peers", "a:1 b:2", "o", err, sizeof err);
	config_set(&cfg, "peer", "peers", "", "o", err, sizeof err);
	tap_ok(cfg.npeers == 0 && cfg.peers == NULL, "empty peers: none");
	config_set(&cfg, "peer", "peers", "a:1 b:2", "o", err, sizeof err);
	config_set(&cfg, "peer", "peers", "c:3 nope", "o", err, sizeof err);
	tap_is_int((long long)cfg.npeers, 2, "a bad list keeps the old one");
	config_set(&cfg, "peer", "multicast_ttl", "300", "o", err, sizeof err);
	tap_is_int(cfg.multicast_ttl, 255, "a refused value keeps the old");
	config_set(&cfg, "security", "key_file", "/k", "o", err, sizeof err);
	config_set(&cfg, "security", "key_file", "", "o", err, sizeof err);
	tap_is_str(cfg.key_file, NULL, "empty key_file unsets");
	config_set(&cfg, "peer", "control_socket", "/s", "o", err, sizeof err);
	config_set(&cfg, "peer", "control_socket", "", "o", err, sizeof err);
	tap_is_str(cfg.control_socket, NULL, "empty control_socket unsets");
	config_free(&cfg);
}

/* -o debug.clock_skew: a signed duration, with its exact errors. */
static void
test_skew(void)
{
	static const struct {
		const char *in;
		int ret;
		double want;
	} t[] = {
		{ "0", 0, 0 },
		{ "1", 0, 1 },
		{ "+1", 0, 1 },
		{ "-1", 0, -1 },
		{ "-0.5s", 0, -0.5 },
		{ "-300ms", 0, -0.3 },
		{ "+.5", 0, 0.5 },
		{ "-1000000000", 0, -1e9 },
		{ "", -1, 0 },
		{ "-", -1, 0 },
		{ "+", -1, 0 },
		{ "--1", -1, 0 },
		{ "+-1", -1, 0 },
		{ "- 1", -1, 0 },
		{ "-1e3", -1, 0 },
		{ "-10000000000", -1, 0 },
		{ "1h", -1, 0 },
		{ "-ms", -1, 0 },
	};
	struct config cfg;
	char arg[64], err[CONFIG_ERRLEN], want[CONFIG_ERRLEN];
	size_t i;
	int ret;

	for (i = 0; i < sizeof t / sizeof *t; i++) {
		config_init(&cfg);
		cfg.debug_clock_skew = 7;
		snprintf(arg, sizeof arg, "debug.clock_skew=%s", t[i].in);
		ret = config_load_opts(&cfg, arg, err, sizeof err);
		if (t[i].ret == 0)
			tap_ok(ret == 0 &&
				cfg.debug_clock_skew - t[i].want < 1e-12 &&
				t[i].want - cfg.debug_clock_skew < 1e-12,
			    "clock skew '%s' -> %g", t[i].in,
			    cfg.debug_clock_skew);
		else {
			snprintf(want, sizeof want,
			    "-o %s: debug.clock_skew: "
			    "bad duration '%s'",
			    arg, t[i].in);
			tap_ok(ret == -1 && strcmp(err, want) == 0 &&
				cfg.debug_clock_skew == 7,
			    "clock skew '%s' "
			    "refused: '%s'",
			    t[i].in, err);
		}
		config_free(&cfg);
	}
}

/* -o and the environment: the exact message of each refusal. */
static void
test_override_errors(void)
{
	static const struct {
		const char *arg, *want;
	} t[] = {
		{ "attr_timeout=1",
		    "-o attr_timeout=1: expected section.key=value" },
		{ "cache.attr_timeout",
		    "-o cache.attr_timeout: expected "
		    "section.key=value" },
		{ "a=b.c", "-o a=b.c: expected section.key=value" },
		{ "export:a.path=/x",
		    "-o export:a.path=/x: only [peer], [cache] "
		    "and [security] keys can be set with -o" },
		{ "bogus.x=1",
		    "-o bogus.x=1: only [peer], [cache] and "
		    "[security] keys can be set with -o" },
		{ "debug.other=1",
		    "-o debug.other=1: unknown key 'other' in "
		    "[debug]" },
		{ "peer.nope=1",
		    "-o peer.nope=1: unknown key 'nope' in [peer]" },
		{ "peer.multicast_ttl=256",
		    "-o peer.multicast_ttl=256: "
		    "peer.multicast_ttl: 256 is out of range 0..255" },
		{ "cache.block_size=3K,peer.name=x",
		    "-o cache.block_size=3K: "
		    "cache.block_size: 3K is not a power of two between 4K and "
		    "16M" },
	};
	char *env_opt[] = { "PUFS_PEER_NAME=a b", NULL };
	char *env_sec[] = { "PUFS_SECURITY_ENCRYPT=perhaps", NULL };
	struct config cfg;
	char err[CONFIG_ERRLEN];
	size_t i;
	int ret;

	for (i = 0; i < sizeof t / sizeof *t; i++) {
		config_init(&cfg);
		ret = config_load_opts(&cfg, t[i].arg, err, sizeof err);
		tap_ok(ret == -1, "-o %s refused", t[i].arg);
		tap_is_str(err, t[i].want, "  with its message");
		config_free(&cfg);
	}
	config_init(&cfg);
	ret = config_load_env(&cfg, env_opt, err, sizeof err);
	tap_ok(ret == -1, "PUFS_PEER_NAME='a b' refused");
	tap_is_str(err,
	    "environment PUFS_PEER_NAME: peer.name: bad name "
	    "'a b'" NAME_HINT,
	    "  with its message");
	ret = config_load_env(&cfg, env_sec, err, sizeof err);
	tap_ok(ret == -1, "PUFS_SECURITY_ENCRYPT=perhaps refused");
	tap_is_str(err,
	    "environment PUFS_SECURITY_ENCRYPT: security.encrypt: "
	    "bad boolean 'perhaps' (yes or no)",
	    "  with its message");
	config_free(&cfg);
}

/*
 * config_validate() on fields set directly, one of each key type out of
 * its rules, and the exact message.
 */
static void
test_recheck(void)
{
	enum { U16, INT, U32, U64, DBL, STR, ENUM };
	static const struct {
		int type;
		size_t off;
		long long i;   /* U16, INT, U32, U64, ENUM */
		double d;      /* DBL */
		const char *s; /* STR; NULL unsets */
		const char *want;
	} t[] = {
		{ U16, offsetof(struct config, multicast_port), 0, 0, NULL,
		    "peer.multicast_port: 0 is out of range 1..65535" },
		{ INT, offsetof(struct config, multicast_ttl), -1, 0, NULL,
		    "peer.multicast_ttl: -1 is negative" },
		{ INT, offsetof(struct config, multicast_ttl), 256, 0, NULL,
		    "peer.multicast_ttl: 256 is out of range 0..255" },
		{ U32, offsetof(struct config, max_handles), 1048577, 0, NULL,
		    "peer.max_handles: 1048577 is out of range 1..1048576" },
		{ U32, offsetof(struct config, readahead_max), 2000, 0, NULL,
		    "cache.readahead_max: 2000 is out of range 0..1024" },
		{ U64, offsetof(struct config, block_size), 32 << 20, 0, NULL,
		    "cache.block_size: 32M is not a power of two between 4K "
		    "and 16M" },
		{ U64, offsetof(struct config, cache_size), 4096, 0, NULL,
		    "cache.cache_size: 4K is less than 16K" },
		{ DBL, offsetof(struct config, op_timeout), 0, 0, NULL,
		    "peer.op_timeout: must be more than 0 seconds" },
		{ DBL, offsetof(struct config, attr_timeout), 0, -1, NULL,
		    "cache.attr_timeout: must not be negative" },
		{ DBL, offsetof(struct config, trap_delay), 0, 2e9, NULL,
		    "cache.trap_delay: bad duration 2e+09" },
		{ DBL, offsetof(struct config, heartbeat), 0, NAN, NULL,
		    "peer.heartbeat: bad duration nan" },
		{ STR, offsetof(struct config, name), 0, 0, NULL,
		    "peer.name: not set" },
		{ STR, offsetof(struct config, multicast_group), 0, 0, NULL,
		    "peer.multicast_group: not set" },
		{ STR, offsetof(struct config, multicast_interface), 0, 0,
		    "a/b",
		    "peer.multicast_interface: bad interface name "
		    "'a/b'" },
		{ STR, offsetof(struct config, control_socket), 0, 0, "",
		    "peer.control_socket: socket path '' is empty or longer "
		    "than 107 bytes" },
		{ ENUM, offsetof(struct config, discovery), 2, 0, NULL,
		    "peer.discovery: bad value 2" },
		{ ENUM, offsetof(struct config, create_policy), -1, 0, NULL,
		    "peer.create_policy: bad value -1" },
	};
	struct config cfg;
	char err[CONFIG_ERRLEN];
	char *field;
	size_t i;
	int ret;

	for (i = 0; i < sizeof t / sizeof *t; i++) {
		config_init(&cfg);
		field = (char *)&cfg + t[i].off;
		switch (t[i].type) {
		case U16:
			*(uint16_t *)field = (uint16_t)t[i].i;
			break;
		case INT:
		case ENUM:
			*(int *)field = (int)t[i].i;
			break;
		case U32:
			*(uint32_t *)field = (uint32_t)t[i].i;
			break;
		case U64:
			*(uint64_t *)field = (uint64_t)t[i].i;
			break;
		case DBL:
			*(double *)field = t[i].d;
			break;
		case STR:
			free(*(char **)field);
			*(char **)field = t[i].s == NULL ? NULL
							 : xstrdup(t[i].s);
			break;
		}
		ret = config_validate(&cfg, err, sizeof err);
		tap_ok(ret == -1, "validate refuses %s", t[i].want);
		tap_is_str(err, t[i].want, "  with its message");
		config_free(&cfg);
	}

	/* A list entry set directly, and an export's key. */
	config_init(&cfg);
	cfg.peers = xcalloc(2, sizeof *cfg.peers);
	cfg.peers[0] = xstrdup("a:1");
	cfg.peers[1] = xstrdup("b");
	cfg.npeers = 2;
	ret = config_validate(&cfg, err, sizeof err);
	tap_ok(ret == -1, "validate refuses a bad peers entry");
	tap_is_str(err, "peer.peers: bad address 'b'" ADDR_HINT,
	    "  with its message");
	config_free(&cfg);
	config_init(&cfg);
	config_set(&cfg, "export:x", "path", "/", "o", err, sizeof err);
	free(cfg.exports[0].path);
	cfg.exports[0].path = xstrdup("rel");
	ret = config_validate(&cfg, err, sizeof err);
	tap_ok(ret == -1, "validate refuses a relative export path");
	tap_is_str(err, "export:x.path: 'rel' is not an absolute path",
	    "  with its message");
	config_free(&cfg);
}

/* The environment and -o, and their precedence over the file. */
static void
test_env_opts(void)
{
	char *env[] = {
		"HOME=/root",
		"PUFS_CACHE_ATTR_TIMEOUT=2",
		"PUFS_PEER_CONTROL_SOCKET=/tmp/env.sock",
		"PUFS_SECURITY_ENCRYPT=no",
		"PUFS_PEER_MAX_HANDLES=64",
		"pufs_peer_name=lower",
		"PUFS_SRCDIR=/ignored",
		"PUFS_EXPORT_PATH=/ignored",
		"PUFS_CACHEX_FOO=1",
		NULL,
	};
	char *bad_env[] = { "PUFS_CACHE_FOO=1", NULL };
	char *bad_val[] = { "PUFS_PEER_MULTICAST_TTL=300", NULL };
	struct config cfg;
	char err[CONFIG_ERRLEN];
	int ret;

	ret = load_text(&cfg,
	    "[cache]\nattr_timeout = 1\ntrap_delay = 1\n"
	    "[peer]\nname = file\n",
	    err, NULL);
	tap_is_int(ret, 0, "file for precedence loads");
	ret = config_load_env(&cfg, env, err, sizeof err);
	tap_is_int(ret, 0, "environment loads");
	tap_ok(cfg.attr_timeout == 2, "environment overrides the file");
	tap_ok(cfg.trap_delay == 1, "file value kept where env is silent");
	tap_is_str(cfg.control_socket, "/tmp/env.sock",
	    "PUFS_PEER_CONTROL_SOCKET");
	tap_is_str(cfg.name, "file", "lower-case variable names ignored");
	tap_is_int(cfg.max_handles, 64, "PUFS_PEER_MAX_HANDLES");
	ret = config_load_opts(&cfg,
	    "cache.attr_timeout=3,peer.name=opt,"
	    "peer.peers=a:1 b:2,debug.clock_skew=-2.5,peer.max_handles=8",
	    err, sizeof err);
	tap_is_int(ret, 0, "-o loads");
	tap_ok(cfg.attr_timeout == 3, "-o overrides the environment");
	tap_is_str(cfg.name, "opt", "-o peer.name");
	tap_is_int(cfg.max_handles, 8, "-o peer.max_handles");
	tap_is_int((long long)cfg.npeers, 2, "-o peer.peers with a space");
	tap_ok(cfg.debug_clock_skew == -2.5, "-o debug.clock_skew negative");
	ret = config_load_opts(&cfg, "debug.clock_skew=-300ms,", err,
	    sizeof err);
	tap_ok(ret == 0 && cfg.debug_clock_skew == -0.3,
	    "clock skew in ms, trailing comma");
	ret = config_load_opts(&cfg, "debug.clock_skew=+1", err, sizeof err);
	tap_ok(ret == 0 && cfg.debug_clock_skew == 1, "clock skew with +");

	ret = config_load_env(&cfg, bad_env, err, sizeof err);
	tap_ok(ret == -1 &&
		strcmp(err,
		    "environment PUFS_CACHE_FOO: "
		    "unknown key 'foo' in [cache]") == 0,
	    "env unknown key: '%s'", err);
	ret = config_load_env(&cfg, bad_val, err, sizeof err);
	tap_ok(ret == -1 &&
		strcmp(err,
		    "environment PUFS_PEER_MULTICAST_TTL: "
		    "peer.multicast_ttl: 300 is out of range 0..255") == 0,
	    "env bad value: '%s'", err);

	ret = config_load_opts(&cfg, "cache.attr_timeout=abc", err, sizeof err);
	tap_ok(ret == -1 &&
		strcmp(err,
		    "-o cache.attr_timeout=abc: "
		    "cache.attr_timeout: bad duration 'abc'") == 0,
	    "-o bad value: '%s'", err);
	ret = config_load_opts(&cfg, "peer.name=ok,cache.nope=1", err,
	    sizeof err);
	tap_ok(ret == -1 &&
		strcmp(err,
		    "-o cache.nope=1: unknown key 'nope' "
		    "in [cache]") == 0,
	    "-o unknown key names the pair: '%s'", err);
	ret = config_load_opts(&cfg, "attr_timeout=1", err, sizeof err);
	tap_ok(ret == -1 && strstr(err, "expected section.key=value") != NULL,
	    "-o without a section: '%s'", err);
	ret = config_load_opts(&cfg, "cache.attr_timeout", err, sizeof err);
	tap_ok(ret == -1 && strstr(err, "expected section.key=value") != NULL,
	    "-o without a value: '%s'", err);
	ret = config_load_opts(&cfg, "export:a.path=/x", err, sizeof err);
	tap_ok(ret == -1 &&
		strstr(err, "only [peer], [cache] and [security]") != NULL,
	    "-o refuses export sections: '%s'", err);
	ret = config_load_opts(&cfg, "bogus.x=1", err, sizeof err);
	tap_ok(ret == -1, "-o refuses unknown sections: '%s'", err);
	ret = config_load_opts(&cfg, "debug.clock_skew=x", err, sizeof err);
	tap_ok(ret == -1 &&
		strcmp(err,
		    "-o debug.clock_skew=x: "
		    "debug.clock_skew: bad duration 'x'") == 0,
	    "-o bad clock skew: '%s'", err);
	ret = config_load_opts(&cfg, "debug.other=1", err, sizeof err);
	tap_ok(ret == -1 &&
		strstr(err, "unknown key 'other' in [debug]") != NULL,
	    "-o unknown debug key: '%s'", err);
	config_free(&cfg);
}

/* -e DIR[:ro]: names, read-only flag, resolution and errors. */
static void
test_export_arg(void)
{
	struct config cfg;
	char err[CONFIG_ERRLEN], arg[PATH_MAX + 8], real[PATH_MAX];
	char cwd[PATH_MAX], want[PATH_MAX + 64], dir[PATH_MAX];
	int ret;

	snprintf(dir, sizeof dir, "%s", make_dir("exp"));
	make_dir("exp/sub");
	if (realpath(dir, real) == NULL)
		fatal("realpath");
	config_init(&cfg);
	ret = config_add_export_arg(&cfg, dir, err, sizeof err);
	tap_is_int(ret, 0, "-e DIR");
	snprintf(arg, sizeof arg, "%s/:ro", dir);
	ret = config_add_export_arg(&cfg, arg, err, sizeof err);
	tap_is_int(ret, 0, "-e DIR/:ro");
	snprintf(arg, sizeof arg, "%s:rw", dir);
	ret = config_add_export_arg(&cfg, arg, err, sizeof err);
	tap_is_int(ret, 0, "-e DIR:rw");
	tap_is_int((long long)cfg.nexports, 3, "three exports");
	if (cfg.nexports == 3) {
		tap_is_str(cfg.exports[0].name, "e0", "first is e0");
		tap_is_str(cfg.exports[1].name, "e1", "second is e1");
		tap_is_str(cfg.exports[0].path, real, "path resolved");
		tap_is_str(cfg.exports[1].path, real, "trailing / resolved");
		tap_is_str(cfg.exports[0].at, "/", "exported at /");
		tap_ok(!cfg.exports[0].read_only, "-e DIR is read-write");
		tap_ok(cfg.exports[1].read_only, "-e DIR:ro is read-only");
		tap_ok(!cfg.exports[2].read_only, "-e DIR:rw is read-write");
	}

	/* A relative directory is made absolute. */
	if (getcwd(cwd, sizeof cwd) == NULL || chdir(dir) == -1)
		fatal("chdir");
	ret = config_add_export_arg(&cfg, "sub:ro", err, sizeof err);
	if (chdir(cwd) == -1)
		fatal("chdir back");
	tap_is_int(ret, 0, "-e relative:ro");
	snprintf(arg, sizeof arg, "%s/sub", real);
	tap_is_str(cfg.nexports == 4 ? cfg.exports[3].path : NULL, arg,
	    "relative -e made absolute");

	snprintf(arg, sizeof arg, "%s/missing:ro", tmpdir);
	ret = config_add_export_arg(&cfg, arg, err, sizeof err);
	snprintf(want, sizeof want, "-e %s: No such file or directory", arg);
	tap_ok(ret == -1 && strcmp(err, want) == 0, "-e missing: '%s'", err);
	snprintf(arg, sizeof arg, "%s", write_ini(""));
	ret = config_add_export_arg(&cfg, arg, err, sizeof err);
	tap_ok(ret == -1 && strstr(err, "Not a directory") != NULL,
	    "-e a file: '%s'", err);
	ret = config_add_export_arg(&cfg, ":ro", err, sizeof err);
	tap_ok(ret == -1, "-e :ro refused: '%s'", err);
	tap_is_int((long long)cfg.nexports, 4, "failed -e adds nothing");
	tap_is_int(config_validate(&cfg, err, sizeof err), 0,
	    "-e exports validate");
	config_free(&cfg);

	/* -e names skip those a file already took. */
	ret = load_text(&cfg, "[export:e0]\npath = /\n", err, NULL);
	config_add_export_arg(&cfg, dir, err, sizeof err);
	tap_is_str(cfg.nexports == 2 ? cfg.exports[1].name : NULL, "e1",
	    "-e skips a name in use");
	config_free(&cfg);
}

/* config_validate refuses what no single key can tell. */
static void
test_validate(void)
{
	static const struct {
		const char *text;
		const char *want; /* a part of the message */
	} t[] = {
		{ "[export:a]\nread_only = yes\n",
		    "[export:a]: no path given" },
		{ "[cluster:c]\nat = /c\n", "[cluster:c]: no path given" },
		{ "[export:gone]\npath = /nonexistent/pufs/dir\n",
		    "[export:gone]: path '/nonexistent/pufs/dir': "
		    "No such file or directory" },
		{ "[export:f]\npath = /etc/passwd\n",
		    "[export:f]: path '/etc/passwd': Not a directory" },
		{ "[peer]\nheartbeat = 2\ndead_after = 2\n",
		    "peer.dead_after: 2 must be more than peer.heartbeat 2" },
		{ "[peer]\nheartbeat = 5\n", "peer.dead_after" },
		{ "[cache]\nblock_size = 16M\ncache_size = 32M\n",
		    "cache.cache_size: 32M is less than 4 blocks" },
		{ "[security]\nencrypt = yes\n",
		    "security.encrypt: yes needs security.key_file" },
		{ "[security]\nidentity = caller\n",
		    "security.identity: caller needs security.key_file" },
		{ "[security]\nkey_file = /nonexistent/key\n",
		    "security.key_file: '/nonexistent/key': No such file" },
		{ "[security]\nkey_file = /tmp\n",
		    "security.key_file: '/tmp' is not a regular file" },
		{ "[peer]\nlisten = 127.0.0.1:7070\nmetrics = 127.0.0.1:7070\n",
		    "peer.metrics: 127.0.0.1:7070 is peer.listen's address" },
	};
	struct config cfg;
	char err[CONFIG_ERRLEN];
	size_t i;
	int ret;

	for (i = 0; i < sizeof t / sizeof *t; i++) {
		ret = load_text(&cfg, t[i].text, err, NULL);
		tap_is_int(ret, 0, "validate case loads");
		ret = config_validate(&cfg, err, sizeof err);
		tap_ok(ret == -1 && strstr(err, t[i].want) != NULL,
		    "validate %zu: '%s'", i, err);
		config_free(&cfg);
	}

	/* Fields set directly are checked again. */
	config_init(&cfg);
	cfg.multicast_ttl = 300;
	ret = config_validate(&cfg, err, sizeof err);
	tap_ok(ret == -1 &&
		strcmp(err,
		    "peer.multicast_ttl: 300 is out of "
		    "range 0..255") == 0,
	    "validate ttl 300: '%s'", err);
	cfg.multicast_ttl = 1;
	cfg.max_handles = 0;
	ret = config_validate(&cfg, err, sizeof err);
	tap_ok(ret == -1 &&
		strcmp(err,
		    "peer.max_handles: 0 is out of "
		    "range 1..1048576") == 0,
	    "validate max_handles 0: '%s'", err);
	cfg.max_handles = 1024;
	free(cfg.multicast_group);
	cfg.multicast_group = xstrdup("192.168.1.1");
	ret = config_validate(&cfg, err, sizeof err);
	tap_ok(ret == -1 && strstr(err, "peer.multicast_group") != NULL,
	    "validate bad group: '%s'", err);
	free(cfg.multicast_group);
	cfg.multicast_group = xstrdup("ff02::1");
	free(cfg.name);
	cfg.name = xstrdup("has space");
	ret = config_validate(&cfg, err, sizeof err);
	tap_ok(ret == -1 &&
		strstr(err, "peer.name: bad name 'has space'") != NULL,
	    "validate bad name: '%s'", err);
	free(cfg.name);
	cfg.name = xstrdup("n@me");
	ret = config_validate(&cfg, err, sizeof err);
	tap_ok(ret == -1, "validate refuses '@' in a name: '%s'", err);
	free(cfg.name);
	cfg.name = xstrdup("ok");
	cfg.heartbeat = 3;
	ret = config_validate(&cfg, err, sizeof err);
	tap_ok(ret == -1 && strstr(err, "peer.dead_after") != NULL,
	    "validate dead_after <= heartbeat: '%s'", err);
	cfg.heartbeat = 1;
	cfg.block_size = 5000;
	ret = config_validate(&cfg, err, sizeof err);
	tap_ok(ret == -1 && strstr(err, "cache.block_size") != NULL,
	    "validate block_size not a power of two: '%s'", err);
	cfg.block_size = 4096;
	free(cfg.listen);
	cfg.listen = NULL;
	ret = config_validate(&cfg, err, sizeof err);
	tap_ok(ret == -1 && strcmp(err, "peer.listen: not set") == 0,
	    "validate listen unset: '%s'", err);
	cfg.listen = xstrdup("[::]:7070");
	ret = config_validate(&cfg, err, sizeof err);
	tap_ok(ret == 0, "validate passes again: '%s'", ret ? err : "");
	config_free(&cfg);

	/* A lone unicast peer, existing paths, clusters at /NAME. */
	make_dir("share");
	make_dir("www");
	{
		char text[4 * PATH_MAX];

		snprintf(text, sizeof text,
		    "[peer]\ndiscovery = unicast\n"
		    "[export:share]\npath = %s/share\nat = /pub\n"
		    "[cluster:www]\npath = %s/www\n"
		    "[security]\nkey_file = %s\nencrypt = yes\n",
		    tmpdir, tmpdir,
		    write_ini("0123456789abcdef0123456789abcdef!\n"));
		ret = load_text(&cfg, text, err, NULL);
		tap_is_int(ret, 0, "full config loads");
		ret = config_validate(&cfg, err, sizeof err);
		tap_ok(ret == 0,
		    "lone unicast peer with exports validates: "
		    "'%s'",
		    ret ? err : "");
		tap_is_str(cfg.nclusters == 1 ? cfg.clusters[0].at : NULL,
		    "/www", "cluster at defaults to /NAME");
		tap_ok(cfg.key_len == 33 && cfg.key != NULL &&
			memcmp(cfg.key, "0123456789abcdef0123456789abcdef!",
			    33) == 0,
		    "the key is the file without its newline");
		config_free(&cfg);
	}

	/* Duplicate export names made by hand. */
	config_init(&cfg);
	config_set(&cfg, "export:x", "path", "/", "test", err, sizeof err);
	config_set(&cfg, "export:y", "path", "/", "test", err, sizeof err);
	tap_is_int((long long)cfg.nexports, 2, "config_set makes exports");
	free(cfg.exports[1].name);
	cfg.exports[1].name = xstrdup("x");
	ret = config_validate(&cfg, err, sizeof err);
	tap_ok(ret == -1 && strstr(err, "duplicate export name 'x'") != NULL,
	    "validate duplicate export: '%s'", err);
	config_free(&cfg);
	config_free(&cfg); /* zeroed: a second free is harmless */
}

/* pufs.ini.example next to the sources loads. */
static void
test_example(void)
{
	struct config cfg;
	char err[CONFIG_ERRLEN], src[PATH_MAX], path[PATH_MAX + 32];
	const char *env;
	int ret;

	if ((env = getenv("PUFS_SRCDIR")) != NULL)
		snprintf(path, sizeof path, "%s/pufs.ini.example", env);
	else {
		snprintf(src, sizeof src, "%s", __FILE__);
		snprintf(path, sizeof path, "%s/../../pufs.ini.example",
		    dirname(src));
	}
	config_init(&cfg);
	ret = config_load_file(&cfg, path, err, sizeof err);
	tap_ok(ret == 0, "pufs.ini.example loads: '%s'", ret ? err : path);
	tap_ok(cfg.nexports >= 1 && cfg.nclusters >= 1,
	    "pufs.ini.example has an export and a cluster");
	config_free(&cfg);

	/* Its commented-out examples load too, once uncommented. */
	{
		char line[1024], *text = NULL;
		size_t len = 0;
		FILE *in, *out;
		int keys = 0;

		if ((in = fopen(path, "r")) == NULL)
			return;
		if ((out = open_memstream(&text, &len)) == NULL)
			fatal("open_memstream");
		while (fgets(line, sizeof line, in) != NULL) {
			/* "; text" is a comment, ";key = value" an example. */
			if (line[0] == ';' && islower((unsigned char)line[1])) {
				fputs(line + 1, out);
				keys++;
			} else
				fputs(line, out);
		}
		fclose(in);
		fclose(out);
		ret = load_text(&cfg, text, err, NULL);
		tap_ok(ret == 0 && keys > 0 && cfg.npeers > 0 &&
			cfg.key_file != NULL && cfg.multicast_interface != NULL,
		    "%d commented keys of pufs.ini.example load: '%s'", keys,
		    ret ? err : "");
		config_free(&cfg);
		free(text);
	}
}

/* nftw callback: remove one file or (empty by now) directory. */
static int
remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* Remove what the test made under tmpdir. */
static void
cleanup(void)
{
	if (nftw(tmpdir, remove_one, 16, FTW_DEPTH | FTW_PHYS) == -1)
		tap_ok(0, "remove %s", tmpdir);
}

int
main(void)
{
	if (mkdtemp(tmpdir) == NULL)
		fatal("mkdtemp");
	test_defaults();
	test_default_socket();
	test_every_key();
	test_sizes();
	test_durations();
	test_normalise_at();
	test_file_errors();
	test_keys();
	test_env_opts();
	test_skew();
	test_override_errors();
	test_export_arg();
	test_validate();
	test_recheck();
	test_example();
	cleanup();
	return tap_done();
}
