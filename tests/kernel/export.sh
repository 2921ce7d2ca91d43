#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Offline export after kernel writes and kernel snapshots: the VDI and
# every snapshot (by ID@SEQ and by label) export exactly what was written
# up to that point; a clone made offline from a kernel snapshot, attached
# and written, exports its own data while its source snapshot and the
# source VDI stay unchanged.
set -u
source "$(dirname "$0")/lib.sh"

S=$T/store.img
new_store "$S"
"$P" create "$S" ev --size 16M >/dev/null

cat >"$T/guest.sh" <<'GUEST'
set -u
KT_GUEST=1 source "$KT_DIR/lib.sh"
D=/dev/mapper/ev
# put SKIP_4K SEEK_4K COUNT_4K DEV MODEL: the same random bytes to both.
put() {
	dd if="$T/rnd" of="$4" bs=4096 skip="$1" seek="$2" count="$3" oflag=direct conv=notrunc status=none &&
		dd if="$T/rnd" of="$5" bs=4096 skip="$1" seek="$2" count="$3" conv=notrunc status=none
}
# snap DEV LABEL WANT MODEL OUT: take a kernel snapshot, save the model.
snap() {
	local id
	id=$(dmsetup message "$1" 0 snapshot $2 2>&1)
	[ "$id" = "$3" ] && g_ok "snapshot ${2:-(no label)} of $1 returns $3" ||
		g_not_ok "snapshot ${2:-(no label)} of $1 returned '$id', want $3"
	cp "$4" "$5"
}
devcmp() {
	dd if="$2" of="$T/dev.img" bs=1M iflag=direct status=none
	cmp "$T/dev.img" "$3" >"$T/g.out" 2>&1 && g_ok "$1" || g_not_ok "$1: $(head -1 "$T/g.out")"
}

truncate -s 16M "$T/model"
head -c 8M /dev/urandom >"$T/rnd"
"$P" attach /dev/ubda ev --data-extents 6 >"$T/g.out" 2>&1 && g_ok "attach ev" ||
	{ g_not_ok "attach ev: $(cat "$T/g.out")"; exit 1; }
put 0 0 1024 $D "$T/model"                  # 0-4M
snap ev e-one 1@1 "$T/model" "$T/s1.img"
put 1536 512 512 $D "$T/model"   # 2-4M over shared blocks
put 1536 2560 512 $D "$T/model"  # 10-12M sparse
snap ev "" 1@2 "$T/model" "$T/s2.img"
put 1792 700 100 $D "$T/model"
put 1900 3000 33 $D "$T/model"
snap ev e-three 1@3 "$T/model" "$T/s3.img"
put 5 1 700 $D "$T/model"
devcmp "ev reads back what was written" $D "$T/model"
cp "$T/model" "$T/live1.img"
g_check "detach ev" "$P" detach ev

# Offline on the guest's view of the store: clone snapshot 1@2.
id=$("$P" create /dev/ubda c1 --from 1@2 2>&1)
[ "$id" = 2 ] && g_ok "create c1 --from 1@2 (offline, in the guest)" || g_not_ok "create c1 --from 1@2: $id"

"$P" attach /dev/ubda c1 --data-extents 4 >"$T/g.out" 2>&1 && g_ok "attach clone c1" ||
	{ g_not_ok "attach c1: $(cat "$T/g.out")"; exit 1; }
"$P" attach /dev/ubda ev --data-extents 4 >"$T/g.out" 2>&1 && g_ok "attach ev again alongside c1" ||
	{ g_not_ok "attach ev again: $(cat "$T/g.out")"; exit 1; }
devcmp "clone c1 reads as snapshot 1@2" /dev/mapper/c1 "$T/s2.img"
cp "$T/s2.img" "$T/cmodel"
put 1100 256 768 /dev/mapper/c1 "$T/cmodel"   # shared and sparse
put 1800 3900 196 /dev/mapper/c1 "$T/cmodel"
# The source VDI overwrites blocks it shares with the clone's snapshot.
put 1024 0 1024 $D "$T/model"
snap c1 c-one 2@1 "$T/cmodel" "$T/cs1.img"
put 77 0 256 /dev/mapper/c1 "$T/cmodel"
devcmp "c1 reads back its writes" /dev/mapper/c1 "$T/cmodel"
devcmp "ev reads back its writes" $D "$T/model"
cp "$T/model" "$T/live2.img"
g_check "detach c1" "$P" detach c1
g_check "detach ev" "$P" detach ev
GUEST

kt_boot "export" --timeout 300 --disk "$S" -- bash "$T/guest.sh"
for f in s1 s2 s3 live2 cs1 cmodel; do
	[ -f "$T/$f.img" ] || [ "$f" = cmodel ] || { not_ok "guest saved $f.img"; }
done
export_cmp "export 1@1 = data before snapshot 1" "$S" 1@1 "$T/s1.img"
export_cmp "export e-one (label) = 1@1" "$S" e-one "$T/s1.img"
export_cmp "export ev@e-one = 1@1" "$S" ev@e-one "$T/s1.img"
export_cmp "export 1@2 (unlabelled) = data before snapshot 2" "$S" 1@2 "$T/s2.img"
export_cmp "export 1@3 = data before snapshot 3" "$S" 1@3 "$T/s3.img"
export_cmp "export e-three (label) = 1@3" "$S" e-three "$T/s3.img"
export_cmp "export ev = its final contents" "$S" ev "$T/live2.img"
export_cmp "export c1 = clone's final contents" "$S" c1 "$T/cmodel"
export_cmp "export 2@1 = clone before its snapshot" "$S" 2@1 "$T/cs1.img"
export_cmp "export c-one (label) = 2@1" "$S" c-one "$T/cs1.img"
if "$P" snaplog "$S" ev >"$T/out" 2>&1 && [ "$(grep -c '^1@' "$T/out")" = 3 ]; then
	ok "snaplog ev lists 3 snapshots"
else
	not_ok "snaplog ev lists 3 snapshots"; sed 's/^/# /' "$T/out"
fi
if "$P" list "$S" >"$T/out" 2>&1 && grep -Eq '^2 +c1 .* 1@2' "$T/out"; then
	ok "list shows c1 as a clone of 1@2"
else
	not_ok "list shows c1 as a clone of 1@2"; sed 's/^/# /' "$T/out"
fi
check_clean "parallax check clean" "$S"
finish
