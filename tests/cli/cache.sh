#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# parallax cache-init and cache-show, the local write cache's log device
# (issue 8), on files: the superblock init writes, what it refuses (too
# small, a blockstore, undrained records), and cache-show's walk of
# records hand-crafted by cache-record (built from cache-record.c with the
# shared format header): where it stops on a torn record, a wrong
# sequence number, a stale open generation, and that it follows
# next_block around the ring from any head.
source "$(dirname "$0")/lib.sh"

REC=$TESTS_CLI_DIR/cache-record
if ! make -s -C "$TESTS_CLI_DIR/../../userspace" ../tests/cli/cache-record \
	>"$T/make.out" 2>&1; then
	sed 's/^/# /' "$T/make.out" | head -20
	echo "Bail out! cannot build tests/cli/cache-record"
	exit 1
fi

# field LOG KEY: the value of "KEY: VALUE" in cache-show's output of LOG
# (saved in $T/show).
field() {
	awk -v k="$2:" '$1 == k { $1 = ""; sub(/^ /, ""); print; exit }' "$T/show.$1"
}

# show NAME LOG: run cache-show on LOG into $T/show.NAME; 0 if it exited 0.
show() {
	"$P" cache-show "$2" >"$T/show.$1" 2>"$T/show.$1.err"
}

# expect_show DESC NAME WANT-END WANT-SUMMARY [RECORD-SEQS]: the output
# of "show NAME" ends with exactly those two lines and lists the records
# with exactly those sequence numbers (space separated), in that order.
expect_show() {
	local desc=$1 name=$2 end sum seqs
	end=$(grep '^end: ' "$T/show.$name")
	sum=$(tail -n 1 "$T/show.$name")
	seqs=$(awk '$1 == "record:" { printf "%s ", $3 }' "$T/show.$name")
	seqs=${seqs% }
	if [ "$end" = "end: $3" ] && [ "$sum" = "$4" ] && [ "$seqs" = "${5:-}" ] &&
		[ "$(grep -c '^end: ' "$T/show.$name")" = 1 ]; then
		ok "$desc: $end; $sum"
	else
		not_ok "$desc: got '$end' '$sum' records '$seqs', wanted 'end: $3' '$4' records '${5:-}'"
		sed 's/^/# /' "$T/show.$name" "$T/show.$name.err" | head -30
	fi
}

# err_has TEXT: the last expect_fail's message contains TEXT.
err_has() {
	if grep -qF -- "$1" "$T/err"; then
		ok "the message says '$1'"
	else
		not_ok "the message lacks '$1': $(cat "$T/err")"
	fi
}

# fresh LOG: a 1 MiB (256-block) file freshly initialised.
fresh() {
	rm -f "$1"
	truncate -s 1M "$1"
	"$P" cache-init "$1" >/dev/null
}

# ---- help, completion of the command list ----------------------------------

for c in cache-init cache-show; do
	if "$P" "$c" --help >"$T/help" 2>&1 && grep -q "^    parallax $c - " "$T/help" &&
		grep -q '^SYNOPSIS' "$T/help" && grep -q '^EXIT STATUS' "$T/help"; then
		ok "$c --help prints its manual"
	else
		not_ok "$c --help"
		sed 's/^/# /' "$T/help" | head -5
	fi
	"$P" --help | grep -q "^    $c " && ok "parallax --help lists $c" ||
		not_ok "parallax --help does not list $c"
done

# ---- cache-init on a file ----------------------------------------------------

L=$T/log.img
truncate -s 1M "$L"
# Junk in block 1 that init must zero.
head -c 4096 /dev/urandom | dd of="$L" bs=4096 seek=1 conv=notrunc status=none
if "$P" cache-init "$L" >"$T/init.out" 2>"$T/init.err" &&
	grep -Eq '^initialised .*log.img: cache log of 256 blocks \(1 MiB\), uuid [0-9a-f-]{36}$' "$T/init.out"; then
	ok "cache-init on a 1 MiB file: $(cat "$T/init.out")"
else
	not_ok "cache-init on a 1 MiB file"
	sed 's/^/# /' "$T/init.out" "$T/init.err"
fi
uuid=$(awk '{ print $NF }' "$T/init.out")
if cmp -s -n 4096 <(dd if="$L" bs=4096 skip=1 count=1 status=none) /dev/zero; then
	ok "cache-init zeroes block 1"
else
	not_ok "block 1 is not zero after cache-init"
fi
# Magic "PLXJ" at byte 4 of block 0.
if [ "$(dd if="$L" bs=1 skip=4 count=4 status=none)" = PLXJ ]; then
	ok "block 0 holds the log superblock magic PLXJ"
else
	not_ok "no PLXJ magic in block 0"
fi

if show init "$L"; then
	ok "cache-show of a fresh log exits 0"
else
	not_ok "cache-show of a fresh log"
	sed 's/^/# /' "$T/show.init.err"
fi
bad=
for kv in "uuid $uuid" "nr_blocks 256" "store_uuid -" "vdi 0" "head_seq 1" \
	"head_block 1" "open_gen 1"; do
	set -- $kv
	[ "$(field init "$1")" = "$2" ] || bad="$bad $1=$(field init "$1")(want $2)"
done
field init ctime | grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' ||
	bad="$bad ctime=$(field init ctime)"
[ -z "$bad" ] && ok "cache-show prints the superblock: $(head -n 8 "$T/show.init" | tr '\n' ' ')" ||
	not_ok "cache-show superblock fields:$bad"
expect_show "a fresh log has no records" init \
	"block 1: no record (bad magic number)" "records: 0, blocks: 0"

# An empty log may be initialised again: a new uuid.
if "$P" cache-init "$L" >"$T/init2.out" 2>&1 &&
	[ "$(awk '{ print $NF }' "$T/init2.out")" != "$uuid" ]; then
	ok "cache-init again on an empty log: new uuid"
else
	not_ok "cache-init of an empty log"
	sed 's/^/# /' "$T/init2.out"
fi

# ---- refusals ------------------------------------------------------------------

S=$T/small.img
truncate -s $((63 * 4096)) "$S"
expect_fail "cache-init refuses 63 blocks" 1 "$S" "$P" cache-init "$S"
err_has "small.img is too small for a cache log: 63 blocks of 4 KiB, need at least 64"
truncate -s $((64 * 4096)) "$S"
check_ok "cache-init takes 64 blocks" "$P" cache-init "$S"
show small "$S" && [ "$(field small nr_blocks)" = 64 ] &&
	ok "64-block log: nr_blocks 64" || not_ok "64-block log: nr_blocks '$(field small nr_blocks)'"

Z=$T/zero.img
truncate -s 1M "$Z"
expect_fail "cache-show of a device that is no log" 1 "$Z" "$P" cache-show "$Z"
err_has "zero.img is not a cache log"
expect_fail "cache-show needs an argument" 2 "$Z" "$P" cache-show
expect_fail "cache-show takes one device" 2 "$Z" "$P" cache-show "$Z" "$Z"
expect_fail "cache-init --bogus" 2 "$Z" "$P" cache-init "$Z" --bogus
expect_fail "cache-show of a missing file" 1 "$Z" "$P" cache-show "$T/nonexistent"

# A damaged superblock: one bit of a field flipped, the crc left alone.
D=$T/damaged.img
fresh "$D"
$PLXBLK "$D" 0 flip 72
expect_fail "cache-show of a damaged log superblock" 1 "$D" "$P" cache-show "$D"
err_has "damaged.img: bad log superblock (block 0): checksum mismatch"

B=$T/store.img
truncate -s 64M "$B"
"$P" format "$B" --extent-size 4M >/dev/null
expect_fail "cache-init refuses a blockstore" 1 "$B" "$P" cache-init "$B"
err_has "store.img holds a Parallax blockstore (use --force"
expect_fail "cache-show of a blockstore" 1 "$B" "$P" cache-show "$B"
check_ok "cache-init --force overwrites a blockstore" "$P" cache-init "$B" --force
show store "$B" && [ "$(field store nr_blocks)" = 16384 ] &&
	ok "the blockstore is now a 16384-block log" || not_ok "forced log over a blockstore"

# ---- records ---------------------------------------------------------------------

# A write of 3 blocks at 1..4, a snapshot marker at 5, a write of 4
# entries (2 discards, 2 data blocks) at 6..8.
fresh "$L"
"$REC" "$L" record 1 1 --entries 3 >/dev/null &&
	"$REC" "$L" record 5 2 --snapshot 7 --label nightly >/dev/null &&
	"$REC" "$L" record 6 3 --entries 4 --discards 2 >/dev/null ||
	not_ok "cache-record wrote three records"
show three "$L" || not_ok "cache-show of three records exits 0"
want="record: seq 1 block 1 type write entries 3 data_blocks 3 next 5 open_gen 1 snap_seq - label -
record: seq 2 block 5 type snapshot entries 0 data_blocks 0 next 6 open_gen 1 snap_seq 7 label nightly
record: seq 3 block 6 type write entries 4 data_blocks 2 next 9 open_gen 1 snap_seq - label -"
if [ "$(grep '^record: ' "$T/show.three")" = "$want" ]; then
	ok "cache-show lists the three records with their fields"
else
	not_ok "cache-show record lines"
	sed 's/^/# /' "$T/show.three"
fi
expect_show "three records end at block 9" three \
	"block 9: no record (bad magic number)" "records: 3, blocks: 8" "1 2 3"

# Undrained records: init refuses without --force and writes nothing.
expect_fail "cache-init refuses a log with undrained records" 1 "$L" \
	"$P" cache-init "$L"
err_has "log.img holds 3 undrained records (seq 1..3): drain them"
# Bound to a VDI: the message says which.
"$REC" "$L" super --vdi 7
expect_fail "cache-init refuses a bound log with undrained records" 1 "$L" \
	"$P" cache-init "$L"
err_has "holds 3 undrained records (seq 1..3) of VDI 7 of store 00000000-"
# Drained (head past the records): init may overwrite it.
cp "$L" "$T/drained.img"
"$REC" "$T/drained.img" super --head-seq 4 --head-block 9
show drained "$T/drained.img"
expect_show "a drained log" drained "block 9: no record (bad magic number)" \
	"records: 0, blocks: 0"
check_ok "cache-init of a drained log" "$P" cache-init "$T/drained.img"
# Head record there but for another seq: nothing undrained either.
cp "$L" "$T/other.img"
"$REC" "$T/other.img" super --head-seq 9
show other "$T/other.img"
expect_show "head record with another seq" other "block 1: seq 1 expected 9" \
	"records: 0, blocks: 0"
check_ok "cache-init when the head record has another seq" "$P" cache-init "$T/other.img"
# --force discards the records.
check_ok "cache-init --force over undrained records" "$P" cache-init "$L" --force
show forced "$L"
[ "$(field forced vdi)" = 0 ] && [ "$(field forced uuid)" != "$uuid" ] &&
	ok "the forced log is fresh and unbound" || not_ok "the forced log"
expect_show "the forced log is empty" forced \
	"block 1: no record (bad magic number)" "records: 0, blocks: 0"
# A stale record of the old log beyond block 1 is not taken for one of
# the new log (it carries the old uuid).
O=$T/old.img
fresh "$O"
n=$("$REC" "$O" record 1 1 --entries 2)
"$REC" "$O" record "$n" 2 >/dev/null
"$P" cache-init "$O" --force >/dev/null
"$REC" "$O" record 1 1 --entries 2 >/dev/null
show old "$O"
expect_show "a record left by the previous log" old \
	"block $n: record of another log (uuid differs)" "records: 1, blocks: 3" "1"

# Torn: the third record's data do not match data_crc.
fresh "$L"
n=$("$REC" "$L" record 1 1 --entries 2)
n=$("$REC" "$L" record "$n" 2 --entries 1)
torn=$n
"$REC" "$L" record "$n" 3 --entries 3 --torn >/dev/null
show torn "$L"
expect_show "the scan stops at a torn record" torn \
	"block $torn: seq 3 data checksum mismatch (torn record)" \
	"records: 2, blocks: 5" "1 2"
# A torn head record: nothing to replay, still refused without --force.
fresh "$L"
"$REC" "$L" record 1 1 --entries 2 --torn >/dev/null
show tornhead "$L"
expect_show "a torn head record" tornhead \
	"block 1: seq 1 data checksum mismatch (torn record)" "records: 0, blocks: 0"
expect_fail "cache-init refuses a torn head record" 1 "$L" "$P" cache-init "$L"
err_has "holds a torn record at its head (block 1, seq 1)"
check_ok "cache-init --force over a torn head record" "$P" cache-init "$L" --force

# A wrong sequence number after the first record.
fresh "$L"
n=$("$REC" "$L" record 1 1 --entries 1)
"$REC" "$L" record "$n" 5 >/dev/null
show seq "$L"
expect_show "the scan stops at a wrong seq" seq \
	"block $n: seq 5 expected 2" "records: 1, blocks: 2" "1"

# Open generations: rising is fine, an older one is a stale record.
fresh "$L"
"$REC" "$L" super --open-gen 3
n=$("$REC" "$L" record 1 1 --gen 2)
n=$("$REC" "$L" record "$n" 2 --gen 3)
stale=$n
n=$("$REC" "$L" record "$n" 3 --gen 2)
"$REC" "$L" record "$n" 4 --gen 3 >/dev/null
show gen "$L"
expect_show "the scan stops at a stale open_gen" gen \
	"block $stale: seq 3 open_gen 2 older than 3 (stale record)" \
	"records: 2, blocks: 4" "1 2"
grep -q '^record: seq 2 .* open_gen 3 ' "$T/show.gen" &&
	ok "record lines carry the open_gen" || not_ok "open_gen in the record lines"

# A record pointing back into the walked part: the seq check stops it.
fresh "$L"
n=$("$REC" "$L" record 1 1 --entries 1)
"$REC" "$L" record "$n" 2 --next 1 >/dev/null
show loop "$L"
expect_show "a loop back to the head ends the walk" loop \
	"block 1: seq 1 expected 3" "records: 2, blocks: 4" "1 2"

# Around the ring: head at block 250 (seq 10); a 4-block record 250..253
# whose next_block is 1; seq 11 at 1; a drained older record (seq 3) at
# 9 is not followed.
fresh "$L"
"$REC" "$L" super --head-seq 10 --head-block 250
n=$("$REC" "$L" record 250 10 --entries 4 --discards 1 --next 1)
n=$("$REC" "$L" record 1 11 --snapshot 4)
"$REC" "$L" record 9 3 >/dev/null
show wrap "$L"
expect_show "the walk follows next_block around the ring" wrap \
	"block 2: no record (bad magic number)" "records: 2, blocks: 5" "10 11"
grep -q '^record: seq 10 block 250 type write entries 4 data_blocks 3 next 1 ' "$T/show.wrap" &&
	ok "the record at the ring's end" || not_ok "the record at the ring's end"

# A 256-block record (the most data one record holds) at the head.
W=$T/wide.img
rm -f "$W"
truncate -s 2M "$W"
"$P" cache-init "$W" >/dev/null
"$REC" "$W" record 1 1 --entries 256 >/dev/null
show wide "$W"
expect_show "a record with 256 data blocks" wide \
	"block 258: no record (bad magic number)" "records: 1, blocks: 257" "1"

# cache-show writes nothing.
dev_hash "$L"
before=$HASH_VAL
"$P" cache-show "$L" >/dev/null
dev_hash "$L"
[ "$before" = "$HASH_VAL" ] && ok "cache-show writes nothing" ||
	not_ok "cache-show changed the log"

finish
