/* Progress line (see progress.h). The ETA assumes the rate since the first
 * count holds, which is good enough for chunk streams of uniform work. */
#include "config.h"
#include "util/progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#ifdef HALO_SIMULATE
#include <starpu.h>
#endif

double halo_now(void)
{
#ifdef HALO_SIMULATE
	/* halo-sim reports SimGrid's simulated time. */
	return starpu_timing_now() / 1e6;
#else
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
#endif
}

void halo_progress_init(halo_progress_t *p, const char *label, int64_t total, int quiet)
{
	p->label = label;
	p->unit = "chunks";
	p->total = total;
	p->start = p->last = halo_now();
	p->enabled = !quiet && isatty(STDERR_FILENO);
	p->drawn = 0;
	p->first = 0;
	const char *term = getenv("TERM");
	p->dumb = term && strcmp(term, "dumb") == 0;
}

/* A rate with three figures at most: "0.041", "2.35", "23.5", "235". */
static void rate_text(double r, char *buf, size_t len)
{
	snprintf(buf, len, r >= 100 ? "%.0f" : r >= 10 ? "%.1f" : r >= 1 ? "%.2f" : "%.2g", r);
}

void halo_progress_update(halo_progress_t *p, int64_t done, uint64_t bytes)
{
	if (!p->enabled)
		return;
	double now = halo_now();
	if (done > 0 && !p->first) {
		p->first = done;
		p->first_t = now;
	}
	/* The last count is drawn at once, and once. */
	if (done < p->total ? now - p->last < 0.2 : p->drawn && p->shown == done)
		return;
	p->shown = done;
	p->last = now;
	double elapsed = now - p->start;
	double rate = elapsed > 0 ? (double)done / elapsed : 0;
	/* The start (StarPU's, FFTW's plans, the first reads) holds up the
	 * first count alone: from the second on, the ETA follows the rate
	 * since the first (exact mode's first line said 2:17 for a 5 s run). */
	double ahead = done > p->first && now > p->first_t
			       ? (double)(done - p->first) / (now - p->first_t) : rate;
	double eta = ahead > 0 ? (double)(p->total - done) / ahead : 0;
	/* Early in a huge run the rate may promise centuries: capped (and
	 * kept in range of the integer it is printed from). */
	long long eta_s = eta < 3600.0 * 9999 ? (long long)(eta + 0.5) : 3600LL * 9999;
	char mbs[32] = "", left[32] = "--:--:--", r[16], line[512];
	if (bytes && elapsed > 0)
		snprintf(mbs, sizeof mbs, ", %.1f MB/s", (double)bytes / elapsed / 1e6);
	/* Nothing done, nothing known: no ETA yet. */
	if (done > 0)
		snprintf(left, sizeof left, "%lld:%02lld:%02lld", eta_s / 3600, eta_s / 60 % 60,
			 eta_s % 60);
	rate_text(rate, r, sizeof r);
	int n = snprintf(line, sizeof line, "%s: %lld/%lld %s, %s %s/s%s, ETA %s", p->label,
			 (long long)done, (long long)p->total, p->unit, r, p->unit, mbs, left);
	n = n < 0 ? 0 : n >= (int)sizeof line ? (int)sizeof line - 1 : n;
	/* A line wider than the terminal wraps, and \r goes back to its last
	 * row only: cut to the width, less the last column (some terminals
	 * wrap on it). */
	struct winsize ws;
	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 && n > ws.ws_col - 1)
		n = ws.ws_col - 1;
	/* A dumb terminal has no erase-line: spaces cover the longer line
	 * before. */
	int pad = p->dumb && p->width > n ? p->width - n : 0;
	fprintf(stderr, "\r%.*s%*s%s", n, line, pad, "", p->dumb ? "" : "\033[K");
	fflush(stderr);
	p->width = n;
	p->drawn = 1;
}

void halo_progress_finish(halo_progress_t *p)
{
	if (p->enabled && p->drawn)
		fprintf(stderr, "\r%*s%s", p->dumb ? p->width : 0, "", p->dumb ? "\r" : "\033[K");
	p->drawn = 0;
}
