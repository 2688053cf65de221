#!/bin/bash
#
# demo.sh - the first Quick start command: install what pufs needs, build
# it into build/, and show one peer serving the union of two directories,
# one of them read-only.
#
# Run as root from anywhere in a clone of the repository.  With a terminal
# on standard input the union stays mounted until Ctrl-C; otherwise the
# demo stops as soon as it has shown everything.  On any exit the daemon is
# stopped by its PID with SIGTERM, its exit status and the unmount are
# checked, and the demo area under /tmp is removed.  Limits: one peer
# only; the multi-peer demo comes with multi-peer support.
#
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD=build
PUFS=$BUILD/daemon/pufs
DEMO=
MNT=
PID=

say() {
	printf '\n==> %s\n' "$*"
}

die() {
	echo "demo: $*" >&2
	exit 1
}

# Print the daemon's log, indented, if there is one.
show_log() {
	if [ -n "$DEMO" ] && [ -s "$DEMO/pufs.log" ]; then
		echo "--- $DEMO/pufs.log"
		sed 's/^/    /' "$DEMO/pufs.log"
		echo "---"
	elif [ -n "$DEMO" ]; then
		echo "(the log $DEMO/pufs.log is empty)"
	fi
}

# Stop the daemon by PID, check it exited 0 and unmounted, remove the area.
cleanup() {
	local rc=$? drc i
	set +e
	trap - INT TERM
	if [ -n "$PID" ]; then
		say "stopping pufs (PID $PID) with SIGTERM"
		kill -TERM "$PID" 2>/dev/null
		for ((i = 0; i < 150; i++)); do
			kill -0 "$PID" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$PID" 2>/dev/null; then
			echo "pufs did not exit within 15 s; sending SIGKILL"
			kill -KILL "$PID" 2>/dev/null
			rc=1
		fi
		wait "$PID"
		drc=$?
		if [ "$drc" -eq 0 ]; then
			echo "pufs exited with status 0"
		else
			echo "pufs exited with status $drc"
			show_log
			rc=1
		fi
	fi
	if [ -n "$MNT" ]; then
		if mountpoint -q "$MNT"; then
			echo "the union is still mounted on $MNT; unmounting it"
			fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT"
			rc=1
		else
			echo "the union is unmounted"
		fi
	fi
	if [ -n "$DEMO" ]; then
		rm -rf "$DEMO"
		echo "removed $DEMO"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$(id -u)" -ne 0 ]; then
	echo "demo: run as root: sudo $0" >&2
	exit 2
fi

# 1. Dependencies: every Debian package pufs needs, only what is missing.
if [ -f t/deps.sh ]; then
	say "installing missing dependencies (t/deps.sh)"
	sh t/deps.sh
else
	say "t/deps.sh not found; assuming the dependencies are installed"
fi

# 2. Build.
if [ -f "$BUILD/build.ninja" ]; then
	say "building (meson compile -C $BUILD)"
else
	say "configuring and building (meson setup $BUILD)"
	meson setup "$BUILD"
fi
meson compile -C "$BUILD"
[ -x "$PUFS" ] || die "the build did not produce $PUFS"

# 3. The demo area: two exports and a mount point.
DEMO=$(mktemp -d /tmp/pufs-demo.XXXX)
A=$DEMO/a
B=$DEMO/b
MNT=$DEMO/union
mkdir -p "$A/docs" "$B/docs" "$B/archive" "$MNT"
echo "meeting notes: ship the foundation" >"$A/notes.txt"
echo "how to run pufs" >"$A/docs/guide.txt"
echo "the reference manual" >"$B/docs/manual.txt"
echo "last year's figures" >"$B/archive/2025.txt"
echo "this export is read-only" >"$B/readme.txt"

# A TCP port on 127.0.0.1 that nothing listens on, from 7170 up.
PORT=7170
while command -v ss >/dev/null && ss -Hltn "sport = :$PORT" | grep -q .; do
	PORT=$((PORT + 1))
done

say "starting: $PUFS mount -e $A -e $B:ro $MNT"
# setsid keeps the daemon out of the terminal's process group, so that
# Ctrl-C reaches this script and the daemon is stopped by SIGTERM below.
setsid "$PUFS" mount -e "$A" -e "$B:ro" \
    -o "peer.discovery=unicast,peer.listen=127.0.0.1:$PORT,peer.control_socket=$DEMO/ctl.sock" \
    "$MNT" 2>"$DEMO/pufs.log" &
PID=$!

for ((i = 0; i < 150; i++)); do
	grep -q "ready: mounted" "$DEMO/pufs.log" && break
	if ! kill -0 "$PID" 2>/dev/null; then
		show_log
		die "pufs exited before it was ready"
	fi
	sleep 0.1
done
if ! grep -q "ready: mounted" "$DEMO/pufs.log"; then
	show_log
	die "pufs was not ready within 15 s"
fi
grep "ready: mounted" "$DEMO/pufs.log"

say "the union of $A and $B (read-only): ls -la $MNT"
ls -la "$MNT"

say "docs/ exists in both exports and is merged: ls -la $MNT/docs"
ls -la "$MNT/docs"

say "writing $MNT/hello.txt through the mount"
echo "written through the union" >"$MNT/hello.txt"
cat "$MNT/hello.txt"
[ -f "$A/hello.txt" ] || die "hello.txt did not land in $A"
echo "it landed in the writable export:"
ls -l "$A/hello.txt"

say "appending to $MNT/readme.txt, which lives in the read-only export"
if err=$( { echo "change" >>"$MNT/readme.txt"; } 2>&1 ); then
	die "the write to a read-only export succeeded"
fi
echo "$err"
case $err in
*"Read-only file system"*) echo "refused, as it should be" ;;
*) die "expected \"Read-only file system\"" ;;
esac

say "$PUFS status -s $DEMO/ctl.sock"
"$PUFS" status -s "$DEMO/ctl.sock"

if [ -t 0 ]; then
	STOP=0
	trap 'STOP=1' INT
	say "the union is mounted at $MNT; press Ctrl-C to stop"
	echo "    (the exports are $A and $B, the log is $DEMO/pufs.log)"
	while [ "$STOP" -eq 0 ]; do
		if ! kill -0 "$PID" 2>/dev/null; then
			echo "pufs exited by itself"
			break
		fi
		# Ctrl-C kills this sleep too; that is the way out, not an error.
		sleep 0.5 || true
	done
fi
