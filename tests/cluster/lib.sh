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
# test runs, so take a private copy of each tool that exists.
mkdir -p "$T/bin"
# $PARALLAX_TOOLS_DIR, when set, is searched first.  (userspace/parallaxd
# is also the daemon's source directory: accept the binary in build/ or
# in that directory too.)
for tool in parallax parallax-lockd parallaxd; do
	for f in ${PARALLAX_TOOLS_DIR:+"$PARALLAX_TOOLS_DIR/$tool"} \
		 "$TOP/userspace/$tool" "$TOP/userspace/build/$tool" \
		 "$TOP/userspace/$tool/$tool"; do
		if [ -f "$f" ] && [ -x "$f" ] && ! ldd "$f" | grep -q asan; then
			cp "$f" "$T/bin/$tool"
			break
		fi
	done
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

# on I CMD: run shell text CMD in guest I; its output on stdout, its status.
on() {
	local i=$1
	shift
	in_ns $REXEC "$CL_NET.$((10 + i))" --timeout "${ON_TIMEOUT:-600}" -- "$*"
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
