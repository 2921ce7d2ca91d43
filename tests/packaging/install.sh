#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The Debian packages, installed and purged on this machine (as root):
# make deb (unless build/deb is newer than every packaged source), lintian,
# dpkg -i of parallax-dkms and parallax-tools, DKMS's build of dm-parallax.ko
# for Debian's 6.12 headers, the installed tools on a blockstore file, the
# installed files, then dpkg --purge and nothing left behind.
#
# The module is only built, never loaded (the running kernel is not the
# one whose headers are installed).  parallax-dkms's postinst has DKMS
# build for every kernel in /lib/modules that has headers (6.12 and 6.1
# here), so most of the run time is two module builds.
#
# Environment: PARALLAX_DEB_DIR, a directory holding the two .deb files
# to test instead of build/deb (nothing is built then).
#
# Prints "ok N - what" / "not ok N - what" and the plan; exits non-zero
# on any failure.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
N=0
FAILED=0
T=

ok() {
	N=$((N + 1))
	echo "ok $N - $*"
}

not_ok() {
	N=$((N + 1))
	FAILED=$((FAILED + 1))
	echo "not ok $N - $*"
}

# check DESC CMD...: the command must succeed; its output is shown if not.
check() {
	local desc=$1
	shift
	if "$@" >"$T/out" 2>&1; then
		ok "$desc"
	else
		not_ok "$desc"
		sed 's/^/# /' "$T/out" | tail -20
	fi
}

finish() {
	echo "1..$N"
	[ "$FAILED" -eq 0 ]
	exit
}

bail() {
	echo "Bail out! $*"
	exit 1
}

pkg_installed() {
	[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

pkg_known() {
	# Installed, half-installed or only config files left: anything
	# but "not-installed" / unknown.
	local s
	s=$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) || return 1
	[ -n "$s" ] && [ "$s" != not-installed ]
}

purge() {
	dpkg --purge parallax-tools parallax-dkms >"$T/purge.log" 2>&1
}

[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP installs packages: needs root"; exit 0; }
command -v dpkg-buildpackage >/dev/null && command -v dkms >/dev/null ||
	bail "dpkg-dev and dkms are needed (make setup)"
for p in parallax-tools parallax-dkms; do
	pkg_known "$p" && bail "$p is already installed; this test installs and purges it: dpkg --purge $p first"
done

T=$(mktemp -d /tmp/plx-packaging.XXXXXX)
cleanup() {
	# An interrupted run must not leave the packages installed.
	if pkg_known parallax-tools || pkg_known parallax-dkms; then
		purge || cat "$T/purge.log" >&2
	fi
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The kernel DKMS must build for: Debian's 6.12 headers, as
# scripts/build-module picks them.
hdr=$(printf '%s\n' /usr/src/linux-headers-6.12.*-amd64 | sort -V | tail -n 1)
[ -d "$hdr" ] || bail "no /usr/src/linux-headers-6.12.*-amd64 (make setup)"
kver=${hdr#/usr/src/linux-headers-}
version=$(dpkg-parsechangelog -l "$top/debian/changelog" -S Version)
upstream=${version%-*}
echo "# kernel $kver, package version $version"

# --- build -----------------------------------------------------------------
if [ -n "${PARALLAX_DEB_DIR:-}" ]; then
	debdir=$PARALLAX_DEB_DIR
	echo "# using the packages in $debdir"
else
	debdir=$top/build/deb
	fresh=1
	for f in "$debdir/parallax-dkms_${version}_all.deb" \
		 "$debdir"/parallax-tools_"${version}"_*.deb; do
		[ -f "$f" ] || { fresh=0; break; }
		# Any packaged source newer than a .deb: rebuild.
		# shellcheck disable=SC2046 # the list of existing paths
		if [ -n "$(cd "$top" && find $(ls -d debian Kbuild dm-parallax \
			userspace man scripts/block-parallax Documentation \
			README 2>/dev/null) -newer "$f" -not -path 'userspace/build/*' \
			-not -path 'debian/build/*' -not -name '*.a' \
			-not -path 'userspace/parallax*' -print -quit)" ]; then
			fresh=0
			break
		fi
	done
	if [ "$fresh" = 1 ]; then
		echo "# build/deb is newer than the sources: not rebuilt"
	else
		start=$SECONDS
		if make -C "$top" deb >"$T/build.log" 2>&1; then
			ok "make deb ($((SECONDS - start)) s)"
			# dpkg-buildpackage ran in build/deb/src: nothing in
			# the tree, nothing next to it.
			stray=$(ls -d "$top"/../*parallax*.deb "$top"/../dm-parallax_*.changes \
				"$top"/debian/files "$top"/debian/.debhelper \
				"$top"/debian/build "$top"/debian/parallax-dkms \
				"$top"/debian/parallax-tools "$top"/debian/*.substvars \
				"$top"/build/deb/src 2>/dev/null)
			[ -z "$stray" ] && ok "make deb left no build artefacts in the tree" ||
				not_ok "make deb left no build artefacts in the tree: $stray"
		else
			not_ok "make deb"
			grep -E 'error|warning|missing' "$T/build.log" | sed 's/^/# /' | tail -20
			finish
		fi
	fi
fi
dkms_deb=$debdir/parallax-dkms_${version}_all.deb
tools_deb=
for f in "$debdir"/parallax-tools_"${version}"_*.deb; do
	[ -f "$f" ] && tools_deb=$f && break
done
if [ -f "$dkms_deb" ] && [ -n "$tools_deb" ]; then
	ok "both packages built: $(basename "$dkms_deb") $(basename "$tools_deb")"
else
	not_ok "both packages built in $debdir"
	finish
fi

# --- package contents ------------------------------------------------------
dpkg-deb -c "$dkms_deb" | awk '{print $NF}' | sed 's|^\./|/|' >"$T/dkms.list"
dpkg-deb -c "$tools_deb" | awk '{print $NF}' | sed 's|^\./|/|' >"$T/tools.list"
src=/usr/src/parallax-$upstream
missing=
for f in "$src/dkms.conf" "$src/Kbuild" "$src/dm-parallax/Kbuild"; do
	grep -qxF "$f" "$T/dkms.list" || missing+=" $f"
done
for f in "$top"/dm-parallax/*.[ch]; do
	grep -qxF "$src/dm-parallax/$(basename "$f")" "$T/dkms.list" || missing+=" $f"
done
if [ -z "$missing" ] && ! grep -qE '\.(o|ko|cmd)$' "$T/dkms.list"; then
	ok "parallax-dkms holds the module source in $src and no objects"
else
	not_ok "parallax-dkms holds the module source in $src and no objects (missing:$missing)"
fi
missing=
for f in /usr/sbin/parallax /usr/sbin/parallax-lockd /usr/sbin/parallaxd \
	 /lib/systemd/system/parallaxd.service \
	 /lib/systemd/system/parallax-lockd.service \
	 /etc/default/parallaxd /etc/default/parallax-lockd \
	 /usr/share/bash-completion/completions/parallax \
	 /etc/xen/scripts/block-parallax; do
	grep -qxF "$f" "$T/tools.list" || missing+=" $f"
done
for f in "$top"/man/*.[0-9]; do
	[ -f "$f" ] || continue
	s=${f##*.}
	grep -qxF "/usr/share/man/man$s/$(basename "$f").gz" "$T/tools.list" ||
		missing+=" $f"
done
[ -z "$missing" ] && ok "parallax-tools holds the programs, units, defaults, man pages, completion and Xen script" ||
	not_ok "parallax-tools holds the programs, units, defaults, man pages, completion and Xen script (missing:$missing)"

# lintian: errors fail, warnings are shown.  Exit status 1 is "errors
# found", anything else but 0 is lintian's own failure.
start=$SECONDS
lintian "$dkms_deb" "$tools_deb" >"$T/lintian" 2>&1
rc=$?
grep -E '^[EW]: ' "$T/lintian" | sed 's/^/# /'
if [ $rc = 0 ] && ! grep -q '^E: ' "$T/lintian"; then
	ok "lintian: no errors ($(grep -c '^W: ' "$T/lintian") warnings, $((SECONDS - start)) s)"
else
	not_ok "lintian: no errors (exit $rc)"
	grep -v '^[EW]: ' "$T/lintian" | sed 's/^/# /' | head -10
fi

# --- install ---------------------------------------------------------------
start=$SECONDS
if dpkg -i "$dkms_deb" "$tools_deb" >"$T/install.log" 2>&1; then
	ok "dpkg -i parallax-dkms parallax-tools ($((SECONDS - start)) s, DKMS builds included)"
else
	not_ok "dpkg -i parallax-dkms parallax-tools"
	sed 's/^/# /' "$T/install.log" | tail -30
	finish
fi
grep -E '^(Building for|Building initial|Module build)' "$T/install.log" | sed 's/^/# /'
pkg_installed parallax-dkms && pkg_installed parallax-tools &&
	ok "both packages are installed" || not_ok "both packages are installed"

# --- DKMS ------------------------------------------------------------------
# (dkms status warns on stderr about unsigned objects it inspects.)
st=$(dkms status -m parallax -v "$upstream" -k "$kver" 2>/dev/null)
echo "# dkms status: $st"
case $st in
*"$kver"*": installed"*) ok "dkms status: parallax/$upstream installed for $kver" ;;
*) not_ok "dkms status: parallax/$upstream installed for $kver" ;;
esac
ko=$(find "/lib/modules/$kver/updates" -name 'dm-parallax.ko*' 2>/dev/null | head -n 1)
if [ -n "$ko" ]; then
	ok "module installed: $ko"
	vm=$(modinfo -F vermagic "$ko" 2>&1)
	name=$(modinfo -F name "$ko" 2>&1)
	case $vm in
	"$kver "*) ok "modinfo: vermagic $vm" ;;
	*) not_ok "modinfo: vermagic is for $kver (got '$vm')" ;;
	esac
	[ "$name" = dm_parallax ] && ok "modinfo: name dm_parallax" ||
		not_ok "modinfo: name dm_parallax (got '$name')"
	deps=$(modinfo -F depends "$ko" 2>&1)
	case ",$deps," in
	*,dm-mod,*|*,dm_mod,*) ok "modinfo: depends on dm-mod ($deps)" ;;
	*) not_ok "modinfo: depends on dm-mod (got '$deps')" ;;
	esac
else
	not_ok "module installed: /lib/modules/$kver/updates/**/dm-parallax.ko*"
fi
if [ -n "$(find /var/lib/dkms/parallax /lib/modules/*/updates -name '*kunit*' 2>/dev/null)" ]; then
	not_ok "DKMS did not build the KUnit module"
else
	ok "DKMS did not build the KUnit module"
fi
# DKMS built, from its copy of the packaged source, dm-parallax.ko and
# nothing else (the build log moves to <kernel>/<arch>/log/).
log=$(ls /var/lib/dkms/parallax/"$upstream/$kver"/*/log/make.log 2>/dev/null | head -n 1)
b=/var/lib/dkms/parallax/$upstream/build
if [ -n "$log" ] && grep -q "LD \[M\] *$b/dm-parallax/dm-parallax.ko\$" "$log" &&
   [ "$(grep -c 'LD \[M\] .*\.ko$' "$log")" = 1 ]; then
	ok "DKMS make.log: only dm-parallax.ko linked, in $b"
else
	not_ok "DKMS make.log: only dm-parallax.ko linked, in $b (${log:-no make.log})"
	[ -n "$log" ] && grep 'LD \[M\]' "$log" | sed 's/^/# /'
fi

# --- the installed tools ---------------------------------------------------
for prog in parallax parallax-lockd parallaxd; do
	if [ "$(command -v "$prog")" != "/usr/sbin/$prog" ] &&
	   [ ! -x "/usr/sbin/$prog" ]; then
		not_ok "/usr/sbin/$prog is installed"
		continue
	fi
	out=$("/usr/sbin/$prog" --help 2>&1)
	rc=$?
	if [ $rc = 0 ] && grep -q "$prog" <<<"$out"; then
		ok "/usr/sbin/$prog --help"
	else
		not_ok "/usr/sbin/$prog --help (exit $rc)"
		sed 's/^/# /' <<<"$out" | head -5
	fi
	# Built with dpkg-buildflags: full RELRO (-z relro -z now), PIE.
	# Here-strings, not pipes: under pipefail an early "grep -q" exit
	# can SIGPIPE the writer and turn a match into a failure.
	if grep -q 'BIND_NOW' <<<"$(readelf -d "/usr/sbin/$prog")" &&
	   grep -q GNU_RELRO <<<"$(readelf -lW "/usr/sbin/$prog")" &&
	   grep -q 'DYN' <<<"$(readelf -h "/usr/sbin/$prog")"; then
		ok "/usr/sbin/$prog is hardened (PIE, RELRO, BIND_NOW)"
	else
		not_ok "/usr/sbin/$prog is hardened (PIE, RELRO, BIND_NOW)"
	fi
done

S=$T/store.img
truncate -s 256M "$S"
check "installed parallax format" /usr/sbin/parallax format "$S" --extent-size 4M
check "installed parallax create web" /usr/sbin/parallax create "$S" web --size 64M
check "installed parallax create db" /usr/sbin/parallax create "$S" db --size 32M
if /usr/sbin/parallax list "$S" >"$T/list" 2>&1 &&
   grep -qw web "$T/list" && grep -qw db "$T/list"; then
	ok "installed parallax list shows web and db"
else
	not_ok "installed parallax list shows web and db"
	sed 's/^/# /' "$T/list"
fi
check "installed parallax check" /usr/sbin/parallax check "$S"

# --- installed files -------------------------------------------------------
for u in parallaxd parallax-lockd; do
	if cmp -s "/lib/systemd/system/$u.service" "$top/userspace/systemd/$u.service"; then
		ok "/lib/systemd/system/$u.service is userspace/systemd/$u.service"
	else
		not_ok "/lib/systemd/system/$u.service is userspace/systemd/$u.service"
	fi
	if cmp -s "/etc/default/$u" "$top/userspace/systemd/$u.default" &&
	   dpkg-query -W -f='${Conffiles}\n' parallax-tools | grep -q " /etc/default/$u "; then
		ok "/etc/default/$u installed as a conffile"
	else
		not_ok "/etc/default/$u installed as a conffile"
	fi
	if ls /etc/systemd/system/*.wants/"$u.service" >/dev/null 2>&1; then
		not_ok "$u.service is not enabled"
	else
		ok "$u.service is not enabled"
	fi
done
if [ -x /etc/xen/scripts/block-parallax ] &&
   cmp -s /etc/xen/scripts/block-parallax "$top/scripts/block-parallax"; then
	ok "/etc/xen/scripts/block-parallax installed, executable"
else
	not_ok "/etc/xen/scripts/block-parallax installed, executable"
fi
if [ -f /usr/share/bash-completion/completions/parallax ] &&
   cmp -s /usr/share/bash-completion/completions/parallax "$top/userspace/completion/parallax"; then
	ok "bash completion installed"
else
	not_ok "bash completion installed"
fi
nman=0
for f in "$top"/man/*.[0-9]; do
	[ -f "$f" ] || continue
	s=${f##*.}
	n=$(basename "$f" ".$s")
	nman=$((nman + 1))
	if man -w "$s" "$n" 2>/dev/null | grep -qx "/usr/share/man/man$s/$n.$s.gz"; then
		ok "man $s $n finds the installed page"
	else
		not_ok "man $s $n finds the installed page"
	fi
done
[ "$nman" -gt 0 ] || not_ok "man pages in man/ to check"

# --- purge -----------------------------------------------------------------
start=$SECONDS
if purge; then
	ok "dpkg --purge parallax-tools parallax-dkms ($((SECONDS - start)) s)"
else
	not_ok "dpkg --purge parallax-tools parallax-dkms"
	sed 's/^/# /' "$T/purge.log" | tail -20
fi
left=$(
	ls -d /usr/src/parallax-* /var/lib/dkms/parallax /usr/sbin/parallax* \
	      /lib/systemd/system/parallax* /etc/systemd/system/*/parallax* \
	      /etc/default/parallax* /etc/xen/scripts/block-parallax \
	      /usr/share/bash-completion/completions/parallax \
	      /usr/share/man/man*/parallax* /usr/share/man/man4/dm-parallax* \
	      /usr/share/doc/parallax-* 2>/dev/null
	find /lib/modules/*/updates -name 'dm-parallax*' 2>/dev/null
)
if [ -z "$left" ]; then
	ok "nothing left after purge"
else
	not_ok "nothing left after purge"
	sed 's/^/# /' <<<"$left"
fi
if pkg_known parallax-dkms || pkg_known parallax-tools; then
	not_ok "dpkg knows neither package after purge"
else
	ok "dpkg knows neither package after purge"
fi
st=$(dkms status -m parallax 2>/dev/null)
[ -z "$st" ] && ok "dkms status lists no parallax module" ||
	not_ok "dkms status lists no parallax module ($st)"

finish
