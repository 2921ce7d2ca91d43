// SPDX-License-Identifier: GPL-2.0
/*
 * Validation of dm-parallax on-disk structures, shared verbatim by the
 * kernel target and the userspace library.  Nothing here does I/O: callers
 * read a block and ask whether it may be trusted.
 */
#ifdef __KERNEL__
#include <kunit/visibility.h>
#include <linux/crc32c.h>
#include <linux/export.h>
#include <linux/kernel.h>
#include <linux/log2.h>
#include <linux/string.h>
#endif

#include "parallax-format.h"

static const char * const plx_err_text[PLX_E_MAX] = {
	[PLX_OK] = "ok",
	[PLX_E_MAGIC] = "bad magic number",
	[PLX_E_CRC] = "checksum mismatch",
	[PLX_E_BLOCKNR] = "block records a different address (misdirected write?)",
	[PLX_E_UUID] = "block belongs to a different blockstore",
	[PLX_E_VERSION] = "unsupported format version",
	[PLX_E_FEATURES] = "unsupported feature flags",
	[PLX_E_GEOMETRY] = "inconsistent geometry",
	[PLX_E_DEVICE_SMALL] = "device is smaller than the blockstore",
	[PLX_E_RANGE] = "block address beyond the end of the blockstore",
	[PLX_E_SYSTEM_AREA] = "block address inside the system extent",
	[PLX_E_BITMAP_AREA] = "block address inside an allocation bitmap",
	[PLX_E_EXTENT_TYPE] = "block address in an extent of the wrong type",
	[PLX_E_VDI_ID] = "VDI record holds the wrong id",
	[PLX_E_VDI_FIELD] = "VDI record has an invalid field",
	[PLX_E_HEIGHT] = "radix tree height out of range",
	[PLX_E_SIZE] = "size does not fit the radix tree",
	[PLX_E_NAME] = "name is empty, too long or has forbidden characters",
	[PLX_E_SNAPLOG_FIELD] = "snapshot log block has an invalid field",
	[PLX_E_CATALOGUE_FIELD] = "extent catalogue entry has an invalid field",
	[PLX_E_LOG_FIELD] = "local cache log block has an invalid field",
};

const char *plx_strerror(enum plx_err err)
{
	if ((unsigned int)err >= PLX_E_MAX)
		return "unknown error";
	return plx_err_text[err];
}
EXPORT_SYMBOL_IF_KUNIT(plx_strerror);

/* CRC-32C (Castagnoli) with the standard pre- and post-inversion. */
u32 plx_crc32c(const void *buf, size_t len)
{
	return ~crc32c(~0U, buf, len);
}
EXPORT_SYMBOL_IF_KUNIT(plx_crc32c);

static u32 plx_block_crc(const void *block)
{
	return plx_crc32c((const u8 *)block + sizeof(__le32),
			  PLX_BLOCK_SIZE - sizeof(__le32));
}

void plx_block_seal(void *block, u32 magic, u64 blocknr, const u8 *uuid)
{
	struct plx_block_header *h = block;

	h->magic = cpu_to_le32(magic);
	h->blocknr = cpu_to_le64(blocknr);
	memcpy(h->uuid, uuid, sizeof(h->uuid));
	h->crc = cpu_to_le32(plx_block_crc(block));
}
EXPORT_SYMBOL_IF_KUNIT(plx_block_seal);

/* Recompute the crc after changing a block whose header is already set. */
void plx_block_update_crc(void *block)
{
	struct plx_block_header *h = block;

	h->crc = cpu_to_le32(plx_block_crc(block));
}
EXPORT_SYMBOL_IF_KUNIT(plx_block_update_crc);

enum plx_err plx_block_verify(const void *block, u32 magic, u64 blocknr,
			      const u8 *uuid)
{
	const struct plx_block_header *h = block;

	if (le32_to_cpu(h->magic) != magic)
		return PLX_E_MAGIC;
	if (le32_to_cpu(h->crc) != plx_block_crc(block))
		return PLX_E_CRC;
	if (le64_to_cpu(h->blocknr) != blocknr)
		return PLX_E_BLOCKNR;
	if (uuid && memcmp(h->uuid, uuid, sizeof(h->uuid)))
		return PLX_E_UUID;
	return PLX_OK;
}
EXPORT_SYMBOL_IF_KUNIT(plx_block_verify);

static u64 plx_div_round_up(u64 n, u64 d)
{
	u64 q = n / d;

	return q + (q * d != n);
}

u64 plx_bitmap_blocks_per_extent(u64 extent_blocks)
{
	return plx_div_round_up(extent_blocks, PLX_BITS_PER_BITMAP);
}
EXPORT_SYMBOL_IF_KUNIT(plx_bitmap_blocks_per_extent);

u64 plx_catalogue_blocks_for(u64 nr_extents)
{
	return plx_div_round_up(nr_extents, PLX_CATALOGUE_PER_BLOCK);
}
EXPORT_SYMBOL_IF_KUNIT(plx_catalogue_blocks_for);

u64 plx_system_extents_for(u64 extent_blocks, u64 catalogue_blocks,
			   u64 registry_slots)
{
	return plx_div_round_up(1 + catalogue_blocks + registry_slots,
				extent_blocks);
}
EXPORT_SYMBOL_IF_KUNIT(plx_system_extents_for);

static bool plx_is_pow2(u64 n)
{
	return n && !(n & (n - 1));
}

enum plx_err plx_superblock_check(const struct plx_superblock *sb,
				  u64 device_blocks)
{
	u64 ext_blocks, nr_ext, sys_ext, cat_blocks, slots;
	enum plx_err err;

	err = plx_block_verify(sb, PLX_MAGIC_SUPER, PLX_SUPERBLOCK_BLOCK, NULL);
	if (err)
		return err;
	if (le32_to_cpu(sb->version) != PLX_FORMAT_VERSION)
		return PLX_E_VERSION;
	if (le64_to_cpu(sb->features_incompat) & ~PLX_FEATURES_INCOMPAT_SUPP ||
	    le64_to_cpu(sb->features_ro_compat) & ~PLX_FEATURES_RO_COMPAT_SUPP)
		return PLX_E_FEATURES;
	if (le32_to_cpu(sb->block_size) != PLX_BLOCK_SIZE)
		return PLX_E_GEOMETRY;

	ext_blocks = le64_to_cpu(sb->extent_blocks);
	nr_ext = le64_to_cpu(sb->nr_extents);
	sys_ext = le64_to_cpu(sb->system_extents);
	cat_blocks = le64_to_cpu(sb->catalogue_blocks);
	slots = le64_to_cpu(sb->registry_slots);

	if (!plx_is_pow2(ext_blocks) || ext_blocks < PLX_MIN_EXTENT_BLOCKS ||
	    ext_blocks > PLX_MAX_EXTENT_BLOCKS)
		return PLX_E_GEOMETRY;
	/* Bounding nr_extents keeps nr_extents * ext_blocks within 2^62. */
	if (nr_ext > (1ULL << 62) / ext_blocks)
		return PLX_E_GEOMETRY;
	if (le64_to_cpu(sb->nr_blocks) != nr_ext * ext_blocks)
		return PLX_E_GEOMETRY;
	if (!slots || slots > PLX_MAX_REGISTRY_SLOTS)
		return PLX_E_GEOMETRY;
	if (cat_blocks != plx_catalogue_blocks_for(nr_ext))
		return PLX_E_GEOMETRY;
	if (le64_to_cpu(sb->catalogue_start) != PLX_SUPERBLOCK_BLOCK + 1)
		return PLX_E_GEOMETRY;
	if (le64_to_cpu(sb->registry_start) != 1 + cat_blocks)
		return PLX_E_GEOMETRY;
	if (sys_ext != plx_system_extents_for(ext_blocks, cat_blocks, slots))
		return PLX_E_GEOMETRY;
	/* At least one data and one metadata extent beyond the system area. */
	if (nr_ext < sys_ext + 2)
		return PLX_E_GEOMETRY;
	if (device_blocks < nr_ext * ext_blocks)
		return PLX_E_DEVICE_SMALL;
	return PLX_OK;
}
EXPORT_SYMBOL_IF_KUNIT(plx_superblock_check);

void plx_geometry_init(struct plx_geometry *g,
		       const struct plx_superblock *sb, const u8 *ext_type)
{
	g->nr_blocks = le64_to_cpu(sb->nr_blocks);
	g->extent_blocks = le64_to_cpu(sb->extent_blocks);
	g->extent_shift = ilog2(g->extent_blocks);
	g->nr_extents = le64_to_cpu(sb->nr_extents);
	g->system_extents = le64_to_cpu(sb->system_extents);
	g->bitmap_blocks = plx_bitmap_blocks_per_extent(g->extent_blocks);
	g->catalogue_start = le64_to_cpu(sb->catalogue_start);
	g->catalogue_blocks = le64_to_cpu(sb->catalogue_blocks);
	g->registry_start = le64_to_cpu(sb->registry_start);
	g->registry_slots = le64_to_cpu(sb->registry_slots);
	memcpy(g->uuid, sb->hdr.uuid, sizeof(g->uuid));
	g->ext_type = ext_type;
}
EXPORT_SYMBOL_IF_KUNIT(plx_geometry_init);

/*
 * Check catalogue block @index (0-based) and every entry in it.  Entries
 * past nr_extents must be zero, so that nothing hides in the padding.
 */
enum plx_err plx_catalogue_check(const struct plx_geometry *g,
				 const struct plx_catalogue_block *cb,
				 u64 index)
{
	u64 first = index * PLX_CATALOGUE_PER_BLOCK;
	enum plx_err err;
	unsigned int i;

	err = plx_block_verify(cb, PLX_MAGIC_CATALOGUE,
			       g->catalogue_start + index, g->uuid);
	if (err)
		return err;
	for (i = 0; i < PLX_CATALOGUE_PER_BLOCK; i++) {
		const struct plx_extent_entry *e = &cb->entries[i];
		bool typed_system = e->type == PLX_EXT_SYSTEM;
		u64 ext = first + i;
		bool system = ext < g->system_extents;

		if (ext >= g->nr_extents) {
			if (e->type || e->flags || e->holder || e->generation ||
			    e->used)
				return PLX_E_CATALOGUE_FIELD;
			continue;
		}
		if (e->flags || system != typed_system)
			return PLX_E_CATALOGUE_FIELD;
		if (e->type > PLX_EXT_METADATA)
			return PLX_E_CATALOGUE_FIELD;
		if (le32_to_cpu(e->used) > g->extent_blocks)
			return PLX_E_CATALOGUE_FIELD;
	}
	return PLX_OK;
}
EXPORT_SYMBOL_IF_KUNIT(plx_catalogue_check);

/*
 * May a pointer of kind @want (data or metadata) point at @blocknr?  It
 * must lie inside an extent of that type and outside its bitmap.
 */
enum plx_err plx_check_addr(const struct plx_geometry *g, u64 blocknr,
			    enum plx_extent_type want)
{
	u64 ext;

	if (blocknr >= g->nr_blocks)
		return PLX_E_RANGE;
	ext = blocknr >> g->extent_shift;
	if (ext < g->system_extents)
		return PLX_E_SYSTEM_AREA;
	if ((blocknr & (g->extent_blocks - 1)) < g->bitmap_blocks)
		return PLX_E_BITMAP_AREA;
	if (g->ext_type[ext] != want)
		return PLX_E_EXTENT_TYPE;
	return PLX_OK;
}
EXPORT_SYMBOL_IF_KUNIT(plx_check_addr);

void plx_bitmap_locate(const struct plx_geometry *g, u64 blocknr,
		       u64 *bitmap_blocknr, u32 *bit)
{
	u64 ext_start = blocknr & ~(g->extent_blocks - 1);
	u64 off = blocknr - ext_start;

	*bitmap_blocknr = ext_start + off / PLX_BITS_PER_BITMAP;
	*bit = off % PLX_BITS_PER_BITMAP;
}
EXPORT_SYMBOL_IF_KUNIT(plx_bitmap_locate);

u64 plx_registry_block(const struct plx_geometry *g, u64 vdi_id)
{
	return g->registry_start + vdi_id - 1;
}
EXPORT_SYMBOL_IF_KUNIT(plx_registry_block);

/*
 * The copy of a node reached through a read-only link: every link in it
 * becomes read-only too, since what it points at is shared as well.
 */
void plx_node_copy_ro(struct plx_radix_node *dst,
		      const struct plx_radix_node *src)
{
	unsigned int i;

	for (i = 0; i < PLX_PTRS_PER_NODE; i++) {
		u64 p = le64_to_cpu(src->ptr[i]);

		dst->ptr[i] = cpu_to_le64(p ? p | PLX_PTR_RO : 0);
	}
}
EXPORT_SYMBOL_IF_KUNIT(plx_node_copy_ro);

u8 plx_height_for_size(u64 bytes)
{
	u8 h;

	for (h = 1; h <= PLX_MAX_HEIGHT; h++)
		if (bytes <= plx_max_size_for_height(h))
			return h;
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(plx_height_for_size);

u64 plx_max_size_for_height(u8 height)
{
	return 1ULL << (PLX_BLOCK_SHIFT + PLX_NODE_SHIFT * height);
}
EXPORT_SYMBOL_IF_KUNIT(plx_max_size_for_height);

/*
 * Names and labels: 1..len-1 bytes of [A-Za-z0-9._-], NUL padded, and not
 * all digits, so that a name can never be mistaken for an id.
 */
enum plx_err plx_name_check(const char *name, size_t len)
{
	bool digits_only = true;
	size_t i;

	if (!len || !name[0])
		return PLX_E_NAME;
	for (i = 0; i < len && name[i]; i++) {
		char c = name[i];

		if (c >= '0' && c <= '9')
			continue;
		digits_only = false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      c == '.' || c == '_' || c == '-'))
			return PLX_E_NAME;
	}
	if (i == len || digits_only)
		return PLX_E_NAME;
	for (; i < len; i++)
		if (name[i])
			return PLX_E_NAME;
	return PLX_OK;
}
EXPORT_SYMBOL_IF_KUNIT(plx_name_check);

enum plx_err plx_vdi_check(const struct plx_geometry *g,
			   const struct plx_vdi_record *v, u64 vdi_id)
{
	u64 size = le64_to_cpu(v->size);
	u64 parent = le64_to_cpu(v->parent_vdi);
	u64 log = le64_to_cpu(v->snaplog_head);
	enum plx_err err;

	if (!vdi_id || vdi_id > g->registry_slots)
		return PLX_E_VDI_ID;
	err = plx_block_verify(v, PLX_MAGIC_VDI,
			       plx_registry_block(g, vdi_id), g->uuid);
	if (err)
		return err;
	if (le64_to_cpu(v->id) != vdi_id)
		return PLX_E_VDI_ID;
	if (le64_to_cpu(v->flags) & ~PLX_VDI_FLAGS_KNOWN)
		return PLX_E_VDI_FIELD;
	if (v->height < 1 || v->height > PLX_MAX_HEIGHT)
		return PLX_E_HEIGHT;
	if (!size || size & (PLX_BLOCK_SIZE - 1) ||
	    size > plx_max_size_for_height(v->height))
		return PLX_E_SIZE;
	if (plx_name_check(v->name, sizeof(v->name)))
		return PLX_E_NAME;
	/*
	 * A deleted record's links are history: the collector may have
	 * freed what they point to and given the extent another type.
	 */
	if (le64_to_cpu(v->flags) & PLX_VDI_DELETED)
		return PLX_OK;
	err = plx_check_addr(g, le64_to_cpu(v->root), PLX_EXT_METADATA);
	if (err)
		return err;
	if (!log != !le64_to_cpu(v->snap_seq))
		return PLX_E_VDI_FIELD;
	if (log) {
		err = plx_check_addr(g, log, PLX_EXT_METADATA);
		if (err)
			return err;
	}
	if (parent) {
		if (parent > g->registry_slots || parent == vdi_id ||
		    !le64_to_cpu(v->parent_seq))
			return PLX_E_VDI_FIELD;
		err = plx_check_addr(g, le64_to_cpu(v->parent_log),
				     PLX_EXT_METADATA);
		if (err)
			return err;
	} else if (v->parent_seq || v->parent_log) {
		return PLX_E_VDI_FIELD;
	}
	return PLX_OK;
}
EXPORT_SYMBOL_IF_KUNIT(plx_vdi_check);

enum plx_err plx_snaplog_check(const struct plx_geometry *g,
			       const struct plx_snaplog_block *l,
			       u64 blocknr, u64 vdi_id)
{
	u32 count = le32_to_cpu(l->count);
	u64 prev = le64_to_cpu(l->prev);
	enum plx_err err;
	u32 i;

	err = plx_block_verify(l, PLX_MAGIC_SNAPLOG, blocknr, g->uuid);
	if (err)
		return err;
	if (le64_to_cpu(l->vdi) != vdi_id)
		return PLX_E_SNAPLOG_FIELD;
	if (!count || count > PLX_SNAPS_PER_LOG)
		return PLX_E_SNAPLOG_FIELD;
	if (prev == blocknr)
		return PLX_E_SNAPLOG_FIELD;
	if (prev) {
		err = plx_check_addr(g, prev, PLX_EXT_METADATA);
		if (err)
			return err;
	}
	for (i = 0; i < count; i++) {
		const struct plx_snap_record *r = &l->rec[i];

		if (le64_to_cpu(r->seq) == 0 ||
		    (i && le64_to_cpu(r->seq) != le64_to_cpu(l->rec[i - 1].seq) + 1))
			return PLX_E_SNAPLOG_FIELD;
		if (le32_to_cpu(r->flags) & ~PLX_SNAP_FLAGS_KNOWN)
			return PLX_E_SNAPLOG_FIELD;
		if (r->label[0] && plx_name_check(r->label, sizeof(r->label)))
			return PLX_E_NAME;
		err = plx_check_addr(g, le64_to_cpu(r->root), PLX_EXT_METADATA);
		if (err)
			return err;
	}
	return PLX_OK;
}
EXPORT_SYMBOL_IF_KUNIT(plx_snaplog_check);

enum plx_err plx_log_super_check(const struct plx_log_super *s,
				 u64 device_blocks)
{
	u64 nr = le64_to_cpu(s->nr_blocks);
	u64 head = le64_to_cpu(s->head_block);
	enum plx_err err;

	err = plx_block_verify(s, PLX_MAGIC_LOG_SUPER, 0, NULL);
	if (err)
		return err;
	if (le32_to_cpu(s->version) != PLX_LOG_VERSION)
		return PLX_E_VERSION;
	if (s->flags)
		return PLX_E_FEATURES;
	if (nr < PLX_LOG_MIN_BLOCKS)
		return PLX_E_GEOMETRY;
	if (nr > device_blocks)
		return PLX_E_DEVICE_SMALL;
	if (head < PLX_LOG_FIRST_BLOCK || head >= nr || !s->head_seq)
		return PLX_E_LOG_FIELD;
	return PLX_OK;
}
EXPORT_SYMBOL_IF_KUNIT(plx_log_super_check);

/* Blocks a record takes: its header and its data. */
u64 plx_log_record_blocks(const struct plx_log_record *r)
{
	return 1 + le32_to_cpu(r->data_blocks);
}
EXPORT_SYMBOL_IF_KUNIT(plx_log_record_blocks);

enum plx_err plx_log_record_check(const struct plx_log_record *r, u64 blocknr,
				  const u8 *log_uuid, u64 nr_blocks)
{
	u32 entries = le32_to_cpu(r->nr_entries);
	u32 data = le32_to_cpu(r->data_blocks);
	u64 next = le64_to_cpu(r->next_block);
	enum plx_err err;
	u32 i, with_data = 0;

	err = plx_block_verify(r, PLX_MAGIC_LOG_RECORD, blocknr, log_uuid);
	if (err)
		return err;
	if (!r->seq || entries > PLX_LOG_MAX_ENTRIES || data > PLX_LOG_MAX_DATA)
		return PLX_E_LOG_FIELD;
	if (blocknr + 1 + data > nr_blocks)
		return PLX_E_LOG_FIELD;
	if (next < PLX_LOG_FIRST_BLOCK || next >= nr_blocks ||
	    (next > blocknr && next < blocknr + 1 + data))
		return PLX_E_LOG_FIELD;
	switch (le32_to_cpu(r->type)) {
	case PLX_LOG_WRITE:
		if (!entries)
			return PLX_E_LOG_FIELD;
		for (i = 0; i < entries; i++)
			if (!(le64_to_cpu(r->entries[i]) & PLX_LOG_DISCARD))
				with_data++;
		if (with_data != data)
			return PLX_E_LOG_FIELD;
		break;
	case PLX_LOG_SNAPSHOT:
		if (entries || data || !r->snap_seq)
			return PLX_E_LOG_FIELD;
		if (r->label[0] && plx_name_check(r->label, sizeof(r->label)))
			return PLX_E_NAME;
		break;
	default:
		return PLX_E_LOG_FIELD;
	}
	return PLX_OK;
}
EXPORT_SYMBOL_IF_KUNIT(plx_log_record_check);
