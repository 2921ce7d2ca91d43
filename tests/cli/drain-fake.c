// SPDX-License-Identifier: GPL-2.0
/*
 * plx_dm_drain_for_release() (userspace/dm/dmdev.c), the check that a
 * local write cache's log is empty before a VDI's lock leaves the host,
 * against fake device operations: no kernel, no device-mapper.  Built
 * and run by tests/cli/detach-drain.sh; prints TAP lines.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dmdev.h"

static int n, failed;

static void check(int cond, const char *what)
{
	n++;
	if (!cond)
		failed++;
	printf("%sok %d - %s\n", cond ? "" : "not ", n, what);
}

/* The fake device: its table, what each op answers, and what was done. */
static struct {
	const char *table;
	const char *status_before, *status_after;	/* of the suspend */
	int table_err, drain_err, suspend_err, resume_err, status_err;
	unsigned int drain_ms;	/* the drain message takes this long */
	bool suspended;
	char calls[256];
} fk;

static void called(const char *what)
{
	snprintf(fk.calls + strlen(fk.calls), sizeof(fk.calls) - strlen(fk.calls),
		 "%s%s", fk.calls[0] ? " " : "", what);
}

static int fail_with(int err)
{
	plx_seterr(PLX_EK_STORE, "fake: %s", strerror(err));
	errno = err;
	return -1;
}

static int f_table(const char *name, char *buf, size_t len)
{
	(void)name;
	called("table");
	if (fk.table_err)
		return fail_with(fk.table_err);
	snprintf(buf, len, "%s", fk.table);
	return 0;
}

static int f_status(const char *name, char *buf, size_t len)
{
	(void)name;
	called("status");
	if (fk.status_err)
		return fail_with(fk.status_err);
	snprintf(buf, len, "%s",
		 fk.suspended ? fk.status_after : fk.status_before);
	return 0;
}

static int f_message(const char *name, const char *msg, char *res,
		     size_t len)
{
	(void)name;
	(void)res;
	(void)len;
	called(msg);
	if (fk.drain_ms)
		usleep(fk.drain_ms * 1000);
	return fk.drain_err ? fail_with(fk.drain_err) : 0;
}

static int served;
static void serve(void *arg)
{
	(void)arg;
	served++;
}

static int f_suspend(const char *name)
{
	(void)name;
	called("suspend");
	if (fk.suspend_err)
		return fail_with(fk.suspend_err);
	fk.suspended = true;
	return 0;
}

static int f_resume(const char *name)
{
	(void)name;
	called("resume");
	if (fk.resume_err)
		return fail_with(fk.resume_err);
	fk.suspended = false;
	return 0;
}

static const struct plx_dm_ops fake = {
	.table = f_table,
	.status = f_status,
	.message = f_message,
	.suspend = f_suspend,
	.resume = f_resume,
};

#define CACHED	"/dev/sdb 7 8 host_id 1 lock_gen 3 local_cache /dev/sdc1 local_cache_mode always"
/* 18 fields: the interface's example, with N records pending. */
#define STATUS(n) "ok 120 30 10 20 2 0 5 6 - connected always logging 5120 65472 " #n " 20480 7"

static void reset(void)
{
	memset(&fk, 0, sizeof(fk));
	fk.table = CACHED;
	fk.status_before = STATUS(37);
	fk.status_after = STATUS(0);
}

int main(void)
{
	u64 pending = 99;
	int r;

	/* The parsers. */
	check(plx_dm_table_has_cache(CACHED), "table: local_cache found");
	check(!plx_dm_table_has_cache("/dev/sdb 7 4 host_id 1 lock_gen 3"),
	      "table: none without it");
	check(!plx_dm_table_has_cache("/dev/sdb 7"), "table: none without options");
	check(!plx_dm_table_has_cache("local_cache 7 2 host_id 1"),
	      "table: a store path named local_cache is not the option");
	check(!plx_dm_table_has_cache("/dev/sdb 7 2 host_id 1 local_cache /dev/x"),
	      "table: words past the option count are not options");
	check(plx_dm_status_pending(STATUS(37), &pending) == 0 && pending == 37,
	      "status: field 16 read (37)");
	check(plx_dm_status_pending("ok 1 2 3 4 5 6 7 8 - connected", &pending) < 0,
	      "status: an 11-field line (no cache fields) has none");
	r = plx_dm_status_pending("ok 1 2 3 4 5 6 7 8 - connected none - 0 0 x 0 -",
				  &pending);
	check(r < 0, "status: a non-number in field 16 is refused");

	/* No cache: nothing is done. */
	reset();
	fk.table = "/dev/sdb 7 4 host_id 1 lock_gen 3";
	r = plx_dm_drain_for_release(&fake, "web", 7, &pending);
	check(r == 0 && !strcmp(fk.calls, "table"),
	      "no local_cache: returns 0, only the table is read");

	/* Drained: drain, suspend, status; left suspended for the remove. */
	reset();
	r = plx_dm_drain_for_release(&fake, "web", 7, &pending);
	check(r == 1 && pending == 0, "drained: returns 1, 0 pending");
	check(!strcmp(fk.calls, "table drain suspend status"),
	      "drained: drain message, then suspend, then status");
	check(fk.suspended, "drained: the device is left suspended");

	/* Records left after the suspend. */
	reset();
	fk.status_after = STATUS(37);
	r = plx_dm_drain_for_release(&fake, "web", 7, &pending);
	check(r == -1 && pending == 37 && errno == EBUSY,
	      "records left: refused with their count (37), EBUSY");
	check(!strcmp(fk.calls, "table drain suspend status resume") &&
	      !fk.suspended, "records left: the device is resumed");
	check(strstr(plx_errmsg(), "VDI 7 (device web): 37 record(s)") &&
	      strstr(plx_errmsg(), "stays locked"),
	      "records left: the message names the VDI, the device and the count");

	/* The drain message fails. */
	reset();
	fk.drain_err = EIO;
	fk.status_before = STATUS(12);
	r = plx_dm_drain_for_release(&fake, "web", 7, &pending);
	check(r == -1 && pending == 12 && errno == EIO,
	      "drain fails: refused, with the count from the status (12)");
	check(!strcmp(fk.calls, "table drain status") && !fk.suspended,
	      "drain fails: never suspended");
	check(strstr(plx_errmsg(), "12 record(s)") &&
	      strstr(plx_errmsg(), "the drain failed"),
	      "drain fails: the message says so");

	/* The suspend fails. */
	reset();
	fk.suspend_err = EINTR;
	r = plx_dm_drain_for_release(&fake, "web", 7, &pending);
	check(r == -1 && errno == EINTR && !fk.suspended &&
	      !strstr(fk.calls, "resume"),
	      "suspend fails: refused, nothing to resume");

	/* A status without the cache fields after the suspend. */
	reset();
	fk.status_after = "ok 1 2 3 4 5 6 7 8 - connected";
	r = plx_dm_drain_for_release(&fake, "web", 7, &pending);
	check(r == -1 && pending == PLX_DM_PENDING_UNKNOWN && !fk.suspended,
	      "no records-pending field: refused as unknown, resumed");
	check(!!strstr(plx_errmsg(), "an unknown number of record(s)"),
	      "no records-pending field: the message says the count is unknown");

	/* The status cannot be read after the suspend. */
	reset();
	fk.status_err = ENXIO;
	r = plx_dm_drain_for_release(&fake, "web", 7, &pending);
	check(r == -1 && !fk.suspended, "status unreadable: refused, resumed");

	/* The table cannot be read: nothing may be released. */
	reset();
	fk.table_err = ENXIO;
	r = plx_dm_drain_for_release(&fake, "web", 7, &pending);
	check(r == -1 && !strcmp(fk.calls, "table"),
	      "table unreadable: refused, nothing else done");

	/*
	 * parallaxd's variant: the drain message runs in a child process
	 * while the caller serves; its failure comes back to the caller.
	 */
	reset();
	fk.drain_ms = 700;
	r = plx_dm_drain_for_release_serving(&fake, "web", 7, &pending, serve,
					     NULL);
	check(r == 1 && pending == 0 && served >= 2,
	      "serving: drained, and served while the drain ran");
	check(!strcmp(fk.calls, "table suspend status"),
	      "serving: the drain message was sent by the child, the rest here");
	reset();
	served = 0;
	fk.drain_ms = 300;
	fk.drain_err = ENOSPC;
	fk.status_before = STATUS(12);
	r = plx_dm_drain_for_release_serving(&fake, "web", 7, &pending, serve,
					     NULL);
	check(r == -1 && errno == ENOSPC && pending == 12 && served >= 1 &&
	      !fk.suspended, "serving: a failed drain is refused with its errno");
	check(strstr(plx_errmsg(), "the drain failed: fake: No space left") &&
	      strstr(plx_errmsg(), "12 record(s)"),
	      "serving: the child's error message reaches the caller");

	printf("1..%d\n", n);
	return failed ? 1 : 0;
}
