#!/bin/bash
#
# Set-ID bits and the kernel's read-ahead window.  pufs tells the kernel
# it clears the set-ID bits itself (FUSE_HANDLE_KILLPRIV_V2), so the
# holder must: a write, truncate or O_TRUNC open by a caller without
# CAP_FSETID clears S_ISUID, and S_ISGID when the group may execute;
# root's keep them; a chown clears them as on a local file system.  Each
# case runs on a file of a local directory and on one held by p2,
# reached through p1's mount (and through p2's own), and the modes must
# agree, both as the holder's disk and as the mount show them.  Then: the mount's bdi
# read-ahead window is what pufs sets (max of block_size and
# readahead_max blocks up to 1 MiB, never lowered), and a daemon that
# may not write sysfs says so in one line and still mounts.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"

test_require setpriv mountpoint unshare

# setid.py USER OP FILE...: as USER (root or nobody), for each FILE do
# OP (write, truncate, otrunc, chown) and print the resulting mode of
# FILE as a fresh stat shows it, in octal.
cat >"$_LIB/setid.py" <<'EOF'
import os, sys

user, op, files = sys.argv[1], sys.argv[2], sys.argv[3:]
pid = os.fork()
if pid == 0:
    if user == "nobody":
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    for f in files:
        if op == "write":
            fd = os.open(f, os.O_WRONLY)
            os.pwrite(fd, b"x", 0)
            os.close(fd)
        elif op == "truncate":
            os.truncate(f, 1)
        elif op == "otrunc":
            os.close(os.open(f, os.O_WRONLY | os.O_TRUNC))
        elif op == "chown":
            os.chown(f, 0, 0)
    os._exit(0)
_, st = os.waitpid(pid, 0)
if st != 0:
    sys.exit("%s %s failed" % (user, op))
for f in files:
    print("%o" % (os.stat(f).st_mode & 0o7777), end=" ")
print()
EOF

# bdi_ra MNT: the read_ahead_kb of the bdi of the mount at MNT.
bdi_ra () {
	cat "/sys/class/bdi/$(mountpoint -d "$1")/read_ahead_kb"
}

test_expect_success 'setup: p2 holds the files, p1 reaches them' '
	peers_net_setup 2 &&
	chmod 755 "$TRASH" &&
	mkdir -p "$TRASH/local" "$E2/d" &&
	chmod 755 "$TRASH/local" "$E2/d" &&
	: >"$TRASH/local/f" && : >"$E2/d/f" &&
	peers_start_all 2 &&
	peers_wait_all_up 2 &&
	test -f "$M1/d/f" &&
	grep -q "set-ID bits cleared by pufs" "$(peer_log 1)"
'

# setid_case USER OP MODE [HELD]: give the local file and the held one
# MODE (on the holder's disk: a peer may not ask for set-ID bits), wait
# until the mount SETID_MNT (default p1's) shows it, let USER do OP on
# both, and compare: the holder's disk and that mount must show the mode
# the local file has, or HELD if given (where pufs differs from Linux on
# purpose).
setid_case () {
	local out want mnt=${SETID_MNT:-$M1}
	chmod "$3" "$TRASH/local/f" "$E2/d/f" &&
	wait_for "test \"\$(stat -c %a '$mnt/d/f')\" = $3" 10 &&
	out=$("$PYTHON" "$_LIB/setid.py" "$1" "$2" \
	    "$TRASH/local/f" "$mnt/d/f") || return 1
	want=${4:-}
	set -- "$1" "$2" "$3" $out "$(stat -c %a "$E2/d/f")"
	echo "$1 $2 $3: local $4, mount $5, holder $6"
	[ "$5" = "${want:-$4}" ] && [ "$6" = "${want:-$4}" ]
}

test_expect_success 'a write by a user without CAP_FSETID clears them' '
	setid_case nobody write 6777 &&
	test "$(stat -c %a "$E2/d/f")" = 777 &&
	setid_case nobody write 4777 &&
	setid_case nobody write 2777 &&
	test "$(stat -c %a "$E2/d/f")" = 777
'

# Without group execute, S_ISGID gives no group on exec: the holder,
# which cannot know the caller's groups, keeps it (as the kernel's
# FUSE_HANDLE_KILLPRIV_V2 contract says), where Linux also drops it
# for a caller outside the file's group.
test_expect_success 'a set-group-ID bit without group execute stays' '
	setid_case nobody write 6767 2767 &&
	setid_case nobody write 2767 2767
'

test_expect_success 'root writes keep them' '
	setid_case root write 6777 &&
	test "$(stat -c %a "$E2/d/f")" = 6777
'

test_expect_success 'truncate clears them for a user, not for root' '
	setid_case nobody truncate 6777 &&
	test "$(stat -c %a "$E2/d/f")" = 777 &&
	setid_case nobody truncate 6767 2767 &&
	setid_case root truncate 6777 &&
	test "$(stat -c %a "$E2/d/f")" = 6777
'

test_expect_success 'an O_TRUNC open clears them for a user, not for root' '
	setid_case nobody otrunc 6777 &&
	test "$(stat -c %a "$E2/d/f")" = 777 &&
	setid_case root otrunc 6777 &&
	test "$(stat -c %a "$E2/d/f")" = 6777
'

test_expect_success 'chown clears them as on a local file system' '
	setid_case root chown 6777 &&
	setid_case root chown 6767 &&
	setid_case root chown 2775
'

test_expect_success 'the holder'"'"'s own mount clears them the same way' '
	SETID_MNT=$M2 &&
	setid_case nobody write 6777 &&
	setid_case nobody truncate 6777 &&
	setid_case nobody otrunc 4777 &&
	setid_case root write 6777 &&
	test "$(stat -c %a "$E2/d/f")" = 6777
'

test_expect_success 'the held file has the bytes written' '
	setid_case nobody write 6777 &&
	printf x >expect &&
	test_cmp expect "$E2/d/f"
'

test_expect_success 'the read-ahead window is raised to 1 MiB by default' '
	test "$(bdi_ra "$M1")" = 1024 &&
	test "$(bdi_ra "$M2")" = 1024 &&
	grep -q "read-ahead window 1024 KiB" "$(peer_log 1)"
'

test_expect_success 'a larger block size raises it to one block' '
	peer_stop 1 &&
	peer_start 1 -o cache.block_size=4M &&
	test "$(bdi_ra "$M1")" = 4096
'

test_expect_success 'a small block size without read-ahead never lowers it' '
	peer_stop 1 &&
	peer_start 1 -o cache.block_size=64K,cache.readahead_max=0 &&
	test "$(bdi_ra "$M1")" = 128
'

# The daemon runs in a mount namespace of its own where /sys is
# read-only, so its mount is seen there only: started and stopped here,
# by PID, not by pufs_start.
test_expect_success 'a daemon that may not write sysfs says why, and mounts' '
	mkdir -p "$TRASH/solo" &&
	opts=$(pufs_opts solo) || exit 1
	unshare --mount --propagation private -- sh -c \
	    "mount -o remount,bind,ro /sys && exec \"\$0\" \"\$@\"" \
	    "$PUFS" mount -o "$opts" -e "$TRASH/local" "$TRASH/solo" \
	    >"$TRASH/solo.log" 2>&1 </dev/null &
	pid=$!
	test_when_finished "kill $pid 2>/dev/null; true" &&
	wait_for "grep -q \"read-ahead window\" \"$TRASH/solo.log\"" 10 &&
	grep "read-ahead window left at 128 KiB, not raised to 1024 KiB" \
	    "$TRASH/solo.log" >line &&
	grep -q "Read-only file system" line &&
	test "$(grep -c "read-ahead" "$TRASH/solo.log")" = 1 &&
	kill -TERM $pid &&
	wait $pid
'

test_done
