// SPDX-License-Identifier: GPL-2.0
/* parallax list and snaplog */
#include <stdio.h>

#include "cli.h"

/* Parse --json/--all/--help; returns -1 to go on, else an exit status. */
static int parse_flags(int argc, char **argv, bool *json, bool *all,
		       int nargs)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "all", no_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = cli_getopt(argc, argv, ":h", opts)) != -1) {
		switch (c) {
		case 'j':
			*json = true;
			break;
		case 'a':
			if (!all)
				return cli_err(EXIT_USAGE,
					       "unknown option --all");
			*all = true;
			break;
		case 'h':
			return cli_help(cli_cmd);
		default:
			return EXIT_USAGE;
		}
	}
	if (cli_nargs(argc, argv, nargs, nargs))
		return EXIT_USAGE;
	return -1;
}

/*
 * A cache-dirty VDI is the one state an administrator must act on: no
 * other host can take it until its holder drains the log.
 */
static const char *list_state(const struct plx_vdi_record *v, bool live)
{
	if (!live)
		return "deleted";
	if (plx_vdi_cache_dirty(v))
		return "cache-dirty";
	return v->holder ? "in-use" : "-";
}

int cmd_list(int argc, char **argv)
{
	bool json = false, all = false, first = true;
	struct plx_store *s;
	struct plx_snaplist l;
	int ret = EXIT_OK;
	u64 id, i;

	ret = parse_flags(argc, argv, &json, &all, 1);
	if (ret >= 0)
		return ret;
	ret = EXIT_OK;
	s = cli_open(argv[optind], false);
	if (!s)
		return EXIT_STORE;
	if (json)
		printf("[");
	else
		printf("%-5s %-24s %10s %6s %-10s %s\n", "ID", "NAME", "SIZE",
		       "SNAPS", "PARENT", "STATE");
	for (id = 1; id <= s->geo.registry_slots; id++) {
		struct plx_slot *sl = &s->slots[id - 1];
		struct plx_vdi_record *v = &sl->rec;
		char name[PLX_NAME_LEN + 1], parent[48] = "-", hs[32];
		long long snaps = -1;
		bool live;

		if (sl->state == PLX_SLOT_BAD) {
			plx_vdi_get(s, id);
			ret = cli_liberr();
			continue;
		}
		if (sl->state != PLX_SLOT_VDI)
			continue;
		live = plx_vdi_live(v);
		if (!live && !all)
			continue;
		plx_copy_name(name, v->name, PLX_NAME_LEN);
		if (v->parent_vdi)
			snprintf(parent, sizeof(parent), "%llu@%llu",
				 (unsigned long long)le64_to_cpu(v->parent_vdi),
				 (unsigned long long)le64_to_cpu(v->parent_seq));
		if (!plx_snaplog_load(s, id, &l)) {
			snaps = 0;
			for (i = 0; i < l.count; i++)
				if (!(le32_to_cpu(l.snaps[i].rec.flags) &
				      PLX_SNAP_DELETED))
					snaps++;
			plx_snaplist_free(&l);
		} else if (live) {
			ret = cli_liberr();
		}
		if (json) {
			printf("%s\n {\"id\": %llu, \"name\": ", first ? "" : ",",
			       (unsigned long long)id);
			plx_json_str(stdout, name);
			printf(", \"size\": %llu, \"height\": %u, \"root\": %llu, \"snapshots\": ",
			       (unsigned long long)le64_to_cpu(v->size),
			       v->height,
			       (unsigned long long)le64_to_cpu(v->root));
			if (snaps < 0)
				printf("null");
			else
				printf("%lld", snaps);
			printf(", \"snap_seq\": %llu, \"parent\": ",
			       (unsigned long long)le64_to_cpu(v->snap_seq));
			if (v->parent_vdi)
				plx_json_str(stdout, parent);
			else
				printf("null");
			printf(", \"deleted\": %s, \"holder\": %u, \"generation\": %llu, \"cache_dirty\": %s}",
			       live ? "false" : "true",
			       le32_to_cpu(v->holder),
			       (unsigned long long)le64_to_cpu(v->generation),
			       plx_vdi_cache_dirty(v) ? "true" : "false");
		} else {
			char sn[24];

			if (snaps < 0)
				snprintf(sn, sizeof(sn), "?");
			else
				snprintf(sn, sizeof(sn), "%lld", snaps);
			printf("%-5llu %-24s %10s %6s %-10s %s\n",
			       (unsigned long long)id, name,
			       plx_human_size(le64_to_cpu(v->size), hs,
					      sizeof(hs)),
			       sn, parent, list_state(v, live));
		}
		first = false;
	}
	if (json)
		printf("%s]\n", first ? "" : "\n");
	plx_close(s);
	return ret;
}

int cmd_snaplog(int argc, char **argv)
{
	bool json = false;
	struct plx_store *s;
	struct plx_snaplist l;
	u64 id, i;
	int ret;

	ret = parse_flags(argc, argv, &json, NULL, 2);
	if (ret >= 0)
		return ret;
	s = cli_open(argv[optind], false);
	if (!s)
		return EXIT_STORE;
	if (plx_resolve_vdi(s, argv[optind + 1], &id) ||
	    plx_snaplog_load(s, id, &l)) {
		ret = cli_liberr();
		plx_close(s);
		return ret;
	}
	if (json)
		printf("[");
	else
		printf("%-12s %-20s %-32s %-8s %s\n", "SNAPSHOT", "TAKEN",
		       "LABEL", "STATE", "ROOT");
	for (i = 0; i < l.count; i++) {
		struct plx_snap *sn = &l.snaps[i];
		char sid[48], when[32], label[PLX_LABEL_LEN + 1];
		bool del = le32_to_cpu(sn->rec.flags) & PLX_SNAP_DELETED;

		cli_snap_id(sn, sid, sizeof(sid));
		cli_time(le64_to_cpu(sn->rec.timestamp_ns), when, sizeof(when));
		plx_copy_name(label, sn->rec.label, PLX_LABEL_LEN);
		if (json) {
			printf("%s\n {\"id\": \"%s\", \"vdi\": %llu, \"seq\": %llu, \"taken\": \"%s\", \"timestamp_ns\": %llu, \"label\": ",
			       i ? "," : "", sid, (unsigned long long)id,
			       (unsigned long long)le64_to_cpu(sn->rec.seq),
			       when,
			       (unsigned long long)le64_to_cpu(sn->rec.timestamp_ns));
			if (label[0])
				plx_json_str(stdout, label);
			else
				printf("null");
			printf(", \"deleted\": %s, \"root\": %llu, \"log_block\": %llu}",
			       del ? "true" : "false",
			       (unsigned long long)le64_to_cpu(sn->rec.root),
			       (unsigned long long)sn->log_block);
		} else {
			printf("%-12s %-20s %-32s %-8s %llu\n", sid, when,
			       label[0] ? label : "-", del ? "deleted" : "-",
			       (unsigned long long)le64_to_cpu(sn->rec.root));
		}
	}
	if (json)
		printf("%s]\n", l.count ? "\n" : "");
	plx_snaplist_free(&l);
	plx_close(s);
	return EXIT_OK;
}
