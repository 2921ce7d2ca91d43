// SPDX-License-Identifier: GPL-2.0
/*
 * The data path: map a bio to the data block its virtual block resolves to.
 *
 * map() walks the radix tree only through nodes already in the dm-bufio
 * cache (dm_bufio_get never sleeps and is allowed in map context), and
 * remaps reads, and writes whose every link from the root is writable and
 * durable.  Everything else goes to the worker: cache misses, writes that
 * need a new block (parallax-cow.c), bios that meet a pending node, and
 * flushes while acknowledged writes wait for their commit
 * (parallax-flush.c).
 * Data bios are remapped, never copied; sparse blocks read as zeros.
 */
#include <kunit/visibility.h>
#include <linux/blkdev.h>
#include <linux/dm-bufio.h>

#include "parallax-target.h"

#define DM_MSG_PREFIX "parallax"

struct plx_lookup {
	u64 data;			/* data block; 0 = sparse */
	unsigned int run;		/* blocks from here mapped alike */
	bool writable;			/* every link from the root is writable */
	bool pending;			/* a node on the path is pending */
};

void plx_fail(struct plx_target *t, const char *reason)
{
	if (READ_ONCE(t->mode) == PLX_MODE_FAILED)
		return;
	DMERR("VDI %llu: failing: %s", t->vdi_id, reason);
	t->fail_reason = reason;
	WRITE_ONCE(t->mode, PLX_MODE_FAILED);
	dm_table_event(t->ti->table);
}

void plx_wake_worker(struct plx_target *t)
{
	queue_work(t->wq, &t->worker);
}

/*
 * The run that starts at entry @idx of level-0 node @node: up to @max
 * entries that are all sparse, or that point at consecutive blocks with
 * the same read-only bit.  Such a run can be served by one bio.
 */
unsigned int plx_run(const struct plx_geometry *g, const __le64 *node,
		     unsigned int idx, u64 ptr, unsigned int max)
{
	unsigned int n = 1;

	max = min_t(unsigned int, max, PLX_PTRS_PER_NODE - idx);
	while (n < max) {
		u64 next = le64_to_cpu(READ_ONCE(node[idx + n]));

		if (ptr ? next != ptr + n : next)
			break;
		if (ptr && plx_check_addr(g, plx_ptr_addr(next), PLX_EXT_DATA))
			break;
		n++;
	}
	return n;
}
EXPORT_SYMBOL_IF_KUNIT(plx_run);

/*
 * Walk from @root to the data block of @vblock, and measure the run of up
 * to @max blocks mapped alike from there.  Returns 0, -EWOULDBLOCK when a
 * node is not cached and @may_block is false, or -EIO.  Every pointer is
 * checked before it is followed: a corrupt node must never send I/O
 * outside the extents of the right type.
 */
static int plx_lookup(struct plx_target *t, const __le64 *root, u64 vblock,
		      unsigned int max, bool may_block, struct plx_lookup *res)
{
	struct dm_bufio_client *bufio = t->store.bufio;
	const __le64 *node = root;
	struct dm_buffer *b = NULL;
	u64 blk = t->root;
	int level;

	res->writable = true;
	res->pending = false;
	for (level = t->height - 1; ; level--) {
		unsigned int idx = plx_radix_index(vblock, level);
		u64 ptr = le64_to_cpu(READ_ONCE(node[idx]));
		u64 addr = plx_ptr_addr(ptr);
		const __le64 *child;
		struct dm_buffer *cb;
		enum plx_err err;

		if (xa_load(&t->pending, blk))
			res->pending = true;
		err = ptr ? plx_check_addr(&t->store.geo, addr,
					   level ? PLX_EXT_METADATA : PLX_EXT_DATA) :
			    PLX_OK;
		if (err) {
			DMERR_LIMIT("VDI %llu: block %llu level %d: pointer %llx: %s",
				    t->vdi_id, vblock, level, ptr,
				    plx_strerror(err));
			plx_fail(t, "corrupt_radix_node");
			goto fail;
		}
		res->writable &= ptr && !plx_ptr_is_ro(ptr);
		if (!level || !ptr) {
			res->data = level ? 0 : addr;
			res->run = level ? 1 : plx_run(&t->store.geo, node, idx, ptr, max);
			if (b)
				dm_bufio_release(b);
			return 0;
		}
		if (may_block)
			child = dm_bufio_read(bufio, addr, &cb);
		else
			child = dm_bufio_get(bufio, addr, &cb);
		if (b)
			dm_bufio_release(b);
		b = NULL;
		if (!child)
			return -EWOULDBLOCK;
		if (IS_ERR(child)) {
			DMERR_LIMIT("VDI %llu: cannot read radix node %llu: %ld",
				    t->vdi_id, addr, PTR_ERR(child));
			return -EIO;
		}
		node = child;
		b = cb;
		blk = addr;
	}
fail:
	if (b)
		dm_bufio_release(b);
	return -EIO;
}

u64 plx_bio_vblock(struct plx_target *t, struct bio *bio)
{
	return dm_target_offset(t->ti, bio->bi_iter.bi_sector) >>
	       (PLX_BLOCK_SHIFT - SECTOR_SHIFT);
}

static void plx_remap(struct plx_target *t, struct bio *bio, u64 data)
{
	sector_t offset = dm_target_offset(t->ti, bio->bi_iter.bi_sector);

	bio_set_dev(bio, t->store.dev->bdev);
	bio->bi_iter.bi_sector = (data << (PLX_BLOCK_SHIFT - SECTOR_SHIFT)) |
				 (offset & (PLX_SECTORS_PER_BLOCK - 1));
}

/* Count @bio against the current root; returns that root. */
static const __le64 *plx_epoch_get(struct plx_target *t, struct bio *bio)
{
	struct plx_bio *pb = plx_pb(bio);
	const __le64 *root;

	spin_lock(&t->epoch_lock);
	pb->epoch = t->epoch & 1;
	atomic_inc(&t->inflight[pb->epoch]);
	root = t->root_node;
	spin_unlock(&t->epoch_lock);
	pb->counted = true;
	return root;
}

static void plx_epoch_put(struct plx_target *t, struct bio *bio)
{
	struct plx_bio *pb = plx_pb(bio);

	if (!pb->counted)
		return;
	pb->counted = false;
	if (atomic_dec_and_test(&t->inflight[pb->epoch]) &&
	    wq_has_sleeper(&t->epoch_wait))
		wake_up(&t->epoch_wait);
}

/* Worker: send @bio to @data (or zeros), counted against the current root. */
void plx_count_and_remap(struct plx_target *t, struct bio *bio, u64 data)
{
	plx_epoch_get(t, bio);
	if (!data) {
		zero_fill_bio(bio);
		bio_endio(bio);
		return;
	}
	plx_remap(t, bio, data);
	plx_submit_remapped(bio);
}

void plx_defer(struct plx_target *t, struct bio *bio)
{
	spin_lock_irq(&t->lock);
	bio_list_add(&t->deferred, bio);
	spin_unlock_irq(&t->lock);
	plx_wake_worker(t);
}

/* Blocks, from the first, that @bio touches. */
static unsigned int plx_bio_blocks(struct plx_target *t, struct bio *bio)
{
	sector_t off = dm_target_offset(t->ti, bio->bi_iter.bi_sector);
	sector_t end = off + bio_sectors(bio);

	return ((end + PLX_SECTORS_PER_BLOCK - 1) >> (PLX_BLOCK_SHIFT - SECTOR_SHIFT)) -
	       (off >> (PLX_BLOCK_SHIFT - SECTOR_SHIFT));
}

/* Keep only the first @blocks blocks of @bio; dm sends the rest on. */
void plx_accept_blocks(struct plx_target *t, struct bio *bio,
		       unsigned int blocks)
{
	sector_t off = dm_target_offset(t->ti, bio->bi_iter.bi_sector);
	sector_t len = ((sector_t)blocks << (PLX_BLOCK_SHIFT - SECTOR_SHIFT)) -
		       (off & (PLX_SECTORS_PER_BLOCK - 1));

	if (bio_sectors(bio) > len)
		dm_accept_partial_bio(bio, len);
}

int plx_map(struct dm_target *ti, struct bio *bio)
{
	struct plx_bio *pb = plx_pb(bio);
	struct plx_target *t = ti->private;
	bool write = op_is_write(bio_op(bio));
	const __le64 *root;
	struct plx_lookup res;
	unsigned int blocks;
	u64 vblock;
	int r;

	memset(pb, 0, sizeof(*pb));
	pb->t = t;
	if (t->cache) {
		r = plx_cache_map(t->cache, bio);
		if (r != PLX_CACHE_CONTINUE)
			return r;
	}
	if (bio->bi_opf & REQ_PREFLUSH) {
		/*
		 * dm sends flushes without data.  Once every acknowledged
		 * write's links are written, a flush of the store makes them
		 * all durable; until then the worker holds it.
		 */
		if (plx_flush_needs_worker(t)) {
			plx_defer(t, bio);
			return DM_MAPIO_SUBMITTED;
		}
		bio_set_dev(bio, t->store.dev->bdev);
		return DM_MAPIO_REMAPPED;
	}
	if (write && READ_ONCE(t->mode) != PLX_MODE_OK)
		return DM_MAPIO_KILL;
	if (bio_op(bio) == REQ_OP_DISCARD) {
		/* The worker takes discards one block at a time. */
		plx_accept_blocks(t, bio, 1);
		plx_defer(t, bio);
		return DM_MAPIO_SUBMITTED;
	}

	vblock = plx_bio_vblock(t, bio);
	blocks = plx_bio_blocks(t, bio);
	root = plx_epoch_get(t, bio);
	r = plx_lookup(t, root, vblock, blocks, false, &res);
	if (!r) {
		/* The walk may have seen a new link: check busy after it. */
		smp_rmb();
		if (res.pending)
			res.run = 1;
		if (xa_load(&t->busy, vblock))
			r = -EWOULDBLOCK;
		else if (write && (res.pending || !res.writable || !res.data))
			r = -EWOULDBLOCK;
	} else if (r == -EWOULDBLOCK) {
		atomic64_inc(&t->cache_misses);
	}
	if (r) {
		plx_epoch_put(t, bio);
		if (r != -EWOULDBLOCK)
			return DM_MAPIO_KILL;
		/* The worker takes one block at a time. */
		plx_accept_blocks(t, bio, 1);
		plx_defer(t, bio);
		return DM_MAPIO_SUBMITTED;
	}
	atomic64_inc(&t->cache_hits);
	plx_accept_blocks(t, bio, res.run);
	if (!res.data) {
		zero_fill_bio(bio);
		bio_endio(bio);
		return DM_MAPIO_SUBMITTED;
	}
	plx_remap(t, bio, res.data);
	return DM_MAPIO_REMAPPED;
}

/* Every bio that went down the data path, dm's or our own, ends here. */
void plx_bio_finished(struct plx_target *t, struct bio *bio)
{
	plx_epoch_put(t, bio);
	plx_gc_bio_done(t, bio);
	if (t->cache)
		plx_cache_end_io(t->cache, bio);
}

int plx_end_io(struct dm_target *ti, struct bio *bio, blk_status_t *error)
{
	plx_bio_finished(ti->private, bio);
	return DM_ENDIO_DONE;
}

static void plx_handle_read(struct plx_target *t, struct bio *bio)
{
	struct plx_lookup res;

	if (plx_busy_park(t, bio, plx_bio_vblock(t, bio)))
		return;
	if (plx_lookup(t, t->root_node, plx_bio_vblock(t, bio), 1, true, &res)) {
		bio_io_error(bio);
		return;
	}
	plx_count_and_remap(t, bio, res.data);
}

static void plx_process(struct plx_target *t, struct bio *bio,
			struct bio_list *retry, struct bio_list *snap_parked)
{
	if (bio->bi_opf & REQ_PREFLUSH) {
		plx_flush_queue(t, bio);
		return;
	}
	if (!op_is_write(bio_op(bio))) {
		plx_handle_read(t, bio);
		return;
	}
	/* Writes wait while a snapshot drains the commits in flight. */
	if (READ_ONCE(t->snap)) {
		bio_list_add(snap_parked, bio);
		return;
	}
	if (bio_op(bio) == REQ_OP_DISCARD)
		plx_handle_discard(t, bio, retry);
	else
		plx_handle_write(t, bio, retry);
}

/* Bios that waited for space go round again once a grant has arrived. */
static bool plx_retry_no_space(struct plx_target *t, struct bio_list *bios)
{
	if (bio_list_empty(&t->no_space))
		return false;
	if (!plx_alloc_free_blocks(&t->alloc, PLX_EXT_DATA) &&
	    !plx_alloc_free_blocks(&t->alloc, PLX_EXT_METADATA))
		return false;
	bio_list_merge(bios, &t->no_space);
	bio_list_init(&t->no_space);
	return true;
}

void plx_worker(struct work_struct *ws)
{
	struct plx_target *t = container_of(ws, struct plx_target, worker);
	struct bio_list bios, data_done, retry, snap_parked;
	struct plx_pnode *p, *tmp;
	bool waited, batch_flushed;
	struct blk_plug plug;
	unsigned long since;
	LIST_HEAD(nodes);
	struct bio *bio;

	bio_list_init(&retry);
	bio_list_init(&snap_parked);
	spin_lock_irq(&t->lock);
	bios = t->deferred;
	bio_list_init(&t->deferred);
	data_done = t->data_done;
	bio_list_init(&t->data_done);
	list_splice_init(&t->nodes_done, &nodes);
	batch_flushed = t->batch_flushed;
	t->batch_flushed = false;
	spin_unlock_irq(&t->lock);

	if (batch_flushed)
		plx_commit_batch_flushed(t, t->batch_status, &retry);

	list_for_each_entry_safe(p, tmp, &nodes, done) {
		list_del(&p->done);
		plx_node_done(t, p, &retry);
	}
	while ((bio = bio_list_pop(&data_done))) {
		plx_busy_done(t, bio, &retry);
		plx_data_done(t, bio);
	}

	since = t->no_space_since;
	waited = plx_retry_no_space(t, &retry);
	bio_list_merge(&retry, &bios);
	/*
	 * A large write reaches the worker one block at a time, and its new
	 * blocks are mostly consecutive: plugged, they go down merged.
	 */
	blk_start_plug(&plug);
	while ((bio = bio_list_pop(&retry)))
		plx_process(t, bio, &retry, &snap_parked);
	/* Going round again does not restart the no-space timeout. */
	if (waited && !bio_list_empty(&t->no_space))
		t->no_space_since = since;

	plx_submit_queued(t);
	/* A flush that starts waiting here wants the batch below. */
	plx_flush_run(t);
	plx_commit_ready(t);
	blk_finish_plug(&plug);

	if (!bio_list_empty(&snap_parked)) {
		spin_lock_irq(&t->lock);
		bio_list_merge(&snap_parked, &t->deferred);
		t->deferred = snap_parked;
		spin_unlock_irq(&t->lock);
	}
	if (plx_snapshot_run(t))
		plx_wake_worker(t);
}

static void plx_end_no_space(struct plx_target *t, blk_status_t status)
{
	struct bio *bio;

	while ((bio = bio_list_pop(&t->no_space))) {
		bio->bi_status = status;
		bio_endio(bio);
	}
}

/*
 * Once a second: commit what is pending, and give up on bios that have
 * waited for space longer than the table allows.
 */
void plx_waker(struct work_struct *ws)
{
	struct plx_target *t = container_of(to_delayed_work(ws),
					     struct plx_target, waker);

	/* Acknowledged writes wait at most about a second for their commit. */
	plx_commit_soon(t);
	if (t->cache)
		plx_cache_tick(t->cache);
	if (!bio_list_empty(&t->no_space) && t->no_space_timeout &&
	    time_after(jiffies, t->no_space_since + t->no_space_timeout * HZ)) {
		DMERR_LIMIT("VDI %llu: no space for %u s, failing queued writes",
			    t->vdi_id, t->no_space_timeout);
		plx_end_no_space(t, BLK_STS_NOSPC);
	}
	queue_delayed_work(t->wq, &t->waker, HZ);
}

/*
 * Suspend waits for every bio, so from presuspend until resume no bio may
 * wait for space: a noflush suspend (a table reload) gets it back to
 * resubmit after the resume, as dm-thin does; any other suspend fails it.
 * The mode must last: dm resubmits requeued bios until it blocks I/O,
 * which it does only after presuspend.
 */
static blk_status_t plx_suspend_status(struct plx_target *t)
{
	return dm_noflush_suspending(t->ti) ? BLK_STS_DM_REQUEUE : BLK_STS_NOSPC;
}

void plx_end_suspended(struct plx_target *t, struct bio *bio)
{
	bio->bi_status = plx_suspend_status(t);
	bio_endio(bio);
}

void plx_release_no_space(struct work_struct *ws)
{
	struct plx_target *t = container_of(ws, struct plx_target,
					    release_no_space);

	plx_end_no_space(t, plx_suspend_status(t));
}
