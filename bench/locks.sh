#!/bin/bash
#
# locks.sh - locks across the union: what an uncontended fcntl(2) lock
# and unlock of a peer's file costs, in round trips of the link, and how
# long two peers take for contended SQLite write transactions on one
# database.  The figures are checked against the targets of locks:
# a lock/unlock pair in at most 3 round trips' time, 2 peers x 500
# transactions in under 30 s.
#
# The setup is remote.sh's: two network namespaces, A (10.250.0.1) and
# B (10.250.0.2), joined by a veth pair; pufs peer p1 in A, p2 in B,
# each exporting its own directory (the daemons enter the namespaces
# with nsenter --net only, so their FUSE mounts stay visible here).
# The files are held by p2.  Measured, median of RUNS runs:
#
#   1. NPAIRS times F_SETLK F_WRLCK then F_UNLCK of bytes 0..99 of a
#      file held by p2, through p1's mount (across the link), p2's own
#      mount (the holder's, no link) and p2's export directory (raw:
#      the kernel alone); mean microseconds per pair, and per round
#      trip: one call of p1 to p2 through the mount (the mean of NPAIRS
#      lseek(2) SEEK_DATA of the open file: one LSEEK to the holder), p1's
#      pufs status rtt_ms (its own pings, answered on p2's loop), and
#      ping (the link alone); and, for the pairs through p1, the lock
#      requests p2 served and the leases it lent (pufs status locks:
#      with leases, a lone locker's pairs are decided on p1);
#   2. NTX write transactions (BEGIN IMMEDIATE, one INSERT, COMMIT) in
#      rollback journal mode from p1's mount and NTX from p2's at once,
#      on one database held by p2 in a directory only p2 has (so that
#      the journal is made beside it), with a 60 s busy timeout; seconds
#      for all, then PRAGMA integrity_check and the row count, which
#      must be ok and 2 x NTX.
#
# Needs root, python3 with sqlite3, and what remote.sh needs (but no
# sshd).  Traffic stays inside the two namespaces.  Everything started
# is stopped by PID, every mount undone, the namespaces deleted and the
# work directory removed on any exit, SIGINT included.  Limits: the
# link is a veth pair (no latency, no loss); the figures are only as
# quiet as the machine.
#
# Usage: bench/locks.sh [-n NPAIRS] [-q NTX] [-p PUFS] [-r RUNS] [-w DIR]
#
set -euo pipefail
export LC_ALL=C

NPAIRS=2000
NTX=500
REPO=$(cd "$(dirname "$0")/.." && pwd)
PUFS=$REPO/build/daemon/pufs
RUNS=3
WORKPARENT=/var/tmp
BENCH=locks
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

usage() {
	cat <<EOF
usage: $0 [-n NPAIRS] [-q NTX] [-p PUFS] [-r RUNS] [-w DIR]
  -n NPAIRS    lock/unlock pairs per run (default $NPAIRS)
  -q NTX       SQLite write transactions per peer (default $NTX)
$(common_usage)
Prints Markdown tables on standard output, progress on standard error.
EOF
}

while getopts "n:q:p:r:w:h" opt; do
	case $opt in
	n) NPAIRS=$OPTARG ;;
	q) NTX=$OPTARG ;;
	*) common_opt "$opt" ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || { usage >&2; exit 2; }
need_positive NPAIRS NTX RUNS
need_root "namespaces, FUSE mounts"
need_commands ip nsenter fusermount3 timeout ping "$PYTHON"
"$PYTHON" -c 'import sqlite3' 2>/dev/null ||
    { echo "$BENCH: $PYTHON has no sqlite3 module" >&2; exit 2; }
need_pufs
LOAD_START=$(load_avg)

two_peer_setup locks

# NPAIRS lock/unlock pairs of one file: mean microseconds per pair.
cat >"$WORK/pairs.py" <<'EOF'
import fcntl, os, struct, sys, time

path, n = sys.argv[1], int(sys.argv[2])
fd = os.open(path, os.O_RDWR)
lk = struct.pack('hhqqi4x', fcntl.F_WRLCK, os.SEEK_SET, 0, 100, 0)
un = struct.pack('hhqqi4x', fcntl.F_UNLCK, os.SEEK_SET, 0, 100, 0)
fcntl.fcntl(fd, fcntl.F_SETLK, lk)
fcntl.fcntl(fd, fcntl.F_SETLK, un)
t0 = time.perf_counter()
for i in range(n):
    fcntl.fcntl(fd, fcntl.F_SETLK, lk)
    fcntl.fcntl(fd, fcntl.F_SETLK, un)
print('%.1f' % ((time.perf_counter() - t0) * 1e6 / n))
EOF

# NPAIRS lseek(2) SEEK_DATA of a file, each one call to its holder:
# mean microseconds per call.
cat >"$WORK/calls.py" <<'EOF'
import os, sys, time

path, n = sys.argv[1], int(sys.argv[2])
fd = os.open(path, os.O_RDONLY)
os.lseek(fd, 0, os.SEEK_DATA)
t0 = time.perf_counter()
for i in range(n):
    os.lseek(fd, 0, os.SEEK_DATA)
print('%.1f' % ((time.perf_counter() - t0) * 1e6 / n))
EOF

# The SQL of the lock tests: queries, and the transactions.
LK=$REPO/t/lk.py
[ -r "$LK" ] || { echo "$BENCH: no $LK" >&2; exit 2; }

ns_link
head -c 4096 /dev/zero >"$E2/lockfile"
PUFS_OPTS="peer.heartbeat=0.2"
pufs_start_both "$E1" "$M1" "$E2" "$M2"
msg "p1 and p2 up; p2 holds lockfile"

PING=$(nsenter --net="/run/netns/$NS_A" ping -c 20 -i 0.05 -q "$ADDR_B" |
    awk -F'[/ =]+' '/^rtt/ { print $6, $7, $8 }') || true
read -r RTT_ping_min RTT_ping RTT_ping_max <<<"${PING:-}" || true

# Print the rtt_ms of the other peer in p1's status.
pufs_rtt() {
	pufs_status 1 | "$PYTHON" -c 'import json, sys
print(json.load(sys.stdin)["peers"][0]["rtt_ms"])'
}

# Print field $2 of peer p$1's status locks (0 if it has none).
pufs_locks() {
	pufs_status "$1" | "$PYTHON" -c 'import json, sys
print(json.load(sys.stdin)["locks"].get(sys.argv[1], 0))' "$2"
}

# Program $2 (pairs, calls) on file $3, RUNS times: the median in
# variable $1 (us).
measure() {
	local var=$1 prog=$2 path=$3 i figs=() out
	for ((i = 1; i <= RUNS; i++)); do
		out=$(timeout -k 5 "$TMO" "$PYTHON" "$WORK/$prog.py" "$path" \
		    "$NPAIRS") || { msg "$var: $prog failed"; return 1; }
		figs+=("$out")
		msg "$var run $i: $out us"
	done
	set_median "$var" "${figs[@]}"
}

RTTS=()
for ((i = 0; i < 5; i++)); do
	RTTS+=("$(pufs_rtt)")
	sleep 0.3
done
measure PAIR_raw pairs "$E2/lockfile"
measure PAIR_holder pairs "$M2/lockfile"
SERVED0=$(pufs_locks 2 served) LENT0=$(pufs_locks 2 lent)
measure PAIR_pufs pairs "$M1/lockfile"
SERVED=$(($(pufs_locks 2 served) - SERVED0))
LENT=$(($(pufs_locks 2 lent) - LENT0))
measure CALL_us calls "$M1/lockfile"
for ((i = 0; i < 5; i++)); do
	RTTS+=("$(pufs_rtt)")
	sleep 0.3
done
set_median RTT_pufs "${RTTS[@]}"
# Microseconds, for the ratios.
RTT_pufs_us=$(awk -v a="$RTT_pufs" 'BEGIN { printf "%.1f", a * 1000 }')
RTT_ping_us=$(awk -v a="${RTT_ping:-0}" 'BEGIN { printf "%.1f", a * 1000 }')

# Contended transactions: run $RUNS times on a fresh database.
TXS=()
CHECKS=()
for ((i = 1; i <= RUNS; i++)); do
	D=sqlite$i
	mkdir "$E2/$D"
	"$PYTHON" "$LK" query "$E2/$D/db" "PRAGMA journal_mode=DELETE" \
	    "CREATE TABLE t(tag TEXT, i INTEGER)" >/dev/null
	timeout 10 sh -c "until [ -s '$M1/$D/db' ]; do sleep 0.1; done"
	t0=$EPOCHREALTIME
	timeout -k 5 "$TMO" "$PYTHON" "$LK" sql "$M1/$D/db" "$NTX" p1 >/dev/null &
	a=$!
	timeout -k 5 "$TMO" "$PYTHON" "$LK" sql "$M2/$D/db" "$NTX" p2 >/dev/null &
	b=$!
	wait $a && wait $b || { msg "transactions failed"; exit 1; }
	t1=$EPOCHREALTIME
	TXS+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')")
	CHECKS+=("$("$PYTHON" "$LK" query "$E2/$D/db" \
	    "PRAGMA integrity_check" "SELECT count(*) FROM t" | tr '\n' ' ')")
	msg "transactions run $i: ${TXS[-1]} s, ${CHECKS[-1]}"
done
set_median TX_s "${TXS[@]}"
LOAD_END=$(load_avg)
pufs_stop

# met/not met: $1 (a figure) at most $2 times $3.
within() {
	local a=${!1:-} b=${!3:-}
	if [ -z "$a" ] || [ -z "$b" ]; then
		echo "not measured"
	elif awk -v a="$a" -v b="$b" -v k="$2" 'BEGIN { exit !(a <= k * b) }'; then
		echo "met"
	else
		echo "not met"
	fi
}
ONE=1

fstype=$(findmnt -n -o FSTYPE -T "$WORKPARENT" 2>/dev/null ||
    stat -f -c %T "$WORKPARENT")
cat <<EOF
A file held by peer p2 ($ADDR_B), locked from namespace $ADDR_A over a
veth pair through pufs (p1's mount), through p2's own mount, and on
p2's export directory itself (raw).  Median of $RUNS runs.  Kernel
$(uname -r), $(nproc) CPUs, work directory on $fstype.
Load average (1, 5, 15 min): $LOAD_START at the start, $LOAD_END at the end.

| round trip between the namespaces | us |
|---|--:|
| one call through p1's mount (lseek SEEK_DATA of a file held by p2) | $(fig CALL_us) |
| pufs status rtt_ms of p1 (median of 10) | $RTT_pufs_us |
| ping -c 20, avg (min, max) | $RTT_ping_us (${RTT_ping_min:--} ms, ${RTT_ping_max:--} ms) |

Uncontended F_SETLK F_WRLCK + F_UNLCK of 100 bytes, $NPAIRS pairs a run:

| path | us per pair | in calls | in pufs RTTs | in ping RTTs |
|---|--:|--:|--:|--:|
| raw (p2's directory, local) | $(fig PAIR_raw) | - | - | - |
| p2's own mount (the holder) | $(fig PAIR_holder) | - | - | - |
| pufs, p1 across the link | $(fig PAIR_pufs) | $(ratio PAIR_pufs CALL_us %.1f) | $(ratio PAIR_pufs RTT_pufs_us %.1f) | $(ratio PAIR_pufs RTT_ping_us %.1f) |

For the $((RUNS * (NPAIRS + 1))) pairs through p1, p2 served $SERVED lock requests
and lent the file $LENT times.

Target, a pair in at most 3 round trips (calls / pufs RTT / ping RTT):
$(within PAIR_pufs 3 CALL_us) / $(within PAIR_pufs 3 RTT_pufs_us) / $(within PAIR_pufs 3 RTT_ping_us).

Contended SQLite: $NTX write transactions from p1 and $NTX from p2 at
once (rollback journal, BEGIN IMMEDIATE, one INSERT each) on one
database held by p2: $TX_s s (runs: ${TXS[*]}); integrity_check and
rows after each run: ${CHECKS[*]}.

Target, under 30 s: $(within TX_s 30 ONE).
EOF
print_notes
