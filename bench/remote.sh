#!/bin/bash
#
# remote.sh - pufs against sshfs for files held by another peer, both
# crossing the same network link.
#
# Two network namespaces, A (10.250.0.1) and B (10.250.0.2), are joined
# by a veth pair.  Peer p1 runs in A and peer p2 in B, each exporting
# its own directory; the daemons enter the namespaces with nsenter --net
# only, so their FUSE mounts stay visible here.  A private sshd runs in
# B, and sshfs in A mounts p2's export directory through it.  The same
# files, all held by p2, are then reached through:
#
#   raw          p2's export directory itself (local baseline);
#   passthrough  libfuse's passthrough_ll example mounted on it locally
#                (the cost of any FUSE file system, no network);
#   sshfs        sshfs from A, default options (directory cache on);
#   sshfs-nc     the same with -o dir_cache=no (sshfs 2's cache=no);
#   pufs         p1's mount, which asks p2 over the veth link;
#   pufs alone   one peer with no other exporting p2's directory and
#                mounting it itself (ls -lR only: pufs's own cost).
#
# Measured for each, median of RUNS runs: dd(1) sequential write with
# conv=fsync, read after dropping the kernel's caches (cold) and read
# again (warm); ls -lR of a tree of NFILES files, cold and warm; create
# and then delete of NMETA small files.  "Cold" means the kernel's
# caches dropped and, for pufs, attr_timeout waited out so that p1 asks
# p2 again; for sshfs with its directory cache, a fresh sshfs process.
# Each path is measured alone: the pufs daemons run only during the
# pufs rows, sshd and sshfs only during theirs.  At the end of their
# rows the memory (VmHWM, VmRSS) of the pufs daemons, of sshfs, its ssh
# client and the sshd session processes is taken.
#
# Needs root.  Traffic stays inside the two namespaces.  Everything
# started is stopped by PID, every mount undone, the namespaces deleted
# and the work directory removed on any exit, SIGINT included.  Limits:
# the link is a veth pair (no latency, no loss), so the figures show the
# cost of the protocols and of the processes, not of a real network;
# the figures are only as quiet as the machine.
#
# Usage: bench/remote.sh [-s SIZE_MB] [-n NFILES] [-m NMETA] [-o PARTS]
#                        [-p PUFS] [-r RUNS] [-w DIR]
#
set -euo pipefail
export LC_ALL=C

SIZE_MB=512
NFILES=10000
NMETA=2000
PARTS=seq,ls,meta
REPO=$(cd "$(dirname "$0")/.." && pwd)
PUFS=$REPO/build/daemon/pufs
RUNS=3
WORKPARENT=/var/tmp
EXAMPLES=/usr/share/doc/libfuse3-dev/examples
BENCH=remote
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

usage() {
	cat <<EOF
usage: $0 [-s SIZE_MB] [-n NFILES] [-m NMETA] [-o PARTS] [-p PUFS] [-r RUNS]
          [-w DIR]

  -s SIZE_MB   size of the sequential test file in MiB (default $SIZE_MB)
  -n NFILES    files in the ls -lR tree, in 100 directories (default $NFILES)
  -m NMETA     files created then deleted (default $NMETA)
  -o PARTS     the rows to measure, a comma-separated list of seq
               (sequential I/O), ls (ls -lR, and pufs alone) and meta
               (create and delete) (default $PARTS)
$(common_usage)

Prints Markdown tables on standard output, progress on standard error.
EOF
}

while getopts "s:n:m:o:p:r:w:h" opt; do
	case $opt in
	s) SIZE_MB=$OPTARG ;;
	n) NFILES=$OPTARG ;;
	m) NMETA=$OPTARG ;;
	o) PARTS=$OPTARG ;;
	*) common_opt "$opt" ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || { usage >&2; exit 2; }
need_positive SIZE_MB NFILES NMETA RUNS
for p in ${PARTS//,/ }; do
	case $p in
	seq|ls|meta) ;;
	*) echo "$BENCH: -o: no part $p (seq, ls, meta)" >&2; exit 2 ;;
	esac
done

# Whether part $1 is measured.
part() {
	case ,$PARTS, in
	*,$1,*) return 0 ;;
	*) return 1 ;;
	esac
}

# Run the command $2... if part $1 is measured.
maybe() {
	local p=$1
	shift
	part "$p" || return 0
	"$@"
}
need_root "namespaces, FUSE mounts, sshd"
need_commands ip nsenter fusermount3 timeout
need_pufs

two_peer_setup remote
MPT=$WORK/mnt-passthrough
mkdir "$MPT"
MOUNTS+=("$MPT")

# Sequential I/O through directory $2 (whose seq/ is held by p2) under
# label $1: sets W_$1, RC_$1 and RW_$1 (MB/s).
measure_seq() {
	local key=$1 f=$2/seq/seq.dat i w rc rw ws=() rcs=() rws=() size
	for ((i = 1; i <= RUNS; i++)); do
		rm -f "$f"
		sync
		w=$(timeout -k 5 "$TMO" dd if=/dev/zero of="$f" bs=1M \
		    count="$SIZE_MB" conv=fsync 2>&1 | dd_rate)
		size=$(stat -c %s "$E2/seq/seq.dat" 2>/dev/null || echo none)
		if [ "$size" != $((SIZE_MB * 1048576)) ]; then
			msg "$key: after the write p2 holds $size bytes"
			return 1
		fi
		drop_caches
		rc=$(timeout -k 5 "$TMO" dd if="$f" of=/dev/null bs=1M 2>&1 |
		    dd_rate)
		rw=$(timeout -k 5 "$TMO" dd if="$f" of=/dev/null bs=1M 2>&1 |
		    dd_rate)
		if [ -z "$w" ] || [ -z "$rc" ] || [ -z "$rw" ]; then
			msg "$key: dd failed in run $i"
			rm -f "$f"
			return 1
		fi
		msg "$key: run $i: write $w MB/s, cold read $rc MB/s, warm read $rw MB/s"
		ws+=("$w")
		rcs+=("$rc")
		rws+=("$rw")
	done
	rm -f "$f"
	set_median "W_$key" "${ws[@]}"
	set_median "RC_$key" "${rcs[@]}"
	set_median "RW_$key" "${rws[@]}"
}

# ls -lR of the tree through directory $2 under label $1, cold after
# running command $3 and dropping the caches, then warm: sets LC_$1 and
# LW_$1 (seconds).  The first run checks that every file is listed.
measure_ls() {
	local key=$1 d=$2/tree prep=$3 i c w cs=() ws=() n
	for ((i = 1; i <= RUNS; i++)); do
		$prep || { msg "$key: $prep failed"; return 1; }
		drop_caches
		c=$(timed ls -lR "$d") || { msg "$key: cold ls -lR failed"; return 1; }
		w=$(timed ls -lR "$d") || { msg "$key: warm ls -lR failed"; return 1; }
		msg "$key: run $i: ls -lR cold $c s, warm $w s"
		cs+=("$c")
		ws+=("$w")
		if [ "$i" = 1 ]; then
			n=$(timeout -k 5 "$TMO" ls -lR "$d" | grep -c '^-') || true
			if [ "$n" != "$TREE_FILES" ]; then
				msg "$key: ls -lR lists $n files, not $TREE_FILES"
				return 1
			fi
		fi
	done
	set_median "LC_$key" "${cs[@]}"
	set_median "LW_$key" "${ws[@]}"
}

# Create NMETA small files in a new directory under $2/meta (held by
# p2), then remove it all, under label $1: sets MC_$1 and MD_$1 (s).
measure_meta() {
	local key=$1 i d c r cs=() rs=() n
	for ((i = 1; i <= RUNS; i++)); do
		d=$2/meta/$key.$i
		# The script's variables are its own arguments.
		# shellcheck disable=SC2016
		c=$(timed bash -c 'mkdir "$1" && for ((j = 0; j < $2; j++)); do
		    echo small >"$1/f$j" || exit 1; done' - "$d" "$NMETA") ||
		    { msg "$key: create failed"; return 1; }
		n=$(find "$E2/meta/$key.$i" -type f | wc -l)
		if [ "$n" != "$NMETA" ]; then
			msg "$key: p2 holds $n files after the create, not $NMETA"
			return 1
		fi
		r=$(timed rm -r "$d") || { msg "$key: delete failed"; return 1; }
		if [ -e "$E2/meta/$key.$i" ]; then
			msg "$key: $E2/meta/$key.$i still exists after the delete"
			return 1
		fi
		msg "$key: run $i: create $c s, delete $r s"
		cs+=("$c")
		rs+=("$r")
	done
	set_median "MC_$key" "${cs[@]}"
	set_median "MD_$key" "${rs[@]}"
}

# Print the PIDs of the processes in namespace $1 but PID $2.
ns_pids_but() {
	ip netns pids "$1" 2>/dev/null | grep -vx "$2" || true
}

# Sum field $1 over the PIDs that follow, in KiB.
mem_sum() {
	local f=$1 p v s=0
	shift
	for p in "$@"; do
		v=$(mem_kib "$p" "$f")
		s=$((s + ${v:-0}))
	done
	echo "$s"
}

ns_link

# What p2 holds: the directories of the sequential file and of the
# metadata runs, and the tree for ls -lR.
mkdir "$E2/seq" "$E2/meta" "$E2/tree"
if [ "$NFILES" -ge 100 ]; then TREE_DIRS=100; else TREE_DIRS=1; fi
PER_DIR=$((NFILES / TREE_DIRS))
TREE_FILES=$((TREE_DIRS * PER_DIR))
if part ls; then
	for ((i = 0; i < TREE_DIRS; i++)); do
		dir=$E2/tree/d$i
		mkdir "$dir"
		for ((j = 0; j < PER_DIR; j++)); do
			echo "file $j of directory $i" >"$dir/f$j"
		done
	done
	sync
	msg "tree of $TREE_DIRS directories of $PER_DIR files made in $E2/tree"
fi

nothing() {
	return 0
}

# 1. raw: p2's export directory itself.
msg "raw: $E2"
maybe seq measure_seq raw "$E2" || NOTES+=("raw: sequential I/O failed")
maybe ls measure_ls raw "$E2" nothing || NOTES+=("raw: ls -lR failed")
maybe meta measure_meta raw "$E2" || NOTES+=("raw: create/delete failed")

# 2. passthrough_ll on p2's export directory, locally.
if build_passthrough; then
	"$PT" -f -o "source=$E2" "$MPT" 2>"$WORK/passthrough.log" &
	pid=$!
	PIDS+=("$pid")
	if wait_mounted "$MPT" "$pid"; then
		msg "passthrough_ll mounted at $MPT"
		maybe seq measure_seq passthrough "$MPT" ||
		    NOTES+=("passthrough_ll: sequential I/O failed")
		maybe ls measure_ls passthrough "$MPT" nothing ||
		    NOTES+=("passthrough_ll: ls -lR failed")
		maybe meta measure_meta passthrough "$MPT" ||
		    NOTES+=("passthrough_ll: create/delete failed")
	else
		msg "passthrough_ll did not mount; its log:"
		cat "$WORK/passthrough.log" >&2
		NOTES+=("passthrough_ll: did not mount")
	fi
	stop_pid "$pid"
	unmount "$MPT"
fi

# 3. sshfs from namespace A to a private sshd in namespace B.
SSHFS_PID=
SSHFS_OPTS=
PUFS_OPS=

# Take the memory of sshfs, its ssh client and the sshd sessions into
# the maxima of label $1, then unmount and stop sshfs.
sshfs_umount() {
	local key=$1 ssh_pids sess_pids
	if [ -n "$SSHFS_PID" ]; then
		# Word splitting of the PID lists is meant.
		# shellcheck disable=SC2046,SC2086
		{
			# sshfs double-forks its ssh client: it is
			# not sshfs's child, but it is the only other
			# process in namespace A during these rows.
			ssh_pids=$(ns_pids_but "$NS_A" "$SSHFS_PID")
			sess_pids=$(ns_pids_but "$NS_B" "$SSHD_PID")
			keep_max "HWM_sshfs_$key" "$(mem_kib "$SSHFS_PID" VmHWM)"
			keep_max "RSS_sshfs_$key" "$(mem_kib "$SSHFS_PID" VmRSS)"
			keep_max "HWM_ssh_$key" "$(mem_sum VmHWM $ssh_pids)"
			keep_max "RSS_ssh_$key" "$(mem_sum VmRSS $ssh_pids)"
			keep_max "HWM_sshd_$key" "$(mem_sum VmHWM $sess_pids)"
			keep_max "RSS_sshd_$key" "$(mem_sum VmRSS $sess_pids)"
		}
	fi
	sshfs_stop
}

# The cold state of sshfs with its directory cache: a fresh sshfs.
sshfs_remount() {
	local opts=$SSHFS_OPTS
	sshfs_umount sshfs
	sshfs_mount "$opts"
}

if start_sshd "$ADDR_B" "$SSH_PORT" nsenter --net="/run/netns/$NS_B"; then
	if sshfs_mount ""; then
		msg "sshfs mounted at $MSSH (default options)"
		maybe seq measure_seq sshfs "$MSSH" || NOTES+=("sshfs: sequential I/O failed")
		maybe meta measure_meta sshfs "$MSSH" || NOTES+=("sshfs: create/delete failed")
		maybe ls measure_ls sshfs "$MSSH" sshfs_remount ||
		    NOTES+=("sshfs: ls -lR failed")
		sshfs_umount sshfs
	else
		NOTES+=("sshfs: did not mount")
	fi
	if sshfs_mount "dir_cache=no"; then
		msg "sshfs mounted at $MSSH (-o dir_cache=no)"
		maybe meta measure_meta sshfs_nc "$MSSH" ||
		    NOTES+=("sshfs dir_cache=no: create/delete failed")
		maybe ls measure_ls sshfs_nc "$MSSH" nothing ||
		    NOTES+=("sshfs dir_cache=no: ls -lR failed")
		sshfs_umount sshfs_nc
	else
		NOTES+=("sshfs dir_cache=no: did not mount")
	fi
	stop_pid "$SSHD_PID"
else
	msg "sshd cannot be started; sshfs rows skipped"
	NOTES+=("sshfs: sshd could not be started")
fi

# 4. pufs: p1 in namespace A, p2 in namespace B; p1's mount is measured.
if pufs_start_both "$E1" "$M1" "$E2" "$M2"; then
	msg "pufs p1 mounted at $M1, p2 at $M2, both up"
	maybe seq measure_seq pufs "$M1" || NOTES+=("pufs: sequential I/O failed")
	maybe ls measure_ls pufs "$M1" pufs_cold || NOTES+=("pufs: ls -lR failed")
	maybe meta measure_meta pufs "$M1" || NOTES+=("pufs: create/delete failed")
	# What p1 asked for over its rows, to explain the figures.
	PUFS_OPS=$(pufs_status 1 | grep -o '"ops":{[^}]*}' |
	    sed 's/"ops"://; s/[{}"]//g; s/:/ /g; s/,/, /g') || true
	for k in 1 2; do
		pid=PUFS_PID_$k
		printf -v "HWM_pufs$k" '%s' "$(mem_kib "${!pid}" VmHWM)"
		printf -v "RSS_pufs$k" '%s' "$(mem_kib "${!pid}" VmRSS)"
	done
else
	NOTES+=("pufs: the two peers did not start (see the logs above)")
fi
pufs_stop

# 5. pufs alone: one peer with no other, exporting p2's directory and
# mounting it itself, in namespace B; its ls -lR against passthrough_ll
# is the cost of pufs's own FUSE side, no network.
SOLO=$WORK/solo
mkdir -p "$SOLO/mnt"
MOUNTS+=("$SOLO/mnt")
opts="peer.name=solo,peer.listen=$ADDR_B:$((PUFS_PORT + 1))"
opts="$opts,peer.discovery=unicast,peer.peers="
opts="$opts,peer.control_socket=$SOLO/ctl.sock"
opts="$opts,cache.attr_timeout=$ATTR_TIMEOUT${PUFS_OPTS:+,$PUFS_OPTS}"
nsenter --net="/run/netns/$NS_B" "$PUFS" mount -e "$E2" -o "$opts" \
    "$SOLO/mnt" 2>"$SOLO/log" &
pid=$!
PIDS+=("$pid")
if wait_log "$SOLO/log" "ready: mounted" "$pid"; then
	msg "pufs alone mounted at $SOLO/mnt"
	maybe ls measure_ls solo "$SOLO/mnt" pufs_cold || NOTES+=("pufs alone: ls -lR failed")
else
	msg "pufs alone did not become ready; its log:"
	cat "$SOLO/log" >&2
	NOTES+=("pufs alone: did not start")
fi
stop_pid "$pid"
unmount "$SOLO/mnt"

# Print a KiB figure in MiB with one decimal, or "-".
mib() {
	local v=${!1:-}
	if [ -n "$v" ] && [ "$v" != 0 ]; then
		awk -v v="$v" 'BEGIN { printf "%.1f\n", v / 1024 }'
	else
		echo -
	fi
}

# One row of the main table: label, unit, variable prefix.
row() {
	local p=$3
	echo "| $1 | $2 | $(fig "${p}_raw") | $(fig "${p}_passthrough")" \
	    "| $(fig "${p}_sshfs") | $(fig "${p}_sshfs_nc") | $(fig "${p}_pufs")" \
	    "| $(ratio "${p}_pufs" "${p}_sshfs") | $(ratio "${p}_pufs" "${p}_sshfs_nc")" \
	    "| $(ratio "${p}_pufs" "${p}_passthrough") | $(ratio "${p}_pufs" "${p}_raw") |"
}

fstype=$(findmnt -n -o FSTYPE -T "$WORKPARENT" 2>/dev/null ||
    stat -f -c %T "$WORKPARENT")
cat <<EOF
Files held by peer p2 ($ADDR_B), reached from namespace $ADDR_A over a
veth pair through pufs (p1's mount) and sshfs; raw and passthrough_ll
are local baselines on p2's export directory.  Median of $RUNS runs.
Sequential: $SIZE_MB MiB, dd bs=1M, write with conv=fsync, caches
dropped before the cold read.  ls -lR: $TREE_DIRS directories of
$PER_DIR files.  Create/delete: $NMETA files of 6 bytes, then rm -r.
pufs cache.attr_timeout=$ATTR_TIMEOUT.  Kernel $(uname -r), $(nproc) CPUs,
$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), work directory on $fstype.

| measurement | unit | raw | passthrough | sshfs | sshfs dir_cache=no | pufs | pufs/sshfs | pufs/sshfs nc | pufs/passthrough | pufs/raw |
|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|
$(row "sequential write" "MB/s" W)
$(row "sequential read, cold" "MB/s" RC)
$(row "sequential read, warm" "MB/s" RW)
$(row "ls -lR, cold" "s" LC)
$(row "ls -lR, warm" "s" LW)
$(row "create $NMETA files" "s" MC)
$(row "delete $NMETA files" "s" MD)

MB/s: higher is better; seconds: lower is better.

| ls -lR, one pufs peer on its own files | unit | passthrough | pufs alone | pufs/passthrough |
|---|---|--:|--:|--:|
| cold | s | $(fig LC_passthrough) | $(fig LC_solo) | $(ratio LC_solo LC_passthrough) |
| warm | s | $(fig LW_passthrough) | $(fig LW_solo) | $(ratio LW_solo LW_passthrough) |

| process (after its rows) | VmHWM MiB | VmRSS MiB |
|---|--:|--:|
| pufs p1 (the mount measured) | $(mib HWM_pufs1) | $(mib RSS_pufs1) |
| pufs p2 (the holder) | $(mib HWM_pufs2) | $(mib RSS_pufs2) |
| sshfs, default options | $(mib HWM_sshfs_sshfs) | $(mib RSS_sshfs_sshfs) |
| its ssh client | $(mib HWM_ssh_sshfs) | $(mib RSS_ssh_sshfs) |
| its sshd session processes (sum) | $(mib HWM_sshd_sshfs) | $(mib RSS_sshd_sshfs) |
| sshfs, dir_cache=no | $(mib HWM_sshfs_sshfs_nc) | $(mib RSS_sshfs_sshfs_nc) |

pufs p1 / sshfs: VmHWM $(ratio HWM_pufs1 HWM_sshfs_sshfs), VmRSS $(ratio RSS_pufs1 RSS_sshfs_sshfs).
pufs p2 / sshd session: VmHWM $(ratio HWM_pufs2 HWM_sshd_sshfs), VmRSS $(ratio RSS_pufs2 RSS_sshd_sshfs).
sshfs figures are the largest over the sshfs processes of the rows (the
cold ls -lR starts a fresh one each run).

Operations pufs p1 counted over its rows: ${PUFS_OPS:-unknown}.
EOF
print_notes
