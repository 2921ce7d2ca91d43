/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One attached VDI: the state a dm-parallax table instance carries.
 */
#ifndef PARALLAX_TARGET_H
#define PARALLAX_TARGET_H

#include <linux/bio.h>
#include <linux/completion.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include "parallax-alloc.h"
#include "parallax-cache.h"
#include "parallax-commit.h"
#include "parallax-store.h"

enum plx_mode {
	PLX_MODE_OK,
	PLX_MODE_READ_ONLY,		/* the table was loaded read-only */
	PLX_MODE_FAILED,		/* corruption or a write error */
};

/* Bios waiting for the new data block of a virtual block to be written. */
struct plx_busy {
	struct bio_list waiters;
};

struct plx_snap_request {
	const char *label;
	struct completion done;
	int error;
	u64 seq;
};

struct plx_target {
	struct dm_target *ti;
	struct plx_store store;
	struct plx_alloc alloc;
	struct plx_cache *cache;	/* the local write cache, if any */
	struct plx_vdi_record vdi;	/* as last written */
	u64 vdi_id;

	/* Table options. */
	unsigned long cache_bytes;
	u32 host_id;
	bool has_lock_gen;
	u64 lock_gen;			/* the VDI lock grant this table uses */
	u64 snap_seq;			/* read-only view of a snapshot; 0 = live */
	u64 low_water;
	bool error_if_no_space;
	unsigned int no_space_timeout;	/* seconds; 0 = wait for ever */
	const char *cache_path;		/* local_cache, for the constructor */
	enum plx_cache_mode cache_mode;
	unsigned int cache_latency_ms;
	bool cache_tuned;		/* local_cache_mode or _latency_ms given */

	/*
	 * The radix root, held in the cache for the target's lifetime.
	 * map() reads these under epoch_lock and counts the bios it remaps
	 * against the epoch, so that a snapshot can wait for every bio that
	 * walked the old root.
	 */
	spinlock_t epoch_lock;
	u64 root;
	const __le64 *root_node;
	struct dm_buffer *root_buf;
	unsigned int epoch;
	atomic_t inflight[2];
	wait_queue_head_t epoch_wait;
	u8 height;

	/* Worker-only state. */
	struct xarray pending;		/* blocknr -> struct plx_pnode */
	struct xarray busy;		/* vblock -> bios waiting on a new block */
	struct list_head commits;
	unsigned int nr_commits;
	struct list_head batch;		/* commit nodes behind the preflush */
	bool batch_flushing;
	bool commit_asked;		/* by the waker, gc_begin */
	bool draining;			/* postsuspend to resume */
	struct list_head to_write;
	struct bio_list no_space;
	unsigned long no_space_since;
	bool suspending;		/* presuspend to resume: nothing waits */
	bool low_water_signalled;
	struct plx_snap_request *snap;	/* set under lock by the message */
	u64 snapshots_taken;

	/* Events for the worker, under lock (taken from completion context). */
	spinlock_t lock;
	struct bio_list deferred;
	struct bio_list data_done;
	struct list_head nodes_done;
	bool batch_flushed;
	blk_status_t batch_status;
	struct workqueue_struct *wq;
	struct work_struct worker;
	struct delayed_work waker;
	struct work_struct release_no_space;

	struct mutex message_lock;	/* one message at a time */
	char lockd_state[16];		/* set by parallaxd, for the status */
	enum plx_mode mode;
	const char *fail_reason;	/* one word, for the status line */

	atomic64_t cache_hits;
	atomic64_t cache_misses;

	/*
	 * Online GC: writes that take blocks from the reserve are counted
	 * by parity from then until they end, so that gc_begin can wait for
	 * those that took blocks before it (parallax-gc.c).
	 */
	spinlock_t gc_lock;
	u8 gc_parity;
	atomic_t gc_inflight[2];
	wait_queue_head_t gc_wait;

	/*
	 * Writes acknowledged before their commit, by flush generation
	 * (parallax-flush.c).  Only the worker changes flush_gen and the
	 * flush lists.
	 */
	atomic_t uncommitted[2];
	wait_queue_head_t commit_wait;
	u8 flush_gen;
	bool acked_lost;		/* a commit of such writes failed */
	struct bio_list flushes_next;	/* wait for the next flip */
	struct bio_list flushes_waiting;	/* for !flush_gen to drain */
};

/* parallax-map.c */
unsigned int plx_run(const struct plx_geometry *g, const __le64 *node,
		     unsigned int idx, u64 ptr, unsigned int max);
int plx_map(struct dm_target *ti, struct bio *bio);
int plx_end_io(struct dm_target *ti, struct bio *bio, blk_status_t *error);
void plx_worker(struct work_struct *ws);
void plx_waker(struct work_struct *ws);
void plx_release_no_space(struct work_struct *ws);
void plx_end_suspended(struct plx_target *t, struct bio *bio);
void plx_fail(struct plx_target *t, const char *reason);
void plx_wake_worker(struct plx_target *t);
u64 plx_bio_vblock(struct plx_target *t, struct bio *bio);
void plx_count_and_remap(struct plx_target *t, struct bio *bio, u64 data);
void plx_defer(struct plx_target *t, struct bio *bio);
void plx_accept_blocks(struct plx_target *t, struct bio *bio,
		       unsigned int blocks);
void plx_bio_finished(struct plx_target *t, struct bio *bio);

/* parallax-cow.c */
void plx_handle_write(struct plx_target *t, struct bio *bio,
		      struct bio_list *retry);
void plx_busy_done(struct plx_target *t, struct bio *bio,
		   struct bio_list *retry);
bool plx_busy_park(struct plx_target *t, struct bio *bio, u64 vblock);
void plx_handle_discard(struct plx_target *t, struct bio *bio,
			struct bio_list *retry);

/* parallax-gc.c */
void plx_gc_init(struct plx_target *t);
void plx_gc_count_bio(struct plx_target *t, struct bio *bio);
void plx_gc_bio_done(struct plx_target *t, struct bio *bio);
int plx_message_gc(struct plx_target *t, unsigned int argc, char **argv,
		   char *result, unsigned int maxlen);
int plx_gc_parse_hex(const char *hex, u8 *out, unsigned int max);

/* parallax-flush.c */
void plx_flush_init(struct plx_target *t);
bool plx_flush_needs_worker(struct plx_target *t);
void plx_ack_early(struct plx_target *t, struct plx_pnode *c, struct bio *bio);
void plx_release_acked(struct plx_target *t, struct plx_acked *a, bool lost);
void plx_flush_queue(struct plx_target *t, struct bio *bio);
void plx_flush_run(struct plx_target *t);
void plx_flush_drain(struct plx_target *t);

/* parallax-snapshot.c */
int plx_snapshot(struct plx_target *t, const char *label, u64 *seq);
bool plx_snapshot_run(struct plx_target *t);

#endif
