#!/bin/bash
#
# Grafting on one peer: two exports at / merge their directories, an
# export at /x/y makes a virtual /x, new entries go to an export that
# holds the parent, existing names anywhere in a merged directory give
# EEXIST, -e adds to the file's exports, and NAME@URI names this peer's
# copy explicitly.

. "$(dirname "$0")/lib.sh"

A=$TRASH/a
B=$TRASH/b
C=$TRASH/c
D=$TRASH/dd
M=$TRASH/mnt

test_expect_success 'setup: three exports' '
	mkdir -p "$A/adir" "$A/common/both" "$B/bdir" "$B/common/both" \
		"$C/csub" "$D" "$M" &&
	echo a1 >"$A/adir/a1" && echo fa >"$A/fa" && echo ca >"$A/common/ca" &&
	echo b1 >"$B/bdir/b1" && echo fb >"$B/fb" && echo cb >"$B/common/cb" &&
	echo bothA >"$A/common/both/inA" && echo bothB >"$B/common/both/inB" &&
	echo cf >"$C/cfile" && echo c2 >"$C/csub/c2" &&
	echo dfile >"$D/dfile" &&
	cat >graft.ini <<-EOF &&
	[cache]
	attr_timeout = 0.2
	[export:a]
	path = $A
	[export:b]
	path = $B
	at = /
	[export:c]
	path = $C
	at = /x/y
	EOF
	pufs_start alpha "$M" -c "$TRASH/graft.ini" -e "$D"
'

test_expect_success 'the root merges both exports, -e, and the virtual /x' '
	printf "%s\n" adir bdir common dfile fa fb x >expect &&
	ls "$M" >actual &&
	test_cmp expect actual
'

test_expect_success 'a directory in both exports appears once, merged' '
	printf "%s\n" both ca cb >expect &&
	ls "$M/common" >actual && test_cmp expect actual &&
	printf "%s\n" inA inB >expect &&
	ls "$M/common/both" >actual && test_cmp expect actual &&
	test_output bothA cat "$M/common/both/inA" &&
	test_output bothB cat "$M/common/both/inB" &&
	test_output ca cat "$M/common/ca" &&
	test_output cb cat "$M/common/cb"
'

test_expect_success 'files of every export read through the mount' '
	test_output a1 cat "$M/adir/a1" &&
	test_output b1 cat "$M/bdir/b1" &&
	test_output fa cat "$M/fa" &&
	test_output fb cat "$M/fb" &&
	test_output dfile cat "$M/dfile"
'

test_expect_success 'an export at /x/y: /x is a directory holding only y' '
	test_output directory stat -c %F "$M/x" &&
	test_output y ls "$M/x" &&
	test_output directory stat -c %F "$M/x/y" &&
	printf "%s\n" cfile csub >expect &&
	ls "$M/x/y" >actual && test_cmp expect actual &&
	test_output c2 cat "$M/x/y/csub/c2" &&
	(cd "$M" && find . | sort) >found &&
	grep -x "./x/y/csub/c2" found
'

test_expect_success 'new entries go to the export that holds the parent' '
	echo na >"$M/adir/new" && test_output na cat "$A/adir/new" &&
	echo nb >"$M/bdir/new" && test_output nb cat "$B/bdir/new" &&
	echo nc >"$M/x/y/new" && test_output nc cat "$C/new" &&
	mkdir "$M/x/y/csub/nd" && test_path_is_dir "$C/csub/nd" &&
	test_path_is_missing "$B/adir" && test_path_is_missing "$A/bdir"
'

test_expect_success 'a new entry in a merged directory lands in exactly one export' '
	echo nn >"$M/common/newer" &&
	n=0 &&
	for x in "$A" "$B" "$D"; do
		if test -e "$x/common/newer"; then n=$((n + 1)); fi
	done &&
	test $n = 1 &&
	test_output nn cat "$M/common/newer" &&
	echo top >"$M/topnew" &&
	n=0 &&
	for x in "$A" "$B" "$D"; do
		if test -e "$x/topnew"; then n=$((n + 1)); fi
	done &&
	test $n = 1
'

test_expect_success 'a name held by any export of a merged directory: EEXIST' '
	test_errno EEXIST mkdir "$M/common/ca" &&
	test_errno EEXIST mkdir "$M/common/cb" &&
	test_errno EEXIST open "$M/common/ca" "wronly|creat|excl" &&
	test_errno EEXIST open "$M/common/cb" "wronly|creat|excl" &&
	test_errno EEXIST mkdir "$M/fb" &&
	test_errno EEXIST mkdir "$M/adir" &&
	test_errno EEXIST mkdir "$M/bdir" &&
	test_errno EEXIST symlink t "$M/dfile" &&
	test_errno EEXIST mkdir "$M/x" &&
	test_path_is_missing "$A/fb" && test_path_is_missing "$B/fa" &&
	test_path_is_missing "$A/bdir" && test_path_is_missing "$B/adir"
'

test_expect_success 'nothing can be created in the virtual /x' '
	! echo no >"$M/x/file" &&
	! mkdir "$M/x/dir" &&
	test_path_is_missing "$A/x" && test_path_is_missing "$B/x" &&
	test_path_is_missing "$D/x" && test_path_is_missing "$C/file" &&
	test_output y ls "$M/x"
'

test_expect_success 'rename within one export' '
	mv "$M/adir/a1" "$M/adir/a2" &&
	test_output a1 cat "$A/adir/a2" && test_path_is_missing "$A/adir/a1" &&
	mv "$M/common/cb" "$M/common/cb2" &&
	test_output cb cat "$B/common/cb2" && test_path_is_missing "$B/common/cb"
'

test_expect_success 'mv across exports moves the data (EXDEV or not)' '
	mv "$M/fa" "$M/bdir/fa" &&
	test_output fa cat "$M/bdir/fa" &&
	test_output fa cat "$B/bdir/fa" &&
	test_path_is_missing "$A/fa" && test_path_is_missing "$M/fa" &&
	mv "$M/x/y/cfile" "$M/adir/" &&
	test_output cf cat "$A/adir/cfile" && test_path_is_missing "$C/cfile"
'

test_expect_success 'rename(2) across exports is EXDEV or complete' '
	echo r >"$M/adir/rx" &&
	r=$(pyop rename "$M/adir/rx" "$M/bdir/rx") || :
	case $r in
	EXDEV)
		test_output r cat "$A/adir/rx" && test_path_is_missing "$B/bdir/rx"
		;;
	ok)
		test_output r cat "$B/bdir/rx" && test_path_is_missing "$A/adir/rx"
		;;
	*)
		echo "rename gave $r" && false
		;;
	esac
'

test_expect_success 'link(2) across exports is EXDEV or complete' '
	echo l >"$M/adir/lx" &&
	r=$(pyop link "$M/adir/lx" "$M/bdir/lx") || :
	case $r in
	EXDEV)
		test_path_is_missing "$B/bdir/lx" &&
		test_output 1 stat -c %h "$A/adir/lx"
		;;
	ok)
		test_output l cat "$M/bdir/lx" &&
		test_output 2 stat -c %h "$A/adir/lx" &&
		test_output 2 stat -c %h "$M/adir/lx"
		;;
	*)
		echo "link gave $r" && false
		;;
	esac
'

test_expect_success 'unlink and rmdir act on the holding export' '
	rm "$M/common/ca" && test_path_is_missing "$A/common/ca" &&
	rm "$M/bdir/b1" && test_path_is_missing "$B/bdir/b1" &&
	rmdir "$M/x/y/csub/nd" && test_path_is_missing "$C/csub/nd"
'

test_expect_success 'NAME@URI names this peer'"'"'s copy' '
	uri=127.0.0.1:$(pufs_port alpha) &&
	test_output fb cat "$M/fb@$uri" &&
	test_output regular\ file stat -c %F "$M/fb@$uri" &&
	test_output bothA cat "$M/common/both/inA@$uri" &&
	test_errno ENOENT stat "$M/nosuch@$uri" &&
	! ls "$M" | grep @
'

test_expect_success 'renaming and removing NAME@URI act on the copy' '
	uri=127.0.0.1:$(pufs_port alpha) &&
	echo s >"$M/bdir/sfx" &&
	mv "$M/bdir/sfx@$uri" "$M/bdir/sfx2" &&
	test_output s cat "$B/bdir/sfx2" && test_path_is_missing "$B/bdir/sfx" &&
	rm "$M/bdir/sfx2@$uri" &&
	test_path_is_missing "$B/bdir/sfx2"
'

test_expect_success 'stop' '
	pufs_stop alpha
'

test_done
