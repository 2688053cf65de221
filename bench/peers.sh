#!/bin/bash
#
# peers.sh - a union of many peers: how fast it becomes whole, how fast
# its merged directory lists, what it costs at rest.
#
# N network namespaces (pufs-bench-PID-pK, 10.251.0.K/24) hang on one
# bridge in a hub namespace (pufs-bench-PID-hub), each by a veth pair,
# with a multicast route; the bridge does no multicast snooping, so the
# group reaches every port.  Peer pK runs in namespace K with multicast
# discovery (no peer list) and exports a directory holding ENTRIES files
# of its own under merged/, so the union's merged/ holds N * ENTRIES
# entries, no name clashing.  The daemons enter the namespaces with
# nsenter --net only, so their FUSE mounts stay visible here.  Measured:
#
#   join      the N daemons are started one right after the other; from
#             the start of the last until every peer's mount shows the
#             whole union: its `pufs status` lists the N-1 others up and
#             a listing of merged/ through its mount has every entry.
#             Each peer is polled every POLL_MS (status over its control
#             socket, then, once all are up, the listing); the daemons
#             are stopped and started again for each run.
#   ls        ls -l and ls -f (no stat) of merged/ through p1's mount:
#             cold (attr_timeout waited out, the kernel's caches
#             dropped) and warm (again at once); what p1 asked the
#             peers over the warm ls -l runs (its status counters).
#   idle      datagrams sent and received per second per peer over IDLE
#             seconds at rest once joined (the daemons' status
#             counters), and all packets leaving each peer's eth0
#             (TCP pings included), from the link's counters.
#   memory    VmRSS and VmHWM of every daemon at the end: median, max.
#
# Needs root.  Traffic stays inside the namespaces.  Everything started
# is stopped by PID, every mount undone, the namespaces deleted and the
# work directory removed on any exit, SIGINT included.  Limits: the
# bridge and veths lose and delay nothing; all daemons share the
# machine's cores with the poller, so the join time includes the cost
# of starting N processes on them.
#
# Usage: bench/peers.sh [-n NPEERS] [-e ENTRIES] [-j JOINS] [-i IDLE]
#                       [-a ATTR_TIMEOUT] [-o OPTS] [-l LOGDIR] [-d]
#                       [-p PUFS] [-r RUNS] [-w DIR]
#
set -euo pipefail
export LC_ALL=C

NPEERS=32
ENTRIES=50
JOINS=3
IDLE=10
ATTR_TIMEOUT=5
EXTRA_OPTS=
LOGDIR=
DEBUG=
REPO=$(cd "$(dirname "$0")/.." && pwd)
PUFS=$REPO/build-rel/daemon/pufs
RUNS=5
WORKPARENT=/var/tmp
TMO=120          # no single measured command runs longer
JOIN_DEADLINE=60 # a join that takes longer is reported as failed
POLL_MS=20
NET=10.251.0
PUFS_PORT=7070
GROUP=239.255.251.1
MPORT=7251
BENCH=peers
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

usage() {
	cat <<EOF
usage: $0 [-n NPEERS] [-e ENTRIES] [-j JOINS] [-i IDLE] [-a ATTR_TIMEOUT]
       [-o OPTS] [-l LOGDIR] [-d] [-p PUFS] [-r RUNS] [-w DIR]

  -n NPEERS    peers, each in its own namespace (default $NPEERS, at most 250)
  -e ENTRIES   files each peer holds in the merged directory (default $ENTRIES)
  -j JOINS     joins measured, the daemons restarted for each (default $JOINS)
  -i IDLE      seconds at rest over which datagrams are counted (default $IDLE)
  -a SECONDS   cache.attr_timeout of the daemons (default $ATTR_TIMEOUT)
  -o OPTS      more -o options for every daemon (KEY=VALUE,...)
  -l LOGDIR    copy the daemons' logs there at the end (made if missing)
  -d           the daemons log debug detail (slows them down)
$(common_usage)

Prints Markdown tables on standard output, progress on standard error.
EOF
}

while getopts "n:e:j:i:a:o:l:dp:r:w:h" opt; do
	case $opt in
	n) NPEERS=$OPTARG ;;
	e) ENTRIES=$OPTARG ;;
	j) JOINS=$OPTARG ;;
	i) IDLE=$OPTARG ;;
	a) ATTR_TIMEOUT=$OPTARG ;;
	o) EXTRA_OPTS=$OPTARG ;;
	l) LOGDIR=$OPTARG ;;
	d) DEBUG=-d ;;
	*) common_opt "$opt" ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || { usage >&2; exit 2; }
need_positive NPEERS ENTRIES JOINS IDLE ATTR_TIMEOUT RUNS
if [ "$NPEERS" -gt 250 ]; then
	echo "$BENCH: at most 250 peers (one /24)" >&2
	exit 2
fi
need_root "namespaces, FUSE mounts"
need_commands ip nsenter fusermount3 timeout python3
need_pufs
# The interpreter itself, not a wrapper that takes time to start it.
PY=$(python3 -c 'import sys; print(sys.executable)')

work_setup peers
HUB=pufs-bench-$$-hub
TOTAL=$((NPEERS * ENTRIES))
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# What belongs to peer K: namespace, address, export, mount, socket.
ns_of() { echo "pufs-bench-$$-p$1"; }
addr_of() { echo "$NET.$1"; }
export_of() { echo "$WORK/p$1/export"; }
mnt_of() { echo "$WORK/p$1/mnt"; }
sock_of() { echo "$WORK/p$1/ctl.sock"; }

# The hub with its bridge, and the peers' namespaces on it.
ns_add "$HUB"
ip -n "$HUB" link add br0 type bridge stp_state 0 mcast_snooping 0
ip -n "$HUB" link set br0 up
for ((k = 1; k <= NPEERS; k++)); do
	ns=$(ns_of "$k")
	ns_add "$ns"
	ip -n "$HUB" link add "v$k" type veth peer name eth0 netns "$ns"
	ip -n "$HUB" link set "v$k" master br0 up
	ip -n "$ns" addr add "$(addr_of "$k")/24" dev eth0
	ip -n "$ns" link set eth0 up
	ip -n "$ns" route add 224.0.0.0/4 dev eth0
	mkdir -p "$(export_of "$k")/merged" "$(mnt_of "$k")"
	MOUNTS+=("$(mnt_of "$k")")
	for ((j = 0; j < ENTRIES; j++)); do
		echo "entry $j of p$k" >"$(export_of "$k")/merged/p$k-f$j"
	done
done
sync
msg "$NPEERS namespaces on a bridge, $ENTRIES entries each in merged/"

# The poller: started before the daemons, so that its own start costs
# nothing measured; then one thread per peer checks every POLL_MS whether the
# peer's status lists the N-1 others up, then whether a listing of
# merged/ through its mount holds every entry.  Prints "K UP WHOLE" per
# peer (seconds from T0 to each), by WHOLE; exits 1 if the deadline
# passes first.
cat >"$WORK/poll.py" <<'EOF'
import os, resource, socket, sys, threading, time

n, total, deadline, poll = (int(sys.argv[1]), int(sys.argv[2]),
    float(sys.argv[3]), float(sys.argv[4]) / 1000)
work = sys.argv[5]
# Started before the daemons; the time of the last start comes on
# standard input.
t0 = float(sys.stdin.readline())
up, whole = {}, {}

def status(k):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect("%s/p%d/ctl.sock" % (work, k))
        s.sendall(b"status json\n")
        buf = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            buf += b
        return buf
    except OSError:
        return b""
    finally:
        s.close()

# Only the other peers are listed with a state (cheaper than parsing).
def all_up(st):
    return st.count(b'"state":"up"') == n - 1

def watch(k):
    while time.time() - t0 < deadline:
        if k not in up and all_up(status(k)):
            up[k] = time.time() - t0
        if k in up:
            try:
                if len(os.listdir("%s/p%d/mnt/merged" % (work, k))) == total:
                    whole[k] = time.time() - t0
                    return
            except OSError:
                pass
        time.sleep(poll)

threads = [threading.Thread(target=watch, args=(k,)) for k in range(1, n + 1)]
for t in threads:
    t.start()
for t in threads:
    t.join()
left = [k for k in range(1, n + 1) if k not in whole]
if left:
    print("not whole after %.1f s: %s" % (deadline,
          " ".join("p%d" % k for k in left)), file=sys.stderr)
    sys.exit(1)
for k in sorted(whole, key=whole.get):
    print("%d %.3f %.3f" % (k, up[k], whole[k]))
ru = resource.getrusage(resource.RUSAGE_SELF)
print("poller: %.2f s of CPU" % (ru.ru_utime + ru.ru_stime), file=sys.stderr)
EOF

# Start peer K's daemon in its namespace (not waiting for it); its log
# is WORK/pK.log.  Sets PID_K.
peer_start() {
	local k=$1 opts
	opts="peer.name=p$k,peer.listen=$(addr_of "$k"):$PUFS_PORT"
	opts="$opts,peer.discovery=multicast,peer.peers="
	opts="$opts,peer.multicast_group=$GROUP,peer.multicast_port=$MPORT"
	opts="$opts,peer.multicast_interface=eth0"
	opts="$opts,peer.control_socket=$(sock_of "$k")"
	opts="$opts,cache.attr_timeout=$ATTR_TIMEOUT${EXTRA_OPTS:+,$EXTRA_OPTS}"
	rm -f "$(sock_of "$k")"
	# DEBUG is one word or none.
	# shellcheck disable=SC2086
	nsenter --net="/run/netns/$(ns_of "$k")" "$PUFS" mount $DEBUG \
	    -e "$(export_of "$k")" -o "$opts" "$(mnt_of "$k")" \
	    2>>"$WORK/p$k.log" &
	PIDS+=("$!")
	printf -v "PID_$k" '%s' "$!"
}

# Stop every daemon (all signalled first, then each reaped) and undo
# the mounts.
peers_stop() {
	local k pid
	for ((k = 1; k <= NPEERS; k++)); do
		pid=PID_$k
		[ -n "${!pid:-}" ] && kill -TERM "${!pid}" 2>/dev/null
	done
	for ((k = 1; k <= NPEERS; k++)); do
		pid=PID_$k
		[ -n "${!pid:-}" ] && stop_pid "${!pid}"
		printf -v "PID_$k" '%s' ""
		unmount "$(mnt_of "$k")"
	done
}

# Print peer K's status --json.
peer_status() {
	timeout -k 2 5 "$PUFS" status -s "$(sock_of "$1")" --json 2>/dev/null
}

# Print the CPU seconds (user and system) the daemons used so far.
daemons_cpu() {
	local k pid
	for ((k = 1; k <= NPEERS; k++)); do
		pid=PID_$k
		cut -d')' -f2 "/proc/${!pid}/stat" 2>/dev/null || true
	done | awk -v hz="$(getconf CLK_TCK)" '{ t += $12 + $13 }
	    END { printf "%.2f\n", t / hz }'
}

# One join: start the N daemons, wait until the union is whole on every
# peer; sets JOIN (seconds from the last start to the last peer whole),
# JOIN_FIRST (to the first peer whole), JOIN_UP (to the last peer
# seeing every other up) and JOIN_CPU (what the daemons used until then).
join_once() {
	local k t0 out poller rc=0
	coproc POLL { "$PY" "$WORK/poll.py" "$NPEERS" "$TOTAL" \
	    "$JOIN_DEADLINE" "$POLL_MS" "$WORK" >"$WORK/join.out"; }
	poller=$POLL_PID
	PIDS+=("$poller")
	for ((k = 1; k < NPEERS; k++)); do
		peer_start "$k"
	done
	t0=$EPOCHREALTIME
	printf 'peers.sh: last start at %(%H:%M:%S)T.%s\n' "${t0%.*}" \
	    "${t0#*.}" >>"$WORK/p$NPEERS.log"
	peer_start "$NPEERS"
	echo "$t0" >&"${POLL[1]}"
	wait "$poller" || rc=$?
	stop_pid "$poller"
	[ "$rc" -eq 0 ] || return 1
	out=$(cat "$WORK/join.out")
	JOIN_FIRST=$(echo "$out" | head -1 | cut -d' ' -f3)
	JOIN=$(echo "$out" | tail -1 | cut -d' ' -f3)
	JOIN_UP=$(echo "$out" | cut -d' ' -f2 | sort -g | tail -1)
	JOIN_CPU=$(daemons_cpu)
}

# Copy the daemons' logs to LOGDIR, if asked.
save_logs() {
	[ -n "$LOGDIR" ] || return 0
	mkdir -p "$LOGDIR" && cp "$WORK"/p*.log "$LOGDIR/" &&
	    msg "the daemons' logs are in $LOGDIR"
}

# 1. Joins.
joins=()
firsts=()
ups=()
cpus=()
for ((r = 1; r <= JOINS; r++)); do
	for ((k = 1; k <= NPEERS; k++)); do
		echo "peers.sh: join $r" >>"$WORK/p$k.log"
	done
	if ! join_once; then
		msg "join $r: the union was not whole on every peer within" \
		    "$JOIN_DEADLINE s"
		NOTES+=("join $r: not whole within $JOIN_DEADLINE s")
		peers_stop
		continue
	fi
	msg "join $r: every peer sees all up after $JOIN_UP s; first peer" \
	    "whole after $JOIN_FIRST s, every peer after $JOIN s; the daemons" \
	    "used $JOIN_CPU s of CPU"
	joins+=("$JOIN")
	firsts+=("$JOIN_FIRST")
	ups+=("$JOIN_UP")
	cpus+=("$JOIN_CPU")
	[ "$r" -lt "$JOINS" ] && peers_stop
done
if [ ${#joins[@]} -eq 0 ]; then
	msg "no join succeeded"
	save_logs
	print_notes
	exit 1
fi
set_median JOIN_MED "${joins[@]}"
set_median JOIN_FIRST_MED "${firsts[@]}"
set_median JOIN_UP_MED "${ups[@]}"
set_median JOIN_CPU_MED "${cpus[@]}"
JOIN_MAX=$(printf '%s\n' "${joins[@]}" | sort -g | tail -1)
if [ -z "${PID_1:-}" ]; then
	# The last join failed: start again for the rest.
	join_once || { msg "the union does not come together"; exit 1; }
fi

# 2. Listings through p1's mount.
D=$(mnt_of 1)/merged

# Print what p1 asked the peers so far, as "TYPE COUNT" lines.
p1_ops() {
	peer_status 1 | "$PY" -c '
import json, sys
for k, v in sorted(json.load(sys.stdin)["ops"].items()):
    print(k, v)'
}

# Sleep $1 seconds in a way a signal interrupts at once (bash runs a
# trap only after the foreground command, but during a wait).
nap() {
	local pid
	sleep "$1" &
	pid=$!
	PIDS+=("$pid")
	wait "$pid" || true
	stop_pid "$pid"
}

# Print the requests p1's kernel sent its daemon so far.
p1_fuse_requests() {
	peer_status 1 | sed -n 's/.*"fuse":{"requests":\([0-9]*\).*/\1/p'
}

# ls $2 of merged/ under label $1, cold then warm: sets LC_$1, LW_$1
# (seconds) and RQC_$1, RQW_$1 (the kernel's requests to p1's daemon).
measure_ls() {
	local key=$1 flags=$2 i c w r0 r1 r2 cs=() ws=() rcs=() rws=() n
	for ((i = 1; i <= RUNS; i++)); do
		nap "$ATTR_TIMEOUT.5"
		drop_caches
		r0=$(p1_fuse_requests)
		c=$(timed ls "$flags" "$D") || { msg "cold ls $flags failed"; return 1; }
		r1=$(p1_fuse_requests)
		w=$(timed ls "$flags" "$D") || { msg "warm ls $flags failed"; return 1; }
		r2=$(p1_fuse_requests)
		msg "ls $flags: run $i: cold $c s ($((r1 - r0)) requests)," \
		    "warm $w s ($((r2 - r1)) requests)"
		cs+=("$c")
		ws+=("$w")
		rcs+=("$((r1 - r0))")
		rws+=("$((r2 - r1))")
	done
	MEDIAN_FMT=%.0f set_median "RQC_$key" "${rcs[@]}"
	MEDIAN_FMT=%.0f set_median "RQW_$key" "${rws[@]}"
	n=$(ls "$flags" "$D" | grep -c '^[-p]') || true
	if [ "$n" -lt "$TOTAL" ]; then
		msg "ls $flags lists $n entries, not $TOTAL"
		return 1
	fi
	set_median "LC_$key" "${cs[@]}"
	set_median "LW_$key" "${ws[@]}"
}

measure_ls l -l || NOTES+=("ls -l failed")
measure_ls f -f || NOTES+=("ls -f failed")

# What the warm ls -l asks: RUNS of them right after a cold one.
timed ls -l "$D" >/dev/null || true
p1_ops >"$WORK/ops.before"
for ((i = 1; i <= RUNS; i++)); do
	timed ls -l "$D" >/dev/null || true
done
p1_ops >"$WORK/ops.after"
WARM_OPS=$(join -a 2 "$WORK/ops.before" "$WORK/ops.after" |
    awk -v r="$RUNS" 'NF == 2 { $3 = $2; $2 = 0 }
	$3 - $2 > 0 { printf "%s%s %.0f", sep, $1, ($3 - $2) / r; sep = ", " }')

# 3. At rest: datagrams (status counters) and packets on eth0.

# Print, for every peer, "K SENT RECEIVED TXPACKETS".
counters() {
	local k st tx
	for ((k = 1; k <= NPEERS; k++)); do
		st=$(peer_status "$k" | grep -o '"discovery":{[^}]*}') || st=
		tx=$(ip -n "$(ns_of "$k")" -s link show eth0 2>/dev/null |
		    awk '/TX:/ { getline; print $2; exit }')
		echo "$k $(echo "$st" | sed -n 's/.*"sent":\([0-9]*\).*/\1/p')" \
		    "$(echo "$st" | sed -n 's/.*"received":\([0-9]*\).*/\1/p')" \
		    "$tx"
	done
}

nap 1 # the listings' last answers out of the way
counters >"$WORK/idle.before"
t0=$EPOCHREALTIME
nap "$IDLE"
counters >"$WORK/idle.after"
t1=$EPOCHREALTIME
paste -d' ' "$WORK/idle.before" "$WORK/idle.after" |
    awk -v s="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
    '{ printf "%.2f %.2f %.2f\n", ($6 - $2) / s, ($7 - $3) / s, ($8 - $4) / s }' \
    >"$WORK/idle.rates"
for c in 1 2 3; do
	mapfile -t v < <(cut -d' ' -f"$c" "$WORK/idle.rates")
	printf -v "IDLE_MED_$c" '%s' "$(MEDIAN_FMT=%.2f median "${v[@]}")"
	printf -v "IDLE_MAX_$c" '%s' "$(printf '%s\n' "${v[@]}" | sort -g | tail -1)"
done

# 4. Memory of every daemon.
rss=()
hwm=()
for ((k = 1; k <= NPEERS; k++)); do
	pid=PID_$k
	rss+=("$(awk '$1 == "VmRSS:" { print $2 }' "/proc/${!pid}/status")")
	hwm+=("$(awk '$1 == "VmHWM:" { print $2 }' "/proc/${!pid}/status")")
done
kib_mib() {
	awk -v v="$1" 'BEGIN { printf "%.1f\n", v / 1024 }'
}
RSS_MED=$(kib_mib "$(MEDIAN_FMT=%.0f median "${rss[@]}")")
RSS_MAX=$(kib_mib "$(printf '%s\n' "${rss[@]}" | sort -g | tail -1)")
HWM_MED=$(kib_mib "$(MEDIAN_FMT=%.0f median "${hwm[@]}")")
HWM_MAX=$(kib_mib "$(printf '%s\n' "${hwm[@]}" | sort -g | tail -1)")

peers_stop
save_logs
# What the daemons logged above info (our run markers aside), as one
# note: how many lines, from how many peers, the first few kinds.
for ((k = 1; k <= NPEERS; k++)); do
	grep -v -e ' info: ' -e ' debug: ' -e '^peers.sh: ' "$WORK/p$k.log" |
	    sed "s/^/p$k /" || true
done >"$WORK/odd.log"
if [ -s "$WORK/odd.log" ]; then
	NOTES+=("$(wc -l <"$WORK/odd.log") lines above info from $(cut -d' ' -f1 "$WORK/odd.log" | sort -u | wc -l) daemons, e.g.: $(cut -d' ' -f4- "$WORK/odd.log" | sed 's/[0-9][0-9]*/N/g' | sort | uniq -c | sort -rn | head -3 | sed 's/^ *//' | paste -sd';' -)")
fi
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

cat <<EOF
$NPEERS peers, each in its own network namespace on one bridge, multicast
discovery (heartbeat 1 s), each holding $ENTRIES files of merged/ ($TOTAL
entries in the union's merged/).  cache.attr_timeout=$ATTR_TIMEOUT.  Kernel
$(uname -r), $(nproc) CPUs; load average $LOAD_START at the start, $LOAD_END
at the end.

| measurement | median | max | runs |
|---|--:|--:|--:|
| join: last start to the union whole on every peer (s) | $JOIN_MED | $JOIN_MAX | ${#joins[@]} |
| join: last start to every peer seeing all others up (s) | $JOIN_UP_MED | - | ${#joins[@]} |
| join: last start to the first peer whole (s) | $JOIN_FIRST_MED | - | ${#joins[@]} |
| join: CPU the $NPEERS daemons used until the union was whole (s) | $JOIN_CPU_MED | - | ${#joins[@]} |
| ls -l merged/, cold (s) | $(fig LC_l) | - | $RUNS |
| ls -l merged/, warm (s) | $(fig LW_l) | - | $RUNS |
| ls -f merged/, cold (s) | $(fig LC_f) | - | $RUNS |
| ls -f merged/, warm (s) | $(fig LW_f) | - | $RUNS |
| FUSE requests of a cold / warm ls -l | $(fig RQC_l) / $(fig RQW_l) | - | $RUNS |
| FUSE requests of a cold / warm ls -f | $(fig RQC_f) / $(fig RQW_f) | - | $RUNS |
| datagrams sent per peer per second, at rest | $IDLE_MED_1 | $IDLE_MAX_1 | $NPEERS peers, ${IDLE} s |
| datagrams received per peer per second, at rest | $IDLE_MED_2 | $IDLE_MAX_2 | $NPEERS peers, ${IDLE} s |
| packets sent on eth0 per peer per second, at rest | $IDLE_MED_3 | $IDLE_MAX_3 | $NPEERS peers, ${IDLE} s |
| daemon VmRSS (MiB) | $RSS_MED | $RSS_MAX | $NPEERS peers |
| daemon VmHWM (MiB) | $HWM_MED | $HWM_MAX | $NPEERS peers |

Joins (s, every peer whole): ${joins[*]}.
What p1 asked per warm ls -l (status counters, its own export included):
${WARM_OPS:-nothing}.
EOF
print_notes
