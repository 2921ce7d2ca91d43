#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The kernel side of online GC: gc_begin, gc_reclaim and gc_end
# (Documentation/dm-parallax.rst).  A table detached with blocks left in
# its reserve leaves garbage we know exactly; a 4-extent store makes the
# next attach claim the same two extents again.  After gc_begin the test
# reads the store as the collector would (tests/kernel/gcstore.py), then
# writes more, then asks the table to free every block that read did not
# reach: exactly the first table's garbage must be freed, never the
# blocks the new table reserved before the begin or took after it, and
# the data must read back unchanged.  Every refusal, with its errno.
# Last, under a dm-delay, gc_begin must wait for a write in flight.
set -u
source "$(dirname "$0")/lib.sh"

S=$T/store.img
new_store "$S" 16M
# dm refuses a table longer than the store: 12 MiB in a 16 MiB store.
"$P" create "$S" gc --size 12M >/dev/null
head -c $((300 * 4096)) /dev/urandom >"$T/w1"
head -c $((40 * 4096)) /dev/urandom >"$T/w2"
head -c $((300 * 4096)) /dev/urandom >"$T/w3"
head -c $((100 * 4096)) /dev/urandom >"$T/w4"

cat >"$T/guest.sh" <<'GUEST'
set -u
KT_GUEST=1 source "$KT_DIR/lib.sh"
D=/dev/mapper/gc
GCPY="/usr/bin/python3 $KT_DIR/gcstore.py"
ESTALE="Stale file handle"
ENOENT="No such file or directory"
EINVAL="Invalid argument"

# g_refused DESC ERRNO-TEXT MESSAGE...: gc's table must refuse it so.
g_refused() {
	local desc=$1 want=$2
	shift 2
	if dmsetup message gc 0 "$@" >"$T/g.out" 2>&1; then
		g_not_ok "$desc: accepted ($(cat "$T/g.out"))"
	elif grep -q "$want" "$T/g.out"; then
		g_ok "$desc: $want"
	else
		g_not_ok "$desc: expected '$want', got: $(cat "$T/g.out")"
	fi
}

# entry STATE EXTENT FIELD: a catalogue field recorded by gcstore.py state.
entry() {
	python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["extents"][sys.argv[2]][sys.argv[3]])' "$@"
}

# extents: the granted extents, from the "extents" message.
extents() {
	dmsetup message gc 0 extents | tr ' ' '\n' | cut -d: -f1 | sort -n | tr '\n' ' '
}

# free_blocks: data + metadata free blocks in the status.
free_blocks() {
	echo $(($(g_status gc 4) + $(g_status gc 5)))
}

# rd BLOCK COUNT: COUNT blocks of gc from BLOCK, with O_DIRECT.
rd() {
	dd if=$D bs=4096 skip="$1" count="$2" iflag=direct status=none
}

# ---- Table A: leaves its unused reserve behind as garbage ----
"$P" attach /dev/ubda gc >"$T/g.out" 2>&1 && g_ok "attach gc (table A)" ||
	{ g_not_ok "attach gc: $(cat "$T/g.out")"; dmesg | tail -5 | sed "s/^/# /" >>"$T/results"; exit 1; }
exts_a=$(extents)
g_note "table A holds extents $exts_a"
g_check "write 300 blocks at 0" dd if="$T/w1" of=$D bs=64K oflag=direct status=none
g_refused "gc_reclaim with no epoch" "$ESTALE" gc_reclaim 1 3 1 0 ff
g_refused "gc_end with no epoch" "$ESTALE" gc_end 1
g_check "detach table A" "$P" detach gc

$GCPY state /dev/ubda "$T/a.json" && $GCPY garbage "$T/a.json" >"$T/garbage.a" ||
	{ g_not_ok "gcstore.py state after detach"; exit 1; }
n_a=$(wc -l <"$T/garbage.a")
cli_garbage=$("$P" check /dev/ubda --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["garbage"])')
[ "$n_a" -gt 0 ] && [ "$n_a" = "$cli_garbage" ] &&
	g_ok "table A left $n_a garbage blocks (parallax check counts $cli_garbage)" ||
	g_not_ok "garbage after table A: gcstore $n_a, parallax check $cli_garbage"

# ---- Table B: same extents, some reserve used before the epoch ----
"$P" attach /dev/ubda gc >"$T/g.out" 2>&1 && g_ok "attach gc (table B)" ||
	{ g_not_ok "attach gc again: $(cat "$T/g.out")"; exit 1; }
exts=$(extents)
[ "$exts" = "$exts_a" ] && g_ok "table B holds the same extents: $exts" ||
	g_not_ok "table B holds '$exts', table A held '$exts_a'"
g_check "write 40 blocks at 1000" dd if="$T/w2" of=$D bs=4096 seek=1000 oflag=direct status=none

g_refused "gc_begin 0" "$EINVAL" gc_begin 0
g_refused "gc_begin abc" "$EINVAL" gc_begin abc
g_refused "gc_begin without an epoch" "$EINVAL" gc_begin
g_refused "gc_begin with two epochs" "$EINVAL" gc_begin 7 8
g_refused "gc_frob 7" "$EINVAL" gc_frob 7

g_check "gc_begin 7" dmsetup message gc 0 gc_begin 7
# What the collector would read now: the roots, and the bitmaps.
$GCPY state /dev/ubda "$T/b.json" || { g_not_ok "gcstore.py state after gc_begin"; exit 1; }
for e in $exts; do
	[ "$(entry "$T/b.json" "$e" type)" = 2 ] && dext=$e || mext=$e
done
dgen=$(entry "$T/b.json" "$dext" generation)
mgen=$(entry "$T/b.json" "$mext" generation)
g_note "data extent $dext generation $dgen, metadata extent $mext generation $mgen"

g_refused "gc_reclaim, wrong epoch" "$ESTALE" gc_reclaim 8 "$dext" "$dgen" 0 ff
g_refused "gc_reclaim, wrong generation" "$ESTALE" gc_reclaim 7 "$dext" $((dgen + 1)) 0 ff
g_refused "gc_reclaim, extent not granted" "$ENOENT" gc_reclaim 7 99 "$dgen" 0 ff
g_refused "gc_reclaim, system extent" "$ENOENT" gc_reclaim 7 0 "$dgen" 0 ff
g_refused "gc_reclaim, uppercase hex" "$EINVAL" gc_reclaim 7 "$dext" "$dgen" 0 FF
g_refused "gc_reclaim, odd number of digits" "$EINVAL" gc_reclaim 7 "$dext" "$dgen" 0 fff
g_refused "gc_reclaim, not hex" "$EINVAL" gc_reclaim 7 "$dext" "$dgen" 0 zz
g_refused "gc_reclaim, 0x prefix" "$EINVAL" gc_reclaim 7 "$dext" "$dgen" 0 0x01
g_refused "gc_reclaim, offset not a multiple of 8" "$EINVAL" gc_reclaim 7 "$dext" "$dgen" 4 ff
g_refused "gc_reclaim, offset past the extent" "$EINVAL" gc_reclaim 7 "$dext" "$dgen" 1024 ff
g_refused "gc_reclaim, chunk past the extent's end" "$EINVAL" gc_reclaim 7 "$dext" "$dgen" 1016 ffff
g_refused "gc_reclaim, 1025 bytes" "$EINVAL" gc_reclaim 7 "$dext" "$dgen" 0 "$(printf '%02050d' 0)"
g_refused "gc_reclaim, epoch 0" "$EINVAL" gc_reclaim 0 "$dext" "$dgen" 0 ff
g_refused "gc_reclaim, missing the bitmap" "$EINVAL" gc_reclaim 7 "$dext" "$dgen" 0
g_refused "gc_reclaim, offset not a number" "$EINVAL" gc_reclaim 7 "$dext" "$dgen" x ff
out=$(dmsetup message gc 0 gc_reclaim 7 "$dext" "$dgen" 0 00 2>&1)
[ "$out" = 0 ] && g_ok "gc_reclaim of an empty chunk frees 0" || g_not_ok "empty chunk: '$out'"

# Writes after the begin refill the reserve: those blocks are fresh.
g_check "write 300 blocks at 2000 during the epoch" \
	dd if="$T/w3" of=$D bs=64K seek=125 oflag=direct status=none
$GCPY state /dev/ubda "$T/c.json" || { g_not_ok "gcstore.py state before reclaim"; exit 1; }
free_before=$(free_blocks)

# Send every block the read after gc_begin did not reach.
total=0
for e in $dext $mext; do
	gen=$(entry "$T/b.json" "$e" generation)
	if out=$(dmsetup message gc 0 gc_reclaim 7 "$e" "$gen" 0 "$($GCPY unreached "$T/b.json" "$e")" 2>&1) &&
		[ -n "$out" ] && [ "$out" -ge 0 ] 2>/dev/null; then
		g_ok "gc_reclaim of extent $e (all unreached bits): $out freed"
		total=$((total + out))
	else
		g_not_ok "gc_reclaim of extent $e: $out"
	fi
done
free_after=$(free_blocks)
$GCPY state /dev/ubda "$T/d.json" || { g_not_ok "gcstore.py state after reclaim"; exit 1; }
$GCPY freed "$T/c.json" "$T/d.json" >"$T/freed"
$GCPY garbage "$T/b.json" >"$T/garbage.b"
fresh_at_begin=$(comm -23 "$T/garbage.b" "$T/garbage.a" | wc -l)
$GCPY freed "$T/c.json" "$T/b.json" >"$T/taken"
g_note "at begin: $(wc -l <"$T/garbage.b") unreached allocated blocks, $fresh_at_begin of them in table B's reserve; $(wc -l <"$T/taken") blocks taken during the epoch"
[ "$fresh_at_begin" -gt 0 ] && [ -s "$T/taken" ] &&
	g_ok "the test has fresh blocks of both kinds (reserved before and taken after gc_begin)" ||
	g_not_ok "no fresh blocks to protect: the test proves nothing"
cmp -s "$T/freed" "$T/garbage.a" &&
	g_ok "freed exactly table A's $n_a garbage blocks, none of the fresh ones" ||
	g_not_ok "freed $(wc -l <"$T/freed") blocks, expected table A's $n_a; wrongly freed: $(comm -23 "$T/freed" "$T/garbage.a" | head -20 | tr '\n' ' ')...; not freed: $(comm -13 "$T/freed" "$T/garbage.a" | head -20 | tr '\n' ' ')..."
[ "$total" = "$n_a" ] && g_ok "the answers add up to $total" || g_not_ok "answers add up to $total, expected $n_a"
[ $((free_after - free_before)) = "$total" ] &&
	g_ok "status free blocks grew by $total ($free_before -> $free_after)" ||
	g_not_ok "status free blocks $free_before -> $free_after, freed $total"
out=$(dmsetup message gc 0 gc_reclaim 7 "$dext" "$dgen" 0 "$($GCPY unreached "$T/b.json" "$dext")" 2>&1)
[ "$out" = 0 ] && g_ok "the same reclaim again frees 0" || g_not_ok "second reclaim: '$out'"

cmp -s "$T/w1" <(rd 0 300) && cmp -s "$T/w2" <(rd 1000 40) && cmp -s "$T/w3" <(rd 2000 300) &&
	g_ok "all 640 written blocks read back unchanged" || g_not_ok "data differs after the reclaim"
# Freed blocks are allocated again, and the data still holds.
g_check "rewrite 40 blocks at 1000 after the reclaim" \
	dd if="$T/w2" of=$D bs=4096 seek=1000 oflag=direct status=none
g_check "write 40 more blocks at 3000 after the reclaim" \
	dd if="$T/w2" of=$D bs=4096 seek=3000 oflag=direct status=none
cmp -s "$T/w1" <(rd 0 300) && cmp -s "$T/w2" <(rd 3000 40) && cmp -s "$T/w3" <(rd 2000 300) &&
	g_ok "data intact after allocating again" || g_not_ok "data differs after allocating again"

# ---- gc_begin while writes allocate ----
# Each gc_begin must wait for the writes that took blocks before it, so
# that the read after it sees their links; later ones take fresh blocks.
(
	for i in $(seq 0 99); do
		dd if="$T/w4" of=$D bs=4096 skip="$i" seek=$((2400 + i)) count=1 \
			conv=notrunc oflag=direct status=none || exit 1
	done
) 2>"$T/writer.err" &
wpid=$!
rounds=0
rtotal=0
rfail=
epoch=100
while kill -0 $wpid 2>/dev/null && [ $rounds -lt 4 ]; do
	epoch=$((epoch + 1))
	dmsetup message gc 0 gc_begin $epoch >"$T/g.out" 2>&1 || { rfail="gc_begin $epoch: $(cat "$T/g.out")"; break; }
	$GCPY state /dev/ubda "$T/r.json" || { rfail="gcstore.py state"; break; }
	for e in $dext $mext; do
		gen=$(entry "$T/r.json" "$e" generation)
		out=$(dmsetup message gc 0 gc_reclaim $epoch "$e" "$gen" 0 "$($GCPY unreached "$T/r.json" "$e")" 2>&1) ||
			{ rfail="gc_reclaim $epoch $e: $out"; break 2; }
		rtotal=$((rtotal + out))
	done
	rounds=$((rounds + 1))
done
wait $wpid
wrc=$?
[ -z "$rfail" ] && [ $rounds -gt 0 ] &&
	g_ok "$rounds begin/read/reclaim rounds while a writer allocated ($rtotal freed)" ||
	g_not_ok "rounds with a writer: $rounds done; ${rfail:-the writer ended first}"
[ $wrc = 0 ] && g_ok "the writer's 100 writes succeeded" || g_not_ok "writer: $(cat "$T/writer.err")"
$GCPY state /dev/ubda "$T/e.json" && python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
alloc = {b for e in d["extents"].values() for b in e["allocated"]}
lost = sorted(set(d["reachable"]) - alloc)
print(len(d["reachable"]), len(lost), lost[:20])
sys.exit(1 if lost else 0)' "$T/e.json" >"$T/g.out" 2>&1 &&
	g_ok "every reachable block is still allocated (reachable, lost: $(cat "$T/g.out"))" ||
	g_not_ok "reachable blocks freed (reachable, lost, first): $(cat "$T/g.out")"
cmp -s "$T/w4" <(rd 2400 100) && cmp -s "$T/w1" <(rd 0 300) && cmp -s "$T/w3" <(rd 2000 300) &&
	g_ok "data intact after reclaiming under writes" || g_not_ok "data differs after reclaiming under writes"

# ---- A newer gc_begin replaces the epoch ----
g_check "gc_begin 9 replaces epoch $epoch" dmsetup message gc 0 gc_begin 9
g_refused "gc_reclaim for the replaced epoch $epoch" "$ESTALE" gc_reclaim $epoch "$dext" "$dgen" 0 ff
g_refused "gc_end of the replaced epoch $epoch" "$ESTALE" gc_end $epoch
out=$(dmsetup message gc 0 gc_reclaim 9 "$dext" "$dgen" 0 00 2>&1)
[ "$out" = 0 ] && g_ok "gc_reclaim in epoch 9 answers" || g_not_ok "epoch 9 reclaim: '$out'"
# An extent granted during the epoch was not seen by the collector.
g_check "release_extent $mext" dmsetup message gc 0 release_extent "$mext"
g_check "add_extent $mext $mgen during the epoch" dmsetup message gc 0 add_extent "$mext" "$mgen"
g_refused "gc_reclaim of an extent granted during the epoch" "$ESTALE" gc_reclaim 9 "$mext" "$mgen" 0 ff
g_check "gc_end 9" dmsetup message gc 0 gc_end 9
g_refused "gc_end 9 again" "$ESTALE" gc_end 9
g_refused "gc_reclaim after gc_end" "$ESTALE" gc_reclaim 9 "$dext" "$dgen" 0 ff

# ---- A fenced grant: its bitmap is no longer ours to write ----
g_check "gc_begin 11" dmsetup message gc 0 gc_begin 11
g_check "bump extent $dext's generation on disk (a broken lock)" $GCPY fence /dev/ubda "$dext"
g_refused "gc_reclaim of a fenced extent" "$ESTALE" gc_reclaim 11 "$dext" "$dgen" 0 ff
dmsetup message gc 0 extents | grep -q "^$dext:d:[0-9]*:fenced\| $dext:d:[0-9]*:fenced" &&
	g_ok "extents shows $dext fenced" || g_not_ok "extents: $(dmsetup message gc 0 extents)"
g_check "gc_end 11" dmsetup message gc 0 gc_end 11

# ---- A read-only table has nothing to do ----
g_check "attach gc read-only as gcro" "$P" attach /dev/ubda gc --read-only --name gcro
g_check "gc_begin 12 on the read-only table" dmsetup message gcro 0 gc_begin 12
g_check "gc_end 12 on the read-only table" dmsetup message gcro 0 gc_end 12
g_check "detach gcro" "$P" detach gcro

cmp -s "$T/w1" <(rd 0 300) && cmp -s "$T/w3" <(rd 2000 300) && cmp -s "$T/w2" <(rd 3000 40) &&
	cmp -s "$T/w4" <(rd 2400 100) && g_ok "data intact before the detach" || g_not_ok "data differs before the detach"
g_check "detach gc" "$P" detach gc

# ---- gc_begin waits for the writes that took blocks before it ----
# Under a dm-delay that holds every write for 1.5 s, a write that has
# taken its data block links it on disk only about 3 s later (data, then
# commit node).  gc_begin sent meanwhile must wait for it: if it did not,
# the read after it would miss the link and the reclaim free a live block.
sz=$(blockdev --getsz /dev/ubda)
g_check "dm-delay over the store (writes +1.5 s)" \
	dmsetup --noudevsync create slow --table "0 $sz delay /dev/ubda 0 0 /dev/ubda 0 1500"
dmsetup mknodes slow
"$P" attach /dev/mapper/slow gc >"$T/g.out" 2>&1 && g_ok "attach gc over the delay (table C)" ||
	{ g_not_ok "attach gc over the delay: $(cat "$T/g.out")"; exit 1; }
# First give back what tables A and B left behind, so there is room.
$GCPY state /dev/ubda "$T/f.json" || { g_not_ok "gcstore.py state for table C"; exit 1; }
g_check "gc_begin 200" dmsetup message gc 0 gc_begin 200
$GCPY state /dev/ubda "$T/f.json"
ctotal=0
for e in $(extents); do
	gen=$(entry "$T/f.json" "$e" generation)
	out=$(dmsetup message gc 0 gc_reclaim 200 "$e" "$gen" 0 "$($GCPY unreached "$T/f.json" "$e")" 2>&1) &&
		ctotal=$((ctotal + out)) || g_not_ok "gc_reclaim 200 $e: $out"
done
g_check "gc_end 200 ($ctotal freed)" dmsetup message gc 0 gc_end 200
# Fill the reserve and the level-0 node of blocks 2560..3071 first, so
# that the next write takes its data block at once.
g_check "write block 2600 (fills the reserve)" \
	dd if="$T/w2" of=$D bs=4096 count=1 seek=2600 oflag=direct status=none
dd if="$T/w2" of=$D bs=4096 skip=1 count=1 seek=2700 oflag=direct status=none 2>"$T/dd.err" &
ddpid=$!
sleep 0.5
t0=$(date +%s%N)
g_check "gc_begin 201 with a write in flight" dmsetup message gc 0 gc_begin 201
waited=$((($(date +%s%N) - t0) / 1000000))
kill -0 $ddpid 2>/dev/null && inflight=yes || inflight=no
$GCPY state /dev/ubda "$T/g.json" || g_not_ok "gcstore.py state after gc_begin 201"
[ $waited -ge 1000 ] && [ $inflight = no ] &&
	g_ok "gc_begin waited $waited ms, until the write had ended" ||
	g_not_ok "gc_begin answered in $waited ms; write still in flight: $inflight"
wtotal=0
for e in $(extents); do
	gen=$(entry "$T/g.json" "$e" generation)
	out=$(dmsetup message gc 0 gc_reclaim 201 "$e" "$gen" 0 "$($GCPY unreached "$T/g.json" "$e")" 2>&1) &&
		wtotal=$((wtotal + out)) || g_not_ok "gc_reclaim 201 $e: $out"
done
wait $ddpid && g_ok "the write in flight completed" || g_not_ok "write in flight: $(cat "$T/dd.err")"
g_check "gc_end 201" dmsetup message gc 0 gc_end 201
$GCPY state /dev/ubda "$T/h.json" && python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
alloc = {b for e in d["extents"].values() for b in e["allocated"]}
lost = sorted(set(d["reachable"]) - alloc)
print(len(d["reachable"]), len(lost), lost[:20])
sys.exit(1 if lost else 0)' "$T/h.json" >"$T/g.out" 2>&1 &&
	g_ok "nothing live freed ($wtotal freed; reachable, lost: $(cat "$T/g.out"))" ||
	g_not_ok "live blocks freed ($wtotal freed; reachable, lost, first: $(cat "$T/g.out"))"
cmp -s <(head -c 8192 "$T/w2") <(rd 2600 1; rd 2700 1) && cmp -s "$T/w1" <(rd 0 300) &&
	cmp -s "$T/w3" <(rd 2000 300) && cmp -s "$T/w2" <(rd 3000 40) && cmp -s "$T/w4" <(rd 2400 100) &&
	g_ok "data intact at the end" || g_not_ok "data differs at the end"
dd if=$D of="$T/live.img" bs=1M iflag=direct status=none
g_check "detach gc" "$P" detach gc
g_check "remove the delay" dmsetup --noudevsync remove slow
GUEST

kt_boot "gc-messages" --timeout 300 --disk "$S" -- bash "$T/guest.sh"
[ -f "$T/live.img" ] && export_cmp "export gc = what the guest read" "$S" gc "$T/live.img"
check_clean "parallax check clean" "$S"
finish
