// SPDX-License-Identifier: GPL-2.0
/*
 * The target's side of online garbage collection: the gc_begin,
 * gc_reclaim and gc_end messages (Documentation/dm-parallax.rst).
 *
 * The collector may not write the bitmap of an extent this table holds:
 * the table keeps that bitmap in memory and in dm-bufio.  And blocks this
 * table has allocated but not yet linked on disk look like garbage to it.
 * So the collector asks the table to free what it found unreachable, and
 * the table frees only blocks the collector could have judged:
 *
 *  - gc_begin marks every block in the reserves, and every block put there
 *    later, "fresh" (parallax-alloc.c): the collector reads the roots only
 *    after gc_begin has answered, so links to fresh blocks may be missing
 *    from what it read;
 *  - a write that took blocks from the reserve before gc_begin has linked
 *    them on disk once its commit node is written, so gc_begin waits for
 *    every such write's commit, and asks for commits to be written now.
 *    Writes are counted from their first plx_alloc_take to plx_end_io, in
 *    one of two counters chosen by a parity that gc_begin flips; a write
 *    acknowledged before its commit hands its count to the commit node,
 *    which drops it when the node is written (parallax-flush.c).
 *
 * Snapshots allocate too (parallax-snapshot.c), but a snapshot runs from
 * its message to the durable write of the VDI record under message_lock,
 * which every message here holds as well: gc_begin cannot overlap one.
 */
#include <kunit/visibility.h>
#include <linux/slab.h>

#include "parallax-target.h"

#define DM_MSG_PREFIX "parallax"

/* How long gc_begin waits for the writes that took blocks before it. */
#define PLX_GC_BEGIN_TIMEOUT	(30 * HZ)

void plx_gc_init(struct plx_target *t)
{
	spin_lock_init(&t->gc_lock);
	init_waitqueue_head(&t->gc_wait);
}

/* Worker: @bio is about to take blocks from the reserve. */
void plx_gc_count_bio(struct plx_target *t, struct bio *bio)
{
	struct plx_bio *pb = plx_pb(bio);

	if (pb->gc_counted)
		return;
	/* gc_begin flips the parity under the same lock. */
	spin_lock(&t->gc_lock);
	pb->gc_parity = t->gc_parity;
	atomic_inc(&t->gc_inflight[pb->gc_parity]);
	spin_unlock(&t->gc_lock);
	pb->gc_counted = true;
}

void plx_gc_bio_done(struct plx_target *t, struct bio *bio)
{
	struct plx_bio *pb = plx_pb(bio);

	if (!pb->gc_counted)
		return;
	pb->gc_counted = false;
	if (atomic_dec_and_test(&t->gc_inflight[pb->gc_parity]) &&
	    wq_has_sleeper(&t->gc_wait))
		wake_up(&t->gc_wait);
}

/*
 * Lowercase hex, two digits a byte, into at most @max bytes.  Returns the
 * number of bytes, or -EINVAL.  Only one spelling of a chunk is accepted,
 * so that a garbled message cannot pass for another.
 */
int plx_gc_parse_hex(const char *hex, u8 *out, unsigned int max)
{
	size_t i, len = strlen(hex);

	if (!len || len % 2 || len / 2 > max)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		char c = hex[i];
		u8 v;

		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else
			return -EINVAL;
		if (i % 2)
			out[i / 2] |= v;
		else
			out[i / 2] = v << 4;
	}
	return len / 2;
}
EXPORT_SYMBOL_IF_KUNIT(plx_gc_parse_hex);

static int plx_gc_parse_epoch(struct plx_target *t, const char *arg, u64 *epoch)
{
	if (kstrtoull(arg, 10, epoch) || !*epoch) {
		DMERR("VDI %llu: invalid GC epoch '%s': expected 1 or more",
		      t->vdi_id, arg);
		return -EINVAL;
	}
	return 0;
}

static bool plx_gc_drained(struct plx_target *t, unsigned int parity)
{
	return !atomic_read(&t->gc_inflight[parity]);
}

static int plx_gc_begin(struct plx_target *t, u64 epoch)
{
	long left = PLX_GC_BEGIN_TIMEOUT;
	unsigned int old;
	int r;

	r = plx_alloc_gc_start(&t->alloc, epoch);
	if (r) {
		DMERR("VDI %llu: gc_begin %llu: %d", t->vdi_id, epoch, r);
		return r;
	}
	/*
	 * The counter that is about to become current may still hold writes
	 * from before an earlier gc_begin that timed out: they took blocks
	 * before this one too.  Nothing adds to it until the flip.
	 */
	old = READ_ONCE(t->gc_parity);
	plx_commit_soon(t);
	left = wait_event_timeout(t->gc_wait, plx_gc_drained(t, !old), left);
	if (left) {
		spin_lock(&t->gc_lock);
		t->gc_parity = !old;
		spin_unlock(&t->gc_lock);
		plx_commit_soon(t);
		left = wait_event_timeout(t->gc_wait, plx_gc_drained(t, old),
					  left);
	}
	if (!left) {
		plx_alloc_gc_stop(&t->alloc, epoch);
		DMERR("VDI %llu: gc_begin %llu: writes did not end in %u s; epoch cancelled",
		      t->vdi_id, epoch, PLX_GC_BEGIN_TIMEOUT / HZ);
		return -ETIMEDOUT;
	}
	return 0;
}

static int plx_gc_reclaim(struct plx_target *t, char **argv, char *result,
			  unsigned int maxlen)
{
	u64 epoch, extent, generation, offset, freed = 0;
	unsigned int sz = 0;
	char reason[160];
	int nbytes, r;
	u8 *bits;

	r = plx_gc_parse_epoch(t, argv[1], &epoch);
	if (r)
		return r;
	if (kstrtoull(argv[2], 10, &extent) ||
	    kstrtoull(argv[3], 10, &generation) ||
	    kstrtoull(argv[4], 10, &offset)) {
		DMERR("VDI %llu: usage: gc_reclaim <epoch> <extent> <generation> <offset> <hex>",
		      t->vdi_id);
		return -EINVAL;
	}
	bits = kmalloc(PLX_GC_CHUNK_BYTES, GFP_KERNEL);
	if (!bits)
		return -ENOMEM;
	nbytes = plx_gc_parse_hex(argv[5], bits, PLX_GC_CHUNK_BYTES);
	if (nbytes < 0) {
		DMERR("VDI %llu: gc_reclaim: expected 1 to %u bytes of lowercase hex",
		      t->vdi_id, PLX_GC_CHUNK_BYTES);
		r = -EINVAL;
		goto out;
	}
	/*
	 * A failed table may link blocks whose commit write failed and may
	 * or may not be on disk: nothing it holds is safe to free.
	 */
	if (READ_ONCE(t->mode) == PLX_MODE_FAILED) {
		DMERR("VDI %llu: gc_reclaim: the table has failed", t->vdi_id);
		r = -EIO;
		goto out;
	}
	r = plx_alloc_gc_reclaim(&t->alloc, epoch, extent, generation, offset,
				 bits, nbytes, &freed, reason, sizeof(reason));
	if (freed) {
		/* Space may be what queued writes were waiting for. */
		t->low_water_signalled = false;
		plx_wake_worker(t);
	}
	if (r) {
		DMERR("VDI %llu: gc_reclaim: %s", t->vdi_id, reason);
		goto out;
	}
	DMEMIT("%llu", freed);
	r = 1;
out:
	kfree(bits);
	return r;
}

int plx_message_gc(struct plx_target *t, unsigned int argc, char **argv,
		   char *result, unsigned int maxlen)
{
	u64 epoch;
	int r;

	if (!strcasecmp(argv[0], "gc_reclaim") && argc == 6)
		return plx_gc_reclaim(t, argv, result, maxlen);
	if ((strcasecmp(argv[0], "gc_begin") && strcasecmp(argv[0], "gc_end")) ||
	    argc != 2) {
		DMERR("VDI %llu: usage: gc_begin <epoch> | gc_end <epoch> | gc_reclaim ...",
		      t->vdi_id);
		return -EINVAL;
	}
	r = plx_gc_parse_epoch(t, argv[1], &epoch);
	if (r)
		return r;
	if (!strcasecmp(argv[0], "gc_begin"))
		return plx_gc_begin(t, epoch);
	r = plx_alloc_gc_stop(&t->alloc, epoch);
	if (r)
		DMERR("VDI %llu: gc_end: GC epoch %llu is not active", t->vdi_id,
		      epoch);
	return r;
}
