#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Running out of space and grants: with one data extent granted, writes
# beyond it wait (status out_of_space) until add_extent grants another,
# then complete with the right data; a table reloaded with
# error_if_no_space fails such writes at once with ENOSPC and the device
# keeps working; release_extent stops allocation from an extent.  A
# noflush suspend hands waiting writes back (they wait again after the
# resume); a normal suspend fails them instead of stalling.
set -u
source "$(dirname "$0")/lib.sh"

S=$T/store.img
new_store "$S"
"$P" create "$S" sp --size 32M >/dev/null

cat >"$T/guest.sh" <<'GUEST'
set -u
KT_GUEST=1 source "$KT_DIR/lib.sh"
D=/dev/mapper/sp
"$P" attach /dev/ubda sp --data-extents 2 >"$T/g.out" 2>&1 && g_ok "attach sp with 2 data extents" ||
	{ g_not_ok "attach sp: $(cat "$T/g.out")"; exit 1; }
"$P" dump /dev/ubda >"$T/catalogue" 2>&1
mapfile -t ext < <(awk '$1 == "extent" && $3 == "data" && /holder 1 / { print $2 }' "$T/catalogue")
g_note "data extents held: ${ext[*]}"
[ ${#ext[@]} = 2 ] && g_ok "catalogue shows 2 data extents held by host 1" ||
	{ g_not_ok "catalogue: $(grep extent "$T/catalogue" | tr '\n' ' ')"; exit 1; }
g_check "release_extent ${ext[1]}" dmsetup message sp 0 release_extent "${ext[1]}"
[ "$(g_status sp 6)" = 2 ] && g_ok "status: 2 extents held after the release" || g_not_ok "status: $(dmsetup status sp)"
g_fail "release_extent ${ext[1]} again" dmsetup message sp 0 release_extent "${ext[1]}"

# 1600 blocks need more than one extent (1023 blocks + a reserve of 256).
head -c $((1600 * 4096)) /dev/urandom >"$T/big"
dd if="$T/big" of=$D bs=64K oflag=direct status=none 2>"$T/dd.err" &
ddpid=$!
mode=
for i in $(seq 1 100); do
	mode=$(g_status sp 1)
	[ "$mode" = out_of_space ] && break
	kill -0 $ddpid 2>/dev/null || break
	sleep 0.1
done
[ "$mode" = out_of_space ] && g_ok "writes beyond the granted extent wait: status out_of_space ($(dmsetup status sp | cut -d' ' -f4-))" ||
	g_not_ok "status while writing past the grant: $(dmsetup status sp) (dd running: $(kill -0 $ddpid 2>/dev/null && echo yes || echo no))"
sleep 1
kill -0 $ddpid 2>/dev/null && g_ok "the writer is still waiting" || g_not_ok "the writer did not wait: $(cat "$T/dd.err")"
# A noflush suspend hands the waiting writes back to dm; after the
# resume they wait again.
t0=$SECONDS
g_check "suspend --noflush with writes waiting for space" timeout 30 dmsetup --noudevsync suspend --noflush sp
g_note "noflush suspend took $((SECONDS - t0)) s"
g_check "resume" dmsetup --noudevsync resume sp
sleep 0.5
kill -0 $ddpid 2>/dev/null && [ "$(g_status sp 1)" = out_of_space ] &&
	g_ok "after the resume the writes wait again (out_of_space)" ||
	g_not_ok "after the resume: $(dmsetup status sp); dd running: $(kill -0 $ddpid 2>/dev/null && echo yes || echo no) $(cat "$T/dd.err")"
g_check "add_extent ${ext[1]} (the released one)" dmsetup message sp 0 add_extent "${ext[1]}"
wait $ddpid
rc=$?
[ $rc = 0 ] && g_ok "the waiting writes complete after the grant" || g_not_ok "writer failed ($rc): $(cat "$T/dd.err")"
[ "$(g_status sp 1)" = ok ] && g_ok "status back to ok" || g_not_ok "status: $(dmsetup status sp)"
cmp -s "$T/big" <(dd if=$D bs=64K count=100 iflag=direct status=none) &&
	g_ok "all 1600 blocks read back" || g_not_ok "data after the grant differs"

# Reload with error_if_no_space: writes past the grants fail at once.
table=$(dmsetup table sp)
case $table in
*" 2 lock_gen "*) enospc_table=${table/ 2 lock_gen / 3 error_if_no_space lock_gen } ;;
*) enospc_table="$table 1 error_if_no_space" ;;
esac
g_check "reload with error_if_no_space" dmsetup --noudevsync reload sp --table "$enospc_table"
g_note "new table line: $(dmsetup table --inactive sp)"
g_check "resume" dmsetup --noudevsync resume sp
g_note "status after reload: $(dmsetup status sp)"
# A new table starts with no grants: grant the data and metadata extents.
meta=$(awk '$1 == "extent" && $3 == "metadata" && /holder 1 / { print $2 }' "$T/catalogue")
for e in "${ext[@]}" $meta; do
	g_check "add_extent $e to the reloaded table" dmsetup message sp 0 add_extent "$e"
done
[ "$(g_status sp 6)" = 3 ] && g_ok "reloaded table holds 3 extents" || g_not_ok "status: $(dmsetup status sp)"
g_note "status after add_extent: $(dmsetup status sp)"
cmp -s "$T/big" <(dd if=$D bs=64K count=100 iflag=direct status=none) &&
	g_ok "data intact after the reload" || g_not_ok "data differs after the reload"
t0=$SECONDS
if timeout 20 dd if=/dev/urandom of=$D bs=64K seek=200 count=160 oflag=direct status=none 2>"$T/dd.err"; then
	g_not_ok "writing 2560 more blocks past the grants fails (it succeeded)"
else
	grep -q 'No space left' "$T/dd.err" && g_ok "writing past the grants fails with ENOSPC in $((SECONDS - t0)) s" ||
		g_not_ok "writing past the grants: $(cat "$T/dd.err")"
fi
cmp -s "$T/big" <(dd if=$D bs=64K count=100 iflag=direct status=none) &&
	g_ok "old data intact after ENOSPC" || g_not_ok "old data differs after ENOSPC"
# Back to waiting for space; a normal suspend fails the waiting writes
# instead of stalling until no_space_timeout.
g_check "reload without error_if_no_space" dmsetup --noudevsync reload sp --table "$table"
g_check "resume" dmsetup --noudevsync resume sp
for e in "${ext[@]}" $meta; do dmsetup message sp 0 add_extent "$e" >/dev/null 2>&1; done
g_note "status: $(dmsetup status sp)"
dd if=/dev/urandom of=$D bs=64K seek=400 count=4 oflag=direct status=none 2>"$T/dd.err" &
ddpid=$!
sleep 1
[ "$(g_status sp 1)" = out_of_space ] && g_ok "writes wait again with no free block" || g_not_ok "status: $(dmsetup status sp)"
t0=$SECONDS
g_check "suspend with writes waiting for space" timeout 30 dmsetup --noudevsync suspend sp
g_note "suspend took $((SECONDS - t0)) s"
wait $ddpid
rc=$?
[ $rc != 0 ] && g_ok "the waiting writes failed: $(cat "$T/dd.err")" || g_not_ok "the waiting writes succeeded?"
g_check "resume" dmsetup --noudevsync resume sp
cmp -s "$T/big" <(dd if=$D bs=64K count=100 iflag=direct status=none) &&
	g_ok "old data intact after the failed writes" || g_not_ok "old data differs after the failed writes"
dd if=$D of="$T/live.img" bs=1M iflag=direct status=none
g_note "status: $(dmsetup status sp)"
g_check "detach sp" "$P" detach sp
GUEST

kt_boot "space" --timeout 300 --disk "$S" -- bash "$T/guest.sh"
[ -f "$T/live.img" ] && export_cmp "export sp = what the guest read" "$S" sp "$T/live.img"
check_clean "parallax check clean" "$S"
finish
