#!/bin/bash
#
# SQLite shared across the union: two peers each run 500 write
# transactions on one database held by a third peer, in rollback
# journal mode (which needs only fcntl locks, and the data coherence a
# lock gives: what one peer committed is what the next one reads under
# its lock).  Afterwards PRAGMA integrity_check is ok and the table
# holds exactly 1000 rows, 500 from each peer, in well under 30 s.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"

"$PYTHON" -c "import sqlite3" 2>/dev/null ||
	bail_out "python3 has no sqlite3 module"

# The whole run may take this long (the target is 30 s on the link).
LIMIT=30

sql () {
	"$PYTHON" - "$@" <<-\EOF
	import sqlite3, sys
	c = sqlite3.connect(sys.argv[1], timeout=60)
	for q in sys.argv[2:]:
	    for row in c.execute(q):
	        print(*row)
	c.commit()
	EOF
}

test_expect_success 'setup: three peers, p3 holds the database' '
	peers_net_setup 3 &&
	sql "$E3/db" "PRAGMA journal_mode=DELETE" \
		"CREATE TABLE t(tag TEXT, i INTEGER)" &&
	peers_start_all 3 &&
	peers_wait_all_up 3 &&
	test -s "$M1/db" && test -s "$M2/db"
'

test_expect_success 'p1 and p2: 500 write transactions each, at once' '
	t0=$EPOCHREALTIME &&
	{ timeout -k 2 120 "$PYTHON" "$T_DIR/lk.py" sql "$M1/db" 500 p1 >o1 & } &&
	p1=$! &&
	{ timeout -k 2 120 "$PYTHON" "$T_DIR/lk.py" sql "$M2/db" 500 p2 >o2 & } &&
	p2=$! &&
	wait $p1 && wait $p2 &&
	t1=$EPOCHREALTIME &&
	awk -v a=$t0 -v b=$t1 "BEGIN { printf \"1000 transactions in %.2f s\n\", b - a }" &&
	test_output 500 cat o1 &&
	test_output 500 cat o2 &&
	awk -v a=$t0 -v b=$t1 -v l=$LIMIT "BEGIN { exit !(b - a < l) }"
'

test_expect_success 'integrity ok, exactly 1000 rows, on the holder' '
	test_output ok sql "$E3/db" "PRAGMA integrity_check" &&
	test_output 1000 sql "$E3/db" "SELECT count(*) FROM t" &&
	test_output "500 500" sql "$E3/db" \
		"SELECT count(DISTINCT CASE WHEN tag = '\''p1'\'' THEN i END),
			count(DISTINCT CASE WHEN tag = '\''p2'\'' THEN i END) FROM t"
'

test_expect_success 'and the same through every mount' '
	for m in "$M1" "$M2" "$M3"; do
		test_output ok sql "$m/db" "PRAGMA integrity_check" &&
		test_output 1000 sql "$m/db" "SELECT count(*) FROM t" ||
		exit 1
	done &&
	test_path_is_missing "$E3/db-journal"
'

test_done
