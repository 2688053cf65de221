#!/bin/bash
#
# What a hostile peer gets from a root serving daemon: t/hostile.c,
# from p2's namespace, speaks the protocol to p1 as a peer of its own
# and sends the requests no pufs peer would.  Device nodes, set-ID
# bits, chown to others (not to the owner and group a file has) and
# trusted.* / security.* attributes are refused or dropped; a FIFO is
# never opened (ENXIO at once), so FIFO opens cannot pin the workers
# while p2's mount lists p1's files; a handle works only on its own
# stream and in its own export, so a read-only export stays read-only;
# [peer] max_handles bounds each peer alone.  SUMS and CHANGES, which a
# replica's resync asks, answer their digests and records, and refuse
# an unaligned offset or a directory (EINVAL), a missing file or an
# unknown export (ENOENT).

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"
test_require setfattr getfattr stat
[ -x "${PUFS_HOSTILE:-}" ] ||
	bail_out "PUFS_HOSTILE (the t/hostile program) is not set"

RO=$TRASH/p1/ro

# hs NAME [OPTIONS...]: run t/hostile.c in p2's namespace against p1 as
# peer NAME, the script on standard input, the replies on standard
# output.
hs () {
	local name=$1
	shift
	in_peer 2 timeout -k 2 60 "$PUFS_HOSTILE" "$@" "$U1" "$name" 0x5011
}

# expect LINES...: the file out holds exactly these lines.
expect () {
	printf '%s\n' "$@" >expect && test_cmp expect out
}

# mode_of FILE: its permission bits in octal, set-ID bits included.
mode_of () {
	stat -c %a "$1"
}

test_expect_success 'setup: p1 serves a writable and a read-only export' '
	peers_net_setup 2 &&
	mkdir -p "$RO" &&
	echo readonly >"$RO/rofile" &&
	chmod 644 "$RO/rofile" &&
	echo writable >"$E1/wfile" &&
	mkfifo "$E1/pipe" &&
	peer_start 1 -e "$RO:ro" &&
	peer_start 2 &&
	peers_wait_all_up 2
'

test_expect_success 'MKNOD of a char or block device: EPERM, no node' '
	hs evil1 >out <<-\EOF &&
	mknod 0 . cdev 020666 1:3
	mknod 0 . bdev 060660 7:0
	mknod 0 . fifo2 010644 0
	EOF
	expect EPERM EPERM ok &&
	test_path_is_missing "$E1/cdev" &&
	test_path_is_missing "$E1/bdev" &&
	test -p "$E1/fifo2"
'

test_expect_success 'read-only export: no bypass through a handle' '
	hs evil2 >out <<-\EOF &&
	open 1 rofile rdonly -> $h
	setattr 0 nosuchfile fh=$h size=0 mode=0600
	setattr 0 rofile fh=$h size=0
	stat 0 rofile fh=$h
	setattr 1 rofile fh=$h size=0
	write $h 0 x
	fallocate $h 0 4096
	open 0 wfile rdonly -> $r
	write $r 0 x
	fallocate $r 0 4096
	copy $h 0 $r 0 1
	read $h 0 8
	EOF
	expect ok EBADF EBADF EBADF EROFS EROFS EROFS ok EBADF EBADF EBADF ok &&
	test "$(stat -c "%s %a" "$RO/rofile")" = "9 644" &&
	test "$(cat "$RO/rofile")" = readonly &&
	test "$(cat "$E1/wfile")" = writable
'

test_expect_success 'a handle used from a second connection: EBADF' '
	test_when_finished "touch second.done" &&
	{ echo "open 0 wfile rdonly -> \$h" &&
	  wait_for "test -e second.done" 20 &&
	  echo "read \$h 0 8"; } | hs evil3 -v >first &
	wait_for "grep -q fh= first" 10 &&
	fh=$(sed -n "s/.* fh=\([^ ]*\).*/\1/p" first) &&
	hs evil4 >out <<-EOF &&
	read $fh 0 8
	stat 0 wfile fh=$fh
	setattr 0 wfile fh=$fh size=0
	write $fh 0 x
	fsync $fh
	lseek $fh 0 0
	release $fh
	EOF
	expect EBADF EBADF EBADF EBADF EBADF EBADF EBADF &&
	touch second.done &&
	wait &&
	grep -q "^ok data=\"writable" first &&
	test "$(cat "$E1/wfile")" = writable
'

test_expect_success 'set-user-ID and set-group-ID bits are cleared' '
	hs evil5 >out <<-\EOF &&
	mknod 0 . suidnode 0104755 0
	create 0 . suidfile 04755 wronly
	create 0 . sgidfile 02755 wronly
	mkdir 0 . sgiddir 02755
	setattr 0 sgiddir mode=02755
	create 0 . plain 0644 wronly
	setattr 0 plain mode=06755
	EOF
	expect ok ok ok ok ok ok ok &&
	for f in suidnode suidfile sgidfile sgiddir plain; do
		test "$(mode_of "$E1/$f")" = 755 ||
		{ echo "$f: mode $(mode_of "$E1/$f")"; return 1; }
	done
'

test_expect_success 'chown or chgrp to another owner: EPERM; to the one it has: done' '
	hs evil6 >out <<-\EOF &&
	setattr 0 plain uid=12345
	setattr 0 plain gid=12345
	setattr 0 plain uid=12345 gid=0
	setattr 0 plain mode=0600 uid=12345
	setattr 0 plain uid=0 gid=0
	EOF
	expect EPERM EPERM EPERM EPERM ok &&
	test "$(stat -c "%u %g %a" "$E1/plain")" = "0 0 755" &&
	echo t >"$E1/theirs" && chown 12345:12346 "$E1/theirs" &&
	hs evil6b >out <<-\EOF &&
	setattr 0 theirs uid=12345 gid=12346
	setattr 0 theirs gid=12346
	setattr 0 theirs uid=12345 gid=12345
	EOF
	expect ok ok EPERM &&
	test "$(stat -c "%u %g" "$E1/theirs")" = "12345 12346"
'

test_expect_success 'trusted.* and security.* attributes: EPERM' '
	setfattr -n trusted.kept -v 1 "$E1/plain" &&
	hs evil7 >out <<-\EOF &&
	setxattr 0 plain trusted.x v
	setxattr 0 plain security.capability v
	removexattr 0 plain trusted.kept
	setxattr 0 plain user.x v
	EOF
	expect EPERM EPERM EPERM ok &&
	getfattr -d -m - --absolute-names "$E1/plain" >attrs &&
	grep -q "^trusted.kept=" attrs &&
	grep -q "^user.x=" attrs &&
	! grep -q "^trusted.x=\|^security.capability=" attrs
'

test_expect_success 'the mount answers security.* and POSIX ACLs itself' '
	test_errno EOPNOTSUPP,ENOTSUP setxattr "$M2/plain" security.x v &&
	test_errno EOPNOTSUPP,ENOTSUP getxattr "$M2/plain" security.selinux &&
	test_errno EOPNOTSUPP,ENOTSUP getxattr "$M2/plain" \
		system.posix_acl_access &&
	test_errno EOPNOTSUPP,ENOTSUP removexattr "$M2/plain" \
		security.capability &&
	test_output "trusted.kept user.x" pyop listxattr "$M2/plain"
'

test_expect_success 'max_handles: the 9th OPEN of one peer is EMFILE' '
	test_when_finished "touch other.done" &&
	peer_stop 1 &&
	peer_start 1 -e "$RO:ro" -o peer.max_handles=8 &&
	peers_wait_all_up 2 &&
	{ echo "open 0 wfile rdonly -> \$a" &&
	  echo "repeat 7 open 0 wfile rdonly" &&
	  echo "open 0 wfile rdonly" &&
	  echo "create 0 . overlimit 0644 wronly" &&
	  echo "echo held" &&
	  wait_for "test -e other.done" 20 &&
	  echo "release \$a" &&
	  echo "open 0 wfile rdonly"; } | hs evil8 >first &
	wait_for "grep -q held first" 10 &&
	hs evil9 >out <<-\EOF &&
	repeat 8 open 0 wfile rdonly
	EOF
	expect ok ok ok ok ok ok ok ok &&
	(for i in $(seq 3 14); do eval "exec $i<\"$M1/wfile\""; done &&
	 cat <&14) >own &&
	test "$(cat own)" = writable &&
	test "$(cat "$M2/wfile")" = writable &&
	touch other.done &&
	wait &&
	printf "%s\n" ok ok ok ok ok ok ok ok EMFILE EMFILE held ok ok \
		>expect &&
	test_cmp expect first &&
	test_path_is_missing "$E1/overlimit"
'

test_expect_success 'OPEN or CREATE of a FIFO: ENXIO at once' '
	start=$(_now_us) &&
	hs evil10 -t 3 >out <<-\EOF &&
	open 0 pipe rdonly
	open 0 pipe wronly
	open 0 pipe rdwr
	create 0 . pipe 0644 rdonly
	EOF
	ms=$(( ($(_now_us) - start) / 1000 )) &&
	echo "$ms" >fifo.ms &&
	expect ENXIO ENXIO ENXIO ENXIO &&
	test "$ms" -lt 2000
'
echo "# 4 OPENs or CREATEs of a FIFO answered in $(cat fifo.ms 2>/dev/null || echo ?) ms"

test_expect_success '16 FIFO OPENs at once: p2 still lists p1 quickly' '
	test_when_finished "touch ls.done" &&
	mkdir "$E1/fresh" &&
	touch "$E1/fresh/a" "$E1/fresh/b" &&
	{ echo "repeat 16 send open 0 pipe rdonly" &&
	  echo "echo sent" &&
	  wait_for "test -e ls.done" 30 &&
	  echo "wait 5"; } | hs evil11 >first &
	wait_for "grep -q sent first" 10 &&
	start=$(_now_us) &&
	{ ls "$M2/fresh" >ls.out 2>&1; echo $? >ls.rc; } &&
	echo $(( ($(_now_us) - start) / 1000 )) >ls.ms &&
	touch ls.done &&
	wait &&
	{ echo sent; for i in $(seq 16); do echo ENXIO; done; } >expect &&
	test_cmp expect first &&
	test "$(cat ls.rc) $(xargs <ls.out)" = "0 a b" &&
	test "$(cat ls.ms)" -lt 1000
'
echo "# ls through p2 of a directory of p1, 16 FIFO OPENs sent just before:" \
	"$(cat ls.ms 2>/dev/null || echo ?) ms"

test_expect_success 'SUMS and CHANGES (a resync asks them): bad input refused' '
	head -c 300000 /dev/urandom >"$E1/blocks" &&
	hs evil12 -v >out <<-\EOF &&
	sums 0 blocks 0 1048576
	sums 0 blocks 1000 131072
	sums 0 . 0 131072
	sums 0 missing 0 131072
	sums 7 blocks 0 131072
	changes 7 0 0
	changes 0 0 0
	EOF
	cat out &&
	set -- $(sed -n 1p out) && test "$1 $2" = "ok value=300000" &&
	sed -n "2,5p" out | cut -d" " -f1 >errs &&
	printf "%s\n" EINVAL EINVAL ENOENT ENOENT >expect &&
	test_cmp expect errs &&
	test "$(sed -n 6p out | cut -d" " -f1)" = ENOENT &&
	test "$(sed -n 7p out | cut -d" " -f1)" = ok
'

test_done
