/* Reading data transfers back from StarPU's FxT file (see fxt.h). The event
 * codes are StarPU 1.3's (src/common/fxt.h), which scripts/build-starpu
 * pins; a StarPU without FxT leaves traces with per-link totals only. */
#include "config.h"
#include "runtime/fxt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HALO_HAVE_FXT
#include <fxt/fxt.h>
#include <fxt/fut.h>
#endif

enum {
	FUT_START_DRIVER_COPY = 0x5133, /* src, dst, size, comid, prefetch, handle */
	FUT_END_DRIVER_COPY = 0x5134,   /* src, dst, size, comid, prefetch */
	FUT_USER_EVENT = 0x5139,        /* code, thread */
};

int halo__fxt_available(void)
{
#ifdef HALO_HAVE_FXT
	return 1;
#else
	return 0;
#endif
}

int halo__fxt_file(const char *dir, char *out, size_t len, halo_error_t *err)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	out[0] = '\0';
	while (d && (e = readdir(d)))
		if (strncmp(e->d_name, "prof_file_", 10) == 0)
			snprintf(out, len, "%s/%s", dir, e->d_name);
	if (d)
		closedir(d);
	return out[0] ? HALO_OK : halo_error_set(err, HALO_ENOENT, "%s: StarPU wrote no FxT trace", dir);
}

#ifdef HALO_HAVE_FXT
struct pending {
	double start;
	uint64_t bytes, handle;
	int src, dst, prefetch, open;
};

int halo__fxt_transfers(const char *dir, const double mark_us[2], struct halo_transfer **out,
			size_t *count, halo_error_t *err)
{
	*out = NULL;
	*count = 0;
	char path[4096];
	if (halo__fxt_file(dir, path, sizeof path, err))
		return HALO_ENOENT;
	int fd = open(path, O_RDONLY);
	fxt_t fut = fd >= 0 ? fxt_fdopen(fd) : NULL;
	if (!fut) {
		if (fd >= 0)
			close(fd);
		return halo_error_set(err, HALO_EIO, "%s: cannot read the FxT trace", path);
	}
	fxt_blockev_t block = fxt_blockev_enter(fut);
	struct fxt_ev_64 ev;
	struct pending *p = NULL;
	struct halo_transfer *t = NULL;
	size_t np = 0, nt = 0, ct = 0;
	double mark[2] = {-1, -1};
	int rc = HALO_OK;
	while (rc == HALO_OK && fxt_next_ev(block, FXT_EV_TYPE_64, (struct fxt_ev *)&ev) == FXT_EV_OK) {
		double time = (double)ev.time;
		if (ev.code == FUT_USER_EVENT && ev.nb_params >= 1) {
			if (ev.param[0] == HALO_FXT_MARK_BEGIN)
				mark[0] = time;
			else if (ev.param[0] == HALO_FXT_MARK_END)
				mark[1] = time;
			continue;
		}
		if ((ev.code != FUT_START_DRIVER_COPY && ev.code != FUT_END_DRIVER_COPY) ||
		    ev.nb_params < 5)
			continue;
		size_t id = (size_t)ev.param[3];
		if (id >= np) {
			size_t n = id + 1 > 2 * np ? id + 1 : 2 * np;
			struct pending *q = realloc(p, n * sizeof *q);
			if (!q) {
				rc = halo_error_set(err, HALO_ENOMEM, "out of memory reading %s", path);
				break;
			}
			memset(q + np, 0, (n - np) * sizeof *q);
			p = q;
			np = n;
		}
		if (ev.code == FUT_START_DRIVER_COPY) {
			p[id] = (struct pending){.start = time, .bytes = ev.param[2],
						 .handle = ev.nb_params > 5 ? ev.param[5] : 0,
						 .src = (int)ev.param[0], .dst = (int)ev.param[1],
						 .prefetch = (int)ev.param[4], .open = 1};
			continue;
		}
		if (!p[id].open)
			continue;
		if (nt == ct) {
			ct = ct ? 2 * ct : 256;
			struct halo_transfer *u = realloc(t, ct * sizeof *u);
			if (!u) {
				rc = halo_error_set(err, HALO_ENOMEM, "out of memory reading %s", path);
				break;
			}
			t = u;
		}
		t[nt++] = (struct halo_transfer){.start = p[id].start, .end = time, .src = p[id].src,
						 .dst = p[id].dst, .bytes = p[id].bytes,
						 .handle = (uintptr_t)p[id].handle,
						 .prefetch = p[id].prefetch};
		p[id].open = 0;
	}
	fxt_blockev_leave(block);
	fxt_close(fut);
	free(p);
	if (rc == HALO_OK && nt && (mark[0] < 0 || mark[1] <= mark[0]))
		rc = halo_error_set(err, HALO_ERUNTIME, "%s: the FxT trace lacks halo's clock marks", path);
	if (rc) {
		free(t);
		return rc;
	}
	/* FxT's clock onto StarPU's, through the two marks. */
	double scale = nt ? (mark_us[1] - mark_us[0]) / (mark[1] - mark[0]) : 0;
	for (size_t i = 0; i < nt; i++) {
		t[i].start = mark_us[0] + (t[i].start - mark[0]) * scale;
		t[i].end = mark_us[0] + (t[i].end - mark[0]) * scale;
	}
	*out = t;
	*count = nt;
	return HALO_OK;
}
#else
int halo__fxt_transfers(const char *dir, const double mark_us[2], struct halo_transfer **out,
			size_t *count, halo_error_t *err)
{
	(void)mark_us;
	*out = NULL;
	*count = 0;
	return halo_error_set(err, HALO_EUNSUPPORTED, "%s: this StarPU records no FxT trace", dir);
}
#endif
