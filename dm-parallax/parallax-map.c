// SPDX-License-Identifier: GPL-2.0
/*
 * The data path: map a bio to the data block its virtual block resolves to.
 *
 * map() walks the radix tree only through nodes already in the dm-bufio
 * cache (dm_bufio_get never sleeps and is allowed in map context).  A walk
 * that misses is handed to the worker, which may read nodes from disk.
 * Data bios are remapped, never copied; sparse blocks read as zeros.
 */
#include <linux/dm-bufio.h>

#include "parallax-target.h"

#define DM_MSG_PREFIX "parallax"

struct plx_lookup {
	u64 data;			/* data block; 0 = sparse */
	bool writable;			/* every link from the root is writable */
};

void plx_fail(struct plx_target *t, const char *reason)
{
	if (t->mode == PLX_MODE_FAILED)
		return;
	DMERR("VDI %llu: failing: %s", t->vdi_id, reason);
	t->fail_reason = reason;
	WRITE_ONCE(t->mode, PLX_MODE_FAILED);
	dm_table_event(t->ti->table);
}

/*
 * Walk from the root to the data block of @vblock.  Returns 0, -EWOULDBLOCK
 * when a node is not cached and @may_block is false, or -EIO.  Every
 * pointer is checked before it is followed: a corrupt node must never send
 * I/O outside the extents of the right type.
 */
static int plx_lookup(struct plx_target *t, u64 vblock, bool may_block,
		      struct plx_lookup *res)
{
	struct dm_bufio_client *bufio = t->store.bufio;
	const __le64 *node = t->root_node;
	struct dm_buffer *b = NULL;
	bool writable = true;
	int level;

	for (level = t->height - 1; level >= 0; level--) {
		u64 ptr = le64_to_cpu(READ_ONCE(node[plx_radix_index(vblock, level)]));
		u64 addr = plx_ptr_addr(ptr);
		enum plx_err err;

		if (b)
			dm_bufio_release(b);
		b = NULL;
		if (!ptr) {
			res->data = 0;
			res->writable = false;
			return 0;
		}
		writable &= !plx_ptr_is_ro(ptr);
		err = plx_check_addr(&t->store.geo, addr,
				     level ? PLX_EXT_METADATA : PLX_EXT_DATA);
		if (err) {
			DMERR_LIMIT("VDI %llu: block %llu level %d: pointer %llx: %s",
				    t->vdi_id, vblock, level, ptr,
				    plx_strerror(err));
			plx_fail(t, "corrupt radix node");
			return -EIO;
		}
		if (!level) {
			res->data = addr;
			res->writable = writable;
			return 0;
		}
		if (may_block)
			node = dm_bufio_read(bufio, addr, &b);
		else
			node = dm_bufio_get(bufio, addr, &b);
		if (!node)
			return -EWOULDBLOCK;
		if (IS_ERR(node)) {
			DMERR_LIMIT("VDI %llu: cannot read radix node %llu: %ld",
				    t->vdi_id, addr, PTR_ERR(node));
			return -EIO;
		}
	}
	return -EIO;	/* height 0 is rejected at table load */
}

static void plx_remap(struct plx_target *t, struct bio *bio, u64 data)
{
	sector_t offset = dm_target_offset(t->ti, bio->bi_iter.bi_sector);

	bio_set_dev(bio, t->store.dev->bdev);
	bio->bi_iter.bi_sector = (data << (PLX_BLOCK_SHIFT - SECTOR_SHIFT)) |
				 (offset & (PLX_SECTORS_PER_BLOCK - 1));
}

static u64 plx_bio_vblock(struct plx_target *t, struct bio *bio)
{
	return dm_target_offset(t->ti, bio->bi_iter.bi_sector) >>
	       (PLX_BLOCK_SHIFT - SECTOR_SHIFT);
}

static void plx_defer(struct plx_target *t, struct bio *bio)
{
	spin_lock_irq(&t->lock);
	bio_list_add(&t->deferred, bio);
	spin_unlock_irq(&t->lock);
	queue_work(t->wq, &t->worker);
}

int plx_map(struct dm_target *ti, struct bio *bio)
{
	struct plx_target *t = ti->private;
	struct plx_lookup res;
	int r;

	if (bio->bi_opf & REQ_PREFLUSH) {
		/* dm splits flushes off; an empty flush goes to the store. */
		bio_set_dev(bio, t->store.dev->bdev);
		return DM_MAPIO_REMAPPED;
	}
	if (READ_ONCE(t->mode) == PLX_MODE_FAILED || op_is_write(bio_op(bio)))
		return DM_MAPIO_KILL;

	r = plx_lookup(t, plx_bio_vblock(t, bio), false, &res);
	if (r == -EWOULDBLOCK) {
		atomic64_inc(&t->cache_misses);
		plx_defer(t, bio);
		return DM_MAPIO_SUBMITTED;
	}
	if (r)
		return DM_MAPIO_KILL;
	atomic64_inc(&t->cache_hits);
	if (!res.data) {
		zero_fill_bio(bio);
		bio_endio(bio);
		return DM_MAPIO_SUBMITTED;
	}
	plx_remap(t, bio, res.data);
	return DM_MAPIO_REMAPPED;
}

static void plx_process_deferred(struct plx_target *t, struct bio *bio)
{
	struct plx_lookup res;

	if (plx_lookup(t, plx_bio_vblock(t, bio), true, &res)) {
		bio_io_error(bio);
		return;
	}
	if (!res.data) {
		zero_fill_bio(bio);
		bio_endio(bio);
		return;
	}
	plx_remap(t, bio, res.data);
	dm_submit_bio_remap(bio, NULL);
}

void plx_worker(struct work_struct *ws)
{
	struct plx_target *t = container_of(ws, struct plx_target, worker);
	struct bio_list bios;
	struct bio *bio;

	spin_lock_irq(&t->lock);
	bios = t->deferred;
	bio_list_init(&t->deferred);
	spin_unlock_irq(&t->lock);

	while ((bio = bio_list_pop(&bios)))
		plx_process_deferred(t, bio);
}
