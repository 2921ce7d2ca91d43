// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer harness for parallax-lockd's request handling (lockd/proto.c
 * and lockd/store.c) against an in-process lock manager serving a small
 * store file formatted once in LLVMFuzzerInitialize().  No sockets: bytes
 * go straight into connection buffers and replies are read back from them.
 *
 * Input: the first byte picks a mode.
 *  - odd: raw.  The rest of the input is fed, as is, into a fresh
 *    connection; this exercises header, length, tag and seq checking.
 *  - even: structured.  Two connections say HELLO correctly (hosts chosen
 *    by the second byte, bits 0-1 and 2-3; bits 4 and 5 make connection 1
 *    and 0 a parallaxd with the helper flag), then the rest is a sequence
 *    of records { op, conn/flags, 24 bytes of plx_lk_args } for which the
 *    harness builds correctly tagged frames, so the fuzzer reaches every
 *    lock operation behind the MAC.  A GC_POST record carries a 40-byte
 *    struct plx_lk_job instead of the args, then as many bytes of bitmap
 *    as its nbytes field says (modulo 1025, at most what is left).  A
 *    GC_RESULT or GC_DONE with id 0 names the last job posted or
 *    fetched.  Flag bits corrupt the tag, the seq or the length, to check
 *    that such frames change nothing.
 * Every reply frame is checked: its tag must verify and its seq echo the
 * request's.
 */
#include <endian.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lockd/lockd.h"

static struct lkd d;
static bool ready;
static uint64_t last_job;	/* id of the last job posted or fetched */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct plx_format_opts o = {
		.extent_blocks = PLX_MIN_EXTENT_BLOCKS,
		.registry_slots = 8,
	};
	struct plx_store *s;
	char path[] = "/dev/shm/fuzz-lockd.XXXXXX";
	char path2[] = "/tmp/fuzz-lockd.XXXXXX";
	char *p = path;
	u64 id;
	int fd;

	(void)argc;
	(void)argv;
	fd = mkstemp(path);
	if (fd < 0) {
		p = path2;
		fd = mkstemp(path2);
	}
	if (fd < 0 || ftruncate(fd, 48 << 20)) {
		perror("fuzz-lockd: store file");
		abort();
	}
	close(fd);
	if (plx_format(p, &o, NULL)) {
		fprintf(stderr, "fuzz-lockd: format: %s\n", plx_errmsg());
		abort();
	}
	/* Two VDIs, so that LOCK_VDI has something to grant. */
	s = plx_open(p, PLX_OPEN_RDWR);
	if (!s || plx_vdi_create(s, "one", 1 << 20, &id) ||
	    plx_vdi_create(s, "two", 4 << 20, &id)) {
		fprintf(stderr, "fuzz-lockd: create: %s\n", plx_errmsg());
		abort();
	}
	plx_close(s);
	if (lkd_open(&d, p, 1000)) {
		fprintf(stderr, "fuzz-lockd: open: %s\n", plx_errmsg());
		abort();
	}
	unlink(p);
	ready = true;
	return 0;
}

/* Check and drop every reply frame queued on @c. */
static void drain(struct lkd_conn *c, uint32_t want_seq, bool check_seq)
{
	struct plx_lk_hdr h;
	size_t off = 0, n;

	while (c->out_len - off >= PLX_LK_HDR_LEN) {
		if (plx_lk_parse_hdr(c->out + off, PLX_LK_MAX_REPLY, &h))
			abort();	/* lockd built a bad header */
		n = PLX_LK_HDR_LEN + h.len + PLX_LK_MAC_LEN;
		if (c->out_len - off < n)
			abort();	/* a partial frame */
		if (!plx_lk_verify(&c->ss, 'S', c->out + off, &h))
			abort();
		if (check_seq && h.op != PLX_LK_CHALLENGE && h.seq != want_seq)
			abort();
		/* Remember job ids, so that records can name a real job. */
		if (h.status == PLX_LK_OK && h.len >= 8 &&
		    (h.op == PLX_LK_GC_POST || h.op == PLX_LK_GC_FETCH)) {
			memcpy(&last_job, c->out + off + PLX_LK_HDR_LEN, 8);
			last_job = be64toh(last_job);
		}
		off += n;
	}
	if (off != c->out_len)
		abort();
	c->out_len = 0;
}

static struct lkd_conn *say_hello(uint32_t host, bool helper)
{
	struct lkd_conn *c = lkd_conn_new(&d, -1, "fuzz");
	struct plx_lk_hello hl = {
		.host = htobe32(host),
		.flags = htobe32(helper ? PLX_LK_HELLO_HELPER : 0),
	};
	uint8_t frame[PLX_LK_HDR_LEN + sizeof(hl) + PLX_LK_MAC_LEN];
	struct plx_lk_session ss;
	size_t n;

	if (!c)
		abort();
	drain(c, 0, false);
	memset(hl.client_nonce, 0xa5, sizeof(hl.client_nonce));
	ss = c->ss;
	memcpy(ss.client_nonce, hl.client_nonce, PLX_LK_NONCE_LEN);
	n = plx_lk_build(&ss, 'C', PLX_LK_HELLO, 0, 1, &hl, sizeof(hl), frame);
	if (lkd_conn_input(&d, c, frame, n) || !c->hello)
		abort();
	drain(c, 1, true);
	return c;
}

static void fuzz_raw(const uint8_t *data, size_t size)
{
	struct lkd_conn *c = lkd_conn_new(&d, -1, "fuzz");

	if (!c)
		abort();
	drain(c, 0, false);
	lkd_conn_input(&d, c, data, size);
	drain(c, 0, false);
	lkd_conn_free(&d, c);
}

static void fuzz_records(const uint8_t *data, size_t size)
{
	uint8_t frame[PLX_LK_HDR_LEN + PLX_LK_MAX_JOB_REQUEST + PLX_LK_MAC_LEN];
	struct lkd_conn *c[2];
	uint32_t seq[2] = { 1, 1 };
	uint8_t args[PLX_LK_MAX_JOB_REQUEST];
	struct plx_lk_job job;
	uint64_t id;
	size_t n, k, len;

	if (!size)
		return;
	c[0] = say_hello(1 + (data[0] & 3), data[0] & 0x20);
	c[1] = say_hello(1 + ((data[0] >> 2) & 3), data[0] & 0x10);
	data++;
	size--;
	while (size >= 2) {
		uint8_t op = data[0], fl = data[1];

		k = fl & 1;
		data += 2;
		size -= 2;
		memset(args, 0, sizeof(args));
		len = op == PLX_LK_GC_POST ? sizeof(job) :
			sizeof(struct plx_lk_args);
		n = size < len ? size : len;
		memcpy(args, data, n);
		data += n;
		size -= n;
		if (op == PLX_LK_GC_POST) {
			/* The bitmap chunk the job's nbytes announces. */
			memcpy(&job, args, sizeof(job));
			n = be32toh(job.nbytes) % (PLX_LK_JOB_BITS_MAX + 1);
			if (n > size)
				n = size;
			memcpy(args + sizeof(job), data, n);
			data += n;
			size -= n;
			len += n;
		} else if ((op == PLX_LK_GC_RESULT || op == PLX_LK_GC_DONE) &&
			   !memcmp(args, "\0\0\0\0\0\0\0\0", 8)) {
			id = htobe64(last_job);
			memcpy(args, &id, 8);
		}
		if (!c[k])
			continue;
		if (fl & 0x10)
			len = fl >> 5;		/* short payload: EINVAL */
		seq[k]++;
		n = plx_lk_build(&c[k]->ss, 'C', op, 0,
				 (fl & 4) ? seq[k] + 1 : seq[k], args,
				 (uint32_t)len, frame);
		if (fl & 2)
			frame[n - 1] ^= 0x80;	/* a bad tag */
		if (fl & 8) {
			/* Feed the frame in two pieces. */
			lkd_conn_input(&d, c[k], frame, n / 2);
			if (lkd_conn_input(&d, c[k], frame + n / 2, n - n / 2))
				goto dropped;
		} else if (lkd_conn_input(&d, c[k], frame, n)) {
			goto dropped;
		}
		if (fl & 6)
			abort();	/* a forged frame was accepted */
		drain(c[k], seq[k], true);
		continue;
dropped:
		/*
		 * Only forged frames close a connection, or a BREAK of this
		 * host from the other connection.
		 */
		if (!(fl & 6) && !c[k]->dead)
			abort();
		lkd_conn_free(&d, c[k]);
		c[k] = NULL;
	}
	for (k = 0; k < 2; k++) {
		if (!c[k])
			continue;
		drain(c[k], seq[k], false);
		lkd_conn_free(&d, c[k]);
	}
	/* Job expiry (leases of 1 s here) and the forgetting of results. */
	lkd_conn_timeouts(&d, lkd_now_ms());
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ready || !size)
		return 0;
	if (data[0] & 1)
		fuzz_raw(data + 1, size - 1);
	else
		fuzz_records(data + 1, size - 1);
	return 0;
}
