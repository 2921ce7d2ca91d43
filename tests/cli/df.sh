#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# parallax df: exact block counts against a model of copy-on-write
# (dfmodel.py: create, import of images with holes, snapshot, overwrite,
# clone, writes to the clone, snapshot and VDI delete), agreement with
# check and between --json and the human table; a store in use; errors.
# Then the progress bar of check, import, export and df: drawn on a
# terminal (script(1) provides one), never with --quiet or without one.
source "$(dirname "$0")/lib.sh"

# The model prints unnumbered "ok - ..." lines.
while IFS= read -r line; do
	case $line in
	"ok - "*) ok "${line#ok - }" ;;
	"not ok - "*) not_ok "${line#not ok - }" ;;
	*) echo "$line" ;;
	esac
done < <(python3 "$TESTS_CLI_DIR/dfmodel.py" "$P" "$T" 2>&1)
[ -f "$T/df.img" ] || not_ok "dfmodel.py built its store"

S=$T/df.img
dev_hash "$S"
before=$HASH_VAL
"$P" df "$S" >/dev/null && "$P" df "$S" --json >/dev/null
dev_hash "$S"
[ "$before" = "$HASH_VAL" ] && ok "df writes nothing" || not_ok "df changed the store"

# A fresh store: everything free but the system area and the bitmaps.
F=$T/fresh.img
truncate -s 64M "$F"
"$P" format "$F" --extent-size 4M >/dev/null
if "$P" df "$F" --json >"$T/fresh.json" &&
	python3 - "$T/fresh.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
t = d["types"]
sysb = t["system"]["blocks"]
assert d["blocks"] == 16384 and d["extent_blocks"] == 1024, d
assert t["system"]["used"] == sysb and sysb % 1024 == 0
assert t["free"]["extents"] == d["free_extents"] == 16 - sysb // 1024
assert t["free"]["free"] == t["free"]["blocks"] - t["free"]["extents"]
assert t["data"]["extents"] == t["metadata"]["extents"] == 0
assert sum(x["used"] for k, x in t.items() if k != "system") == 0
assert d["vdis"] == [] and d["reachable"] == 0
EOF
then
	ok "df of a fresh store: all free but the system extents and bitmaps"
else
	not_ok "df of a fresh store"
	sed 's/^/# /' "$T/fresh.json" | head
fi

# A store in use: an extent held by host 1 (catalogue entry 3's holder).
U=$T/inuse.img
cp "$S" "$U"
ent=$("$P" dump "$U" | awk '$1 == "extent" && $3 == "data" { print $2; exit }')
cat=$("$P" dump "$U" | awk '$1 == "catalogue" && $2 == "blocks" { split($3, a, "\\."); print a[1] }')
$PLXBLK "$U" "$cat" set $((32 + ent * 32 + 4)) 1 --reseal
"$P" df "$U" >"$T/inuse.txt"
"$P" df "$U" --json >"$T/inuse.json"
if grep -q "in use (1 extents and 0 VDIs held by hosts): figures may be slightly stale" "$T/inuse.txt" &&
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(d["held_extents"] != 1)' "$T/inuse.json"; then
	ok "df of a store with a held extent says it may be stale"
else
	not_ok "df of a store in use"
	sed 's/^/# /' "$T/inuse.txt" | tail -3
fi
"$P" df "$S" | grep -q "figures may be slightly stale" &&
	not_ok "df of an idle store says stale" || ok "df of an idle store does not say stale"

# A block device is read as a store in use: page cache dropped, catalogue
# and registry read again.  Same figures as the file behind it.
if loop=$(losetup -f --show -r "$S" 2>/dev/null); then
	if "$P" df "$loop" --json >"$T/loop.json" &&
		"$P" df "$S" --json | cmp -s - "$T/loop.json"; then
		ok "df of a loop device over the store gives the same figures"
	else
		not_ok "df of a loop device differs from df of its file"
	fi
	losetup -d "$loop"
else
	ok "# SKIP df of a block device: cannot set up a loop device"
fi

expect_fail "df without DEV" 2 "$S" "$P" df
expect_fail "df with an extra argument" 2 "$S" "$P" df "$S" extra
expect_fail "df with an unknown option" 2 "$S" "$P" df "$S" --bogus
expect_fail "df of a missing file" 1 "$S" "$P" df "$T/missing.img"
head -c 1M /dev/zero >"$T/zero.img"
expect_fail "df of a file that is not a blockstore" 1 "$T/zero.img" "$P" df "$T/zero.img"
"$P" df --help | grep -q "parallax df DEV" && ok "df --help prints its manual" ||
	not_ok "df --help"
"$P" --help | grep -q "^    df " && ok "df is listed in parallax --help" ||
	not_ok "df missing from parallax --help"

# ---- Progress bars ------------------------------------------------------
if ! command -v script >/dev/null; then
	ok "# SKIP progress bar tests: no script(1)"
	finish
fi
B=$T/bar.img
truncate -s 256M "$B"
"$P" format "$B" --extent-size 4M >/dev/null
"$P" create "$B" v --size 64M >/dev/null
head -c 24M /dev/urandom >"$T/bar.raw"

# on_tty CMD...: run CMD on a pseudo-terminal; the typescript (stdout and
# stderr together) goes to $T/tty.
on_tty() {
	local cmd
	printf -v cmd '%q ' "$@"
	script -qec "$cmd" /dev/null >"$T/tty" 2>&1 </dev/null
}

# bar_shown WHAT: the typescript has a "\r"-drawn bar for WHAT.
bar_shown() {
	grep -aq $'\r'"$1: .*\\[[= >]*\\] *[0-9]*% ([0-9]*/[0-9]*)" "$T/tty"
}

export PARALLAX_PROGRESS_DELAY_MS=0
on_tty "$P" import "$B" v "$T/bar.raw"
bar_shown import && ok "import draws a progress bar on a terminal" ||
	{ not_ok "import draws no bar on a terminal"; od -c "$T/tty" | head -5 | sed 's/^/# /'; }
grep -aq $'\r *\rimported 25165824 bytes' "$T/tty" &&
	ok "import erases the bar before its summary line" ||
	not_ok "import does not erase the bar before its summary"
# From a pipe the size is unknown: the bar is a count of blocks.
on_tty sh -c "cat '$T/bar.raw' | '$P' import '$B' v -"
grep -aq $'\rimport: [0-9][0-9]* *\r' "$T/tty" &&
	ok "import from a pipe counts blocks on a terminal" ||
	not_ok "import from a pipe shows no count"
on_tty "$P" export "$B" v "$T/bar.out"
bar_shown export && ok "export draws a progress bar on a terminal" ||
	not_ok "export draws no bar on a terminal"
cmp -s <(head -c 24M "$T/bar.out") "$T/bar.raw" && ok "export with a bar exports the data" ||
	not_ok "export with a bar exports the data"
on_tty "$P" check "$B"
bar_shown "check: trees" && ok "check draws a progress bar on a terminal" ||
	not_ok "check draws no bar on a terminal"
grep -aq $'\r *\rclean: 0 problems' "$T/tty" &&
	ok "check erases the bar before its result" ||
	not_ok "check does not erase the bar before its result"
on_tty "$P" df "$B"
bar_shown "df: [a-z]*" && ok "df draws a progress bar on a terminal" ||
	not_ok "df draws no bar on a terminal"

for c in "import $B v $T/bar.raw" "export $B v $T/bar.out" "check $B" "df $B"; do
	# shellcheck disable=SC2086
	on_tty "$P" ${c%% *} --quiet ${c#* }
	rc=$?
	# On a terminal every "\n" arrives as "\r\n": a "\r" followed by
	# anything else is a bar (or its erasure).
	if [ "$rc" != 0 ]; then
		not_ok "${c%% *} --quiet failed (exit $rc)"
	elif grep -aq $'\r.' "$T/tty"; then
		not_ok "${c%% *} --quiet still draws a bar"
	else
		ok "${c%% *} --quiet draws no bar on a terminal"
	fi
	# shellcheck disable=SC2086
	"$P" ${c%% *} ${c#* } >"$T/out" 2>"$T/err"
	if grep -aq $'\r' "$T/err" "$T/out"; then
		not_ok "${c%% *} not on a terminal still draws a bar"
	else
		ok "${c%% *} not on a terminal draws no bar"
	fi
done
unset PARALLAX_PROGRESS_DELAY_MS
# With the default delay of one second, a quick command shows nothing.
on_tty "$P" check "$B"
grep -aq $'\r.' "$T/tty" && not_ok "a quick check draws a bar" ||
	ok "a check shorter than a second draws no bar"
finish
