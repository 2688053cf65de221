#!/bin/bash
#
# A self-test of t/lib.sh: inner scripts that use the library are run
# with a stand-in daemon (a python script that bind-mounts its -e
# directory), and their TAP output, exit status and leftovers checked.

LIBDIR=$(cd "$(dirname "$0")" && pwd)
. "$LIBDIR/lib.sh"

# The stand-in daemon: "fake mount [-o X] [-e DIR] MNT"; FAKE_MODE says
# how to misbehave: die (exit 3 before ready), ignore-term, or nothing.
cat >"$TRASH/fake" <<'EOF'
#!/usr/bin/python3
import os, signal, subprocess, sys, time
args = sys.argv[2:]
mnt = args[-1]
exp = None
i = 0
while i < len(args) - 1:
    if args[i] == "-e":
        exp = args[i + 1]
        i += 1
    i += 1
mode = os.environ.get("FAKE_MODE", "")
sys.stderr.write("sigint %s\n" % ("ignored" if signal.getsignal(signal.SIGINT)
                                 == signal.SIG_IGN else "not ignored"))
if mode == "die":
    sys.stderr.write("fake: dying before ready\n")
    sys.exit(3)
subprocess.check_call(["mount", "--bind", exp, mnt])
def stop(sig, frame):
    subprocess.check_call(["umount", mnt])
    sys.exit(0)
signal.signal(signal.SIGTERM, signal.SIG_IGN if mode == "ignore-term" else stop)
signal.signal(signal.SIGINT, stop)
sys.stderr.write("fake: ready: mounted %s\n" % mnt)
sys.stderr.flush()
while True:
    time.sleep(1)
EOF
chmod +x "$TRASH/fake"

# run_inner NAME BODY: write t0900-NAME.sh that sources lib.sh and runs
# BODY, run it with the stand-in daemon; output in NAME.out, status in
# NAME.rc.
run_inner () {
	mkdir -p inner &&
	{
		echo "#!/bin/bash"
		echo ". \"$LIBDIR/lib.sh\""
		echo "echo \"# trash \$TRASH\""
		printf "%s\n" "$2"
		echo "test_done"
	} >"inner/t0900-$1.sh" &&
	chmod +x "inner/t0900-$1.sh" &&
	env -u PUFS_TEST_RAW -u PUFS_TEST_VERBOSE PUFS="$TRASH/fake" \
		TEST_TIMEOUT="${INNER_TIMEOUT:-120}" \
		"inner/t0900-$1.sh" >"$1.out" 2>&1
	echo $? >"$1.rc"
	cat "$1.out"
}

# The trash directory the inner script NAME reported.
inner_trash () {
	sed -n "s/^# trash //p" "$1.out"
}

test_expect_success 'TAP: ok, not ok with the output as comments, plan, status' '
	run_inner tap "
test_expect_success \"passes\" \"true\"
test_expect_success \"fails\" \"echo some-output && false\"
test_expect_success \"passes again\" \"echo hidden\"
" &&
	test_output 1 cat tap.rc &&
	grep -x "ok 1 - passes" tap.out &&
	grep -x "not ok 2 - fails" tap.out &&
	grep -x "# some-output" tap.out &&
	grep -x "ok 3 - passes again" tap.out &&
	! grep hidden tap.out &&
	grep -x "1..3" tap.out
'

test_expect_success 'all passing: status 0' '
	run_inner pass "test_expect_success \"one\" \"true\"" &&
	test_output 0 cat pass.rc &&
	grep -x "1..1" pass.out
'

test_expect_success 'a broken && chain fails the test' '
	run_inner chain "test_expect_success \"chain\" \"false && true\"
test_expect_success \"chain2\" \"true && false && true\"" &&
	grep -x "not ok 1 - chain" chain.out &&
	grep -x "not ok 2 - chain2" chain.out
'

test_expect_success 'test_when_finished runs after success and failure, last first' '
	run_inner cleanup "
test_expect_success \"a\" \"test_when_finished \\\"echo first >>$TRASH/order\\\" &&
	test_when_finished \\\"echo second >>$TRASH/order\\\" && false\"
test_expect_success \"b\" \"test_when_finished \\\"echo third >>$TRASH/order\\\"\"
test_expect_success \"c\" \"test_when_finished false\"
" &&
	printf "second\nfirst\nthird\n" >expect &&
	test_cmp expect order &&
	grep -x "not ok 1 - a" cleanup.out &&
	grep -x "ok 2 - b" cleanup.out &&
	grep -x "not ok 3 - c" cleanup.out
'

test_expect_success 'wait_for: passes when the condition comes, fails at the deadline' '
	run_inner wait "
test_expect_success \"comes\" \"(sleep 0.3 && touch $TRASH/flag) & wait_for \\\"test -e $TRASH/flag\\\" 5\"
test_expect_success \"never\" \"wait_for false 0.5\"
" &&
	grep -x "ok 1 - comes" wait.out &&
	grep -x "not ok 2 - never" wait.out &&
	grep "timed out after 0.5s" wait.out
'

test_expect_success 'a test over TEST_TIMEOUT is killed and the script goes on' '
	INNER_TIMEOUT=2 run_inner slow "
test_expect_success \"slow\" \"sleep 61.5\"
test_expect_success \"next\" \"true\"
" &&
	grep -x "not ok 1 - slow" slow.out &&
	grep "timed out after 2s" slow.out &&
	grep -x "ok 2 - next" slow.out &&
	! ps -e -o args= | grep -x "sleep 61.5"
'

test_expect_success 'test_errno names the errno' '
	run_inner errno "
test_expect_success \"enoent\" \"test_errno ENOENT stat /no/such/file\"
test_expect_success \"alternatives\" \"test_errno EEXIST,ENOENT stat /no/such/file\"
test_expect_success \"ok\" \"test_errno ok open / rdonly\"
test_expect_success \"wrong\" \"test_errno EPERM stat /no/such/file\"
" &&
	grep -x "ok 1 - enoent" errno.out &&
	grep -x "ok 2 - alternatives" errno.out &&
	grep -x "ok 3 - ok" errno.out &&
	grep -x "not ok 4 - wrong" errno.out &&
	grep "gave .ENOENT., wanted EPERM" errno.out
'

test_expect_success 'the trash directory is removed at exit' '
	d=$(inner_trash pass) &&
	test -n "$d" && test_path_is_missing "$d"
'

test_expect_success 'pufs_start waits for ready, pufs_stop stops; SIGINT not ignored' '
	mkdir -p exp && echo hi >exp/hi &&
	run_inner start "
test_expect_success \"start\" \"pufs_start fake \$TRASH/m -e $TRASH/exp && cat \$TRASH/m/hi && grep \\\"sigint not ignored\\\" \\\"\\\$(pufs_log fake)\\\"\"
test_expect_success \"stop\" \"pufs_stop fake && ! is_mounted \$TRASH/m\"
test_expect_success \"start INT\" \"pufs_start fake2 \$TRASH/m -e $TRASH/exp\"
test_expect_success \"stop INT\" \"pufs_stop fake2 INT\"
" &&
	test_output 0 cat start.rc &&
	grep -x "1..4" start.out
'

test_expect_success 'pufs_start fails with the log when the daemon dies' '
	FAKE_MODE=die run_inner die "
test_expect_success \"start\" \"pufs_start fake \$TRASH/m -e $TRASH/exp\"
" &&
	grep -x "not ok 1 - start" die.out &&
	grep "exited with status 3 before ready" die.out &&
	grep "dying before ready" die.out
'

test_expect_success 'the cleanup unmounts and stops a daemon left running' '
	run_inner left "
test_expect_success \"start\" \"pufs_start fake \$TRASH/m -e $TRASH/exp && pufs_pid fake >$TRASH/left.pid\"
" &&
	test_output 0 cat left.rc &&
	! kill -0 "$(cat left.pid)" 2>/dev/null &&
	! grep "$(inner_trash left)" /proc/self/mountinfo &&
	test_path_is_missing "$(inner_trash left)"
'

test_expect_success 'the cleanup kills a daemon that ignores SIGTERM and says so' '
	FAKE_MODE=ignore-term run_inner stubborn "
test_expect_success \"start\" \"pufs_start fake \$TRASH/m -e $TRASH/exp && pufs_pid fake >$TRASH/stubborn.pid\"
" &&
	test_output 1 cat stubborn.rc &&
	grep "ignored SIGTERM" stubborn.out &&
	wait_for "! kill -0 $(cat stubborn.pid) 2>/dev/null" 5 &&
	! grep "$(inner_trash stubborn)" /proc/self/mountinfo
'

test_expect_success 'raw mode bind-mounts the export, read-only with :ro' '
	{
		echo "#!/bin/bash"
		echo ". \"$LIBDIR/lib.sh\""
		echo "test_expect_success raw \"pufs_start r \\\$TRASH/m -e $TRASH/exp:ro && cat \\\$TRASH/m/hi && ! touch \\\$TRASH/m/x && pufs_stop r\""
		echo "test_done"
	} >inner/t0902-raw.sh &&
	chmod +x inner/t0902-raw.sh &&
	cat inner/t0902-raw.sh &&
	PUFS_TEST_RAW=1 inner/t0902-raw.sh >raw.out 2>&1 &&
	cat raw.out &&
	grep -x "ok 1 - raw" raw.out
'

test_expect_success 'a missing PUFS is a bail-out' '
	cp inner/t0900-pass.sh inner/t0901-bail.sh &&
	env -u PUFS -u PUFS_TEST_RAW inner/t0901-bail.sh >bail.out 2>&1
	test $? = 1 &&
	grep "^Bail out! PUFS is not set" bail.out
'

test_done
