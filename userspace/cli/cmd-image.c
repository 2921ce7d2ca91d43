// SPDX-License-Identifier: GPL-2.0
/* parallax import and export */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "cli.h"

int cmd_import(int argc, char **argv)
{
	struct plx_io_stats st;
	struct plx_store *s;
	const char *file;
	int ret, fd;
	u64 id;

	ret = cli_only_help(argc, argv, 3, 3);
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
		goto out;
	}
	if (plx_import(s, id, fd, &st)) {
		ret = cli_liberr();
	} else {
		fprintf(stderr, "imported %llu bytes into VDI %llu: %llu blocks written, %llu zero blocks skipped\n",
			(unsigned long long)st.bytes, (unsigned long long)id,
			(unsigned long long)st.blocks_written,
			(unsigned long long)st.blocks_sparse);
		ret = EXIT_OK;
	}
	if (fd)
		close(fd);
out:
	plx_close(s);
	return ret;
}

int cmd_export(int argc, char **argv)
{
	struct plx_vdi_record *v;
	struct plx_io_stats st;
	struct plx_store *s;
	struct plx_snap sn;
	const char *what, *file;
	u64 id, root;
	bool is_snap;
	int ret, fd;

	ret = cli_only_help(argc, argv, 3, 3);
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
	if (plx_export(s, root, v->height, le64_to_cpu(v->size), fd, &st))
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
