#!/bin/bash
#
# Stopping: SIGTERM and SIGINT unmount and exit 0, leaving no daemon,
# even with the mount busy or a write in flight, and dirty data reaches
# the export; a second daemon on the same control socket is refused
# without disturbing the first; a socket left by a killed daemon does not
# block a restart.

. "$(dirname "$0")/lib.sh"

E=$TRASH/export
M=$TRASH/mnt

test_expect_success 'setup' '
	mkdir -p "$E/sub" "$M" &&
	echo hello >"$E/hello"
'

test_expect_success 'SIGTERM: exit 0, unmounted, no daemon left' '
	pufs_start term "$M" -e "$E" &&
	pid=$(pufs_pid term) &&
	test_output hello cat "$M/hello" &&
	pufs_stop term TERM &&
	! kill -0 "$pid" 2>/dev/null &&
	! is_mounted "$M" &&
	test_path_is_missing "$M/hello"
'

test_expect_success 'SIGINT: exit 0, unmounted, no daemon left' '
	pufs_start int "$M" -e "$E" &&
	pid=$(pufs_pid int) &&
	test_output hello cat "$M/hello" &&
	pufs_stop int INT &&
	! kill -0 "$pid" 2>/dev/null &&
	! is_mounted "$M"
'

test_expect_success 'SIGTERM with the mount busy: still exit 0 and unmounted' '
	pufs_start busy "$M" -e "$E" &&
	(
		cd "$M/sub" &&
		exec 3>"$M/held" 4<"$M/hello" &&
		echo written-before-stop >&3 &&
		pufs_stop busy TERM &&
		! is_mounted "$M"
	) &&
	test_output written-before-stop cat "$E/held"
'

test_expect_success 'SIGTERM during a large write: exit 0, no hang' '
	pufs_start inflight "$M" -e "$E" &&
	test_when_finished "rm -f \"$E/big\"" &&
	(timeout 60 dd if=/dev/zero of="$M/big" bs=1M count=2000 2>dd.err; echo $? >dd.rc) &
	wait_for "test -s \"$E/big\"" 10 &&
	pufs_stop inflight TERM &&
	wait_for "test -e dd.rc" 20 &&
	cat dd.rc dd.err &&
	test "$(cat dd.rc)" != 124 &&
	! is_mounted "$M"
'

test_expect_success 'a second daemon on the same control socket is refused' '
	mkdir -p "$TRASH/m2" "$TRASH/e2" &&
	pufs_start first "$M" -e "$E" &&
	pufs_try 0 status -s "$(pufs_sock first)" &&
	{ timeout -k 5 20 "$PUFS" mount -o "$(pufs_opts second)" \
		-o "peer.control_socket=$(pufs_sock first)" \
		-e "$TRASH/e2" "$TRASH/m2" >out 2>err </dev/null; rc=$?; } &&
	cat err &&
	{ test $rc = 1 || test $rc = 2; } &&
	grep -i "$(pufs_sock first)\|socket\|running" err &&
	! is_mounted "$TRASH/m2"
'

test_expect_success 'the first daemon was not disturbed' '
	is_mounted "$M" &&
	kill -0 "$(pufs_pid first)" &&
	test_output hello cat "$M/hello" &&
	echo still >"$M/still" && test_output still cat "$E/still" &&
	test -S "$(pufs_sock first)" &&
	pufs_try 0 status -s "$(pufs_sock first)" &&
	grep first out &&
	pufs_stop first
'

test_expect_success 'a socket left by a killed daemon does not block a restart' '
	pufs_start killed "$M" -e "$E" &&
	pufs_signal killed KILL &&
	rc=$(pufs_wait_exit killed) &&
	test "$rc" = 137 &&
	mv "$TRASH/.lib/d.killed.pid" "$TRASH/.lib/d.killed.stopped" &&
	test -e "$(pufs_sock killed)" &&
	{ fusermount3 -u -z "$M" || umount -l "$M"; } &&
	! is_mounted "$M" &&
	cp "$TRASH/.lib/port.killed" "$TRASH/.lib/port.restarted" &&
	pufs_start restarted "$M" -e "$E" \
		-o "peer.control_socket=$(pufs_sock killed)" &&
	pufs_try 0 status -s "$(pufs_sock killed)" &&
	grep restarted out &&
	pufs_stop restarted
'

test_expect_success 'no pufs process of this script is left' '
	for f in "$TRASH"/.lib/d.*.stopped; do
		pid=$(cat "$f") &&
		! kill -0 "$pid" 2>/dev/null || return 1
	done
'

test_done
