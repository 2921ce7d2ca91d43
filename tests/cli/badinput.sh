#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Bad input: every case must fail with the right exit status (2 for a bad
# command line, 1 for a store problem), print exactly one line
# "parallax: ..." on stderr, and leave the device byte-for-byte unchanged.
source "$(dirname "$0")/lib.sh"

S=$T/store.img
truncate -s 24M "$S"	# small: every case hashes the device twice
"$P" format "$S" --extent-size 4M >/dev/null
"$P" create "$S" base --size 8M >/dev/null
head -c 1M /dev/urandom >"$T/img"
"$P" import "$S" base "$T/img" 2>/dev/null
"$P" snapshot "$S" base --label gold >/dev/null
"$P" create "$S" web --from gold >/dev/null

# format
expect_fail "format refuses an existing blockstore" 1 "$S" "$P" format "$S" --extent-size 4M
truncate -s 8M "$T/small"
expect_fail "format refuses a too-small device" 1 "$T/small" "$P" format "$T/small" --extent-size 4M
grep -q "too small" "$T/err" && ok "too-small message says so" || not_ok "too-small message says so"
truncate -s 100M "$T/mid"
expect_fail "format: extent size not a power of two" 2 "$T/mid" "$P" format "$T/mid" --extent-size 12M
expect_fail "format: extent size below 4M" 2 "$T/mid" "$P" format "$T/mid" --extent-size 2M
expect_fail "format: malformed extent size" 2 "$T/mid" "$P" format "$T/mid" --extent-size 4X
expect_fail "format: malformed --max-vdis" 2 "$T/mid" "$P" format "$T/mid" --max-vdis 1e3
expect_fail "format: --max-vdis 0" 2 "$T/mid" "$P" format "$T/mid" --max-vdis 0
expect_fail "format: missing device" 1 "$S" "$P" format "$T/nonexistent"
expect_fail "format: no device argument" 2 "$S" "$P" format
expect_fail "format: unknown option" 2 "$S" "$P" format "$S" --frobnicate

# not a blockstore
head -c 16M /dev/urandom >"$T/random"
expect_fail "list on a random file" 1 "$T/random" "$P" list "$T/random"
expect_fail "create on a random file" 1 "$T/random" "$P" create "$T/random" x --size 4M
expect_fail "check on a random file" 1 "$T/random" "$P" check "$T/random"
truncate -s 100 "$T/tiny"
expect_fail "list on a 100-byte file" 1 "$T/tiny" "$P" list "$T/tiny"
expect_fail "list on a missing device" 1 "$S" "$P" list "$T/nonexistent"
expect_fail "list on a directory" 1 "$S" "$P" list "$T"
# A store whose device was truncated.
cp --sparse=always "$S" "$T/short"
truncate -s 16M "$T/short"
expect_fail "store on a truncated device" 1 "$T/short" "$P" list "$T/short"

# create
expect_fail "create: malformed size" 2 "$S" "$P" create "$S" x --size 12Q
expect_fail "create: negative size" 2 "$S" "$P" create "$S" x --size -5
expect_fail "create: size not a multiple of 4 KiB" 2 "$S" "$P" create "$S" x --size 1000
expect_fail "create: zero size" 2 "$S" "$P" create "$S" x --size 0
expect_fail "create: size above 256 TiB" 2 "$S" "$P" create "$S" x --size 257T
expect_fail "create: size overflowing 64 bits" 2 "$S" "$P" create "$S" x --size 99999999999999999999
expect_fail "create: duplicate name" 1 "$S" "$P" create "$S" base --size 4M
expect_fail "create: all-digit name" 2 "$S" "$P" create "$S" 123 --size 4M
expect_fail "create: name with a slash" 2 "$S" "$P" create "$S" a/b --size 4M
expect_fail "create: name too long" 2 "$S" "$P" create "$S" "$(printf 'n%.0s' {1..64})" --size 4M
expect_fail "create: both --size and --from" 2 "$S" "$P" create "$S" x --size 4M --from gold
expect_fail "create: neither --size nor --from" 2 "$S" "$P" create "$S" x
expect_fail "create: --from an unknown snapshot" 1 "$S" "$P" create "$S" x --from base@7
expect_fail "create: --from an unknown label" 1 "$S" "$P" create "$S" x --from nosuch
expect_fail "create: --from an unknown VDI" 1 "$S" "$P" create "$S" x --from nosuch@1
expect_fail "create: --size without value" 2 "$S" "$P" create "$S" x --size
expect_fail "create: extra argument" 2 "$S" "$P" create "$S" x y --size 4M

# registry full
truncate -s 16M "$T/few"
"$P" format "$T/few" --extent-size 4M --max-vdis 2 >/dev/null
"$P" create "$T/few" a --size 4M >/dev/null
"$P" create "$T/few" b --size 4M >/dev/null
expect_fail "create: registry full" 1 "$T/few" "$P" create "$T/few" c --size 4M

# snapshots, labels, deletion
expect_fail "snapshot: unknown VDI name" 1 "$S" "$P" snapshot "$S" nosuch
expect_fail "snapshot: unknown VDI id" 1 "$S" "$P" snapshot "$S" 42
expect_fail "snapshot: VDI id out of range" 1 "$S" "$P" snapshot "$S" 99999999
expect_fail "snapshot: duplicate label" 1 "$S" "$P" snapshot "$S" base --label gold
expect_fail "snapshot: invalid label" 2 "$S" "$P" snapshot "$S" base --label 'a b'
expect_fail "label: all-digit label" 2 "$S" "$P" label "$S" 1@1 42
expect_fail "label: unknown snapshot" 1 "$S" "$P" label "$S" 1@9 x
expect_fail "label: malformed snapshot" 2 "$S" "$P" label "$S" 1@ x
expect_fail "label: label in use" 1 "$S" "$P" label "$S" 1@1 gold
expect_fail "delete: unknown VDI" 1 "$S" "$P" delete "$S" nosuch
expect_fail "delete: unknown snapshot" 1 "$S" "$P" delete "$S" base@3
"$P" create "$S" gold2 --size 4M >/dev/null	# VDI 3
check_ok "a label may equal a VDI name" "$P" label "$S" 1@1 gold2
expect_fail "delete: word that is both a VDI name and a label" 1 "$S" "$P" delete "$S" gold2
"$P" snapshot "$S" web --label web0 >/dev/null
"$P" delete "$S" 2@1 >/dev/null
expect_fail "delete: snapshot already deleted" 1 "$S" "$P" delete "$S" 2@1
"$P" delete "$S" 3 >/dev/null
expect_fail "delete: VDI already deleted" 1 "$S" "$P" delete "$S" 3
expect_fail "snapshot of a deleted VDI" 1 "$S" "$P" snapshot "$S" 3

# import / export
head -c 9M /dev/zero >"$T/big"
expect_fail "import: image larger than the VDI" 1 "$S" "$P" import "$S" base "$T/big"
expect_fail "import: missing image file" 1 "$S" "$P" import "$S" base "$T/nonexistent"
expect_fail "import: unknown VDI" 1 "$S" "$P" import "$S" nosuch "$T/img"
expect_fail "import: into a snapshot" 1 "$S" "$P" import "$S" base@1 "$T/img"
expect_fail "export: unknown snapshot" 1 "$S" "$P" export "$S" base@5 "$T/x"
[ ! -e "$T/x" ] && ok "failed export created no file" || not_ok "failed export created no file"
expect_fail "export: unwritable destination" 1 "$S" "$P" export "$S" base "$T/nodir/x"
expect_fail "export: missing argument" 2 "$S" "$P" export "$S" base

# dump, check, misc
expect_fail "dump: malformed block number" 2 "$S" "$P" dump "$S" 12x
expect_fail "dump: block beyond the store" 1 "$S" "$P" dump "$S" 99999999
expect_fail "check: extra argument" 2 "$S" "$P" check "$S" extra
expect_fail "tree: --json with --dot" 2 "$S" "$P" tree "$S" --json --dot
expect_fail "unknown command" 2 "$S" "$P" frobnicate "$S"
expect_fail "no command" 2 "$S" "$P"
"$P" --help | grep -q '^SYNOPSIS' && ok "--help prints the manual" || not_ok "--help prints the manual"
for c in format create delete snapshot label list snaplog tree check import export dump; do
	if "$P" $c --help | grep -q "^SYNOPSIS" && "$P" $c --help | grep -q "^EXIT STATUS" &&
		"$P" $c --help | grep -q "^EXAMPLES"; then
		ok "$c --help has SYNOPSIS, EXIT STATUS and EXAMPLES"
	else
		not_ok "$c --help has SYNOPSIS, EXIT STATUS and EXAMPLES"
	fi
done
check_ok "the store is still clean after all that" "$P" check "$S"

# The harness itself must notice a command that writes and then fails.
writes_then_fails() {
	"$P" snapshot "$S" base >/dev/null
	echo "parallax: fake: failed after writing" >&2
	return 1
}
(expect_fail "self-test" 1 "$S" writes_then_fails) | grep -q "^not ok .*device changed" &&
	ok "harness detects a device change" || not_ok "harness detects a device change"
finish
