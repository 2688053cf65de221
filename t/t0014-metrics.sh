#!/bin/bash
#
# [peer] metrics: GET /metrics in the Prometheus text format.  The page
# is checked line by line (every family has HELP and TYPE before its
# samples, names and labels follow node_exporter's rules, histogram
# buckets are cumulative and end in +Inf = _count), by promtool, against
# every figure of `pufs status --json`, and again after work to see the
# counters rise; a second peer shows up by state and in the calls'
# histograms by peer.  Other paths get 404, other methods 405; a bad address
# is refused at start.

. "$(dirname "$0")/lib.sh"

test_require curl promtool

E=$TRASH/export
M=$TRASH/mnt
MPORT=$(_next_port)
URL=http://127.0.0.1:$MPORT/metrics

# scrape FILE: GET /metrics into FILE, headers into FILE.h.
scrape () {
	curl -sS -D "$1.h" -o "$1" --max-time 10 "$URL" &&
	grep -q "^HTTP/1.1 200" "$1.h" &&
	grep -qi "^content-type: text/plain; version=0.0.4" "$1.h"
}

# check_format FILE: the text format, line by line.
check_format () {
	"$PYTHON" - "$1" <<-'EOF'
	import re, sys
	name_re = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
	sample = re.compile(r'^(%s)(\{(.*)\})? (\S+)$' % name_re)
	label = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"(,|$)')
	helps, types, seen_samples = {}, {}, set()
	hist = {}
	for n, line in enumerate(open(sys.argv[1]), 1):
	    line = line.rstrip('\n')
	    where = '%d: %r' % (n, line)
	    if line.startswith('# HELP '):
	        name = line.split(' ')[2]
	        assert name not in helps, 'second HELP ' + where
	        assert len(line.split(' ', 3)) == 4, 'HELP without text ' + where
	        helps[name] = n
	        continue
	    if line.startswith('# TYPE '):
	        _, _, name, typ = line.split(' ')
	        assert name in helps, 'TYPE before HELP ' + where
	        assert name not in types, 'second TYPE ' + where
	        assert typ in ('counter', 'gauge', 'histogram'), where
	        assert name.startswith('pufs_'), 'no pufs_ prefix ' + where
	        if typ == 'counter':
	            assert name.endswith('_total'), 'counter without _total ' + where
	        else:
	            assert not name.endswith('_total'), '_total on a ' + typ + ' ' + where
	        types[name] = typ
	        continue
	    assert line and not line.startswith('#'), 'stray line ' + where
	    m = sample.match(line)
	    assert m, 'bad sample ' + where
	    name, labels, value = m.group(1), m.group(3) or '', m.group(4)
	    fam = name
	    for suffix in ('_bucket', '_sum', '_count'):
	        if name.endswith(suffix) and name[:-len(suffix)] in types and \
	           types[name[:-len(suffix)]] == 'histogram':
	            fam = name[:-len(suffix)]
	    assert fam in types, 'sample before its TYPE ' + where
	    assert fam == name or types[fam] == 'histogram', where
	    float(value)
	    assert value not in ('NaN',), where
	    pairs, pos = {}, 0
	    while pos < len(labels):
	        lm = label.match(labels, pos)
	        assert lm, 'bad labels ' + where
	        pairs[lm.group(1)] = lm.group(2)
	        pos = lm.end()
	    key = (name, tuple(sorted(pairs.items())))
	    assert key not in seen_samples, 'duplicate sample ' + where
	    seen_samples.add(key)
	    if types[fam] == 'histogram':
	        le = pairs.pop('le', None)
	        h = hist.setdefault((fam, tuple(sorted(pairs.items()))),
	                            {'buckets': [], 'count': None, 'sum': None})
	        if name.endswith('_bucket'):
	            assert le is not None, where
	            h['buckets'].append((float(le), float(value)))
	        elif name.endswith('_count'):
	            h['count'] = float(value)
	        else:
	            h['sum'] = float(value)
	for name in helps:
	    assert name in types, 'HELP without TYPE: ' + name
	assert hist, 'no histogram samples'
	for key, h in hist.items():
	    b = h['buckets']
	    assert b and b[-1][0] == float('inf'), ('no +Inf bucket', key)
	    for (l0, c0), (l1, c1) in zip(b, b[1:]):
	        assert l1 > l0, ('bounds not rising', key)
	        assert c1 >= c0, ('buckets not cumulative', key, b)
	    assert h['count'] == b[-1][1], ('+Inf is not _count', key)
	    assert h['sum'] is not None and h['sum'] >= 0, key
	print('%d families, %d samples, %d histograms' %
	      (len(types), len(seen_samples), len(hist)))
	EOF
}

# value FILE SAMPLE: the value of the sample written exactly so.
value () {
	awk -v s="$2" '$1 == s { print $2; f = 1 } END { exit !f }' "$1"
}

# check_figures STATUS PAGE: every figure of the JSON status is a sample
# of the page, equal where it cannot have moved between the two asks.
check_figures () {
	"$PYTHON" - "$1" "$2" <<-'EOF'
	import json, sys
	s = json.load(open(sys.argv[1]))
	page = {}
	for line in open(sys.argv[2]):
	    if not line.startswith('#'):
	        k, v = line.rsplit(' ', 1)
	        page[k] = float(v)
	def has(sample, want=None):
	    assert sample in page, 'missing ' + sample
	    if want is not None:
	        assert page[sample] == want, (sample, page[sample], want)
	# Figures that do not move between the two asks must be equal;
	# the rest must be there.
	d, c, t, l, w = s['data'], s['cache'], s['traps'], s['locate'], s['workers']
	fig = {
	  'pufs_uptime_seconds': None,
	  'pufs_clock_offset_seconds': s['clock']['offset'],
	  'pufs_clock_error_seconds': s['clock']['error'],
	  'pufs_discovery_datagrams_total{state="sent"}': s['discovery']['sent'],
	  'pufs_discovery_datagrams_total{state="received"}': s['discovery']['received'],
	  'pufs_discovery_datagrams_total{state="dropped"}': s['discovery']['dropped'],
	  'pufs_peers_known': s['discovery']['peers_known'],
	  'pufs_peer_addresses': s['discovery']['addresses'],
	  'pufs_trap_senders': s['discovery']['trap_senders'],
	  'pufs_cache_entries': None, 'pufs_cache_bytes': None,
	  'pufs_cache_budget_bytes': c['budget'],
	  'pufs_cache_lookups_total{result="hit"}': None,
	  'pufs_cache_lookups_total{result="miss"}': None,
	  'pufs_cache_lookups_total{result="stale"}': None,
	  'pufs_cache_expired_total': None, 'pufs_cache_evicted_total': None,
	  'pufs_locate_sent_total': l['sent'],
	  'pufs_locate_answers_total': l['answers'],
	  'pufs_locate_late_total': l['late'],
	  'pufs_locate_fallbacks_total': l['fallbacks'],
	  'pufs_locate_served_total': l['served'],
	  'pufs_listings_total{kind="full"}': None,
	  'pufs_listings_total{kind="delta"}': None,
	  'pufs_data_cache_blocks{state="clean"}': d['clean_blocks'],
	  'pufs_data_cache_blocks{state="dirty"}': d['dirty_blocks'],
	  'pufs_data_cache_bytes': d['bytes'],
	  'pufs_data_cache_dirty_bytes': d['dirty_bytes'],
	  'pufs_data_cache_budget_bytes': d['budget'],
	  'pufs_data_reads_total{result="hit"}': d['read_hits'],
	  'pufs_data_reads_total{result="miss"}': d['read_misses'],
	  'pufs_data_reads_total{result="bypass"}': d['read_bypass'],
	  'pufs_data_readahead_total{result="hit"}': d['readahead_hits'],
	  'pufs_data_readahead_total{result="miss"}': d['readahead_misses'],
	  'pufs_data_written_back_bytes_total': d['written_back'],
	  'pufs_data_writeback_frames_total': d['writeback_frames'],
	  'pufs_data_writeback_errors_total': d['writeback_errors'],
	  'pufs_data_write_waits_total': d['write_waits'],
	  'pufs_data_fsyncs_total{sent="behind"}': d['fsync_behind'],
	  'pufs_data_fsyncs_total{sent="after"}': d['fsync_after'],
	  'pufs_data_setattrs_behind_total': d['setattr_behind'],
	  'pufs_data_setattrs_deferred_total': d['setattr_deferred'],
	  'pufs_data_cache_dropped_blocks_total{reason="evicted"}': d['evicted'],
	  'pufs_data_cache_dropped_blocks_total{reason="invalidated"}': d['invalidated'],
	  'pufs_name_checks_total': s['checks']['done'],
	  'pufs_name_checks_local_total': s['checks']['local'],
	  'pufs_name_check_calls_total': s['checks']['calls'],
	  'pufs_moves_total': s['moves']['done'],
	  'pufs_moved_bytes_total': s['moves']['bytes'],
	  'pufs_moves_failed_total': s['moves']['failed'],
	  'pufs_traps_sent_total': t['sent'],
	  'pufs_traps_received_total': t['received'],
	  'pufs_trap_records_total{state="noted"}': t['noted'],
	  'pufs_trap_records_total{state="merged"}': t['merged'],
	  'pufs_trap_records_total{state="sent"}': t['records_sent'],
	  'pufs_trap_records_total{state="unsendable"}': t['unsendable'],
	  'pufs_trap_records_total{state="applied"}': t['records_applied'],
	  'pufs_trap_records_total{state="disk"}': t['disk'],
	  'pufs_trap_gaps_total': t['gaps'],
	  'pufs_trap_resyncs_total': t['resyncs'],
	  'pufs_inodes': s['inodes'],
	  'pufs_open_files': s['open_files'],
	  'pufs_fuse_requests_total': None,
	  'pufs_calls_in_flight': None,
	  'pufs_call_timeouts_total': s['fuse']['timeouts'],
	  'pufs_worker_threads': w['threads'],
	  'pufs_workers_busy': None, 'pufs_worker_queue_length': None,
	  'pufs_worker_requests_total': None,
	  'pufs_worker_queue_wait_max_seconds': None,
	  'pufs_loop_lag_max_seconds': None,
	}
	for k, v in fig.items():
	    has(k, v)
	has('pufs_info{peer="%s",uri="%s",version="%s",boot_id="%s"}'
	    % (s['name'], s['uri'], s['version'], s['boot_id']), 1)
	has('pufs_clock_info{reference="%s"}' % s['clock']['reference'], 1)
	dd = s['discovery']
	has('pufs_discovery_info{mode="%s",group="%s",port="%d"}'
	    % (dd['mode'], dd['group'], dd['port']), 1)
	for p in s['peers']:
	    has('pufs_peer_exports{peer="%s"}' % p['name'], p['exports'])
	for op in s['ops']:
	    has('pufs_calls_total{op="%s"}' % op)
	for e in s['exports']:
	    has('pufs_export_info{export="%s",path="%s",at="%s",read_only="%s"}'
	        % (e['name'], e['path'], e['at'], str(e['read_only']).lower()), 1)
	assert page['pufs_fuse_requests_total'] >= s['fuse']['requests']
	print(len(fig), 'figures')
	EOF
}

# check_rise BEFORE AFTER: no counter fell; work made these rise.
check_rise () {
	"$PYTHON" - "$1" "$2" <<-'EOF'
	import sys
	def load(f):
	    page, types = {}, {}
	    for line in open(f):
	        if line.startswith('# TYPE '):
	            _, _, n, t = line.split()
	            types[n] = t
	        elif not line.startswith('#'):
	            k, v = line.rstrip('\n').rsplit(' ', 1)
	            page[k] = float(v)
	    return page, types
	a, types = load(sys.argv[1])
	b, _ = load(sys.argv[2])
	def fam(k):
	    n = k.split('{')[0]
	    for s in ('_bucket', '_sum', '_count'):
	        if n.endswith(s) and types.get(n[:-len(s)]) == 'histogram':
	            return n[:-len(s)]
	    return n
	for k, v in a.items():
	    if types[fam(k)] in ('counter', 'histogram'):
	        assert k in b and b[k] >= v, ('counter fell', k, v, b.get(k))
	for k in ('pufs_fuse_requests_total', 'pufs_calls_total{op="create"}',
	          'pufs_calls_total{op="write"}', 'pufs_worker_requests_total'):
	    assert b[k] > a.get(k, 0), ('did not rise', k, a.get(k), b[k])
	for h in ('pufs_fuse_request_duration_seconds_count{op="create"}',
	          'pufs_fuse_request_duration_seconds_count{op="mkdir"}',
	          'pufs_fuse_request_duration_seconds_count{op="unlink"}',
	          'pufs_call_duration_seconds_count{peer="alpha",op="create"}',
	          'pufs_call_duration_seconds_count{peer="alpha",op="unlink"}'):
	    assert b.get(h, 0) > a.get(h, 0), ('histogram did not rise', h)
	EOF
}

test_expect_success 'setup: a daemon serving metrics' '
	mkdir -p "$E" "$M" &&
	echo hello >"$E/hello" &&
	pufs_opts beta >/dev/null &&
	pufs_start alpha "$M" -e "$E" -o "peer.metrics=127.0.0.1:$MPORT" \
	    -o "peer.peers=127.0.0.1:$(pufs_port beta)" &&
	grep "metrics: serving http://127.0.0.1:$MPORT/metrics" "$(pufs_log alpha)"
'

test_expect_success 'GET /metrics: 200, text format 0.0.4, line by line' '
	cat "$M/hello" >/dev/null &&
	scrape m1 &&
	check_format m1 &&
	grep "^pufs_info{peer=\"alpha\",uri=\"127.0.0.1:$(pufs_port alpha)\",version=\"" m1 &&
	grep "^pufs_export_info{export=\"e0\",path=\"$E\",at=\"/\",read_only=\"false\"} 1$" m1
'

test_expect_success 'promtool check metrics accepts the page' '
	promtool check metrics <m1 >lint 2>&1 ||
	{ cat lint; false; } &&
	test_output "" cat lint
'

test_expect_success 'every figure of pufs status --json is there' '
	pufs_try 0 status -s "$(pufs_sock alpha)" --json &&
	scrape m2 &&
	check_figures out m2
'

test_expect_success 'counters rise with work; so do the histograms' '
	scrape before &&
	for i in 1 2 3 4 5; do echo "$i" >"$M/f$i" && cat "$M/f$i" >/dev/null || return 1; done &&
	mkdir "$M/d" && ls "$M/d" >/dev/null && rm "$M/f1" &&
	scrape after &&
	check_format after &&
	check_rise before after
'

test_expect_success 'a second peer: its state, round trip, calls by peer' '
	mkdir -p eb mb &&
	echo b >eb/fb &&
	pufs_start beta mb -e "$TRASH/eb" \
	    -o "peer.peers=127.0.0.1:$(pufs_port alpha)" &&
	wait_for "test -e $M/fb" &&
	test_output b cat "$M/fb" &&
	scrape m4 &&
	check_format m4 &&
	uri=127.0.0.1:$(pufs_port beta) &&
	grep -x "pufs_peer_state{peer=\"beta\",uri=\"$uri\",state=\"up\"} 1" m4 &&
	grep -x "pufs_peer_state{peer=\"beta\",uri=\"$uri\",state=\"down\"} 0" m4 &&
	grep "^pufs_peer_rtt_seconds{peer=\"beta\"} " m4 &&
	grep -x "pufs_peer_exports{peer=\"beta\"} 1" m4 &&
	grep "^pufs_call_duration_seconds_count{peer=\"beta\",op=\"open\"} [1-9]" m4 &&
	grep "^pufs_call_duration_seconds_count{peer=\"alpha\",op=\"create\"} [1-9]" m4 &&
	pufs_stop beta &&
	wait_for "scrape m5 && grep -qx \"pufs_peer_state{peer=.beta.,uri=.$uri.,state=.down.} 1\" m5" &&
	grep "^pufs_call_duration_seconds_count{peer=\"beta\",op=\"open\"} [1-9]" m5
'

test_expect_success 'HEAD /metrics answers with headers alone' '
	curl -sS -I --max-time 10 "$URL" >head &&
	grep "^HTTP/1.1 200" head &&
	grep -i "^content-type: text/plain; version=0.0.4" head
'

test_expect_success 'other paths get 404, other methods 405' '
	for p in / /metric /metrics/ /metricsx /favicon.ico; do
		test "$(curl -s -o /dev/null -w "%{http_code}" --max-time 10 \
		    "http://127.0.0.1:$MPORT$p")" = 404 || return 1
	done &&
	test "$(curl -s -o /dev/null -w "%{http_code}" --max-time 10 \
	    "$URL?x=1")" = 200 &&
	for m in POST PUT DELETE; do
		test "$(curl -s -o /dev/null -w "%{http_code}" --max-time 10 \
		    -X $m "$URL")" = 405 || return 1
	done &&
	curl -s -D h -o /dev/null -X POST --max-time 10 "$URL" &&
	grep -i "^allow: GET, HEAD" h
'

test_expect_success 'a client that says nothing does not stop the page' '
	"$PYTHON" -c "
import socket, sys, time
s = socket.create_connection((\"127.0.0.1\", $MPORT))
s.send(b\"GET /met\")
open(\"held\", \"w\").close()
time.sleep(30)
" &
	held=$! &&
	test_when_finished "kill $held 2>/dev/null; wait $held 2>/dev/null; true" &&
	wait_for "test -e held" &&
	scrape m3 &&
	pufs_try 0 status -s "$(pufs_sock alpha)"
'

test_expect_success 'bad metrics addresses are refused before mounting' '
	mkdir -p mnt2 &&
	pufs_try_mount 2 beta -o peer.metrics=nowhere mnt2 &&
	grep "peer.metrics: bad address .nowhere." err &&
	pufs_try_mount 2 beta -o peer.metrics=127.0.0.1:70000 mnt2 &&
	grep "peer.metrics: bad address" err &&
	! is_mounted "$TRASH/mnt2"
'

test_expect_success 'a metrics port in use: exit 1, named, nothing mounted' '
	pufs_try_mount 1 beta -o "peer.metrics=127.0.0.1:$MPORT" mnt2 &&
	grep "metrics: cannot listen on 127.0.0.1:$MPORT" err &&
	! is_mounted "$TRASH/mnt2"
'

test_expect_success 'without the key nothing listens' '
	pufs_stop alpha &&
	test "$(curl -s -o /dev/null -w "%{http_code}" --max-time 5 "$URL")" = 000
'

test_done
