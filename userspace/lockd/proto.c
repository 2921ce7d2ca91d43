// SPDX-License-Identifier: GPL-2.0
/*
 * parallax-lockd: connections, frames and the lock operations.
 *
 * Nothing here touches a socket: bytes come in through lkd_conn_input()
 * and replies are queued in the connection's output buffer, which net.c
 * (or the fuzz harness) drains.  A frame that fails any check before its
 * tag and seq are verified closes the connection without a reply and
 * without changing anything; an authenticated request always gets a
 * reply.  Every change to the lock state is written and synced before
 * the reply is queued.
 */
#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>

#include <openssl/rand.h>

#include "lockd.h"

struct lkd_req {
	struct lkd *d;
	struct lkd_conn *c;
	uint8_t op;
	uint32_t seq;
	uint64_t id;
	uint64_t gen;
	uint32_t type;
	uint32_t flags;
};

/* ---- Output ------------------------------------------------------------- */

static void queue(struct lkd_conn *c, const uint8_t *buf, size_t n)
{
	size_t need = c->out_len + n;

	if (c->dead)
		return;
	if (need > LKD_MAX_OUT) {
		/* A peer that does not read its replies is dropped. */
		c->dead = true;
		return;
	}
	if (need > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 512;
		void *p;

		while (cap < need)
			cap *= 2;
		p = realloc(c->out, cap);
		if (!p) {
			c->dead = true;
			return;
		}
		c->out = p;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, buf, n);
	c->out_len += n;
}

static void reply(struct lkd_conn *c, uint8_t op, uint16_t status,
		  uint32_t seq, const void *payload, uint32_t len)
{
	size_t n = PLX_LK_HDR_LEN + (size_t)len + PLX_LK_MAC_LEN;
	uint8_t *buf = malloc(n);

	if (!buf) {
		c->dead = true;
		return;
	}
	n = plx_lk_build(&c->ss, 'S', op, status, seq, payload, len, buf);
	queue(c, buf, n);
	free(buf);
}

static const char *what_name(uint8_t op)
{
	return plx_lk_op_name(op);
}

/* A grant (status OK, or EBUSY with the holder) with an optional text. */
static void reply_grant(struct lkd_req *r, uint16_t status, uint64_t id,
			uint64_t gen, uint32_t holder, uint32_t type,
			const char *text)
{
	uint8_t buf[sizeof(struct plx_lk_grant) + 160];
	struct plx_lk_grant g = {
		.id = htobe64(id),
		.generation = htobe64(gen),
		.holder = htobe32(holder),
		.type = htobe32(type),
		.lease_ms = htobe32(r->d->lease_ms),
	};
	size_t tlen = text ? strnlen(text, sizeof(buf) - sizeof(g)) : 0;

	memcpy(buf, &g, sizeof(g));
	if (tlen)
		memcpy(buf + sizeof(g), text, tlen);
	reply(r->c, r->op, status, r->seq, buf, (uint32_t)(sizeof(g) + tlen));
}

/* A refusal: the reason goes to the client and to the log. */
static void __attribute__((format(printf, 3, 4)))
refuse(struct lkd_req *r, uint16_t status, const char *fmt, ...)
{
	char text[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	lkd_log(r->d, "host %u %s id %llu: refused %s: %s", r->c->host,
		what_name(r->op), (unsigned long long)r->id,
		plx_lk_status_name(status), text);
	reply(r->c, r->op, status, r->seq, text, (uint32_t)strlen(text));
}

/* A refusal that is routine (nothing to fetch): not logged. */
static void quiet_refuse(struct lkd_req *r, uint16_t status, const char *text)
{
	reply(r->c, r->op, status, r->seq, text, (uint32_t)strlen(text));
}

/*
 * A release names the grant it gives back: refuse (and return false)
 * unless @what is held by the asking host at generation r->gen.
 */
static bool releasable(struct lkd_req *r, const char *what, uint64_t gen,
		       uint32_t holder)
{
	if (gen != r->gen) {
		refuse(r, PLX_LK_ESTALE, "%s generation is %llu, not %llu", what,
		       (unsigned long long)gen, (unsigned long long)r->gen);
		return false;
	}
	if (holder != r->c->host) {
		refuse(r, PLX_LK_EPERM, "%s is not held by host %u", what,
		       r->c->host);
		return false;
	}
	return true;
}

static void busy(struct lkd_req *r, uint64_t id, uint64_t gen,
		 uint32_t holder, uint32_t type)
{
	char text[80];

	snprintf(text, sizeof(text), "held by host %u", holder);
	lkd_log(r->d, "host %u %s id %llu: refused EBUSY: %s", r->c->host,
		what_name(r->op), (unsigned long long)id, text);
	reply_grant(r, PLX_LK_EBUSY, id, gen, holder, type, text);
}

static void granted(struct lkd_req *r, const char *what, uint64_t id,
		    uint64_t gen, uint32_t type)
{
	lkd_log(r->d, "host %u: %s %llu generation %llu", r->c->host, what,
		(unsigned long long)id, (unsigned long long)gen);
	reply_grant(r, PLX_LK_OK, id, gen, r->c->host, type, NULL);
}

/* ---- Leases ------------------------------------------------------------- */

enum lease_state { LEASE_LIVE, LEASE_GRACE, LEASE_EXPIRED };

static enum lease_state lease(struct lkd *d, const struct lkd_host *h,
			      uint64_t now)
{
	if (!h)
		return LEASE_EXPIRED;
	if (now - h->renew_ms >= d->lease_ms)
		return LEASE_EXPIRED;
	return h->seen ? LEASE_LIVE : LEASE_GRACE;
}

static bool host_live(struct lkd *d, uint32_t host)
{
	return lease(d, lkd_host_get(d, host, false), lkd_now_ms()) !=
		LEASE_EXPIRED;
}

/* ---- VDI locks ---------------------------------------------------------- */

/* PLX_LK_CACHE in a VDI reply's type when the record is marked. */
static uint32_t cache_type(const struct plx_vdi_record *v)
{
	return plx_vdi_cache_dirty(v) ? PLX_LK_CACHE : 0;
}

/* Refuse (and return false) a request with flags its op does not know. */
static bool flags_ok(struct lkd_req *r, uint32_t known)
{
	if (!(r->flags & ~known))
		return true;
	refuse(r, PLX_LK_EINVAL, "%s does not take flags 0x%x",
	       plx_lk_op_name(r->op), r->flags & ~known);
	return false;
}

/*
 * A VDI marked cache-dirty that @r may not take or release: EBUSY with the
 * holder, the mark in type, and why.
 */
static void dirty_busy(struct lkd_req *r, const struct plx_vdi_record *v,
		       const char *advice)
{
	uint32_t holder = le32_to_cpu(v->holder);
	char text[160];

	if (holder)
		snprintf(text, sizeof(text), "VDI %llu has undrained writes in the local cache of host %u; %s",
			 (unsigned long long)r->id, holder, advice);
	else
		snprintf(text, sizeof(text), "VDI %llu is marked cache-dirty with no holder; %s",
			 (unsigned long long)r->id, advice);
	lkd_log(r->d, "host %u %s id %llu: refused EBUSY: %s", r->c->host,
		what_name(r->op), (unsigned long long)r->id, text);
	reply_grant(r, PLX_LK_EBUSY, r->id, le64_to_cpu(v->lock_generation),
		    holder, PLX_LK_CACHE, text);
}

/*
 * LOCK_VDI.  The cache-dirty mark is set before the device is made (the
 * kernel target copies the record when it loads its table and carries
 * the byte over in its snapshot commits), and it keeps the VDI from
 * every other host until the holder releases it clean.
 */
static void op_lock_vdi(struct lkd_req *r)
{
	struct lkd *d = r->d;
	struct plx_vdi_record *v;
	bool cache = r->flags & PLX_LK_CACHE;
	uint32_t holder;
	int st;

	if (!flags_ok(r, PLX_LK_CACHE))
		return;
	st = lkd_vdi_load(d, r->id, &v);
	if (st)
		return refuse(r, (uint16_t)st, "%s", plx_errmsg());
	if (le64_to_cpu(v->flags) & PLX_VDI_DELETED)
		return refuse(r, PLX_LK_ENOENT, "VDI %llu is deleted",
			      (unsigned long long)r->id);
	holder = le32_to_cpu(v->holder);
	if (holder == r->c->host) {
		/* Its own VDI, e.g. after a restart: it may replay its log. */
		if (cache && !plx_vdi_cache_dirty(v)) {
			plx_vdi_set_cache_dirty(v, true);
			if (lkd_vdi_commit(d, r->id))
				return refuse(r, PLX_LK_EIO, "%s",
					      plx_errmsg());
			lkd_vdi_set(d, r->id, holder,
				    le64_to_cpu(v->lock_generation), v->name,
				    true);
			lkd_log(d, "host %u: VDI %llu marked cache-dirty",
				holder, (unsigned long long)r->id);
		}
		return reply_grant(r, PLX_LK_OK, r->id,
				   le64_to_cpu(v->lock_generation), holder,
				   cache_type(v), NULL);
	}
	if (holder && plx_vdi_cache_dirty(v))
		return dirty_busy(r, v, "it must drain there first");
	if (holder)
		return busy(r, r->id, le64_to_cpu(v->lock_generation), holder,
			    0);
	if (plx_vdi_cache_dirty(v))
		return dirty_busy(r, v, "break it with discard to lose them");
	v->holder = cpu_to_le32(r->c->host);
	v->lock_generation = cpu_to_le64(le64_to_cpu(v->lock_generation) + 1);
	plx_vdi_set_cache_dirty(v, cache);
	if (lkd_vdi_commit(d, r->id))
		return refuse(r, PLX_LK_EIO, "%s", plx_errmsg());
	lkd_vdi_set(d, r->id, r->c->host, le64_to_cpu(v->lock_generation),
		    v->name, cache);
	granted(r, cache ? "locked VDI (cache-dirty)" : "locked VDI", r->id,
		le64_to_cpu(v->lock_generation), cache_type(v));
}

static void op_unlock_vdi(struct lkd_req *r)
{
	struct lkd *d = r->d;
	struct plx_vdi_record *v;
	bool was_dirty;
	char what[40];
	int st;

	if (!flags_ok(r, PLX_LK_CLEAN))
		return;
	st = lkd_vdi_load(d, r->id, &v);
	if (st)
		return refuse(r, (uint16_t)st, "%s", plx_errmsg());
	snprintf(what, sizeof(what), "VDI %llu lock", (unsigned long long)r->id);
	if (!releasable(r, what, le64_to_cpu(v->lock_generation),
			le32_to_cpu(v->holder)))
		return;
	was_dirty = plx_vdi_cache_dirty(v);
	/* The lock stays with its log until the holder says it drained. */
	if (was_dirty && !(r->flags & PLX_LK_CLEAN))
		return dirty_busy(r, v, "drain it and release it clean");
	v->holder = 0;
	plx_vdi_set_cache_dirty(v, false);
	if (lkd_vdi_commit(d, r->id))
		return refuse(r, PLX_LK_EIO, "%s", plx_errmsg());
	lkd_vdi_set(d, r->id, 0, 0, NULL, false);
	lkd_log(d, "host %u: unlocked VDI %llu generation %llu%s", r->c->host,
		(unsigned long long)r->id, (unsigned long long)r->gen,
		was_dirty ? " (cache drained)" : "");
	reply_grant(r, PLX_LK_OK, r->id, r->gen, 0, 0, NULL);
}

/* ---- Extents ------------------------------------------------------------ */

/* Is @ext an extent a host may lock?  Refuses (and returns false) if not. */
static bool extent_ok(struct lkd_req *r, uint64_t ext)
{
	if (ext >= r->d->geo.nr_extents) {
		refuse(r, PLX_LK_ENOENT, "no extent %llu (the store has %llu)",
		       (unsigned long long)ext,
		       (unsigned long long)r->d->geo.nr_extents);
		return false;
	}
	if (ext < r->d->geo.system_extents) {
		refuse(r, PLX_LK_EINVAL, "extent %llu is in the system area",
		       (unsigned long long)ext);
		return false;
	}
	return true;
}

static const char *type_name(unsigned int type)
{
	switch (type) {
	case PLX_EXT_FREE:
		return "free";
	case PLX_EXT_SYSTEM:
		return "system";
	case PLX_EXT_DATA:
		return "data";
	case PLX_EXT_METADATA:
		return "metadata";
	}
	return "unknown";
}

static void claim(struct lkd_req *r, uint64_t ext, uint32_t type)
{
	struct lkd *d = r->d;
	struct plx_extent_entry *e = lkd_ext(d, ext);
	struct plx_extent_entry old = *e;

	e->type = (uint8_t)type;
	e->holder = cpu_to_le32(r->c->host);
	e->generation = cpu_to_le64(le64_to_cpu(e->generation) + 1);
	d->ext_type[ext] = (uint8_t)type;
	if (lkd_cat_commit(d, ext)) {
		*e = old;
		d->ext_type[ext] = old.type;
		return refuse(r, PLX_LK_EIO, "%s", plx_errmsg());
	}
	lkd_log(d, "host %u: claimed %s extent %llu generation %llu%s",
		r->c->host, type_name(type), (unsigned long long)ext,
		(unsigned long long)le64_to_cpu(e->generation),
		old.type == PLX_EXT_FREE ? " (was free)" : "");
	reply_grant(r, PLX_LK_OK, ext, le64_to_cpu(e->generation),
		    r->c->host, type, NULL);
}

static void op_claim_extent(struct lkd_req *r)
{
	struct lkd *d = r->d;
	struct plx_extent_entry *e;
	uint64_t ext, best = 0, first_free = 0;
	int64_t best_free = 0, f;
	uint32_t holder;

	if (r->type != PLX_EXT_DATA && r->type != PLX_EXT_METADATA)
		return refuse(r, PLX_LK_EINVAL, "type %u is neither data (2) nor metadata (3)",
			      r->type);
	if (r->id) {
		if (!extent_ok(r, r->id))
			return;
		e = lkd_ext(d, r->id);
		if (e->type != PLX_EXT_FREE && e->type != r->type)
			return refuse(r, PLX_LK_EINVAL, "extent %llu is a %s extent",
				      (unsigned long long)r->id,
				      type_name(e->type));
		holder = le32_to_cpu(e->holder);
		if (holder == r->c->host)
			return reply_grant(r, PLX_LK_OK, r->id,
					   le64_to_cpu(e->generation), holder,
					   e->type, NULL);
		if (holder)
			return busy(r, r->id, le64_to_cpu(e->generation),
				    holder, e->type);
		/*
		 * A GC is sweeping this unheld extent's bitmap on disk: a
		 * kernel target granted it now would allocate from a bitmap
		 * being rewritten under it.
		 */
		if (e->bitmap_holder)
			return busy(r, r->id, le64_to_cpu(e->generation),
				    le32_to_cpu(e->bitmap_holder), e->type);
		return claim(r, r->id, r->type);
	}
	/*
	 * Any extent: the unheld one of this type with the most free blocks
	 * (counted from its bitmap as it is on disk now, since the kernel
	 * targets allocate from it), else the first free extent.
	 */
	for (ext = d->geo.system_extents; ext < d->geo.nr_extents; ext++) {
		e = lkd_ext(d, ext);
		/* Held, or its bitmap is being swept by a GC. */
		if (e->holder || e->bitmap_holder)
			continue;
		if (e->type == PLX_EXT_FREE) {
			if (!first_free)
				first_free = ext;
			continue;
		}
		if (e->type != r->type)
			continue;
		f = lkd_extent_free(d, ext);
		if (f < 0) {
			lkd_log(d, "warning: extent %llu skipped: %s",
				(unsigned long long)ext, plx_errmsg());
			continue;
		}
		if (f > best_free) {
			best_free = f;
			best = ext;
		}
	}
	if (!best)
		best = first_free;
	if (!best)
		return refuse(r, PLX_LK_ENOSPC, "no unheld %s extent with free blocks and no free extent",
			      type_name(r->type));
	claim(r, best, r->type);
}

static void op_release_extent(struct lkd_req *r)
{
	struct lkd *d = r->d;
	struct plx_extent_entry *e, old;
	char what[40];

	if (!extent_ok(r, r->id))
		return;
	e = lkd_ext(d, r->id);
	snprintf(what, sizeof(what), "extent %llu", (unsigned long long)r->id);
	if (!releasable(r, what, le64_to_cpu(e->generation),
			le32_to_cpu(e->holder)))
		return;
	old = *e;
	e->holder = 0;
	if (lkd_cat_commit(d, r->id)) {
		*e = old;
		return refuse(r, PLX_LK_EIO, "%s", plx_errmsg());
	}
	lkd_log(d, "host %u: released extent %llu generation %llu",
		r->c->host, (unsigned long long)r->id,
		(unsigned long long)r->gen);
	reply_grant(r, PLX_LK_OK, r->id, r->gen, 0, e->type, NULL);
}

static void op_lock_bitmap(struct lkd_req *r, bool lock)
{
	struct lkd *d = r->d;
	struct plx_extent_entry *e, old;
	uint32_t holder;

	if (!extent_ok(r, r->id))
		return;
	e = lkd_ext(d, r->id);
	holder = le32_to_cpu(e->bitmap_holder);
	if (lock) {
		if (e->type != PLX_EXT_DATA && e->type != PLX_EXT_METADATA)
			return refuse(r, PLX_LK_EINVAL, "extent %llu is a %s extent",
				      (unsigned long long)r->id,
				      type_name(e->type));
		if (holder == r->c->host)
			return reply_grant(r, PLX_LK_OK, r->id,
					   le64_to_cpu(e->generation), holder,
					   e->type, NULL);
		if (holder)
			return busy(r, r->id, le64_to_cpu(e->generation),
				    holder, e->type);
		/*
		 * The holder's kernel target keeps this bitmap in memory and
		 * writes it back: only the holder may sweep it (gc_reclaim).
		 */
		if (e->holder)
			return busy(r, r->id, le64_to_cpu(e->generation),
				    le32_to_cpu(e->holder), e->type);
	} else if (holder != r->c->host) {
		return refuse(r, PLX_LK_EPERM, "the bitmap of extent %llu is not held by host %u",
			      (unsigned long long)r->id, r->c->host);
	}
	old = *e;
	e->bitmap_holder = cpu_to_le32(lock ? r->c->host : 0);
	/*
	 * An unheld extent left with nothing allocated but its bitmap blocks
	 * goes back to FREE, so that it can be claimed for either type and a
	 * store whose contents are all deleted looks freshly formatted.  The
	 * bitmap is read now, under the bitmap lock just being released.
	 */
	if (!lock && !e->holder && e->type != PLX_EXT_FREE &&
	    lkd_extent_used(d, r->id) == 0) {
		e->type = PLX_EXT_FREE;
		e->used = cpu_to_le32((uint32_t)d->geo.bitmap_blocks);
	}
	d->ext_type[r->id] = e->type;
	if (lkd_cat_commit(d, r->id)) {
		*e = old;
		d->ext_type[r->id] = old.type;
		return refuse(r, PLX_LK_EIO, "%s", plx_errmsg());
	}
	lkd_log(d, "host %u: %s the bitmap of extent %llu%s", r->c->host,
		lock ? "locked" : "unlocked", (unsigned long long)r->id,
		e->type != old.type ? " (now free)" : "");
	reply_grant(r, PLX_LK_OK, r->id, le64_to_cpu(e->generation),
		    lock ? r->c->host : 0, e->type, NULL);
}

/* ---- The registry lock (in the superblock) ------------------------------ */

static void op_lock_registry(struct lkd_req *r, bool lock)
{
	struct lkd *d = r->d;
	uint32_t holder = le32_to_cpu(d->sb->registry_holder);
	uint64_t gen = le64_to_cpu(d->sb->registry_generation);

	if (lock) {
		if (holder == r->c->host)
			return reply_grant(r, PLX_LK_OK, 0, gen, holder, 0,
					   NULL);
		if (holder)
			return busy(r, 0, gen, holder, 0);
		d->sb->registry_holder = cpu_to_le32(r->c->host);
		d->sb->registry_generation = cpu_to_le64(gen + 1);
		if (lkd_sb_commit(d)) {
			d->sb->registry_holder = 0;
			d->sb->registry_generation = cpu_to_le64(gen);
			return refuse(r, PLX_LK_EIO, "%s", plx_errmsg());
		}
		return granted(r, "locked the registry", 0, gen + 1, 0);
	}
	if (!releasable(r, "registry lock", gen, holder))
		return;
	d->sb->registry_holder = 0;
	if (lkd_sb_commit(d)) {
		d->sb->registry_holder = cpu_to_le32(holder);
		return refuse(r, PLX_LK_EIO, "%s", plx_errmsg());
	}
	lkd_log(d, "host %u: unlocked the registry generation %llu",
		r->c->host, (unsigned long long)gen);
	reply_grant(r, PLX_LK_OK, 0, gen, 0, 0, NULL);
}

/* ---- Fencing ------------------------------------------------------------ */

/* May the lock of @holder be broken?  Refuses (returns false) if not. */
static bool breakable(struct lkd_req *r, uint32_t holder)
{
	if (!holder || (r->flags & PLX_LK_FORCE) || !host_live(r->d, holder))
		return true;
	refuse(r, PLX_LK_EPERM, "host %u's lease is live; break it with force only if that host is dead",
	       holder);
	return false;
}

/* Close every connection of @host but the requester's. */
static void close_host(struct lkd *d, uint32_t host, struct lkd_conn *keep)
{
	size_t i;

	for (i = 0; i < LKD_MAX_CONNS; i++) {
		struct lkd_conn *c = d->conns[i];

		if (c && c != keep && c->hello && c->host == host)
			c->dead = true;
	}
}

/*
 * Break VDI @id's lock (only if @only_holder holds it, when non-zero).  A
 * cache-dirty VDI is left alone, *@kept set, unless @discard.
 */
static int break_vdi(struct lkd *d, uint64_t id, uint32_t only_holder,
		     bool discard, uint32_t *holder, uint64_t *gen,
		     bool *kept)
{
	struct plx_vdi_record *v;
	bool dirty;
	int st;

	*kept = false;
	st = lkd_vdi_load(d, id, &v);
	if (st)
		return st;
	*holder = le32_to_cpu(v->holder);
	*gen = le64_to_cpu(v->lock_generation);
	dirty = plx_vdi_cache_dirty(v);
	if ((!*holder && !dirty) || (only_holder && *holder != only_holder))
		return PLX_LK_OK;
	if (dirty && !discard) {
		*kept = true;
		return PLX_LK_OK;
	}
	v->holder = 0;
	v->lock_generation = cpu_to_le64(*gen + 1);
	plx_vdi_set_cache_dirty(v, false);
	if (lkd_vdi_commit(d, id))
		return PLX_LK_EIO;
	*gen += 1;
	lkd_vdi_set(d, id, 0, 0, NULL, false);
	lkd_log(d, "fenced VDI %llu of host %u: lock generation now %llu",
		(unsigned long long)id, *holder, (unsigned long long)*gen);
	if (dirty)
		lkd_log(d, "discarded the undrained local cache of VDI %llu on host %u",
			(unsigned long long)id, *holder);
	return PLX_LK_OK;
}

/* Clear @host's holds in catalogue entry @ext; true if it changed. */
static bool fence_extent(struct lkd *d, uint64_t ext, uint32_t host)
{
	struct plx_extent_entry *e = lkd_ext(d, ext);
	bool changed = false;

	if (le32_to_cpu(e->holder) && (!host || le32_to_cpu(e->holder) == host)) {
		lkd_log(d, "fenced extent %llu of host %u: generation now %llu",
			(unsigned long long)ext, le32_to_cpu(e->holder),
			(unsigned long long)le64_to_cpu(e->generation) + 1);
		e->holder = 0;
		e->generation = cpu_to_le64(le64_to_cpu(e->generation) + 1);
		changed = true;
	}
	if (le32_to_cpu(e->bitmap_holder) &&
	    (!host || le32_to_cpu(e->bitmap_holder) == host)) {
		lkd_log(d, "fenced the bitmap lock of extent %llu of host %u",
			(unsigned long long)ext, le32_to_cpu(e->bitmap_holder));
		e->bitmap_holder = 0;
		changed = true;
	}
	return changed;
}

/* BREAK of a host: generation = locks broken, reserved = dirty VDIs kept. */
static void reply_host_break(struct lkd_req *r, uint32_t host, uint64_t count,
			     uint32_t kept)
{
	struct plx_lk_grant g = {
		.id = htobe64(host),
		.generation = htobe64(count),
		.holder = htobe32(host),
		.type = htobe32(PLX_LK_WHAT_HOST),
		.lease_ms = htobe32(r->d->lease_ms),
		.reserved = htobe32(kept),
	};

	reply(r->c, r->op, PLX_LK_OK, r->seq, &g, sizeof(g));
}

static void break_host(struct lkd_req *r)
{
	struct lkd *d = r->d;
	uint32_t host = (uint32_t)r->id, holder;
	uint64_t count = 0, i, ext, gen;
	struct plx_catalogue_block *backup = (void *)d->io2;
	bool discard = r->flags & PLX_LK_DISCARD, kept;
	uint32_t nr_kept = 0;
	size_t k;

	if (!r->id || r->id > UINT32_MAX)
		return refuse(r, PLX_LK_EINVAL, "no host %llu",
			      (unsigned long long)r->id);
	if (!breakable(r, host))
		return;
	/* Catalogue: one write per block that changes. */
	for (i = 0; i < d->geo.catalogue_blocks; i++) {
		bool changed = false;

		memcpy(backup, &d->cat[i], PLX_BLOCK_SIZE);
		for (k = 0; k < PLX_CATALOGUE_PER_BLOCK; k++) {
			ext = i * PLX_CATALOGUE_PER_BLOCK + k;
			if (ext < d->geo.system_extents ||
			    ext >= d->geo.nr_extents)
				continue;
			if (fence_extent(d, ext, host)) {
				changed = true;
				count++;
			}
		}
		if (changed && lkd_cat_commit(d, i * PLX_CATALOGUE_PER_BLOCK)) {
			memcpy(&d->cat[i], backup, PLX_BLOCK_SIZE);
			return refuse(r, PLX_LK_EIO, "%s", plx_errmsg());
		}
	}
	/* VDIs: the table lists every held one; each record is re-read. */
	for (k = d->nr_vdis; k-- > 0;) {
		if (k >= d->nr_vdis || d->vdis[k].holder != host)
			continue;
		if (break_vdi(d, d->vdis[k].id, host, discard, &holder, &gen,
			      &kept))
			return refuse(r, PLX_LK_EIO, "%s", plx_errmsg());
		if (kept) {
			lkd_log(d, "kept VDI %llu of host %u: its local cache holds undrained writes",
				(unsigned long long)d->vdis[k].id, host);
			nr_kept++;
		} else if (holder == host) {
			count++;
		}
	}
	if (le32_to_cpu(d->sb->registry_holder) == host) {
		gen = le64_to_cpu(d->sb->registry_generation);
		d->sb->registry_holder = 0;
		d->sb->registry_generation = cpu_to_le64(gen + 1);
		if (lkd_sb_commit(d)) {
			d->sb->registry_holder = cpu_to_le32(host);
			d->sb->registry_generation = cpu_to_le64(gen);
			return refuse(r, PLX_LK_EIO, "%s", plx_errmsg());
		}
		lkd_log(d, "fenced the registry lock of host %u: generation now %llu",
			host, (unsigned long long)gen + 1);
		count++;
	}
	close_host(d, host, r->c);
	lkd_log(d, "host %u broke every lock of host %u: %llu locks%s; %u cache-dirty VDI locks kept",
		r->c->host, host, (unsigned long long)count,
		(r->flags & PLX_LK_FORCE) ? " (forced)" : "", nr_kept);
	reply_host_break(r, host, count, nr_kept);
}

static void op_break(struct lkd_req *r)
{
	struct lkd *d = r->d;
	struct plx_extent_entry *e, old;
	struct plx_vdi_record *v;
	uint32_t holder;
	bool kept;
	uint64_t gen;
	int st;

	if (!flags_ok(r, PLX_LK_FORCE | PLX_LK_DISCARD))
		return;
	switch (r->type) {
	case PLX_LK_WHAT_HOST:
		return break_host(r);
	case PLX_LK_WHAT_VDI:
		st = lkd_vdi_load(d, r->id, &v);
		if (st)
			return refuse(r, (uint16_t)st, "%s", plx_errmsg());
		if (plx_vdi_cache_dirty(v) && !(r->flags & PLX_LK_DISCARD))
			return dirty_busy(r, v, "breaking it loses them (discard)");
		if (!breakable(r, le32_to_cpu(v->holder)))
			return;
		st = break_vdi(d, r->id, 0, true, &holder, &gen, &kept);
		if (st)
			return refuse(r, (uint16_t)st, "%s", plx_errmsg());
		break;
	case PLX_LK_WHAT_EXTENT:
		if (!extent_ok(r, r->id))
			return;
		e = lkd_ext(d, r->id);
		if (!breakable(r, le32_to_cpu(e->holder)) ||
		    !breakable(r, le32_to_cpu(e->bitmap_holder)))
			return;
		old = *e;
		holder = le32_to_cpu(e->holder);
		if (fence_extent(d, r->id, 0) && lkd_cat_commit(d, r->id)) {
			*e = old;
			return refuse(r, PLX_LK_EIO, "%s", plx_errmsg());
		}
		gen = le64_to_cpu(e->generation);
		break;
	case PLX_LK_WHAT_REGISTRY:
		holder = le32_to_cpu(d->sb->registry_holder);
		gen = le64_to_cpu(d->sb->registry_generation);
		if (!breakable(r, holder))
			return;
		if (holder) {
			d->sb->registry_holder = 0;
			d->sb->registry_generation = cpu_to_le64(gen + 1);
			if (lkd_sb_commit(d)) {
				d->sb->registry_holder = cpu_to_le32(holder);
				d->sb->registry_generation = cpu_to_le64(gen);
				return refuse(r, PLX_LK_EIO, "%s",
					      plx_errmsg());
			}
			gen++;
			lkd_log(d, "fenced the registry lock of host %u: generation now %llu",
				holder, (unsigned long long)gen);
		}
		break;
	default:
		return refuse(r, PLX_LK_EINVAL, "BREAK type %u is not host (1), vdi (2), extent (3) or registry (4)",
			      r->type);
	}
	lkd_log(d, "host %u broke %s %llu of host %u%s", r->c->host,
		r->type == PLX_LK_WHAT_VDI ? "VDI" :
		r->type == PLX_LK_WHAT_EXTENT ? "extent" : "registry",
		(unsigned long long)r->id, holder,
		(r->flags & PLX_LK_FORCE) ? " (forced)" : "");
	reply_grant(r, PLX_LK_OK, r->id, gen, holder, r->type, NULL);
}

/* ---- GC jobs ------------------------------------------------------------ */

static const char *job_kind_name(uint32_t kind)
{
	switch (kind) {
	case PLX_LK_JOB_BEGIN:
		return "begin";
	case PLX_LK_JOB_RECLAIM:
		return "reclaim";
	case PLX_LK_JOB_END:
		return "end";
	}
	return "?";
}

/* A live connection of @host's parallaxd, or NULL. */
static struct lkd_conn *helper_conn(struct lkd *d, uint32_t host)
{
	size_t i;

	for (i = 0; i < LKD_MAX_CONNS; i++) {
		struct lkd_conn *c = d->conns[i];

		if (c && c->hello && c->helper && c->host == host && !c->dead &&
		    !c->closing)
			return c;
	}
	return NULL;
}

static struct lkd_job *job_find(struct lkd *d, uint64_t id)
{
	size_t i;

	for (i = 0; i < d->nr_jobs; i++)
		if (d->jobs[i]->id == id)
			return d->jobs[i];
	return NULL;
}

static void job_remove(struct lkd *d, size_t i)
{
	free(d->jobs[i]);
	memmove(&d->jobs[i], &d->jobs[i + 1],
		(d->nr_jobs - i - 1) * sizeof(d->jobs[0]));
	d->nr_jobs--;
}

static void job_finish(struct lkd *d, struct lkd_job *j, int32_t error,
		       uint64_t freed)
{
	j->state = JOB_DONE;
	j->error = error;
	j->freed = freed;
	j->done_ms = lkd_now_ms();
	/* Reclaims are many and routine: only their failures are logged. */
	if (error || j->job.kind != PLX_LK_JOB_RECLAIM)
		lkd_log(d, "job %llu (%s epoch %llu extent %llu) for host %u done: %s, %llu freed",
			(unsigned long long)j->id, job_kind_name(j->job.kind),
			(unsigned long long)j->job.epoch,
			(unsigned long long)j->job.extent, j->job.host,
			error > 0 ? strerror(error) : error ? "error" : "ok",
			(unsigned long long)freed);
}

/*
 * End every unfinished job of @host with EHOSTDOWN (its parallaxd is
 * gone), or with @serial only those that connection had fetched.
 */
static void jobs_host_down(struct lkd *d, uint32_t host, uint64_t serial)
{
	size_t i;

	for (i = 0; i < d->nr_jobs; i++) {
		struct lkd_job *j = d->jobs[i];

		if (j->state == JOB_DONE || j->job.host != host)
			continue;
		if (serial && (j->state != JOB_RUNNING || j->conn != serial))
			continue;
		job_finish(d, j, EHOSTDOWN, 0);
	}
}

/*
 * Room for one more job: forget a finished one, one whose result was
 * read first, oldest first.  Pending and running jobs are never dropped;
 * if they fill the table the poster is told to try again (EAGAIN).
 */
static bool job_room(struct lkd *d)
{
	size_t i;
	int pass;

	if (d->nr_jobs < LKD_MAX_JOBS)
		return true;
	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < d->nr_jobs; i++)
			if (d->jobs[i]->state == JOB_DONE &&
			    (pass || d->jobs[i]->read)) {
				job_remove(d, i);
				return true;
			}
	return false;
}

static void op_gc_post(struct lkd_req *r, const uint8_t *p, uint32_t len)
{
	struct lkd *d = r->d;
	struct plx_lk_job w, job;
	struct lkd_job *j;

	if (len < sizeof(w))
		return refuse(r, PLX_LK_EINVAL, "GC_POST takes at least %zu bytes, not %u",
			      sizeof(w), len);
	memcpy(&w, p, sizeof(w));
	job.epoch = be64toh(w.epoch);
	job.extent = be64toh(w.extent);
	job.generation = be64toh(w.generation);
	job.host = be32toh(w.host);
	job.kind = be32toh(w.kind);
	job.offset = be32toh(w.offset);
	job.nbytes = be32toh(w.nbytes);
	r->id = job.extent;
	if (len != sizeof(w) + (uint64_t)job.nbytes)
		return refuse(r, PLX_LK_EINVAL, "GC_POST of %u bytes says nbytes %u",
			      len, job.nbytes);
	if (!job.host || !job.epoch)
		return refuse(r, PLX_LK_EINVAL, "a job needs a host and a non-zero epoch");
	switch (job.kind) {
	case PLX_LK_JOB_BEGIN:
	case PLX_LK_JOB_END:
		if (job.nbytes)
			return refuse(r, PLX_LK_EINVAL, "only a reclaim job carries bits");
		break;
	case PLX_LK_JOB_RECLAIM:
		if (!job.nbytes || job.nbytes > PLX_LK_JOB_BITS_MAX ||
		    job.offset % 8)
			return refuse(r, PLX_LK_EINVAL, "a reclaim needs 1..%d bytes of bits at an offset that is a multiple of 8",
				      PLX_LK_JOB_BITS_MAX);
		if (!extent_ok(r, job.extent))
			return;
		break;
	default:
		return refuse(r, PLX_LK_EINVAL, "job kind %u is not begin (1), reclaim (2) or end (3)",
			      job.kind);
	}
	if (!helper_conn(d, job.host))
		return refuse(r, PLX_LK_ENOENT, "host %u has no parallaxd connected",
			      job.host);
	if (!job_room(d))
		return refuse(r, PLX_LK_EAGAIN, "%d GC jobs are waiting; try again",
			      LKD_MAX_JOBS);
	j = calloc(1, sizeof(*j));
	if (!j)
		return refuse(r, PLX_LK_EAGAIN, "out of memory");
	j->id = d->next_job_id++;
	j->state = JOB_PENDING;
	j->posted_ms = lkd_now_ms();
	j->job = job;
	memcpy(j->bits, p + sizeof(w), job.nbytes);
	d->jobs[d->nr_jobs++] = j;
	if (job.kind != PLX_LK_JOB_RECLAIM)
		lkd_log(d, "host %u: job %llu: %s epoch %llu for host %u",
			r->c->host, (unsigned long long)j->id,
			job_kind_name(job.kind), (unsigned long long)job.epoch,
			job.host);
	reply_grant(r, PLX_LK_OK, j->id, 0, job.host, job.kind, NULL);
}

static void op_gc_result(struct lkd_req *r)
{
	struct lkd_job *j = job_find(r->d, r->id);

	if (!j)
		return refuse(r, PLX_LK_ENOENT, "no job %llu (unknown, or its result expired)",
			      (unsigned long long)r->id);
	if (j->state != JOB_DONE)
		return reply_grant(r, PLX_LK_OK, j->id, 0, 0, 0, NULL);
	j->read = true;
	reply_grant(r, PLX_LK_OK, j->id, j->freed, (uint32_t)j->error, 1,
		    NULL);
}

static void op_gc_fetch(struct lkd_req *r)
{
	struct lkd *d = r->d;
	uint8_t buf[8 + sizeof(struct plx_lk_job) + PLX_LK_JOB_BITS_MAX];
	struct plx_lk_job w;
	struct lkd_job *j = NULL;
	uint64_t id;
	size_t i;

	if (!r->c->helper)
		return refuse(r, PLX_LK_EPERM, "only a parallaxd (HELLO flag helper) fetches jobs");
	for (i = 0; i < d->nr_jobs; i++) {
		if (d->jobs[i]->state == JOB_PENDING &&
		    d->jobs[i]->job.host == r->c->host) {
			j = d->jobs[i];
			break;
		}
	}
	if (!j)
		return quiet_refuse(r, PLX_LK_ENOENT, "no job");
	j->state = JOB_RUNNING;
	j->conn = r->c->serial;
	id = htobe64(j->id);
	w.epoch = htobe64(j->job.epoch);
	w.extent = htobe64(j->job.extent);
	w.generation = htobe64(j->job.generation);
	w.host = htobe32(j->job.host);
	w.kind = htobe32(j->job.kind);
	w.offset = htobe32(j->job.offset);
	w.nbytes = htobe32(j->job.nbytes);
	memcpy(buf, &id, 8);
	memcpy(buf + 8, &w, sizeof(w));
	memcpy(buf + 8 + sizeof(w), j->bits, j->job.nbytes);
	reply(r->c, r->op, PLX_LK_OK, r->seq, buf,
	      (uint32_t)(8 + sizeof(w) + j->job.nbytes));
}

static void op_gc_done(struct lkd_req *r)
{
	struct lkd_job *j = job_find(r->d, r->id);

	if (!r->c->helper)
		return refuse(r, PLX_LK_EPERM, "only a parallaxd (HELLO flag helper) ends jobs");
	if (!j)
		return refuse(r, PLX_LK_ENOENT, "no job %llu",
			      (unsigned long long)r->id);
	if (j->job.host != r->c->host)
		return refuse(r, PLX_LK_EPERM, "job %llu is for host %u",
			      (unsigned long long)r->id, j->job.host);
	/* Ended already (EHOSTDOWN), or fetched by an older connection. */
	if (j->state != JOB_RUNNING || j->conn != r->c->serial)
		return refuse(r, PLX_LK_ESTALE, "job %llu is not running on this connection",
			      (unsigned long long)r->id);
	job_finish(r->d, j, (int32_t)r->type, r->gen);
	reply_grant(r, PLX_LK_OK, j->id, j->freed, (uint32_t)j->error, 1,
		    NULL);
}

/* ---- STATUS --------------------------------------------------------------- */

struct text {
	char *buf;
	size_t len, cap;
	bool full;
};

static void __attribute__((format(printf, 2, 3)))
add(struct text *t, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	if (t->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	/* Keep room for the marker line within the reply limit. */
	if (t->len + (size_t)n + 16 > PLX_LK_MAX_REPLY) {
		static const char more[] = "truncated\n";

		memcpy(t->buf + t->len, more, sizeof(more) - 1);
		t->len += sizeof(more) - 1;
		t->full = true;
		return;
	}
	memcpy(t->buf + t->len, line, (size_t)n);
	t->len += (size_t)n;
}

static void op_status(struct lkd_req *r)
{
	struct lkd *d = r->d;
	uint64_t now = lkd_now_ms(), ext;
	struct text t = { 0 };
	size_t i;

	t.buf = malloc(PLX_LK_MAX_REPLY);
	if (!t.buf) {
		r->c->dead = true;
		return;
	}
	add(&t, "lockd %s lease_ms %u\n", d->addr[0] ? d->addr : "-",
	    d->lease_ms);
	for (i = 0; i < d->nr_hosts; i++) {
		const struct lkd_host *h = &d->hosts[i];
		static const char *const names[] = {
			[LEASE_LIVE] = "live",
			[LEASE_GRACE] = "grace",
			[LEASE_EXPIRED] = "expired",
		};

		if (h->seen)
			add(&t, "host %u %s %llu sessions %u\n", h->id,
			    names[lease(d, h, now)],
			    (unsigned long long)(now - h->renew_ms),
			    h->sessions);
		else
			add(&t, "host %u %s - sessions %u\n", h->id,
			    names[lease(d, h, now)], h->sessions);
	}
	for (i = 0; i < d->nr_vdis; i++)
		add(&t, "vdi %llu holder %u generation %llu %sname %s\n",
		    (unsigned long long)d->vdis[i].id, d->vdis[i].holder,
		    (unsigned long long)d->vdis[i].lock_gen,
		    d->vdis[i].cache_dirty ? "cache dirty " : "",
		    d->vdis[i].name);
	for (ext = d->geo.system_extents; ext < d->geo.nr_extents; ext++) {
		const struct plx_extent_entry *e = lkd_ext(d, ext);

		if (e->holder) {
			int64_t f = lkd_extent_free(d, ext);

			if (f < 0)
				add(&t, "extent %llu %s holder %u generation %llu free -\n",
				    (unsigned long long)ext,
				    type_name(e->type),
				    le32_to_cpu(e->holder),
				    (unsigned long long)le64_to_cpu(e->generation));
			else
				add(&t, "extent %llu %s holder %u generation %llu free %lld\n",
				    (unsigned long long)ext,
				    type_name(e->type),
				    le32_to_cpu(e->holder),
				    (unsigned long long)le64_to_cpu(e->generation),
				    (long long)f);
		}
	}
	if (d->sb->registry_holder)
		add(&t, "registry holder %u generation %llu\n",
		    le32_to_cpu(d->sb->registry_holder),
		    (unsigned long long)le64_to_cpu(d->sb->registry_generation));
	for (ext = d->geo.system_extents; ext < d->geo.nr_extents; ext++) {
		const struct plx_extent_entry *e = lkd_ext(d, ext);

		if (e->bitmap_holder)
			add(&t, "bitmap %llu holder %u\n",
			    (unsigned long long)ext,
			    le32_to_cpu(e->bitmap_holder));
	}
	if (d->nr_jobs) {
		size_t st[3] = { 0 };

		for (i = 0; i < d->nr_jobs; i++)
			st[d->jobs[i]->state]++;
		add(&t, "jobs pending %zu running %zu done %zu\n",
		    st[JOB_PENDING], st[JOB_RUNNING], st[JOB_DONE]);
	}
	reply(r->c, r->op, PLX_LK_OK, r->seq, t.buf, (uint32_t)t.len);
	free(t.buf);
}

/* ---- Frames ------------------------------------------------------------- */

static int hello(struct lkd *d, struct lkd_conn *c, const struct plx_lk_hdr *h)
{
	struct plx_lk_hello hl;
	struct lkd_req r = { .d = d, .c = c, .op = h->op, .seq = h->seq };
	struct lkd_host *host;
	uint32_t id;

	/* Anything but a well-formed HELLO first is dropped unanswered. */
	if (h->op != PLX_LK_HELLO || h->len != sizeof(hl) || h->seq != 1)
		return -1;
	memcpy(&hl, c->in + PLX_LK_HDR_LEN, sizeof(hl));
	memcpy(c->ss.client_nonce, hl.client_nonce, PLX_LK_NONCE_LEN);
	if (!plx_lk_verify(&c->ss, 'C', c->in, h))
		return -1;
	c->seq = h->seq;
	id = be32toh(hl.host);
	if (!id || (be32toh(hl.flags) & ~PLX_LK_HELLO_HELPER)) {
		c->closing = true;
		refuse(&r, PLX_LK_EINVAL, "HELLO needs a host id 1..4294967295 and no flags but helper (1)");
		return 0;
	}
	host = lkd_host_get(d, id, true);
	if (!host) {
		c->closing = true;
		refuse(&r, PLX_LK_EIO, "out of memory");
		return 0;
	}
	c->hello = true;
	c->helper = be32toh(hl.flags) & PLX_LK_HELLO_HELPER;
	c->host = id;
	host->seen = true;
	host->renew_ms = lkd_now_ms();
	host->sessions++;
	lkd_log(d, "host %u connected from %s%s", id, c->peer,
		c->helper ? " (parallaxd)" : "");
	reply_grant(&r, PLX_LK_OK, id, 0, id, 0, NULL);
	return 0;
}

/*
 * Check a frame header: magic, version and length.  Only GC_POST after
 * HELLO may exceed PLX_LK_MAX_REQUEST; anything longer closes the
 * connection like any other malformed header.
 */
static int parse_hdr(const struct lkd_conn *c, struct plx_lk_hdr *h)
{
	if (plx_lk_parse_hdr(c->in, PLX_LK_MAX_JOB_REQUEST, h))
		return -1;
	if (h->len > (c->hello ? plx_lk_max_request(h->op) :
		      PLX_LK_MAX_REQUEST))
		return -1;
	return 0;
}

static int frame(struct lkd *d, struct lkd_conn *c)
{
	struct lkd_req r = { .d = d, .c = c };
	struct plx_lk_args a;
	struct plx_lk_hdr h;
	struct lkd_host *host;

	if (parse_hdr(c, &h))
		return -1;
	if (!c->hello)
		return hello(d, c, &h);
	if (!plx_lk_verify(&c->ss, 'C', c->in, &h) || h.seq != c->seq + 1)
		return -1;
	c->seq = h.seq;
	r.op = h.op;
	r.seq = h.seq;
	host = lkd_host_get(d, c->host, false);
	if (host)
		host->renew_ms = lkd_now_ms();
	if (h.op == PLX_LK_HELLO || h.op == PLX_LK_CHALLENGE ||
	    !h.op || h.op >= PLX_LK_OP_MAX) {
		refuse(&r, PLX_LK_EPROTO, "op %u is not a request here", h.op);
		return 0;
	}
	if (h.op == PLX_LK_GC_POST) {
		op_gc_post(&r, c->in + PLX_LK_HDR_LEN, h.len);
		return 0;
	}
	if (h.len != sizeof(a)) {
		refuse(&r, PLX_LK_EINVAL, "%s takes %zu bytes of arguments, not %u",
		       plx_lk_op_name(h.op), sizeof(a), h.len);
		return 0;
	}
	memcpy(&a, c->in + PLX_LK_HDR_LEN, sizeof(a));
	r.id = be64toh(a.id);
	r.gen = be64toh(a.generation);
	r.type = be32toh(a.type);
	r.flags = be32toh(a.flags);

	switch (h.op) {
	case PLX_LK_RENEW:
		reply_grant(&r, PLX_LK_OK, c->host, 0, c->host, 0, NULL);
		break;
	case PLX_LK_LOCK_VDI:
		op_lock_vdi(&r);
		break;
	case PLX_LK_UNLOCK_VDI:
		op_unlock_vdi(&r);
		break;
	case PLX_LK_CLAIM_EXTENT:
		op_claim_extent(&r);
		break;
	case PLX_LK_RELEASE_EXTENT:
		op_release_extent(&r);
		break;
	case PLX_LK_LOCK_REGISTRY:
		op_lock_registry(&r, true);
		break;
	case PLX_LK_UNLOCK_REGISTRY:
		op_lock_registry(&r, false);
		break;
	case PLX_LK_LOCK_BITMAP:
		op_lock_bitmap(&r, true);
		break;
	case PLX_LK_UNLOCK_BITMAP:
		op_lock_bitmap(&r, false);
		break;
	case PLX_LK_BREAK:
		op_break(&r);
		break;
	case PLX_LK_STATUS:
		op_status(&r);
		break;
	case PLX_LK_GC_RESULT:
		op_gc_result(&r);
		break;
	case PLX_LK_GC_FETCH:
		op_gc_fetch(&r);
		break;
	case PLX_LK_GC_DONE:
		op_gc_done(&r);
		break;
	}
	return 0;
}

int lkd_conn_input(struct lkd *d, struct lkd_conn *c, const uint8_t *buf,
		   size_t len)
{
	struct plx_lk_hdr h;
	size_t need, n;

	while (len && !c->dead && !c->closing) {
		if (!c->in_len)
			c->frame_start_ms = lkd_now_ms();
		need = PLX_LK_HDR_LEN;
		if (c->in_len >= PLX_LK_HDR_LEN) {
			if (parse_hdr(c, &h))
				return -1;
			need = PLX_LK_HDR_LEN + h.len + PLX_LK_MAC_LEN;
		}
		n = need - c->in_len;
		if (n > len)
			n = len;
		memcpy(c->in + c->in_len, buf, n);
		c->in_len += n;
		buf += n;
		len -= n;
		if (c->in_len == PLX_LK_HDR_LEN && parse_hdr(c, &h))
			return -1;	/* bad magic, version or length */
		if (c->in_len < PLX_LK_HDR_LEN ||
		    c->in_len < PLX_LK_HDR_LEN + h.len + PLX_LK_MAC_LEN)
			continue;
		if (frame(d, c))
			return -1;
		c->in_len = 0;
	}
	return c->dead ? -1 : 0;
}

struct lkd_conn *lkd_conn_new(struct lkd *d, int fd, const char *peer)
{
	struct plx_lk_challenge ch = { 0 };
	uint8_t buf[PLX_LK_HDR_LEN + sizeof(ch) + PLX_LK_MAC_LEN];
	struct lkd_conn *c;
	size_t i, n;

	if (d->nr_conns >= LKD_MAX_CONNS)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->fd = fd;
	c->serial = ++d->next_serial;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	c->opened_ms = lkd_now_ms();
	memcpy(c->ss.key, d->key, PLX_LK_KEY_LEN);
	if (RAND_bytes(c->ss.server_nonce, PLX_LK_NONCE_LEN) != 1 &&
	    getrandom(c->ss.server_nonce, PLX_LK_NONCE_LEN, 0) !=
	    PLX_LK_NONCE_LEN) {
		free(c);
		return NULL;
	}
	for (i = 0; i < LKD_MAX_CONNS; i++)
		if (!d->conns[i])
			break;
	d->conns[i] = c;
	d->nr_conns++;
	/*
	 * The challenge's tag uses an all-zero client nonce: it proves
	 * nothing, but lets a client with the wrong key say so at once.
	 */
	memcpy(ch.server_nonce, c->ss.server_nonce, PLX_LK_NONCE_LEN);
	ch.lease_ms = htobe32(d->lease_ms);
	n = plx_lk_build(&c->ss, 'S', PLX_LK_CHALLENGE, 0, 0, &ch, sizeof(ch),
			 buf);
	queue(c, buf, n);
	return c;
}

void lkd_conn_timeouts(struct lkd *d, uint64_t now)
{
	size_t i;

	for (i = 0; i < LKD_MAX_CONNS; i++) {
		struct lkd_conn *c = d->conns[i];

		if (!c)
			continue;
		if (!c->hello && now - c->opened_ms >= LKD_HELLO_TIMEOUT_MS)
			c->dead = true;
		if (c->in_len && now - c->frame_start_ms >= LKD_FRAME_TIMEOUT_MS)
			c->dead = true;
	}
	for (i = 0; i < d->nr_jobs;) {
		struct lkd_job *j = d->jobs[i];

		if (j->state != JOB_DONE &&
		    lease(d, lkd_host_get(d, j->job.host, false), now) ==
		    LEASE_EXPIRED)
			job_finish(d, j, EHOSTDOWN, 0);
		if (j->state == JOB_DONE &&
		    now - j->done_ms >= LKD_RESULT_KEEP_MS) {
			job_remove(d, i);
			continue;
		}
		i++;
	}
}

void lkd_conn_free(struct lkd *d, struct lkd_conn *c)
{
	struct lkd_host *h;
	size_t i;

	for (i = 0; i < LKD_MAX_CONNS; i++) {
		if (d->conns[i] == c) {
			d->conns[i] = NULL;
			d->nr_conns--;
			break;
		}
	}
	if (c->hello) {
		h = lkd_host_get(d, c->host, false);
		if (h && h->sessions)
			h->sessions--;
		lkd_log(d, "host %u disconnected (%s)", c->host, c->peer);
		/*
		 * Jobs this parallaxd fetched will never be answered; jobs
		 * waiting for its host wait for nobody once no parallaxd of
		 * that host is connected.
		 */
		if (c->helper) {
			jobs_host_down(d, c->host, c->serial);
			if (!helper_conn(d, c->host))
				jobs_host_down(d, c->host, 0);
		}
	}
	if (c->fd >= 0)
		close(c->fd);
	explicit_bzero(&c->ss, sizeof(c->ss));
	free(c->out);
	free(c);
}
