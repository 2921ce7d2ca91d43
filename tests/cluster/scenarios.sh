#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Two hosts (UML guests 1 and 2, host ids 1 and 2) share one blockstore
# file; parallax-lockd runs on the host side of the private network and
# each guest runs parallaxd.  One boot of the guests serves every scenario,
# in this order (each depends on the state the previous one left):
#
#  a. lockd advertises itself in the superblock; both parallaxd connect.
#  b. host 1 attaches va, host 2 attaches vb; fio writes both at once with
#     crc32c verification; both verify afterwards.
#  c. host 2 is refused va (held by host 1); nothing changes on disk.
#  d. live migration of va: 1 -> 2 (verifies 1's data, writes more) -> 1
#     (verifies everything).
#  e. lockd SIGKILLed and restarted while host 1 writes va: I/O goes on,
#     dmsetup status says unreachable then connected, no lock is lost.
#  g. a client with a wrong key and garbage on lockd's port change
#     nothing (store sha256 and lock state unchanged).
#  f. host 1 is SIGKILLed holding va; "parallax unlock --host 1 --force"
#     fences it; host 2 attaches va and verifies it; host 1 boots again
#     and the kernel refuses a table with its old lock_gen and an
#     add_extent with an old extent generation, and still refuses the old
#     lock_gen once host 1 holds the VDI again (the generation fences, not
#     the holder).
#
# At the end every device is detached, the exports equal what the guests
# read, "parallax check" is clean and both guests power off cleanly.
#
# CL_TRANSPORT=nbd (scenarios-nbd.sh) runs the same with the guests
# reaching the store through nbd-server on the host side (/dev/nbd0)
# instead of a shared ubd disk (/dev/ubda).
set -u
source "$(dirname "$0")/lib.sh"

STORE=$T/store.img
LK=$CL_NET.1:$CL_LOCKD_PORT
# A short lease so that lockd's restart and the fencing run in seconds.
CL_LEASE=${CL_LEASE:-5}

case ${CL_TRANSPORT:-ubd} in
ubd) GDEV=/dev/ubda ;;
nbd) GDEV=/dev/nbd0 ;;
*) bail "CL_TRANSPORT is ubd or nbd, not '$CL_TRANSPORT'" ;;
esac

missing=
for tool in parallax parallax-lockd parallaxd; do
	have "$tool" || missing="$missing $tool"
done
[ -z "$missing" ] || bail "tools built (make -C userspace): missing$missing"

# ---------------- setup ----------------

new_store "$STORE" 1G || bail "format the store"
for v in va:32M vb:32M vc:16M; do
	"$P" create "$STORE" "${v%%:*}" --size "${v#*:}" >/dev/null ||
		bail "create VDI ${v%%:*}"
done
VA=$(vdi_id va)
VB=$(vdi_id vb)
ok "store with VDIs va ($VA), vb ($VB), vc"
cl_net 2 || bail "network namespace $NS with a bridge and 2 taps"
if [ "$GDEV" = /dev/nbd0 ]; then
	have_nbd || bail "nbd-server and nbd-client installed (Debian packages)"
	nbd_start && ok "nbd-server exports the store on $CL_NET.1:$CL_NBD_PORT" ||
		bail "nbd-server does not start: $(tail -n 3 "$T/nbd.log")"
fi

# ---------------- a. lock manager and parallaxd ----------------

lockd_start
if lockd_ready 30; then
	ok "a: parallax-lockd listens on $LK"
else
	not_ok "a: parallax-lockd does not listen on $LK"
	comment "$T/lockd.log"
	finish
fi
if "$P" dump "$STORE" | grep -q "lock manager *$LK\$"; then
	ok "a: the superblock names the lock manager $LK"
else
	not_ok "a: the superblock does not name $LK"
	"$P" dump "$STORE" | grep 'lock manager' | sed 's/^/# /'
fi

cl_boot 1 1
cl_boot 2 2
for i in 1 2; do
	cl_wait "$i" "${CL_BOOT_WAIT:-180}" && ok "guest $i (host $i) is up" ||
		bail "guest $i (host $i) never answered: $(tail -n 3 "$T/uml$i.log")"
	store_up "$i"
done
for i in 1 2; do
	if pd_start "$i" "$i"; then
		ok "a: parallaxd runs on host $i"
	else
		not_ok "a: parallaxd does not answer on host $i"
		comment "$T/parallaxd$i.log"
	fi
	st=$(on "$i" "$PDCTL status")
	if grep -qx "lockd $LK connected" <<<"$st" && grep -qx "host $i" <<<"$st"; then
		ok "a: parallaxd on host $i is connected to $LK as host $i"
	else
		not_ok "a: parallaxd status on host $i"
		sed 's/^/# /' <<<"$st"
	fi
done

# ---------------- b. two hosts, two VDIs, concurrent I/O ----------------

attach "b: host 1 attaches va" 1 va va
attach "b: host 2 attaches vb" 2 vb vb
for x in "1 va $VA" "2 vb $VB"; do
	set -- $x
	line=$(pd_device "$1" "$2")
	disk=$(vdi_lock "$3")
	g=$(sed -n 's/.* lock_gen \([0-9]*\) .*/\1/p' <<<"$line")
	if [ -n "$g" ] && [ "$disk" = "holder $1 lock_generation $g" ]; then
		ok "b: $2's record on disk names host $1 and lock_gen $g as parallaxd says"
	else
		not_ok "b: $2: parallaxd says '$line', the disk says '$disk'"
	fi
	st=$(dm_field "$1" "$2" 11)
	[ "$st" = connected ] && ok "b: dmsetup status of $2 on host $1 says lockd connected" ||
		not_ok "b: dmsetup status of $2 on host $1: lockd state '$st'"
done
# The target shows host_id only when it is not the default (1).
table=$(on 2 "dmsetup table vb")
if grep -q " host_id 2 lock_gen [1-9]" <<<"$table"; then
	ok "b: vb's table carries host_id 2 and its lock_gen"
else
	not_ok "b: vb's table: $table"
fi

bg f1 g_fio "b: host 1 writes va[0,8M) while host 2 writes vb" 1 /dev/mapper/va 0 8M 11
bg f2 g_fio "b: host 2 writes vb[0,12M) while host 1 writes va" 2 /dev/mapper/vb 0 12M 21
bg_wait f1
bg_wait f2
g_fio "b: host 1 verifies va[0,8M)" 1 /dev/mapper/va 0 8M 11 verify
g_fio "b: host 2 verifies vb[0,12M)" 2 /dev/mapper/vb 0 12M 21 verify
VB_SHA=$(dev_sha 2 /dev/mapper/vb)

# ---------------- c. a held VDI is refused ----------------

before=$(disk_locks)
g_fail "c: host 2 is refused va, held by host 1" 2 \
	"parallax attach $GDEV va --name va2"
g_fail "c: no device va2 on host 2" 2 "dmsetup info va2"
[ "$(disk_locks)" = "$before" ] && ok "c: the refusal changed no lock on disk" ||
	{ not_ok "c: the refusal changed the lock state on disk"; diff <(echo "$before") <(disk_locks) | sed 's/^/# /'; }

# ---------------- d. live migration 1 -> 2 -> 1 ----------------

SHA1=$(dev_sha 1 /dev/mapper/va)
g_check "d: host 1 detaches va" 1 "parallax detach va"
d=$(vdi_lock "$VA")
[ "${d%% *}" = holder ] && [ "$(cut -d' ' -f2 <<<"$d")" = 0 ] &&
	ok "d: va's record has no holder after detach ($d)" || not_ok "d: va after detach: $d"
attach "d: host 2 attaches va" 2 va va
g_fio "d: host 2 verifies what host 1 wrote to va" 2 /dev/mapper/va 0 8M 11 verify
got=$(dev_sha 2 /dev/mapper/va)
[ "$got" = "$SHA1" ] && ok "d: va reads the same on host 2 as on host 1" ||
	not_ok "d: va's sha256 on host 2 $got, on host 1 $SHA1"
g_fio "d: host 2 writes va[8M,16M)" 2 /dev/mapper/va 8M 8M 12
g_check "d: host 2 detaches va" 2 "parallax detach va"
attach "d: host 1 attaches va again" 1 va va
g_fio "d: host 1 verifies va[0,8M)" 1 /dev/mapper/va 0 8M 11 verify
g_fio "d: host 1 verifies host 2's va[8M,16M)" 1 /dev/mapper/va 8M 8M 12 verify

# ---------------- e. lock manager killed and restarted ----------------

locks_before=$(lockd_locks 2>&1)
disk_before=$(disk_locks)
# Overwrite blocks written in d: no new allocation needed while lockd is
# away.
bg fe g_fio "e: host 1 rewrites va[0,8M) across lockd's death and restart" 1 \
	/dev/mapper/va 0 8M 13
sleep 2
lockd_kill KILL
ok "e: lockd SIGKILLed"
if wait_for 60 '[ "$(dm_field 1 va 11)" = unreachable ]'; then
	ok "e: dmsetup status of va says unreachable"
else
	not_ok "e: dmsetup status of va never said unreachable: $(on 1 'dmsetup status va')"
fi
on 1 "$PDCTL status" | grep -q "^lockd $LK unreachable" &&
	ok "e: parallaxd status says unreachable" ||
	not_ok "e: parallaxd status: $(on 1 "$PDCTL status" | head -n 1)"
lockd_start
lockd_ready 30 && ok "e: lockd restarted" || not_ok "e: lockd did not restart"
if wait_for 60 '[ "$(dm_field 1 va 11)" = connected ]'; then
	ok "e: dmsetup status of va says connected again"
else
	not_ok "e: dmsetup status of va: $(on 1 'dmsetup status va')"
fi
bg_wait fe
g_fio "e: host 1 verifies va[0,8M) after the restart" 1 /dev/mapper/va 0 8M 13 verify
# The rewrite needed no new grant, so the on-disk lock state must be
# exactly as before: same holders, same generations (nothing fenced).
disk_after=$(disk_locks)
if [ "$disk_after" = "$disk_before" ]; then
	ok "e: the on-disk locks are exactly as before lockd's death"
else
	not_ok "e: the on-disk locks changed across lockd's restart"
	diff <(echo "$disk_before") <(echo "$disk_after") | sed 's/^/# /'
fi
locks_after=$(lockd_locks 2>&1)
lost=$(comm -23 <(sort <<<"$locks_before") <(sort <<<"$locks_after"))
if [ -n "$locks_before" ] && [ -z "$lost" ]; then
	ok "e: parallax locks lists every lock it listed before"
else
	not_ok "e: parallax locks lost lines across lockd's restart"
	sed 's/^/# before: /' <<<"$locks_before" | head -20
	sed 's/^/# lost: /' <<<"$lost" | head -20
fi
# The restarted lockd grants: writing fresh blocks needs new extents.
g_fio "e: host 1 writes va[16M,24M) after the restart" 1 /dev/mapper/va 16M 8M 14

# ---------------- g. wrong key and garbage ----------------

on 1 "sync" >/dev/null
on 2 "sync" >/dev/null
sleep 1
locks_before=$(lockd_locks 2>&1)
disk_before=$(disk_locks)
sha_before=$(sha256sum <"$STORE")
out=$(in_ns $LKPROBE "$LK" session random 1 break:2:1:1 lock_vdi:"$VB" 2>&1)
[ "$out" = closed ] && ok "g: a client with a wrong key is disconnected at HELLO" ||
	not_ok "g: wrong-key client got: $(tr '\n' ' ' <<<"$out")"
out=$(in_ns $LKPROBE "$LK" garbage 8192 2>&1)
[ "$(tail -n 1 <<<"$out")" = closed ] && ok "g: garbage closes the connection" ||
	not_ok "g: garbage got: $(tr '\n' ' ' <<<"$out")"
for n in 1 16 100 4096 65536; do
	in_ns /usr/bin/python3 -c '
import os, socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
s.sendall(os.urandom(int(sys.argv[3])))
s.close()' "$CL_NET.1" "$CL_LOCKD_PORT" "$n" 2>/dev/null
done
kill -0 "$CL_LOCKD_PID" 2>/dev/null && ok "g: lockd survived garbage" ||
	not_ok "g: lockd died: $(tail -n 3 "$T/lockd.log")"
[ "$(sha256sum <"$STORE")" = "$sha_before" ] &&
	ok "g: the store's sha256 is unchanged" || not_ok "g: the store changed"
[ "$(lockd_locks 2>&1)" = "$locks_before" ] &&
	ok "g: parallax locks is unchanged" ||
	{ not_ok "g: parallax locks changed"; diff <(echo "$locks_before") <(lockd_locks 2>&1) | sed 's/^/# /'; }
# Control: the probe's frames are right, since with the store's key it is
# served; and after a good HELLO, a request with a bad tag (a BREAK of
# every lock of host 2) is dropped with the connection.
out=$(in_ns $LKPROBE "$LK" session "store:$STORE" 99 status 2>&1)
if [ "$(head -n 1 <<<"$out")" = "reply hello 0 32 mac-ok" ] &&
   grep -q '^reply status 0 [0-9]* mac-ok$' <<<"$out"; then
	ok "g: control: with the store's key the same client is served (HELLO, STATUS)"
else
	not_ok "g: control client with the right key: $(tr '\n' ' ' <<<"$out")"
fi
out=$(in_ns $LKPROBE "$LK" session "store:$STORE" 99 '!break:2:1:1' 2>&1)
if [ "$out" = "reply hello 0 32 mac-ok"$'\n'closed ]; then
	ok "g: a BREAK with a bad tag closes the connection"
else
	not_ok "g: BREAK with a bad tag got: $(tr '\n' ' ' <<<"$out")"
fi
[ "$(disk_locks)" = "$disk_before" ] && ok "g: no lock changed on disk" ||
	{ not_ok "g: locks changed on disk"; diff <(echo "$disk_before") <(disk_locks) | sed 's/^/# /'; }
g_check "g: host 2 still reads vb" 2 "dd if=/dev/mapper/vb of=/dev/null bs=1M count=1 iflag=direct status=none"

# ---------------- f. a host dies; fencing ----------------

# Fencing a live host needs --force: without it, nothing changes.
before=$(disk_locks)
if in_ns "$P" unlock "$STORE" --host 2 >"$T/out" 2>&1; then
	not_ok "f: unlock of live host 2 without --force succeeded"
else
	ok "f: unlock of live host 2 without --force is refused: $(tail -n 1 "$T/out")"
fi
[ "$(disk_locks)" = "$before" ] && ok "f: the refused unlock changed no lock on disk" ||
	not_ok "f: the refused unlock changed the locks on disk"

g_check "f: host 1 syncs va" 1 "sync; blockdev --flushbufs /dev/mapper/va"
SHA_VA=$(dev_sha 1 /dev/mapper/va)
old_dev=$(pd_device 1 va)
old_gen=$(sed -n 's/.* lock_gen \([0-9]*\) .*/\1/p' <<<"$old_dev")
old_ext=$(sed -n 's/.* extents \([0-9:,]*\).*/\1/p' <<<"$old_dev")
old_table=$(on 1 "dmsetup table va")
note "host 1 before the kill: $old_dev"
[ -n "$old_gen" ] && [ -n "$old_ext" ] && ok "f: host 1 holds va with lock_gen $old_gen, extents $old_ext" ||
	not_ok "f: parallaxd's device line for va: '$old_dev'"
cl_kill 1
ok "f: host 1's kernel SIGKILLed"
g_fail "f: host 2 is refused va while host 1 still holds it" 2 \
	"parallax attach $GDEV va --name va"
check "f: parallax unlock --host 1 --force" "$P" unlock "$STORE" --host 1 --force
d=$(vdi_lock "$VA")
if [ "$(cut -d' ' -f2 <<<"$d")" != 1 ] && [ "$(cut -d' ' -f4 <<<"$d")" -gt "${old_gen:-0}" ]; then
	ok "f: va's record is fenced on disk ($d, was lock_gen $old_gen)"
else
	not_ok "f: va's record after the fence: $d (was lock_gen $old_gen)"
fi
attach "f: host 2 attaches va after the fence" 2 va va
got=$(dev_sha 2 /dev/mapper/va)
[ "$got" = "$SHA_VA" ] && ok "f: va reads on host 2 as host 1 left it" ||
	not_ok "f: va's sha256 on host 2 $got, host 1 had $SHA_VA"
g_fio "f: host 2 verifies va[0,8M)" 2 /dev/mapper/va 0 8M 13 verify
g_fio "f: host 2 verifies va[8M,16M)" 2 /dev/mapper/va 8M 8M 12 verify
g_fio "f: host 2 verifies va[16M,24M)" 2 /dev/mapper/va 16M 8M 14 verify

# Host 1 comes back and tries its stale grants directly on the kernel.
if cl_boot_wait "f: host 1 boots again" 1 1 && store_up 1; then
	sectors=$(($(vdi_size "$VA") / 512))
	stale="0 $sectors parallax $GDEV $VA 4 host_id 1 lock_gen $old_gen"
	[ -n "$old_table" ] && note "old table: $old_table"
	g_fail "f: the kernel refuses a table with host 1's old lock_gen $old_gen" 1 \
		"dmsetup --noudevsync create vstale --table '$stale'; $KWHY"
	g_fail "f: no device vstale exists" 1 "dmsetup info vstale"
	if pd_start 1 1; then
		ok "f: parallaxd runs on host 1 again"
	else
		not_ok "f: parallaxd does not start on host 1 again"
	fi
	if attach "f: host 1 attaches vc with fresh grants" 1 vc vc; then
		for eg in ${old_ext//,/ }; do
			g_fail "f: the kernel refuses add_extent ${eg%%:*} ${eg#*:} (host 1's old grant)" 1 \
				"dmsetup message vc 0 add_extent ${eg%%:*} ${eg#*:}; $KWHY"
		done
		g_fio "f: host 1 writes vc with its fresh grants" 1 /dev/mapper/vc 0 4M 31
		g_check "f: host 1 detaches vc" 1 "parallax detach vc"
	fi
	# The generation, not the holder, is what fences: once host 1 holds
	# va again, its old lock_gen is still refused, as stale.
	g_check "f: host 2 detaches va" 2 "parallax detach va"
	if attach "f: host 1 takes va again" 1 va va; then
		g_fail "f: host 1 holds va again, yet its old lock_gen $old_gen is refused as stale" 1 \
			"if dmsetup --noudevsync create vstale --table '$stale'; then dmsetup --noudevsync remove vstale; exit 0; fi; dmesg | grep -i parallax | tail -n 2; dmesg | tail -n 3 | grep -qi stale && exit 1; exit 0"
		g_check "f: host 1 detaches va" 1 "parallax detach va"
	fi
	attach "f: host 2 takes va back" 2 va va
fi

# ---------------- the end: everything verifies offline ----------------

g_check "host 2 detaches va" 2 "parallax detach va"
g_check "host 2 detaches vb" 2 "parallax detach vb"
pd_stop 1
pd_stop 2
exports_match "va $SHA_VA" "vb $VB_SHA"
store_clean in_ns
store_down 1
store_down 2
cl_halt 1
cl_halt 2
lockd_kill TERM
finish
