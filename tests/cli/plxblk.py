#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Poke at single 4 KiB blocks of a blockstore image, for corruption tests.

  plxblk.py IMG BLOCK get OFF            print the LE u64 at byte OFF
  plxblk.py IMG BLOCK set OFF VALUE      store a LE u64 at byte OFF
  plxblk.py IMG BLOCK flip OFF           invert the byte at OFF
  plxblk.py IMG BLOCK clearbit BIT       clear bitmap bit BIT (after header)
  plxblk.py IMG BLOCK reseal             recompute the header crc32c

"set", "clearbit" take --reseal to recompute the crc afterwards, so that
only the intended inconsistency remains.
"""
import struct
import sys

BS = 4096
HDR = 32


_TAB = []


def crc32c(data):
    if not _TAB:
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
            _TAB.append(c)
    tab = _TAB
    crc = 0xFFFFFFFF
    for b in data:
        crc = tab[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def main():
    img, blk, op = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    args = [a for a in sys.argv[4:] if a != "--reseal"]
    reseal = "--reseal" in sys.argv or op == "reseal"
    with open(img, "r+b") as f:
        f.seek(blk * BS)
        b = bytearray(f.read(BS))
        if op == "get":
            print(struct.unpack_from("<Q", b, int(args[0]))[0])
            return
        if op == "set":
            struct.pack_into("<Q", b, int(args[0]),
                         int(args[1], 0) & (2 ** 64 - 1))
        elif op == "flip":
            b[int(args[0])] ^= 0xFF
        elif op == "clearbit":
            bit = int(args[0])
            b[HDR + bit // 8] &= ~(1 << (bit % 8)) & 0xFF
        elif op != "reseal":
            sys.exit("unknown op " + op)
        if reseal:
            struct.pack_into("<I", b, 0, crc32c(bytes(b[4:])))
        f.seek(blk * BS)
        f.write(b)


if __name__ == "__main__":
    main()
