#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Two VDIs and a clone of one of them attached at the same time, each
# written concurrently by its own fio job with crc32c verification.  The
# clone shares blocks with its parent's snapshot, which both overwrite.
# Snapshots of the origin and the clone are taken while the jobs run.
# Ranges fio did not touch must still hold the imported data; offline the
# snapshot is unchanged, exports equal what the guest read, check clean.
set -u
source "$(dirname "$0")/lib.sh"

S=$T/store.img
new_store "$S"
head -c 16M /dev/urandom >"$T/base.img"
"$P" create "$S" ma --size 16M >/dev/null
"$P" create "$S" mb --size 16M >/dev/null
"$P" import "$S" ma "$T/base.img" >/dev/null
"$P" snapshot "$S" ma --label mbase >/dev/null
"$P" create "$S" mc --from mbase >/dev/null

cat >"$T/guest.sh" <<'GUEST'
set -u
KT_GUEST=1 source "$KT_DIR/lib.sh"
for v in ma mb mc; do
	"$P" attach /dev/ubda $v --data-extents 4 >"$T/g.out" 2>&1 && g_ok "attach $v" ||
		{ g_not_ok "attach $v: $(cat "$T/g.out")"; exit 1; }
done
KT_FIO_TAG=a KT_FIO_DEV=/dev/mapper/ma g_fio "fio on ma (0-6M over snapshot-shared blocks) verify" \
	--rw=randwrite --bs=4k --offset=0 --size=6M --io_size=3M --randseed=1 &
KT_FIO_TAG=b KT_FIO_DEV=/dev/mapper/mb g_fio "fio on mb (sparse 0-6M) verify" \
	--rw=randwrite --bs=4k --offset=0 --size=6M --io_size=3M --randseed=2 &
KT_FIO_TAG=c KT_FIO_DEV=/dev/mapper/mc g_fio "fio on clone mc (4-10M, shared blocks) verify" \
	--rw=randwrite --bs=4k --offset=4M --size=6M --io_size=3M --randseed=3 &
# Snapshots of ma and mc while all three jobs run.
(for i in 2 3 4 5 6; do
	echo "$(dmsetup message ma 0 snapshot 2>&1) $(dmsetup message mc 0 snapshot 2>&1)"
	sleep 0.2
done) >"$T/snapids" &
wait
want=$(for i in 2 3 4 5 6; do echo "1@$i 3@$((i - 1))"; done)
[ "$(cat "$T/snapids")" = "$want" ] && g_ok "5 snapshots each of ma and mc during the writes" ||
	g_not_ok "snapshots during the writes: $(tr '\n' ' ' <"$T/snapids")"
for v in ma mb mc; do
	dd if=/dev/mapper/$v of="$T/$v.img" bs=1M iflag=direct status=none
	[ "$(g_status $v 1)" = ok ] && g_ok "$v mode ok" || g_not_ok "$v: $(dmsetup status $v)"
done
# Untouched ranges keep the imported data (fio's verify covers the rest).
cmp -s <(tail -c 10M "$T/ma.img") <(tail -c 10M "$T/base.img") &&
	g_ok "ma 6-16M still holds the imported data" || g_not_ok "ma 6-16M still holds the imported data"
cmp -s <(head -c 4M "$T/mc.img") <(head -c 4M "$T/base.img") &&
	cmp -s <(tail -c 6M "$T/mc.img") <(tail -c 6M "$T/base.img") &&
	g_ok "mc 0-4M and 10-16M still hold the snapshot's data" || g_not_ok "mc 0-4M and 10-16M still hold the snapshot's data"
cmp -s <(tail -c 10M "$T/mb.img") <(head -c 10M /dev/zero) &&
	g_ok "mb 6-16M reads zeros" || g_not_ok "mb 6-16M reads zeros"
for v in ma mb mc; do g_check "detach $v" "$P" detach $v; done
GUEST

kt_boot "multi" --timeout 300 --disk "$S" -- bash "$T/guest.sh"
export_cmp "snapshot mbase unchanged" "$S" mbase "$T/base.img"
for v in ma mb mc; do
	[ -f "$T/$v.img" ] && export_cmp "export $v = what the guest read" "$S" $v "$T/$v.img"
done
check_clean "parallax check clean" "$S"
finish
