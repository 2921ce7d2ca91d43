#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# parallax-lockd and the local write cache's cache-dirty mark: a VDI whose
# holder attached it with a local cache stays with that holder, through
# lease expiry, a fence of the host, a plain unlock and a lockd restart,
# until the holder releases it clean (or an admin discards the cache).
. "$(dirname "$0")/lib.sh"

make_store || { echo "Bail out! cannot make a store"; exit 1; }
start_lockd --lease 1 || { echo "Bail out! lockd"; exit 1; }

# The holder says it runs a local cache: the mark is on disk at the grant.
out=$(call 1 lock_vdi 1 cache , lock_vdi 2)
expect "host 1 locks VDI 1 with a cache (type 2 = marked), VDI 2 without" \
	"LOCK_VDI OK id=1 gen=1 holder=1 type=2
LOCK_VDI OK id=2 gen=1 holder=1 type=0" "$out"
expect "VDI 1 marked cache-dirty on disk" dirty "$(disk vdi_cache 1)"
expect "VDI 2 not marked" clean "$(disk vdi_cache 2)"
expect "parallax list: VDI 1 cache-dirty, VDI 2 in-use" "1 cache-dirty
2 in-use" "$("$P" list "$STORE" | awk 'NR > 1 { print $1, $NF }')"
expect "parallax list --json: cache_dirty true, false" "true
false" "$("$P" list "$STORE" --json | python3 -c 'import json, sys
for v in json.load(sys.stdin): print(str(v["cache_dirty"]).lower())')"
expect_match "STATUS shows the mark" \
	"^vdi 1 holder 1 generation 1 cache dirty name a$" "$(call 1 status)"

# Another host, while the holder is live.
out=$(call 2 --text lock_vdi 1)
expect_match "host 2: EBUSY, holder 1, marked, says why" \
	"^LOCK_VDI EBUSY id=1 gen=1 holder=1 type=2 .*undrained writes in the local cache of host 1" \
	"$out"

# A release that does not say the log drained keeps the lock and the mark.
out=$(call 1 unlock_vdi 1 1)
expect_match "unlock without clean: EBUSY" "^UNLOCK_VDI EBUSY id=1 gen=1 holder=1 type=2" "$out"
expect_match "...VDI 1 still held by host 1" "^holder 1 lock_generation 1 " "$(disk vdi 1)"
expect "...and still marked" dirty "$(disk vdi_cache 1)"

# The holder's lease expires (host death looks the same to lockd).
sleep 1.3
out=$(call 2 lock_vdi 1)
expect_match "after host 1's lease expired: host 2 still EBUSY" \
	"^LOCK_VDI EBUSY id=1 gen=1 holder=1 type=2" "$out"
out=$(call 2 --text break vdi 1 , break vdi 1 force)
expect_match "BREAK of the VDI without discard: EBUSY, even forced" \
	"^BREAK EBUSY id=1 gen=1 holder=1 type=2 .*discard.*
BREAK EBUSY id=1 gen=1 holder=1 type=2 " "$out"
expect "...VDI 1 untouched" "holder 1 lock_generation 1" \
	"$(disk vdi 1 | awk '{print $1, $2, $3, $4}')"

# Host 1 declared dead: every lock goes but the marked VDI's.
call 1 claim 2 0 >/dev/null
sleep 1.3
out=$(call 2 break host 1)
expect_match "BREAK host 1: VDI 2 and the extent broken, VDI 1 kept" \
	"^BREAK OK id=1 gen=2 holder=1 type=1 kept=1$" "$out"
expect "...VDI 1 still held at generation 1, marked" \
	"holder 1 lock_generation 1 dirty" \
	"$(disk vdi 1 | awk '{print $1, $2, $3, $4}') $(disk vdi_cache 1)"
expect "...VDI 2 fenced" "holder 0 lock_generation 2" \
	"$(disk vdi 2 | awk '{print $1, $2, $3, $4}')"
out=$(call 2 lock_vdi 1)
expect_match "after the fence: host 2 still EBUSY" \
	"^LOCK_VDI EBUSY id=1 gen=1 holder=1 type=2" "$out"

# The admin tool's plain unlock, online.
out=$("$P" unlock "$STORE" --vdi 1 --host-id 9 2>&1)
rc=$?
expect "parallax unlock --vdi of a marked VDI: exit 1" 1 "$rc"
expect_match "...naming the undrained writes and --discard-cache" \
	"undrained writes in the local cache of host 1.*--discard-cache" "$out"
out=$("$P" unlock "$STORE" --host 1 --host-id 9 2>&1)
expect "parallax unlock --host of its holder: exit 1 (a lock kept)" 1 "$?"
expect_match "...says which were kept and why" "1 VDI lock\(s\) kept: .*--discard-cache" "$out"
out=$(call 2 lock_vdi 1)
expect_match "after plain unlocks: host 2 still EBUSY" \
	"^LOCK_VDI EBUSY id=1 gen=1 holder=1 type=2" "$out"

# A restarted lockd reads the mark back from the store.
kill9_lockd
start_lockd --lease 1 || { echo "Bail out! lockd restart"; exit 1; }
expect_match "after kill -9 and restart: STATUS shows the mark" \
	"^vdi 1 holder 1 generation 1 cache dirty name a$" "$(call 2 status)"
out=$(call 2 lock_vdi 1)
expect_match "...and host 2 is still refused" \
	"^LOCK_VDI EBUSY id=1 gen=1 holder=1 type=2" "$out"

# The holder comes back: it takes its own VDI again (to replay and drain),
# at the same generation, and learns the VDI is marked even without asking.
out=$(call 1 lock_vdi 1 cache , lock_vdi 1)
expect "host 1 re-takes its VDI, generation unchanged, marked" \
	"LOCK_VDI OK id=1 gen=1 holder=1 type=2
LOCK_VDI OK id=1 gen=1 holder=1 type=2" "$out"

# Unknown flags are refused, so a newer client can tell.
out=$(call 1 flags lock_vdi 1 0 0x10 , flags unlock_vdi 1 1 0x2 , flags break 1 0 0x10)
expect_match "unknown flags: EINVAL" "^LOCK_VDI EINVAL .*
UNLOCK_VDI EINVAL .*
BREAK EINVAL " "$out"
expect "...VDI 1 still held and marked" "holder 1 lock_generation 1 dirty" \
	"$(disk vdi 1 | awk '{print $1, $2, $3, $4}') $(disk vdi_cache 1)"

# Drained: the clean release clears the mark; others may take it.
out=$(call 1 unlock_vdi 1 1 clean)
expect "clean release: OK" "UNLOCK_VDI OK id=1 gen=1 holder=0 type=0" "$out"
expect "...mark cleared, no holder" "holder 0 lock_generation 1 clean" \
	"$(disk vdi 1 | awk '{print $1, $2, $3, $4}') $(disk vdi_cache 1)"
out=$(call 2 lock_vdi 1 , unlock_vdi 1 2 clean)
expect "host 2 takes VDI 1 (no cache: unmarked); clean on an unmarked release is fine" \
	"LOCK_VDI OK id=1 gen=2 holder=2 type=0
UNLOCK_VDI OK id=1 gen=2 holder=0 type=0" "$out"
expect_match "STATUS has no VDI line left for VDI 1" "^lockd " "$(call 2 status | grep -v '^host ')"
if call 2 status | grep -q '^vdi 1 '; then
	not_ok "VDI 1 still listed in STATUS"
else
	ok "VDI 1 no longer listed in STATUS"
fi

# --discard-cache: the admin gives up the writes in the holder's log.
out=$(call 1 lock_vdi 2 cache)
expect "host 1 locks VDI 2 with a cache" "LOCK_VDI OK id=2 gen=3 holder=1 type=2" "$out"
out=$("$P" unlock "$STORE" --vdi 2 --discard-cache --host-id 9 2>&1)
expect "unlock --discard-cache while host 1's lease is live: refused (exit 1)" 1 "$?"
expect_match "...because of the lease" "lease is live" "$out"
expect "...VDI 2 still marked" dirty "$(disk vdi_cache 2)"
sleep 1.3
out=$("$P" unlock "$STORE" --vdi 2 --discard-cache --host-id 9 2>&1)
expect "unlock --vdi --discard-cache after the lease: exit 0" 0 "$?"
expect_match "...reports the fence" "fenced VDI 2 of host 1: generation 4" "$out"
expect "...mark cleared, lock broken, generation bumped" \
	"holder 0 lock_generation 4 clean" \
	"$(disk vdi 2 | awk '{print $1, $2, $3, $4}') $(disk vdi_cache 2)"
expect "...parallax list no longer says cache-dirty" "2 -" \
	"$("$P" list "$STORE" | awk '$1 == 2 { print $1, $NF }')"
out=$(call 2 lock_vdi 2)
expect "host 2 may now take VDI 2" "LOCK_VDI OK id=2 gen=5 holder=2 type=0" "$out"
grep -q "discarded the undrained local cache of VDI 2 on host 1" "$T/lockd.log"
expect "lockd logged the discard" 0 $?

# A host fence with --discard-cache breaks marked VDIs too.
out=$(call 3 lock_vdi 1 cache)
expect "host 3 locks VDI 1 with a cache" "LOCK_VDI OK id=1 gen=3 holder=3 type=2" "$out"
sleep 1.3
out=$("$P" unlock "$STORE" --host 3 --discard-cache --host-id 9 2>&1)
expect "unlock --host 3 --discard-cache: exit 0" 0 "$?"
expect "...VDI 1 broken and unmarked" "holder 0 lock_generation 4 clean" \
	"$(disk vdi 1 | awk '{print $1, $2, $3, $4}') $(disk vdi_cache 1)"

# --offline honours the mark the same way (lockd stopped).
out=$(call 3 lock_vdi 1 cache)
expect "host 3 locks VDI 1 with a cache again" "LOCK_VDI OK id=1 gen=5 holder=3 type=2" "$out"
kill9_lockd
out=$("$P" unlock "$STORE" --vdi 1 --offline 2>&1)
expect "offline unlock of a marked VDI: exit 1" 1 "$?"
expect_match "...naming --discard-cache" "undrained writes.*--discard-cache" "$out"
out=$("$P" unlock "$STORE" --host 3 --offline 2>&1)
expect "offline unlock --host 3: exit 1, VDI kept" 1 "$?"
expect "...VDI 1 still held and marked" "holder 3 lock_generation 5 dirty" \
	"$(disk vdi 1 | awk '{print $1, $2, $3, $4}') $(disk vdi_cache 1)"
out=$("$P" unlock "$STORE" --vdi 1 --offline --discard-cache 2>&1)
expect "offline unlock --discard-cache: exit 0" 0 "$?"
expect "...VDI 1 broken and unmarked" "holder 0 lock_generation 6 clean" \
	"$(disk vdi 1 | awk '{print $1, $2, $3, $4}') $(disk vdi_cache 1)"
"$P" check "$STORE" >/dev/null 2>&1
expect "parallax check passes on the store" 0 $?

finish
