#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Power cuts during a workload of stamped writes by several threads,
# fsyncs, O_DSYNC (FUA) writes and snapshots every few milliseconds
# (powercut.py work), in two kinds:
#  - kill: the UML kernel is SIGKILLed from the host at a random moment
#    (scripts/uml-run --kill-after).  ubd hands every write to the host
#    before completing it, so this loses what the target had not yet
#    written (commit nodes it was holding back), not the device's cache;
#  - flakey: the store sits on a dm-flakey device that is switched, at a
#    random moment, to drop every write (as xfstests' common/dmflakey
#    does); the guest then detaches and powers off cleanly, but nothing
#    written after the switch reached the store.
# After each cut, on the host: parallax check is clean; every snapshot
# in the snapshot log equals a prefix of each writer's writes and holds
# every write completed before it was asked for; every snapshot returned
# before the cut is there; each block of the VDI is the version made
# durable (flush, FUA, snapshot) before the cut or a later one, and is a
# valid stamp or zero (powercut.py verify).  The next boot re-attaches
# the VDI, reads back what the host exported and runs fio on it.
#
# POWERCUT_SEED=N repeats a run's choices (the moments of the cuts; what
# the guest's threads get done by then varies); STRESS_SECONDS=S cuts for
# about S seconds instead of the quick run (four cuts, or the kinds listed
# in POWERCUT_KINDS, e.g. "flakey flakey").
set -u
source "$(dirname "$0")/lib.sh"

SEED=${POWERCUT_SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
echo "# POWERCUT_SEED=$SEED"
RANDOM=$SEED
PC="/usr/bin/python3 $KT_DIR/powercut.py"
NBLOCKS=1024		# stamped blocks: the first 4 MiB of each 6 MiB VDI
THREADS=4
QUICK_KINDS=${POWERCUT_KINDS:-kill flakey kill kill}
[ -n "${STRESS_SECONDS:-}" ] || STRESS_SECONDS=
CUTS=0
STOP=

S=$T/store.img
L=$T/log.img

# Everything the guest needs travels in the environment.
export NBLOCKS THREADS

cat >"$T/guest.sh" <<'GUEST'
set -u
KT_GUEST=1 source "$KT_DIR/lib.sh"
PC="/usr/bin/python3 $KT_DIR/powercut.py"
# g_sync: make the results so far survive a kill (hostfs write-back).
g_sync() { sync "$T/results"; }
# bounded SECS CMD...: run CMD, but give up on it after SECS seconds and
# dump the blocked tasks to the console, which fails the run as a splat
# with the stacks in its output.
bounded() {
	local secs=$1 pid i
	shift
	"$@" &
	pid=$!
	for ((i = 0; i < secs * 10; i++)); do
		kill -0 $pid 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 $pid 2>/dev/null; then
		g_not_ok "hangs: $* ($secs s)"
		ps -eo pid,stat,wchan:32,args | grep -v '\[.*\]$' | sed 's/^/# /' >>"$T/results"
		for t in /proc/$pid/task/*; do
			echo "# thread ${t##*/}: $(cut -d' ' -f3 "$t/stat") syscall $(cut -d' ' -f1 "$t/syscall")"
			sed 's/^/#   /' "$t/stack" 2>/dev/null
		done >>"$T/results"
		kill -USR1 $pid
		echo w >/proc/sysrq-trigger
		sleep 2
		return 124
	fi
	wait $pid
}
if [ -n "$PREV" ]; then
	if "$P" attach /dev/ubda "$PREV" >"$T/g.out" 2>&1; then
		g_ok "re-attach $PREV after the cut"
		g_read "/dev/mapper/$PREV" 0 $((NBLOCKS * 4096)) "$T/prev.read"
		if cmp -s "$T/prev.read" "$T/prev.img"; then
			g_ok "$PREV reads back what the host exported after the cut"
		else
			g_not_ok "$PREV reads back what the host exported after the cut"
		fi
		KT_FIO_DEV=/dev/mapper/$PREV g_fio "I/O on $PREV after the cut: fio crc32c, 2 MiB" \
			--rw=randwrite --bs=4k --offset=4M --size=2M
		g_check "detach $PREV" "$P" detach "$PREV"
	else
		g_not_ok "re-attach $PREV after the cut"
		sed 's/^/# /' "$T/g.out" >>"$T/results"
	fi
	g_sync
fi
[ -n "$VDI" ] || exit 0
dev=/dev/ubda
if [ "$KIND" = flakey ]; then
	g_check "flakey device over the store" dmsetup --noudevsync create fl \
		--table "0 $(blockdev --getsz /dev/ubda) linear /dev/ubda 0"
	dmsetup mknodes
	dev=/dev/mapper/fl
fi
if ! "$P" attach "$dev" "$VDI" --data-extents 6 --metadata-extents 2 >"$T/g.out" 2>&1; then
	g_not_ok "attach $VDI on $dev"
	sed 's/^/# /' "$T/g.out" >>"$T/results"
	g_sync
	exit 1
fi
g_sync
if [ "$KIND" = kill ]; then
	# Runs until the host kills the kernel.
	$PC work "/dev/mapper/$VDI" "$VDI" /dev/ubdb $NBLOCKS 100 $THREADS "$WSEED" \
		"$MARK" >"$T/work.out" 2>&1
	g_not_ok "the workload ended before the power cut: $(tail -1 "$T/work.out")"
	exit 1
fi
# switch_flakey: when the workload asks, switch fl to drop every write.
switch_flakey() {
	local sz

	sz=$(blockdev --getsz /dev/ubda)
	while [ ! -e "$T/fl.req" ]; do
		sleep 0.01
	done
	dmsetup --noudevsync suspend --nolockfs fl &&
		dmsetup --noudevsync load fl --table "0 $sz flakey /dev/ubda 0 0 1 1 drop_writes" &&
		dmsetup --noudevsync resume fl
	: >"$T/fl.done"
}
rm -f "$T/fl.req" "$T/fl.done"
switch_flakey >"$T/switch.out" 2>&1 &
bounded 40 $PC work "/dev/mapper/$VDI" "$VDI" /dev/ubdb $NBLOCKS "$WSECS" $THREADS \
	"$WSEED" "$MARK" "$T/fl" "$DROP" >"$T/work.out" 2>&1
rc=$?
sed 's/^/# switch: /' "$T/switch.out" >>"$T/results"
sed 's/^/# /' "$T/work.out" >>"$T/results"
[ $rc = 124 ] && exit 1
[ $rc = 0 ] && g_ok "workload on flakey, writes dropped from $DROP s" ||
	g_not_ok "workload on flakey, writes dropped from $DROP s"
# Teardown after the drop: errors are allowed, a kernel splat is not.
bounded 30 "$P" detach "$VDI" >"$T/g.out" 2>&1
rc=$?
[ $rc = 124 ] && exit 1
[ $rc = 0 ] || g_note "detach after the drop: $(tail -1 "$T/g.out")"
bounded 30 dmsetup --noudevsync remove fl >/dev/null 2>&1
rc=$?
[ $rc = 124 ] && exit 1
[ $rc = 0 ] || g_note "flakey device not removed"
exit 0
GUEST

# pc_boot DESC WANT [uml-run options] -- ...: kt_boot for a run that
# must end with uml-run status WANT (137: killed by --kill-after).
pc_boot() {
	local desc=$1 want=$2 rc line t0
	shift 2
	t0=$(date +%s)
	: >"$T/results"
	(cd "$T" && KT_GUEST=1 "$UMLRUN" "$@") >"$T/uml.log" 2>&1
	rc=$?
	while IFS= read -r line; do
		case $line in
		"ok - "*) ok "${line#ok - }" ;;
		"not ok - "*) not_ok "${line#not ok - }"; STOP=1 ;;
		"# "*) echo "$line" ;;
		esac
	done <"$T/results"
	if [ "$rc" = "$want" ]; then
		ok "$desc ($(($(date +%s) - t0)) s)"
		return 0
	fi
	not_ok "$desc: uml-run status $rc, want $want (125 = kernel splat or crash)"
	grep -v '^+' "$T/uml.log" | tail -40 | sed 's/^/# /'
	sed 's/^/# work: /' "$T/work.out" 2>/dev/null | tail -5
	STOP=1
	return 1
}

# ms_between LO HI: set SECS to a random number of milliseconds, as
# seconds.  Not a command substitution: bash reseeds RANDOM in subshells.
ms_between() {
	local ms=$(($1 + (RANDOM * 32768 + RANDOM) % ($2 - $1 + 1)))

	printf -v SECS '%d.%03d' $((ms / 1000)) $((ms % 1000))
}

new_chain() {
	new_store "$S" 4G
	PREV=
	CHAIN=0
}

# cut KIND: one boot that re-attaches the previous VDI and cuts a new one.
cut() {
	local kind=$1 delay='' what
	VDI=c$((CUTS + 1))
	"$P" create "$S" "$VDI" --size 6M >/dev/null
	rm -f "$L" "$T/mark" "$T/work.out"
	truncate -s 4M "$L"
	export PREV VDI KIND=$kind WSEED=$SEED.$CUTS MARK=$T/mark DROP='' WSECS=''
	if [ "$kind" = kill ]; then
		ms_between 50 2500
		delay=$SECS
		what="kill $delay s into the workload"
		pc_boot "cut $((CUTS + 1)): $what" 137 --timeout 150 --disk "$S" --disk "$L" \
			--kill-after "$delay" --kill-from "$T/mark" -- bash "$T/guest.sh"
	else
		ms_between 50 2000
		DROP=$SECS
		WSECS=$(echo "$DROP + 2.5" | bc)
		what="flakey drops writes from $DROP s into the workload"
		pc_boot "cut $((CUTS + 1)): $what" 0 --timeout 150 --no-leak-check \
			--disk "$S" --disk "$L" -- bash "$T/guest.sh"
	fi
	[ -z "$STOP" ] || return 1
	CUTS=$((CUTS + 1))
	CHAIN=$((CHAIN + 1))
	check_clean "cut $CUTS: store checks clean" "$S"
	if P=$P $PC verify "$S" "$VDI" "$L" >"$T/verify.out" 2>&1; then
		ok "cut $CUTS: snapshots complete, durable writes present, blocks old or new"
		cat "$T/verify.out"
	else
		not_ok "cut $CUTS ($what): snapshots complete, durable writes present, blocks old or new"
		cat "$T/verify.out"
		STOP=1
	fi
	if [ "$CUTS" = 1 ]; then
		# The checks can fail: a block older than its durable version,
		# and a torn block, in the same export.
		for inj in stale torn; do
			if P=$P $PC verify "$S" "$VDI" "$L" --inject $inj >"$T/out" 2>&1; then
				not_ok "the verifier misses a $inj block"
			else
				ok "the verifier catches a $inj block: $(head -2 "$T/out" | tail -1)"
			fi
		done
	fi
	rm -f "$T/exp.img"
	"$P" export "$S" "$VDI" "$T/exp.img" >/dev/null 2>&1
	head -c $((NBLOCKS * 4096)) "$T/exp.img" >"$T/prev.img"
	PREV=$VDI
	[ -z "$STOP" ]
}

# end_chain: the last VDI re-attaches and does I/O; the store checks clean.
end_chain() {
	[ -n "$PREV" ] || return 0
	export PREV VDI='' KIND=''
	pc_boot "re-attach after the last cut" 0 --timeout 120 --disk "$S" --disk "$L" \
		-- bash "$T/guest.sh"
	check_clean "store checks clean at the end" "$S"
}

new_chain
if [ -z "$STRESS_SECONDS" ]; then
	for kind in $QUICK_KINDS; do
		cut "$kind" || break
	done
else
	end=$(($(date +%s) + STRESS_SECONDS))
	while [ "$(date +%s)" -lt "$end" ]; do
		if [ $((RANDOM % 3)) = 0 ]; then kind='flakey'; else kind='kill'; fi
		cut "$kind" || break
		# Each cut claims 10 of a 4 GiB store's 1022 free extents, and
		# a crash releases none of them.
		if [ "$CHAIN" -ge 90 ]; then
			end_chain
			[ -z "$STOP" ] || break
			new_chain
		fi
	done
fi
[ -n "$STOP" ] || end_chain
echo "# stress: cuts_survived=$CUTS"
[ "$FAILED" = 0 ] || echo "# reproduce: POWERCUT_SEED=$SEED tests/kernel/powercut.sh"
finish
