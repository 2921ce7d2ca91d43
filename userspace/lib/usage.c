// SPDX-License-Identifier: GPL-2.0
/*
 * Space accounting for parallax df: per extent type, what is allocated,
 * free, and reclaimable by the garbage collector; per live VDI, what its
 * live tree maps and which of the blocks it reaches are its own.
 *
 * Reachable means what the collector marks: the live trees of live VDIs,
 * their non-deleted snapshots' trees, their snapshot log chains, and live
 * clones' parent_log blocks.  Reclaimable = allocated and not reachable.
 *
 * Per VDI, exclusive and shared need to know, for every block, whether one
 * VDI or several reach it.  A per-block owner id would cost 64 bits per
 * block; instead each VDI's blocks are collected in a scratch bitmap (cur)
 * and folded into "reached by one" and "reached by two or more" bitmaps
 * (one, multi), then every VDI is walked a second time and its blocks
 * counted against multi.  With the allocation bits read from the
 * extents' bitmaps (alloc) that is 4 bits per block, plus 1/64 bit for
 * the index of cur's non-zero words, so that clearing cur costs what the
 * VDI reached, not the store's size: 128 MiB for a 1 TiB store, at the
 * price of reading every tree twice.  Within a VDI a node already in cur
 * is not walked again, so snapshots sharing most of the live tree cost
 * only their differences (and a corrupt tree with a cycle terminates).
 *
 * Nothing is written and nothing is locked: on a store in use the kernel
 * targets keep allocating and snapshotting while this reads, so the
 * figures are a slightly stale picture, which is all a report needs.
 * Trees are never freed but by the collector, so the walk itself does not
 * meet recycled blocks unless a collection runs at the same time.  On a
 * block device, whose page cache the targets' bios bypass, plx_open()
 * dropped the cached pages, and bitmaps are read past the cache; the
 * bitmaps are read before the trees, so that a block allocated and linked
 * while df runs is not taken for garbage; and a link into an extent that
 * was typed after the catalogue was read makes df read the catalogue
 * block again.
 */
#include <stdlib.h>
#include <sys/stat.h>

#include "libparallax.h"

struct plx_us {
	struct plx_store *s;
	u64 words;			/* u64 words per block bitmap */
	u64 *cur, *dirty, *one, *multi, *alloc;
	u8 *bm_type;			/* type of each extent at bitmap time */
	u8 *bm_buf;			/* one extent's bitmap blocks */
	bool live;			/* a block device: maybe in use */
	u64 new_data, new_meta;		/* bits newly set in cur */
	plx_progress_fn pfn;
	void *parg;
	u64 done, total;
};

static bool us_test(const u64 *m, u64 b)
{
	return m[b / 64] & (1ULL << (b % 64));
}

static void us_mark(u64 *m, u64 b)
{
	m[b / 64] |= 1ULL << (b % 64);
}

/* Add @b to the current VDI's set; false if it was there already. */
static bool us_add(struct plx_us *u, u64 b, bool data)
{
	u64 w = b / 64;

	if (us_test(u->cur, b))
		return false;
	us_mark(u->cur, b);
	us_mark(u->dirty, w);
	if (data)
		u->new_data++;
	else
		u->new_meta++;
	return true;
}

static void us_progress(struct plx_us *u, const char *phase)
{
	if (u->pfn)
		u->pfn(u->parg, phase, u->done, u->total);
}

static const struct plx_extent_entry *us_cat(struct plx_store *s, u64 e)
{
	return &s->cat[e / PLX_CATALOGUE_PER_BLOCK]
			.entries[e % PLX_CATALOGUE_PER_BLOCK];
}

/* Catalogue block @i as it is on disk now; types of its extents too. */
static int us_cat_read(struct plx_store *s, u64 i)
{
	struct plx_catalogue_block cb;
	enum plx_err err;
	u64 e;

	if (plx_read_fresh(s, s->geo.catalogue_start + i, 1, &cb))
		return -1;
	err = plx_catalogue_check(&s->geo, &cb, i);
	if (err) {
		plx_seterr(PLX_EK_STORE, "block %llu: catalogue: %s",
			   (unsigned long long)(s->geo.catalogue_start + i),
			   plx_strerror(err));
		return -1;
	}
	s->cat[i] = cb;
	s->cat_err[i] = PLX_OK;
	for (e = i * PLX_CATALOGUE_PER_BLOCK; e < s->geo.nr_extents &&
	     e < (i + 1) * PLX_CATALOGUE_PER_BLOCK; e++)
		if (e >= s->geo.system_extents)
			s->ext_type[e] =
				cb.entries[e % PLX_CATALOGUE_PER_BLOCK].type;
	return 0;
}

/*
 * plx_check_addr(), but on a store in use an extent may have been typed
 * (granted) after the catalogue was read: read its entry again once.
 */
static enum plx_err us_check_addr(struct plx_us *u, u64 b,
				  enum plx_extent_type want)
{
	struct plx_store *s = u->s;
	enum plx_err err = plx_check_addr(&s->geo, b, want);
	u64 e = b >> s->geo.extent_shift;

	if (err && u->live && b < s->geo.nr_blocks &&
	    e >= s->geo.system_extents && s->ext_type[e] == PLX_EXT_FREE &&
	    !us_cat_read(s, e / PLX_CATALOGUE_PER_BLOCK))
		err = plx_check_addr(&s->geo, b, want);
	return err;
}

static int us_walk(struct plx_us *u, u64 node, unsigned int level)
{
	struct plx_store *s = u->s;
	struct plx_radix_node n;
	unsigned int i;

	if (plx_read_block(s, node, &n))
		return -1;
	if (!(u->done++ & 255))
		us_progress(u, "trees");
	for (i = 0; i < PLX_PTRS_PER_NODE; i++) {
		u64 p = le64_to_cpu(n.ptr[i]);
		u64 addr = plx_ptr_addr(p);
		enum plx_err err;

		if (!p)
			continue;
		err = us_check_addr(u, addr, plx_child_type(level));
		if (err) {
			plx_seterr(PLX_EK_STORE,
				   "block %llu: radix node entry %u -> %llu: %s (see parallax check)",
				   (unsigned long long)node, i,
				   (unsigned long long)addr, plx_strerror(err));
			return -1;
		}
		if (!us_add(u, addr, !level) || !level)
			continue;
		if (us_walk(u, addr, level - 1))
			return -1;
	}
	return 0;
}

static int us_tree(struct plx_us *u, u64 root, u8 height)
{
	enum plx_err err = us_check_addr(u, root, PLX_EXT_METADATA);

	if (err || !height || height > PLX_MAX_HEIGHT) {
		plx_seterr(PLX_EK_STORE, "block %llu: bad radix root: %s",
			   (unsigned long long)root,
			   plx_strerror(err ? err : PLX_E_RANGE));
		return -1;
	}
	if (!us_add(u, root, false))
		return 0;
	return us_walk(u, root, height - 1);
}

static bool us_live(struct plx_store *s, u64 id)
{
	struct plx_slot *sl = &s->slots[id - 1];

	return sl->state == PLX_SLOT_VDI && plx_vdi_live(&sl->rec);
}

/*
 * Collect into cur everything VDI @id reaches: the live tree first (what
 * it maps), then its non-deleted snapshots.
 */
static int us_vdi(struct plx_us *u, struct plx_usage_vdi *uv)
{
	struct plx_vdi_record *v = &u->s->slots[uv->id - 1].rec;
	struct plx_snaplist l;
	u64 i;
	int ret = 0;

	u->new_data = 0;
	u->new_meta = 0;
	if (us_tree(u, le64_to_cpu(v->root), v->height))
		return -1;
	uv->data_mapped = u->new_data;
	uv->meta_mapped = u->new_meta;
	if (plx_snaplog_load(u->s, uv->id, &l))
		return -1;
	uv->snapshots = 0;
	for (i = 0; i < l.count && !ret; i++) {
		struct plx_snap_record *r = &l.snaps[i].rec;

		if (le32_to_cpu(r->flags) & PLX_SNAP_DELETED)
			continue;
		uv->snapshots++;
		ret = us_tree(u, le64_to_cpu(r->root), v->height);
	}
	plx_snaplist_free(&l);
	return ret;
}

/* Pass 1: fold cur into one/multi and clear it. */
static void us_fold(struct plx_us *u)
{
	u64 d, w;

	for (d = 0; d < (u->words + 63) / 64; d++) {
		u64 m = u->dirty[d];

		u->dirty[d] = 0;
		while (m) {
			w = d * 64 + (u64)__builtin_ctzll(m);
			m &= m - 1;
			u->multi[w] |= u->one[w] & u->cur[w];
			u->one[w] |= u->cur[w];
			u->cur[w] = 0;
		}
	}
}

/*
 * Pass 2: count cur against multi and clear it.  A word of 64 blocks lies
 * in one extent (extents are at least 1024 blocks and aligned), and the
 * walk checked every pointer's extent type, so the extent type says
 * whether the word's blocks are data or radix nodes.
 */
static void us_count(struct plx_us *u, struct plx_usage_vdi *uv)
{
	struct plx_store *s = u->s;
	u64 d, w;

	for (d = 0; d < (u->words + 63) / 64; d++) {
		u64 m = u->dirty[d];

		u->dirty[d] = 0;
		while (m) {
			u64 excl, shared;
			bool data;

			w = d * 64 + (u64)__builtin_ctzll(m);
			m &= m - 1;
			excl = (u64)__builtin_popcountll(u->cur[w] &
							 ~u->multi[w]);
			shared = (u64)__builtin_popcountll(u->cur[w] &
							   u->multi[w]);
			data = s->ext_type[(w * 64) >> s->geo.extent_shift] ==
			       PLX_EXT_DATA;
			if (data) {
				uv->data_exclusive += excl;
				uv->data_shared += shared;
			} else {
				uv->meta_exclusive += excl;
				uv->meta_shared += shared;
			}
			u->cur[w] = 0;
		}
	}
}

/* Log chains and clones' parent_log blocks: reachable, in no VDI's figures. */
static int us_logs(struct plx_us *u, struct plx_usage *us)
{
	struct plx_store *s = u->s;
	struct plx_snaplist l;
	u64 id, i, log;

	for (id = 1; id <= s->geo.registry_slots; id++) {
		struct plx_vdi_record *v = &s->slots[id - 1].rec;

		if (!us_live(s, id))
			continue;
		if (plx_snaplog_load(s, id, &l))
			return -1;
		for (i = 0; i < l.nr_blocks; i++) {
			if (!us_test(u->one, l.blocks[i]))
				us->log_blocks++;
			us_mark(u->one, l.blocks[i]);
		}
		plx_snaplist_free(&l);
		log = le64_to_cpu(v->parent_log);
		if (v->parent_vdi && log &&
		    !us_check_addr(u, log, PLX_EXT_METADATA) &&
		    !us_test(u->one, log)) {
			us->log_blocks++;
			us_mark(u->one, log);
		}
	}
	return 0;
}

static void us_extents(struct plx_us *u, struct plx_usage *us)
{
	struct plx_store *s = u->s;
	u64 e;

	for (e = 0; e < s->geo.nr_extents; e++) {
		enum plx_extent_type t = s->ext_type[e];
		const struct plx_extent_entry *en = us_cat(s, e);
		struct plx_usage_type *ut;

		if (e < s->geo.system_extents)
			t = PLX_EXT_SYSTEM;
		else if (t != PLX_EXT_DATA && t != PLX_EXT_METADATA)
			t = PLX_EXT_FREE;
		ut = &us->type[t];
		ut->extents++;
		ut->blocks += s->geo.extent_blocks;
		if (t == PLX_EXT_SYSTEM) {
			ut->used += s->geo.extent_blocks;
			continue;
		}
		if (le32_to_cpu(en->holder))
			us->held_extents++;
		ut->bitmap_blocks += s->geo.bitmap_blocks;
		ut->free += s->geo.extent_blocks - s->geo.bitmap_blocks;
	}
}

/* Extent @e's bitmap blocks into u->bm_buf, verified (twice if in use). */
static int us_bitmap_read(struct plx_us *u, u64 e)
{
	struct plx_store *s = u->s;
	u64 base = e << s->geo.extent_shift, i = 0;
	enum plx_err err = PLX_OK;
	int tries;

	for (tries = u->live ? 2 : 1; tries; tries--) {
		if (plx_read_fresh(s, base, s->geo.bitmap_blocks, u->bm_buf))
			return -1;
		for (i = 0, err = PLX_OK; i < s->geo.bitmap_blocks; i++) {
			err = plx_block_verify(u->bm_buf + i * PLX_BLOCK_SIZE,
					       PLX_MAGIC_BITMAP, base + i,
					       s->geo.uuid);
			if (err)
				break;
		}
		if (!err)
			return 0;
	}
	plx_seterr(PLX_EK_STORE, "block %llu: allocation bitmap: %s",
		   (unsigned long long)(base + i), plx_strerror(err));
	return -1;
}

/* Bitmaps: used per type, and the allocated blocks into alloc. */
static int us_bitmaps(struct plx_us *u, struct plx_usage *us)
{
	struct plx_store *s = u->s;
	u64 e, off;

	u->done = 0;
	u->total = s->geo.nr_extents - s->geo.system_extents;
	for (e = s->geo.system_extents; e < s->geo.nr_extents; e++, u->done++) {
		enum plx_extent_type t = s->ext_type[e];
		u64 base = e << s->geo.extent_shift;
		struct plx_usage_type *ut;

		if (!(u->done & 63))
			us_progress(u, "bitmaps");
		if (t != PLX_EXT_DATA && t != PLX_EXT_METADATA)
			t = PLX_EXT_FREE;
		u->bm_type[e] = t;
		ut = &us->type[t];
		if (us_bitmap_read(u, e))
			return -1;
		for (off = s->geo.bitmap_blocks; off < s->geo.extent_blocks;
		     off++) {
			const struct plx_bitmap_block *bb = (const void *)
				(u->bm_buf + off / PLX_BITS_PER_BITMAP *
					     PLX_BLOCK_SIZE);
			u64 bo = off % PLX_BITS_PER_BITMAP;

			/* Mostly empty stores: skip free bytes whole. */
			if (!(bo % 8) && !bb->bits[bo / 8] &&
			    off + 8 <= s->geo.extent_blocks) {
				off += 7;
				continue;
			}
			if (!(bb->bits[bo / 8] & (1U << (bo % 8))))
				continue;
			ut->used++;
			ut->free--;
			us_mark(u->alloc, base + off);
		}
	}
	u->done = u->total;
	us_progress(u, "bitmaps");
	return 0;
}

/* Allocated at bitmap time and reached from nothing: per extent type. */
static void us_reclaimable(struct plx_us *u, struct plx_usage *us)
{
	struct plx_store *s = u->s;
	u64 w;

	for (w = (s->geo.system_extents << s->geo.extent_shift) / 64;
	     w < u->words; w++) {
		u64 r = u->alloc[w] & ~u->one[w];
		u8 t;

		if (!r)
			continue;
		t = u->bm_type[(w * 64) >> s->geo.extent_shift];
		us->type[t].reclaimable += (u64)__builtin_popcountll(r);
	}
}

void plx_usage_free(struct plx_usage *us)
{
	free(us->vdis);
	memset(us, 0, sizeof(*us));
}

int plx_usage(struct plx_store *s, struct plx_usage *us, plx_progress_fn pfn,
	      void *parg)
{
	struct plx_us u;
	u64 id, i, e, n = 0;
	u64 *maps[4];
	struct stat st;
	int ret = -1;

	memset(us, 0, sizeof(*us));
	memset(&u, 0, sizeof(u));
	u.s = s;
	u.pfn = pfn;
	u.parg = parg;
	/*
	 * plx_open() dropped the device's cached pages (the targets write
	 * with bios that bypass them) before it read the catalogue, then
	 * the registry, so the first read of every block here is fresh.
	 */
	u.live = !fstat(s->fd, &st) && S_ISBLK(st.st_mode);
	if (plx_store_sane(s))
		return -1;
	u.words = (s->geo.nr_blocks + 63) / 64;
	for (i = 0; i < 4; i++)
		maps[i] = calloc(u.words, sizeof(u64));
	u.dirty = calloc((u.words + 63) / 64, sizeof(u64));
	u.bm_type = calloc(s->geo.nr_extents, 1);
	u.bm_buf = malloc(s->geo.bitmap_blocks * PLX_BLOCK_SIZE);
	for (id = 1; id <= s->geo.registry_slots; id++) {
		if (s->slots[id - 1].state == PLX_SLOT_BAD)
			us->bad_vdis++;
		else if (us_live(s, id))
			n++;
	}
	us->vdis = calloc(n ? n : 1, sizeof(*us->vdis));
	if (!maps[0] || !maps[1] || !maps[2] || !maps[3] || !u.dirty ||
	    !u.bm_type || !u.bm_buf || !us->vdis) {
		plx_seterr(PLX_EK_STORE, "out of memory");
		goto out;
	}
	u.cur = maps[0];
	u.one = maps[1];
	u.multi = maps[2];
	u.alloc = maps[3];
	for (id = 1; id <= s->geo.registry_slots; id++) {
		if (!us_live(s, id))
			continue;
		us->vdis[us->nr_vdis++].id = id;
		if (le32_to_cpu(s->slots[id - 1].rec.holder))
			us->held_vdis++;
	}

	/* Bitmaps before trees: see the top of this file. */
	us_extents(&u, us);
	if (us_bitmaps(&u, us))
		goto out;

	/*
	 * Progress of the walks: nodes read against twice the metadata
	 * blocks the catalogue says are allocated (advisory, an estimate).
	 */
	u.done = 0;
	u.total = 0;
	for (e = s->geo.system_extents; e < s->geo.nr_extents; e++)
		if (s->ext_type[e] == PLX_EXT_METADATA)
			u.total += 2 * (u64)le32_to_cpu(us_cat(s, e)->used);
	for (i = 0; i < us->nr_vdis; i++) {
		if (us_vdi(&u, &us->vdis[i]))
			goto out;
		us_fold(&u);
	}
	/* The second walk counts each VDI's blocks against multi. */
	for (i = 0; i < us->nr_vdis; i++) {
		struct plx_usage_vdi *uv = &us->vdis[i];

		if (us_vdi(&u, uv))
			goto out;
		us_count(&u, uv);
	}
	if (us_logs(&u, us))
		goto out;
	for (i = 0; i < u.words; i++)
		us->reachable += (u64)__builtin_popcountll(u.one[i]);
	us_reclaimable(&u, us);
	ret = 0;
out:
	for (i = 0; i < 4; i++)
		free(maps[i]);
	free(u.dirty);
	free(u.bm_type);
	free(u.bm_buf);
	if (ret)
		plx_usage_free(us);
	return ret;
}
