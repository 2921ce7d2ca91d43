// SPDX-License-Identifier: GPL-2.0
/*
 * Model-checked random histories for the garbage collector.
 *
 * A history is a seeded random sequence of create, write (whole blocks,
 * partial blocks, zeros), snapshot, bursts of snapshots, clone, delete
 * (VDIs, snapshots, or every VDI at once), gc and verify operations on a
 * small store in $TMPDIR, done through libparallax in this process.  A model holds what every live VDI and
 * snapshot must read back: per written block, a content id from which
 * its bytes are generated again.
 *
 * Around every gc the store itself is compared, through reads of its
 * own that do not go through the collector's code:
 *  - before: the blocks reachable from live VDIs, live snapshots, their
 *    logs and clones' parent_log blocks (a walk of the trees written
 *    here), a hash of every allocated block, the superblock and the
 *    registry, and every extent's bitmap bits and catalogue entry;
 *  - after: every reachable block is still allocated and unchanged; no
 *    block but bitmaps and catalogue changed; the gc allocated nothing
 *    and freed exactly the allocated, unreachable blocks; the freed
 *    counts of plx_gc_stats match the bitmaps; empty extents are free
 *    again; plx_check finds no problem and no garbage; and every live
 *    VDI and snapshot reads back its model contents.
 * One gc in four is first run in a child process that "crashes" after a
 * random number of block writes (PARALLAX_CRASH_AFTER_WRITES): nothing
 * reachable may be freed, check must stay clean, and the checked gc
 * after it must leave the store as if the first had finished.  Every
 * other op must free nothing and leave every block it allocated
 * reachable.  At the end of a history everything is deleted and
 * collected, and the bitmaps and catalogue must equal those of a
 * freshly formatted store.
 *
 * Output: one "ok"/"not ok" line per history and one per final cleanup;
 * a failure names the seed and op index, so that
 * "gc-model --seed N --ops M" replays it (-v lists the ops).  --inject
 * makes the checker's own self-test: a fault slipped in while the gc
 * runs, which the checks must report.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libparallax.h"

/* ---- Options ------------------------------------------------------------ */

enum inject {
	INJ_NONE,
	INJ_FLIP,		/* flip a bit of a reachable data block */
	INJ_UNALLOC,		/* clear a reachable block's bitmap bit */
	INJ_LEAK,		/* set the bitmap bit of a free block */
};

static const char *const inject_names[] = {
	[INJ_NONE] = "none",
	[INJ_FLIP] = "flip",
	[INJ_UNALLOC] = "unalloc",
	[INJ_LEAK] = "leak",
};

static struct {
	u64 seed;
	u64 histories;
	u64 ops;
	int geometry;		/* -1: chosen per seed */
	bool verbose;
	bool keep;
	bool same_handle;
	enum inject inject;
	const char *dir;
} opt = { .histories = 1, .ops = 300, .geometry = -1 };

/* Store geometries: extent blocks and store size in MiB. */
static const struct {
	u64 extent_blocks;
	u64 mib;
} geometries[] = {
	{ 1024, 256 },		/* 4 MiB extents, many of them */
	{ 2048, 128 },		/* 8 MiB extents, fewer: retyping matters */
	{ 1024, 96 },		/* tight: the gc must keep it going */
	{ 65536, 1024 },	/* 256 MiB extents: three bitmap blocks */
};

#define NR_GEOMETRIES	(sizeof(geometries) / sizeof(geometries[0]))

/* Bounds that keep a history's checks quick. */
#define MAX_LIVE_VDIS	12
#define MAX_LIVE_SNAPS	160
#define MAX_WRITES	24
#define HEADROOM	800	/* blocks one op may allocate, at most */

/* ---- Small helpers ------------------------------------------------------ */

static u64 mix64(u64 x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static bool bt(const u64 *m, u64 b)
{
	return m[b / 64] & (1ULL << (b % 64));
}

static void bs(u64 *m, u64 b)
{
	m[b / 64] |= 1ULL << (b % 64);
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (!p) {
		perror("gc-model");
		exit(2);
	}
	return p;
}

static void *xrealloc(void *p, size_t size)
{
	p = realloc(p, size);
	if (!p) {
		perror("gc-model");
		exit(2);
	}
	return p;
}

static u64 hash_block(const void *b)
{
	const u64 *w = b;
	u64 h = 0;
	unsigned int i;

	for (i = 0; i < PLX_BLOCK_SIZE / 8; i++)
		h = mix64(h ^ w[i]) + i;
	return h;
}

/* ---- Block contents ----------------------------------------------------- */

/*
 * Content id c > 0: bytes [off, off + len) generated from seed (zeros if
 * seed is 0) over the bytes of content @base.  Id 0 is all zeros.
 */
struct content {
	u64 base;
	u64 seed;
	u16 off;
	u16 len;
};

static struct content *ctab;
static u64 nr_ctab, cap_ctab;

static void gen(u64 seed, u8 *blk, unsigned int off, unsigned int len)
{
	unsigned int w, end = off + len;

	if (!seed) {
		memset(blk + off, 0, len);
		return;
	}
	for (w = off / 8; w * 8 < end; w++) {
		u64 x = mix64(seed ^ ((u64)w << 40));
		unsigned int lo = w * 8 < off ? off : w * 8;
		unsigned int hi = w * 8 + 8 > end ? end : w * 8 + 8;

		if (lo == w * 8 && hi == lo + 8)
			memcpy(blk + lo, &x, 8);
		else
			for (; lo < hi; lo++)
				blk[lo] = (u8)(x >> (8 * (lo % 8)));
	}
}

static u64 content_new(u64 base, u64 seed, unsigned int off, unsigned int len)
{
	if (!nr_ctab)
		nr_ctab = 1;
	if (nr_ctab >= cap_ctab) {
		cap_ctab = cap_ctab ? cap_ctab * 2 : 1024;
		ctab = xrealloc(ctab, cap_ctab * sizeof(*ctab));
	}
	ctab[nr_ctab] = (struct content){ base, seed, (u16)off, (u16)len };
	return nr_ctab++;
}

static void content_bytes(u64 c, u8 *out)
{
	static u64 *chain;
	static u64 cap;
	u64 n = 0;

	for (; c; c = ctab[c].base) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			chain = xrealloc(chain, cap * sizeof(*chain));
		}
		chain[n++] = c;
		if (ctab[c].len == PLX_BLOCK_SIZE)
			break;
	}
	memset(out, 0, PLX_BLOCK_SIZE);
	while (n--) {
		const struct content *x = &ctab[chain[n]];

		gen(x->seed, out, x->off, x->len);
	}
}

/* ---- The model ---------------------------------------------------------- */

/* Written blocks of one tree, sorted by virtual block. */
struct centry {
	u64 vb, c;
};

struct cmap {
	struct centry *e;
	u64 n, cap;
};

struct mvdi {
	u64 id;
	u64 blocks;
	u8 height;
	bool live;
	u64 snap_seq;
	u64 parent;		/* clone of this VDI id, or 0 */
	struct cmap m;
};

struct msnap {
	u64 vdi;
	u64 seq;
	bool live;
	char label[24];
	struct cmap m;
};

static u64 cmap_find(const struct cmap *m, u64 vb, bool *found)
{
	u64 lo = 0, hi = m->n;

	while (lo < hi) {
		u64 mid = (lo + hi) / 2;

		if (m->e[mid].vb < vb)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < m->n && m->e[lo].vb == vb;
	return lo;
}

static u64 cmap_get(const struct cmap *m, u64 vb)
{
	bool found;
	u64 i = cmap_find(m, vb, &found);

	return found ? m->e[i].c : 0;
}

static void cmap_set(struct cmap *m, u64 vb, u64 c)
{
	bool found;
	u64 i = cmap_find(m, vb, &found);

	if (found) {
		m->e[i].c = c;
		return;
	}
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 16;
		m->e = xrealloc(m->e, m->cap * sizeof(*m->e));
	}
	memmove(&m->e[i + 1], &m->e[i], (m->n - i) * sizeof(*m->e));
	m->e[i] = (struct centry){ vb, c };
	m->n++;
}

static void cmap_copy(struct cmap *dst, const struct cmap *src)
{
	dst->n = src->n;
	dst->cap = src->n;
	dst->e = xcalloc(src->n, sizeof(*dst->e));
	memcpy(dst->e, src->e, src->n * sizeof(*dst->e));
}

static void cmap_free(struct cmap *m)
{
	free(m->e);
	memset(m, 0, sizeof(*m));
}

/* ---- A history ---------------------------------------------------------- */

enum op {
	OP_CREATE, OP_WRITE, OP_SNAPSHOT, OP_BURST, OP_CLONE, OP_DELETE,
	OP_SNAP_DELETE, OP_PURGE, OP_GC, OP_VERIFY, OP_REOPEN, NR_OPS
};

static const char *const op_names[NR_OPS] = {
	"create", "write", "snapshot", "burst", "clone", "delete",
	"snap-delete", "purge", "gc", "verify", "reopen",
};

static const unsigned int op_weights[NR_OPS] = {
	[OP_CREATE] = 6, [OP_WRITE] = 32, [OP_SNAPSHOT] = 10, [OP_BURST] = 1,
	[OP_CLONE] = 7, [OP_DELETE] = 5, [OP_SNAP_DELETE] = 8, [OP_PURGE] = 1,
	[OP_GC] = 7,
	[OP_VERIFY] = 2, [OP_REOPEN] = 2,
};

/* The store as read behind the library's back. */
struct state {
	u64 *alloc;			/* bitmap bits, one per block */
	struct plx_extent_entry *cat;	/* per extent */
};

struct hist {
	u64 seed;
	u64 rng;
	u64 op;				/* index of the running op, from 1 */
	const char *opname;
	char path[PATH_MAX];
	int rawfd;
	struct plx_store *s;		/* working handle, or NULL */
	struct plx_geometry geo;	/* numbers only: ext_type is NULL */
	struct plx_format_opts fopts;
	u64 words;
	struct mvdi *vdis;
	u64 nr_vdis, cap_vdis;
	struct msnap *snaps;
	u64 nr_snaps, cap_snaps;
	u64 names;
	u64 counts[NR_OPS];
	u64 gcs_freed, gcs_emptied, crashes;
	/* First failure, and how many were printed. */
	char why[640];
	unsigned int nfail;
	/* Checks around a gc. */
	u64 *reach;
	u64 *owner;			/* who reached a block first */
	u64 *hashed, *hash;
	struct state before, after;
	struct state mid;		/* after a crashed gc, if any */
	unsigned int notes;
	bool injected;
	u64 inject_block;
};

static void __attribute__((format(printf, 2, 3)))
fail(struct hist *h, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!h->nfail)
		snprintf(h->why, sizeof(h->why), "op %llu (%s): %s",
			 (unsigned long long)h->op, h->opname, msg);
	if (h->nfail++ < 20)
		printf("# seed %llu op %llu (%s): %s\n",
		       (unsigned long long)h->seed, (unsigned long long)h->op,
		       h->opname, msg);
	fflush(stdout);
}

static void __attribute__((format(printf, 2, 3)))
trace(struct hist *h, const char *fmt, ...)
{
	va_list ap;

	if (!opt.verbose)
		return;
	printf("# op %llu: ", (unsigned long long)h->op);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static u64 rnd(struct hist *h)
{
	h->rng += 0x9e3779b97f4a7c15ULL;
	return mix64(h->rng);
}

static u64 below(struct hist *h, u64 n)
{
	return n ? rnd(h) % n : 0;
}

/* Names and labels: unique within a history. */
static u64 next_name(struct hist *h)
{
	return ++h->names;
}

static struct mvdi *find_vdi(struct hist *h, u64 id)
{
	u64 i;

	for (i = 0; i < h->nr_vdis; i++)
		if (h->vdis[i].id == id && h->vdis[i].live)
			return &h->vdis[i];
	return NULL;
}

static struct msnap *find_snap(struct hist *h, u64 vdi, u64 seq)
{
	u64 i;

	for (i = 0; i < h->nr_snaps; i++)
		if (h->snaps[i].vdi == vdi && h->snaps[i].seq == seq &&
		    h->snaps[i].live)
			return &h->snaps[i];
	return NULL;
}

static u64 live_vdis(struct hist *h)
{
	u64 i, n = 0;

	for (i = 0; i < h->nr_vdis; i++)
		n += h->vdis[i].live;
	return n;
}

static u64 live_snaps(struct hist *h)
{
	u64 i, n = 0;

	for (i = 0; i < h->nr_snaps; i++)
		n += h->snaps[i].live;
	return n;
}

static struct mvdi *pick_vdi(struct hist *h)
{
	u64 k = below(h, live_vdis(h)), i;

	for (i = 0; i < h->nr_vdis; i++)
		if (h->vdis[i].live && !k--)
			return &h->vdis[i];
	return NULL;
}

static struct msnap *pick_snap(struct hist *h)
{
	u64 k = below(h, live_snaps(h)), i;

	for (i = 0; i < h->nr_snaps; i++)
		if (h->snaps[i].live && !k--)
			return &h->snaps[i];
	return NULL;
}

static struct mvdi *add_vdi(struct hist *h)
{
	if (h->nr_vdis == h->cap_vdis) {
		h->cap_vdis = h->cap_vdis ? h->cap_vdis * 2 : 16;
		h->vdis = xrealloc(h->vdis, h->cap_vdis * sizeof(*h->vdis));
	}
	memset(&h->vdis[h->nr_vdis], 0, sizeof(*h->vdis));
	return &h->vdis[h->nr_vdis++];
}

static struct msnap *add_snap(struct hist *h)
{
	if (h->nr_snaps == h->cap_snaps) {
		h->cap_snaps = h->cap_snaps ? h->cap_snaps * 2 : 64;
		h->snaps = xrealloc(h->snaps, h->cap_snaps * sizeof(*h->snaps));
	}
	memset(&h->snaps[h->nr_snaps], 0, sizeof(*h->snaps));
	return &h->snaps[h->nr_snaps++];
}

static int open_work(struct hist *h)
{
	if (h->s)
		return 0;
	h->s = plx_open(h->path, PLX_OPEN_RDWR);
	if (!h->s) {
		fail(h, "open: %s", plx_errmsg());
		return -1;
	}
	return 0;
}

static void close_work(struct hist *h)
{
	plx_close(h->s);
	h->s = NULL;
}

/* ---- Raw reads of the store --------------------------------------------- */

static int raw_read(struct hist *h, u64 b, void *buf)
{
	if (pread(h->rawfd, buf, PLX_BLOCK_SIZE,
		  (off_t)(b * PLX_BLOCK_SIZE)) != PLX_BLOCK_SIZE) {
		fail(h, "block %llu: read failed", (unsigned long long)b);
		return -1;
	}
	return 0;
}

static int raw_write(struct hist *h, u64 b, const void *buf)
{
	if (pwrite(h->rawfd, buf, PLX_BLOCK_SIZE,
		   (off_t)(b * PLX_BLOCK_SIZE)) != PLX_BLOCK_SIZE) {
		fail(h, "block %llu: write failed", (unsigned long long)b);
		return -1;
	}
	return 0;
}

static bool in_bitmap_area(struct hist *h, u64 b)
{
	return (b & (h->geo.extent_blocks - 1)) < h->geo.bitmap_blocks;
}

static u64 ext_of(struct hist *h, u64 b)
{
	return b >> h->geo.extent_shift;
}

/* Catalogue entries and bitmap bits of every extent. */
static int read_state(struct hist *h, struct state *st)
{
	const struct plx_geometry *g = &h->geo;
	u8 blk[PLX_BLOCK_SIZE];
	u64 i, e, off;

	memset(st->alloc, 0, h->words * 8);
	for (i = 0; i < g->catalogue_blocks; i++) {
		const struct plx_catalogue_block *cb = (const void *)blk;
		u64 b = g->catalogue_start + i;

		if (raw_read(h, b, blk))
			return -1;
		if (plx_block_verify(blk, PLX_MAGIC_CATALOGUE, b, g->uuid)) {
			fail(h, "block %llu: catalogue block does not verify",
			     (unsigned long long)b);
			return -1;
		}
		for (e = i * PLX_CATALOGUE_PER_BLOCK; e < g->nr_extents &&
		     e < (i + 1) * PLX_CATALOGUE_PER_BLOCK; e++)
			st->cat[e] = cb->entries[e % PLX_CATALOGUE_PER_BLOCK];
	}
	for (e = g->system_extents; e < g->nr_extents; e++) {
		u64 base = e << g->extent_shift;

		for (i = 0; i < g->bitmap_blocks; i++) {
			const struct plx_bitmap_block *bb = (const void *)blk;

			if (raw_read(h, base + i, blk))
				return -1;
			if (plx_block_verify(blk, PLX_MAGIC_BITMAP, base + i,
					     g->uuid)) {
				fail(h, "block %llu: bitmap block does not verify",
				     (unsigned long long)(base + i));
				return -1;
			}
			for (off = i * PLX_BITS_PER_BITMAP;
			     off < (i + 1) * PLX_BITS_PER_BITMAP &&
			     off < g->extent_blocks; off++) {
				u64 bit = off - i * PLX_BITS_PER_BITMAP;

				if (bb->bits[bit / 8] & (1U << (bit % 8)))
					bs(st->alloc, base + off);
			}
		}
	}
	return 0;
}

/* Allocated blocks of extent @e besides its bitmap blocks. */
static u64 ext_used(struct hist *h, const struct state *st, u64 e)
{
	u64 off, n = 0, base = e << h->geo.extent_shift;

	for (off = h->geo.bitmap_blocks; off < h->geo.extent_blocks; off++)
		n += bt(st->alloc, base + off);
	return n;
}

/*
 * Is there room for one more op?  Each type needs HEADROOM free blocks
 * in extents of its type, or free extents to make up the difference.
 * Leaves the state before the op in h->before.
 */
static bool store_has_room(struct hist *h)
{
	const struct plx_geometry *g = &h->geo;
	u64 e, free_ext = 0, room[4] = { 0 }, cap, need = 0, t;

	if (read_state(h, &h->before))
		return false;
	cap = g->extent_blocks - g->bitmap_blocks;
	for (e = g->system_extents; e < g->nr_extents; e++) {
		t = h->before.cat[e].type;
		if (t == PLX_EXT_FREE)
			free_ext++;
		else if (t == PLX_EXT_DATA || t == PLX_EXT_METADATA)
			room[t] += cap - ext_used(h, &h->before, e);
	}
	for (t = PLX_EXT_DATA; t <= PLX_EXT_METADATA; t++)
		if (room[t] < HEADROOM)
			need += (HEADROOM - room[t] + cap - 1) / cap;
	return need <= free_ext;
}

/* ---- Reachability, by a walk of our own --------------------------------- */

#define OWN_LOG		0xffffffffULL
#define OWN_PARENT_LOG	0xfffffffeULL

static void describe(u64 own, char *buf, size_t len)
{
	u64 id = own >> 32, what = own & 0xffffffffULL;

	if (what == OWN_LOG)
		snprintf(buf, len, "snapshot log of VDI %llu",
			 (unsigned long long)id);
	else if (what == OWN_PARENT_LOG)
		snprintf(buf, len, "parent log of clone VDI %llu",
			 (unsigned long long)id);
	else if (what)
		snprintf(buf, len, "snapshot %llu@%llu", (unsigned long long)id,
			 (unsigned long long)what);
	else
		snprintf(buf, len, "VDI %llu", (unsigned long long)id);
}

static int reach_mark(struct hist *h, u64 b, u64 own)
{
	const struct plx_geometry *g = &h->geo;

	if (!b || b >= g->nr_blocks || ext_of(h, b) < g->system_extents ||
	    in_bitmap_area(h, b)) {
		char who[64];

		describe(own, who, sizeof(who));
		fail(h, "%s links block %llu, which no tree may link", who,
		     (unsigned long long)b);
		return -1;
	}
	if (!bt(h->reach, b)) {
		bs(h->reach, b);
		h->owner[b] = own;
	}
	return 0;
}

static int reach_node(struct hist *h, u64 node, unsigned int level, u64 own)
{
	__le64 ptr[PLX_PTRS_PER_NODE];
	unsigned int i;

	if (raw_read(h, node, ptr))
		return -1;
	for (i = 0; i < PLX_PTRS_PER_NODE; i++) {
		u64 a = plx_ptr_addr(le64_to_cpu(ptr[i]));
		bool seen;

		if (!ptr[i])
			continue;
		if (a < h->geo.nr_blocks)
			seen = bt(h->reach, a);
		else
			seen = false;
		if (reach_mark(h, a, own))
			return -1;
		/* A shared subtree was walked when first reached. */
		if (level && !seen && reach_node(h, a, level - 1, own))
			return -1;
	}
	return 0;
}

static int reach_tree(struct hist *h, u64 root, u8 height, u64 own)
{
	bool seen = root < h->geo.nr_blocks && bt(h->reach, root);

	if (reach_mark(h, root, own))
		return -1;
	return seen ? 0 : reach_node(h, root, height - 1u, own);
}

/*
 * The reachable set from the registry as it is on disk, which must agree
 * with the model: the same live VDIs, the same live snapshots.
 */
static int compute_reach(struct hist *h, struct plx_store *s)
{
	struct plx_snaplist l;
	u64 id, i;

	memset(h->reach, 0, h->words * 8);
	for (id = 1; id <= h->geo.registry_slots; id++) {
		struct plx_slot *sl = &s->slots[id - 1];
		struct plx_vdi_record *v = &sl->rec;
		struct mvdi *mv = find_vdi(h, id);
		bool live = sl->state == PLX_SLOT_VDI && plx_vdi_live(v);
		u64 nsnaps = 0;

		if (sl->state == PLX_SLOT_BAD) {
			fail(h, "VDI %llu: bad record", (unsigned long long)id);
			return -1;
		}
		if (live != !!mv) {
			fail(h, "VDI %llu is %s on disk but %s in the model",
			     (unsigned long long)id, live ? "live" : "not live",
			     mv ? "live" : "not live");
			return -1;
		}
		if (!live)
			continue;
		if (le64_to_cpu(v->size) != mv->blocks * PLX_BLOCK_SIZE ||
		    v->height != mv->height ||
		    le64_to_cpu(v->parent_vdi) != mv->parent ||
		    le64_to_cpu(v->snap_seq) != mv->snap_seq) {
			fail(h, "VDI %llu: record does not match the model (size, height, parent or snap_seq)",
			     (unsigned long long)id);
			return -1;
		}
		if (reach_tree(h, le64_to_cpu(v->root), v->height, id << 32))
			return -1;
		if (v->parent_vdi &&
		    reach_mark(h, le64_to_cpu(v->parent_log),
			       id << 32 | OWN_PARENT_LOG))
			return -1;
		if (plx_snaplog_load(s, id, &l)) {
			fail(h, "VDI %llu: %s", (unsigned long long)id,
			     plx_errmsg());
			return -1;
		}
		for (i = 0; i < l.nr_blocks; i++)
			if (reach_mark(h, l.blocks[i], id << 32 | OWN_LOG))
				goto fail;
		for (i = 0; i < l.count; i++) {
			const struct plx_snap_record *r = &l.snaps[i].rec;
			u64 seq = le64_to_cpu(r->seq);
			bool dead = le32_to_cpu(r->flags) & PLX_SNAP_DELETED;

			if (dead != !find_snap(h, id, seq)) {
				fail(h, "snapshot %llu@%llu is %s on disk but not in the model",
				     (unsigned long long)id,
				     (unsigned long long)seq,
				     dead ? "deleted" : "live");
				goto fail;
			}
			if (dead)
				continue;
			nsnaps++;
			if (reach_tree(h, le64_to_cpu(r->root), v->height,
				       id << 32 | seq))
				goto fail;
		}
		plx_snaplist_free(&l);
		for (i = 0; i < h->nr_snaps; i++)
			nsnaps -= h->snaps[i].live && h->snaps[i].vdi == id;
		if (nsnaps) {
			fail(h, "VDI %llu: the model has snapshots the log does not",
			     (unsigned long long)id);
			return -1;
		}
	}
	return 0;
fail:
	plx_snaplist_free(&l);
	return -1;
}

/* ---- Contents ----------------------------------------------------------- */

struct walk {
	struct hist *h;
	struct plx_store *s;
	const struct cmap *m;
	u64 next;			/* index into m */
	const char *what;
};

static int verify_block(void *arg, u64 vb, u64 pb)
{
	struct walk *w = arg;
	u8 got[PLX_BLOCK_SIZE], want[PLX_BLOCK_SIZE];

	while (w->next < w->m->n && w->m->e[w->next].vb < vb) {
		fail(w->h, "%s: block %llu was written but is sparse", w->what,
		     (unsigned long long)w->m->e[w->next].vb);
		return -1;
	}
	if (w->next >= w->m->n || w->m->e[w->next].vb != vb) {
		fail(w->h, "%s: block %llu is mapped (to %llu) but was never written",
		     w->what, (unsigned long long)vb, (unsigned long long)pb);
		return -1;
	}
	content_bytes(w->m->e[w->next++].c, want);
	if (plx_read_block(w->s, pb, got)) {
		fail(w->h, "%s: %s", w->what, plx_errmsg());
		return -1;
	}
	if (memcmp(got, want, sizeof(got))) {
		fail(w->h, "%s: block %llu (at %llu) has the wrong contents",
		     w->what, (unsigned long long)vb, (unsigned long long)pb);
		return -1;
	}
	return 0;
}

static int verify_tree(struct hist *h, struct plx_store *s, u64 root,
		       u8 height, const struct cmap *m, const char *what)
{
	struct walk w = { h, s, m, 0, what };

	if (plx_map_walk(s, root, height, verify_block, &w)) {
		if (!h->nfail)
			fail(h, "%s: %s", what, plx_errmsg());
		return -1;
	}
	if (w.next < m->n) {
		fail(h, "%s: block %llu was written but is sparse", what,
		     (unsigned long long)m->e[w.next].vb);
		return -1;
	}
	return 0;
}

/* The same tree through plx_export, into memory. */
static int verify_export(struct hist *h, struct plx_store *s, u64 root,
			 u8 height, u64 blocks, const struct cmap *m,
			 const char *what)
{
	u8 got[PLX_BLOCK_SIZE], want[PLX_BLOCK_SIZE];
	struct plx_io_stats io;
	u64 vb, i = 0;
	int fd = memfd_create("gc-model", MFD_CLOEXEC), ret = -1;

	if (fd < 0) {
		fail(h, "memfd_create: %s", strerror(errno));
		return -1;
	}
	if (plx_export(s, root, height, blocks * PLX_BLOCK_SIZE, fd, &io)) {
		fail(h, "%s: export: %s", what, plx_errmsg());
		goto out;
	}
	for (vb = 0; vb < blocks; vb++) {
		u64 c = 0;

		if (i < m->n && m->e[i].vb == vb)
			c = m->e[i++].c;
		content_bytes(c, want);
		if (pread(fd, got, sizeof(got), (off_t)(vb * PLX_BLOCK_SIZE)) !=
		    PLX_BLOCK_SIZE) {
			fail(h, "%s: export is short", what);
			goto out;
		}
		if (memcmp(got, want, sizeof(got))) {
			fail(h, "%s: exported block %llu has the wrong contents",
			     what, (unsigned long long)vb);
			goto out;
		}
	}
	ret = 0;
out:
	close(fd);
	return ret;
}

/* Every live VDI and snapshot against the model; one through export. */
static int verify_contents(struct hist *h, struct plx_store *s)
{
	u64 i, j, nexp = 0, pick;
	struct plx_snaplist l;
	char what[64];

	pick = below(h, live_vdis(h) + live_snaps(h) + 1);
	for (i = 0; i < h->nr_vdis; i++) {
		struct mvdi *mv = &h->vdis[i];
		struct plx_vdi_record *v;

		if (!mv->live)
			continue;
		v = plx_vdi_get(s, mv->id);
		if (!v) {
			fail(h, "VDI %llu: %s", (unsigned long long)mv->id,
			     plx_errmsg());
			return -1;
		}
		snprintf(what, sizeof(what), "VDI %llu",
			 (unsigned long long)mv->id);
		if (verify_tree(h, s, le64_to_cpu(v->root), v->height, &mv->m,
				what))
			return -1;
		if (nexp++ == pick && mv->blocks <= 16384 &&
		    verify_export(h, s, le64_to_cpu(v->root), v->height,
				  mv->blocks, &mv->m, what))
			return -1;
		if (plx_snaplog_load(s, mv->id, &l)) {
			fail(h, "VDI %llu: %s", (unsigned long long)mv->id,
			     plx_errmsg());
			return -1;
		}
		for (j = 0; j < l.count; j++) {
			const struct plx_snap_record *r = &l.snaps[j].rec;
			struct msnap *ms = find_snap(h, mv->id,
						     le64_to_cpu(r->seq));

			if (!ms)
				continue;
			snprintf(what, sizeof(what), "snapshot %llu@%llu",
				 (unsigned long long)mv->id,
				 (unsigned long long)ms->seq);
			if (verify_tree(h, s, le64_to_cpu(r->root), v->height,
					&ms->m, what) ||
			    (nexp++ == pick && mv->blocks <= 16384 &&
			     verify_export(h, s, le64_to_cpu(r->root),
					   v->height, mv->blocks, &ms->m,
					   what))) {
				plx_snaplist_free(&l);
				return -1;
			}
		}
		plx_snaplist_free(&l);
	}
	return 0;
}

static void on_problem(void *arg, u64 block, const char *msg)
{
	struct hist *h = arg;

	(void)block;
	fail(h, "check: %s", msg);
}

/*
 * Diagnosis for garbage that check sees and the gc keeps: the blocks
 * reached only as the parent_log of a clone whose parent is deleted.
 */
static void orphan_logs(struct hist *h)
{
	u64 b;

	for (b = 0; b < h->geo.nr_blocks; b++) {
		u64 own = h->owner[b];
		u64 i;

		if (!bt(h->reach, b) || (own & 0xffffffffULL) != OWN_PARENT_LOG)
			continue;
		for (i = 0; i < h->nr_vdis; i++)
			if (h->vdis[i].id == own >> 32 && h->vdis[i].live &&
			    !find_vdi(h, h->vdis[i].parent))
				printf("# block %llu: reachable only as the parent_log of clone VDI %llu, whose parent VDI %llu is deleted\n",
				       (unsigned long long)b,
				       (unsigned long long)(own >> 32),
				       (unsigned long long)h->vdis[i].parent);
	}
}

/* plx_check on a fresh read-only handle; @gc: right after a gc. */
static int run_check(struct hist *h, struct plx_store *s, bool gc,
		     struct plx_check_stats *cs)
{
	if (plx_check(s, on_problem, h, cs)) {
		fail(h, "check could not run: %s", plx_errmsg());
		return -1;
	}
	if (cs->vdis != live_vdis(h) || cs->snapshots != live_snaps(h))
		fail(h, "check walked %llu VDIs and %llu snapshots, the model has %llu and %llu",
		     (unsigned long long)cs->vdis,
		     (unsigned long long)cs->snapshots,
		     (unsigned long long)live_vdis(h),
		     (unsigned long long)live_snaps(h));
	if (gc && cs->garbage) {
		fail(h, "check counts %llu garbage blocks right after a gc",
		     (unsigned long long)cs->garbage);
		orphan_logs(h);
	}
	return cs->problems || (gc && cs->garbage) ? -1 : 0;
}

/* ---- Operations --------------------------------------------------------- */

static u64 vdi_size_blocks(struct hist *h)
{
	switch (below(h, 8)) {
	case 0: case 1: case 2:		/* one level */
		return 1 + below(h, 512);
	case 3: case 4: case 5: case 6:	/* two levels */
		return 513 + below(h, 64 * 256);
	default:			/* three levels, very sparse */
		return (1ULL << 18) + 1 + below(h, 1ULL << 20);
	}
}

static void op_create(struct hist *h)
{
	struct mvdi *mv;
	char name[32];
	u64 blocks = vdi_size_blocks(h), id;

	snprintf(name, sizeof(name), "v%llu", (unsigned long long)next_name(h));
	if (plx_vdi_create(h->s, name, blocks * PLX_BLOCK_SIZE, &id)) {
		fail(h, "create %s: %s", name, plx_errmsg());
		return;
	}
	if (find_vdi(h, id)) {
		fail(h, "create gave id %llu, which is live",
		     (unsigned long long)id);
		return;
	}
	mv = add_vdi(h);
	mv->id = id;
	mv->blocks = blocks;
	mv->height = plx_height_for_size(blocks * PLX_BLOCK_SIZE);
	mv->live = true;
	trace(h, "create VDI %llu (%llu blocks, height %u)",
	      (unsigned long long)id, (unsigned long long)blocks, mv->height);
}

static u64 pick_vblock(struct hist *h, struct mvdi *mv, unsigned int pattern,
		       u64 base, unsigned int i)
{
	switch (pattern) {
	case 0:
		return below(h, mv->blocks);
	case 1:
		return (base + i) % mv->blocks;
	default:
		if (mv->m.n)
			return mv->m.e[below(h, mv->m.n)].vb;
		return below(h, mv->blocks);
	}
}

static void write_some(struct hist *h, struct mvdi *mv, unsigned int n)
{
	unsigned int i, pattern = (unsigned int)below(h, 3);
	u64 base = below(h, mv->blocks);
	struct plx_writer *w = plx_writer_open(h->s, mv->id);
	u8 buf[PLX_BLOCK_SIZE];

	if (!w) {
		fail(h, "writer for VDI %llu: %s", (unsigned long long)mv->id,
		     plx_errmsg());
		return;
	}
	for (i = 0; i < n; i++) {
		u64 vb = pick_vblock(h, mv, pattern, base, i), c, kind;
		unsigned int off = 0, len = PLX_BLOCK_SIZE;
		u64 seed = rnd(h) | 1;

		kind = below(h, 20);
		if (kind >= 14 && kind < 19) {
			off = (unsigned int)below(h, PLX_BLOCK_SIZE);
			len = 1 + (unsigned int)below(h, PLX_BLOCK_SIZE - off);
		} else if (kind == 19) {
			seed = 0;
		}
		c = content_new(cmap_get(&mv->m, vb), seed, off, len);
		gen(seed, buf, off, len);
		if (plx_writer_write(w, vb, buf + off, off, len)) {
			fail(h, "write VDI %llu block %llu: %s",
			     (unsigned long long)mv->id,
			     (unsigned long long)vb, plx_errmsg());
			plx_writer_abort(w);
			return;
		}
		cmap_set(&mv->m, vb, c);
		if (!below(h, 10) && plx_writer_flush(w)) {
			fail(h, "flush VDI %llu: %s", (unsigned long long)mv->id,
			     plx_errmsg());
			plx_writer_abort(w);
			return;
		}
	}
	if (plx_writer_close(w))
		fail(h, "close writer of VDI %llu: %s",
		     (unsigned long long)mv->id, plx_errmsg());
}

static void op_write(struct hist *h)
{
	struct mvdi *mv = pick_vdi(h);
	unsigned int n = 1 + (unsigned int)below(h, MAX_WRITES);

	trace(h, "write %u blocks to VDI %llu", n, (unsigned long long)mv->id);
	write_some(h, mv, n);
}

static void snapshot_of(struct hist *h, struct mvdi *mv)
{
	char label[24] = "";
	struct msnap *ms;
	u64 seq;

	if (below(h, 2))
		snprintf(label, sizeof(label), "s%llu",
			 (unsigned long long)next_name(h));
	if (plx_snapshot(h->s, mv->id, label[0] ? label : NULL, &seq)) {
		fail(h, "snapshot VDI %llu: %s", (unsigned long long)mv->id,
		     plx_errmsg());
		return;
	}
	if (seq != mv->snap_seq + 1) {
		fail(h, "snapshot of VDI %llu got seq %llu, expected %llu",
		     (unsigned long long)mv->id, (unsigned long long)seq,
		     (unsigned long long)(mv->snap_seq + 1));
		return;
	}
	mv->snap_seq = seq;
	ms = add_snap(h);
	ms->vdi = mv->id;
	ms->seq = seq;
	ms->live = true;
	memcpy(ms->label, label, sizeof(label));
	cmap_copy(&ms->m, &mv->m);
	trace(h, "snapshot %llu@%llu%s%s", (unsigned long long)mv->id,
	      (unsigned long long)seq, label[0] ? " " : "", label);
}

static void op_snapshot(struct hist *h)
{
	snapshot_of(h, pick_vdi(h));
}

static void check_op_allocs(struct hist *h);

/*
 * Many snapshots of one VDI: log chains of several blocks.  Each
 * snapshot leaves the log block before it unlinked, so the allocations
 * are checked step by step.
 */
static void op_burst(struct hist *h)
{
	struct mvdi *mv = pick_vdi(h);
	u64 n = 20 + below(h, 60), i;

	trace(h, "burst of %llu snapshots of VDI %llu", (unsigned long long)n,
	      (unsigned long long)mv->id);
	for (i = 0; i < n && !h->nfail; i++) {
		if (!below(h, 4)) {
			write_some(h, mv, 1 + (unsigned int)below(h, 3));
			if (!h->nfail)
				check_op_allocs(h);
		}
		if (!h->nfail)
			snapshot_of(h, mv);
		if (!h->nfail && i + 1 < n)
			check_op_allocs(h);
	}
}

static int resolve(struct hist *h, struct msnap *ms, struct plx_snap *out)
{
	char arg[64];

	if (ms->label[0] && below(h, 2))
		snprintf(arg, sizeof(arg), "%s", ms->label);
	else
		snprintf(arg, sizeof(arg), "%llu@%llu",
			 (unsigned long long)ms->vdi,
			 (unsigned long long)ms->seq);
	if (plx_resolve_snap(h->s, arg, false, out)) {
		fail(h, "resolve %s: %s", arg, plx_errmsg());
		return -1;
	}
	if (out->vdi != ms->vdi || le64_to_cpu(out->rec.seq) != ms->seq) {
		fail(h, "%s resolved to %llu@%llu", arg,
		     (unsigned long long)out->vdi,
		     (unsigned long long)le64_to_cpu(out->rec.seq));
		return -1;
	}
	return 0;
}

static void op_clone(struct hist *h)
{
	struct msnap *ms = pick_snap(h);
	struct mvdi *parent = find_vdi(h, ms->vdi), *mv;
	struct plx_snap sn;
	char name[32];
	u64 id;

	if (resolve(h, ms, &sn))
		return;
	snprintf(name, sizeof(name), "c%llu", (unsigned long long)next_name(h));
	if (plx_vdi_clone(h->s, name, &sn, &id)) {
		fail(h, "clone %llu@%llu: %s", (unsigned long long)ms->vdi,
		     (unsigned long long)ms->seq, plx_errmsg());
		return;
	}
	/* add_vdi may move the array. */
	mv = add_vdi(h);
	parent = find_vdi(h, ms->vdi);
	mv->id = id;
	mv->blocks = parent->blocks;
	mv->height = parent->height;
	mv->parent = parent->id;
	mv->live = true;
	cmap_copy(&mv->m, &ms->m);
	trace(h, "clone %llu@%llu as VDI %llu", (unsigned long long)ms->vdi,
	      (unsigned long long)ms->seq, (unsigned long long)id);
}

static void op_delete(struct hist *h, struct mvdi *mv)
{
	u64 i;

	if (plx_vdi_delete(h->s, mv->id)) {
		fail(h, "delete VDI %llu: %s", (unsigned long long)mv->id,
		     plx_errmsg());
		return;
	}
	mv->live = false;
	cmap_free(&mv->m);
	for (i = 0; i < h->nr_snaps; i++) {
		if (h->snaps[i].vdi == mv->id && h->snaps[i].live) {
			h->snaps[i].live = false;
			cmap_free(&h->snaps[i].m);
		}
	}
	trace(h, "delete VDI %llu", (unsigned long long)mv->id);
}

/* Everything at once: the next gc empties whole extents. */
static void op_purge(struct hist *h)
{
	u64 i;

	trace(h, "purge");
	for (i = 0; i < h->nr_vdis && !h->nfail; i++)
		if (h->vdis[i].live)
			op_delete(h, &h->vdis[i]);
}

static void op_snap_delete(struct hist *h)
{
	struct msnap *ms = pick_snap(h);
	struct plx_snap sn;

	if (resolve(h, ms, &sn))
		return;
	if (plx_snap_delete(h->s, &sn)) {
		fail(h, "delete snapshot %llu@%llu: %s",
		     (unsigned long long)ms->vdi, (unsigned long long)ms->seq,
		     plx_errmsg());
		return;
	}
	ms->live = false;
	cmap_free(&ms->m);
	trace(h, "delete snapshot %llu@%llu", (unsigned long long)ms->vdi,
	      (unsigned long long)ms->seq);
}

/* Contents, registry and check at any point; garbage is allowed. */
static void op_verify(struct hist *h)
{
	struct plx_store *s = plx_open(h->path, PLX_OPEN_RDONLY);
	struct plx_check_stats cs;

	trace(h, "verify");
	if (!s) {
		fail(h, "open: %s", plx_errmsg());
		return;
	}
	if (!compute_reach(h, s) && !verify_contents(h, s))
		run_check(h, s, false, &cs);
	plx_close(s);
}

/* ---- The gc and its checks ---------------------------------------------- */

static void on_note(void *arg, const char *msg)
{
	struct hist *h = arg;

	h->notes++;
	fail(h, "unexpected gc note: %s", msg);
}

/* Set or clear block @b's bit in its on-disk bitmap, resealed. */
static void raw_set_bit(struct hist *h, u64 b, bool set)
{
	const struct plx_geometry *g = &h->geo;
	u8 blk[PLX_BLOCK_SIZE];
	struct plx_bitmap_block *bb = (void *)blk;
	u64 bmb;
	u32 bit;

	plx_bitmap_locate(g, b, &bmb, &bit);
	if (raw_read(h, bmb, blk))
		return;
	if (set)
		bb->bits[bit / 8] |= (u8)(1U << (bit % 8));
	else
		bb->bits[bit / 8] &= (u8)~(1U << (bit % 8));
	plx_block_seal(blk, PLX_MAGIC_BITMAP, bmb, g->uuid);
	raw_write(h, bmb, blk);
}

/*
 * --inject: a fault while the gc sweeps, in an extent it has swept
 * already, as a broken collector would leave it.
 */
static void on_progress(void *arg, const char *phase, u64 done, u64 total)
{
	struct hist *h = arg;
	const struct plx_geometry *g = &h->geo;
	u64 e = g->system_extents + done - 1, base, off, b = 0;
	u8 blk[PLX_BLOCK_SIZE];

	(void)total;
	if (opt.inject == INJ_NONE || h->injected ||
	    strcmp(phase, "sweeping") || !done)
		return;
	/* Flip data, unallocate a node or root, leak a data block. */
	if (h->before.cat[e].type != (opt.inject == INJ_UNALLOC ?
				      PLX_EXT_METADATA : PLX_EXT_DATA))
		return;
	base = e << g->extent_shift;
	for (off = g->bitmap_blocks; off < g->extent_blocks; off++) {
		b = base + off;
		if (opt.inject == INJ_LEAK ? !bt(h->before.alloc, b) :
					     bt(h->reach, b))
			break;
	}
	if (off == g->extent_blocks)
		return;
	h->injected = true;
	h->inject_block = b;
	printf("# injecting '%s' at block %llu\n", inject_names[opt.inject],
	       (unsigned long long)b);
	switch (opt.inject) {
	case INJ_FLIP:
		if (!raw_read(h, b, blk)) {
			blk[100] ^= 0x10;
			raw_write(h, b, blk);
		}
		break;
	case INJ_UNALLOC:
		raw_set_bit(h, b, false);
		break;
	case INJ_LEAK:
		raw_set_bit(h, b, true);
		break;
	default:
		break;
	}
}

/* Superblock, registry, and allocated blocks outside the bitmaps. */
static bool to_hash(struct hist *h, u64 b)
{
	const struct plx_geometry *g = &h->geo;

	if (b >= g->system_extents << g->extent_shift)
		return !in_bitmap_area(h, b) && bt(h->before.alloc, b);
	if (b >= g->catalogue_start &&
	    b < g->catalogue_start + g->catalogue_blocks)
		return false;
	return b < g->registry_start + g->registry_slots;
}

/* Hash what the gc must not write: everything but bitmaps and catalogue. */
static int hash_store(struct hist *h)
{
	const struct plx_geometry *g = &h->geo;
	u8 blk[PLX_BLOCK_SIZE];
	u64 b;

	memset(h->hashed, 0, h->words * 8);
	for (b = 0; b < g->nr_blocks; b++) {
		if (!to_hash(h, b))
			continue;
		if (raw_read(h, b, blk))
			return -1;
		bs(h->hashed, b);
		h->hash[b] = hash_block(blk);
	}
	return 0;
}

static void compare_blocks(struct hist *h, u64 *freed)
{
	const struct plx_geometry *g = &h->geo;
	u8 blk[PLX_BLOCK_SIZE];
	char who[64];
	u64 b;

	freed[0] = freed[1] = 0;
	for (b = 0; b < g->nr_blocks; b++) {
		bool before = bt(h->before.alloc, b);
		bool after = bt(h->after.alloc, b), r = bt(h->reach, b);
		u8 type = h->before.cat[ext_of(h, b)].type;

		if (r)
			describe(h->owner[b], who, sizeof(who));
		if (bt(h->hashed, b)) {
			if (raw_read(h, b, blk))
				return;
			if (hash_block(blk) != h->hash[b])
				fail(h, "block %llu (%s) changed during the gc",
				     (unsigned long long)b,
				     r ? who : "not reachable");
		}
		if (b < g->system_extents << g->extent_shift ||
		    in_bitmap_area(h, b)) {
			if (b >= g->system_extents << g->extent_shift && !after)
				fail(h, "bitmap block %llu no longer marked in use",
				     (unsigned long long)b);
			continue;
		}
		if (r && !before)
			fail(h, "before the gc: block %llu (%s) is not allocated",
			     (unsigned long long)b, who);
		if (r && !after)
			fail(h, "block %llu (%s) was freed by the gc",
			     (unsigned long long)b, who);
		if (after && !before)
			fail(h, "block %llu was allocated by the gc",
			     (unsigned long long)b);
		if (!r && after)
			fail(h, "block %llu is allocated and unreachable after the gc",
			     (unsigned long long)b);
		if (before && !after &&
		    type != PLX_EXT_DATA && type != PLX_EXT_METADATA)
			fail(h, "block %llu freed in an extent typed %u",
			     (unsigned long long)b, type);
		/* What this gc freed, not one that crashed before it. */
		if (bt(h->mid.alloc, b) && !after)
			freed[type == PLX_EXT_METADATA]++;
	}
}

/* Types follow the bitmaps; nothing else in the catalogue changes. */
static u64 compare_catalogue(struct hist *h)
{
	const struct plx_geometry *g = &h->geo;
	u64 e, emptied = 0;

	for (e = g->system_extents; e < g->nr_extents; e++) {
		const struct plx_extent_entry *a = &h->before.cat[e];
		const struct plx_extent_entry *b = &h->after.cat[e];
		bool empty = !ext_used(h, &h->after, e);
		u8 want = a->type;

		if (empty && (a->type == PLX_EXT_DATA ||
			      a->type == PLX_EXT_METADATA))
			want = PLX_EXT_FREE;
		if (b->type != want)
			fail(h, "extent %llu: type %u after the gc, expected %u (%s)",
			     (unsigned long long)e, b->type, want,
			     empty ? "empty" : "in use");
		/* What this gc emptied, not one that crashed before it. */
		emptied += b->type != h->mid.cat[e].type;
		if (a->holder != b->holder || a->generation != b->generation ||
		    a->flags != b->flags || a->bitmap_holder != b->bitmap_holder)
			fail(h, "extent %llu: holder, generation, flags or bitmap_holder changed",
			     (unsigned long long)e);
	}
	return emptied;
}

static u64 popcount(const u64 *m, u64 words)
{
	u64 i, n = 0;

	for (i = 0; i < words; i++)
		n += (u64)__builtin_popcountll(m[i]);
	return n;
}

/*
 * A gc killed after @writes block writes (PARALLAX_CRASH_AFTER_WRITES,
 * store.c), in a child process, as if the machine had crashed there.
 * The store must stay consistent; the checked gc after it finishes the
 * job.  Returns whether it crashed, -1 on failure.
 */
static int crashed_gc(struct hist *h, u64 writes)
{
	char n[24], *argv[] = { "gc-model", "--gc-store", h->path, NULL };
	int status;
	pid_t pid;

	snprintf(n, sizeof(n), "%llu", (unsigned long long)writes);
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		fail(h, "fork: %s", strerror(errno));
		return -1;
	}
	if (!pid) {
		setenv("PARALLAX_CRASH_AFTER_WRITES", n, 1);
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 99)) {
		fail(h, "gc stopped after %llu writes: did not exit as planned (status 0x%x)",
		     (unsigned long long)writes, status);
		return -1;
	}
	return WEXITSTATUS(status) == 99;
}

/* After a crashed gc: nothing reachable freed, check clean. */
static void check_crash(struct hist *h, u64 writes)
{
	struct plx_check_stats cs;
	struct plx_store *s;
	char who[64];
	u64 b;

	if (read_state(h, &h->mid))
		return;
	for (b = 0; b < h->geo.nr_blocks; b++) {
		if (bt(h->reach, b) && !bt(h->mid.alloc, b)) {
			describe(h->owner[b], who, sizeof(who));
			fail(h, "a gc stopped after %llu writes freed block %llu (%s)",
			     (unsigned long long)writes,
			     (unsigned long long)b, who);
			return;
		}
	}
	s = plx_open(h->path, PLX_OPEN_RDONLY);
	if (!s) {
		fail(h, "open after a gc stopped after %llu writes: %s",
		     (unsigned long long)writes, plx_errmsg());
		return;
	}
	run_check(h, s, false, &cs);
	plx_close(s);
}

static void op_gc(struct hist *h)
{
	struct plx_gc_ops ops = {
		.note = on_note, .progress = on_progress, .progress_arg = h,
		.retype_free = true,
	};
	struct plx_check_stats cs;
	struct plx_gc_stats st;
	struct plx_store *s;
	u64 freed[2], emptied, nreach, alloc_after = 0, e;

	if (!opt.same_handle)
		close_work(h);
	/* Before: what is reachable, and the whole store. */
	s = plx_open(h->path, PLX_OPEN_RDONLY);
	if (!s) {
		fail(h, "open: %s", plx_errmsg());
		return;
	}
	if (compute_reach(h, s) || read_state(h, &h->before) ||
	    hash_store(h)) {
		plx_close(s);
		return;
	}
	plx_close(s);
	nreach = popcount(h->reach, h->words);
	memcpy(h->mid.alloc, h->before.alloc, h->words * 8);
	memcpy(h->mid.cat, h->before.cat,
	       h->geo.nr_extents * sizeof(*h->mid.cat));

	/* Sometimes a gc crashes first. */
	if (!opt.same_handle && !below(h, 4)) {
		u64 writes = below(h, 1 + below(h, 10));
		int r = crashed_gc(h, writes);

		if (r < 0)
			return;
		trace(h, "gc stopped after %llu writes%s",
		      (unsigned long long)writes, r ? "" : ": it had finished");
		h->crashes += r;
		check_crash(h, writes);
		if (h->nfail)
			return;
	}

	/*
	 * --same-handle: collect with the handle the history works with,
	 * as a program that goes on after its gc would.
	 */
	if (opt.same_handle) {
		if (open_work(h))
			return;
		s = h->s;
	} else {
		s = plx_open(h->path, PLX_OPEN_RDWR);
		if (!s) {
			fail(h, "open: %s", plx_errmsg());
			return;
		}
	}
	h->notes = 0;
	if (plx_gc(s, &ops, h, &st))
		fail(h, "gc failed: %s", plx_errmsg());
	if (!opt.same_handle)
		plx_close(s);
	if (h->nfail)
		return;

	/* After: the same reads, compared. */
	if (read_state(h, &h->after))
		return;
	compare_blocks(h, freed);
	emptied = compare_catalogue(h);
	if (st.freed[0] != freed[0] || st.freed[1] != freed[1])
		fail(h, "gc says it freed %llu data and %llu metadata blocks, the bitmaps say %llu and %llu",
		     (unsigned long long)st.freed[0],
		     (unsigned long long)st.freed[1],
		     (unsigned long long)freed[0],
		     (unsigned long long)freed[1]);
	if (st.reachable != nreach)
		fail(h, "gc marked %llu blocks, %llu are reachable",
		     (unsigned long long)st.reachable,
		     (unsigned long long)nreach);
	if (st.vdis != live_vdis(h) || st.snapshots != live_snaps(h))
		fail(h, "gc marked %llu VDIs and %llu snapshots, the model has %llu and %llu",
		     (unsigned long long)st.vdis,
		     (unsigned long long)st.snapshots,
		     (unsigned long long)live_vdis(h),
		     (unsigned long long)live_snaps(h));
	if (st.freed_by_holders || st.extents_skipped || st.bad_links)
		fail(h, "gc stats: %llu freed by holders, %llu extents skipped, %llu bad links; expected none",
		     (unsigned long long)st.freed_by_holders,
		     (unsigned long long)st.extents_skipped,
		     (unsigned long long)st.bad_links);
	if (st.extents_emptied != emptied)
		fail(h, "gc says it emptied %llu extents, the catalogue says %llu",
		     (unsigned long long)st.extents_emptied,
		     (unsigned long long)emptied);
	h->gcs_freed += freed[0] + freed[1];
	h->gcs_emptied += emptied;
	trace(h, "gc: %llu reachable, freed %llu data + %llu metadata, %llu extents emptied",
	      (unsigned long long)nreach, (unsigned long long)freed[0],
	      (unsigned long long)freed[1], (unsigned long long)emptied);

	s = plx_open(h->path, PLX_OPEN_RDONLY);
	if (!s) {
		fail(h, "open: %s", plx_errmsg());
		return;
	}
	if (!run_check(h, s, true, &cs)) {
		for (e = h->geo.system_extents; e < h->geo.nr_extents; e++)
			alloc_after += ext_used(h, &h->after, e);
		if (cs.allocated != alloc_after)
			fail(h, "check counts %llu allocated blocks, the bitmaps hold %llu",
			     (unsigned long long)cs.allocated,
			     (unsigned long long)alloc_after);
	}
	if (!compute_reach(h, s))
		verify_contents(h, s);
	plx_close(s);
}

/* ---- Full cleanup ------------------------------------------------------- */

static int same_geometry_fresh(struct hist *h, const char *fresh,
			       struct state *st)
{
	struct plx_geometry keep = h->geo;
	struct plx_superblock sb;
	off_t size = lseek(h->rawfd, 0, SEEK_END);
	int fd, ret = -1;

	fd = open(fresh, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || size < 0 || ftruncate(fd, size)) {
		fail(h, "%s: %s", fresh, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	if (plx_format(fresh, &h->fopts, &sb)) {
		fail(h, "format %s: %s", fresh, plx_errmsg());
		return -1;
	}
	/* Read it with the same code, as if it were the store. */
	fd = h->rawfd;
	h->rawfd = open(fresh, O_RDONLY | O_CLOEXEC);
	plx_geometry_init(&h->geo, &sb, NULL);
	if (h->rawfd < 0 || h->geo.nr_blocks != keep.nr_blocks ||
	    h->geo.nr_extents != keep.nr_extents ||
	    h->geo.bitmap_blocks != keep.bitmap_blocks)
		fail(h, "the fresh store cannot be read or has another geometry");
	else
		ret = read_state(h, st);
	if (h->rawfd >= 0)
		close(h->rawfd);
	h->rawfd = fd;
	h->geo = keep;
	return ret;
}

/*
 * Delete every VDI, collect, and compare bitmaps and catalogue with a
 * freshly formatted store of the same geometry.
 */
static void cleanup(struct hist *h, const char *fresh)
{
	const struct plx_geometry *g = &h->geo;
	struct state f;
	u64 i, e, b, diffs = 0;

	h->opname = "cleanup";
	if (open_work(h))
		return;
	for (i = 0; i < h->nr_vdis && !h->nfail; i++)
		if (h->vdis[i].live)
			op_delete(h, &h->vdis[i]);
	if (h->nfail)
		return;
	h->opname = "cleanup gc";
	op_gc(h);
	if (h->nfail)
		return;
	f.alloc = xcalloc(h->words, 8);
	f.cat = xcalloc(g->nr_extents, sizeof(*f.cat));
	if (same_geometry_fresh(h, fresh, &f))
		goto out;
	h->opname = "cleanup compare";
	for (e = g->system_extents; e < g->nr_extents; e++) {
		const struct plx_extent_entry *a = &h->after.cat[e];
		const struct plx_extent_entry *w = &f.cat[e];

		if (a->type != w->type || a->used != w->used ||
		    a->holder != w->holder || a->flags != w->flags ||
		    a->bitmap_holder != w->bitmap_holder)
			fail(h, "extent %llu: catalogue type %u used %u holder %u, freshly formatted: type %u used %u holder %u",
			     (unsigned long long)e, a->type,
			     le32_to_cpu(a->used), le32_to_cpu(a->holder),
			     w->type, le32_to_cpu(w->used),
			     le32_to_cpu(w->holder));
		for (b = e << g->extent_shift;
		     b < (e + 1) << g->extent_shift; b++) {
			if (bt(h->after.alloc, b) != bt(f.alloc, b) &&
			    diffs++ < 5)
				fail(h, "block %llu: bitmap bit %d, freshly formatted %d",
				     (unsigned long long)b,
				     bt(h->after.alloc, b), bt(f.alloc, b));
		}
	}
	if (diffs > 5)
		fail(h, "%llu bitmap bits differ from a fresh format",
		     (unsigned long long)diffs);
out:
	free(f.alloc);
	free(f.cat);
}

/* ---- Running a history -------------------------------------------------- */

static enum op choose(struct hist *h)
{
	unsigned int w[NR_OPS], total = 0, i, k;
	u64 nv = live_vdis(h), ns = live_snaps(h);
	bool room = store_has_room(h);

	for (i = 0; i < NR_OPS; i++)
		w[i] = op_weights[i];
	if (!nv)
		w[OP_WRITE] = w[OP_SNAPSHOT] = w[OP_BURST] = w[OP_DELETE] =
			w[OP_PURGE] = 0;
	if (!ns)
		w[OP_CLONE] = w[OP_SNAP_DELETE] = 0;
	/* Deleted VDIs keep their registry slots. */
	if (nv >= MAX_LIVE_VDIS || h->nr_vdis + 1 >= h->geo.registry_slots)
		w[OP_CREATE] = w[OP_CLONE] = 0;
	if (ns >= MAX_LIVE_SNAPS)
		w[OP_SNAPSHOT] = w[OP_BURST] = 0;
	if (ns + 80 > MAX_LIVE_SNAPS)
		w[OP_BURST] = 0;
	if (!room) {
		/* Only what frees space; deletes first. */
		w[OP_CREATE] = w[OP_WRITE] = w[OP_SNAPSHOT] = 0;
		w[OP_BURST] = w[OP_CLONE] = 0;
		w[OP_DELETE] *= 4;
		w[OP_SNAP_DELETE] *= 4;
	}
	for (i = 0; i < NR_OPS; i++)
		total += w[i];
	k = (unsigned int)below(h, total);
	for (i = 0; i < NR_OPS; i++) {
		if (k < w[i])
			return (enum op)i;
		k -= w[i];
	}
	return OP_GC;
}

/*
 * After an op other than gc: it freed nothing, and every block it
 * allocated is reachable now (a block allocated and left unlinked would
 * be a leak, which the next gc would hide by freeing it).  h->before
 * holds the state before the op, and then the state after it, for the
 * next step of an op made of several.
 */
static void check_op_allocs(struct hist *h)
{
	const struct plx_geometry *g = &h->geo;
	struct plx_store *s;
	u64 b, e, bad = 0;

	s = plx_open(h->path, PLX_OPEN_RDONLY);
	if (!s) {
		fail(h, "open: %s", plx_errmsg());
		return;
	}
	if (compute_reach(h, s) || read_state(h, &h->after)) {
		plx_close(s);
		return;
	}
	plx_close(s);
	for (b = g->system_extents << g->extent_shift; b < g->nr_blocks; b++) {
		bool pre = bt(h->before.alloc, b), post = bt(h->after.alloc, b);

		if (pre && !post && bad++ < 5)
			fail(h, "block %llu was freed by an op other than gc",
			     (unsigned long long)b);
		if (post && !pre && !bt(h->reach, b) && bad++ < 5)
			fail(h, "block %llu was allocated by the op but is not reachable after it",
			     (unsigned long long)b);
	}
	for (e = g->system_extents; e < g->nr_extents; e++)
		if (h->before.cat[e].type != PLX_EXT_FREE &&
		    h->after.cat[e].type != h->before.cat[e].type)
			fail(h, "extent %llu changed type from %u to %u",
			     (unsigned long long)e, h->before.cat[e].type,
			     h->after.cat[e].type);
	if (bad > 5)
		fail(h, "%llu blocks in all were allocated or freed wrongly",
		     (unsigned long long)bad);
	memcpy(h->before.alloc, h->after.alloc, h->words * 8);
	memcpy(h->before.cat, h->after.cat,
	       g->nr_extents * sizeof(*h->before.cat));
}

static void run_op(struct hist *h, enum op op)
{
	h->opname = op_names[op];
	h->counts[op]++;
	if (op != OP_GC && op != OP_VERIFY && open_work(h))
		return;
	switch (op) {
	case OP_CREATE:
		op_create(h);
		break;
	case OP_WRITE:
		op_write(h);
		break;
	case OP_SNAPSHOT:
		op_snapshot(h);
		break;
	case OP_BURST:
		op_burst(h);
		break;
	case OP_CLONE:
		op_clone(h);
		break;
	case OP_DELETE:
		op_delete(h, pick_vdi(h));
		break;
	case OP_SNAP_DELETE:
		op_snap_delete(h);
		break;
	case OP_PURGE:
		op_purge(h);
		break;
	case OP_GC:
		trace(h, "gc");
		op_gc(h);
		break;
	case OP_VERIFY:
		op_verify(h);
		break;
	case OP_REOPEN:
		trace(h, "reopen");
		close_work(h);
		open_work(h);
		break;
	default:
		break;
	}
	if (op != OP_GC && op != OP_VERIFY && !h->nfail)
		check_op_allocs(h);
}

static void hist_free(struct hist *h)
{
	u64 i;

	for (i = 0; i < h->nr_vdis; i++)
		cmap_free(&h->vdis[i].m);
	for (i = 0; i < h->nr_snaps; i++)
		cmap_free(&h->snaps[i].m);
	free(h->vdis);
	free(h->snaps);
	free(h->reach);
	free(h->owner);
	free(h->hashed);
	free(h->hash);
	free(h->before.alloc);
	free(h->before.cat);
	free(h->after.alloc);
	free(h->after.cat);
	free(h->mid.alloc);
	free(h->mid.cat);
	free(ctab);
	ctab = NULL;
	nr_ctab = cap_ctab = 0;
}

static int n_tests;

static void tap(bool ok, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void tap(bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %d - ", ok ? "" : "not ", ++n_tests);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

/* One history; returns true if it held. */
static bool history(u64 seed)
{
	struct hist *h = xcalloc(1, sizeof(*h));
	char fresh[PATH_MAX + 8], desc[256];
	int geo = opt.geometry >= 0 ? opt.geometry :
		  (int)(mix64(seed) % NR_GEOMETRIES);
	struct plx_store *s;
	u64 bytes = geometries[geo].mib << 20, i;
	size_t len = 0;
	bool ok;
	int fd;

	h->seed = seed;
	h->rng = seed;
	h->opname = "format";
	snprintf(h->path, sizeof(h->path), "%s/gc-model-%llu-XXXXXX",
		 opt.dir, (unsigned long long)seed);
	fd = mkstemp(h->path);
	if (fd < 0 || ftruncate(fd, (off_t)bytes)) {
		perror(h->path);
		exit(2);
	}
	close(fd);
	snprintf(fresh, sizeof(fresh), "%s.fresh", h->path);
	h->fopts.extent_blocks = geometries[geo].extent_blocks;
	h->fopts.force = true;
	h->rawfd = open(h->path, O_RDWR | O_CLOEXEC);
	if (h->rawfd < 0 || plx_format(h->path, &h->fopts, NULL)) {
		fail(h, "format: %s", plx_errmsg());
		goto report;
	}
	s = plx_open(h->path, PLX_OPEN_RDONLY);
	if (!s) {
		fail(h, "open: %s", plx_errmsg());
		goto report;
	}
	h->geo = s->geo;
	h->geo.ext_type = NULL;
	plx_close(s);
	h->words = h->geo.nr_blocks / 64 + 1;
	h->reach = xcalloc(h->words, 8);
	h->hashed = xcalloc(h->words, 8);
	h->owner = xcalloc(h->geo.nr_blocks, 8);
	h->hash = xcalloc(h->geo.nr_blocks, 8);
	h->before.alloc = xcalloc(h->words, 8);
	h->after.alloc = xcalloc(h->words, 8);
	h->before.cat = xcalloc(h->geo.nr_extents, sizeof(*h->before.cat));
	h->after.cat = xcalloc(h->geo.nr_extents, sizeof(*h->after.cat));
	h->mid.alloc = xcalloc(h->words, 8);
	h->mid.cat = xcalloc(h->geo.nr_extents, sizeof(*h->mid.cat));

	for (h->op = 1; h->op <= opt.ops && !h->nfail; h->op++)
		run_op(h, choose(h));
	if (!h->nfail) {
		/* Every history ends with a checked gc. */
		h->opname = "final gc";
		op_gc(h);
	}
report:
	for (i = 0; i < NR_OPS; i++)
		len += (size_t)snprintf(desc + len, sizeof(desc) - len,
					"%s%s %llu", i ? ", " : "",
					op_names[i],
					(unsigned long long)h->counts[i]);
	ok = !h->nfail;
	tap(ok, "seed %llu: %llu ops on %llu MiB, %llu-block extents (%s): %s",
	    (unsigned long long)seed, (unsigned long long)opt.ops,
	    (unsigned long long)geometries[geo].mib,
	    (unsigned long long)geometries[geo].extent_blocks, desc,
	    ok ? "every gc kept what is reachable and freed the rest" :
		 h->why);
	if (ok)
		printf("# seed %llu: the gcs freed %llu blocks and emptied %llu extents; %llu gcs crashed before one\n",
		       (unsigned long long)seed,
		       (unsigned long long)h->gcs_freed,
		       (unsigned long long)h->gcs_emptied,
		       (unsigned long long)h->crashes);
	if (ok) {
		h->op = opt.ops + 1;
		cleanup(h, fresh);
		tap(!h->nfail, "seed %llu: deleting everything and a gc give back a freshly formatted store%s%s",
		    (unsigned long long)seed, h->nfail ? ": " : "",
		    h->nfail ? h->why : "");
	}
	if (h->nfail && opt.geometry >= 0)
		printf("# replay: gc-model --seed %llu --ops %llu --geometry %d -v\n",
		       (unsigned long long)seed, (unsigned long long)opt.ops,
		       geo);
	else if (h->nfail)
		printf("# replay: gc-model --seed %llu --ops %llu -v\n",
		       (unsigned long long)seed, (unsigned long long)opt.ops);
	ok = !h->nfail;
	close_work(h);
	if (h->rawfd >= 0)
		close(h->rawfd);
	if (ok || !opt.keep) {
		unlink(h->path);
		unlink(fresh);
	} else {
		printf("# store kept: %s\n", h->path);
	}
	hist_free(h);
	free(h);
	return ok;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: gc-model [--seed N] [--histories K] [--ops M] [--geometry G]\n"
		"                [--inject flip|unalloc|leak] [--same-handle] [--keep]\n"
		"                [-v] [--dir DIR]\n"
		"\n"
		"Runs K random histories of M operations (seeds N, N+1, ...) against\n"
		"a model and checks every gc; see the comment at the top of\n"
		"tests/userspace/gc-model.c.  A failure prints the seed and the op\n"
		"index; '--seed N --ops M -v' replays it with every op listed.\n"
		"--geometry G fixes the store geometry (0-%zu; default: by seed).\n"
		"--inject slips a fault into the first gc that can take it, to\n"
		"show that the checks catch it.  --same-handle runs each gc on the\n"
		"handle the history goes on with, instead of a fresh one.\n"
		"--keep keeps a failed store.\n"
		"Stores are made in DIR (default $TMPDIR or /tmp).  Exit status:\n"
		"0 all held, 1 a check failed, 2 usage or setup error.\n",
		NR_GEOMETRIES - 1);
}

static int gc_store(const char *path)
{
	struct plx_gc_ops ops = { .retype_free = true };
	struct plx_store *s = plx_open(path, PLX_OPEN_RDWR);
	struct plx_gc_stats st;

	if (!s || plx_gc(s, &ops, NULL, &st)) {
		fprintf(stderr, "gc-model: %s\n", plx_errmsg());
		return 1;
	}
	plx_close(s);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "seed", required_argument, NULL, 's' },
		{ "histories", required_argument, NULL, 'n' },
		{ "ops", required_argument, NULL, 'o' },
		{ "geometry", required_argument, NULL, 'g' },
		{ "inject", required_argument, NULL, 'i' },
		{ "dir", required_argument, NULL, 'd' },
		{ "keep", no_argument, NULL, 'k' },
		{ "same-handle", no_argument, NULL, 'S' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	u64 i, failed = 0, v;
	int c;

	/* Internal: one gc of a store, for crashed_gc(). */
	if (argc == 3 && !strcmp(argv[1], "--gc-store"))
		return gc_store(argv[2]);
	opt.seed = (u64)time(NULL);
	opt.dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") :
							  "/tmp";
	while ((c = getopt_long(argc, argv, "s:n:o:g:i:d:kSvh", lopts,
				NULL)) != -1) {
		switch (c) {
		case 's':
			if (plx_parse_u64(optarg, &opt.seed))
				goto bad;
			break;
		case 'n':
			if (plx_parse_u64(optarg, &opt.histories))
				goto bad;
			break;
		case 'o':
			if (plx_parse_u64(optarg, &opt.ops))
				goto bad;
			break;
		case 'g':
			if (plx_parse_u64(optarg, &v) || v >= NR_GEOMETRIES)
				goto bad;
			opt.geometry = (int)v;
			break;
		case 'i':
			for (v = 1; v < sizeof(inject_names) /
					sizeof(inject_names[0]); v++)
				if (!strcmp(optarg, inject_names[v]))
					opt.inject = (enum inject)v;
			if (opt.inject == INJ_NONE)
				goto bad;
			break;
		case 'd':
			opt.dir = optarg;
			break;
		case 'k':
			opt.keep = true;
			break;
		case 'S':
			opt.same_handle = true;
			break;
		case 'v':
			opt.verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			goto bad;
		}
	}
	if (optind != argc)
		goto bad;
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("# gc-model: seeds %llu..%llu, %llu ops each\n",
	       (unsigned long long)opt.seed,
	       (unsigned long long)(opt.seed + opt.histories - 1),
	       (unsigned long long)opt.ops);
	for (i = 0; i < opt.histories; i++)
		failed += !history(opt.seed + i);
	printf("1..%d\n", n_tests);
	return failed ? 1 : 0;
bad:
	usage(stderr);
	return 2;
}
