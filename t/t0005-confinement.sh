#!/bin/bash
#
# Confinement: no request reaches outside the export, not through
# symbolic links in the export, not through a directory swapped for a
# symlink behind the daemon's back, not through a race.
#
# The trick that tells the serving side from the client side: the mount
# is one level deeper than the export, so a relative symlink "../outside"
# in the export resolves to $TRASH/outside on the serving side but to
# $TRASH/c/outside (a decoy) when the kernel follows it on the client
# side, which is normal.  $TRASH/outside must never change and its
# content must never be read through the mount.

. "$(dirname "$0")/lib.sh"

E=$TRASH/export
M=$TRASH/c/mnt
OUT=$TRASH/outside
DECOY=$TRASH/c/outside
SECRET=secret-outside-the-export

# Print everything about the tree DIR that an operation could change.
snap () {
	(
		cd "$1" &&
		find . -printf "%p %y %m %U %G %s %n %T@ %C@ %l\n" | sort &&
		find . -type f -exec sha256sum {} + | sort &&
		getfattr -h -R -d -m - . 2>/dev/null
	)
}

test_expect_success 'setup' '
	mkdir -p "$E/d" "$OUT/sub" "$DECOY/sub" "$M" &&
	echo "$SECRET" >"$OUT/x" &&
	echo "$SECRET" >"$OUT/sub/y" &&
	echo decoy >"$DECOY/x" &&
	echo inside >"$E/d/x" &&
	snap "$OUT" >out.snap &&
	pufs_start alpha "$M" -e "$E" -o cache.attr_timeout=60
'

test_expect_success 'readlink returns symlink targets verbatim' '
	i=0 &&
	for t in / /etc/passwd ../.. ../../../../../etc/shadow \
	    ../outside dangling/nowhere "a/../../b/./../c" "..." \
	    "$(printf "../%.0s" $(seq 1 300))etc"; do
		i=$((i + 1)) &&
		ln -s "$t" "$E/disk$i" &&
		ln -s "$t" "$M/mnt$i" &&
		test_output "$t" readlink "$M/disk$i" &&
		test_output "$t" readlink "$M/mnt$i" &&
		test_output "$t" readlink "$E/mnt$i" || return 1
	done
'

test_expect_success 'a symlinked directory in the export is followed client-side' '
	ln -s ../outside "$E/out" &&
	test_output ../outside readlink "$M/out" &&
	test_output "symbolic link" stat -c %F "$M/out" &&
	ls "$DECOY" >expect &&
	ls "$M/out/" >actual &&
	test_cmp expect actual &&
	test_output decoy cat "$M/out/x" &&
	echo new >"$M/out/new" &&
	test_path_is_file "$DECOY/new" &&
	test_path_is_missing "$OUT/new" &&
	snap "$OUT" >now.snap && test_cmp out.snap now.snap
'

test_expect_success 'a symlink to an outside file: operations on the link stay inside' '
	ln -s ../outside/x "$E/fx" &&
	test_output decoy cat "$M/fx" &&
	test_output 12 stat -c %s "$M/fx" &&
	chown -h 4321:4321 "$M/fx" &&
	test_output "4321 4321" stat -c "%u %g" "$E/fx" &&
	touch -h -d "2001-01-01" "$M/fx" &&
	test_output 978307200 stat -c %Y "$E/fx" &&
	{ setfattr -h -n trusted.pufs -v 1 "$M/fx" || :; } &&
	pyop link "$M/fx" "$M/fx-hard" &&
	test_output "../outside/x" readlink "$E/fx-hard" &&
	mv "$M/fx" "$M/fy" &&
	test_output "../outside/x" readlink "$E/fy" &&
	rm "$M/fy" "$M/fx-hard" &&
	test_path_is_missing "$E/fy" &&
	snap "$OUT" >now.snap && test_cmp out.snap now.snap
'

test_expect_success 'no hard link to a file outside can be made' '
	test_errno EXDEV link "$OUT/x" "$M/hl" &&
	ln -s ../outside/x "$E/fz" &&
	test_errno EXDEV link_follow "$M/fz" "$M/hl2" &&
	test_path_is_missing "$E/hl" && test_path_is_missing "$E/hl2" &&
	test_output 1 stat -c %h "$OUT/x" &&
	snap "$OUT" >now.snap && test_cmp out.snap now.snap
'

# Run one call through the mount and ignore its result.
try_op () {
	pyop "$@" >/dev/null 2>&1
	:
}

test_expect_success 'a directory swapped for a symlink on disk: nothing reaches outside' '
	ls "$M/d" && cat "$M/d/x" && stat "$M/d/x" >/dev/null &&
	mv "$E/d" "$E/d.bak" &&
	ln -s ../outside "$E/d" &&
	for i in 1 2; do
		{ cat "$M/d/x" >read.$i 2>/dev/null || :; } &&
		{ cat "$M/d/sub/y" >>read.$i 2>/dev/null || :; } &&
		try_op stat "$M/d/x" &&
		try_op open "$M/d/n1" "wronly|creat" &&
		try_op write "$M/d/x" clobbered &&
		try_op mkdir "$M/d/n2" &&
		try_op symlink t "$M/d/n3" &&
		try_op mknod "$M/d/n4" fifo &&
		try_op link "$M/d/x" "$M/d/n5" &&
		try_op chmod "$M/d/x" 777 &&
		try_op chown "$M/d/x" 99 99 &&
		try_op utime "$M/d/x" 1000 &&
		try_op truncate "$M/d/x" 0 &&
		try_op setxattr "$M/d/x" user.evil 1 &&
		try_op rename "$M/d/x" "$M/d/x2" &&
		try_op rename "$M/d/sub" "$M/d/sub2" &&
		try_op unlink "$M/d/sub/y" &&
		try_op rmdir "$M/d/sub" &&
		try_op unlink "$M/d/x" &&
		try_op listdir "$M/d" || return 1
	done &&
	! grep "$SECRET" read.1 read.2 &&
	snap "$OUT" >now.snap && test_cmp out.snap now.snap
'

test_expect_success 'a directory swapped for a symlink: the same after expiry' '
	pufs_stop alpha &&
	rm "$E/d" && mv "$E/d.bak" "$E/d" &&
	pufs_start beta "$M" -e "$E" -o cache.attr_timeout=0.1 &&
	cat "$M/d/x" &&
	mv "$E/d" "$E/d.bak" && ln -s ../outside "$E/d" &&
	wait_for "test -L \"$M/d\"" 5 &&
	{ cat "$M/d/x" >read.3 2>/dev/null || :; } &&
	! grep "$SECRET" read.3 &&
	try_op open "$M/d/m1" "wronly|creat" &&
	try_op unlink "$M/d/x" &&
	try_op chmod "$M/d/sub" 700 &&
	snap "$OUT" >now.snap && test_cmp out.snap now.snap &&
	rm "$E/d" && mv "$E/d.bak" "$E/d"
'

test_expect_success 'a race: export/d flips between a directory and a symlink' '
	rm -rf "$E/d" &&
	mkdir "$E/d" && echo inside >"$E/d/x" && mkdir "$E/d/sub" &&
	ln -s ../outside "$E/d.alt" &&
	rm -f stop &&
	"$PYTHON" - "$E/d" "$E/d.alt" <<-\EOF >flipper.out 2>&1 &
	import ctypes, os, sys, time
	libc = ctypes.CDLL(None, use_errno=True)
	a, b = sys.argv[1].encode(), sys.argv[2].encode()
	for i in range(2000):
	    if libc.renameat2(-100, a, -100, b, 2) != 0:
	        print("renameat2 failed", ctypes.get_errno())
	        sys.exit(1)
	    time.sleep(0.001)
	open("stop", "w").close()
	print("flipped 2000 times")
	EOF
	flipper=$! &&
	for w in 1 2 3; do
		"$PYTHON" - "$M/d" "$SECRET" $w <<-\EOF >worker.$w 2>&1 &
		import os, sys, errno
		d, secret, w = sys.argv[1], sys.argv[2].encode(), sys.argv[3]
		ops = leaks = 0
		def attempt(f, *a):
		    global ops
		    ops += 1
		    try:
		        return f(*a)
		    except OSError:
		        return None
		def read(p):
		    with open(p, "rb") as f:
		        return f.read()
		def create(p):
		    os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644))
		def clobber(p):
		    fd = os.open(p, os.O_WRONLY)
		    os.write(fd, b"clobbered")
		    os.close(fd)
		while not os.path.exists("stop"):
		    data = attempt(read, d + "/x")
		    if data and secret in data:
		        leaks += 1
		    data = attempt(read, d + "/sub/../x")
		    if data and secret in data:
		        leaks += 1
		    attempt(os.stat, d + "/x")
		    attempt(create, d + "/new" + w)
		    attempt(clobber, d + "/x")
		    attempt(os.chmod, d + "/x", 0o600)
		    attempt(os.truncate, d + "/x", 0)
		    attempt(os.mkdir, d + "/dir" + w)
		    attempt(os.rename, d + "/new" + w, d + "/moved" + w)
		    attempt(os.unlink, d + "/moved" + w)
		    attempt(os.rmdir, d + "/dir" + w)
		    attempt(os.symlink, "t", d + "/sym" + w)
		    attempt(os.unlink, d + "/sym" + w)
		    attempt(os.setxattr, d + "/x", "user.evil", b"1")
		    attempt(os.listdir, d)
		print("ops", ops, "leaks", leaks)
		sys.exit(1 if leaks else 0)
		EOF
		eval "worker$w=\$!" || return 1
	done &&
	wait $flipper &&
	wait $worker1 && wait $worker2 && wait $worker3 &&
	cat flipper.out worker.1 worker.2 worker.3 &&
	grep "flipped 2000 times" flipper.out &&
	snap "$OUT" >now.snap && test_cmp out.snap now.snap
'

test_expect_success 'the daemon still serves, and stops cleanly' '
	echo after >"$M/after" &&
	test_output after cat "$E/after" &&
	pufs_stop beta
'

test_done
