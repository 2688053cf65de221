#!/bin/bash
#
# SETATTR sent right behind the write-back (PROTO_CAP_SETATTR_ORDER):
# p1 writes to files p2 holds, then sets their times and mode through the
# open descriptor, as tar(1) does (futimens, fchmod, then close); p1
# sends the dirty blocks' WRITEs and the first SETATTR together, and p2
# runs that SETATTR after the WRITEs.  Checked:
#
#  - the times set stay set: a WRITE served after the SETATTR would move
#    the modification time to the time of the write, and the bytes and
#    the mode are p2's too; p1's status counts a SETATTR behind per file
#    at least, answered at once (deferred: its result is foreseen), and
#    the fchmod after it too unless the file was clean by then;
#  - a file created without O_EXCL (which may open another's file) has
#    its SETATTR sent behind, not deferred;
#  - fstat between the fchmod and the close shows what was set, and
#    so does p2 once close(2) returned;
#  - a deferred SETATTR that the holder refuses (its file made append-
#    only on p2's disk meanwhile) makes close(2) fail with EPERM, after
#    the bytes went, and p1 then shows p2's times, not those refused;
#  - tar x of a tree keeps every file's mtime and mode on p2 (a file
#    whose last block went back, in part, with the whole block before
#    it, and was written again meanwhile, waits for a clean file: not
#    every one goes behind);
#  - a holder without the capability gets the SETATTR after the WRITEs'
#    answers, with the same results, and nothing counted behind;
#  - a truncate never goes behind: ftruncate after writes leaves the
#    size and bytes right.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"
test_require tar cmp chattr

# p1 writes back only on demand, apart from whole blocks.
LAZY=cache.writeback_interval=30

cat >"$_LIB/sa.py" <<'EOF'
# sa.py DIR WANT N: N files DIR/fK, each 6 partial blocks of 128 KiB of
# random bytes (kept dirty: none is whole), then futimens to mtime
# 1000000000 + K, fchmod 0640 and close; WANT/fK gets the bytes.
# Prints "ok", or the first error.
import os, random, sys

BS = 128 << 10
d, want, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
rnd = random.Random(n)
try:
    for k in range(n):
        fd = os.open('%s/f%d' % (d, k), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        buf = bytearray()
        for i in range(6):
            data = rnd.randbytes(BS - 2)
            buf.extend(bytes(2 * i * BS + 1 - len(buf)))
            buf.extend(data)
            os.pwrite(fd, data, 2 * i * BS + 1)
        os.utime(fd, ns=(5 * 10**17, (1000000000 + k) * 10**9 + 123))
        os.fchmod(fd, 0o640)
        os.close(fd)
        open('%s/f%d' % (want, k), 'wb').write(buf)
    print('ok')
except OSError as e:
    print(e)
EOF

# behind: p1's SETATTRs sent behind their writes; deferred: of those,
# answered before p2 did.
behind () {
	jget 1 data.setattr_behind
}
deferred () {
	jget 1 data.setattr_deferred
}

# check_files DIR N: p2's DIR/fK hold the bytes, the mtime and the mode
# set through p1.
check_files () {
	"$PYTHON" - "$E2/$1" want "$2" <<-\EOF
	import os, sys
	d, want, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
	bad = 0
	for k in range(n):
	    st = os.stat("%s/f%d" % (d, k))
	    same = open("%s/f%d" % (d, k), "rb").read() == open("%s/f%d" % (want, k), "rb").read()
	    if (not same or st.st_mtime_ns != (1000000000 + k) * 10**9 + 123 or
	            st.st_mode & 0o7777 != 0o640):
	        print("f%d: bytes %s, mtime_ns %d, mode %o" % (k, "same" if same else "differ",
	              st.st_mtime_ns, st.st_mode & 0o7777))
	        bad = 1
	sys.exit(bad)
	EOF
}

test_expect_success 'setup: two peers, a directory of p2' '
	peers_net_setup 2 &&
	mkdir -p "$E2/a" "$E2/b" "$E2/c" "$E2/t" &&
	peer_start 1 -o "$LAZY" &&
	peer_start 2 -o "$LAZY,cache.trap_delay=30" &&
	peers_wait_all_up 2
'

test_expect_success 'write, futimens, fchmod, close: all of it on p2, SETATTRs behind, deferred' '
	mkdir want &&
	wait_for "test -d \"$M1/a\"" 5 &&
	b0=$(behind) && d0=$(deferred) &&
	"$PYTHON" "$_LIB/sa.py" "$M1/a" want 20 >out &&
	test_output ok cat out &&
	b1=$(behind) && d1=$(deferred) &&
	echo "setattr behind: $b0 -> $b1, deferred: $d0 -> $d1" &&
	test $((b1 - b0)) -ge 20 &&
	test $((d1 - d0)) -ge 20 &&
	check_files a 20
'

test_expect_success 'a file created without O_EXCL: behind, not deferred' '
	b0=$(behind) && d0=$(deferred) &&
	"$PYTHON" - "$M1/a/noexcl" <<-\EOF &&
	import os, sys
	fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
	os.pwrite(fd, b"x" * 1000, 1)
	os.utime(fd, ns=(10**18, 1234567890000000000))
	os.close(fd)
	EOF
	test $(($(behind) - b0)) = 1 &&
	test "$(deferred)" = "$d0" &&
	test "$(stat -c %Y "$E2/a/noexcl")" = 1234567890
'

test_expect_success 'fstat before the close shows what was set; p2 has it after' '
	"$PYTHON" - "$M1/a/st" <<-\EOF >out &&
	import os, sys
	fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
	os.write(fd, b"x" * 100000)
	os.utime(fd, ns=(10**18, 1234567890123456789))
	os.fchmod(fd, 0o604)
	st = os.fstat(fd)
	os.close(fd)
	print(oct(st.st_mode & 0o7777), st.st_mtime_ns, st.st_size)
	EOF
	test_output "0o604 1234567890123456789 100000" cat out &&
	test "$(stat -c "%a %s" "$E2/a/st")" = "604 100000" &&
	test "$("$PYTHON" -c "import os,sys; print(os.stat(sys.argv[1]).st_mtime_ns)" "$E2/a/st")" = 1234567890123456789 &&
	test "$(stat -c "%a %s" "$M1/a/st")" = "604 100000"
'

test_expect_success 'a deferred SETATTR the holder refuses: close(2) gives EPERM' '
	d0=$(deferred) && e0=$(jget 1 data.writeback_errors) &&
	test_when_finished "chattr -a \"$E2/a/ap\" 2>/dev/null || :" &&
	"$PYTHON" - "$M1/a/ap" "$E2/a/ap" <<-\EOF >out &&
	import array, fcntl, os, sys
	fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
	os.pwrite(fd, b"new", 1)  # a block in part: it stays dirty
	os.pwrite(fd, b"end", 300000)
	# On p2, root makes it append-only meanwhile (p2 holds its trap):
	# writes through the open file still go there, changes of
	# attributes do not.  By ioctl, as chattr +a: a child process
	# would close fd at its exec, and that close would flush.
	FS_IOC_GETFLAGS, FS_IOC_SETFLAGS, FS_APPEND_FL = 0x80086601, 0x40086602, 0x20
	p2 = os.open(sys.argv[2], os.O_RDONLY)
	fl = array.array("l", [0])
	fcntl.ioctl(p2, FS_IOC_GETFLAGS, fl, True)
	fl[0] |= FS_APPEND_FL
	fcntl.ioctl(p2, FS_IOC_SETFLAGS, fl, True)
	os.close(p2)
	try:
	    os.utime(fd, ns=(10**18, 10**18))
	    print("futimens ok")
	except OSError as e:
	    print("futimens", e.strerror)
	try:
	    os.close(fd)
	    print("close ok")
	except OSError as e:
	    print("close", e.strerror)
	EOF
	test_output "futimens ok
close Operation not permitted" cat out &&
	test $(($(deferred) - d0)) = 1 &&
	test $(($(jget 1 data.writeback_errors) - e0)) = 1 &&
	{ printf "\\0new" && head -c 299996 /dev/zero && printf end; } >want-ap &&
	cmp want-ap "$E2/a/ap" &&
	cmp want-ap "$M1/a/ap" &&
	test "$(stat -c %Y "$M1/a/ap")" = "$(stat -c %Y "$E2/a/ap")" &&
	test "$(stat -c %Y "$E2/a/ap")" != 1000000000
'

test_expect_success 'tar x keeps every mtime and mode on p2' '
	mkdir -p src/x src/y &&
	for i in $(seq 30); do
		head -c $((i * 7919)) /dev/urandom >src/x/f$i || exit 1
		touch -d "2003-04-05 06:07:$((i % 60))" src/x/f$i || exit 1
	done &&
	chmod 751 src/x/f3 && chmod 600 src/x/f4 &&
	touch -d "2001-02-03 04:05:06" src/y src/x src &&
	tar cf src.tar src &&
	b0=$(behind) && d0=$(deferred) &&
	tar xf src.tar -C "$M1/t" &&
	b1=$(behind) && d1=$(deferred) &&
	echo "setattr behind: $b0 -> $b1, deferred: $d0 -> $d1" &&
	test $((b1 - b0)) -gt 0 &&
	test $((d1 - d0)) -gt 0 &&
	(cd src && find . -printf "%p %y %m %s %T@\n" | sort) >expect &&
	(cd "$E2/t/src" && find . -printf "%p %y %m %s %T@\n" | sort) >actual &&
	test_cmp expect actual &&
	diff -r src "$E2/t/src"
'

test_expect_success 'ftruncate after writes never goes behind: size and bytes right' '
	b0=$(behind) &&
	"$PYTHON" - "$M1/c/tr" <<-\EOF &&
	import os, sys
	fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
	os.pwrite(fd, b"x" * 300000, 0)
	os.ftruncate(fd, 1000)
	os.pwrite(fd, b"y" * 10, 5000)
	os.close(fd)
	EOF
	b1=$(behind) &&
	test "$b1" = "$b0" &&
	test "$(stat -c %s "$E2/c/tr")" = 5010 &&
	test "$(head -c 1000 "$E2/c/tr" | tr -d x | wc -c)" = 0 &&
	test "$(tail -c +1001 "$E2/c/tr" | head -c 4000 | tr -d "\0" | wc -c)" = 0 &&
	test "$(tail -c 10 "$E2/c/tr")" = yyyyyyyyyy
'

test_expect_success 'a holder without the capability: SETATTR after the answers' '
	peer_stop 2 &&
	PUFS_TEST_CAPS=$((0x7ff)) peer_start 2 -o "$LAZY" &&
	peers_wait_all_up 2 &&
	rm -rf want && mkdir want &&
	wait_for "test -d \"$M1/b\"" 5 &&
	b0=$(behind) && d0=$(deferred) &&
	"$PYTHON" "$_LIB/sa.py" "$M1/b" want 5 >out &&
	test_output ok cat out &&
	b1=$(behind) &&
	test "$b1" = "$b0" &&
	test "$(deferred)" = "$d0" &&
	check_files b 5
'

test_done
