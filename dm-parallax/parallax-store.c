// SPDX-License-Identifier: GPL-2.0
/*
 * Opening a blockstore: the superblock and catalogue are read once, checked
 * with the code shared with userspace, and kept as a geometry plus one type
 * byte per extent, so that every pointer the data path follows can be
 * checked without further I/O.
 */
#include <linux/blkdev.h>
#include <linux/dm-bufio.h>
#include <linux/mm.h>

#include "parallax-store.h"

#define DM_MSG_PREFIX "parallax"

/* Enough for one walk from root to leaf plus the node being copied. */
#define PLX_RESERVED_BUFFERS	(PLX_MAX_HEIGHT + 2)

static int plx_store_read_catalogue(struct plx_store *s, char **error)
{
	struct plx_geometry *g = &s->geo;
	struct dm_buffer *b;
	u64 i, ext;

	for (i = 0; i < g->catalogue_blocks; i++) {
		const struct plx_catalogue_block *cb;
		enum plx_err err;

		cb = dm_bufio_read(s->bufio, g->catalogue_start + i, &b);
		if (IS_ERR(cb)) {
			*error = "Cannot read the extent catalogue";
			return PTR_ERR(cb);
		}
		err = plx_catalogue_check(g, cb, i);
		if (err) {
			dm_bufio_release(b);
			DMERR("catalogue block %llu: %s",
			      g->catalogue_start + i, plx_strerror(err));
			*error = "Corrupt extent catalogue";
			return -EUCLEAN;
		}
		for (ext = i * PLX_CATALOGUE_PER_BLOCK;
		     ext < g->nr_extents && ext < (i + 1) * PLX_CATALOGUE_PER_BLOCK;
		     ext++)
			s->ext_type[ext] =
				cb->entries[ext % PLX_CATALOGUE_PER_BLOCK].type;
		dm_bufio_release(b);
	}
	return 0;
}

/*
 * Only allocation bitmaps are ever dirtied in dm-bufio: radix nodes, log
 * blocks and VDI records are written by the target itself, in order.
 * dm-bufio may write a dirty bitmap at any moment, so its crc is
 * refreshed here, just before each write.
 */
static void plx_bufio_write_callback(struct dm_buffer *b)
{
	struct plx_block_header *h = dm_bufio_get_block_data(b);

	if (!WARN_ON_ONCE(le32_to_cpu(h->magic) != PLX_MAGIC_BITMAP))
		plx_block_update_crc(h);
}

int plx_store_open(struct dm_target *ti, struct plx_store *s,
		   const char *path, unsigned long cache_bytes)
{
	const struct plx_superblock *sb;
	struct dm_buffer *b;
	enum plx_err err;
	sector_t dev_blocks;
	int r;

	r = dm_get_device(ti, path, dm_table_get_mode(ti->table), &s->dev);
	if (r) {
		ti->error = "Cannot open the blockstore device";
		return r;
	}

	s->bufio = dm_bufio_client_create(s->dev->bdev, PLX_BLOCK_SIZE,
					  PLX_RESERVED_BUFFERS, 0, NULL,
					  plx_bufio_write_callback, 0);
	if (IS_ERR(s->bufio)) {
		r = PTR_ERR(s->bufio);
		s->bufio = NULL;
		ti->error = "Cannot create the radix node cache";
		goto bad;
	}
	/*
	 * dm-bufio's cache is shared by all its clients; asking it to keep a
	 * minimum number of buffers is how a client reserves its share.
	 */
	dm_bufio_set_minimum_buffers(s->bufio, cache_bytes >> PLX_BLOCK_SHIFT);

	sb = dm_bufio_read(s->bufio, PLX_SUPERBLOCK_BLOCK, &b);
	if (IS_ERR(sb)) {
		r = PTR_ERR(sb);
		ti->error = "Cannot read the superblock";
		goto bad;
	}
	dev_blocks = bdev_nr_sectors(s->dev->bdev) >> (PLX_BLOCK_SHIFT - SECTOR_SHIFT);
	err = plx_superblock_check(sb, dev_blocks);
	if (err) {
		dm_bufio_release(b);
		DMERR("%s: superblock: %s", path, plx_strerror(err));
		ti->error = err == PLX_E_MAGIC ? "Device holds no Parallax blockstore" :
						 "Invalid blockstore superblock";
		r = -EINVAL;
		goto bad;
	}
	plx_geometry_init(&s->geo, sb, NULL);
	dm_bufio_release(b);

	s->ext_type = kvcalloc(s->geo.nr_extents, sizeof(u8), GFP_KERNEL);
	if (!s->ext_type) {
		r = -ENOMEM;
		ti->error = "Cannot allocate the extent table";
		goto bad;
	}
	s->geo.ext_type = s->ext_type;

	r = plx_store_read_catalogue(s, &ti->error);
	if (r)
		goto bad;
	return 0;

bad:
	plx_store_close(ti, s);
	return r;
}

void plx_store_close(struct dm_target *ti, struct plx_store *s)
{
	kvfree(s->ext_type);
	s->ext_type = NULL;
	if (s->bufio)
		dm_bufio_client_destroy(s->bufio);
	s->bufio = NULL;
	if (s->dev)
		dm_put_device(ti, s->dev);
	s->dev = NULL;
}

int plx_store_read_vdi(struct plx_store *s, u64 vdi_id,
		       struct plx_vdi_record *out, char **error)
{
	const struct plx_vdi_record *v;
	struct dm_buffer *b;
	enum plx_err err;

	if (!vdi_id || vdi_id > s->geo.registry_slots) {
		*error = "VDI id out of range";
		return -EINVAL;
	}
	v = dm_bufio_read(s->bufio, plx_registry_block(&s->geo, vdi_id), &b);
	if (IS_ERR(v)) {
		*error = "Cannot read the VDI record";
		return PTR_ERR(v);
	}
	if (le32_to_cpu(v->hdr.magic) != PLX_MAGIC_VDI && !v->hdr.crc) {
		dm_bufio_release(b);
		*error = "No such VDI";
		return -ENOENT;
	}
	err = plx_vdi_check(&s->geo, v, vdi_id);
	if (err) {
		dm_bufio_release(b);
		DMERR("VDI %llu record: %s", vdi_id, plx_strerror(err));
		*error = "Corrupt VDI record";
		return -EUCLEAN;
	}
	memcpy(out, v, sizeof(*out));
	dm_bufio_release(b);
	/*
	 * Another host may rewrite this record after we detach; never let a
	 * later attach see our cached copy.
	 */
	dm_bufio_forget(s->bufio, plx_registry_block(&s->geo, vdi_id));
	return 0;
}
