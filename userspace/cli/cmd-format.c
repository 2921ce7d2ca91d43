// SPDX-License-Identifier: GPL-2.0
/* parallax format */
#include <stdio.h>

#include "cli.h"

int cmd_format(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "extent-size", required_argument, NULL, 'e' },
		{ "max-vdis", required_argument, NULL, 'm' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct plx_format_opts o = { 0 };
	struct plx_superblock sb;
	char hs[32];
	u64 bytes;
	int c;

	while ((c = cli_getopt(argc, argv, ":h", opts)) != -1) {
		switch (c) {
		case 'e':
			if (plx_parse_size(optarg, &bytes))
				return cli_liberr();
			if (bytes & (PLX_BLOCK_SIZE - 1) ||
			    bytes >> PLX_BLOCK_SHIFT < PLX_MIN_EXTENT_BLOCKS ||
			    bytes >> PLX_BLOCK_SHIFT > PLX_MAX_EXTENT_BLOCKS ||
			    (bytes & (bytes - 1)))
				return cli_err(EXIT_USAGE,
					       "extent size '%s' must be a power of two from 4M to 64G",
					       optarg);
			o.extent_blocks = bytes >> PLX_BLOCK_SHIFT;
			break;
		case 'm':
			if (plx_parse_u64(optarg, &o.registry_slots))
				return cli_liberr();
			if (!o.registry_slots ||
			    o.registry_slots > PLX_MAX_REGISTRY_SLOTS)
				return cli_err(EXIT_USAGE,
					       "--max-vdis must be between 1 and %llu",
					       PLX_MAX_REGISTRY_SLOTS);
			break;
		case 'f':
			o.force = true;
			break;
		case 'h':
			return cli_help(cli_cmd);
		default:
			return EXIT_USAGE;
		}
	}
	if (cli_nargs(argc, argv, 1, 1))
		return EXIT_USAGE;
	if (plx_format(argv[optind], &o, &sb))
		return cli_liberr();
	printf("formatted %s: %llu extents of %s (%llu system), %llu VDI slots\n",
	       argv[optind], (unsigned long long)le64_to_cpu(sb.nr_extents),
	       plx_human_size(le64_to_cpu(sb.extent_blocks) << PLX_BLOCK_SHIFT,
			      hs, sizeof(hs)),
	       (unsigned long long)le64_to_cpu(sb.system_extents),
	       (unsigned long long)le64_to_cpu(sb.registry_slots));
	return EXIT_OK;
}
