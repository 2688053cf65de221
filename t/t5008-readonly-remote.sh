#!/bin/bash
#
# A read-only export on p2 (-e DIR:ro): every modification of its
# objects fails with EROFS whichever peer asks, reads work, its disk
# does not change; a new entry in a merged directory goes to a writable
# holder instead.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"
test_require setfattr getfattr

# A listing of p2's export that shows any change: path, type, mode,
# size, owner, times, xattrs and a checksum of every file.
snapshot () {
	(cd "$E2" &&
	 find . -printf "%p %y %m %s %u %g %T@ %C@\n" | sort &&
	 find . -type f -exec sha256sum {} + | sort &&
	 getfattr -R -d -m - . 2>/dev/null)
}

test_expect_success 'setup: p2 exports read-only' '
	peers_net_setup 3 &&
	mkdir -p "$E2/ro/d" "$E2/ro/empty" "$E2/common" "$E1/common" \
		"$E3/common" &&
	echo "read only" >"$E2/ro/f" &&
	echo inside >"$E2/ro/d/g" &&
	ln -s f "$E2/ro/sl" &&
	echo c2 >"$E2/common/c2" &&
	echo root2 >"$E2/root2" &&
	setfattr -n user.tag -v kept "$E2/ro/f" &&
	snapshot >before &&
	peer_start 1 &&
	peer_start 2 --ro &&
	peer_start 3 &&
	peers_wait_all_up 3
'

test_expect_success 'reads of p2 objects work from every mount' '
	each_mount "
		test_output \"read only\" cat \$m/ro/f &&
		test_output inside cat \$m/ro/d/g &&
		test_output f readlink \$m/ro/sl &&
		test_output \"read only\" cat \$m/ro/sl &&
		test_output kept getfattr --only-values -n user.tag \$m/ro/f &&
		test_output \"d empty f sl\" sh -c \"ls \$m/ro | xargs\" &&
		test_output root2 cat \$m/root2 &&
		test_output c2 cat \$m/common/c2 &&
		test_errno ok access \$m/ro/f r"
'

test_expect_success 'opening p2 files for writing: EROFS' '
	each_mount "
		test_errno EROFS open \$m/ro/f wronly &&
		test_errno EROFS open \$m/ro/f rdwr &&
		test_errno EROFS open \$m/ro/f \"wronly|trunc\" &&
		test_errno EROFS open \$m/ro/f \"rdonly|trunc\" &&
		test_errno EROFS open \$m/ro/f \"wronly|append\" &&
		test_errno EROFS open \$m/root2 rdwr &&
		! sh -c \"echo x >>\$m/ro/f\" 2>/dev/null"
'

test_expect_success 'truncate, chmod, chown, utimes of p2 files: EROFS' '
	each_mount "
		test_errno EROFS truncate \$m/ro/f 0 &&
		test_errno EROFS chmod \$m/ro/f 600 &&
		test_errno EROFS chown \$m/ro/f 1 1 &&
		test_errno EROFS utime \$m/ro/f 1000000 &&
		test_errno EROFS chmod \$m/ro/d 700 &&
		test_errno EROFS lchown \$m/ro/sl 1 1 &&
		! touch \$m/ro/f 2>/dev/null &&
		! touch -d 2001-01-01 \$m/ro/d 2>/dev/null &&
		! truncate -s 0 \$m/ro/f 2>/dev/null"
'

test_expect_success 'removing, renaming, linking p2 objects: EROFS' '
	each_mount "
		test_errno EROFS unlink \$m/ro/f &&
		test_errno EROFS unlink \$m/ro/sl &&
		test_errno EROFS rmdir \$m/ro/empty &&
		test_errno EROFS rename \$m/ro/f \$m/ro/f2 &&
		test_errno EROFS rename \$m/ro/d \$m/ro/d2 &&
		test_errno EROFS rename \$m/common/c2 \$m/common/c2b &&
		test_errno EROFS link \$m/ro/f \$m/ro/f.hard &&
		! rm -f \$m/ro/f 2>/dev/null &&
		! mv \$m/ro/f \$m/ro/g 2>/dev/null"
'

test_expect_success 'creating inside a directory only p2 holds: EROFS' '
	each_mount "
		test_errno EROFS open \$m/ro/new \"wronly|creat\" &&
		test_errno EROFS mkdir \$m/ro/newdir &&
		test_errno EROFS symlink f \$m/ro/newlink &&
		test_errno EROFS mknod \$m/ro/fifo fifo &&
		test_errno EROFS mkdir \$m/ro/d/deeper &&
		! mkdir \$m/ro/newdir2 2>/dev/null &&
		! sh -c \"echo x >\$m/ro/d/new\" 2>/dev/null"
'

test_expect_success 'xattrs of p2 objects cannot change: EROFS' '
	each_mount "
		test_errno EROFS setxattr \$m/ro/f user.tag changed &&
		test_errno EROFS setxattr \$m/ro/f user.other x &&
		test_errno EROFS removexattr \$m/ro/f user.tag &&
		! setfattr -n user.x -v y \$m/ro/d 2>/dev/null"
'

test_expect_success 'mv of a p2 file to another peer fails and keeps it' '
	each_mount "! mv \$m/ro/f \$m/common/moved 2>/dev/null &&
		test_output \"read only\" cat \$m/ro/f" &&
	rm -f "$E1/common/moved" "$E3/common/moved"
'

test_expect_success 'p2s disk has not changed' '
	snapshot >after &&
	test_cmp before after
'

test_expect_success 'new entries of a merged directory go to writable peers' '
	each_mount "echo new\$k >\$m/common/new\$k &&
		test_path_is_missing $E2/common/new\$k &&
		{ test -f $E1/common/new\$k || test -f $E3/common/new\$k; }"
'

test_expect_success 'the same with read_only = yes in an [export] section' '
	peer_stop 2 &&
	cat >ro.ini <<-EOF &&
	[export:ro]
	path = $E2
	read_only = yes
	EOF
	peer_start 2 --no-export -c "$TRASH/ro.ini" &&
	peers_wait_all_up 3 &&
	each_mount_soon "test -f \$m/ro/f" &&
	each_mount "
		test_output \"read only\" cat \$m/ro/f &&
		test_errno EROFS open \$m/ro/f wronly &&
		test_errno EROFS truncate \$m/ro/f 0 &&
		test_errno EROFS chmod \$m/ro/f 600 &&
		test_errno EROFS unlink \$m/ro/f &&
		test_errno EROFS rename \$m/ro/f \$m/ro/f2 &&
		test_errno EROFS mkdir \$m/ro/newdir &&
		test_errno EROFS setxattr \$m/ro/f user.tag changed &&
		test_errno EROFS utime \$m/ro/f 1000000" &&
	snapshot >after &&
	test_cmp before after
'

test_done
