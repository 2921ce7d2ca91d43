// SPDX-License-Identifier: GPL-2.0
/*
 * parallax-lockd's access to the blockstore.  The device is opened
 * O_DIRECT where the filesystem allows it, so every read sees what other
 * hosts wrote and every write reaches the device before its fdatasync
 * returns; the buffers are 4 KiB aligned for that.  Every block is checked
 * with the shared validation code before it is used and resealed with it
 * before it is written.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lockd.h"

uint64_t lkd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void lkd_log(struct lkd *d, const char *fmt, ...)
{
	va_list ap;

	if (!d->log)
		return;
	fputs("parallax-lockd: ", d->log);
	va_start(ap, fmt);
	vfprintf(d->log, fmt, ap);
	va_end(ap);
	fputc('\n', d->log);
	fflush(d->log);
}

static void *alloc_blocks(size_t n)
{
	void *p;

	if (posix_memalign(&p, PLX_BLOCK_SIZE, n * PLX_BLOCK_SIZE))
		return NULL;
	memset(p, 0, n * PLX_BLOCK_SIZE);
	return p;
}

int lkd_read(struct lkd *d, uint64_t blocknr, void *buf)
{
	return plx_fd_read_block(d->fd, d->device_blocks, blocknr, buf);
}

int lkd_write(struct lkd *d, uint64_t blocknr, const void *buf)
{
	if (plx_fd_write_block(d->fd, blocknr, buf))
		return -1;
	/* A grant is replied only once it is durable. */
	if (fdatasync(d->fd)) {
		plx_seterr(PLX_EK_STORE, "block %llu: fdatasync failed: %s",
			   (unsigned long long)blocknr, strerror(errno));
		return -1;
	}
	return 0;
}

struct plx_extent_entry *lkd_ext(struct lkd *d, uint64_t ext)
{
	return &d->cat[ext / PLX_CATALOGUE_PER_BLOCK]
		.entries[ext % PLX_CATALOGUE_PER_BLOCK];
}

int lkd_cat_commit(struct lkd *d, uint64_t ext)
{
	uint64_t idx = ext / PLX_CATALOGUE_PER_BLOCK;
	struct plx_catalogue_block *cb = &d->cat[idx];

	plx_block_seal(cb, PLX_MAGIC_CATALOGUE, d->geo.catalogue_start + idx,
		       d->geo.uuid);
	return lkd_write(d, d->geo.catalogue_start + idx, cb);
}

int lkd_sb_commit(struct lkd *d)
{
	plx_block_seal(d->sb_block, PLX_MAGIC_SUPER, PLX_SUPERBLOCK_BLOCK,
		       d->geo.uuid);
	return lkd_write(d, PLX_SUPERBLOCK_BLOCK, d->sb_block);
}

int lkd_vdi_load(struct lkd *d, uint64_t id, struct plx_vdi_record **rec)
{
	struct plx_vdi_record *v = (void *)d->io;
	enum plx_err err;

	*rec = NULL;
	if (!id || id > d->geo.registry_slots) {
		plx_seterr(PLX_EK_USAGE, "no VDI %llu (ids are 1..%llu)",
			   (unsigned long long)id,
			   (unsigned long long)d->geo.registry_slots);
		return PLX_LK_ENOENT;
	}
	if (lkd_read(d, plx_registry_block(&d->geo, id), d->io))
		return PLX_LK_EIO;
	if (le32_to_cpu(v->hdr.magic) != PLX_MAGIC_VDI) {
		plx_seterr(PLX_EK_USAGE, "no VDI %llu", (unsigned long long)id);
		return PLX_LK_ENOENT;
	}
	err = plx_vdi_check(&d->geo, v, id);
	if (err) {
		plx_seterr(PLX_EK_STORE, "VDI %llu: bad record: %s",
			   (unsigned long long)id, plx_strerror(err));
		return PLX_LK_EIO;
	}
	*rec = v;
	return PLX_LK_OK;
}

int lkd_vdi_commit(struct lkd *d, uint64_t id)
{
	struct plx_vdi_record *v = (void *)d->io;
	uint64_t blocknr = plx_registry_block(&d->geo, id);

	v->generation = cpu_to_le64(le64_to_cpu(v->generation) + 1);
	plx_block_seal(d->io, PLX_MAGIC_VDI, blocknr, d->geo.uuid);
	return lkd_write(d, blocknr, d->io);
}

/*
 * Count the free blocks of extent @ext in its on-disk bitmap, or with
 * @used the allocated ones that are not the bitmap blocks themselves.
 */
static int64_t extent_count(struct lkd *d, uint64_t ext, bool used)
{
	const struct plx_bitmap_block *bm = (void *)d->io2;
	uint64_t start = ext << d->geo.extent_shift;
	uint64_t left = d->geo.extent_blocks, base = 0;
	int64_t count = 0;
	uint64_t i, bit, nbits;
	enum plx_err err;
	bool set;

	for (i = 0; i < d->geo.bitmap_blocks && left; i++) {
		if (lkd_read(d, start + i, d->io2))
			return -1;
		err = plx_block_verify(bm, PLX_MAGIC_BITMAP, start + i,
				       d->geo.uuid);
		if (err) {
			plx_seterr(PLX_EK_STORE, "block %llu: bitmap: %s",
				   (unsigned long long)(start + i),
				   plx_strerror(err));
			return -1;
		}
		nbits = left < PLX_BITS_PER_BITMAP ? left : PLX_BITS_PER_BITMAP;
		for (bit = 0; bit < nbits; bit++) {
			set = bm->bits[bit / 8] & (1U << (bit % 8));
			if (used ? set && base + bit >= d->geo.bitmap_blocks :
			    !set)
				count++;
		}
		left -= nbits;
		base += nbits;
	}
	return count;
}

int64_t lkd_extent_free(struct lkd *d, uint64_t ext)
{
	return extent_count(d, ext, false);
}

int64_t lkd_extent_used(struct lkd *d, uint64_t ext)
{
	return extent_count(d, ext, true);
}

void lkd_vdi_set(struct lkd *d, uint64_t id, uint32_t holder,
		 uint64_t lock_gen, const char *name, bool cache_dirty)
{
	struct lkd_vdi *v;
	size_t i;

	for (i = 0; i < d->nr_vdis; i++)
		if (d->vdis[i].id == id)
			break;
	if (!holder && !cache_dirty) {
		if (i < d->nr_vdis)
			d->vdis[i] = d->vdis[--d->nr_vdis];
		return;
	}
	if (i == d->nr_vdis) {
		if (d->nr_vdis == d->cap_vdis) {
			size_t cap = d->cap_vdis ? 2 * d->cap_vdis : 16;
			void *p = realloc(d->vdis, cap * sizeof(*d->vdis));

			/*
			 * Only STATUS and host-wide BREAK use this table; the
			 * record on disk stays the truth for every lock op.
			 */
			if (!p)
				return;
			d->vdis = p;
			d->cap_vdis = cap;
		}
		d->nr_vdis++;
	}
	v = &d->vdis[i];
	v->id = id;
	v->holder = holder;
	v->lock_gen = lock_gen;
	v->cache_dirty = cache_dirty;
	plx_copy_name(v->name, name, PLX_NAME_LEN);
}

struct lkd_host *lkd_host_get(struct lkd *d, uint32_t id, bool create)
{
	struct lkd_host *h;
	size_t i;

	for (i = 0; i < d->nr_hosts; i++)
		if (d->hosts[i].id == id)
			return &d->hosts[i];
	if (!create)
		return NULL;
	if (d->nr_hosts == d->cap_hosts) {
		size_t cap = d->cap_hosts ? 2 * d->cap_hosts : 16;
		void *p = realloc(d->hosts, cap * sizeof(*d->hosts));

		if (!p)
			return NULL;
		d->hosts = p;
		d->cap_hosts = cap;
	}
	h = &d->hosts[d->nr_hosts++];
	memset(h, 0, sizeof(*h));
	h->id = id;
	/* Until it says HELLO a holder found on disk is in its grace period. */
	h->renew_ms = d->start_ms;
	return h;
}

/* A host that holds something on disk is live for one lease after start. */
static void grace(struct lkd *d, uint32_t host)
{
	if (host)
		lkd_host_get(d, host, true);
}

static int open_store_fd(struct lkd *d, const char *path)
{
	d->direct = true;
	d->fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (d->fd < 0 && errno == EINVAL) {
		/* Filesystems such as older tmpfs refuse O_DIRECT. */
		d->direct = false;
		d->fd = open(path, O_RDWR | O_CLOEXEC);
	}
	if (d->fd < 0) {
		plx_seterr(PLX_EK_STORE, "cannot open %s: %s", path,
			   strerror(errno));
		return -1;
	}
	if (!d->direct)
		posix_fadvise(d->fd, 0, 0, POSIX_FADV_DONTNEED);
	return 0;
}

int lkd_open(struct lkd *d, const char *path, uint32_t lease_ms)
{
	static const uint8_t zero_key[PLX_LK_KEY_LEN];
	struct plx_vdi_record *v;
	enum plx_err err;
	uint64_t i, ext;

	memset(d, 0, sizeof(*d));
	d->fd = -1;
	d->path = path;
	d->lease_ms = lease_ms;
	d->start_ms = lkd_now_ms();
	/*
	 * Job ids are not reused across restarts of lockd, so a GC client
	 * polling a job of a lockd that restarted gets ENOENT, not the result
	 * of some other job.
	 */
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		d->next_job_id = ((uint64_t)ts.tv_sec << 20) + 1;
	}
	if (open_store_fd(d, path))
		return -1;
	if (plx_device_blocks(d->fd, &d->device_blocks))
		goto fail;
	d->sb_block = alloc_blocks(1);
	d->io = alloc_blocks(1);
	d->io2 = alloc_blocks(1);
	if (!d->sb_block || !d->io || !d->io2)
		goto nomem;
	d->sb = (void *)d->sb_block;
	if (lkd_read(d, PLX_SUPERBLOCK_BLOCK, d->sb_block))
		goto fail;
	if (le32_to_cpu(d->sb->hdr.magic) != PLX_MAGIC_SUPER) {
		plx_seterr(PLX_EK_STORE, "%s: not a Parallax blockstore (no superblock magic in block 0)",
			   path);
		goto fail;
	}
	err = plx_superblock_check(d->sb, d->device_blocks);
	if (err) {
		plx_seterr(PLX_EK_STORE, "%s: block 0: superblock: %s", path,
			   plx_strerror(err));
		goto fail;
	}
	memcpy(d->key, d->sb->cluster_key, PLX_LK_KEY_LEN);
	if (!memcmp(d->key, zero_key, PLX_LK_KEY_LEN)) {
		plx_seterr(PLX_EK_STORE, "%s: the superblock has no cluster key (format it again)",
			   path);
		goto fail;
	}
	d->ext_type = calloc(le64_to_cpu(d->sb->nr_extents), 1);
	if (!d->ext_type)
		goto nomem;
	plx_geometry_init(&d->geo, d->sb, d->ext_type);
	d->cat = alloc_blocks(d->geo.catalogue_blocks);
	if (!d->cat)
		goto nomem;
	for (i = 0; i < d->geo.catalogue_blocks; i++) {
		if (lkd_read(d, d->geo.catalogue_start + i, &d->cat[i]))
			goto fail;
		err = plx_catalogue_check(&d->geo, &d->cat[i], i);
		if (err) {
			plx_seterr(PLX_EK_STORE, "%s: block %llu: catalogue: %s",
				   path,
				   (unsigned long long)(d->geo.catalogue_start + i),
				   plx_strerror(err));
			goto fail;
		}
	}
	for (ext = 0; ext < d->geo.nr_extents; ext++) {
		struct plx_extent_entry *e = lkd_ext(d, ext);

		d->ext_type[ext] = e->type;
		grace(d, le32_to_cpu(e->holder));
		grace(d, le32_to_cpu(e->bitmap_holder));
	}
	grace(d, le32_to_cpu(d->sb->registry_holder));
	/*
	 * VDI holders are found by one scan of the registry.  A bad record
	 * is not fatal: lockd refuses to lock that VDI and serves the rest.
	 */
	for (i = 1; i <= d->geo.registry_slots; i++) {
		int r = lkd_vdi_load(d, i, &v);

		if (r == PLX_LK_EIO) {
			lkd_log(d, "warning: %s", plx_errmsg());
			continue;
		}
		if (r || (!v->holder && !plx_vdi_cache_dirty(v)))
			continue;
		lkd_vdi_set(d, i, le32_to_cpu(v->holder),
			    le64_to_cpu(v->lock_generation), v->name,
			    plx_vdi_cache_dirty(v));
		grace(d, le32_to_cpu(v->holder));
	}
	plx_copy_name(d->addr, d->sb->lockd_addr, PLX_LOCKD_ADDR_LEN);
	return 0;
nomem:
	plx_seterr(PLX_EK_STORE, "out of memory");
fail:
	lkd_close(d);
	return -1;
}

int lkd_set_addr(struct lkd *d, const char *addr)
{
	char old[PLX_LOCKD_ADDR_LEN];

	if (strlen(addr) >= PLX_LOCKD_ADDR_LEN) {
		plx_seterr(PLX_EK_USAGE, "address '%s' is longer than %d bytes",
			   addr, PLX_LOCKD_ADDR_LEN - 1);
		return -1;
	}
	memcpy(old, d->sb->lockd_addr, sizeof(old));
	memset(d->sb->lockd_addr, 0, PLX_LOCKD_ADDR_LEN);
	memcpy(d->sb->lockd_addr, addr, strlen(addr));
	if (lkd_sb_commit(d)) {
		memcpy(d->sb->lockd_addr, old, sizeof(old));
		return -1;
	}
	snprintf(d->addr, sizeof(d->addr), "%s", addr);
	return 0;
}

void lkd_close(struct lkd *d)
{
	size_t i;

	for (i = 0; i < LKD_MAX_CONNS; i++)
		if (d->conns[i])
			lkd_conn_free(d, d->conns[i]);
	for (i = 0; i < d->nr_jobs; i++)
		free(d->jobs[i]);
	d->nr_jobs = 0;
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
	free(d->sb_block);
	free(d->io);
	free(d->io2);
	free(d->ext_type);
	free(d->cat);
	free(d->hosts);
	free(d->vdis);
	d->sb_block = d->io = d->io2 = d->ext_type = NULL;
	d->sb = NULL;
	d->cat = NULL;
	d->hosts = NULL;
	d->vdis = NULL;
	d->nr_hosts = d->cap_hosts = d->nr_vdis = d->cap_vdis = 0;
	explicit_bzero(d->key, sizeof(d->key));
}
