#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The admin tool beside a real parallax-lockd on 127.0.0.1, host side (no
# UML): admin commands take and give back their locks, unlock fences, and
# with the lock manager down nothing is written.
. "$(dirname "$0")/lib.sh"

LOCKD=${PARALLAX_LOCKD:-$TESTS_CLI_DIR/../../userspace/parallax-lockd}
LKCLIENT=$TESTS_CLI_DIR/../lockd/lkclient.py
LEASE=4
if [ ! -x "$LOCKD" ]; then
	echo "Bail out! $LOCKD not built (make -C userspace)"
	exit 1
fi

LOCKD_PID=
stop_lockd() {
	if [ -n "$LOCKD_PID" ]; then
		kill "$LOCKD_PID" 2>/dev/null
		wait "$LOCKD_PID" 2>/dev/null
		LOCKD_PID=
	fi
}
trap 'stop_lockd; rm -rf "$T"' EXIT

free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# start_lockd: run parallax-lockd on a free port; ADDR is its address.
start_lockd() {
	local i
	PORT=$(free_port)
	ADDR=127.0.0.1:$PORT
	"$LOCKD" "$S" --listen "$ADDR" --lease "$LEASE" >>"$T/lockd.log" 2>&1 &
	LOCKD_PID=$!
	for i in $(seq 50); do
		"$P" locks "$S" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# VDI record fields straight from the disk: vdi_field ID lock_generation|holder
vdi_field() {
	local reg blk off
	reg=$("$P" dump "$S" | sed -n 's/.*registry *blocks \([0-9]*\)\..*/\1/p')
	blk=$((reg + $1 - 1))
	case $2 in
	lock_generation) off=120 ;;
	holder) off=128 ;;
	esac
	echo $(($($PLXBLK "$S" "$blk" get $off) & 0xffffffff))
}

# no_locks DESC: the lock manager lists no VDI, extent or registry lock.
no_locks() {
	if "$P" locks "$S" >"$T/locks" 2>&1 &&
	   ! grep -Eq '^(vdi|extent|registry|bitmap) ' "$T/locks"; then
		ok "$1 leaves no lock behind"
	else
		not_ok "$1 leaves no lock behind"
		sed 's/^/# /' "$T/locks" | head -10
	fi
}

clean() {
	if "$P" check "$S" >"$T/check" 2>&1; then
		ok "check clean after $1"
	else
		not_ok "check clean after $1"
		sed 's/^/# /' "$T/check" | head -10
	fi
}

S=$T/store.img
truncate -s 96M "$S"
"$P" format "$S" --extent-size 4M >/dev/null

if start_lockd; then
	ok "parallax-lockd runs at $ADDR"
else
	not_ok "parallax-lockd runs"
	sed 's/^/# /' "$T/lockd.log"
	finish
fi
if "$P" dump "$S" | grep -q "lock manager *$ADDR\$"; then
	ok "superblock names the lock manager"
else
	not_ok "superblock names the lock manager"
fi

# ---- Admin commands through the lock manager -------------------------------

check_ok "create through lockd" "$P" create "$S" base --size 16M
[ "$(cat "$T/out")" = 1 ] && ok "create printed id 1" ||
	not_ok "create printed id 1 (got '$(cat "$T/out")')"
no_locks create
clean create

head -c 6M /dev/urandom >"$T/img"
check_ok "import through lockd (needs two data extents)" \
	"$P" import "$S" base "$T/img"
no_locks import
clean import
"$P" export "$S" base "$T/exp" 2>/dev/null
if cmp -s <(head -c 6M "$T/exp") "$T/img"; then
	ok "exported data equals the imported image"
else
	not_ok "exported data equals the imported image"
fi

check_ok "snapshot through lockd" "$P" snapshot "$S" base --label gold
[ "$(cat "$T/out")" = 1@1 ] && ok "snapshot is 1@1" ||
	not_ok "snapshot is 1@1 (got '$(cat "$T/out")')"
no_locks snapshot
clean snapshot

check_ok "clone through lockd" "$P" create "$S" web --from gold
no_locks clone
clean clone
check_ok "label through lockd" "$P" label "$S" 1@1 golden
no_locks label
check_ok "second snapshot" "$P" snapshot "$S" base
check_ok "delete a snapshot through lockd" "$P" delete "$S" 1@2
no_locks "delete snapshot"
check_ok "create a VDI to delete" "$P" create "$S" tmp --size 4M
check_ok "delete a VDI through lockd" "$P" delete "$S" tmp
no_locks delete
clean delete
if "$P" list "$S" | awk 'NR > 1 { print $2 }' | tr '\n' ' ' |
   grep -qx 'base web '; then
	ok "list shows base and web only"
else
	not_ok "list shows base and web only"
	"$P" list "$S" | sed 's/^/# /'
fi

# ---- Locks held by another host ---------------------------------------------

if [ ! -f "$LKCLIENT" ]; then
	not_ok "tests/lockd/lkclient.py is needed to hold a lock as another host"
else
	python3 "$LKCLIENT" call "$ADDR" "$S" 2 lock_vdi 2 >"$T/lk" 2>&1
	if grep -q '^LOCK_VDI OK' "$T/lk"; then
		ok "host 2 locks VDI 2"
	else
		not_ok "host 2 locks VDI 2"
		sed 's/^/# /' "$T/lk"
	fi
	"$P" locks "$S" >"$T/locks" 2>&1
	if grep -q '^host 2 live' "$T/locks" &&
	   grep -q '^vdi 2 holder 2 ' "$T/locks"; then
		ok "locks lists host 2 and its VDI lock"
	else
		not_ok "locks lists host 2 and its VDI lock"
		sed 's/^/# /' "$T/locks"
	fi
	if "$P" locks "$S" --json | python3 -c '
import json, sys
objs = [json.loads(l) for l in sys.stdin]
assert any(o["kind"] == "vdi" and o["id"] == 2 and o["holder"] == 2
           for o in objs), objs
assert any(o["kind"] == "host" and o["id"] == 2 and o["lease"] == "live"
           for o in objs), objs
assert any(o["kind"] == "lockd" and o["lease_ms"] == '$((LEASE * 1000))'
           for o in objs), objs' 2>"$T/err"; then
		ok "locks --json: one object per line with kind, id, holder"
	else
		not_ok "locks --json"
		sed 's/^/# /' "$T/err" | tail -3
	fi

	expect_fail "snapshot of a VDI held by host 2" 1 "$S" \
		"$P" snapshot "$S" web
	grep -q "VDI 2 is held by host 2" "$T/err" ||
		not_ok "the refusal names VDI 2 and host 2"
	"$P" locks "$S" >"$T/locks" 2>&1
	if ! grep -Eq '^(extent|registry) ' "$T/locks" &&
	   [ "$(grep -c '^vdi ' "$T/locks")" = 1 ] &&
	   grep -q '^vdi 2 holder 2 ' "$T/locks"; then
		ok "a refused snapshot leaves only host 2's lock"
	else
		not_ok "a refused snapshot leaves only host 2's lock"
		sed 's/^/# /' "$T/locks"
	fi

	gen=$(vdi_field 2 lock_generation)
	expect_fail "unlock --vdi without --force while the lease is live" 1 \
		"$S" "$P" unlock "$S" --vdi web
	check_ok "unlock --vdi --force" "$P" unlock "$S" --vdi web --force
	gen2=$(vdi_field 2 lock_generation)
	if [ "$(vdi_field 2 holder)" = 0 ] && [ "$gen2" = $((gen + 1)) ]; then
		ok "fenced: holder 0, lock_generation $gen -> $gen2"
	else
		not_ok "fenced: holder $(vdi_field 2 holder), lock_generation $gen -> $gen2"
	fi
	check_ok "snapshot once the lock is broken" "$P" snapshot "$S" web
	no_locks "snapshot after fencing"
	clean fencing

	# A lease that ran out needs no --force.
	python3 "$LKCLIENT" call "$ADDR" "$S" 5 lock_vdi 1 >/dev/null 2>&1
	sleep $((LEASE + 1))
	check_ok "unlock --vdi without --force once the lease expired" \
		"$P" unlock "$S" --vdi base
	[ "$(vdi_field 1 holder)" = 0 ] && ok "VDI 1 is free again" ||
		not_ok "VDI 1 is free again"

	# Host 3 holds a VDI, then the lock manager dies: --offline.
	python3 "$LKCLIENT" call "$ADDR" "$S" 3 lock_vdi 2 , \
		lock_registry >/dev/null 2>&1
	expect_fail "unlock --offline while the lock manager answers" 1 "$S" \
		"$P" unlock "$S" --host 3 --offline
fi

# ---- attach with a lock manager but no parallaxd -----------------------------

mkdir -p "$T/run"
PARALLAX_RUN_DIR=$T/run expect_fail "attach without parallaxd" 1 "$S" \
	"$P" attach "$S" web
if grep -q "$T/run/parallaxd.sock" "$T/err" && grep -q "$ADDR" "$T/err"; then
	ok "the error names the socket and the lock manager"
else
	not_ok "the error names the socket and the lock manager"
fi
PARALLAX_RUN_DIR=$T/run expect_fail "attach --local on a clustered store" 1 \
	"$S" "$P" attach "$S" web --local
PARALLAX_RUN_DIR=$T/run expect_fail "detach without parallaxd" 1 "$S" \
	"$P" detach web

# ---- The lock manager down -------------------------------------------------

stop_lockd
expect_fail "create with the lock manager down" 1 "$S" \
	"$P" create "$S" new --size 4M
grep -q "lock manager at $ADDR is unreachable" "$T/err" ||
	not_ok "the error says the lock manager at $ADDR is unreachable"
expect_fail "snapshot with the lock manager down" 1 "$S" \
	"$P" snapshot "$S" base
expect_fail "delete with the lock manager down" 1 "$S" \
	"$P" delete "$S" web
expect_fail "import with the lock manager down" 1 "$S" \
	"$P" import "$S" base "$T/img"
expect_fail "locks with the lock manager down" 1 "$S" "$P" locks "$S"

if [ -f "$LKCLIENT" ]; then
	gen=$(vdi_field 2 lock_generation)
	check_ok "unlock --offline --host 3" "$P" unlock "$S" --host 3 --offline
	gen2=$(vdi_field 2 lock_generation)
	reg=$(python3 "$LKCLIENT" disk "$S" registry)
	if [ "$(vdi_field 2 holder)" = 0 ] && [ "$gen2" = $((gen + 1)) ] &&
	   [ "${reg%% *}" = holder ] && [ "$(echo "$reg" | cut -d' ' -f2)" = 0 ]
	then
		ok "offline fence: VDI 2 and the registry free, lock_generation $gen -> $gen2"
	else
		not_ok "offline fence: VDI 2 holder $(vdi_field 2 holder), lock_generation $gen -> $gen2, registry $reg"
	fi
	clean "offline fencing"
fi

# A lock manager that starts again writes its new address, and work goes on.
if start_lockd; then
	check_ok "create after the lock manager restarted" \
		"$P" create "$S" new --size 4M
	no_locks "create after restart"
	clean restart
else
	not_ok "parallax-lockd restarts"
fi

# A command that works longer than the lease keeps it alive: with a 1 s
# lease, host 4 cannot fence VDI 1 without --force while an import reads
# from a slow pipe for 3 s.
stop_lockd
LEASE=1
if [ -f "$LKCLIENT" ] && start_lockd; then
	(head -c 1M "$T/img"; sleep 3; head -c 1M "$T/img") |
		"$P" import "$S" base - >"$T/imp.out" 2>&1 &
	imp=$!
	sleep 2
	python3 "$LKCLIENT" call "$ADDR" "$S" 4 break vdi 1 >"$T/lk" 2>&1
	if wait "$imp"; then
		ok "a 3 s import with a 1 s lease succeeds"
	else
		not_ok "a 3 s import with a 1 s lease succeeds"
		sed 's/^/# /' "$T/imp.out"
	fi
	if grep -q '^BREAK EPERM' "$T/lk"; then
		ok "its lease was renewed: BREAK without force refused"
	else
		not_ok "its lease was renewed: BREAK without force refused"
		sed 's/^/# /' "$T/lk"
	fi
	no_locks "the long import"
	clean "the long import"
fi

finish
