#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Bad input to the kernel target: every case must fail with a clear
# message in the kernel log and no oops (uml-run fails on any splat).
#  - table lines: missing arguments, unknown device, a device that is no
#    blockstore, VDI id 0 / out of range / free slot / deleted / not a
#    number, length beyond the VDI, malformed and unknown options, a
#    read-write table for an unclaimed VDI, a corrupt VDI record;
#  - messages: malformed and unknown, extents out of range or held by
#    another host, stale lock generations (fencing), snapshot on a
#    read-only table;
#  - corrupt radix pointers (into the VDI registry, the system area, a
#    bitmap, a free extent, beyond the device, data link into a metadata
#    extent): reading gives EIO, status "failed corrupt_radix_node", and
#    nothing is written outside the extents (those blocks are unchanged).
set -u
source "$(dirname "$0")/lib.sh"

S=$T/store.img
new_store "$S"
truncate -s 64M "$T/zero.img"
head -c 1M /dev/urandom >"$T/data1"
"$P" create "$S" bv --size 16M >/dev/null      # 1: messages
"$P" create "$S" bu --size 16M >/dev/null      # 2: never claimed
"$P" create "$S" bdel --size 16M >/dev/null    # 3: deleted
"$P" create "$S" bcor --size 16M >/dev/null    # 4: corrupt VDI record
"$P" create "$S" brad --size 16M >/dev/null    # 5: corrupt radix pointers
"$P" create "$S" bh2 --size 16M >/dev/null     # 6: attached as host 2
"$P" import "$S" bv "$T/data1" >/dev/null 2>&1
"$P" import "$S" brad "$T/data1" >/dev/null 2>&1
"$P" delete "$S" bdel >/dev/null
# VDI id k's record is block 3 + k (registry from block 4, slot 0 unused).
rec() { echo $((3 + $1)); }
"$P" dump "$S" "$(rec 4)" | grep -q 'VDI record (ok)' && ok "bcor record found at block $(rec 4)" ||
	not_ok "bcor record found at block $(rec 4)"
# Flip one byte of bcor's record: its size field.
printf '\xff' | dd of="$S" bs=1 seek=$(($(rec 4) * 4096 + 50)) conv=notrunc status=none
"$P" dump "$S" "$(rec 4)" >"$T/out" 2>&1
grep -qi 'crc\|checksum\|bad\|corrupt' "$T/out" && ok "host dump sees bcor's record as damaged" ||
	not_ok "host dump sees bcor's record as damaged"

# brad: height 2, root -> level-0 node -> data.  Corrupt level-0 entries
# 1..6 (virtual blocks 1..6) and root entry 1 (virtual blocks 512..1023).
root=$("$P" dump "$S" "$(rec 5)" | sed -n 's/.* root \([0-9]*\).*/\1/p')
leaf=$($KTPY peek "$S" "$root" 0)
leaf=$((leaf & ((1 << 62) - 1)))
data0=$($KTPY peek "$S" "$leaf" 0)
bitmap=$(((data0 / 1024) * 1024))    # first block of the data extent
freeblk=$((200 * 1024 + 7))          # extent 200: free
targets="$(rec 2) 1500 $bitmap $freeblk $((1 << 40)) $root"
i=1
for t in $targets; do
	$KTPY poke "$S" "$leaf" $i "$t"
	i=$((i + 1))
done
$KTPY poke "$S" "$root" 1 "$(rec 2)"
echo "# brad root $root leaf $leaf data0 $data0; level-0 entries 1..6 -> $targets; root[1] -> $(rec 2)"
for b in $targets; do
	[ "$b" -lt 262144 ] && dd if="$S" bs=4096 skip="$b" count=1 status=none | sha256sum >>"$T/targets.before"
done
dd if="$S" bs=1M skip=512 status=none | sha256sum >"$T/upper.before"   # extents 128..255: free
check "parallax check notices the corrupt pointers" bash -c "! '$P' check '$S' >/dev/null 2>&1"
export root leaf bitmap freeblk

cat >"$T/guest.sh" <<'GUEST'
set -u
KT_GUEST=1 source "$KT_DIR/lib.sh"
SZ=32768        # sectors in a 16 MiB VDI
dmesg -c >/dev/null
# tfail DESC LOG_REGEX TABLE [dmsetup options]: creating must fail, the
# kernel log must say why (matching LOG_REGEX), and no device may remain.
tfail() {
	local desc=$1 re=$2 table=$3
	shift 3
	dmesg -c >/dev/null
	if dmsetup --noudevsync create kt-bad "$@" --table "$table" >"$T/g.out" 2>&1; then
		g_not_ok "table refused: $desc ('$table' was accepted)"
		dmsetup --noudevsync remove kt-bad >/dev/null 2>&1
		return
	fi
	dmesg >"$T/dmesg.out"
	if dmsetup info kt-bad >/dev/null 2>&1; then
		g_not_ok "table refused: $desc (device left behind)"
		dmsetup --noudevsync remove kt-bad >/dev/null 2>&1
	elif grep -Eiq -- "$re" "$T/dmesg.out"; then
		g_ok "table refused: $desc: $(grep -Ei -m1 -- "$re" "$T/dmesg.out" | sed 's/^\[[ 0-9.]*\] //')"
	else
		g_not_ok "table refused: $desc, but the kernel log does not say /$re/"
		sed 's/^/# /' "$T/dmesg.out" | tail -5 >>"$T/results"
	fi
}
tfail "no arguments" "expected|argument" "0 $SZ parallax"
tfail "no VDI id" "expected|argument" "0 $SZ parallax /dev/ubda"
tfail "unknown device" "device|lookup|not found" "0 $SZ parallax /dev/nosuchdisk 1"
tfail "device is not a blockstore" "superblock|blockstore|magic" "0 $SZ parallax /dev/ubdb 1"
tfail "VDI id 0" "VDI id|invalid" "0 $SZ parallax /dev/ubda 0"
tfail "VDI id beyond the registry" "VDI id|range|no such VDI" "0 $SZ parallax /dev/ubda 1024"
tfail "VDI id 2^64" "VDI id|range|invalid" "0 $SZ parallax /dev/ubda 18446744073709551616"
tfail "VDI id not a number" "VDI id|invalid" "0 $SZ parallax /dev/ubda abc"
tfail "VDI id with trailing junk" "VDI id|invalid" "0 $SZ parallax /dev/ubda 1x"
tfail "free VDI slot" "free|no such VDI|not in use" "0 $SZ parallax /dev/ubda 7 1 read_only"
tfail "deleted VDI" "deleted" "0 $SZ parallax /dev/ubda 3 1 read_only"
tfail "length beyond the VDI" "exceeds|size" "0 $((SZ + 8)) parallax /dev/ubda 1 1 read_only"
tfail "2 cache_mb (value missing)" "missing|argument" "0 $SZ parallax /dev/ubda 1 2 cache_mb"
tfail "1 cache_mb (value missing)" "missing|argument|value" "0 $SZ parallax /dev/ubda 1 2 read_only cache_mb"
tfail "cache_mb not a number" "cache_mb|invalid" "0 $SZ parallax /dev/ubda 1 3 read_only cache_mb lots"
tfail "host_id 0" "host_id|invalid" "0 $SZ parallax /dev/ubda 1 3 read_only host_id 0"
tfail "host_id 2^32" "host_id|invalid" "0 $SZ parallax /dev/ubda 1 3 read_only host_id 4294967296"
tfail "low_water not a number" "low_water" "0 $SZ parallax /dev/ubda 1 3 read_only low_water -1"
tfail "no_space_timeout not a number" "no_space_timeout|invalid" "0 $SZ parallax /dev/ubda 1 3 read_only no_space_timeout x"
tfail "unknown option (alone)" "unrecognised|unknown" "0 $SZ parallax /dev/ubda 1 1 frobnicate"
tfail "unknown option with a value" "unrecognised|unknown" "0 $SZ parallax /dev/ubda 1 3 read_only frobnicate 5"
tfail "option count beyond the arguments" "argument|missing|count" "0 $SZ parallax /dev/ubda 1 5 read_only"
tfail "option count not a number" "argument|invalid" "0 $SZ parallax /dev/ubda 1 x read_only"
tfail "read-write table for an unclaimed VDI" "claimed" "0 $SZ parallax /dev/ubda 2"
tfail "read-write table with another host id" "claimed" "0 $SZ parallax /dev/ubda 2 2 host_id 7"
tfail "corrupt VDI record (read-only)" "corrupt|checksum|VDI record|invalid" "0 $SZ parallax /dev/ubda 4 1 read_only"

# A valid read-only table for the unclaimed VDI works and refuses writes.
if dmsetup --noudevsync create kt-ro --table "0 $SZ parallax /dev/ubda 2 1 read_only" >"$T/g.out" 2>&1; then
	dmsetup mknodes kt-ro
	g_ok "read-only table for an unclaimed VDI: $(dmsetup table kt-ro)"
	cmp -s <(dd if=/dev/mapper/kt-ro bs=1M iflag=direct status=none) <(head -c 16M /dev/zero) &&
		g_ok "read-only unclaimed VDI reads zeros" || g_not_ok "read-only unclaimed VDI reads zeros"
	g_fail "write to a read_only table fails" \
		dd if=/dev/zero of=/dev/mapper/kt-ro bs=4096 count=1 oflag=direct status=none
	g_fail "snapshot on a read_only table fails" dmsetup message kt-ro 0 snapshot
	[ "$(g_status kt-ro 1)" = read_only ] && g_ok "status mode read_only" || g_not_ok "status: $(dmsetup status kt-ro)"
	dmsetup --noudevsync remove kt-ro
else
	g_not_ok "read-only table for an unclaimed VDI: $(cat "$T/g.out")"
fi

# Messages on a claimed, attached VDI.
"$P" attach /dev/ubda bv --data-extents 2 >"$T/g.out" 2>&1 && g_ok "attach bv" ||
	{ g_not_ok "attach bv: $(cat "$T/g.out")"; exit 1; }
PARALLAX_RUN_DIR=$T/run2 "$P" attach /dev/ubda bh2 --host-id 2 --data-extents 1 >"$T/g.out" 2>&1 &&
	g_ok "attach bh2 as host 2" || g_not_ok "attach bh2 as host 2: $(cat "$T/g.out")"
"$P" dump /dev/ubda >"$T/catalogue.during" 2>&1
h2ext=$(awk '/holder 2 / { print $2; exit }' "$T/catalogue.during")
h1ext=$(awk '/holder 1 / && /data/ { print $2; exit }' "$T/catalogue.during")
freeext=$(awk '/free/ && /^ *extent/ { print $2; exit }' "$T/catalogue.during")
g_note "extent held by host 2: ${h2ext:-?}; by host 1: ${h1ext:-?}"
mfail() {
	local desc=$1 re=$2
	shift 2
	dmesg -c >/dev/null
	if dmsetup message bv 0 "$@" >"$T/g.out" 2>&1; then
		g_not_ok "message refused: $desc (accepted: $(cat "$T/g.out"))"
	elif dmesg | grep -Eiq -- "$re"; then
		g_ok "message refused: $desc: $(dmesg | grep -Ei -m1 -- "$re" | sed 's/^\[[ 0-9.]*\] //')"
	else
		g_not_ok "message refused: $desc, but the kernel log does not say /$re/"
		dmesg | tail -3 | sed 's/^/# /' >>"$T/results"
	fi
}
mfail "snapshot a b c" "snapshot|argument|label" snapshot a b c
mfail "snapshot with an all-digit label" "label" snapshot 123
mfail "snapshot with a label containing /" "label" snapshot a/b
mfail "add_extent x" "extent|invalid" add_extent x
mfail "add_extent (no number)" "extent|argument" add_extent
mfail "add_extent 999999" "extent|range" add_extent 999999
mfail "add_extent 0 (system extent)" "extent|system|type" add_extent 0
[ -n "$h2ext" ] && mfail "add_extent $h2ext (held by host 2)" "extent|host|holder" add_extent "$h2ext"
[ -n "$freeext" ] && mfail "add_extent $freeext (free, not claimed)" "extent|host|holder|free" add_extent "$freeext"
mfail "release_extent x" "extent|invalid" release_extent x
mfail "release_extent 999999" "extent|range|held" release_extent 999999
mfail "frobnicate" "unknown|unrecognised|message" frobnicate
# Fencing (Documentation/cluster.rst): grants carry generations.
lg=$("$P" dump /dev/ubda 4 | sed -n 's/.* lock_generation \([0-9]*\).*/\1/p')
h1gen=$(awk -v e="$h1ext" '$1 == "extent" && $2 == e {
	for (i = 1; i < NF; i++) if ($i == "generation") print $(i + 1) }' "$T/catalogue.during")
g_note "bv lock_generation ${lg:-?}; extent $h1ext generation ${h1gen:-?}"
tfail "lock_gen one behind the VDI's" "stale|generation" "0 $SZ parallax /dev/ubda 1 2 lock_gen $((lg - 1))"
tfail "lock_gen ahead of the VDI's" "stale|generation" "0 $SZ parallax /dev/ubda 1 2 lock_gen $((lg + 1))"
tfail "lock_gen not a number" "lock_gen" "0 $SZ parallax /dev/ubda 1 2 lock_gen x"
tfail "lock_gen without a value" "missing|value|argument" "0 $SZ parallax /dev/ubda 1 1 lock_gen"
dmsetup message bv 0 extents >"$T/g.out" 2>&1
grep -Eq "(^| )$h1ext:d:[0-9]+( |$)" "$T/g.out" && g_ok "extents lists $h1ext as data: $(cat "$T/g.out")" ||
	g_not_ok "extents message: $(cat "$T/g.out")"
mfail "extents with an argument" "unknown|malformed" extents 1
g_check "release_extent $h1ext" dmsetup message bv 0 release_extent "$h1ext"
mfail "add_extent $h1ext with a stale generation" "stale|generation" add_extent "$h1ext" $((h1gen - 1))
mfail "add_extent $h1ext with a future generation" "stale|generation" add_extent "$h1ext" $((h1gen + 1))
mfail "add_extent $h1ext with a bad generation" "usage|extent" add_extent "$h1ext" x
mfail "add_extent with too many arguments" "unknown|malformed" add_extent "$h1ext" "$h1gen" 1
g_check "add_extent $h1ext with its generation $h1gen" dmsetup message bv 0 add_extent "$h1ext" "$h1gen"
g_check "lockd unreachable" dmsetup message bv 0 lockd unreachable
[ "$(g_status bv 11)" = unreachable ] && g_ok "status shows lockd unreachable" ||
	g_not_ok "status lockd field: $(dmsetup status bv)"
mfail "lockd with an upper-case word" "lockd" lockd Up
mfail "lockd with a long word" "lockd" lockd abcdefghijklmnopq
mfail "lockd without a word" "unknown|malformed" lockd
[ "$(g_status bv 6)" = 3 ] && g_ok "bv still holds 3 extents" || g_not_ok "bv extents: $(dmsetup status bv)"
[ "$(g_status bv 1)" = ok ] && g_ok "bv mode ok after bad messages" || g_not_ok "bv: $(dmsetup status bv)"
head -c 64K /dev/urandom >"$T/w"
dd if="$T/w" of=/dev/mapper/bv bs=64K seek=3 oflag=direct status=none
cmp -s "$T/w" <(dd if=/dev/mapper/bv bs=64K skip=3 count=1 iflag=direct status=none) &&
	cmp -s <(head -c 192K "$T/data1") <(dd if=/dev/mapper/bv bs=64K count=3 iflag=direct status=none) &&
	g_ok "bv reads and writes correctly after bad messages" || g_not_ok "bv reads and writes correctly after bad messages"
id=$(dmsetup message bv 0 snapshot ok-label 2>&1)
[ "$id" = 1@1 ] && g_ok "a good snapshot message still works (1@1)" || g_not_ok "snapshot after bad messages: $id"
tfail "VDI claimed by host 1 loaded as host 2" "claimed" "0 $SZ parallax /dev/ubda 1 2 host_id 2"
g_check "detach bv" "$P" detach bv
PARALLAX_RUN_DIR=$T/run2 g_check "detach bh2" "$P" detach bh2

# Corrupt radix pointers (brad).  A fresh table per case, so each bad
# pointer is met by a device that has not failed yet.
B=/dev/mapper/brad
attach_brad() {
	"$P" detach brad >/dev/null 2>&1
	"$P" attach /dev/ubda brad --data-extents 1 >"$T/g.out" 2>&1 ||
		{ g_not_ok "attach brad: $(cat "$T/g.out")"; return 1; }
}
attach_brad || exit 1
cmp -s <(head -c 4096 "$T/data1") <(dd if=$B bs=4096 count=1 iflag=direct status=none) &&
	g_ok "brad block 0 (good pointer) reads correctly" || g_not_ok "brad block 0 (good pointer) reads correctly"
for blk in 1 2 3 4 5 6 600; do
	attach_brad || break
	dmesg -c >/dev/null
	if dd if=$B of=/dev/null bs=4096 skip=$blk count=1 iflag=direct status=none 2>"$T/g.out"; then
		g_not_ok "brad read of block $blk (corrupt pointer) fails"
	else
		grep -q 'Input/output error' "$T/g.out" && g_ok "brad read of block $blk (corrupt pointer) fails with EIO" ||
			g_not_ok "brad read of block $blk fails, but not with EIO: $(cat "$T/g.out")"
	fi
	st=$(dmsetup status brad | cut -d' ' -f4-)
	case "$st" in
	failed*corrupt_radix_node" "*) g_ok "brad status after block $blk: failed ... corrupt_radix_node" ;;
	*) g_not_ok "brad status after block $blk: $st" ;;
	esac
	cmp -s <(head -c 4096 "$T/data1") <(dd if=$B bs=4096 count=1 iflag=direct status=none) &&
		g_ok "failed brad still serves block 0" || g_not_ok "failed brad still serves block 0"
done
for blk in 1 2 3 4 5 6 600; do
	attach_brad || break
	if dd if="$T/data1" of=$B bs=4096 seek=$blk count=1 oflag=direct status=none 2>"$T/g.out"; then
		g_not_ok "brad 4 KiB write to block $blk (corrupt pointer) fails"
	else
		g_ok "brad 4 KiB write to block $blk (corrupt pointer) fails: $(tail -1 "$T/g.out")"
	fi
	attach_brad || break
	if dd if="$T/data1" of=$B bs=512 seek=$((blk * 8 + 1)) count=1 oflag=direct status=none 2>"$T/g.out"; then
		g_not_ok "brad 512-byte write into block $blk (corrupt pointer) fails"
	else
		g_ok "brad 512-byte write into block $blk (corrupt pointer) fails"
	fi
	[ "$(g_status brad 1)" = failed ] && g_ok "brad failed after the write to block $blk" ||
		g_not_ok "brad after the write to block $blk: $(dmsetup status brad)"
done
attach_brad && g_fail "brad: a snapshot of a failed device is refused" \
	sh -c "dd if=/dev/mapper/brad of=/dev/null bs=4096 skip=1 count=1 iflag=direct 2>/dev/null; dmsetup message brad 0 snapshot"
g_check "detach brad" "$P" detach brad
GUEST

kt_boot "badinput" --timeout 300 --disk "$S" --disk "$T/zero.img" -- bash "$T/guest.sh"
: >"$T/targets.after"
for b in $targets; do
	[ "$b" -lt 262144 ] && dd if="$S" bs=4096 skip="$b" count=1 status=none | sha256sum >>"$T/targets.after"
done
cmp -s "$T/targets.before" "$T/targets.after" &&
	ok "blocks the corrupt pointers named are unchanged (VDI record, system area, bitmap, free extent, root)" ||
	not_ok "a block a corrupt pointer named was written"
dd if="$S" bs=1M skip=512 status=none | sha256sum | cmp -s - "$T/upper.before" &&
	ok "free upper half of the store untouched" || not_ok "free upper half of the store was written"
cmp -s "$T/zero.img" <(head -c 64M /dev/zero) && ok "the non-blockstore disk was not written" ||
	not_ok "the non-blockstore disk was written"
export_cmp "bu (only loaded read-only) still empty" "$S" bu <(head -c 16M /dev/zero)
finish
