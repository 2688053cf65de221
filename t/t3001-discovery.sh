#!/bin/bash
#
# Multicast discovery: peers that know no address find each other on the
# multicast group (IPv4 and IPv6), see each other's exports within about
# a second, drop a peer that says goodbye at once and one that dies after
# dead_after, and find it again when it comes back.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"

# A group and port of this test's own, so nothing else hears it.
GROUP4=239.255.$PEERS_NET.31
GROUP6=ff15::70:$PEERS_NET:31
MPORT=$((7300 + PEERS_NET))
MC4="peer.discovery=multicast,peer.peers=,peer.multicast_group=$GROUP4"
MC4="$MC4,peer.multicast_port=$MPORT,peer.multicast_interface=eth0"

# elapsed_ms START_US: milliseconds since a _now_us reading.
elapsed_ms () {
	echo $((($(_now_us) - $1) / 1000))
}

test_expect_success 'setup: three namespaces, no peer lists' '
	peers_net_setup 3 &&
	for k in 1 2 3; do
		mkdir -p "$(peer_export $k)/common" &&
		echo "from p$k" >"$(peer_export $k)/f$k" &&
		echo "c$k" >"$(peer_export $k)/common/c$k" || exit 1
	done
'

test_expect_success 'peers started one after another find each other' '
	t0=$(_now_us) &&
	peer_start 1 -o "$MC4" &&
	peer_start 2 -o "$MC4" &&
	peer_start 3 -o "$MC4" &&
	peers_wait_all_up 3 &&
	echo "all up $(elapsed_ms $t0) ms after the first start" &&
	grep -q "multicast discovery on $GROUP4" "$(peer_log 1)"
'

test_expect_success 'every mount shows every export' '
	each_mount "test_output \"from p1\" cat \$m/f1 &&
		test_output \"from p2\" cat \$m/f2 &&
		test_output \"from p3\" cat \$m/f3 &&
		test \$(ls \$m/common | wc -l) = 3"
'

test_expect_success 'a joining peer is visible everywhere in under a second' '
	peer_stop 3 &&
	peers_wait_down 1 p3 &&
	t0=$(_now_us) &&
	peer_start 3 -o "$MC4" &&
	wait_for "test -e $(peer_mnt 1)/f3 && test -e $(peer_mnt 2)/f3" 5 &&
	ms=$(elapsed_ms $t0) &&
	echo "join to visible on p1 and p2: $ms ms (including the start)" &&
	test "$ms" -lt 3000
'

test_expect_success 'a peer that says goodbye is gone at once' '
	t0=$(_now_us) &&
	peer_stop 2 &&
	wait_for "! test -e $(peer_mnt 1)/f2 && ! test -e $(peer_mnt 3)/f2" 5 &&
	echo "leave to gone: $(elapsed_ms $t0) ms" &&
	test_output "from p1" cat "$(peer_mnt 3)/f1"
'

test_expect_success 'a peer that dies is dropped after dead_after, found again' '
	peer_kill 3 &&
	t0=$(_now_us) &&
	peers_wait_down 1 p3 &&
	echo "killed to down: $(elapsed_ms $t0) ms" &&
	peer_start 3 -o "$MC4" &&
	peer_start 2 -o "$MC4" &&
	peers_wait_all_up 3 &&
	test_output "from p3" cat "$(peer_mnt 1)/f3"
'

test_expect_success 'status counts datagrams; a malformed one is dropped' '
	in_peer 2 "$PYTHON" -c "
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
s.sendto(b\"PUFD garbage\" * 3, (sys.argv[1], int(sys.argv[2])))
" "$GROUP4" "$MPORT" &&
	wait_for "grep -q \"malformed datagram\" $(peer_log 1)" 5 &&
	peers_wait_all_up 3 &&
	peer_status 1 >st.json &&
	"$PYTHON" - st.json <<-\EOF
	import json, sys
	s = json.load(open(sys.argv[1]))
	d = s["discovery"]
	assert d["mode"] == "multicast", d
	assert d["sent"] > 0 and d["received"] > 0, d
	assert d["dropped"] >= 1, d
	EOF
'

test_expect_success 'IPv6 group: the same union' '
	for k in 1 2 3; do peer_stop $k || exit 1; done &&
	for k in 1 2 3; do
		in_peer $k ip -6 addr add fd70:$PEERS_NET::$k/64 dev eth0 nodad ||
			exit 1
	done &&
	mc6="peer.discovery=multicast,peer.peers=" &&
	mc6="$mc6,peer.multicast_group=$GROUP6,peer.multicast_port=$MPORT" &&
	mc6="$mc6,peer.multicast_interface=eth0" &&
	for k in 1 2 3; do
		peer_start $k -o "$mc6,peer.listen=[fd70:$PEERS_NET::$k]:7070" ||
			exit 1
	done &&
	peers_wait_all_up 3 &&
	each_mount "test_output \"from p3\" cat \$m/f3" &&
	ls "$(peer_mnt 2)/common" >list &&
	test $(wc -l <list) = 3
'

test_expect_success 'cleanup: stop all' '
	for k in 1 2 3; do peer_stop $k || exit 1; done
'

test_done
