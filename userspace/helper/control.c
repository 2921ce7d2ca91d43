// SPDX-License-Identifier: GPL-2.0
/*
 * parallaxd's control socket: one request line per connection, zero or
 * more info lines, then "ok [...]" or "error <message>".  Clients are
 * served one at a time in the main loop; requests are quick, and a slow
 * or silent client is dropped after PD_CLIENT_TIMEOUT_MS so that it
 * cannot stall lease renewals.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "parallaxd.h"

#define PD_MAX_REQUEST	4096

int pd_ctl_open(struct pd *pd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t old;
	int fd;

	if (mkdir(pd->run_dir, 0700) && errno != EEXIST) {
		pd_log(PD_ERR, "cannot create %s: %s", pd->run_dir,
		       strerror(errno));
		return -1;
	}
	if (strlen(pd->sock_path) >= sizeof(sa.sun_path)) {
		pd_log(PD_ERR, "socket path %s is too long (at most %zu bytes)",
		       pd->sock_path, sizeof(sa.sun_path) - 1);
		return -1;
	}
	memcpy(sa.sun_path, pd->sock_path, strlen(pd->sock_path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		pd_log(PD_ERR, "socket: %s", strerror(errno));
		return -1;
	}
	if (!lstat(pd->sock_path, &st)) {
		int probe;

		if (!S_ISSOCK(st.st_mode)) {
			pd_log(PD_ERR, "%s exists and is not a socket; not touching it",
			       pd->sock_path);
			goto fail;
		}
		/* Live only if somebody answers; a stale one is ours to reuse. */
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 &&
		    !connect(probe, (struct sockaddr *)&sa, sizeof(sa))) {
			close(probe);
			pd_log(PD_ERR, "another parallaxd is listening on %s",
			       pd->sock_path);
			goto fail;
		}
		if (probe >= 0)
			close(probe);
		if (unlink(pd->sock_path)) {
			pd_log(PD_ERR, "cannot remove stale %s: %s",
			       pd->sock_path, strerror(errno));
			goto fail;
		}
	}
	/* Created 0600: the socket grants root's powers over the store. */
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		umask(old);
		pd_log(PD_ERR, "bind %s: %s", pd->sock_path, strerror(errno));
		goto fail;
	}
	umask(old);
	if (chmod(pd->sock_path, 0600) || listen(fd, 16)) {
		pd_log(PD_ERR, "listen %s: %s", pd->sock_path, strerror(errno));
		unlink(pd->sock_path);
		goto fail;
	}
	pd->listen_fd = fd;
	return 0;
fail:
	close(fd);
	return -1;
}

void pd_ctl_close(struct pd *pd)
{
	if (pd->listen_fd >= 0) {
		close(pd->listen_fd);
		unlink(pd->sock_path);
		pd->listen_fd = -1;
	}
}

void pd_ctl_printf(int fd, const char *fmt, ...)
{
	char buf[16384];
	size_t off = 0, len;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	len = (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1;
	while (off < len) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		ssize_t w;

		if (poll(&p, 1, PD_CLIENT_TIMEOUT_MS) <= 0)
			return;		/* the client stopped reading */
		w = send(fd, buf + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (w <= 0)
			return;
		off += (size_t)w;
	}
}

/*
 * Read one line within the deadline: 1 if one came, 0 if none came, -1
 * if it was longer than any valid request.
 */
static int read_request(int fd, char *buf, size_t len)
{
	u64 deadline = pd_now_ms() + PD_CLIENT_TIMEOUT_MS;
	size_t got = 0;

	while (got < len - 1) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		u64 now = pd_now_ms();
		ssize_t r;

		if (now >= deadline || poll(&p, 1, (int)(deadline - now)) <= 0)
			return 0;
		r = recv(fd, buf + got, len - 1 - got, MSG_DONTWAIT);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
		if (memchr(buf, '\n', got))
			break;
	}
	buf[got] = '\0';
	if (!memchr(buf, '\n', got) && got == len - 1)
		return -1;
	buf[strcspn(buf, "\r\n")] = '\0';
	return got > 0;
}

static void serve(struct pd *pd, int fd, char *line)
{
	char *argv[8], *save = NULL, *tok;
	char ok[4200] = "", err[1024] = "";
	int argc = 0;

	for (tok = strtok_r(line, " \t", &save); tok && argc < 8;
	     tok = strtok_r(NULL, " \t", &save))
		argv[argc++] = tok;
	if (tok) {
		pd_ctl_printf(fd, "error too many arguments\n");
		return;
	}
	if (!argc) {
		pd_ctl_printf(fd, "error empty request\n");
	} else if (!strcmp(argv[0], "attach")) {
		const char *cache = NULL, *cache_mode = NULL;
		u64 wait = 0;
		int i;

		if (argc < 5) {
			pd_ctl_printf(fd, "error usage: attach <blockstore> <vdi> <name> <rw|ro> [wait=<seconds>] [cache=<log device>] [cache_mode=<always|adaptive>]\n");
			return;
		}
		for (i = 5; i < argc; i++) {
			if (!strncmp(argv[i], "cache=", 6)) {
				cache = argv[i] + 6;
			} else if (!strncmp(argv[i], "cache_mode=", 11)) {
				cache_mode = argv[i] + 11;
			} else if (strncmp(argv[i], "wait=", 5) ||
				   plx_parse_u64(argv[i] + 5, &wait) || !wait ||
				   wait > PD_MAX_WAIT_S) {
				pd_ctl_printf(fd, "error '%.64s': expected wait=<seconds> (1..%d), cache=<log device> or cache_mode=<always|adaptive>\n",
					      argv[i], PD_MAX_WAIT_S);
				return;
			}
		}
		if (pd_attach(pd, argv[1], argv[2], argv[3], argv[4],
			      (unsigned int)wait, cache, cache_mode, ok,
			      sizeof(ok), err, sizeof(err)))
			pd_ctl_printf(fd, "error %s\n", err);
		else
			pd_ctl_printf(fd, "ok %s\n", ok);
	} else if (!strcmp(argv[0], "detach")) {
		if (argc != 2) {
			pd_ctl_printf(fd, "error usage: detach <name>\n");
			return;
		}
		if (pd_detach(pd, argv[1], err, sizeof(err)))
			pd_ctl_printf(fd, "error %s\n", err);
		else
			pd_ctl_printf(fd, "ok\n");
	} else if (!strcmp(argv[0], "status")) {
		if (argc != 1) {
			pd_ctl_printf(fd, "error usage: status\n");
			return;
		}
		pd_status(pd, fd);
		pd_ctl_printf(fd, "ok\n");
	} else {
		pd_ctl_printf(fd, "error unknown request '%.64s' (attach, detach, status)\n",
			      argv[0]);
	}
}

void pd_ctl_accept(struct pd *pd)
{
	char line[PD_MAX_REQUEST];
	int fd;

	fd = accept4(pd->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			pd_log(PD_WARN, "accept: %s", strerror(errno));
		return;
	}
	switch (read_request(fd, line, sizeof(line))) {
	case 1:
		serve(pd, fd, line);
		break;
	case -1:
		pd_ctl_printf(fd, "error request longer than %d bytes\n",
			      PD_MAX_REQUEST - 1);
		break;
	default:
		pd_log(PD_DEBUG, "control client sent no request in time");
	}
	close(fd);
}
