#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Self-test of scripts/uml-run: exit statuses, output plumbing, argument
# quoting, disks, timeouts, and that every kind of kernel splat the test
# kernel is configured to catch (WARN, KASAN, UBSAN, lockdep, kmemleak)
# is really caught.  The splats come from a throw-away module built here.
# A config change that loses a bug finder, or a harness change that stops
# noticing it, fails this test.
#
# Output: one TAP line per check ("ok N - harness ..."); exit 0 iff all ok.
set -uo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
run=$top/scripts/uml-run
n=0
failed=0

report() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $n - harness $2"
	else
		echo "not ok $n - harness $2"
		failed=1
	fi
}

tree=$("$top/scripts/build-uml-kernel" | tail -n 1) || {
	echo "not ok 1 - harness: cannot build the UML kernel"
	exit 1
}
work=$(mktemp -d /tmp/parallax-harness.XXXXXX)
trap 'rm -rf "$work"' EXIT

cat >"$work/splat.c" <<'EOF'
// SPDX-License-Identifier: GPL-2.0
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/string.h>

static int mode;
module_param(mode, int, 0444);

static DEFINE_MUTEX(lock_a);
static DEFINE_MUTEX(lock_b);

static int __init splat_init(void)
{
	volatile int idx = 16, shift = 40;
	char *p;
	int i;

	switch (mode) {
	case 1:
		WARN_ON(1);
		break;
	case 2:
		p = kmalloc(16, GFP_KERNEL);
		if (p)
			p[idx] = 1;
		kfree(p);
		break;
	case 3:
		pr_info("splat: %d\n", 1 << shift);
		break;
	case 4:
		mutex_lock(&lock_a);
		mutex_lock(&lock_b);
		mutex_unlock(&lock_b);
		mutex_unlock(&lock_a);
		mutex_lock(&lock_b);
		mutex_lock(&lock_a);
		mutex_unlock(&lock_a);
		mutex_unlock(&lock_b);
		break;
	case 5:
		/*
		 * Eight leaks; kmemleak may still see a stale copy of the
		 * last pointer somewhere, so expect at least one report.
		 */
		for (i = 0; i < 8; i++) {
			p = kmalloc(1000, GFP_KERNEL);
			OPTIMIZER_HIDE_VAR(p);
			if (p)
				memset(p, 0x5a, 1000);
		}
		break;
	case 6:
		/* A splat with a long log after it (see scripts/uml-run). */
		WARN_ON(1);
		for (i = 0; i < 2000; i++)
			pr_info("splat: line %d after the warning\n", i);
		break;
	}
	return 0;
}

static void __exit splat_exit(void)
{
}

module_init(splat_init);
module_exit(splat_exit);
MODULE_DESCRIPTION("scripts/uml-run self-test: deliberate kernel splats");
MODULE_LICENSE("GPL");
EOF
echo 'obj-m += splat.o' >"$work/Kbuild"
if ! make -s -C "$tree" M="$work" ARCH=um modules >"$work/build.log" 2>&1; then
	cat "$work/build.log" >&2
	echo "not ok 1 - harness: cannot build the splat module"
	exit 1
fi

# uml_run NAME ARGS...: run uml-run, keep status, stdout and stderr.
uml_run() {
	local name=$1

	shift
	"$run" "$@" >"$work/$name.out" 2>"$work/$name.err"
	echo $? >"$work/$name.rc"
}

rc_of() {
	cat "$work/$1.rc"
}

quick=(--leak-wait 0 --timeout 120)

# Clean boots.
uml_run true "${quick[@]}" -- true
[ "$(rc_of true)" = 0 ] && [ ! -s "$work/true.out" ] && [ ! -s "$work/true.err" ]
report $? "clean boot: 'true' exits 0 with no output"

uml_run exit3 "${quick[@]}" -- sh -c 'echo out; echo err >&2; exit 3'
[ "$(rc_of exit3)" = 3 ] && [ "$(cat "$work/exit3.out")" = out ] &&
	grep -qx err "$work/exit3.err"
report $? "exit status and stdout/stderr are the command's"

# shellcheck disable=SC2016 # literal $HOME on purpose
uml_run quote "${quick[@]}" -- printf '<%s>\n' 'a  b' '' "it's" '$HOME' '*'
# shellcheck disable=SC2016
printf '<%s>\n' 'a  b' '' "it's" '$HOME' '*' | cmp -s - "$work/quote.out"
report $? "arguments reach the command unchanged"

# shellcheck disable=SC2016 # expanded by the guest's sh
(cd "$work" && PARALLAX_HARNESS_VAR='x y' \
	"$run" "${quick[@]}" -- sh -c 'pwd; echo "$PARALLAX_HARNESS_VAR"') \
	>"$work/env.out" 2>&1
printf '%s\nx y\n' "$work" | cmp -s - "$work/env.out"
report $? "runs in the caller's cwd (under /tmp) with its environment"

uml_run targets "${quick[@]}" -- dmsetup targets
ok=0
for t in parallax thin-pool thin snapshot log-writes flakey delay dust zero; do
	grep -q "^$t " "$work/targets.out" || { echo "# no target $t" >&2; ok=1; }
done
[ "$(rc_of targets)" = 0 ] && [ "$ok" = 0 ]
report $? "dm-parallax loaded; thin, snapshot, log-writes, flakey, delay, dust built in"

truncate -s 16M "$work/disk.img"
uml_run disk "${quick[@]}" --disk "$work/disk.img" -- sh -c \
	'printf parallax-harness | dd of=/dev/ubda bs=4096 conv=sync oflag=direct status=none'
[ "$(rc_of disk)" = 0 ] && [ "$(head -c 16 "$work/disk.img")" = parallax-harness ]
report $? "--disk FILE is /dev/ubda and takes O_DIRECT writes"

uml_run timeout --leak-wait 0 --timeout 10 -- sleep 100
[ "$(rc_of timeout)" = 124 ]
report $? "--timeout kills a run that takes too long (124)"

# Networking: a host tap, the guest fetches a file over TCP from the host.
tap=plxh$$
tap_pid=
if ip tuntap add "$tap" mode tap 2>/dev/null; then
	ip addr add 10.213.77.1/24 dev "$tap" && ip link set "$tap" up
	echo harness-net >"$work/net.txt"
	python3 -m http.server --bind 10.213.77.1 --directory "$work" 18766 \
		>/dev/null 2>&1 &
	tap_pid=$!
	sleep 0.5
	# shellcheck disable=SC2016 # expanded by the guest's sh
	uml_run net "${quick[@]}" --net "tuntap,$tap" -- sh -c '
		ip link set eth0 up &&
		ip addr add 10.213.77.2/24 dev eth0 &&
		python3 -c "import urllib.request as u; print(u.urlopen(\"http://10.213.77.1:18766/net.txt\", timeout=10).read().decode(), end=\"\")"'
	kill "$tap_pid" 2>/dev/null
	wait "$tap_pid" 2>/dev/null
	ip tuntap del "$tap" mode tap
	[ "$(rc_of net)" = 0 ] && [ "$(cat "$work/net.out")" = harness-net ]
	report $? "--net tuntap,TAP gives the guest a working eth0"
else
	echo "ok $((n += 1)) - harness --net # SKIP cannot create a tap device"
fi

# Splats: each must turn the command's success into 125 and be shown.
splat() {
	local mode=$1 pattern=$2 what=$3 name=splat$1

	shift 3
	uml_run "$name" "$@" --bind "$work" -- insmod "$work/splat.ko" mode="$mode"
	if [ "$(rc_of "$name")" = 125 ] && grep -Eq "$pattern" "$work/$name.err"; then
		report 0 "$what is caught (125)"
	else
		report 1 "$what is caught (125)"
		echo "# uml-run status $(rc_of "$name"), want 125; its stderr ends:"
		tail -n 30 "$work/$name.err" | sed 's/^/#   /'
	fi
}
splat 1 'WARNING: .*splat' "WARN_ON" "${quick[@]}"
splat 2 'BUG: KASAN: slab-out-of-bounds' "KASAN out-of-bounds write" "${quick[@]}"
splat 3 'UBSAN: shift-out-of-bounds' "UBSAN shift overflow" "${quick[@]}"
splat 4 'possible circular locking dependency' "lockdep lock inversion" "${quick[@]}"
splat 5 'kmemleak: [1-9][0-9]* new suspected memory leaks' "kmemleak leak" --timeout 120
splat 6 'WARNING: .*splat' "WARN_ON followed by 2000 lines of log" "${quick[@]}"

# And the same module, doing nothing wrong, passes.
uml_run nosplat "${quick[@]}" --bind "$work" -- insmod "$work/splat.ko" mode=0
[ "$(rc_of nosplat)" = 0 ]
report $? "the splat module without a splat passes"

exit "$failed"
