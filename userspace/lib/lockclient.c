// SPDX-License-Identifier: GPL-2.0
/*
 * Client side of the lock protocol (lockproto.h): connect to
 * parallax-lockd over TCP, answer its challenge with HELLO, then one
 * request and one reply at a time.  Every wait is bounded by the timeout
 * given to plx_lk_connect(), so a dead lock manager never hangs a caller.
 *
 * plx_lk_call() takes its arguments and returns its grant in host byte
 * order; the conversion to the big-endian wire format happens here.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "libparallax.h"
#include "lockproto.h"

struct plx_lk_client {
	int fd;
	struct plx_lk_session ss;
	uint32_t host;
	uint32_t seq;			/* of the last request sent */
	uint32_t lease_ms;
	unsigned int timeout_ms;
	char addr[128];
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Wait for @events on @fd until @deadline; 0 when ready, -1 otherwise. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	uint64_t now;
	int r;

	for (;;) {
		now = now_ms();
		if (now >= deadline) {
			errno = ETIMEDOUT;
			return -1;
		}
		r = poll(&p, 1, (int)(deadline - now));
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

/*
 * Split "host:port", "[v6addr]:port" or a bare host (default port) into
 * its parts.  A bare IPv6 address with no brackets is taken as a host.
 */
static int split_addr(const char *addr, char *host, size_t hlen,
		      char *port, size_t plen)
{
	const char *colon;
	size_t n;

	if (addr[0] == '[') {
		const char *end = strchr(addr, ']');

		if (!end)
			return -1;
		n = (size_t)(end - addr - 1);
		if (!n || n >= hlen)
			return -1;
		memcpy(host, addr + 1, n);
		host[n] = 0;
		if (!end[1]) {
			snprintf(port, plen, "%d", PLX_LK_DEFAULT_PORT);
			return 0;
		}
		if (end[1] != ':' || !end[2] || strlen(end + 2) >= plen)
			return -1;
		strcpy(port, end + 2);
		return 0;
	}
	colon = strrchr(addr, ':');
	if (!colon || strchr(addr, ':') != colon) {
		if (!addr[0] || strlen(addr) >= hlen)
			return -1;
		strcpy(host, addr);
		snprintf(port, plen, "%d", PLX_LK_DEFAULT_PORT);
		return 0;
	}
	n = (size_t)(colon - addr);
	if (!n || n >= hlen || !colon[1] || strlen(colon + 1) >= plen)
		return -1;
	memcpy(host, addr, n);
	host[n] = 0;
	strcpy(port, colon + 1);
	return 0;
}

static int connect_one(const struct addrinfo *ai, uint64_t deadline)
{
	socklen_t elen = sizeof(int);
	int fd, err = 0, one = 1;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		return -1;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) && errno != EINPROGRESS)
		goto fail;
	if (wait_fd(fd, POLLOUT, deadline))
		goto fail;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen))
		goto fail;
	if (err) {
		errno = err;
		goto fail;
	}
	/* Requests are small and latency matters: no Nagle delay. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
fail:
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

static int send_all(struct plx_lk_client *c, const uint8_t *buf, size_t len,
		    uint64_t deadline)
{
	ssize_t n;

	while (len) {
		n = send(c->fd, buf, len, MSG_NOSIGNAL);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_fd(c->fd, POLLOUT, deadline))
				return -1;
			continue;
		}
		return -1;
	}
	return 0;
}

static int recv_all(struct plx_lk_client *c, uint8_t *buf, size_t len,
		    uint64_t deadline)
{
	ssize_t n;

	while (len) {
		n = recv(c->fd, buf, len, 0);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n == 0) {
			errno = ECONNRESET;
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (wait_fd(c->fd, POLLIN, deadline))
				return -1;
			continue;
		}
		return -1;
	}
	return 0;
}

/*
 * Receive one server frame; its payload is returned in a malloc'd buffer
 * with a NUL after it (so text replies are strings).
 */
static int recv_frame(struct plx_lk_client *c, struct plx_lk_hdr *h,
		      uint8_t **payload, uint64_t deadline)
{
	uint8_t *frame;
	uint8_t hb[PLX_LK_HDR_LEN];

	*payload = NULL;
	if (recv_all(c, hb, sizeof(hb), deadline)) {
		plx_seterr(PLX_EK_STORE, "lock manager %s: %s", c->addr,
			   errno == ECONNRESET ? "connection closed" :
			   strerror(errno));
		return -1;
	}
	if (plx_lk_parse_hdr(hb, PLX_LK_MAX_REPLY, h)) {
		plx_seterr(PLX_EK_STORE, "lock manager %s: malformed frame header",
			   c->addr);
		return -1;
	}
	frame = malloc(PLX_LK_HDR_LEN + (size_t)h->len + PLX_LK_MAC_LEN + 1);
	if (!frame) {
		plx_seterr(PLX_EK_STORE, "out of memory");
		return -1;
	}
	memcpy(frame, hb, sizeof(hb));
	if (recv_all(c, frame + PLX_LK_HDR_LEN, h->len + PLX_LK_MAC_LEN,
		     deadline)) {
		plx_seterr(PLX_EK_STORE, "lock manager %s: %s", c->addr,
			   errno == ECONNRESET ? "connection closed" :
			   strerror(errno));
		free(frame);
		return -1;
	}
	if (!plx_lk_verify(&c->ss, 'S', frame, h)) {
		plx_seterr(PLX_EK_STORE, "lock manager %s: reply tag does not verify (wrong cluster key?)",
			   c->addr);
		free(frame);
		return -1;
	}
	/* Hand back the payload in place, NUL-terminated. */
	memmove(frame, frame + PLX_LK_HDR_LEN, h->len);
	frame[h->len] = 0;
	*payload = frame;
	return 0;
}

static void drop_conn(struct plx_lk_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/*
 * Send one request and receive its reply.  Returns 0 with @h and
 * @payload filled in, or -1 (connection closed, error set).
 */
static int lk_exchange(struct plx_lk_client *c, uint8_t op,
		       const void *req, uint32_t req_len,
		       struct plx_lk_hdr *h, uint8_t **payload)
{
	uint8_t frame[PLX_LK_HDR_LEN + PLX_LK_MAX_JOB_REQUEST + PLX_LK_MAC_LEN];
	uint64_t deadline = now_ms() + c->timeout_ms;
	size_t n;

	if (c->fd < 0) {
		plx_seterr(PLX_EK_STORE, "lock manager %s: not connected",
			   c->addr);
		return -1;
	}
	if (req_len > plx_lk_max_request(op)) {
		plx_seterr(PLX_EK_USAGE, "%s: %u bytes is too long a request",
			   plx_lk_op_name(op), req_len);
		return -1;
	}
	c->seq++;
	n = plx_lk_build(&c->ss, 'C', op, 0, c->seq, req, req_len, frame);
	if (send_all(c, frame, n, deadline)) {
		plx_seterr(PLX_EK_STORE, "lock manager %s: %s", c->addr,
			   strerror(errno));
		goto fail;
	}
	if (recv_frame(c, h, payload, deadline))
		goto fail;
	if (h->op != op || h->seq != c->seq) {
		plx_seterr(PLX_EK_STORE, "lock manager %s: reply does not match the request",
			   c->addr);
		free(*payload);
		*payload = NULL;
		goto fail;
	}
	return 0;
fail:
	drop_conn(c);
	return -1;
}

static void grant_from_wire(struct plx_lk_grant *g, const uint8_t *p)
{
	struct plx_lk_grant w;

	memcpy(&w, p, sizeof(w));
	g->id = be64toh(w.id);
	g->generation = be64toh(w.generation);
	g->holder = be32toh(w.holder);
	g->type = be32toh(w.type);
	g->lease_ms = be32toh(w.lease_ms);
	g->reserved = be32toh(w.reserved);
}

/* Connect and verify the server's challenge; no HELLO yet. */
static struct plx_lk_client *lk_open(const char *addr,
				     const uint8_t key[PLX_LK_KEY_LEN],
				     uint32_t host, unsigned int timeout_ms,
				     uint64_t *deadline_out)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
	};
	struct plx_lk_challenge ch;
	struct plx_lk_client *c;
	struct addrinfo *res, *ai;
	struct plx_lk_hdr h;
	char hostname[96], port[16];
	uint64_t deadline;
	int r, err = 0;

	if (!addr || split_addr(addr, hostname, sizeof(hostname), port,
				sizeof(port))) {
		plx_seterr(PLX_EK_USAGE, "'%s' is not a lock manager address (host:port)",
			   addr ? addr : "");
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		plx_seterr(PLX_EK_STORE, "out of memory");
		return NULL;
	}
	c->fd = -1;
	c->host = host;
	c->timeout_ms = timeout_ms ? timeout_ms : 1;
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	memcpy(c->ss.key, key, PLX_LK_KEY_LEN);
	deadline = now_ms() + c->timeout_ms;

	r = getaddrinfo(hostname, port, &hints, &res);
	if (r) {
		plx_seterr(PLX_EK_STORE, "lock manager %s: %s", addr,
			   gai_strerror(r));
		goto fail;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		c->fd = connect_one(ai, deadline);
		if (c->fd >= 0)
			break;
		err = errno;
	}
	freeaddrinfo(res);
	if (c->fd < 0) {
		plx_seterr(PLX_EK_STORE, "lock manager %s: cannot connect: %s",
			   addr, strerror(err ? err : ETIMEDOUT));
		goto fail;
	}

	/*
	 * The challenge is tagged with an all-zero client nonce.  It proves
	 * nothing (it can be replayed), but a tag that does not verify tells
	 * the admin at once that the cluster key is wrong.
	 */
	{
		uint8_t frame[PLX_LK_HDR_LEN + sizeof(ch) + PLX_LK_MAC_LEN];

		if (recv_all(c, frame, sizeof(frame), deadline)) {
			plx_seterr(PLX_EK_STORE, "lock manager %s: no challenge: %s",
				   addr, errno == ECONNRESET ?
				   "connection closed" : strerror(errno));
			goto fail;
		}
		if (plx_lk_parse_hdr(frame, sizeof(ch), &h) ||
		    h.op != PLX_LK_CHALLENGE || h.len != sizeof(ch)) {
			plx_seterr(PLX_EK_STORE, "lock manager %s: malformed challenge",
				   addr);
			goto fail;
		}
		memcpy(&ch, frame + PLX_LK_HDR_LEN, sizeof(ch));
		memcpy(c->ss.server_nonce, ch.server_nonce, PLX_LK_NONCE_LEN);
		if (!plx_lk_verify(&c->ss, 'S', frame, &h)) {
			plx_seterr(PLX_EK_STORE, "lock manager %s: challenge tag does not verify (wrong cluster key?)",
				   addr);
			goto fail;
		}
		c->lease_ms = be32toh(ch.lease_ms);
	}
	*deadline_out = deadline;
	return c;
fail:
	plx_lk_close(c);
	return NULL;
}

int plx_lk_probe(const char *addr, const uint8_t key[PLX_LK_KEY_LEN],
		 unsigned int timeout_ms)
{
	struct plx_lk_client *c;
	uint64_t deadline;

	c = lk_open(addr, key, 0, timeout_ms, &deadline);
	if (!c)
		return 0;
	plx_lk_close(c);
	return 1;
}

struct plx_lk_client *plx_lk_connect(const char *addr,
				     const uint8_t key[PLX_LK_KEY_LEN],
				     uint32_t host, unsigned int timeout_ms)
{
	return plx_lk_connect_flags(addr, key, host, 0, timeout_ms);
}

struct plx_lk_client *plx_lk_connect_flags(const char *addr,
					   const uint8_t key[PLX_LK_KEY_LEN],
					   uint32_t host, uint32_t flags,
					   unsigned int timeout_ms)
{
	struct plx_lk_hello hello;
	struct plx_lk_client *c;
	struct plx_lk_hdr h;
	uint64_t deadline;
	uint8_t *payload;
	int r;

	if (!host) {
		plx_seterr(PLX_EK_USAGE, "host id 0 cannot hold locks");
		return NULL;
	}
	c = lk_open(addr, key, host, timeout_ms, &deadline);
	if (!c)
		return NULL;
	if (RAND_bytes(c->ss.client_nonce, PLX_LK_NONCE_LEN) != 1) {
		plx_seterr(PLX_EK_STORE, "cannot get random bytes for a nonce");
		goto fail;
	}
	memset(&hello, 0, sizeof(hello));
	memcpy(hello.client_nonce, c->ss.client_nonce, PLX_LK_NONCE_LEN);
	hello.host = htobe32(host);
	hello.flags = htobe32(flags);
	c->timeout_ms = (unsigned int)(deadline > now_ms() ?
			deadline - now_ms() : 1);
	r = lk_exchange(c, PLX_LK_HELLO, &hello, sizeof(hello), &h, &payload);
	c->timeout_ms = timeout_ms ? timeout_ms : 1;
	if (r)
		goto fail;
	if (h.status != PLX_LK_OK) {
		plx_seterr(PLX_EK_STORE, "lock manager %s: HELLO refused: %s %s",
			   addr, plx_lk_status_name(h.status),
			   (char *)payload);
		free(payload);
		goto fail;
	}
	if (h.len >= sizeof(struct plx_lk_grant)) {
		struct plx_lk_grant g;

		grant_from_wire(&g, payload);
		if (g.lease_ms)
			c->lease_ms = g.lease_ms;
	}
	free(payload);
	return c;
fail:
	plx_lk_close(c);
	return NULL;
}

int plx_lk_call(struct plx_lk_client *c, enum plx_lk_op op,
		const struct plx_lk_args *args, struct plx_lk_grant *grant,
		char *text, size_t text_len)
{
	struct plx_lk_args w = { 0 };
	struct plx_lk_hdr h;
	uint8_t *payload;
	int status;

	if (args) {
		w.id = htobe64(args->id);
		w.generation = htobe64(args->generation);
		w.type = htobe32(args->type);
		w.flags = htobe32(args->flags);
	}
	if (grant)
		memset(grant, 0, sizeof(*grant));
	if (text && text_len)
		text[0] = 0;
	if (lk_exchange(c, (uint8_t)op, &w, sizeof(w), &h, &payload))
		return -1;
	status = h.status;
	if (status == PLX_LK_OK || status == PLX_LK_EBUSY) {
		if (grant && h.len >= sizeof(*grant))
			grant_from_wire(grant, payload);
		if (grant && grant->lease_ms)
			c->lease_ms = grant->lease_ms;
		/* EBUSY also carries a text after the grant. */
		if (text && text_len && h.len > sizeof(*grant))
			snprintf(text, text_len, "%s",
				 (char *)payload + sizeof(*grant));
	} else if (text && text_len) {
		snprintf(text, text_len, "%s", (char *)payload);
	}
	free(payload);
	return status;
}

/* ---- GC jobs ------------------------------------------------------------ */

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = {
		.tv_sec = ms / 1000,
		.tv_nsec = (long)(ms % 1000) * 1000000,
	};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

int plx_lk_gc_job(struct plx_lk_client *c, uint32_t host, uint32_t kind,
		  uint64_t epoch, uint64_t extent, uint64_t generation,
		  uint32_t offset, const uint8_t *bits, uint32_t nbytes,
		  unsigned int timeout_ms, struct plx_lk_job_result *res)
{
	uint8_t req[PLX_LK_MAX_JOB_REQUEST];
	struct plx_lk_job w = {
		.epoch = htobe64(epoch),
		.extent = htobe64(extent),
		.generation = htobe64(generation),
		.host = htobe32(host),
		.kind = htobe32(kind),
		.offset = htobe32(offset),
		.nbytes = htobe32(nbytes),
	};
	uint64_t deadline = now_ms() + timeout_ms, id;
	struct plx_lk_args args = { 0 };
	struct plx_lk_grant g;
	struct plx_lk_hdr h;
	uint8_t *payload;
	char text[200];
	int st;

	memset(res, 0, sizeof(*res));
	if (nbytes > PLX_LK_JOB_BITS_MAX || (nbytes && !bits)) {
		plx_seterr(PLX_EK_USAGE, "a GC job carries at most %d bytes of bits",
			   PLX_LK_JOB_BITS_MAX);
		return -1;
	}
	memcpy(req, &w, sizeof(w));
	if (nbytes)
		memcpy(req + sizeof(w), bits, nbytes);
	for (;;) {
		if (lk_exchange(c, PLX_LK_GC_POST, req,
				(uint32_t)(sizeof(w) + nbytes), &h, &payload))
			return -1;
		/* A full job table drains as holders work: post again. */
		if (h.status != PLX_LK_EAGAIN || now_ms() >= deadline)
			break;
		free(payload);
		sleep_ms(100);
	}
	if (h.status != PLX_LK_OK || h.len < sizeof(g)) {
		plx_seterr(PLX_EK_STORE, "lock manager %s: GC job for host %u refused: %s %s",
			   c->addr, host, plx_lk_status_name(h.status),
			   h.status != PLX_LK_OK ? (char *)payload : "");
		free(payload);
		return -1;
	}
	grant_from_wire(&g, payload);
	free(payload);
	id = g.id;
	args.id = id;
	for (;;) {
		st = plx_lk_call(c, PLX_LK_GC_RESULT, &args, &g, text,
				 sizeof(text));
		if (st < 0)
			return -1;
		if (st != PLX_LK_OK) {
			plx_seterr(PLX_EK_STORE, "lock manager %s: job %llu: %s %s",
				   c->addr, (unsigned long long)id,
				   plx_lk_status_name(st), text);
			return -1;
		}
		if (g.type == 1) {
			res->error = (int32_t)g.holder;
			res->freed = g.generation;
			return 0;
		}
		if (now_ms() >= deadline) {
			plx_seterr(PLX_EK_STORE, "lock manager %s: job %llu for host %u not done after %u ms",
				   c->addr, (unsigned long long)id, host,
				   timeout_ms);
			return -1;
		}
		sleep_ms(100);
	}
}

int plx_lk_gc_fetch(struct plx_lk_client *c, struct plx_lk_fetched *job)
{
	struct plx_lk_args w = { 0 };
	struct plx_lk_job jw;
	struct plx_lk_hdr h;
	uint8_t *payload;
	uint64_t id;

	if (lk_exchange(c, PLX_LK_GC_FETCH, &w, sizeof(w), &h, &payload))
		return -1;
	if (h.status == PLX_LK_ENOENT) {
		free(payload);
		return 0;
	}
	if (h.status != PLX_LK_OK) {
		plx_seterr(PLX_EK_STORE, "lock manager %s: GC_FETCH refused: %s %s",
			   c->addr, plx_lk_status_name(h.status),
			   (char *)payload);
		free(payload);
		return -1;
	}
	if (h.len < 8 + sizeof(jw)) {
		plx_seterr(PLX_EK_STORE, "lock manager %s: GC_FETCH reply too short",
			   c->addr);
		free(payload);
		return -1;
	}
	memcpy(&id, payload, 8);
	memcpy(&jw, payload + 8, sizeof(jw));
	job->id = be64toh(id);
	job->job.epoch = be64toh(jw.epoch);
	job->job.extent = be64toh(jw.extent);
	job->job.generation = be64toh(jw.generation);
	job->job.host = be32toh(jw.host);
	job->job.kind = be32toh(jw.kind);
	job->job.offset = be32toh(jw.offset);
	job->job.nbytes = be32toh(jw.nbytes);
	if (job->job.nbytes > PLX_LK_JOB_BITS_MAX ||
	    h.len != 8 + sizeof(jw) + job->job.nbytes) {
		plx_seterr(PLX_EK_STORE, "lock manager %s: GC_FETCH reply of %u bytes says nbytes %u",
			   c->addr, h.len, job->job.nbytes);
		free(payload);
		return -1;
	}
	memcpy(job->bits, payload + 8 + sizeof(jw), job->job.nbytes);
	free(payload);
	return 1;
}

int plx_lk_gc_done(struct plx_lk_client *c, uint64_t id, int error,
		   uint64_t freed)
{
	struct plx_lk_args args = {
		.id = id,
		.generation = freed,
		.type = (uint32_t)error,
	};

	return plx_lk_call(c, PLX_LK_GC_DONE, &args, NULL, NULL, 0);
}

char *plx_lk_status_text(struct plx_lk_client *c)
{
	struct plx_lk_args w = { 0 };
	struct plx_lk_hdr h;
	uint8_t *payload;

	if (lk_exchange(c, PLX_LK_STATUS, &w, sizeof(w), &h, &payload))
		return NULL;
	if (h.status != PLX_LK_OK) {
		plx_seterr(PLX_EK_STORE, "lock manager %s: STATUS refused: %s %s",
			   c->addr, plx_lk_status_name(h.status),
			   (char *)payload);
		free(payload);
		return NULL;
	}
	/* The payload is already NUL-terminated by recv_frame(). */
	return (char *)payload;
}

int plx_lk_fd(const struct plx_lk_client *c)
{
	return c->fd;
}

uint32_t plx_lk_lease_ms(const struct plx_lk_client *c)
{
	return c->lease_ms;
}

void plx_lk_close(struct plx_lk_client *c)
{
	if (!c)
		return;
	drop_conn(c);
	explicit_bzero(c->ss.key, sizeof(c->ss.key));
	free(c);
}
