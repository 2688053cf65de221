#!/bin/bash
#
# encrypt.sh - what [security] encrypt = yes costs: sequential write and
# cold read of a file held by another peer, through pufs with the key in
# clear, pufs with encrypt = yes (TLS 1.3, TLS_AES_128_GCM_SHA256), and
# sshfs (which encrypts too, aes128-gcm@openssh.com by default on this
# machine), checked against the targets of issue 15: encrypted at least
# 2/3 of clear, and at least 2x sshfs.
#
# The setup is remote.sh's and data.sh's: namespaces A (10.250.0.1) and
# B (10.250.0.2) joined by a veth pair, pufs p1 in A and p2 in B, both
# with one key made by `pufs keygen`; a private sshd in B for sshfs.
# Each figure is the median of RUNS runs of dd bs=1M: a write of SIZE_MB
# MiB with conv=fsync, then a read, cold (the kernel's caches dropped
# and, for pufs, a fresh p1, its block cache empty).  The paths are
# measured in turn, ROUNDS times over (clear, encrypted, sshfs, clear,
# ...), so that a burst of other load falls on all of them alike; the
# load average is shown before each.
#
# Needs root and what remote.sh needs.  Everything started is stopped by
# PID, every mount undone, the namespaces deleted and the work directory
# removed on any exit.  Limits: the link is a veth pair (no latency, no
# loss); both ends share the machine's CPUs, so the cipher's cost is
# paid twice on one machine.
#
# Usage: bench/encrypt.sh [-s SIZE_MB] [-p PUFS] [-r RUNS] [-w DIR]
#
set -euo pipefail
export LC_ALL=C

SIZE_MB=512
REPO=$(cd "$(dirname "$0")/.." && pwd)
PUFS=$REPO/build/daemon/pufs
RUNS=3
ROUNDS=2
WORKPARENT=/var/tmp
BENCH=encrypt
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

usage() {
	cat <<USAGE
usage: $0 [-s SIZE_MB] [-p PUFS] [-r RUNS] [-w DIR]

  -s SIZE_MB   size of the file in MiB (default $SIZE_MB)
$(common_usage)

RUNS runs of each path, in ROUNDS=$ROUNDS rounds.  Prints Markdown
tables on standard output, progress on standard error.
USAGE
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
need_root "namespaces, FUSE mounts, sshd, drop_caches"
need_commands ip nsenter fusermount3 timeout sshfs
need_pufs
LOAD_START=$(load_avg)

two_peer_setup encrypt
ns_link
mkdir "$E2/seq"
"$PUFS" keygen "$WORK/union.key" >/dev/null
KEY=security.key_file=$WORK/union.key

# The cold state of pufs: the caches dropped and a fresh p1.
pufs_fresh() {
	pufs_stop_one 1
	drop_caches
	pufs_start 1 "$NS_A" "$ADDR_A" "$ADDR_B" "$E1" "$M1" &&
	    pufs_wait_up 1 && pufs_wait_up 2
}

cold() {
	drop_caches
}

# The CPU time, in clock ticks, the pufs daemons running now have used
# (user and system; 0 when none runs, as for sshfs).
daemons_cpu() {
	local t
	read -r -a t <<<"$(pufs_cpu)"
	echo $((t[0] + t[1]))
}

# CPU seconds per GiB of the $1 ticks it took to move SIZE_MB MiB.
cpu_per_gib() {
	awk -v t="$1" -v hz="$(getconf CLK_TCK)" -v mb="$SIZE_MB" \
	    'BEGIN { printf "%.2f\n", t / hz * 1024 / mb }'
}

# One run through directory $2 (whose seq/ is p2's) under label $1,
# cold by $3: appends to the lists W_$1 and R_$1 (MB/s), and CW_$1 and
# CR_$1 (the daemons' CPU seconds per GiB, pufs only).
run_seq() {
	local key=$1 f=$2/seq/seq.dat prep=$3 w r bytes=$((SIZE_MB * 1048576))
	local c0 c1 cw cr
	rm -f "$f"
	sync
	c0=$(daemons_cpu)
	w=$(dd_mbs "$bytes" if=/dev/zero of="$f" bs=1M count="$SIZE_MB" \
	    conv=fsync) || return 1
	c1=$(daemons_cpu)
	cw=$(cpu_per_gib $((c1 - c0)))
	if [ "$(stat -c %s "$E2/seq/seq.dat")" != "$bytes" ]; then
		msg "$key: p2 does not hold the whole file"
		return 1
	fi
	$prep || return 1
	c0=$(daemons_cpu)
	r=$(dd_mbs "$bytes" if="$f" of=/dev/null bs=1M) || return 1
	c1=$(daemons_cpu)
	cr=$(cpu_per_gib $((c1 - c0)))
	rm -f "$f"
	msg "$key: write $w MB/s, cold read $r MB/s; daemons' CPU $cw and $cr s/GiB (load $(load_avg))"
	eval "W_$key+=(\"\$w\") R_$key+=(\"\$r\") CW_$key+=(\"\$cw\") CR_$key+=(\"\$cr\")"
}

# The runs of one round for path $1: pufs with PUFS_OPTS, or sshfs.
round() {
	local key=$1 n=$2 i
	case $key in
	sshfs)
		# sshd needs it at each connection, and another run's
		# cleanup may have taken it away since start_sshd.
		[ -d /run/sshd ] || mkdir -m 0755 /run/sshd
		sshfs_mount "" || return 1
		for ((i = 0; i < n; i++)); do
			run_seq sshfs "$MSSH" cold || break
		done
		sshfs_stop
		;;
	*)
		pufs_start_both "$E1" "$M1" "$E2" "$M2" || return 1
		for ((i = 0; i < n; i++)); do
			run_seq "$key" "$M1" pufs_fresh || break
		done
		if [ "$key" = tls ] &&
		    ! pufs_status 1 | grep -q '"tls":"TLS_AES_128_GCM_SHA256"'; then
			msg "tls: p1 does not report TLS on its stream to p2"
			NOTES+=("tls: the stream was not encrypted")
		fi
		pufs_stop
		;;
	esac
}

start_sshd "$ADDR_B" "$SSH_PORT" nsenter --net="/run/netns/$NS_B" ||
	{ msg "sshd cannot be started"; exit 1; }
W_clear=() R_clear=() W_tls=() R_tls=() W_sshfs=() R_sshfs=()
CW_clear=() CR_clear=() CW_tls=() CR_tls=() CW_sshfs=() CR_sshfs=()
LOADS=()
for ((round_i = 1; round_i <= ROUNDS; round_i++)); do
	n=$(((RUNS + ROUNDS - round_i) / ROUNDS))
	[ "$n" -gt 0 ] || continue
	for key in clear tls sshfs; do
		LOADS+=("$key $(load_avg)")
		case $key in
		clear) PUFS_OPTS=$KEY ;;
		tls) PUFS_OPTS=$KEY,security.encrypt=yes ;;
		esac
		round "$key" "$n" || NOTES+=("$key: round $round_i failed")
	done
done
stop_pid "$SSHD_PID"
LOAD_END=$(load_avg)
for key in clear tls sshfs; do
	eval "ws=(\"\${W_$key[@]}\") rs=(\"\${R_$key[@]}\")"
	# shellcheck disable=SC2154  # set by the eval above
	[ ${#ws[@]} -gt 0 ] && MEDIAN_FMT=%.0f set_median "W_$key" "${ws[@]}"
	[ ${#rs[@]} -gt 0 ] && MEDIAN_FMT=%.0f set_median "R_$key" "${rs[@]}"
	eval "ALL_W_$key=\"\${ws[*]}\" ALL_R_$key=\"\${rs[*]}\""
	eval "ws=(\"\${CW_$key[@]}\") rs=(\"\${CR_$key[@]}\")"
	[ ${#ws[@]} -gt 0 ] && MEDIAN_FMT=%.2f set_median "CW_$key" "${ws[@]}"
	[ ${#rs[@]} -gt 0 ] && MEDIAN_FMT=%.2f set_median "CR_$key" "${rs[@]}"
done

# "met" if $1 >= $2, "not met" if not, "not measured" if $1 is "-".
verdict() {
	awk -v v="$1" -v t="$2" 'BEGIN {
		if (v == "-" || v == "") print "not measured"
		else if (v + 0 >= t + 0) print "met"
		else print "not met"
	}'
}

cat <<OUT
Files held by peer p2 ($ADDR_B), written and read from namespace
$ADDR_A over a veth pair.  $SIZE_MB MiB, dd bs=1M, write with
conv=fsync, read cold; median of $RUNS runs of each path, in $ROUNDS
rounds taken in turn.  The daemons' CPU is the user and system time
p1 and p2 spent during the dd, per GiB moved: what the cipher costs,
less disturbed by other load than the rates.  Kernel $(uname -r), $(nproc) CPUs, $(openssl version 2>/dev/null | cut -d' ' -f1-2).
pufs $PUFS, from the tree at $(git -C "$REPO" log -1 --format=%h 2>/dev/null || echo unknown).
Load average (1, 5, 15 min): $LOAD_START at the start, $LOAD_END at the end;
before each round: $(printf '%s; ' "${LOADS[@]}")

| measurement | pufs, key in clear | pufs, encrypt = yes | sshfs | encrypted/clear | encrypted/sshfs |
|---|--:|--:|--:|--:|--:|
| seq write, MB/s | $(fig W_clear) | $(fig W_tls) | $(fig W_sshfs) | $(ratio W_tls W_clear) | $(ratio W_tls W_sshfs) |
| seq read cold, MB/s | $(fig R_clear) | $(fig R_tls) | $(fig R_sshfs) | $(ratio R_tls R_clear) | $(ratio R_tls R_sshfs) |
| daemons' CPU, write, s/GiB | $(fig CW_clear) | $(fig CW_tls) | - | $(ratio CW_tls CW_clear) | - |
| daemons' CPU, read, s/GiB | $(fig CR_clear) | $(fig CR_tls) | - | $(ratio CR_tls CR_clear) | - |

Every run, MB/s (write; read): clear ${ALL_W_clear:-}; ${ALL_R_clear:-}.
encrypted ${ALL_W_tls:-}; ${ALL_R_tls:-}.  sshfs ${ALL_W_sshfs:-}; ${ALL_R_sshfs:-}.

| target | figure | wanted | |
|---|--:|--:|---|
| seq write, encrypted/clear | $(ratio W_tls W_clear) | 0.67 | $(verdict "$(ratio W_tls W_clear)" 0.67) |
| seq read cold, encrypted/clear | $(ratio R_tls R_clear) | 0.67 | $(verdict "$(ratio R_tls R_clear)" 0.67) |
| seq write, encrypted/sshfs | $(ratio W_tls W_sshfs) | 2 | $(verdict "$(ratio W_tls W_sshfs)" 2) |
| seq read cold, encrypted/sshfs | $(ratio R_tls R_sshfs) | 2 | $(verdict "$(ratio R_tls R_sshfs)" 2) |
OUT
print_notes
