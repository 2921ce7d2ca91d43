/* SPDX-License-Identifier: GPL-2.0 */
/* The parallax admin tool: shared helpers of the subcommands. */
#ifndef PLX_CLI_H
#define PLX_CLI_H

#include <getopt.h>
#include <pthread.h>
#include "libparallax.h"
#include "lockproto.h"

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

/* ---- Progress bar (progress.c) ----------------------------------------- */

#define CLI_PROGRESS_MAX	200	/* columns at most */

struct cli_progress {
	bool on;			/* stderr is a terminal, not --quiet */
	bool shown;			/* a bar is on the screen now */
	int width;			/* terminal columns */
	u64 show_at;			/* monotonic ms: not before (~1 s) */
	u64 last;			/* monotonic ms of the last redraw */
};

/* Start timing an operation; @quiet (--quiet) turns the bar off. */
void cli_progress_init(struct cli_progress *p, bool quiet);
/* A plx_progress_fn: pass it with a struct cli_progress * as @arg. */
void cli_progress_fn(void *arg, const char *phase, u64 done, u64 total);
/* Erase the bar before printing to the terminal; the next update redraws. */
void cli_progress_clear(struct cli_progress *p);
/* Erase the bar for good. */
void cli_progress_done(struct cli_progress *p);
/* Options: --quiet (-q) and --help.  Returns -1 to go on, else a status. */
int cli_quiet_only(int argc, char **argv, int nmin, int nmax, bool *quiet);

/* ---- Cluster mode (cluster.c) ------------------------------------------- */

#define CLI_LK_TIMEOUT_MS	5000
#define CLI_MAX_EXTENTS		64

/* This host's id: @opt, else $PARALLAX_HOST_ID, /etc/parallax/host-id, 1. */
int cli_host_id(const char *opt, u32 *out);
/* The superblock's lock manager address into @buf; false if none. */
bool cli_lockd_addr(const struct plx_store *s, char *buf, size_t len);
/* Connect as @host with the store's key; prints the error on failure. */
struct plx_lk_client *cli_lk_connect(const char *addr,
				     const struct plx_store *s, u32 host);
struct plx_extent_entry *cli_cat_entry(struct plx_store *s, u64 ext);

/* What a modifying admin command needs from the lock manager. */
struct cli_lock_req {
	bool registry;			/* create, clone, delete */
	u64 vdi;			/* the VDI modified, or 0 */
	u64 meta_blocks;		/* metadata blocks it may allocate */
	u64 data_blocks;		/* data blocks it may allocate */
};

struct cli_cluster {
	bool on;			/* the store has a lock manager */
	char addr[PLX_LOCKD_ADDR_LEN + 1];
	u32 host;
	struct plx_lk_client *lk;
	bool registry;
	u64 registry_gen;
	u64 vdi, vdi_gen;
	unsigned int nr_ext;
	u64 ext[CLI_MAX_EXTENTS], ext_gen[CLI_MAX_EXTENTS];
	/* lease renewal while the command works */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool thread_on, stop, renew_failed;
};

/*
 * For a store with a lock manager: take the locks and extents @req asks
 * for as this host, then close *@sp and reopen @dev for writing in shared
 * mode (re-resolve names on the new store).  A store without one is left
 * alone (cl->on false).  Returns 0 or an exit status, after printing the
 * error; call cli_unlock() in every case.
 */
int cli_lock(struct cli_cluster *cl, struct plx_store **sp, const char *dev,
	     const struct cli_lock_req *req);
/*
 * Set the library error for a name that resolved to another object once
 * the locks were held; returns -1 (for use in a condition).
 */
int cli_changed(const char *arg);
/* Release everything cli_lock() took; 0 or an exit status. */
int cli_unlock(struct cli_cluster *cl);

/*
 * The collector's hooks in a cluster (gc-cluster.c): locks and jobs go
 * through the lock manager at @addr.  0 or an exit status.
 */
int cli_gc_cluster_ops(struct plx_store *s, const char *addr,
		       struct plx_gc_ops *ops, void **arg);
void cli_gc_cluster_done(void *arg);

int cmd_format(int argc, char **argv);
int cmd_gc(int argc, char **argv);
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
int cmd_locks(int argc, char **argv);
int cmd_unlock(int argc, char **argv);
int cmd_df(int argc, char **argv);
int cmd_cache_init(int argc, char **argv);
int cmd_cache_show(int argc, char **argv);

extern const struct cli_cmd cli_cmds[];

#endif
