#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Live-migration hand-over of a read-write VDI between two hosts through
# parallaxd ("parallax attach --wait-lock", Documentation/parallaxd.rst).
# Two UML guests (host ids 1 and 2) share one blockstore file; the lock
# manager runs on the host side, parallaxd in each guest.
#
#  a. host 1 attaches va and writes va[0,8M) with fio (crc32c headers).
#  b. host 2 attaches va with --wait-lock 60 while host 1 holds it: the
#     attach returns at once, the device exists, read_only and suspended,
#     and parallaxd says pending.  A direct write by host 2 to va[16M,20M)
#     blocks (still running after 1 s, not failed).
#  c. host 1 detaches va: host 2's write completes within seconds; va's
#     table on host 2 carries host_id 2 and a lock_gen above host 1's;
#     host 2 reads back host 1's data and its own write.
#  d. --wait-lock 2 while host 1 holds vb: a write queued meanwhile fails
#     when the wait ends (no hang), parallaxd says stale, a later write
#     fails too, host 1 still holds vb, and detach removes the device.
#  e. usage: --wait-lock with --read-only is refused.
#
# At the end every device is detached, the export equals what the guests
# read, "parallax check" is clean and both guests power off cleanly.
set -u
source "$(dirname "$0")/lib.sh"

STORE=$T/store.img
CL_LEASE=${CL_LEASE:-5}

missing=
for tool in parallax parallax-lockd parallaxd; do
	have "$tool" || missing="$missing $tool"
done
[ -z "$missing" ] || bail "tools built (make -C userspace): missing$missing"

# lock_gen_of LINE: the lock_gen field of a parallaxd device line or table.
lock_gen_of() {
	sed -n 's/.* lock_gen \([0-9]*\).*/\1/p' <<<"$1"
}

# ---------------- setup ----------------

new_store "$STORE" 1G || bail "format the store"
for v in va:32M vb:16M; do
	"$P" create "$STORE" "${v%%:*}" --size "${v#*:}" >/dev/null ||
		bail "create VDI ${v%%:*}"
done
VA=$(vdi_id va)
VB=$(vdi_id vb)
ok "store with VDIs va ($VA) and vb ($VB)"
# Host 2's own data for va[16M,20M), written from the shared run dir.
head -c 4M /dev/urandom >"$T/w2.bin"
W2_SHA=$(sha256sum <"$T/w2.bin" | cut -d' ' -f1)
cl_net 2 || bail "network namespace $NS with a bridge and 2 taps"
lockd_start
lockd_ready 30 && ok "parallax-lockd listens on $LK" ||
	{ comment "$T/lockd.log"; bail "parallax-lockd does not listen on $LK"; }
cl_boot 1 1
cl_boot 2 2
for i in 1 2; do
	cl_wait "$i" "${CL_BOOT_WAIT:-180}" && ok "guest $i (host $i) is up" ||
		bail "guest $i (host $i) never answered: $(tail -n 3 "$T/uml$i.log")"
done
for i in 1 2; do
	if pd_start "$i" "$i" && on "$i" "$PDCTL status" | grep -qx "lockd $LK connected"; then
		ok "parallaxd on host $i is connected to $LK"
	else
		comment "$T/parallaxd$i.log"
		bail "parallaxd on host $i is not connected"
	fi
done

# ---------------- a. host 1 writes va ----------------

attach "a: host 1 attaches va" 1 va va || bail "host 1 cannot attach va"
g_fio "a: host 1 writes va[0,8M)" 1 /dev/mapper/va 0 8M 11
g_check "a: host 1 flushes va" 1 "sync; blockdev --flushbufs /dev/mapper/va"
G1=$(lock_gen_of "$(pd_device 1 va)")
[ -n "$G1" ] && [ "$G1" -gt 0 ] && ok "a: host 1 holds va with lock_gen $G1" ||
	not_ok "a: parallaxd's line for va on host 1: $(pd_device 1 va)"

# ---------------- b. host 2 waits for va ----------------

t0=$SECONDS
if on 2 "parallax attach $GDEV va --name va --wait-lock 60 && dmsetup mknodes va && test -b /dev/mapper/va" \
   >"$T/attach2" 2>&1 && grep -qx /dev/mapper/va "$T/attach2"; then
	ok "b: host 2's attach of va with --wait-lock 60 returns 0 ($((SECONDS - t0)) s)"
else
	not_ok "b: host 2's attach of va with --wait-lock 60"
	comment "$T/attach2"
	comment "$T/parallaxd2.log"
fi
[ $((SECONDS - t0)) -lt 15 ] && ok "b: ... at once, not after the wait" ||
	not_ok "b: the attach took $((SECONDS - t0)) s"
grep -q "held by another host" "$T/attach2" &&
	ok "b: attach says the VDI is held elsewhere: $(grep 'held by' "$T/attach2")" ||
	not_ok "b: attach does not say it waits"
table=$(on 2 "dmsetup table va")
grep -q " read_only" <<<"$table" && ! grep -q "host_id" <<<"$table" &&
	ok "b: va's table on host 2 is read_only: $table" ||
	not_ok "b: va's table on host 2: $table"
on 2 "dmsetup info va" | grep -q "^State: *SUSPENDED" &&
	ok "b: va is suspended on host 2" ||
	not_ok "b: va on host 2: $(on 2 'dmsetup info va' | grep State)"
line=$(pd_device 2 va)
[ "${line##* }" = pending ] && ok "b: parallaxd on host 2 says pending: $line" ||
	not_ok "b: parallaxd on host 2: '$line'"
d=$(vdi_lock "$VA")
[ "$d" = "holder 1 lock_generation $G1" ] && ok "b: host 1 still holds va on disk ($d)" ||
	not_ok "b: va on disk: $d"

bg w2 g_check "c: host 2's write of va[16M,20M), queued during the hand-over, succeeds" 2 \
	"dd if=$T/w2.bin of=/dev/mapper/va bs=1M seek=16 oflag=direct conv=fsync status=none"
sleep 1
if kill -0 "${CL_BG[w2]}" 2>/dev/null && on 2 "pgrep -x dd" >/dev/null; then
	ok "b: host 2's write to va blocks (still running after 1 s)"
else
	not_ok "b: host 2's write to va did not wait"
fi
sleep 1
kill -0 "${CL_BG[w2]}" 2>/dev/null && ok "b: ... and after 2 s" ||
	not_ok "b: host 2's write to va ended before host 1 let go"

# ---------------- c. host 1 lets go ----------------

g_check "c: host 1 detaches va" 1 "parallax detach va"
t0=$SECONDS
if wait_for 20 "! kill -0 ${CL_BG[w2]}"; then
	ok "c: host 2's write completes $((SECONDS - t0)) s after host 1's detach"
else
	not_ok "c: host 2's write still blocked 20 s after host 1's detach"
	comment "$T/parallaxd2.log"
fi
bg_wait w2
table=$(on 2 "dmsetup table va")
G2=$(lock_gen_of "$table")
if grep -q " host_id 2 lock_gen " <<<"$table" && ! grep -q read_only <<<"$table" &&
   [ -n "$G2" ] && [ "$G2" -gt "${G1:-0}" ]; then
	ok "c: va's table on host 2 carries host_id 2 and lock_gen $G2 > $G1"
else
	not_ok "c: va's table on host 2: $table (host 1 had lock_gen $G1)"
fi
on 2 "dmsetup info va" | grep -q "^State: *ACTIVE" && ok "c: va is active on host 2" ||
	not_ok "c: va on host 2: $(on 2 'dmsetup info va' | grep State)"
line=$(pd_device 2 va)
if grep -q "^device va vdi $VA rw lock_gen $G2 extents [0-9]" <<<"$line" &&
   ! grep -q "pending\|stale" <<<"$line"; then
	ok "c: parallaxd on host 2 holds va read-write: $line"
else
	not_ok "c: parallaxd on host 2: '$line'"
fi
[ "$(vdi_lock "$VA")" = "holder 2 lock_generation $G2" ] &&
	ok "c: va's record on disk names host 2 and lock_gen $G2" ||
	not_ok "c: va on disk: $(vdi_lock "$VA")"
grep -q "VDI $VA handed over" "$T/parallaxd2.log" &&
	ok "c: parallaxd logged the hand-over: $(grep "VDI $VA handed over" "$T/parallaxd2.log" | tail -n 1)" ||
	not_ok "c: no 'VDI $VA handed over' in parallaxd's log"
g_fio "c: host 2 verifies host 1's va[0,8M)" 2 /dev/mapper/va 0 8M 11 verify
got=$(on 2 "dd if=/dev/mapper/va bs=1M skip=16 count=4 iflag=direct status=none | sha256sum" | cut -d' ' -f1)
[ "$got" = "$W2_SHA" ] && ok "c: host 2 reads back its own write to va[16M,20M)" ||
	not_ok "c: va[16M,20M) on host 2: $got, written $W2_SHA"
g_fio "c: host 2 writes va[8M,16M) with the handed-over lock" 2 /dev/mapper/va 8M 8M 12
SHA_VA=$(dev_sha 2 /dev/mapper/va)

# ---------------- d. the wait runs out ----------------

attach "d: host 1 attaches vb" 1 vb vb
g_check "d: host 2's attach of vb with --wait-lock 2 returns 0" 2 \
	"parallax attach $GDEV vb --name vb --wait-lock 2 && dmsetup mknodes vb && test -b /dev/mapper/vb"
t0=$SECONDS
out=$(on 2 "timeout 20 dd if=/dev/zero of=/dev/mapper/vb bs=4k count=1 oflag=direct status=none; echo status \$?" 2>&1)
st=$(sed -n 's/^status //p' <<<"$out")
if [ -n "$st" ] && [ "$st" != 0 ] && [ "$st" != 124 ]; then
	ok "d: a write queued while waiting fails when the wait ends ($((SECONDS - t0)) s, status $st)"
else
	not_ok "d: the queued write: $(tr '\n' ' ' <<<"$out")"
fi
if wait_for 10 '[ "$(pd_device 2 vb | awk "{ print \$NF }")" = stale ]'; then
	ok "d: parallaxd on host 2 says stale: $(pd_device 2 vb)"
else
	not_ok "d: parallaxd on host 2: $(pd_device 2 vb)"
fi
on 2 "dmsetup info vb" | grep -q "^State: *ACTIVE" && ok "d: vb is active (not suspended) on host 2" ||
	not_ok "d: vb on host 2: $(on 2 'dmsetup info vb' | grep State)"
out=$(on 2 "timeout 20 dd if=/dev/zero of=/dev/mapper/vb bs=4k count=1 oflag=direct status=none; echo status \$?" 2>&1)
st=$(sed -n 's/^status //p' <<<"$out")
[ -n "$st" ] && [ "$st" != 0 ] && [ "$st" != 124 ] &&
	ok "d: a later write fails at once (status $st): $(head -n 1 <<<"$out")" ||
	not_ok "d: the later write: $(tr '\n' ' ' <<<"$out")"
g_check "d: host 2 still reads vb" 2 "dd if=/dev/mapper/vb of=/dev/null bs=1M count=1 iflag=direct status=none"
grep -q "VDI $VB: host 1 did not hand it over in time" "$T/parallaxd2.log" &&
	ok "d: parallaxd logged the expiry" || not_ok "d: no expiry in parallaxd's log"
d=$(vdi_lock "$VB")
[ "$(cut -d' ' -f2 <<<"$d")" = 1 ] && ok "d: host 1 still holds vb on disk ($d)" ||
	not_ok "d: vb on disk: $d"
g_check "d: host 2 detaches the stale vb" 2 "parallax detach vb"
g_fail "d: no device vb on host 2" 2 "dmsetup info vb"
[ -z "$(pd_device 2 vb)" ] && ok "d: parallaxd on host 2 forgot vb" ||
	not_ok "d: parallaxd on host 2 still lists $(pd_device 2 vb)"
g_fio "d: host 1 still writes vb" 1 /dev/mapper/vb 0 4M 21
g_check "d: host 1 detaches vb" 1 "parallax detach vb"

# ---------------- e. usage ----------------

g_fail "e: --wait-lock with --read-only is refused" 2 \
	"parallax attach $GDEV vb --name vbr --read-only --wait-lock 5; [ \$? = 2 ] && exit 1; exit 0"
g_fail "e: no device vbr" 2 "dmsetup info vbr"

# ---------------- the end ----------------

g_check "host 2 detaches va" 2 "parallax detach va"
pd_stop 1
pd_stop 2
exports_match "va $SHA_VA"
store_clean in_ns
cl_halt 1
cl_halt 2
lockd_kill TERM
finish
