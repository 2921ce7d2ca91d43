// SPDX-License-Identifier: GPL-2.0
/* parallax cache-init and cache-show: the local write cache's log device. */
#include <stdio.h>

#include "cli.h"

#define U(x) ((unsigned long long)(x))

int cmd_cache_init(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct plx_log_super sp;
	bool force = false;
	char hs[32], us[40];
	u64 nr;
	int c;

	while ((c = cli_getopt(argc, argv, ":h", opts)) != -1) {
		switch (c) {
		case 'f':
			force = true;
			break;
		case 'h':
			return cli_help(cli_cmd);
		default:
			return EXIT_USAGE;
		}
	}
	if (cli_nargs(argc, argv, 1, 1))
		return EXIT_USAGE;
	if (plx_cachelog_init(argv[optind], force, &sp))
		return cli_liberr();
	nr = le64_to_cpu(sp.nr_blocks);
	printf("initialised %s: cache log of %llu blocks (%s), uuid %s\n",
	       argv[optind], U(nr),
	       plx_human_size(nr << PLX_BLOCK_SHIFT, hs, sizeof(hs)),
	       plx_uuid_str(sp.hdr.uuid, us, sizeof(us)));
	return EXIT_OK;
}

static bool zero_uuid(const u8 *uuid)
{
	int i;

	for (i = 0; i < 16; i++)
		if (uuid[i])
			return false;
	return true;
}

/* One line a record; every field always there, "-" where it has none. */
static int show_record(void *arg, u64 blocknr, const struct plx_log_record *r)
{
	char label[PLX_LABEL_LEN + 1], snap[24];
	bool is_snap = le32_to_cpu(r->type) == PLX_LOG_SNAPSHOT;

	(void)arg;
	if (is_snap) {
		plx_copy_name(label, r->label, PLX_LABEL_LEN);
		snprintf(snap, sizeof(snap), "%llu", U(le64_to_cpu(r->snap_seq)));
	} else {
		label[0] = '\0';
		snprintf(snap, sizeof(snap), "-");
	}
	printf("record: seq %llu block %llu type %s entries %u data_blocks %u",
	       U(le64_to_cpu(r->seq)), U(blocknr), is_snap ? "snapshot" : "write",
	       le32_to_cpu(r->nr_entries), le32_to_cpu(r->data_blocks));
	printf(" next %llu open_gen %llu snap_seq %s label %s\n",
	       U(le64_to_cpu(r->next_block)), U(le64_to_cpu(r->open_gen)),
	       snap, label[0] ? label : "-");
	return 0;
}

int cmd_cache_show(int argc, char **argv)
{
	const struct plx_log_super *sp;
	struct plx_cachelog_scan st;
	struct plx_cachelog log;
	char us[40], ts[32];
	int ret;

	ret = cli_only_help(argc, argv, 1, 1);
	if (ret >= 0)
		return ret;
	if (plx_cachelog_open(argv[optind], &log))
		return cli_liberr();
	sp = &log.super;
	printf("uuid: %s\n", plx_uuid_str(sp->hdr.uuid, us, sizeof(us)));
	printf("nr_blocks: %llu\n", U(le64_to_cpu(sp->nr_blocks)));
	printf("store_uuid: %s\n", zero_uuid(sp->store_uuid) ? "-" :
	       plx_uuid_str(sp->store_uuid, us, sizeof(us)));
	printf("vdi: %llu\n", U(le64_to_cpu(sp->vdi)));
	printf("head_seq: %llu\n", U(le64_to_cpu(sp->head_seq)));
	printf("head_block: %llu\n", U(le64_to_cpu(sp->head_block)));
	printf("open_gen: %llu\n", U(le64_to_cpu(sp->open_gen)));
	cli_time(le64_to_cpu(sp->ctime_ns), ts, sizeof(ts));
	printf("ctime: %s\n", ts);
	ret = plx_cachelog_scan(&log, show_record, NULL, &st);
	plx_cachelog_close(&log);
	if (ret) {
		fflush(stdout);
		return cli_liberr();
	}
	printf("end: %s\n", st.why);
	printf("records: %llu, blocks: %llu\n", U(st.records), U(st.blocks));
	return EXIT_OK;
}
