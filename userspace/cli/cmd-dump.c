// SPDX-License-Identifier: GPL-2.0
/* parallax dump: decode the superblock, catalogue, or any one block. */
#include <stdio.h>

#include "cli.h"

#define U(x) ((unsigned long long)(x))

static const char *ext_name(u8 t)
{
	static const char *const n[] = { "free", "system", "data", "metadata" };

	return t < 4 ? n[t] : "invalid";
}

static void dump_super(struct plx_store *s)
{
	const struct plx_superblock *sb = &s->sb;
	u64 counts[5] = { 0 }, e;
	char hs[32];
	int i;

	printf("superblock (block 0): version %u, block size %u\n",
	       le32_to_cpu(sb->version), le32_to_cpu(sb->block_size));
	printf("  uuid            ");
	for (i = 0; i < 16; i++)
		printf("%02x%s", sb->hdr.uuid[i],
		       i == 3 || i == 5 || i == 7 || i == 9 ? "-" : "");
	printf("\n  blocks          %llu (%s)\n", U(s->geo.nr_blocks),
	       plx_human_size(s->geo.nr_blocks << PLX_BLOCK_SHIFT, hs,
			      sizeof(hs)));
	printf("  device blocks   %llu\n", U(s->device_blocks));
	printf("  extents         %llu of %llu blocks, %llu system\n",
	       U(s->geo.nr_extents), U(s->geo.extent_blocks),
	       U(s->geo.system_extents));
	printf("  bitmap blocks   %llu per extent\n", U(s->geo.bitmap_blocks));
	printf("  catalogue       blocks %llu..%llu\n",
	       U(s->geo.catalogue_start),
	       U(s->geo.catalogue_start + s->geo.catalogue_blocks - 1));
	printf("  registry        blocks %llu..%llu (%llu VDI slots)\n",
	       U(s->geo.registry_start),
	       U(s->geo.registry_start + s->geo.registry_slots - 1),
	       U(s->geo.registry_slots));
	printf("  features        compat %#llx ro_compat %#llx incompat %#llx\n",
	       U(le64_to_cpu(sb->features_compat)),
	       U(le64_to_cpu(sb->features_ro_compat)),
	       U(le64_to_cpu(sb->features_incompat)));
	printf("  lock manager    %.*s\n", PLX_LOCKD_ADDR_LEN,
	       sb->lockd_addr[0] ? sb->lockd_addr : "(none)");
	for (e = 0; e < s->geo.nr_extents; e++)
		counts[s->ext_type[e] < 4 ? s->ext_type[e] : 4]++;
	printf("catalogue: %llu system, %llu data, %llu metadata, %llu free extents\n",
	       U(counts[PLX_EXT_SYSTEM]), U(counts[PLX_EXT_DATA]),
	       U(counts[PLX_EXT_METADATA]), U(counts[PLX_EXT_FREE]));
	for (e = 0; e < s->geo.catalogue_blocks; e++)
		if (s->cat_err[e])
			printf("  catalogue block %llu: %s\n",
			       U(s->geo.catalogue_start + e),
			       plx_strerror(s->cat_err[e]));
	for (e = s->geo.system_extents; e < s->geo.nr_extents; e++) {
		const struct plx_extent_entry *en =
			&s->cat[e / PLX_CATALOGUE_PER_BLOCK]
			.entries[e % PLX_CATALOGUE_PER_BLOCK];

		if (s->ext_type[e] == PLX_EXT_FREE && !en->holder)
			continue;
		printf("  extent %-6llu %-8s blocks %llu..%llu used %u holder %u generation %llu\n",
		       U(e), ext_name(s->ext_type[e]),
		       U(e << s->geo.extent_shift),
		       U(((e + 1) << s->geo.extent_shift) - 1),
		       le32_to_cpu(en->used), le32_to_cpu(en->holder),
		       U(le64_to_cpu(en->generation)));
	}
}

static void dump_vdi(const struct plx_vdi_record *v)
{
	char name[PLX_NAME_LEN + 1];

	plx_copy_name(name, v->name, PLX_NAME_LEN);
	printf("  id %llu name '%s' flags %#llx%s\n", U(le64_to_cpu(v->id)),
	       name, U(le64_to_cpu(v->flags)),
	       le64_to_cpu(v->flags) & PLX_VDI_DELETED ? " (deleted)" : "");
	printf("  size %llu height %u root %llu%s\n", U(le64_to_cpu(v->size)),
	       v->height, U(plx_ptr_addr(le64_to_cpu(v->root))),
	       plx_ptr_is_ro(le64_to_cpu(v->root)) ? " (ro!)" : "");
	printf("  snaplog_head %llu snap_seq %llu\n",
	       U(le64_to_cpu(v->snaplog_head)), U(le64_to_cpu(v->snap_seq)));
	printf("  parent %llu@%llu (log block %llu)\n",
	       U(le64_to_cpu(v->parent_vdi)), U(le64_to_cpu(v->parent_seq)),
	       U(le64_to_cpu(v->parent_log)));
	printf("  generation %llu holder %u lock_generation %llu ctime_ns %llu\n",
	       U(le64_to_cpu(v->generation)), le32_to_cpu(v->holder),
	       U(le64_to_cpu(v->lock_generation)), U(le64_to_cpu(v->ctime_ns)));
	printf("  lock_flags %#x%s\n", v->lock_flags,
	       plx_vdi_cache_dirty(v) ? " (cache-dirty)" : "");
}

static void dump_snaplog(const struct plx_snaplog_block *l)
{
	u32 i, count = le32_to_cpu(l->count);
	char label[PLX_LABEL_LEN + 1], when[32];

	printf("  vdi %llu prev %llu count %u\n", U(le64_to_cpu(l->vdi)),
	       U(le64_to_cpu(l->prev)), count);
	for (i = 0; i < count && i < PLX_SNAPS_PER_LOG; i++) {
		const struct plx_snap_record *r = &l->rec[i];

		plx_copy_name(label, r->label, PLX_LABEL_LEN);
		cli_time(le64_to_cpu(r->timestamp_ns), when, sizeof(when));
		printf("  [%u] seq %llu root %llu %s flags %#x label '%s'\n", i,
		       U(le64_to_cpu(r->seq)), U(le64_to_cpu(r->root)), when,
		       le32_to_cpu(r->flags), label);
	}
}

static void dump_bitmap(struct plx_store *s, u64 b,
			const struct plx_bitmap_block *bb)
{
	u64 i, set = 0, run = 0, start = 0, first;
	u64 ext_base = b & ~(s->geo.extent_blocks - 1);
	u64 nbits = PLX_BITS_PER_BITMAP;

	first = ext_base + (b - ext_base) * PLX_BITS_PER_BITMAP;
	if (first - ext_base + nbits > s->geo.extent_blocks)
		nbits = s->geo.extent_blocks - (first - ext_base);
	printf("  covers blocks %llu..%llu; allocated runs:\n", U(first),
	       U(first + nbits - 1));
	for (i = 0; i <= nbits; i++) {
		bool on = i < nbits && (bb->bits[i / 8] & (1U << (i % 8)));

		if (on) {
			set++;
			if (!run++)
				start = i;
		} else if (run) {
			printf("    %llu..%llu\n", U(first + start),
			       U(first + start + run - 1));
			run = 0;
		}
	}
	printf("  %llu blocks allocated\n", U(set));
}

static void dump_block(struct plx_store *s, u64 b, const void *buf)
{
	const struct plx_block_header *h = buf;
	u32 magic = le32_to_cpu(h->magic);
	enum plx_err err = PLX_OK;
	const char *kind = NULL;
	unsigned int i, n = 0;

	switch (magic) {
	case PLX_MAGIC_SUPER:
		kind = "superblock";
		err = plx_superblock_check(buf, s->device_blocks);
		break;
	case PLX_MAGIC_CATALOGUE:
		kind = "catalogue block";
		err = plx_catalogue_check(&s->geo, buf,
					  b - s->geo.catalogue_start);
		break;
	case PLX_MAGIC_BITMAP:
		kind = "bitmap block";
		err = plx_block_verify(buf, magic, b, s->geo.uuid);
		break;
	case PLX_MAGIC_VDI:
		kind = "VDI record";
		err = b >= s->geo.registry_start &&
		      b < s->geo.registry_start + s->geo.registry_slots ?
		      plx_vdi_check(&s->geo, buf,
				    b - s->geo.registry_start + 1) :
		      PLX_E_BLOCKNR;
		break;
	case PLX_MAGIC_SNAPLOG:
		kind = "snapshot log block";
		err = plx_snaplog_check(&s->geo, buf, b,
					le64_to_cpu(((const struct plx_snaplog_block *)buf)->vdi));
		break;
	}
	if (kind) {
		printf("block %llu: %s (%s)\n", U(b), kind, plx_strerror(err));
		printf("  crc %#010x blocknr %llu\n", le32_to_cpu(h->crc),
		       U(le64_to_cpu(h->blocknr)));
	}
	switch (magic) {
	case PLX_MAGIC_SUPER:
		if (b == 0)
			dump_super(s);
		return;
	case PLX_MAGIC_CATALOGUE: {
		const struct plx_catalogue_block *cb = buf;
		u64 first = (b - s->geo.catalogue_start) *
			    PLX_CATALOGUE_PER_BLOCK;

		for (i = 0; i < PLX_CATALOGUE_PER_BLOCK; i++) {
			const struct plx_extent_entry *en = &cb->entries[i];

			if (!en->type && !en->holder)
				continue;
			printf("  extent %llu %s used %u holder %u generation %llu\n",
			       U(first + i), ext_name(en->type),
			       le32_to_cpu(en->used), le32_to_cpu(en->holder),
			       U(le64_to_cpu(en->generation)));
		}
		return;
	}
	case PLX_MAGIC_BITMAP:
		dump_bitmap(s, b, buf);
		return;
	case PLX_MAGIC_VDI:
		dump_vdi(buf);
		return;
	case PLX_MAGIC_SNAPLOG:
		dump_snaplog(buf);
		return;
	}
	if (b >= s->geo.registry_start &&
	    b < s->geo.registry_start + s->geo.registry_slots) {
		printf("block %llu: free VDI registry slot (id %llu)\n", U(b),
		       U(b - s->geo.registry_start + 1));
		return;
	}
	if (b < s->geo.system_extents << s->geo.extent_shift) {
		printf("block %llu: unused part of the system area\n", U(b));
		return;
	}
	if ((b & (s->geo.extent_blocks - 1)) < s->geo.bitmap_blocks)
		printf("block %llu: bitmap block WITHOUT bitmap magic (damaged)\n",
		       U(b));
	if (s->ext_type[b >> s->geo.extent_shift] == PLX_EXT_DATA) {
		const u8 *d = buf;

		printf("block %llu: in a data extent; %s, first bytes:", U(b),
		       plx_bitmap_test(s, b) ? "allocated" : "free");
		for (i = 0; i < 16; i++)
			printf(" %02x", d[i]);
		printf("\n");
		return;
	}
	printf("block %llu: no magic; as a radix node (extent type %s):\n",
	       U(b), ext_name(s->ext_type[b >> s->geo.extent_shift]));
	for (i = 0; i < PLX_PTRS_PER_NODE; i++) {
		u64 p = le64_to_cpu(((const struct plx_radix_node *)buf)->ptr[i]);

		if (!p)
			continue;
		n++;
		printf("  [%3u] -> %llu%s\n", i, U(plx_ptr_addr(p)),
		       plx_ptr_is_ro(p) ? " ro" : "");
	}
	printf("  %u non-zero pointers\n", n);
}

int cmd_dump(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	u8 buf[PLX_BLOCK_SIZE];
	struct plx_store *s;
	int c, ret = EXIT_OK;
	u64 b;

	while ((c = cli_getopt(argc, argv, ":h", opts)) != -1) {
		if (c == 'h')
			return cli_help(cli_cmd);
		return EXIT_USAGE;
	}
	if (cli_nargs(argc, argv, 1, 2))
		return EXIT_USAGE;
	if (argc - optind == 2 && plx_parse_u64(argv[optind + 1], &b))
		return cli_liberr();
	s = cli_open(argv[optind], false);
	if (!s)
		return EXIT_STORE;
	if (argc - optind == 1) {
		dump_super(s);
	} else if (b >= s->geo.nr_blocks) {
		ret = cli_err(EXIT_STORE, "block %llu is beyond the store (%llu blocks)",
			      U(b), U(s->geo.nr_blocks));
	} else if (plx_read_block(s, b, buf)) {
		ret = cli_liberr();
	} else {
		dump_block(s, b, buf);
	}
	plx_close(s);
	return ret;
}
