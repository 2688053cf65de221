#!/bin/bash
#
# Real programs on files held by another peer: tar extracting into a
# directory of p2 from p1's mount, git working in a repository of p3
# from p1, sqlite3 on a database of p2 from p1 then p3, make building
# in a directory of p2 from p1.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"
test_require tar git sqlite3 make cc diff

export HOME=$TRASH GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=$TRASH/gitconfig

# tree_meta DIR: type, mode, size, link target and (for files and
# directories) mtime of everything under DIR.
tree_meta () {
	(cd "$1" && find . -mindepth 1 \( -type l -printf "%p l %l\n" \) -o \
		-printf "%p %y %m %s %T@\n" | sed "s/\.[0-9]*$//" | sort)
}

test_expect_success 'setup: three peers, each with a directory of its own' '
	peers_net_setup 3 &&
	mkdir -p "$E1/d1" "$E2/d2" "$E3/d3" &&
	cat >"$TRASH/gitconfig" <<-\EOF &&
	[user]
		name = Test
		email = test@example.invalid
	[safe]
		directory = *
	[init]
		defaultBranch = main
	[gc]
		auto = 0
	EOF
	peers_start_all 3 &&
	peers_wait_all_up 3
'

test_expect_success 'tar x on p1 into a directory of p2, then diff -r' '
	mkdir -p src/a/b src/c src/empty &&
	for i in $(seq 50); do
		head -c $((i * 997)) /dev/urandom >src/a/f$i || exit 1
	done &&
	head -c 3000000 /dev/urandom >src/c/big &&
	echo text >src/a/b/t &&
	ln -s ../c/big src/a/lnk &&
	ln -s /nowhere src/dangling &&
	chmod 750 src/a/b && chmod 600 src/a/f7 && chmod 755 src/a/f8 &&
	touch -d "2005-06-07 08:09:10" src/a/f1 src/c &&
	tar cf src.tar src &&
	tar xf src.tar -C "$M1/d2" &&
	diff -r --no-dereference src "$M1/d2/src" &&
	diff -r --no-dereference src "$E2/d2/src" &&
	test_path_is_missing "$E1/d2" &&
	tree_meta src >expect &&
	tree_meta "$E2/d2/src" >actual &&
	test_cmp expect actual &&
	each_mount_soon "tree_meta \$m/d2/src >actual.\$k && cmp expect actual.\$k" &&
	each_mount "diff -r --no-dereference src \$m/d2/src"
'

test_expect_success 'tar c on p3 of the tree on p2 gives the same files' '
	(cd "$M3/d2" && tar cf - src) | tar tvf - | sort >actual &&
	tar tvf src.tar | sort >expect &&
	test_cmp expect actual
'

test_expect_success 'git: a repository made on p3, used from p1' '
	git init -q "$M3/d3/repo" &&
	test_path_is_dir "$E3/d3/repo/.git" &&
	cd "$M1/d3/repo" &&
	for i in $(seq 20); do
		echo "line $i" >"file$i" || exit 1
	done &&
	mkdir sub && echo nested >sub/n &&
	git add . &&
	git commit -q -m first &&
	echo changed >>file3 &&
	git mv file4 sub/file4 &&
	git rm -q file5 &&
	git commit -q -am second &&
	test_output 2 sh -c "git log --oneline | wc -l" &&
	test_output "" git status --porcelain &&
	echo dirty >>file1 &&
	test_output " M file1" git status --porcelain &&
	git checkout -q file1 &&
	test_output "" git status --porcelain &&
	git gc -q &&
	git fsck --full &&
	test_output "" git status --porcelain &&
	cd "$TRASH" &&
	git -C "$E3/d3/repo" fsck --full &&
	test_output second git -C "$E3/d3/repo" log -1 --format=%s &&
	test_output "" git -C "$E3/d3/repo" status --porcelain &&
	test_path_is_missing "$E1/d3"
'

test_expect_success 'git: the same repository from p2, and a clone to p1' '
	test_output "second first" sh -c "git -C $M2/d3/repo log --format=%s | xargs" &&
	test_output "" git -C "$M2/d3/repo" status --porcelain &&
	git clone -q "$M2/d3/repo" "$M2/d1/clone" &&
	test_path_is_dir "$E1/d1/clone/.git" &&
	test_output "line 3 changed" sh -c "cat $M3/d1/clone/file3 | xargs" &&
	git -C "$M3/d1/clone" fsck --full
'

test_expect_success 'sqlite3: a database of p2, 1000 inserts from p1' '
	{
		echo "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, n INTEGER);" &&
		echo "BEGIN;" &&
		seq 1000 | awk "{ printf \"INSERT INTO t (v, n) VALUES (%c%s-%d%c, %d);\n\", 39, \"value\", \$1, 39, \$1 }" &&
		echo "COMMIT;"
	} >ins.sql &&
	sqlite3 "$M1/d2/db.sqlite" <ins.sql &&
	test_path_is_file "$E2/d2/db.sqlite" &&
	test_path_is_missing "$E1/d2/db.sqlite" &&
	test_output ok sqlite3 "$M1/d2/db.sqlite" "PRAGMA integrity_check;" &&
	test_output "1000|500500" sqlite3 "$M1/d2/db.sqlite" "SELECT count(*), sum(n) FROM t;" &&
	sqlite3 "$M1/d2/db.sqlite" "UPDATE t SET n = n * 2 WHERE id <= 10; DELETE FROM t WHERE id > 990;" &&
	test_output "990|490600" sqlite3 "$M1/d2/db.sqlite" "SELECT count(*), sum(n) FROM t;"
'

test_expect_success 'sqlite3: the database read back on p3 and on p2s disk' '
	test_output ok sqlite3 "$M3/d2/db.sqlite" "PRAGMA integrity_check;" &&
	test_output "990|490600" sqlite3 "$M3/d2/db.sqlite" "SELECT count(*), sum(n) FROM t;" &&
	test_output "value-500" sqlite3 "$M3/d2/db.sqlite" "SELECT v FROM t WHERE id = 500;" &&
	test_output ok sqlite3 "$E2/d2/db.sqlite" "PRAGMA integrity_check;" &&
	test_output "990|490600" sqlite3 "$E2/d2/db.sqlite" "SELECT count(*), sum(n) FROM t;"
'

test_expect_success 'sqlite3: WAL mode from p3, then read from p1' '
	test_output wal sqlite3 "$M3/d2/db.sqlite" "PRAGMA journal_mode=WAL;" &&
	sqlite3 "$M3/d2/db.sqlite" "INSERT INTO t (v, n) VALUES ('"'"'wal'"'"', 7);" &&
	test_output "991|490607" sqlite3 "$M1/d2/db.sqlite" "SELECT count(*), sum(n) FROM t;" &&
	test_output ok sqlite3 "$M1/d2/db.sqlite" "PRAGMA integrity_check;"
'

test_expect_success 'make: a program built in a directory of p2 from p1' '
	mkdir "$M1/d2/build" &&
	cat >"$M1/d2/build/hello.c" <<-\EOF &&
	#include <stdio.h>
	#include "greet.h"
	int main(void) { printf("%s\n", GREETING); return 0; }
	EOF
	echo "#define GREETING \"hello from p2\"" >"$M1/d2/build/greet.h" &&
	printf "hello: hello.o\n\tcc -o hello hello.o\nhello.o: hello.c greet.h\n\tcc -c hello.c\n" >"$M1/d2/build/Makefile" &&
	make -C "$M1/d2/build" >make.out &&
	cat make.out &&
	test_path_is_file "$E2/d2/build/hello" &&
	test_output "hello from p2" "$M1/d2/build/hello" &&
	test_output "hello from p2" "$M3/d2/build/hello" &&
	test_output "hello from p2" "$E2/d2/build/hello" &&
	make -C "$M1/d2/build" >make.out &&
	cat make.out &&
	grep "is up to date" make.out &&
	wait_for "test \$(date +%s) -gt \$(stat -c %Y \"$E2/d2/build/hello.o\")" 3 &&
	echo "#define GREETING \"rebuilt\"" >"$M1/d2/build/greet.h" &&
	make -C "$M1/d2/build" >make.out &&
	cat make.out &&
	grep "cc -c hello.c" make.out &&
	test_output rebuilt "$M1/d2/build/hello" &&
	test_output rebuilt "$M3/d2/build/hello" &&
	make -C "$M3/d2/build" >make.out &&
	grep "is up to date" make.out
'

test_done
