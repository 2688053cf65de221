#!/bin/bash
#
# Attributes after our own changes, known without asking: with
# attr_timeout = 60, a file p1 writes, creates, links and unlinks in a
# directory p2 holds shows on p1 and on p2 what p2's disk has (size,
# mtime, ctime, link count), right after close(2) and after the traps of
# the changes came back.  p2 answers each write with the file's
# attributes before and after it (WRITE_ATTR), and an unlink of a file
# with other names with what they show after (UNLINK_ATTR), so p1 sends
# no STAT and no READ for what it just wrote (a file written whole
# stays in its block cache; `pufs status` counts the calls); the traps
# of its own writes are echoes and keep p1's caches.
# Another peer's write is still seen by p1 within a trap delay, and an
# open after its close reads its bytes, even right after p1's own write
# of the same bytes.  A peer of an older version (without the
# capability) is asked, and agrees with the holder too.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"

OPTS=cache.attr_timeout=60,peer.dead_after=120

# ops K TYPE: the calls of TYPE peer K has sent so far.
ops () {
	peer_status "$1" | "$PYTHON" -c '
import json, sys
print(json.load(sys.stdin)["ops"].get(sys.argv[1], 0))' "$2"
}

# attrs PATH...: size, mtime, ctime and link count of each PATH.
attrs () {
	stat -c '%s %.9Y %.9Z %h' "$@"
}

# same_as_holder NAME: NAME under d/ shows on p1 and on p2 what p2's
# disk has.
same_as_holder () {
	local want
	want=$(attrs "$E2/d/$1") &&
	test_output "$want" attrs "$M1/d/$1" &&
	test_output "$want" attrs "$M2/d/$1"
}

# traps_in K T0: peer K has received more than T0 trap datagrams.
traps_in () {
	test "$(peer_traps_received "$1")" -gt "$2"
}

test_expect_success 'setup: p1 and p2, d/ held by p2 alone' '
	peers_net_setup 3 &&
	mkdir -p "$E2/d" "$E3/old" &&
	echo old >"$E3/old/f" &&
	peer_start 1 -o "$OPTS" &&
	peer_start 2 -o "$OPTS" &&
	peers_wait_up 1 2 &&
	ls -l "$M1/d" "$M2/d" >/dev/null
'

test_expect_success 'a file written on p1: p1 and p2 show the holder'"'"'s attributes' '
	printf hello >"$M1/d/a" &&
	same_as_holder a &&
	printf " more" >>"$M1/d/a" &&
	same_as_holder a &&
	test_output "hello more" cat "$M1/d/a" &&
	test_output "hello more" cat "$M2/d/a"
'

test_expect_success 'what p1 wrote is stat-ed and read again without a call' '
	for i in $(seq 10); do
		head -c $((i * 1000)) /dev/urandom >"$TRASH/src$i" || exit 1
	done &&
	t0=$(peer_traps_received 1) &&
	for i in $(seq 10); do
		cp "$TRASH/src$i" "$M1/d/f$i" || exit 1
	done &&
	wait_for "traps_in 1 $t0" &&
	s0=$(ops 1 stat) && r0=$(ops 1 read) &&
	for i in $(seq 10); do
		cmp "$TRASH/src$i" "$M1/d/f$i" &&
		test_output "$(attrs "$E2/d/f$i")" attrs "$M1/d/f$i" || exit 1
	done &&
	ls -l "$M1/d" >/dev/null &&
	test_output "$s0" ops 1 stat &&
	test_output "$r0" ops 1 read
'

test_expect_success 'an unlinked hard link: the other name shows the holder'"'"'s, unasked' '
	ln "$M1/d/f1" "$M1/d/l1" &&
	test_output 2 stat -c %h "$M1/d/l1" &&
	rm "$M1/d/f1" &&
	s0=$(ops 1 stat) &&
	test_output "$(attrs "$E2/d/l1")" attrs "$M1/d/l1" &&
	test_output 1 stat -c %h "$M1/d/l1" &&
	test_output "$s0" ops 1 stat &&
	test_output "$(attrs "$E2/d/l1")" attrs "$M2/d/l1"
'

test_expect_success 'another peer'"'"'s write is seen by p1 within a trap delay' '
	attrs "$M1/d/a" >/dev/null &&
	printf " from p2" >>"$M2/d/a" &&
	wait_for "test \"\$(attrs $M1/d/a)\" = \"\$(attrs $E2/d/a)\"" 3 &&
	test_output "hello more from p2" cat "$M1/d/a"
'

test_expect_success 'an open after another'"'"'s close reads its bytes, right after ours' '
	printf 11111 >"$M1/d/b" &&
	test_output 11111 cat "$M1/d/b" &&
	m=$(stat -c %.9Y "$E2/d/b") &&
	wait_for "printf 22222 >$M2/d/b &&
	    test \"\$(stat -c %.9Y $E2/d/b)\" != $m" &&
	test_output 22222 cat "$M1/d/b" &&
	same_as_holder b
'

test_expect_success 'a peer without the capability: asked, and agreeing' '
	PUFS_TEST_CAPS=$((0x7f)) peer_start 3 -o "$OPTS" &&
	peers_wait_up 1 3 &&
	s0=$(ops 1 stat) &&
	printf new >"$M1/old/n" &&
	printf " and more" >>"$M1/old/n" &&
	test_output "$(attrs "$E3/old/n")" attrs "$M1/old/n" &&
	test "$(ops 1 stat)" -gt "$s0" &&
	printf "from old" >"$M3/d/c" &&
	test_output "$(attrs "$E2/d/c")" attrs "$M3/d/c" &&
	wait_for "test \"\$(attrs $M1/d/c)\" = \"\$(attrs $E2/d/c)\"" 3 &&
	test_output "from old" cat "$M1/d/c"
'

test_done
