/* Progress line (see progress.h). The ETA assumes the rate so far holds,
 * which is good enough for chunk streams of uniform work. */
#include "config.h"
#include "util/progress.h"

#include <stdio.h>
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
}

void halo_progress_update(halo_progress_t *p, int64_t done, uint64_t bytes)
{
	if (!p->enabled)
		return;
	double now = halo_now();
	if (now - p->last < 0.2 && done < p->total)
		return;
	p->last = now;
	double elapsed = now - p->start;
	double rate = elapsed > 0 ? (double)done / elapsed : 0;
	double eta = rate > 0 ? (double)(p->total - done) / rate : 0;
	/* Early in a huge run the rate may promise centuries: capped (and
	 * kept in range of the integer it is printed from). */
	long long eta_s = eta < 3600.0 * 9999 ? (long long)(eta + 0.5) : 3600LL * 9999;
	char mbs[32] = "", left[32] = "--:--:--";
	if (bytes && elapsed > 0)
		snprintf(mbs, sizeof mbs, ", %.1f MB/s", (double)bytes / elapsed / 1e6);
	/* Nothing done, nothing known: no ETA yet. */
	if (done > 0)
		snprintf(left, sizeof left, "%lld:%02lld:%02lld", eta_s / 3600, eta_s / 60 % 60,
			 eta_s % 60);
	fprintf(stderr, "\r%s: %lld/%lld %s, %.1f %s/s%s, ETA %s  \033[K", p->label,
		(long long)done, (long long)p->total, p->unit, rate, p->unit, mbs, left);
	fflush(stderr);
	p->drawn = 1;
}

void halo_progress_finish(halo_progress_t *p)
{
	if (p->enabled && p->drawn)
		fprintf(stderr, "\r\033[K");
	p->drawn = 0;
}
