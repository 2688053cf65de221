#!/bin/bash
#
# The command line and the configuration: --version, --help, exit
# statuses, error messages that name the file, line and key (or the
# variable, or the -o argument), and the precedence file < environment
# < -o, observed through st_blksize.

. "$(dirname "$0")/lib.sh"

E=$TRASH/export
M=$TRASH/mnt
mkdir -p "$E" "$M"
: >"$E/blk"

test_expect_success '--version prints the version and exits 0' '
	pufs_try 0 --version &&
	test_output "pufs 0.1.0" cat out &&
	test_output "" cat err
'

test_expect_success '--help prints usage on stdout and exits 0' '
	pufs_try 0 --help &&
	grep "mount" out &&
	grep "status" out &&
	grep -i "usage" out &&
	test_output "" cat err
'

test_expect_success 'no command is bad usage' '
	pufs_try 2 &&
	test -s err
'

test_expect_success 'an unknown command is bad usage' '
	pufs_try 2 frobnicate &&
	grep frobnicate err
'

test_expect_success 'an unknown option is bad usage' '
	pufs_try 2 --frobnicate &&
	test -s err &&
	pufs_try_mount 2 bad -x "$M" &&
	test -s err
'

test_expect_success 'mount without a mount point is bad usage' '
	pufs_try_mount 2 bad -e "$E" &&
	test -s err
'

test_expect_success 'mount with two mount points is bad usage' '
	pufs_try_mount 2 bad -e "$E" "$M" "$M" &&
	test -s err
'

test_expect_success 'a missing mount point is an error naming it' '
	pufs_try_mount 2 bad -e "$E" "$TRASH/no-such-mnt" &&
	grep no-such-mnt err
'

test_expect_success 'a missing export directory is an error naming it' '
	pufs_try_mount 2 bad -e "$TRASH/no-such-export" "$M" &&
	grep no-such-export err &&
	pufs_try_mount 2 bad -e "$TRASH/no-such-export:ro" "$M" &&
	grep no-such-export err
'

test_expect_success 'an export that is a file is an error naming it' '
	: >"$TRASH/plainfile" &&
	pufs_try_mount 2 bad -e "$TRASH/plainfile" "$M" &&
	grep plainfile err
'

test_expect_success '-o with a bad value names the argument and key' '
	pufs_try_mount 2 bad -o cache.attr_timeout=abc -e "$E" "$M" &&
	grep -- "cache.attr_timeout" err &&
	grep -- "abc" err
'

test_expect_success '-o with an unknown key or section names it' '
	pufs_try_mount 2 bad -o cache.no_such_key=1 -e "$E" "$M" &&
	grep no_such_key err &&
	pufs_try_mount 2 bad -o nosection.key=1 -e "$E" "$M" &&
	grep nosection err &&
	pufs_try_mount 2 bad -o justaword -e "$E" "$M" &&
	grep justaword err
'

test_expect_success '-o: the bad pair among several is named' '
	pufs_try_mount 2 bad -o cache.attr_timeout=1,cache.block_size=zzz -e "$E" "$M" &&
	grep block_size err &&
	grep zzz err
'

# A file whose line LINE (1-based) is replaced by TEXT: bad_ini LINE TEXT.
bad_ini () {
	cat >pufs.ini <<-EOF &&
	[peer]
	op_timeout = 5
	[cache]
	attr_timeout = 1
	block_size = 128K
	EOF
	sed -i "$1s/.*/$2/" pufs.ini
}

test_expect_success 'a bad duration in the file names file, line and key' '
	bad_ini 4 "attr_timeout = abc" &&
	pufs_try_mount 2 bad -c "$TRASH/pufs.ini" -e "$E" "$M" &&
	grep "pufs.ini:4:" err &&
	grep "attr_timeout" err
'

test_expect_success 'a bad size in the file names file, line and key' '
	bad_ini 5 "block_size = 12Q" &&
	pufs_try_mount 2 bad -c "$TRASH/pufs.ini" -e "$E" "$M" &&
	grep "pufs.ini:5:" err &&
	grep "block_size" err
'

test_expect_success 'a block size that is not a power of two is refused' '
	bad_ini 5 "block_size = 3K" &&
	pufs_try_mount 2 bad -c "$TRASH/pufs.ini" -e "$E" "$M" &&
	grep "pufs.ini:5:" err &&
	grep "block_size" err
'

test_expect_success 'an unknown key in the file names file, line and key' '
	bad_ini 2 "frobnication = 3" &&
	pufs_try_mount 2 bad -c "$TRASH/pufs.ini" -e "$E" "$M" &&
	grep "pufs.ini:2:" err &&
	grep "frobnication" err
'

test_expect_success 'an unknown section in the file names it' '
	bad_ini 3 "[frobs]" &&
	pufs_try_mount 2 bad -c "$TRASH/pufs.ini" -e "$E" "$M" &&
	grep "pufs.ini:3" err &&
	grep "frobs" err
'

test_expect_success 'bad enumerations in the file are refused' '
	bad_ini 2 "discovery = carrier-pigeon" &&
	pufs_try_mount 2 bad -c "$TRASH/pufs.ini" -e "$E" "$M" &&
	grep "pufs.ini:2:" err && grep discovery err &&
	bad_ini 2 "create_policy = whimsy" &&
	pufs_try_mount 2 bad -c "$TRASH/pufs.ini" -e "$E" "$M" &&
	grep "pufs.ini:2:" err && grep create_policy err &&
	bad_ini 4 "direct_io = perhaps" &&
	pufs_try_mount 2 bad -c "$TRASH/pufs.ini" -e "$E" "$M" &&
	grep "pufs.ini:4:" err && grep direct_io err
'

test_expect_success 'a bad listen address is refused' '
	bad_ini 2 "listen = 127.0.0.1:99999" &&
	pufs_try_mount 2 bad -c "$TRASH/pufs.ini" -e "$E" "$M" &&
	grep "pufs.ini:2:" err && grep listen err
'

test_expect_success 'a malformed line in the file names the line' '
	bad_ini 4 "this is not ini" &&
	pufs_try_mount 2 bad -c "$TRASH/pufs.ini" -e "$E" "$M" &&
	grep "pufs.ini:4" err
'

test_expect_success 'export sections: bad read_only, missing path, missing dir' '
	cat >ex.ini <<-EOF &&
	[export:one]
	path = $E
	read_only = sometimes
	EOF
	pufs_try_mount 2 bad -c "$TRASH/ex.ini" "$M" &&
	grep "ex.ini:3:" err && grep read_only err &&
	cat >ex.ini <<-EOF &&
	[export:one]
	at = /x
	EOF
	pufs_try_mount 2 bad -c "$TRASH/ex.ini" "$M" &&
	grep "ex.ini" err && grep "one" err && grep path err &&
	cat >ex.ini <<-EOF &&
	[export:one]
	path = $TRASH/no-such-dir
	EOF
	pufs_try_mount 2 bad -c "$TRASH/ex.ini" "$M" &&
	grep "no-such-dir" err
'

test_expect_success 'a missing configuration file is an error naming it' '
	pufs_try_mount 2 bad -c "$TRASH/no-such.ini" -e "$E" "$M" &&
	grep "no-such.ini" err
'

test_expect_success 'a bad environment variable is named' '
	PUFS_CACHE_ATTR_TIMEOUT=abc pufs_try_mount 2 bad -e "$E" "$M" &&
	grep PUFS_CACHE_ATTR_TIMEOUT err &&
	PUFS_PEER_NO_SUCH_KEY=1 pufs_try_mount 2 bad -e "$E" "$M" &&
	grep PUFS_PEER_NO_SUCH_KEY err
'

test_expect_success 'nothing was mounted by the failed attempts' '
	! is_mounted "$M" &&
	test_output "" ls -A "$M"
'

test_expect_success 'a file using every key and unit form is accepted' '
	cat >full.ini <<-EOF &&
	; a comment
	# another comment
	[peer]
	name = full
	listen = 127.0.0.1:$((PORT_BASE + 9))
	discovery = unicast
	multicast_group = 239.255.70.70
	multicast_port = $((PORT_BASE + 9))
	multicast_interface = lo
	multicast_ttl = 0
	peers = 127.0.0.1:$((PORT_BASE + 8))
	control_socket = $TRASH/full-file.sock
	op_timeout = 2.5
	heartbeat = 500ms
	dead_after = 3s
	create_policy = mostfree

	[cache]
	attr_timeout = 0.2
	trap_delay = 100ms
	block_size = 64K
	cache_size = 1G
	readahead_max = 8
	writeback_interval = 1
	direct_io = no

	[export:main]
	path = $E
	at = /
	read_only = no

	[security]
	encrypt = no
	EOF
	pufs_start full "$M" -c "$TRASH/full.ini" &&
	test_output 65536 stat -c %o "$M/blk" &&
	pufs_stop full
'

test_expect_success 'file < environment < -o, seen in st_blksize' '
	printf "[cache]\nblock_size = 64K\n" >prec.ini &&
	export PUFS_CACHE_BLOCK_SIZE=32K &&
	pufs_start prec "$M" -c "$TRASH/prec.ini" -e "$E" &&
	test_output 32768 stat -c %o "$M/blk" &&
	pufs_stop prec &&
	pufs_start prec2 "$M" -c "$TRASH/prec.ini" -e "$E" -o cache.block_size=16K &&
	test_output 16384 stat -c %o "$M/blk" &&
	pufs_stop prec2 &&
	unset PUFS_CACHE_BLOCK_SIZE &&
	pufs_start prec3 "$M" -c "$TRASH/prec.ini" -e "$E" &&
	test_output 65536 stat -c %o "$M/blk" &&
	pufs_stop prec3
'

test_expect_success '-o may be given more than once; M suffix' '
	pufs_start multi "$M" -e "$E" -o cache.attr_timeout=1 -o cache.block_size=1M -d &&
	test_output 1048576 stat -c %o "$M/blk" &&
	pufs_stop multi
'

test_expect_success 'status with no daemon on the socket exits 1' '
	pufs_try 1 status -s "$TRASH/nobody.sock" &&
	test -s err &&
	pufs_try 1 status -s "$TRASH/nobody.sock" --json &&
	test -s err
'

test_expect_success 'status with a bad option is bad usage' '
	pufs_try 2 status --frobnicate &&
	test -s err
'

test_done
