#!/bin/bash
#
# Everyday tools on a directory that three peers hold, editing files that
# another peer holds: rename(2) of a file or symlink onto another peer's
# name moves it there atomically (sed -i, os.replace, git, rsync, SQLite
# all work and the data ends on the destination's holder); a reader never
# sees a short or mixed file while the name is replaced 200 times; a move
# that the holder cannot take fails with its error (ENOSPC) and changes
# nothing; a file with other hard links stays EXDEV; a moved file keeps
# its user.* extended attributes; status counts the moves.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"
test_require sed git rsync sqlite3

# moves K FIELD: a counter of peer K's moves.
moves () {
	peer_status "$1" | "$PYTHON" -c \
	    "import json,sys; print(json.load(sys.stdin)['moves']['$2'])"
}

# temps K: the hidden temporary copies left in peer K's export.
temps () {
	find "$(peer_export "$1")" -name '.pufs-move.*' | wc -l
}

test_expect_success 'setup: a directory held by three peers' '
	peers_net_setup 3 &&
	for k in 1 2 3; do
		mkdir -p "$(peer_export $k)/shared" || exit 1
	done &&
	printf "line v1\nother\n" >"$E2/shared/notes.txt" &&
	echo "config 1" >"$E3/shared/app.conf" &&
	ln -s notes.txt "$E3/shared/link" &&
	echo "hard" >"$E2/shared/hard" && ln "$E2/shared/hard" "$E2/hard2" &&
	mkdir -p "$TRASH/small" &&
	peers_mount_tmpfs "$TRASH/small" 2M &&
	mkdir -p "$TRASH/small/shared" &&
	echo "small v1" >"$TRASH/small/shared/full.txt" &&
	head -c 3000000 /dev/urandom >"$E1/shared/big.bin" &&
	peer_start 1 && peer_start 2 &&
	peer_start 3 -e "$TRASH/small" &&
	peers_wait_all_up 3
'

test_expect_success 'sed -i on p1 edits the file p2 holds, in place on p2' '
	sed -i s/v1/v3/ "$M1/shared/notes.txt" &&
	test_output "line v3" head -n 1 "$E2/shared/notes.txt" &&
	test "$(ls "$E1/shared" | grep -c "^sed")" = 0 &&
	test_path_is_missing "$E1/shared/notes.txt" &&
	each_mount_soon "test \"\$(head -n 1 \$m/shared/notes.txt)\" = \"line v3\"" &&
	test "$(moves 1 done)" -ge 1 &&
	test "$(temps 1)$(temps 2)$(temps 3)" = 000
'

test_expect_success 'os.replace from a temporary file onto p3 file' '
	"$PYTHON" - "$M1/shared" <<-\EOF &&
	import os, sys
	d = sys.argv[1]
	tmp = os.path.join(d, ".app.conf.tmp")
	with open(tmp, "w") as f:
	    f.write("config 2\n")
	    f.flush()
	    os.fsync(f.fileno())
	os.replace(tmp, os.path.join(d, "app.conf"))
	EOF
	test_output "config 2" cat "$E3/shared/app.conf" &&
	test_path_is_missing "$E1/shared/.app.conf.tmp" &&
	test_path_is_missing "$E1/shared/app.conf" &&
	test_output "config 2" cat "$M2/shared/app.conf"
'

test_expect_success 'a symlink moves onto another peer name too' '
	ln -s app.conf "$M1/shared/newlink" &&
	mv -T "$M1/shared/newlink" "$M1/shared/link" &&
	test "$(readlink "$E3/shared/link")" = app.conf &&
	test_path_is_missing "$E1/shared/newlink"
'

test_expect_success 'a moved file keeps its user.* extended attributes, small or large' '
	echo "old" >"$E2/shared/xdst" &&
	echo "old" >"$E3/shared/xbig" &&
	each_mount_soon "test -f \$m/shared/xdst && test -f \$m/shared/xbig" &&
	"$PYTHON" - "$M1/shared" "$E1/shared" "$E2/shared" "$E3/shared" <<-\EOF
	import os, sys
	d, e1, e2, e3 = sys.argv[1:]
	attrs = {"user.a": b"1", "user.long": os.urandom(3000)}
	for tmp, dst, size, holder in ((".xdst.tmp", "xdst", 100, e2),
	                               (".xbig.tmp", "xbig", 3000000, e3)):
	    data = os.urandom(size)
	    with open(os.path.join(d, tmp), "wb") as f:
	        f.write(data)
	    assert os.path.exists(os.path.join(e1, tmp)), "not made on p1"
	    for k, v in attrs.items():
	        os.setxattr(os.path.join(d, tmp), k, v)
	    os.rename(os.path.join(d, tmp), os.path.join(d, dst))
	    got = os.path.join(holder, dst)
	    assert open(got, "rb").read() == data
	    assert {k: os.getxattr(got, k) for k in os.listxattr(got)} == attrs
	    assert sorted(os.listxattr(os.path.join(d, dst))) == sorted(attrs)
	    assert not os.path.exists(os.path.join(e1, tmp))
	EOF
'

test_expect_success 'a file with other hard links: EXDEV, nothing changes' '
	echo "other" >"$E1/shared/tmp.hard" &&
	ln "$E1/shared/tmp.hard" "$E1/tmp.hard2" &&
	test_errno EXDEV rename "$M1/shared/tmp.hard" "$M1/shared/notes.txt" &&
	test_output "line v3" head -n 1 "$E2/shared/notes.txt" &&
	test_output other cat "$E1/shared/tmp.hard"
'

test_expect_success 'rsync of a tree into the directory' '
	mkdir -p src/sub &&
	echo one >src/notes.txt && echo two >src/sub/b && echo three >src/c &&
	rsync -a src/ "$M1/shared/" &&
	test_output one cat "$E2/shared/notes.txt" &&
	test_output two cat "$M2/shared/sub/b" &&
	test_output three cat "$M3/shared/c"
'

test_expect_success 'a git commit in a repository on another peer' '
	git init -q "$E2/shared/repo" &&
	echo a >"$E2/shared/repo/a" &&
	git -C "$E2/shared/repo" -c user.name=t -c user.email=t@t add a &&
	git -C "$E2/shared/repo" -c user.name=t -c user.email=t@t \
		commit -q -m one &&
	echo b >"$M1/shared/repo/b" &&
	git -C "$M1/shared/repo" -c user.name=t -c user.email=t@t add b &&
	git -C "$M1/shared/repo" -c user.name=t -c user.email=t@t \
		commit -q -m two &&
	test_output 2 sh -c "git -C \"$E2/shared/repo\" log --oneline | wc -l" &&
	git -C "$E2/shared/repo" fsck >/dev/null 2>&1
'

test_expect_success 'SQLite rollback-journal transactions on a p2 database' '
	sqlite3 "$E2/shared/db.sqlite" \
		"create table t (k integer primary key, v text);" &&
	for i in $(seq 20); do
		sqlite3 "$M1/shared/db.sqlite" \
			"pragma journal_mode=delete; begin;
			 insert into t (v) values (\"row $i\");
			 update t set v = v || \"!\" where k = 1; commit;" \
			>/dev/null || exit 1
	done &&
	test_output 20 sqlite3 "$E2/shared/db.sqlite" "select count(*) from t;" &&
	test_output ok sqlite3 "$E2/shared/db.sqlite" "pragma integrity_check;" &&
	test_path_is_missing "$E1/shared/db.sqlite"
'

test_expect_success 'a reader never sees a short or mixed file (200 replaces)' '
	"$PYTHON" - "$M1/shared" "$M3/shared/swap.txt" <<-\EOF
	import os, sys, threading
	d, other = sys.argv[1], sys.argv[2]
	target = os.path.join(d, "swap.txt")
	size = 200000
	def version(i):
	    return bytes([65 + i % 26]) * size
	with open(other, "wb") as f:    # created on p3 by p3
	    f.write(version(0))
	done = False
	bad = []
	reads = [0]
	def reader():
	    while not done:
	        try:
	            with open(os.path.join(os.path.dirname(other),
	                                   "swap.txt"), "rb") as f:
	                b = f.read()
	        except FileNotFoundError:
	            bad.append("missing")
	            continue
	        reads[0] += 1
	        if len(b) != size or b != b[:1] * size:
	            bad.append("%d bytes, mixed %s" % (len(b), b[:1] * size != b))
	t = threading.Thread(target=reader)
	t.start()
	for i in range(1, 201):
	    tmp = os.path.join(d, ".swap.%d" % i)
	    with open(tmp, "wb") as f:
	        f.write(version(i))
	    os.rename(tmp, target)
	done = True
	t.join()
	print("%d reads, %d bad" % (reads[0], len(bad)))
	sys.exit(1 if bad or reads[0] == 0 else 0)
	EOF
'

test_expect_success 'a move the holder has no room for: ENOSPC, both names kept' '
	failed0=$(moves 1 failed) &&
	test_errno ENOSPC rename "$M1/shared/big.bin" "$M1/shared/full.txt" &&
	test_output "small v1" cat "$TRASH/small/shared/full.txt" &&
	test "$(stat -c %s "$E1/shared/big.bin")" = 3000000 &&
	test "$(temps 1)$(temps 2)$(temps 3)" = 000 &&
	test "$(find "$TRASH/small" -name ".pufs-move.*" | wc -l)" = 0 &&
	test "$(moves 1 failed)" -gt "$failed0" &&
	test_output "small v1" cat "$M2/shared/full.txt"
'

test_expect_success 'temporary copies are never listed, their names refused' '
	! ls -a "$M2/shared" | grep -q "^\.pufs-move\." &&
	test "$(moves 1 bytes)" -gt 0 &&
	test_errno EINVAL open "$M1/shared/.pufs-move.x" "wronly|creat" &&
	test_errno EINVAL rename "$M1/shared/c" "$M1/shared/.pufs-move.y" &&
	test_output three cat "$M1/shared/c"
'

test_done
