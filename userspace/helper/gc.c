// SPDX-License-Identifier: GPL-2.0
/*
 * parallaxd's part of online garbage collection: run the jobs a GC posts
 * for this host through the lock manager (Documentation/parallaxd.rst,
 * "Garbage collection").  The GC never writes the bitmap of an extent a
 * live host holds; it asks the holder, and the holder is this daemon,
 * which knows which of its devices holds which extent.
 *
 *   BEGIN   -> "gc_begin EPOCH" to every read-write device
 *   RECLAIM -> "gc_reclaim EPOCH EXTENT GENERATION OFFSET HEX" to the
 *              device holding EXTENT; its answer is the number freed
 *   END     -> "gc_end EPOCH" to every read-write device
 *
 * gc_begin waits in the kernel (up to 30 s per device) for the writes in
 * flight to complete.  That is longer than a lease (15 s by default), so
 * it runs in a child process while the loop goes on renewing the lease,
 * serving the control socket and supplying extents; the child sends it
 * to every device at once (one process each) and reports the first
 * failure through a pipe.  Reclaims and gc_end do not wait and
 * run inline.  Jobs are taken one at a time, in the order posted, so an
 * END never overtakes its BEGIN.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dmdev.h"
#include "parallaxd.h"

/* Jobs run per call before the loop gets a turn (it comes back at once). */
#define PD_GC_BATCH	64

/* Devices a GC epoch concerns: those running a read-write table. */
static bool gc_dev(const struct pd_dev *d)
{
	return d->rw && !d->pending && !d->stale;
}

/*
 * A device detached since the job was fetched holds no grant, so there
 * is nothing for it to do; a device attached after gc_begin has no epoch
 * and answers gc_end with ESTALE, which is as harmless.
 */
static bool gc_ignorable(int err, bool end)
{
	return err == ENXIO || err == ENODEV || (end && err == ESTALE);
}

/* "gc_begin E" or "gc_end E" to every device: the first failure or 0. */
static int gc_all(struct pd *pd, const char *verb, u64 epoch, bool end)
{
	char msg[64];
	struct pd_dev *d;
	int first = 0, err;

	snprintf(msg, sizeof(msg), "%s %llu", verb, (unsigned long long)epoch);
	for (d = pd->devs; d; d = d->next) {
		if (!gc_dev(d))
			continue;
		if (!plx_dm_message(d->name, msg, NULL, 0))
			continue;
		err = errno ? errno : EIO;
		if (gc_ignorable(err, end))
			continue;
		pd_log(PD_WARN, "%s: %s: %s", d->name, msg, strerror(err));
		if (!first)
			first = err;
	}
	return first;
}

/*
 * gc_begin to every device at once, each from a process of its own, so
 * that the wait is at most one gc_begin's (30 s) however many devices
 * there are.  Runs in the child of gc_begin_start(); the first failure
 * in device order, or 0.
 */
static int gc_begin_all(struct pd *pd, u64 epoch)
{
	pid_t pids[64];
	unsigned int n = 0, i;
	struct pd_dev *d;
	int first = 0, err, status;
	char msg[64];

	snprintf(msg, sizeof(msg), "gc_begin %llu", (unsigned long long)epoch);
	for (d = pd->devs; d; d = d->next) {
		if (!gc_dev(d))
			continue;
		if (n == sizeof(pids) / sizeof(pids[0])) {
			/* Many devices: the rest one after another. */
			err = plx_dm_message(d->name, msg, NULL, 0) ?
				(errno ? errno : EIO) : 0;
			if (err && !gc_ignorable(err, false) && !first) {
				pd_log(PD_WARN, "%s: %s: %s", d->name, msg,
				       strerror(err));
				first = err;
			}
			continue;
		}
		pids[n] = fork();
		if (!pids[n]) {
			err = plx_dm_message(d->name, msg, NULL, 0) ?
				(errno ? errno : EIO) : 0;
			if (gc_ignorable(err, false))
				err = 0;
			if (err)
				pd_log(PD_WARN, "%s: %s: %s", d->name, msg,
				       strerror(err));
			_exit(err & 0xff);
		}
		if (pids[n] < 0) {
			if (!first)
				first = errno;
			continue;
		}
		n++;
	}
	for (i = 0; i < n; i++) {
		while (waitpid(pids[i], &status, 0) < 0 && errno == EINTR)
			;
		err = WIFEXITED(status) ? WEXITSTATUS(status) : EIO;
		if (err && !first)
			first = err;
	}
	return first;
}

static int gc_reclaim(struct pd *pd, const struct plx_lk_fetched *f,
		      u64 *freed)
{
	char msg[128 + 2 * PLX_GC_CHUNK_BYTES], answer[64], *end;
	const struct plx_lk_job *j = &f->job;
	struct pd_dev *d;
	unsigned int i;
	int err;

	for (d = pd->devs; d; d = d->next) {
		if (!gc_dev(d))
			continue;
		for (i = 0; i < d->nr; i++)
			if (d->ext[i].id == j->extent)
				break;
		if (i < d->nr)
			break;
	}
	if (!d)
		return ENOENT;
	if (plx_gc_reclaim_msg(msg, sizeof(msg), j->epoch, j->extent,
			       j->generation, j->offset, f->bits, j->nbytes))
		return EINVAL;
	if (plx_dm_message(d->name, msg, answer, sizeof(answer))) {
		err = errno ? errno : EIO;
		pd_log(PD_DEBUG, "%s: gc_reclaim extent %llu offset %u: %s",
		       d->name, (unsigned long long)j->extent, j->offset,
		       strerror(err));
		return err;
	}
	errno = 0;
	*freed = strtoull(answer, &end, 10);
	if (errno || end == answer || (*end && *end != '\n')) {
		pd_log(PD_WARN, "%s: gc_reclaim answered '%s', not a count",
		       d->name, answer);
		return EPROTO;
	}
	return 0;
}

static void gc_report(struct pd *pd, u64 id, int err, u64 freed)
{
	int st;

	if (!pd->lk)
		return;		/* lockd ended the job with EHOSTDOWN */
	st = plx_lk_gc_done(pd->lk, id, err, freed);
	if (st < 0) {
		pd_lk_drop(pd, plx_errmsg());
		return;
	}
	/* ESTALE: the connection it was fetched on is gone; nobody waits. */
	if (st != PLX_LK_OK)
		pd_log(PD_DEBUG, "GC job %llu: GC_DONE: %s",
		       (unsigned long long)id, plx_lk_status_name(st));
}

/* Start gc_begin in a child; the loop watches pd->gc_fd. */
static int gc_begin_start(struct pd *pd, const struct plx_lk_fetched *f)
{
	int p[2], err;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC))
		return errno;
	pid = fork();
	if (pid < 0) {
		err = errno;
		close(p[0]);
		close(p[1]);
		return err;
	}
	if (!pid) {
		/* The child only talks to the kernel, then reports. */
		int r;

		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		close(p[0]);
		r = gc_begin_all(pd, f->job.epoch);
		if (write(p[1], &r, sizeof(r)) != sizeof(r))
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	pd->gc_fd = p[0];
	pd->gc_pid = pid;
	pd->gc_job = f->id;
	pd->gc_epoch = f->job.epoch;
	pd_log(PD_INFO, "GC epoch %llu: gc_begin to every read-write device (job %llu)",
	       (unsigned long long)f->job.epoch, (unsigned long long)f->id);
	return 0;
}

void pd_gc_begin_done(struct pd *pd)
{
	int r = EIO, status;
	ssize_t n;

	if (pd->gc_fd < 0)
		return;
	do {
		n = read(pd->gc_fd, &r, sizeof(r));
	} while (n < 0 && errno == EINTR);
	/* A child that died without a word failed. */
	if (n != sizeof(r))
		r = EIO;
	close(pd->gc_fd);
	pd->gc_fd = -1;
	while (waitpid(pd->gc_pid, &status, 0) < 0 && errno == EINTR)
		;
	pd->gc_pid = 0;
	pd_log(r ? PD_WARN : PD_INFO, "GC epoch %llu: gc_begin %s",
	       (unsigned long long)pd->gc_epoch, r ? strerror(r) : "done");
	gc_report(pd, pd->gc_job, r, 0);
	pd->gc_more = true;	/* the GC's next job may be waiting */
	pd->gc_fast_until = pd_now_ms() + PD_GC_FAST_MS;
}

bool pd_gc_busy(const struct pd *pd)
{
	return pd->gc_fd >= 0;
}

void pd_gc_run(struct pd *pd)
{
	struct plx_lk_fetched *f;
	unsigned int n;
	u64 freed;
	int r, err;

	pd->gc_more = false;
	if (!pd->lk || !pd->lk_gc || pd_gc_busy(pd))
		return;
	f = malloc(sizeof(*f));
	if (!f)
		return;
	for (n = 0; n < PD_GC_BATCH && pd->lk && !pd_gc_busy(pd); n++) {
		r = plx_lk_gc_fetch(pd->lk, f);
		if (r < 0) {
			if (plx_lk_fd(pd->lk) < 0) {
				pd_lk_drop(pd, plx_errmsg());
			} else {
				/* Once per connection, not every second. */
				pd_log(PD_WARN, "%s; no GC jobs on this connection",
				       plx_errmsg());
				pd->lk_gc = false;
			}
			break;
		}
		if (!r)
			break;
		pd->gc_fast_until = pd_now_ms() + PD_GC_FAST_MS;
		freed = 0;
		switch (f->job.kind) {
		case PLX_LK_JOB_BEGIN:
			err = gc_begin_start(pd, f);
			if (!err)
				continue;	/* reported by the child */
			pd_log(PD_WARN, "GC epoch %llu: cannot start gc_begin: %s",
			       (unsigned long long)f->job.epoch,
			       strerror(err));
			break;
		case PLX_LK_JOB_RECLAIM:
			err = gc_reclaim(pd, f, &freed);
			break;
		case PLX_LK_JOB_END:
			err = gc_all(pd, "gc_end", f->job.epoch, true);
			pd_log(err ? PD_WARN : PD_INFO, "GC epoch %llu: gc_end %s",
			       (unsigned long long)f->job.epoch,
			       err ? strerror(err) : "done");
			break;
		default:
			err = EINVAL;
			break;
		}
		gc_report(pd, f->id, err, freed);
	}
	/* Not drained: come back as soon as the loop had its turn. */
	if (n == PD_GC_BATCH)
		pd->gc_more = true;
	free(f);
}
