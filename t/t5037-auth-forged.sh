#!/bin/bash
#
# Forged, tampered and replayed datagrams against peers with a key: p1
# and p2 share one and form a union over multicast; p4 runs no daemon,
# captures what they send (t/dgram.py) and sends it again, flipped, or
# forged.  Each such datagram is dropped and counted (bad MAC, replayed,
# outside the window) and changes nothing: no peer dropped for a forged
# GOODBYE, no trap taken (no cache forgotten) for a forged, tampered or
# replayed TRAP, no dial to the URI of a forged ANNOUNCE, and the log
# stays short however many come.  With the key itself (what a key
# holder can do) the rules show too: a timestamp a minute off is
# outside the window, a serial seen is a replay, and a newcomer's
# ANNOUNCE ten minutes off passes the first-contact window (it is
# dialed) while one two hours off does not.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"

peers_multicast 37 7500
MC="$MC,cache.trap_delay=0.1,cache.attr_timeout=60"
. "$T_DIR/lib-dgram.sh"

# latest TYPE NAME: the file of the last datagram of TYPE from NAME.
latest () {
	ls "$CAP" | grep "\\.$1\\.$2\$" | tail -n 1 | sed "s|^|$CAP/|"
}

# boot_of K: peer K's boot id, 0x-prefixed.
boot_of () {
	peer_status "$1" | "$PYTHON" -c \
		'import json, sys; print("0x" + json.load(sys.stdin)["boot_id"])'
}

# unchanged: p1 took no trap and dropped no cache since `baseline`, p2
# is still up on p1 and nobody dialed p4.
baseline () {
	for k in received records_applied gaps resyncs; do
		echo "$k $(sect 1 traps $k)"
	done >"$TRASH/base" &&
	grep -c . "$(peer_log 1)" >"$TRASH/base.log"
}
unchanged () {
	for k in received records_applied gaps resyncs; do
		echo "$k $(sect 1 traps $k)"
	done >"$TRASH/now" &&
	test_cmp "$TRASH/base" "$TRASH/now" &&
	peer_states 1 | grep -qx "p2 up" &&
	test_path_is_missing "$TRASH/dialed.7071" &&
	! tail -n +"$(cat "$TRASH/base.log")" "$(peer_log 1)" |
		grep "GOODBYE datagram names it\|found peer p[5-9]"
}

cat >"$_LIB/listen.py" <<'EOF'
# listen.py ADDR PORT FILE: accept TCP connections on ADDR:PORT and
# append a line to FILE for each; FILE.pid gets the PID once listening.
import os, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(16)
with open(sys.argv[3] + ".pid", "w") as f:
    f.write("%d\n" % os.getpid())
keep = []
while True:
    c, a = s.accept()
    keep.append(c)
    with open(sys.argv[3], "a") as f:
        f.write("%s:%d\n" % a)
EOF

test_expect_success 'setup: p1 and p2 with one key; p4 captures and listens' '
	peers_net_setup 4 &&
	"$PUFS" keygen "$TRASH/k12" &&
	"$PUFS" keygen "$TRASH/k9" &&
	echo from p2 >"$E2/f2" &&
	capture_start &&
	for port in 7070 7071; do
		{ in_peer 4 timeout -k 2 300 "$PYTHON" "$_LIB/listen.py" \
			"$(peer_addr 4)" $port "$TRASH/dialed.$port" & } ||
			exit 1
		wait_for "test -s $TRASH/dialed.$port.pid" 5 || exit 1
	done &&
	peer_start 1 -o "$MC,security.key_file=$TRASH/k12" &&
	peer_start 2 -o "$MC,security.key_file=$TRASH/k12" &&
	peers_wait_all_up 2 &&
	test_output "from p2" cat "$M1/f2"
'

# A loaded machine may take more than the 5 s window between the TRAP
# and its copy: then it is dropped as outside the window instead.
test_expect_success 'a TRAP of p2 sent again at once: replayed, not taken' '
	n=$(sect 1 traps received) &&
	echo again >"$M2/f2" &&
	wait_for "test \$(sect 1 traps received) -gt $n" 5 &&
	wait_for "test -n \"\$(latest trap p2)\"" 5 &&
	baseline &&
	r=$(sect 1 discovery dropped_replay) &&
	w=$(sect 1 discovery dropped_window) &&
	on4 send "$(latest trap p2)" &&
	wait_for "test \$((\$(sect 1 discovery dropped_replay) + \$(sect 1 discovery dropped_window))) = $((r + w + 1))" 5 &&
	echo "the copy of the TRAP: $(($(sect 1 discovery dropped_replay) - r)) replayed," \
		"$(($(sect 1 discovery dropped_window) - w)) outside the window" >"$TRASH/fig" &&
	unchanged
'
sed "s/^/# /" "$TRASH/fig" 2>/dev/null

test_expect_success 'tampered TRAP and HEARTBEAT of p2 (one byte flipped): bad MAC' '
	baseline &&
	m=$(sect 1 discovery dropped_mac) &&
	trap=$(latest trap p2) &&
	beat=$(latest heartbeat p2) &&
	on4 send "$trap" 40 &&
	on4 send "$trap" -50 &&
	on4 send "$trap" -1 &&
	on4 send "$beat" 6 &&
	on4 send "$beat" 20 &&
	wait_for "test \$(sect 1 discovery dropped_mac) = $((m + 5))" 5 &&
	unchanged
'

test_expect_success 'forged under another key: GOODBYE of p2, TRAP of p2, ANNOUNCE of p8' '
	baseline &&
	m=$(sect 1 discovery dropped_mac) &&
	boot=$(boot_of 2) &&
	on4 forge "$TRASH/k9" goodbye p2 "$U2" "$boot" 1000 &&
	on4 forge "$TRASH/k9" trap p2 "$U2" "$boot" 1001 path=f2 &&
	on4 forge "$TRASH/k9" announce p8 "$(peer_addr 4):7071" 0x88 1 &&
	wait_for "test \$(sect 1 discovery dropped_mac) = $((m + 3))" 5 &&
	unchanged &&
	test_output again cat "$M1/f2"
'

test_expect_success 'the first ANNOUNCE of p2, sent again seconds later: outside the window' '
	baseline &&
	first=$(ls "$CAP" | grep "\\.announce\\.p2\$" | head -n 1) &&
	wait_for "test \$((\$(date +%s) - \$(stat -c %Y $CAP/$first))) -ge 6" 10 &&
	w=$(sect 1 discovery dropped_window) &&
	on4 send "$CAP/$first" &&
	wait_for "test \$(sect 1 discovery dropped_window) = $((w + 1))" 5 &&
	unchanged
'

test_expect_success '300 forged datagrams: all dropped, a few log lines' '
	baseline &&
	m=$(sect 1 discovery dropped_mac) &&
	on4 forge "$TRASH/k9" heartbeat p5 "$(peer_addr 4):7071" 0x55 1 count=300 &&
	wait_for "test \$(sect 1 discovery dropped_mac) -ge $((m + 250))" 5 &&
	lines=$(tail -n +"$(cat "$TRASH/base.log")" "$(peer_log 1)" | grep -c "bad MAC") &&
	echo "log lines for 300 forged datagrams: $lines" >"$TRASH/fig" &&
	test "$lines" -le 20 &&
	unchanged
'
sed "s/^/# /" "$TRASH/fig" 2>/dev/null

test_expect_success 'with the key: a minute off is outside the window, even for p2' '
	baseline &&
	w=$(sect 1 discovery dropped_window) &&
	boot=$(boot_of 2) &&
	on4 forge "$TRASH/k12" goodbye p2 "$U2" "$boot" 100000 dt=-60 &&
	on4 forge "$TRASH/k12" trap p2 "$U2" "$boot" 100001 dt=60 path=f2 &&
	on4 forge "$TRASH/k12" heartbeat p2 "$U2" "$boot" 100002 dt=-600 &&
	wait_for "test \$(sect 1 discovery dropped_window) = $((w + 3))" 5 &&
	unchanged
'

test_expect_success 'with the key: a serial seen already is a replay' '
	r=$(sect 1 discovery dropped_replay) &&
	on4 forge "$TRASH/k12" heartbeat p6 "$(peer_addr 4):7072" 0x66 5 &&
	on4 forge "$TRASH/k12" heartbeat p6 "$(peer_addr 4):7072" 0x66 5 &&
	wait_for "test \$(sect 1 discovery dropped_replay) = $((r + 1))" 5
'

test_expect_success 'with the key: a newcomer 10 min off is dialed, one 2 h off is not' '
	f=$(sect 1 discovery first_contact) &&
	w=$(sect 1 discovery dropped_window) &&
	on4 forge "$TRASH/k12" announce p7 "$(peer_addr 4):7070" 0x77 1 dt=-600 &&
	on4 forge "$TRASH/k12" announce p9 "$(peer_addr 4):7071" 0x99 1 dt=-7200 &&
	wait_for "test \$(sect 1 discovery first_contact) = $((f + 1))" 5 &&
	wait_for "test \$(sect 1 discovery dropped_window) = $((w + 1))" 5 &&
	wait_for "test -s $TRASH/dialed.7070" 5 &&
	test_path_is_missing "$TRASH/dialed.7071" &&
	grep "found peer p7" "$(peer_log 1)" &&
	! grep "found peer p9" "$(peer_log 1)"
'

test_expect_success 'after all this p1 and p2 serve each other; p2 never went down' '
	peers_wait_all_up 2 &&
	echo last >"$M1/f1" &&
	test_output last cat "$M2/f1" &&
	test_output again cat "$M1/f2" &&
	! grep "peer p2: up -> down" "$(peer_log 1)"
'

test_expect_success 'cleanup: the capture and listeners stop' '
	kill "$(cat "$CAP/.pid")" "$(cat "$TRASH/dialed.7070.pid")" \
		"$(cat "$TRASH/dialed.7071.pid")"
'

test_done
