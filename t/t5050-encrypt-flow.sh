#!/bin/bash
#
# encrypt = yes under load: the TLS stream is a filter over the socket's
# own bufferevent (DESIGN.md, "Encrypted streams"), which holds records
# in memory on both sides of OpenSSL; here what that must keep working.
# fsx checks every byte of a file held by the other peer through it.  A
# holder stopped (SIGSTOP) while a large write goes to it backs the
# writer up through the kernel, the socket layer and the stream's
# output; continued, it takes the rest, the stream stays up and the file
# arrives whole.  A holder killed (SIGKILL) in the middle of a read, with
# no close_notify, is an end of stream for the reader, not a hang; once
# started again it is reached over a new TLS stream and the file reads
# whole.  The peers' dead_after and op_timeout are 30 s, so that
# neither the stopped holder nor the calls waiting for it are given up
# while it is stopped.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
TEST_TIMEOUT=${TEST_TIMEOUT:-300}
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"
test_require ss

[ -x "${PUFS_FSX:-}" ] || bail_out "PUFS_FSX (the t/fsx program) is not set"
FSX_OPS=${PUFS_FSX_OPS:-5000}

# start K: peer K, encrypted, with the union's key and a long dead_after.
start () {
	peer_start "$1" -o "security.key_file=$TRASH/a.key,security.encrypt=yes,peer.dead_after=30,peer.op_timeout=30"
}

# send_queued K: the most bytes waiting in one TCP socket's send queue
# in peer K's namespace.
send_queued () {
	in_peer "$1" ss -tnH state established |
		awk 'BEGIN { m = 0 } $2 > m { m = $2 } END { print m }'
}

# writer.py SRC DST: open DST, say so (the file "ready"), wait for the
# file "go", then write SRC into DST and fsync it.
cat >"$_LIB/writer.py" <<'EOF'
import os, sys, time

fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
open("ready", "w").close()
deadline = time.monotonic() + 10
while not os.path.exists("go"):
    if time.monotonic() > deadline:
        sys.exit("no go within 10 s")
    time.sleep(0.01)
with open(sys.argv[1], "rb") as src:
    while True:
        b = src.read(1 << 20)
        if not b:
            break
        os.write(fd, b)
os.fsync(fd)
os.close(fd)
EOF

# tls_of K NAME: the TLS state peer K's status gives for peer NAME.
tls_of () {
	peer_status "$1" | "$PYTHON" -c '
import json, sys
print([p["tls"] for p in json.load(sys.stdin)["peers"]
       if p["name"] == sys.argv[1]][0])' "$2"
}

test_expect_success 'setup: two encrypted peers, the files held by p2' '
	peers_net_setup 2 &&
	pufs_try 0 keygen "$TRASH/a.key" &&
	: >"$E2/fsx" && mkdir "$E2/big" &&
	dd if=/dev/urandom of=big bs=1M count=64 status=none &&
	cp big "$E2/big/in" &&
	start 1 && start 2 &&
	peers_wait_all_up 2 &&
	test_output TLS_AES_128_GCM_SHA256 tls_of 1 p2
'

seed=$(od -An -N4 -tu4 /dev/urandom | tr -d " ")
test_expect_success "fsx, $FSX_OPS operations through TLS (seed $seed)" '
	wait_for "test -f \"$M1/fsx\"" 5 &&
	"$PUFS_FSX" -S '"$seed"' -N "$FSX_OPS" -o "$TRASH/fsx.model" \
		-H "$E2/fsx" "$M1/fsx" >fsx.out 2>&1 ||
		{ cat fsx.out; false; } &&
	cmp "$TRASH/fsx.model" "$E2/fsx"
'

test_expect_success 'a stopped holder backs a large write up; continued, it takes it all' '
	# Only what happens from here counts: streams crossed at the start
	# may have closed one of two already.
	n1=$(wc -l <"$(peer_log 1)") && n2=$(wc -l <"$(peer_log 2)") &&
	{ "$PYTHON" "$_LIB/writer.py" big "$M1/big/out" & w=$!; } &&
	wait_for "test -e ready" 10 &&
	pufs_signal p2 STOP &&
	test_when_finished "pufs_signal p2 CONT" &&
	: >go &&
	wait_for "test \$(send_queued 1) -ge 1048576" 20 &&
	pufs_signal p2 CONT &&
	wait $w &&
	cmp big "$E2/big/out" &&
	peers_wait_all_up 2 &&
	! tail -n +$((n1 + 1)) "$(peer_log 1)" | grep "stream closed" &&
	! tail -n +$((n2 + 1)) "$(peer_log 2)" | grep "stream closed"
'

test_expect_success 'a holder killed in the middle of a read ends the stream, not the reader' '
	{ cat "$M1/big/in" >got & r=$!; } &&
	wait_for "test -s got" 10 &&
	peer_kill 2 &&
	wait_for "! kill -0 $r 2>/dev/null" 10 &&
	{ wait $r; :; } &&
	wait_for "grep -qE \"peer p2 .*stream closed: (closed by the other side|Connection reset by peer)\" \"$(peer_log 1)\"" 10 &&
	peers_wait_down 1 p2
'

test_expect_success 'started again, the holder is reached over a new TLS stream' '
	start 2 &&
	peers_wait_all_up 2 &&
	test_output TLS_AES_128_GCM_SHA256 tls_of 1 p2 &&
	wait_for "cmp -s big \"$M1/big/in\"" 10
'

test_done
