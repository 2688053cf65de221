#!/bin/bash
#
# Close-to-open across peers, with the default caches and multicast
# traps: once a writer on one peer has closed a file, an open that
# starts afterwards on any other peer reads all of the new data, the new
# size included, never the old size's worth of it.  Files are held by
# p3; writers and readers are the mounts of other peers (and of the
# holder), the readers having read, stat-ed and listed the file first so
# that every cache (the kernel's, the metadata cache, the listing) holds
# the old version.  Sizes grow, shrink and stay the same (with a new
# mtime); reads go through the plain name and through NAME@URI.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"

peers_multicast 14 7600
# The defaults a user has: attributes cached for 5 s, traps every 0.1 s.
MC="$MC,cache.attr_timeout=5,cache.trap_delay=0.1"

cat >"$_LIB/cto.py" <<'EOF'
# cto.py ROUNDS DIR HOLDER_URI WRITER READER...: for the files DIR/only.txt
# and DIR/sub/deep.txt of every mount, ROUNDS times, every reader
# reads, stats and lists the files (caching them), then WRITER rewrites
# each with O_TRUNC and closes, then every reader at once opens and reads
# it, by its plain name and as NAME@HOLDER_URI.  Prints one line per
# stale read and a summary; exits 1 if any read was stale.
import os, sys

rounds, top, uri, writer = int(sys.argv[1]), sys.argv[2], sys.argv[3], \
    sys.argv[4]
readers = sys.argv[5:]
names = [os.path.join(top, n) for n in ('only.txt', 'sub/deep.txt')]
stale = reads = 0

def content(name, r, k):
    # Growing, shrinking and same-size versions; same-size ones differ
    # in their bytes only, so only a fresh mtime tells them apart.
    size = [7, 15, 3, 4000, 15, 1, 70000, 70000, 15, 15][r % 10] + k
    tag = ('%s round %d ' % (name, r)).encode()
    return (tag * (size // len(tag) + 1))[:size]

def read(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        out = b''
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            out += b
        return out, st.st_size
    finally:
        os.close(fd)

def warm(m, name):
    os.listdir(os.path.join(m, os.path.dirname(name)))
    for p in (name, name + '@' + uri):
        os.stat(os.path.join(m, p))
        read(os.path.join(m, p))

for r in range(rounds):
    for k, name in enumerate(names):
        for m in readers:
            warm(m, name)
        want = content(name, r, k)
        fd = os.open(os.path.join(writer, name), os.O_WRONLY | os.O_TRUNC)
        os.write(fd, want)
        os.close(fd)
        for m in readers:
            for p in (name, name + '@' + uri):
                got, size = read(os.path.join(m, p))
                reads += 1
                if got != want or size != len(want):
                    stale += 1
                    print('stale: round %d %s on %s: %d bytes (fstat %d),'
                          ' want %d' % (r, p, m, len(got), size,
                                        len(want)))
print('%d reads, %d stale' % (reads, stale))
sys.exit(1 if stale else 0)
EOF

cto () {
	"$PYTHON" "$_LIB/cto.py" "$@"
}

test_expect_success 'setup: three peers, multicast, default caches' '
	peers_net_setup 3 &&
	mkdir -p "$E3/sub" "$E2/two/sub" &&
	echo "peer 3" >"$E3/only.txt" &&
	echo "peer 3" >"$E3/sub/deep.txt" &&
	echo "peer 2" >"$E2/two/only.txt" &&
	echo "peer 2" >"$E2/two/sub/deep.txt" &&
	for k in 1 2 3; do peer_start $k -o "$MC" || exit 1; done &&
	peers_wait_all_up 3
'

test_expect_success 'the first case: a rewrite on p2 read at once on p1' '
	test_output "peer 3" cat "$M1/only.txt" &&
	test_output "peer 3" cat "$M1/only.txt@$U3" &&
	test_output "peer 3" cat "$M2/only.txt" &&
	ls "$M1" "$M2" >/dev/null &&
	printf "rewritten by 2\n" >"$M2/only.txt" &&
	test_output "rewritten by 2" cat "$M1/only.txt" &&
	test_output "rewritten by 2" cat "$M1/only.txt@$U3"
'

test_expect_success '100 rounds, writer p2, readers p1 and p3 (holder)' '
	cto 100 . "$U3" "$M2" "$M1" "$M3"
'

test_expect_success '100 rounds, writer p3 (holder), readers p1 and p2' '
	cto 100 . "$U3" "$M3" "$M1" "$M2"
'

test_expect_success '50 rounds with two peers only: writer p1, reader p2' '
	peer_stop 3 &&
	peers_wait_down 1 p3 &&
	peers_wait_down 2 p3 &&
	cto 50 two "$U2" "$M1" "$M2"
'

test_done
