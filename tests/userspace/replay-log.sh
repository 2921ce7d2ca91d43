#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# tests/crash/replay-log against logs made here in dm-log-writes' format
# (drivers/md/dm-log-writes.c): the entry list, prefix points, the
# volatile-cache model (what a FLUSH made durable and FUA writes are
# always there, other later writes are each kept or dropped, and a drop
# seed repeats its choice), discards, and refusal of damaged logs.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
RL=$top/tests/crash/replay-log
T=$(mktemp -d /tmp/plx-rl.XXXXXX)
trap 'rm -rf "$T"' EXIT
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }

if ! make -s -C "$top/userspace" ../tests/crash/replay-log >"$T/out" 2>&1; then
	echo "not ok 1 - build replay-log"
	sed 's/^/# /' "$T/out"
	exit 1
fi

# mklog.py LOG SECTORSIZE: a log of 4 KiB writes to a 64 KiB device, each
# filling its block with one byte value; prints the model as JSON.
cat >"$T/mklog.py" <<'EOF'
import json, struct, sys
log, ss = sys.argv[1], int(sys.argv[2])
FLUSH, FUA, DISCARD, MARK = 1, 2, 4, 8
# (flags, block, value) or ("mark", label)
ops = [(0, 0, 1), (0, 1, 2), (FLUSH, None, 0), (0, 2, 3), (FUA, 3, 4),
       (0, 0, 5), ("mark", "m1"), (FLUSH, 4, 6), (0, 5, 7), (DISCARD, 1, 0),
       (0, 6, 8), (FUA, 7, 9), (0, 8, 10)]
body = b""
for op in ops:
    if op[0] == "mark":
        lab = op[1].encode()
        ent = struct.pack("<QQQQ", 0, 0, MARK, len(lab)) + lab
        body += ent.ljust(ss, b"\0")
        continue
    fl, blk, val = op
    if blk is None:
        body += struct.pack("<QQQQ", 0, 0, fl, 0).ljust(ss, b"\0")
        continue
    nr = 4096 // ss
    body += struct.pack("<QQQQ", blk * nr, nr, fl, 0).ljust(ss, b"\0")
    if not fl & DISCARD:
        body += bytes([val]) * 4096
sup = struct.pack("<QQQI", 0x6a736677736872, 1, len(ops), ss).ljust(ss, b"\0")
open(log, "wb").write(sup + body)
print(json.dumps([list(o) for o in ops]))
EOF

# model.py OPS N [KEEP...]: device bytes (16 blocks) after N entries; KEEP
# lists the indexes of the optional (unflushed, non-FUA) writes kept.
cat >"$T/model.py" <<'EOF'
import json, sys
ops, n = json.loads(open(sys.argv[1]).read()), int(sys.argv[2])
keep = set(int(k) for k in sys.argv[3:]) if len(sys.argv) > 3 else None
dev = bytearray(16 * 4096)
last_flush = max([i for i in range(n) if ops[i][0] != "mark" and ops[i][0] & 1] or [0])
for i in range(n):
    op = ops[i]
    if op[0] == "mark" or op[1] is None:
        continue
    fl, blk, val = op
    if keep is not None and i >= last_flush and not fl & 2 and i not in keep:
        continue
    dev[blk * 4096:(blk + 1) * 4096] = bytes([val if not fl & 4 else 0]) * 4096
sys.stdout.buffer.write(bytes(dev))
EOF

for ss in 512 4096; do
	python3 "$T/mklog.py" "$T/log" $ss >"$T/ops"
	truncate -s 64K "$T/base"
	"$RL" --log "$T/log" --list >"$T/list"
	if grep -q "sectorsize $ss, 13 entries" "$T/list" && grep -q '^6 mark m1$' "$T/list" &&
		grep -q '^9 discard 4096+4096$' "$T/list" && grep -q '^7 write flush 16384+4096$' "$T/list"; then
		ok "sector size $ss: --list shows the 13 entries, the mark, the discard and the flush"
	else
		not_ok "sector size $ss: --list"
		sed 's/^/# /' "$T/list"
	fi
	bad=0
	for p in $(seq 0 13); do
		"$RL" --log "$T/log" --base "$T/base" --image "$T/img" --to $p >/dev/null 2>&1 || bad=$((bad + 1))
		python3 "$T/model.py" "$T/ops" $p | cmp -s - "$T/img" || bad=$((bad + 1))
	done
	[ $bad = 0 ] && ok "sector size $ss: every prefix point 0..13 equals the model" ||
		not_ok "sector size $ss: $bad prefix points differ from the model"
done

# Volatile cache at point 13: the last flush is entry 7, so entries 7, 8,
# 10 and 12 may be lost, 11 (FUA) may not, and 9 (a discard) is applied
# or not; every seed must give one of those images.
python3 - "$RL" "$T" <<'EOF' >"$T/vol" 2>&1
import itertools, subprocess, sys
rl, t = sys.argv[1], sys.argv[2]
def model(keep):
    return subprocess.run(["python3", t + "/model.py", t + "/ops", "13", "-1"] +
                          [str(k) for k in keep], stdout=subprocess.PIPE).stdout
images = {}
for r in range(6):
    for keep in itertools.combinations((7, 8, 9, 10, 12), r):
        images[model(keep)] = keep
bad, seen = 0, set()
for s in range(1, 41):
    subprocess.run([rl, "--log", t + "/log", "--base", t + "/base", "--image", t + "/img",
                    "--to", "13", "--drop-seed", str(s)], stdout=subprocess.DEVNULL, check=True)
    got = open(t + "/img", "rb").read()
    if got in images:
        seen.add(images[got])
    else:
        bad += 1
print(bad, len(seen))
EOF
read -r bad nseen <"$T/vol"
[ "$bad" = 0 ] && ok "volatile cache: 40 seeds each give a possible image" ||
	not_ok "volatile cache: $bad of 40 seeds give an impossible image $(cat "$T/vol")"
[ "${nseen:-0}" -ge 8 ] 2>/dev/null && ok "volatile cache: the seeds give $nseen different images of 32" ||
	not_ok "volatile cache: only ${nseen:-?} different images from 40 seeds"
"$RL" --log "$T/log" --base "$T/base" --image "$T/a" --to 13 --drop-seed 7 >/dev/null
"$RL" --log "$T/log" --base "$T/base" --image "$T/b" --to 13 --drop-seed 7 >/dev/null
cmp -s "$T/a" "$T/b" && ok "a drop seed repeats its image" || not_ok "a drop seed repeats its image"

# Damaged logs are refused with a message, not replayed.
printf 'XXXXXXXX' | dd of="$T/log" conv=notrunc status=none
"$RL" --log "$T/log" --list >"$T/out" 2>&1
[ $? = 2 ] && grep -q 'not a dm-log-writes log' "$T/out" && ok "a log with a bad magic is refused" ||
	not_ok "a log with a bad magic is refused: $(cat "$T/out")"
python3 "$T/mklog.py" "$T/log" 4096 >/dev/null
truncate -s 20000 "$T/log"
"$RL" --log "$T/log" --list >"$T/out" 2>&1
[ $? = 2 ] && grep -q 'runs past the end\|cannot fit' "$T/out" && ok "a truncated log is refused: $(cat "$T/out")" ||
	not_ok "a truncated log is refused: $(cat "$T/out")"
"$RL" --log "$T/log" --to x >"$T/out" 2>&1
[ $? = 2 ] && grep -q "'x' is not a number" "$T/out" && ok "a bad number is refused" ||
	not_ok "a bad number is refused: $(cat "$T/out")"
"$RL" --help | grep -q 'volatile write cache' && ok "--help documents the model" ||
	not_ok "--help documents the model"

echo "1..$n"
[ $failed = 0 ]
