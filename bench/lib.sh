# shellcheck shell=bash
# lib.sh - what the benchmark scripts share: stopping what they started,
# waiting for mounts and logs, turning dd's output into figures, and
# starting the baselines (libfuse's passthrough_ll, a private sshd).
#
# Sourced by bench/seqio.sh and bench/remote.sh after they set BENCH
# (the name in progress lines), WORK (their work directory), EXAMPLES
# (libfuse's examples), and the arrays PIDS (processes to stop, by PID)
# and NOTES (lines for the report).  MEDIAN_FMT (default %.3f) formats
# the median of an even number of figures.

# A progress line on standard error.
msg() {
	echo "$BENCH: $*" >&2
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

# Print a figure, or "-" when the row was skipped.
fig() {
	local v=${!1:-}
	echo "${v:--}"
}

# Print $1 / $2 with two decimals, or "-" when either is missing.
ratio() {
	local a=${!1:-} b=${!2:-}
	if [ -n "$a" ] && [ -n "$b" ] &&
	    awk -v b="$b" 'BEGIN { exit !(b > 0) }'; then
		awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f\n", a / b }'
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
