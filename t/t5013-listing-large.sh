#!/bin/bash
#
# Large directories list completely, through another peer's mount and
# locally.  A listing larger than the metadata cache's budget (a quarter
# of cache_size) is served straight from the holder's answer instead of
# being asked for again and again; a listing larger than one frame
# (PROTO_MAX_FRAME) travels as pages.  Peer 2 holds big/ (200,000
# entries, every other name 247 bytes long: about 45 MB of listing, two
# pages) and small/ (2,000 entries); peer 3 runs with a 64 KiB cache and
# holds mine/ (2,000 entries).  Files are made on disk before the
# daemons start, by one process.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"

TEST_TIMEOUT=300
# The requester's loop merges a 200,000-entry listing in one go (the
# longest lag is printed); under the sanitizers that outlasts
# lib-peers.sh's dead_after of 1 s, so the peers are more patient here.
SLOW=peer.dead_after=10
SMALL=$SLOW,peer.op_timeout=10,cache.cache_size=64K,cache.block_size=16K
BIG=$SLOW,peer.op_timeout=30

# json K EXPR: a value from peer K's status (EXPR indexes s).
json () {
	peer_status "$1" | "$PYTHON" -c "import json,sys; s=json.load(sys.stdin); print($2)"
}

# make_dir DIR N LONG: N empty files in DIR; with LONG, every other
# name is 247 bytes long.
make_dir () {
	"$PYTHON" - "$@" <<-\EOF
	import os, sys
	d, n, long = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "long"
	os.makedirs(d, exist_ok=True)
	for i in range(n):
	    name = "%06d" % i
	    if long and i % 2:
	        name += "-" + "L" * 240
	    os.close(os.open(os.path.join(d, name), os.O_CREAT | os.O_WRONLY, 0o644))
	EOF
}

# names_of DIR: the names in DIR but . and .., sorted, one a line.
names_of () {
	ls -f "$1" | grep -v -x -e . -e .. | LC_ALL=C sort
}

# lists_as K DIR HOLDER SECS: peer K's mount lists DIR exactly as
# HOLDER's export does on disk (. and .. besides), within SECS seconds.
lists_as () {
	local k=$1 dir=$2 holder=$3 secs=$4 t0 t1
	names_of "$(peer_export "$holder")/$dir" >want.$dir &&
	t0=$EPOCHREALTIME &&
	timeout -k 2 "$secs" ls -f "$(peer_mnt "$k")/$dir" >raw.$dir &&
	t1=$EPOCHREALTIME &&
	echo "p$k lists $dir/ ($(wc -l <raw.$dir) lines) in" \
	    "$(awk -v a=$t0 -v b=$t1 "BEGIN { printf \"%.3f\", b - a }") s" &&
	test "$(wc -l <raw.$dir)" -eq $(($(wc -l <want.$dir) + 2)) &&
	grep -v -x -e . -e .. raw.$dir | LC_ALL=C sort >got.$dir &&
	test_cmp want.$dir got.$dir
}

# listed_full, listed_delta: how many listings p2 served whole, as deltas.
listed_full () { json 2 "s[\"listings\"][\"full\"]"; }
listed_delta () { json 2 "s[\"listings\"][\"delta\"]"; }

# refreshed_by_delta: once p1's listing of big/ expired (its clock moved
# past attr_timeout), it lists as p2's disk does (as soon as p2 noted
# the changes on its disk), and p2 served that as a delta, not whole.
refreshed_by_delta () {
	local full0 delta0 full1 delta1
	full0=$(listed_full) && delta0=$(listed_delta) &&
	peer_advance 1 600 &&
	wait_for "lists_as 1 big 2 120" 120 &&
	full1=$(listed_full) && delta1=$(listed_delta) &&
	echo "p2 served $((full1 - full0)) whole, $((delta1 - delta0)) deltas" &&
	test $((delta1 - delta0)) -ge 1 && test $((full1 - full0)) -eq 0
}

test_expect_success 'setup: 200,000 and 2,000 entries on p2, 2,000 on p3' '
	peers_net_setup 3 &&
	make_dir "$(peer_export 2)/big" 200000 long &&
	make_dir "$(peer_export 2)/small" 2000 short &&
	make_dir "$(peer_export 3)/mine" 2000 short &&
	peer_start 1 -o "$BIG" &&
	peer_start 2 -o "$BIG" &&
	peer_start 3 -o "$SMALL" &&
	peers_wait_all_up 3
'

test_expect_success 'past the cache budget: 2,000 entries of another peer' '
	lists_as 3 small 2 10 &&
	lists_as 3 small 2 10
'

test_expect_success 'past the cache budget: 2,000 entries held locally' '
	lists_as 3 mine 3 10 &&
	lists_as 3 mine 3 10 &&
	test $(json 3 "s[\"cache\"][\"bytes\"]") -le 16384
'

test_expect_success '200,000 entries of another peer list completely' '
	lists_as 1 big 2 120 &&
	lists_as 1 big 2 120 &&
	echo "p1 loop: longest lag $(json 1 "s[\"loop\"][\"max_lag_us\"]") us"
'

test_expect_success 'changes to the big listing come as a delta' '
	: >"$(peer_export 2)/big/added" &&
	rm "$(peer_export 2)/big/000000" "$(peer_export 2)/big/000001-$(printf "L%.0s" $(seq 240))" &&
	refreshed_by_delta
'

test_expect_success 'changes while a paged listing is taken are not missed' '
	{ peer_stop 2 && peer_start 2 -o "$BIG" && peers_wait_all_up 3 ||
	    exit 1; }
	"$PYTHON" - "$(peer_export 2)/big" >writer.out 2>&1 <<-\EOF &
	import os, sys, time
	d = sys.argv[1]
	for i in range(40):
	    os.close(os.open(os.path.join(d, "during%02d" % i), os.O_CREAT, 0o644))
	    os.unlink(os.path.join(d, "%06d" % (1000 + 2 * i)))
	    time.sleep(0.05)
	EOF
	writer=$! &&
	timeout 120 ls -f "$(peer_mnt 1)/big" >/dev/null &&
	wait $writer && cat writer.out &&
	refreshed_by_delta
'

test_expect_success '200,000 entries through a 64 KiB cache' '
	lists_as 3 big 2 120
'

test_expect_success 'cleanup: stop all' '
	for k in 1 2 3; do peer_stop $k || exit 1; done
'

test_done
