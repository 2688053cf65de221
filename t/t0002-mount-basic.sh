#!/bin/bash
#
# One peer, one export: the mount comes up, shows the export, carries
# changes both ways, reports the right st_blksize and stable inode
# numbers, and goes away cleanly on SIGTERM.

. "$(dirname "$0")/lib.sh"

E=$TRASH/export
M=$TRASH/mnt

test_expect_success 'setup: an export with a small tree' '
	mkdir -p "$E/dir/sub" "$M" &&
	echo hello >"$E/hello" &&
	echo nested >"$E/dir/sub/file" &&
	ln -s hello "$E/link" &&
	: >"$E/empty"
'

test_expect_success 'pufs mount comes up and logs its ready line' '
	pufs_start alpha "$M" -e "$E" -o cache.attr_timeout=0.2 &&
	grep "ready: mounted" "$(pufs_log alpha)" &&
	test_output "directory 131072" stat -c "%F %o" "$M"
'

test_expect_success 'the mount is a FUSE file system' '
	awk -v d="$M" "\$5 == d" /proc/self/mountinfo >mi &&
	cat mi &&
	test $(wc -l <mi) = 1 &&
	sed "s/.* - //" mi >fstype &&
	grep "^fuse" fstype
'

test_expect_success 'the root lists exactly the export' '
	ls -a "$E" >expect &&
	ls -a "$M" >actual &&
	test_cmp expect actual &&
	(cd "$E" && find . | sort) >expect &&
	(cd "$M" && find . | sort) >actual &&
	test_cmp expect actual
'

test_expect_success 'files read the same through the mount' '
	test_output hello cat "$M/hello" &&
	test_output nested cat "$M/dir/sub/file" &&
	test_output hello readlink "$M/link" &&
	test_output hello cat "$M/link" &&
	test -f "$M/empty" && ! test -s "$M/empty"
'

test_expect_success 'attributes match the export' '
	for f in hello dir dir/sub/file link empty; do
		stat -c "%n %F %s %a %h %u %g %Y" "$E/$f" |
			sed "s|$E|X|" >>expect &&
		stat -c "%n %F %s %a %h %u %g %Y" "$M/$f" |
			sed "s|$M|X|" >>actual || return 1
	done &&
	test_cmp expect actual
'

test_expect_success 'st_blksize is the block size, 131072 by default' '
	test_output 131072 stat -c %o "$M/hello" &&
	test_output 131072 stat -c %o "$M/dir"
'

test_expect_success 'inode numbers are stable and distinct' '
	a=$(stat -c %i "$M/hello") &&
	b=$(stat -c %i "$M/dir/sub/file") &&
	r=$(stat -c %i "$M/dir") &&
	test "$a" != "$b" && test "$a" != "$r" && test "$b" != "$r" &&
	pufs_advance "$(pufs_sock alpha)" 500 &&
	wait_for "fuse_asks $(pufs_sock alpha) $M/dir/sub/file" 5 &&
	wait_for "fuse_asks $(pufs_sock alpha) $M/hello" 5 &&
	test_output "$a" stat -c %i "$M/hello" &&
	ls -R "$M" >/dev/null &&
	test_output "$b" stat -c %i "$M/dir/sub/file" &&
	test_output "$r" stat -c %i "$M/dir" &&
	test_output "$a" stat -c %i "$M/hello"
'

test_expect_success 'a file made through the mount is in the export' '
	echo made-in-mount >"$M/new" &&
	test_output made-in-mount cat "$E/new" &&
	mkdir "$M/newdir" &&
	test_path_is_dir "$E/newdir"
'

test_expect_success 'a file made in the export appears in the mount' '
	echo made-on-disk >"$E/ondisk" &&
	wait_for "test -f \"$M/ondisk\"" 5 &&
	test_output made-on-disk cat "$M/ondisk" &&
	mkdir "$E/diskdir" &&
	wait_for "test -d \"$M/diskdir\"" 5
'

test_expect_success 'changes made in the export show in the mount' '
	echo changed-on-disk >"$E/hello" &&
	wait_for "test \"\$(cat $M/hello)\" = changed-on-disk" 5 &&
	rm "$E/ondisk" &&
	wait_for "! test -e $M/ondisk" 5 &&
	mv "$E/diskdir" "$E/diskdir2" &&
	wait_for "test -d $M/diskdir2 && ! test -e $M/diskdir" 5 &&
	chmod 600 "$E/hello" &&
	wait_for "test \$(stat -c %a $M/hello) = 600" 5
'

test_expect_success 'statfs answers' '
	stat -f -c "%S %b %a %l" "$M" >sf &&
	cat sf &&
	read bsize blocks avail namemax <sf &&
	test "$bsize" -gt 0 && test "$blocks" -gt 0 &&
	test "$namemax" -ge 255 &&
	df "$M"
'

test_expect_success 'SIGTERM unmounts and exits 0, the export intact' '
	(cd "$E" && find . -printf "%p %y %s %m\n" | sort) >before &&
	pufs_stop alpha &&
	! is_mounted "$M" &&
	(cd "$E" && find . -printf "%p %y %s %m\n" | sort) >after &&
	test_cmp before after
'

test_expect_success 'a second start serves the same data' '
	pufs_start alpha2 "$M" -e "$E" &&
	test_output changed-on-disk cat "$M/hello" &&
	test_output made-in-mount cat "$M/new" &&
	pufs_stop alpha2
'

test_expect_success 'a daemon with no exports mounts an empty root' '
	mkdir -p "$TRASH/m0" &&
	pufs_start bare "$TRASH/m0" &&
	test_output "" ls -A "$TRASH/m0" &&
	test -d "$TRASH/m0" &&
	pufs_stop bare
'

test_done
