#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Fuzzed table lines and messages for the parallax target.
#
# tests/kernel/fuzzgen.py makes the inputs from a seed (FUZZ_SEED, printed;
# default fixed): mutations of valid table lines and messages, purely
# random token sequences, and the fixed regression cases first.  One UML
# boot runs a batch; in the guest tests/kernel/fuzzdrv.py sends them
# through the device-mapper ioctls (no process per input), every
# operation under a 10 s watchdog:
#  - tables: a table must load or be refused; a loaded one must name the
#    VDI its line named, and is queried, read and removed;
#  - messages, to a live read-write device with writes in between: each
#    succeeds or fails, the device stays, the status stays sane (a lockd
#    word is a-z and _ only); a GC epoch a fuzzed gc_begin opened is
#    closed at once, and granted extents are granted again after a
#    message that could release them;
#  - gc_reclaim messages whose hex names no block, in an active epoch:
#    each is refused or frees 0 blocks;
#  - then the device reads back every write (or reports itself failed),
#    detaches, and offline "parallax check" is clean and the exports
#    equal what the guest wrote.
# Any kernel splat (checked in dmesg after every input, and by uml-run)
# or hang fails the run.  Each failure prints the input and
#   # reproduce: FUZZ_SEED=<seed> tests/kernel/fuzz.sh
#
# STRESS_SECONDS unset: one batch of about 1250 inputs (make test).
# STRESS_SECONDS=S: batches with seeds FUZZ_SEED, FUZZ_SEED+1, ... until
# about S seconds have passed (make stress).
set -u
source "$(dirname "$0")/lib.sh"

SEED=${FUZZ_SEED:-20240611}
if [ -n "${STRESS_SECONDS:-}" ]; then
	NT=${FUZZ_TABLES:-1500} NM=${FUZZ_MESSAGES:-1200} NG=${FUZZ_GC:-300}
else
	NT=${FUZZ_TABLES:-600} NM=${FUZZ_MESSAGES:-500} NG=${FUZZ_GC:-120}
fi
echo "# fuzz seed $SEED (FUZZ_SEED), $NT tables, $NM messages, $NG gc_reclaims a batch"
GEN="/usr/bin/python3 $KT_DIR/fuzzgen.py"

cat >"$T/guest.sh" <<'GUEST'
set -u
KT_GUEST=1 source "$KT_DIR/lib.sh"
SZ=32768        # sectors in a 16 MiB VDI
DRV="python3 -S $KT_DIR/fuzzdrv.py"
: >"$T/counts"

# ---- tables ----
# ft (VDI 1) is claimed by host 1 but has no device; fu (2) is unclaimed
# with snapshot 1; fd (4) is deleted.
"$P" attach /dev/ubda ft --data-extents 1 >"$T/g.out" 2>&1 || { g_not_ok "attach ft: $(cat "$T/g.out")"; exit 1; }
ft_table=$(dmsetup table ft | cut -d' ' -f3-)
LG=$(dmsetup table ft | sed -n 's/.*lock_gen \([0-9]*\).*/\1/p')
dmsetup --noudevsync remove ft || { g_not_ok "remove ft"; exit 1; }
g_note "ft table: $ft_table"
printf 'SZ %s\nLG %s\n' "$SZ" "$LG" >"$T/vars"
$DRV tables "$T/tables.txt" "$T/results" "$T/vars" >"$T/drv.out" 2>&1 &&
	g_ok "tables: $(tail -1 "$T/drv.out") tried, each accepted or refused cleanly" ||
	{ g_not_ok "tables: fuzzdrv.py failed (status $?)"; sed 's/^/# /' "$T/drv.out" | tail -5 >>"$T/results"; }
echo "tables $(tail -1 "$T/drv.out")" >>"$T/counts"
# Give ft back: its table again, then detach releases the claims.
dmsetup --noudevsync create ft --table "0 $SZ $ft_table" >"$T/g.out" 2>&1 &&
	"$P" detach ft >>"$T/g.out" 2>&1 && g_ok "ft detached after the tables" ||
	g_not_ok "detach ft after the tables: $(cat "$T/g.out")"

# ---- messages ----
"$P" attach /dev/ubda fm --data-extents 2 --metadata-extents 2 >"$T/g.out" 2>&1 ||
	{ g_not_ok "attach fm: $(cat "$T/g.out")"; exit 1; }
"$P" dump /dev/ubda >"$T/catalogue" 2>&1
gen_of() {
	awk -v e="$1" '$1 == "extent" && $2 == e {
		for (i = 1; i < NF; i++) if ($i == "generation") print $(i + 1) }' "$T/catalogue"
}
ext=$(dmsetup message fm 0 extents)
E=$(echo "$ext" | tr ' ' '\n' | awk -F: '$2 == "d" { print $1; exit }')
M=$(echo "$ext" | tr ' ' '\n' | awk -F: '$2 == "m" { print $1; exit }')
EG=$(gen_of "$E") MG=$(gen_of "$M")
g_note "fm extents: $ext; data $E gen $EG, metadata $M gen $MG"
printf 'E %s\nEG %s\nM %s\nMG %s\nGE 777777777778\n' "$E" "$EG" "$M" "$MG" >"$T/vars"
for x in $(echo "$ext" | tr ' ' '\n' | cut -d: -f1); do echo "held $x $(gen_of "$x")"; done >>"$T/vars"
cp "$T/data1" "$T/expect"
$DRV messages "$T/messages.txt" "$T/results" "$T/vars" fm "$T/data2" "$T/expect" >"$T/drv.out" 2>&1 &&
	g_ok "messages: $(tail -1 "$T/drv.out") tried; no hang, no splat, device and status sane" ||
	{ g_not_ok "messages: fuzzdrv.py failed (status $?)"; sed 's/^/# /' "$T/drv.out" | tail -5 >>"$T/results"; }
echo "messages $(tail -1 "$T/drv.out")" >>"$T/counts"

# gc_reclaim naming no block, in an open epoch: refused or frees 0.
g_check "gc_begin 777777777778" dmsetup message fm 0 gc_begin 777777777778
$DRV gcreclaim "$T/gcreclaim.txt" "$T/results" "$T/vars" fm >"$T/drv.out" 2>&1 &&
	g_ok "gc_reclaim: $(tail -1 "$T/drv.out") tried, none freed a block" ||
	{ g_not_ok "gc_reclaim: fuzzdrv.py failed (status $?)"; sed 's/^/# /' "$T/drv.out" | tail -5 >>"$T/results"; }
echo "gc $(tail -1 "$T/drv.out")" >>"$T/counts"
g_check "gc_end 777777777778" dmsetup message fm 0 gc_end 777777777778

# The device still serves I/O, or says it has failed.
for x in $(awk '$1 == "held" { print $2 "/" $3 }' "$T/vars"); do
	dmsetup message fm 0 add_extent "${x%/*}" "${x#*/}" >/dev/null 2>&1
done
head -c 64K "$T/data2" >"$T/w"
dmsetup mknodes fm
if [ "$(g_status fm 1)" = failed ]; then
	g_note "fm failed during the messages: $(dmsetup status fm)"
	g_fail "a write to the failed fm fails" dd if="$T/w" of=/dev/mapper/fm bs=64K seek=5 oflag=direct status=none
elif timeout 30 dd if="$T/w" of=/dev/mapper/fm bs=64K seek=5 oflag=direct status=none 2>"$T/g.out" &&
	dd if="$T/w" of="$T/expect" bs=64K seek=5 conv=notrunc status=none &&
	cmp "$T/expect" <(timeout 30 dd if=/dev/mapper/fm bs=1M iflag=direct status=none) >"$T/g.out" 2>&1; then
	g_ok "fm reads back every write and the imported data ($(dmsetup status fm | cut -d' ' -f4-))"
else
	g_not_ok "fm does not read back what was written: $(cat "$T/g.out")"
fi
g_check "detach fm" timeout 30 "$P" detach fm
GUEST

truncate -s 16M "$T/zero.img"
inputs=0
batch=0
seed=$SEED
while :; do
	batch=$((batch + 1))
	S=$T/store.img
	new_store "$S" 256M
	rm -f "$T/data1" "$T/data2" "$T/counts"
	head -c 16M /dev/urandom >"$T/data1"
	head -c 16M /dev/urandom >"$T/data2"
	"$P" create "$S" ft --size 16M >/dev/null   # 1: claimed, no device
	"$P" create "$S" fu --size 16M >/dev/null   # 2: unclaimed, snapshot 1
	"$P" create "$S" fm --size 16M >/dev/null   # 3: messages
	"$P" create "$S" fd --size 16M >/dev/null   # 4: deleted
	"$P" import "$S" fu "$T/data1" >/dev/null 2>&1
	"$P" snapshot "$S" fu --label s1 >/dev/null
	"$P" import "$S" fm "$T/data1" >/dev/null 2>&1
	"$P" delete "$S" fd >/dev/null
	$GEN tables "$seed" "$NT" >"$T/tables.txt"
	$GEN messages "$seed" "$NM" >"$T/messages.txt"
	$GEN gcreclaim "$seed" "$NG" >"$T/gcreclaim.txt"
	echo "# batch $batch: FUZZ_SEED=$seed"
	f0=$FAILED
	kt_boot "fuzz batch $batch (seed $seed)" --timeout 900 --disk "$S" --disk "$T/zero.img" \
		-- bash "$T/guest.sh"
	[ -f "$T/counts" ] && inputs=$((inputs + $(awk '$2 ~ /^[0-9]+$/ { s += $2 } END { print s + 0 }' "$T/counts")))
	if [ "$FAILED" = "$f0" ]; then
		check_clean "store after fuzz batch $batch" "$S"
		export_cmp "fm holds what the guest wrote" "$S" fm "$T/expect"
		export_cmp "fu unchanged by the tables" "$S" fu "$T/data1"
		export_cmp "ft (loaded read-write, never written) still reads zeros" "$S" ft <(head -c 16M /dev/zero)
	fi
	if [ "$FAILED" != "$f0" ]; then
		echo "# reproduce: FUZZ_SEED=$seed tests/kernel/fuzz.sh"
		break
	fi
	[ -n "${STRESS_SECONDS:-}" ] || break
	[ $(($(date +%s) - KT_START)) -lt "$STRESS_SECONDS" ] || break
	seed=$((seed + 1))
done
echo "# stress: inputs_fuzzed=$inputs"
finish
