// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for the target's own logic, the parts that need no device:
 * how the walk measures a run of blocks one bio can serve, the order in
 * which the allocation reserve hands out blocks, and the bookkeeping that
 * decides when a commit node may be written.
 *
 * Part of the dm-parallax-kunit module (see parallax-format-test.c).
 */
#include <kunit/test.h>
#include <linux/module.h>

#include "parallax-target.h"

/* 8 extents of 1024 blocks: 2 system, then data, metadata, free... */
static const u8 tt_ext_type[8] = {
	PLX_EXT_SYSTEM, PLX_EXT_SYSTEM, PLX_EXT_DATA, PLX_EXT_METADATA,
	PLX_EXT_DATA, PLX_EXT_DATA, PLX_EXT_FREE, PLX_EXT_FREE,
};

static void tt_geometry(struct plx_geometry *g)
{
	memset(g, 0, sizeof(*g));
	g->extent_blocks = 1024;
	g->extent_shift = 10;
	g->nr_extents = 8;
	g->nr_blocks = 8 * 1024;
	g->system_extents = 2;
	g->bitmap_blocks = 1;
	g->ext_type = tt_ext_type;
}

static __le64 *tt_node(struct kunit *test)
{
	__le64 *n = kunit_kzalloc(test, PLX_BLOCK_SIZE, GFP_KERNEL);

	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, n);
	return n;
}

/* Consecutive blocks with the same read-only bit make one run. */
static void plx_run_contiguous(struct kunit *test)
{
	struct plx_geometry g;
	__le64 *n = tt_node(test);
	int i;

	tt_geometry(&g);
	for (i = 0; i < 10; i++)
		n[i] = cpu_to_le64(2049 + i);
	KUNIT_EXPECT_EQ(test, plx_run(&g, n, 0, 2049, 64), 10U);
	KUNIT_EXPECT_EQ(test, plx_run(&g, n, 3, 2052, 64), 7U);
	/* Never beyond what the bio asked for. */
	KUNIT_EXPECT_EQ(test, plx_run(&g, n, 0, 2049, 4), 4U);
	KUNIT_EXPECT_EQ(test, plx_run(&g, n, 0, 2049, 1), 1U);
}

/* A gap, a jump or a change of read-only bit ends a run. */
static void plx_run_breaks(struct kunit *test)
{
	struct plx_geometry g;
	__le64 *n = tt_node(test);

	tt_geometry(&g);
	n[0] = cpu_to_le64(2049);
	n[1] = cpu_to_le64(2050);
	n[2] = cpu_to_le64(2060);			/* jump */
	KUNIT_EXPECT_EQ(test, plx_run(&g, n, 0, 2049, 64), 2U);

	n[2] = cpu_to_le64(2051 | PLX_PTR_RO);		/* read-only */
	KUNIT_EXPECT_EQ(test, plx_run(&g, n, 0, 2049, 64), 2U);

	n[2] = 0;					/* sparse */
	KUNIT_EXPECT_EQ(test, plx_run(&g, n, 0, 2049, 64), 2U);

	/* Read-only runs are runs too. */
	n[0] = cpu_to_le64(2049 | PLX_PTR_RO);
	n[1] = cpu_to_le64(2050 | PLX_PTR_RO);
	n[2] = cpu_to_le64(2051 | PLX_PTR_RO);
	KUNIT_EXPECT_EQ(test, plx_run(&g, n, 0, 2049 | PLX_PTR_RO, 64), 3U);
}

/* Sparse entries make a run of zeros; data after them ends it. */
static void plx_run_sparse(struct kunit *test)
{
	struct plx_geometry g;
	__le64 *n = tt_node(test);

	tt_geometry(&g);
	n[5] = cpu_to_le64(2049);
	KUNIT_EXPECT_EQ(test, plx_run(&g, n, 0, 0, 64), 5U);
	KUNIT_EXPECT_EQ(test, plx_run(&g, n, 6, 0, 1000), 506U);
}

/* A run stops at the end of the node, whatever the bio wants. */
static void plx_run_node_end(struct kunit *test)
{
	struct plx_geometry g;
	__le64 *n = tt_node(test);

	tt_geometry(&g);
	n[510] = cpu_to_le64(2049);
	n[511] = cpu_to_le64(2050);
	KUNIT_EXPECT_EQ(test, plx_run(&g, n, 510, 2049, 64), 2U);
}

/*
 * A contiguous sequence that runs out of a data extent (into the next
 * extent's bitmap, or a metadata extent) is cut where it stops being a
 * valid data pointer: a corrupt node must not stretch a bio elsewhere.
 */
static void plx_run_stays_valid(struct kunit *test)
{
	struct plx_geometry g;
	__le64 *n = tt_node(test);
	int i;

	tt_geometry(&g);
	/* Extent 2 ends at 3071; 3072 is extent 3's bitmap. */
	for (i = 0; i < 4; i++)
		n[i] = cpu_to_le64(3069 + i);
	KUNIT_EXPECT_EQ(test, plx_run(&g, n, 0, 3069, 64), 3U);

	/* Extent 4 ends at 5119; 5120 is extent 5's bitmap. */
	for (i = 0; i < 4; i++)
		n[i] = cpu_to_le64(5118 + i);
	KUNIT_EXPECT_EQ(test, plx_run(&g, n, 0, 5118, 64), 2U);
}

/* The reserve hands blocks out in the order they were taken. */
static void plx_reserve_fifo(struct kunit *test)
{
	struct plx_reserve *res = kunit_kzalloc(test, sizeof(*res), GFP_KERNEL);
	unsigned int i;

	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, res);
	for (i = 0; i < 10; i++)
		res->blocks[res->nr++] = 100 + i;
	KUNIT_EXPECT_EQ(test, plx_reserve_pop(res), 100ULL);
	KUNIT_EXPECT_EQ(test, plx_reserve_pop(res), 101ULL);
	KUNIT_EXPECT_EQ(test, plx_reserve_count(res), 8U);

	/* Compacting keeps the order and makes room at the end. */
	plx_reserve_compact(res);
	KUNIT_EXPECT_EQ(test, res->head, 0U);
	KUNIT_EXPECT_EQ(test, res->nr, 8U);
	res->blocks[res->nr++] = 500;
	for (i = 0; i < 8; i++)
		KUNIT_EXPECT_EQ(test, plx_reserve_pop(res), 102ULL + i);
	KUNIT_EXPECT_EQ(test, plx_reserve_pop(res), 500ULL);
	KUNIT_EXPECT_EQ(test, plx_reserve_count(res), 0U);
}

struct tt_commit {
	struct plx_target t;
	struct plx_pnode c;		/* a commit node */
	struct plx_pnode u;		/* unlinked beneath it */
};

static struct tt_commit *tt_commit_setup(struct kunit *test)
{
	struct tt_commit *tc = kunit_kzalloc(test, sizeof(*tc), GFP_KERNEL);

	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, tc);
	INIT_LIST_HEAD(&tc->t.to_write);
	INIT_LIST_HEAD(&tc->c.to_write);
	INIT_LIST_HEAD(&tc->u.to_write);
	tc->u.commit = &tc->c;
	return tc;
}

/*
 * Changing an unlinked node queues one write for this pass, however often
 * it changes, and the commit node waits for exactly that write.
 */
static void plx_commit_counts_queued_write(struct kunit *test)
{
	struct tt_commit *tc = tt_commit_setup(test);

	plx_pnode_modified(&tc->t, &tc->u);
	KUNIT_EXPECT_TRUE(test, tc->u.queued);
	KUNIT_EXPECT_EQ(test, tc->c.outstanding, 1U);
	KUNIT_EXPECT_FALSE(test, list_empty(&tc->t.to_write));

	plx_pnode_modified(&tc->t, &tc->u);
	KUNIT_EXPECT_EQ(test, tc->c.outstanding, 1U);
}

/*
 * A node changed while its write is in flight must be written again (its
 * in-flight copy is stale), and the commit node must wait for both.
 */
static void plx_commit_counts_rewrite(struct kunit *test)
{
	struct tt_commit *tc = tt_commit_setup(test);

	tc->u.writing = true;
	plx_commit_add_component(&tc->c);	/* the write in flight */
	plx_pnode_modified(&tc->t, &tc->u);
	KUNIT_EXPECT_TRUE(test, tc->u.rewrite);
	KUNIT_EXPECT_FALSE(test, tc->u.queued);
	KUNIT_EXPECT_EQ(test, tc->c.outstanding, 2U);

	plx_pnode_modified(&tc->t, &tc->u);
	KUNIT_EXPECT_EQ(test, tc->c.outstanding, 2U);
	KUNIT_EXPECT_TRUE(test, list_empty(&tc->t.to_write));
}

/* A commit node is written only at commit: changing it queues nothing. */
static void plx_commit_node_not_queued(struct kunit *test)
{
	struct tt_commit *tc = tt_commit_setup(test);

	plx_pnode_modified(&tc->t, &tc->c);
	KUNIT_EXPECT_FALSE(test, tc->c.queued);
	KUNIT_EXPECT_EQ(test, tc->c.outstanding, 0U);
	KUNIT_EXPECT_TRUE(test, list_empty(&tc->t.to_write));
}

static struct kunit_case parallax_target_cases[] = {
	KUNIT_CASE(plx_run_contiguous),
	KUNIT_CASE(plx_run_breaks),
	KUNIT_CASE(plx_run_sparse),
	KUNIT_CASE(plx_run_node_end),
	KUNIT_CASE(plx_run_stays_valid),
	KUNIT_CASE(plx_reserve_fifo),
	KUNIT_CASE(plx_commit_counts_queued_write),
	KUNIT_CASE(plx_commit_counts_rewrite),
	KUNIT_CASE(plx_commit_node_not_queued),
	{}
};

static struct kunit_suite parallax_target_suite = {
	.name = "parallax_target",
	.test_cases = parallax_target_cases,
};

kunit_test_suite(parallax_target_suite);
