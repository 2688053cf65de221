# t/lib-dgram.sh - for the tests of authenticated datagrams (t5036,
# t5037): peer 4 runs no daemon but t/dgram.py, which captures what the
# group carries into $CAP and sends datagrams, copied or forged.
#
# Sourced after t/lib.sh, t/lib-peers.sh and peers_multicast (GROUP,
# MPORT), once peers_net_setup has made at least 4 namespaces.

DGRAM="$T_DIR/dgram.py"
CAP=$TRASH/cap

# sect K SECTION KEY: peer K's status figure SECTION.KEY.
sect () {
	peer_status "$1" | "$PYTHON" -c \
		'import json, sys; print(json.load(sys.stdin)[sys.argv[1]][sys.argv[2]])' "$2" "$3"
}

# on4 COMMAND ARGS...: t/dgram.py COMMAND to the group, from p4.
on4 () {
	local cmd=$1
	shift
	in_peer 4 timeout -k 2 30 "$PYTHON" "$DGRAM" "$cmd" "$GROUP:$MPORT" \
		"$(peer_addr 4)" "$@"
}

# capture_start: capture the group from p4 into $CAP, for 300 s at
# most; $CAP/.pid holds the PID once it listens.
capture_start () {
	mkdir "$CAP" &&
	{ in_peer 4 timeout -k 2 300 "$PYTHON" "$DGRAM" capture "$GROUP" \
		"$MPORT" "$(peer_addr 4)" "$CAP" & } &&
	wait_for "test -s $CAP/.pid" 5
}
