#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Build the lockd fuzz harness (clang, ASan+UBSan) and run it for about 20
# seconds (STRESS_SECONDS if set: make stress) on a copy of the committed
# seed corpus.
DIR=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$DIR/../.." && pwd)
T=$(mktemp -d /tmp/plx-lockd-fuzz.XXXXXX)
trap 'rm -rf "$T"' EXIT
N=0
FAILED=0

if make -C "$TOP/userspace" build/fuzz-lockd >"$T/build.log" 2>&1; then
	N=$((N + 1)); echo "ok $N - build/fuzz-lockd builds"
else
	N=$((N + 1)); FAILED=1; echo "not ok $N - build/fuzz-lockd builds"
	sed 's/^/# /' "$T/build.log" | tail -20
	echo "1..$N"; exit 1
fi
cp -r "$TOP/userspace/fuzz/corpus" "$T/corpus"
seeds=$(ls "$T/corpus" | wc -l)
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1
secs=${STRESS_SECONDS:-20}
(cd "$T" && "$TOP/userspace/build/fuzz-lockd" -max_total_time="$secs" \
	-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$T/corpus" >"$T/fuzz.log" 2>&1)
rc=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$T/fuzz.log")
echo "# stress: inputs_fuzzed=${runs:-0}"
if [ "$rc" -eq 0 ] && ! grep -Eq "runtime error|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)" "$T/fuzz.log"; then
	N=$((N + 1)); echo "ok $N - $secs s of fuzzing from $seeds seeds: ${runs:-?} inputs"
else
	N=$((N + 1)); FAILED=1; echo "not ok $N - fuzzing found a problem (exit $rc)"
	grep -E -A15 "runtime error|ERROR:" "$T/fuzz.log" | head -40 | sed 's/^/# /'
	mkdir -p /tmp/parallax-fuzz-crashes
	cp "$T"/crash-* "$T"/leak-* "$T"/timeout-* /tmp/parallax-fuzz-crashes/ 2>/dev/null
	echo "# reproduce: make -C userspace build/fuzz-lockd && userspace/build/fuzz-lockd /tmp/parallax-fuzz-crashes/<input>"
fi
echo "1..$N"
[ "$FAILED" -eq 0 ]
