#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Hostile peers: each is closed or refused, the store does not change, and
# lockd still serves a good client afterwards.
. "$(dirname "$0")/lib.sh"

make_store || { echo "Bail out! cannot make a store"; exit 1; }
start_lockd || { echo "Bail out! lockd"; exit 1; }
h0=$(sha256sum "$STORE")

for kind in wrongkey garbage oversize truncated badmac before-hello \
	    replay-other replay-seq; do
	out=$($LKC attack "$ADDR" "$STORE" $kind 2>&1)
	expect "$kind: closed without a reply" "closed" "$out"
done
out=$($LKC attack "$ADDR" "$STORE" conns 300 2>&1)
expect "300 connections: 256 served a challenge, 44 refused" \
	"open 256 closed 44" "$out"
sleep 0.5
expect "store unchanged by every hostile peer" "$h0" "$(sha256sum "$STORE")"
grep -q "refused a connection" "$T/lockd.log"
expect "refused connections logged" 0 $?
out=$(call 5 lock_vdi 2)
expect "lockd still grants to a good client" \
	"LOCK_VDI OK id=2 gen=1 holder=5 type=0" "$out"
kill -0 "$LOCKD_PID" 2>/dev/null
expect "lockd still running" 0 $?
finish
