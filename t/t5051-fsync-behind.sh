#!/bin/bash
#
# fsync(2) sent right behind the write-back (PROTO_CAP_FSYNC_ORDER): p1
# writes to files p2 holds on an ext4 file system of its own (a loop
# device over an image file), then fsyncs; p1 sends the WRITEs and the
# FSYNC together and p2 runs the FSYNC after the WRITEs.  Checked:
#
#  - when fsync returns 0, every page written is in the image file, the
#    device itself (what the file system wrote out), not only in p2's
#    page cache; and the file on p2 is what was written;
#  - with the file system full, the WRITEs that fail give fsync(2)
#    ENOSPC (once: the next fsync returns 0), and with room again the
#    same file takes the writes and an fsync;
#  - SQLite in WAL mode commits through the same path, integrity_check
#    ok on p2 (in a directory p2 alone has, so that the database is
#    p2's, not made on p1);
#  - a holder without the capability gets the FSYNC only after the
#    WRITEs' answers, with the same results.
#
# p1's `pufs status` counts the fsyncs sent behind their writes and those
# sent after their answers.  Eight partial blocks, never whole (a whole
# block goes back at once), stay dirty until the fsync, so that eight
# WRITE frames are in flight with the FSYNC behind them.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"
test_require mkfs.ext4 losetup cmp

# p1 writes back only on demand, apart from whole blocks.
LAZY=cache.writeback_interval=30
IMG=$TRASH/disk.img

# Write the helper that writes partial blocks, fsyncs and checks.
cat >"$_LIB/pb.py" <<'EOF'
# pb.py write FILE SEED N STEP...: open FILE (O_RDWR|O_CREAT), write N
# partial blocks of 128 KiB (block i: bytes 1 to 128 KiB - 1 of block
# 2 * i) of random bytes from SEED, keep what the file should hold in
# FILE.want (a path outside the mount: argument WANT after N), then run
# each STEP: fsync, fdatasync, close.  Prints "write ok|ERRNO" and one
# line per step, "STEP ok|ERRNO"; exits 0 whatever the errors.
# pb.py pages IMAGE FILE: how many of FILE's 4 KiB pages that are not
# all zeros are found, 4 KiB-aligned, in IMAGE; prints "FOUND of TOTAL".
import errno, os, random, sys

BS = 128 << 10

def name(e):
    return errno.errorcode.get(e.errno, str(e.errno))

def pages(data):
    return [data[o:o + 4096] for o in range(0, len(data) - 4095, 4096)]

if sys.argv[1] == 'pages':
    img = open(sys.argv[2], 'rb').read()
    have = set(img[o:o + 4096] for o in range(0, len(img), 4096))
    want = [p for p in pages(open(sys.argv[3], 'rb').read()) if p.strip(b'\0')]
    print('%d of %d' % (sum(p in have for p in want), len(want)))
    sys.exit(0)
path, seed, n, want = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
rnd = random.Random(seed)
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
buf = bytearray(os.pread(fd, 1 << 30, 0))
res = 'ok'
for i in range(n):
    off = 2 * i * BS + 1
    data = rnd.randbytes(BS - 2)
    if len(buf) < off + len(data):
        buf.extend(bytes(off + len(data) - len(buf)))
    buf[off:off + len(data)] = data
    try:
        os.pwrite(fd, data, off)
    except OSError as e:
        res = name(e)
        break
open(want, 'wb').write(buf)
print('write', res, flush=True)
for step in sys.argv[6:]:
    try:
        {'fsync': os.fsync, 'fdatasync': os.fdatasync, 'close': os.close}[step](fd)
        print(step, 'ok', flush=True)
    except OSError as e:
        print(step, name(e), flush=True)
EOF

# pb ARGS: see pb.py.
pb () {
	"$PYTHON" "$_LIB/pb.py" "$@"
}

# counts: p1's fsyncs behind and after, as "BEHIND AFTER".
counts () {
	echo "$(jget 1 data.fsync_behind) $(jget 1 data.fsync_after)"
}

# on_disk FILE: every page of FILE (p2's copy, written through p1) that
# is not zeros is in the image, out of p2's page cache.
on_disk () {
	local r
	r=$(pb pages "$IMG" "$1") &&
	echo "pages in the image: $r" &&
	set -- $r && test "$1" = "$3" && test "$1" -gt 0
}

# outcome: the lines pb.py printed.
outcome () {
	cat out
}

test_expect_success 'setup: p2 exports an ext4 file system on a loop device' '
	peers_net_setup 2 &&
	truncate -s 64M "$IMG" &&
	mkfs.ext4 -q -F -m 0 -b 4096 -E lazy_itable_init=0,lazy_journal_init=0 "$IMG" &&
	mkdir -p "$E2" &&
	mount -o loop "$IMG" "$E2" &&
	echo "$E2" >>"$_LIB/mounts" &&
	peers_start_all 2 -o "$LAZY" &&
	peers_wait_all_up 2
'

# rounds STEP N: ROUNDS times, a new file on p2 gets N partial blocks
# through p1, then STEP (fsync or fdatasync) and close; each time the
# step returns 0, sent behind the WRITEs, and every page is on the
# device.  A FSYNC run beside its WRITEs instead of after them misses
# some pages now and then, not every time: hence the rounds.
ROUNDS=6
rounds () {
	local i c0 c1
	for i in $(seq $ROUNDS); do
		: >"$E2/$1$i" &&
		wait_for "test -e \"$M1/$1$i\"" 5 &&
		c0=$(counts) &&
		pb write "$M1/$1$i" "$i" "$2" "$1$i.want" "$1" close >out &&
		test_output "$(printf "write ok\n%s ok\nclose ok" "$1")" outcome &&
		c1=$(counts) &&
		echo "fsync behind, after: $c0 -> $c1" &&
		test "${c1% *}" -gt "${c0% *}" && test "${c1#* }" = "${c0#* }" &&
		cmp "$1$i.want" "$E2/$1$i" &&
		on_disk "$E2/$1$i" || return 1
	done
}

test_expect_success 'fsync behind 8 WRITE frames: 0, and every page on the device' '
	rounds fsync 8
'

test_expect_success 'fdatasync behind 6 WRITE frames: the same' '
	rounds fdatasync 6
'

test_expect_success 'without fsync (close only) the pages need not be on the device' '
	: >"$E2/h" &&
	wait_for "test -e \"$M1/h\"" 5 &&
	pb write "$M1/h" 3 4 h.want close >out &&
	test_output "$(printf "write ok\nclose ok")" outcome &&
	cmp h.want "$E2/h" &&
	echo "pages in the image without fsync: $(pb pages "$IMG" "$E2/h")"
'

test_expect_success 'file system full: fsync behind the WRITEs returns ENOSPC, once' '
	rm -f "$E2/h" && sync -f "$E2" &&
	avail=$(df --output=avail -B1 "$E2" | tail -1) &&
	fallocate -l $((avail - (256 << 10))) "$E2/filler" &&
	df -B1 "$E2" &&
	: >"$E2/full" &&
	wait_for "test -e \"$M1/full\"" 5 &&
	e0=$(jget 1 data.writeback_errors) && c0=$(counts) &&
	pb write "$M1/full" 4 8 full.want fsync fsync close >out &&
	test_output "$(printf "write ok\nfsync ENOSPC\nfsync ok\nclose ok")" outcome &&
	c1=$(counts) &&
	echo "fsync behind, after: $c0 -> $c1" &&
	test "${c1% *}" -gt "${c0% *}" &&
	test "$(jget 1 data.writeback_errors)" -gt "$e0"
'

test_expect_success 'room again: the same file takes the writes and an fsync' '
	rm -f "$E2/filler" &&
	c0=$(counts) &&
	pb write "$M1/full" 5 8 full.want fsync close >out &&
	test_output "$(printf "write ok\nfsync ok\nclose ok")" outcome &&
	c1=$(counts) &&
	test "${c1% *}" -gt "${c0% *}" &&
	cmp full.want "$E2/full" &&
	on_disk "$E2/full"
'

test_expect_success 'SQLite in WAL mode: commits behind their writes, integrity_check ok' '
	command -v sqlite3 || { echo "no sqlite3"; exit 0; } &&
	{
		echo "PRAGMA journal_mode=WAL;"
		echo "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);"
		for i in $(seq 50); do
			echo "BEGIN; INSERT INTO t (v) VALUES (hex(randomblob(300)));"
			echo "INSERT INTO t (v) VALUES ($i); COMMIT;"
		done
		echo "PRAGMA integrity_check;"
		echo "SELECT count(*) FROM t;"
	} >tx.sql &&
	mkdir "$E2/sql" &&
	wait_for "test -d \"$M1/sql\"" 5 &&
	c0=$(counts) &&
	sqlite3 "$M1/sql/db.sqlite" <tx.sql >out &&
	test_output "$(printf "wal\nok\n100")" outcome &&
	c1=$(counts) &&
	echo "fsync behind, after: $c0 -> $c1" &&
	test $((${c1% *} - ${c0% *})) -ge 50 &&
	sqlite3 "$E2/sql/db.sqlite" "PRAGMA integrity_check; SELECT count(*) FROM t;" >out &&
	test_output "$(printf "ok\n100")" outcome
'

test_expect_success 'a holder without the capability: FSYNC after the answers' '
	peer_stop 2 &&
	PUFS_TEST_CAPS=$((0x5ff)) peer_start 2 -o "$LAZY" &&
	peers_wait_all_up 2 &&
	: >"$E2/old" &&
	wait_for "test -e \"$M1/old\"" 5 &&
	c0=$(counts) &&
	pb write "$M1/old" 6 8 old.want fsync close >out &&
	test_output "$(printf "write ok\nfsync ok\nclose ok")" outcome &&
	c1=$(counts) &&
	echo "fsync behind, after: $c0 -> $c1" &&
	test "${c1% *}" = "${c0% *}" && test "${c1#* }" -gt "${c0#* }" &&
	cmp old.want "$E2/old" &&
	on_disk "$E2/old"
'

test_done
