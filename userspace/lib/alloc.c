// SPDX-License-Identifier: GPL-2.0
/*
 * Block allocation for the offline tool, which acts as host id 0: it only
 * allocates from extents no host holds, typing a free extent when the
 * extents of the wanted type are full.  Changes stay in memory until
 * plx_sync() writes the bitmap and catalogue blocks.
 *
 * In cluster mode (s->shared) the tool allocates like a host: only from
 * extents the lock manager granted to s->alloc_holder, which are already
 * typed, and it leaves the catalogue to the lock manager.
 */
#include <stdlib.h>

#include "libparallax.h"

static struct plx_extent_entry *plx_cat_entry(struct plx_store *s, u64 ext)
{
	return &s->cat[ext / PLX_CATALOGUE_PER_BLOCK]
		.entries[ext % PLX_CATALOGUE_PER_BLOCK];
}

struct plx_extent_bm *plx_bitmap_load(struct plx_store *s, u64 ext)
{
	struct plx_extent_bm *bm;
	u64 base, i;

	if (ext < s->geo.system_extents || ext >= s->geo.nr_extents) {
		plx_seterr(PLX_EK_STORE, "extent %llu has no bitmap",
			   (unsigned long long)ext);
		return NULL;
	}
	bm = &s->bm[ext];
	if (bm->blk)
		goto done;
	bm->blk = malloc(s->geo.bitmap_blocks * PLX_BLOCK_SIZE);
	bm->dirty = calloc(s->geo.bitmap_blocks, 1);
	if (!bm->blk || !bm->dirty) {
		free(bm->blk);
		free(bm->dirty);
		bm->blk = NULL;
		bm->dirty = NULL;
		plx_seterr(PLX_EK_STORE, "out of memory");
		return NULL;
	}
	base = ext << s->geo.extent_shift;
	bm->hint = s->geo.bitmap_blocks;
	for (i = 0; i < s->geo.bitmap_blocks; i++) {
		if (plx_read_block(s, base + i, &bm->blk[i])) {
			bm->err = PLX_E_RANGE;
			bm->err_block = base + i;
			continue;
		}
		if (!bm->err) {
			bm->err = plx_block_verify(&bm->blk[i], PLX_MAGIC_BITMAP,
						   base + i, s->geo.uuid);
			bm->err_block = base + i;
		}
	}
done:
	if (bm->err) {
		plx_seterr(PLX_EK_STORE, "block %llu: allocation bitmap: %s",
			   (unsigned long long)bm->err_block,
			   plx_strerror(bm->err));
		return NULL;
	}
	return bm;
}

static bool plx_bm_test(const struct plx_extent_bm *bm, u64 off)
{
	const struct plx_bitmap_block *b = &bm->blk[off / PLX_BITS_PER_BITMAP];
	u64 bit = off % PLX_BITS_PER_BITMAP;

	return b->bits[bit / 8] & (1U << (bit % 8));
}

/* False if the block's bitmap cannot be read or verified. */
bool plx_bitmap_test(struct plx_store *s, u64 blocknr)
{
	u64 ext = blocknr >> s->geo.extent_shift;
	struct plx_extent_bm *bm = plx_bitmap_load(s, ext);

	if (!bm)
		return false;
	return plx_bm_test(bm, blocknr & (s->geo.extent_blocks - 1));
}

/* First clear bit at or after @from, or extent_blocks if none. */
static u64 plx_bm_find_free(struct plx_store *s, struct plx_extent_bm *bm,
			    u64 from)
{
	u64 off = from;

	while (off < s->geo.extent_blocks) {
		const u8 *bits = bm->blk[off / PLX_BITS_PER_BITMAP].bits;
		u64 bit = off % PLX_BITS_PER_BITMAP;

		if (!(bit % 8) && bits[bit / 8] == 0xff) {
			off += 8;
			continue;
		}
		if (!(bits[bit / 8] & (1U << (bit % 8))))
			return off;
		off++;
	}
	return s->geo.extent_blocks;
}

static int plx_alloc_from(struct plx_store *s, u64 ext, u64 *blocknr)
{
	struct plx_extent_bm *bm = plx_bitmap_load(s, ext);
	struct plx_extent_entry *en;
	struct plx_bitmap_block *b;
	u64 off, bit;

	if (!bm)
		return -1;
	off = plx_bm_find_free(s, bm, bm->hint);
	if (off >= s->geo.extent_blocks)
		off = plx_bm_find_free(s, bm, s->geo.bitmap_blocks);
	if (off >= s->geo.extent_blocks)
		return 1;
	b = &bm->blk[off / PLX_BITS_PER_BITMAP];
	bit = off % PLX_BITS_PER_BITMAP;
	b->bits[bit / 8] |= (u8)(1U << (bit % 8));
	bm->dirty[off / PLX_BITS_PER_BITMAP] = 1;
	bm->hint = off + 1;
	en = plx_cat_entry(s, ext);
	if (!s->shared && le32_to_cpu(en->used) < s->geo.extent_blocks) {
		en->used = cpu_to_le32(le32_to_cpu(en->used) + 1);
		s->cat_dirty[ext / PLX_CATALOGUE_PER_BLOCK] = 1;
	}
	*blocknr = (ext << s->geo.extent_shift) + off;
	return 0;
}

int plx_alloc(struct plx_store *s, enum plx_extent_type type, u64 *blocknr)
{
	u64 ext, start, n = s->geo.nr_extents;
	int pass, ret;

	if (!s->writable) {
		plx_seterr(PLX_EK_STORE, "store opened read-only");
		return -1;
	}
	if (plx_store_sane(s))
		return -1;
	/*
	 * Pass 0: extents already of this type, from the cursor on.
	 * Pass 1: type the first free, unheld extent.
	 */
	for (pass = 0; pass < (s->shared ? 1 : 2); pass++) {
		start = s->cur_ext[type];
		if (start < s->geo.system_extents || start >= n)
			start = s->geo.system_extents;
		ext = start;
		do {
			struct plx_extent_entry *en = plx_cat_entry(s, ext);
			u8 t = s->ext_type[ext];

			if (le32_to_cpu(en->holder) ==
			    (s->shared ? s->alloc_holder : 0) &&
			    (pass ? t == PLX_EXT_FREE : t == type)) {
				ret = plx_alloc_from(s, ext, blocknr);
				if (ret < 0)
					return -1;
				if (!ret) {
					if (pass) {
						en->type = (u8)type;
						s->ext_type[ext] = (u8)type;
						s->cat_dirty[ext /
						PLX_CATALOGUE_PER_BLOCK] = 1;
					}
					s->cur_ext[type] = ext;
					return 0;
				}
			}
			ext++;
			if (ext >= n)
				ext = s->geo.system_extents;
		} while (ext != start);
	}
	if (s->shared)
		plx_seterr(PLX_EK_STORE, "no free %s block in the extents granted to host %u",
			   type == PLX_EXT_DATA ? "data" : "metadata",
			   s->alloc_holder);
	else
		plx_seterr(PLX_EK_STORE, "blockstore is full: no free %s block in any unheld extent",
			   type == PLX_EXT_DATA ? "data" : "metadata");
	return -1;
}
