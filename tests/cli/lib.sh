# SPDX-License-Identifier: GPL-2.0
# Shared helpers for the parallax CLI tests (sourced, not run).
#
# Each test script prints TAP-style lines "ok N - desc" / "not ok N - desc",
# a plan "1..N" at the end, and exits non-zero if anything failed.

TESTS_CLI_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
P=${PARALLAX:-$TESTS_CLI_DIR/../../userspace/parallax}
PLXBLK="python3 $TESTS_CLI_DIR/plxblk.py"

if [ ! -x "$P" ]; then
	echo "Bail out! $P not built (make -C userspace)"
	exit 1
fi

T=$(mktemp -d /tmp/plx-cli-test.XXXXXX)
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

# check_ok DESC CMD...: the command must succeed.
check_ok() {
	local desc=$1
	shift
	if "$@" >"$T/out" 2>"$T/err"; then
		ok "$desc"
	else
		not_ok "$desc"
		sed 's/^/# /' "$T/err" "$T/out" | head -20
	fi
}

# dev_hash DEV: set HASH_VAL to the sha256 of DEV.  The hash of an unchanged file (same size,
# mtime and ctime to the nanosecond) is reused, which keeps the many
# before/after comparisons fast on a loaded machine.
HASH_SIG=
HASH_VAL=
dev_hash() {
	local sig
	sig="$1 $(stat -c '%s %y %z' "$1" 2>/dev/null)"
	if [ "$sig" != "$HASH_SIG" ]; then
		HASH_VAL=$(sha256sum "$1" 2>/dev/null | cut -d' ' -f1)
		HASH_SIG=$sig
	fi
}

# expect_fail DESC STATUS DEV CMD...: the command must exit with STATUS,
# print exactly one line "parallax: ..." on stderr, and leave DEV
# byte-for-byte unchanged.
expect_fail() {
	local desc=$1 want=$2 dev=$3 before after rc
	shift 3
	dev_hash "$dev"
	before=$HASH_VAL
	"$@" >"$T/out" 2>"$T/err"
	rc=$?
	dev_hash "$dev"
	after=$HASH_VAL
	if [ "$rc" != "$want" ]; then
		not_ok "$desc (exit $rc, wanted $want)"
		sed 's/^/# /' "$T/err" | head -5
	elif [ "$(wc -l <"$T/err")" != 1 ] || ! grep -q '^parallax: ' "$T/err"; then
		not_ok "$desc (stderr is not one 'parallax:' line)"
		sed 's/^/# /' "$T/err" | head -5
	elif [ "$before" != "$after" ]; then
		not_ok "$desc (device changed)"
	else
		ok "$desc: $(cat "$T/err")"
	fi
}

# check_finds DESC DEV REGEX: check must fail and report a line matching
# REGEX (extended regular expression).
check_finds() {
	local desc=$1 dev=$2 re=$3 rc
	"$P" check "$dev" >"$T/check" 2>&1
	rc=$?
	if [ "$rc" = 1 ] && grep -Eq -- "$re" "$T/check"; then
		ok "$desc: $(grep -E -m1 -- "$re" "$T/check")"
	else
		not_ok "$desc (exit $rc; no line matching /$re/)"
		sed 's/^/# /' "$T/check" | head -10
	fi
}

finish() {
	echo "1..$N"
	[ "$FAILED" = 0 ]
	exit $?
}
