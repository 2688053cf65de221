#!/bin/bash
#
# rename.sh - saving a file held by another peer the way programs do:
# write a temporary file beside it and rename(2) it over the original.
# pufs against sshfs, both crossing the same network link.
#
# The setup is remote.sh's: two network namespaces, A (10.250.0.1) and
# B (10.250.0.2), joined by a veth pair; pufs peer p1 in A, p2 in B,
# each exporting its own directory (the daemons enter the namespaces
# with nsenter --net only, so their FUSE mounts stay visible here); a
# private sshd in B, and sshfs in A mounting p2's export directory
# through it.  p2 holds every file measured, in two directories:
#
#   merged  exists on p1 too (empty there), so the union merges it: a
#           new file made through p1 lands on p1 (create_policy=local)
#           and renaming it over p2's file is a cross-peer move (copy to
#           p2 under a hidden name, fsync, rename over, unlink on p1);
#   p2only  exists on p2 alone: a new file goes to p2 directly and the
#           rename stays on p2.
#
# Measured, median of RUNS runs, each path alone (the pufs daemons run
# only during the pufs rows, sshd and sshfs only during theirs):
#
#   1. NREPLACE atomic replaces of a 4 KiB file by a small python3
#      program: mkstemp beside the target, write 4 KiB, fsync, close,
#      os.rename over the target; the mean time per replace and per
#      step.  Through raw (p2's directory itself), sshfs, and pufs in
#      both directories.  The round-trip time of the link is taken from
#      p1's pufs status (peers[].rtt_ms, the daemons' own pings) and
#      from ping(8) in A to B, and the replace time is given in round
#      trips.  For pufs, the requests p2 served per replace (its
#      workers' completed jobs: every request p1 sends it, one after
#      the other, and nothing else during the run) count the round
#      trips the replace made.
#   2. sed -i s/a/b/ of a SIZE_MB MiB text file in merged (and, for
#      pufs, in p2only too), against cp of it to a new name in the same
#      directory; cold (the kernel's caches dropped and, for pufs,
#      attr_timeout waited out) and warm (the file read once through
#      the same path just before).  sed's own CPU time (user + system)
#      is given too: no path makes sed -i faster than that.
#
# Every result is checked where it should land: the target on p2 with
# the last content written, nothing left on p1 or beside the target.
# The load average is read at the start and at the end.
#
# Needs root and python3.  Traffic stays inside the two namespaces.
# Everything started is stopped by PID, every mount undone, the
# namespaces deleted and the work directory removed on any exit,
# SIGINT included.  Limits: the link is a veth pair (no latency, no
# loss), so a round trip is mostly the two daemons' own time; the
# figures are only as quiet as the machine.
#
# Usage: bench/rename.sh [-s SIZE_MB] [-n NREPLACE] [-p PUFS] [-r RUNS]
#                        [-w DIR]
#
set -euo pipefail
export LC_ALL=C

SIZE_MB=100
NREPLACE=200
REPO=$(cd "$(dirname "$0")/.." && pwd)
PUFS=$REPO/build/daemon/pufs
RUNS=5
WORKPARENT=/var/tmp
BENCH=rename
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

usage() {
	cat <<EOF
usage: $0 [-s SIZE_MB] [-n NREPLACE] [-p PUFS] [-r RUNS] [-w DIR]

  -s SIZE_MB   size of the file sed -i edits, in MiB (default $SIZE_MB)
  -n NREPLACE  4 KiB replaces per run (default $NREPLACE)
$(common_usage)

Prints Markdown tables on standard output, progress on standard error.
EOF
}

while getopts "s:n:p:r:w:h" opt; do
	case $opt in
	s) SIZE_MB=$OPTARG ;;
	n) NREPLACE=$OPTARG ;;
	*) common_opt "$opt" ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || { usage >&2; exit 2; }
need_positive SIZE_MB NREPLACE RUNS
need_root "namespaces, FUSE mounts, sshd"
need_commands ip nsenter fusermount3 timeout ping sed "$PYTHON"
need_pufs
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

two_peer_setup rename

# The replace program: NREPLACE times, a 4 KiB temporary file beside
# the target (mkstemp), written, fsynced, closed and renamed over it.
# Prints the mean milliseconds per replace, then per step: create,
# write, fsync, close, rename.
cat >"$WORK/replace.py" <<'EOF'
import os, sys, tempfile, time

d, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
target = os.path.join(d, name)
buf = bytearray(4096)
steps = [0.0] * 5
clock = time.perf_counter
start = clock()
for i in range(n):
    buf[:16] = b"%015d\n" % i
    t0 = clock()
    fd, tmp = tempfile.mkstemp(dir=d, prefix="." + name + ".")
    t1 = clock()
    if os.write(fd, buf) != len(buf):
        sys.exit("short write")
    t2 = clock()
    os.fsync(fd)
    t3 = clock()
    os.close(fd)
    t4 = clock()
    os.rename(tmp, target)
    t5 = clock()
    for k, (a, b) in enumerate([(t0, t1), (t1, t2), (t2, t3), (t3, t4),
                                (t4, t5)]):
        steps[k] += b - a
total = clock() - start
print(" ".join("%.3f" % (x * 1000 / n) for x in [total] + steps))
EOF

# What p1 asked per replace between two of its status reports: each
# operation with the count per replace, FUSE requests, moves done.
cat >"$WORK/opsdiff.py" <<'EOF'
import json, sys

a, b = (json.load(open(f)) for f in sys.argv[1:3])
n = int(sys.argv[3])
out = []
for op, v in sorted(b["ops"].items()):
    d = v - a["ops"].get(op, 0)
    if d:
        out.append("%s %.2f" % (op, d / n))
out.append("FUSE requests %.2f" %
           ((b["fuse"]["requests"] - a["fuse"]["requests"]) / n))
out.append("moves %.2f" % ((b["moves"]["done"] - a["moves"]["done"]) / n))
print(", ".join(out))
EOF

# The requests p2 served per replace between two of its status reports.
cat >"$WORK/served.py" <<'EOF'
import json, sys

a, b = (json.load(open(f)) for f in sys.argv[1:3])
n = int(sys.argv[3])
print("%.2f" % ((b["workers"]["completed"] - a["workers"]["completed"]) / n))
EOF

# Run a command with the time limit TMO, output discarded; print its
# wall time and its CPU time (user + system, its children included),
# in seconds.  Fails if the command fails.
timed_cpu() {
	local TIMEFORMAT='%R %U %S' out
	out=$( { time timeout -k 5 "$TMO" "$@" >/dev/null 2>&1; } 2>&1 ) ||
	    return 1
	awk '{ printf "%.3f %.3f\n", $1, $2 + $3 }' <<<"$out"
}

ns_link

# What p2 holds: the two directories, each with a 4 KiB target and the
# text file for sed (lines of 63 "a", so that every sed run changes
# every line and the size stays).  merged exists on p1 too, empty.
mkdir "$E2/merged" "$E2/p2only" "$E1/merged"
BIG_BYTES=$((SIZE_MB * 1048576))
for sub in merged p2only; do
	head -c 4096 /dev/zero >"$E2/$sub/target"
	# head closes the pipe: yes's SIGPIPE is expected.
	{ yes aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa ||
	    true; } | head -c "$BIG_BYTES" >"$E2/$sub/big.txt"
done
sync
msg "p2 holds target and big.txt ($SIZE_MB MiB) in merged/ and p2only/; p1 holds merged/, empty"

# Print the names in directory $1, hidden ones included.
names_in() {
	find "$1" -mindepth 1 -maxdepth 1 -printf '%f\n'
}

# Check that subdirectory $1 holds on p2 exactly the names that follow
# and on p1 nothing (if p1 has it); say what is wrong.
check_landed() {
	local sub=$1 want got
	shift
	want=$(printf '%s\n' "$@" | sort)
	got=$(names_in "$E2/$sub" | sort)
	if [ "$got" != "$want" ]; then
		msg "p2's $sub holds $(echo "$got" | tr '\n' ' '), not $(echo "$want" | tr '\n' ' ')"
		return 1
	fi
	if [ -d "$E1/$sub" ] && [ -n "$(names_in "$E1/$sub")" ]; then
		msg "p1's $sub holds $(names_in "$E1/$sub" | tr '\n' ' ')"
		return 1
	fi
}

# Replaces through directory $2 (p2's subdirectory $3, or of $2 for
# raw) under label $1; with pufs, also what p1 asked per replace.  Sets
# RP_$1 (ms per replace), and RS_$1_create ... RS_$1_rename (ms).
measure_replace() {
	local key=$1 dir=$2 sub=$3 i out want head
	local tot=() s0=() s1=() s2=() s3=() s4=() rtts=() served=()
	for ((i = 1; i <= RUNS; i++)); do
		pufs_snapshot "$key.before"
		p2_snapshot "$key.before2"
		out=$(timeout -k 5 "$TMO" "$PYTHON" "$WORK/replace.py" \
		    "$dir" target "$NREPLACE") ||
		    { msg "$key: the replace program failed in run $i"; return 1; }
		pufs_snapshot "$key.after"
		p2_snapshot "$key.after2"
		check_landed "$sub" target big.txt || return 1
		want=$(printf '%015d' $((NREPLACE - 1)))
		head=$(head -c 15 "$E2/$sub/target")
		if [ "$head" != "$want" ] ||
		    [ "$(stat -c %s "$E2/$sub/target")" != 4096 ]; then
			msg "$key: p2's $sub/target is not the last one written"
			return 1
		fi
		# Word splitting of the program's line is meant.
		# shellcheck disable=SC2086
		set -- $out
		msg "$key: run $i: $1 ms per replace (create $2, write $3, fsync $4, close $5, rename $6)"
		tot+=("$1") s0+=("$2") s1+=("$3") s2+=("$4") s3+=("$5") s4+=("$6")
		if [ -s "$WORK/$key.after" ]; then
			rtts+=("$(pufs_rtt "$WORK/$key.after")")
			"$PYTHON" "$WORK/opsdiff.py" "$WORK/$key.before" \
			    "$WORK/$key.after" "$NREPLACE" >"$WORK/$key.ops"
			served+=("$("$PYTHON" "$WORK/served.py" \
			    "$WORK/$key.before2" "$WORK/$key.after2" \
			    "$NREPLACE")")
		fi
	done
	set_median "RP_$key" "${tot[@]}"
	set_median "RS_${key}_create" "${s0[@]}"
	set_median "RS_${key}_write" "${s1[@]}"
	set_median "RS_${key}_fsync" "${s2[@]}"
	set_median "RS_${key}_close" "${s3[@]}"
	set_median "RS_${key}_rename" "${s4[@]}"
	[ ${#rtts[@]} -eq 0 ] || PUFS_RTTS+=("${rtts[@]}")
	[ ${#served[@]} -eq 0 ] || set_median "RT_$key" "${served[@]}"
}

# Keep p1's status in WORK/$1 (pufs rows only; empty otherwise).
pufs_snapshot() {
	: >"$WORK/$1"
	[ -n "${PUFS_PID_1:-}" ] && pufs_status 1 >"$WORK/$1"
	return 0
}

# The same of p2's.
p2_snapshot() {
	: >"$WORK/$1"
	[ -n "${PUFS_PID_2:-}" ] && pufs_status 2 >"$WORK/$1"
	return 0
}

# Print the rtt_ms of the other peer in status file $1.
pufs_rtt() {
	"$PYTHON" -c 'import json, sys
print(json.load(open(sys.argv[1]))["peers"][0]["rtt_ms"])' "$1"
}

nothing() {
	return 0
}

# Warm: the file read once through the same path.
read_once() {
	cat "$BIG" >/dev/null
}

# Cold: the kernel's caches dropped, then command $1.
cold_then() {
	drop_caches
	"$1"
}

# sed -i of big.txt through directory $2 (p2's subdirectory $3)
# against cp of it to a new name there, under label $1; before each
# command, $4 makes the cold state, or read_once the warm one.  Sets
# SC_$1, CC_$1 (cold) and SW_$1, CW_$1 (warm), in seconds, and LAND_$1
# (the peer the copy landed on).
measure_sed() {
	local key=$1 dir=$2 sub=$3 coldprep=$4 mode i s c prep land ldir cpu
	local -a sc=() cc=() sw=() cw=() cpus=()
	BIG=$dir/big.txt
	for mode in cold warm; do
		for ((i = 1; i <= RUNS; i++)); do
			if [ $mode = cold ]; then prep="cold_then $coldprep"
			else prep=read_once; fi
			$prep
			read -r s cpu < <(timed_cpu sed -i s/a/b/ "$BIG") &&
			    [ -n "$s" ] ||
			    { msg "$key: sed -i failed"; return 1; }
			cpus+=("$cpu")
			check_landed "$sub" target big.txt || return 1
			if [ "$(stat -c %s "$E2/$sub/big.txt")" != "$BIG_BYTES" ] ||
			    [ "$(head -c 1 "$E2/$sub/big.txt")" != b ]; then
				msg "$key: p2's $sub/big.txt is not sed's output"
				return 1
			fi
			$prep
			c=$(timed cp "$BIG" "$dir/copy.txt") ||
			    { msg "$key: cp failed"; return 1; }
			if [ -e "$E2/$sub/copy.txt" ]; then land=p2 ldir=$E2
			elif [ -e "$E1/$sub/copy.txt" ]; then land=p1 ldir=$E1
			else msg "$key: the copy is on neither peer"; return 1; fi
			if [ "$(stat -c %s "$ldir/$sub/copy.txt")" != "$BIG_BYTES" ]; then
				msg "$key: the copy on $land is short"
				return 1
			fi
			rm "$dir/copy.txt"
			msg "$key: run $i, $mode: sed -i $s s (CPU $cpu s), cp $c s (copy on $land)"
			if [ $mode = cold ]; then sc+=("$s") cc+=("$c")
			else sw+=("$s") cw+=("$c"); fi
		done
	done
	printf -v "LAND_$key" '%s' "$land"
	set_median "SC_$key" "${sc[@]}"
	set_median "CC_$key" "${cc[@]}"
	set_median "SW_$key" "${sw[@]}"
	set_median "CW_$key" "${cw[@]}"
	set_median "SU_$key" "${cpus[@]}"
}

PUFS_RTTS=()

# 1. raw: p2's export directory itself.
msg "raw: $E2"
measure_replace raw "$E2/p2only" p2only || NOTES+=("raw: replace failed")
measure_sed raw "$E2/merged" merged nothing || NOTES+=("raw: sed/cp failed")

# 2. sshfs from namespace A to a private sshd in namespace B.
if start_sshd "$ADDR_B" "$SSH_PORT" nsenter --net="/run/netns/$NS_B"; then
	if sshfs_mount ""; then
		msg "sshfs mounted at $MSSH (default options)"
		measure_replace sshfs "$MSSH/merged" merged ||
		    NOTES+=("sshfs: replace failed")
		measure_sed sshfs "$MSSH/merged" merged nothing ||
		    NOTES+=("sshfs: sed/cp failed")
		sshfs_stop
	else
		NOTES+=("sshfs: did not mount")
	fi
	stop_pid "$SSHD_PID"
else
	msg "sshd cannot be started; sshfs rows skipped"
	NOTES+=("sshfs: sshd could not be started")
fi

# 3. pufs: p1 in namespace A, p2 in namespace B; p1's mount is measured.
PUFS_OPTS=peer.create_policy=local
if pufs_start_both "$E1" "$M1" "$E2" "$M2"; then
	msg "pufs p1 mounted at $M1, p2 at $M2, both up"
	# The link's round trip by ICMP, with both daemons running.
	PING=$(nsenter --net="/run/netns/$NS_A" ping -q -n -c 20 -i 0.2 \
	    "$ADDR_B" | awk -F'[/ =]+' '/^rtt/ { print $6, $7, $8 }') || true
	measure_replace pufs "$M1/merged" merged ||
	    NOTES+=("pufs: replace in merged failed")
	measure_replace pufs_p2 "$M1/p2only" p2only ||
	    NOTES+=("pufs: replace in p2only failed")
	measure_sed pufs "$M1/merged" merged pufs_cold ||
	    NOTES+=("pufs: sed/cp in merged failed")
	measure_sed pufs_p2 "$M1/p2only" p2only pufs_cold ||
	    NOTES+=("pufs: sed/cp in p2only failed")
	pufs_snapshot final
	MOVES=$("$PYTHON" -c 'import json, sys
m = json.load(open(sys.argv[1]))["moves"]
print("%d done, %d bytes, %d failed" % (m["done"], m["bytes"], m["failed"]))' \
	    "$WORK/final") || true
else
	NOTES+=("pufs: the two peers did not start (see the logs above)")
fi
pufs_stop
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# The round trips.
[ ${#PUFS_RTTS[@]} -eq 0 ] || set_median RTT_pufs "${PUFS_RTTS[@]}"
# RTT_ping is read through ratio's indirection.
# shellcheck disable=SC2034
read -r RTT_ping_min RTT_ping RTT_ping_max <<<"${PING:-}" || true

# One row of the replace table: label, key.
rrow() {
	local k=$2
	echo "| $1 | $(fig "RP_$k") | $(fig "RS_${k}_create") | $(fig "RS_${k}_write")" \
	    "| $(fig "RS_${k}_fsync") | $(fig "RS_${k}_close") | $(fig "RS_${k}_rename")" \
	    "| $(ratio "RP_$k" RTT_pufs %.1f) | $(ratio "RP_$k" RTT_ping %.1f) |"
}

# Whether ms figure $1 is within 4 round trips of $2.
target4() {
	local a=${!1:-} b=${!2:-}
	if [ -z "$a" ] || [ -z "$b" ]; then
		echo "not measured"
	elif awk -v a="$a" -v b="$b" 'BEGIN { exit !(a <= 4 * b) }'; then
		echo "met"
	else
		echo "not met"
	fi
}

# Whether the figure named $1 is at most 4.
atmost4() {
	local a=${!1:-}
	if [ -z "$a" ]; then
		echo "not measured"
	elif awk -v a="$a" 'BEGIN { exit !(a <= 4) }'; then
		echo "met"
	else
		echo "not met"
	fi
}

# One row of the sed table: label, key.
srow() {
	local k=$2 land=LAND_$2
	echo "| $1 | $(fig "SC_$k") | $(fig "CC_$k") | $(ratio "SC_$k" "CC_$k")" \
	    "| $(fig "SW_$k") | $(fig "CW_$k") | $(ratio "SW_$k" "CW_$k")" \
	    "| $(fig "SU_$k") | ${!land:--} |"
}

fstype=$(findmnt -n -o FSTYPE -T "$WORKPARENT" 2>/dev/null ||
    stat -f -c %T "$WORKPARENT")
cat <<EOF
Files held by peer p2 ($ADDR_B), changed from namespace $ADDR_A over a
veth pair through pufs (p1's mount, create_policy=local) and sshfs; raw
is p2's export directory itself.  Median of $RUNS runs.  Kernel
$(uname -r), $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), work directory on $fstype.
Load average (1, 5, 15 min): $LOAD_START at the start, $LOAD_END at the end.

Round trip between the namespaces:

| measure | ms |
|---|--:|
| pufs status rtt_ms of p1 (median after each pufs replace run) | $(fig RTT_pufs) |
| ping -c 20 from A to B, avg (min, max) | $(fig RTT_ping) (${RTT_ping_min:--}, ${RTT_ping_max:--}) |

Atomic replace of a 4 KiB file, $NREPLACE times a run: mkstemp beside
the target, write, fsync, close, rename over the target.  Mean ms per
replace and per step; the last two columns give the replace in round
trips.

| path | ms per replace | create | write | fsync | close | rename | in pufs RTTs | in ping RTTs |
|---|--:|--:|--:|--:|--:|--:|--:|--:|
$(rrow "raw (p2's directory, local)" raw)
$(rrow "sshfs" sshfs)
$(rrow "pufs, merged directory (cross-peer move)" pufs)
$(rrow "pufs, directory only on p2" pufs_p2)

Requests p2 served per replace (the round trips to the holder, one
after the other): merged $(fig RT_pufs), p2 only $(fig RT_pufs_p2).

Target, at most 4 round trips per replace, in time (pufs RTT / ping
RTT): merged $(target4 RP_pufs RTT_pufs) / $(target4 RP_pufs RTT_ping),
p2 only $(target4 RP_pufs_p2 RTT_pufs) / $(target4 RP_pufs_p2 RTT_ping);
in round trips made: merged $(atmost4 RT_pufs), p2 only $(atmost4 RT_pufs_p2).

What p1 asked per replace (last run; its own export's calls included):
- merged: $(cat "$WORK/pufs.ops" 2>/dev/null || echo unknown)
- p2 only: $(cat "$WORK/pufs_p2.ops" 2>/dev/null || echo unknown)

sed -i s/a/b/ of a $SIZE_MB MiB text file held by p2, against cp of it
to a new name in the same directory, in seconds; raw and sshfs in the
merged directory (for them a plain directory of p2).
Cold: caches dropped (and, for pufs, attr_timeout=$ATTR_TIMEOUT waited
out); warm: the file read once through the same path just before.

| path | sed -i cold | cp cold | sed/cp cold | sed -i warm | cp warm | sed/cp warm | sed CPU | the copy landed on |
|---|--:|--:|--:|--:|--:|--:|--:|---|
$(srow "raw (p2's directory, local)" raw)
$(srow "sshfs" sshfs)
$(srow "pufs, merged directory (cross-peer move)" pufs)
$(srow "pufs, directory only on p2" pufs_p2)

sed -i over raw sed -i (the cost of the path), cold / warm: sshfs
$(ratio SC_sshfs SC_raw) / $(ratio SW_sshfs SW_raw), pufs merged $(ratio SC_pufs SC_raw) / $(ratio SW_pufs SW_raw), pufs p2 only $(ratio SC_pufs_p2 SC_raw) / $(ratio SW_pufs_p2 SW_raw).

Target, sed -i within 1.5x of cp through pufs, merged directory: cold $(awk -v r="$(ratio SC_pufs CC_pufs)" 'BEGIN { print (r == "-" ? "not measured" : r <= 1.5 ? "met" : "not met") }'),
warm $(awk -v r="$(ratio SW_pufs CW_pufs)" 'BEGIN { print (r == "-" ? "not measured" : r <= 1.5 ? "met" : "not met") }').
pufs moves over the run: ${MOVES:-unknown}.
EOF
print_notes
