#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# parallaxd's side of the GC job relay, without a kernel: parallaxd runs on
# the test host with no device (no dm-parallax needed), so BEGIN and END
# have no device to go to and succeed, and a RECLAIM finds no device
# holding its extent (ENOENT).  What the kernel answers is checked by the
# cluster suite under UML.
. "$(dirname "$0")/lib.sh"

PD=${PARALLAXD:-$TOP/userspace/parallaxd}
[ -x "$PD" ] || { echo "Bail out! $PD not built (make -C userspace)"; exit 1; }
PD_PID=
stop_pd() {
	[ -n "$PD_PID" ] && kill "$PD_PID" 2>/dev/null && wait "$PD_PID" 2>/dev/null
	PD_PID=
}
trap 'stop_pd; cleanup' EXIT

make_store || { echo "Bail out! cannot make a store"; exit 1; }
start_lockd || { echo "Bail out! lockd"; exit 1; }
sysx=$(disk system_extents)
ENOENT=$(python3 -c 'import errno; print(errno.ENOENT)')
EHOSTDOWN=$(python3 -c 'import errno; print(errno.EHOSTDOWN)')

"$PD" "$STORE" --host-id 5 --run-dir "$T/run" 2>"$T/pd.log" &
PD_PID=$!
for i in $(seq 50); do
	grep -q "host 5 connected from .* (parallaxd)" "$T/lockd.log" && break
	sleep 0.1
done
expect_match "parallaxd says HELLO with the helper flag" \
	"host 5 connected from .* \(parallaxd\)" "$(cat "$T/lockd.log")"

out=$(call 1 gc_post 5 begin 21 0 0 0 - , gc_wait last 5 , \
	gc_post 5 reclaim 21 "$sysx" 1 0 ff , gc_wait last 5 , \
	gc_post 5 end 21 0 0 0 - , gc_wait last 5 | grep '^GC_RESULT' | cut -d' ' -f1,2,4-)
expect "begin, reclaim, end: ok, ENOENT (no device holds the extent), ok" \
	"GC_RESULT OK gen=0 holder=0 type=1
GC_RESULT OK gen=0 holder=$ENOENT type=1
GC_RESULT OK gen=0 holder=0 type=1" "$out"
expect_match "parallaxd logged the epoch's begin and end" \
	"GC epoch 21: gc_begin done" "$(cat "$T/pd.log")"
expect_match "...and end" "GC epoch 21: gc_end done" "$(cat "$T/pd.log")"

# Jobs posted together run in order, all within a couple of ticks.
start=$(date +%s%N)
out=$(call 1 gc_post 5 begin 22 0 0 0 - , gc_post 5 reclaim 22 "$sysx" 1 8 01 , \
	gc_post 5 reclaim 22 "$sysx" 1 16 01 , gc_post 5 end 22 0 0 0 - , \
	gc_wait last 5)
ms=$(( ($(date +%s%N) - start) / 1000000 ))
expect_match "four jobs queued at once: the last is done" \
	"^GC_RESULT OK id=[0-9]+ gen=0 holder=0 type=1$" "$(echo "$out" | tail -n 1)"
if [ "$ms" -lt 3500 ]; then ok "...within $ms ms"; else not_ok "four jobs took $ms ms"; fi
st=$(call 1 status)
expect_match "STATUS counts the finished jobs" "^jobs pending 0 running 0 done 7$" "$st"

# parallaxd stopped: new jobs are refused, queued ones end EHOSTDOWN.
stop_pd
sleep 0.3
out=$(call 1 gc_post 5 begin 23 0 0 0 -)
expect_match "no parallaxd on host 5 any more: ENOENT" \
	"^GC_POST ENOENT host 5 has no parallaxd connected" "$out"
call 5 --helper sleep 1 >/dev/null &
hp=$!
sleep 0.3
out=$(call 1 gc_post 5 begin 23 0 0 0 - , gc_wait last 3)
wait $hp
expect_match "a job whose helper leaves before fetching it: EHOSTDOWN" \
	"^GC_RESULT OK id=[0-9]+ gen=0 holder=$EHOSTDOWN type=1$" "$(echo "$out" | tail -n 1)"
if grep -q "error" "$T/pd.log"; then
	not_ok "parallaxd logged errors"; sed 's/^/# /' "$T/pd.log"
else
	ok "parallaxd logged no error"
fi
finish
