#!/bin/bash
#
# Locks hold across the union: fcntl(2) and flock(2) locks taken on one
# peer's mount exclude those of other peers (and of other processes of
# the same peer, and of programs on the holder itself) on the file's
# holder.  p3 holds the files; p1 and p2 lock them.  Byte ranges that
# overlap exclude each other and the waiter goes on once the holder of
# the lock unlocks; ranges that do not overlap both succeed; a read lock
# keeps a write lock out but lets other read locks in; F_GETLK tells the
# conflicting lock (pid 0: another peer's); flock LOCK_EX excludes and
# LOCK_NB answers EWOULDBLOCK; a close drops a process's locks; many
# waiters of one peer neither stop its stream nor get lost.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"
. "$T_DIR/lib-locks.sh"

# first A B: the time in A's state file is before the one in B's.
first () {
	awk -v a="$(cut -d" " -f2 "$1")" -v b="$(cut -d" " -f2 "$2")" \
		'BEGIN { exit !(a <= b) }'
}

test_expect_success 'setup: three peers, p3 holds the files' '
	peers_net_setup 3 &&
	head -c 4096 /dev/zero >"$E3/f" &&
	: >"$E3/g" &&
	peers_start_all 3 &&
	peers_wait_all_up 3 &&
	test -s "$M1/f" && test -s "$M2/f"
'

test_expect_success 'overlapping write locks: the second waits for the first' '
	hold a posix wr 0 100 "$M1/f" && holding a &&
	test_output EAGAIN lk try posix wr 50 100 "$M2/f" &&
	hold b posix wr 50 100 "$M2/f" &&
	test_output EAGAIN lk try posix rd 99 1 "$M2/f" &&
	! grep -q locked b &&
	release a && holding b &&
	first a b &&
	release b
'

test_expect_success 'ranges that do not overlap both succeed' '
	hold a posix wr 0 100 "$M1/f" && holding a &&
	test_output ok lk try posix wr 100 100 "$M2/f" &&
	test_output ok lk try posix wr 1000 0 "$M2/f" &&
	test_output EAGAIN lk try posix wr 99 2 "$M2/f" &&
	release a
'

test_expect_success 'a read lock keeps a write lock out, not a read lock' '
	hold a posix rd 0 0 "$M1/f" && holding a &&
	test_output EAGAIN lk try posix wr 4000 1 "$M2/f" &&
	test_output ok lk try posix rd 0 0 "$M2/f" &&
	hold b posix wr 0 10 "$M2/f" &&
	release a && holding b && first a b &&
	release b
'

test_expect_success 'F_GETLK names the lock of another peer, pid 0' '
	hold a posix wr 10 90 "$M1/f" && holding a &&
	test_output "wr 10 90 0" lk getlk rd 0 0 "$M2/f" &&
	test_output "un 0 10 0" lk getlk wr 0 10 "$M2/f" &&
	release a &&
	test_output "un 0 0 0" lk getlk wr 0 0 "$M2/f"
'

test_expect_success 'processes of one peer, and the holder, exclude each other' '
	hold a posix wr 0 1 "$M1/f" && holding a &&
	test_output EAGAIN lk try posix wr 0 1 "$M1/f" &&
	test_output EAGAIN lk try posix wr 0 1 "$M3/f" &&
	test_output EAGAIN lk try posix wr 0 1 "$E3/f" &&
	test_output EAGAIN lk try ofd wr 0 1 "$M2/f" &&
	release a &&
	hold a posix wr 0 1 "$E3/f" && holding a &&
	test_output EAGAIN lk try posix wr 0 1 "$M1/f" &&
	hold b posix wr 0 1 "$M2/f" &&
	release a && holding b && release b
'

test_expect_success 'an upgrade from read to write, and a split by unlock' '
	cat >up.py <<-\EOF &&
	import fcntl, os, sys
	fd = os.open(sys.argv[1], os.O_RDWR)
	fcntl.lockf(fd, fcntl.LOCK_SH, 100, 0)
	fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 100, 0)
	fcntl.lockf(fd, fcntl.LOCK_UN, 10, 40)
	print("ok")
	sys.stdout.flush()
	sys.stdin.read()
	EOF
	mkfifo in &&
	{ "$PYTHON" up.py "$M1/f" <in >up.out & } &&
	exec 9>in &&
	wait_for "grep -q ok up.out" 10 &&
	test_output EAGAIN lk try posix rd 0 10 "$M2/f" &&
	test_output ok lk try posix wr 40 10 "$M2/f" &&
	test_output EAGAIN lk try posix rd 50 1 "$M2/f" &&
	exec 9>&- &&
	wait &&
	test_output ok lk try posix wr 0 100 "$M2/f"
'

test_expect_success 'a close drops the process locks, whichever fd' '
	cat >cl.py <<-\EOF &&
	import fcntl, os, sys
	a = os.open(sys.argv[1], os.O_RDWR)
	b = os.open(sys.argv[1], os.O_RDONLY)
	fcntl.lockf(a, fcntl.LOCK_EX, 0, 0)
	os.close(b)
	print("closed")
	sys.stdout.flush()
	sys.stdin.read()
	EOF
	mkfifo in2 &&
	{ "$PYTHON" cl.py "$M1/f" <in2 >cl.out & } &&
	exec 9>in2 &&
	wait_for "grep -q closed cl.out" 10 &&
	test_output ok lk try posix wr 0 0 "$M2/f" &&
	exec 9>&- &&
	wait
'

test_expect_success 'flock LOCK_EX excludes across peers, LOCK_NB: EWOULDBLOCK' '
	hold a flock wr 0 0 "$M1/g" && holding a &&
	test_output EAGAIN lk try flock wr 0 0 "$M2/g" &&
	test_output EAGAIN lk try flock rd 0 0 "$M2/g" &&
	test_output EAGAIN lk try flock wr 0 0 "$M1/g" &&
	test_output ok lk try posix wr 0 0 "$M2/g" &&
	hold b flock wr 0 0 "$M2/g" &&
	! grep -q locked b &&
	release a && holding b && first a b &&
	release b &&
	hold a flock rd 0 0 "$M1/g" && holding a &&
	test_output ok lk try flock rd 0 0 "$M2/g" &&
	release a
'

test_expect_success '300 waiters of one peer: its stream still answers' '
	hold a posix wr 0 0 "$M1/f" && holding a &&
	rm -f many &&
	{ timeout -k 2 120 "$PYTHON" "$T_DIR/lk.py" many 300 "$M2/f" many & } &&
	mpid=$! &&
	wait_for "grep -q waiting many" 20 &&
	test_output EAGAIN lk try posix wr 0 1 "$M2/f" &&
	test_output "wr 0 0 0" lk getlk wr 0 0 "$M2/f" &&
	ls "$M2" >/dev/null &&
	release a &&
	wait_for "grep -q done many" 60 &&
	test_output "done 300" cat many &&
	wait $mpid
'

test_expect_success 'no lock is left on the holder' '
	test_output ok lk try posix wr 0 0 "$E3/f" &&
	test_output ok lk try flock wr 0 0 "$E3/g"
'

test_done
