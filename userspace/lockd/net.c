// SPDX-License-Identifier: GPL-2.0
/*
 * parallax-lockd's sockets: one listening TCP socket and up to
 * LKD_MAX_CONNS non-blocking connections served by a single-threaded
 * ppoll() loop.  SIGTERM and SIGINT are blocked except inside ppoll(), so
 * a signal never interrupts a block write and the loop ends cleanly.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lockd.h"

static volatile sig_atomic_t lkd_stop;

static void on_signal(int sig)
{
	(void)sig;
	lkd_stop = 1;
}

/* "host:port" or "[v6]:port"; the port is required. */
static int listen_on(const char *addr)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE,
	};
	char host[PLX_LOCKD_ADDR_LEN + 1], *port;
	struct addrinfo *res, *ai;
	int fd = -1, one = 1, r, err = 0;

	snprintf(host, sizeof(host), "%s", addr);
	port = strrchr(host, ':');
	if (!port || port == host || !port[1]) {
		plx_seterr(PLX_EK_USAGE, "'%s' is not an address:port", addr);
		return -1;
	}
	*port++ = 0;
	if (host[0] == '[' && port[-2] == ']') {
		port[-2] = 0;
		memmove(host, host + 1, strlen(host));
	}
	r = getaddrinfo(host, port, &hints, &res);
	if (r) {
		plx_seterr(PLX_EK_USAGE, "cannot listen on %s: %s", addr,
			   gai_strerror(r));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
			    SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (!bind(fd, ai->ai_addr, ai->ai_addrlen) &&
		    !listen(fd, 128))
			break;
		err = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		plx_seterr(PLX_EK_STORE, "cannot listen on %s: %s", addr,
			   strerror(err));
	return fd;
}

static void peer_name(const struct sockaddr_storage *ss, char *buf,
		      size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned int port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)ss;

		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
		snprintf(buf, len, "%s:%u", host, port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)ss;

		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
		snprintf(buf, len, "[%s]:%u", host, port);
	} else {
		snprintf(buf, len, "?");
	}
}

static void accept_all(struct lkd *d, int lfd)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	char peer[80];
	int fd, one = 1;

	for (;;) {
		sl = sizeof(ss);
		fd = accept4(lfd, (struct sockaddr *)&ss, &sl,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		peer_name(&ss, peer, sizeof(peer));
		if (d->nr_conns >= LKD_MAX_CONNS) {
			lkd_log(d, "refused a connection from %s: %d connections open",
				peer, LKD_MAX_CONNS);
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (!lkd_conn_new(d, fd, peer))
			close(fd);
	}
}

/* Send what is queued; -1 if the peer is gone. */
static int flush_out(struct lkd_conn *c)
{
	ssize_t n;

	while (c->out_off < c->out_len) {
		n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
			 MSG_NOSIGNAL);
		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		return -1;
	}
	c->out_off = c->out_len = 0;
	return 0;
}

static void serve_conn(struct lkd *d, struct lkd_conn *c, short revents)
{
	uint8_t buf[4096];
	ssize_t n;

	if (revents & POLLIN) {
		n = recv(c->fd, buf, sizeof(buf), 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR &&
			       errno != EWOULDBLOCK))
			c->dead = true;
		else if (n > 0 && lkd_conn_input(d, c, buf, (size_t)n))
			c->dead = true;
	} else if (revents & (POLLERR | POLLHUP | POLLNVAL)) {
		c->dead = true;
	}
	if (!c->dead && flush_out(c))
		c->dead = true;
	if (c->closing && c->out_len == 0)
		c->dead = true;
}

int lkd_serve(struct lkd *d, const char *listen_addr)
{
	struct pollfd pfd[LKD_MAX_CONNS + 1];
	struct lkd_conn *pc[LKD_MAX_CONNS + 1];
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t block, old;
	struct timespec tick = { .tv_sec = 1 };
	size_t i, n;
	int lfd, r;

	lfd = listen_on(listen_addr);
	if (lfd < 0)
		return -1;
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &old);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	lkd_log(d, "serving %s on %s (advertised as %s), lease %u ms%s",
		d->path, listen_addr, d->addr, d->lease_ms,
		d->direct ? "" : ", without O_DIRECT");

	while (!lkd_stop) {
		pfd[0].fd = lfd;
		pfd[0].events = POLLIN;
		pc[0] = NULL;
		n = 1;
		for (i = 0; i < LKD_MAX_CONNS; i++) {
			struct lkd_conn *c = d->conns[i];

			if (!c)
				continue;
			pfd[n].fd = c->fd;
			pfd[n].events = POLLIN | (c->out_len ? POLLOUT : 0);
			pc[n++] = c;
		}
		r = ppoll(pfd, n, &tick, &old);
		if (r < 0 && errno != EINTR) {
			plx_seterr(PLX_EK_STORE, "poll: %s", strerror(errno));
			close(lfd);
			return -1;
		}
		if (r > 0) {
			for (i = 1; i < n; i++)
				if (pfd[i].revents)
					serve_conn(d, pc[i], pfd[i].revents);
			if (pfd[0].revents & POLLIN)
				accept_all(d, lfd);
		}
		lkd_conn_timeouts(d, lkd_now_ms());
		for (i = 0; i < LKD_MAX_CONNS; i++) {
			struct lkd_conn *c = d->conns[i];

			/* A BREAK may have marked other hosts' links dead. */
			if (c && c->dead)
				lkd_conn_free(d, c);
		}
	}
	lkd_log(d, "exiting on a signal");
	close(lfd);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return 0;
}
