#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Crash consistency of the offline write paths (soft updates, thesis 4.1).
# Each command is run once per write it issues, dying before write N+1
# (PARALLAX_CRASH_AFTER_WRITES=N, see userspace/lib/store.c); after every
# such crash the store must check clean (garbage allowed), snapshots must
# still export their contents, and every block of an interrupted import
# must read as either its old or its new contents.
source "$(dirname "$0")/lib.sh"

PRISTINE=$T/pristine.img
S=$T/store.img

truncate -s 32M "$PRISTINE"
"$P" format "$PRISTINE" --extent-size 4M --max-vdis 16 >/dev/null
head -c 40K /dev/urandom >"$T/old"
"$P" create "$PRISTINE" a --size 4M >/dev/null
"$P" import "$PRISTINE" a "$T/old" 2>/dev/null
"$P" snapshot "$PRISTINE" a --label s1 >/dev/null
"$P" snapshot "$PRISTINE" a --label s2 >/dev/null	# for label and delete
"$P" create "$PRISTINE" spare --size 4M >/dev/null	# for delete
cp "$T/old" "$T/s1"
truncate -s 4M "$T/s1"
# New contents: overwrite blocks shared with s1, and fill sparse ones in a
# second level-0 node's range (2 MiB on).
cp "$T/s1" "$T/new"
head -c 24K /dev/urandom | dd of="$T/new" bs=4K seek=4 conv=notrunc status=none
head -c 16K /dev/urandom | dd of="$T/new" bs=4K seek=520 conv=notrunc status=none
head -c $((524 * 4096)) "$T/new" >"$T/newimg"	# up to the end of block 523

old_or_new() {	# old_or_new EXPORTED OLD NEW
	python3 - "$@" <<'PY'
import sys
a, o, n = (open(p, "rb").read() for p in sys.argv[1:4])
bad = [i for i in range(0, len(a), 4096)
       if a[i:i + 4096] not in (o[i:i + 4096], n[i:i + 4096])]
if bad:
    print("# blocks neither old nor new:", [i // 4096 for i in bad[:10]])
sys.exit(1 if bad else 0)
PY
}

# crash_test DESC VERIFY CMD...: run CMD on a fresh copy of the pristine
# store for every crash point; VERIFY is a function run after each.
crash_test() {
	local desc=$1 verify=$2 n=0 rc why=
	shift 2
	while [ $n -lt 400 ]; do
		cp --sparse=always "$PRISTINE" "$S"
		PARALLAX_CRASH_AFTER_WRITES=$n "$@" >/dev/null 2>&1
		rc=$?
		if [ $rc != 99 ] && [ $rc != 0 ]; then
			why="exit $rc after $n writes"
			break
		fi
		if ! "$P" check "$S" >"$T/check"; then
			why="check fails after a crash after $n writes: $(grep -m1 . "$T/check")"
			break
		fi
		if ! "$P" export "$S" 1@1 "$T/x" || ! cmp -s "$T/x" "$T/s1"; then
			why="s1 changed after a crash after $n writes"
			break
		fi
		if ! $verify; then
			why="contents wrong after a crash after $n writes"
			break
		fi
		[ $rc = 0 ] && break
		n=$((n + 1))
	done
	if [ -z "$why" ] && [ $rc = 0 ]; then
		ok "$desc: clean after a crash at each of its $n writes"
	else
		not_ok "$desc: ${why:-never finished}"
		sed 's/^/# /' "$T/check" | head -5
	fi
}

verify_none() {
	true
}

verify_a() {	# VDI a reads, block by block, as before or after the import
	"$P" export "$S" a "$T/a" && old_or_new "$T/a" "$T/s1" "$T/new"
}

verify_b() {	# the clone, if it exists, reads as s1 or as s1 + new data
	if "$P" list "$S" | grep -q ' b '; then
		"$P" export "$S" b "$T/b" && old_or_new "$T/b" "$T/s1" "$T/new"
	fi
}

crash_test "import over a snapshot's blocks and into sparse ranges" verify_a \
	"$P" import "$S" a "$T/newimg"
crash_test "snapshot" verify_a "$P" snapshot "$S" a --label s3
crash_test "create an empty VDI" verify_none "$P" create "$S" e --size 1G
crash_test "clone s1" verify_b "$P" create "$S" b --from s1
clone_then_import() {
	"$P" create "$S" b --from s1 >/dev/null && "$P" import "$S" b "$T/newimg"
}
crash_test "clone s1, then import into the clone" verify_b clone_then_import
crash_test "label a snapshot (in-place log rewrite)" verify_a "$P" label "$S" s2 gold
crash_test "delete a snapshot" verify_a "$P" delete "$S" a@2
crash_test "delete a VDI" verify_none "$P" delete "$S" spare
finish
