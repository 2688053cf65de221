# t/lib-locks.sh - lock helpers for the lock tests (t503x), sourced after
# t/lib.sh and t/lib-peers.sh.  The lock calls themselves are t/lk.py's.

lk () {
	"$PYTHON" "$T_DIR/lk.py" "$@"
}

# bg NAME COMMAND ARGS...: lk.py COMMAND ARGS... NAME in the background
# (hold, intr), its state in the file NAME, its pid in NAME.pid; it is
# let go at the end of the test whatever happens.
bg () {
	local n=$1
	shift
	rm -f "$n" "$n.release"
	{ timeout -k 2 60 "$PYTHON" "$T_DIR/lk.py" "$@" "$n" & } &&
	echo $! >"$n.pid" &&
	test_when_finished "touch $PWD/$n.release"
}

# hold NAME KIND TYPE START LEN FILE: a process that waits for a lock
# and holds it (lk.py hold); back once it has the file open (its state
# says opened, or already locked or error), so that what the test does
# next (kill the holder, say) comes after the open.
hold () {
	local n=$1
	shift
	bg "$n" hold "$@" && wait_for "test -s $PWD/$n" 10
}

# holding NAME: wait until NAME has its lock.
holding () { wait_for "grep -q locked $1" 10; }

# release NAME: let NAME's process go and wait until it has.
release () {
	touch "$1.release" && wait_for "grep -q released $1" 10 &&
		wait "$(cat "$1.pid")"
}

# lock_count K FIELD: peer K's pufs status locks.FIELD (served, lent,
# recalled: as holder; local, borrowed, returned, granted: as mount).
lock_count () {
	peer_status "$1" | "$PYTHON" -c '
import json, sys
print(json.load(sys.stdin)["locks"][sys.argv[1]])' "$2"
}
