#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Independent Python client of the parallax lock protocol, for tests.

Written from Documentation/lock-protocol.rst with hmac/hashlib/socket/
struct only, so it doubles as a cross-check of the C framing.

  lkclient.py call ADDR STORE HOST [--key HEX] [--helper] CMD [ARGS]
                   [, CMD [ARGS]]...
      one connection, one request per command; prints one line per reply:
      "OP STATUS id=I gen=G holder=H type=T" (grant) or "OP STATUS text"
      --helper says HELLO with flag 1 (a parallaxd, which runs GC jobs).
      --text adds an EBUSY grant's text: "... type=T | TEXT".
      commands: renew | lock_vdi ID [cache] | unlock_vdi ID GEN [clean] |
      claim TYPE ID | release ID GEN | lock_registry | unlock_registry GEN |
      lock_bitmap ID | unlock_bitmap ID | break WHAT ID [force] [discard] |
      status | flags OPNAME ID GEN FLAGS (any flags, raw) |
      gc_post HOST KIND EPOCH EXTENT GEN OFFSET HEX|- (KIND begin, reclaim,
      end or a number) | gc_result ID|last | gc_fetch |
      gc_done ID|last ERRNO FREED | gc_wait ID|last SECONDS (poll
      gc_result every 0.1 s until done) |
      raw OPNUM LEN (a request of LEN zero bytes) | sleep SECONDS
      "last" is the job id of the last gc_post (gc_result, gc_wait) or
      gc_fetch (gc_done) on this connection.  gc_fetch prints
      "GC_FETCH OK job=I epoch=E extent=X gen=G host=H kind=K offset=O
      bits=HEX" or "GC_FETCH ENOENT text".
  lkclient.py attack ADDR STORE KIND [N]
      garbage | oversize | truncated | badmac | before-hello | wrongkey |
      replay-other | replay-seq | conns N | long OPNUM LEN (a correctly
      tagged request of LEN bytes after HELLO, LEN past the op's limit).  Prints "closed" if the server
      closed the connection without sending a reply frame, "replied ..."
      otherwise; for conns: "open N closed M".
  lkclient.py disk STORE vdi ID | vdi_cache ID | extent E | registry |
                   lockd_addr | key
      reads raw blocks (no lockd involved); vdi_cache prints "dirty" or
      "clean", the record's cache-dirty mark.
  A grant whose reserved field is not 0 (BREAK of a host: cache-dirty VDI
  locks kept) ends with " kept=N".
"""
import hashlib
import hmac
import os
import socket
import struct
import sys
import time

MAGIC = 0x504C4B31
VERSION = 1
OPS = ["?", "CHALLENGE", "HELLO", "RENEW", "LOCK_VDI", "UNLOCK_VDI",
       "CLAIM_EXTENT", "RELEASE_EXTENT", "LOCK_REGISTRY", "UNLOCK_REGISTRY",
       "LOCK_BITMAP", "UNLOCK_BITMAP", "BREAK", "STATUS", "GC_POST",
       "GC_RESULT", "GC_FETCH", "GC_DONE"]
STATUS = ["OK", "EINVAL", "EBUSY", "ENOENT", "ESTALE", "EPERM", "ENOSPC",
          "EIO", "EPROTO", "EAGAIN"]
JOB_KINDS = {"begin": 1, "reclaim": 2, "end": 3}
HELLO_HELPER = 1
FORCE, CACHE, CLEAN, DISCARD = 1, 2, 4, 8
WHAT = {"host": 1, "vdi": 2, "extent": 3, "registry": 4}
BS = 4096


# ---- Raw blockstore access ----------------------------------------------

def read_block(store, nr):
    with open(store, "rb") as f:
        f.seek(nr * BS)
        return f.read(BS)


def superblock(store):
    b = read_block(store, 0)
    (nr_blocks, extent_blocks, nr_extents, system_extents, cat_start,
     cat_blocks, reg_start, reg_slots) = struct.unpack_from("<8Q", b, 64)
    return {
        "extent_blocks": extent_blocks, "nr_extents": nr_extents,
        "system_extents": system_extents, "cat_start": cat_start,
        "reg_start": reg_start, "reg_slots": reg_slots,
        "lockd_addr": b[136:200].rstrip(b"\0").decode(),
        "key": b[200:232],
        "registry_holder": struct.unpack_from("<I", b, 232)[0],
        "registry_generation": struct.unpack_from("<Q", b, 240)[0],
    }


def extent(store, e):
    sb = superblock(store)
    per = (BS - 32) // 32
    b = read_block(store, sb["cat_start"] + e // per)
    off = 32 + (e % per) * 32
    typ, _, _, holder, gen, used, bmh = struct.unpack_from("<BBHIQII", b, off)
    return {"type": typ, "holder": holder, "generation": gen,
            "bitmap_holder": bmh}


def vdi(store, i):
    sb = superblock(store)
    b = read_block(store, sb["reg_start"] + i - 1)
    gen, lock_gen, holder = struct.unpack_from("<QQI", b, 112)
    return {"generation": gen, "lock_generation": lock_gen, "holder": holder,
            "cache_dirty": bool(b[133] & 1),
            "name": b[136:200].rstrip(b"\0").decode(errors="replace")}


# ---- Frames ---------------------------------------------------------------

def hdr(op, status, seq, ln):
    return struct.pack(">IBBHII", MAGIC, VERSION, op, status, seq, ln)


def tag(key, cn, sn, d, header, payload):
    return hmac.new(key, cn + sn + d + header + payload,
                    hashlib.sha256).digest()


def frame(key, cn, sn, d, op, seq, payload, status=0):
    h = hdr(op, status, seq, len(payload))
    return h + payload + tag(key, cn, sn, d, h, payload)


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf


def split(addr):
    if addr.startswith("["):
        h, p = addr[1:].split("]:")
    else:
        h, p = addr.rsplit(":", 1)
    return h, int(p)


class Client:
    def __init__(self, addr, key, host=None, timeout=10, flags=0):
        self.key = key
        self.s = socket.create_connection(split(addr), timeout=timeout)
        h = recv_exact(self.s, 16)
        magic, ver, op, st, seq, ln = struct.unpack(">IBBHII", h)
        assert magic == MAGIC and ver == VERSION and op == 1 and ln == 24, \
            "bad challenge"
        body = recv_exact(self.s, ln + 32)
        self.sn = body[:16]
        self.lease_ms = struct.unpack_from(">I", body, 16)[0]
        self.cn = os.urandom(16)
        self.seq = 0
        self.challenge_ok = hmac.compare_digest(
            body[ln:], tag(key, b"\0" * 16, self.sn, b"S", h, body[:ln]))
        if host is not None:
            st, payload = self.request(2, self.cn + struct.pack(">II", host,
                                                                flags))
            if st != 0:
                raise RuntimeError("HELLO refused: %s" % STATUS[st])

    def frame(self, op, payload):
        self.seq += 1
        return frame(self.key, self.cn, self.sn, b"C", op, self.seq, payload)

    def reply(self):
        h = recv_exact(self.s, 16)
        magic, ver, op, st, seq, ln = struct.unpack(">IBBHII", h)
        assert magic == MAGIC and ver == VERSION, "bad reply header"
        body = recv_exact(self.s, ln + 32)
        want = tag(self.key, self.cn, self.sn, b"S", h, body[:ln])
        assert hmac.compare_digest(want, body[ln:]), "bad reply tag"
        assert seq == self.seq, "reply seq %d != %d" % (seq, self.seq)
        return op, st, body[:ln]

    def request(self, op, payload):
        self.s.sendall(self.frame(op, payload))
        rop, st, body = self.reply()
        assert rop == op, "reply op %d != %d" % (rop, op)
        return st, body

    def call(self, op, id_=0, gen=0, typ=0, flags=0):
        return self.request(op, struct.pack(">QQII", id_, gen, typ, flags))

    def closed(self, wait=3.0):
        """True if the server closes without sending anything."""
        self.s.settimeout(wait)
        try:
            data = self.s.recv(1)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        return data == b""


def fmt(op, st, body, text=False):
    name = STATUS[st] if st < len(STATUS) else str(st)
    if op == "STATUS" and st == 0:
        return body.decode()
    if st in (0, 2) and len(body) >= 32:
        i, g, holder, typ, lease, res = struct.unpack_from(">QQIIII", body)
        kept = " kept=%d" % res if res else ""
        why = ""
        if text and len(body) > 32:
            why = " | " + body[32:].decode(errors="replace")
        return "%s %s id=%d gen=%d holder=%d type=%d%s%s" % (
            op, name, i, g, holder, typ, kept, why)
    return "%s %s %s" % (op, name, body.decode(errors="replace"))


def run_call(argv):
    addr, store, host = argv[0], argv[1], int(argv[2])
    argv = argv[3:]
    key = superblock(store)["key"]
    flags = 0
    text = False
    while argv and argv[0] in ("--key", "--helper", "--text"):
        if argv[0] == "--key":
            key = bytes.fromhex(argv[1])
            argv = argv[2:]
        elif argv[0] == "--text":
            text = True
            argv = argv[1:]
        else:
            flags |= HELLO_HELPER
            argv = argv[1:]
    cmds, cur = [], []
    for a in argv:
        if a == ",":
            cmds.append(cur)
            cur = []
        else:
            cur.append(a)
    if cur:
        cmds.append(cur)
    c = Client(addr, key, host, flags=flags)
    last_post = last_fetch = 0
    ops = {"renew": 3, "lock_vdi": 4, "unlock_vdi": 5, "claim": 6,
           "release": 7, "lock_registry": 8, "unlock_registry": 9,
           "lock_bitmap": 10, "unlock_bitmap": 11, "break": 12,
           "status": 13}
    for cmd in cmds:
        name, args = cmd[0], cmd[1:]
        if name == "sleep":
            time.sleep(float(args[0]))
            continue
        if name == "gc_post":
            kind = JOB_KINDS.get(args[1])
            kind = int(args[1]) if kind is None else kind
            bits = b"" if args[6] == "-" else bytes.fromhex(args[6])
            job = struct.pack(">QQQIIII", int(args[2]), int(args[3]),
                              int(args[4]), int(args[0]), kind,
                              int(args[5]), len(bits)) + bits
            st, body = c.request(14, job)
            if st == 0:
                last_post = struct.unpack_from(">Q", body)[0]
            print(fmt("GC_POST", st, body))
            continue
        if name in ("gc_result", "gc_wait"):
            job = last_post if args[0] == "last" else int(args[0])
            end = time.time() + (float(args[1]) if name == "gc_wait" else 0)
            while True:
                st, body = c.call(15, job)
                done = st == 0 and struct.unpack_from(">I", body, 20)[0] == 1
                if done or st != 0 or time.time() >= end:
                    break
                time.sleep(0.1)
            print(fmt("GC_RESULT", st, body))
            continue
        if name == "gc_fetch":
            st, body = c.call(16)
            if st == 0:
                (last_fetch, epoch, ext, gen, host_, kind, off,
                 nb) = struct.unpack_from(">QQQQIIII", body)
                bits = body[48:]
                assert len(bits) == nb, "fetch: %d bits, nbytes %d" % (
                    len(bits), nb)
                print("GC_FETCH OK job=%d epoch=%d extent=%d gen=%d host=%d "
                      "kind=%d offset=%d bits=%s" % (
                          last_fetch, epoch, ext, gen, host_, kind, off,
                          bits.hex() or "-"))
            else:
                print(fmt("GC_FETCH", st, body))
            continue
        if name == "gc_done":
            job = last_fetch if args[0] == "last" else int(args[0])
            st, body = c.call(17, job, int(args[2]), int(args[1]))
            print(fmt("GC_DONE", st, body))
            continue
        if name == "raw":
            st, body = c.request(int(args[0]), b"\0" * int(args[1]))
            print(fmt("RAW", st, body))
            continue
        if name == "flags":
            op = ops[args[0]]
            st, body = c.call(op, int(args[1]), int(args[2]), 0,
                              int(args[3], 0))
            sys.stdout.write(fmt(OPS[op], st, body, text) + "\n")
            continue
        op = ops[name]
        if name == "lock_vdi":
            cache = CACHE if "cache" in args[1:] else 0
            st, body = c.call(op, int(args[0]), 0, 0, cache)
        elif name == "unlock_vdi":
            clean = CLEAN if "clean" in args[2:] else 0
            st, body = c.call(op, int(args[0]), int(args[1]), 0, clean)
        elif name in ("lock_bitmap", "unlock_bitmap"):
            st, body = c.call(op, int(args[0]))
        elif name == "release":
            st, body = c.call(op, int(args[0]), int(args[1]))
        elif name == "claim":
            st, body = c.call(op, int(args[1]), 0, int(args[0]))
        elif name == "unlock_registry":
            st, body = c.call(op, 0, int(args[0]))
        elif name == "break":
            fl = (FORCE if "force" in args[2:] else 0) | \
                (DISCARD if "discard" in args[2:] else 0)
            st, body = c.call(op, int(args[1]), 0, WHAT[args[0]], fl)
        else:
            st, body = c.call(op)
        sys.stdout.write(fmt(OPS[op], st, body, text) + "\n")
    sys.stdout.flush()


def run_attack(argv):
    addr, store, kind = argv[0], argv[1], argv[2]
    key = superblock(store)["key"]
    args = struct.pack(">QQII", 1, 0, 0, 0)
    if kind == "conns":
        n = int(argv[3])
        socks = []
        for _ in range(n):
            socks.append(socket.create_connection(split(addr), timeout=10))
        opened = closed = 0
        for s in socks:
            s.settimeout(5)
            try:
                data = s.recv(16)
            except (socket.timeout, ConnectionResetError):
                data = b""
            if data:
                opened += 1
            else:
                closed += 1
        for s in socks:
            s.close()
        print("open %d closed %d" % (opened, closed))
        return
    if kind == "wrongkey":
        c = Client(addr, os.urandom(32))
        c.s.sendall(c.frame(2, c.cn + struct.pack(">II", 7, 0)))
        c.s.sendall(c.frame(4, args))
    elif kind == "replay-other":
        # A good LOCK_VDI frame from one session, replayed into another.
        a = Client(addr, key, 7)
        stolen = a.frame(4, args)
        a.s.close()
        c = Client(addr, key, 8)
        c.s.sendall(stolen)
    elif kind == "long":
        # A correctly tagged request that is too long for its op.
        c = Client(addr, key, 7)
        c.s.sendall(c.frame(int(argv[3]), b"\0" * int(argv[4])))
    elif kind == "replay-seq":
        c = Client(addr, key, 7)
        f = c.frame(13, args)
        c.s.sendall(f)
        c.reply()
        c.s.sendall(f)
    else:
        c = Client(addr, key)
        hello = c.cn + struct.pack(">II", 7, 0)
        if kind == "garbage":
            c.s.sendall(os.urandom(200))
        elif kind == "oversize":
            c.s.sendall(hdr(2, 0, 1, 65) + b"\0" * 97)
        elif kind == "truncated":
            c.s.sendall(c.frame(2, hello)[:-5])
            c.s.shutdown(socket.SHUT_WR)
        elif kind == "badmac":
            f = bytearray(c.frame(2, hello))
            f[-1] ^= 1
            c.s.sendall(bytes(f))
        elif kind == "before-hello":
            c.s.sendall(c.frame(4, args))
        else:
            raise SystemExit("unknown attack " + kind)
    if c.closed():
        print("closed")
    else:
        try:
            print("replied", fmt("?", *c.reply()[1:]))
        except Exception as e:       # noqa: BLE001 - report anything
            print("replied-garbage", e)


def run_disk(argv):
    store, what = argv[0], argv[1]
    if what == "vdi":
        v = vdi(store, int(argv[2]))
        print("holder %d lock_generation %d generation %d" %
              (v["holder"], v["lock_generation"], v["generation"]))
    elif what == "vdi_cache":
        print("dirty" if vdi(store, int(argv[2]))["cache_dirty"] else "clean")
    elif what == "extent":
        e = extent(store, int(argv[2]))
        print("type %d holder %d generation %d bitmap_holder %d" %
              (e["type"], e["holder"], e["generation"], e["bitmap_holder"]))
    elif what == "registry":
        sb = superblock(store)
        print("holder %d generation %d" % (sb["registry_holder"],
                                           sb["registry_generation"]))
    elif what == "lockd_addr":
        print(superblock(store)["lockd_addr"])
    elif what == "key":
        print(superblock(store)["key"].hex())
    elif what == "system_extents":
        print(superblock(store)["system_extents"])


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    mode, argv = sys.argv[1], sys.argv[2:]
    try:
        {"call": run_call, "attack": run_attack, "disk": run_disk}[mode](argv)
    except (EOFError, ConnectionError, AssertionError, RuntimeError) as e:
        print("error %s" % e)
        sys.exit(1)


if __name__ == "__main__":
    main()
