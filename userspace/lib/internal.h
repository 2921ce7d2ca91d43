/* SPDX-License-Identifier: GPL-2.0 */
/* Helpers shared between the library's source files, not part of the API. */
#ifndef PLX_INTERNAL_H
#define PLX_INTERNAL_H

#include "libparallax.h"

int plx_vdi_name_ok(struct plx_store *s, const char *name);
int plx_vdi_free_slot(struct plx_store *s, u64 *id);
void plx_vdi_init(struct plx_vdi_record *v, u64 id, const char *name,
		  u64 size, u8 height, u64 root);
/* Live VDI not held by any host: the offline tool may modify it. */
struct plx_vdi_record *plx_vdi_get_modifiable(struct plx_store *s, u64 id);

/* Fill @buf with random bytes (format.c). */
int plx_random(void *buf, size_t len);

#endif
