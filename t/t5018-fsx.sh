#!/bin/bash
#
# The randomized operation checker (t/fsx.c) on a file that another peer
# holds: p2 holds the file, fsx works on it through p1's mount, 20000
# operations a run (writes, checked reads, truncates up and down, every
# fallocate mode, copy_file_range, fsync, close and reopen), checking
# every byte and size against its model.  Three runs: through the page
# cache, through the page cache with shared mappings (reads, and writes
# flushed by msync), and with direct_io = yes.  After every fsync(2) and
# close(2) of a run, and after the run, the file in p2's export must
# equal the model byte for byte: data that never reached the holder is
# caught even if p1 reads it back from a cache.
# A fallocate mode (or copy_file_range) pufs refuses while the holder's
# file system takes it fails the run too.
#
# Each run's seed is random and shown in its TAP line; PUFS_FSX_SEED
# gives one seed to every run, to repeat a failure; PUFS_FSX_OPS changes
# the number of operations (default 20000).

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
TEST_TIMEOUT=${TEST_TIMEOUT:-300}
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"

[ -x "${PUFS_FSX:-}" ] || bail_out "PUFS_FSX (the t/fsx program) is not set"
FSX_OPS=${PUFS_FSX_OPS:-20000}

# A seed for one run: PUFS_FSX_SEED, or a new random one.
fsx_seed () {
	if [ -n "${PUFS_FSX_SEED:-}" ]; then
		echo "$PUFS_FSX_SEED"
	else
		od -An -N4 -tu4 /dev/urandom | tr -d ' '
	fi
}

# Write the helper that says which of fsx's fallocate and copy kinds a
# local file system refuses, in the words of fsx's summary.
cat >"$_LIB/refuses.py" <<'PY'
# refuses.py DIR: try every fallocate mode fsx uses, and copy_file_range,
# on a scratch file in DIR; print the kinds refused with EOPNOTSUPP (or,
# for copies, EXDEV or ENOSYS), space-separated, or "none".
import ctypes, errno, os, sys

libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long,
                           ctypes.c_long]
KEEP, PUNCH, ZERO = 0x01, 0x02, 0x10
modes = [('fallocate', 0), ('fallocate_keep', KEEP),
         ('punch_hole', PUNCH | KEEP), ('zero_range', ZERO),
         ('zero_range_keep', ZERO | KEEP)]
path = os.path.join(sys.argv[1], '.refuses-probe')
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b'x' * 65536)
refused = []
for name, mode in modes:
    if libc.fallocate(fd, mode, 4096, 8192) != 0:
        e = ctypes.get_errno()
        if e != errno.EOPNOTSUPP:
            sys.exit('fallocate %s: %s' % (name, os.strerror(e)))
        refused.append(name)
try:
    os.copy_file_range(fd, fd, 4096, 0, 40000)
except OSError as e:
    if e.errno not in (errno.EOPNOTSUPP, errno.EXDEV, errno.ENOSYS):
        raise
    refused.append('copy_range')
os.close(fd)
os.unlink(path)
print(' '.join(refused) or 'none')
PY

# fsx_on NAME SEED [FSX OPTIONS...]: run fsx on p1's NAME (held by p2)
# with SEED, checking p2's copy after each fsync and close; then p2's
# copy must be the model, p1 must hold nothing of
# that name, and pufs must refuse no kind that p2's disk takes.
fsx_on () {
	local name=$1 seed=$2 rc want
	shift 2
	want=$("$PYTHON" "$_LIB/refuses.py" "$E2") || return 1
	wait_for "test -f '$M1/$name'" 5 || return 1
	"$PUFS_FSX" -S "$seed" -N "$FSX_OPS" -o "$TRASH/$name.model" \
	    -H "$E2/$name" "$@" "$M1/$name" >"$TRASH/$name.out" 2>&1
	rc=$?
	cat "$TRASH/$name.out"
	[ "$rc" = 0 ] || { echo "fsx exited $rc (seed $seed)"; return 1; }
	grep -q "; refused: $want\$" "$TRASH/$name.out" || {
		echo "pufs refused other kinds than p2's disk ($want)"
		return 1
	}
	if ! cmp "$TRASH/$name.model" "$E2/$name"; then
		echo "p2's copy of $name differs from the model (seed $seed):"
		ls -l "$TRASH/$name.model" "$E2/$name"
		return 1
	fi
	test "$(holders "$name")" = 2 || {
		echo "$name is held by: $(holders "$name")"
		return 1
	}
}

test_expect_success 'setup: two peers, the files held by p2' '
	peers_net_setup 2 &&
	for f in plain mapped direct; do
		: >"$E2/$f" || exit 1
	done &&
	peers_start_all 2 &&
	peers_wait_all_up 2
'

seed=$(fsx_seed)
test_expect_success "fsx, $FSX_OPS operations, page cache (seed $seed)" '
	fsx_on plain '"$seed"'
'

seed=$(fsx_seed)
test_expect_success "fsx, $FSX_OPS operations, with mmap (seed $seed)" '
	fsx_on mapped '"$seed"' -m
'

seed=$(fsx_seed)
test_expect_success "fsx, $FSX_OPS operations, direct_io = yes (seed $seed)" '
	peer_stop 1 &&
	peer_start 1 -o cache.direct_io=yes &&
	peers_wait_all_up 2 &&
	fsx_on direct '"$seed"' -d
'

test_done
