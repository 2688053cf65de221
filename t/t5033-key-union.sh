#!/bin/bash
#
# A union only key holders join: p1 and p2 share a key and see each
# other's files; p3 has another key and p4 none, and neither sees
# anything of p1 and p2, nor do their files appear there.  Each side of
# each refusal logs why and counts it in `pufs status`.  Unicast
# discovery first, the streams alone keeping the outsiders out; then the
# same four with multicast discovery.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"

# refused K REASON: peer K's count of streams refused for REASON.
refused () {
	peer_status "$1" | "$PYTHON" -c '
import json, sys
print(json.load(sys.stdin)["streams"]["refused"][sys.argv[1]])' "$2"
}

# state_of K NAME: how peer K's status lists peer NAME ("" if not).
state_of () {
	peer_states "$1" | awk -v n="$2" '$1 == n { print $2 }'
}

test_expect_success 'setup: p1, p2 with key A, p3 with key B, p4 with none' '
	peers_net_setup 4 &&
	pufs_try 0 keygen "$TRASH/a.key" &&
	pufs_try 0 keygen "$TRASH/b.key" &&
	for k in 1 2 3 4; do
		mkdir -p "$(peer_export $k)/dir$k" &&
		echo "file of p$k" >"$(peer_export $k)/f$k" || exit 1
	done &&
	peer_start 1 -o security.key_file="$TRASH/a.key" &&
	peer_start 2 -o security.key_file="$TRASH/a.key" &&
	peer_start 3 -o security.key_file="$TRASH/b.key" &&
	peer_start 4 &&
	peers_wait_up 1 2 && peers_wait_up 2 2
'

# logged K TEXT: peer K logs TEXT, within 10 s (log lines about refused
# streams are rate-limited, and the redials are spread out).
logged () {
	wait_for "grep -qF \"$2\" \"$(peer_log "$1")\"" 10
}

test_expect_success 'the key holders refuse the others, and say why' '
	wait_for "test \$(refused 1 bad_proof) -ge 1 &&
		test \$(refused 1 no_key) -ge 1" 10 &&
	wait_for "test \$(refused 3 bad_proof) -ge 1" 10 &&
	wait_for "test \$(refused 4 keyless_here) -ge 1" 10 &&
	logged 1 "does not prove our key" &&
	logged 1 "finds that we do not prove its key" &&
	logged 1 "sends HELLO without authenticating: it has no [security] key_file, and we have one" &&
	logged 1 "refuses to authenticate: it has no [security] key_file, and we have one" &&
	logged 3 "does not prove our key" &&
	logged 3 "finds that we do not prove its key" &&
	logged 4 "handshake refused: the other side has a [security] key_file, and we have none" &&
	logged 4 "authenticates with a key, and we have no [security] key_file"
'

test_expect_success 'p1 and p2 form a union of their two exports' '
	for k in 1 2; do
		test_output "file of p1" cat "$(peer_mnt $k)/f1" &&
		test_output "file of p2" cat "$(peer_mnt $k)/f2" &&
		test_path_is_dir "$(peer_mnt $k)/dir1" &&
		test_path_is_dir "$(peer_mnt $k)/dir2" || exit 1
	done &&
	printf "%s\n" dir1 dir2 f1 f2 >expect &&
	ls "$M1" >actual && test_cmp expect actual &&
	ls "$M2" >actual && test_cmp expect actual
'

test_expect_success 'p3 and p4 see only their own files' '
	printf "%s\n" dir3 f3 >expect &&
	ls "$M3" >actual && test_cmp expect actual &&
	printf "%s\n" dir4 f4 >expect &&
	ls "$M4" >actual && test_cmp expect actual &&
	test_path_is_missing "$M3/f1" && test_path_is_missing "$M4/f2"
'

test_expect_success 'no stream of an outsider comes up on either side' '
	for k in 1 2; do
		for o in p3 p4; do
			test "$(state_of $k $o)" != up || exit 1
		done
	done &&
	for k in 3 4; do
		for o in p1 p2; do
			test "$(state_of $k $o)" != up || exit 1
		done
	done &&
	test "$(state_of 3 p4)" != up && test "$(state_of 4 p3)" != up
'

test_expect_success 'the status reports the key and no TLS' '
	peer_status 1 >st &&
	"$PYTHON" -c "
import json, sys
s = json.load(open(\"st\"))
assert s[\"streams\"][\"authenticated\"] is True, s[\"streams\"]
assert s[\"streams\"][\"encrypted\"] is False, s[\"streams\"]
assert s[\"streams\"][\"refused_total\"] >= 2, s[\"streams\"]
p2 = [p for p in s[\"peers\"] if p[\"name\"] == \"p2\"]
assert p2 and p2[0][\"tls\"] == \"none\", s[\"peers\"]
" &&
	"$PUFS" status -s "$(peer_sock 1)" >text &&
	grep "^streams:  key yes, encrypt no; refused: no_key [1-9]" text
'

test_expect_success 'after the key changes, p3 joins the union' '
	peer_stop 3 &&
	peer_start 3 -o security.key_file="$TRASH/a.key" &&
	peers_wait_up 3 3 &&
	test_output "file of p1" cat "$M3/f1" &&
	wait_for "test -e \"$M1/f3\"" 10 &&
	test_output "file of p3" cat "$M1/f3"
'

test_expect_success 'with multicast discovery, the same four: the same unions' '
	for k in 4 3 2 1; do peer_stop $k || exit 1; done &&
	peers_multicast 33 7400 &&
	peer_start 1 -o "$MC,security.key_file=$TRASH/a.key" &&
	peer_start 2 -o "$MC,security.key_file=$TRASH/a.key" &&
	peer_start 3 -o "$MC,security.key_file=$TRASH/b.key" &&
	peer_start 4 -o "$MC" &&
	peers_wait_up 1 2 && peers_wait_up 2 2 &&
	# An outsider was heard of: its stream refused, or (datagrams with
	# a MAC) its datagrams dropped.
	wait_for "test \$(refused 1 no_key) -ge 1 ||
		test \$(refused 4 keyless_here) -ge 1 ||
		peer_status 1 | grep -q \"\\\"dropped\\\":[1-9]\"" 10 &&
	printf "%s\n" dir1 dir2 f1 f2 >expect &&
	ls "$M1" >actual && test_cmp expect actual &&
	ls "$M2" >actual && test_cmp expect actual &&
	printf "%s\n" dir3 f3 >expect &&
	ls "$M3" >actual && test_cmp expect actual &&
	printf "%s\n" dir4 f4 >expect &&
	ls "$M4" >actual && test_cmp expect actual
'

test_done
