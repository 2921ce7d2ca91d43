/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Block allocation from the extents this host has been granted.
 */
#ifndef PARALLAX_ALLOC_H
#define PARALLAX_ALLOC_H

#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/string.h>

#include "parallax-store.h"

/*
 * Blocks are taken from the bitmaps in batches that are made durable
 * before any of them is used (the thesis claims 10,000 at a time), so
 * that no link can ever reach disk ahead of the bitmap bit that protects
 * its target.  A crash leaks the unused rest of a batch to the collector.
 */
#define PLX_RESERVE_BATCH	256

/* Largest bitmap chunk one gc_reclaim message carries. */
#define PLX_GC_CHUNK_BYTES	1024

/* Handed out in the order taken from the bitmap, so runs stay ascending. */
struct plx_reserve {
	u64 blocks[PLX_RESERVE_BATCH];
	unsigned int head;		/* next to hand out */
	unsigned int nr;		/* end of the valid entries */
};

static inline unsigned int plx_reserve_count(const struct plx_reserve *res)
{
	return res->nr - res->head;
}

/* Move what is left to the front, to make room for a refill. */
static inline void plx_reserve_compact(struct plx_reserve *res)
{
	memmove(res->blocks, res->blocks + res->head,
		plx_reserve_count(res) * sizeof(res->blocks[0]));
	res->nr -= res->head;
	res->head = 0;
}

static inline u64 plx_reserve_pop(struct plx_reserve *res)
{
	return res->blocks[res->head++];
}

struct plx_alloc {
	struct plx_store *store;
	u32 host_id;
	struct mutex lock;		/* grants; the worker alone allocates */
	struct list_head grants;
	unsigned int nr_grants;
	u64 free[2];			/* free blocks, [0] data, [1] metadata */
	u64 used[2];			/* blocks this table has allocated */
	struct plx_reserve reserve[2];
	u64 gc_epoch;			/* active GC epoch; 0 = none */
};

static inline unsigned int plx_alloc_slot(enum plx_extent_type type)
{
	return type == PLX_EXT_METADATA;
}

/* add_extent without a generation: only the holder is checked. */
#define PLX_ANY_GENERATION	U64_MAX

void plx_alloc_init(struct plx_alloc *a, struct plx_store *s);
void plx_alloc_destroy(struct plx_alloc *a);
int plx_alloc_grant(struct plx_alloc *a, u64 extent, u64 generation,
		    char *result, unsigned int maxlen);
int plx_alloc_release(struct plx_alloc *a, u64 extent, char *result,
		      unsigned int maxlen);
int plx_alloc_ensure(struct plx_alloc *a, unsigned int data,
		     unsigned int meta);
u64 plx_alloc_take(struct plx_alloc *a, enum plx_extent_type type);
u64 plx_alloc_free_blocks(struct plx_alloc *a, enum plx_extent_type type);
int plx_alloc_emit_extents(struct plx_alloc *a, char *result,
			   unsigned int maxlen);

/* Online GC (parallax-gc.c has the protocol). */
int plx_alloc_gc_start(struct plx_alloc *a, u64 epoch);
int plx_alloc_gc_stop(struct plx_alloc *a, u64 epoch);
int plx_alloc_gc_reclaim(struct plx_alloc *a, u64 epoch, u64 extent,
			 u64 generation, u64 offset, const u8 *bits,
			 unsigned int nbytes, u64 *freed, char *result,
			 unsigned int maxlen);

#endif
