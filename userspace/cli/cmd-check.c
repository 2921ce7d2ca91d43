// SPDX-License-Identifier: GPL-2.0
/* parallax check */
#include <stdio.h>

#include "cli.h"

struct check_out {
	bool json;
	u64 n;
	struct cli_progress pr;
};

static void report(void *arg, u64 block, const char *msg)
{
	struct check_out *o = arg;

	/* Problems go to stdout, maybe the same terminal as the bar. */
	cli_progress_clear(&o->pr);
	if (o->json) {
		printf("%s\n  {\"block\": %llu, \"message\": ", o->n ? "," : "",
		       (unsigned long long)block);
		plx_json_str(stdout, msg);
		printf("}");
	} else {
		printf("%s\n", msg);
	}
	o->n++;
}

int cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct check_out o = { 0 };
	struct plx_check_stats st;
	struct plx_store *s;
	bool quiet = false;
	int c, ret;

	while ((c = cli_getopt(argc, argv, ":hq", opts)) != -1) {
		switch (c) {
		case 'j':
			o.json = true;
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
	s = plx_open(argv[optind], PLX_OPEN_RDONLY);
	if (!s) {
		/* The superblock is a problem like any other: report it. */
		if (o.json) {
			printf("{\"clean\": false, \"problems\": [");
			report(&o, 0, plx_errmsg());
			printf("\n]}\n");
			return EXIT_STORE;
		}
		return cli_liberr();
	}
	if (o.json)
		printf("{\"problems\": [");
	cli_progress_init(&o.pr, quiet);
	ret = plx_check_progress(s, report, &o, &st, cli_progress_fn, &o.pr);
	cli_progress_done(&o.pr);
	if (ret) {
		plx_close(s);
		if (o.json)
			printf("]}\n");
		return cli_liberr();
	}
	if (o.json) {
		printf("%s], \"clean\": %s, \"vdis\": %llu, \"snapshots\": %llu, \"nodes\": %llu, \"data_blocks\": %llu, \"log_blocks\": %llu, \"allocated\": %llu, \"garbage\": %llu}\n",
		       o.n ? "\n" : "", st.problems ? "false" : "true",
		       (unsigned long long)st.vdis,
		       (unsigned long long)st.snapshots,
		       (unsigned long long)st.nodes,
		       (unsigned long long)st.data_blocks,
		       (unsigned long long)st.log_blocks,
		       (unsigned long long)st.allocated,
		       (unsigned long long)st.garbage);
	} else {
		printf("%s: %llu problem%s; %llu VDIs, %llu snapshots, %llu radix nodes, %llu data blocks, %llu log blocks; %llu blocks allocated, %llu unreachable (garbage)\n",
		       st.problems ? "NOT CLEAN" : "clean",
		       (unsigned long long)st.problems,
		       st.problems == 1 ? "" : "s",
		       (unsigned long long)st.vdis,
		       (unsigned long long)st.snapshots,
		       (unsigned long long)st.nodes,
		       (unsigned long long)st.data_blocks,
		       (unsigned long long)st.log_blocks,
		       (unsigned long long)st.allocated,
		       (unsigned long long)st.garbage);
	}
	plx_close(s);
	return st.problems ? EXIT_STORE : EXIT_OK;
}
