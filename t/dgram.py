#!/usr/bin/env python3
# dgram.py - capture, resend and forge pufs datagrams, for the tests of
# authenticated datagrams (t5036, t5037).  An encoder of its own, written
# from proto/DATAGRAMS.md, not from discovery/datagram.c.
#
#   dgram.py capture GROUP PORT IFADDR DIR
#       join GROUP on the interface of IFADDR and keep every datagram
#       that arrives on PORT as DIR/NNNNN.TYPE.NAME (written whole, then
#       renamed), until killed; DIR/.pid holds its PID
#   dgram.py send GROUP:PORT IFADDR FILE [FLIP]
#       send FILE's bytes to GROUP:PORT from the interface of IFADDR;
#       FLIP: the offset of a byte to flip first (negative: from the end)
#   dgram.py forge GROUP:PORT IFADDR KEYFILE TYPE NAME URI BOOT SERIAL
#                  [dt=SECONDS] [export=ID] [path=PATH] [count=N]
#       send a datagram of TYPE (announce heartbeat goodbye trap locate)
#       from peer NAME at URI, boot id BOOT, serial SERIAL (the next N-1
#       serials too with count=N), time now plus dt, MAC under KEYFILE's
#       secret ("-": no MAC); a trap carries one REMOVE of PATH in ID
#   dgram.py info FILE
#       print "TYPE NAME BOOT SERIAL LENGTH FLAGS" of a datagram
#
# Exit status 0, or 2 on bad usage.
import hashlib
import hmac
import os
import socket
import struct
import sys
import time

MAGIC = 0x44465550
TYPES = {"announce": 1, "heartbeat": 2, "goodbye": 3, "locate": 4,
         "located": 5, "trap": 6, "resend": 7}
NAMES = {v: k for k, v in TYPES.items()}
LABEL = b"pufs datagram v1"


def usage():
    sys.stderr.write(__doc__ if __doc__ else "see the head of dgram.py\n")
    sys.exit(2)


def secret(path):
    with open(path, "rb") as f:
        b = f.read()
    return b[:-1] if b.endswith(b"\n") else b


def text(s):
    b = s.encode() + b"\0"
    return struct.pack("<H", len(b)) + b


def sock(ifaddr):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                 socket.inet_aton(ifaddr))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    return s


def dest(gp):
    g, p = gp.rsplit(":", 1)
    return g, int(p)


def parse(b):
    """type, name, boot, serial, flags of datagram bytes."""
    magic, ver, typ, flags, _, boot = struct.unpack_from("<IBBBBQ", b)
    n = struct.unpack_from("<H", b, 32)[0]
    name = b[34:34 + n - 1].decode(errors="replace")
    serial = struct.unpack_from("<Q", b, len(b) - 40)[0] if flags & 1 else 0
    return NAMES.get(typ, "unknown"), name, boot, serial, flags


def capture(group, port, ifaddr, d):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind((group, int(port)))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                 socket.inet_aton(group) + socket.inet_aton(ifaddr))
    with open(os.path.join(d, ".pid"), "w") as f:
        f.write("%d\n" % os.getpid())
    i = 0
    while True:
        b = s.recv(2048)
        try:
            typ, name = parse(b)[:2]
        except (struct.error, IndexError):
            typ, name = "unknown", "unknown"
        i += 1
        f = os.path.join(d, "%05d.%s.%s" % (i, typ, name))
        with open(f + ".tmp", "wb") as o:
            o.write(b)
        os.rename(f + ".tmp", f)


def forge(argv):
    if len(argv) < 8:
        usage()
    gp, ifaddr, keyfile, typ, name, uri, boot, serial = argv[:8]
    opts = dict(a.split("=", 1) for a in argv[8:])
    key = None if keyfile == "-" else hmac.new(
        secret(keyfile), LABEL, hashlib.sha256).digest()
    t = TYPES[typ]
    s = sock(ifaddr)
    for k in range(int(opts.get("count", 1))):
        now = time.time_ns() + int(float(opts.get("dt", 0)) * 1e9)
        b = struct.pack("<IBBBBQQq", MAGIC, 1, t, 1 if key else 0, 0,
                        int(boot, 0), 0 if t != 6 else 1, now)
        b += text(name) + text(uri)
        if t == 1:
            b += struct.pack("<BQH", 0, 1, 0)
        elif t == 2:
            b += struct.pack("<Q", 1)
        elif t == 4:
            b += struct.pack("<Q", 7) + text(opts.get("path", "/"))
        elif t == 6:
            b += struct.pack("<HBIq", 1, 2, int(opts.get("export", 0)), now)
            b += text(opts.get("path", ""))
        if key:
            b += struct.pack("<Q", int(serial, 0) + k)
            b += hmac.new(key, b, hashlib.sha256).digest()
        s.sendto(b, dest(gp))


def main(argv):
    if len(argv) < 2:
        usage()
    cmd = argv[1]
    if cmd == "capture" and len(argv) == 6:
        capture(*argv[2:])
    elif cmd == "send" and len(argv) in (5, 6):
        with open(argv[4], "rb") as f:
            b = bytearray(f.read())
        if len(argv) == 6:
            b[int(argv[5])] ^= 0x01
        sock(argv[3]).sendto(bytes(b), dest(argv[2]))
    elif cmd == "forge":
        forge(argv[2:])
    elif cmd == "info" and len(argv) == 3:
        with open(argv[2], "rb") as f:
            b = f.read()
        typ, name, boot, serial, flags = parse(b)
        print(typ, name, "0x%016x" % boot, serial, len(b), flags)
    else:
        usage()


if __name__ == "__main__":
    main(sys.argv)
