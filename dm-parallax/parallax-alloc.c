// SPDX-License-Identifier: GPL-2.0
/*
 * Allocation.  A host may allocate only inside extents whose catalogue
 * entry names it as holder; the helper grants such extents to the target
 * with the add_extent message.  Each granted extent's bitmap is mirrored
 * in memory; blocks move from there into a small reserve whose bits are
 * written (and flushed) before any of its blocks is handed out.
 *
 * Fencing: each refill re-reads the extent's catalogue entry, and an
 * extent whose entry no longer names this host and the generation it was
 * granted with (because "parallax unlock" broke the lock) gives no more
 * blocks.  This costs one block read per PLX_RESERVE_BATCH allocations.
 *
 * Online GC (parallax-gc.c): during an epoch each grant also has a
 * "fresh" bitmap of the blocks that were in a reserve at the epoch's
 * begin or were put there since.  The collector cannot see links to
 * those, so gc_reclaim never frees them.
 */
#include <linux/bitmap.h>
#include <linux/device-mapper.h>
#include <linux/dm-bufio.h>
#include <linux/slab.h>

#include "parallax-alloc.h"

#define DM_MSG_PREFIX "parallax"

struct plx_grant {
	struct list_head list;
	struct list_head all;		/* in plx_all_grants */
	dev_t dev;
	u64 extent;
	enum plx_extent_type type;
	u64 generation;			/* of the grant, from the catalogue */
	bool fenced;			/* lock broken: allocate no more */
	unsigned long *map;		/* bit set = allocated */
	unsigned long *fresh;		/* GC epoch: reserved since its begin */
	bool gc_new;			/* granted during the GC epoch */
	u64 cursor;
	u64 free;
};

/*
 * Every extent granted to any table, so that two tables of one host (which
 * the catalogue cannot tell apart) never allocate from one extent.
 */
static LIST_HEAD(plx_all_grants);
static DEFINE_MUTEX(plx_all_grants_lock);

static bool plx_grant_register(struct plx_grant *g)
{
	struct plx_grant *o;

	mutex_lock(&plx_all_grants_lock);
	list_for_each_entry(o, &plx_all_grants, all) {
		if (o->dev == g->dev && o->extent == g->extent) {
			mutex_unlock(&plx_all_grants_lock);
			return false;
		}
	}
	list_add(&g->all, &plx_all_grants);
	mutex_unlock(&plx_all_grants_lock);
	return true;
}

static void plx_grant_unregister(struct plx_grant *g)
{
	mutex_lock(&plx_all_grants_lock);
	list_del(&g->all);
	mutex_unlock(&plx_all_grants_lock);
}

void plx_alloc_init(struct plx_alloc *a, struct plx_store *s)
{
	memset(a, 0, sizeof(*a));
	a->store = s;
	mutex_init(&a->lock);
	INIT_LIST_HEAD(&a->grants);
}

static void plx_grant_free(struct plx_grant *g)
{
	bitmap_free(g->fresh);
	bitmap_free(g->map);
	kfree(g);
}

void plx_alloc_destroy(struct plx_alloc *a)
{
	struct plx_grant *g, *tmp;

	list_for_each_entry_safe(g, tmp, &a->grants, list) {
		list_del(&g->list);
		plx_grant_unregister(g);
		plx_grant_free(g);
	}
	mutex_destroy(&a->lock);
}

static struct plx_grant *plx_find_grant(struct plx_alloc *a, u64 extent)
{
	struct plx_grant *g;

	list_for_each_entry(g, &a->grants, list)
		if (g->extent == extent)
			return g;
	return NULL;
}

/* Read the catalogue entry of @extent from disk, not from the cache. */
static int plx_read_extent_entry(struct plx_store *s, u64 extent,
				 struct plx_extent_entry *out)
{
	u64 index = extent / PLX_CATALOGUE_PER_BLOCK;
	u64 blocknr = s->geo.catalogue_start + index;
	const struct plx_catalogue_block *cb;
	struct dm_buffer *b;
	enum plx_err err;

	dm_bufio_forget(s->bufio, blocknr);
	cb = dm_bufio_read(s->bufio, blocknr, &b);
	if (IS_ERR(cb))
		return PTR_ERR(cb);
	err = plx_catalogue_check(&s->geo, cb, index);
	if (!err)
		*out = cb->entries[extent % PLX_CATALOGUE_PER_BLOCK];
	dm_bufio_release(b);
	dm_bufio_forget(s->bufio, blocknr);
	if (err) {
		DMERR("catalogue block %llu: %s", blocknr, plx_strerror(err));
		return -EUCLEAN;
	}
	return 0;
}

static int plx_load_bitmap(struct plx_store *s, struct plx_grant *g)
{
	u64 start = g->extent << s->geo.extent_shift;
	u64 i, nbits = s->geo.extent_blocks;

	for (i = 0; i < s->geo.bitmap_blocks; i++) {
		const struct plx_bitmap_block *bb;
		u64 first = i * PLX_BITS_PER_BITMAP;
		struct dm_buffer *b;
		enum plx_err err;
		u64 bit;

		dm_bufio_forget(s->bufio, start + i);
		bb = dm_bufio_read(s->bufio, start + i, &b);
		if (IS_ERR(bb))
			return PTR_ERR(bb);
		err = plx_block_verify(bb, PLX_MAGIC_BITMAP, start + i,
				       s->geo.uuid);
		if (err) {
			dm_bufio_release(b);
			DMERR("bitmap block %llu: %s", start + i,
			      plx_strerror(err));
			return -EUCLEAN;
		}
		for (bit = 0; bit < PLX_BITS_PER_BITMAP && first + bit < nbits; bit++)
			if (bb->bits[bit / 8] & (1U << (bit % 8)))
				__set_bit(first + bit, g->map);
		dm_bufio_release(b);
	}
	/* The bitmap's own blocks are never free, whatever the bits say. */
	bitmap_set(g->map, 0, s->geo.bitmap_blocks);
	g->free = nbits - bitmap_weight(g->map, nbits);
	g->cursor = s->geo.bitmap_blocks;
	return 0;
}

int plx_alloc_grant(struct plx_alloc *a, u64 extent, u64 generation,
		    char *result, unsigned int maxlen)
{
	struct plx_store *s = a->store;
	struct plx_extent_entry e;
	struct plx_grant *g;
	int r;

	if (extent < s->geo.system_extents || extent >= s->geo.nr_extents) {
		snprintf(result, maxlen, "extent %llu is out of range", extent);
		return -EINVAL;
	}
	mutex_lock(&a->lock);
	if (plx_find_grant(a, extent)) {
		snprintf(result, maxlen, "extent %llu is already granted", extent);
		r = -EEXIST;
		goto out;
	}
	r = plx_read_extent_entry(s, extent, &e);
	if (r) {
		snprintf(result, maxlen, "cannot read the catalogue entry of extent %llu",
			 extent);
		goto out;
	}
	if (le32_to_cpu(e.holder) != a->host_id) {
		snprintf(result, maxlen,
			 "extent %llu is held by host %u, not by this host (%u)",
			 extent, le32_to_cpu(e.holder), a->host_id);
		r = -EPERM;
		goto out;
	}
	if (generation != PLX_ANY_GENERATION &&
	    le64_to_cpu(e.generation) != generation) {
		snprintf(result, maxlen,
			 "extent %llu: grant generation %llu is stale (on disk: %llu)",
			 extent, generation, le64_to_cpu(e.generation));
		r = -ESTALE;
		goto out;
	}
	if (e.type != PLX_EXT_DATA && e.type != PLX_EXT_METADATA) {
		snprintf(result, maxlen,
			 "extent %llu is not typed data or metadata", extent);
		r = -EINVAL;
		goto out;
	}

	r = -ENOMEM;
	g = kzalloc(sizeof(*g), GFP_KERNEL);
	if (!g)
		goto out;
	g->map = bitmap_zalloc(s->geo.extent_blocks, GFP_KERNEL);
	if (!g->map) {
		kfree(g);
		goto out;
	}
	g->extent = extent;
	g->type = e.type;
	g->generation = le64_to_cpu(e.generation);
	g->dev = s->dev->bdev->bd_dev;
	/*
	 * The collector read the catalogue before this grant: its marks
	 * know nothing of what this table will allocate here.
	 */
	g->gc_new = a->gc_epoch != 0;
	if (!plx_grant_register(g)) {
		snprintf(result, maxlen,
			 "extent %llu is already granted to another table", extent);
		plx_grant_free(g);
		r = -EBUSY;
		goto out;
	}
	r = plx_load_bitmap(s, g);
	if (r) {
		snprintf(result, maxlen, "extent %llu has a corrupt bitmap", extent);
		plx_grant_unregister(g);
		plx_grant_free(g);
		goto out;
	}
	s->ext_type[extent] = e.type;
	list_add_tail(&g->list, &a->grants);
	a->nr_grants++;
	a->free[plx_alloc_slot(g->type)] += g->free;
out:
	mutex_unlock(&a->lock);
	return r;
}

/*
 * Stop allocating from @extent.  Reserved blocks from it stay marked in
 * its bitmap; the garbage collector reclaims them.
 */
int plx_alloc_release(struct plx_alloc *a, u64 extent, char *result,
		      unsigned int maxlen)
{
	struct plx_store *s = a->store;
	struct plx_reserve *res;
	struct plx_grant *g;
	unsigned int i, kept;

	mutex_lock(&a->lock);
	g = plx_find_grant(a, extent);
	if (!g) {
		mutex_unlock(&a->lock);
		snprintf(result, maxlen, "extent %llu is not granted", extent);
		return -ENOENT;
	}
	res = &a->reserve[plx_alloc_slot(g->type)];
	for (i = res->head, kept = 0; i < res->nr; i++)
		if (res->blocks[i] >> s->geo.extent_shift != extent)
			res->blocks[kept++] = res->blocks[i];
	a->free[plx_alloc_slot(g->type)] -= g->free +
					     (plx_reserve_count(res) - kept);
	res->head = 0;
	res->nr = kept;
	list_del(&g->list);
	a->nr_grants--;
	mutex_unlock(&a->lock);
	plx_grant_unregister(g);
	plx_grant_free(g);
	return 0;
}

/*
 * Mark block @off of @g allocated (or free) in memory and in its bitmap
 * block, through the cache: this table is the bitmap's only writer.
 */
static int plx_mark_block(struct plx_store *s, struct plx_grant *g, u64 off,
			  bool allocated)
{
	u64 blocknr = (g->extent << s->geo.extent_shift) + off;
	struct plx_bitmap_block *bb;
	struct dm_buffer *b;
	u64 bm_block;
	u32 bit;

	plx_bitmap_locate(&s->geo, blocknr, &bm_block, &bit);
	bb = dm_bufio_read(s->bufio, bm_block, &b);
	if (IS_ERR(bb))
		return PTR_ERR(bb);
	if (allocated) {
		bb->bits[bit / 8] |= 1U << (bit % 8);
		__set_bit(off, g->map);
		g->free--;
	} else {
		bb->bits[bit / 8] &= ~(1U << (bit % 8));
		__clear_bit(off, g->map);
		g->free++;
	}
	dm_bufio_mark_buffer_dirty(b);
	dm_bufio_release(b);
	return 0;
}

/* Is @g still ours on disk?  If not, stop allocating from it. */
static int plx_grant_recheck(struct plx_alloc *a, struct plx_grant *g)
{
	struct plx_extent_entry e;
	int r;

	r = plx_read_extent_entry(a->store, g->extent, &e);
	if (r)
		return r;
	if (le32_to_cpu(e.holder) == a->host_id &&
	    le64_to_cpu(e.generation) == g->generation)
		return 0;
	DMERR("extent %llu fenced (host %u gen %llu, granted gen %llu): not allocating from it",
	      g->extent, le32_to_cpu(e.holder), le64_to_cpu(e.generation),
	      g->generation);
	a->free[plx_alloc_slot(g->type)] -= g->free;
	g->free = 0;
	g->fenced = true;
	return 0;
}

static int plx_refill(struct plx_alloc *a, enum plx_extent_type type)
{
	struct plx_reserve *res = &a->reserve[plx_alloc_slot(type)];
	struct plx_store *s = a->store;
	struct plx_grant *g;
	int r;

	plx_reserve_compact(res);
	list_for_each_entry(g, &a->grants, list) {
		if (g->type != type || !g->free)
			continue;
		r = plx_grant_recheck(a, g);
		if (r)
			return r;
		while (g->free && res->nr < PLX_RESERVE_BATCH) {
			u64 off = find_next_zero_bit(g->map, s->geo.extent_blocks,
						     g->cursor);

			if (off >= s->geo.extent_blocks)
				off = find_next_zero_bit(g->map,
							 s->geo.extent_blocks,
							 s->geo.bitmap_blocks);
			if (WARN_ON_ONCE(off >= s->geo.extent_blocks)) {
				g->free = 0;
				break;
			}
			r = plx_mark_block(s, g, off, true);
			if (r)
				return r;
			if (g->fresh)
				__set_bit(off, g->fresh);
			g->cursor = off + 1;
			res->blocks[res->nr++] = (g->extent << s->geo.extent_shift) + off;
		}
	}
	return 0;
}

/*
 * Make sure the reserves hold @data data blocks and @meta metadata
 * blocks.  Returns -ENOSPC when the granted extents cannot supply them.
 */
int plx_alloc_ensure(struct plx_alloc *a, unsigned int data,
		     unsigned int meta)
{
	struct plx_reserve *rd = &a->reserve[0], *rm = &a->reserve[1];
	bool refilled = false;
	int r = 0;

	mutex_lock(&a->lock);
	if (plx_reserve_count(rd) < data) {
		r = plx_refill(a, PLX_EXT_DATA);
		refilled = true;
	}
	if (!r && plx_reserve_count(rm) < meta) {
		r = plx_refill(a, PLX_EXT_METADATA);
		refilled = true;
	}
	if (refilled) {
		int w = dm_bufio_write_dirty_buffers(a->store->bufio);

		r = r ?: w;
	}
	if (!r && (plx_reserve_count(rd) < data || plx_reserve_count(rm) < meta))
		r = -ENOSPC;
	mutex_unlock(&a->lock);
	return r;
}

u64 plx_alloc_take(struct plx_alloc *a, enum plx_extent_type type)
{
	unsigned int slot = plx_alloc_slot(type);
	struct plx_reserve *res = &a->reserve[slot];
	u64 blocknr;

	mutex_lock(&a->lock);
	if (WARN_ON_ONCE(!plx_reserve_count(res))) {
		mutex_unlock(&a->lock);
		return 0;
	}
	blocknr = plx_reserve_pop(res);
	a->free[slot]--;
	a->used[slot]++;
	mutex_unlock(&a->lock);
	return blocknr;
}

/* The "extents" message: E:d:FREE or E:m:FREE per granted extent. */
int plx_alloc_emit_extents(struct plx_alloc *a, char *result,
			   unsigned int maxlen)
{
	unsigned int sz = 0;
	struct plx_grant *g;

	mutex_lock(&a->lock);
	list_for_each_entry(g, &a->grants, list)
		DMEMIT("%s%llu:%c:%llu%s", sz ? " " : "", g->extent,
		       g->type == PLX_EXT_DATA ? 'd' : 'm', g->free,
		       g->fenced ? ":fenced" : "");
	mutex_unlock(&a->lock);
	return 1;
}

u64 plx_alloc_free_blocks(struct plx_alloc *a, enum plx_extent_type type)
{
	u64 n;

	mutex_lock(&a->lock);
	n = a->free[plx_alloc_slot(type)];
	mutex_unlock(&a->lock);
	return n;
}

/* Mark every block in @res fresh in its grant's bitmap.  Under a->lock. */
static void plx_gc_mark_reserve(struct plx_alloc *a, struct plx_reserve *res)
{
	const struct plx_geometry *geo = &a->store->geo;
	struct plx_grant *g = NULL;
	unsigned int i;

	for (i = res->head; i < res->nr; i++) {
		u64 extent = res->blocks[i] >> geo->extent_shift;

		if (!g || g->extent != extent)
			g = plx_find_grant(a, extent);
		/* release_extent takes an extent's blocks out of the reserve. */
		if (WARN_ON_ONCE(!g || !g->fresh))
			continue;
		__set_bit(res->blocks[i] & (geo->extent_blocks - 1), g->fresh);
	}
}

static void plx_gc_free_fresh(unsigned long **fresh, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		bitmap_free(fresh[i]);
	kfree(fresh);
}

/*
 * Start GC epoch @epoch, replacing any other.  The bitmaps are allocated
 * before a->lock is taken, so that memory reclaim never waits for the
 * worker while the worker waits for the lock; the caller holds the
 * target's message_lock, which alone adds and removes grants, so the list
 * cannot change in between.  On failure the previous epoch, if any, is
 * left as it was.
 */
int plx_alloc_gc_start(struct plx_alloc *a, u64 epoch)
{
	u64 nbits = a->store->geo.extent_blocks;
	unsigned long **fresh;
	struct plx_grant *g;
	unsigned int i, n;

	mutex_lock(&a->lock);
	n = a->nr_grants;
	mutex_unlock(&a->lock);
	fresh = kcalloc(max(n, 1U), sizeof(*fresh), GFP_KERNEL);
	if (!fresh)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		fresh[i] = bitmap_zalloc(nbits, GFP_KERNEL);
		if (!fresh[i]) {
			plx_gc_free_fresh(fresh, i);
			return -ENOMEM;
		}
	}
	mutex_lock(&a->lock);
	if (WARN_ON_ONCE(n != a->nr_grants)) {
		mutex_unlock(&a->lock);
		plx_gc_free_fresh(fresh, n);
		return -EAGAIN;
	}
	i = 0;
	list_for_each_entry(g, &a->grants, list) {
		/* The old epoch's bitmap goes back to be freed below. */
		swap(g->fresh, fresh[i]);
		g->gc_new = false;
		i++;
	}
	plx_gc_mark_reserve(a, &a->reserve[0]);
	plx_gc_mark_reserve(a, &a->reserve[1]);
	a->gc_epoch = epoch;
	mutex_unlock(&a->lock);
	plx_gc_free_fresh(fresh, n);
	return 0;
}

/* End GC epoch @epoch (0: whichever is active); -ESTALE if not active. */
int plx_alloc_gc_stop(struct plx_alloc *a, u64 epoch)
{
	struct plx_grant *g;

	mutex_lock(&a->lock);
	if (!a->gc_epoch || (epoch && a->gc_epoch != epoch)) {
		mutex_unlock(&a->lock);
		return -ESTALE;
	}
	list_for_each_entry(g, &a->grants, list) {
		bitmap_free(g->fresh);
		g->fresh = NULL;
		g->gc_new = false;
	}
	a->gc_epoch = 0;
	mutex_unlock(&a->lock);
	return 0;
}

/*
 * Free the blocks of @extent that the collector found unreachable: bit j
 * of @bits[k] is block @offset + 8k + j.  Only a block this table has
 * allocated, that is not fresh and not one of the bitmap's own blocks is
 * freed; anything else the collector sends is ignored, which is what
 * makes a stale or overeager sweep harmless.  The bitmap blocks are
 * written before the answer, so that the count is durable.
 */
int plx_alloc_gc_reclaim(struct plx_alloc *a, u64 epoch, u64 extent,
			 u64 generation, u64 offset, const u8 *bits,
			 unsigned int nbytes, u64 *freed, char *result,
			 unsigned int maxlen)
{
	struct plx_store *s = a->store;
	u64 nbits = s->geo.extent_blocks;
	struct plx_grant *g;
	unsigned int k, j;
	u64 n = 0;
	int r, w;

	if (offset % 8 || offset >= nbits || nbytes > (nbits - offset) / 8) {
		snprintf(result, maxlen,
			 "blocks %llu..%llu are not within an extent of %llu blocks, from a multiple of 8",
			 offset, offset + 8ULL * nbytes - 1, nbits);
		return -EINVAL;
	}
	mutex_lock(&a->lock);
	if (!a->gc_epoch || a->gc_epoch != epoch) {
		snprintf(result, maxlen, "GC epoch %llu is not the active one (%llu)",
			 epoch, a->gc_epoch);
		r = -ESTALE;
		goto out;
	}
	g = plx_find_grant(a, extent);
	if (!g) {
		snprintf(result, maxlen, "extent %llu is not granted", extent);
		r = -ENOENT;
		goto out;
	}
	if (g->generation != generation) {
		snprintf(result, maxlen,
			 "extent %llu: generation %llu is not the grant's (%llu)",
			 extent, generation, g->generation);
		r = -ESTALE;
		goto out;
	}
	if (g->gc_new || !g->fresh) {
		snprintf(result, maxlen,
			 "extent %llu was granted during GC epoch %llu", extent,
			 epoch);
		r = -ESTALE;
		goto out;
	}
	/* The bitmap must still be ours to write: fenced extents are not. */
	r = g->fenced ? 0 : plx_grant_recheck(a, g);
	if (r) {
		snprintf(result, maxlen,
			 "cannot read the catalogue entry of extent %llu", extent);
		goto out;
	}
	if (g->fenced) {
		snprintf(result, maxlen, "extent %llu is fenced", extent);
		r = -ESTALE;
		goto out;
	}
	for (k = 0; k < nbytes && !r; k++) {
		for (j = 0; j < 8 && bits[k]; j++) {
			u64 off = offset + 8 * k + j;

			if (!(bits[k] & BIT(j)) || off < s->geo.bitmap_blocks ||
			    !test_bit(off, g->map) || test_bit(off, g->fresh))
				continue;
			r = plx_mark_block(s, g, off, false);
			if (r)
				break;
			n++;
		}
	}
	a->free[plx_alloc_slot(g->type)] += n;
	w = dm_bufio_write_dirty_buffers(s->bufio);
	r = r ?: w;
	if (r)
		snprintf(result, maxlen, "extent %llu: bitmap update failed",
			 extent);
	*freed = n;
out:
	mutex_unlock(&a->lock);
	return r;
}
