// SPDX-License-Identifier: GPL-2.0
/* parallax create, delete, snapshot and label */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cmd_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "from", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli_lock_req req = { .registry = true, .meta_blocks = 1 };
	const char *size_s = NULL, *from = NULL;
	struct cli_cluster cl = { 0 };
	struct plx_store *s;
	struct plx_snap sn;
	u64 size = 0, id;
	int c, ret, unlocked;

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
	/* Both allocate one radix root: a metadata block. */
	ret = cli_lock(&cl, &s, argv[optind], &req);
	if (ret)
		goto out;
	if (from)
		ret = plx_resolve_snap(s, from, false, &sn) ||
		      plx_vdi_clone(s, argv[optind + 1], &sn, &id);
	else
		ret = plx_vdi_create(s, argv[optind + 1], size, &id);
	if (ret)
		ret = cli_liberr();
	else
		printf("%llu\n", (unsigned long long)id);
out:
	plx_close(s);
	unlocked = cli_unlock(&cl);
	return ret ? ret : unlocked;
}

/*
 * What delete's argument names: a snapshot (*is_snap, @sn) or a VDI (@id).
 * An argument with '@' may name a deleted snapshot, to say it is deleted.
 */
static int delete_resolve(struct plx_store *s, const char *arg, u64 *id,
			  struct plx_snap *sn, bool *is_snap)
{
	if (strchr(arg, '@')) {
		*is_snap = true;
		return plx_resolve_snap(s, arg, true, sn);
	}
	return cli_resolve(s, arg, id, sn, is_snap);
}

int cmd_delete(int argc, char **argv)
{
	struct cli_lock_req req = { .registry = true };
	struct cli_cluster cl = { 0 };
	struct plx_snap sn, sn2;
	const char *arg, *dev;
	struct plx_store *s;
	bool is_snap, is_snap2;
	u64 id, id2;
	char sid[48];
	int ret, unlocked;

	ret = cli_only_help(argc, argv, 2, 2);
	if (ret >= 0)
		return ret;
	dev = argv[optind];
	arg = argv[optind + 1];
	s = cli_open(dev, true);
	if (!s)
		return EXIT_STORE;
	if (delete_resolve(s, arg, &id, &sn, &is_snap)) {
		ret = cli_liberr();
		goto out;
	}
	req.vdi = is_snap ? sn.vdi : id;
	ret = cli_lock(&cl, &s, dev, &req);
	if (ret)
		goto out;
	if (cl.on) {
		/* Re-resolve on the store as it is under the locks. */
		if (delete_resolve(s, arg, &id2, &sn2, &is_snap2)) {
			ret = cli_liberr();
			goto out;
		}
		if (is_snap2 != is_snap ||
		    (is_snap ? sn2.vdi != sn.vdi ||
			       sn2.rec.seq != sn.rec.seq : id2 != id)) {
			ret = cli_err(EXIT_STORE,
				      "'%s' changed meaning while the locks were taken; try again",
				      arg);
			goto out;
		}
		sn = sn2;
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
	if (plx_snap_delete(s, &sn)) {
		ret = cli_liberr();
	} else {
		cli_snap_id(&sn, sid, sizeof(sid));
		printf("deleted snapshot %s\n", sid);
	}
out:
	plx_close(s);
	unlocked = cli_unlock(&cl);
	return ret ? ret : unlocked;
}

int cmd_snapshot(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "label", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli_lock_req req = { 0 };
	struct cli_cluster cl = { 0 };
	const char *label = NULL;
	struct plx_store *s;
	u64 id, seq;
	int c, ret, unlocked;

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
	if (plx_resolve_vdi(s, argv[optind + 1], &req.vdi)) {
		ret = cli_liberr();
		goto out;
	}
	/* A new root and a new snapshot-log head block. */
	req.meta_blocks = 2;
	ret = cli_lock(&cl, &s, argv[optind], &req);
	if (ret)
		goto out;
	if (plx_resolve_vdi(s, argv[optind + 1], &id) ||
	    (id != req.vdi && cli_changed(argv[optind + 1])) ||
	    plx_snapshot(s, id, label, &seq)) {
		ret = cli_liberr();
	} else {
		printf("%llu@%llu\n", (unsigned long long)id,
		       (unsigned long long)seq);
		ret = EXIT_OK;
	}
out:
	plx_close(s);
	unlocked = cli_unlock(&cl);
	return ret ? ret : unlocked;
}

int cmd_label(int argc, char **argv)
{
	struct cli_lock_req req = { 0 };
	struct cli_cluster cl = { 0 };
	struct plx_snap sn;
	struct plx_store *s;
	int ret, unlocked;

	ret = cli_only_help(argc, argv, 3, 3);
	if (ret >= 0)
		return ret;
	s = cli_open(argv[optind], true);
	if (!s)
		return EXIT_STORE;
	if (plx_resolve_snap(s, argv[optind + 1], false, &sn)) {
		ret = cli_liberr();
		goto out;
	}
	req.vdi = sn.vdi;
	ret = cli_lock(&cl, &s, argv[optind], &req);
	if (ret)
		goto out;
	if (plx_resolve_snap(s, argv[optind + 1], false, &sn) ||
	    (sn.vdi != req.vdi && cli_changed(argv[optind + 1])) ||
	    plx_snap_label(s, &sn, argv[optind + 2]))
		ret = cli_liberr();
	else
		ret = EXIT_OK;
out:
	plx_close(s);
	unlocked = cli_unlock(&cl);
	return ret ? ret : unlocked;
}
