#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Guest side of tests/kernel/fuzz.sh: feeds fuzzed inputs to the target
through the device-mapper ioctls, without a process per input (a fork
and exec costs about 0.2 s in UML).

fuzzdrv.py tables INPUTS RESULTS VARS
    For each table line: create kt-fz, load the line, resume.  Accepted:
    the table must name the VDI the line named; status, the "extents"
    message and a read of 8 KiB must work; remove.  Refused: the device
    is removed.
fuzzdrv.py messages INPUTS RESULTS VARS NAME DATA2 EXPECT
    Send each message to NAME (a live read-write device); after each,
    close any GC epoch, grant the held extents again after extent
    messages, check the status; every 5th message write one 4 KiB block
    of DATA2 at the same offset of the device and of EXPECT.
fuzzdrv.py gcreclaim INPUTS RESULTS VARS NAME
    Each message (a gc_reclaim naming no block, in an open epoch) must be
    refused or free 0 blocks.

VARS is a file of "KEY VALUE" lines: placeholders @KEY@ in the inputs
are replaced by VALUE; "held EXT GEN" lines list the extents to grant
again.  After every input the kernel log (/dev/kmsg) is searched for a
splat.  Every operation must end within 10 s, else a watchdog reports a
hang and exits.  Violations go to RESULTS as "not ok - ..." lines with
the input; the last line of standard output is the number of inputs.
"""
import errno
import mmap
import os
import re
import struct
import sys
import threading
import time

DM_IOCTL_SIZE = 312
DM_READONLY_FLAG = 1 << 0
DM_SUSPEND_FLAG = 1 << 1
DM_DATA_OUT_FLAG = 1 << 16
DEV_CREATE, DEV_REMOVE, DEV_SUSPEND, DEV_STATUS = 3, 4, 6, 7
TABLE_LOAD, TABLE_STATUS, TARGET_MSG = 9, 12, 14
DM_STATUS_TABLE_FLAG = 1 << 4
SPLAT = re.compile(rb"BUG:|WARNING:|Oops|KASAN|UBSAN|general protection|possible circular|"
                   rb"possible recursive|inconsistent lock|suspicious RCU|INFO: task|kmemleak|"
                   rb"Call Trace")
BS = 4096

ctl = None
results = None
bad = 0
current = [None, 0.0]          # (input, start time) of the operation in progress


def dm(cmd, name, payload=b"", flags=0, count=0, size=65536):
    import fcntl
    buf = bytearray(size)
    struct.pack_into("<3IIIIiIII", buf, 0, 4, 0, 0, size, DM_IOCTL_SIZE, count, 0, flags, 0, 0)
    nm = name.encode()
    buf[48:48 + len(nm)] = nm
    buf[DM_IOCTL_SIZE:DM_IOCTL_SIZE + len(payload)] = payload
    req = (3 << 30) | (DM_IOCTL_SIZE << 16) | (0xFD << 8) | cmd
    fcntl.ioctl(ctl, req, buf, True)
    return buf


def out_string(buf):
    flags, start = struct.unpack_from("<I", buf, 28)[0], struct.unpack_from("<I", buf, 16)[0]
    if not flags & DM_DATA_OUT_FLAG:
        return b""
    return bytes(buf[start:]).split(b"\0", 1)[0]


def message(name, msg):
    return out_string(dm(TARGET_MSG, name, struct.pack("<Q", 0) + msg + b"\0"))


def status(name, table=False):
    buf = dm(TABLE_STATUS, name, flags=DM_STATUS_TABLE_FLAG if table else 0)
    start = struct.unpack_from("<I", buf, 16)[0]
    if not struct.unpack_from("<I", buf, 20)[0]:
        return b""
    s, n = struct.unpack_from("<QQ", buf, start)
    ttype = bytes(buf[start + 24:start + 40]).split(b"\0")[0]
    params = bytes(buf[start + 40:]).split(b"\0", 1)[0]
    return b"%d %d %s %s" % (s, n, ttype, params)


def remove(name):
    dm(DEV_REMOVE, name)


def exists(name):
    try:
        dm(DEV_STATUS, name)
        return True
    except OSError:
        return False


def note(line):
    results.write(line + "\n")
    results.flush()


def violation(desc, inp, detail=b""):
    global bad
    bad += 1
    note("not ok - %s: input %s" % (desc, repr(inp)[:400]))
    for d in detail.decode("latin-1").splitlines()[:8]:
        note("# " + d[:300])


def watchdog():
    while True:
        time.sleep(1)
        inp, t0 = current
        if inp is not None and time.monotonic() - t0 > 10:
            violation("hang: operation still running after 10 s", inp)
            os._exit(3)


def op(inp):
    current[0], current[1] = inp, time.monotonic()


def op_done():
    current[0] = None


class Kmsg:
    def __init__(self):
        self.fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
        os.lseek(self.fd, 0, os.SEEK_END)

    def read(self):
        out = []
        while True:
            try:
                out.append(os.read(self.fd, 8192))
            except BlockingIOError:
                return b"".join(out)
            except OSError as e:
                if e.errno == errno.EPIPE:      # overwritten: go on
                    continue
                raise

    def check(self, inp):
        log = self.read()
        if SPLAT.search(log):
            violation("kernel splat", inp, b"\n".join(l for l in log.splitlines() if SPLAT.search(l)))
        return log


def subst(line, vars_):
    for k, v in vars_.items():
        line = line.replace(b"@" + k + b"@", v)
    return line


def read_vars(path):
    vars_, held = {}, []
    for line in open(path, "rb"):
        f = line.split()
        if len(f) == 3 and f[0] == b"held":
            held.append((f[1], f[2]))
        elif len(f) == 2:
            vars_[f[0]] = f[1]
    return vars_, held


def parse_u64(tok):
    try:
        return int(tok) % (1 << 64)
    except ValueError:
        return None


def devnode(name, path):
    dev = struct.unpack_from("<Q", dm(DEV_STATUS, name), 40)[0]
    major, minor = (dev & 0xfff00) >> 8, (dev & 0xff) | ((dev >> 12) & 0xfff00)
    if os.path.exists(path):
        os.unlink(path)
    os.mknod(path, 0o600 | 0o60000, os.makedev(major, minor))


# Optional arguments with a value, and what the table shows when the
# value is the default (the table lists only the others).
DEFAULTS = {b"cache_mb": b"64", b"host_id": b"1", b"no_space_timeout": b"60",
            b"low_water": b"1024", b"lock_gen": None, b"snapshot_seq": None}


def check_options(n, line, params, got):
    """An accepted table: the optional argument count matched the
    arguments, and each value the line gave is the one the table shows."""
    toks = params.replace(b"\\", b"").split()
    if len(toks) <= 2:
        return
    if not re.fullmatch(rb"[0-9]+", toks[2]) or int(toks[2]) != len(toks) - 3:
        violation("table %d accepted with %d optional arguments after a count of %r"
                  % (n, len(toks) - 3, toks[2]), line, b"table: " + got)
        return
    shown = got.split()[6:]
    opts, i = {}, 3
    while i < len(toks):
        k = toks[i].lower()
        if k in DEFAULTS and i + 1 < len(toks):
            opts[k] = toks[i + 1]
            i += 1
        i += 1
    for k, v in opts.items():
        if not re.fullmatch(rb"\+?[0-9]+", v):
            violation("table %d accepted %s %r" % (n, k.decode(), v), line, b"table: " + got)
            continue
        want = str(int(v)).encode()
        have = shown[shown.index(k) + 1] if k in shown[:-1] else DEFAULTS[k]
        if have != want:
            violation("table %d: %s %r shows as %r" % (n, k.decode(), v, have), line, b"table: " + got)


def tables(inputs, vars_):
    n = acc = 0
    for line in inputs:
        n += 1
        tl = subst(line, vars_)
        toks = tl.split(None, 3)
        start = parse_u64(toks[0]) if toks else None
        length = parse_u64(toks[1]) if len(toks) > 1 else None
        if start is None or length is None or len(toks) < 3:
            continue                    # dmsetup would refuse it itself
        ttype = toks[2][:15]
        params = toks[3] if len(toks) > 3 else b""
        spec = struct.pack("<QQiI16s", start, length, 0, 0, ttype) + params + b"\0"
        op(line)
        dm(DEV_CREATE, "kt-fz")
        try:
            dm(TABLE_LOAD, "kt-fz", spec, flags=DM_READONLY_FLAG if n % 8 == 7 else 0, count=1)
            dm(DEV_SUSPEND, "kt-fz")        # resume
            ok = True
        except OSError:
            ok = False
        if ok:
            acc += 1
            got = status("kt-fz", table=True)
            # The VDI as the kernel parsed it, as the line spelt it (the
            # kernel splits at any space and drops backslashes).
            want = params.split()[1].replace(b"\\", b"") if len(params.split()) > 1 else b""
            vdi = got.split()[4] if len(got.split()) > 4 else b"?"
            if not re.fullmatch(rb"[0-9]+", want) or int(want) != int(vdi):
                violation("table %d accepted for VDI %s, but the line names %r" % (n, vdi.decode(), want),
                          line, b"table: " + got)
            check_options(n, line, params, got)
            try:
                status("kt-fz")
            except OSError as e:
                violation("table %d: status fails: %s" % (n, e), line)
            try:
                message("kt-fz", b"extents")
            except OSError:
                pass
            try:
                devnode("kt-fz", "/tmp/kt-fz")
                fd = os.open("/tmp/kt-fz", os.O_RDONLY | os.O_DIRECT)
                os.preadv(fd, [mmap.mmap(-1, 2 * BS)], 0)
                os.close(fd)
            except OSError:
                pass
        try:
            remove("kt-fz")
        except OSError as e:
            violation("table %d: remove fails: %s" % (n, e), line)
        if exists("kt-fz"):
            violation("table %d: device left behind" % n, line)
        op_done()
        kmsg.check(line)
    note("# tables: %d tried, %d accepted" % (n, acc))
    if not acc:
        violation("no table was accepted: the checks on accepted tables checked nothing", b"")
    return n


def regrant(name, held):
    for e, g in held:
        try:
            message(name, b"add_extent " + e + b" " + g)
        except OSError:
            pass


def check_status(name, n, line):
    try:
        st = status(name).split(b" ")
    except OSError as e:
        violation("message %d: device gone or status fails: %s" % (n, e), line)
        return False
    # 3 words of dmsetup's, 11 of the target's, 7 of its local cache
    # (" none - 0 0 0 0 -" without one).
    if len(st) != 21 or st[3] not in (b"ok", b"out_of_space", b"failed") or \
            not re.fullmatch(rb"-|[a-z_]{1,15}", st[13]) or \
            st[14:] != [b"none", b"-", b"0", b"0", b"0", b"0", b"-"]:
        violation("message %d: status is not sane" % n, line, b" ".join(st))
        message(name, b"lockd connected")
    elif st[3] == b"failed":
        note("# message %d: device failed: %s" % (n, b" ".join(st).decode("latin-1")))
    return True


def write_block(name, blk, data2, expect, line):
    buf = mmap.mmap(-1, BS)
    with open(data2, "rb") as f:
        f.seek(blk * BS)
        buf.write(f.read(BS))
    op(line)
    fd = os.open("/tmp/" + name, os.O_WRONLY | os.O_DIRECT)
    try:
        os.pwritev(fd, [buf], blk * BS)
        ok = True
    except OSError as e:
        ok = False
        err = e
    os.close(fd)
    op_done()
    if ok:
        with open(expect, "r+b") as f:
            f.seek(blk * BS)
            f.write(bytes(buf))
        return 1
    mode = status(name).split()[3]
    if mode != b"failed":
        violation("write of block %d fails (%s) with the device in mode %s" % (blk, err, mode.decode()), line)
    return 0


def messages(inputs, vars_, held, name, data2, expect):
    n = acc = written = 0
    devnode(name, "/tmp/" + name)
    for line in inputs:
        n += 1
        m = subst(line, vars_)
        op(line)
        try:
            message(name, m)
            acc += 1
        except OSError:
            pass
        low = m.lower()
        # With an epoch open, gc_reclaim frees what it is told to, by
        # design: close any epoch a fuzzed gc_begin opened.
        if b"gc" in low:
            try:
                message(name, b"gc_begin 777777777777")
                message(name, b"gc_end 777777777777")
            except OSError as e:
                violation("message %d: cannot close the GC epoch: %s" % (n, e), line)
        if b"extent" in low or n % 5 == 0:
            regrant(name, held)
        op_done()
        if not check_status(name, n, line):
            break
        if n % 5 == 0:
            written += write_block(name, n * 7919 % 4096, data2, expect, line)
        kmsg.check(line)
    note("# messages: %d tried, %d accepted, %d blocks written in between" % (n, acc, written))
    if not acc or not written:
        violation("no message was accepted or no block written: the checks checked nothing", b"")
    return n


def gcreclaim(inputs, vars_, name):
    n = acc = 0
    for line in inputs:
        n += 1
        m = subst(line, vars_)
        op(line)
        try:
            r = message(name, m)
            acc += 1
            if r != b"0":
                violation("gc_reclaim %d with an all-zero chunk freed %r" % (n, r), line)
        except OSError:
            pass
        op_done()
        kmsg.check(line)
    note("# gc_reclaim: %d tried, %d accepted (each freed 0)" % (n, acc))
    if not acc:
        violation("no gc_reclaim was accepted: the check checked nothing", b"")
    return n


def main():
    global ctl, results, kmsg
    if len(sys.argv) < 5:
        sys.stderr.write(__doc__)
        return 2
    kind, inputs, res, varsf = sys.argv[1:5]
    ctl = os.open("/dev/mapper/control", os.O_RDWR)
    results = open(res, "a")
    kmsg = Kmsg()
    threading.Thread(target=watchdog, daemon=True).start()
    lines = open(inputs, "rb").read().split(b"\n")[:-1]
    vars_, held = read_vars(varsf)
    if kind == "tables":
        n = tables(lines, vars_)
    elif kind == "messages":
        n = messages(lines, vars_, held, *sys.argv[5:8])
    else:
        n = gcreclaim(lines, vars_, sys.argv[5])
    print(n)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
