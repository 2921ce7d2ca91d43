#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# plx_gc_reclaim_msg(), the gc_reclaim message parallaxd sends for a GC
# reclaim job, checked against the format written out independently in
# Python: "gc_reclaim E X G O " + lowercase hex of the bytes, and -1 for an
# empty or too large chunk or a buffer one byte too small.
. "$(dirname "$0")/lib.sh"

LIB=$TOP/userspace/libparallax.a
[ -f "$LIB" ] || { echo "Bail out! $LIB not built"; exit 1; }
cat >"$T/t.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "libparallax.h"

/* argv: epoch extent generation offset hex-bytes buflen */
int main(int argc, char **argv)
{
	static u8 bits[4096];
	size_t len = strtoull(argv[6], NULL, 10);
	char *buf = malloc(len ? len : 1);
	u32 n = 0;
	const char *h = argv[5];

	(void)argc;
	if (strcmp(h, "-"))
		for (; h[0] && h[1]; h += 2)
			sscanf(h, "%2hhx", &bits[n++]);
	if (plx_gc_reclaim_msg(buf, len, strtoull(argv[1], NULL, 10),
			       strtoull(argv[2], NULL, 10),
			       strtoull(argv[3], NULL, 10),
			       strtoull(argv[4], NULL, 10), bits, n)) {
		puts("-1");
		return 0;
	}
	printf("%s|%zu\n", buf, strlen(buf));
	return 0;
}
C
if cc -std=gnu11 -Wall -Werror -I "$TOP/userspace/lib" -I "$TOP/dm-parallax" \
	-o "$T/t" "$T/t.c" "$LIB" -lcrypto 2>"$T/cc.err"; then
	ok "test program builds against libparallax.a"
else
	not_ok "build"; sed 's/^/# /' "$T/cc.err"; finish; exit 1
fi

# case EPOCH EXTENT GEN OFFSET NBYTES BUFLEN-DELTA: random bytes; the buffer
# is exactly the message plus NUL, plus DELTA.
check() {
	local hex want got len
	hex=$(python3 -c "import os,sys; print(os.urandom(int(sys.argv[1])).hex() or '-')" "$5")
	want=$(python3 -c '
import sys
e, x, g, o, h, d = sys.argv[1:7]
h = "" if h == "-" else h
m = "gc_reclaim %s %s %s %s %s" % (e, x, g, o, h)
n = len(h) // 2
print("-1" if n == 0 or n > 1024 or int(d) < 0 else "%s|%d" % (m, len(m)))
' "$1" "$2" "$3" "$4" "$hex" "$6")
	len=$(python3 -c '
import sys
e, x, g, o, h, d = sys.argv[1:7]
h = "" if h == "-" else h
print(len("gc_reclaim %s %s %s %s %s" % (e, x, g, o, h)) + 1 + int(d))
' "$1" "$2" "$3" "$4" "$hex" "$6")
	got=$("$T/t" "$1" "$2" "$3" "$4" "$hex" "$len")
	expect "epoch $1 extent $2 gen $3 offset $4, $5 bytes, buffer ${6}: $(echo "$want" | cut -c1-40)" \
		"$want" "$got"
}
check 1 5 1 0 1 0
check 18446744073709551615 18446744073709551615 18446744073709551615 8184 1024 0
check 7 100 3 4096 1024 5
check 7 100 3 4096 1024 -1
check 7 100 3 0 1025 100
check 7 100 3 0 0 100
check 42 9 2 16 17 0
finish
