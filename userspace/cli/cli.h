/* SPDX-License-Identifier: GPL-2.0 */
/* The parallax admin tool: shared helpers of the subcommands. */
#ifndef PLX_CLI_H
#define PLX_CLI_H

#include <getopt.h>
#include "libparallax.h"

/* Exit statuses, documented in the manual text. */
#define EXIT_OK		0
#define EXIT_STORE	1	/* store problem, not found, check failed */
#define EXIT_USAGE	2	/* bad command line */

struct cli_cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
	const char *help;
};

extern const char *cli_cmd;		/* subcommand being run */

/* Print "parallax: <cmd>: <msg>" and return @code. */
int cli_err(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Report the library's last error; returns 2 for usage errors, else 1. */
int cli_liberr(void);

/*
 * Parse options with getopt_long; returns -1 when done, '?' (after
 * printing a one-line error) for an unknown option or missing argument,
 * 'h' for --help.
 */
int cli_getopt(int argc, char **argv, const char *shortopts,
	       const struct option *longopts);
/* Check the number of positional arguments left after options. */
int cli_nargs(int argc, char **argv, int min, int max);
int cli_help(const char *name);
/* Options: only --help.  Returns -1 to go on, else an exit status. */
int cli_only_help(int argc, char **argv, int nmin, int nmax);

struct plx_store *cli_open(const char *dev, bool write);
void cli_time(u64 ns, char *buf, size_t len);
/*
 * VDI|SNAPSHOT argument: with '@' a snapshot; else a VDI id or name, else
 * a snapshot label.  A word that is both a name and a label is refused.
 */
int cli_resolve(struct plx_store *s, const char *arg, u64 *id,
		struct plx_snap *sn, bool *is_snap);
/* "V@SEQ" for a snapshot. */
void cli_snap_id(const struct plx_snap *sn, char *buf, size_t len);

int cmd_format(int argc, char **argv);
int cmd_create(int argc, char **argv);
int cmd_delete(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_label(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_snaplog(int argc, char **argv);
int cmd_tree(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_attach(int argc, char **argv);
int cmd_detach(int argc, char **argv);

extern const struct cli_cmd cli_cmds[];

#endif
