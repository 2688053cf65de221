#!/bin/bash
#
# Error returns on one peer: ENOENT, EEXIST, ENOTEMPTY, ENOTDIR, EISDIR,
# ENAMETOOLONG, EINVAL and ELOOP, each for the calls that can give it,
# with nothing changed in the export, and the daemon serving afterwards.

. "$(dirname "$0")/lib.sh"

E=$TRASH/export
M=$TRASH/mnt
L255=$(printf "%0255d" 0)
L256=$(printf "%0256d" 0)

test_expect_success 'setup' '
	mkdir -p "$E/dir/sub" "$E/empty" "$M" &&
	echo f >"$E/file" &&
	echo g >"$E/dir/g" &&
	ln -s file "$E/link" &&
	ln -s nowhere "$E/dangling" &&
	pufs_start alpha "$M" -e "$E" -o cache.attr_timeout=0.2 &&
	(cd "$E" && find . -printf "%p %y %m %s %n\n" | sort) >"$TRASH/tree.before"
'

test_expect_success 'ENOENT' '
	test_errno ENOENT stat "$M/nope" &&
	test_errno ENOENT lstat "$M/nope" &&
	test_errno ENOENT open "$M/nope" rdonly &&
	test_errno ENOENT open "$M/nope" wronly &&
	test_errno ENOENT open "$M/nodir/new" "wronly|creat" &&
	test_errno ENOENT mkdir "$M/nodir/new" &&
	test_errno ENOENT unlink "$M/nope" &&
	test_errno ENOENT rmdir "$M/nope" &&
	test_errno ENOENT rename "$M/nope" "$M/nope2" &&
	test_errno ENOENT rename "$M/file" "$M/nodir/file" &&
	test_errno ENOENT readlink "$M/nope" &&
	test_errno ENOENT chmod "$M/nope" 644 &&
	test_errno ENOENT chown "$M/nope" 1 1 &&
	test_errno ENOENT truncate "$M/nope" 0 &&
	test_errno ENOENT utime "$M/nope" 0 &&
	test_errno ENOENT link "$M/nope" "$M/nope2" &&
	test_errno ENOENT symlink t "$M/nodir/s" &&
	test_errno ENOENT mknod "$M/nodir/fifo" fifo &&
	test_errno ENOENT setxattr "$M/nope" user.a v &&
	test_errno ENOENT listxattr "$M/nope" &&
	test_errno ENOENT stat "$M/dangling"
'

test_expect_success 'EEXIST' '
	test_errno EEXIST mkdir "$M/dir" &&
	test_errno EEXIST mkdir "$M/file" &&
	test_errno EEXIST mkdir "$M/link" &&
	test_errno EEXIST open "$M/file" "wronly|creat|excl" &&
	test_errno EEXIST open "$M/dir" "wronly|creat|excl" &&
	test_errno EEXIST open "$M/dangling" "wronly|creat|excl" &&
	test_errno EEXIST symlink t "$M/file" &&
	test_errno EEXIST link "$M/file" "$M/dir/g" &&
	test_errno EEXIST mknod "$M/file" fifo &&
	test_errno EEXIST rename_noreplace "$M/file" "$M/dir/g"
'

test_expect_success 'ENOTEMPTY' '
	test_errno ENOTEMPTY rmdir "$M/dir" &&
	test_errno ENOTEMPTY,EEXIST rename "$M/empty" "$M/dir" &&
	mkdir "$M/dir2" &&
	test_errno ENOTEMPTY,EEXIST rename "$M/dir2" "$M/dir" &&
	rmdir "$M/dir2"
'

test_expect_success 'a file made on disk makes its directory non-empty' '
	mkdir "$M/late" &&
	: >"$E/late/f" &&
	wait_for "test_errno ENOTEMPTY rmdir \"$M/late\"" 5 &&
	rm "$E/late/f" &&
	wait_for "test_errno ok rmdir \"$M/late\"" 5
'

test_expect_success 'ENOTDIR' '
	test_errno ENOTDIR stat "$M/file/x" &&
	test_errno ENOTDIR open "$M/file/x" "wronly|creat" &&
	test_errno ENOTDIR mkdir "$M/file/x" &&
	test_errno ENOTDIR rmdir "$M/file" &&
	test_errno ENOTDIR open "$M/file" "rdonly|directory" &&
	test_errno ENOTDIR rename "$M/empty" "$M/file" &&
	test_errno ENOTDIR listdir "$M/file"
'

test_expect_success 'EISDIR' '
	test_errno EISDIR open "$M/dir" wronly &&
	test_errno EISDIR open "$M/dir" rdwr &&
	test_errno EISDIR unlink "$M/dir" &&
	test_errno EISDIR rename "$M/file" "$M/empty" &&
	test_errno EISDIR read "$M/dir"
'

test_expect_success 'ENAMETOOLONG for a 256-byte name, 255 works' '
	test_errno ENAMETOOLONG open "$M/$L256" "wronly|creat" &&
	test_errno ENAMETOOLONG stat "$M/$L256" &&
	test_errno ENAMETOOLONG mkdir "$M/$L256" &&
	test_errno ENAMETOOLONG symlink t "$M/$L256" &&
	test_errno ENAMETOOLONG link "$M/file" "$M/$L256" &&
	test_errno ENAMETOOLONG rename "$M/file" "$M/$L256" &&
	test_errno ENAMETOOLONG mknod "$M/$L256" fifo &&
	test_errno ok mkdir "$M/$L255" &&
	test_path_is_dir "$E/$L255" &&
	rmdir "$M/$L255"
'

test_expect_success 'ENAMETOOLONG for a symlink target over PATH_MAX' '
	test_errno ENAMETOOLONG symlink "$(printf "%04096d" 0)" "$M/longlink" &&
	test_path_is_missing "$E/longlink"
'

test_expect_success 'EINVAL: a directory into itself' '
	mkdir -p "$M/self/child" &&
	test_errno EINVAL rename "$M/self" "$M/self/child/self" &&
	test_errno EINVAL rmdir "$M/self/child/." &&
	rm -r "$M/self"
'

test_expect_success 'ELOOP: O_NOFOLLOW on a symlink, a symlink loop' '
	test_errno ELOOP open "$M/link" "rdonly|nofollow" &&
	ln -s loop2 "$M/loop1" && ln -s loop1 "$M/loop2" &&
	test_errno ELOOP stat "$M/loop1" &&
	rm "$M/loop1" "$M/loop2"
'

test_expect_success 'EXDEV: link and rename to outside the mount' '
	: >"$TRASH/outside-file" &&
	test_errno EXDEV link "$TRASH/outside-file" "$M/in" &&
	test_errno EXDEV rename "$M/file" "$TRASH/moved" &&
	test_path_is_missing "$E/in" && test_path_is_file "$E/file"
'

test_expect_success 'the failed calls changed nothing' '
	(cd "$E" && find . -printf "%p %y %m %s %n\n" | sort) >tree.after &&
	test_cmp tree.before tree.after
'

test_expect_success 'the daemon still serves' '
	test_output f cat "$M/file" &&
	echo h >"$M/new" && test_output h cat "$E/new" &&
	pufs_stop alpha
'

test_done
