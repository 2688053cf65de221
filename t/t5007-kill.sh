#!/bin/bash
#
# A peer dies (SIGKILL) while another reads a large file it holds and a
# third writes to one: the read and the write fail with EIO within
# op_timeout + dead_after + slack, no call on the survivors' mounts
# hangs, the dead peer's entries vanish and the rest keeps working; it
# comes back when restarted.  A peer whose network is cut is dropped
# after dead_after and returns when the link does.
#
# The daemons run with op_timeout 3 s, dead_after 1 s, heartbeat 0.2 s.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"

# Longest a failing call may take after the peer went away (seconds):
# op_timeout + dead_after + 2 s of slack.
LIMIT=6

# timed DESC COMMAND...: run COMMAND under timeout 15, fail if it hangs
# or takes more than LIMIT seconds; its status is otherwise ignored.
timed () {
	local desc=$1 t0 t1 rc
	shift
	t0=$EPOCHREALTIME
	timeout -k 2 15 "$@" >/dev/null 2>&1
	rc=$?
	t1=$EPOCHREALTIME
	echo "timed: $desc: status $rc in $(elapsed "$t0" "$t1") s"
	if [ $rc = 124 ] || [ $rc = 137 ]; then
		echo "timed: $desc: still blocked after 15 s"
		return 1
	fi
	awk -v a="$t0" -v b="$t1" -v l=$LIMIT 'BEGIN { exit !(b - a < l) }' ||
		{ echo "timed: $desc: took longer than $LIMIT s"; return 1; }
}

# elapsed T0 T1: T1 - T0 in seconds, 3 decimals.
elapsed () {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", b - a }'
}

# union_of K: every path of the union as peer K's mount lists it.
union_of () {
	(cd "$(peer_mnt $1)" && timeout 15 find . -mindepth 1 | sort)
}

# union_from K...: every path of the exports of peers K....
union_from () {
	local k
	for k in "$@"; do
		(cd "$(peer_export $k)" && find . -mindepth 1) || return 1
	done | sort -u
}

test_expect_success 'setup: three peers; p3 holds a 1 GiB file' '
	peers_net_setup 3 &&
	for k in 1 2 3; do
		e=$(peer_export $k) &&
		mkdir -p "$e/common" "$e/only$k" &&
		echo "f$k" >"$e/f$k" &&
		echo "c$k" >"$e/common/c$k" || exit 1
	done &&
	truncate -s 1G "$E3/only3/big" &&
	: >"$E3/only3/w" &&
	peers_start_all 3 &&
	peers_wait_all_up 3
'

test_expect_success 'SIGKILL p3 mid-read and mid-write: EIO in time, no hang' '
	{ timeout -k 2 15 "$PYTHON" "$_LIB/slowio.py" read "$M1/only3/big" st.r & } &&
	rpid=$! &&
	{ timeout -k 2 15 "$PYTHON" "$_LIB/slowio.py" write "$M2/only3/w" st.w & } &&
	wpid=$! &&
	wait_for "test -s st.r.progress && test \$(cat st.r.progress) -ge 524288 &&
		test -s st.w.progress && test \$(cat st.w.progress) -ge 524288" 10 &&
	t0=$EPOCHREALTIME &&
	peer_kill 3 &&
	echo "killed at $t0" &&
	timed "ls of p1s root" ls "$M1" &&
	timed "stat on p2 of a p3 file" stat "$M2/f3" &&
	timed "cat on p1 of a p1 file" cat "$M1/f1" &&
	timed "ls on p2 of a merged directory" ls "$M2/common" &&
	{ wait $rpid; rrc=$?; } &&
	{ wait $wpid; wrc=$?; } &&
	cat st.r st.w &&
	echo "reader exited $rrc after $(cat st.r.progress) bytes," \
		"writer exited $wrc after $(cat st.w.progress) bytes" &&
	test $rrc = 1 && test $wrc = 1 &&
	read rerr rt <st.r && read werr wt <st.w &&
	test "$rerr" = EIO && test "$werr" = EIO &&
	echo "reader failed $(elapsed $t0 $rt) s, writer $(elapsed $t0 $wt) s after the kill" &&
	awk -v a=$t0 -v b=$rt -v l=$LIMIT "BEGIN { exit !(b - a < l) }" &&
	awk -v a=$t0 -v b=$wt -v l=$LIMIT "BEGIN { exit !(b - a < l) }"
'

test_expect_success 'p1 and p2 see p3 down' '
	peers_wait_down 1 p3 &&
	peers_wait_down 2 p3
'

test_expect_success 'p3s entries vanish from p1 and p2' '
	union_from 1 2 >expect &&
	wait_for "union_of 1 >actual.1 && cmp expect actual.1 &&
		union_of 2 >actual.2 && cmp expect actual.2" 5 ||
	{ diff -u expect actual.1; diff -u expect actual.2; exit 1; }
'

test_expect_success 'operations on p1 and p2 files keep working' '
	timed "read" cat "$M2/f1" &&
	test_output f1 timeout 15 cat "$M2/f1" &&
	echo again >"$M1/f2" &&
	test_output again cat "$E2/f2" &&
	echo n >"$M2/common/new" &&
	test_output n cat "$E2/common/new" &&
	mkdir "$M1/only2/d" &&
	test_path_is_dir "$E2/only2/d" &&
	# Listings are cached; the trap about new arrives within trap_delay.
	wait_for "test \"\$(timeout 15 ls $M1/common | xargs)\" = \"c1 c2 new\"" 3
'

test_expect_success 'p3 restarted: back everywhere, its data intact' '
	peer_start 3 &&
	peers_wait_all_up 3 &&
	union_from 1 2 3 >expect &&
	for k in 1 2 3; do
		wait_for "union_of $k >actual && cmp expect actual" 5 ||
			{ diff -u expect actual; exit 1; }
	done &&
	test_output 1073741824 stat -c %s "$M1/only3/big" &&
	test_output "$(stat -c %s "$E3/only3/w")" stat -c %s "$M2/only3/w" &&
	test_output c3 cat "$M1/common/c3"
'

test_expect_success 'p3s network cut: dropped after dead_after everywhere' '
	t0=$EPOCHREALTIME &&
	peer_link_down 3 &&
	timed "cat on p1 of a p3 file during the cut" cat "$M1/f3" &&
	timed "ls on p2 during the cut" ls "$M2/common" &&
	peers_wait_down 1 p3 &&
	peers_wait_down 2 p3 &&
	peers_wait_down 3 p1 &&
	peers_wait_down 3 p2 &&
	echo "all saw the cut after $(elapsed $t0 $EPOCHREALTIME) s" &&
	union_from 1 2 >expect &&
	wait_for "union_of 1 >actual && cmp expect actual" 5 &&
	wait_for "union_of 2 >actual && cmp expect actual" 5 &&
	union_from 3 >expect.3 &&
	wait_for "union_of 3 >actual && cmp expect.3 actual" 5 &&
	test_output f1 timeout 15 cat "$M2/f1"
'

test_expect_success 'the link returns: p3 back, the union whole again' '
	t0=$EPOCHREALTIME &&
	peer_link_up 3 &&
	peers_wait_all_up 3 &&
	echo "all up again after $(elapsed $t0 $EPOCHREALTIME) s" &&
	union_from 1 2 3 >expect &&
	for k in 1 2 3; do
		wait_for "union_of $k >actual && cmp expect actual" 5 ||
			{ diff -u expect actual; exit 1; }
	done &&
	test_output f3 cat "$M1/f3" &&
	test_output f1 cat "$M3/f1"
'

test_done
