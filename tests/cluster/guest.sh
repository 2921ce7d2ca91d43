# SPDX-License-Identifier: GPL-2.0
# Guest side of the cluster harness (run by uml-run as "bash guest.sh IDX
# HOSTID"; not a test program).  Brings up lo and eth0 as 10.77.0.(10+IDX),
# then serves agent.py until the test driver halts it.
#
# The guest's root is the host's root through hostfs, read-write: nothing
# here may write host files such as /etc/parallax/host-id.  The host id
# travels in the environment instead; /run and /tmp are the guest's own.
set -u
idx=$1
export PARALLAX_HOST_ID=$2
export PARALLAX_RUN_DIR=/run/parallax
export CL_GUEST=$idx
mkdir -p /run/parallax
# No udev: bash process substitution needs /dev/fd.
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
ip link set lo up
ip addr add "10.77.0.$((10 + idx))/24" dev eth0
ip link set eth0 up
exec /usr/bin/python3 "$(dirname "$0")/agent.py" 7700
