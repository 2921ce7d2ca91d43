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
# A GC posts a job only once it has the previous one's result: after a
# job parallaxd polls every 50 ms, not once a second.
cmds=
for i in $(seq 10); do
	cmds="$cmds gc_post 5 reclaim 24 $sysx 1 $((8 * i)) 01 , gc_wait last 5 ,"
done
start=$(date +%s%N)
out=$(call 1 ${cmds%,})
ms=$(( ($(date +%s%N) - start) / 1000000 ))
expect "ten jobs one after the other: all done (ENOENT)" 10 \
	"$(echo "$out" | grep -c "^GC_RESULT OK id=[0-9]* gen=0 holder=$ENOENT type=1$")"
if [ "$ms" -lt 4000 ]; then ok "...in $ms ms"; else not_ok "ten jobs in a row took $ms ms"; fi
st=$(call 1 status)
expect_match "STATUS counts the finished jobs" "^jobs pending 0 running 0 done 17$" "$st"

# The C client the GC uses, plx_lk_gc_job(): post and poll until done.
cat >"$T/job.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "libparallax.h"
#include "lockproto.h"

/* ADDR KEYHEX HOST JOBHOST KIND EPOCH EXTENT GEN OFFSET HEX|- TIMEOUT_MS */
int main(int argc, char **argv)
{
	uint8_t key[PLX_LK_KEY_LEN], bits[PLX_LK_JOB_BITS_MAX];
	struct plx_lk_job_result res;
	struct plx_lk_client *c;
	uint32_t n = 0;
	const char *h = argv[10];
	int i;

	if (argc != 12)
		return 2;
	for (i = 0; i < PLX_LK_KEY_LEN; i++)
		sscanf(argv[2] + 2 * i, "%2hhx", &key[i]);
	if (strcmp(h, "-"))
		for (; h[0] && h[1]; h += 2)
			sscanf(h, "%2hhx", &bits[n++]);
	c = plx_lk_connect(argv[1], key, atoi(argv[3]), 5000);
	if (!c) {
		printf("fail: %s\n", plx_errmsg());
		return 1;
	}
	if (plx_lk_gc_job(c, atoi(argv[4]), atoi(argv[5]),
			  strtoull(argv[6], NULL, 10),
			  strtoull(argv[7], NULL, 10),
			  strtoull(argv[8], NULL, 10), atoi(argv[9]), bits, n,
			  atoi(argv[11]), &res))
		printf("fail: %s\n", plx_errmsg());
	else
		printf("ok error=%d freed=%llu\n", res.error,
		       (unsigned long long)res.freed);
	plx_lk_close(c);
	return 0;
}
C
if cc -std=gnu11 -Wall -Werror -D_GNU_SOURCE -I "$TOP/userspace/lib" -I "$TOP/dm-parallax" \
	-o "$T/job" "$T/job.c" "$TOP/userspace/libparallax.a" -lcrypto 2>"$T/cc.err"; then
	ok "plx_lk_gc_job test program builds"
else
	not_ok "build"; sed 's/^/# /' "$T/cc.err"
fi
KEY=$(disk key)
job() {
	"$T/job" "$ADDR" "$KEY" 1 "$@" 2>&1
}
expect "plx_lk_gc_job: begin on host 5" "ok error=0 freed=0" "$(job 5 1 31 0 0 0 - 5000)"
expect "plx_lk_gc_job: reclaim nobody holds" "ok error=$ENOENT freed=0" \
	"$(job 5 2 31 "$sysx" 1 0 0f 5000)"
expect_match "plx_lk_gc_job: host without parallaxd" \
	"^fail: .*GC job for host 8 refused: ENOENT host 8 has no parallaxd connected" \
	"$(job 8 1 31 0 0 0 - 5000)"
start_helper /dev/null 9 sleep 3
start=$(date +%s%N)
out=$(job 9 3 31 0 0 0 - 700)
ms=$(( ($(date +%s%N) - start) / 1000000 ))
expect_match "plx_lk_gc_job: a job nobody runs times out" "^fail: .*not done after 700 ms" "$out"
if [ "$ms" -ge 700 ] && [ "$ms" -lt 2000 ]; then ok "...after $ms ms"; else not_ok "timeout took $ms ms"; fi
wait $HP

# parallaxd stopped: new jobs are refused, queued ones end EHOSTDOWN.
stop_pd
sleep 0.3
out=$(call 1 gc_post 5 begin 23 0 0 0 -)
expect_match "no parallaxd on host 5 any more: ENOENT" \
	"^GC_POST ENOENT host 5 has no parallaxd connected" "$out"
start_helper /dev/null 5 sleep 2
out=$(call 1 gc_post 5 begin 23 0 0 0 - , gc_wait last 3)
wait $HP
expect_match "a job whose helper leaves before fetching it: EHOSTDOWN" \
	"^GC_RESULT OK id=[0-9]+ gen=0 holder=$EHOSTDOWN type=1$" "$(echo "$out" | tail -n 1)"
if grep -q "error" "$T/pd.log"; then
	not_ok "parallaxd logged errors"; sed 's/^/# /' "$T/pd.log"
else
	ok "parallaxd logged no error"
fi
finish
