/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The blockstore as the kernel target sees it: the device, its radix-node
 * cache, and the validated geometry.
 */
#ifndef PARALLAX_STORE_H
#define PARALLAX_STORE_H

#include <linux/device-mapper.h>

#include "parallax-format.h"

struct dm_bufio_client;

struct plx_store {
	struct dm_dev *dev;
	struct dm_bufio_client *bufio;
	struct plx_geometry geo;
	u8 *ext_type;			/* per extent, from the catalogue */
};

int plx_store_open(struct dm_target *ti, struct plx_store *s,
		   const char *path, unsigned long cache_bytes);
void plx_store_close(struct dm_target *ti, struct plx_store *s);

int plx_store_read_vdi(struct plx_store *s, u64 vdi_id,
		       struct plx_vdi_record *out, char **error);

#endif
