// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for the parsing of gc_reclaim's bitmap chunk: it decides
 * which blocks a table frees, so every malformed spelling must be refused
 * rather than read as some other set of blocks.
 *
 * Part of the dm-parallax-kunit module (see parallax-format-test.c).
 */
#include <kunit/test.h>

#include "parallax-target.h"

/* Two digits a byte, high nibble first: the on-disk bitmap's bytes. */
static void plx_gc_hex_bytes(struct kunit *test)
{
	u8 out[4] = { 0xee, 0xee, 0xee, 0xee };

	KUNIT_EXPECT_EQ(test, plx_gc_parse_hex("01ff80", out, 4), 3);
	KUNIT_EXPECT_EQ(test, out[0], 0x01);
	KUNIT_EXPECT_EQ(test, out[1], 0xff);
	KUNIT_EXPECT_EQ(test, out[2], 0x80);
	/* Nothing beyond the chunk is written. */
	KUNIT_EXPECT_EQ(test, out[3], 0xee);
	KUNIT_EXPECT_EQ(test, plx_gc_parse_hex("a5", out, 1), 1);
	KUNIT_EXPECT_EQ(test, out[0], 0xa5);
}

static void plx_gc_hex_refused(struct kunit *test)
{
	u8 out[4];

	KUNIT_EXPECT_EQ(test, plx_gc_parse_hex("", out, 4), -EINVAL);
	KUNIT_EXPECT_EQ(test, plx_gc_parse_hex("0", out, 4), -EINVAL);
	KUNIT_EXPECT_EQ(test, plx_gc_parse_hex("012", out, 4), -EINVAL);
	KUNIT_EXPECT_EQ(test, plx_gc_parse_hex("FF", out, 4), -EINVAL);
	KUNIT_EXPECT_EQ(test, plx_gc_parse_hex("0g", out, 4), -EINVAL);
	KUNIT_EXPECT_EQ(test, plx_gc_parse_hex("0x01", out, 4), -EINVAL);
	KUNIT_EXPECT_EQ(test, plx_gc_parse_hex(" 1", out, 4), -EINVAL);
	KUNIT_EXPECT_EQ(test, plx_gc_parse_hex("01\n", out, 4), -EINVAL);
	KUNIT_EXPECT_EQ(test, plx_gc_parse_hex("-1", out, 4), -EINVAL);
}

/* At most @max bytes: one more is refused, not truncated. */
static void plx_gc_hex_length(struct kunit *test)
{
	char *hex = kunit_kzalloc(test, 2 * PLX_GC_CHUNK_BYTES + 3, GFP_KERNEL);
	u8 *out = kunit_kzalloc(test, PLX_GC_CHUNK_BYTES, GFP_KERNEL);

	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, hex);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, out);
	memset(hex, 'f', 2 * PLX_GC_CHUNK_BYTES);
	KUNIT_EXPECT_EQ(test, plx_gc_parse_hex(hex, out, PLX_GC_CHUNK_BYTES),
			PLX_GC_CHUNK_BYTES);
	KUNIT_EXPECT_EQ(test, out[PLX_GC_CHUNK_BYTES - 1], 0xff);
	memset(hex, 'f', 2 * PLX_GC_CHUNK_BYTES + 2);
	KUNIT_EXPECT_EQ(test, plx_gc_parse_hex(hex, out, PLX_GC_CHUNK_BYTES),
			-EINVAL);
}

static struct kunit_case parallax_gc_cases[] = {
	KUNIT_CASE(plx_gc_hex_bytes),
	KUNIT_CASE(plx_gc_hex_refused),
	KUNIT_CASE(plx_gc_hex_length),
	{}
};

static struct kunit_suite parallax_gc_suite = {
	.name = "parallax_gc",
	.test_cases = parallax_gc_cases,
};

kunit_test_suite(parallax_gc_suite);
