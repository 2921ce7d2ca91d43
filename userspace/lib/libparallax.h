/* SPDX-License-Identifier: GPL-2.0 */
/*
 * libparallax: offline access to a dm-parallax blockstore from userspace.
 *
 * The on-disk format is defined only in dm-parallax/parallax-format.h;
 * this library reads and writes it with pread/pwrite and validates every
 * metadata block with the shared code in parallax-format.c before using
 * it.  The offline tool allocates as host id 0: it never touches an
 * extent whose catalogue entry names a holder.
 *
 * Errors: functions returning int return 0 on success and -1 on failure;
 * functions returning a pointer return NULL on failure.  Either way
 * plx_errmsg() then describes what went wrong (naming the block where
 * a block is at fault) and plx_errkind() says whether the caller asked for
 * something impossible (PLX_EK_USAGE) or the store is at fault / the
 * object does not exist (PLX_EK_STORE).  Nothing is written to the
 * device before every argument has been validated.
 *
 * Not thread-safe; one process at a time (the kernel target must not
 * have the store open for writing while this library modifies it).
 */
#ifndef LIBPARALLAX_H
#define LIBPARALLAX_H

#include <stdio.h>
#include "parallax-format.h"

/* ---- Errors ------------------------------------------------------------ */

enum plx_errkind {
	PLX_EK_NONE = 0,
	PLX_EK_USAGE,		/* bad argument: exit status 2 */
	PLX_EK_STORE,		/* store problem, not found, I/O: status 1 */
};

const char *plx_errmsg(void);
enum plx_errkind plx_errkind(void);
void plx_seterr(enum plx_errkind kind, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- Numbers and sizes (util.c) ---------------------------------------- */

/* Non-empty and only 0-9: an id or sequence number rather than a name. */
bool plx_all_digits(const char *s);
/* Decimal u64, no sign, no junk.  Returns -1 (usage error) if malformed. */
int plx_parse_u64(const char *s, u64 *out);
/* Bytes with optional binary suffix K, M, G, T (KiB..TiB, "KiB" also ok). */
int plx_parse_size(const char *s, u64 *out);
/* "1.5 GiB" style for humans; returns buf. */
char *plx_human_size(u64 bytes, char *buf, size_t len);
/* Copy a NUL-padded on-disk string of at most len bytes into out[len+1]. */
void plx_copy_name(char *out, const char *disk, size_t len);
u64 plx_now_ns(void);
/*
 * This host's id: @opt if given, else $PARALLAX_HOST_ID, else the first
 * word of /etc/parallax/host-id, else 1.  -1 (usage error) if it is not
 * in 1..2^32-1.
 */
int plx_host_id(const char *opt, u32 *out);

/* ---- Opening a store (store.c) ----------------------------------------- */

#define PLX_BITMAP_DIRTY	1

/* In-memory state of one non-system extent's allocation bitmap. */
struct plx_extent_bm {
	struct plx_bitmap_block *blk;	/* bitmap_blocks blocks, or NULL */
	u8 *dirty;			/* per bitmap block */
	enum plx_err err;		/* first verify error, PLX_OK if fine */
	u64 err_block;
	u64 hint;			/* next block offset to try */
};

enum plx_slot_state {
	PLX_SLOT_FREE = 0,		/* no VDI magic */
	PLX_SLOT_VDI,			/* valid record (maybe deleted) */
	PLX_SLOT_BAD,			/* VDI magic but fails plx_vdi_check */
};

struct plx_slot {
	enum plx_slot_state state;
	enum plx_err err;		/* why PLX_SLOT_BAD */
	struct plx_vdi_record rec;	/* valid when state == PLX_SLOT_VDI */
};

struct plx_store {
	int fd;
	bool writable;
	const char *path;
	u64 device_blocks;
	struct plx_superblock sb;
	struct plx_geometry geo;
	u8 *ext_type;				/* nr_extents entries */
	struct plx_catalogue_block *cat;	/* catalogue_blocks blocks */
	enum plx_err *cat_err;			/* per catalogue block */
	u8 *cat_dirty;
	struct plx_slot *slots;			/* index = VDI id - 1 */
	struct plx_extent_bm *bm;		/* per extent, lazily loaded */
	u64 cur_ext[4];				/* allocator cursors per type */
	/*
	 * Cluster mode (set by the caller after taking locks from the lock
	 * manager): allocate only from extents held by alloc_holder, modify
	 * only VDIs unheld or held by alloc_holder, and never write the
	 * catalogue, which the lock manager owns.
	 */
	bool shared;
	u32 alloc_holder;
};

#define PLX_OPEN_RDONLY	0
#define PLX_OPEN_RDWR	1

/*
 * Open a file or block device.  With @exclusive a block device is opened
 * O_EXCL, so it is refused while mounted or attached (format uses this).
 */
int plx_open_device(const char *path, bool write, bool exclusive);
/* Size of a file or block device in whole blocks. */
int plx_device_blocks(int fd, u64 *blocks);

/*
 * Open and validate: the superblock must pass plx_superblock_check() or
 * the open fails.  Bad catalogue blocks and bad VDI records are recorded
 * (cat_err[], slots[].state) so that check can report them; operations
 * that need them fail.  plx_store_sane() fails if any catalogue block
 * is bad, which every modifying command calls first.
 */
struct plx_store *plx_open(const char *path, int flags);
/*
 * A writable open waits (flock) while another process of this host has
 * the store open for writing; this is called once before such a wait.
 */
extern void (*plx_open_wait_hook)(const char *path);
void plx_close(struct plx_store *s);
int plx_store_sane(struct plx_store *s);

/* Write dirty catalogue, then bitmap blocks, then fsync. */
int plx_sync(struct plx_store *s);
int plx_fsync(struct plx_store *s);

/*
 * Raw block I/O; errors name the block.  Every write to an open store
 * goes through plx_write_block() (plx_format() writes on its own), where
 * the PARALLAX_CRASH_AFTER_WRITES test hook (store.c) can simulate a crash.
 */
int plx_read_block(struct plx_store *s, u64 blocknr, void *buf);
/* The same on a bare descriptor (the lock manager keeps no plx_store). */
int plx_fd_read_block(int fd, u64 device_blocks, u64 blocknr, void *buf);
int plx_fd_write_block(int fd, u64 blocknr, const void *buf);
int plx_write_block(struct plx_store *s, u64 blocknr, const void *buf);
/* Read, seal-check against the store's UUID, report failures. */
int plx_read_meta(struct plx_store *s, u64 blocknr, u32 magic, void *buf);
/* Seal a metadata block and write it. */
int plx_write_meta(struct plx_store *s, u64 blocknr, u32 magic, void *buf);
/*
 * Read @count blocks from the device itself: the kernel target writes with
 * bios that bypass the page cache, so whatever is cached for the range is
 * dropped first.  For readers of a store that is in use.
 */
int plx_read_fresh(struct plx_store *s, u64 blocknr, u64 count, void *buf);
/* Read every VDI record again (fresh, as above) into s->slots. */
int plx_registry_reload(struct plx_store *s);

/* ---- Formatting (format.c) --------------------------------------------- */

struct plx_format_opts {
	u64 extent_blocks;		/* 0 = PLX_DEFAULT_EXTENT_BLOCKS */
	u64 registry_slots;		/* 0 = PLX_DEFAULT_REGISTRY_SLOTS */
	bool force;			/* overwrite an existing blockstore */
};

int plx_format(const char *path, const struct plx_format_opts *o,
	       struct plx_superblock *out_sb);

/* ---- Allocation (alloc.c) ---------------------------------------------- */

/* Load (and verify) the bitmap of extent @ext; NULL with error if bad. */
struct plx_extent_bm *plx_bitmap_load(struct plx_store *s, u64 ext);
bool plx_bitmap_test(struct plx_store *s, u64 blocknr);
/*
 * Allocate one block of @type (PLX_EXT_DATA or PLX_EXT_METADATA) from an
 * unheld extent of that type, typing a free extent if needed.  The bitmap
 * and catalogue change in memory only; plx_sync() writes them, which must
 * happen before anything durable links the block.
 */
int plx_alloc(struct plx_store *s, enum plx_extent_type type, u64 *blocknr);

/* ---- VDIs and names (vdi.c) -------------------------------------------- */

/* The valid record of VDI @id, or NULL (error set) if free/bad/out of range. */
struct plx_vdi_record *plx_vdi_get(struct plx_store *s, u64 id);
bool plx_vdi_live(const struct plx_vdi_record *v);
/* The lock manager's cache-dirty mark (PLX_VDI_LOCK_CACHE_DIRTY). */
static inline bool plx_vdi_cache_dirty(const struct plx_vdi_record *v)
{
	return v->lock_flags & PLX_VDI_LOCK_CACHE_DIRTY;
}

static inline void plx_vdi_set_cache_dirty(struct plx_vdi_record *v,
					   bool dirty)
{
	if (dirty)
		v->lock_flags |= PLX_VDI_LOCK_CACHE_DIRTY;
	else
		v->lock_flags &= (u8)~PLX_VDI_LOCK_CACHE_DIRTY;
}

/* Seal and write @v to its registry slot (no fsync); updates s->slots. */
int plx_vdi_write(struct plx_store *s, struct plx_vdi_record *v);
/* "7" or "name" -> id of a live VDI. */
int plx_resolve_vdi(struct plx_store *s, const char *arg, u64 *id);

int plx_vdi_create(struct plx_store *s, const char *name, u64 size, u64 *id);
int plx_vdi_delete(struct plx_store *s, u64 id);

/* ---- Snapshots (snapshot.c) -------------------------------------------- */

/* One snapshot record as found in a VDI's log chain. */
struct plx_snap {
	u64 vdi;
	u64 log_block;			/* chain block holding the record */
	unsigned int index;		/* record index in that block */
	struct plx_snap_record rec;	/* copy of the on-disk (LE) record */
};

struct plx_snaplist {
	u64 count;
	struct plx_snap *snaps;		/* oldest first: snaps[i].seq == i+1 */
	u64 nr_blocks;
	u64 *blocks;			/* chain blocks, newest first */
};

/*
 * Read and validate VDI @id's whole snapshot log chain: every block passes
 * plx_snaplog_check(), seqs are consecutive from 1 to the record's
 * snap_seq, and the chain is acyclic and no longer than it can be.
 */
int plx_snaplog_load(struct plx_store *s, u64 id, struct plx_snaplist *l);
void plx_snaplist_free(struct plx_snaplist *l);

/*
 * "V@SEQ", "V@LABEL" (V an id or name) or "LABEL" -> snapshot of a live
 * VDI.  Deleted snapshots resolve only if @allow_deleted.
 */
int plx_resolve_snap(struct plx_store *s, const char *arg,
		     bool allow_deleted, struct plx_snap *out);
/* Is @label used by a non-deleted snapshot of a live VDI? */
int plx_label_in_use(struct plx_store *s, const char *label, bool *used);

int plx_snapshot(struct plx_store *s, u64 id, const char *label, u64 *seq);
/* Rewrite the record's log block in place (offline admin operations). */
int plx_snap_delete(struct plx_store *s, const struct plx_snap *snap);
int plx_snap_label(struct plx_store *s, const struct plx_snap *snap,
		   const char *label);
int plx_vdi_clone(struct plx_store *s, const char *name,
		  const struct plx_snap *snap, u64 *id);

/* ---- Radix trees (radix.c) --------------------------------------------- */

/*
 * Which extent type a pointer found in a node at @level must point into:
 * level 0 entries are data blocks, higher levels' entries are nodes.
 */
enum plx_extent_type plx_child_type(unsigned int level);

/* Map virtual block @vblock through tree @root; *pblock = 0 if sparse. */
int plx_lookup(struct plx_store *s, u64 root, u8 height, u64 vblock,
	       u64 *pblock);

/*
 * Visit every mapped data block of a tree in virtual-block order.  Bad
 * pointers stop the walk with an error naming the node and entry.
 */
typedef int (*plx_map_fn)(void *arg, u64 vblock, u64 pblock);
int plx_map_walk(struct plx_store *s, u64 root, u8 height,
		 plx_map_fn fn, void *arg);
/*
 * The same for the first @nblocks virtual blocks only (a VDI's size):
 * links to subtrees beyond them are neither checked nor followed, so the
 * walk costs what the size says, whatever a damaged tree links.
 */
int plx_map_walk_size(struct plx_store *s, u64 root, u8 height, u64 nblocks,
		      plx_map_fn fn, void *arg);

/*
 * Copy-on-write writer for one live VDI.  Node changes are cached and
 * reach the disk in soft-update order at plx_writer_flush() (new blocks,
 * bitmaps and catalogue, fsync, then the nodes modified in place, fsync).
 */
struct plx_writer;

struct plx_writer *plx_writer_open(struct plx_store *s, u64 vdi_id);
/* Write @len bytes at byte @off of block @vblock (off+len <= 4096). */
int plx_writer_write(struct plx_writer *w, u64 vblock, const void *buf,
		     unsigned int off, unsigned int len);
/* Is @vblock sparse in the writer's current view? */
int plx_writer_is_sparse(struct plx_writer *w, u64 vblock, bool *sparse);
int plx_writer_flush(struct plx_writer *w);
/* Flushes, then frees.  plx_writer_abort() frees without writing nodes. */
int plx_writer_close(struct plx_writer *w);
void plx_writer_abort(struct plx_writer *w);

/* ---- Images (image.c) -------------------------------------------------- */

struct plx_io_stats {
	u64 bytes;			/* image size processed */
	u64 blocks_written;		/* data blocks written / exported */
	u64 blocks_sparse;		/* blocks skipped as holes */
};

/* Copy a raw image from @fd (regular file or pipe) into live VDI @id. */
int plx_import(struct plx_store *s, u64 id, int fd, struct plx_io_stats *st);
/*
 * Write the image of tree @root (@size bytes) to @fd.  If @fd is a
 * regular file it is truncated to @size and holes are left unwritten;
 * otherwise zeros are streamed.
 */
int plx_export(struct plx_store *s, u64 root, u8 height, u64 size, int fd,
	       struct plx_io_stats *st);

/* ---- Consistency check (check.c) --------------------------------------- */

struct plx_check_stats {
	u64 problems;
	u64 vdis;			/* live VDIs walked */
	u64 snapshots;			/* snapshot trees walked */
	u64 nodes;			/* distinct radix nodes reached */
	u64 data_blocks;		/* distinct data blocks reached */
	u64 log_blocks;
	u64 allocated;			/* bits set, excluding bitmap blocks */
	u64 garbage;			/* allocated but unreachable */
};

/* Progress of gc, check, import and export; @total may be 0 (unknown). */
typedef void (*plx_progress_fn)(void *arg, const char *phase, u64 done,
				u64 total);

/* Called once per problem: @block is the block at fault (or ~0ULL). */
typedef void (*plx_problem_fn)(void *arg, u64 block, const char *msg);

/*
 * Full consistency check of an open store (see check.c for the list).
 * Returns 0 if it ran (stats->problems says whether the store is clean),
 * -1 if it could not run (out of memory).
 */
int plx_check(struct plx_store *s, plx_problem_fn fn, void *arg,
	      struct plx_check_stats *stats);
/* The same, reporting progress to @pfn (may be NULL) as it goes. */
int plx_check_progress(struct plx_store *s, plx_problem_fn fn, void *arg,
		       struct plx_check_stats *stats, plx_progress_fn pfn,
		       void *parg);

/*
 * plx_import() and plx_export() reporting progress to @pfn (may be NULL):
 * in blocks of the image (total 0 when reading a pipe), in virtual blocks
 * of the VDI.  Declared here, after plx_progress_fn.
 */
int plx_import_progress(struct plx_store *s, u64 id, int fd,
			struct plx_io_stats *st, plx_progress_fn pfn,
			void *parg);
int plx_export_progress(struct plx_store *s, u64 root, u8 height, u64 size,
			int fd, struct plx_io_stats *st, plx_progress_fn pfn,
			void *parg);

/* ---- Space accounting (usage.c) ---------------------------------------- */

/* One extent type's blocks; blocks = extents * extent_blocks. */
struct plx_usage_type {
	u64 extents;
	u64 blocks;
	u64 bitmap_blocks;		/* the extents' own bitmaps */
	u64 used;			/* allocated, bitmap blocks excluded */
	u64 free;			/* blocks - bitmap_blocks - used */
	u64 reclaimable;		/* used but reachable from nothing live */
};

/*
 * One live VDI.  "data" counts data blocks, "meta" radix nodes (roots
 * included); snapshot log blocks are counted store-wide only.  Exclusive:
 * reachable from this VDI's live tree or non-deleted snapshots and from no
 * other live VDI's; shared: also from at least one other (a clone and its
 * parent share the blocks of the snapshot it was cloned from).
 */
struct plx_usage_vdi {
	u64 id;
	u64 snapshots;			/* non-deleted */
	u64 data_mapped, meta_mapped;	/* the live tree alone */
	u64 data_exclusive, meta_exclusive;
	u64 data_shared, meta_shared;
};

struct plx_usage {
	struct plx_usage_type type[4];	/* by enum plx_extent_type */
	u64 held_extents;		/* catalogue names a holder host */
	u64 held_vdis;			/* VDI lock held by a host */
	u64 bad_vdis;			/* damaged records, not counted */
	u64 log_blocks;			/* snapshot log blocks reachable */
	u64 reachable;			/* every block reachable, logs too */
	u64 nr_vdis;
	struct plx_usage_vdi *vdis;	/* live VDIs, by id */
};

/*
 * Account the space of an open store (read-only; on a store in use the
 * figures are a slightly stale picture).  Needs 4 bits of memory per
 * block of the store.  Fails on a damaged catalogue or a radix pointer
 * that does not pass plx_check_addr().  Free @u with plx_usage_free().
 */
int plx_usage(struct plx_store *s, struct plx_usage *u, plx_progress_fn pfn,
	      void *parg);
void plx_usage_free(struct plx_usage *u);

/* ---- Garbage collection (gc.c, gcmsg.c) ------------------------------- */

/* Largest bitmap chunk one gc_reclaim message carries. */
#define PLX_GC_CHUNK_BYTES	1024

/*
 * How the collector reaches the hosts that hold extents and the locks
 * that keep others out while it works.  Every hook may be NULL: an
 * offline collection (no begin) leaves held extents alone, and without
 * lock hooks the caller must hold the store exclusively (plx_open's
 * flock does that for the commands of one host).
 */
struct plx_gc_ops {
	/* Start epoch @epoch in every table of @host; -1 if it cannot. */
	int (*begin)(void *arg, u32 host, u64 epoch);
	/*
	 * Ask @host's table holding @extent (granted at @generation) to
	 * free the blocks set in @bits (bit j of byte k is block
	 * @offset + 8k + j of the extent) that it did not allocate since
	 * the epoch began; *freed says how many it freed.
	 */
	int (*reclaim)(void *arg, u32 host, u64 epoch, u64 extent,
		       u64 generation, u64 offset, const u8 *bits, u32 nbytes,
		       u64 *freed);
	void (*end)(void *arg, u32 host, u64 epoch);
	int (*lock_registry)(void *arg);
	void (*unlock_registry)(void *arg);
	int (*lock_bitmap)(void *arg, u64 extent);
	void (*unlock_bitmap)(void *arg, u64 extent);
	/* Something the administrator should know, one line. */
	void (*note)(void *arg, const char *msg);
	plx_progress_fn progress;
	void *progress_arg;
	/* Give emptied unheld extents back to FREE (single-host mode). */
	bool retype_free;
};

struct plx_gc_stats {
	u64 store_bytes;		/* blocks covered by extents, in bytes */
	u64 memory_bytes;		/* what the collector allocated */
	u64 vdis, snapshots;		/* live roots marked */
	unsigned int passes;
	u64 nodes_read;			/* metadata blocks scanned */
	u64 bytes_read;
	u64 reachable;			/* blocks marked */
	u64 bad_links;			/* links to where no block may be */
	u64 freed[2];			/* data, metadata */
	u64 freed_by_holders;		/* of those, freed by holders' targets */
	u64 extents_swept, extents_skipped, extents_emptied;
	double mark_seconds, sweep_seconds;
};

/*
 * "gc_reclaim EPOCH EXTENT GENERATION OFFSET HEX" into @buf (@len bytes,
 * NUL-terminated), HEX being @nbytes of @bits in lowercase hex (gcmsg.c).
 * 0, or -1 if it does not fit or @nbytes is 0 or more than
 * PLX_GC_CHUNK_BYTES.
 */
int plx_gc_reclaim_msg(char *buf, size_t len, u64 epoch, u64 extent,
		       u64 generation, u64 offset, const u8 *bits, u32 nbytes);

/* Collect: 0, or -1 with plx_errmsg() (nothing more is freed then). */
int plx_gc(struct plx_store *s, const struct plx_gc_ops *ops, void *arg,
	   struct plx_gc_stats *st);

/* ---- Local write cache log (cachelog.c) -------------------------------- */

/*
 * Write a fresh log superblock to @path (a block device, opened O_EXCL,
 * or a file) and zero block 1: a new random UUID, nothing bound, head_seq
 * 1 at PLX_LOG_FIRST_BLOCK, open_gen 1; then fsync.  Refused on a device
 * of fewer than PLX_LOG_MIN_BLOCKS blocks, and without @force on one
 * holding a blockstore or a log with undrained records.  *@out (may be
 * NULL) gets the superblock written.
 */
int plx_cachelog_init(const char *path, bool force, struct plx_log_super *out);

/* A log opened read-only by plx_cachelog_open(). */
struct plx_cachelog {
	int fd;
	const char *path;
	u64 device_blocks;
	struct plx_log_super super;	/* passed plx_log_super_check() */
};

/*
 * Open @path read-only and validate its log superblock.  Reads bypass
 * the page cache, as the kernel target's writes do, so a log in use can
 * be looked at.
 */
int plx_cachelog_open(const char *path, struct plx_cachelog *log);
void plx_cachelog_close(struct plx_cachelog *log);

/* Why a scan of the records stopped. */
enum plx_cachelog_stop {
	PLX_CACHELOG_INVALID,		/* no valid record header there */
	PLX_CACHELOG_SEQ,		/* a record with another seq */
	PLX_CACHELOG_GEN,		/* open_gen older than the one before */
	PLX_CACHELOG_DATA,		/* data do not match data_crc: torn */
	PLX_CACHELOG_OVERRUN,		/* more blocks than the ring holds */
};

struct plx_cachelog_scan {
	u64 records;			/* snapshot markers included */
	u64 snapshots;
	u64 blocks;			/* headers and data */
	u64 first_seq;			/* the super's head_seq */
	u64 end_seq;			/* seq the next record would carry */
	u64 end_block;			/* where the scan stopped */
	enum plx_cachelog_stop stop;
	enum plx_err err;		/* INVALID: why the header failed */
	char why[160];			/* "block 133: seq 41 expected 42" */
};

/*
 * Called for each record found, in order; a non-zero return ends the
 * scan, which returns it.  @r is the record's header block.
 */
typedef int (*plx_cachelog_fn)(void *arg, u64 blocknr,
			       const struct plx_log_record *r);

/*
 * Walk the undrained records as the kernel's replay does: from head_block
 * expecting head_seq, following next_block while the header passes
 * plx_log_record_check(), carries the expected seq, has an open_gen no
 * older than the record before it, and the crc32c of its data blocks
 * (read as one buffer) equals data_crc.  Returns 0 with @st saying where
 * and why it stopped, -1 on a read error or out of memory, or what @fn
 * returned.  @fn may be NULL.
 */
int plx_cachelog_scan(struct plx_cachelog *log, plx_cachelog_fn fn, void *arg,
		      struct plx_cachelog_scan *st);

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" into @buf (37 bytes at least). */
char *plx_uuid_str(const u8 *uuid, char *buf, size_t len);

/* ---- JSON output (json.c) ---------------------------------------------- */

void plx_json_str(FILE *f, const char *s);

#endif /* LIBPARALLAX_H */
