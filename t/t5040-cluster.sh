#!/bin/bash
#
# Replicated directories: four peers, p1 to p3 holding replicas of
# [cluster:www] at /www, p4 none.
#
# - One view: /www appears once on every peer, with one name per file
#   (no NAME@URI among replicas); a file written from each peer is on
#   all three replicas when close(2) returns.
# - Write-behind: the frames written back from p4 go to every replica
#   (counted in its status), the same bytes and times on each, with no
#   copy of the whole file at fsync or close; a replica that comes back
#   while a file is open for writing gets the file copied at its close;
#   replicas killed while a file is open for writing (two, one after the
#   other) leave the writer going on, its close without an error, and
#   every replica with the bytes written.
# - Balance: with roundrobin, each replica serves 20% to 45% of the
#   reads of a 300-file tree read from p4, counted by their status.
# - Failover: a reader streaming 64 MiB from p4 survives the two
#   replicas that serve it killed one after the other mid-read, and its
#   data checksums right.
# - Resync: files created, changed, renamed and removed while p1 and p2
#   were down are on them within 10 s of their return, and until a
#   replica says it is in sync it serves no read.
# - Rejoin: a reader on p4 of files made while two replicas were away
#   never hangs nor fails as they come back: while no live replica is
#   in sync, its calls wait for one.
# - Conflicts: p3 cut off by nftables; both sides change one file; once
#   the cut is gone both versions remain: the later change (by global
#   time, not mtime) keeps the name, the other is www/conf@URI-of-p3,
#   the same on every replica and mount; a file p3 removed meanwhile is
#   gone from every replica, one p1 removed too.
# - Every replica down: a read fails with EIO within op_timeout.

T_DIR=$(cd "$(dirname "$0")" && pwd -P)
. "$T_DIR/lib.sh"
. "$T_DIR/lib-peers.sh"

test_require nft

# The replica directory of peer K.
www () { echo "$TRASH/p$1/www"; }

# start K: peer K, with its replica if K <= 3.
start () {
	local k=$1 ini=$TRASH/p$1.ini
	if [ "$k" -le 3 ]; then
		mkdir -p "$(www "$k")" &&
		printf '[cluster:www]\npath = %s\nat = /www\nbalance = roundrobin\n' \
		    "$(www "$k")" >"$ini" &&
		peer_start "$k" -c "$ini"
	else
		peer_start "$k"
	fi
}

# cl K FIELD: a field of the cluster www in peer K's status
# (state_reads: its state and reads served, of one status).
cl () {
	peer_status "$1" | "$PYTHON" -c '
import json, sys
s = json.load(sys.stdin)
c = [c for c in s["clusters"] if c["name"] == "www"]
if not c:
    print("none")
    sys.exit(0)
c = c[0]
f = sys.argv[1]
if f == "replicas":
    print(" ".join("%s=%s" % (r["peer"], r["state"].replace(" ", "_"))
                   for r in c["replicas"]))
elif f == "state_reads":
    print(c["state"].replace(" ", "_"), c["reads"])
elif f.startswith("resync."):
    print(c["resync"][f[7:]])
else:
    print(c[f])
' "$2"
}

# writing_on: the replica p4's one file open for writing goes through
# ("none" unless there is exactly one); writers: how many p4 has.
writing_on () {
	peer_status 4 | "$PYTHON" -c '
import json, sys
s = json.load(sys.stdin)
c = [c for c in s["clusters"] if c["name"] == "www"][0]
w = [r["peer"][1:] for r in c["replicas"] for i in range(r["writing"])]
print(w[0] if len(w) == 1 else "none")
'
}
writers () {
	peer_status 4 | "$PYTHON" -c '
import json, sys
s = json.load(sys.stdin)
c = [c for c in s["clusters"] if c["name"] == "www"][0]
print(sum(r["writing"] for r in c["replicas"]))
'
}

# all_in_sync K: peer K sees the three replicas in sync.
all_in_sync () {
	test "$(cl "$1" replicas)" = "p1=in_sync p2=in_sync p3=in_sync"
}

# same_tree DIR...: the trees (names, types, sizes, contents) agree.
same_tree () {
	local a=$1 d
	shift
	for d in "$@"; do
		diff -r "$a" "$d" || return 1
	done
}

test_expect_success 'setup: p1 to p3 hold www (p1 some files), p4 none' '
	peers_net_setup 4 &&
	mkdir -p "$(www 1)/sub" &&
	echo one >"$(www 1)/a" &&
	echo two >"$(www 1)/sub/b" &&
	for k in 1 2 3 4; do start $k || exit 1; done &&
	peers_wait_all_up 4 &&
	for k in 1 2 3 4; do
		wait_for "all_in_sync $k" 15 || { cl $k replicas; exit 1; }
	done
'

test_expect_success 'status shows the set and each replica state' '
	peer_status 4 >st4 &&
	grep -q "\"clusters\":\[{\"name\":\"www\"" st4 &&
	"$PUFS" status -s "$(peer_sock 2)" >st2.txt &&
	grep -q "^  www .*here: in sync" st2.txt &&
	grep -q "replica p3 .* in sync" st2.txt
'

test_expect_success 'a first join copies what one replica had to the others' '
	for k in 2 3; do
		test "$(cat "$(www $k)/a")" = one &&
		test "$(cat "$(www $k)/sub/b")" = two || exit 1
	done
'

test_expect_success 'one view: /www once, each name once, on every mount' '
	for k in 1 2 3 4; do
		test "$(ls "$(peer_mnt $k)" | grep -c "^www")" = 1 &&
		test "$(ls "$(peer_mnt $k)/www" | tr "\n" " ")" = "a sub " ||
		{ ls -la "$(peer_mnt $k)" "$(peer_mnt $k)/www"; exit 1; }
	done &&
	i1=$(stat -c %i "$M1/www/a") && i4=$(stat -c %i "$M4/www/a") &&
	test "$i1" = "$i4"
'

test_expect_success 'a file written from each peer is on all three replicas, emptied on all' '
	for k in 1 2 3 4; do
		echo "from p$k" >"$(peer_mnt $k)/www/from$k" || exit 1
		for j in 1 2 3; do
			test "$(cat "$(www $j)/from$k")" = "from p$k" ||
			{ echo "from$k not on p$j"; exit 1; }
		done
	done &&
	mkdir "$M4/www/d" && echo x >"$M2/www/d/x" &&
	mv "$M3/www/d/x" "$M3/www/d/y" && rm "$M1/www/from1" &&
	for j in 1 2 3; do
		test -f "$(www $j)/d/y" && ! test -e "$(www $j)/d/x" &&
		! test -e "$(www $j)/from1" || { ls -R "$(www $j)"; exit 1; }
	done &&
	wait_for "test -s \"$M4/www/from2\"" 10 &&
	"$PYTHON" "$_LIB/op.py" open "$M4/www/from2" "rdonly|trunc" &&
	for j in 1 2 3; do
		test "$(stat -c %s "$(www $j)/from2")" = 0 ||
		{ echo "from2 not emptied on p$j"; exit 1; }
	done &&
	same_tree "$(www 1)" "$(www 2)" "$(www 3)"
'

# times K NAME: the modification time (ns) of www/NAME on replica K.
times () { stat -c %.9Y "$(www "$1")/$2"; }

test_expect_success 'write-behind: frames go to every replica, fsync copies nothing' '
	copies=$(cl 4 copies) && behind=$(cl 4 mirrored) &&
	dd if=/dev/urandom of=big bs=1M count=8 2>/dev/null &&
	dd if=big of="$M4/www/big" bs=64k conv=fsync 2>/dev/null &&
	dd if=/dev/urandom of=patch bs=4k count=3 2>/dev/null &&
	dd if=patch of=big bs=4k seek=100 conv=notrunc 2>/dev/null &&
	dd if=patch of="$M4/www/big" bs=4k seek=100 conv=notrunc,fsync \
	    2>/dev/null &&
	echo tail >>big && echo tail >>"$M4/www/big" &&
	for j in 1 2 3; do
		cmp big "$(www $j)/big" || { echo "big differs on p$j"; exit 1; }
	done &&
	test "$(times 1 big)" = "$(times 2 big)" &&
	test "$(times 1 big)" = "$(times 3 big)" &&
	test "$(cl 4 copies)" = "$copies" &&
	test "$(cl 4 mirrored)" -ge $((behind + 2 * (8 << 20))) &&
	test "$(cl 4 desyncs)" = 0
'

test_expect_success 'write-behind: replicas killed mid-write: the writer goes on' '
	head -c 8388608 /dev/urandom >dying.src &&
	rm -f half threequarters &&
	{ "$PYTHON" - "$M4/www/dying" dying.src >writer.out 2>&1 <<-\EOF &
	import os, sys, time
	data = open(sys.argv[2], "rb").read()
	fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
	def part(lo, hi, flag, wait):
	    for o in range(lo, hi, 1 << 20):
	        os.write(fd, data[o:o + (1 << 20)])
	    os.fsync(fd)
	    open(flag, "w").close()
	    deadline = time.time() + 30
	    while not os.path.exists(wait) and time.time() < deadline:
	        time.sleep(0.05)
	part(0, 4 << 20, "half", "killed1")
	part(4 << 20, 6 << 20, "threequarters", "killed2")
	part(6 << 20, 8 << 20, "all", "all")
	os.close(fd)
	print("closed")
	EOF
	} &&
	wpid=$! &&
	fo=$(cl 4 failovers) &&
	wait_for "test -e half" 20 &&
	wait_for "test \"\$(writers)\" = 1" 10 &&
	k1=$(writing_on) && echo "the handle is on p$k1" &&
	peer_kill $k1 && touch killed1 &&
	wait_for "test -e threequarters" 20 &&
	k2=$(writing_on) && echo "then on p$k2" && test "$k2" != "$k1" &&
	peer_kill $k2 && touch killed2 &&
	wait $wpid &&
	cat writer.out && grep -qx closed writer.out &&
	k3=$(echo 1 2 3 | tr " " "\n" | grep -vx $k1 | grep -vx $k2) &&
	cmp dying.src "$(www $k3)/dying" &&
	echo "p4 failovers: $fo, then $(cl 4 failovers)" &&
	test "$(cl 4 failovers)" -ge $((fo + 2)) &&
	start $k1 && start $k2 &&
	for k in 1 2 3 4; do
		wait_for "all_in_sync $k" 20 || { cl $k replicas; exit 1; }
	done &&
	cmp dying.src "$(www 1)/dying" && cmp dying.src "$(www 2)/dying"
'

test_expect_success 'write-behind: a replica back while a file is open gets a copy' '
	copies=$(cl 4 copies) &&
	peer_stop 3 &&
	wait_for "test \"\$(cl 4 replicas)\" = \"p1=in_sync p2=in_sync p3=down\"" 15 &&
	exec 5>"$M4/www/open" &&
	echo before >&5 &&
	start 3 5>&- &&
	for k in 3 4; do
		wait_for "all_in_sync $k" 20 || { cl $k replicas; exit 1; }
	done &&
	echo after >&5 &&
	exec 5>&- &&
	printf "before\nafter\n" >want &&
	for j in 1 2 3; do
		cmp want "$(www $j)/open" || { echo "open differs on p$j"; exit 1; }
	done &&
	test "$(cl 4 copies)" -gt "$copies"
'

test_expect_success 'balance: each replica serves 20-45% of a 300-file read' '
	mkdir "$M1/www/tree" &&
	for i in $(seq 300); do echo "file $i" >"$M1/www/tree/f$i"; done &&
	for j in 1 2 3; do
		test "$(ls "$(www $j)/tree" | wc -l)" = 300 || exit 1
		eval "r$j=\$(cl $j reads)"
	done &&
	cat "$M4"/www/tree/* | wc -l >lines &&
	test "$(cat lines)" = 300 &&
	tot=0 &&
	for j in 1 2 3; do
		eval "d$j=\$((\$(cl $j reads) - r$j))" &&
		eval "tot=\$((tot + d$j))"
	done &&
	echo "reads served: $d1 $d2 $d3 of $tot" &&
	test $tot -ge 300 &&
	for d in $d1 $d2 $d3; do
		test $((d * 100)) -ge $((tot * 20)) &&
		test $((d * 100)) -le $((tot * 45)) || exit 1
	done
'

cat >reader.py <<-\EOF
	import hashlib, sys, time
	h = hashlib.md5()
	n = 0
	with open(sys.argv[1], "rb", buffering=0) as f:
	    while True:
	        b = f.read(262144)
	        if not b:
	            break
	        h.update(b)
	        n += len(b)
	        with open(sys.argv[2] + ".progress", "w") as p:
	            p.write(str(n))
	        time.sleep(0.03)
	open(sys.argv[2], "w").write(h.hexdigest() + " %d\n" % n)
EOF

# serving: the replica whose read count grows while the reader reads
# (looked at every half second, for 10 s: a loaded machine may leave
# the reader on what it read ahead for a while).
serving () {
	local j a b t
	for j in $1; do eval "a$j=\$(cl $j reads)"; done
	for t in $(seq 20); do
		sleep 0.5
		for j in $1; do
			eval "a=\$a$j"
			b=$(cl $j reads)
			[ "$b" -gt "$a" ] && { echo $j; return 0; }
		done
	done
	return 1
}

test_expect_success 'failover: a 64 MiB read from p4 survives two replicas killed' '
	dd if=/dev/urandom of="$M2/www/big" bs=1M count=64 2>/dev/null &&
	want=$(md5sum <"$(www 2)/big" | cut -d" " -f1) &&
	for j in 1 3; do
		test "$(md5sum <"$(www $j)/big" | cut -d" " -f1)" = "$want" || exit 1
	done &&
	{ timeout -k 2 60 "$PYTHON" reader.py "$M4/www/big" got & } &&
	rpid=$! &&
	wait_for "test -s got.progress && test \$(cat got.progress) -ge 4194304" 10 &&
	s1=$(serving "1 2 3") && echo "first served by p$s1" &&
	peer_kill $s1 &&
	wait_for "test \$(cat got.progress) -ge 16777216" 15 &&
	rest=$(echo 1 2 3 | tr " " "\n" | grep -vx $s1 | tr "\n" " ") &&
	s2=$(serving "$rest") && echo "then served by p$s2" &&
	peer_kill $s2 &&
	wait $rpid &&
	echo "want $want" && cat got &&
	test "$(cut -d" " -f1 got)" = "$want" &&
	test "$(cut -d" " -f2 got)" = 67108864 &&
	test "$(cl 4 failovers)" -ge 2 &&
	echo "$s1 $s2" >killed
'

test_expect_success 'resync: changes made meanwhile are on them within 10 s' '
	read s1 s2 <killed &&
	live=$(echo 1 2 3 | tr " " "\n" | grep -vx $s1 | grep -vx $s2) &&
	M=$(peer_mnt $live) &&
	mkdir "$M/www/new" &&
	for i in $(seq 200); do echo "new $i" >"$M/www/new/n$i"; done &&
	echo changed >"$M/www/a" &&
	mv "$M/www/sub/b" "$M/www/sub/b2" &&
	rm "$M/www/tree/f7" &&
	rm -r "$M/www/d" &&
	echo "$live" >live &&
	start $s1 && start $s2 &&
	t0=$EPOCHREALTIME &&
	seen=0 &&
	while :; do
		for j in $s1 $s2; do
			set -- $(cl $j state_reads) && st=$1 r=$2 &&
			if [ "$st" != in_sync ] && [ "$r" != 0 ]; then
				echo "p$j served $r reads while $st"; exit 1
			fi
		done
		# A read waits while no replica is in sync, and never hangs.
		timeout -k 2 8 cat "$M4"/www/new/* >/dev/null 2>cat.err
		rc=$?
		if [ $rc = 124 ] || [ $rc = 137 ]; then
			echo "cat of www/new hung (rc $rc)"
			for k in 1 2 3 4; do
				echo "p$k:" && peer_status $k
			done
			exit 1
		fi
		test "$(cl $s1 state)" = "in sync" &&
		test "$(cl $s2 state)" = "in sync" && break
		awk -v a=$t0 -v b=$EPOCHREALTIME "BEGIN { exit !(b - a < 10) }" ||
			{ echo "not in sync after 10 s"; exit 1; }
	done &&
	echo "in sync after $(awk -v a=$t0 -v b=$EPOCHREALTIME "BEGIN { print b - a }") s" &&
	same_tree "$(www $live)" "$(www $s1)" "$(www $s2)" &&
	test "$(cat "$(www $s1)/a")" = changed &&
	test -f "$(www $s2)/sub/b2" && ! test -e "$(www $s2)/sub/b" &&
	! test -e "$(www $s1)/tree/f7" && ! test -e "$(www $s1)/d" &&
	for k in 1 2 3 4; do
		wait_for "all_in_sync $k" 10 || { cl $k replicas; exit 1; }
	done
'

# catloop.sh DIR OUT: cat DIR/* again and again until OUT.stop exists,
# each line of OUT one cat's exit status; one that takes 8 s is a hang.
cat >catloop.sh <<-\EOF
	while ! test -e "$2.stop"; do
		timeout -k 2 8 cat "$1"/* >/dev/null 2>>"$2.err"
		echo $? >>"$2"
	done
EOF

test_expect_success 'rejoin: reads from p4 meanwhile wait, never hang nor fail' '
	test_when_finished "touch cats.stop" &&
	live=$(cat live) &&
	set -- $(echo 1 2 3 | tr " " "\n" | grep -vx $live) &&
	s1=$1 s2=$2 &&
	peer_kill $s1 && peer_kill $s2 &&
	peers_wait_down 4 p$s1 && peers_wait_down 4 p$s2 &&
	M=$(peer_mnt $live) &&
	mkdir "$M/www/again" &&
	for i in $(seq 100); do echo "again $i" >"$M/www/again/n$i"; done &&
	{ sh catloop.sh "$M4/www/again" cats & } &&
	cpid=$! &&
	start $s1 && start $s2 &&
	for k in 1 2 3 4; do
		wait_for "all_in_sync $k" 15 || { cl $k replicas; exit 1; }
	done &&
	wait_for "test -s cats && test \$(wc -l <cats) -ge 2" 20 &&
	touch cats.stop && wait $cpid &&
	echo "cat exit statuses: $(sort cats | uniq -c | tr "\n" " ")" &&
	if grep -qx "12[4-9]\|13[0-9]" cats; then
		echo "a cat hung"
		for k in 1 2 3 4; do peer_status $k; done
		exit 1
	fi &&
	! test -s cats.err && test "$(sort -u cats)" = 0
'

# cut K: drop everything between peer K and the others; heal K: undo.
cut () {
	in_peer "$1" nft -f - <<-EOF
	table inet pufscut {
		chain in { type filter hook input priority 0; iifname "eth0" drop; }
		chain out { type filter hook output priority 0; oifname "eth0" drop; }
	}
	EOF
}
heal () {
	in_peer "$1" nft delete table inet pufscut
}

# heard_since K T PEER...: peer K heard from each PEER after $EPOCHREALTIME T.
heard_since () {
	local k=$1 t=$2
	shift 2
	peer_status "$k" | "$PYTHON" -c '
import json, sys, time
s = json.load(sys.stdin)
t = float(sys.argv[1])
heard = {p["name"]: time.time() - p["last_heard_s"] for p in s["peers"]}
sys.exit(0 if all(heard.get(n, 0) > t for n in sys.argv[2:]) else 1)
' "$t" "$@"
}

test_expect_success 'conflicts: both sides change a file while cut off' '
	echo base >"$M4/www/conf" && echo gone >"$M4/www/gone" &&
	echo keep >"$M4/www/p3gone" &&
	for j in 1 2 3; do test "$(cat "$(www $j)/conf")" = base || exit 1; done &&
	# Made before p3 was last in touch with the others: in sync then
	# (what p3 made after that, it keeps).
	t=$EPOCHREALTIME &&
	wait_for "heard_since 3 $t p1 p2" 5 &&
	cut 3 &&
	peers_wait_down 1 p3 && peers_wait_down 3 p1 && peers_wait_down 3 p2 &&
	wait_for "test \"\$(cl 3 replicas)\" = \"p1=down p2=down p3=in_sync\"" 10 &&
	echo "from p3" >"$M3/www/conf" &&
	echo "only p3" >"$M3/www/p3new" &&
	rm "$M3/www/p3gone" &&
	sleep 0.1 &&
	echo "from p1" >"$M1/www/conf" &&
	# Its mtime says older than p3s; the global time of the change is
	# what decides.
	touch -m -d "2001-01-01 00:00:00" "$M1/www/conf" &&
	rm "$M1/www/gone" &&
	heal 3 &&
	peers_wait_all_up 4 &&
	for k in 1 2 3 4; do
		wait_for "all_in_sync $k" 15 || { cl $k replicas; exit 1; }
	done &&
	for j in 1 2 3; do
		test "$(cat "$(www $j)/conf")" = "from p1" &&
		test "$(cat "$(www $j)/conf@$U3")" = "from p3" &&
		test "$(cat "$(www $j)/p3new")" = "only p3" &&
		! test -e "$(www $j)/p3gone" &&
		! test -e "$(www $j)/gone" || { ls "$(www $j)"; exit 1; }
	done &&
	same_tree "$(www 1)" "$(www 2)" "$(www 3)" &&
	test "$(cat "$M4/www/conf")" = "from p1" &&
	test "$(cat "$M4/www/conf@$U3")" = "from p3" &&
	test "$(cl 3 resync.conflicts)" -ge 1
'

test_expect_success 'every replica down: EIO within op_timeout, no hang' '
	echo last >"$M1/www/last" &&
	exec 7<"$M4/www/last" &&
	peer_kill 1 && peer_kill 2 && peer_kill 3 &&
	peers_wait_down 4 p1 && peers_wait_down 4 p2 && peers_wait_down 4 p3 &&
	t0=$EPOCHREALTIME &&
	! timeout 10 cat <&7 >out 2>err &&
	t1=$EPOCHREALTIME &&
	exec 7<&- &&
	cat err && grep -q "Input/output error" err &&
	awk -v a=$t0 -v b=$t1 "BEGIN { exit !(b - a < 3.5) }"
'

test_done
