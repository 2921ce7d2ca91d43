#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Run a shell command on a cluster-test guest through its agent.py.

    rexec.py ADDR[:PORT] [--timeout SECS] [--] CMD...
    rexec.py ADDR[:PORT] --wait SECS      wait until the agent answers
    rexec.py ADDR[:PORT] --halt           make the agent (and guest) stop

The command's output is copied to stdout and its status becomes rexec's
exit status.  Connection failures exit with 255.  Must run inside the
test's network namespace (ip netns exec NS ...).
"""
import json
import socket
import sys
import time


def call(addr, port, req, timeout):
    with socket.create_connection((addr, port), timeout=5) as s:
        s.settimeout(timeout)
        s.sendall((json.dumps(req) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("agent closed the connection")
            buf += chunk
    return json.loads(buf)


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit("usage: rexec.py ADDR[:PORT] [--timeout S|--wait S|--halt] [--] CMD...")
    addr, _, port = args.pop(0).partition(":")
    port = int(port or 7700)
    timeout = 600
    if args and args[0] == "--wait":
        deadline = time.time() + float(args[1])
        while True:
            try:
                r = call(addr, port, {"cmd": "true", "timeout": 10}, 15)
                sys.exit(r["rc"])
            except (OSError, ValueError):
                if time.time() > deadline:
                    sys.exit(255)
                time.sleep(0.5)
    if args and args[0] == "--halt":
        try:
            call(addr, port, {"halt": True}, 15)
        except (OSError, ValueError) as e:
            print("rexec: %s" % e, file=sys.stderr)
            sys.exit(255)
        sys.exit(0)
    if args and args[0] == "--timeout":
        timeout = int(args[1])
        args = args[2:]
    if args and args[0] == "--":
        args = args[1:]
    try:
        r = call(addr, port, {"cmd": " ".join(args), "timeout": timeout},
                 timeout + 30)
    except (OSError, ValueError) as e:
        print("rexec: %s:%d: %s" % (addr, port, e), file=sys.stderr)
        sys.exit(255)
    sys.stdout.write(r["out"])
    sys.exit(r["rc"])


if __name__ == "__main__":
    main()
