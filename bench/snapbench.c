// SPDX-License-Identifier: GPL-2.0
/*
 * snapbench - time snapshots of a parallax device or a dm-thin volume from
 * one process, through libdevmapper, so that what is measured is the
 * snapshot and not the cost of starting dmsetup.
 *
 * A parallax snapshot is one target message.  A dm-thin snapshot is the
 * documented cycle: suspend the origin thin device (so that its in-flight
 * writes are on the pool and new ones wait), send create_snap to the pool,
 * resume.  Both are timed from the first ioctl to the end of the last.
 *
 * Each latency is printed in microseconds, one per line, in the order
 * taken; a summary goes to standard error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libdevmapper.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *f)
{
	fprintf(f,
"Usage: snapbench parallax DEVICE [OPTIONS]\n"
"       snapbench thin POOL THIN ORIGIN-ID FIRST-SNAP-ID [OPTIONS]\n"
"\n"
"Take snapshots one after another and print each one's latency in\n"
"microseconds, one per line.\n"
"\n"
"  parallax  send the target message \"snapshot\" to the dm device DEVICE\n"
"  thin      suspend the thin device THIN, send \"create_snap ID ORIGIN-ID\"\n"
"            to the pool device POOL with ID = FIRST-SNAP-ID, FIRST-SNAP-ID\n"
"            + 1, ..., and resume THIN\n"
"\n"
"Options:\n"
"  -n, --count N       take at most N snapshots (default 500)\n"
"  -r, --rate HZ       start snapshot i at i/HZ seconds after the first\n"
"                      (default: back to back); a late snapshot starts at\n"
"                      once and the lag is counted\n"
"  -d, --duration S    stop starting snapshots after S seconds\n"
"  -q, --quiet         no summary on standard error\n"
"\n"
"SIGTERM or SIGINT stops it after the snapshot in progress; what was\n"
"measured is printed as usual.\n"
"  -h, --help          this text\n"
"\n"
"Exit status: 0 when every snapshot succeeded, 1 on the first failure\n"
"(the latencies up to it are printed), 2 on a bad command line.\n");
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int dm_simple(int type, const char *name, const char *msg)
{
	struct dm_task *dmt = dm_task_create(type);
	int ok;

	if (!dmt)
		return -1;
	ok = dm_task_set_name(dmt, name);
	if (ok && type == DM_DEVICE_TARGET_MSG)
		ok = dm_task_set_sector(dmt, 0) && dm_task_set_message(dmt, msg);
	if (ok)
		ok = dm_task_run(dmt);
	dm_task_destroy(dmt);
	if (!ok)
		fprintf(stderr, "snapbench: %s %s%s%s failed\n",
			type == DM_DEVICE_SUSPEND ? "suspend" :
			type == DM_DEVICE_RESUME ? "resume" : "message",
			name, msg ? ": " : "", msg ? msg : "");
	return ok ? 0 : -1;
}

struct target {
	bool thin;
	const char *dev;	/* parallax device, or the thin device */
	const char *pool;
	unsigned long long origin, next_id;
};

static int snapshot(struct target *t)
{
	char msg[64];
	int r;

	if (!t->thin)
		return dm_simple(DM_DEVICE_TARGET_MSG, t->dev, "snapshot");
	snprintf(msg, sizeof(msg), "create_snap %llu %llu", t->next_id++,
		 t->origin);
	if (dm_simple(DM_DEVICE_SUSPEND, t->dev, NULL))
		return -1;
	r = dm_simple(DM_DEVICE_TARGET_MSG, t->pool, msg);
	if (dm_simple(DM_DEVICE_RESUME, t->dev, NULL))
		return -1;
	return r;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(const double *sorted, size_t n, double p)
{
	size_t i = (size_t)(p / 100.0 * (n - 1) + 0.5);

	return sorted[i < n ? i : n - 1];
}

static bool parse_ull(const char *s, unsigned long long *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 10);
	return !errno && end != s && !*end && *s != '-';
}

static bool parse_double(const char *s, double *v)
{
	char *end;

	errno = 0;
	*v = strtod(s, &end);
	return !errno && end != s && !*end && *v > 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "rate", required_argument, NULL, 'r' },
		{ "duration", required_argument, NULL, 'd' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	unsigned long long count = 500, late = 0;
	double rate = 0, duration = 0, t0, *lat;
	struct target t = { 0 };
	bool quiet = false;
	size_t n = 0;
	int c, rc = 0;

	while ((c = getopt_long(argc, argv, "n:r:d:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			if (!parse_ull(optarg, &count) || !count)
				goto bad;
			break;
		case 'r':
			if (!parse_double(optarg, &rate))
				goto bad;
			break;
		case 'd':
			if (!parse_double(optarg, &duration))
				goto bad;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			goto bad;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 2 && !strcmp(argv[0], "parallax")) {
		t.dev = argv[1];
	} else if (argc == 5 && !strcmp(argv[0], "thin")) {
		t.thin = true;
		t.pool = argv[1];
		t.dev = argv[2];
		if (!parse_ull(argv[3], &t.origin) ||
		    !parse_ull(argv[4], &t.next_id))
			goto bad;
	} else {
		goto bad;
	}

	lat = calloc(count, sizeof(*lat));
	if (!lat) {
		perror("snapbench");
		return 1;
	}
	/* No udev in the benchmark guest; never wait for it. */
	dm_udev_set_sync_support(0);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	t0 = now_us();
	while (n < count && !stop) {
		double start = now_us();

		if (duration && start - t0 >= duration * 1e6)
			break;
		if (rate) {
			double due = t0 + n * 1e6 / rate;

			if (start < due) {
				double wait = due - start;
				struct timespec ts = {
					.tv_sec = (time_t)(wait / 1e6),
					.tv_nsec = (long)((wait - (time_t)(wait / 1e6) * 1e6) * 1e3),
				};

				if (nanosleep(&ts, NULL) && stop)
					break;
				start = now_us();
			} else if (n && start - due > 1e6 / rate) {
				late++;
			}
		}
		if (snapshot(&t)) {
			rc = 1;
			break;
		}
		lat[n] = now_us() - start;
		printf("%.1f\n", lat[n]);
		n++;
	}
	fflush(stdout);
	if (!quiet && n) {
		double elapsed = (now_us() - t0) / 1e6;

		qsort(lat, n, sizeof(*lat), cmp_double);
		fprintf(stderr,
			"snapbench: %zu snapshots in %.2f s (%.1f/s, %llu late): p50 %.1f us, p99 %.1f us, max %.1f us\n",
			n, elapsed, n / elapsed, late, pct(lat, n, 50),
			pct(lat, n, 99), lat[n - 1]);
	}
	free(lat);
	return rc;
bad:
	usage(stderr);
	return 2;
}
