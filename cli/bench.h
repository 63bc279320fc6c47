/* `halo bench`: what the measuring (bench.c), the in-process RL
 * measurement (bench_rl.c) and the reports (bench_report.c) share. */
#ifndef HALO_CLI_BENCH_H
#define HALO_CLI_BENCH_H

#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>

#include "halo.h"
#include "util/progress.h"

#define MAXLIST 16
#define MAXCFG 256 /* configurations a workload may have */

/* halo bench's options. */
struct bench_opts {
	int want[3];                      /* rl, deconvolve, convert */
	int cpus[MAXLIST], ncpus;         /* -1: all */
	int gpus[MAXLIST], ngpus;
	const char *scheds[MAXLIST];
	int nscheds;
	int64_t chunks[MAXLIST][3];
	int nchunks;
	const char *modes[2];
	int nmodes;
	int64_t shape[3], size[3], depth[3];
	int64_t input_chunks[3];          /* 0: half the volume in z, a quarter in y, x */
	int ndepth;
	long psf, iterations, repeat, warmup;
	char peers[128];
	const char *python, *json, *plot, *trace, *dir, *input;
	const char *simulate;              /* recorded models: run halo-sim */
	int quiet;
	int given_mode, given_shape, given_peers, given_repeat; /* the option was given */
};

/* Everything a run of the bench needs beyond its options. */
struct bench_ctx {
	const struct bench_opts *o;
	char self[PATH_MAX], peers_py[PATH_MAX], dir[PATH_MAX];
	int made_dir; /* --dir did not exist */
	int ran;      /* the runs began */
	char input[PATH_MAX + 128], psf[PATH_MAX + 128];
	int cores, ngpu;
	/* The volume deconvolve and convert run on (--input's, or --size's
	 * uint16 Zarr): its shape, type and format, its bytes per voxel. */
	int64_t vol[3];
	char vol_what[64];
	double vol_el;
	char sim_exe[PATH_MAX], sim_host[256]; /* --simulate */
	double copy_gbs; /* rl: the best CPU copy bandwidth of every round */
	int done, total; /* progress, in measured configurations */
	double started;
};

/* One configuration of halo: ncpu/ncuda -1 mean all. */
struct bench_cfg {
	int ncpu, ncuda;
	const char *sched;
	int64_t chunks[3]; /* deconvolve and convert */
	const char *mode;  /* deconvolve: "overlap" or "exact" */
};

/* One measured tool (halo in one configuration, or a peer). */
struct bench_run {
	char tool[32];     /* "halo" or the peer's name */
	char label[160];
	struct bench_cfg cfg;
	int available;
	char reason[PATH_MAX + 128];  /* why a peer could not run */
	double times[64];
	int ntimes;
	double max_rel_diff; /* against halo's result; < 0 when not measured */
	char against[160];   /* ... in the configuration of this label */
	char cuda_rl[20];    /* rl on a GPU: how the elementwise steps ran
			      * (halo_rl_cuda_path; see bench_run_bytes) */
	int cuda_graphs;     /* ... and whether its iterations ran as CUDA graphs */
	char trace[4096];    /* the trace recorded for this configuration, or "" */
};

struct bench_workload {
	const char *name;
	char about[256];
	const char *units;     /* "Mvox*iter/s" or "MB/s" */
	double work;           /* per run, in the units' numerator */
	double bytes;          /* memory traffic per run by the model (rl), else 0 */
	struct bench_run *runs;
	int nruns;
};

struct bench_report {
	json_t *machine;        /* halo info --json */
	double cpu_copy_gbs;    /* measured copy bandwidth over every core */
	double gpu_peak_gbs;    /* the first GPU's peak, 0 without one */
	int repeat, warmup;
	struct bench_workload *workloads;
	int nworkloads;
};

/* bench.c */
void bench_progress(struct bench_ctx *b, const char *what);
void bench_add_run(struct bench_workload *w, const struct bench_run *r);

/* bench_peers.c: child processes and the peers (bench/peers.py). */
int bench_spawn(const struct bench_ctx *b, char *const argv[], char **out, char *errline,
		size_t errlen, double *seconds);
struct bench_peers;
/* Progress steps a round of a workload's peers takes. */
int bench_peers_count(const struct bench_ctx *b, const char *workload);
/* A workload's peers, measured in rounds between halo's; NULL when out of
 * memory; ref: the halo configuration whose chunks the pipelines' peers
 * use. keep: the round counts (not a warm-up); last: the final round,
 * when dask's result is compared with the output halo's run in ref (of
 * that label) just left. end adds the runs to w (none when w is NULL; p
 * may be NULL) and frees p. */
struct bench_peers *bench_peers_begin(const struct bench_ctx *b, const struct bench_workload *w,
				      const struct bench_cfg *ref);
void bench_peers_round(struct bench_ctx *b, struct bench_peers *p,
		       const struct bench_workload *w, int keep, int last, const char *ref_label);
void bench_peers_end(struct bench_peers *p, struct bench_workload *w);

/* bench_inputs.c: what the workloads run on, and the CPU's peak. */
int bench_write_inputs(struct bench_ctx *b, halo_error_t *err);
double bench_cpu_copy_gbs(int threads);

/* bench_simulate.c: --simulate. setup finds halo-sim and the recorded
 * machine, resolves 'all' and the counts to simulate into o's lists, writes
 * the machine simulated under b->dir and points StarPU's environment at
 * it. result reads a halo-sim run's simulated seconds from its output. */
int bench_sim_setup(struct bench_ctx *b, struct bench_report *rep, halo_error_t *err);
/* With STARPU_PERF_MODEL_DIR set, a real bench notes this machine's
 * memory beside the models it records (DIR/halo/HOST.json), for --simulate. */
void bench_sim_record(void);
int bench_sim_result(const struct bench_ctx *b, const char *out, const char *errline,
		     double *seconds, halo_error_t *err);

/* bench_report.c */
/* "cpu=2 gpu=0 dmda 32x128x128" */
void bench_cfg_label(const struct bench_workload *w, const struct bench_cfg *c, char *out,
		     size_t len);

void bench_report_table(FILE *f, const struct bench_report *rep);
/* JSON and SVG reports: 0, or -1 with errno set. Written atomically. */
int bench_report_json(const char *path, const struct bench_report *rep);
int bench_report_svg(const char *path, const struct bench_report *rep);

/* A Gaussian PSF of n^3 voxels, sigma n/6 on each axis, sum 1 (peers.py
 * builds the same). */
void bench_gaussian_psf(float *p, int n);

/* The hidden `halo bench --rl-child` mode: one chunk of RL in this
 * process, printing one JSON line of per-run times. Returns an exit status. */
int bench_rl_child(int argc, char **argv);

#endif
