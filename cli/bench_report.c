/* `halo bench`'s reports: the terminal table (halo's speed-up over each
 * peer), the JSON with every measurement, and an SVG plot of throughput per
 * configuration and of achieved bandwidth as a share of the peak. */
#include "config.h"
#include "cli/bench.h"
#include "io/fs.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double bench_median(const struct bench_run *r)
{
	double t[64];
	memcpy(t, r->times, (size_t)r->ntimes * sizeof *t);
	qsort(t, (size_t)r->ntimes, sizeof *t, cmp_double);
	int n = r->ntimes;
	return n == 0 ? 0 : n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

static double bench_min(const struct bench_run *r)
{
	double m = r->ntimes ? r->times[0] : 0;
	for (int i = 1; i < r->ntimes; i++)
		m = r->times[i] < m ? r->times[i] : m;
	return m;
}

static double bench_max(const struct bench_run *r)
{
	double m = r->ntimes ? r->times[0] : 0;
	for (int i = 1; i < r->ntimes; i++)
		m = r->times[i] > m ? r->times[i] : m;
	return m;
}

static int is_halo(const struct bench_run *r)
{
	return !strcmp(r->tool, "halo");
}

static int is_gpu_peer(const struct bench_run *r)
{
	return strstr(r->tool, "cupy") != NULL || !strcmp(r->tool, "cufft");
}

/* The model's memory traffic for one run of r (0: no model). */
static double bench_run_bytes(const struct bench_workload *w, const struct bench_run *r)
{
	/* Fused into the transforms (cuFFT callbacks), the two products only
	 * read the OTF (4 B/voxel each) instead of 12 B/voxel each; the ratio
	 * and update read the image and the estimate and write the estimate
	 * (12 B/voxel) instead of 24. */
	int load = strstr(r->cuda_rl, "load") || !strcmp(r->cuda_rl, "callbacks");
	int store = strstr(r->cuda_rl, "store") || !strcmp(r->cuda_rl, "callbacks");
	/* cuFFT alone: the four transforms, each reading and writing its
	 * array once (8 B/voxel): what is left of the model. The seed's numpy
	 * RL computes in float64: twice the bytes. */
	if (!strcmp(r->tool, "cufft"))
		return w->bytes * 32 / 80;
	if (!strcmp(r->tool, "numpy"))
		return w->bytes * 2;
	return w->bytes * (32 + (load ? 8 : 24) + (store ? 12 : 24)) / 80;
}

/* The peak bandwidth that a run's throughput is measured against: the
 * GPU's when it ran on GPUs only, the measured CPU copy bandwidth when on
 * CPUs only, their sum when on both. */
static double bench_peak_gbs(const struct bench_report *rep, const struct bench_run *r)
{
	int gpu = is_halo(r) ? r->cfg.ncuda != 0 : is_gpu_peer(r);
	int cpu = is_halo(r) ? r->cfg.ncpu != 0 : !is_gpu_peer(r);
	return (gpu ? rep->gpu_peak_gbs : 0) + (cpu ? rep->cpu_copy_gbs : 0);
}

void bench_cfg_label(const struct bench_workload *w, const struct bench_cfg *c, char *out,
		     size_t len)
{
	char cpu[16];
	if (c->ncpu < 0)
		snprintf(cpu, sizeof cpu, "all");
	else
		snprintf(cpu, sizeof cpu, "%d", c->ncpu);
	if (!strcmp(w->name, "rl"))
		snprintf(out, len, "cpu=%s gpu=%d", cpu, c->ncuda);
	else if (!strcmp(w->name, "convert"))
		snprintf(out, len, "cpu=%s %s %lldx%lldx%lld", cpu, c->sched,
			 (long long)c->chunks[0], (long long)c->chunks[1], (long long)c->chunks[2]);
	else
		snprintf(out, len, "cpu=%s gpu=%d %s %lldx%lldx%lld %s", cpu, c->ncuda, c->sched,
			 (long long)c->chunks[0], (long long)c->chunks[1], (long long)c->chunks[2],
			 c->mode);
}

static double throughput(const struct bench_workload *w, double seconds)
{
	return seconds > 0 ? w->work / seconds : 0;
}

static const char *run_name(const struct bench_workload *w, const struct bench_run *r,
			    char *buf, size_t len)
{
	/* rl on a GPU: whether cuFFT took the callbacks. */
	if (is_halo(r) && !strcmp(w->name, "rl") && r->cfg.ncuda)
		snprintf(buf, len, "halo %s, %s%s", r->label, r->cuda_rl[0] ? r->cuda_rl : "kernels",
			 r->cuda_graphs ? ", graphs" : "");
	else if (is_halo(r))
		snprintf(buf, len, "halo %s", r->label);
	else
		snprintf(buf, len, "%s", r->label);
	return buf;
}

/* Whether run p of w is a peer's first available run: the table has a
 * column per peer, whatever chunk shapes it ran with. */
static int peer_column(const struct bench_workload *w, int p)
{
	const struct bench_run *r = &w->runs[p];
	if (is_halo(r) || !r->available)
		return 0;
	for (int i = 0; i < p; i++)
		if (w->runs[i].available && !strcmp(w->runs[i].tool, r->tool))
			return 0;
	return 1;
}

/* The run of peer tool that halo's run r is compared with: the one that
 * cut the volume into r's chunks (rl's peers run one chunk). */
static const struct bench_run *peer_for(const struct bench_workload *w, const struct bench_run *r,
					const char *tool)
{
	for (int i = 0; i < w->nruns; i++) {
		const struct bench_run *p = &w->runs[i];
		if (!is_halo(p) && p->available && !strcmp(p->tool, tool) &&
		    (!strcmp(w->name, "rl") || !memcmp(p->cfg.chunks, r->cfg.chunks, sizeof p->cfg.chunks)))
			return p;
	}
	return NULL;
}

/* The run of w in r's configuration but with ncpu CPUs and ncuda GPUs. */
static const struct bench_run *sibling(const struct bench_workload *w, const struct bench_run *r,
				       int ncpu, int ncuda)
{
	for (int i = 0; i < w->nruns; i++) {
		const struct bench_cfg *c = &w->runs[i].cfg;
		if (is_halo(&w->runs[i]) && w->runs[i].available && c->ncpu == ncpu &&
		    c->ncuda == ncuda && !strcmp(c->sched, r->cfg.sched) &&
		    !memcmp(c->chunks, r->cfg.chunks, sizeof c->chunks) &&
		    !strcmp(c->mode ? c->mode : "", r->cfg.mode ? r->cfg.mode : ""))
			return &w->runs[i];
	}
	return NULL;
}

/* How much of the CPUs' and the GPUs' throughputs apart a CPU+GPU run of
 * deconvolve reaches together (1: they add up); 0 when one is missing. */
static double co_scheduling(const struct bench_workload *w, const struct bench_run *r,
			    double *cpu, double *gpu)
{
	if (strcmp(w->name, "deconvolve") || !is_halo(r) || !r->available || !r->cfg.ncpu ||
	    !r->cfg.ncuda)
		return 0;
	const struct bench_run *c = sibling(w, r, r->cfg.ncpu, 0), *g = sibling(w, r, 0, r->cfg.ncuda);
	if (!c || !g)
		return 0;
	*cpu = throughput(w, bench_median(c));
	*gpu = throughput(w, bench_median(g));
	return *cpu + *gpu > 0 ? throughput(w, bench_median(r)) / (*cpu + *gpu) : 0;
}

/* A rate to read in a column: one decimal, or three significant figures
 * below 100, so that a tiny volume's 0.043 Mvox*iter/s is not "0.0". */
static const char *rate(double v, char *buf, size_t len)
{
	snprintf(buf, len, v >= 100 || v == 0 || !isfinite(v) ? "%.1f" : "%#.3g", v);
	return buf;
}

void bench_report_table(FILE *f, const struct bench_report *rep)
{
	for (int k = 0; k < rep->nworkloads; k++) {
		const struct bench_workload *w = &rep->workloads[k];
		fprintf(f, "%s%s: %s\n", k ? "\n" : "", w->name, w->about);
		const json_t *sim = json_object_get(rep->machine, "simulated");
		if (sim)
			fprintf(f, "  seconds simulated by halo-sim on %lld cores and %lld GPUs, "
				   "one run each (a simulation repeats itself exactly; with --ncpu 0 "
				   "the cores the GPUs leave read and write)\n",
				(long long)json_integer_value(json_object_get(sim, "cpus")),
				(long long)json_integer_value(json_object_get(sim, "gpus")));
		else
			fprintf(f, "  seconds: median of %d run%s after %d warm-up%s (min, max); "
				   "vs X: X's median / halo's\n",
				rep->repeat, rep->repeat == 1 ? "" : "s", rep->warmup,
				rep->warmup == 1 ? "" : "s");
		/* As wide as the longest name (modular-* schedulers are long). */
		int wide = 44;
		for (int i = 0; i < w->nruns; i++) {
			char name[200];
			run_name(w, &w->runs[i], name, sizeof name);
			wide = (int)strlen(name) > wide ? (int)strlen(name) : wide;
		}
		fprintf(f, "  %-*s %8s %8s %8s %12s", wide, "", "median", "min", "max", w->units);
		if (w->bytes > 0)
			fprintf(f, " %7s %6s", "GB/s", "%peak");
		for (int p = 0; p < w->nruns; p++)
			if (peer_column(w, p))
				fprintf(f, " vs %-6.6s", w->runs[p].tool);
		fputc('\n', f);
		for (int i = 0; i < w->nruns; i++) {
			const struct bench_run *r = &w->runs[i];
			char name[200];
			run_name(w, r, name, sizeof name);
			if (!r->available) {
				fprintf(f, "  %-*s unavailable: %s\n", wide, name, r->reason);
				continue;
			}
			double med = bench_median(r);
			/* Four significant figures (a tiny chunk's rl is under 1 ms),
			 * trailing zeros kept so that the columns read alike. */
			char t[32], g[32];
			fprintf(f, "  %-*s %#8.4g %#8.4g %#8.4g %12s", wide, name, med, bench_min(r),
				bench_max(r), rate(throughput(w, med), t, sizeof t));
			if (w->bytes > 0) {
				double gbs = bench_run_bytes(w, r) / med / 1e9;
				double peak = bench_peak_gbs(rep, r);
				fprintf(f, " %7s %5.0f%%", rate(gbs, g, sizeof g),
					peak > 0 ? 100 * gbs / peak : 0);
			}
			for (int p = 0; p < w->nruns && is_halo(r); p++) {
				const struct bench_run *peer = peer_column(w, p)
							       ? peer_for(w, r, w->runs[p].tool) : NULL;
				if (peer)
					fprintf(f, " %8.2fx", bench_median(peer) / med);
				else if (peer_column(w, p))
					fprintf(f, " %9s", "-");
			}
			fputc('\n', f);
		}
		for (int i = 0; i < w->nruns; i++) {
			double cpu, gpu, frac = co_scheduling(w, &w->runs[i], &cpu, &gpu);
			if (frac > 0)
				fprintf(f, "  halo %s: %.2f of CPUs alone + GPUs alone (%.1f + %.1f %s)\n",
					w->runs[i].label, frac, cpu, gpu, w->units);
		}
		for (int i = 0; i < w->nruns; i++)
			if (w->runs[i].max_rel_diff >= 0)
				fprintf(f, "  %s's result against halo %s's: max relative "
					"difference %.1e\n", w->runs[i].tool, w->runs[i].against,
					w->runs[i].max_rel_diff);
	}
	/* Only rl measures the CPU's copy bandwidth: no "CPU 0.0 GB/s" elsewhere. */
	const char *sep = "\npeak bandwidth: ";
	if (rep->cpu_copy_gbs > 0) {
		fprintf(f, "%sCPU %.1f GB/s (measured copy, all cores)", sep, rep->cpu_copy_gbs);
		sep = ", ";
	}
	if (rep->gpu_peak_gbs > 0)
		fprintf(f, "%sGPU %.0f GB/s (specification)", sep, rep->gpu_peak_gbs);
	if (rep->cpu_copy_gbs > 0 || rep->gpu_peak_gbs > 0)
		fputc('\n', f);
}

static json_t *run_json(const struct bench_report *rep, const struct bench_workload *w,
			const struct bench_run *r)
{
	json_t *j = json_pack("{s:s, s:s, s:b}", "tool", r->tool, "label", r->label, "available",
			      r->available);
	if (!r->available) {
		json_object_set_new(j, "reason", json_string(r->reason));
		return j;
	}
	if (is_halo(r)) {
		json_t *c = json_pack("{s:i, s:i, s:s}", "ncpu", r->cfg.ncpu, "ncuda", r->cfg.ncuda,
				      "sched", r->cfg.sched);
		if (strcmp(w->name, "rl")) {
			json_object_set_new(c, "chunks", json_pack("[I, I, I]", (json_int_t)r->cfg.chunks[0],
								   (json_int_t)r->cfg.chunks[1],
								   (json_int_t)r->cfg.chunks[2]));
		}
		if (!strcmp(w->name, "deconvolve"))
			json_object_set_new(c, "mode", json_string(r->cfg.mode));
		/* The GPU's elementwise steps: in cuFFT's callbacks, or as
		 * kernels where cuFFT could not link them. */
		if (!strcmp(w->name, "rl") && r->cfg.ncuda) {
			json_object_set_new(c, "cuda_rl",
					    json_string(r->cuda_rl[0] ? r->cuda_rl : "kernels"));
			json_object_set_new(c, "cuda_graphs", json_boolean(r->cuda_graphs));
		}
		json_object_set_new(j, "config", c);
		if (r->trace[0])
			json_object_set_new(j, "trace", json_string(r->trace));
	} else if (strcmp(w->name, "rl")) {
		json_object_set_new(j, "config", json_pack("{s:[I, I, I]}", "chunks",
							   (json_int_t)r->cfg.chunks[0],
							   (json_int_t)r->cfg.chunks[1],
							   (json_int_t)r->cfg.chunks[2]));
	}
	json_t *t = json_array();
	for (int i = 0; i < r->ntimes; i++)
		json_array_append_new(t, json_real(r->times[i]));
	double med = bench_median(r);
	json_object_set_new(j, "times_s", t);
	json_object_set_new(j, "median_s", json_real(med));
	json_object_set_new(j, "min_s", json_real(bench_min(r)));
	json_object_set_new(j, "max_s", json_real(bench_max(r)));
	json_object_set_new(j, "throughput", json_real(throughput(w, med)));
	if (w->bytes > 0) {
		double gbs = bench_run_bytes(w, r) / med / 1e9, peak = bench_peak_gbs(rep, r);
		json_object_set_new(j, "model_bytes", json_real(bench_run_bytes(w, r)));
		json_object_set_new(j, "bandwidth_gbs", json_real(gbs));
		json_object_set_new(j, "peak_gbs", json_real(peak));
		json_object_set_new(j, "bandwidth_fraction", json_real(peak > 0 ? gbs / peak : 0));
	}
	if (r->max_rel_diff >= 0) {
		json_object_set_new(j, "max_rel_diff_vs_halo", json_real(r->max_rel_diff));
		json_object_set_new(j, "compared_with", json_string(r->against));
	}
	double cpu, gpu, frac = co_scheduling(w, r, &cpu, &gpu);
	if (frac > 0)
		json_object_set_new(j, "co_scheduling",
				    json_pack("{s:f, s:f, s:f}", "fraction_of_sum", frac,
					      "cpu_only_throughput", cpu, "gpu_only_throughput", gpu));
	if (is_halo(r)) {
		json_t *s = json_object();
		for (int p = 0; p < w->nruns; p++) {
			const struct bench_run *peer = peer_column(w, p)
						       ? peer_for(w, r, w->runs[p].tool) : NULL;
			if (peer)
				json_object_set_new(s, peer->tool, json_real(bench_median(peer) / med));
		}
		json_object_set_new(j, "speedup_vs", s);
	}
	return j;
}

int bench_report_json(const char *path, const struct bench_report *rep)
{
	json_t *wl = json_array();
	for (int k = 0; k < rep->nworkloads; k++) {
		const struct bench_workload *w = &rep->workloads[k];
		json_t *runs = json_array();
		for (int i = 0; i < w->nruns; i++)
			json_array_append_new(runs, run_json(rep, w, &w->runs[i]));
		json_t *o = json_pack("{s:s, s:s, s:s, s:f, s:o}", "name", w->name, "about", w->about,
				      "units", w->units, "work_per_run", w->work, "runs", runs);
		if (w->bytes > 0)
			json_object_set_new(o, "model_bytes_per_run", json_real(w->bytes));
		json_array_append_new(wl, o);
	}
	/* A peak not measured (no rl run, no GPU) is null, not 0. */
	json_t *cpu_peak = rep->cpu_copy_gbs > 0 ? json_real(rep->cpu_copy_gbs) : json_null(),
	       *gpu_peak = rep->gpu_peak_gbs > 0 ? json_real(rep->gpu_peak_gbs) : json_null();
	json_t *root = json_pack("{s:O, s:{s:o, s:o}, s:i, s:i, s:o}", "machine", rep->machine,
				 "peak_bandwidth_gbs", "cpu_copy_measured", cpu_peak,
				 "gpu_specification", gpu_peak, "repeat", rep->repeat,
				 "warmup", rep->warmup, "workloads", wl);
	char tmp[4200];
	FILE *f = halo_fs_tmp_open(path, tmp, sizeof tmp);
	int rc = -1;
	if (f) {
		json_dumpf(root, f, JSON_INDENT(1));
		fputc('\n', f);
		rc = halo_fs_tmp_close(f, tmp, path);
	}
	json_decref(root);
	return rc;
}

static void svg_text(FILE *f, const char *s)
{
	for (; *s; s++)
		switch (*s) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		default: fputc(*s, f);
		}
}

/* Widths in pixels. Text is measured at 7.2 px a character (DejaVu Sans
 * at 12 px averages 6.9; bold titles 7.6 over 0.95 of their width), and
 * the label column and canvas grow to hold the longest: fixed widths cut
 * modular-* schedulers' labels and deconvolve's titles. */
enum { SVG_W = 960, LABEL_W = 380, ROW_H = 20, BAR_W = SVG_W - LABEL_W - 110 };

static int text_px(const char *s, double per_char)
{
	return (int)(strlen(s) * per_char) + 1;
}

/* One panel: a bar per available run, the median throughput (or achieved
 * bandwidth as a share of the peak), whiskers from the slowest run to the
 * fastest. Returns the panel's height. */
static int svg_panel(FILE *f, int y, const char *title, const struct bench_workload *w,
		     const struct bench_report *rep, int bandwidth, int label_w)
{
	double top = 0;
	int rows = 0;
	for (int i = 0; i < w->nruns; i++) {
		const struct bench_run *r = &w->runs[i];
		if (!r->available || (bandwidth && bench_peak_gbs(rep, r) <= 0))
			continue;
		double v = bandwidth ? 100 * bench_run_bytes(w, r) / bench_min(r) / 1e9 /
					       bench_peak_gbs(rep, r)
				     : throughput(w, bench_min(r));
		top = v > top ? v : top;
		rows++;
	}
	if (!rows || top <= 0)
		return 0;
	if (bandwidth && top < 100)
		top = 100;
	fprintf(f, "<text x=\"10\" y=\"%d\" font-weight=\"bold\">", y + 16);
	svg_text(f, title);
	fprintf(f, "</text>\n");
	y += 26;
	for (int i = 0; i < w->nruns; i++) {
		const struct bench_run *r = &w->runs[i];
		double peak = bench_peak_gbs(rep, r);
		if (!r->available || (bandwidth && peak <= 0))
			continue;
		double med, lo, hi;
		if (bandwidth) {
			med = 100 * bench_run_bytes(w, r) / bench_median(r) / 1e9 / peak;
			lo = 100 * bench_run_bytes(w, r) / bench_max(r) / 1e9 / peak;
			hi = 100 * bench_run_bytes(w, r) / bench_min(r) / 1e9 / peak;
		} else {
			med = throughput(w, bench_median(r));
			lo = throughput(w, bench_max(r));
			hi = throughput(w, bench_min(r));
		}
		char name[200];
		fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", label_w - 8, y + 14);
		svg_text(f, run_name(w, r, name, sizeof name));
		fprintf(f, "</text>\n");
		double sx = BAR_W / top;
		fprintf(f, "<rect class=\"%s\" x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\"/>\n",
			is_halo(r) ? "halo" : "peer", label_w, y + 3, med * sx, ROW_H - 6);
		fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"#222\"/>\n",
			label_w + lo * sx, label_w + hi * sx, y + ROW_H / 2, y + ROW_H / 2);
		char v[32];
		fprintf(f, "<text x=\"%.1f\" y=\"%d\">%s%s</text>\n", label_w + hi * sx + 6, y + 14,
			rate(med, v, sizeof v), bandwidth ? "%" : "");
		y += ROW_H;
	}
	return 26 + rows * ROW_H + 14;
}

/* A workload's two panel titles: throughput, then bandwidth. */
static void panel_titles(const struct bench_workload *w, char title[2][400])
{
	snprintf(title[0], sizeof title[0], "%s: %s (%s, median; whiskers min-max)", w->name,
		 w->about, w->units);
	snprintf(title[1], sizeof title[1],
		 "%s: achieved memory bandwidth (bytes per voxel and iteration as each run moves "
		 "them: 80 in float32, fewer in cuFFT's callbacks), %% of peak", w->name);
}

int bench_report_svg(const char *path, const struct bench_report *rep)
{
	char tmp[4200], title[2][400], name[200];
	int label_w = LABEL_W, width = SVG_W;
	for (int k = 0; k < rep->nworkloads; k++) {
		const struct bench_workload *w = &rep->workloads[k];
		for (int i = 0; i < w->nruns; i++) {
			int lw = text_px(run_name(w, &w->runs[i], name, sizeof name), 7.2) + 16;
			label_w = lw > label_w ? lw : label_w;
		}
		panel_titles(w, title);
		for (int t = 0; t < (w->bytes > 0 ? 2 : 1); t++) {
			int tw = text_px(title[t], 7.6) + 20;
			width = tw > width ? tw : width;
		}
	}
	if (width < label_w + BAR_W + 110)
		width = label_w + BAR_W + 110;
	FILE *body = tmpfile();
	if (!body)
		return -1;
	int h = 10;
	for (int k = 0; k < rep->nworkloads; k++) {
		const struct bench_workload *w = &rep->workloads[k];
		panel_titles(w, title);
		h += svg_panel(body, h, title[0], w, rep, 0, label_w);
		if (w->bytes > 0)
			h += svg_panel(body, h, title[1], w, rep, 1, label_w);
	}
	FILE *f = halo_fs_tmp_open(path, tmp, sizeof tmp);
	if (!f) {
		fclose(body);
		return -1;
	}
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
		   "font-family=\"sans-serif\" font-size=\"12\">\n"
		   "<style>.halo{fill:#2b6cb0}.peer{fill:#a0aec0}</style>\n"
		   "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
		width, h + 10);
	rewind(body);
	char buf[8192];
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, body)) > 0)
		fwrite(buf, 1, n, f);
	fclose(body);
	fputs("</svg>\n", f);
	return halo_fs_tmp_close(f, tmp, path);
}
