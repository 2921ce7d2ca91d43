/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One attached VDI: the state a dm-parallax table instance carries.
 */
#ifndef PARALLAX_TARGET_H
#define PARALLAX_TARGET_H

#include <linux/bio.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>

#include "parallax-store.h"

enum plx_mode {
	PLX_MODE_OK,
	PLX_MODE_FAILED,
};

struct plx_target {
	struct dm_target *ti;
	struct plx_store store;
	struct plx_vdi_record vdi;	/* as read at table load */
	u64 vdi_id;
	unsigned long cache_bytes;

	u64 root;			/* block number of the radix root */
	struct dm_buffer *root_buf;	/* held for the target's lifetime */
	const __le64 *root_node;
	u8 height;
	u64 nr_vblocks;			/* table length in blocks */

	/* Lookups that missed the cache wait here for the worker. */
	spinlock_t lock;
	struct bio_list deferred;
	struct workqueue_struct *wq;
	struct work_struct worker;

	enum plx_mode mode;
	const char *fail_reason;

	atomic64_t cache_hits;
	atomic64_t cache_misses;
};

/* parallax-map.c */
int plx_map(struct dm_target *ti, struct bio *bio);
void plx_worker(struct work_struct *ws);
void plx_fail(struct plx_target *t, const char *reason);

#endif
