#!/bin/bash
#
# What p1 shows of a file p2 holds right after p1 itself changed it, with
# attr_timeout = 5: the changes must show at once, not attr_timeout
# later.  Checked:
#
#  - truncate(2) by path to a smaller size, of a file written and closed
#    through p1: stat shows the new size;
#  - fallocate(1) and copy_file_range(2) making a file longer, in a
#    directory made through p1 (so no disk watch on p2 hides it): stat
#    and fstat show the size, and pread through the descriptor reads the
#    bytes;
#  - a stat(2) between write(2) and close(2): after the close, and after
#    an fsync(2), stat shows the modification time of the write and the
#    blocks the data takes, not what the stat during the write saw;
#  - hard links made and removed through p1, in one directory and in
#    two: every name shows the new link count;
#  - a write past the largest size a file may have: the error comes at
#    close(2) (EFBIG), and stat then shows the holder's size, not the
#    size the write would have made;
#  - fchmod(2), fchown(2) and futimens(2) of a file unlinked while open
#    succeed, as on a local file system.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"
test_require fallocate stat

# links FILE...: their link counts, on one line.
links () {
	echo $(stat -c %h "$@")
}

test_expect_success 'setup: two peers, attr_timeout 5, a directory of p2' '
	peers_net_setup 2 &&
	mkdir -p "$E2/d" &&
	peers_start_all 2 -o cache.attr_timeout=5 &&
	peers_wait_all_up 2 &&
	wait_for "test -d \"$M1/d\"" 5
'

test_expect_success 'truncate by path to a smaller size: stat shows it' '
	printf abcdef >"$M1/d/t" &&
	test "$(stat -c %s "$M1/d/t")" = 6 &&
	"$PYTHON" -c "import os, sys; os.truncate(sys.argv[1], 3)" "$M1/d/t" &&
	test "$(stat -c %s "$E2/d/t")" = 3 &&
	test "$(stat -c %s "$M1/d/t")" = 3 &&
	test "$(cat "$M1/d/t")" = abc
'

test_expect_success 'fallocate in a directory made through p1: the size shows' '
	mkdir "$M1/d/new" &&
	fallocate -l 64K "$M1/d/new/g" &&
	test "$(stat -c %s "$E2/d/new/g")" = 65536 &&
	test "$(stat -c %s "$M1/d/new/g")" = 65536
'

test_expect_success 'copy_file_range there: fstat and pread see the bytes' '
	head -c 1000 /dev/urandom >"$M1/d/new/src" &&
	"$PYTHON" - "$M1/d/new" >out <<-\EOF &&
	import os, sys
	d = sys.argv[1]
	a = os.open(d + "/src", os.O_RDONLY)
	b = os.open(d + "/dst", os.O_RDWR | os.O_CREAT, 0o644)
	n = os.copy_file_range(a, b, 1000)
	print(n, os.fstat(b).st_size, len(os.pread(b, 2000, 0)))
	EOF
	test_output "1000 1000 1000" cat out &&
	cmp "$M1/d/new/src" "$M1/d/new/dst"
'

test_expect_success 'a stat during the write: close and fsync show the new times' '
	echo xxxx >"$M1/d/m" &&
	touch -d "2001-01-01 00:00:00" "$M1/d/m" &&
	test "$(stat -c %Y "$M1/d/m")" = 978307200 &&
	"$PYTHON" - "$M1/d/m" <<-\EOF &&
	import os, sys
	fd = os.open(sys.argv[1], os.O_WRONLY)
	os.write(fd, b"yy")
	os.stat(sys.argv[1])
	os.close(fd)
	EOF
	test "$(stat -c %Y "$E2/d/m")" -gt 978307200 &&
	test "$(stat -c %Y "$M1/d/m")" = "$(stat -c %Y "$E2/d/m")" &&
	touch -d "2001-01-01 00:00:00" "$M1/d/m" &&
	"$PYTHON" - "$M1/d/m" <<-\EOF &&
	import os, sys
	fd = os.open(sys.argv[1], os.O_WRONLY)
	os.write(fd, b"zz")
	os.stat(sys.argv[1])
	os.fsync(fd)
	st = os.fstat(fd)
	assert st.st_mtime > 978307200, "fstat after fsync: %d" % st.st_mtime
	os.close(fd)
	EOF
	echo y >"$M1/d/b" &&
	"$PYTHON" - "$M1/d/b" <<-\EOF &&
	import os, sys
	fd = os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC)
	os.write(fd, b"z" * 5000)
	os.stat(sys.argv[1])
	os.close(fd)
	EOF
	test "$(stat -c %b "$M1/d/b")" = "$(stat -c %b "$E2/d/b")" &&
	test "$(stat -c %b "$M1/d/b")" -gt 0
'

test_expect_success 'a write past the largest size: EFBIG at close, then the holder size' '
	"$PYTHON" - "$M1/d/e" >out <<-\EOF &&
	import errno, os, sys
	fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
	os.pwrite(fd, b"x", (1 << 63) - 2)
	try:
	    os.close(fd)
	    print("close ok")
	except OSError as e:
	    print("close", errno.errorcode[e.errno])
	EOF
	test_output "close EFBIG" cat out &&
	test "$(stat -c %s "$E2/d/e")" = 0 &&
	test "$(stat -c %s "$M1/d/e")" = 0
'

test_expect_success 'hard links: every name shows the link count at once' '
	mkdir "$M1/d/l" "$M1/d/l2" &&
	echo A >"$M1/d/l/k1" &&
	stat "$M1/d/l/k1" >/dev/null &&
	ln "$M1/d/l/k1" "$M1/d/l/k2" &&
	stat "$M1/d/l/k2" >/dev/null &&
	ln "$M1/d/l/k2" "$M1/d/l/k3" &&
	ln "$M1/d/l/k3" "$M1/d/l2/k4" &&
	test_output "4 4 4 4" links "$M1/d/l/k1" "$M1/d/l/k2" "$M1/d/l/k3" \
		"$M1/d/l2/k4" &&
	rm "$M1/d/l/k2" &&
	test_output "3 3 3" links "$M1/d/l/k1" "$M1/d/l/k3" "$M1/d/l2/k4"
'

test_expect_success 'fchmod, fchown, futimens of a file unlinked while open' '
	echo x >"$M1/d/u" &&
	"$PYTHON" - "$M1/d/u" <<-\EOF
	import os, sys
	fd = os.open(sys.argv[1], os.O_RDWR)
	os.unlink(sys.argv[1])
	os.fchmod(fd, 0o600)
	os.fchown(fd, 0, 0)
	os.utime(fd, (1000000000, 1000000000))
	st = os.fstat(fd)
	assert st.st_mode & 0o777 == 0o600 and st.st_mtime == 1000000000, st
	os.close(fd)
	EOF
'

test_done
