/* `halo bench`: runs the named workloads (rl, deconvolve, convert) over
 * configurations of halo (CPU workers, GPUs, schedulers, chunk shapes) and,
 * in the same invocation, the peers present on the machine
 * (bench/peers.py: numpy, scipy.fft, CuPy, dask), then prints a table of
 * ratios and writes JSON and an SVG plot (bench_report.c).
 *
 * Each halo configuration runs in processes of its own, because StarPU's
 * workers and scheduler are fixed when it starts: the whole command for
 * deconvolve and convert (end to end, as a user runs it), a process that
 * times the RL codelet alone for rl (bench_rl.c). */
#include "config.h"
#include "cli/bench.h"
#include "cli/cli.h"
#include "io/fs.h"
#include "io/outdir.h"
#include "io/volume.h"
#include "runtime/deconvolve.h"
#include "runtime/trace.h"
#include "util/signals.h"
#include "util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char bench_help[] =
	"usage: halo bench [WORKLOAD...] [options]\n\n"
	"Measures halo on this machine over configurations, and the peers present\n"
	"(the seed's numpy RL, scipy.fft, CuPy, dask.array) in the same run; prints\n"
	"each figure as the median of --repeat runs after --warmup runs, with min\n"
	"and max, and how many times faster halo is than each peer. Runs go in\n"
	"rounds, one run of every configuration and peer each, so that a shared\n"
	"machine's slow minutes fall on halo and its peers alike.\n\n"
	"workloads (default: all three):\n"
	"  rl            the RL codelet on one chunk (--shape), timed in-process\n"
	"  deconvolve    halo deconvolve on a generated uint16 Zarr volume (--size)\n"
	"                against dask.array map_overlap of numpy RL\n"
	"  convert       halo convert (rechunk) of the same volume, against zarr + dask\n"
	"                (both timed as whole processes: start-up and imports included)\n\n"
	"configurations (comma-separated lists; deconvolve runs every combination,\n"
	"rl each --ncpu and one GPU with the first scheduler, convert each --ncpu,\n"
	"--sched and --chunks):\n"
	"  --ncpu LIST         CPU workers, numbers or 'all' (default 1,all)\n"
	"  --ncuda LIST        GPUs, numbers or 'all' (default 0,all with a GPU, else 0)\n"
	"  --sched LIST        StarPU schedulers, or 'all' for eager,lws,dm,dmda,dmdas\n"
	"                      (default dmda)\n"
	"  --chunks Z,Y,X      chunk shape for deconvolve and convert; repeat the option\n"
	"                      for several (default: half the volume on each axis)\n"
	"  --mode LIST         deconvolve: overlap, exact (default overlap)\n\n"
	"workload sizes:\n"
	"  --shape Z,Y,X       rl chunk (default 64,256,256)\n"
	"  --size Z,Y,X        generated volume (default 64,256,256)\n"
	"  --input-chunks Z,Y,X  its chunks (default: half of it in z, a quarter in y, x)\n"
	"  --input ZARR        deconvolve and convert this volume instead\n"
	"  --psf N             Gaussian PSF of N^3 voxels (default 15)\n"
	"  --depth Z,Y,X       overlap halo (default: halo deconvolve's for the first\n"
	"                      --chunks: the PSF size, grown to FFT-friendly sizes)\n"
	"  --iterations N      RL iterations (default 20)\n\n"
	"measuring and output:\n"
	"  --repeat N          timed rounds: runs per figure (default 3)\n"
	"  --warmup N          untimed rounds first (default 1); rl also warms up\n"
	"                      in each process (one run, one iteration for peers)\n"
	"  --peers LIST|none   peers to run: numpy,scipy,cupy,dask,dask-cupy (default all),\n"
	"                      and cufft: rl's four cuFFT transforms an iteration alone,\n"
	"                      through CuPy (not RL: the floor the library sets)\n"
	"  --python PATH       interpreter for the peers (default /usr/bin/python3,\n"
	"                      where scripts/setup installs numpy, scipy and dask)\n"
	"  --json FILE         every measurement and the machine, as JSON\n"
	"  --plot FILE.svg     throughput per configuration and bandwidth per peak\n"
	"  --trace FILE        one extra traced run per halo configuration, after the\n"
	"                      warm-up, written to FILE with the configuration added\n"
	"                      to its name\n"
	"  --dir DIR           work folder, kept (default: a temporary one, removed)\n"
	"  --quiet             no progress line\n\n"
	"simulation:\n"
	"  --simulate DIR      predict deconvolve instead of running it: halo-sim (halo\n"
	"                      on StarPU with SimGrid) replays every task for as long\n"
	"                      as the performance models that a real machine recorded\n"
	"                      in DIR (STARPU_PERF_MODEL_DIR=DIR halo bench deconvolve\n"
	"                      ... there, same --chunks, --depth, --iterations) say.\n"
	"                      --ncpu and --ncuda may exceed what it had: added GPUs\n"
	"                      are copies of its GPU 0, each on its own PCIe link.\n"
	"                      No data is written, so --size may be large, but its\n"
	"                      chunks (--input-chunks too) and edge chunks must have\n"
	"                      been recorded. The machine simulated has the largest\n"
	"                      --ncpu's cores, at least the recorded machine's (with\n"
	"                      --ncpu 0 a quarter of them, at least 4 per GPU, read\n"
	"                      and write: cores the GPUs' threads leave). --ncuda's\n"
	"                      default is the recorded GPUs. One run per\n"
	"                      configuration, no peers; the times are simulated,\n"
	"                      without process start-up\n";

enum {
	OPT_NCPU = 1, OPT_NCUDA, OPT_SCHED, OPT_CHUNKS, OPT_MODE, OPT_SHAPE, OPT_SIZE,
	OPT_INPUT, OPT_PSF, OPT_DEPTH, OPT_ITER, OPT_REPEAT, OPT_WARMUP, OPT_PEERS,
	OPT_PYTHON, OPT_JSON, OPT_PLOT, OPT_TRACE, OPT_DIR, OPT_QUIET, OPT_SIMULATE, OPT_INPUT_CHUNKS
};

static const char *const workload_names[3] = {"rl", "deconvolve", "convert"};
static const char *const all_scheds[] = {"eager", "lws", "dm", "dmda", "dmdas"};

void bench_progress(struct bench_ctx *b, const char *what)
{
	if (b->o->quiet || !isatty(2))
		return;
	double t = halo_now() - b->started;
	fprintf(stderr, "\r\033[K[%d/%d] %s", b->done, b->total, what);
	if (b->done > 0)
		fprintf(stderr, "  %.0f s, ETA %.0f s", t, t / b->done * (b->total - b->done));
	fflush(stderr);
}

void bench_add_run(struct bench_workload *w, const struct bench_run *r)
{
	struct bench_run *nr = realloc(w->runs, (size_t)(w->nruns + 1) * sizeof *nr);
	if (!nr)
		return;
	w->runs = nr;
	w->runs[w->nruns++] = *r;
}

/* A list with an empty item ("1,", ",all", "1,,2"): strtok would pass
 * over it, and a mistyped list would run as a shorter one. */
static int empty_item(const char *s, const char *what, halo_error_t *err)
{
	size_t len = strlen(s);
	if (len && s[0] != ',' && s[len - 1] != ',' && !strstr(s, ",,"))
		return HALO_OK;
	return halo_error_set(err, HALO_EINVAL, "%s: '%s' has an empty item", what, s);
}

/* "1,2,all" -> {1, 2, -1}. */
static int parse_counts(const char *s, const char *what, int *out, int *n, halo_error_t *err)
{
	char buf[256];
	snprintf(buf, sizeof buf, "%s", s);
	*n = 0;
	if (*s && empty_item(s, what, err))
		return HALO_EINVAL;
	for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		long v = -1;
		if (*n == MAXLIST)
			return halo_error_set(err, HALO_EINVAL, "%s: at most %d values", what, MAXLIST);
		if (strcmp(t, "all") != 0 && halo__parse_int(t, 0, 4096, what, &v, err))
			return HALO_EINVAL;
		out[(*n)++] = (int)v;
	}
	return *n ? HALO_OK : halo_error_set(err, HALO_EINVAL, "%s: no value given", what);
}

static int parse_names(char *s, const char *what, const char **out, int max, int *n,
		       halo_error_t *err)
{
	*n = 0;
	if (*s && empty_item(s, what, err))
		return HALO_EINVAL;
	for (char *save = NULL, *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (*n == max)
			return halo_error_set(err, HALO_EINVAL, "%s: at most %d values", what, max);
		out[(*n)++] = t;
	}
	return *n ? HALO_OK : halo_error_set(err, HALO_EINVAL, "%s: no value given", what);
}

/* What a bench writes in its work folder, and the file that says a
 * folder is one: a kept --dir is reused, but never a user's files. */
static const char *const own_files[] = {"psf.tif", "input.zarr", "out.zarr", "converted.zarr",
					"peers", "stderr.txt", "simulated-machine", NULL};
#define DIR_MARK ".halo-bench"

static int parse_option(int c, char *arg, struct bench_opts *o, halo_error_t *err)
{
	int n;
	switch (c) {
	case OPT_NCPU:
		return parse_counts(arg, "--ncpu", o->cpus, &o->ncpus, err);
	case OPT_NCUDA:
		return parse_counts(arg, "--ncuda", o->gpus, &o->ngpus, err);
	case OPT_SCHED:
		if (strcmp(arg, "all") == 0) {
			o->nscheds = (int)(sizeof all_scheds / sizeof *all_scheds);
			memcpy(o->scheds, all_scheds, sizeof all_scheds);
			return HALO_OK;
		}
		return parse_names(arg, "--sched", o->scheds, MAXLIST, &o->nscheds, err);
	case OPT_CHUNKS:
		if (o->nchunks == MAXLIST)
			return halo_error_set(err, HALO_EINVAL, "--chunks: at most %d shapes", MAXLIST);
		return halo__parse_int_list(arg, 3, 3, 1, "--chunks", o->chunks[o->nchunks++], &n,
					    err);
	case OPT_MODE:
		o->given_mode = 1;
		if (parse_names(arg, "--mode", o->modes, 2, &o->nmodes, err))
			return HALO_EINVAL;
		for (int i = 0; i < o->nmodes; i++)
			if (strcmp(o->modes[i], "overlap") && strcmp(o->modes[i], "exact"))
				return halo_error_set(err, HALO_EINVAL,
						      "--mode: '%s' is not overlap or exact", o->modes[i]);
		return HALO_OK;
	case OPT_SHAPE:
		o->given_shape = 1;
		return halo__parse_int_list(arg, 3, 3, 1, "--shape", o->shape, &n, err);
	case OPT_INPUT_CHUNKS:
		return halo__parse_int_list(arg, 3, 3, 1, "--input-chunks", o->input_chunks, &n, err);
	case OPT_SIZE:
		return halo__parse_int_list(arg, 3, 3, 1, "--size", o->size, &n, err);
	case OPT_DEPTH:
		return halo__parse_int_list(arg, 3, 3, 0, "--depth", o->depth, &o->ndepth, err);
	case OPT_PSF:
		return halo__parse_int(arg, 1, 1024, "--psf", &o->psf, err);
	case OPT_ITER:
		return halo__parse_int(arg, 1, 100000, "--iterations", &o->iterations, err);
	case OPT_REPEAT:
		o->given_repeat = 1;
		return halo__parse_int(arg, 1, 64, "--repeat", &o->repeat, err);
	case OPT_WARMUP:
		o->given_repeat = 1;
		return halo__parse_int(arg, 0, 64, "--warmup", &o->warmup, err);
	case OPT_PEERS:
		if (!*arg)
			return halo_error_set(err, HALO_EINVAL, "--peers: no value given (none, or a "
					      "list)");
		snprintf(o->peers, sizeof o->peers, "%s", arg);
		o->given_peers = 1;
		return HALO_OK;
	case OPT_INPUT: o->input = arg; return HALO_OK;
	case OPT_PYTHON: o->python = arg; return HALO_OK;
	case OPT_JSON: o->json = arg; return HALO_OK;
	case OPT_PLOT: o->plot = arg; return HALO_OK;
	case OPT_TRACE: o->trace = arg; return HALO_OK;
	case OPT_DIR: o->dir = arg; return HALO_OK;
	case OPT_QUIET: o->quiet = 1; return HALO_OK;
	case OPT_SIMULATE: o->simulate = arg; return HALO_OK;
	}
	return HALO_OK;
}

/* The machine, from `halo info --json` run as a child (the parent never
 * starts StarPU). */
static int describe_machine(struct bench_ctx *b, struct bench_report *rep, halo_error_t *err)
{
	char *out = NULL, errline[512];
	char *argv[] = {b->self, "info", "--json", NULL};
	int st = bench_spawn(b, argv, &out, errline, sizeof errline, NULL);
	json_error_t je;
	rep->machine = st == 0 && out ? json_loads(out, 0, &je) : NULL;
	free(out);
	if (!rep->machine)
		return halo_error_set(err, HALO_ERUNTIME, "halo info failed: %s", errline);
	/* halo info's default scheduler is no run's: each run's is in its
	 * configuration. */
	json_object_del(json_object_get(rep->machine, "starpu"), "scheduler");
	json_t *w = json_object_get(rep->machine, "workers");
	b->ngpu = (int)json_integer_value(json_object_get(w, "cuda"));
	b->cores = (int)json_integer_value(
		json_object_get(json_object_get(rep->machine, "topology"), "cores"));
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(w, "list"), i, v)
		if (json_string_value(json_object_get(v, "kind")) &&
		    !strcmp(json_string_value(json_object_get(v, "kind")), "cuda")) {
			rep->gpu_peak_gbs = json_real_value(json_object_get(v, "peak_bandwidth_gbs"));
			break;
		}
	return HALO_OK;
}

/* The command that runs halo once in configuration c; trace: the file to
 * record to, or NULL. argv points into store. */
static void halo_argv(const struct bench_ctx *b, const struct bench_workload *w,
		      const struct bench_cfg *c, const char *trace, int repeat, int warmup,
		      char store[][PATH_MAX + 256], char **argv)
{
	const struct bench_opts *o = b->o;
	int n = 0;
#define ARG(...) (snprintf(store[n], sizeof store[n], __VA_ARGS__), argv[n] = store[n], n++)
	ARG("%s", o->simulate ? b->sim_exe : b->self);
	if (!strcmp(w->name, "rl")) {
		ARG("bench");
		ARG("--rl-child");
		ARG("--shape=%lld,%lld,%lld", (long long)o->shape[0], (long long)o->shape[1],
		    (long long)o->shape[2]);
		ARG("--psf=%ld", o->psf);
		ARG("--iterations=%ld", o->iterations);
		ARG("--repeat=%d", repeat);
		ARG("--warmup=%d", warmup);
	} else {
		ARG("%s", w->name);
		ARG("%s", b->input);
		if (!strcmp(w->name, "deconvolve")) {
			ARG("%s", b->psf);
			ARG("%s/out.zarr", b->dir);
			ARG("--iterations=%ld", o->iterations);
			if (!strcmp(c->mode, "exact"))
				ARG("--mode=exact");
			else
				ARG("--depth=%lld,%lld,%lld", (long long)o->depth[0],
				    (long long)o->depth[1], (long long)o->depth[2]);
		} else {
			ARG("%s/converted.zarr", b->dir);
			ARG("--compressor=lz4");
			ARG("--clevel=5");
			ARG("--shuffle=byte");
		}
		ARG("--chunks=%lld,%lld,%lld", (long long)c->chunks[0], (long long)c->chunks[1],
		    (long long)c->chunks[2]);
		ARG("--overwrite");
		if (!o->simulate) /* halo-sim's summary line is the result */
			ARG("--quiet");
	}
	if (c->ncpu >= 0)
		ARG("--ncpu=%d", c->ncpu);
	ARG("--ncuda=%d", c->ncuda);
	ARG("--sched=%s", c->sched);
	if (trace)
		ARG("--trace=%s", trace);
#undef ARG
	argv[n] = NULL;
}

/* FILE.json, workload rl, run "cpu=all gpu=0" -> FILE-rl-cpu_all-gpu_0.json */
static void trace_name(const char *pattern, const char *workload, const char *run, char *out,
		       size_t len)
{
	char insert[256];
	snprintf(insert, sizeof insert, "-%s-%s", workload, run);
	for (char *p = insert; *p; p++)
		if (*p == ' ' || *p == '=')
			*p = *p == ' ' ? '-' : '_';
	halo_fs_insert_before_ext(pattern, insert, out, len);
}

/* One round's run of halo in configuration c, added to r when keep. The
 * first kept round also records the trace, in a run of its own: after the
 * warm-up, which on a new machine calibrates StarPU's models (a trace of
 * that run showed CPU workers taking RL from an H100, 21.6 s for 3.0). */
static int measure_halo(struct bench_ctx *b, struct bench_workload *w, struct bench_run *r,
			int keep, halo_error_t *err)
{
	const struct bench_opts *o = b->o;
	const struct bench_cfg *c = &r->cfg;
	char progress_line[256];
	snprintf(progress_line, sizeof progress_line, "%s: halo %s", w->name, r->label);
	bench_progress(b, progress_line);
	static char store[48][PATH_MAX + 256];
	char *argv[48], errline[PATH_MAX + 128];
	if (o->trace && keep && !*r->trace) {
		trace_name(o->trace, w->name, r->label, r->trace, sizeof r->trace);
		/* rl warms up in its process, as when timed; the trace
		 * starts after it. */
		halo_argv(b, w, c, r->trace, 1, !strcmp(w->name, "rl"), store, argv);
		if (bench_spawn(b, argv, NULL, errline, sizeof errline, NULL) != 0)
			return halo_error_set(err, HALO_ERUNTIME, "halo bench %s %s (traced): %s",
					      w->name, r->label, errline);
	}
	double t = 0;
	if (!strcmp(w->name, "rl")) {
		/* In a process of its own, after one untimed run there (FFTW
		 * plans, the OTF, first touch of the buffers). */
		char *out = NULL;
		halo_argv(b, w, c, NULL, 1, 1, store, argv);
		int st = bench_spawn(b, argv, &out, errline, sizeof errline, NULL);
		json_error_t je;
		json_t *j = st == 0 && out ? json_loads(out, JSON_DISABLE_EOF_CHECK, &je) : NULL;
		free(out);
		json_t *v = json_array_get(json_object_get(j, "times_s"), 0);
		t = json_is_number(v) ? json_number_value(v) : -1;
		const char *path = json_string_value(json_object_get(j, "cuda_rl"));
		snprintf(r->cuda_rl, sizeof r->cuda_rl, "%s", path ? path : "kernels");
		r->cuda_graphs = json_integer_value(json_object_get(j, "cuda_graphs")) > 0;
		json_decref(j);
		if (t < 0)
			return halo_error_set(err, HALO_ERUNTIME, "halo bench rl %s: %s", r->label,
					      *errline ? errline : "no times reported");
	} else if (o->simulate) {
		char *out = NULL;
		halo_argv(b, w, c, NULL, 0, 0, store, argv);
		/* A run that printed its time and then failed failed. */
		int st = bench_spawn(b, argv, &out, errline, sizeof errline, NULL);
		int rc = bench_sim_result(b, st == 0 ? out : NULL, errline, &t, err);
		free(out);
		if (rc) {
			/* halo-sim reports a missing model by StarPU's abort, which
			 * leaves its output's lock and temporary name: gone now. */
			char path[PATH_MAX + 16];
			halo_output_t *left = NULL;
			halo_error_t ignored = {0};
			snprintf(path, sizeof path, "%s/out.zarr", b->dir);
			if (halo_output_begin(path, 1, &left, &ignored) == HALO_OK)
				halo_output_abort(left);
			return rc;
		}
	} else {
		halo_argv(b, w, c, NULL, 0, 0, store, argv);
		if (bench_spawn(b, argv, NULL, errline, sizeof errline, &t) != 0)
			return halo_error_set(err, HALO_ERUNTIME, "halo %s %s: %s", w->name, r->label,
					      errline);
	}
	if (keep && r->ntimes < 64)
		r->times[r->ntimes++] = t;
	b->done++;
	return HALO_OK;
}

/* Drops the values seen earlier in v[0..n); returns how many are left. */
static int distinct(int *v, int n)
{
	int m = 0;
	for (int i = 0; i < n; i++) {
		int seen = 0;
		for (int j = 0; j < m; j++)
			seen |= v[j] == v[i];
		if (!seen)
			v[m++] = v[i];
	}
	return m;
}

static int same_str(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

/* Appends c with chunks, unless out already holds it (a list naming one
 * value twice would measure it twice, and trace both into one file). */
static int add_cfg(struct bench_cfg *out, int n, int max, struct bench_cfg c,
		   const int64_t chunks[3])
{
	for (int i = 0; i < n && i < max; i++)
		if (out[i].ncpu == c.ncpu && out[i].ncuda == c.ncuda &&
		    same_str(out[i].sched, c.sched) && same_str(out[i].mode, c.mode) &&
		    !memcmp(out[i].chunks, chunks, sizeof out[i].chunks))
			return n;
	if (n < max) {
		out[n] = c;
		memcpy(out[n].chunks, chunks, sizeof out[n].chunks);
	}
	return n + 1;
}

/* Every configuration of a workload, in a stable order: rl on CPUs, then
 * on one GPU alone (it is one chunk), with the first scheduler; convert on
 * CPUs (it has no GPU codelets), with each scheduler and chunk shape;
 * deconvolve on every CPU and GPU count, CPU+GPU included, with each
 * scheduler, chunk shape and mode. Returns how many, of which the first
 * max are in out. */
/* Whether --ncuda asks for a GPU in any configuration. */
static int asks_gpu(const struct bench_opts *o)
{
	int any = 0;
	for (int g = 0; g < o->ngpus; g++)
		any |= o->gpus[g] > 0;
	return any;
}

static int configs(const struct bench_ctx *b, const char *name, struct bench_cfg *out, int max)
{
	const struct bench_opts *o = b->o;
	int n = 0, any_gpu = asks_gpu(o);
	if (!strcmp(name, "rl")) {
		for (int c = 0; c < o->ncpus; c++)
			if (o->cpus[c] != 0)
				n = add_cfg(out, n, max, (struct bench_cfg){.ncpu = o->cpus[c], .sched = o->scheds[0]},
				    o->chunks[0]);
		if (any_gpu)
			n = add_cfg(out, n, max, (struct bench_cfg){.ncpu = 0, .ncuda = 1, .sched = o->scheds[0]}, o->chunks[0]);
		return n;
	}
	int cpus[MAXLIST + 1], ncpus = 0, deconv = !strcmp(name, "deconvolve");
	for (int i = 0; i < o->ncpus; i++)
		cpus[ncpus++] = o->cpus[i];
	if (any_gpu && deconv)
		cpus[ncpus++] = 0; /* the GPUs alone */
	ncpus = distinct(cpus, ncpus);
	for (int c = 0; c < ncpus; c++)
		for (int g = 0; g < (deconv ? o->ngpus : 1); g++)
			for (int s = 0; s < o->nscheds; s++)
				for (int k = 0; k < o->nchunks; k++)
					for (int m = 0; m < (deconv ? o->nmodes : 1); m++) {
						int ngpu = deconv ? o->gpus[g] : 0;
						if (cpus[c] == 0 && ngpu == 0)
							continue;
						n = add_cfg(out, n, max,
							    (struct bench_cfg){.ncpu = cpus[c], .ncuda = ngpu,
									       .sched = o->scheds[s], .mode = o->modes[m]},
							    o->chunks[k]);
					}
	return n;
}

static int same_file(const char *a, const char *b)
{
	return halo_path_within(a, b) && halo_path_within(b, a);
}

/* The files a bench writes, checked before its first run rather than
 * after minutes of them: each configuration's trace replaces only a halo
 * trace, and no two of them, the report and the plot are one file. */
static int check_outputs(struct bench_ctx *b, const struct bench_report *rep, halo_error_t *err)
{
	const struct bench_opts *o = b->o;
	if (o->json && o->plot && same_file(o->json, o->plot))
		return halo_error_set(err, HALO_EINVAL, "--json and --plot name one file, %s",
				      o->json);
	for (int i = 0; o->trace && i < rep->nworkloads; i++) {
		const struct bench_workload *w = &rep->workloads[i];
		struct bench_cfg cfg[MAXCFG];
		int n = configs(b, w->name, cfg, MAXCFG);
		for (int j = 0; j < n; j++) {
			char run[200], name[PATH_MAX + 256];
			bench_cfg_label(w, &cfg[j], run, sizeof run);
			trace_name(o->trace, w->name, run, name, sizeof name);
			if (!halo_trace_replaceable(name))
				return halo_error_set(err, HALO_EEXIST, "--trace: '%s' exists and is "
						      "not a halo trace; halo replaces only its own",
						      name);
			const char *also = o->json && same_file(name, o->json)   ? "--json"
					   : o->plot && same_file(name, o->plot) ? "--plot"
										 : NULL;
			if (also)
				return halo_error_set(err, HALO_EINVAL, "--trace: '%s' is also the "
						      "%s file", name, also);
		}
	}
	return HALO_OK;
}

/* Which of --chunks' shapes configuration c runs with (rl: all in one). */
static int chunk_group(const struct bench_ctx *b, const struct bench_workload *w,
		       const struct bench_cfg *c)
{
	for (int k = 0; strcmp(w->name, "rl") && k < b->o->nchunks; k++)
		if (!memcmp(b->o->chunks[k], c->chunks, sizeof c->chunks))
			return k;
	return 0;
}

/* Rounds of every configuration and every peer, one run each, so that a
 * shared machine's slow minutes fall on halo and its peers alike rather
 * than on whichever ran then; the first --warmup rounds are not kept. The
 * pipelines' peers run once a round for each chunk shape, right after
 * halo's configurations of that shape, so that each configuration is
 * compared with a peer that cut the volume alike. */
static int run_workload(struct bench_ctx *b, struct bench_workload *w, halo_error_t *err)
{
	const struct bench_opts *o = b->o;
	struct bench_cfg cfg[MAXCFG];
	int n = configs(b, w->name, cfg, MAXCFG); /* at least 1: describe_workloads */
	int groups = strcmp(w->name, "rl") ? o->nchunks : 1;
	struct bench_run *runs = calloc((size_t)n, sizeof *runs);
	struct bench_peers *peers[MAXLIST] = {NULL};
	/* Each shape's reference: the configuration the peers' result is
	 * compared with (its first in overlap mode, as dask's is), which
	 * runs last of its shape in the last round. */
	int ref[MAXLIST];
	for (int g = 0; g < groups; g++)
		ref[g] = -1;
	for (int i = 0; i < n; i++) {
		int g = chunk_group(b, w, &cfg[i]);
		if (ref[g] < 0 || (strcmp(cfg[ref[g]].mode ? cfg[ref[g]].mode : "", "overlap") &&
				   cfg[i].mode && !strcmp(cfg[i].mode, "overlap")))
			ref[g] = i;
	}
	int rc = runs ? HALO_OK : HALO_ENOMEM;
	for (int g = 0; !rc && g < groups; g++)
		if (ref[g] >= 0 && !(peers[g] = bench_peers_begin(b, w, &cfg[ref[g]])))
			rc = HALO_ENOMEM;
	if (rc) {
		free(runs);
		for (int g = 0; g < groups; g++)
			bench_peers_end(peers[g], NULL);
		return halo_error_set(err, HALO_ENOMEM, "out of memory");
	}
	for (int i = 0; i < n; i++) {
		runs[i] = (struct bench_run){.tool = "halo", .cfg = cfg[i], .available = 1,
					     .max_rel_diff = -1};
		bench_cfg_label(w, &cfg[i], runs[i].label, sizeof runs[i].label);
	}
	long rounds = o->warmup + o->repeat;
	for (long k = 0; !rc && k < rounds; k++) {
		int last = k == rounds - 1;
		for (int g = 0; !rc && g < groups; g++) {
			if (!peers[g])
				continue;
			for (int i = 0; !rc && i < n; i++)
				if (chunk_group(b, w, &cfg[i]) == g && !(last && i == ref[g]))
					rc = measure_halo(b, w, &runs[i], k >= o->warmup, err);
			if (!rc && last)
				rc = measure_halo(b, w, &runs[ref[g]], k >= o->warmup, err);
			if (!rc)
				bench_peers_round(b, peers[g], w, k >= o->warmup, last,
						  runs[ref[g]].label);
		}
		/* The peak that rl's bandwidth is a share of, once a round
		 * too: a neighbour's load on a shared machine made one
		 * measurement vary 3.5x from bench to bench. */
		if (!rc && !strcmp(w->name, "rl")) {
			double gbs = bench_cpu_copy_gbs(b->cores);
			b->copy_gbs = gbs > b->copy_gbs ? gbs : b->copy_gbs;
		}
		/* Ctrl-C: nothing more is started (the child it stopped may
		 * have ended as if all was well). */
		if (!rc && halo_interrupted())
			rc = halo_error_set(err, HALO_EINTR, "interrupted");
	}
	for (int i = 0; !rc && i < n; i++)
		bench_add_run(w, &runs[i]);
	for (int g = 0; g < groups; g++)
		bench_peers_end(peers[g], rc ? NULL : w);
	free(runs);
	return rc;
}

static int setup(struct bench_ctx *b, struct bench_report *rep, halo_error_t *err)
{
	struct bench_opts *o = (struct bench_opts *)b->o;
	ssize_t len = readlink("/proc/self/exe", b->self, sizeof b->self - 1);
	if (len <= 0)
		return halo_error_set(err, HALO_EIO, "cannot find the halo executable");
	b->self[len] = '\0';
	const char *env = getenv("HALO_BENCH_PEERS");
	if (env)
		snprintf(b->peers_py, sizeof b->peers_py, "%s", env);
	else
		snprintf(b->peers_py, sizeof b->peers_py, "%.*s/bench/peers.py",
			 (int)(strrchr(b->self, '/') - b->self), b->self);
	if (o->dir) {
		b->made_dir = !halo_fs_is_dir(o->dir);
		if (halo_fs_mkdirs(o->dir, err))
			return HALO_EIO;
		snprintf(b->dir, sizeof b->dir, "%s", o->dir);
		static const char text[] = "halo bench writes here and replaces its files on each run\n";
		char mark[PATH_MAX + 64];
		snprintf(mark, sizeof mark, "%s/" DIR_MARK, o->dir);
		if (halo_fs_write(mark, text, sizeof text - 1, err))
			return HALO_EIO;
		/* A kept folder holds the last run's outputs: an earlier bench's
		 * of another volume stayed beside this one's. */
		static const char *const outputs[] = {"out.zarr", "converted.zarr"};
		for (int i = 0; i < 2; i++) {
			char p[PATH_MAX + 64];
			snprintf(p, sizeof p, "%s/%s", o->dir, outputs[i]);
			halo_fs_remove_tree(p);
		}
	} else {
		const char *tmp = getenv("TMPDIR");
		snprintf(b->dir, sizeof b->dir, "%s/halo-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(b->dir))
			return halo_error_set(err, HALO_EIO, "%s: %s", b->dir, strerror(errno));
	}
	if (o->simulate) {
		if (bench_sim_setup(b, rep, err))
			return err->code;
	} else if (describe_machine(b, rep, err)) {
		return HALO_ERUNTIME;
	} else {
		bench_sim_record();
	}
	if (!o->ngpus) {
		o->gpus[o->ngpus++] = 0;
		if (b->ngpu)
			o->gpus[o->ngpus++] = -1;
	}
	for (int i = 0; i < o->ngpus; i++) {
		if (o->gpus[i] < 0)
			o->gpus[i] = b->ngpu;
		if (o->gpus[i] > b->ngpu)
			return halo_error_set(err, HALO_EINVAL, "--ncuda %d: this machine has %d GPU%s",
					      o->gpus[i], b->ngpu, b->ngpu == 1 ? "" : "s");
	}
	/* 'all' may name a count also listed ('--ncuda 1,all' on one GPU, or
	 * '0,all' on none): each configuration is measured once. */
	o->ngpus = distinct(o->gpus, o->ngpus);
	o->ncpus = distinct(o->cpus, o->ncpus);
	/* Without GPUs 'all' is every core: a count of all of them names
	 * the same runs (with GPUs StarPU keeps a core for each). */
	int all = 0;
	for (int i = 0; i < o->ncpus; i++)
		all |= o->cpus[i] < 0;
	for (int i = 0; all && !b->ngpu && i < o->ncpus; i++)
		if (o->cpus[i] == b->cores) {
			memmove(&o->cpus[i], &o->cpus[i + 1], (size_t)(o->ncpus - i - 1) * sizeof *o->cpus);
			o->ncpus--;
			break;
		}
	int zero = 0;
	for (int i = 0; i < o->ncpus; i++)
		zero |= o->cpus[i] == 0;
	if (zero && !asks_gpu(o) && o->ncpus > 1)
		fprintf(stderr, "halo: bench: note: --ncpu 0 runs on GPUs alone and no GPU is "
				"asked for: those configurations are left out\n");
	for (int i = 0; i < o->ncpus; i++)
		if (o->cpus[i] > b->cores)
			return halo_error_set(err, HALO_EINVAL, "--ncpu %d: this machine has %d cores",
					      o->cpus[i], b->cores);
	/* The volume deconvolve and convert run on: --input's, or --size
	 * (its reports said uint16 and counted 2 bytes a voxel whatever
	 * --input held). */
	int64_t *shape = b->vol;
	memcpy(shape, o->size, sizeof b->vol);
	snprintf(b->vol_what, sizeof b->vol_what, "uint16 Zarr");
	b->vol_el = 2;
	if (o->input) {
		halo_reader_t *r;
		if (halo_reader_open(o->input, &r, err))
			return HALO_EIO;
		const halo_volume_info_t *in = halo_reader_info(r);
		int ndim = in->ndim;
		memcpy(shape, in->shape, sizeof b->vol);
		b->vol_el = (double)halo_dtype_size(in->dtype);
		snprintf(b->vol_what, sizeof b->vol_what, "%s %s", halo_dtype_name(in->dtype),
			 halo_reader_format(r) == HALO_FMT_TIFF ? "TIFF" : "Zarr");
		halo_reader_close(r);
		/* Its runs take Z,Y,X chunks: a 2D one failed in the first run,
		 * naming a --chunks the user never gave. */
		if (ndim != 3)
			return halo_error_set(err, HALO_EINVAL, "--input %s: is %dD; bench runs on 3D "
					      "volumes", o->input, ndim);
	}
	if (!o->nchunks) {
		for (int d = 0; d < 3; d++)
			o->chunks[0][d] = (shape[d] + 1) / 2;
		o->nchunks = 1;
	}
	/* Chunks as they are on the volume, as halo runs them (and labels
	 * them): larger ones end at its edge, and then may name one shape
	 * twice, which runs once. */
	int n = 0;
	for (int k = 0; k < o->nchunks; k++) {
		int64_t c[3];
		for (int d = 0; d < 3; d++)
			c[d] = o->chunks[k][d] < shape[d] ? o->chunks[k][d] : shape[d];
		int seen = 0;
		for (int j = 0; j < n && !seen; j++)
			seen = !memcmp(o->chunks[j], c, sizeof c);
		if (!seen)
			memcpy(o->chunks[n++], c, sizeof c);
	}
	o->nchunks = n;
	if (!o->ndepth) {
		/* halo deconvolve's own default for the first chunk shape, which
		 * the peers run with too, and no deeper than the volume. */
		int pn[3] = {(int)o->psf, (int)o->psf, (int)o->psf}, depth[3];
		halo_deconv_default_depth(o->chunks[0], pn, depth);
		for (int d = 0; d < 3; d++)
			o->depth[d] = depth[d] < shape[d] ? depth[d] : shape[d];
	}
	/* Refused now, not by the first run naming bench's own input. */
	for (int d = 0; d < 3; d++)
		if (o->depth[d] > shape[d])
			return halo_error_set(err, HALO_EINVAL, "--depth %lld,%lld,%lld: deeper than the "
					      "volume (%lldx%lldx%lld)", (long long)o->depth[0],
					      (long long)o->depth[1], (long long)o->depth[2],
					      (long long)shape[0], (long long)shape[1],
					      (long long)shape[2]);
	return HALO_OK;
}

static int describe_workloads(struct bench_ctx *b, struct bench_report *rep, halo_error_t *err)
{
	const struct bench_opts *o = b->o;
	const int64_t *vs = b->vol;
	const char *what = b->vol_what;
	double rl_vox = (double)o->shape[0] * o->shape[1] * o->shape[2];
	double vol_vox = (double)vs[0] * vs[1] * vs[2];
	for (int i = 0; i < 3; i++) {
		if (!o->want[i])
			continue;
		struct bench_workload *w = &rep->workloads[rep->nworkloads++];
		*w = (struct bench_workload){.name = workload_names[i]};
		if (i == 0) {
			w->units = "Mvox*iter/s";
			w->work = rl_vox * o->iterations / 1e6;
			/* Traffic of one iteration if each step streams its arrays
			 * once: 4 real<->complex FFTs (read + write: 8 B/voxel each),
			 * 2 spectrum products (12 B/voxel each: two half-size complex
			 * arrays in, one out), ratio and update (12 B/voxel each). */
			w->bytes = 80.0 * rl_vox * o->iterations;
			snprintf(w->about, sizeof w->about,
				 "RL on one %lldx%lldx%lld float32 chunk, PSF %ld^3, %ld iteration%s "
				 "(in process)",
				 (long long)o->shape[0], (long long)o->shape[1],
				 (long long)o->shape[2], o->psf, o->iterations,
				 o->iterations == 1 ? "" : "s");
		} else if (i == 1) {
			w->units = "Mvox*iter/s";
			w->work = vol_vox * o->iterations / 1e6;
			snprintf(w->about, sizeof w->about,
				 "%s %lldx%lldx%lld -> float32 RL, PSF %ld^3, %ld iteration%s, "
				 "reflect, depth %lld,%lld,%lld (%s)",
				 what, (long long)vs[0], (long long)vs[1], (long long)vs[2], o->psf,
				 o->iterations, o->iterations == 1 ? "" : "s", (long long)o->depth[0], (long long)o->depth[1],
				 (long long)o->depth[2],
				 o->simulate ? "simulated by halo-sim" : "whole processes");
		} else {
			w->units = "MB/s";
			w->work = vol_vox * b->vol_el / 1e6;
			snprintf(w->about, sizeof w->about,
				 "rechunk %s %lldx%lldx%lld into a blosc lz4 Zarr (whole processes)",
				 what, (long long)vs[0], (long long)vs[1], (long long)vs[2]);
		}
		int n = configs(b, w->name, NULL, 0);
		if (n == 0) /* before any run, and a GPU machine's convert too */
			return halo_error_set(err, HALO_EINVAL, "bench %s: no configuration to run "
					      "(%s)", w->name, i == 2 ? "it runs on CPU workers, and "
					      "--ncpu is 0" : "--ncpu 0 needs a GPU");
		if (n > MAXCFG)
			return halo_error_set(err, HALO_EINVAL, "bench %s: %d configurations, more than "
					      "%d; give shorter lists", w->name, n, MAXCFG);
		b->total += (int)(o->warmup + o->repeat) *
			    (n + (i ? o->nchunks : 1) * bench_peers_count(b, w->name));
	}
	return HALO_OK;
}

/* A --dir that is a bench's, or holds none of its names; and no report
 * named like one of them. */
static int check_dir(const struct bench_opts *o, halo_error_t *err)
{
	char p[PATH_MAX + 64];
	snprintf(p, sizeof p, "%s/%s", o->dir, DIR_MARK);
	int ours = halo_fs_exists(p);
	const char *files[3][2] = {{o->json, "--json"}, {o->plot, "--plot"}, {o->trace, "--trace"}};
	for (const char *const *n = own_files; *n; n++) {
		snprintf(p, sizeof p, "%s/%s", o->dir, *n);
		if (o->input && !strcmp(*n, "input.zarr"))
			continue; /* not made: --input is read */
		if (!ours && halo_fs_exists(p))
			return halo_error_set(err, HALO_EEXIST, "%s: already exists and is not from "
					      "'halo bench'; give --dir another folder", p);
		for (int i = 0; i < 3; i++)
			if (files[i][0] && halo_path_within(files[i][0], p))
				return halo_error_set(err, HALO_EINVAL, "%s %s: --dir keeps its %s "
						      "there; give another name", files[i][1],
						      files[i][0], *n);
	}
	return HALO_OK;
}

/* What can be checked before minutes of runs: schedulers, peers, the
 * work folder, and that the report files can be created. */
static int check_options(const struct bench_opts *o, halo_error_t *err)
{
	if (o->dir && check_dir(o, err))
		return err->code;
	for (int i = 0; i < o->nscheds; i++)
		if (halo_sched_check(o->scheds[i], "--sched", err))
			return err->code;
	static const char *const peers[] = {"numpy", "scipy", "cupy", "cufft", "dask", "dask-cupy",
					    "none", "all"};
	if (empty_item(o->peers, "--peers", err))
		return err->code;
	for (const char *p = o->peers; *p;) {
		size_t l = strcspn(p, ","), k = 0;
		while (k < sizeof peers / sizeof *peers &&
		       (strlen(peers[k]) != l || strncmp(p, peers[k], l)))
			k++;
		if (k == sizeof peers / sizeof *peers)
			return halo_error_set(err, HALO_EINVAL, "--peers: unknown peer '%.*s' (numpy, "
					      "scipy, cupy, cufft, dask, dask-cupy, none, all)", (int)l, p);
		if (k >= sizeof peers / sizeof *peers - 2 && strlen(o->peers) != l)
			return halo_error_set(err, HALO_EINVAL, "--peers: '%s' stands alone, not in a "
					      "list", peers[k]);
		p += l + (p[l] == ',');
	}
	if (strchr(o->python, '/') && access(o->python, X_OK) != 0)
		return halo_error_set(err, HALO_EINVAL, "--python: %s: %s", o->python,
				      halo_fs_exists(o->python) ? "not executable" : "no such file");
	int64_t least = o->shape[0] < o->shape[1] ? o->shape[0] : o->shape[1];
	least = least < o->shape[2] ? least : o->shape[2];
	if (o->want[0] && o->psf > least)
		return halo_error_set(err, HALO_EINVAL, "--psf %ld is larger than the rl chunk "
				      "(--shape %lld,%lld,%lld)", o->psf, (long long)o->shape[0],
				      (long long)o->shape[1], (long long)o->shape[2]);
	/* The recorded models are only read: the work folder (emptied of an
	 * earlier simulation's models) may neither hold them nor lie in them. */
	if (o->simulate && o->dir &&
	    (halo_path_within(o->dir, o->simulate) || halo_path_within(o->simulate, o->dir)))
		return halo_error_set(err, HALO_EINVAL, "--dir %s: the models of --simulate %s are "
				      "only read; give a work folder outside them", o->dir,
				      o->simulate);
	size_t pl = o->plot ? strlen(o->plot) : 0;
	if (o->plot && (pl < 4 || strcasecmp(o->plot + pl - 4, ".svg") != 0))
		return halo_error_set(err, HALO_EINVAL, "--plot %s: halo draws SVG; give a name "
				      "ending in .svg", o->plot);
	/* --trace names a pattern: each run's file goes beside it. */
	const char *files[3][2] = {{o->json, "--json"}, {o->plot, "--plot"}, {o->trace, "--trace"}};
	for (int i = 0; i < 3; i++) {
		const char *f = files[i][0];
		const char *why = f ? halo_fs_uncreatable(f) : NULL;
		if (why)
			return halo_error_set(err, HALO_EINVAL, "%s: %s: cannot be created: %s",
					      files[i][1], f, why);
	}
	/* A report replaces only a report of halo's (as bench_report.c
	 * begins them), never a user's other file. */
	const char *sigs[2] = {"{\n \"machine\"", "<style>.halo{fill:"};
	for (int i = 0; i < 2; i++)
		if (files[i][0] && !halo_fs_replaceable_report(files[i][0], sigs[i]))
			return halo_error_set(err, HALO_EEXIST, "%s %s: exists and is not a halo "
					      "bench report; halo replaces only its own", files[i][1],
					      files[i][0]);
	return HALO_OK;
}

int halo_cli_bench(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--rl-child"))
		return bench_rl_child(argc, argv);
	static const struct option longopts[] = {
		{"ncpu", required_argument, NULL, OPT_NCPU},
		{"ncuda", required_argument, NULL, OPT_NCUDA},
		{"sched", required_argument, NULL, OPT_SCHED},
		{"chunks", required_argument, NULL, OPT_CHUNKS},
		{"mode", required_argument, NULL, OPT_MODE},
		{"shape", required_argument, NULL, OPT_SHAPE},
		{"size", required_argument, NULL, OPT_SIZE},
		{"input-chunks", required_argument, NULL, OPT_INPUT_CHUNKS},
		{"input", required_argument, NULL, OPT_INPUT},
		{"psf", required_argument, NULL, OPT_PSF},
		{"depth", required_argument, NULL, OPT_DEPTH},
		{"iterations", required_argument, NULL, OPT_ITER},
		{"repeat", required_argument, NULL, OPT_REPEAT},
		{"warmup", required_argument, NULL, OPT_WARMUP},
		{"peers", required_argument, NULL, OPT_PEERS},
		{"python", required_argument, NULL, OPT_PYTHON},
		{"json", required_argument, NULL, OPT_JSON},
		{"plot", required_argument, NULL, OPT_PLOT},
		{"trace", required_argument, NULL, OPT_TRACE},
		{"dir", required_argument, NULL, OPT_DIR},
		{"quiet", no_argument, NULL, OPT_QUIET},
		{"simulate", required_argument, NULL, OPT_SIMULATE},
		{"help", no_argument, NULL, HALO_OPT_HELP},
		{0},
	};
	struct bench_opts o = {.cpus = {1, -1}, .ncpus = 2, .scheds = {"dmda"}, .nscheds = 1,
			       .modes = {"overlap"}, .nmodes = 1, .shape = {64, 256, 256},
			       .size = {64, 256, 256}, .psf = 15, .iterations = 20, .repeat = 3,
			       .warmup = 1, .peers = "all"};
	/* Debian's interpreter is where scripts/setup puts numpy, scipy and dask. */
	o.python = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
	halo_error_t err = {0};
	int c, status;
	halo_cli_options_begin();
	while ((c = halo_cli_next_option(argc, argv, "bench", longopts, bench_help, NULL,
					 &status)) != -1) {
		if (c == HALO_CLI_DONE)
			return status;
		if (parse_option(c, optarg, &o, &err)) {
			halo_cli_error(&err);
			return HALO_EXIT_FAIL;
		}
	}
	for (int i = optind; i < argc; i++) {
		int k = 0;
		while (k < 3 && strcmp(argv[i], workload_names[k]))
			k++;
		if (k == 3) {
			halo_cli_usage_line("bench: unknown workload '%s' (rl, deconvolve, convert)",
					    argv[i]);
			return HALO_EXIT_USAGE;
		}
		o.want[k] = 1;
	}
	if (optind == argc)
		o.want[0] = o.want[1] = o.want[2] = 1;
	if (o.simulate) {
		if (optind < argc && (o.want[0] || o.want[2])) {
			halo_cli_usage_line("bench: --simulate runs the deconvolve workload only");
			return HALO_EXIT_USAGE;
		}
		if (o.trace || o.input || o.given_repeat ||
		    (o.given_peers && strcmp(o.peers, "none"))) {
			const char *what = o.trace ? "trace" : o.input ? "input"
					 : o.given_repeat ? "repeat or --warmup (a simulation "
							    "repeats itself exactly)"
							  : "peers (it runs none)";
			halo_cli_usage_line("bench: --simulate takes no --%s", what);
			return HALO_EXIT_USAGE;
		}
		/* A simulation gives the same time every run, and has no peers. */
		o.want[0] = o.want[2] = 0;
		o.repeat = 1;
		o.warmup = 0;
		snprintf(o.peers, sizeof o.peers, "none");
	}
	/* An option for workloads that do not run would be ignored. */
	const char *unused_opt = o.given_mode && !o.want[1]   ? "--mode applies to deconvolve"
				 : o.ndepth && !o.want[1]     ? "--depth applies to deconvolve"
				 : o.given_shape && !o.want[0] ? "--shape applies to rl"
							       : NULL;
	if (unused_opt) {
		halo_cli_usage_line("bench: %s, which this bench does not run", unused_opt);
		return HALO_EXIT_USAGE;
	}
	if (check_options(&o, &err)) {
		halo_cli_error(&err);
		return HALO_EXIT_FAIL;
	}
	/* Each configuration says how many CPU workers its runs have, and
	 * 'all' is every core: not what STARPU_NCPU says in the runs, which
	 * the report would still have called 'all'. */
	unsetenv("STARPU_NCPU");
	unsetenv("STARPU_NCPUS");
	/* SIGINT/SIGTERM stop the runs, the child included (bench_spawn),
	 * which it waits for however long they take to wind down: no
	 * watchdog ends it first (util/signals.h). */
	halo_signals_on_stuck(NULL);
	halo_signals_install();

	struct bench_ctx b = {.o = &o, .started = halo_now()};
	struct bench_workload workloads[3];
	struct bench_report rep = {.repeat = (int)o.repeat, .warmup = (int)o.warmup,
				   .workloads = workloads};
	status = HALO_EXIT_FAIL;
	if (setup(&b, &rep, &err))
		goto fail;
	/* After setup, so that nothing is left behind when an option is bad. */
	if (describe_workloads(&b, &rep, &err) || check_outputs(&b, &rep, &err))
		goto fail;
	if (o.want[0])
		b.copy_gbs = bench_cpu_copy_gbs(b.cores);
	if ((o.want[1] || o.want[2]) && bench_write_inputs(&b, &err))
		goto fail;
	b.ran = 1; /* from here the work folder holds what the runs left */
	for (int i = 0; i < rep.nworkloads && !halo_interrupted(); i++)
		if (run_workload(&b, &workloads[i], &err))
			goto fail;
	if (halo_interrupted())
		goto fail;
	rep.cpu_copy_gbs = b.copy_gbs;
	if (!o.quiet && isatty(2))
		fprintf(stderr, "\r\033[K");
	bench_report_table(stdout, &rep);
	if (o.json && bench_report_json(o.json, &rep)) {
		halo_error_set(&err, HALO_EIO, "%s: %s", o.json, strerror(errno));
		goto fail;
	}
	if (o.plot && bench_report_svg(o.plot, &rep)) {
		halo_error_set(&err, HALO_EIO, "%s: %s", o.plot, strerror(errno));
		goto fail;
	}
	status = HALO_EXIT_OK;
	goto out;
fail:
	if (!o.quiet && isatty(2))
		fprintf(stderr, "\r\033[K");
	if (halo_interrupted()) /* whatever the child said as it stopped */
		halo_error_set(&err, HALO_EINTR, "interrupted; no report written");
	halo_cli_error(&err);
out:
	/* A work folder of halo's own goes, and so does one --dir made for
	 * runs that a bad option stopped before the first */
	if (b.dir[0] && (!o.dir || (b.made_dir && !b.ran))) {
		halo_fs_remove_tree(b.dir);
	} else if (b.dir[0]) { /* the peers' outputs, even those Ctrl-C stopped */
		char peers[PATH_MAX + 16];
		snprintf(peers, sizeof peers, "%s/peers", b.dir);
		halo_fs_remove_tree(peers);
	}
	for (int i = 0; i < rep.nworkloads; i++)
		free(workloads[i].runs);
	json_decref(rep.machine);
	return status;
}
