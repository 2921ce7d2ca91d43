// SPDX-License-Identifier: GPL-2.0
/*
 * The garbage collector (thesis 3.4.3, Algorithm 1), online.
 *
 * Marking reads only metadata extents, in disk order, pass after pass,
 * into the reachability map (one bit per block): a marked metadata block
 * not yet scanned is read and everything it points to is marked.  Data
 * blocks are never read.  Each metadata block is scanned once: a node
 * that a live VDI rewrites in place after the scan only gains links to
 * blocks allocated after the collection began (which are never freed) or
 * copies of links held by a read-only node that the scan marked, which
 * stays as it is and is scanned itself.  Documentation/gc.rst has the
 * whole argument, and why the registry is read only after every holder
 * has begun the collection.
 *
 * Sweeping: an extent whose catalogue entry (holder, generation) changed
 * while marking is left for the next collection.  An unheld one is swept
 * here, under its bitmap lock.  A held one is swept by its holder's
 * kernel target through the ops (gc_reclaim): the target leaves alone
 * the blocks it reserved or handed out since gc_begin.
 *
 * Memory: the map (one bit per block of the store), one "scanned" bit per
 * block of each metadata extent, and one extent's bitmap at a time.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "internal.h"

/* Blocks read at once while marking: runs of marked blocks, small gaps. */
#define GC_READ_BLOCKS	256
#define GC_READ_GAP	16

struct gc_ext {
	u8 type;
	u32 holder;
	u64 generation;
};

struct gc_host {
	u32 host;
	bool began;
};

struct gc {
	struct plx_store *s;
	const struct plx_gc_ops *ops;
	void *arg;
	struct plx_gc_stats *st;
	u64 epoch;
	u64 *rmap;			/* reachable, one bit per block */
	u64 **scanned;			/* per metadata extent, or NULL */
	struct gc_ext *ext;		/* catalogue at the start */
	u64 *logs;			/* snapshot-log blocks, marked last */
	u64 nr_logs, cap_logs;
	struct gc_host *hosts;		/* holders asked to begin */
	unsigned int nr_hosts;
	u8 *buf;			/* GC_READ_BLOCKS blocks */
	u8 *bm;				/* one extent's bitmap blocks */
	u64 *cand;			/* one extent's candidates, per block */
};

static bool bit_test(const u64 *m, u64 b)
{
	return m[b / 64] & (1ULL << (b % 64));
}

static void bit_set(u64 *m, u64 b)
{
	m[b / 64] |= 1ULL << (b % 64);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void note(struct gc *gc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void note(struct gc *gc, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (!gc->ops->note)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	gc->ops->note(gc->arg, msg);
}

static void progress(struct gc *gc, const char *phase, u64 done, u64 total)
{
	if (gc->ops->progress)
		gc->ops->progress(gc->ops->progress_arg, phase, done, total);
}

/* Catalogue block @i as it is on disk now, into @out (per extent). */
static int read_cat_block(struct gc *gc, u64 i, struct gc_ext *out)
{
	struct plx_store *s = gc->s;
	struct plx_catalogue_block *cb = (void *)gc->buf;
	enum plx_err err;
	u64 e;

	if (plx_read_fresh(s, s->geo.catalogue_start + i, 1, cb))
		return -1;
	err = plx_catalogue_check(&s->geo, cb, i);
	if (err) {
		plx_seterr(PLX_EK_STORE, "block %llu: catalogue: %s",
			   (unsigned long long)(s->geo.catalogue_start + i),
			   plx_strerror(err));
		return -1;
	}
	for (e = i * PLX_CATALOGUE_PER_BLOCK; e < s->geo.nr_extents &&
	     e < (i + 1) * PLX_CATALOGUE_PER_BLOCK; e++) {
		const struct plx_extent_entry *en =
			&cb->entries[e % PLX_CATALOGUE_PER_BLOCK];

		out[e].type = en->type;
		out[e].holder = le32_to_cpu(en->holder);
		out[e].generation = le64_to_cpu(en->generation);
	}
	return 0;
}

static int read_catalogue(struct gc *gc, struct gc_ext *out)
{
	u64 i;

	for (i = 0; i < gc->s->geo.catalogue_blocks; i++)
		if (read_cat_block(gc, i, out))
			return -1;
	return 0;
}

/*
 * A link found in a node: mark it if it can be a block of an extent.
 * Anything else is corruption, and then nothing may be freed: the blocks
 * the broken node should have linked would look unreachable.
 */
static void mark_ptr(struct gc *gc, u64 ptr)
{
	const struct plx_geometry *g = &gc->s->geo;
	u64 b = plx_ptr_addr(ptr);

	if (!ptr)
		return;
	if (!b || b >= g->nr_blocks ||
	    (b >> g->extent_shift) < g->system_extents ||
	    (b & (g->extent_blocks - 1)) < g->bitmap_blocks) {
		if (!gc->st->bad_links++)
			note(gc, "a radix node links block %llu, which no node may link: nothing will be freed; run parallax check",
			     (unsigned long long)b);
		return;
	}
	bit_set(gc->rmap, b);
}

static int add_log(struct gc *gc, u64 b)
{
	if (gc->nr_logs == gc->cap_logs) {
		u64 ncap = gc->cap_logs ? gc->cap_logs * 2 : 64;
		u64 *p = realloc(gc->logs, ncap * sizeof(*p));

		if (!p) {
			plx_seterr(PLX_EK_STORE, "out of memory");
			return -1;
		}
		gc->logs = p;
		gc->cap_logs = ncap;
	}
	gc->logs[gc->nr_logs++] = b;
	return 0;
}

/*
 * Steps 3 and 6 of Algorithm 1: the roots of live VDIs and of their live
 * snapshots, and the log blocks (kept aside so that no pass reads them
 * as radix nodes).  A VDI whose record or log cannot be read stops the
 * collection: its blocks would all look unreachable.
 */
static int mark_roots(struct gc *gc)
{
	struct plx_store *s = gc->s;
	u64 id, i;

	posix_fadvise(s->fd, 0, 0, POSIX_FADV_DONTNEED);
	if (plx_registry_reload(s))
		return -1;
	for (id = 1; id <= s->geo.registry_slots; id++) {
		struct plx_slot *sl = &s->slots[id - 1];
		struct plx_vdi_record *v = &sl->rec;
		struct plx_snaplist l;

		if (sl->state == PLX_SLOT_BAD) {
			plx_seterr(PLX_EK_STORE, "block %llu: VDI %llu: %s: nothing freed; run parallax check",
				   (unsigned long long)plx_registry_block(&s->geo, id),
				   (unsigned long long)id, plx_strerror(sl->err));
			return -1;
		}
		if (sl->state != PLX_SLOT_VDI || !plx_vdi_live(v))
			continue;
		gc->st->vdis++;
		bit_set(gc->rmap, le64_to_cpu(v->root));
		/*
		 * A clone names the log block that held its snapshot when it
		 * was made, which a newer copy may have superseded in its
		 * parent's chain; check follows it, so it stays.
		 */
		if (v->parent_vdi && add_log(gc, le64_to_cpu(v->parent_log)))
			return -1;
		if (plx_snaplog_load(s, id, &l)) {
			plx_seterr(PLX_EK_STORE, "%s: nothing freed", plx_errmsg());
			return -1;
		}
		for (i = 0; i < l.count; i++) {
			if (le32_to_cpu(l.snaps[i].rec.flags) & PLX_SNAP_DELETED)
				continue;
			gc->st->snapshots++;
			bit_set(gc->rmap, le64_to_cpu(l.snaps[i].rec.root));
		}
		for (i = 0; i < l.nr_blocks; i++)
			if (add_log(gc, l.blocks[i])) {
				plx_snaplist_free(&l);
				return -1;
			}
		plx_snaplist_free(&l);
	}
	return 0;
}

/* Scan the marked, unscanned blocks among @n read at @first. */
static void scan_run(struct gc *gc, u64 *scanned, u64 ext_start, u64 first,
		     u64 n)
{
	u64 i, b;
	unsigned int p;

	for (i = 0; i < n; i++) {
		const __le64 *node = (const void *)(gc->buf + i * PLX_BLOCK_SIZE);

		b = first + i;
		if (!bit_test(gc->rmap, b) || bit_test(scanned, b - ext_start))
			continue;
		bit_set(scanned, b - ext_start);
		gc->st->nodes_read++;
		for (p = 0; p < PLX_PTRS_PER_NODE; p++)
			mark_ptr(gc, le64_to_cpu(node[p]));
	}
}

/* One pass over metadata extent @e; returns blocks scanned or -1. */
static int64_t scan_extent(struct gc *gc, u64 e)
{
	const struct plx_geometry *g = &gc->s->geo;
	u64 start = e << g->extent_shift, off, end, before;

	if (!gc->scanned[e]) {
		gc->scanned[e] = calloc(g->extent_blocks / 64, sizeof(u64));
		if (!gc->scanned[e]) {
			plx_seterr(PLX_EK_STORE, "out of memory");
			return -1;
		}
		gc->st->memory_bytes += g->extent_blocks / 8;
	}
	before = gc->st->nodes_read;
	off = g->bitmap_blocks;
	while (off < g->extent_blocks) {
		u64 b = start + off, last;

		if (!bit_test(gc->rmap, b) || bit_test(gc->scanned[e], off)) {
			off++;
			continue;
		}
		/* A run of wanted blocks, across gaps of up to GC_READ_GAP. */
		last = off;
		for (end = off + 1; end < g->extent_blocks &&
		     end - off < GC_READ_BLOCKS && end - last <= GC_READ_GAP; end++)
			if (bit_test(gc->rmap, start + end) &&
			    !bit_test(gc->scanned[e], end))
				last = end;
		if (plx_read_fresh(gc->s, b, last - off + 1, gc->buf))
			return -1;
		gc->st->bytes_read += (last - off + 1) * PLX_BLOCK_SIZE;
		scan_run(gc, gc->scanned[e], start, b, last - off + 1);
		off = last + 1;
	}
	return gc->st->nodes_read - before;
}

/* Steps 4 and 5: pass after pass until a pass finds nothing new. */
static int mark(struct gc *gc)
{
	const struct plx_geometry *g = &gc->s->geo;
	u64 e, nr_meta = 0, done;
	int64_t n, found;
	u64 i;

	for (e = g->system_extents; e < g->nr_extents; e++)
		nr_meta += gc->ext[e].type == PLX_EXT_METADATA;
	do {
		char phase[32];

		gc->st->passes++;
		snprintf(phase, sizeof(phase), "marking, pass %u",
			 gc->st->passes);
		found = 0;
		done = 0;
		for (e = g->system_extents; e < g->nr_extents; e++) {
			if (gc->ext[e].type != PLX_EXT_METADATA)
				continue;
			n = scan_extent(gc, e);
			if (n < 0)
				return -1;
			found += n;
			progress(gc, phase, ++done, nr_meta);
		}
	} while (found);
	for (i = 0; i < gc->nr_logs; i++)
		mark_ptr(gc, gc->logs[i]);
	return 0;
}

static bool bm_test(const u8 *bm, u64 off)
{
	const struct plx_bitmap_block *bb = (const void *)
		(bm + off / PLX_BITS_PER_BITMAP * PLX_BLOCK_SIZE);
	u64 bit = off % PLX_BITS_PER_BITMAP;

	return bb->bits[bit / 8] & (1U << (bit % 8));
}

static void bm_clear(u8 *bm, u64 off)
{
	struct plx_bitmap_block *bb = (void *)
		(bm + off / PLX_BITS_PER_BITMAP * PLX_BLOCK_SIZE);
	u64 bit = off % PLX_BITS_PER_BITMAP;

	bb->bits[bit / 8] &= ~(1U << (bit % 8));
}

/*
 * Read extent @e's bitmap and gather its candidates: allocated, not
 * reachable, not a bitmap block.  Returns how many, or -1.
 */
static int64_t candidates(struct gc *gc, u64 e)
{
	const struct plx_geometry *g = &gc->s->geo;
	u64 start = e << g->extent_shift, off, n = 0, i;

	for (i = 0; i < g->bitmap_blocks; i++) {
		enum plx_err err;

		if (plx_read_fresh(gc->s, start + i, 1,
				   gc->bm + i * PLX_BLOCK_SIZE))
			return -1;
		err = plx_block_verify(gc->bm + i * PLX_BLOCK_SIZE,
				       PLX_MAGIC_BITMAP, start + i, g->uuid);
		if (err) {
			plx_seterr(PLX_EK_STORE, "block %llu: bitmap: %s",
				   (unsigned long long)(start + i),
				   plx_strerror(err));
			return -1;
		}
	}
	memset(gc->cand, 0, g->extent_blocks / 8);
	for (off = g->bitmap_blocks; off < g->extent_blocks; off++) {
		if (bm_test(gc->bm, off) && !bit_test(gc->rmap, start + off)) {
			bit_set(gc->cand, off);
			n++;
		}
	}
	return n;
}

static unsigned int slot(u8 type)
{
	return type == PLX_EXT_METADATA;
}

/*
 * Single host: the catalogue is ours to keep current.  Write the swept
 * extent's advisory used count, and give an empty extent back to the free
 * pool, for either type, with the count a fresh format gives it.  Also
 * for an extent with nothing to free: a crash between a sweep's bitmap
 * and catalogue writes leaves one empty but typed.
 */
static int update_entry(struct gc *gc, u64 e)
{
	const struct plx_geometry *g = &gc->s->geo;
	struct plx_extent_entry *en, old;
	u64 off, used = 0;

	if (!gc->ops->retype_free)
		return 0;
	for (off = 0; off < g->extent_blocks; off++)
		used += bm_test(gc->bm, off);
	en = &gc->s->cat[e / PLX_CATALOGUE_PER_BLOCK].entries
		[e % PLX_CATALOGUE_PER_BLOCK];
	old = *en;
	en->used = cpu_to_le32((u32)used);
	if (used == g->bitmap_blocks) {
		en->type = PLX_EXT_FREE;
		gc->s->ext_type[e] = PLX_EXT_FREE;
	}
	if (!memcmp(&old, en, sizeof(old)))
		return 0;
	if (en->type != old.type)
		gc->st->extents_emptied++;
	gc->s->cat_dirty[e / PLX_CATALOGUE_PER_BLOCK] = 1;
	return plx_sync(gc->s);
}

/* An extent nobody holds: clear its candidates in place. */
static int sweep_unheld(struct gc *gc, u64 e, u64 n)
{
	const struct plx_geometry *g = &gc->s->geo;
	u64 start = e << g->extent_shift, off, i;
	struct plx_extent_bm *cached = &gc->s->bm[e];

	for (off = g->bitmap_blocks; off < g->extent_blocks; off++)
		if (bit_test(gc->cand, off))
			bm_clear(gc->bm, off);
	for (i = 0; i < g->bitmap_blocks; i++) {
		u64 lo = i * PLX_BITS_PER_BITMAP, hi = lo + PLX_BITS_PER_BITMAP;
		bool changed = false;

		for (off = lo < g->bitmap_blocks ? g->bitmap_blocks : lo;
		     off < hi && off < g->extent_blocks && !changed; off++)
			changed = bit_test(gc->cand, off);
		if (changed && plx_write_meta(gc->s, start + i, PLX_MAGIC_BITMAP,
					      gc->bm + i * PLX_BLOCK_SIZE))
			return -1;
	}
	if (plx_fsync(gc->s))
		return -1;
	gc->st->freed[slot(gc->ext[e].type)] += n;
	/* A caller that goes on with this handle must see the new bits. */
	if (cached->blk && !cached->err) {
		memcpy(cached->blk, gc->bm, g->bitmap_blocks * PLX_BLOCK_SIZE);
		cached->hint = g->bitmap_blocks;
	}
	return 0;
}

/* An extent a live host holds: its target frees what it may. */
static int sweep_held(struct gc *gc, u64 e)
{
	const struct plx_geometry *g = &gc->s->geo;
	u64 chunk = PLX_GC_CHUNK_BYTES * 8, off, freed, total = 0;
	const u8 *bytes = (const u8 *)gc->cand;

	for (off = 0; off < g->extent_blocks; off += chunk) {
		u64 w, n = g->extent_blocks - off < chunk ?
			   g->extent_blocks - off : chunk;
		bool any = false;

		for (w = off / 64; w < (off + n) / 64 && !any; w++)
			any = gc->cand[w];
		if (!any)
			continue;
		if (gc->ops->reclaim(gc->arg, gc->ext[e].holder, gc->epoch, e,
				     gc->ext[e].generation, off,
				     bytes + off / 8, n / 8, &freed)) {
			note(gc, "extent %llu: host %u did not reclaim: %s",
			     (unsigned long long)e, gc->ext[e].holder,
			     plx_errmsg());
			gc->st->extents_skipped++;
			break;
		}
		total += freed;
	}
	gc->st->freed[slot(gc->ext[e].type)] += total;
	gc->st->freed_by_holders += total;
	return 0;
}

static struct gc_host *find_host(struct gc *gc, u32 host)
{
	unsigned int i;

	for (i = 0; i < gc->nr_hosts; i++)
		if (gc->hosts[i].host == host)
			return &gc->hosts[i];
	return NULL;
}

static bool host_began(struct gc *gc, u32 host)
{
	struct gc_host *h = find_host(gc, host);

	return h && h->began;
}

static bool changed(const struct gc_ext *then, const struct gc_ext *now)
{
	return now->holder != then->holder || now->type != then->type ||
	       now->generation != then->generation;
}

static int sweep_extent(struct gc *gc, u64 e, struct gc_ext *now)
{
	struct gc_ext *then = &gc->ext[e];
	bool locked = false;
	int ret = -1;
	int64_t n;

	if (then->holder) {
		if (!host_began(gc, then->holder)) {
			gc->st->extents_skipped++;
			return 0;
		}
	} else if (gc->ops->lock_bitmap) {
		if (gc->ops->lock_bitmap(gc->arg, e)) {
			note(gc, "extent %llu: bitmap lock refused: %s",
			     (unsigned long long)e, plx_errmsg());
			gc->st->extents_skipped++;
			return 0;
		}
		locked = true;
	}
	/* Under the bitmap lock no grant can come between this and the sweep. */
	if (read_cat_block(gc, e / PLX_CATALOGUE_PER_BLOCK, now))
		goto out;
	if (changed(then, &now[e])) {
		note(gc, "extent %llu changed hands while marking: left for the next collection",
		     (unsigned long long)e);
		gc->st->extents_skipped++;
		ret = 0;
		goto out;
	}
	n = candidates(gc, e);
	if (n < 0)
		goto out;
	gc->st->extents_swept++;
	if (then->holder)
		ret = n ? sweep_held(gc, e) : 0;
	else
		ret = (n ? sweep_unheld(gc, e, n) : 0) ?: update_entry(gc, e);
out:
	if (locked && gc->ops->unlock_bitmap)
		gc->ops->unlock_bitmap(gc->arg, e);
	return ret;
}

static int sweep(struct gc *gc)
{
	const struct plx_geometry *g = &gc->s->geo;
	struct gc_ext *now = calloc(g->nr_extents, sizeof(*now));
	int ret = 0;
	u64 e;

	if (!now) {
		plx_seterr(PLX_EK_STORE, "out of memory");
		return -1;
	}
	for (e = g->system_extents; e < g->nr_extents && !ret; e++) {
		if (gc->ext[e].type == PLX_EXT_DATA ||
		    gc->ext[e].type == PLX_EXT_METADATA)
			ret = sweep_extent(gc, e, now);
		progress(gc, "sweeping", e + 1 - g->system_extents,
			 g->nr_extents - g->system_extents);
	}
	free(now);
	return ret;
}

/* Step 0: every holder's targets start counting what they allocate. */
static void begin_hosts(struct gc *gc)
{
	const struct plx_geometry *g = &gc->s->geo;
	u64 e;

	for (e = g->system_extents; e < g->nr_extents; e++) {
		u32 h = gc->ext[e].holder;

		struct gc_host *gh;

		if (!h || find_host(gc, h) ||
		    (gc->ext[e].type != PLX_EXT_DATA &&
		     gc->ext[e].type != PLX_EXT_METADATA))
			continue;
		gh = &gc->hosts[gc->nr_hosts++];
		gh->host = h;
		gh->began = gc->ops->begin &&
			    !gc->ops->begin(gc->arg, h, gc->epoch);
		if (!gh->began)
			note(gc, "host %u cannot take part (%s): the extents it holds are not swept",
			     h, gc->ops->begin ? plx_errmsg() :
						 "no way to reach it");
	}
}

static void end_hosts(struct gc *gc)
{
	unsigned int i;

	for (i = 0; i < gc->nr_hosts; i++)
		if (gc->hosts[i].began)
			gc->ops->end(gc->arg, gc->hosts[i].host, gc->epoch);
}

static void gc_free(struct gc *gc)
{
	u64 e;

	if (gc->scanned)
		for (e = 0; e < gc->s->geo.nr_extents; e++)
			free(gc->scanned[e]);
	free(gc->scanned);
	free(gc->rmap);
	free(gc->ext);
	free(gc->logs);
	free(gc->hosts);
	free(gc->buf);
	free(gc->bm);
	free(gc->cand);
}

static int gc_alloc(struct gc *gc)
{
	const struct plx_geometry *g = &gc->s->geo;
	u64 words = g->nr_blocks / 64 + 1;

	gc->rmap = calloc(words, sizeof(u64));
	gc->scanned = calloc(g->nr_extents, sizeof(*gc->scanned));
	gc->ext = calloc(g->nr_extents, sizeof(*gc->ext));
	gc->hosts = calloc(g->nr_extents, sizeof(*gc->hosts));
	gc->buf = malloc(GC_READ_BLOCKS * PLX_BLOCK_SIZE);
	gc->bm = malloc(g->bitmap_blocks * PLX_BLOCK_SIZE);
	gc->cand = calloc(g->extent_blocks / 64, sizeof(u64));
	if (!gc->rmap || !gc->scanned || !gc->ext || !gc->hosts || !gc->buf ||
	    !gc->bm || !gc->cand) {
		plx_seterr(PLX_EK_STORE, "out of memory");
		return -1;
	}
	gc->st->memory_bytes = words * 8 + g->nr_extents *
		(sizeof(*gc->scanned) + sizeof(*gc->ext) + sizeof(*gc->hosts)) +
		GC_READ_BLOCKS * PLX_BLOCK_SIZE +
		g->bitmap_blocks * PLX_BLOCK_SIZE + g->extent_blocks / 8;
	return 0;
}

int plx_gc(struct plx_store *s, const struct plx_gc_ops *ops, void *arg,
	   struct plx_gc_stats *st)
{
	struct gc gc = { .s = s, .ops = ops, .arg = arg, .st = st };
	double t0 = now_s(), t1;
	int ret = -1;
	u64 w;

	memset(st, 0, sizeof(*st));
	st->store_bytes = s->geo.nr_blocks * PLX_BLOCK_SIZE;
	if (gc_alloc(&gc))
		goto out;
	while (!gc.epoch)
		if (getrandom(&gc.epoch, sizeof(gc.epoch), 0) !=
		    sizeof(gc.epoch)) {
			plx_seterr(PLX_EK_STORE, "getrandom: %s",
				   strerror(errno));
			goto out;
		}
	if (read_catalogue(&gc, gc.ext))
		goto out;
	begin_hosts(&gc);
	if (ops->lock_registry && ops->lock_registry(arg))
		goto out_end;
	ret = mark_roots(&gc);
	if (ops->unlock_registry)
		ops->unlock_registry(arg);
	if (ret || (ret = mark(&gc)))
		goto out_end;
	for (w = 0; w <= s->geo.nr_blocks / 64; w++)
		st->reachable += __builtin_popcountll(gc.rmap[w]);
	t1 = now_s();
	st->mark_seconds = t1 - t0;
	if (st->bad_links) {
		plx_seterr(PLX_EK_STORE, "%llu radix links point where no block may be: nothing freed; run parallax check",
			   (unsigned long long)st->bad_links);
		ret = -1;
		goto out_end;
	}
	ret = sweep(&gc);
	st->sweep_seconds = now_s() - t1;
out_end:
	end_hosts(&gc);
out:
	gc_free(&gc);
	return ret;
}
