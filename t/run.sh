#!/usr/bin/env bash
# run.sh - build pufs in every test configuration and run the whole suite.
#
# The one command behind CI and the README.  It installs what is missing
# (t/deps.sh), then builds and tests three configurations, each in its
# own build directory at the top of the tree, reused from run to run:
#
#   plain  build/       debugoptimized
#   san    build-san/   AddressSanitizer + UndefinedBehaviorSanitizer
#   fuzz   build-fuzz/  clang, -Dfuzz=true, sanitizers; suite 'fuzz' only
#
# meson's own output goes to build-logs/; standard output is TAP: one line
# per build and per test of each configuration, the output of every
# failed test as "#" lines, then "1..N" and "N passed, N failed".  Exits
# 1 when anything failed (a failed build included), 2 on bad usage.
#
#   t/run.sh            everything (run as root: the integration tests
#                       mount file systems and make namespaces)
#   t/run.sh --quick    the plain configuration only
#   PUFS_TEST_FILTER='t000* test-proto' t/run.sh
#                       only the tests whose name (or suite/name) matches
#                       one of these shell patterns
#
# A build that fails still runs the tests whose programs were built; the
# others are reported "not built".  Two tests run at a time; tests marked
# is_parallel: false run alone.  Sanitized configurations get longer
# timeouts.

set -u -o pipefail

# Mounts, namespaces and package installs need root: ask sudo, if any.
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
	exec sudo "$0" "$@"
fi

usage() {
	echo "usage: t/run.sh [--quick]" >&2
	exit 2
}

quick=0
for arg in "$@"; do
	case $arg in
	--quick) quick=1 ;;
	*) usage ;;
	esac
done

cd "$(dirname "$0")/.." || exit 2
top=$PWD
logs=$top/build-logs
mkdir -p "$logs" || exit 2

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
filter=${PUFS_TEST_FILTER:-}

n=0
passed=0
failed=0
started=$SECONDS

# Helper for the parts that read meson's JSON: choosing the tests to run
# and turning meson-logs/testlog.json into TAP lines.
read -r -d '' helper <<'EOF'
import fnmatch, json, os, sys

def short_suites(suites):
    # 'pufs:unit' -> 'unit'; a bare project name means no suite.
    return [s.split(':', 1)[1] for s in suites if ':' in s]

def label_of(name, suites):
    short = short_suites(suites)
    return ('+'.join(short) + '/' if short else '') + name

def select(intro, suite, patterns, out):
    # Lines "run|missing<TAB>name<TAB>label" for the tests to run.
    tests = json.load(open(intro))
    pats = patterns.split()
    with open(out, 'w') as f:
        for t in tests:
            if suite and suite not in short_suites(t['suite']):
                continue
            label = label_of(t['name'], t['suite'])
            if pats and not any(fnmatch.fnmatchcase(t['name'], p) or
                                fnmatch.fnmatchcase(label, p)
                                for p in pats):
                continue
            cmd = t.get('cmd') or ['']
            state = 'run' if cmd[0] and os.path.exists(cmd[0]) else 'missing'
            f.write('%s\t%s\t%s\n' % (state, t['name'], label))

def comment(text, limit_head=200, limit_tail=600):
    lines = text.strip('\n').split('\n')
    if len(lines) > limit_head + limit_tail:
        cut = len(lines) - limit_head - limit_tail
        lines = (lines[:limit_head] +
                 ['[... %d lines cut; see meson-logs/testlog.txt ...]' % cut] +
                 lines[-limit_tail:])
    for l in lines:
        print('#   ' + l)

def report(config, testlog, chosen, n, counts):
    passed = failed = 0
    labels = {}
    with open(chosen) as f:
        for line in f:
            state, name, label = line.rstrip('\n').split('\t')
            labels.setdefault(name, label)
            if state == 'missing':
                n += 1
                failed += 1
                print('not ok %d - %s/%s # not built' % (n, config, label))
    results = []
    if os.path.exists(testlog):
        with open(testlog) as f:
            results = [json.loads(l) for l in f if l.strip()]
    for r in results:
        name = r['name']
        if ' / ' in name:
            # "project:suite1+suite2 / name" when the project has suites
            suitepart, bare = name.split(' / ', 1)
            short = suitepart.split(':', 1)[1] if ':' in suitepart else ''
            label = (short + '/' if short else '') + bare
        else:
            label = labels.get(name, name)
        res = r.get('result', 'ERROR')
        dur = '%.2fs' % (r.get('duration') or 0)
        n += 1
        if res == 'OK':
            passed += 1
            print('ok %d - %s/%s # %s' % (n, config, label, dur))
        elif res == 'SKIP':
            passed += 1
            print('ok %d - %s/%s # SKIP %s' % (n, config, label, dur))
        elif res == 'EXPECTEDFAIL':
            passed += 1
            print('ok %d - %s/%s # expected failure, %s' % (n, config, label, dur))
        else:
            failed += 1
            print('not ok %d - %s/%s # %s %s' % (n, config, label, res, dur))
            if r.get('stdout'):
                comment(r['stdout'])
            if r.get('stderr'):
                print('#   [stderr]')
                comment(r['stderr'])
    with open(counts, 'w') as f:
        f.write('%d %d %d\n' % (n, passed, failed))
    sys.stdout.flush()

if sys.argv[1] == 'select':
    select(*sys.argv[2:])
else:
    report(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]),
           sys.argv[6])
EOF

# Print one TAP line and count it.  $1: ok or "not ok"; $2: description.
tap() {
	n=$((n + 1))
	if [ "$1" = ok ]; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
	fi
	echo "$1 $n - $2"
}

# Print a file (or the part of it that matters) as "#" lines.
show() {
	sed -e 's/^/#   /' "$@"
}

# The compiler's complaints in a ninja log, or its tail.
show_build_errors() {
	if grep -q '^FAILED:' "$1"; then
		grep -A 25 '^FAILED:' "$1" | head -n 120 | show
	else
		tail -n 40 "$1" | show
	fi
}

# Configure (or reconfigure) and build one configuration, then run its
# tests.  $1: name; $2: build directory; $3: timeout multiplier; $4: the
# only suite to run, or ""; the rest: meson setup options.
run_config() {
	local name=$1 dir=$2 mult=$3 suite=$4
	local log=$logs/$name t0=$SECONDS chosen rc ran=0
	local -a names=() suiteopt=()
	shift 4

	echo "# $name: setting up $dir (logs in ${logs#"$top"/}/$name-*.log)"
	if [ -f "$dir/meson-private/coredata.dat" ]; then
		meson setup --reconfigure "$dir" "$@" >"$log-setup.log" 2>&1
		rc=$?
		# A directory from another meson version must be wiped.
		if [ $rc -ne 0 ] && grep -q -- --wipe "$log-setup.log"; then
			meson setup --wipe "$dir" "$@" >>"$log-setup.log" 2>&1
			rc=$?
		fi
	else
		meson setup "$dir" "$@" >"$log-setup.log" 2>&1
		rc=$?
	fi
	if [ $rc -ne 0 ]; then
		tap "not ok" "$name/build # meson setup failed"
		grep -B 2 -A 8 'ERROR' "$log-setup.log" | head -n 60 | show ||
		    tail -n 30 "$log-setup.log" | show
		return
	fi
	# Keep going past errors: what builds can still be tested.
	if meson compile -C "$dir" --ninja-args=-k0 >"$log-compile.log" 2>&1
	then
		tap ok "$name/build # $((SECONDS - t0))s"
	else
		tap "not ok" "$name/build # compile failed"
		show_build_errors "$log-compile.log"
	fi

	chosen=$logs/$name-tests.txt
	if ! meson introspect --tests "$dir" >"$log-tests.json" 2>>"$log-setup.log" ||
	    ! python3 -c "$helper" select "$log-tests.json" "$suite" \
	    "$filter" "$chosen"; then
		tap "not ok" "$name/tests # cannot list the tests"
		return
	fi
	while IFS=$'\t' read -r state tname _; do
		[ "$state" = run ] && names+=("$tname")
	done <"$chosen"
	[ -n "$suite" ] && suiteopt=(--suite "$suite")

	rm -f "$dir/meson-logs/testlog.json"
	if [ ${#names[@]} -gt 0 ]; then
		ran=1
		echo "# $name: running ${#names[@]} tests"
		# Without a filter and with everything built, let meson pick
		# the tests itself; otherwise name them.
		if [ -z "$filter" ] && ! grep -q '^missing' "$chosen"; then
			names=()
		fi
		meson test -C "$dir" --no-rebuild --num-processes 2 \
		    --timeout-multiplier "$mult" "${suiteopt[@]}" \
		    "${names[@]}" >"$log-test.log" 2>&1 </dev/null
	else
		echo "# $name: no tests to run"
	fi
	python3 -c "$helper" report "$name" "$dir/meson-logs/testlog.json" \
	    "$chosen" "$n" "$log-counts.txt" || {
		tap "not ok" "$name/tests # cannot read the test log"
		return
	}
	# The report numbered and counted its own lines; add them up.
	read -r n p f <"$log-counts.txt"
	passed=$((passed + p))
	failed=$((failed + f))
	if [ $ran -eq 1 ] && [ ! -s "$dir/meson-logs/testlog.json" ]; then
		tap "not ok" "$name/tests # meson test wrote no results"
		tail -n 30 "$log-test.log" | show
	fi
}

# Packages first; on failure the builds below say what is missing.
if sh t/deps.sh >"$logs/deps.log" 2>&1 </dev/null; then
	tap ok "deps"
	sed 's/^/# /' "$logs/deps.log"
else
	tap "not ok" "deps # t/deps.sh failed"
	show "$logs/deps.log"
fi

# The format: every C file as clang-format writes it with .clang-format.
if sh t/format.sh >"$logs/format.log" 2>&1; then
	tap ok "format"
else
	tap "not ok" "format # t/format.sh: files differ (t/format.sh --fix)"
	show "$logs/format.log"
fi

run_config plain build 1 "" -Dbuildtype=debugoptimized -Db_sanitize=none \
    -Dfuzz=false

# The layers: no include circle and no call circle between files.
if python3 .ci/include-graph -q --calls build >"$logs/layers.log" 2>&1
then
	tap ok "layers"
else
	tap "not ok" "layers # .ci/include-graph found a circle"
	show "$logs/layers.log"
fi
if [ $quick -eq 0 ]; then
	run_config san build-san 3 "" -Dbuildtype=debugoptimized \
	    -Db_sanitize=address,undefined -Db_lundef=false -Dfuzz=false
	if ! command -v clang >/dev/null 2>&1; then
		tap ok "fuzz/build # SKIP no clang"
	elif [ ! -f t/fuzz/meson.build ]; then
		tap ok "fuzz/build # SKIP no t/fuzz/meson.build"
	else
		CC=clang run_config fuzz build-fuzz 2 fuzz \
		    -Dbuildtype=debugoptimized -Dfuzz=true \
		    -Db_sanitize=address,undefined -Db_lundef=false
	fi
fi

echo "# suite took $((SECONDS - started))s"
echo "1..$n"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
