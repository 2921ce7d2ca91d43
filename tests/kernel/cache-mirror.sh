#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The local write cache's failure model (Documentation/local-cache.rst):
# records not yet drained live only on the local device.
#
#  1. Mirrored: the log is a dm-raid1 ("mirror") of two local disks.  Data
#     written with fsync through a slow store, so the log holds it, then a
#     power cut; the first disk is lost (zeroed).  The next boot rebuilds
#     the mirror from the surviving disk, the table replays the log, reads
#     return the data at once, the drain puts it on the store, and the
#     export equals it.
#  2. One disk: the same with the log on a single disk that is lost.  The
#     table refuses the blank device, and the VDI on the store is the
#     crash-consistent state of the drained point: it checks clean and
#     every block holds its old or its new data, never anything else.
set -u
source "$(dirname "$0")/lib.sh"

S=$T/store.img
A=$T/leg-a.img
B=$T/leg-b.img
M=1048576
head -c $((8 * M)) /dev/urandom >"$T/old"
head -c $((8 * M)) /dev/urandom >"$T/new"

fresh_store() {
	new_store "$S"
	"$P" create "$S" v1 --size 8M >/dev/null
}

# fresh_log FILE...: one cache log, copied to every FILE (mirror legs
# start identical, so the mirror needs no initial resync).
fresh_log() {
	rm -f "$1"
	truncate -s 16M "$1"
	"$P" cache-init "$1" >/dev/null
	shift
	for f in "$@"; do
		cp "$A" "$f"
	done
}

# The guest of the first boot: old data straight to the store, then new
# data through the cache while dm-delay holds the store's writes for 2 s
# each, so the records stay in the log; then it waits for the power cut.
cat >"$T/write.sh" <<'GUEST'
set -u
KT_GUEST=1 source "$KT_DIR/lib.sh"
LOG=$1
sz=$(blockdev --getsz /dev/ubda)
g_check "attach v1 without a cache" "$P" attach /dev/ubda v1 --data-extents 3
g_check "write the old data and detach" sh -c \
	"dd if=$T/old of=/dev/mapper/v1 bs=64k oflag=direct conv=fsync status=none && $P detach v1"
g_check "slow store: dm-delay, writes held 2 s" sh -c \
	"dmsetup --noudevsync create sd --table '0 $sz delay /dev/ubda 0 0 /dev/ubda 0 2000' && dmsetup mknodes sd"
if [ "$LOG" = mirror ]; then
	g_check "log on a mirror of /dev/ubdb and /dev/ubdc" sh -c "dmsetup --noudevsync create plxlog \
		--table '0 $(blockdev --getsz /dev/ubdb) mirror core 2 64 nosync 2 /dev/ubdb 0 /dev/ubdc 0 1 handle_errors' &&
		dmsetup mknodes plxlog"
	LOG=/dev/mapper/plxlog
fi
g_check "attach v1 with the local cache on $LOG" \
	"$P" attach /dev/mapper/sd v1 --local-cache "$LOG" --cache-mode always
g_check "write the new data with fsync" sh -c "test -b /dev/mapper/v1 &&
	dd if=$T/new of=/dev/mapper/v1 bs=64k oflag=direct conv=fsync status=none"
n=$(g_status v1 16)
[ "${n:-0}" -gt 0 ] && g_ok "the log holds $n records when the power goes" ||
	g_not_ok "the log holds records when the power goes (status: $(dmsetup status v1))"
touch "$T/written"
sleep 600
GUEST

# The guest of the second boot: the table replays what the log has.
cat >"$T/replay.sh" <<'GUEST'
set -u
KT_GUEST=1 source "$KT_DIR/lib.sh"
LOG=$1
if [ "$LOG" = mirror ]; then
	# The surviving disk is the primary leg; the blank one is resynced.
	g_check "mirror rebuilt from /dev/ubdc, blank /dev/ubdb resyncing" sh -c "dmsetup --noudevsync create plxlog \
		--table '0 $(blockdev --getsz /dev/ubdc) mirror core 1 64 2 /dev/ubdc 0 /dev/ubdb 0 1 handle_errors' &&
		dmsetup mknodes plxlog"
	LOG=/dev/mapper/plxlog
fi
if ! "$P" attach /dev/ubda v1 --local-cache "$LOG" --cache-mode always >"$T/g.out" 2>&1; then
	[ "$2" = refused ] || g_not_ok "attach v1 with the cache on $LOG: $(tail -1 "$T/g.out")"
	g_note "attach with the cache on $LOG refused: $(tail -1 "$T/g.out")"
	dmesg | grep -m1 'superblock' | sed 's/^/# /' >>"$T/results"
	g_check "attach v1 without the cache" "$P" attach /dev/ubda v1
	g_read /dev/mapper/v1 0 $((8 * 1048576)) "$T/got"
	g_check "detach v1" "$P" detach v1
	exit 0
fi
[ "$2" = replays ] && g_ok "attach v1 with the cache on $LOG" ||
	g_not_ok "attach v1 with the cache on $LOG accepted a blank log"
dmesg | grep -q 'records to drain' && g_ok "the kernel replayed the log: $(dmesg | grep -m1 -o '[0-9]* records to drain.*')" ||
	g_not_ok "the kernel log says the log was replayed"
g_read /dev/mapper/v1 0 $((8 * 1048576)) "$T/got"
cmp -s "$T/got" "$T/new" && g_ok "reads return the new data right after the replay" ||
	g_not_ok "reads return the new data right after the replay"
g_check "drain" dmsetup message v1 0 drain
n=$(g_status v1 16)
[ "$n" = 0 ] && g_ok "the log is empty after the drain" || g_not_ok "records left after the drain: $n"
g_check "detach v1" "$P" detach v1
GUEST

# 1. Mirrored log: one disk lost, nothing lost.
fresh_store
fresh_log "$A" "$B"
kt_boot "mirrored log: write through the cache, power cut" --want 137 --disk "$S" \
	--disk "$A" --disk "$B" --kill-from "$T/written" --kill-after 0.3 -- \
	bash "$T/write.sh" mirror
"$P" cache-show "$B" >"$T/show" 2>&1
n=$(grep -c '^record:' "$T/show")
[ "$n" -gt 0 ] && ok "the surviving disk holds $n records" ||
	{ not_ok "the surviving disk holds records"; sed 's/^/# /' "$T/show" | head -20; }
truncate -s 0 "$A"
truncate -s 16M "$A"
rm -f "$T/written"
kt_boot "mirrored log: first disk lost, replay from the second" --disk "$S" \
	--disk "$A" --disk "$B" -- bash "$T/replay.sh" mirror replays
check_clean "mirrored log: the store checks clean" "$S"
export_cmp "mirrored log: every fsynced write is on the store" "$S" v1 "$T/new"

# 2. One disk, lost: the store is as it was at the drained point.
fresh_store
fresh_log "$A"
rm -f "$T/written" "$T/got"
kt_boot "single-disk log: write through the cache, power cut" --want 137 --disk "$S" \
	--disk "$A" --kill-from "$T/written" --kill-after 0.3 -- bash "$T/write.sh" /dev/ubdb
truncate -s 0 "$A"
truncate -s 16M "$A"
kt_boot "single-disk log: the disk is lost" --disk "$S" --disk "$A" -- \
	bash "$T/replay.sh" /dev/ubdb refused
check_clean "single-disk log: the store checks clean without the log" "$S"
if [ -f "$T/got" ]; then
	# Every block old or new, and not all new: the records were lost.
	if blocks_old_or_new "$T/got" 0 "$T/old" "$T/new" >"$T/out" 2>&1 &&
	   ! grep -q "^\([0-9]*\) of \1 blocks new" "$T/out"; then
		ok "single-disk log: the VDI is at the drained point: $(cat "$T/out")"
	else
		not_ok "single-disk log: every block old or new, not all new: $(cat "$T/out")"
	fi
else
	not_ok "single-disk log: the guest read the VDI back"
fi
finish
