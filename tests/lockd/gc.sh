#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# GC jobs relayed by parallax-lockd (GC_POST, GC_FETCH, GC_DONE, GC_RESULT)
# between a GC client and a host's parallaxd, played by lkclient.py, and
# the exclusion of bitmap locks and extent grants.
. "$(dirname "$0")/lib.sh"

make_store || { echo "Bail out! cannot make a store"; exit 1; }
start_lockd || { echo "Bail out! lockd"; exit 1; }
sysx=$(disk system_extents)
EHOSTDOWN=$(python3 -c 'import errno; print(errno.EHOSTDOWN)')

# jobs_line: the STATUS line counting jobs ("" if there are none).
jobs_line() {
	call 1 status | grep '^jobs ' || true
}

# Round trip: host 5's parallaxd fetches a reclaim job and reports it.
start_helper "$T/helper.out" 5 sleep 2 , gc_fetch , gc_done last 0 42 , gc_fetch
out=$(call 1 gc_post 5 reclaim 7 "$sysx" 3 8 ff01 , gc_result last , gc_wait last 5)
wait $HP
job=$(echo "$out" | sed -n 's/^GC_POST OK id=\([0-9]*\) gen=0 holder=5 type=2$/\1/p')
if [ -n "$job" ]; then ok "GC_POST granted job $job for host 5"; else not_ok "GC_POST: $out"; fi
expect "GC_RESULT: pending, then done with the helper's count" \
	"GC_RESULT OK id=$job gen=0 holder=0 type=0
GC_RESULT OK id=$job gen=42 holder=0 type=1" "$(echo "$out" | tail -n 2)"
expect "the helper fetched the job as posted, ended it, then found none" \
	"GC_FETCH OK job=$job epoch=7 extent=$sysx gen=3 host=5 kind=2 offset=8 bits=ff01
GC_DONE OK id=$job gen=42 holder=0 type=1
GC_FETCH ENOENT no job" "$(cat "$T/helper.out")"
out=$(call 1 gc_result "$job" , gc_result $((job + 1000)))
expect "the result stays readable; an unknown job is ENOENT" \
	"GC_RESULT OK id=$job gen=42 holder=0 type=1" "$(echo "$out" | head -n 1)"
expect_match "...unknown job" "^GC_RESULT ENOENT" "$(echo "$out" | tail -n 1)"

# The helper's errno travels back; begin and end carry no bits.
start_helper "$T/helper.out" 5 sleep 2 , gc_fetch , gc_done last 116 0
out=$(call 1 gc_post 5 begin 9 0 0 0 - , gc_wait last 5)
wait $HP
expect_match "a failed job: the helper's errno (ESTALE) in holder" \
	"^GC_RESULT OK id=[0-9]+ gen=0 holder=116 type=1$" "$(echo "$out" | tail -n 1)"
expect_match "begin job fetched with no bits" \
	"^GC_FETCH OK job=[0-9]+ epoch=9 extent=0 gen=0 host=5 kind=1 offset=0 bits=-$" \
	"$(head -n 1 "$T/helper.out")"

# No parallaxd for the host: ENOENT.  A plain connection of that host
# (no helper flag) does not count.
out=$(call 6 gc_post 6 begin 9 0 0 0 - , gc_post 77 end 9 0 0 0 - , gc_fetch | cut -d' ' -f1-4)
expect "no helper of host 6 or 77: ENOENT; GC_FETCH without the helper flag: EPERM" \
	"GC_POST ENOENT host 6
GC_POST ENOENT host 77
GC_FETCH EPERM only a" "$out"

# Malformed jobs (authenticated, so answered): EINVAL, nothing queued.
start_helper /dev/null 5 sleep 2
before=$(jobs_line)
out=$(call 1 gc_post 5 reclaim 9 "$sysx" 1 0 - , gc_post 5 reclaim 9 "$sysx" 1 4 ff , \
	gc_post 5 begin 9 0 0 0 ff , gc_post 5 4 9 0 0 0 - , gc_post 5 begin 0 0 0 0 - , \
	gc_post 5 reclaim 9 0 1 0 ff , raw 14 30 | cut -d' ' -f1-2 | tr '\n' ' ')
expect "reclaim without bits, odd offset, begin with bits, kind 4, epoch 0, system extent, short payload: EINVAL" \
	"GC_POST EINVAL GC_POST EINVAL GC_POST EINVAL GC_POST EINVAL GC_POST EINVAL GC_POST EINVAL RAW EINVAL " "$out"
expect "...and no job was queued" "$before" "$(jobs_line)"
wait $HP

# The helper disconnects: a fetched job and a pending one end EHOSTDOWN.
start_helper /dev/null 5 sleep 2 , gc_fetch
out=$(call 1 gc_post 5 begin 11 0 0 0 - , gc_post 5 end 11 0 0 0 -)
j1=$(echo "$out" | sed -n '1s/^GC_POST OK id=\([0-9]*\) .*/\1/p')
j2=$(echo "$out" | sed -n '2s/^GC_POST OK id=\([0-9]*\) .*/\1/p')
wait $HP
out=$(call 1 gc_wait "${j1:-0}" 3 , gc_wait "${j2:-0}" 3)
expect "helper gone: its fetched job and the pending one end EHOSTDOWN" \
	"GC_RESULT OK id=$j1 gen=0 holder=$EHOSTDOWN type=1
GC_RESULT OK id=$j2 gen=0 holder=$EHOSTDOWN type=1" "$out"
expect_match "lockd logged why" "job $j1 \(begin epoch 11 extent 0\) for host 5 done: Host is down" \
	"$(cat "$T/lockd.log")"
out=$(call 5 --helper gc_done "${j1:-0}" 0 5)
expect_match "a late GC_DONE of an ended job: ESTALE" "^GC_DONE ESTALE" "$out"

# Frames longer than their op allows close the connection unanswered and
# change nothing: GC_POST may carry 40 + 1024 bytes, every other op 64.
h0=$(sha256sum "$STORE")
before=$(jobs_line)
for a in "14 1065" "13 65" "4 1064" "15 65" "16 1064" "17 65"; do
	out=$($LKC attack "$ADDR" "$STORE" long $a 2>&1)
	expect "op ${a% *} with ${a#* } bytes: closed without a reply" "closed" "$out"
done
out=$($LKC attack "$ADDR" "$STORE" oversize 2>&1)
expect "HELLO of 65 bytes: still closed" "closed" "$out"
expect "store unchanged" "$h0" "$(sha256sum "$STORE")"
expect "no job queued" "$before" "$(jobs_line)"
start_helper /dev/null 5 sleep 2 , gc_fetch , gc_done last 0 8192
bits=$(python3 -c 'print("ab" * 1024)')
out=$(call 1 gc_post 5 reclaim 12 "$sysx" 1 0 "$bits" , gc_wait last 5)
wait $HP
expect_match "a full 1024-byte reclaim chunk goes through" \
	"^GC_RESULT OK id=[0-9]+ gen=8192 holder=0 type=1$" "$(echo "$out" | tail -n 1)"

# Bitmap locks and extent grants exclude each other.
out=$(call 2 claim 2 0)
x=$(echo "$out" | sed -n 's/^CLAIM_EXTENT OK id=\([0-9]*\) gen=\([0-9]*\) holder=2 type=2$/\1/p')
xg=$(echo "$out" | sed -n 's/^CLAIM_EXTENT OK id=[0-9]* gen=\([0-9]*\) .*/\1/p')
out=$(call 3 lock_bitmap "${x:-0}")
expect "LOCK_BITMAP of an extent host 2 holds: EBUSY with the holder" \
	"LOCK_BITMAP EBUSY id=$x gen=$xg holder=2 type=2" "$out"
call 2 release "$x" "$xg" >/dev/null
out=$(call 3 lock_bitmap "$x")
expect "once released, its bitmap can be locked" \
	"LOCK_BITMAP OK id=$x gen=$xg holder=3 type=2" "$out"
out=$(call 4 claim 2 "$x" , claim 2 0)
expect "CLAIM_EXTENT of a bitmap-locked extent: EBUSY naming the bitmap holder" \
	"CLAIM_EXTENT EBUSY id=$x gen=$xg holder=3 type=2" "$(echo "$out" | head -n 1)"
y=$(echo "$out" | sed -n '2s/^CLAIM_EXTENT OK id=\([0-9]*\) .*/\1/p')
if [ -n "$y" ] && [ "$y" != "$x" ]; then
	ok "any-extent claim skips bitmap-locked extent $x (got $y)"
else
	not_ok "any-extent claim: $out"
fi
expect "the bitmap lock is on disk, no holder" \
	"type 2 holder 0 generation $xg bitmap_holder 3" "$(disk extent "$x")"
out=$(call 3 unlock_bitmap "$x")
expect "UNLOCK_BITMAP granted" "UNLOCK_BITMAP OK id=$x gen=$xg holder=0 type=0" "$out"
expect "an unheld extent with nothing allocated is FREE again" \
	"type 0 holder 0 generation $xg bitmap_holder 0" "$(disk extent "$x")"
expect_match "logged" "unlocked the bitmap of extent $x \(now free\)" "$(cat "$T/lockd.log")"

# An extent with blocks in use keeps its type: import data as host 9 (it
# claims, writes and releases extents through lockd).
head -c 1M /dev/urandom >"$T/img"
PARALLAX_HOST_ID=9 "$P" import "$STORE" a "$T/img" >/dev/null 2>"$T/import.err"
expect "cluster-mode import" 0 $?
d=
for e in $(seq "$sysx" 15); do
	if [ "$(disk extent "$e" | cut -d' ' -f1-4)" = "type 2 holder 0" ]; then
		d=$e
		break
	fi
done
if [ -n "$d" ]; then ok "an unheld data extent ($d) after the import"; else not_ok "no unheld data extent"; fi
dg=$(disk extent "${d:-0}" | cut -d' ' -f6)
out=$(call 3 lock_bitmap "${d:-0}" , unlock_bitmap "${d:-0}")
expect "UNLOCK_BITMAP of an extent with data: stays data" \
	"LOCK_BITMAP OK id=$d gen=$dg holder=3 type=2
UNLOCK_BITMAP OK id=$d gen=$dg holder=0 type=2" "$out"
expect "...on disk too" "type 2 holder 0 generation $dg bitmap_holder 0" "$(disk extent "${d:-0}")"
"$P" check "$STORE" >/dev/null 2>&1
expect "parallax check passes" 0 $?

# A job of a host whose lease expires ends EHOSTDOWN even while its
# parallaxd's connection stays open.
kill9_lockd
start_lockd --lease 2 || { echo "Bail out! lockd restart"; exit 1; }
start_helper /dev/null 5 sleep 4.5
out=$(call 1 gc_post 5 begin 13 0 0 0 - , sleep 3.5 , gc_result last)
expect_match "lease of host 5 expired: its pending job ends EHOSTDOWN" \
	"^GC_RESULT OK id=[0-9]+ gen=0 holder=$EHOSTDOWN type=1$" "$(echo "$out" | tail -n 1)"
wait $HP
kill -0 "$LOCKD_PID" 2>/dev/null
expect "lockd still running" 0 $?
finish
