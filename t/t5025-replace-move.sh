#!/bin/bash
#
# A small file saved over another peer's file moves in one request: the
# holder makes the temporary copy, writes it, makes it durable, gives it
# the source's times and mode and renames it over the destination
# (REPLACE, PROTOCOL.md).  A holder that does not know REPLACE (p3 plays
# an older version: PUFS_TEST_CAPS leaves the capability out) gets the
# steps one by one and the save works the same.  A holder without room
# fails the save with ENOSPC and both names stay as they were.  A file
# that gained a hard link on its holder's disk just after it was made
# (p1's node of it still says one link) stays EXDEV: the holder's answer
# decides, not the node; and a target removed just before the rename
# (the kernel's lookup found it gone) is not taken from its node.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"

# op K NAME: peer K's count of calls of type NAME so far.
op () {
	peer_status "$1" | "$PYTHON" -c \
	    "import json,sys; print(json.load(sys.stdin)['ops'].get('$2', 0))"
}

# moves K FIELD: a counter of peer K's moves.
moves () {
	peer_status "$1" | "$PYTHON" -c \
	    "import json,sys; print(json.load(sys.stdin)['moves']['$2'])"
}

# temps: the hidden temporary copies left anywhere.
temps () {
	find "$TRASH" -name '.pufs-move.*' 2>/dev/null | wc -l
}

# save DIR NAME TEXT: what editors do: a temporary file beside NAME
# with TEXT, mode 0640 and mtime 1000000000, fsynced, renamed over it.
save () {
	"$PYTHON" - "$@" <<-\EOF
	import os, sys, tempfile
	d, name, text = sys.argv[1:4]
	fd, tmp = tempfile.mkstemp(dir=d, prefix="." + name + ".")
	os.write(fd, text.encode())
	os.fchmod(fd, 0o640)
	os.fsync(fd)
	os.close(fd)
	os.utime(tmp, (1000000000, 1000000000))
	os.replace(tmp, os.path.join(d, name))
	EOF
}

test_expect_success 'setup: p1, p2 and p3 (without REPLACE) share a directory' '
	peers_net_setup 3 &&
	for k in 1 2 3; do
		mkdir -p "$(peer_export $k)/shared" || exit 1
	done &&
	mkdir "$E1/sub" "$E2/sub" &&
	echo "two v1" >"$E2/shared/two.txt" &&
	echo "three v1" >"$E3/shared/three.txt" &&
	mkdir -p "$TRASH/small" &&
	peers_mount_tmpfs "$TRASH/small" 1M &&
	mkdir -p "$TRASH/small/shared" &&
	echo "full v1" >"$TRASH/small/shared/full.txt" &&
	peer_start 1 -o peer.create_policy=local &&
	peer_start 2 -e "$TRASH/small" &&
	PUFS_TEST_CAPS=3 peer_start 3 &&
	peers_wait_all_up 3
'

test_expect_success 'a save over p2 file is one REPLACE, with the times and mode' '
	r0=$(op 1 replace) && n0=$(op 1 rename) && c0=$(op 1 create) &&
	d0=$(moves 1 done) &&
	save "$M1/shared" two.txt "two v2" &&
	test_output "two v2" cat "$E2/shared/two.txt" &&
	test "$(stat -c "%a %Y" "$E2/shared/two.txt")" = "640 1000000000" &&
	test "$(ls -A "$E1/shared")" = "" &&
	test "$(op 1 replace)" = $((r0 + 1)) &&
	test "$(op 1 rename)" = "$n0" &&
	test "$(op 1 create)" = $((c0 + 1)) &&
	test "$(moves 1 done)" = $((d0 + 1)) &&
	test "$(temps)" = 0 &&
	each_mount_soon "test \"\$(cat \$m/shared/two.txt)\" = \"two v2\""
'

test_expect_success 'a save over the file of a peer without REPLACE goes step by step' '
	n0=$(op 1 rename) && d0=$(moves 1 done) &&
	save "$M1/shared" three.txt "three v2" &&
	test_output "three v2" cat "$E3/shared/three.txt" &&
	test "$(stat -c "%a %Y" "$E3/shared/three.txt")" = "640 1000000000" &&
	test "$(ls -A "$E1/shared")" = "" &&
	test "$(op 1 rename)" = $((n0 + 1)) &&
	test "$(moves 1 done)" = $((d0 + 1)) &&
	test "$(temps)" = 0 &&
	each_mount_soon "test \"\$(cat \$m/shared/three.txt)\" = \"three v2\""
'

test_expect_success 'a REPLACE the holder has no room for: ENOSPC, both names kept' '
	f0=$(moves 1 failed) &&
	{ dd if=/dev/zero of="$TRASH/small/fill" bs=4k 2>/dev/null; true; } &&
	head -c 65536 /dev/urandom >"$M1/shared/new.bin" &&
	test_path_is_file "$E1/shared/new.bin" &&
	test_errno ENOSPC rename "$M1/shared/new.bin" "$M1/shared/full.txt" &&
	test_output "full v1" cat "$TRASH/small/shared/full.txt" &&
	test "$(stat -c %s "$E1/shared/new.bin")" = 65536 &&
	test "$(moves 1 failed)" = $((f0 + 1)) &&
	test "$(temps)" = 0 &&
	test_output "full v1" cat "$M1/shared/full.txt" &&
	rm "$TRASH/small/fill" "$M1/shared/new.bin"
'

test_expect_success 'a file hard-linked on its disk just after it was made: EXDEV' '
	"$PYTHON" - "$M1/shared" "$E1" <<-\EOF &&
	import errno, os, sys
	m, e1 = sys.argv[1:3]
	with open(os.path.join(m, "fresh"), "w") as f:
	    f.write("fresh\n")
	os.link(os.path.join(e1, "shared", "fresh"), os.path.join(e1, "fresh2"))
	try:
	    os.rename(os.path.join(m, "fresh"), os.path.join(m, "two.txt"))
	except OSError as x:
	    sys.exit(0 if x.errno == errno.EXDEV else "got %s" % x)
	sys.exit("the rename went through")
	EOF
	test_output "two v2" cat "$E2/shared/two.txt" &&
	test "$(stat -c %h "$E1/shared/fresh")" = 2 &&
	test "$(temps)" = 0
'

test_expect_success 'a target gone just before the rename: the file stays where it is' '
	echo "gone v1" >"$E2/sub/gone.txt" &&
	wait_for "stat $M1/sub/gone.txt" 3 &&
	"$PYTHON" - "$M1/sub" "$M2/sub" <<-\EOF &&
	import os, sys
	m1, m2 = sys.argv[1:3]
	os.stat(os.path.join(m1, "gone.txt"))
	os.unlink(os.path.join(m2, "gone.txt"))
	with open(os.path.join(m1, "new.txt"), "w") as f:
	    f.write("new\n")
	os.rename(os.path.join(m1, "new.txt"), os.path.join(m1, "gone.txt"))
	EOF
	test_output new cat "$E1/sub/gone.txt" &&
	test_path_is_missing "$E2/sub/gone.txt" &&
	test_output new cat "$M1/sub/gone.txt"
'

test_done
