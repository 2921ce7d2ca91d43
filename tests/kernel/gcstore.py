#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Read a blockstore the way the garbage collector does, for gc-messages.sh.

Every read is O_DIRECT, so that the store can be read under a live table
(the table writes through dm-bufio, never through DEV's page cache).

state DEV OUT
    Write OUT (JSON): for each data or metadata extent its catalogue
    entry and the blocks its on-disk bitmap marks allocated (bitmap blocks
    left out), and the blocks reachable from live VDIs: their radix trees,
    snapshot logs, live snapshots' trees and clones' parent_log blocks.
garbage STATE
    Print, one a line, the allocated blocks of STATE nothing reaches.
freed BEFORE AFTER
    Print the blocks allocated in BEFORE and not in AFTER.
unreached STATE EXTENT
    Print the lowercase hex bitmap of EXTENT with a bit set for every
    block STATE does not reach, bitmap blocks and free blocks included
    (LSB first, as on disk): what a collector that marked STATE sends.
fence DEV EXTENT
    Bump EXTENT's catalogue generation on disk, as "parallax unlock"
    does when it breaks a lock, and reseal the catalogue block.
"""
import json
import mmap
import os
import struct
import sys

BS = 4096
HDR = 32
MAGIC_VDI = 0x56584C50
MAGIC_SNAPLOG = 0x4C584C50
VDI_DELETED = 1
SNAP_DELETED = 1
PER_CAT = (BS - HDR) // 32
BITS_PER_BITMAP = (BS - HDR) * 8
ADDR_MASK = (1 << 63) - 1

_TAB = []


def crc32c(data):
    if not _TAB:
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
            _TAB.append(c)
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TAB[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


class Store:
    def __init__(self, dev, write=False):
        self.fd = os.open(dev, (os.O_RDWR if write else os.O_RDONLY) | os.O_DIRECT)
        self.buf = mmap.mmap(-1, BS)
        sb = self.read(0)
        (self.extent_blocks, self.nr_extents, self.system_extents,
         self.catalogue_start, _, self.registry_start,
         self.registry_slots) = struct.unpack_from("<7Q", sb, 72)
        self.bitmap_blocks = -(-self.extent_blocks // BITS_PER_BITMAP)

    def read(self, blk):
        if os.preadv(self.fd, [self.buf], blk * BS) != BS:
            sys.exit("short read of block %d" % blk)
        return bytes(self.buf)

    def write(self, blk, data):
        self.buf[:] = data
        if os.pwritev(self.fd, [self.buf], blk * BS) != BS:
            sys.exit("short write of block %d" % blk)
        os.fsync(self.fd)

    def entry(self, ext):
        cb = self.read(self.catalogue_start + ext // PER_CAT)
        off = HDR + (ext % PER_CAT) * 32
        typ, holder, gen = struct.unpack_from("<B3xIQ", cb, off)
        return {"type": typ, "holder": holder, "generation": gen}

    def allocated(self, ext):
        base = ext * self.extent_blocks
        out = []
        for i in range(self.bitmap_blocks):
            bits = self.read(base + i)[HDR:]
            for off in range(i * BITS_PER_BITMAP,
                             min((i + 1) * BITS_PER_BITMAP, self.extent_blocks)):
                bit = off - i * BITS_PER_BITMAP
                if off >= self.bitmap_blocks and bits[bit // 8] >> (bit % 8) & 1:
                    out.append(base + off)
        return out

    def tree(self, root, height, seen):
        """Mark the tree under root; nodes shared with another are walked once."""
        if not root or root in seen:
            return
        seen.add(root)
        if height == 0:
            return
        for p in struct.unpack("<512Q", self.read(root)):
            if p:
                self.tree(p & ADDR_MASK, height - 1, seen)

    def reachable(self):
        seen = set()
        for vid in range(1, self.registry_slots + 1):
            v = self.read(self.registry_start + vid - 1)
            if struct.unpack_from("<I", v, 4)[0] != MAGIC_VDI:
                continue
            (_, flags, _, root, log, _, _, _, plog) = struct.unpack_from("<9Q", v, 32)
            height = v[132]
            if flags & VDI_DELETED:
                continue
            # The tree's levels are height - 1 .. 0, level 0 holding data.
            self.tree(root, height, seen)
            if plog:
                seen.add(plog)
            hops = 0
            while log and hops < 1 << 20:
                seen.add(log)
                lb = self.read(log)
                if struct.unpack_from("<I", lb, 4)[0] != MAGIC_SNAPLOG:
                    break
                prev, count = struct.unpack_from("<QI", lb, 40)
                for r in range(count):
                    sroot, _, _, sflags = struct.unpack_from("<QQQI", lb, 64 + 64 * r)
                    if not sflags & SNAP_DELETED:
                        self.tree(sroot, height, seen)
                log = prev
                hops += 1
        return seen


def state(dev, out):
    s = Store(dev)
    exts = {}
    for ext in range(s.system_extents, s.nr_extents):
        e = s.entry(ext)
        if e["type"] in (2, 3):
            e["allocated"] = s.allocated(ext)
            exts[ext] = e
    doc = {"extent_blocks": s.extent_blocks, "bitmap_blocks": s.bitmap_blocks,
           "extents": exts, "reachable": sorted(s.reachable())}
    with open(out, "w") as f:
        json.dump(doc, f)


def load(path):
    with open(path) as f:
        return json.load(f)


def allocated(doc):
    return {b for e in doc["extents"].values() for b in e["allocated"]}


def garbage(path):
    doc = load(path)
    for b in sorted(allocated(doc) - set(doc["reachable"])):
        print(b)


def freed(before, after):
    for b in sorted(allocated(load(before)) - allocated(load(after))):
        print(b)


def unreached(path, ext):
    doc = load(path)
    n, base = doc["extent_blocks"], int(ext) * doc["extent_blocks"]
    reach = set(doc["reachable"])
    bits = bytearray(n // 8)
    for off in range(n):
        if base + off not in reach:
            bits[off // 8] |= 1 << (off % 8)
    print(bits.hex())


def fence(dev, ext):
    s = Store(dev, write=True)
    ext = int(ext)
    blk = s.catalogue_start + ext // PER_CAT
    b = bytearray(s.read(blk))
    off = HDR + (ext % PER_CAT) * 32 + 8
    struct.pack_into("<Q", b, off, struct.unpack_from("<Q", b, off)[0] + 1)
    struct.pack_into("<I", b, 0, crc32c(bytes(b[4:])))
    s.write(blk, bytes(b))


def main():
    cmds = {"state": state, "garbage": garbage, "freed": freed,
            "unreached": unreached, "fence": fence}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    cmds[sys.argv[1]](*sys.argv[2:])


if __name__ == "__main__":
    main()
