#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Migration with a non-empty local write cache (Documentation/local-cache.rst,
# "Leaving the host"; parallaxd.rst, "Local write cache"; lock-protocol.rst,
# "Local write caches").  Two UML guests (host ids 1 and 2) share one
# blockstore file; the lock manager runs on the host side, parallaxd in
# each guest.  Each guest has local disks of its own for its logs.  On
# host 1 the store sits on dm-delay (writes held 1 s each), so the drain
# crawls and the log keeps what was written.
#
#  a. host 1 attaches va with --local-cache /dev/ubdb --cache-mode always
#     and writes 8 MiB with fsync: the status shows records pending
#     (field 16), va's record on disk carries the cache-dirty mark
#     (lock_flags bit 0) and "parallax locks" says "cache dirty".
#  b. host 2 attaches va with --wait-lock 180 and queues a read of it.
#     While host 1's log is not empty host 2 stays pending, its read
#     blocked, and lockd logs that it refused host 2 because of the mark.
#     Host 1 detaches va with records still in its log (the store is made
#     fast 2 s into the detach), which drains the log first: the lock
#     goes to host 2, whose queued read and whole device read return
#     exactly host 1's data, and va's record on disk names host 2 and is
#     no longer marked.
#  c. host 1 attaches vb with a cache on /dev/ubdc, writes 8 MiB with
#     fsync and is killed with records in its log (the store does not
#     have the data yet: an offline export differs).  Host 2 is refused
#     vb, with or without a cache of its own; "parallax unlock --vdi vb
#     --force" is refused, "unlock --host 1 --force" keeps vb's lock and
#     its mark.  Host 1 boots again (same disks): attaching vb without its
#     cache is refused, with it the log replays, reads return the new data
#     at once, detach drains (as in b); then host 2 attaches vb and reads
#     the data.
#
# The detaches in b and c expose a known bug ("cache bug 6") (a detach
# whose drain needs more extents than the table holds fails with ENOSPC
# after 60 s): see detach_drains.  The test then checks that nothing was
# let go, waits for the background drain and detaches again.
#
# At the end both devices are detached, the exports equal what the guests
# read, "parallax check" is clean and both guests power off cleanly.
set -u
source "$(dirname "$0")/lib.sh"

STORE=$T/store.img
CL_LEASE=${CL_LEASE:-5}
SLOW_MS=1000
M=1048576
# Host 1's store device: dm-delay over the shared disk.
SD=/dev/mapper/sd

missing=
for tool in parallax parallax-lockd parallaxd; do
	have "$tool" || missing="$missing $tool"
done
[ -z "$missing" ] || bail "tools built (make -C userspace): missing$missing"

# registry_start: the first block of the VDI registry.
registry_start() {
	"$P" dump "$STORE" | sed -n 's/^  registry *blocks \([0-9]*\)\..*/\1/p'
}

# vdi_mark ID: the lock_flags byte of the VDI's record on disk (bit 0 is
# the cache-dirty mark; the byte after height, offset 133 of the record).
vdi_mark() {
	od -An -tu1 -j $((($(registry_start) + $1 - 1) * 4096 + 133)) -N 1 "$STORE" | tr -d ' '
}

# lockd_vdi ID: lockd's own line for the VDI ("parallax locks").
lockd_vdi() {
	lockd_locks | awk -v id="$1" '$1 == "vdi" && $2 == id'
}

# slow MS: (re)load host 1's dm-delay device sd over /dev/ubda with
# writes and flushes delayed MS ms (reads not delayed).
slow() {
	on 1 "t=\"0 \$(blockdev --getsz /dev/ubda) delay /dev/ubda 0 0 /dev/ubda 0 $1\"
		if dmsetup info sd >/dev/null 2>&1; then
			dmsetup --noudevsync suspend --nolockfs sd &&
			dmsetup --noudevsync load sd --table \"\$t\" &&
			dmsetup --noudevsync resume sd
		else
			dmsetup --noudevsync create sd --table \"\$t\" && dmsetup mknodes sd
		fi"
}

# range_sha I DEV MIB: sha256 of DEV's first MIB MiB read with O_DIRECT.
range_sha() {
	on "$1" "dd if=$2 bs=1M count=$3 iflag=direct status=none | sha256sum" | cut -d' ' -f1
}

# want DESC GOT WANT: GOT must equal WANT.
want() {
	if [ "$2" = "$3" ]; then
		ok "$1 ($2)"
	else
		not_ok "$1: got '$2', want '$3'"
	fi
}

# pending_recs I NAME: status field 16, the records in NAME's log.
pending_recs() {
	dm_field "$1" "$2" 16
}

# detach_drains PART NAME [WAITER]: host 1 detaches NAME while its log holds
# records and the store is still slow; 2 s later the store is made fast,
# so that the drain takes seconds, not minutes.  "parallax detach" must
# drain the log before it lets the VDI go.
# The drain needs more store space than the table holds: parallaxd must
# grant extents while the "drain" message waits, and the target must let
# add_extent through meanwhile (once neither did, and the detach failed
# with ENOSPC after no_space_timeout).  Should the detach fail, the
# device and the lock must stay (checked), and once the background drain
# has emptied the log a second detach must release the VDI, so that the
# rest of the test runs.
detach_drains() {
	local part=$1 name=$2 t0 n pid rc line
	n=$(pending_recs 1 "$name")
	[ "${n:-0}" -gt 0 ] 2>/dev/null && ok "$part: $name's log holds $n records when host 1 detaches it" ||
		not_ok "$part: $name's log is empty before the detach (field 16 '$n'): the detach proves less"
	t0=$SECONDS
	on 1 "parallax detach $name" >"$T/detach" 2>&1 &
	pid=$!
	sleep 2
	slow 0 >"$T/out" 2>&1 && ok "$part: host 1's store writes fast again, 2 s into the detach" ||
		{ not_ok "$part: dm-delay reload on host 1"; comment "$T/out"; }
	wait "$pid"
	rc=$?
	if [ "$rc" = 0 ]; then
		ok "$part: host 1 detaches $name, draining its log first ($((SECONDS - t0)) s)"
		return
	fi
	not_ok "$part: host 1 detaches $name, draining its log first: status $rc after $((SECONDS - t0)) s"
	comment "$T/detach"
	g_check "$part: after the failed detach, $name is still on host 1" 1 "dmsetup info $name"
	if [ -n "${3:-}" ]; then
		line=$(pd_device "$3" "$name")
		[ "${line##* }" = pending ] && ok "$part: ... and host $3 still waits for it" ||
			not_ok "$part: host $3 after host 1's failed detach: '$line'"
	fi
	want "$part: ... and $name's record on disk still names host 1, marked" \
		"$(vdi_lock "$(vdi_id "$name")" | cut -d' ' -f1,2) mark $(vdi_mark "$(vdi_id "$name")")" \
		"holder 1 mark 1"
	if wait_for 90 '[ "$(pending_recs 1 '"$name"')" = 0 ]'; then
		note "$name's log drained in the background $((SECONDS - t0)) s after the first detach"
	else
		note "$name's log still holds $(pending_recs 1 "$name") records"
	fi
	g_check "$part: host 1's second detach of $name (log drained meanwhile) succeeds" 1 \
		"parallax detach $name"
}

# ---------------- setup ----------------

new_store "$STORE" 1G || bail "format the store"
for v in va vb; do
	"$P" create "$STORE" "$v" --size 16M >/dev/null || bail "create VDI $v"
done
VA=$(vdi_id va)
VB=$(vdi_id vb)
ok "store with VDIs va ($VA) and vb ($VB), 16 MiB each"
for l in log1a log1b log2; do
	truncate -s 64M "$T/$l.img"
	"$P" cache-init "$T/$l.img" >"$T/out" 2>&1 || { comment "$T/out"; bail "cache-init $l"; }
done
ok "three local cache logs (64 MiB): host 1 /dev/ubdb and /dev/ubdc, host 2 /dev/ubdb"
# The data each host 1 VDI gets, and what the whole 16 MiB VDI then reads.
head -c $((8 * M)) /dev/urandom >"$T/a.bin"
head -c $((8 * M)) /dev/urandom >"$T/b.bin"
A_SHA=$(sha256sum <"$T/a.bin" | cut -d' ' -f1)
B_SHA=$(sha256sum <"$T/b.bin" | cut -d' ' -f1)
VA_SHA=$({ cat "$T/a.bin"; head -c $((8 * M)) /dev/zero; } | sha256sum | cut -d' ' -f1)
VB_SHA=$({ cat "$T/b.bin"; head -c $((8 * M)) /dev/zero; } | sha256sum | cut -d' ' -f1)

cl_net 2 || bail "network namespace $NS with a bridge and 2 taps"
lockd_start
lockd_ready 30 && ok "parallax-lockd listens on $LK" ||
	{ comment "$T/lockd.log"; bail "parallax-lockd does not listen on $LK"; }
cl_boot 1 1 --disk "$T/log1a.img" --disk "$T/log1b.img"
cl_boot 2 2 --disk "$T/log2.img"
for i in 1 2; do
	cl_wait "$i" "${CL_BOOT_WAIT:-180}" && ok "guest $i (host $i) is up" ||
		bail "guest $i (host $i) never answered: $(tail -n 3 "$T/uml$i.log")"
done
slow "$SLOW_MS" >"$T/out" 2>&1 && ok "host 1: store writes delayed $SLOW_MS ms (dm-delay sd over /dev/ubda)" ||
	{ comment "$T/out"; bail "host 1: dm-delay over /dev/ubda"; }
for i in 1 2; do
	dev=$GDEV
	[ "$i" = 1 ] && dev=$SD
	if GDEV=$dev pd_start "$i" "$i" && on "$i" "$PDCTL status" | grep -qx "lockd $LK connected"; then
		ok "parallaxd on host $i ($dev) is connected to $LK"
	else
		comment "$T/parallaxd$i.log"
		bail "parallaxd on host $i is not connected"
	fi
done

# ---------------- a. host 1 writes va through its cache ----------------

attach_on "a: host 1 attaches va with --local-cache /dev/ubdb --cache-mode always" 1 "$SD" va va \
	--local-cache /dev/ubdb --cache-mode always || bail "host 1 cannot attach va with its cache"
table=$(on 1 "dmsetup table va")
# The table names the log by its device number.
ubdb=$(on 1 "stat -Lc '%t %T' /dev/ubdb")
ubdb=$(printf '%d:%d' "0x${ubdb% *}" "0x${ubdb#* }" 2>/dev/null)
grep -q " local_cache $ubdb local_cache_mode always\$" <<<"$table" &&
	ok "a: va's table on host 1 has the cache on /dev/ubdb ($ubdb): $table" ||
	not_ok "a: va's table on host 1 (/dev/ubdb is $ubdb): $table"
want "a: va's cache state (status field 13)" "$(dm_field 1 va 13)" logging
t0=$SECONDS
g_check "a: host 1 writes va[0,8M) with O_DIRECT and fsync" 1 \
	"dd if=$T/a.bin of=/dev/mapper/va bs=1M oflag=direct conv=fsync status=none"
note "the write took $((SECONDS - t0)) s"
n=$(pending_recs 1 va)
[ "${n:-0}" -gt 0 ] 2>/dev/null && ok "a: va's log holds $n records (status field 16) after the fsync" ||
	not_ok "a: va's log is empty after the fsync: $(on 1 'dmsetup status va')"
want "a: host 1 reads back va[0,8M) through its cache" "$(range_sha 1 /dev/mapper/va 8)" "$A_SHA"
G1=$(sed -n 's/.* lock_gen \([0-9]*\).*/\1/p' <<<"$(pd_device 1 va)")
want "a: va's record on disk: holder 1, host 1's lock_gen" "$(vdi_lock "$VA")" "holder 1 lock_generation $G1"
want "a: va's record on disk is marked cache-dirty (lock_flags)" "$(vdi_mark "$VA")" 1
line=$(lockd_vdi "$VA")
grep -q "^vdi $VA holder 1 generation $G1 cache dirty " <<<"$line" &&
	ok "a: parallax locks: $line" || not_ok "a: parallax locks for va: '$line'"

# ---------------- b. host 2 waits while host 1's log is not empty --------

t0=$SECONDS
if on 2 "parallax attach $GDEV va --name va --wait-lock 180 && dmsetup mknodes va && test -b /dev/mapper/va" \
   >"$T/attach2" 2>&1 && grep -qx /dev/mapper/va "$T/attach2"; then
	ok "b: host 2's attach of va with --wait-lock 180 returns 0 ($((SECONDS - t0)) s)"
else
	not_ok "b: host 2's attach of va with --wait-lock 180"
	comment "$T/attach2"
	comment "$T/parallaxd2.log"
fi
line=$(pd_device 2 va)
[ "${line##* }" = pending ] && ok "b: parallaxd on host 2 says pending: $line" ||
	not_ok "b: parallaxd on host 2: '$line'"
# A read queued on host 2 during the hand-over: it must return host 1's
# data, so only what the store has once host 1's log is drained.
bg r2 g_check "b: host 2's read of va[0,8M), queued during the hand-over, completes" 2 \
	"dd if=/dev/mapper/va bs=1M count=8 iflag=direct status=none | sha256sum >$T/r2.sha"
sleep 4
if kill -0 "${CL_BG[r2]}" 2>/dev/null && on 2 "pgrep -x dd" >/dev/null; then
	ok "b: host 2's read of va blocks (still running after 4 s)"
else
	not_ok "b: host 2's read of va did not wait"
fi
n=$(pending_recs 1 va)
[ "${n:-0}" -gt 0 ] 2>/dev/null && ok "b: host 1's log still holds $n records meanwhile" ||
	not_ok "b: host 1's log drained by itself already (field 16 '$n'): the rest proves less"
line=$(pd_device 2 va)
[ "${line##* }" = pending ] && ok "b: host 2 is still pending" || not_ok "b: host 2: '$line'"
want "b: va's record on disk still names host 1, marked" "$(vdi_lock "$VA") mark $(vdi_mark "$VA")" \
	"holder 1 lock_generation $G1 mark 1"
grep -q "refused EBUSY: VDI $VA has undrained writes in the local cache of host 1" "$T/lockd.log" &&
	ok "b: lockd refused host 2 because of the mark: $(grep -m1 "VDI $VA has undrained" "$T/lockd.log")" ||
	not_ok "b: no refusal of va for host 1's cache in lockd's log"

detach_drains b va 2
g_fail "b: no device va on host 1" 1 "dmsetup info va"
t0=$SECONDS
if wait_for 30 "! kill -0 ${CL_BG[r2]}"; then
	ok "b: host 2's queued read completes $((SECONDS - t0)) s after host 1's detach"
else
	not_ok "b: host 2's read still blocked 30 s after host 1's detach"
	comment "$T/parallaxd2.log"
fi
bg_wait r2
want "b: host 2's queued read returns host 1's data" "$(cut -d' ' -f1 "$T/r2.sha" 2>/dev/null)" "$A_SHA"
table=$(on 2 "dmsetup table va")
G2=$(sed -n 's/.* lock_gen \([0-9]*\).*/\1/p' <<<"$table")
if grep -q " host_id 2 lock_gen " <<<"$table" && ! grep -q "read_only\|local_cache" <<<"$table" &&
   [ -n "$G2" ] && [ "$G2" -gt "${G1:-0}" ]; then
	ok "b: va's table on host 2 carries host_id 2 and lock_gen $G2 > $G1"
else
	not_ok "b: va's table on host 2: $table (host 1 had lock_gen $G1)"
fi
want "b: host 2 reads all of va as host 1 left it" "$(dev_sha 2 /dev/mapper/va)" "$VA_SHA"
want "b: va's record on disk names host 2, not marked" "$(vdi_lock "$VA") mark $(vdi_mark "$VA")" \
	"holder 2 lock_generation $G2 mark 0"
line=$(lockd_vdi "$VA")
grep -q "^vdi $VA holder 2 generation $G2 name " <<<"$line" &&
	ok "b: parallax locks: $line" || not_ok "b: parallax locks for va: '$line'"
grep -q "host 1: unlocked VDI $VA generation $G1 (cache drained)" "$T/lockd.log" &&
	ok "b: lockd logged the clean release: $(grep -m1 "unlocked VDI $VA .*cache drained" "$T/lockd.log")" ||
	not_ok "b: no clean release of va by host 1 in lockd's log"
g_check "b: host 2 detaches va" 2 "parallax detach va"

# ---------------- c. host 1 dies with records in its log -----------------

slow "$SLOW_MS" >"$T/out" 2>&1 && ok "c: host 1's store writes delayed $SLOW_MS ms again" ||
	{ not_ok "c: dm-delay reload on host 1"; comment "$T/out"; }
attach_on "c: host 1 attaches vb with --local-cache /dev/ubdc --cache-mode always" 1 "$SD" vb vb \
	--local-cache /dev/ubdc --cache-mode always
g_check "c: host 1 writes vb[0,8M) with O_DIRECT and fsync" 1 \
	"dd if=$T/b.bin of=/dev/mapper/vb bs=1M oflag=direct conv=fsync status=none"
n=$(pending_recs 1 vb)
[ "${n:-0}" -gt 0 ] 2>/dev/null && ok "c: vb's log holds $n records when host 1 dies" ||
	not_ok "c: vb's log is empty before the crash: $(on 1 'dmsetup status vb')"
GB=$(sed -n 's/.* lock_gen \([0-9]*\).*/\1/p' <<<"$(pd_device 1 vb)")
cl_kill 1
ok "c: host 1's kernel SIGKILLed"
n=$("$P" cache-show "$T/log1b.img" 2>&1 | grep -c '^record:')
[ "$n" -gt 0 ] && ok "c: host 1's disk holds $n undrained records of vb" ||
	not_ok "c: host 1's log disk holds no record"
rm -f "$T/exp.img"
if "$P" export "$STORE" vb "$T/exp.img" >"$T/out" 2>&1; then
	got=$(head -c $((8 * M)) "$T/exp.img" | sha256sum | cut -d' ' -f1)
	[ "$got" != "$B_SHA" ] && ok "c: the store lacks vb's new data (only the log has it)" ||
		not_ok "c: the store already has all of vb's data: the crash proves nothing"
else
	not_ok "c: offline export of vb"
	comment "$T/out"
fi
want "c: vb's record on disk names host 1, marked" "$(vdi_lock "$VB") mark $(vdi_mark "$VB")" \
	"holder 1 lock_generation $GB mark 1"
g_fail "c: host 2 is refused vb without a cache" 2 "parallax attach $GDEV vb --name vb"
on 2 "parallax attach $GDEV vb --name vb 2>&1" >"$T/att" 2>&1
grep -q "held by host 1, whose local write cache holds writes not on the store" "$T/att" &&
	ok "c: ... and the attach says host 1's cache holds its writes" ||
	{ not_ok "c: the refused attach does not name the cache"; comment "$T/att"; }
grep -q "host 2 LOCK_VDI id $VB: refused EBUSY: VDI $VB has undrained writes in the local cache of host 1" "$T/lockd.log" &&
	ok "c: ... lockd refused it because host 1's cache holds its writes" ||
	not_ok "c: no refusal of vb for host 1's cache in lockd's log"
g_fail "c: host 2 is refused vb with a cache of its own" 2 \
	"parallax attach $GDEV vb --name vb --local-cache /dev/ubdb --cache-mode always"
g_fail "c: no device vb on host 2" 2 "dmsetup info vb"
if in_ns "$P" unlock "$STORE" --vdi vb --force >"$T/out" 2>&1; then
	not_ok "c: parallax unlock --vdi vb --force broke the cache-dirty lock"
else
	ok "c: parallax unlock --vdi vb --force is refused: $(tail -n 1 "$T/out")"
fi
in_ns "$P" unlock "$STORE" --host 1 --force >"$T/out" 2>&1
rc=$?
if [ "$rc" = 1 ] && grep -q "kept" "$T/out"; then
	ok "c: parallax unlock --host 1 --force fences host 1 but keeps vb: $(tr '\n' ' ' <"$T/out")"
else
	not_ok "c: parallax unlock --host 1 --force: status $rc"
	comment "$T/out"
fi
want "c: vb's record on disk after both: unchanged" "$(vdi_lock "$VB") mark $(vdi_mark "$VB")" \
	"holder 1 lock_generation $GB mark 1"
g_fail "c: host 2 is still refused vb" 2 "parallax attach $GDEV vb --name vb"

# Host 1 comes back with the same local disks.
cl_boot 1 1 --disk "$T/log1a.img" --disk "$T/log1b.img"
cl_wait 1 "${CL_BOOT_WAIT:-180}" && ok "c: host 1 boots again" ||
	bail "c: host 1 never answered after the reboot: $(tail -n 3 "$T/uml1.log")"
slow "$SLOW_MS" >"$T/out" 2>&1 && ok "c: host 1's store writes delayed $SLOW_MS ms" ||
	{ comment "$T/out"; bail "c: dm-delay over /dev/ubda after the reboot"; }
if GDEV=$SD pd_start 1 1 && on 1 "$PDCTL status" | grep -qx "lockd $LK connected"; then
	ok "c: parallaxd runs on host 1 again"
else
	comment "$T/parallaxd1.log"
	bail "c: parallaxd on host 1 is not connected after the reboot"
fi
g_fail "c: host 1 is refused vb without its cache" 1 "parallax attach $SD vb --name vb"
grep -q "local write cache" "$T/out" && ok "c: ... which it must replay: $(tail -n 1 "$T/out")" ||
	not_ok "c: the refusal does not name the local write cache"
attach_on "c: host 1 attaches vb with its cache on /dev/ubdc again" 1 "$SD" vb vb \
	--local-cache /dev/ubdc --cache-mode always
msg=$(on 1 "dmesg | grep -o 'VDI $VB: local cache .*records to drain.*'")
[ -n "$msg" ] && ok "c: the kernel replayed the log: $msg" || not_ok "c: no replay of vb's log in the kernel log"
n=$(pending_recs 1 vb)
[ "${n:-0}" -gt 0 ] 2>/dev/null && ok "c: vb's log holds $n records after the replay" ||
	not_ok "c: vb's log after the replay: $(on 1 'dmsetup status vb')"
want "c: host 1 reads vb[0,8M) at once: the new data" "$(range_sha 1 /dev/mapper/vb 8)" "$B_SHA"
want "c: vb's record on disk: host 1, the same lock_gen, marked" "$(vdi_lock "$VB") mark $(vdi_mark "$VB")" \
	"holder 1 lock_generation $GB mark 1"
detach_drains c vb
want "c: vb's record on disk: no holder, not marked" "$(vdi_lock "$VB" | cut -d' ' -f1,2) mark $(vdi_mark "$VB")" \
	"holder 0 mark 0"
n=$("$P" cache-show "$T/log1b.img" 2>&1 | grep -c '^record:')
want "c: host 1's log of vb has no undrained record" "$n" 0
attach_on "c: host 2 attaches vb" 2 "$GDEV" vb vb
want "c: host 2 reads all of vb: host 1's data" "$(dev_sha 2 /dev/mapper/vb)" "$VB_SHA"
g_check "c: host 2 detaches vb" 2 "parallax detach vb"

# ---------------- the end ----------------

pd_stop 1
pd_stop 2
g_check "host 1 removes its dm-delay device" 1 "dmsetup --noudevsync remove sd"
exports_match "va $VA_SHA" "vb $VB_SHA"
store_clean in_ns
cl_halt 1
cl_halt 2
lockd_kill TERM
finish
