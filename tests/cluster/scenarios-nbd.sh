#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# scenarios.sh with the guests reaching the shared store through NBD:
# nbd-server on the host side of the test network exports the store file,
# each guest connects /dev/nbd0 with nbd-client and runs parallaxd on it.
# Needs the Debian packages nbd-server and nbd-client; without them it
# reports nothing and exits 0.
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v nbd-server >/dev/null || ! [ -x /usr/sbin/nbd-client ]; then
	echo "# SKIP nbd-server/nbd-client not installed (apt-get install nbd-server nbd-client)"
	exit 0
fi
CL_TRANSPORT=nbd exec "$here/scenarios.sh"
