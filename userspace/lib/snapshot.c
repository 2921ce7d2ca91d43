// SPDX-License-Identifier: GPL-2.0
/*
 * Snapshot logs, snapshots and clones (thesis 3.3).  A snapshot copies the
 * live root with every link made read-only, appends the old root to the
 * log in a freshly written block, and commits by rewriting the VDI record
 * last.  Snapshot roots are immutable from then on.
 */
#include <stdlib.h>

#include "internal.h"

void plx_snaplist_free(struct plx_snaplist *l)
{
	free(l->snaps);
	free(l->blocks);
	memset(l, 0, sizeof(*l));
}

static int plx_grow(void **arr, u64 *cap, u64 need, size_t size)
{
	void *p;
	u64 ncap = *cap ? *cap * 2 : 16;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	p = realloc(*arr, ncap * size);
	if (!p) {
		plx_seterr(PLX_EK_STORE, "out of memory");
		return -1;
	}
	*arr = p;
	*cap = ncap;
	return 0;
}

/*
 * Walk the chain newest to oldest.  Each block must end exactly one seq
 * below the first record of the block after it, which bounds the walk and
 * turns any cycle into an error.
 */
int plx_snaplog_load(struct plx_store *s, u64 id, struct plx_snaplist *l)
{
	struct plx_vdi_record *v = plx_vdi_get(s, id);
	struct plx_snaplog_block blk;
	u64 b, want_last, scap = 0, bcap = 0, i;
	enum plx_err err;

	memset(l, 0, sizeof(*l));
	if (!v)
		return -1;
	b = le64_to_cpu(v->snaplog_head);
	want_last = le64_to_cpu(v->snap_seq);
	while (b && want_last) {
		u32 count;
		u64 first, last;

		if (plx_read_block(s, b, &blk))
			goto fail;
		err = plx_snaplog_check(&s->geo, &blk, b, id);
		if (err) {
			plx_seterr(PLX_EK_STORE,
				   "block %llu: snapshot log of VDI %llu: %s",
				   (unsigned long long)b,
				   (unsigned long long)id, plx_strerror(err));
			goto fail;
		}
		count = le32_to_cpu(blk.count);
		first = le64_to_cpu(blk.rec[0].seq);
		last = le64_to_cpu(blk.rec[count - 1].seq);
		if (last != want_last) {
			plx_seterr(PLX_EK_STORE,
				   "block %llu: snapshot log of VDI %llu ends at seq %llu, expected %llu",
				   (unsigned long long)b,
				   (unsigned long long)id,
				   (unsigned long long)last,
				   (unsigned long long)want_last);
			goto fail;
		}
		if (plx_grow((void **)&l->blocks, &bcap, l->nr_blocks + 1,
			     sizeof(u64)) ||
		    plx_grow((void **)&l->snaps, &scap, l->count + count,
			     sizeof(struct plx_snap)))
			goto fail;
		l->blocks[l->nr_blocks++] = b;
		/* Collected newest first; reversed below. */
		for (i = count; i-- > 0;) {
			struct plx_snap *sn = &l->snaps[l->count++];

			sn->vdi = id;
			sn->log_block = b;
			sn->index = (unsigned int)i;
			sn->rec = blk.rec[i];
		}
		want_last = first - 1;
		b = le64_to_cpu(blk.prev);
		if (!want_last && b) {
			plx_seterr(PLX_EK_STORE,
				   "block %llu: oldest snapshot log block of VDI %llu has a prev link",
				   (unsigned long long)l->blocks[l->nr_blocks - 1],
				   (unsigned long long)id);
			goto fail;
		}
	}
	if (want_last) {
		plx_seterr(PLX_EK_STORE,
			   "block %llu: snapshot log of VDI %llu ends early: seqs 1..%llu missing",
			   (unsigned long long)(l->nr_blocks ?
				l->blocks[l->nr_blocks - 1] : 0),
			   (unsigned long long)id,
			   (unsigned long long)want_last);
		goto fail;
	}
	for (i = 0; i < l->count / 2; i++) {
		struct plx_snap t = l->snaps[i];

		l->snaps[i] = l->snaps[l->count - 1 - i];
		l->snaps[l->count - 1 - i] = t;
	}
	return 0;
fail:
	plx_snaplist_free(l);
	return -1;
}

static bool plx_label_eq(const struct plx_snap_record *r, const char *label)
{
	char n[PLX_LABEL_LEN + 1];

	plx_copy_name(n, r->label, PLX_LABEL_LEN);
	return n[0] && !strcmp(n, label);
}

/* Search one VDI's log for @what (a seq or a label). */
static int plx_find_in_vdi(struct plx_store *s, u64 id, const char *what,
			   struct plx_snap *out, bool *found)
{
	struct plx_snaplist l;
	u64 seq = 0, i;

	*found = false;
	if (plx_all_digits(what) && plx_parse_u64(what, &seq))
		return -1;
	if (plx_snaplog_load(s, id, &l))
		return -1;
	for (i = 0; i < l.count; i++) {
		struct plx_snap *sn = &l.snaps[i];

		if (seq ? le64_to_cpu(sn->rec.seq) == seq :
			  plx_label_eq(&sn->rec, what)) {
			*out = *sn;
			*found = true;
			/* Prefer a live snapshot when labels repeat. */
			if (!(le32_to_cpu(sn->rec.flags) & PLX_SNAP_DELETED))
				break;
		}
	}
	plx_snaplist_free(&l);
	return 0;
}

int plx_resolve_snap(struct plx_store *s, const char *arg,
		     bool allow_deleted, struct plx_snap *out)
{
	const char *at = strchr(arg, '@');
	bool found = false;
	u64 id;

	if (at) {
		char vname[PLX_NAME_LEN + 24];
		size_t n = (size_t)(at - arg);

		if (n >= sizeof(vname) || !at[1]) {
			plx_seterr(PLX_EK_USAGE, "'%s' is not a snapshot (VDI@SEQ or VDI@LABEL)",
				   arg);
			return -1;
		}
		memcpy(vname, arg, n);
		vname[n] = 0;
		if (plx_resolve_vdi(s, vname, &id))
			return -1;
		if (plx_find_in_vdi(s, id, at + 1, out, &found))
			return -1;
	} else {
		for (id = 1; id <= s->geo.registry_slots && !found; id++) {
			struct plx_slot *sl = &s->slots[id - 1];

			if (sl->state != PLX_SLOT_VDI || !plx_vdi_live(&sl->rec) ||
			    !sl->rec.snaplog_head)
				continue;
			/* A VDI with a broken log cannot hold the label. */
			if (plx_find_in_vdi(s, id, arg, out, &found))
				continue;
			if (found && !allow_deleted &&
			    le32_to_cpu(out->rec.flags) & PLX_SNAP_DELETED)
				found = false;
		}
	}
	if (!found) {
		plx_seterr(PLX_EK_STORE, "no snapshot '%s'", arg);
		return -1;
	}
	if (!allow_deleted && le32_to_cpu(out->rec.flags) & PLX_SNAP_DELETED) {
		plx_seterr(PLX_EK_STORE, "snapshot %llu@%llu is deleted",
			   (unsigned long long)out->vdi,
			   (unsigned long long)le64_to_cpu(out->rec.seq));
		return -1;
	}
	return 0;
}

int plx_label_in_use(struct plx_store *s, const char *label, bool *used)
{
	struct plx_snap sn;
	int ret;

	*used = false;
	ret = plx_resolve_snap(s, label, false, &sn);
	if (!ret)
		*used = true;
	return 0;
}

/* Validate a new label: charset, length, unique store-wide. */
static int plx_label_ok(struct plx_store *s, const char *label)
{
	char buf[PLX_LABEL_LEN];
	bool used;

	if (strlen(label) >= PLX_LABEL_LEN) {
		plx_seterr(PLX_EK_USAGE, "label '%s' is longer than %d characters",
			   label, PLX_LABEL_LEN - 1);
		return -1;
	}
	memset(buf, 0, sizeof(buf));
	memcpy(buf, label, strlen(label));
	if (plx_name_check(buf, sizeof(buf))) {
		plx_seterr(PLX_EK_USAGE,
			   "invalid label '%s': use [A-Za-z0-9._-], not all digits",
			   label);
		return -1;
	}
	plx_label_in_use(s, label, &used);
	if (used) {
		plx_seterr(PLX_EK_STORE, "label '%s' is already in use", label);
		return -1;
	}
	return 0;
}

/* Read the root at @root and write its read-only copy to a new block. */
static int plx_copy_root(struct plx_store *s, u64 root, u64 *new_root)
{
	struct plx_radix_node src, dst;

	if (plx_read_block(s, root, &src))
		return -1;
	plx_node_copy_ro(&dst, &src);
	if (plx_alloc(s, PLX_EXT_METADATA, new_root))
		return -1;
	return plx_write_block(s, *new_root, &dst);
}

int plx_snapshot(struct plx_store *s, u64 id, const char *label, u64 *seq)
{
	struct plx_vdi_record *v = plx_vdi_get_modifiable(s, id);
	struct plx_vdi_record nv;
	struct plx_snaplog_block head, nl;
	struct plx_snap_record *r;
	struct plx_snaplist l;
	u64 hb, new_root, new_log, nseq;
	u32 count = 0;

	if (!v)
		return -1;
	if (label && plx_label_ok(s, label))
		return -1;
	/* Refuse to extend a log that does not validate. */
	if (plx_snaplog_load(s, id, &l))
		return -1;
	plx_snaplist_free(&l);
	hb = le64_to_cpu(v->snaplog_head);
	if (hb && plx_read_meta(s, hb, PLX_MAGIC_SNAPLOG, &head))
		return -1;
	nseq = le64_to_cpu(v->snap_seq) + 1;

	memset(&nl, 0, sizeof(nl));
	nl.vdi = cpu_to_le64(id);
	if (hb && le32_to_cpu(head.count) < PLX_SNAPS_PER_LOG) {
		count = le32_to_cpu(head.count);
		memcpy(nl.rec, head.rec, count * sizeof(nl.rec[0]));
		nl.prev = head.prev;
	} else {
		nl.prev = cpu_to_le64(hb);
	}
	r = &nl.rec[count];
	r->root = v->root;
	r->timestamp_ns = cpu_to_le64(plx_now_ns());
	r->seq = cpu_to_le64(nseq);
	if (label)
		memcpy(r->label, label, strlen(label));
	nl.count = cpu_to_le32(count + 1);

	if (plx_copy_root(s, le64_to_cpu(v->root), &new_root) ||
	    plx_alloc(s, PLX_EXT_METADATA, &new_log) ||
	    plx_write_meta(s, new_log, PLX_MAGIC_SNAPLOG, &nl) ||
	    plx_sync(s))
		return -1;
	nv = *v;
	nv.root = cpu_to_le64(new_root);
	nv.snaplog_head = cpu_to_le64(new_log);
	nv.snap_seq = cpu_to_le64(nseq);
	nv.generation = cpu_to_le64(le64_to_cpu(nv.generation) + 1);
	if (plx_vdi_write(s, &nv) || plx_fsync(s))
		return -1;
	*seq = nseq;
	return 0;
}

/* Offline admin edit of an existing log block, in place. */
static int plx_snap_rewrite(struct plx_store *s, const struct plx_snap *sn,
			    const char *label, bool delete)
{
	struct plx_snaplog_block blk;
	struct plx_snap_record *r;

	if (!plx_vdi_get_modifiable(s, sn->vdi))
		return -1;
	if (plx_read_meta(s, sn->log_block, PLX_MAGIC_SNAPLOG, &blk))
		return -1;
	r = &blk.rec[sn->index];
	if (sn->index >= le32_to_cpu(blk.count) || r->seq != sn->rec.seq) {
		plx_seterr(PLX_EK_STORE, "block %llu: snapshot record moved",
			   (unsigned long long)sn->log_block);
		return -1;
	}
	if (delete) {
		r->flags = cpu_to_le32(le32_to_cpu(r->flags) |
				       PLX_SNAP_DELETED);
	} else {
		memset(r->label, 0, sizeof(r->label));
		memcpy(r->label, label, strlen(label));
	}
	if (plx_write_meta(s, sn->log_block, PLX_MAGIC_SNAPLOG, &blk))
		return -1;
	return plx_fsync(s);
}

int plx_snap_delete(struct plx_store *s, const struct plx_snap *snap)
{
	if (le32_to_cpu(snap->rec.flags) & PLX_SNAP_DELETED) {
		plx_seterr(PLX_EK_STORE, "snapshot %llu@%llu is already deleted",
			   (unsigned long long)snap->vdi,
			   (unsigned long long)le64_to_cpu(snap->rec.seq));
		return -1;
	}
	return plx_snap_rewrite(s, snap, NULL, true);
}

int plx_snap_label(struct plx_store *s, const struct plx_snap *snap,
		   const char *label)
{
	if (plx_label_ok(s, label))
		return -1;
	return plx_snap_rewrite(s, snap, label, false);
}

int plx_vdi_clone(struct plx_store *s, const char *name,
		  const struct plx_snap *snap, u64 *id)
{
	struct plx_vdi_record *src = plx_vdi_get(s, snap->vdi);
	struct plx_vdi_record v;
	u64 new_id, root;

	if (!src)
		return -1;
	if (plx_store_sane(s) || plx_vdi_name_ok(s, name) ||
	    plx_vdi_free_slot(s, &new_id))
		return -1;
	if (plx_copy_root(s, le64_to_cpu(snap->rec.root), &root) ||
	    plx_sync(s))
		return -1;
	plx_vdi_init(&v, new_id, name, le64_to_cpu(src->size), src->height,
		     root);
	v.parent_vdi = cpu_to_le64(snap->vdi);
	v.parent_seq = snap->rec.seq;
	v.parent_log = cpu_to_le64(snap->log_block);
	if (plx_vdi_write(s, &v) || plx_fsync(s))
		return -1;
	*id = new_id;
	return 0;
}
