#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Helpers for tests/kernel/cache.sh (the local write cache).

stampimage LOG NBLOCKS OUT
    The image that kt.py stampwrite's LOG (JSON) leaves on its device:
    each block the stamp of its last write, never-written blocks zero;
    NBLOCKS blocks, written to OUT.

blockdiff A B
    Prints "N of M blocks differ" for two files compared 4 KiB block by
    block (the shorter one padded with zeros); exits 0 whether or not
    they differ.

flip FILE OFFSET
    XOR the byte at OFFSET of FILE with 0xff (in place).

records SHOW
    From the output of "parallax cache-show", one line per record:
    "SEQ BLOCK TYPE DATA_BLOCKS SNAP_SEQ LABEL".

states FILE FIELD
    FILE holds "dmsetup status" lines; prints the distinct values of the
    status field FIELD (numbered as in lib.sh's g_status) in the order
    first seen, and for numeric fields their maximum: "values v1,v2 max M".
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kt  # noqa: E402

BS = 4096


def stampimage(log, nblocks, out):
    with open(log) as f:
        lg = json.load(f)
    nthr, orders = lg["threads"], lg["orders"]
    nblocks = int(nblocks)
    want = [0] * nblocks
    for t in range(nthr):
        for k, blk in enumerate(orders[t], 1):
            want[blk] = k * nthr + t
    with open(out, "wb") as f:
        for blk in range(nblocks):
            f.write(kt.stamp(blk, want[blk]) if want[blk] else bytes(BS))
    print("%d writes, %d blocks written" % (sum(map(len, orders)),
                                           sum(1 for w in want if w)))


def blockdiff(a, b):
    da, db = open(a, "rb").read(), open(b, "rb").read()
    n = max(len(da), len(db))
    da, db = da.ljust(n, b"\0"), db.ljust(n, b"\0")
    bad = sum(1 for i in range(0, n, BS) if da[i:i + BS] != db[i:i + BS])
    print("%d of %d blocks differ" % (bad, (n + BS - 1) // BS))


def flip(path, offset):
    with open(path, "r+b") as f:
        f.seek(int(offset))
        b = f.read(1)
        f.seek(int(offset))
        f.write(bytes([b[0] ^ 0xFF]))


def records(show):
    for line in open(show):
        w = line.split()
        if w and w[0] == "record:":
            kv = dict(zip(w[1::2], w[2::2]))
            print(kv["seq"], kv["block"], kv["type"], kv["data_blocks"],
                  kv["snap_seq"], kv["label"])


def states(path, field):
    idx = 2 + int(field)        # "<start> <len> parallax" come first
    seen, top = [], None
    for line in open(path):
        w = line.split()
        if len(w) <= idx or w[2] != "parallax":
            continue
        v = w[idx]
        if v not in seen:
            seen.append(v)
        if v.isdigit():
            top = max(top or 0, int(v))
    print("values %s max %s" % (",".join(seen) or "-", "-" if top is None else top))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    fn = {"stampimage": stampimage, "blockdiff": blockdiff, "flip": flip,
          "records": records, "states": states}.get(cmd)
    if not fn:
        sys.exit(__doc__)
    fn(*args)


if __name__ == "__main__":
    main()
