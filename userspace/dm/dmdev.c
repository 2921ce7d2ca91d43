// SPDX-License-Identifier: GPL-2.0
/*
 * libdevmapper helpers for devices made of one parallax target; see
 * dmdev.h.  Every task is created, run and destroyed in one function so
 * that no libdevmapper state outlives a call.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libdevmapper.h>
#include <linux/dm-ioctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dmdev.h"

static bool udev_sync = true;

bool plx_dm_name_ok(const char *name)
{
	size_t i, n = strlen(name);

	if (!n || n >= DM_NAME_LEN || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	for (i = 0; i < n; i++)
		if (name[i] == '/' || (unsigned char)name[i] <= ' ' ||
		    name[i] == 0x7f)
			return false;
	return true;
}

void plx_dm_set_udev_sync(bool sync)
{
	udev_sync = sync;
	dm_udev_set_sync_support(sync);
}

/*
 * Run @dmt; on failure keep the kernel's errno (libdevmapper remembers
 * it per task) and describe the failure as "@what @name: strerror".
 */
static int dm_run(struct dm_task *dmt, bool wait_udev, const char *what,
		  const char *name)
{
	uint32_t cookie = 0;
	int ok, err;

	if (wait_udev && udev_sync && !dm_task_set_cookie(dmt, &cookie, 0)) {
		plx_seterr(PLX_EK_STORE, "%s %s: cannot set a udev cookie",
			   what, name);
		errno = EIO;
		return -1;
	}
	ok = dm_task_run(dmt);
	err = ok ? 0 : dm_task_get_errno(dmt);
	if (wait_udev && udev_sync)
		dm_udev_wait(cookie);
	if (ok)
		return 0;
	if (!err)
		err = EIO;
	plx_seterr(PLX_EK_STORE, "%s %s: %s", what, name, strerror(err));
	errno = err;
	return -1;
}

/* A task of @type for device @name, or NULL with the error set. */
static struct dm_task *dm_named(int type, const char *name)
{
	struct dm_task *dmt = dm_task_create(type);

	if (!dmt) {
		plx_seterr(PLX_EK_STORE, "libdevmapper: cannot create a task");
		errno = ENOMEM;
		return NULL;
	}
	if (name && !dm_task_set_name(dmt, name)) {
		dm_task_destroy(dmt);
		plx_seterr(PLX_EK_USAGE, "'%s' is not a valid device name",
			   name);
		errno = EINVAL;
		return NULL;
	}
	return dmt;
}

bool plx_dm_read_only(const char *name)
{
	struct dm_task *dmt = dm_named(DM_DEVICE_INFO, name);
	struct dm_info info = { 0 };
	bool ro = false;

	if (!dmt)
		return false;
	if (dm_task_run(dmt) && dm_task_get_info(dmt, &info))
		ro = info.exists && info.read_only;
	dm_task_destroy(dmt);
	return ro;
}

bool plx_dm_exists(const char *name)
{
	struct dm_task *dmt = dm_named(DM_DEVICE_INFO, name);
	struct dm_info info = { 0 };
	bool exists = false;

	if (!dmt)
		return false;
	if (dm_task_run(dmt) && dm_task_get_info(dmt, &info))
		exists = info.exists;
	dm_task_destroy(dmt);
	return exists;
}

int plx_dm_create(const char *name, u64 sectors, const char *params,
		  bool read_only, const u8 store_uuid[16], u64 vdi)
{
	struct dm_task *dmt = dm_named(DM_DEVICE_CREATE, name);
	char uuid[DM_UUID_LEN];
	int n, i, r = -1;

	if (!dmt)
		return -1;
	n = snprintf(uuid, sizeof(uuid), PLX_DM_UUID_PREFIX);
	for (i = 0; i < 16; i++)
		n += snprintf(uuid + n, sizeof(uuid) - n, "%02x", store_uuid[i]);
	snprintf(uuid + n, sizeof(uuid) - n, "-%llu-%s",
		 (unsigned long long)vdi, name);
	if (!dm_task_set_uuid(dmt, uuid) ||
	    (read_only && !dm_task_set_ro(dmt)) ||
	    !dm_task_add_target(dmt, 0, sectors, "parallax", params)) {
		plx_seterr(PLX_EK_STORE, "create %s: cannot build the table",
			   name);
		errno = ENOMEM;
	} else {
		r = dm_run(dmt, true, "create", name);
	}
	dm_task_destroy(dmt);
	return r;
}

int plx_dm_suspend_noflush(const char *name)
{
	struct dm_task *dmt = dm_named(DM_DEVICE_SUSPEND, name);
	int r = -1;

	if (!dmt)
		return -1;
	if (!dm_task_no_flush(dmt) || !dm_task_skip_lockfs(dmt)) {
		plx_seterr(PLX_EK_STORE, "suspend %s: cannot build the task",
			   name);
		errno = ENOMEM;
	} else {
		r = dm_run(dmt, false, "suspend", name);
	}
	dm_task_destroy(dmt);
	return r;
}

int plx_dm_reload(const char *name, u64 sectors, const char *params)
{
	struct dm_task *dmt = dm_named(DM_DEVICE_RELOAD, name);
	int r = -1;

	if (!dmt)
		return -1;
	if (!dm_task_add_target(dmt, 0, sectors, "parallax", params)) {
		plx_seterr(PLX_EK_STORE, "reload %s: cannot build the table",
			   name);
		errno = ENOMEM;
	} else {
		r = dm_run(dmt, false, "reload", name);
	}
	dm_task_destroy(dmt);
	return r;
}

int plx_dm_resume(const char *name)
{
	struct dm_task *dmt = dm_named(DM_DEVICE_RESUME, name);
	int r;

	if (!dmt)
		return -1;
	r = dm_run(dmt, true, "resume", name);
	dm_task_destroy(dmt);
	return r;
}

bool plx_dm_suspended(const char *name)
{
	struct dm_task *dmt = dm_named(DM_DEVICE_INFO, name);
	struct dm_info info = { 0 };
	bool susp = false;

	if (!dmt)
		return false;
	if (dm_task_run(dmt) && dm_task_get_info(dmt, &info))
		susp = info.exists && info.suspended;
	dm_task_destroy(dmt);
	return susp;
}

int plx_dm_remove(const char *name)
{
	struct dm_task *dmt = dm_named(DM_DEVICE_REMOVE, name);
	int r;

	if (!dmt)
		return -1;
	r = dm_run(dmt, true, "remove", name);
	dm_task_destroy(dmt);
	return r;
}

int plx_dm_message(const char *name, const char *msg, char *result,
		   size_t len)
{
	struct dm_task *dmt = dm_named(DM_DEVICE_TARGET_MSG, name);
	const char *resp;
	int r = -1;

	if (result && len)
		result[0] = '\0';
	if (!dmt)
		return -1;
	if (!dm_task_set_sector(dmt, 0) || !dm_task_set_message(dmt, msg)) {
		plx_seterr(PLX_EK_STORE, "message %s: cannot build the task",
			   name);
		errno = ENOMEM;
		goto out;
	}
	if (dm_run(dmt, false, "message to", name))
		goto out;
	resp = dm_task_get_message_response(dmt);
	if (result && len && resp) {
		if (strlen(resp) >= len) {
			plx_seterr(PLX_EK_STORE,
				   "message %s: answer longer than %zu bytes",
				   name, len);
			errno = EOVERFLOW;
			goto out;
		}
		memcpy(result, resp, strlen(resp) + 1);
	}
	r = 0;
out:
	dm_task_destroy(dmt);
	return r;
}

/*
 * The first target's type, length and parameters of a STATUS or TABLE
 * task (the device must exist).
 */
static int dm_first_target(int type, const char *name, char *ttype,
			   size_t tlen, u64 *sectors, char *buf, size_t len)
{
	struct dm_task *dmt = dm_named(type, name);
	uint64_t start, length;
	char *target_type = NULL, *params = NULL;
	struct dm_info info = { 0 };
	int r = -1;

	if (!dmt)
		return -1;
	if (dm_run(dmt, false, "status of", name))
		goto out;
	if (!dm_task_get_info(dmt, &info) || !info.exists) {
		plx_seterr(PLX_EK_STORE, "no device %s", name);
		errno = ENXIO;
		goto out;
	}
	dm_get_next_target(dmt, NULL, &start, &length, &target_type, &params);
	if (!target_type) {
		plx_seterr(PLX_EK_STORE, "device %s has no table", name);
		errno = ENODATA;
		goto out;
	}
	if (ttype && snprintf(ttype, tlen, "%s", target_type) >= (int)tlen)
		goto toolong;
	if (buf && snprintf(buf, len, "%s", params ? params : "") >= (int)len)
		goto toolong;
	if (sectors)
		*sectors = length;
	r = 0;
	goto out;
toolong:
	plx_seterr(PLX_EK_STORE, "device %s: table line too long", name);
	errno = EOVERFLOW;
out:
	dm_task_destroy(dmt);
	return r;
}

int plx_dm_status(const char *name, char *buf, size_t len)
{
	return dm_first_target(DM_DEVICE_STATUS, name, NULL, 0, NULL, buf, len);
}

int plx_dm_table(const char *name, char *buf, size_t len)
{
	return dm_first_target(DM_DEVICE_TABLE, name, NULL, 0, NULL, buf, len);
}

int plx_dm_target(const char *name, char *type, size_t len, u64 *sectors)
{
	return dm_first_target(DM_DEVICE_TABLE, name, type, len, sectors,
			       NULL, 0);
}

void plx_dm_names_free(char **names, size_t nr)
{
	size_t i;

	for (i = 0; i < nr; i++)
		free(names[i]);
	free(names);
}

int plx_dm_list_parallax(char ***out, size_t *nr)
{
	struct dm_task *dmt = dm_named(DM_DEVICE_LIST, NULL);
	struct dm_names *n;
	char **names = NULL, type[32];
	size_t count = 0;
	unsigned int next = 0;
	int r = -1;

	*out = NULL;
	*nr = 0;
	if (!dmt)
		return -1;
	if (dm_run(dmt, false, "list", "devices"))
		goto out;
	n = dm_task_get_names(dmt);
	if (!n || !n->dev)
		goto done;
	do {
		char **grown;

		n = (struct dm_names *)((char *)n + next);
		next = n->next;
		/* A device that vanished meanwhile, or another target. */
		if (plx_dm_target(n->name, type, sizeof(type), NULL) ||
		    strcmp(type, "parallax"))
			continue;
		grown = realloc(names, (count + 1) * sizeof(*names));
		if (!grown)
			goto nomem;
		names = grown;
		names[count] = strdup(n->name);
		if (!names[count])
			goto nomem;
		count++;
	} while (next);
done:
	*out = names;
	*nr = count;
	r = 0;
	goto out;
nomem:
	plx_dm_names_free(names, count);
	plx_seterr(PLX_EK_STORE, "out of memory listing devices");
	errno = ENOMEM;
out:
	dm_task_destroy(dmt);
	return r;
}

static int parse_u64_word(const char *w, u64 *v)
{
	return plx_parse_u64(w, v);
}

int plx_dm_parse_status(const char *line, struct plx_dm_status *st)
{
	char w[11][64];
	u64 *nums[] = { &st->data_alloc, &st->meta_alloc, &st->data_free,
			&st->meta_free, &st->extents, &st->snapshots,
			&st->cache_hits, &st->cache_misses };
	int n, i;

	memset(st, 0, sizeof(*st));
	n = sscanf(line, "%63s %63s %63s %63s %63s %63s %63s %63s %63s %63s %63s",
		   w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8],
		   w[9], w[10]);
	if (n < 10)
		goto bad;
	if (snprintf(st->mode, sizeof(st->mode), "%s", w[0]) >=
	    (int)sizeof(st->mode))
		goto bad;
	for (i = 0; i < 8; i++)
		if (parse_u64_word(w[i + 1], nums[i]))
			goto bad;
	memcpy(st->reason, w[9], sizeof(st->reason));
	if (snprintf(st->lockd, sizeof(st->lockd), "%s",
		     n > 10 ? w[10] : "-") >= (int)sizeof(st->lockd))
		goto bad;
	return 0;
bad:
	plx_seterr(PLX_EK_STORE, "malformed parallax status '%s'", line);
	errno = EPROTO;
	return -1;
}

int plx_dm_get_status(const char *name, struct plx_dm_status *st)
{
	char line[512];

	if (plx_dm_status(name, line, sizeof(line)))
		return -1;
	return plx_dm_parse_status(line, st);
}

int plx_dm_parse_extents(const char *answer, struct plx_dm_extent *ext,
			 size_t max)
{
	const char *p = answer;
	size_t nr = 0;

	for (;;) {
		unsigned long long e, f;
		char kind;
		int used = 0;

		while (*p == ' ' || *p == '\n' || *p == '\t')
			p++;
		if (!*p)
			break;
		if (nr == max ||
		    sscanf(p, "%llu:%c:%llu%n", &e, &kind, &f, &used) != 3 ||
		    (kind != 'd' && kind != 'm') ||
		    (p[used] && p[used] != ' ' && p[used] != '\n'))
			goto bad;
		ext[nr].extent = e;
		ext[nr].metadata = kind == 'm';
		ext[nr].free = f;
		nr++;
		p += used;
	}
	return (int)nr;
bad:
	plx_seterr(PLX_EK_STORE, "malformed extents answer '%.80s'", answer);
	errno = EPROTO;
	return -1;
}

int plx_dm_event_open(void)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dm_dir(), DM_CONTROL_NODE);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		plx_seterr(PLX_EK_STORE, "%s: %s", path, strerror(errno));
	return fd;
}

int plx_dm_event_arm(int fd)
{
	struct dm_ioctl io;

	/*
	 * The kernel accepts any minor version up to its own; ARM_POLL
	 * arrived with 4.37, and older kernels fail the unknown command.
	 */
	memset(&io, 0, sizeof(io));
	io.version[0] = DM_VERSION_MAJOR;
	io.version[1] = 37;
	io.data_size = sizeof(io);
	io.data_start = sizeof(io);
	if (ioctl(fd, DM_DEV_ARM_POLL, &io)) {
		plx_seterr(PLX_EK_STORE, "DM_DEV_ARM_POLL: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- The local write cache before a VDI leaves the host ----------------- */

bool plx_dm_table_has_cache(const char *params)
{
	char buf[4096], *save = NULL, *w;
	unsigned int i = 0;
	u64 nopts = 0;

	snprintf(buf, sizeof(buf), "%s", params);
	/* <store dev> <vdi id> [<#opts> <opt>...]: local_cache is an opt. */
	for (w = strtok_r(buf, " \t\n", &save); w;
	     w = strtok_r(NULL, " \t\n", &save), i++) {
		if (i == 2 && parse_u64_word(w, &nopts))
			return false;
		if (i >= 3 && i - 3 >= nopts)
			return false;
		if (i >= 3 && !strcmp(w, "local_cache"))
			return true;
	}
	return false;
}

int plx_dm_status_pending(const char *line, u64 *pending)
{
	char buf[1024], *save = NULL, *w;
	unsigned int i = 0;

	snprintf(buf, sizeof(buf), "%s", line);
	for (w = strtok_r(buf, " \t\n", &save); w;
	     w = strtok_r(NULL, " \t\n", &save))
		if (++i == PLX_DM_STATUS_PENDING)
			return parse_u64_word(w, pending) ? -1 : 0;
	return -1;
}

static int real_suspend(const char *name)
{
	struct dm_task *dmt = dm_named(DM_DEVICE_SUSPEND, name);
	int r;

	if (!dmt)
		return -1;
	/* A flushing suspend: the target drains its log before it returns. */
	r = dm_run(dmt, false, "suspend", name);
	dm_task_destroy(dmt);
	return r;
}

const struct plx_dm_ops plx_dm_real_ops = {
	.table = plx_dm_table,
	.status = plx_dm_status,
	.message = plx_dm_message,
	.suspend = real_suspend,
	.resume = plx_dm_resume,
};

/* The records pending in @name's log, or -1 with the error set. */
static int pending_of(const struct plx_dm_ops *ops, const char *name,
		      u64 *pending)
{
	char line[1024];

	*pending = PLX_DM_PENDING_UNKNOWN;
	if (ops->status(name, line, sizeof(line)))
		return -1;
	if (plx_dm_status_pending(line, pending)) {
		plx_seterr(PLX_EK_STORE, "%s: its status has no records-pending field (field %d): '%s'",
			   name, PLX_DM_STATUS_PENDING, line);
		errno = EPROTO;
		return -1;
	}
	return 0;
}

/*
 * The drain message, sent by a child process while the caller goes on
 * serving: the drain may need extents that only the caller can get
 * granted while it waits.  The child's error comes back through a pipe.
 */
static int drain_serving(const struct plx_dm_ops *ops, const char *name,
			 void (*serve)(void *arg), void *arg)
{
	char msg[512] = "";
	int fds[2], status, err = 0;
	ssize_t n;
	pid_t pid;

	if (!serve)
		return ops->message(name, "drain", NULL, 0);
	if (pipe(fds)) {
		plx_seterr(PLX_EK_STORE, "%s: drain: pipe: %s", name,
			   strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		err = errno;
		close(fds[0]);
		close(fds[1]);
		plx_seterr(PLX_EK_STORE, "%s: drain: fork: %s", name,
			   strerror(err));
		errno = err;
		return -1;
	}
	if (!pid) {
		close(fds[0]);
		if (ops->message(name, "drain", NULL, 0)) {
			err = errno ? errno : EIO;
			snprintf(msg, sizeof(msg), "%s", plx_errmsg());
			if (write(fds[1], msg, strlen(msg)) < 0)
				err = EIO;
			_exit(err);
		}
		_exit(0);
	}
	close(fds[1]);
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			/* Lost track of the child: the drain's outcome is unknown. */
			err = errno;
			close(fds[0]);
			plx_seterr(PLX_EK_STORE, "%s: drain: waitpid: %s", name,
				   strerror(err));
			errno = err;
			return -1;
		}
		serve(arg);
		poll(NULL, 0, 200);
	}
	n = read(fds[0], msg, sizeof(msg) - 1);
	close(fds[0]);
	msg[n > 0 ? n : 0] = 0;
	if (WIFEXITED(status) && !WEXITSTATUS(status))
		return 0;
	err = WIFEXITED(status) ? WEXITSTATUS(status) : EINTR;
	plx_seterr(PLX_EK_STORE, "%s", msg[0] ? msg :
		   "the drain message failed (see the kernel log)");
	errno = err;
	return -1;
}

int plx_dm_drain_for_release(const struct plx_dm_ops *ops, const char *name,
			     u64 vdi, u64 *pending)
{
	return plx_dm_drain_for_release_serving(ops, name, vdi, pending, NULL,
						NULL);
}

int plx_dm_drain_for_release_serving(const struct plx_dm_ops *ops,
				     const char *name, u64 vdi, u64 *pending,
				     void (*serve)(void *arg), void *arg)
{
	char params[4096], why[700], count[32];
	bool suspended = false;
	int err;

	*pending = 0;
	if (ops->table(name, params, sizeof(params)))
		return -1;
	if (!plx_dm_table_has_cache(params))
		return 0;
	if (drain_serving(ops, name, serve, arg)) {
		err = errno;
		snprintf(why, sizeof(why), "the drain failed: %s",
			 plx_errmsg());
		/* Best effort, for the message: how much is left. */
		pending_of(ops, name, pending);
		goto fail;
	}
	if (ops->suspend(name)) {
		err = errno;
		snprintf(why, sizeof(why), "the suspend failed: %s",
			 plx_errmsg());
		pending_of(ops, name, pending);
		goto fail;
	}
	suspended = true;
	if (pending_of(ops, name, pending)) {
		err = errno;
		snprintf(why, sizeof(why), "%s", plx_errmsg());
		goto fail;
	}
	if (*pending) {
		err = EBUSY;
		snprintf(why, sizeof(why), "the log still holds records after the drain and the suspend");
		goto fail;
	}
	return 1;
fail:
	/* Keep the VDI serving here, so that the host can try again. */
	if (suspended && ops->resume(name))
		snprintf(why + strlen(why), sizeof(why) - strlen(why),
			 " (and resuming it failed: %s)", plx_errmsg());
	if (*pending == PLX_DM_PENDING_UNKNOWN)
		snprintf(count, sizeof(count), "an unknown number of");
	else
		snprintf(count, sizeof(count), "%llu",
			 (unsigned long long)*pending);
	plx_seterr(PLX_EK_STORE, "VDI %llu (device %s): %s record(s) of its local write cache are not on the store: %s; the device stays and the VDI stays locked by this host",
		   (unsigned long long)vdi, name, count, why);
	errno = err ? err : EIO;
	return -1;
}
