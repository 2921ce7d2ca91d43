/* SPDX-License-Identifier: GPL-2.0 */
/*
 * parallax-lockd: the cluster's lock manager.  Documentation/lock-protocol.rst
 * describes what it grants and how; lockproto.h defines the wire format.
 *
 * The lock state lives on the blockstore (catalogue entries, VDI records,
 * the superblock) and nowhere else: every grant is written and synced
 * before it is replied, so a restarted lockd, even after kill -9, knows
 * every lock.  Leases are in memory only.
 *
 * store.c: the blockstore (reading, sealing, writing blocks);
 * proto.c: connections, frames and the lock operations;
 * net.c:   sockets and the poll() loop;
 * main.c:  main() and option parsing only (the fuzzer links the rest).
 */
#ifndef PLX_LOCKD_H
#define PLX_LOCKD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "libparallax.h"
#include "lockproto.h"

#define LKD_MAX_CONNS		256
#define LKD_FRAME_TIMEOUT_MS	10000	/* a frame completes within this */
#define LKD_HELLO_TIMEOUT_MS	10000	/* HELLO comes within this */
#define LKD_MAX_OUT		(1U << 20)	/* unread replies per peer */
#define LKD_MAX_JOBS		1024	/* GC jobs, pending or done */
#define LKD_RESULT_KEEP_MS	120000	/* results are kept */

struct lkd_host {
	uint32_t id;
	bool seen;		/* said HELLO since lockd started */
	uint64_t renew_ms;	/* last renewal (or lockd's start: grace) */
	unsigned int sessions;	/* connections authenticated as this host */
};

/* A VDI whose record names a holder (kept in step with the disk). */
struct lkd_vdi {
	uint64_t id;
	uint32_t holder;
	uint64_t lock_gen;
	bool cache_dirty;	/* PLX_VDI_LOCK_CACHE_DIRTY on disk */
	char name[PLX_NAME_LEN + 1];
};

struct lkd_conn {
	int fd;
	char peer[80];
	struct plx_lk_session ss;
	bool hello;
	bool helper;			/* HELLO said PLX_LK_HELLO_HELPER */
	uint64_t serial;		/* unique per connection */
	uint32_t host;
	uint32_t seq;			/* last request seq accepted */
	uint64_t opened_ms;
	uint64_t frame_start_ms;	/* first byte of the partial frame */
	uint8_t in[PLX_LK_HDR_LEN + PLX_LK_MAX_JOB_REQUEST + PLX_LK_MAC_LEN];
	size_t in_len;
	uint8_t *out;
	size_t out_len, out_off, out_cap;
	bool dead;			/* close now */
	bool closing;			/* close once the output is flushed */
};

enum lkd_job_state { JOB_PENDING, JOB_RUNNING, JOB_DONE };

/*
 * A GC job relayed from a GC client to the holder host's parallaxd.  Jobs
 * live in memory only: a restarted lockd has none, and a GC client that
 * polls for one gets ENOENT.
 */
struct lkd_job {
	uint64_t id;
	enum lkd_job_state state;
	uint64_t conn;			/* RUNNING: the fetcher's serial */
	uint64_t posted_ms, done_ms;
	struct plx_lk_job job;		/* host order */
	uint8_t bits[PLX_LK_JOB_BITS_MAX];
	int32_t error;			/* DONE: errno, 0 = success */
	bool read;			/* DONE and reported by GC_RESULT */
	uint64_t freed;
};

struct lkd {
	int fd;
	const char *path;
	bool direct;			/* opened O_DIRECT */
	uint64_t device_blocks;
	uint8_t *sb_block;		/* block 0, 4 KiB aligned */
	struct plx_superblock *sb;	/* = sb_block */
	struct plx_geometry geo;
	uint8_t *ext_type;		/* nr_extents, for geo */
	struct plx_catalogue_block *cat;	/* catalogue_blocks, aligned */
	uint8_t *io;			/* scratch block, aligned */
	uint8_t *io2;			/* second scratch block */
	uint8_t key[PLX_LK_KEY_LEN];
	char addr[PLX_LOCKD_ADDR_LEN + 1];
	uint32_t lease_ms;
	uint64_t start_ms;

	struct lkd_host *hosts;
	size_t nr_hosts, cap_hosts;
	struct lkd_vdi *vdis;
	size_t nr_vdis, cap_vdis;
	struct lkd_conn *conns[LKD_MAX_CONNS];
	size_t nr_conns;
	uint64_t next_serial;

	struct lkd_job *jobs[LKD_MAX_JOBS];	/* in posting order */
	size_t nr_jobs;
	uint64_t next_job_id;

	FILE *log;			/* NULL: no log (fuzzer) */
};

uint64_t lkd_now_ms(void);
void lkd_log(struct lkd *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- store.c ------------------------------------------------------------ */

/* Open and validate the store, load superblock and catalogue, scan VDIs. */
int lkd_open(struct lkd *d, const char *path, uint32_t lease_ms);
void lkd_close(struct lkd *d);
/* Write @addr into the superblock's lockd_addr. */
int lkd_set_addr(struct lkd *d, const char *addr);

int lkd_read(struct lkd *d, uint64_t blocknr, void *buf);
/* Write one block and fdatasync. */
int lkd_write(struct lkd *d, uint64_t blocknr, const void *buf);

struct plx_extent_entry *lkd_ext(struct lkd *d, uint64_t ext);
/* Reseal and write the catalogue block holding @ext. */
int lkd_cat_commit(struct lkd *d, uint64_t ext);
/* Reseal and write the superblock. */
int lkd_sb_commit(struct lkd *d);
/*
 * Read VDI @id's record block into d->io fresh from disk.  Returns
 * PLX_LK_OK, ENOENT (free slot, out of range) or EIO (bad record).
 */
int lkd_vdi_load(struct lkd *d, uint64_t id, struct plx_vdi_record **rec);
/* Bump the record's generation, reseal d->io and write it. */
int lkd_vdi_commit(struct lkd *d, uint64_t id);
/* Free blocks of extent @ext from its on-disk bitmap; -1 if unreadable. */
int64_t lkd_extent_free(struct lkd *d, uint64_t ext);
/* Allocated blocks of @ext besides its bitmap blocks; -1 if unreadable. */
int64_t lkd_extent_used(struct lkd *d, uint64_t ext);

/* Held-VDI table. */
void lkd_vdi_set(struct lkd *d, uint64_t id, uint32_t holder,
		 uint64_t lock_gen, const char *name, bool cache_dirty);
struct lkd_host *lkd_host_get(struct lkd *d, uint32_t id, bool create);

/* ---- proto.c ------------------------------------------------------------ */

/* A new connection: queues the challenge.  NULL if there is no room. */
struct lkd_conn *lkd_conn_new(struct lkd *d, int fd, const char *peer);
/* Feed received bytes; -1 means close the connection now. */
int lkd_conn_input(struct lkd *d, struct lkd_conn *c, const uint8_t *buf,
		   size_t len);
/*
 * Close timed-out connections (marks them dead); end the GC jobs of hosts
 * whose lease expired and forget results older than LKD_RESULT_KEEP_MS.
 */
void lkd_conn_timeouts(struct lkd *d, uint64_t now);
void lkd_conn_free(struct lkd *d, struct lkd_conn *c);

/* ---- net.c -------------------------------------------------------------- */

/* Listen on @listen_addr and serve until SIGTERM/SIGINT; 0 or -1. */
int lkd_serve(struct lkd *d, const char *listen_addr);

#endif /* PLX_LOCKD_H */
