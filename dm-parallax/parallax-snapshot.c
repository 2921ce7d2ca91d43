// SPDX-License-Identifier: GPL-2.0
/*
 * Live snapshots (thesis 3.3, 4.2).
 *
 * A snapshot copies the root with every link read-only, appends the old
 * root to the snapshot log, and points the VDI record at the new root.
 * The new root and log block are written first and the VDI record last,
 * with a preflush and FUA: the record is the commit point, so a crash
 * before it leaves only unreachable blocks for the collector.
 *
 * Reads and in-place writes are never held.  Writes that need the worker
 * wait while the commits already in flight finish, so that the old root
 * on disk is complete; the worker then takes the snapshot in three
 * writes.  Bios that walked the old root are waited for before the
 * message returns, after which the snapshot never changes.
 */
#include <linux/dm-bufio.h>
#include <linux/timekeeping.h>

#include "parallax-target.h"

#define DM_MSG_PREFIX "parallax"

struct plx_sync_io {
	atomic_t remaining;
	blk_status_t status;
	struct completion done;
};

static void plx_sync_endio(struct bio *bio)
{
	struct plx_sync_io *io = bio->bi_private;

	if (bio->bi_status)
		io->status = bio->bi_status;
	bio_put(bio);
	if (atomic_dec_and_test(&io->remaining))
		complete(&io->done);
}

static void plx_submit_page(struct plx_target *t, struct plx_sync_io *io,
			    u64 blocknr, struct page *page, blk_opf_t flags)
{
	struct bio *bio;

	bio = bio_alloc(t->store.dev->bdev, 1,
			REQ_OP_WRITE | REQ_SYNC | REQ_META | flags, GFP_NOIO);
	bio->bi_iter.bi_sector = blocknr << (PLX_BLOCK_SHIFT - SECTOR_SHIFT);
	__bio_add_page(bio, page, PLX_BLOCK_SIZE, 0);
	bio->bi_end_io = plx_sync_endio;
	bio->bi_private = io;
	atomic_inc(&io->remaining);
	submit_bio(bio);
}

static int plx_sync_wait(struct plx_sync_io *io)
{
	if (!atomic_dec_and_test(&io->remaining))
		wait_for_completion_io(&io->done);
	return blk_status_to_errno(io->status);
}

static void plx_sync_init(struct plx_sync_io *io)
{
	atomic_set(&io->remaining, 1);
	io->status = BLK_STS_OK;
	init_completion(&io->done);
}

/* Build the log block that appends a record for the current root. */
static int plx_build_log(struct plx_target *t, struct plx_snaplog_block *l,
			 u64 blocknr, u64 seq, const char *label)
{
	u64 head = le64_to_cpu(t->vdi.snaplog_head);
	struct plx_snap_record *rec;
	u32 count = 0;

	memset(l, 0, PLX_BLOCK_SIZE);
	if (head) {
		const struct plx_snaplog_block *hb;
		struct dm_buffer *b;
		enum plx_err err;

		hb = dm_bufio_read(t->store.bufio, head, &b);
		if (IS_ERR(hb))
			return PTR_ERR(hb);
		err = plx_snaplog_check(&t->store.geo, hb, head, t->vdi_id);
		if (err) {
			dm_bufio_release(b);
			DMERR("VDI %llu: snapshot log block %llu: %s",
			      t->vdi_id, head, plx_strerror(err));
			return -EUCLEAN;
		}
		count = le32_to_cpu(hb->count);
		if (count < PLX_SNAPS_PER_LOG) {
			memcpy(l, hb, PLX_BLOCK_SIZE);
		} else {
			l->prev = cpu_to_le64(head);
			count = 0;
		}
		dm_bufio_release(b);
		dm_bufio_forget(t->store.bufio, head);
	}
	l->vdi = cpu_to_le64(t->vdi_id);
	rec = &l->rec[count];
	rec->root = cpu_to_le64(t->root);
	rec->timestamp_ns = cpu_to_le64(ktime_get_real_ns());
	rec->seq = cpu_to_le64(seq);
	if (label)
		strscpy_pad(rec->label, label, sizeof(rec->label));
	l->count = cpu_to_le32(count + 1);
	plx_block_seal(l, PLX_MAGIC_SNAPLOG, blocknr, t->store.geo.uuid);
	return 0;
}

/* Make the new root the one map() walks, and wait out the old one. */
static void plx_switch_root(struct plx_target *t, u64 new_root,
			    const __le64 *contents)
{
	struct dm_buffer *nb, *old_buf;
	unsigned int old;
	__le64 *nn;

	nn = dm_bufio_new(t->store.bufio, new_root, &nb);
	if (IS_ERR(nn))
		nn = dm_bufio_read(t->store.bufio, new_root, &nb);
	else
		memcpy(nn, contents, PLX_BLOCK_SIZE);
	if (IS_ERR(nn)) {
		plx_fail(t, "out_of_memory");
		return;
	}

	spin_lock(&t->epoch_lock);
	old = t->epoch & 1;
	t->root = new_root;
	t->root_node = nn;
	old_buf = t->root_buf;
	t->root_buf = nb;
	t->epoch++;
	spin_unlock(&t->epoch_lock);

	wait_event(t->epoch_wait, !atomic_read(&t->inflight[old]));
	dm_bufio_release(old_buf);
}

static int plx_take_snapshot(struct plx_target *t, const char *label,
			     u64 *seq_out)
{
	u64 seq = le64_to_cpu(t->vdi.snap_seq) + 1;
	struct page *root_page, *log_page, *rec_page;
	struct plx_vdi_record *v;
	struct plx_sync_io io;
	u64 new_root, new_log;
	__le64 *nr;
	int r;

	if (READ_ONCE(t->mode) != PLX_MODE_OK)
		return -EIO;
	r = plx_alloc_ensure(&t->alloc, 0, 2);
	if (r)
		return r;

	r = -ENOMEM;
	root_page = alloc_page(GFP_NOIO);
	log_page = alloc_page(GFP_NOIO);
	rec_page = alloc_page(GFP_NOIO);
	if (!root_page || !log_page || !rec_page)
		goto out;

	new_root = plx_alloc_take(&t->alloc, PLX_EXT_METADATA);
	new_log = plx_alloc_take(&t->alloc, PLX_EXT_METADATA);
	nr = page_address(root_page);
	plx_node_copy_ro((struct plx_radix_node *)nr,
			 (const struct plx_radix_node *)t->root_node);
	r = plx_build_log(t, page_address(log_page), new_log, seq, label);
	if (r)
		goto out;

	plx_sync_init(&io);
	plx_submit_page(t, &io, new_root, root_page, 0);
	plx_submit_page(t, &io, new_log, log_page, 0);
	r = plx_sync_wait(&io);
	if (r)
		goto out;

	v = page_address(rec_page);
	memset(v, 0, PLX_BLOCK_SIZE);
	memcpy(v, &t->vdi, sizeof(*v));
	v->root = cpu_to_le64(new_root);
	v->snaplog_head = cpu_to_le64(new_log);
	v->snap_seq = cpu_to_le64(seq);
	le64_add_cpu(&v->generation, 1);
	plx_block_seal(v, PLX_MAGIC_VDI, plx_registry_block(&t->store.geo, t->vdi_id),
		       t->store.geo.uuid);
	plx_sync_init(&io);
	plx_submit_page(t, &io, plx_registry_block(&t->store.geo, t->vdi_id),
			rec_page, REQ_PREFLUSH | REQ_FUA);
	r = plx_sync_wait(&io);
	if (r) {
		/* The record may or may not have landed: stop writing. */
		plx_fail(t, "vdi_record_write_failed");
		goto out;
	}

	memcpy(&t->vdi, v, sizeof(t->vdi));
	plx_switch_root(t, new_root, nr);
	t->snapshots_taken++;
	*seq_out = seq;
out:
	if (root_page)
		__free_page(root_page);
	if (log_page)
		__free_page(log_page);
	if (rec_page)
		__free_page(rec_page);
	return r;
}

/*
 * Worker: take the requested snapshot once no commit is in flight.
 * Returns true when it did, so that the writes held meanwhile go again.
 */
bool plx_snapshot_run(struct plx_target *t)
{
	struct plx_snap_request *req = READ_ONCE(t->snap);

	if (!req)
		return false;
	if (READ_ONCE(t->mode) == PLX_MODE_OK && !list_empty(&t->commits))
		return false;
	req->error = plx_take_snapshot(t, req->label, &req->seq);
	spin_lock_irq(&t->lock);
	t->snap = NULL;
	spin_unlock_irq(&t->lock);
	complete(&req->done);
	return true;
}

/* Message context: queue a snapshot for the worker and wait for it. */
int plx_snapshot(struct plx_target *t, const char *label, u64 *seq)
{
	struct plx_snap_request req = { .label = label };

	init_completion(&req.done);
	spin_lock_irq(&t->lock);
	if (t->snap) {
		spin_unlock_irq(&t->lock);
		return -EBUSY;
	}
	t->snap = &req;
	spin_unlock_irq(&t->lock);
	plx_wake_worker(t);
	wait_for_completion(&req.done);
	*seq = req.seq;
	return req.error;
}
