#!/bin/bash
#
# Lock leases: a file only one peer locks has its POSIX locks lent to
# that peer, which then takes and drops them with no round trip (the
# holder serves no lock request meanwhile).  Another peer's lock, the
# holder's own mount's, and a program on the holder's disk that waits
# for a lock, each make the holder recall the lease: the borrower
# sends back what it wrote and the locks it holds, and the request is
# then decided as without a lease (it conflicts, waits, or is granted).
# What was written under a lent lock is what the next peer reads under
# its lock, with the writer's file still open; two peers that add one
# to a number at once, under locks, lose no update.  A borrower killed
# while it holds a lent lock frees it for a waiter elsewhere within
# dead_after + 1 s.  A holder without leases (an older pufs, played
# with PUFS_TEST_CAPS) still serves every lock itself.  p3 holds the
# files; p1 and p2 lock them.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"
. "$T_DIR/lib-locks.sh"

# dead_after + 1 s: the longest a waiter waits for a dead owner's lock.
LIMIT=2

# rmw K FILE N: peer K adds N to FILE, one POSIX lock each (lk.py rmw).
rmw () {
	timeout -k 2 120 "$PYTHON" "$T_DIR/lk.py" rmw "$(peer_mnt "$1")/$2" \
		"$3" posix
}

# within STATE T0 LIMIT: the time in STATE is less than LIMIT after T0.
within () {
	awk -v a="$2" -v b="$(cut -d" " -f2 "$1")" -v l="$3" \
		'BEGIN { printf "%.3f s\n", b - a; exit !(b - a < l) }'
}

# count K FIELD: note peer K's locks.FIELD; grew K FIELD N: it is now
# at least N more; grew_at_most K FIELD N: at most N more.
count () { eval "was_$2=\$(lock_count $1 $2)"; }
grew () {
	local now
	now=$(lock_count "$1" "$2") &&
	eval "test \$((now - was_$2)) -ge $3" ||
		{ echo "locks.$2 of p$1: $now, was $(eval echo \$was_$2)"; false; }
}
grew_at_most () {
	local now
	now=$(lock_count "$1" "$2") &&
	eval "test \$((now - was_$2)) -le $3" ||
		{ echo "locks.$2 of p$1: $now, was $(eval echo \$was_$2)"; false; }
}

test_expect_success 'setup: three peers, p3 holds the files' '
	peers_net_setup 3 &&
	for f in a b c d d2 e n k; do echo 0 >"$E3/$f" || return 1; done &&
	peers_start_all 3 &&
	peers_wait_all_up 3 &&
	test -s "$M1/a" && test -s "$M2/a"
'

test_expect_success 'a lone locker: 300 locks and unlocks, no round trip' '
	count 3 served && count 3 lent && count 1 local && count 1 returned &&
	test_output 300 rmw 1 a 300 &&
	grew_at_most 3 served 2 &&
	grew 3 lent 1 &&
	grew 1 local 599 &&
	grew 1 returned 1 &&
	test_output 300 tr -d " " <"$E3/a"
'

test_expect_success 'another peer recalls the lease: it conflicts, then waits' '
	count 3 recalled &&
	hold a posix wr 0 100 "$M1/b" && holding a &&
	count 3 served &&
	test_output EAGAIN lk try posix wr 0 1 "$M1/b" &&
	test_output ok lk try posix wr 100 10 "$M1/b" &&
	grew_at_most 3 served 0 &&
	test_output EAGAIN lk try posix wr 50 10 "$M2/b" &&
	grew 3 recalled 1 &&
	test_output ok lk try posix wr 100 10 "$M2/b" &&
	test_output "wr 0 100 0" lk getlk rd 10 1 "$M2/b" &&
	hold b posix wr 50 100 "$M2/b" &&
	test_output EAGAIN lk try posix wr 99 1 "$M3/b" &&
	! grep -q locked b &&
	release a && holding b &&
	test_output EAGAIN lk try posix rd 60 1 "$M1/b" &&
	release b &&
	test_output ok lk try posix wr 0 0 "$M1/b"
'

test_expect_success 'waiters under the lease: on the borrower, then elsewhere' '
	hold a posix wr 0 0 "$M1/c" && holding a &&
	hold b posix wr 0 0 "$M1/c" &&
	test_output EAGAIN lk try ofd wr 0 1 "$M1/c" &&
	! grep -q locked b &&
	release a && holding b &&
	hold c posix wr 0 0 "$M2/c" &&
	! grep -q locked c &&
	release b && holding c && release c
'

test_expect_success 'the holder mount and the holder disk recall the lease' '
	count 3 recalled &&
	hold a posix wr 10 10 "$M1/d" && holding a &&
	test_output EAGAIN lk try posix wr 0 0 "$E3/d" &&
	test_output EAGAIN lk try posix wr 15 1 "$M3/d" &&
	grew 3 recalled 1 &&
	test_output ok lk try posix wr 0 10 "$E3/d" &&
	release a &&
	count 3 recalled && count 3 lent &&
	hold a posix wr 10 10 "$M1/d2" && holding a &&
	grew 3 lent 1 &&
	hold b posix wr 0 1 "$E3/d2" && holding b &&
	grew 3 recalled 1 &&
	test_output EAGAIN lk try posix wr 10 1 "$E3/d2" &&
	release b && release a
'

test_expect_success 'what was written under a lent lock is what p2 reads' '
	count 3 lent &&
	bg w put "$M1/e" written-on-p1 && wait_for "grep -q written w" 10 &&
	grew 3 lent 1 &&
	test_output written-on-p1 lk get "$M2/e" &&
	test_output written-on-p1 head -1 "$E3/e" &&
	touch w.release && wait "$(cat w.pid)"
'

test_expect_success 'two peers add to one number at once: no update lost' '
	echo 0 >"$E3/n" &&
	{ rmw 1 n 200 >o1 & } && p1=$! &&
	{ rmw 2 n 200 >o2 & } && p2=$! &&
	wait $p1 && wait $p2 &&
	test_output 400 tr -d " " <"$E3/n"
'

test_expect_success 'the borrower killed with a lent lock: a waiter has it' '
	count 3 lent &&
	hold a posix wr 0 0 "$M1/k" && holding a &&
	grew 3 lent 1 &&
	hold b posix wr 0 0 "$M2/k" &&
	! grep -q locked b &&
	t0=$EPOCHREALTIME &&
	peer_kill 1 &&
	holding b &&
	within b "$t0" $LIMIT &&
	test_output EAGAIN lk try posix rd 0 1 "$M3/k" &&
	release b
'

test_expect_success 'a holder without leases serves every lock, as before' '
	peer_stop 3 &&
	PUFS_TEST_CAPS=0x7f peer_start 3 &&
	peer_start 1 &&
	peers_wait_all_up 3 &&
	count 3 served && count 3 lent &&
	test_output 50 rmw 1 b 50 &&
	grew 3 served 100 &&
	grew_at_most 3 lent 0
'

test_done
