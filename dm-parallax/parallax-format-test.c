// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for the dm-parallax on-disk format code (parallax-format.c).
 *
 * Built as the module dm-parallax-kunit, which uses the symbols that
 * dm-parallax.ko exports when the kernel has KUnit.  Load dm-parallax.ko
 * first; the suite runs when this module is loaded.  tests/kunit/run does
 * all of that inside User-Mode Linux.
 *
 * Every rejection test starts from a structure that the code accepts
 * (checked in the same test) and changes one thing, so a test can only
 * pass if that one change is what the code objects to.
 */
#include <kunit/test.h>
#include <linux/module.h>
#include <linux/string.h>

#include "parallax-format.h"

#define SZ_BLOCK	PLX_BLOCK_SIZE

/*
 * Test store geometry: 8 extents of 1024 blocks (the minimum), 1024
 * registry slots.  That needs 1 catalogue block, registry blocks 2..1025,
 * so 2 system extents (blocks 0..2047).  Extent types after that:
 */
#define T_EXT_BLOCKS	1024ULL
#define T_NR_EXT	8ULL
#define T_SLOTS		1024ULL
#define T_NR_BLOCKS	(T_EXT_BLOCKS * T_NR_EXT)

static const u8 t_ext_type[T_NR_EXT] = {
	PLX_EXT_SYSTEM, PLX_EXT_SYSTEM,
	PLX_EXT_DATA,		/* blocks 2048..3071, bitmap at 2048 */
	PLX_EXT_METADATA,	/* blocks 3072..4095, bitmap at 3072 */
	PLX_EXT_FREE,
	PLX_EXT_DATA,
	PLX_EXT_METADATA,
	PLX_EXT_FREE,
};

#define T_DATA_BLOCK	2049ULL		/* first usable block of extent 2 */
#define T_META_BLOCK	3073ULL		/* first usable block of extent 3 */
#define T_VDI_ID	3ULL

static const u8 t_uuid[16] = {
	0x5a, 0x1e, 0x0b, 0x7c, 0x93, 0x4f, 0x42, 0x11,
	0x8e, 0x02, 0xcd, 0x61, 0x77, 0x38, 0xa9, 0xf4,
};

static const u8 t_other_uuid[16] = {
	0x5a, 0x1e, 0x0b, 0x7c, 0x93, 0x4f, 0x42, 0x11,
	0x8e, 0x02, 0xcd, 0x61, 0x77, 0x38, 0xa9, 0xf5,
};

static void *alloc_block(struct kunit *test)
{
	void *b = kunit_kzalloc(test, SZ_BLOCK, GFP_KERNEL);

	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, b);
	return b;
}

/* Build a superblock the way the format tool does. */
static struct plx_superblock *build_sb(struct kunit *test, u64 nr_ext,
				       u64 ext_blocks, u64 slots)
{
	struct plx_superblock *sb = alloc_block(test);
	u64 cat = plx_catalogue_blocks_for(nr_ext);

	sb->version = cpu_to_le32(PLX_FORMAT_VERSION);
	sb->block_size = cpu_to_le32(PLX_BLOCK_SIZE);
	sb->nr_blocks = cpu_to_le64(nr_ext * ext_blocks);
	sb->extent_blocks = cpu_to_le64(ext_blocks);
	sb->nr_extents = cpu_to_le64(nr_ext);
	sb->catalogue_start = cpu_to_le64(1);
	sb->catalogue_blocks = cpu_to_le64(cat);
	sb->registry_start = cpu_to_le64(1 + cat);
	sb->registry_slots = cpu_to_le64(slots);
	sb->system_extents =
		cpu_to_le64(plx_system_extents_for(ext_blocks, cat, slots));
	sb->ctime_ns = cpu_to_le64(1700000000000000000ULL);
	strscpy(sb->lockd_addr, "127.0.0.1:7410", sizeof(sb->lockd_addr));
	plx_block_seal(sb, PLX_MAGIC_SUPER, PLX_SUPERBLOCK_BLOCK, t_uuid);
	return sb;
}

static void reseal_sb(struct plx_superblock *sb)
{
	plx_block_seal(sb, PLX_MAGIC_SUPER, PLX_SUPERBLOCK_BLOCK, t_uuid);
}

/* The standard test geometry, with its superblock validated first. */
static void init_geometry(struct kunit *test, struct plx_geometry *g)
{
	struct plx_superblock *sb = build_sb(test, T_NR_EXT, T_EXT_BLOCKS,
					     T_SLOTS);

	KUNIT_ASSERT_EQ(test, plx_superblock_check(sb, T_NR_BLOCKS), PLX_OK);
	plx_geometry_init(g, sb, t_ext_type);
	KUNIT_ASSERT_EQ(test, g->system_extents, 2ULL);
	KUNIT_ASSERT_EQ(test, g->bitmap_blocks, 1ULL);
}

/* ---- CRC and block headers -------------------------------------------- */

static void crc32c_vectors_test(struct kunit *test)
{
	static const u8 zeros[32];
	static const u8 ones[32] = {
		[0 ... 31] = 0xff,
	};

	/* The standard check value, and RFC 3720 B.4 vectors. */
	KUNIT_EXPECT_EQ(test, plx_crc32c("123456789", 9), 0xe3069283U);
	KUNIT_EXPECT_EQ(test, plx_crc32c(zeros, sizeof(zeros)), 0x8a9136aaU);
	KUNIT_EXPECT_EQ(test, plx_crc32c(ones, sizeof(ones)), 0x62a8ab43U);
	KUNIT_EXPECT_EQ(test, plx_crc32c("", 0), 0U);
}

static void seal_verify_ok_test(struct kunit *test)
{
	u8 *b = alloc_block(test);
	struct plx_block_header *h = (void *)b;
	unsigned int i;

	for (i = PLX_HEADER_SIZE; i < SZ_BLOCK; i++)
		b[i] = i * 7;
	plx_block_seal(b, PLX_MAGIC_VDI, 42, t_uuid);

	KUNIT_EXPECT_EQ(test, le32_to_cpu(h->magic), PLX_MAGIC_VDI);
	KUNIT_EXPECT_EQ(test, le64_to_cpu(h->blocknr), 42ULL);
	KUNIT_EXPECT_MEMEQ(test, h->uuid, t_uuid, sizeof(t_uuid));
	KUNIT_EXPECT_EQ(test, le32_to_cpu(h->crc),
			plx_crc32c(b + 4, SZ_BLOCK - 4));
	KUNIT_EXPECT_EQ(test, plx_block_verify(b, PLX_MAGIC_VDI, 42, t_uuid),
			PLX_OK);
	/* No uuid to compare: the superblock is read before the uuid is known. */
	KUNIT_EXPECT_EQ(test, plx_block_verify(b, PLX_MAGIC_VDI, 42, NULL),
			PLX_OK);
	/* Sealing again is idempotent. */
	plx_block_seal(b, PLX_MAGIC_VDI, 42, t_uuid);
	KUNIT_EXPECT_EQ(test, plx_block_verify(b, PLX_MAGIC_VDI, 42, t_uuid),
			PLX_OK);
}

static void verify_bad_magic_test(struct kunit *test)
{
	u8 *b = alloc_block(test);

	plx_block_seal(b, PLX_MAGIC_BITMAP, 7, t_uuid);
	KUNIT_ASSERT_EQ(test, plx_block_verify(b, PLX_MAGIC_BITMAP, 7, t_uuid),
			PLX_OK);
	/* Right block, wrong kind expected. */
	KUNIT_EXPECT_EQ(test, plx_block_verify(b, PLX_MAGIC_VDI, 7, t_uuid),
			PLX_E_MAGIC);
	/* Magic damaged on disk: reported as a magic, not a crc, error. */
	b[4] ^= 0x01;
	KUNIT_EXPECT_EQ(test, plx_block_verify(b, PLX_MAGIC_BITMAP, 7, t_uuid),
			PLX_E_MAGIC);
	/* An all-zero (never written) block. */
	memset(b, 0, SZ_BLOCK);
	KUNIT_EXPECT_EQ(test, plx_block_verify(b, PLX_MAGIC_BITMAP, 7, t_uuid),
			PLX_E_MAGIC);
}

static void verify_bad_crc_test(struct kunit *test)
{
	static const unsigned int offsets[] = { 0, 3, 8, 16, 31, 32, 2048,
						SZ_BLOCK - 1 };
	u8 *b = alloc_block(test);
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(offsets); i++) {
		unsigned int off = offsets[i];

		memset(b, 0x5c, SZ_BLOCK);
		plx_block_seal(b, PLX_MAGIC_SNAPLOG, 9, t_uuid);
		KUNIT_ASSERT_EQ(test,
				plx_block_verify(b, PLX_MAGIC_SNAPLOG, 9, t_uuid),
				PLX_OK);
		b[off] ^= 0x80;
		KUNIT_EXPECT_EQ_MSG(test,
				    plx_block_verify(b, PLX_MAGIC_SNAPLOG, 9,
						     t_uuid),
				    PLX_E_CRC, "bit flipped at byte %u", off);
	}
}

static void verify_bad_blocknr_test(struct kunit *test)
{
	u8 *b = alloc_block(test);

	plx_block_seal(b, PLX_MAGIC_CATALOGUE, 1, t_uuid);
	KUNIT_EXPECT_EQ(test,
			plx_block_verify(b, PLX_MAGIC_CATALOGUE, 2, t_uuid),
			PLX_E_BLOCKNR);
	KUNIT_EXPECT_EQ(test,
			plx_block_verify(b, PLX_MAGIC_CATALOGUE,
					 1 | (1ULL << 32), t_uuid),
			PLX_E_BLOCKNR);
	KUNIT_EXPECT_EQ(test,
			plx_block_verify(b, PLX_MAGIC_CATALOGUE, 1, t_uuid),
			PLX_OK);
}

static void verify_bad_uuid_test(struct kunit *test)
{
	u8 *b = alloc_block(test);

	plx_block_seal(b, PLX_MAGIC_CATALOGUE, 1, t_uuid);
	KUNIT_EXPECT_EQ(test,
			plx_block_verify(b, PLX_MAGIC_CATALOGUE, 1,
					 t_other_uuid),
			PLX_E_UUID);
	/* A stale block from an earlier format of the same device. */
	plx_block_seal(b, PLX_MAGIC_CATALOGUE, 1, t_other_uuid);
	KUNIT_EXPECT_EQ(test,
			plx_block_verify(b, PLX_MAGIC_CATALOGUE, 1, t_uuid),
			PLX_E_UUID);
}

static void strerror_test(struct kunit *test)
{
	int i, j;

	KUNIT_EXPECT_STREQ(test, plx_strerror(PLX_OK), "ok");
	for (i = 0; i < PLX_E_MAX; i++) {
		KUNIT_ASSERT_NOT_NULL(test, plx_strerror(i));
		KUNIT_EXPECT_STRNEQ(test, plx_strerror(i), "unknown error");
		for (j = 0; j < i; j++)
			KUNIT_EXPECT_STRNEQ(test, plx_strerror(i),
					    plx_strerror(j));
	}
	KUNIT_EXPECT_STREQ(test, plx_strerror(PLX_E_MAX), "unknown error");
	KUNIT_EXPECT_STREQ(test, plx_strerror(-1), "unknown error");
}

/* ---- Sizing helpers --------------------------------------------------- */

static void sizing_helpers_test(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, plx_bitmap_blocks_per_extent(1024), 1ULL);
	KUNIT_EXPECT_EQ(test, plx_bitmap_blocks_per_extent(PLX_BITS_PER_BITMAP),
			1ULL);
	KUNIT_EXPECT_EQ(test,
			plx_bitmap_blocks_per_extent(PLX_BITS_PER_BITMAP + 1),
			2ULL);
	KUNIT_EXPECT_EQ(test, plx_bitmap_blocks_per_extent(1ULL << 16), 3ULL);
	KUNIT_EXPECT_EQ(test, plx_bitmap_blocks_per_extent(PLX_MAX_EXTENT_BLOCKS),
			517ULL);

	KUNIT_EXPECT_EQ(test, (u64)PLX_CATALOGUE_PER_BLOCK, 127ULL);
	KUNIT_EXPECT_EQ(test, plx_catalogue_blocks_for(1), 1ULL);
	KUNIT_EXPECT_EQ(test, plx_catalogue_blocks_for(127), 1ULL);
	KUNIT_EXPECT_EQ(test, plx_catalogue_blocks_for(128), 2ULL);
	KUNIT_EXPECT_EQ(test, plx_catalogue_blocks_for(254), 2ULL);
	KUNIT_EXPECT_EQ(test, plx_catalogue_blocks_for(255), 3ULL);

	/* superblock + catalogue + registry, rounded up to extents */
	KUNIT_EXPECT_EQ(test, plx_system_extents_for(1024, 1, 1022), 1ULL);
	KUNIT_EXPECT_EQ(test, plx_system_extents_for(1024, 1, 1023), 2ULL);
	KUNIT_EXPECT_EQ(test, plx_system_extents_for(1024, 1, 1024), 2ULL);
	KUNIT_EXPECT_EQ(test, plx_system_extents_for(1ULL << 18, 9, 1024),
			1ULL);
}

static void height_for_size_test(struct kunit *test)
{
	const u64 mib = 1ULL << 20, gib = 1ULL << 30, tib = 1ULL << 40;

	KUNIT_EXPECT_EQ(test, plx_height_for_size(SZ_BLOCK), 1);
	KUNIT_EXPECT_EQ(test, plx_height_for_size(2 * mib), 1);
	KUNIT_EXPECT_EQ(test, plx_height_for_size(2 * mib + SZ_BLOCK), 2);
	KUNIT_EXPECT_EQ(test, plx_height_for_size(gib), 2);
	KUNIT_EXPECT_EQ(test, plx_height_for_size(gib + SZ_BLOCK), 3);
	KUNIT_EXPECT_EQ(test, plx_height_for_size(512 * gib), 3);
	KUNIT_EXPECT_EQ(test, plx_height_for_size(512 * gib + SZ_BLOCK), 4);
	KUNIT_EXPECT_EQ(test, plx_height_for_size(256 * tib), 4);
	KUNIT_EXPECT_EQ(test, plx_height_for_size(256 * tib + SZ_BLOCK), 0);
	KUNIT_EXPECT_EQ(test, plx_height_for_size(U64_MAX), 0);

	KUNIT_EXPECT_EQ(test, plx_max_size_for_height(1), 2 * mib);
	KUNIT_EXPECT_EQ(test, plx_max_size_for_height(2), gib);
	KUNIT_EXPECT_EQ(test, plx_max_size_for_height(3), 512 * gib);
	KUNIT_EXPECT_EQ(test, plx_max_size_for_height(4), 256 * tib);
}

static void radix_helpers_test(struct kunit *test)
{
	u64 vblock = (5ULL << 27) | (4ULL << 18) | (3ULL << 9) | 2;

	KUNIT_EXPECT_EQ(test, plx_radix_index(vblock, 0), 2U);
	KUNIT_EXPECT_EQ(test, plx_radix_index(vblock, 1), 3U);
	KUNIT_EXPECT_EQ(test, plx_radix_index(vblock, 2), 4U);
	KUNIT_EXPECT_EQ(test, plx_radix_index(vblock, 3), 5U);
	KUNIT_EXPECT_EQ(test, plx_radix_index(511, 0), 511U);
	KUNIT_EXPECT_EQ(test, plx_radix_index(512, 0), 0U);

	KUNIT_EXPECT_TRUE(test, plx_ptr_is_ro(PLX_PTR_RO | 1234));
	KUNIT_EXPECT_FALSE(test, plx_ptr_is_ro(1234));
	KUNIT_EXPECT_EQ(test, plx_ptr_addr(PLX_PTR_RO | 1234), 1234ULL);
	KUNIT_EXPECT_EQ(test, plx_ptr_addr(1234), 1234ULL);
}

/* ---- Superblock ------------------------------------------------------- */

static void superblock_ok_test(struct kunit *test)
{
	struct plx_superblock *sb = build_sb(test, T_NR_EXT, T_EXT_BLOCKS,
					     T_SLOTS);
	struct plx_geometry g;

	KUNIT_EXPECT_EQ(test, le64_to_cpu(sb->system_extents), 2ULL);
	KUNIT_EXPECT_EQ(test, plx_superblock_check(sb, T_NR_BLOCKS), PLX_OK);
	/* A device larger than the store is fine. */
	KUNIT_EXPECT_EQ(test, plx_superblock_check(sb, T_NR_BLOCKS + 5000),
			PLX_OK);

	plx_geometry_init(&g, sb, t_ext_type);
	KUNIT_EXPECT_EQ(test, g.nr_blocks, T_NR_BLOCKS);
	KUNIT_EXPECT_EQ(test, g.extent_blocks, T_EXT_BLOCKS);
	KUNIT_EXPECT_EQ(test, g.extent_shift, 10U);
	KUNIT_EXPECT_EQ(test, g.nr_extents, T_NR_EXT);
	KUNIT_EXPECT_EQ(test, g.system_extents, 2ULL);
	KUNIT_EXPECT_EQ(test, g.bitmap_blocks, 1ULL);
	KUNIT_EXPECT_EQ(test, g.catalogue_start, 1ULL);
	KUNIT_EXPECT_EQ(test, g.catalogue_blocks, 1ULL);
	KUNIT_EXPECT_EQ(test, g.registry_start, 2ULL);
	KUNIT_EXPECT_EQ(test, g.registry_slots, T_SLOTS);
	KUNIT_EXPECT_MEMEQ(test, g.uuid, t_uuid, sizeof(t_uuid));
	KUNIT_EXPECT_PTR_EQ(test, g.ext_type, &t_ext_type[0]);

	/* Other shapes that format can produce. */
	sb = build_sb(test, 4, 1ULL << 16, 1024);
	KUNIT_EXPECT_EQ(test, plx_superblock_check(sb, 4ULL << 16), PLX_OK);
	sb = build_sb(test, 300, PLX_MAX_EXTENT_BLOCKS,
		      PLX_MAX_REGISTRY_SLOTS);
	KUNIT_EXPECT_EQ(test, le64_to_cpu(sb->catalogue_blocks), 3ULL);
	KUNIT_EXPECT_EQ(test,
			plx_superblock_check(sb, 300 * PLX_MAX_EXTENT_BLOCKS),
			PLX_OK);
}

static void superblock_header_test(struct kunit *test)
{
	struct plx_superblock *sb = build_sb(test, T_NR_EXT, T_EXT_BLOCKS,
					     T_SLOTS);

	/* Damage without resealing: the crc catches it. */
	sb->nr_extents = cpu_to_le64(T_NR_EXT + 1);
	KUNIT_EXPECT_EQ(test, plx_superblock_check(sb, T_NR_BLOCKS),
			PLX_E_CRC);

	sb = build_sb(test, T_NR_EXT, T_EXT_BLOCKS, T_SLOTS);
	plx_block_seal(sb, PLX_MAGIC_CATALOGUE, PLX_SUPERBLOCK_BLOCK, t_uuid);
	KUNIT_EXPECT_EQ(test, plx_superblock_check(sb, T_NR_BLOCKS),
			PLX_E_MAGIC);

	/* A superblock copied to block 1 is not a superblock for block 0. */
	sb = build_sb(test, T_NR_EXT, T_EXT_BLOCKS, T_SLOTS);
	plx_block_seal(sb, PLX_MAGIC_SUPER, 1, t_uuid);
	KUNIT_EXPECT_EQ(test, plx_superblock_check(sb, T_NR_BLOCKS),
			PLX_E_BLOCKNR);
}

struct sb_case {
	const char *desc;
	size_t off;		/* field to overwrite */
	size_t len;		/* 4 or 8 bytes, little-endian */
	u64 val;
	enum plx_err want;
};

/* Overwrite one little-endian 32- or 64-bit field of the superblock. */
#define SB_CASE32(_desc, _field, _val, _want) {				\
	.desc = _desc,							\
	.off = offsetof(struct plx_superblock, _field),			\
	.len = sizeof(__le32),						\
	.val = _val,							\
	.want = _want,							\
}

#define SB_CASE(_desc, _field, _val, _want) {				\
	.desc = _desc,							\
	.off = offsetof(struct plx_superblock, _field),			\
	.len = sizeof(__le64),						\
	.val = _val,							\
	.want = _want,							\
}

/*
 * Single-field changes to the standard superblock (8 x 1024 blocks, 1024
 * slots: catalogue 1 block at 1, registry at 2, 2 system extents).
 */
static const struct sb_case sb_cases[] = {
	SB_CASE("unchanged", nr_extents, T_NR_EXT, PLX_OK),
	SB_CASE32("version 0", version, 0, PLX_E_VERSION),
	SB_CASE32("version 2", version, PLX_FORMAT_VERSION + 1, PLX_E_VERSION),
	SB_CASE("unknown compat feature", features_compat, 1, PLX_OK),
	SB_CASE("unknown ro_compat feature", features_ro_compat, 1,
		PLX_E_FEATURES),
	SB_CASE("unknown incompat feature", features_incompat, 1ULL << 63,
		PLX_E_FEATURES),
	SB_CASE32("block size 512", block_size, 512, PLX_E_GEOMETRY),
	SB_CASE32("block size 8192", block_size, 8192, PLX_E_GEOMETRY),
	SB_CASE("extent not a power of two", extent_blocks, 1536,
		PLX_E_GEOMETRY),
	SB_CASE("extent zero", extent_blocks, 0, PLX_E_GEOMETRY),
	SB_CASE("extent below minimum", extent_blocks,
		PLX_MIN_EXTENT_BLOCKS / 2, PLX_E_GEOMETRY),
	SB_CASE("extent above maximum", extent_blocks,
		PLX_MAX_EXTENT_BLOCKS * 2, PLX_E_GEOMETRY),
	SB_CASE("nr_extents overflows", nr_extents,
		(1ULL << 62) / T_EXT_BLOCKS + 1, PLX_E_GEOMETRY),
	SB_CASE("nr_extents huge", nr_extents, U64_MAX, PLX_E_GEOMETRY),
	SB_CASE("nr_blocks one more", nr_blocks, T_NR_BLOCKS + 1,
		PLX_E_GEOMETRY),
	SB_CASE("nr_blocks one less", nr_blocks, T_NR_BLOCKS - 1,
		PLX_E_GEOMETRY),
	SB_CASE("no registry slots", registry_slots, 0, PLX_E_GEOMETRY),
	SB_CASE("too many registry slots", registry_slots,
		PLX_MAX_REGISTRY_SLOTS + 1, PLX_E_GEOMETRY),
	SB_CASE("catalogue too long", catalogue_blocks, 2, PLX_E_GEOMETRY),
	SB_CASE("catalogue empty", catalogue_blocks, 0, PLX_E_GEOMETRY),
	SB_CASE("catalogue at 0", catalogue_start, 0, PLX_E_GEOMETRY),
	SB_CASE("catalogue at 2", catalogue_start, 2, PLX_E_GEOMETRY),
	SB_CASE("registry overlaps catalogue", registry_start, 1,
		PLX_E_GEOMETRY),
	SB_CASE("registry after a gap", registry_start, 3, PLX_E_GEOMETRY),
	SB_CASE("system area too small", system_extents, 1, PLX_E_GEOMETRY),
	SB_CASE("system area too large", system_extents, 3, PLX_E_GEOMETRY),
	SB_CASE("fewer slots, same system area", registry_slots, 1023,
		PLX_OK),
	SB_CASE("fewer slots, stale system area", registry_slots, 1022,
		PLX_E_GEOMETRY),
};

static void sb_case_desc(const struct sb_case *c, char *desc)
{
	strscpy(desc, c->desc, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(sb_geometry, sb_cases, sb_case_desc);

static void superblock_field_test(struct kunit *test)
{
	const struct sb_case *c = test->param_value;
	struct plx_superblock *sb = build_sb(test, T_NR_EXT, T_EXT_BLOCKS,
					     T_SLOTS);
	u8 *field = (u8 *)sb + c->off;

	KUNIT_ASSERT_EQ(test, plx_superblock_check(sb, T_NR_BLOCKS), PLX_OK);
	if (c->len == sizeof(__le64)) {
		__le64 v = cpu_to_le64(c->val);

		memcpy(field, &v, sizeof(v));
	} else {
		__le32 v = cpu_to_le32(c->val);

		KUNIT_ASSERT_EQ(test, c->len, sizeof(__le32));
		memcpy(field, &v, sizeof(v));
	}
	reseal_sb(sb);
	KUNIT_EXPECT_EQ(test, plx_superblock_check(sb, T_NR_BLOCKS), c->want);
}

static void superblock_min_extents_test(struct kunit *test)
{
	struct plx_superblock *sb;

	/* Two system extents need one data and one metadata extent more. */
	sb = build_sb(test, 4, T_EXT_BLOCKS, T_SLOTS);
	KUNIT_EXPECT_EQ(test, plx_superblock_check(sb, 4 * T_EXT_BLOCKS),
			PLX_OK);
	sb = build_sb(test, 3, T_EXT_BLOCKS, T_SLOTS);
	KUNIT_EXPECT_EQ(test, plx_superblock_check(sb, 3 * T_EXT_BLOCKS),
			PLX_E_GEOMETRY);
	sb = build_sb(test, 2, T_EXT_BLOCKS, T_SLOTS);
	KUNIT_EXPECT_EQ(test, plx_superblock_check(sb, 2 * T_EXT_BLOCKS),
			PLX_E_GEOMETRY);
	sb = build_sb(test, 0, T_EXT_BLOCKS, T_SLOTS);
	KUNIT_EXPECT_EQ(test, plx_superblock_check(sb, T_NR_BLOCKS),
			PLX_E_GEOMETRY);
}

static void superblock_device_small_test(struct kunit *test)
{
	struct plx_superblock *sb = build_sb(test, T_NR_EXT, T_EXT_BLOCKS,
					     T_SLOTS);

	KUNIT_EXPECT_EQ(test, plx_superblock_check(sb, T_NR_BLOCKS), PLX_OK);
	KUNIT_EXPECT_EQ(test, plx_superblock_check(sb, T_NR_BLOCKS - 1),
			PLX_E_DEVICE_SMALL);
	KUNIT_EXPECT_EQ(test, plx_superblock_check(sb, 0), PLX_E_DEVICE_SMALL);
}

/* ---- Catalogue -------------------------------------------------------- */

static struct plx_catalogue_block *build_catalogue(struct kunit *test)
{
	struct plx_catalogue_block *cb = alloc_block(test);
	unsigned int i;

	for (i = 0; i < T_NR_EXT; i++) {
		cb->entries[i].type = t_ext_type[i];
		cb->entries[i].generation = cpu_to_le64(i * 3);
		if (t_ext_type[i] != PLX_EXT_SYSTEM)
			cb->entries[i].used = cpu_to_le32(i);
	}
	cb->entries[2].holder = cpu_to_le32(17);
	plx_block_seal(cb, PLX_MAGIC_CATALOGUE, 1, t_uuid);
	return cb;
}

static void catalogue_test(struct kunit *test)
{
	struct plx_catalogue_block *cb;
	struct plx_geometry g;

	init_geometry(test, &g);
	cb = build_catalogue(test);
	KUNIT_EXPECT_EQ(test, plx_catalogue_check(&g, cb, 0), PLX_OK);
	/* Block index 1 lives at block 2, not where this one was sealed. */
	KUNIT_EXPECT_EQ(test, plx_catalogue_check(&g, cb, 1), PLX_E_BLOCKNR);

#define CAT_EXPECT(stmt, want) do {					\
		cb = build_catalogue(test);				\
		stmt;							\
		plx_block_seal(cb, PLX_MAGIC_CATALOGUE, 1, t_uuid);	\
		KUNIT_EXPECT_EQ_MSG(test, plx_catalogue_check(&g, cb, 0), \
				    want, "%s", #stmt);			\
	} while (0)

	CAT_EXPECT(cb->entries[1].type = PLX_EXT_DATA, PLX_E_CATALOGUE_FIELD);
	CAT_EXPECT(cb->entries[2].type = PLX_EXT_SYSTEM,
		   PLX_E_CATALOGUE_FIELD);
	CAT_EXPECT(cb->entries[4].type = PLX_EXT_METADATA + 1,
		   PLX_E_CATALOGUE_FIELD);
	CAT_EXPECT(cb->entries[4].type = PLX_EXT_METADATA, PLX_OK);
	CAT_EXPECT(cb->entries[3].flags = 1, PLX_E_CATALOGUE_FIELD);
	CAT_EXPECT(cb->entries[3].used = cpu_to_le32(T_EXT_BLOCKS), PLX_OK);
	CAT_EXPECT(cb->entries[3].used = cpu_to_le32(T_EXT_BLOCKS + 1),
		   PLX_E_CATALOGUE_FIELD);
	/* Entries past nr_extents must be all zero. */
	CAT_EXPECT(cb->entries[T_NR_EXT].type = PLX_EXT_DATA,
		   PLX_E_CATALOGUE_FIELD);
	CAT_EXPECT(cb->entries[PLX_CATALOGUE_PER_BLOCK - 1].generation =
		   cpu_to_le64(1), PLX_E_CATALOGUE_FIELD);
	CAT_EXPECT(cb->entries[T_NR_EXT + 1].holder = cpu_to_le32(1),
		   PLX_E_CATALOGUE_FIELD);
	CAT_EXPECT(cb->entries[T_NR_EXT + 2].used = cpu_to_le32(1),
		   PLX_E_CATALOGUE_FIELD);
#undef CAT_EXPECT

	cb = build_catalogue(test);
	plx_block_seal(cb, PLX_MAGIC_CATALOGUE, 1, t_other_uuid);
	KUNIT_EXPECT_EQ(test, plx_catalogue_check(&g, cb, 0), PLX_E_UUID);
}

/* ---- Addresses and bitmaps -------------------------------------------- */

static void check_addr_test(struct kunit *test)
{
	struct plx_geometry g;

	init_geometry(test, &g);

	/* range */
	KUNIT_EXPECT_EQ(test, plx_check_addr(&g, T_NR_BLOCKS, PLX_EXT_DATA),
			PLX_E_RANGE);
	KUNIT_EXPECT_EQ(test, plx_check_addr(&g, U64_MAX, PLX_EXT_DATA),
			PLX_E_RANGE);
	KUNIT_EXPECT_EQ(test,
			plx_check_addr(&g, T_NR_BLOCKS - 1, PLX_EXT_METADATA),
			PLX_E_EXTENT_TYPE);	/* extent 7 is free */
	KUNIT_EXPECT_EQ(test, plx_check_addr(&g, T_NR_BLOCKS - 1, PLX_EXT_FREE),
			PLX_OK);

	/* system area: superblock, catalogue, registry, rest of extent 1 */
	KUNIT_EXPECT_EQ(test, plx_check_addr(&g, 0, PLX_EXT_METADATA),
			PLX_E_SYSTEM_AREA);
	KUNIT_EXPECT_EQ(test, plx_check_addr(&g, 1, PLX_EXT_METADATA),
			PLX_E_SYSTEM_AREA);
	KUNIT_EXPECT_EQ(test, plx_check_addr(&g, 1025, PLX_EXT_METADATA),
			PLX_E_SYSTEM_AREA);
	KUNIT_EXPECT_EQ(test, plx_check_addr(&g, 2047, PLX_EXT_DATA),
			PLX_E_SYSTEM_AREA);

	/* bitmap: the first block of every non-system extent */
	KUNIT_EXPECT_EQ(test, plx_check_addr(&g, 2048, PLX_EXT_DATA),
			PLX_E_BITMAP_AREA);
	KUNIT_EXPECT_EQ(test, plx_check_addr(&g, 3072, PLX_EXT_METADATA),
			PLX_E_BITMAP_AREA);
	KUNIT_EXPECT_EQ(test, plx_check_addr(&g, 7 * 1024, PLX_EXT_FREE),
			PLX_E_BITMAP_AREA);

	/* type */
	KUNIT_EXPECT_EQ(test, plx_check_addr(&g, T_DATA_BLOCK, PLX_EXT_DATA),
			PLX_OK);
	KUNIT_EXPECT_EQ(test, plx_check_addr(&g, 3071, PLX_EXT_DATA), PLX_OK);
	KUNIT_EXPECT_EQ(test,
			plx_check_addr(&g, T_DATA_BLOCK, PLX_EXT_METADATA),
			PLX_E_EXTENT_TYPE);
	KUNIT_EXPECT_EQ(test,
			plx_check_addr(&g, T_META_BLOCK, PLX_EXT_METADATA),
			PLX_OK);
	KUNIT_EXPECT_EQ(test, plx_check_addr(&g, T_META_BLOCK, PLX_EXT_DATA),
			PLX_E_EXTENT_TYPE);
	KUNIT_EXPECT_EQ(test, plx_check_addr(&g, 4097, PLX_EXT_DATA),
			PLX_E_EXTENT_TYPE);	/* extent 4 is free */
	KUNIT_EXPECT_EQ(test, plx_check_addr(&g, 5 * 1024 + 1, PLX_EXT_DATA),
			PLX_OK);
	KUNIT_EXPECT_EQ(test,
			plx_check_addr(&g, 6 * 1024 + 1023, PLX_EXT_METADATA),
			PLX_OK);
}

static void check_addr_big_extent_test(struct kunit *test)
{
	static const u8 types[4] = {
		PLX_EXT_SYSTEM, PLX_EXT_DATA, PLX_EXT_METADATA, PLX_EXT_DATA,
	};
	const u64 eb = 1ULL << 16;
	struct plx_superblock *sb = build_sb(test, 4, eb, T_SLOTS);
	struct plx_geometry g;

	KUNIT_ASSERT_EQ(test, plx_superblock_check(sb, 4 * eb), PLX_OK);
	plx_geometry_init(&g, sb, types);
	KUNIT_ASSERT_EQ(test, g.system_extents, 1ULL);
	KUNIT_ASSERT_EQ(test, g.bitmap_blocks, 3ULL);

	KUNIT_EXPECT_EQ(test, plx_check_addr(&g, eb - 1, PLX_EXT_DATA),
			PLX_E_SYSTEM_AREA);
	KUNIT_EXPECT_EQ(test, plx_check_addr(&g, eb, PLX_EXT_DATA),
			PLX_E_BITMAP_AREA);
	KUNIT_EXPECT_EQ(test, plx_check_addr(&g, eb + 2, PLX_EXT_DATA),
			PLX_E_BITMAP_AREA);
	KUNIT_EXPECT_EQ(test, plx_check_addr(&g, eb + 3, PLX_EXT_DATA),
			PLX_OK);
	KUNIT_EXPECT_EQ(test, plx_check_addr(&g, 2 * eb + 2, PLX_EXT_METADATA),
			PLX_E_BITMAP_AREA);
	KUNIT_EXPECT_EQ(test, plx_check_addr(&g, 2 * eb + 3, PLX_EXT_METADATA),
			PLX_OK);
	KUNIT_EXPECT_EQ(test, plx_check_addr(&g, 4 * eb - 1, PLX_EXT_DATA),
			PLX_OK);
	KUNIT_EXPECT_EQ(test, plx_check_addr(&g, 4 * eb, PLX_EXT_DATA),
			PLX_E_RANGE);
}

static void bitmap_locate_test(struct kunit *test)
{
	const u64 eb = 1ULL << 16;
	struct plx_superblock *sb;
	struct plx_geometry g;
	u64 bb;
	u32 bit;

	init_geometry(test, &g);
	plx_bitmap_locate(&g, T_DATA_BLOCK, &bb, &bit);
	KUNIT_EXPECT_EQ(test, bb, 2048ULL);
	KUNIT_EXPECT_EQ(test, bit, 1U);
	plx_bitmap_locate(&g, 3071, &bb, &bit);
	KUNIT_EXPECT_EQ(test, bb, 2048ULL);
	KUNIT_EXPECT_EQ(test, bit, 1023U);
	/* The bitmap block marks itself: bit 0 of its own extent. */
	plx_bitmap_locate(&g, 3072, &bb, &bit);
	KUNIT_EXPECT_EQ(test, bb, 3072ULL);
	KUNIT_EXPECT_EQ(test, bit, 0U);

	/* Extents of 2^16 blocks need 3 bitmap blocks of 32512 bits. */
	sb = build_sb(test, 4, eb, T_SLOTS);
	KUNIT_ASSERT_EQ(test, plx_superblock_check(sb, 4 * eb), PLX_OK);
	plx_geometry_init(&g, sb, t_ext_type);
	plx_bitmap_locate(&g, eb + PLX_BITS_PER_BITMAP - 1, &bb, &bit);
	KUNIT_EXPECT_EQ(test, bb, eb);
	KUNIT_EXPECT_EQ(test, bit, PLX_BITS_PER_BITMAP - 1);
	plx_bitmap_locate(&g, eb + PLX_BITS_PER_BITMAP + 5, &bb, &bit);
	KUNIT_EXPECT_EQ(test, bb, eb + 1);
	KUNIT_EXPECT_EQ(test, bit, 5U);
	plx_bitmap_locate(&g, 3 * eb + eb - 1, &bb, &bit);
	KUNIT_EXPECT_EQ(test, bb, 3 * eb + 2);
	KUNIT_EXPECT_EQ(test, bit, (u32)(eb - 1 - 2 * PLX_BITS_PER_BITMAP));
}

/* ---- Names ------------------------------------------------------------ */

static enum plx_err name_in_buf(const char *s, size_t slen, size_t buflen)
{
	char buf[PLX_NAME_LEN] = {};

	if (slen > buflen || buflen > sizeof(buf))
		return PLX_E_MAX;	/* a mistake in the test itself */
	memcpy(buf, s, slen);
	return plx_name_check(buf, buflen);
}

#define NAME(s)		name_in_buf(s, sizeof(s) - 1, PLX_NAME_LEN)

static void name_check_test(struct kunit *test)
{
	char full[PLX_NAME_LEN];

	KUNIT_EXPECT_EQ(test, NAME("disk"), PLX_OK);
	KUNIT_EXPECT_EQ(test, NAME("vm-01.root_Disk"), PLX_OK);
	KUNIT_EXPECT_EQ(test, NAME("1a"), PLX_OK);
	KUNIT_EXPECT_EQ(test, NAME("."), PLX_OK);
	KUNIT_EXPECT_EQ(test, NAME("-"), PLX_OK);

	KUNIT_EXPECT_EQ(test, NAME(""), PLX_E_NAME);
	KUNIT_EXPECT_EQ(test, NAME("7"), PLX_E_NAME);
	KUNIT_EXPECT_EQ(test, NAME("12345"), PLX_E_NAME);
	KUNIT_EXPECT_EQ(test, NAME("a b"), PLX_E_NAME);
	KUNIT_EXPECT_EQ(test, NAME("a/b"), PLX_E_NAME);
	KUNIT_EXPECT_EQ(test, NAME("a:b"), PLX_E_NAME);
	KUNIT_EXPECT_EQ(test, NAME("snap@1"), PLX_E_NAME);
	KUNIT_EXPECT_EQ(test, NAME("tab\there"), PLX_E_NAME);
	KUNIT_EXPECT_EQ(test, NAME("caf\xc3\xa9"), PLX_E_NAME);
	/* Padding must be all NUL: nothing may hide after the name. */
	KUNIT_EXPECT_EQ(test, NAME("abc\0x"), PLX_E_NAME);
	KUNIT_EXPECT_EQ(test, name_in_buf("abc\0\0\0\0x", 8, PLX_NAME_LEN),
			PLX_E_NAME);
	KUNIT_EXPECT_EQ(test, plx_name_check("abc", 0), PLX_E_NAME);

	/* Longest name: len - 1 characters and a NUL. */
	memset(full, 'n', sizeof(full));
	full[sizeof(full) - 1] = '\0';
	KUNIT_EXPECT_EQ(test, plx_name_check(full, sizeof(full)), PLX_OK);
	full[sizeof(full) - 1] = 'n';
	KUNIT_EXPECT_EQ(test, plx_name_check(full, sizeof(full)), PLX_E_NAME);
	/* The same check with the label length. */
	KUNIT_EXPECT_EQ(test, name_in_buf("label", 5, PLX_LABEL_LEN), PLX_OK);
	KUNIT_EXPECT_EQ(test, plx_name_check(full, PLX_LABEL_LEN), PLX_E_NAME);
}

/* ---- VDI records ------------------------------------------------------ */

static struct plx_vdi_record *build_vdi(struct kunit *test,
					const struct plx_geometry *g)
{
	struct plx_vdi_record *v = alloc_block(test);

	v->id = cpu_to_le64(T_VDI_ID);
	v->size = cpu_to_le64(1ULL << 30);
	v->height = 2;
	v->root = cpu_to_le64(T_META_BLOCK);
	v->ctime_ns = cpu_to_le64(1700000000000000000ULL);
	v->generation = cpu_to_le64(5);
	strscpy(v->name, "guest-root", sizeof(v->name));
	plx_block_seal(v, PLX_MAGIC_VDI, plx_registry_block(g, T_VDI_ID),
		       t_uuid);
	return v;
}

static void vdi_good_test(struct kunit *test)
{
	struct plx_vdi_record *v;
	struct plx_geometry g;

	init_geometry(test, &g);
	KUNIT_EXPECT_EQ(test, plx_registry_block(&g, 1), 2ULL);
	KUNIT_EXPECT_EQ(test, plx_registry_block(&g, T_SLOTS), 1025ULL);

	v = build_vdi(test, &g);
	KUNIT_EXPECT_EQ(test, plx_vdi_check(&g, v, T_VDI_ID), PLX_OK);

#define VDI_OK(stmt) do {						\
		v = build_vdi(test, &g);				\
		stmt;							\
		plx_block_seal(v, PLX_MAGIC_VDI,			\
			       plx_registry_block(&g, T_VDI_ID), t_uuid); \
		KUNIT_EXPECT_EQ_MSG(test, plx_vdi_check(&g, v, T_VDI_ID), \
				    PLX_OK, "%s", #stmt);		\
	} while (0)

	VDI_OK(v->flags = cpu_to_le64(PLX_VDI_DELETED));
	VDI_OK(v->size = cpu_to_le64(SZ_BLOCK); v->height = 1);
	VDI_OK(v->size = cpu_to_le64(SZ_BLOCK); v->height = 4);
	VDI_OK(v->size = cpu_to_le64(256ULL << 40); v->height = 4);
	VDI_OK(v->snaplog_head = cpu_to_le64(T_META_BLOCK + 1);
	       v->snap_seq = cpu_to_le64(4));
	VDI_OK(v->parent_vdi = cpu_to_le64(1);
	       v->parent_seq = cpu_to_le64(2);
	       v->parent_log = cpu_to_le64(T_META_BLOCK + 2));
	VDI_OK(v->parent_vdi = cpu_to_le64(T_SLOTS);
	       v->parent_seq = cpu_to_le64(1);
	       v->parent_log = cpu_to_le64(6 * 1024 + 1));
#undef VDI_OK
}

static void vdi_bad_test(struct kunit *test)
{
	struct plx_vdi_record *v;
	struct plx_geometry g;

	init_geometry(test, &g);

	/* Header: another slot's block, a stale uuid, plain corruption. */
	v = build_vdi(test, &g);
	KUNIT_EXPECT_EQ(test, plx_vdi_check(&g, v, T_VDI_ID + 1),
			PLX_E_BLOCKNR);
	plx_block_seal(v, PLX_MAGIC_VDI, plx_registry_block(&g, T_VDI_ID),
		       t_other_uuid);
	KUNIT_EXPECT_EQ(test, plx_vdi_check(&g, v, T_VDI_ID), PLX_E_UUID);
	v = build_vdi(test, &g);
	v->size = cpu_to_le64(2ULL << 30);
	KUNIT_EXPECT_EQ(test, plx_vdi_check(&g, v, T_VDI_ID), PLX_E_CRC);
	/* A free slot: no VDI magic. */
	memset(v, 0, SZ_BLOCK);
	KUNIT_EXPECT_EQ(test, plx_vdi_check(&g, v, T_VDI_ID), PLX_E_MAGIC);
	/*
	 * Ids outside the registry, even with a record sealed where such an
	 * id would put it (id 0: the last catalogue block).
	 */
	v = build_vdi(test, &g);
	v->id = 0;
	plx_block_seal(v, PLX_MAGIC_VDI, plx_registry_block(&g, 0), t_uuid);
	KUNIT_EXPECT_EQ(test, plx_vdi_check(&g, v, 0), PLX_E_VDI_ID);
	v = build_vdi(test, &g);
	v->id = cpu_to_le64(T_SLOTS + 1);
	plx_block_seal(v, PLX_MAGIC_VDI, plx_registry_block(&g, T_SLOTS + 1),
		       t_uuid);
	KUNIT_EXPECT_EQ(test, plx_vdi_check(&g, v, T_SLOTS + 1), PLX_E_VDI_ID);

#define VDI_BAD(stmt, want) do {					\
		v = build_vdi(test, &g);				\
		stmt;							\
		plx_block_seal(v, PLX_MAGIC_VDI,			\
			       plx_registry_block(&g, T_VDI_ID), t_uuid); \
		KUNIT_EXPECT_EQ_MSG(test, plx_vdi_check(&g, v, T_VDI_ID), \
				    want, "%s", #stmt);			\
	} while (0)

	VDI_BAD(v->id = cpu_to_le64(T_VDI_ID + 1), PLX_E_VDI_ID);
	VDI_BAD(v->id = 0, PLX_E_VDI_ID);
	VDI_BAD(v->flags = cpu_to_le64(2), PLX_E_VDI_FIELD);
	VDI_BAD(v->flags = cpu_to_le64(1ULL << 63), PLX_E_VDI_FIELD);

	VDI_BAD(v->height = 0, PLX_E_HEIGHT);
	VDI_BAD(v->height = PLX_MAX_HEIGHT + 1, PLX_E_HEIGHT);
	VDI_BAD(v->height = 255, PLX_E_HEIGHT);

	VDI_BAD(v->size = 0, PLX_E_SIZE);
	VDI_BAD(v->size = cpu_to_le64((1ULL << 30) - 512), PLX_E_SIZE);
	VDI_BAD(v->size = cpu_to_le64((1ULL << 30) + SZ_BLOCK), PLX_E_SIZE);
	VDI_BAD(v->size = cpu_to_le64((2ULL << 20) + SZ_BLOCK); v->height = 1,
		PLX_E_SIZE);

	VDI_BAD(memset(v->name, 0, sizeof(v->name)), PLX_E_NAME);
	VDI_BAD(strscpy(v->name, "42", sizeof(v->name)), PLX_E_NAME);
	VDI_BAD(strscpy(v->name, "bad name", sizeof(v->name)), PLX_E_NAME);
	VDI_BAD(memset(v->name, 'x', sizeof(v->name)), PLX_E_NAME);

	VDI_BAD(v->root = 0, PLX_E_SYSTEM_AREA);
	VDI_BAD(v->root = cpu_to_le64(T_NR_BLOCKS), PLX_E_RANGE);
	VDI_BAD(v->root = cpu_to_le64(3072), PLX_E_BITMAP_AREA);
	VDI_BAD(v->root = cpu_to_le64(T_DATA_BLOCK), PLX_E_EXTENT_TYPE);
	VDI_BAD(v->root = cpu_to_le64(PLX_PTR_RO | T_META_BLOCK), PLX_E_RANGE);

	/* The snapshot log head and sequence number come together. */
	VDI_BAD(v->snaplog_head = cpu_to_le64(T_META_BLOCK + 1),
		PLX_E_VDI_FIELD);
	VDI_BAD(v->snap_seq = cpu_to_le64(1), PLX_E_VDI_FIELD);
	VDI_BAD(v->snaplog_head = cpu_to_le64(T_DATA_BLOCK);
		v->snap_seq = cpu_to_le64(1), PLX_E_EXTENT_TYPE);
	VDI_BAD(v->snaplog_head = cpu_to_le64(5);
		v->snap_seq = cpu_to_le64(1), PLX_E_SYSTEM_AREA);

	/* Clone parents. */
	VDI_BAD(v->parent_vdi = cpu_to_le64(T_VDI_ID);
		v->parent_seq = cpu_to_le64(1);
		v->parent_log = cpu_to_le64(T_META_BLOCK + 2), PLX_E_VDI_FIELD);
	VDI_BAD(v->parent_vdi = cpu_to_le64(T_SLOTS + 1);
		v->parent_seq = cpu_to_le64(1);
		v->parent_log = cpu_to_le64(T_META_BLOCK + 2), PLX_E_VDI_FIELD);
	VDI_BAD(v->parent_vdi = cpu_to_le64(1);
		v->parent_log = cpu_to_le64(T_META_BLOCK + 2), PLX_E_VDI_FIELD);
	VDI_BAD(v->parent_vdi = cpu_to_le64(1);
		v->parent_seq = cpu_to_le64(1), PLX_E_SYSTEM_AREA);
	VDI_BAD(v->parent_vdi = cpu_to_le64(1);
		v->parent_seq = cpu_to_le64(1);
		v->parent_log = cpu_to_le64(T_DATA_BLOCK), PLX_E_EXTENT_TYPE);
	VDI_BAD(v->parent_seq = cpu_to_le64(1), PLX_E_VDI_FIELD);
	VDI_BAD(v->parent_log = cpu_to_le64(T_META_BLOCK + 2),
		PLX_E_VDI_FIELD);
#undef VDI_BAD
}

/* ---- Snapshot logs ---------------------------------------------------- */

#define T_LOG_BLOCK	(6 * 1024 + 10ULL)	/* in metadata extent 6 */

static struct plx_snaplog_block *build_snaplog(struct kunit *test)
{
	struct plx_snaplog_block *l = alloc_block(test);

	l->vdi = cpu_to_le64(T_VDI_ID);
	l->count = cpu_to_le32(2);
	l->rec[0].root = cpu_to_le64(T_META_BLOCK + 3);
	l->rec[0].timestamp_ns = cpu_to_le64(1700000000000000000ULL);
	l->rec[0].seq = cpu_to_le64(5);
	strscpy(l->rec[0].label, "before-upgrade", sizeof(l->rec[0].label));
	l->rec[1].root = cpu_to_le64(T_META_BLOCK + 4);
	l->rec[1].seq = cpu_to_le64(6);
	/* rec[1] has no label, which is allowed. */
	plx_block_seal(l, PLX_MAGIC_SNAPLOG, T_LOG_BLOCK, t_uuid);
	return l;
}

static void snaplog_good_test(struct kunit *test)
{
	struct plx_snaplog_block *l;
	struct plx_geometry g;
	unsigned int i;

	init_geometry(test, &g);
	l = build_snaplog(test);
	KUNIT_EXPECT_EQ(test, plx_snaplog_check(&g, l, T_LOG_BLOCK, T_VDI_ID),
			PLX_OK);

#define LOG_OK(stmt) do {						\
		l = build_snaplog(test);				\
		stmt;							\
		plx_block_seal(l, PLX_MAGIC_SNAPLOG, T_LOG_BLOCK, t_uuid); \
		KUNIT_EXPECT_EQ_MSG(test,				\
				    plx_snaplog_check(&g, l, T_LOG_BLOCK, \
						      T_VDI_ID),	\
				    PLX_OK, "%s", #stmt);		\
	} while (0)

	LOG_OK(l->prev = cpu_to_le64(T_META_BLOCK + 9));
	/* A block that names itself as older would make a walk endless. */
	l = build_snaplog(test);
	l->prev = cpu_to_le64(T_LOG_BLOCK);
	plx_block_seal(l, PLX_MAGIC_SNAPLOG, T_LOG_BLOCK, t_uuid);
	KUNIT_EXPECT_EQ(test, plx_snaplog_check(&g, l, T_LOG_BLOCK, T_VDI_ID),
			PLX_E_SNAPLOG_FIELD);
	LOG_OK(l->count = cpu_to_le32(1));
	LOG_OK(l->rec[1].flags = cpu_to_le32(PLX_SNAP_DELETED));
	/* Slots past count are not looked at. */
	LOG_OK(l->rec[2].seq = cpu_to_le64(99);
	       l->rec[2].flags = cpu_to_le32(0x80);
	       l->rec[2].label[0] = ' ');
#undef LOG_OK

	/* A full block. */
	l = build_snaplog(test);
	l->count = cpu_to_le32(PLX_SNAPS_PER_LOG);
	for (i = 0; i < PLX_SNAPS_PER_LOG; i++) {
		l->rec[i].root = cpu_to_le64(T_META_BLOCK + i);
		l->rec[i].seq = cpu_to_le64(100 + i);
	}
	plx_block_seal(l, PLX_MAGIC_SNAPLOG, T_LOG_BLOCK, t_uuid);
	KUNIT_EXPECT_EQ(test, plx_snaplog_check(&g, l, T_LOG_BLOCK, T_VDI_ID),
			PLX_OK);
	/* ... whose last record must obey the rules too. */
	l->rec[PLX_SNAPS_PER_LOG - 1].seq = cpu_to_le64(1000);
	plx_block_seal(l, PLX_MAGIC_SNAPLOG, T_LOG_BLOCK, t_uuid);
	KUNIT_EXPECT_EQ(test, plx_snaplog_check(&g, l, T_LOG_BLOCK, T_VDI_ID),
			PLX_E_SNAPLOG_FIELD);
}

static void snaplog_bad_test(struct kunit *test)
{
	struct plx_snaplog_block *l;
	struct plx_geometry g;

	init_geometry(test, &g);

	l = build_snaplog(test);
	KUNIT_EXPECT_EQ(test,
			plx_snaplog_check(&g, l, T_LOG_BLOCK + 1, T_VDI_ID),
			PLX_E_BLOCKNR);
	plx_block_seal(l, PLX_MAGIC_VDI, T_LOG_BLOCK, t_uuid);
	KUNIT_EXPECT_EQ(test, plx_snaplog_check(&g, l, T_LOG_BLOCK, T_VDI_ID),
			PLX_E_MAGIC);
	plx_block_seal(l, PLX_MAGIC_SNAPLOG, T_LOG_BLOCK, t_other_uuid);
	KUNIT_EXPECT_EQ(test, plx_snaplog_check(&g, l, T_LOG_BLOCK, T_VDI_ID),
			PLX_E_UUID);
	/* Another VDI's log. */
	l = build_snaplog(test);
	KUNIT_EXPECT_EQ(test,
			plx_snaplog_check(&g, l, T_LOG_BLOCK, T_VDI_ID + 1),
			PLX_E_SNAPLOG_FIELD);

#define LOG_BAD(stmt, want) do {					\
		l = build_snaplog(test);				\
		stmt;							\
		plx_block_seal(l, PLX_MAGIC_SNAPLOG, T_LOG_BLOCK, t_uuid); \
		KUNIT_EXPECT_EQ_MSG(test,				\
				    plx_snaplog_check(&g, l, T_LOG_BLOCK, \
						      T_VDI_ID),	\
				    want, "%s", #stmt);			\
	} while (0)

	LOG_BAD(l->vdi = 0, PLX_E_SNAPLOG_FIELD);
	LOG_BAD(l->count = 0, PLX_E_SNAPLOG_FIELD);
	LOG_BAD(l->count = cpu_to_le32(PLX_SNAPS_PER_LOG + 1),
		PLX_E_SNAPLOG_FIELD);
	LOG_BAD(l->count = cpu_to_le32(U32_MAX), PLX_E_SNAPLOG_FIELD);
	/* count 3 takes in the zeroed rec[2]: seq 0. */
	LOG_BAD(l->count = cpu_to_le32(3), PLX_E_SNAPLOG_FIELD);
	LOG_BAD(l->prev = cpu_to_le64(T_DATA_BLOCK), PLX_E_EXTENT_TYPE);
	LOG_BAD(l->prev = cpu_to_le64(3), PLX_E_SYSTEM_AREA);
	LOG_BAD(l->prev = cpu_to_le64(T_NR_BLOCKS + 3), PLX_E_RANGE);
	LOG_BAD(l->rec[0].seq = 0, PLX_E_SNAPLOG_FIELD);
	LOG_BAD(l->rec[1].seq = cpu_to_le64(5), PLX_E_SNAPLOG_FIELD);
	LOG_BAD(l->rec[1].seq = cpu_to_le64(7), PLX_E_SNAPLOG_FIELD);
	LOG_BAD(l->rec[1].seq = cpu_to_le64(4), PLX_E_SNAPLOG_FIELD);
	LOG_BAD(l->rec[0].flags = cpu_to_le32(2), PLX_E_SNAPLOG_FIELD);
	LOG_BAD(l->rec[1].flags = cpu_to_le32(1U << 31), PLX_E_SNAPLOG_FIELD);
	LOG_BAD(strscpy(l->rec[0].label, "has space", PLX_LABEL_LEN),
		PLX_E_NAME);
	LOG_BAD(strscpy(l->rec[1].label, "2024", PLX_LABEL_LEN), PLX_E_NAME);
	LOG_BAD(memset(l->rec[0].label, 'z', PLX_LABEL_LEN), PLX_E_NAME);
	LOG_BAD(l->rec[0].root = cpu_to_le64(T_DATA_BLOCK), PLX_E_EXTENT_TYPE);
	LOG_BAD(l->rec[1].root = 0, PLX_E_SYSTEM_AREA);
	LOG_BAD(l->rec[1].root = cpu_to_le64(6 * 1024), PLX_E_BITMAP_AREA);
#undef LOG_BAD
}

/* Local cache log: a 1000-block log, a superblock and two records. */
#define T_LOG_BLOCKS	1000ULL

static struct plx_log_super *good_log_super(struct kunit *test)
{
	struct plx_log_super *ls = alloc_block(test);

	ls->version = cpu_to_le32(PLX_LOG_VERSION);
	ls->nr_blocks = cpu_to_le64(T_LOG_BLOCKS);
	ls->head_seq = cpu_to_le64(1);
	ls->head_block = cpu_to_le64(PLX_LOG_FIRST_BLOCK);
	ls->open_gen = cpu_to_le64(1);
	plx_block_seal(ls, PLX_MAGIC_LOG_SUPER, 0, t_uuid);
	KUNIT_ASSERT_EQ(test, plx_log_super_check(ls, T_LOG_BLOCKS), PLX_OK);
	return ls;
}

static void log_super_test(struct kunit *test)
{
	struct plx_log_super *ls = good_log_super(test);

	KUNIT_EXPECT_EQ(test, plx_log_super_check(ls, T_LOG_BLOCKS - 1),
			PLX_E_DEVICE_SMALL);
	ls->head_block = cpu_to_le64(T_LOG_BLOCKS);
	plx_block_update_crc(ls);
	KUNIT_EXPECT_EQ(test, plx_log_super_check(ls, T_LOG_BLOCKS),
			PLX_E_LOG_FIELD);
	ls = good_log_super(test);
	ls->head_block = 0;
	plx_block_update_crc(ls);
	KUNIT_EXPECT_EQ(test, plx_log_super_check(ls, T_LOG_BLOCKS),
			PLX_E_LOG_FIELD);
	ls = good_log_super(test);
	ls->head_seq = 0;
	plx_block_update_crc(ls);
	KUNIT_EXPECT_EQ(test, plx_log_super_check(ls, T_LOG_BLOCKS),
			PLX_E_LOG_FIELD);
	ls = good_log_super(test);
	ls->nr_blocks = cpu_to_le64(PLX_LOG_MIN_BLOCKS - 1);
	plx_block_update_crc(ls);
	KUNIT_EXPECT_EQ(test, plx_log_super_check(ls, T_LOG_BLOCKS),
			PLX_E_GEOMETRY);
	ls = good_log_super(test);
	ls->version = cpu_to_le32(PLX_LOG_VERSION + 1);
	plx_block_update_crc(ls);
	KUNIT_EXPECT_EQ(test, plx_log_super_check(ls, T_LOG_BLOCKS),
			PLX_E_VERSION);
	ls = good_log_super(test);
	ls->flags = cpu_to_le32(1);
	plx_block_update_crc(ls);
	KUNIT_EXPECT_EQ(test, plx_log_super_check(ls, T_LOG_BLOCKS),
			PLX_E_FEATURES);
	ls = good_log_super(test);
	plx_block_seal(ls, PLX_MAGIC_LOG_RECORD, 0, t_uuid);
	KUNIT_EXPECT_EQ(test, plx_log_super_check(ls, T_LOG_BLOCKS),
			PLX_E_MAGIC);
}

/* A write record at block 10: three blocks with data, one discarded. */
static struct plx_log_record *good_log_write(struct kunit *test)
{
	struct plx_log_record *r = alloc_block(test);

	r->seq = cpu_to_le64(5);
	r->open_gen = cpu_to_le64(2);
	r->type = cpu_to_le32(PLX_LOG_WRITE);
	r->nr_entries = cpu_to_le32(4);
	r->data_blocks = cpu_to_le32(3);
	r->next_block = cpu_to_le64(14);
	r->entries[0] = cpu_to_le64(7);
	r->entries[1] = cpu_to_le64(8 | PLX_LOG_DISCARD);
	r->entries[2] = cpu_to_le64(9);
	r->entries[3] = cpu_to_le64(100000);
	plx_block_seal(r, PLX_MAGIC_LOG_RECORD, 10, t_uuid);
	KUNIT_ASSERT_EQ(test, plx_log_record_check(r, 10, t_uuid, T_LOG_BLOCKS),
			PLX_OK);
	KUNIT_EXPECT_EQ(test, plx_log_record_blocks(r), 4ULL);
	return r;
}

static void log_record_test(struct kunit *test)
{
	struct plx_log_record *r = good_log_write(test);

	KUNIT_EXPECT_EQ(test, plx_log_record_check(r, 11, t_uuid, T_LOG_BLOCKS),
			PLX_E_BLOCKNR);
	KUNIT_EXPECT_EQ(test, plx_log_record_check(r, 10, t_other_uuid,
						   T_LOG_BLOCKS),
			PLX_E_UUID);
	/* The data would run past the end of the log. */
	KUNIT_EXPECT_EQ(test, plx_log_record_check(r, 10, t_uuid, 13),
			PLX_E_LOG_FIELD);
	/* Entries with data must match the data blocks. */
	r->data_blocks = cpu_to_le32(4);
	plx_block_update_crc(r);
	KUNIT_EXPECT_EQ(test, plx_log_record_check(r, 10, t_uuid, T_LOG_BLOCKS),
			PLX_E_LOG_FIELD);
	/* next_block inside the record itself. */
	r = good_log_write(test);
	r->next_block = cpu_to_le64(12);
	plx_block_update_crc(r);
	KUNIT_EXPECT_EQ(test, plx_log_record_check(r, 10, t_uuid, T_LOG_BLOCKS),
			PLX_E_LOG_FIELD);
	/* A wrap to the first block is allowed; the superblock is not. */
	r->next_block = cpu_to_le64(PLX_LOG_FIRST_BLOCK);
	plx_block_update_crc(r);
	KUNIT_EXPECT_EQ(test, plx_log_record_check(r, 10, t_uuid, T_LOG_BLOCKS),
			PLX_OK);
	r->next_block = 0;
	plx_block_update_crc(r);
	KUNIT_EXPECT_EQ(test, plx_log_record_check(r, 10, t_uuid, T_LOG_BLOCKS),
			PLX_E_LOG_FIELD);
	r = good_log_write(test);
	r->seq = 0;
	plx_block_update_crc(r);
	KUNIT_EXPECT_EQ(test, plx_log_record_check(r, 10, t_uuid, T_LOG_BLOCKS),
			PLX_E_LOG_FIELD);
	r = good_log_write(test);
	r->type = cpu_to_le32(3);
	plx_block_update_crc(r);
	KUNIT_EXPECT_EQ(test, plx_log_record_check(r, 10, t_uuid, T_LOG_BLOCKS),
			PLX_E_LOG_FIELD);
	r = good_log_write(test);
	r->nr_entries = cpu_to_le32(PLX_LOG_MAX_ENTRIES + 1);
	plx_block_update_crc(r);
	KUNIT_EXPECT_EQ(test, plx_log_record_check(r, 10, t_uuid, T_LOG_BLOCKS),
			PLX_E_LOG_FIELD);
}

static void log_marker_test(struct kunit *test)
{
	struct plx_log_record *r = alloc_block(test);

	r->seq = cpu_to_le64(6);
	r->open_gen = cpu_to_le64(2);
	r->type = cpu_to_le32(PLX_LOG_SNAPSHOT);
	r->next_block = cpu_to_le64(15);
	r->snap_seq = cpu_to_le64(3);
	strscpy(r->label, "nightly", sizeof(r->label));
	plx_block_seal(r, PLX_MAGIC_LOG_RECORD, 14, t_uuid);
	KUNIT_ASSERT_EQ(test, plx_log_record_check(r, 14, t_uuid, T_LOG_BLOCKS),
			PLX_OK);
	r->label[0] = '/';
	plx_block_update_crc(r);
	KUNIT_EXPECT_EQ(test, plx_log_record_check(r, 14, t_uuid, T_LOG_BLOCKS),
			PLX_E_NAME);
	r->label[0] = 'n';
	r->snap_seq = 0;
	plx_block_update_crc(r);
	KUNIT_EXPECT_EQ(test, plx_log_record_check(r, 14, t_uuid, T_LOG_BLOCKS),
			PLX_E_LOG_FIELD);
	r->snap_seq = cpu_to_le64(3);
	r->data_blocks = cpu_to_le32(1);
	plx_block_update_crc(r);
	KUNIT_EXPECT_EQ(test, plx_log_record_check(r, 14, t_uuid, T_LOG_BLOCKS),
			PLX_E_LOG_FIELD);
}

static struct kunit_case parallax_format_cases[] = {
	KUNIT_CASE(crc32c_vectors_test),
	KUNIT_CASE(seal_verify_ok_test),
	KUNIT_CASE(verify_bad_magic_test),
	KUNIT_CASE(verify_bad_crc_test),
	KUNIT_CASE(verify_bad_blocknr_test),
	KUNIT_CASE(verify_bad_uuid_test),
	KUNIT_CASE(strerror_test),
	KUNIT_CASE(sizing_helpers_test),
	KUNIT_CASE(height_for_size_test),
	KUNIT_CASE(radix_helpers_test),
	KUNIT_CASE(superblock_ok_test),
	KUNIT_CASE(superblock_header_test),
	KUNIT_CASE_PARAM(superblock_field_test, sb_geometry_gen_params),
	KUNIT_CASE(superblock_min_extents_test),
	KUNIT_CASE(superblock_device_small_test),
	KUNIT_CASE(catalogue_test),
	KUNIT_CASE(check_addr_test),
	KUNIT_CASE(check_addr_big_extent_test),
	KUNIT_CASE(bitmap_locate_test),
	KUNIT_CASE(name_check_test),
	KUNIT_CASE(vdi_good_test),
	KUNIT_CASE(vdi_bad_test),
	KUNIT_CASE(snaplog_good_test),
	KUNIT_CASE(snaplog_bad_test),
	KUNIT_CASE(log_super_test),
	KUNIT_CASE(log_record_test),
	KUNIT_CASE(log_marker_test),
	{}
};

static struct kunit_suite parallax_format_suite = {
	.name = "parallax_format",
	.test_cases = parallax_format_cases,
};

kunit_test_suite(parallax_format_suite);

MODULE_DESCRIPTION("KUnit tests for the dm-parallax on-disk format");
MODULE_LICENSE("GPL");
MODULE_IMPORT_NS(EXPORTED_FOR_KUNIT_TESTING);
