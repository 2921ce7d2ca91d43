#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# parallaxd, the per-host helper, with parallax-lockd in ONE guest: lockd
# listens on 127.0.0.1 and serves the store, parallaxd (host 3) attaches a
# VDI read-write through its control socket.  Checks: the grant is on disk
# (VDI and catalogue name host 3), data written reads back, filling past
# an extent makes parallaxd claim more with no I/O error, a second host's
# parallaxd is refused the VDI, a dead lock manager shows as "unreachable"
# while I/O goes on and as "connected" again after its restart, a
# restarted parallaxd adopts the device, and detach releases everything.
# Offline: the export equals what the guest read, holders are 0, check
# is clean.
set -u
source "$(dirname "$0")/lib.sh"

for tool in parallax-lockd parallaxd; do
	[ -x "$T/bin/$tool" ] || { not_ok "$tool built (scripts/build-tools)"; finish; }
done
P=$T/bin/parallax
export P

S=$T/store.img
new_store "$S" 1G
"$P" create "$S" web --size 64M >/dev/null
"$P" create "$S" db --size 16M >/dev/null
head -c 12M /dev/urandom >"$T/data.bin"
head -c 1M /dev/urandom >"$T/data2.bin"

cat >"$T/guest.sh" <<'GUEST'
set -u
KT_GUEST=1 source "$KT_DIR/lib.sh"
B=$T/bin
ip link set lo up
export PARALLAX_RUN_DIR=$T/run1

# pdctl SOCKET REQUEST...: one control request; status 0 iff "ok ...".
pdctl() {
	python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(60)
s.connect(sys.argv[1])
s.sendall((" ".join(sys.argv[2:]) + "\n").encode())
out = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    out += d
t = out.decode(errors="replace")
sys.stdout.write(t)
last = t.rstrip("\n").split("\n")[-1]
sys.exit(0 if last == "ok" or last.startswith("ok ") else 1)' "$@"
}

# wait_for SECS CMD...: until CMD succeeds.
wait_for() {
	local end=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $end ] || return 1
		sleep 0.2
	done
}

lockd_up() {
	python3 -c 'import socket; socket.create_connection(("127.0.0.1", 7789), 1).close()'
}

start_lockd() {
	"$B/parallax-lockd" /dev/ubda --listen 127.0.0.1:7789 >>"$T/lockd.log" 2>&1 &
	LOCKD=$!
	wait_for 10 lockd_up
}

# lk_state: the 11th status field (the lock manager as the device sees it).
lk_state() { g_status web 11; }
is_state() { [ "$(lk_state)" = "$1" ]; }

# On-disk holders, read past the page cache.
vdi_holder() {
	blockdev --flushbufs /dev/ubda
	"$B/parallax" list /dev/ubda --json | python3 -c '
import json, sys
print([v for v in json.load(sys.stdin) if v["name"] == sys.argv[1]][0]["holder"])' "${1:-web}"
}
extents_held_by() {
	blockdev --flushbufs /dev/ubda
	"$B/parallax" dump /dev/ubda | grep -c " holder $1 "
}

# finish_guest: stop what we started, leave nothing running.
finish_guest() {
	[ -n "${PD1:-}" ] && kill "$PD1" 2>/dev/null
	[ -n "${PD2:-}" ] && kill "$PD2" 2>/dev/null
	[ -n "${LOCKD:-}" ] && kill "$LOCKD" 2>/dev/null
	wait
	dmsetup remove_all --noudevsync >/dev/null 2>&1
	for f in "$T/lockd.log" "$T/pd1.log" "$T/pd2.log"; do
		[ -s "$f" ] && { echo "# --- ${f##*/}"; tail -n 25 "$f" | sed 's/^/# /'; } >>"$T/results"
	done
	exit 0
}
trap finish_guest EXIT

start_lockd && g_ok "parallax-lockd listens on 127.0.0.1:7789" ||
	{ g_not_ok "parallax-lockd listens"; exit 1; }
"$B/parallaxd" /dev/ubda --host-id 3 --run-dir "$T/run1" >"$T/pd1.log" 2>&1 &
PD1=$!
wait_for 10 pdctl "$T/run1/parallaxd.sock" status ||
	{ g_not_ok "parallaxd (host 3) answers on its control socket"; exit 1; }
pdctl "$T/run1/parallaxd.sock" status >"$T/st.out" 2>&1
grep -qx "lockd 127.0.0.1:7789 connected" "$T/st.out" && grep -qx "host 3" "$T/st.out" &&
	g_ok "parallaxd status: lockd 127.0.0.1:7789 connected, host 3" ||
	g_not_ok "parallaxd status: $(tr '\n' '|' <"$T/st.out")"

# ---- attach rw ----
if pdctl "$T/run1/parallaxd.sock" attach /dev/ubda web web rw >"$T/a.out" 2>&1 &&
	[ "$(tail -1 "$T/a.out")" = "ok /dev/mapper/web" ]; then
	g_ok "attach web rw via the control socket: $(tail -1 "$T/a.out")"
else
	g_not_ok "attach web rw: $(tr '\n' '|' <"$T/a.out")"
	exit 1
fi
dmsetup mknodes web >/dev/null 2>&1
table=$(dmsetup table web)
case $table in
*" host_id 3 lock_gen "*" low_water "*) g_ok "table carries host_id 3, lock_gen and low_water: $table" ;;
*) g_not_ok "table: $table" ;;
esac
[ "$(g_status web 6)" = 2 ] && g_ok "device holds 2 extents (one data, one metadata)" ||
	g_not_ok "extents held after attach: $(dmsetup status web)"
wait_for 5 is_state connected && g_ok "dmsetup status shows lockd connected" ||
	g_not_ok "lockd field: $(dmsetup status web)"
[ "$(vdi_holder)" = 3 ] && g_ok "VDI record on disk: holder 3" ||
	g_not_ok "VDI record holder on disk: $(vdi_holder)"
[ "$(extents_held_by 3)" = 2 ] && g_ok "catalogue on disk: 2 extents held by host 3" ||
	g_not_ok "catalogue extents held by host 3: $(extents_held_by 3)"
[ -f "$T/run1/web.parallaxd" ] && g_ok "state file web.parallaxd written" ||
	g_not_ok "no state file in $T/run1: $(ls "$T/run1")"

# ---- a second host is refused the VDI ----
"$B/parallaxd" /dev/ubda --host-id 2 --run-dir "$T/run2" >"$T/pd2.log" 2>&1 &
PD2=$!
wait_for 10 pdctl "$T/run2/parallaxd.sock" status
pdctl "$T/run2/parallaxd.sock" attach /dev/ubda web web2 rw >"$T/b.out" 2>&1
if [ $? != 0 ] && grep -q "VDI 1 is held by host 3" "$T/b.out" && ! dmsetup info web2 >/dev/null 2>&1; then
	g_ok "host 2's attach of the same VDI refused: $(tail -1 "$T/b.out")"
else
	g_not_ok "host 2's attach: $(tr '\n' '|' <"$T/b.out")"
fi
pdctl "$T/run2/parallaxd.sock" attach /dev/ubda web web2ro ro >"$T/b.out" 2>&1 &&
	g_ok "host 2 may attach it read-only: $(tail -1 "$T/b.out")" ||
	g_not_ok "host 2 read-only attach: $(tr '\n' '|' <"$T/b.out")"
pdctl "$T/run2/parallaxd.sock" detach web2ro >"$T/b.out" 2>&1 &&
	! dmsetup info web2ro >/dev/null 2>&1 && g_ok "host 2 detaches its read-only device" ||
	g_not_ok "host 2 read-only detach: $(tr '\n' '|' <"$T/b.out")"
kill "$PD2"; wait "$PD2" 2>/dev/null; PD2=

# ---- fill past an extent (1023 data blocks each) ----
# Each 1 MiB write waits for its commit (dsync), as every write did
# before writes were acknowledged early: an unsynchronised stream now
# fills a 4 MiB extent faster than parallaxd, whose lookahead is its
# spare (Documentation/parallaxd.rst), can claim the next.
before=$(g_status web 6)
if dd if="$T/data.bin" of=/dev/mapper/web bs=1M oflag=direct,dsync conv=fsync status=none 2>"$T/dd.err"; then
	g_ok "12 MiB written with O_DIRECT, no I/O error"
else
	g_not_ok "12 MiB write: $(cat "$T/dd.err")"
fi
# 12 MiB is 3072 blocks: at least 3 data extents of 1023 beyond the
# first.  (The count held may not grow: full ones are given back.)
nclaims=$(grep -c "claimed data extent" "$T/pd1.log")
[ "$nclaims" -ge 3 ] && [ "$(g_status web 1)" = ok ] &&
	g_ok "parallaxd claimed $nclaims more data extents as the device filled (held $before, now $(g_status web 6), mode ok)" ||
	g_not_ok "$nclaims data extents claimed while filling: $(dmsetup status web)"
# Ahead of need (thesis 3.4.1): the low_water event brings each claim
# while blocks of that type are still free, so no write waits for one.
claims=$(sed -n 's/.*claimed \(data\|metadata\) extent \([0-9]*\).*; \([0-9]*\) blocks.*/\1 \2: \3/p' "$T/pd1.log" | tr '\n' ' ')
[ -n "$claims" ] && ! echo "$claims" | grep -q ': 0 ' &&
	g_ok "every claim made ahead of need (free blocks then: $claims)" ||
	g_not_ok "claims ahead of need (free blocks then: $claims)"
g_read /dev/mapper/web 0 $((12 << 20)) "$T/r1.bin"
cmp -s "$T/r1.bin" "$T/data.bin" && g_ok "12 MiB read back equal" || g_not_ok "12 MiB read back differ"
# The daemon's own list follows the target's (full extents released).
sleep 2
pdctl "$T/run1/parallaxd.sock" status >"$T/st.out" 2>&1
kern=$(dmsetup message web 0 extents | tr ' ' '\n' | cut -d: -f1 | sort -n | tr '\n' ' ')
mine=$(sed -n 's/^device web .* extents //p' "$T/st.out" | tr ',' '\n' | cut -d: -f1 | sort -n | tr '\n' ' ')
[ -n "$kern" ] && [ "$kern" = "$mine" ] && g_ok "parallaxd's extents = the target's: $kern" ||
	g_not_ok "parallaxd's extents '$mine' vs the target's '$kern'"
held=$(extents_held_by 3)
[ "$held" -eq "$(g_status web 6)" ] && g_ok "catalogue: $held extents held by host 3 (the device holds $(g_status web 6))" ||
	g_not_ok "catalogue holds $held for host 3, device $(g_status web 6)"

# ---- the lock manager dies and comes back ----
kill "$LOCKD"; wait "$LOCKD" 2>/dev/null; LOCKD=
wait_for 10 is_state unreachable && g_ok "lock manager killed: dmsetup status shows unreachable" ||
	g_not_ok "after killing lockd: $(dmsetup status web)"
pdctl "$T/run1/parallaxd.sock" status | grep -qx "lockd 127.0.0.1:7789 unreachable" &&
	g_ok "parallaxd status: lockd unreachable" || g_not_ok "parallaxd status while lockd is down"
dd if="$T/data2.bin" of=/dev/mapper/web bs=1M seek=20 oflag=direct conv=fsync status=none &&
	g_read /dev/mapper/web $((20 << 20)) $((1 << 20)) "$T/r2.bin" && cmp -s "$T/r2.bin" "$T/data2.bin" &&
	g_ok "I/O goes on without the lock manager (1 MiB at 20 MiB written and read back)" ||
	g_not_ok "I/O without the lock manager"
pdctl "$T/run1/parallaxd.sock" attach /dev/ubda web web3 rw >"$T/c.out" 2>&1
grep -q "^error .*unreachable" "$T/c.out" && g_ok "attach rw refused while lockd is down: $(tail -1 "$T/c.out")" ||
	g_not_ok "attach rw while lockd is down: $(tr '\n' '|' <"$T/c.out")"
start_lockd || g_not_ok "parallax-lockd restarts"
wait_for 25 is_state connected && g_ok "lock manager back: dmsetup status shows connected" ||
	g_not_ok "after restarting lockd: $(dmsetup status web)"
grep -q "reconnected to lock manager" "$T/pd1.log" && g_ok "parallaxd logged the reconnection" ||
	g_not_ok "no reconnection in parallaxd's log"
n=$(grep -c "unreachable: .*retrying" "$T/pd1.log")
[ "$n" = 1 ] && g_ok "the outage was logged once" || g_not_ok "outage logged $n times"

# ---- detach while the lock manager is down: releases wait for it ----
pdctl "$T/run1/parallaxd.sock" attach /dev/ubda db db rw >"$T/e.out" 2>&1 ||
	g_not_ok "attach db rw: $(tr '\n' '|' <"$T/e.out")"
kill "$LOCKD"; wait "$LOCKD" 2>/dev/null; LOCKD=
wait_for 10 is_state unreachable
pdctl "$T/run1/parallaxd.sock" detach db >"$T/e.out" 2>&1
if grep -q "^error device db removed, but .* unreachable" "$T/e.out" && ! dmsetup info db >/dev/null 2>&1 &&
	pdctl "$T/run1/parallaxd.sock" status | grep -qx "pending 3" && [ -s "$T/run1/parallaxd.pending" ]; then
	g_ok "detach while lockd is down removes db and queues 3 releases: $(tail -1 "$T/e.out")"
else
	g_not_ok "detach db while lockd is down: $(tr '\n' '|' <"$T/e.out") $(ls "$T/run1")"
fi
[ "$(vdi_holder db)" = 3 ] && g_ok "db stays locked on disk until the lock manager is back" ||
	g_not_ok "db holder while lockd is down: $(vdi_holder db)"
start_lockd || g_not_ok "parallax-lockd restarts again"
no_pending() { ! pdctl "$T/run1/parallaxd.sock" status | grep -q "^pending"; }
wait_for 25 no_pending && [ ! -e "$T/run1/parallaxd.pending" ] &&
	g_ok "queued releases made on reconnection" || g_not_ok "releases still queued"
[ "$(vdi_holder db)" = 0 ] && g_ok "db unlocked on disk after the lock manager returned" ||
	g_not_ok "db holder after lockd returned: $(vdi_holder db)"

# ---- parallaxd restarts and adopts the device ----
kill "$PD1"; wait "$PD1" 2>/dev/null
# As if it had stopped between add_extent and saving: one grant missing.
lost=$(grep '^extent ' "$T/run1/web.parallaxd" | tail -1 | cut -d' ' -f2)
sed -i '$d' "$T/run1/web.parallaxd"
"$B/parallaxd" /dev/ubda --host-id 3 --run-dir "$T/run1" >>"$T/pd1.log" 2>&1 &
PD1=$!
wait_for 10 pdctl "$T/run1/parallaxd.sock" status
pdctl "$T/run1/parallaxd.sock" status >"$T/st2.out" 2>&1
mine2=$(sed -n 's/^device web .* extents //p' "$T/st2.out" | tr ',' '\n' | cut -d: -f1 | sort -n | tr '\n' ' ')
[ -n "$mine2" ] && [ "$mine2" = "$(sed -n 's/^device web .* extents //p' "$T/st.out" | tr ',' '\n' | cut -d: -f1 | sort -n | tr '\n' ' ')" ] &&
	g_ok "restarted parallaxd adopted web with its extents ($mine2)" ||
	g_not_ok "after restart: $(tr '\n' '|' <"$T/st2.out")"
grep -q "recovered extent $lost " "$T/pd1.log" && grep -q "^extent $lost " "$T/run1/web.parallaxd" &&
	g_ok "extent $lost, missing from the state file, recovered from the target and the catalogue" ||
	g_not_ok "extent $lost not recovered: $(tail -3 "$T/pd1.log" | tr '\n' '|')"

# ---- detach releases everything ----
dd if=/dev/mapper/web of="$T/web.img" bs=1M iflag=direct status=none
if pdctl "$T/run1/parallaxd.sock" detach web >"$T/d.out" 2>&1 && ! dmsetup info web >/dev/null 2>&1; then
	g_ok "detach web: device removed"
else
	g_not_ok "detach web: $(tr '\n' '|' <"$T/d.out")"
fi
[ "$(vdi_holder)" = 0 ] && g_ok "VDI record on disk: holder 0 after detach" ||
	g_not_ok "VDI holder after detach: $(vdi_holder)"
[ "$(extents_held_by 3)" = 0 ] && g_ok "catalogue on disk: no extent held by host 3 after detach" ||
	g_not_ok "extents still held by host 3: $(extents_held_by 3)"
[ ! -e "$T/run1/web.parallaxd" ] && g_ok "state file removed" || g_not_ok "state file left"
pdctl "$T/run1/parallaxd.sock" detach web >"$T/d.out" 2>&1
grep -q "^error .*not managed" "$T/d.out" && g_ok "detach of an unmanaged device: $(tail -1 "$T/d.out")" ||
	g_not_ok "second detach: $(tr '\n' '|' <"$T/d.out")"
GUEST

kt_boot "helper" --timeout 400 --disk "$S" -- bash "$T/guest.sh"
# What the guest read back equals the offline export (the rest is zeros).
if [ -f "$T/web.img" ]; then
	export_cmp "export web = what the guest read" "$S" web "$T/web.img"
	cmp -s <(head -c 12M "$T/web.img") "$T/data.bin" &&
		cmp -s <(tail -c +$((20 * 1048576 + 1)) "$T/web.img" | head -c 1M) "$T/data2.bin" &&
		ok "the image holds both writes" || not_ok "the image holds both writes"
fi
"$P" list "$S" --json | grep -q '"holder": 0' && ok "offline: VDI holder 0" || not_ok "offline: VDI holder"
[ "$("$P" dump "$S" | grep -c ' holder [1-9]')" = 0 ] && ok "offline: no extent held" ||
	not_ok "offline: extents still held: $("$P" dump "$S" | grep ' holder [1-9]' | head -3)"
check_clean "parallax check clean" "$S"
finish
