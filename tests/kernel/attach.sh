#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# parallax attach of snapshots and the one-writer rule on one host:
#  - a snapshot (V@SEQ or its label) attaches read-only through the
#    table option snapshot_seq and reads what the VDI held when it was
#    taken, while the live VDI moves on; writes to it fail;
#  - the kernel refuses snapshot_seq 0, a sequence number beyond the VDI's
#    newest snapshot, and snapshot_seq on a read-write table;
#  - a second read-write attach of a VDI already attached on this host is
#    refused and leaves the first device working with its claims;
#  - fencing at refill: an extent whose lock is broken while the device
#    allocates from it ("parallax unlock --offline --extent") gives no
#    more blocks once the reserve is used up; the device goes on in its
#    other extent and the data reads back.
set -u
source "$(dirname "$0")/lib.sh"

S=$T/store.img
new_store "$S"
"$P" create "$S" av --size 16M >/dev/null
"$P" create "$S" fv --size 16M >/dev/null
head -c 1M /dev/urandom >"$T/base"
head -c 64K /dev/urandom >"$T/w1"
head -c 64K /dev/urandom >"$T/w2"
head -c 4M /dev/urandom >"$T/fdata"
"$P" import "$S" av "$T/base" >/dev/null 2>&1
cat "$T/base" "$T/w1" >"$T/snap1"

cat >"$T/guest.sh" <<'GUEST'
set -u
KT_GUEST=1 source "$KT_DIR/lib.sh"
SZ=32768
"$P" attach /dev/ubda av >"$T/g.out" 2>&1 && g_ok "attach av" ||
	{ g_not_ok "attach av: $(cat "$T/g.out")"; exit 1; }
dd if="$T/w1" of=/dev/mapper/av bs=64K seek=16 oflag=direct status=none
id=$(dmsetup message av 0 snapshot mark 2>&1)
[ "$id" = 1@1 ] && g_ok "snapshot 1@1 labelled mark" || g_not_ok "snapshot: $id"
dd if="$T/w2" of=/dev/mapper/av bs=64K seek=16 oflag=direct status=none

g_check "attach av@1 as avs" "$P" attach /dev/ubda av@1 --name avs
g_check "attach the snapshot by its label as avl" "$P" attach /dev/ubda mark --name avl
for d in avs avl; do
	case $(dmsetup table $d) in
	*" 2 snapshot_seq 1") g_ok "$d's table: $(dmsetup table $d)" ;;
	*) g_not_ok "$d's table: $(dmsetup table $d)" ;;
	esac
	cmp -s "$T/snap1" <(dd if=/dev/mapper/$d bs=64K count=17 iflag=direct status=none) &&
		g_ok "$d reads av as it was at the snapshot" || g_not_ok "$d differs from av at the snapshot"
	g_fail "writing to $d fails" dd if="$T/w2" of=/dev/mapper/$d bs=64K count=1 oflag=direct status=none
done
cmp -s "$T/w2" <(dd if=/dev/mapper/av bs=64K skip=16 count=1 iflag=direct status=none) &&
	g_ok "the live VDI has moved on" || g_not_ok "the live VDI lost its newest write"
uuid=$(dmsetup info -c --noheadings -o uuid avs)
case $uuid in PARALLAX-*-1-avs) g_ok "avs's dm uuid: $uuid" ;; *) g_not_ok "avs's dm uuid: $uuid" ;; esac

# Tables the kernel must refuse.
tfail() {
	dmesg -c >/dev/null
	if dmsetup --noudevsync create kt-bad --table "$2" >"$T/g.out" 2>&1; then
		g_not_ok "table refused: $1"
		dmsetup --noudevsync remove kt-bad
	elif dmesg | grep -Eiq -- "$3"; then
		g_ok "table refused: $1: $(dmesg | grep -Ei -m1 -- "$3" | sed 's/^\[[ 0-9.]*\] //')"
	else
		g_not_ok "table refused: $1, but the kernel log does not say /$3/"
	fi
}
tfail "snapshot_seq 0" "0 $SZ parallax /dev/ubda 1 3 read_only snapshot_seq 0" "snapshot_seq"
tfail "snapshot_seq beyond the newest" "0 $SZ parallax /dev/ubda 1 3 read_only snapshot_seq 2" "no such snapshot"
tfail "snapshot_seq not a number" "0 $SZ parallax /dev/ubda 1 3 read_only snapshot_seq x" "snapshot_seq"
tfail "snapshot_seq on a read-write table" "0 $SZ parallax /dev/ubda 1 2 snapshot_seq 1" "read-only"

# One writer per VDI on this host too; read-only devices do not count.
g_check "attach av read-only as avr beside the writer" "$P" attach /dev/ubda av --name avr --read-only
if "$P" attach /dev/ubda av --name av2 >"$T/g.out" 2>&1; then
	g_not_ok "a second read-write attach of av is refused (it succeeded)"
	"$P" detach av2 >/dev/null 2>&1
else
	grep -q "already attached read-write on this host as av" "$T/g.out" &&
		g_ok "a second read-write attach of av is refused: $(cat "$T/g.out")" ||
		g_not_ok "second attach failed, but not saying why: $(cat "$T/g.out")"
fi
g_fail "no device av2" dmsetup info av2
dd if="$T/w1" of=/dev/mapper/av bs=64K seek=32 oflag=direct status=none &&
	cmp -s "$T/w1" <(dd if=/dev/mapper/av bs=64K skip=32 count=1 iflag=direct status=none) &&
	g_ok "av still writes after the refused attach" || g_not_ok "av broken by the refused attach"
for d in avs avl avr av; do
	g_check "detach $d" "$P" detach $d
done

# Fencing at refill.
"$P" attach /dev/ubda fv --data-extents 2 >"$T/g.out" 2>&1 && g_ok "attach fv with 2 data extents" ||
	{ g_not_ok "attach fv: $(cat "$T/g.out")"; exit 1; }
dd if="$T/fdata" of=/dev/mapper/fv bs=1M count=1 oflag=direct status=none
ext=$(dmsetup message fv 0 extents)
first=${ext%%:*}
g_note "fv's extents before the fence: $ext"
dmesg -c >/dev/null
g_check "parallax unlock --offline --extent $first while fv allocates from it" \
	"$P" unlock /dev/ubda --offline --extent "$first"
dd if="$T/fdata" of=/dev/mapper/fv bs=1M skip=1 seek=1 count=3 oflag=direct status=none &&
	g_ok "fv takes 3 MiB more after the fence (from its other extent)" || g_not_ok "fv's writes after the fence failed"
ext=$(dmsetup message fv 0 extents)
case " $ext " in
*" $first:d:0:fenced "*) g_ok "extents shows $first fenced: $ext" ;;
*) g_not_ok "extents after the fence: $ext" ;;
esac
dmesg | grep -q "extent $first fenced" && g_ok "the kernel log says: $(dmesg | grep -m1 "extent $first fenced" | sed 's/^\[[ 0-9.]*\] //')" ||
	g_not_ok "no fencing message in the kernel log"
cmp -s "$T/fdata" <(dd if=/dev/mapper/fv bs=1M count=4 iflag=direct status=none) &&
	g_ok "fv reads back all 4 MiB" || g_not_ok "fv's data differs after the fence"
"$P" dump /dev/ubda >"$T/cat.out" 2>&1
awk -v e="$first" '$1 == "extent" && $2 == e' "$T/cat.out" | grep -q "holder 0 " &&
	g_ok "extent $first has no holder on disk" || g_not_ok "extent $first: $(awk -v e="$first" '$1 == "extent" && $2 == e' "$T/cat.out")"
g_check "detach fv" "$P" detach fv
GUEST

kt_boot "attach" --timeout 300 --disk "$S" -- bash "$T/guest.sh"
check_clean "parallax check clean" "$S"
"$P" export "$S" av@1 "$T/exp1" >/dev/null 2>&1
cmp -s <(head -c $((17 * 65536)) "$T/exp1") "$T/snap1" && ok "av@1 exported offline equals what the guest read" ||
	not_ok "av@1 exported offline differs"
"$P" export "$S" fv "$T/expf" >/dev/null 2>&1
cmp -s <(head -c 4M "$T/expf") <(head -c 4M "$T/fdata") && ok "fv exported offline equals what was written" ||
	not_ok "fv exported offline differs"
finish
