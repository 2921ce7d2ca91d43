#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The systemd units in userspace/systemd: systemd-analyze verify accepts
# them, and their sandboxing keeps what the daemons need.
#
# verify insists that ExecStart= binaries exist and that man: pages in
# Documentation= are found by man(1).  systemd 252's "verify --root=DIR"
# does not help: it resolves the unit's dependencies (sysinit.target...)
# inside DIR too and still checks /usr/sbin/... outside it.  So verify a
# temporary copy whose /usr/sbin/ paths point at the built binaries, with
# MANPATH set to a man tree holding man/ (the trailing ":" appends the
# system's man path, for dmsetup(8)).
. "$(dirname "$0")/lib.sh"
need systemd-analyze

UNITS="parallaxd parallax-lockd"
mkdir -p "$T/units" "$T/mt/man4" "$T/mt/man8"
for p in "$MAN"/*.[48]; do
	ln -s "$p" "$T/mt/man${p##*.}/${p##*/}"
done

for u in $UNITS; do
	src=$TOP/userspace/systemd/$u.service
	sed "s|/usr/sbin/|$TOP/userspace/|g" "$src" >"$T/units/$u.service"
	exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$T/units/$u.service")
	if [ ! -x "$exe" ]; then
		not_ok "$u.service: ExecStart $exe is not the built binary"
		continue
	fi
	if MANPATH=$T/mt: SYSTEMD_LOG_LEVEL=notice systemd-analyze verify \
		"$T/units/$u.service" >"$T/out" 2>&1 && [ ! -s "$T/out" ]; then
		ok "$u.service: systemd-analyze verify is clean"
	else
		not_ok "$u.service: systemd-analyze verify"
		sed 's/^/# /' "$T/out" | head -10
	fi
	# The unit as shipped differs from the copy only in those paths.
	if [ "$(sed "s|$TOP/userspace/|/usr/sbin/|g" "$T/units/$u.service")" = "$(cat "$src")" ]; then
		ok "$u.service: verified copy differs only in the binaries' paths"
	else
		not_ok "$u.service: verified copy differs from the unit"
	fi
done

# verify catches a broken unit (so a clean verify means something).
printf '[Service]\nExecStart=%s\nProtectSystem=bogus\n' "$P" >"$T/units/broken.service"
if systemd-analyze verify "$T/units/broken.service" >"$T/out" 2>&1 &&
	! grep -q bogus "$T/out"; then
	not_ok "verify does not notice ProtectSystem=bogus"
else
	ok "verify notices a bad setting: $(grep -m1 bogus "$T/out")"
fi

# prop UNIT KEY: the value systemd parses for KEY (last assignment wins).
prop() {
	sed -n "s/^$2=//p" "$TOP/userspace/systemd/$1.service" | tail -1
}

# Sandboxing the daemons need, or must not have.
check_prop() {
	local u=$1 key=$2 want=$3 got
	got=$(prop "$u" "$key")
	if [ "$got" = "$want" ]; then
		ok "$u.service: $key=$want"
	else
		not_ok "$u.service: $key='$got', wanted '$want'"
	fi
}
for u in $UNITS; do
	check_prop "$u" NoNewPrivileges yes
	check_prop "$u" ProtectSystem strict
	check_prop "$u" ProtectHome yes
	check_prop "$u" PrivateDevices no
	check_prop "$u" DevicePolicy closed
	check_prop "$u" LockPersonality yes
	check_prop "$u" RestrictRealtime yes
	check_prop "$u" SystemCallArchitectures native
	check_prop "$u" RestrictAddressFamilies "AF_UNIX AF_INET AF_INET6"
	check_prop "$u" ProtectKernelModules yes
done
check_prop parallaxd RuntimeDirectory parallax
check_prop parallaxd RuntimeDirectoryPreserve yes
check_prop parallaxd ReadWritePaths /run/parallax
check_prop parallaxd ProtectKernelTunables yes
# parallaxd: the dm control node and block devices (with mknod for
# libdevmapper's nodes when no udev runs); lockd: block devices.
if grep -qx 'DeviceAllow=/dev/mapper/control rw' "$TOP/userspace/systemd/parallaxd.service" &&
	grep -qx 'DeviceAllow=block-\* rwm' "$TOP/userspace/systemd/parallaxd.service"; then
	ok "parallaxd.service: DeviceAllow /dev/mapper/control and block-*"
else
	not_ok "parallaxd.service: DeviceAllow lacks /dev/mapper/control or block-*"
fi
# ProtectKernelModules= forbids modprobe: it must run unsandboxed ("+").
if grep -qx 'ExecStartPre=-+/sbin/modprobe -q dm-parallax' "$TOP/userspace/systemd/parallaxd.service"; then
	ok "parallaxd.service: modprobe runs outside the sandbox"
else
	not_ok "parallaxd.service: modprobe is sandboxed by ProtectKernelModules="
fi
# CAP_SYS_ADMIN: the dm ioctls.
case " $(prop parallaxd CapabilityBoundingSet) " in
*" CAP_SYS_ADMIN "*) ok "parallaxd.service keeps CAP_SYS_ADMIN" ;;
*) not_ok "parallaxd.service: CapabilityBoundingSet lacks CAP_SYS_ADMIN" ;;
esac
# Stopping the lock manager must not remove parallaxd's /run/parallax.
if [ -z "$(prop parallax-lockd RuntimeDirectory)" ]; then
	ok "parallax-lockd.service has no RuntimeDirectory= to remove /run/parallax"
else
	not_ok "parallax-lockd.service: RuntimeDirectory=$(prop parallax-lockd RuntimeDirectory)"
fi

# Exposure scores (informational; fail only if it stops working or the
# sandbox is lost: above 5, "MEDIUM" or worse).
for u in $UNITS; do
	if systemd-analyze security --offline=true \
		"$TOP/userspace/systemd/$u.service" >"$T/sec" 2>&1; then
		score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$T/sec")
		if [ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s <= 5) }'; then
			ok "$u.service: systemd-analyze security exposure $score"
		else
			not_ok "$u.service: exposure '$score' (wanted <= 5)"
		fi
	else
		not_ok "$u.service: systemd-analyze security --offline=true failed"
		sed 's/^/# /' "$T/sec" | tail -5
	fi
done

finish
