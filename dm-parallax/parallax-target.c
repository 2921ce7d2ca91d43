// SPDX-License-Identifier: GPL-2.0
/*
 * dm-parallax: device-mapper target presenting one VDI of a Parallax
 * blockstore as a block device.  Documentation/dm-parallax.rst describes
 * the table line and the status.
 *
 * This file holds the table-level callbacks; the data path is in
 * parallax-map.c and the blockstore itself in parallax-store.c.
 */
#include <linux/blkdev.h>
#include <linux/ctype.h>
#include <linux/dm-bufio.h>
#include <linux/module.h>
#include <linux/slab.h>

#include "parallax-target.h"

#define DM_MSG_PREFIX "parallax"

#define PLX_DEFAULT_CACHE_MB	64
#define PLX_MAX_CACHE_MB	BIT(20)
#define PLX_DEFAULT_HOST_ID	1
#define PLX_DEFAULT_LOW_WATER	(4 * PLX_RESERVE_BATCH)
#define PLX_DEFAULT_NO_SPACE_TIMEOUT 60

/* Linux 6.5 turned the open mode from fmode_t into blk_mode_t. */
#ifdef BLK_OPEN_WRITE
#define PLX_OPEN_WRITE BLK_OPEN_WRITE
#else
#define PLX_OPEN_WRITE FMODE_WRITE
#endif

/*
 * dm_read_arg() parses with sscanf("%u"), which wraps: 4294967297 would
 * read as 1.  Here a number has one spelling: decimal digits, in range.
 */
static int plx_read_arg(const struct dm_arg *arg, struct dm_arg_set *as,
			unsigned int *val, char **error)
{
	const char *s = dm_shift_arg(as);

	if (!s || !isdigit(s[0]) || kstrtouint(s, 10, val) ||
	    *val < arg->min || *val > arg->max) {
		*error = arg->error;
		return -EINVAL;
	}
	return 0;
}

static int plx_parse_cache_mode(const char *word, struct plx_target *t,
				struct dm_target *ti)
{
	if (!strcasecmp(word, "always")) {
		t->cache_mode = PLX_CACHE_ALWAYS;
	} else if (!strcasecmp(word, "adaptive")) {
		t->cache_mode = PLX_CACHE_ADAPTIVE;
	} else {
		ti->error = "Invalid local_cache_mode: expected always or adaptive";
		return -EINVAL;
	}
	return 0;
}

static int plx_parse_features(struct dm_arg_set *as, struct plx_target *t,
			      struct dm_target *ti)
{
	static const struct dm_arg feature_count = {
		0, 19, "Invalid number of optional arguments"
	};
	static const struct dm_arg cache_mb = {
		1, PLX_MAX_CACHE_MB, "Invalid cache_mb: expected 1..1048576"
	};
	static const struct dm_arg host_id = {
		1, UINT_MAX, "Invalid host_id: expected 1..4294967295"
	};
	static const struct dm_arg timeout = {
		0, 86400, "Invalid no_space_timeout: expected 0..86400 seconds"
	};
	static const struct dm_arg latency = {
		1, 60000, "Invalid local_cache_latency_ms: expected 1..60000"
	};
	unsigned int argc, val;
	const char *name;
	int r;

	if (!as->argc)
		return 0;
	r = plx_read_arg(&feature_count, as, &argc, &ti->error);
	if (r)
		return r;
	if (argc > as->argc) {
		ti->error = feature_count.error;
		return -EINVAL;
	}
	while (argc) {
		name = dm_shift_arg(as);
		argc--;
		if (!strcasecmp(name, "read_only")) {
			t->mode = PLX_MODE_READ_ONLY;
			continue;
		}
		if (!strcasecmp(name, "error_if_no_space")) {
			t->error_if_no_space = true;
			continue;
		}
		if (strcasecmp(name, "cache_mb") && strcasecmp(name, "host_id") &&
		    strcasecmp(name, "no_space_timeout") &&
		    strcasecmp(name, "low_water") &&
		    strcasecmp(name, "lock_gen") &&
		    strcasecmp(name, "snapshot_seq") &&
		    strcasecmp(name, "local_cache") &&
		    strcasecmp(name, "local_cache_mode") &&
		    strcasecmp(name, "local_cache_latency_ms")) {
			ti->error = "Unrecognised optional argument";
			return -EINVAL;
		}
		if (!argc) {
			ti->error = "Optional argument is missing its value";
			return -EINVAL;
		}
		argc--;
		if (!strcasecmp(name, "cache_mb")) {
			r = plx_read_arg(&cache_mb, as, &val, &ti->error);
			t->cache_bytes = (unsigned long)val << 20;
		} else if (!strcasecmp(name, "host_id")) {
			r = plx_read_arg(&host_id, as, &val, &ti->error);
			t->host_id = val;
		} else if (!strcasecmp(name, "no_space_timeout")) {
			r = plx_read_arg(&timeout, as, &val, &ti->error);
			t->no_space_timeout = val;
		} else if (!strcasecmp(name, "local_cache")) {
			t->cache_path = dm_shift_arg(as);
		} else if (!strcasecmp(name, "local_cache_mode")) {
			t->cache_tuned = true;
			r = plx_parse_cache_mode(dm_shift_arg(as), t, ti);
		} else if (!strcasecmp(name, "local_cache_latency_ms")) {
			t->cache_tuned = true;
			r = plx_read_arg(&latency, as, &val, &ti->error);
			t->cache_latency_ms = val;
		} else if (!strcasecmp(name, "snapshot_seq")) {
			if (kstrtoull(dm_shift_arg(as), 10, &t->snap_seq) ||
			    !t->snap_seq) {
				ti->error = "Invalid snapshot_seq: expected 1 or more";
				r = -EINVAL;
			}
		} else if (!strcasecmp(name, "lock_gen")) {
			t->has_lock_gen = true;
			if (kstrtoull(dm_shift_arg(as), 10, &t->lock_gen)) {
				ti->error = "Invalid lock_gen: expected a generation";
				r = -EINVAL;
			}
		} else if (kstrtoull(dm_shift_arg(as), 10, &t->low_water)) {
			ti->error = "Invalid low_water: expected a block count";
			r = -EINVAL;
		}
		if (r)
			return r;
	}
	return 0;
}

/*
 * The root of snapshot @t->snap_seq, from the VDI's snapshot log: blocks
 * newest first, each holding consecutive sequence numbers and ending
 * just before the first of the block walked before it.  Checking that
 * is what ends the walk of a damaged chain: the sequence numbers it
 * expects only go down, so a chain that links back to a block already
 * walked (a cycle) fails the check there.
 */
static int plx_find_snapshot(struct plx_target *t, struct dm_target *ti,
			     u64 *root)
{
	u64 blocknr = le64_to_cpu(t->vdi.snaplog_head);
	u64 want_last = le64_to_cpu(t->vdi.snap_seq);
	u64 hops, seq = t->snap_seq;

	if (seq > le64_to_cpu(t->vdi.snap_seq)) {
		ti->error = "No such snapshot";
		return -ENOENT;
	}
	/* Every block holds at least one record, which bounds the walk. */
	for (hops = 0; blocknr && hops <= le64_to_cpu(t->vdi.snap_seq); hops++) {
		const struct plx_snaplog_block *l;
		const struct plx_snap_record *rec;
		struct dm_buffer *b;
		enum plx_err err;
		bool deleted;
		u64 first;
		u32 count;

		l = dm_bufio_read(t->store.bufio, blocknr, &b);
		if (IS_ERR(l)) {
			ti->error = "Cannot read the VDI's snapshot log";
			return PTR_ERR(l);
		}
		err = plx_snaplog_check(&t->store.geo, l, blocknr, t->vdi_id);
		if (err) {
			dm_bufio_release(b);
			DMERR("VDI %llu: snapshot log block %llu: %s", t->vdi_id,
			      blocknr, plx_strerror(err));
			ti->error = "Corrupt snapshot log";
			return -EUCLEAN;
		}
		count = le32_to_cpu(l->count);
		first = le64_to_cpu(l->rec[0].seq);
		if (le64_to_cpu(l->rec[count - 1].seq) != want_last) {
			dm_bufio_release(b);
			DMERR("VDI %llu: snapshot log block %llu does not end at seq %llu",
			      t->vdi_id, blocknr, want_last);
			ti->error = "Corrupt snapshot log";
			return -EUCLEAN;
		}
		if (seq < first) {
			want_last = first - 1;
			blocknr = le64_to_cpu(l->prev);
			dm_bufio_release(b);
			continue;
		}
		rec = &l->rec[seq - first];
		if (seq - first >= count || le64_to_cpu(rec->seq) != seq) {
			dm_bufio_release(b);
			break;
		}
		*root = le64_to_cpu(rec->root);
		deleted = le32_to_cpu(rec->flags) & PLX_SNAP_DELETED;
		dm_bufio_release(b);
		if (deleted) {
			ti->error = "Snapshot is deleted";
			return -ENOENT;
		}
		return 0;
	}
	DMERR("VDI %llu: snapshot %llu is not in its snapshot log", t->vdi_id,
	      seq);
	ti->error = "Snapshot log does not hold the snapshot; run parallax check";
	return -EUCLEAN;
}

static int plx_load_root(struct plx_target *t, struct dm_target *ti)
{
	enum plx_err err;
	int r;

	t->root = le64_to_cpu(t->vdi.root);
	if (t->snap_seq) {
		r = plx_find_snapshot(t, ti, &t->root);
		if (r)
			return r;
	}
	t->height = t->vdi.height;
	err = plx_check_addr(&t->store.geo, t->root, PLX_EXT_METADATA);
	if (err) {
		ti->error = "VDI root pointer is invalid";
		return -EUCLEAN;
	}
	t->root_node = dm_bufio_read(t->store.bufio, t->root, &t->root_buf);
	if (IS_ERR(t->root_node)) {
		ti->error = "Cannot read the VDI's radix root";
		t->root_buf = NULL;
		return PTR_ERR(t->root_node);
	}
	return 0;
}

/*
 * The VDI record is written last when a snapshot is taken, so its log
 * head must be valid and end with the record's sequence number.  If not,
 * the device did not honour the write ordering, and the store needs
 * checking before anything writes to it.
 */
static int plx_check_snaplog_head(struct plx_target *t, struct dm_target *ti)
{
	u64 head = le64_to_cpu(t->vdi.snaplog_head);
	const struct plx_snaplog_block *l;
	struct dm_buffer *b;
	enum plx_err err;
	u32 count;

	if (!head)
		return 0;
	l = dm_bufio_read(t->store.bufio, head, &b);
	if (IS_ERR(l)) {
		ti->error = "Cannot read the VDI's snapshot log";
		return PTR_ERR(l);
	}
	err = plx_snaplog_check(&t->store.geo, l, head, t->vdi_id);
	count = le32_to_cpu(l->count);
	if (!err && le64_to_cpu(l->rec[count - 1].seq) != le64_to_cpu(t->vdi.snap_seq))
		err = PLX_E_SNAPLOG_FIELD;
	dm_bufio_release(b);
	dm_bufio_forget(t->store.bufio, head);
	if (err) {
		DMERR("VDI %llu: snapshot log block %llu: %s", t->vdi_id, head,
		      plx_strerror(err));
		ti->error = "VDI's snapshot log is incomplete or corrupt; run parallax check";
		return -EUCLEAN;
	}
	return 0;
}

static void plx_dtr(struct dm_target *ti)
{
	struct plx_target *t = ti->private;
	struct plx_busy *busy;
	unsigned long index;

	/* Its drain sends bios through the worker: it goes first. */
	if (t->cache)
		plx_cache_destroy(t->cache);
	if (t->wq) {
		cancel_delayed_work_sync(&t->waker);
		destroy_workqueue(t->wq);
	}
	plx_commit_abort_all(t);
	xa_for_each(&t->busy, index, busy)
		kfree(busy);
	xa_destroy(&t->busy);
	xa_destroy(&t->pending);
	if (t->root_buf)
		dm_bufio_release(t->root_buf);
	plx_alloc_destroy(&t->alloc);
	plx_store_close(ti, &t->store);
	kfree(t);
}

static void plx_target_init(struct plx_target *t, struct dm_target *ti)
{
	t->ti = ti;
	t->cache_bytes = (unsigned long)PLX_DEFAULT_CACHE_MB << 20;
	t->host_id = PLX_DEFAULT_HOST_ID;
	t->low_water = PLX_DEFAULT_LOW_WATER;
	t->no_space_timeout = PLX_DEFAULT_NO_SPACE_TIMEOUT;
	t->cache_latency_ms = PLX_DEFAULT_CACHE_LATENCY_MS;
	spin_lock_init(&t->epoch_lock);
	init_waitqueue_head(&t->epoch_wait);
	spin_lock_init(&t->lock);
	bio_list_init(&t->deferred);
	bio_list_init(&t->data_done);
	bio_list_init(&t->no_space);
	INIT_LIST_HEAD(&t->nodes_done);
	INIT_LIST_HEAD(&t->commits);
	INIT_LIST_HEAD(&t->batch);
	INIT_LIST_HEAD(&t->to_write);
	xa_init(&t->pending);
	xa_init(&t->busy);
	mutex_init(&t->message_lock);
	plx_gc_init(t);
	plx_flush_init(t);
	INIT_WORK(&t->worker, plx_worker);
	INIT_DELAYED_WORK(&t->waker, plx_waker);
	INIT_WORK(&t->release_no_space, plx_release_no_space);
	plx_alloc_init(&t->alloc, &t->store);
	if (!(dm_table_get_mode(ti->table) & PLX_OPEN_WRITE))
		t->mode = PLX_MODE_READ_ONLY;
}

static int plx_load_vdi(struct plx_target *t, struct dm_target *ti)
{
	int r;

	r = plx_store_read_vdi(&t->store, t->vdi_id, &t->vdi, &ti->error);
	if (r)
		return r;
	if (le64_to_cpu(t->vdi.flags) & PLX_VDI_DELETED) {
		ti->error = "VDI is deleted";
		return -ENOENT;
	}
	if (ti->len > le64_to_cpu(t->vdi.size) >> SECTOR_SHIFT) {
		ti->error = "Table length exceeds the VDI size";
		return -EINVAL;
	}
	/* A snapshot never changes: it is presented read-only, with no lock. */
	if (t->snap_seq && t->mode != PLX_MODE_READ_ONLY) {
		ti->error = "A snapshot can only be loaded read-only";
		return -EROFS;
	}
	if (t->mode == PLX_MODE_OK && le32_to_cpu(t->vdi.holder) != t->host_id) {
		DMERR("VDI %llu is held by host %u; this table is host %u",
		      t->vdi_id, le32_to_cpu(t->vdi.holder), t->host_id);
		ti->error = "VDI is not claimed by this host (see parallax attach)";
		return -EPERM;
	}
	/*
	 * Fencing: a lock broken by "parallax unlock" and granted again has a
	 * new generation, so a table built from the old grant is refused.
	 */
	if (t->mode == PLX_MODE_OK && t->has_lock_gen &&
	    le64_to_cpu(t->vdi.lock_generation) != t->lock_gen) {
		DMERR("VDI %llu: lock generation %llu is stale (on disk: %llu)",
		      t->vdi_id, t->lock_gen,
		      le64_to_cpu(t->vdi.lock_generation));
		ti->error = "VDI lock generation is stale: the lock was broken or granted again";
		return -ESTALE;
	}
	/*
	 * Writes this host acknowledged may still be in the log of its
	 * local cache: writing without it would put older data on top.
	 */
	if (t->mode == PLX_MODE_OK && !t->cache_path &&
	    (t->vdi.lock_flags & PLX_VDI_LOCK_CACHE_DIRTY)) {
		DMERR("VDI %llu is cache-dirty: its local cache may hold writes the store lacks",
		      t->vdi_id);
		ti->error = "VDI has a local cache that is not drained: load it with local_cache";
		return -EBUSY;
	}
	r = plx_check_snaplog_head(t, ti);
	if (r)
		return r;
	return plx_load_root(t, ti);
}

/*
 * Table line: <blockstore dev> <vdi id> [<#opt args> <opt args>...]
 */
static int plx_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	struct dm_arg_set as = { .argc = argc, .argv = argv };
	struct plx_target *t;
	const char *dev_path, *arg;
	int r;

	if (argc < 2) {
		ti->error = "Expected: <blockstore dev> <vdi id> [<#opt args> <opt args>...]";
		return -EINVAL;
	}
	t = kzalloc(sizeof(*t), GFP_KERNEL);
	if (!t) {
		ti->error = "Out of memory";
		return -ENOMEM;
	}
	ti->private = t;
	plx_target_init(t, ti);

	dev_path = dm_shift_arg(&as);
	/* Digits only: no sign, and no value that wraps past 2^64 - 1. */
	arg = dm_shift_arg(&as);
	if (!isdigit(arg[0]) || kstrtoull(arg, 10, &t->vdi_id)) {
		ti->error = "Invalid VDI id";
		r = -EINVAL;
		goto bad;
	}
	r = plx_parse_features(&as, t, ti);
	if (r)
		goto bad;
	if (t->cache_tuned && !t->cache_path) {
		ti->error = "local_cache_mode and local_cache_latency_ms need local_cache";
		r = -EINVAL;
		goto bad;
	}
	if (t->cache_path && (t->mode != PLX_MODE_OK || t->snap_seq)) {
		ti->error = "A local cache needs a writable table";
		r = -EINVAL;
		goto bad;
	}
	if (as.argc) {
		ti->error = "More arguments than the optional argument count says";
		r = -EINVAL;
		goto bad;
	}

	r = plx_store_open(ti, &t->store, dev_path, t->cache_bytes);
	if (r)
		goto bad;
	t->alloc.host_id = t->host_id;
	if (t->store.geo.nr_blocks > ULONG_MAX) {
		ti->error = "Blockstore too large for this architecture";
		r = -EFBIG;
		goto bad;
	}
	r = plx_load_vdi(t, ti);
	if (r)
		goto bad;

	t->wq = alloc_ordered_workqueue("dm-" DM_MSG_PREFIX, WQ_MEM_RECLAIM);
	if (!t->wq) {
		ti->error = "Cannot allocate the workqueue";
		r = -ENOMEM;
		goto bad;
	}
	if (t->cache_path) {
		r = plx_cache_create(t, ti, t->cache_path, t->cache_mode,
				     t->cache_latency_ms);
		if (r)
			goto bad;
	}

	ti->num_flush_bios = 1;
	ti->num_discard_bios = 1;
	ti->discards_supported = true;
	ti->per_io_data_size = sizeof(struct plx_bio);
	ti->accounts_remapped_io = true;
	return 0;

bad:
	plx_dtr(ti);
	return r;
}

static int plx_preresume(struct dm_target *ti)
{
	struct plx_target *t = ti->private;
	int r;

	if (!t->cache)
		return 0;
	r = plx_cache_resume(t->cache);
	if (r)
		DMERR("VDI %llu: cannot replay the local cache: %d", t->vdi_id,
		      r);
	return r;
}

static void plx_resume(struct dm_target *ti)
{
	struct plx_target *t = ti->private;

	WRITE_ONCE(t->suspending, false);
	WRITE_ONCE(t->draining, false);
	queue_delayed_work(t->wq, &t->waker, HZ);
}

static void plx_presuspend_undo(struct dm_target *ti)
{
	WRITE_ONCE(((struct plx_target *)ti->private)->suspending, false);
}

static void plx_presuspend(struct dm_target *ti)
{
	struct plx_target *t = ti->private;

	WRITE_ONCE(t->suspending, true);
	/* On the ordered workqueue, so it runs between worker passes. */
	queue_work(t->wq, &t->release_no_space);
	flush_work(&t->release_no_space);
}

static void plx_postsuspend(struct dm_target *ti)
{
	struct plx_target *t = ti->private;

	/* Leaving the host, or a new table: the log drains first. */
	if (t->cache)
		plx_cache_suspend(t->cache);
	cancel_delayed_work_sync(&t->waker);
	flush_workqueue(t->wq);
	plx_flush_drain(t);
}

static int plx_message_extent(struct plx_target *t, bool grant,
			      unsigned int argc, char **argv)
{
	u64 extent, gen = PLX_ANY_GENERATION;
	char result[128];
	int r;

	if (kstrtoull(argv[1], 10, &extent) ||
	    (argc > 2 && (kstrtoull(argv[2], 10, &gen) ||
			  gen == PLX_ANY_GENERATION))) {
		DMERR("VDI %llu: usage: %s <extent>%s", t->vdi_id, argv[0],
		      grant ? " [<generation>]" : "");
		return -EINVAL;
	}
	if (grant)
		r = plx_alloc_grant(&t->alloc, extent, gen, result,
				    sizeof(result));
	else
		r = plx_alloc_release(&t->alloc, extent, result, sizeof(result));
	if (r) {
		DMERR("VDI %llu: %s", t->vdi_id, result);
		return r;
	}
	if (grant) {
		/* Space may be what queued writes were waiting for. */
		t->low_water_signalled = false;
		plx_wake_worker(t);
	}
	return 0;
}

static int plx_message_snapshot(struct plx_target *t, unsigned int argc,
				char **argv, char *result, unsigned int maxlen)
{
	char label[PLX_LABEL_LEN] = "";
	unsigned int sz = 0;
	u64 seq;
	int r;

	if (argc > 2) {
		DMERR("VDI %llu: usage: snapshot [<label>]", t->vdi_id);
		return -EINVAL;
	}
	if (argc == 2) {
		if (strscpy_pad(label, argv[1], sizeof(label)) < 0 ||
		    plx_name_check(label, sizeof(label))) {
			DMERR("VDI %llu: invalid snapshot label '%s'", t->vdi_id,
			      argv[1]);
			return -EINVAL;
		}
	}
	if (READ_ONCE(t->mode) != PLX_MODE_OK) {
		DMERR("VDI %llu: cannot snapshot a %s device", t->vdi_id,
		      t->mode == PLX_MODE_READ_ONLY ? "read-only" : "failed");
		return -EROFS;
	}
	r = PLX_CACHE_CONTINUE;
	if (t->cache)
		r = plx_cache_snapshot(t->cache, label[0] ? label : NULL, &seq);
	if (r == PLX_CACHE_CONTINUE)
		r = plx_snapshot(t, label[0] ? label : NULL, &seq);
	if (r) {
		DMERR("VDI %llu: snapshot failed: %d", t->vdi_id, r);
		return r;
	}
	DMEMIT("%llu@%llu", t->vdi_id, seq);
	return 1;
}

/*
 * parallaxd says whether it can reach the lock manager; the target only
 * shows the word in its status, so that "dmsetup status" tells an
 * administrator why extents stop arriving.
 */
static int plx_message_lockd(struct plx_target *t, const char *word)
{
	size_t i, n = strlen(word);

	if (!n || n >= sizeof(t->lockd_state))
		goto bad;
	/* Not islower(): it takes Latin-1 letters too. */
	for (i = 0; i < n; i++)
		if ((word[i] < 'a' || word[i] > 'z') && word[i] != '_')
			goto bad;
	strscpy(t->lockd_state, word, sizeof(t->lockd_state));
	return 0;
bad:
	DMERR("VDI %llu: usage: lockd <state word, a-z and _ only>", t->vdi_id);
	return -EINVAL;
}

static int plx_message_drain(struct plx_target *t)
{
	int r;

	if (!t->cache) {
		DMERR("VDI %llu: drain: the table has no local cache", t->vdi_id);
		return -EINVAL;
	}
	r = plx_cache_drain(t->cache, true);
	if (r && r != -EINTR)
		DMERR("VDI %llu: drain failed: %d", t->vdi_id, r);
	return r;
}

static int plx_message(struct dm_target *ti, unsigned int argc, char **argv,
		       char *result, unsigned int maxlen)
{
	struct plx_target *t = ti->private;
	int r = -EINVAL;

	/*
	 * A drain may need extents granted on the way: add_extent must get
	 * through while it waits, so it does not take the message lock.
	 */
	if (!strcasecmp(argv[0], "drain") && argc == 1)
		return plx_message_drain(t);
	mutex_lock(&t->message_lock);
	if (!strcasecmp(argv[0], "snapshot"))
		r = plx_message_snapshot(t, argc, argv, result, maxlen);
	else if (!strcasecmp(argv[0], "add_extent") && (argc == 2 || argc == 3))
		r = plx_message_extent(t, true, argc, argv);
	else if (!strcasecmp(argv[0], "release_extent") && argc == 2)
		r = plx_message_extent(t, false, argc, argv);
	else if (!strcasecmp(argv[0], "extents") && argc == 1)
		r = plx_alloc_emit_extents(&t->alloc, result, maxlen);
	else if (!strcasecmp(argv[0], "lockd") && argc == 2)
		r = plx_message_lockd(t, argv[1]);
	else if (!strncasecmp(argv[0], "gc_", 3))
		r = plx_message_gc(t, argc, argv, result, maxlen);
	else
		DMERR("VDI %llu: unknown or malformed message '%s'", t->vdi_id,
		      argv[0]);
	mutex_unlock(&t->message_lock);
	return r;
}

static const char *plx_mode_name(struct plx_target *t)
{
	switch (READ_ONCE(t->mode)) {
	case PLX_MODE_READ_ONLY:
		return "read_only";
	case PLX_MODE_FAILED:
		return "failed";
	default:
		return bio_list_empty(&t->no_space) ? "ok" : "out_of_space";
	}
}

static void plx_emit_table(struct plx_target *t, char *result,
			   unsigned int maxlen)
{
	unsigned int sz = 0, n = 0;
	char opts[400];
	int len = 0;

#define PLX_OPT(fmt, ...) \
	(len += scnprintf(opts + len, sizeof(opts) - len, fmt, ##__VA_ARGS__))
	if (t->cache_bytes != (unsigned long)PLX_DEFAULT_CACHE_MB << 20) {
		PLX_OPT(" cache_mb %lu", t->cache_bytes >> 20);
		n += 2;
	}
	if (t->host_id != PLX_DEFAULT_HOST_ID) {
		PLX_OPT(" host_id %u", t->host_id);
		n += 2;
	}
	if (t->has_lock_gen) {
		PLX_OPT(" lock_gen %llu", t->lock_gen);
		n += 2;
	}
	if (t->snap_seq) {
		PLX_OPT(" snapshot_seq %llu", t->snap_seq);
		n += 2;
	}
	if (t->low_water != PLX_DEFAULT_LOW_WATER) {
		PLX_OPT(" low_water %llu", t->low_water);
		n += 2;
	}
	if (t->no_space_timeout != PLX_DEFAULT_NO_SPACE_TIMEOUT) {
		PLX_OPT(" no_space_timeout %u", t->no_space_timeout);
		n += 2;
	}
	if (t->error_if_no_space) {
		PLX_OPT(" error_if_no_space");
		n++;
	}
	if (t->cache)
		plx_cache_table(t->cache, opts, sizeof(opts), &len, &n);
	if (t->mode == PLX_MODE_READ_ONLY &&
	    (dm_table_get_mode(t->ti->table) & PLX_OPEN_WRITE)) {
		PLX_OPT(" read_only");
		n++;
	}
#undef PLX_OPT
	DMEMIT("%s %llu", t->store.dev->name, t->vdi_id);
	if (n)
		DMEMIT(" %u%s", n, opts);
}

static void plx_status(struct dm_target *ti, status_type_t type,
		       unsigned int status_flags, char *result,
		       unsigned int maxlen)
{
	struct plx_target *t = ti->private;
	struct plx_alloc *a = &t->alloc;
	unsigned int sz = 0;

	switch (type) {
	case STATUSTYPE_INFO:
		DMEMIT("%s %llu %llu %llu %llu %u %llu %lld %lld %s %s",
		       plx_mode_name(t), a->used[0], a->used[1],
		       plx_alloc_free_blocks(a, PLX_EXT_DATA),
		       plx_alloc_free_blocks(a, PLX_EXT_METADATA),
		       a->nr_grants, t->snapshots_taken,
		       atomic64_read(&t->cache_hits),
		       atomic64_read(&t->cache_misses),
		       t->mode == PLX_MODE_FAILED ? t->fail_reason : "-",
		       t->lockd_state[0] ? t->lockd_state : "-");
		if (t->cache)
			plx_cache_status(t->cache, result, maxlen, &sz);
		else
			DMEMIT(" none - 0 0 0 0 -");
		break;
	case STATUSTYPE_TABLE:
		plx_emit_table(t, result, maxlen);
		break;
	case STATUSTYPE_IMA:
		*result = '\0';
		break;
	}
}

static int plx_iterate_devices(struct dm_target *ti,
			       iterate_devices_callout_fn fn, void *data)
{
	struct plx_target *t = ti->private;

	/*
	 * The VDI is thin: it may be larger than the blockstore, so the
	 * area used on the device is the store, not the table's length.
	 */
	return fn(ti, t->store.dev, 0,
		  t->store.geo.nr_blocks << (PLX_BLOCK_SHIFT - SECTOR_SHIFT),
		  data);
}

static void plx_io_hints(struct dm_target *ti, struct queue_limits *limits)
{
	limits->io_min = PLX_BLOCK_SIZE;
	limits->io_opt = PLX_BLOCK_SIZE;
	limits->discard_granularity = PLX_BLOCK_SIZE;
}

static struct target_type plx_target_type = {
	.name = "parallax",
	.version = {0, 2, 0},
	.module = THIS_MODULE,
	.ctr = plx_ctr,
	.dtr = plx_dtr,
	.map = plx_map,
	.end_io = plx_end_io,
	.presuspend = plx_presuspend,
	.presuspend_undo = plx_presuspend_undo,
	.postsuspend = plx_postsuspend,
	.preresume = plx_preresume,
	.resume = plx_resume,
	.message = plx_message,
	.status = plx_status,
	.iterate_devices = plx_iterate_devices,
	.io_hints = plx_io_hints,
};

/* The local cache's drain sends bios of its own down the data path. */
struct bio_set plx_own_bios;

static int __init dm_parallax_init(void)
{
	int r;

	r = bioset_init(&plx_own_bios, BIO_POOL_SIZE, sizeof(struct plx_bio),
			BIOSET_NEED_BVECS);
	if (r)
		return r;
	r = dm_register_target(&plx_target_type);
	if (r)
		bioset_exit(&plx_own_bios);
	return r;
}

static void __exit dm_parallax_exit(void)
{
	dm_unregister_target(&plx_target_type);
	bioset_exit(&plx_own_bios);
}

module_init(dm_parallax_init);
module_exit(dm_parallax_exit);

MODULE_DESCRIPTION("device-mapper target for Parallax virtual disk images");
MODULE_LICENSE("GPL");
