#!/bin/bash
#
# Warm listings: with attr_timeout = 60, the kernel keeps what p1 read
# of a directory held by p2 (entries, attributes, the listing itself and
# names found absent), so a warm `ls -l` sends no READDIR, LOOKUP or
# GETATTR; and every change p2 makes (create, remove, rename, chmod,
# touch, write, a name p1 had looked up and not found, a clash
# appearing) is seen by p1's warm `ls -l`, stat and cat within a trap
# delay and a margin, long before attr_timeout.  p1 runs with libfuse's
# request log (-d, PUFS_FUSE_DEBUG) so that requests are counted by
# kind.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"

peers_multicast 20 7400
MC="$MC,cache.attr_timeout=60,cache.trap_delay=0.1"

# soon CMD: CMD succeeds within 3 s: a trap (0.1 s) must have done it,
# the 60 s expiry cannot have.
soon () {
	wait_for "$1" 3
}

# lsl DIR: DIR's `ls -l` as mode, links, size, mtime and name (no
# total, no ACL or label mark).
lsl () {
	ls -ln --time-style=+%s "$1" |
	awk 'NR > 1 { sub(/[.+]$/, "", $1); print $1, $2, $5, $6, $7 }'
}

# lists_as_disk D: p1's warm `ls -l` of D shows what p2's disk holds,
# and D's own mtime and link count are the disk's.
lists_as_disk () {
	lsl "$M1/$1" >got.lsl && lsl "$E2/$1" >want.lsl &&
	cmp -s want.lsl got.lsl &&
	test "$(stat -c "%Y %h" "$M1/$1")" = "$(stat -c "%Y %h" "$E2/$1")"
}

# mark: note where p1's request log ends; asked: the requests p1's
# kernel sent since, as KIND=COUNT, sorted, forgets left out.
mark () {
	stat -c %s "$(peer_log 1)" >log.mark
}
asked () {
	tail -c +$(($(cat log.mark) + 1)) "$(peer_log 1)" |
	grep -o 'opcode: [A-Z_]*' | awk '{ print $2 }' |
	grep -v -x -e FORGET -e BATCH_FORGET | sort | uniq -c |
	awk '{ printf "%s%s=%s", (NR > 1 ? " " : ""), $2, $1 } END { print "" }'
}

# no_metadata_asked: since the mark, no READDIR, READDIRPLUS, LOOKUP or
# GETATTR reached p1.
no_metadata_asked () {
	local a
	a=$(asked) && echo "asked: $a" &&
	! echo " $a" | grep -q -e ' READDIR' -e ' LOOKUP' -e ' GETATTR'
}

test_expect_success 'setup: p2 holds d/ (20 files) and m/, p1 holds m/' '
	peers_net_setup 2 &&
	mkdir -p "$E2/d" "$E2/m" "$E1/m" &&
	for i in $(seq 20); do echo "file $i" >"$E2/d/f$i" || exit 1; done &&
	echo p1 >"$E1/m/mine" &&
	PUFS_FUSE_DEBUG=1 peer_start 1 -d -o "$MC" &&
	peer_start 2 -o "$MC" &&
	peers_wait_all_up 2 &&
	lists_as_disk d
'

test_expect_success 'a warm ls -l sends no READDIR, LOOKUP or GETATTR' '
	ls -l "$M1/d" >/dev/null &&
	ls -l "$M1/d" >/dev/null &&
	mark &&
	ls -l "$M1/d" >/dev/null &&
	no_metadata_asked &&
	# What is left: ls asking the first file for its security label
	# and ACL (answered EOPNOTSUPP, so ls asks no other file).  The
	# kernel opens and closes the directory without asking: pufs
	# answered its first OPENDIR with ENOSYS.
	a=$(asked) &&
	case $a in
	"GETXATTR=2" | "GETXATTR=1" | "") ;;
	*) echo "unexpected requests: $a"; exit 1 ;;
	esac &&
	# stat(1) asks statx for the birth time, which the kernel keeps
	# none of: its first costs one STATX, which libfuse answers ENOSYS,
	# and the kernel asks no more.
	stat "$M1/d/f6" >/dev/null &&
	mark &&
	stat "$M1/d/f7" "$M1/d/f8" >/dev/null &&
	echo "asked: $(asked)" &&
	test -z "$(asked)"
'

test_expect_success 'a file created on p2 is listed and read on p1' '
	echo fresh >"$M2/d/new" &&
	soon "lists_as_disk d" &&
	test_output fresh cat "$M1/d/new"
'

test_expect_success 'a file removed on p2 is gone on p1' '
	stat "$M1/d/f1" >/dev/null &&
	rm "$M2/d/f1" &&
	soon "lists_as_disk d" &&
	test_path_is_missing "$M1/d/f1"
'

test_expect_success 'a file renamed on p2 is renamed on p1' '
	stat "$M1/d/f2" >/dev/null &&
	mv "$M2/d/f2" "$M2/d/f2b" &&
	soon "lists_as_disk d" &&
	test_path_is_missing "$M1/d/f2" &&
	test_output "file 2" cat "$M1/d/f2b"
'

test_expect_success 'a chmod on p2 is seen on p1' '
	test_output 644 stat -c %a "$M1/d/f3" &&
	chmod 600 "$M2/d/f3" &&
	soon "lists_as_disk d" &&
	test_output 600 stat -c %a "$M1/d/f3"
'

test_expect_success 'a touch (mtime) on p2 is seen on p1' '
	stat "$M1/d/f4" >/dev/null &&
	touch -d @1000000000 "$M2/d/f4" &&
	soon "lists_as_disk d" &&
	test_output 1000000000 stat -c %Y "$M1/d/f4"
'

test_expect_success 'a write (size) on p2 is seen on p1' '
	test_output "file 5" cat "$M1/d/f5" &&
	echo more >>"$M2/d/f5" &&
	soon "lists_as_disk d" &&
	test_output 12 stat -c %s "$M1/d/f5" &&
	test_output "file 5
more" cat "$M1/d/f5"
'

# absent_cached NAME: a stat of d/NAME on p1 fails, and a second one
# is answered by the kernel alone.  (Absent names are not cached for a
# second after a change of the directory: wait_for that.)
absent_cached () {
	! stat "$M1/d/$1" >/dev/null 2>&1 && mark &&
	! stat "$M1/d/$1" >/dev/null 2>&1 && test -z "$(asked)"
}

test_expect_success 'a name p1 found absent appears when p2 creates it' '
	wait_for "absent_cached later" 5 &&
	echo late >"$M2/d/later" &&
	soon "test_output late cat $M1/d/later" &&
	soon "lists_as_disk d"
'

test_expect_success 'a directory made on p2 is listed on p1' '
	test_expect_code 1 stat "$M1/d/sub" &&
	mkdir "$M2/d/sub" &&
	soon "lists_as_disk d" &&
	test_path_is_dir "$M1/d/sub"
'

test_expect_success 'a clash made on p2 disk replaces the plain name on p1' '
	test_output "mine" ls "$M1/m" &&
	test_expect_code 1 stat "$M1/m/mine@$U2" &&
	echo p2 >"$E2/m/mine" &&
	soon "test_output p2 cat $M1/m/mine@$U2" &&
	soon "test \"\$(ls $M1/m)\" = \"mine@$U1
mine@$U2\"" &&
	test_path_is_missing "$M1/m/mine" &&
	test_output p1 cat "$M1/m/mine@$U1"
'

test_expect_success 'a change p1 makes shows in the directory at once' '
	lists_as_disk d &&
	touch -d @1000000000 "$E2/d" &&
	soon "lists_as_disk d" &&
	# A fresh listing of the root, which shows the attributes of d.
	ls "$M1" >/dev/null && echo own >"$M1/d/own" &&
	lists_as_disk d &&
	ls "$M1" >/dev/null && mkdir "$M1/d/ownsub" &&
	lists_as_disk d &&
	ls "$M1" >/dev/null && rmdir "$M1/d/ownsub" &&
	ls "$M1" >/dev/null && mv "$M1/d/own" "$M1/d/own2" &&
	lists_as_disk d &&
	ls "$M1" >/dev/null && rm "$M1/d/own2" &&
	lists_as_disk d
'

test_expect_success 'after the changes, a warm ls -l is warm again' '
	ls -l "$M1/d" >/dev/null &&
	ls -l "$M1/d" >/dev/null &&
	mark &&
	ls -l "$M1/d" >/dev/null &&
	no_metadata_asked
'

# stats: what p1 has asked of holders about names: STAT calls and
# LOCATE datagrams (multicast lookups).
stats () {
	peer_status 1 | "$PYTHON" -c '
import json, sys
s = json.load(sys.stdin)
print(s["ops"].get("stat", 0) + s["locate"]["sent"])'
}

test_expect_success 'a trap about one file: the other entries still answer on p1' '
	# The kernel forgets d, so p1 lists it again: fresh for 60 s
	# however long the tests above took.
	echo 3 >/proc/sys/vm/drop_caches &&
	ls -l "$M1/d" >/dev/null &&
	t0=$(peer_traps_received 1) &&
	echo again >>"$M2/d/f6" &&
	wait_for "test \$(peer_traps_received 1) -gt $t0" 3 &&
	# The kernel forgets all it holds, so it asks p1 again; d itself
	# may cost a STAT (the root listing may have expired).
	echo 3 >/proc/sys/vm/drop_caches &&
	stat "$M1/d" >/dev/null &&
	s0=$(stats) &&
	stat "$M1/d/f7" "$M1/d/f8" >/dev/null &&
	echo "asked for two untouched entries: $(($(stats) - s0))" &&
	test_output "$s0" stats &&
	# The one the trap was about shows what p2 wrote.
	test_output 13 stat -c %s "$M1/d/f6"
'

test_expect_success 'cleanup: stop both' '
	peer_stop 1 && peer_stop 2
'

test_done
