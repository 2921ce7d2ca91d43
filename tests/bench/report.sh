#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# bench/report on samples whose medians, spreads, ratios and goal verdicts
# are known: the report must compute them, not just lay out a table.  And
# bench/run's command line: --help, and clear errors for bad options.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d /tmp/plx-bench-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $*"; }
check() {
	local what=$1
	shift
	if "$@" >"$T/out" 2>&1; then ok "$what"; else
		not_ok "$what"
		sed 's/^/# /' "$T/out" | head -20
	fi
}

W=$T/work
mkdir -p "$W/lat"
echo '{"date": "2026-12-06", "host": "testhost", "runs": 3}' >"$W/machine.json"
# sample WORKLOAD CASE TARGET UNIT VALUE...: one sample per run.
sample() {
	local w=$1 c=$2 t=$3 u=$4 v
	shift 4
	for v in "$@"; do
		printf '{"workload": "%s", "case": "%s", "target": "%s", "unit": "%s", "value": %s}\n' \
			"$w" "$c" "$t" "$u" "$v" >>"$W/results.jsonl"
	done
}
sample seq write-warm linear MB/s 1000 900 1100
sample seq write-warm thin MB/s 800 700 900
sample seq write-warm parallax MB/s 960 990 950	# 0.96x linear: met
sample seq read-warm linear MB/s 2000 2000 2000
sample seq read-warm parallax MB/s 1800 1700 1900	# 0.90x: missed
sample cow randwrite-qd1 thin IOPS 5000 5000 5000
sample cow randwrite-qd1 parallax IOPS 11000 9000 10000	# 2.0x: met
sample cow randwrite-qd32 thin IOPS 10000 10000 10000
sample cow randwrite-qd32 parallax IOPS 15000 19000 17000	# 1.7x: missed
sample snaplat idle-p50 parallax us 300 500 400
sample snaplat load-p99 parallax us 12000 11000 13000	# missed
sample snaplat load-p50 parallax us 100 100 100
sample snaplat load-p50 thin us 1500 1500 1500	# 15x: met
sample freq fio-0 parallax MB/s 100 100 100
sample freq fio-100 parallax MB/s 90 97 96	# 4% loss: met
sample freq fio-100-flushes parallax "per s" 150 160 170	# not a rate
# Figures 5.10 and 5.11: the last writer 36 s without the cache, 9 s with.
for i in 1 2 3 4; do
	sample burst "writer-$i" parallax s $((30 + i)) $((32 + i)) $((34 + i))
	sample burst "writer-$i" parallax-always s $((4 + i)) $((5 + i)) $((6 + i))
done
sample burst all-written parallax s 34 36 38
sample burst all-written parallax-always s 8 9 10
sample burst drained parallax-always s 40 42 44
sample burst aggregate parallax MB/s 58 55 52
sample burst aggregate parallax-always MB/s 220 230 250
sample burst backlog parallax-always MB 1500 1500 1500
sample burst drain-rate parallax-always MB/s 45 46 47
for i in $(seq 1 200); do echo $((i * 10)); done >"$W/lat/idle-parallax-1.txt"
for i in $(seq 1 200); do echo $((i * 50)); done >"$W/lat/load-thin-1.txt"

check "bench/report writes the report" "$top/bench/report" "$W" "$T/r/x"
md=$T/r/x.md
has() { grep -qF -- "$2" "$md" || { echo "no line with: $2"; return 1; }; }
check "medians with min-max spread" has x "| write-warm | MB/s | 1000 (900–1100) | 800.0 (700.0–900.0) | 960.0 (950.0–990.0) |"
check "warm sequential write ratio 0.96x is met" has x "| warm sequential write ≥ 0.95× dm-linear | 0.96× | met |"
check "warm sequential read ratio 0.90x is missed" has x "| warm sequential read ≥ 0.95× dm-linear | 0.90× | **missed** |"
check "COW qd1 2.00x dm-thin is met" has x "| COW 4 KiB randwrite-qd1 ≥ 2× dm-thin | 2.00× | met |"
check "COW qd32 1.70x dm-thin is missed" has x "| COW 4 KiB randwrite-qd32 ≥ 2× dm-thin | 1.70× | **missed** |"
check "idle p50 400 us is met" has x "| snapshot latency, idle: p50 < 1 ms | 400.0 us | met |"
check "load p99 12 ms is missed" has x "| snapshot latency, under load: p99 < 10 ms | 12000 us | **missed** |"
check "15x faster than dm-thin's cycle is met" has x "p50 ≥ 10× faster than dm-thin's cycle | 15.0× | met |"
check "4% loss at 100 snapshots/s is met" has x "| at 100 snapshots/s: fio throughput loss ≤ 5% | 4.0% | met |"
check "unmeasured goals say so" has x "| random 4 KiB randread-qd1 ≥ 0.9× dm-linear | not measured | - |"
check "the ratio table" has x "| seq write-warm vs thin | 1.20× |"
check "other freq cases are tabled, not taken for rates" has x "| fio-100-flushes | per s | 160.0 (150.0–170.0) |"
check "burst: per-writer finish times, drain and speedup" has x \
	"| parallax, cache always | 6 | 7 | 8 | 9 | 230.0 | 42.00 | 4.00× |"
check "burst: the uncached baseline" has x "| parallax, no cache | 33.00 | 34.00 | 35.00 | 36.00 | 55.00 | - | 1.00× |"
check "burst: backlog and drain rate" has x "| parallax, cache always | 1500 | 46.00 | - |"
check "burst: the last writer's time against no cache" has x \
	"| burst writer-4, parallax-always vs parallax without cache (time) | 0.25× |"
check "burst: drained against the uncached last writer" has x \
	"| burst drained, parallax-always vs parallax without cache (time) | 1.17× |"
check "the JSON summary has the median" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
s = [x for x in d["summary"] if x["workload"] == "cow" and x["case"] == "randwrite-qd32" and x["target"] == "parallax"]
assert len(s) == 1 and s[0]["median"] == 17000 and s[0]["min"] == 15000, s
assert len(d["samples"]) == 93, len(d["samples"])
' "$T/r/x.json"
for p in seq cow snapshot-latency-idle snapshot-latency-cdf burst; do
	f=$(ls "$T/r/x/$p"*.png 2>/dev/null | head -1)
	if [ -n "$f" ] && [ "$(head -c 4 "$f" | tail -c 3)" = PNG ]; then
		ok "plot $p drawn"
	else
		not_ok "plot $p drawn"
	fi
done

check "bench/run --help" "$top/bench/run" --help
grep -q "^OPTIONS" "$T/out" && ok "--help lists the options" || not_ok "--help lists the options"
for bad in "--runs 0" "--runs x" "--phases seq,bogus" "--kernel nope" "--frobnicate"; do
	# shellcheck disable=SC2086
	if "$top/bench/run" $bad >"$T/out" 2>&1; then
		not_ok "bench/run $bad is refused"
	elif grep -q "bench/run" "$T/out"; then
		ok "bench/run $bad is refused: $(head -1 "$T/out")"
	else
		not_ok "bench/run $bad is refused with a message"
		sed 's/^/# /' "$T/out" | head -5
	fi
done
echo "1..$n"
