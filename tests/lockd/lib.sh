# SPDX-License-Identifier: GPL-2.0
# Shared helpers for the parallax-lockd tests (sourced, not run).
#
# Each test prints TAP-style lines "ok N - desc" / "not ok N - desc", a
# plan "1..N" at the end, and exits non-zero if anything failed.

LK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$LK_DIR/../.." && pwd)
P=${PARALLAX:-$TOP/userspace/parallax}
LOCKD=${PARALLAX_LOCKD:-$TOP/userspace/parallax-lockd}
LKC="python3 $LK_DIR/lkclient.py"

for b in "$P" "$LOCKD"; do
	if [ ! -x "$b" ]; then
		echo "Bail out! $b not built (make -C userspace)"
		exit 1
	fi
done

T=$(mktemp -d /tmp/plx-lockd-test.XXXXXX)
LOCKD_PID=
cleanup() {
	[ -n "$LOCKD_PID" ] && kill -9 "$LOCKD_PID" 2>/dev/null && wait "$LOCKD_PID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
N=0
FAILED=0

ok() {
	N=$((N + 1))
	echo "ok $N - $*"
}

not_ok() {
	N=$((N + 1))
	FAILED=$((FAILED + 1))
	echo "not ok $N - $*"
}

# expect DESC WANT GOT: GOT must equal WANT.
expect() {
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		not_ok "$1"
		echo "#   want: $2"
		echo "#   got:  $3"
	fi
}

# expect_match DESC REGEX GOT
expect_match() {
	if printf '%s\n' "$3" | grep -Eq -- "$2"; then
		ok "$1"
	else
		not_ok "$1"
		echo "#   want match: $2"
		printf '%s\n' "$3" | sed 's/^/#   got: /' | head -20
	fi
}

# make_store: $T/s.img, 64 MiB with 4 MiB extents and VDIs a (1), b (2).
make_store() {
	STORE=$T/s.img
	truncate -s 64M "$STORE"
	"$P" format "$STORE" --extent-size 4M >/dev/null &&
		"$P" create "$STORE" a --size 16M >/dev/null &&
		"$P" create "$STORE" b --size 16M >/dev/null
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_lockd [ARGS...]: start on $ADDR (a free port is picked once) and
# wait until it accepts connections.
start_lockd() {
	[ -n "$ADDR" ] || ADDR=127.0.0.1:$(free_port)
	"$LOCKD" "$STORE" --listen "$ADDR" "$@" 2>>"$T/lockd.log" &
	LOCKD_PID=$!
	local i
	for i in $(seq 50); do
		if python3 -c "import socket,sys; h,p=sys.argv[1].rsplit(':',1); socket.create_connection((h,int(p)),1).close()" "$ADDR" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	echo "# lockd did not start:"; sed 's/^/# /' "$T/lockd.log"
	return 1
}

kill9_lockd() {
	kill -9 "$LOCKD_PID" 2>/dev/null
	wait "$LOCKD_PID" 2>/dev/null
	LOCKD_PID=
}

# call HOST CMD...: one connection as HOST (see lkclient.py).
call() {
	local host=$1
	shift
	$LKC call "$ADDR" "$STORE" "$host" "$@" 2>&1
}

# start_helper OUT HOST CMD...: in the background (pid in $HP), a
# connection of HOST's "parallaxd" (HELLO with the helper flag) running
# CMD... with its output in OUT; returns once lockd logged it connected.
start_helper() {
	local out=$1 host=$2 n i
	shift 2
	n=$(grep -c "host $host connected from .* (parallaxd)" "$T/lockd.log")
	call "$host" --helper "$@" >"$out" &
	HP=$!
	for i in $(seq 100); do
		[ "$(grep -c "host $host connected from .* (parallaxd)" "$T/lockd.log")" -gt "$n" ] &&
			return 0
		sleep 0.05
	done
	echo "# helper of host $host did not connect"
	return 1
}

disk() {
	$LKC disk "$STORE" "$@"
}

finish() {
	echo "1..$N"
	[ "$FAILED" -eq 0 ]
}
