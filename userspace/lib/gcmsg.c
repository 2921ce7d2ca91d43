// SPDX-License-Identifier: GPL-2.0
/*
 * The text of the kernel target's gc_reclaim message (Documentation/
 * dm-parallax.rst): "gc_reclaim EPOCH EXTENT GENERATION OFFSET HEX", HEX
 * being the bitmap chunk in lowercase hex, byte by byte, so that bit j of
 * byte k stands for block OFFSET + 8k + j of the extent as on disk.
 */
#include <stdio.h>

#include "libparallax.h"

int plx_gc_reclaim_msg(char *buf, size_t len, u64 epoch, u64 extent,
		       u64 generation, u64 offset, const u8 *bits, u32 nbytes)
{
	static const char hex[] = "0123456789abcdef";
	size_t n;
	int r;
	u32 i;

	if (!nbytes || nbytes > PLX_GC_CHUNK_BYTES || !buf || !len)
		return -1;
	r = snprintf(buf, len, "gc_reclaim %llu %llu %llu %llu ",
		     (unsigned long long)epoch, (unsigned long long)extent,
		     (unsigned long long)generation,
		     (unsigned long long)offset);
	if (r < 0 || (size_t)r >= len)
		return -1;
	n = (size_t)r;
	/* The hex digits and the NUL must fit too. */
	if (len - n < 2 * (size_t)nbytes + 1)
		return -1;
	for (i = 0; i < nbytes; i++) {
		buf[n++] = hex[bits[i] >> 4];
		buf[n++] = hex[bits[i] & 15];
	}
	buf[n] = '\0';
	return 0;
}
