#!/bin/bash
#
# The multi-peer harness itself (t/lib-peers.sh): namespaces on a
# bridge, addresses, multicast route, TCP and multicast between peers,
# daemons started inside the namespaces with their mounts visible here,
# stop, kill, restart, link cut, tmpfs exports, and a cleanup that leaves
# nothing behind whether a script passes, fails midway or is interrupted.
# It needs a daemon that mounts, not one that joins peers.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"
N=$PEERS_NET

test_expect_success 'setup: three peer namespaces on a bridge' '
	ip -o link show | awk -F": " "{ print \$2 }" | sort >links.before &&
	peers_net_setup 3
'

test_expect_success 'the four namespaces exist, named after the test' '
	_peers_ns_list | sort >actual &&
	printf "pufs-5000-$$-%s\n" hub p1 p2 p3 >expect &&
	test_cmp expect actual
'

test_expect_success 'the root namespace got no new interface' '
	ip -o link show | awk -F": " "{ print \$2 }" | sort >links.after &&
	test_cmp links.before links.after
'

test_expect_success 'each peer: lo and eth0 up, its address, multicast route' '
	for k in 1 2 3; do
		ns=$(peer_ns $k) &&
		ip -n $ns -o link show lo | grep -q "state UNKNOWN\|UP" &&
		ip -n $ns -o -4 addr show dev eth0 >addr &&
		grep -q "inet 10\.$N\.0\.$k/24" addr &&
		ip -n $ns -o link show eth0 | grep -q "state UP" &&
		ip -n $ns route show 224.0.0.0/4 | grep -q "dev eth0" &&
		test $(ip -n $ns -o link show | wc -l) = 2 || exit 1
	done
'

test_expect_success 'the hub: a bridge with one port per peer' '
	ip -n $PEERS_HUB -o link show master br0 >ports &&
	cat ports &&
	test $(wc -l <ports) = 3 &&
	ip -n $PEERS_HUB -o link show br0 | grep -q "state UP" &&
	! ip -n $PEERS_HUB -o -4 addr show | grep -v " lo " | grep inet
'

test_expect_success 'every peer reaches every other one over TCP' '
	cat >srv.py <<-\EOF &&
	import socket, sys
	s = socket.socket()
	s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
	s.bind((sys.argv[1], 7071))
	s.listen(8)
	open(sys.argv[2], "w").close()
	for i in range(2):
	    c, a = s.accept()
	    c.sendall(("hello " + a[0] + "\n").encode())
	    c.close()
	EOF
	cat >cli.py <<-\EOF &&
	import socket, sys
	c = socket.create_connection((sys.argv[1], 7071), timeout=5)
	print(c.recv(100).decode().strip())
	EOF
	for k in 1 2 3; do
		rm -f listening &&
		(timeout 20 nsenter --net=/run/netns/$(peer_ns $k) \
			"$PYTHON" srv.py $(peer_addr $k) listening &) &&
		wait_for "test -e listening" 5 &&
		for j in 1 2 3; do
			[ $j = $k ] && continue
			test_output "hello $(peer_addr $j)" \
				in_peer $j timeout 5 "$PYTHON" cli.py \
				$(peer_addr $k) || exit 1
		done || exit 1
	done
'

test_expect_success 'a multicast datagram from p1 reaches p2 and p3' '
	cat >mrecv.py <<-\EOF &&
	import socket, struct, sys
	s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
	s.bind(("", 7072))
	mreq = struct.pack("4s4s", socket.inet_aton("239.255.70.70"),
	                   socket.inet_aton(sys.argv[1]))
	s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
	open(sys.argv[2], "w").close()
	s.settimeout(10)
	print(s.recvfrom(100)[0].decode())
	EOF
	cat >msend.py <<-\EOF &&
	import socket, time
	s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
	for i in range(20):
	    s.sendto(b"trap", ("239.255.70.70", 7072))
	    time.sleep(0.1)
	EOF
	for j in 2 3; do
		(in_peer $j timeout 15 "$PYTHON" mrecv.py $(peer_addr $j) \
			ready$j >got$j 2>&1 &) || exit 1
	done &&
	wait_for "test -e ready2 && test -e ready3" 5 &&
	in_peer 1 timeout 10 "$PYTHON" msend.py &&
	wait_for "grep -q trap got2 && grep -q trap got3" 5
'

test_expect_success 'setup: each export has a file of its own' '
	for k in 1 2 3; do
		echo "own $k" >"$(peer_export $k)/own$k" || exit 1
	done
'

test_expect_success 'a daemon starts in each namespace' '
	peers_start_all 3 &&
	for k in 1 2 3; do
		pid=$(pufs_pid p$k) &&
		test "$(stat -L -c %i /proc/$pid/ns/net)" = \
			"$(stat -L -c %i /run/netns/$(peer_ns $k))" &&
		test "$(readlink /proc/$pid/ns/mnt)" = \
			"$(readlink /proc/self/ns/mnt)" &&
		test "$(readlink /proc/$pid/exe)" = "$PUFS" || exit 1
	done
'

test_expect_success 'the mounts are visible from here and serve the exports' '
	for k in 1 2 3; do
		is_mounted "$(peer_mnt $k)" &&
		test_output "own $k" cat "$(peer_mnt $k)/own$k" || exit 1
	done
'

test_expect_success 'the daemons got the peer options' '
	for k in 1 2 3; do
		peer_status $k >st &&
		"$PYTHON" -c "
import json, sys
s = json.load(open(\"st\"))
assert s[\"name\"] == \"p$k\", s[\"name\"]
assert s[\"uri\"] == \"$(peer_uri $k)\", s[\"uri\"]
" &&
		grep -q "ready: mounted $(peer_mnt $k)" "$(peer_dir $k)/log" ||
			exit 1
	done
'

test_expect_success 'peer_stop: exit 0, mount gone; peer_start brings it back' '
	peer_stop 2 &&
	! is_mounted "$M2" &&
	peer_start 2 &&
	is_mounted "$M2" &&
	test_output "own 2" cat "$M2/own2" &&
	test -e "$(peer_dir 2)/log.old.1" &&
	test $(grep -c "ready: mounted" "$(peer_dir 2)/log") = 1
'

test_expect_success 'peer_kill: SIGKILL, mount removed; restart works' '
	pid=$(pufs_pid p3) &&
	peer_kill 3 &&
	! kill -0 $pid 2>/dev/null &&
	! is_mounted "$M3" &&
	peer_start 3 &&
	test_output "own 3" cat "$M3/own3"
'

test_expect_success 'peer_link_down cuts a peer off, peer_link_up restores it' '
	peer_link_down 3 &&
	! peers_reach 1 3 &&
	! peers_reach 3 2 &&
	peer_link_up 3 &&
	ip -n $(peer_ns 3) route show 224.0.0.0/4 | grep -q eth0 &&
	wait_for "peers_reach 1 3 && peers_reach 3 2" 10
'

test_expect_success 'peers_mount_tmpfs: a sized tmpfs, cleaned up at exit' '
	peers_mount_tmpfs "$TRASH/tmpfs" 4M &&
	is_mounted "$TRASH/tmpfs" &&
	test "$(stat -f -c %T "$TRASH/tmpfs")" = tmpfs &&
	test $(( $(stat -f -c "%b * %S" "$TRASH/tmpfs") )) = 4194304
'

# Run a small script that uses the harness, in its own process group,
# in MODE (pass, fail or int: SIGINT to the group in the middle of a
# test); leave its output in child.out and its status in child.rc.
run_child () {
	local mode=$1 pgid
	mkdir -p child || return 1
	rm -f child/* child.rc child.out || return 1
	cat >child/t5099-child.sh <<-EOF &&
	#!/bin/bash
	. "$T_DIR/lib.sh"
	. "$T_DIR/lib-peers.sh"
	echo "\$TRASH" >"$TRASH/child/trash"
	test_expect_success "net" "peers_net_setup 2"
	test_expect_success "tmpfs export" "peers_mount_tmpfs \\\$E2 8M"
	test_expect_success "daemons" "peers_start_all 2 &&
		pufs_pid p1 >>$TRASH/child/pids && pufs_pid p2 >>$TRASH/child/pids"
	case $mode in
	fail)
		test_expect_success "a failure" "false" ;;
	int)
		test_expect_success "interrupted" "
			in_peer 1 sleep 300 & echo \\\$! >>$TRASH/child/pids
			sleep 200 & echo \\\$! >>$TRASH/child/pids
			touch $TRASH/child/inside && sleep 60" ;;
	esac
	test_expect_success "more" "true"
	test_done
	EOF
	chmod +x child/t5099-child.sh || return 1
	(
		setsid "$PYTHON" -c "
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])" child/t5099-child.sh >child.out 2>&1 &
		echo $! >child/pgid
		wait $!
		echo $? >child.rc
	) &
	wait_for "test -s child/pgid" 5 &&
	pgid=$(cat child/pgid) &&
	if [ $mode = int ]; then
		wait_for "test -e child/inside" 30 &&
		kill -INT -- -$pgid
	fi &&
	wait_for "test -e child.rc" 60 &&
	cat child.out
}

# Check that the child left nothing: namespaces, mounts, processes,
# trash, interfaces of the root namespace.
child_left_nothing () {
	local ct p
	ct=$(cat child/trash) &&
	test -n "$ct" &&
	! ip netns list | grep pufs-5099- &&
	! grep -F "$ct" /proc/self/mountinfo &&
	test_path_is_missing "$ct" &&
	test -s child/pids &&
	for p in $(cat child/pids); do
		wait_for "! kill -0 $p" 2 || { echo "pid $p alive"; return 1; }
	done &&
	ip -o link show | awk -F": " "{ print \$2 }" | sort >links.child &&
	test_cmp links.before links.child
}

test_expect_success 'cleanup leaves nothing after a passing script' '
	run_child pass &&
	test_output 0 cat child.rc &&
	grep -q "^ok 4 - more" child.out &&
	child_left_nothing
'

test_expect_success 'cleanup leaves nothing after a failing script' '
	run_child fail &&
	test_output 1 cat child.rc &&
	grep -q "^not ok 4 - a failure" child.out &&
	child_left_nothing
'

test_expect_success 'cleanup leaves nothing after SIGINT mid-test' '
	run_child int &&
	test_output 130 cat child.rc &&
	! grep -q "^ok 4" child.out &&
	child_left_nothing
'

test_done
