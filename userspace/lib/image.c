// SPDX-License-Identifier: GPL-2.0
/*
 * Raw images in and out of a VDI.  Import skips all-zero blocks that are
 * sparse already; export leaves holes for sparse ranges of a regular file
 * and reads physically contiguous runs with one pread.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define PLX_IO_CHUNK	(1U << 20)
#define PLX_RUN_MAX	(PLX_IO_CHUNK / PLX_BLOCK_SIZE)

static bool plx_is_zero(const u8 *p, size_t len)
{
	static const u8 zero[PLX_BLOCK_SIZE];

	return !memcmp(p, zero, len);
}

/* Read up to @len bytes, retrying short reads from pipes. */
static ssize_t plx_read_full(int fd, u8 *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (!n)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static int plx_write_full(int fd, const u8 *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			plx_seterr(PLX_EK_STORE, "write to output failed: %s",
				   strerror(errno));
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int plx_import(struct plx_store *s, u64 id, int fd, struct plx_io_stats *st)
{
	return plx_import_progress(s, id, fd, st, NULL, NULL);
}

/* Progress in blocks of the image; the total is unknown for a pipe. */
int plx_import_progress(struct plx_store *s, u64 id, int fd,
			struct plx_io_stats *st, plx_progress_fn pfn,
			void *parg)
{
	struct plx_vdi_record *v = plx_vdi_get_modifiable(s, id);
	struct plx_writer *w;
	struct stat sb;
	u64 size, pos = 0, total = 0;
	u8 *buf;
	int ret = -1;

	memset(st, 0, sizeof(*st));
	if (!v)
		return -1;
	size = le64_to_cpu(v->size);
	if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
	    (u64)sb.st_size > size) {
		plx_seterr(PLX_EK_STORE,
			   "image is %llu bytes, larger than VDI %llu (%llu bytes)",
			   (unsigned long long)sb.st_size,
			   (unsigned long long)id, (unsigned long long)size);
		return -1;
	}
	if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode))
		total = ((u64)sb.st_size + PLX_BLOCK_SIZE - 1) >> PLX_BLOCK_SHIFT;
	buf = malloc(PLX_IO_CHUNK);
	w = buf ? plx_writer_open(s, id) : NULL;
	if (!w) {
		if (!buf)
			plx_seterr(PLX_EK_STORE, "out of memory");
		free(buf);
		return -1;
	}
	for (;;) {
		ssize_t n;
		size_t off;

		if (pfn)
			pfn(parg, "import", pos >> PLX_BLOCK_SHIFT, total);
		n = plx_read_full(fd, buf, PLX_IO_CHUNK);

		if (n < 0) {
			plx_seterr(PLX_EK_STORE, "cannot read image: %s",
				   strerror(errno));
			goto out;
		}
		if (!n)
			break;
		if (pos + (u64)n > size) {
			plx_seterr(PLX_EK_STORE,
				   "image is larger than VDI %llu (%llu bytes)",
				   (unsigned long long)id,
				   (unsigned long long)size);
			goto out;
		}
		for (off = 0; off < (size_t)n; off += PLX_BLOCK_SIZE) {
			unsigned int len = (size_t)n - off < PLX_BLOCK_SIZE ?
					   (unsigned int)((size_t)n - off) :
					   PLX_BLOCK_SIZE;
			u64 vb = (pos + off) >> PLX_BLOCK_SHIFT;
			bool sparse;

			if (plx_is_zero(buf + off, len)) {
				if (plx_writer_is_sparse(w, vb, &sparse))
					goto out;
				if (sparse) {
					st->blocks_sparse++;
					continue;
				}
			}
			if (plx_writer_write(w, vb, buf + off, 0, len))
				goto out;
			st->blocks_written++;
		}
		pos += (u64)n;
		if ((size_t)n < PLX_IO_CHUNK)
			break;
	}
	st->bytes = pos;
	ret = plx_writer_close(w);
	w = NULL;
out:
	if (w)
		plx_writer_abort(w);
	free(buf);
	return ret;
}

struct plx_export_ctx {
	struct plx_store *s;
	int fd;
	bool seekable;
	u64 size_blocks;
	u64 size;
	u64 run_v, run_p, run_len;	/* pending contiguous run */
	u64 out_pos;			/* bytes emitted (streams only) */
	u8 *buf;
	struct plx_io_stats *st;
	plx_progress_fn pfn;
	void *parg;
};

static int plx_emit_zeros(struct plx_export_ctx *x, u64 upto)
{
	while (x->out_pos < upto) {
		u64 n = upto - x->out_pos;

		if (n > PLX_IO_CHUNK)
			n = PLX_IO_CHUNK;
		memset(x->buf, 0, n);
		if (plx_write_full(x->fd, x->buf, n))
			return -1;
		x->out_pos += n;
	}
	return 0;
}

static int plx_run_flush(struct plx_export_ctx *x)
{
	u64 bytes = x->run_len << PLX_BLOCK_SHIFT;
	u64 off = x->run_v << PLX_BLOCK_SHIFT;
	ssize_t n;

	if (!x->run_len)
		return 0;
	if (off + bytes > x->size)
		bytes = x->size - off;
	/* Zeros first: the gap is emitted through the same buffer. */
	if (!x->seekable && plx_emit_zeros(x, off))
		return -1;
	n = pread(x->s->fd, x->buf, bytes,
		  (off_t)(x->run_p << PLX_BLOCK_SHIFT));
	if (n != (ssize_t)bytes) {
		plx_seterr(PLX_EK_STORE, "block %llu: read failed",
			   (unsigned long long)x->run_p);
		return -1;
	}
	x->st->blocks_written += x->run_len;
	x->run_len = 0;
	if (x->seekable) {
		if (pwrite(x->fd, x->buf, bytes, (off_t)off) != (ssize_t)bytes) {
			plx_seterr(PLX_EK_STORE, "write to output failed: %s",
				   strerror(errno));
			return -1;
		}
		return 0;
	}
	if (plx_write_full(x->fd, x->buf, bytes))
		return -1;
	x->out_pos += bytes;
	return 0;
}

static int plx_export_block(void *arg, u64 vblock, u64 pblock)
{
	struct plx_export_ctx *x = arg;

	if (vblock >= x->size_blocks)
		return 0;	/* beyond the VDI's size: not part of it */
	if (x->run_len && x->run_v + x->run_len == vblock &&
	    x->run_p + x->run_len == pblock && x->run_len < PLX_RUN_MAX) {
		x->run_len++;
		return 0;
	}
	if (plx_run_flush(x))
		return -1;
	if (x->pfn)
		x->pfn(x->parg, "export", vblock, x->size_blocks);
	x->run_v = vblock;
	x->run_p = pblock;
	x->run_len = 1;
	return 0;
}

int plx_export(struct plx_store *s, u64 root, u8 height, u64 size, int fd,
	       struct plx_io_stats *st)
{
	return plx_export_progress(s, root, height, size, fd, st, NULL, NULL);
}

/* Progress in virtual blocks of the VDI. */
int plx_export_progress(struct plx_store *s, u64 root, u8 height, u64 size,
			int fd, struct plx_io_stats *st, plx_progress_fn pfn,
			void *parg)
{
	struct plx_export_ctx x;
	struct stat sb;
	int ret = -1;

	memset(st, 0, sizeof(*st));
	memset(&x, 0, sizeof(x));
	x.s = s;
	x.fd = fd;
	x.size = size;
	x.size_blocks = (size + PLX_BLOCK_SIZE - 1) >> PLX_BLOCK_SHIFT;
	x.st = st;
	x.pfn = pfn;
	x.parg = parg;
	x.seekable = !fstat(fd, &sb) && S_ISREG(sb.st_mode);
	x.buf = malloc(PLX_IO_CHUNK);
	if (!x.buf) {
		plx_seterr(PLX_EK_STORE, "out of memory");
		return -1;
	}
	if (x.seekable && (ftruncate(fd, 0) || ftruncate(fd, (off_t)size))) {
		plx_seterr(PLX_EK_STORE, "cannot size output: %s",
			   strerror(errno));
		goto out;
	}
	if (plx_map_walk_size(s, root, height, x.size_blocks,
			      plx_export_block, &x) ||
	    plx_run_flush(&x))
		goto out;
	if (!x.seekable && plx_emit_zeros(&x, size))
		goto out;
	st->bytes = size;
	st->blocks_sparse = x.size_blocks - st->blocks_written;
	ret = 0;
out:
	free(x.buf);
	return ret;
}
