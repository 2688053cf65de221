#!/bin/bash
#
# SQLite shared across the union: two peers each run 500 write
# transactions on one database held by a third peer, in rollback
# journal mode (which needs only fcntl locks, and the data coherence a
# lock gives: what one peer committed is what the next one reads under
# its lock).  Afterwards PRAGMA integrity_check is ok and the table
# holds exactly 1000 rows, 500 from each peer, in well under 30 s.  The
# database is in a directory only p3 holds, so that every peer's
# journal is made beside it (create_policy local would put it on the
# writer's own export in a directory every peer holds).  The caches
# are a user's defaults (attributes for 5 s): the journal, made and
# removed on other peers between two locks, is not found where it was.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"

"$PYTHON" -c "import sqlite3" 2>/dev/null ||
	bail_out "python3 has no sqlite3 module"

# The whole run may take this long (the target is 30 s on the link).
LIMIT=30

sql () {
	"$PYTHON" "$T_DIR/lk.py" query "$@"
}

test_expect_success 'setup: three peers, p3 holds the database' '
	peers_net_setup 3 &&
	mkdir "$E3/q" &&
	sql "$E3/q/db" "PRAGMA journal_mode=DELETE" \
		"CREATE TABLE t(tag TEXT, i INTEGER)" &&
	peers_start_all 3 -o cache.attr_timeout=5 &&
	peers_wait_all_up 3 &&
	test -s "$M1/q/db" && test -s "$M2/q/db"
'

test_expect_success 'p1 and p2: 500 write transactions each, at once' '
	t0=$EPOCHREALTIME &&
	{ timeout -k 2 120 "$PYTHON" "$T_DIR/lk.py" sql "$M1/q/db" 500 p1 >o1 & } &&
	p1=$! &&
	{ timeout -k 2 120 "$PYTHON" "$T_DIR/lk.py" sql "$M2/q/db" 500 p2 >o2 & } &&
	p2=$! &&
	wait $p1 && wait $p2 &&
	t1=$EPOCHREALTIME &&
	awk -v a=$t0 -v b=$t1 "BEGIN { printf \"1000 transactions in %.2f s\n\", b - a }" &&
	test_output 500 cat o1 &&
	test_output 500 cat o2 &&
	awk -v a=$t0 -v b=$t1 -v l=$LIMIT "BEGIN { exit !(b - a < l) }"
'

test_expect_success 'integrity ok, exactly 1000 rows, on the holder' '
	test_output ok sql "$E3/q/db" "PRAGMA integrity_check" &&
	test_output 1000 sql "$E3/q/db" "SELECT count(*) FROM t" &&
	test_output "500 500" sql "$E3/q/db" \
		"SELECT count(DISTINCT CASE WHEN tag = '\''p1'\'' THEN i END),
			count(DISTINCT CASE WHEN tag = '\''p2'\'' THEN i END) FROM t"
'

test_expect_success 'and the same through every mount' '
	for m in "$M1" "$M2" "$M3"; do
		test_output ok sql "$m/q/db" "PRAGMA integrity_check" &&
		test_output 1000 sql "$m/q/db" "SELECT count(*) FROM t" ||
		exit 1
	done &&
	test_path_is_missing "$E3/q/db-journal" &&
	test_path_is_missing "$E1/q" && test_path_is_missing "$E2/q"
'

test_done
