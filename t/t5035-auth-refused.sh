#!/bin/bash
#
# A stream that fails the challenge learns nothing: a raw client speaks
# the AUTH exchange (proto/PROTOCOL.md, section 6.1) to a keyed peer
# with a wrong key, with the peer's own proof reflected back, with a
# HELLO and no exchange at all, and with silence; each is refused before
# a byte of HELLO (the export's name and place never reach it), is
# counted by reason in `pufs status`, and the peer serves on.  With the
# right key the same client gets the HELLO and the names, which shows
# that the check could fail.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"

cat >"$TRASH/raw.py" <<'PY'
# raw.py HOST PORT MODE KEYFILE OUT: one raw stream to a keyed peer.
# MODE: right (the exchange, then a HELLO), wrong (a proof under
# KEYFILE, which is not the peer's key), reflect (the peer's proof sent
# back as ours), hello (a HELLO at once), silent (nothing).  Writes
# every byte received to OUT and prints the received frames' types, and
# "closed" if the peer closed the stream.
import hashlib, hmac, os, socket, struct, sys, time

host, port, mode, keyfile, out = sys.argv[1:6]
with open(keyfile, "rb") as f:
    secret = f.read().rstrip(b"\n")
key = hmac.new(secret, b"pufs stream v1", hashlib.sha256).digest()
NAME = b"raw"


def auth(step, reply=False, version=0, error=0, nonce=bytes(32),
         mac=bytes(32), name=b""):
    body = struct.pack("<BBHI", step, version, 0, error) + nonce + mac + \
        bytes([len(name)]) + name
    return struct.pack("<IBBHQ", 16 + len(body), 160, int(reply), 0, 0) + body


def text(s):
    return struct.pack("<I", len(s) + 1) + s + b"\0"


def hello():
    body = struct.pack("<IIQ", 0x53465550, 1, 0) + text(NAME) + \
        text(b"10.0.0.9:7070") + struct.pack("<QQI", 0, 1234, 0)
    return struct.pack("<IBBHQ", 16 + len(body), 1, 0, 0, 1) + body


def proof(by_acceptor, ni, na, name_a):
    m = (b"acceptor\0\0" if by_acceptor else b"initiator\0") + ni + na + \
        bytes([len(NAME)]) + NAME + bytes([len(name_a)]) + name_a
    return hmac.new(key, m, hashlib.sha256).digest()


s = socket.create_connection((host, int(port)), timeout=10)
got = b""
closed = False


def recv_frame():
    """One whole frame, or None when the peer closed."""
    global got, closed
    while True:
        if len(got) >= 4:
            n = struct.unpack_from("<I", got)[0]
            if len(got) >= n and n >= 16:
                f = got[:n]
                return f
        d = s.recv(65536)
        if not d:
            closed = True
            return None
        got += d
        with open(out, "ab") as f:
            f.write(d)


def drain():
    """Everything until the peer closes (or 8 s pass)."""
    global got, closed
    s.settimeout(8)
    try:
        while True:
            d = s.recv(65536)
            if not d:
                closed = True
                return
            got += d
            with open(out, "ab") as f:
                f.write(d)
    except socket.timeout:
        pass


open(out, "wb").close()
ni = os.urandom(32)
if mode == "hello":
    s.sendall(hello())
    drain()
elif mode == "silent":
    t0 = time.time()
    drain()
    print("after %.1f s" % (time.time() - t0))
else:
    s.sendall(auth(1, version=1, nonce=ni, name=NAME))
    f = recv_frame()
    if f is None or f[4] != 160:
        print("no answer")
    else:
        na, theirs = f[24:56], f[56:88]
        name_a = f[89:89 + f[88]]
        print("answer from", name_a.decode(),
              "proof ok" if theirs == proof(True, ni, na, name_a)
              else "proof wrong")
        mine = theirs if mode == "reflect" else proof(False, ni, na, name_a)
        s.sendall(auth(3, mac=mine) + hello())
    drain()
types = []
i = 0
while i + 16 <= len(got):
    n = struct.unpack_from("<I", got, i)[0]
    if n < 16:
        break
    types.append("%d%s" % (got[i + 4], "r" if got[i + 5] & 1 else ""))
    i += n
print("frames", " ".join(types))
if closed:
    print("closed")
PY

cat >"$TRASH/p1.ini" <<EOF
[export:xylophone]
path = $E1
at = /marimba
EOF

# raw K MODE KEY OUT: the raw client from peer K's namespace to p1.
raw () {
	in_peer "$1" "$PYTHON" "$TRASH/raw.py" "$(peer_addr 1)" "$PEERS_PORT" \
		"$2" "$3" "$4"
}

# refused REASON: p1's count of streams refused for REASON.
refused () {
	peer_status 1 | "$PYTHON" -c '
import json, sys
print(json.load(sys.stdin)["streams"]["refused"][sys.argv[1]])' "$1"
}

# learnt OUT: whether OUT holds any of p1's export name and place.
learnt () {
	grep -aq -e xylophone -e marimba "$1"
}

test_expect_success 'setup: p1 with a key exports xylophone at /marimba' '
	peers_net_setup 2 &&
	pufs_try 0 keygen "$TRASH/a.key" &&
	pufs_try 0 keygen "$TRASH/b.key" &&
	echo data >"$E1/f1" &&
	peer_start 1 --no-export -c "$TRASH/p1.ini" \
		-o security.key_file="$TRASH/a.key"
'

test_expect_success 'the right key gets the HELLO and its names' '
	raw 2 right "$TRASH/a.key" got.right >out &&
	cat out &&
	grep "answer from p1 proof ok" out &&
	grep "^frames 160r 1r" out &&
	learnt got.right
'

test_expect_success 'a wrong key is refused before any HELLO byte' '
	before=$(refused bad_proof) &&
	raw 2 wrong "$TRASH/b.key" got.wrong >out &&
	cat out &&
	grep "answer from p1 proof wrong" out &&
	grep -x "frames 160r" out && grep -x closed out &&
	! learnt got.wrong &&
	test "$(refused bad_proof)" -gt "$before"
'

test_expect_success 'the peer'\''s own proof reflected back is refused' '
	before=$(refused bad_proof) &&
	raw 2 reflect "$TRASH/a.key" got.reflect >out &&
	cat out &&
	grep -x "frames 160r" out && grep -x closed out &&
	! learnt got.reflect &&
	test "$(refused bad_proof)" -gt "$before"
'

test_expect_success 'a HELLO without the exchange gets EACCES and nothing else' '
	before=$(refused no_key) &&
	raw 2 hello "$TRASH/a.key" got.hello >out &&
	cat out &&
	grep -x "frames 1r" out && grep -x closed out &&
	! learnt got.hello &&
	"$PYTHON" -c "
import struct, sys
f = open(\"got.hello\", \"rb\").read()
n, t, fl = struct.unpack_from(\"<IBB\", f)
assert n == len(f) and t == 1 and fl == 1, (n, len(f), t, fl)
print(f[16:].hex())
assert 13 in struct.unpack_from(\"<%di\" % ((n - 16) // 4), f, 16), f[16:]
" &&
	test "$(refused no_key)" -gt "$before" &&
	grep "sends HELLO without authenticating" "$(peer_log 1)"
'

test_expect_success 'silence is cut off at the handshake deadline' '
	before=$(refused unfinished) &&
	raw 2 silent "$TRASH/a.key" got.silent >out &&
	cat out &&
	grep -x closed out && test ! -s got.silent &&
	test "$(refused unfinished)" -gt "$before"
'

test_expect_success 'an oversized frame before the exchange is cut at once' '
	in_peer 2 "$PYTHON" -c "
import socket, struct, sys
s = socket.create_connection((sys.argv[1], 7070), timeout=5)
s.sendall(struct.pack(\"<I\", 1 << 20) + bytes(60))
assert s.recv(100) == b\"\"
" "$(peer_addr 1)"
'

test_expect_success 'p1 still serves, and a keyed peer still joins' '
	peer_start 2 -o security.key_file="$TRASH/a.key" &&
	peers_wait_up 2 2 &&
	test_output data cat "$M2/marimba/f1"
'

test_done
