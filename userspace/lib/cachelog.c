// SPDX-License-Identifier: GPL-2.0
/*
 * The local write cache's log (issue 8): initialising a log device and
 * walking its undrained records the way the kernel target replays them.
 * The layout and the checks of single blocks are parallax-format.[ch]'s;
 * this file only strings them together.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

#define U(x) ((unsigned long long)(x))

/*
 * Read @count blocks from @blocknr, dropping what the page cache holds of
 * them first: the kernel target writes the log with bios that bypass it.
 */
static int log_read(const struct plx_cachelog *log, u64 blocknr, u64 count,
		    void *buf)
{
	off_t off = (off_t)(blocknr << PLX_BLOCK_SHIFT);
	size_t len = count << PLX_BLOCK_SHIFT;
	ssize_t n;

	if (blocknr >= log->device_blocks ||
	    count > log->device_blocks - blocknr) {
		plx_seterr(PLX_EK_STORE, "%s: block %llu: beyond the end of the device",
			   log->path, U(blocknr + count - 1));
		return -1;
	}
	posix_fadvise(log->fd, off, (off_t)len, POSIX_FADV_DONTNEED);
	n = pread(log->fd, buf, len, off);
	if (n != (ssize_t)len) {
		plx_seterr(PLX_EK_STORE, "%s: block %llu: read failed: %s",
			   log->path, U(blocknr),
			   n < 0 ? strerror(errno) : "short read");
		return -1;
	}
	return 0;
}

static int log_write(const struct plx_cachelog *log, u64 blocknr,
		     const void *buf)
{
	ssize_t n;

	n = pwrite(log->fd, buf, PLX_BLOCK_SIZE, (off_t)(blocknr << PLX_BLOCK_SHIFT));
	if (n != PLX_BLOCK_SIZE) {
		plx_seterr(PLX_EK_STORE, "%s: block %llu: write failed: %s",
			   log->path, U(blocknr),
			   n < 0 ? strerror(errno) : "short write");
		return -1;
	}
	return 0;
}

/* What the header check's verdict means for a log record. */
static const char *record_err_text(enum plx_err err)
{
	switch (err) {
	case PLX_E_MAGIC:
		return "no record (bad magic number)";
	case PLX_E_UUID:
		return "record of another log (uuid differs)";
	case PLX_E_CRC:
		return "record header checksum mismatch";
	default:
		return plx_strerror(err);
	}
}

int plx_cachelog_scan(struct plx_cachelog *log, plx_cachelog_fn fn, void *arg,
		      struct plx_cachelog_scan *st)
{
	const struct plx_log_super *sp = &log->super;
	u64 nr = le64_to_cpu(sp->nr_blocks);
	u64 ring = nr - PLX_LOG_FIRST_BLOCK;
	u64 block = le64_to_cpu(sp->head_block);
	u64 seq = le64_to_cpu(sp->head_seq);
	u64 gen = 0, rec_gen, rec_seq, rec_blocks;
	struct plx_log_record *r;
	u8 *buf;
	u32 data;
	int ret = 0;

	memset(st, 0, sizeof(*st));
	st->first_seq = seq;
	buf = malloc((1 + PLX_LOG_MAX_DATA) * PLX_BLOCK_SIZE);
	if (!buf) {
		plx_seterr(PLX_EK_STORE, "out of memory");
		return -1;
	}
	r = (struct plx_log_record *)buf;
	for (;;) {
		st->end_seq = seq;
		st->end_block = block;
		if (log_read(log, block, 1, buf)) {
			ret = -1;
			break;
		}
		st->err = plx_log_record_check(r, block, sp->hdr.uuid, nr);
		if (st->err) {
			st->stop = PLX_CACHELOG_INVALID;
			snprintf(st->why, sizeof(st->why), "block %llu: %s",
				 U(block), record_err_text(st->err));
			break;
		}
		rec_seq = le64_to_cpu(r->seq);
		if (rec_seq != seq) {
			st->stop = PLX_CACHELOG_SEQ;
			snprintf(st->why, sizeof(st->why),
				 "block %llu: seq %llu expected %llu",
				 U(block), U(rec_seq), U(seq));
			break;
		}
		rec_gen = le64_to_cpu(r->open_gen);
		if (rec_gen < gen) {
			st->stop = PLX_CACHELOG_GEN;
			snprintf(st->why, sizeof(st->why),
				 "block %llu: seq %llu open_gen %llu older than %llu (stale record)",
				 U(block), U(seq), U(rec_gen), U(gen));
			break;
		}
		rec_blocks = plx_log_record_blocks(r);
		if (rec_blocks > ring - st->blocks) {
			st->stop = PLX_CACHELOG_OVERRUN;
			snprintf(st->why, sizeof(st->why),
				 "block %llu: seq %llu overruns the ring (%llu blocks after %llu)",
				 U(block), U(seq), U(rec_blocks), U(st->blocks));
			break;
		}
		data = le32_to_cpu(r->data_blocks);
		/* The header check kept the data inside the device. */
		if (data && log_read(log, block + 1, data,
				     buf + PLX_BLOCK_SIZE)) {
			ret = -1;
			break;
		}
		if (plx_crc32c(buf + PLX_BLOCK_SIZE,
			       (size_t)data << PLX_BLOCK_SHIFT) !=
		    le32_to_cpu(r->data_crc)) {
			st->stop = PLX_CACHELOG_DATA;
			snprintf(st->why, sizeof(st->why),
				 "block %llu: seq %llu data checksum mismatch (torn record)",
				 U(block), U(seq));
			break;
		}
		st->records++;
		st->blocks += rec_blocks;
		if (le32_to_cpu(r->type) == PLX_LOG_SNAPSHOT)
			st->snapshots++;
		if (fn) {
			ret = fn(arg, block, r);
			if (ret)
				break;
		}
		gen = rec_gen;
		seq++;
		block = le64_to_cpu(r->next_block);
	}
	free(buf);
	return ret;
}

char *plx_uuid_str(const u8 *uuid, char *buf, size_t len)
{
	size_t o = 0;
	int i;

	for (i = 0; i < 16 && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%02x%s", uuid[i],
				      i == 3 || i == 5 || i == 7 || i == 9 ?
				      "-" : "");
	return buf;
}

/* Where a log superblock that failed its check went wrong, in words. */
static void super_err(const char *path, const u8 *block, enum plx_err err,
		      u64 device_blocks)
{
	const struct plx_log_super *sp = (const void *)block;
	u32 magic = le32_to_cpu(sp->hdr.magic);

	if (magic == PLX_MAGIC_SUPER)
		plx_seterr(PLX_EK_STORE,
			   "%s holds a Parallax blockstore, not a cache log",
			   path);
	else if (err == PLX_E_MAGIC)
		plx_seterr(PLX_EK_STORE,
			   "%s is not a cache log: no log superblock in block 0 (see parallax cache-init)",
			   path);
	else if (err == PLX_E_DEVICE_SMALL)
		plx_seterr(PLX_EK_STORE,
			   "%s: log superblock (block 0) says %llu blocks but the device has %llu",
			   path, U(le64_to_cpu(sp->nr_blocks)), U(device_blocks));
	else
		plx_seterr(PLX_EK_STORE, "%s: bad log superblock (block 0): %s",
			   path, err == PLX_E_CRC ? "checksum mismatch" :
			   plx_strerror(err));
}

int plx_cachelog_open(const char *path, struct plx_cachelog *log)
{
	u8 block[PLX_BLOCK_SIZE];
	enum plx_err err;

	memset(log, 0, sizeof(*log));
	log->path = path;
	log->fd = plx_open_device(path, false, false);
	if (log->fd < 0)
		return -1;
	if (plx_device_blocks(log->fd, &log->device_blocks))
		goto fail;
	if (log->device_blocks < 1) {
		plx_seterr(PLX_EK_STORE,
			   "%s is not a cache log: smaller than one block", path);
		goto fail;
	}
	if (log_read(log, 0, 1, block))
		goto fail;
	err = plx_log_super_check((const void *)block, log->device_blocks);
	if (err) {
		super_err(path, block, err, log->device_blocks);
		goto fail;
	}
	memcpy(&log->super, block, sizeof(log->super));
	return 0;
fail:
	close(log->fd);
	log->fd = -1;
	return -1;
}

void plx_cachelog_close(struct plx_cachelog *log)
{
	if (log->fd >= 0)
		close(log->fd);
	log->fd = -1;
}

/*
 * Refuse to overwrite what someone may still need: a blockstore, or a log
 * whose head record is there (the kernel has not drained it).
 */
static int init_may_overwrite(struct plx_cachelog *log, const u8 *block)
{
	const struct plx_log_super *sp = (const void *)block;
	const char *path = log->path;
	struct plx_cachelog_scan st;
	char su[40], bound[96] = "";

	if (le32_to_cpu(sp->hdr.magic) == PLX_MAGIC_SUPER) {
		plx_seterr(PLX_EK_STORE,
			   "%s holds a Parallax blockstore (use --force to overwrite it)",
			   path);
		return -1;
	}
	if (plx_log_super_check(sp, log->device_blocks))
		return 0;
	memcpy(&log->super, sp, sizeof(log->super));
	if (plx_cachelog_scan(log, NULL, NULL, &st))
		return -1;
	if (le64_to_cpu(sp->vdi))
		snprintf(bound, sizeof(bound), " of VDI %llu of store %s",
			 U(le64_to_cpu(sp->vdi)),
			 plx_uuid_str(sp->store_uuid, su, sizeof(su)));
	if (st.records) {
		plx_seterr(PLX_EK_STORE,
			   "%s holds %llu undrained record%s (seq %llu..%llu)%s: drain them (load a table using this log, then remove it), or use --force to discard them",
			   path, U(st.records), st.records == 1 ? "" : "s",
			   U(st.first_seq),
			   U(st.end_seq - 1), bound);
		return -1;
	}
	/*
	 * A head record whose data are torn was never acknowledged and will
	 * not be replayed, but it is still a record at the head: only
	 * --force overwrites it.
	 */
	if (st.stop == PLX_CACHELOG_DATA) {
		plx_seterr(PLX_EK_STORE,
			   "%s holds a torn record at its head (block %llu, seq %llu)%s: replay would drop it; use --force to overwrite the log",
			   path, U(st.end_block), U(st.end_seq), bound);
		return -1;
	}
	return 0;
}

int plx_cachelog_init(const char *path, bool force, struct plx_log_super *out)
{
	struct plx_cachelog log = { .path = path };
	struct plx_log_super *sp;
	u8 *block;
	int ret = -1;

	block = calloc(1, PLX_BLOCK_SIZE);
	if (!block) {
		plx_seterr(PLX_EK_STORE, "out of memory");
		return -1;
	}
	sp = (struct plx_log_super *)block;
	log.fd = plx_open_device(path, true, true);
	if (log.fd < 0)
		goto out_free;
	if (plx_device_blocks(log.fd, &log.device_blocks))
		goto out;
	if (log.device_blocks < PLX_LOG_MIN_BLOCKS) {
		plx_seterr(PLX_EK_STORE,
			   "%s is too small for a cache log: %llu blocks of 4 KiB, need at least %llu (%llu KiB)",
			   path, U(log.device_blocks), U(PLX_LOG_MIN_BLOCKS),
			   U(PLX_LOG_MIN_BLOCKS << PLX_BLOCK_SHIFT >> 10));
		goto out;
	}
	if (!force) {
		if (log_read(&log, 0, 1, block))
			goto out;
		if (init_may_overwrite(&log, block))
			goto out;
	}

	/*
	 * Block 1 first, so that no record is found there even under an old
	 * superblock; a stale record elsewhere carries the old log's uuid,
	 * which no record check of the new log accepts.
	 */
	memset(block, 0, PLX_BLOCK_SIZE);
	if (log_write(&log, PLX_LOG_FIRST_BLOCK, block))
		goto out;
	if (plx_random(sp->hdr.uuid, sizeof(sp->hdr.uuid)))
		goto out;
	sp->version = cpu_to_le32(PLX_LOG_VERSION);
	sp->nr_blocks = cpu_to_le64(log.device_blocks);
	sp->head_seq = cpu_to_le64(1);
	sp->head_block = cpu_to_le64(PLX_LOG_FIRST_BLOCK);
	sp->open_gen = cpu_to_le64(1);
	sp->ctime_ns = cpu_to_le64(plx_now_ns());
	plx_block_seal(block, PLX_MAGIC_LOG_SUPER, 0, sp->hdr.uuid);
	if (log_write(&log, 0, block))
		goto out;
	if (fsync(log.fd)) {
		plx_seterr(PLX_EK_STORE, "%s: fsync failed: %s", path,
			   strerror(errno));
		goto out;
	}
	if (out)
		memcpy(out, sp, sizeof(*out));
	ret = 0;
out:
	close(log.fd);
out_free:
	free(block);
	return ret;
}
