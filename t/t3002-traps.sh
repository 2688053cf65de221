#!/bin/bash
#
# Traps: with attr_timeout = 60, a change made on one peer (through pufs,
# or directly on disk) is seen on the others within about a second; a
# file written in many small writes costs a handful of datagrams; with
# 20% of datagrams dropped, no change is missed for longer than a
# heartbeat or two.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"

peers_multicast 32 7400
MC="$MC,cache.attr_timeout=60,cache.trap_delay=0.1"

# soon CMD: CMD succeeds within 2 s (traps, not expiry, must do it).
soon () {
	wait_for "$1" 2
}

# traps_sent K: TRAP datagrams peer K sent.
traps_sent () {
	peer_status "$1" | "$PYTHON" -c \
	    'import json,sys; print(json.load(sys.stdin)["traps"]["sent"])'
}

test_expect_success 'setup: three peers, attr_timeout 60' '
	peers_net_setup 3 &&
	for k in 1 2 3; do
		mkdir -p "$(peer_export $k)/d$k" &&
		echo "v1" >"$(peer_export $k)/d$k/f" || exit 1
	done &&
	for k in 1 2 3; do peer_start $k -o "$MC" || exit 1; done &&
	peers_wait_all_up 3 &&
	M2=$(peer_mnt 2) M3=$(peer_mnt 3) M1=$(peer_mnt 1) &&
	each_mount "test_output v1 cat \$m/d1/f" &&
	each_mount "stat \$m/d1/f >/dev/null && ls \$m/d1 >/dev/null"
'

test_expect_success 'a new file made through pufs appears elsewhere at once' '
	echo new >"$M1/d1/created" &&
	soon "test_output new cat $M2/d1/created" &&
	soon "test_output new cat $M3/d1/created"
'

test_expect_success 'a removed file is gone elsewhere at once' '
	stat "$M2/d1/created" "$M3/d1/created" >/dev/null &&
	rm "$M1/d1/created" &&
	soon "! test -e $M2/d1/created" &&
	soon "! test -e $M3/d1/created"
'

test_expect_success 'a rename is seen at once' '
	stat "$M2/d1/f" >/dev/null &&
	mv "$M1/d1/f" "$M1/d1/g" &&
	soon "! test -e $M2/d1/f && test -e $M2/d1/g" &&
	mv "$M1/d1/g" "$M1/d1/f" &&
	soon "test -e $M2/d1/f && ! test -e $M2/d1/g"
'

test_expect_success 'a chmod and a write are seen at once' '
	test_output 644 stat -c %a "$M2/d1/f" &&
	chmod 600 "$M1/d1/f" &&
	soon "test_output 600 stat -c %a $M2/d1/f" &&
	test_output v1 cat "$M3/d1/f" &&
	echo v2 >"$M1/d1/f" &&
	soon "test_output v2 cat $M3/d1/f" &&
	soon "test_output 3 stat -c %s $M2/d1/f"
'

test_expect_success 'a change made directly on disk is seen (inotify)' '
	test_output v2 cat "$M2/d1/f" &&
	ls "$M3/d1" >/dev/null &&
	echo disk >"$(peer_export 1)/d1/f" &&
	echo other >"$(peer_export 1)/d1/ondisk" &&
	soon "test_output disk cat $M2/d1/f" &&
	soon "test_output other cat $M3/d1/ondisk" &&
	rm "$(peer_export 1)/d1/ondisk" &&
	soon "! test -e $M3/d1/ondisk" &&
	test_output 600 stat -c %a "$M2/d1/f" &&
	chmod 640 "$(peer_export 1)/d1/f" &&
	soon "test_output 640 stat -c %a $M2/d1/f" &&
	peer_status 1 | "$PYTHON" -c "import json,sys; t=json.load(sys.stdin)[\"traps\"]; assert t[\"disk\"] >= 4, t"
'

test_expect_success '64 MiB in 4 KiB writes cost a handful of datagrams' '
	before=$(traps_sent 2) &&
	dd if=/dev/zero of="$M2/d2/big" bs=4k count=16384 2>/dev/null &&
	peer_advance 2 300 &&
	after=$(traps_sent 2) &&
	echo "TRAP datagrams for 64 MiB in 4 KiB writes: $((after - before))" &&
	test $((after - before)) -ge 1 && test $((after - before)) -le 200 &&
	soon "test_output 67108864 stat -c %s $M1/d2/big"
'

test_expect_success 'with 20% of datagrams lost, no change is missed' '
	for k in 1 2 3; do
		in_peer $k nft add table inet pufsloss &&
		in_peer $k nft add chain inet pufsloss input \
		    "{ type filter hook input priority 0; }" &&
		in_peer $k nft add rule inet pufsloss input \
		    udp dport $MPORT numgen random mod 10 \< 2 drop || exit 1
	done &&
	for i in $(seq 30); do
		echo "r$i" >"$M1/d1/loss$i" || exit 1
		stat "$M2/d1/loss$i" >/dev/null 2>&1 || :
		rm "$M1/d1/loss$i" || exit 1
	done &&
	echo final >"$M1/d1/last" &&
	wait_for "test_output final cat $M2/d1/last" 3 &&
	peer_status 2 | "$PYTHON" -c "import json,sys; t=json.load(sys.stdin)[\"traps\"]; print(t)" &&
	# A lost TRAP shows as a gap at the next TRAP or heartbeat (0.2 s
	# here, also subject to loss): allow a few heartbeats.
	for i in $(seq 30); do
		wait_for "! test -e $M2/d1/loss$i" 2 || exit 1
	done &&
	for k in 1 2 3; do in_peer $k nft delete table inet pufsloss; done
'

test_expect_success 'invalidations while the kernel is busy on the same file: no deadlock' '
	# p1 writes a file held by p2 while p2 itself reads, writes, stats
	# and lists it: every TRAP makes p2 invalidate pages and entries the
	# kernel may be holding locks on.  A deadlock would hang p2s calls.
	dd if=/dev/zero of="$M2/d2/hot" bs=64k count=64 2>/dev/null &&
	{ ( for i in $(seq 200); do
		dd if=/dev/urandom of="$M1/d2/hot" bs=4k count=4 \
		    seek=$((i % 200)) conv=notrunc 2>w1.err ||
		    { cat w1.err; exit 1; }
	  done ) & } &&
	w1=$! &&
	{ ( for i in $(seq 200); do
		timeout 10 dd if="$M2/d2/hot" of=/dev/null bs=64k 2>/dev/null &&
		timeout 10 dd if=/dev/zero of="$M2/d2/hot" bs=4k count=1 \
		    seek=$((300 + i % 100)) conv=notrunc 2>/dev/null &&
		timeout 10 stat "$M2/d2/hot" >/dev/null &&
		timeout 10 ls "$M2/d2" >/dev/null || exit 1
	  done ) & } &&
	w2=$! &&
	wait $w1 && wait $w2 &&
	test_output 4194304 stat -c %s "$(peer_export 2)/d2/hot" &&
	wait_for "cmp $(peer_export 2)/d2/hot $M3/d2/hot" 3
'

test_expect_success 'cleanup: stop all' '
	for k in 1 2 3; do peer_stop $k || exit 1; done
'

test_done
