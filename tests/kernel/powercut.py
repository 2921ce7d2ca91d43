#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Workload and offline verifier for tests/kernel/powercut.sh.

work DEV NAME LOGDEV NBLOCKS SECONDS THREADS SEED MARK [FLAKEY DROP_AT]
    In the guest.  THREADS writers rewrite random 4 KiB blocks of DEV's
    first NBLOCKS blocks with O_DIRECT stamps (kt.py's format: block
    number, sequence number k * THREADS + t for thread t's k-th write,
    crc32); thread t owns the blocks b with b % THREADS == t, has one
    write in flight, and picks its k-th block from a random generator
    seeded with "SEED/t", so the order of its writes can be regenerated
    after the fact and need not survive a crash.  Now and then a writer
    calls fdatasync (FLUSH) or writes with O_DSYNC (FUA); a snapshot
    thread sends "snapshot" to device NAME every few milliseconds (or,
    for some seeds, every few hundred).  What
    is known durable is appended to LOGDEV, one 512-byte record per
    O_DIRECT write (ubd hands each write to the host before completing
    it, so a killed kernel loses none of them):
        H SEED THREADS NBLOCKS   header
        D t k                    thread t's writes 1..k flushed (fdatasync)
        F t k                    thread t's write k written with O_DSYNC
        S ID c0 c1 ...           snapshot ID returned; thread t had
                                 completed c_t writes when it was asked for
        X / Y                    (FLAKEY) before the suspend that switches
                                 FLAKEY to drop_writes / after its resume
        W ...                    a writer or the snapshot thread failed
        E n0 n1 ...              the writers stopped after n_t writes
    MARK (a host file) is created once every writer has written, for
    scripts/uml-run --kill-from.  After SECONDS the writers stop.  With
    FLAKEY and DROP_AT, the device-mapper device FLAKEY under DEV's store
    is switched DROP_AT seconds after MARK to a flakey table that drops
    every write (suspend --nolockfs, load, resume, as xfstests'
    common/dmflakey does): this creates the file FLAKEY.req, and the
    caller switches the table and then creates FLAKEY.done.

verify STORE VDI LOGIMG [--inject stale|torn]
    On the host, after the cut.  Reads LOGIMG, exports every snapshot in
    VDI's snapshot log and the VDI ("parallax export", $P) and checks:
     - every block is zero or a valid stamp for its own block number,
       written by the thread owning it, and the generator says that
       write went to that block;
     - every snapshot equals the state after exactly a prefix of each
       writer's writes, holds every write completed before it was asked
       for, and never goes back from one snapshot to the next;
     - every snapshot the log names is in the snapshot log;
     - no write or snapshot failed (with FLAKEY: before X);
     - each block of the VDI holds the version that was durable (flushed,
       FUA, or in a snapshot; with FLAKEY only what was durable before
       X) or a later write to the block: old or new, never older.
    --inject makes the VDI's export wrong on purpose (one durable block
    replaced by its previous version, or one byte changed), to show that
    the checks fail.
"""
import json
import mmap
import os
import random
import struct
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
from kt import BS, parse, stamp  # noqa: E402  the stamp format

SLOT = 512
ZERO = bytes(BS)


class Orders:
    """Thread t's k-th block (k from 1), regenerated from the seed."""

    def __init__(self, seed, nthr, nblocks):
        self.seed, self.nthr, self.nblocks = seed, nthr, nblocks
        self.rnd = [random.Random("%s/%d" % (seed, t)) for t in range(nthr)]
        self.mine = [range(t, nblocks, nthr) for t in range(nthr)]
        self.lists = [[] for _ in range(nthr)]

    def block(self, t, k):
        lst = self.lists[t]
        while len(lst) < k:
            lst.append(self.rnd[t].choice(self.mine[t]))
        return lst[k - 1]


class Log:
    def __init__(self, path):
        self.fd = os.open(path, os.O_WRONLY | os.O_DIRECT)
        self.buf = mmap.mmap(-1, SLOT)
        self.n = 0
        self.max = os.lseek(self.fd, 0, os.SEEK_END) // SLOT
        self.lock = threading.Lock()
        self.dropping = False

    def put(self, line):
        with self.lock:
            self.put_locked(line)

    def put_locked(self, line):
        if self.n >= self.max:
            return
        data = (line + "\n").encode()
        self.buf[:] = data + bytes(SLOT - len(data))
        os.pwrite(self.fd, self.buf, self.n * SLOT)
        self.n += 1


def dm_ioctl(fd, cmd, name, payload=b"", size=16384):
    import fcntl
    buf = bytearray(size)
    struct.pack_into("<3IIIIiII", buf, 0, 4, 0, 0, size, 312, 0, 0, 0, 0)
    nm = name.encode()
    buf[48:48 + len(nm)] = nm
    buf[312:312 + len(payload)] = payload
    req = (3 << 30) | (312 << 16) | (0xFD << 8) | cmd
    fcntl.ioctl(fd, req, buf, True)
    flags = struct.unpack_from("<I", buf, 28)[0]
    start = struct.unpack_from("<I", buf, 16)[0]
    return flags, buf, start


def dm_message(fd, name, msg):
    flags, buf, start = dm_ioctl(fd, 14, name, struct.pack("<Q", 0) + msg.encode() + b"\0")
    if not flags & (1 << 16):
        return ""
    return bytes(buf[start:]).split(b"\0", 1)[0].decode()


def work(dev, name, logdev, nblocks, seconds, nthr, seed, mark, flakey=None, drop_at=None):
    import faulthandler
    import signal
    faulthandler.register(signal.SIGUSR1)   # thread stacks, if it hangs
    nblocks, seconds, nthr = int(nblocks), float(seconds), int(nthr)
    log = Log(logdev)
    log.put("H %s %d %d" % (seed, nthr, nblocks))
    rnd = random.Random("%s/work" % seed)
    # Mostly snapshots every few ms; sometimes rare ones, so that more
    # is left to the flushes and the once-a-second commit.
    interval = rnd.uniform(0.002, 0.02) if rnd.random() < 0.7 else rnd.uniform(0.1, 0.6)
    p_flush = rnd.choice([0.0, 0.02, 0.1, 0.3])
    p_fua = rnd.choice([0.0, 0.02, 0.1])
    done = [0] * nthr
    stop = threading.Event()
    errors = []                       # before writes were dropped
    later = []                        # after: the store lost writes
    end = time.monotonic() + seconds
    orders = Orders(seed, nthr, nblocks)

    def writer(t):
        try:
            fd = os.open(dev, os.O_RDWR | os.O_DIRECT)
            sfd = os.open(dev, os.O_RDWR | os.O_DIRECT | os.O_DSYNC)
            buf = mmap.mmap(-1, BS)
            dec = random.Random("%s/dec/%d" % (seed, t))
            k = 0
            while not stop.is_set() and time.monotonic() < end:
                k += 1
                blk = orders.block(t, k)
                buf[:] = stamp(blk, k * nthr + t)
                r = dec.random()
                if r < p_fua:
                    if os.pwrite(sfd, buf, blk * BS) != BS:
                        raise OSError("short write")
                    done[t] = k
                    log.put("F %d %d" % (t, k))
                    continue
                if os.pwrite(fd, buf, blk * BS) != BS:
                    raise OSError("short write")
                done[t] = k
                if r < p_fua + p_flush:
                    os.fdatasync(fd)
                    log.put("D %d %d" % (t, k))
            os.close(fd)
            os.close(sfd)
        except OSError as e:
            (later if log.dropping else errors).append("writer %d: %s" % (t, e))
            log.put("W writer %d after %d writes: %s" % (t, done[t], e))

    def snapper():
        try:
            fd = os.open("/dev/mapper/control", os.O_RDWR)
            n = 0
            while not stop.is_set():
                c = list(done)
                r = dm_message(fd, name, "snapshot")
                n += 1
                if not r.endswith("@%d" % n):
                    raise OSError("snapshot %d returned %r" % (n, r))
                log.put("S %s %s" % (r, " ".join(map(str, c))))
                if n % 20 == 0:
                    st = subprocess.run(["dmsetup", "status", name],
                                        stdout=subprocess.PIPE).stdout.split()
                    if int(st[7]) < 60:
                        return
                time.sleep(interval)
        except OSError as e:
            (later if log.dropping else errors).append("snapshots: %s" % e)
            log.put("W snapshots: %s" % e)

    ths = [threading.Thread(target=writer, args=(t,)) for t in range(nthr)]
    for th in ths:
        th.start()
    while min(done) == 0 and not errors and any(th.is_alive() for th in ths):
        time.sleep(0.001)
    snap = threading.Thread(target=snapper)
    snap.start()
    open(mark, "w").close()
    print("interval %.4f s, flush %.2f, fua %.2f" % (interval, p_flush, p_fua), flush=True)
    if flakey:
        # The switch is made by the guest script (FLAKEY.req, FLAKEY.done):
        # no dmsetup forked from this threaded process.
        time.sleep(float(drop_at))
        with log.lock:
            log.put_locked("X")
            log.dropping = True
            open(flakey + ".req", "w").close()
            while not os.path.exists(flakey + ".done"):
                time.sleep(0.005)
            log.put_locked("Y")
        print("writes dropped from %s s after the mark, after %s writes" % (drop_at, done), flush=True)
    for th in ths:
        th.join()
    stop.set()
    snap.join()
    log.put("E " + " ".join(map(str, done)))
    print("%d writes by %d threads, %s" % (sum(done), nthr, ", ".join(
        "thread %d: %d" % (t, done[t]) for t in range(nthr))))
    if later:
        print("after the drop (allowed): " + "; ".join(later))
    if errors:
        sys.exit("; ".join(errors))


def export(store, obj):
    p = subprocess.run([os.environ.get("P", "parallax"), "export", store, obj, "-"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode:
        raise RuntimeError("export %s: %s" % (obj, p.stderr.decode().strip()))
    return p.stdout


def read_log(path):
    recs = []
    with open(path, "rb") as f:
        data = f.read()
    for i in range(0, len(data), SLOT):
        s = data[i:i + SLOT].split(b"\n", 1)[0].decode()
        if not s:
            break
        recs.append(s.split())
    return recs


def verify(store, vdi, logimg, inject=None):
    recs = read_log(logimg)
    if not recs or recs[0][0] != "H":
        print("# no log header")
        return 1
    seed, nthr, nblocks = recs[0][1], int(recs[0][2]), int(recs[0][3])
    orders = Orders(seed, nthr, nblocks)
    errors = 0

    def err(msg):
        nonlocal errors
        errors += 1
        if errors <= 25:
            print("# " + msg)

    # Durability facts, up to X when writes were dropped.
    flushed = [0] * nthr              # D: writes 1..k of t
    fua = []                          # F: (t, k)
    asked = {}                        # S: snapshot id -> completed counts
    dropped = False
    ends = None
    nd = nf = 0
    for r in recs[1:]:
        if r[0] == "X":
            dropped = True
        elif r[0] == "E":
            ends = list(map(int, r[1:]))
        elif dropped:
            continue
        elif r[0] == "W":
            err("the workload failed before the cut: " + " ".join(r[1:]))
        elif r[0] == "D":
            t, k = int(r[1]), int(r[2])
            flushed[t] = max(flushed[t], k)
            nd += 1
        elif r[0] == "F":
            fua.append((int(r[1]), int(r[2])))
            nf += 1
        elif r[0] == "S":
            asked[r[1]] = list(map(int, r[2:]))
    p = subprocess.run([os.environ.get("P", "parallax"), "snaplog", store, vdi, "--json"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode:
        print("# snaplog: " + p.stderr.decode().strip())
        return 1
    snaps = [s["id"] for s in json.loads(p.stdout)]
    for sid in asked:
        if sid not in snaps:
            err("snapshot %s was returned before the cut but is not in the snapshot log" % sid)

    def seqs_of(name, img):
        seqs = []
        for blk in range(nblocks):
            r = parse(img[blk * BS:(blk + 1) * BS], blk)
            if not isinstance(r, str) and r:
                t, k = r % nthr, r // nthr
                if t != blk % nthr or k < 1:
                    r = "sequence %d is not from the thread owning the block" % r
                elif orders.block(t, k) != blk:
                    r = "sequence %d was written to block %d, not here" % (r, orders.block(t, k))
            if isinstance(r, str):
                err("%s block %d: %s" % (name, blk, r))
                r = -1
            seqs.append(r)
        return seqs

    def state_after(tops):
        want = [0] * nblocks
        for t in range(nthr):
            for k in range(1, tops[t] + 1):
                want[orders.block(t, k)] = k * nthr + t
        return want

    prev, prev_name = None, None
    durable = list(flushed)
    for name in snaps:
        seqs = seqs_of(name, export(store, name))
        tops = [0] * nthr
        for b, s in enumerate(seqs):
            if s > 0:
                tops[s % nthr] = max(tops[s % nthr], s // nthr)
        want = state_after(tops)
        bad = [b for b in range(nblocks) if seqs[b] != -1 and seqs[b] != want[b]]
        for b in bad[:5]:
            err("%s block %d: sequence %d, but a prefix of each writer's writes gives %d"
                % (name, b, seqs[b], want[b]))
        if bad:
            err("%s: %d blocks differ from a prefix of each writer's writes" % (name, len(bad)))
        if name in asked:
            short = [t for t in range(nthr) if tops[t] < asked[name][t]]
            for t in short:
                err("%s lacks writes of thread %d: has %d, %d were complete when it was asked for"
                    % (name, t, tops[t], asked[name][t]))
        if prev is not None:
            dec = [b for b in range(nblocks) if seqs[b] < prev[b]]
            for b in dec[:5]:
                err("block %d: sequence %d in %s but %d in the later %s"
                    % (b, prev[b], prev_name, seqs[b], name))
        durable = [max(durable[t], tops[t]) for t in range(nthr)]
        prev, prev_name = seqs, name

    # The VDI: per block, the last durable version or a later write.
    lo = state_after(durable)
    for t, k in fua:
        b = orders.block(t, k)
        lo[b] = max(lo[b], k * nthr + t)
    img = bytearray(export(store, vdi))
    if inject:
        cand = [b for b in range(nblocks) if lo[b] > 0]
        if not cand:
            print("# nothing durable to inject into")
            return 1
        b = cand[len(cand) // 2]
        if inject == "torn":
            img[b * BS + 100] ^= 1
        else:
            t, k = lo[b] % nthr, lo[b] // nthr
            older = [j for j in range(1, k) if orders.block(t, j) == b]
            img[b * BS:(b + 1) * BS] = stamp(b, older[-1] * nthr + t) if older else ZERO
        print("# injected: block %d %s" % (b, inject))
    seqs = seqs_of(vdi, img)
    bad = [b for b in range(nblocks) if seqs[b] != -1 and seqs[b] < lo[b]]
    for b in bad[:5]:
        err("%s block %d: sequence %d, older than the durable %d" % (vdi, b, seqs[b], lo[b]))
    if bad:
        err("%s: %d blocks lost durable writes" % (vdi, len(bad)))
    newer = sum(1 for b in range(nblocks) if seqs[b] > lo[b])
    print("# %d snapshots (%d named in the log), %d flushes, %d FUA writes%s; VDI: %d of %d "
          "blocks newer than durable; %d writes seen; %d errors"
          % (len(snaps), len(asked), nd, nf, " before the drop" if dropped else "",
             newer, nblocks, sum(len(x) for x in orders.lists), errors))
    if ends:
        print("# the writers stopped after %d writes" % sum(ends))
    return 1 if errors else 0


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "work":
        work(*args)
    elif cmd == "verify":
        inject = None
        if len(args) == 5 and args[3] == "--inject":
            inject = args[4]
            args = args[:3]
        sys.exit(verify(*args, inject=inject))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
