# SPDX-License-Identifier: GPL-2.0
# Shared helpers for the docs tests (sourced, not run): man pages, shell
# completion, systemd units.  TAP-style output as in tests/cli/lib.sh.

TESTS_DOCS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$TESTS_DOCS_DIR/../.." && pwd)
P=${PARALLAX:-$TOP/userspace/parallax}
LOCKD=${PARALLAX_LOCKD:-$TOP/userspace/parallax-lockd}
HELPERD=${PARALLAXD:-$TOP/userspace/parallaxd}
MAN=$TOP/man

for bin in "$P" "$LOCKD" "$HELPERD"; do
	if [ ! -x "$bin" ]; then
		echo "Bail out! $bin not built (make -C userspace)"
		exit 1
	fi
done

T=$(mktemp -d /tmp/plx-docs-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
N=0
FAILED=0

ok() {
	N=$((N + 1))
	echo "ok $N - $*"
}

not_ok() {
	N=$((N + 1))
	FAILED=$((FAILED + 1))
	echo "not ok $N - $*"
}

# need TOOL...: bail out unless every TOOL is installed.
need() {
	local t
	for t in "$@"; do
		if ! command -v "$t" >/dev/null; then
			echo "Bail out! $t not installed (make setup)"
			exit 1
		fi
	done
}

# commands: the subcommands listed under COMMANDS by "parallax --help".
commands() {
	"$P" --help | sed -n '/^COMMANDS/,/^Run/p' | awk '/^    [a-z]/ { print $1 }'
}

# long_options CMD...: the long options a --help text mentions, one a
# line, without --help itself.
long_options() {
	"$@" --help | grep -o -- '--[a-z][a-z-]*' | grep -vx -- --help | sort -u
}

finish() {
	echo "1..$N"
	[ "$FAILED" -eq 0 ]
}
