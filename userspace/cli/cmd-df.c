// SPDX-License-Identifier: GPL-2.0
/* parallax df: space accounting, per extent type and per live VDI. */
#include <stdio.h>

#include "cli.h"

static const char *const df_type_name[4] = {
	[PLX_EXT_FREE] = "free",
	[PLX_EXT_SYSTEM] = "system",
	[PLX_EXT_DATA] = "data",
	[PLX_EXT_METADATA] = "metadata",
};

/* Rows in the order a reader wants them: what holds data first. */
static const enum plx_extent_type df_order[4] = {
	PLX_EXT_DATA, PLX_EXT_METADATA, PLX_EXT_SYSTEM, PLX_EXT_FREE,
};

/* "1234 (4936 KiB)": a block count with its size. */
static const char *df_cell(u64 blocks, char *buf, size_t len)
{
	char sz[32];

	snprintf(buf, len, "%llu (%s)", (unsigned long long)blocks,
		 plx_human_size(blocks * PLX_BLOCK_SIZE, sz, sizeof(sz)));
	return buf;
}

static void df_json(struct plx_store *s, const struct plx_usage *u)
{
	u64 i;
	int t;

	printf("{\"block_size\": %u, \"blocks\": %llu, \"extent_blocks\": %llu, \"types\": {",
	       (unsigned int)PLX_BLOCK_SIZE, (unsigned long long)s->geo.nr_blocks,
	       (unsigned long long)s->geo.extent_blocks);
	for (t = 0; t < 4; t++) {
		const struct plx_usage_type *ut = &u->type[df_order[t]];

		printf("%s\n  \"%s\": {\"extents\": %llu, \"blocks\": %llu, \"bitmap_blocks\": %llu, \"used\": %llu, \"free\": %llu, \"reclaimable\": %llu}",
		       t ? "," : "", df_type_name[df_order[t]],
		       (unsigned long long)ut->extents,
		       (unsigned long long)ut->blocks,
		       (unsigned long long)ut->bitmap_blocks,
		       (unsigned long long)ut->used,
		       (unsigned long long)ut->free,
		       (unsigned long long)ut->reclaimable);
	}
	printf("},\n \"free_extents\": %llu, \"log_blocks\": %llu, \"reachable\": %llu, \"held_extents\": %llu, \"held_vdis\": %llu, \"damaged_vdis\": %llu, \"vdis\": [",
	       (unsigned long long)u->type[PLX_EXT_FREE].extents,
	       (unsigned long long)u->log_blocks,
	       (unsigned long long)u->reachable,
	       (unsigned long long)u->held_extents,
	       (unsigned long long)u->held_vdis,
	       (unsigned long long)u->bad_vdis);
	for (i = 0; i < u->nr_vdis; i++) {
		const struct plx_usage_vdi *v = &u->vdis[i];
		const struct plx_vdi_record *r = &s->slots[v->id - 1].rec;
		char name[PLX_NAME_LEN + 1];

		plx_copy_name(name, r->name, PLX_NAME_LEN);
		printf("%s\n  {\"id\": %llu, \"name\": ", i ? "," : "",
		       (unsigned long long)v->id);
		plx_json_str(stdout, name);
		printf(", \"size\": %llu, \"snapshots\": %llu, \"data_mapped\": %llu, \"meta_mapped\": %llu, \"data_exclusive\": %llu, \"meta_exclusive\": %llu, \"data_shared\": %llu, \"meta_shared\": %llu}",
		       (unsigned long long)le64_to_cpu(r->size),
		       (unsigned long long)v->snapshots,
		       (unsigned long long)v->data_mapped,
		       (unsigned long long)v->meta_mapped,
		       (unsigned long long)v->data_exclusive,
		       (unsigned long long)v->meta_exclusive,
		       (unsigned long long)v->data_shared,
		       (unsigned long long)v->meta_shared);
	}
	printf("%s]}\n", u->nr_vdis ? "\n" : "");
}

static void df_human(struct plx_store *s, const struct plx_usage *u)
{
	char c1[48], c2[48], c3[48], c4[48], sz[32];
	struct plx_usage_type tot = { 0 };
	u64 i;
	int t;

	printf("%-9s %7s %20s %20s %20s %20s\n", "TYPE", "EXTENTS",
	       "BLOCKS", "USED", "FREE", "RECLAIMABLE");
	for (t = 0; t < 4; t++) {
		const struct plx_usage_type *ut = &u->type[df_order[t]];

		tot.extents += ut->extents;
		tot.blocks += ut->blocks;
		tot.used += ut->used;
		tot.free += ut->free;
		tot.reclaimable += ut->reclaimable;
		printf("%-9s %7llu %20s %20s %20s %20s\n",
		       df_type_name[df_order[t]],
		       (unsigned long long)ut->extents,
		       df_cell(ut->blocks, c1, sizeof(c1)),
		       df_cell(ut->used, c2, sizeof(c2)),
		       df_cell(ut->free, c3, sizeof(c3)),
		       df_cell(ut->reclaimable, c4, sizeof(c4)));
	}
	printf("%-9s %7llu %20s %20s %20s %20s\n", "total",
	       (unsigned long long)tot.extents,
	       df_cell(tot.blocks, c1, sizeof(c1)),
	       df_cell(tot.used, c2, sizeof(c2)),
	       df_cell(tot.free, c3, sizeof(c3)),
	       df_cell(tot.reclaimable, c4, sizeof(c4)));
	printf("Blocks of %u bytes; used excludes the %llu bitmap blocks; reclaimable: allocated, reachable from nothing live (what gc would free now).\n",
	       (unsigned int)PLX_BLOCK_SIZE,
	       (unsigned long long)(u->type[PLX_EXT_DATA].bitmap_blocks +
				    u->type[PLX_EXT_METADATA].bitmap_blocks +
				    u->type[PLX_EXT_FREE].bitmap_blocks));

	printf("\n%6s %-20s %10s %5s %11s %11s %11s %11s %11s %11s %10s\n",
	       "ID", "NAME", "SIZE", "SNAPS", "DATA-MAPPED", "META-MAPPED",
	       "DATA-EXCL", "META-EXCL", "DATA-SHARED", "META-SHARED",
	       "EXCL-SIZE");
	for (i = 0; i < u->nr_vdis; i++) {
		const struct plx_usage_vdi *v = &u->vdis[i];
		const struct plx_vdi_record *r = &s->slots[v->id - 1].rec;
		char name[PLX_NAME_LEN + 1], vsz[32];

		plx_copy_name(name, r->name, PLX_NAME_LEN);
		printf("%6llu %-20s %10s %5llu %11llu %11llu %11llu %11llu %11llu %11llu %10s\n",
		       (unsigned long long)v->id, name[0] ? name : "-",
		       plx_human_size(le64_to_cpu(r->size), vsz, sizeof(vsz)),
		       (unsigned long long)v->snapshots,
		       (unsigned long long)v->data_mapped,
		       (unsigned long long)v->meta_mapped,
		       (unsigned long long)v->data_exclusive,
		       (unsigned long long)v->meta_exclusive,
		       (unsigned long long)v->data_shared,
		       (unsigned long long)v->meta_shared,
		       plx_human_size((v->data_exclusive + v->meta_exclusive) *
				      PLX_BLOCK_SIZE, sz, sizeof(sz)));
	}
	printf("Per VDI in blocks: DATA = data blocks, META = radix nodes; MAPPED: the live tree; EXCL: reached from this VDI and its snapshots only; SHARED: also from another VDI.\n");
	if (u->held_extents || u->held_vdis)
		printf("The store is in use (%llu extents and %llu VDIs held by hosts): figures may be slightly stale.\n",
		       (unsigned long long)u->held_extents,
		       (unsigned long long)u->held_vdis);
	if (u->bad_vdis)
		printf("%llu damaged VDI records are not counted (see parallax check).\n",
		       (unsigned long long)u->bad_vdis);
}

int cmd_df(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli_progress pr;
	struct plx_usage u;
	struct plx_store *s;
	bool json = false, quiet = false;
	int c, ret;

	while ((c = cli_getopt(argc, argv, ":hq", opts)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			return cli_help(cli_cmd);
		default:
			return EXIT_USAGE;
		}
	}
	if (cli_nargs(argc, argv, 1, 1))
		return EXIT_USAGE;
	s = cli_open(argv[optind], false);
	if (!s)
		return EXIT_STORE;
	cli_progress_init(&pr, quiet);
	ret = plx_usage(s, &u, cli_progress_fn, &pr);
	cli_progress_done(&pr);
	if (ret) {
		ret = cli_liberr();
	} else {
		if (json)
			df_json(s, &u);
		else
			df_human(s, &u);
		plx_usage_free(&u);
		ret = EXIT_OK;
	}
	plx_close(s);
	return ret;
}
