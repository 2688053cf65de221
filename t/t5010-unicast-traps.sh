#!/bin/bash
#
# Traps without multicast: in unicast mode the same change notices go to
# each live peer's address, so with attr_timeout = 60 a change made on
# one peer (through pufs or on disk) is seen on the others at once, and
# a lost datagram is noticed at the next heartbeat.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"

LONG="cache.attr_timeout=60"

# traps K FIELD: a trap counter of peer K.
traps () {
	peer_status "$1" | "$PYTHON" -c \
	    "import json,sys; print(json.load(sys.stdin)['traps']['$2'])"
}

# drop_udp K TABLE: peer K drops every datagram to the pufs port, and
# counts those from p1.
drop_udp () {
	in_peer "$1" nft add table inet "$2" &&
	in_peer "$1" nft add chain inet "$2" input \
	    "{ type filter hook input priority 0; }" &&
	in_peer "$1" nft add rule inet "$2" input \
	    ip saddr "$(peer_addr 1)" udp dport 7070 counter drop &&
	in_peer "$1" nft add rule inet "$2" input udp dport 7070 drop
}

# dropped_from_1 K TABLE: how many datagrams from p1 peer K dropped.
dropped_from_1 () {
	in_peer "$1" nft list chain inet "$2" input |
	sed -n "s/.*counter packets \([0-9]*\) .*/\1/p"
}

# lost_by_2 TABLE COMMANDS: run COMMANDS on p1 while p2 drops its
# datagrams, and wait until the trap they cause has been dropped: p1 sent
# it, and a later datagram of p1 was dropped too, so it is not in flight.
lost_by_2 () {
	local sent0 n0
	sent0=$(traps 1 sent) &&
	eval "$2" &&
	wait_for "test \$(traps 1 sent) -gt $sent0" 3 &&
	n0=$(dropped_from_1 2 "$1") &&
	wait_for "test \$(dropped_from_1 2 $1) -gt $n0" 3
}

test_expect_success 'setup: three peers by address, attr_timeout 60' '
	peers_net_setup 3 &&
	mkdir -p "$(peer_export 1)/d" &&
	echo v1 >"$(peer_export 1)/d/f" &&
	peers_start_all 3 -o "$LONG" &&
	peers_wait_all_up 3 &&
	M1=$(peer_mnt 1) M2=$(peer_mnt 2) M3=$(peer_mnt 3) &&
	test_output v1 cat "$M2/d/f" && test_output v1 cat "$M3/d/f" &&
	ls "$M2/d" "$M3/d" >/dev/null
'

test_expect_success 'creates, removes, chmods and writes are seen at once' '
	echo new >"$M1/d/g" &&
	wait_for "test_output new cat $M2/d/g" 2 &&
	chmod 600 "$M1/d/f" &&
	wait_for "test_output 600 stat -c %a $M3/d/f" 2 &&
	echo v22 >"$M1/d/f" &&
	wait_for "test_output 4 stat -c %s $M2/d/f" 2 &&
	rm "$M1/d/g" &&
	wait_for "! test -e $M2/d/g && ! test -e $M3/d/g" 2 &&
	test $(traps 1 sent) -ge 1 && test $(traps 2 received) -ge 1
'

test_expect_success 'a change on disk is seen at once too' '
	echo disk >"$(peer_export 1)/d/ondisk" &&
	wait_for "test_output disk cat $M3/d/ondisk" 2 &&
	rm "$(peer_export 1)/d/ondisk" &&
	wait_for "! test -e $M3/d/ondisk" 2
'

test_expect_success 'a lost trap is noticed at the next heartbeat' '
	drop_udp 2 pufsu &&
	stat "$M2/d/f" >/dev/null &&
	gaps0=$(traps 2 gaps) &&
	lost_by_2 pufsu "echo lost >\"\$M1/d/f\"" &&
	in_peer 2 nft delete table inet pufsu &&
	wait_for "test \$(traps 2 gaps) -gt $gaps0" 3 &&
	test_output lost cat "$M2/d/f"
'

test_expect_success 'a working directory survives traps and resyncs' '
	# wd is held by p1; p2 works in it while p1s traps to it are lost.
	mkdir "$M3/d/wd" &&
	wait_for "test -d $M2/d/wd" 2 &&
	( cd "$M2/d/wd" &&
	  gaps0=$(traps 2 gaps) &&
	  drop_udp 2 pufsw &&
	  lost_by_2 pufsw "touch \"\$M1/d/wd/t1\" && touch \"\$M1/d/wd\"" &&
	  in_peer 2 nft delete table inet pufsw &&
	  wait_for "test \$(traps 2 gaps) -gt $gaps0" 3 &&
	  for i in $(seq 10); do	# invalidations are asynchronous
		test "$("$PYTHON" -c "import os; print(os.getcwd())")" = \
		    "$M2/d/wd" || exit 1
		sleep 0.1
	  done &&
	  test -e t1 && echo here >t2 ) &&
	test_output here cat "$(peer_export 1)/d/wd/t2"
'

test_expect_success 'cleanup: stop all' '
	for k in 1 2 3; do peer_stop $k || exit 1; done
'

test_done
