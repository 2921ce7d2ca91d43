# SPDX-License-Identifier: GPL-2.0
# Shared helpers for the dm-parallax kernel tests (sourced, not run).
#
# A test script prepares blockstores on the host with the parallax CLI,
# boots the UML test kernel once (scripts/uml-run) to run a guest script
# that attaches VDIs and does I/O, and then verifies the stores offline.
#
# TAP: every check prints "ok N - desc" or "not ok N - desc".  Checks made
# inside the guest are appended to $T/results by g_ok/g_not_ok and
# numbered by the host when the guest has finished (kt_boot).
#
# The same file is sourced by the guest scripts (KT_GUEST=1): there, only
# the g_* helpers and the variables are used.

KT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$KT_DIR/../.." && pwd)
[ -n "${KT_GUEST:-}" ] || P=$TOP/userspace/parallax
UMLRUN=$TOP/scripts/uml-run
KTPY="/usr/bin/python3 $KT_DIR/kt.py"
export KT_DIR TOP P

# fio queue depth: the UML kernel's stacks overflow with iodepth > 1 until
# scripts/uml-kernel.config raises CONFIG_KERNEL_STACK_ORDER.
if grep -q '^CONFIG_KERNEL_STACK_ORDER=[3-9]' "$TOP/scripts/uml-kernel.config" 2>/dev/null; then
	FIO_ENGINE="--ioengine=libaio --iodepth=16"
else
	FIO_ENGINE="--ioengine=psync --iodepth=1"
fi
export FIO_ENGINE

if [ -z "${KT_GUEST:-}" ]; then
	# ---------------- host side ----------------
	# Plain private builds of the tools (scripts/build-tools says why).
	if [ -n "${PARALLAX:-}" ]; then
		P=$PARALLAX
	elif KT_TOOLS=$("$TOP/scripts/build-tools"); then
		P=$KT_TOOLS/parallax
	else
		echo "not ok 1 - build plain parallax tools (scripts/build-tools)"
		exit 1
	fi
	export P
	T=$(mktemp -d /tmp/plx-kt.XXXXXX)
	export T
	export PARALLAX_RUN_DIR=$T/run
	mkdir -p "$T/run"
	[ -n "${KT_KEEP:-}" ] || trap 'rm -rf "$T"' EXIT
	# The guest sees only $T of /tmp.
	mkdir -p "$T/bin" && cp "$P" "$T/bin/parallax" && P=$T/bin/parallax
	[ -z "${KT_TOOLS:-}" ] ||
		cp "$KT_TOOLS/parallax-lockd" "$KT_TOOLS/parallaxd" "$T/bin/"
	export P
	: >"$T/results"
	N=0
	FAILED=0
	KT_START=$(date +%s)
fi

ok() {
	N=$((N + 1))
	echo "ok $N - $*"
}

not_ok() {
	N=$((N + 1))
	FAILED=$((FAILED + 1))
	echo "not ok $N - $*"
}

# check DESC CMD...: the command must succeed (host side).
check() {
	local desc=$1
	shift
	if "$@" >"$T/out" 2>&1; then
		ok "$desc"
	else
		not_ok "$desc"
		sed 's/^/# /' "$T/out" | head -20
	fi
}

# check_clean DESC STORE: parallax check reports no problem.
check_clean() {
	if "$P" check "$2" >"$T/check.out" 2>&1; then
		ok "$1: $(tail -1 "$T/check.out")"
	else
		not_ok "$1"
		sed 's/^/# /' "$T/check.out" | head -20
	fi
}

# export_cmp DESC STORE OBJ FILE: parallax export of OBJ equals FILE.
export_cmp() {
	local desc=$1 store=$2 obj=$3 want=$4
	rm -f "$T/exp.img"
	if ! "$P" export "$store" "$obj" "$T/exp.img" >"$T/out" 2>&1; then
		not_ok "$desc (export failed)"
		sed 's/^/# /' "$T/out" | head -5
	elif cmp "$T/exp.img" "$want" >"$T/out" 2>&1; then
		ok "$desc"
	else
		not_ok "$desc"
		sed 's/^/# /' "$T/out" | head -5
	fi
}

# new_store FILE [SIZE]: sparse file formatted with 4 MiB extents.
new_store() {
	rm -f "$1"
	truncate -s "${2:-1G}" "$1"
	"$P" format "$1" --extent-size 4M >/dev/null
}

# kt_boot DESC [--want STATUS] [uml-run options] -- COMMAND...: boot the
# guest from $T and report its checks, then whether uml-run ended with
# STATUS (default 0: the guest finished and the kernel stayed clean; 137
# for a --kill-after power cut with a clean kernel log).
kt_boot() {
	local desc=$1 want=0 rc line t0
	shift
	if [ "${1:-}" = --want ]; then
		want=$2
		shift 2
	fi
	t0=$(date +%s)
	: >"$T/results"
	(cd "$T" && KT_GUEST=1 "$UMLRUN" "$@") >"$T/uml.log" 2>&1
	rc=$?
	while IFS= read -r line; do
		case $line in
		"ok - "*) ok "${line#ok - }" ;;
		"not ok - "*) not_ok "${line#not ok - }" ;;
		"# "*) echo "$line" ;;
		esac
	done <"$T/results"
	if [ "$rc" = "$want" ]; then
		ok "$desc: uml-run status $rc, no kernel splat ($(($(date +%s) - t0)) s)"
		return 0
	fi
	not_ok "$desc: uml-run status $rc, want $want (125 = kernel splat or crash)"
	grep -v '^+' "$T/uml.log" | tail -60 | sed 's/^/# /'
	return 1
}

# blocks_old_or_new IMAGE OFFSET OLD NEW: every 4 KiB block of IMAGE at
# OFFSET (bytes) over the length of NEW equals the block of OLD or of NEW.
blocks_old_or_new() {
	/usr/bin/python3 - "$@" <<'EOF'
import sys
img, off, old, new = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
with open(img, "rb") as f:
    f.seek(off)
    got = f.read(len(open(new, "rb").read()))
o, n = open(old, "rb").read(), open(new, "rb").read()
bad = newc = 0
for i in range(0, len(n), 4096):
    g = got[i:i + 4096]
    if g == n[i:i + 4096]:
        newc += 1
    elif g != o[i:i + 4096]:
        bad += 1
print("%d of %d blocks new, %d neither old nor new" % (newc, len(n) // 4096, bad))
sys.exit(1 if bad else 0)
EOF
}

finish() {
	echo "# runtime $(($(date +%s) - KT_START)) s"
	echo "1..$N"
	[ "$FAILED" = 0 ]
	exit $?
}

# ---------------- guest side ----------------
if [ -n "${KT_GUEST:-}" ]; then
	# No udev in the guest: bash process substitution needs /dev/fd.
	[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
	KT_T0=$SECONDS
fi
# Results go to $T/results; commentary lines start with "# ".
g_ok() { echo "ok - $* [$((SECONDS - KT_T0))s]" >>"$T/results"; }
g_not_ok() { echo "not ok - $* [$((SECONDS - KT_T0))s]" >>"$T/results"; }
g_note() { echo "# $*" >>"$T/results"; }

# g_check DESC CMD...: the command must succeed.
g_check() {
	local desc=$1
	shift
	if "$@" >"$T/g.out" 2>&1; then
		g_ok "$desc"
	else
		g_not_ok "$desc (status $?)"
		tail -15 "$T/g.out" | sed 's/^/# /' >>"$T/results"
	fi
}

# g_fail DESC CMD...: the command must fail.
g_fail() {
	local desc=$1
	shift
	if "$@" >"$T/g.out" 2>&1; then
		g_not_ok "$desc (succeeded)"
	else
		g_ok "$desc: $(tail -1 "$T/g.out")"
	fi
}

# g_fio DESC ARGS...: an fio job on $KT_FIO_DEV with crc32c verification, direct I/O.
g_fio() {
	local desc=$1
	shift
	# shellcheck disable=SC2086
	local tag=${KT_FIO_TAG:-0}
	if fio --name="kt$tag" --filename="$KT_FIO_DEV" --direct=1 $FIO_ENGINE --verify=crc32c \
		--verify_fatal=1 --do_verify=1 --exitall_on_error=1 --verify_state_save=0 \
		--output="$T/fio$tag.out" "$@" >"$T/fio$tag.err" 2>&1 &&
		! grep -q 'verify: bad\|err=[ ]*[1-9]' "$T/fio$tag.out"; then
		g_ok "$desc"
	else
		g_not_ok "$desc"
		cat "$T/fio$tag.err" "$T/fio$tag.out" | grep -v '^ *$' | head -25 | sed 's/^/# /' >>"$T/results"
	fi
}

# g_status NAME FIELD: a field of "dmsetup status" after the target name
# (1 mode, 2 data allocated, 3 metadata allocated, 4 data free,
# 5 metadata free, 6 extents, 7 snapshots, 8 hits, 9 misses, 10 reason,
# 11 lock manager state).
g_status() {
	dmsetup status "$1" | awk -v f="$2" '{ print $(3 + f) }'
}

# g_read DEV OFF LEN FILE: read a byte range with O_DIRECT (4 KiB units).
g_read() {
	dd if="$1" of="$4" bs=4096 skip=$(($2 / 4096)) count=$(($3 / 4096)) iflag=direct status=none
}
