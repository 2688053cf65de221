#!/bin/bash
#
# Incremental directory refresh and the global clock.  Peers with clocks
# skewed by several seconds estimate their offset against the peer with
# the longest uptime; an expired listing is refreshed by asking the
# holder only for what changed since its checkpoint, and never misses a
# change (made through pufs or directly on disk); when the holder cannot
# be sure (it restarted), it answers in full.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"

peers_multicast 33 7500
MC="$MC,cache.attr_timeout=0.3"

# json K EXPR: a value from peer K's status (EXPR indexes s).
json () {
	peer_status "$1" | "$PYTHON" -c "import json,sys; s=json.load(sys.stdin); print($2)"
}

# expect_listing K: peer K's mount lists big/ exactly as p1's disk does.
expect_listing () {
	ls "$(peer_export 1)/big" >want &&
	ls "$(peer_mnt "$1")/big" >got &&
	test_cmp want got
}

test_expect_success 'setup: p1 first, then p2 (+5 s) and p3 (-3.5 s)' '
	peers_net_setup 3 &&
	mkdir -p "$(peer_export 1)/big" &&
	"$PYTHON" -c "
import os, sys
for i in range(2000):
    open(os.path.join(sys.argv[1], \"f%04d\" % i), \"w\").close()
" "$(peer_export 1)/big" &&
	peer_start 1 -o "$MC" &&
	wait_for "test \$(json 1 \"int(s[\\\"uptime\\\"])\") -ge 2" 5 &&
	peer_start 2 -o "$MC,debug.clock_skew=5" &&
	peer_start 3 -o "$MC,debug.clock_skew=-3.5" &&
	peers_wait_all_up 3
'

test_expect_success 'skewed peers estimate their offset against p1' '
	wait_for "test \$(json 2 \"s[\\\"clock\\\"][\\\"reference\\\"]\") = p1" 5 &&
	wait_for "test \$(json 3 \"s[\\\"clock\\\"][\\\"reference\\\"]\") = p1" 5 &&
	for k in 2 3; do json $k "s[\"clock\"]"; done &&
	json 2 "abs(s[\"clock\"][\"offset\"] + 5) < 0.1 and s[\"clock\"][\"error\"] < 0.05" >ok2 &&
	json 3 "abs(s[\"clock\"][\"offset\"] - 3.5) < 0.1 and s[\"clock\"][\"error\"] < 0.05" >ok3 &&
	test_output True cat ok2 && test_output True cat ok3 &&
	test_output "0.0" json 1 "s[\"clock\"][\"offset\"]"
'

test_expect_success 'first listings are whole' '
	expect_listing 2 && expect_listing 3 &&
	test $(json 1 "s[\"listings\"][\"full\"]") -ge 2
'

test_expect_success 'after expiry, changes come as deltas and nothing is missed' '
	full0=$(json 1 "s[\"listings\"][\"full\"]") &&
	delta0=$(json 1 "s[\"listings\"][\"delta\"]") &&
	for round in 1 2 3; do
		echo new >"$(peer_mnt 1)/big/pufs$round" &&
		echo disk >"$(peer_export 1)/big/disk$round" &&
		rm "$(peer_export 1)/big/f000$round" &&
		rm "$(peer_mnt 3)/big/f001$round" &&
		mv "$(peer_export 1)/big/f002$round" \
		    "$(peer_export 1)/big/moved$round" &&
		peer_advance 2 400 && peer_advance 3 400 &&
		wait_for "expect_listing 2 && expect_listing 3" 5 || exit 1
	done &&
	full1=$(json 1 "s[\"listings\"][\"full\"]") &&
	delta1=$(json 1 "s[\"listings\"][\"delta\"]") &&
	echo "listings served by p1: $((full1 - full0)) whole, $((delta1 - delta0)) deltas" &&
	test $((delta1 - delta0)) -ge 4 &&
	test $((full1 - full0)) -le 1
'

test_expect_success 'a restarted holder answers in full, still exact' '
	peer_stop 1 &&
	peer_start 1 -o "$MC" &&
	peers_wait_all_up 3 &&
	peer_advance 2 400 && peer_advance 3 400 &&
	expect_listing 2 && expect_listing 3 &&
	test $(json 1 "s[\"listings\"][\"full\"]") -ge 2
'

test_expect_success 'cache figures are reported' '
	json 2 "s[\"cache\"]" &&
	test $(json 2 "s[\"cache\"][\"entries\"]") -ge 1 &&
	test $(json 2 "s[\"cache\"][\"bytes\"]") -gt 0
'

test_expect_success 'cleanup: stop all' '
	for k in 1 2 3; do peer_stop $k || exit 1; done
'

test_done
