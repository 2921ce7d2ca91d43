// SPDX-License-Identifier: GPL-2.0
/*
 * parallax gc: collect garbage while the store is in use.
 *
 * The collector (userspace/lib/gc.c) needs a way to every host that
 * holds extents.  On a single host the holders are this host's own
 * device-mapper tables, reached with target messages; in a cluster the
 * lock manager relays jobs to each host's parallaxd, which sends the same
 * messages to its tables.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>

#include "cli.h"
#include "dmdev.h"

/* ---- Single host: this host's tables ------------------------------------ */

#define GC_MAX_TABLES	256
#define GC_MAX_GRANTS	64

struct gc_table {
	char *name;
	struct plx_dm_extent ext[GC_MAX_GRANTS];
	int nr_ext;
};

struct gc_local {
	u32 host;
	dev_t rdev;
	struct gc_table tables[GC_MAX_TABLES];
	size_t nr;
};

/* Read-write parallax tables of this store on this host. */
static int local_tables(struct gc_local *l)
{
	char **names, table[4400], want[32];
	size_t i, nr;

	if (plx_dm_list_parallax(&names, &nr))
		return -1;
	snprintf(want, sizeof(want), "%u:%u ", major(l->rdev), minor(l->rdev));
	for (i = 0; i < nr; i++) {
		if (plx_dm_table(names[i], table, sizeof(table)) ||
		    strncmp(table, want, strlen(want)) ||
		    plx_dm_read_only(names[i]))
			continue;
		if (l->nr == GC_MAX_TABLES) {
			plx_dm_names_free(names, nr);
			plx_seterr(PLX_EK_STORE, "more than %d parallax devices",
				   GC_MAX_TABLES);
			return -1;
		}
		l->tables[l->nr++].name = strdup(names[i]);
	}
	plx_dm_names_free(names, nr);
	return 0;
}

static int local_msg(const char *name, const char *msg, char *res,
		     size_t len)
{
	if (!plx_dm_message(name, msg, res, len))
		return 0;
	plx_seterr(PLX_EK_STORE, "%s: %s: %s", name, msg, strerror(errno));
	return -1;
}

static int local_begin(void *arg, u32 host, u64 epoch)
{
	struct gc_local *l = arg;
	char msg[64], res[4096];
	size_t i;

	if (host != l->host) {
		plx_seterr(PLX_EK_STORE, "it is not this host (%u) and the store has no lock manager to reach it",
			   l->host);
		return -1;
	}
	if (local_tables(l))
		return -1;
	if (!l->nr) {
		plx_seterr(PLX_EK_STORE, "no device on this host uses the store: 'parallax unlock --offline' frees what a lost device held");
		return -1;
	}
	snprintf(msg, sizeof(msg), "gc_begin %llu", (unsigned long long)epoch);
	for (i = 0; i < l->nr; i++) {
		struct gc_table *t = &l->tables[i];

		if (local_msg(t->name, msg, NULL, 0) ||
		    local_msg(t->name, "extents", res, sizeof(res)))
			goto fail;
		t->nr_ext = plx_dm_parse_extents(res, t->ext, GC_MAX_GRANTS);
		if (t->nr_ext < 0) {
			plx_seterr(PLX_EK_STORE, "%s: cannot parse its extents: %s",
				   t->name, res);
			goto fail;
		}
	}
	return 0;
fail:
	snprintf(msg, sizeof(msg), "gc_end %llu", (unsigned long long)epoch);
	while (i--)
		plx_dm_message(l->tables[i].name, msg, NULL, 0);
	return -1;
}

static int local_reclaim(void *arg, u32 host, u64 epoch, u64 extent,
			 u64 generation, u64 offset, const u8 *bits,
			 u32 nbytes, u64 *freed)
{
	char msg[128 + 2 * PLX_GC_CHUNK_BYTES], res[64];
	struct gc_local *l = arg;
	size_t i;
	int j;

	(void)host;
	if (plx_gc_reclaim_msg(msg, sizeof(msg), epoch, extent, generation,
			       offset, bits, nbytes)) {
		plx_seterr(PLX_EK_STORE, "bad reclaim chunk");
		return -1;
	}
	for (i = 0; i < l->nr; i++) {
		for (j = 0; j < l->tables[i].nr_ext; j++) {
			if (l->tables[i].ext[j].extent != extent)
				continue;
			if (local_msg(l->tables[i].name, msg, res, sizeof(res)))
				return -1;
			if (plx_parse_u64(res, freed)) {
				plx_seterr(PLX_EK_STORE, "%s: gc_reclaim answered '%s'",
					   l->tables[i].name, res);
				return -1;
			}
			return 0;
		}
	}
	plx_seterr(PLX_EK_STORE, "no device of this host holds it");
	return -1;
}

static void local_end(void *arg, u32 host, u64 epoch)
{
	struct gc_local *l = arg;
	char msg[64];
	size_t i;

	(void)host;
	snprintf(msg, sizeof(msg), "gc_end %llu", (unsigned long long)epoch);
	for (i = 0; i < l->nr; i++)
		plx_dm_message(l->tables[i].name, msg, NULL, 0);
}

static void local_free(struct gc_local *l)
{
	size_t i;

	for (i = 0; i < l->nr; i++)
		free(l->tables[i].name);
}

/* ---- Output --------------------------------------------------------------- */

/* The progress bar, erased before a note so that the two do not mix. */
static struct cli_progress *gc_bar;

static void gc_note(void *arg, const char *msg)
{
	(void)arg;
	if (gc_bar)
		cli_progress_clear(gc_bar);
	fprintf(stderr, "parallax: gc: %s\n", msg);
}


static double rate_gbs(const struct plx_gc_stats *st)
{
	double t = st->mark_seconds + st->sweep_seconds;

	return t > 0 ? st->store_bytes / t / 1e9 : 0;
}

static void print_human(const struct plx_gc_stats *st)
{
	char sz[32], fr[32];
	u64 freed = st->freed[0] + st->freed[1];

	plx_human_size(st->store_bytes, sz, sizeof(sz));
	plx_human_size(freed * PLX_BLOCK_SIZE, fr, sizeof(fr));
	printf("marked %llu blocks reachable from %llu VDIs and %llu snapshots in %u passes (%llu metadata blocks read)\n",
	       (unsigned long long)st->reachable, (unsigned long long)st->vdis,
	       (unsigned long long)st->snapshots, st->passes,
	       (unsigned long long)st->nodes_read);
	printf("freed %llu data and %llu metadata blocks (%s), %llu of them by attached devices\n",
	       (unsigned long long)st->freed[0],
	       (unsigned long long)st->freed[1], fr,
	       (unsigned long long)st->freed_by_holders);
	printf("swept %llu extents, skipped %llu, emptied %llu\n",
	       (unsigned long long)st->extents_swept,
	       (unsigned long long)st->extents_skipped,
	       (unsigned long long)st->extents_emptied);
	printf("scanned %s in %.3f s (%.2f GB/s), using %llu KiB\n", sz,
	       st->mark_seconds + st->sweep_seconds, rate_gbs(st),
	       (unsigned long long)(st->memory_bytes >> 10));
}

static void print_json(const struct plx_gc_stats *st)
{
	printf("{\"store_bytes\": %llu, \"memory_bytes\": %llu, \"vdis\": %llu, \"snapshots\": %llu, \"passes\": %u, \"nodes_read\": %llu, \"bytes_read\": %llu, \"reachable\": %llu, \"freed_data\": %llu, \"freed_metadata\": %llu, \"freed_by_holders\": %llu, \"extents_swept\": %llu, \"extents_skipped\": %llu, \"extents_emptied\": %llu, \"mark_seconds\": %.6f, \"sweep_seconds\": %.6f, \"scan_gb_per_s\": %.3f}\n",
	       (unsigned long long)st->store_bytes,
	       (unsigned long long)st->memory_bytes,
	       (unsigned long long)st->vdis, (unsigned long long)st->snapshots,
	       st->passes, (unsigned long long)st->nodes_read,
	       (unsigned long long)st->bytes_read,
	       (unsigned long long)st->reachable,
	       (unsigned long long)st->freed[0],
	       (unsigned long long)st->freed[1],
	       (unsigned long long)st->freed_by_holders,
	       (unsigned long long)st->extents_swept,
	       (unsigned long long)st->extents_skipped,
	       (unsigned long long)st->extents_emptied, st->mark_seconds,
	       st->sweep_seconds, rate_gbs(st));
}

int cmd_gc(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct plx_gc_ops ops = { .note = gc_note };
	struct cli_progress pr;
	struct gc_local *local = NULL;
	struct plx_gc_stats st;
	bool json = false, quiet = false;
	char addr[PLX_LOCKD_ADDR_LEN + 1];
	struct plx_store *s;
	struct stat sb;
	void *arg = NULL;
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
	s = cli_open(argv[optind], true);
	if (!s)
		return EXIT_STORE;
	if (cli_lockd_addr(s, addr, sizeof(addr))) {
		ret = cli_gc_cluster_ops(s, addr, &ops, &arg);
		if (ret)
			goto out;
	} else {
		local = calloc(1, sizeof(*local));
		if (!local) {
			ret = cli_err(EXIT_STORE, "out of memory");
			goto out;
		}
		if (cli_host_id(NULL, &local->host)) {
			ret = EXIT_USAGE;
			goto out;
		}
		if (!fstat(s->fd, &sb) && S_ISBLK(sb.st_mode))
			local->rdev = sb.st_rdev;
		ops.begin = local_begin;
		ops.reclaim = local_reclaim;
		ops.end = local_end;
		ops.retype_free = true;
		arg = local;
	}
	cli_progress_init(&pr, quiet);
	gc_bar = &pr;
	ops.progress = cli_progress_fn;
	ops.progress_arg = &pr;
	ret = plx_gc(s, &ops, arg, &st);
	cli_progress_done(&pr);
	if (ret) {
		ret = cli_liberr();
	} else {
		if (json)
			print_json(&st);
		else
			print_human(&st);
		ret = EXIT_OK;
	}
out:
	if (local) {
		local_free(local);
		free(local);
	} else if (arg) {
		cli_gc_cluster_done(arg);
	}
	plx_close(s);
	return ret;
}
