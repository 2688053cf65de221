#!/bin/bash
#
# The union's own attributes, user.pufs.peer, user.pufs.uri and
# user.pufs.export: answered by the mounting peer for files and
# directories (every copy of a merged directory, the primary first),
# read-only (EPERM), never listed and so never copied, shadowing a
# holder's own user.pufs.* attribute; a virtual directory has none.
# `pufs where PATH...` prints them, one tab-separated line a path.

. "$(dirname "$0")/lib.sh"

test_require setfattr getfattr

A=$TRASH/a
B=$TRASH/b
V=$TRASH/v
M=$TRASH/mnt

# attr NAME PATH: print the value of the attribute NAME of PATH.
attr () {
	getfattr --only-values -n "$1" "$2"
}

test_expect_success 'setup: three exports, two merged at /, one deeper' '
	mkdir -p "$A/d" "$B/d" "$V" "$M" &&
	echo a >"$A/fa" &&
	echo b >"$B/fb" &&
	ln -s fa "$A/link" &&
	cat >x.ini <<-EOF &&
	[export:one]
	path = $A
	[export:two]
	path = $B
	[export:deep]
	path = $V
	at = /virt/deep
	EOF
	pufs_opts beta >/dev/null &&
	pufs_start alpha "$M" -c "$TRASH/x.ini" \
	    -o "peer.peers=127.0.0.1:$(pufs_port beta)"
'

test_expect_success 'a file: its holder, URI and export' '
	uri=127.0.0.1:$(pufs_port alpha) &&
	test_output alpha attr user.pufs.peer "$M/fa" &&
	test_output "$uri" attr user.pufs.uri "$M/fa" &&
	test_output one attr user.pufs.export "$M/fa" &&
	test_output two attr user.pufs.export "$M/fb" &&
	test_output alpha attr user.pufs.peer "$M/fb"
'

test_expect_success 'a merged directory: every copy, primary first' '
	uri=127.0.0.1:$(pufs_port alpha) &&
	test_output "one two" attr user.pufs.export "$M/d" &&
	test_output "alpha alpha" attr user.pufs.peer "$M/d" &&
	test_output "$uri $uri" attr user.pufs.uri "$M/d" &&
	test_output "one two" attr user.pufs.export "$M"
'

test_expect_success 'a virtual directory has none; the export under it has' '
	test_errno ENODATA getxattr "$M/virt" user.pufs.peer &&
	test_output deep attr user.pufs.export "$M/virt/deep"
'

test_expect_success 'an unknown user.pufs name: ENODATA, not asked of the holder' '
	setfattr -n user.pufs.other -v x "$A/fa" &&
	test_errno ENODATA getxattr "$M/fa" user.pufs.other
'

test_expect_success 'a size probe, then a short buffer: ERANGE' '
	"$PYTHON" - "$M/fa" <<-EOF
	import ctypes, errno, os, sys
	libc = ctypes.CDLL(None, use_errno=True)
	p, n = sys.argv[1].encode(), b"user.pufs.peer"
	assert libc.getxattr(p, n, None, 0) == len("alpha")
	buf = ctypes.create_string_buffer(2)
	assert libc.getxattr(p, n, buf, 2) == -1
	assert ctypes.get_errno() == errno.ERANGE, ctypes.get_errno()
	EOF
'

test_expect_success 'set and remove are refused with EPERM' '
	test_errno EPERM setxattr "$M/fa" user.pufs.peer beta &&
	test_errno EPERM setxattr "$M/fa" user.pufs.new x &&
	test_errno EPERM removexattr "$M/fa" user.pufs.export &&
	test_errno EPERM setxattr "$M/d" user.pufs.uri x &&
	test_output alpha attr user.pufs.peer "$M/fa"
'

test_expect_success 'listxattr does not list them, a holder'\''s own are hidden' '
	setfattr -n user.colour -v blue "$M/fa" &&
	setfattr -n user.pufs.peer -v forged "$A/fa" &&
	test_output user.colour pyop listxattr "$M/fa" &&
	test_output alpha attr user.pufs.peer "$M/fa" &&
	test_output "" pyop listxattr "$M/d"
'

test_expect_success 'copies do not carry them' '
	cp -a "$M/fa" "$M/copy" &&
	test_output blue attr user.colour "$A/copy" &&
	test_errno ENODATA getxattr "$A/copy" user.pufs.peer &&
	test_errno ENODATA getxattr "$A/copy" user.pufs.export
'

test_expect_success 'a symbolic link: the kernel keeps user.* off it' '
	test_errno ENODATA getxattr "$M/link" user.pufs.peer &&
	test_output one getfattr -h --only-values -n user.pufs.export "$M/fa"
'

test_expect_success 'pufs where: one tab-separated line a path' '
	uri=127.0.0.1:$(pufs_port alpha) &&
	pufs_try 0 where "$M/fa" "$M/fb" "$M/d" "$M/link" &&
	printf "%s\t%s\t%s\t%s\n" \
	    "$M/fa" alpha "$uri" one \
	    "$M/fb" alpha "$uri" two \
	    "$M/d" "alpha alpha" "$uri $uri" "one two" \
	    "$M/link" alpha "$uri" one >want &&
	test_cmp want out &&
	test_output "" cat err
'

test_expect_success 'pufs where: what it cannot tell exits 1, named' '
	pufs_try 1 where "$M/fa" "$M/missing" "$TRASH" &&
	test_output "$M/fa	alpha	127.0.0.1:$(pufs_port alpha)	one" cat out &&
	grep "where: $M/missing: No such file or directory" err &&
	grep "where: $TRASH: not held by any peer of a pufs union" err &&
	pufs_try 2 where &&
	grep "usage: pufs where PATH" err &&
	pufs_try 2 where -x &&
	pufs_try 0 where -- "$M/fa"
'

test_expect_success 'another peer'\''s file: that peer, its URI, its export' '
	mkdir -p eb mb "$TRASH/eb/d" &&
	echo x >eb/fx &&
	pufs_start beta mb -e "$TRASH/eb" \
	    -o "peer.peers=127.0.0.1:$(pufs_port alpha)" &&
	wait_for "test -e $M/fx" &&
	ua=127.0.0.1:$(pufs_port alpha) &&
	ub=127.0.0.1:$(pufs_port beta) &&
	test_output beta attr user.pufs.peer "$M/fx" &&
	test_output "$ub" attr user.pufs.uri "$M/fx" &&
	test_output e0 attr user.pufs.export "$M/fx" &&
	wait_for "test \"\$(getfattr --only-values -n user.pufs.peer $M/d)\" = \"alpha alpha beta\"" &&
	test_output "$ua $ua $ub" attr user.pufs.uri "$M/d" &&
	test_output "one two e0" attr user.pufs.export "$M/d" &&
	test_output alpha attr user.pufs.peer "mb/fa" &&
	pufs_try 0 where "$M/fx" &&
	test_output "$M/fx	beta	$ub	e0" cat out &&
	pufs_stop beta
'

test_expect_success 'stop' '
	pufs_stop alpha
'

test_done
