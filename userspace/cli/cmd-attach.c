// SPDX-License-Identifier: GPL-2.0
/*
 * parallax attach and detach.
 *
 * On a store without a lock manager (empty lockd_addr in the superblock)
 * this is the single-host helper: attach records this host's claim on a
 * VDI and on fresh extents in the catalogue, creates the dm device through
 * libdevmapper and grants it the extents; detach undoes all three.  What
 * attach claimed is remembered in a state file under /run/parallax, so
 * that detach releases exactly that, even when other VDIs of the same host
 * are attached.
 *
 * On a store with a lock manager the catalogue belongs to parallax-lockd,
 * and the locks must be renewed for as long as the device exists, which a
 * command cannot do: both ask this host's parallaxd over its control
 * socket instead (Documentation/cluster.rst).
 */
#include <errno.h>
#include <fcntl.h>
#include <libdevmapper.h>
#include <linux/dm-ioctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "dmdev.h"

#define PLX_MAX_ATTACH_EXTENTS	64

struct attach_state {
	char dev[4096];
	u64 vdi;
	u32 host;
	bool read_only;
	unsigned int nr;
	u64 extents[PLX_MAX_ATTACH_EXTENTS];
	/* For the table and the dm uuid (not kept in the state file). */
	u8 uuid[16];
	u64 lock_gen;
	u64 gens[PLX_MAX_ATTACH_EXTENTS];
};

static const char *run_dir(void)
{
	const char *d = getenv("PARALLAX_RUN_DIR");

	return d && *d ? d : "/run/parallax";
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
		e = cli_cat_entry(s, ext);
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
	e = cli_cat_entry(s, best);
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
		e = cli_cat_entry(s, st->extents[i]);
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

static bool rw_attached_here(dev_t rdev, u64 vdi, char *who, size_t len);

/*
 * Record the claims and close the store before the kernel opens it: the
 * target re-reads the VDI record and catalogue from disk.
 */
static int claim(const char *dev, dev_t rdev, const char *vdi_arg, u32 host,
		 unsigned int nr_data, unsigned int nr_meta, bool read_only,
		 bool cached, struct attach_state *st, u64 *size)
{
	char who[DM_NAME_LEN];
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
	memcpy(st->uuid, s->geo.uuid, sizeof(st->uuid));
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
	if (holder == host && rw_attached_here(rdev, st->vdi, who, sizeof(who))) {
		cli_err(EXIT_STORE, "VDI %llu is already attached read-write on this host as %s",
			(unsigned long long)st->vdi, who);
		goto out;
	}
	/* The kernel refuses it too, but only with EBUSY. */
	if (plx_vdi_cache_dirty(v) && !cached) {
		cli_err(EXIT_STORE, "VDI %llu is cache-dirty: a local cache log may hold writes the store lacks; attach it with --local-cache LOG, the log that holds them",
			(unsigned long long)st->vdi);
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
		st->gens[st->nr] = le64_to_cpu(cli_cat_entry(s,
					st->extents[st->nr])->generation);
		st->nr++;
	}
	if (set_vdi_holder(s, st->vdi, host) || plx_sync(s)) {
		ret = cli_liberr();
		goto out;
	}
	st->lock_gen = le64_to_cpu(plx_vdi_get(s, st->vdi)->lock_generation);
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

/* ---- parallaxd --------------------------------------------------------- */

#define DAEMON_TIMEOUT_S	120

static void daemon_sock(char *buf, size_t len)
{
	snprintf(buf, len, "%s/parallaxd.sock", run_dir());
}

/*
 * The lock manager address of the store at @dev into @addr; false if it
 * has none or cannot be opened (the single-host path then reports why).
 */
static bool store_lockd(const char *dev, char *addr, size_t len)
{
	struct plx_store *s = plx_open(dev, PLX_OPEN_RDONLY);
	bool on;

	addr[0] = '\0';
	if (!s)
		return false;
	on = cli_lockd_addr(s, addr, len);
	plx_close(s);
	return on;
}

/*
 * Send one request line to parallaxd and read its answer: info lines go
 * to stderr, "ok [...]" returns 0 with the rest in @result, "error MSG"
 * is reported.  @lockd names the store's lock manager in the message that
 * parallaxd is not running, when it is known.
 */
static int daemon_call(const char *req, const char *lockd, char *result,
		       size_t len)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = DAEMON_TIMEOUT_S };
	char path[sizeof(sun.sun_path) + 64], line[4200];
	int fd, ret = EXIT_STORE;
	FILE *f;

	daemon_sock(path, sizeof(path));
	if (strlen(path) >= sizeof(sun.sun_path))
		return cli_err(EXIT_USAGE, "control socket path %s is too long",
			       path);
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return cli_err(EXIT_STORE, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		int e = errno;

		close(fd);
		if (lockd && *lockd)
			return cli_err(EXIT_STORE,
				       "parallaxd is not running (%s: %s); VDIs of a store with a lock manager (%s) are attached through it",
				       path, strerror(e), lockd);
		return cli_err(EXIT_STORE, "parallaxd is not running (%s: %s)",
			       path, strerror(e));
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	f = fdopen(fd, "r+");
	if (!f) {
		close(fd);
		return cli_err(EXIT_STORE, "fdopen: %s", strerror(errno));
	}
	if (fprintf(f, "%s\n", req) < 0 || fflush(f)) {
		ret = cli_err(EXIT_STORE, "cannot talk to parallaxd at %s: %s",
			      path, strerror(errno));
		goto out;
	}
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!strcmp(line, "ok") || !strncmp(line, "ok ", 3)) {
			snprintf(result, len, "%s", line[2] ? line + 3 : "");
			ret = 0;
			goto out;
		}
		if (!strncmp(line, "error", 5)) {
			ret = cli_err(EXIT_STORE, "parallaxd: %s",
				      line[5] ? line + 6 : "failed");
			goto out;
		}
		fprintf(stderr, "parallaxd: %s\n", line);
	}
	ret = cli_err(EXIT_STORE, "parallaxd at %s closed the connection without an answer%s%s",
		      path, ferror(f) ? ": " : "",
		      ferror(f) ? strerror(errno) : "");
out:
	fclose(f);
	return ret;
}

static int attach_daemon(const char *dev, const char *vdi, const char *name,
			 bool read_only, u64 wait_s, const char *cache,
			 const char *cache_mode, const char *lockd)
{
	char real[4096], req[4400], result[4200];
	int ret;

	/* parallaxd runs elsewhere: give it a path that means the same. */
	if (!realpath(dev, real))
		return cli_err(EXIT_STORE, "%s: %s", dev, strerror(errno));
	if (strpbrk(real, " \t\n") || strpbrk(vdi, " \t\n"))
		return cli_err(EXIT_USAGE,
			       "parallaxd's requests are words: no blanks in the device path or VDI");
	snprintf(req, sizeof(req), "attach %s %s %s %s", real, vdi, name,
		 read_only ? "ro" : "rw");
	if (wait_s)
		snprintf(req + strlen(req), sizeof(req) - strlen(req),
			 " wait=%llu", (unsigned long long)wait_s);
	if (cache)
		snprintf(req + strlen(req), sizeof(req) - strlen(req),
			 " cache=%s", cache);
	if (cache_mode)
		snprintf(req + strlen(req), sizeof(req) - strlen(req),
			 " cache_mode=%s", cache_mode);
	ret = daemon_call(req, lockd, result, sizeof(result));
	if (ret)
		return ret;
	/* "PATH pending": another host still holds the VDI (live migration). */
	if (strlen(result) > 8 && !strcmp(result + strlen(result) - 8, " pending")) {
		result[strlen(result) - 8] = '\0';
		fprintf(stderr, "parallax: %s: VDI %s is held by another host; the device is read-only and suspended until it is handed over (at most %llu s)\n",
			name, vdi, (unsigned long long)wait_s);
	}
	printf("%s\n", result);
	return 0;
}

/*
 * Is VDI @vdi of the store on block device @rdev already attached
 * read-write on this host?  The catalogue cannot say (a host's claims look
 * alike), so look at this host's parallax tables.
 */
static bool rw_attached_here(dev_t rdev, u64 vdi, char *who, size_t len)
{
	char **names, table[4400], want[64];
	bool found = false;
	size_t i, nr;

	if (plx_dm_list_parallax(&names, &nr))
		return false;
	snprintf(want, sizeof(want), "%u:%u %llu", major(rdev), minor(rdev),
		 (unsigned long long)vdi);
	for (i = 0; i < nr && !found; i++) {
		if (plx_dm_table(names[i], table, sizeof(table)))
			continue;
		if (!strncmp(table, want, strlen(want)) &&
		    (table[strlen(want)] == ' ' || !table[strlen(want)]) &&
		    !strstr(table, " read_only") &&
		    !plx_dm_read_only(names[i])) {
			snprintf(who, len, "%s", names[i]);
			found = true;
		}
	}
	plx_dm_names_free(names, nr);
	return found;
}

/*
 * A snapshot never changes, so it is attached read-only and needs no lock
 * from anyone, with or without a lock manager: the device is made here.
 */
static int attach_snapshot(struct attach_state *st, const char *name,
			   const char *arg, bool is_blk, bool *is_snap)
{
	char params[4400];
	struct plx_vdi_record *v;
	struct plx_store *s;
	struct plx_snap sn;
	u64 id, size;
	int ret;

	*is_snap = false;
	s = cli_open(st->dev, false);
	if (!s)
		return EXIT_STORE;
	if (cli_resolve(s, arg, &id, &sn, is_snap)) {
		plx_close(s);
		return cli_liberr();
	}
	if (!*is_snap) {
		plx_close(s);
		return 0;
	}
	if (!is_blk) {
		plx_close(s);
		return cli_err(EXIT_USAGE,
			       "%s is not a block device; the kernel target needs one (losetup can make one)",
			       st->dev);
	}
	v = plx_vdi_get(s, sn.vdi);
	if (!v) {
		plx_close(s);
		return cli_liberr();
	}
	size = le64_to_cpu(v->size);
	memcpy(st->uuid, s->geo.uuid, sizeof(st->uuid));
	plx_close(s);
	st->vdi = sn.vdi;
	st->read_only = true;
	snprintf(params, sizeof(params), "%s %llu 3 read_only snapshot_seq %llu",
		 st->dev, (unsigned long long)sn.vdi,
		 (unsigned long long)le64_to_cpu(sn.rec.seq));
	if (plx_dm_exists(name))
		return cli_err(EXIT_STORE, "device %s already exists", name);
	if (plx_dm_create(name, size >> 9, params, true, st->uuid, st->vdi))
		return cli_err(EXIT_STORE, "cannot create device %s: %s", name,
			       plx_errmsg());
	ret = state_save(name, st);
	if (ret) {
		plx_dm_remove(name);
		return ret;
	}
	printf("%s/%s\n", dm_dir(), name);
	return 0;
}

/* ---- Commands ---------------------------------------------------------- */

int cmd_attach(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "host-id", required_argument, NULL, 'H' },
		{ "data-extents", required_argument, NULL, 'e' },
		{ "metadata-extents", required_argument, NULL, 'm' },
		{ "read-only", no_argument, NULL, 'r' },
		{ "local", no_argument, NULL, 'L' },
		{ "wait-lock", required_argument, NULL, 'w' },
		{ "local-cache", required_argument, NULL, 'c' },
		{ "cache-mode", required_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *name = NULL, *host_s = NULL, *extents_s = NULL;
	const char *cache = NULL, *cache_mode = NULL;
	char cache_real[4096];
	char params[8500], msg[64], lockd[PLX_LOCKD_ADDR_LEN + 1];
	struct attach_state st = { 0 };
	u64 nr_data = 1, nr_meta = 1, size = 0, wait_s = 0;
	bool local = false;
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
			extents_s = "--data-extents";
			if (plx_parse_u64(optarg, &nr_data) || !nr_data ||
			    nr_data >= PLX_MAX_ATTACH_EXTENTS)
				return cli_err(EXIT_USAGE,
					       "--data-extents must be 1..%d",
					       PLX_MAX_ATTACH_EXTENTS - 1);
			break;
		case 'm':
			extents_s = "--metadata-extents";
			if (plx_parse_u64(optarg, &nr_meta) || !nr_meta ||
			    nr_meta >= PLX_MAX_ATTACH_EXTENTS)
				return cli_err(EXIT_USAGE,
					       "--metadata-extents must be 1..%d",
					       PLX_MAX_ATTACH_EXTENTS - 1);
			break;
		case 'r':
			st.read_only = true;
			break;
		case 'L':
			local = true;
			break;
		case 'w':
			if (plx_parse_u64(optarg, &wait_s) || !wait_s ||
			    wait_s > 3600)
				return cli_err(EXIT_USAGE,
					       "--wait-lock must be 1..3600 seconds, not '%s'",
					       optarg);
			break;
		case 'c':
			cache = optarg;
			break;
		case 'M':
			if (strcmp(optarg, "always") && strcmp(optarg, "adaptive"))
				return cli_err(EXIT_USAGE,
					       "--cache-mode is always or adaptive, not '%s'",
					       optarg);
			cache_mode = optarg;
			break;
		case 'h':
			return cli_help(cli_cmd);
		default:
			return EXIT_USAGE;
		}
	}
	if (cli_nargs(argc, argv, 2, 2))
		return EXIT_USAGE;
	if (cli_host_id(host_s, &st.host))
		return EXIT_USAGE;
	if (cache_mode && !cache)
		return cli_err(EXIT_USAGE, "--cache-mode needs --local-cache");
	if (cache && st.read_only)
		return cli_err(EXIT_USAGE,
			       "--local-cache: a read-only attach writes nothing to cache");
	if (cache) {
		/* The table and parallaxd need a path without blanks. */
		if (!realpath(cache, cache_real))
			return cli_err(EXIT_STORE, "--local-cache %s: %s", cache,
				       strerror(errno));
		if (strpbrk(cache_real, " \t\n"))
			return cli_err(EXIT_USAGE,
				       "--local-cache: no blanks in the log device's path");
		cache = cache_real;
	}
	if (wait_s && st.read_only)
		return cli_err(EXIT_USAGE,
			       "--wait-lock: a read-only attach takes no lock to wait for");
	if (snprintf(st.dev, sizeof(st.dev), "%s", argv[optind]) >= (int)sizeof(st.dev))
		return cli_err(EXIT_USAGE, "device path too long");
	if (stat(st.dev, &sb))
		return cli_err(EXIT_STORE, "%s: %s", st.dev, strerror(errno));
	if (!name)
		name = argv[optind + 1];
	{
		bool is_snap;

		if (!plx_dm_name_ok(name))
			return cli_err(EXIT_USAGE,
				       "'%s' is not a valid device name", name);
		ret = attach_snapshot(&st, name, argv[optind + 1],
				      S_ISBLK(sb.st_mode), &is_snap);
		if (ret || is_snap)
			return ret;
	}
	if (store_lockd(st.dev, lockd, sizeof(lockd))) {
		if (local)
			return cli_err(EXIT_STORE,
				       "--local: %s has a lock manager (%s), which owns its claims; attach through parallaxd",
				       st.dev, lockd);
		if (host_s)
			return cli_err(EXIT_USAGE,
				       "--host-id: with a lock manager (%s) parallaxd attaches as its own host id",
				       lockd);
		if (extents_s)
			return cli_err(EXIT_USAGE,
				       "%s: with a lock manager (%s) parallaxd claims extents as the device needs them",
				       extents_s, lockd);
		if (!plx_dm_name_ok(name))
			return cli_err(EXIT_USAGE,
				       "'%s' is not a valid device name", name);
		return attach_daemon(st.dev, argv[optind + 1], name,
				     st.read_only, wait_s, cache, cache_mode,
				     lockd);
	}
	if (wait_s)
		return cli_err(EXIT_USAGE,
			       "--wait-lock: %s has no lock manager, so no other host can hand VDI %s over",
			       st.dev, argv[optind + 1]);
	if (!S_ISBLK(sb.st_mode))
		return cli_err(EXIT_USAGE,
			       "%s is not a block device; the kernel target needs one (losetup can make one)",
			       st.dev);
	if (!plx_dm_name_ok(name))
		return cli_err(EXIT_USAGE, "'%s' is not a valid device name", name);
	if (plx_dm_exists(name))
		return cli_err(EXIT_STORE, "device %s already exists", name);

	if (nr_data + nr_meta > PLX_MAX_ATTACH_EXTENTS)
		return cli_err(EXIT_USAGE, "at most %d extents in all",
			       PLX_MAX_ATTACH_EXTENTS);
	ret = claim(st.dev, sb.st_rdev, argv[optind + 1], st.host, nr_data, nr_meta,
		    st.read_only, cache, &st, &size);
	if (ret)
		return ret;

	/* The generations make the kernel refuse a claim broken meanwhile. */
	snprintf(params, sizeof(params), "%s %llu", st.dev,
		 (unsigned long long)st.vdi);
	if (!st.read_only)
		snprintf(params + strlen(params), sizeof(params) - strlen(params),
			 " %d host_id %u lock_gen %llu", 4 + (cache ? 2 : 0) +
			 (cache_mode ? 2 : 0), st.host,
			 (unsigned long long)st.lock_gen);
	if (cache)
		snprintf(params + strlen(params), sizeof(params) - strlen(params),
			 " local_cache %s", cache);
	if (cache_mode)
		snprintf(params + strlen(params), sizeof(params) - strlen(params),
			 " local_cache_mode %s", cache_mode);
	if (plx_dm_create(name, size >> 9, params, st.read_only, st.uuid,
			  st.vdi)) {
		cli_err(EXIT_STORE, "cannot create device %s", name);
		unclaim(&st);
		return EXIT_STORE;
	}
	for (i = 0; i < st.nr; i++) {
		snprintf(msg, sizeof(msg), "add_extent %llu %llu",
			 (unsigned long long)st.extents[i],
			 (unsigned long long)st.gens[i]);
		if (plx_dm_message(name, msg, NULL, 0)) {
			cli_err(EXIT_STORE, "device %s refused extent %llu", name,
				(unsigned long long)st.extents[i]);
			plx_dm_remove(name);
			unclaim(&st);
			return EXIT_STORE;
		}
	}
	ret = state_save(name, &st);
	if (ret) {
		plx_dm_remove(name);
		unclaim(&st);
		return ret;
	}
	printf("%s/%s\n", dm_dir(), name);
	return 0;
}

int cmd_detach(int argc, char **argv)
{
	char path[4200], sock[4200], req[300], result[64];
	char lockd[PLX_LOCKD_ADDR_LEN + 1];
	struct attach_state st;
	const char *name;
	struct stat sb;
	u64 pending;
	int ret;

	ret = cli_only_help(argc, argv, 1, 1);
	if (ret >= 0)
		return ret;
	name = argv[optind];
	if (!plx_dm_name_ok(name))
		return cli_err(EXIT_USAGE, "'%s' is not a valid device name",
			       name);
	/*
	 * No state file of ours: the device is parallaxd's, if it runs.
	 * A state file naming a store that has a lock manager now: the
	 * claims are the lock manager's, so parallaxd must release them.
	 */
	state_path(name, path, sizeof(path));
	daemon_sock(sock, sizeof(sock));
	lockd[0] = '\0';
	if (stat(path, &sb) && !stat(sock, &sb))
		goto daemon;
	ret = state_load(name, &st);
	if (ret)
		return ret;
	if (!st.read_only && store_lockd(st.dev, lockd, sizeof(lockd)))
		goto daemon;
	/*
	 * A local write cache must be empty before the VDI's claim goes:
	 * its log holds acknowledged writes the store has not seen yet.
	 */
	if (!st.read_only && plx_dm_exists(name) &&
	    plx_dm_drain_for_release(&plx_dm_real_ops, name, st.vdi,
				     &pending) < 0)
		return cli_err(EXIT_STORE, "%s; retry the detach once the store takes writes again",
			       plx_errmsg());
	if (plx_dm_exists(name) && plx_dm_remove(name)) {
		/* Drained and suspended above: let it serve again. */
		if (plx_dm_suspended(name))
			plx_dm_resume(name);
		return cli_err(EXIT_STORE, "cannot remove device %s (is it in use?)",
			       name);
	}
	ret = unclaim(&st);
	if (ret)
		return ret;
	unlink(path);
	return 0;
daemon:
	snprintf(req, sizeof(req), "detach %s", name);
	return daemon_call(req, lockd, result, sizeof(result));
}
