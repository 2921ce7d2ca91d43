// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of libparallax: parsing, format/open, allocator, radix
 * lookups and the copy-on-write writer, snapshots, clones, name
 * resolution, and rejection of corrupted blocks.  Prints "ok N - desc" /
 * "not ok N - desc" per test; exits non-zero if any failed.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libparallax.h"

static int n_tests, n_failed;
static char img[256];

static void t_ok(bool cond, const char *desc)
{
	n_tests++;
	if (!cond)
		n_failed++;
	printf("%sok %d - %s\n", cond ? "" : "not ", n_tests, desc);
	if (!cond)
		printf("# last library error: %s\n", plx_errmsg());
}

#define TEST(cond, desc) t_ok(!!(cond), desc)

static void mkimage(u64 bytes)
{
	int fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || ftruncate(fd, (off_t)bytes)) {
		perror(img);
		exit(1);
	}
	close(fd);
}

/* Raw block access behind the library's back, to corrupt things. */
static void raw_rw(u64 b, void *buf, bool write)
{
	int fd = open(img, O_RDWR);
	ssize_t n;

	if (write)
		n = pwrite(fd, buf, PLX_BLOCK_SIZE, (off_t)(b * PLX_BLOCK_SIZE));
	else
		n = pread(fd, buf, PLX_BLOCK_SIZE, (off_t)(b * PLX_BLOCK_SIZE));
	if (n != PLX_BLOCK_SIZE) {
		perror("raw_rw");
		exit(1);
	}
	close(fd);
}

static void fill(u8 *buf, u8 seed)
{
	unsigned int i;

	for (i = 0; i < PLX_BLOCK_SIZE; i++)
		buf[i] = (u8)(seed * 31 + i * 7 + 1);
}

static bool block_is(struct plx_store *s, u64 pblock, u8 seed)
{
	u8 a[PLX_BLOCK_SIZE], b[PLX_BLOCK_SIZE];

	if (!pblock || plx_read_block(s, pblock, a))
		return false;
	fill(b, seed);
	return !memcmp(a, b, sizeof(a));
}

static int write_seed(struct plx_store *s, u64 id, u64 vblock, u8 seed)
{
	u8 buf[PLX_BLOCK_SIZE];
	struct plx_writer *w = plx_writer_open(s, id);

	if (!w)
		return -1;
	fill(buf, seed);
	if (plx_writer_write(w, vblock, buf, 0, PLX_BLOCK_SIZE)) {
		plx_writer_abort(w);
		return -1;
	}
	return plx_writer_close(w);
}

static u64 lookup(struct plx_store *s, u64 root, u8 h, u64 vb)
{
	u64 p = ~0ULL;

	if (plx_lookup(s, root, h, vb, &p))
		return ~0ULL;
	return p;
}

static void test_parse(void)
{
	u64 v = 0;

	TEST(!plx_parse_size("4K", &v) && v == 4096, "parse_size 4K");
	TEST(!plx_parse_size("1GiB", &v) && v == 1ULL << 30, "parse_size 1GiB");
	TEST(!plx_parse_size("256T", &v) && v == 256ULL << 40, "parse_size 256T");
	TEST(!plx_parse_size("12345", &v) && v == 12345, "parse_size plain bytes");
	TEST(plx_parse_size("12Q", &v) && plx_errkind() == PLX_EK_USAGE,
	     "parse_size rejects unknown suffix as a usage error");
	TEST(plx_parse_size("", &v), "parse_size rejects empty");
	TEST(plx_parse_size("-1", &v), "parse_size rejects a sign");
	TEST(plx_parse_size("99999999999T", &v), "parse_size rejects overflow");
	TEST(plx_parse_u64("18446744073709551616", &v),
	     "parse_u64 rejects 2^64");
	TEST(!plx_parse_u64("18446744073709551615", &v) && v == ~0ULL,
	     "parse_u64 accepts 2^64-1");
}

static void test_json_and_human(void)
{
	char *out = NULL, hs[32];
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	plx_json_str(f, "a\"b\\c\n\x01");
	fclose(f);
	TEST(out && !strcmp(out, "\"a\\\"b\\\\c\\n\\u0001\""),
	     "JSON strings escape quotes, backslashes and control characters");
	free(out);
	TEST(!strcmp(plx_human_size(64ULL << 20, hs, sizeof(hs)), "64 MiB") &&
	     !strcmp(plx_human_size(4097, hs, sizeof(hs)), "4097 B"),
	     "human sizes");
}

static void test_format(void)
{
	struct plx_format_opts o = { .extent_blocks = 1024 };
	struct plx_superblock sb1, sb2;
	struct plx_store *s;

	mkimage(8 << 20);
	TEST(plx_format(img, &o, NULL) && strstr(plx_errmsg(), "too small"),
	     "format refuses an 8 MiB device with 4 MiB extents");
	mkimage(64 << 20);
	TEST(!plx_format(img, &o, &sb1), "format 64 MiB with 4 MiB extents");
	TEST(plx_format(img, &o, NULL) && strstr(plx_errmsg(), "--force"),
	     "format refuses an existing store without force");
	o.force = true;
	TEST(!plx_format(img, &o, &sb2) &&
	     memcmp(sb1.hdr.uuid, sb2.hdr.uuid, 16),
	     "format --force makes a new store with a new uuid");
	s = plx_open(img, PLX_OPEN_RDONLY);
	TEST(s && s->geo.nr_extents == 16 && s->geo.system_extents == 2 &&
	     s->geo.bitmap_blocks == 1 && !plx_store_sane(s),
	     "open validates: 16 extents, 2 system, 1 bitmap block each");
	TEST(s && s->ext_type[0] == PLX_EXT_SYSTEM &&
	     s->ext_type[2] == PLX_EXT_FREE, "catalogue types after format");
	TEST(s && plx_bitmap_test(s, 2 * 1024) && !plx_bitmap_test(s, 2 * 1024 + 1),
	     "bitmap block marked in use, first data block free");
	plx_close(s);
}

static void test_alloc(void)
{
	struct plx_store *s = plx_open(img, PLX_OPEN_RDWR);
	u64 m, d, b, prev = 0, i;
	bool good = true;

	TEST(s, "open read-write");
	if (!s)
		return;
	TEST(!plx_alloc(s, PLX_EXT_METADATA, &m) && !plx_alloc(s, PLX_EXT_DATA, &d),
	     "allocate a metadata and a data block");
	TEST(s->ext_type[m >> 10] == PLX_EXT_METADATA &&
	     s->ext_type[d >> 10] == PLX_EXT_DATA && (m >> 10) != (d >> 10),
	     "they come from newly typed, different extents");
	TEST(!plx_check_addr(&s->geo, m, PLX_EXT_METADATA) &&
	     !plx_check_addr(&s->geo, d, PLX_EXT_DATA),
	     "allocated blocks pass plx_check_addr for their type");
	for (i = 0; i < 1500 && good; i++) {
		if (plx_alloc(s, PLX_EXT_DATA, &b) || b == prev ||
		    plx_check_addr(&s->geo, b, PLX_EXT_DATA) ||
		    !plx_bitmap_test(s, b))
			good = false;
		prev = b;
	}
	TEST(good, "1500 more data blocks: distinct, typed, marked, across extents");
	/* Hold the current data extent: the allocator must go elsewhere. */
	s->cat[0].entries[prev >> 10].holder = cpu_to_le32(7);
	TEST(!plx_alloc(s, PLX_EXT_DATA, &b) && (b >> 10) != (prev >> 10),
	     "never allocates from an extent a host holds");
	s->cat[0].entries[prev >> 10].holder = 0;
	TEST(!plx_sync(s), "sync writes bitmaps and catalogue");
	plx_close(s);
	s = plx_open(img, PLX_OPEN_RDONLY);
	TEST(s && plx_bitmap_test(s, m) && plx_bitmap_test(s, d) &&
	     s->ext_type[d >> 10] == PLX_EXT_DATA,
	     "allocations persist across reopen");
	plx_close(s);
}

static void test_vdi_cow(void)
{
	struct plx_format_opts o = { .extent_blocks = 1024, .force = true };
	struct plx_store *s;
	struct plx_vdi_record *v;
	struct plx_radix_node n;
	struct plx_snap sn;
	u64 id, id2, seq, root0, root1, p_old, p_new, p_clone, x;
	u8 buf[PLX_BLOCK_SIZE];
	struct plx_writer *w;
	unsigned int i;
	bool all_ro = true;

	mkimage(64 << 20);
	plx_format(img, &o, NULL);
	s = plx_open(img, PLX_OPEN_RDWR);
	TEST(s && !plx_vdi_create(s, "disk", 8 << 20, &id) && id == 1,
	     "create VDI 'disk' of 8 MiB -> id 1");
	if (!s)
		return;
	TEST(plx_vdi_create(s, "disk", 4096, &x) && plx_errkind() == PLX_EK_STORE,
	     "duplicate name refused");
	TEST(plx_vdi_create(s, "1234", 4096, &x) && plx_errkind() == PLX_EK_USAGE,
	     "all-digit name refused");
	TEST(plx_vdi_create(s, "x", 4097, &x), "size not a multiple of 4 KiB refused");
	TEST(!plx_resolve_vdi(s, "disk", &x) && x == 1 &&
	     !plx_resolve_vdi(s, "1", &x) && x == 1 && plx_resolve_vdi(s, "2", &x),
	     "resolve VDI by name and id; unknown id fails");
	v = plx_vdi_get(s, id);
	TEST(v && v->height == 2, "8 MiB VDI has a height-2 tree");
	root0 = le64_to_cpu(v->root);
	TEST(lookup(s, root0, 2, 5) == 0, "empty VDI reads sparse");
	TEST(!write_seed(s, id, 5, 1), "write vblock 5");
	p_old = lookup(s, root0, 2, 5);
	TEST(p_old && p_old != ~0ULL && block_is(s, p_old, 1),
	     "lookup finds the written data");
	TEST(lookup(s, root0, 2, 6) == 0, "neighbour stays sparse");
	TEST(!write_seed(s, id, 5, 2) && lookup(s, root0, 2, 5) == p_old &&
	     block_is(s, p_old, 2), "rewrite of a writable block is in place");

	TEST(!plx_snapshot(s, id, "first", &seq) && seq == 1, "snapshot -> seq 1");
	v = plx_vdi_get(s, id);
	root1 = le64_to_cpu(v->root);
	TEST(root1 != root0 && le64_to_cpu(v->snap_seq) == 1,
	     "snapshot moves the VDI to a new root");
	plx_read_block(s, root1, &n);
	for (i = 0; i < PLX_PTRS_PER_NODE; i++)
		if (n.ptr[i] && !plx_ptr_is_ro(le64_to_cpu(n.ptr[i])))
			all_ro = false;
	TEST(all_ro && n.ptr[0], "every link of the new root is read-only");
	TEST(!plx_resolve_snap(s, "first", false, &sn) && sn.vdi == 1 &&
	     le64_to_cpu(sn.rec.root) == root0,
	     "the snapshot record holds the old root");

	TEST(!write_seed(s, id, 5, 3), "write vblock 5 after the snapshot");
	p_new = lookup(s, root1, 2, 5);
	TEST(p_new && p_new != p_old && block_is(s, p_new, 3),
	     "COW: the VDI maps vblock 5 to a new block");
	TEST(lookup(s, root0, 2, 5) == p_old && block_is(s, p_old, 2),
	     "COW: the snapshot still maps the old block, old contents");

	/* Partial write under a read-only link copies the old contents. */
	TEST(!plx_snapshot(s, id, NULL, &seq) && seq == 2, "second snapshot");
	w = plx_writer_open(s, id);
	memset(buf, 0xee, 100);
	TEST(w && !plx_writer_write(w, 5, buf, 10, 100) && !plx_writer_close(w),
	     "partial write of 100 bytes");
	v = plx_vdi_get(s, id);
	x = lookup(s, le64_to_cpu(v->root), 2, 5);
	fill(buf, 3);
	memset(buf + 10, 0xee, 100);
	{
		u8 got[PLX_BLOCK_SIZE];

		TEST(x != p_new && !plx_read_block(s, x, got) &&
		     !memcmp(got, buf, sizeof(got)),
		     "partial COW write keeps the rest of the block");
	}
	TEST(block_is(s, p_new, 3), "...and the snapshot's block is untouched");

	TEST(!plx_resolve_snap(s, "disk@first", false, &sn) &&
	     !plx_vdi_clone(s, "clone", &sn, &id2) && id2 == 2,
	     "clone disk@first -> VDI 2");
	v = plx_vdi_get(s, id2);
	TEST(v && le64_to_cpu(v->parent_vdi) == 1 && le64_to_cpu(v->parent_seq) == 1,
	     "clone records its parent snapshot");
	TEST(lookup(s, le64_to_cpu(v->root), 2, 5) == p_old,
	     "clone shares the snapshot's data block");
	TEST(!write_seed(s, id2, 5, 9), "write to the clone");
	v = plx_vdi_get(s, id2);
	p_clone = lookup(s, le64_to_cpu(v->root), 2, 5);
	TEST(p_clone != p_old && block_is(s, p_clone, 9) && block_is(s, p_old, 2),
	     "clone write is copied; the snapshot keeps its block");
	TEST(!write_seed(s, id2, 2047, 4) &&
	     block_is(s, lookup(s, le64_to_cpu(plx_vdi_get(s, id2)->root), 2,
				2047), 4),
	     "write the last block of the clone");
	{
		struct plx_writer *w2 = plx_writer_open(s, id2);

		fill(buf, 1);
		TEST(w2 && plx_writer_write(w2, 2048, buf, 0, PLX_BLOCK_SIZE),
		     "write beyond the VDI's size refused");
		plx_writer_abort(w2);
	}

	TEST(plx_snapshot(s, id, "first", &seq), "duplicate label refused");
	TEST(!plx_resolve_snap(s, "1@2", false, &sn) && le64_to_cpu(sn.rec.seq) == 2,
	     "resolve V@SEQ");
	TEST(plx_resolve_snap(s, "1@", false, &sn) && plx_errkind() == PLX_EK_USAGE,
	     "V@ is a usage error");
	TEST(plx_resolve_snap(s, "nosuch", false, &sn) &&
	     plx_errkind() == PLX_EK_STORE, "unknown label is not found");
	TEST(!plx_snap_label(s, &sn, "second") &&
	     !plx_resolve_snap(s, "second", false, &sn) &&
	     le64_to_cpu(sn.rec.seq) == 2, "label a snapshot, resolve by label");
	TEST(!plx_snap_delete(s, &sn) && plx_resolve_snap(s, "1@2", false, &sn) &&
	     !plx_resolve_snap(s, "1@2", true, &sn), "delete a snapshot marks it");
	TEST(!plx_vdi_delete(s, id2) && plx_resolve_vdi(s, "clone", &x),
	     "deleted VDI no longer resolves");
	TEST(!plx_vdi_create(s, "clone", 4096, &x) && x == 3,
	     "a deleted VDI's name is free again");
	plx_close(s);
}

static void count_problem(void *arg, u64 block, const char *msg)
{
	(void)block;
	(void)msg;
	(*(int *)arg)++;
}

static void test_snaplog_and_corruption(void)
{
	struct plx_store *s = plx_open(img, PLX_OPEN_RDWR);
	struct plx_check_stats st;
	struct plx_snaplist l;
	struct plx_vdi_record *v;
	u8 blk[PLX_BLOCK_SIZE];
	u64 seq = 0, i, head, rb, root;
	bool good = true;
	int probs = 0;

	if (!s) {
		TEST(0, "reopen");
		return;
	}
	for (i = 0; i < PLX_SNAPS_PER_LOG + 3 && good; i++)
		good = !plx_snapshot(s, 1, NULL, &seq);
	TEST(good && seq == PLX_SNAPS_PER_LOG + 5,
	     "snapshots spill over into a second log block");
	TEST(!plx_snaplog_load(s, 1, &l) && l.count == seq && l.nr_blocks == 2,
	     "the log chain loads: all records, two blocks");
	for (i = 0; i < l.count; i++)
		if (le64_to_cpu(l.snaps[i].rec.seq) != i + 1)
			good = false;
	TEST(good, "seqs are 1..n, oldest first");
	plx_snaplist_free(&l);
	TEST(!plx_check(s, count_problem, &probs, &st) && !st.problems && !probs,
	     "check: the store is clean");
	v = plx_vdi_get(s, 1);
	head = le64_to_cpu(v->snaplog_head);
	root = le64_to_cpu(v->root);
	rb = plx_registry_block(&s->geo, 1);
	plx_close(s);

	/* A log block whose prev points at itself: detected, no hang. */
	raw_rw(head, blk, false);
	{
		struct plx_snaplog_block *lb = (void *)blk;
		struct plx_superblock sb;
		u8 b0[PLX_BLOCK_SIZE];

		raw_rw(0, b0, false);
		memcpy(&sb, b0, sizeof(sb));
		lb->prev = cpu_to_le64(head);
		plx_block_seal(blk, PLX_MAGIC_SNAPLOG, head, sb.hdr.uuid);
		raw_rw(head, blk, true);
	}
	s = plx_open(img, PLX_OPEN_RDWR);
	TEST(s && plx_snaplog_load(s, 1, &l) && strstr(plx_errmsg(), "block"),
	     "a snapshot-log cycle is an error naming a block");
	TEST(s && plx_snapshot(s, 1, NULL, &seq), "snapshot refuses the broken log");
	plx_close(s);

	/* Flip a byte in the VDI record. */
	raw_rw(rb, blk, false);
	blk[200] ^= 1;
	raw_rw(rb, blk, true);
	s = plx_open(img, PLX_OPEN_RDONLY);
	TEST(s && !plx_vdi_get(s, 1) && strstr(plx_errmsg(), "checksum mismatch"),
	     "a corrupted VDI record is rejected with plx_strerror's text");
	probs = 0;
	TEST(s && !plx_check(s, count_problem, &probs, &st) && st.problems >= 1,
	     "check reports the damaged record");
	plx_close(s);
	blk[200] ^= 1;
	raw_rw(rb, blk, true);

	/* A radix pointer beyond the store. */
	raw_rw(root, blk, false);
	((struct plx_radix_node *)blk)->ptr[0] = cpu_to_le64(1ULL << 40);
	raw_rw(root, blk, true);
	s = plx_open(img, PLX_OPEN_RDWR);
	TEST(s && lookup(s, root, 2, 5) == ~0ULL &&
	     strstr(plx_errmsg(), "beyond the end"),
	     "lookup refuses a pointer beyond the store");
	TEST(s && !plx_writer_open(s, 1), "writer refuses a damaged tree");
	plx_close(s);

	/* A damaged superblock means no store at all. */
	raw_rw(0, blk, false);
	blk[100] ^= 0x40;
	raw_rw(0, blk, true);
	TEST(!plx_open(img, PLX_OPEN_RDONLY) && strstr(plx_errmsg(), "block 0"),
	     "open refuses a damaged superblock");
}

int main(void)
{
	const char *dir = getenv("TMPDIR") ?: "/tmp";

	snprintf(img, sizeof(img), "%s/plx-unit-%d.img", dir, (int)getpid());
	test_parse();
	test_json_and_human();
	test_format();
	test_alloc();
	test_vdi_cow();
	test_snaplog_and_corruption();
	unlink(img);
	printf("1..%d\n", n_tests);
	return n_failed ? 1 : 0;
}
