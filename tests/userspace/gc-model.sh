#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Random histories of create, write, snapshot, clone, delete and gc,
# checked against a model by tests/userspace/gc-model (see the comment at
# the top of gc-model.c), then the checker's self-test: faults slipped in
# while a gc runs must be reported.
#
# Usage: tests/userspace/gc-model.sh [--stress] [--seed N] [--histories K]
#                                    [--ops M]
#
# By default 10 histories of 400 operations, from a random first seed
# (or $GC_MODEL_SEED), in about 20 s.  --stress runs 24 histories of
# 1500 operations, in about 10 minutes.  Stores are sparse files in
# $TMPDIR, else /dev/shm (the library fsyncs after every operation,
# which tmpfs makes cheap), else /tmp.  A failure prints the seed and
# the operation index, and the command that replays that history alone.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bin=$here/gc-model

seed=${GC_MODEL_SEED:-}
histories=10
ops=400
while [ $# -gt 0 ]; do
	case $1 in
	--stress)
		histories=24
		ops=1500
		;;
	--seed)
		seed=$2
		shift
		;;
	--histories)
		histories=$2
		shift
		;;
	--ops)
		ops=$2
		shift
		;;
	-h|--help)
		sed -n '4,17p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "usage: $0 [--stress] [--seed N] [--histories K] [--ops M]" >&2
		exit 2
		;;
	esac
	shift
done

if [ ! -x "$bin" ]; then
	echo "Bail out! $bin not built (make -C userspace)"
	exit 1
fi

if [ -n "${TMPDIR:-}" ]; then
	base=$TMPDIR
elif [ -d /dev/shm ] && [ -w /dev/shm ]; then
	base=/dev/shm
else
	base=/tmp
fi
dir=$(mktemp -d "$base/gc-model.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT

# A seed that differs from run to run, so that runs add up.
[ -n "$seed" ] || seed=$(( $(date +%s%N) / 1000 % 1000000000 ))

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

echo "# gc-model: $histories histories of $ops ops from seed $seed, stores in $dir"
echo "# replay one: $bin --seed N --ops $ops -v"
start=$SECONDS
# The program's own result lines, renumbered into this script's count.
while IFS= read -r line; do
	case $line in
	"ok "*)
		ok "${line#ok * - }"
		;;
	"not ok "*)
		not_ok "${line#not ok * - }"
		;;
	1..*)
		;;
	*)
		echo "$line"
		;;
	esac
done < <("$bin" --dir "$dir" --seed "$seed" --histories "$histories" \
		--ops "$ops" 2>&1)
wait $! 2>/dev/null
rc=$?
if [ "$rc" -ne 0 ] && [ "$FAILED" -eq 0 ]; then
	not_ok "gc-model exited with status $rc"
fi
echo "# histories took $((SECONDS - start)) s"

# The same handle across a gc and later allocations: the collector must
# leave the handle's cached bitmaps as it left the disk.
for s in 1 2; do
	out=$("$bin" --dir "$dir" --seed $((seed + 100 + s)) --ops 200 \
		--same-handle 2>&1)
	if [ $? = 0 ] && ! grep -q "^not ok " <<<"$out"; then
		ok "a history on one handle across its gcs (seed $((seed + 100 + s)))"
	else
		not_ok "a history on one handle across its gcs (seed $((seed + 100 + s)))"
		grep -v "^ok " <<<"$out" | head -10 | sed 's/^/#   /'
	fi
done

# Self-test: each fault must be reported, with the expected message.
# Fixed seeds: the fault goes into the first gc that has a place for it.
selftest() {
	local kind=$1 want=$2 what=$3 out st
	out=$("$bin" --dir "$dir" --seed 11 --ops 200 --inject "$kind" 2>&1)
	st=$?
	if [ "$st" -eq 1 ] && grep -q "^# injecting '$kind'" <<<"$out" &&
	   grep -q "^not ok " <<<"$out" &&
	   grep -q "^# seed 11 op [0-9]* (gc): .*$want" <<<"$out"; then
		ok "the checks catch $what"
	else
		not_ok "the checks catch $what (status $st, wanted \"$want\")"
		sed 's/^/#   /' <<<"$out" | head -20
	fi
}
selftest flip "changed during the gc" \
	"a bit flipped in a reachable data block during a gc"
selftest unalloc "was freed by the gc" \
	"a reachable node freed in its bitmap during a gc"
selftest leak "is allocated and unreachable after the gc" \
	"a free block left allocated by a gc"

echo "1..$N"
[ "$FAILED" -eq 0 ]
