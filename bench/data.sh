#!/bin/bash
#
# data.sh - the data path of pufs against sshfs and a local FUSE file
# system, for files held by another peer: bulk reads and writes, small
# random reads, a database, the traps a writer causes and the daemon's
# memory.  The figures are checked against the data path's targets.
#
# The setup is remote.sh's: two network namespaces, A (10.250.0.1) and
# B (10.250.0.2), joined by a veth pair; pufs peer p1 in A, p2 in B,
# each exporting its own directory (the daemons enter the namespaces
# with nsenter --net only, so their FUSE mounts stay visible here); a
# private sshd in B, and sshfs in A mounting p2's export directory
# through it.  The same files, all held by p2, are reached through:
#
#   raw          p2's export directory itself (the cost of the disk);
#   passthrough  libfuse's passthrough_ll mounted on it locally (the
#                cost of any FUSE file system, no network);
#   sshfs        sshfs from A, default options;
#   pufs         p1's mount, which asks p2 over the link.
#
# Measured for each, median of RUNS runs, each path alone:
#
#   1. dd bs=1M write of SIZE_MB MiB with conv=fsync; read cold; read
#      again (warm, the page cache).  Cold means the kernel's caches
#      dropped and, for pufs, a fresh p1 (its block cache empty);
#   2. NREADS reads of 4 KiB at distinct random aligned offsets of a
#      RAND_MB MiB file, cold, one pread(2) at a time (randread.c,
#      a fixed seed, every block checked);
#   3. sqlite3: a new database in WAL mode, NTX transactions of 10
#      inserts each, then PRAGMA integrity_check (must say ok); -S
#      sets PRAGMA synchronous (default FULL, sqlite3's: an fdatasync
#      of the WAL at each commit; NORMAL leaves them out, so that what
#      remains is the locks and writes);
#   4. TRAP_MB MiB written with dd bs=4k conv=fsync; for pufs, the trap
#      datagrams the holder p2 sent meanwhile (its pufs status
#      traps.sent, until it stops moving);
#   5. with direct I/O (pufs cache.direct_io=yes, sshfs -o direct_io,
#      passthrough_ll -o cache=never): the dd write, cold and warm read,
#      and the re-read of a DIO_MB MiB file, which fits in pufs's cache.
#
# The peak memory (VmHWM) of the pufs daemons is taken before each of
# their stops, p1's data counters after each of its rows, the CPU time
# the two daemons used in each sequential write, cold read and run of
# 4 KiB writes (a figure the machine's load moves less than the rates),
# and the load average at the start, before each path and at the end.
# -o names the paths measured and -m the measurements (seq, rand,
# sqlite, small, dio); the others' figures are "-".
#
# Needs root, sqlite3, a C compiler and what remote.sh needs.  Traffic
# stays inside the two namespaces.  Everything started is stopped by
# PID, every mount undone, the namespaces deleted and the work directory
# removed on any exit, SIGINT included.  Limits: the link is a veth pair
# (no latency, no loss); the figures are only as quiet as the machine.
#
# Usage: bench/data.sh [-s SIZE_MB] [-R RAND_MB] [-n NREADS] [-q NTX]
#                      [-S SYNC] [-t TRAP_MB] [-d DIO_MB] [-o PATHS] [-m PARTS]
#                      [-p PUFS] [-r RUNS] [-w DIR]
#
set -euo pipefail
export LC_ALL=C

SIZE_MB=512
RAND_MB=256
NREADS=8192
NTX=200
SYNC=FULL
TRAP_MB=64
DIO_MB=128
PATHS=raw,passthrough,sshfs,pufs
PARTS=seq,rand,sqlite,small,dio
SEED=13
REPO=$(cd "$(dirname "$0")/.." && pwd)
PUFS=$REPO/build/daemon/pufs
RUNS=3
WORKPARENT=/var/tmp
EXAMPLES=/usr/share/doc/libfuse3-dev/examples
BENCH=data
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

usage() {
	cat <<EOF
usage: $0 [-s SIZE_MB] [-R RAND_MB] [-n NREADS] [-q NTX] [-S SYNC]
          [-t TRAP_MB] [-d DIO_MB] [-o PATHS] [-m PARTS] [-p PUFS] [-r RUNS]
          [-w DIR]

  -s SIZE_MB   size of the sequential file in MiB (default $SIZE_MB)
  -R RAND_MB   size of the random-read file in MiB (default $RAND_MB)
  -n NREADS    4 KiB random reads a run (default $NREADS)
  -q NTX       SQLite transactions a run (default $NTX)
  -S SYNC      SQLite's PRAGMA synchronous: FULL or NORMAL (default $SYNC)
  -t TRAP_MB   MiB written in 4 KiB writes (default $TRAP_MB)
  -d DIO_MB    size of the file re-read with direct I/O (default $DIO_MB)
  -o PATHS     the paths measured, a comma list of raw, passthrough,
               sshfs and pufs (default $PATHS)
  -m PARTS     the measurements, a comma list of seq, rand, sqlite,
               small and dio (default $PARTS)
$(common_usage)

Prints Markdown tables on standard output, progress on standard error.
EOF
}

while getopts "s:R:n:q:S:t:d:o:m:p:r:w:h" opt; do
	case $opt in
	s) SIZE_MB=$OPTARG ;;
	R) RAND_MB=$OPTARG ;;
	n) NREADS=$OPTARG ;;
	q) NTX=$OPTARG ;;
	S) SYNC=$OPTARG ;;
	t) TRAP_MB=$OPTARG ;;
	d) DIO_MB=$OPTARG ;;
	o) PATHS=$OPTARG ;;
	m) PARTS=$OPTARG ;;
	*) common_opt "$opt" ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || { usage >&2; exit 2; }
need_positive SIZE_MB RAND_MB NREADS NTX TRAP_MB DIO_MB RUNS
case $SYNC in
FULL|NORMAL) ;;
*) echo "$BENCH: -S: FULL or NORMAL, not $SYNC" >&2; exit 2 ;;
esac
for p in ${PATHS//,/ }; do
	case $p in
	raw|passthrough|sshfs|pufs) ;;
	*) echo "$BENCH: -o: no path $p (raw, passthrough, sshfs, pufs)" >&2; exit 2 ;;
	esac
done
for p in ${PARTS//,/ }; do
	case $p in
	seq|rand|sqlite|small|dio) ;;
	*) echo "$BENCH: -m: no measurement $p (seq, rand, sqlite, small, dio)" >&2; exit 2 ;;
	esac
done
# Whether path $1 is measured.
wanted() {
	case ,$PATHS, in
	*,"$1",*) return 0 ;;
	esac
	return 1
}
# Whether measurement $1 is made.
part() {
	case ,$PARTS, in
	*,"$1",*) return 0 ;;
	esac
	return 1
}
if [ "$NREADS" -gt $((RAND_MB * 256)) ]; then
	echo "$BENCH: $NREADS reads of 4 KiB do not fit in $RAND_MB MiB" >&2
	exit 2
fi
need_root "namespaces, FUSE mounts, sshd, drop_caches"
need_commands ip nsenter fusermount3 timeout cc sqlite3 "$PYTHON"
need_pufs
LOAD_START=$(load_avg)
HZ=$(getconf CLK_TCK)

two_peer_setup data
MPT=$WORK/mnt-passthrough
mkdir "$MPT"
MOUNTS+=("$MPT")

# The random reader.
RANDREAD=$WORK/randread
if ! cc -O2 -o "$RANDREAD" "$REPO/bench/randread.c" 2>"$WORK/cc-randread.log"; then
	cat "$WORK/cc-randread.log" >&2
	msg "cannot build bench/randread.c"
	exit 2
fi

# The SQLite script: WAL, NTX transactions of 10 rows, the check, and
# what the rows add up to.
{
	echo "PRAGMA journal_mode=WAL;"
	echo "PRAGMA synchronous=$SYNC;"
	echo "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, n INTEGER);"
	awk -v ntx="$NTX" 'BEGIN {
		pad = sprintf("%100s", ""); gsub(/ /, "x", pad)
		for (t = 0; t < ntx; t++) {
			print "BEGIN;"
			for (i = 1; i <= 10; i++)
				printf "INSERT INTO t (v, n) VALUES (\047%s\047, %d);\n", pad, t * 10 + i
			print "COMMIT;"
		}
	}'
	echo "PRAGMA integrity_check;"
	echo "SELECT count(*), sum(n) FROM t;"
} >"$WORK/tx.sql"
NROWS=$((NTX * 10))
SQL_WANT=$(printf 'wal\nok\n%s|%s' "$NROWS" $((NROWS * (NROWS + 1) / 2)))

# Print field $2 (a dotted path: traps.sent) of peer p$1's status.
pufs_field() {
	pufs_status "$1" | "$PYTHON" -c 'import json, sys
d = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    d = d[k]
print(d)' "$2"
}

# Keep p1's data counters in DATA_$1 (pufs rows only).
pufs_data_note() {
	[ -n "${PUFS_PID_1:-}" ] || return 0
	printf -v "DATA_$1" '%s' "$(pufs_status 1 | grep -o '"data":{[^}]*}' |
	    sed 's/"data"://; s/[{}"]//g; s/:/ /g; s/,/, /g')" || true
}

# Take the memory peaks of the pufs daemons running now.
pufs_mem() {
	local k pid
	for k in 1 2; do
		pid=PUFS_PID_$k
		[ -n "${!pid:-}" ] || continue
		keep_max "HWM_pufs$k" "$(mem_kib "${!pid}" VmHWM)"
		keep_max "RSS_pufs$k" "$(mem_kib "${!pid}" VmRSS)"
	done
}

# The cold state of pufs: the kernel's caches dropped and a fresh p1,
# whose block cache is empty (an unchanged file keeps its blocks across
# opens).  p2, the holder, keeps running.
pufs_fresh() {
	pufs_mem
	pufs_stop_one 1
	pufs_log_check 1
	drop_caches
	pufs_start 1 "$NS_A" "$ADDR_A" "$ADDR_B" "$E1" "$M1" &&
	    pufs_wait_up 1 && pufs_wait_up 2
}

# The cold state of the others: the kernel's caches dropped.
cold() {
	drop_caches
}

# The read_ahead_kb of the mount at $1 (its backing device), or "-".
mount_ra() {
	local dev
	dev=$(mountpoint -d "$1" 2>/dev/null) &&
	    cat "/sys/class/bdi/$dev/read_ahead_kb" 2>/dev/null || echo -
}

# Add to the lists CPU1_$1 and CPU2_$1 the milliseconds of CPU p1 and
# p2 used per MiB between pufs_cpu readings $2 and $3 over $4 MiB (pufs
# rows only).
cpu_note() {
	local key=$1 mb=$4 a b k v
	[ -n "${PUFS_PID_1:-}" ] || return 0
	read -r -a a <<<"$2"
	read -r -a b <<<"$3"
	for k in 1 2; do
		v=CPU${k}_$key
		printf -v "$v" '%s' "${!v:-} $(awk -v t=$((b[k - 1] - a[k - 1])) \
		    -v hz="$HZ" -v mb="$mb" 'BEGIN { printf "%.2f", t * 1000 / hz / mb }')"
	done
}

# The medians of the lists cpu_note made under key $1, in CPUM1_$1 and
# CPUM2_$1.
cpu_median() {
	local k v
	for k in 1 2; do
		v=CPU${k}_$1
		[ -n "${!v:-}" ] || continue
		# Word splitting of the list is meant.
		# shellcheck disable=SC2086
		MEDIAN_FMT=%.2f set_median "CPUM${k}_$1" ${!v}
	done
}

# Sequential I/O through directory $2 (whose seq/ is held by p2) under
# label $1, made cold by command $3: sets W_$1, RC_$1 (MB/s) and RW_$1
# (GB/s).  The write is checked to have landed on p2 whole.
measure_seq() {
	local key=$1 f=$2/seq/seq.dat prep=$3 i w rc rw ws=() rcs=() rws=()
	local bytes=$((SIZE_MB * 1048576)) size c0 c1
	for ((i = 1; i <= RUNS; i++)); do
		rm -f "$f"
		sync
		c0=$(pufs_cpu)
		w=$(dd_mbs "$bytes" if=/dev/zero of="$f" bs=1M \
		    count="$SIZE_MB" conv=fsync) || return 1
		cpu_note "${key}_w" "$c0" "$(pufs_cpu)" "$SIZE_MB"
		size=$(stat -c %s "$E2/seq/seq.dat" 2>/dev/null || echo none)
		if [ "$size" != "$bytes" ]; then
			msg "$key: after the write p2 holds $size bytes"
			return 1
		fi
		pufs_data_note "${key}_w"
		$prep || { msg "$key: $prep failed"; return 1; }
		c0=$(pufs_cpu)
		rc=$(dd_mbs "$bytes" if="$f" of=/dev/null bs=1M) || return 1
		c1=$(pufs_cpu)
		cpu_note "${key}_rc" "$c0" "$c1" "$SIZE_MB"
		rw=$(dd_mbs "$bytes" if="$f" of=/dev/null bs=1M) || return 1
		rw=$(awk -v v="$rw" 'BEGIN { printf "%.2f\n", v / 1000 }')
		pufs_data_note "${key}_r"
		msg "$key: run $i: write $w MB/s, cold read $rc MB/s, warm read $rw GB/s"
		ws+=("$w") rcs+=("$rc") rws+=("$rw")
	done
	rm -f "$f"
	MEDIAN_FMT=%.0f set_median "W_$key" "${ws[@]}"
	MEDIAN_FMT=%.0f set_median "RC_$key" "${rcs[@]}"
	MEDIAN_FMT=%.2f set_median "RW_$key" "${rws[@]}"
	cpu_median "${key}_w"
	cpu_median "${key}_rc"
}

# 4 KiB random reads of rand/rand.dat through directory $2 under label
# $1, cold by command $3: sets RR_$1 (reads/s) and RB_$1 (MB/s).
measure_rand() {
	local key=$1 f=$2/rand/rand.dat prep=$3 i out iops=() mbs=()
	for ((i = 1; i <= RUNS; i++)); do
		$prep || { msg "$key: $prep failed"; return 1; }
		out=$(timeout -k 5 "$TMO" "$RANDREAD" "$f" "$NREADS" "$SEED") ||
		    { msg "$key: randread failed"; return 1; }
		# Word splitting of the program's line is meant.
		# shellcheck disable=SC2086
		set -- $out
		msg "$key: run $i: $1 reads/s, $2 MB/s, $3 s"
		iops+=("$1") mbs+=("$2")
	done
	pufs_data_note "${key}_rr"
	MEDIAN_FMT=%.0f set_median "RR_$key" "${iops[@]}"
	MEDIAN_FMT=%.1f set_median "RB_$key" "${mbs[@]}"
}

# The SQLite transactions in sql/ through directory $2 under label $1:
# sets SQ_$1 (s).  The answers and the database on p2 are checked.
measure_sqlite() {
	local key=$1 db=$2/sql/db.sqlite i t0 t1 out t ts=()
	for ((i = 1; i <= RUNS; i++)); do
		rm -f "$db" "$db-wal" "$db-shm"
		t0=$EPOCHREALTIME
		out=$(timeout -k 5 "$TMO" sqlite3 "$db" <"$WORK/tx.sql" 2>&1) ||
		    { msg "$key: sqlite3 failed: $out"; return 1; }
		t1=$EPOCHREALTIME
		if [ "$out" != "$SQL_WANT" ]; then
			msg "$key: sqlite3 answered $(echo "$out" | tr '\n' ' ')"
			return 1
		fi
		out=$(sqlite3 "$E2/sql/db.sqlite" "PRAGMA integrity_check;
		    SELECT count(*) FROM t;" 2>&1) || true
		if [ "$out" != "$(printf 'ok\n%s' "$NROWS")" ]; then
			msg "$key: p2's database: $(echo "$out" | tr '\n' ' ')"
			return 1
		fi
		t=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }')
		msg "$key: run $i: $NTX transactions in $t s, integrity_check ok"
		ts+=("$t")
	done
	rm -f "$db" "$db-wal" "$db-shm"
	pufs_data_note "${key}_sq"
	set_median "SQ_$key" "${ts[@]}"
}

# Wait until p2's traps.sent has not moved for 2 s (20 s at most);
# print it.
traps_settled() {
	local last cur same=0 i
	last=$(pufs_field 2 traps.sent) || return 1
	for ((i = 0; i < 100 && same < 10; i++)); do
		sleep 0.2
		cur=$(pufs_field 2 traps.sent) || return 1
		if [ "$cur" = "$last" ]; then
			same=$((same + 1))
		else
			same=0 last=$cur
		fi
	done
	echo "$last"
}

# TRAP_MB MiB in 4 KiB writes with conv=fsync through directory $2
# under label $1: sets SW_$1 (MB/s); with pufs running, also TD_$1 and
# TR_$1, the trap datagrams and records p2 sent per 64 MiB, and T1_$1,
# the datagrams p1 sent.
measure_small() {
	local key=$1 f=$2/trap/small.dat i w bytes=$((TRAP_MB * 1048576))
	local a b ra rb a1 b1 ws=() tds=() trs=() t1s=() size c0
	for ((i = 1; i <= RUNS; i++)); do
		rm -f "$f"
		if [ -n "${PUFS_PID_2:-}" ]; then
			if ! { a=$(traps_settled) &&
			    ra=$(pufs_field 2 traps.records_sent) &&
			    a1=$(pufs_field 1 traps.sent); }; then
				msg "$key: no status from p1 or p2"
				return 1
			fi
		fi
		c0=$(pufs_cpu)
		w=$(dd_mbs "$bytes" if=/dev/zero of="$f" bs=4k \
		    count=$((TRAP_MB * 256)) conv=fsync) || return 1
		cpu_note "${key}_sw" "$c0" "$(pufs_cpu)" "$TRAP_MB"
		size=$(stat -c %s "$E2/trap/small.dat" 2>/dev/null || echo none)
		if [ "$size" != "$bytes" ]; then
			msg "$key: after the 4 KiB writes p2 holds $size bytes"
			return 1
		fi
		ws+=("$w")
		if [ -n "${PUFS_PID_2:-}" ]; then
			if ! { b=$(traps_settled) &&
			    rb=$(pufs_field 2 traps.records_sent) &&
			    b1=$(pufs_field 1 traps.sent); }; then
				msg "$key: no status from p1 or p2"
				return 1
			fi
			tds+=("$(awk -v n=$((b - a)) -v mb="$TRAP_MB" \
			    'BEGIN { printf "%.1f\n", n * 64 / mb }')")
			trs+=("$(awk -v n=$((rb - ra)) -v mb="$TRAP_MB" \
			    'BEGIN { printf "%.1f\n", n * 64 / mb }')")
			t1s+=("$(awk -v n=$((b1 - a1)) -v mb="$TRAP_MB" \
			    'BEGIN { printf "%.1f\n", n * 64 / mb }')")
			msg "$key: run $i: 4 KiB writes $w MB/s; p2 sent $((b - a)) trap datagrams ($((rb - ra)) records), p1 $((b1 - a1))"
		else
			msg "$key: run $i: 4 KiB writes $w MB/s"
		fi
	done
	rm -f "$f"
	pufs_data_note "${key}_sw"
	MEDIAN_FMT=%.0f set_median "SW_$key" "${ws[@]}"
	cpu_median "${key}_sw"
	if [ ${#tds[@]} -gt 0 ]; then
		MEDIAN_FMT=%.1f set_median "TD_$key" "${tds[@]}"
		MEDIAN_FMT=%.1f set_median "TR_$key" "${trs[@]}"
		MEDIAN_FMT=%.1f set_median "T1_$key" "${t1s[@]}"
	fi
}

# Every measurement of path $1 through directory $2, cold by $3.
measure_all() {
	local key=$1 dir=$2 prep=$3
	printf -v "LOAD_$key" '%s' "$(load_avg)"
	msg "$key: load average $(load_avg)"
	! part seq || measure_seq "$key" "$dir" "$prep" ||
	    NOTES+=("$key: sequential I/O failed")
	! part rand || measure_rand "$key" "$dir" "$prep" ||
	    NOTES+=("$key: random reads failed")
	! part sqlite || measure_sqlite "$key" "$dir" ||
	    NOTES+=("$key: SQLite failed")
	! part small || measure_small "$key" "$dir" ||
	    NOTES+=("$key: 4 KiB writes failed")
}

# A re-read of a DIO_MB MiB file through directory $2 under label $1,
# after a first read made cold by $3: sets RS_$1 (GB/s).  With direct
# I/O only the file system's own cache can serve it.
measure_reread() {
	local key=$1 f=$2/seq/small.dat prep=$3 i r rs=()
	local bytes=$((DIO_MB * 1048576))
	dd_mbs "$bytes" if=/dev/zero of="$f" bs=1M count="$DIO_MB" \
	    conv=fsync >/dev/null || return 1
	for ((i = 1; i <= RUNS; i++)); do
		$prep || { msg "$key: $prep failed"; return 1; }
		dd_mbs "$bytes" if="$f" of=/dev/null bs=1M >/dev/null || return 1
		r=$(dd_mbs "$bytes" if="$f" of=/dev/null bs=1M) || return 1
		r=$(awk -v v="$r" 'BEGIN { printf "%.2f\n", v / 1000 }')
		msg "$key: run $i: re-read of $DIO_MB MiB $r GB/s"
		rs+=("$r")
	done
	rm -f "$f"
	pufs_data_note "${key}_rs"
	MEDIAN_FMT=%.2f set_median "RS_$key" "${rs[@]}"
}

# Direct I/O: the sequential measurements and the re-read of a file
# that fits in pufs's cache, under label $1_dio.
measure_dio() {
	part dio || return 0
	printf -v "LOAD_$1_dio" '%s' "$(load_avg)"
	msg "$1 direct I/O: load average $(load_avg)"
	measure_seq "$1_dio" "$2" "$3" || NOTES+=("$1 direct I/O: sequential I/O failed")
	measure_reread "$1_dio" "$2" "$3" || NOTES+=("$1 direct I/O: re-read failed")
}

ns_link

# What p2 holds: a directory for each measurement, and the file of the
# random reads.
mkdir "$E2/seq" "$E2/rand" "$E2/sql" "$E2/trap"
! part rand || "$RANDREAD" -w "$E2/rand/rand.dat" "$RAND_MB"
msg "p2 holds empty seq/, sql/, trap/ and rand/$(part rand && echo " with rand.dat ($RAND_MB MiB)")"

# 1. raw: p2's export directory itself.
if wanted raw; then
	measure_all raw "$E2" cold
fi

# 2. passthrough_ll on p2's export directory, locally; then with
# cache=never, its direct I/O.
# Start passthrough_ll with the extra options $1 (may be empty).
passthrough_mount() {
	"$PT" -f -o "source=$E2${1:+,$1}" "$MPT" 2>"$WORK/passthrough.log" &
	PT_PID=$!
	PIDS+=("$PT_PID")
	if wait_mounted "$MPT" "$PT_PID"; then
		msg "passthrough_ll mounted at $MPT (${1:-default options})"
		return 0
	fi
	msg "passthrough_ll did not mount; its log:"
	cat "$WORK/passthrough.log" >&2
	NOTES+=("passthrough_ll ${1:-}: did not mount")
	return 1
}

passthrough_stop() {
	stop_pid "$PT_PID"
	unmount "$MPT"
}

if wanted passthrough && build_passthrough; then
	if passthrough_mount ""; then
		RA_passthrough=$(mount_ra "$MPT")
		measure_all passthrough "$MPT" cold
		passthrough_stop
	fi
	if part dio && passthrough_mount cache=never; then
		measure_dio passthrough "$MPT" cold
		passthrough_stop
	fi
fi

# 3. sshfs from namespace A to a private sshd in namespace B; then with
# -o direct_io.
SSHFS_PID=
if ! wanted sshfs; then
	:
elif start_sshd "$ADDR_B" "$SSH_PORT" nsenter --net="/run/netns/$NS_B"; then
	if sshfs_mount ""; then
		msg "sshfs mounted at $MSSH (default options)"
		RA_sshfs=$(mount_ra "$MSSH")
		measure_all sshfs "$MSSH" cold
		sshfs_stop
	else
		NOTES+=("sshfs: did not mount")
	fi
	if ! part dio; then
		:
	elif sshfs_mount direct_io; then
		msg "sshfs mounted at $MSSH (-o direct_io)"
		measure_dio sshfs "$MSSH" cold
		sshfs_stop
	else
		NOTES+=("sshfs -o direct_io: did not mount")
	fi
	stop_pid "$SSHD_PID"
else
	msg "sshd cannot be started; sshfs rows skipped"
	NOTES+=("sshfs: sshd could not be started")
fi

# 4. pufs: p1 in namespace A, p2 in namespace B; p1's mount is
# measured.  Then both again with cache.direct_io=yes.
PUFS_OPTS=
if ! wanted pufs; then
	:
elif pufs_start_both "$E1" "$M1" "$E2" "$M2"; then
	msg "pufs p1 mounted at $M1, p2 at $M2, both up"
	RA_pufs=$(mount_ra "$M1")
	measure_all pufs "$M1" pufs_fresh
	pufs_mem
else
	NOTES+=("pufs: the two peers did not start (see the logs above)")
fi
pufs_stop
PUFS_OPTS=cache.direct_io=yes
if ! wanted pufs || ! part dio; then
	:
elif pufs_start_both "$E1" "$M1" "$E2" "$M2"; then
	msg "pufs p1 mounted at $M1 with $PUFS_OPTS, p2 too, both up"
	measure_dio pufs "$M1" pufs_fresh
	pufs_mem
else
	NOTES+=("pufs direct_io: the two peers did not start (see the logs above)")
fi
pufs_stop
LOAD_END=$(load_avg)

# Print a KiB figure in MiB with one decimal, or "-".
mib() {
	local v=${!1:-}
	if [ -n "$v" ] && [ "$v" != 0 ]; then
		awk -v v="$v" 'BEGIN { printf "%.1f\n", v / 1024 }'
	else
		echo -
	fi
}

# One row of the main table: label, unit, variable prefix, key suffix
# ("" or _dio); with a fifth argument "s" (seconds, lower is better)
# the ratios are the other's time over pufs's.
row() {
	local p=$3 s=$4 a b
	if [ "${5:-}" = s ]; then
		a="$(ratio "${p}_sshfs$s" "${p}_pufs$s") | $(ratio "${p}_passthrough$s" "${p}_pufs$s")"
	else
		a="$(ratio "${p}_pufs$s" "${p}_sshfs$s") | $(ratio "${p}_pufs$s" "${p}_passthrough$s")"
	fi
	b="$(fig "${p}_raw$s")"
	echo "| $1 | $2 | $b | $(fig "${p}_passthrough$s") | $(fig "${p}_sshfs$s")" \
	    "| $(fig "${p}_pufs$s") | $a |"
}

# "met" if $1 >= $2, "not met" if not, "not measured" if $1 is "-".
verdict() {
	awk -v v="$1" -v t="$2" 'BEGIN {
		if (v == "-" || v == "") print "not measured"
		else if (v + 0 >= t + 0) print "met"
		else print "not met"
	}'
}

# One row of the targets table: what, the figure, the threshold.
trow() {
	echo "| $1 | $2 | $3 | $(verdict "$2" "$3") |"
}

# The trap target is a ceiling: met when the figure is at most $2.
tcap() {
	awk -v v="$1" -v t="$2" 'BEGIN {
		if (v == "-" || v == "") print "not measured"
		else if (v + 0 <= t + 0) print "met"
		else print "not met"
	}'
}

fstype=$(findmnt -n -o FSTYPE -T "$WORKPARENT" 2>/dev/null ||
    stat -f -c %T "$WORKPARENT")
cat <<EOF
Files held by peer p2 ($ADDR_B), reached from namespace $ADDR_A over a
veth pair through pufs (p1's mount) and sshfs; raw and passthrough_ll
are local baselines on p2's export directory.  Median of $RUNS runs.
Kernel $(uname -r), $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), work directory on $fstype.
pufs $PUFS, from the tree at $(git -C "$REPO" log -1 --format=%h 2>/dev/null || echo unknown).
Load average (1, 5, 15 min): $LOAD_START at the start, $LOAD_END at the end;
before raw ${LOAD_raw:--}, passthrough ${LOAD_passthrough:--}, sshfs ${LOAD_sshfs:--}, pufs ${LOAD_pufs:--},
pufs direct_io ${LOAD_pufs_dio:--}.

Sequential: $SIZE_MB MiB, dd bs=1M, write with conv=fsync.  Cold: the
kernel's caches dropped and, for pufs, a fresh p1 (its block cache
empty).  Random: $NREADS reads of 4 KiB at distinct random aligned
offsets of a $RAND_MB MiB file, one at a time, cold.  SQLite: a new
database, journal_mode=WAL, $NTX transactions of 10 inserts, then
integrity_check (ok in every run).  Small writes: $TRAP_MB MiB with dd
bs=4k conv=fsync.  Direct I/O: pufs cache.direct_io=yes, sshfs -o
direct_io, passthrough_ll -o cache=never.

| measurement | unit | raw | passthrough | sshfs | pufs | pufs/sshfs | pufs/passthrough |
|---|---|--:|--:|--:|--:|--:|--:|
$(row "seq write, dd bs=1M conv=fsync" MB/s W "")
$(row "seq read, cold" MB/s RC "")
$(row "seq re-read, warm" GB/s RW "")
$(row "4 KiB random reads, cold" reads/s RR "")
$(row "SQLite WAL, $NTX transactions, synchronous $SYNC" s SQ "" s)
$(row "$TRAP_MB MiB in 4 KiB writes, conv=fsync" MB/s SW "")
$(row "direct I/O: seq write" MB/s W _dio)
$(row "direct I/O: seq read, cold" MB/s RC _dio)
$(row "direct I/O: seq re-read" GB/s RW _dio)
$(row "direct I/O: re-read of $DIO_MB MiB" GB/s RS _dio)

Ratios are how many times faster pufs is (for seconds, the other's time
over pufs's).  With direct I/O no page cache serves the re-read: for
pufs only its own block cache, within cache_size, which a file larger
than that does not fit.  Random reads in MB/s: passthrough $(fig RB_passthrough),
sshfs $(fig RB_sshfs), pufs $(fig RB_pufs).  The direct I/O rows compare
like with like; pufs direct I/O over sshfs with its default options:
seq read cold $(ratio RC_pufs_dio RC_sshfs).

| target | figure | wanted | |
|---|--:|--:|---|
$(trow "seq write, pufs/sshfs" "$(ratio W_pufs W_sshfs)" 2.5)
$(trow "seq write, pufs/passthrough" "$(ratio W_pufs W_passthrough)" 0.8)
$(trow "seq read cold, pufs/sshfs" "$(ratio RC_pufs RC_sshfs)" 3)
$(trow "seq read cold, pufs/passthrough" "$(ratio RC_pufs RC_passthrough)" 1.0)
$(trow "4 KiB random reads cold, pufs/sshfs" "$(ratio RR_pufs RR_sshfs)" 2)
$(trow "warm re-read, GB/s" "$(fig RW_pufs)" 5)
$(trow "SQLite, sshfs time / pufs time" "$(ratio SQ_sshfs SQ_pufs)" 2)
| trap datagrams per 64 MiB in 4 KiB writes | $(fig TD_pufs) | at most 10 | $(tcap "$(fig TD_pufs)" 10) |
$(trow "direct_io seq read cold, pufs/sshfs -o direct_io" "$(ratio RC_pufs_dio RC_sshfs_dio)" 2)
$(trow "direct_io seq read cold, pufs/sshfs default" "$(ratio RC_pufs_dio RC_sshfs)" 2)

Traps: p2 sent $(fig TD_pufs) datagrams ($(fig TR_pufs) records) per
64 MiB written through p1 in 4 KiB writes (median; with one other peer
a datagram is one packet); p1, the writer, sent $(fig T1_pufs).

| process | VmHWM MiB | VmRSS MiB (largest) |
|---|--:|--:|
| pufs p1 (the mount measured; fresh at each cold run) | $(mib HWM_pufs1) | $(mib RSS_pufs1) |
| pufs p2 (the holder) | $(mib HWM_pufs2) | $(mib RSS_pufs2) |

CPU time of the pufs daemons (user and system, all threads), ms per
MiB moved (median):

| measurement | p1 (the mount) | p2 (the holder) |
|---|--:|--:|
| seq write | $(fig CPUM1_pufs_w) | $(fig CPUM2_pufs_w) |
| seq read, cold | $(fig CPUM1_pufs_rc) | $(fig CPUM2_pufs_rc) |
| 4 KiB writes | $(fig CPUM1_pufs_sw) | $(fig CPUM2_pufs_sw) |
| direct I/O: seq write | $(fig CPUM1_pufs_dio_w) | $(fig CPUM2_pufs_dio_w) |
| direct I/O: seq read, cold | $(fig CPUM1_pufs_dio_rc) | $(fig CPUM2_pufs_dio_rc) |

Kernel read-ahead of the mounts (read_ahead_kb): passthrough
${RA_passthrough:--}, sshfs ${RA_sshfs:--}, pufs ${RA_pufs:--}.

p1's data counters (pufs status --json, data), each since p1's last start:
- after the last seq write: ${DATA_pufs_w:-unknown}
- after the last cold and warm read: ${DATA_pufs_r:-unknown}
- after the random reads: ${DATA_pufs_rr:-unknown}
- after the SQLite runs: ${DATA_pufs_sq:-unknown}
- after the 4 KiB writes: ${DATA_pufs_sw:-unknown}
- direct_io, after the last cold and warm read: ${DATA_pufs_dio_r:-unknown}
- direct_io, after the re-reads of $DIO_MB MiB: ${DATA_pufs_dio_rs:-unknown}
EOF
print_notes
