#!/bin/bash
#
# Read-only exports (-e DIR:ro, read_only = yes): every modifying call
# fails with EROFS and leaves the export untouched; reading works; a
# writable export merged beside a read-only one takes the new entries.

. "$(dirname "$0")/lib.sh"

R=$TRASH/ro
M=$TRASH/mnt

# Print everything about the tree DIR that a modification could change.
snap () {
	(
		cd "$1" &&
		find . -printf "%p %y %m %U %G %s %n %T@ %C@ %l\n" | sort &&
		find . -type f -exec sha256sum {} + | sort &&
		getfattr -h -R -d -m - . 2>/dev/null
	)
}

# Try every modifying call under the mount MNT; each must give EROFS.
every_modification_is_erofs () {
	local m=$1
	test_errno EROFS open "$m/new" "wronly|creat" &&
	test_errno EROFS open "$m/new" "rdwr|creat|excl" &&
	test_errno EROFS open "$m/f" wronly &&
	test_errno EROFS open "$m/f" rdwr &&
	test_errno EROFS open "$m/f" "wronly|append" &&
	test_errno EROFS open "$m/f" "rdonly|trunc" &&
	test_errno EROFS write "$m/f" X &&
	test_errno EROFS mkdir "$m/newdir" &&
	test_errno EROFS mkdir "$m/d/newdir" &&
	test_errno EROFS unlink "$m/f" &&
	test_errno EROFS unlink "$m/l" &&
	test_errno EROFS rmdir "$m/d" &&
	test_errno EROFS rename "$m/f" "$m/f2" &&
	test_errno EROFS rename "$m/f" "$m/full/g" &&
	test_errno EROFS rename "$m/d" "$m/d2" &&
	test_errno EROFS rename_noreplace "$m/f" "$m/f3" &&
	test_errno EROFS rename_exchange "$m/f" "$m/full/g" &&
	test_errno EROFS chmod "$m/f" 600 &&
	test_errno EROFS chmod "$m/d" 700 &&
	test_errno EROFS chown "$m/f" 1 1 &&
	test_errno EROFS lchown "$m/l" 1 1 &&
	test_errno EROFS truncate "$m/f" 0 &&
	test_errno EROFS truncate "$m/f" 100 &&
	test_errno EROFS utime "$m/f" 1000 &&
	test_errno EROFS lutime "$m/l" 1000 &&
	test_errno EROFS symlink target "$m/newlink" &&
	test_errno EROFS link "$m/f" "$m/newhard" &&
	test_errno EROFS setxattr "$m/f" user.b value &&
	test_errno EROFS setxattr "$m/f" user.a replaced &&
	test_errno EROFS removexattr "$m/f" user.a &&
	test_errno EROFS mknod "$m/newfifo" fifo &&
	test_errno EROFS mknod "$m/newchr" chr 1 3 &&
	test_errno EROFS mknod "$m/d/newreg" reg &&
	! touch "$m/f" 2>err && grep "Read-only file system" err &&
	! touch "$m/d/new" 2>err && grep "Read-only file system" err
}

# Reading works: content, listing, attributes, links, xattrs.
reading_works () {
	local m=$1
	test_output content cat "$m/f" &&
	test_output deep cat "$m/full/g" &&
	test_output f readlink "$m/l" &&
	test_output content cat "$m/l" &&
	(cd "$R" && ls -a . full d) >expect &&
	(cd "$m" && ls -a . full d) >actual &&
	test_cmp expect actual &&
	test_output "644 $(stat -c %Y "$R/f")" stat -c "%a %Y" "$m/f" &&
	test_output a-value getfattr --only-values -n user.a "$m/f" &&
	test_errno ok access "$m/f" r &&
	test_errno ok open "$m/f" rdonly
}

test_expect_success 'setup' '
	mkdir -p "$R/d" "$R/full" "$M" &&
	echo content >"$R/f" && chmod 644 "$R/f" &&
	echo deep >"$R/full/g" &&
	ln -s f "$R/l" &&
	setfattr -n user.a -v a-value "$R/f" &&
	snap "$R" >ro.snap
'

test_expect_success '-e DIR:ro mounts' '
	pufs_start ro1 "$M" -e "$R:ro" -o cache.attr_timeout=0.2
'

test_expect_success '-e DIR:ro: reading works' '
	reading_works "$M"
'

test_expect_success '-e DIR:ro: every modification fails with EROFS' '
	every_modification_is_erofs "$M"
'

test_expect_success '-e DIR:ro: the export is untouched' '
	snap "$R" >now.snap && test_cmp ro.snap now.snap &&
	pufs_stop ro1
'

test_expect_success 'read_only = yes in the file: the same' '
	cat >ro.ini <<-EOF &&
	[export:archive]
	path = $R
	read_only = yes
	EOF
	pufs_start ro2 "$M" -c "$TRASH/ro.ini" -o cache.attr_timeout=0.2 &&
	reading_works "$M" &&
	every_modification_is_erofs "$M" &&
	snap "$R" >now.snap && test_cmp ro.snap now.snap &&
	pufs_stop ro2
'

test_expect_success 'read-only at /ro beside a writable root' '
	mkdir -p "$TRASH/rw" &&
	cat >mixed.ini <<-EOF &&
	[export:rw]
	path = $TRASH/rw
	[export:archive]
	path = $R
	at = /ro
	read_only = yes
	EOF
	pufs_start mixed "$M" -c "$TRASH/mixed.ini" -o cache.attr_timeout=0.2 &&
	reading_works "$M/ro" &&
	every_modification_is_erofs "$M/ro" &&
	echo writable >"$M/w" &&
	test_output writable cat "$TRASH/rw/w" &&
	snap "$R" >now.snap && test_cmp ro.snap now.snap &&
	pufs_stop mixed
'

test_expect_success 'writable and read-only merged at /: new entries go to the writable one' '
	W=$TRASH/w2 &&
	mkdir -p "$W/d" &&
	echo w >"$W/wfile" &&
	pufs_start merged "$M" -e "$W" -e "$R:ro" -o cache.attr_timeout=0.2 &&
	test_output content cat "$M/f" &&
	test_output w cat "$M/wfile" &&
	echo new >"$M/d/made" &&
	test_output new cat "$W/d/made" &&
	test_path_is_missing "$R/d/made" &&
	echo top >"$M/top" &&
	test_output top cat "$W/top" &&
	test_errno EROFS open "$M/f" wronly &&
	test_errno EROFS unlink "$M/f" &&
	test_errno EROFS open "$M/full/new" "wronly|creat" &&
	test_errno EROFS chmod "$M/full/g" 600 &&
	test_errno EROFS,EXDEV link "$M/f" "$M/d/linked" &&
	test_errno EROFS,EXDEV link "$M/full/g" "$M/linked2" &&
	test_errno EROFS,EXDEV rename "$M/f" "$M/d/moved" &&
	test_errno EROFS,EXDEV rename "$M/full" "$M/d/movedfull" &&
	test_errno EROFS,EXDEV rename "$M/full/g" "$M/d/g" &&
	test_path_is_missing "$W/d/linked" && test_path_is_missing "$W/linked2" &&
	test_path_is_missing "$W/d/moved" && test_path_is_missing "$W/d/g" &&
	test_errno EROFS,EXDEV,ENOTEMPTY rename "$M/wfile" "$M/f" &&
	test_errno EROFS,EXDEV rename "$M/wfile" "$M/full/wfile" &&
	test_output w cat "$W/wfile" &&
	snap "$R" >now.snap && test_cmp ro.snap now.snap &&
	pufs_stop merged
'

test_done
