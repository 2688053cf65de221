#!/bin/bash
#
# Peers leave and join: pufs status shows the others with state, URI,
# round-trip time and last heard; a peer stopped with SIGTERM vanishes
# from every listing at once (merged directories lose only its
# entries), files opened from it fail with EIO, the rest keeps working;
# started again, it reappears everywhere, as often as it comes and goes.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"

# The union as peer K's mount lists it (every path, sorted).
union_of () {
	(cd "$(peer_mnt $1)" && find . -mindepth 1 | sort)
}

# The union the exports of peers K... make (every path, sorted).
union_from () {
	local k
	for k in "$@"; do
		(cd "$(peer_export $k)" && find . -mindepth 1) || return 1
	done | sort -u
}

test_expect_success 'setup: three peers with files of their own and shared' '
	peers_net_setup 3 &&
	for k in 1 2 3; do
		e=$(peer_export $k) &&
		mkdir -p "$e/common" "$e/only$k/deep" &&
		echo "f$k" >"$e/f$k" &&
		echo "c$k" >"$e/common/c$k" &&
		echo "n$k" >"$e/only$k/deep/n$k" || exit 1
	done &&
	mkdir "$E3/common/sub3" &&
	head -c 4000000 /dev/urandom >"$E3/only3/big" &&
	peers_start_all 3 &&
	peers_wait_all_up 3
'

test_expect_success 'status --json lists the other peers: state, URI, RTT' '
	for k in 1 2 3; do
		peer_status $k >st.$k &&
		"$PYTHON" - st.$k $k "$U1" "$U2" "$U3" <<-\EOF || exit 1
		import json, sys
		s = json.load(open(sys.argv[1]))
		me = int(sys.argv[2])
		uris = sys.argv[3:]
		others = {p["name"]: p for p in s["peers"]}
		want = {"p%d" % j for j in (1, 2, 3) if j != me}
		assert set(others) == want, (others, want)
		for j in (1, 2, 3):
		    if j == me:
		        continue
		    p = others["p%d" % j]
		    assert p["uri"] == uris[j - 1], p
		    assert p["state"] == "up", p
		    assert isinstance(p["rtt_ms"], (int, float)), p
		    assert 0 <= p["rtt_ms"] < 1000, p
		    assert isinstance(p["last_heard_s"], (int, float)), p
		    assert 0 <= p["last_heard_s"] < 1, p
		EOF
	done
'

test_expect_success 'status in text names every other peer, URI and state' '
	pufs_try 0 status -s "$(peer_sock 1)" &&
	cat out &&
	grep "p2 .*$U2 .*up" out &&
	grep "p3 .*$U3 .*up" out
'

test_expect_success 'before the leave every mount shows the whole union' '
	union_from 1 2 3 >expect &&
	each_mount "union_of \$k >actual && test_cmp expect actual"
'

test_expect_success 'p3 leaves (SIGTERM): status shows it down at once' '
	{ "$PYTHON" -c "
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
os.read(fd, 65536)
open(sys.argv[2], \"w\").close()
end = time.monotonic() + 30
while not os.path.exists(sys.argv[3]) and time.monotonic() < end:
    time.sleep(0.02)
try:
    os.pread(fd, 65536, 2000000)
    print(\"ok\")
except OSError as e:
    import errno
    print(errno.errorcode[e.errno])
" "$M1/only3/big" held.ready held.go >held.out 2>&1 & } &&
	wait_for "test -e held.ready" 5 &&
	peer_stop 3 &&
	wait_for "! peer_states 1 | grep -qx \"p3 up\" &&
		! peer_states 2 | grep -qx \"p3 up\"" 0.5 &&
	peers_wait_down 1 p3 &&
	peers_wait_down 2 p3 &&
	touch held.go
'

test_expect_success 'its entries vanish from p1 and p2 within a few seconds' '
	union_from 1 2 >expect &&
	wait_for "union_of 1 >actual.1 && union_of 2 >actual.2 &&
		cmp expect actual.1 && cmp expect actual.2" 3 ||
	{ diff -u expect actual.1; diff -u expect actual.2; exit 1; } &&
	each_mount_soon "! test -e \$m/f3 && ! test -e \$m/only3 &&
		! test -e \$m/common/c3 && ! test -e \$m/common/sub3 &&
		test \"\$(ls \$m/common | xargs)\" = \"c1 c2\""
'

test_expect_success 'a file opened from p3 before it left fails with EIO' '
	wait_for "test -s held.out" 15 &&
	test_output EIO cat held.out
'

test_expect_success 'the rest of the union keeps working' '
	test_output f1 cat "$M2/f1" &&
	test_output f2 cat "$M1/f2" &&
	echo changed >"$M1/f2" &&
	test_output changed cat "$E2/f2" &&
	echo new >"$M2/common/new2" &&
	test_output new cat "$E2/common/new2" &&
	each_mount_soon "test -f \$m/common/new2" &&
	mkdir "$M1/only2/madebyp1" &&
	test_path_is_dir "$E2/only2/madebyp1" &&
	echo f3again >"$M1/f3" &&
	test_output f3again cat "$E1/f3" &&
	rm "$M1/f3"
'

test_expect_success 'p3 comes back: up everywhere, its entries reappear' '
	peer_start 3 &&
	peers_wait_all_up 3 &&
	union_from 1 2 3 >expect &&
	for k in 1 2 3; do
		wait_for "union_of $k >actual && cmp expect actual" 3 ||
			{ diff -u expect actual; exit 1; }
	done &&
	each_mount "cmp \"$E3/only3/big\" \$m/only3/big &&
		test_output c3 cat \$m/common/c3 &&
		test_output \"c1 c2 c3 new2 sub3\" sh -c \"ls \$m/common | xargs\""
'

test_expect_success 'status on p1 shows p3 up again, with RTT and last heard' '
	peer_status 1 >st &&
	"$PYTHON" - st "$U3" <<-\EOF
	import json, sys
	s = json.load(open(sys.argv[1]))
	p = [p for p in s["peers"] if p["name"] == "p3"]
	assert len(p) == 1, s["peers"]
	p = p[0]
	assert p["state"] == "up" and p["uri"] == sys.argv[2], p
	assert 0 <= p["rtt_ms"] < 1000 and 0 <= p["last_heard_s"] < 1, p
	EOF
'

test_expect_success 'p3 leaves and joins five times; the union follows' '
	union_from 1 2 3 >expect.all &&
	union_from 1 2 >expect.two &&
	for i in 1 2 3 4 5; do
		peer_stop 3 &&
		peers_wait_down 1 p3 &&
		wait_for "union_of 1 >actual && cmp expect.two actual" 3 &&
		peer_start 3 &&
		peers_wait_all_up 3 &&
		wait_for "union_of 1 >actual && cmp expect.all actual" 3 &&
		wait_for "union_of 2 >actual && cmp expect.all actual" 3 ||
			exit 1
	done
'

test_expect_success 'p1 (the lowest name) leaves: merged attributes pass to p2' '
	chmod 751 "$E2/common" &&
	peer_stop 1 &&
	peers_wait_down 2 p1 &&
	peers_wait_down 3 p1 &&
	wait_for "test \$(stat -c %a $M2/common) = 751" 3 &&
	wait_for "test \$(stat -c %a $M3/common) = 751" 3 &&
	test_output "c2 c3 new2 sub3" sh -c "ls $M3/common | xargs" &&
	peer_start 1 &&
	peers_wait_all_up 3 &&
	wait_for "test \$(stat -c %a $M3/common) = $(stat -c %a "$E1/common")" 3
'

test_done
