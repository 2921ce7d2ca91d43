#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Deliberately damaged stores: check must fail and name the block and the
# problem, and the other commands must refuse the damage cleanly.
source "$(dirname "$0")/lib.sh"

PRISTINE=$T/pristine.img
S=$T/store.img
MASK=$(((1 << 63) - 1))

truncate -s 1G "$PRISTINE"
"$P" format "$PRISTINE" --extent-size 4M >/dev/null
"$P" create "$PRISTINE" base --size 64M >/dev/null
head -c 8M /dev/urandom >"$T/img"
"$P" import "$PRISTINE" base "$T/img" 2>/dev/null
"$P" snapshot "$PRISTINE" base --label s1 >/dev/null
head -c 1M /dev/urandom >"$T/img2"
"$P" import "$PRISTINE" base "$T/img2" 2>/dev/null
"$P" create "$PRISTINE" web --from s1 >/dev/null
"$P" create "$PRISTINE" deep --size 2G >/dev/null
"$P" import "$PRISTINE" deep "$T/img2" 2>/dev/null
if "$P" check "$PRISTINE" >"$T/c0"; then
	ok "the undamaged store checks clean"
else
	not_ok "the undamaged store checks clean"
	sed 's/^/# /' "$T/c0"
fi

fresh() {
	cp --sparse=always "$PRISTINE" "$S"
}

blk() {
	$PLXBLK "$S" "$@"
}

json_field() {	# json_field CMD... -- PYEXPR
	"$P" "$@" | python3 -c "import json,sys; d=json.load(sys.stdin); print($PYEXPR)"
}

PYEXPR='[v["root"] for v in d if v["name"]=="base"][0]'
ROOT=$(json_field list "$PRISTINE" --json)
PYEXPR='[v["root"] for v in d if v["name"]=="web"][0]'
WROOT=$(json_field list "$PRISTINE" --json)
PYEXPR='[v["root"] for v in d if v["name"]=="deep"][0]'
DROOT=$(json_field list "$PRISTINE" --json)
PYEXPR='d[0]["log_block"]'
LOG=$(json_field snaplog "$PRISTINE" base --json)
REG=$($PLXBLK "$PRISTINE" 0 get 112)	# superblock registry_start
L0=$(( $($PLXBLK "$PRISTINE" "$ROOT" get 0) & MASK ))
D=$(( $($PLXBLK "$PRISTINE" "$L0" get 0) & MASK ))
DL1=$(( $($PLXBLK "$PRISTINE" "$DROOT" get 0) & MASK ))
echo "# base root $ROOT, level-0 node $L0, data $D; web root $WROOT; deep root $DROOT, level-1 $DL1; log $LOG; registry $REG"

fresh
blk "$L0" set 40 0x10000000
check_finds "pointer beyond the store" "$S" \
	"^block $L0: radix node \(level 0 of VDI 1\) entry 5 -> 268435456: block address beyond the end"
expect_fail "export refuses a tree with a bad pointer" 1 "$S" "$P" export "$S" base "$T/x"
grep -q "block $L0" "$T/err" && ok "export error names the node" || not_ok "export error names the node"
expect_fail "import refuses a tree with a bad pointer, before writing" 1 "$S" \
	"$P" import "$S" base "$T/img2"

fresh
blk "$L0" set 40 "$ROOT"
check_finds "data pointer into a metadata extent" "$S" \
	"^block $L0: radix node \(level 0 of VDI 1\) entry 5 -> $ROOT: block address in an extent of the wrong type"

fresh
blk "$ROOT" set 8 "$D"
check_finds "node pointer into a data extent" "$S" \
	"^block $ROOT: radix node \(level 1 of VDI 1\) entry 1 -> $D: block address in an extent of the wrong type"

fresh
blk "$ROOT" set 8 3
check_finds "pointer into the system area" "$S" \
	"^block $ROOT: .* entry 1 -> 3: block address inside the system extent"

fresh
EXT_BASE=$(( (ROOT / 1024) * 1024 ))
blk "$ROOT" set 8 "$EXT_BASE"
check_finds "pointer to a bitmap block" "$S" \
	"^block $ROOT: .* entry 1 -> $EXT_BASE: block address inside an allocation bitmap"

fresh
BM=$(( (D / 1024) * 1024 ))
blk "$BM" clearbit $((D - BM)) --reseal
check_finds "reachable data block with its allocation bit cleared" "$S" \
	"^block $D: in use but not marked allocated \(bitmap block $BM bit $((D - BM))\)"

fresh
BM=$(( (L0 / 1024) * 1024 ))
blk "$BM" clearbit $((L0 - BM)) --reseal
check_finds "reachable radix node with its allocation bit cleared" "$S" \
	"^block $L0: in use but not marked allocated"

fresh
BM=$(( (D / 1024) * 1024 ))
blk "$BM" clearbit $((D - BM))
check_finds "bitmap block with a bad crc" "$S" \
	"^block $BM: allocation bitmap: checksum mismatch"

fresh
blk $((REG + 0)) flip 100
check_finds "byte flip in VDI 1's record" "$S" \
	"^block $REG: VDI 1 record: checksum mismatch"
expect_fail "snapshot of a VDI with a damaged record" 1 "$S" "$P" snapshot "$S" 1
expect_fail "export of a VDI with a damaged record" 1 "$S" "$P" export "$S" 1 "$T/x"

fresh
blk "$LOG" flip 200
check_finds "byte flip in a snapshot log block" "$S" \
	"^block $LOG: snapshot log of VDI 1: checksum mismatch"
expect_fail "snapshot refuses to extend a damaged log" 1 "$S" "$P" snapshot "$S" base

fresh
blk "$ROOT" set 16 "$ROOT"
check_finds "radix node linking itself" "$S" \
	"^block $ROOT: radix node \(level 1 of VDI 1\) entry 2 -> $ROOT: cycle"

fresh
blk "$DL1" set 56 "$DROOT"
check_finds "radix node linking an ancestor (height 3)" "$S" \
	"^block $DL1: radix node \(level 1 of VDI 3\) entry 7 -> $DROOT: cycle"

fresh
blk "$ROOT" set 320 $((L0 | (1 << 63)))
check_finds "mapping beyond the VDI's size" "$S" \
	"^block $ROOT: radix node \(level 1 of VDI 1\) entry 40 maps beyond the VDI's size"

fresh
blk "$DROOT" set 8 $((L0 | (1 << 63)))
check_finds "one node used at two levels" "$S" \
	"^block $L0: radix node used at level 0 and at level 1"

fresh
# A writable link from the clone into a node the snapshot also links.
E0=$($PLXBLK "$S" "$WROOT" get 0)
blk "$WROOT" set 0 $((E0 & MASK))
check_finds "clone links a snapshot's node writably" "$S" \
	"^block $((E0 & MASK)): writable from a live VDI but linked more than once"

fresh
blk "$REG" set 72 5 --reseal
check_finds "snap_seq ahead of the snapshot log" "$S" \
	"^block $LOG: snapshot log of VDI 1 ends at seq 1, expected 5"

fresh
blk $((REG + 1)) set 88 9 --reseal
check_finds "clone of a snapshot that does not exist" "$S" \
	"^block $((REG + 1)): VDI 2 is a clone of 1@9, which is not in VDI 1's snapshot log"

fresh
blk 1 flip 300
check_finds "byte flip in the catalogue" "$S" "^block 1: extent catalogue: checksum mismatch"

fresh
blk 0 flip 70
check_finds "byte flip in the superblock" "$S" "block 0: superblock: checksum mismatch"
expect_fail "list refuses a damaged superblock" 1 "$S" "$P" list "$S"

# Every problem is reported, not just the first.
fresh
blk "$ROOT" set 16 "$ROOT"
blk $((REG + 1)) flip 60
blk "$LOG" flip 300
"$P" check "$S" >"$T/check"
rc=$?
if [ $rc = 1 ] && grep -q "cycle" "$T/check" && grep -q "VDI 2 record: checksum" "$T/check" &&
	grep -q "snapshot log of VDI 1: checksum" "$T/check"; then
	ok "three problems at once are all reported"
else
	not_ok "three problems at once are all reported"
	sed 's/^/# /' "$T/check"
fi
"$P" check "$S" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if not d["clean"] and len(d["problems"])>=3 else 1)' &&
	ok "check --json lists the problems" || not_ok "check --json lists the problems"

# Leftover garbage is not an error.
fresh
"$P" delete "$S" web >/dev/null
if "$P" check "$S" >"$T/check" && grep -q "clean: 0 problems" "$T/check"; then
	ok "a deleted clone leaves only garbage: $(tail -1 "$T/check")"
else
	not_ok "a deleted clone leaves only garbage"
fi
finish
