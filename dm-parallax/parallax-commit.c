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
	if (commit)
		list_add_tail(&p->sibling, &commit->unlinked);
	else
		list_add_tail(&p->active, &t->commits);
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
	struct plx_bio *pb = dm_per_bio_data(bio, sizeof(struct plx_bio));
	struct plx_target *t = pb->t;
	unsigned long flags;

	bio->bi_end_io = pb->saved_end_io;
	spin_lock_irqsave(&t->lock, flags);
	bio_list_add(&t->data_done, bio);
	spin_unlock_irqrestore(&t->lock, flags);
	queue_work(t->wq, &t->worker);
}

static void plx_node_write(struct plx_target *t, struct plx_pnode *p,
			   blk_opf_t flags)
{
	struct bio *bio;

	memcpy(page_address(p->page), p->node, PLX_BLOCK_SIZE);
	bio = bio_alloc(t->store.dev->bdev, 1,
			REQ_OP_WRITE | REQ_SYNC | REQ_META | flags, GFP_NOIO);
	bio->bi_iter.bi_sector = p->blocknr << (PLX_BLOCK_SHIFT - SECTOR_SHIFT);
	__bio_add_page(bio, p->page, PLX_BLOCK_SIZE, 0);
	bio->bi_end_io = plx_node_endio;
	bio->bi_private = p;
	p->writing = true;
	submit_bio(bio);
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

/*
 * Write each commit node whose components have all completed.  The
 * preflush makes them durable first on a device with a volatile cache;
 * FUA is added when a bio waiting on the node asked for it.
 */
void plx_commit_ready(struct plx_target *t)
{
	struct plx_pnode *c;

	list_for_each_entry(c, &t->commits, active) {
		if (c->writing || c->outstanding || !c->nr_waiting)
			continue;
		if (c->error)
			plx_fail(t, "write_error");
		/*
		 * After a failure the tree in memory may link blocks that
		 * were never written: no commit node may reach disk.
		 */
		if (READ_ONCE(t->mode) == PLX_MODE_FAILED) {
			c->nr_waiting = 0;
			plx_end_bios(&c->waiting, c->error ?: BLK_STS_IOERR);
			continue;
		}
		bio_list_merge(&c->committing, &c->waiting);
		bio_list_init(&c->waiting);
		c->nr_waiting = 0;
		list_splice_init(&c->unlinked, &c->committing_unlinked);
		plx_node_write(t, c, REQ_PREFLUSH | (c->fua ? REQ_FUA : 0));
		c->fua = false;
	}
}

/* A commit node's write landed: everything beneath it is now linked. */
static void plx_commit_done(struct plx_target *t, struct plx_pnode *c,
			    struct bio_list *retry)
{
	struct plx_pnode *u, *tmp;

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

/* A data write beneath a commit node completed; its bio now waits. */
void plx_data_done(struct plx_target *t, struct bio *bio)
{
	struct plx_bio *pb = dm_per_bio_data(bio, sizeof(*pb));
	struct plx_pnode *c = pb->commit;

	if (bio->bi_status && !c->error)
		c->error = bio->bi_status;
	c->outstanding--;
	bio_list_add(&c->waiting, bio);
}

/*
 * At table destruction nothing can be in flight (dm waited for every bio),
 * but after a failure pending nodes may remain; drop them.
 */
void plx_commit_abort_all(struct plx_target *t)
{
	struct plx_pnode *c, *tmp, *u, *utmp;

	list_for_each_entry_safe(c, tmp, &t->commits, active) {
		list_splice_init(&c->committing_unlinked, &c->unlinked);
		list_for_each_entry_safe(u, utmp, &c->unlinked, sibling) {
			list_del(&u->sibling);
			plx_pnode_free(t, u);
		}
		list_del(&c->active);
		plx_pnode_free(t, c);
	}
}
