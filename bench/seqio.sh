#!/bin/bash
#
# seqio.sh - sequential write and read throughput of one large file,
# measured through four paths to the same directory:
#
#   1. the raw directory;
#   2. a pufs mount of it (one peer, exported with -e);
#   3. libfuse's passthrough_ll example, built from the libfuse3-dev
#      examples, as the baseline for "any local FUSE file system";
#   4. sshfs to a private sshd on a loopback port.
#
# Each figure is the median of RUNS runs of dd(1): a write of SIZE MiB
# with conv=fsync, then, after dropping the kernel's caches, a read.  A
# row whose tool is missing or fails to start is reported and skipped;
# the others still run.  Needs root (drop_caches, FUSE mounts, sshd).
# Everything started is stopped by PID, every mount undone and the work
# directory removed on any exit.  Limits: the figures are only as quiet
# as the machine; other load on the disk or the CPUs shows in them.
#
# Usage: bench/seqio.sh [-s SIZE_MB] [-p PUFS_BINARY] [-r RUNS] [-w DIR]
#
set -euo pipefail
export LC_ALL=C

SIZE_MB=512
REPO=$(cd "$(dirname "$0")/.." && pwd)
PUFS=$REPO/build/daemon/pufs
RUNS=3
WORKPARENT=/var/tmp
EXAMPLES=/usr/share/doc/libfuse3-dev/examples
BENCH=seqio
MEDIAN_FMT=%.0f
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

usage() {
	cat <<EOF
usage: $0 [-s SIZE_MB] [-p PUFS] [-r RUNS] [-w DIR]

  -s SIZE_MB   size of the test file in MiB (default $SIZE_MB)
$(common_usage)

Prints a Markdown table on standard output, progress on standard error.
EOF
}

while getopts "s:p:r:w:h" opt; do
	case $opt in
	s) SIZE_MB=$OPTARG ;;
	*) common_opt "$opt" ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || { usage >&2; exit 2; }
need_positive SIZE_MB RUNS
need_root "drop_caches, FUSE mounts, sshd"

WORK=$(mktemp -d "$WORKPARENT/pufs-bench.XXXXXX")
DATA=$WORK/data
mkdir "$DATA"
PIDS=()         # every process started, stopped by PID in cleanup
MOUNTS=()       # every mount point made
MADE_RUN_SSHD=no
NOTES=()

cleanup_on_exit

# Print a TCP port on 127.0.0.1 that nothing listens on, from base $1.
free_port() {
	local port=$1
	while command -v ss >/dev/null && ss -Hltn "sport = :$port" | grep -q .; do
		port=$((port + 1))
	done
	echo "$port"
}

# Measure directory $2 under label $1; sets W_$1 and R_$1 (MB/s).
measure() {
	local key=$1 f=$2/seqio.dat i w r ws=() rs=()
	for ((i = 1; i <= RUNS; i++)); do
		rm -f "$f"
		sync
		w=$(dd if=/dev/zero of="$f" bs=1M count="$SIZE_MB" conv=fsync 2>&1 | dd_rate)
		sync
		echo 3 > /proc/sys/vm/drop_caches
		r=$(dd if="$f" of=/dev/null bs=1M 2>&1 | dd_rate)
		if [ -z "$w" ] || [ -z "$r" ]; then
			msg "$key: dd failed in run $i"
			rm -f "$f"
			return 1
		fi
		msg "$key: run $i: write $w MB/s, read $r MB/s"
		ws+=("$w")
		rs+=("$r")
	done
	rm -f "$f"
	printf -v "W_$key" '%s' "$(median "${ws[@]}")"
	printf -v "R_$key" '%s' "$(median "${rs[@]}")"
}

# Stop the process and mount of a row before the next row starts.
finish_row() {
	stop_pid "$1"
	unmount "$2"
}

# 1. The raw directory.
msg "raw directory $DATA"
measure raw "$DATA" || NOTES+=("raw: measurement failed")

# 2. pufs, one peer exporting the directory.
if [ -x "$PUFS" ]; then
	mnt=$WORK/mnt-pufs
	mkdir "$mnt"
	MOUNTS+=("$mnt")
	port=$(free_port 7270)
	"$PUFS" mount -e "$DATA" \
	    -o "peer.discovery=unicast,peer.listen=127.0.0.1:$port,peer.control_socket=$WORK/pufs.sock" \
	    "$mnt" 2>"$WORK/pufs.log" &
	pid=$!
	PIDS+=("$pid")
	if wait_log "$WORK/pufs.log" "ready: mounted" "$pid"; then
		msg "pufs mounted at $mnt"
		measure pufs "$mnt" || NOTES+=("pufs: measurement failed")
	else
		msg "pufs did not become ready; its log:"
		cat "$WORK/pufs.log" >&2
		NOTES+=("pufs: did not start (see the log above)")
	fi
	finish_row "$pid" "$mnt"
else
	msg "no pufs binary at $PUFS; pufs row skipped"
	NOTES+=("pufs: no binary at $PUFS")
fi

# 3. libfuse's passthrough_ll example.
if build_passthrough; then
	mnt=$WORK/mnt-passthrough
	mkdir "$mnt"
	MOUNTS+=("$mnt")
	"$PT" -f -o "source=$DATA" "$mnt" 2>"$WORK/passthrough.log" &
	pid=$!
	PIDS+=("$pid")
	if wait_mounted "$mnt" "$pid"; then
		msg "passthrough_ll mounted at $mnt"
		measure passthrough "$mnt" || NOTES+=("passthrough_ll: measurement failed")
	else
		msg "passthrough_ll did not mount; its log:"
		cat "$WORK/passthrough.log" >&2
		NOTES+=("passthrough_ll: did not mount")
	fi
	finish_row "$pid" "$mnt"
fi

# 4. sshfs to a private sshd on loopback, with its own keys.
SSH_PORT=$(free_port 2270)
if start_sshd 127.0.0.1 "$SSH_PORT"; then
	mnt=$WORK/mnt-sshfs
	mkdir "$mnt"
	MOUNTS+=("$mnt")
	sshfs -f -p "$SSH_PORT" \
	    -o "IdentityFile=$WORK/ssh/id,StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null,BatchMode=yes,LogLevel=ERROR" \
	    "root@127.0.0.1:$DATA" "$mnt" 2>"$WORK/sshfs.log" &
	pid=$!
	PIDS+=("$pid")
	if wait_mounted "$mnt" "$pid"; then
		msg "sshfs mounted at $mnt"
		measure sshfs "$mnt" || NOTES+=("sshfs: measurement failed")
	else
		msg "sshfs did not mount; its log:"
		cat "$WORK/sshfs.log" >&2
		NOTES+=("sshfs: did not mount")
	fi
	finish_row "$pid" "$mnt"
	stop_pid "$SSHD_PID"
else
	msg "sshd cannot be started; sshfs row skipped"
	NOTES+=("sshfs: sshd could not be started")
fi

fstype=$(findmnt -n -o FSTYPE -T "$DATA" 2>/dev/null || stat -f -c %T "$DATA")
cat <<EOF
Sequential I/O, file of $SIZE_MB MiB, dd bs=1M, median of $RUNS runs
(write with conv=fsync; caches dropped before each read).
Kernel $(uname -r), $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), work directory on $fstype.

| path | write MB/s | read MB/s |
|------|-----------:|----------:|
| raw directory | $(fig W_raw) | $(fig R_raw) |
| pufs, one peer (-e) | $(fig W_pufs) | $(fig R_pufs) |
| FUSE passthrough_ll | $(fig W_passthrough) | $(fig R_passthrough) |
| sshfs to 127.0.0.1 | $(fig W_sshfs) | $(fig R_sshfs) |

| ratio | write | read |
|-------|------:|-----:|
| pufs/raw | $(ratio W_pufs W_raw) | $(ratio R_pufs R_raw) |
| pufs/passthrough | $(ratio W_pufs W_passthrough) | $(ratio R_pufs R_passthrough) |
| pufs/sshfs | $(ratio W_pufs W_sshfs) | $(ratio R_pufs R_sshfs) |
EOF
print_notes
