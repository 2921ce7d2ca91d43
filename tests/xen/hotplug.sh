#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# scripts/block-parallax, the Xen block hotplug script, without Xen: in
# the UML guest, Debian's own /etc/xen/scripts (xen-utils-common) run it
# exactly as libxl would (XENBUS_PATH=backend/vbd/<domid>/<devid>, the
# command as argument), with xenstore-read/-write/-exists/-rm/-list served
# by a recording stand-in (tests/xen/xenstore.bash) bind-mounted over
# /usr/bin in the guest, because xen-hotplug-common.sh puts /usr/bin first
# on PATH.  Single-host mode (no lock manager).  The guest sees the host's
# root, so it writes only under $T, its own tmpfs /run, and a tmpfs it
# mounts over /var/log/xen.
set -u
XT_DIR=$(cd "$(dirname "$0")" && pwd)
source "$XT_DIR/../kernel/lib.sh"

for f in block-common.sh xen-hotplug-common.sh locking.sh logging.sh; do
	if [ ! -r "/etc/xen/scripts/$f" ]; then
		echo "not ok 1 - /etc/xen/scripts/$f missing (apt-get install xen-utils-common)"
		echo "1..1"
		exit 1
	fi
done

S=$T/store.img
new_store "$S" 512M
"$P" create "$S" web --size 16M >/dev/null
"$P" create "$S" db --size 8M >/dev/null
head -c 512K /dev/urandom >"$T/golden"
"$P" import "$S" web "$T/golden" >/dev/null 2>&1
"$P" snapshot "$S" web --label golden >/dev/null

# Xen's scripts directory with block-parallax in it: symlinks, so the
# real block-common.sh and friends run.
mkdir -p "$T/scripts" "$T/xsbin"
for f in /etc/xen/scripts/*; do
	ln -s "$f" "$T/scripts/${f##*/}"
done
ln -s "$TOP/scripts/block-parallax" "$T/scripts/block-parallax"
for op in read write exists rm list; do
	printf '#!/bin/sh\nexec bash %q %s "$@"\n' "$XT_DIR/xenstore.bash" "$op" \
		>"$T/xsbin/xenstore-$op"
	chmod +x "$T/xsbin/xenstore-$op"
done
export XT_DIR

cat >"$T/guest.sh" <<'GUEST'
set -u
KT_GUEST=1 source "$KT_DIR/lib.sh"
export XS_STORE=$T/xenstore XS_LOG=$T/xenstore.log PARALLAX=$P
: >"$XS_STORE"
: >"$XS_LOG"
M=1048576

# What udev makes on a real dom0: locking.sh's claim_lock stats
# /dev/stdin and loops for ever without it.
for i in 0:stdin 1:stdout 2:stderr; do
	[ -e "/dev/${i#*:}" ] || ln -s "/proc/self/fd/${i%%:*}" "/dev/${i#*:}"
done
# The guest's own mounts: the host's files stay untouched.
mount -t tmpfs tmpfs /var/log/xen || { g_not_ok "tmpfs on /var/log/xen"; exit 1; }
for op in read write exists rm list; do
	mount --bind "$T/xsbin/xenstore-$op" "/usr/bin/xenstore-$op" ||
		{ g_not_ok "bind the stand-in over /usr/bin/xenstore-$op"; exit 1; }
done
/usr/bin/xenstore-write probe/x 42 && [ "$(/usr/bin/xenstore-read probe/x)" = 42 ] &&
	g_ok "xenstore stand-in answers as /usr/bin/xenstore-*" ||
	{ g_not_ok "xenstore stand-in answers as /usr/bin/xenstore-*"; exit 1; }

xsget() { awk -F '\t' -v k="$1" '$1 == k { print substr($0, length(k) + 2) }' "$XS_STORE"; }
# backend DOMID DEVID PARAMS MODE: the nodes libxl writes before "add".
backend() {
	local b=backend/vbd/$1/$2
	/usr/bin/xenstore-write "$b/params" "$3" "$b/mode" "$4" "$b/frontend-id" "$1" \
		"$b/frontend" "/local/domain/$1/device/vbd/$2" "$b/type" phy \
		"$b/script" /etc/xen/scripts/block-parallax "$b/online" 1
}
# hp OP DOMID DEVID: run the hotplug script as libxl does; status in $rc.
hp() {
	XENBUS_PATH=backend/vbd/$2/$3 "$T/scripts/block-parallax" "$1" >"$T/hp.out" 2>&1
	rc=$?
}
dm_mm_hex() { printf '%x:%x' $(dmsetup info -c --noheadings -o major,minor --separator ' ' "$1"); }
vdi_field() {
	blockdev --flushbufs /dev/ubda
	"$P" list /dev/ubda --json | python3 -c '
import json, sys
print([v for v in json.load(sys.stdin) if v["name"] == sys.argv[1]][0][sys.argv[2]])' "$1" "$2"
}
extents_held_by() {
	blockdev --flushbufs /dev/ubda
	"$P" dump /dev/ubda | grep -c " holder $1 "
}
# expect_refused DESC DOMID DEVID PATTERN: the last hp failed, said
# PATTERN in hotplug-error, set hotplug-status error, made no device.
expect_refused() {
	local b=backend/vbd/$2/$3 err
	err=$(xsget "$b/hotplug-error")
	if [ "$rc" != 0 ] && [ "$(xsget "$b/hotplug-status")" = error ] &&
	   echo "$err" | grep -q -- "$4" && ! dmsetup info "xen-$2-$3" >/dev/null 2>&1 &&
	   [ ! -e "$PARALLAX_RUN_DIR/xen-$2-$3" ]; then
		g_ok "$1: exit $rc, hotplug-error '$err'"
	else
		g_not_ok "$1: exit $rc, status '$(xsget "$b/hotplug-status")', error '$err', want /$4/"
		sed 's/^/# /' "$T/hp.out" >>"$T/results"
	fi
}

# --- add, read-write --------------------------------------------------
backend 5 51712 /dev/ubda:web w
hp add 5 51712
B=backend/vbd/5/51712
D=xen-5-51712
if [ "$rc" = 0 ] && [ "$(xsget $B/hotplug-status)" = connected ] && dmsetup info $D >/dev/null 2>&1; then
	g_ok "add /dev/ubda:web for domain 5: hotplug-status connected, device $D exists"
else
	g_not_ok "add /dev/ubda:web: exit $rc, hotplug-status '$(xsget $B/hotplug-status)', error '$(xsget $B/hotplug-error)'"
	sed 's/^/# /' "$T/hp.out" /var/log/xen/xen-hotplug.log >>"$T/results"
	exit 1
fi
want=$(dm_mm_hex $D)
got=$(xsget $B/physical-device)
[ -n "$want" ] && [ "$got" = "$want" ] &&
	g_ok "physical-device is the dm device's major:minor in hex ($got)" ||
	g_not_ok "physical-device '$got', dmsetup says '$want'"
got=$(xsget $B/physical-device-path)
[ "$got" = /dev/mapper/$D ] && [ -b "$got" ] && [ "$(stat -L -c %t:%T "$got")" = "$want" ] &&
	g_ok "physical-device-path is /dev/mapper/$D, a block device with that number" ||
	g_not_ok "physical-device-path '$got' (want /dev/mapper/$D, $want)"
web=$(vdi_field web id)
ubda=$(printf '%d:%d' $(stat -L -c '0x%t 0x%T' /dev/ubda))
set -- $(dmsetup table $D)
[ "$3" = parallax ] && [ "$4" = "$ubda" ] && [ "$5" = "$web" ] && ! dmsetup table $D | grep -qw read_only &&
	g_ok "table presents VDI $web of /dev/ubda read-write: $*" ||
	g_not_ok "table: $*"
[ "$(vdi_field web holder)" = 1 ] && g_ok "VDI web is held by host 1 on disk" ||
	g_not_ok "VDI web holder $(vdi_field web holder), want 1"

head -c $M /dev/urandom >"$T/data1"
if dd if="$T/data1" of=/dev/mapper/$D bs=64k seek=16 oflag=direct status=none &&
   dd if=/dev/mapper/$D of="$T/back1" bs=64k skip=16 count=16 iflag=direct status=none &&
   cmp -s "$T/data1" "$T/back1"; then
	g_ok "1 MiB written at 1 MiB through physical-device-path reads back"
else
	g_not_ok "1 MiB written at 1 MiB through physical-device-path reads back"
fi

# --- a second read-write add of the same VDI ---------------------------
backend 6 51712 /dev/ubda:web w
hp add 6 51712
expect_refused "second read-write add of web (domain 6) refused" 6 51712 "already attached read-write on this host as $D"

# --- a VDI held by another host: parallax attach itself refuses ---------
if "$P" attach /dev/ubda db --host-id 2 --name other-db >"$T/g.out" 2>&1 &&
   dmsetup remove --noudevsync other-db >>"$T/g.out" 2>&1; then
	backend 7 51728 /dev/ubda:2 w
	hp add 7 51728
	expect_refused "add of db (by id) while host 2 holds it refused by parallax attach" 7 51728 "held by host 2"
	# A live migration's receiving domain: without a lock manager there is
	# no hand-over (--wait-lock is refused), so the add is refused as above.
	/usr/bin/xenstore-write /local/domain/7/name web7--incoming
	hp add 7 51728
	expect_refused "add of db for an --incoming domain, single-host, still refused" 7 51728 "held by host 2"
	/usr/bin/xenstore-rm /local/domain/7/name
	g_check "release host 2's claim on db" "$P" detach other-db
else
	g_not_ok "claim db as host 2"; sed 's/^/# /' "$T/g.out" >>"$T/results"
fi

# --- read-only add beside the writer -------------------------------------
backend 8 51712 /dev/ubda:web r
backend 10 51712 /dev/ubda:web w
hp add 8 51712
R=xen-8-51712
if [ "$rc" = 0 ] && [ "$(xsget backend/vbd/8/51712/hotplug-status)" = connected ] &&
   [ "$(blockdev --getro /dev/mapper/$R)" = 1 ]; then
	g_ok "read-only add of web (access=r) beside the writer: $(dmsetup info $R | grep State)"
	dd if=/dev/mapper/$R of="$T/back2" bs=64k skip=16 count=16 iflag=direct status=none
	cmp -s "$T/data1" "$T/back2" && g_ok "read-only device reads the written data" ||
		g_not_ok "read-only device reads the written data"
	g_fail "writing the read-only device fails" \
		dd if="$T/data1" of=/dev/mapper/$R bs=64k count=1 oflag=direct status=none
else
	g_not_ok "read-only add: exit $rc, error '$(xsget backend/vbd/8/51712/hotplug-error)'"
	sed 's/^/# /' "$T/hp.out" >>"$T/results"
fi

# A read-only device is no writer: with domain 5's disk gone, a
# read-write add beside the read-only one is taken (then given back).
hp remove 5 51712
hp add 10 51712
if [ "$rc" = 0 ] && [ "$(xsget backend/vbd/10/51712/hotplug-status)" = connected ]; then
	g_ok "read-write add beside a read-only device of the same VDI"
else
	g_not_ok "read-write add beside a read-only device: exit $rc, error '$(xsget backend/vbd/10/51712/hotplug-error)'"
fi
hp remove 10 51712
backend 5 51712 /dev/ubda:web w
hp add 5 51712
[ "$rc" = 0 ] && g_ok "domain 5 takes its disk back" || g_not_ok "domain 5 takes its disk back: $(xsget $B/hotplug-error)"

# --- targets refused -----------------------------------------------------
# --- a snapshot attaches read-only -------------------------------------------
backend 9 51712 /dev/ubda:web@golden r
hp add 9 51712
G=xen-9-51712
if [ "$rc" = 0 ] && [ "$(xsget backend/vbd/9/51712/hotplug-status)" = connected ] &&
   [ "$(blockdev --getro /dev/mapper/$G)" = 1 ]; then
	g_ok "snapshot target web@golden attaches read-only: $(dmsetup table $G)"
	cmp -s "$T/golden" <(dd if=/dev/mapper/$G bs=64k count=8 iflag=direct status=none) &&
		g_ok "the snapshot device reads web as it was at the snapshot" ||
		g_not_ok "the snapshot device differs from web at the snapshot"
	g_fail "writing the snapshot device fails" \
		dd if="$T/data1" of=/dev/mapper/$G bs=64k count=1 oflag=direct status=none
else
	g_not_ok "snapshot add: exit $rc, error '$(xsget backend/vbd/9/51712/hotplug-error)'"
	sed 's/^/# /' "$T/hp.out" >>"$T/results"
fi
hp remove 9 51712
[ "$rc" = 0 ] && ! dmsetup info $G >/dev/null 2>&1 && g_ok "remove of the snapshot device" ||
	g_not_ok "remove of the snapshot device: exit $rc $(cat "$T/hp.out")"
backend 9 51760 /dev/ubda:web@golden w
hp add 9 51760
expect_refused "snapshot target with access=w refused" 9 51760 "read-only: use access=r"
backend 9 51728 /dev/ubda w
hp add 9 51728
expect_refused "target without :<vdi> refused" 9 51728 "is not <blockstore>:<vdi>"
backend 9 51744 /dev/ubda:nosuch w
hp add 9 51744
expect_refused "unknown VDI refused" 9 51744 "nosuch"

# --- remove ----------------------------------------------------------------
hp remove 8 51712
[ "$rc" = 0 ] && ! dmsetup info $R >/dev/null 2>&1 && g_ok "remove of the read-only device" ||
	g_not_ok "remove of the read-only device: exit $rc $(cat "$T/hp.out")"
hp remove 5 51712
if [ "$rc" = 0 ] && ! dmsetup info $D >/dev/null 2>&1 && [ ! -e /dev/mapper/$D ] &&
   [ ! -e "$PARALLAX_RUN_DIR/$D" ]; then
	g_ok "remove of domain 5's disk: device and state file gone"
else
	g_not_ok "remove of domain 5's disk: exit $rc, $(dmsetup info -c $D 2>&1 | tail -1)"
	sed 's/^/# /' "$T/hp.out" >>"$T/results"
fi
h=$(vdi_field web holder)
e=$(extents_held_by 1)
[ "$h" = 0 ] && [ "$e" = 0 ] && g_ok "after remove: web holder 0, no extent held by host 1 (parallax list/dump)" ||
	g_not_ok "after remove: web holder $h, $e extents held by host 1"
hp remove 5 51712
[ "$rc" = 0 ] && g_ok "a second remove of the same disk succeeds (nothing left)" ||
	g_not_ok "second remove: exit $rc $(xsget $B/hotplug-error)"

# The lock is free again: domain 6 can have the disk now.
hp add 6 51712
if [ "$rc" = 0 ] && [ "$(xsget backend/vbd/6/51712/hotplug-status)" = connected ]; then
	g_ok "add for domain 6 succeeds once domain 5 released web"
	dd if=/dev/mapper/xen-6-51712 of="$T/back3" bs=64k skip=16 count=16 iflag=direct status=none
	cmp -s "$T/data1" "$T/back3" && g_ok "domain 6 sees domain 5's data" ||
		g_not_ok "domain 6 sees domain 5's data"
	hp remove 6 51712
	[ "$rc" = 0 ] && g_ok "remove for domain 6" || g_not_ok "remove for domain 6: $(cat "$T/hp.out")"
else
	g_not_ok "add for domain 6 after release: exit $rc, error '$(xsget backend/vbd/6/51712/hotplug-error)'"
fi

left=$(dmsetup ls 2>&1)
[ "$left" = "No devices found" ] && g_ok "no dm device left" || g_not_ok "dm devices left: $left"
[ ! -e /run/xen-hotplug/block-parallax ] && g_ok "the hotplug lock was released (no /run/xen-hotplug/block-parallax)" ||
	g_not_ok "/run/xen-hotplug/block-parallax left behind"
n=$(grep -c '^xenstore-write backend/vbd/[0-9]*/[0-9]*/physical-device ' "$XS_LOG")
[ "$n" = 6 ] && g_ok "the recorded xenstore calls hold 6 physical-device writes (domains 5, 8, 10, 5, 9, 6)" ||
	g_not_ok "recorded physical-device writes: $n, want 6"
cp /var/log/xen/xen-hotplug.log "$T/xen-hotplug.log"
GUEST

kt_boot "xen hotplug" --timeout 300 --disk "$S" -- bash "$T/guest.sh"
if [ -s "$T/data1" ]; then
	rm -f "$T/exp.img"
	if "$P" export "$S" web "$T/exp.img" >"$T/out" 2>&1 &&
	   cmp -s -n 1048576 -i 1048576:0 "$T/exp.img" "$T/data1"; then
		ok "offline export of web holds the data written through the hotplugged device"
	else
		not_ok "offline export of web holds the data written through the hotplugged device"
	fi
fi
check_clean "parallax check clean after hotplug add/remove" "$S"
[ -n "${XT_VERBOSE:-}" ] && [ -e "$T/xen-hotplug.log" ] && sed 's/^/# /' "$T/xen-hotplug.log"
finish
