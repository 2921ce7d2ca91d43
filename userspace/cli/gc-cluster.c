// SPDX-License-Identifier: GPL-2.0
/*
 * The collector's hooks in a cluster.  The registry lock keeps VDIs from
 * being created, cloned or deleted while the roots are read; a bitmap
 * lock keeps an unheld extent from being granted while it is swept; and
 * the lock manager relays the begin, reclaim and end jobs to the
 * parallaxd of each host that holds extents.
 *
 * The connection is used from this thread only, so the lease is renewed
 * before a request when a third of it has passed; marking, which makes
 * no requests for a while, holds no lock that a lapsed lease could lose.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

/* gc_begin waits up to 30 s in the kernel; parallaxd polls every second. */
#define GC_BEGIN_TIMEOUT_MS	45000
#define GC_JOB_TIMEOUT_MS	20000

struct gc_cluster {
	struct plx_lk_client *lk;
	char addr[PLX_LOCKD_ADDR_LEN + 1];
	u64 registry_gen;
	struct timespec renewed;
};

static u64 ms_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t->tv_sec) * 1000ULL +
	       (now.tv_nsec - t->tv_nsec) / 1000000;
}

/* Renew the lease if a third of it has passed; 0 or -1. */
static int renew_if_due(struct gc_cluster *g)
{
	if (ms_since(&g->renewed) <= plx_lk_lease_ms(g->lk) / 3)
		return 0;
	if (plx_lk_call(g->lk, PLX_LK_RENEW, NULL, NULL, NULL, 0) < 0) {
		plx_seterr(PLX_EK_STORE, "lost the lock manager at %s: %s",
			   g->addr, plx_errmsg());
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &g->renewed);
	return 0;
}

/* A request; the lease is renewed first if it is due.  Status or -1. */
static int gc_call(struct gc_cluster *g, enum plx_lk_op op, u64 id, u64 gen,
		   struct plx_lk_grant *grant)
{
	struct plx_lk_args a = { .id = id, .generation = gen };
	struct plx_lk_grant local;
	char text[256] = "";
	int st;

	if (!grant)
		grant = &local;
	if (renew_if_due(g))
		return -1;
	st = plx_lk_call(g->lk, op, &a, grant, text, sizeof(text));
	if (st < 0) {
		plx_seterr(PLX_EK_STORE, "lost the lock manager at %s: %s",
			   g->addr, plx_errmsg());
		return -1;
	}
	if (st == PLX_LK_EBUSY)
		plx_seterr(PLX_EK_STORE, "held by host %u", grant->holder);
	else if (st)
		plx_seterr(PLX_EK_STORE, "%s: %s", plx_lk_status_name(st), text);
	return st;
}

static int gc_lock_registry(void *arg)
{
	struct gc_cluster *g = arg;
	struct plx_lk_grant grant;

	if (gc_call(g, PLX_LK_LOCK_REGISTRY, 0, 0, &grant)) {
		plx_seterr(PLX_EK_STORE, "the VDI registry lock: %s",
			   plx_errmsg());
		return -1;
	}
	g->registry_gen = grant.generation;
	return 0;
}

static void gc_unlock_registry(void *arg)
{
	struct gc_cluster *g = arg;

	if (gc_call(g, PLX_LK_UNLOCK_REGISTRY, 0, g->registry_gen, NULL))
		fprintf(stderr, "parallax: gc: cannot release the registry lock: %s\n",
			plx_errmsg());
}

static int gc_lock_bitmap(void *arg, u64 extent)
{
	return gc_call(arg, PLX_LK_LOCK_BITMAP, extent, 0, NULL) ? -1 : 0;
}

static void gc_unlock_bitmap(void *arg, u64 extent)
{
	if (gc_call(arg, PLX_LK_UNLOCK_BITMAP, extent, 0, NULL))
		fprintf(stderr, "parallax: gc: cannot release the bitmap lock of extent %llu: %s\n",
			(unsigned long long)extent, plx_errmsg());
}

static int gc_job(struct gc_cluster *g, u32 host, u32 kind, u64 epoch,
		  u64 extent, u64 generation, u64 offset, const u8 *bits,
		  u32 nbytes, unsigned int timeout_ms, u64 *freed)
{
	struct plx_lk_job_result res;

	if (renew_if_due(g))
		return -1;
	if (plx_lk_gc_job(g->lk, host, kind, epoch, extent, generation,
			  (uint32_t)offset, bits, nbytes, timeout_ms, &res))
		return -1;
	if (res.error) {
		plx_seterr(PLX_EK_STORE, "host %u: %s", host,
			   strerror(res.error));
		return -1;
	}
	if (freed)
		*freed = res.freed;
	return 0;
}

static int gc_begin(void *arg, u32 host, u64 epoch)
{
	return gc_job(arg, host, PLX_LK_JOB_BEGIN, epoch, 0, 0, 0, NULL, 0,
		      GC_BEGIN_TIMEOUT_MS, NULL);
}

static int gc_reclaim(void *arg, u32 host, u64 epoch, u64 extent,
		      u64 generation, u64 offset, const u8 *bits, u32 nbytes,
		      u64 *freed)
{
	return gc_job(arg, host, PLX_LK_JOB_RECLAIM, epoch, extent, generation,
		      offset, bits, nbytes, GC_JOB_TIMEOUT_MS, freed);
}

static void gc_end(void *arg, u32 host, u64 epoch)
{
	if (gc_job(arg, host, PLX_LK_JOB_END, epoch, 0, 0, 0, NULL, 0,
		   GC_JOB_TIMEOUT_MS, NULL))
		fprintf(stderr, "parallax: gc: host %u did not end the collection (its devices end it at the next one): %s\n",
			host, plx_errmsg());
}

int cli_gc_cluster_ops(struct plx_store *s, const char *addr,
		       struct plx_gc_ops *ops, void **arg)
{
	struct gc_cluster *g = calloc(1, sizeof(*g));
	u32 host;

	if (!g)
		return cli_err(EXIT_STORE, "out of memory");
	if (cli_host_id(NULL, &host)) {
		free(g);
		return EXIT_USAGE;
	}
	snprintf(g->addr, sizeof(g->addr), "%s", addr);
	g->lk = cli_lk_connect(addr, s, host);
	if (!g->lk) {
		free(g);
		return EXIT_STORE;
	}
	clock_gettime(CLOCK_MONOTONIC, &g->renewed);
	ops->begin = gc_begin;
	ops->reclaim = gc_reclaim;
	ops->end = gc_end;
	ops->lock_registry = gc_lock_registry;
	ops->unlock_registry = gc_unlock_registry;
	ops->lock_bitmap = gc_lock_bitmap;
	ops->unlock_bitmap = gc_unlock_bitmap;
	*arg = g;
	return 0;
}

void cli_gc_cluster_done(void *arg)
{
	struct gc_cluster *g = arg;

	plx_lk_close(g->lk);
	free(g);
}
