/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The local write cache (thesis 3.4.5): a ring of write records on the
 * host's own disk that absorbs bursts, drained to the store in order.
 * Documentation/local-cache.rst describes the design and its limits.
 */
#ifndef PARALLAX_CACHE_H
#define PARALLAX_CACHE_H

#include <linux/bio.h>
#include <linux/device-mapper.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include "parallax-format.h"

struct plx_target;

enum plx_cache_mode {
	PLX_CACHE_ADAPTIVE,
	PLX_CACHE_ALWAYS,
};

#define PLX_DEFAULT_CACHE_LATENCY_MS	20

/* A record from its allocation in the ring until its write is done. */
struct plx_log_write {
	struct list_head list;		/* on cache->writing, in seq order */
	struct plx_cache *c;
	u64 seq;
	u64 block;			/* its header's address */
	u64 consumed;			/* ring blocks, any gap before a wrap */
	struct page *hdr;
	unsigned int nr_pages;		/* data pages, copies of the bios */
	struct page *pages[PLX_LOG_MAX_DATA];
	struct bio_list bios;		/* acknowledged when it is written */
	struct completion *waiter;	/* a snapshot marker's message */
	atomic_t pending;		/* bios of the chain not yet done */
	blk_status_t status;
	bool done;
};

struct plx_cache {
	struct plx_target *t;
	struct dm_dev *dev;
	enum plx_cache_mode mode;
	unsigned int latency_ms;
	struct plx_log_super sb;	/* as last written */
	u8 uuid[16];
	u64 nr_blocks;			/* of the log, its superblock included */
	u64 max_data;			/* data blocks in one record */
	u64 open_gen;
	bool opened;			/* replayed: at the first resume */
	bool claimed;			/* in the list of devices in use */
	bool failed;

	/*
	 * The ring, under lock.  Records from head to tail hold space; those
	 * from head up to the drain point are on the store but not yet
	 * known durable there.  seq and block of a position go together.
	 */
	spinlock_t lock;
	u64 head_block, head_seq;
	u64 tail_block, next_seq;
	u64 used;			/* ring blocks from head to tail */
	u64 records;			/* from head to tail */
	u64 written_seq;		/* every record before it is written */
	bool logging;			/* new writes go to the log */
	bool full;			/* the writer waits for the drain */
	unsigned int markers;		/* snapshot markers not yet applied */
	u64 first_marker_seq;		/* snapshot seq of the oldest marker */
	struct bio_list incoming;	/* writes and flushes for the writer */
	struct list_head writing;	/* struct plx_log_write, seq order */
	atomic_t direct_writes;		/* to the store since its last flush */

	/* Drain worker state. */
	u64 drain_block, drain_seq;	/* the next record to apply */
	u64 drained_consumed;		/* ring blocks drained since head */
	unsigned int window;		/* drain writes in flight at once */
	u64 fastest_window_ns;
	struct page *drain_hdr;
	struct page **drain_pages;	/* max_data of them */
	int drain_error;
	bool drain_all;			/* a drain message or a suspend waits */
	wait_queue_head_t drain_wait;	/* for drain_all and for space */

	/* vblock -> xa_mk_value(log block of its newest data); 0 = discarded */
	struct xarray index;
	/* vblock -> xa_mk_value(seq) of a record not yet written; writer only */
	struct xarray staged;

	/* Reads sent to the log, by generation: reclaim waits them out. */
	spinlock_t read_lock;
	unsigned int read_gen;
	atomic_t readers[2];
	wait_queue_head_t read_wait;

	u64 store_latency_ns;		/* moving average of store writes */
	u64 drained_bytes;
	u64 rate_bytes;			/* at rate_stamp */
	unsigned long rate_stamp;
	u64 rate_kib;			/* KiB/s over the last interval */

	struct mutex write_mutex;	/* one writer: ring space and seq */
	struct workqueue_struct *wq;
	struct work_struct writer;
	struct work_struct completer;
	struct work_struct drainer;
};

/* parallax-cache-log.c: the ring on the local device. */
int plx_log_open(struct plx_cache *c, struct dm_target *ti, const char *path);
int plx_log_replay(struct plx_cache *c);
int plx_log_write_super(struct plx_cache *c, u64 head_block, u64 head_seq);
u64 plx_log_next_block(struct plx_cache *c, u64 block, u64 blocks);
u64 plx_log_consumed(struct plx_cache *c, u64 block, u64 next);
int plx_log_read(struct plx_cache *c, u64 block, struct page **pages,
		 unsigned int nr);
void plx_log_submit(struct plx_cache *c, struct plx_log_write *w,
		    blk_opf_t flags);
void plx_log_write_free(struct plx_log_write *w);

/* parallax-cache.c: bios through the cache, the drain, and messages. */
int plx_cache_create(struct plx_target *t, struct dm_target *ti,
		     const char *path, enum plx_cache_mode mode,
		     unsigned int latency_ms);
void plx_cache_destroy(struct plx_cache *c);
int plx_cache_resume(struct plx_cache *c);
void plx_cache_suspend(struct plx_cache *c);
int plx_cache_map(struct plx_cache *c, struct bio *bio);
void plx_cache_end_io(struct plx_cache *c, struct bio *bio);
int plx_cache_snapshot(struct plx_cache *c, const char *label, u64 *seq);
int plx_cache_drain(struct plx_cache *c, bool killable);
void plx_cache_tick(struct plx_cache *c);
void plx_cache_status(struct plx_cache *c, char *result, unsigned int maxlen,
		      unsigned int *sz);
void plx_cache_table(struct plx_cache *c, char *buf, size_t len, int *pos,
		     unsigned int *n);

#define PLX_CACHE_CONTINUE	(-1)

#endif
