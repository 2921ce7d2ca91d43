# SPDX-License-Identifier: GPL-2.0
# Shared helpers for the multi-host cluster tests (sourced, not run).
#
# A test boots several User-Mode Linux guests at once, all attached to ONE
# blockstore file (ubd shared mode, no host lock), on a private network:
#
#   network namespace $NS (plxc-<pid>)
#     br0 10.77.0.1/24 (the host side: parallax-lockd, parallax locks)
#      +- tap1 -- guest 1: eth0 10.77.0.11, agent.py on :7700
#      +- tap2 -- guest 2: eth0 10.77.0.12, agent.py on :7700
#      ...
#
# Nothing touches the host's real network: the bridge, the taps and every
# process that talks to the guests live in the namespace, which the EXIT
# trap deletes (after stopping the guests and the lock manager).
#
# "on I CMD" runs shell text CMD in guest I through its agent and returns
# CMD's status with its output on stdout.  "cl_halt I" stops guest I
# cleanly; uml-run's status then says whether its kernel log stayed clean
# (125 = splat: KASAN, lockdep, BUG, WARNING, leak...), which is a check.
#
# TAP: every check prints "ok N - desc" or "not ok N - desc".

CL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$CL_DIR/../.." && pwd)
UMLRUN=$TOP/scripts/uml-run
REXEC="/usr/bin/python3 $CL_DIR/rexec.py"
CL_NET=10.77.0
CL_LOCKD_PORT=7789
export CL_DIR TOP

# fio queue depth: see tests/kernel/lib.sh.
if grep -q '^CONFIG_KERNEL_STACK_ORDER=[3-9]' "$TOP/scripts/uml-kernel.config" 2>/dev/null; then
	FIO_ENGINE="--ioengine=libaio --iodepth=16"
else
	FIO_ENGINE="--ioengine=psync --iodepth=1"
fi
export FIO_ENGINE

N=0
FAILED=0
CL_START=$(date +%s)
NS=plxc-$$
T=$(mktemp -d /tmp/plxc.XXXXXX)
export T
# Guest I's uml-run pid, console/output log and exit status.
declare -A CL_PID=() CL_RC=()
CL_LOCKD_PID=
CL_NS_UP=

ok() {
	N=$((N + 1))
	echo "ok $N - $*"
}

not_ok() {
	N=$((N + 1))
	FAILED=$((FAILED + 1))
	echo "not ok $N - $*"
}

note() {
	echo "# $*"
}

# comment FILE: a file's last lines as TAP comments.
comment() {
	tail -n "${2:-15}" "$1" 2>/dev/null | sed 's/^/# /'
}

finish() {
	echo "# runtime $(($(date +%s) - CL_START)) s"
	echo "1..$N"
	[ "$FAILED" = 0 ]
	exit $?
}

# bail DESC: a check failed that the rest of the test depends on.
bail() {
	not_ok "$*"
	finish
}

# ---------------- binaries ----------------

# The tools run both on the host side and in the guests.  The guests cannot
# run sanitizer builds, and other engineers may rebuild userspace/ while a
# test runs, so the tests use scripts/build-tools' plain private builds
# ($PARALLAX_TOOLS_DIR instead, when set), copied into the run directory.
mkdir -p "$T/bin"
if [ -n "${PARALLAX_TOOLS_DIR:-}" ]; then
	CL_TOOLS=$PARALLAX_TOOLS_DIR
elif ! CL_TOOLS=$("$TOP/scripts/build-tools" 2>"$T/build-tools.log"); then
	echo "# scripts/build-tools failed: $(tail -n 3 "$T/build-tools.log")"
	CL_TOOLS=
fi
for tool in parallax parallax-lockd parallaxd; do
	if [ -n "$CL_TOOLS" ] && [ -f "$CL_TOOLS/$tool" ] && [ -x "$CL_TOOLS/$tool" ]; then
		cp "$CL_TOOLS/$tool" "$T/bin/$tool"
	fi
done
P=$T/bin/parallax
LOCKD=$T/bin/parallax-lockd
PARALLAXD=$T/bin/parallaxd
export PATH=$T/bin:$PATH
export P
# Host-side tools keep their state apart from the host's /run/parallax.
export PARALLAX_RUN_DIR=$T/run
mkdir -p "$T/run"

# have TOOL...: every named tool was built.
have() {
	local t
	for t in "$@"; do
		[ -x "$T/bin/$t" ] || return 1
	done
}

# ---------------- network ----------------

# cl_net NGUESTS: the namespace, its bridge and one tap per guest.
cl_net() {
	local i
	ip netns add "$NS" || return 1
	CL_NS_UP=1
	ip -n "$NS" link set lo up &&
	ip -n "$NS" link add br0 type bridge &&
	ip -n "$NS" addr add "$CL_NET.1/24" dev br0 &&
	ip -n "$NS" link set br0 up || return 1
	for i in $(seq 1 "$1"); do
		ip -n "$NS" tuntap add "tap$i" mode tap &&
		ip -n "$NS" link set "tap$i" master br0 &&
		ip -n "$NS" link set "tap$i" up || return 1
	done
}

# in_ns CMD...: run a host-side command inside the namespace.
in_ns() {
	ip netns exec "$NS" "$@"
}

# ---------------- guests ----------------

# cl_boot I HOSTID [uml-run options]: boot guest I in the background, on
# tap I, with the store as its first disk (/dev/ubda), shared.
cl_boot() {
	local i=$1 host=$2 mac
	shift 2
	mac=$(printf 'fe:fd:0a:4d:00:%02x' $((10 + i)))
	CL_RC[$i]=
	(cd "$T" && exec ip netns exec "$NS" "$UMLRUN" \
		--timeout "${CL_UML_TIMEOUT:-1200}" \
		--shared-disk "$STORE" --net "tuntap,tap$i,$mac" "$@" -- \
		bash "$CL_DIR/guest.sh" "$i" "$host") >"$T/uml$i.log" 2>&1 &
	CL_PID[$i]=$!
}

# cl_wait I SECS: guest I's agent answers.
cl_wait() {
	in_ns $REXEC "$CL_NET.$((10 + $1))" --wait "$2"
}

# cl_boot_wait DESC I HOSTID: boot and wait; a check.
cl_boot_wait() {
	local desc=$1 i=$2 t0=$SECONDS
	cl_boot "$i" "$3"
	if cl_wait "$i" "${CL_BOOT_WAIT:-180}"; then
		ok "$desc: guest $i (host $3) is up ($((SECONDS - t0)) s)"
	else
		not_ok "$desc: guest $i (host $3) never answered"
		comment "$T/uml$i.log" 30
		return 1
	fi
}

# on I CMD: run shell text CMD in guest I; its output on stdout, its status
# (124 if it ran longer than $ON_TIMEOUT, default 300 s; 255 if the agent
# cannot be reached).
on() {
	local i=$1
	shift
	in_ns $REXEC "$CL_NET.$((10 + i))" --timeout "${ON_TIMEOUT:-300}" -- "$*"
}

# g_check DESC I CMD: CMD must succeed in guest I.
g_check() {
	local desc=$1 i=$2
	shift 2
	if on "$i" "$*" >"$T/out" 2>&1; then
		ok "$desc"
	else
		not_ok "$desc (status $?)"
		comment "$T/out"
	fi
}

# g_fail DESC I CMD: CMD must fail in guest I.
g_fail() {
	local desc=$1 i=$2
	shift 2
	if on "$i" "$*" >"$T/out" 2>&1; then
		not_ok "$desc (succeeded)"
		comment "$T/out"
	else
		ok "$desc: $(tail -n 1 "$T/out")"
	fi
}

# bg NAME CMD...: run a check (a function printing TAP lines) in the
# background; bg_wait NAME reports its lines in order.  (A check run with
# & directly would number and count its result in a subshell.)
declare -A CL_BG=()
bg() {
	local name=$1
	shift
	("$@") >"$T/bg.$name" 2>&1 &
	CL_BG[$name]=$!
}

bg_wait() {
	local line
	wait "${CL_BG[$1]}"
	while IFS= read -r line; do
		case $line in
		"ok "*) ok "${line#* - }" ;;
		"not ok "*) not_ok "${line#* - }" ;;
		*) echo "$line" ;;
		esac
	done <"$T/bg.$1"
	unset "CL_BG[$1]"
}

# check DESC CMD...: a host-side command (run in the namespace) must succeed.
check() {
	local desc=$1
	shift
	if in_ns "$@" >"$T/out" 2>&1; then
		ok "$desc"
	else
		not_ok "$desc (status $?)"
		comment "$T/out"
	fi
}

# uml_pids I: the UML kernel processes of guest I (descendants of its
# uml-run named "linux").
uml_pids() {
	local todo=${CL_PID[$1]:-} p kids out=
	while [ -n "$todo" ]; do
		set -- $todo
		p=$1
		shift
		todo="$*"
		kids=$(ps -o pid= --ppid "$p" 2>/dev/null | tr -d ' ' | tr '\n' ' ')
		todo="$todo $kids"
		todo=${todo# }
		if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = linux ]; then
			out="$out $p"
		fi
	done
	echo $out
}

# cl_kill I: SIGKILL guest I's kernel, as a host crash would; its uml-run
# then exits with a failure status, which is expected and not a check.
cl_kill() {
	local i=$1 p
	for p in $(uml_pids "$i"); do
		# UML makes itself a session leader: its helper processes
		# share its process group.
		kill -KILL -- "-$(ps -o pgid= -p "$p" | tr -d ' ')" 2>/dev/null ||
			kill -KILL "$p" 2>/dev/null
	done
	wait "${CL_PID[$i]}" 2>/dev/null
	CL_RC[$i]=killed
	unset "CL_PID[$i]"
}

# cl_halt I: stop guest I through its agent and wait for uml-run.  A check:
# the guest must power off and its kernel log must be clean.
cl_halt() {
	local i=$1 rc t=0
	[ -n "${CL_PID[$i]:-}" ] || return 0
	in_ns $REXEC "$CL_NET.$((10 + i))" --halt >/dev/null 2>&1
	while kill -0 "${CL_PID[$i]}" 2>/dev/null && [ $t -lt 120 ]; do
		sleep 1
		t=$((t + 1))
	done
	if kill -0 "${CL_PID[$i]}" 2>/dev/null; then
		kill -TERM "${CL_PID[$i]}" 2>/dev/null
	fi
	wait "${CL_PID[$i]}"
	rc=$?
	CL_RC[$i]=$rc
	unset "CL_PID[$i]"
	if [ "$rc" = 0 ]; then
		ok "guest $i powered off, kernel log clean"
	else
		not_ok "guest $i: uml-run status $rc (125 = kernel splat or crash, 124 = timeout)"
		grep -v '^+' "$T/uml$i.log" | tail -n 60 | sed 's/^/# /'
	fi
}

# ---------------- lock manager (host side, in the namespace) ----------------

# lockd_start: parallax-lockd on $CL_NET.1:$CL_LOCKD_PORT, serving $STORE.
lockd_start() {
	# "ip netns exec" execs the command, so $! is lockd's own pid (a shell
	# function run with & would leave a shell in between).
	ip netns exec "$NS" "$LOCKD" "$STORE" --listen "$CL_NET.1:$CL_LOCKD_PORT" \
		${CL_LEASE:+--lease "$CL_LEASE"} >>"$T/lockd.log" 2>&1 &
	CL_LOCKD_PID=$!
}

# lockd_ready SECS: lockd accepts connections (its challenge arrives).
lockd_ready() {
	local t=0
	while [ $t -lt $(($1 * 4)) ]; do
		kill -0 "$CL_LOCKD_PID" 2>/dev/null || return 1
		if in_ns /usr/bin/python3 -c '
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
s.settimeout(2)
sys.exit(0 if len(s.recv(16)) > 0 else 1)' "$CL_NET.1" "$CL_LOCKD_PORT" 2>/dev/null; then
			return 0
		fi
		sleep 0.25
		t=$((t + 1))
	done
	return 1
}

# lockd_kill [SIG]: stop the lock manager (default SIGKILL, as a crash).
lockd_kill() {
	[ -n "$CL_LOCKD_PID" ] || return 0
	kill "-${1:-KILL}" "$CL_LOCKD_PID" 2>/dev/null
	wait "$CL_LOCKD_PID" 2>/dev/null
	CL_LOCKD_PID=
}

# ---------------- NBD (optional second kind of shared storage) ----------------

CL_NBD_PORT=10809
CL_NBD_PID=

# have_nbd: nbd-server and nbd-client (Debian packages of the same names)
# are installed.
have_nbd() {
	command -v nbd-server >/dev/null && [ -x /usr/sbin/nbd-client ] ||
		[ -x /sbin/nbd-client ]
}

# nbd_start: nbd-server on the host side of the network, exporting $STORE
# as "store" to every guest.  It writes through to the file that lockd and
# the ubd disks use, so every path sees the same bytes.
nbd_start() {
	cat >"$T/nbd.conf" <<-EOF
	[generic]
		user = root
		group = root
		listenaddr = $CL_NET.1
		port = $CL_NBD_PORT
	[store]
		exportname = $STORE
		flush = true
		fua = true
	EOF
	# nbd-server's -d (no daemon) serves a single client and then stops
	# listening, so let it daemonize and take its pid from its pid file.
	ip netns exec "$NS" nbd-server -C "$T/nbd.conf" -p "$T/nbd.pid" \
		>>"$T/nbd.log" 2>&1 || return 1
	local t=0
	while [ ! -s "$T/nbd.pid" ] && [ $t -lt 40 ]; do
		sleep 0.25
		t=$((t + 1))
	done
	CL_NBD_PID=$(cat "$T/nbd.pid" 2>/dev/null)
	[ -n "$CL_NBD_PID" ] && wait_port "$CL_NET.1" "$CL_NBD_PORT" 30
}

# nbd_stop: stop nbd-server (it stops its per-client children itself).
nbd_stop() {
	local t=0
	[ -n "$CL_NBD_PID" ] || return 0
	kill -TERM "$CL_NBD_PID" 2>/dev/null
	while kill -0 "$CL_NBD_PID" 2>/dev/null && [ $t -lt 40 ]; do
		sleep 0.25
		t=$((t + 1))
	done
	CL_NBD_PID=
}

# nbd_connect I: connect guest I's /dev/nbd0 to the export (4 KiB blocks,
# so that O_DIRECT and the store's blocks line up).
nbd_connect() {
	on "$1" "nbd-client -N store $CL_NET.1 $CL_NBD_PORT /dev/nbd0 -b 4096 &&
		[ \$(blockdev --getsize64 /dev/nbd0) = $(stat -c %s "$STORE") ]"
}

# wait_port ADDR PORT SECS: something accepts TCP connections there.
wait_port() {
	local t=0
	while [ $t -lt $(($3 * 4)) ]; do
		in_ns /usr/bin/python3 -c '
import socket, sys
socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()' \
			"$1" "$2" 2>/dev/null && return 0
		sleep 0.25
		t=$((t + 1))
	done
	return 1
}

# ---------------- store ----------------

# new_store FILE [SIZE]: sparse file formatted with 4 MiB extents.
new_store() {
	rm -f "$1"
	truncate -s "${2:-1G}" "$1"
	"$P" format "$1" --extent-size 4M >/dev/null
}

# dm_field I NAME FIELD: a field of "dmsetup status NAME" in guest I after
# the target name (1 mode ... 10 fail reason, 11 lock-manager state).
dm_field() {
	on "$1" "dmsetup status $2" | awk -v f="$3" '{ print $(3 + f) }'
}

# ---------------- parallax helpers ----------------
# These use $STORE (the store file, host side), $GDEV (the store's device
# in the guests, default /dev/ubda) and $LK (lockd's address).

PDCTL="/usr/bin/python3 $CL_DIR/pdctl.py"
LKPROBE="/usr/bin/python3 $CL_DIR/lkprobe.py"
GDEV=${GDEV:-/dev/ubda}
LK=$CL_NET.1:$CL_LOCKD_PORT

# Appended to a dmsetup command that must fail: keeps its status and shows
# the kernel's reason (the target logs it; dmsetup only says it failed).
KWHY='rc=$?; dmesg | grep -i parallax | tail -n 1; exit $rc'

# wait_for SECS CMD...: poll CMD (shell text, host side) until it succeeds.
wait_for() {
	local secs=$1 t0=$SECONDS
	shift
	while ! eval "$*" >/dev/null 2>&1; do
		[ $((SECONDS - t0)) -lt "$secs" ] || return 1
		sleep 1
	done
}

# fio_cmd DEV OFF SIZE SEED [verify]: an fio job writing (or, with
# "verify", only verifying) random 4 KiB blocks of DEV[OFF, OFF+SIZE) with
# crc32c headers.  The same SEED and range regenerate the same data, so
# another host can verify what one host wrote.
fio_cmd() {
	local extra=
	[ "${5:-}" = verify ] && extra=--verify_only
	echo "fio --name=cl$4 --filename=$1 --direct=1 $FIO_ENGINE" \
		"--rw=randwrite --bs=4k --offset=$2 --size=$3 --randseed=$4" \
		"--verify=crc32c --verify_fatal=1 --do_verify=1" \
		"--exitall_on_error=1 --verify_state_save=0 --end_fsync=1 $extra"
}

# g_fio DESC I DEV OFF SIZE SEED [verify]: the job must pass in guest I.
# Safe to run several at once (each has its own output file).
g_fio() {
	local desc=$1 i=$2 out=$T/fio-$6-${7:-write}.$2
	if on "$i" "$(fio_cmd "$3" "$4" "$5" "$6" "${7:-}")" >"$out" 2>&1 &&
	   ! grep -q 'verify: bad\|err=[ ]*[1-9]' "$out"; then
		ok "$desc"
	else
		not_ok "$desc"
		grep -v '^ *$' "$out" | head -25 | sed 's/^/# /'
	fi
}

# dev_sha I DEV: sha256 of a whole device read with O_DIRECT in guest I.
dev_sha() {
	on "$1" "dd if=$2 bs=1M iflag=direct status=none | sha256sum" | cut -d' ' -f1
}

# vdi_id NAME: the VDI's id, from parallax list.
vdi_id() {
	"$P" list "$STORE" | awk -v n="$1" '$2 == n { print $1 }'
}

# vdi_size ID: the VDI's size in bytes, from its record on disk.
vdi_size() {
	local start
	start=$("$P" dump "$STORE" | sed -n 's/^  registry *blocks \([0-9]*\)\..*/\1/p')
	"$P" dump "$STORE" $((start + $1 - 1)) | sed -n 's/^  size \([0-9]*\) .*/\1/p'
}

# vdi_lock ID: "holder H lock_generation G" of the VDI record, on disk.
vdi_lock() {
	local start
	start=$("$P" dump "$STORE" | sed -n 's/^  registry *blocks \([0-9]*\)\..*/\1/p')
	"$P" dump "$STORE" $((start + $1 - 1)) |
		sed -n 's/.*\(holder [0-9]* lock_generation [0-9]*\).*/\1/p'
}

# disk_locks: the on-disk lock state: every catalogue entry in use (holder,
# generation) and every VDI record's holder and lock generation.
disk_locks() {
	local id
	"$P" dump "$STORE" | grep '^  extent ' | sed 's/ used [0-9]*//'
	for id in $("$P" list "$STORE" | awk 'NR > 1 { print $1 }'); do
		echo "vdi $id $(vdi_lock "$id")"
	done
}

# lockd_locks: the locks "parallax locks" lists (not the hosts' leases,
# which change by the second).
lockd_locks() {
	in_ns "$P" locks "$STORE" | grep -E '^(vdi|extent|registry|bitmap) '
}

# pd_device I NAME: parallaxd's "device NAME ..." status line in guest I.
pd_device() {
	on "$1" "$PDCTL status" | grep "^device $2 "
}

# store_up I: in NBD mode, connect guest I to the export; a check.
store_up() {
	[ "$GDEV" = /dev/nbd0 ] || return 0
	if nbd_connect "$1" >"$T/out" 2>&1; then
		ok "guest $1 reaches the store through NBD"
	else
		not_ok "guest $1: nbd-client"
		comment "$T/out"
	fi
}

# store_down I: in NBD mode, disconnect guest I; a check.
store_down() {
	[ "$GDEV" = /dev/nbd0 ] || return 0
	g_check "guest $1 disconnects from NBD" "$1" "nbd-client -d /dev/nbd0"
}

# pd_start I HOST: parallaxd for $GDEV in guest I, in the foreground
# of a background session, its log in $T (visible on the host).
pd_start() {
	on "$1" "setsid $T/bin/parallaxd $GDEV --host-id $2 --foreground \
		>>$T/parallaxd$1.log 2>&1 </dev/null & echo \$! >$T/parallaxd$1.pid"
	wait_for 60 "on $1 '$PDCTL status'"
}

# pd_stop I: guest I's parallaxd (by its pid) must end on SIGTERM within
# 20 s; a check.
pd_stop() {
	g_check "parallaxd on host $1 stops on SIGTERM" "$1" \
		"p=\$(cat $T/parallaxd$1.pid) && kill \$p &&
		for n in \$(seq 100); do kill -0 \$p 2>/dev/null || exit 0; sleep 0.2; done; exit 1"
}

# attach_on DESC I DEV VDI NAME [OPTION...]: parallax attach DEV VDI
# --name NAME OPTION... must succeed in guest I and print the device path.
attach_on() {
	local desc=$1 i=$2 dev=$3 vdi=$4 name=$5 out=$T/attach.$2
	shift 5
	if on "$i" "parallax attach $dev $vdi --name $name $* && dmsetup mknodes $name && test -b /dev/mapper/$name" \
	   >"$out" 2>&1 && grep -qx "/dev/mapper/$name" "$out"; then
		ok "$desc"
	else
		not_ok "$desc"
		comment "$out"
		comment "$T/parallaxd$i.log" 10
		return 1
	fi
}

# attach DESC I VDI NAME: attach_on the shared store.
attach() {
	attach_on "$1" "$2" "$GDEV" "$3" "$4"
}

# exports_match "VDI SHA"...: each VDI exported offline has that sha256.
exports_match() {
	local x
	for x in "$@"; do
		set -- $x
		rm -f "$T/exp.img"
		if "$P" export "$STORE" "$1" "$T/exp.img" >"$T/out" 2>&1 &&
		   [ "$(sha256sum <"$T/exp.img" | cut -d' ' -f1)" = "$2" ]; then
			ok "$1 exported offline equals what the guests read"
		else
			not_ok "$1's export differs from what the guests read"
			comment "$T/out"
		fi
	done
}

# store_clean [RUNNER]: parallax check of $STORE is clean (RUNNER: in_ns
# when the store is served from the namespace).
store_clean() {
	if "$@" "$P" check "$STORE" >"$T/check.out" 2>&1; then
		ok "parallax check is clean: $(tail -n 1 "$T/check.out")"
	else
		not_ok "parallax check"
		comment "$T/check.out" 20
	fi
}

# ---------------- cleanup ----------------

# shellcheck disable=SC2317 # invoked by the EXIT trap
cl_cleanup() {
	local i
	for i in "${!CL_PID[@]}"; do
		in_ns $REXEC "$CL_NET.$((10 + i))" --halt >/dev/null 2>&1
	done
	for i in "${!CL_PID[@]}"; do
		local t=0
		while kill -0 "${CL_PID[$i]}" 2>/dev/null && [ $t -lt 60 ]; do
			sleep 1
			t=$((t + 1))
		done
		# uml-run's own trap kills its kernel on SIGTERM.
		kill -TERM "${CL_PID[$i]}" 2>/dev/null
		wait "${CL_PID[$i]}" 2>/dev/null
	done
	lockd_kill KILL
	nbd_stop
	[ -n "$CL_NS_UP" ] && ip netns del "$NS" 2>/dev/null
	if [ -n "${CL_KEEP:-}" ]; then
		echo "# kept $T" >&2
	else
		rm -rf "$T"
	fi
}
trap cl_cleanup EXIT
trap 'exit 130' INT TERM
