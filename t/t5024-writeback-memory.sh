#!/bin/bash
#
# Write-behind keeps its memory bound: p1 writes 4 GiB sequentially to a
# file p2 holds with cache.cache_size=64M, and its daemon's peak RSS
# (VmHWM) stays at or below cache_size + 16 MiB; the file on p2 has the
# right size and content (every MiB is stamped with its index; a sample
# of them is compared).  With direct_io = yes, a re-read of a 32 MiB
# file that fits in the cache is served by the pufs cache alone: no READ
# frame goes to p2 the second time.  While the write streams, a small
# file's write and fsync(2) are not kept waiting behind it.
#
#   PUFS_TEST_WRITE_MIB  MiB to write (default 4096; 1024 when the daemon
#                        is built with AddressSanitizer, whose shadow
#                        memory and quarantine also lift the RSS bound to
#                        PUFS_TEST_RSS_MIB, default 80, or 400 then)
#
# The size comes down to what p2's disk holds, never below 1 GiB: with
# less than 1.5 GiB free the test fails and says so.

TEST_TIMEOUT=${TEST_TIMEOUT:-500}
T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"
test_require dd df ldd

CACHE_MIB=64
if ldd "$PUFS" 2>/dev/null | grep -q libasan; then
	SAN=1
	WRITE_MIB=${PUFS_TEST_WRITE_MIB:-1024}
	RSS_MIB=${PUFS_TEST_RSS_MIB:-400}
else
	SAN=0
	WRITE_MIB=${PUFS_TEST_WRITE_MIB:-4096}
	RSS_MIB=${PUFS_TEST_RSS_MIB:-$((CACHE_MIB + 16))}
fi

# Write the helper that writes or checks the stamped stream.
cat >"$_LIB/stamp.py" <<'EOF'
# stamp.py write FILE MIB: write MIB MiB to FILE (created, truncated), 1
# MiB per write(2); MiB i is a fixed random MiB with i in its first 8
# bytes.  stamp.py check FILE MIB: FILE is that stream: its size, and the
# first, last and 62 MiB spread between compared.
import os, sys

mode, path, mib = sys.argv[1], sys.argv[2], int(sys.argv[3])
M = 1 << 20
base = bytearray(os.urandom(M)) if mode == 'write' else None

def block(i):
    b = bytearray(base)
    b[0:8] = i.to_bytes(8, 'little')
    return b

if mode == 'write':
    with open(os.environ['STAMP_BASE'], 'wb') as f:
        f.write(base)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for i in range(mib):
        base[0:8] = i.to_bytes(8, 'little')
        mv = memoryview(base)
        while mv:
            mv = mv[os.write(fd, mv):]
    os.close(fd)
    sys.exit(0)
with open(os.environ['STAMP_BASE'], 'rb') as f:
    base = bytearray(f.read())
size = os.stat(path).st_size
if size != mib * M:
    sys.exit('%s: %d bytes, wanted %d' % (path, size, mib * M))
with open(path, 'rb') as f:
    for i in sorted({0, mib - 1} | {k * mib // 62 for k in range(62)}):
        f.seek(i * M)
        if f.read(M) != block(i):
            sys.exit('%s: MiB %d differs' % (path, i))
print('%s: %d MiB, sample matches' % (path, mib))
EOF
export STAMP_BASE=$TRASH/stamp.base

# hwm_kib NAME: the peak RSS of daemon NAME, in KiB.
hwm_kib () {
	awk '/^VmHWM:/ { print $2 }' "/proc/$(pufs_pid "$1")/status"
}

# timed_fsync FILE: write 1000 bytes to FILE and fsync(2) it, within
# FSYNC_S seconds although another file streams into the cache.
FSYNC_S=5
timed_fsync () {
	"$PYTHON" - "$1" "$FSYNC_S" <<-\EOF
	import os, sys, time
	t0 = time.monotonic()
	fd = os.open(sys.argv[1], os.O_WRONLY)
	os.write(fd, b"x" * 1000)
	os.fsync(fd)
	os.close(fd)
	t = time.monotonic() - t0
	print("fsync of a small file while streaming: %.3f s" % t)
	sys.exit(t >= float(sys.argv[2]))
	EOF
}

# jget K KEY.KEY...: one number of peer K's JSON status (0 if absent).
jget () {
	peer_status "$1" | "$PYTHON" -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v.get(k, 0) if isinstance(v, dict) else 0
print(v)
' "$2"
}

test_expect_success 'setup: two peers, p1 with a 64 MiB cache' '
	peers_net_setup 2 &&
	peer_start 2 &&
	peer_start 1 -o cache.cache_size=${CACHE_MIB}M &&
	peers_wait_all_up 2 &&
	: >"$E2/big" && : >"$E2/small" &&
	wait_for "test -e \"$M1/big\" && test -e \"$M1/small\"" 5
'

# The room p2's disk has decides the size; said in the test's name.
free_mib=$(df -Pm "$TRASH" | awk 'NR == 2 { print $4 }')
room=$((free_mib - 512))
[ "$room" -lt "$WRITE_MIB" ] && [ "$room" -ge 1024 ] && WRITE_MIB=$room
echo "# p2's disk: $free_mib MiB free; writing $WRITE_MIB MiB," \
    "RSS bound $RSS_MIB MiB (sanitized: $SAN)"

test_expect_success "write $WRITE_MIB MiB: RSS at most $RSS_MIB MiB, data whole" '
	if [ "$free_mib" -lt 1536 ]; then
		echo "only $free_mib MiB free on the disk of $TRASH: the test needs 1.5 GiB"
		exit 1
	fi &&
	h0=$(hwm_kib p1) &&
	echo "VmHWM before: $h0 KiB" &&
	t0=$EPOCHREALTIME &&
	{ "$PYTHON" "$_LIB/stamp.py" write "$M1/big" "$WRITE_MIB" & } &&
	pid=$! &&
	wait_for "test \$(stat -c %s \"$E2/big\") -ge $((128 << 20))" 30 &&
	for i in 1 2 3; do
		timed_fsync "$M1/small" || exit 1
	done &&
	kill -0 $pid &&
	wait $pid &&
	t1=$EPOCHREALTIME &&
	h1=$(hwm_kib p1) &&
	awk -v a="$t0" -v b="$t1" -v m="$WRITE_MIB" \
	    "BEGIN { printf \"wrote %d MiB in %.1f s (%.0f MB/s)\n\", m, b - a, m * 1.048576 / (b - a) }" &&
	echo "VmHWM after: $h1 KiB; waits for room: $(jget 1 data.write_waits)" &&
	test "$h1" -le $((RSS_MIB << 10)) &&
	"$PYTHON" "$_LIB/stamp.py" check "$E2/big" "$WRITE_MIB" &&
	rm -f "$E2/big"
'

test_expect_success 'direct_io = yes: a re-read is served by the pufs cache' '
	peer_stop 1 &&
	peer_start 1 -o cache.cache_size=${CACHE_MIB}M,cache.direct_io=yes &&
	peers_wait_all_up 2 &&
	dd if=/dev/urandom of="$E2/r32" bs=1M count=32 status=none &&
	wait_for "test -e \"$M1/r32\"" 5 &&
	cmp "$M1/r32" "$E2/r32" &&
	r1=$(jget 1 ops.read) &&
	cmp "$M1/r32" "$E2/r32" &&
	r2=$(jget 1 ops.read) &&
	echo "READ frames: $r1 the first time, $((r2 - r1)) the second" &&
	test "$r1" -gt 0 && test "$r2" = "$r1"
'

test_done
