// SPDX-License-Identifier: GPL-2.0
/*
 * A one-line progress bar on stderr for long commands (check, import,
 * export, df, gc).  It is drawn only when stderr is a terminal, the user
 * did not ask for --quiet, and the operation has been running for more
 * than a second: short commands and scripts never see it.  The line is
 * redrawn with "\r" at most 10 times a second and erased at the end, so
 * that what the command prints afterwards starts on a clean line.
 *
 * $PARALLAX_PROGRESS_DELAY_MS overrides the one-second delay (the tests
 * use 0 to see the bar on small stores).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define CLI_PROGRESS_DELAY_MS	1000
#define CLI_PROGRESS_PERIOD_MS	100

static u64 cli_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u64)ts.tv_sec * 1000 + (u64)ts.tv_nsec / 1000000;
}

void cli_progress_init(struct cli_progress *p, bool quiet)
{
	const char *env = getenv("PARALLAX_PROGRESS_DELAY_MS");
	struct winsize ws;
	u64 delay = CLI_PROGRESS_DELAY_MS;

	memset(p, 0, sizeof(*p));
	p->on = !quiet && isatty(2);
	if (!p->on)
		return;
	if (env && plx_parse_u64(env, &delay))
		delay = CLI_PROGRESS_DELAY_MS;
	p->show_at = cli_mono_ms() + delay;
	p->width = 80;
	if (!ioctl(2, TIOCGWINSZ, &ws) && ws.ws_col >= 20)
		p->width = ws.ws_col;
	if (p->width > CLI_PROGRESS_MAX)
		p->width = CLI_PROGRESS_MAX;
}

void cli_progress_clear(struct cli_progress *p)
{
	if (!p->shown)
		return;
	/* Spaces rather than an erase escape: any terminal understands. */
	fprintf(stderr, "\r%*s\r", p->width - 1, "");
	fflush(stderr);
	p->shown = false;
}

void cli_progress_fn(void *arg, const char *phase, u64 done, u64 total)
{
	struct cli_progress *p = arg;
	char line[CLI_PROGRESS_MAX + 1];
	u64 now;
	int n, bar, fill, i;

	if (!p || !p->on)
		return;
	now = cli_mono_ms();
	if (now < p->show_at)
		return;
	if (p->shown && now < p->last + CLI_PROGRESS_PERIOD_MS)
		return;
	p->last = now;
	if (done > total && total)
		done = total;
	/* "gc: mark: ", but "import: " rather than "import: import: ". */
	if (cli_cmd && strcmp(cli_cmd, phase))
		n = snprintf(line, sizeof(line), "%s: %s: ", cli_cmd, phase);
	else
		n = snprintf(line, sizeof(line), "%s: ", phase);
	if (total) {
		/* "[=====>    ]  45% (123/456)" in the width left. */
		char tail[64];
		int tl = snprintf(tail, sizeof(tail), " %3u%% (%llu/%llu)",
				  (unsigned int)(done * 100 / total),
				  (unsigned long long)done,
				  (unsigned long long)total);

		bar = p->width - 1 - n - tl - 2;
		if (bar >= 10 && n < (int)sizeof(line)) {
			fill = (int)((double)done / (double)total * bar);
			line[n++] = '[';
			for (i = 0; i < bar; i++)
				line[n++] = i < fill ? '=' :
					    i == fill ? '>' : ' ';
			line[n++] = ']';
			line[n] = 0;
		}
		if (n < (int)sizeof(line))
			snprintf(line + n, sizeof(line) - n, "%s", tail);
	} else if (n < (int)sizeof(line)) {
		snprintf(line + n, sizeof(line) - n, "%llu",
			 (unsigned long long)done);
	}
	line[p->width - 1] = 0;
	fprintf(stderr, "\r%-*s", p->width - 1, line);
	fflush(stderr);
	p->shown = true;
}

void cli_progress_done(struct cli_progress *p)
{
	cli_progress_clear(p);
	p->on = false;
}

int cli_quiet_only(int argc, char **argv, int nmin, int nmax, bool *quiet)
{
	static const struct option opts[] = {
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*quiet = false;
	while ((c = cli_getopt(argc, argv, ":hq", opts)) != -1) {
		if (c == 'q')
			*quiet = true;
		else if (c == 'h')
			return cli_help(cli_cmd);
		else
			return EXIT_USAGE;
	}
	if (cli_nargs(argc, argv, nmin, nmax))
		return EXIT_USAGE;
	return -1;
}
