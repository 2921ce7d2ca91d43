#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# replay-log --exec check for the ext4 workload (workload.py files): the
# file system in VDI $EXT4_VDI of the store rebuilt at $REPLAY_IMAGE must
# recover its journal, then be clean under e2fsck -fn, and the last file
# whose fsync was marked before the point ($REPLAY_LAST_MARK = f<N>) must
# hold exactly $EXT4_SRC/f<N>.  Scratch space: $EXT4_TMP.
set -u
img=$EXT4_TMP/fs.img
rm -f "$img"
if ! "$P" export "$REPLAY_IMAGE" "$EXT4_VDI" "$img" >"$EXT4_TMP/out" 2>&1; then
	echo "export of $EXT4_VDI failed: $(tail -1 "$EXT4_TMP/out")"
	exit 1
fi
# Before mkfs finished there is no file system yet: nothing to check.
case $REPLAY_LAST_MARK in
f*) ;;
*) exit 0 ;;
esac
# The journal replay a mount would do; then a read-only full check.
e2fsck -E journal_only -y "$img" >"$EXT4_TMP/out" 2>&1
rc=$?
if [ $rc -gt 1 ]; then
	echo "journal recovery failed (e2fsck status $rc):"
	head -5 "$EXT4_TMP/out"
	exit 1
fi
if ! e2fsck -fn "$img" >"$EXT4_TMP/out" 2>&1; then
	echo "e2fsck -fn finds problems after journal recovery:"
	grep -v '^Pass\|^e2fsck\|^$' "$EXT4_TMP/out" | head -8
	exit 1
fi
f=$REPLAY_LAST_MARK
debugfs -R "dump /$f $EXT4_TMP/$f" "$img" >/dev/null 2>&1
if ! cmp -s "$EXT4_TMP/$f" "$EXT4_SRC/$f"; then
	echo "/$f, fsynced and marked before this point, is missing or wrong"
	exit 1
fi
rm -f "$EXT4_TMP/$f"
