#!/bin/bash
#
# The Debian package: dpkg-buildpackage builds pufs_*.deb from a copy of
# the source tree; it holds the binary, both manual pages, the example
# configuration, the unit template and the bash completion; dpkg -i
# installs it (pufs --version, man -w, the completion, systemd-analyze
# verify of the installed unit) and dpkg --purge removes every file.
# The package is installed on this machine for the test's length only,
# and never over a pufs that was there before.

TEST_TIMEOUT=${TEST_TIMEOUT:-600}
. "$(dirname "$0")/lib.sh"

test_require dpkg-buildpackage dh dpkg dpkg-deb man systemd-analyze tar
[ -n "${PUFS_SRCDIR:-}" ] || bail_out "PUFS_SRCDIR is not set"

FILES="/usr/bin/pufs
/usr/share/man/man8/pufs.8.gz
/usr/share/man/man5/pufs.ini.5.gz
/usr/share/doc/pufs/examples/pufs.ini.example
/lib/systemd/system/pufs@.service
/usr/share/bash-completion/completions/pufs"

test_expect_success 'no pufs is installed here already' '
	! dpkg-query -W -f="\${Status}" pufs 2>/dev/null | grep -q "ok installed" &&
	for f in $FILES; do test ! -e "$f" || { echo "$f exists"; exit 1; }; done
'

test_expect_success 'dpkg-buildpackage builds pufs_*.deb from a copy of the tree' '
	mkdir src &&
	if git -C "$PUFS_SRCDIR" rev-parse --git-dir >/dev/null 2>&1; then
		git -C "$PUFS_SRCDIR" ls-files -co --exclude-standard -z |
		    grep -zv "^build" | tar -C "$PUFS_SRCDIR" -cf - --null -T -
	else
		tar -C "$PUFS_SRCDIR" --exclude="./build*" -cf - .
	fi | tar -C src -xf - &&
	test -x src/debian/rules &&
	( cd src && dpkg-buildpackage -us -uc -b >../build.log 2>&1 ) ||
	{ tail -n 60 build.log; false; } &&
	ls pufs_*.deb &&
	test "$(ls pufs_*_*.deb | grep -v dbgsym | wc -l)" = 1
'

test_expect_success 'the package holds what it should' '
	deb=$(ls pufs_*.deb | grep -v dbgsym) &&
	dpkg-deb -c "$deb" | awk "{ print substr(\$6, 2) }" >contents &&
	for f in $FILES; do grep -qx "$f" contents || { echo "no $f"; exit 1; }; done &&
	dpkg-deb -f "$deb" Package Architecture Depends >fields &&
	cat fields &&
	grep -x "Package: pufs" fields &&
	grep "^Depends: .*fuse3" fields
'

test_expect_success 'dpkg -i installs it; pufs --version, man -w answer' '
	deb=$(ls pufs_*.deb | grep -v dbgsym) &&
	test_when_finished "dpkg --purge pufs >/dev/null 2>&1; true" &&
	dpkg -i "$deb" >install.log 2>&1 || { cat install.log; false; } &&
	test_output "$("$PUFS" --version)" /usr/bin/pufs --version &&
	test_output /usr/share/man/man8/pufs.8.gz man -w pufs &&
	test_output /usr/share/man/man5/pufs.ini.5.gz man -w pufs.ini &&
	grep -q "^\[peer\]" /usr/share/doc/pufs/examples/pufs.ini.example &&
	grep -q "^ExecStart=/usr/bin/pufs mount -c /etc/pufs/%i.ini" \
	    /lib/systemd/system/pufs@.service &&
	systemd-analyze verify /lib/systemd/system/pufs@.service >verify 2>&1 ||
	{ cat verify; false; } &&
	test_output "" cat verify &&
	bash -c "
		. /usr/share/bash-completion/bash_completion &&
		. /usr/share/bash-completion/completions/pufs &&
		for line in \"pufs st\" \"pufs mount -o peer.met\" \\
		    \"pufs mount -o cache.attr_timeout=1,peer.met\"; do
			COMP_LINE=\$line COMP_POINT=\${#line} &&
			read -ra COMP_WORDS <<<\"\$line\" &&
			COMP_CWORD=\$((\${#COMP_WORDS[@]} - 1)) &&
			_pufs && echo \"\${COMPREPLY[*]}\" || exit 1
		done
	" >compl 2>compl.err || { cat compl.err; false; } &&
	test_output "status
peer.metrics=
cache.attr_timeout=1,peer.metrics=" cat compl &&
	dpkg --purge pufs >purge.log 2>&1 || { cat purge.log; false; } &&
	for f in $FILES; do test ! -e "$f" || { echo "$f left"; exit 1; }; done &&
	test ! -e /usr/share/doc/pufs &&
	! dpkg-query -W -f="\${Status}" pufs 2>/dev/null | grep -q "ok installed"
'

test_done
