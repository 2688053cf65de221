#!/bin/bash
#
# What a lock keeps cached: a peer that alone changes a file keeps what
# it caches of it from one of its locks to the next (the holder's change
# numbers say that nobody else wrote it), and drops it at its first lock
# after another's change.  p3 holds the files; the counts are p1's
# pufs status locks.granted and locks.kept.  Coherence, with caches
# kept: p1, p2 and p3's own mount each add one to the number a file
# holds, under a write lock of the whole file, on one open file each,
# at once, with POSIX locks and with flock: not one update is lost.  And
# SQLite (rollback journal) alternating between p1 and p2, one process
# per transaction: each sees every row the other committed.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"
. "$T_DIR/lib-locks.sh"

"$PYTHON" -c "import sqlite3" 2>/dev/null ||
	bail_out "python3 has no sqlite3 module"

# locks K FIELD: peer K's status locks.FIELD.
locks () {
	peer_status "$1" | "$PYTHON" -c '
import json, sys
print(json.load(sys.stdin)["locks"][sys.argv[1]])' "$2"
}

# rmw K N KIND: peer K adds N to q/n, one lock each (lk.py rmw).
rmw () {
	timeout -k 2 120 "$PYTHON" "$T_DIR/lk.py" rmw "$(peer_mnt "$1")/q/n" \
		"$2" "$3"
}

# The number q/n holds on its holder.
held () {
	tr -d ' \n' <"$E3/q/n"
}

test_expect_success 'setup: three peers, p3 holds q/n and q/db' '
	peers_net_setup 3 &&
	mkdir "$E3/q" &&
	echo 0 >"$E3/q/n" &&
	lk query "$E3/q/db" "PRAGMA journal_mode=DELETE" \
		"CREATE TABLE t(tag TEXT, i INTEGER)" &&
	peers_start_all 3 &&
	peers_wait_all_up 3 &&
	test -s "$M1/q/n" && test -s "$M2/q/n"
'

test_expect_success 'a lone writer keeps its cache from lock to lock' '
	g0=$(locks 1 granted) && k0=$(locks 1 kept) &&
	test_output 50 rmw 1 50 posix &&
	g1=$(locks 1 granted) && k1=$(locks 1 kept) &&
	echo "granted $((g1 - g0)), kept $((k1 - k0))" &&
	test $((g1 - g0)) -eq 50 &&
	test $((k1 - k0)) -ge 49 &&
	test "$(held)" = 50
'

test_expect_success 'a change by another peer drops it at the next lock' '
	test_output 51 rmw 2 1 posix &&
	k0=$(locks 1 kept) &&
	test_output 52 rmw 1 1 posix &&
	test "$(locks 1 kept)" = "$k0" &&
	test_output 53 rmw 1 1 posix &&
	test "$(locks 1 kept)" = $((k0 + 1))
'

test_expect_success 'so does a change made on the holder outside pufs' '
	printf "%20d\n" 100 >"$E3/q/n" &&
	k0=$(locks 1 kept) &&
	test_output 101 rmw 1 1 posix &&
	test "$(locks 1 kept)" = "$k0"
'

# race KIND N: p1, p2 and p3 each add N at once with KIND locks.
race () {
	local n0 p1 p2 p3
	n0=$(held) &&
	{ rmw 1 "$2" "$1" >o1 & } && p1=$! &&
	{ rmw 2 "$2" "$1" >o2 & } && p2=$! &&
	{ rmw 3 "$2" "$1" >o3 & } && p3=$! &&
	wait $p1 && wait $p2 && wait $p3 &&
	echo "$n0 + 3 * $2 = $(held)" &&
	test "$(held)" = $((n0 + 3 * $2)) &&
	test "$(cat o1 o2 o3 | sort -n | tail -n 1)" = $((n0 + 3 * $2))
}

test_expect_success 'three peers at once, POSIX locks: no update lost' '
	race posix 200
'

test_expect_success 'three peers at once, flock: no update lost' '
	race flock 100
'

test_expect_success 'SQLite alternating between p1 and p2 sees every row' '
	for i in $(seq 1 20); do
		test_output $((2 * i - 1)) lk query "$M1/q/db" \
			"INSERT INTO t VALUES ('\''p1'\'', $i)" \
			"SELECT count(*) FROM t" &&
		test_output $((2 * i)) lk query "$M2/q/db" \
			"INSERT INTO t VALUES ('\''p2'\'', $i)" \
			"SELECT count(*) FROM t" || exit 1
	done &&
	test_output ok lk query "$E3/q/db" "PRAGMA integrity_check" &&
	test_output 40 lk query "$E3/q/db" "SELECT count(*) FROM t" &&
	test_path_is_missing "$E3/q/db-journal"
'

test_done
