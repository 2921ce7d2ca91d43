#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Guest workloads for the write-log replay test (tests/kernel/replay.sh).

stamps DEV NBLOCKS SECONDS LOGDEV VLOG [SNAPDEV INTERVAL]
    Generations of stamped 4 KiB O_DIRECT writes (kt.py's stamp format)
    to random blocks among DEV's first NBLOCKS: each generation is 1-32
    writes, then fdatasync (a FLUSH), then the mark "g<N>" on the
    dm-log-writes device LOGDEV.  The k-th write carries sequence k.
    With SNAPDEV, a second thread sends "snapshot" to that parallax
    device every INTERVAL seconds and marks "s<SEQ>" on LOGDEV after each
    one returns.  Writes VLOG ("n NBLOCKS", then "w BLOCK" per write and
    "g N" per generation, in order; see replay-log --help) and VLOG.json
    (kt.py stampcheck's log: one thread, its blocks in order).

files DIR SRC COUNT LOGDEV [SNAPDEV]
    fsync-heavy work on a mounted file system: for i in 1..COUNT, write
    SRC/f<i> to DIR/f<i>, fsync it, then mark "f<i>" on LOGDEV; every
    seventh file also renames or deletes an earlier one (fsyncing the
    directory), and with SNAPDEV every tenth file is followed by a
    snapshot.  Files named in a mark are never touched again.
"""
import json
import mmap
import os
import random
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kernel"))
import kt  # noqa: E402

BS = 4096


def stamps(dev, nblocks, seconds, logdev, vlog, snapdev=None, interval="0.005"):
    nblocks, seconds, interval = int(nblocks), float(seconds), float(interval)
    ctl = os.open("/dev/mapper/control", os.O_RDWR)
    fd = os.open(dev, os.O_RDWR | os.O_DIRECT)
    buf = mmap.mmap(-1, BS)
    rnd = random.Random(20081)
    lines = ["n %d" % nblocks]
    order = []
    stop = threading.Event()
    errors = []
    snaps = [0]

    def snapper():
        sfd = os.open("/dev/mapper/control", os.O_RDWR)
        try:
            while not stop.is_set():
                r = kt.dm_message(sfd, snapdev, "snapshot")
                seq = int(r.split("@")[1])
                if seq != snaps[0] + 1:
                    raise OSError("snapshot returned %r after %d" % (r, snaps[0]))
                snaps[0] = seq
                kt.dm_message(sfd, logdev, "mark s%d" % seq)
                time.sleep(interval)
        except (OSError, ValueError, IndexError) as e:
            errors.append("snapshot %d: %s" % (snaps[0] + 1, e))

    th = threading.Thread(target=snapper) if snapdev else None
    if th:
        th.start()
    end = time.monotonic() + seconds
    gen = 0
    while time.monotonic() < end and not errors:
        gen += 1
        for _ in range(rnd.randint(1, 32)):
            blk = rnd.randrange(nblocks)
            order.append(blk)
            buf[:] = kt.stamp(blk, len(order))
            if os.pwrite(fd, buf, blk * BS) != BS:
                sys.exit("short write")
            lines.append("w %d" % blk)
        os.fdatasync(fd)
        kt.dm_message(ctl, logdev, "mark g%d" % gen)
        lines.append("g %d" % gen)
    stop.set()
    if th:
        th.join()
    with open(vlog, "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(vlog + ".json", "w") as f:
        json.dump({"threads": 1, "orders": [order]}, f)
    if errors:
        sys.exit("; ".join(errors))
    print("%d writes in %d generations, %d snapshots, %.1f s"
          % (len(order), gen, snaps[0], seconds))


def files(d, src, count, logdev, snapdev=None):
    ctl = os.open("/dev/mapper/control", os.O_RDWR)
    rnd = random.Random(455)
    dfd = os.open(d, os.O_RDONLY)
    scratch = []
    for i in range(1, int(count) + 1):
        with open(os.path.join(src, "f%d" % i), "rb") as f:
            data = f.read()
        with open(os.path.join(d, "f%d" % i), "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.fsync(dfd)
        kt.dm_message(ctl, logdev, "mark f%d" % i)
        # Churn that no mark vouches for: scratch files renamed and deleted.
        name = os.path.join(d, "t%d" % i)
        with open(name, "wb") as f:
            f.write(os.urandom(rnd.randint(1, 64) * 1024))
        scratch.append(name)
        if i % 7 == 0:
            victim = scratch.pop(rnd.randrange(len(scratch)))
            if rnd.random() < 0.5:
                os.unlink(victim)
            else:
                os.rename(victim, victim + ".r")
                scratch.append(victim + ".r")
            os.fsync(dfd)
        if snapdev and i % 10 == 0:
            kt.dm_message(ctl, snapdev, "snapshot")
    print("%d files written and fsynced" % int(count))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "stamps":
        stamps(*args)
    elif cmd == "files":
        files(*args)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
