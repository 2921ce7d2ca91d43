// SPDX-License-Identifier: GPL-2.0
/* parallax import and export */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

/*
 * Upper bounds of the blocks an import of @fd into @v may allocate, to
 * claim enough extents in a cluster: one data block per image block (a
 * pipe may fill the VDI), and per level of the tree at most one node per
 * 512 children plus the two partial ones at the ends.
 */
static void import_needs(const struct plx_vdi_record *v, int fd,
			 struct cli_lock_req *req)
{
	u64 blocks = le64_to_cpu(v->size) / PLX_BLOCK_SIZE, meta = 0, n;
	struct stat st;
	unsigned int l;

	if (!fstat(fd, &st) && S_ISREG(st.st_mode) &&
	    (u64)st.st_size / PLX_BLOCK_SIZE + 1 < blocks)
		blocks = (u64)st.st_size / PLX_BLOCK_SIZE + 1;
	n = blocks;
	for (l = 1; l < v->height; l++) {
		n = n / PLX_PTRS_PER_NODE + 2;
		meta += n;
	}
	req->data_blocks = blocks;
	req->meta_blocks = meta + 1;
}

int cmd_import(int argc, char **argv)
{
	struct cli_lock_req req = { 0 };
	struct cli_cluster cl = { 0 };
	struct plx_vdi_record *v;
	struct cli_progress pr;
	struct plx_io_stats st;
	struct plx_store *s;
	const char *file;
	int ret, fd = 0, unlocked;
	bool quiet;
	u64 id;

	ret = cli_quiet_only(argc, argv, 3, 3, &quiet);
	if (ret >= 0)
		return ret;
	file = argv[optind + 2];
	s = cli_open(argv[optind], true);
	if (!s)
		return EXIT_STORE;
	if (plx_resolve_vdi(s, argv[optind + 1], &id)) {
		ret = cli_liberr();
		goto out;
	}
	fd = strcmp(file, "-") ? open(file, O_RDONLY | O_CLOEXEC) : 0;
	if (fd < 0) {
		ret = cli_err(EXIT_STORE, "cannot open %s: %s", file,
			      strerror(errno));
		fd = 0;
		goto out;
	}
	v = plx_vdi_get(s, id);
	if (!v) {
		ret = cli_liberr();
		goto out;
	}
	import_needs(v, fd, &req);
	req.vdi = id;
	ret = cli_lock(&cl, &s, argv[optind], &req);
	if (ret)
		goto out;
	if (cl.on && (plx_resolve_vdi(s, argv[optind + 1], &id) ||
		      (id != req.vdi && cli_changed(argv[optind + 1])))) {
		ret = cli_liberr();
		goto out;
	}
	cli_progress_init(&pr, quiet);
	ret = plx_import_progress(s, id, fd, &st, cli_progress_fn, &pr);
	cli_progress_done(&pr);
	if (ret) {
		ret = cli_liberr();
	} else {
		fprintf(stderr, "imported %llu bytes into VDI %llu: %llu blocks written, %llu zero blocks skipped\n",
			(unsigned long long)st.bytes, (unsigned long long)id,
			(unsigned long long)st.blocks_written,
			(unsigned long long)st.blocks_sparse);
		ret = EXIT_OK;
	}
out:
	if (fd)
		close(fd);
	plx_close(s);
	unlocked = cli_unlock(&cl);
	return ret ? ret : unlocked;
}

int cmd_export(int argc, char **argv)
{
	struct plx_vdi_record *v;
	struct cli_progress pr;
	struct plx_io_stats st;
	struct plx_store *s;
	struct plx_snap sn;
	const char *what, *file;
	u64 id, root;
	bool is_snap, quiet;
	int ret, fd;

	ret = cli_quiet_only(argc, argv, 3, 3, &quiet);
	if (ret >= 0)
		return ret;
	what = argv[optind + 1];
	file = argv[optind + 2];
	s = cli_open(argv[optind], false);
	if (!s)
		return EXIT_STORE;
	if (cli_resolve(s, what, &id, &sn, &is_snap)) {
		ret = cli_liberr();
		goto out;
	}
	if (is_snap)
		id = sn.vdi;
	v = plx_vdi_get(s, id);
	if (!v) {
		ret = cli_liberr();
		goto out;
	}
	root = is_snap ? le64_to_cpu(sn.rec.root) : le64_to_cpu(v->root);
	fd = strcmp(file, "-") ?
	     open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644) : 1;
	if (fd < 0) {
		ret = cli_err(EXIT_STORE, "cannot create %s: %s", file,
			      strerror(errno));
		goto out;
	}
	cli_progress_init(&pr, quiet);
	ret = plx_export_progress(s, root, v->height, le64_to_cpu(v->size), fd,
				  &st, cli_progress_fn, &pr);
	cli_progress_done(&pr);
	if (ret)
		ret = cli_liberr();
	else
		ret = EXIT_OK;
	if (fd != 1 && close(fd) && !ret)
		ret = cli_err(EXIT_STORE, "closing %s: %s", file,
			      strerror(errno));
out:
	plx_close(s);
	return ret;
}
