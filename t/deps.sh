#!/bin/sh
# deps.sh - install what building and testing pufs needs on Debian 12.
#
# curl and prometheus (for promtool) check the metrics endpoint, systemd
# (systemd-analyze) the unit, debhelper and dpkg-dev build the Debian
# package and bash-completion loads its completion.
#
# Installs only the packages that are missing (asking dpkg first, so a
# ready machine never touches apt or the network), as root or through
# sudo, and makes sure /dev/fuse exists.  Silent when there is nothing
# to do; says what it installs.  Exits non-zero when it cannot finish.
# Debian and its derivatives only: other systems must install the same
# things by hand.

packages="build-essential meson ninja-build pkg-config libfuse3-dev fuse3
libevent-dev libinih-dev libssl-dev clang clang-format libclang-rt-14-dev llvm iproute2
nftables iptables sshfs openssh-server openssh-client attr acl sqlite3 git
tar xz-utils man-db mandoc procps psmisc util-linux kmod python3 rsync
curl prometheus systemd debhelper dpkg-dev bash-completion tcpdump"

say() {
	printf 'deps: %s\n' "$*"
}

die() {
	printf 'deps: %s\n' "$*" >&2
	exit 1
}

# Set $root to what runs a command as root: nothing, or sudo.
find_root() {
	if [ "$(id -u)" -eq 0 ]; then
		root=
	elif command -v sudo >/dev/null 2>&1; then
		root=sudo
	else
		die "need root (or sudo) to $1"
	fi
}

missing=
if command -v dpkg-query >/dev/null 2>&1; then
	for p in $packages; do
		status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)
		[ "$status" = installed ] || missing="$missing $p"
	done
else
	die "no dpkg-query: not a Debian system; install by hand: $packages"
fi

if [ -n "$missing" ]; then
	find_root "install:$missing"
	say "installing:$missing"
	log=$(mktemp "${TMPDIR:-/tmp}/pufs-deps.XXXXXX") || exit 1
	export DEBIAN_FRONTEND=noninteractive
	# shellcheck disable=SC2086 # the list is meant to split
	if ! { $root apt-get update -q &&
	    $root apt-get install -y -q --no-install-recommends $missing; } \
	    >"$log" 2>&1 </dev/null; then
		tail -n 30 "$log" >&2
		rm -f "$log"
		die "apt-get failed"
	fi
	rm -f "$log"
fi

if [ ! -c /dev/fuse ]; then
	find_root "create /dev/fuse"
	$root modprobe fuse >/dev/null 2>&1 || true
fi
if [ ! -c /dev/fuse ]; then
	say "creating /dev/fuse"
	$root mknod -m 0666 /dev/fuse c 10 229 ||
	    die "cannot create /dev/fuse"
fi
exit 0
