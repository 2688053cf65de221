# shellcheck shell=bash
# lib.sh - what the benchmark scripts share: the common options and
# checks, cleanup on exit, stopping what they started, waiting for
# mounts and logs, turning dd's output into figures, the baselines
# (libfuse's passthrough_ll, a private sshd) and, for the scripts with
# two peers, the namespaces, sshfs and the two pufs daemons.
#
# Sourced by the scripts of bench/ before they parse their options,
# after they set BENCH (the name in progress lines), the defaults of
# PUFS, RUNS and WORKPARENT and, where needed, EXAMPLES (libfuse's
# examples).  Before anything is made they set WORK (their work
# directory) and the arrays PIDS (processes to stop, by PID), MOUNTS
# (mount points to undo), NAMESPACES (network namespaces made) and
# NOTES (lines for the report); two_peer_setup does it for the scripts
# with two peers (remote.sh, rename.sh, data.sh, programs.sh, locks.sh,
# encrypt.sh), whose ADDR_A, ADDR_B, PUFS_PORT, SSH_PORT, ATTR_TIMEOUT,
# TMO and PYTHON this file sets below unless they did.  MEDIAN_FMT
# (default %.3f) formats the median of an even number of figures.

# The two-peer scripts' settings; a script that wants others sets them
# before it sources this file.
: "${ATTR_TIMEOUT:=5}" # pufs cache.attr_timeout, passed explicitly
: "${TMO:=300}"        # no single measured command runs longer
: "${ADDR_A:=10.250.0.1}"
: "${ADDR_B:=10.250.0.2}"
: "${PUFS_PORT:=7070}"
: "${SSH_PORT:=2222}"
: "${PYTHON:=python3}"

# A progress line on standard error.
msg() {
	echo "$BENCH: $*" >&2
}

# The options every script takes, in its getopts loop: -p PUFS, -r RUNS,
# -w DIR, -h; anything else is a usage error.
common_opt() {
	case $1 in
	p) PUFS=$OPTARG ;;
	r) RUNS=$OPTARG ;;
	w) WORKPARENT=$OPTARG ;;
	h) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
}

# The lines of the usage message for those options.
common_usage() {
	cat <<EOF
  -p PUFS      the pufs binary (default $PUFS)
  -r RUNS      runs per figure; the median is reported (default $RUNS)
  -w DIR       where the work directory is made (default $WORKPARENT);
               choose a disk-backed file system, not tmpfs
EOF
}

# Checks of the command line and of the machine, before anything is
# made; each exits 2 with a message on failure.

# Each variable named is a positive integer.
need_positive() {
	local v
	for v in "$@"; do
		case ${!v} in
		''|*[!0-9]*|0) echo "$BENCH: $v wants a positive number" >&2; exit 2 ;;
		esac
	done
}

# We are root; $1 says what for.
need_root() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "$BENCH: must run as root ($1)" >&2
		exit 2
	fi
}

# Each command named is on PATH.
need_commands() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null ||
		    { echo "$BENCH: $c is missing" >&2; exit 2; }
	done
}

# PUFS is an executable; make its path absolute.
need_pufs() {
	if [ ! -x "$PUFS" ]; then
		echo "$BENCH: no pufs binary at $PUFS (see -p)" >&2
		exit 2
	fi
	PUFS=$(cd "$(dirname "$PUFS")" && pwd)/$(basename "$PUFS")
}

# Undo everything the script made, in reverse order of making: the
# processes in PIDS, the mounts in MOUNTS, the namespaces in NAMESPACES
# (and what is left running in them), /run/sshd if it was made, WORK.
cleanup() {
	local rc=$? i ns pids
	set +e
	trap - INT TERM
	while [ ${#PIDS[@]} -gt 0 ]; do
		stop_pid "${PIDS[${#PIDS[@]} - 1]}"
	done
	for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
		unmount "${MOUNTS[$i]}"
	done
	# Only the script starts processes in its namespaces: what is
	# left there (an ssh client, an sshd session) is its own.
	for ns in ${NAMESPACES[@]+"${NAMESPACES[@]}"}; do
		pids=$(ip netns pids "$ns" 2>/dev/null)
		# shellcheck disable=SC2086
		[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
		ip netns delete "$ns"
	done
	if [ "${MADE_RUN_SSHD:-no}" = yes ]; then
		rmdir /run/sshd 2>/dev/null
	fi
	rm -rf --one-file-system "$WORK"
	exit $rc
}

# Run cleanup on any exit, SIGINT and SIGTERM included.
cleanup_on_exit() {
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# Stop one child by PID (SIGTERM, then SIGKILL after 10 s), reap it and
# drop it from PIDS so that cleanup never signals a reused PID.
stop_pid() {
	local pid=$1 i keep=()
	if kill -TERM "$pid" 2>/dev/null; then
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
	for i in "${PIDS[@]}"; do
		[ "$i" = "$pid" ] || keep+=("$i")
	done
	PIDS=("${keep[@]}")
}

# Unmount $1 if it is a mount point.
unmount() {
	if mountpoint -q "$1"; then
		fusermount3 -u "$1" 2>/dev/null || umount -l "$1"
	fi
}

# Wait until $1 is a mount point, while PID $2 lives; deadline 15 s.
wait_mounted() {
	local mnt=$1 pid=$2 i
	for ((i = 0; i < 150; i++)); do
		mountpoint -q "$mnt" && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# Wait until file $1 holds a line matching $2, while PID $3 lives.
wait_log() {
	local log=$1 pattern=$2 pid=$3 i
	for ((i = 0; i < 150; i++)); do
		grep -q -- "$pattern" "$log" 2>/dev/null && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# Run a command with the time limit TMO, output discarded; print its
# wall time in seconds.  Fails if the command fails.
timed() {
	local t0 t1 rc=0
	t0=$EPOCHREALTIME
	timeout -k 5 "$TMO" "$@" >/dev/null 2>&1 || rc=$?
	t1=$EPOCHREALTIME
	[ $rc -eq 0 ] || return $rc
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}

# Drop the kernel's page, dentry and inode caches.
drop_caches() {
	sync
	echo 3 > /proc/sys/vm/drop_caches
}

# Run dd with the arguments given; print its rate in MB/s if it copied
# $1 bytes, else fail.
dd_mbs() {
	local want=$1 out
	shift
	out=$(timeout -k 5 "$TMO" dd "$@" 2>&1) || { msg "dd $*: $out"; return 1; }
	if ! grep -q "^$want bytes" <<<"$out"; then
		msg "dd $*: copied not $want bytes: $out"
		return 1
	fi
	dd_rate <<<"$out"
}

# The CPU time (user and system, in clock ticks) pufs peers p1 and p2
# have used so far, as "T1 T2" (0 for a peer not running).
pufs_cpu() {
	local k pid t out=()
	for k in 1 2; do
		pid=PUFS_PID_$k
		t=
		if [ -n "${!pid:-}" ]; then
			t=$(awk '{ print $14 + $15 }' "/proc/${!pid}/stat" \
			    2>/dev/null) || t=
		fi
		out+=("${t:-0}")
	done
	echo "${out[@]}"
}

# Turn dd's summary line on standard input into MB/s (10^6 bytes/s).
dd_rate() {
	awk '/bytes.*copied/ {
		for (i = 1; i <= NF; i++)
			if ($i == "s,") secs = $(i - 1)
		if (secs > 0) printf "%.0f\n", $1 / secs / 1000000
	}'
}

# Print the median of the numbers given as arguments, as given (the mean
# of the middle two, in MEDIAN_FMT, for an even count).
median() {
	printf '%s\n' "$@" | sort -g | awk -v fmt="${MEDIAN_FMT:-%.3f}\n" \
	    '{ v[NR] = $1 }
	    END { if (NR % 2) print v[(NR + 1) / 2];
	          else printf fmt, (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Store the median of the remaining arguments in the variable named $1.
set_median() {
	local var=$1
	shift
	printf -v "$var" '%s' "$(median "$@")"
}

# Print the NOTES, if any, as a list after a blank line.
print_notes() {
	local n
	[ ${#NOTES[@]} -gt 0 ] || return 0
	echo
	for n in "${NOTES[@]}"; do
		echo "- $n"
	done
}

# Print a figure, or "-" when the row was skipped.
fig() {
	local v=${!1:-}
	echo "${v:--}"
}

# Print $1 / $2 in format $3 (default two decimals), or "-" when either
# is missing.
ratio() {
	local a=${!1:-} b=${!2:-} fmt=${3:-%.2f}
	if [ -n "$a" ] && [ -n "$b" ] &&
	    awk -v b="$b" 'BEGIN { exit !(b > 0) }'; then
		awk -v a="$a" -v b="$b" -v fmt="$fmt\n" \
		    'BEGIN { printf fmt, a / b }'
	else
		echo -
	fi
}

# Build libfuse's passthrough_ll as $PT (in $WORK); on failure say why,
# add a note and return 1.
build_passthrough() {
	PT=$WORK/passthrough_ll
	# pkg-config's output is meant to split into words.
	# shellcheck disable=SC2046
	if [ -r "$EXAMPLES/passthrough_ll.c" ] &&
	    cc -O2 -o "$PT" "$EXAMPLES/passthrough_ll.c" \
	    $(pkg-config --cflags --libs fuse3) 2>"$WORK/cc.log"; then
		return 0
	fi
	msg "cannot build $EXAMPLES/passthrough_ll.c; passthrough skipped"
	[ -s "$WORK/cc.log" ] && cat "$WORK/cc.log" >&2
	NOTES+=("passthrough_ll: cannot be built (is libfuse3-dev installed?)")
	return 1
}

# Start a private sshd listening on address $1, port $2, with its own
# host key and a key for root in $WORK/ssh (id); the remaining arguments
# prefix the command (e.g. nsenter into a namespace).  Sets SSHD_PID and
# MADE_RUN_SSHD when it had to make /run/sshd.
start_sshd() {
	local addr=$1 port=$2 ssh=$WORK/ssh
	shift 2
	mkdir -m 0700 "$ssh"
	command -v sshfs >/dev/null || { msg "no sshfs"; return 1; }
	[ -x /usr/sbin/sshd ] || { msg "no /usr/sbin/sshd"; return 1; }
	ssh-keygen -q -t ed25519 -N '' -f "$ssh/host_key" || return 1
	ssh-keygen -q -t ed25519 -N '' -f "$ssh/id" || return 1
	cp "$ssh/id.pub" "$ssh/authorized_keys"
	cat >"$ssh/sshd_config" <<EOF
Port $port
ListenAddress $addr
HostKey $ssh/host_key
PidFile none
AuthorizedKeysFile $ssh/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
EOF
	if [ ! -d /run/sshd ]; then
		mkdir -m 0755 /run/sshd
		# shellcheck disable=SC2034  # read by the sourcing script
		MADE_RUN_SSHD=yes
	fi
	"$@" /usr/sbin/sshd -D -e -f "$ssh/sshd_config" 2>"$WORK/sshd.log" &
	SSHD_PID=$!
	PIDS+=("$SSHD_PID")
	if ! wait_log "$WORK/sshd.log" "Server listening" "$SSHD_PID"; then
		msg "sshd did not start; its log:"
		cat "$WORK/sshd.log" >&2
		return 1
	fi
}

# Two peers in two network namespaces.

# Make the work directory WORKPARENT/pufs-$1.XXXXXX with the exports
# and mount points of the two peers (E1, M1 and E2, M2 under p1/ and
# p2/) and of sshfs (MSSH); name the namespaces (NS_A, NS_B) after our
# PID; start the lists PIDS, MOUNTS, NAMESPACES and NOTES; from here on
# cleanup runs on any exit.
# work_setup NAME: the work directory pufs-NAME.* and the empty lists
# of what the cleanup undoes, then the cleanup armed.
work_setup() {
	WORK=$(mktemp -d "$WORKPARENT/pufs-$1.XXXXXX")
	PIDS=()
	MOUNTS=()
	NAMESPACES=()
	NOTES=()
	cleanup_on_exit
}

two_peer_setup() {
	NS_A=pufs-bench-$$-a
	NS_B=pufs-bench-$$-b
	work_setup "$1"
	E1=$WORK/p1/export
	E2=$WORK/p2/export
	M1=$WORK/p1/mnt
	M2=$WORK/p2/mnt
	MSSH=$WORK/mnt-sshfs
	mkdir -p "$E1" "$E2" "$M1" "$M2" "$MSSH"
	MOUNTS=("$M1" "$M2" "$MSSH")
	MADE_RUN_SSHD=no
}

# Make namespace $1 with its loopback up.
ns_add() {
	ip netns add "$1"
	NAMESPACES+=("$1")
	ip -n "$1" link set lo up
}

# Make namespaces NS_A (ADDR_A) and NS_B (ADDR_B), joined by a veth pair.
ns_link() {
	ns_add "$NS_A"
	ns_add "$NS_B"
	ip link add eth0 netns "$NS_A" type veth peer name eth0 netns "$NS_B"
	ip -n "$NS_A" addr add "$ADDR_A/24" dev eth0
	ip -n "$NS_B" addr add "$ADDR_B/24" dev eth0
	ip -n "$NS_A" link set eth0 up
	ip -n "$NS_B" link set eth0 up
	msg "namespaces $NS_A ($ADDR_A) and $NS_B ($ADDR_B) joined by a veth pair"
}

# Mount p2's export directory E2 at MSSH with sshfs from namespace A,
# through the sshd start_sshd started in B, with the extra options $1
# (may be empty).  Sets SSHFS_PID and SSHFS_OPTS.
sshfs_mount() {
	local opts="IdentityFile=$WORK/ssh/id,StrictHostKeyChecking=no"
	opts="$opts,UserKnownHostsFile=/dev/null,BatchMode=yes,LogLevel=ERROR"
	# shellcheck disable=SC2034  # read by the sourcing script
	SSHFS_OPTS=$1
	nsenter --net="/run/netns/$NS_A" sshfs -f -p "$SSH_PORT" \
	    -o "$opts${1:+,$1}" "root@$ADDR_B:$E2" "$MSSH" \
	    2>>"$WORK/sshfs.log" &
	SSHFS_PID=$!
	PIDS+=("$SSHFS_PID")
	if ! wait_mounted "$MSSH" "$SSHFS_PID"; then
		msg "sshfs did not mount; its log:"
		cat "$WORK/sshfs.log" >&2
		return 1
	fi
}

# Unmount MSSH and stop sshfs.
sshfs_stop() {
	unmount "$MSSH"
	[ -n "${SSHFS_PID:-}" ] && stop_pid "$SSHFS_PID"
	SSHFS_PID=
}

# Start pufs peer p$1 in namespace $2, listening on address $3, with
# the other peer at $4, exporting $5, mounted at $6, with the extra
# -o options in PUFS_OPTS (may be empty); its control socket is
# WORK/p$1/ctl.sock, its log WORK/p$1.log.  Sets PUFS_PID_$1.
pufs_start() {
	local k=$1 ns=$2 addr=$3 other=$4 export=$5 mnt=$6 opts pid
	opts="peer.name=p$k,peer.listen=$addr:$PUFS_PORT"
	opts="$opts,peer.discovery=unicast,peer.peers=$other:$PUFS_PORT"
	opts="$opts,peer.control_socket=$WORK/p$k/ctl.sock"
	opts="$opts,cache.attr_timeout=$ATTR_TIMEOUT${PUFS_OPTS:+,$PUFS_OPTS}"
	nsenter --net="/run/netns/$ns" "$PUFS" mount -e "$export" \
	    -o "$opts" "$mnt" 2>"$WORK/p$k.log" &
	pid=$!
	PIDS+=("$pid")
	printf -v "PUFS_PID_$k" '%s' "$pid"
	if ! wait_log "$WORK/p$k.log" "ready: mounted" "$pid"; then
		msg "pufs p$k did not become ready; its log:"
		cat "$WORK/p$k.log" >&2
		return 1
	fi
}

# Start p1 in NS_A exporting $1 mounted at $2, and p2 in NS_B exporting
# $3 mounted at $4; wait until each sees the other up.
pufs_start_both() {
	pufs_start 1 "$NS_A" "$ADDR_A" "$ADDR_B" "$1" "$2" &&
	    pufs_start 2 "$NS_B" "$ADDR_B" "$ADDR_A" "$3" "$4" &&
	    pufs_wait_up 1 && pufs_wait_up 2
}

# Print peer p$1's pufs status --json.
pufs_status() {
	timeout -k 2 5 "$PUFS" status -s "$WORK/p$1/ctl.sock" --json \
	    2>/dev/null
}

# Wait (10 s at most) until peer $1's status shows the other peer up.
pufs_wait_up() {
	local i
	for ((i = 0; i < 100; i++)); do
		pufs_status "$1" | grep -q '"state":"up"' && return 0
		sleep 0.1
	done
	msg "pufs p$1 does not see the other peer up"
	return 1
}

# The cold state of pufs: attr_timeout waited out.
pufs_cold() {
	sleep "$ATTR_TIMEOUT.5"
}

# Stop peer p$1 and undo its mount (WORK/p$1/mnt).
pufs_stop_one() {
	local pid=PUFS_PID_$1
	[ -n "${!pid:-}" ] && stop_pid "${!pid}"
	printf -v "PUFS_PID_$1" '%s' ""
	unmount "$WORK/p$1/mnt"
}

# Report, and note, what peer p$1 logged above info (its log is
# WORK/p$1.log, made anew at each start).
pufs_log_check() {
	local log=$WORK/p$1.log
	if [ -s "$log" ] && grep -v ' info: ' "$log" >/dev/null; then
		msg "pufs p$1 logged warnings or errors:"
		grep -v ' info: ' "$log" | head -20 >&2
		NOTES+=("pufs p$1 logged $(grep -vc ' info: ' "$log") lines other than info")
	fi
}

# Stop p2 then p1 and undo their mounts; then report, and note, what
# either logged above info.
pufs_stop() {
	pufs_stop_one 2
	pufs_stop_one 1
	pufs_log_check 1
	pufs_log_check 2
}

# Print field $2 (VmHWM, VmRSS) of process $1 in KiB, or nothing.
mem_kib() {
	awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null
}

# Keep in variable $1 the larger of its value and $2.
keep_max() {
	local cur=${!1:-0}
	[ "${2:-0}" -gt "$cur" ] && printf -v "$1" '%s' "$2"
	return 0
}

# Print the load average over 1, 5 and 15 minutes.
load_avg() {
	cut -d' ' -f1-3 /proc/loadavg
}
