#!/bin/bash
#
# Three peers, each with its own files: every mount shows the union of
# the three exports; directories held by several peers merge, with the
# attributes of the copy on the lowest-named peer; remote files read
# the same as their source; inode numbers agree across mounts, stay put
# and differ between files; owners are the serving peer's.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"

# The union of the three exports as tree_of prints it, merged
# directories once.
union_tree () {
	local k
	for k in 1 2 3; do
		tree_of "$(peer_export $k)" || return 1
	done | sort -u
}

test_expect_success 'setup: three peers with distinct and shared trees' '
	peers_net_setup 3 &&
	for k in 1 2 3; do
		e=$(peer_export $k) &&
		mkdir -p "$e/only$k/sub" "$e/common/c$k" "$e/deep/a/b" &&
		echo "file of p$k" >"$e/f$k" &&
		echo "nested $k" >"$e/only$k/sub/n$k" &&
		echo "common $k" >"$e/common/c$k/x$k" &&
		echo "deep $k" >"$e/deep/a/b/d$k" &&
		ln -s "f$k" "$e/link$k" &&
		: >"$e/empty$k" || exit 1
	done &&
	head -c 1048576 /dev/urandom >"$E2/bin2" &&
	head -c 5000000 /dev/urandom >"$E3/only3/big3" &&
	mkdir "$E2/twothree" "$E3/twothree" &&
	echo 2 >"$E2/twothree/t2" && echo 3 >"$E3/twothree/t3" &&
	chmod 750 "$E1/common" && touch -d "2001-02-03 04:05:06" "$E1/common" &&
	chmod 755 "$E2/common" && touch -d "2011-02-03 04:05:06" "$E2/common" &&
	chmod 700 "$E3/common" && touch -d "2021-02-03 04:05:06" "$E3/common" &&
	chmod 711 "$E2/twothree" && touch -d "2002-01-01" "$E2/twothree" &&
	chmod 755 "$E3/twothree" && touch -d "2003-01-01" "$E3/twothree" &&
	chown 1234:2345 "$E2/f2" &&
	chown 4321:5432 "$E3/only3/sub/n3" &&
	peers_start_all 3 &&
	peers_wait_all_up 3
'

test_expect_success 'every mount shows the union of the three exports' '
	union_tree >expect &&
	for k in 1 2 3; do
		tree_of "$(peer_mnt $k)" >actual.$k &&
		test_cmp expect actual.$k || exit 1
	done
'

test_expect_success 'ls of the root lists each name once, on every mount' '
	for k in 1 2 3; do
		ls -a "$(peer_export $k)" || exit 1
	done | sort -u >expect &&
	for k in 1 2 3; do
		ls -a "$(peer_mnt $k)" >actual.$k &&
		test_cmp expect actual.$k || exit 1
	done
'

test_expect_success 'a merged directory lists the union of its copies' '
	printf "%s\n" c1 c2 c3 >expect &&
	printf "%s\n" d1 d2 d3 >expect.deep &&
	for k in 1 2 3; do
		ls "$(peer_mnt $k)/common" >actual &&
		test_cmp expect actual &&
		ls "$(peer_mnt $k)/deep/a/b" >actual &&
		test_cmp expect.deep actual || exit 1
	done
'

test_expect_success 'a merged directory has the attributes of p1s copy' '
	test_output "750 981173106" stat -c "%a %Y" "$E1/common" &&
	for k in 1 2 3; do
		test_output "750 981173106" stat -c "%a %Y" \
			"$(peer_mnt $k)/common" || exit 1
	done
'

test_expect_success 'without p1, the lowest-named holder supplies them' '
	want=$(stat -c "%a %Y" "$E2/twothree") &&
	test "$want" != "$(stat -c "%a %Y" "$E3/twothree")" &&
	for k in 1 2 3; do
		test_output "$want" stat -c "%a %Y" "$(peer_mnt $k)/twothree" &&
		test_output "t2 t3" sh -c "ls $(peer_mnt $k)/twothree | xargs" ||
			exit 1
	done
'

test_expect_success 'file contents read through every mount equal the source' '
	for k in 1 2 3; do
		m=$(peer_mnt $k) &&
		for j in 1 2 3; do
			cmp "$(peer_export $j)/f$j" "$m/f$j" &&
			cmp "$(peer_export $j)/only$j/sub/n$j" \
				"$m/only$j/sub/n$j" &&
			cmp "$(peer_export $j)/common/c$j/x$j" \
				"$m/common/c$j/x$j" &&
			cmp "$(peer_export $j)/deep/a/b/d$j" "$m/deep/a/b/d$j" &&
			test_output "f$j" readlink "$m/link$j" &&
			test_output "file of p$j" cat "$m/link$j" &&
			test_path_is_file "$m/empty$j" &&
			! test -s "$m/empty$j" || exit 1
		done &&
		cmp "$E2/bin2" "$m/bin2" &&
		cmp "$E3/only3/big3" "$m/only3/big3" || exit 1
	done
'

test_expect_success 'attributes of remote files are the holders own' '
	for k in 1 2 3; do
		m=$(peer_mnt $k) &&
		test_output "1234 2345" stat -c "%u %g" "$m/f2" &&
		test_output "4321 5432" stat -c "%u %g" "$m/only3/sub/n3" &&
		for p in f1 f2 only3/big3 bin2 link3 only1/sub; do
			e=$(holders $p) &&
			test_output "$(stat -c "%F %s %a %Y %h" \
				"$(peer_export $e)/$p")" \
				stat -c "%F %s %a %Y %h" "$m/$p" || exit 1
		done || exit 1
	done
'

# Print "PATH INODE" for every object of the union, as mount K sees it.
inodes_of () {
	(cd "$(peer_mnt $1)" && find . -mindepth 1 -printf "%p %i\n" | sort)
}

test_expect_success 'inode numbers are equal on every mount' '
	inodes_of 1 >ino.1 &&
	inodes_of 2 >ino.2 &&
	inodes_of 3 >ino.3 &&
	test_cmp ino.1 ino.2 &&
	test_cmp ino.1 ino.3 &&
	for k in 1 2 3; do
		test_output "$(stat -c %i "$M1/only2/sub/n2")" \
			stat -c %i "$(peer_mnt $k)/only2/sub/n2" || exit 1
	done
'

test_expect_success 'distinct objects have distinct inode numbers' '
	test $(wc -l <ino.1) = $(union_tree | wc -l) &&
	test $(cut -d" " -f2 ino.1 | sort -u | wc -l) = $(wc -l <ino.1) &&
	test "$(stat -c %i "$M1")" != "$(stat -c %i "$M1/common")"
'

test_expect_success 'inode numbers are stable across repeated stats' '
	for k in 1 2 3; do
		peer_advance $k 600 &&
		wait_for "fuse_asks $(peer_sock $k) $(peer_mnt $k)/only3/big3" 5 ||
			exit 1
	done &&
	for k in 1 2 3; do
		inodes_of $k >again.$k &&
		test_cmp ino.1 again.$k &&
		a=$(stat -c %i "$(peer_mnt $k)/only3/big3") &&
		cat "$(peer_mnt $k)/only3/big3" >/dev/null &&
		ls -lR "$(peer_mnt $k)" >/dev/null &&
		peer_advance $k 600 &&
		wait_for "fuse_asks $(peer_sock $k) $(peer_mnt $k)/only3/big3" 5 &&
		test_output "$a" stat -c %i "$(peer_mnt $k)/only3/big3" ||
			exit 1
	done
'

test_expect_success 'statfs answers on every mount' '
	for k in 1 2 3; do
		stat -f -c "%b %a" "$(peer_mnt $k)" >sf &&
		read blocks avail <sf &&
		test "$blocks" -gt 0 || exit 1
	done
'

test_done
