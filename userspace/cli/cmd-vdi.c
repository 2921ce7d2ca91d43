// SPDX-License-Identifier: GPL-2.0
/* parallax create, delete, snapshot and label */
#include <stdio.h>

#include "cli.h"

int cmd_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "from", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *size_s = NULL, *from = NULL;
	struct plx_store *s;
	struct plx_snap sn;
	u64 size = 0, id;
	int c, ret;

	while ((c = cli_getopt(argc, argv, ":h", opts)) != -1) {
		switch (c) {
		case 's':
			size_s = optarg;
			break;
		case 'f':
			from = optarg;
			break;
		case 'h':
			return cli_help(cli_cmd);
		default:
			return EXIT_USAGE;
		}
	}
	if (cli_nargs(argc, argv, 2, 2))
		return EXIT_USAGE;
	if (!size_s == !from)
		return cli_err(EXIT_USAGE, "give exactly one of --size and --from");
	if (size_s) {
		if (plx_parse_size(size_s, &size))
			return cli_liberr();
		if (!size || size & (PLX_BLOCK_SIZE - 1))
			return cli_err(EXIT_USAGE,
				       "size '%s' is not a non-zero multiple of 4 KiB",
				       size_s);
		if (!plx_height_for_size(size))
			return cli_err(EXIT_USAGE,
				       "size '%s' is larger than 256 TiB", size_s);
	}
	s = cli_open(argv[optind], true);
	if (!s)
		return EXIT_STORE;
	if (from)
		ret = plx_resolve_snap(s, from, false, &sn) ||
		      plx_vdi_clone(s, argv[optind + 1], &sn, &id);
	else
		ret = plx_vdi_create(s, argv[optind + 1], size, &id);
	if (ret)
		ret = cli_liberr();
	else
		printf("%llu\n", (unsigned long long)id);
	plx_close(s);
	return ret;
}

int cmd_delete(int argc, char **argv)
{
	const char *arg;
	struct plx_store *s;
	struct plx_snap sn;
	char sid[48];
	bool is_snap;
	u64 id;
	int ret;

	ret = cli_only_help(argc, argv, 2, 2);
	if (ret >= 0)
		return ret;
	arg = argv[optind + 1];
	s = cli_open(argv[optind], true);
	if (!s)
		return EXIT_STORE;
	if (strchr(arg, '@')) {
		/* Deleted snapshots resolve, to say they are deleted already. */
		ret = plx_resolve_snap(s, arg, true, &sn) ||
		      plx_snap_delete(s, &sn);
		goto snap;
	}
	if (cli_resolve(s, arg, &id, &sn, &is_snap)) {
		ret = cli_liberr();
		goto out;
	}
	if (!is_snap) {
		if (plx_vdi_delete(s, id)) {
			ret = cli_liberr();
			goto out;
		}
		printf("deleted VDI %llu\n", (unsigned long long)id);
		ret = EXIT_OK;
		goto out;
	}
	ret = plx_snap_delete(s, &sn);
snap:
	if (ret) {
		ret = cli_liberr();
	} else {
		cli_snap_id(&sn, sid, sizeof(sid));
		printf("deleted snapshot %s\n", sid);
	}
out:
	plx_close(s);
	return ret;
}

int cmd_snapshot(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "label", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *label = NULL;
	struct plx_store *s;
	u64 id, seq;
	int c, ret;

	while ((c = cli_getopt(argc, argv, ":h", opts)) != -1) {
		switch (c) {
		case 'l':
			label = optarg;
			break;
		case 'h':
			return cli_help(cli_cmd);
		default:
			return EXIT_USAGE;
		}
	}
	if (cli_nargs(argc, argv, 2, 2))
		return EXIT_USAGE;
	s = cli_open(argv[optind], true);
	if (!s)
		return EXIT_STORE;
	if (plx_resolve_vdi(s, argv[optind + 1], &id) ||
	    plx_snapshot(s, id, label, &seq)) {
		ret = cli_liberr();
	} else {
		printf("%llu@%llu\n", (unsigned long long)id,
		       (unsigned long long)seq);
		ret = EXIT_OK;
	}
	plx_close(s);
	return ret;
}

int cmd_label(int argc, char **argv)
{
	struct plx_store *s;
	struct plx_snap sn;
	int ret;

	ret = cli_only_help(argc, argv, 3, 3);
	if (ret >= 0)
		return ret;
	s = cli_open(argv[optind], true);
	if (!s)
		return EXIT_STORE;
	if (plx_resolve_snap(s, argv[optind + 1], false, &sn) ||
	    plx_snap_label(s, &sn, argv[optind + 2]))
		ret = cli_liberr();
	else
		ret = EXIT_OK;
	plx_close(s);
	return ret;
}
