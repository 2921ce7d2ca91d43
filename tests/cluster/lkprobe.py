#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""A hostile (or, with the store's key, a friendly) lock-protocol client.

    lkprobe.py ADDR:PORT garbage [BYTES]
        send random bytes (before and after the challenge), expect a close
    lkprobe.py ADDR:PORT session KEYSRC HOST OP[:ID[:TYPE[:FLAGS]]]...
        say HELLO as HOST, then send each request; KEYSRC is "store:FILE"
        (the cluster key from FILE's superblock) or "random"

For each frame the server sends back one line is printed:
"reply OP STATUS LEN" (with "mac-ok"/"mac-bad"), or "closed" when the
server closed the connection instead.  A request written "!OP..." is sent
with one bit of its tag flipped.  OP names: hello renew lock_vdi
unlock_vdi claim_extent release_extent lock_registry unlock_registry
lock_bitmap unlock_bitmap break status.  Frames follow
userspace/lib/lockproto.h, written again here on purpose, so that the test
does not share the server's mistakes.
"""
import hashlib
import hmac
import os
import socket
import struct
import sys

MAGIC = 0x504C4B31
OPS = [None, "challenge", "hello", "renew", "lock_vdi", "unlock_vdi",
       "claim_extent", "release_extent", "lock_registry", "unlock_registry",
       "lock_bitmap", "unlock_bitmap", "break", "status"]
KEY_OFFSET = 200	# struct plx_superblock.cluster_key


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        try:
            chunk = s.recv(n - len(buf))
        except (ConnectionResetError, socket.timeout):
            return None
        if not chunk:
            return None
        buf += chunk
    return buf


def read_frame(s):
    hdr = recv_exact(s, 16)
    if hdr is None:
        return None
    magic, ver, op, status, seq, ln = struct.unpack(">IBBHII", hdr)
    if magic != MAGIC or ln > 65536:
        return ("bad-header", hdr)
    rest = recv_exact(s, ln + 32)
    if rest is None:
        return None
    return (op, status, seq, hdr, rest[:ln], rest[ln:])


def mac(key, cn, sn, d, hdr, payload):
    return hmac.new(key, cn + sn + d + hdr + payload, hashlib.sha256).digest()


def frame(key, cn, sn, op, seq, payload):
    hdr = struct.pack(">IBBHII", MAGIC, 1, op, 0, seq, len(payload))
    return hdr + payload + mac(key, cn, sn, b"C", hdr, payload)


def main():
    addr, _, port = sys.argv[1].partition(":")
    s = socket.create_connection((addr, int(port)), timeout=5)
    s.settimeout(5)
    mode = sys.argv[2]
    if mode == "garbage":
        n = int(sys.argv[3]) if len(sys.argv) > 3 else 4096
        s.sendall(os.urandom(7))
        ch = read_frame(s)
        print("challenge" if ch and ch[0] == 1 else "no-challenge")
        try:
            s.sendall(os.urandom(n))
        except OSError:
            pass
        f = read_frame(s)
        print("closed" if f is None else "reply %s" % (f[0],))
        return
    keysrc, host = sys.argv[3], int(sys.argv[4])
    if keysrc == "random":
        key = os.urandom(32)
    else:
        with open(keysrc.split(":", 1)[1], "rb") as f:
            f.seek(KEY_OFFSET)
            key = f.read(32)
    ch = read_frame(s)
    if ch is None or ch[0] != 1:
        print("no-challenge")
        sys.exit(1)
    sn = ch[4][:16]
    cn = os.urandom(16)
    reqs = [("hello", cn + struct.pack(">II", host, 0))]
    for spec in sys.argv[5:]:
        parts = spec.lstrip("!").split(":")
        args = [int(x) for x in parts[1:]] + [0, 0, 0]
        # id, generation, type, flags
        reqs.append((spec[0] == "!" and "!" + parts[0] or parts[0],
                     struct.pack(">QQII", args[0], 0, args[1], args[2])))
    for seq, (name, payload) in enumerate(reqs, 1):
        buf = frame(key, cn, sn, OPS.index(name.lstrip("!")), seq, payload)
        if name[0] == "!":
            buf = buf[:-1] + bytes([buf[-1] ^ 1])
        try:
            s.sendall(buf)
        except OSError:
            print("closed")
            return
        f = read_frame(s)
        if f is None:
            print("closed")
            return
        if f[0] == "bad-header":
            print("bad-header")
            return
        good = hmac.compare_digest(mac(key, cn, sn, b"S", f[3], f[4]), f[5])
        print("reply %s %d %d %s" % (OPS[f[0]] if 0 < f[0] < len(OPS) else f[0],
                                     f[1], len(f[4]),
                                     "mac-ok" if good else "mac-bad"))


if __name__ == "__main__":
    main()
