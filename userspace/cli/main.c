// SPDX-License-Identifier: GPL-2.0
/*
 * parallax: administer a dm-parallax blockstore offline.  This file holds
 * the subcommand dispatch and helpers; each cmd-*.c holds a subcommand,
 * help.c their manual text.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cli.h"

const char *cli_cmd = NULL;

int cli_err(int code, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "parallax: ");
	if (cli_cmd)
		fprintf(stderr, "%s: ", cli_cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

int cli_liberr(void)
{
	return cli_err(plx_errkind() == PLX_EK_USAGE ? EXIT_USAGE : EXIT_STORE,
		       "%s", plx_errmsg());
}

int cli_getopt(int argc, char **argv, const char *shortopts,
	       const struct option *longopts)
{
	int c;

	opterr = 0;
	c = getopt_long(argc, argv, shortopts, longopts, NULL);
	if (c == '?' || c == ':') {
		if (c == ':')
			cli_err(EXIT_USAGE, "option '%s' needs an argument",
				argv[optind - 1]);
		else if (optopt && optopt != 'h')
			cli_err(EXIT_USAGE, "unknown option -%c (see parallax %s --help)",
				optopt, cli_cmd);
		else
			cli_err(EXIT_USAGE, "unknown option or missing argument '%s' (see parallax %s --help)",
				argv[optind - 1], cli_cmd);
		return '?';
	}
	return c;
}

int cli_nargs(int argc, char **argv, int min, int max)
{
	int n = argc - optind;

	if (n < min) {
		cli_err(EXIT_USAGE, "missing argument (see parallax %s --help)",
			cli_cmd);
		return -1;
	}
	if (n > max) {
		cli_err(EXIT_USAGE, "unexpected argument '%s' (see parallax %s --help)",
			argv[optind + max],
			cli_cmd);
		return -1;
	}
	return 0;
}

int cli_only_help(int argc, char **argv, int nmin, int nmax)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = cli_getopt(argc, argv, ":h", opts)) != -1) {
		if (c == 'h')
			return cli_help(cli_cmd);
		return EXIT_USAGE;
	}
	if (cli_nargs(argc, argv, nmin, nmax))
		return EXIT_USAGE;
	return -1;
}

struct plx_store *cli_open(const char *dev, bool write)
{
	struct plx_store *s = plx_open(dev, write ? PLX_OPEN_RDWR :
						    PLX_OPEN_RDONLY);

	if (!s)
		cli_liberr();
	return s;
}

int cli_resolve(struct plx_store *s, const char *arg, u64 *id,
		struct plx_snap *sn, bool *is_snap)
{
	char why[512];

	*is_snap = false;
	if (strchr(arg, '@')) {
		*is_snap = true;
		return plx_resolve_snap(s, arg, false, sn);
	}
	if (!plx_resolve_vdi(s, arg, id)) {
		if (!plx_all_digits(arg) && !plx_resolve_snap(s, arg, false, sn)) {
			plx_seterr(PLX_EK_STORE,
				   "'%s' is both a VDI name and a snapshot label; say VDI@LABEL or the VDI's id",
				   arg);
			return -1;
		}
		return 0;
	}
	/* A damaged or deleted VDI named by id: that is the error. */
	if (plx_all_digits(arg))
		return -1;
	snprintf(why, sizeof(why), "%s", plx_errmsg());
	if (!plx_resolve_snap(s, arg, false, sn)) {
		*is_snap = true;
		return 0;
	}
	plx_seterr(PLX_EK_STORE, "no VDI or snapshot named '%s'", arg);
	return -1;
}

void cli_time(u64 ns, char *buf, size_t len)
{
	time_t t = (time_t)(ns / 1000000000ULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void cli_snap_id(const struct plx_snap *sn, char *buf, size_t len)
{
	snprintf(buf, len, "%llu@%llu", (unsigned long long)sn->vdi,
		 (unsigned long long)le64_to_cpu(sn->rec.seq));
}

static void usage(FILE *f)
{
	const struct cli_cmd *c;

	fprintf(f, "%s", cli_cmds[0].help);
	fprintf(f, "COMMANDS\n");
	for (c = &cli_cmds[1]; c->name; c++)
		fprintf(f, "    %-10s %s\n", c->name, c->summary);
	fprintf(f, "\nRun 'parallax COMMAND --help' for a command's manual.\n");
}

int cli_help(const char *name)
{
	const struct cli_cmd *c;

	for (c = &cli_cmds[1]; c->name; c++) {
		if (!strcmp(c->name, name)) {
			fputs(c->help, stdout);
			return EXIT_OK;
		}
	}
	return EXIT_USAGE;
}

static void wait_notice(const char *path)
{
	fprintf(stderr, "parallax: %s: waiting for another parallax command using %s\n",
		cli_cmd, path);
}

int main(int argc, char **argv)
{
	const struct cli_cmd *c;

	plx_open_wait_hook = wait_notice;

	if (argc < 2)
		return cli_err(EXIT_USAGE, "no command given (see parallax --help)");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		if (argc > 2 && !strcmp(argv[1], "help")) {
			cli_cmd = argv[2];
			if (cli_help(argv[2]))
				return cli_err(EXIT_USAGE, "no such command");
			return EXIT_OK;
		}
		usage(stdout);
		return EXIT_OK;
	}
	for (c = &cli_cmds[1]; c->name; c++) {
		if (!strcmp(c->name, argv[1])) {
			cli_cmd = c->name;
			optind = 1;
			return c->fn(argc - 1, argv + 1);
		}
	}
	return cli_err(EXIT_USAGE, "unknown command '%s' (see parallax --help)",
		       argv[1]);
}
