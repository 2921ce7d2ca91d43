#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Randomly damaged metadata must never crash or hang the tool (see
# fuzz.py).  FUZZ_SEED and FUZZ_ITERATIONS override the defaults; with
# STRESS_SECONDS (make stress) rounds of new seeds run for that long.
source "$(dirname "$0")/lib.sh"

S=$T/store.img
truncate -s 32M "$S"
"$P" format "$S" --extent-size 4M --max-vdis 8 >/dev/null
"$P" create "$S" a --size 4M >/dev/null
head -c 3M /dev/urandom >"$T/img"
"$P" import "$S" a "$T/img" 2>/dev/null
"$P" snapshot "$S" a --label s >/dev/null
"$P" import "$S" a "$T/img" 2>/dev/null
"$P" create "$S" b --from s >/dev/null
"$P" snapshot "$S" b >/dev/null
if ! "$P" check "$S" >/dev/null; then
	echo "not ok 1 - the undamaged fuzz store checks clean"
	exit 1
fi
seed=${FUZZ_SEED:-20081}
iters=${FUZZ_ITERATIONS:-60}
end=$(($(date +%s) + ${STRESS_SECONDS:-0}))
tried=0
rc=0
while :; do
	python3 "$TESTS_CLI_DIR/fuzz.py" "$P" "$S" "$T/img" "$seed" "$iters" >"$T/fuzz.out" || rc=1
	if [ -n "${STRESS_SECONDS:-}" ]; then
		# One summary per round; the failures in full.
		grep '^not ok' "$T/fuzz.out" && echo "# reproduce: FUZZ_SEED=$seed tests/cli/fuzz.sh"
		grep -q '^not ok' "$T/fuzz.out" || echo "ok - $iters damaged stores (seed $seed), no crash or hang"
	else
		cat "$T/fuzz.out"
	fi
	tried=$((tried + iters))
	[ -n "${STRESS_SECONDS:-}" ] && [ "$(date +%s)" -lt "$end" ] || break
	seed=$((seed + 1))
done
echo "# stress: corruptions_tried=$tried"
exit $rc
