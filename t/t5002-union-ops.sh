#!/bin/bash
#
# Every file operation on objects held by another peer, done through a
# mount and checked on the holder's disk and through every mount: read,
# write, append, truncate (O_RDONLY | O_TRUNC empties a file, as Linux
# does), chmod, chown (to another owner EPERM: the holders run as root
# and lend no privilege), utimes, mkdir, rmdir, symlink, hard link,
# rename (fstat of the file renamed over, or of a removed directory,
# shows no link; onto another name of the same file, nothing), an open
# file whose name was given to another on the holder (its descriptor
# keeps the old file), xattrs, fallocate, fsync, mmap; a 64 MiB file, a
# directory of 3000 entries, and ls -lR that agrees across peers.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"
test_require setfattr getfattr fallocate sha256sum

test_expect_success 'setup: three peers, each with a directory of its own' '
	peers_net_setup 3 &&
	for k in 1 2 3; do
		d=$(peer_export $k)/r$k &&
		mkdir -p "$d/sub" &&
		echo "read me from p$k" >"$d/f" &&
		echo "overwrite me" >"$d/w" &&
		echo "rename me" >"$d/a" &&
		echo "link me" >"$d/l" &&
		echo "xattr me" >"$d/x" &&
		head -c 1048576 /dev/urandom >"$d/m" &&
		head -c 300000 /dev/urandom >"$d/p" &&
		: >"$d/fs" || exit 1
	done &&
	mkdir "$E3/r3/many" &&
	(cd "$E3/r3/many" && seq -f "entry-%04g" 3000 | xargs touch) &&
	peers_start_all 3 &&
	peers_wait_all_up 3
'

# remote_ops A H: the operations done through peer A's mount on objects
# of peer H (in rH, a directory only H holds).
remote_ops () {
	A=$1 H=$2
	MA=$(peer_mnt $A)/r$H
	EH=$(peer_export $H)/r$H

	test_expect_success "p$A reads a file of p$H" '
		cmp "$EH/f" "$MA/f" &&
		cmp "$EH/m" "$MA/m" &&
		each_mount "cmp \"$EH/m\" \"\$m/r$H/m\""
	'

	test_expect_success "p$A overwrites and appends to a file of p$H" '
		printf "new content\n" >"$MA/w" &&
		test_output "new content" cat "$EH/w" &&
		each_mount "test_output \"new content\" cat \$m/r$H/w" &&
		echo more >>"$MA/w" &&
		printf "new content\nmore\n" >expect &&
		test_cmp expect "$EH/w" &&
		each_mount "test_cmp expect \$m/r$H/w"
	'

	test_expect_success "close-to-open: a size change p$A closed, seen at once" '
		echo "first" >"$EH/cto" &&
		each_mount_soon "test -f \$m/r$H/cto" &&
		each_mount "stat \$m/r$H/cto >/dev/null && cat \$m/r$H/cto >/dev/null" &&
		echo "appended by p$A" >>"$MA/cto" &&
		printf "first\nappended by p$A\n" >expect &&
		test_cmp expect "$EH/cto" &&
		each_mount "test_cmp expect \$m/r$H/cto"
	'

	test_expect_success "close-to-open: same-size rewrite p$A closed, seen at once" '
		head -c 200000 /dev/urandom >"$EH/cto2" &&
		each_mount_soon "test -f \$m/r$H/cto2" &&
		each_mount "cmp \"$EH/cto2\" \$m/r$H/cto2" &&
		cp "$EH/cto2" expect &&
		head -c 4096 /dev/urandom >patch &&
		dd if=patch of=expect bs=4096 seek=20 conv=notrunc status=none &&
		dd if=patch of="$MA/cto2" bs=4096 seek=20 conv=notrunc status=none &&
		cmp expect "$EH/cto2" &&
		each_mount "cmp expect \$m/r$H/cto2"
	'

	test_expect_success "p$A writes in the middle of a file of p$H" '
		cp "$EH/p" p.expect &&
		head -c 12288 /dev/urandom >patch &&
		dd if=patch of=p.expect bs=4096 seek=10 conv=notrunc status=none &&
		dd if=patch of="$MA/p" bs=4096 seek=10 conv=notrunc status=none &&
		cmp p.expect "$EH/p" &&
		each_mount "cmp p.expect \$m/r$H/p"
	'

	test_expect_success "p$A truncates a file of p$H" '
		truncate -s 3 "$MA/w" &&
		test_output 3 stat -c %s "$EH/w" &&
		test_output "new" cat "$EH/w" &&
		each_mount "test_output new cat \$m/r$H/w" &&
		truncate -s 100000 "$MA/w" &&
		test_output 100000 stat -c %s "$EH/w" &&
		{ printf new; head -c 99997 /dev/zero; } >expect &&
		cmp expect "$EH/w" &&
		each_mount "cmp expect \$m/r$H/w" &&
		"$PYTHON" "$_LIB/op.py" ftruncate "$MA/w" 10 &&
		test_output 10 stat -c %s "$EH/w" &&
		each_mount_soon "test \$(stat -c %s \$m/r$H/w) = 10" &&
		cp "$EH/w" "$EH/rt" &&
		wait_for "test -e \"$MA/rt\"" 5 &&
		"$PYTHON" "$_LIB/op.py" open "$MA/rt" "rdonly|trunc" &&
		test_output 0 stat -c %s "$EH/rt" &&
		each_mount_soon "test \$(stat -c %s \$m/r$H/rt) = 0"
	'

	test_expect_success "p$A changes mode, owner and times of p$H files" '
		chmod 640 "$MA/f" &&
		test_output 640 stat -c %a "$EH/f" &&
		test_output 640 stat -c %a "$MA/f" &&
		each_mount_soon "test \$(stat -c %a \$m/r$H/f) = 640" &&
		test_errno EPERM chown "$MA/f" 1234 2345 &&
		test_errno EPERM chown "$MA/f" -1 2345 &&
		test_output "0 0" stat -c "%u %g" "$EH/f" &&
		chown 0:0 "$MA/f" &&
		each_mount_soon "test \"\$(stat -c \"%u %g\" \$m/r$H/f)\" = \"0 0\"" &&
		touch -d "2001-02-03 04:05:06" "$MA/f" &&
		test_output 981173106 stat -c %Y "$EH/f" &&
		each_mount_soon "test \$(stat -c %Y \$m/r$H/f) = 981173106" &&
		touch -a -d "2002-02-03 04:05:06" "$MA/f" &&
		test_output "1012709106 981173106" stat -c "%X %Y" "$EH/f" &&
		chmod 700 "$MA/sub" &&
		test_output 700 stat -c %a "$EH/sub"
	'

	test_expect_success "p$A makes and removes a directory in one of p$H" '
		mkdir "$MA/newdir" &&
		test_path_is_dir "$EH/newdir" &&
		for k in 1 2 3; do
			[ $k = $H ] && continue
			test_path_is_missing "$(peer_export $k)/r$H" || exit 1
		done &&
		each_mount_soon "test -d \$m/r$H/newdir" &&
		echo inside >"$MA/newdir/file" &&
		test_output inside cat "$EH/newdir/file" &&
		rm "$MA/newdir/file" &&
		rmdir "$MA/newdir" &&
		test_path_is_missing "$EH/newdir" &&
		each_mount_soon "! test -e \$m/r$H/newdir" &&
		mkdir -p "$MA/n1/n2/n3" &&
		test_path_is_dir "$EH/n1/n2/n3" &&
		rm -r "$MA/n1" &&
		test_path_is_missing "$EH/n1"
	'

	test_expect_success "p$A makes a symlink in a directory of p$H" '
		ln -s "../r$H/f" "$MA/sl" &&
		test_output "../r$H/f" readlink "$EH/sl" &&
		each_mount_soon "test \"\$(readlink \$m/r$H/sl)\" = ../r$H/f" &&
		each_mount "cmp \"$EH/f\" \$m/r$H/sl" &&
		ln -s /nonexistent/abs "$MA/dangling" &&
		test_output /nonexistent/abs readlink "$EH/dangling" &&
		test_output /nonexistent/abs readlink "$MA/dangling" &&
		rm "$MA/sl" "$MA/dangling" &&
		test_path_is_missing "$EH/sl"
	'

	test_expect_success "p$A hard-links a file of p$H within p$H" '
		ln "$MA/l" "$MA/l.hard" &&
		test_output "$(stat -c %i "$EH/l")" stat -c %i "$EH/l.hard" &&
		test_output 2 stat -c %h "$EH/l" &&
		test_output 2 stat -c %h "$MA/l" &&
		each_mount_soon "test \$(stat -c %h \$m/r$H/l.hard) = 2" &&
		each_mount "test \$(stat -c %i \$m/r$H/l) = \$(stat -c %i \$m/r$H/l.hard)" &&
		echo changed >>"$MA/l.hard" &&
		each_mount "cmp \"$EH/l\" \$m/r$H/l" &&
		"$PYTHON" - "$MA" <<-\EOF &&
		import os, sys
		d = sys.argv[1]
		fd = os.open(os.path.join(d, "l.hard"), os.O_RDONLY)
		os.setxattr(fd, "user.h", b"v")
		# rename(2) onto another name of the same file does nothing
		os.rename(os.path.join(d, "l"), os.path.join(d, "l.hard"))
		assert os.stat(os.path.join(d, "l")).st_nlink == 2
		assert {"l", "l.hard"} <= set(os.listdir(d))
		assert os.fstat(fd).st_nlink == 2
		assert os.getxattr(fd, "user.h") == b"v"
		os.fchmod(fd, 0o640)
		for n in ("l", "l.hard"):
		    st = os.stat(os.path.join(d, n))
		    assert st.st_nlink == 2 and st.st_mode & 0o777 == 0o640, (n, st)
		assert os.getxattr(os.path.join(d, "l"), "user.h") == b"v"
		os.close(fd)
		EOF
		test_output 2 stat -c %h "$EH/l.hard" &&
		each_mount_soon "test \$(stat -c %h \$m/r$H/l) = 2" &&
		rm "$MA/l.hard" &&
		test_output 1 stat -c %h "$EH/l"
	'

	test_expect_success "p$A renames a file of p$H within p$H" '
		ino=$(stat -c %i "$EH/a") &&
		mv "$MA/a" "$MA/b" &&
		test_path_is_missing "$EH/a" &&
		test_output "$ino" stat -c %i "$EH/b" &&
		test_output "rename me" cat "$MA/b" &&
		each_mount_soon "! test -e \$m/r$H/a && test -f \$m/r$H/b" &&
		mv "$MA/b" "$MA/sub/c" &&
		test_output "$ino" stat -c %i "$EH/sub/c" &&
		mv "$MA/sub/c" "$MA/a" &&
		test_output "$ino" stat -c %i "$EH/a"
	'

	test_expect_success "p$A: a file of p$H renamed over, still open: fstat, fchmod, no xattr of the new one; a removed directory" '
		"$PYTHON" - "$MA" "$EH" <<-\EOF
		import errno, os, sys
		d, e = sys.argv[1], sys.argv[2]
		for n, t in (("ra", "a"), ("rb", "b")):
		    with open(os.path.join(d, n), "w") as f:
		        f.write(t)
		fd = os.open(os.path.join(d, "ra"), os.O_RDONLY)
		ino = os.fstat(fd).st_ino
		os.rename(os.path.join(d, "rb"), os.path.join(d, "ra"))
		st = os.fstat(fd)
		assert st.st_nlink == 0 and st.st_ino == ino, st
		assert os.pread(fd, 10, 0) == b"a"
		mode = os.stat(os.path.join(e, "ra")).st_mode & 0o7777
		os.fchmod(fd, 0o604)  # the file renamed over, not its name
		assert os.fstat(fd).st_mode & 0o7777 == 0o604
		assert os.stat(os.path.join(e, "ra")).st_mode & 0o7777 == mode
		try:  # never to the file that has the name now
		    os.setxattr(fd, "user.t", b"v")
		except OSError as x:
		    assert x.errno == errno.ENOENT, x
		assert "user.t" not in os.listxattr(os.path.join(e, "ra"))
		os.close(fd)
		assert open(os.path.join(d, "ra")).read() == "b"
		os.unlink(os.path.join(d, "ra"))
		os.mkdir(os.path.join(d, "rd"))
		fd = os.open(os.path.join(d, "rd"), os.O_RDONLY | os.O_DIRECTORY)
		os.rmdir(os.path.join(d, "rd"))
		st = os.fstat(fd)
		assert st.st_nlink == 0, st
		os.close(fd)
		EOF
	'

	test_expect_success "p$A: a file of p$H still open, its name or directory given to new ones: nothing by its old path" '
		"$PYTHON" - "$MA" "$EH" <<-\EOF
		import errno, os, shutil, sys, time
		d, e = sys.argv[1], sys.argv[2]
		os.makedirs(os.path.join(d, "gone", "sub"))
		p = os.path.join("gone", "sub", "f")
		with open(os.path.join(d, p), "w") as f:
		    f.write("old")
		fd = os.open(os.path.join(d, p), os.O_RDWR)
		ino = os.fstat(fd).st_ino
		shutil.rmtree(os.path.join(e, "gone"))  # on the holder itself
		os.makedirs(os.path.join(e, "gone", "sub"))
		with open(os.path.join(e, p), "w") as f:
		    f.write("new")
		mode = os.stat(os.path.join(e, p)).st_mode & 0o7777
		end = time.monotonic() + 10
		while True:  # until the traps of the holder are in
		    try:
		        if os.stat(os.path.join(d, p)).st_ino != ino:
		            break
		    except FileNotFoundError:
		        pass
		    assert time.monotonic() < end, "new file not seen"
		    time.sleep(0.05)
		try:  # never to the file that has the path now
		    os.setxattr(fd, "user.t", b"v")
		except OSError as x:
		    assert x.errno == errno.ENOENT, x
		os.fchmod(fd, 0o600)
		assert os.pread(fd, 10, 0) == b"old"
		assert os.fstat(fd).st_nlink == 0
		os.close(fd)
		assert "user.t" not in os.listxattr(os.path.join(e, p))
		assert os.stat(os.path.join(e, p)).st_mode & 0o7777 == mode
		assert open(os.path.join(d, p)).read() == "new"
		shutil.rmtree(os.path.join(d, "gone"))
		# removed on the holder, its directory here, then both made again
		os.mkdir(os.path.join(d, "gone"))
		p = os.path.join("gone", "f")
		with open(os.path.join(d, p), "w") as f:
		    f.write("old")
		fd = os.open(os.path.join(d, p), os.O_RDWR)
		os.unlink(os.path.join(e, p))
		end = time.monotonic() + 10
		while True:
		    try:
		        os.rmdir(os.path.join(d, "gone"))
		        break
		    except OSError as x:
		        assert x.errno == errno.ENOTEMPTY, x
		    assert time.monotonic() < end, "unlink not seen"
		    time.sleep(0.05)
		os.mkdir(os.path.join(d, "gone"))
		with open(os.path.join(d, p), "w") as f:
		    f.write("new")
		try:
		    os.setxattr(fd, "user.t", b"v")
		except OSError as x:
		    assert x.errno == errno.ENOENT, x
		os.close(fd)
		assert "user.t" not in os.listxattr(os.path.join(e, p))
		shutil.rmtree(os.path.join(d, "gone"))
		EOF
	'

	test_expect_success "p$A sets, reads, lists and removes xattrs of p$H" '
		setfattr -n user.colour -v blue "$MA/x" &&
		test_output blue getfattr --only-values -n user.colour "$EH/x" &&
		each_mount_soon "test \"\$(getfattr --only-values -n user.colour \$m/r$H/x)\" = blue" &&
		setfattr -n user.size -v 12345 "$MA/x" &&
		test_output "user.colour user.size" \
			"$PYTHON" "$_LIB/op.py" listxattr "$MA/x" &&
		setfattr -x user.colour "$MA/x" &&
		test_errno ENODATA getxattr "$EH/x" user.colour &&
		each_mount_soon "! getfattr -n user.colour \$m/r$H/x" &&
		test_output 12345 getfattr --only-values -n user.size "$EH/x"
	'

	test_expect_success "p$A fallocates a file of p$H" '
		fallocate -l 1048576 "$MA/fa" &&
		test_output 1048576 stat -c %s "$EH/fa" &&
		test $(stat -c %b "$EH/fa") -ge 2048 &&
		each_mount_soon "test \$(stat -c %s \$m/r$H/fa) = 1048576" &&
		"$PYTHON" "$_LIB/op.py" fallocate "$MA/fa" 1048576 65536 &&
		test_output 1114112 stat -c %s "$EH/fa" &&
		rm "$MA/fa"
	'

	test_expect_success "p$A fsyncs a file of p$H: on its disk before close" '
		"$PYTHON" -c "
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC)
data = os.urandom(200000)
os.write(fd, data)
os.fsync(fd)
with open(sys.argv[2], \"rb\") as f:
    assert f.read() == data, \"not on the holder after fsync\"
os.write(fd, b\"tail\")
os.fdatasync(fd)
with open(sys.argv[2], \"rb\") as f:
    assert f.read() == data + b\"tail\", \"not on the holder after fdatasync\"
os.close(fd)
" "$MA/fs" "$EH/fs" &&
		each_mount "cmp \"$EH/fs\" \$m/r$H/fs"
	'

	test_expect_success "p$A maps a file of p$H, writes it shared; all see it" '
		cp "$EH/m" m.expect &&
		"$PYTHON" -c "
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
size = os.fstat(fd).st_size
m = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
with open(sys.argv[2], \"rb\") as f:
    assert m[:] == f.read(), \"mapped bytes differ from the file\"
m[0:5] = b\"MMAP!\"
m[500000:500005] = b\"12345\"
m[size - 5:size] = b\"!PAMM\"
m.close()
os.close(fd)
with open(sys.argv[2], \"r+b\") as f:
    for off, b in ((0, b\"MMAP!\"), (500000, b\"12345\"), (size - 5, b\"!PAMM\")):
        f.seek(off)
        f.write(b)
" "$MA/m" m.expect &&
		cmp m.expect "$EH/m" &&
		each_mount "cmp m.expect \$m/r$H/m"
	'
}

remote_ops 1 2
remote_ops 3 1

test_expect_success 'a 64 MiB file written on p2 into a directory of p3' '
	head -c 67108864 /dev/urandom >big.src &&
	sum=$(sha256sum <big.src) &&
	cp big.src "$M2/r3/big" &&
	test_output "$sum" sha256sum <"$E3/r3/big" &&
	test_path_is_missing "$E2/r3" &&
	test_output "$sum" sha256sum <"$M1/r3/big" &&
	test_output "$sum" sha256sum <"$M3/r3/big" &&
	test_output 67108864 stat -c %s "$M1/r3/big" &&
	rm "$M1/r3/big" &&
	test_path_is_missing "$E3/r3/big"
'

test_expect_success 'a directory of 3000 entries on p3, listed from p1' '
	ls "$E3/r3/many" >expect &&
	test $(wc -l <expect) = 3000 &&
	ls "$M1/r3/many" >actual &&
	test_cmp expect actual &&
	test $(find "$M1/r3/many" -type f | wc -l) = 3000 &&
	ls -f "$M2/r3/many" | grep -v "^\.\.\?$" | sort >actual &&
	test_cmp expect actual &&
	test_output 3000 "$PYTHON" "$_LIB/op.py" listdir "$M1/r3/many"
'

test_expect_success 'ls -lR is the same on every mount' '
	wait_for "
		(cd $M1 && ls -lR --time-style=+%s .) >lsR.1 &&
		(cd $M2 && ls -lR --time-style=+%s .) >lsR.2 &&
		(cd $M3 && ls -lR --time-style=+%s .) >lsR.3 &&
		cmp lsR.1 lsR.2 && cmp lsR.1 lsR.3" 10 ||
	{ diff -u lsR.1 lsR.2; diff -u lsR.1 lsR.3; exit 1; } &&
	test $(wc -l <lsR.1) -gt 3000
'

test_done
