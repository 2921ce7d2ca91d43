#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Online garbage collection in a cluster: two hosts (UML guests 1 and 2)
# share one store; parallax-lockd runs on the host side, parallaxd on each
# guest.  Host 1 writes va and host 2 writes vb with fio crc32c
# verification while each takes a snapshot every 500 ms, and meanwhile
# "parallax gc" runs again and again, alternately on host 2 and on the
# host side (which holds nothing itself), so that every sweep of a held
# extent goes through the lock manager to the holder's parallaxd and its
# device.  Garbage is there from the start: VDIs written and deleted
# before the hosts attached, and snapshots deleted.
#
# Checks: collections free garbage, some of it "by attached devices";
# both fio jobs verify; after detaching, check is clean (a reachable block
# freed by mistake would show as unallocated), the snapshot each host took
# when its writes stopped exports what the host read, and a last
# collection leaves no garbage; both guests power off cleanly.
set -u
source "$(dirname "$0")/lib.sh"

STORE=$T/store.img
CL_LEASE=${CL_LEASE:-5}

missing=
for tool in parallax parallax-lockd parallaxd; do
	have "$tool" || missing="$missing $tool"
done
[ -z "$missing" ] || bail "tools built (make -C userspace): missing$missing"

new_store "$STORE" 1G || bail "format the store"
for v in va:32M vb:32M old1:16M old2:16M; do
	"$P" create "$STORE" "${v%%:*}" --size "${v#*:}" >/dev/null ||
		bail "create VDI ${v%%:*}"
done
head -c 12M /dev/urandom >"$T/old"
for v in old1 old2; do
	"$P" import "$STORE" "$v" "$T/old" >/dev/null 2>&1
done
"$P" snapshot "$STORE" old2 >/dev/null
"$P" delete "$STORE" old1 >/dev/null
"$P" check "$STORE" --json >"$T/ck0.json"
g0=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["garbage"])' "$T/ck0.json")
[ "$g0" -ge 3072 ] && ok "old1's 12 MiB are garbage before the hosts start ($g0 blocks)" ||
	not_ok "garbage before the hosts start: $g0"

cl_net 2 || bail "network namespace $NS with a bridge and 2 taps"
lockd_start
lockd_ready 30 || bail "parallax-lockd listens on $LK: $(tail -n 3 "$T/lockd.log")"
ok "parallax-lockd listens on $LK"
cl_boot 1 1
cl_boot 2 2
for i in 1 2; do
	cl_wait "$i" "${CL_BOOT_WAIT:-180}" ||
		bail "guest $i never answered: $(tail -n 3 "$T/uml$i.log")"
	pd_start "$i" "$i" && ok "parallaxd runs on host $i" ||
		bail "parallaxd on host $i: $(tail -n 3 "$T/parallaxd$i.log")"
done
attach "host 1 attaches va" 1 va va || finish
attach "host 2 attaches vb" 2 vb vb || finish

# gc_on WHERE RUN: one collection, on guest 2 or on the host side.
gc_on() {
	local out=$T/gc.$2.json
	if [ "$1" = host ]; then
		in_ns env PARALLAX_HOST_ID=9 "$P" gc "$STORE" --json >"$out" 2>"$T/gc.$2.err"
	else
		on 2 "parallax gc $GDEV --json 2>$T/gc.$2.err" >"$out"
	fi
}
field() {
	python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$T/gc.$1.json" "$2"
}

# The garbage from before, and the reserves the attaches just took,
# through the lock manager.
if gc_on 2 first; then
	fd=$(field first freed_data)
	[ "$fd" -ge 3072 ] && ok "a collection on host 2 frees old1's blocks ($fd data blocks)" ||
		not_ok "a collection on host 2 freed $fd data blocks"
else
	not_ok "parallax gc on host 2: $(tail -n 3 "$T/gc.first.err")"
fi

# snaploop I NAME: a snapshot every 500 ms until $T/stop.I; a check.
snaploop() {
	local n
	if n=$(on "$1" "n=0; while [ ! -e $T/stop.$1 ]; do
		dmsetup message $2 0 snapshot >/dev/null || exit 1
		n=\$((n + 1)); sleep 0.5; done; echo \$n"); then
		echo "ok - host $1 took $n snapshots of $2 during the collections"
	else
		echo "not ok - a snapshot of $2 on host $1 failed"
	fi
}
bg s1 snaploop 1 va
bg s2 snaploop 2 vb
bg f1 g_fio "host 1 writes and verifies va during collections" 1 /dev/mapper/va 0 24M 31
bg f2 g_fio "host 2 writes and verifies vb during collections" 2 /dev/mapper/vb 0 24M 32
runs=0
held=0
failed=0
while { kill -0 "${CL_BG[f1]}" || kill -0 "${CL_BG[f2]}"; } 2>/dev/null &&
      [ $runs -lt 30 ]; do
	where=2
	[ $((runs % 2)) = 1 ] && where=host
	if gc_on "$where" "load$runs"; then
		held=$((held + $(field "load$runs" freed_by_holders)))
	else
		failed=$((failed + 1))
		comment "$T/gc.load$runs.err" 3
	fi
	runs=$((runs + 1))
done
bg_wait f1
bg_wait f2
touch "$T/stop.1" "$T/stop.2"
bg_wait s1
bg_wait s2
[ $runs -ge 2 ] && [ $failed = 0 ] &&
	ok "$runs collections (host 2 and host side) ran during the writes" ||
	not_ok "$runs collections during the writes, $failed failed"
[ "$held" -gt 0 ] && ok "the devices freed $held blocks in the extents they hold" ||
	not_ok "no block was freed by a device"
g_fio "host 1 verifies va" 1 /dev/mapper/va 0 24M 31 verify
g_fio "host 2 verifies vb" 2 /dev/mapper/vb 0 24M 32 verify
for x in "1 va" "2 vb"; do
	set -- $x
	id=$(on "$1" "dmsetup message $2 0 snapshot")
	sha=$(dev_sha "$1" "/dev/mapper/$2")
	echo "$id $sha" >"$T/last.$2"
done
gc_on host after || not_ok "a collection after the writes: $(tail -n 3 "$T/gc.after.err")"
g_check "host 1 detaches va" 1 "parallax detach va"
g_check "host 2 detaches vb" 2 "parallax detach vb"
for v in va vb; do
	read -r id sha <"$T/last.$v"
	"$P" export "$STORE" "$id" "$T/exp" >/dev/null 2>&1
	[ "$(sha256sum <"$T/exp" | cut -d' ' -f1)" = "$sha" ] &&
		ok "$v's last snapshot $id exports what its host read" ||
		not_ok "$v's last snapshot $id differs from what its host read"
done
"$P" check "$STORE" >"$T/check.out" 2>&1 && ok "check is clean after the collections" ||
	{ not_ok "check after the collections"; comment "$T/check.out" 10; }
gc_on host final || not_ok "a last collection: $(tail -n 3 "$T/gc.final.err")"
g=$("$P" check "$STORE" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["garbage"])')
[ "$g" = 0 ] && ok "a last collection leaves no garbage" || not_ok "garbage left: $g"
pd_stop 1
pd_stop 2
cl_halt 1
cl_halt 2
finish
