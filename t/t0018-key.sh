#!/bin/bash
#
# The union key: `pufs keygen FILE` writes 32 random bytes as one base64
# line in a new file of mode 0600 and never overwrites one; `pufs mount`
# refuses (exit 2, naming the file) a key file that group or others may
# read or write, one that holds fewer than 32 bytes (after its trailing
# newline) or more than 4096, and one that is missing or not a file.

. "$(dirname "$0")/lib.sh"

E=$TRASH/export
M=$TRASH/mnt
mkdir -p "$E" "$M"

test_expect_success 'keygen writes a 44-byte base64 line, mode 0600' '
	pufs_try 0 keygen "$TRASH/k1" &&
	test_output "" cat err &&
	test_output 600 stat -c %a "$TRASH/k1" &&
	test_output 45 stat -c %s "$TRASH/k1" &&
	test_output 1 wc -l <"$TRASH/k1" &&
	test_output 32 sh -c "base64 -d <\"$TRASH/k1\" | wc -c"
'

test_expect_success 'two keys differ' '
	pufs_try 0 keygen "$TRASH/k2" &&
	! cmp -s "$TRASH/k1" "$TRASH/k2"
'

test_expect_success 'keygen never overwrites a file (exit 1, EEXIST)' '
	cp "$TRASH/k1" "$TRASH/k1.saved" &&
	pufs_try 1 keygen "$TRASH/k1" &&
	grep "k1: File exists" err &&
	cmp "$TRASH/k1" "$TRASH/k1.saved"
'

test_expect_success 'keygen through a symbolic link is refused' '
	ln -s "$TRASH/elsewhere" "$TRASH/klink" &&
	pufs_try 1 keygen "$TRASH/klink" &&
	grep klink err &&
	test ! -e "$TRASH/elsewhere"
'

test_expect_success 'keygen without a file, or with two, is bad usage' '
	pufs_try 2 keygen &&
	grep "usage: pufs keygen FILE" err &&
	pufs_try 2 keygen a b
'

test_expect_success 'keygen in a missing directory fails naming it' '
	pufs_try 1 keygen "$TRASH/no/such/dir/key" &&
	grep "no/such/dir/key: No such file or directory" err
'

test_expect_success 'a key readable by group is refused, naming the file' '
	cp "$TRASH/k1" "$TRASH/group.key" && chmod 640 "$TRASH/group.key" &&
	pufs_try_mount 2 bad -o security.key_file="$TRASH/group.key" \
		-e "$E" "$M" &&
	grep "group.key" err && grep "0640" err && grep "chmod 600" err
'

test_expect_success 'a key writable by others is refused' '
	cp "$TRASH/k1" "$TRASH/other.key" && chmod 602 "$TRASH/other.key" &&
	pufs_try_mount 2 bad -o security.key_file="$TRASH/other.key" \
		-e "$E" "$M" &&
	grep "other.key" err && grep "0602" err
'

test_expect_success 'a key of 31 bytes and a newline is refused' '
	printf "%031d\n" 0 >"$TRASH/short.key" && chmod 600 "$TRASH/short.key" &&
	pufs_try_mount 2 bad -o security.key_file="$TRASH/short.key" \
		-e "$E" "$M" &&
	grep "short.key" err && grep "holds 31 bytes" err
'

test_expect_success 'an empty key file is refused' '
	: >"$TRASH/empty.key" && chmod 600 "$TRASH/empty.key" &&
	pufs_try_mount 2 bad -o security.key_file="$TRASH/empty.key" \
		-e "$E" "$M" &&
	grep "empty.key" err && grep "holds 0 bytes" err
'

test_expect_success 'a key over 4096 bytes is refused' '
	head -c 5000 /dev/zero | tr "\0" k >"$TRASH/long.key" &&
	chmod 600 "$TRASH/long.key" &&
	pufs_try_mount 2 bad -o security.key_file="$TRASH/long.key" \
		-e "$E" "$M" &&
	grep "long.key" err && grep "more than 4096 bytes" err
'

test_expect_success 'a missing key file, or a directory, is refused' '
	pufs_try_mount 2 bad -o security.key_file="$TRASH/none.key" \
		-e "$E" "$M" &&
	grep "none.key.*No such file or directory" err &&
	mkdir -m 700 "$TRASH/dir.key" &&
	pufs_try_mount 2 bad -o security.key_file="$TRASH/dir.key" \
		-e "$E" "$M" &&
	grep "dir.key.* not a regular file" err
'

test_expect_success 'a key of exactly 32 bytes, no newline, mounts' '
	printf "%032d" 7 >"$TRASH/k32" && chmod 400 "$TRASH/k32" &&
	pufs_start k32 "$M" -o security.key_file="$TRASH/k32" -e "$E" &&
	: >"$E/seen" && test -e "$M/seen" &&
	pufs_stop k32
'

test_expect_success 'a keygen key mounts' '
	pufs_start k1 "$M" -o security.key_file="$TRASH/k1" -e "$E" &&
	test -e "$M/seen" &&
	pufs_stop k1
'

test_expect_success 'nothing was mounted by the refused attempts' '
	! is_mounted "$M"
'

test_done
