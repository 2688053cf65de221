#!/bin/bash
#
# Location requests: with multicast, a name not in any cache is located
# with one LOCATE datagram and the holders' LOCATED answers, not one call
# per holder; when answers are lost, the silent peers are asked over
# their streams after a short window, and the result is the same.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"

peers_multicast 34 7600

# loc K FIELD: a counter of peer K's location requests.
loc () {
	peer_status "$1" | "$PYTHON" -c \
	    "import json,sys; print(json.load(sys.stdin)['locate']['$2'])"
}

test_expect_success 'setup: a directory merged on three peers' '
	peers_net_setup 3 &&
	for k in 1 2 3; do
		mkdir -p "$(peer_export $k)/m" &&
		echo "x$k" >"$(peer_export $k)/m/x$k" &&
		echo "same$k" >"$(peer_export $k)/m/same" || exit 1
	done &&
	for k in 1 2 3; do peer_start $k -o "$MC" || exit 1; done &&
	peers_wait_all_up 3 &&
	M1=$(peer_mnt 1)
'

# A loaded machine (the sanitizers, other tests) can delay an answer past
# the window once; a round with new names is then tried, three at most.
test_expect_success 'a lookup asks the group once, every holder answers' '
	sent0=$(loc 1 sent) && answers0=$(loc 1 answers) &&
	test_output x2 cat "$M1/m/x2" &&
	test_output x3 cat "$M1/m/x3" &&
	test $(($(loc 1 sent) - sent0)) -ge 1 &&
	test $(($(loc 1 answers) - answers0)) -ge 2 &&
	test $(loc 2 served) -ge 1 && test $(loc 3 served) -ge 1 &&
	round=0 && fb=$(loc 1 fallbacks) &&
	while [ "$fb" != 0 ] && [ $round -lt 3 ]; do
		round=$((round + 1)) &&
		echo "r$round" >"$(peer_export 2)/m/r2-$round" &&
		echo "r$round" >"$(peer_export 3)/m/r3-$round" &&
		fb0=$(loc 1 fallbacks) &&
		test_output "r$round" cat "$M1/m/r2-$round" &&
		test_output "r$round" cat "$M1/m/r3-$round" &&
		fb=$(($(loc 1 fallbacks) - fb0)) || exit 1
		echo "round $round: $fb fallbacks"
	done &&
	test "$fb" = 0
'

test_expect_success 'answers make the same union: clash names, misses' '
	test_output same2 cat "$M1/m/same@$(peer_uri 2)" &&
	test_output same3 cat "$M1/m/same@$(peer_uri 3)" &&
	test_path_is_missing "$M1/m/same" &&
	test_path_is_missing "$M1/m/nowhere"
'

test_expect_success 'lost answers: silent peers are asked over TCP' '
	in_peer 1 nft add table inet pufsloc &&
	in_peer 1 nft add chain inet pufsloc input \
	    "{ type filter hook input priority 0; }" &&
	in_peer 1 nft add rule inet pufsloc input udp dport $MPORT drop &&
	test_when_finished "in_peer 1 nft delete table inet pufsloc" &&
	for k in 2 3; do
		echo "late$k" >"$(peer_export $k)/m/late$k" || exit 1
	done &&
	test_output late2 cat "$M1/m/late2" &&
	test_output late3 cat "$M1/m/late3" &&
	test $(loc 1 fallbacks) -ge 2
'

test_expect_success 'cleanup: stop all' '
	for k in 1 2 3; do peer_stop $k || exit 1; done
'

test_done
