#!/bin/bash
#
# A name made by one peer in a directory of another, looked up on a
# third before the holder's trap about it has come.  p3 lists p2's
# directory d and keeps the listing (attr_timeout = 60), so a name it
# does not list is taken for absent without asking p2.  Once another
# peer has changed d's names (a trap said so), d is hot on p3 for two
# trap delays and a second: a name the listing lacks is asked of p2,
# so a file p1 has just made and closed there opens on p3 although
# p2's trap about it is still held (p2's trap_delay is 30 s of its own
# clock, released by moving it).  The name found so makes the listing's
# names stale.  Outside the hot window, and in directories only p3
# changes, misses stay local (p3's STAT calls are counted, after a stat
# of the directories themselves, whose attributes the kernel may ask
# again on the way).

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"

# stats K: STAT calls peer K has sent.
stats () {
	peer_status "$1" | "$PYTHON" -c '
import json, sys
print(json.load(sys.stdin)["ops"].get("stat", 0))'
}

# stats_since K FILE: STAT calls of peer K since stats wrote FILE.
stats_since () {
	local s0 s1
	read -r s0 <"$2" && s1=$(stats "$1") && echo $((s1 - s0))
}

# flush_p2: p2 sends the traps it holds; wait until p3 has them.
flush_p2 () {
	peer_flush_traps 2 3
}

OPTS=cache.attr_timeout=60,peer.dead_after=120

test_expect_success 'setup: p1, p2 holding d and q, p3 watching' '
	peers_net_setup 3 &&
	mkdir -p "$E2/d" "$E2/q" &&
	echo a >"$E2/d/a" &&
	echo q >"$E2/q/q" &&
	peer_start 1 -o "$OPTS" &&
	peer_start 2 -o "$OPTS,cache.trap_delay=30" &&
	peer_start 3 -o "$OPTS,cache.trap_delay=5" &&
	peers_wait_all_up 3
'

test_expect_success 'a quiet directory: a miss on p3 asks nobody' '
	ls "$M3/d" "$M3/q" >/dev/null &&
	stat "$M3/d" "$M3/q" >/dev/null &&
	stats 3 >s0 &&
	test_path_is_missing "$M3/d/none" &&
	test_path_is_missing "$M3/q/none" &&
	test_output 0 stats_since 3 s0
'

test_expect_success 'p1 makes a name in d, its trap reaches p3: d is hot' '
	echo b >"$M1/d/b" &&
	flush_p2 &&
	test_output b cat "$M3/d/b" &&
	ls "$M3/d" >names &&
	grep -qx b names
'

test_expect_success 'a file p1 made in hot d opens on p3 before the trap' '
	echo c >"$M1/d/c" &&
	test_output c cat "$E2/d/c" &&
	test_output c cat "$M3/d/c" &&
	ls "$M3/d" >names &&
	grep -qx c names
'

test_expect_success 'a miss in hot d asks p2, one in quiet q does not' '
	stat "$M3/d" "$M3/q" >/dev/null &&
	stats 3 >s0 &&
	test_path_is_missing "$M3/d/none2" &&
	test "$(stats_since 3 s0)" -ge 1 &&
	stats 3 >s0 &&
	test_path_is_missing "$M3/q/none2" &&
	test_output 0 stats_since 3 s0
'

test_expect_success 'p3 made the change itself: d stays quiet for it' '
	peer_advance 3 12000 &&
	ls "$M3/d" >/dev/null &&
	echo e >"$M3/d/e" &&
	test_output e cat "$E2/d/e" &&
	stat "$M3/d" >/dev/null &&
	stats 3 >s0 &&
	test_path_is_missing "$M3/d/none3" &&
	test_output 0 stats_since 3 s0
'

test_done
