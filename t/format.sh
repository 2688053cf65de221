#!/bin/sh
# format.sh - check that every C file of the tree is as clang-format
# would write it with the tree's .clang-format.  Prints one TAP-style
# verdict line per file that differs (with the first lines of the diff)
# and exits 1 when any does.  Run from anywhere; --fix rewrites the
# files instead.
cd "$(dirname "$0")/.." || exit 2
cf=${CLANG_FORMAT:-clang-format}
command -v "$cf" >/dev/null 2>&1 || { echo "format: $cf not found" >&2; exit 2; }
fix=0
[ "${1:-}" = --fix ] && fix=1
bad=0
for f in $(git ls-files '*.c' '*.h'); do
	if [ $fix -eq 1 ]; then
		"$cf" -i --style=file "$f" || bad=1
		continue
	fi
	if ! "$cf" --style=file "$f" | diff -u "$f" - >/tmp/format.$$ 2>&1; then
		echo "format: $f differs from clang-format:"
		head -20 /tmp/format.$$ | sed 's/^/  /'
		bad=1
	fi
done
rm -f /tmp/format.$$
exit $bad
