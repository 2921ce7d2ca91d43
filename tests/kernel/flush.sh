#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Writes are acknowledged before their commit node is written, as the
# block layer allows, and made durable by FLUSH, FUA, snapshots and
# suspend (Documentation/dm-parallax.rst, "Acknowledgment, FLUSH and
# FUA").  Each guest below ends without detaching: the harness powers
# the kernel off with the table live, so what was never made durable may
# be lost, but
#  - what was flushed (fsync), written with O_SYNC or snapshotted is there;
#  - what was not is, block by block, either the old or the new data,
#    never anything else, and the store checks clean (no dangling link);
#  - a detach (suspend, then remove) leaves everything durable.
set -u
source "$(dirname "$0")/lib.sh"

S=$T/store.img
new_store "$S"
"$P" create "$S" fv --size 16M >/dev/null
head -c 4M /dev/urandom >"$T/a"
head -c 4M /dev/urandom >"$T/b"
head -c 4M /dev/urandom >"$T/c"
head -c 4M /dev/urandom >"$T/d"
head -c 16M /dev/urandom >"$T/e"

# 1. Flushed writes survive the power-off; unflushed ones are old or new.
cat >"$T/guest1.sh" <<'GUEST'
set -u
KT_GUEST=1 source "$KT_DIR/lib.sh"
g_check "attach fv" "$P" attach /dev/ubda fv --data-extents 4
g_check "write 4 MiB and fsync the device" \
	dd if="$T/a" of=/dev/mapper/fv bs=64k oflag=direct conv=fsync status=none
g_check "write 4 MiB more, never flushed" \
	dd if="$T/b" of=/dev/mapper/fv bs=64k seek=64 oflag=direct status=none
g_read /dev/mapper/fv 4194304 4194304 "$T/b.read"
cmp -s "$T/b" "$T/b.read" && g_ok "the unflushed writes read back before the power-off" ||
	g_not_ok "the unflushed writes read back before the power-off"
GUEST
kt_boot "flushed and unflushed writes, then power off" --disk "$S" -- bash "$T/guest1.sh"
check_clean "store checks clean after the power-off" "$S"
rm -f "$T/exp.img"
"$P" export "$S" fv "$T/exp.img" >/dev/null 2>&1
head -c 4M "$T/exp.img" >"$T/exp.a"
check "the flushed 4 MiB survived the power-off" cmp "$T/exp.a" "$T/a"
head -c 4M /dev/zero >"$T/zero"
if blocks_old_or_new "$T/exp.img" 4194304 "$T/zero" "$T/b" >"$T/out" 2>&1; then
	ok "unflushed blocks are old or new: $(cat "$T/out")"
else
	not_ok "unflushed blocks are old or new: $(cat "$T/out")"
fi

# 2. O_SYNC writes (FUA) and a snapshot make writes durable without fsync.
cat >"$T/guest2.sh" <<'GUEST'
set -u
KT_GUEST=1 source "$KT_DIR/lib.sh"
g_check "attach fv" "$P" attach /dev/ubda fv --data-extents 4
g_check "write 4 MiB with O_SYNC over new blocks" \
	dd if="$T/c" of=/dev/mapper/fv bs=64k seek=128 oflag=direct,sync status=none
g_check "write 4 MiB, never flushed" \
	dd if="$T/d" of=/dev/mapper/fv bs=64k seek=192 oflag=direct status=none
g_check "snapshot after it" dmsetup message fv 0 snapshot
GUEST
kt_boot "O_SYNC writes and a snapshot, then power off" --disk "$S" -- bash "$T/guest2.sh"
check_clean "store checks clean after the power-off" "$S"
rm -f "$T/exp.img"
"$P" export "$S" fv "$T/exp.img" >/dev/null 2>&1
dd if="$T/exp.img" of="$T/exp.c" bs=1M skip=8 count=4 status=none
check "the O_SYNC writes survived the power-off" cmp "$T/exp.c" "$T/c"
snap=$("$P" snaplog "$S" fv 2>/dev/null | awk 'NR > 1 && $1 ~ /@/ { s = $1 } END { print s }')
rm -f "$T/exp.img"
if [ -n "$snap" ] && "$P" export "$S" "$snap" "$T/exp.img" >/dev/null 2>&1; then
	dd if="$T/exp.img" of="$T/exp.d" bs=1M skip=12 count=4 status=none
	check "the snapshot ($snap) holds the writes acknowledged before it" \
		cmp "$T/exp.d" "$T/d"
else
	not_ok "the snapshot taken in the guest is in the snapshot log"
	"$P" snaplog "$S" fv 2>&1 | sed 's/^/# /' | head -5
fi

# 3. Detach drains: everything written before it is on the store.
cat >"$T/guest3.sh" <<'GUEST'
set -u
KT_GUEST=1 source "$KT_DIR/lib.sh"
g_check "attach fv" "$P" attach /dev/ubda fv --data-extents 12
g_check "overwrite all 16 MiB, never flushed" \
	dd if="$T/e" of=/dev/mapper/fv bs=64k oflag=direct status=none
g_check "detach fv" "$P" detach fv
GUEST
kt_boot "unflushed writes, then detach" --disk "$S" -- bash "$T/guest3.sh"
check_clean "store checks clean after the detach" "$S"
export_cmp "every write before the detach is on the store" "$S" fv "$T/e"
finish
