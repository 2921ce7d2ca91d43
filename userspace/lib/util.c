// SPDX-License-Identifier: GPL-2.0
/*
 * Error state, number parsing and small helpers shared by the library and
 * the command-line tool.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "libparallax.h"

static char plx_err_buf[512];
static enum plx_errkind plx_err_kind;

void plx_seterr(enum plx_errkind kind, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(plx_err_buf, sizeof(plx_err_buf), fmt, ap);
	va_end(ap);
	plx_err_kind = kind;
}

const char *plx_errmsg(void)
{
	return plx_err_buf[0] ? plx_err_buf : "unknown error";
}

enum plx_errkind plx_errkind(void)
{
	return plx_err_kind;
}

bool plx_all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

int plx_parse_u64(const char *s, u64 *out)
{
	const char *p;
	u64 v = 0;

	if (!s || !*s)
		goto bad;
	for (p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			goto bad;
		if (v > (~0ULL - (u64)(*p - '0')) / 10)
			goto bad;
		v = v * 10 + (u64)(*p - '0');
	}
	*out = v;
	return 0;
bad:
	plx_seterr(PLX_EK_USAGE, "'%s' is not a valid number", s ? s : "");
	return -1;
}

int plx_parse_size(const char *s, u64 *out)
{
	char num[32];
	const char *p = s;
	unsigned int shift = 0;
	size_t n;
	u64 v;

	while (*p >= '0' && *p <= '9')
		p++;
	n = (size_t)(p - s);
	if (!n || n >= sizeof(num))
		goto bad;
	memcpy(num, s, n);
	num[n] = 0;
	if (*p) {
		switch (*p) {
		case 'k': case 'K':
			shift = 10;
			break;
		case 'm': case 'M':
			shift = 20;
			break;
		case 'g': case 'G':
			shift = 30;
			break;
		case 't': case 'T':
			shift = 40;
			break;
		default:
			goto bad;
		}
		p++;
		if (!strcmp(p, "iB") || !strcmp(p, "B"))
			p += strlen(p);
		if (*p)
			goto bad;
	}
	if (plx_parse_u64(num, &v))
		goto bad;
	if (shift && v > (~0ULL >> shift))
		goto bad;
	*out = v << shift;
	return 0;
bad:
	plx_seterr(PLX_EK_USAGE, "'%s' is not a valid size", s);
	return -1;
}

char *plx_human_size(u64 bytes, char *buf, size_t len)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	unsigned int u = 0;
	u64 v = bytes;

	while (u < 4 && v >= 1024 && !(v & 1023)) {
		v >>= 10;
		u++;
	}
	snprintf(buf, len, "%llu %s", (unsigned long long)v, unit[u]);
	return buf;
}

void plx_copy_name(char *out, const char *disk, size_t len)
{
	size_t i;

	for (i = 0; i < len && disk[i]; i++)
		out[i] = disk[i];
	out[i] = 0;
}

u64 plx_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (u64)ts.tv_sec * 1000000000ULL + (u64)ts.tv_nsec;
}

void plx_json_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', f);
	for (; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else if (*p == '\t')
			fputs("\\t", f);
		else if (*p < 0x20 || *p >= 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

int plx_host_id(const char *opt, u32 *out)
{
	const char *src = opt ? opt : getenv("PARALLAX_HOST_ID");
	char buf[32] = "";
	u64 v;

	if (!src) {
		FILE *f = fopen("/etc/parallax/host-id", "r");

		if (f) {
			if (fgets(buf, sizeof(buf), f))
				buf[strcspn(buf, " \t\n")] = '\0';
			fclose(f);
			src = buf;
		}
	}
	if (!src || !*src) {
		*out = 1;
		return 0;
	}
	if (plx_parse_u64(src, &v) || !v || v > UINT32_MAX) {
		plx_seterr(PLX_EK_USAGE, "host id '%s' is not in 1..4294967295",
			   src);
		return -1;
	}
	*out = v;
	return 0;
}
