#!/bin/bash
#
# The data path on one peer: read, write, append, overwrite, truncate,
# fallocate, fsync, copy_file_range, sparse files with SEEK_DATA and
# SEEK_HOLE, mmap (MAP_SHARED writes read back through another
# descriptor), 64 MiB files both ways, concurrent writers, close-to-open
# after a change on disk, and direct_io = yes.

. "$(dirname "$0")/lib.sh"

test_require sha256sum dd fallocate

E=$TRASH/export
M=$TRASH/mnt

test_expect_success 'setup' '
	mkdir -p "$E" "$M" &&
	pufs_start alpha "$M" -e "$E" -o cache.attr_timeout=0.2
'

test_expect_success 'write then read, in the mount and in the export' '
	printf "hello, world\n" >"$M/w" &&
	test_output "hello, world" cat "$M/w" &&
	test_output "hello, world" cat "$E/w" &&
	test_output 13 stat -c %s "$M/w"
'

test_expect_success 'append' '
	echo one >"$M/ap" && echo two >>"$M/ap" && echo three >>"$M/ap" &&
	printf "one\ntwo\nthree\n" >expect &&
	cat "$M/ap" >actual && test_cmp expect actual &&
	cat "$E/ap" >actual && test_cmp expect actual
'

test_expect_success 'O_APPEND from two descriptors interleaves, never overwrites' '
	"$PYTHON" - "$M/ap2" <<-\EOF &&
	import os, sys
	a = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
	b = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
	for i in range(100):
	    os.write(a, b"a%03d\n" % i)
	    os.write(b, b"b%03d\n" % i)
	os.close(a)
	os.close(b)
	EOF
	test_output 1000 stat -c %s "$E/ap2" &&
	test_output 200 sh -c "sort -u \"$M/ap2\" | wc -l"
'

test_expect_success 'overwrite in the middle, pwrite past the end' '
	printf "0123456789" >"$M/ow" &&
	printf "AB" | dd of="$M/ow" bs=1 seek=4 conv=notrunc 2>/dev/null &&
	test_output 0123AB6789 cat "$M/ow" &&
	test_output 0123AB6789 cat "$E/ow" &&
	"$PYTHON" - "$M/ow" <<-\EOF &&
	import os, sys
	fd = os.open(sys.argv[1], os.O_RDWR)
	os.pwrite(fd, b"Z", 20)
	assert os.pread(fd, 100, 0) == b"0123AB6789" + b"\0" * 10 + b"Z"
	assert os.pread(fd, 100, 21) == b""
	assert os.pread(fd, 100, 1000) == b""
	os.close(fd)
	EOF
	test_output 21 stat -c %s "$E/ow"
'

test_expect_success 'truncate: shrink, grow with zeros, O_TRUNC, ftruncate' '
	seq 1 1000 >"$M/tr" &&
	truncate -s 10 "$M/tr" &&
	test_output 10 stat -c %s "$M/tr" && test_output 10 stat -c %s "$E/tr" &&
	printf "1\n2\n3\n4\n5\n" >expect && test_cmp expect "$M/tr" &&
	truncate -s 100000 "$M/tr" &&
	test_output 100000 stat -c %s "$E/tr" &&
	"$PYTHON" -c "import sys; d = open(sys.argv[1], \"rb\").read(); assert d[10:] == bytes(99990), len(d)" "$M/tr" &&
	echo short >"$M/tr" &&
	test_output short cat "$E/tr" &&
	pyop ftruncate "$M/tr" 3 &&
	test_output sho cat "$M/tr" && test_output sho cat "$E/tr"
'

test_expect_success 'fallocate allocates and sizes' '
	fallocate -l 1M "$M/fa" &&
	test_output 1048576 stat -c %s "$M/fa" &&
	test_output 1048576 stat -c %s "$E/fa" &&
	test "$(stat -c %b "$E/fa")" -ge 2048 &&
	echo x >"$M/fk" &&
	fallocate -n -l 1M "$M/fk" &&
	test_output 2 stat -c %s "$M/fk" &&
	test "$(stat -c %b "$E/fk")" -ge 2048 &&
	test_output x cat "$M/fk"
'

test_expect_success 'fsync and fdatasync put the data in the export before close' '
	"$PYTHON" - "$M/fs" "$E/fs" "$M" <<-\EOF
	import os, sys
	fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
	os.write(fd, b"x" * 300000)
	os.fsync(fd)
	assert open(sys.argv[2], "rb").read() == b"x" * 300000
	os.write(fd, b"y")
	os.fdatasync(fd)
	assert os.path.getsize(sys.argv[2]) == 300001
	os.close(fd)
	d = os.open(sys.argv[3], os.O_RDONLY | os.O_DIRECTORY)
	os.fsync(d)
	os.close(d)
	EOF
'

test_expect_success 'a write is read at once through another descriptor' '
	"$PYTHON" - "$M/two" <<-\EOF
	import os, sys
	w = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
	r = os.open(sys.argv[1], os.O_RDONLY)
	for i in range(50):
	    data = b"%06d" % i * 1000
	    os.pwrite(w, data, 0)
	    assert os.pread(r, len(data), 0) == data, i
	os.close(w)
	os.close(r)
	EOF
'

test_expect_success 'copy_file_range, whole and partial' '
	dd if=/dev/urandom of="$M/cfr-src" bs=1M count=3 2>/dev/null &&
	"$PYTHON" - "$M/cfr-src" "$M/cfr-dst" "$M/cfr-part" <<-\EOF &&
	import os, sys
	s = os.open(sys.argv[1], os.O_RDONLY)
	d = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
	n = os.fstat(s).st_size
	done = 0
	while done < n:
	    c = os.copy_file_range(s, d, n - done)
	    assert c > 0
	    done += c
	os.close(d)
	p = os.open(sys.argv[3], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
	want = 100000
	got = 0
	while got < want:
	    got += os.copy_file_range(s, p, want - got, 12345 + got, 777 + got)
	os.close(p)
	os.close(s)
	EOF
	cmp "$M/cfr-src" "$M/cfr-dst" &&
	cmp "$E/cfr-src" "$E/cfr-dst" &&
	test_output 100777 stat -c %s "$E/cfr-part" &&
	cmp -i 12345:777 -n 100000 "$E/cfr-src" "$E/cfr-part"
'

test_expect_success 'sparse files: holes read as zeros and stay holes' '
	truncate -s 10M "$M/sparse" &&
	printf "data" | dd of="$M/sparse" bs=4096 seek=1280 conv=notrunc 2>/dev/null &&
	test_output 10485760 stat -c %s "$E/sparse" &&
	test "$(stat -c %b "$E/sparse")" -lt 2048 &&
	"$PYTHON" -c "
import sys
d = open(sys.argv[1], \"rb\").read()
assert d[:5242880] == bytes(5242880)
assert d[5242880:5242884] == b\"data\"
assert d[5242884:] == bytes(len(d) - 5242884)
" "$M/sparse"
'

test_expect_success 'SEEK_DATA and SEEK_HOLE agree with the export' '
	for w in "data 0" "hole 0" "data 5242880" "hole 5242880" \
	    "data 5242884" "hole 5242884" "data 1000" "hole 9999999"; do
		set -- $w &&
		got=$(pyop seek "$M/sparse" $1 $2) &&
		want=$(pyop seek "$E/sparse" $1 $2) &&
		echo "SEEK_$1 $2: mount $got, export $want" &&
		test "$got" = "$want" || return 1
	done &&
	test_errno ENXIO seek "$M/sparse" data 10485760 &&
	test_errno ENXIO seek "$M/sparse" hole 20000000
'

test_expect_success 'mmap: read a file through a mapping' '
	seq 1 100000 >"$E/mm" &&
	"$PYTHON" - "$M/mm" "$E/mm" <<-\EOF
	import mmap, sys
	with open(sys.argv[1], "rb") as f:
	    m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
	    assert m[:] == open(sys.argv[2], "rb").read()
	    m.close()
	EOF
'

test_expect_success 'mmap: MAP_SHARED writes read back through another descriptor and on disk' '
	dd if=/dev/zero of="$M/mw" bs=4096 count=64 2>/dev/null &&
	"$PYTHON" - "$M/mw" "$E/mw" <<-\EOF
	import mmap, os, sys
	fd = os.open(sys.argv[1], os.O_RDWR)
	m = mmap.mmap(fd, 0, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
	for i in range(64):
	    m[i * 4096:i * 4096 + 8] = b"page%04d" % i
	m.flush()
	other = os.open(sys.argv[1], os.O_RDONLY)
	for i in range(64):
	    assert os.pread(other, 8, i * 4096) == b"page%04d" % i, i
	m.close()
	os.fsync(fd)
	os.close(fd)
	os.close(other)
	data = open(sys.argv[2], "rb").read()
	for i in range(64):
	    assert data[i * 4096:i * 4096 + 8] == b"page%04d" % i, i
	EOF
'

test_expect_success 'a 64 MiB file written through the mount' '
	dd if=/dev/urandom of=big.src bs=1M count=64 2>/dev/null &&
	dd if=big.src of="$M/big" bs=1M 2>/dev/null &&
	sum=$(sha256sum <big.src) &&
	test_output "$sum" sha256sum <"$M/big" &&
	test_output "$sum" sha256sum <"$E/big" &&
	test_output 67108864 stat -c %s "$M/big"
'

test_expect_success 'a 64 MiB file written on disk, read through the mount' '
	dd if=/dev/urandom of="$E/big2" bs=1M count=64 2>/dev/null &&
	sum=$(sha256sum <"$E/big2") &&
	wait_for "test -f \"$M/big2\"" 5 &&
	test_output "$sum" sha256sum <"$M/big2" &&
	test_output "$(dd if="$E/big2" bs=4096 skip=4097 count=33 2>/dev/null | sha256sum)" \
		sh -c "dd if=\"$M/big2\" bs=4096 skip=4097 count=33 2>/dev/null | sha256sum" &&
	rm -f "$M/big" "$M/big2" big.src
'

test_expect_success 'eight concurrent writers to different files' '
	for i in 1 2 3 4 5 6 7 8; do
		dd if=/dev/urandom of=src.$i bs=64k count=$((64 + i)) 2>/dev/null || return 1
	done &&
	pids="" &&
	for i in 1 2 3 4 5 6 7 8; do
		dd if=src.$i of="$M/conc.$i" bs=4k 2>/dev/null &
		pids="$pids $!"
	done &&
	for p in $pids; do
		wait $p || return 1
	done &&
	for i in 1 2 3 4 5 6 7 8; do
		cmp src.$i "$M/conc.$i" && cmp src.$i "$E/conc.$i" || return 1
	done
'

test_expect_success 'concurrent readers and writers of one file' '
	dd if=/dev/urandom of=shared.src bs=1M count=8 2>/dev/null &&
	cp shared.src "$M/shared" &&
	pids="" &&
	for i in 1 2 3 4; do
		cmp shared.src "$M/shared" &
		pids="$pids $!"
		dd if=/dev/zero of="$M/side.$i" bs=1M count=4 2>/dev/null &
		pids="$pids $!"
	done &&
	for p in $pids; do
		wait $p || return 1
	done
'

test_expect_success 'close-to-open: a same-size change on disk is read after expiry' '
	echo aaaa >"$E/cto" &&
	test_output aaaa cat "$M/cto" &&
	echo bbbb >"$E/cto.new" && mv "$E/cto.new" "$E/cto" &&
	wait_for "test \"\$(cat \"$M/cto\")\" = bbbb" 5 &&
	echo cccc >"$E/cto2" && test_output cccc cat "$M/cto2" &&
	printf dddd | dd of="$E/cto2" conv=notrunc 2>/dev/null &&
	wait_for "test \"\$(cat \"$M/cto2\")\" = dddd" 5
'

test_expect_success 'direct_io = yes: reads and writes still right' '
	pufs_stop alpha &&
	pufs_start direct "$M" -e "$E" -o cache.direct_io=yes,cache.attr_timeout=0.2 &&
	dd if=/dev/urandom of=dio.src bs=1M count=8 2>/dev/null &&
	dd if=dio.src of="$M/dio" bs=64k 2>/dev/null &&
	cmp dio.src "$M/dio" && cmp dio.src "$E/dio" &&
	"$PYTHON" - "$M/dio" <<-\EOF
	import mmap, os, sys
	fd = os.open(sys.argv[1], os.O_RDWR)
	try:
	    m = mmap.mmap(fd, 4096, mmap.MAP_SHARED,
	                  mmap.PROT_READ | mmap.PROT_WRITE)
	except OSError as e:
	    print("shared writable mapping refused:", e)
	else:
	    m[0:4] = b"MMAP"
	    m.flush()
	    m.close()
	    assert os.pread(fd, 4, 0) == b"MMAP"
	os.close(fd)
	EOF
'

test_expect_success 'stop' '
	pufs_stop direct
'

test_done
