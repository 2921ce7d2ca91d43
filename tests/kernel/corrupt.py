#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Host side of tests/kernel/corrupt.sh: damaged copies of a store, and
the check that the guest wrote nothing it may not write.

cases PRISTINE OUTDIR SEED FIRST NTARGETED NRANDOM DISK MB
    Makes damaged copies of PRISTINE (a store of MB MiB): the first
    NTARGETED cases of the targeted list (targeted()), then NRANDOM random
    ones, deterministic for SEED and the case number.  Case i (from
    FIRST) goes into slice i - FIRST of DISK (MB MiB each) and, alone,
    into OUTDIR/case<i>.img for parallax check; OUTDIR/case<i>.pk keeps
    its damaged blocks and a hash of each of its non-zero 4 KiB blocks
    (every other block is zero).  A line "i<TAB>vdi<TAB>snap_seq<TAB>
    regex<TAB>name<TAB>must_fail" is appended to OUTDIR/manifest: the VDI
    the guest attaches, a snapshot it loads (0: none), what parallax
    check must report ("-": damage that no check can see; RANDOM: random
    damage), and 1 if the attached device must end up failed (a bad link
    on the path of the guest's I/O).

ntargeted PRISTINE
    Prints the number of targeted cases.

verify PRISTINE OUTDIR MANIFEST DISK FIRST MB
    For every case of MANIFEST, hashes the blocks of its slice of DISK
    (after the boot) and compares them with those recorded before it.
    Blocks the guest may write: the catalogue, the VDI's registry block,
    every block of an extent granted to the device (its "extents"
    message, saved in OUTDIR/ext<i>, and extents whose catalogue
    generation changed) and every block the damaged live tree of the VDI
    links writably, followed the way the kernel follows it.  Prints a
    line per case: "ok" or "bad", the case, what was found.
"""
import hashlib
import os
import random
import pickle
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "cli"))
from plxblk import crc32c  # noqa: E402

BS = 4096
RO = 1 << 63
MASK = RO - 1
MAGICS = (0x53584C50, 0x43584C50, 0x42584C50, 0x56584C50, 0x4C584C50)
EXT_FREE, EXT_SYSTEM, EXT_DATA, EXT_META = 0, 1, 2, 3
ZERO = bytes(BS)


def u64(b, off):
    return struct.unpack_from("<Q", b, off)[0]


class Store:
    """A store image read into memory, with the geometry of its superblock."""

    def __init__(self, path, buf=None):
        if buf is None:
            with open(path, "rb") as f:
                buf = f.read()
        self.buf = bytearray(buf)
        self.path = path
        self.dirty = set()
        self.nblk = len(self.buf) // BS
        sb = self.blk(0)
        self.eb = u64(sb, 72)
        self.next = u64(sb, 80)
        self.sysext = u64(sb, 88)
        self.cat_start = u64(sb, 96)
        self.cat_blocks = u64(sb, 104)
        self.reg_start = u64(sb, 112)
        self.slots = u64(sb, 120)
        self.ok = (self.eb and self.eb & (self.eb - 1) == 0 and
                   self.eb * self.next <= self.nblk and self.cat_start == 1 and
                   self.cat_blocks < 64 and self.slots < 4096)
        self.bmb = (self.eb + 32511) // 32512 if self.ok else 0
        self.types = []
        self.gens = []
        if self.ok:
            for e in range(self.next):
                cb = self.blk(1 + e // 127)
                off = 32 + 32 * (e % 127)
                self.types.append(cb[off])
                self.gens.append((u64(cb, off + 8), u64(cb, off + 4) & 0xFFFFFFFF))

    def blk(self, n):
        return bytes(self.buf[n * BS:(n + 1) * BS])

    def put(self, n, data):
        self.buf[n * BS:(n + 1) * BS] = data
        self.dirty.add(n)

    def copy(self):
        c = object.__new__(Store)
        c.__dict__.update(self.__dict__)
        c.buf = bytearray(self.buf)
        c.dirty = set()
        return c

    def nonzero(self):
        return [n for n in range(self.nblk)
                if self.buf[n * BS:(n + 1) * BS] != ZERO]

    def save(self, f, base, blocks):
        """Write the non-zero blocks (of the list given) at byte base of f."""
        for n in blocks:
            f.seek(base + n * BS)
            f.write(self.buf[n * BS:(n + 1) * BS])

    def addr_ok(self, a, want):
        """plx_check_addr()"""
        if not self.ok or a >= self.eb * self.next:
            return False
        e = a // self.eb
        if e < self.sysext or a % self.eb < self.bmb:
            return False
        return self.types[e] == want

    def rec(self, vdi):
        return self.reg_start + vdi - 1

    def vdi(self, vdi):
        r = self.blk(self.rec(vdi))
        return {"root": u64(r, 56), "log": u64(r, 64), "snap_seq": u64(r, 72),
                "parent_log": u64(r, 96), "height": r[132], "size": u64(r, 48)}

    def writable(self, vdi):
        """Blocks the live tree of vdi links writably, as the kernel walks."""
        out = set()
        if not self.ok or not 1 <= vdi <= self.slots:
            return out
        v = self.vdi(vdi)
        if not 1 <= v["height"] <= 4 or not self.addr_ok(v["root"], EXT_META):
            return out
        out.add(v["root"])
        seen = set()
        todo = [(v["root"], v["height"] - 1)]
        while todo:
            node, level = todo.pop()
            if (node, level) in seen:
                continue
            seen.add((node, level))
            b = self.blk(node)
            for i in range(512):
                p = u64(b, 8 * i)
                if not p or p & RO:
                    continue
                if not self.addr_ok(p, EXT_META if level else EXT_DATA):
                    continue
                out.add(p)
                if level:
                    todo.append((p, level - 1))
        return out

    def reachable_nodes(self):
        """(block, level, vdi) of every radix node of live trees and snapshots."""
        out = []
        for vdi in range(1, self.slots + 1):
            r = self.blk(self.rec(vdi))
            if struct.unpack_from("<I", r, 4)[0] != MAGICS[3]:
                continue
            v = self.vdi(vdi)
            roots = [v["root"]]
            for lb in self.logchain(vdi):
                b = self.blk(lb)
                for i in range(struct.unpack_from("<I", b, 48)[0]):
                    roots.append(u64(b, 64 + 64 * i))
            seen = set()
            todo = [(rt, v["height"] - 1) for rt in roots]
            while todo:
                node, level = todo.pop()
                if node in seen:
                    continue
                seen.add(node)
                out.append((node, level, vdi))
                if level:
                    b = self.blk(node)
                    for i in range(512):
                        p = u64(b, 8 * i) & MASK
                        if p:
                            todo.append((p, level - 1))
        return out

    def logchain(self, vdi):
        b = self.vdi(vdi)["log"]
        out = []
        while b and b not in out and len(out) < 100:
            out.append(b)
            b = u64(self.blk(b), 40)
        return out


def reseal(b):
    b = bytearray(b)
    struct.pack_into("<I", b, 0, crc32c(bytes(b[4:])))
    return bytes(b)


def setq(b, off, val, seal=True):
    b = bytearray(b)
    struct.pack_into("<Q", b, off, val & (2 ** 64 - 1))
    return reseal(b) if seal else bytes(b)


def flip(b, off):
    b = bytearray(b)
    b[off] ^= 0xFF
    return bytes(b)


def blockhash(buf, n):
    return hashlib.blake2b(buf[n * BS:(n + 1) * BS], digest_size=12).hexdigest()


def data_blocks(f, base, nblk):
    """Block numbers (from base) that lie in data regions of sparse file f."""
    fd = f.fileno()
    end = base + nblk * BS
    pos = base
    out = []
    while pos < end:
        try:
            d = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:
            break
        if d >= end:
            break
        h = min(os.lseek(fd, d, os.SEEK_HOLE), end)
        out.extend(range((d - base) // BS, (h - base + BS - 1) // BS))
        pos = h
    return out


def targeted(p):
    """The targeted cases: (name, vdi, snap_seq, edits, check regex, must_fail).

    vdi is the VDI the guest attaches, snap_seq a snapshot it loads
    read-only (0 = none).  The regex must match a line of "parallax check"
    (None: the damage is not detectable, check may pass).
    """
    A, C, D = 1, 2, 3
    va, vc, vd = p.vdi(A), p.vdi(C), p.vdi(D)
    ra, rc, rd = va["root"], vc["root"], vd["root"]
    l0 = u64(p.blk(ra), 0) & MASK           # a's live level-0 node, writable
    d0 = u64(p.blk(l0), 0) & MASK           # a data block (writable)
    dl1 = u64(p.blk(rd), 0) & MASK          # d's level-1 node
    dl0 = u64(p.blk(dl1), 0) & MASK         # d's level-0 node
    loga = va["log"]
    logd = p.logchain(D)                    # [head, older]
    rega, regc, regd = p.rec(A), p.rec(C), p.rec(D)
    meta_ext = ra // p.eb
    data_ext = d0 // p.eb
    free_ext = p.next - 1
    far = 1 << 40
    cases = []

    def case(name, vdi, snap, regex, *edits, must_fail=False):
        cases.append((name, vdi, snap, edits, regex, must_fail))

    Z = bytes(BS)
    rnd = random.Random(4242)
    R = bytes(rnd.randrange(256) for _ in range(BS))

    def cat_entry(ext, off, size, val):
        def f(b):
            b = bytearray(b)
            o = 32 + 32 * (ext % 127) + off
            b[o:o + size] = val.to_bytes(size, "little")
            return reseal(b)
        return f

    # Superblock.
    case("superblock byte flipped", A, 0, r"block 0: superblock: checksum mismatch",
         (0, lambda b: flip(b, 70)))
    case("superblock zeroed", A, 0, r"not a Parallax blockstore \(no superblock magic in block 0\)",
         (0, lambda b: Z))
    case("superblock randomised", A, 0, r"no superblock magic in block 0",
         (0, lambda b: R))
    case("superblock extent_blocks 3 (resealed)", A, 0, r"block 0: superblock: .*geometry",
         (0, lambda b: setq(b, 72, 3)))
    case("superblock nr_extents beyond the device (resealed)", A, 0,
         r"block 0: superblock: ",
         (0, lambda b: setq(setq(b, 80, 1 << 20, False), 64, (1 << 20) * p.eb)))
    # Catalogue.
    case("catalogue byte flipped", A, 0, r"^block 1: extent catalogue: checksum mismatch",
         (1, lambda b: flip(b, 300)))
    case("catalogue zeroed", A, 0, r"^block 1: extent catalogue: ", (1, lambda b: Z))
    case("catalogue randomised", A, 0, r"^block 1: extent catalogue: ", (1, lambda b: R))
    case("catalogue: extent type 7 (resealed)", A, 0,
         r"^block 1: extent catalogue: .*catalogue",
         (1, cat_entry(data_ext, 0, 1, 7)))
    case("catalogue: tree's metadata extent typed data (resealed)", A, 0,
         r"^block %d: VDI 1 record: .*wrong type" % rega,
         (1, cat_entry(meta_ext, 0, 1, EXT_DATA)))
    case("catalogue: data extent typed metadata (resealed)", A, 0,
         r"^block %d: radix node \(level 0 of VDI 1\) entry 0 -> %d: .*wrong type" % (l0, d0),
         (1, cat_entry(data_ext, 0, 1, EXT_META)))
    case("catalogue: data extent typed free (resealed)", A, 0,
         r"^block %d: radix node \(level 0 of VDI 1\) entry 0 -> %d: .*wrong type" % (l0, d0),
         (1, cat_entry(data_ext, 0, 1, EXT_FREE)))
    # VDI records.
    case("VDI record byte flipped", A, 0, r"^block %d: VDI 1 record: checksum mismatch" % rega,
         (rega, lambda b: flip(b, 100)))
    case("VDI record zeroed (clone's parent)", A, 0,
         r"^block %d: VDI 2 is a clone of 1@1, but VDI 1 does not exist" % regc,
         (rega, lambda b: Z))
    # Without its magic a slot is free: the clone's parent is missing.
    case("VDI record randomised", A, 0,
         r"^block %d: VDI 2 is a clone of 1@1, but VDI 1 does not exist" % regc,
         (rega, lambda b: R))
    case("VDI record randomised, magic kept (resealed)", A, 0,
         r"^block %d: VDI 1 record: " % rega,
         (rega, lambda b: reseal(b[:4] + b[4:8] + R[8:])))
    case("VDI root beyond the store (resealed)", A, 0,
         r"^block %d: VDI 1 record: .*beyond the end" % rega,
         (rega, lambda b: setq(b, 56, far)))
    case("VDI root into a data extent (resealed)", A, 0,
         r"^block %d: VDI 1 record: .*wrong type" % rega,
         (rega, lambda b: setq(b, 56, d0)))
    case("VDI root into the system area (resealed)", A, 0,
         r"^block %d: VDI 1 record: .*system" % rega,
         (rega, lambda b: setq(b, 56, 1)))
    case("VDI root read-only bit set (resealed)", A, 0,
         r"^block %d: VDI 1 record: .*beyond the end" % rega,
         (rega, lambda b: setq(b, 56, ra | RO)))
    case("VDI snaplog_head into a data extent (resealed)", A, 0,
         r"^block %d: VDI 1 record: .*wrong type" % rega,
         (rega, lambda b: setq(b, 64, d0)))
    case("clone's parent_log into the free extent (resealed)", C, 0,
         r"^block %d: VDI 2 record: .*wrong type" % regc,
         (regc, lambda b: setq(b, 96, free_ext * p.eb + 5)))
    case("VDI height 4 on a height-2 tree (resealed)", A, 0,
         r"^block %d: radix node \(level 2 of VDI 1\) entry 0 -> %d: .*wrong type" % (l0, d0),
         (rega, lambda b: reseal(b[:132] + b"\x04" + b[133:])))
    # Snapshot logs.
    case("snapshot log byte flipped", A, 1,
         r"^block %d: snapshot log of VDI 1: checksum mismatch" % loga,
         (loga, lambda b: flip(b, 200)))
    case("snapshot log zeroed", A, 1, r"^block %d: snapshot log of VDI 1: " % loga,
         (loga, lambda b: Z))
    case("snapshot log randomised", A, 1, r"^block %d: snapshot log of VDI 1: " % loga,
         (loga, lambda b: R))
    case("snapshot root beyond the store (resealed)", A, 1,
         r"^block %d: snapshot log of VDI 1: .*beyond the end" % loga,
         (loga, lambda b: setq(b, 64, far)))
    case("snapshot root into a data extent (resealed)", A, 1,
         r"^block %d: snapshot log of VDI 1: .*wrong type" % loga,
         (loga, lambda b: setq(b, 64, d0)))
    case("snapshot log prev links itself (resealed)", D, 1,
         r"^block %d: snapshot log of VDI 3: " % logd[0],
         (logd[0], lambda b: setq(b, 40, logd[0])))
    case("snapshot log cycle of two blocks (resealed)", D, 1,
         r"^block %d: oldest snapshot log block of VDI 3 has a prev link" % logd[1],
         (logd[1], lambda b: setq(b, 40, logd[0])))
    # Both blocks renumbered so that neither holds seq 1 and their
    # sequence numbers still run on from one to the other.
    big = 1 << 62

    def renumber(first, prev):
        def f(b):
            b = bytearray(b)
            for i in range(struct.unpack_from("<I", b, 48)[0]):
                struct.pack_into("<Q", b, 64 + 64 * i + 16, first + i)
            struct.pack_into("<Q", b, 40, prev)
            return reseal(b)
        return f
    n_head = struct.unpack_from("<I", p.blk(logd[0]), 48)[0]
    case("snapshot log cycle with huge sequence numbers (resealed)", D, 1,
         r"^block %d: snapshot log of VDI 3 ends at seq %d, expected %d"
         % (logd[0], big + n_head - 1, big - 64),
         (logd[0], renumber(big, logd[1])), (logd[1], renumber(big - 63, logd[0])),
         (regd, lambda b: setq(b, 72, big + n_head - 1)))
    # Radix nodes.
    case("radix: root entry beyond the store", A, 0,
         r"^block %d: radix node \(level 1 of VDI 1\) entry 1 -> %d: .*beyond the end" % (ra, far),
         (ra, lambda b: setq(b, 8, far, False)))
    case("radix: root entry into the system area", A, 0,
         r"^block %d: radix node \(level 1 of VDI 1\) entry 1 -> 2: .*system" % ra,
         (ra, lambda b: setq(b, 8, 2, False)))
    case("radix: root entry into a data extent", A, 0,
         r"^block %d: radix node \(level 1 of VDI 1\) entry 1 -> %d: .*wrong type" % (ra, d0),
         (ra, lambda b: setq(b, 8, d0, False)))
    case("radix: root entry into the free extent", A, 0,
         r"^block %d: radix node \(level 1 of VDI 1\) entry 1 -> %d: .*wrong type" % (ra, free_ext * p.eb + 9),
         (ra, lambda b: setq(b, 8, free_ext * p.eb + 9, False)))
    case("radix: data link into a metadata extent", A, 0,
         r"^block %d: radix node \(level 0 of VDI 1\) entry 5 -> %d: .*wrong type" % (l0, ra),
         (l0, lambda b: setq(b, 40, ra, False)))
    case("radix: data link to a bitmap block", A, 0,
         r"^block %d: radix node \(level 0 of VDI 1\) entry 5 -> %d: .*bitmap" % (l0, data_ext * p.eb),
         (l0, lambda b: setq(b, 40, data_ext * p.eb, False)))
    case("radix: data link bit 62 flipped", A, 0,
         r"^block %d: radix node \(level 0 of VDI 1\) entry 3 -> .*beyond the end" % l0,
         (l0, lambda b: setq(b, 24, u64(b, 24) ^ (1 << 62), False)))
    case("radix: root links itself (writable)", A, 0,
         r"^block %d: radix node \(level 1 of VDI 1\) entry 1 -> %d: cycle" % (ra, ra),
         (ra, lambda b: setq(b, 8, ra, False)))
    case("radix: root links itself (read-only)", A, 0,
         r"^block %d: radix node \(level 1 of VDI 1\) entry 1 -> %d: cycle" % (ra, ra),
         (ra, lambda b: setq(b, 8, ra | RO, False)))
    case("radix: level-1 node links its parent, the root (height 3)", D, 0,
         r"^block %d: radix node \(level 1 of VDI 3\) entry 7 -> %d: cycle" % (dl1, rd),
         (dl1, lambda b: setq(b, 56, rd, False)))
    case("radix: level-1 node links itself (height 3)", D, 0,
         r"^block %d: radix node \(level 1 of VDI 3\) entry 7 -> %d: cycle" % (dl1, dl1),
         (dl1, lambda b: setq(b, 56, dl1, False)))
    case("radix: root links a level-0 node as level 1 (height 3)", D, 0,
         r"^block %d: radix node (used at level 1 and at level 0|\(level 1 of VDI 3\) entry 0 -> .*wrong type)" % dl0,
         (rd, lambda b: setq(b, 0, dl0, False)))
    case("radix: clone's root links the snapshot's level-0 node writably", C, 0,
         r"^block %d: writable from a live VDI but linked more than once" % (u64(p.blk(rc), 0) & MASK),
         (rc, lambda b: setq(b, 0, u64(b, 0) & MASK, False)))
    case("radix: level-0 node randomised", A, 0,
         r"^block %d: radix node \(level 0 of VDI 1\) entry " % l0,
         (l0, lambda b: R))
    case("radix: root randomised", A, 0,
         r"^block %d: radix node \(level 1 of VDI 1\) entry " % ra,
         (ra, lambda b: R))
    case("radix: read-only root entry beyond the store", A, 0,
         r"^block %d: radix node \(level 1 of VDI 1\) entry 1 -> %d: .*beyond the end" % (ra, far),
         (ra, lambda b: setq(b, 8, far | RO, False)))
    case("radix: read-only node link into a data extent", A, 0,
         r"^block %d: radix node \(level 1 of VDI 1\) entry 1 -> %d: .*wrong type" % (ra, d0),
         (ra, lambda b: setq(b, 8, d0 | RO, False)))
    case("radix: read-only data link into a metadata extent", A, 0,
         r"^block %d: radix node \(level 0 of VDI 1\) entry 20 -> %d: .*wrong type" % (l0, ra),
         (l0, lambda b: setq(b, 160, ra | RO, False)))
    case("radix: read-only data link into the catalogue", A, 0,
         r"^block %d: radix node \(level 0 of VDI 1\) entry 20 -> 1: .*system" % l0,
         (l0, lambda b: setq(b, 160, 1 | RO, False)))
    case("radix: root zeroed (undetectable: nodes carry no checksum)", A, 0, None,
         (ra, lambda b: Z))
    case("radix: shared level-0 node zeroed (undetectable)", C, 0, None,
         (u64(p.blk(rc), 0) & MASK, lambda b: Z))
    return cases


def random_case(p, rnd, nodes):
    """1-3 random damages; crc recomputed most of the time."""
    blocks = [0] + list(range(1, 1 + p.cat_blocks)) + [p.rec(v) for v in (1, 2, 3)]
    for v in (1, 2, 3):
        blocks += p.logchain(v)
    blocks += [e * p.eb for e in range(p.sysext, p.next)]
    nodeblocks = [n for n, _, _ in nodes]
    datab = []
    for n, lvl, _ in nodes:
        if lvl == 0:
            b = p.blk(n)
            datab += [u64(b, 8 * i) & MASK for i in range(0, 512, 37) if u64(b, 8 * i)]
    vals = [0, 1, 2, 5, p.eb, p.eb + 3, 2 * p.eb, p.next * p.eb, p.next * p.eb - 1,
            (p.next - 1) * p.eb + 7, (1 << 64) - 1, 1 << 40]
    vals += rnd.sample(nodeblocks, min(4, len(nodeblocks)))
    vals += rnd.sample(datab, min(4, len(datab)))
    edits = []
    desc = []
    for _ in range(rnd.randint(1, 3)):
        if rnd.random() < 0.5:
            blk = rnd.choice(nodeblocks)
        else:
            blk = rnd.choice(blocks)
        b = bytearray(p.blk(blk))
        r = rnd.random()
        if r < 0.06:
            b = bytearray(BS)
            what = "zeroed"
        elif r < 0.12:
            b = bytearray(rnd.randrange(256) for _ in range(BS))
            what = "randomised"
        elif r < 0.4:
            off = rnd.randrange(600) if rnd.random() < 0.8 else rnd.randrange(BS)
            bit = rnd.randrange(8)
            b[off] ^= 1 << bit
            what = "bit %d of byte %d flipped" % (bit, off)
        else:
            off = rnd.randrange(600 if blk not in nodeblocks else BS) & ~7
            val = rnd.choice(vals)
            if rnd.random() < 0.3:
                val |= RO
            struct.pack_into("<Q", b, off, val & (2 ** 64 - 1))
            what = "u64 at %d := %d" % (off, val & (2 ** 64 - 1))
        sealed = False
        if struct.unpack_from("<I", b, 4)[0] in MAGICS and rnd.random() < 0.7:
            struct.pack_into("<I", b, 0, crc32c(bytes(b[4:])))
            sealed = True
        p.put(blk, bytes(b))
        edits.append(blk)
        desc.append("block %d %s%s" % (blk, what, " (resealed)" if sealed else ""))
    return "; ".join(desc)


def cmd_cases(pristine, outdir, seed, first, ntarg, nrand, disk, mb):
    p = Store(pristine)
    first, ntarg, nrand, mb = int(first), int(ntarg), int(nrand), int(mb)
    assert p.nblk * BS == mb << 20
    tl = targeted(p)
    nodes = p.reachable_nodes()
    pnz = p.nonzero()
    phash = {n: blockhash(p.buf, n) for n in pnz}
    man = open(os.path.join(outdir, "manifest"), "a")
    dk = open(disk, "r+b")
    i = first
    for k in range(ntarg + nrand):
        st = p.copy()
        fail = 0
        if k < ntarg:
            name, vdi, snap, edits, regex, fail = tl[k]
            # A bad link on the path of the guest's I/O: the attached
            # device must end up failed (or never load).
            fail = 1 if fail or (name.startswith("radix: ") and
                                  "zeroed" not in name and "clone" not in name) else 0
            for blk, fn in edits:
                st.put(blk, fn(st.blk(blk)))
            if regex is None:
                regex = "-"
        else:
            rnd = random.Random("%s/%d" % (seed, i))
            name = "random: " + random_case(st, rnd, nodes)
            vdi = rnd.choice((1, 1, 2, 3))
            snap = 1 if rnd.random() < 0.3 else 0
            regex = "RANDOM"
        # The case alone, for parallax check; in its slice of the disk;
        # its changes and the hash of each non-zero block (the others
        # are zero), for verify.
        blocks = sorted(set(pnz) | st.dirty)
        with open(os.path.join(outdir, "case%d.img" % i), "wb") as f:
            f.truncate(len(st.buf))
            st.save(f, 0, blocks)
        st.save(dk, (i - first) * (mb << 20), blocks)
        h = dict(phash)
        for n in st.dirty:
            h[n] = blockhash(st.buf, n)
        h = {n: v for n, v in h.items() if st.buf[n * BS:(n + 1) * BS] != ZERO}
        with open(os.path.join(outdir, "case%d.pk" % i), "wb") as f:
            pickle.dump({"hash": h, "dirty": {n: st.blk(n) for n in st.dirty}}, f)
        man.write("%d\t%d\t%d\t%s\t%s\t%d\n" % (i, vdi, snap, regex, name, fail))
        i += 1
    dk.close()
    man.close()


def cmd_ntargeted(pristine):
    print(len(targeted(Store(pristine))))


def verify(orig, st, old, vdi, extents):
    """Did the guest write only what it may?  (ok, explanation)"""
    new = {n: blockhash(st.buf, n) for n in range(st.nblk)
           if st.buf[n * BS:(n + 1) * BS] != ZERO}
    changed = sorted(n for n in set(old) | set(new) if old.get(n) != new.get(n))
    allowed = set()
    exts = set(extents)
    if orig.ok:
        # parallax attach and detach write the catalogue and the record.
        allowed |= set(range(1, 1 + orig.cat_blocks))
        allowed.add(orig.rec(vdi))
        # The damaged tree's writable links: the format lets the holder
        # write those blocks in place.
        allowed |= orig.writable(vdi)
        if st.ok and len(orig.gens) == len(st.gens):
            exts |= set(e for e in range(orig.next) if orig.gens[e] != st.gens[e])
    bad = [n for n in changed
           if n not in allowed and not (orig.ok and n // orig.eb in exts)]
    if bad:
        return False, ("blocks written outside the granted extents %s and the VDI's writable tree: %s"
                       % (sorted(exts), " ".join(map(str, bad[:20]))))
    return True, ("%d blocks changed, all in granted extents %s, the catalogue, the record or the writable tree"
                  % (len(changed), sorted(exts)))


def cmd_verify(pristine, outdir, manifest, disk, first, mb):
    """Every case of MANIFEST: "ok"/"bad", the case and the finding."""
    p = Store(pristine)
    first, mb = int(first), int(mb)
    with open(manifest) as f:
        lines = [ln.rstrip("\n").split("\t") for ln in f if ln.strip()]
    dk = open(disk, "rb")
    for ln in lines:
        i, vdi = int(ln[0]), int(ln[1])
        exts = []
        try:
            with open(os.path.join(outdir, "ext%d" % i)) as f:
                exts = [int(w.split(":")[0]) for w in f.read().split() if ":" in w]
        except (OSError, ValueError):
            pass
        with open(os.path.join(outdir, "case%d.pk" % i), "rb") as f:
            rec = pickle.load(f)
        orig = p.copy()
        for n, b in rec["dirty"].items():
            orig.put(n, b)
        orig = Store(None, orig.buf)
        base = (i - first) * (mb << 20)
        buf = bytearray(mb << 20)
        for n in data_blocks(dk, base, p.nblk):
            dk.seek(base + n * BS)
            buf[n * BS:(n + 1) * BS] = dk.read(BS)
        good, why = verify(orig, Store(None, buf), rec["hash"], vdi, exts)
        print("%s\t%d\t%s" % ("ok" if good else "bad", i, why))


def main():
    cmd = sys.argv[1]
    {"cases": cmd_cases, "verify": cmd_verify,
     "ntargeted": cmd_ntargeted}[cmd](*sys.argv[2:])


if __name__ == "__main__":
    main()
