#!/bin/bash
#
# Extended attributes on one peer: set, get, list and remove user.*
# attributes on files and directories, the XATTR_CREATE/REPLACE flags,
# empty, binary and large values, ENODATA, and agreement with the
# backing directory both ways.

. "$(dirname "$0")/lib.sh"

test_require setfattr getfattr

E=$TRASH/export
M=$TRASH/mnt

test_expect_success 'setup' '
	mkdir -p "$E/dir" "$M" &&
	echo f >"$E/file" &&
	pufs_start alpha "$M" -e "$E" -o cache.attr_timeout=0.2
'

test_expect_success 'set and get a user attribute on a file' '
	setfattr -n user.colour -v blue "$M/file" &&
	test_output blue getfattr --only-values -n user.colour "$M/file" &&
	test_output blue getfattr --only-values -n user.colour "$E/file"
'

test_expect_success 'set and get on a directory' '
	setfattr -n user.kind -v folder "$M/dir" &&
	test_output folder getfattr --only-values -n user.kind "$M/dir" &&
	test_output folder getfattr --only-values -n user.kind "$E/dir"
'

test_expect_success 'replace a value, longer then shorter' '
	setfattr -n user.colour -v "a much longer value than before" "$M/file" &&
	test_output "a much longer value than before" getfattr --only-values -n user.colour "$M/file" &&
	setfattr -n user.colour -v x "$M/file" &&
	test_output x getfattr --only-values -n user.colour "$M/file" &&
	test_output x getfattr --only-values -n user.colour "$E/file"
'

test_expect_success 'listxattr lists every name' '
	for i in $(seq 1 40); do
		setfattr -n user.attr$i -v v$i "$M/file" || return 1
	done &&
	(echo user.colour && seq -f "user.attr%g" 1 40) | sort >expect &&
	pyop listxattr "$M/file" | tr " " "\n" | grep "^user\." >actual &&
	test_cmp expect actual &&
	pyop listxattr "$E/file" | tr " " "\n" | grep "^user\." >actual &&
	test_cmp expect actual
'

test_expect_success 'removexattr removes, and a missing name is ENODATA' '
	setfattr -x user.attr7 "$M/file" &&
	test_errno ENODATA getxattr "$M/file" user.attr7 &&
	test_errno ENODATA getxattr "$E/file" user.attr7 &&
	test_errno ENODATA removexattr "$M/file" user.attr7 &&
	test_errno ENODATA getxattr "$M/file" user.never &&
	! pyop listxattr "$M/file" | tr " " "\n" | grep -x user.attr7
'

test_expect_success 'XATTR_CREATE and XATTR_REPLACE' '
	test_errno EEXIST setxattr "$M/file" user.colour y create &&
	test_errno ENODATA setxattr "$M/file" user.newname y replace &&
	test_errno ok setxattr "$M/file" user.newname y create &&
	test_errno ok setxattr "$M/file" user.newname z replace &&
	test_output z getfattr --only-values -n user.newname "$E/file"
'

test_expect_success 'empty, binary and large values' '
	: >"$M/vals" && : >"$M/large" &&
	"$PYTHON" - "$M/vals" "$E/vals" "$M/large" "$E/large" <<-\EOF
	import os, sys
	m, e = sys.argv[1], sys.argv[2]
	os.setxattr(m, "user.empty", b"")
	assert os.getxattr(m, "user.empty") == b""
	assert os.getxattr(e, "user.empty") == b""
	binary = bytes(range(256)) * 4
	os.setxattr(m, "user.binary", binary)
	assert os.getxattr(m, "user.binary") == binary
	assert os.getxattr(e, "user.binary") == binary
	m, e = sys.argv[3], sys.argv[4]
	large = os.urandom(3000)
	os.setxattr(m, "user.large", large)
	assert os.getxattr(m, "user.large") == large
	assert os.getxattr(e, "user.large") == large
	EOF
'

test_expect_success 'the size query and ERANGE' '
	"$PYTHON" - "$M/large" <<-\EOF
	import ctypes, errno, os, sys
	libc = ctypes.CDLL(None, use_errno=True)
	libc.getxattr.restype = ctypes.c_ssize_t
	libc.getxattr.argtypes = [ctypes.c_char_p, ctypes.c_char_p,
	                          ctypes.c_void_p, ctypes.c_size_t]
	libc.listxattr.restype = ctypes.c_ssize_t
	libc.listxattr.argtypes = [ctypes.c_char_p, ctypes.c_void_p,
	                           ctypes.c_size_t]
	p = sys.argv[1].encode()
	n = libc.getxattr(p, b"user.large", None, 0)
	assert n == 3000, n
	buf = ctypes.create_string_buffer(10)
	assert libc.getxattr(p, b"user.large", buf, 10) == -1
	assert ctypes.get_errno() == errno.ERANGE, ctypes.get_errno()
	n = libc.listxattr(p, None, 0)
	assert n > 0, n
	buf = ctypes.create_string_buffer(n)
	assert libc.listxattr(p, buf, n) == n
	assert libc.listxattr(p, buf, 3) == -1
	assert ctypes.get_errno() == errno.ERANGE
	EOF
'

test_expect_success 'attributes set on disk show through the mount' '
	setfattr -n user.ondisk -v from-disk "$E/file" &&
	wait_for "test \"\$(getfattr --only-values -n user.ondisk \"$M/file\")\" = from-disk" 5 &&
	setfattr -x user.ondisk "$E/file" &&
	wait_for "test_errno ENODATA getxattr \"$M/file\" user.ondisk" 5
'

test_expect_success 'attributes follow the file through rename and hard links' '
	mv "$M/file" "$M/renamed" &&
	test_output x getfattr --only-values -n user.colour "$M/renamed" &&
	ln "$M/renamed" "$M/hard" &&
	setfattr -n user.via -v hard "$M/hard" &&
	test_output hard getfattr --only-values -n user.via "$M/renamed" &&
	test_output hard getfattr --only-values -n user.via "$E/renamed"
'

test_expect_success 'a file created on the mount starts with no user attributes' '
	: >"$M/fresh" &&
	pyop listxattr "$M/fresh" >list &&
	! grep "user\." list
'

test_expect_success 'stop' '
	pufs_stop alpha
'

test_done
