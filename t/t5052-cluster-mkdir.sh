#!/bin/bash
#
# A directory made in a replicated directory is on every replica in
# sync (the call layer repeats the mkdir on each before it answers), so
# the peer that made it keeps it when the replica that answered goes
# away: p1 to p3 hold [cluster:www], p4 none; p4 makes six directories,
# p1 and p2 leave, and each directory still answers on p4 (stat, a
# listing, a file made in it, which lands on p3) while the kernel still
# holds its entry (attr_timeout 30 s, so the entries do not expire and
# are not looked up again).  Before, a directory's node had the replica
# that answered as its only copy, and was lost with it (ENOENT).

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"

# start K: peer K, with a replica of www if K <= 3.
start () {
	local k=$1 ini=$TRASH/p$1.ini
	if [ "$k" -le 3 ]; then
		mkdir -p "$TRASH/p$k/www" &&
		printf '[cluster:www]\npath = %s\nat = /www\n' \
		    "$TRASH/p$k/www" >"$ini" &&
		peer_start "$k" -c "$ini" -o cache.attr_timeout=30
	else
		peer_start "$k" -o cache.attr_timeout=30
	fi
}

# in_sync K N: peer K sees N replicas of www in sync.
in_sync () {
	test "$("$PUFS" status -s "$(peer_sock "$1")" |
	    grep -c "replica .* in sync$")" = "$2"
}

test_expect_success 'setup: p1 to p3 hold www, p4 none' '
	peers_net_setup 4 &&
	for k in 1 2 3 4; do start $k || exit 1; done &&
	peers_wait_all_up 4 &&
	wait_for "in_sync 4 3" 15
'

M4=$TRASH/p4/mnt

test_expect_success 'p4 makes six directories: on all three replicas' '
	for i in 1 2 3 4 5 6; do
		mkdir "$M4/www/d$i" && stat "$M4/www/d$i" >/dev/null || exit 1
	done &&
	for k in 1 2 3; do
		for i in 1 2 3 4 5 6; do
			test -d "$TRASH/p$k/www/d$i" || exit 1
		done
	done
'

test_expect_success 'p1 and p2 leave: every directory answers on p4' '
	peer_stop 1 && peer_stop 2 &&
	peers_wait_down 4 p1 && peers_wait_down 4 p2 &&
	wait_for "in_sync 4 1" 10 &&
	for i in 1 2 3 4 5 6; do
		stat "$M4/www/d$i" >/dev/null &&
		ls "$M4/www/d$i" >/dev/null &&
		echo "in d$i" >"$M4/www/d$i/f" || exit 1
	done &&
	for i in 1 2 3 4 5 6; do
		test "$(cat "$TRASH/p3/www/d$i/f")" = "in d$i" || exit 1
	done
'

test_done
