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
# After each read, how many READ frames each replica served in it and
# the CPU time the replicas' and the readers' daemons used per GiB.
#
# With -l RATE (a tc rate, e.g. 400mbit) the reads are measured a
# second time in each run with every machine's own link limited to
# RATE each way, as on a switched LAN where each machine has its own
# port: a tbf qdisc on both ends of each of the six veth pairs (the
# peer's eth0: what it sends; the bridge's end: what it receives).  A
# replica then sends at most RATE, whoever reads from it, and each
# reader receives at most RATE, so the figure is bound by the links
# and by how the readers spread over the replicas, not by the one
# machine's CPU (which the unlimited figure is, with six daemons and
# three readers on it).  RATE should be low enough that one replica
# serving three readers sits at it.
#
# Needs root.  Traffic stays inside the namespaces; everything started
# is stopped by PID, mounts undone, namespaces deleted and the work
# directory removed on any exit.  Limits: a bridge of veth pairs (no
# latency), and all six daemons share the machine's cores.
#
# Usage: bench/cluster.sh [-s SIZE_MB] [-n NFILES] [-l RATE] [-o PARTS]
#                         [-p PUFS] [-r RUNS] [-w DIR]
#
set -euo pipefail
export LC_ALL=C

SIZE_MB=128
NFILES=1000
REPO=$(cd "$(dirname "$0")/.." && pwd)
PUFS=$REPO/build/daemon/pufs
LIMIT=
PARTS=read,write,resync
RUNS=3
WORKPARENT=/var/tmp
BENCH=cluster
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

usage() {
	cat <<EOF
usage: $0 [-s SIZE_MB] [-n NFILES] [-l RATE] [-o PARTS] [-p PUFS] [-r RUNS]
          [-w DIR]
  -s SIZE_MB   size of each file read or written (default $SIZE_MB)
  -n NFILES    files changed while a replica is away (default $NFILES)
  -l RATE      also read with each machine's link limited to RATE each
               way (tc tbf, e.g. 400mbit; default: not)
  -o PARTS     what is measured, of read,write,resync (default all)
EOF
	common_usage
}

while getopts s:n:l:o:p:r:w:h o; do
	case $o in
	s) SIZE_MB=$OPTARG ;;
	n) NFILES=$OPTARG ;;
	l) LIMIT=$OPTARG ;;
	o) PARTS=$OPTARG ;;
	*) common_opt "$o" ;;
	esac
done
need_positive SIZE_MB NFILES RUNS
need_root "network namespaces and FUSE mounts"
need_commands ip nsenter dd python3
[ -z "$LIMIT" ] || need_commands tc
need_pufs
for part in ${PARTS//,/ }; do
	case $part in
	read|write|resync) ;;
	*) echo "$BENCH: -o: no part $part" >&2; exit 2 ;;
	esac
done

# part NAME: NAME is measured.
part() {
	case ",$PARTS," in
	*",$1,"*) return 0 ;;
	esac
	return 1
}

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

# limit RATE: each machine's link limited to RATE each way (tbf on
# both ends of its veth pair); limit "": not limited.
limit() {
	local p ns
	for p in $PEERS; do
		ns=pufs-bench-$$-$p
		if [ -n "$1" ]; then
			tc -n "$HUB" qdisc replace dev "v$p" root tbf rate "$1" \
			    burst 256kb latency 50ms
			tc -n "$ns" qdisc replace dev eth0 root tbf rate "$1" \
			    burst 256kb latency 50ms
		else
			tc -n "$HUB" qdisc del dev "v$p" root 2>/dev/null || :
			tc -n "$ns" qdisc del dev eth0 root 2>/dev/null || :
		fi
	done
}

# served: the READ frames each live replica served so far, "r1 N r2 M".
served() {
	local p v out=""
	for p in r1 r2 r3; do
		v=PID_$p
		kill -0 "${!v}" 2>/dev/null || continue
		out="$out${out:+ }$p $(timeout 5 "$PUFS" status -s \
		    "$WORK/$p/ctl.sock" |
		    sed -n 's/.*here: in sync, [0-9]* opens, \([0-9]*\) reads.*/\1/p')"
	done
	echo "$out"
}

# ticks KIND: the CPU time (clock ticks) the daemons of KIND (r or q)
# used so far.
ticks() {
	local p v t=0
	for p in $PEERS; do
		[ "${p#"$1"}" != "$p" ] || continue
		v=PID_$p
		t=$((t + $(awk '{ print $14 + $15 }' "/proc/${!v}/stat" \
		    2>/dev/null || echo 0)))
	done
	echo "$t"
}

# per_gib TICKS: CPU seconds per GiB of the three files read.
per_gib() {
	awk -v t="$1" -v hz="$(getconf CLK_TCK)" -v m="$SIZE_MB" \
	    'BEGIN { printf "%.2f", t / hz / (3 * m / 1024) }'
}

# read3 WHAT: q1..q3 read f1..f3 at once, cold; aggregate MB/s.  The
# READ frames each replica served in it, and the CPU time the replicas'
# and the readers' daemons used per GiB read, go to NOTES, as WHAT.
read3() {
	local t0 t1 k before after shares dds=() r0 q0
	drop_caches
	before=$(served)
	r0=$(ticks r) q0=$(ticks q)
	t0=$EPOCHREALTIME
	for k in 1 2 3; do
		dd if="$WORK/q$k/mnt/www/f$k" of=/dev/null bs=1M 2>/dev/null &
		dds+=($!)
	done
	wait "${dds[@]}"
	t1=$EPOCHREALTIME
	after=$(served)
	shares=$(awk -v a="$before" -v b="$after" 'BEGIN {
		n = split(a, x, " "); split(b, y, " ")
		for (i = 1; i < n; i += 2)
			printf "%s%s %d", (i > 1 ? ", " : ""), x[i],
			    y[i + 1] - x[i + 1] }')
	NOTES+=("$1: READ frames served: $shares; CPU s per GiB read:\
 replicas $(per_gib $(($(ticks r) - r0))),\
 readers $(per_gib $(($(ticks q) - q0)))")
	R=$(awk -v a="$t0" -v b="$t1" -v m="$SIZE_MB" \
	    'BEGIN { printf "%.1f\n", 3 * m * 1.048576 / (b - a) }')
}

# reads WHAT A B: read3 into array A and, with -l, again with the
# links limited into array B; the figures go on the progress line.
reads() {
	local -n unlimited=$2 limited=$3
	read3 "$1"
	unlimited+=("$R")
	line="$line; read $R MB/s"
	[ -n "$LIMIT" ] || return 0
	limit "$LIMIT"
	read3 "$1, links at $LIMIT"
	limit ""
	limited+=("$R")
	line="$line, $R at $LIMIT"
}

# write1 N: q1 writes a file of SIZE_MB with fsync; MB/s.
write1() {
	dd_mbs $((SIZE_MB << 20)) if=/dev/zero of="$WORK/q1/mnt/www/w$1" \
	    bs=1M count="$SIZE_MB" conv=fsync
}

# read_write WHAT A B W N: the reads of a run (reads WHAT A B) and its
# write (write1 N, into array W), as far as they are measured.
read_write() {
	local -n written=$4
	part read && reads "$1" "$2" "$3"
	part write || return 0
	written+=("$(write1 "$5")")
	line="$line; write ${written[-1]} MB/s"
}

net_setup
for p in $PEERS; do start "$p"; done
for p in q1 q2 q3; do wait_sync "$p" 3; done
for k in 1 2 3; do
	dd if=/dev/urandom of="$WORK/r1/mnt/www/f$k" bs=1M count="$SIZE_MB" \
	    2>/dev/null
done
if part resync; then
	mkdir "$WORK/q1/mnt/www/tree"
	for ((i = 0; i < NFILES; i++)); do
		echo "file $i" >"$WORK/q1/mnt/www/tree/f$i"
	done
fi
msg "set up: 3 files of $SIZE_MB MiB$(part resync &&
    echo ", $NFILES small files"); load $(load_avg)"

R3=() W3=() RS=() R1=() W1=() L3=() L1=()
for ((run = 1; run <= RUNS; run++)); do
	line="run $run"
	read_write "run $run, 3 replicas" R3 L3 W3 "3.$run"
	if part resync; then
		stop r3
		for ((i = 0; i < NFILES; i++)); do
			echo "run $run $i" >"$WORK/q1/mnt/www/tree/f$i"
		done
		t0=$EPOCHREALTIME
		start r3
		wait_sync r3 3
		RS+=("$(awk -v a="$t0" -v b="$EPOCHREALTIME" \
		    'BEGIN { printf "%.2f\n", b - a }')")
		for p in q1 q2 q3; do wait_sync "$p" 3; done
		line="$line; resync ${RS[-1]} s"
	fi
	msg "$line"
done
opens=""
for p in r1 r2 r3; do
	opens="$opens $p $(timeout 5 "$PUFS" status -s "$WORK/$p/ctl.sock" |
	    sed -n 's/.*here: in sync, \([0-9]*\) opens.*/\1/p')"
done
NOTES+=("opens served by each replica (since its last start):$opens")
if part read || part write; then
	stop r2
	stop r3
	for p in q1 q2 q3; do wait_sync "$p" 1; done
fi
for ((run = 1; run <= RUNS; run++)); do
	line="run $run, one replica"
	read_write "run $run, 1 replica" R1 L1 W1 "1.$run"
	part read || part write && msg "$line"
done

# row LABEL A B: a row of the table, "-" for what was not measured.
row() {
	local a=${2:--} b=${3:--} r=
	[ -z "$3" ] || r=$(awk -v a="$a" -v b="$b" \
	    'BEGIN { printf "%.2fx", a / b }')
	printf '%-34s %10s %10s %8s\n' "$1" "$a" "${3:+$b}" "$r"
}

r3=$(median "${R3[@]}") r1=$(median "${R1[@]}")
w3=$(median "${W3[@]}") w1=$(median "${W1[@]}")
l3=$(median "${L3[@]}") l1=$(median "${L1[@]}")
rs=$(median "${RS[@]}")
# The limited single replica against the line rate: near it, the links
# are the limit; well below, the CPU still is.
if [ -n "$l1" ] && line=$(awk -v r="$LIMIT" -v f="$l1" 'BEGIN {
	if (!match(r, /^[0-9.]+[kmg]?bit$/)) exit 1
	m = r ~ /kbit$/ ? 1e3 : r ~ /mbit$/ ? 1e6 : r ~ /gbit$/ ? 1e9 : 1
	b = r + 0; b = b * m / 8 / 1e6
	printf "one replica with links at %s: %.1f MB/s, %.0f%% of the line rate (%.1f MB/s)", r, f, 100 * f / b, b }'); then
	NOTES+=("$line")
fi
echo "replicated directory www, $SIZE_MB MiB files$(part resync &&
    echo ", $NFILES files resynced"), median of $RUNS"
printf '%-34s %10s %10s %8s\n' "" "3 replicas" "1 replica" "ratio"
part read && row "aggregate read, 3 readers (MB/s)" "$r3" "$r1"
[ -z "$LIMIT" ] || row "the same, links at $LIMIT (MB/s)" "$l3" "$l1"
part write && row "write, dd conv=fsync (MB/s)" "$w3" "$w1"
part resync && row "resync of $NFILES changed files (s)" "$rs" ""
echo "load average at the end: $(load_avg)"
print_notes
