#!/bin/bash
#
# pufs status: the text report and the --json object of a running
# single peer (name, URI, uptime, clock, exports, peers, cache, traps,
# operation counters), counters that move, and exit 1 when no daemon
# answers.

. "$(dirname "$0")/lib.sh"

E=$TRASH/export
R=$TRASH/archive
M=$TRASH/mnt

# Run python CODE with the JSON status of daemon alpha as "s".
json_check () {
	pufs_try 0 status -s "$(pufs_sock alpha)" --json &&
	"$PYTHON" -c "
import json, sys
s = json.load(open('out'))
$1
"
}

# Print the value of KEY of the JSON status of alpha (a number, or for
# an object the sum of its values).
json_get () {
	pufs_try 0 status -s "$(pufs_sock alpha)" --json >/dev/null &&
	"$PYTHON" -c '
import json, sys
v = json.load(open("out"))[sys.argv[1]]
print(sum(v.values()) if isinstance(v, dict) else v)
' "$1"
}

test_expect_success 'setup: a daemon with two exports' '
	mkdir -p "$E" "$R" "$M" &&
	echo hello >"$E/hello" &&
	echo old >"$R/old" &&
	cat >status.ini <<-EOF &&
	[export:main]
	path = $E
	[export:arch]
	path = $R
	at = /arch
	read_only = yes
	EOF
	pufs_start alpha "$M" -c "$TRASH/status.ini" -o cache.attr_timeout=0.2
'

test_expect_success 'status prints name, URI, exports, cache, traps' '
	pufs_try 0 status -s "$(pufs_sock alpha)" &&
	cat out &&
	test_output "" cat err &&
	grep alpha out &&
	grep "127.0.0.1:$(pufs_port alpha)" out &&
	grep "$E" out &&
	grep "$R" out &&
	grep "/arch" out &&
	grep -i uptime out &&
	grep -i offset out &&
	grep -i cache out &&
	grep -i hits out &&
	grep -i misses out &&
	grep -i trap out
'

test_expect_success 'status --json is one object with every key' '
	json_check "
for k in (\"name\", \"uri\", \"uptime\", \"clock\", \"exports\", \"peers\",
          \"cache\", \"traps\", \"ops\"):
    assert k in s, k
assert isinstance(s[\"clock\"][\"offset\"], (int, float)), s[\"clock\"]
assert isinstance(s[\"clock\"][\"error\"], (int, float)), s[\"clock\"]
for k in (\"entries\", \"bytes\", \"hits\", \"misses\"):
    assert isinstance(s[\"cache\"][k], int) and s[\"cache\"][k] >= 0, k
for k in (\"sent\", \"received\"):
    assert isinstance(s[\"traps\"][k], int) and s[\"traps\"][k] >= 0, k
assert isinstance(s[\"ops\"], dict), s[\"ops\"]
for k, v in s[\"ops\"].items():
    assert isinstance(v, int) and v >= 0, (k, v)
assert isinstance(s[\"uptime\"], (int, float)) and s[\"uptime\"] >= 0
"
'

test_expect_success 'status --json: name, URI, exports, no peers' '
	json_check "
assert s[\"name\"] == \"alpha\", s[\"name\"]
assert s[\"uri\"] == \"127.0.0.1:$(pufs_port alpha)\", s[\"uri\"]
assert s[\"peers\"] == [], s[\"peers\"]
ex = sorted(s[\"exports\"], key=lambda e: e[\"name\"])
want = [
    {\"name\": \"arch\", \"path\": \"$R\", \"at\": \"/arch\", \"read_only\": True},
    {\"name\": \"main\", \"path\": \"$E\", \"at\": \"/\", \"read_only\": False},
]
assert ex == want, ex
"
'

test_expect_success 'uptime grows' '
	u0=$(json_get uptime) &&
	wait_for "test \$(json_get uptime | cut -d. -f1) -gt ${u0%.*}" 5
'

test_expect_success 'operation counters move when the mount is used' '
	n0=$(json_get ops) &&
	for i in $(seq 1 50); do
		echo $i >"$M/f$i" && cat "$M/f$i" >/dev/null &&
		stat "$M/f$i" >/dev/null || return 1
	done &&
	ls -l "$M" >/dev/null &&
	n1=$(json_get ops) &&
	echo "ops $n0 -> $n1" &&
	test "$n1" -ge $((n0 + 100))
'

test_expect_success 'the text and the JSON report agree' '
	json_check "print(s[\"name\"]); print(s[\"uri\"])" >fromjson &&
	pufs_try 0 status -s "$(pufs_sock alpha)" &&
	while read -r v; do
		grep -F -- "$v" out || return 1
	done <fromjson
'

test_expect_success 'status answers quickly while the mount is busy' '
	(dd if=/dev/zero of="$M/busy" bs=1M count=200 2>/dev/null; echo done >busy.done) &
	test_when_finished "rm -f \"$E/busy\"" &&
	start=$(date +%s%N) &&
	pufs_try 0 status -s "$(pufs_sock alpha)" &&
	end=$(date +%s%N) &&
	test $(( (end - start) / 1000000 )) -lt 2000 &&
	wait_for "test -e busy.done" 60
'

test_expect_success 'a listing read only in part leaves no inode behind' '
	mkdir -p "$E/many" &&
	(cd "$E/many" && seq -f "entry-with-a-longish-name-%g" 3000 |
		xargs touch) &&
	sync && echo 2 >/proc/sys/vm/drop_caches &&
	wait_for "test \$(json_get inodes) -le 1" 5 &&
	"$PYTHON" -c "
import os, sys
it = os.scandir(sys.argv[1])
next(it)
it.close()
" "$M/many" &&
	test "$(json_get inodes)" -gt 100 &&
	echo 2 >/proc/sys/vm/drop_caches &&
	wait_for "test \$(json_get inodes) -le 1" 5
'

test_expect_success 'debug advance moves the clock the uptime counts' '
	up0=$(json_get uptime) &&
	pufs_try 0 debug -s "$(pufs_sock alpha)" advance 100000 &&
	test_output "advanced 100000 ms" cat out &&
	up1=$(json_get uptime) &&
	"$PYTHON" -c "assert $up1 - $up0 >= 100, ($up0, $up1)"
'

test_expect_success 'debug advance: bad usage exits 2, refused without time_control' '
	pufs_try 2 debug -s "$(pufs_sock alpha)" advance &&
	pufs_try 2 debug -s "$(pufs_sock alpha)" advance -5 &&
	pufs_try 2 debug -s "$(pufs_sock alpha)" forward 5 &&
	mkdir -p "$TRASH/m2" &&
	pufs_start beta "$TRASH/m2" -o debug.time_control=off &&
	pufs_try 1 debug -s "$(pufs_sock beta)" advance 10 &&
	grep "debug.time_control is off" err &&
	pufs_stop beta
'

test_expect_success 'status of a stopped daemon exits 1' '
	pufs_stop alpha &&
	pufs_try 1 status -s "$(pufs_sock alpha)" &&
	test -s err &&
	pufs_try 1 status -s "$(pufs_sock alpha)" --json &&
	test -s err
'

test_done
