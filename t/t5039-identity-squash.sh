#!/bin/bash
#
# identity = caller, the rest: with root_squash = no root keeps root's
# power on the holders (the cases of t/identity-cases.py give what root
# gets locally); a peer with identity = daemon names no caller, so what
# it asks of a holder with identity = caller runs as nobody; and the
# configuration check: identity = caller without key_file, or from a
# daemon that is not root, exits 2 with a message that says so.  A
# rename into a directory the source's peer does not hold, which the
# caller may not make there, is EXDEV, so that mv(1) copies.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"
test_require setpriv

# cases run DIR [--root-as UID], cases prepare DIR: t/identity-cases.py.
cases () {
	"$PYTHON" "$T_DIR/identity-cases.py" "$@"
}

test_expect_success 'setup: a key, three peers in the making' '
	peers_net_setup 3 &&
	head -c 32 /dev/urandom | base64 >"$TRASH/key" &&
	chmod 600 "$TRASH/key" &&
	chmod 755 "$TRASH" "$TRASH/p1" "$TRASH/p2" "$TRASH/p3" &&
	cases prepare "$TRASH/local" &&
	cases prepare "$E2/base" &&
	mkdir -p "$E2/open" && chmod 1777 "$E2/open" &&
	mkdir -p "$E1/mine" && chmod 0777 "$E1/mine" &&
	mkdir -p mnt
'

test_expect_success 'identity = caller without key_file: exit 2, saying why' '
	test_expect_code 2 "$PUFS" mount -o security.identity=caller mnt \
		2>err &&
	grep -q "security.identity: caller needs security.key_file" err &&
	! is_mounted mnt
'

test_expect_success 'identity = caller from a daemon that is not root: exit 2' '
	cp "$TRASH/key" "$TRASH/key1000" &&
	chown 1000 "$TRASH/key1000" &&
	test_expect_code 2 setpriv --reuid 1000 --regid 1000 --clear-groups \
		"$PUFS" mount -o security.identity=caller \
		-o security.key_file="$TRASH/key1000" \
		-o peer.control_socket="$TRASH/u.sock" mnt 2>err &&
	grep -q "security.identity: caller needs the daemon to run as root" err
'

test_expect_success 'identity is daemon or caller, nothing else' '
	test_expect_code 2 "$PUFS" mount -o security.identity=user \
		-o security.key_file="$TRASH/key" mnt 2>err &&
	grep -q "security.identity" err &&
	test_expect_code 2 "$PUFS" mount -o security.root_squash=perhaps \
		mnt 2>err &&
	grep -q "security.root_squash" err
'

test_expect_success 'start: root_squash = no on p1 and p2, p3 with identity = daemon' '
	opts="security.identity=caller,security.root_squash=no" &&
	opts="$opts,security.key_file=$TRASH/key" &&
	peer_start 1 -o "$opts" &&
	peer_start 2 -o "$opts" &&
	peer_start 3 -o "security.key_file=$TRASH/key" &&
	peers_wait_all_up 3 &&
	test_path_is_dir "$M1/base/sticky"
'

test_expect_success 'root_squash = no: root on a mount is root on the holder' '
	cases run "$TRASH/local" >local.out &&
	grep -q "^root chowns a file of a to b: ok$" local.out &&
	cases run "$M1/base" >remote.out &&
	test_cmp local.out remote.out &&
	test "$(stat -c %u:%g "$E2/base/rf")" = 0:0
'

test_expect_success 'a peer that names no caller acts as nobody there' '
	echo from-p3 >"$M3/open/p3f" &&
	test "$(stat -c %u:%g "$E2/open/p3f")" = 65534:65534 &&
	setpriv --reuid 1000 --regid 1000 --clear-groups \
		sh -c "echo a >\"$M1/open/af\"" &&
	test "$(stat -c %u:%g "$E2/open/af")" = 1000:1000 &&
	test_errno EPERM unlink "$M3/open/af" &&
	test_path_is_file "$E2/open/af"
'

test_expect_success 'a rename the caller cannot clone a path for: EXDEV, mv copies' '
	as_b () { setpriv --reuid 1001 --regid 1001 --clear-groups "$@"; } &&
	as_b sh -c "echo moved >\"$M1/mine/f\"" &&
	test "$(stat -c %u "$E1/mine/f")" = 1001 &&
	got=$(as_b "$PYTHON" "$_LIB/op.py" rename "$M1/mine/f" "$M1/open/f") ;
	test "$got" = EXDEV &&
	test_path_is_missing "$E1/open" &&
	as_b mv "$M1/mine/f" "$M1/open/f" &&
	test_path_is_missing "$E1/mine/f" &&
	test "$(stat -c %u:%g "$E2/open/f")" = 1001:1001 &&
	test_output moved cat "$M3/open/f"
'

test_done
