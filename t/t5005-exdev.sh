#!/bin/bash
#
# rename(2) and link(2) between peers: to a new name in a directory the
# source's peer does not hold, the directory's path is cloned there and
# the object stays on its peer; onto a file another peer holds, the file
# moves there; a directory onto another peer's directory stays EXDEV.
# Within one peer both are atomic (the object keeps its inode on the
# holder's disk, a replaced target is gone in one step).

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"

test_expect_success 'setup: three peers, directories of their own and shared' '
	peers_net_setup 3 &&
	for k in 1 2 3; do
		e=$(peer_export $k) &&
		mkdir -p "$e/d$k/sub" "$e/shared" &&
		echo "data $k" >"$e/f$k" &&
		echo "shared $k" >"$e/shared/s$k" &&
		echo "in d$k" >"$e/d$k/g$k" || exit 1
	done &&
	echo "target on p2" >"$E2/t2" &&
	mkdir -p "$E3/only3/deep" &&
	head -c 3000000 /dev/urandom >"$E1/big1" &&
	peers_start_all 3 &&
	peers_wait_all_up 3
'

test_expect_success 'rename(2) to a directory only another peer holds clones it' '
	"$PYTHON" "$_LIB/op.py" rename "$M1/f1" "$M1/d2/f1" &&
	test_output "data 1" cat "$E1/d2/f1" &&
	test_path_is_missing "$E1/f1" &&
	test_path_is_missing "$E2/d2/f1" &&
	test "$(stat -c %a "$E1/d2")" = "$(stat -c %a "$E2/d2")" &&
	each_mount_soon "test -f \$m/d2/f1 && ! test -e \$m/f1" &&
	"$PYTHON" "$_LIB/op.py" rename "$M2/d1/g1" "$M2/only3/deep/g1" &&
	test_output "in d1" cat "$E1/only3/deep/g1" &&
	test_path_is_missing "$E3/only3/deep/g1" &&
	"$PYTHON" "$_LIB/op.py" rename_noreplace "$M3/shared/s2" \
		"$M3/only3/s2" &&
	test_output "shared 2" cat "$E2/only3/s2" &&
	"$PYTHON" "$_LIB/op.py" rename "$M1/d1" "$M1/only3/d1" &&
	test_path_is_dir "$E1/only3/d1/sub" &&
	each_mount_soon "test -d \$m/only3/d1/sub && test -f \$m/only3/deep/g1"
'

test_expect_success 'rename(2) onto a name another peer holds moves the file' '
	"$PYTHON" "$_LIB/op.py" rename "$M1/f3" "$M1/t2" &&
	test_output "data 3" cat "$E2/t2" &&
	test_path_is_missing "$E3/f3" &&
	test_path_is_missing "$E1/t2" &&
	each_mount_soon "test \"\$(cat \$m/t2)\" = \"data 3\" && ! test -e \$m/f3"
'

test_expect_success 'a directory onto another peer directory: EXDEV' '
	mkdir "$E2/empty2" &&
	wait_for "test -d \"$M1/empty2\"" 3 &&
	test_errno EXDEV rename "$M1/only3/d1" "$M1/empty2" &&
	test_path_is_dir "$E1/only3/d1/sub" &&
	test_path_is_dir "$E2/empty2"
'

test_expect_success 'link(2) to a directory only another peer holds clones it' '
	"$PYTHON" "$_LIB/op.py" link "$M1/d2/g2" "$M1/only3/deep/l2" &&
	test_output "in d2" cat "$E2/only3/deep/l2" &&
	test_output 2 stat -c %h "$E2/d2/g2" &&
	test_path_is_missing "$E3/only3/deep/l2"
'

test_expect_success 'mv(1) of files and directories into another peer directory' '
	cp "$E1/big1" big1 &&
	mv "$M3/big1" "$M3/d3/big1" &&
	test_path_is_missing "$E1/big1" &&
	cmp big1 "$E1/d3/big1" &&
	each_mount "cmp big1 \$m/d3/big1" &&
	mv "$M2/only3/d1/sub" "$M2/d3/sub1" &&
	test_path_is_dir "$E1/d3/sub1" &&
	test_path_is_missing "$E1/only3/d1/sub"
'

test_expect_success 'rename within one peer keeps the inode on its disk' '
	ino=$(stat -c %i "$E2/f2") &&
	"$PYTHON" "$_LIB/op.py" rename "$M1/f2" "$M1/d2/f2moved" &&
	test_path_is_missing "$E2/f2" &&
	test_output "$ino" stat -c %i "$E2/d2/f2moved" &&
	each_mount_soon "test -f \$m/d2/f2moved && ! test -e \$m/f2" &&
	dino=$(stat -c %i "$E3/d3") &&
	"$PYTHON" "$_LIB/op.py" rename "$M1/d3" "$M1/d3renamed" &&
	test_output "$dino" stat -c %i "$E3/d3renamed" &&
	test_path_is_missing "$E3/d3" &&
	test_output "in d3" cat "$M2/d3renamed/g3"
'

test_expect_success 'rename within one peer replaces its target atomically' '
	echo old >"$E2/d2/victim" &&
	echo new >"$E2/d2/winner" &&
	ino=$(stat -c %i "$E2/d2/winner") &&
	"$PYTHON" "$_LIB/op.py" rename "$M3/d2/winner" "$M3/d2/victim" &&
	test_output "$ino" stat -c %i "$E2/d2/victim" &&
	test_output new cat "$E2/d2/victim" &&
	test_path_is_missing "$E2/d2/winner" &&
	each_mount "test_output new cat \$m/d2/victim" &&
	echo a >"$E3/d3renamed/xa" && echo b >"$E3/d3renamed/xb" &&
	ia=$(stat -c %i "$E3/d3renamed/xa") &&
	ib=$(stat -c %i "$E3/d3renamed/xb") &&
	"$PYTHON" "$_LIB/op.py" rename_exchange "$M1/d3renamed/xa" \
		"$M1/d3renamed/xb" &&
	test_output "$ib" stat -c %i "$E3/d3renamed/xa" &&
	test_output "$ia" stat -c %i "$E3/d3renamed/xb" &&
	each_mount_soon "test \"\$(cat \$m/d3renamed/xa)\" = b"
'

test_expect_success 'a file of p1 renamed in a merged directory stays on p1' '
	ino=$(stat -c %i "$E1/shared/s1") &&
	mv "$M3/shared/s1" "$M3/shared/s1b" &&
	test_output "$ino" stat -c %i "$E1/shared/s1b" &&
	test_path_is_missing "$E3/shared/s1b" &&
	ln "$M2/shared/s1b" "$M2/shared/s1c" &&
	test_output "$ino" stat -c %i "$E1/shared/s1c"
'

test_expect_success 'a reader of the old name sees old or new, nothing else' '
	for i in $(seq 200); do echo "v$i" >"$E2/d2/c.$i" || exit 1; done &&
	echo v0 >"$E2/d2/c" &&
	wait_for "test -f $M1/d2/c" 3 &&
	set +x &&
	{
		(
			for i in $(seq 200); do
				mv "$M2/d2/c.$i" "$M2/d2/c" || exit 1
			done
		) &
	} &&
	mvpid=$! &&
	: >bad &&
	n=0 &&
	while kill -0 $mvpid 2>/dev/null; do
		v=$(cat "$M1/d2/c" 2>&1)
		case $v in v[0-9]*) ;; *) echo "read: $v" >>bad ;; esac
		n=$((n + 1))
	done &&
	set -x &&
	wait $mvpid &&
	echo "$n reads, $(wc -l <bad) bad" &&
	sort bad | uniq -c &&
	test $(wc -l <bad) = 0 &&
	test_output v200 cat "$E2/d2/c"
'

test_done
