#!/bin/bash
#
# Running under a service manager: systemd's notify protocol, spoken to
# a datagram socket this test listens on (READY=1 once the mount
# answers, STATUS= with the count of peers up, STOPPING=1 on SIGTERM;
# paths and abstract names); journald's priority prefixes when
# $JOURNAL_STREAM is standard error, the plain form when it is not;
# `pufs status` as a readiness check (0 only while the mount answers,
# 1 while leaving); and the unit template as systemd-analyze verifies it.
# A daemon started again under the same name gets an empty log first, so
# that pufs_start waits for its own ready line, not the last one's.

. "$(dirname "$0")/lib.sh"

test_require systemd-analyze

A=$TRASH/ea
B=$TRASH/eb
M=$TRASH/ma
N=$TRASH/mb
[ -n "${PUFS_SRCDIR:-}" ] || bail_out "PUFS_SRCDIR is not set"

# listen ADDR LOG MNT: receive notify datagrams at ADDR (a path, or @NAME)
# in the background until `unlisten LOG` (or 120 s of silence); each one becomes a line of LOG ("\n" between its
# fields), and with READY=1 the line ends in " [mounted]" if MNT is a
# pufs mount that lists the file fa at that moment.
listen () {
	"$PYTHON" - "$@" <<-'EOF' &
	import os, socket, sys
	addr, log, mnt = sys.argv[1:4]
	s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
	s.bind('\0' + addr[1:] if addr.startswith('@') else addr)
	s.settimeout(120)
	open(log + '.up', 'w').close()
	with open(log, 'w') as f:
	    while True:
	        try:
	            d = s.recv(4096).decode()
	        except socket.timeout:
	            break
	        line = d.replace('\n', '\\n')
	        if 'READY=1' in d:
	            fuse = any(l.split()[4] == mnt and ' - fuse.pufs ' in l
	                       for l in open('/proc/self/mountinfo'))
	            if fuse and 'fa' in os.listdir(mnt):
	                line += ' [mounted]'
	        f.write(line + '\n')
	        f.flush()
	EOF
	echo $! >"$2.pid"
	wait_for "test -e '$2.up'"
}

# inflight: alpha has calls in flight.
inflight () {
	"$PUFS" status -s "$(pufs_sock alpha)" --json | "$PYTHON" -c '
import json, sys
sys.exit(json.load(sys.stdin)["fuse"]["calls_in_flight"] == 0)'
}

# unlisten LOG: stop the listener writing LOG.
unlisten () {
	kill "$(cat "$1.pid")" 2>/dev/null
	true
}

test_expect_success 'setup' '
	mkdir -p "$A" "$B" "$M" "$N" &&
	echo a >"$A/fa" &&
	echo b >"$B/fb" &&
	pufs_opts alpha >/dev/null && pufs_opts beta >/dev/null
'

test_expect_success 'READY=1 once the mount answers, with STATUS=' '
	listen "$TRASH/notify.sock" n1 "$M" &&
	NOTIFY_SOCKET=$TRASH/notify.sock pufs_start alpha "$M" -e "$A" \
	    -o "peer.peers=127.0.0.1:$(pufs_port beta),peer.op_timeout=4" &&
	wait_for "grep -q READY=1 n1" &&
	cat n1 &&
	test_output "READY=1\\nSTATUS=mounted $M, 0 peers up\\n [mounted]" \
	    head -n 1 n1
'

test_expect_success 'STATUS= follows the peers up' '
	pufs_start beta "$N" -e "$B" -o "peer.peers=127.0.0.1:$(pufs_port alpha)" &&
	wait_for "grep -q \"STATUS=mounted $M, 1 peer up\" n1" &&
	pufs_stop beta &&
	wait_for "grep -q \"STATUS=mounted $M, 0 peers up\" n1" &&
	cat n1 &&
	test 3 = $(grep -c STATUS= n1) &&
	test 1 = $(grep -c READY=1 n1)
'

# Both dial each other at once (alpha keeps dialing beta's address, beta
# dials alpha as it starts): whichever stream wins, neither side ever
# sees the other go down before beta leaves.
test_expect_success 'crossed dials: no peer goes down and up again' '
	for i in 1 2 3 4 5 6; do
		: >"$(pufs_log alpha)" &&
		: >"$(pufs_log beta)" &&
		pufs_start beta "$N" -e "$B" -o "peer.peers=127.0.0.1:$(pufs_port alpha)" &&
		wait_for "grep -q \"peer alpha: down -> up\" \"$(pufs_log beta)\"" &&
		wait_for "grep -q \"peer beta: down -> up\" \"$(pufs_log alpha)\"" &&
		! grep "up -> down" "$(pufs_log alpha)" &&
		pufs_stop beta &&
		test_output "1" grep -c "peer alpha: down -> up" "$(pufs_log beta)" &&
		wait_for "grep -q \"peer beta: up -> down\" \"$(pufs_log alpha)\"" &&
		test_output "1" grep -c "peer beta: down -> up" "$(pufs_log alpha)" ||
		{ cat "$(pufs_log alpha)" "$(pufs_log beta)"; exit 1; }
	done
'

test_expect_success 'status answers 0 while the mount answers' '
	pufs_try 0 status -s "$(pufs_sock alpha)" &&
	pufs_try 0 status -s "$(pufs_sock alpha)" --json
'

test_expect_success 'SIGTERM: STOPPING=1; status says leaving and exits 1' '
	: >"$(pufs_log beta)" &&
	pufs_start beta "$N" -e "$B" -o "peer.peers=127.0.0.1:$(pufs_port alpha)" &&
	wait_for "test -e $M/fb" &&
	kill -STOP $(pufs_pid beta) &&
	test_when_finished "kill -CONT $(pufs_pid beta) 2>/dev/null; true" &&
	{ cat "$M/fb" >/dev/null 2>&1 & } &&
	wait_for inflight &&
	pufs_signal alpha TERM &&
	wait_for "grep -q STOPPING=1 n1" &&
	pufs_try 1 status -s "$(pufs_sock alpha)" &&
	test_output "pufs: leaving the union" cat err &&
	test_output "" cat out &&
	kill -CONT $(pufs_pid beta) &&
	test 0 = "$(pufs_wait_exit alpha 20)" &&
	mv "$_LIB/d.alpha.pid" "$_LIB/d.alpha.stopped" &&
	tail -n 1 n1 | grep -x "STOPPING=1\\\\nSTATUS=leaving the union\\\\n" &&
	unlisten n1 &&
	pufs_stop beta
'

test_expect_success 'readiness: every status that exits 0 finds the mount up' '
	rm -f "$_LIB/d.alpha.stopped" &&
	: >"$(pufs_log alpha)" &&
	( pufs_start alpha "$M" -e "$A" ) >start.log 2>&1 &
	starter=$! &&
	ok=0 &&
	for i in $(seq 1 400); do
		if "$PUFS" status -s "$(pufs_sock alpha)" >/dev/null 2>st.err; then
			is_mounted "$M" && test -e "$M/fa" || { echo "status 0, mount not up"; exit 1; }
			ok=$((ok + 1))
			test $ok -ge 5 && break
		else
			grep -E "no daemon answers|mounting|no answer in time" st.err ||
				{ cat st.err; exit 1; }
		fi
	done &&
	wait $starter &&
	test $ok -ge 5 &&
	pufs_stop alpha
'

test_expect_success 'an abstract socket name (@NAME) works too' '
	listen "@pufs-t0016-$$" n2 "$M" &&
	: >"$(pufs_log alpha)" &&
	NOTIFY_SOCKET=@pufs-t0016-$$ pufs_start alpha "$M" -e "$A" &&
	wait_for "grep -q READY=1 n2" &&
	grep -q "\\[mounted\\]" n2 &&
	pufs_stop alpha &&
	wait_for "grep -q STOPPING=1 n2" &&
	unlisten n2
'

test_expect_success 'a NOTIFY_SOCKET that is no socket path: a warning, and it runs' '
	: >"$(pufs_log alpha)" &&
	NOTIFY_SOCKET=relative/path pufs_start alpha "$M" -e "$A" &&
	grep "warning: service: NOTIFY_SOCKET .relative/path. is not a socket path" "$(pufs_log alpha)" &&
	test -e "$M/fa" &&
	pufs_stop alpha
'

test_expect_success 'under journald: <N> priorities and no timestamps' '
	: >"$(pufs_log alpha)" &&
	JOURNAL_STREAM=$(stat -c %d:%i "$(pufs_log alpha)") NOTIFY_SOCKET=nowhere \
	    pufs_start alpha "$M" -e "$A" &&
	pufs_stop alpha &&
	cat "$(pufs_log alpha)" &&
	grep -x "<6>info: ready: mounted $M" "$(pufs_log alpha)" &&
	grep -x "<4>warning: service: NOTIFY_SOCKET .nowhere. is not a socket path" "$(pufs_log alpha)" &&
	grep -x "<6>info: leaving the union" "$(pufs_log alpha)" &&
	! grep -v "^<[0-7]>[a-z]*: " "$(pufs_log alpha)"
'

test_expect_success 'elsewhere: the plain form, even with JOURNAL_STREAM set' '
	: >"$(pufs_log alpha)" &&
	JOURNAL_STREAM=1:2 pufs_start alpha "$M" -e "$A" &&
	pufs_stop alpha &&
	grep -E "^[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3} pufs info: ready: mounted $M$" "$(pufs_log alpha)" &&
	! grep "^<" "$(pufs_log alpha)" &&
	: >"$(pufs_log alpha)" &&
	JOURNAL_STREAM=$(stat -c %d:%i "$A/fa") pufs_start alpha "$M" -e "$A" &&
	pufs_stop alpha &&
	grep -E "^[0-9:.]{12} pufs info: ready: mounted" "$(pufs_log alpha)" &&
	! grep "^<" "$(pufs_log alpha)"
'

# The unit as it would be installed, with this build's binary, and the
# man pages it names where man finds them.
test_expect_success 'systemd-analyze verify accepts the unit template' '
	mkdir -p units man/man8 man/man5 &&
	sed "s#@bindir@#$(dirname "$PUFS")#" \
	    "$PUFS_SRCDIR/systemd/pufs@.service.in" >"units/pufs@.service" &&
	cp "units/pufs@.service" "units/pufs@alpha.service" &&
	cp "$PUFS_SRCDIR/man/pufs.8" man/man8/ &&
	cp "$PUFS_SRCDIR/man/pufs.ini.5" man/man5/ &&
	( cd units && MANPATH=$TRASH/man systemd-analyze verify \
	    ./pufs@alpha.service >../verify 2>&1 ) ||
	{ cat verify; false; } &&
	test_output "" cat verify &&
	u=units/pufs@.service &&
	grep -x "Type=notify" $u &&
	grep -x "ExecStart=$(dirname "$PUFS")/pufs mount -c /etc/pufs/%i.ini \${MOUNTPOINT}" $u &&
	grep -x "CapabilityBoundingSet=CAP_SYS_ADMIN CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_FOWNER CAP_CHOWN" $u &&
	grep -x "DeviceAllow=/dev/fuse rw" $u &&
	grep -x "NoNewPrivileges=yes" $u &&
	! grep -E "^(ProtectSystem|PrivateTmp|ProtectHome|PrivateDevices|PrivateMounts)=" $u
'

test_done
