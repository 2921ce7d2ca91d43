#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Three guests, the lock manager inside one of them: guest 1 runs
# parallax-lockd on its /dev/ubda (the shared store, a block device there)
# listening on 10.77.0.11; guests 2 and 3 (hosts 2 and 3) run parallaxd.
# lockd's grants go to disk through guest 1's ubd and the other guests'
# kernels must see them through theirs.
#
#  - the superblock names the lock manager in guest 1;
#  - host 2 writes va and host 3 writes vb at once (fio, crc32c);
#  - they swap VDIs and each verifies the other's data;
#  - "parallax locks" run inside a guest lists both VDIs with their
#    holders, as the disk records them;
#  - after detaching, lockd stops on SIGTERM, the exports
#    equal what the guests read, "parallax check" is clean, and all three
#    guests power off with a clean kernel log.
set -u
source "$(dirname "$0")/lib.sh"

STORE=$T/store.img
LK=$CL_NET.11:$CL_LOCKD_PORT

missing=
for tool in parallax parallax-lockd parallaxd; do
	have "$tool" || missing="$missing $tool"
done
[ -z "$missing" ] || bail "tools built (make -C userspace): missing$missing"

new_store "$STORE" 512M || bail "format the store"
for v in va vb; do
	"$P" create "$STORE" "$v" --size 16M >/dev/null || bail "create VDI $v"
done
VA=$(vdi_id va)
VB=$(vdi_id vb)
ok "store with VDIs va ($VA) and vb ($VB)"
cl_net 3 || bail "network namespace $NS with a bridge and 3 taps"

for i in 1 2 3; do
	cl_boot "$i" "$i"
done
for i in 1 2 3; do
	cl_wait "$i" "${CL_BOOT_WAIT:-240}" && ok "guest $i is up" ||
		bail "guest $i never answered: $(tail -n 3 "$T/uml$i.log")"
done

on 1 "setsid $T/bin/parallax-lockd $GDEV --listen $LK --lease 5 \
	>>$T/lockd.log 2>&1 </dev/null & echo \$! >$T/lockd.pid" >/dev/null
if wait_port "$CL_NET.11" "$CL_LOCKD_PORT" 30; then
	ok "lockd listens in guest 1 on $LK"
else
	not_ok "lockd does not listen in guest 1"
	comment "$T/lockd.log"
	finish
fi
if "$P" dump "$STORE" | grep -q "lock manager *$LK\$"; then
	ok "the superblock (written by guest 1 through ubd) names $LK"
else
	not_ok "the superblock does not name $LK"
	"$P" dump "$STORE" | grep 'lock manager' | sed 's/^/# /'
fi

for i in 2 3; do
	if pd_start "$i" "$i" && on "$i" "$PDCTL status" | grep -qx "lockd $LK connected"; then
		ok "parallaxd on host $i is connected to the lock manager in guest 1"
	else
		not_ok "parallaxd on host $i"
		comment "$T/parallaxd$i.log"
	fi
done

attach "host 2 attaches va" 2 va va
attach "host 3 attaches vb" 3 vb vb
bg f2 g_fio "host 2 writes va[0,12M) while host 3 writes vb" 2 /dev/mapper/va 0 12M 41
bg f3 g_fio "host 3 writes vb[0,12M) while host 2 writes va" 3 /dev/mapper/vb 0 12M 42
bg_wait f2
bg_wait f3
SHA_A=$(dev_sha 2 /dev/mapper/va)
SHA_B=$(dev_sha 3 /dev/mapper/vb)

# What the lock manager says, from inside a guest, against the disk.
locks=$(on 3 "parallax locks $GDEV" 2>&1)
for x in "$VA 2" "$VB 3"; do
	set -- $x
	disk=$(vdi_lock "$1")
	gen=${disk##* }
	if grep -q "^vdi $1 holder $2 generation $gen\b" <<<"$locks" &&
	   [ "$disk" = "holder $2 lock_generation $gen" ]; then
		ok "parallax locks in guest 3: VDI $1 held by host $2, generation $gen, as on disk"
	else
		not_ok "VDI $1: disk says '$disk'; parallax locks says:"
		sed 's/^/# /' <<<"$locks" | head -20
	fi
done

g_check "host 2 detaches va" 2 "parallax detach va"
g_check "host 3 detaches vb" 3 "parallax detach vb"
attach "host 3 attaches va" 3 va va
attach "host 2 attaches vb" 2 vb vb
g_fio "host 3 verifies host 2's va" 3 /dev/mapper/va 0 12M 41 verify
g_fio "host 2 verifies host 3's vb" 2 /dev/mapper/vb 0 12M 42 verify
[ "$(dev_sha 3 /dev/mapper/va)" = "$SHA_A" ] && ok "va reads the same on host 3 as on host 2" ||
	not_ok "va differs between hosts 2 and 3"
[ "$(dev_sha 2 /dev/mapper/vb)" = "$SHA_B" ] && ok "vb reads the same on host 2 as on host 3" ||
	not_ok "vb differs between hosts 3 and 2"
g_check "host 3 detaches va" 3 "parallax detach va"
g_check "host 2 detaches vb" 2 "parallax detach vb"
for x in "$VA" "$VB"; do
	d=$(vdi_lock "$x")
	[ "$(cut -d' ' -f2 <<<"$d")" = 0 ] && ok "VDI $x unlocked on disk ($d)" ||
		not_ok "VDI $x after detach: $d"
done
pd_stop 2
pd_stop 3
g_check "lockd in guest 1 stops on SIGTERM" 1 \
	"p=\$(cat $T/lockd.pid) && kill \$p &&
	for n in \$(seq 100); do kill -0 \$p 2>/dev/null || exit 0; sleep 0.2; done; exit 1"

exports_match "va $SHA_A" "vb $SHA_B"
store_clean
for i in 1 2 3; do
	cl_halt "$i"
done
finish
