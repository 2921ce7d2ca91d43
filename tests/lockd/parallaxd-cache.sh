#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# parallaxd and the local write cache's cache-dirty mark, without a
# kernel: parallaxd runs on the test host with no parallax device, so the
# paths checked are those that need none - a device with a cache that
# vanished (a crash, a reboot) keeps its VDI locked and marked, an attach
# without the cache of a VDI marked for this host is refused, and an
# attach with a cache that fails before its device exists gives the VDI
# back clean.  The drain before a detach is tests/cli/detach-drain.sh;
# detaches of real devices are the kernel and cluster suites'.
. "$(dirname "$0")/lib.sh"

PD=${PARALLAXD:-$TOP/userspace/parallaxd}
[ -x "$PD" ] || { echo "Bail out! $PD not built (make -C userspace)"; exit 1; }
PD_PID=
stop_pd() {
	[ -n "$PD_PID" ] && kill "$PD_PID" 2>/dev/null && wait "$PD_PID" 2>/dev/null
	PD_PID=
}
trap 'stop_pd; cleanup' EXIT

make_store || { echo "Bail out! cannot make a store"; exit 1; }
start_lockd || { echo "Bail out! lockd"; exit 1; }

# Host 5's parallaxd ran VDI 1 with a cache as "web" and VDI 2 without
# one as "plain", then the host went down: the devices are gone, the
# state files and the locks are left.
out=$(call 5 lock_vdi 1 cache , lock_vdi 2)
g1=$(echo "$out" | sed -n '1s/.* gen=\([0-9]*\) .*/\1/p')
g2=$(echo "$out" | sed -n '2s/.* gen=\([0-9]*\) .*/\1/p')
expect "host 5 holds VDI 1 (marked) and VDI 2" \
	"LOCK_VDI OK id=1 gen=$g1 holder=5 type=2
LOCK_VDI OK id=2 gen=$g2 holder=5 type=0" "$out"
mkdir -p "$T/run"
printf 'store %s\nvdi 1\nmode rw\nlock_gen %s\ncache /dev/null always\n' \
	"$STORE" "$g1" >"$T/run/web.parallaxd"
printf 'store %s\nvdi 2\nmode rw\nlock_gen %s\n' "$STORE" "$g2" \
	>"$T/run/plain.parallaxd"

"$PD" "$STORE" --host-id 5 --run-dir "$T/run" 2>"$T/pd.log" &
PD_PID=$!
for i in $(seq 50); do
	[ -S "$T/run/parallaxd.sock" ] &&
		grep -q "host 5 connected from .* (parallaxd)" "$T/lockd.log" && break
	sleep 0.1
done
for i in $(seq 50); do
	grep -q "plain no longer exists" "$T/pd.log" &&
		grep -q "web no longer exists" "$T/pd.log" && break
	sleep 0.1
done
expect_match "parallaxd found both devices gone" \
	"web no longer exists" "$(cat "$T/pd.log")"
expect "VDI 2 (no cache) released" "holder 0" "$(disk vdi 2 | cut -d' ' -f1,2)"
expect "VDI 1 (cache) still held by host 5 and marked" "holder 5 dirty" \
	"$(disk vdi 1 | cut -d' ' -f1,2) $(disk vdi_cache 1)"
expect_match "...and parallaxd says why" \
	"VDI 1 stays locked by this host: .*undrained writes.*attach it again with its local cache" \
	"$(cat "$T/pd.log")"
expect_match "...naming the cache it had" "web had the local cache /dev/null" \
	"$(cat "$T/pd.log")"
out=$(call 6 lock_vdi 1)
expect_match "another host cannot take VDI 1" "^LOCK_VDI EBUSY id=1 gen=$g1 holder=5 type=2" "$out"

export PARALLAX_RUN_DIR=$T/run
# Without its cache the VDI would run without the writes in the log.
out=$("$P" attach "$STORE" 1 --name web2 2>&1)
expect "attach of VDI 1 without its cache: exit 1" 1 "$?"
expect_match "...refused: this host's cache holds its writes" \
	"VDI 1 has writes in this host's local write cache" "$out"
expect "...VDI 1 still held and marked, same generation" \
	"holder 5 lock_generation $g1 dirty" \
	"$(disk vdi 1 | cut -d' ' -f1-4) $(disk vdi_cache 1)"

# The control socket checks the cache words.
ctl() {
	python3 -c 'import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall((sys.argv[2]+"\n").encode()); print(s.makefile().read().strip())' \
		"$T/run/parallaxd.sock" "$1"
}
expect "cache_mode= without cache=" "error cache_mode= needs cache=" \
	"$(ctl "attach $STORE 2 x rw cache_mode=always")"
expect "cache= on a read-only attach" "error cache= is for read-write attaches only" \
	"$(ctl "attach $STORE 2 x ro cache=/dev/null")"
expect "a bad cache_mode" "error cache_mode= is always or adaptive, not 'often'" \
	"$(ctl "attach $STORE 2 x rw cache=/dev/null cache_mode=often")"
expect_match "an unknown word" "^error 'cash=/dev/null': expected" \
	"$(ctl "attach $STORE 2 x rw cache_mode=always cash=/dev/null")"

# An attach with a cache whose device cannot be made (no kernel target
# here) marks the VDI, then gives it back clean: nothing reached a log.
out=$("$P" attach "$STORE" 2 --name x --local-cache /dev/null --cache-mode always 2>&1)
expect "attach of VDI 2 with a cache and no kernel target: exit 1" 1 "$?"
expect_match "lockd marked VDI 2 for the attach" \
	"host 5: locked VDI \(cache-dirty\) 2|VDI 2 marked cache-dirty" "$(cat "$T/lockd.log")"
expect "...and VDI 2 was given back, unmarked" "holder 0 clean" \
	"$(disk vdi 2 | cut -d' ' -f1,2) $(disk vdi_cache 2)"
expect_match "lockd logged a clean release" \
	"host 5: unlocked VDI 2 generation [0-9]+ \(cache drained\)" "$(cat "$T/lockd.log")"

finish
