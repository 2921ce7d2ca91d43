#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Frequent kernel snapshots (one every ~10 ms, through the DM ioctl) while
# four writer threads rewrite random 4 KiB blocks (each thread its own
# blocks, one O_DIRECT write in flight) with stamps (block number,
# sequence number, crc32).  Offline, every snapshot and the live VDI are
# exported and checked: blocks are zero or valid stamps of their own
# block, each snapshot holds exactly a prefix of every thread's writes
# (crash consistency), sequence numbers never go backwards from a
# snapshot to the next or to the VDI, and the VDI holds the final state.
set -u
source "$(dirname "$0")/lib.sh"

S=$T/store.img
new_store "$S"
"$P" create "$S" sv --size 8M >/dev/null
WRITE_SECONDS=${KT_SNAP_SECONDS:-6}
export WRITE_SECONDS

cat >"$T/guest.sh" <<'GUEST'
set -u
KT_GUEST=1 source "$KT_DIR/lib.sh"
"$P" attach /dev/ubda sv --data-extents 8 >"$T/g.out" 2>&1 && g_ok "attach sv" ||
	{ g_not_ok "attach sv: $(cat "$T/g.out")"; exit 1; }
$KTPY stampwrite /dev/mapper/sv 2048 "$WRITE_SECONDS" "$T/order" 4 >"$T/writer.out" 2>&1 &
wpid=$!
# Snapshots every 10 ms through the DM ioctl (a dmsetup process costs
# ~100 ms in UML); at most 150, as there is one metadata extent.
$KTPY snaploop sv $wpid 0.01 150 "$T/snaps" >"$T/snaploop.out" 2>&1
src=$?
wait $wpid
wrc=$?
[ $wrc = 0 ] && g_ok "stamp writer: $(cat "$T/writer.out")" ||
	{ g_not_ok "stamp writer exited $wrc"; sed 's/^/# /' "$T/writer.out" >>"$T/results"; }
n=$(cat "$T/snaps" 2>/dev/null | wc -l)
sed -n 's/.* \([0-9.]*\) per second.*/\1/p' "$T/snaploop.out" >"$T/rate"
[ $src = 0 ] && [ $n -ge 20 ] && g_ok "$n snapshots during the writes, ids 1@1..1@$n: $(cat "$T/snaploop.out")" ||
	{ g_not_ok "snapshots during the writes (status $src, $n taken)"; sed 's/^/# /' "$T/snaploop.out" >>"$T/results"; }
# For comparison: dmsetup's own cost, and snapshots with no writer.
t0=$(date +%s.%N)
for i in 1 2 3 4 5 6 7 8 9 10; do dmsetup status sv >/dev/null; done
t1=$(date +%s.%N)
idle_bad=0
for i in 1 2 3 4 5 6 7 8 9 10; do
	n=$((n + 1))
	id=$(dmsetup message sv 0 snapshot 2>&1)
	[ "$id" = "1@$n" ] && echo "$id" >>"$T/snaps" || idle_bad=$((idle_bad + 1))
done
t2=$(date +%s.%N)
lat=$(echo "$t0 $t1 $t2" | awk '{ printf "dmsetup status %.0f ms, idle snapshot message %.0f ms", ($2 - $1) * 100, ($3 - $2) * 100 }')
echo "$lat" >"$T/latency"
[ $idle_bad = 0 ] && g_ok "10 more snapshots with no writer ($lat each)" || g_not_ok "idle snapshots: $idle_bad bad replies"
[ "$(g_status sv 7)" = $n ] && g_ok "status counts $n snapshots" || g_not_ok "status: $(dmsetup status sv)"
g_note "status: $(dmsetup status sv)"
[ "$(g_status sv 1)" = ok ] && g_ok "device mode ok" || g_not_ok "device mode: $(dmsetup status sv)"
g_check "detach sv" "$P" detach sv
GUEST

kt_boot "snapshots" --timeout 300 --disk "$S" -- bash "$T/guest.sh"
if [ -s "$T/order" ] && [ -s "$T/snaps" ]; then
	mapfile -t snaps <"$T/snaps"
	if $KTPY stampcheck "$S" "$T/order" sv "${snaps[@]}" >"$T/out" 2>&1; then
		ok "${#snaps[@]} snapshots and the VDI: stamps valid, prefix-consistent per writer, monotonic; VDI = final state"
	else
		not_ok "snapshot contents"
	fi
	cat "$T/out"
	echo "# snapshot rate under the writer: $(cat "$T/rate" 2>/dev/null) per second; $(cat "$T/latency" 2>/dev/null)"
else
	not_ok "guest left the write log and the snapshot list"
fi
if "$P" snaplog "$S" sv >"$T/out" 2>&1 && [ "$(grep -c '^1@' "$T/out")" = "$(wc -l <"$T/snaps" 2>/dev/null)" ]; then
	ok "snaplog lists every snapshot"
else
	not_ok "snaplog lists every snapshot ($(grep -c '^1@' "$T/out") listed)"
fi
check_clean "parallax check clean" "$S"
finish
