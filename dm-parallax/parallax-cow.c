// SPDX-License-Identifier: GPL-2.0
/*
 * Writes that reach the worker: those that need a new block (under a
 * read-only or sparse link), those whose path holds a pending node, and
 * discards.
 *
 * The walk finds the commit node: the deepest node on the path that is
 * linked on disk and gains a new link.  Below it, read-only nodes are
 * copied (their links all becoming read-only) and sparse links get fresh
 * nodes; all of them are unlinked pending nodes of that commit node.  The
 * data goes to a new block; a bio that does not cover the whole block is
 * merged with the old contents (or zeros) in a bounce page first.
 */
#include <linux/dm-bufio.h>
#include <linux/slab.h>

#include "parallax-target.h"

#define DM_MSG_PREFIX "parallax"

struct plx_walk {
	u64 blk[PLX_MAX_HEIGHT];	/* node at each level */
	__le64 *node[PLX_MAX_HEIGHT];
	struct dm_buffer *buf[PLX_MAX_HEIGHT];	/* held; none for the root */
	struct plx_pnode *commit;	/* of the first unlinked node passed */
	int alloc_level;		/* level of the first RO/sparse link */
	u64 data;			/* writable data block, if no allocation */
};

static void plx_walk_release(struct plx_target *t, struct plx_walk *w)
{
	int l;

	for (l = 0; l < t->height; l++)
		if (w->buf[l])
			dm_bufio_release(w->buf[l]);
}

static int plx_walk_for_write(struct plx_target *t, u64 vblock,
			      struct plx_walk *w)
{
	u64 blk = t->root;
	__le64 *node = (__le64 *)t->root_node;
	int l;

	memset(w, 0, sizeof(*w));
	w->alloc_level = -1;
	for (l = t->height - 1; l >= 0; l--) {
		struct plx_pnode *p = xa_load(&t->pending, blk);
		u64 ptr = le64_to_cpu(node[plx_radix_index(vblock, l)]);
		enum plx_err err;

		w->blk[l] = blk;
		w->node[l] = node;
		if (p && p->commit && !w->commit)
			w->commit = p->commit;
		if (!ptr) {
			w->alloc_level = l;
			return 0;
		}
		/*
		 * A read-only link is checked too: the block it names is read
		 * to be copied, as a node or as the old data of a partial write.
		 */
		err = plx_check_addr(&t->store.geo, plx_ptr_addr(ptr),
				     l ? PLX_EXT_METADATA : PLX_EXT_DATA);
		if (err) {
			DMERR_LIMIT("VDI %llu: node %llu: pointer %llx: %s",
				    t->vdi_id, blk, ptr, plx_strerror(err));
			plx_fail(t, "corrupt_radix_node");
			return -EIO;
		}
		if (plx_ptr_is_ro(ptr)) {
			w->alloc_level = l;
			return 0;
		}
		if (!l) {
			w->data = ptr;
			return 0;
		}
		blk = ptr;
		node = dm_bufio_read(t->store.bufio, blk, &w->buf[l - 1]);
		if (IS_ERR(node)) {
			w->buf[l - 1] = NULL;
			return PTR_ERR(node);
		}
	}
	return -EIO;
}

/* Tell the node's pending state, if any, that it changed. */
static void plx_node_changed(struct plx_target *t, u64 blk)
{
	struct plx_pnode *p = xa_load(&t->pending, blk);

	if (p)
		plx_pnode_modified(t, p);
}

/*
 * Replace the read-only or sparse link at @level with a new node: a copy
 * of the shared node with every link read-only, or zeros.
 */
static int plx_cow_node(struct plx_target *t, struct plx_walk *w, int level,
			unsigned int idx, struct plx_pnode *c)
{
	struct dm_bufio_client *bufio = t->store.bufio;
	u64 old = le64_to_cpu(w->node[level][idx]);
	u64 nb = plx_alloc_take(&t->alloc, PLX_EXT_METADATA);
	struct dm_buffer *nbuf;
	struct plx_pnode *u;
	__le64 *nn;

	nn = dm_bufio_new(bufio, nb, &nbuf);
	if (IS_ERR(nn))
		return PTR_ERR(nn);
	if (old) {
		struct dm_buffer *sbuf;
		const __le64 *src;

		src = dm_bufio_read(bufio, plx_ptr_addr(old), &sbuf);
		if (IS_ERR(src)) {
			dm_bufio_release(nbuf);
			return PTR_ERR(src);
		}
		plx_node_copy_ro((struct plx_radix_node *)nn,
				 (const struct plx_radix_node *)src);
		dm_bufio_release(sbuf);
	} else {
		memset(nn, 0, PLX_BLOCK_SIZE);
	}
	u = plx_pnode_get(t, nb, c);
	if (IS_ERR(u)) {
		dm_bufio_release(nbuf);
		return PTR_ERR(u);
	}
	WRITE_ONCE(w->node[level][idx], cpu_to_le64(nb));
	plx_node_changed(t, w->blk[level]);
	plx_pnode_modified(t, u);
	w->node[level - 1] = u->node;
	w->blk[level - 1] = nb;
	w->buf[level - 1] = nbuf;
	return 0;
}

static int plx_read_block_sync(struct plx_target *t, u64 blocknr,
			       struct page *page)
{
	struct bio *bio;
	int r;

	bio = bio_alloc(t->store.dev->bdev, 1, REQ_OP_READ, GFP_NOIO);
	bio->bi_iter.bi_sector = blocknr << (PLX_BLOCK_SHIFT - SECTOR_SHIFT);
	__bio_add_page(bio, page, PLX_BLOCK_SIZE, 0);
	r = submit_bio_wait(bio);
	bio_put(bio);
	return r;
}

static void plx_bounce_endio(struct bio *bounce)
{
	struct bio *orig = bounce->bi_private;
	struct plx_bio *pb = plx_pb(orig);
	struct plx_target *t = pb->t;
	unsigned long flags;

	if (bounce->bi_status)
		orig->bi_status = bounce->bi_status;
	__free_page(bio_first_page_all(bounce));
	bio_put(bounce);
	spin_lock_irqsave(&t->lock, flags);
	bio_list_add(&t->data_done, orig);
	spin_unlock_irqrestore(&t->lock, flags);
	queue_work(t->wq, &t->worker);
}

static bool plx_bio_covers_block(struct plx_target *t, struct bio *bio)
{
	return !(dm_target_offset(t->ti, bio->bi_iter.bi_sector) &
		 (PLX_SECTORS_PER_BLOCK - 1)) &&
	       bio->bi_iter.bi_size == PLX_BLOCK_SIZE;
}

/*
 * Write a bio that only partly covers new block @data: the rest comes
 * from @old (the block being copied) or is zero.
 */
static int plx_write_partial(struct plx_target *t, struct bio *bio,
			     u64 old, u64 data)
{
	unsigned int offset = (dm_target_offset(t->ti, bio->bi_iter.bi_sector) &
			       (PLX_SECTORS_PER_BLOCK - 1)) << SECTOR_SHIFT;
	struct bvec_iter iter;
	struct bio_vec bv;
	struct page *page;
	struct bio *bounce;
	int r;

	page = alloc_page(GFP_NOIO);
	if (!page)
		return -ENOMEM;
	if (old) {
		r = plx_read_block_sync(t, old, page);
		if (r) {
			__free_page(page);
			return r;
		}
	} else {
		clear_highpage(page);
	}
	bio_for_each_segment(bv, bio, iter) {
		memcpy_from_bvec(page_address(page) + offset, &bv);
		offset += bv.bv_len;
	}
	bounce = bio_alloc(t->store.dev->bdev, 1,
			   REQ_OP_WRITE | (bio->bi_opf & REQ_FUA), GFP_NOIO);
	bounce->bi_iter.bi_sector = data << (PLX_BLOCK_SHIFT - SECTOR_SHIFT);
	__bio_add_page(bounce, page, PLX_BLOCK_SIZE, 0);
	bounce->bi_end_io = plx_bounce_endio;
	bounce->bi_private = bio;
	submit_bio(bounce);
	return 0;
}

static void plx_remap_hooked(struct plx_target *t, struct bio *bio, u64 data)
{
	struct plx_bio *pb = plx_pb(bio);
	sector_t offset = dm_target_offset(t->ti, bio->bi_iter.bi_sector);

	pb->saved_end_io = bio->bi_end_io;
	bio->bi_end_io = plx_data_endio;
	bio_set_dev(bio, t->store.dev->bdev);
	bio->bi_iter.bi_sector = (data << (PLX_BLOCK_SHIFT - SECTOR_SHIFT)) |
				 (offset & (PLX_SECTORS_PER_BLOCK - 1));
	plx_submit_remapped(bio);
}

/* Out of space: queue for a grant, or fail, as the table says. */
static void plx_no_space(struct plx_target *t, struct bio *bio)
{
	if (!t->low_water_signalled) {
		t->low_water_signalled = true;
		dm_table_event(t->ti->table);
	}
	if (t->error_if_no_space) {
		bio->bi_status = BLK_STS_NOSPC;
		bio_endio(bio);
		return;
	}
	if (READ_ONCE(t->suspending)) {
		plx_end_suspended(t, bio);
		return;
	}
	if (bio_list_empty(&t->no_space))
		t->no_space_since = jiffies;
	bio_list_add(&t->no_space, bio);
}

static void plx_check_low_water(struct plx_target *t)
{
	u64 free = plx_alloc_free_blocks(&t->alloc, PLX_EXT_DATA) +
		   plx_alloc_free_blocks(&t->alloc, PLX_EXT_METADATA);

	if (free < t->low_water && !t->low_water_signalled) {
		t->low_water_signalled = true;
		dm_table_event(t->ti->table);
	}
}

/* Mark @vblock busy until its new data block is written. */
static int plx_busy_start(struct plx_target *t, struct bio *bio, u64 vblock)
{
	struct plx_bio *pb = plx_pb(bio);
	struct plx_busy *busy = kzalloc(sizeof(*busy), GFP_NOIO);
	int r;

	if (!busy)
		return -ENOMEM;
	bio_list_init(&busy->waiters);
	r = xa_err(xa_store(&t->busy, vblock, busy, GFP_NOIO));
	if (r) {
		kfree(busy);
		return r;
	}
	pb->busy = true;
	pb->busy_vblock = vblock;
	/* map() must see the busy entry before it can see the new link. */
	smp_wmb();
	return 0;
}

void plx_busy_done(struct plx_target *t, struct bio *bio,
		   struct bio_list *retry)
{
	struct plx_bio *pb = plx_pb(bio);
	struct plx_busy *busy;

	if (!pb->busy)
		return;
	pb->busy = false;
	busy = xa_erase(&t->busy, pb->busy_vblock);
	if (busy) {
		bio_list_merge(retry, &busy->waiters);
		kfree(busy);
	}
}

/* Park @bio if its block has a new data block being written. */
bool plx_busy_park(struct plx_target *t, struct bio *bio, u64 vblock)
{
	struct plx_busy *busy = xa_load(&t->busy, vblock);

	if (!busy)
		return false;
	bio_list_add(&busy->waiters, bio);
	return true;
}

static struct plx_pnode *plx_find_commit(struct plx_target *t,
					 struct plx_walk *w)
{
	struct plx_pnode *p;

	if (w->commit)
		return w->commit;
	if (w->alloc_level >= 0)
		return plx_pnode_get(t, w->blk[w->alloc_level], NULL);
	p = xa_load(&t->pending, w->blk[0]);
	return p;
}

static int plx_do_write(struct plx_target *t, struct bio *bio, u64 vblock,
			struct plx_walk *w, struct bio_list *retry)
{
	struct plx_bio *pb = plx_pb(bio);
	unsigned int idx0 = plx_radix_index(vblock, 0);
	struct plx_pnode *c;
	u64 old, data;
	int l, r;

	if (w->alloc_level >= 0) {
		r = plx_alloc_ensure(&t->alloc, 1, w->alloc_level);
		if (r)
			return r;
	}
	c = plx_find_commit(t, w);
	if (IS_ERR(c))
		return PTR_ERR(c);
	if (!c) {
		/* Every link from the root is durable and writable. */
		plx_count_and_remap(t, bio, w->data);
		return 0;
	}
	/*
	 * While @c is being written its next write can gather links, since
	 * it is written from a copy; but an unlinked node on the path may be
	 * in the write in flight, and changing it then would let the commit
	 * free it while it still holds a link that is not durable.  A node
	 * a batch wants takes nothing new until it is written.
	 */
	if ((c->writing && w->commit) || c->wanted) {
		bio_list_add(&c->parked, bio);
		return 0;
	}

	pb->commit = c;
	c->nr_waiting++;
	plx_commit_add_component(c);
	if (bio->bi_opf & REQ_FUA)
		c->fua = true;

	if (w->alloc_level < 0) {
		/* In place, but the links above are not durable yet. */
		plx_remap_hooked(t, bio, w->data);
		return 0;
	}

	/* From here the bio holds blocks the collector cannot see yet. */
	plx_gc_count_bio(t, bio);
	for (l = w->alloc_level; l > 0; l--) {
		r = plx_cow_node(t, w, l, plx_radix_index(vblock, l), c);
		if (r)
			goto fail;
	}
	old = le64_to_cpu(w->node[0][idx0]);
	data = plx_alloc_take(&t->alloc, PLX_EXT_DATA);
	r = plx_busy_start(t, bio, vblock);
	if (r)
		goto fail;
	WRITE_ONCE(w->node[0][idx0], cpu_to_le64(data));
	plx_node_changed(t, w->blk[0]);
	plx_check_low_water(t);

	if (plx_bio_covers_block(t, bio)) {
		plx_remap_hooked(t, bio, data);
		return 0;
	}
	r = plx_write_partial(t, bio, plx_ptr_addr(old), data);
	if (r) {
		/* Nobody may read the block that was never written. */
		WRITE_ONCE(w->node[0][idx0], cpu_to_le64(old));
		goto fail;
	}
	return 0;

fail:
	/*
	 * The tree in memory may now link blocks that will never be
	 * written; nothing more may be committed.
	 */
	plx_fail(t, "allocation_failed");
	c->nr_waiting--;
	c->outstanding--;
	plx_busy_done(t, bio, retry);
	return r;
}

void plx_handle_write(struct plx_target *t, struct bio *bio,
		      struct bio_list *retry)
{
	u64 vblock = plx_bio_vblock(t, bio);
	struct plx_walk w;
	int r;

	if (READ_ONCE(t->mode) != PLX_MODE_OK) {
		bio_io_error(bio);
		return;
	}
	if (plx_busy_park(t, bio, vblock))
		return;
	r = plx_walk_for_write(t, vblock, &w);
	if (!r)
		r = plx_do_write(t, bio, vblock, &w, retry);
	plx_walk_release(t, &w);
	if (r == -ENOSPC)
		plx_no_space(t, bio);
	else if (r)
		bio_io_error(bio);
}

/*
 * Drop the mapping of a whole block under writable links, so that it
 * reads as zeros; the collector frees the block.  The cleared link needs
 * nothing else on disk first, so the node only waits its turn to be
 * written.  Partial blocks, and blocks shared with a snapshot, are left
 * alone: discard is advisory.
 */
void plx_handle_discard(struct plx_target *t, struct bio *bio,
			struct bio_list *retry)
{
	struct plx_bio *pb = plx_pb(bio);
	u64 vblock = plx_bio_vblock(t, bio);
	struct plx_pnode *c;
	struct plx_walk w;
	int r;

	if (READ_ONCE(t->mode) != PLX_MODE_OK) {
		bio_io_error(bio);
		return;
	}
	if (!plx_bio_covers_block(t, bio)) {
		bio_endio(bio);
		return;
	}
	if (plx_busy_park(t, bio, vblock))
		return;
	r = plx_walk_for_write(t, vblock, &w);
	if (r || w.alloc_level >= 0) {
		plx_walk_release(t, &w);
		if (r)
			bio_io_error(bio);
		else
			bio_endio(bio);
		return;
	}
	c = w.commit ?: plx_pnode_get(t, w.blk[0], NULL);
	if (IS_ERR(c)) {
		plx_walk_release(t, &w);
		bio_io_error(bio);
		return;
	}
	if (c->writing || c->wanted) {
		bio_list_add(&c->parked, bio);
		plx_walk_release(t, &w);
		return;
	}
	WRITE_ONCE(w.node[0][plx_radix_index(vblock, 0)], 0);
	plx_node_changed(t, w.blk[0]);
	pb->commit = c;
	c->nr_waiting++;
	bio_list_add(&c->waiting, bio);
	plx_walk_release(t, &w);
}
