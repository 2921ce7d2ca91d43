/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Pending radix nodes and the ordering of their writes (thesis 4.1).
 *
 * A pending node is a radix node whose cached copy differs from disk.  It
 * is pinned in dm-bufio and never marked dirty there, so dm-bufio cannot
 * write it early; the target writes it itself from a bounce copy.
 *
 * A pending node is either
 *  - a commit node: linked into the on-disk tree, holding links to blocks
 *    that are not durable yet.  It is written only when every component
 *    write beneath it has completed, and the bios waiting on it complete
 *    when that write does; or
 *  - unlinked: newly allocated or copied, reachable on disk only once its
 *    commit node is written.  It may be written (and rewritten) at any
 *    time, which is commit-node inheritance (4.1.3): chains of dependency
 *    never grow beyond a commit node and the blocks beneath it.
 *
 * A write that is not FUA is acknowledged as soon as its data is on the
 * device, as the block layer allows: like a disk's write cache, the link
 * to it becomes durable with the next commit, and a FLUSH waits for the
 * commits of every write acknowledged before it (parallax-flush.c).  So
 * the commit node counts the writes it acknowledged early, by flush
 * generation and by GC parity, for the flushes and gc_begin to wait on.
 */
#ifndef PARALLAX_COMMIT_H
#define PARALLAX_COMMIT_H

#include <linux/bio.h>
#include <linux/device-mapper.h>
#include <linux/list.h>

struct dm_buffer;
struct plx_target;

/* Writes acknowledged before the commit that links their blocks. */
struct plx_acked {
	unsigned int flush[2];		/* by flush generation */
	unsigned int gc[2];		/* by GC parity, if they took blocks */
};

struct plx_pnode {
	struct plx_target *t;
	u64 blocknr;
	struct dm_buffer *buf;		/* pinned while pending */
	__le64 *node;			/* the cached, newest contents */
	struct page *page;		/* bounce copy being written */
	struct plx_pnode *commit;	/* unlinked: the node that links it */
	struct list_head sibling;	/* unlinked: in commit->unlinked */
	struct list_head done;		/* on t->nodes_done after a write */
	struct list_head to_write;	/* on t->to_write until submitted */
	blk_status_t status;		/* of the write just completed */
	bool writing;
	bool rewrite;			/* changed while being written */
	bool queued;			/* on t->to_write */

	/* Commit-node state. */
	struct list_head active;	/* on t->commits */
	struct list_head unlinked;
	struct list_head committing_unlinked;
	unsigned int outstanding;	/* component writes not yet done */
	unsigned int nr_waiting;	/* bios that will wait on the next write */
	struct bio_list waiting;
	struct bio_list committing;	/* done when the write in flight is */
	struct bio_list parked;		/* retried after the write in flight */
	struct plx_acked acked;		/* made durable by the next write */
	struct plx_acked committing_acked;	/* by the write in flight */
	blk_status_t error;		/* first component failure */
	bool fua;			/* a waiting bio asked for FUA */
	bool write_fua;			/* the write in flight has FUA */
	bool wanted;			/* by a batch: new writes wait */
	struct list_head batch;		/* on t->batch until submitted */
};

/*
 * Per-bio state: in dm's per-bio data, or in front of the bios the target
 * makes itself (the local cache's drain), which travel the same path.
 */
struct plx_bio {
	struct plx_target *t;
	struct plx_pnode *commit;	/* the commit node this write waits on */
	bio_end_io_t *saved_end_io;
	u64 busy_vblock;		/* valid when holding a busy entry */
	u8 epoch;
	bool counted;			/* in t->inflight[epoch] */
	bool busy;
	u8 gc_parity;
	bool gc_counted;		/* in t->gc_inflight[gc_parity] */
	bool log_read;			/* served from the local cache */
	u8 log_gen;			/* in cache->readers[log_gen] */
	u64 start_ns;			/* a write timed for the local cache */
};

extern struct bio_set plx_own_bios;

static inline bool plx_bio_is_own(struct bio *bio)
{
	return bio->bi_pool == &plx_own_bios;
}

static inline struct plx_bio *plx_pb(struct bio *bio)
{
	if (plx_bio_is_own(bio))
		return (struct plx_bio *)((char *)bio - sizeof(struct plx_bio));
	return dm_per_bio_data(bio, sizeof(struct plx_bio));
}

/* Send a remapped bio down: dm accounts for its own clones only. */
static inline void plx_submit_remapped(struct bio *bio)
{
	if (plx_bio_is_own(bio))
		submit_bio_noacct(bio);
	else
		dm_submit_bio_remap(bio, NULL);
}

/* Commit nodes pending before a batch is forced: each pins a node. */
#define PLX_MAX_COMMITS		256

struct plx_pnode *plx_pnode_get(struct plx_target *t, u64 blocknr,
				struct plx_pnode *commit);
void plx_pnode_modified(struct plx_target *t, struct plx_pnode *p);
void plx_commit_add_component(struct plx_pnode *c);
void plx_submit_queued(struct plx_target *t);
void plx_commit_ready(struct plx_target *t);
void plx_commit_batch_flushed(struct plx_target *t, blk_status_t status,
			      struct bio_list *retry);
void plx_commit_soon(struct plx_target *t);
void plx_node_done(struct plx_target *t, struct plx_pnode *p,
		   struct bio_list *retry);
void plx_data_done(struct plx_target *t, struct bio *bio);
void plx_commit_abort_all(struct plx_target *t);

void plx_node_endio(struct bio *bio);
void plx_data_endio(struct bio *bio);

#endif
