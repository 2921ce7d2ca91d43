// SPDX-License-Identifier: GPL-2.0
/*
 * Ordering of radix-node writes.  See parallax-commit.h for the model.
 *
 * Completions only queue events for the worker; every state change below
 * runs in the target's single ordered worker, so pending nodes need no
 * locking of their own.  t->lock guards only the event lists.
 */
#include <kunit/visibility.h>
#include <linux/dm-bufio.h>
#include <linux/slab.h>

#include "parallax-target.h"

#define DM_MSG_PREFIX "parallax"

static void plx_pnode_free(struct plx_target *t, struct plx_pnode *p)
{
	xa_erase(&t->pending, p->blocknr);
	dm_bufio_release(p->buf);
	__free_page(p->page);
	kfree(p);
}

/*
 * The pending node for @blocknr, created if needed.  The block must be in
 * the cache (the caller holds it); the pending node takes its own hold.
 * A NULL @commit makes a new node a commit node.
 */
struct plx_pnode *plx_pnode_get(struct plx_target *t, u64 blocknr,
				struct plx_pnode *commit)
{
	struct plx_pnode *p = xa_load(&t->pending, blocknr);
	int r;

	if (p)
		return p;
	p = kzalloc(sizeof(*p), GFP_NOIO);
	if (!p)
		return ERR_PTR(-ENOMEM);
	p->page = alloc_page(GFP_NOIO);
	if (!p->page) {
		kfree(p);
		return ERR_PTR(-ENOMEM);
	}
	p->node = dm_bufio_get(t->store.bufio, blocknr, &p->buf);
	if (IS_ERR_OR_NULL(p->node)) {
		__free_page(p->page);
		kfree(p);
		return ERR_PTR(-EIO);
	}
	p->t = t;
	p->blocknr = blocknr;
	p->commit = commit;
	INIT_LIST_HEAD(&p->unlinked);
	INIT_LIST_HEAD(&p->committing_unlinked);
	INIT_LIST_HEAD(&p->to_write);
	bio_list_init(&p->waiting);
	bio_list_init(&p->committing);
	bio_list_init(&p->parked);
	r = xa_err(xa_store(&t->pending, blocknr, p, GFP_NOIO));
	if (r) {
		dm_bufio_release(p->buf);
		__free_page(p->page);
		kfree(p);
		return ERR_PTR(r);
	}
	INIT_LIST_HEAD(&p->batch);
	if (commit) {
		list_add_tail(&p->sibling, &commit->unlinked);
	} else {
		list_add_tail(&p->active, &t->commits);
		t->nr_commits++;
	}
	return p;
}

/* Count one more write that @c must wait for before it is written. */
void plx_commit_add_component(struct plx_pnode *c)
{
	c->outstanding++;
}
EXPORT_SYMBOL_IF_KUNIT(plx_commit_add_component);

/*
 * @p was changed in memory.  An unlinked node is (re)written now; a
 * commit node is written when everything beneath it is durable.
 */
void plx_pnode_modified(struct plx_target *t, struct plx_pnode *p)
{
	if (!p->commit)
		return;
	if (p->writing) {
		if (!p->rewrite) {
			p->rewrite = true;
			plx_commit_add_component(p->commit);
		}
	} else if (!p->queued) {
		p->queued = true;
		plx_commit_add_component(p->commit);
		list_add_tail(&p->to_write, &t->to_write);
	}
}
EXPORT_SYMBOL_IF_KUNIT(plx_pnode_modified);

void plx_node_endio(struct bio *bio)
{
	struct plx_pnode *p = bio->bi_private;
	struct plx_target *t = p->t;
	unsigned long flags;

	p->status = bio->bi_status;
	bio_put(bio);
	spin_lock_irqsave(&t->lock, flags);
	list_add_tail(&p->done, &t->nodes_done);
	spin_unlock_irqrestore(&t->lock, flags);
	queue_work(t->wq, &t->worker);
}

void plx_data_endio(struct bio *bio)
{
	struct plx_bio *pb = plx_pb(bio);
	struct plx_target *t = pb->t;
	unsigned long flags;

	bio->bi_end_io = pb->saved_end_io;
	spin_lock_irqsave(&t->lock, flags);
	bio_list_add(&t->data_done, bio);
	spin_unlock_irqrestore(&t->lock, flags);
	queue_work(t->wq, &t->worker);
}

/* Freeze what @p's next write carries: later changes go to the one after. */
static void plx_node_copy(struct plx_pnode *p)
{
	memcpy(page_address(p->page), p->node, PLX_BLOCK_SIZE);
	p->writing = true;
}

static void plx_node_submit(struct plx_target *t, struct plx_pnode *p,
			    blk_opf_t flags)
{
	struct bio *bio;

	bio = bio_alloc(t->store.dev->bdev, 1,
			REQ_OP_WRITE | REQ_SYNC | REQ_META | flags, GFP_NOIO);
	bio->bi_iter.bi_sector = p->blocknr << (PLX_BLOCK_SHIFT - SECTOR_SHIFT);
	__bio_add_page(bio, p->page, PLX_BLOCK_SIZE, 0);
	bio->bi_end_io = plx_node_endio;
	bio->bi_private = p;
	submit_bio(bio);
}

static void plx_node_write(struct plx_target *t, struct plx_pnode *p,
			   blk_opf_t flags)
{
	plx_node_copy(p);
	plx_node_submit(t, p, flags);
}

/* Write every unlinked node changed during this pass of the worker. */
void plx_submit_queued(struct plx_target *t)
{
	struct plx_pnode *p, *tmp;

	list_for_each_entry_safe(p, tmp, &t->to_write, to_write) {
		list_del_init(&p->to_write);
		p->queued = false;
		plx_node_write(t, p, 0);
	}
}

static void plx_end_bios(struct bio_list *bios, blk_status_t status)
{
	struct bio *bio;

	while ((bio = bio_list_pop(bios))) {
		if (status)
			bio->bi_status = status;
		bio_endio(bio);
	}
}

static void plx_batch_endio(struct bio *bio)
{
	struct plx_target *t = bio->bi_private;
	unsigned long flags;

	spin_lock_irqsave(&t->lock, flags);
	t->batch_status = bio->bi_status;
	t->batch_flushed = true;
	spin_unlock_irqrestore(&t->lock, flags);
	bio_put(bio);
	queue_work(t->wq, &t->worker);
}

/*
 * Worker: the batch's preflush completed, so everything its commit nodes
 * link is durable; write them.  If it failed, so did their writes; and
 * after a failure no commit node may reach disk (plx_commit_ready).
 */
void plx_commit_batch_flushed(struct plx_target *t, blk_status_t status,
			      struct bio_list *retry)
{
	struct plx_pnode *c, *tmp;

	t->batch_flushing = false;
	list_for_each_entry_safe(c, tmp, &t->batch, batch) {
		list_del_init(&c->batch);
		if (!status && READ_ONCE(t->mode) == PLX_MODE_FAILED)
			status = BLK_STS_IOERR;
		if (status) {
			c->status = status;
			plx_node_done(t, c, retry);
		} else {
			plx_node_submit(t, c, c->write_fua ? REQ_FUA : 0);
		}
	}
}

/*
 * Commit nodes are written in batches: one preflush makes every component
 * of the batch durable, then the nodes go out together.  A batch starts
 * when something waits for a commit: a flush, a FUA write, a discard, a
 * snapshot, a suspend, gc_begin, the once-a-second waker; or when more
 * than PLX_MAX_COMMITS nodes are pending.  Until then acknowledged writes
 * gather, so a stream of writes costs one device flush per batch rather
 * than one per write.  A node a batch wants while its components are
 * still in flight takes no new writes until it is written, so that a
 * stream of writes beneath it cannot put its commit off for ever (4.1.5).
 */
static bool plx_commit_wanted(struct plx_target *t)
{
	struct plx_pnode *c;

	if (READ_ONCE(t->commit_asked) || READ_ONCE(t->draining) ||
	    READ_ONCE(t->snap) || !bio_list_empty(&t->flushes_waiting) ||
	    t->nr_commits > PLX_MAX_COMMITS)
		return true;
	list_for_each_entry(c, &t->commits, active)
		if (c->fua || !bio_list_empty(&c->waiting) ||
		    !bio_list_empty(&c->parked))
			return true;
	return false;
}

/* Start a batch of the commit nodes whose components have all completed. */
void plx_commit_ready(struct plx_target *t)
{
	bool want = !t->batch_flushing && plx_commit_wanted(t);
	struct plx_pnode *c;
	struct bio *bio;

	list_for_each_entry(c, &t->commits, active) {
		if (c->writing || !c->nr_waiting)
			continue;
		if (c->outstanding) {
			c->wanted |= want;
			continue;
		}
		if (c->error)
			plx_fail(t, "write_error");
		/*
		 * After a failure the tree in memory may link blocks that
		 * were never written: no commit node may reach disk.
		 */
		if (READ_ONCE(t->mode) == PLX_MODE_FAILED) {
			c->nr_waiting = 0;
			plx_end_bios(&c->waiting, c->error ?: BLK_STS_IOERR);
			plx_release_acked(t, &c->acked, true);
			continue;
		}
		if (!want)
			continue;
		bio_list_merge(&c->committing, &c->waiting);
		bio_list_init(&c->waiting);
		c->committing_acked = c->acked;
		memset(&c->acked, 0, sizeof(c->acked));
		c->nr_waiting = 0;
		list_splice_init(&c->unlinked, &c->committing_unlinked);
		c->write_fua = c->fua;
		c->fua = false;
		c->wanted = false;
		plx_node_copy(c);
		list_add_tail(&c->batch, &t->batch);
	}
	if (list_empty(&t->batch))
		return;
	WRITE_ONCE(t->commit_asked, false);
	t->batch_flushing = true;
	bio = bio_alloc(t->store.dev->bdev, 0,
			REQ_OP_WRITE | REQ_PREFLUSH | REQ_SYNC, GFP_NOIO);
	bio->bi_end_io = plx_batch_endio;
	bio->bi_private = t;
	submit_bio(bio);
}

/* gc_begin, suspend: have every pending commit written soon. */
void plx_commit_soon(struct plx_target *t)
{
	WRITE_ONCE(t->commit_asked, true);
	plx_wake_worker(t);
}

/* A commit node's write landed: everything beneath it is now linked. */
static void plx_commit_done(struct plx_target *t, struct plx_pnode *c,
			    struct bio_list *retry)
{
	struct plx_pnode *u, *tmp;

	plx_release_acked(t, &c->committing_acked, c->status != BLK_STS_OK);
	if (c->status) {
		plx_fail(t, "write_error");
		plx_end_bios(&c->committing, c->status);
	} else {
		list_for_each_entry_safe(u, tmp, &c->committing_unlinked, sibling) {
			list_del(&u->sibling);
			plx_pnode_free(t, u);
		}
		plx_end_bios(&c->committing, BLK_STS_OK);
	}
	bio_list_merge(retry, &c->parked);
	bio_list_init(&c->parked);
	if (!c->status && !c->nr_waiting && !c->outstanding &&
	    list_empty(&c->unlinked)) {
		list_del(&c->active);
		t->nr_commits--;
		plx_pnode_free(t, c);
	}
}

void plx_node_done(struct plx_target *t, struct plx_pnode *p,
		   struct bio_list *retry)
{
	struct plx_pnode *c = p->commit;

	p->writing = false;
	if (!c) {
		plx_commit_done(t, p, retry);
		return;
	}
	if (p->status && !c->error)
		c->error = p->status;
	c->outstanding--;
	if (p->rewrite) {
		p->rewrite = false;
		plx_node_write(t, p, 0);
	}
}

/*
 * A data write beneath a commit node completed.  It is acknowledged now
 * (parallax-flush.c) unless it asked for FUA or failed: those wait for
 * the commit.
 */
void plx_data_done(struct plx_target *t, struct bio *bio)
{
	struct plx_bio *pb = plx_pb(bio);
	struct plx_pnode *c = pb->commit;

	if (bio->bi_status && !c->error)
		c->error = bio->bi_status;
	c->outstanding--;
	if (bio->bi_status || (bio->bi_opf & REQ_FUA))
		bio_list_add(&c->waiting, bio);
	else
		plx_ack_early(t, c, bio);
}

/*
 * At table destruction nothing can be in flight (dm waited for every bio),
 * but after a failure pending nodes may remain; drop them.
 */
void plx_commit_abort_all(struct plx_target *t)
{
	struct plx_pnode *c, *tmp, *u, *utmp;

	list_for_each_entry_safe(c, tmp, &t->commits, active) {
		plx_release_acked(t, &c->acked, true);
		plx_release_acked(t, &c->committing_acked, true);
		list_splice_init(&c->committing_unlinked, &c->unlinked);
		list_for_each_entry_safe(u, utmp, &c->unlinked, sibling) {
			list_del(&u->sibling);
			plx_pnode_free(t, u);
		}
		list_del(&c->active);
		t->nr_commits--;
		plx_pnode_free(t, c);
	}
}
