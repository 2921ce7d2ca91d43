#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# parallax df on a store in use: with a VDI attached, df reads the block
# device while the target writes it.  A first df fills the page cache;
# the target's writes (bios that bypass that cache) must still show in
# a second df: new data under a new leaf linked from the root that the
# target updated in place, and copies of snapshot-shared blocks.  df says
# the store is in use; after detach its figures agree with check.
set -u
source "$(dirname "$0")/lib.sh"

S=$T/store.img
new_store "$S"
"$P" create "$S" dv --size 16M >/dev/null
head -c 4M /dev/urandom >"$T/base.img"
"$P" import "$S" dv "$T/base.img" >/dev/null
"$P" snapshot "$S" dv --label dbase >/dev/null

cat >"$T/guest.sh" <<'GUEST'
set -u
KT_GUEST=1 source "$KT_DIR/lib.sh"
D=/dev/mapper/dv
"$P" attach /dev/ubda dv --data-extents 4 >"$T/g.out" 2>&1 && g_ok "attach dv" ||
	{ g_not_ok "attach dv: $(cat "$T/g.out")"; exit 1; }
g_check "df of the store in use, before the writes" "$P" df /dev/ubda --json
cp "$T/g.out" "$T/df0.json"
# 2 MiB into the empty 8-10M range (a new leaf), 1 MiB over 0-1M (copies
# of blocks shared with snapshot dbase); conv=fsync flushes the target.
head -c 3M /dev/urandom >"$T/rnd"
dd if="$T/rnd" of=$D bs=1M count=2 seek=8 oflag=direct conv=fsync,notrunc status=none &&
	dd if="$T/rnd" of=$D bs=1M skip=2 count=1 seek=0 oflag=direct conv=fsync,notrunc status=none &&
	g_ok "write 3 MiB to dv" || g_not_ok "write 3 MiB to dv"
g_check "df of the store in use, after the writes" "$P" df /dev/ubda --json
cp "$T/g.out" "$T/df1.json"
"$P" df /dev/ubda >"$T/df1.txt" 2>&1
g_check "detach dv" "$P" detach dv
GUEST

kt_boot "df" --timeout 300 --disk "$S" -- bash "$T/guest.sh"

# vdi FILE KEY: a figure of VDI dv in a df --json output.
vdi() {
	python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
print([v for v in d["vdis"] if v["name"] == "dv"][0][sys.argv[2]])' "$1" "$2" 2>/dev/null
}

if [ -f "$T/df0.json" ] && [ "$(vdi "$T/df0.json" data_mapped)" = 1024 ]; then
	ok "df before the writes: dv maps the 1024 imported blocks"
else
	not_ok "df before the writes: dv maps $(vdi "$T/df0.json" data_mapped), want 1024"
fi
# 1024 imported + 512 new; exclusive: the snapshot's 1024, the 512 new
# and the 256 copies.
m=$(vdi "$T/df1.json" data_mapped)
x=$(vdi "$T/df1.json" data_exclusive)
if [ "$m" = 1536 ] && [ "$x" = 1792 ]; then
	ok "df after the writes sees them: dv maps 1536 blocks, 1792 exclusive"
else
	not_ok "df after the writes: dv maps $m (want 1536), exclusive $x (want 1792)"
fi
if grep -q "The store is in use (.* extents and 1 VDIs held by hosts)" "$T/df1.txt"; then
	ok "df says the store is in use: $(grep "in use" "$T/df1.txt")"
else
	not_ok "df does not say the store is in use"
	sed 's/^/# /' "$T/df1.txt" | tail -3
fi
"$P" df "$S" --json >"$T/df2.json"
m=$(vdi "$T/df2.json" data_mapped)
[ "$m" = 1536 ] && ok "df after detach: dv maps 1536 blocks" ||
	not_ok "df after detach: dv maps $m blocks, want 1536"
g=$("$P" check "$S" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["garbage"])')
r=$(python3 -c 'import json, sys
print(sum(t["reclaimable"] for t in json.load(open(sys.argv[1]))["types"].values()))' "$T/df2.json")
[ -n "$g" ] && [ "$g" = "$r" ] && ok "df's reclaimable after detach equals check's garbage ($r)" ||
	not_ok "df's reclaimable $r, check's garbage $g"
check_clean "parallax check clean" "$S"
finish
