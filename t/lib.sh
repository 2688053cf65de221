# t/lib.sh - a small TAP test library for the pufs integration tests.
#
# Sourced by every t/tNNNN-*.sh script.  Each test is one named assertion
# run in its own subshell (an && chain, traced with set -x, output
# captured and shown only on failure), with cleanup registered by
# test_when_finished.  Daemons are started with pufs_start and awaited by
# their "ready: mounted" line; a global trap unmounts every mount and
# stops every daemon this script made, by PID, and removes the trash
# directory.  Limits: tests of one script run one after another; state
# shared between tests lives in files, not shell variables, because each
# test body runs in a subshell.
#
# Environment:
#   PUFS              the pufs binary under test (required)
#   PUFS_SRCDIR       the source tree (optional)
#   PUFS_TEST_RAW=1   stand-in mode for developing the tests: pufs_start
#                     bind-mounts the -e directory instead of running pufs
#   PUFS_TEST_VERBOSE=1  show every test's output, not only failures'
#   PUFS_TEST_DEBUG=1    start daemons with -d
#   PUFS_TEST_KEEP=1     keep the trash directory
#   TEST_TIMEOUT      seconds one test may run (default 120)

test_count=0
test_failed=0
TEST_TIMEOUT=${TEST_TIMEOUT:-120}
PS4='+ '
export LC_ALL=C TZ=UTC

# Print a TAP bail-out line and leave: a prerequisite is missing or the
# script itself is broken.  Nothing is skipped silently.
bail_out () {
	echo "Bail out! $*"
	exit 1
}

TEST_NAME=$(basename "$0" .sh)
case $TEST_NAME in
t[0-9][0-9][0-9][0-9]-*)
	TEST_NUMBER=$((10#${TEST_NAME:1:4}))
	;;
*)
	bail_out "test script name $TEST_NAME is not tNNNN-name.sh"
	;;
esac
# Ten TCP ports per script, below 65536, never shared between scripts
# numbered below 4800 (and the scripts run one at a time).
PORT_BASE=$((17000 + TEST_NUMBER % 4800 * 10))

if [ "${PUFS_TEST_RAW:-0}" = 1 ]; then
	PUFS=${PUFS:-false}
else
	[ -n "${PUFS:-}" ] || bail_out "PUFS is not set (path of the pufs binary)"
	case $PUFS in
	/*) ;;
	*) PUFS=$(cd "$(dirname "$PUFS")" && pwd)/$(basename "$PUFS") ;;
	esac
	[ -x "$PUFS" ] || bail_out "PUFS=$PUFS is not executable"
fi
[ "$(id -u)" = 0 ] || bail_out "the integration tests run as root"
[ -c /dev/fuse ] || bail_out "no /dev/fuse"
PYTHON=${PYTHON:-/usr/bin/python3}
[ -x "$PYTHON" ] || PYTHON=$(command -v python3) ||
	bail_out "no python3"

# Fail loudly unless every named command is installed.
test_require () {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 ||
			bail_out "$TEST_NAME needs $c, which is not installed"
	done
}

test_require fusermount3 mount umount ps timeout awk

TRASH=$(mktemp -d "/tmp/pufs-$TEST_NAME.XXXXXX") ||
	bail_out "cannot make a trash directory"
TRASH=$(cd "$TRASH" && pwd -P)
_LIB=$TRASH/.lib
mkdir "$_LIB" || bail_out "cannot make $_LIB"
echo 0 >"$_LIB/nport"
cd "$TRASH" || bail_out "cannot enter $TRASH"

# Say whether DIR is a mount point in this mount namespace.
is_mounted () {
	local - ; set +x
	awk -v d="$1" '$5 == d { f = 1 } END { exit !f }' /proc/self/mountinfo
}

# The current time in microseconds.
_now_us () {
	_clock
	echo "$_now"
}

# Set _now to the current time in microseconds, with no subshell: the
# polling loops here use it, since a SIGINT that lands in a forked
# child before it drops the script's trap is taken by the child, and
# bash then thinks the interrupt was handled and does not stop.
_clock () {
	local t=$EPOCHREALTIME
	_now=$(( ${t%.*} * 1000000 + 10#${t#*.} ))
}

# Turn seconds (decimals allowed) into microseconds.
_seconds_us () {
	awk -v t="$1" 'BEGIN { printf "%d\n", t * 1000000 }'
}

# wait_for 'COMMANDS' [TIMEOUT]: poll until COMMANDS succeed; fail with a
# message after TIMEOUT seconds (default 10).
wait_for () {
	local - ; set +x
	local cond=$1 timeout=${2:-10} end
	_clock
	end=$(( _now + $(_seconds_us "$timeout") ))
	while :; do
		if eval "$cond" >/dev/null 2>&1; then
			return 0
		fi
		_clock
		if [ "$_now" -ge "$end" ]; then
			echo "wait_for: timed out after ${timeout}s: $cond"
			return 1
		fi
		sleep 0.02
	done
}

# test_when_finished 'COMMANDS': run COMMANDS when the current test ends,
# whether it passed or not; the last registered runs first.
test_when_finished () {
	local - ; set +x
	local n
	n=$(ls "$_LIB" | grep -c '^cleanup\.')
	printf '%s\n' "$*" >"$_LIB/cleanup.$(printf %04d "$n")"
}

# test_cmp EXPECTED ACTUAL: the two files are equal, or show the diff.
test_cmp () {
	local - ; set +x
	diff -u "$1" "$2"
}

# test_expect_code CODE COMMAND...: COMMAND exits with status CODE.
test_expect_code () {
	local - ; set +x
	local want=$1 rc
	shift
	"$@"
	rc=$?
	if [ "$rc" != "$want" ]; then
		echo "test_expect_code: '$*' exited $rc, wanted $want"
		return 1
	fi
}

# Fail unless PATH is a regular file.
test_path_is_file () {
	local - ; set +x
	[ -f "$1" ] || { echo "not a file: $1"; ls -la "$(dirname "$1")"; return 1; }
}

# Fail unless PATH is a directory.
test_path_is_dir () {
	local - ; set +x
	[ -d "$1" ] || { echo "not a directory: $1"; return 1; }
}

# Fail unless nothing (not even a dangling symlink) exists at PATH.
test_path_is_missing () {
	local - ; set +x
	if [ -e "$1" ] || [ -L "$1" ]; then
		echo "exists, should not: $1"
		ls -la "$1"
		return 1
	fi
}

# test_output EXPECTED COMMAND...: COMMAND prints exactly EXPECTED.
test_output () {
	local - ; set +x
	local want=$1 got
	shift
	got=$("$@") || { echo "failed: $*"; return 1; }
	if [ "$got" != "$want" ]; then
		echo "'$*' printed:"
		printf '%s\n' "$got"
		echo "wanted:"
		printf '%s\n' "$want"
		return 1
	fi
}

# Write the helper that performs one system call and names its errno.
cat >"$_LIB/op.py" <<'EOF'
# op.py OP ARGS...: perform one system call; print its result ("ok" if it
# has none) or the errno name (EROFS, ENOENT, ...) and exit 1.
import ctypes, errno, os, stat, sys

libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100

def check(r):
    if r != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))

def renameat2(a, b, flags):
    check(libc.renameat2(AT_FDCWD, a.encode(), AT_FDCWD, b.encode(),
                         ctypes.c_uint(flags)))

FLAGS = {'rdonly': os.O_RDONLY, 'wronly': os.O_WRONLY, 'rdwr': os.O_RDWR,
         'creat': os.O_CREAT, 'excl': os.O_EXCL, 'trunc': os.O_TRUNC,
         'append': os.O_APPEND, 'directory': os.O_DIRECTORY,
         'nofollow': os.O_NOFOLLOW, 'path': os.O_PATH}

def flags(s):
    f = 0
    for w in s.split('|'):
        f |= FLAGS[w]
    return f

def op_open(p, fl='rdonly', mode='644'):
    os.close(os.open(p, flags(fl), int(mode, 8)))

def op_write(p, data, fl='wronly'):
    fd = os.open(p, flags(fl))
    try:
        os.write(fd, data.encode())
    finally:
        os.close(fd)

def op_read(p):
    with open(p, 'rb') as f:
        return f.read().decode('latin-1')

def op_ftruncate(p, n):
    fd = os.open(p, os.O_RDWR)
    try:
        os.ftruncate(fd, int(n))
    finally:
        os.close(fd)

def op_fallocate(p, off, n):
    fd = os.open(p, os.O_RDWR)
    try:
        os.posix_fallocate(fd, int(off), int(n))
    finally:
        os.close(fd)

def op_access(p, m):
    mode = 0
    for c in m:
        mode |= {'r': os.R_OK, 'w': os.W_OK, 'x': os.X_OK, 'f': os.F_OK}[c]
    check(libc.access(p.encode(), mode))

def op_mknod(p, kind, major='0', minor='0'):
    if kind == 'fifo':
        os.mknod(p, stat.S_IFIFO | 0o644)
    elif kind == 'chr':
        os.mknod(p, stat.S_IFCHR | 0o644, os.makedev(int(major), int(minor)))
    elif kind == 'blk':
        os.mknod(p, stat.S_IFBLK | 0o644, os.makedev(int(major), int(minor)))
    elif kind == 'reg':
        os.mknod(p, stat.S_IFREG | 0o644)
    else:
        raise SystemExit('op.py: unknown mknod kind ' + kind)

def op_seek(p, whence, off):
    fd = os.open(p, os.O_RDONLY)
    try:
        w = {'data': os.SEEK_DATA, 'hole': os.SEEK_HOLE}[whence]
        return os.lseek(fd, int(off), w)
    finally:
        os.close(fd)

def op_setxattr(p, name, value, fl='0'):
    f = {'0': 0, 'create': os.XATTR_CREATE, 'replace': os.XATTR_REPLACE}[fl]
    os.setxattr(p, name, value.encode(), f, follow_symlinks=False)

OPS = {
    'open': op_open,
    'write': op_write,
    'read': op_read,
    'mkdir': lambda p, m='755': os.mkdir(p, int(m, 8)),
    'rmdir': os.rmdir,
    'unlink': os.unlink,
    'rename': os.rename,
    'rename_noreplace': lambda a, b: renameat2(a, b, 1),
    'rename_exchange': lambda a, b: renameat2(a, b, 2),
    'chmod': lambda p, m: os.chmod(p, int(m, 8)),
    'chown': lambda p, u, g: os.chown(p, int(u), int(g)),
    'lchown': lambda p, u, g: os.lchown(p, int(u), int(g)),
    'truncate': lambda p, n: os.truncate(p, int(n)),
    'ftruncate': op_ftruncate,
    'fallocate': op_fallocate,
    'utime': lambda p, t: os.utime(p, (int(t), int(t))),
    'lutime': lambda p, t: os.utime(p, (int(t), int(t)),
                                    follow_symlinks=False),
    'symlink': lambda t, p: os.symlink(t, p),
    'link': lambda a, b: os.link(a, b, follow_symlinks=False),
    'link_follow': lambda a, b: check(libc.linkat(AT_FDCWD, a.encode(),
                                      AT_FDCWD, b.encode(), 0x400)),
    'setxattr': op_setxattr,
    'getxattr': lambda p, n: os.getxattr(p, n, follow_symlinks=False)
                               .decode('latin-1'),
    'removexattr': lambda p, n: os.removexattr(p, n, follow_symlinks=False),
    'listxattr': lambda p: ' '.join(sorted(os.listxattr(
                                    p, follow_symlinks=False))),
    'mknod': op_mknod,
    'readlink': os.readlink,
    'stat': lambda p: os.stat(p).st_size,
    'lstat': lambda p: os.lstat(p).st_size,
    'listdir': lambda p: len(os.listdir(p)),
    'access': op_access,
    'seek': op_seek,
}

try:
    r = OPS[sys.argv[1]](*sys.argv[2:])
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
    sys.exit(1)
print('ok' if r is None else r)
EOF

# pyop OP ARGS...: one system call through op.py (see there).
pyop () {
	"$PYTHON" "$_LIB/op.py" "$@"
}

# test_errno ERR[,ERR...] OP ARGS...: the system call fails with one of
# the named errno values ("ok" names success).
test_errno () {
	local - ; set +x
	local want=$1 got
	shift
	got=$(pyop "$@")
	case ",$want," in
	*",$got,"*)
		return 0
		;;
	esac
	echo "test_errno: '$*' gave '$got', wanted $want"
	return 1
}

# Allocate the next TCP port of this script.
_next_port () {
	local n
	n=$(cat "$_LIB/nport")
	[ "$n" -lt 10 ] || { echo "more than 10 ports in one script" >&2; return 1; }
	echo $((n + 1)) >"$_LIB/nport"
	echo $((PORT_BASE + n))
}

# pufs_opts NAME: print the -o value every daemon of the tests gets: its
# own name, control socket and port, unicast discovery (no multicast),
# and the clock that pufs_advance moves.
pufs_opts () {
	local port
	if [ -e "$_LIB/port.$1" ]; then
		port=$(cat "$_LIB/port.$1")
	else
		port=$(_next_port) || return 1
		echo "$port" >"$_LIB/port.$1"
	fi
	echo "peer.name=$1,peer.control_socket=$TRASH/$1.sock,peer.discovery=unicast,peer.listen=127.0.0.1:$port,debug.time_control=on"
}

# pufs_advance SOCKET MS: move the clock of the daemon answering at
# SOCKET forward by MS milliseconds and run its timers that are then due
# (cache expiry, call deadlines, trap flushes, heartbeats), instead of
# sleeping.  The kernel's own caches keep real time: see fuse_asks.
pufs_advance () {
	"$PUFS" debug -s "$1" advance "$2" >/dev/null
}

# fuse_asks SOCKET PATH: a stat of PATH reaches the daemon at SOCKET (its
# FUSE request count grows): the kernel's cached entry and attributes of
# PATH have expired.  Used as wait_for "fuse_asks ..." where a test must
# know the kernel asks again.
fuse_asks () {
	local r0 r1
	r0=$(_fuse_requests "$1") && stat "$2" >/dev/null &&
	r1=$(_fuse_requests "$1") && [ "$r1" -gt "$r0" ]
}

_fuse_requests () {
	"$PUFS" status -s "$1" --json |
	"$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["fuse"]["requests"])'
}

# pufs_port NAME, pufs_sock NAME, pufs_log NAME, pufs_pid NAME, pufs_mnt
# NAME: what pufs_start recorded for the daemon NAME.
pufs_port () { cat "$_LIB/port.$1"; }
pufs_sock () { echo "$TRASH/$1.sock"; }
pufs_log () { echo "$TRASH/$1.log"; }
pufs_pid () { cat "$_LIB/d.$1.pid"; }
pufs_mnt () { cat "$_LIB/d.$1.mnt"; }

# Bind-mount the -e directory of ARGS onto MNT, the stand-in for pufs in
# PUFS_TEST_RAW=1 mode.
_raw_start () {
	local name=$1 mnt=$2 dir="" ro=""
	shift 2
	while [ $# -gt 0 ]; do
		case $1 in
		-e)
			[ -z "$dir" ] || { echo "raw mode: one -e only"; return 1; }
			dir=$2
			shift
			;;
		-c)
			echo "raw mode cannot emulate -c"
			return 1
			;;
		-o)
			shift
			;;
		esac
		shift
	done
	case $dir in
	*:ro) dir=${dir%:ro}; ro=1 ;;
	esac
	[ -n "$dir" ] || { echo "raw mode needs -e"; return 1; }
	mount --bind "$dir" "$mnt" || return 1
	echo "$mnt" >>"$_LIB/mounts"
	if [ -n "$ro" ]; then
		mount -o remount,bind,ro "$mnt" || return 1
	fi
	echo raw >"$_LIB/d.$name.pid"
	echo "raw: ready: mounted $mnt" >>"$TRASH/$name.log"
}

# pufs_start NAME MNT ARGS...: start "pufs mount ARGS MNT" in the
# background with the test options, stderr to NAME.log, and wait (10 s at
# most) for its ready line; fail with the log if it died or timed out.
pufs_start () {
	local - ; set +x
	local name=$1 mnt=$2 opts debug="" pid
	shift 2
	if [ -e "$_LIB/d.$name.pid" ]; then
		echo "pufs_start: $name is running already"
		return 1
	fi
	mkdir -p "$mnt" || return 1
	mnt=$(cd "$mnt" && pwd -P) || return 1
	opts=$(pufs_opts "$name") || return 1
	echo "$mnt" >"$_LIB/d.$name.mnt"
	rm -f "$_LIB/d.$name.rc"
	if [ "${PUFS_TEST_RAW:-0}" = 1 ]; then
		_raw_start "$name" "$mnt" "$@"
		return
	fi
	[ "${PUFS_TEST_DEBUG:-0}" = 1 ] && debug=-d
	echo "$mnt" >>"$_LIB/mounts"
	# The launcher restores default dispositions (a background job of a
	# script starts with SIGINT ignored), records the daemon's PID and
	# execs it; the wrapper records the exit status.
	(
		"$PYTHON" -c '
import os, signal, sys
for s in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP,
          signal.SIGPIPE):
    signal.signal(s, signal.SIG_DFL)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write("%d\n" % os.getpid())
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
os.execv(sys.argv[2], sys.argv[2:])
' "$_LIB/d.$name.pid" "$PUFS" mount -o "$opts" $debug "$@" "$mnt" \
			>>"$TRASH/$name.log" 2>&1 </dev/null
		echo $? >"$_LIB/d.$name.rc.tmp"
		mv "$_LIB/d.$name.rc.tmp" "$_LIB/d.$name.rc"
	) >/dev/null 2>&1 </dev/null &
	echo $! >"$_LIB/d.$name.wpid"
	if ! wait_for "test -s '$_LIB/d.$name.pid' || test -e '$_LIB/d.$name.rc'" 10 ||
	   ! wait_for "grep -q 'ready: mounted' '$TRASH/$name.log' || test -e '$_LIB/d.$name.rc'" 10; then
		echo "pufs_start: $name: no ready line within 10s; log:"
		cat "$TRASH/$name.log"
		return 1
	fi
	if [ -e "$_LIB/d.$name.rc" ]; then
		echo "pufs_start: $name exited with status $(cat "$_LIB/d.$name.rc") before ready; log:"
		cat "$TRASH/$name.log"
		rm -f "$_LIB/d.$name.pid"
		return 1
	fi
	if ! is_mounted "$mnt"; then
		echo "pufs_start: $name said ready but $mnt is not mounted; log:"
		cat "$TRASH/$name.log"
		return 1
	fi
}

# pufs_wait_exit NAME [TIMEOUT]: wait for the daemon NAME to exit and
# print its exit status; fail if it is still running after TIMEOUT (10 s).
pufs_wait_exit () {
	local - ; set +x
	local name=$1 timeout=${2:-10}
	if [ "$(cat "$_LIB/d.$name.pid")" = raw ]; then
		echo 0
		return 0
	fi
	wait_for "test -e '$_LIB/d.$name.rc'" "$timeout" >&2 || return 1
	cat "$_LIB/d.$name.rc"
}

# pufs_signal NAME SIG: send SIG to the daemon NAME (by its PID).
pufs_signal () {
	local pid
	pid=$(cat "$_LIB/d.$1.pid") || return 1
	if [ "$pid" = raw ]; then
		umount "$(cat "$_LIB/d.$1.mnt")"
		return
	fi
	kill -s "$2" "$pid"
}

# pufs_stop NAME [SIG]: stop the daemon NAME with SIGTERM (or SIG), check
# that it exits 0 within 10 s and that its mount is gone.
pufs_stop () {
	local - ; set +x
	local name=$1 sig=${2:-TERM} rc mnt
	mnt=$(cat "$_LIB/d.$name.mnt") || return 1
	pufs_signal "$name" "$sig" || return 1
	if ! rc=$(pufs_wait_exit "$name" 10); then
		echo "pufs_stop: $name did not exit within 10s of SIG$sig; log:"
		tail -n 30 "$TRASH/$name.log"
		return 1
	fi
	mv "$_LIB/d.$name.pid" "$_LIB/d.$name.stopped"
	if [ "$rc" != 0 ]; then
		echo "pufs_stop: $name exited with status $rc after SIG$sig; log:"
		tail -n 30 "$TRASH/$name.log"
		return 1
	fi
	if is_mounted "$mnt"; then
		echo "pufs_stop: $name exited but $mnt is still mounted"
		return 1
	fi
}

# pufs_try CODE ARGS...: run "$PUFS ARGS" (for at most 20 s) and expect
# exit status CODE; its output is left in the files out and err.
pufs_try () {
	local want=$1 rc last
	shift
	for last in "$@"; do :; done
	timeout -k 5 20 "$PUFS" "$@" >out 2>err </dev/null
	rc=$?
	if [ $rc = 124 ] || [ $rc = 137 ]; then
		echo "pufs_try: '$PUFS $*' still ran after 20 s; killed"
		if [ -d "$last" ] && is_mounted "$(cd "$last" && pwd -P)"; then
			umount -l "$last"
		fi
	fi
	if [ "$rc" != "$want" ]; then
		echo "pufs_try: '$PUFS $*' exited $rc, wanted $want"
		echo "stdout:"; cat out
		echo "stderr:"; cat err
		return 1
	fi
}

# pufs_try_mount CODE NAME ARGS... MNT: pufs_try CODE mount with the test
# options of NAME (its own socket and port, no multicast).
pufs_try_mount () {
	local want=$1 opts
	opts=$(pufs_opts "$2") || return 1
	shift 2
	pufs_try "$want" mount -o "$opts" "$@"
}

# List every descendant of PID, deepest last.
_descendants () {
	ps -e -o pid=,ppid= | awk -v root="$1" '
		{ parent[$1] = $2; pids[NR] = $1 }
		END {
			seen[root] = 1
			do {
				more = 0
				for (i = 1; i <= NR; i++) {
					p = pids[i]
					if (!(p in seen) && (parent[p] in seen)) {
						seen[p] = 1; order[++n] = p; more = 1
					}
				}
			} while (more)
			for (i = 1; i <= n; i++) print order[i]
		}'
}

# Kill the test subshell PID and what it started, sparing daemons and
# their wrappers (the global cleanup stops those gracefully).
_kill_test () {
	local pid=$1 p f spare=" "
	for f in "$_LIB"/d.*.pid "$_LIB"/d.*.wpid; do
		[ -e "$f" ] && spare="$spare$(cat "$f") "
	done
	for p in $pid $(_descendants "$pid"); do
		case $spare in *" $p "*) continue ;; esac
		kill -KILL "$p" 2>/dev/null
	done
}

# Remember how long each daemon log is, to show what a failing test added.
_snapshot_logs () {
	local f
	rm -f "$_LIB"/logsize.*
	for f in "$TRASH"/*.log; do
		[ -e "$f" ] || continue
		stat -c %s "$f" >"$_LIB/logsize.$(basename "$f")"
	done
}

# Print the log lines daemons wrote during the failed test.
_show_logs () {
	local f size
	for f in "$TRASH"/*.log; do
		[ -e "$f" ] || continue
		size=0
		[ -e "$_LIB/logsize.$(basename "$f")" ] &&
			size=$(cat "$_LIB/logsize.$(basename "$f")")
		[ "$(stat -c %s "$f")" -gt "$size" ] || continue
		echo "--- $(basename "$f") during this test (last 40 lines) ---"
		tail -c +$((size + 1)) "$f" | tail -n 40
	done
}

# Print FILE as TAP diagnostics, at most the last 200 lines.
_diag () {
	local n
	n=$(wc -l <"$1")
	[ "$n" -gt 200 ] && echo "# ... $((n - 200)) lines cut ..."
	tail -n 200 "$1" | sed 's/^/# /'
}

# test_expect_success 'DESCRIPTION' 'COMMANDS': one test.  COMMANDS run
# in a subshell in the trash directory with set -x; the test passes if
# they exit 0 within TEST_TIMEOUT seconds and their cleanups succeed.
test_expect_success () {
	[ $# = 2 ] || bail_out "test_expect_success needs 2 arguments, got $#: $*"
	local desc=$1 body=$2 pid rc end timedout="" f
	test_count=$((test_count + 1))
	rm -f "$_LIB"/cleanup.*
	_snapshot_logs
	(
		trap - EXIT INT TERM
		cd "$TRASH" || exit 1
		set -x
		eval "$body"
	) >"$_LIB/out" 2>&1 </dev/null &
	pid=$!
	_clock
	end=$(( _now + TEST_TIMEOUT * 1000000 ))
	while kill -0 "$pid" 2>/dev/null; do
		_clock
		if [ "$_now" -ge "$end" ]; then
			_kill_test "$pid"
			timedout=1
			break
		fi
		sleep 0.02
	done
	wait "$pid"
	rc=$?
	[ -n "$timedout" ] &&
		echo "test timed out after ${TEST_TIMEOUT}s" >>"$_LIB/out"
	for f in $(ls -r "$_LIB" | grep '^cleanup\.'); do
		echo "--- cleanup: $(cat "$_LIB/$f")" >>"$_LIB/out"
		(
			trap - EXIT INT TERM
			cd "$TRASH" || exit 1
			set -x
			eval "$(cat "$_LIB/$f")"
		) >>"$_LIB/out" 2>&1 </dev/null || {
			echo "cleanup failed" >>"$_LIB/out"
			rc=1
		}
	done
	rm -f "$_LIB"/cleanup.*
	if [ "$rc" = 0 ] && [ -z "$timedout" ]; then
		echo "ok $test_count - $desc"
		[ "${PUFS_TEST_VERBOSE:-0}" = 1 ] && _diag "$_LIB/out"
	else
		test_failed=$((test_failed + 1))
		echo "not ok $test_count - $desc"
		_show_logs >>"$_LIB/out"
		_diag "$_LIB/out"
	fi
	return 0
}

# Stop every daemon still running (SIGTERM, then SIGKILL after 10 s),
# unmount what is left and remove the trash directory.  Returns 1 if a
# daemon had to be killed or a mount could not be removed.
_lib_cleanup () {
	local f pid name mnt n bad=0 end alive
	set +x
	for f in "$_LIB"/d.*.pid; do
		[ -e "$f" ] || continue
		pid=$(cat "$f")
		name=${f#"$_LIB"/d.}
		name=${name%.pid}
		if [ "$pid" = raw ]; then
			umount "$(cat "$_LIB/d.$name.mnt")" 2>/dev/null
			continue
		fi
		kill -TERM "$pid" 2>/dev/null
	done
	end=$(( $(_now_us) + 10000000 ))
	while :; do
		alive=""
		for f in "$_LIB"/d.*.pid; do
			[ -e "$f" ] || continue
			pid=$(cat "$f")
			[ "$pid" = raw ] && continue
			kill -0 "$pid" 2>/dev/null && alive="$alive $pid"
		done
		[ -z "$alive" ] && break
		if [ "$(_now_us)" -ge "$end" ]; then
			echo "# cleanup: daemons$alive ignored SIGTERM for 10s; killing"
			for pid in $alive; do
				kill -KILL "$pid" 2>/dev/null
			done
			# SIGKILL takes effect once the process leaves the
			# kernel: wait (5 s at most) until it is gone or a
			# zombie, so that no caller sees it alive after us.
			end=$(( $(_now_us) + 5000000 ))
			for pid in $alive; do
				while [ -e "/proc/$pid" ] &&
				    [ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)" != Z ] &&
				    [ "$(_now_us)" -lt "$end" ]; do
					sleep 0.05
				done
			done
			bad=1
			break
		fi
		sleep 0.05
	done
	if [ -e "$_LIB/mounts" ]; then
		for mnt in $(sort -u "$_LIB/mounts"); do
			for n in 1 2 3 4 5; do
				is_mounted "$mnt" || break
				fusermount3 -u -z "$mnt" 2>/dev/null ||
					umount -l "$mnt" 2>/dev/null
			done
			if is_mounted "$mnt"; then
				echo "# cleanup: cannot unmount $mnt"
				bad=1
			fi
		done
	fi
	cd /
	if [ "${PUFS_TEST_KEEP:-0}" = 1 ]; then
		echo "# trash kept in $TRASH"
	else
		rm -rf --one-file-system "$TRASH"
	fi
	return $bad
}

# The EXIT trap: clean up and make the exit status say if anything failed.
_lib_exit () {
	local rc=$?
	trap - EXIT INT TERM PIPE
	_lib_cleanup 2>/dev/null || rc=1
	exit $rc
}

trap _lib_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 141' PIPE

# test_done: print the TAP plan and exit 1 if a test failed.
test_done () {
	echo "1..$test_count"
	if [ "$test_failed" = 0 ]; then
		echo "# passed all $test_count tests"
		exit 0
	fi
	echo "# failed $test_failed of $test_count tests"
	exit 1
}
