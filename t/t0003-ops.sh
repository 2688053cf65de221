#!/bin/bash
#
# Namespace and attribute operations on one peer: create, stat, chmod,
# chown, utimens, O_RDONLY | O_TRUNC, symlinks, hard links, mkdir/rmdir, unlink, every form
# of rename, device nodes and fifos, large directories and their
# telldir/seekdir positions, statfs and access.  Every change is checked
# in the backing directory too.

. "$(dirname "$0")/lib.sh"

E=$TRASH/export
M=$TRASH/mnt

# Print "type mode uid gid size nlink" of a path, without following it.
attrs () {
	stat -c "%F %a %u %g %s %h" "$1"
}

test_expect_success 'setup' '
	mkdir -p "$E" "$M" &&
	pufs_start alpha "$M" -e "$E" -o cache.attr_timeout=0.2
'

test_expect_success 'create honours the mode and the umask' '
	(umask 022 && pyop open "$M/m640" "wronly|creat" 640) &&
	test_output 640 stat -c %a "$E/m640" &&
	test_output 640 stat -c %a "$M/m640" &&
	(umask 077 && pyop open "$M/m600" "wronly|creat" 666) &&
	test_output 600 stat -c %a "$E/m600" &&
	(umask 022 && mkdir "$M/d755" && mkdir -m 700 "$M/d700") &&
	test_output 755 stat -c %a "$E/d755" &&
	test_output 700 stat -c %a "$E/d700"
'

test_expect_success 'stat and lstat report what the export holds' '
	printf "%s" 0123456789 >"$E/ten" &&
	ln -s ten "$E/sym" &&
	touch -d "2010-01-02 03:04:05.5" "$E/ten" &&
	for f in ten sym; do
		echo "$f $(attrs "$E/$f") $(stat -c "%.9Y" "$E/$f")" >>expect &&
		echo "$f $(attrs "$M/$f") $(stat -c "%.9Y" "$M/$f")" >>actual || return 1
	done &&
	test_cmp expect actual &&
	test_output "symbolic link 3" stat -c "%F %s" "$M/sym" &&
	test_output "regular file 10" stat -L -c "%F %s" "$M/sym"
'

test_expect_success 'the root is a directory and stats' '
	test_output directory stat -c %F "$M" &&
	ls -ld "$M" &&
	ls -a "$M" >list &&
	grep -x ten list && grep -x sym list
'

test_expect_success 'chmod: plain, setuid, setgid and sticky bits' '
	: >"$M/cm" && mkdir "$M/cmd" &&
	for m in 600 755 4755 2755 6711 0 444; do
		chmod "$m" "$M/cm" &&
		test_output "$(printf %o 0$m)" stat -c %a "$E/cm" &&
		test_output "$(printf %o 0$m)" stat -c %a "$M/cm" || return 1
	done &&
	chmod 1777 "$M/cmd" &&
	test_output 1777 stat -c %a "$E/cmd" &&
	test_output 1777 stat -c %a "$M/cmd"
'

test_expect_success 'chown and chgrp to other ids' '
	: >"$M/co" && mkdir "$M/cod" &&
	chown 1234:5678 "$M/co" &&
	test_output "1234 5678" stat -c "%u %g" "$E/co" &&
	test_output "1234 5678" stat -c "%u %g" "$M/co" &&
	chgrp 4242 "$M/co" &&
	test_output "1234 4242" stat -c "%u %g" "$E/co" &&
	chown 99 "$M/cod" &&
	test_output "99 0" stat -c "%u %g" "$E/cod" &&
	echo still-writable >"$M/co" &&
	test_output still-writable cat "$E/co"
'

test_expect_success 'chown -h changes the symlink, not its target' '
	: >"$M/ct" && ln -s ct "$M/cl" &&
	chown -h 777:888 "$M/cl" &&
	test_output "777 888" stat -c "%u %g" "$E/cl" &&
	test_output "0 0" stat -c "%u %g" "$E/ct" &&
	test_output "777 888" stat -c "%u %g" "$M/cl" &&
	chown 555:666 "$M/cl" &&
	test_output "555 666" stat -c "%u %g" "$E/ct" &&
	test_output "777 888" stat -c "%u %g" "$E/cl"
'

test_expect_success 'utimens: given times with nanoseconds, atime and mtime apart' '
	: >"$M/ut" &&
	touch -d "2001-02-03 04:05:06.123456789" "$M/ut" &&
	test_output "981173106.123456789 981173106.123456789" stat -c "%.9X %.9Y" "$E/ut" &&
	test_output "981173106.123456789 981173106.123456789" stat -c "%.9X %.9Y" "$M/ut" &&
	touch -a -d "2002-01-01 00:00:00" "$M/ut" &&
	test_output "1009843200.000000000 981173106.123456789" stat -c "%.9X %.9Y" "$E/ut" &&
	touch -m -d "2003-01-01 00:00:00" "$M/ut" &&
	test_output "1009843200.000000000 1041379200.000000000" stat -c "%.9X %.9Y" "$E/ut" &&
	test_output "1009843200.000000000 1041379200.000000000" stat -c "%.9X %.9Y" "$M/ut"
'

test_expect_success 'utimens: touch sets the current time' '
	: >"$M/now" &&
	touch -d "2001-01-01" "$M/now" &&
	before=$(date +%s) &&
	touch "$M/now" &&
	t=$(stat -c %Y "$E/now") &&
	test "$t" -ge "$before" && test "$t" -le $((before + 5)) &&
	test_output "$t" stat -c %Y "$M/now"
'

test_expect_success 'utimens: touch -h changes the symlink, not its target' '
	: >"$M/uht" && ln -s uht "$M/uhl" &&
	touch -d "2004-01-01 00:00:00" "$M/uht" &&
	touch -h -d "2005-01-01 00:00:00" "$M/uhl" &&
	test_output 1104537600 stat -c %Y "$E/uhl" &&
	test_output 1072915200 stat -c %Y "$E/uht" &&
	test_output 1104537600 stat -c %Y "$M/uhl" &&
	test_output 1072915200 stat -c %Y "$M/uht"
'

test_expect_success 'writing updates mtime and ctime' '
	echo a >"$M/mt" &&
	touch -d "2001-01-01" "$M/mt" &&
	echo b >>"$M/mt" &&
	test "$(stat -c %Y "$M/mt")" -gt 978307200 &&
	test "$(stat -c %Y "$E/mt")" -gt 978307200
'

test_expect_success 'open with O_RDONLY | O_TRUNC empties the file, as Linux does' '
	echo full >"$M/rt" &&
	pyop open "$M/rt" "rdonly|trunc" &&
	test "$(stat -c %s "$M/rt")" = 0 &&
	test "$(stat -c %s "$E/rt")" = 0 &&
	echo full >"$M/rt" && chmod 644 "$M/rt" &&
	chmod 755 "$TRASH" &&
	test_when_finished "chmod 700 \"$TRASH\"" &&
	setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$PYTHON" "$_LIB/op.py" open "$M/rt" "rdonly|trunc" >out 2>&1
	test_output EACCES cat out &&
	test "$(cat "$E/rt")" = full
'

test_expect_success 'symlinks: created, read and stored verbatim' '
	for t in plain dir/file /abs/path ../../up "with space" "a//b/./c" \
	    "$(printf "%0200d" 0)"; do
		rm -f "$M/s" &&
		ln -s "$t" "$M/s" &&
		test_output "$t" readlink "$M/s" &&
		test_output "$t" readlink "$E/s" &&
		test_output "${#t}" stat -c %s "$M/s" || return 1
	done &&
	mkdir -p "$M/sd" && ln -s ../ten "$M/sd/up" &&
	test_output 0123456789 cat "$M/sd/up"
'

test_expect_success 'a symlink made on disk reads through the mount' '
	ln -s "target on disk" "$E/disksym" &&
	wait_for "test -L \"$M/disksym\"" 5 &&
	test_output "target on disk" readlink "$M/disksym"
'

test_expect_success 'hard links: link count, one inode, shared data' '
	echo one >"$M/h1" &&
	ln "$M/h1" "$M/h2" &&
	mkdir -p "$M/hd" && ln "$M/h1" "$M/hd/h3" &&
	test_output 3 stat -c %h "$M/h1" &&
	test_output 3 stat -c %h "$M/hd/h3" &&
	test_output 3 stat -c %h "$E/h1" &&
	test_output "$(stat -c %i "$E/h1")" stat -c %i "$E/hd/h3" &&
	test_output "$(stat -c %i "$M/h1")" stat -c %i "$M/h2" &&
	test_output "$(stat -c %i "$M/h1")" stat -c %i "$M/hd/h3" &&
	echo two >>"$M/h2" &&
	printf "one\ntwo\n" >expect &&
	cat "$M/hd/h3" >actual && test_cmp expect actual &&
	cat "$M/h1" >actual && test_cmp expect actual &&
	rm "$M/h1" &&
	test_output 2 stat -c %h "$M/h2" &&
	test_output 2 stat -c %h "$E/h2" &&
	rm "$M/hd/h3" &&
	test_output 1 stat -c %h "$M/h2"
'

test_expect_success 'hard links to directories are refused' '
	mkdir "$M/nolink" &&
	test_errno EPERM link "$M/nolink" "$M/nolink2" &&
	test_path_is_missing "$E/nolink2"
'

test_expect_success 'mkdir, nested mkdir -p, rmdir' '
	mkdir -p "$M/a/b/c/d/e/f/g/h/i/j" &&
	test_path_is_dir "$E/a/b/c/d/e/f/g/h/i/j" &&
	test_output 3 stat -c %h "$M/a/b/c/d/e/f/g/h/i" &&
	test_output 2 stat -c %h "$M/a/b/c/d/e/f/g/h/i/j" &&
	rmdir "$M/a/b/c/d/e/f/g/h/i/j" &&
	test_path_is_missing "$E/a/b/c/d/e/f/g/h/i/j" &&
	test_path_is_missing "$M/a/b/c/d/e/f/g/h/i/j" &&
	test_output 2 stat -c %h "$M/a/b/c/d/e/f/g/h/i" &&
	rm -r "$M/a" &&
	test_path_is_missing "$E/a"
'

test_expect_success 'unlink removes the file from the export' '
	echo x >"$M/ul" &&
	test_path_is_file "$E/ul" &&
	rm "$M/ul" &&
	test_path_is_missing "$E/ul" &&
	test_path_is_missing "$M/ul" &&
	test_errno ENOENT stat "$M/ul"
'

test_expect_success 'rename: plain, across directories, keeping the inode' '
	echo r >"$M/r1" && mkdir -p "$M/rd" &&
	ino=$(stat -c %i "$M/r1") &&
	mv "$M/r1" "$M/r2" &&
	test_path_is_missing "$E/r1" && test_output r cat "$E/r2" &&
	test_output "$ino" stat -c %i "$M/r2" &&
	mv "$M/r2" "$M/rd/r3" &&
	test_path_is_missing "$M/r2" && test_output r cat "$E/rd/r3" &&
	test_output r cat "$M/rd/r3" &&
	test_output "$ino" stat -c %i "$M/rd/r3"
'

test_expect_success 'rename over an existing file replaces it' '
	echo new >"$M/ro1" && echo old >"$M/ro2" &&
	pyop rename "$M/ro1" "$M/ro2" &&
	test_output new cat "$M/ro2" &&
	test_output new cat "$E/ro2" &&
	test_path_is_missing "$M/ro1" && test_path_is_missing "$E/ro1"
'

test_expect_success 'rename of a directory with content' '
	mkdir -p "$M/rdir/sub" && echo deep >"$M/rdir/sub/f" &&
	mv "$M/rdir" "$M/rdir2" &&
	test_output deep cat "$M/rdir2/sub/f" &&
	test_output deep cat "$E/rdir2/sub/f" &&
	test_path_is_missing "$M/rdir" &&
	test_errno ENOENT stat "$M/rdir/sub/f" &&
	mkdir "$M/rempty" &&
	pyop rename "$M/rdir2" "$M/rempty" &&
	test_output deep cat "$M/rempty/sub/f" &&
	test_path_is_missing "$E/rdir2"
'

test_expect_success 'rename with RENAME_NOREPLACE' '
	echo a >"$M/nr1" && echo b >"$M/nr2" &&
	test_errno EEXIST rename_noreplace "$M/nr1" "$M/nr2" &&
	test_output a cat "$M/nr1" && test_output b cat "$E/nr2" &&
	test_errno ok rename_noreplace "$M/nr1" "$M/nr3" &&
	test_output a cat "$E/nr3" && test_path_is_missing "$E/nr1"
'

test_expect_success 'rename with RENAME_EXCHANGE' '
	echo a >"$M/x1" && echo b >"$M/x2" &&
	test_errno ok rename_exchange "$M/x1" "$M/x2" &&
	test_output b cat "$M/x1" && test_output a cat "$M/x2" &&
	test_output b cat "$E/x1" && test_output a cat "$E/x2" &&
	mkdir "$M/xd" && echo in >"$M/xd/f" &&
	test_errno ok rename_exchange "$M/x1" "$M/xd" &&
	test_output in cat "$M/x1/f" && test_output b cat "$M/xd" &&
	test_output in cat "$E/x1/f" && test_output b cat "$E/xd" &&
	test_errno ENOENT rename_exchange "$M/x2" "$M/nonexistent"
'

test_expect_success 'an open file survives rename and unlink; fstat shows no link' '
	echo survivor >"$M/os" &&
	"$PYTHON" - "$M/os" "$M/os2" <<-\EOF &&
	import os, sys
	fd = os.open(sys.argv[1], os.O_RDWR)
	os.rename(sys.argv[1], sys.argv[2])
	assert os.pread(fd, 100, 0) == b"survivor\n"
	os.unlink(sys.argv[2])
	assert os.pread(fd, 100, 0) == b"survivor\n"
	os.pwrite(fd, b"S", 0)
	assert os.pread(fd, 100, 0) == b"Survivor\n"
	assert os.fstat(fd).st_nlink == 0
	os.close(fd)
	# Renamed over: the file that had the name shows no link.
	open(sys.argv[1], "w").write("old")
	open(sys.argv[2], "w").write("new")
	fd = os.open(sys.argv[1], os.O_RDONLY)
	os.rename(sys.argv[2], sys.argv[1])
	assert os.fstat(fd).st_nlink == 0
	assert os.pread(fd, 10, 0) == b"old"
	os.close(fd)
	assert open(sys.argv[1]).read() == "new"
	os.unlink(sys.argv[1])
	# A removed directory, still open.
	os.mkdir(sys.argv[2])
	fd = os.open(sys.argv[2], os.O_RDONLY | os.O_DIRECTORY)
	os.rmdir(sys.argv[2])
	assert os.fstat(fd).st_nlink == 0
	os.fsync(fd)  # nothing to sync, and no error
	os.close(fd)
	EOF
	test_path_is_missing "$M/os2" && test_path_is_missing "$E/os2"
'

test_expect_success 'mkfifo makes a fifo that carries data' '
	mkfifo "$M/fifo" &&
	test_output fifo stat -c %F "$E/fifo" &&
	test_output fifo stat -c %F "$M/fifo" &&
	(echo through-fifo >"$M/fifo" &) &&
	test_output through-fifo timeout 10 cat "$M/fifo"
'

test_expect_success 'mknod makes device nodes and plain files' '
	mknod "$M/null" c 1 3 &&
	test_output "character special file 1 3" stat -c "%F %t %T" "$E/null" &&
	test_output "character special file 1 3" stat -c "%F %t %T" "$M/null" &&
	mknod "$M/loop" b 7 200 &&
	test_output "block special file 7 c8" stat -c "%F %t %T" "$E/loop" &&
	pyop mknod "$M/regnod" reg &&
	test_output "regular empty file" stat -c %F "$E/regnod"
'

test_expect_success 'odd names: spaces, newlines, UTF-8, dashes, @, 255 bytes' '
	long=$(printf "%0255d" 0) &&
	for n in "with space" "$(printf "new\nline")" "ünïcödé-ファイル" \
	    "-dash" "mail@example.com" "a@b@c" "%percent" "tab	tab" "$long"; do
		echo "$n" >"$M/$n" &&
		test_output "$n" cat "$E/$n" &&
		test_output "$n" cat "$M/$n" || return 1
		test ${#n} = 255 && continue
		mv "$M/$n" "$M/$n.2" &&
		test_output "$n" cat "$E/$n.2" &&
		test_path_is_missing "$E/$n" || return 1
	done &&
	"$PYTHON" -c "import os,sys; print(len(os.listdir(sys.argv[1])))" "$M" >/dev/null
'

test_expect_success 'a directory of 5000 entries made through the mount' '
	mkdir "$M/big" &&
	"$PYTHON" - "$M/big" <<-\EOF &&
	import os, sys
	for i in range(5000):
	    os.close(os.open(os.path.join(sys.argv[1], "f%05d" % i),
	                     os.O_CREAT | os.O_WRONLY, 0o644))
	EOF
	seq -f "f%05g" 0 4999 >expect &&
	ls "$M/big" >actual && test_cmp expect actual &&
	ls "$E/big" >actual && test_cmp expect actual &&
	ls -f "$M/big" | grep -v "^\.\.\?$" | sort >actual && test_cmp expect actual
'

test_expect_success 'large directory: unique inodes, d_ino equals st_ino, d_type' '
	"$PYTHON" - "$M/big" <<-\EOF
	import os, sys
	seen = set()
	n = 0
	for e in os.scandir(sys.argv[1]):
	    st = os.lstat(e.path)
	    assert e.inode() == st.st_ino, (e.name, e.inode(), st.st_ino)
	    assert e.is_file(follow_symlinks=False), e.name
	    seen.add(st.st_ino)
	    n += 1
	assert n == 5000 and len(seen) == 5000, (n, len(seen))
	EOF
'

test_expect_success 'large directory: telldir/seekdir positions are stable' '
	"$PYTHON" - "$M/big" <<-\EOF
	import ctypes, sys
	libc = ctypes.CDLL(None)
	class Dirent(ctypes.Structure):
	    _fields_ = [("d_ino", ctypes.c_uint64), ("d_off", ctypes.c_int64),
	                ("d_reclen", ctypes.c_ushort), ("d_type", ctypes.c_ubyte),
	                ("d_name", ctypes.c_char * 256)]
	libc.opendir.restype = ctypes.c_void_p
	libc.opendir.argtypes = [ctypes.c_char_p]
	libc.readdir64.restype = ctypes.POINTER(Dirent)
	libc.readdir64.argtypes = [ctypes.c_void_p]
	libc.telldir.restype = ctypes.c_long
	libc.telldir.argtypes = [ctypes.c_void_p]
	libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
	libc.rewinddir.argtypes = [ctypes.c_void_p]
	libc.closedir.argtypes = [ctypes.c_void_p]
	d = libc.opendir(sys.argv[1].encode())
	assert d
	def nxt():
	    p = libc.readdir64(d)
	    return p.contents.d_name if p else None
	pos, names = [], []
	while True:
	    pos.append(libc.telldir(d))
	    n = nxt()
	    if n is None:
	        break
	    names.append(n)
	files = sorted(n for n in names if n not in (b".", b".."))
	assert files == [b"f%05d" % i for i in range(5000)], len(names)
	t = len(names)
	for i in list(range(0, t, 97)) + [t - 1, 4000, 1, 0, 2500]:
	    libc.seekdir(d, pos[i])
	    got = [nxt() for _ in range(min(10, t - i))]
	    assert got == names[i:i + len(got)], (i, got, names[i:i + 10])
	libc.rewinddir(d)
	again = []
	while True:
	    n = nxt()
	    if n is None:
	        break
	    again.append(n)
	assert again == names
	libc.closedir(d)
	EOF
'

test_expect_success 'large directory: rm -rf through the mount' '
	rm -rf "$M/big" &&
	test_path_is_missing "$M/big" &&
	test_path_is_missing "$E/big"
'

test_expect_success 'a directory of 5000 entries made on disk' '
	mkdir "$E/big2" &&
	"$PYTHON" -c "
import os, sys
for i in range(5000):
    open(os.path.join(sys.argv[1], \"g%05d\" % i), \"w\").close()
" "$E/big2" &&
	wait_for "test -d \"$M/big2\"" 5 &&
	seq -f "g%05g" 0 4999 >expect &&
	wait_for "ls \"$M/big2\" | cmp -s - expect" 5 &&
	rm -rf "$M/big2" && test_path_is_missing "$E/big2"
'

test_expect_success 'statfs reports the backing file system' '
	stat -f -c "%S %b %a %c %l" "$M" >m &&
	stat -f -c "%S %b %a %c %l" "$E" >e &&
	cat m e &&
	read mb mblocks mavail mfiles mname <m &&
	read eb eblocks eavail efiles ename <e &&
	test "$mblocks" -gt 0 && test "$mname" -ge 255 &&
	mt=$((mb * mblocks / 1048576)) && et=$((eb * eblocks / 1048576)) &&
	test $((mt - et)) -le 1 && test $((et - mt)) -le 1 &&
	df -P "$M"
'

test_expect_success 'access follows the mode bits (as root)' '
	: >"$M/ac644" && chmod 644 "$M/ac644" &&
	: >"$M/ac755" && chmod 755 "$M/ac755" &&
	: >"$M/ac000" && chmod 000 "$M/ac000" &&
	test -r "$M/ac644" && test -w "$M/ac644" && ! test -x "$M/ac644" &&
	test -x "$M/ac755" &&
	test -r "$M/ac000" && test -w "$M/ac000" && ! test -x "$M/ac000" &&
	test_errno ok access "$M/ac755" rwx &&
	test_errno EACCES access "$M/ac644" x &&
	test_errno ENOENT access "$M/no-such" r &&
	test -x "$M/d700"
'

test_expect_success 'identity: another user works as the daemon user' '
	chmod 755 "$TRASH" &&
	test_when_finished "chmod 700 \"$TRASH\"" &&
	mkdir "$M/shared" && chmod 1777 "$M/shared" &&
	setpriv --reuid=65534 --regid=65534 --clear-groups \
		sh -c "echo by-nobody >\"$M/shared/nf\" && cat \"$M/shared/nf\"" >out &&
	test_output by-nobody cat out &&
	test_output "0 0" stat -c "%u %g" "$E/shared/nf" &&
	test_output "0 0" stat -c "%u %g" "$M/shared/nf"
'

test_expect_success 'the mount is still healthy' '
	test_output 0123456789 cat "$M/ten" &&
	pufs_stop alpha
'

test_done
