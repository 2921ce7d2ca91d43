#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Functional test of the parallax tool: format, VDIs, snapshots, clones,
# import/export round trips (snapshots must keep their old contents after
# later writes), listing, and a clean check at the end.
source "$(dirname "$0")/lib.sh"

S=$T/store.img
truncate -s 1G "$S"
check_ok "format a 1 GiB sparse file with 4 MiB extents" \
	"$P" format "$S" --extent-size 4M
check_ok "dump decodes the superblock" "$P" dump "$S"
grep -q "extents *256 of 1024 blocks" "$T/out" && ok "dump: 256 extents of 1024 blocks" ||
	not_ok "dump: 256 extents of 1024 blocks"

id=$("$P" create "$S" base --size 128M)
[ "$id" = 1 ] && ok "create base prints id 1" || not_ok "create base prints id 1 (got '$id')"

# Image 1: 64 MiB random with zero holes (aligned, a 3 MiB run, unaligned).
head -c 64M /dev/urandom >"$T/img1"
dd if=/dev/zero of="$T/img1" bs=4096 seek=100 count=1 conv=notrunc status=none
dd if=/dev/zero of="$T/img1" bs=1M seek=10 count=3 conv=notrunc status=none
dd if=/dev/zero of="$T/img1" bs=1000 seek=30001 count=7 conv=notrunc status=none
cp "$T/img1" "$T/exp1"
truncate -s 128M "$T/exp1"

check_ok "import 64 MiB image into base" "$P" import "$S" base "$T/img1"
# 768 blocks of the 3 MiB run, block 100, and block 7325 which the
# unaligned 7000-byte run covers entirely.
grep -q "770 zero blocks skipped" "$T/err" && ok "import skipped exactly the 770 all-zero blocks" ||
	not_ok "import zero-block skipping: $(cat "$T/err")"
check_ok "export base" "$P" export "$S" base "$T/out1"
cmp -s "$T/out1" "$T/exp1" && ok "export of base equals the imported image" ||
	not_ok "export of base equals the imported image"
used=$(du -k "$T/out1" | cut -f1)
[ "$used" -lt 80000 ] && ok "export leaves the unmapped 64 MiB as holes (${used} KiB used)" ||
	not_ok "export is not sparse (${used} KiB used)"

snap=$("$P" snapshot "$S" base --label v1)
[ "$snap" = "1@1" ] && ok "snapshot prints 1@1" || not_ok "snapshot prints 1@1 (got '$snap')"

# Image 2: new data over part of image 1, a zeroed mapped range, and more.
cp "$T/exp1" "$T/exp2"
head -c 8M /dev/urandom | dd of="$T/exp2" bs=1M seek=20 conv=notrunc status=none
head -c 16M /dev/urandom | dd of="$T/exp2" bs=1M seek=80 conv=notrunc status=none
dd if=/dev/zero of="$T/exp2" bs=1M seek=40 count=2 conv=notrunc status=none
head -c 96M "$T/exp2" >"$T/img2"
check_ok "import a second image over base" "$P" import "$S" base "$T/img2"
"$P" export "$S" base "$T/out2" && cmp -s "$T/out2" "$T/exp2" &&
	ok "base now exports the second image" || not_ok "base now exports the second image"
"$P" export "$S" 1@1 "$T/s1" && cmp -s "$T/s1" "$T/exp1" &&
	ok "snapshot 1@1 still exports the first image" ||
	not_ok "snapshot 1@1 still exports the first image"
"$P" export "$S" v1 "$T/s1b" && cmp -s "$T/s1b" "$T/exp1" &&
	ok "snapshot by label alone exports the first image" ||
	not_ok "snapshot by label alone exports the first image"
"$P" export "$S" base@v1 "$T/s1c" && cmp -s "$T/s1c" "$T/exp1" &&
	ok "snapshot as VDI@LABEL exports the first image" ||
	not_ok "snapshot as VDI@LABEL exports the first image"

snap=$("$P" snapshot "$S" 1)
[ "$snap" = "1@2" ] && ok "second snapshot (by VDI id) is 1@2" || not_ok "second snapshot is 1@2 (got '$snap')"
# Image 3: a partial overwrite of the first MiB (unaligned length).
head -c 1000000 /dev/urandom >"$T/img3"
cp "$T/exp2" "$T/exp3"
dd if="$T/img3" of="$T/exp3" conv=notrunc status=none
check_ok "import a short, unaligned image" "$P" import "$S" base "$T/img3"
"$P" export "$S" base "$T/out3" && cmp -s "$T/out3" "$T/exp3" &&
	ok "partial import changed only its range" || not_ok "partial import changed only its range"
"$P" export "$S" 1@2 "$T/s2" && cmp -s "$T/s2" "$T/exp2" &&
	ok "1@2 exports the second image" || not_ok "1@2 exports the second image"
"$P" export "$S" 1@1 "$T/s1" && cmp -s "$T/s1" "$T/exp1" &&
	ok "1@1 still exports the first image" || not_ok "1@1 still exports the first image"

# Clones.
id=$("$P" create "$S" web --from base@v1)
[ "$id" = 2 ] && ok "clone web of base@v1 is VDI 2" || not_ok "clone web is VDI 2 (got '$id')"
"$P" export "$S" web "$T/w0" && cmp -s "$T/w0" "$T/exp1" &&
	ok "clone starts with the snapshot's contents" || not_ok "clone starts with the snapshot's contents"
head -c 2M /dev/urandom >"$T/wimg"
cp "$T/exp1" "$T/wexp"
dd if="$T/wimg" of="$T/wexp" bs=1M seek=0 conv=notrunc status=none
check_ok "import into the clone" "$P" import "$S" web "$T/wimg"
"$P" export "$S" web "$T/w1" && cmp -s "$T/w1" "$T/wexp" &&
	ok "clone has its new data" || not_ok "clone has its new data"
"$P" export "$S" 1@1 "$T/s1" && cmp -s "$T/s1" "$T/exp1" &&
	ok "writing the clone left 1@1 intact" || not_ok "writing the clone left 1@1 intact"
"$P" export "$S" base "$T/out3" && cmp -s "$T/out3" "$T/exp3" &&
	ok "writing the clone left base intact" || not_ok "writing the clone left base intact"
check_ok "snapshot the clone" "$P" snapshot "$S" web --label web-gold
id=$("$P" create "$S" web2 --from web-gold)
[ "$id" = 3 ] && ok "clone of a clone's snapshot is VDI 3" || not_ok "clone of clone is VDI 3 (got '$id')"

# A height-3 tree (2 GiB VDI on a 1 GiB store: sparse).
id=$("$P" create "$S" big --size 2G)
head -c 3M /dev/urandom >"$T/bimg"
check_ok "import into a 2 GiB (height 3) VDI" "$P" import "$S" big "$T/bimg"
"$P" export "$S" big "$T/bout" && [ "$(stat -c %s "$T/bout")" = 2147483648 ] &&
	cmp -s -n 3145728 "$T/bout" "$T/bimg" &&
	ok "2 GiB VDI exports 2 GiB with the imported data" ||
	not_ok "2 GiB VDI exports 2 GiB with the imported data"
"$P" export "$S" base - | cmp -s - "$T/exp3" &&
	ok "export to stdout streams the image" || not_ok "export to stdout streams the image"
"$P" import "$S" web2 - <"$T/img3" 2>/dev/null &&
	"$P" export "$S" web2 - | cmp -s -n 1000000 - "$T/img3" &&
	ok "import from stdin" || not_ok "import from stdin"

check_ok "check of the populated store is clean" "$P" check "$S"
grep -q "^clean: 0 problems; 4 VDIs, 3 snapshots" "$T/out" &&
	ok "check counts 4 VDIs and 3 snapshots" || not_ok "check summary: $(tail -1 "$T/out")"

# Listings, and their JSON.
check_ok "list" "$P" list "$S"
[ "$(grep -c '^[0-9]' "$T/out")" = 4 ] && ok "list shows 4 VDIs" || not_ok "list shows 4 VDIs"
for c in "list $S --json" "snaplog $S base --json" "tree $S --json" "check $S --json" "list $S --all --json"; do
	if $P $c >"$T/json" && python3 -m json.tool "$T/json" >/dev/null; then
		ok "'${c%% *} --json' is valid JSON"
	else
		not_ok "'${c%% *} --json' is valid JSON"
	fi
done
"$P" check "$S" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if d["clean"] and d["vdis"]==4 else 1)' &&
	ok "check --json says clean" || not_ok "check --json says clean"
"$P" list "$S" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if [v["name"] for v in d]==["base","web","web2","big"] and d[1]["parent"]=="1@1" else 1)' &&
	ok "list --json names and parents" || not_ok "list --json names and parents"
"$P" tree "$S" >"$T/tree"
# The clone must hang under the snapshot it came from, indented further.
awk '/1@1 v1/ {s=index($0,"1@1")} /VDI 2 web/ && s {if (index($0,"VDI 2") > s) f=1} END {exit !f}' "$T/tree" &&
	ok "tree hangs clone web under 1@1" || { not_ok "tree hangs clone web under 1@1"; sed 's/^/# /' "$T/tree"; }
"$P" tree "$S" --dot | grep -q '"s1_1" -> "v2"' && ok "tree --dot has edge 1@1 -> VDI 2" ||
	not_ok "tree --dot has edge 1@1 -> VDI 2"

check_ok "label 1@2" "$P" label "$S" 1@2 v2
"$P" snaplog "$S" base | grep -q '^1@2 .* v2 ' && ok "snaplog shows the new label" ||
	not_ok "snaplog shows the new label"
"$P" export "$S" v2 "$T/s2" && cmp -s "$T/s2" "$T/exp2" &&
	ok "export by the new label" || not_ok "export by the new label"

# Deletion marks only; clones keep their data.
check_ok "delete snapshot v1" "$P" delete "$S" v1
"$P" snaplog "$S" base | grep -q '^1@1 .*deleted' && ok "snaplog marks 1@1 deleted" ||
	not_ok "snaplog marks 1@1 deleted"
"$P" export "$S" web "$T/w1" && cmp -s "$T/w1" "$T/wexp" &&
	ok "clone of a deleted snapshot keeps its data" || not_ok "clone of a deleted snapshot keeps its data"
check_ok "delete VDI web2" "$P" delete "$S" web2
"$P" list "$S" | grep -q web2 && not_ok "deleted VDI not listed" || ok "deleted VDI not listed"
"$P" list "$S" --all | grep -q 'web2.*deleted' && ok "list --all shows it deleted" ||
	not_ok "list --all shows it deleted"
check_ok "check is clean after deletions" "$P" check "$S"
id=$("$P" create "$S" web2 --size 4M)
[ "$id" = 5 ] && ok "a deleted VDI's name can be reused (new id 5)" || not_ok "name reuse (got '$id')"
check_ok "check is clean at the end" "$P" check "$S"
finish
