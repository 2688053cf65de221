#!/bin/bash
#
# Where new entries go (peer.create_policy): local puts them on the
# creating peer when it holds the parent, else on a holder; roundrobin
# spreads them over the holders; mostfree picks the holder with the most
# free space (exports on tmpfs file systems of different sizes), and
# local with a read-only local export falls back to mostfree.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"

# where PATH: the peers whose export holds PATH (see holders), failing
# unless there is exactly one.
where () {
	local h
	h=$(holders "$1")
	case $h in
	[1-9]) echo "$h" ;;
	*) echo "where: $1 is on peers '$h'" >&2; return 1 ;;
	esac
}

test_expect_success 'setup: three peers with create_policy=local' '
	peers_net_setup 3 &&
	mkdir -p "$E1/all/rr" "$E2/all/rr" "$E3/all/rr" "$E3/only3" &&
	peers_start_all 3 -o peer.create_policy=local &&
	peers_wait_all_up 3
'

test_expect_success 'local: a new file lands on the creating peer' '
	for k in 1 2 3; do
		echo "from $k" >"$(peer_mnt $k)/all/f$k" &&
		test_output $k where all/f$k &&
		test_output "from $k" cat "$(peer_export $k)/all/f$k" || exit 1
	done &&
	each_mount_soon "test -f \$m/all/f1 && test -f \$m/all/f2 && test -f \$m/all/f3"
'

test_expect_success 'local: so do directories, symlinks, fifos and root entries' '
	for k in 1 2 3; do
		m=$(peer_mnt $k) &&
		mkdir "$m/all/d$k" &&
		test_output $k where all/d$k &&
		ln -s target "$m/all/s$k" &&
		test_output $k where all/s$k &&
		mkfifo "$m/all/p$k" &&
		test_output $k where all/p$k &&
		echo root >"$m/root$k" &&
		test_output $k where root$k &&
		echo deeper >"$m/all/d$k/g" &&
		test_output $k where all/d$k/g || exit 1
	done
'

test_expect_success 'local: in a directory only p3 holds, from p1, on p3' '
	echo x >"$M1/only3/f" &&
	test_output 3 where only3/f &&
	mkdir -p "$M1/only3/a/b" &&
	test_output 3 where only3/a/b &&
	mkdir "$M2/only3/c" &&
	test_output 3 where only3/c &&
	test_path_is_missing "$E1/only3" &&
	test_path_is_missing "$E2/only3"
'

test_expect_success 'roundrobin: 9 new files spread over the 3 peers' '
	peer_stop 1 && peer_stop 2 && peer_stop 3 &&
	peers_start_all 3 -o peer.create_policy=roundrobin &&
	peers_wait_all_up 3 &&
	for i in 1 2 3 4 5 6 7 8 9; do
		echo $i >"$M1/all/rr/n$i" &&
		where all/rr/n$i >>placed || exit 1
	done &&
	sort placed | uniq -c &&
	for k in 1 2 3; do
		grep -qx $k placed &&
		test $(ls "$(peer_export $k)/all/rr" | wc -l) -ge 1 || exit 1
	done &&
	test $(cat "$E1"/all/rr/* "$E2"/all/rr/* "$E3"/all/rr/* | wc -l) = 9 &&
	each_mount_soon "test \$(ls \$m/all/rr | wc -l) = 9"
'

test_expect_success 'roundrobin: a directory only p3 holds still gets them' '
	for i in 1 2 3; do
		echo $i >"$M2/only3/rr$i" &&
		test_output 3 where only3/rr$i || exit 1
	done
'

test_expect_success 'setup: exports on tmpfs of 8M (p1), 64M (p2), 16M (p3)' '
	peer_stop 1 && peer_stop 2 && peer_stop 3 &&
	peers_mount_tmpfs "$E1" 8M &&
	peers_mount_tmpfs "$E2" 64M &&
	peers_mount_tmpfs "$E3" 16M &&
	mkdir "$E1/all" "$E2/all" "$E3/all" "$E3/only3" &&
	peers_start_all 3 -o peer.create_policy=mostfree &&
	peers_wait_all_up 3
'

test_expect_success 'mostfree: new entries go to p2, the most free' '
	for k in 1 2 3; do
		m=$(peer_mnt $k) &&
		echo $k >"$m/all/mf$k" &&
		test_output 2 where all/mf$k &&
		mkdir "$m/all/md$k" &&
		test_output 2 where all/md$k || exit 1
	done &&
	echo x >"$M1/only3/mf" &&
	test_output 3 where only3/mf
'

test_expect_success 'mostfree: once p2 fills up, to p3' '
	head -c $((60 * 1048576)) /dev/zero >"$E2/filler" &&
	df -k "$E1" "$E2" "$E3" &&
	i=0 &&
	wait_for "i=\$((i + 1)) && echo >\"$M1/all/wait\$i\" &&
		test \"\$(where all/wait\$i)\" = 3" 10 &&
	for k in 1 2 3; do
		echo $k >"$(peer_mnt $k)/all/full$k" &&
		test_output 3 where all/full$k || exit 1
	done
'

test_expect_success 'local with a read-only local export: as mostfree' '
	peer_stop 1 &&
	peer_start 1 --ro -o peer.create_policy=local &&
	peers_wait_all_up 3 &&
	echo ro >"$M1/all/fromro" &&
	test_output 3 where all/fromro &&
	mkdir "$M1/all/dirfromro" &&
	test_output 3 where all/dirfromro
'

test_done
