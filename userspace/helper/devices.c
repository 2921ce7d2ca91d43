// SPDX-License-Identifier: GPL-2.0
/*
 * The devices parallaxd manages: attach and detach, the extent policy and
 * the state files that let a restarted daemon adopt its devices.
 *
 * Every grant is made by the lock manager, which writes it to disk before
 * it replies; the target re-reads the VDI record (lock_gen) and the
 * catalogue entry (add_extent E G) from disk and refuses a grant whose
 * generation has moved on, so parallaxd never needs to write the store.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libdevmapper.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dmdev.h"
#include "parallaxd.h"

#define STATE_SUFFIX	".parallaxd"

struct pd_dev *pd_dev_find(struct pd *pd, const char *name)
{
	struct pd_dev *d;

	for (d = pd->devs; d; d = d->next)
		if (!strcmp(d->name, name))
			return d;
	return NULL;
}

static void dev_unlink(struct pd *pd, struct pd_dev *gone)
{
	struct pd_dev **p;

	for (p = &pd->devs; *p; p = &(*p)->next) {
		if (*p == gone) {
			*p = gone->next;
			return;
		}
	}
}

/* ---- State files -------------------------------------------------------- */

static bool same_store(struct pd *pd, const char *path);

static void state_path(struct pd *pd, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s" STATE_SUFFIX, pd->run_dir, name);
}

/*
 * Written whole to a temporary file, synced and renamed, so that a crash
 * leaves either the old or the new state, never half of one.
 */
int pd_state_save(struct pd *pd, const struct pd_dev *d)
{
	char path[4400], tmp[4410];
	unsigned int i;
	FILE *f;

	state_path(pd, d->name, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		goto fail;
	fprintf(f, "store %s\nvdi %llu\nmode %s\nlock_gen %llu\n",
		pd->dev_path, (unsigned long long)d->vdi, d->rw ? "rw" : "ro",
		(unsigned long long)d->lock_gen);
	if (d->pending)
		fprintf(f, "pending %llu %llu\n",
			(unsigned long long)d->wait_until,
			(unsigned long long)d->sectors);
	if (d->stale)
		fprintf(f, "stale\n");
	if (d->cache[0])
		fprintf(f, "cache %s %s\n", d->cache,
			d->cache_mode[0] ? d->cache_mode : "-");
	for (i = 0; i < d->nr; i++)
		fprintf(f, "extent %llu %llu %c\n",
			(unsigned long long)d->ext[i].id,
			(unsigned long long)d->ext[i].gen,
			d->ext[i].metadata ? 'm' : 'd');
	if (fflush(f) || fsync(fileno(f))) {
		fclose(f);
		goto fail;
	}
	if (fclose(f) || rename(tmp, path))
		goto fail;
	return 0;
fail:
	pd_log(PD_ERR, "cannot write %s: %s", path, strerror(errno));
	unlink(tmp);
	return -1;
}

static void state_remove(struct pd *pd, const char *name)
{
	char path[4400];

	state_path(pd, name, path, sizeof(path));
	if (unlink(path) && errno != ENOENT)
		pd_log(PD_WARN, "cannot remove %s: %s", path, strerror(errno));
}

static struct pd_dev *state_load(struct pd *pd, const char *name)
{
	unsigned long long a, b;
	char path[4400], line[4400], mode[8], kind;
	struct pd_dev *d;
	FILE *f;
	bool have_vdi = false, have_mode = false, other_store = false;

	state_path(pd, name, path, sizeof(path));
	f = fopen(path, "r");
	if (!f) {
		pd_log(PD_WARN, "cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		fclose(f);
		return NULL;
	}
	snprintf(d->name, sizeof(d->name), "%s", name);
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "store ", 6)) {
			line[strcspn(line, "\n")] = '\0';
			other_store = !same_store(pd, line + 6);
		} else if (sscanf(line, "vdi %llu", &a) == 1) {
			d->vdi = a;
			have_vdi = true;
		} else if (sscanf(line, "mode %7s", mode) == 1) {
			d->rw = !strcmp(mode, "rw");
			have_mode = d->rw || !strcmp(mode, "ro");
		} else if (sscanf(line, "lock_gen %llu", &a) == 1) {
			d->lock_gen = a;
		} else if (sscanf(line, "pending %llu %llu", &a, &b) == 2) {
			d->pending = true;
			d->wait_until = a;
			d->sectors = b;
		} else if (!strcmp(line, "stale\n")) {
			d->stale = true;
		} else if (!strncmp(line, "cache ", 6)) {
			char path[PD_CACHE_PATH_LEN], cmode[16];

			if (sscanf(line, "cache %1023s %15s", path, cmode) == 2) {
				snprintf(d->cache, sizeof(d->cache), "%s", path);
				snprintf(d->cache_mode, sizeof(d->cache_mode),
					 "%s", strcmp(cmode, "-") ? cmode : "");
			}
		} else if (sscanf(line, "extent %llu %llu %c", &a, &b,
				  &kind) == 3 && d->nr < PD_MAX_EXTENTS) {
			d->ext[d->nr].id = a;
			d->ext[d->nr].gen = b;
			d->ext[d->nr].metadata = kind == 'm';
			d->nr++;
		}
	}
	fclose(f);
	if (other_store) {
		/* A run dir shared with the parallaxd of another store. */
		pd_log(PD_INFO, "%s belongs to another blockstore; leaving it",
		       path);
		free(d);
		return NULL;
	}
	if (!have_vdi || !have_mode || (d->pending && !d->rw)) {
		pd_log(PD_WARN, "%s is damaged; ignoring it", path);
		free(d);
		return NULL;
	}
	return d;
}

/* ---- Lock manager helpers ---------------------------------------------- */

void pd_log_kept_dirty(u64 vdi, const char *why)
{
	/* The log was not verified empty: the VDI stays with this host. */
	pd_log(PD_ERR, "VDI %llu stays locked by this host: %s; attach it again with its local cache to replay and drain the log",
	       (unsigned long long)vdi, why);
}

/* Release now, or queue the release for when the lock manager is back. */
static void release_flags(struct pd *pd, enum plx_lk_op op, u64 id, u64 gen,
			  u32 flags, unsigned int *deferred)
{
	struct plx_lk_grant g = { 0 };
	char why[200];
	int st = -1;

	if (pd_lk_up(pd))
		st = pd_lk_call_flags(pd, op, id, gen, 0, flags, &g, why,
				      sizeof(why));
	if (st < 0) {
		pd_pending_add(pd, op, id, gen, flags);
		if (deferred)
			(*deferred)++;
	} else if (st == PLX_LK_EBUSY && op == PLX_LK_UNLOCK_VDI &&
		   (g.type & PLX_LK_CACHE)) {
		pd_log_kept_dirty(id, why);
	} else if (st != PLX_LK_OK) {
		/* Fenced meanwhile: the lock is no longer ours to release. */
		pd_log(PD_WARN, "%s %llu (generation %llu): %s",
		       plx_lk_op_name(op), (unsigned long long)id,
		       (unsigned long long)gen, why);
	}
}

static void release_or_defer(struct pd *pd, enum plx_lk_op op, u64 id,
			     u64 gen, unsigned int *deferred)
{
	release_flags(pd, op, id, gen, 0, deferred);
}

/*
 * Release every lock of @d (its device is gone); count deferred ones.
 * @clean: its local cache's log was verified empty before the device
 * went, so the VDI's cache-dirty mark may go with the lock.
 */
static unsigned int release_all(struct pd *pd, struct pd_dev *d, bool clean)
{
	unsigned int i, deferred = 0;

	/* A device waiting for a hand-over (or given up) holds nothing. */
	if (!d->rw || d->pending)
		return 0;
	for (i = 0; i < d->nr; i++)
		release_or_defer(pd, PLX_LK_RELEASE_EXTENT, d->ext[i].id,
				 d->ext[i].gen, &deferred);
	release_flags(pd, PLX_LK_UNLOCK_VDI, d->vdi, d->lock_gen,
		      clean ? PLX_LK_CLEAN : 0, &deferred);
	return deferred;
}

static const char *type_name(bool metadata)
{
	return metadata ? "metadata" : "data";
}

/*
 * Claim one extent of a type for @d and grant it to the device.  Returns 0
 * if granted, -1 otherwise (logged by the caller's policy or here).
 */
static int claim_one(struct pd *pd, struct pd_dev *d, bool metadata,
		     char *err, size_t err_len)
{
	struct plx_lk_grant g;
	char why[128], msg[80];
	int st;

	if (d->nr == PD_MAX_EXTENTS) {
		snprintf(err, err_len, "device %s already holds %d extents",
			 d->name, PD_MAX_EXTENTS);
		return -1;
	}
	st = pd_lk_call(pd, PLX_LK_CLAIM_EXTENT, 0, 0,
			metadata ? PLX_EXT_METADATA : PLX_EXT_DATA, &g, why,
			sizeof(why));
	if (st < 0) {
		snprintf(err, err_len, "lock manager %s unreachable",
			 pd->lockd_addr);
		return -1;
	}
	if (st == PLX_LK_ENOSPC) {
		snprintf(err, err_len, "no %s extent is free: %s",
			 type_name(metadata), why);
		return -2;
	}
	if (st != PLX_LK_OK) {
		snprintf(err, err_len, "cannot claim a %s extent: %s",
			 type_name(metadata), why);
		return -1;
	}
	snprintf(msg, sizeof(msg), "add_extent %llu %llu",
		 (unsigned long long)g.id, (unsigned long long)g.generation);
	if (plx_dm_message(d->name, msg, NULL, 0)) {
		snprintf(err, err_len, "device %s refused extent %llu generation %llu: %s",
			 d->name, (unsigned long long)g.id,
			 (unsigned long long)g.generation, strerror(errno));
		release_or_defer(pd, PLX_LK_RELEASE_EXTENT, g.id, g.generation,
				 NULL);
		return -1;
	}
	d->ext[d->nr].id = g.id;
	d->ext[d->nr].gen = g.generation;
	d->ext[d->nr].metadata = metadata;
	d->nr++;
	return 0;
}

u64 pd_spare_blocks(const struct pd *pd)
{
	return pd->extent_blocks * pd->spare_pct / 100;
}

/* ---- Attach and detach ------------------------------------------------- */

static bool same_store(struct pd *pd, const char *path)
{
	struct stat st;

	if (stat(path, &st))
		return false;
	if (pd->dev_is_blk)
		return S_ISBLK(st.st_mode) && st.st_rdev == pd->dev_rdev;
	return S_ISREG(st.st_mode) && st.st_dev == pd->dev_dev &&
	       st.st_ino == pd->dev_ino;
}

/* The VDI's id and size, read from the store (an id or a name). */
static int vdi_lookup(struct pd *pd, const char *arg, u64 *id, u64 *size,
		      char *err, size_t err_len)
{
	struct plx_vdi_record *v;
	struct plx_store *s;
	int r = -1;

	s = plx_open(pd->dev_path, PLX_OPEN_RDONLY);
	if (!s) {
		snprintf(err, err_len, "%s", plx_errmsg());
		return -1;
	}
	if (plx_resolve_vdi(s, arg, id)) {
		snprintf(err, err_len, "%s", plx_errmsg());
		goto out;
	}
	v = plx_vdi_get(s, *id);
	if (!v) {
		snprintf(err, err_len, "%s", plx_errmsg());
		goto out;
	}
	*size = le64_to_cpu(v->size);
	r = 0;
out:
	plx_close(s);
	return r;
}

u64 pd_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (u64)ts.tv_sec * 1000 + (u64)ts.tv_nsec / 1000000;
}

/*
 * The read-write table of @d: low_water counts data and metadata together
 * and fires once per grant: a spare plus one extent makes the event come
 * about when one type falls below the spare while the other is still
 * near a full extent; the one-second tick covers the other cases.
 */
static void rw_params(struct pd *pd, const struct pd_dev *d, char *buf,
		      size_t len)
{
	unsigned int nopts = 6 + (d->cache[0] ? 2 : 0) +
		(d->cache_mode[0] ? 2 : 0);
	size_t n;

	n = snprintf(buf, len, "%s %llu %u host_id %u lock_gen %llu low_water %llu",
		     pd->dev_path, (unsigned long long)d->vdi, nopts, pd->host,
		     (unsigned long long)d->lock_gen,
		     (unsigned long long)(pd_spare_blocks(pd) +
					  pd->extent_blocks));
	if (d->cache[0] && n < len)
		n += snprintf(buf + n, len - n, " local_cache %s", d->cache);
	if (d->cache_mode[0] && n < len)
		snprintf(buf + n, len - n, " local_cache_mode %s",
			 d->cache_mode);
}

/*
 * LOCK_VDI for a read-write @d.  With a local cache, first without the
 * flag, to learn whether the VDI is already marked (this host's log from
 * before a crash: then only this host may drain it), then with
 * PLX_LK_CACHE, so that the mark is on disk before the table exists.  A
 * lock manager that does not mark it does not know local caches.  A VDI
 * marked but attached without a cache would be served without the
 * writes in the log: refused.  Returns the lock manager's status (EBUSY
 * with @g->holder), -1 if unreachable, -2 (@why set) if refused here
 * (the lock stays, marked), or -3 if the lock manager is too old; then
 * *@held is the lock generation held if the first request was granted.
 * *@was_dirty tells whether the VDI was marked before this attach.
 */
static int lock_vdi(struct pd *pd, struct pd_dev *d, struct plx_lk_grant *g,
		    bool *was_dirty, u64 *held, char *why, size_t why_len)
{
	int st;

	*was_dirty = false;
	*held = 0;
	st = pd_lk_call(pd, PLX_LK_LOCK_VDI, d->vdi, 0, 0, g, why, why_len);
	if (st != PLX_LK_OK)
		return st;
	*held = g->generation;
	*was_dirty = g->type & PLX_LK_CACHE;
	if (!d->cache[0]) {
		if (!*was_dirty)
			return PLX_LK_OK;
		snprintf(why, why_len, "VDI %llu has writes in this host's local write cache that are not on the store (the lock manager marks it cache-dirty); attach it with that cache to replay and drain them",
			 (unsigned long long)d->vdi);
		return -2;
	}
	st = pd_lk_call_flags(pd, PLX_LK_LOCK_VDI, d->vdi, 0, 0, PLX_LK_CACHE,
			      g, why, why_len);
	if (st == PLX_LK_OK && !(g->type & PLX_LK_CACHE)) {
		snprintf(why, why_len, "lock manager %s does not know local write caches (it did not mark VDI %llu cache-dirty); upgrade it, or attach without a cache",
			 pd->lockd_addr, (unsigned long long)d->vdi);
		return -3;
	}
	return st;
}

/* Undo a failed rw attach: device, extents, VDI lock. */
static void attach_undo(struct pd *pd, struct pd_dev *d, bool created,
			bool clean)
{
	u64 left;

	/* A table that had the cache may have logged (or replayed) writes. */
	if (created && d->cache[0] && !d->pending)
		clean = plx_dm_drain_for_release(&plx_dm_real_ops, d->name,
						 d->vdi, &left) == 1;
	if (created && plx_dm_remove(d->name))
		pd_log(PD_ERR, "cannot remove %s after a failed attach: %s",
		       d->name, plx_errmsg());
	if (d->rw && d->lock_gen)
		release_all(pd, d, clean);
}

int pd_attach(struct pd *pd, const char *store, const char *vdi_arg,
	      const char *name, const char *mode, unsigned int wait_s,
	      const char *cache, const char *cache_mode,
	      char *ok, size_t ok_len, char *err, size_t err_len)
{
	struct plx_lk_grant g;
	struct pd_dev *d;
	char params[4400], why[400];
	bool created = false, was_dirty = false;
	u64 size, held = 0;
	int st;

	if (!plx_dm_name_ok(name)) {
		snprintf(err, err_len, "'%s' is not a valid device name", name);
		return -1;
	}
	if (strcmp(mode, "rw") && strcmp(mode, "ro")) {
		snprintf(err, err_len, "mode must be rw or ro, not '%s'", mode);
		return -1;
	}
	if (wait_s && strcmp(mode, "rw")) {
		snprintf(err, err_len, "wait= is for read-write attaches only");
		return -1;
	}
	if ((cache || cache_mode) && strcmp(mode, "rw")) {
		snprintf(err, err_len, "cache= is for read-write attaches only");
		return -1;
	}
	if (cache_mode && !cache) {
		snprintf(err, err_len, "cache_mode= needs cache=");
		return -1;
	}
	if (cache && (!*cache || strlen(cache) >= PD_CACHE_PATH_LEN)) {
		snprintf(err, err_len, "cache= needs a log device path shorter than %d bytes",
			 PD_CACHE_PATH_LEN);
		return -1;
	}
	if (cache_mode && strcmp(cache_mode, "always") &&
	    strcmp(cache_mode, "adaptive")) {
		snprintf(err, err_len, "cache_mode= is always or adaptive, not '%.32s'",
			 cache_mode);
		return -1;
	}
	if (!same_store(pd, store)) {
		snprintf(err, err_len, "%s is not the blockstore this parallaxd serves (%s)",
			 store, pd->dev_path);
		return -1;
	}
	if (pd_dev_find(pd, name) || plx_dm_exists(name)) {
		snprintf(err, err_len, "device %s already exists", name);
		return -1;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, err_len, "out of memory");
		return -1;
	}
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->rw = !strcmp(mode, "rw");
	if (cache)
		snprintf(d->cache, sizeof(d->cache), "%s", cache);
	if (cache_mode)
		snprintf(d->cache_mode, sizeof(d->cache_mode), "%s",
			 cache_mode);
	if (vdi_lookup(pd, vdi_arg, &d->vdi, &size, err, err_len))
		goto fail;

	if (!d->rw) {
		snprintf(params, sizeof(params), "%s %llu 1 read_only",
			 pd->dev_path, (unsigned long long)d->vdi);
		if (plx_dm_create(name, size >> 9, params, true,
				  pd->sb.hdr.uuid, d->vdi)) {
			snprintf(err, err_len, "%s", plx_errmsg());
			goto fail;
		}
		created = true;
		goto done;
	}

	if (!pd_lk_ensure(pd, true)) {
		snprintf(err, err_len, "lock manager %s is unreachable; cannot lock VDI %llu (read-only attach needs no lock)",
			 pd->lockd_addr[0] ? pd->lockd_addr : "(none configured)",
			 (unsigned long long)d->vdi);
		goto fail;
	}
	st = lock_vdi(pd, d, &g, &was_dirty, &held, why, sizeof(why));
	if (st == -2) {
		/* Held by this host before: keep it, with its mark. */
		snprintf(err, err_len, "%s", why);
		goto fail;
	}
	if (st == -3) {
		d->lock_gen = held;
		snprintf(err, err_len, "%s", why);
		goto fail;
	}
	if (st == PLX_LK_EBUSY) {
		struct pd_dev *o;

		for (o = pd->devs; o && !(o->rw && o->vdi == d->vdi); o = o->next)
			;
		if (o)
			snprintf(err, err_len, "VDI %llu is held by host %u (this host: attached as %s)",
				 (unsigned long long)d->vdi, g.holder, o->name);
		else if (wait_s)
			goto wait;
		else if (g.type & PLX_LK_CACHE)
			snprintf(err, err_len, "VDI %llu is held by host %u, whose local write cache holds writes not on the store yet: that host must attach it again with its cache, which drains them; neither fencing nor a lapsed lease frees it (parallax unlock --vdi %llu --discard-cache breaks it, losing those writes)",
				 (unsigned long long)d->vdi, g.holder,
				 (unsigned long long)d->vdi);
		else
			snprintf(err, err_len, "VDI %llu is held by host %u",
				 (unsigned long long)d->vdi, g.holder);
		goto fail;
	}
	if (st != PLX_LK_OK) {
		snprintf(err, err_len, "cannot lock VDI %llu: %s",
			 (unsigned long long)d->vdi,
			 st < 0 ? "lock manager unreachable" : why);
		/* The first LOCK_VDI was granted: release it. */
		d->lock_gen = held;
		goto fail;
	}
	d->lock_gen = g.generation;
	rw_params(pd, d, params, sizeof(params));
	if (plx_dm_create(name, size >> 9, params, false, pd->sb.hdr.uuid,
			  d->vdi)) {
		snprintf(err, err_len, "%s", plx_errmsg());
		goto fail;
	}
	created = true;
	if (claim_one(pd, d, false, err, err_len) ||
	    claim_one(pd, d, true, err, err_len))
		goto fail;
	pd_dev_lockd_word_one(d, "connected");
	goto done;

wait:
	/*
	 * Live migration: the source still holds the VDI.  Make the device
	 * now, read-only (its table is not read-only at the dm level, so
	 * that writes reach device-mapper) and suspended without a flush,
	 * so that its I/O waits until the source lets go and the read-write
	 * table replaces this one (pd_devs_handover).
	 */
	d->pending = true;
	d->holder = g.holder;
	d->sectors = size >> 9;
	d->wait_until = pd_wall_ms() + (u64)wait_s * 1000;
	snprintf(params, sizeof(params), "%s %llu 1 read_only", pd->dev_path,
		 (unsigned long long)d->vdi);
	if (plx_dm_create(name, size >> 9, params, false, pd->sb.hdr.uuid,
			  d->vdi)) {
		snprintf(err, err_len, "%s", plx_errmsg());
		goto fail;
	}
	created = true;
	if (plx_dm_suspend_noflush(name)) {
		snprintf(err, err_len, "%s", plx_errmsg());
		goto fail;
	}
done:
	if (pd_state_save(pd, d)) {
		snprintf(err, err_len, "cannot save the state of %s in %s",
			 name, pd->run_dir);
		goto fail;
	}
	d->next = pd->devs;
	pd->devs = d;
	if (d->pending)
		pd_log(PD_INFO, "attached VDI %llu as %s, read-only and suspended until host %u hands it over (waiting up to %u s)",
		       (unsigned long long)d->vdi, name, d->holder, wait_s);
	else if (d->rw)
		pd_log(PD_INFO, "attached VDI %llu as %s (rw, lock generation %llu, %u extents)",
		       (unsigned long long)d->vdi, name,
		       (unsigned long long)d->lock_gen, d->nr);
	else
		pd_log(PD_INFO, "attached VDI %llu as %s (ro)",
		       (unsigned long long)d->vdi, name);
	snprintf(ok, ok_len, "%s/%s%s", dm_dir(), name,
		 d->pending ? " pending" : "");
	return 0;
fail:
	/*
	 * Nothing reached a log this attach did not create, so a mark it
	 * set may go; a mark from before (a crash) stays until drained.
	 */
	attach_undo(pd, d, created, !was_dirty);
	state_remove(pd, name);
	pd_log(PD_WARN, "attach %s (VDI %s, %s) failed: %s", name, vdi_arg,
	       mode, err);
	free(d);
	return -1;
}

static void check_one(struct pd *pd, struct pd_dev *d);

/*
 * While a detach drains the log: the drain may need more extents than
 * the table holds, and a long one must not let the lease run out.
 */
struct drain_serve {
	struct pd *pd;
	struct pd_dev *d;
};

static void drain_serve(void *arg)
{
	struct drain_serve *ds = arg;

	check_one(ds->pd, ds->d);
	pd_lk_timer(ds->pd);	/* renews the lease when it is due */
}

int pd_detach(struct pd *pd, const char *name, char *err, size_t err_len)
{
	struct pd_dev *d = pd_dev_find(pd, name);
	unsigned int deferred;
	bool clean = false;
	u64 left;
	int r;

	if (!d) {
		snprintf(err, err_len, "device %s is not managed by this parallaxd",
			 name);
		return -1;
	}
	/* Queued I/O then fails on the read-only table instead of waiting. */
	if (d->pending && plx_dm_suspended(name) && plx_dm_resume(name))
		pd_log(PD_WARN, "%s", plx_errmsg());
	/*
	 * Leaving the host (detach, or the source side of a migration): a
	 * local cache's log must be empty before the lock goes, or another
	 * host would run the VDI without the writes it holds.  The table
	 * says whether there is one, whatever the state file says.
	 */
	if (d->rw && !d->pending && plx_dm_exists(name)) {
		struct drain_serve ds = { .pd = pd, .d = d };

		r = plx_dm_drain_for_release_serving(&plx_dm_real_ops, name,
						     d->vdi, &left,
						     drain_serve, &ds);
		if (r < 0) {
			snprintf(err, err_len, "%s", plx_errmsg());
			pd_log(PD_ERR, "detach %s refused: %s", name, err);
			return -1;
		}
		clean = r == 1;
	}
	if (plx_dm_exists(name) && plx_dm_remove(name)) {
		snprintf(err, err_len, "cannot remove device %s (is it in use?): %s",
			 name, strerror(errno));
		/* Drained and suspended above: let it serve again. */
		if (plx_dm_suspended(name) && plx_dm_resume(name))
			pd_log(PD_WARN, "%s", plx_errmsg());
		return -1;
	}
	deferred = release_all(pd, d, clean);
	state_remove(pd, name);
	dev_unlink(pd, d);
	pd_log(PD_INFO, "detached %s (VDI %llu)%s", name,
	       (unsigned long long)d->vdi,
	       deferred ? "; releases deferred until the lock manager returns" : "");
	if (deferred) {
		snprintf(err, err_len, "device %s removed, but lock manager %s is unreachable: %u release(s) of VDI %llu and its extents will be made when it returns",
			 name, pd->lockd_addr, deferred,
			 (unsigned long long)d->vdi);
		free(d);
		return -1;
	}
	free(d);
	return 0;
}

void pd_status(struct pd *pd, int out)
{
	struct pd_dev *d;
	unsigned int i;

	pd_ctl_printf(out, "lockd %s %s\n",
		      pd->lockd_addr[0] ? pd->lockd_addr : "-",
		      pd_lk_up(pd) ? "connected" : "unreachable");
	pd_ctl_printf(out, "host %u\n", pd->host);
	for (d = pd->devs; d; d = d->next) {
		char list[PD_MAX_EXTENTS * 42 + 2] = "";
		size_t n = 0;

		for (i = 0; i < d->nr; i++)
			n += snprintf(list + n, sizeof(list) - n, "%s%llu:%llu",
				      i ? "," : "",
				      (unsigned long long)d->ext[i].id,
				      (unsigned long long)d->ext[i].gen);
		pd_ctl_printf(out, "device %s vdi %llu %s lock_gen %llu extents %s%s\n",
			      d->name, (unsigned long long)d->vdi,
			      d->rw ? "rw" : "ro",
			      (unsigned long long)d->lock_gen,
			      d->nr ? list : "-",
			      d->pending ? " pending" : d->stale ? " stale" : "");
	}
	if (pd->nr_pending)
		pd_ctl_printf(out, "pending %u\n", pd->nr_pending);
}

/* ---- Adoption after a restart ----------------------------------------- */

void pd_adopt(struct pd *pd)
{
	struct dirent *de;
	DIR *dir = opendir(pd->run_dir);
	size_t sl = strlen(STATE_SUFFIX);

	if (!dir)
		return;
	while ((de = readdir(dir))) {
		char name[DM_NAME_LEN + sizeof(STATE_SUFFIX)], type[32];
		size_t n = strlen(de->d_name);
		struct pd_dev *d;

		if (n <= sl || strcmp(de->d_name + n - sl, STATE_SUFFIX) ||
		    n - sl >= DM_NAME_LEN)
			continue;
		memcpy(name, de->d_name, n - sl);
		name[n - sl] = '\0';
		if (!plx_dm_name_ok(name) || pd_dev_find(pd, name))
			continue;
		d = state_load(pd, name);
		if (!d)
			continue;
		if (!plx_dm_exists(name) ||
		    plx_dm_target(name, type, sizeof(type), NULL) ||
		    strcmp(type, "parallax")) {
			/*
			 * Removed behind our back (or the host rebooted with
			 * a persistent run dir): nobody uses its locks now.
			 */
			pd_log(PD_INFO, "%s no longer exists; releasing what it held",
			       name);
			if (d->cache[0])
				pd_log(PD_WARN, "%s had the local cache %s: unless its log was drained, the lock manager keeps VDI %llu locked by this host until it is attached again with that cache",
				       name, d->cache,
				       (unsigned long long)d->vdi);
			release_all(pd, d, false);
			state_remove(pd, name);
			free(d);
			continue;
		}
		d->next = pd->devs;
		pd->devs = d;
		pd_log(PD_INFO, "adopted %s (VDI %llu, %s, %u extents)", name,
		       (unsigned long long)d->vdi,
		       d->pending ? "waiting for a hand-over" :
		       d->stale ? "stale" : d->rw ? "rw" : "ro", d->nr);
	}
	closedir(dir);
}

/* ---- Extent policy ------------------------------------------------------ */

void pd_dev_lockd_word_one(struct pd_dev *d, const char *word)
{
	char msg[64];

	snprintf(msg, sizeof(msg), "lockd %s", word);
	/* An older target without the message: nothing to show it in. */
	if (plx_dm_message(d->name, msg, NULL, 0))
		pd_log(PD_DEBUG, "%s: %s", d->name, plx_errmsg());
}

void pd_devs_lockd_word(struct pd *pd, const char *word)
{
	struct pd_dev *d;

	/* A device waiting for a hand-over runs a read_only table. */
	for (d = pd->devs; d; d = d->next)
		if (d->rw && !d->pending)
			pd_dev_lockd_word_one(d, word);
}

static int ext_index(const struct pd_dev *d, u64 id)
{
	unsigned int i;

	for (i = 0; i < d->nr; i++)
		if (d->ext[i].id == id)
			return (int)i;
	return -1;
}

static void ext_drop(struct pd_dev *d, unsigned int i)
{
	memmove(&d->ext[i], &d->ext[i + 1], (d->nr - i - 1) * sizeof(d->ext[0]));
	d->nr--;
}

/*
 * The catalogue entry of extent @ext as on disk now, or -1.  Used only to
 * recover a grant the target holds but the state file missed (parallaxd
 * stopped between add_extent and saving).
 */
static int read_cat_entry(struct pd *pd, u64 ext, struct plx_extent_entry *e)
{
	union {
		u8 raw[PLX_BLOCK_SIZE];
		struct plx_catalogue_block cb;
	} blk;
	u64 nr = le64_to_cpu(pd->sb.catalogue_start) +
		 ext / PLX_CATALOGUE_PER_BLOCK;

	if (ext >= le64_to_cpu(pd->sb.nr_extents) ||
	    pd_read_block(pd, nr, blk.raw) ||
	    plx_block_verify(blk.raw, PLX_MAGIC_CATALOGUE, nr,
			     pd->sb.hdr.uuid))
		return -1;
	*e = blk.cb.entries[ext % PLX_CATALOGUE_PER_BLOCK];
	return 0;
}

/* A grant of the target missing from our list: take it over if ours. */
static bool adopt_grant(struct pd *pd, struct pd_dev *d,
			const struct plx_dm_extent *k)
{
	struct plx_extent_entry e;

	if (d->nr == PD_MAX_EXTENTS || read_cat_entry(pd, k->extent, &e) ||
	    le32_to_cpu(e.holder) != pd->host) {
		pd_log(PD_WARN, "%s: the target holds extent %llu, which is not this host's on disk; leaving it",
		       d->name, (unsigned long long)k->extent);
		return false;
	}
	d->ext[d->nr].id = k->extent;
	d->ext[d->nr].gen = le64_to_cpu(e.generation);
	d->ext[d->nr].metadata = k->metadata;
	d->nr++;
	pd_log(PD_INFO, "%s: recovered extent %llu (generation %llu) missing from the state file",
	       d->name, (unsigned long long)k->extent,
	       (unsigned long long)le64_to_cpu(e.generation));
	return true;
}

/*
 * Follow the target's own list of grants: extents it dropped (fenced:
 * the catalogue names another host or generation) are no longer ours,
 * and a full extent is released once the device holds another of its
 * type with room, so that the garbage collector can reclaim it and other
 * hosts can allocate from what it frees.
 */
static bool sync_extents(struct pd *pd, struct pd_dev *d)
{
	struct plx_dm_extent k[PD_MAX_EXTENTS];
	char answer[PD_MAX_EXTENTS * 48], msg[64];
	bool changed = false, room[2] = { false, false };
	unsigned int i;
	int n, j;

	if (plx_dm_message(d->name, "extents", answer, sizeof(answer)))
		return false;
	n = plx_dm_parse_extents(answer, k, PD_MAX_EXTENTS);
	if (n < 0) {
		pd_log(PD_WARN, "%s: %s", d->name, plx_errmsg());
		return false;
	}
	for (i = 0; i < d->nr;) {
		for (j = 0; j < n && k[j].extent != d->ext[i].id; j++)
			;
		if (j == n) {
			pd_log(PD_WARN, "%s: extent %llu (generation %llu) was taken away (fenced)",
			       d->name, (unsigned long long)d->ext[i].id,
			       (unsigned long long)d->ext[i].gen);
			ext_drop(d, i);
			changed = true;
			continue;
		}
		i++;
	}
	for (j = 0; j < n; j++) {
		if (ext_index(d, k[j].extent) < 0 && !d->foreign_logged &&
		    adopt_grant(pd, d, &k[j]))
			changed = true;
		if (k[j].free)
			room[k[j].metadata] = true;
	}
	d->foreign_logged = true;
	for (j = 0; j < n; j++) {
		int idx;

		if (k[j].free || !room[k[j].metadata])
			continue;
		idx = ext_index(d, k[j].extent);
		if (idx < 0)
			continue;	/* not granted by us: leave it */
		snprintf(msg, sizeof(msg), "release_extent %llu",
			 (unsigned long long)k[j].extent);
		if (plx_dm_message(d->name, msg, NULL, 0)) {
			pd_log(PD_WARN, "%s: cannot release full extent %llu: %s",
			       d->name, (unsigned long long)k[j].extent,
			       plx_errmsg());
			continue;
		}
		pd_log(PD_INFO, "%s: released full %s extent %llu",
		       d->name, type_name(k[j].metadata),
		       (unsigned long long)k[j].extent);
		release_or_defer(pd, PLX_LK_RELEASE_EXTENT, d->ext[idx].id,
				 d->ext[idx].gen, NULL);
		ext_drop(d, idx);
		changed = true;
	}
	return changed;
}

/* Claim ahead of need (thesis 3.4.1): keep spare% of an extent in hand. */
static bool top_up(struct pd *pd, struct pd_dev *d, bool metadata,
		   u64 free_blocks)
{
	u64 want = pd_spare_blocks(pd);
	char err[256];
	int r;

	if (free_blocks >= want || !pd_lk_up(pd))
		return false;		/* enough, or deferred to reconnection */
	r = claim_one(pd, d, metadata, err, sizeof(err));
	if (!r) {
		pd_log(PD_INFO, "%s: claimed %s extent %llu (generation %llu); %llu blocks were free",
		       d->name, type_name(metadata),
		       (unsigned long long)d->ext[d->nr - 1].id,
		       (unsigned long long)d->ext[d->nr - 1].gen,
		       (unsigned long long)free_blocks);
		d->enospc_logged[metadata] = false;
		d->claim_failed_logged = false;
		return true;
	}
	if (r == -2) {
		if (!d->enospc_logged[metadata])
			pd_log(PD_WARN, "%s: %s", d->name, err);
		d->enospc_logged[metadata] = true;
	} else if (pd_lk_up(pd) && !d->claim_failed_logged) {
		pd_log(PD_WARN, "%s: %s", d->name, err);
		d->claim_failed_logged = true;
	}
	return false;
}

static void check_one(struct pd *pd, struct pd_dev *d)
{
	const char *word = pd_lk_up(pd) ? "connected" : "unreachable";
	struct plx_dm_status st;
	bool changed, metadata;
	int round;

	if (plx_dm_get_status(d->name, &st)) {
		if (!plx_dm_exists(d->name)) {
			pd_log(PD_WARN, "%s was removed without detach; releasing what it held",
			       d->name);
			release_all(pd, d, false);
			state_remove(pd, d->name);
			dev_unlink(pd, d);
			free(d);
			return;
		}
		if (!d->status_failed_logged)
			pd_log(PD_WARN, "%s: %s", d->name, plx_errmsg());
		d->status_failed_logged = true;
		return;
	}
	d->status_failed_logged = false;
	/* A reloaded table starts without the word: keep it current. */
	if (strcmp(st.lockd, "-") && strcmp(st.lockd, word))
		pd_dev_lockd_word_one(d, word);
	if (strcmp(st.mode, "ok") && strcmp(st.mode, "out_of_space"))
		return;
	changed = sync_extents(pd, d);
	/* A few rounds, in case an extent granted holds less than asked. */
	for (round = 0; round < 4; round++) {
		bool claimed = false;

		for (metadata = false;; metadata = true) {
			claimed |= top_up(pd, d, metadata,
					  metadata ? st.meta_free : st.data_free);
			if (metadata)
				break;
		}
		if (!claimed)
			break;
		changed = true;
		if (plx_dm_get_status(d->name, &st))
			break;
	}
	if (changed)
		pd_state_save(pd, d);
}

void pd_devs_check(struct pd *pd)
{
	struct pd_dev *d, *next;

	for (d = pd->devs; d; d = next) {
		next = d->next;
		if (d->rw && !d->pending)
			check_one(pd, d);
	}
}

/* ---- Hand-over (live migration) ---------------------------------------- */

bool pd_devs_any_pending(struct pd *pd)
{
	struct pd_dev *d;

	for (d = pd->devs; d; d = d->next)
		if (d->pending)
			return true;
	return false;
}

/*
 * Give up on @d: resume it with its read-only table, so that its queued
 * and future writes fail instead of waiting for ever.
 */
static void handover_fail(struct pd *pd, struct pd_dev *d, const char *why)
{
	if (plx_dm_suspended(d->name) && plx_dm_resume(d->name))
		pd_log(PD_ERR, "%s: %s", d->name, plx_errmsg());
	d->pending = false;
	d->stale = true;
	d->rw = false;
	d->lock_gen = 0;
	pd_log(PD_ERR, "VDI %llu: %s; %s stays read-only (stale): detach it",
	       (unsigned long long)d->vdi, why, d->name);
	pd_state_save(pd, d);
}

static void handover_one(struct pd *pd, struct pd_dev *d)
{
	struct plx_lk_grant g;
	char params[4400], why[400], err[256], msg[600];
	bool was_dirty;
	u64 held;
	int st;

	if (!plx_dm_exists(d->name)) {
		pd_log(PD_WARN, "%s was removed while waiting for VDI %llu",
		       d->name, (unsigned long long)d->vdi);
		state_remove(pd, d->name);
		dev_unlink(pd, d);
		free(d);
		return;
	}
	if (pd_wall_ms() >= d->wait_until) {
		snprintf(msg, sizeof(msg), "host %u did not hand it over in time",
			 d->holder);
		handover_fail(pd, d, msg);
		return;
	}
	if (!pd_lk_ensure(pd, false))
		return;
	/* A source with a local cache keeps it until its log is drained. */
	st = lock_vdi(pd, d, &g, &was_dirty, &held, why, sizeof(why));
	if (st == -1)
		return;			/* unreachable: retried on reconnection */
	if (st == PLX_LK_EBUSY) {
		d->holder = g.holder;
		return;
	}
	if (st != PLX_LK_OK) {
		snprintf(msg, sizeof(msg), "cannot lock it: %s", why);
		if (held && st != -2)
			release_flags(pd, PLX_LK_UNLOCK_VDI, d->vdi, held,
				      was_dirty ? 0 : PLX_LK_CLEAN, NULL);
		handover_fail(pd, d, msg);
		return;
	}
	d->lock_gen = g.generation;
	rw_params(pd, d, params, sizeof(params));
	if (plx_dm_reload(d->name, d->sectors, params)) {
		snprintf(msg, sizeof(msg), "cannot load the read-write table: %s",
			 plx_errmsg());
		release_flags(pd, PLX_LK_UNLOCK_VDI, d->vdi, d->lock_gen,
			      was_dirty ? 0 : PLX_LK_CLEAN, NULL);
		handover_fail(pd, d, msg);
		return;
	}
	if (plx_dm_resume(d->name)) {
		snprintf(msg, sizeof(msg), "cannot resume with the read-write table: %s",
			 plx_errmsg());
		release_or_defer(pd, PLX_LK_UNLOCK_VDI, d->vdi, d->lock_gen,
				 NULL);
		handover_fail(pd, d, msg);
		return;
	}
	d->pending = false;
	/* The queued I/O waits for these (out_of_space) if it must. */
	if (claim_one(pd, d, false, err, sizeof(err)) ||
	    claim_one(pd, d, true, err, sizeof(err)))
		pd_log(PD_WARN, "%s: %s; retried on the next tick", d->name,
		       err);
	pd_dev_lockd_word_one(d, "connected");
	pd_state_save(pd, d);
	pd_log(PD_INFO, "VDI %llu handed over: %s is read-write (lock generation %llu, %u extents)",
	       (unsigned long long)d->vdi, d->name,
	       (unsigned long long)d->lock_gen, d->nr);
}

void pd_devs_handover(struct pd *pd)
{
	struct pd_dev *d, *next;

	for (d = pd->devs; d; d = next) {
		next = d->next;
		if (d->pending)
			handover_one(pd, d);
	}
}
