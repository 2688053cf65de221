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
#    the mode are p2's too; p1's status counts one SETATTR behind per
#    file (the fchmod finds the file clean and goes as ever);
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
test_require tar cmp

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

# behind: p1's SETATTRs sent behind their writes.
behind () {
	jget 1 data.setattr_behind
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
	peers_start_all 2 -o "$LAZY" &&
	peers_wait_all_up 2
'

test_expect_success 'write, futimens, fchmod, close: all of it on p2, one SETATTR behind each' '
	mkdir want &&
	wait_for "test -d \"$M1/a\"" 5 &&
	b0=$(behind) &&
	"$PYTHON" "$_LIB/sa.py" "$M1/a" want 20 >out &&
	test_output ok cat out &&
	b1=$(behind) &&
	echo "setattr behind: $b0 -> $b1" &&
	test $((b1 - b0)) = 20 &&
	check_files a 20
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
	b0=$(behind) &&
	tar xf src.tar -C "$M1/t" &&
	b1=$(behind) &&
	echo "setattr behind: $b0 -> $b1" &&
	test $((b1 - b0)) -gt 0 &&
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
	b0=$(behind) &&
	"$PYTHON" "$_LIB/sa.py" "$M1/b" want 5 >out &&
	test_output ok cat out &&
	b1=$(behind) &&
	test "$b1" = "$b0" &&
	check_files b 5
'

test_done
