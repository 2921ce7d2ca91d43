#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Data paths of dm-parallax under fio verification and a byte model:
# sparse writes, in-place overwrites, copy-on-write after a kernel snapshot,
# unaligned writes, discard; then offline export and parallax check.
set -u
source "$(dirname "$0")/lib.sh"

S=$T/store.img
new_store "$S"
"$P" create "$S" v1 --size 32M >/dev/null

cat >"$T/guest.sh" <<'GUEST'
set -u
KT_GUEST=1 source "$KT_DIR/lib.sh"
M=1048576
D=/dev/mapper/v1
KT_FIO_DEV=$D
if ! "$P" attach /dev/ubda v1 --data-extents 12 >"$T/g.out" 2>&1; then
	g_not_ok "attach v1"; sed 's/^/# /' "$T/g.out" >>"$T/results"; exit 1
fi
g_ok "attach v1: $(dmsetup table v1)"
store_uuid=$("$P" dump /dev/ubda | awk '$1 == "uuid" { gsub("-", "", $2); print $2 }')
uuid=$(dmsetup info -c --noheadings -o uuid v1)
[ "$uuid" = "PARALLAX-$store_uuid-1-v1" ] && g_ok "dm uuid names the store, VDI and device: $uuid" ||
	g_not_ok "dm uuid '$uuid', want PARALLAX-$store_uuid-1-v1"

# Sparse: random 4 KiB writes to 3 MiB of an 8 MiB region never written.
g_fio "sparse random writes verify" --rw=randwrite --bs=4k --offset=0 --size=4M --io_size=1536k
a=$(g_status v1 2)
[ "$a" = 384 ] && g_ok "sparse writes allocated 384 data blocks" ||
	g_not_ok "sparse writes allocated $a data blocks, want 384"
g_read $D $((24 * M)) $((8 * M)) "$T/tail.img"
cmp -s "$T/tail.img" <(head -c $((8 * M)) /dev/zero) && g_ok "never-written range reads zeros" ||
	g_not_ok "never-written range reads zeros"

# In place: fill 4-6M, then overwrite it in random order.
g_fio "sequential fill 4-6M verify" --rw=write --bs=64k --offset=4M --size=2M
a=$(g_status v1 2)
g_fio "in-place random overwrite verify" --rw=randwrite --bs=4k --offset=4M --size=2M --randseed=7
b=$(g_status v1 2)
[ "$a" = "$b" ] && g_ok "in-place overwrite allocated no data block ($a)" ||
	g_not_ok "in-place overwrite allocated $((b - a)) data blocks"
g_fio "mixed 4k read/write verify" --rw=randrw --bs=4k --offset=4M --size=2M --randseed=9

# Data for the snapshot: 8-10M and 14-16M.
head -c $((2 * M)) /dev/urandom >"$T/r1"
head -c $((2 * M)) /dev/urandom >"$T/r2"
dd if="$T/r1" of=$D bs=1M seek=8 oflag=direct status=none
dd if="$T/r2" of=$D bs=1M seek=14 oflag=direct status=none
dd if=$D of="$T/snap1.img" bs=1M iflag=direct status=none
id=$(dmsetup message v1 0 snapshot io-snap1 2>"$T/g.out")
[ "$id" = "1@1" ] && g_ok "snapshot message returns 1@1" || g_not_ok "snapshot message returned '$id' $(cat "$T/g.out")"
[ "$(g_status v1 7)" = 1 ] && g_ok "status counts 1 snapshot" || g_not_ok "status: $(dmsetup status v1)"

# Copy-on-write: every block of 4-6M is shared with the snapshot.
a=$(g_status v1 2)
g_fio "COW random overwrite after snapshot verify" --rw=randwrite --bs=4k --offset=4M --size=2M --randseed=11
b=$(g_status v1 2)
[ $((b - a)) = 512 ] && g_ok "COW allocated one data block per shared block (512)" ||
	g_not_ok "COW allocated $((b - a)) data blocks, want 512"
g_fio "overwrite after COW verify" --rw=randwrite --bs=4k --offset=4M --size=2M --randseed=12
c=$(g_status v1 2)
[ "$b" = "$c" ] && g_ok "second overwrite after COW allocated nothing" ||
	g_not_ok "second overwrite after COW allocated $((c - b)) blocks"

# Unaligned writes over writable (4-6M), sparse (6-8M, 10-12M) and
# shared (8-10M) blocks, against a byte model.
dd if=$D of="$T/model" bs=1M iflag=direct status=none
if $KTPY uwrite $D "$T/model" 42 300 $((4 * M)) $((12 * M)) >"$T/g.out" 2>&1; then
	g_ok "unaligned O_DIRECT writes: $(cat "$T/g.out")"
else
	g_not_ok "unaligned O_DIRECT writes"; sed 's/^/# /' "$T/g.out" >>"$T/results"
fi
dd if=$D of="$T/now" bs=1M iflag=direct status=none
cmp "$T/now" "$T/model" >"$T/g.out" 2>&1 && g_ok "device equals the byte model after unaligned writes" ||
	g_not_ok "device differs from the byte model after unaligned writes: $(head -1 "$T/g.out")"
g_fio "sequential writes of 512 B..128 KiB (multiples of 512) from 6M+1536 over writable/shared/sparse 6-12M verify" \
	--rw=write --bsrange=512-128k --offset=$((6 * M + 1536)) --size=$((6 * M - 4096)) --randseed=5
g_fio "bs=1536 random writes at offset 12M+512 verify" --rw=randwrite --bs=1536 \
	--offset=$((12 * M + 512)) --size=$((1536 * 1000))
g_fio "bs=1536 sequential rewrite over 12M+512 verify" --rw=write --bs=1536 \
	--offset=$((12 * M + 512)) --size=$((1536 * 1000)) --randseed=3

# Discard.
g_note "discard_granularity $(cat /sys/block/dm-0/queue/discard_granularity) discard_max_bytes $(cat /sys/block/dm-0/queue/discard_max_bytes)"
head -c $((2 * M)) /dev/urandom >"$T/r3"
dd if="$T/r3" of=$D bs=1M seek=16 oflag=direct status=none
dd if=$D of="$T/model" bs=1M iflag=direct status=none
a=$(g_status v1 2)
g_check "blkdiscard 16M len 4K (one whole block, writable)" blkdiscard -o $((16 * M)) -l 4096 $D
g_read $D $((16 * M)) 4096 "$T/x"
cmp -s "$T/x" <(head -c 4096 /dev/zero) && g_ok "discarded single block reads zeros" ||
	g_not_ok "discarded single block reads zeros"
g_check "blkdiscard 16M+8K len 1M-8K (many whole blocks, writable)" blkdiscard -o $((16 * M + 8192)) -l $((M - 8192)) $D
dd if=/dev/zero of="$T/model" bs=4096 seek=$((16 * 256)) count=1 conv=notrunc status=none
dd if=/dev/zero of="$T/model" bs=4096 seek=$((16 * 256 + 2)) count=254 conv=notrunc status=none
g_check "blkdiscard 17M+512 len 16K (partial first/last block)" blkdiscard -o $((17 * M + 512)) -l 16384 $D
dd if=/dev/zero of="$T/model" bs=4096 seek=$(((17 * M + 4096) / 4096)) count=3 conv=notrunc status=none
g_check "blkdiscard 17M+64K+512 len 1024 (inside one block)" blkdiscard -o $((17 * M + 65536 + 512)) -l 1024 $D
g_check "blkdiscard 14M+1M (blocks shared with the snapshot)" blkdiscard -o $((14 * M)) -l $M $D
g_read $D $((16 * M + 8192)) $((M - 8192)) "$T/x"
cmp -s "$T/x" <(head -c $((M - 8192)) /dev/zero) && g_ok "discarded multi-block range reads zeros" ||
	g_not_ok "discarded multi-block range (16M+8K, 1M-8K) reads zeros ($(cmp "$T/x" <(head -c $((M - 8192)) /dev/zero) 2>&1))"
dd if=$D of="$T/now" bs=1M iflag=direct status=none
cmp "$T/now" "$T/model" >"$T/g.out" 2>&1 &&
	g_ok "device equals model after discards (partial blocks and shared blocks keep data)" ||
	g_not_ok "device differs from model after discards: $(head -1 "$T/g.out")"
g_fio "rewrite discarded range verify" --rw=randwrite --bs=4k --offset=16M --size=2M

g_note "status: $(dmsetup status v1)"
[ "$(g_status v1 1)" = ok ] && g_ok "device mode ok" || g_not_ok "device mode: $(dmsetup status v1)"
dd if=$D of="$T/live.img" bs=1M iflag=direct status=none
g_check "detach v1" "$P" detach v1
GUEST

kt_boot "io" --timeout 300 --disk "$S" -- bash "$T/guest.sh"
if [ -f "$T/live.img" ]; then
	export_cmp "export of v1 equals what the guest read" "$S" v1 "$T/live.img"
	export_cmp "export of snapshot 1@1 equals the device when it was taken" "$S" 1@1 "$T/snap1.img"
	export_cmp "export of snapshot by label io-snap1" "$S" io-snap1 "$T/snap1.img"
fi
check_clean "parallax check clean after I/O" "$S"
finish
