// SPDX-License-Identifier: GPL-2.0
/*
 * Framing of the lock protocol (lockproto.h), shared by parallax-lockd and
 * its clients: building frames, checking headers and HMAC-SHA256 tags.
 * Documentation/lock-protocol.rst is the reference for people.
 */
#include <endian.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "lockproto.h"

static const char *const op_names[PLX_LK_OP_MAX] = {
	[PLX_LK_CHALLENGE] = "CHALLENGE",
	[PLX_LK_HELLO] = "HELLO",
	[PLX_LK_RENEW] = "RENEW",
	[PLX_LK_LOCK_VDI] = "LOCK_VDI",
	[PLX_LK_UNLOCK_VDI] = "UNLOCK_VDI",
	[PLX_LK_CLAIM_EXTENT] = "CLAIM_EXTENT",
	[PLX_LK_RELEASE_EXTENT] = "RELEASE_EXTENT",
	[PLX_LK_LOCK_REGISTRY] = "LOCK_REGISTRY",
	[PLX_LK_UNLOCK_REGISTRY] = "UNLOCK_REGISTRY",
	[PLX_LK_LOCK_BITMAP] = "LOCK_BITMAP",
	[PLX_LK_UNLOCK_BITMAP] = "UNLOCK_BITMAP",
	[PLX_LK_BREAK] = "BREAK",
	[PLX_LK_STATUS] = "STATUS",
	[PLX_LK_GC_POST] = "GC_POST",
	[PLX_LK_GC_RESULT] = "GC_RESULT",
	[PLX_LK_GC_FETCH] = "GC_FETCH",
	[PLX_LK_GC_DONE] = "GC_DONE",
};

static const char *const status_names[PLX_LK_STATUS_MAX] = {
	[PLX_LK_OK] = "OK",
	[PLX_LK_EINVAL] = "EINVAL",
	[PLX_LK_EBUSY] = "EBUSY",
	[PLX_LK_ENOENT] = "ENOENT",
	[PLX_LK_ESTALE] = "ESTALE",
	[PLX_LK_EPERM] = "EPERM",
	[PLX_LK_ENOSPC] = "ENOSPC",
	[PLX_LK_EIO] = "EIO",
	[PLX_LK_EPROTO] = "EPROTO",
	[PLX_LK_EAGAIN] = "EAGAIN",
};

const char *plx_lk_op_name(unsigned int op)
{
	if (op < PLX_LK_OP_MAX && op_names[op])
		return op_names[op];
	return "UNKNOWN_OP";
}

const char *plx_lk_status_name(unsigned int status)
{
	if (status < PLX_LK_STATUS_MAX)
		return status_names[status];
	return "UNKNOWN_STATUS";
}

uint32_t plx_lk_max_request(unsigned int op)
{
	/* Only a GC job carries a bitmap chunk; every other op stays small. */
	return op == PLX_LK_GC_POST ? PLX_LK_MAX_JOB_REQUEST :
		PLX_LK_MAX_REQUEST;
}

static void hdr_to_wire(const struct plx_lk_hdr *h, uint8_t *out)
{
	struct plx_lk_hdr w;

	w.magic = htobe32(h->magic);
	w.version = h->version;
	w.op = h->op;
	w.status = htobe16(h->status);
	w.seq = htobe32(h->seq);
	w.len = htobe32(h->len);
	memcpy(out, &w, sizeof(w));
}

/*
 * The tag covers client_nonce || server_nonce || dir || wire header ||
 * payload.  HMAC() is one-shot, so the pieces are put side by side first;
 * request payloads are tiny and fit on the stack, only large replies
 * (STATUS) need the heap.  Returns -1 if memory ran out, and then the
 * caller must treat the tag as not matching.
 */
#define MAC_PREFIX (2 * PLX_LK_NONCE_LEN + 1 + PLX_LK_HDR_LEN)

static int lk_mac_wire(const struct plx_lk_session *ss, char dir,
		       const uint8_t *wire_hdr, const void *payload,
		       uint32_t len, uint8_t mac[PLX_LK_MAC_LEN])
{
	uint8_t small[MAC_PREFIX + 256];
	uint8_t *buf = small;
	unsigned int mac_len = PLX_LK_MAC_LEN;
	size_t n = MAC_PREFIX + (size_t)len;
	int ret = 0;

	if (n > sizeof(small)) {
		buf = malloc(n);
		if (!buf) {
			memset(mac, 0, PLX_LK_MAC_LEN);
			return -1;
		}
	}
	memcpy(buf, ss->client_nonce, PLX_LK_NONCE_LEN);
	memcpy(buf + PLX_LK_NONCE_LEN, ss->server_nonce, PLX_LK_NONCE_LEN);
	buf[2 * PLX_LK_NONCE_LEN] = (uint8_t)dir;
	memcpy(buf + 2 * PLX_LK_NONCE_LEN + 1, wire_hdr, PLX_LK_HDR_LEN);
	if (len)
		memcpy(buf + MAC_PREFIX, payload, len);
	if (!HMAC(EVP_sha256(), ss->key, PLX_LK_KEY_LEN, buf, n, mac,
		  &mac_len) || mac_len != PLX_LK_MAC_LEN) {
		memset(mac, 0, PLX_LK_MAC_LEN);
		ret = -1;
	}
	if (buf != small)
		free(buf);
	return ret;
}

void plx_lk_mac(const struct plx_lk_session *ss, char dir,
		const struct plx_lk_hdr *hdr, const void *payload,
		uint8_t mac[PLX_LK_MAC_LEN])
{
	uint8_t wire[PLX_LK_HDR_LEN];

	hdr_to_wire(hdr, wire);
	lk_mac_wire(ss, dir, wire, payload, hdr->len, mac);
}

size_t plx_lk_build(const struct plx_lk_session *ss, char dir, uint8_t op,
		    uint16_t status, uint32_t seq, const void *payload,
		    uint32_t len, uint8_t *buf)
{
	struct plx_lk_hdr h = {
		.magic = PLX_LK_MAGIC,
		.version = PLX_LK_VERSION,
		.op = op,
		.status = status,
		.seq = seq,
		.len = len,
	};

	hdr_to_wire(&h, buf);
	if (len)
		memcpy(buf + PLX_LK_HDR_LEN, payload, len);
	lk_mac_wire(ss, dir, buf, payload, len, buf + PLX_LK_HDR_LEN + len);
	return PLX_LK_HDR_LEN + (size_t)len + PLX_LK_MAC_LEN;
}

int plx_lk_parse_hdr(const uint8_t *buf, uint32_t max_len,
		     struct plx_lk_hdr *out)
{
	struct plx_lk_hdr w;

	memcpy(&w, buf, sizeof(w));
	out->magic = be32toh(w.magic);
	out->version = w.version;
	out->op = w.op;
	out->status = be16toh(w.status);
	out->seq = be32toh(w.seq);
	out->len = be32toh(w.len);
	if (out->magic != PLX_LK_MAGIC || out->version != PLX_LK_VERSION)
		return -1;
	if (out->len > max_len)
		return -1;
	return 0;
}

bool plx_lk_verify(const struct plx_lk_session *ss, char dir,
		   const uint8_t *frame, const struct plx_lk_hdr *hdr)
{
	uint8_t mac[PLX_LK_MAC_LEN];

	/*
	 * The tag is computed over the header bytes as received, so a frame
	 * is accepted only if every byte of it is what its sender tagged.
	 */
	if (lk_mac_wire(ss, dir, frame, frame + PLX_LK_HDR_LEN, hdr->len, mac))
		return false;
	return CRYPTO_memcmp(mac, frame + PLX_LK_HDR_LEN + hdr->len,
			     PLX_LK_MAC_LEN) == 0;
}
