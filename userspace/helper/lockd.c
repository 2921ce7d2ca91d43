// SPDX-License-Identifier: GPL-2.0
/*
 * parallaxd's connection to parallax-lockd.
 *
 * The connection is made at start-up and again after every failure, with
 * a backoff of 1 s doubling to 10 s so that a dead lock manager costs a
 * failed connect() now and then, not a busy loop.  While it is down the
 * devices keep running on the extents they hold (they learn it through
 * "lockd unreachable", which their status shows); releases that could not
 * be sent are queued and sent on reconnection, and the extent policy then
 * catches up on claims it could not make.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "parallaxd.h"

bool pd_lk_up(struct pd *pd)
{
	return pd->lk != NULL;
}

static void lk_down(struct pd *pd, const char *why)
{
	/* Log once per outage: a dead lock manager must not flood the log. */
	if (!pd->lk_down_logged) {
		pd_log(PD_WARN, "lock manager %s unreachable: %s; devices keep their extents, retrying",
		       pd->lockd_addr[0] ? pd->lockd_addr : "(none configured)",
		       why);
		pd->lk_down_logged = true;
		pd_devs_lockd_word(pd, "unreachable");
	}
	pd->lk_next_try_ms = pd_now_ms() + pd->lk_backoff_ms;
	pd->lk_backoff_ms *= 2;
	if (pd->lk_backoff_ms > PD_BACKOFF_MAX_MS)
		pd->lk_backoff_ms = PD_BACKOFF_MAX_MS;
}

void pd_lk_drop(struct pd *pd, const char *why)
{
	if (pd->lk) {
		plx_lk_close(pd->lk);
		pd->lk = NULL;
	}
	pd->lk_backoff_ms = PD_BACKOFF_MIN_MS;
	lk_down(pd, why);
}

bool pd_lk_ensure(struct pd *pd, bool force)
{
	struct plx_lk_client *c;
	bool again;

	if (pd->lk)
		return true;
	if (!force && pd_now_ms() < pd->lk_next_try_ms)
		return false;
	/* The lock manager writes its address when it starts: follow it. */
	pd_refresh_lockd_addr(pd);
	if (!pd->lockd_addr[0]) {
		lk_down(pd, "the blockstore names no lock manager (lockd_addr is empty; see --lockd)");
		return false;
	}
	/* The helper flag: lockd relays this host's GC jobs to us. */
	c = plx_lk_connect_flags(pd->lockd_addr, pd->key, pd->host,
				 PLX_LK_HELLO_HELPER, PD_LK_TIMEOUT_MS);
	/*
	 * A lock manager older than online GC refuses any HELLO flag: serve
	 * the devices anyway; a GC then finds no parallaxd for this host
	 * and leaves its extents alone.
	 */
	pd->lk_gc = c != NULL;
	if (!c && strstr(plx_errmsg(), "HELLO refused: EINVAL")) {
		pd_log(PD_WARN, "lock manager %s does not relay GC jobs (%s); connecting without",
		       pd->lockd_addr, plx_errmsg());
		c = plx_lk_connect(pd->lockd_addr, pd->key, pd->host,
				   PD_LK_TIMEOUT_MS);
	}
	if (!c) {
		lk_down(pd, plx_errmsg());
		return false;
	}
	again = pd->lk_ever_up;
	pd->lk = c;
	pd->lk_ever_up = true;
	pd->lk_down_logged = false;
	pd->lk_backoff_ms = PD_BACKOFF_MIN_MS;
	pd->lease_ms = plx_lk_lease_ms(c);
	if (!pd->lease_ms)
		pd->lease_ms = PLX_LK_LEASE_MS;
	pd->lk_next_renew_ms = pd_now_ms() + pd->lease_ms / 3;
	pd_log(PD_INFO, "%s lock manager %s as host %u (lease %u ms)",
	       again ? "reconnected to" : "connected to", pd->lockd_addr,
	       pd->host, pd->lease_ms);
	pd_devs_lockd_word(pd, "connected");
	pd_pending_flush(pd);
	/* Claims deferred while it was away. */
	if (pd->lk)
		pd_devs_check(pd);
	return pd->lk != NULL;
}

int pd_lk_call(struct pd *pd, enum plx_lk_op op, u64 id, u64 gen, u32 type,
	       struct plx_lk_grant *grant, char *why, size_t why_len)
{
	return pd_lk_call_flags(pd, op, id, gen, type, 0, grant, why, why_len);
}

int pd_lk_call_flags(struct pd *pd, enum plx_lk_op op, u64 id, u64 gen,
		     u32 type, u32 flags, struct plx_lk_grant *grant,
		     char *why, size_t why_len)
{
	struct plx_lk_args args;
	struct plx_lk_grant g;
	int st;

	if (why && why_len)
		why[0] = '\0';
	if (!pd->lk)
		return -1;
	/* plx_lk_call converts to and from the big-endian wire format. */
	memset(&args, 0, sizeof(args));
	args.id = id;
	args.generation = gen;
	args.type = type;
	args.flags = flags;
	memset(&g, 0, sizeof(g));
	st = plx_lk_call(pd->lk, op, &args, &g, why, why_len);
	if (st < 0) {
		char msg[600];

		snprintf(msg, sizeof(msg), "%s: %s", plx_lk_op_name(op),
			 plx_errmsg());
		pd_lk_drop(pd, msg);
		return -1;
	}
	if (grant)
		*grant = g;
	if (why && why_len && st != PLX_LK_OK && !why[0])
		snprintf(why, why_len, "%s", plx_lk_status_name(st));
	return st;
}

void pd_lk_timer(struct pd *pd)
{
	char why[128];
	int st;

	if (!pd->lk) {
		pd_lk_ensure(pd, false);
		return;
	}
	if (pd_now_ms() < pd->lk_next_renew_ms)
		return;
	pd->lk_next_renew_ms = pd_now_ms() + pd->lease_ms / 3;
	st = pd_lk_call(pd, PLX_LK_RENEW, 0, 0, 0, NULL, why, sizeof(why));
	/* Once per streak of refusals, not every few seconds. */
	if (st > 0 && !pd->renew_refused_logged)
		pd_log(PD_WARN, "lease renewal refused: %s", why);
	if (st >= 0)
		pd->renew_refused_logged = st > 0;
}

void pd_lk_readable(struct pd *pd)
{
	/*
	 * The lock manager only ever answers requests, so an idle connection
	 * that polls readable was closed (or is misbehaving): drop it and
	 * reconnect, which also re-validates the HELLO.
	 */
	pd_lk_drop(pd, "the connection was closed");
}

static void pending_path(struct pd *pd, char *buf, size_t len)
{
	snprintf(buf, len, "%s/parallaxd.pending", pd->run_dir);
}

/*
 * The queue is small and changes rarely: rewrite it whole (tmp + rename)
 * so that a restart of parallaxd while the lock manager is away does not
 * forget releases, which would leave locks held until an administrator
 * broke them.
 */
static void pending_save(struct pd *pd)
{
	char path[4300], tmp[4310];
	unsigned int i;
	FILE *f;

	pending_path(pd, path, sizeof(path));
	if (!pd->nr_pending) {
		unlink(path);
		return;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		goto fail;
	for (i = 0; i < pd->nr_pending; i++)
		fprintf(f, "%s %llu %llu\n",
			pd->pending[i].op == PLX_LK_RELEASE_EXTENT ?
			"release_extent" :
			pd->pending[i].flags & PLX_LK_CLEAN ?
			"unlock_vdi_clean" : "unlock_vdi",
			(unsigned long long)pd->pending[i].id,
			(unsigned long long)pd->pending[i].gen);
	if (fflush(f) || fsync(fileno(f))) {
		fclose(f);
		goto fail;
	}
	if (fclose(f) || rename(tmp, path))
		goto fail;
	return;
fail:
	pd_log(PD_ERR, "cannot write %s: %s", path, strerror(errno));
	unlink(tmp);
}

void pd_pending_load(struct pd *pd)
{
	unsigned long long id, gen;
	char path[4300], op[32];
	FILE *f;

	pending_path(pd, path, sizeof(path));
	f = fopen(path, "r");
	if (!f)
		return;
	while (pd->nr_pending < PD_MAX_PENDING &&
	       fscanf(f, "%31s %llu %llu", op, &id, &gen) == 3) {
		struct pd_pending *p = &pd->pending[pd->nr_pending];

		p->flags = 0;
		if (!strcmp(op, "unlock_vdi_clean"))
			p->flags = PLX_LK_CLEAN;
		if (!strcmp(op, "unlock_vdi") || p->flags)
			p->op = PLX_LK_UNLOCK_VDI;
		else if (!strcmp(op, "release_extent"))
			p->op = PLX_LK_RELEASE_EXTENT;
		else
			continue;
		p->id = id;
		p->gen = gen;
		pd->nr_pending++;
	}
	fclose(f);
	if (pd->nr_pending)
		pd_log(PD_INFO, "%u release(s) from %s wait for the lock manager",
		       pd->nr_pending, path);
}

void pd_pending_add(struct pd *pd, enum plx_lk_op op, u64 id, u64 gen,
		    u32 flags)
{
	if (pd->nr_pending == PD_MAX_PENDING) {
		pd_log(PD_ERR, "too many releases waiting for the lock manager; %s %llu stays held until an administrator breaks it",
		       plx_lk_op_name(op), (unsigned long long)id);
		return;
	}
	pd->pending[pd->nr_pending].op = op;
	pd->pending[pd->nr_pending].id = id;
	pd->pending[pd->nr_pending].gen = gen;
	pd->pending[pd->nr_pending].flags = flags;
	pd->nr_pending++;
	pending_save(pd);
}

void pd_pending_flush(struct pd *pd)
{
	struct plx_lk_grant g;
	char why[200];
	unsigned int i = 0, before = pd->nr_pending;
	int st;

	while (i < pd->nr_pending && pd->lk) {
		struct pd_pending *p = &pd->pending[i];

		st = pd_lk_call_flags(pd, p->op, p->id, p->gen, 0, p->flags,
				      &g, why, sizeof(why));
		if (st < 0)
			break;		/* down again; keep the rest */
		if (st == PLX_LK_EBUSY && p->op == PLX_LK_UNLOCK_VDI &&
		    (g.type & PLX_LK_CACHE))
			pd_log_kept_dirty(p->id, why);
		else if (st == PLX_LK_OK)
			pd_log(PD_INFO, "deferred %s %llu (generation %llu) done",
			       plx_lk_op_name(p->op),
			       (unsigned long long)p->id,
			       (unsigned long long)p->gen);
		else
			/* Fenced or already released: nothing left to undo. */
			pd_log(PD_WARN, "deferred %s %llu (generation %llu): %s",
			       plx_lk_op_name(p->op),
			       (unsigned long long)p->id,
			       (unsigned long long)p->gen, why);
		memmove(p, p + 1, (pd->nr_pending - i - 1) * sizeof(*p));
		pd->nr_pending--;
	}
	if (pd->nr_pending != before)
		pending_save(pd);
}
