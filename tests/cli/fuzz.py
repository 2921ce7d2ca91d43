#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Random damage to a small store's metadata: no parallax command may
crash or hang, whatever it reads.  Used by fuzz.sh.

  fuzz.py PARALLAX STORE IMAGE SEED ITERATIONS

STORE is a populated 32 MiB store (4 MiB extents) with VDIs a and b and
a snapshot labelled s; IMAGE a small raw image for import.  Each
iteration damages 1-3 metadata blocks (random bytes or plausible
pointers, crc recomputed most of the time so that the damage gets past
the checksum) and runs every kind of command on the copy.  Exit status
0, 1 and 2 are fine; a signal, another status or a timeout is a failure.
"""
import os
import random
import shutil
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plxblk import crc32c  # noqa: E402

BS = 4096
MAGICS = (0x53584C50, 0x43584C50, 0x42584C50, 0x56584C50, 0x4C584C50)


def damage(path, blocks, rnd):
    with open(path, "r+b") as f:
        for _ in range(rnd.randint(1, 3)):
            blk = rnd.choice(blocks)
            f.seek(blk * BS)
            b = bytearray(f.read(BS))
            if rnd.random() < 0.5:
                off = rnd.randrange(600) if rnd.random() < 0.8 else rnd.randrange(BS)
                b[off] = rnd.randrange(256)
            else:
                off = rnd.randrange(600) & ~7
                val = rnd.choice([0, 1, 2, 5, 1024, 1030, 2048, 2049, 3000,
                                  8191, 8192, 1 << 63 | 1030, (1 << 64) - 1,
                                  rnd.randrange(1 << 64)])
                struct.pack_into("<Q", b, off, val)
            magic = struct.unpack_from("<I", b, 4)[0]
            if magic in MAGICS and rnd.random() < 0.7:
                struct.pack_into("<I", b, 0, crc32c(bytes(b[4:])))
            f.seek(blk * BS)
            f.write(b)


def main():
    plx, store, image, seed, iters = sys.argv[1:6]
    rnd = random.Random(int(seed))
    # System area, the metadata extent's first blocks, bitmaps.
    blocks = list(range(0, 20)) + list(range(1024, 1040)) + [2048, 3072]
    work = store + ".fuzz"
    n = 0
    failed = 0
    for it in range(int(iters)):
        shutil.copy(store, work)
        damage(work, blocks, rnd)
        bad = []
        for cmd in (["check", work], ["list", work, "--all"],
                    ["tree", work], ["tree", work, "--json"],
                    ["snaplog", work, "a"],
                    ["export", work, "a", "/dev/null"],
                    ["export", work, "s", "/dev/null"],
                    ["dump", work], ["dump", work, str(rnd.choice(blocks))],
                    ["snapshot", work, "b"], ["import", work, "b", image],
                    ["create", work, "c", "--from", "1@1"],
                    ["label", work, "1@1", "z"], ["delete", work, "s"],
                    ["check", work, "--json"]):
            try:
                r = subprocess.run([plx] + cmd, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, timeout=60)
                if r.returncode not in (0, 1, 2):
                    bad.append("%s: status %d %s" % (cmd[0], r.returncode,
                                                     r.stderr[:200]))
            except subprocess.TimeoutExpired:
                bad.append("%s: timed out" % cmd[0])
        n += 1
        if bad:
            failed += 1
            keep = "%s.crash-%d" % (store, it)
            shutil.copy(work, keep)
            print("not ok %d - damage #%d (seed %s): %s; kept %s"
                  % (n, it, seed, "; ".join(bad), keep))
        else:
            print("ok %d - damage #%d (seed %s): 15 commands, no crash"
                  % (n, it, seed))
    os.unlink(work)
    print("1..%d" % n)
    sys.exit(1 if failed else 0)


main()
