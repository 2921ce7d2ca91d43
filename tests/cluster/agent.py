#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Command agent of a cluster-test guest (run by guest.sh inside UML).

Listens on TCP; each connection carries one JSON request line and gets one
JSON reply line:

    {"cmd": "shell text", "timeout": SECS}  ->  {"rc": N, "out": "..."}
    {"halt": true}                          ->  {"rc": 0, "out": ""}

A command runs under "bash -c" in its own session with stdin from
/dev/null.  Its stdout and stderr go to a temporary file, not a pipe, so a
command may leave daemons or background jobs behind (parallaxd, fio &)
without the reply waiting for them.  A command that outlives its timeout
has its whole process group killed and reports rc 124.  Several commands
may run at once (one thread per connection).

"halt" makes the agent exit, which ends the guest's uml-run COMMAND: the
guest then scans for leaks and powers off.  This agent trusts its peer: it
listens only on the test's private network namespace.
"""
import json
import os
import signal
import socketserver
import subprocess
import sys
import tempfile
import threading


class Handler(socketserver.StreamRequestHandler):
    def reply(self, rc, out):
        self.wfile.write((json.dumps({"rc": rc, "out": out}) + "\n").encode())
        self.wfile.flush()

    def handle(self):
        line = self.rfile.readline()
        if not line:
            return
        try:
            req = json.loads(line)
        except ValueError:
            self.reply(2, "agent: bad request\n")
            return
        if req.get("halt"):
            self.reply(0, "")
            threading.Thread(target=self.server.shutdown).start()
            return
        timeout = req.get("timeout") or 600
        with tempfile.TemporaryFile() as out:
            p = subprocess.Popen(["bash", "-c", req.get("cmd", "")],
                                 stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT,
                                 start_new_session=True)
            try:
                rc = p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
                rc = 124
            out.seek(0)
            text = out.read().decode(errors="replace")
        if rc < 0:
            rc = 128 - rc
        self.reply(rc, text)


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 7700
    with Server(("0.0.0.0", port), Handler) as srv:
        print("agent: listening on port %d" % port, flush=True)
        srv.serve_forever()
    print("agent: halted", flush=True)


if __name__ == "__main__":
    main()
