#!/bin/bash
#
# identity = caller: each request runs on the holder as the user who
# made it.  The cases of t/identity-cases.py (ownership of new files and
# directories, EACCES writing another's 0644 file, EPERM on chown by a
# non-root owner, chmod by the owner only, sticky directories, hard
# links, setgid directories, supplementary groups), done as three users
# on a local directory, then through p1's mount in a directory p2 holds,
# then through p2's mount in its own export, give the same results, and
# the holder's disk the same owners and modes.  Root is squashed (the
# default, root_squash = yes): its cases give what nobody (65534) gets
# locally.  t5039 covers root_squash = no and the configuration checks.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"

# Multicast discovery: names are located by datagram, and what a
# request does once the answers are in is still its caller's.
peers_multicast 38 7800

# cases run DIR [--root-as UID], cases prepare DIR: t/identity-cases.py.
cases () {
	"$PYTHON" "$T_DIR/identity-cases.py" "$@"
}

# disk_tree DIR: owner, group and mode of everything below DIR.
disk_tree () {
	(cd "$1" && find . -mindepth 1 -printf '%P %U:%G %m\n' | sort)
}

test_expect_success 'setup: two peers with identity = caller, a key, multicast' '
	peers_net_setup 2 &&
	head -c 32 /dev/urandom | base64 >"$TRASH/key" &&
	chmod 600 "$TRASH/key" &&
	chmod 755 "$TRASH" "$TRASH/p1" "$TRASH/p2" &&
	cases prepare "$TRASH/local" &&
	cases prepare "$E2/base" &&
	cases prepare "$E2/own" &&
	for k in 1 2; do
		peer_start $k -o "$MC" \
			-o security.identity=caller,security.key_file="$TRASH/key" ||
			exit 1
	done &&
	peers_wait_all_up 2 &&
	test_path_is_dir "$M1/base/sticky"
'

test_expect_success 'the cases on a local directory, root as nobody' '
	cases run "$TRASH/local" --root-as 65534 >local.out &&
	grep -q "^a creates a file: 1000:1000 644$" local.out &&
	grep -q "^b writes a 0644 file of a: EACCES$" local.out
'

test_expect_success 'the cases in a directory another peer holds, as on one machine' '
	cases run "$M1/base" >remote.out &&
	test_cmp local.out remote.out
'

test_expect_success 'the holder keeps the callers as owners on its disk' '
	disk_tree "$TRASH/local" >local.tree &&
	disk_tree "$E2/base" >remote.tree &&
	test_cmp local.tree remote.tree &&
	test "$(stat -c %u:%g "$E2/base/sg/af")" = 1000:2000
'

test_expect_success 'the cases on the mount of the holder itself' '
	cases run "$M2/own" >own.out &&
	test_cmp local.out own.out &&
	disk_tree "$E2/own" >own.tree &&
	test_cmp local.tree own.tree
'

test_expect_success 'the other mount sees the owners the holder keeps' '
	test "$(stat -c %u:%g:%a "$M2/base/af")" = 1000:1000:600 &&
	test "$(stat -c %u:%g:%a "$M2/base/rf")" = 65534:65534:644 &&
	test "$(stat -c %u:%g:%a "$M1/own/sg/ad")" = 1000:2000:2755
'

test_done
