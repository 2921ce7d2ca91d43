#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Write-log replay (Documentation/testing.rst, "Write-log replay"): the
# blockstore sits on dm-log-writes in the guest while workloads run, and
# tests/crash/replay-log rebuilds the store on the host at every FLUSH,
# FUA and mark entry of the log, at random points between them, and at
# random points under a volatile write cache that lost a random part of
# what was not yet flushed.  At every point the store must check clean and
#  - raw round: VDI rv holds each block's last write flushed and marked
#    before the point (or a later one), every snapshot whose message had
#    returned is in the snapshot log, and each snapshot there equals
#    itself at the end of the log (stamped blocks, snapshots every 5 ms,
#    fio verify on a second VDI, a clone attached, written and detached);
#  - ext4 round: after the journal replay a mount would do, e2fsck -fn
#    is clean and the last file fsynced and marked before the point holds
#    its data.
# Quick by default; STRESS_SECONDS=S repeats longer rounds for about S
# seconds (make stress).  REPLAY_SEED picks the random points.
set -u
source "$(dirname "$0")/lib.sh"

RL=$TOP/tests/crash/replay-log
WL=$TOP/tests/crash/workload.py
seed=${REPLAY_SEED:-$(date +%s)}
echo "# REPLAY_SEED=$seed"
if ! make -s -C "$TOP/userspace" ../tests/crash/replay-log >"$T/out" 2>&1; then
	not_ok "build tests/crash/replay-log"
	sed 's/^/# /' "$T/out" | head
	finish
fi
# The rebuilt stores live in memory: the library drops a store's page
# cache when it opens it, which on a disk would cost a read per block.
SHM=$(mktemp -d /dev/shm/plx-replay.XXXXXX)
trap 'rm -rf "$T" "$SHM"' EXIT
[ -z "${KT_KEEP:-}" ] || trap 'rm -rf "$SHM"' EXIT
points=0
rounds=0
t_end=$(($(date +%s) + ${STRESS_SECONDS:-0}))
if [ -n "${STRESS_SECONDS:-}" ]; then
	secs=20 files=150 every=1 nrand=1000 nvol=2000 ext4_every=1 ext4_rand=200
else
	secs=5 files=40 every=2 nrand=100 nvol=200 ext4_every=3 ext4_rand=30
fi

# replay DESC LOG BASE ARGS...: replay-log --check; counts the points.
replay() {
	local desc=$1 log=$2 base=$3 n
	shift 3
	"$RL" --log "$log" --base "$base" --image "$SHM/replay.img" --check \
		--seed "$seed" "$@" >"$T/replay.out" 2>&1
	local rc=$?
	n=$(sed -n 's/.* \([0-9]*\) points checked.*/\1/p' "$T/replay.out")
	points=$((points + ${n:-0}))
	if [ $rc = 0 ]; then
		ok "$desc: $(tail -1 "$T/replay.out" | sed 's/^# //')"
	else
		not_ok "$desc (replay-log status $rc)"
		grep -v '^# replayed' "$T/replay.out" | head -25 | sed 's/^/# /'
		echo "# reproduce: REPLAY_SEED=$seed KT_KEEP=1 tests/kernel/replay.sh"
	fi
}

# same_as_store DESC LOG BASE STORE: the whole log rebuilds STORE exactly.
same_as_store() {
	local n
	n=$("$RL" --log "$2" --list | sed -n '1s/.*, \([0-9]*\) entries/\1/p')
	if "$RL" --log "$2" --base "$3" --image "$SHM/replay.img" --to "$n" >"$T/out" 2>&1 &&
		cmp "$SHM/replay.img" "$4" >>"$T/out" 2>&1; then
		ok "$1 ($n entries)"
	else
		not_ok "$1"
		sed 's/^/# /' "$T/out" | head -5
	fi
}

raw_round() {
	local S=$T/raw.img L=$T/raw.log
	new_store "$S" 512M
	"$P" create "$S" rv --size 16M >/dev/null
	"$P" create "$S" fv --size 16M >/dev/null
	cp --sparse=always "$S" "$T/raw.base"
	rm -f "$L" && truncate -s 2G "$L"
	head -c 1M /dev/urandom >"$T/rc.data"
	cat >"$T/guest-raw.sh" <<GUEST
set -u
KT_GUEST=1 source "\$KT_DIR/lib.sh"
sz=\$(blockdev --getsz /dev/ubda)
g_check "dm-log-writes under the store" \
	dmsetup create logw --table "0 \$sz log-writes /dev/ubda /dev/ubdb"
dmsetup mknodes
g_check "attach rv on the logged store" \
	"\$P" attach /dev/mapper/logw rv --data-extents 16 --metadata-extents 12
g_check "attach fv" "\$P" attach /dev/mapper/logw fv --data-extents 4
KT_FIO_DEV=/dev/mapper/fv KT_FIO_TAG=1 g_fio "fio verify on fv meanwhile" \
	--rw=randwrite --bs=4k --size=8M &
g_check "stamped writes to rv for $secs s, fdatasync and mark per generation, snapshots every 5 ms" \
	python3 "$WL" stamps /dev/mapper/rv 4096 $secs logw "\$T/vlog" rv 0.005
g_note "\$(tail -1 "\$T/g.out")"
wait
g_check "clone rc from rv@2" "\$P" create /dev/mapper/logw rc --from rv@2
g_check "attach rc" "\$P" attach /dev/mapper/logw rc --data-extents 2
g_check "write 1 MiB to the clone and fsync" \
	dd if="\$T/rc.data" of=/dev/mapper/rc bs=64k oflag=direct conv=fsync status=none
g_check "detach rc" "\$P" detach rc
g_check "detach rv" "\$P" detach rv
g_check "detach fv" "\$P" detach fv
g_check "remove the log-writes device" dmsetup remove logw
GUEST
	kt_boot "raw round: stamps, snapshots, fio, clone on dm-log-writes" \
		--disk "$S" --disk "$L" -- bash "$T/guest-raw.sh" || return
	check_clean "raw round: the store checks clean" "$S"
	same_as_store "raw round: replaying the whole log gives the store" "$L" "$T/raw.base" "$S"
	P=$P $KTPY stampcheck "$S" "$T/vlog.json" rv $("$P" snaplog "$S" rv |
		awk 'NR > 1 && $1 ~ /@/ { print $1 }') >"$T/out" 2>&1 &&
		ok "raw round: every snapshot is a prefix of the writes: $(tail -1 "$T/out" | sed 's/^# //')" ||
		{ not_ok "raw round: every snapshot is a prefix of the writes"; sed 's/^/# /' "$T/out" | head; }
	replay "raw round: 1 in $every flush/FUA/mark points, $nrand random points, $nvol under a volatile cache" \
		"$L" "$T/raw.base" --every "$every" --random "$nrand" --volatile "$nvol" \
		--vlog "$T/vlog" --vdi 1
}

ext4_round() {
	local S=$T/fs.img L=$T/fs.log i
	new_store "$S" 512M
	"$P" create "$S" ev --size 64M >/dev/null
	cp --sparse=always "$S" "$T/fs.base"
	rm -f "$L" && truncate -s 2G "$L"
	rm -rf "$T/src" && mkdir -p "$T/src" "$T/mnt"
	for i in $(seq 1 "$files"); do
		head -c $(((RANDOM % 96 + 1) * 1024 + RANDOM % 1000)) /dev/urandom >"$T/src/f$i"
	done
	cat >"$T/guest-fs.sh" <<GUEST
set -u
KT_GUEST=1 source "\$KT_DIR/lib.sh"
sz=\$(blockdev --getsz /dev/ubda)
g_check "dm-log-writes under the store" \
	dmsetup create logw --table "0 \$sz log-writes /dev/ubda /dev/ubdb"
dmsetup mknodes
g_check "attach ev on the logged store" \
	"\$P" attach /dev/mapper/logw ev --data-extents 20 --metadata-extents 2
g_check "mkfs.ext4" mkfs.ext4 -q -F /dev/mapper/ev
g_check "mount" mount -t ext4 /dev/mapper/ev "\$T/mnt"
g_check "$files files written, fsynced and marked, with churn and snapshots" \
	python3 "$WL" files "\$T/mnt" "\$T/src" $files logw ev
g_check "umount" umount "\$T/mnt"
g_check "detach ev" "\$P" detach ev
g_check "remove the log-writes device" dmsetup remove logw
GUEST
	kt_boot "ext4 round: fsync-heavy files on dm-log-writes" \
		--disk "$S" --disk "$L" -- bash "$T/guest-fs.sh" || return
	check_clean "ext4 round: the store checks clean" "$S"
	EXT4_VDI=ev EXT4_SRC=$T/src EXT4_TMP=$SHM P=$P \
		replay "ext4 round: 1 in $ext4_every flush/FUA/mark points, $ext4_rand random points, $ext4_rand under a volatile cache" \
		"$L" "$T/fs.base" --every "$ext4_every" --random "$ext4_rand" --volatile "$ext4_rand" \
		--exec "$TOP/tests/crash/ext4-check.sh"
}

export P
while :; do
	rounds=$((rounds + 1))
	raw_round
	ext4_round
	[ -n "${STRESS_SECONDS:-}" ] && [ "$(date +%s)" -lt "$t_end" ] || break
	seed=$((seed + 1))
	echo "# REPLAY_SEED=$seed"
done
echo "# stress: points_replayed=$points"
echo "# $rounds rounds, $points points replayed and checked"
finish
