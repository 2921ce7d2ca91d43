// SPDX-License-Identifier: GPL-2.0
/*
 * cache-record: hand-craft the contents of a local write cache log for
 * tests/cli/cache.sh, with the one definition of the layout
 * (dm-parallax/parallax-format.h), as the kernel target would write them.
 *
 *   cache-record LOG super [--head-seq S] [--head-block B] [--open-gen G]
 *                          [--vdi V]
 *       rewrite fields of the log superblock (and reseal it)
 *   cache-record LOG record BLOCK SEQ [--gen G] [--entries N]
 *                          [--discards D] [--snapshot SNAPSEQ]
 *                          [--label L] [--next B] [--torn]
 *       write a record at BLOCK: a write of N entries (default 1; the
 *       last D of them discards, without data) followed by its data
 *       blocks, or with --snapshot a snapshot marker.  open_gen defaults
 *       to the superblock's, next_block to the block after the record.
 *       --torn writes data that do not match data_crc.
 *
 * Prints the block where the next record would go.  Exit status 0, or 1
 * with a message.
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libparallax.h"

#define U(x) ((unsigned long long)(x))

static void die(const char *msg)
{
	fprintf(stderr, "cache-record: %s\n", msg);
	exit(1);
}

static u64 num(const char *s)
{
	u64 v;

	if (plx_parse_u64(s, &v))
		die(plx_errmsg());
	return v;
}

static int rw(int fd, u64 blocknr, u64 count, void *buf, bool write)
{
	size_t len = count << PLX_BLOCK_SHIFT;
	off_t off = (off_t)(blocknr << PLX_BLOCK_SHIFT);
	ssize_t n;

	n = write ? pwrite(fd, buf, len, off) : pread(fd, buf, len, off);
	return n == (ssize_t)len ? 0 : -1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "head-seq", required_argument, NULL, 's' },
		{ "head-block", required_argument, NULL, 'b' },
		{ "open-gen", required_argument, NULL, 'o' },
		{ "vdi", required_argument, NULL, 'v' },
		{ "gen", required_argument, NULL, 'g' },
		{ "entries", required_argument, NULL, 'e' },
		{ "discards", required_argument, NULL, 'd' },
		{ "snapshot", required_argument, NULL, 'S' },
		{ "label", required_argument, NULL, 'l' },
		{ "next", required_argument, NULL, 'n' },
		{ "torn", no_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	u64 head_seq = 0, head_block = 0, open_gen = 0, vdi = ~0ULL;
	u64 gen = 0, entries = 1, discards = 0, snap = 0, next = 0;
	u64 nr, blocknr, seq, data, i;
	const char *label = NULL;
	struct plx_log_super *sp, super;
	struct plx_log_record *r;
	bool torn = false;
	u8 *buf;
	int c, fd;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			head_seq = num(optarg);
			break;
		case 'b':
			head_block = num(optarg);
			break;
		case 'o':
			open_gen = num(optarg);
			break;
		case 'v':
			vdi = num(optarg);
			break;
		case 'g':
			gen = num(optarg);
			break;
		case 'e':
			entries = num(optarg);
			break;
		case 'd':
			discards = num(optarg);
			break;
		case 'S':
			snap = num(optarg);
			break;
		case 'l':
			label = optarg;
			break;
		case 'n':
			next = num(optarg);
			break;
		case 't':
			torn = true;
			break;
		default:
			die("bad option (see the comment in cache-record.c)");
		}
	}
	if (argc - optind < 2)
		die("usage: cache-record LOG super|record ...");
	buf = calloc(1 + PLX_LOG_MAX_DATA, PLX_BLOCK_SIZE);
	fd = open(argv[optind], O_RDWR);
	if (!buf || fd < 0)
		die("cannot open the log");
	sp = (struct plx_log_super *)buf;
	if (rw(fd, 0, 1, buf, false))
		die("cannot read block 0");
	if (plx_log_super_check(sp, ~0ULL))
		die("block 0 is not a valid log superblock");
	nr = le64_to_cpu(sp->nr_blocks);
	memcpy(&super, sp, sizeof(super));

	if (!strcmp(argv[optind + 1], "super")) {
		if (head_seq)
			sp->head_seq = cpu_to_le64(head_seq);
		if (head_block)
			sp->head_block = cpu_to_le64(head_block);
		if (open_gen)
			sp->open_gen = cpu_to_le64(open_gen);
		if (vdi != ~0ULL)
			sp->vdi = cpu_to_le64(vdi);
		plx_block_update_crc(buf);
		if (rw(fd, 0, 1, buf, true) || fsync(fd))
			die("cannot write block 0");
		return 0;
	}
	if (strcmp(argv[optind + 1], "record") || argc - optind != 4)
		die("usage: cache-record LOG record BLOCK SEQ [options]");
	blocknr = num(argv[optind + 2]);
	seq = num(argv[optind + 3]);
	if (!gen)
		gen = le64_to_cpu(super.open_gen);

	r = (struct plx_log_record *)buf;
	memset(buf, 0, PLX_BLOCK_SIZE);
	r->seq = cpu_to_le64(seq);
	r->open_gen = cpu_to_le64(gen);
	if (snap) {
		r->type = cpu_to_le32(PLX_LOG_SNAPSHOT);
		r->snap_seq = cpu_to_le64(snap);
		if (label)
			memcpy(r->label, label, strnlen(label, sizeof(r->label)));
		data = 0;
	} else {
		if (!entries || entries > PLX_LOG_MAX_ENTRIES ||
		    discards > entries || entries - discards > PLX_LOG_MAX_DATA)
			die("bad --entries or --discards");
		r->type = cpu_to_le32(PLX_LOG_WRITE);
		r->nr_entries = cpu_to_le32((u32)entries);
		for (i = 0; i < entries; i++)
			r->entries[i] = cpu_to_le64(100 + i +
						    (i >= entries - discards ?
						     PLX_LOG_DISCARD : 0));
		data = entries - discards;
		for (i = 0; i < data * PLX_BLOCK_SIZE; i++)
			buf[PLX_BLOCK_SIZE + i] = (u8)(seq * 31 + i / 7);
	}
	r->data_blocks = cpu_to_le32((u32)data);
	r->data_crc = cpu_to_le32(plx_crc32c(buf + PLX_BLOCK_SIZE,
					     data << PLX_BLOCK_SHIFT));
	if (!next) {
		next = blocknr + 1 + data;
		if (next >= nr)
			next = PLX_LOG_FIRST_BLOCK;
	}
	r->next_block = cpu_to_le64(next);
	plx_block_seal(buf, PLX_MAGIC_LOG_RECORD, blocknr, super.hdr.uuid);
	if (torn) {
		if (!data)
			die("--torn needs data blocks");
		buf[PLX_BLOCK_SIZE * (1 + data) - 1] ^= 0xff;
	}
	if (plx_log_record_check(r, blocknr, super.hdr.uuid, nr))
		die("the record would not pass plx_log_record_check()");
	if (rw(fd, blocknr, 1 + data, buf, true) || fsync(fd))
		die("cannot write the record");
	printf("%llu\n", U(next));
	return 0;
}
