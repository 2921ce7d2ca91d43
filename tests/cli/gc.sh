#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# parallax gc on a store with no device attached (the collector's offline
# path; tests/kernel/gc.sh and tests/cluster/gc.sh run it online): what it
# frees is exactly the garbage check counts, live data and clones survive,
# orphans of a crash go, and deleting everything gives back the store's
# freshly formatted bitmaps and catalogue.
source "$(dirname "$0")/lib.sh"

S=$T/store.img

# json FILE KEY: a number from a JSON object on one line.
json() {
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

# layout IMG: per non-system extent its type and a hash of its bitmap
# bits (headers excluded: they carry the store's UUID).
layout() {
	python3 - "$1" <<'PY'
import hashlib, struct, sys
f = open(sys.argv[1], "rb")
def blk(n):
    f.seek(n * 4096)
    return f.read(4096)
sb = blk(0)
(nr_blocks, ext_blocks, nr_ext, sys_ext, cat_start) = struct.unpack_from("<5Q", sb, 64)
per = (4096 - 32) // 32
bm_blocks = -(-ext_blocks // ((4096 - 32) * 8))
for e in range(sys_ext, nr_ext):
    c = blk(cat_start + e // per)
    off = 32 + (e % per) * 32
    typ, holder, used = c[off], struct.unpack_from("<I", c, off + 4)[0], struct.unpack_from("<I", c, off + 16)[0]
    h = hashlib.sha256()
    for i in range(bm_blocks):
        h.update(blk(e * ext_blocks + i)[32:])
    print(e, typ, holder, used, h.hexdigest()[:16])
PY
}

fmt() {
	rm -f "$1"
	truncate -s 64M "$1"
	"$P" format "$1" --extent-size 4M --max-vdis 32 >/dev/null
}

export_is() {	# export_is DESC STORE WHAT EXPECTED
	"$P" export "$2" "$3" "$T/exp" >/dev/null 2>&1 &&
		cmp -s "$T/exp" "$4" && ok "$1" || not_ok "$1"
}

garbage() {	# garbage STORE: check --json's garbage count
	"$P" check "$1" --json >"$T/ck.json"
	json "$T/ck.json" garbage
}

# ---- Bad input ------------------------------------------------------------
fmt "$S"
expect_fail "gc without DEV" 2 "$S" "$P" gc
expect_fail "gc with two DEVs" 2 "$S" "$P" gc "$S" "$S"
expect_fail "gc with an unknown option" 2 "$S" "$P" gc "$S" --bogus
head -c 1M /dev/zero >"$T/zero.img"
expect_fail "gc of a file that is no blockstore" 1 "$T/zero.img" "$P" gc "$T/zero.img"
check_ok "gc --help" "$P" gc --help
grep -q "SYNOPSIS" "$T/out" && ok "gc --help is a manual page" ||
	not_ok "gc --help is a manual page"

# ---- Nothing to collect: nothing written -----------------------------------
fmt "$S"
layout "$S" >"$T/fresh.layout"
"$P" create "$S" a --size 8M >/dev/null
head -c 6M /dev/urandom >"$T/a0"
"$P" import "$S" a "$T/a0" >/dev/null 2>&1
dev_hash "$S"
before=$HASH_VAL
check_ok "gc of a store without garbage" "$P" gc "$S"
grep -q "^freed 0 data and 0 metadata blocks" "$T/out" &&
	ok "it says it freed nothing" || not_ok "it says it freed nothing"
dev_hash "$S"
[ "$before" = "$HASH_VAL" ] && ok "and wrote nothing" || not_ok "and wrote nothing"

# ---- Deleted snapshots: exactly the garbage check counts ----------------
truncate -s 8M "$T/a0"
"$P" snapshot "$S" a --label s1 >/dev/null
cp "$T/a0" "$T/a1"
head -c 1M /dev/urandom | dd of="$T/a1" bs=4K seek=100 conv=notrunc status=none
"$P" import "$S" a "$T/a1" >/dev/null 2>&1
"$P" snapshot "$S" a --label s2 >/dev/null
g0=$(garbage "$S")
"$P" delete "$S" s1 >/dev/null
g1=$(garbage "$S")
[ "$g1" -gt "$g0" ] && ok "deleting s1 makes garbage ($g0 -> $g1 blocks)" ||
	not_ok "deleting s1 makes garbage ($g0 -> $g1 blocks)"
alloc_before=$(json "$T/ck.json" allocated)
check_ok "gc after deleting a snapshot" "$P" gc "$S" --json
cp "$T/out" "$T/gc.json"
freed=$(( $(json "$T/gc.json" freed_data) + $(json "$T/gc.json" freed_metadata) ))
[ "$freed" = "$g1" ] && ok "gc freed exactly the $g1 garbage blocks" ||
	not_ok "gc freed $freed blocks, check counted $g1"
g2=$(garbage "$S")
alloc_after=$(json "$T/ck.json" allocated)
[ "$g2" = 0 ] && [ $((alloc_before - alloc_after)) = "$freed" ] &&
	ok "no garbage left; allocated fell by $freed" ||
	not_ok "garbage $g2, allocated $alloc_before -> $alloc_after"
grep -q '"clean": true' "$T/ck.json" && ok "check is clean after gc" ||
	not_ok "check is clean after gc"
export_is "the live VDI is intact" "$S" a "$T/a1"
export_is "the remaining snapshot is intact" "$S" s2 "$T/a1"
json "$T/gc.json" scan_gb_per_s >/dev/null && ok "--json gives the scan rate" ||
	not_ok "--json gives the scan rate"

# ---- Clones keep what they need ---------------------------------------------
"$P" create "$S" c --from s2 >/dev/null
"$P" delete "$S" s2 >/dev/null
"$P" delete "$S" a >/dev/null
check_ok "gc after deleting a clone's snapshot and its VDI" "$P" gc "$S"
export_is "the clone still holds the snapshot's data" "$S" c "$T/a1"
[ "$(garbage "$S")" = 0 ] && grep -q '"clean": true' "$T/ck.json" &&
	ok "check is clean with the clone's parent gone" ||
	not_ok "check is clean with the clone's parent gone"

# ---- Orphans of a crash -----------------------------------------------------
# The import writes its new blocks and bitmaps first and links them last
# (soft updates): a crash just before the last writes leaves them orphans.
head -c 2M /dev/urandom >"$T/c2"
g=0
for k in $(seq 530 -1 500); do
	cp "$S" "$T/crashed.img"
	PARALLAX_CRASH_AFTER_WRITES=$k "$P" import "$T/crashed.img" c "$T/c2" \
		>/dev/null 2>&1
	[ $? = 99 ] || continue
	g=$(garbage "$T/crashed.img")
	[ "$g" -gt 0 ] && break
done
cp "$T/crashed.img" "$S"
[ "$g" -gt 500 ] && ok "an import that crashed after $k writes left $g orphans" ||
	not_ok "an import that crashed left orphans ($g)"
check_ok "gc after the crash" "$P" gc "$S"
[ "$(garbage "$S")" = 0 ] && ok "the orphans are gone" || not_ok "the orphans are gone"

# ---- Everything deleted: the store as freshly formatted --------------------
"$P" delete "$S" c >/dev/null
check_ok "gc after deleting everything" "$P" gc "$S"
layout "$S" >"$T/clean.layout"
if cmp -s "$T/fresh.layout" "$T/clean.layout"; then
	ok "bitmaps and catalogue are as freshly formatted"
else
	not_ok "bitmaps and catalogue are as freshly formatted"
	diff "$T/fresh.layout" "$T/clean.layout" | head -10 | sed 's/^/# /'
fi
"$P" create "$S" again --size 8M >/dev/null && "$P" import "$S" again "$T/a0" >/dev/null 2>&1
export_is "the emptied store is usable again" "$S" again "$T/a0"

# ---- The store lock: other commands of this host wait ----------------------
flock "$S" sleep 2 &
sleep 0.3
start=$(date +%s%N)
"$P" create "$S" waiter --size 4M >"$T/out" 2>"$T/err"
rc=$?
waited=$(( ($(date +%s%N) - start) / 1000000 ))
wait
[ $rc = 0 ] && grep -q "waiting" "$T/err" &&
	ok "a modifying command waits for the store lock (${waited} ms)" ||
	not_ok "a modifying command waits for the store lock (rc $rc: $(cat "$T/err"))"

# ---- Memory: one bit per block; a 1 TiB store in about 40 MiB ---------------
rm -f "$T/big.img"
truncate -s 1T "$T/big.img"
if "$P" format "$T/big.img" >/dev/null 2>&1; then
	"$P" create "$T/big.img" v --size 1G >/dev/null
	head -c 4M /dev/urandom >"$T/v"
	"$P" import "$T/big.img" v "$T/v" >/dev/null 2>&1
	rss=$(python3 - "$P" "$T/big.img" <<'PY'
import resource, subprocess, sys
subprocess.run([sys.argv[1], "gc", sys.argv[2]], check=True,
               stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
PY
)
	[ -n "$rss" ] && [ "$rss" -le $((40 * 1024)) ] &&
		ok "gc of a 1 TiB store peaks at $((rss / 1024)) MiB (limit 40)" ||
		not_ok "gc of a 1 TiB store peaks at ${rss} KiB (limit 40 MiB)"
else
	not_ok "format a sparse 1 TiB store"
fi
rm -f "$T/big.img"

echo "1..$N"
[ "$FAILED" = 0 ]
