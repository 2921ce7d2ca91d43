/* SPDX-License-Identifier: GPL-2.0 */
/*
 * On-disk format of a dm-parallax blockstore.
 *
 * This header is the only definition of the format.  The kernel target and
 * the userspace library (userspace/lib) both include it, and both compile
 * parallax-format.c, which holds the validation code, so that a block that
 * one side rejects the other rejects too.  Documentation/format.rst
 * describes every byte; keep the two in step.
 *
 * All multi-byte fields are little-endian.  Block addresses are 64-bit
 * block numbers (not byte offsets) counted from the start of the device.
 */
#ifndef PARALLAX_FORMAT_H
#define PARALLAX_FORMAT_H

#ifdef __KERNEL__
#include <linux/bits.h>
#include <linux/build_bug.h>
#include <linux/types.h>
#else
#include <assert.h>
#include "kcompat.h"
#endif

#define PLX_FORMAT_VERSION	1

#define PLX_BLOCK_SHIFT		12
#define PLX_BLOCK_SIZE		BIT(PLX_BLOCK_SHIFT)
#define PLX_SECTOR_SHIFT	9
#define PLX_SECTORS_PER_BLOCK	(PLX_BLOCK_SIZE >> PLX_SECTOR_SHIFT)

/*
 * Every checksummed block starts with this header.  The crc covers bytes
 * 4..4095 of the block, so it protects the magic, the block's own address
 * (which catches misdirected writes and pointers to the wrong block) and
 * the store's UUID (which catches stale blocks left by an earlier format).
 * Radix nodes and data blocks have no header.
 */
struct plx_block_header {
	__le32 crc;
	__le32 magic;
	__le64 blocknr;
	__u8 uuid[16];
} __packed;

#define PLX_HEADER_SIZE		32

/* Magic numbers: ASCII "PLX" and a letter for the kind of block. */
#define PLX_MAGIC_SUPER		0x53584c50U	/* "PLXS" */
#define PLX_MAGIC_CATALOGUE	0x43584c50U	/* "PLXC" */
#define PLX_MAGIC_BITMAP	0x42584c50U	/* "PLXB" */
#define PLX_MAGIC_VDI		0x56584c50U	/* "PLXV" */
#define PLX_MAGIC_SNAPLOG	0x4c584c50U	/* "PLXL" */

/*
 * Superblock, in block 0.  It is kept under 512 bytes so that a rewrite
 * (which only the lock manager ever makes: its address and the registry
 * lock) is atomic on any device.
 */
#define PLX_LOCKD_ADDR_LEN	64
#define PLX_CLUSTER_KEY_LEN	32

struct plx_superblock {
	struct plx_block_header hdr;
	__le32 version;
	__le32 block_size;
	__le64 features_compat;
	__le64 features_ro_compat;
	__le64 features_incompat;
	__le64 nr_blocks;		/* blocks covered by extents */
	__le64 extent_blocks;		/* blocks per extent, a power of two */
	__le64 nr_extents;
	__le64 system_extents;		/* extents 0..n-1 are the system area */
	__le64 catalogue_start;
	__le64 catalogue_blocks;
	__le64 registry_start;
	__le64 registry_slots;		/* VDI ids are 1..registry_slots */
	__le64 ctime_ns;
	char lockd_addr[PLX_LOCKD_ADDR_LEN];	/* "host:port", NUL padded */
	__u8 cluster_key[PLX_CLUSTER_KEY_LEN];
	__le32 registry_holder;		/* host creating/deleting VDIs; 0 = none */
	__le32 reserved;
	__le64 registry_generation;	/* bumped by every grant and every fence */
} __packed;

#define PLX_SUPERBLOCK_BLOCK	0

/*
 * No feature flags are defined yet.  A reader refuses unknown incompat and
 * ro_compat flags (there is no read-only fallback yet) and ignores
 * unknown compat flags, as their name says it may.
 */
#define PLX_FEATURES_COMPAT_SUPP	0ULL
#define PLX_FEATURES_RO_COMPAT_SUPP	0ULL
#define PLX_FEATURES_INCOMPAT_SUPP	0ULL

/* Extent sizes: 4 MiB for tests up to 64 GiB; 1 GiB by default. */
#define PLX_MIN_EXTENT_BLOCKS	BIT_ULL(10)
#define PLX_MAX_EXTENT_BLOCKS	BIT_ULL(24)
#define PLX_DEFAULT_EXTENT_BLOCKS BIT_ULL(18)
#define PLX_DEFAULT_REGISTRY_SLOTS 1024
#define PLX_MAX_REGISTRY_SLOTS	BIT_ULL(20)

/* Extent catalogue: one entry per extent, packed into checksummed blocks. */
enum plx_extent_type {
	PLX_EXT_FREE = 0,
	PLX_EXT_SYSTEM = 1,
	PLX_EXT_DATA = 2,
	PLX_EXT_METADATA = 3,
};

struct plx_extent_entry {
	__u8 type;			/* enum plx_extent_type */
	__u8 flags;			/* none defined; must be zero */
	__le16 reserved;
	__le32 holder;			/* host id of the lock holder; 0 = none */
	__le64 generation;		/* bumped by every grant and every fence */
	__le32 used;			/* allocated blocks, advisory */
	__le32 bitmap_holder;		/* host holding the GC bitmap lock */
	__le64 reserved3;
} __packed;

#define PLX_CATALOGUE_PER_BLOCK	\
	((PLX_BLOCK_SIZE - PLX_HEADER_SIZE) / sizeof(struct plx_extent_entry))

struct plx_catalogue_block {
	struct plx_block_header hdr;
	struct plx_extent_entry entries[PLX_CATALOGUE_PER_BLOCK];
} __packed;

/*
 * Allocation bitmap: the first blocks of every data, metadata and free
 * extent.  Bit n (LSB first within each byte) of the extent's bitmap is
 * block n of the extent; the bitmap blocks themselves are marked in use.
 */
#define PLX_BITMAP_BYTES	(PLX_BLOCK_SIZE - PLX_HEADER_SIZE)
#define PLX_BITS_PER_BITMAP	(PLX_BITMAP_BYTES * 8)

struct plx_bitmap_block {
	struct plx_block_header hdr;
	__u8 bits[PLX_BITMAP_BYTES];
} __packed;

/*
 * VDI registry: VDI id n lives in block registry_start + n - 1.  A slot
 * whose block carries no VDI magic is free.  The record is kept under 512
 * bytes so that the single write which commits a snapshot is atomic.
 */
#define PLX_NAME_LEN		64
#define PLX_LABEL_LEN		32

#define PLX_VDI_DELETED		BIT_ULL(0)
#define PLX_VDI_FLAGS_KNOWN	PLX_VDI_DELETED

struct plx_vdi_record {
	struct plx_block_header hdr;
	__le64 id;
	__le64 flags;
	__le64 size;			/* bytes, a multiple of the block size */
	__le64 root;			/* live radix root, a writable link */
	__le64 snaplog_head;		/* newest snapshot-log block; 0 = none */
	__le64 snap_seq;		/* sequence number of the newest snapshot */
	__le64 parent_vdi;		/* cloned from snapshot parent_vdi@parent_seq */
	__le64 parent_seq;
	__le64 parent_log;		/* log block holding that snapshot record */
	__le64 ctime_ns;
	__le64 generation;		/* bumped by every write of this record */
	__le64 lock_generation;
	__le32 holder;			/* host id of the VDI lock holder; 0 = none */
	__u8 height;			/* radix tree levels, 1..PLX_MAX_HEIGHT */
	__u8 lock_flags;		/* PLX_VDI_LOCK_* */
	__u8 reserved[2];
	char name[PLX_NAME_LEN];
} __packed;

/*
 * Set by the lock manager while the VDI's holder runs it with a local
 * write cache whose log may hold writes the store has not seen
 * (Documentation/lock-protocol.rst, "Local write caches").  Once a
 * reserved byte, so it is not checked: older tools carry it over.
 */
#define PLX_VDI_LOCK_CACHE_DIRTY	BIT(0)

/*
 * Snapshot log: a chain of blocks, newest first, each holding up to
 * PLX_SNAPS_PER_LOG records in sequence order.  A new record is appended by
 * writing a fresh copy of the head block (never by rewriting it in place,
 * so a torn write cannot lose older records); the VDI record's switch to
 * the new head and new root is the snapshot's commit point.
 */
#define PLX_SNAP_DELETED	BIT(0)
#define PLX_SNAP_FLAGS_KNOWN	PLX_SNAP_DELETED

struct plx_snap_record {
	__le64 root;			/* radix root, immutable from now on */
	__le64 timestamp_ns;		/* CLOCK_REALTIME when taken */
	__le64 seq;			/* 1, 2, 3 ... within the VDI */
	__le32 flags;
	__le32 reserved;
	char label[PLX_LABEL_LEN];
} __packed;

#define PLX_SNAPLOG_FIXED	64
#define PLX_SNAPS_PER_LOG	\
	((PLX_BLOCK_SIZE - PLX_SNAPLOG_FIXED) / sizeof(struct plx_snap_record))

struct plx_snaplog_block {
	struct plx_block_header hdr;
	__le64 vdi;			/* owning VDI id */
	__le64 prev;			/* older log block; 0 = oldest */
	__le32 count;			/* records in use */
	__le32 reserved;
	__le64 reserved2;
	struct plx_snap_record rec[PLX_SNAPS_PER_LOG];
} __packed;

/*
 * Radix tree: a node is one block of 512 little-endian pointers.  Bit 63
 * marks a read-only link (the subtree is shared with a snapshot and must
 * be copied before it is written); an entry of 0 means sparse (reads as
 * zeros).  Bit 63 with address 0 is invalid, not sparse.
 * Leaves of the tree are data blocks.  A tree of height h maps
 * 512^h blocks: 1 level 2 MiB, 2 levels 1 GiB, 3 levels 512 GiB,
 * 4 levels 256 TiB.
 */
#define PLX_NODE_SHIFT		9
#define PLX_PTRS_PER_NODE	BIT(PLX_NODE_SHIFT)
#define PLX_PTR_RO		BIT_ULL(63)
#define PLX_PTR_ADDR_MASK	(PLX_PTR_RO - 1)
#define PLX_MAX_HEIGHT		4

struct plx_radix_node {
	__le64 ptr[PLX_PTRS_PER_NODE];
};

/*
 * Local write cache (Documentation/local-cache.rst): a ring of write
 * records on a host's own disk, drained to the store in order.  It is a
 * separate device with its own UUID; every block carries the standard
 * header, with that UUID and its address within the log device.
 *
 * Block 0 is the log superblock, rewritten in place (under 512 bytes so
 * the rewrite is atomic) only to move the drained point forward.  Blocks
 * 1..nr_blocks-1 are the ring.  A record is a header block followed by
 * its data blocks.  Replay starts at head_block expecting head_seq and
 * follows next_block while each header is valid, carries the next
 * sequence number, has an open generation no older than the record before
 * it, and its data matches data_crc.  The generation is bumped whenever
 * the log is opened, so a record left from before a crash beyond the
 * replayed tail can never be taken for a new one.
 */
#define PLX_MAGIC_LOG_SUPER	0x4a584c50U	/* "PLXJ" */
#define PLX_MAGIC_LOG_RECORD	0x52584c50U	/* "PLXR" */
#define PLX_LOG_VERSION		1
#define PLX_LOG_MIN_BLOCKS	64
#define PLX_LOG_FIRST_BLOCK	1

struct plx_log_super {
	struct plx_block_header hdr;	/* uuid: the log's own */
	__le32 version;
	__le32 flags;			/* none defined; must be zero */
	__le64 nr_blocks;		/* log size, this block included */
	__u8 store_uuid[16];		/* store of the VDI it serves; 0 = none */
	__le64 vdi;			/* VDI whose records it may hold; 0 = none */
	__le64 head_seq;		/* first record that may not be drained */
	__le64 head_block;		/* where that record starts */
	__le64 open_gen;		/* bumped each time the log is opened */
	__le64 ctime_ns;
} __packed;

enum plx_log_type {
	PLX_LOG_WRITE = 1,		/* entries, then their data blocks */
	PLX_LOG_SNAPSHOT = 2,		/* a snapshot taken at this point */
};

/* An entry is a virtual block; a discarded one has no data block. */
#define PLX_LOG_DISCARD		BIT_ULL(63)
#define PLX_LOG_FIXED		128
#define PLX_LOG_MAX_ENTRIES	((PLX_BLOCK_SIZE - PLX_LOG_FIXED) / sizeof(__le64))
#define PLX_LOG_MAX_DATA	256	/* data blocks in one record */

struct plx_log_record {
	struct plx_block_header hdr;	/* blocknr: the header's own address */
	__le64 seq;			/* one more than the record before */
	__le64 open_gen;		/* the log's open_gen when written */
	__le32 type;			/* enum plx_log_type */
	__le32 nr_entries;
	__le32 data_blocks;		/* data blocks after this header */
	__le32 data_crc;		/* crc32c of those blocks */
	__le64 next_block;		/* where the next record starts */
	__le64 snap_seq;		/* SNAPSHOT: the sequence it will take */
	char label[PLX_LABEL_LEN];	/* SNAPSHOT: its label, NUL padded */
	__u8 reserved[PLX_LOG_FIXED - 112];
	__le64 entries[PLX_LOG_MAX_ENTRIES];
} __packed;

static_assert(sizeof(struct plx_block_header) == PLX_HEADER_SIZE);
static_assert(sizeof(struct plx_superblock) <= 512);
static_assert(sizeof(struct plx_extent_entry) == 32);
static_assert(sizeof(struct plx_catalogue_block) == PLX_BLOCK_SIZE);
static_assert(sizeof(struct plx_bitmap_block) == PLX_BLOCK_SIZE);
static_assert(sizeof(struct plx_vdi_record) <= 512);
static_assert(sizeof(struct plx_snap_record) == 64);
static_assert(sizeof(struct plx_snaplog_block) == PLX_BLOCK_SIZE);
static_assert(sizeof(struct plx_log_super) <= 512);
static_assert(sizeof(struct plx_log_record) == PLX_BLOCK_SIZE);
static_assert(sizeof(struct plx_radix_node) == PLX_BLOCK_SIZE);

/* ---- Shared code (parallax-format.c) ---------------------------------- */

/* Why a block or a pointer was rejected; plx_strerror() names it. */
enum plx_err {
	PLX_OK = 0,
	PLX_E_MAGIC,
	PLX_E_CRC,
	PLX_E_BLOCKNR,
	PLX_E_UUID,
	PLX_E_VERSION,
	PLX_E_FEATURES,
	PLX_E_GEOMETRY,
	PLX_E_DEVICE_SMALL,
	PLX_E_RANGE,
	PLX_E_SYSTEM_AREA,
	PLX_E_BITMAP_AREA,
	PLX_E_EXTENT_TYPE,
	PLX_E_VDI_ID,
	PLX_E_VDI_FIELD,
	PLX_E_HEIGHT,
	PLX_E_SIZE,
	PLX_E_NAME,
	PLX_E_SNAPLOG_FIELD,
	PLX_E_CATALOGUE_FIELD,
	PLX_E_LOG_FIELD,
	PLX_E_MAX
};

const char *plx_strerror(enum plx_err err);

/*
 * Geometry of an open store, derived once from a validated superblock.
 * ext_type points at a caller-owned array of nr_extents types taken from
 * the catalogue; pointer checks consult it.
 */
struct plx_geometry {
	u64 nr_blocks;
	u64 extent_blocks;
	u32 extent_shift;
	u64 nr_extents;
	u64 system_extents;
	u64 bitmap_blocks;		/* per data/metadata/free extent */
	u64 catalogue_start;
	u64 catalogue_blocks;
	u64 registry_start;
	u64 registry_slots;
	u8 uuid[16];
	const u8 *ext_type;
};

u32 plx_crc32c(const void *buf, size_t len);
void plx_block_seal(void *block, u32 magic, u64 blocknr, const u8 *uuid);
void plx_block_update_crc(void *block);
enum plx_err plx_block_verify(const void *block, u32 magic, u64 blocknr,
			      const u8 *uuid);

u64 plx_bitmap_blocks_per_extent(u64 extent_blocks);
u64 plx_catalogue_blocks_for(u64 nr_extents);
u64 plx_system_extents_for(u64 extent_blocks, u64 catalogue_blocks,
			   u64 registry_slots);

enum plx_err plx_superblock_check(const struct plx_superblock *sb,
				  u64 device_blocks);
void plx_geometry_init(struct plx_geometry *g,
		       const struct plx_superblock *sb, const u8 *ext_type);

enum plx_err plx_catalogue_check(const struct plx_geometry *g,
				 const struct plx_catalogue_block *cb,
				 u64 index);
enum plx_err plx_check_addr(const struct plx_geometry *g, u64 blocknr,
			    enum plx_extent_type want);
void plx_bitmap_locate(const struct plx_geometry *g, u64 blocknr,
		       u64 *bitmap_blocknr, u32 *bit);

u64 plx_registry_block(const struct plx_geometry *g, u64 vdi_id);
enum plx_err plx_vdi_check(const struct plx_geometry *g,
			   const struct plx_vdi_record *v, u64 vdi_id);
enum plx_err plx_snaplog_check(const struct plx_geometry *g,
			       const struct plx_snaplog_block *l,
			       u64 blocknr, u64 vdi_id);
enum plx_err plx_name_check(const char *name, size_t len);
enum plx_err plx_log_super_check(const struct plx_log_super *s,
				 u64 device_blocks);
enum plx_err plx_log_record_check(const struct plx_log_record *r, u64 blocknr,
				  const u8 *log_uuid, u64 nr_blocks);
u64 plx_log_record_blocks(const struct plx_log_record *r);

void plx_node_copy_ro(struct plx_radix_node *dst,
		      const struct plx_radix_node *src);
u8 plx_height_for_size(u64 bytes);
u64 plx_max_size_for_height(u8 height);

/* Index into the node at @level (0 = the node whose entries are data). */
static inline unsigned int plx_radix_index(u64 vblock, unsigned int level)
{
	return (vblock >> (PLX_NODE_SHIFT * level)) & (PLX_PTRS_PER_NODE - 1);
}

static inline u64 plx_ptr_addr(u64 ptr)
{
	return ptr & PLX_PTR_ADDR_MASK;
}

static inline bool plx_ptr_is_ro(u64 ptr)
{
	return ptr & PLX_PTR_RO;
}

#endif /* PARALLAX_FORMAT_H */
