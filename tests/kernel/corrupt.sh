#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Corrupted metadata in the kernel: stores whose superblock, catalogue,
# VDI records, snapshot logs or radix nodes are damaged (bits flipped,
# zeroed, randomised, links out of range, into the wrong extent type or
# into a cycle; then random damage, crc mostly recomputed) are attached
# and used in UML.  Every case must end in a clear error: the table
# refused with a message in the kernel log, or I/O errors with "dmsetup
# status" naming the failure; never a splat, a hang or a write outside
# what the device may write (checked on the host, block by block).
# "parallax check" must fail on each damaged store and name the block
# and the problem.
#
# All cases of a boot sit in one sparse disk, 32 MiB apart, and the
# guest cuts it into one dm-linear device per case.
# FUZZ_SEED=N repeats the random damage; STRESS_SECONDS=S keeps trying
# batches of random damage for about S seconds (make stress);
# CORRUPT_RANDOM=N sets the number of random cases in quick mode (8) and
# CORRUPT_ONLY=REGEX keeps only the cases whose name matches.
set -u
source "$(dirname "$0")/lib.sh"

SEED=${FUZZ_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
echo "# FUZZ_SEED=$SEED"
CPY="/usr/bin/python3 $KT_DIR/corrupt.py"
MB=32                   # store size, MiB: 8 extents of 4 MiB
PR=$T/pristine.img
export MB

# a (id 1, 16 MiB, height 2): 1 MiB imported, snapshot s1, 64 KiB
# rewritten, so its tree mixes writable and read-only links; c (id 2):
# clone of s1; d (id 3, 2 GiB, height 3): 65 snapshots, a two-block log.
truncate -s ${MB}M "$PR"
"$P" format "$PR" --extent-size 4M --max-vdis 16 >/dev/null
"$P" create "$PR" a --size 16M >/dev/null
head -c 1M /dev/urandom >"$T/img1"
head -c 64K /dev/urandom >"$T/img2"
"$P" import "$PR" a "$T/img1" >/dev/null 2>&1
"$P" snapshot "$PR" a --label s1 >/dev/null
"$P" import "$PR" a "$T/img2" >/dev/null 2>&1
"$P" create "$PR" c --from s1 >/dev/null
"$P" create "$PR" d --size 2G >/dev/null
"$P" import "$PR" d "$T/img2" >/dev/null 2>&1
for _ in $(seq 65); do "$P" snapshot "$PR" d >/dev/null; done
check_clean "pristine store" "$PR"

cat >"$T/guest.sh" <<'GUEST'
set -u
KT_GUEST=1 source "$KT_DIR/lib.sh"
L=32768                 # table length: 16 MiB
SPLAT='BUG:|WARNING:|Oops|KASAN|UBSAN|general protection|Call Trace|INFO: task|possible circular|cut here|Kernel panic'
HUNG=0
# Sleeping without a fork: read -t on a FIFO that nobody writes.  The
# FIFO lives on the guest's tmpfs: on hostfs ($T) read returns at once.
mkfifo /run/corrupt-tick
exec 9<>/run/corrupt-tick
# wd SECS CMD...: run CMD with output in $T/w.out; 124 if it is still
# running after SECS (a task stuck in D state cannot be killed, so
# timeout(1) alone could hang too).  The deadline is on the clock, not a
# count of polls.  Whether CMD still runs is read from /proc/PID/stat:
# bash may leave an exited child a zombie while only builtins run, and
# "kill -0" succeeds on a zombie.
wd() {
	local secs=$1 pid end st
	shift
	"$@" >"$T/w.out" 2>&1 </dev/null &
	pid=$!
	end=$((${EPOCHREALTIME/./} + secs * 1000000))
	while :; do
		st=
		{ read -r _ _ st _ <"/proc/$pid/stat"; } 2>/dev/null
		[ -n "$st" ] && [ "$st" != Z ] || break
		if [ "${EPOCHREALTIME/./}" -gt "$end" ]; then
			# Where it is stuck, for the report.
			# (/proc/PID/stack is empty in UML and reading wchan
			# splats; the state, the I/O so far and sysrq-w's
			# blocked tasks say where it is.)
			{
				echo "stuck: $*"
				for c in $pid $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
					grep -h '^State' /proc/"$c"/status 2>/dev/null | sed "s/^/pid $c /"
					grep -h 'rchar\|wchar\|syscr' /proc/"$c"/io 2>/dev/null | tr '\n' ' '
					echo
				done
				echo w >/proc/sysrq-trigger
				sleep 1
				dmesg | grep -v 'corrupt.sh: case' | tail -40
			} 2>&1 | sed 's/^/# /' >"$T/stuck.out"
			kill -9 "$pid" 2>/dev/null
			HUNG=1
			HUNG_CMD="$*"
			return 124
		fi
		read -r -t 0.02 -u 9 _
	done
	# A command this slow is worth knowing about even when it ends.
	[ $((${EPOCHREALTIME/./} - end + secs * 1000000)) -lt 30000000 ] ||
		g_note "slow: $* took $(((${EPOCHREALTIME/./} - end) / 1000000 + secs)) s"
	wait "$pid"
}
# status NAME: MODE and REASON from the device's status line.
status() {
	local st
	st=$(dmsetup status "$1" 2>&1)
	MODE=
	REASON=
	read -r _ _ _ MODE _ _ _ _ _ _ _ _ REASON _ <<<"$st"
}
kmsg() {
	dmesg -c >"$T/k.out"
	[ ! -s "$T/k.out" ] || cat "$T/k.out" >>"$T/k.case"
}
# said: the kernel logged a parallax or dm table error since the last kmsg.
said() { kmsg; grep -Eq 'device-mapper: (parallax|table)' "$T/k.out"; }

# rd DEV: read its first 16 MiB (an attached VDI may be GiBs of holes);
# a failed block does not stop the read.
rd() {
	wd 300 dd if="$1" of=/dev/null bs=4M count=4 iflag=direct conv=noerror status=none
	[ "$HUNG" = 0 ] || return
	[ ! -s "$T/w.out" ] || IOERR="$IOERR read"
}

# wr DEV BLOCK: write a 4 KiB block.
wr() {
	wd 120 dd if="$T/pat" of="$1" bs=4096 seek="$2" count=1 oflag=direct conv=notrunc status=none ||
		IOERR="$IOERR write$2"
}

# io NAME RW: with RW, writes (one of 512 bytes), a snapshot and more
# writes; then a full read.  Sets IOERR when anything failed.
io() {
	local dev=/dev/mapper/$1 b
	if [ "$2" = rw ]; then
		for b in 1 517 3590; do
			wr "$dev" $b
			[ "$HUNG" = 0 ] || return
		done
		wd 120 dd if="$T/pat" of="$dev" bs=512 seek=$((20 * 8 + 3)) count=1 oflag=direct conv=notrunc \
			status=none || IOERR="$IOERR write512"
		[ "$HUNG" = 0 ] || return
		if wd 120 dmsetup message "$1" 0 snapshot; then
			NOTE="$NOTE snapshot $(<"$T/w.out")"
		else
			[ "$HUNG" = 0 ] || return
			status "$1"
			said || [ "$MODE" = failed ] || BAD="$BAD; snapshot failed with no kernel message"
			IOERR="$IOERR snapshot"
		fi
		for b in 5 517; do
			wr "$dev" $b
			[ "$HUNG" = 0 ] || return
		done
	fi
	rd "$dev"
}

# after_io NAME WHAT: errors must show in the status.
after_io() {
	status "$1"
	if [ -n "$IOERR" ] || [ "$MODE" = failed ]; then
		if [ "$MODE" = failed ] && [ -n "$REASON" ] && [ "$REASON" != - ]; then
			NOTE="$NOTE; $2:${IOERR:- no I/O error} -> failed $REASON"
		else
			BAD="$BAD; $2: I/O errors ($IOERR) but status mode '$MODE' reason '$REASON'"
		fi
	else
		NOTE="$NOTE; $2: I/O ok, status $MODE"
	fi
}

# table NAME TABLE WHAT: load a table; refused needs a kernel message.
table() {
	kmsg
	if wd 120 dmsetup --noudevsync create "$1" --table "$2"; then
		dmsetup mknodes "$1"
		return 0
	fi
	[ "$HUNG" = 0 ] || return 1
	if said; then
		NOTE="$NOTE; $3 refused: $(grep -E -m1 'device-mapper: (parallax|table)' "$T/k.out" |
			sed 's/^\[[ 0-9.]*\] //; s/device-mapper: //')"
	else
		BAD="$BAD; $3 refused with no kernel message: $(tail -1 "$T/w.out")"
	fi
	dmsetup --noudevsync remove "$1" >/dev/null 2>&1
	return 1
}

remove() {
	wd 300 dmsetup --noudevsync remove "$1" || BAD="$BAD; removing $1 failed: $(tail -1 "$T/w.out")"
}

head -c 4096 /dev/urandom >"$T/pat"
dmesg -c >/dev/null
exec 3<"$T/manifest.boot"
while IFS=$'\t' read -r -u 3 i vdi snap _ name must_fail; do
	[ "$HUNG" = 0 ] || { g_not_ok "case $i: not run, an earlier case hung"; continue; }
	echo "corrupt.sh: case $i: $name" >/dev/kmsg
	: >"$T/k.case"
	BAD=
	NOTE=
	st=/dev/mapper/p$i
	off=$(((i - FIRST) * MB * 2048))
	if ! dmsetup --noudevsync create "p$i" --table "0 $((MB * 2048)) linear /dev/ubda $off" >"$T/g.out" 2>&1; then
		g_not_ok "case $i: dm-linear slice: $(cat "$T/g.out")"
		continue
	fi
	dmsetup mknodes "p$i"
	# 1. A read-only table straight from dmsetup: nothing may be written.
	IOERR=
	if table "r$i" "0 $L parallax $st $vdi 1 read_only" "read-only table"; then
		io "r$i" ro
		[ "$HUNG" = 0 ] && after_io "r$i" "read-only" && remove "r$i"
	fi
	# 2. A snapshot, read-only.
	if [ "$HUNG" = 0 ] && [ "$snap" != 0 ]; then
		IOERR=
		if table "s$i" "0 $L parallax $st $vdi 3 read_only snapshot_seq $snap" "snapshot $vdi@$snap"; then
			io "s$i" ro
			[ "$HUNG" = 0 ] && after_io "s$i" "snapshot" && remove "s$i"
		fi
	fi
	# 3. parallax attach (claims the VDI and fresh extents), then writes
	# and a snapshot message.
	if [ "$HUNG" = 0 ]; then
		IOERR=
		kmsg
		if wd 300 "$P" attach "$st" "$vdi" --name "w$i"; then
			dmsetup message "w$i" 0 extents >"$T/ext$i" 2>&1
			io "w$i" rw
			if [ "$HUNG" = 0 ]; then
				after_io "w$i" "attach"
				[ "$must_fail" = 0 ] || [ "$MODE" = failed ] ||
					BAD="$BAD; a bad link on the path of the I/O, but the device did not fail: mode $MODE"
				wd 300 "$P" detach "w$i" ||
					BAD="$BAD; detach failed: $(tail -1 "$T/w.out")"
			fi
		elif [ "$HUNG" = 0 ]; then
			if grep -q '^parallax: ' "$T/w.out"; then
				NOTE="$NOTE; attach refused: $(grep -m1 '^parallax: ' "$T/w.out")"
				! said || NOTE="$NOTE ($(grep -E -m1 'device-mapper: (parallax|table)' "$T/k.out" |
					sed 's/^\[[ 0-9.]*\] //; s/device-mapper: //'))"
			else
				BAD="$BAD; attach failed without a message: $(tail -2 "$T/w.out" | tr '\n' ' ')"
			fi
		fi
	fi
	[ "$HUNG" = 0 ] && dmsetup --noudevsync remove "p$i" >/dev/null 2>&1
	kmsg
	if grep -Eq "$SPLAT" "$T/k.case"; then
		BAD="$BAD; kernel splat: $(grep -E -m1 "$SPLAT" "$T/k.case")"
	fi
	[ "$HUNG" = 0 ] || BAD="$BAD; hang: '$HUNG_CMD' still running after its timeout"
	[ "$HUNG" = 0 ] || cat "$T/stuck.out" >>"$T/results"
	if [ -z "$BAD" ]; then
		g_ok "case $i: $name:$NOTE"
	else
		g_not_ok "case $i: $name:${BAD#;}"
		g_note "case $i:$NOTE"
		grep -v 'corrupt.sh: case' "$T/k.case" | tail -8 | sed 's/^/# /' >>"$T/results"
	fi
done
GUEST

TRIED=0
FIRST=1
NT=$($CPY ntargeted "$PR")
# boot_batch NTARGETED NRANDOM: make the cases, check them offline, boot.
boot_batch() {
	local nt=$1 nr=$2 last i vdi snap re name rc disk=$T/disk.img
	: >"$T/manifest.boot"
	rm -f "$T"/case* "$disk"
	last=$((FIRST + nt + nr - 1))
	truncate -s $(((last - FIRST + 1) * MB))M "$disk"
	$CPY cases "$PR" "$T" "$SEED" "$FIRST" "$nt" "$nr" "$disk" "$MB" </dev/null || {
		not_ok "making damaged stores (corrupt.py cases)"
		return 1
	}
	# CORRUPT_ONLY=REGEX: only the cases whose name matches (debugging).
	awk -F'\t' -v f="$FIRST" -v only="${CORRUPT_ONLY:-}" \
		'$1 >= f && (only == "" || $5 ~ only)' "$T/manifest" >"$T/manifest.boot"
	while IFS=$'\t' read -r i vdi snap re name _; do
		# Host: parallax check must fail and name the damage.
		timeout 60 "$P" check "$T/case$i.img" >"$T/check.out" 2>&1 </dev/null
		rc=$?
		rm -f "$T/case$i.img"
		if [ "$re" = - ]; then
			[ "$rc" -le 1 ] && ok "check of case $i ($name) ran: $(tail -1 "$T/check.out")" ||
				not_ok "check of case $i ($name): status $rc"
		elif [ "$re" = RANDOM ]; then
			if [ "$rc" = 0 ] || { [ "$rc" = 1 ] && grep -Eq '(^|: )block [0-9]+: |in block [0-9]+\)' "$T/check.out"; }; then
				ok "check of case $i ($name): $(grep -E -m1 '(^|: )block [0-9]+: |in block [0-9]+\)' "$T/check.out" || tail -1 "$T/check.out")"
			else
				not_ok "check of case $i ($name): status $rc, names no block"
				sed 's/^/# /' "$T/check.out" | head -5
				echo "# reproduce: FUZZ_SEED=$SEED tests/kernel/corrupt.sh"
			fi
		elif [ "$rc" = 1 ] && grep -Eq -- "$re" "$T/check.out"; then
			ok "check finds case $i ($name): $(grep -E -m1 -- "$re" "$T/check.out")"
		else
			not_ok "check finds case $i ($name): status $rc, wanted /$re/"
			sed 's/^/# /' "$T/check.out" | head -5
		fi
	done <"$T/manifest.boot"
	export FIRST
	# The cases were just written (about 2 GiB): write them back before
	# the boot, or the host's writeback stalls the guest's disk reads.
	sync "$disk"
	kt_boot "corrupt: cases $FIRST..$last" --timeout 1200 --disk "$disk" -- bash "$T/guest.sh"
	rc=$?
	[ "$rc" = 0 ] || echo "# reproduce: FUZZ_SEED=$SEED tests/kernel/corrupt.sh (cases $FIRST..$last)"
	# Host: nothing written outside what each device may write.
	$CPY verify "$PR" "$T" "$T/manifest.boot" "$disk" "$FIRST" "$MB" >"$T/v.out" 2>&1 </dev/null ||
		not_ok "corrupt.py verify: $(tail -3 "$T/v.out")"
	while IFS=$'\t' read -r res i why; do
		if [ "$res" = ok ]; then
			ok "case $i: no write outside the device's extents: $why"
		else
			not_ok "case $i ($(awk -F'\t' -v i="$i" '$1 == i { print $5 }' "$T/manifest.boot")): $why"
			echo "# reproduce: FUZZ_SEED=$SEED tests/kernel/corrupt.sh (case $i)"
		fi
	done < <(grep -E '^(ok|bad)'$'\t' "$T/v.out")
	TRIED=$((TRIED + nt + nr))
	FIRST=$((last + 1))
	return "$rc"
}

# Quick mode: every targeted case and a few random ones, in one boot.
boot_batch "$NT" "${CORRUPT_RANDOM:-8}"
if [ -n "${STRESS_SECONDS:-}" ]; then
	end=$((KT_START + STRESS_SECONDS))
	while [ "$(date +%s)" -lt "$end" ]; do
		boot_batch 0 40 || break
	done
fi
echo "# stress: corruptions_tried=$TRIED"
[ "$FAILED" = 0 ] || echo "# reproduce: FUZZ_SEED=$SEED tests/kernel/corrupt.sh"
finish
