#!/bin/bash
#
# Resync by the journals, and by the blocks that differ: two peers, p1
# and p2, holding replicas of [cluster:www] at /www.
#
# - While p2 is down, p1 changes one 128 KiB block in the middle of a
#   16 MiB file, gives another file a new mtime only, makes, renames and
#   removes files.  Back, p2 resyncs by the journals (its status counts
#   one run by them, none comparing all), is the same as p1 in names,
#   contents and mtimes, and moved at most two blocks of the large file
#   (status: patched files and bytes) and none of the touched one (a
#   file found the same).
# - p2's own side is found from its disk (it restarted): a file changed
#   on p2's disk while it was down goes to p1.
# - When the journal cannot be sure (p1 restarted while p2 was away, so
#   its journal starts after p2 left), p2 compares everything (status:
#   one run comparing all) and is the same as p1 again.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"

# The replica directory of peer K.
www () { echo "$TRASH/p$1/www"; }

# start K: peer K with its replica.
start () {
	local k=$1 ini=$TRASH/p$1.ini
	mkdir -p "$(www "$k")" &&
	printf '[cluster:www]\npath = %s\nat = /www\n' "$(www "$k")" >"$ini" &&
	peer_start "$k" -c "$ini"
}

# cl K PATH: a field of the cluster www in peer K's status, by a path of
# keys ("state", "resync.by_journal", "resync.patch.bytes").
cl () {
	peer_status "$1" | "$PYTHON" -c '
import json, sys
s = json.load(sys.stdin)
c = [c for c in s["clusters"] if c["name"] == "www"][0]
for k in sys.argv[1].split("."):
    c = c[k]
print(c)
' "$2"
}

# stamped K: peer K's replica is stamped in sync after everything so far.
stamped () {
	touch "$TRASH/mark" &&
	wait_for "test \"$(www "$1")/.pufs-move.cluster-stamp\" -nt \"$TRASH/mark\"" 10
}

in_sync () {
	test "$(cl "$1" state)" = "in sync"
}

# same_tree A B: names, types, contents and mtimes agree.
same_tree () {
	diff -r -x ".pufs-move.*" "$1" "$2" &&
	(cd "$1" && find . -name ".pufs-move.*" -prune -o -type f -printf "%P %T@\n" |
	    sort) >"$TRASH/t1" &&
	(cd "$2" && find . -name ".pufs-move.*" -prune -o -type f -printf "%P %T@\n" |
	    sort) >"$TRASH/t2" &&
	diff "$TRASH/t1" "$TRASH/t2"
}

test_expect_success 'setup: p1 and p2 hold www, in sync' '
	peers_net_setup 2 &&
	mkdir -p "$(www 1)/sub" &&
	dd if=/dev/urandom of="$(www 1)/big" bs=1M count=16 2>/dev/null &&
	echo same >"$(www 1)/touched" &&
	for i in $(seq 50); do echo "old $i" >"$(www 1)/sub/o$i"; done &&
	echo here >"$(www 1)/p2edit" &&
	start 1 && start 2 &&
	peers_wait_all_up 2 &&
	wait_for "in_sync 1 && in_sync 2" 15 &&
	wait_for "cmp -s \"$(www 1)/big\" \"$(www 2)/big\"" 10 &&
	same_tree "$(www 1)" "$(www 2)"
'

test_expect_success 'p2 back: resync by the journals, blocks that differ only' '
	M1=$(peer_mnt 1) &&
	# What p2 last knew in sync is its stamp: changes made after it are
	# news to p2.
	stamped 2 &&
	peer_kill 2 &&
	peers_wait_down 1 p2 &&
	printf "%131072s" changed | dd of="$M1/www/big" bs=128k seek=60 \
	    conv=notrunc 2>/dev/null &&
	touch -m -d "2020-01-02 03:04:05" "$M1/www/touched" &&
	mkdir "$M1/www/new" &&
	for i in $(seq 20); do echo "new $i" >"$M1/www/new/n$i"; done &&
	mv "$M1/www/sub/o1" "$M1/www/sub/o1moved" &&
	rm "$M1/www/sub/o2" &&
	echo "changed on p2 disk" >"$(www 2)/p2edit" &&
	start 2 &&
	peers_wait_all_up 2 &&
	wait_for "in_sync 2" 15 &&
	wait_for "test \"\$(cat \"$(www 1)/p2edit\")\" = \"changed on p2 disk\"" 10 &&
	same_tree "$(www 1)" "$(www 2)" &&
	echo "p2: by journal $(cl 2 resync.by_journal), all $(cl 2 resync.compared_all)," \
	    "paths $(cl 2 resync.journal_paths), patch $(cl 2 resync.patch)" &&
	test "$(cl 2 resync.by_journal)" = 1 &&
	test "$(cl 2 resync.compared_all)" = 0 &&
	test "$(cl 2 resync.patch.patched)" -ge 1 &&
	test "$(cl 2 resync.patch.same)" -ge 1 &&
	test "$(cl 2 resync.patch.bytes)" -le 262144
'

test_expect_success 'p1 restarted while p2 was away: p2 compares everything' '
	stamped 2 &&
	peer_kill 2 &&
	peers_wait_down 1 p2 &&
	echo "while p2 was away" >"$(peer_mnt 1)/www/late" &&
	dd if=/dev/urandom of="$(peer_mnt 1)/www/big" bs=128k count=1 seek=3 \
	    conv=notrunc 2>/dev/null &&
	peer_kill 1 &&
	start 1 &&
	wait_for "in_sync 1" 15 &&
	start 2 &&
	peers_wait_all_up 2 &&
	wait_for "in_sync 2" 15 &&
	same_tree "$(www 1)" "$(www 2)" &&
	echo "p2: by journal $(cl 2 resync.by_journal), all $(cl 2 resync.compared_all)" &&
	test "$(cl 2 resync.compared_all)" = 1 &&
	test "$(cl 2 resync.by_journal)" = 0
'

test_done
