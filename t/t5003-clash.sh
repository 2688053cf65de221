#!/bin/bash
#
# Name clashes in merged directories: a non-directory name held by
# several peers shows once per holder as NAME@URI, never plain; a
# directory keeps the plain name and merges while the files beside it
# are suffixed; NAME@URI reads, stats, renames and removes that peer's
# copy, and resolves even without a clash; creating a name that exists
# on another peer fails with EEXIST, from every mount.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"

test_expect_success 'setup: three peers, a merged directory with clashes' '
	peers_net_setup 3 &&
	mkdir -p "$E1/m/d" "$E2/m" "$E3/m/d" "$E3/m/ed" &&
	echo one >"$E1/m/x" &&
	echo "two two" >"$E2/m/x" &&
	echo in1 >"$E1/m/d/in1" &&
	echo in3 >"$E3/m/d/in3" &&
	echo "file d" >"$E2/m/d" &&
	echo "only on p3" >"$E3/m/y" &&
	echo r1 >"$E1/m/r" && echo r3 >"$E3/m/r" &&
	echo n2 >"$E2/m/n" && echo n3 >"$E3/m/n" &&
	echo e2 >"$E2/m/e" &&
	echo top1 >"$E1/top" && echo top3 >"$E3/top" &&
	peers_start_all 3 &&
	peers_wait_all_up 3
'

test_expect_success 'every mount lists each clashing name once per holder' '
	printf "%s\n" d "d@$U2" e ed "n@$U2" "n@$U3" "r@$U1" "r@$U3" \
		"x@$U1" "x@$U2" y >expect &&
	each_mount "ls \$m/m >actual && test_cmp expect actual"
'

test_expect_success 'clashes in the root directory too' '
	each_mount "ls \$m >actual &&
		grep -qx \"top@$U1\" actual && grep -qx \"top@$U3\" actual &&
		! grep -qx top actual"
'

test_expect_success 'the plain name of a clashing file does not resolve' '
	each_mount "test_path_is_missing \$m/m/x && test_path_is_missing \$m/top &&
		test_errno ENOENT stat \$m/m/x"
'

test_expect_success 'NAME@URI reads that peers copy' '
	each_mount "
		test_output one cat \$m/m/x@$U1 &&
		test_output \"two two\" cat \$m/m/x@$U2 &&
		test_output top1 cat \$m/top@$U1 &&
		test_output top3 cat \$m/top@$U3 &&
		test_output \"file d\" cat \$m/m/d@$U2 &&
		test_output r1 cat \$m/m/r@$U1 &&
		test_output r3 cat \$m/m/r@$U3"
'

test_expect_success 'NAME@URI stats that peers copy' '
	each_mount "
		test_output \"regular file 4\" stat -c \"%F %s\" \$m/m/x@$U1 &&
		test_output \"regular file 8\" stat -c \"%F %s\" \$m/m/x@$U2 &&
		test \$(stat -c %i \$m/m/x@$U1) != \$(stat -c %i \$m/m/x@$U2) &&
		test_output \"regular file 7\" stat -c \"%F %s\" \$m/m/d@$U2"
'

test_expect_success 'a directory clashing with a file keeps the plain name' '
	each_mount "
		test_path_is_dir \$m/m/d &&
		test_output \"in1 in3\" sh -c \"ls \$m/m/d | xargs\" &&
		test_output in3 cat \$m/m/d/in3"
'

test_expect_success 'NAME@URI resolves without a clash' '
	each_mount "
		test_output \"only on p3\" cat \$m/m/y@$U3 &&
		test_output e2 cat \$m/m/e@$U2 &&
		test_path_is_dir \$m/m/ed@$U3 &&
		test \$(stat -c %i \$m/m/y@$U3) = \$(stat -c %i \$m/m/y) &&
		test_errno ENOENT stat \$m/m/y@$U1 &&
		test_errno ENOENT stat \$m/m/e@$U3"
'

test_expect_success 'DIR@URI of a merged directory is that peers copy' '
	each_mount "
		test_output in1 sh -c \"ls \$m/m/d@$U1 | xargs\" &&
		test_output in3 sh -c \"ls \$m/m/d@$U3 | xargs\" &&
		test_output in3 cat \$m/m/d@$U3/in3"
'

test_expect_success 'rename of NAME@URI renames that peers copy' '
	mv "$M3/m/n@$U2" "$M3/m/n2" &&
	test_output n2 cat "$E2/m/n2" &&
	test_path_is_missing "$E2/m/n" &&
	test_output n3 cat "$E3/m/n" &&
	test_path_is_missing "$E3/m/n2" &&
	test_path_is_missing "$E1/m/n2" &&
	each_mount_soon "test -f \$m/m/n && test -f \$m/m/n2 &&
		! test -e \$m/m/n@$U2 && ! ls \$m/m | grep -q \"^n@\"" &&
	each_mount "test_output n3 cat \$m/m/n && test_output n2 cat \$m/m/n2"
'

test_expect_success 'rm of NAME@URI removes that peers copy only' '
	rm "$M2/m/r@$U1" &&
	test_path_is_missing "$E1/m/r" &&
	test_output r3 cat "$E3/m/r" &&
	each_mount_soon "test -f \$m/m/r && ! ls \$m/m | grep -q \"^r@\"" &&
	each_mount "test_output r3 cat \$m/m/r"
'

test_expect_success 'writing NAME@URI changes that peers copy' '
	echo "ONE" >"$M3/m/x@$U1" &&
	test_output ONE cat "$E1/m/x" &&
	test_output "two two" cat "$E2/m/x" &&
	each_mount "test_output ONE cat \$m/m/x@$U1"
'

# no_copy NAME: no export but HOLDER has m/NAME.
no_copy () {
	local k h=$1 name=$2
	for k in 1 2 3; do
		[ $k = $h ] && continue
		test_path_is_missing "$(peer_export $k)/m/$name" || return 1
	done
}

test_expect_success 'creating NAME@URI creates NAME on that peer' '
	echo made >"$M1/m/z@$U3" &&
	test_output made cat "$E3/m/z" &&
	test_path_is_missing "$E1/m/z" &&
	test_path_is_missing "$E3/m/z@$U3" &&
	mkdir "$M2/m/zd@$U1" &&
	test_path_is_dir "$E1/m/zd" &&
	test_path_is_missing "$E2/m/zd" &&
	each_mount_soon "test -f \$m/m/z && test -d \$m/m/zd"
'

test_expect_success 'a merged directory: link count 1, mode set on every copy' '
	mkdir -p "$E1/md/a" "$E2/md/b" "$E3/md" &&
	each_mount_soon "test -d \$m/md/a && test -d \$m/md/b" &&
	each_mount "test_output 1 stat -c %h \$m/md" &&
	chmod 750 "$M3/md" &&
	for k in 1 2 3; do
		test_output 750 stat -c %a "$(peer_export $k)/md" || exit 1
	done &&
	touch -d "2001-02-03 04:05:06" "$M2/md" &&
	for k in 1 2 3; do
		test_output 981173106 stat -c %Y "$(peer_export $k)/md" ||
			exit 1
	done &&
	each_mount_soon "test \"\$(stat -c \"%a %Y\" \$m/md)\" = \"750 981173106\""
'

test_expect_success 'rmdir of a merged directory: ENOTEMPTY, then every copy' '
	each_mount "test_errno ENOTEMPTY rmdir \$m/md" &&
	rmdir "$M1/md/a" &&
	test_errno ENOTEMPTY rmdir "$M1/md" &&
	test_path_is_dir "$E1/md" &&
	rmdir "$M3/md/b" &&
	rmdir "$M2/md" &&
	for k in 1 2 3; do
		test_path_is_missing "$(peer_export $k)/md" || exit 1
	done &&
	each_mount_soon "! test -e \$m/md"
'

test_expect_success 'creating a name held by another peer: EEXIST' '
	each_mount "
		for n in e ed y; do
			test_errno EEXIST open \$m/m/\$n \"wronly|creat|excl\" &&
			test_errno EEXIST mkdir \$m/m/\$n &&
			test_errno EEXIST symlink target \$m/m/\$n &&
			test_errno EEXIST mknod \$m/m/\$n fifo &&
			! mkdir \$m/m/\$n 2>/dev/null &&
			! ln -sT target \$m/m/\$n 2>/dev/null &&
			! mknod \$m/m/\$n p 2>/dev/null &&
			! (set -C; echo new >\$m/m/\$n) 2>/dev/null || return 1
		done" &&
	no_copy 2 e && no_copy 3 ed && no_copy 3 y &&
	test_output e2 cat "$E2/m/e" &&
	test_output "only on p3" cat "$E3/m/y" &&
	test_path_is_dir "$E3/m/ed"
'

test_expect_success 'creating the plain name of a clash: EEXIST, no third copy' '
	each_mount "
		test_errno EEXIST open \$m/m/x \"wronly|creat|excl\" &&
		test_errno EEXIST open \$m/m/x \"wronly|creat\" &&
		test_errno EEXIST mkdir \$m/m/x &&
		test_errno EEXIST symlink target \$m/m/x &&
		test_errno EEXIST mknod \$m/m/x fifo &&
		! (set -C; echo new >\$m/m/x) 2>/dev/null" &&
	test_path_is_missing "$E3/m/x" &&
	test_output ONE cat "$E1/m/x" &&
	test_output "two two" cat "$E2/m/x"
'

test_expect_success 'touch of a name held elsewhere makes no local copy' '
	touch -d "2001-02-03 04:05:06" "$M1/m/e" &&
	test_output 981173106 stat -c %Y "$E2/m/e" &&
	no_copy 2 e &&
	touch "$M2/m/y" &&
	no_copy 3 y &&
	test_output "only on p3" cat "$E3/m/y"
'

test_expect_success 'EEXIST even for a name p1 has just looked up in vain' '
	test_path_is_missing "$M1/m/late" &&
	echo late >"$M2/m/late" &&
	test_output late cat "$E2/m/late" &&
	test_errno EEXIST open "$M1/m/late" "wronly|creat|excl" &&
	test_path_is_missing "$E1/m/late" &&
	test_path_is_missing "$M3/m/late2" &&
	mkdir "$M2/m/late2" &&
	test_errno EEXIST mkdir "$M3/m/late2" &&
	test_path_is_missing "$E3/m/late2"
'

test_expect_success 'EEXIST for a name just created on the holders disk' '
	test_path_is_missing "$M1/m/disk" &&
	echo disk >"$E3/m/disk" &&
	test_errno EEXIST open "$M1/m/disk" "wronly|creat|excl" &&
	test_path_is_missing "$E1/m/disk"
'

test_done
