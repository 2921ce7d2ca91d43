#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# parallax-lockd lock semantics, checked against what is on disk.
. "$(dirname "$0")/lib.sh"

make_store || { echo "Bail out! cannot make a store"; exit 1; }

# Usage errors exit 2, runtime errors 1.
"$LOCKD" >/dev/null 2>&1; expect "no arguments: exit 2" 2 $?
"$LOCKD" "$STORE" --listen 127.0.0.1:1 --lease x >/dev/null 2>&1
expect "bad --lease: exit 2" 2 $?
"$LOCKD" "$T/none" --listen 127.0.0.1:1 >/dev/null 2>&1
expect "missing store: exit 1" 1 $?
"$LOCKD" --help | grep -q -- "--advertise"; expect "--help documents --advertise" 0 $?

start_lockd --lease 2 || { echo "Bail out! lockd"; exit 1; }
expect "lockd_addr written to the superblock" "$ADDR" "$(disk lockd_addr)"

before=$(disk vdi 1)
out=$(call 1 lock_vdi 1 , lock_vdi 1)
expect "host 1 locks VDI 1 (generation 1), again idempotent" \
	"LOCK_VDI OK id=1 gen=1 holder=1 type=0
LOCK_VDI OK id=1 gen=1 holder=1 type=0" "$out"
expect_match "VDI 1 lock persisted (holder 1 lock_generation 1)" \
	"^holder 1 lock_generation 1 generation" "$(disk vdi 1)"
g0=$(echo "$before" | awk '{print $6}'); g1=$(disk vdi 1 | awk '{print $6}')
expect "record generation bumped once" "$((g0 + 1))" "$g1"
out=$(call 2 lock_vdi 1 , unlock_vdi 1 1 , unlock_vdi 9 1 , lock_vdi 99)
expect_match "host 2: EBUSY with holder 1" "^LOCK_VDI EBUSY id=1 gen=1 holder=1" "$out"
expect_match "host 2 cannot unlock host 1's VDI (EPERM)" "^UNLOCK_VDI EPERM" "$out"
expect_match "no VDI 9 / 99 (ENOENT)" "UNLOCK_VDI ENOENT.*
LOCK_VDI ENOENT" "$out"
out=$(call 1 unlock_vdi 1 5)
expect_match "unlock with the wrong generation: ESTALE" "^UNLOCK_VDI ESTALE" "$out"
expect_match "...and VDI 1 still held" "^holder 1 lock_generation 1 " "$(disk vdi 1)"

# Extents: the first data claim types a FREE extent.
sysx=$(disk system_extents)
out=$(call 1 claim 2 0)
ext=$(echo "$out" | sed -n 's/^CLAIM_EXTENT OK id=\([0-9]*\) gen=\([0-9]*\) holder=1 type=2$/\1/p')
gen=$(echo "$out" | sed -n 's/^CLAIM_EXTENT OK id=[0-9]* gen=\([0-9]*\) .*/\1/p')
if [ -n "$ext" ] && [ "$ext" -ge "$sysx" ]; then ok "data extent $ext claimed"; else not_ok "data claim: $out"; fi
expect "extent $ext on disk: data, holder 1, generation $gen" \
	"type 2 holder 1 generation $gen bitmap_holder 0" "$(disk extent "$ext")"
out=$(call 2 claim 2 "$ext" , claim 3 "$ext" , claim 2 1 , claim 5 0 , release "$ext" "$gen")
expect_match "host 2: EBUSY on extent $ext" "^CLAIM_EXTENT EBUSY id=$ext gen=$gen holder=1" "$out"
expect_match "wrong type EINVAL, system extent EINVAL, bad type EINVAL" \
	"CLAIM_EXTENT EINVAL.*
CLAIM_EXTENT EINVAL.*
CLAIM_EXTENT EINVAL" "$out"
expect_match "host 2 cannot release it (EPERM)" "^RELEASE_EXTENT EPERM" "$out"
out=$(call 1 claim 3 0)
mext=$(echo "$out" | sed -n 's/^CLAIM_EXTENT OK id=\([0-9]*\) .* type=3$/\1/p')
expect_match "metadata extent claimed" "^type 3 holder 1 " "$(disk extent "${mext:-0}")"

# An unheld data extent for the bitmap lock (a held one is swept by its
# holder, so its bitmap cannot be locked).
out=$(call 3 claim 2 0)
bx=$(echo "$out" | sed -n 's/^CLAIM_EXTENT OK id=\([0-9]*\) gen=\([0-9]*\) holder=3 type=2$/\1/p')
bgen=$(echo "$out" | sed -n 's/^CLAIM_EXTENT OK id=[0-9]* gen=\([0-9]*\) .*/\1/p')
out=$(call 3 release "${bx:-0}" "${bgen:-0}")
expect "host 3 claims and releases data extent ${bx:-?}" \
	"RELEASE_EXTENT OK id=$bx gen=$bgen holder=0 type=2" "$out"

# Registry and bitmap locks.
out=$(call 1 lock_registry)
rgen=$(echo "$out" | sed -n 's/^LOCK_REGISTRY OK id=0 gen=\([0-9]*\) holder=1.*/\1/p')
expect "registry lock persisted" "holder 1 generation ${rgen:-?}" "$(disk registry)"
out=$(call 2 lock_registry , unlock_registry "$rgen" , lock_bitmap "$ext" , lock_bitmap "$bx" , lock_bitmap "$bx")
out=$(echo "$out" | sed 's/^\(UNLOCK_REGISTRY EPERM\) .*/\1/')
expect "registry: EBUSY / EPERM for host 2; held extent's bitmap EBUSY; unheld one granted" \
	"LOCK_REGISTRY EBUSY id=0 gen=$rgen holder=1 type=0
UNLOCK_REGISTRY EPERM
LOCK_BITMAP EBUSY id=$ext gen=$gen holder=1 type=2
LOCK_BITMAP OK id=$bx gen=$bgen holder=2 type=2
LOCK_BITMAP OK id=$bx gen=$bgen holder=2 type=2" "$out"
expect "bitmap_holder on disk, no allocation holder" \
	"type 2 holder 0 generation $bgen bitmap_holder 2" "$(disk extent "$bx")"
expect "held extent's bitmap not locked" \
	"type 2 holder 1 generation $gen bitmap_holder 0" "$(disk extent "$ext")"

# STATUS lists every lock.
st=$(call 3 status)
expect_match "STATUS: lockd line" "^lockd $ADDR lease_ms 2000" "$st"
expect_match "STATUS: VDI, extents, registry, bitmap" \
	"vdi 1 holder 1 generation 1 name a" "$st"
expect_match "STATUS: extent line" "extent $ext data holder 1 generation $gen free [0-9]+" "$st"
expect_match "STATUS: registry and bitmap" "registry holder 1 generation $rgen" "$st"
expect_match "STATUS: bitmap line" "bitmap $bx holder 2" "$st"

# kill -9 and restart: every lock is still there and honoured.
kill9_lockd
start_lockd --lease 2 || { echo "Bail out! lockd restart"; exit 1; }
st=$(call 3 status)
expect_match "after kill -9: host 1 in grace" "host 1 grace - sessions 0" "$st"
expect_match "after kill -9: VDI lock still reported" "vdi 1 holder 1 generation 1" "$st"
expect_match "after kill -9: extent still reported" "extent $ext data holder 1 generation $gen" "$st"
out=$(call 2 lock_vdi 1 , claim 2 "$ext" , lock_registry , break host 1)
expect_match "after restart: locks honoured, BREAK refused during grace" \
	"^LOCK_VDI EBUSY id=1 gen=1 holder=1.*
CLAIM_EXTENT EBUSY.*
LOCK_REGISTRY EBUSY.*
BREAK EPERM" "$out"
h1=$(sha256sum "$STORE")
# A live host's lock survives BREAK without force.
out=$(call 1 renew , sleep 0.2 , status)
out=$(call 2 break vdi 1)
expect_match "BREAK of a live host's VDI: EPERM" "^BREAK EPERM" "$out"
expect "store unchanged by refused BREAKs" "$h1" "$(sha256sum "$STORE")"

# After the lease expires the break goes through and bumps generations.
sleep 2.3
out=$(call 2 break host 1)
expect_match "BREAK host 1 after its lease expired: OK" "^BREAK OK id=1 gen=[1-9]" "$out"
expect_match "VDI 1 fenced: holder 0, lock_generation 2" "^holder 0 lock_generation 2 " "$(disk vdi 1)"
expect "extent $ext fenced: generation bumped" \
	"type 2 holder 0 generation $((gen + 1)) bitmap_holder 0" "$(disk extent "$ext")"
expect "bitmap lock of host 2 on extent $bx kept" \
	"type 2 holder 0 generation $bgen bitmap_holder 2" "$(disk extent "$bx")"
expect "registry fenced" "holder 0 generation $((rgen + 1))" "$(disk registry)"
out=$(call 1 unlock_vdi 1 1 , release "$ext" "$gen")
expect_match "old grants are stale" "^UNLOCK_VDI ESTALE.*
RELEASE_EXTENT ESTALE" "$out"
out=$(call 2 lock_vdi 1 , break vdi 1 force)
expect_match "host 2 locks VDI 1 at generation 3; forced BREAK of a live lock" \
	"^LOCK_VDI OK id=1 gen=3 holder=2.*
BREAK OK id=1 gen=4 holder=2" "$out"

# A second lock manager for the same store is refused while this one
# answers, and leaves the superblock naming this one.
sum=$(sha256sum <"$STORE")
"$LOCKD" "$STORE" --listen 127.0.0.1:$(free_port) 2>"$T/second.err"
expect "second lockd for the same store: exit 1" 1 $?
expect_match "second lockd names the running one" "another lock manager is running .*$ADDR" "$(cat "$T/second.err")"
expect "second lockd changed nothing" "$sum" "$(sha256sum <"$STORE")"

kill -TERM "$LOCKD_PID"; wait "$LOCKD_PID"; rc=$?; LOCKD_PID=
expect "SIGTERM: clean exit 0" 0 "$rc"
"$P" check "$STORE" >/dev/null 2>&1; expect "parallax check passes afterwards" 0 $?
finish
