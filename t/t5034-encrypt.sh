#!/bin/bash
#
# encrypt = yes: the streams are TLS 1.3 keyed from the secret.  A
# capture on the test bridge of a file read and a file write between two
# encrypted peers holds no byte string of either file; the same between
# two peers with the key but without encrypt holds both, which shows the
# capture sees the traffic.  The status shows the cipher per peer; a
# peer with the key but without encrypt is refused by an encrypted one,
# and both count it.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"
test_require tcpdump

# canary WORD FILE: 2 MiB of lines that each hold WORD.
canary () {
	"$PYTHON" -c '
import sys
w = sys.argv[1]
with open(sys.argv[2], "w") as f:
    for i in range(2 * 1024 * 1024 // 32):
        f.write("%s-%08d-%s\n" % (w, i, "x" * (30 - len(w) - 10)))' "$1" "$2"
}

# capture_start FILE: tcpdump on the bridge into FILE, until capture_stop.
capture_start () {
	# nsenter execs tcpdump: $! is its PID.
	nsenter --net="/run/netns/$PEERS_HUB" -- tcpdump -i br0 -U -s 0 \
		-w "$1" tcp port "$PEERS_PORT" 2>"$1.err" &
	echo $! >"$TRASH/tcpdump.pid"
	wait_for "grep -q 'listening on br0' '$1.err'" 10
}

# capture_stop: stop the capture.  What it has not yet taken from the
# kernel (a block of packets at a time) is lost: wait for what must be
# in the file first.
capture_stop () {
	local pid
	pid=$(cat "$TRASH/tcpdump.pid") || return 1
	kill -TERM "$pid" && wait_for "! kill -0 $pid 2>/dev/null" 10 &&
		rm -f "$TRASH/tcpdump.pid"
}

# read_write A B: mount A reads B's read.txt and writes B's write.txt.
read_write () {
	cat "$(peer_mnt "$1")/read.txt" >got.read &&
	test_cmp "$(peer_export "$2")/read.txt" got.read &&
	cat src.write >"$(peer_mnt "$1")/write.txt" &&
	test_cmp src.write "$(peer_export "$2")/write.txt"
}

# tls_of K NAME: the TLS state peer K's status gives for peer NAME.
tls_of () {
	peer_status "$1" | "$PYTHON" -c '
import json, sys
print([p["tls"] for p in json.load(sys.stdin)["peers"]
       if p["name"] == sys.argv[1]][0])' "$2"
}

# refused K REASON: peer K's count of streams refused for REASON.
refused () {
	peer_status "$1" | "$PYTHON" -c '
import json, sys
print(json.load(sys.stdin)["streams"]["refused"][sys.argv[1]])' "$2"
}

# logged K TEXT: peer K logs TEXT, within 10 s (log lines about refused
# streams are rate-limited).
logged () {
	wait_for "grep -qF \"$2\" \"$(peer_log "$1")\"" 10
}

test_expect_success 'setup: p1-p2 encrypted, p3-p4 with the key in clear' '
	peers_net_setup 5 &&
	pufs_try 0 keygen "$TRASH/a.key" &&
	canary READCANARY src.read && canary WRITECANARY src.write &&
	for k in 2 4; do
		cp src.read "$(peer_export $k)/read.txt" &&
		: >"$(peer_export $k)/write.txt" || exit 1
	done &&
	echo "p1 only" >"$E1/f1" &&
	key="security.key_file=$TRASH/a.key" &&
	peer_start 1 -o "$key,security.encrypt=yes,peer.peers=$U2" &&
	peer_start 2 -o "$key,security.encrypt=yes,peer.peers=$U1" &&
	peer_start 3 -o "$key,peer.peers=$U4" &&
	peer_start 4 -o "$key,peer.peers=$U3" &&
	peers_wait_up 1 2 && peers_wait_up 2 2 &&
	peers_wait_up 3 2 && peers_wait_up 4 2
'

test_expect_success 'the status shows TLS 1.3 with AES-128-GCM, or none' '
	test_output TLS_AES_128_GCM_SHA256 tls_of 1 p2 &&
	test_output TLS_AES_128_GCM_SHA256 tls_of 2 p1 &&
	test_output none tls_of 3 p4 &&
	peer_status 1 | grep -q "\"encrypted\":true" &&
	"$PUFS" status -s "$(peer_sock 1)" | grep "tls TLS_AES_128_GCM_SHA256"
'

test_expect_success 'an encrypted read and write: no byte of the files on the wire' '
	capture_start enc.pcap &&
	test_when_finished "capture_stop 2>/dev/null; :" &&
	read_write 1 2 &&
	wait_for "test \$(stat -c %s enc.pcap) -gt 3145728" 10 &&
	capture_stop &&
	! grep -aq -e READCANARY -e WRITECANARY enc.pcap
'

test_expect_success 'encrypted: 2 x 48 MiB each way at once arrive intact' '
	dd if=/dev/urandom of=big1 bs=1M count=48 status=none &&
	dd if=/dev/urandom of=big2 bs=1M count=48 status=none &&
	mkdir "$E2/big" && cp big1 "$E2/big/in1" && cp big2 "$E2/big/in2" &&
	wait_for "test -e \"$M1/big/in2\"" 10 &&
	{ cp big1 "$M1/big/out1" & w1=$!; } &&
	{ cp big2 "$M1/big/out2" & w2=$!; } &&
	{ cat "$M1/big/in1" >got1 & r1=$!; } &&
	{ cat "$M1/big/in2" >got2 & r2=$!; } &&
	wait $w1 && wait $w2 && wait $r1 && wait $r2 &&
	cmp big1 got1 && cmp big2 got2 &&
	cmp big1 "$E2/big/out1" && cmp big2 "$E2/big/out2"
'

test_expect_success 'the same in clear: the capture holds both files' '
	capture_start clear.pcap &&
	test_when_finished "capture_stop 2>/dev/null; :" &&
	read_write 3 4 &&
	wait_for "grep -aq WRITECANARY clear.pcap" 10 &&
	capture_stop &&
	grep -aq READCANARY clear.pcap &&
	grep -aq WRITECANARY clear.pcap
'

test_expect_success 'a peer with the key but without encrypt is refused' '
	echo "p5 only" >"$E5/f5" &&
	peer_start 5 -o "security.key_file=$TRASH/a.key,peer.peers=$U1" &&
	wait_for "test \$(refused 1 tls) -ge 1 &&
		test \$(refused 5 unfinished) -ge 1" 10 &&
	logged 1 "TLS handshake failed: error:0A00010B:SSL routines::wrong version number" &&
	test_output 0 refused 1 unfinished &&
	logged 5 "by the other side before it answered our challenge (does its [security] encrypt differ?)" &&
	test_path_is_missing "$M5/f1" && test_path_is_missing "$M1/f5"
'

test_expect_success 'a TLS ClientHello to a keyed peer in clear is named and refused' '
	before=$(refused 3 tls) &&
	in_peer 5 "$PYTHON" -c "
import socket, sys
s = socket.create_connection((sys.argv[1], 7070), timeout=5)
s.sendall(bytes.fromhex(\"160301020001\") + bytes(517))
assert s.recv(100) == b\"\"
" "$(peer_addr 3)" &&
	wait_for "test \$(refused 3 tls) -gt $before" 10 &&
	logged 3 "speaks TLS and we do not"
'

test_expect_success 'encrypted peers serve on: a file made on one reads on the other' '
	echo made on p1 >"$M1/new.txt" &&
	test_output "made on p1" cat "$M2/new.txt"
'

test_expect_success 'a peer that leaves says goodbye inside TLS' '
	peer_stop 2 &&
	wait_for "grep -q \"stream closed: the peer said goodbye\" \"$(peer_log 1)\"" 10
'

test_done
