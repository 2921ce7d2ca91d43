// SPDX-License-Identifier: GPL-2.0
/*
 * dm-parallax: device-mapper target presenting one VDI of a Parallax
 * blockstore as a block device.
 *
 * PLACEHOLDER for the kernel-target issue: registers the module so that
 * the build and test harness can load it.
 */
#include <linux/module.h>

#define DM_MSG_PREFIX "parallax"

static int __init dm_parallax_init(void)
{
	return 0;
}

static void __exit dm_parallax_exit(void)
{
}

module_init(dm_parallax_init);
module_exit(dm_parallax_exit);

MODULE_DESCRIPTION("device-mapper target for Parallax virtual disk images");
MODULE_LICENSE("GPL");
