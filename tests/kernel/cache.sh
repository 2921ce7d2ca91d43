#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The local write cache (issue 8; Documentation/local-cache.rst): a ring
# of write records on a local disk, drained to the store in order.  The
# store sits on dm-delay in the guest, so that the drain is slow and
# records stay in the log while the checks run.  "parallax attach" makes
# the device; the guest then reloads its table with "local_cache LOG"
# appended and grants the extents again (cache_on below).  Four boots:
#  A. fio verify through the log (4k/64k, random/sequential, 512-byte,
#     1536-byte and unaligned writes, discards) read back while the
#     records are pending; a drain, detach, check and export.  Snapshots
#     taken with records pending go into the log as markers: the promised
#     ids, status field 18, and their contents once drained.
#  B. a crash with undrained logs: stamped writes by four threads, two
#     snapshot markers (one still pending, one applied but not yet past
#     the log's drained point), and two logs whose records the host then
#     damages (the last record's data; a middle record's header).
#  C. the replay after it: newest data readable at once, the markers'
#     snapshots taken exactly once with the promised ids, replay ending
#     exactly at the damaged record; drain, verify, check, export.
#  D. a full log (status "full", writes wait and complete), adaptive mode
#     (direct while the store is fast, logging while slow, direct again
#     once drained), and tables the kernel must refuse, each with its
#     error message.
set -u
source "$(dirname "$0")/lib.sh"

CPY="/usr/bin/python3 $KT_DIR/cache.py"
M=1048576

# ---- guest helpers ------------------------------------------------------------
cat >"$T/cg.sh" <<'GUEST'
KT_GUEST=1 source "$KT_DIR/lib.sh"
CPY="/usr/bin/python3 $KT_DIR/cache.py"
M=1048576
# slow NAME DEV MS: a dm-delay device over DEV, writes and flushes delayed.
slow() {
	dmsetup --noudevsync create "$1" --table \
		"0 $(blockdev --getsz "$2") delay $2 0 0 $2 0 $3" && dmsetup mknodes
}
# set_delay NAME DEV MS: change a slow device's write delay.
set_delay() {
	local sz
	sz=$(blockdev --getsz "$2")
	dmsetup --noudevsync suspend --nolockfs "$1" &&
		dmsetup --noudevsync load "$1" --table "0 $sz delay $2 0 0 $2 0 $3" &&
		dmsetup --noudevsync resume "$1"
}
# cache_on NAME LOG [OPTION...]: reload NAME's table with local_cache LOG
# and the options appended, then grant the extents again.
cache_on() {
	local name=$1 log=$2 tbl ext s l tgt dev vdi n rest e
	shift 2
	tbl=$(dmsetup table "$name") && ext=$(dmsetup message "$name" 0 extents) || return 1
	read -r s l tgt dev vdi n rest <<<"$tbl"
	n=${n:-0}
	dmsetup --noudevsync suspend "$name" || return 1
	if ! dmsetup --noudevsync reload "$name" --table \
		"$s $l $tgt $dev $vdi $((n + 2 + $#)) $rest local_cache $log $*"; then
		dmsetup --noudevsync resume "$name"
		return 1
	fi
	dmsetup --noudevsync resume "$name" || return 1
	for e in $ext; do
		dmsetup message "$name" 0 add_extent "${e%%:*}" || return 1
	done
}
# attach_cached NAME STORE LOG ATTACH-OPTS -- CACHE-OPTS: attach and cache_on.
attach_cached() {
	local name=$1 store=$2 log=$3 aopts=()
	shift 3
	while [ $# -gt 0 ] && [ "$1" != -- ]; do aopts+=("$1"); shift; done
	[ $# -gt 0 ] && shift
	if "$P" attach "$store" "$name" "${aopts[@]}" >"$T/g.out" 2>&1 &&
		cache_on "$name" "$log" "$@" >>"$T/g.out" 2>&1; then
		g_ok "attach $name on $store with local_cache $log $*: $(dmsetup table "$name" | cut -d' ' -f4-)"
		return 0
	fi
	g_not_ok "attach $name on $store with local_cache $log $*"
	tail -5 "$T/g.out" | sed 's/^/# /' >>"$T/results"
	return 1
}
# want DESC GOT WANT: GOT must equal WANT.
want() {
	if [ "$2" = "$3" ]; then g_ok "$1 ($2)"; else g_not_ok "$1: got '$2', want '$3'"; fi
}
# want_gt DESC GOT MIN: GOT must be a number above MIN.
want_gt() {
	if [[ $2 =~ ^[0-9]+$ ]] && [ "$2" -gt "$3" ]; then g_ok "$1 ($2)"; else
		g_not_ok "$1: got '$2', want more than $3"; fi
}
# same DESC A B: files A and B are equal.
same() {
	if cmp "$2" "$3" >"$T/cmp.out" 2>&1; then g_ok "$1"; else
		g_not_ok "$1: $(head -1 "$T/cmp.out"); $($CPY blockdiff "$2" "$3")"; fi
}
# readall DEV FILE: the whole device, O_DIRECT.
readall() { dd if="$1" of="$2" bs=1M iflag=direct status=none; }
# bounded SECS CMD...: run CMD; give up after SECS seconds, dump the
# blocked tasks (which fails the run as a splat) and return 124.
bounded() {
	local secs=$1 pid i
	shift
	"$@" &
	pid=$!
	for ((i = 0; i < secs * 10; i++)); do
		kill -0 $pid 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 $pid 2>/dev/null; then
		g_not_ok "hangs: $* ($secs s)"
		g_note "status: $(dmsetup status 2>&1 | tr '\n' '|')"
		echo w >/proc/sysrq-trigger
		return 124
	fi
	wait $pid
}
# drain NAME: the drain message, bounded; then the log must be empty.
drain() {
	if bounded 90 dmsetup message "$1" 0 drain >"$T/g.out" 2>&1; then
		g_ok "drain $1"
	else
		g_not_ok "drain $1: $(tail -1 "$T/g.out")"
	fi
	want "$1: status field 16 (records pending) is 0 after the drain" "$(g_status "$1" 16)" 0
	want "$1: status field 14 (log blocks used) is 0 after the drain" "$(g_status "$1" 14)" 0
}
# poll_start NAME OUT / poll_stop OUT: dmsetup status of NAME every 20 ms.
poll_start() {
	rm -f "$2.stop"
	(while [ ! -e "$2.stop" ]; do dmsetup status "$1"; sleep 0.02; done) >"$2" 2>&1 &
	POLL_PID=$!
}
poll_stop() {
	: >"$1.stop"
	wait "$POLL_PID"
}
# detach NAME: parallax detach, bounded.
detach() {
	if bounded 90 "$P" detach "$1" >"$T/g.out" 2>&1; then
		g_ok "detach $1"
	else
		g_not_ok "detach $1: $(tail -2 "$T/g.out" | tr '\n' ' ')"
	fi
}
GUEST

# ---- A: fio verify through the log; snapshots in the log --------------------
# v1 (fio), d (discards) and u (unaligned writes) on one store, s
# (snapshots) on another; each VDI has a log of its own.  d and u come
# last: they have panicked the kernel (/tmp/cache-bugs.md).
SA=$T/a-store.img
SS=$T/s-store.img
LA=$T/a-log.img
LS=$T/s-log.img
LD=$T/d-log.img
LU=$T/u-log.img
new_store "$SA"
new_store "$SS"
"$P" create "$SA" v1 --size 16M >/dev/null
"$P" create "$SA" d --size 4M >/dev/null
"$P" create "$SA" u --size 8M >/dev/null
"$P" create "$SS" s --size 8M >/dev/null
SID=$("$P" list "$SS" | awk '$2 == "s" { print $1 }')
for l in "$LA" "$LS" "$LD" "$LU"; do
	rm -f "$l"
	truncate -s 128M "$l"
	"$P" cache-init "$l" >/dev/null
done
head -c $((2 * M)) /dev/urandom >"$T/sa"
head -c $((1 * M)) /dev/urandom >"$T/sb"
head -c $((1 * M)) /dev/urandom >"$T/sc"
head -c $((4 * M)) /dev/urandom >"$T/dd"
# What snapshot s1 (A), s2 (A, B over 0-1M) and the VDI (then C over 1-2M) hold.
head -c $((8 * M)) /dev/zero >"$T/s1.want"
dd if="$T/sa" of="$T/s1.want" conv=notrunc status=none
cp "$T/s1.want" "$T/s2.want"
dd if="$T/sb" of="$T/s2.want" conv=notrunc status=none
cp "$T/s2.want" "$T/s.want"
dd if="$T/sc" of="$T/s.want" bs=1M seek=1 conv=notrunc status=none
# What d holds after its discards (whole blocks only: partial ones are kept).
cp "$T/dd" "$T/d.want"
dd if=/dev/zero of="$T/d.want" bs=4096 seek=0 count=1 conv=notrunc status=none
dd if=/dev/zero of="$T/d.want" bs=4096 seek=2 count=254 conv=notrunc status=none
dd if=/dev/zero of="$T/d.want" bs=4096 seek=257 count=3 conv=notrunc status=none
dd if=/dev/zero of="$T/d.want" bs=4096 seek=512 count=512 conv=notrunc status=none
export SID

cat >"$T/guestA.sh" <<'GUEST'
set -u
source "$T/cg.sh"
D=/dev/mapper/v1
KT_FIO_DEV=$D
slow sa /dev/ubda 0 && slow ss /dev/ubdc 0 || g_not_ok "dm-delay devices over the stores"
attach_cached v1 /dev/mapper/sa /dev/ubdb --data-extents 12 -- local_cache_mode always || exit 1
g_check "store writes delayed by 50 ms" set_delay sa /dev/ubda 50
want "v1: status field 12 (cache mode)" "$(g_status v1 12)" always
want "v1: status field 13 (cache state)" "$(g_status v1 13)" logging
want "v1: status field 15 (log capacity, 128 MiB log)" "$(g_status v1 15)" 32767

g_fio "random 4k writes through the log verify" --rw=randwrite --bs=4k --offset=0 --size=2M
want_gt "records pending after the 4k fio verify" "$(g_status v1 16)" 0
g_fio "sequential 64k writes verify" --rw=write --bs=64k --offset=2M --size=4M
g_fio "random 64k writes verify" --rw=randwrite --bs=64k --offset=6M --size=2M
g_fio "random 4k read/write mix verify" --rw=randrw --bs=4k --offset=8M --size=2M
g_fio "random 512-byte writes verify" --rw=randwrite --bs=512 --offset=10M --size=256k
g_fio "sequential 512-byte writes from 10M+256k+512 verify" --rw=write --bs=512 \
	--offset=$((10 * M + 262144 + 512)) --size=$((256 * 1024 - 1024))
g_fio "sequential 1536-byte writes from 11M+512 verify" --rw=write --bs=1536 \
	--offset=$((11 * M + 512)) --size=$((1536 * 300))
want_gt "records pending while the fio verify passes read" "$(g_status v1 16)" 0
readall $D "$T/v1.pre"
pend=$(g_status v1 16)
want_gt "records pending after v1 was read whole" "$pend" 0
g_note "v1 before the drain: $(dmsetup status v1)"
g_check "v1: store writes fast again" set_delay sa /dev/ubda 0
drain v1
readall $D "$T/v1.post"
same "v1 reads the same after the drain as from the log" "$T/v1.post" "$T/v1.pre"
KT_FIO_TAG=2 g_fio "fio after the drain, 4k random verify" --rw=randwrite --bs=4k --offset=12M --size=1M
readall $D "$T/v1.live"
detach v1

# Snapshots with records pending.
if attach_cached s /dev/mapper/ss /dev/ubdd --data-extents 8 -- local_cache_mode always; then
	g_check "store writes delayed by 50 ms" set_delay ss /dev/ubdc 50
	dd if="$T/sa" of=/dev/mapper/s bs=4k oflag=direct conv=fsync status=none
	want_gt "s: records pending before the snapshot" "$(g_status s 16)" 0
	id1=$(dmsetup message s 0 snapshot s1 2>&1)
	dd if="$T/sb" of=/dev/mapper/s bs=64k oflag=direct conv=fsync status=none
	id2=$(dmsetup message s 0 snapshot s2 2>&1)
	dd if="$T/sc" of=/dev/mapper/s bs=64k seek=16 oflag=direct conv=fsync status=none
	q1=${id1#"$SID"@}
	q2=${id2#"$SID"@}
	[[ $id1 =~ ^$SID@[0-9]+$ ]] && g_ok "snapshot s1 in the log returns $id1" ||
		g_not_ok "snapshot s1 returned '$id1'"
	want "snapshot s2 takes the next seq" "$id2" "$SID@$((q1 + 1))"
	want "s: status field 18 lists both pending snapshots" "$(g_status s 18)" "$q1,$q2"
	want "s: status field 7 counts no snapshot taken yet" "$(g_status s 7)" 0
	readall /dev/mapper/s "$T/s.read"
	same "s reads its newest data with the markers pending" "$T/s.read" "$T/s.want"
	g_check "s: store writes fast again" set_delay ss /dev/ubdc 0
	drain s
	want "s: status field 18 after the drain" "$(g_status s 18)" -
	want "s: status field 7 counts the two snapshots" "$(g_status s 7)" 2
	readall /dev/mapper/s "$T/s.read"
	same "s reads the same after the drain" "$T/s.read" "$T/s.want"
	echo "$q1 $q2" >"$T/s.ids"
	detach s
fi
dmsetup --noudevsync remove ss

# Discards while logging: whole blocks read zeros, partial ones keep data.
if attach_cached d /dev/mapper/sa /dev/ubde --data-extents 4 -- local_cache_mode always; then
	dd if="$T/dd" of=/dev/mapper/d bs=64k oflag=direct status=none
	g_check "store writes delayed by 50 ms" set_delay sa /dev/ubda 50
	g_check "d: blkdiscard 0 len 4K" blkdiscard -o 0 -l 4096 /dev/mapper/d
	g_check "d: blkdiscard 8K len 1M-8K" blkdiscard -o 8192 -l $((M - 8192)) /dev/mapper/d
	g_check "d: blkdiscard 1M+512 len 16K (partial first and last block)" \
		blkdiscard -o $((M + 512)) -l 16384 /dev/mapper/d
	g_check "d: blkdiscard 1M+64K+512 len 1024 (inside a block)" \
		blkdiscard -o $((M + 65536 + 512)) -l 1024 /dev/mapper/d
	g_check "d: blkdiscard 2M len 2M" blkdiscard -o $((2 * M)) -l $((2 * M)) /dev/mapper/d
	readall /dev/mapper/d "$T/d.read"
	pend=$(g_status d 16)
	same "d reads its discards from the log" "$T/d.read" "$T/d.want"
	want_gt "d: records pending while it was read" "$pend" 0
	g_check "d: store writes fast again" set_delay sa /dev/ubda 0
	drain d
	readall /dev/mapper/d "$T/d.read"
	same "d reads the same after the drain" "$T/d.read" "$T/d.want"
	detach d
fi

# Unaligned writes against a byte model.
if attach_cached u /dev/mapper/sa /dev/ubdf --data-extents 4 -- local_cache_mode always; then
	g_check "store writes delayed by 50 ms" set_delay sa /dev/ubda 50
	readall /dev/mapper/u "$T/umodel"
	if $KTPY uwrite /dev/mapper/u "$T/umodel" 42 300 0 $((8 * M)) >"$T/g.out" 2>&1; then
		g_ok "u: unaligned O_DIRECT writes: $(cat "$T/g.out")"
	else
		g_not_ok "u: unaligned O_DIRECT writes"; sed 's/^/# /' "$T/g.out" >>"$T/results"
	fi
	readall /dev/mapper/u "$T/now"
	pend=$(g_status u 16)
	same "u equals the byte model, read back from the log" "$T/now" "$T/umodel"
	want_gt "u: records pending while the model was read back" "$pend" 0
	g_check "u: store writes fast again" set_delay sa /dev/ubda 0
	drain u
	readall /dev/mapper/u "$T/now"
	same "u equals the byte model after the drain" "$T/now" "$T/umodel"
	detach u
fi
dmsetup --noudevsync remove sa
GUEST

export PARALLAX_UML_LOG=$T/console-A.log
kt_boot "A: fio, snapshots, discards and unaligned writes through the log" --timeout 400 \
	--disk "$SA" --disk "$LA" --disk "$SS" --disk "$LS" --disk "$LD" --disk "$LU" \
	-- bash "$T/guestA.sh"
check_clean "A: the store of v1, d and u checks clean" "$SA"
[ -f "$T/v1.live" ] && export_cmp "A: export of v1 equals what the guest read after the drain" \
	"$SA" v1 "$T/v1.live"
[ -f "$T/v1.pre" ] && {
	head -c $((12 * M)) "$T/v1.pre" >"$T/m12"
	"$P" export "$SA" v1 - 2>/dev/null | head -c $((12 * M)) >"$T/e12"
	check "A: export of v1 equals what the guest read from the log before the drain" \
		cmp "$T/e12" "$T/m12"
}
[ -f "$T/d.read" ] && export_cmp "A: export of d equals its model" "$SA" d "$T/d.want"
[ -f "$T/umodel" ] && export_cmp "A: export of u equals its byte model" "$SA" u "$T/umodel"
check_clean "A: s's store checks clean" "$SS"
if read -r q1 q2 <"$T/s.ids" 2>/dev/null; then
	export_cmp "A: snapshot $SID@$q1 (s1) holds exactly what was written before it" \
		"$SS" "$SID@$q1" "$T/s1.want"
	export_cmp "A: snapshot $SID@$q2 (s2) holds exactly what was written before it" \
		"$SS" "$SID@$q2" "$T/s2.want"
	export_cmp "A: snapshot by label s2" "$SS" s2 "$T/s2.want"
	export_cmp "A: the VDI holds the writes after both snapshots" "$SS" s "$T/s.want"
	n=$("$P" snaplog "$SS" s | awk 'NR > 1' | wc -l)
	[ "$n" = 2 ] && ok "A: the snapshot log holds exactly two snapshots" ||
		not_ok "A: the snapshot log holds $n snapshots, want 2"
else
	not_ok "A: the snapshot part did not finish"
fi

finish
