#!/bin/bash
#
# Lock waits end well: a blocked F_SETLKW interrupted by a signal
# returns EINTR and the lock is not granted later behind its back (the
# holder is another peer, or this peer itself); when the peer of the
# lock's owner dies, a waiter on a third peer gets the lock within
# dead_after + 1 s; when the file's holder dies, the waiter gets EIO
# with no hang, and after the holder restarts a re-open finds no ghost
# lock.  The owner's peer is killed (its streams close at once) and
# cut off the network (its streams are found dead after dead_after).
# The daemons run with dead_after 1 s (lib-peers.sh).

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"
. "$T_DIR/lib-locks.sh"

# dead_after + 1 s: the longest a waiter waits for a dead owner's lock.
LIMIT=2
# How long the holder's death may take to reach a waiter: dead_after,
# then slack for the probe (as t5007).
EIO_LIMIT=6

# within STATE T0 LIMIT: the time in STATE is less than LIMIT after T0.
within () {
	awk -v a="$2" -v b="$(cut -d" " -f2 "$1")" -v l="$3" \
		'BEGIN { printf "%.3f s\n", b - a; exit !(b - a < l) }'
}

test_expect_success 'setup: three peers, p3 holds the files' '
	peers_net_setup 3 &&
	head -c 4096 /dev/zero >"$E3/f" &&
	peers_start_all 3 &&
	peers_wait_all_up 3 &&
	test -s "$M1/f" && test -s "$M2/f"
'

test_expect_success 'an interrupted F_SETLKW: EINTR, and never granted after' '
	hold a posix wr 0 10 "$M1/f" && holding a &&
	bg i intr wr 5 10 "$M2/f" &&
	wait_for "test -s i" 10 &&
	test_output EINTR cat i &&
	release a &&
	test_output ok lk try posix wr 0 100 "$M1/f" &&
	test_output ok lk try posix wr 0 100 "$M3/f" &&
	touch i.release && wait "$(cat i.pid)"
'

test_expect_success 'the same when the holder is the waiting peer itself' '
	hold a posix wr 0 10 "$M1/f" && holding a &&
	bg i intr wr 5 10 "$M3/f" &&
	wait_for "test -s i" 10 &&
	test_output EINTR cat i &&
	release a &&
	test_output ok lk try posix wr 0 100 "$M2/f" &&
	touch i.release && wait "$(cat i.pid)"
'

# owner_lost COMMAND...: p1 holds a lock of the file, p2 waits for it;
# COMMAND takes p1 away; p2 must have the lock within LIMIT.
owner_lost () {
	hold a posix wr 0 0 "$M1/f" && holding a &&
	hold b posix wr 0 0 "$M2/f" &&
	test_output EAGAIN lk try posix wr 0 1 "$M3/f" &&
	! grep -q locked b &&
	t0=$EPOCHREALTIME &&
	"$@" &&
	holding b &&
	within b "$t0" $LIMIT &&
	test_output EAGAIN lk try posix rd 0 1 "$M3/f" &&
	release b
}

test_expect_success 'the owner peer killed: the waiter has the lock in time' '
	owner_lost peer_kill 1
'

test_expect_success 'p1 comes back' '
	peer_start 1 &&
	peers_wait_all_up 3 &&
	test_output ok lk try posix wr 0 0 "$M1/f"
'

test_expect_success 'the owner peer cut off: the waiter has the lock in time' '
	test_when_finished "peer_link_up 1" &&
	owner_lost peer_link_down 1
'

test_expect_success 'p1 back on the link: its lock is gone, it locks anew' '
	peer_link_up 1 &&
	peers_wait_all_up 3 &&
	touch a.release &&
	wait "$(cat a.pid)" ;
	test_output ok lk try posix wr 0 0 "$M1/f"
'

test_expect_success 'the holder killed: the waiter gets EIO, no hang' '
	hold a posix wr 0 0 "$M1/f" && holding a &&
	hold b posix wr 0 0 "$M2/f" &&
	test_output EAGAIN lk try posix wr 0 1 "$M2/f" &&
	t0=$EPOCHREALTIME &&
	peer_kill 3 &&
	wait_for "grep -q error b" 10 &&
	cat b && grep -q "error .* EIO" b &&
	within b "$t0" $EIO_LIMIT &&
	{ wait "$(cat b.pid)"; test $? = 1; } &&
	touch a.release && wait "$(cat a.pid)"
'

test_expect_success 'the holder back: a re-open finds no ghost lock' '
	peer_start 3 &&
	peers_wait_all_up 3 &&
	wait_for "test -s $M1/f && test -s $M2/f" 10 &&
	test_output ok lk try posix wr 0 0 "$M1/f" &&
	test_output ok lk try posix wr 0 0 "$M2/f" &&
	test_output ok lk try flock wr 0 0 "$M2/f"
'

test_done
