// SPDX-License-Identifier: GPL-2.0
/*
 * parallax attach and detach: the single-host helper.
 *
 * attach records this host's claim on a VDI and on fresh extents in the
 * catalogue, creates the dm device through libdevmapper and grants it the
 * extents; detach undoes all three.  What attach claimed is remembered in
 * a state file under /run/parallax, so that detach releases exactly that,
 * even when other VDIs of the same host are attached.  The lock manager
 * (a later piece) takes over the claims when it runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <libdevmapper.h>
#include <linux/dm-ioctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#define PLX_MAX_ATTACH_EXTENTS	64

struct attach_state {
	char dev[4096];
	u64 vdi;
	u32 host;
	bool read_only;
	unsigned int nr;
	u64 extents[PLX_MAX_ATTACH_EXTENTS];
};

static const char *run_dir(void)
{
	const char *d = getenv("PARALLAX_RUN_DIR");

	return d && *d ? d : "/run/parallax";
}

static int host_id(const char *opt, u32 *out)
{
	const char *src = opt ? opt : getenv("PARALLAX_HOST_ID");
	char buf[32] = "";
	u64 v;

	if (!src) {
		FILE *f = fopen("/etc/parallax/host-id", "r");

		if (f) {
			if (fgets(buf, sizeof(buf), f))
				buf[strcspn(buf, " \t\n")] = '\0';
			fclose(f);
			src = buf;
		}
	}
	if (!src || !*src) {
		*out = 1;
		return 0;
	}
	if (plx_parse_u64(src, &v) || !v || v > UINT32_MAX)
		return cli_err(EXIT_USAGE, "host id '%s' is not in 1..4294967295",
			       src);
	*out = v;
	return 0;
}

static bool dm_name_ok(const char *name)
{
	size_t i, n = strlen(name);

	if (!n || n >= DM_NAME_LEN || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	for (i = 0; i < n; i++)
		if (name[i] == '/' || name[i] <= ' ')
			return false;
	return true;
}

/* ---- libdevmapper ------------------------------------------------------ */

static int dm_run(struct dm_task *dmt, bool wait_udev)
{
	uint32_t cookie = 0;
	int ok;

	if (wait_udev && !dm_task_set_cookie(dmt, &cookie, 0))
		return -1;
	ok = dm_task_run(dmt);
	if (wait_udev)
		dm_udev_wait(cookie);
	return ok ? 0 : -1;
}

static bool dm_exists(const char *name)
{
	struct dm_task *dmt = dm_task_create(DM_DEVICE_INFO);
	struct dm_info info = { 0 };
	bool exists = false;

	if (dmt && dm_task_set_name(dmt, name) && dm_task_run(dmt) &&
	    dm_task_get_info(dmt, &info))
		exists = info.exists;
	if (dmt)
		dm_task_destroy(dmt);
	return exists;
}

static int dm_create(const char *name, u64 sectors, const char *params,
		     bool read_only)
{
	struct dm_task *dmt = dm_task_create(DM_DEVICE_CREATE);
	int r = -1;

	if (dmt && dm_task_set_name(dmt, name) &&
	    (!read_only || dm_task_set_ro(dmt)) &&
	    dm_task_add_target(dmt, 0, sectors, "parallax", params))
		r = dm_run(dmt, true);
	if (dmt)
		dm_task_destroy(dmt);
	return r;
}

static int dm_remove(const char *name)
{
	struct dm_task *dmt = dm_task_create(DM_DEVICE_REMOVE);
	int r = -1;

	if (dmt && dm_task_set_name(dmt, name))
		r = dm_run(dmt, true);
	if (dmt)
		dm_task_destroy(dmt);
	return r;
}

static int dm_message(const char *name, const char *msg)
{
	struct dm_task *dmt = dm_task_create(DM_DEVICE_TARGET_MSG);
	int r = -1;

	if (dmt && dm_task_set_name(dmt, name) && dm_task_set_sector(dmt, 0) &&
	    dm_task_set_message(dmt, msg) && dm_task_run(dmt))
		r = 0;
	if (dmt)
		dm_task_destroy(dmt);
	return r;
}

/* ---- State files ------------------------------------------------------- */

static void state_path(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", run_dir(), name);
}

static int state_save(const char *name, const struct attach_state *st)
{
	char path[4200];
	unsigned int i;
	FILE *f;

	if (mkdir(run_dir(), 0755) && errno != EEXIST)
		return cli_err(EXIT_STORE, "cannot create %s: %s", run_dir(),
			       strerror(errno));
	state_path(name, path, sizeof(path));
	f = fopen(path, "w");
	if (!f)
		return cli_err(EXIT_STORE, "cannot write %s: %s", path,
			       strerror(errno));
	fprintf(f, "dev %s\nvdi %llu\nhost %u\nread_only %d\nextents",
		st->dev, (unsigned long long)st->vdi, st->host, st->read_only);
	for (i = 0; i < st->nr; i++)
		fprintf(f, " %llu", (unsigned long long)st->extents[i]);
	fprintf(f, "\n");
	if (fclose(f))
		return cli_err(EXIT_STORE, "cannot write %s", path);
	return 0;
}

static int state_load(const char *name, struct attach_state *st)
{
	char path[4200], line[4200];
	unsigned long long v;
	int n, off, ro = 0;
	FILE *f;

	memset(st, 0, sizeof(*st));
	state_path(name, path, sizeof(path));
	f = fopen(path, "r");
	if (!f)
		return cli_err(EXIT_STORE,
			       "%s was not attached by parallax attach (no %s)",
			       name, path);
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!strncmp(line, "dev ", 4)) {
			if (strlen(line + 4) >= sizeof(st->dev))
				break;
			memcpy(st->dev, line + 4, strlen(line + 4) + 1);
		} else if (sscanf(line, "vdi %llu", &v) == 1) {
			st->vdi = v;
		} else if (sscanf(line, "host %llu", &v) == 1) {
			st->host = v;
		} else if (sscanf(line, "read_only %d", &ro) == 1) {
			st->read_only = ro;
		} else if (!strncmp(line, "extents", 7)) {
			for (off = 7; st->nr < PLX_MAX_ATTACH_EXTENTS &&
			     sscanf(line + off, " %llu%n", &v, &n) == 1; off += n)
				st->extents[st->nr++] = v;
		}
	}
	fclose(f);
	if (!st->dev[0] || !st->vdi || !st->host)
		return cli_err(EXIT_STORE, "%s is damaged", path);
	return 0;
}

/* ---- Claims ------------------------------------------------------------ */

static struct plx_extent_entry *cat_entry(struct plx_store *s, u64 ext)
{
	return &s->cat[ext / PLX_CATALOGUE_PER_BLOCK]
		.entries[ext % PLX_CATALOGUE_PER_BLOCK];
}

static u64 extent_free_blocks(struct plx_store *s, u64 ext)
{
	u64 base = ext << s->geo.extent_shift, b, n = 0;

	if (!plx_bitmap_load(s, ext))
		return 0;
	for (b = base + s->geo.bitmap_blocks; b < base + s->geo.extent_blocks; b++)
		n += !plx_bitmap_test(s, b);
	return n;
}

/*
 * Claim an unheld extent for @type: a free one if there is one (typing it),
 * else the unheld extent of that type with the most free blocks.
 */
static int claim_extent(struct plx_store *s, enum plx_extent_type type,
			u32 host, u64 *out)
{
	u64 ext, best = 0, best_free = 0;
	struct plx_extent_entry *e;

	for (ext = s->geo.system_extents; ext < s->geo.nr_extents; ext++) {
		e = cat_entry(s, ext);
		if (e->holder)
			continue;
		if (e->type == PLX_EXT_FREE) {
			best = ext;
			best_free = s->geo.extent_blocks;
			break;
		}
		if (e->type == type) {
			u64 n = extent_free_blocks(s, ext);

			if (n > best_free) {
				best = ext;
				best_free = n;
			}
		}
	}
	if (!best_free)
		return cli_err(EXIT_STORE, "no unheld %s extent has free space",
			       type == PLX_EXT_DATA ? "data" : "metadata");
	e = cat_entry(s, best);
	e->type = type;
	e->holder = cpu_to_le32(host);
	e->generation = cpu_to_le64(le64_to_cpu(e->generation) + 1);
	s->ext_type[best] = type;
	s->cat_dirty[best / PLX_CATALOGUE_PER_BLOCK] = 1;
	*out = best;
	return 0;
}

static void release_extents(struct plx_store *s, const struct attach_state *st)
{
	unsigned int i;

	for (i = 0; i < st->nr; i++) {
		struct plx_extent_entry *e;

		if (st->extents[i] >= s->geo.nr_extents)
			continue;
		e = cat_entry(s, st->extents[i]);
		if (le32_to_cpu(e->holder) != st->host)
			continue;
		e->holder = 0;
		s->cat_dirty[st->extents[i] / PLX_CATALOGUE_PER_BLOCK] = 1;
	}
}

static int set_vdi_holder(struct plx_store *s, u64 id, u32 holder)
{
	struct plx_vdi_record *v = plx_vdi_get(s, id);

	if (!v)
		return -1;
	v->holder = cpu_to_le32(holder);
	if (holder)
		v->lock_generation = cpu_to_le64(le64_to_cpu(v->lock_generation) + 1);
	v->generation = cpu_to_le64(le64_to_cpu(v->generation) + 1);
	return plx_vdi_write(s, v);
}

/*
 * Record the claims and close the store before the kernel opens it: the
 * target re-reads the VDI record and catalogue from disk.
 */
static int claim(const char *dev, const char *vdi_arg, u32 host,
		 unsigned int nr_data, unsigned int nr_meta, bool read_only,
		 struct attach_state *st, u64 *size)
{
	struct plx_vdi_record *v;
	struct plx_store *s;
	unsigned int i;
	u32 holder;
	int ret = EXIT_STORE;

	s = cli_open(dev, !read_only);
	if (!s)
		return EXIT_STORE;
	if (plx_resolve_vdi(s, vdi_arg, &st->vdi)) {
		ret = cli_liberr();
		goto out;
	}
	v = plx_vdi_get(s, st->vdi);
	*size = le64_to_cpu(v->size);
	holder = le32_to_cpu(v->holder);
	if (read_only) {
		ret = 0;
		goto out;
	}
	if (holder && holder != host) {
		cli_err(EXIT_STORE, "VDI %llu is held by host %u; detach it there first",
			(unsigned long long)st->vdi, holder);
		goto out;
	}
	if (plx_store_sane(s)) {
		ret = cli_liberr();
		goto out;
	}
	for (i = 0; i < nr_data + nr_meta; i++) {
		if (claim_extent(s, i < nr_data ? PLX_EXT_DATA : PLX_EXT_METADATA,
				 host, &st->extents[st->nr]))
			goto out;
		st->nr++;
	}
	if (set_vdi_holder(s, st->vdi, host) || plx_sync(s)) {
		ret = cli_liberr();
		goto out;
	}
	ret = 0;
out:
	plx_close(s);
	return ret;
}

static int unclaim(const struct attach_state *st)
{
	struct plx_vdi_record *v;
	struct plx_store *s;
	int ret = 0;

	if (st->read_only)
		return 0;
	s = cli_open(st->dev, true);
	if (!s)
		return EXIT_STORE;
	release_extents(s, st);
	v = plx_vdi_get(s, st->vdi);
	if (v && le32_to_cpu(v->holder) == st->host &&
	    set_vdi_holder(s, st->vdi, 0))
		ret = cli_liberr();
	if (!ret && plx_sync(s))
		ret = cli_liberr();
	plx_close(s);
	return ret;
}

int cmd_attach(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "host-id", required_argument, NULL, 'H' },
		{ "data-extents", required_argument, NULL, 'e' },
		{ "metadata-extents", required_argument, NULL, 'm' },
		{ "read-only", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *name = NULL, *host_s = NULL;
	struct attach_state st = { 0 };
	char params[4300], msg[64];
	u64 nr_data = 1, nr_meta = 1, size = 0;
	unsigned int i;
	struct stat sb;
	int c, ret;

	while ((c = cli_getopt(argc, argv, ":h", opts)) != -1) {
		switch (c) {
		case 'n':
			name = optarg;
			break;
		case 'H':
			host_s = optarg;
			break;
		case 'e':
			if (plx_parse_u64(optarg, &nr_data) || !nr_data ||
			    nr_data >= PLX_MAX_ATTACH_EXTENTS)
				return cli_err(EXIT_USAGE,
					       "--data-extents must be 1..%d",
					       PLX_MAX_ATTACH_EXTENTS - 1);
			break;
		case 'm':
			if (plx_parse_u64(optarg, &nr_meta) || !nr_meta ||
			    nr_meta >= PLX_MAX_ATTACH_EXTENTS)
				return cli_err(EXIT_USAGE,
					       "--metadata-extents must be 1..%d",
					       PLX_MAX_ATTACH_EXTENTS - 1);
			break;
		case 'r':
			st.read_only = true;
			break;
		case 'h':
			return cli_help(cli_cmd);
		default:
			return EXIT_USAGE;
		}
	}
	if (cli_nargs(argc, argv, 2, 2))
		return EXIT_USAGE;
	if (host_id(host_s, &st.host))
		return EXIT_USAGE;
	if (snprintf(st.dev, sizeof(st.dev), "%s", argv[optind]) >= (int)sizeof(st.dev))
		return cli_err(EXIT_USAGE, "device path too long");
	if (stat(st.dev, &sb))
		return cli_err(EXIT_STORE, "%s: %s", st.dev, strerror(errno));
	if (!S_ISBLK(sb.st_mode))
		return cli_err(EXIT_USAGE,
			       "%s is not a block device; the kernel target needs one (losetup can make one)",
			       st.dev);
	if (!name)
		name = argv[optind + 1];
	if (!dm_name_ok(name))
		return cli_err(EXIT_USAGE, "'%s' is not a valid device name", name);
	if (dm_exists(name))
		return cli_err(EXIT_STORE, "device %s already exists", name);

	if (nr_data + nr_meta > PLX_MAX_ATTACH_EXTENTS)
		return cli_err(EXIT_USAGE, "at most %d extents in all",
			       PLX_MAX_ATTACH_EXTENTS);
	ret = claim(st.dev, argv[optind + 1], st.host, nr_data, nr_meta,
		    st.read_only, &st, &size);
	if (ret)
		return ret;

	snprintf(params, sizeof(params), "%s %llu", st.dev,
		 (unsigned long long)st.vdi);
	if (st.host != 1 && !st.read_only)
		snprintf(params + strlen(params), sizeof(params) - strlen(params),
			 " 2 host_id %u", st.host);
	if (dm_create(name, size >> 9, params, st.read_only)) {
		cli_err(EXIT_STORE, "cannot create device %s", name);
		unclaim(&st);
		return EXIT_STORE;
	}
	for (i = 0; i < st.nr; i++) {
		snprintf(msg, sizeof(msg), "add_extent %llu",
			 (unsigned long long)st.extents[i]);
		if (dm_message(name, msg)) {
			cli_err(EXIT_STORE, "device %s refused extent %llu", name,
				(unsigned long long)st.extents[i]);
			dm_remove(name);
			unclaim(&st);
			return EXIT_STORE;
		}
	}
	ret = state_save(name, &st);
	if (ret) {
		dm_remove(name);
		unclaim(&st);
		return ret;
	}
	printf("%s/%s\n", dm_dir(), name);
	return 0;
}

int cmd_detach(int argc, char **argv)
{
	struct attach_state st;
	char path[4200];
	int ret;

	ret = cli_only_help(argc, argv, 1, 1);
	if (ret >= 0)
		return ret;
	if (!dm_name_ok(argv[optind]))
		return cli_err(EXIT_USAGE, "'%s' is not a valid device name",
			       argv[optind]);
	ret = state_load(argv[optind], &st);
	if (ret)
		return ret;
	if (dm_exists(argv[optind]) && dm_remove(argv[optind]))
		return cli_err(EXIT_STORE, "cannot remove device %s (is it in use?)",
			       argv[optind]);
	ret = unclaim(&st);
	if (ret)
		return ret;
	state_path(argv[optind], path, sizeof(path));
	unlink(path);
	return 0;
}
