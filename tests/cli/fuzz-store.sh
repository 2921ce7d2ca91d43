#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Build the blockstore-parser fuzz harness (userspace/fuzz/fuzz-store.c,
# clang, ASan+UBSan), run every committed seed once, then fuzz from them
# for 60 seconds, or for $STRESS_SECONDS when set (make stress).  A crash,
# sanitizer report, leak or hang fails the test and its input is kept.
DIR=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$DIR/../.." && pwd)
FUZZ=$TOP/userspace/build/fuzz-store
SEEDS=$TOP/userspace/fuzz/store-corpus
T=$(mktemp -d /tmp/plx-fuzz-store.XXXXXX)
trap 'rm -rf "$T"' EXIT
N=0
FAILED=0
SECONDS_TO_FUZZ=${STRESS_SECONDS:-60}

ok() { N=$((N + 1)); echo "ok $N - $*"; }
not_ok() { N=$((N + 1)); FAILED=1; echo "not ok $N - $*"; }

# keep FILE: copy a failing input out of $T and say how to replay it.
keep() {
	local dir
	dir=$(mktemp -d /tmp/plx-fuzz-store-crash.XXXXXX)
	cp "$1" "$dir/"
	echo "# input kept in $dir/$(basename "$1")"
	echo "# reproduce: make -C userspace build/fuzz-store && userspace/build/fuzz-store $dir/$(basename "$1")"
}

bad_log() {
	grep -Eq "runtime error|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|^fuzz-store: |SUMMARY: " "$1"
}

if make -C "$TOP/userspace" build/fuzz-store >"$T/build.log" 2>&1; then
	ok "build/fuzz-store builds"
else
	not_ok "build/fuzz-store builds"
	grep -v "warning: '_Static_assert'" "$T/build.log" | tail -20 | sed 's/^/# /'
	echo "1..$N"
	exit 1
fi

export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1
seeds=$(find "$SEEDS" -type f | wc -l)
(cd "$T" && "$FUZZ" -timeout=10 -rss_limit_mb=2048 "$SEEDS"/* \
	>"$T/seeds.log" 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && [ "$seeds" -gt 0 ] && ! bad_log "$T/seeds.log"; then
	ok "all $seeds seeds run clean"
else
	seed=$(grep -E '^Running: ' "$T/seeds.log" | tail -1 | sed 's/^Running: //')
	not_ok "seed ${seed:-?} fails (exit $rc)"
	grep -E -A15 "runtime error|ERROR:|^fuzz-store: " "$T/seeds.log" | head -30 | sed 's/^/# /'
	[ -n "$seed" ] && echo "# reproduce: make -C userspace build/fuzz-store && userspace/build/fuzz-store $seed"
fi

cp -r "$SEEDS" "$T/corpus"
mkdir "$T/crash"
(cd "$T" && "$FUZZ" -max_total_time="$SECONDS_TO_FUZZ" -timeout=10 \
	-rss_limit_mb=2048 -print_final_stats=1 \
	-artifact_prefix="$T/crash/" "$T/corpus" >"$T/fuzz.log" 2>&1)
rc=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$T/fuzz.log" | tail -1)
echo "# stress: inputs_fuzzed=${runs:-0}"
if [ "$rc" -eq 0 ] && ! bad_log "$T/fuzz.log" && [ -z "$(ls "$T/crash")" ]; then
	ok "$SECONDS_TO_FUZZ s of fuzzing from $seeds seeds: ${runs:-?} inputs"
else
	not_ok "fuzzing found a problem (exit $rc)"
	grep -E -A15 "runtime error|ERROR:|^fuzz-store: " "$T/fuzz.log" | head -40 | sed 's/^/# /'
	for f in "$T"/crash/*; do
		[ -e "$f" ] && keep "$f"
	done
fi
echo "1..$N"
[ "$FAILED" -eq 0 ]
