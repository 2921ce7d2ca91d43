// SPDX-License-Identifier: GPL-2.0
/*
 * The admin tool in a cluster: a store whose superblock names a lock
 * manager (lockd_addr) is shared by hosts that attached its VDIs, and
 * parallax-lockd is the only writer of its catalogue and superblock.  A
 * modifying command then behaves like one more host (thesis 3.4.1): it
 * takes the registry lock and/or the lock of the VDI it changes, claims
 * extents to allocate from, re-reads the store after the locks are
 * granted, works in libparallax's shared mode (which never writes the
 * catalogue), and gives everything back before it exits.
 *
 * The lease is renewed from a thread while the command works, so that a
 * long import is not fenced as a dead host; the main thread does not use
 * the connection during that time.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

int cli_host_id(const char *opt, u32 *out)
{
	return plx_host_id(opt, out) ? cli_liberr() : 0;
}

bool cli_lockd_addr(const struct plx_store *s, char *buf, size_t len)
{
	char addr[PLX_LOCKD_ADDR_LEN + 1];

	plx_copy_name(addr, s->sb.lockd_addr, PLX_LOCKD_ADDR_LEN);
	snprintf(buf, len, "%s", addr);
	return addr[0] != '\0';
}

struct plx_lk_client *cli_lk_connect(const char *addr,
				     const struct plx_store *s, u32 host)
{
	struct plx_lk_client *c;

	c = plx_lk_connect(addr, s->sb.cluster_key, host, CLI_LK_TIMEOUT_MS);
	if (!c)
		cli_err(EXIT_STORE, "lock manager at %s is unreachable: %s",
			addr, plx_errmsg());
	return c;
}

/* ---- Lease renewal ------------------------------------------------------ */

static void *renewer(void *arg)
{
	struct cli_cluster *cl = arg;
	struct timespec until;
	u32 period = plx_lk_lease_ms(cl->lk) / 3;

	if (period < 100)
		period = 100;
	pthread_mutex_lock(&cl->mu);
	while (!cl->stop) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += period / 1000;
		until.tv_nsec += (long)(period % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		if (pthread_cond_timedwait(&cl->cv, &cl->mu, &until) !=
		    ETIMEDOUT || cl->stop)
			continue;
		/*
		 * A failed renewal is remembered, not acted on: the command
		 * finishes its writes (they are ordered so that the store
		 * stays consistent) and cli_unlock() reports it.
		 */
		if (plx_lk_call(cl->lk, PLX_LK_RENEW, NULL, NULL, NULL, 0))
			cl->renew_failed = true;
	}
	pthread_mutex_unlock(&cl->mu);
	return NULL;
}

static void renewer_start(struct cli_cluster *cl)
{
	cl->stop = false;
	pthread_mutex_init(&cl->mu, NULL);
	pthread_cond_init(&cl->cv, NULL);
	cl->thread_on = !pthread_create(&cl->thread, NULL, renewer, cl);
}

static void renewer_stop(struct cli_cluster *cl)
{
	if (!cl->thread_on)
		return;
	pthread_mutex_lock(&cl->mu);
	cl->stop = true;
	pthread_cond_signal(&cl->cv);
	pthread_mutex_unlock(&cl->mu);
	pthread_join(cl->thread, NULL);
	pthread_cond_destroy(&cl->cv);
	pthread_mutex_destroy(&cl->mu);
	cl->thread_on = false;
}

/* ---- Locks -------------------------------------------------------------- */

static const char *type_name(enum plx_extent_type type)
{
	return type == PLX_EXT_DATA ? "data" : "metadata";
}

/* Report a refused request; returns EXIT_STORE. */
static int refused(struct cli_cluster *cl, int st, const char *what,
		   const struct plx_lk_grant *g, const char *text)
{
	if (st < 0)
		return cli_err(EXIT_STORE, "lost the lock manager at %s: %s",
			       cl->addr, plx_errmsg());
	if (st == PLX_LK_EBUSY)
		return cli_err(EXIT_STORE, "%s is held by host %u", what,
			       g->holder);
	return cli_err(EXIT_STORE, "lock manager at %s refused %s: %s%s%s",
		       cl->addr, what, plx_lk_status_name(st),
		       text[0] ? ": " : "", text);
}

static int call(struct cli_cluster *cl, enum plx_lk_op op, u64 id, u64 gen,
		u32 type, u32 flags, struct plx_lk_grant *g, char *text,
		size_t len)
{
	struct plx_lk_args a = {
		.id = id,
		.generation = gen,
		.type = type,
		.flags = flags,
	};

	memset(g, 0, sizeof(*g));
	text[0] = '\0';
	return plx_lk_call(cl->lk, op, &a, g, text, len);
}

static u64 extent_free_blocks(struct plx_store *s, u64 ext)
{
	u64 base = ext << s->geo.extent_shift, b, n = 0;

	if (!plx_bitmap_load(s, ext))
		return 0;
	for (b = base + s->geo.bitmap_blocks; b < base + s->geo.extent_blocks;
	     b++)
		n += !plx_bitmap_test(s, b);
	return n;
}

/*
 * Claim extents of @type until they have @need free blocks.  The free
 * count is read from @s's bitmaps, which are loaded lazily and so read
 * after the grant; the holder of an extent is the only writer of its
 * bitmap.  Running out of extents is fatal only if nothing was granted:
 * @need is an upper bound, and the operation fails cleanly if it runs out.
 */
static int claim(struct cli_cluster *cl, struct plx_store *s,
		 enum plx_extent_type type, u64 need)
{
	struct plx_lk_grant g;
	u64 have = 0, ext;
	unsigned int got = 0;
	char text[256], what[64];
	int st;

	while (have < need) {
		if (cl->nr_ext == CLI_MAX_EXTENTS)
			break;
		st = call(cl, PLX_LK_CLAIM_EXTENT, 0, 0, type, 0, &g, text,
			  sizeof(text));
		if (st == PLX_LK_ENOSPC && got)
			break;
		snprintf(what, sizeof(what), "a %s extent", type_name(type));
		if (st)
			return refused(cl, st, what, &g, text);
		ext = g.id;
		cl->ext[cl->nr_ext] = ext;
		cl->ext_gen[cl->nr_ext] = g.generation;
		cl->nr_ext++;
		got++;
		if (ext < s->geo.system_extents || ext >= s->geo.nr_extents)
			return cli_err(EXIT_STORE,
				       "lock manager granted extent %llu, which is not a data/metadata extent of this store",
				       (unsigned long long)ext);
		have += extent_free_blocks(s, ext);
	}
	return 0;
}

int cli_lock(struct cli_cluster *cl, struct plx_store **sp, const char *dev,
	     const struct cli_lock_req *req)
{
	struct plx_store *s = *sp;
	struct plx_vdi_record *v;
	struct plx_lk_grant g;
	char text[256], what[64];
	unsigned int i;
	int st, ret;

	memset(cl, 0, sizeof(*cl));
	if (!cli_lockd_addr(s, cl->addr, sizeof(cl->addr)))
		return 0;
	cl->on = true;
	if (cli_host_id(NULL, &cl->host))
		return EXIT_USAGE;
	if (req->vdi) {
		v = plx_vdi_get(s, req->vdi);
		/*
		 * The lock manager may grant this host a lock it already
		 * holds; the holder is then a device attached here, which
		 * must not be modified behind the kernel target's back.
		 */
		if (v && le32_to_cpu(v->holder) == cl->host)
			return cli_err(EXIT_STORE,
				       "VDI %llu is held by host %u (this host): detach it first",
				       (unsigned long long)req->vdi, cl->host);
	}
	cl->lk = cli_lk_connect(cl->addr, s, cl->host);
	if (!cl->lk)
		return EXIT_STORE;
	if (req->registry) {
		st = call(cl, PLX_LK_LOCK_REGISTRY, 0, 0, 0, 0, &g, text,
			  sizeof(text));
		if (st)
			return refused(cl, st, "the VDI registry", &g, text);
		cl->registry = true;
		cl->registry_gen = g.generation;
	}
	if (req->vdi) {
		snprintf(what, sizeof(what), "VDI %llu",
			 (unsigned long long)req->vdi);
		st = call(cl, PLX_LK_LOCK_VDI, req->vdi, 0, 0, 0, &g, text,
			  sizeof(text));
		if (st)
			return refused(cl, st, what, &g, text);
		cl->vdi = req->vdi;
		cl->vdi_gen = g.generation;
	}
	if (req->meta_blocks) {
		ret = claim(cl, s, PLX_EXT_METADATA, req->meta_blocks);
		if (ret)
			return ret;
	}
	if (req->data_blocks) {
		ret = claim(cl, s, PLX_EXT_DATA, req->data_blocks);
		if (ret)
			return ret;
	}

	/*
	 * Everything read before the grants may be stale: the lock manager
	 * has just rewritten catalogue entries and the VDI record, and
	 * another host may have changed the registry.  Start again from
	 * the disk.
	 */
	plx_close(s);
	*sp = s = cli_open(dev, true);
	if (!s)
		return EXIT_STORE;
	s->shared = true;
	s->alloc_holder = cl->host;
	for (i = 0; i < cl->nr_ext; i++) {
		const struct plx_extent_entry *e = cli_cat_entry(s, cl->ext[i]);

		if (le32_to_cpu(e->holder) != cl->host ||
		    le64_to_cpu(e->generation) != cl->ext_gen[i])
			return cli_err(EXIT_STORE,
				       "extent %llu was granted to host %u generation %llu, but the catalogue says host %u generation %llu",
				       (unsigned long long)cl->ext[i], cl->host,
				       (unsigned long long)cl->ext_gen[i],
				       le32_to_cpu(e->holder),
				       (unsigned long long)le64_to_cpu(e->generation));
	}
	if (cl->vdi) {
		v = plx_vdi_get(s, cl->vdi);
		if (!v)
			return cli_liberr();
		if (le32_to_cpu(v->holder) != cl->host ||
		    le64_to_cpu(v->lock_generation) != cl->vdi_gen)
			return cli_err(EXIT_STORE,
				       "VDI %llu was granted to host %u generation %llu, but its record says host %u generation %llu",
				       (unsigned long long)cl->vdi, cl->host,
				       (unsigned long long)cl->vdi_gen,
				       le32_to_cpu(v->holder),
				       (unsigned long long)le64_to_cpu(v->lock_generation));
	}
	renewer_start(cl);
	return 0;
}

int cli_unlock(struct cli_cluster *cl)
{
	struct plx_lk_grant g;
	char text[256], what[64];
	unsigned int i;
	int st, ret = 0;

	if (!cl->on)
		return 0;
	renewer_stop(cl);
	if (!cl->lk)
		return 0;
	if (cl->renew_failed)
		ret = cli_err(EXIT_STORE,
			      "could not renew the lease with the lock manager at %s while working; another host may have fenced this one",
			      cl->addr);
	/* Extents first: they are what other hosts run short of. */
	for (i = 0; i < cl->nr_ext; i++) {
		st = call(cl, PLX_LK_RELEASE_EXTENT, cl->ext[i], cl->ext_gen[i],
			  0, 0, &g, text, sizeof(text));
		if (st) {
			snprintf(what, sizeof(what), "the release of extent %llu",
				 (unsigned long long)cl->ext[i]);
			ret = refused(cl, st, what, &g, text);
			if (st < 0)
				goto out;
		}
	}
	if (cl->vdi) {
		st = call(cl, PLX_LK_UNLOCK_VDI, cl->vdi, cl->vdi_gen, 0, 0, &g,
			  text, sizeof(text));
		if (st) {
			snprintf(what, sizeof(what), "the unlock of VDI %llu",
				 (unsigned long long)cl->vdi);
			ret = refused(cl, st, what, &g, text);
			if (st < 0)
				goto out;
		}
	}
	if (cl->registry) {
		st = call(cl, PLX_LK_UNLOCK_REGISTRY, 0, cl->registry_gen, 0, 0,
			  &g, text, sizeof(text));
		if (st)
			ret = refused(cl, st, "the unlock of the registry", &g,
				      text);
	}
out:
	plx_lk_close(cl->lk);
	cl->lk = NULL;
	return ret ? EXIT_STORE : 0;
}

struct plx_extent_entry *cli_cat_entry(struct plx_store *s, u64 ext)
{
	return &s->cat[ext / PLX_CATALOGUE_PER_BLOCK]
		.entries[ext % PLX_CATALOGUE_PER_BLOCK];
}

int cli_changed(const char *arg)
{
	plx_seterr(PLX_EK_STORE,
		   "'%s' changed meaning while the locks were taken; try again",
		   arg);
	return -1;
}
