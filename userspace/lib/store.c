// SPDX-License-Identifier: GPL-2.0
/*
 * Opening a blockstore: superblock, catalogue and VDI registry are read
 * and validated with the shared checks before anything trusts them.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libparallax.h"

int plx_device_blocks(int fd, u64 *blocks)
{
	struct stat st;
	u64 bytes;

	if (fstat(fd, &st)) {
		plx_seterr(PLX_EK_STORE, "cannot stat device: %s",
			   strerror(errno));
		return -1;
	}
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &bytes)) {
			plx_seterr(PLX_EK_STORE, "cannot get device size: %s",
				   strerror(errno));
			return -1;
		}
	} else if (S_ISREG(st.st_mode)) {
		bytes = (u64)st.st_size;
	} else {
		plx_seterr(PLX_EK_STORE,
			   "not a regular file or block device");
		return -1;
	}
	*blocks = bytes >> PLX_BLOCK_SHIFT;
	return 0;
}

int plx_open_device(const char *path, bool write, bool exclusive)
{
	int flags = (write ? O_RDWR : O_RDONLY) | O_CLOEXEC;
	struct stat st;
	int fd;

	/*
	 * format opens a block device exclusively: that fails while it is
	 * mounted or a device-mapper table holds it.  Other changes run
	 * beside attached VDIs, as Parallax intends: they touch only VDIs and
	 * extents that no host holds.
	 */
	if (exclusive && !stat(path, &st) && S_ISBLK(st.st_mode))
		flags |= O_EXCL;
	fd = open(path, flags);
	if (fd < 0)
		plx_seterr(PLX_EK_STORE, "cannot open %s: %s%s", path,
			   strerror(errno),
			   errno == EBUSY ? " (mounted, or attached by a device-mapper target?)" : "");
	return fd;
}

int plx_fd_read_block(int fd, u64 device_blocks, u64 blocknr, void *buf)
{
	ssize_t n;

	if (blocknr >= device_blocks) {
		plx_seterr(PLX_EK_STORE, "block %llu: beyond the end of the device",
			   (unsigned long long)blocknr);
		return -1;
	}
	n = pread(fd, buf, PLX_BLOCK_SIZE, (off_t)(blocknr << PLX_BLOCK_SHIFT));
	if (n != PLX_BLOCK_SIZE) {
		plx_seterr(PLX_EK_STORE, "block %llu: read failed: %s",
			   (unsigned long long)blocknr,
			   n < 0 ? strerror(errno) : "short read");
		return -1;
	}
	return 0;
}

int plx_fd_write_block(int fd, u64 blocknr, const void *buf)
{
	ssize_t n;

	n = pwrite(fd, buf, PLX_BLOCK_SIZE, (off_t)(blocknr << PLX_BLOCK_SHIFT));
	if (n != PLX_BLOCK_SIZE) {
		plx_seterr(PLX_EK_STORE, "block %llu: write failed: %s",
			   (unsigned long long)blocknr,
			   n < 0 ? strerror(errno) : "short write");
		return -1;
	}
	return 0;
}

int plx_read_block(struct plx_store *s, u64 blocknr, void *buf)
{
	return plx_fd_read_block(s->fd, s->device_blocks, blocknr, buf);
}

/*
 * Test hook: with PARALLAX_CRASH_AFTER_WRITES=N in the environment the
 * process dies (exit status 99) instead of issuing block write N + 1, as
 * if the machine had crashed there.  tests/cli/crash.sh uses it to show
 * that every prefix of a command's writes leaves a consistent store.
 */
static void plx_crash_point(void)
{
	static long long left = -2;

	if (left == -2) {
		const char *e = getenv("PARALLAX_CRASH_AFTER_WRITES");

		left = e && *e ? atoll(e) : -1;
	}
	if (left < 0)
		return;
	if (left-- == 0)
		_exit(99);
}

int plx_write_block(struct plx_store *s, u64 blocknr, const void *buf)
{
	plx_crash_point();

	if (!s->writable) {
		plx_seterr(PLX_EK_STORE, "store opened read-only");
		return -1;
	}
	if (blocknr >= s->geo.nr_blocks) {
		plx_seterr(PLX_EK_STORE, "block %llu: write beyond the store",
			   (unsigned long long)blocknr);
		return -1;
	}
	return plx_fd_write_block(s->fd, blocknr, buf);
}

int plx_read_meta(struct plx_store *s, u64 blocknr, u32 magic, void *buf)
{
	enum plx_err err;

	if (plx_read_block(s, blocknr, buf))
		return -1;
	err = plx_block_verify(buf, magic, blocknr, s->geo.uuid);
	if (err) {
		plx_seterr(PLX_EK_STORE, "block %llu: %s",
			   (unsigned long long)blocknr, plx_strerror(err));
		return -1;
	}
	return 0;
}

int plx_write_meta(struct plx_store *s, u64 blocknr, u32 magic, void *buf)
{
	plx_block_seal(buf, magic, blocknr, s->geo.uuid);
	return plx_write_block(s, blocknr, buf);
}

int plx_fsync(struct plx_store *s)
{
	if (fsync(s->fd)) {
		plx_seterr(PLX_EK_STORE, "fsync failed: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Bitmaps and catalogue, so they are durable before any link to what they
 * allocate.  The catalogue goes first: an extent typed with an empty
 * bitmap is harmless, bits set in an extent still typed free would not be.
 */
int plx_sync(struct plx_store *s)
{
	u64 e, i;

	if (!s->writable)
		return 0;
	for (i = 0; i < s->geo.catalogue_blocks && !s->shared; i++) {
		if (!s->cat_dirty[i])
			continue;
		if (plx_write_meta(s, s->geo.catalogue_start + i,
				   PLX_MAGIC_CATALOGUE, &s->cat[i]))
			return -1;
		s->cat_dirty[i] = 0;
	}
	for (e = s->geo.system_extents; e < s->geo.nr_extents; e++) {
		struct plx_extent_bm *bm = &s->bm[e];
		u64 base = e << s->geo.extent_shift;

		if (!bm->blk)
			continue;
		for (i = 0; i < s->geo.bitmap_blocks; i++) {
			if (!bm->dirty[i])
				continue;
			if (plx_write_meta(s, base + i, PLX_MAGIC_BITMAP,
					   &bm->blk[i]))
				return -1;
			bm->dirty[i] = 0;
		}
	}
	return plx_fsync(s);
}

static int plx_load_catalogue(struct plx_store *s)
{
	u64 i, e, n = s->geo.catalogue_blocks;

	s->cat = calloc(n, PLX_BLOCK_SIZE);
	s->cat_err = calloc(n, sizeof(*s->cat_err));
	s->cat_dirty = calloc(n, 1);
	s->ext_type = calloc(s->geo.nr_extents, 1);
	if (!s->cat || !s->cat_err || !s->cat_dirty || !s->ext_type) {
		plx_seterr(PLX_EK_STORE, "out of memory");
		return -1;
	}
	s->geo.ext_type = s->ext_type;
	for (i = 0; i < n; i++) {
		if (plx_read_block(s, s->geo.catalogue_start + i, &s->cat[i]))
			return -1;
		s->cat_err[i] = plx_catalogue_check(&s->geo, &s->cat[i], i);
	}
	for (e = 0; e < s->geo.nr_extents; e++) {
		i = e / PLX_CATALOGUE_PER_BLOCK;
		/*
		 * An extent whose catalogue block is bad is treated as free,
		 * so no pointer into it passes plx_check_addr().
		 */
		if (s->cat_err[i])
			s->ext_type[e] = e < s->geo.system_extents ?
					 PLX_EXT_SYSTEM : PLX_EXT_FREE;
		else
			s->ext_type[e] = s->cat[i].entries
					 [e % PLX_CATALOGUE_PER_BLOCK].type;
	}
	return 0;
}

/* The registry is read in large chunks: one record per block. */
static int plx_load_registry(struct plx_store *s)
{
	u64 slots = s->geo.registry_slots, i, chunk = 256, j;
	u8 *buf;

	if (!s->slots)
		s->slots = calloc(slots, sizeof(*s->slots));
	buf = malloc(chunk * PLX_BLOCK_SIZE);
	if (!s->slots || !buf) {
		free(buf);
		plx_seterr(PLX_EK_STORE, "out of memory");
		return -1;
	}
	for (i = 0; i < slots; i += chunk) {
		u64 n = slots - i < chunk ? slots - i : chunk;
		off_t off = (off_t)((s->geo.registry_start + i) <<
				    PLX_BLOCK_SHIFT);
		ssize_t got;

		posix_fadvise(s->fd, off, n * PLX_BLOCK_SIZE,
			      POSIX_FADV_DONTNEED);
		got = pread(s->fd, buf, n * PLX_BLOCK_SIZE, off);

		if (got != (ssize_t)(n * PLX_BLOCK_SIZE)) {
			free(buf);
			plx_seterr(PLX_EK_STORE,
				   "block %llu: cannot read VDI registry",
				   (unsigned long long)(s->geo.registry_start + i));
			return -1;
		}
		for (j = 0; j < n; j++) {
			const u8 *b = buf + j * PLX_BLOCK_SIZE;
			const struct plx_block_header *h = (const void *)b;
			struct plx_slot *sl = &s->slots[i + j];

			if (le32_to_cpu(h->magic) != PLX_MAGIC_VDI) {
				sl->state = PLX_SLOT_FREE;
				continue;
			}
			sl->err = plx_vdi_check(&s->geo, (const void *)b,
						i + j + 1);
			sl->state = sl->err ? PLX_SLOT_BAD : PLX_SLOT_VDI;
			memcpy(&sl->rec, b, sizeof(sl->rec));
		}
	}
	free(buf);
	return 0;
}

void (*plx_open_wait_hook)(const char *path);

/*
 * The modifying commands of one host take turns: two must not allocate
 * the same free block, and the collector must not miss a block that a
 * command allocated after it started.  (The hosts of a cluster take
 * their turns through the lock manager; this only orders one host's.)
 */
static int plx_lock_store(struct plx_store *s)
{
	int r = flock(s->fd, LOCK_EX | LOCK_NB);

	if (!r)
		return 0;
	if (errno == EWOULDBLOCK) {
		if (plx_open_wait_hook)
			plx_open_wait_hook(s->path);
		do
			r = flock(s->fd, LOCK_EX);
		while (r && errno == EINTR);
		if (!r)
			return 0;
	}
	plx_seterr(PLX_EK_STORE, "%s: cannot lock: %s", s->path,
		   strerror(errno));
	return -1;
}

int plx_registry_reload(struct plx_store *s)
{
	return plx_load_registry(s);
}

int plx_read_fresh(struct plx_store *s, u64 blocknr, u64 count, void *buf)
{
	off_t off = (off_t)(blocknr << PLX_BLOCK_SHIFT);
	size_t len = count << PLX_BLOCK_SHIFT;
	ssize_t n;

	if (blocknr >= s->device_blocks || count > s->device_blocks - blocknr) {
		plx_seterr(PLX_EK_STORE, "block %llu: beyond the end of the device",
			   (unsigned long long)(blocknr + count - 1));
		return -1;
	}
	posix_fadvise(s->fd, off, len, POSIX_FADV_DONTNEED);
	n = pread(s->fd, buf, len, off);
	if (n != (ssize_t)len) {
		plx_seterr(PLX_EK_STORE, "block %llu: read failed: %s",
			   (unsigned long long)blocknr,
			   n < 0 ? strerror(errno) : "short read");
		return -1;
	}
	return 0;
}

struct plx_store *plx_open(const char *path, int flags)
{
	struct plx_store *s = calloc(1, sizeof(*s));
	u8 block[PLX_BLOCK_SIZE];
	enum plx_err err;

	if (!s) {
		plx_seterr(PLX_EK_STORE, "out of memory");
		return NULL;
	}
	s->path = path;
	s->writable = flags & PLX_OPEN_RDWR;
	s->fd = plx_open_device(path, s->writable, false);
	if (s->fd < 0) {
		free(s);
		return NULL;
	}
	if (s->writable && plx_lock_store(s))
		goto fail;
	if (plx_device_blocks(s->fd, &s->device_blocks))
		goto fail;
	/*
	 * The kernel target writes the store with bios that bypass the block
	 * device's page cache, so pages an earlier process cached may be
	 * stale: drop them before reading anything.
	 */
	posix_fadvise(s->fd, 0, 0, POSIX_FADV_DONTNEED);
	if (s->device_blocks < 1) {
		plx_seterr(PLX_EK_STORE, "%s: too small to hold a blockstore",
			   path);
		goto fail;
	}
	if (plx_read_block(s, PLX_SUPERBLOCK_BLOCK, block))
		goto fail;
	memcpy(&s->sb, block, sizeof(s->sb));
	if (le32_to_cpu(s->sb.hdr.magic) != PLX_MAGIC_SUPER) {
		plx_seterr(PLX_EK_STORE, "%s: not a Parallax blockstore (no superblock magic in block 0)",
			   path);
		goto fail;
	}
	err = plx_superblock_check((const void *)block, s->device_blocks);
	if (err) {
		plx_seterr(PLX_EK_STORE, "block 0: superblock: %s",
			   plx_strerror(err));
		goto fail;
	}
	plx_geometry_init(&s->geo, &s->sb, NULL);
	if (plx_load_catalogue(s) || plx_load_registry(s))
		goto fail;
	s->bm = calloc(s->geo.nr_extents, sizeof(*s->bm));
	if (!s->bm) {
		plx_seterr(PLX_EK_STORE, "out of memory");
		goto fail;
	}
	return s;
fail:
	plx_close(s);
	return NULL;
}

int plx_store_sane(struct plx_store *s)
{
	u64 i;

	for (i = 0; i < s->geo.catalogue_blocks; i++) {
		if (s->cat_err[i]) {
			plx_seterr(PLX_EK_STORE, "block %llu: catalogue: %s",
				   (unsigned long long)(s->geo.catalogue_start + i),
				   plx_strerror(s->cat_err[i]));
			return -1;
		}
	}
	return 0;
}

void plx_close(struct plx_store *s)
{
	u64 e;

	if (!s)
		return;
	if (s->bm) {
		for (e = 0; e < s->geo.nr_extents; e++) {
			free(s->bm[e].blk);
			free(s->bm[e].dirty);
		}
	}
	free(s->bm);
	free(s->slots);
	free(s->cat);
	free(s->cat_err);
	free(s->cat_dirty);
	free(s->ext_type);
	if (s->fd >= 0)
		close(s->fd);
	free(s);
}
