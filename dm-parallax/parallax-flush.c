// SPDX-License-Identifier: GPL-2.0
/*
 * FLUSH, and writes acknowledged before their commit.
 *
 * The block layer promises a write's durability only after a FLUSH that
 * follows its completion, or at once for FUA.  So a write that needed a
 * new block is acknowledged when its data is on the device, and its link
 * becomes durable with the next write of its commit node, which the
 * worker issues as soon as the node's components are done.  Order on
 * disk is unchanged: a commit node still reaches disk only after
 * everything it links, so a crash never leaves a dangling link; it may
 * lose writes that were acknowledged but never flushed, as a disk's write
 * cache may.  FUA writes still wait for their commit, which carries FUA.
 *
 * Commit nodes are written in batches (parallax-commit.c), so a stream of
 * small writes costs one device flush per batch, not one per write.
 *
 * Each early acknowledgment is counted in the current flush generation.
 * A FLUSH flips the generation and waits until the old one has drained,
 * then goes down to the device, which makes the commit nodes durable.
 * Flushes that arrive while one waits wait for the next flip, so a stream
 * of writes cannot starve them: a generation only shrinks once flipped.
 */
#include <linux/blkdev.h>

#include "parallax-target.h"

#define DM_MSG_PREFIX "parallax"

void plx_flush_init(struct plx_target *t)
{
	init_waitqueue_head(&t->commit_wait);
	bio_list_init(&t->flushes_next);
	bio_list_init(&t->flushes_waiting);
}

static bool plx_uncommitted(struct plx_target *t)
{
	return atomic_read(&t->uncommitted[0]) ||
	       atomic_read(&t->uncommitted[1]);
}

/*
 * map(): a flush can go straight down unless an acknowledged write still
 * waits for its commit, or one was lost.  A write acknowledged before
 * this flush was issued was counted before its bio ended.
 */
bool plx_flush_needs_worker(struct plx_target *t)
{
	return plx_uncommitted(t) || READ_ONCE(t->acked_lost);
}

/* Worker: the data of @bio is on the device; acknowledge it now. */
void plx_ack_early(struct plx_target *t, struct plx_pnode *c, struct bio *bio)
{
	struct plx_bio *pb = plx_pb(bio);

	c->acked.flush[t->flush_gen]++;
	atomic_inc(&t->uncommitted[t->flush_gen]);
	if (pb->gc_counted) {
		/* Its blocks are not linked on disk until the commit. */
		c->acked.gc[pb->gc_parity]++;
		pb->gc_counted = false;
	}
	/* A flush issued once this bio has ended must see the count. */
	smp_mb__after_atomic();
	bio_endio(bio);
}

/*
 * Worker: the commit that held @a landed, or never will (@lost).  Lost
 * acknowledged writes fail every later flush.
 */
void plx_release_acked(struct plx_target *t, struct plx_acked *a, bool lost)
{
	int i;

	for (i = 0; i < 2; i++) {
		if (a->flush[i]) {
			if (lost)
				WRITE_ONCE(t->acked_lost, true);
			atomic_sub(a->flush[i], &t->uncommitted[i]);
		}
		if (a->gc[i])
			atomic_sub(a->gc[i], &t->gc_inflight[i]);
	}
	memset(a, 0, sizeof(*a));
	if (wq_has_sleeper(&t->commit_wait))
		wake_up(&t->commit_wait);
	if (wq_has_sleeper(&t->gc_wait))
		wake_up(&t->gc_wait);
}

/* Worker: queue a flush for the next generation flip. */
void plx_flush_queue(struct plx_target *t, struct bio *bio)
{
	bio_list_add(&t->flushes_next, bio);
}

static void plx_flush_submit(struct plx_target *t, struct bio_list *bios)
{
	struct bio *bio;

	while ((bio = bio_list_pop(bios))) {
		if (READ_ONCE(t->acked_lost)) {
			bio_io_error(bio);
			continue;
		}
		bio_set_dev(bio, t->store.dev->bdev);
		plx_submit_remapped(bio);
	}
}

/* Worker, after each pass: send down the flushes whose writes are linked. */
void plx_flush_run(struct plx_target *t)
{
	if (!bio_list_empty(&t->flushes_waiting)) {
		if (atomic_read(&t->uncommitted[!t->flush_gen]))
			return;
		plx_flush_submit(t, &t->flushes_waiting);
	}
	if (bio_list_empty(&t->flushes_next))
		return;
	/* The old generation is empty (above), so it can be the new one. */
	t->flush_gen = !t->flush_gen;
	bio_list_merge(&t->flushes_waiting, &t->flushes_next);
	bio_list_init(&t->flushes_next);
	if (!atomic_read(&t->uncommitted[!t->flush_gen]))
		plx_flush_submit(t, &t->flushes_waiting);
}

/*
 * Postsuspend: no bio is in flight, but commits of acknowledged writes
 * may be.  Wait for them and flush, so that a suspended or removed table
 * leaves every acknowledged write durable.
 */
void plx_flush_drain(struct plx_target *t)
{
	int r;

	WRITE_ONCE(t->draining, true);
	plx_wake_worker(t);
	wait_event(t->commit_wait, !plx_uncommitted(t));
	if (READ_ONCE(t->mode) != PLX_MODE_OK)
		return;
	r = blkdev_issue_flush(t->store.dev->bdev);
	if (r)
		DMERR("VDI %llu: flush at suspend failed: %d", t->vdi_id, r);
}
