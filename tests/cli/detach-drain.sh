#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Detach and hand-over with a local write cache (issue 8): the check that
# parallax detach and parallaxd make before a VDI lock leaves the host
# (drain, suspend, status field 16 == 0, else keep the device and the
# lock), run against fake device operations, so no kernel is needed.
# drain-fake.c is built here against the built userspace/dm object.
source "$(dirname "$0")/lib.sh"

U=$TESTS_CLI_DIR/../../userspace
if ! make -s -C "$U" parallax >"$T/make.out" 2>&1 ||
	! ${CC:-cc} -I "$U/lib" -I "$U/dm" -I "$U/../dm-parallax" -D_GNU_SOURCE \
		-O2 -Wall -Wextra -Werror -std=gnu11 -o "$T/drain-fake" \
		"$TESTS_CLI_DIR/drain-fake.c" "$U/build/dm-dmdev.o" \
		"$U/libparallax.a" -lcrypto -ldevmapper >>"$T/make.out" 2>&1; then
	sed 's/^/# /' "$T/make.out" | head -20
	echo "Bail out! cannot build tests/cli/drain-fake.c"
	exit 1
fi
"$T/drain-fake" >"$T/fake.out"
rc=$?
grep -v '^1\.\.' "$T/fake.out"
N=$(grep -c '^\(not \)\?ok ' "$T/fake.out")

# The command line: the options that go with the cache.
"$P" attach /dev/null a --cache-mode always >/dev/null 2>"$T/err"
r=$?
if [ $r -eq 2 ] && grep -q -- "--cache-mode needs --local-cache" "$T/err"; then
	ok "attach --cache-mode without --local-cache: usage error"
else
	not_ok "attach --cache-mode without --local-cache: exit $r: $(cat "$T/err")"
fi
"$P" attach /dev/null a --local-cache /dev/null --read-only >/dev/null 2>"$T/err"
r=$?
if [ $r -eq 2 ] && grep -q -- "read-only" "$T/err"; then
	ok "attach --local-cache --read-only: usage error"
else
	not_ok "attach --local-cache --read-only: exit $r: $(cat "$T/err")"
fi
"$P" attach /dev/null a --local-cache /dev/null --cache-mode sometimes >/dev/null 2>"$T/err"
r=$?
if [ $r -eq 2 ] && grep -q -- "always or adaptive" "$T/err"; then
	ok "attach --cache-mode sometimes: usage error"
else
	not_ok "attach --cache-mode sometimes: exit $r: $(cat "$T/err")"
fi
echo "1..$N"
[ "$rc" -eq 0 ] && [ "$FAILED" -eq 0 ]
