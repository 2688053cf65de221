#!/bin/bash
#
# A save over another peer's file with identity = caller: the one
# REPLACE request that moves a small file runs on the holder as its
# caller, like the steps it stands for (without its credentials the new
# file would be nobody's).  In a merged 0777 directory
# user b's save over a file of user a works and leaves b's file, as on
# one machine; in a merged sticky directory it fails with EPERM, a's
# file stays whole and no temporary copy is left behind.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"
test_require setpriv

# op K NAME: peer K's count of calls of type NAME so far.
op () {
	peer_status "$1" | "$PYTHON" -c \
	    "import json,sys; print(json.load(sys.stdin)['ops'].get('$2', 0))"
}

# save_as UID DIR NAME TEXT: as UID, a temporary file beside NAME with
# TEXT, fsynced and renamed over NAME; prints ok or the errno's name.
save_as () {
	setpriv --reuid "$1" --regid "$1" --clear-groups "$PYTHON" - "$2" \
	    "$3" "$4" <<-\EOF
	import errno, os, sys, tempfile
	d, name, text = sys.argv[1:4]
	fd, tmp = tempfile.mkstemp(dir=d, prefix="." + name + ".")
	os.write(fd, text.encode())
	os.fsync(fd)
	os.close(fd)
	try:
	    os.replace(tmp, os.path.join(d, name))
	    print("ok")
	except OSError as e:
	    os.unlink(tmp)
	    print(errno.errorcode[e.errno])
	EOF
}

temps () {
	find "$TRASH" -name '.pufs-move.*' 2>/dev/null | wc -l
}

test_expect_success 'setup: two peers with identity = caller share two directories' '
	peers_net_setup 2 &&
	head -c 32 /dev/urandom | base64 >"$TRASH/key" &&
	chmod 600 "$TRASH/key" &&
	chmod 755 "$TRASH" "$TRASH/p1" "$TRASH/p2" &&
	for e in "$E1" "$E2"; do
		mkdir -m 0777 "$e/open" && chmod 0777 "$e/open" &&
		mkdir "$e/sticky" && chmod 1777 "$e/sticky" || exit 1
	done &&
	echo "a v1" >"$E2/open/af" && chown 1000:1000 "$E2/open/af" &&
	echo "a v1" >"$E2/sticky/af" && chown 1000:1000 "$E2/sticky/af" &&
	opts="security.identity=caller,security.key_file=$TRASH/key" &&
	peer_start 1 -o "$opts" &&
	peer_start 2 -o "$opts" &&
	peers_wait_all_up 2 &&
	test "$(cat "$M1/open/af")" = "a v1"
'

test_expect_success 'b saves over a file of a in a 0777 directory: one REPLACE, b owns it' '
	r0=$(op 1 replace) &&
	test "$(save_as 1001 "$M1/open" af "b v2")" = ok &&
	test "$(op 1 replace)" = $((r0 + 1)) &&
	test "$(cat "$E2/open/af")" = "b v2" &&
	test "$(stat -c %u:%g "$E2/open/af")" = 1001:1001 &&
	test "$(temps)" = 0
'

test_expect_success 'b saves over a file of a in a sticky directory: EPERM, a keeps it' '
	test "$(save_as 1001 "$M1/sticky" af "b v2")" = EPERM &&
	test "$(cat "$E2/sticky/af")" = "a v1" &&
	test "$(stat -c %u:%g "$E2/sticky/af")" = 1000:1000 &&
	test "$(temps)" = 0
'

test_expect_success 'the same save on a local sticky directory is EPERM as well' '
	mkdir -m 1777 "$TRASH/local" && chmod 1777 "$TRASH/local" &&
	echo "a v1" >"$TRASH/local/af" && chown 1000:1000 "$TRASH/local/af" &&
	test "$(save_as 1001 "$TRASH/local" af "b v2")" = EPERM
'

test_expect_success 'a saves over its own file in the sticky directory' '
	test "$(save_as 1000 "$M1/sticky" af "a v2")" = ok &&
	test "$(cat "$E2/sticky/af")" = "a v2" &&
	test "$(stat -c %u "$E2/sticky/af")" = 1000
'

test_done
