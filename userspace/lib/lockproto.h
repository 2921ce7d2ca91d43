/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The lock protocol between parallax-lockd and its clients (parallaxd and
 * the parallax admin tool).  Documentation/lock-protocol.rst describes it
 * for people; this header is its only definition for code.
 *
 * Every message is a frame: a 16-byte header, a payload of hdr.len bytes
 * and a 32-byte HMAC-SHA256 tag.  All integers are big-endian (network
 * order).  The tag is keyed with the store's cluster_key and covers
 *
 *	client_nonce || server_nonce || direction || header || payload
 *
 * where direction is one byte, 'C' for client-to-server frames and 'S' for
 * server-to-client frames.  The server opens every connection with an
 * unauthenticated CHALLENGE frame carrying its nonce; the client's first
 * frame must be HELLO, which carries the client nonce.  Requests carry
 * seq = 1, 2, 3, ... and a reply echoes its request's seq, so a frame
 * cannot be replayed within a connection, nor into another one.
 *
 * Request payloads are at most PLX_LK_MAX_REQUEST bytes, except GC_POST's
 * (PLX_LK_MAX_JOB_REQUEST).
 *
 * A request whose header, length, tag or seq is wrong closes the
 * connection without a reply and changes nothing.  A well-formed request
 * that cannot be granted gets a reply with a non-zero status and a short
 * text payload saying why.
 */
#ifndef PLX_LOCKPROTO_H
#define PLX_LOCKPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PLX_LK_MAGIC		0x504c4b31U	/* "PLK1" */
#define PLX_LK_VERSION		1
#define PLX_LK_HDR_LEN		16
#define PLX_LK_MAC_LEN		32
#define PLX_LK_NONCE_LEN	16
#define PLX_LK_KEY_LEN		32
#define PLX_LK_MAX_REQUEST	64	/* payload bytes, client to server */
/* GC_POST alone may carry a job: struct plx_lk_job and its bitmap chunk. */
#define PLX_LK_JOB_BITS_MAX	1024	/* = PLX_GC_CHUNK_BYTES */
#define PLX_LK_MAX_JOB_REQUEST	(40 + PLX_LK_JOB_BITS_MAX)
#define PLX_LK_MAX_REPLY	65536	/* payload bytes, server to client */
#define PLX_LK_DEFAULT_PORT	7789
#define PLX_LK_LEASE_MS		15000	/* default lease */

enum plx_lk_op {
	PLX_LK_CHALLENGE = 1,	/* S->C first frame: struct plx_lk_challenge */
	PLX_LK_HELLO,		/* struct plx_lk_hello -> struct plx_lk_grant */
	PLX_LK_RENEW,		/* renew this host's lease -> grant */
	PLX_LK_LOCK_VDI,	/* id = VDI -> grant (id, generation) */
	PLX_LK_UNLOCK_VDI,	/* id, generation */
	PLX_LK_CLAIM_EXTENT,	/* type = data/metadata; id = 0 (any) or one */
	PLX_LK_RELEASE_EXTENT,	/* id, generation */
	PLX_LK_LOCK_REGISTRY,	/* -> grant (generation) */
	PLX_LK_UNLOCK_REGISTRY,	/* generation */
	PLX_LK_LOCK_BITMAP,	/* id = extent */
	PLX_LK_UNLOCK_BITMAP,	/* id = extent */
	PLX_LK_BREAK,		/* fence: type = enum plx_lk_what, id */
	PLX_LK_STATUS,		/* -> text: one line per host and lock */
	PLX_LK_GC_POST,		/* plx_lk_job -> grant (id = job) */
	PLX_LK_GC_RESULT,	/* id = job -> grant (type 0 pending/1 done) */
	PLX_LK_GC_FETCH,	/* helper: -> job id + struct plx_lk_job */
	PLX_LK_GC_DONE,		/* helper: id = job, type = errno */
	PLX_LK_OP_MAX
};

enum plx_lk_status {
	PLX_LK_OK = 0,
	PLX_LK_EINVAL,		/* argument out of range, wrong type */
	PLX_LK_EBUSY,		/* held by another host (holder in grant) */
	PLX_LK_ENOENT,		/* no such VDI or extent */
	PLX_LK_ESTALE,		/* generation mismatch: fenced or released */
	PLX_LK_EPERM,		/* not held by this host; lease still live */
	PLX_LK_ENOSPC,		/* no unheld extent with free space */
	PLX_LK_EIO,		/* the blockstore could not be read/written */
	PLX_LK_EPROTO,		/* unknown op, HELLO twice, op before HELLO */
	PLX_LK_EAGAIN,		/* too many GC jobs queued: try again */
	PLX_LK_STATUS_MAX
};

/* What a BREAK fences: every lock of a host, or one lock. */
enum plx_lk_what {
	PLX_LK_WHAT_HOST = 1,
	PLX_LK_WHAT_VDI,
	PLX_LK_WHAT_EXTENT,
	PLX_LK_WHAT_REGISTRY,
};

/* BREAK flag: even if the holder's lease is live. */
#define PLX_LK_FORCE		1U
/*
 * Local write caches (lock-protocol.rst, "Local write caches").  Flags
 * of struct plx_lk_args; a lock manager that knows them refuses any other
 * bit with EINVAL, one that does not ignores them, which a client sees
 * because the reply then lacks PLX_LK_CACHE:
 *
 * LOCK_VDI, PLX_LK_CACHE: the caller runs the VDI with a local write
 *	cache, so the VDI is marked cache-dirty on disk before the grant.
 *	PLX_LK_CACHE in the type of LOCK_VDI's reply (grant or EBUSY), and
 *	of any EBUSY about a VDI, says the VDI is marked.
 * UNLOCK_VDI, PLX_LK_CLEAN: the caller has drained its log completely;
 *	the mark is cleared with the lock.  Without it a marked VDI's
 *	unlock is refused (EBUSY) and the lock stays with the caller.
 * BREAK, PLX_LK_DISCARD: break marked VDI locks too, losing the writes
 *	still in the holder's log.  Without it a marked VDI lock is never
 *	broken: BREAK of the VDI is EBUSY, BREAK of its host keeps it.
 */
#define PLX_LK_CACHE		2U
#define PLX_LK_CLEAN		4U
#define PLX_LK_DISCARD		8U

/* HELLO flag: this connection is the host's parallaxd, which runs GC jobs. */
#define PLX_LK_HELLO_HELPER	1U

/* What a GC job asks the holder host's parallaxd to do (plx_lk_job.kind). */
enum plx_lk_job_kind {
	PLX_LK_JOB_BEGIN = 1,	/* gc_begin EPOCH to every rw device */
	PLX_LK_JOB_RECLAIM,	/* gc_reclaim ... to the extent's device */
	PLX_LK_JOB_END,		/* gc_end EPOCH to every rw device */
};

struct plx_lk_hdr {
	uint32_t magic;
	uint8_t version;
	uint8_t op;		/* enum plx_lk_op */
	uint16_t status;	/* replies: enum plx_lk_status; requests: 0 */
	uint32_t seq;
	uint32_t len;		/* payload bytes */
} __attribute__((packed));

struct plx_lk_challenge {
	uint8_t server_nonce[PLX_LK_NONCE_LEN];
	uint32_t lease_ms;
	uint32_t reserved;
} __attribute__((packed));

struct plx_lk_hello {
	uint8_t client_nonce[PLX_LK_NONCE_LEN];
	uint32_t host;		/* 1 .. 2^32-1 */
	uint32_t flags;		/* PLX_LK_HELLO_HELPER or zero */
} __attribute__((packed));

/* Payload of every request after HELLO (unused fields zero). */
struct plx_lk_args {
	uint64_t id;
	uint64_t generation;
	uint32_t type;		/* extent type, or enum plx_lk_what */
	uint32_t flags;
} __attribute__((packed));

/* Payload of a successful reply to a lock request. */
struct plx_lk_grant {
	uint64_t id;
	uint64_t generation;
	uint32_t holder;	/* also sent with EBUSY */
	uint32_t type;		/* VDI ops: PLX_LK_CACHE if marked */
	uint32_t lease_ms;
	uint32_t reserved;	/* BREAK of a host: marked VDI locks kept */
} __attribute__((packed));

/*
 * A GC job: the payload of GC_POST, and of GC_FETCH's reply after a u64
 * job id.  @bits (@nbytes of them, RECLAIM only) follow the struct.
 */
struct plx_lk_job {
	uint64_t epoch;
	uint64_t extent;
	uint64_t generation;
	uint32_t host;		/* the holder, whose parallaxd runs it */
	uint32_t kind;		/* enum plx_lk_job_kind */
	uint32_t offset;	/* block offset in the extent, multiple of 8 */
	uint32_t nbytes;	/* bitmap bytes after the struct */
} __attribute__((packed));

_Static_assert(sizeof(struct plx_lk_hdr) == PLX_LK_HDR_LEN, "hdr");
_Static_assert(sizeof(struct plx_lk_job) == 40, "job");
_Static_assert(sizeof(struct plx_lk_args) == 24, "args");
_Static_assert(sizeof(struct plx_lk_grant) == 32, "grant");

const char *plx_lk_op_name(unsigned int op);
const char *plx_lk_status_name(unsigned int status);
/* Largest request payload of @op: PLX_LK_MAX_JOB_REQUEST for GC_POST. */
uint32_t plx_lk_max_request(unsigned int op);

/* ---- Framing (lockproto.c), shared by both ends -------------------------- */

struct plx_lk_session {
	uint8_t key[PLX_LK_KEY_LEN];
	uint8_t client_nonce[PLX_LK_NONCE_LEN];
	uint8_t server_nonce[PLX_LK_NONCE_LEN];
};

/* Tag of a frame travelling in @dir ('C' or 'S'). */
void plx_lk_mac(const struct plx_lk_session *ss, char dir,
		const struct plx_lk_hdr *hdr, const void *payload,
		uint8_t mac[PLX_LK_MAC_LEN]);
/*
 * Build a whole frame in @buf (which must hold HDR + len + MAC bytes);
 * returns its length.  The header is given in host order.
 */
size_t plx_lk_build(const struct plx_lk_session *ss, char dir, uint8_t op,
		    uint16_t status, uint32_t seq, const void *payload,
		    uint32_t len, uint8_t *buf);
/*
 * Check a received header (host order out): magic, version, and len no
 * more than @max_len.  Returns 0 or -1.
 */
int plx_lk_parse_hdr(const uint8_t *buf, uint32_t max_len,
		     struct plx_lk_hdr *out);
/* Constant-time check of a received frame's tag. */
bool plx_lk_verify(const struct plx_lk_session *ss, char dir,
		   const uint8_t *frame, const struct plx_lk_hdr *hdr);

/* ---- Client (lockclient.c) ----------------------------------------------- */

struct plx_lk_client;

/*
 * Connect to @addr ("host:port"), read the challenge, say HELLO as @host.
 * NULL on failure with plx_errmsg() set.  @timeout_ms bounds every wait.
 */
struct plx_lk_client *plx_lk_connect(const char *addr,
				     const uint8_t key[PLX_LK_KEY_LEN],
				     uint32_t host, unsigned int timeout_ms);
/* The same with HELLO flags (PLX_LK_HELLO_HELPER: parallaxd only). */
struct plx_lk_client *plx_lk_connect_flags(const char *addr,
					   const uint8_t key[PLX_LK_KEY_LEN],
					   uint32_t host, uint32_t flags,
					   unsigned int timeout_ms);
/*
 * Does a lock manager holding @key answer at @addr?  1 if its challenge
 * verifies, else 0.  Says no HELLO, so it takes no lease.
 */
int plx_lk_probe(const char *addr, const uint8_t key[PLX_LK_KEY_LEN],
		 unsigned int timeout_ms);
/*
 * One request and its reply.  Returns the reply's status (>= 0), or -1 if
 * the connection failed (it is then closed; reconnect).  On success and on
 * EBUSY @grant is filled if non-NULL; on any other status @text (if
 * non-NULL, @text_len bytes) receives the server's explanation.
 * @args and @grant are in host byte order (the client converts them).
 */
int plx_lk_call(struct plx_lk_client *c, enum plx_lk_op op,
		const struct plx_lk_args *args, struct plx_lk_grant *grant,
		char *text, size_t text_len);
/* ---- GC jobs (lockclient.c) -------------------------------------------- */

struct plx_lk_job_result {
	int32_t error;		/* errno from the holder, 0 = success */
	uint64_t freed;		/* blocks freed (RECLAIM) */
};

/*
 * Post a job for @host's parallaxd and poll GC_RESULT (every 100 ms) until
 * it is done or @timeout_ms passed.  0 with *res filled, or -1 (connection
 * failed, refused, or timed out; plx_errmsg says which).  @bits/@nbytes
 * only for RECLAIM.  A post refused with EAGAIN (job table full) is
 * retried every 100 ms within the timeout; ENOENT (no parallaxd on that
 * host) is not.
 */
int plx_lk_gc_job(struct plx_lk_client *c, uint32_t host, uint32_t kind,
		  uint64_t epoch, uint64_t extent, uint64_t generation,
		  uint32_t offset, const uint8_t *bits, uint32_t nbytes,
		  unsigned int timeout_ms, struct plx_lk_job_result *res);

/* A job as GC_FETCH hands it to parallaxd (host order). */
struct plx_lk_fetched {
	uint64_t id;
	struct plx_lk_job job;
	uint8_t bits[PLX_LK_JOB_BITS_MAX];
};

/*
 * GC_FETCH: 1 with *job filled, 0 if no job is pending for this host, -1
 * if the connection failed or the lock manager refused (plx_errmsg).
 */
int plx_lk_gc_fetch(struct plx_lk_client *c, struct plx_lk_fetched *job);
/* GC_DONE: the job's status (>= 0; PLX_LK_OK) or -1 (connection failed). */
int plx_lk_gc_done(struct plx_lk_client *c, uint64_t id, int error,
		   uint64_t freed);

/* STATUS: the text (NUL-terminated, malloc'd) or NULL. */
char *plx_lk_status_text(struct plx_lk_client *c);
int plx_lk_fd(const struct plx_lk_client *c);
uint32_t plx_lk_lease_ms(const struct plx_lk_client *c);
void plx_lk_close(struct plx_lk_client *c);

#endif /* PLX_LOCKPROTO_H */
