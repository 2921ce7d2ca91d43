// SPDX-License-Identifier: GPL-2.0
/*
 * Full consistency check.  Reports every problem found, one line each:
 *  - catalogue, bitmap, VDI record and snapshot log blocks that fail the
 *    shared checks; snapshot seqs consecutive, snap_seq == newest record;
 *  - every radix pointer in range, in an extent of the right type
 *    (nodes -> METADATA, data -> DATA), outside the bitmaps, and no
 *    mapping beyond the VDI's size;
 *  - no cycles (a node linking itself or an ancestor) and no node used
 *    at two levels;
 *  - a block reached through a writable path from a live VDI's root must
 *    have exactly one link in the whole store (else a write in place would
 *    change a snapshot or another VDI);
 *  - every reachable block (nodes, data, roots, log blocks) allocated in
 *    its extent's bitmap;
 *  - clone parent references resolve to an existing snapshot record.
 * Allocated but unreachable blocks are garbage for the collector, not
 * errors; they are counted.  Deleted VDIs and deleted snapshots are not
 * walked: the collector may already have reclaimed their blocks.
 */
#include <stdarg.h>
#include <stdlib.h>

#include "libparallax.h"

struct plx_ck {
	struct plx_store *s;
	plx_problem_fn fn;
	void *arg;
	struct plx_check_stats *st;
	u64 *reach;			/* linked from somewhere */
	u64 *ref2;			/* linked at least twice */
	u64 *wref;			/* linked writable from a live tree */
	u64 *lvl[PLX_MAX_HEIGHT];	/* walked as a node of that level */
	u64 path[PLX_MAX_HEIGHT];	/* nodes on the current path */
	u8 height;
	u64 nblocks;			/* size of the tree's VDI, in blocks */
	char what[64];			/* "VDI 3" or "snapshot 3@2" */
	plx_progress_fn pfn;
	void *parg;
	u64 meta_used;			/* catalogue's count: about the nodes */
};

static void ck_progress(struct plx_ck *ck, const char *phase, u64 done,
			u64 total)
{
	if (ck->pfn)
		ck->pfn(ck->parg, phase, done, total);
}

static bool bt(const u64 *m, u64 b)
{
	return m[b / 64] & (1ULL << (b % 64));
}

static void bs(u64 *m, u64 b)
{
	m[b / 64] |= 1ULL << (b % 64);
}

static void __attribute__((format(printf, 3, 4)))
problem(struct plx_ck *ck, u64 block, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ck->st->problems++;
	ck->fn(ck->arg, block, msg);
}

/* Count a link to @b; @writable if it makes @b writable for a live VDI. */
static void ck_ref(struct plx_ck *ck, u64 b, bool writable)
{
	if (bt(ck->reach, b))
		bs(ck->ref2, b);
	else
		bs(ck->reach, b);
	if (writable)
		bs(ck->wref, b);
}

static bool ck_walked(struct plx_ck *ck, u64 b, int *level)
{
	int l;

	for (l = 0; l < PLX_MAX_HEIGHT; l++) {
		if (bt(ck->lvl[l], b)) {
			*level = l;
			return true;
		}
	}
	return false;
}

static void ck_walk(struct plx_ck *ck, u64 node, unsigned int level,
		    bool writable, u64 base)
{
	struct plx_store *s = ck->s;
	struct plx_radix_node n;
	unsigned int i, a;

	bs(ck->lvl[level], node);
	ck->path[level] = node;
	if (!(ck->st->nodes++ & 255))
		ck_progress(ck, "trees", ck->st->nodes, ck->meta_used);
	if (plx_read_block(s, node, &n)) {
		problem(ck, node, "%s", plx_errmsg());
		return;
	}
	for (i = 0; i < PLX_PTRS_PER_NODE; i++) {
		u64 p = le64_to_cpu(n.ptr[i]);
		u64 addr = plx_ptr_addr(p);
		u64 vb = base | ((u64)i << (PLX_NODE_SHIFT * level));
		bool cw = writable && !plx_ptr_is_ro(p);
		enum plx_err err;
		bool cycle = false;
		int seen;

		if (!p)
			continue;
		if (vb >= ck->nblocks) {
			problem(ck, node,
				"block %llu: radix node (level %u of %s) entry %u maps beyond the VDI's size",
				(unsigned long long)node, level, ck->what, i);
			continue;
		}
		err = plx_check_addr(&s->geo, addr, plx_child_type(level));
		if (err) {
			problem(ck, node,
				"block %llu: radix node (level %u of %s) entry %u -> %llu: %s",
				(unsigned long long)node, level, ck->what, i,
				(unsigned long long)addr, plx_strerror(err));
			continue;
		}
		for (a = level; a < ck->height; a++)
			if (ck->path[a] == addr)
				cycle = true;
		if (cycle) {
			problem(ck, node,
				"block %llu: radix node (level %u of %s) entry %u -> %llu: cycle, links itself or an ancestor",
				(unsigned long long)node, level, ck->what, i,
				(unsigned long long)addr);
			continue;
		}
		ck_ref(ck, addr, cw);
		if (!level) {
			continue;
		}
		if (ck_walked(ck, addr, &seen)) {
			if ((unsigned int)seen != level - 1)
				problem(ck, addr,
					"block %llu: radix node used at level %d and at level %u (linked from block %llu entry %u of %s)",
					(unsigned long long)addr, seen,
					level - 1, (unsigned long long)node,
					i, ck->what);
			continue;
		}
		ck_walk(ck, addr, level - 1, cw, vb);
	}
}

static void ck_tree(struct plx_ck *ck, u64 root, u8 height, u64 size,
		    bool writable)
{
	int seen;

	ck->height = height;
	ck->nblocks = size >> PLX_BLOCK_SHIFT;
	memset(ck->path, 0xff, sizeof(ck->path));
	ck_ref(ck, root, writable);
	if (ck_walked(ck, root, &seen)) {
		if (seen != height - 1)
			problem(ck, root,
				"block %llu: root of %s is used as a radix node at level %d too",
				(unsigned long long)root, ck->what, seen);
		return;
	}
	ck_walk(ck, root, height - 1, writable, 0);
}

static void ck_catalogue(struct plx_ck *ck)
{
	struct plx_store *s = ck->s;
	u64 i;

	for (i = 0; i < s->geo.catalogue_blocks; i++)
		if (s->cat_err[i])
			problem(ck, s->geo.catalogue_start + i,
				"block %llu: extent catalogue: %s",
				(unsigned long long)(s->geo.catalogue_start + i),
				plx_strerror(s->cat_err[i]));
}

static void ck_registry(struct plx_ck *ck)
{
	struct plx_store *s = ck->s;
	u64 id;

	for (id = 1; id <= s->geo.registry_slots; id++) {
		struct plx_slot *sl = &s->slots[id - 1];

		if (sl->state == PLX_SLOT_BAD)
			problem(ck, plx_registry_block(&s->geo, id),
				"block %llu: VDI %llu record: %s",
				(unsigned long long)plx_registry_block(&s->geo, id),
				(unsigned long long)id, plx_strerror(sl->err));
	}
}

static bool ck_live(struct plx_store *s, u64 id)
{
	struct plx_slot *sl = &s->slots[id - 1];

	return sl->state == PLX_SLOT_VDI && plx_vdi_live(&sl->rec);
}

static void ck_live_trees(struct plx_ck *ck)
{
	struct plx_store *s = ck->s;
	u64 id;

	for (id = 1; id <= s->geo.registry_slots; id++) {
		struct plx_vdi_record *v = &s->slots[id - 1].rec;

		if (!ck_live(s, id))
			continue;
		ck->st->vdis++;
		snprintf(ck->what, sizeof(ck->what), "VDI %llu",
			 (unsigned long long)id);
		ck_tree(ck, le64_to_cpu(v->root), v->height,
			le64_to_cpu(v->size), true);
	}
}

static void ck_snapshots(struct plx_ck *ck)
{
	struct plx_store *s = ck->s;
	struct plx_snaplist l;
	u64 id, i;

	for (id = 1; id <= s->geo.registry_slots; id++) {
		struct plx_vdi_record *v = &s->slots[id - 1].rec;

		if (!ck_live(s, id))
			continue;
		if (plx_snaplog_load(s, id, &l)) {
			problem(ck, le64_to_cpu(v->snaplog_head), "%s",
				plx_errmsg());
			continue;
		}
		for (i = 0; i < l.nr_blocks; i++) {
			ck->st->log_blocks++;
			ck_ref(ck, l.blocks[i], true);
		}
		for (i = 0; i < l.count; i++) {
			struct plx_snap_record *r = &l.snaps[i].rec;

			if (le32_to_cpu(r->flags) & PLX_SNAP_DELETED)
				continue;
			ck->st->snapshots++;
			snprintf(ck->what, sizeof(ck->what), "snapshot %llu@%llu",
				 (unsigned long long)id,
				 (unsigned long long)le64_to_cpu(r->seq));
			ck_tree(ck, le64_to_cpu(r->root), v->height,
				le64_to_cpu(v->size), false);
		}
		plx_snaplist_free(&l);
	}
}

/* A clone's parent_vdi@parent_seq must exist, and parent_log hold it. */
static void ck_parents(struct plx_ck *ck)
{
	struct plx_store *s = ck->s;
	struct plx_snaplog_block blk;
	struct plx_snaplist l;
	u64 id, pid, seq, log, rb;
	struct plx_snap *sn;
	enum plx_err err;
	u32 i;
	bool found;

	for (id = 1; id <= s->geo.registry_slots; id++) {
		struct plx_vdi_record *v = &s->slots[id - 1].rec;

		if (!ck_live(s, id) || !v->parent_vdi)
			continue;
		pid = le64_to_cpu(v->parent_vdi);
		seq = le64_to_cpu(v->parent_seq);
		log = le64_to_cpu(v->parent_log);
		rb = plx_registry_block(&s->geo, id);
		/* A damaged parent record is reported on its own. */
		if (s->slots[pid - 1].state == PLX_SLOT_BAD)
			continue;
		if (s->slots[pid - 1].state != PLX_SLOT_VDI) {
			problem(ck, rb,
				"block %llu: VDI %llu is a clone of %llu@%llu, but VDI %llu does not exist",
				(unsigned long long)rb, (unsigned long long)id,
				(unsigned long long)pid, (unsigned long long)seq,
				(unsigned long long)pid);
			continue;
		}
		/*
		 * The collector keeps a clone's parent_log block, also when
		 * the parent is deleted; only then it is not read here.
		 */
		bs(ck->reach, log);
		if (!ck_live(s, pid))
			continue;
		if (plx_snaplog_load(s, pid, &l))
			continue;	/* already reported */
		sn = seq <= l.count ? &l.snaps[seq - 1] : NULL;
		if (!sn) {
			problem(ck, rb,
				"block %llu: VDI %llu is a clone of %llu@%llu, which is not in VDI %llu's snapshot log",
				(unsigned long long)rb, (unsigned long long)id,
				(unsigned long long)pid, (unsigned long long)seq,
				(unsigned long long)pid);
			plx_snaplist_free(&l);
			continue;
		}
		found = false;
		err = PLX_OK;
		if (plx_read_block(s, log, &blk))
			err = PLX_E_RANGE;
		else
			err = plx_snaplog_check(&s->geo, &blk, log, pid);
		for (i = 0; !err && i < le32_to_cpu(blk.count); i++)
			if (blk.rec[i].seq == sn->rec.seq &&
			    blk.rec[i].root == sn->rec.root)
				found = true;
		if (err || !found)
			problem(ck, log,
				"block %llu: parent log block of clone VDI %llu %s %llu@%llu%s%s",
				(unsigned long long)log, (unsigned long long)id,
				err ? "is not a valid log block of" :
				      "does not hold snapshot",
				(unsigned long long)pid, (unsigned long long)seq,
				err ? ": " : "", err ? plx_strerror(err) : "");
		plx_snaplist_free(&l);
	}
}

/* Bitmaps: verify, then compare with what was reached. */
static void ck_bitmaps(struct plx_ck *ck)
{
	struct plx_store *s = ck->s;
	u64 e, off;

	for (e = s->geo.system_extents; e < s->geo.nr_extents; e++) {
		struct plx_extent_bm *bm;
		u64 base = e << s->geo.extent_shift;
		u64 bmb;
		u32 bit;

		if (!((e - s->geo.system_extents) & 15))
			ck_progress(ck, "bitmaps", e - s->geo.system_extents,
				    s->geo.nr_extents - s->geo.system_extents);
		bm = plx_bitmap_load(s, e);

		if (!bm) {
			problem(ck, s->bm[e].err_block, "%s", plx_errmsg());
			continue;
		}
		for (off = 0; off < s->geo.extent_blocks; off++) {
			u64 b = base + off;
			const u8 *bits = bm->blk[off / PLX_BITS_PER_BITMAP].bits;
			u64 bo = off % PLX_BITS_PER_BITMAP;
			bool set = bits[bo / 8] & (1U << (bo % 8));

			if (off < s->geo.bitmap_blocks) {
				if (!set)
					problem(ck, b,
						"block %llu: bitmap block of extent %llu not marked in use in its own bitmap",
						(unsigned long long)b,
						(unsigned long long)e);
				continue;
			}
			/*
			 * Unreachable but allocated is garbage, also in an
			 * extent still typed free: a crash between the
			 * catalogue and bitmap writes, which may reach the
			 * disk in either order, leaves that harmlessly.
			 */
			if (set) {
				ck->st->allocated++;
				if (!bt(ck->reach, b))
					ck->st->garbage++;
			} else if (bt(ck->reach, b)) {
				plx_bitmap_locate(&s->geo, b, &bmb, &bit);
				problem(ck, b,
					"block %llu: in use but not marked allocated (bitmap block %llu bit %u)",
					(unsigned long long)b,
					(unsigned long long)bmb, bit);
			}
		}
	}
}

static void ck_sharing(struct plx_ck *ck)
{
	u64 b, words = (ck->s->geo.nr_blocks + 63) / 64;

	for (b = 0; b < words; b++) {
		u64 m = ck->wref[b] & ck->ref2[b];

		while (m) {
			u64 blk = b * 64 + (u64)__builtin_ctzll(m);

			m &= m - 1;
			problem(ck, blk,
				"block %llu: writable from a live VDI but linked more than once: writing it would change another tree",
				(unsigned long long)blk);
		}
	}
}

static void ck_count(struct plx_ck *ck)
{
	struct plx_store *s = ck->s;
	u64 b;

	for (b = 0; b < s->geo.nr_blocks; b++)
		if (bt(ck->reach, b) &&
		    s->ext_type[b >> s->geo.extent_shift] == PLX_EXT_DATA)
			ck->st->data_blocks++;
}

int plx_check(struct plx_store *s, plx_problem_fn fn, void *arg,
	      struct plx_check_stats *stats)
{
	return plx_check_progress(s, fn, arg, stats, NULL, NULL);
}

int plx_check_progress(struct plx_store *s, plx_problem_fn fn, void *arg,
		       struct plx_check_stats *stats, plx_progress_fn pfn,
		       void *parg)
{
	u64 words = (s->geo.nr_blocks + 63) / 64;
	u64 *maps[3 + PLX_MAX_HEIGHT];
	struct plx_ck ck;
	int i, ret = -1;
	u64 e;

	memset(stats, 0, sizeof(*stats));
	memset(&ck, 0, sizeof(ck));
	ck.s = s;
	ck.fn = fn;
	ck.arg = arg;
	ck.st = stats;
	ck.pfn = pfn;
	ck.parg = parg;
	/*
	 * The trees phase counts nodes against the metadata blocks the
	 * catalogue says are allocated: about as many, maybe less (advisory
	 * counts, garbage, log blocks).
	 */
	for (e = s->geo.system_extents; e < s->geo.nr_extents; e++) {
		const struct plx_catalogue_block *cb =
			&s->cat[e / PLX_CATALOGUE_PER_BLOCK];

		if (s->ext_type[e] == PLX_EXT_METADATA)
			ck.meta_used += le32_to_cpu(cb->entries[e %
						    PLX_CATALOGUE_PER_BLOCK].used);
	}
	for (i = 0; i < 3 + PLX_MAX_HEIGHT; i++)
		maps[i] = calloc(words, sizeof(u64));
	for (i = 0; i < 3 + PLX_MAX_HEIGHT; i++)
		if (!maps[i])
			goto out;
	ck.reach = maps[0];
	ck.ref2 = maps[1];
	ck.wref = maps[2];
	for (i = 0; i < PLX_MAX_HEIGHT; i++)
		ck.lvl[i] = maps[3 + i];

	ck_catalogue(&ck);
	ck_registry(&ck);
	/* Live trees first, so their writable paths are walked as such. */
	ck_live_trees(&ck);
	ck_snapshots(&ck);
	ck_parents(&ck);
	ck_bitmaps(&ck);
	ck_sharing(&ck);
	ck_count(&ck);
	ret = 0;
out:
	for (i = 0; i < 3 + PLX_MAX_HEIGHT; i++)
		free(maps[i]);
	if (ret)
		plx_seterr(PLX_EK_STORE, "out of memory");
	return ret;
}
