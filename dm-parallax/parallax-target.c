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
#include <linux/dm-bufio.h>
#include <linux/module.h>
#include <linux/slab.h>

#include "parallax-target.h"

#define DM_MSG_PREFIX "parallax"

#define PLX_DEFAULT_CACHE_MB	64
#define PLX_MAX_CACHE_MB	(1U << 20)

/* Linux 6.5 turned the open mode from fmode_t into blk_mode_t. */
#ifdef BLK_OPEN_WRITE
#define PLX_OPEN_WRITE BLK_OPEN_WRITE
#else
#define PLX_OPEN_WRITE FMODE_WRITE
#endif

static int plx_parse_features(struct dm_arg_set *as, struct plx_target *t,
			      struct dm_target *ti)
{
	static const struct dm_arg feature_count = {
		0, 2, "Invalid number of optional arguments"
	};
	static const struct dm_arg cache_mb = {
		1, PLX_MAX_CACHE_MB, "Invalid cache_mb: expected 1..1048576"
	};
	unsigned int argc, val;
	const char *name;
	int r;

	if (!as->argc)
		return 0;
	r = dm_read_arg_group(&feature_count, as, &argc, &ti->error);
	if (r)
		return r;
	while (argc) {
		name = dm_shift_arg(as);
		argc--;
		if (!strcasecmp(name, "cache_mb") && argc) {
			r = dm_read_arg(&cache_mb, as, &val, &ti->error);
			if (r)
				return r;
			argc--;
			t->cache_bytes = (unsigned long)val << 20;
			continue;
		}
		ti->error = "Unrecognised optional argument";
		return -EINVAL;
	}
	return 0;
}

static int plx_load_root(struct plx_target *t, struct dm_target *ti)
{
	enum plx_err err;

	t->root = le64_to_cpu(t->vdi.root);
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

static void plx_dtr(struct dm_target *ti)
{
	struct plx_target *t = ti->private;

	if (t->wq)
		destroy_workqueue(t->wq);
	if (t->root_buf)
		dm_bufio_release(t->root_buf);
	plx_store_close(ti, &t->store);
	kfree(t);
}

/*
 * Table line: <blockstore dev> <vdi id> [<#opt args> <opt args>...]
 */
static int plx_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	struct dm_arg_set as = { .argc = argc, .argv = argv };
	struct plx_target *t;
	const char *dev_path;
	char dummy;
	int r;

	if (argc < 2) {
		ti->error = "Expected: <blockstore dev> <vdi id> [<#opt args> <opt args>...]";
		return -EINVAL;
	}
	if (dm_table_get_mode(ti->table) & PLX_OPEN_WRITE) {
		ti->error = "Read-write attach is not supported yet; load the table read-only";
		return -EROFS;
	}

	t = kzalloc(sizeof(*t), GFP_KERNEL);
	if (!t) {
		ti->error = "Out of memory";
		return -ENOMEM;
	}
	ti->private = t;
	t->ti = ti;
	t->cache_bytes = (unsigned long)PLX_DEFAULT_CACHE_MB << 20;
	spin_lock_init(&t->lock);
	bio_list_init(&t->deferred);
	INIT_WORK(&t->worker, plx_worker);
	atomic64_set(&t->cache_hits, 0);
	atomic64_set(&t->cache_misses, 0);

	dev_path = dm_shift_arg(&as);
	if (sscanf(dm_shift_arg(&as), "%llu%c", &t->vdi_id, &dummy) != 1) {
		ti->error = "Invalid VDI id";
		r = -EINVAL;
		goto bad;
	}
	r = plx_parse_features(&as, t, ti);
	if (r)
		goto bad;

	r = plx_store_open(ti, &t->store, dev_path, t->cache_bytes);
	if (r)
		goto bad;
	r = plx_store_read_vdi(&t->store, t->vdi_id, &t->vdi, &ti->error);
	if (r)
		goto bad;
	if (le64_to_cpu(t->vdi.flags) & PLX_VDI_DELETED) {
		ti->error = "VDI is deleted";
		r = -ENOENT;
		goto bad;
	}
	if (ti->len > le64_to_cpu(t->vdi.size) >> SECTOR_SHIFT) {
		ti->error = "Table length exceeds the VDI size";
		r = -EINVAL;
		goto bad;
	}
	r = plx_load_root(t, ti);
	if (r)
		goto bad;

	t->wq = alloc_ordered_workqueue("dm-" DM_MSG_PREFIX, WQ_MEM_RECLAIM);
	if (!t->wq) {
		ti->error = "Cannot allocate the workqueue";
		r = -ENOMEM;
		goto bad;
	}

	/* A bio never spans two blocks, so it maps to exactly one. */
	r = dm_set_target_max_io_len(ti, PLX_SECTORS_PER_BLOCK);
	if (r)
		goto bad;
	ti->num_flush_bios = 1;
	ti->accounts_remapped_io = true;
	return 0;

bad:
	plx_dtr(ti);
	return r;
}

static const char *plx_mode_name(enum plx_mode mode)
{
	return mode == PLX_MODE_FAILED ? "failed" : "ro";
}

static void plx_status(struct dm_target *ti, status_type_t type,
		       unsigned int status_flags, char *result,
		       unsigned int maxlen)
{
	struct plx_target *t = ti->private;
	unsigned int sz = 0;

	switch (type) {
	case STATUSTYPE_INFO:
		DMEMIT("%s %lld %lld", plx_mode_name(READ_ONCE(t->mode)),
		       atomic64_read(&t->cache_hits),
		       atomic64_read(&t->cache_misses));
		break;
	case STATUSTYPE_TABLE:
		DMEMIT("%s %llu", t->store.dev->name, t->vdi_id);
		if (t->cache_bytes != (unsigned long)PLX_DEFAULT_CACHE_MB << 20)
			DMEMIT(" 2 cache_mb %lu", t->cache_bytes >> 20);
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

	return fn(ti, t->store.dev, 0, ti->len, data);
}

static void plx_io_hints(struct dm_target *ti, struct queue_limits *limits)
{
	limits->io_min = PLX_BLOCK_SIZE;
	limits->io_opt = PLX_BLOCK_SIZE;
}

static struct target_type plx_target_type = {
	.name = "parallax",
	.version = {0, 1, 0},
	.module = THIS_MODULE,
	.ctr = plx_ctr,
	.dtr = plx_dtr,
	.map = plx_map,
	.status = plx_status,
	.iterate_devices = plx_iterate_devices,
	.io_hints = plx_io_hints,
};

static int __init dm_parallax_init(void)
{
	return dm_register_target(&plx_target_type);
}

static void __exit dm_parallax_exit(void)
{
	dm_unregister_target(&plx_target_type);
}

module_init(dm_parallax_init);
module_exit(dm_parallax_exit);

MODULE_DESCRIPTION("device-mapper target for Parallax virtual disk images");
MODULE_LICENSE("GPL");
