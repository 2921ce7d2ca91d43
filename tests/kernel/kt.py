#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Small I/O tools for the dm-parallax kernel tests.

uwrite DEV MODEL SEED COUNT LO HI
    COUNT random O_DIRECT writes to DEV, each 512 bytes..160 KiB at a
    512-byte aligned offset in [LO, HI) that is usually not 4 KiB aligned;
    the same bytes are written to the regular file MODEL at the same
    offset.  Deterministic for a SEED.

stampwrite DEV NBLOCKS SECONDS LOG [THREADS]
    THREADS writers (default 1) rewrite random 4 KiB blocks of DEV's first
    NBLOCKS blocks with O_DIRECT for SECONDS; thread t owns the blocks
    b with b % THREADS == t and has one write in flight at a time.  Block
    contents are stamps (block number, sequence number k * THREADS + t for
    the thread's k-th write, crc32).  Writes LOG (JSON): each thread's
    block numbers in the order written.

snaploop NAME PID INTERVAL MAXSNAPS OUT
    While process PID lives, send "snapshot" to device-mapper device NAME
    (DM_TARGET_MSG ioctl, no dmsetup process per message) every INTERVAL
    seconds, up to MAXSNAPS; also stops when the metadata free count in
    the status falls below 120.  Appends each returned id to OUT; fails on
    an error or an unexpected id (the ids must run N@1, N@2, ...).

poke FILE BLOCK INDEX VALUE / peek FILE BLOCK INDEX
    Write / print the little-endian u64 at entry INDEX of 4 KiB block BLOCK.

stampcheck STORE LOG VDI SNAP...
    Offline: exports each snapshot (in the order given) and then VDI with
    "parallax export STORE X -" and checks that every block is zero or a
    valid stamp for its own block number, that each snapshot equals the
    state after exactly a prefix of each writer thread's writes (a thread
    had one write in flight), that sequence numbers never decrease
    from one snapshot to the next and to the VDI, and that the VDI equals
    the writer's final state.
"""
import mmap
import os
import random
import struct
import subprocess
import sys
import time
import zlib

BS = 4096
MAGIC = b"PLXSTAMP"


def stamp(blk, seq):
    head = MAGIC + struct.pack("<QQ", blk, seq)
    body = head + (struct.pack("<QQ", seq * 2654435761 % (1 << 64), blk) * 255)[: BS - 4 - len(head)]
    return body + struct.pack("<I", zlib.crc32(body))


def parse(buf, blk):
    """0 for a zero block, the sequence number for a good stamp, or a string."""
    if buf.count(0) == BS:
        return 0
    if buf[:8] != MAGIC:
        return "no stamp magic"
    b, seq = struct.unpack_from("<QQ", buf, 8)
    if zlib.crc32(buf[: BS - 4]) != struct.unpack_from("<I", buf, BS - 4)[0]:
        return "bad checksum"
    if b != blk:
        return "stamp for block %d" % b
    if seq < 1:
        return "sequence 0"
    return seq


def uwrite(dev, model, seed, count, lo, hi):
    rnd = random.Random(int(seed))
    count, lo, hi = int(count), int(lo), int(hi)
    fd = os.open(dev, os.O_RDWR | os.O_DIRECT)
    mf = os.open(model, os.O_RDWR)
    buf = mmap.mmap(-1, 40 * BS)
    unaligned = 0
    for _ in range(count):
        n = rnd.randint(1, 24 if rnd.random() < 0.7 else 320) * 512
        off = lo + rnd.randrange(0, (hi - lo - n) // 512) * 512
        if off % BS or n % BS:
            unaligned += 1
        data = rnd.randbytes(n)
        buf[:n] = data
        if os.pwrite(fd, memoryview(buf)[:n], off) != n:
            sys.exit("short write at %d" % off)
        os.pwrite(mf, data, off)
    os.close(fd)
    os.close(mf)
    print("%d writes, %d not 4 KiB aligned" % (count, unaligned))


def stampwrite(dev, nblocks, seconds, log, threads="1"):
    import json
    import threading
    nblocks, seconds, nthr = int(nblocks), float(seconds), int(threads)
    orders = [[] for _ in range(nthr)]
    errors = []
    end = time.monotonic() + seconds

    def run(t):
        try:
            fd = os.open(dev, os.O_RDWR | os.O_DIRECT)
            buf = mmap.mmap(-1, BS)
            rnd = random.Random(t + 1)
            mine = range(t, nblocks, nthr)
            while time.monotonic() < end:
                blk = rnd.choice(mine)
                orders[t].append(blk)
                buf[:] = stamp(blk, len(orders[t]) * nthr + t)
                if os.pwrite(fd, buf, blk * BS) != BS:
                    raise OSError("short write")
            os.close(fd)
        except OSError as e:
            errors.append("thread %d: %s" % (t, e))

    ths = [threading.Thread(target=run, args=(t,)) for t in range(nthr)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    with open(log, "w") as f:
        json.dump({"threads": nthr, "orders": orders}, f)
    if errors:
        sys.exit("; ".join(errors))
    print("%d threads, %d writes in %.1f s" % (nthr, sum(map(len, orders)), seconds))


def export(store, obj):
    p = subprocess.run([os.environ.get("P", "parallax"), "export", store, obj, "-"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode:
        raise RuntimeError("export %s: %s" % (obj, p.stderr.decode().strip()))
    return p.stdout


def stampcheck(store, log, vdi, snaps):
    import json
    with open(log) as f:
        lg = json.load(f)
    nthr, orders = lg["threads"], lg["orders"]
    errors = 0

    def err(msg):
        nonlocal errors
        errors += 1
        if errors <= 20:
            print("# " + msg)

    prev = None
    prev_name = None
    for name in list(snaps) + [vdi]:
        img = export(store, name)
        nblocks = len(img) // BS
        seqs = []
        for blk in range(nblocks):
            r = parse(img[blk * BS:(blk + 1) * BS], blk)
            if not isinstance(r, str) and r and (r % nthr != blk % nthr or r < nthr):
                r = "sequence %d is not from the thread owning the block" % r
            if isinstance(r, str):
                err("%s block %d: %s" % (name, blk, r))
                r = -1
            seqs.append(r)
        # Per writer thread (each had one write in flight, on its own
        # blocks): the state after its writes 1..top, top being the highest
        # of its sequence numbers seen (all of its writes for the VDI).
        want = [0] * nblocks
        for t in range(nthr):
            if name == vdi:
                top = len(orders[t])
            else:
                top = max([s // nthr for b, s in enumerate(seqs) if b % nthr == t and s > 0] or [0])
            for k in range(1, top + 1):
                blk = orders[t][k - 1]
                if blk < nblocks:
                    want[blk] = k * nthr + t
        bad = [b for b in range(nblocks) if seqs[b] != -1 and seqs[b] != want[b]]
        for b in bad[:5]:
            err("%s block %d: sequence %d, want %d" % (name, b, seqs[b], want[b]))
        if bad:
            err("%s: %d blocks differ from a prefix of each writer's writes" % (name, len(bad)))
        if prev is not None:
            dec = [b for b in range(nblocks) if seqs[b] < prev[b]]
            for b in dec[:5]:
                err("block %d: sequence %d in %s but %d in the later %s"
                    % (b, prev[b], prev_name, seqs[b], name))
        prev, prev_name = seqs, name
    print("# checked %d snapshots and the VDI, %d writes by %d threads, %d errors"
          % (len(snaps), sum(map(len, orders)), nthr, errors))
    return 1 if errors else 0


DM_NAME_LEN = 128
DM_IOCTL_SIZE = 312


def dm_ioctl(fd, cmd, name, payload=b"", size=16384):
    import fcntl
    buf = bytearray(size)
    struct.pack_into("<3IIIIiII", buf, 0, 4, 0, 0, size, DM_IOCTL_SIZE, 0, 0, 0, 0)
    nm = name.encode()
    buf[48:48 + len(nm)] = nm
    buf[DM_IOCTL_SIZE:DM_IOCTL_SIZE + len(payload)] = payload
    req = (3 << 30) | (DM_IOCTL_SIZE << 16) | (0xFD << 8) | cmd
    fcntl.ioctl(fd, req, buf, True)
    flags = struct.unpack_from("<I", buf, 28)[0]
    start = struct.unpack_from("<I", buf, 16)[0]
    return flags, buf, start


def dm_message(fd, name, msg):
    """Send a target message to sector 0; return its result string."""
    flags, buf, start = dm_ioctl(fd, 14, name, struct.pack("<Q", 0) + msg.encode() + b"\0")
    if not flags & (1 << 16):           # DM_DATA_OUT_FLAG
        return ""
    return bytes(buf[start:]).split(b"\0", 1)[0].decode()


def snaploop(name, pid, interval, maxsnaps, out):
    pid, interval, maxsnaps = int(pid), float(interval), int(maxsnaps)
    fd = os.open("/dev/mapper/control", os.O_RDWR)
    ids = []
    t0 = time.monotonic()
    why = "writer finished"
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        if len(ids) >= maxsnaps:
            why = "reached %d snapshots" % maxsnaps
            break
        try:
            r = dm_message(fd, name, "snapshot")
        except OSError as e:
            sys.exit("snapshot %d: %s" % (len(ids) + 1, e))
        vdi = r.split("@")[0]
        if r != "%s@%d" % (vdi, len(ids) + 1):
            sys.exit("snapshot %d returned %r" % (len(ids) + 1, r))
        ids.append(r)
        with open(out, "a") as f:
            f.write(r + "\n")
        if len(ids) % 20 == 0:
            st = subprocess.run(["dmsetup", "status", name], stdout=subprocess.PIPE).stdout.split()
            if int(st[7]) < 120:
                why = "metadata extent nearly full"
                break
        time.sleep(interval)
    dt = time.monotonic() - t0
    print("%d snapshots in %.1f s, %.1f per second (%s)" % (len(ids), dt, len(ids) / dt, why))


def poke(path, block, index, value):
    with open(path, "r+b") as f:
        f.seek(int(block) * BS + 8 * int(index))
        f.write(struct.pack("<Q", int(value, 0)))


def peek(path, block, index):
    with open(path, "rb") as f:
        f.seek(int(block) * BS + 8 * int(index))
        print(struct.unpack("<Q", f.read(8))[0])


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "snaploop":
        return snaploop(*args)
    if cmd == "poke":
        return poke(*args)
    if cmd == "peek":
        return peek(*args)
    if cmd == "uwrite":
        uwrite(*args)
    elif cmd == "stampwrite":
        stampwrite(*args)
    elif cmd == "stampcheck":
        sys.exit(stampcheck(args[0], args[1], args[2], args[3:]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
