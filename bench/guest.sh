#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The benchmark's workloads, run inside the UML kernel by bench/run:
#   bench/guest.sh PHASE RUN
# PHASE is one of seq rand cow snaplat freq depth aging burst; RUN is the run
# number.  The device under test is /dev/ubda, fully allocated on the host.
# Each phase lays out its own targets on it from scratch, so a phase never
# measures what an earlier one left behind.  Results are appended as JSON
# lines to $BENCH_OUT/results.jsonl; raw snapshot latencies go to
# $BENCH_OUT/lat/.  The environment comes from bench/run (see its --help).
set -euo pipefail

phase=$1
run=$2
: "${BENCH_OUT:?}" "${BENCH_TOP:?}" "${BENCH_SEQ_MB:?}" "${BENCH_RUNTIME:?}"
: "${BENCH_SNAPS:?}" "${BENCH_CHAIN:?}" "${BENCH_CLONES:?}" "${BENCH_AGING:?}"
: "${BENCH_RATES:?}"

P=$BENCH_TOP/userspace/parallax
SNAPBENCH=$BENCH_TOP/bench/build/snapbench
DISK=/dev/ubda
M=1048576
VDI_MB=1024
SEQ=$((BENCH_SEQ_MB * M))
export DM_DISABLE_UDEV=1
export PARALLAX_RUN_DIR=/run/parallax
mkdir -p "$BENCH_OUT/lat" "$PARALLAX_RUN_DIR"
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd

log() { echo "bench[$phase/$run]: $*" >&2; }

# disk_flushes: flush requests the disk completed, and ms spent in them
# (fields 16 and 17 of /sys/block/ubda/stat).  In UML a flush of ubd is an
# fsync of the backing file, which is what snapshots and commits cost.
disk_flushes() { awk '{ print $16, $17 }' /sys/block/ubda/stat; }

# rec_flushes WORKLOAD CASE TARGET BEFORE AFTER SECONDS
rec_flushes() {
	local n0 t0 n1 t1

	read -r n0 t0 <<<"$4"
	read -r n1 t1 <<<"$5"
	rec "$1" "$2-flushes" "$3" "per s" "$(((n1 - n0) / $6))"
	rec "$1" "$2-flush-ms" "$3" "ms per s" "$(((t1 - t0) / $6))"
}

# rec WORKLOAD CASE TARGET UNIT VALUE
rec() {
	printf '{"workload":"%s","case":"%s","target":"%s","run":%d,"unit":"%s","value":%s}\n' \
		"$1" "$2" "$3" "$run" "$4" "$5" >>"$BENCH_OUT/results.jsonl"
	log "$1 $2 $3: $5 $4"
}

# fio_json DEV ARGS...: run one fio job with direct I/O; print its JSON.
fio_json() {
	local dev=$1
	shift
	fio --name=bench --filename="$dev" --direct=1 --ioengine=libaio \
		--output-format=json --randrepeat=0 "$@"
}

# fio_val FIELD < JSON: MB/s ("mbps") or IOPS ("iops") of the job's reads
# plus writes, or a completion-latency percentile in us ("p99w").
fio_val() {
	/usr/bin/python3 -c '
import json, sys
j = json.load(sys.stdin)["jobs"][0]
f = sys.argv[1]
if f == "mbps":
    print("%.1f" % ((j["read"]["bw_bytes"] + j["write"]["bw_bytes"]) / 1e6))
elif f == "iops":
    print("%.0f" % (j["read"]["iops"] + j["write"]["iops"]))
elif f == "p99w":
    print("%.1f" % (j["write"]["clat_ns"]["percentile"]["99.000000"] / 1e3))
' "$1"
}

# fio_rec WORKLOAD CASE TARGET FIELD DEV FIO-ARGS...
fio_rec() {
	local w=$1 c=$2 t=$3 f=$4 dev=$5 out unit
	shift 5
	out=$(fio_json "$dev" "$@")
	case $f in mbps) unit=MB/s ;; iops) unit=IOPS ;; *) unit=us ;; esac
	rec "$w" "$c" "$t" "$unit" "$(fio_val "$f" <<<"$out")"
}

seq_write() { fio_rec "$@" --rw=write --bs=1M --iodepth=8 --size=$SEQ; }
seq_read() { fio_rec "$@" --rw=read --bs=1M --iodepth=8 --size=$SEQ; }

# --- Targets --------------------------------------------------------------

sectors() { echo $(($1 * M / 512)); }

dm_linear() { # NAME OFFSET_MB SIZE_MB
	dmsetup create "$1" --table "0 $(sectors "$3") linear $DISK $(sectors "$2")"
}

clean_dm() {
	local i

	for i in 1 2 3; do
		dmsetup remove_all >/dev/null 2>&1 || true
		[ -z "$(dmsetup ls 2>/dev/null | grep -v 'No devices')" ] && break
		sleep 1
	done
	rm -f "$PARALLAX_RUN_DIR"/*
}

# The thin pool: 64 MiB of metadata at the start of the disk, then data,
# 64 KiB blocks, block zeroing left on (its default: without it a new block
# would expose stale data, which Parallax never does).
THIN_BLOCK=128
thin_pool() {
	dm_linear tmeta 0 64
	dm_linear tdata 64 $((3 * VDI_MB))
	dd if=/dev/zero of=/dev/mapper/tmeta bs=4k count=1 oflag=direct status=none
	dmsetup create pool --table \
		"0 $(sectors $((3 * VDI_MB))) thin-pool /dev/mapper/tmeta /dev/mapper/tdata $THIN_BLOCK 0"
}

thin_new() { # NAME ID
	dmsetup message pool 0 "create_thin $2"
	thin_open "$1" "$2"
}

thin_open() { dmsetup create "$1" --table "0 $(sectors $VDI_MB) thin /dev/mapper/pool $2"; }

# thin_snap NAME ORIGIN-ID SNAP-ID: the documented cycle.
thin_snap() {
	dmsetup suspend "$1"
	dmsetup message pool 0 "create_snap $3 $2"
	dmsetup resume "$1"
}

# Metadata caches emptied: tear the pool down and set it up again.
thin_cold() { # NAME ID
	dmsetup remove "$1"
	dmsetup remove pool
	dmsetup create pool --table \
		"0 $(sectors $((3 * VDI_MB))) thin-pool /dev/mapper/tmeta /dev/mapper/tdata $THIN_BLOCK 0"
	thin_open "$1" "$2"
}

# The parallax store: the whole disk, 256 MiB extents; a VDI attached in
# single-host mode with enough extents for the phase.
plx_store() {
	"$P" format $DISK --extent-size 256M --force >/dev/null
}

plx_new() { # NAME [SIZE_MB]
	"$P" create $DISK "$1" --size "${2:-$VDI_MB}M" >/dev/null
	plx_attach "$1"
}

plx_attach() { # NAME [data extents] [metadata extents]
	"$P" attach $DISK "$1" --data-extents "${2:-6}" --metadata-extents "${3:-2}" >/dev/null
}

plx_detach() { "$P" detach "$1" >/dev/null; }

plx_cold() { plx_detach "$1"; plx_attach "$1" "${@:2}"; }

plx_status() { dmsetup status "$1" | awk -v f="$2" '{ print $(3 + f) }'; }

plx_snap() { dmsetup message "$1" 0 snapshot >/dev/null; }

# dm-snapshot: origin over 1 GiB of disk, a persistent exception store of
# 4 KiB chunks (its finest, so its best case for small writes) after it.
dmsnap_setup() {
	dm_linear base 0 $VDI_MB
	dm_linear cow $VDI_MB $VDI_MB
	dd if=/dev/zero of=/dev/mapper/cow bs=4k count=1 oflag=direct status=none
	dmsetup create origin --table "0 $(sectors $VDI_MB) snapshot-origin /dev/mapper/base"
}

dmsnap_snap() {
	dmsetup suspend origin
	dmsetup create snap --table \
		"0 $(sectors $VDI_MB) snapshot /dev/mapper/base /dev/mapper/cow P 8"
	dmsetup resume origin
}

# --- Phases ---------------------------------------------------------------

# 1. Sequential 1 MiB writes and reads: fresh (allocating) and overwrite,
# each cold (metadata caches emptied) and warm.
phase_seq() {
	clean_dm
	dm_linear lin 0 $VDI_MB
	seq_cases linear lin true
	clean_dm

	thin_pool
	thin_new thin 0
	seq_cases thin thin "thin_cold thin 0"
	clean_dm

	plx_store
	plx_new v
	seq_cases parallax v "plx_cold v"
	clean_dm
}

# seq_cases TARGET NAME COLD-COMMAND: the same sequence on every target;
# dm-linear has no metadata to make cold, and goes through it all the same
# so that the host's page cache treats every target alike.
seq_cases() {
	local dev=/dev/mapper/$2

	seq_write seq write-fresh "$1" mbps "$dev"
	seq_write seq write-warm "$1" mbps "$dev"
	seq_read seq read-warm "$1" mbps "$dev"
	$3
	seq_read seq read-cold "$1" mbps "$dev"
	$3
	seq_write seq write-cold "$1" mbps "$dev"
}

# 2. Random 4 KiB reads and writes over written blocks, iodepth 1 and 32.
rand_all() { # TARGET DEV
	local qd rw

	for qd in 1 32; do
		for rw in randread randwrite; do
			fio_rec rand "$rw-qd$qd" "$1" iops "$2" --rw=$rw --bs=4k \
				--iodepth=$qd --size=$SEQ --time_based \
				--runtime="$BENCH_RUNTIME" --ramp_time=1
		done
	done
}

fill() { fio_json "$1" --rw=write --bs=1M --iodepth=8 --size=$SEQ >/dev/null; }

phase_rand() {
	clean_dm
	dm_linear lin 0 $VDI_MB
	fill /dev/mapper/lin
	rand_all linear /dev/mapper/lin
	clean_dm

	thin_pool
	thin_new thin 0
	fill /dev/mapper/thin
	rand_all thin /dev/mapper/thin
	clean_dm

	plx_store
	plx_new v
	fill /dev/mapper/v
	rand_all parallax /dev/mapper/v
	clean_dm
}

# 3. Copy-on-write: random 4 KiB writes right after a snapshot, each to a
# block not written since (fio's random map), over the written region.
# dm-linear is the same writes with no snapshot at all.
cow_write() { # TARGET DEV [SNAPSHOT-FUNCTION]
	local qd

	for qd in 1 32; do
		fio_rec cow "randwrite-qd$qd" "$1" iops "$2" --rw=randwrite --bs=4k \
			--iodepth=$qd --size=$SEQ --io_size=$((SEQ / 8))
		[ "$1" = linear ] || "$3"
	done
}

phase_cow() {
	clean_dm
	dm_linear lin 0 $VDI_MB
	fill /dev/mapper/lin
	cow_write linear /dev/mapper/lin
	clean_dm

	thin_pool
	thin_new thin 0
	fill /dev/mapper/thin
	thin_snap thin 0 1
	next_thin=2
	cow_write thin /dev/mapper/thin snap_thin
	clean_dm

	plx_store
	plx_new v
	fill /dev/mapper/v
	plx_snap v
	cow_write parallax /dev/mapper/v snap_plx
	clean_dm

	dmsnap_setup
	fill /dev/mapper/origin
	dmsnap_snap
	cow_write dm-snapshot /dev/mapper/origin snap_dmsnap
	clean_dm
}

# A fresh snapshot between the qd1 and qd32 passes, so that the second
# pass copies on write too.
snap_thin() { thin_snap thin 0 $next_thin; next_thin=$((next_thin + 1)); }
snap_plx() { plx_snap v; }
snap_dmsnap() {
	dmsetup remove snap
	dd if=/dev/zero of=/dev/mapper/cow bs=4k count=1 oflag=direct status=none
	dmsnap_snap
}

# Latency samples: the raw file, and p50/p99/max records.
lat_rec() { # CASE TARGET FILE
	local p50 p99 max

	read -r p50 p99 max < <(sort -n "$3" | awk '
		{ v[NR] = $1 }
		END {
			i50 = int(0.50 * (NR - 1) + 1.5); i99 = int(0.99 * (NR - 1) + 1.5)
			if (i50 > NR) i50 = NR; if (i99 > NR) i99 = NR
			print v[i50], v[i99], v[NR]
		}')
	rec snaplat "$1-p50" "$2" us "$p50"
	rec snaplat "$1-p99" "$2" us "$p99"
	rec snaplat "$1-max" "$2" us "$max"
}

# Random 4 KiB writes, qd 32, for the length of a snapshot burst.
load_start() { # DEV
	fio_json "$1" --rw=randwrite --bs=4k --iodepth=32 --size=$SEQ \
		--time_based --runtime=3600 >/dev/null 2>&1 &
	load_pid=$!
	sleep 2
}

# The background job is a subshell running fio: stop fio itself too.
load_stop() {
	pkill -P "$load_pid" 2>/dev/null || true
	kill "$load_pid" 2>/dev/null || true
	wait "$load_pid" 2>/dev/null || true
}

# 4. Snapshot latency: BENCH_SNAPS back to back, idle and under load;
# dm-thin's full suspend/create_snap/resume cycle against parallax's
# message, both timed by snapbench through libdevmapper.
phase_snaplat() {
	local f

	clean_dm
	thin_pool
	thin_new thin 0
	fill /dev/mapper/thin
	f=$BENCH_OUT/lat/idle-thin-$run.txt
	"$SNAPBENCH" thin pool thin 0 1 -n "$BENCH_SNAPS" >"$f"
	lat_rec idle thin "$f"
	load_start /dev/mapper/thin
	f=$BENCH_OUT/lat/load-thin-$run.txt
	"$SNAPBENCH" thin pool thin 0 $((BENCH_SNAPS + 1)) -n "$BENCH_SNAPS" >"$f"
	load_stop
	lat_rec load thin "$f"
	clean_dm

	plx_store
	plx_new v
	fill /dev/mapper/v
	f=$BENCH_OUT/lat/idle-parallax-$run.txt
	"$SNAPBENCH" parallax v -n "$BENCH_SNAPS" >"$f"
	lat_rec idle parallax "$f"
	load_start /dev/mapper/v
	f=$BENCH_OUT/lat/load-parallax-$run.txt
	"$SNAPBENCH" parallax v -n "$BENCH_SNAPS" >"$f"
	load_stop
	lat_rec load parallax "$f"
	clean_dm
}

# snapper_start RATE SNAPBENCH-ARGS...: snapshots at RATE per second (none
# at 0) until snapper_stop.
snapper_start() {
	local rate=$1

	shift
	snapper_pid=
	[ "$rate" = 0 ] && return
	"$SNAPBENCH" "$@" -r "$rate" -n 100000000 -q >"$BENCH_OUT/snapper.txt" &
	snapper_pid=$!
}

snapper_stop() { # prints the number of snapshots taken
	if [ -n "$snapper_pid" ]; then
		kill "$snapper_pid" 2>/dev/null || true
		wait "$snapper_pid" || true
		wc -l <"$BENCH_OUT/snapper.txt"
	else
		echo 0
	fi
}

# 5. Snapshot frequency: a fixed fio job, and untar + build of a small C
# tree on ext4, at each rate of BENCH_RATES; metadata bytes per snapshot
# from the target's own count of metadata blocks allocated.
phase_freq() {
	local rate n m0 m1 t0 t1 f0 base_meta=

	# A fresh pool and store for each rate: after many snapshots every
	# write to thin copies a 64 KiB block, and the pool would fill up.
	for rate in $BENCH_RATES; do
		clean_dm
		thin_pool
		thin_new thin 0
		fill /dev/mapper/thin
		f0=$(disk_flushes)
		snapper_start "$rate" thin pool thin 0 1
		fio_rec freq "fio-$rate" thin iops /dev/mapper/thin --rw=randwrite \
			--bs=4k --iodepth=16 --size=$SEQ --time_based \
			--runtime="$BENCH_RUNTIME"
		snapper_stop >/dev/null
		rec_flushes freq "fio-$rate" thin "$f0" "$(disk_flushes)" "$BENCH_RUNTIME"
	done
	clean_dm

	for rate in $BENCH_RATES; do
		plx_store
		plx_new v
		fill /dev/mapper/v
		f0=$(disk_flushes)
		m0=$(plx_status v 3)
		snapper_start "$rate" parallax v
		fio_rec freq "fio-$rate" parallax iops /dev/mapper/v --rw=randwrite \
			--bs=4k --iodepth=16 --size=$SEQ --time_based \
			--runtime="$BENCH_RUNTIME"
		snapper_stop >/dev/null
		rec_flushes freq "fio-$rate" parallax "$f0" "$(disk_flushes)" "$BENCH_RUNTIME"
		m1=$(plx_status v 3)
		rec freq "fio-$rate-metadata" parallax "blocks per s" $(((m1 - m0) / BENCH_RUNTIME))
		plx_detach v
	done

	mkdir -p /mnt/bench
	for rate in $BENCH_RATES; do
		plx_new "b$rate" 2048
		mkfs.ext4 -q -E lazy_itable_init=0,lazy_journal_init=0 "/dev/mapper/b$rate"
		mount "/dev/mapper/b$rate" /mnt/bench
		m0=$(plx_status "b$rate" 3)
		t0=$(date +%s.%N)
		snapper_start "$rate" parallax "b$rate"
		tar -xf "$BENCH_OUT/src.tar" -C /mnt/bench
		make -s -C /mnt/bench/src -j1 >/dev/null
		sync
		n=$(snapper_stop)
		t1=$(date +%s.%N)
		umount /mnt/bench
		m1=$(plx_status "b$rate" 3)
		rec freq "build-$rate" parallax s "$(echo "$t1 - $t0" | bc)"
		rec freq "build-$rate-snapshots" parallax count "$n"
		rec freq "build-$rate-metadata" parallax KiB $(((m1 - m0) * 4))
		if [ "$rate" = 0 ]; then
			base_meta=$((m1 - m0))
		elif [ -n "$base_meta" ] && [ "$n" -gt 0 ]; then
			rec freq "bytes-per-snapshot-$rate" parallax B \
				$(((m1 - m0 - base_meta) * 4096 / n))
		fi
		plx_detach "b$rate"
	done
	clean_dm
}

# 6. Depth: reads of a VDI at the end of a chain of BENCH_CHAIN snapshots
# taken while it was written, and of a clone BENCH_CLONES clones deep,
# against a VDI with the same contents at depth 0.
depth_reads() { # CASE DEV
	seq_read depth "$1-seq" parallax mbps "$2"
	fio_rec depth "$1-rand" parallax iops "$2" --rw=randread --bs=4k \
		--iodepth=32 --size=$SEQ --time_based --runtime="$BENCH_RUNTIME"
}

phase_depth() {
	local i snap

	clean_dm
	plx_store
	plx_new chain
	fill /dev/mapper/chain
	"$SNAPBENCH" parallax chain -r 200 -n "$BENCH_CHAIN" -q >/dev/null &
	snapper_pid=$!
	fio_json /dev/mapper/chain --rw=randwrite --bs=4k --iodepth=4 --size=$SEQ \
		--time_based --runtime=3600 >/dev/null 2>&1 &
	load_pid=$!
	wait "$snapper_pid"
	load_stop
	rec depth chain-snapshots parallax count "$(plx_status chain 7)"
	# Depth 0: a fresh VDI holding what the chain's head holds.
	plx_new flat
	dd if=/dev/mapper/chain of=/dev/mapper/flat bs=1M count="$BENCH_SEQ_MB" \
		iflag=direct oflag=direct status=none
	plx_cold flat
	plx_cold chain
	depth_reads depth0-cold /dev/mapper/flat
	depth_reads chain-cold /dev/mapper/chain
	depth_reads depth0-warm /dev/mapper/flat
	depth_reads chain-warm /dev/mapper/chain
	plx_detach flat
	plx_detach chain

	# Clones: c0 is written sequentially; each next one clones the last
	# snapshot of the previous and writes 64 KiB into it.
	plx_new c0
	fill /dev/mapper/c0
	plx_detach c0
	for i in $(seq 1 "$BENCH_CLONES"); do
		snap=$("$P" snapshot $DISK "c$((i - 1))")
		"$P" create $DISK "c$i" --from "$snap" >/dev/null
		plx_attach "c$i" 1 1
		dd if=/dev/urandom of="/dev/mapper/c$i" bs=64k count=1 \
			seek=$((i * 37 % (BENCH_SEQ_MB * 16))) oflag=direct status=none
		plx_detach "c$i"
	done
	plx_attach c0
	plx_attach "c$BENCH_CLONES"
	depth_reads clone0-cold /dev/mapper/c0
	depth_reads "clone$BENCH_CLONES-cold" "/dev/mapper/c$BENCH_CLONES"
	depth_reads clone0-warm /dev/mapper/c0
	depth_reads "clone$BENCH_CLONES-warm" "/dev/mapper/c$BENCH_CLONES"
	clean_dm
}

# 7. Aging: a VDI written on a store after BENCH_AGING rounds of
# interleaved snapshot, clone, delete and gc, against one written on a
# fresh store.
aged_rw() { # CASE
	plx_new "$1"
	seq_write aging "$1-write" parallax mbps "/dev/mapper/$1"
	plx_cold "$1"
	seq_read aging "$1-read" parallax mbps "/dev/mapper/$1"
	fio_rec aging "$1-randread" parallax iops "/dev/mapper/$1" --rw=randread \
		--bs=4k --iodepth=32 --size=$SEQ --time_based --runtime="$BENCH_RUNTIME"
	plx_detach "$1"
}

phase_aging() {
	local i snap live=() victim

	clean_dm
	plx_store
	aged_rw fresh
	"$P" delete $DISK fresh >/dev/null
	"$P" gc $DISK --quiet >/dev/null

	for i in $(seq 1 "$BENCH_AGING"); do
		if [ ${#live[@]} -gt 0 ] && [ $((i % 3)) = 0 ]; then
			snap=$("$P" snapshot $DISK "${live[-1]}")
			"$P" create $DISK "a$i" --from "$snap" >/dev/null
		else
			"$P" create $DISK "a$i" --size 512M >/dev/null
		fi
		plx_attach "a$i" 2 1
		fio_json "/dev/mapper/a$i" --rw=randwrite --bs=4k --iodepth=16 \
			--size=256M --io_size=$(((i % 4 + 1) * 16))M \
			--randseed="$i" >/dev/null
		plx_snap "a$i"
		fio_json "/dev/mapper/a$i" --rw=write --bs=64k --iodepth=8 \
			--offset=$(((i * 7) % 16))M --size=32M >/dev/null
		plx_detach "a$i"
		live+=("a$i")
		if [ ${#live[@]} -gt 3 ]; then
			victim=${live[0]}
			live=("${live[@]:1}")
			"$P" delete $DISK "$victim" >/dev/null
		fi
		[ $((i % 2)) = 0 ] && "$P" gc $DISK --quiet >/dev/null
	done
	"$P" gc $DISK --quiet >/dev/null
	aged_rw aged
	clean_dm
}

# 8. Bursted writes (thesis figures 5.10 and 5.11): four writers, each on
# its own device, burst BENCH_BURST_MB at one shared store that is slow
# and saturable: a slice of /dev/ubda behind dm-delay (every read, write
# and flush held BENCH_STORE_DELAY_MS), seen through a loop device with
# direct I/O whose queue depth (loop.hw_queue_depth, set by bench/run)
# and request size (BENCH_STORE_KB) bound what is in flight, so that the
# store's bandwidth is depth x size / delay and the writers share it.
# Each parallax writer with a cache has its own log on its own ubd disk
# (/dev/ubdb../dev/ubde, the "local disks"), not delayed.  Per writer:
# the time until its last write and fsync completed; per configuration:
# the time until every log has drained.  A probe writes 4 KiB at
# BENCH_PROBE_IOPS to its own corner of the store all along, to see the
# store's write latency idle, during the burst and during the drain.
BURST_WRITERS=4
BURST_STORE_MB=6144
BURST_PROBE_MB=64

now() { date +%s.%N; }

burst_store() {
	local s=$BURST_STORE_MB d=$BENCH_STORE_DELAY_MS r=$BENCH_STORE_READ_DELAY_MS loop

	dmsetup create slow --table "0 $(sectors "$s") delay $DISK 0 $r $DISK 0 $d $DISK 0 $d"
	loop=$(losetup --direct-io=on --show -f /dev/mapper/slow)
	BURST_LOOP=$loop
	echo mq-deadline >"/sys/block/${loop#/dev/}/queue/scheduler"
	echo "$BENCH_STORE_KB" >"/sys/block/${loop#/dev/}/queue/max_sectors_kb"
	log "store: $loop over dm-delay ${r} ms reads, ${d} ms writes and flushes, queue depth" \
		"$(cat "/sys/block/${loop#/dev/}/mq/0/nr_tags"), ${BENCH_STORE_KB} KiB requests"
	dmsetup create store --table "0 $(sectors $((s - BURST_PROBE_MB))) linear $loop 0"
	dmsetup create probe --table \
		"0 $(sectors $BURST_PROBE_MB) linear $loop $(sectors $((s - BURST_PROBE_MB)))"
}

# burst_targets CONFIG: /dev/mapper/w0..w3 on the store.
burst_targets() {
	local i slice=$((BENCH_BURST_MB + 64)) n mode tbl ext

	case $1 in
	linear)
		for i in $(seq 0 $((BURST_WRITERS - 1))); do
			dmsetup create "w$i" --table \
				"0 $(sectors $slice) linear /dev/mapper/store $(sectors $((i * slice)))"
		done
		;;
	thin)
		dmsetup create tmeta --table "0 $(sectors 64) linear /dev/mapper/store 0"
		dmsetup create tdata --table \
			"0 $(sectors $((BURST_STORE_MB - 1024))) linear /dev/mapper/store $(sectors 64)"
		dd if=/dev/zero of=/dev/mapper/tmeta bs=4k count=1 oflag=direct status=none
		dmsetup create pool --table "0 $(sectors $((BURST_STORE_MB - 1024))) thin-pool /dev/mapper/tmeta /dev/mapper/tdata $THIN_BLOCK 0"
		for i in $(seq 0 $((BURST_WRITERS - 1))); do
			dmsetup message pool 0 "create_thin $i"
			dmsetup create "w$i" --table "0 $(sectors $slice) thin /dev/mapper/pool $i"
		done
		;;
	parallax*)
		"$P" format /dev/mapper/store --extent-size 256M --force >/dev/null
		n=$(((BENCH_BURST_MB + 255) / 256 + 1))
		for i in $(seq 0 $((BURST_WRITERS - 1))); do
			"$P" create /dev/mapper/store "w$i" --size "${slice}M" >/dev/null
			"$P" attach /dev/mapper/store "w$i" --data-extents "$n" \
				--metadata-extents 1 >/dev/null
			[ "$1" = parallax ] && continue
			mode=${1#parallax-}
			# attach has no option for the adaptive threshold: the
			# table is reloaded with the cache appended, and the
			# extents granted again.
			"$P" cache-init --force "/dev/ubd$(burst_disk "$i")" >/dev/null
			ext=$(dmsetup message "w$i" 0 extents)
			tbl=$(dmsetup table "w$i")
			# shellcheck disable=SC2086 # the table's words
			burst_reload "w$i" "$mode" "$ext" $tbl
		done
		;;
	esac
}

BURST_DISKS=(b c d e)
burst_disk() { echo "${BURST_DISKS[$1]}"; }

# burst_reload NAME MODE EXTENTS START LEN parallax DEV VDI [N OPTS...]
burst_reload() {
	local name=$1 mode=$2 ext=$3 i n=0 opts=() e

	shift 3
	if [ $# -ge 6 ]; then
		n=$6
		opts=("${@:7}")
	fi
	i=${name#w}
	n=$((n + 4))
	opts+=(local_cache "/dev/ubd$(burst_disk "$i")" local_cache_mode "$mode")
	if [ "$mode" = adaptive ]; then
		n=$((n + 2))
		opts+=(local_cache_latency_ms "$BENCH_CACHE_LATENCY_MS")
	fi
	dmsetup suspend "$name"
	dmsetup reload "$name" --table "$1 $2 $3 $4 $5 $n ${opts[*]}"
	dmsetup resume "$name"
	for e in $ext; do
		dmsetup message "$name" 0 add_extent "${e%%:*}" >/dev/null
	done
}

burst_teardown() {
	local i

	for i in $(seq 0 $((BURST_WRITERS - 1))); do
		dmsetup remove "w$i" 2>/dev/null || true
	done
	for i in pool tdata tmeta; do
		dmsetup remove "$i" 2>/dev/null || true
	done
	rm -f "$PARALLAX_RUN_DIR"/*
}

# burst_sum FIELD: a status field summed over every writer (14: log
# blocks used, 16: records pending, 17: drain rate).
burst_sum() {
	local i sum=0 v

	for i in $(seq 0 $((BURST_WRITERS - 1))); do
		v=$(plx_status "w$i" "$1")
		sum=$((sum + v))
	done
	echo "$sum"
}

# The probe: 4 KiB random writes at BENCH_PROBE_IOPS, queue depth 1, to
# its own corner of the store, until probe_stop (or for SECONDS).
probe_start() { # FILE [SECONDS]
	fio --name=probe --filename=/dev/mapper/probe --direct=1 \
		--ioengine=psync --rw=randwrite --bs=4k --rate_iops="$BENCH_PROBE_IOPS" \
		--time_based --runtime="${2:-3600}" --output-format=json \
		--output="$1" >/dev/null 2>&1 &
	probe_pid=$!
}

probe_stop() {
	kill -INT "$probe_pid" 2>/dev/null || true
	wait "$probe_pid" || true
}

probe_rec() { # CONFIG WINDOW FILE
	local p50 p99

	read -r p50 p99 < <(/usr/bin/python3 -c '
import json, sys
# fio stopped by SIGINT says so before its JSON.
t = open(sys.argv[1]).read()
p = json.loads(t[t.index("{"):])["jobs"][0]["write"]["clat_ns"]["percentile"]
print("%.1f %.1f" % (p["50.000000"] / 1e6, p["99.000000"] / 1e6))
' "$3") || return 0
	rec burst "probe-$2-p50" "$1" ms "$p50"
	rec burst "probe-$2-p99" "$1" ms "$p99"
}

burst_run() { # CONFIG
	local cfg=$1 dir=$BENCH_OUT/burst/$1-$run i t0 tw td pids=() \
		used=0 end cached=0 st0 st1

	rm -rf "$dir"
	mkdir -p "$dir"
	case $cfg in parallax-*) cached=1 ;; esac
	probe_start "$dir/probe-idle.json" 3
	wait "$probe_pid" || true
	read -r -a st0 <"/sys/block/${BURST_LOOP#/dev/}/stat"
	probe_start "$dir/probe-burst.json"
	t0=$(now)
	for i in $(seq 0 $((BURST_WRITERS - 1))); do
		(
			fio --name="w$i" --filename="/dev/mapper/w$i" --direct=1 \
				--ioengine=libaio --rw=write --bs=1M --iodepth=4 \
				--size="${BENCH_BURST_MB}M" --end_fsync=1 \
				--output-format=json --output="$dir/w$i.json"
			now >"$dir/w$i.end"
		) &
		pids+=($!)
	done
	wait "${pids[@]}"
	tw=$(now)
	probe_stop
	if [ "$cached" = 1 ]; then
		used=$(burst_sum 14)
		probe_start "$dir/probe-drain.json"
		: >"$dir/drain.txt"
		while [ "$(burst_sum 16)" != 0 ]; do
			echo "$(now) $(burst_sum 14) $(burst_sum 17)" >>"$dir/drain.txt"
			sleep 0.25
		done
		probe_stop
	fi
	td=$(now)
	read -r -a st1 <"/sys/block/${BURST_LOOP#/dev/}/stat"
	for i in $(seq 0 $((BURST_WRITERS - 1))); do
		cat "$dir/w$i.end"
	done | awk -v t0="$t0" '{ print $1 - t0 }' | sort -n >"$dir/finish.txt"
	i=1
	while read -r end; do
		rec burst "writer-$i" "$cfg" s "$end"
		i=$((i + 1))
	done <"$dir/finish.txt"
	rec burst all-written "$cfg" s "$(echo "$tw - $t0" | bc)"
	rec burst aggregate "$cfg" MB/s \
		"$(echo "scale=1; $BURST_WRITERS * $BENCH_BURST_MB * $M / 1000000 / ($tw - $t0)" | bc)"
	if [ "$cached" = 1 ]; then
		rec burst drained "$cfg" s "$(echo "$td - $t0" | bc)"
		rec burst backlog "$cfg" MB "$((used * 4096 / 1000000))"
		if [ "$used" -gt 0 ]; then
			rec burst drain-rate "$cfg" MB/s \
				"$(echo "scale=1; $used * 4096 / 1000000 / ($td - $tw)" | bc)"
		fi
	fi
	# Fields 5 and 7 of the loop device's stat: writes and sectors
	# written, the probe's included.
	rec burst store-write-size "$cfg" KiB \
		"$(((st1[6] - st0[6]) / 2 / (st1[4] - st0[4] + 1)))"
	probe_rec "$cfg" idle "$dir/probe-idle.json"
	probe_rec "$cfg" burst "$dir/probe-burst.json"
	[ "$cached" = 0 ] || probe_rec "$cfg" drain "$dir/probe-drain.json"
}

phase_burst() {
	local cfg

	clean_dm
	losetup -D
	burst_store
	for cfg in $BENCH_BURST_CONFIGS; do
		log "burst: $cfg"
		burst_targets "$cfg"
		burst_run "$cfg"
		burst_teardown
	done
	dmsetup remove store probe
	losetup -d "$BURST_LOOP"
	dmsetup remove slow
}

case $phase in
seq|rand|cow|snaplat|freq|depth|aging|burst) "phase_$phase" ;;
*) echo "guest.sh: unknown phase '$phase'" >&2; exit 2 ;;
esac
