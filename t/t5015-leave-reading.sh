#!/bin/bash
#
# Leaving while the kernel waits on us: two peers, a large file on p2
# being read through p1's mount, then SIGTERM to both at once.  Both must
# exit 0 within the stop deadline and leave no mount behind, although
# p1's invalidations (p2 is leaving) wait for page locks that only
# answers to the pending READs release.  Three times over.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"
test_require dd

# bytes_read PID: what process PID has read so far.
bytes_read () {
	awk '/^rchar:/ { print $2 }' "/proc/$1/io" 2>/dev/null || echo 0
}

test_expect_success 'setup: two peers, a 256 MiB file on p2' '
	peers_net_setup 2 &&
	mkdir -p "$E2" &&
	dd if=/dev/urandom of="$E2/big" bs=1M count=16 status=none &&
	for i in $(seq 15); do
		cat "$E2/big" || exit 1
	done >"$E2/big.tmp" && cat "$E2/big" >>"$E2/big.tmp" &&
	mv "$E2/big.tmp" "$E2/big" &&
	test "$(stat -c %s "$E2/big")" = $((256 << 20))
'

for round in 1 2 3; do
	test_expect_success "round $round: SIGTERM to both during a cold read" '
		peer_start 1 && peer_start 2 && peers_wait_all_up 2 &&
		echo 3 >/proc/sys/vm/drop_caches &&
		{ dd if="$M1/big" of=/dev/null bs=1M 2>"$TRASH/dd.err" &
		  echo $! >"$TRASH/dd.pid"; } &&
		test_when_finished "kill \$(cat \"$TRASH/dd.pid\") 2>/dev/null; true" &&
		wait_for "test \$(bytes_read \$(cat \"$TRASH/dd.pid\")) -gt $((16 << 20))" 10 &&
		pufs_signal p1 TERM && pufs_signal p2 TERM &&
		rc1=$(pufs_wait_exit p1 15) && rc2=$(pufs_wait_exit p2 15) &&
		mv "$_LIB/d.p1.pid" "$_LIB/d.p1.stopped" &&
		mv "$_LIB/d.p2.pid" "$_LIB/d.p2.stopped" &&
		test "$rc1" = 0 && test "$rc2" = 0 &&
		! is_mounted "$M1" && ! is_mounted "$M2" &&
		{ wait "$(cat "$TRASH/dd.pid")"; true; }
	'
done

test_done
