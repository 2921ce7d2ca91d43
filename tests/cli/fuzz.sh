#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Randomly damaged metadata must never crash or hang the tool (see
# fuzz.py).  FUZZ_SEED and FUZZ_ITERATIONS override the defaults.
source "$(dirname "$0")/lib.sh"

S=$T/store.img
truncate -s 32M "$S"
"$P" format "$S" --extent-size 4M --max-vdis 8 >/dev/null
"$P" create "$S" a --size 4M >/dev/null
head -c 3M /dev/urandom >"$T/img"
"$P" import "$S" a "$T/img" 2>/dev/null
"$P" snapshot "$S" a --label s >/dev/null
"$P" import "$S" a "$T/img" 2>/dev/null
"$P" create "$S" b --from s >/dev/null
"$P" snapshot "$S" b >/dev/null
if ! "$P" check "$S" >/dev/null; then
	echo "not ok 1 - the undamaged fuzz store checks clean"
	exit 1
fi
python3 "$TESTS_CLI_DIR/fuzz.py" "$P" "$S" "$T/img" "${FUZZ_SEED:-20081}" \
	"${FUZZ_ITERATIONS:-60}"
