# t/lib-peers.sh - several pufs peers on one machine, each in its own
# network namespace, for the multi-peer integration tests.
#
# Sourced after t/lib.sh.  peers_net_setup N makes N peer namespaces
# pufs-ID-pK and a hub namespace pufs-ID-hub holding a bridge; peer K
# has eth0 = 10.NET.0.K/24 on that bridge (ID is the test number and the
# script's PID; NET is derived from the test number; addresses live in
# the namespaces, so even two runs of one script do not collide).  peer_start K runs
# peer K's daemon inside its namespace with nsenter --net only, so its
# FUSE mount lives in the common mount namespace and the test sees it;
# daemons go through lib.sh's pufs_start, so lib.sh's cleanup stops them.
# The namespaces are deleted at exit, after lib.sh's cleanup, whatever
# way the script ends.  Limits: IPv4 only; at most 9 peers; unicast
# discovery (each peer is told every other peer's address); the daemons
# run as root; peer K's log is $TRASH/pK.log (linked from $TRASH/pK/log)
# and is moved to $TRASH/pK/log.old.N when the peer restarts.

[ -n "${_LIB:-}" ] && [ -d "$_LIB" ] ||
	{ echo "Bail out! source t/lib.sh before t/lib-peers.sh"; exit 1; }
[ "${PUFS_TEST_RAW:-0}" = 1 ] &&
	bail_out "the multi-peer tests need the real daemon (PUFS_TEST_RAW=1)"
test_require ip nsenter

# lib.sh's PORT_BASE (17000 + 10 * test number) is past 65535 for the
# 5000s; pufs_start puts a 127.0.0.1 port of it in -o, which peer_start
# overrides, but the daemon checks it first, so keep it in range.
PORT_BASE=$((17000 + TEST_NUMBER % 1000 * 10))

# One run's namespaces: test number and PID, so that two runs of the
# same script (two people, or meson and a shell) never share one.
PEERS_ID=$TEST_NUMBER-$$
PEERS_NET=$((100 + TEST_NUMBER % 150))
PEERS_PORT=7070
PEERS_HUB=pufs-$PEERS_ID-hub

# Short names for peer K's mount (MK), export (EK) and URI (UK), K = 1..9.
for _k in 1 2 3 4 5 6 7 8 9; do
	eval "M$_k=\$TRASH/p$_k/mnt E$_k=\$TRASH/p$_k/export" \
	    "U$_k=10.$PEERS_NET.0.$_k:$PEERS_PORT"
done
unset _k

# peer_ns K, peer_addr K, peer_uri K, peer_dir K, peer_mnt K,
# peer_export K, peer_sock K, peer_log K: what belongs to peer K.
peer_ns () { echo "pufs-$PEERS_ID-p$1"; }
peer_addr () { echo "10.$PEERS_NET.0.$1"; }
peer_uri () { echo "10.$PEERS_NET.0.$1:$PEERS_PORT"; }
peer_dir () { echo "$TRASH/p$1"; }
peer_mnt () { echo "$TRASH/p$1/mnt"; }
peer_export () { echo "$TRASH/p$1/export"; }
peer_sock () { echo "$TRASH/p$1/ctl.sock"; }
peer_log () { echo "$TRASH/p$1.log"; }

# peers_multicast K BASE: multicast discovery on eth0 for this script's
# peers: GROUP=239.255.NET.K, MPORT=BASE+NET, and MC the options that
# select them (for peer_start -o; append cache keys as needed).
peers_multicast () {
	GROUP=239.255.$PEERS_NET.$1
	MPORT=$(($2 + PEERS_NET))
	MC="peer.discovery=multicast,peer.peers=,peer.multicast_group=$GROUP"
	MC="$MC,peer.multicast_port=$MPORT,peer.multicast_interface=eth0"
}

# in_peer K COMMAND...: run COMMAND in peer K's network namespace (and
# only there: the mount namespace stays the common one).
in_peer () {
	local k=$1
	shift
	nsenter --net="/run/netns/$(peer_ns "$k")" -- "$@"
}

# in_hub COMMAND...: run COMMAND in the hub namespace.
in_hub () {
	nsenter --net="/run/netns/$PEERS_HUB" -- "$@"
}

# The namespaces of this script that exist now, one a line.
_peers_ns_list () {
	ip netns list 2>/dev/null | awk -v p="pufs-$PEERS_ID-" \
		'index($1, p) == 1 { print $1 }'
}

# Delete the namespaces of this script, first killing (by PID) whatever
# still runs in them: only this script starts processes there.  Returns
# 1 if a process had to be killed or a namespace would not go.
_peers_net_cleanup () {
	local ns pids bad=0
	for ns in $(_peers_ns_list); do
		pids=$(ip netns pids "$ns" 2>/dev/null)
		if [ -n "$pids" ]; then
			echo "# cleanup: killing processes left in $ns:" $pids
			kill -KILL $pids 2>/dev/null
			bad=1
		fi
		ip netns delete "$ns" || bad=1
	done
	if [ -n "$(_peers_ns_list)" ]; then
		echo "# cleanup: namespaces left:" $(_peers_ns_list)
		bad=1
	fi
	return $bad
}

# Every process this script starts inherits this mark, so that the
# cleanup finds even those a killed test body left behind (orphans are
# no longer its descendants).
export PUFS_TEST_MARK=$TRASH

# Print the PIDs of the processes carrying this script's mark, but for
# this shell and the daemons and their wrappers.
_peers_strays () {
	local f spare="$$"
	for f in "$_LIB"/d.*.pid "$_LIB"/d.*.wpid; do
		[ -e "$f" ] && spare="$spare $(cat "$f")"
	done
	"$PYTHON" - "$PUFS_TEST_MARK" $spare <<-\EOF
	import os, sys
	mark = ("PUFS_TEST_MARK=" + sys.argv[1]).encode()
	spare = set(sys.argv[2:]) | {str(os.getpid()), str(os.getppid())}
	for p in os.listdir("/proc"):
	    if not p.isdigit() or p in spare:
	        continue
	    try:
	        env = open("/proc/%s/environ" % p, "rb").read().split(b"\0")
	    except OSError:
	        continue
	    if mark in env:
	        print(p)
	EOF
}

# Kill (by PID) what this script started and is still running, apart
# from the daemons and their wrappers: the body of a test interrupted by
# a signal, and what it started in the background.
_peers_kill_strays () {
	local p cmd
	for p in $(_peers_strays); do
		cmd=$(ps -o args= -p "$p" 2>/dev/null) || continue
		echo "# cleanup: killing $p, still running: $cmd"
		kill -KILL "$p" 2>/dev/null
	done
}

# The EXIT trap, replacing lib.sh's: lib.sh's cleanup (daemons, mounts,
# trash), then the namespaces.
_peers_exit () {
	local rc=$?
	trap - EXIT INT TERM
	_peers_kill_strays
	_lib_cleanup || rc=1
	_peers_net_cleanup || rc=1
	exit $rc
}
trap _peers_exit EXIT

# Delete the names of the namespaces of earlier runs of this script
# whose shell is gone (a run killed before its cleanup).  What still
# runs in them is left alone; the namespace lives on until it ends.
_peers_ns_reap () {
	local ns pid
	for ns in $(ip netns list 2>/dev/null | awk '{ print $1 }' |
	    grep "^pufs-$TEST_NUMBER-[0-9]*-"); do
		pid=${ns#pufs-"$TEST_NUMBER"-}
		pid=${pid%%-*}
		[ "$pid" = $$ ] && continue
		kill -0 "$pid" 2>/dev/null && continue
		echo "peers_net_setup: deleting $ns, left by a dead run"
		ip netns delete "$ns"
	done
}

# Add one namespace, deleting a leftover of the same name first (the
# name carries this script's number and PID: it can only be ours).
_peers_ns_add () {
	if ip netns list | awk '{ print $1 }' | grep -qx "$1"; then
		echo "peers_net_setup: deleting leftover namespace $1"
		ip netns delete "$1" || return 1
	fi
	ip netns add "$1" && ip -n "$1" link set lo up
}

# peers_net_setup N: the hub with its bridge and N peer namespaces, each
# linked to the bridge by a veth pair, addressed and with a multicast
# route; then wait until every peer reaches every other one.
peers_net_setup () {
	local - ; set +x
	local n=$1 k j ns
	case $n in
	[1-9]) ;;
	*) echo "peers_net_setup: 1 to 9 peers, not '$n'"; return 1 ;;
	esac
	_peers_ns_reap
	_peers_ns_add "$PEERS_HUB" || return 1
	ip -n "$PEERS_HUB" link add br0 type bridge stp_state 0 \
		mcast_snooping 0 || return 1
	ip -n "$PEERS_HUB" link set br0 up || return 1
	for k in $(seq "$n"); do
		ns=$(peer_ns "$k")
		_peers_ns_add "$ns" || return 1
		ip -n "$PEERS_HUB" link add "v$k" type veth \
			peer name eth0 netns "$ns" || return 1
		ip -n "$PEERS_HUB" link set "v$k" master br0 up || return 1
		ip -n "$ns" addr add "$(peer_addr "$k")/24" dev eth0 ||
			return 1
		ip -n "$ns" link set eth0 up || return 1
		ip -n "$ns" route add 224.0.0.0/4 dev eth0 || return 1
		mkdir -p "$(peer_export "$k")" "$(peer_mnt "$k")" || return 1
	done
	echo "$n" >"$_LIB/peers.n"
	for k in $(seq "$n"); do
		for j in $(seq "$n"); do
			[ "$k" = "$j" ] && continue
			wait_for "peers_reach $k $j" 10 || return 1
		done
	done
}

# Write the helper that tells whether an IPv4 address answers on TCP.
cat >"$_LIB/reach.py" <<'EOF'
# reach.py ADDR PORT: exit 0 if a TCP connection to ADDR:PORT is
# accepted or refused (the host answers), 1 if it times out or the host
# is unreachable.
import errno, socket, sys

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(1)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
except ConnectionRefusedError:
    sys.exit(0)
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e)))
    sys.exit(1)
sys.exit(0)
EOF

# peers_reach K J: peer K reaches peer J's address (a TCP connection to
# its discard port is accepted or refused, not lost).
peers_reach () {
	in_peer "$1" "$PYTHON" "$_LIB/reach.py" "$(peer_addr "$2")" 9
}

# peers_count: the N of peers_net_setup.
peers_count () {
	cat "$_LIB/peers.n" 2>/dev/null ||
		{ echo "peers_net_setup was not called" >&2; return 1; }
}

# peer_start K [--ro | --no-export] [ARGS...]: start peer K's daemon in
# its namespace, exporting $TRASH/pK/export (read-only with --ro; not at
# all with --no-export, for ARGS that bring their own -e or -c), mounted
# at $TRASH/pK/mnt, with the test's peer options, then ARGS (a later -o
# overrides an earlier one); wait for its ready line.
peer_start () {
	local - ; set +x
	local k=$1 n j list="" exp="" opts wrap log i
	shift
	n=$(peers_count) || return 1
	exp="-e $(peer_export "$k")"
	case ${1:-} in
	--ro) exp="-e $(peer_export "$k"):ro"; shift ;;
	--no-export) exp=""; shift ;;
	esac
	for j in $(seq "$n"); do
		[ "$j" = "$k" ] || list="$list${list:+ }$(peer_uri "$j")"
	done
	opts="peer.name=p$k,peer.listen=$(peer_uri "$k")"
	opts="$opts,peer.discovery=unicast"
	[ -n "$list" ] && opts="$opts,peer.peers=$list"
	opts="$opts,peer.control_socket=$(peer_sock "$k")"
	opts="$opts,peer.heartbeat=0.2,peer.dead_after=1,peer.op_timeout=3"
	opts="$opts,cache.attr_timeout=0.5"
	mkdir -p "$(peer_export "$k")" "$(peer_mnt "$k")" || return 1
	# A restart: keep the old log aside, so that pufs_start waits for
	# the new daemon's ready line, not the old one's.
	log=$(peer_log "$k")
	if [ -e "$log" ]; then
		i=1
		while [ -e "$(peer_dir "$k")/log.old.$i" ]; do
			i=$((i + 1))
		done
		mv "$log" "$(peer_dir "$k")/log.old.$i" || return 1
		echo 0 >"$_LIB/logsize.p$k.log"
	fi
	ln -sfn "../p$k.log" "$(peer_dir "$k")/log" || return 1
	rm -f "$(peer_sock "$k")"
	wrap=$_LIB/ns-pufs.p$k
	cat >"$wrap" <<-EOF || return 1
	#!/bin/sh
	exec nsenter --net=/run/netns/$(peer_ns "$k") -- "$PUFS" "\$@"
	EOF
	chmod +x "$wrap" || return 1
	# shellcheck disable=SC2086
	PUFS=$wrap pufs_start "p$k" "$(peer_mnt "$k")" $exp -o "$opts" "$@"
}

# peers_start_all N [ARGS...]: start peers 1 to N, each with ARGS.
peers_start_all () {
	local n=$1 k
	shift
	for k in $(seq "$n"); do
		peer_start "$k" "$@" || return 1
	done
}

# peer_stop K: SIGTERM, exit status 0 and the mount gone (pufs_stop).
peer_stop () {
	pufs_stop "p$1"
}

# peer_kill K: SIGKILL peer K's daemon, wait for it to be gone and
# lazily unmount its mount point (the FUSE connection aborts), so that
# the test can go on and the peer can be started again.
peer_kill () {
	local - ; set +x
	local k=$1 rc mnt
	mnt=$(peer_mnt "$k")
	pufs_signal "p$k" KILL || return 1
	rc=$(pufs_wait_exit "p$k" 10) || {
		echo "peer_kill: p$k still runs 10 s after SIGKILL"
		return 1
	}
	mv "$_LIB/d.p$k.pid" "$_LIB/d.p$k.stopped"
	if [ "$rc" != 137 ]; then
		echo "peer_kill: p$k exited $rc, not by the SIGKILL"
		return 1
	fi
	if is_mounted "$mnt"; then
		umount -l "$mnt" || return 1
	fi
}

# peer_status K: the JSON status of peer K on standard output.
peer_status () {
	timeout -k 2 10 "$PUFS" status -s "$(peer_sock "$1")" --json
}

# jget K KEY.KEY...: one value of peer K's JSON status (data.dirty_bytes).
jget () {
	peer_status "$1" | "$PYTHON" -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[k]
print(v)
' "$2"
}

# peer_advance K MS: move peer K's clock forward by MS ms (pufs_advance).
peer_advance () {
	pufs_advance "$(peer_sock "$1")" "$2"
}

# peer_traps_received K: TRAP datagrams peer K has received.
peer_traps_received () {
	peer_status "$1" | "$PYTHON" -c '
import json, sys
print(json.load(sys.stdin)["traps"]["received"])'
}

# peer_flush_traps H K: holder H (with a long trap_delay and the time
# control on) sends the traps it holds; wait until peer K has them.
peer_flush_traps () {
	local t0
	t0=$(peer_traps_received "$2") &&
	peer_advance "$1" 31000 &&
	wait_for "test \$(peer_traps_received $2) -gt $t0"
}

# peer_states K: "NAME STATE" of every other peer that peer K's status
# lists, one a line, sorted.
peer_states () {
	local st
	st=$(peer_status "$1") || return 1
	printf '%s\n' "$st" | "$PYTHON" -c '
import json, sys
s = json.load(sys.stdin)
for p in sorted(s["peers"], key=lambda p: p["name"]):
    if p["name"] != s["name"]:
        print(p["name"], p["state"])
'
}

# peers_wait_up K N: wait (10 s at most) until peer K's status shows N-1
# other peers up.
peers_wait_up () {
	local - ; set +x
	local k=$1 want=$(($2 - 1))
	if ! wait_for "test \"\$(peer_states $k | grep -c ' up\$')\" = $want" 10
	then
		echo "peers_wait_up: p$k does not see $want peers up; status:"
		peer_status "$k"
		echo
		return 1
	fi
}

# peers_wait_down K NAME: wait (10 s at most) until peer K's status
# shows the peer NAME in another state than up, or not at all.
peers_wait_down () {
	local - ; set +x
	local k=$1 name=$2
	if ! wait_for "! peer_states $k | grep -qx '$name up' &&
	    peer_states $k >/dev/null" 10; then
		echo "peers_wait_down: p$k still sees $name up; status:"
		peer_status "$k"
		echo
		return 1
	fi
}

# peers_wait_all_up N: every one of peers 1 to N sees the N-1 others up.
peers_wait_all_up () {
	local k
	for k in $(seq "$1"); do
		peers_wait_up "$k" "$1" || return 1
	done
}

# peer_link_down K, peer_link_up K: cut peer K's network (eth0 down
# inside its namespace) and restore it, with the multicast route that
# taking the link down removes.
peer_link_down () {
	ip -n "$(peer_ns "$1")" link set eth0 down
}
peer_link_up () {
	local ns
	ns=$(peer_ns "$1")
	ip -n "$ns" link set eth0 up &&
	{ ip -n "$ns" route show 224.0.0.0/4 | grep -q . ||
	  ip -n "$ns" route add 224.0.0.0/4 dev eth0; }
}

# peers_mount_tmpfs DIR SIZE: mount a tmpfs of SIZE on DIR; lib.sh's
# cleanup unmounts it after the daemons have stopped.
peers_mount_tmpfs () {
	mkdir -p "$1" &&
	mount -t tmpfs -o "size=$2,mode=755" "pufs-test-tmpfs" "$1" &&
	echo "$(cd "$1" && pwd -P)" >>"$_LIB/mounts"
}

# Write the helper that reads or writes a file slowly and reports how
# and when it failed.
cat >"$_LIB/slowio.py" <<'EOF'
# slowio.py read|write FILE STATUS: read FILE (or write to it, with an
# fsync after each chunk) 64 KiB at a time, about 5 MB/s, until the end
# of the file (for write: 1 GiB).  Progress goes to STATUS.progress (bytes
# done); on a failure STATUS gets "ERRNO TIME" (TIME of the failure, epoch
# seconds) and the exit status is 1; on success STATUS gets "ok TIME".
import errno, os, sys, time

mode, path, status = sys.argv[1:4]
chunk = 65536
done = 0

def report(what):
    with open(status + '.tmp', 'w') as f:
        f.write('%s %.6f\n' % (what, time.time()))
    os.rename(status + '.tmp', status)

def progress():
    with open(status + '.progress.tmp', 'w') as f:
        f.write('%d\n' % done)
    os.rename(status + '.progress.tmp', status + '.progress')

try:
    if mode == 'read':
        fd = os.open(path, os.O_RDONLY)
    else:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    buf = os.urandom(chunk)
    while done < (1 << 30):
        if mode == 'read':
            n = len(os.read(fd, chunk))
            if n == 0:
                break
        else:
            n = os.write(fd, buf)
            os.fsync(fd)
        done += n
        progress()
        time.sleep(0.012)
    os.close(fd)
except OSError as e:
    report(errno.errorcode.get(e.errno, str(e.errno)))
    sys.exit(1)
report('ok')
EOF

# slowio read|write FILE STATUS: see slowio.py; run it in the background.
slowio () {
	"$PYTHON" "$_LIB/slowio.py" "$@"
}

# tree_of DIR: the tree under DIR as "PATH TYPE MODE SIZE" lines for
# files, "PATH TYPE" for directories, "PATH TYPE -> TARGET" for symlinks,
# sorted, paths relative to DIR; nothing else (no times, no inodes).
tree_of () {
	(cd "$1" && find . -mindepth 1 \( -type d -printf '%p %y\n' \) -o \
		\( -type l -printf '%p %y -> %l\n' \) -o \
		-printf '%p %y %m %s\n') | sort
}

# holders PATH: the peers (1..N) whose export holds PATH, as "1 3".
holders () {
	local k out=""
	for k in $(seq "$(peers_count)"); do
		if [ -e "$(peer_export "$k")/$1" ] ||
		   [ -L "$(peer_export "$k")/$1" ]; then
			out="$out${out:+ }$k"
		fi
	done
	echo "$out"
}

# each_mount 'COMMANDS': run COMMANDS once for every running peer's
# mount, with $m set to the mount and $k to the peer; stop at the first
# failure and say which mount it was.
each_mount () {
	local m k
	for k in $(seq "$(peers_count)"); do
		[ -e "$_LIB/d.p$k.pid" ] || continue
		m=$(peer_mnt "$k")
		eval "$1" || { echo "each_mount: failed on p$k ($m)"; return 1; }
	done
}

# each_mount_soon 'CONDITION' [TIMEOUT]: on every running peer's mount
# ($m, $k as in each_mount), wait until CONDITION holds (metadata may be
# cached for attr_timeout; default 3 s).
each_mount_soon () {
	local m k
	for k in $(seq "$(peers_count)"); do
		[ -e "$_LIB/d.p$k.pid" ] || continue
		m=$(peer_mnt "$k")
		wait_for "$1" "${2:-3}" ||
			{ echo "each_mount_soon: failed on p$k ($m)"; return 1; }
	done
}
