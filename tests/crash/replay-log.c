// SPDX-License-Identifier: GPL-2.0
/*
 * replay-log - rebuild a blockstore from a dm-log-writes log at many
 * points and check every one of them.  See usage() for the interface and
 * Documentation/testing.rst ("Write-log replay") for the model.
 *
 * The log (drivers/md/dm-log-writes.c) is a superblock in its first
 * sector, then per entry one sector holding struct log_write_entry and,
 * unless the entry is a mark or a discard, nr_sectors sectors of data.
 * Sectors are the logged device's logical block size, recorded in the
 * superblock.  Writes appear in completion order and a FLUSH entry
 * follows every write that completed before the flush was issued, so the
 * log is the order in which data reached stable storage.
 *
 * A point N is "the first N entries reached the disk".  Besides that
 * prefix, a point can be rebuilt under a volatile write cache: what a
 * FLUSH entry made durable is there, and of the later writes up to N only
 * the FUA writes are certain; each other one is kept or dropped at
 * random (a seed makes the choice repeatable).  The image is advanced to
 * the last FLUSH before each point once and for all; the writes after it
 * are applied with an undo record and taken back after the check, so
 * thousands of points cost little more than one pass over the log.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libparallax.h"

#define LOG_FLUSH	(1ULL << 0)
#define LOG_FUA		(1ULL << 1)
#define LOG_DISCARD	(1ULL << 2)
#define LOG_MARK	(1ULL << 3)
#define LOG_MAGIC	0x6a736677736872ULL
#define LOG_VERSION	1ULL

struct log_super {
	__le64 magic;
	__le64 version;
	__le64 nr_entries;
	__le32 sectorsize;
} __packed;

struct log_entry_disk {
	__le64 sector;
	__le64 nr_sectors;
	__le64 flags;
	__le64 data_len;
} __packed;

struct entry {
	u64 off;		/* byte offset on the logged device */
	u64 len;		/* bytes */
	u64 flags;
	u64 data;		/* byte offset of the data in the log */
	char *mark;		/* label of a mark entry */
};

struct wlog {			/* the workload's verification log */
	u64 nblocks;
	u64 nwrites;
	u64 *blk;		/* write k (from 1) went to blk[k] */
	u64 *gen_end;		/* writes 1..gen_end[g] are in gens <= g */
	u64 ngens;
};

struct undo {
	u64 off;
	u64 len;
	u8 *old;
};

static struct {
	const char *log, *base, *image, *exec, *vlog;
	int logfd, imgfd;
	u32 sectorsize;
	struct entry *e;
	u64 n;
	u64 applied;		/* entries [0, applied) are in the image for good */
	u64 vdi;
	struct wlog w;
	u64 violations, points, max_report;
	bool verbose;
	u8 *buf;
	u64 buflen;
} R = { .max_report = 20 };

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("replay-log: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static void *xmalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);

	if (!p)
		die("out of memory");
	return p;
}

static void xpread(int fd, void *buf, u64 len, u64 off, const char *what)
{
	ssize_t r = pread(fd, buf, len, (off_t)off);

	if (r != (ssize_t)len)
		die("%s: short read of %" PRIu64 " bytes at %" PRIu64 ": %s",
		    what, len, off, r < 0 ? strerror(errno) : "end of file");
}

static void xpwrite(int fd, const void *buf, u64 len, u64 off)
{
	if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len)
		die("%s: write at %" PRIu64 ": %s", R.image, off, strerror(errno));
}

static u8 *scratch(u64 len)
{
	if (len > R.buflen) {
		free(R.buf);
		R.buf = xmalloc(len);
		R.buflen = len;
	}
	return R.buf;
}

/* ---- Reading the log ---------------------------------------------------- */

static void load_log(void)
{
	struct log_super sb;
	struct log_entry_disk d;
	u64 pos, i, nr;
	struct stat st;
	u8 *sec;

	R.logfd = open(R.log, O_RDONLY);
	if (R.logfd < 0 || fstat(R.logfd, &st))
		die("%s: %s", R.log, strerror(errno));
	xpread(R.logfd, &sb, sizeof(sb), 0, R.log);
	if (le64_to_cpu(sb.magic) != LOG_MAGIC)
		die("%s: not a dm-log-writes log (bad magic)", R.log);
	if (le64_to_cpu(sb.version) != LOG_VERSION)
		die("%s: log version %" PRIu64 " not supported", R.log,
		    (u64)le64_to_cpu(sb.version));
	R.sectorsize = le32_to_cpu(sb.sectorsize);
	if (R.sectorsize < 512 || R.sectorsize > 65536 ||
	    (R.sectorsize & (R.sectorsize - 1)))
		die("%s: bad sector size %u", R.log, R.sectorsize);
	nr = le64_to_cpu(sb.nr_entries);
	if (nr > (u64)st.st_size / R.sectorsize)
		die("%s: %" PRIu64 " entries cannot fit in the file", R.log, nr);
	R.e = xmalloc(sizeof(*R.e) * (nr + 1));
	sec = xmalloc(R.sectorsize);
	pos = R.sectorsize;
	for (i = 0; i < nr; i++) {
		struct entry *e = &R.e[i];

		xpread(R.logfd, sec, R.sectorsize, pos, R.log);
		memcpy(&d, sec, sizeof(d));
		e->off = le64_to_cpu(d.sector) * R.sectorsize;
		e->len = le64_to_cpu(d.nr_sectors) * R.sectorsize;
		e->flags = le64_to_cpu(d.flags);
		e->data = pos + R.sectorsize;
		if (e->flags & LOG_MARK) {
			u64 dl = le64_to_cpu(d.data_len);

			if (dl > R.sectorsize - sizeof(d))
				die("%s: entry %" PRIu64 ": mark of %" PRIu64
				    " bytes", R.log, i, dl);
			e->mark = xmalloc(dl + 1);
			memcpy(e->mark, sec + sizeof(d), dl);
			e->len = 0;
		}
		pos += R.sectorsize;
		if (!(e->flags & LOG_DISCARD))
			pos += e->len;
		if (pos > (u64)st.st_size)
			die("%s: entry %" PRIu64 " runs past the end", R.log, i);
	}
	free(sec);
	R.n = nr;
}

static void list_log(void)
{
	u64 i;

	printf("sectorsize %u, %" PRIu64 " entries\n", R.sectorsize, R.n);
	for (i = 0; i < R.n; i++) {
		struct entry *e = &R.e[i];

		if (e->mark) {
			printf("%" PRIu64 " mark %s\n", i, e->mark);
			continue;
		}
		printf("%" PRIu64 " %s%s%s%s %" PRIu64 "+%" PRIu64 "\n", i,
		       e->flags & LOG_DISCARD ? "discard" : "write",
		       e->flags & LOG_FLUSH ? " flush" : "",
		       e->flags & LOG_FUA ? " fua" : "",
		       e->flags & ~(LOG_FLUSH | LOG_FUA | LOG_DISCARD) ?
		       " meta" : "", e->off, e->len);
	}
}

/* ---- Building the image at a point --------------------------------------- */

/* A discard reads back as zeros afterwards: the target promises that. */
static void apply(const struct entry *e)
{
	if (!e->len)
		return;
	if (e->flags & LOG_DISCARD) {
		if (fallocate(R.imgfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)e->off, (off_t)e->len))
			die("%s: punching a hole: %s", R.image, strerror(errno));
		return;
	}
	xpread(R.logfd, scratch(e->len), e->len, e->data, R.log);
	xpwrite(R.imgfd, R.buf, e->len, e->off);
}

static void apply_with_undo(const struct entry *e, struct undo *u)
{
	u->off = e->off;
	u->len = e->len;
	u->old = xmalloc(e->len);
	xpread(R.imgfd, u->old, e->len, e->off, R.image);
	apply(e);
}

static void copy_base(void)
{
	int in = open(R.base, O_RDONLY);
	u8 *b = xmalloc(1 << 20);
	u64 off = 0;
	ssize_t r;

	R.imgfd = open(R.image, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (in < 0 || R.imgfd < 0)
		die("%s: %s", in < 0 ? R.base : R.image, strerror(errno));
	while ((r = read(in, b, 1 << 20)) > 0) {
		bool zero = true;
		ssize_t i;

		for (i = 0; i < r && zero; i++)
			zero = !b[i];
		if (!zero)
			xpwrite(R.imgfd, b, (u64)r, off);
		off += (u64)r;
	}
	if (r < 0 || ftruncate(R.imgfd, (off_t)off))
		die("%s: %s", R.base, strerror(errno));
	close(in);
	free(b);
}

/* Index of the last FLUSH entry before @n, or 0: what @n may not lose. */
static u64 durable_end(u64 n)
{
	while (n > 0 && !(R.e[n - 1].flags & LOG_FLUSH))
		n--;
	return n ? n - 1 : 0;
}

static void advance(u64 to)
{
	for (; R.applied < to; R.applied++)
		apply(&R.e[R.applied]);
}

/*
 * Make the image the disk after @n entries: prefix if !@drop_seed, else
 * the volatile-cache model.  Returns the undo records (count in *nu).
 */
static struct undo *build_point(u64 n, u64 drop_seed, u64 *nu, u64 *dropped)
{
	u64 f = durable_end(n), i;
	struct undo *u = xmalloc(sizeof(*u) * (n - f + 1));
	unsigned int seed = (unsigned int)(drop_seed ^ (drop_seed >> 32));

	advance(f);
	*nu = 0;
	*dropped = 0;
	for (i = f; i < n; i++) {
		const struct entry *e = &R.e[i];

		if (!e->len)
			continue;
		if (drop_seed && !(e->flags & LOG_FUA) && rand_r(&seed) % 2) {
			(*dropped)++;
			continue;
		}
		apply_with_undo(e, &u[(*nu)++]);
	}
	return u;
}

static void undo_point(struct undo *u, u64 nu)
{
	while (nu--) {
		xpwrite(R.imgfd, u[nu].old, u[nu].len, u[nu].off);
		free(u[nu].old);
	}
	free(u);
}

/* ---- Checks -------------------------------------------------------------- */

static char where[160];

static void violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void violation(const char *fmt, ...)
{
	va_list ap;

	R.violations++;
	if (R.violations > R.max_report)
		return;
	printf("VIOLATION at %s: ", where);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static void on_problem(void *arg, u64 block, const char *msg)
{
	unsigned int *n = arg;

	if ((*n)++ < 5)
		violation("parallax check: %s (block %" PRIu64 ")", msg, block);
}

/* kt.py's stamp: magic, block, sequence, a pattern of both, crc32. */
static const char stamp_magic[8] = "PLXSTAMP";

static u32 crc32_zlib(const u8 *p, size_t n)
{
	static u32 table[256];
	u32 c;
	int i, k;

	if (!table[1]) {
		for (i = 0; i < 256; i++) {
			c = (u32)i;
			for (k = 0; k < 8; k++)
				c = (c >> 1) ^ (0xedb88320 & -(c & 1));
			table[i] = c;
		}
	}
	c = 0xffffffff;
	while (n--)
		c = table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return ~c;
}

/* 0 for a zero block, the sequence number of a good stamp, else ~0. */
static u64 stamp_seq(const u8 *b, u64 blk)
{
	u64 hb, seq, pat[2];
	u32 crc;
	size_t i;

	for (i = 0; i < PLX_BLOCK_SIZE && !b[i]; i++)
		;
	if (i == PLX_BLOCK_SIZE)
		return 0;
	if (memcmp(b, stamp_magic, 8))
		return ~0ULL;
	memcpy(&hb, b + 8, 8);
	memcpy(&seq, b + 16, 8);
	hb = le64_to_cpu(hb);
	seq = le64_to_cpu(seq);
	if (hb != blk || !seq)
		return ~0ULL;
	pat[0] = cpu_to_le64(seq * 2654435761ULL);
	pat[1] = cpu_to_le64(blk);
	for (i = 24; i < PLX_BLOCK_SIZE - 4; i += 16)
		if (memcmp(b + i, pat, PLX_BLOCK_SIZE - 4 - i < 16 ?
			   PLX_BLOCK_SIZE - 4 - i : 16))
			return ~0ULL;
	memcpy(&crc, b + PLX_BLOCK_SIZE - 4, 4);
	if (le32_to_cpu(crc) != crc32_zlib(b, PLX_BLOCK_SIZE - 4))
		return ~0ULL;
	return seq;
}

struct walk {
	struct plx_store *s;
	u64 *seq;		/* per virtual block */
	u64 bad;
};

/*
 * The stamp read from each device block at this point: snapshots share
 * most of their blocks, so each is read once per point.  A stamp names
 * its virtual block, so the memo holds for any tree that maps it there.
 */
static struct {
	u64 nblocks;
	u32 epoch;
	u32 *seen;		/* epoch in which memo[] was filled */
	u64 *vblock, *seq;
} memo;

static void memo_reset(u64 device_blocks)
{
	if (device_blocks != memo.nblocks) {
		free(memo.seen);
		free(memo.vblock);
		free(memo.seq);
		memo.nblocks = device_blocks;
		memo.seen = xmalloc(4 * device_blocks);
		memo.vblock = xmalloc(8 * device_blocks);
		memo.seq = xmalloc(8 * device_blocks);
		memo.epoch = 0;
	}
	memo.epoch++;
}

static int walk_block(void *arg, u64 vblock, u64 pblock)
{
	struct walk *w = arg;
	u8 b[PLX_BLOCK_SIZE];

	if (vblock >= R.w.nblocks)
		return 0;
	if (pblock < memo.nblocks && memo.seen[pblock] == memo.epoch &&
	    memo.vblock[pblock] == vblock) {
		w->seq[vblock] = memo.seq[pblock];
		return 0;
	}
	if (plx_read_block(w->s, pblock, b))
		return -1;
	w->seq[vblock] = stamp_seq(b, vblock);
	if (pblock < memo.nblocks) {
		memo.seen[pblock] = memo.epoch;
		memo.vblock[pblock] = vblock;
		memo.seq[pblock] = w->seq[vblock];
	}
	if (w->seq[vblock] == ~0ULL && w->bad++ < 3)
		violation("block %" PRIu64 " (at %" PRIu64
			  ") holds neither zeros nor a stamp for it",
			  vblock, pblock);
	return 0;
}

/* Sequence numbers of @nblocks blocks of the tree at @root, or NULL. */
static u64 *tree_seqs(struct plx_store *s, u64 root, u8 height,
		      const char *what)
{
	struct walk w = { .s = s, .seq = xmalloc(8 * R.w.nblocks) };

	if (plx_map_walk(s, plx_ptr_addr(root), height, walk_block, &w)) {
		violation("%s: cannot read the tree: %s", what, plx_errmsg());
		free(w.seq);
		return NULL;
	}
	return w.seq;
}

/* Snapshot contents in the final image, to find a snapshot changed later. */
static u64 **final_snap;
static u64 final_nsnaps;

/* last[b]: block b's last write among writes 1..last_upto. */
static u64 *last, last_upto;

static void last_writes_upto(u64 k)
{
	if (!last || k < last_upto) {
		free(last);
		last = xmalloc(8 * R.w.nblocks);
		last_upto = 0;
	}
	for (; last_upto < k; last_upto++)
		last[R.w.blk[last_upto + 1]] = last_upto + 1;
}

/* Snapshots 1..snaps_seen were compared at an earlier point. */
static u64 snaps_seen;

static void check_stamps(struct plx_store *s, u64 gen, bool strict,
			 u64 snaps_done, bool final)
{
	struct plx_vdi_record *v = plx_vdi_get(s, R.vdi);
	struct plx_snaplist l = { 0 };
	u64 *seq, b, lo, hi, i, pick, bad = 0;

	if (!v) {
		violation("VDI %" PRIu64 ": %s", R.vdi, plx_errmsg());
		return;
	}
	memo_reset(s->device_blocks);
	seq = tree_seqs(s, v->root, v->height, "the VDI");
	if (!seq)
		return;
	/* Writes lo..hi may be there; the last write of each block <= lo must. */
	lo = gen ? R.w.gen_end[gen - 1] : 0;
	hi = gen < R.w.ngens ? R.w.gen_end[gen] : R.w.nwrites;
	last_writes_upto(lo);
	for (b = 0; b < R.w.nblocks; b++) {
		u64 want = last[b], got = seq[b];
		bool ok;

		if (got == ~0ULL)
			continue;
		ok = got == want;
		if (!strict && !ok && got > lo && got <= hi)
			ok = R.w.blk[got] == b;
		if (!ok && bad++ < 3)
			violation("VDI block %" PRIu64 ": write %" PRIu64
				  ", want %" PRIu64 "%s (after generation %"
				  PRIu64 ")", b, got, want,
				  strict ? "" : " or a later write of the next generation",
				  gen);
	}
	free(seq);
	if (plx_snaplog_load(s, R.vdi, &l)) {
		violation("snapshot log: %s", plx_errmsg());
		return;
	}
	if (l.count < snaps_done)
		violation("%" PRIu64 " snapshots in the log, but %" PRIu64
			  " had completed", l.count, snaps_done);
	if (final) {
		final_nsnaps = l.count;
		final_snap = xmalloc(sizeof(*final_snap) * (l.count + 1));
	}
	/* Each point compares the new snapshots and one older at random. */
	pick = l.count ? (u64)rand() % l.count : 0;
	if (final || l.count < snaps_seen)
		snaps_seen = 0;
	for (i = 0; i < l.count; i++) {
		struct plx_snap_record *r = &l.snaps[i].rec;
		char what[48];
		u64 *ss;

		if (!final && i < snaps_seen && i != pick)
			continue;
		snprintf(what, sizeof(what), "snapshot %" PRIu64 "@%" PRIu64,
			 R.vdi, i + 1);
		ss = tree_seqs(s, le64_to_cpu(r->root), v->height, what);
		if (!ss)
			continue;
		if (final)
			final_snap[i] = ss;
		else if (i < final_nsnaps && final_snap[i] &&
			 memcmp(ss, final_snap[i], 8 * R.w.nblocks))
			violation("%s differs from the same snapshot at the end of the log",
				  what);
		else if (i >= final_nsnaps)
			violation("%s is gone at the end of the log", what);
		if (!final)
			free(ss);
	}
	snaps_seen = final ? 0 : l.count;
	plx_snaplist_free(&l);
}

/* The labels "g<N>" and "s<N>" of the marks before entry @n. */
static void marks_before(u64 n, u64 *gen, u64 *snaps, const char **last)
{
	u64 i;

	*gen = 0;
	*snaps = 0;
	*last = "";
	for (i = 0; i < n; i++) {
		const char *m = R.e[i].mark;

		if (!m)
			continue;
		if (strcmp(m, "dm-log-writes-end"))
			*last = m;
		if (m[0] == 'g')
			*gen = strtoull(m + 1, NULL, 10);
		else if (m[0] == 's')
			*snaps = strtoull(m + 1, NULL, 10);
	}
	if (*gen > R.w.ngens)
		*gen = R.w.ngens;
}

static void run_exec(u64 n, const char *last)
{
	char num[32];
	int st;

	snprintf(num, sizeof(num), "%" PRIu64, n);
	setenv("REPLAY_IMAGE", R.image, 1);
	setenv("REPLAY_POINT", num, 1);
	setenv("REPLAY_LAST_MARK", last, 1);
	fflush(stdout);
	st = system(R.exec);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st))
		violation("'%s' failed (status %d)", R.exec,
			  WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

static void check_point(u64 n, u64 drop_seed, bool final)
{
	struct plx_check_stats st = { 0 };
	u64 gen, snaps, nu, dropped;
	unsigned int problems = 0;
	struct plx_store *s;
	const char *last;
	struct undo *u;
	bool at_mark = n > 0 && R.e[n - 1].mark;

	u = build_point(n, drop_seed, &nu, &dropped);
	marks_before(n, &gen, &snaps, &last);
	if (drop_seed)
		snprintf(where, sizeof(where), "point %" PRIu64
			 " --drop-seed %" PRIu64 " (%" PRIu64 " writes dropped)",
			 n, drop_seed, dropped);
	else
		snprintf(where, sizeof(where), "point %" PRIu64, n);
	R.points++;
	s = plx_open(R.image, PLX_OPEN_RDONLY);
	if (!s) {
		violation("cannot open the store: %s", plx_errmsg());
		goto out;
	}
	if (plx_check(s, on_problem, &problems, &st))
		die("parallax check could not run: out of memory");
	if (R.vlog && !problems)
		check_stamps(s, gen, at_mark && R.e[n - 1].mark[0] == 'g',
			     snaps, final);
	plx_close(s);
	if (R.exec && !problems)
		run_exec(n, last);
	if (R.verbose)
		printf("# %s: %" PRIu64 " problems, generation %" PRIu64
		       ", %" PRIu64 " snapshots done\n", where,
		       (u64)problems, gen, snaps);
out:
	undo_point(u, nu);
}

/* ---- The workload's verification log ------------------------------------- */

/*
 * "n NBLOCKS", then in order "w BLOCK" (write k is the k-th such line)
 * and "g N" when generation N's writes were flushed and marked.
 */
static void load_vlog(void)
{
	FILE *f = fopen(R.vlog, "r");
	char line[128];
	u64 cap = 1024, gcap = 64, x;

	if (!f)
		die("%s: %s", R.vlog, strerror(errno));
	R.w.blk = xmalloc(8 * cap);
	R.w.gen_end = xmalloc(8 * gcap);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "n %" SCNu64, &x) == 1) {
			R.w.nblocks = x;
		} else if (sscanf(line, "w %" SCNu64, &x) == 1) {
			if (x >= R.w.nblocks)
				die("%s: block %" PRIu64 " out of range", R.vlog, x);
			if (++R.w.nwrites >= cap) {
				cap *= 2;
				R.w.blk = realloc(R.w.blk, 8 * cap);
				if (!R.w.blk)
					die("out of memory");
			}
			R.w.blk[R.w.nwrites] = x;
		} else if (sscanf(line, "g %" SCNu64, &x) == 1) {
			if (x != R.w.ngens + 1)
				die("%s: generation %" PRIu64 " out of order", R.vlog, x);
			if (R.w.ngens + 1 >= gcap) {
				gcap *= 2;
				R.w.gen_end = realloc(R.w.gen_end, 8 * gcap);
				if (!R.w.gen_end)
					die("out of memory");
			}
			R.w.gen_end[R.w.ngens++] = R.w.nwrites;
		}
	}
	fclose(f);
	if (!R.w.nblocks)
		die("%s: no 'n NBLOCKS' line", R.vlog);
}

/* ---- Choosing the points ------------------------------------------------- */

struct point {
	u64 n;
	u64 drop_seed;
};

static int point_cmp(const void *a, const void *b)
{
	const struct point *x = a, *y = b;

	if (x->n != y->n)
		return x->n < y->n ? -1 : 1;
	return x->drop_seed < y->drop_seed ? -1 : x->drop_seed > y->drop_seed;
}

static void usage(FILE *f)
{
	fputs(
"NAME\n"
"    replay-log - check a blockstore at many points of a dm-log-writes log\n\n"
"SYNOPSIS\n"
"    replay-log --log LOG --list\n"
"    replay-log --log LOG --base BASE --image IMG --to N [--drop-seed S]\n"
"    replay-log --log LOG --base BASE --image IMG --check [OPTION]...\n\n"
"DESCRIPTION\n"
"    LOG is the log device of a dm-log-writes target that sat under a\n"
"    blockstore; BASE is the store as it was when logging began.  A point\n"
"    N is the store after the first N entries of the log reached the disk.\n"
"    With --drop-seed the point is rebuilt under a volatile write cache:\n"
"    everything before the last FLUSH entry is there, FUA writes after it\n"
"    are there, and each other write after it is kept or dropped at\n"
"    random.  IMG is overwritten with a copy of BASE first.\n\n"
"    --list prints the entries.  --to rebuilds IMG at one point (to\n"
"    reproduce a violation).  --check walks the log and checks, at every\n"
"    FLUSH, FUA and mark entry and at random points, that 'parallax check'\n"
"    finds no problem in the image, and with --vlog and --vdi that the\n"
"    VDI holds what the workload wrote (see below).  It prints one line\n"
"    per violation and a summary, and exits 1 if there was any.\n\n"
"OPTIONS\n"
"    --every N       check every Nth FLUSH/FUA/mark point (default 1)\n"
"    --random N      also check N prefix points chosen at random\n"
"    --volatile N    also check N random points under the volatile-cache\n"
"                    model, each with its own drop seed\n"
"    --seed S        seed of the random choices (default 1)\n"
"    --vlog FILE     verification log of a stamp workload (tests/crash/\n"
"                    workload.py): the VDI's blocks must hold, for the last\n"
"                    generation G marked \"gG\" before the point, each block's\n"
"                    last write of generations <= G, or a write of G+1; at\n"
"                    the mark itself exactly the former.  Every snapshot\n"
"                    marked \"sN\" before the point must be in the log, and\n"
"                    each snapshot must equal itself at the end of the log.\n"
"    --vdi ID        the VDI the stamp workload wrote\n"
"    --exec CMD      also run CMD (sh -c) at each point, with REPLAY_IMAGE,\n"
"                    REPLAY_POINT and REPLAY_LAST_MARK set; non-zero exit is\n"
"                    a violation\n"
"    --max-points N  stop after N points (0: no limit)\n"
"    -v              a line per point\n"
"    -h, --help      this text\n\n"
"EXIT STATUS\n"
"    0 no violation, 1 violations found, 2 bad usage or unreadable log\n",
	      f);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "log", 1, NULL, 'l' }, { "base", 1, NULL, 'b' },
		{ "image", 1, NULL, 'i' }, { "list", 0, NULL, 'L' },
		{ "to", 1, NULL, 't' }, { "drop-seed", 1, NULL, 'd' },
		{ "check", 0, NULL, 'c' }, { "every", 1, NULL, 'e' },
		{ "random", 1, NULL, 'r' }, { "volatile", 1, NULL, 'V' },
		{ "seed", 1, NULL, 's' }, { "vlog", 1, NULL, 'w' },
		{ "vdi", 1, NULL, 'D' }, { "exec", 1, NULL, 'x' },
		{ "max-points", 1, NULL, 'm' }, { "help", 0, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	u64 to = ~0ULL, drop = 0, every = 1, nrand = 0, nvol = 0, seed = 1;
	u64 maxp = 0, np = 0, i, k, flushes = 0, marks = 0;
	bool list = false, check = false;
	struct point *pts;
	int c, li = 0;

	while ((c = getopt_long(argc, argv, "vh", opts, &li)) != -1) {
		u64 *num = NULL;

		switch (c) {
		case 'l': R.log = optarg; break;
		case 'b': R.base = optarg; break;
		case 'i': R.image = optarg; break;
		case 'L': list = true; break;
		case 'c': check = true; break;
		case 'w': R.vlog = optarg; break;
		case 'x': R.exec = optarg; break;
		case 'v': R.verbose = true; break;
		case 't': num = &to; break;
		case 'd': num = &drop; break;
		case 'e': num = &every; break;
		case 'r': num = &nrand; break;
		case 'V': num = &nvol; break;
		case 's': num = &seed; break;
		case 'D': num = &R.vdi; break;
		case 'm': num = &maxp; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
		if (num && plx_parse_u64(optarg, num))
			die("--%s: '%s' is not a number; see --help",
			    opts[li].name, optarg);
	}
	if (!R.log || optind != argc || list + check + (to != ~0ULL) != 1)
		die("give --log and one of --list, --to N, --check; see --help");
	if ((R.vlog != NULL) != (R.vdi != 0))
		die("--vlog and --vdi go together");
	if (!every)
		die("--every must be at least 1");
	load_log();
	if (list) {
		list_log();
		return 0;
	}
	if (!R.base || !R.image)
		die("--base and --image are needed");
	if (R.vlog)
		load_vlog();
	copy_base();
	if (to != ~0ULL) {
		u64 nu, dropped;

		if (to > R.n)
			die("--to %" PRIu64 ": the log has %" PRIu64 " entries",
			    to, R.n);
		build_point(to, drop, &nu, &dropped);
		printf("image at point %" PRIu64 ": %" PRIu64 " writes applied after the last flush, %" PRIu64 " dropped\n",
		       to, nu, dropped);
		return 0;
	}

	/* The final state first: the reference for the snapshots. */
	srand((unsigned int)seed);
	if (R.vlog) {
		check_point(R.n, 0, true);
		close(R.imgfd);
		copy_base();
		R.applied = 0;
	}
	pts = xmalloc(sizeof(*pts) * (R.n + nrand + nvol + 2));
	for (i = 1, k = 0; i <= R.n; i++) {
		const struct entry *e = &R.e[i - 1];

		if (!(e->flags & (LOG_FLUSH | LOG_FUA)) && !e->mark)
			continue;
		flushes += !e->mark;
		marks += !!e->mark;
		if (k++ % every == 0)
			pts[np++] = (struct point){ i, 0 };
	}
	for (i = 0; i < nrand; i++)
		pts[np++] = (struct point){ (u64)rand() % (R.n + 1), 0 };
	for (i = 0; i < nvol; i++)
		pts[np++] = (struct point){ (u64)rand() % (R.n + 1),
					    ((u64)rand() << 16) + i + 1 };
	qsort(pts, np, sizeof(*pts), point_cmp);
	for (i = 0; i < np && (!maxp || i < maxp); i++)
		check_point(pts[i].n, pts[i].drop_seed, false);
	printf("# replayed %" PRIu64 " log entries (%" PRIu64
	       " flush/FUA, %" PRIu64 " marks): %" PRIu64
	       " points checked, %" PRIu64 " violations\n",
	       R.n, flushes, marks, R.points, R.violations);
	if (R.violations)
		printf("# reproduce: replay-log --log %s --base %s --image %s --to N [--drop-seed S]; parallax check %s\n",
		       R.log, R.base, R.image, R.image);
	return R.violations ? 1 : 0;
}
