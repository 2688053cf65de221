#!/bin/bash
#
# demo.sh - the first Quick start command: install what pufs needs, build
# it into build/, and show three peers on this machine (alpha, beta and
# gamma, on 127.0.0.1) each serving its own directory and each mounting
# the same union of all three.
#
# Run as root from anywhere in a clone of the repository.  With a terminal
# on standard input the union stays mounted until Ctrl-C; otherwise the
# demo stops as soon as it has shown everything.  On any exit every daemon
# is stopped by its PID with SIGTERM, its exit status and the unmount are
# checked, and the demo area under /tmp is removed.
#
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD=build
PUFS=$BUILD/daemon/pufs
DEMO=
NAMES=(alpha beta gamma)
PIDS=()

say() {
	printf '\n==> %s\n' "$*"
}

die() {
	echo "demo: $*" >&2
	exit 1
}

# Print a peer's log, indented, if there is one.
show_log() {
	local log=$DEMO/$1/pufs.log

	if [ -s "$log" ]; then
		echo "--- $log"
		sed 's/^/    /' "$log"
		echo "---"
	else
		echo "(the log $log is empty)"
	fi
}

# Stop every daemon by PID, check each exited 0 and unmounted, remove
# the area.
cleanup() {
	local rc=$? drc i k name mnt
	set +e
	trap - INT TERM
	for k in "${!PIDS[@]}"; do
		name=${NAMES[$k]}
		say "stopping $name (PID ${PIDS[$k]}) with SIGTERM"
		kill -TERM "${PIDS[$k]}" 2>/dev/null
	done
	for k in "${!PIDS[@]}"; do
		name=${NAMES[$k]}
		mnt=$DEMO/$name/union
		for ((i = 0; i < 150; i++)); do
			kill -0 "${PIDS[$k]}" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "${PIDS[$k]}" 2>/dev/null; then
			echo "$name did not exit within 15 s; sending SIGKILL"
			kill -KILL "${PIDS[$k]}" 2>/dev/null
			rc=1
		fi
		wait "${PIDS[$k]}"
		drc=$?
		if [ "$drc" -eq 0 ]; then
			echo "$name exited with status 0"
		else
			echo "$name exited with status $drc"
			show_log "$name"
			rc=1
		fi
		if mountpoint -q "$mnt"; then
			echo "$mnt is still mounted; unmounting it"
			fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt"
			rc=1
		fi
	done
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
	# FUSE mounts and package installs need root: ask sudo, if any.
	command -v sudo >/dev/null 2>&1 && exec sudo "$0" "$@"
	echo "demo: run as root" >&2
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

# 3. The demo area: one export and one mount point per peer.
DEMO=$(mktemp -d /tmp/pufs-demo.XXXX)
for name in "${NAMES[@]}"; do
	mkdir -p "$DEMO/$name/export/docs" "$DEMO/$name/union"
done
A=$DEMO/alpha/export B=$DEMO/beta/export G=$DEMO/gamma/export
echo "meeting notes: ship the peers" >"$A/notes.txt"
echo "how to run pufs" >"$A/docs/guide.txt"
echo "the reference manual" >"$B/docs/manual.txt"
echo "beta's own readme" >"$B/readme.txt"
echo "gamma's own readme" >"$G/readme.txt"
mkdir -p "$G/projects"
echo "gamma holds the projects" >"$G/projects/plan.txt"

# Three free TCP ports on 127.0.0.1, from 7170 up.
PORTS=()
port=7170
while [ "${#PORTS[@]}" -lt 3 ]; do
	if ! { command -v ss >/dev/null &&
	    ss -Hltn "sport = :$port" | grep -q .; }; then
		PORTS+=("$port")
	fi
	port=$((port + 1))
done

for k in 0 1 2; do
	name=${NAMES[$k]}
	others=
	for j in 0 1 2; do
		[ "$j" = "$k" ] || others="$others 127.0.0.1:${PORTS[$j]}"
	done
	say "starting $name: $PUFS mount -e $DEMO/$name/export $DEMO/$name/union"
	# setsid keeps the daemons out of the terminal's process group, so
	# that Ctrl-C reaches this script and they are stopped by SIGTERM.
	setsid "$PUFS" mount -e "$DEMO/$name/export" \
	    -o "peer.name=$name,peer.discovery=unicast,peer.listen=127.0.0.1:${PORTS[$k]}" \
	    -o "peer.peers=${others# },peer.control_socket=$DEMO/$name/ctl.sock" \
	    "$DEMO/$name/union" 2>"$DEMO/$name/pufs.log" &
	PIDS+=("$!")
done

# Wait until every peer is mounted and sees the two others.
for k in 0 1 2; do
	name=${NAMES[$k]}
	for ((i = 0; i < 150; i++)); do
		if "$PUFS" status -s "$DEMO/$name/ctl.sock" 2>/dev/null |
		    grep -c " up " | grep -qx 2; then
			break
		fi
		if ! kill -0 "${PIDS[$k]}" 2>/dev/null; then
			show_log "$name"
			die "$name exited before it was ready"
		fi
		sleep 0.1
	done
	grep -q "ready: mounted" "$DEMO/$name/pufs.log" ||
	    { show_log "$name"; die "$name was not ready within 15 s"; }
done
echo "all three peers are up"

say "alpha's view of the union: ls -la $DEMO/alpha/union"
ls -la "$DEMO/alpha/union"

say "docs/ exists on alpha and beta and is merged (seen from gamma)"
ls -la "$DEMO/gamma/union/docs"

say "readme.txt exists on beta and gamma: each is shown as NAME@PEER"
ls "$DEMO/alpha/union"
cat "$DEMO/alpha/union/readme.txt@127.0.0.1:${PORTS[2]}"

say "writing projects/report.txt through alpha's mount"
echo "written on alpha, stored on gamma" >"$DEMO/alpha/union/projects/report.txt"
echo "projects/ exists only on gamma, so the file lands there:"
ls -l "$G/projects/report.txt"
echo "and beta reads it: $(cat "$DEMO/beta/union/projects/report.txt")"

say "$PUFS status -s $DEMO/alpha/ctl.sock"
"$PUFS" status -s "$DEMO/alpha/ctl.sock"

if [ -t 0 ]; then
	STOP=0
	trap 'STOP=1' INT
	say "the union is mounted at $DEMO/{alpha,beta,gamma}/union; press Ctrl-C to stop"
	echo "    (the exports are $DEMO/*/export, the logs $DEMO/*/pufs.log)"
	while [ "$STOP" -eq 0 ]; do
		if ! kill -0 "${PIDS[0]}" 2>/dev/null; then
			echo "alpha exited by itself"
			break
		fi
		# Ctrl-C kills this sleep too; that is the way out, not an error.
		sleep 0.5 || true
	done
fi
