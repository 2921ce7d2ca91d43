// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer harness for everything the parallax tool does when it reads a
 * blockstore: plx_open() (superblock, catalogue, VDI registry), the
 * snapshot logs (plx_snaplog_load), radix trees (plx_lookup, plx_map_walk),
 * snapshot and VDI name resolution, the consistency check (plx_check), the
 * space report (plx_usage) and the export of VDIs and snapshots.
 *
 * A small store (6 extents of 4 MiB, 8 VDI slots) is formatted and
 * populated once, in LLVMFuzzerInitialize(), in a memfd: VDI a with data
 * on both sides of a level-1 boundary and snapshots (one labelled s, one
 * deleted), VDI b cloned from a@s and snapshotted, a small VDI c, a
 * deleted VDI d, and VDI e with 70 snapshots, so that its log is a chain
 * of two blocks.  The store is opened read-only by its /proc/self/fd path,
 * so nothing outside the memfd is ever written.
 *
 * Input: a compact list of damage applied on top of that base image.
 *   byte 0: flags
 *     bit 0: recompute the crc of every patched block that carries a
 *            known magic, so that the damage gets past the checksum
 *     bit 1: also set the header's blocknr of such blocks to their own
 *            address (a block copied elsewhere then passes as that block)
 *     bit 2: the next 2 bytes (LE) are the device size in blocks (modulo
 *            the base image's size): a store whose device is truncated
 *   then records, each [u16 block][u16 offset][u8 kind] (LE; the block is
 *   taken modulo the image's size, the offset modulo 4096), then:
 *     kind 0x00..0x7f: kind + 1 literal bytes written at the offset
 *     kind 0x80..0xbf: [u16 src] the whole base block src replaces block
 *     kind 0xc0..0xff: [u64 v] (kind & 0x3f) * 8 + 8 copies of the LE
 *                      u64 v (a radix node's entries, say)
 *   Writes stop at the end of the block.  At most 64 records are used.
 * After every run the patched blocks are restored from the base image.
 *
 * Besides sanitizer reports, the harness aborts when a library function
 * fails without an error message, when the export of a tree disagrees
 * with plx_lookup() on what a virtual block holds, or when a store that
 * checks clean cannot be exported, its logs loaded or its usage counted,
 * or usage and check disagree on how much is allocated and garbage.
 *
 * With FUZZ_STORE_DUMP=1 in the environment the base image is written to
 * standard output at start (make-store-corpus.py builds seeds from it).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libparallax.h"

#define FZ_EXTENTS	6
#define FZ_EXT_BLOCKS	PLX_MIN_EXTENT_BLOCKS
#define FZ_BLOCKS	(FZ_EXTENTS * FZ_EXT_BLOCKS)
#define FZ_MAX_RECORDS	64
/* Trees of VDIs larger than this are not exported or walked (time). */
#define FZ_MAX_WALK_BYTES	(64ULL << 20)

static int store_fd = -1, out_fd = -1;
static char store_path[64];
static u8 *base;			/* FZ_BLOCKS blocks */
static bool ready;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
static void problem_fn(void *arg, u64 block, const char *msg);
/* Did the last check report no problem at all? */
static bool clean;

static void __attribute__((noreturn)) die(const char *what)
{
	fprintf(stderr, "fuzz-store: %s: %s\n", what, plx_errmsg());
	abort();
}

static void fill(u8 *buf, u64 vdi, u64 vb, unsigned int gen)
{
	unsigned int i;

	for (i = 0; i < PLX_BLOCK_SIZE; i++)
		buf[i] = (u8)(vdi * 31 + vb * 7 + gen * 13 + i / 64);
}

static void write_blocks(struct plx_store *s, u64 id, const u64 *vbs,
			 unsigned int n, unsigned int gen)
{
	struct plx_writer *w = plx_writer_open(s, id);
	u8 buf[PLX_BLOCK_SIZE];
	unsigned int i;

	if (!w)
		die("writer");
	for (i = 0; i < n; i++) {
		fill(buf, id, vbs[i], gen);
		if (plx_writer_write(w, vbs[i], buf, 0, PLX_BLOCK_SIZE))
			die("write");
	}
	if (plx_writer_close(w))
		die("flush");
}

static void snap(struct plx_store *s, u64 id, const char *label)
{
	u64 seq;

	if (plx_snapshot(s, id, label, &seq))
		die("snapshot");
}

static void populate(void)
{
	static const u64 a1[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
				  13, 14, 15, 510, 511, 512, 513, 600, 1023 };
	static const u64 a2[] = { 1, 2, 700 }, b1[] = { 3, 4 }, c1[] = { 0, 9 };
	struct plx_store *s = plx_open(store_path, PLX_OPEN_RDWR);
	struct plx_snap sn;
	u64 a, b, c, d, e;
	int i;

	if (!s)
		die("open");
	if (plx_vdi_create(s, "a", 4 << 20, &a))
		die("create a");
	write_blocks(s, a, a1, sizeof(a1) / sizeof(a1[0]), 1);
	snap(s, a, "s");
	write_blocks(s, a, a2, sizeof(a2) / sizeof(a2[0]), 2);
	snap(s, a, "gone");
	snap(s, a, NULL);
	if (plx_resolve_snap(s, "s", false, &sn) ||
	    plx_vdi_clone(s, "b", &sn, &b))
		die("clone b");
	snap(s, b, NULL);
	write_blocks(s, b, b1, sizeof(b1) / sizeof(b1[0]), 3);
	if (plx_vdi_create(s, "c", 64 << 10, &c))
		die("create c");
	write_blocks(s, c, c1, sizeof(c1) / sizeof(c1[0]), 4);
	if (plx_vdi_create(s, "d", 8 << 10, &d) || plx_vdi_delete(s, d))
		die("create d");
	if (plx_vdi_create(s, "e", 4 << 10, &e))
		die("create e");
	for (i = 0; i < 70; i++)
		snap(s, e, NULL);
	if (plx_resolve_snap(s, "a@gone", false, &sn) ||
	    plx_snap_delete(s, &sn))
		die("delete a@gone");
	if (plx_resolve_snap(s, "e@5", false, &sn) || plx_snap_delete(s, &sn))
		die("delete e@5");
	plx_close(s);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct plx_format_opts o = {
		.extent_blocks = FZ_EXT_BLOCKS,
		.registry_slots = 8,
	};
	const char *dump = getenv("FUZZ_STORE_DUMP");
	struct plx_check_stats st;
	struct plx_store *s;
	u64 problems = 0;
	size_t off;

	(void)argc;
	(void)argv;
	store_fd = memfd_create("fuzz-store", MFD_CLOEXEC);
	out_fd = memfd_create("fuzz-store-out", MFD_CLOEXEC);
	if (store_fd < 0 || out_fd < 0 ||
	    ftruncate(store_fd, (off_t)FZ_BLOCKS * PLX_BLOCK_SIZE)) {
		perror("fuzz-store: memfd");
		abort();
	}
	snprintf(store_path, sizeof(store_path), "/proc/self/fd/%d", store_fd);
	if (plx_format(store_path, &o, NULL))
		die("format");
	populate();

	/* The base image must check clean, or every seed means nothing. */
	s = plx_open(store_path, PLX_OPEN_RDONLY);
	if (!s || plx_check(s, problem_fn, &problems, &st) || st.problems)
		die("check");
	plx_close(s);

	base = malloc((size_t)FZ_BLOCKS * PLX_BLOCK_SIZE);
	if (!base || pread(store_fd, base, (size_t)FZ_BLOCKS * PLX_BLOCK_SIZE,
			   0) != (ssize_t)FZ_BLOCKS * PLX_BLOCK_SIZE) {
		perror("fuzz-store: read base");
		abort();
	}
	if (dump && *dump == '1') {
		for (off = 0; off < (size_t)FZ_BLOCKS * PLX_BLOCK_SIZE;) {
			ssize_t n = write(1, base + off,
					  (size_t)FZ_BLOCKS * PLX_BLOCK_SIZE - off);

			if (n <= 0) {
				perror("fuzz-store: dump");
				abort();
			}
			off += (size_t)n;
		}
		exit(0);
	}
	ready = true;
	return 0;
}

/* ---- Applying and undoing damage ---------------------------------------- */

struct damage {
	u16 blk[FZ_MAX_RECORDS];
	unsigned int n;
	u8 buf[FZ_MAX_RECORDS][PLX_BLOCK_SIZE];
};

static struct damage dmg;

static u8 *dmg_block(u16 blk)
{
	unsigned int i;

	for (i = 0; i < dmg.n; i++)
		if (dmg.blk[i] == blk)
			return dmg.buf[i];
	if (dmg.n == FZ_MAX_RECORDS)
		return NULL;
	dmg.blk[dmg.n] = blk;
	memcpy(dmg.buf[dmg.n], base + (size_t)blk * PLX_BLOCK_SIZE,
	       PLX_BLOCK_SIZE);
	return dmg.buf[dmg.n++];
}

static bool known_magic(u32 m)
{
	return m == PLX_MAGIC_SUPER || m == PLX_MAGIC_CATALOGUE ||
	       m == PLX_MAGIC_BITMAP || m == PLX_MAGIC_VDI ||
	       m == PLX_MAGIC_SNAPLOG;
}

static u16 get16(const u8 *p)
{
	return (u16)(p[0] | p[1] << 8);
}

/* Parse the input into dmg; returns the device size in blocks. */
static u64 parse(const u8 *data, size_t size, u8 *flags)
{
	u64 dev_blocks = FZ_BLOCKS;
	size_t pos = 1;
	unsigned int i;

	dmg.n = 0;
	*flags = size ? data[0] : 0;
	if ((*flags & 4) && size >= 3) {
		dev_blocks = get16(data + 1) % FZ_BLOCKS;
		pos = 3;
	}
	while (pos + 5 <= size) {
		u16 blk = get16(data + pos) % FZ_BLOCKS;
		unsigned int off = get16(data + pos + 2) % PLX_BLOCK_SIZE;
		u8 kind = data[pos + 4];
		size_t len;
		u8 *b;

		pos += 5;
		b = dmg_block(blk);
		if (!b)
			break;
		if (kind < 0x80) {
			len = (size_t)kind + 1;
			if (len > size - pos)
				len = size - pos;
			if (len > PLX_BLOCK_SIZE - off)
				len = PLX_BLOCK_SIZE - off;
			memcpy(b + off, data + pos, len);
			pos += (size_t)kind + 1;
		} else if (kind < 0xc0) {
			if (pos + 2 > size)
				break;
			memcpy(b, base + (size_t)(get16(data + pos) %
						  FZ_BLOCKS) * PLX_BLOCK_SIZE,
			       PLX_BLOCK_SIZE);
			pos += 2;
		} else {
			size_t k;

			if (pos + 8 > size)
				break;
			len = (size_t)(kind & 0x3f) * 64 + 64;
			if (len > PLX_BLOCK_SIZE - off)
				len = PLX_BLOCK_SIZE - off;
			for (k = 0; k < len; k++)
				b[off + k] = data[pos + k % 8];
			pos += 8;
		}
	}
	for (i = 0; i < dmg.n; i++) {
		struct plx_block_header *h = (void *)dmg.buf[i];

		if (!known_magic(le32_to_cpu(h->magic)))
			continue;
		if (*flags & 2)
			h->blocknr = cpu_to_le64(dmg.blk[i]);
		if (*flags & 1)
			plx_block_update_crc(dmg.buf[i]);
	}
	return dev_blocks;
}

static void pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	if (pwrite(fd, buf, len, off) != (ssize_t)len) {
		perror("fuzz-store: pwrite");
		abort();
	}
}

static void apply(u64 dev_blocks)
{
	unsigned int i;

	if (dev_blocks != FZ_BLOCKS &&
	    ftruncate(store_fd, (off_t)(dev_blocks * PLX_BLOCK_SIZE))) {
		perror("fuzz-store: ftruncate");
		abort();
	}
	for (i = 0; i < dmg.n; i++)
		if (dmg.blk[i] < dev_blocks)
			pwrite_all(store_fd, dmg.buf[i], PLX_BLOCK_SIZE,
				   (off_t)dmg.blk[i] * PLX_BLOCK_SIZE);
}

static bool zero_block(const u8 *b)
{
	static const u8 z[PLX_BLOCK_SIZE];

	return !memcmp(b, z, PLX_BLOCK_SIZE);
}

static void undo(u64 dev_blocks)
{
	unsigned int i;
	u64 b;

	if (dev_blocks != FZ_BLOCKS) {
		if (ftruncate(store_fd, (off_t)FZ_BLOCKS * PLX_BLOCK_SIZE)) {
			perror("fuzz-store: ftruncate");
			abort();
		}
		for (b = dev_blocks; b < FZ_BLOCKS; b++) {
			const u8 *p = base + b * PLX_BLOCK_SIZE;

			if (!zero_block(p))
				pwrite_all(store_fd, p, PLX_BLOCK_SIZE,
					   (off_t)(b * PLX_BLOCK_SIZE));
		}
	}
	for (i = 0; i < dmg.n; i++)
		if (dmg.blk[i] < dev_blocks)
			pwrite_all(store_fd,
				   base + (size_t)dmg.blk[i] * PLX_BLOCK_SIZE,
				   PLX_BLOCK_SIZE,
				   (off_t)dmg.blk[i] * PLX_BLOCK_SIZE);
}

/* ---- What the tool does with a store -------------------------------------- */

/* Forget the last error, so that failed() can tell a new one. */
static void clear_err(void)
{
	plx_seterr(PLX_EK_NONE, "%s", "");
}

/* A failure must say why. */
static void failed(const char *what)
{
	if (plx_errkind() == PLX_EK_NONE) {
		fprintf(stderr, "fuzz-store: %s failed without a message\n",
			what);
		abort();
	}
}

static int count_fn(void *arg, u64 vblock, u64 pblock)
{
	(void)vblock;
	(void)pblock;
	return ++*(u64 *)arg > 1000000 ? 1 : 0;
}

static void problem_fn(void *arg, u64 block, const char *msg)
{
	(void)block;
	if (!msg || !*msg)
		abort();
	++*(u64 *)arg;
}

/*
 * Export the tree to out_fd and compare a few blocks with what
 * plx_lookup() says they hold.
 */
static void export_tree(struct plx_store *s, u64 root, u8 height, u64 size)
{
	static const u64 probe[] = { 0, 1, 2, 3, 9, 15, 16, 511, 512, 513,
				     600, 700, 1023 };
	u8 got[PLX_BLOCK_SIZE], want[PLX_BLOCK_SIZE];
	struct plx_io_stats st;
	unsigned int i;
	u64 pb;

	if (size > FZ_MAX_WALK_BYTES)
		return;
	clear_err();
	if (plx_export(s, root, height, size, out_fd, &st)) {
		failed("export");
		if (clean) {
			fprintf(stderr, "fuzz-store: check is clean, but export fails: %s\n",
				plx_errmsg());
			abort();
		}
		return;
	}
	for (i = 0; i < sizeof(probe) / sizeof(probe[0]); i++) {
		u64 vb = probe[i];

		if (vb >= size >> PLX_BLOCK_SHIFT)
			break;
		if (plx_lookup(s, root, height, vb, &pb)) {
			fprintf(stderr, "fuzz-store: export succeeded, lookup of %llu failed: %s\n",
				(unsigned long long)vb, plx_errmsg());
			abort();
		}
		if (pread(out_fd, got, sizeof(got),
			  (off_t)(vb << PLX_BLOCK_SHIFT)) != sizeof(got))
			abort();
		if (!pb)
			memset(want, 0, sizeof(want));
		else if (plx_read_block(s, pb, want))
			abort();
		if (memcmp(got, want, sizeof(got))) {
			fprintf(stderr, "fuzz-store: export and lookup disagree on block %llu\n",
				(unsigned long long)vb);
			abort();
		}
	}
}

static void walk_tree(struct plx_store *s, u64 root, u8 height, u64 size)
{
	u64 n = 0, pb, vb;

	if (size > FZ_MAX_WALK_BYTES)
		return;
	clear_err();
	if (plx_map_walk_size(s, root, height, size >> PLX_BLOCK_SHIFT,
			      count_fn, &n) < 0)
		failed("map_walk");
	for (vb = 0; vb < (size >> PLX_BLOCK_SHIFT) && vb < 1024; vb += 97) {
		clear_err();
		if (plx_lookup(s, root, height, vb, &pb))
			failed("lookup");
	}
}

static void read_vdi(struct plx_store *s, u64 id)
{
	struct plx_vdi_record *v;
	struct plx_snaplist l;
	char arg[32];
	struct plx_snap sn;
	u64 i, rid;

	clear_err();
	v = plx_vdi_get(s, id);
	if (!v) {
		failed("vdi_get");
		return;
	}
	snprintf(arg, sizeof(arg), "%llu", (unsigned long long)id);
	clear_err();
	if (plx_resolve_vdi(s, arg, &rid))
		failed("resolve_vdi");
	if (!plx_vdi_live(v))
		return;
	walk_tree(s, le64_to_cpu(v->root), v->height, le64_to_cpu(v->size));
	export_tree(s, le64_to_cpu(v->root), v->height, le64_to_cpu(v->size));
	clear_err();
	if (plx_snaplog_load(s, id, &l)) {
		failed("snaplog_load");
		if (clean) {
			fprintf(stderr, "fuzz-store: check is clean, but VDI %llu's log does not load: %s\n",
				(unsigned long long)id, plx_errmsg());
			abort();
		}
		return;
	}
	for (i = 0; i < l.count; i++) {
		struct plx_snap_record *r = &l.snaps[i].rec;

		if (le64_to_cpu(r->seq) != i + 1)
			abort();
		if (i % 8 && i + 1 != l.count)
			continue;	/* e has 70: a few of them do */
		walk_tree(s, le64_to_cpu(r->root), v->height,
			  le64_to_cpu(v->size));
		if (!(le32_to_cpu(r->flags) & PLX_SNAP_DELETED))
			export_tree(s, le64_to_cpu(r->root), v->height,
				    le64_to_cpu(v->size));
	}
	if (l.count) {
		snprintf(arg, sizeof(arg), "%llu@%llu", (unsigned long long)id,
			 (unsigned long long)l.count);
		clear_err();
		if (plx_resolve_snap(s, arg, true, &sn))
			failed("resolve_snap");
	}
	plx_snaplist_free(&l);
}

/*
 * On a store that checks clean, df and check must agree on what is
 * allocated and what is garbage (both mark what the collector marks).
 */
static void compare_usage(const struct plx_usage *us,
			  const struct plx_check_stats *cst)
{
	u64 used = 0, garbage = 0;
	int t;

	for (t = PLX_EXT_FREE; t <= PLX_EXT_METADATA; t++) {
		if (t == PLX_EXT_SYSTEM)
			continue;
		used += us->type[t].used;
		garbage += us->type[t].reclaimable;
	}
	if (used != cst->allocated || garbage != cst->garbage) {
		fprintf(stderr, "fuzz-store: check counts %llu allocated, %llu garbage; usage %llu, %llu\n",
			(unsigned long long)cst->allocated,
			(unsigned long long)cst->garbage,
			(unsigned long long)used, (unsigned long long)garbage);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct plx_check_stats cst;
	struct plx_usage us;
	struct plx_store *s;
	struct plx_snap sn;
	u64 dev_blocks, id, problems = 0;
	bool used;
	u8 flags;

	if (!ready)
		return 0;
	dev_blocks = parse(data, size, &flags);
	apply(dev_blocks);

	clear_err();
	s = plx_open(store_path, PLX_OPEN_RDONLY);
	if (!s) {
		failed("open");
		goto out;
	}
	clear_err();
	if (plx_store_sane(s))
		failed("store_sane");
	clear_err();
	clean = false;
	if (plx_check(s, problem_fn, &problems, &cst))
		failed("check");
	else if (problems != cst.problems)
		abort();
	else
		clean = !cst.problems;
	for (id = 1; id <= s->geo.registry_slots; id++)
		if (s->slots[id - 1].state != PLX_SLOT_FREE)
			read_vdi(s, id);
	clear_err();
	if (plx_resolve_vdi(s, "a", &id))
		failed("resolve_vdi");
	clear_err();
	if (plx_resolve_snap(s, "s", false, &sn))
		failed("resolve_snap");
	plx_label_in_use(s, "nosuchlabel", &used);
	clear_err();
	if (plx_usage(s, &us, NULL, NULL)) {
		failed("usage");
		if (clean) {
			fprintf(stderr, "fuzz-store: check is clean, but usage fails: %s\n",
				plx_errmsg());
			abort();
		}
	} else {
		if (clean)
			compare_usage(&us, &cst);
		plx_usage_free(&us);
	}
	plx_close(s);
out:
	undo(dev_blocks);
	return 0;
}
