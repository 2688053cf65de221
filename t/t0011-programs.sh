#!/bin/bash
#
# Real programs on the mount: tar, cp -a of a header tree, git, sqlite3
# (rollback journal and WAL), and a configure-and-make build of a small
# C project whose program then runs from the mount.

. "$(dirname "$0")/lib.sh"

test_require tar git sqlite3 cc make diff cmp

E=$TRASH/export
M=$TRASH/mnt
TEST_TIMEOUT=240
Q="'"

cat >"$TRASH/journal.sql" <<'EOF'
CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
INSERT INTO t (v) SELECT printf('value %d', i) FROM n;
COMMIT;
EOF
cat >"$TRASH/wal.sql" <<'EOF'
PRAGMA journal_mode=WAL;
CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB);
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
INSERT INTO t (v) SELECT randomblob(500) FROM n;
COMMIT;
EOF

test_expect_success 'setup' '
	mkdir -p "$E" "$M" &&
	pufs_start alpha "$M" -e "$E" -o cache.attr_timeout=0.5
'

test_expect_success 'tar: a tree with modes, times, links, extracted into the mount' '
	mkdir -p src/a/b/c src/empty &&
	seq 1 20000 >src/a/numbers &&
	dd if=/dev/urandom of=src/a/b/random bs=1k count=700 2>/dev/null &&
	echo exe >src/a/tool && chmod 755 src/a/tool &&
	echo private >src/a/b/c/secret && chmod 600 src/a/b/c/secret &&
	ln -s ../numbers src/a/b/link && ln src/a/numbers src/a/hard &&
	mkfifo src/a/fifo &&
	touch -d "2005-06-07 08:09:10" src/a/numbers src/a/b &&
	tar -C src -cf src.tar . &&
	mkdir "$M/untar" &&
	tar -C "$M/untar" -xpf src.tar &&
	diff -r -x fifo src "$M/untar" &&
	diff -r -x fifo src "$E/untar" &&
	(cd src && find . -printf "%p %y %m %s %n %Ts %l\n" | sort) >expect &&
	(cd "$M/untar" && find . -printf "%p %y %m %s %n %Ts %l\n" | sort) >actual &&
	test_cmp expect actual
'

test_expect_success 'tar: an archive made from the mount lists the same' '
	tar -C "$M/untar" -cf back.tar . &&
	tar -tvf src.tar | sort >expect &&
	tar -tvf back.tar | sort >actual &&
	test_cmp expect actual
'

test_expect_success 'cp -a of /usr/include/linux into the mount' '
	cp -a /usr/include/linux "$M/inc" &&
	diff -r /usr/include/linux "$M/inc" &&
	diff -r /usr/include/linux "$E/inc" &&
	(cd /usr/include/linux && find . -printf "%p %y %m %s %T@ %l\n" | sort) >expect &&
	(cd "$M/inc" && find . -printf "%p %y %m %s %T@ %l\n" | sort) >actual &&
	test_cmp expect actual
'

test_expect_success 'git: init, add, commit, log, status, gc, fsck, clone' '
	git init -q "$M/repo" &&
	cd "$M/repo" &&
	git config user.name "T Tester" &&
	git config user.email t@example.invalid &&
	cp -a /usr/include/linux/*.h . &&
	git add . &&
	git commit -q -m first &&
	echo change >>input.h &&
	git rm -q --cached netlink.h && rm netlink.h &&
	mkdir sub && echo new >sub/new &&
	git add -A &&
	git commit -q -m second &&
	test_output 2 sh -c "git log --oneline | wc -l" &&
	test_output "" git status --porcelain &&
	git gc -q &&
	ls .git/objects/pack/*.pack &&
	git fsck --strict &&
	test_output "" git status --porcelain &&
	git clone -q "$M/repo" "$TRASH/clone" &&
	diff -r --exclude=.git "$M/repo" "$TRASH/clone" &&
	git clone -q "$TRASH/clone" "$M/clone2" &&
	cd "$M/clone2" &&
	test_output 2 sh -c "git log --oneline | wc -l" &&
	git fsck
'

test_expect_success 'sqlite3: a transaction of 1000 inserts, rollback journal' '
	sqlite3 "$M/db.sqlite" <journal.sql &&
	test_output 1000 sqlite3 "$M/db.sqlite" "SELECT count(*) FROM t" &&
	test_output ok sqlite3 "$M/db.sqlite" "PRAGMA integrity_check" &&
	test_output 1000 sqlite3 "$E/db.sqlite" "SELECT count(*) FROM t" &&
	for i in $(seq 1 20); do
		sqlite3 "$M/db.sqlite" "UPDATE t SET v = ${Q}u$i$Q WHERE id = $i" || return 1
	done &&
	test_output u20 sqlite3 "$M/db.sqlite" "SELECT v FROM t WHERE id = 20"
'

test_expect_success 'sqlite3: WAL mode (shared memory mapping)' '
	test_output wal sqlite3 "$M/wal.sqlite" "PRAGMA journal_mode=WAL" &&
	sqlite3 "$M/wal.sqlite" <wal.sql &&
	test_output 1000 sqlite3 "$M/wal.sqlite" "SELECT count(*) FROM t" &&
	sqlite3 "$M/wal.sqlite" "PRAGMA wal_checkpoint(TRUNCATE)" &&
	test_output ok sqlite3 "$M/wal.sqlite" "PRAGMA integrity_check" &&
	test_output 1000 sqlite3 "$E/wal.sqlite" "SELECT count(*) FROM t"
'

test_expect_success 'a configure and make build on the mount, run from it' '
	mkdir -p "$M/proj/src" &&
	cd "$M/proj" &&
	cat >configure <<-\EOF &&
	#!/bin/sh
	# A tiny configure: probe the compiler, write config.h and config.mk.
	cc=${CC:-cc}
	echo "int main(void) { return 0; }" >conftest.c
	$cc -o conftest conftest.c || { echo "no working compiler"; exit 1; }
	./conftest || exit 1
	rm -f conftest conftest.c
	echo "#define GREETING \"hello from the mount\"" >config.h
	echo "CC = $cc" >config.mk
	echo configured
	EOF
	chmod +x configure &&
	cat >src/util.h <<-\EOF &&
	int add(int, int);
	EOF
	cat >src/util.c <<-\EOF &&
	#include "util.h"
	int add(int a, int b) { return a + b; }
	EOF
	cat >src/main.c <<-\EOF &&
	#include <stdio.h>
	#include "../config.h"
	#include "util.h"
	int main(void) { printf("%s %d\n", GREETING, add(40, 2)); return 0; }
	EOF
	printf "%s\n" "include config.mk" \
		"prog: src/main.o src/util.o" \
		"	\$(CC) -o \$@ src/main.o src/util.o" \
		"src/main.o: src/main.c src/util.h config.h" \
		"	\$(CC) -c -o \$@ src/main.c" \
		"src/util.o: src/util.c src/util.h" \
		"	\$(CC) -c -o \$@ src/util.c" \
		"clean:" \
		"	rm -f prog src/*.o" >Makefile &&
	./configure &&
	make &&
	test_output "hello from the mount 42" ./prog &&
	make >second.out &&
	grep "is up to date" second.out &&
	touch src/util.c &&
	make >third.out &&
	cat third.out &&
	grep "src/util.c" third.out &&
	! grep "src/main.c" third.out &&
	test_output "hello from the mount 42" ./prog &&
	test_output "hello from the mount 42" "$E/proj/prog" &&
	make clean && test_path_is_missing prog
'

test_expect_success 'stop' '
	cd "$TRASH" &&
	pufs_stop alpha
'

test_done
