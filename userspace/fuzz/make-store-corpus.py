#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Write the seed corpus of fuzz-store (userspace/fuzz/store-corpus).

  make-store-corpus.py FUZZ-STORE OUTDIR

FUZZ-STORE is the built harness (make -C userspace build/fuzz-store); it
prints its base image with FUZZ_STORE_DUMP=1, and the seeds name blocks of
that image, found here by reading it: the undamaged store, then targeted
damage to the superblock, catalogue, bitmaps, VDI records, snapshot logs
and radix nodes.  See fuzz-store.c for the input encoding.
"""
import os
import struct
import subprocess
import sys

BS = 4096
FIX_CRC, FIX_BLOCKNR, TRUNCATE = 1, 2, 4
MAGIC_VDI, MAGIC_LOG = 0x56584C50, 0x4C584C50
RO = 1 << 63


def lit(blk, off, data):
    out = b""
    while data:
        chunk, data = data[:128], data[128:]
        out += struct.pack("<HHB", blk, off, len(chunk) - 1) + chunk
        off += len(chunk)
    return out


def u64(blk, off, val):
    return lit(blk, off, struct.pack("<Q", val & ((1 << 64) - 1)))


def u32(blk, off, val):
    return lit(blk, off, struct.pack("<I", val))


def copy(blk, src):
    return struct.pack("<HHBH", blk, 0, 0x80, src)


def fill64(blk, off, val, n):
    """n (8..512, a multiple of 8) u64 entries of val from byte off."""
    return struct.pack("<HHBQ", blk, off, 0xC0 + n // 8 - 1, val)


class Store:
    def __init__(self, img):
        self.img = img
        sb = self.block(0)
        (self.nr_blocks, self.ext_blocks, self.nr_ext, self.sys_ext,
         self.cat_start, self.cat_blocks, self.reg_start,
         self.slots) = struct.unpack_from("<8Q", sb, 64)
        self.vdis = {}
        for i in range(self.slots):
            b = self.block(self.reg_start + i)
            if struct.unpack_from("<I", b, 4)[0] != MAGIC_VDI:
                continue
            f = struct.unpack_from("<12QIB", b, 32)
            self.vdis[i + 1] = dict(
                block=self.reg_start + i, flags=f[1], size=f[2], root=f[3],
                log=f[4], seq=f[5], parent=f[6], height=f[13])

    def block(self, n):
        return self.img[n * BS:(n + 1) * BS]

    def ptrs(self, n):
        return struct.unpack_from("<512Q", self.block(n))

    def first_child(self, n):
        for i, p in enumerate(self.ptrs(n)):
            if p:
                return i, p & (RO - 1)
        raise SystemExit("node %d is empty" % n)

    def log_chain(self, vdi):
        b, out = self.vdis[vdi]["log"], []
        while b:
            out.append(b)
            b = struct.unpack_from("<Q", self.block(b), 40)[0]
        return out


def seeds(st):
    a, b, c, e = (st.vdis[i] for i in (1, 2, 3, 5))
    ra, rc = a["root"], c["root"]
    _, la = st.first_child(ra)          # a's first level-1 node
    _, da = st.first_child(la)          # and its first data block
    dextent = da // st.ext_blocks * st.ext_blocks
    mextent = ra // st.ext_blocks * st.ext_blocks
    free_ext = (st.nr_ext - 1) * st.ext_blocks
    elog = st.log_chain(5)              # e: head first, two blocks
    # Zero radix nodes: e's snapshot roots (e has no data).
    zeros = [struct.unpack_from("<Q", st.block(elog[-1]), 64 + 64 * i)[0]
             for i in range(1, 5)]
    va, vb, ve = a["block"], b["block"], e["block"]
    n = st.nr_blocks
    F = bytes([FIX_CRC])
    s = {}
    s["base"] = b"\0"
    # Superblock.
    s["sb-magic"] = b"\0" + lit(0, 4, b"X")
    s["sb-crc"] = b"\0" + lit(0, 300, b"\1")
    s["sb-version"] = F + u32(0, 32, 2)
    s["sb-incompat"] = F + u64(0, 56, 1)
    s["sb-blocksize"] = F + u32(0, 36, 512)
    s["sb-extent-blocks"] = F + u64(0, 72, st.ext_blocks * 2)
    s["sb-nr-extents-huge"] = F + u64(0, 80, 1 << 60) + u64(0, 64, 0)
    s["sb-fewer-extents"] = (F + u64(0, 80, st.nr_ext - 1) +
                             u64(0, 64, n - st.ext_blocks))
    s["sb-registry-1000"] = F + u64(0, 112, 1000)
    s["sb-registry-max"] = F + u64(0, 112, 1 << 20)
    s["sb-catalogue-start"] = F + u64(0, 96, 2)
    s["dev-short"] = bytes([TRUNCATE]) + struct.pack("<H", n - 100)
    s["dev-one-block"] = bytes([TRUNCATE]) + struct.pack("<H", 1)
    s["dev-system-only"] = (bytes([TRUNCATE]) + struct.pack("<H", 1024))
    # Catalogue (block 1): entry e at byte 32 + 32 e.
    cat = st.cat_start
    s["cat-crc"] = b"\0" + lit(cat, 100, b"\xff")
    s["cat-meta-as-data"] = F + lit(cat, 32 + 32 * (ra // st.ext_blocks),
                                    b"\2")
    s["cat-data-as-free"] = F + lit(cat, 32 + 32 * (da // st.ext_blocks),
                                    b"\0")
    s["cat-data-as-meta"] = F + lit(cat, 32 + 32 * (da // st.ext_blocks),
                                    b"\3")
    s["cat-type-9"] = F + lit(cat, 32 + 32 * 3, b"\x09")
    s["cat-used-huge"] = F + u32(cat, 32 + 32 * 2 + 16, 0xFFFFFFFF)
    s["cat-padding"] = F + lit(cat, 32 + 32 * st.nr_ext, b"\1")
    s["cat-system-free"] = F + lit(cat, 32, b"\0")
    # Bitmaps.
    s["bitmap-crc"] = b"\0" + lit(mextent, 40, b"\0")
    s["bitmap-data-unmarked"] = F + fill64(dextent, 32, 0, 64)
    s["bitmap-free-garbage"] = b"\0" + fill64(free_ext, 0, 0x1234, 512)
    # VDI records: id 32, flags 40, size 48, root 56, log 64, seq 72,
    # parent 80, parent_seq 88, parent_log 96, holder 128, height 132,
    # name 136.
    s["vdi-root-range"] = F + u64(va, 56, n + 5)
    s["vdi-root-system"] = F + u64(va, 56, 3)
    s["vdi-root-bitmap"] = F + u64(va, 56, mextent)
    s["vdi-root-data"] = F + u64(va, 56, da)
    s["vdi-root-zero"] = F + u64(va, 56, 0)
    s["vdi-height-0"] = F + lit(va, 132, b"\0")
    s["vdi-height-5"] = F + lit(va, 132, b"\5")
    s["vdi-height-3"] = F + lit(va, 132, b"\3")
    s["vdi-size-huge"] = F + lit(va, 132, b"\4") + u64(va, 48, 1 << 48)
    s["vdi-size-odd"] = F + u64(va, 48, 4097)
    s["vdi-size-small"] = F + u64(va, 48, 4096)
    s["vdi-name-bad"] = F + lit(va, 136, b"a/b")
    s["vdi-name-digits"] = F + lit(va, 136, b"7")
    s["vdi-id-wrong"] = F + u64(va, 32, 2)
    s["vdi-flags-unknown"] = F + u64(va, 40, 6)
    s["vdi-deleted-parent"] = F + u64(va, 40, 1)
    s["vdi-seq-no-log"] = F + u64(va, 64, 0)
    s["vdi-seq-long"] = F + u64(va, 72, 1000)
    s["vdi-seq-short"] = F + u64(va, 72, 2)
    s["vdi-log-data"] = F + u64(va, 64, da)
    s["vdi-parent-self"] = F + u64(vb, 80, 2)
    s["vdi-parent-free"] = F + u64(vb, 80, 7)
    s["vdi-parent-deleted"] = F + u64(vb, 80, 4)
    s["vdi-parent-seq"] = F + u64(vb, 88, 99)
    s["vdi-parent-log-root"] = F + u64(vb, 96, ra)
    s["vdi-holder"] = F + u32(va, 128, 3)
    s["vdi-copied"] = (bytes([FIX_CRC | FIX_BLOCKNR]) + copy(va + 6, va) +
                       u64(va + 6, 32, 7) + lit(va + 6, 136, b"z"))
    s["vdi-stale-uuid"] = F + lit(ve, 8 + 8 + 3, b"\x5a")
    # Snapshot logs: vdi 32, prev 40, count 48, records from 64
    # (root, timestamp, seq, flags, reserved, label).
    h = a["log"]
    s["log-crc"] = b"\0" + lit(h, 70, b"\1")
    s["log-count-0"] = F + u32(h, 48, 0)
    s["log-count-64"] = F + u32(h, 48, 64)
    s["log-count-big"] = F + u32(h, 48, 200)
    s["log-prev-self"] = F + u64(h, 40, h)
    s["log-prev-stale"] = F + u64(h, 40, elog[1])
    s["log-vdi-wrong"] = F + u64(h, 32, 2)
    s["log-seq-gap"] = F + u64(h, 64 + 64 + 16, 5)
    s["log-seq-zero"] = F + u64(h, 64 + 16, 0)
    s["log-flags"] = F + u32(h, 64 + 24, 2)
    s["log-label-bad"] = F + lit(h, 64 + 32, b"!!")
    s["log-root-range"] = F + u64(h, 64, n + 1)
    s["log-root-data"] = F + u64(h, 64, da)
    s["log-chain-cycle"] = F + u64(elog[-1], 40, elog[0])
    s["log-chain-cut"] = F + u64(elog[0], 40, 0)
    s["log-chain-swap"] = (bytes([FIX_CRC | FIX_BLOCKNR]) +
                           copy(elog[0], elog[-1]))
    s["log-head-copied"] = (bytes([FIX_CRC | FIX_BLOCKNR]) +
                            copy(h, b["log"]))
    # Radix nodes: a's root (level 1), its first level-1 node (level 0).
    s["radix-range"] = b"\0" + u64(ra, 0, n + 7)
    s["radix-ro-zero"] = b"\0" + u64(ra, 0, RO)
    s["radix-self"] = b"\0" + u64(ra, 8, ra)
    s["radix-ancestor"] = b"\0" + u64(la, 8, ra)
    s["radix-root-to-data"] = b"\0" + u64(ra, 8, da)
    s["radix-leaf-to-node"] = b"\0" + u64(la, 40 * 8, la)
    s["radix-leaf-system"] = b"\0" + u64(la, 40 * 8, 2)
    s["radix-leaf-bitmap"] = b"\0" + u64(la, 40 * 8, dextent)
    s["radix-leaf-free"] = b"\0" + u64(la, 40 * 8, free_ext + 9)
    s["radix-beyond-size"] = b"\0" + u64(ra, 300 * 8, la)
    s["radix-twice"] = b"\0" + u64(ra, 8, la)
    s["radix-twice-ro"] = b"\0" + u64(ra, 8, la | RO)
    s["radix-data-shared"] = b"\0" + u64(la, 50 * 8, da)
    s["radix-unallocated"] = b"\0" + u64(la, 50 * 8, da + 500)
    s["radix-node-copy"] = b"\0" + copy(b["root"], ra)
    # A small VDI of height 4 whose nodes fan out to shared empty nodes:
    # 512^3 paths through four blocks.
    s["radix-fanout"] = (F + lit(c["block"], 132, b"\4") +
                         fill64(rc, 0, zeros[0], 512) +
                         fill64(zeros[0], 0, zeros[1], 512) +
                         fill64(zeros[1], 0, zeros[2], 512))
    s["radix-fanout-big"] = (s["radix-fanout"] +
                             u64(c["block"], 48, 1 << 48))
    return s


def main():
    harness, outdir = sys.argv[1], sys.argv[2]
    env = dict(os.environ, FUZZ_STORE_DUMP="1")
    img = subprocess.run([harness, "-runs=0"], env=env, check=True,
                         stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL).stdout
    st = Store(img)
    os.makedirs(outdir, exist_ok=True)
    for name, data in sorted(seeds(st).items()):
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
