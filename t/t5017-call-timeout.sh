#!/bin/bash
#
# A call to a peer that stops answering (SIGSTOP: its stream stays open
# and silent) completes with an error after op_timeout, and leaves
# nothing behind: it is out of the stream's table and freed at once, not
# when the late reply comes.  The late reply is dropped as unmatched and
# the stream goes on, and a late answer to an open has its handle
# released on the holder.  A call to our own export that times out while
# its request waits for a worker keeps what it owns until the worker is
# done: a symbolic link made then has the target asked for, and files
# opened then are closed again.  The daemons run with op_timeout 1 s
# and dead_after 8 s, so the stream outlives the stop.  p1 exports p3's
# mount (p3 runs alone), so stopping p3 blocks p1's workers.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"

OPTS=peer.op_timeout=1,peer.dead_after=8
TARGET=a-target-long-enough-to-be-overwritten-once-freed/0123456789

# json K EXPR: a value from peer K's status (EXPR indexes s).
json () {
	peer_status "$1" | "$PYTHON" -c "import json,sys; s=json.load(sys.stdin); print($2)"
}

test_expect_success 'setup: p2 holds a file; p1 exports p3 (alone) mount' '
	peers_net_setup 3 &&
	mkdir -p "$(peer_export 2)/dir" &&
	echo hello >"$(peer_export 2)/dir/file" &&
	for i in $(seq 10); do echo $i >"$(peer_export 3)/f$i" || exit 1; done &&
	peer_start 3 -o "$OPTS,peer.peers=" &&
	peer_start 1 --no-export -e "$(peer_mnt 3)" -o \
	    "$OPTS,peer.peers=$(peer_uri 2),cache.attr_timeout=30" &&
	peer_start 2 -o "$OPTS,peer.peers=$(peer_uri 1)" &&
	peers_wait_all_up 2 &&
	test_output hello cat "$(peer_mnt 1)/dir/file"
'

test_expect_success 'a call to a stopped peer times out and is freed at once' '
	pufs_signal p2 STOP &&
	test_when_finished "pufs_signal p2 CONT" &&
	t0=$EPOCHREALTIME &&
	! timeout 10 stat "$(peer_mnt 1)/absent" 2>err &&
	t1=$EPOCHREALTIME &&
	cat err &&
	echo "stat failed after $(awk -v a=$t0 -v b=$t1 "BEGIN { print b - a }") s" &&
	awk -v a=$t0 -v b=$t1 "BEGIN { exit !(b - a < 3) }" &&
	test $(json 1 "s[\"fuse\"][\"timeouts\"]") -ge 1 &&
	test_output 0 json 1 "s[\"fuse\"][\"calls_in_flight\"]" &&
	test_output "p2 up" peer_states 1
'

test_expect_success 'the late reply is dropped; the stream goes on' '
	wait_for "grep -q \"matches no request\" \"$(peer_log 1)\"" 5 &&
	test_output 0 json 2 "s[\"open_files\"]" &&
	test_output "p2 up" peer_states 1 &&
	test_output hello cat "$(peer_mnt 1)/dir/file" &&
	ls "$(peer_mnt 1)/dir" >got &&
	test_output file cat got
'

test_expect_success 'a late answer to an open releases its handle on the holder' '
	pufs_signal p2 STOP &&
	test_when_finished "pufs_signal p2 CONT" &&
	! timeout 10 cat "$(peer_mnt 1)/dir/file" &&
	pufs_signal p2 CONT &&
	wait_for "grep -q \"(open) matches no request\" \"$(peer_log 1)\"" 5 &&
	wait_for "test \$(json 2 \"s[\\\"open_files\\\"]\") = 0" 5 &&
	test_output hello cat "$(peer_mnt 1)/dir/file"
'

test_expect_success 'a symlink whose call timed out in the queue keeps its target' '
	ls "$(peer_mnt 1)" >/dev/null &&
	! test -e "$(peer_mnt 1)/link" &&
	pufs_signal p3 STOP &&
	test_when_finished "pufs_signal p3 CONT" &&
	for i in $(seq 10); do
		timeout 10 cat "$(peer_mnt 1)/f$i" >/dev/null 2>&1 &
	done &&
	wait_for "test \$(json 1 \"s[\\\"workers\\\"][\\\"busy\\\"] + s[\\\"workers\\\"][\\\"queued\\\"]\") -ge 10" 5 &&
	! timeout 10 ln -s "$TARGET" "$(peer_mnt 1)/link" &&
	pufs_signal p3 CONT &&
	wait &&
	wait_for "test -L \"$(peer_export 3)/link\"" 5 &&
	test_output "$TARGET" readlink "$(peer_export 3)/link" &&
	wait_for "test \$(json 1 \"s[\\\"open_files\\\"]\") = 0" 5
'

test_expect_success 'cleanup: stop all' '
	for k in 1 2 3; do peer_stop $k || exit 1; done
'

test_done
