#!/bin/bash
#
# cluster.sh - replicated directories ([cluster:www]): what the issue's
# targets measure.
#
# Six network namespaces on one bridge: r1, r2, r3 hold replicas of
# www, q1, q2, q3 hold none and read or write through their mounts.
# Measured, median of RUNS runs:
#
#   read 3 replicas   three readers (q1..q3) each cold-read a file of
#                     SIZE_MB of their own at once: the aggregate MB/s;
#   read 1 replica    the same with r2 and r3 stopped;
#   write 3 replicas  q1 writes SIZE_MB with dd conv=fsync (close(2)
#                     returns once every replica has the file);
#   write 1 replica   the same with r2 and r3 stopped;
#   resync            r3 stopped, NFILES files changed through q1, r3
#                     started: seconds until it says it is in sync.
#
# "Cold": the kernel's caches dropped, and the readers' block caches
# are kept small (cache_size 8M) so that they hold nothing of a file.
# Needs root.  Traffic stays inside the namespaces; everything started
# is stopped by PID, mounts undone, namespaces deleted and the work
# directory removed on any exit.  Limits: a bridge of veth pairs (no
# latency), and all six daemons share the machine's cores.
#
# Usage: bench/cluster.sh [-s SIZE_MB] [-n NFILES] [-p PUFS] [-r RUNS]
#                         [-w DIR]
#
set -euo pipefail
export LC_ALL=C

SIZE_MB=128
NFILES=1000
REPO=$(cd "$(dirname "$0")/.." && pwd)
PUFS=$REPO/build/daemon/pufs
RUNS=3
WORKPARENT=/var/tmp
BENCH=cluster
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

usage() {
	cat <<EOF
usage: $0 [-s SIZE_MB] [-n NFILES] [-p PUFS] [-r RUNS] [-w DIR]
  -s SIZE_MB   size of each file read or written (default $SIZE_MB)
  -n NFILES    files changed while a replica is away (default $NFILES)
EOF
	common_usage
}

while getopts s:n:p:r:w:h o; do
	case $o in
	s) SIZE_MB=$OPTARG ;;
	n) NFILES=$OPTARG ;;
	*) common_opt "$o" ;;
	esac
done
need_positive SIZE_MB NFILES RUNS
need_root "network namespaces and FUSE mounts"
need_commands ip nsenter dd python3
need_pufs

work_setup cluster
HUB=pufs-bench-$$-hub
NET=10.251.0
PEERS="r1 r2 r3 q1 q2 q3"

# addr NAME: the peer's address (r1..r3 = .1..3, q1..q3 = .4..6).
addr() {
	case $1 in
	r*) echo "$NET.${1#r}" ;;
	q*) echo "$NET.$((${1#q} + 3))" ;;
	esac
}

net_setup() {
	local p ns
	ns_add "$HUB"
	ip -n "$HUB" link add br0 type bridge
	ip -n "$HUB" link set br0 up
	for p in $PEERS; do
		ns=pufs-bench-$$-$p
		ns_add "$ns"
		ip -n "$HUB" link add "v$p" type veth peer name eth0 netns "$ns"
		ip -n "$HUB" link set "v$p" master br0 up
		ip -n "$ns" addr add "$(addr "$p")/24" dev eth0
		ip -n "$ns" link set eth0 up
	done
	msg "six namespaces on a bridge, $NET.1-6"
}

# start NAME: its daemon; replicas with [cluster:www].
start() {
	local p=$1 list="" q opts args=() pid
	for q in $PEERS; do
		[ "$q" = "$p" ] || list="$list${list:+ }$(addr "$q"):7070"
	done
	mkdir -p "$WORK/$p/mnt" "$WORK/$p/www"
	opts="peer.name=$p,peer.listen=$(addr "$p"):7070"
	opts="$opts,peer.discovery=unicast,peer.peers=$list"
	opts="$opts,peer.control_socket=$WORK/$p/ctl.sock"
	case $p in
	r*)
		printf '[cluster:www]\npath = %s\nat = /www\n' "$WORK/$p/www" \
		    >"$WORK/$p.ini"
		args=(-c "$WORK/$p.ini") ;;
	q*) opts="$opts,cache.cache_size=8M" ;;
	esac
	MOUNTS+=("$WORK/$p/mnt")
	[ -e "$WORK/$p.log" ] && mv "$WORK/$p.log" "$WORK/$p.log.old"
	nsenter --net="/run/netns/pufs-bench-$$-$p" "$PUFS" mount \
	    "${args[@]}" -o "$opts" "$WORK/$p/mnt" 2>>"$WORK/$p.log" &
	pid=$!
	PIDS+=("$pid")
	printf -v "PID_$p" '%s' "$pid"
	wait_log "$WORK/$p.log" "ready: mounted" "$pid" ||
		{ cat "$WORK/$p.log" >&2; return 1; }
}

# stop NAME: SIGTERM its daemon, wait for it.
stop() {
	local v=PID_$1
	stop_pid "${!v}"
}

# in_sync Q N: peer Q sees N replicas of www in sync.
in_sync() {
	test "$(timeout 5 "$PUFS" status -s "$WORK/$1/ctl.sock" 2>/dev/null |
	    grep -c "replica .* in sync$")" = "$2"
}

wait_sync() {
	local i
	for ((i = 0; i < 600; i++)); do
		in_sync "$1" "$2" && return 0
		sleep 0.05
	done
	msg "$1 does not see $2 replicas in sync"
	return 1
}

# read3: q1..q3 read f1..f3 at once, cold; aggregate MB/s.
read3() {
	local t0 t1 k
	drop_caches
	t0=$EPOCHREALTIME
	for k in 1 2 3; do
		dd if="$WORK/q$k/mnt/www/f$k" of=/dev/null bs=1M 2>/dev/null &
	done
	wait
	t1=$EPOCHREALTIME
	awk -v a="$t0" -v b="$t1" -v m="$SIZE_MB" \
	    'BEGIN { printf "%.1f\n", 3 * m * 1.048576 / (b - a) }'
}

# write1 N: q1 writes a file of SIZE_MB with fsync; MB/s.
write1() {
	dd_mbs $((SIZE_MB << 20)) if=/dev/zero of="$WORK/q1/mnt/www/w$1" \
	    bs=1M count="$SIZE_MB" conv=fsync
}

net_setup
for p in $PEERS; do start "$p"; done
for p in q1 q2 q3; do wait_sync "$p" 3; done
for k in 1 2 3; do
	dd if=/dev/urandom of="$WORK/r1/mnt/www/f$k" bs=1M count="$SIZE_MB" \
	    2>/dev/null
done
mkdir "$WORK/q1/mnt/www/tree"
for ((i = 0; i < NFILES; i++)); do
	echo "file $i" >"$WORK/q1/mnt/www/tree/f$i"
done
msg "set up: 3 files of $SIZE_MB MiB, $NFILES small files; load $(load_avg)"

R3=() W3=() RS=() R1=() W1=()
for ((run = 1; run <= RUNS; run++)); do
	R3+=("$(read3)")
	W3+=("$(write1 "3.$run")")
	stop r3
	for ((i = 0; i < NFILES; i++)); do
		echo "run $run $i" >"$WORK/q1/mnt/www/tree/f$i"
	done
	t0=$EPOCHREALTIME
	start r3
	wait_sync r3 3
	RS+=("$(awk -v a="$t0" -v b="$EPOCHREALTIME" \
	    'BEGIN { printf "%.2f\n", b - a }')")
	msg "run $run: read ${R3[-1]} MB/s, write ${W3[-1]} MB/s, resync ${RS[-1]} s"
done
opens=""
for p in r1 r2 r3; do
	opens="$opens $p $(timeout 5 "$PUFS" status -s "$WORK/$p/ctl.sock" |
	    sed -n 's/.*here: in sync, \([0-9]*\) opens.*/\1/p')"
done
NOTES+=("opens served by each replica (since its last start):$opens")
stop r2
stop r3
for p in q1 q2 q3; do wait_sync "$p" 1; done
for ((run = 1; run <= RUNS; run++)); do
	R1+=("$(read3)")
	W1+=("$(write1 "1.$run")")
	msg "run $run, one replica: read ${R1[-1]} MB/s, write ${W1[-1]} MB/s"
done

r3=$(median "${R3[@]}") r1=$(median "${R1[@]}")
w3=$(median "${W3[@]}") w1=$(median "${W1[@]}")
rs=$(median "${RS[@]}")
echo "replicated directory www, $SIZE_MB MiB files, $NFILES files resynced, median of $RUNS"
printf '%-34s %10s %10s %8s\n' "" "3 replicas" "1 replica" "ratio"
printf '%-34s %10s %10s %8s\n' "aggregate read, 3 readers (MB/s)" "$r3" "$r1" \
    "$(awk -v a="$r3" -v b="$r1" 'BEGIN { printf "%.2fx", a / b }')"
printf '%-34s %10s %10s %8s\n' "write, dd conv=fsync (MB/s)" "$w3" "$w1" \
    "$(awk -v a="$w3" -v b="$w1" 'BEGIN { printf "%.2fx", a / b }')"
printf '%-34s %10s\n' "resync of $NFILES changed files (s)" "$rs"
echo "load average at the end: $(load_avg)"
print_notes
