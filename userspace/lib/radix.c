// SPDX-License-Identifier: GPL-2.0
/*
 * Radix trees: lookups, ordered walks, and the copy-on-write writer.
 *
 * Every pointer is checked with plx_check_addr() before it is followed, so
 * a corrupted tree produces an error naming the node and entry rather than
 * a wild read or write.  Walks go down one level per step and so always
 * end, whatever the pointers say.
 */
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

enum plx_extent_type plx_child_type(unsigned int level)
{
	return level ? PLX_EXT_METADATA : PLX_EXT_DATA;
}

static int plx_bad_ptr(u64 node, unsigned int level, unsigned int idx,
		       u64 ptr, enum plx_err err)
{
	plx_seterr(PLX_EK_STORE,
		   "block %llu: radix node (level %u) entry %u -> %llu: %s",
		   (unsigned long long)node, level, idx,
		   (unsigned long long)plx_ptr_addr(ptr), plx_strerror(err));
	return -1;
}

int plx_lookup(struct plx_store *s, u64 root, u8 height, u64 vblock,
	       u64 *pblock)
{
	struct plx_radix_node n;
	u64 cur = root;
	int level;

	for (level = height - 1; level >= 0; level--) {
		unsigned int idx = plx_radix_index(vblock, (unsigned int)level);
		enum plx_err err;
		u64 p;

		if (plx_read_block(s, cur, &n))
			return -1;
		p = le64_to_cpu(n.ptr[idx]);
		if (!p) {
			*pblock = 0;
			return 0;
		}
		err = plx_check_addr(&s->geo, plx_ptr_addr(p),
				     plx_child_type((unsigned int)level));
		if (err)
			return plx_bad_ptr(cur, (unsigned int)level, idx, p, err);
		cur = plx_ptr_addr(p);
	}
	*pblock = cur;
	return 0;
}

/*
 * Entries whose subtree starts at or beyond @nblocks are not followed:
 * they are not part of the VDI, and a damaged tree whose nodes fan out to
 * shared nodes could otherwise make a small VDI's walk take 512^3 steps.
 */
static int plx_walk_level(struct plx_store *s, struct plx_radix_node *bufs,
			  u64 node, unsigned int level, u64 base, u64 nblocks,
			  plx_map_fn fn, void *arg)
{
	struct plx_radix_node *n = &bufs[level];
	unsigned int i;

	if (plx_read_block(s, node, n))
		return -1;
	for (i = 0; i < PLX_PTRS_PER_NODE; i++) {
		u64 p = le64_to_cpu(n->ptr[i]);
		u64 vb = base | ((u64)i << (PLX_NODE_SHIFT * level));
		enum plx_err err;
		int ret;

		if (!p || vb >= nblocks)
			continue;
		err = plx_check_addr(&s->geo, plx_ptr_addr(p),
				     plx_child_type(level));
		if (err)
			return plx_bad_ptr(node, level, i, p, err);
		if (level)
			ret = plx_walk_level(s, bufs, plx_ptr_addr(p),
					     level - 1, vb, nblocks, fn, arg);
		else
			ret = fn(arg, vb, plx_ptr_addr(p));
		if (ret)
			return ret;
		/* The recursion reused lower buffers only; n is intact. */
	}
	return 0;
}

int plx_map_walk(struct plx_store *s, u64 root, u8 height,
		 plx_map_fn fn, void *arg)
{
	if (height < 1 || height > PLX_MAX_HEIGHT) {
		plx_seterr(PLX_EK_STORE, "radix tree height %u out of range",
			   height);
		return -1;
	}
	return plx_map_walk_size(s, root, height,
				 plx_max_size_for_height(height) >>
				 PLX_BLOCK_SHIFT, fn, arg);
}

int plx_map_walk_size(struct plx_store *s, u64 root, u8 height, u64 nblocks,
		      plx_map_fn fn, void *arg)
{
	struct plx_radix_node *bufs;
	int ret;

	if (height < 1 || height > PLX_MAX_HEIGHT) {
		plx_seterr(PLX_EK_STORE, "radix tree height %u out of range",
			   height);
		return -1;
	}
	bufs = malloc(sizeof(*bufs) * height);
	if (!bufs) {
		plx_seterr(PLX_EK_STORE, "out of memory");
		return -1;
	}
	ret = plx_walk_level(s, bufs, root, height - 1, 0, nblocks, fn, arg);
	free(bufs);
	return ret;
}

/* ---- Copy-on-write writer ---------------------------------------------- */

enum plx_cstate { PLX_C_CLEAN, PLX_C_NEW, PLX_C_DIRTY };

struct plx_cnode {
	u64 blocknr;
	enum plx_cstate state;
	struct plx_radix_node n;
};

struct plx_writer {
	struct plx_store *s;
	u64 id;
	u64 root;
	u8 height;
	u64 nblocks;
	struct plx_cnode **tab;		/* open addressing on blocknr */
	u64 cap;
	u64 used;
	u64 pending;			/* NEW + DIRTY nodes */
};

/* Flush once this many nodes are pending; drop the cache past the max. */
#define PLX_WRITER_PENDING_MAX	4096
#define PLX_WRITER_CACHE_MAX	16384

static u64 plx_hash(u64 b, u64 cap)
{
	return (b * 0x9e3779b97f4a7c15ULL >> 17) & (cap - 1);
}

static struct plx_cnode *plx_cache_find(struct plx_writer *w, u64 b)
{
	u64 h = plx_hash(b, w->cap);

	while (w->tab[h]) {
		if (w->tab[h]->blocknr == b)
			return w->tab[h];
		h = (h + 1) & (w->cap - 1);
	}
	return NULL;
}

static int plx_cache_insert(struct plx_writer *w, struct plx_cnode *c)
{
	u64 h;

	if ((w->used + 1) * 2 > w->cap) {
		struct plx_cnode **old = w->tab;
		u64 oldcap = w->cap, i;

		w->tab = calloc(oldcap * 2, sizeof(*w->tab));
		if (!w->tab) {
			w->tab = old;
			plx_seterr(PLX_EK_STORE, "out of memory");
			return -1;
		}
		w->cap = oldcap * 2;
		for (i = 0; i < oldcap; i++) {
			if (!old[i])
				continue;
			h = plx_hash(old[i]->blocknr, w->cap);
			while (w->tab[h])
				h = (h + 1) & (w->cap - 1);
			w->tab[h] = old[i];
		}
		free(old);
	}
	h = plx_hash(c->blocknr, w->cap);
	while (w->tab[h])
		h = (h + 1) & (w->cap - 1);
	w->tab[h] = c;
	w->used++;
	return 0;
}

static void plx_cache_clear(struct plx_writer *w)
{
	u64 i;

	for (i = 0; i < w->cap; i++) {
		free(w->tab[i]);
		w->tab[i] = NULL;
	}
	w->used = 0;
}

static struct plx_cnode *plx_cache_new(struct plx_writer *w, u64 b,
				       enum plx_cstate state)
{
	struct plx_cnode *c = malloc(sizeof(*c));

	if (!c) {
		plx_seterr(PLX_EK_STORE, "out of memory");
		return NULL;
	}
	c->blocknr = b;
	c->state = state;
	if (plx_cache_insert(w, c)) {
		free(c);
		return NULL;
	}
	if (state != PLX_C_CLEAN)
		w->pending++;
	return c;
}

static struct plx_cnode *plx_cache_get(struct plx_writer *w, u64 b)
{
	struct plx_cnode *c = plx_cache_find(w, b);
	struct plx_radix_node n;

	if (c)
		return c;
	if (plx_read_block(w->s, b, &n))
		return NULL;
	c = plx_cache_new(w, b, PLX_C_CLEAN);
	if (c)
		c->n = n;
	return c;
}

static void plx_cache_dirty(struct plx_writer *w, struct plx_cnode *c)
{
	if (c->state == PLX_C_CLEAN) {
		c->state = PLX_C_DIRTY;
		w->pending++;
	}
}

static int plx_count_block(void *arg, u64 vblock, u64 pblock)
{
	(void)vblock;
	(void)pblock;
	(*(u64 *)arg)++;
	return 0;
}

struct plx_writer *plx_writer_open(struct plx_store *s, u64 vdi_id)
{
	struct plx_vdi_record *v = plx_vdi_get_modifiable(s, vdi_id);
	struct plx_writer *w;
	u64 mapped = 0;

	if (!v)
		return NULL;
	/*
	 * Validate every pointer of the tree before the first write, so a
	 * damaged tree is refused instead of half-written.
	 */
	if (plx_map_walk_size(s, le64_to_cpu(v->root), v->height,
			      le64_to_cpu(v->size) >> PLX_BLOCK_SHIFT,
			      plx_count_block, &mapped))
		return NULL;
	w = calloc(1, sizeof(*w));
	if (!w) {
		plx_seterr(PLX_EK_STORE, "out of memory");
		return NULL;
	}
	w->s = s;
	w->id = vdi_id;
	w->root = le64_to_cpu(v->root);
	w->height = v->height;
	w->nblocks = le64_to_cpu(v->size) >> PLX_BLOCK_SHIFT;
	w->cap = 1024;
	w->tab = calloc(w->cap, sizeof(*w->tab));
	if (!w->tab) {
		free(w);
		plx_seterr(PLX_EK_STORE, "out of memory");
		return NULL;
	}
	return w;
}

/*
 * Make the link at c->n.ptr[idx] (a node at @level > 0) point at a
 * writable node, copying at a read-only link and allocating at a sparse
 * one, and return that node.
 */
static struct plx_cnode *plx_writable_child(struct plx_writer *w,
					    struct plx_cnode *c,
					    unsigned int level,
					    unsigned int idx)
{
	u64 p = le64_to_cpu(c->n.ptr[idx]);
	struct plx_cnode *child, *src;
	enum plx_err err;
	u64 nb;

	if (p) {
		err = plx_check_addr(&w->s->geo, plx_ptr_addr(p),
				     PLX_EXT_METADATA);
		if (err) {
			plx_bad_ptr(c->blocknr, level, idx, p, err);
			return NULL;
		}
		if (!plx_ptr_is_ro(p))
			return plx_cache_get(w, p);
	}
	if (plx_alloc(w->s, PLX_EXT_METADATA, &nb))
		return NULL;
	if (p) {
		/* The shared node: read it, never write it. */
		src = plx_cache_get(w, plx_ptr_addr(p));
		if (!src)
			return NULL;
		child = plx_cache_new(w, nb, PLX_C_NEW);
		if (!child)
			return NULL;
		plx_node_copy_ro(&child->n, &src->n);
	} else {
		child = plx_cache_new(w, nb, PLX_C_NEW);
		if (!child)
			return NULL;
		memset(&child->n, 0, sizeof(child->n));
	}
	c->n.ptr[idx] = cpu_to_le64(nb);
	plx_cache_dirty(w, c);
	return child;
}

/* Walk to the level-0 node covering @vblock, making the path writable. */
static struct plx_cnode *plx_writable_leaf(struct plx_writer *w, u64 vblock)
{
	struct plx_cnode *c = plx_cache_get(w, w->root);
	unsigned int level;

	for (level = w->height - 1; c && level > 0; level--)
		c = plx_writable_child(w, c, level,
				       plx_radix_index(vblock, level));
	return c;
}

int plx_writer_write(struct plx_writer *w, u64 vblock, const void *buf,
		     unsigned int off, unsigned int len)
{
	struct plx_store *s = w->s;
	u8 data[PLX_BLOCK_SIZE];
	struct plx_cnode *leaf;
	unsigned int idx;
	enum plx_err err;
	u64 p, nb;

	if (vblock >= w->nblocks || off + len > PLX_BLOCK_SIZE || !len) {
		plx_seterr(PLX_EK_USAGE, "write beyond the end of VDI %llu",
			   (unsigned long long)w->id);
		return -1;
	}
	leaf = plx_writable_leaf(w, vblock);
	if (!leaf)
		return -1;
	idx = plx_radix_index(vblock, 0);
	p = le64_to_cpu(leaf->n.ptr[idx]);
	if (p) {
		err = plx_check_addr(&s->geo, plx_ptr_addr(p), PLX_EXT_DATA);
		if (err)
			return plx_bad_ptr(leaf->blocknr, 0, idx, p, err);
	}
	if (len == PLX_BLOCK_SIZE) {
		memcpy(data, buf, PLX_BLOCK_SIZE);
	} else if (p) {
		if (plx_read_block(s, plx_ptr_addr(p), data))
			return -1;
		memcpy(data + off, buf, len);
	} else {
		memset(data, 0, sizeof(data));
		memcpy(data + off, buf, len);
	}
	if (p && !plx_ptr_is_ro(p))
		return plx_write_block(s, p, data);
	/* Sparse or shared with a snapshot: a fresh block, then link it. */
	if (plx_alloc(s, PLX_EXT_DATA, &nb) || plx_write_block(s, nb, data))
		return -1;
	leaf->n.ptr[idx] = cpu_to_le64(nb);
	plx_cache_dirty(w, leaf);
	if (w->pending >= PLX_WRITER_PENDING_MAX)
		return plx_writer_flush(w);
	return 0;
}

int plx_writer_is_sparse(struct plx_writer *w, u64 vblock, bool *sparse)
{
	struct plx_cnode *c = plx_cache_get(w, w->root);
	int level;

	for (level = w->height - 1; c; level--) {
		unsigned int idx = plx_radix_index(vblock, (unsigned int)level);
		u64 p = le64_to_cpu(c->n.ptr[idx]);
		enum plx_err err;

		if (!p) {
			*sparse = true;
			return 0;
		}
		err = plx_check_addr(&w->s->geo, plx_ptr_addr(p),
				     plx_child_type((unsigned int)level));
		if (err)
			return plx_bad_ptr(c->blocknr, (unsigned int)level,
					   idx, p, err);
		if (!level) {
			*sparse = false;
			return 0;
		}
		c = plx_cache_get(w, plx_ptr_addr(p));
	}
	return -1;
}

/*
 * Soft-update order: new nodes (unreachable until linked) and the bitmaps
 * and catalogue that allocate them reach the disk first; only then are the
 * nodes modified in place, which link the new ones, written.
 */
int plx_writer_flush(struct plx_writer *w)
{
	u64 i;

	for (i = 0; i < w->cap; i++) {
		struct plx_cnode *c = w->tab[i];

		if (c && c->state == PLX_C_NEW &&
		    plx_write_block(w->s, c->blocknr, &c->n))
			return -1;
	}
	if (plx_sync(w->s))
		return -1;
	for (i = 0; i < w->cap; i++) {
		struct plx_cnode *c = w->tab[i];

		if (c && c->state == PLX_C_DIRTY &&
		    plx_write_block(w->s, c->blocknr, &c->n))
			return -1;
	}
	if (plx_fsync(w->s))
		return -1;
	for (i = 0; i < w->cap; i++)
		if (w->tab[i])
			w->tab[i]->state = PLX_C_CLEAN;
	w->pending = 0;
	if (w->used > PLX_WRITER_CACHE_MAX)
		plx_cache_clear(w);
	return 0;
}

void plx_writer_abort(struct plx_writer *w)
{
	if (!w)
		return;
	plx_cache_clear(w);
	free(w->tab);
	free(w);
}

int plx_writer_close(struct plx_writer *w)
{
	int ret = plx_writer_flush(w);

	plx_writer_abort(w);
	return ret;
}
