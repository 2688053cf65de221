#!/bin/bash
#
# Write-behind when the holder fails: p1 writes to files p2 holds.  With
# p2's export on an 8 MiB tmpfs, 32 MiB of write(2) succeed (the bytes
# are cached) and the fsync(2) or close(2) that follows returns ENOSPC;
# what reached p2 is a prefix of what was written, pufs status counts the
# failure, and once there is room again the same file takes a write and
# an fsync (the error is reported once).  p2 killed while dirty bytes
# are queued, or cut off from the network: close(2) returns EIO before
# op_timeout (3 s) + 2 s have passed.
# pufs status shows bytes written back, errors, read-ahead hits and
# misses, clean and dirty bytes; writeback_interval sends a partial
# block of a file left open; SIGTERM writes every dirty byte back before
# the daemon exits 0.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"
test_require dd cmp

# Longest close(2) may take once the holder is gone: op_timeout + 2 s.
LIMIT=5

# Write the helper that writes a file from a source and reports each step.
cat >"$_LIB/wb.py" <<'EOF'
# wb.py FILE SRC STEP...: open FILE (O_WRONLY|O_CREAT|O_TRUNC), write
# SRC's bytes to it 1 MiB at a time, then run each STEP in order:
#   fsync       fsync(2)
#   pwrite OFF SRC2   write SRC2's bytes at offset OFF (one pwrite(2))
#   close       close(2)
#   hold PATH   write "held" to PATH.st, then wait (60 s at most) until
#               PATH exists
# Prints one line per step: "write ok|ERRNO", "fsync ok|ERRNO",
# "pwrite ok|ERRNO", "close ok|ERRNO SECONDS"; exits 0 whatever the errors.
import errno, os, sys, time

def name(e):
    return errno.errorcode.get(e.errno, str(e.errno))

path, src, steps = sys.argv[1], sys.argv[2], sys.argv[3:]
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
res = 'ok'
with open(src, 'rb') as s:
    while True:
        buf = s.read(1 << 20)
        if not buf:
            break
        try:
            done = 0
            while done < len(buf):
                done += os.write(fd, buf[done:])
        except OSError as e:
            res = name(e)
            break
print('write', res, flush=True)
i = 0
while i < len(steps):
    step = steps[i]
    if step == 'fsync':
        try:
            os.fsync(fd)
            print('fsync ok', flush=True)
        except OSError as e:
            print('fsync', name(e), flush=True)
    elif step == 'pwrite':
        with open(steps[i + 2], 'rb') as s:
            buf = s.read()
        try:
            os.pwrite(fd, buf, int(steps[i + 1]))
            print('pwrite ok', flush=True)
        except OSError as e:
            print('pwrite', name(e), flush=True)
        i += 2
    elif step == 'close':
        t0 = time.monotonic()
        try:
            os.close(fd)
            res = 'ok'
        except OSError as e:
            res = name(e)
        print('close %s %.3f' % (res, time.monotonic() - t0), flush=True)
    elif step == 'hold':
        i += 1
        with open(steps[i] + '.st', 'w') as f:
            f.write('held\n')
        end = time.monotonic() + 60
        while not os.path.exists(steps[i]) and time.monotonic() < end:
            time.sleep(0.02)
    i += 1
EOF

# wb FILE SRC STEP...: see wb.py.
wb () {
	"$PYTHON" "$_LIB/wb.py" "$@"
}

# outcome: the steps wb.py reported in out, without close's seconds.
outcome () {
	sed "s/^\(close [A-Za-z0-9]*\) .*/\1/" out
}

# pieces_of FILE SRC: every 4 KiB page of FILE is SRC's page at the same
# offset or a hole (zeros). The holder writes a file's blocks on parallel
# workers, so when its disk fills, a later block may land while an earlier
# one fails with ENOSPC, as with any file system's write-back.
pieces_of () {
	"$PYTHON" - "$1" "$2" <<-'EOP'
	import sys
	a = open(sys.argv[1], "rb").read()
	b = open(sys.argv[2], "rb").read()
	pages = [(o, a[o:o + 4096]) for o in range(0, len(a), 4096)]
	bad = [o for o, p in pages if p != b[o:o + len(p)] and p.strip(b"\0")]
	print("pieces_of: %d bytes, %d pages neither source nor hole" %
	      (len(a), len(bad)))
	sys.exit(1 if bad or len(a) > len(b) else 0)
	EOP
}

# cut_short FILE ERRORS0: FILE on p2 holds pieces of src32, neither empty
# nor whole, and p1 counts more write-back errors than ERRORS0.
cut_short () {
	local e1
	pieces_of "$1" src32 && test "$(stat -c %s "$1")" -gt 0 &&
	! cmp -s "$1" src32 &&
	e1=$(jget 1 data.writeback_errors) &&
	echo "writeback_errors $2 -> $e1" &&
	test "$e1" -gt "$2"
}

# held PATH: wait until a wb.py hold step has written PATH.st.
held () {
	wait_for "test -s '$1.st'" 20
}

# p1 writes everything back only on demand, apart from whole blocks.
LAZY=cache.writeback_interval=30

test_expect_success 'setup: sources; p2 exports an 8 MiB tmpfs' '
	peers_net_setup 2 &&
	dd if=/dev/urandom of=src32 bs=1M count=32 status=none &&
	dd if=/dev/urandom of=src1 bs=1M count=1 status=none &&
	head -c 100000 src1 >small &&
	peers_mount_tmpfs "$E2" 8M &&
	peers_start_all 2 -o "$LAZY" &&
	peers_wait_all_up 2 &&
	: >"$E2/f1" && : >"$E2/f2" &&
	wait_for "test -e \"$M1/f1\" && test -e \"$M1/f2\"" 5
'

test_expect_success 'export full: writes succeed, fsync returns ENOSPC' '
	e0=$(jget 1 data.writeback_errors) &&
	wb "$M1/f1" src32 fsync close >out &&
	test_output "$(printf "write ok\nfsync ENOSPC\nclose ok")" outcome &&
	cut_short "$E2/f1" "$e0"
'

test_expect_success 'export full: writes succeed, close returns ENOSPC' '
	: >"$E2/f1" &&
	e0=$(jget 1 data.writeback_errors) &&
	wb "$M1/f2" src32 close >out &&
	test_output "$(printf "write ok\nclose ENOSPC")" outcome &&
	cut_short "$E2/f2" "$e0"
'

test_expect_success 'room again: the same files take a write and fsync' '
	: >"$E2/f1" && : >"$E2/f2" &&
	for f in f1 f2; do
		wb "$M1/$f" src1 fsync close >out &&
		test_output "$(printf "write ok\nfsync ok\nclose ok")" outcome &&
		cmp src1 "$E2/$f" || exit 1
	done
'

test_expect_success 'restart p2 on a large export, both lazy' '
	peer_stop 2 &&
	mkdir -p "$TRASH/wide" &&
	peer_start 2 --no-export -e "$TRASH/wide" -o "$LAZY" &&
	peers_wait_all_up 2 &&
	: >"$TRASH/wide/w" && : >"$TRASH/wide/k" &&
	dd if=/dev/urandom of="$TRASH/wide/r16" bs=1M count=16 status=none &&
	wait_for "test -e \"$M1/w\" && test -e \"$M1/k\" && test -e \"$M1/r16\"" 5
'

test_expect_success 'status: dirty bytes queued, 0 after close; bytes back' '
	wb0=$(jget 1 data.written_back) &&
	test_when_finished "touch \"$TRASH/w.go\"" &&
	{ wb "$M1/w" small hold "$TRASH/w.go" close >out & } &&
	pid=$! &&
	held "$TRASH/w.go" &&
	d=$(jget 1 data.dirty_bytes) &&
	echo "dirty while queued: $d" &&
	test "$d" -gt 0 &&
	"$PUFS" status -s "$(peer_sock 1)" >text &&
	cat text &&
	grep -E "^data: .* [1-9][0-9]* dirty" text &&
	touch "$TRASH/w.go" && wait $pid &&
	cat out && grep -q "^close ok " out &&
	cmp small "$TRASH/wide/w" &&
	test "$(jget 1 data.dirty_bytes)" = 0 &&
	wb1=$(jget 1 data.written_back) &&
	echo "written_back $wb0 -> $wb1" &&
	test $((wb1 - wb0)) = 100000
'

test_expect_success 'status: a sequential read counts read-ahead hits' '
	h0=$(jget 1 data.readahead_hits) && m0=$(jget 1 data.readahead_misses) &&
	c0=$(jget 1 data.clean_blocks) &&
	cmp "$M1/r16" "$TRASH/wide/r16" &&
	h1=$(jget 1 data.readahead_hits) && m1=$(jget 1 data.readahead_misses) &&
	c1=$(jget 1 data.clean_blocks) &&
	echo "hits $h0 -> $h1, misses $m0 -> $m1, clean blocks $c0 -> $c1" &&
	test "$h1" -gt "$h0" && test "$m1" -gt "$m0" && test "$c1" -gt "$c0" &&
	"$PUFS" status -s "$(peer_sock 1)" >text &&
	cat text &&
	grep -E "^data: .* [1-9][0-9]* bytes clean, .*read-ahead $h1 hits, $m1 misses" text &&
	grep -E "^written: +$(jget 1 data.written_back) bytes back in [0-9]+ frames, $(jget 1 data.writeback_errors) errors" text
'

test_expect_success 'holder killed with dirty bytes queued: close gives EIO in time' '
	test_when_finished "touch \"$TRASH/k.go\"" &&
	{ wb "$M1/k" small hold "$TRASH/k.go" close >out & } &&
	pid=$! &&
	held "$TRASH/k.go" &&
	test "$(jget 1 data.dirty_bytes)" -gt 0 &&
	e0=$(jget 1 data.writeback_errors) &&
	peer_kill 2 &&
	touch "$TRASH/k.go" &&
	wait_for "grep -q ^close out" 15 &&
	cat out &&
	grep -q "^close EIO " out &&
	secs=$(sed -n "s/^close EIO //p" out) &&
	awk -v s="$secs" -v l=$LIMIT "BEGIN { exit !(s < l) }" &&
	test "$(jget 1 data.dirty_bytes)" = 0 &&
	test "$(jget 1 data.writeback_errors)" -gt "$e0"
'

test_expect_success 'writeback_interval: a file left open reaches the holder' '
	peer_stop 1 &&
	peer_start 2 --no-export -e "$TRASH/wide" -o "$LAZY" &&
	peer_start 1 -o cache.writeback_interval=0.5 &&
	peers_wait_all_up 2 &&
	rm -f "$TRASH/wide/k" && : >"$TRASH/wide/i" &&
	wait_for "test -e \"$M1/i\"" 5 &&
	test_when_finished "touch \"$TRASH/i.go\"" &&
	{ wb "$M1/i" small hold "$TRASH/i.go" close >out & } &&
	pid=$! &&
	held "$TRASH/i.go" &&
	wait_for "cmp -s small \"$TRASH/wide/i\"" 2.5 &&
	touch "$TRASH/i.go" && wait $pid && cat out && grep -q "^close ok " out
'

test_expect_success 'SIGTERM writes every dirty byte back, exit 0' '
	peer_stop 1 &&
	peer_start 1 -o "$LAZY" &&
	peers_wait_all_up 2 &&
	: >"$TRASH/wide/t" &&
	wait_for "test -e \"$M1/t\"" 5 &&
	head -c $((2 << 20)) src32 >t.src &&
	: >t.want && wb t.want t.src pwrite $((9 << 18)) small close &&
	test_when_finished "touch \"$TRASH/t.go\"" &&
	{ wb "$M1/t" t.src pwrite $((9 << 18)) small \
	    hold "$TRASH/t.go" close >out & } &&
	pid=$! &&
	held "$TRASH/t.go" &&
	d=$(jget 1 data.dirty_bytes) &&
	echo "dirty at SIGTERM: $d" &&
	test "$d" -ge 100000 &&
	peer_stop 1 &&
	cmp t.want "$TRASH/wide/t" &&
	touch "$TRASH/t.go" && wait $pid && cat out
'

test_expect_success 'holder cut off with dirty bytes queued: close gives EIO in time' '
	peer_start 1 -o "$LAZY" &&
	peers_wait_all_up 2 &&
	: >"$TRASH/wide/c" &&
	wait_for "test -e \"$M1/c\"" 5 &&
	test_when_finished "touch \"$TRASH/c.go\"" &&
	{ wb "$M1/c" small hold "$TRASH/c.go" close >out & } &&
	pid=$! &&
	held "$TRASH/c.go" &&
	test "$(jget 1 data.dirty_bytes)" -gt 0 &&
	test_when_finished "peer_link_up 2" &&
	peer_link_down 2 &&
	touch "$TRASH/c.go" &&
	wait_for "grep -q ^close out" 15 &&
	cat out &&
	secs=$(sed -n "s/^close EIO //p" out) &&
	test -n "$secs" &&
	awk -v s="$secs" -v l=$LIMIT "BEGIN { exit !(s < l) }" &&
	wait $pid &&
	test "$(jget 1 data.dirty_bytes)" = 0
'

test_done
