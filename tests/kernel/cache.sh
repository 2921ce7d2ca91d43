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
# CACHE_PARTS: the boots to run (A, BC, D).  Without it, the three run at
# once, each in a run of this script of its own, and their checks are
# numbered here, in the order A, BC, D.
part() { [[ " ${CACHE_PARTS:-A BC D} " == *" $1 "* ]]; }
if [ -z "${CACHE_PARTS:-}" ]; then
	declare -A lane
	for l in A BC D; do
		CACHE_PARTS=$l "$0" >"$T/lane-$l.out" 2>&1 &
		lane[$l]=$!
	done
	for l in A BC D; do
		wait "${lane[$l]}"
		echo "$?" >"$T/lane-$l.rc"
	done
	cat "$T/lane-A.out" "$T/lane-BC.out" "$T/lane-D.out" >"$T/lanes.out"
	while IFS= read -r line; do
		case $line in
		"ok "[0-9]*) ok "${line#ok * - }" ;;
		"not ok "[0-9]*) not_ok "${line#not ok * - }" ;;
		1..*) ;;
		*) echo "$line" ;;
		esac
	done <"$T/lanes.out"
	for l in A BC D; do
		rc=$(cat "$T/lane-$l.rc")
		[ "$rc" = 0 ] || grep -q '^not ok' "$T/lane-$l.out" ||
			not_ok "part $l exited with status $rc without reporting a failure"
	done
	finish
fi

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
	LOAD_STATUS=$(dmsetup status "$name")
	for e in $ext; do
		dmsetup message "$name" 0 add_extent "${e%%:*}" || return 1
	done
}
# load_status FIELD: a status field (as g_status) of the device as it was
# right after cache_on resumed it, before the extents were granted.
load_status() { echo "$LOAD_STATUS" | awk -v f="$1" '{ print $(3 + f) }'; }
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

if part A; then
echo "# part A"
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

g_fio "random 4k writes through the log verify" --rw=randwrite --bs=4k --offset=0 --size=1M
want_gt "records pending after the 4k fio verify" "$(g_status v1 16)" 0
g_fio "sequential 64k writes verify" --rw=write --bs=64k --offset=2M --size=2M
g_fio "random 64k writes verify" --rw=randwrite --bs=64k --offset=6M --size=1M
g_fio "random 4k read/write mix verify" --rw=randrw --bs=4k --offset=8M --size=1M
g_fio "random 512-byte writes verify" --rw=randwrite --bs=512 --offset=10M --size=128k
g_fio "sequential 512-byte writes from 10M+256k+512 verify" --rw=write --bs=512 \
	--offset=$((10 * M + 262144 + 512)) --size=$((128 * 1024 - 1024))
g_fio "sequential 1536-byte writes from 11M+512 verify" --rw=write --bs=1536 \
	--offset=$((11 * M + 512)) --size=$((1536 * 150))
want_gt "records pending while the fio verify passes read" "$(g_status v1 16)" 0
readall $D "$T/v1.pre"
pend=$(g_status v1 16)
want_gt "records pending after v1 was read whole" "$pend" 0
g_note "v1 before the drain: $(dmsetup status v1)"
g_check "v1: store writes fast again" set_delay sa /dev/ubda 0
drain v1
readall $D "$T/v1.post"
same "v1 reads the same after the drain as from the log" "$T/v1.post" "$T/v1.pre"
KT_FIO_TAG=2 g_fio "fio after the drain, 4k random verify" --rw=randwrite --bs=4k --offset=12M --size=512k
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
	if $KTPY uwrite /dev/mapper/u "$T/umodel" 42 200 0 $((8 * M)) >"$T/g.out" 2>&1; then
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
fi

if part BC; then
echo "# part BC"
# ---- B: a crash with undrained logs; C: the replay ---------------------------
# All on one store, each VDI with its own log:
#  c2  stamped writes by 4 threads for 1.5 s, then a flush;
#  m1  a snapshot marker still pending at the crash (behind 256 records);
#  m2  a marker applied before the crash, its record not yet past the
#      log's drained point, so replayed again;
#  c5  8 records written with the store frozen; the host then damages the
#      last record's data;
#  c6  the same; the host damages the 5th record's header.
# The store is frozen (dm-delay suspended) before the power-off, so the
# drain is cut at a point of its own, with records left in every log.
SB=$T/b-store.img
new_store "$SB"
for v in c2 m1 m2 c5 c6; do
	"$P" create "$SB" $v --size 8M >/dev/null
done
L2=$T/c2-log.img
LM1=$T/m1-log.img
LM2=$T/m2-log.img
L5=$T/c5-log.img
L6=$T/c6-log.img
for l in "$L2:64M" "$LM1:16M" "$LM2:16M" "$L5:4M" "$L6:4M"; do
	rm -f "${l%:*}"
	truncate -s "${l#*:}" "${l%:*}"
	"$P" cache-init "${l%:*}" >/dev/null
done
M1ID=$("$P" list "$SB" | awk '$2 == "m1" { print $1 }')
M2ID=$("$P" list "$SB" | awk '$2 == "m2" { print $1 }')
export M1ID M2ID
head -c $((1 * M)) /dev/urandom >"$T/m1a"
head -c $((512 * 1024)) /dev/urandom >"$T/m1b"
head -c $((128 * 1024)) /dev/urandom >"$T/m2a"
head -c $((2 * M)) /dev/urandom >"$T/m2b"
for v in c5 c6; do
	head -c $((1 * M)) /dev/urandom >"$T/$v.old"
	head -c $((512 * 1024)) /dev/urandom >"$T/$v.new"
done
# want FILE: an 8 MiB image of zeros with the given pieces (FILE@OFFSET).
mkwant() {
	local out=$1 piece
	shift
	head -c $((8 * M)) /dev/zero >"$out"
	for piece in "$@"; do
		dd if="${piece%@*}" of="$out" bs=1k seek=$((${piece#*@} / 1024)) conv=notrunc status=none
	done
}
mkwant "$T/m1snap.want" "$T/m1a@0"
mkwant "$T/m1.want" "$T/m1a@0" "$T/m1b@0"
mkwant "$T/m2snap.want" "$T/m2a@0"
mkwant "$T/m2.want" "$T/m2a@0" "$T/m2b@0"
head -c $((7 * 65536)) "$T/c5.new" >"$T/c5.new7"
head -c $((4 * 65536)) "$T/c6.new" >"$T/c6.new4"
mkwant "$T/c5.want" "$T/c5.old@0" "$T/c5.new7@0"
mkwant "$T/c6.want" "$T/c6.old@0" "$T/c6.new4@0"

cat >"$T/guestB.sh" <<'GUEST'
set -u
source "$T/cg.sh"
slow sb /dev/ubda 0 || g_not_ok "dm-delay over the store"
attach_cached c2 /dev/mapper/sb /dev/ubdb --data-extents 4 -- local_cache_mode always
attach_cached m1 /dev/mapper/sb /dev/ubdc --data-extents 4 -- local_cache_mode always
attach_cached m2 /dev/mapper/sb /dev/ubdd --data-extents 4 -- local_cache_mode always
for v in c5:ubde c6:ubdf; do
	n=${v%:*}
	if "$P" attach /dev/mapper/sb $n --data-extents 4 >"$T/g.out" 2>&1 &&
		dd if="$T/$n.old" of=/dev/mapper/$n bs=64k oflag=direct status=none &&
		cache_on $n /dev/${v#*:} local_cache_mode always >>"$T/g.out" 2>&1; then
		g_ok "attach $n, write its old data to the store, local_cache /dev/${v#*:}"
	else
		g_not_ok "attach $n, write its old data to the store, local_cache /dev/${v#*:}"
	fi
done
g_check "store writes delayed by 100 ms" set_delay sb /dev/ubda 100

# m2: A (32 records), the marker, then B (32 records of 16 blocks): the
# drain reaches the marker only once B is in the log, and takes seconds
# more for B, so the crash below comes before the drained point passes
# the marker.
dd if="$T/m2a" of=/dev/mapper/m2 bs=4k oflag=direct status=none
id=$(dmsetup message m2 0 snapshot mk2 2>&1)
[[ $id =~ ^$M2ID@[0-9]+$ ]] && g_ok "m2: snapshot mk2 in the log returns $id" ||
	g_not_ok "m2: snapshot mk2 returned '$id'"
echo "${id#*@}" >"$T/m2.id"
dd if="$T/m2b" of=/dev/mapper/m2 bs=64k oflag=direct conv=fsync status=none
# m1: 256 records, the marker, then B.
dd if="$T/m1a" of=/dev/mapper/m1 bs=4k oflag=direct status=none
id=$(dmsetup message m1 0 snapshot mk1 2>&1)
[[ $id =~ ^$M1ID@[0-9]+$ ]] && g_ok "m1: snapshot mk1 in the log returns $id" ||
	g_not_ok "m1: snapshot mk1 returned '$id'"
echo "${id#*@}" >"$T/m1.id"
dd if="$T/m1b" of=/dev/mapper/m1 bs=64k oflag=direct conv=fsync status=none
want "m1: status field 18 lists the pending snapshot" "$(g_status m1 18)" "$(cat "$T/m1.id")"
# c2: stamped writes, then a flush.
if $KTPY stampwrite /dev/mapper/c2 1024 1.5 "$T/c2.json" 4 >"$T/g.out" 2>&1 &&
	sync /dev/mapper/c2; then
	g_ok "c2: stamped writes and a flush: $(cat "$T/g.out")"
else
	g_not_ok "c2: stamped writes and a flush: $(cat "$T/g.out")"
fi
# m2's marker is applied once the drain reaches it.
for ((i = 0; i < 200; i++)); do
	[ "$(g_status m2 18)" = - ] && break
	sleep 0.1
done
want "m2: the marker was applied by the drain (status field 18)" "$(g_status m2 18)" -
want "m2: the snapshot counts as taken (status field 7)" "$(g_status m2 7)" 1
g_check "the store frozen (dm-delay suspended)" dmsetup --noudevsync suspend --nolockfs sb
for n in c5 c6; do
	for i in 0 1 2 3 4 5 6 7; do
		dd if="$T/$n.new" of=/dev/mapper/$n bs=64k skip=$i seek=$i count=1 oflag=direct \
			status=none || g_not_ok "$n: write record $i"
	done
	sync /dev/mapper/$n
	want "$n: the 8 writes are 8 records pending" "$(g_status $n 16)" 8
done
for n in c2 m1 m2; do
	want_gt "$n: records pending at the crash" "$(g_status $n 16)" 0
	g_note "$n at the crash: $(dmsetup status $n)"
done
sync "$T"/*.json "$T"/*.id "$T/results"
# The harness powers off with every table live and the store frozen.
GUEST

export PARALLAX_UML_LOG=$T/console-B.log
kt_boot "B: writes, markers and records, then a crash with the logs undrained" --timeout 300 \
	--disk "$SB" --disk "$L2" --disk "$LM1" --disk "$LM2" --disk "$L5" --disk "$L6" \
	-- bash "$T/guestB.sh"
check_clean "B: the store checks clean after the crash" "$SB"
q1=$(cat "$T/m1.id" 2>/dev/null)
q2=$(cat "$T/m2.id" 2>/dev/null)
export q1 q2
# show NAME LOG: cache-show into $T/show.NAME, records into $T/rec.NAME.
show() {
	"$P" cache-show "$2" >"$T/show.$1" 2>&1
	$CPY records "$T/show.$1" >"$T/rec.$1"
}
for v in c2:"$L2" m1:"$LM1" m2:"$LM2" c5:"$L5" c6:"$L6"; do
	show "${v%%:*}" "${v#*:}"
	echo "# ${v%%:*}: $(wc -l <"$T/rec.${v%%:*}") records in the log, $(tail -2 "$T/show.${v%%:*}" | head -1)"
done
if [ -s "$T/c2.json" ] && $CPY stampimage "$T/c2.json" 1024 "$T/c2.want" >"$T/out" 2>&1; then
	echo "# c2: $(cat "$T/out")"
	"$P" export "$SB" c2 - 2>/dev/null | head -c $((4 * M)) >"$T/c2.store"
	d=$($CPY blockdiff "$T/c2.store" "$T/c2.want")
	[ "${d%% *}" -gt 0 ] && ok "B: c2's store lacks acknowledged writes before the replay ($d)" ||
		not_ok "B: c2's store already holds every write ($d): nothing for the replay"
else
	not_ok "B: c2's stamp log: $(cat "$T/out" 2>/dev/null)"
fi
awk -v q="$q1" '$3 == "snapshot" && $5 == q' "$T/rec.m1" | grep -q . && ok "B: m1's log holds the marker for snapshot $q1" ||
	not_ok "B: m1's log lacks the marker for snapshot $q1: $(grep snapshot "$T/rec.m1")"
awk -v q="$q2" '$3 == "snapshot" && $5 == q' "$T/rec.m2" | grep -q . &&
	ok "B: m2's log still holds the applied marker for snapshot $q2" ||
	not_ok "B: m2's log no longer holds the marker for snapshot $q2 (the drained point passed it)"
n=$("$P" snaplog "$SB" m1 | awk 'NR > 1' | wc -l)
[ "$n" = 0 ] && ok "B: m1 has no snapshot on the store before the replay" ||
	not_ok "B: m1 has $n snapshots on the store before the replay, want 0"
n=$("$P" snaplog "$SB" m2 | awk 'NR > 1 { print $1 }' | tr '\n' ' ')
[ "$n" = "$M2ID@$q2 " ] && ok "B: m2's snapshot $M2ID@$q2 is on the store once before the replay" ||
	not_ok "B: m2's snapshots before the replay: '$n', want $M2ID@$q2"
# Damage: c5's last record's data, c6's 5th record's header.
for v in c5:8:1 c6:5:0; do
	IFS=: read -r n k data <<<"$v"
	rec=$(sed -n "${k}p" "$T/rec.$n")
	if [ "$(wc -l <"$T/rec.$n")" != 8 ] || [ -z "$rec" ]; then
		not_ok "B: $n's log holds 8 records: $(wc -l <"$T/rec.$n")"
		continue
	fi
	blk=$(echo "$rec" | cut -d' ' -f2)
	log=$T/$n-log.img
	$CPY flip "$log" $(((blk + data) * 4096 + 777))
	show "$n" "$log"
	want_n=$((k - 1))
	if [ "$(wc -l <"$T/rec.$n")" = $want_n ] && grep -q "^end: block $blk" "$T/show.$n"; then
		ok "B: $n: record $k (block $blk) damaged; cache-show stops there: $want_n records, $(grep '^end:' "$T/show.$n")"
	else
		not_ok "B: $n: after damaging record $k (block $blk) cache-show shows $(wc -l <"$T/rec.$n") records, want $want_n"
		sed 's/^/# /' "$T/show.$n" | tail -4
	fi
done

cat >"$T/guestC.sh" <<'GUEST'
set -u
source "$T/cg.sh"
slow sb /dev/ubda 0 || g_not_ok "dm-delay over the store"
for n in c2 m1 m2 c5 c6; do
	g_check "attach $n without the cache" "$P" attach /dev/mapper/sb $n --data-extents 4
done
# replay NAME LOG: the table with the log; the records are replayed.
replay() {
	g_check "$1: load the table with local_cache $2 (replay)" cache_on "$1" "$2" local_cache_mode always
}
# c5 and c6 first, with a store so slow that the count right after the
# load is the replayed records, before the drain has moved.
g_check "store writes delayed by 1 s" set_delay sb /dev/ubda 1000
replay c5 /dev/ubde
want "c5: the replay stops at the damaged last record (records pending)" "$(load_status 16)" 7
readall /dev/mapper/c5 "$T/c5.read"
same "c5: records 1-7 read new, the damaged record's blocks old" "$T/c5.read" "$T/c5.want"
replay c6 /dev/ubdf
want "c6: the replay stops at the damaged 5th record (records pending)" "$(load_status 16)" 4
readall /dev/mapper/c6 "$T/c6.read"
same "c6: records 1-4 read new, records 5-8 old" "$T/c6.read" "$T/c6.want"
g_check "store writes delayed by 100 ms" set_delay sb /dev/ubda 100
replay c2 /dev/ubdb
want_gt "c2: records pending right after the load" "$(load_status 16)" 0
readall /dev/mapper/c2 "$T/c2.read"
head -c $((4 * M)) "$T/c2.read" >"$T/c2.read4"
same "c2 reads every acknowledged stamp at once after the replay" "$T/c2.read4" "$T/c2.want"
replay m1 /dev/ubdc
want "m1: status field 18 lists the replayed marker" "$(load_status 18)" "$q1"
want_gt "m1: records pending right after the load" "$(load_status 16)" 0
readall /dev/mapper/m1 "$T/m1.read"
same "m1 reads its newest data after the replay" "$T/m1.read" "$T/m1.want"
replay m2 /dev/ubdd
want "m2: status field 18 lists the replayed, already applied marker" "$(load_status 18)" "$q2"
want_gt "m2: records pending right after the load" "$(load_status 16)" 0
readall /dev/mapper/m2 "$T/m2.read"
same "m2 reads its newest data after the replay" "$T/m2.read" "$T/m2.want"

g_check "store writes fast again" set_delay sb /dev/ubda 0
for n in c2 m1 m2 c5 c6; do
	drain $n
done
want "m1: status field 18 after the drain" "$(g_status m1 18)" -
want "m2: status field 18 after the drain" "$(g_status m2 18)" -
want "m1: the snapshot counts as taken (status field 7)" "$(g_status m1 7)" 1
want "m2: no snapshot taken again (status field 7)" "$(g_status m2 7)" 0
for n in c2 m1 m2 c5 c6; do
	readall /dev/mapper/$n "$T/$n.read"
	[ $n != c2 ] || truncate -s $((4 * M)) "$T/c2.read"
	same "$n reads the same after the drain" "$T/$n.read" "$T/$n.want"
	detach $n
done
# The damaged record stays dead: a new load replays nothing.
g_check "attach c5 again" "$P" attach /dev/mapper/sb c5 --data-extents 4
replay c5 /dev/ubde
want "c5: nothing to replay on the next load" "$(load_status 16)" 0
readall /dev/mapper/c5 "$T/c5.read"
same "c5 still reads the old data of the damaged record" "$T/c5.read" "$T/c5.want"
detach c5
dmsetup --noudevsync remove sb
GUEST

export PARALLAX_UML_LOG=$T/console-C.log
kt_boot "C: the replay after the crash" --timeout 300 \
	--disk "$SB" --disk "$L2" --disk "$LM1" --disk "$LM2" --disk "$L5" --disk "$L6" \
	-- bash "$T/guestC.sh"
check_clean "C: the store checks clean after the replay" "$SB"
if [ -s "$T/c2.json" ] && P=$P $KTPY stampcheck "$SB" "$T/c2.json" c2 >"$T/out" 2>&1; then
	ok "C: c2 holds every acknowledged stamped write: $(tail -1 "$T/out")"
else
	not_ok "C: c2 holds every acknowledged stamped write"
	sed 's/^/# /' "$T/out" | tail -8
fi
for n in m1 m2 c5 c6; do
	export_cmp "C: export of $n equals what was acknowledged" "$SB" $n "$T/$n.want"
done
for v in m1:$M1ID:$q1 m2:$M2ID:$q2; do
	IFS=: read -r n id q <<<"$v"
	got=$("$P" snaplog "$SB" $n | awk 'NR > 1 { print $1 }' | tr '\n' ' ')
	[ "$got" = "$id@$q " ] && ok "C: $n has exactly one snapshot, the promised $id@$q" ||
		not_ok "C: $n's snapshots: '$got', want exactly $id@$q"
	export_cmp "C: snapshot $id@$q holds exactly what $n held at the marker" \
		"$SB" "$id@$q" "$T/${n}snap.want"
done
for v in c2:"$L2" m1:"$LM1" m2:"$LM2" c5:"$L5" c6:"$L6"; do
	show "${v%%:*}" "${v#*:}"
	[ ! -s "$T/rec.${v%%:*}" ] && ok "C: ${v%%:*}'s log is empty after the detach" ||
		not_ok "C: ${v%%:*}'s log still holds $(wc -l <"$T/rec.${v%%:*}") records after the detach"
done
fi


if part D; then
echo "# part D"
# ---- D: a full log; adaptive mode; refusals ----------------------------------
SF=$T/f-store.img
LF=$T/f-log.img
SD=$T/ad-store.img
LAD=$T/ad-log.img
SR=$T/r-store.img
new_store "$SF"
new_store "$SD"
new_store "$SR"
"$P" create "$SF" f --size 16M >/dev/null
"$P" create "$SD" a --size 16M >/dev/null
for v in r1 r2 r3; do "$P" create "$SR" $v --size 16M >/dev/null; done
R1=$("$P" list "$SR" | awk '$2 == "r1" { print $1 }')
R2=$("$P" list "$SR" | awk '$2 == "r2" { print $1 }')
R3=$("$P" list "$SR" | awk '$2 == "r3" { print $1 }')
export R1 R2 R3
# VDI r3 gets the lock manager's cache-dirty mark, as if its holder had
# died with an undrained log: lock_flags is byte 133 of the record, bits
# 40..47 of the u64 at 128.
b3=$("$P" dump "$SR" | awk '$1 == "registry" { split($3, r, "[.][.]"); print r[1] }')
b3=$((b3 + R3 - 1))
w=$(python3 "$TOP/tests/cli/plxblk.py" "$SR" "$b3" get 128) &&
	python3 "$TOP/tests/cli/plxblk.py" "$SR" "$b3" set 128 $((w | 1 << 40)) --reseal
got=$("$P" list "$SR" | awk -v id="$R3" '$1 == id { print $2, $NF }')
[ "$got" = "r3 cache-dirty" ] && ok "D: VDI r3 (block $b3) is listed cache-dirty" ||
	not_ok "D: VDI r3 (block $b3) is listed cache-dirty: got '$got'"
for l in "$LF" "$LAD" "$T/r1-log.img" "$T/r0-log.img" "$T/r2-log.img"; do
	rm -f "$l"
	truncate -s 1M "$l"
done
for l in "$LF" "$LAD" "$T/r1-log.img" "$T/r2-log.img"; do
	"$P" cache-init "$l" >/dev/null
done
truncate -s 32M "$LAD"
"$P" cache-init --force "$LAD" >/dev/null
head -c $((1 * M)) /dev/urandom >"$T/f.data"

cat >"$T/guestD.sh" <<'GUEST'
set -u
source "$T/cg.sh"
# A full log: 1 MiB (255 blocks of ring), a store whose writes take 30 ms.
slow sf /dev/ubda 0 || g_not_ok "dm-delay over the store"
if attach_cached f /dev/mapper/sf /dev/ubdb --data-extents 8 -- local_cache_mode always; then
	want "f: status field 15 (log capacity, 1 MiB log)" "$(g_status f 15)" 255
	g_check "store writes delayed by 30 ms" set_delay sf /dev/ubda 30
	KT_FIO_DEV=/dev/mapper/f
	poll_start f "$T/f.poll"
	g_fio "f: sequential 64k writes, 2 MiB through a 1 MiB log, verify" --rw=write --bs=64k --size=2M
	g_fio "f: random 4k writes verify" --rw=randwrite --bs=4k --offset=4M --size=256k
	if bounded 60 dd if="$T/f.data" of=/dev/mapper/f bs=256k seek=32 oflag=direct status=none; then
		g_ok "f: 1 MiB of 256k writes complete"
	else
		g_not_ok "f: 1 MiB of 256k writes complete"
	fi
	poll_stop "$T/f.poll"
	st=$($CPY states "$T/f.poll" 13)
	[[ $st == *full* ]] && g_ok "f: status field 13 showed 'full' ($st)" ||
		g_not_ok "f: status field 13 never showed 'full' ($st)"
	st=$($CPY states "$T/f.poll" 14)
	[ "${st##* }" -le 255 ] && [ "${st##* }" -gt 200 ] &&
		g_ok "f: log blocks used (field 14) filled up to at most the capacity (max ${st##* })" ||
		g_not_ok "f: log blocks used (field 14): max ${st##* }, want 201..255"
	g_read /dev/mapper/f $((8 * M)) $((1 * M)) "$T/f.read"
	same "f: the 256k writes read back" "$T/f.read" "$T/f.data"
	g_check "f: store writes fast again" set_delay sf /dev/ubda 0
	drain f
	want "f: status field 13 after the drain" "$(g_status f 13)" logging
	g_read /dev/mapper/f $((8 * M)) $((1 * M)) "$T/f.read"
	same "f: the 256k writes read back after the drain" "$T/f.read" "$T/f.data"
	KT_FIO_TAG=2 g_fio "f: the fio data verifies after the drain" --rw=write --bs=64k --size=2M \
		--verify_only
	detach f
fi
dmsetup --noudevsync remove sf

# Adaptive mode (the default), threshold 100 ms; the fast-store writes one
# at a time, so that the latency is the store's and not a queue's.
slow sad /dev/ubdc 0 || g_not_ok "dm-delay over the store"
if attach_cached a /dev/mapper/sad /dev/ubdd --data-extents 8 -- local_cache_latency_ms 100; then
	KT_FIO_DEV=/dev/mapper/a
	want "a: status field 12 (cache mode)" "$(g_status a 12)" adaptive
	want "a: status field 13 (cache state) at the start" "$(g_status a 13)" direct
	poll_start a "$T/a1.poll"
	g_fio "a: fast store: random 4k writes verify" --rw=randwrite --bs=4k --size=512k \
		--ioengine=psync --iodepth=1
	poll_stop "$T/a1.poll"
	want "a: fast store: field 13 stayed" "$($CPY states "$T/a1.poll" 13)" "values direct max -"
	want "a: fast store: field 16 stayed" "$($CPY states "$T/a1.poll" 16)" "values 0 max 0"
	g_check "store writes delayed by 300 ms" set_delay sad /dev/ubdc 300
	poll_start a "$T/a2.poll"
	g_fio "a: slow store: random 64k writes verify" --rw=randwrite --bs=64k --offset=2M --size=2M
	for ((i = 0; i < 300; i++)); do
		[ "$(g_status a 13)" = direct ] && break
		sleep 0.1
	done
	poll_stop "$T/a2.poll"
	st=$($CPY states "$T/a2.poll" 13)
	[[ $st == *logging* ]] && g_ok "a: slow store: field 13 went to logging ($st)" ||
		g_not_ok "a: slow store: field 13 never showed logging ($st)"
	st=$($CPY states "$T/a2.poll" 16)
	[ "${st##* }" != - ] && [ "${st##* }" -gt 0 ] &&
		g_ok "a: slow store: records were pending (field 16 max ${st##* })" ||
		g_not_ok "a: slow store: no record pending ($st)"
	want "a: back to direct once the drain emptied the log (no drain message)" \
		"$(g_status a 13)" direct
	want "a: field 16 once back to direct" "$(g_status a 16)" 0
	g_check "store writes fast again" set_delay sad /dev/ubdc 0
	poll_start a "$T/a3.poll"
	KT_FIO_TAG=2 g_fio "a: fast again: random 4k writes verify" --rw=randwrite --bs=4k \
		--offset=6M --size=512k --ioengine=psync --iodepth=1
	poll_stop "$T/a3.poll"
	want "a: fast again: field 13 stayed" "$($CPY states "$T/a3.poll" 13)" "values direct max -"
	want "a: fast again: field 16 stayed" "$($CPY states "$T/a3.poll" 16)" "values 0 max 0"
	KT_FIO_TAG=3 g_fio "a: the slow-store data still verifies" --rw=randwrite --bs=64k \
		--offset=2M --size=2M --verify_only
	detach a
fi
dmsetup --noudevsync remove sad

# Tables the kernel refuses, each with its message.  VDIs r1 and r2 are
# claimed by "parallax attach", whose devices are then removed without a
# detach: tables of their own with the same lock options load.
N=32768
R=/dev/ubde
for v in r1 r2; do
	"$P" attach $R $v >"$T/g.out" 2>&1 || g_not_ok "claim $v: $(tail -1 "$T/g.out")"
	read -r _ _ _ _ _ n rest <<<"$(dmsetup table $v)"
	dmsetup --noudevsync remove $v
	eval "O_$v=(\$n \$rest)"
done
# tbl VDI NAME OPTS...: a table line for VDI (r1 or r2) with OPTS added.
tbl() {
	local v=$1 id opts
	shift
	eval "opts=(\"\${O_$v[@]}\")"
	case $v in r1) id=$R1 ;; r2) id=$R2 ;; *) id=$R3 ;; esac
	echo "0 $N parallax $R $id $((opts[0] + $#)) ${opts[*]:1} $*"
}
# refuse DESC MESSAGE TABLE: creating a device with TABLE fails, and the
# kernel log says MESSAGE.
refuse() {
	dmesg -C
	if dmsetup --noudevsync create x --table "$3" >"$T/g.out" 2>&1; then
		g_not_ok "$1: the table was accepted: $3"
		dmsetup --noudevsync remove x
		return
	fi
	if dmesg | grep -qF -- "$2"; then
		g_ok "$1: $(dmesg | grep -F -- "$2" | head -1 | sed 's/^\[[^]]*\] //'); $(head -1 "$T/g.out")"
	else
		g_not_ok "$1: no '$2' in the kernel log: $(dmesg | tail -2 | tr '\n' ' ') $(tail -1 "$T/g.out")"
	fi
	dmsetup info x >/dev/null 2>&1 && dmsetup --noudevsync remove x
}
refuse "a log never cache-init'ed" "Not a parallax local cache" "$(tbl r1 local_cache /dev/ubdg)"
refuse "local_cache with read_only" "A local cache needs a writable table" \
	"$(tbl r1 read_only local_cache /dev/ubdf)"
refuse "local_cache with snapshot_seq" "A local cache needs a writable table" \
	"$(tbl r1 snapshot_seq 1 local_cache /dev/ubdf)"
refuse "local_cache_mode always without local_cache" "need local_cache" \
	"$(tbl r1 local_cache_mode always)"
refuse "local_cache_mode adaptive without local_cache" "need local_cache" \
	"$(tbl r1 local_cache_mode adaptive)"
refuse "local_cache_latency_ms without local_cache" "need local_cache" \
	"$(tbl r1 local_cache_latency_ms 50)"
refuse "a bad mode word" "Invalid local_cache_mode" \
	"$(tbl r1 local_cache /dev/ubdf local_cache_mode sometimes)"
refuse "local_cache_latency_ms 0" "Invalid local_cache_latency_ms" \
	"$(tbl r1 local_cache /dev/ubdf local_cache_latency_ms 0)"
refuse "the store as its own log" "cannot be the blockstore" "$(tbl r1 local_cache $R)"
# Bound to VDI 1 by its first use, refused for VDI 2; cache-init frees it.
g_check "VDI $R1 with the log /dev/ubdf" dmsetup --noudevsync create t1 \
	--table "$(tbl r1 local_cache /dev/ubdf)"
g_check "remove it" dmsetup --noudevsync remove t1
want "cache-show: the log is bound to VDI $R1" \
	"$("$P" cache-show /dev/ubdf | awk '$1 == "vdi:" { print $2 }')" "$R1"
refuse "a log bound to VDI $R1, for VDI $R2" "Local cache belongs to another VDI" \
	"$(tbl r2 local_cache /dev/ubdf)"
g_check "cache-init the drained log again" "$P" cache-init /dev/ubdf
g_check "then VDI $R2 may use it" dmsetup --noudevsync create t2 \
	--table "$(tbl r2 local_cache /dev/ubdf)"
g_check "remove it" dmsetup --noudevsync remove t2
# One log, two VDIs at once: an inactive table holds it, then an active one.
g_check "VDI $R1 loads a table with the log /dev/ubdh (not resumed)" sh -c \
	"dmsetup --noudevsync create t3 --notable && dmsetup --noudevsync load t3 --table '$(tbl r1 local_cache /dev/ubdh)'"
refuse "the same log for VDI $R2 while VDI $R1's inactive table holds it" \
	"in use by another VDI" "$(tbl r2 local_cache /dev/ubdh)"
g_check "VDI $R1's table resumed" dmsetup --noudevsync resume t3
refuse "the same log for VDI $R2 while VDI $R1 uses it" "another VDI" \
	"$(tbl r2 local_cache /dev/ubdh)"
refuse "the same log for a second device of VDI $R1 while the first uses it" "in use" \
	"$(tbl r1 local_cache /dev/ubdh)"
g_check "remove VDI $R1's table" dmsetup --noudevsync remove t3
# VDI r3 is cache-dirty: its holder's log may hold writes the store lacks.
# A table with the log loads; one without it must not, even with a valid
# claim.  The claim's options come from an attach with the log, whose
# device is removed without a detach.
g_check "cache-init /dev/ubdf for VDI $R3" "$P" cache-init /dev/ubdf
g_check "attach cache-dirty VDI $R3 with its local cache" \
	"$P" attach $R r3 --local-cache /dev/ubdf
read -r _ _ _ _ _ n rest <<<"$(dmsetup table r3)"
dmsetup --noudevsync remove r3
# Its lock options, without the cache's.
O_r3=($(echo "$rest" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^local_cache/) i++; else { o = o " " $i; k++ } print k o }'))
refuse "a writable table without its local cache on cache-dirty VDI $R3" \
	"is cache-dirty" "$(tbl r3)"
if "$P" attach $R r3 >"$T/g.out" 2>&1; then
	g_not_ok "attach without --local-cache on cache-dirty VDI $R3: accepted"
	"$P" detach r3
else
	grep -q "VDI $R3 is cache-dirty.*--local-cache LOG" "$T/g.out" &&
		g_ok "attach without --local-cache on cache-dirty VDI $R3 fails: $(tail -1 "$T/g.out")" ||
		g_not_ok "attach without --local-cache on cache-dirty VDI $R3: no reason given: $(tail -1 "$T/g.out")"
fi
g_check "no device r3 left behind" sh -c '! dmsetup info r3 >/dev/null 2>&1'
g_check "a read-only table of cache-dirty VDI $R3 loads" sh -c \
	"dmsetup --noudevsync create t4 --table '0 $N parallax $R $R3 1 read_only' && dmsetup --noudevsync remove t4"
GUEST

export PARALLAX_UML_LOG=$T/console-D.log
kt_boot "D: a full log, adaptive mode, refusals" --timeout 300 \
	--disk "$SF" --disk "$LF" --disk "$SD" --disk "$LAD" --disk "$SR" \
	--disk "$T/r1-log.img" --disk "$T/r0-log.img" --disk "$T/r2-log.img" \
	-- bash "$T/guestD.sh"
check_clean "D: f's store checks clean" "$SF"
check_clean "D: a's store checks clean" "$SD"
check_clean "D: the refusals' store checks clean" "$SR"
fi

finish
