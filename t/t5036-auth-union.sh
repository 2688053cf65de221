#!/bin/bash
#
# Authenticated datagrams: peers with the same key file find each other
# over multicast and hear each other's ANNOUNCE, HEARTBEAT and TRAP
# datagrams, each carrying a serial and a MAC (40 bytes more than
# without a key); a peer with another key hears nothing of them and
# they nothing of it, so none dials the other; a datagram without a MAC
# (a peer with no key) is dropped by both.  A peer with the key whose
# clock is 30 s off joins all the same (its ANNOUNCE passes the wider
# first-contact window), and its TRAPs pass once it has the union's
# time.  In unicast mode too, the TRAPs of peers with the key pass.
# p1 and p2 share a key, p3 has another, p4 runs no daemon and captures
# and sends datagrams (t/lib-dgram.sh).

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"

peers_multicast 36 7500
MC="$MC,cache.trap_delay=0.1"
. "$T_DIR/lib-dgram.sh"

# disc K KEY: peer K's status discovery figure KEY.
disc () {
	sect "$1" discovery "$2"
}

# traps_received K: TRAP datagrams peer K took.
traps_received () {
	sect "$1" traps received
}

test_expect_success 'setup: p1 and p2 with one key, p3 with another; p4 listens' '
	peers_net_setup 4 &&
	"$PUFS" keygen "$TRASH/k12" &&
	"$PUFS" keygen "$TRASH/k3" &&
	echo from p1 >"$E1/f1" &&
	echo from p2 >"$E2/f2" &&
	echo from p3 >"$E3/f3" &&
	capture_start &&
	peer_start 1 -o "$MC,security.key_file=$TRASH/k12" &&
	peer_start 2 -o "$MC,security.key_file=$TRASH/k12" &&
	peer_start 3 -o "$MC,security.key_file=$TRASH/k3"
'

test_expect_success 'p1 and p2 find each other and form the union' '
	wait_for "peer_states 1 | grep -qx \"p2 up\"" 10 &&
	wait_for "peer_states 2 | grep -qx \"p1 up\"" 10 &&
	test_output "from p2" cat "$M1/f2" &&
	test_output "from p1" cat "$M2/f1" &&
	test "$(disc 1 auth)" = True &&
	grep -q "datagrams: HMAC-SHA256 with the key of $TRASH/k12" "$(peer_log 1)" &&
	test "$(disc 1 dropped_replay)" = 0 &&
	test "$(disc 1 dropped_window)" = 0 &&
	test "$(disc 2 dropped_replay)" = 0 &&
	test "$(disc 2 dropped_window)" = 0
'

test_expect_success 'p3 (another key) and p1, p2 drop each other, none dials' '
	wait_for "test \$(disc 3 dropped_mac) -ge 6" 10 &&
	wait_for "test \$(disc 1 dropped_mac) -ge 3" 10 &&
	test "$(disc 3 received)" = 0 &&
	! peer_states 3 | grep -q "^p[12] " &&
	! peer_states 1 | grep -q "^p3 " &&
	! peer_states 2 | grep -q "^p3 " &&
	! grep "found peer p3" "$(peer_log 1)" "$(peer_log 2)" &&
	! grep "found peer p[12]" "$(peer_log 3)" &&
	grep -q "multicast: datagram from .*: bad MAC; dropped" "$(peer_log 3)" &&
	test_path_is_missing "$M3/f1" &&
	test_path_is_missing "$M1/f3"
'

test_expect_success 'a TRAP of p2 reaches p1 and is taken' '
	cat "$M1/f2" >/dev/null &&
	n=$(traps_received 1) &&
	echo changed >"$M2/f2" &&
	wait_for "test \$(traps_received 1) -gt $n" 10 &&
	test_output changed cat "$M1/f2"
'

test_expect_success 'on the wire: every datagram of p1 has the MAC flag and 40 bytes more' '
	wait_for "ls $CAP | grep -q \"\\.heartbeat\\.p1\$\"" 5 &&
	wait_for "ls $CAP | grep -q \"\\.trap\\.p2\$\"" 5 &&
	for f in "$CAP"/*.p1 "$CAP"/*.p2; do
		set -- $("$PYTHON" "$DGRAM" info "$f") &&
		test "$6" = 1 || { echo "$f: $*"; exit 1; }
	done &&
	f=$(ls "$CAP"/*.heartbeat.p1 | tail -n 1) &&
	set -- $("$PYTHON" "$DGRAM" info "$f") &&
	plain=$((32 + 3 + 2 + 3 + ${#U1} + 8)) &&
	echo "HEARTBEAT of p1: $5 bytes, $plain without a key" >"$TRASH/fig" &&
	test "$5" = $((plain + 40))
'
sed "s/^/# /" "$TRASH/fig" 2>/dev/null

test_expect_success 'a datagram without a MAC (a peer without key) is dropped' '
	n=$(disc 1 dropped_mac) &&
	on4 forge - announce p9 "$(peer_addr 4):7070" 0x99 1 &&
	on4 forge - heartbeat p9 "$(peer_addr 4):7070" 0x99 1 &&
	wait_for "test \$(disc 1 dropped_mac) -ge $((n + 2))" 5 &&
	! grep "found peer p9" "$(peer_log 1)" "$(peer_log 2)" &&
	! peer_states 1 | grep -q "^p9 "
'

test_expect_success 'status tells the counters, as text too' '
	timeout 10 "$PUFS" status -s "$(peer_sock 1)" >st.txt &&
	grep "^auth: *datagrams with MAC; dropped [0-9]* bad MAC, 0 replayed, 0 outside the window" st.txt
'

test_expect_success 'p3 with the key and a clock 30 s off joins by the first-contact window' '
	peer_stop 3 &&
	f=$(disc 1 first_contact) &&
	peer_start 3 -o "$MC,security.key_file=$TRASH/k12,debug.clock_skew=30" &&
	wait_for "peer_states 1 | grep -qx \"p3 up\"" 10 &&
	wait_for "peer_states 3 | grep -qx \"p1 up\"" 10 &&
	test "$(disc 1 first_contact)" -gt "$f" &&
	wait_for "peer_status 3 | \"$PYTHON\" -c \"import json, sys; sys.exit(abs(json.load(sys.stdin)[\\\"clock\\\"][\\\"offset\\\"] + 30) > 1)\"" 10 &&
	cat "$M1/f3" >/dev/null &&
	n=$(traps_received 1) &&
	echo skewed >"$M3/f3" &&
	wait_for "test \$(traps_received 1) -gt $n" 10 &&
	test_output skewed cat "$M1/f3"
'

test_expect_success 'unicast: p1 and p2 with the key take each other'"'"'s TRAPs' '
	peer_stop 1 && peer_stop 2 && peer_stop 3 &&
	peer_start 1 -o "cache.trap_delay=0.1,security.key_file=$TRASH/k12" &&
	peer_start 2 -o "cache.trap_delay=0.1,security.key_file=$TRASH/k12" &&
	wait_for "peer_states 1 | grep -qx \"p2 up\"" 10 &&
	wait_for "peer_states 2 | grep -qx \"p1 up\"" 10 &&
	cat "$M1/f2" >/dev/null &&
	n=$(traps_received 1) &&
	echo unicast >"$M2/f2" &&
	wait_for "test \$(traps_received 1) -gt $n" 10 &&
	test_output unicast cat "$M1/f2" &&
	test "$(disc 1 mode)" = unicast &&
	test "$(disc 1 auth)" = True &&
	test "$(disc 1 dropped_mac)" = 0 &&
	test "$(disc 1 dropped_replay)" = 0 &&
	test "$(disc 1 dropped_window)" = 0
'

test_expect_success 'cleanup: the capture stops' '
	kill "$(cat "$CAP/.pid")"
'

test_done
