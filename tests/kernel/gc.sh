#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# parallax gc online on one host (no lock manager): the collector reaches
# this host's tables with gc_begin/gc_reclaim/gc_end.
#  - garbage from before the attach (a deleted snapshot's blocks, an
#    overwritten VDI's old blocks, the reserve a detached table left
#    behind) is freed; blocks unmapped by discard in the device's own
#    extents are freed by the device itself, "by attached devices";
#  - while fio writes and verifies the device and a loop takes a snapshot
#    every 500 ms, collections run one after another; fio's verification
#    passes, and afterwards check is clean: had a collection freed a block
#    a live tree or snapshot reaches, check would name it unallocated;
#  - a snapshot taken when the writes stopped exports, offline, exactly
#    what the device read then; a last collection leaves no garbage.
set -u
source "$(dirname "$0")/lib.sh"

S=$T/store.img
new_store "$S" 256M
"$P" create "$S" a --size 64M >/dev/null
"$P" create "$S" b --size 16M >/dev/null
head -c 8M /dev/urandom >"$T/b0"
"$P" import "$S" b "$T/b0" >/dev/null 2>&1
"$P" snapshot "$S" b >/dev/null
head -c 8M /dev/urandom >"$T/b1"
"$P" import "$S" b "$T/b1" >/dev/null 2>&1
"$P" delete "$S" b@1 >/dev/null
head -c 4M /dev/urandom >"$T/w1"
head -c 4M /dev/urandom >"$T/w2"
head -c 1M /dev/urandom >"$T/w3"

cat >"$T/guest.sh" <<'GUEST'
set -u
KT_GUEST=1 source "$KT_DIR/lib.sh"
D=/dev/mapper/a

# gc_json RUN: one collection, its JSON in $T/gc.RUN.json; a check.
gc_run() {
	if "$P" gc /dev/ubda --json >"$T/gc.$1.json" 2>"$T/gc.$1.err"; then
		return 0
	fi
	g_not_ok "parallax gc ($1): $(tail -3 "$T/gc.$1.err")"
	return 1
}
field() {
	python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$T/gc.$1.json" "$2"
}

g_check "attach a" "$P" attach /dev/ubda a --data-extents 12 --metadata-extents 8
dmsetup mknodes a
g_check "write 4 MiB" dd if="$T/w1" of=$D bs=1M oflag=direct status=none
id=$(dmsetup message a 0 snapshot)
[ "$id" = 1@1 ] && g_ok "snapshot $id" || g_not_ok "snapshot: $id"
g_check "overwrite the 4 MiB" dd if="$T/w2" of=$D bs=1M oflag=direct status=none
# The table's unused reserve stays allocated on disk: garbage.
g_check "detach a" "$P" detach a
g_check "delete a@1 (its 4 MiB are garbage now)" "$P" delete /dev/ubda a@1
g_check "attach a again" "$P" attach /dev/ubda a --data-extents 12 --metadata-extents 8
dmsetup mknodes a
cmp -s "$T/w2" <(dd if=$D bs=1M count=4 iflag=direct status=none) &&
	g_ok "a reads its data" || g_not_ok "a's data differs"

gc_run first || exit 1
fd=$(field first freed_data)
fm=$(field first freed_metadata)
fh=$(field first freed_by_holders)
g_note "first collection: $(cat "$T/gc.first.json")"
# b's overwritten 8 MiB (2048 blocks) in unheld extents, a@1's 4 MiB
# (1024), and the old table's reserve.
[ "$fd" -ge $((2048 + 1024)) ] && g_ok "freed $fd data blocks (at least 3072)" ||
	g_not_ok "freed only $fd data blocks"
# Which extents the second attach claims is the allocator's choice: the
# garbage may be in them or not.  The discard below is sure to be.
g_note "$fh of them freed by the attached device"
cmp -s "$T/w2" <(dd if=$D bs=1M count=4 iflag=direct status=none) &&
	g_ok "a still reads its data" || g_not_ok "a's data differs after gc"

# Discard: 1 MiB written and unmapped without a snapshot between is
# garbage in the device's own extents.
g_check "write 1 MiB at 32 MiB" dd if="$T/w3" of=$D bs=1M seek=32 oflag=direct status=none
g_check "discard it" blkdiscard -o $((32 << 20)) -l $((1 << 20)) $D
gc_run discard || exit 1
fh=$(field discard freed_by_holders)
[ "$fh" -ge 256 ] && g_ok "the device freed the 256 discarded blocks ($fh)" ||
	g_not_ok "the device freed $fh blocks after a 256-block discard"

# Collections against a writer that verifies and a snapshot loop.
( while [ ! -e "$T/stop" ]; do dmsetup message a 0 snapshot >/dev/null; sleep 0.5; done ) &
snaps=$!
KT_FIO_DEV=$D
( g_fio "fio randwrite+verify on a during collections" --rw=randwrite --bs=4k \
	--offset=8M --size=24M --randseed=7 --end_fsync=1; touch "$T/fio.done" ) &
fio=$!
runs=0
while [ ! -e "$T/fio.done" ] && [ $runs -lt 20 ]; do
	gc_run "load$runs" || break
	runs=$((runs + 1))
done
wait $fio
touch "$T/stop"
wait $snaps
[ $runs -ge 2 ] && g_ok "$runs collections ran while fio wrote" ||
	g_not_ok "only $runs collections ran while fio wrote"
n=$(g_status a 7)
g_note "snapshots taken: $n"
KT_FIO_TAG=v g_fio "fio verifies everything it wrote" --rw=randwrite --bs=4k \
	--offset=8M --size=24M --randseed=7 --verify_only
last=$(dmsetup message a 0 snapshot last)
echo "$last" >"$T/last.id"
dd if=$D bs=1M iflag=direct status=none | sha256sum | cut -d' ' -f1 >"$T/last.sha"
gc_run after || exit 1
g_check "detach a" "$P" detach a
GUEST

kt_boot "gc" --timeout 600 --disk "$S" -- bash "$T/guest.sh"
check_clean "parallax check clean after the collections" "$S"
want=$(cat "$T/last.sha" 2>/dev/null)
"$P" export "$S" "$(cat "$T/last.id" 2>/dev/null)" "$T/exp" >/dev/null 2>&1
[ -n "$want" ] && [ -f "$T/exp" ] && [ "$(sha256sum <"$T/exp" | cut -d' ' -f1)" = "$want" ] &&
	ok "the last snapshot exports what the device read" ||
	not_ok "the last snapshot differs from what the device read"
"$P" gc "$S" >/dev/null 2>&1
g=$("$P" check "$S" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["garbage"])')
[ "$g" = 0 ] && ok "a last collection leaves no garbage" || not_ok "garbage left: $g"
finish
