// SPDX-License-Identifier: GPL-2.0
/*
 * parallax locks and unlock: look at and break the lock manager's locks.
 *
 * Breaking a lock is fencing (thesis 3.4.2): the lock manager clears the
 * holder and bumps the generation, so every grant the old holder has
 * becomes stale, and the kernel target refuses a table or an extent whose
 * generation is not the one on disk.  With --offline, for when the lock
 * manager is gone, the same change is made on disk directly.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"

/* The address to use: --lockd, else the superblock's. */
static int lockd_of(struct plx_store *s, const char *opt, char *buf,
		    size_t len)
{
	if (opt) {
		if (strlen(opt) >= len || !strchr(opt, ':'))
			return cli_err(EXIT_USAGE,
				       "--lockd '%s' is not HOST:PORT", opt);
		snprintf(buf, len, "%s", opt);
		return 0;
	}
	if (!cli_lockd_addr(s, buf, len))
		return cli_err(EXIT_STORE,
			       "%s has no lock manager configured (single-host mode); give --lockd HOST:PORT",
			       s->path);
	return 0;
}

/* ---- locks -------------------------------------------------------------- */

/*
 * Words after the kind that parallax-lockd's STATUS lines give by
 * position (lockd/proto.c op_status); the rest are KEY VALUE pairs.
 */
static const struct {
	const char *kind;
	const char *pos[3];
} status_kinds[] = {
	{ "lockd", { "addr" } },
	{ "host", { "id", "lease", "age_ms" } },
	{ "vdi", { "id" } },
	{ "extent", { "id", "type" } },
	{ "registry", { NULL } },
	{ "bitmap", { "id" } },
};

static void json_value(const char *v)
{
	if (!strcmp(v, "-"))
		fputs("null", stdout);
	else if (plx_all_digits(v) && strlen(v) < 20)
		fputs(v, stdout);
	else
		plx_json_str(stdout, v);
}

/*
 * One STATUS line as one JSON object: "kind" is its first word, then the
 * kind's positional fields, then KEY VALUE pairs; a KEY left alone (or
 * any word of an unknown kind's line that pairs do not explain) is true.
 */
static void json_line(char *line)
{
	const char *const *pos = NULL;
	char *tok[64], *save = NULL, *t;
	int n = 0, i, k;
	size_t j;

	for (t = strtok_r(line, " \t", &save); t && n < 64;
	     t = strtok_r(NULL, " \t", &save))
		tok[n++] = t;
	if (!n)
		return;
	for (j = 0; j < sizeof(status_kinds) / sizeof(status_kinds[0]); j++)
		if (!strcmp(tok[0], status_kinds[j].kind))
			pos = status_kinds[j].pos;
	fputs("{\"kind\":", stdout);
	plx_json_str(stdout, tok[0]);
	i = 1;
	for (k = 0; pos && k < 3 && pos[k] && i < n; k++, i++) {
		fputc(',', stdout);
		plx_json_str(stdout, pos[k]);
		fputc(':', stdout);
		json_value(tok[i]);
	}
	for (; i < n; i++) {
		fputc(',', stdout);
		plx_json_str(stdout, tok[i]);
		fputc(':', stdout);
		if (i + 1 < n) {
			json_value(tok[i + 1]);
			i++;
		} else {
			fputs("true", stdout);
		}
	}
	fputs("}\n", stdout);
}

int cmd_locks(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "lockd", required_argument, NULL, 'l' },
		{ "host-id", required_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *lockd_s = NULL, *host_s = NULL;
	char addr[PLX_LOCKD_ADDR_LEN + 1], *text, *line, *save = NULL;
	struct plx_lk_client *lk;
	struct plx_store *s;
	bool json = false;
	u32 host;
	int c, ret;

	while ((c = cli_getopt(argc, argv, ":h", opts)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'l':
			lockd_s = optarg;
			break;
		case 'H':
			host_s = optarg;
			break;
		case 'h':
			return cli_help(cli_cmd);
		default:
			return EXIT_USAGE;
		}
	}
	if (cli_nargs(argc, argv, 1, 1))
		return EXIT_USAGE;
	if (cli_host_id(host_s, &host))
		return EXIT_USAGE;
	s = cli_open(argv[optind], false);
	if (!s)
		return EXIT_STORE;
	ret = lockd_of(s, lockd_s, addr, sizeof(addr));
	if (ret)
		goto out;
	lk = cli_lk_connect(addr, s, host);
	if (!lk) {
		ret = EXIT_STORE;
		goto out;
	}
	text = plx_lk_status_text(lk);
	if (!text) {
		ret = cli_err(EXIT_STORE, "lock manager at %s: STATUS failed: %s",
			      addr, plx_errmsg());
	} else {
		if (!json) {
			fputs(text, stdout);
			if (*text && text[strlen(text) - 1] != '\n')
				fputc('\n', stdout);
		} else {
			for (line = strtok_r(text, "\n", &save); line;
			     line = strtok_r(NULL, "\n", &save))
				json_line(line);
		}
		free(text);
	}
	plx_lk_close(lk);
out:
	plx_close(s);
	return ret;
}

/* ---- unlock ------------------------------------------------------------- */

struct fence {
	enum plx_lk_what what;
	u64 id;				/* host, VDI or extent */
	const char *arg;		/* as given, for --vdi NAME */
	bool force;
	bool discard;			/* --discard-cache */
	unsigned int kept;		/* cache-dirty VDI locks left alone */
};

/*
 * A VDI lock whose holder's local write cache still holds writes the
 * store has not seen stays with that holder: breaking it would let
 * another host run the VDI without them.
 */
static void kept_advice(const struct fence *f)
{
	fprintf(stderr,
		"parallax: unlock: %u VDI lock(s) kept: the holder's local write cache holds writes not yet on the store; attach the VDI on that host again to drain them, or break it with --vdi ID --discard-cache, which loses them\n",
		f->kept);
}

static const char *what_name(enum plx_lk_what w)
{
	switch (w) {
	case PLX_LK_WHAT_HOST:
		return "host";
	case PLX_LK_WHAT_VDI:
		return "VDI";
	case PLX_LK_WHAT_EXTENT:
		return "extent";
	default:
		return "registry";
	}
}

/* Does anything accept a TCP connection at @addr ("host:port")? */
static bool tcp_answers(const char *addr)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	char host[PLX_LOCKD_ADDR_LEN + 1], *colon;
	bool up = false;
	int fd;

	snprintf(host, sizeof(host), "%s", addr);
	colon = strrchr(host, ':');
	if (!colon)
		return false;
	*colon = '\0';
	if (host[0] == '[' && colon[-1] == ']') {
		colon[-1] = '\0';
		memmove(host, host + 1, strlen(host));
	}
	if (getaddrinfo(host, colon + 1, &hints, &res))
		return false;
	for (ai = res; ai && !up; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0)
			continue;
		up = !connect(fd, ai->ai_addr, ai->ai_addrlen);
		close(fd);
	}
	freeaddrinfo(res);
	return up;
}

static int unlock_online(struct plx_store *s, const char *addr, u32 host,
			 struct fence *f)
{
	struct plx_lk_args a = {
		.id = f->id,
		.type = f->what,
		.flags = (f->force ? PLX_LK_FORCE : 0) |
			 (f->discard ? PLX_LK_DISCARD : 0),
	};
	struct plx_lk_client *lk;
	struct plx_lk_grant g = { 0 };
	char text[256] = "", what[64];
	int st;

	if (f->what == PLX_LK_WHAT_REGISTRY)
		snprintf(what, sizeof(what), "the VDI registry");
	else
		snprintf(what, sizeof(what), "%s %llu", what_name(f->what),
			 (unsigned long long)f->id);
	lk = cli_lk_connect(addr, s, host);
	if (!lk)
		return EXIT_STORE;
	st = plx_lk_call(lk, PLX_LK_BREAK, &a, &g, text, sizeof(text));
	plx_lk_close(lk);
	if (st < 0)
		return cli_err(EXIT_STORE, "lost the lock manager at %s: %s",
			       addr, plx_errmsg());
	if (st == PLX_LK_EBUSY && (g.type & PLX_LK_CACHE))
		return cli_err(EXIT_STORE,
			       "lock manager at %s refused to break %s: %s (--discard-cache breaks it anyway, losing those writes)",
			       addr, what, text[0] ? text :
			       "its holder's local cache holds undrained writes");
	if (st == PLX_LK_EPERM && !f->force)
		return cli_err(EXIT_STORE,
			       "lock manager at %s refused to fence %s: %s (--force fences it anyway)",
			       addr, what,
			       text[0] ? text : "the holder's lease is live");
	if (st)
		return cli_err(EXIT_STORE, "lock manager at %s refused to fence %s: %s%s%s",
			       addr, what, plx_lk_status_name(st),
			       text[0] ? ": " : "", text);
	/* The reply: the old holder, and the new generation (host: count). */
	if (f->what == PLX_LK_WHAT_HOST) {
		printf("fenced host %llu: %llu locks broken\n",
		       (unsigned long long)f->id,
		       (unsigned long long)g.generation);
		if (g.reserved) {
			f->kept = g.reserved;
			kept_advice(f);
			return EXIT_STORE;
		}
	} else if (!g.holder)
		printf("%s was not held: generation %llu\n", what,
		       (unsigned long long)g.generation);
	else
		printf("fenced %s of host %u: generation %llu\n", what,
		       g.holder,
		       (unsigned long long)g.generation);
	return EXIT_OK;
}

/* ---- --offline: the lock manager's fencing, done on disk ---------------- */

static bool fence_extent(struct plx_store *s, u64 ext, u32 host)
{
	struct plx_extent_entry *e = cli_cat_entry(s, ext);
	bool changed = false;

	if (e->holder && (!host || le32_to_cpu(e->holder) == host)) {
		printf("fenced extent %llu: holder %u, generation %llu\n",
		       (unsigned long long)ext, le32_to_cpu(e->holder),
		       (unsigned long long)le64_to_cpu(e->generation) + 1);
		e->holder = 0;
		e->generation = cpu_to_le64(le64_to_cpu(e->generation) + 1);
		changed = true;
	}
	if (e->bitmap_holder && (!host || le32_to_cpu(e->bitmap_holder) == host)) {
		e->bitmap_holder = 0;
		changed = true;
	}
	if (changed)
		s->cat_dirty[ext / PLX_CATALOGUE_PER_BLOCK] = 1;
	return changed;
}

static int fence_vdi(struct plx_store *s, struct plx_vdi_record *v, u32 host,
		     struct fence *f, bool *changed)
{
	bool dirty = plx_vdi_cache_dirty(v);

	if ((!v->holder && !dirty) ||
	    (host && le32_to_cpu(v->holder) != host))
		return 0;
	if (dirty && !f->discard) {
		if (host) {
			printf("kept VDI %llu: holder %u's local cache holds undrained writes\n",
			       (unsigned long long)le64_to_cpu(v->id),
			       le32_to_cpu(v->holder));
			f->kept++;
			return 0;
		}
		return cli_err(EXIT_STORE,
			       "VDI %llu has undrained writes in the local cache of host %u; --discard-cache breaks its lock anyway, losing those writes",
			       (unsigned long long)le64_to_cpu(v->id),
			       le32_to_cpu(v->holder));
	}
	if (dirty)
		printf("discarded the local cache of VDI %llu on host %u\n",
		       (unsigned long long)le64_to_cpu(v->id),
		       le32_to_cpu(v->holder));
	plx_vdi_set_cache_dirty(v, false);
	printf("fenced VDI %llu: holder %u, lock generation %llu\n",
	       (unsigned long long)le64_to_cpu(v->id), le32_to_cpu(v->holder),
	       (unsigned long long)le64_to_cpu(v->lock_generation) + 1);
	v->holder = 0;
	v->lock_generation = cpu_to_le64(le64_to_cpu(v->lock_generation) + 1);
	v->generation = cpu_to_le64(le64_to_cpu(v->generation) + 1);
	*changed = true;
	return plx_vdi_write(s, v) ? cli_liberr() : 0;
}

static int fence_registry(struct plx_store *s, u32 host, bool *changed)
{
	struct plx_superblock *sb;
	u8 *block;
	int ret = 0;

	if (!s->sb.registry_holder ||
	    (host && le32_to_cpu(s->sb.registry_holder) != host))
		return 0;
	block = aligned_alloc(PLX_BLOCK_SIZE, PLX_BLOCK_SIZE);
	if (!block)
		return cli_err(EXIT_STORE, "out of memory");
	sb = (struct plx_superblock *)block;
	if (plx_read_meta(s, PLX_SUPERBLOCK_BLOCK, PLX_MAGIC_SUPER, block)) {
		ret = cli_liberr();
		goto out;
	}
	printf("fenced the VDI registry: holder %u, generation %llu\n",
	       le32_to_cpu(sb->registry_holder),
	       (unsigned long long)le64_to_cpu(sb->registry_generation) + 1);
	sb->registry_holder = 0;
	sb->registry_generation =
		cpu_to_le64(le64_to_cpu(sb->registry_generation) + 1);
	*changed = true;
	if (plx_write_meta(s, PLX_SUPERBLOCK_BLOCK, PLX_MAGIC_SUPER, block))
		ret = cli_liberr();
	else
		s->sb = *sb;
out:
	free(block);
	return ret;
}

static int unlock_offline(struct plx_store *s, struct fence *f)
{
	bool changed = false;
	struct plx_vdi_record *v;
	u32 host = 0;
	u64 i;
	int ret = 0;

	if (plx_store_sane(s))
		return cli_liberr();
	switch (f->what) {
	case PLX_LK_WHAT_HOST:
		host = f->id;
		for (i = s->geo.system_extents; i < s->geo.nr_extents; i++)
			changed |= fence_extent(s, i, host);
		for (i = 0; i < s->geo.registry_slots && !ret; i++)
			if (s->slots[i].state == PLX_SLOT_VDI)
				ret = fence_vdi(s, &s->slots[i].rec, host, f,
						&changed);
		if (!ret)
			ret = fence_registry(s, host, &changed);
		break;
	case PLX_LK_WHAT_VDI:
		v = plx_vdi_get(s, f->id);
		if (!v)
			return cli_liberr();
		ret = fence_vdi(s, v, 0, f, &changed);
		break;
	case PLX_LK_WHAT_EXTENT:
		if (f->id < s->geo.system_extents ||
		    f->id >= s->geo.nr_extents)
			return cli_err(EXIT_USAGE,
				       "extent %llu is not a data/metadata extent (%llu..%llu)",
				       (unsigned long long)f->id,
				       (unsigned long long)s->geo.system_extents,
				       (unsigned long long)s->geo.nr_extents - 1);
		changed = fence_extent(s, f->id, 0);
		break;
	default:
		ret = fence_registry(s, 0, &changed);
		break;
	}
	if (!ret && (plx_sync(s) || plx_fsync(s)))
		ret = cli_liberr();
	if (!ret && !changed && !f->kept)
		printf("nothing to fence: no lock held\n");
	if (!ret && f->kept) {
		kept_advice(f);
		ret = EXIT_STORE;
	}
	return ret;
}

int cmd_unlock(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'o' },
		{ "vdi", required_argument, NULL, 'v' },
		{ "extent", required_argument, NULL, 'e' },
		{ "registry", no_argument, NULL, 'r' },
		{ "force", no_argument, NULL, 'f' },
		{ "discard-cache", no_argument, NULL, 'D' },
		{ "offline", no_argument, NULL, 'O' },
		{ "lockd", required_argument, NULL, 'l' },
		{ "host-id", required_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *lockd_s = NULL, *host_s = NULL, *num = NULL;
	char addr[PLX_LOCKD_ADDR_LEN + 1] = "";
	struct fence f = { 0 };
	struct plx_store *s;
	bool offline = false;
	int c, ret, nwhat = 0;
	u32 host;

	while ((c = cli_getopt(argc, argv, ":h", opts)) != -1) {
		switch (c) {
		case 'o':
			f.what = PLX_LK_WHAT_HOST;
			num = optarg;
			nwhat++;
			break;
		case 'v':
			f.what = PLX_LK_WHAT_VDI;
			f.arg = optarg;
			nwhat++;
			break;
		case 'e':
			f.what = PLX_LK_WHAT_EXTENT;
			num = optarg;
			nwhat++;
			break;
		case 'r':
			f.what = PLX_LK_WHAT_REGISTRY;
			nwhat++;
			break;
		case 'f':
			f.force = true;
			break;
		case 'D':
			f.discard = true;
			break;
		case 'O':
			offline = true;
			break;
		case 'l':
			lockd_s = optarg;
			break;
		case 'H':
			host_s = optarg;
			break;
		case 'h':
			return cli_help(cli_cmd);
		default:
			return EXIT_USAGE;
		}
	}
	if (cli_nargs(argc, argv, 1, 1))
		return EXIT_USAGE;
	if (nwhat != 1)
		return cli_err(EXIT_USAGE,
			       "give exactly one of --host, --vdi, --extent and --registry");
	if (num && plx_parse_u64(num, &f.id))
		return cli_liberr();
	if (f.what == PLX_LK_WHAT_HOST && (!f.id || f.id > UINT32_MAX))
		return cli_err(EXIT_USAGE, "--host %s is not in 1..4294967295",
			       num);
	if (cli_host_id(host_s, &host))
		return EXIT_USAGE;
	s = cli_open(argv[optind], offline);
	if (!s)
		return EXIT_STORE;
	if (f.what == PLX_LK_WHAT_VDI && plx_resolve_vdi(s, f.arg, &f.id)) {
		ret = cli_liberr();
		goto out;
	}
	if (!offline) {
		ret = lockd_of(s, lockd_s, addr, sizeof(addr));
		if (!ret)
			ret = unlock_online(s, addr, host, &f);
		goto out;
	}
	if (lockd_s)
		snprintf(addr, sizeof(addr), "%s", lockd_s);
	else
		cli_lockd_addr(s, addr, sizeof(addr));
	/* Two writers of the catalogue would undo each other's grants. */
	if (addr[0] && tcp_answers(addr)) {
		ret = cli_err(EXIT_STORE,
			      "--offline: the lock manager at %s answers; fence through it (without --offline)",
			      addr);
		goto out;
	}
	ret = unlock_offline(s, &f);
out:
	plx_close(s);
	return ret;
}
