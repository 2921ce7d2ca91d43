// SPDX-License-Identifier: GPL-2.0
/*
 * The local write cache's ring on the host's own disk: opening it,
 * replaying it after a crash, and the I/O that reads and writes records.
 *
 * Replay trusts nothing it finds: it follows records from the drained
 * point while each is whole (header and data checksums), carries the
 * next sequence number and an open generation no older than the one
 * before.  The first record that fails ends the log; every record after
 * it was never acknowledged as durable, because a record is written only
 * behind those before it and a flush covers them all.
 */
#include <linux/blkdev.h>
#include <linux/crc32c.h>

#include "parallax-cache.h"
#include "parallax-target.h"

#define DM_MSG_PREFIX "parallax"

static sector_t plx_log_sector(u64 block)
{
	return block << (PLX_BLOCK_SHIFT - SECTOR_SHIFT);
}

/* The next bio of a chain, for log block @block on. */
static struct bio *plx_log_next_bio(struct plx_cache *c, struct bio *prev,
				    unsigned int left, blk_opf_t opf,
				    u64 block)
{
	unsigned int vecs = min_t(unsigned int, left, BIO_MAX_VECS);
	struct bio *bio;

	bio = blk_next_bio(prev, c->dev->bdev, vecs, opf, GFP_NOIO);
	bio->bi_iter.bi_sector = plx_log_sector(block);
	return bio;
}

/* Read @nr consecutive log blocks from @block into @pages. */
int plx_log_read(struct plx_cache *c, u64 block, struct page **pages,
		 unsigned int nr)
{
	struct bio *bio = NULL;
	unsigned int i;
	int r;

	for (i = 0; i < nr; i++) {
		if (!bio || !bio_add_page(bio, pages[i], PLX_BLOCK_SIZE, 0)) {
			bio = plx_log_next_bio(c, bio, nr - i, REQ_OP_READ,
					       block + i);
			__bio_add_page(bio, pages[i], PLX_BLOCK_SIZE, 0);
		}
	}
	r = submit_bio_wait(bio);
	bio_put(bio);
	return r;
}

static void plx_log_write_endio(struct bio *bio)
{
	struct plx_log_write *w = bio->bi_private;
	struct plx_cache *c = w->c;
	unsigned long flags;

	spin_lock_irqsave(&c->lock, flags);
	w->status = bio->bi_status;
	w->done = true;
	spin_unlock_irqrestore(&c->lock, flags);
	bio_put(bio);
	queue_work(c->wq, &c->completer);
}

/* Write record @w, its header and then its data, as one chain. */
void plx_log_submit(struct plx_cache *c, struct plx_log_write *w,
		    blk_opf_t flags)
{
	blk_opf_t opf = REQ_OP_WRITE | REQ_SYNC | flags;
	unsigned int i, nr = 1 + w->nr_pages;
	struct bio *bio = NULL;

	for (i = 0; i < nr; i++) {
		struct page *page = i ? w->pages[i - 1] : w->hdr;

		if (!bio || !bio_add_page(bio, page, PLX_BLOCK_SIZE, 0)) {
			bio = plx_log_next_bio(c, bio, nr - i, opf, w->block + i);
			__bio_add_page(bio, page, PLX_BLOCK_SIZE, 0);
			/* Only the first needs to wait for earlier writes. */
			opf &= ~REQ_PREFLUSH;
		}
	}
	bio->bi_private = w;
	bio->bi_end_io = plx_log_write_endio;
	submit_bio(bio);
}

void plx_log_write_free(struct plx_log_write *w)
{
	unsigned int i;

	for (i = 0; i < w->nr_pages; i++)
		__free_page(w->pages[i]);
	if (w->hdr)
		__free_page(w->hdr);
	kfree(w);
}

/*
 * Where the record after one of @blocks blocks at @block starts.  A
 * record never wraps: when the largest one would not fit before the end,
 * the next starts at the beginning.
 */
u64 plx_log_next_block(struct plx_cache *c, u64 block, u64 blocks)
{
	u64 next = block + blocks;

	if (next + 1 + c->max_data > c->nr_blocks)
		next = PLX_LOG_FIRST_BLOCK;
	return next;
}

/* Ring blocks a record at @block holds, the gap before a wrap included. */
u64 plx_log_consumed(struct plx_cache *c, u64 block, u64 next)
{
	return next > block ? next - block : c->nr_blocks - block;
}

/* Rewrite the superblock: it is under 512 bytes, so the write is atomic. */
int plx_log_write_super(struct plx_cache *c, u64 head_block, u64 head_seq)
{
	struct plx_log_super *s;
	struct page *page;
	struct bio *bio;
	int r;

	page = alloc_page(GFP_NOIO | __GFP_ZERO);
	if (!page)
		return -ENOMEM;
	s = page_address(page);
	memcpy(s, &c->sb, sizeof(*s));
	s->head_block = cpu_to_le64(head_block);
	s->head_seq = cpu_to_le64(head_seq);
	plx_block_seal(s, PLX_MAGIC_LOG_SUPER, 0, c->uuid);

	bio = bio_alloc(c->dev->bdev, 1,
			REQ_OP_WRITE | REQ_SYNC | REQ_META | REQ_FUA, GFP_NOIO);
	bio->bi_iter.bi_sector = 0;
	__bio_add_page(bio, page, PLX_BLOCK_SIZE, 0);
	r = submit_bio_wait(bio);
	bio_put(bio);
	if (!r)
		memcpy(&c->sb, s, sizeof(*s));
	__free_page(page);
	return r;
}

/* Table load: open the device and check its superblock and binding. */
int plx_log_open(struct plx_cache *c, struct dm_target *ti, const char *path)
{
	struct plx_target *t = c->t;
	struct page *page;
	enum plx_err err;
	u64 dev_blocks, vdi;
	int r;

	r = dm_get_device(ti, path, dm_table_get_mode(ti->table), &c->dev);
	if (r) {
		ti->error = "Cannot open the local cache device";
		return r;
	}
	if (c->dev->bdev == t->store.dev->bdev) {
		ti->error = "The local cache cannot be the blockstore";
		return -EINVAL;
	}
	page = alloc_page(GFP_KERNEL);
	if (!page)
		return -ENOMEM;
	r = plx_log_read(c, 0, &page, 1);
	if (r) {
		ti->error = "Cannot read the local cache superblock";
		goto out;
	}
	memcpy(&c->sb, page_address(page), sizeof(c->sb));
	dev_blocks = bdev_nr_bytes(c->dev->bdev) >> PLX_BLOCK_SHIFT;
	err = plx_log_super_check(page_address(page), dev_blocks);
	if (err) {
		DMERR("local cache %s: superblock: %s", c->dev->name,
		      plx_strerror(err));
		ti->error = "Not a parallax local cache (see parallax cache-init)";
		r = -EINVAL;
		goto out;
	}
	memcpy(c->uuid, c->sb.hdr.uuid, sizeof(c->uuid));
	c->nr_blocks = le64_to_cpu(c->sb.nr_blocks);
	c->max_data = min_t(u64, PLX_LOG_MAX_DATA, (c->nr_blocks - 1) / 4 - 1);

	/*
	 * A log bound to another VDI is refused outright, even if it looks
	 * drained: whether it is can only be known by replaying it, and
	 * cache-init is the way to give a log to another VDI.
	 */
	vdi = le64_to_cpu(c->sb.vdi);
	if (vdi && (vdi != t->vdi_id ||
		    memcmp(c->sb.store_uuid, t->store.geo.uuid,
			   sizeof(c->sb.store_uuid)))) {
		DMERR("local cache %s belongs to VDI %llu of another store or VDI",
		      c->dev->name, vdi);
		ti->error = "Local cache belongs to another VDI (see parallax cache-init)";
		r = -EBUSY;
	}
out:
	__free_page(page);
	return r;
}

/* Replay: one record at @block, checked; its data is read into @pages. */
static int plx_log_check_record(struct plx_cache *c, u64 block, u64 seq,
				u64 min_gen, struct page *hdr,
				struct page **pages)
{
	struct plx_log_record *rec = page_address(hdr);
	enum plx_err err;
	unsigned int i, n;
	u32 crc = ~0U;
	int r;

	r = plx_log_read(c, block, &hdr, 1);
	if (r)
		return r;
	err = plx_log_record_check(rec, block, c->uuid, c->nr_blocks);
	if (err)
		return -ENODATA;
	if (le64_to_cpu(rec->seq) != seq ||
	    le64_to_cpu(rec->open_gen) < min_gen ||
	    le64_to_cpu(rec->open_gen) > c->open_gen)
		return -ENODATA;
	n = le32_to_cpu(rec->data_blocks);
	if (n > c->max_data)
		return -ENODATA;
	if (!n)
		return 0;
	r = plx_log_read(c, block + 1, pages, n);
	if (r)
		return r;
	for (i = 0; i < n; i++)
		crc = crc32c(crc, page_address(pages[i]), PLX_BLOCK_SIZE);
	return ~crc == le32_to_cpu(rec->data_crc) ? 0 : -ENODATA;
}

static int plx_log_index_record(struct plx_cache *c, u64 block,
				const struct plx_log_record *rec)
{
	u32 i, n = le32_to_cpu(rec->nr_entries);
	u64 data = block + 1;
	int r;

	for (i = 0; i < n; i++) {
		u64 e = le64_to_cpu(rec->entries[i]);
		u64 at = (e & PLX_LOG_DISCARD) ? 0 : data++;

		r = xa_err(xa_store(&c->index, e & ~PLX_LOG_DISCARD,
				    xa_mk_value(at), GFP_KERNEL));
		if (r)
			return r;
	}
	return 0;
}

/*
 * First resume: find every record written since the drained point,
 * index its blocks so that reads see them, and count the snapshots
 * waiting in it.  Then bump the open generation and bind the log to this
 * VDI before any new record is written.
 */
int plx_log_replay(struct plx_cache *c)
{
	struct plx_target *t = c->t;
	u64 block = le64_to_cpu(c->sb.head_block);
	u64 seq = le64_to_cpu(c->sb.head_seq);
	struct page **pages, *hdr;
	u64 gen = 0, used = 0, records = 0;
	unsigned int i;
	int r = -ENOMEM;

	c->open_gen = le64_to_cpu(c->sb.open_gen);
	pages = kcalloc(c->max_data, sizeof(*pages), GFP_KERNEL);
	hdr = alloc_page(GFP_KERNEL);
	if (!pages || !hdr)
		goto out;
	for (i = 0; i < c->max_data; i++) {
		pages[i] = alloc_page(GFP_KERNEL);
		if (!pages[i])
			goto out;
	}
	c->head_block = block;
	c->head_seq = seq;
	for (;;) {
		struct plx_log_record *rec = page_address(hdr);
		u64 next;

		r = plx_log_check_record(c, block, seq, gen, hdr, pages);
		if (r == -ENODATA)
			break;
		if (r) {
			DMERR("local cache %s: cannot read record at %llu: %d",
			      c->dev->name, block, r);
			goto out;
		}
		if (le32_to_cpu(rec->type) == PLX_LOG_SNAPSHOT) {
			if (!c->markers++)
				c->first_marker_seq = le64_to_cpu(rec->snap_seq);
		} else {
			r = plx_log_index_record(c, block, rec);
			if (r)
				goto out;
		}
		gen = le64_to_cpu(rec->open_gen);
		next = le64_to_cpu(rec->next_block);
		used += plx_log_consumed(c, block, next);
		records++;
		block = next;
		seq++;
		if (used > c->nr_blocks) {
			DMERR("local cache %s: records overlap", c->dev->name);
			r = -EUCLEAN;
			goto out;
		}
	}
	c->tail_block = block;
	c->next_seq = seq;
	c->written_seq = seq;
	c->drain_block = c->head_block;
	c->drain_seq = c->head_seq;
	c->used = used;
	c->records = records;
	if (records)
		DMINFO("VDI %llu: local cache %s: %llu records to drain, %u snapshots",
		       t->vdi_id, c->dev->name, records, c->markers);

	c->sb.open_gen = cpu_to_le64(++c->open_gen);
	c->sb.vdi = cpu_to_le64(t->vdi_id);
	memcpy(c->sb.store_uuid, t->store.geo.uuid, sizeof(c->sb.store_uuid));
	r = plx_log_write_super(c, c->head_block, c->head_seq);
	if (r)
		DMERR("local cache %s: cannot write the superblock: %d",
		      c->dev->name, r);
out:
	if (pages)
		for (i = 0; i < c->max_data; i++)
			if (pages[i])
				__free_page(pages[i]);
	kfree(pages);
	if (hdr)
		__free_page(hdr);
	return r;
}
