// SPDX-License-Identifier: GPL-2.0
/*
 * parallax-lockd: main() and option parsing only; the daemon itself is
 * in the other files of this directory, which the fuzz harness links.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lockd.h"

static const char usage_text[] =
"Usage: parallax-lockd DEV --listen ADDR:PORT [--advertise ADDR:PORT]\n"
"                      [--lease SECONDS]\n"
"\n"
"The lock manager of a Parallax cluster.  DEV is the shared blockstore (a\n"
"block device or a file) formatted by `parallax format`.  parallax-lockd\n"
"grants VDI locks, extent claims, the registry lock and garbage-collector\n"
"bitmap locks to the hosts' parallaxd and parallax tools, and fences\n"
"(breaks) the locks of dead hosts on request.  Every lock lives on DEV\n"
"itself and is written and synced before it is granted, so restarting\n"
"parallax-lockd, even after a crash, loses no lock.  Run exactly one per\n"
"blockstore: it refuses to start while the lock manager named in the\n"
"superblock still answers.\n"
"\n"
"It also relays the garbage collector's jobs (parallax gc) to the\n"
"parallaxd of the host holding an extent; jobs live in memory only.\n"
"\n"
"Options:\n"
"  --listen ADDR:PORT     address and TCP port to listen on, e.g.\n"
"                         0.0.0.0:7789, [::]:7789 or 127.0.0.1:7789\n"
"  --advertise ADDR:PORT  address the hosts should connect to, written into\n"
"                         the superblock (default: the --listen address);\n"
"                         at most 63 characters\n"
"  --lease SECONDS        how long a host's lease lasts without renewal\n"
"                         (default 15); a host's locks may be broken\n"
"                         without force only once its lease has expired\n"
"  -h, --help             show this help\n"
"\n"
"Clients authenticate with HMAC-SHA256 keyed by the cluster key stored in\n"
"the superblock; Documentation/lock-protocol.rst describes the protocol\n"
"and the lock rules.  One line per grant, release, fence and refusal goes\n"
"to standard error.  SIGTERM or SIGINT stops the daemon cleanly.\n"
"\n"
"Exit status: 0 after a signal, 1 on a runtime error (the store cannot be\n"
"opened or is not a valid blockstore, the address is in use), 2 on a\n"
"usage error.\n";

static int usage_error(const char *msg)
{
	fprintf(stderr, "parallax-lockd: %s (see --help)\n", msg);
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "advertise", required_argument, NULL, 'a' },
		{ "lease", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *listen_addr = NULL, *advertise = NULL;
	u64 lease_s = PLX_LK_LEASE_MS / 1000;
	struct lkd d;
	char msg[160];
	int c, ret;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			listen_addr = optarg;
			break;
		case 'a':
			advertise = optarg;
			break;
		case 'L':
			if (plx_parse_u64(optarg, &lease_s) || !lease_s ||
			    lease_s > 3600) {
				snprintf(msg, sizeof(msg),
					 "--lease: '%s' is not a number of seconds 1..3600",
					 optarg);
				return usage_error(msg);
			}
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		default:
			snprintf(msg, sizeof(msg), "unknown option or missing argument '%s'",
				 argv[optind - 1]);
			return usage_error(msg);
		}
	}
	if (optind >= argc)
		return usage_error("no blockstore device given");
	if (optind + 1 < argc) {
		snprintf(msg, sizeof(msg), "unexpected argument '%s'",
			 argv[optind + 1]);
		return usage_error(msg);
	}
	if (!listen_addr)
		return usage_error("--listen ADDR:PORT is required");
	if (!strrchr(listen_addr, ':'))
		return usage_error("--listen needs ADDR:PORT");
	if (!advertise)
		advertise = listen_addr;
	if (strlen(advertise) >= PLX_LOCKD_ADDR_LEN ||
	    !strrchr(advertise, ':')) {
		snprintf(msg, sizeof(msg),
			 "--advertise '%.80s' must be ADDR:PORT of at most %d characters",
			 advertise, PLX_LOCKD_ADDR_LEN - 1);
		return usage_error(msg);
	}

	if (lkd_open(&d, argv[optind], (uint32_t)lease_s * 1000)) {
		fprintf(stderr, "parallax-lockd: %s\n", plx_errmsg());
		return 1;
	}
	d.log = stderr;
	/*
	 * Two lock managers would both write the catalogue: refuse to start
	 * while the one the superblock names still answers with this key.
	 */
	if (d.sb->lockd_addr[0]) {
		char old[PLX_LOCKD_ADDR_LEN + 1];

		plx_copy_name(old, d.sb->lockd_addr, PLX_LOCKD_ADDR_LEN);
		if (plx_lk_probe(old, d.sb->cluster_key, 2000)) {
			fprintf(stderr, "parallax-lockd: %s: another lock manager is running for this blockstore at %s; stop it first\n",
				argv[optind], old);
			lkd_close(&d);
			return 1;
		}
	}
	if (lkd_set_addr(&d, advertise)) {
		fprintf(stderr, "parallax-lockd: %s: cannot record the address: %s\n",
			argv[optind], plx_errmsg());
		lkd_close(&d);
		return 1;
	}
	ret = lkd_serve(&d, listen_addr);
	if (ret)
		fprintf(stderr, "parallax-lockd: %s\n", plx_errmsg());
	lkd_close(&d);
	return ret ? 1 : 0;
}
