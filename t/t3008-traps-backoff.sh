#!/bin/bash
#
# Traps of a file written on and on back off: p1 writes, in 4 KiB
# writes, files that p2 holds, slowly (a few MB/s, so the count cannot
# rest on the writer's speed) for seconds; p2 sends a handful of TRAP
# datagrams for them (at most 10; one per trap_delay would be dozens),
# and p3, which had them cached, sees every byte (attr_timeout 60: only
# the traps can tell it).  What waits goes at once with an fsync.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"

peers_multicast 38 7400
MC="$MC,cache.attr_timeout=60,cache.trap_delay=0.1"

# traps_sent K: TRAP datagrams peer K sent.
traps_sent () {
	peer_status "$1" | "$PYTHON" -c \
	    'import json,sys; print(json.load(sys.stdin)["traps"]["sent"])'
}

# settled K: peer K's traps.sent once it has not moved for 1 s (30 s
# at most).
settled () {
	local last cur same=0 i
	last=$(traps_sent "$1") || return 1
	for ((i = 0; i < 300 && same < 10; i++)); do
		sleep 0.1
		cur=$(traps_sent "$1") || return 1
		if [ "$cur" = "$last" ]; then
			same=$((same + 1))
		else
			same=0 last=$cur
		fi
	done
	[ "$same" -ge 10 ] && echo "$last"
}

# slow FILE MIB BYTE [MARK]: write MIB MiB of BYTE to FILE in 4 KiB
# writes, a pause of 50 ms after every 64 (about 5 MB/s), then MARK at
# offset 0 if given, then fsync.
slow () {
	timeout -k 2 120 "$PYTHON" -c '
import os, sys, time
path, mib, byte = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
mark = sys.argv[4].encode() if len(sys.argv) > 4 else b""
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
block = byte * 4096
for i in range(mib * 256):
    os.write(fd, block)
    if i % 64 == 63:
        time.sleep(0.05)
if mark:
    os.pwrite(fd, mark, 0)
os.fsync(fd)
os.close(fd)' "$@"
}

# sum FILE: the file's size and checksum.
sum () {
	echo "$(stat -c %s "$1") $(cksum <"$1")"
}

test_expect_success 'setup: three peers, attr_timeout 60, p2 holds d' '
	peers_net_setup 3 &&
	mkdir "$E2/d" &&
	echo old >"$E2/d/big" &&
	echo old >"$E2/d/hot" &&
	for k in 1 2 3; do peer_start $k -o "$MC" || exit 1; done &&
	peers_wait_all_up 3 &&
	test_output old cat "$M3/d/big" &&
	test_output old cat "$M3/d/hot"
'

test_expect_success '8 MiB written for seconds cost at most 10 datagrams' '
	before=$(settled 2) &&
	slow "$M1/d/big" 8 a &&
	after=$(settled 2) &&
	echo "TRAP datagrams for 8 MiB in 4 KiB writes: $((after - before))" &&
	test $((after - before)) -ge 1 && test $((after - before)) -le 10 &&
	want=$(sum "$E2/d/big") &&
	wait_for "test \"\$(sum $M3/d/big)\" = \"$want\"" 2
'

test_expect_success 'and what waits goes with the fsync' '
	slow "$M1/d/hot" 12 b marker &&
	wait_for "test \"\$(head -c 6 $M3/d/hot)\" = marker" 1 &&
	test_output 12582912 stat -c %s "$M3/d/hot"
'

test_done
