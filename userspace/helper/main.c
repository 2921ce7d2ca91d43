// SPDX-License-Identifier: GPL-2.0
/*
 * parallaxd - the per-host helper of a Parallax blockstore.
 *
 * It holds this host's connection to parallax-lockd, attaches and
 * detaches VDIs for the parallax tool through its control socket, and
 * keeps every read-write device supplied with extents (claimed ahead of
 * need, released when full).  See Documentation/parallaxd.rst.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dmdev.h"
#include "parallaxd.h"

#define PD_TICK_MS	1000

static const char usage_text[] =
"NAME\n"
"    parallaxd - per-host helper daemon of a Parallax blockstore\n"
"\n"
"SYNOPSIS\n"
"    parallaxd DEV [--host-id N] [--run-dir DIR] [--lockd ADDR:PORT]\n"
"              [--spare PERCENT] [--foreground]\n"
"    parallaxd --help\n"
"\n"
"DESCRIPTION\n"
"    Serves one blockstore DEV (the shared block device) on this host.\n"
"    It connects to the lock manager parallax-lockd named by the\n"
"    superblock's lockd_addr, renews this host's lease every third of\n"
"    the lease, and on request of the parallax tool (\"parallax attach\",\n"
"    \"parallax detach\") attaches and detaches VDIs:\n"
"\n"
"    attach rw   locks the VDI, claims one data and one metadata extent,\n"
"                creates the device with \"host_id H lock_gen G\" and grants\n"
"                it the extents (\"add_extent E G\"); any failure undoes\n"
"                all of it.\n"
"    attach ro   creates a read_only device; no locks are taken.\n"
"    attach rw wait=S\n"
"                live migration: if another host holds the VDI, the\n"
"                device is made at once with a read_only table and\n"
"                suspended (its I/O waits), and the answer is \"ok PATH\n"
"                pending\".  LOCK_VDI is retried every 200 ms; once\n"
"                granted, the read-write table is loaded and resumed and\n"
"                the queued I/O proceeds (\"VDI N handed over\").  After S\n"
"                seconds (1..3600) without it, the device is resumed\n"
"                read-only (writes fail) and shown as stale.\n"
"    detach      removes the device (the kernel flushes it), releases its\n"
"                extents and unlocks the VDI.\n"
"\n"
"    For every read-write device it watches dm events and, once a\n"
"    second, the device's status: when the free data or metadata\n"
"    blocks fall below PERCENT of one extent, it claims another extent\n"
"    of that type ahead of need; an extent with no free block left is\n"
"    released as soon as the device holds another of its type with room.\n"
"\n"
"    It runs the online garbage collector's jobs for the extents this\n"
"    host holds, relayed by the lock manager (\"parallax gc\"): gc_begin\n"
"    and gc_end to every read-write device, gc_reclaim to the device\n"
"    holding the extent.  gc_begin, which may wait 30 s in the kernel,\n"
"    runs in a child process so that the lease keeps being renewed.\n"
"\n"
"    If the lock manager is unreachable, parallaxd logs it once, sets\n"
"    the devices' lock-manager state to \"unreachable\" (the last field\n"
"    of dmsetup status), keeps serving with the extents already held and\n"
"    reconnects with a backoff of 1 s doubling to 10 s.  Read-write\n"
"    attaches fail meanwhile; a detach removes the device and queues\n"
"    its releases until the lock manager is back.\n"
"\n"
"    What it manages is recorded in DIR/NAME.parallaxd; a restarted\n"
"    parallaxd adopts the devices that still exist.  Stopping it\n"
"    (SIGTERM) leaves the devices running.\n"
"\n"
"    It runs in the foreground and logs to stderr, one line per event,\n"
"    prefixed by its level (error, warning, info); under systemd (when\n"
"    JOURNAL_STREAM is set) the prefix is the journal's <N> priority.\n"
"\n"
"OPTIONS\n"
"    --host-id N\n"
"        This host's id, 1..4294967295.  Default: $PARALLAX_HOST_ID,\n"
"        else the first word of /etc/parallax/host-id, else 1.  Every\n"
"        host sharing a blockstore needs its own id.\n"
"    --run-dir DIR\n"
"        Where the control socket parallaxd.sock and the state files\n"
"        live (created 0700 if missing).  Default: $PARALLAX_RUN_DIR,\n"
"        else /run/parallax.\n"
"    --lockd ADDR:PORT\n"
"        Connect to this lock manager instead of the superblock's\n"
"        lockd_addr.\n"
"    --spare PERCENT\n"
"        Free blocks to keep in hand, as a percentage (1..100) of one\n"
"        extent, per type (default 25).\n"
"    --foreground\n"
"        Accepted for compatibility; parallaxd always runs in the\n"
"        foreground (systemd Type=simple).\n"
"    -h, --help\n"
"        This text.\n"
"\n"
"CONTROL SOCKET\n"
"    DIR/parallaxd.sock, a unix stream socket, mode 0600.  A client sends\n"
"    one request line and reads until the daemon closes:\n"
"        attach <blockstore path> <vdi id|name> <dm name> <rw|ro> [wait=S]\n"
"            -> ok /dev/mapper/<name> [pending]\n"
"        detach <dm name>  -> ok\n"
"        status            -> lockd <addr> <connected|unreachable>\n"
"                             host <id>\n"
"                             device <name> vdi <id> <rw|ro> lock_gen <g>\n"
"                                    extents <E:G,...|-> [pending|stale]\n"
"                             ok\n"
"    Failures end with \"error <message>\".\n"
"\n"
"EXIT STATUS\n"
"    0 after SIGTERM or SIGINT, 1 if it cannot start (unreadable store,\n"
"    socket in use), 2 for a bad command line.\n"
"\n"
"EXAMPLE\n"
"    parallaxd /dev/sdb --host-id 3\n"
"    echo 'attach /dev/sdb web web rw' | socat - UNIX:/run/parallax/parallaxd.sock\n";

static volatile sig_atomic_t stop_signal;
static bool log_journal;

void pd_log(enum pd_level level, const char *fmt, ...)
{
	static const char *const names[8] = {
		[PD_ERR] = "error", [PD_WARN] = "warning",
		[PD_INFO] = "info", [PD_DEBUG] = "debug",
	};
	char msg[2048];
	va_list ap;

	if (level == PD_DEBUG && !getenv("PARALLAXD_DEBUG"))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log_journal)
		fprintf(stderr, "<%d>%s\n", level, msg);
	else
		fprintf(stderr, "parallaxd: %s: %s\n", names[level], msg);
}

u64 pd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u64)ts.tv_sec * 1000 + (u64)ts.tv_nsec / 1000000;
}

static void on_signal(int sig)
{
	stop_signal = sig;
}

static int usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "parallaxd: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'parallaxd --help'.\n");
	return 2;
}

/* Option, $PARALLAX_HOST_ID, /etc/parallax/host-id, 1: as the CLI. */
static int host_id(const char *opt, u32 *out)
{
	return plx_host_id(opt, out) ? usage_error("%s", plx_errmsg()) : 0;
}

/* ---- The store ---------------------------------------------------------- */

static int store_fd = -1;
static u64 store_blocks;

int pd_read_block(struct pd *pd, u64 nr, void *buf)
{
	void *aligned;
	ssize_t r;

	(void)pd;
	if (posix_memalign(&aligned, PLX_BLOCK_SIZE, PLX_BLOCK_SIZE))
		return -1;
	r = pread(store_fd, aligned, PLX_BLOCK_SIZE, (off_t)(nr * PLX_BLOCK_SIZE));
	if (r == PLX_BLOCK_SIZE)
		memcpy(buf, aligned, PLX_BLOCK_SIZE);
	else if (r >= 0)
		errno = EIO;
	free(aligned);
	return r == PLX_BLOCK_SIZE ? 0 : -1;
}

static int read_super(struct pd *pd, struct plx_superblock *sb)
{
	/* The checksum covers the whole block, not only the struct. */
	union {
		u8 raw[PLX_BLOCK_SIZE];
		struct plx_superblock sb;
	} block;
	enum plx_err e;

	if (pd_read_block(pd, PLX_SUPERBLOCK_BLOCK, block.raw)) {
		pd_log(PD_ERR, "%s: cannot read the superblock: %s",
		       pd->dev_path, strerror(errno));
		return -1;
	}
	e = plx_superblock_check(&block.sb, store_blocks);
	memcpy(sb, &block.sb, sizeof(*sb));
	if (e) {
		pd_log(PD_ERR, "%s: not a valid blockstore: %s", pd->dev_path,
		       plx_strerror(e));
		return -1;
	}
	return 0;
}

int pd_refresh_lockd_addr(struct pd *pd)
{
	struct plx_superblock sb;
	char addr[PLX_LOCKD_ADDR_LEN + 1];

	if (read_super(pd, &sb))
		return -1;
	/* The key may be set when the lock manager first starts. */
	memcpy(pd->key, sb.cluster_key, sizeof(pd->key));
	if (pd->lockd_override)
		return 0;
	plx_copy_name(addr, sb.lockd_addr, PLX_LOCKD_ADDR_LEN);
	if (strcmp(addr, pd->lockd_addr)) {
		if (pd->lockd_addr[0] || addr[0])
			pd_log(PD_INFO, "the blockstore names lock manager %s",
			       addr[0] ? addr : "(none)");
		memcpy(pd->lockd_addr, addr, sizeof(addr));
	}
	return 0;
}

static int open_store(struct pd *pd)
{
	struct stat st;

	if (stat(pd->dev_path, &st)) {
		pd_log(PD_ERR, "%s: %s", pd->dev_path, strerror(errno));
		return -1;
	}
	pd->dev_is_blk = S_ISBLK(st.st_mode);
	if (!pd->dev_is_blk && !S_ISREG(st.st_mode)) {
		pd_log(PD_ERR, "%s is neither a block device nor a file",
		       pd->dev_path);
		return -1;
	}
	pd->dev_rdev = st.st_rdev;
	pd->dev_dev = st.st_dev;
	pd->dev_ino = st.st_ino;
	/*
	 * O_DIRECT: other hosts rewrite the superblock (the lock manager's
	 * address) behind this host's page cache.  Files on filesystems
	 * without O_DIRECT (tmpfs) are read through the cache.
	 */
	store_fd = open(pd->dev_path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (store_fd < 0)
		store_fd = open(pd->dev_path, O_RDONLY | O_CLOEXEC);
	if (store_fd < 0) {
		pd_log(PD_ERR, "%s: %s", pd->dev_path, strerror(errno));
		return -1;
	}
	if (plx_device_blocks(store_fd, &store_blocks)) {
		pd_log(PD_ERR, "%s", plx_errmsg());
		return -1;
	}
	if (read_super(pd, &pd->sb))
		return -1;
	memcpy(pd->key, pd->sb.cluster_key, sizeof(pd->key));
	pd->extent_blocks = le64_to_cpu(pd->sb.extent_blocks);
	if (!pd->lockd_override)
		plx_copy_name(pd->lockd_addr, pd->sb.lockd_addr,
			      PLX_LOCKD_ADDR_LEN);
	return 0;
}

/* ---- Main loop ----------------------------------------------------------- */

static void arm_events(struct pd *pd)
{
	if (pd->ev_fd < 0)
		return;
	if (plx_dm_event_arm(pd->ev_fd)) {
		pd_log(PD_WARN, "%s; watching devices once a second only",
		       plx_errmsg());
		close(pd->ev_fd);
		pd->ev_fd = -1;
	}
}

static void run(struct pd *pd)
{
	u64 next_tick = pd_now_ms() + PD_TICK_MS, next_handover = 0;
	u64 next_gc = 0;

	while (!stop_signal) {
		struct pollfd fds[4];
		int nfds = 0, ctl = -1, lk = -1, ev = -1, gc = -1, timeout;
		u64 now = pd_now_ms();

		fds[nfds] = (struct pollfd){ .fd = pd->listen_fd, .events = POLLIN };
		ctl = nfds++;
		if (pd->lk) {
			fds[nfds] = (struct pollfd){ .fd = plx_lk_fd(pd->lk),
						     .events = POLLIN };
			lk = nfds++;
		}
		if (pd->ev_fd >= 0) {
			fds[nfds] = (struct pollfd){ .fd = pd->ev_fd,
						     .events = POLLIN };
			ev = nfds++;
		}
		if (pd->gc_fd >= 0) {
			fds[nfds] = (struct pollfd){ .fd = pd->gc_fd,
						     .events = POLLIN };
			gc = nfds++;
		}
		timeout = next_tick > now ? (int)(next_tick - now) : 0;
		/* GC jobs left over from the last batch: at once. */
		if (pd->gc_more)
			timeout = 0;
		/* A GC is at work here: ask for its next job every 50 ms. */
		if (now < pd->gc_fast_until) {
			int t = next_gc > now ? (int)(next_gc - now) : 0;

			if (t < timeout)
				timeout = t;
		}
		/* A hand-over is retried five times a second. */
		if (pd_devs_any_pending(pd)) {
			int t = next_handover > now ?
				(int)(next_handover - now) : 0;

			if (t < timeout)
				timeout = t;
		}
		if (poll(fds, nfds, timeout) < 0) {
			if (errno == EINTR)
				continue;
			pd_log(PD_ERR, "poll: %s", strerror(errno));
			break;
		}
		if (ev >= 0 && fds[ev].revents) {
			/* Re-arm first, so an event during the check counts. */
			arm_events(pd);
			pd_devs_check(pd);
		}
		if (lk >= 0 && fds[lk].revents && pd->lk)
			pd_lk_readable(pd);
		if (fds[ctl].revents & POLLIN)
			pd_ctl_accept(pd);
		if (gc >= 0 && fds[gc].revents)
			pd_gc_begin_done(pd);
		if (pd->gc_more) {
			pd_gc_run(pd);
		} else if (pd_now_ms() < pd->gc_fast_until &&
			   pd_now_ms() >= next_gc) {
			next_gc = pd_now_ms() + PD_GC_FAST_TICK_MS;
			pd_gc_run(pd);
		}
		if (pd_now_ms() >= next_handover && pd_devs_any_pending(pd)) {
			next_handover = pd_now_ms() + PD_PENDING_TICK_MS;
			pd_devs_handover(pd);
		}
		if (pd_now_ms() >= next_tick) {
			next_tick = pd_now_ms() + PD_TICK_MS;
			pd_lk_timer(pd);
			pd_devs_check(pd);
			pd_gc_run(pd);
		}
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "host-id", required_argument, NULL, 'H' },
		{ "run-dir", required_argument, NULL, 'r' },
		{ "lockd", required_argument, NULL, 'l' },
		{ "spare", required_argument, NULL, 's' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct pd pd = { .listen_fd = -1, .ev_fd = -1, .gc_fd = -1,
				.spare_pct = 25,
				.lk_backoff_ms = PD_BACKOFF_MIN_MS };
	const char *host_s = NULL, *run_dir = getenv("PARALLAX_RUN_DIR");
	struct sigaction sa = { .sa_handler = on_signal };
	u64 v;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'H':
			host_s = optarg;
			break;
		case 'r':
			run_dir = optarg;
			break;
		case 'l':
			if (!*optarg || strlen(optarg) > PLX_LOCKD_ADDR_LEN ||
			    !strchr(optarg, ':'))
				return usage_error("--lockd wants ADDR:PORT (at most %d characters), not '%s'",
						   PLX_LOCKD_ADDR_LEN, optarg);
			snprintf(pd.lockd_addr, sizeof(pd.lockd_addr), "%s",
				 optarg);
			pd.lockd_override = true;
			break;
		case 's':
			if (plx_parse_u64(optarg, &v) || !v || v > 100)
				return usage_error("--spare wants a percentage 1..100, not '%s'",
						   optarg);
			pd.spare_pct = v;
			break;
		case 'f':
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case ':':
			return usage_error("option '%s' needs an argument",
					   argv[optind - 1]);
		default:
			return usage_error("unknown option '%s'",
					   argv[optind - 1]);
		}
	}
	if (argc - optind != 1)
		return usage_error(argc - optind ? "too many arguments" :
				   "which blockstore? (DEV is missing)");
	pd.dev_path = argv[optind];
	if (host_id(host_s, &pd.host))
		return 2;
	if (!run_dir || !*run_dir)
		run_dir = "/run/parallax";
	if (snprintf(pd.run_dir, sizeof(pd.run_dir), "%s", run_dir) >=
	    (int)sizeof(pd.run_dir))
		return usage_error("--run-dir is too long");
	snprintf(pd.sock_path, sizeof(pd.sock_path), "%s/parallaxd.sock",
		 pd.run_dir);
	log_journal = getenv("JOURNAL_STREAM") != NULL;

	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	/*
	 * A daemon must not hang on a udev that is not running (containers,
	 * test guests); libdevmapper then makes the /dev/mapper nodes.
	 */
	if (access("/run/udev/control", F_OK))
		plx_dm_set_udev_sync(false);

	if (open_store(&pd) || pd_ctl_open(&pd))
		return 1;
	pd.ev_fd = plx_dm_event_open();
	if (pd.ev_fd < 0)
		pd_log(PD_WARN, "%s; watching devices once a second only",
		       plx_errmsg());
	arm_events(&pd);
	pd_log(PD_INFO, "serving %s as host %u (extents of %llu blocks, spare %u%%), control socket %s",
	       pd.dev_path, pd.host, (unsigned long long)pd.extent_blocks,
	       pd.spare_pct, pd.sock_path);
	pd_pending_load(&pd);
	pd_adopt(&pd);
	pd_lk_ensure(&pd, true);
	pd_devs_check(&pd);
	run(&pd);
	pd_log(PD_INFO, "stopping on signal %d; devices stay attached",
	       (int)stop_signal);
	pd_ctl_close(&pd);
	if (pd.lk)
		plx_lk_close(pd.lk);
	return 0;
}
