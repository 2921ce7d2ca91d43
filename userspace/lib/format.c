// SPDX-License-Identifier: GPL-2.0
/*
 * Formatting a device.  The superblock is written last, after the
 * registry has been zeroed and catalogue and bitmaps written and synced,
 * so a half-formatted device is never mistaken for a blockstore.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/random.h>
#include <unistd.h>

#include "internal.h"

int plx_random(void *buf, size_t len)
{
	u8 *p = buf;

	while (len) {
		ssize_t n = getrandom(p, len, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			plx_seterr(PLX_EK_STORE, "getrandom failed: %s",
				   strerror(errno));
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int plx_pwrite_block(int fd, u64 blocknr, const void *buf)
{
	if (pwrite(fd, buf, PLX_BLOCK_SIZE,
		   (off_t)(blocknr << PLX_BLOCK_SHIFT)) != PLX_BLOCK_SIZE) {
		plx_seterr(PLX_EK_STORE, "block %llu: write failed: %s",
			   (unsigned long long)blocknr, strerror(errno));
		return -1;
	}
	return 0;
}

/* Fill in the superblock for a device of @dev_blocks; validates options. */
static int plx_format_layout(struct plx_superblock *sb, u64 dev_blocks,
			     u64 ext_blocks, u64 slots)
{
	u64 nr_ext, cat_blocks, sys_ext;

	if (ext_blocks < PLX_MIN_EXTENT_BLOCKS ||
	    ext_blocks > PLX_MAX_EXTENT_BLOCKS ||
	    (ext_blocks & (ext_blocks - 1))) {
		plx_seterr(PLX_EK_USAGE,
			   "extent size must be a power of two between %llu MiB and %llu GiB",
			   PLX_MIN_EXTENT_BLOCKS >> 8,
			   PLX_MAX_EXTENT_BLOCKS >> 18);
		return -1;
	}
	if (!slots || slots > PLX_MAX_REGISTRY_SLOTS) {
		plx_seterr(PLX_EK_USAGE, "--max-vdis must be between 1 and %llu",
			   PLX_MAX_REGISTRY_SLOTS);
		return -1;
	}
	nr_ext = dev_blocks / ext_blocks;
	cat_blocks = plx_catalogue_blocks_for(nr_ext);
	sys_ext = plx_system_extents_for(ext_blocks, cat_blocks, slots);
	if (nr_ext < sys_ext + 2) {
		plx_seterr(PLX_EK_STORE,
			   "device too small: %llu MiB holds %llu extents of %llu MiB, need at least %llu (%llu for the system area, one data, one metadata)",
			   (unsigned long long)(dev_blocks >> 8),
			   (unsigned long long)nr_ext,
			   (unsigned long long)(ext_blocks >> 8),
			   (unsigned long long)(sys_ext + 2),
			   (unsigned long long)sys_ext);
		return -1;
	}
	memset(sb, 0, sizeof(*sb));
	sb->version = cpu_to_le32(PLX_FORMAT_VERSION);
	sb->block_size = cpu_to_le32(PLX_BLOCK_SIZE);
	sb->nr_blocks = cpu_to_le64(nr_ext * ext_blocks);
	sb->extent_blocks = cpu_to_le64(ext_blocks);
	sb->nr_extents = cpu_to_le64(nr_ext);
	sb->system_extents = cpu_to_le64(sys_ext);
	sb->catalogue_start = cpu_to_le64(PLX_SUPERBLOCK_BLOCK + 1);
	sb->catalogue_blocks = cpu_to_le64(cat_blocks);
	sb->registry_start = cpu_to_le64(1 + cat_blocks);
	sb->registry_slots = cpu_to_le64(slots);
	sb->ctime_ns = cpu_to_le64(plx_now_ns());
	return 0;
}

static int plx_format_write(int fd, struct plx_superblock *sb)
{
	struct plx_geometry g;
	u8 *blk = calloc(1, PLX_BLOCK_SIZE);
	u64 i, e, sys_blocks;
	int ret = -1;

	if (!blk) {
		plx_seterr(PLX_EK_STORE, "out of memory");
		return -1;
	}
	plx_geometry_init(&g, sb, NULL);
	memcpy(g.uuid, sb->hdr.uuid, sizeof(g.uuid));

	/* Kill any old superblock first: a crash leaves no blockstore. */
	if (plx_pwrite_block(fd, PLX_SUPERBLOCK_BLOCK, blk) || fsync(fd))
		goto out;
	for (i = 0; i < g.registry_slots; i++)
		if (plx_pwrite_block(fd, g.registry_start + i, blk))
			goto out;

	sys_blocks = 1 + g.catalogue_blocks + g.registry_slots;
	for (i = 0; i < g.catalogue_blocks; i++) {
		struct plx_catalogue_block *cb = (void *)blk;

		memset(blk, 0, PLX_BLOCK_SIZE);
		for (e = i * PLX_CATALOGUE_PER_BLOCK;
		     e < g.nr_extents && e < (i + 1) * PLX_CATALOGUE_PER_BLOCK;
		     e++) {
			struct plx_extent_entry *en =
				&cb->entries[e % PLX_CATALOGUE_PER_BLOCK];
			u64 used;

			if (e < g.system_extents) {
				en->type = PLX_EXT_SYSTEM;
				used = sys_blocks - e * g.extent_blocks;
				if (used > g.extent_blocks)
					used = g.extent_blocks;
			} else {
				en->type = PLX_EXT_FREE;
				used = g.bitmap_blocks;
			}
			en->used = cpu_to_le32((u32)used);
		}
		plx_block_seal(blk, PLX_MAGIC_CATALOGUE, g.catalogue_start + i,
			       g.uuid);
		if (plx_pwrite_block(fd, g.catalogue_start + i, blk))
			goto out;
	}

	/* Every non-system extent: bitmap with its own blocks marked used. */
	for (e = g.system_extents; e < g.nr_extents; e++) {
		u64 base = e << g.extent_shift;

		for (i = 0; i < g.bitmap_blocks; i++) {
			struct plx_bitmap_block *bb = (void *)blk;
			u64 first = i * PLX_BITS_PER_BITMAP, b;

			memset(blk, 0, PLX_BLOCK_SIZE);
			for (b = first; b < g.bitmap_blocks &&
			     b < first + PLX_BITS_PER_BITMAP; b++)
				bb->bits[(b - first) / 8] |=
					(u8)(1U << ((b - first) % 8));
			plx_block_seal(blk, PLX_MAGIC_BITMAP, base + i, g.uuid);
			if (plx_pwrite_block(fd, base + i, blk))
				goto out;
		}
	}
	if (fsync(fd)) {
		plx_seterr(PLX_EK_STORE, "fsync failed: %s", strerror(errno));
		goto out;
	}

	memset(blk, 0, PLX_BLOCK_SIZE);
	memcpy(blk, sb, sizeof(*sb));
	plx_block_seal(blk, PLX_MAGIC_SUPER, PLX_SUPERBLOCK_BLOCK, g.uuid);
	memcpy(sb, blk, sizeof(*sb));
	if (plx_pwrite_block(fd, PLX_SUPERBLOCK_BLOCK, blk))
		goto out;
	if (fsync(fd)) {
		plx_seterr(PLX_EK_STORE, "fsync failed: %s", strerror(errno));
		goto out;
	}
	ret = 0;
out:
	free(blk);
	return ret;
}

int plx_format(const char *path, const struct plx_format_opts *o,
	       struct plx_superblock *out_sb)
{
	struct plx_superblock sb;
	struct plx_block_header old;
	u64 dev_blocks;
	int fd, ret = -1;

	fd = plx_open_device(path, true, true);
	if (fd < 0)
		return -1;
	if (plx_device_blocks(fd, &dev_blocks))
		goto out;
	if (plx_format_layout(&sb, dev_blocks,
			      o->extent_blocks ?: PLX_DEFAULT_EXTENT_BLOCKS,
			      o->registry_slots ?: PLX_DEFAULT_REGISTRY_SLOTS))
		goto out;
	if (pread(fd, &old, sizeof(old), 0) == sizeof(old) &&
	    le32_to_cpu(old.magic) == PLX_MAGIC_SUPER && !o->force) {
		plx_seterr(PLX_EK_STORE,
			   "%s already holds a Parallax blockstore (use --force to overwrite it)",
			   path);
		goto out;
	}
	if (plx_random(sb.hdr.uuid, sizeof(sb.hdr.uuid)) ||
	    plx_random(sb.cluster_key, sizeof(sb.cluster_key)))
		goto out;
	if (plx_format_write(fd, &sb))
		goto out;
	if (out_sb)
		*out_sb = sb;
	ret = 0;
out:
	close(fd);
	return ret;
}
