#!/bin/bash
#
# The check before a create, answered from fresh listings: in a
# directory merged from p1 and p2, with both copies' listings cached
# and kept by traps, p1 knows whether a name is free without asking
# anyone (a name p2 holds is EEXIST, a free one is made, and no holder
# is asked: `pufs status` counts the checks and the holders asked).
# Echoes of p1's own changes (p2's traps about them, p1's own disk
# watch, a rename) leave the names fresh.  An expired listing, or one a trap made
# stale, sends the check to the holders again.  A name made on p2's
# disk whose trap has not come yet (p2 holds its traps for trap_delay =
# 30 s, released by moving its clock) is not known to p1: a create
# placed on p2 gets p2's own EEXIST (O_EXCL) or opens what is there,
# one placed on p1 makes p1's copy beside p2's, shown as a clash once
# the trap comes; nothing is lost either way.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"

# checks K: peer K's name checks so far, "DONE LOCAL CALLS".
checks () {
	peer_status "$1" | "$PYTHON" -c '
import json, sys
c = json.load(sys.stdin)["checks"]
print(c["done"], c["local"], c["calls"])'
}

# checks_since K FILE: the checks of peer K since checks wrote FILE.
checks_since () {
	local d0 l0 c0 d1 l1 c1
	read -r d0 l0 c0 <"$2" && read -r d1 l1 c1 < <(checks "$1") &&
	echo "$((d1 - d0)) $((l1 - l0)) $((c1 - c0))"
}

# flush_p2: p2 sends the traps it holds; wait until p1 has them.
flush_p2 () {
	peer_flush_traps 2 1
}

OPTS=cache.attr_timeout=60,peer.dead_after=120

test_expect_success 'setup: p1 and p2, a directory merged from both' '
	peers_net_setup 2 &&
	mkdir -p "$E1/m" "$E2/m/hdir" &&
	echo held >"$E2/m/held" &&
	for i in 1 2 3; do echo g$i >"$E2/m/gone$i" || exit 1; done &&
	peer_start 1 -o "$OPTS" &&
	peer_start 2 -o "$OPTS,cache.trap_delay=30" &&
	peers_wait_all_up 2
'

test_expect_success 'fresh listings: a name p2 holds is EEXIST, nobody asked' '
	ls "$M1/m" >/dev/null &&
	checks 1 >c0 &&
	test_errno EEXIST open "$M1/m/held@$U1" "creat|excl|wronly" &&
	test_errno EEXIST open "$M1/m/held@$U1" "creat|wronly" &&
	test_errno EEXIST mkdir "$M1/m/held@$U1" &&
	test_errno EEXIST symlink target "$M1/m/held@$U1" &&
	test_errno EEXIST mkdir "$M1/m/hdir@$U1" &&
	test_errno EEXIST open "$M1/m/held" "creat|excl|wronly" &&
	test_output "5 5 0" checks_since 1 c0 &&
	test_path_is_missing "$E1/m/held" &&
	test_path_is_missing "$E1/m/hdir" &&
	test_output held cat "$E2/m/held"
'

test_expect_success 'fresh listings: a free name is made here, nobody asked' '
	checks 1 >c0 &&
	echo one >"$M1/m/new1" &&
	test_errno ok open "$M1/m/new2" "creat|excl|wronly" &&
	mkdir "$M1/m/newd" &&
	ln -s target "$M1/m/news" &&
	mkfifo "$M1/m/newp" &&
	echo deep >"$M1/m/newd/f" &&
	for i in $(seq 20); do echo $i >"$M1/m/many$i" || exit 1; done &&
	test_output "25 25 0" checks_since 1 c0 &&
	test_output one cat "$E1/m/new1" &&
	test_output deep cat "$E1/m/newd/f" &&
	test_output 20 cat "$E1/m/many20" &&
	test_output 1 holders m/new2 &&
	test_output 1 holders m/newp
'

test_expect_success 'the traps of our own changes on p2 leave the names fresh' '
	echo on2 >"$M1/m/on2@$U2" &&
	rm "$M1/m/gone1" &&
	test_output on2 cat "$E2/m/on2" &&
	test_path_is_missing "$E2/m/gone1" &&
	flush_p2 &&
	checks 1 >c0 &&
	test_errno EEXIST open "$M1/m/on2@$U1" "creat|excl|wronly" &&
	echo again >"$M1/m/gone1" &&
	test_output "2 2 0" checks_since 1 c0 &&
	test_output again cat "$E1/m/gone1"
'

test_expect_success 'so do those of a file of ours moved over one of p2' '
	echo moved >"$M1/m/tmpx" &&
	mv "$M1/m/tmpx" "$M1/m/held" &&
	test_output moved cat "$E2/m/held" &&
	test_path_is_missing "$E1/m/tmpx" &&
	flush_p2 &&
	checks 1 >c0 &&
	echo after >"$M1/m/aftermv" &&
	test_errno EEXIST open "$M1/m/held@$U1" "creat|excl|wronly" &&
	test_errno ok open "$M1/m/tmpx@$U2" "creat|excl|wronly" &&
	test_output "3 3 0" checks_since 1 c0 &&
	test_output after cat "$E1/m/aftermv" &&
	test_output 2 holders m/tmpx
'

test_expect_success 'expired listings: the check asks the holders' '
	peer_advance 1 61000 &&
	checks 1 >c0 &&
	test_errno EEXIST open "$M1/m/held@$U1" "creat|excl|wronly" &&
	echo late >"$M1/m/late" &&
	read -r d l c < <(checks_since 1 c0) &&
	test "$d $l" = "2 0" && test "$c" -ge 4 &&
	test_output late cat "$E1/m/late" &&
	ls "$M1/m" >/dev/null &&
	checks 1 >c0 &&
	echo relisted >"$M1/m/relisted" &&
	test_output "1 1 0" checks_since 1 c0
'

test_expect_success 'a name made on p2 whose trap has not come: p2 says EEXIST' '
	ls "$M1/m" >/dev/null &&
	echo race >"$E2/m/race" &&
	checks 1 >c0 &&
	test_errno EEXIST open "$M1/m/race@$U2" "creat|excl|wronly" &&
	test_output "1 1 0" checks_since 1 c0 &&
	test_output race cat "$E2/m/race" &&
	test_errno ok open "$M1/m/race@$U2" "creat|wronly" &&
	test_output race cat "$E2/m/race" &&
	test_path_is_missing "$E1/m/race"
'

test_expect_success 'placed here instead: both copies kept, a clash once known' '
	echo theirs >"$E2/m/race2" &&
	echo mine >"$M1/m/race2" &&
	test_output mine cat "$E1/m/race2" &&
	test_output theirs cat "$E2/m/race2" &&
	echo three >"$E2/m/race3" &&
	flush_p2 &&
	checks 1 >c0 &&
	test_errno EEXIST open "$M1/m/race3@$U1" "creat|excl|wronly" &&
	read -r d l c < <(checks_since 1 c0) &&
	test "$d $l" = "1 0" && test "$c" -ge 1 &&
	wait_for "ls \"$M1/m\" | grep -qx \"race2@$U2\"" &&
	ls "$M1/m" >names &&
	grep -qx "race2@$U1" names &&
	! grep -qx race2 names &&
	test_output mine cat "$M1/m/race2@$U1" &&
	test_output theirs cat "$M1/m/race2@$U2" &&
	test_output three cat "$M1/m/race3"
'

test_done
