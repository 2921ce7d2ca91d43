#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Send one request line to parallaxd's control socket and print the reply.

    pdctl.py REQUEST...     e.g. pdctl.py status

The socket is $PARALLAX_RUN_DIR/parallaxd.sock (default /run/parallax).
Exit status 0 if the last line is "ok ...", 1 if "error ...", 2 otherwise.
"""
import os
import socket
import sys

path = os.path.join(os.environ.get("PARALLAX_RUN_DIR", "/run/parallax"),
                    "parallaxd.sock")
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(120)
s.connect(path)
s.sendall((" ".join(sys.argv[1:]) + "\n").encode())
buf = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    buf += chunk
text = buf.decode(errors="replace")
sys.stdout.write(text)
lines = text.rstrip("\n").split("\n")
last = lines[-1] if lines else ""
sys.exit(0 if last == "ok" or last.startswith("ok ") else
         1 if last.startswith("error") else 2)
