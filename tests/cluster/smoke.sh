#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The cluster harness itself: two UML guests boot on the private network,
# reach each other and the host side, and see the same shared blockstore
# file: what one writes with O_DIRECT the other reads back with O_DIRECT,
# in both directions, and the host sees it in the file.  Both guests power
# off with a clean kernel log.
set -u
source "$(dirname "$0")/lib.sh"

STORE=$T/store.img
truncate -s 64M "$STORE"
cl_net 2 || bail "create network namespace $NS with a bridge and 2 taps"
ok "network namespace $NS: br0 $CL_NET.1/24, tap1, tap2"

cl_boot 1 1
cl_boot 2 2
for i in 1 2; do
	if cl_wait "$i" "${CL_BOOT_WAIT:-180}"; then
		ok "guest $i agent answers"
	else
		not_ok "guest $i agent never answered"
		comment "$T/uml$i.log" 30
	fi
done

# No ping in Debian's minimal set: reach the peers over TCP instead.  Each
# guest runs a command on the other through its agent; the host side
# listens once on the bridge address.
g_check "guest 1 runs a command on guest 2 over the network" 1 \
	"/usr/bin/python3 $CL_DIR/rexec.py $CL_NET.12 -- '[ \$CL_GUEST = 2 ]'"
g_check "guest 2 runs a command on guest 1 over the network" 2 \
	"/usr/bin/python3 $CL_DIR/rexec.py $CL_NET.11 -- '[ \$CL_GUEST = 1 ]'"
in_ns timeout 60 /usr/bin/python3 -c '
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.77.0.1", 7799))
s.listen(1)
c, _ = s.accept()
c.sendall(b"host-side\n")
c.close()' &
listener=$!
sleep 0.5
got=$(on 2 "exec 3<>/dev/tcp/$CL_NET.1/7799 && head -n 1 <&3")
[ "$got" = host-side ] && ok "guest 2 reaches the host side ($CL_NET.1)" ||
	not_ok "guest 2 read '$got' from the host side"
kill "$listener" 2>/dev/null
wait "$listener" 2>/dev/null
g_check "guest 1 has its host id in the environment" 1 '[ "$PARALLAX_HOST_ID" = 1 ]'

# Random blocks, made on the host, written by one guest at a block offset
# and read back by the other.
head -c 4096 /dev/urandom >"$T/b1"
head -c 4096 /dev/urandom >"$T/b2"
want1=$(sha256sum <"$T/b1" | cut -d' ' -f1)
want2=$(sha256sum <"$T/b2" | cut -d' ' -f1)
g_check "guest 1 writes block 100 with O_DIRECT" 1 \
	"dd if=$T/b1 of=/dev/ubda bs=4096 seek=100 count=1 oflag=direct status=none"
got=$(on 2 "dd if=/dev/ubda bs=4096 skip=100 count=1 iflag=direct status=none | sha256sum" | cut -d' ' -f1)
[ "$got" = "$want1" ] && ok "guest 2 reads guest 1's block back (O_DIRECT)" ||
	not_ok "guest 2 read '$got', wanted $want1"
g_check "guest 2 writes block 200 with O_DIRECT" 2 \
	"dd if=$T/b2 of=/dev/ubda bs=4096 seek=200 count=1 oflag=direct status=none"
got=$(on 1 "dd if=/dev/ubda bs=4096 skip=200 count=1 iflag=direct status=none | sha256sum" | cut -d' ' -f1)
[ "$got" = "$want2" ] && ok "guest 1 reads guest 2's block back (O_DIRECT)" ||
	not_ok "guest 1 read '$got', wanted $want2"
got=$(dd if="$STORE" bs=4096 skip=100 count=1 status=none | sha256sum | cut -d' ' -f1)
[ "$got" = "$want1" ] && ok "the host sees the block in the store file" ||
	not_ok "host read '$got', wanted $want1"
g_fail "a failing command reports its status" 1 "exit 3"
rc=0
on 1 "exit 7" >/dev/null 2>&1 || rc=$?
[ "$rc" = 7 ] && ok "the agent returns the exit status (7)" || not_ok "the agent returned $rc, wanted 7"

# The same store through NBD: nbd-server on the host side, nbd-client in
# both guests; the block guest 1 wrote through ubd reads back through NBD
# on guest 2, and a block written through NBD reads back through ubd.
if have_nbd; then
	if nbd_start; then
		ok "nbd-server exports the store on $CL_NET.1:$CL_NBD_PORT"
		for i in 1 2; do
			if nbd_connect "$i" >"$T/out" 2>&1; then
				ok "guest $i connects /dev/nbd0 to the export"
			else
				not_ok "guest $i: nbd-client"
				comment "$T/out"
			fi
		done
		got=$(on 2 "dd if=/dev/nbd0 bs=4096 skip=100 count=1 iflag=direct status=none | sha256sum" | cut -d' ' -f1)
		[ "$got" = "$want1" ] && ok "guest 2 reads guest 1's ubd block through NBD" ||
			not_ok "guest 2 read '$got' through NBD, wanted $want1"
		head -c 4096 /dev/urandom >"$T/b3"
		want3=$(sha256sum <"$T/b3" | cut -d' ' -f1)
		g_check "guest 2 writes block 300 through NBD (O_DIRECT)" 2 \
			"dd if=$T/b3 of=/dev/nbd0 bs=4096 seek=300 count=1 oflag=direct status=none"
		got=$(on 1 "dd if=/dev/nbd0 bs=4096 skip=300 count=1 iflag=direct status=none | sha256sum" | cut -d' ' -f1)
		[ "$got" = "$want3" ] && ok "guest 1 reads it through NBD" ||
			not_ok "guest 1 read '$got' through NBD, wanted $want3"
		got=$(on 1 "dd if=/dev/ubda bs=4096 skip=300 count=1 iflag=direct status=none | sha256sum" | cut -d' ' -f1)
		[ "$got" = "$want3" ] && ok "guest 1 reads it through ubd" ||
			not_ok "guest 1 read '$got' through ubd, wanted $want3"
		for i in 1 2; do
			g_check "guest $i disconnects /dev/nbd0" "$i" "nbd-client -d /dev/nbd0"
		done
	else
		not_ok "nbd-server does not listen"
		comment "$T/nbd.log"
	fi
else
	note "nbd-server/nbd-client not installed: NBD checks skipped"
fi

cl_halt 1
cl_halt 2
finish
