#!/bin/bash
#
# programs.sh - real programs on files held by another peer: untar,
# git add+commit+fsck, configure + make; pufs against sshfs over the
# same network link.
#
# The set-up is remote.sh's: namespaces A (10.250.0.1) and B
# (10.250.0.2) joined by a veth pair, pufs peer p1 in A, p2 in B, a
# private sshd in B and sshfs (default options) in A mounting p2's
# export directory.  Every program works in p2's directory work/, which
# exists on p2 alone, so that all it writes is held by p2; it is
# reached through raw (p2's directory itself), passthrough_ll mounted
# on it locally, sshfs and p1's pufs mount.  Measured for each, median
# of RUNS runs, each run in new directories:
#
#   untar      tar xf of a tarball (made once, in the work directory) of
#              NHEADERS headers copied from /usr/include with their
#              directories, then sync -f on the directory extracted to;
#   git        git init, cp -r of the same headers, git add -A,
#              git commit, git fsck --full;
#   configure  ./configure of a small C project: a shell script probing
#              the compiler as generated ones do, writing config.h;
#   make       make -j2 of its NSRC C files into a program.
#
# For pufs, p1's status counters (ops.*, fuse.*) are read before and
# after each program of the first run, and what changed is printed.
#
# Needs root.  Traffic stays inside the two namespaces.  Everything
# started is stopped by PID, every mount undone, the namespaces deleted
# and the work directory removed on any exit, SIGINT included.
#
# Usage: bench/programs.sh [-n NHEADERS] [-c NSRC] [-p PUFS] [-r RUNS]
#                          [-w DIR]
#
set -euo pipefail
export LC_ALL=C

NHEADERS=571
NSRC=40
REPO=$(cd "$(dirname "$0")/.." && pwd)
PUFS=$REPO/build-rel/daemon/pufs
RUNS=3
WORKPARENT=/var/tmp
EXAMPLES=/usr/share/doc/libfuse3-dev/examples
BENCH=programs
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

usage() {
	cat <<EOF
usage: $0 [-n NHEADERS] [-c NSRC] [-p PUFS] [-r RUNS] [-w DIR]

  -n NHEADERS  headers from /usr/include in the tarball (default $NHEADERS)
  -c NSRC      C files of the project built (default $NSRC)
$(common_usage)

Prints a Markdown table on standard output, progress on standard error.
EOF
}

while getopts "n:c:p:r:w:h" opt; do
	case $opt in
	n) NHEADERS=$OPTARG ;;
	c) NSRC=$OPTARG ;;
	*) common_opt "$opt" ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || { usage >&2; exit 2; }
need_positive NHEADERS NSRC RUNS
need_root "namespaces, FUSE mounts, sshd"
need_commands ip nsenter fusermount3 timeout tar git make cc python3
need_pufs

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
	COMMIT="$COMMIT (with local changes)"
fi

two_peer_setup programs
MPT=$WORK/mnt-passthrough
mkdir "$MPT"
MOUNTS+=("$MPT")
SRC=$WORK/src
mkdir -p "$SRC/proj/src" "$E2/work"

# The headers: the first NHEADERS of /usr/include by name, with their
# directories, and the tarball of them.
find /usr/include -type f -name '*.h' | sort | sed -n "1,${NHEADERS}p" |
    sed 's|^/usr/include/||' >"$WORK/headers.list"
NH=$(wc -l <"$WORK/headers.list")
mkdir "$SRC/headers"
tar -C /usr/include -cf - -T "$WORK/headers.list" | tar -C "$SRC/headers" -xf -
NHDIRS=$(find "$SRC/headers" -mindepth 1 -type d | wc -l)
NHBYTES=$(du -sb "$SRC/headers" | cut -f1)
tar -C "$SRC" -cf "$WORK/headers.tar" headers
msg "tarball of $NH headers in $NHDIRS directories, $NHBYTES bytes"

# The project: a configure script probing the compiler the way
# generated ones do (one small program compiled, and sometimes run, per
# question), writing config.h and config.mk; a Makefile building NSRC
# C files into prog.
cat >"$SRC/proj/configure" <<'EOF'
#!/bin/sh
# configure - probe the compiler and the C library, write config.h
# and config.mk.
CC=${CC:-cc}
exec 5>config.log
: >confdefs.h
echo "checking whether the C compiler works..."
echo 'int main(void) { return 0; }' >conftest.c
$CC -o conftest conftest.c >&5 2>&1 && ./conftest ||
    { echo "configure: error: C compiler cannot create executables"; exit 1; }
rm -f conftest conftest.c
define() {
	echo "#define $1 ${2:-1}" >>confdefs.h
}
for h in stdio.h stdlib.h string.h strings.h unistd.h stdint.h inttypes.h \
    sys/types.h sys/stat.h fcntl.h errno.h limits.h; do
	printf 'checking for %s... ' "$h"
	printf '#include <%s>\nint main(void) { return 0; }\n' "$h" >conftest.c
	if $CC -c -o conftest.o conftest.c >&5 2>&1; then
		echo yes
		define "HAVE_$(echo "$h" | tr 'a-z./' 'A-Z__')"
	else
		echo no
	fi
	rm -f conftest.o conftest.c
done
for f in strlcpy memmem getline strndup reallocarray explicit_bzero; do
	printf 'checking for %s... ' "$f"
	printf 'char %s(void);\nint main(void) { return (int)%s(); }\n' "$f" "$f" >conftest.c
	if $CC -o conftest conftest.c >&5 2>&1; then
		echo yes
		define "HAVE_$(echo "$f" | tr 'a-z' 'A-Z')"
	else
		echo no
	fi
	rm -f conftest conftest.c
done
for t in int long 'long long' 'void *' size_t off_t; do
	printf 'checking size of %s... ' "$t"
	printf '#include <stdio.h>\n#include <sys/types.h>\nint main(void) { printf("%%d\\n", (int)sizeof(%s)); return 0; }\n' "$t" >conftest.c
	$CC -o conftest conftest.c >&5 2>&1 || { echo "configure: error: cannot compute"; exit 1; }
	s=$(./conftest)
	echo "$s"
	define "SIZEOF_$(echo "$t" | tr 'a-z *' 'A-Z_P')" "$s"
	rm -f conftest conftest.c
done
mv confdefs.h config.h
echo "CC = $CC" >config.mk
echo "CFLAGS = -O1" >>config.mk
echo "configure: creating config.h and config.mk"
EOF
chmod +x "$SRC/proj/configure"
{
	echo '#include "../config.h"'
	for ((i = 0; i < NSRC; i++)); do
		echo "long f$i(long);"
	done
} >"$SRC/proj/src/funcs.h"
for ((i = 0; i < NSRC; i++)); do
	cat >"$SRC/proj/src/f$i.c" <<EOF
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "funcs.h"

static long table${i}[64];

long
f$i(long x)
{
	long i, s = 0;

	for (i = 0; i < 64; i++)
		table${i}[i] = (x + i) * $((i + 1));
	for (i = 0; i < 64; i++)
		s += table${i}[i] % (SIZEOF_LONG + $i);
	return s;
}
EOF
done
# The C and make text is written out as it stands.
# shellcheck disable=SC2016,SC2028
{
	echo '#include <stdio.h>'
	echo '#include "funcs.h"'
	echo 'int'
	echo 'main(void)'
	echo '{'
	echo '	long s = 0;'
	for ((i = 0; i < NSRC; i++)); do
		echo "	s += f$i(s % 7);"
	done
	echo '	printf("%ld\n", s);'
	echo '	return 0;'
	echo '}'
} >"$SRC/proj/src/main.c"
# shellcheck disable=SC2016
{
	echo 'include config.mk'
	printf 'OBJS = src/main.o'
	for ((i = 0; i < NSRC; i++)); do
		printf ' src/f%d.o' "$i"
	done
	echo
	echo 'prog: $(OBJS)'
	printf '\t$(CC) -o $@ $(OBJS)\n'
	echo 'src/%.o: src/%.c src/funcs.h config.h'
	printf '\t$(CC) $(CFLAGS) -c -o $@ $<\n'
} >"$SRC/proj/Makefile"
# What the program prints, built locally once.
(cd "$SRC/proj" && ./configure >/dev/null && make -s -j2 >/dev/null &&
    ./prog >"$WORK/prog.expected") || true
rm -f "$SRC"/proj/prog "$SRC"/proj/src/*.o "$SRC"/proj/config.h \
    "$SRC"/proj/config.mk "$SRC"/proj/config.log
[ -s "$WORK/prog.expected" ] || { msg "the project does not build locally"; exit 1; }
msg "project of $NSRC C files and a configure script made"

export GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@localhost
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@localhost
GIT_HOME=$WORK/home
mkdir "$GIT_HOME"

# The status counters of p1, for the pufs rows; STATUS_DIFF holds one
# line per program of the first run.
STATUS_ON=no
declare -A STATUS_DIFF=()
status_before() {
	[ "$STATUS_ON" = yes ] && pufs_status 1 >"$WORK/st.before"
	return 0
}
status_after() {
	[ "$STATUS_ON" = yes ] || return 0
	pufs_status 1 >"$WORK/st.after"
	STATUS_DIFF[$1]=$(python3 - "$WORK/st.before" "$WORK/st.after" <<'EOF'
import json, sys

def flat(v, p, out):
    if isinstance(v, dict):
        for k, w in v.items():
            flat(w, p + "." + k if p else k, out)
    elif isinstance(v, (int, float)) and not isinstance(v, bool):
        out[p] = v
    return out

try:
    a = flat(json.load(open(sys.argv[1])), "", {})
    b = flat(json.load(open(sys.argv[2])), "", {})
except Exception as e:
    print("status unreadable: %s" % e)
    sys.exit(0)
d = {k: b[k] - a.get(k, 0) for k in b
     if isinstance(b[k], int) and b[k] - a.get(k, 0) > 0
     and (k.startswith("ops.") or k.startswith("fuse."))}
print(", ".join("%s %d" % (k, v) for k, v in
                sorted(d.items(), key=lambda kv: -kv[1])) or "nothing")
EOF
)
}

# The three programs through directory $2 (its work/ held by p2) under
# label $1: sets U_$1, G_$1, C_$1, M_$1 and B_$1 (configure + make), s.
measure_programs() {
	local key=$1 d=$2/work i u g c m tag us=() gs=() cs=() ms=() bs=() n out
	for ((i = 1; i <= RUNS; i++)); do
		tag=$key.$i
		[ "$i" = 1 ] || STATUS_ON=no
		mkdir "$d/u.$tag"
		status_before
		# shellcheck disable=SC2016
		u=$(timed sh -c 'tar xf "$1" -C "$2" && sync -f "$2"' - \
		    "$WORK/headers.tar" "$d/u.$tag") ||
		    { msg "$key: untar failed"; return 1; }
		status_after untar
		n=$(find "$E2/work/u.$tag" -type f | wc -l)
		if [ "$n" != "$NH" ]; then
			msg "$key: p2 holds $n files after the untar, not $NH"
			return 1
		fi
		if ! diff -r -q "$SRC/headers" "$E2/work/u.$tag/headers" >/dev/null; then
			msg "$key: what p2 holds after the untar differs from the headers"
			return 1
		fi

		status_before
		# shellcheck disable=SC2016
		g=$(HOME=$GIT_HOME timed sh -c 'mkdir "$1" && cd "$1" &&
		    git init -q && cp -r "$2" . && git add -A &&
		    git commit -q -m x && git fsck --full' - \
		    "$d/g.$tag" "$SRC/headers") ||
		    { msg "$key: git failed"; return 1; }
		status_after git
		n=$(HOME=$GIT_HOME git -C "$E2/work/g.$tag" ls-tree -r HEAD | wc -l)
		if [ "$n" != "$NH" ]; then
			msg "$key: the commit p2 holds has $n files, not $NH"
			return 1
		fi

		cp -r "$SRC/proj" "$d/b.$tag"
		status_before
		c=$(cd "$d/b.$tag" && timed ./configure) ||
		    { msg "$key: configure failed"; return 1; }
		status_after configure
		status_before
		m=$(cd "$d/b.$tag" && timed make -j2) ||
		    { msg "$key: make failed"; return 1; }
		status_after make
		out=$("$E2/work/b.$tag/prog") || true
		if [ "$out" != "$(cat "$WORK/prog.expected")" ]; then
			msg "$key: the program p2 holds prints '$out'"
			return 1
		fi
		rm -rf "$d/u.$tag" "$d/g.$tag" "$d/b.$tag"
		msg "$key: run $i: untar $u s, git $g s, configure $c s, make $m s"
		us+=("$u")
		gs+=("$g")
		cs+=("$c")
		ms+=("$m")
		bs+=("$(awk -v a="$c" -v b="$m" 'BEGIN { printf "%.3f\n", a + b }')")
	done
	STATUS_ON=no
	set_median "U_$key" "${us[@]}"
	set_median "G_$key" "${gs[@]}"
	set_median "C_$key" "${cs[@]}"
	set_median "M_$key" "${ms[@]}"
	set_median "B_$key" "${bs[@]}"
}

ns_link

# 1. raw: p2's export directory itself.
msg "raw: $E2"
measure_programs raw "$E2" || NOTES+=("raw: a program failed")

# 2. passthrough_ll on p2's export directory, locally.
if build_passthrough; then
	"$PT" -f -o "source=$E2" "$MPT" 2>"$WORK/passthrough.log" &
	pid=$!
	PIDS+=("$pid")
	if wait_mounted "$MPT" "$pid"; then
		msg "passthrough_ll mounted at $MPT"
		measure_programs passthrough "$MPT" ||
		    NOTES+=("passthrough_ll: a program failed")
	else
		msg "passthrough_ll did not mount; its log:"
		cat "$WORK/passthrough.log" >&2
		NOTES+=("passthrough_ll: did not mount")
	fi
	stop_pid "$pid"
	unmount "$MPT"
fi

# 3. sshfs from namespace A to a private sshd in namespace B.
SSHFS_PID=
if start_sshd "$ADDR_B" "$SSH_PORT" nsenter --net="/run/netns/$NS_B"; then
	if sshfs_mount ""; then
		msg "sshfs mounted at $MSSH (default options)"
		measure_programs sshfs "$MSSH" || NOTES+=("sshfs: a program failed")
		sshfs_stop
	else
		NOTES+=("sshfs: did not mount")
	fi
	stop_pid "$SSHD_PID"
else
	msg "sshd cannot be started; sshfs rows skipped"
	NOTES+=("sshfs: sshd could not be started")
fi

# 4. pufs: p1 in namespace A, p2 in namespace B; p1's mount is measured.
if pufs_start_both "$E1" "$M1" "$E2" "$M2"; then
	msg "pufs p1 mounted at $M1, p2 at $M2, both up"
	STATUS_ON=yes
	measure_programs pufs "$M1" || NOTES+=("pufs: a program failed")
else
	NOTES+=("pufs: the two peers did not start (see the logs above)")
fi
pufs_stop

# Print $1 / $2 (times: the second's speed over the first's) with a
# trailing ×, or "-".
speed() {
	local r
	r=$(ratio "$1" "$2")
	[ "$r" = - ] && echo - || echo "$r×"
}

# One row: label, variable prefix, target against sshfs.
row() {
	local p=$2
	echo "| $1 | $(fig "${p}_raw") | $(fig "${p}_passthrough")" \
	    "| $(fig "${p}_sshfs") | $(fig "${p}_pufs")" \
	    "| $(speed "${p}_sshfs" "${p}_pufs") | $3" \
	    "| $(speed "${p}_passthrough" "${p}_pufs") |"
}

fstype=$(findmnt -n -o FSTYPE -T "$WORKPARENT" 2>/dev/null ||
    stat -f -c %T "$WORKPARENT")
cat <<EOF
Programs on files held by peer p2 ($ADDR_B), run from namespace
$ADDR_A's side over a veth pair through pufs (p1's mount) and sshfs
(default options); raw and passthrough_ll are local baselines on p2's
export directory.  Commit $COMMIT, median of $RUNS runs, seconds.
untar: tar xf + sync -f of $NH headers from /usr/include in $NHDIRS
directories ($NHBYTES bytes).  git: git init, cp -r of the same tree,
git add -A, git commit, git fsck --full.  configure: a shell script of
25 compiler probes writing config.h; make: make -j2 of $((NSRC + 1)) C
files into a program.  pufs cache.attr_timeout=$ATTR_TIMEOUT.  Kernel
$(uname -r), $(nproc) CPUs, work directory on $fstype.  Load average
(1, 5, 15 min) $LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end.

| program | raw | passthrough | sshfs | pufs | speed vs sshfs | target | speed vs passthrough |
|---|--:|--:|--:|--:|--:|--:|--:|
$(row "untar" U "4×")
$(row "git add+commit+fsck" G "2.5×")
$(row "configure" C "")
$(row "make -j2" M "")
$(row "configure + make" B "1.3×")

Speed vs X is X's time over pufs's time: above 1× pufs is faster.

What pufs p1 counted during each program of its first run (status
counters ops.* and fuse.*, after minus before):

- untar: ${STATUS_DIFF[untar]:-unknown}
- git: ${STATUS_DIFF[git]:-unknown}
- configure: ${STATUS_DIFF[configure]:-unknown}
- make: ${STATUS_DIFF[make]:-unknown}
EOF
print_notes
