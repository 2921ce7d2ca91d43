#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# ext4 on an attached VDI: mkfs, fill with files, freeze + kernel snapshot,
# more changes, unmount, e2fsck -fn clean.  Clone the snapshot offline,
# attach the clone: e2fsck clean, files match the sums taken at the
# snapshot, write to it; the origin still holds its own later state.
# Offline: exports of the snapshot, clone and origin pass e2fsck; check.
set -u
source "$(dirname "$0")/lib.sh"

S=$T/store.img
new_store "$S"
"$P" create "$S" fs --size 96M >/dev/null

cat >"$T/guest.sh" <<'GUEST'
set -u
KT_GUEST=1 source "$KT_DIR/lib.sh"
M=$T/mnt
mkdir -p "$M"
sums() { (cd "$M" && find . -type f | sort | xargs -d '\n' sha256sum) >"$1"; }
"$P" attach /dev/ubda fs --data-extents 10 >"$T/g.out" 2>&1 && g_ok "attach fs" ||
	{ g_not_ok "attach fs: $(cat "$T/g.out")"; exit 1; }
g_check "mkfs.ext4" mkfs.ext4 -q -F /dev/mapper/fs
g_check "mount fs" mount -t ext4 /dev/mapper/fs "$M" || exit 1
mkdir -p "$M/gen" "$M/doc"
# Generated files: 60 of 1 KiB .. 256 KiB, random contents (~8 MiB).
i=0
while [ $i -lt 60 ]; do
	mkdir -p "$M/gen/d$((i % 10))"
	head -c $(((i * 7919 % 256 + 1) * 1024)) /dev/urandom >"$M/gen/d$((i % 10))/f$i"
	i=$((i + 1))
done
# Some real files from /usr/share/doc.
(cd /usr/share/doc && find . -type f -size -200k | head -500 | tar -cf - -T - 2>/dev/null) |
	(cd "$M/doc" && tar -xf - 2>/dev/null)
g_note "filled: $(du -sm "$M" | cut -f1) MiB in $(find "$M" -type f | wc -l) files"
sync
sums "$T/sums.snap"
g_check "fsfreeze -f" fsfreeze -f "$M"
id=$(dmsetup message fs 0 snapshot fs-gold 2>&1)
g_check "fsfreeze -u" fsfreeze -u "$M"
[ "$id" = 1@1 ] && g_ok "snapshot of the frozen ext4: $id" || g_not_ok "snapshot of the frozen ext4: $id"
# The origin moves on.
rm -rf "$M/gen/d3" "$M/doc"
head -c 3M /dev/urandom >"$M/gen/after-snapshot"
cp -r "$M/gen/d4" "$M/gen/d4-copy"
sync
sums "$T/sums.origin"
g_check "umount fs" umount "$M"
g_check "e2fsck -fn on fs" e2fsck -fn /dev/mapper/fs
g_check "detach fs" "$P" detach fs

id=$("$P" create /dev/ubda fc --from fs-gold 2>&1)
[ "$id" = 2 ] && g_ok "create clone fc --from fs-gold" || g_not_ok "create clone fc --from fs-gold: $id"
"$P" attach /dev/ubda fc --data-extents 4 >"$T/g.out" 2>&1 && g_ok "attach clone fc" ||
	{ g_not_ok "attach fc: $(cat "$T/g.out")"; exit 1; }
g_check "e2fsck -fn on the clone before mounting" e2fsck -fn /dev/mapper/fc
g_check "mount the clone" mount -t ext4 /dev/mapper/fc "$M" || exit 1
sums "$T/sums.clone"
cmp -s "$T/sums.snap" "$T/sums.clone" && g_ok "clone files match the sums at the snapshot ($(wc -l <"$T/sums.snap") files)" ||
	g_not_ok "clone files differ from the snapshot: $(diff "$T/sums.snap" "$T/sums.clone" | head -3 | tr '\n' ' ')"
rm -rf "$M/gen/d1"
head -c 2M /dev/urandom >"$M/clone-only"
sync
sums "$T/sums.clone2"
g_check "umount the clone" umount "$M"
g_check "e2fsck -fn on the clone" e2fsck -fn /dev/mapper/fc
g_check "detach fc" "$P" detach fc
"$P" attach /dev/ubda fs --data-extents 2 >"$T/g.out" 2>&1 && g_ok "attach fs again" ||
	{ g_not_ok "attach fs again: $(cat "$T/g.out")"; exit 1; }
g_check "mount fs read-only again" mount -t ext4 -o ro,noload /dev/mapper/fs "$M"
sums "$T/sums.origin2"
cmp -s "$T/sums.origin" "$T/sums.origin2" && g_ok "origin files unchanged by the clone's writes" ||
	g_not_ok "origin files changed"
umount "$M"
g_check "detach fs" "$P" detach fs
GUEST

kt_boot "ext4" --timeout 300 --disk "$S" -- bash "$T/guest.sh"
for obj in fs-gold fs fc; do
	rm -f "$T/e.img"
	if "$P" export "$S" "$obj" "$T/e.img" >"$T/out" 2>&1 && e2fsck -fn "$T/e.img" >"$T/out" 2>&1; then
		ok "host e2fsck -fn clean on the export of $obj"
	else
		not_ok "host e2fsck -fn clean on the export of $obj"
		sed 's/^/# /' "$T/out" | head -10
	fi
done
rm -f "$T/e.img"
check_clean "parallax check clean" "$S"
finish
