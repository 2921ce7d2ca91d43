// SPDX-License-Identifier: GPL-2.0
/*
 * The local write cache: bios through it, and its drain to the store.
 *
 * While the cache is logging, map() hands every write (and every flush)
 * to the writer, which copies the data into a record, writes the record
 * to the ring and acknowledges the bios once it is written.  Reads look
 * up the index first: a block whose newest data is in the log is read
 * from there.  The drainer replays written records in order through the
 * normal data path, as bios of the target's own, so the store sees the
 * same writes in the same order and the commit-node rules hold there.
 * Once what it drained is durable on the store (a flush through the same
 * path), it moves the log's drained point and frees the ring space.
 *
 * Adaptive mode logs only while the store's write latency is above the
 * threshold, and goes back to direct writes once the log has drained.
 */
#include <linux/blkdev.h>
#include <linux/crc32c.h>
#include <linux/delay.h>
#include <linux/highmem.h>
#include <linux/timekeeping.h>

#include "parallax-cache.h"
#include "parallax-target.h"

#define DM_MSG_PREFIX "parallax"

#define PLX_DRAIN_MIN_WINDOW	4
#define PLX_DRAIN_MAX_WINDOW	256

/*
 * One device per log: two VDIs, or two devices of one VDI, must never
 * share a ring.  Only the tables of one mapped device (its live table
 * and the one a reload brings in) may hold it together.
 */
static DEFINE_MUTEX(plx_cache_devs_lock);
static LIST_HEAD(plx_cache_devs);

struct plx_cache_dev {
	struct list_head list;
	dev_t dev;
	u64 vdi;
	u8 store_uuid[16];
	struct mapped_device *md;
	unsigned int users;		/* tables of that device, during a reload */
};

static int plx_cache_claim(struct plx_cache *c, struct dm_target *ti)
{
	struct mapped_device *md = dm_table_get_md(ti->table);
	struct plx_target *t = c->t;
	struct plx_cache_dev *d;
	int r = 0;

	mutex_lock(&plx_cache_devs_lock);
	list_for_each_entry(d, &plx_cache_devs, list) {
		if (d->dev != c->dev->bdev->bd_dev)
			continue;
		if (d->vdi != t->vdi_id ||
		    memcmp(d->store_uuid, t->store.geo.uuid, 16)) {
			ti->error = "Local cache device is in use by another VDI";
			r = -EBUSY;
		} else if (d->md != md) {
			ti->error = "Local cache device is in use by another device of this VDI";
			r = -EBUSY;
		} else {
			d->users++;
		}
		goto out;
	}
	d = kzalloc(sizeof(*d), GFP_KERNEL);
	if (!d) {
		r = -ENOMEM;
		goto out;
	}
	d->dev = c->dev->bdev->bd_dev;
	d->vdi = t->vdi_id;
	memcpy(d->store_uuid, t->store.geo.uuid, 16);
	d->md = md;
	d->users = 1;
	list_add(&d->list, &plx_cache_devs);
out:
	mutex_unlock(&plx_cache_devs_lock);
	return r;
}

static void plx_cache_unclaim(struct plx_cache *c)
{
	struct plx_cache_dev *d;

	mutex_lock(&plx_cache_devs_lock);
	list_for_each_entry(d, &plx_cache_devs, list) {
		if (d->dev != c->dev->bdev->bd_dev || d->vdi != c->t->vdi_id)
			continue;
		if (!--d->users) {
			list_del(&d->list);
			kfree(d);
		}
		break;
	}
	mutex_unlock(&plx_cache_devs_lock);
}

static void plx_cache_fail(struct plx_cache *c, const char *reason)
{
	WRITE_ONCE(c->failed, true);
	plx_fail(c->t, reason);
	wake_up_all(&c->drain_wait);
}

/* ---- map ------------------------------------------------------------- */

static bool plx_cache_idle(struct plx_cache *c)
{
	return !c->records && bio_list_empty(&c->incoming) &&
	       list_empty(&c->writing);
}

static bool plx_cache_should_log(struct plx_cache *c)
{
	if (c->logging || c->mode == PLX_CACHE_ALWAYS || !plx_cache_idle(c))
		return true;
	return READ_ONCE(c->store_latency_ns) >
	       (u64)c->latency_ms * NSEC_PER_MSEC;
}

/*
 * A record holds whole blocks.  A write that starts inside a block goes
 * alone (the writer fills in the rest of the block); a longer write is
 * cut at the last block boundary, and at the size of a record.
 */
static void plx_cache_split(struct plx_cache *c, struct bio *bio)
{
	struct plx_target *t = c->t;
	sector_t off = dm_target_offset(t->ti, bio->bi_iter.bi_sector);
	unsigned int in_block = off & (PLX_SECTORS_PER_BLOCK - 1);
	sector_t len = bio_sectors(bio), max;

	if (in_block || len < PLX_SECTORS_PER_BLOCK) {
		max = PLX_SECTORS_PER_BLOCK - in_block;
	} else {
		max = round_down(len, PLX_SECTORS_PER_BLOCK);
		max = min_t(sector_t, max, c->max_data * PLX_SECTORS_PER_BLOCK);
	}
	if (len > max)
		dm_accept_partial_bio(bio, max);
}

static int plx_cache_map_write(struct plx_cache *c, struct bio *bio)
{
	struct plx_bio *pb = plx_pb(bio);
	unsigned long flags;

	spin_lock_irqsave(&c->lock, flags);
	if (!plx_cache_should_log(c)) {
		spin_unlock_irqrestore(&c->lock, flags);
		atomic_set(&c->direct_writes, 1);
		pb->start_ns = ktime_get_ns();
		return PLX_CACHE_CONTINUE;
	}
	if (!c->logging)
		DMINFO_LIMIT("VDI %llu: store write latency %llu ms: logging to %s",
			     c->t->vdi_id,
			     READ_ONCE(c->store_latency_ns) / NSEC_PER_MSEC,
			     c->dev->name);
	c->logging = true;
	if (bio_op(bio) == REQ_OP_DISCARD) {
		sector_t off = dm_target_offset(c->t->ti, bio->bi_iter.bi_sector);
		unsigned int in_block = off & (PLX_SECTORS_PER_BLOCK - 1);
		sector_t max;

		/* Discard is advisory: a partial block is left alone. */
		if (in_block || bio_sectors(bio) < PLX_SECTORS_PER_BLOCK) {
			spin_unlock_irqrestore(&c->lock, flags);
			if (bio_sectors(bio) > PLX_SECTORS_PER_BLOCK - in_block)
				dm_accept_partial_bio(bio, PLX_SECTORS_PER_BLOCK -
							   in_block);
			bio_endio(bio);
			return DM_MAPIO_SUBMITTED;
		}
		max = min_t(sector_t, PLX_LOG_MAX_ENTRIES * PLX_SECTORS_PER_BLOCK,
			    round_down(bio_sectors(bio), PLX_SECTORS_PER_BLOCK));
		if (bio_sectors(bio) > max)
			dm_accept_partial_bio(bio, max);
	} else {
		plx_cache_split(c, bio);
	}
	bio_list_add(&c->incoming, bio);
	spin_unlock_irqrestore(&c->lock, flags);
	queue_work(c->wq, &c->writer);
	return DM_MAPIO_SUBMITTED;
}

/* A read of blocks whose newest data is in the log is served from there. */
static int plx_cache_map_read(struct plx_cache *c, struct bio *bio)
{
	struct plx_target *t = c->t;
	struct plx_bio *pb = plx_pb(bio);
	sector_t off = dm_target_offset(t->ti, bio->bi_iter.bi_sector);
	u64 vblock = off >> (PLX_BLOCK_SHIFT - SECTOR_SHIFT);
	u64 last = (off + bio_sectors(bio) - 1) >> (PLX_BLOCK_SHIFT - SECTOR_SHIFT);
	unsigned long found = vblock;
	void *entry;
	u64 blk;

	if (xa_empty(&c->index))
		return PLX_CACHE_CONTINUE;
	/* Counted before the lookup, so that reclaim cannot miss it. */
	spin_lock(&c->read_lock);
	pb->log_gen = c->read_gen & 1;
	atomic_inc(&c->readers[pb->log_gen]);
	spin_unlock(&c->read_lock);
	pb->log_read = true;

	entry = xa_find(&c->index, &found, last, XA_PRESENT);
	if (!entry || found != vblock) {
		plx_cache_end_io(c, bio);
		if (entry)
			plx_accept_blocks(t, bio, found - vblock);
		return PLX_CACHE_CONTINUE;
	}
	plx_accept_blocks(t, bio, 1);
	blk = xa_to_value(entry);
	if (!blk) {
		plx_cache_end_io(c, bio);
		zero_fill_bio(bio);
		bio_endio(bio);
		return DM_MAPIO_SUBMITTED;
	}
	bio_set_dev(bio, c->dev->bdev);
	bio->bi_iter.bi_sector = (blk << (PLX_BLOCK_SHIFT - SECTOR_SHIFT)) |
				 (off & (PLX_SECTORS_PER_BLOCK - 1));
	return DM_MAPIO_REMAPPED;
}

int plx_cache_map(struct plx_cache *c, struct bio *bio)
{
	unsigned long flags;

	if (bio->bi_opf & REQ_PREFLUSH) {
		/* Behind the writes the writer has, and through the log. */
		spin_lock_irqsave(&c->lock, flags);
		if (!c->logging && plx_cache_idle(c)) {
			spin_unlock_irqrestore(&c->lock, flags);
			return PLX_CACHE_CONTINUE;
		}
		bio_list_add(&c->incoming, bio);
		spin_unlock_irqrestore(&c->lock, flags);
		queue_work(c->wq, &c->writer);
		return DM_MAPIO_SUBMITTED;
	}
	if (!op_is_write(bio_op(bio)))
		return plx_cache_map_read(c, bio);
	if (READ_ONCE(c->t->mode) != PLX_MODE_OK)
		return DM_MAPIO_KILL;
	return plx_cache_map_write(c, bio);
}

void plx_cache_end_io(struct plx_cache *c, struct bio *bio)
{
	struct plx_bio *pb = plx_pb(bio);

	if (pb->log_read) {
		pb->log_read = false;
		if (atomic_dec_and_test(&c->readers[pb->log_gen]) &&
		    wq_has_sleeper(&c->read_wait))
			wake_up(&c->read_wait);
	}
	if (pb->start_ns && !bio->bi_status) {
		u64 lat = ktime_get_ns() - pb->start_ns;
		u64 avg = READ_ONCE(c->store_latency_ns);

		/* A moving average over about eight writes; races are harmless. */
		WRITE_ONCE(c->store_latency_ns, avg - avg / 8 + lat / 8);
		pb->start_ns = 0;
	}
}

/* ---- our own bios on the normal path ------------------------------- */

struct plx_own_io {
	atomic_t remaining;
	blk_status_t status;
	struct completion done;
};

static void plx_own_io_init(struct plx_own_io *io)
{
	atomic_set(&io->remaining, 1);
	io->status = BLK_STS_OK;
	init_completion(&io->done);
}

static int plx_own_io_wait(struct plx_own_io *io)
{
	if (!atomic_dec_and_test(&io->remaining))
		wait_for_completion_io(&io->done);
	return blk_status_to_errno(io->status);
}

static void plx_own_endio(struct bio *bio)
{
	struct plx_own_io *io = bio->bi_private;
	struct plx_bio *pb = plx_pb(bio);

	plx_bio_finished(pb->t, bio);
	if (bio->bi_status)
		io->status = bio->bi_status;
	bio_put(bio);
	if (atomic_dec_and_test(&io->remaining))
		complete(&io->done);
}

/* Send a bio of our own for virtual block @vblock down the data path. */
static void plx_own_submit(struct plx_cache *c, struct plx_own_io *io,
			   blk_opf_t opf, u64 vblock, struct page *page)
{
	struct plx_target *t = c->t;
	struct bio *bio;

	bio = bio_alloc_bioset(t->store.dev->bdev, page ? 1 : 0, opf, GFP_NOIO,
			       &plx_own_bios);
	memset(plx_pb(bio), 0, sizeof(struct plx_bio));
	plx_pb(bio)->t = t;
	bio->bi_iter.bi_sector = t->ti->begin +
				 (vblock << (PLX_BLOCK_SHIFT - SECTOR_SHIFT));
	if (page)
		__bio_add_page(bio, page, PLX_BLOCK_SIZE, 0);
	else if (bio_op(bio) == REQ_OP_DISCARD)
		bio->bi_iter.bi_size = PLX_BLOCK_SIZE;
	bio->bi_end_io = plx_own_endio;
	bio->bi_private = io;
	atomic_inc(&io->remaining);
	plx_defer(t, bio);
}

/* A flush through the normal path: what was drained is durable after it. */
static int plx_own_flush(struct plx_cache *c)
{
	struct plx_own_io io;

	plx_own_io_init(&io);
	plx_own_submit(c, &io, REQ_OP_WRITE | REQ_PREFLUSH | REQ_SYNC, 0, NULL);
	return plx_own_io_wait(&io);
}

/* The newest data of @vblock: from the log, or from the store. */
static int plx_cache_read_block(struct plx_cache *c, u64 vblock,
				struct page *page)
{
	void *entry = xa_load(&c->index, vblock);
	struct plx_own_io io;

	if (entry) {
		if (!xa_to_value(entry)) {
			clear_highpage(page);
			return 0;
		}
		return plx_log_read(c, xa_to_value(entry), &page, 1);
	}
	plx_own_io_init(&io);
	plx_own_submit(c, &io, REQ_OP_READ, vblock, page);
	return plx_own_io_wait(&io);
}

/* ---- the writer ------------------------------------------------------ */

/* Entries a bio adds to a record, and whether each has a data block. */
static unsigned int plx_cache_bio_blocks(struct plx_cache *c, struct bio *bio)
{
	return max_t(unsigned int, 1, bio_sectors(bio) / PLX_SECTORS_PER_BLOCK);
}

static bool plx_cache_bio_partial(struct plx_cache *c, struct bio *bio)
{
	sector_t off = dm_target_offset(c->t->ti, bio->bi_iter.bi_sector);

	return bio_op(bio) != REQ_OP_DISCARD &&
	       ((off & (PLX_SECTORS_PER_BLOCK - 1)) ||
		bio_sectors(bio) < PLX_SECTORS_PER_BLOCK);
}

/*
 * Copy @bio's data into the record's pages from page @p, at @pos within
 * it.  A segment may cross a block boundary (an unaligned buffer).
 */
static unsigned int plx_cache_copy_bio(struct plx_log_write *w,
				       struct bio *bio, unsigned int p,
				       unsigned int pos)
{
	struct bvec_iter iter;
	struct bio_vec bv;

	bio_for_each_segment(bv, bio, iter) {
		unsigned int done = 0;

		while (done < bv.bv_len) {
			unsigned int n = min(bv.bv_len - done,
					     (unsigned int)PLX_BLOCK_SIZE - pos);

			memcpy_from_page(page_address(w->pages[p]) + pos,
					 bv.bv_page, bv.bv_offset + done, n);
			done += n;
			pos += n;
			if (pos == PLX_BLOCK_SIZE) {
				pos = 0;
				p++;
			}
		}
	}
	return pos ? p + 1 : p;
}

/*
 * The records still being written hold newer data than the index: a
 * read-modify-write of a block one of them holds waits for it.
 */
static void plx_cache_wait_staged(struct plx_cache *c, u64 vblock)
{
	void *entry = xa_load(&c->staged, vblock);
	u64 seq;

	if (!entry)
		return;
	seq = xa_to_value(entry);
	wait_event(c->drain_wait, READ_ONCE(c->written_seq) > seq ||
		   READ_ONCE(c->failed));
}

static int plx_cache_stage(struct plx_cache *c, u64 vblock, u64 seq)
{
	return xa_err(xa_store(&c->staged, vblock, xa_mk_value(seq), GFP_NOIO));
}

/* Copy the bios' data into the record and fill in its header. */
static int plx_cache_fill(struct plx_cache *c, struct plx_log_write *w,
			  u64 next)
{
	struct plx_log_record *rec = page_address(w->hdr);
	struct plx_target *t = c->t;
	unsigned int n = 0, p = 0, i;
	u32 crc = ~0U;
	struct bio *bio;
	int r;

	memset(rec, 0, PLX_BLOCK_SIZE);
	bio_list_for_each(bio, &w->bios) {
		sector_t off = dm_target_offset(t->ti, bio->bi_iter.bi_sector);
		u64 vblock = off >> (PLX_BLOCK_SHIFT - SECTOR_SHIFT);
		unsigned int blocks = plx_cache_bio_blocks(c, bio);
		bool discard = bio_op(bio) == REQ_OP_DISCARD;

		if (!discard && plx_cache_bio_partial(c, bio)) {
			plx_cache_wait_staged(c, vblock);
			w->pages[w->nr_pages++] = alloc_page(GFP_NOIO | __GFP_NOFAIL);
			r = plx_cache_read_block(c, vblock, w->pages[p]);
			if (r)
				return r;
		} else if (!discard) {
			/* Its sequence number is taken: it must be written. */
			for (i = 0; i < blocks; i++)
				w->pages[w->nr_pages++] =
					alloc_page(GFP_NOIO | __GFP_NOFAIL);
		}
		for (i = 0; i < blocks; i++) {
			rec->entries[n++] = cpu_to_le64((vblock + i) |
							(discard ? PLX_LOG_DISCARD : 0));
			r = plx_cache_stage(c, vblock + i, w->seq);
			if (r)
				return r;
		}
		if (!discard)
			p = plx_cache_copy_bio(w, bio, p, (off & (PLX_SECTORS_PER_BLOCK - 1))
						  << SECTOR_SHIFT);
	}
	for (i = 0; i < w->nr_pages; i++)
		crc = crc32c(crc, page_address(w->pages[i]), PLX_BLOCK_SIZE);
	rec->seq = cpu_to_le64(w->seq);
	rec->open_gen = cpu_to_le64(c->open_gen);
	rec->type = cpu_to_le32(PLX_LOG_WRITE);
	rec->nr_entries = cpu_to_le32(n);
	rec->data_blocks = cpu_to_le32(w->nr_pages);
	rec->data_crc = cpu_to_le32(~crc);
	rec->next_block = cpu_to_le64(next);
	plx_block_seal(rec, PLX_MAGIC_LOG_RECORD, w->block, c->uuid);
	return 0;
}

/*
 * Take space for a record of @blocks blocks, under the lock.  Returns
 * false when the ring is full.
 */
static bool plx_cache_reserve(struct plx_cache *c, struct plx_log_write *w,
			      u64 blocks, u64 *next)
{
	u64 consumed;

	*next = plx_log_next_block(c, c->tail_block, blocks);
	consumed = plx_log_consumed(c, c->tail_block, *next);
	if (c->used + consumed > c->nr_blocks - PLX_LOG_FIRST_BLOCK)
		return false;
	w->seq = c->next_seq++;
	w->block = c->tail_block;
	w->consumed = consumed;
	c->tail_block = *next;
	c->used += consumed;
	c->records++;
	list_add_tail(&w->list, &c->writing);
	return true;
}

static struct plx_log_write *plx_cache_new_write(struct plx_cache *c)
{
	struct plx_log_write *w = kzalloc(sizeof(*w), GFP_NOIO);

	if (!w)
		return NULL;
	w->c = c;
	bio_list_init(&w->bios);
	w->hdr = alloc_page(GFP_NOIO);
	if (!w->hdr) {
		kfree(w);
		return NULL;
	}
	return w;
}

/*
 * A flush: every record written so far is made durable on the local
 * device.  The store is flushed too when a write went there directly
 * since the last flush.
 */
static void plx_cache_flush(struct plx_cache *c, struct bio *bio)
{
	int r = blkdev_issue_flush(c->dev->bdev);

	if (r) {
		bio->bi_status = errno_to_blk_status(r);
		bio_endio(bio);
		return;
	}
	if (!atomic_xchg(&c->direct_writes, 0)) {
		bio_endio(bio);
		return;
	}
	plx_defer(c->t, bio);
}

/*
 * A record that must be durable when written (FUA, a snapshot marker)
 * goes down only once every record before it is written, behind a
 * preflush: replay stops at the first missing record, so it must not
 * outlive one before it.
 */
static void plx_cache_submit(struct plx_cache *c, struct plx_log_write *w,
			     blk_opf_t fua)
{
	if (fua) {
		wait_event(c->drain_wait, READ_ONCE(c->written_seq) >= w->seq ||
			   READ_ONCE(c->failed));
		fua = REQ_PREFLUSH | REQ_FUA;
	}
	plx_log_submit(c, w, fua);
}

/* Writer: records out of the bios queued by map(), in arrival order. */
static void plx_cache_writer(struct work_struct *ws)
{
	struct plx_cache *c = container_of(ws, struct plx_cache, writer);
	struct plx_log_write *w = NULL;

	mutex_lock(&c->write_mutex);
	for (;;) {
		unsigned int entries = 0, blocks = 0;
		blk_opf_t fua = 0;
		struct bio *bio;
		u64 next;

		if (!w)
			w = plx_cache_new_write(c);
		spin_lock_irq(&c->lock);
		bio = bio_list_peek(&c->incoming);
		if (!bio || !w) {
			spin_unlock_irq(&c->lock);
			break;
		}
		if (bio->bi_opf & REQ_PREFLUSH) {
			bio_list_pop(&c->incoming);
			spin_unlock_irq(&c->lock);
			plx_cache_flush(c, bio);
			continue;
		}
		while ((bio = bio_list_peek(&c->incoming)) &&
		       !(bio->bi_opf & REQ_PREFLUSH)) {
			unsigned int n = plx_cache_bio_blocks(c, bio);
			bool data = bio_op(bio) != REQ_OP_DISCARD;

			if (entries && (entries + n > PLX_LOG_MAX_ENTRIES ||
					(data && blocks + n > c->max_data) ||
					plx_cache_bio_partial(c, bio)))
				break;
			bio_list_pop(&c->incoming);
			bio_list_add(&w->bios, bio);
			fua |= bio->bi_opf & REQ_FUA;
			entries += n;
			blocks += data ? n : 0;
			if (plx_cache_bio_partial(c, bio))
				break;
		}
		if (!plx_cache_reserve(c, w, 1 + blocks, &next)) {
			bio_list_merge_head(&c->incoming, &w->bios);
			bio_list_init(&w->bios);
			c->full = true;
			spin_unlock_irq(&c->lock);
			queue_work(c->wq, &c->drainer);
			break;
		}
		c->full = false;
		spin_unlock_irq(&c->lock);

		if (plx_cache_fill(c, w, next)) {
			/* Its sequence number is taken: nothing may follow it. */
			plx_cache_fail(c, "local_cache_write_failed");
			spin_lock_irq(&c->lock);
			w->status = BLK_STS_IOERR;
			w->done = true;
			spin_unlock_irq(&c->lock);
			queue_work(c->wq, &c->completer);
		} else {
			plx_cache_submit(c, w, fua);
		}
		w = NULL;
	}
	mutex_unlock(&c->write_mutex);
	if (w) {
		plx_log_write_free(w);
	} else if (!bio_list_empty(&c->incoming) && !READ_ONCE(c->full)) {
		/* Out of memory for a record: try again shortly. */
		msleep(20);
		queue_work(c->wq, &c->writer);
	}
}

/* Point the index at the blocks of a written record. */
static int plx_cache_index(struct plx_cache *c, struct plx_log_write *w)
{
	const struct plx_log_record *rec = page_address(w->hdr);
	u32 i, n = le32_to_cpu(rec->nr_entries);
	u64 data = w->block + 1;

	if (le32_to_cpu(rec->type) != PLX_LOG_WRITE)
		return 0;
	for (i = 0; i < n; i++) {
		u64 e = le64_to_cpu(rec->entries[i]);
		u64 at = (e & PLX_LOG_DISCARD) ? 0 : data++;
		int r = xa_err(xa_store(&c->index, e & ~PLX_LOG_DISCARD,
					xa_mk_value(at), GFP_NOIO));

		if (r)
			return r;
		xa_cmpxchg(&c->staged, e & ~PLX_LOG_DISCARD, xa_mk_value(w->seq),
			   NULL, GFP_NOIO);
	}
	return 0;
}

/*
 * Completer: records finish in any order but are indexed and
 * acknowledged in sequence order, so that a newer record always wins in
 * the index and nothing is acknowledged behind a record that failed.
 */
static void plx_cache_completer(struct work_struct *ws)
{
	struct plx_cache *c = container_of(ws, struct plx_cache, completer);
	struct plx_log_write *w;
	blk_status_t status;
	struct bio *bio;

	for (;;) {
		spin_lock_irq(&c->lock);
		w = list_first_entry_or_null(&c->writing, struct plx_log_write,
					     list);
		if (!w || !w->done) {
			spin_unlock_irq(&c->lock);
			break;
		}
		list_del(&w->list);
		spin_unlock_irq(&c->lock);

		status = w->status;
		if (!status && READ_ONCE(c->failed))
			status = BLK_STS_IOERR;
		if (!status && plx_cache_index(c, w))
			status = BLK_STS_RESOURCE;
		if (status) {
			DMERR_LIMIT("VDI %llu: local cache record %llu failed",
				    c->t->vdi_id, w->seq);
			plx_cache_fail(c, "local_cache_write_failed");
		} else {
			spin_lock_irq(&c->lock);
			c->written_seq = w->seq + 1;
			spin_unlock_irq(&c->lock);
		}
		while ((bio = bio_list_pop(&w->bios))) {
			bio->bi_status = status;
			bio_endio(bio);
		}
		if (w->waiter) {
			w->status = status;
			complete(w->waiter);
		} else {
			plx_log_write_free(w);
		}
		wake_up_all(&c->drain_wait);
		queue_work(c->wq, &c->drainer);
	}
}

/* ---- the drainer ---------------------------------------------------- */

/*
 * Pace the drain by the store's latency: the window of writes in flight
 * shrinks while a window takes longer than the threshold (or twice the
 * fastest seen), and grows while it does not, so the drain takes what
 * the store can give without flooding it again.
 */
static void plx_cache_pace(struct plx_cache *c, u64 elapsed_ns)
{
	u64 limit = max_t(u64, (u64)c->latency_ms * NSEC_PER_MSEC,
			  2 * c->fastest_window_ns);

	if (!c->fastest_window_ns || elapsed_ns < c->fastest_window_ns)
		c->fastest_window_ns = elapsed_ns;
	if (elapsed_ns > limit)
		c->window = max_t(unsigned int, c->window / 2,
				  PLX_DRAIN_MIN_WINDOW);
	else
		c->window = min_t(unsigned int, c->window + 8,
				  PLX_DRAIN_MAX_WINDOW);
}

static int plx_cache_apply_write(struct plx_cache *c, u64 block,
				 const struct plx_log_record *rec)
{
	u32 i, n = le32_to_cpu(rec->nr_entries);
	u32 data = le32_to_cpu(rec->data_blocks);
	unsigned int sent = 0, p = 0;
	struct plx_own_io io;
	u32 crc = ~0U;
	u64 start;
	int r;

	r = data ? plx_log_read(c, block + 1, c->drain_pages, data) : 0;
	if (r)
		return r;
	for (i = 0; i < data; i++)
		crc = crc32c(crc, page_address(c->drain_pages[i]), PLX_BLOCK_SIZE);
	if (~crc != le32_to_cpu(rec->data_crc)) {
		DMERR("VDI %llu: local cache record at %llu: data checksum mismatch",
		      c->t->vdi_id, block);
		return -EUCLEAN;
	}

	plx_own_io_init(&io);
	start = ktime_get_ns();
	for (i = 0; i < n; i++) {
		u64 e = le64_to_cpu(rec->entries[i]);

		if (e & PLX_LOG_DISCARD)
			plx_own_submit(c, &io, REQ_OP_DISCARD,
				       e & ~PLX_LOG_DISCARD, NULL);
		else
			plx_own_submit(c, &io, REQ_OP_WRITE, e,
				       c->drain_pages[p++]);
		if (++sent < c->window && i + 1 < n)
			continue;
		r = plx_own_io_wait(&io);
		if (r)
			return r;
		plx_cache_pace(c, ktime_get_ns() - start);
		plx_own_io_init(&io);
		start = ktime_get_ns();
		sent = 0;
	}

	/* From now on the store has it: reads go there, unless newer. */
	p = 0;
	for (i = 0; i < n; i++) {
		u64 e = le64_to_cpu(rec->entries[i]);
		u64 at = (e & PLX_LOG_DISCARD) ? 0 : block + 1 + p++;

		xa_cmpxchg(&c->index, e & ~PLX_LOG_DISCARD, xa_mk_value(at),
			   NULL, GFP_NOIO);
	}
	c->drained_bytes += (u64)data << PLX_BLOCK_SHIFT;
	return 0;
}

static int plx_cache_apply_snapshot(struct plx_cache *c,
				    const struct plx_log_record *rec)
{
	struct plx_target *t = c->t;
	u64 want = le64_to_cpu(rec->snap_seq), seq;
	char label[PLX_LABEL_LEN];
	int r;

	/* Taken before a crash that came before the log's drained point. */
	if (le64_to_cpu(t->vdi.snap_seq) < want) {
		strscpy_pad(label, rec->label, sizeof(label));
		while ((r = plx_snapshot(t, label[0] ? label : NULL, &seq)) ==
		       -EBUSY)
			usleep_range(1000, 2000);
		if (r)
			return r;
		if (seq != want)
			DMWARN("VDI %llu: snapshot from the local cache took seq %llu, not %llu",
			       t->vdi_id, seq, want);
	}
	spin_lock_irq(&c->lock);
	c->markers--;
	c->first_marker_seq++;
	spin_unlock_irq(&c->lock);
	return 0;
}

/* Apply the record at the drain point. */
static int plx_cache_apply(struct plx_cache *c, u64 *next)
{
	struct plx_log_record *rec = page_address(c->drain_hdr);
	enum plx_err err;
	int r;

	r = plx_log_read(c, c->drain_block, &c->drain_hdr, 1);
	if (r)
		return r;
	err = plx_log_record_check(rec, c->drain_block, c->uuid, c->nr_blocks);
	if (err || le64_to_cpu(rec->seq) != c->drain_seq) {
		DMERR("VDI %llu: local cache record %llu at %llu: %s",
		      c->t->vdi_id, c->drain_seq, c->drain_block,
		      err ? plx_strerror(err) : "wrong sequence number");
		return -EUCLEAN;
	}
	*next = le64_to_cpu(rec->next_block);
	if (le32_to_cpu(rec->type) == PLX_LOG_SNAPSHOT)
		return plx_cache_apply_snapshot(c, rec);
	return plx_cache_apply_write(c, c->drain_block, rec);
}

/*
 * What was drained is made durable on the store, the log's drained point
 * moves past it, and its space is freed once no read still uses it.
 */
static int plx_cache_checkpoint(struct plx_cache *c)
{
	unsigned int old;
	bool was_full;
	int r;

	if (c->drain_seq == c->head_seq)
		return 0;
	r = plx_own_flush(c);
	if (r)
		return r;
	r = plx_log_write_super(c, c->drain_block, c->drain_seq);
	if (r) {
		plx_cache_fail(c, "local_cache_write_failed");
		return r;
	}
	spin_lock(&c->read_lock);
	old = c->read_gen & 1;
	c->read_gen++;
	spin_unlock(&c->read_lock);
	wait_event(c->read_wait, !atomic_read(&c->readers[old]));

	spin_lock_irq(&c->lock);
	c->used -= c->drained_consumed;
	c->records -= c->drain_seq - c->head_seq;
	c->head_block = c->drain_block;
	c->head_seq = c->drain_seq;
	/* The writer sets it again if its record still does not fit. */
	was_full = c->full;
	c->full = false;
	/* Drained: adaptive mode writes to the store again. */
	if (c->mode == PLX_CACHE_ADAPTIVE && c->logging && plx_cache_idle(c)) {
		c->logging = false;
		WRITE_ONCE(c->store_latency_ns, 0);
		DMINFO_LIMIT("VDI %llu: local cache drained: writing to the store",
			     c->t->vdi_id);
	}
	spin_unlock_irq(&c->lock);
	c->drained_consumed = 0;
	if (was_full)
		queue_work(c->wq, &c->writer);
	wake_up_all(&c->drain_wait);
	return 0;
}

static void plx_cache_drainer(struct work_struct *ws)
{
	struct plx_cache *c = container_of(ws, struct plx_cache, drainer);
	u64 quarter = (c->nr_blocks - PLX_LOG_FIRST_BLOCK) / 4;
	int r = 0;

	if (!READ_ONCE(c->opened) || READ_ONCE(c->failed) ||
	    READ_ONCE(c->drain_error))
		return;
	for (;;) {
		u64 next;

		spin_lock_irq(&c->lock);
		if (c->drain_seq >= c->written_seq) {
			spin_unlock_irq(&c->lock);
			break;
		}
		spin_unlock_irq(&c->lock);
		r = plx_cache_apply(c, &next);
		if (r == -EUCLEAN) {
			/* The local disk lost what it held: see the doc. */
			plx_cache_fail(c, "local_cache_corrupt");
			return;
		}
		if (r)
			break;
		c->drained_consumed += plx_log_consumed(c, c->drain_block, next);
		spin_lock_irq(&c->lock);
		c->drain_block = next;
		c->drain_seq++;
		spin_unlock_irq(&c->lock);
		if (c->drained_consumed >= quarter || READ_ONCE(c->full)) {
			r = plx_cache_checkpoint(c);
			if (r)
				break;
		}
	}
	if (!r)
		r = plx_cache_checkpoint(c);
	if (r) {
		DMERR_LIMIT("VDI %llu: local cache drain stopped: %d",
			    c->t->vdi_id, r);
		WRITE_ONCE(c->drain_error, r);
		wake_up_all(&c->drain_wait);
	}
}

/* ---- snapshots, drain, status ---------------------------------------- */

/*
 * A snapshot taken while records wait in the log goes into it as a
 * marker, with the sequence number it will take when the drain reaches
 * it.  Returns PLX_CACHE_CONTINUE when the log is empty: the snapshot is
 * taken at once.
 */
int plx_cache_snapshot(struct plx_cache *c, const char *label, u64 *seq)
{
	DECLARE_COMPLETION_ONSTACK(done);
	struct plx_log_record *rec;
	struct plx_log_write *w;
	int r = 0;
	u64 next;

	w = plx_cache_new_write(c);
	if (!w)
		return -ENOMEM;
	w->waiter = &done;
	mutex_lock(&c->write_mutex);
	spin_lock_irq(&c->lock);
	if (plx_cache_idle(c)) {
		spin_unlock_irq(&c->lock);
		mutex_unlock(&c->write_mutex);
		plx_log_write_free(w);
		return PLX_CACHE_CONTINUE;
	}
	while (!plx_cache_reserve(c, w, 1, &next)) {
		c->full = true;
		spin_unlock_irq(&c->lock);
		queue_work(c->wq, &c->drainer);
		wait_event(c->drain_wait, !READ_ONCE(c->full) ||
			   READ_ONCE(c->failed) || READ_ONCE(c->drain_error));
		spin_lock_irq(&c->lock);
		if (c->failed || c->drain_error) {
			spin_unlock_irq(&c->lock);
			mutex_unlock(&c->write_mutex);
			plx_log_write_free(w);
			return -EIO;
		}
	}
	*seq = c->markers ? c->first_marker_seq + c->markers :
			    le64_to_cpu(c->t->vdi.snap_seq) + 1;
	if (!c->markers++)
		c->first_marker_seq = *seq;
	spin_unlock_irq(&c->lock);

	rec = page_address(w->hdr);
	memset(rec, 0, PLX_BLOCK_SIZE);
	rec->seq = cpu_to_le64(w->seq);
	rec->open_gen = cpu_to_le64(c->open_gen);
	rec->type = cpu_to_le32(PLX_LOG_SNAPSHOT);
	rec->next_block = cpu_to_le64(next);
	rec->snap_seq = cpu_to_le64(*seq);
	if (label)
		strscpy_pad(rec->label, label, sizeof(rec->label));
	plx_block_seal(rec, PLX_MAGIC_LOG_RECORD, w->block, c->uuid);
	plx_cache_submit(c, w, REQ_FUA);
	mutex_unlock(&c->write_mutex);

	wait_for_completion(&done);
	if (w->status)
		r = blk_status_to_errno(w->status);
	plx_log_write_free(w);
	return r;
}

/* Wait until every record written before the call is drained. */
static bool plx_cache_drained(struct plx_cache *c, u64 target)
{
	return READ_ONCE(c->head_seq) >= target || READ_ONCE(c->failed) ||
	       READ_ONCE(c->drain_error);
}

/*
 * Wait until everything logged so far is on the store.  The drain message
 * waits @killable: a signal ends the wait, not the drain.
 */
int plx_cache_drain(struct plx_cache *c, bool killable)
{
	u64 target;
	int r;

	flush_work(&c->writer);
	spin_lock_irq(&c->lock);
	target = c->next_seq;
	spin_unlock_irq(&c->lock);
	WRITE_ONCE(c->drain_error, 0);
	queue_work(c->wq, &c->drainer);
	if (!killable)
		wait_event(c->drain_wait, plx_cache_drained(c, target));
	else if (wait_event_killable(c->drain_wait,
				     plx_cache_drained(c, target)))
		return -EINTR;
	if (READ_ONCE(c->head_seq) >= target)
		return 0;
	r = READ_ONCE(c->drain_error);
	return r ? r : -EIO;
}

/* The waker, once a second: the drain rate, and a retry after an error. */
void plx_cache_tick(struct plx_cache *c)
{
	unsigned long now = jiffies;
	u64 bytes = c->drained_bytes;

	if (time_after_eq(now, c->rate_stamp + 2 * HZ)) {
		c->rate_kib = div64_u64((bytes - c->rate_bytes) * HZ,
					(u64)(now - c->rate_stamp) * 1024);
		c->rate_bytes = bytes;
		c->rate_stamp = now;
	}
	if (READ_ONCE(c->drain_error) && !READ_ONCE(c->failed)) {
		WRITE_ONCE(c->drain_error, 0);
		queue_work(c->wq, &c->drainer);
	}
}

static const char *plx_cache_state(struct plx_cache *c)
{
	if (READ_ONCE(c->failed))
		return "failed";
	if (READ_ONCE(c->full))
		return "full";
	return READ_ONCE(c->logging) ? "logging" : "direct";
}

void plx_cache_status(struct plx_cache *c, char *result, unsigned int maxlen,
		      unsigned int *szp)
{
	unsigned int sz = *szp, i, markers;
	u64 used, records, first;

	spin_lock_irq(&c->lock);
	used = c->used;
	records = c->records;
	markers = c->markers;
	first = c->first_marker_seq;
	spin_unlock_irq(&c->lock);
	DMEMIT(" %s %s %llu %llu %llu %llu ",
	       c->mode == PLX_CACHE_ALWAYS ? "always" : "adaptive",
	       plx_cache_state(c), used, c->nr_blocks - PLX_LOG_FIRST_BLOCK,
	       records, c->rate_kib);
	if (!markers)
		DMEMIT("-");
	for (i = 0; i < markers; i++)
		DMEMIT("%s%llu", i ? "," : "", first + i);
	*szp = sz;
}

/* ---- life cycle ----------------------------------------------------- */

int plx_cache_create(struct plx_target *t, struct dm_target *ti,
		     const char *path, enum plx_cache_mode mode,
		     unsigned int latency_ms)
{
	struct plx_cache *c;
	unsigned int i;
	int r;

	c = kzalloc(sizeof(*c), GFP_KERNEL);
	if (!c) {
		ti->error = "Out of memory";
		return -ENOMEM;
	}
	t->cache = c;
	c->t = t;
	c->mode = mode;
	c->latency_ms = latency_ms;
	c->logging = mode == PLX_CACHE_ALWAYS;
	c->window = PLX_DRAIN_MIN_WINDOW;
	c->rate_stamp = jiffies;
	spin_lock_init(&c->lock);
	spin_lock_init(&c->read_lock);
	bio_list_init(&c->incoming);
	INIT_LIST_HEAD(&c->writing);
	init_waitqueue_head(&c->drain_wait);
	init_waitqueue_head(&c->read_wait);
	xa_init(&c->index);
	xa_init(&c->staged);
	mutex_init(&c->write_mutex);
	INIT_WORK(&c->writer, plx_cache_writer);
	INIT_WORK(&c->completer, plx_cache_completer);
	INIT_WORK(&c->drainer, plx_cache_drainer);

	r = plx_log_open(c, ti, path);
	if (r)
		return r;
	r = plx_cache_claim(c, ti);
	if (r)
		return r;
	c->claimed = true;
	c->wq = alloc_workqueue("dm-" DM_MSG_PREFIX "-cache",
				WQ_MEM_RECLAIM | WQ_UNBOUND, 0);
	c->drain_hdr = alloc_page(GFP_KERNEL);
	c->drain_pages = kcalloc(c->max_data, sizeof(struct page *), GFP_KERNEL);
	if (!c->wq || !c->drain_hdr || !c->drain_pages)
		goto nomem;
	for (i = 0; i < c->max_data; i++) {
		c->drain_pages[i] = alloc_page(GFP_KERNEL);
		if (!c->drain_pages[i])
			goto nomem;
	}
	return 0;
nomem:
	ti->error = "Out of memory";
	return -ENOMEM;
}

void plx_cache_destroy(struct plx_cache *c)
{
	unsigned int i;

	if (c->wq)
		destroy_workqueue(c->wq);
	if (c->drain_pages) {
		for (i = 0; i < c->max_data; i++)
			if (c->drain_pages[i])
				__free_page(c->drain_pages[i]);
		kfree(c->drain_pages);
	}
	if (c->drain_hdr)
		__free_page(c->drain_hdr);
	xa_destroy(&c->index);
	xa_destroy(&c->staged);
	if (c->claimed)
		plx_cache_unclaim(c);
	if (c->dev)
		dm_put_device(c->t->ti, c->dev);
	kfree(c);
}

/* Preresume: the first replays the log, before any bio is served. */
int plx_cache_resume(struct plx_cache *c)
{
	int r;

	if (!c->opened) {
		r = plx_log_replay(c);
		if (r)
			return r;
		WRITE_ONCE(c->opened, true);
	}
	WRITE_ONCE(c->drain_error, 0);
	queue_work(c->wq, &c->drainer);
	return 0;
}

/*
 * Postsuspend: no bio is in flight and no new one comes, so the drain
 * can empty the log.  If it cannot (no space, an I/O error) the records
 * stay, and the next table replays them.
 */
void plx_cache_suspend(struct plx_cache *c)
{
	int r;

	if (!c->opened)
		return;
	r = plx_cache_drain(c, false);
	if (r)
		DMERR("VDI %llu: local cache not drained at suspend (%d): %llu records stay in %s",
		      c->t->vdi_id, r, c->records, c->dev->name);
	flush_workqueue(c->wq);
}

void plx_cache_table(struct plx_cache *c, char *buf, size_t len, int *pos,
		     unsigned int *n)
{
	*pos += scnprintf(buf + *pos, len - *pos, " local_cache %s",
			  c->dev->name);
	*n += 2;
	if (c->mode == PLX_CACHE_ALWAYS) {
		*pos += scnprintf(buf + *pos, len - *pos,
				  " local_cache_mode always");
		*n += 2;
	}
	if (c->latency_ms != PLX_DEFAULT_CACHE_LATENCY_MS) {
		*pos += scnprintf(buf + *pos, len - *pos,
				  " local_cache_latency_ms %u", c->latency_ms);
		*n += 2;
	}
}
