// SPDX-License-Identifier: GPL-2.0
/*
 * The VDI registry: looking records up by id or name, creating and
 * deleting VDIs.  Every record in s->slots passed plx_vdi_check() when the
 * store was opened; records that did not are never used.
 */
#include <stdlib.h>

#include "internal.h"

struct plx_vdi_record *plx_vdi_get(struct plx_store *s, u64 id)
{
	struct plx_slot *sl;

	if (!id || id > s->geo.registry_slots) {
		plx_seterr(PLX_EK_STORE, "VDI id %llu out of range (1..%llu)",
			   (unsigned long long)id,
			   (unsigned long long)s->geo.registry_slots);
		return NULL;
	}
	sl = &s->slots[id - 1];
	if (sl->state == PLX_SLOT_FREE) {
		plx_seterr(PLX_EK_STORE, "no VDI with id %llu",
			   (unsigned long long)id);
		return NULL;
	}
	if (sl->state == PLX_SLOT_BAD) {
		plx_seterr(PLX_EK_STORE, "block %llu: VDI %llu record: %s",
			   (unsigned long long)plx_registry_block(&s->geo, id),
			   (unsigned long long)id, plx_strerror(sl->err));
		return NULL;
	}
	return &sl->rec;
}

bool plx_vdi_live(const struct plx_vdi_record *v)
{
	return !(le64_to_cpu(v->flags) & PLX_VDI_DELETED);
}

int plx_vdi_write(struct plx_store *s, struct plx_vdi_record *v)
{
	u64 id = le64_to_cpu(v->id);
	u64 blk = plx_registry_block(&s->geo, id);
	u8 buf[PLX_BLOCK_SIZE];

	memset(buf, 0, sizeof(buf));
	memcpy(buf, v, sizeof(*v));
	plx_block_seal(buf, PLX_MAGIC_VDI, blk, s->geo.uuid);
	if (plx_write_block(s, blk, buf))
		return -1;
	memcpy(&s->slots[id - 1].rec, buf, sizeof(*v));
	s->slots[id - 1].state = PLX_SLOT_VDI;
	s->slots[id - 1].err = PLX_OK;
	return 0;
}

/* Live VDI named @name, 0 if none. */
static u64 plx_find_name(struct plx_store *s, const char *name)
{
	char n[PLX_NAME_LEN + 1];
	u64 i;

	for (i = 0; i < s->geo.registry_slots; i++) {
		struct plx_slot *sl = &s->slots[i];

		if (sl->state != PLX_SLOT_VDI || !plx_vdi_live(&sl->rec))
			continue;
		plx_copy_name(n, sl->rec.name, PLX_NAME_LEN);
		if (!strcmp(n, name))
			return i + 1;
	}
	return 0;
}

int plx_resolve_vdi(struct plx_store *s, const char *arg, u64 *id)
{
	struct plx_vdi_record *v;
	u64 n;

	if (plx_all_digits(arg)) {
		if (plx_parse_u64(arg, &n))
			return -1;
		v = plx_vdi_get(s, n);
		if (!v)
			return -1;
		if (!plx_vdi_live(v)) {
			plx_seterr(PLX_EK_STORE, "VDI %llu is deleted",
				   (unsigned long long)n);
			return -1;
		}
		*id = n;
		return 0;
	}
	n = plx_find_name(s, arg);
	if (!n) {
		plx_seterr(PLX_EK_STORE, "no VDI named '%s'", arg);
		return -1;
	}
	*id = n;
	return 0;
}

/* Validate a new VDI name: charset, length, unique among live VDIs. */
int plx_vdi_name_ok(struct plx_store *s, const char *name)
{
	char buf[PLX_NAME_LEN];

	if (strlen(name) >= PLX_NAME_LEN) {
		plx_seterr(PLX_EK_USAGE, "name '%s' is longer than %d characters",
			   name, PLX_NAME_LEN - 1);
		return -1;
	}
	memset(buf, 0, sizeof(buf));
	memcpy(buf, name, strlen(name));
	if (plx_name_check(buf, sizeof(buf))) {
		plx_seterr(PLX_EK_USAGE,
			   "invalid name '%s': use [A-Za-z0-9._-], not all digits",
			   name);
		return -1;
	}
	if (plx_find_name(s, name)) {
		plx_seterr(PLX_EK_STORE, "a VDI named '%s' already exists",
			   name);
		return -1;
	}
	return 0;
}

int plx_vdi_free_slot(struct plx_store *s, u64 *id)
{
	u64 i;

	for (i = 0; i < s->geo.registry_slots; i++) {
		if (s->slots[i].state == PLX_SLOT_FREE) {
			*id = i + 1;
			return 0;
		}
	}
	plx_seterr(PLX_EK_STORE, "VDI registry is full (%llu slots)",
		   (unsigned long long)s->geo.registry_slots);
	return -1;
}

void plx_vdi_init(struct plx_vdi_record *v, u64 id, const char *name,
		  u64 size, u8 height, u64 root)
{
	memset(v, 0, sizeof(*v));
	v->id = cpu_to_le64(id);
	v->size = cpu_to_le64(size);
	v->root = cpu_to_le64(root);
	v->ctime_ns = cpu_to_le64(plx_now_ns());
	v->generation = cpu_to_le64(1);
	v->height = height;
	memcpy(v->name, name, strlen(name));
}

int plx_vdi_create(struct plx_store *s, const char *name, u64 size, u64 *id)
{
	struct plx_vdi_record v;
	u8 node[PLX_BLOCK_SIZE];
	u64 root, new_id;
	u8 height;

	if (!size || size & (PLX_BLOCK_SIZE - 1)) {
		plx_seterr(PLX_EK_USAGE, "size must be a non-zero multiple of 4 KiB");
		return -1;
	}
	height = plx_height_for_size(size);
	if (!height) {
		plx_seterr(PLX_EK_USAGE, "size is larger than the maximum of 256 TiB");
		return -1;
	}
	if (plx_store_sane(s) || plx_vdi_name_ok(s, name) ||
	    plx_vdi_free_slot(s, &new_id))
		return -1;
	if (plx_alloc(s, PLX_EXT_METADATA, &root))
		return -1;
	memset(node, 0, sizeof(node));
	if (plx_write_block(s, root, node) || plx_sync(s))
		return -1;
	plx_vdi_init(&v, new_id, name, size, height, root);
	if (plx_vdi_write(s, &v) || plx_fsync(s))
		return -1;
	*id = new_id;
	return 0;
}

struct plx_vdi_record *plx_vdi_get_modifiable(struct plx_store *s, u64 id)
{
	struct plx_vdi_record *v = plx_vdi_get(s, id);

	if (!v)
		return NULL;
	if (!plx_vdi_live(v)) {
		plx_seterr(PLX_EK_STORE, "VDI %llu is deleted",
			   (unsigned long long)id);
		return NULL;
	}
	if (v->holder && !(s->shared &&
			   le32_to_cpu(v->holder) == s->alloc_holder)) {
		plx_seterr(PLX_EK_STORE, "VDI %llu is in use by host %u",
			   (unsigned long long)id, le32_to_cpu(v->holder));
		return NULL;
	}
	if (plx_store_sane(s))
		return NULL;
	return v;
}

int plx_vdi_delete(struct plx_store *s, u64 id)
{
	struct plx_vdi_record *v = plx_vdi_get_modifiable(s, id);
	struct plx_vdi_record nv;

	if (!v)
		return -1;
	nv = *v;
	nv.flags = cpu_to_le64(le64_to_cpu(nv.flags) | PLX_VDI_DELETED);
	nv.generation = cpu_to_le64(le64_to_cpu(nv.generation) + 1);
	if (plx_vdi_write(s, &nv) || plx_fsync(s))
		return -1;
	return 0;
}
