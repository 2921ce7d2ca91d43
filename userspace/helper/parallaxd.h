/* SPDX-License-Identifier: GPL-2.0 */
/*
 * parallaxd: the per-host helper of one blockstore (Documentation/
 * parallaxd.rst).  One thread, one poll() loop: the control socket, the
 * lock manager's connection, dm events and a one-second timer.
 */
#ifndef PLX_PARALLAXD_H
#define PLX_PARALLAXD_H

#include <linux/dm-ioctl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "libparallax.h"
#include "lockproto.h"

#define PD_MAX_EXTENTS		256	/* per device */
#define PD_CACHE_PATH_LEN	1024	/* a local write cache's log device */
#define PD_MAX_PENDING		1024	/* releases waiting for the lock manager */
/*
 * Bounds every wait on the lock manager (connect, each reply).  A grant
 * is synced to the LUN before it is replied, which a busy iSCSI LUN may
 * take seconds to do; a connection refused fails at once, only a
 * black-holed address costs the whole wait (once per backoff step).
 */
#define PD_LK_TIMEOUT_MS	5000
#define PD_BACKOFF_MIN_MS	1000
#define PD_BACKOFF_MAX_MS	10000
#define PD_CLIENT_TIMEOUT_MS	2000
#define PD_MAX_WAIT_S		3600	/* attach ... rw wait=S */
#define PD_PENDING_TICK_MS	200	/* LOCK_VDI retries of pending devices */
/*
 * A GC posts its next job only once it has the last one's result: for
 * this long after a job, parallaxd asks for the next every 50 ms instead
 * of once a second, or a collection would take a second per job.
 */
#define PD_GC_FAST_MS		3000
#define PD_GC_FAST_TICK_MS	50

enum pd_level { PD_ERR = 3, PD_WARN = 4, PD_INFO = 6, PD_DEBUG = 7 };

void pd_log(enum pd_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
u64 pd_now_ms(void);

struct pd_extent {
	u64 id;
	u64 gen;
	bool metadata;
};

/* One device this daemon made and manages. */
struct pd_dev {
	struct pd_dev *next;
	char name[DM_NAME_LEN];
	u64 vdi;
	bool rw;
	u64 lock_gen;
	unsigned int nr;
	struct pd_extent ext[PD_MAX_EXTENTS];
	bool enospc_logged[2];		/* [metadata] */
	bool claim_failed_logged;
	bool status_failed_logged;
	bool foreign_logged;		/* unknown grants looked at once */
	/*
	 * Hand-over (attach ... rw wait=S): the VDI was held elsewhere, so
	 * the device runs a read_only table, suspended, until LOCK_VDI is
	 * granted (then the rw table is loaded and resumed) or the wait
	 * ends at @wait_until (wall clock, ms: it survives a restart; then
	 * the device is resumed read-only and marked stale).
	 */
	bool pending;
	bool stale;
	u64 wait_until;
	u64 sectors;
	u32 holder;			/* last EBUSY's holder, for the logs */
	/*
	 * Local write cache: the log device ("" if none) and mode ("" for
	 * the target's default).  The lock manager marks the VDI
	 * cache-dirty while this host holds it with a cache; only a release
	 * made after a verified drain (PLX_LK_CLEAN) clears the mark.
	 */
	char cache[PD_CACHE_PATH_LEN];
	char cache_mode[16];
};

/* A release the lock manager has not heard of yet. */
struct pd_pending {
	enum plx_lk_op op;		/* RELEASE_EXTENT or UNLOCK_VDI */
	u64 id;
	u64 gen;
	u32 flags;			/* UNLOCK_VDI: PLX_LK_CLEAN or 0 */
};

struct pd {
	/* Configuration. */
	const char *dev_path;
	bool dev_is_blk;
	dev_t dev_rdev;			/* block device */
	dev_t dev_dev;			/* regular file: st_dev + st_ino */
	ino_t dev_ino;
	u32 host;
	char run_dir[4096];
	char sock_path[4200];
	char lockd_addr[PLX_LOCKD_ADDR_LEN + 1];
	u8 key[PLX_LK_KEY_LEN];
	bool lockd_override;		/* --lockd given */
	struct plx_superblock sb;	/* as read at start-up */
	u64 extent_blocks;
	unsigned int spare_pct;

	/* The lock manager. */
	struct plx_lk_client *lk;
	bool lk_ever_up;
	bool lk_down_logged;
	u64 lk_next_try_ms;
	u64 lk_backoff_ms;
	u64 lk_next_renew_ms;
	u32 lease_ms;
	bool renew_refused_logged;
	bool lk_gc;			/* this connection runs GC jobs */

	/* Descriptors. */
	int listen_fd;
	int ev_fd;			/* armed /dev/mapper/control, or -1 */

	struct pd_dev *devs;
	struct pd_pending pending[PD_MAX_PENDING];
	unsigned int nr_pending;

	/* GC jobs (gc.c): a gc_begin running in a child process. */
	int gc_fd;			/* its result pipe, or -1 */
	pid_t gc_pid;
	u64 gc_job;
	u64 gc_epoch;
	bool gc_more;			/* more jobs may wait: run now */
	u64 gc_fast_until;		/* poll for jobs fast until then */
};

/* main.c */
/* Read block @nr of the store, bypassing the page cache where possible. */
int pd_read_block(struct pd *pd, u64 nr, void *buf);
/* Re-read the superblock's lockd_addr unless --lockd overrides it. */
int pd_refresh_lockd_addr(struct pd *pd);

/* lockd.c: the lock manager's connection. */
bool pd_lk_up(struct pd *pd);
/* Connect now if down and the backoff allows it; true if up afterwards. */
bool pd_lk_ensure(struct pd *pd, bool force);
/*
 * One request.  Returns the lock manager's status (PLX_LK_OK ...) or -1
 * if it is unreachable (the connection is then dropped).  @grant is filled
 * (host order) on OK and EBUSY; @why receives the server's text otherwise.
 */
int pd_lk_call(struct pd *pd, enum plx_lk_op op, u64 id, u64 gen, u32 type,
	       struct plx_lk_grant *grant, char *why, size_t why_len);
/* The same with request flags (PLX_LK_CACHE, PLX_LK_CLEAN). */
int pd_lk_call_flags(struct pd *pd, enum plx_lk_op op, u64 id, u64 gen,
		     u32 type, u32 flags, struct plx_lk_grant *grant,
		     char *why, size_t why_len);
void pd_lk_timer(struct pd *pd);
/* The lock manager's fd polled readable: unsolicited data or EOF. */
void pd_lk_readable(struct pd *pd);
void pd_lk_drop(struct pd *pd, const char *why);
/* Queue a release for when the lock manager is back. */
void pd_pending_add(struct pd *pd, enum plx_lk_op op, u64 id, u64 gen,
		    u32 flags);
void pd_pending_flush(struct pd *pd);
/* $RUN_DIR/parallaxd.pending keeps the queue across restarts. */
void pd_pending_load(struct pd *pd);

/* gc.c: GC jobs relayed by the lock manager. */
/* Fetch and run this host's jobs until none is left (or a batch ran). */
void pd_gc_run(struct pd *pd);
/* A gc_begin child is running (its pipe is pd->gc_fd). */
bool pd_gc_busy(const struct pd *pd);
/* pd->gc_fd polled readable: report the gc_begin's result. */
void pd_gc_begin_done(struct pd *pd);

/* devices.c */
struct pd_dev *pd_dev_find(struct pd *pd, const char *name);
/* An UNLOCK_VDI refused because the VDI is cache-dirty: say what to do. */
void pd_log_kept_dirty(u64 vdi, const char *why);
/* Free blocks to keep in hand per type: --spare percent of an extent. */
u64 pd_spare_blocks(const struct pd *pd);
int pd_state_save(struct pd *pd, const struct pd_dev *d);
void pd_adopt(struct pd *pd);
void pd_dev_lockd_word_one(struct pd_dev *d, const char *word);
/* Tell every managed device the lock manager's state ("lockd WORD"). */
void pd_devs_lockd_word(struct pd *pd, const char *word);
/* Extent policy: claim ahead of need, release full extents. */
void pd_devs_check(struct pd *pd);
/*
 * Control requests; they write info lines to @out and return 0 with
 * @ok set to the "ok" payload, or -1 with @err set.
 */
int pd_attach(struct pd *pd, const char *store, const char *vdi_arg,
	      const char *name, const char *mode, unsigned int wait_s,
	      const char *cache, const char *cache_mode,
	      char *ok, size_t ok_len, char *err, size_t err_len);
/* Any device waiting for a hand-over?  Then tick every 200 ms. */
bool pd_devs_any_pending(struct pd *pd);
/* Retry LOCK_VDI for waiting devices; expire those whose wait is over. */
void pd_devs_handover(struct pd *pd);
u64 pd_wall_ms(void);
int pd_detach(struct pd *pd, const char *name, char *err, size_t err_len);
void pd_status(struct pd *pd, int out);

/* control.c */
int pd_ctl_open(struct pd *pd);
void pd_ctl_accept(struct pd *pd);
void pd_ctl_close(struct pd *pd);
/* printf to a client socket, never blocking the loop beyond its timeout. */
void pd_ctl_printf(int fd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif /* PLX_PARALLAXD_H */
