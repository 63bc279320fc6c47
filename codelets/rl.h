/* Richardson-Lucy deconvolution codelets.
 *
 * otf: the PSF's spectrum for one (haloed) chunk shape, computed once and
 * shared read-only by every RL task of that shape; StarPU replicates it to
 * each memory node that needs it. The PSF (normalised to sum 1 by the
 * caller) is placed so that its centre voxel, index n//2 on each axis, lands
 * on the origin, and the spectrum is scaled by 1/N so the inverse transform
 * needs no separate normalisation.
 *
 * rl: N iterations on one haloed chunk (see rl_math.h), starting from the
 * image itself, with the result trimmed to the chunk's own extent. */
#ifndef HALO_CODELET_RL_H
#define HALO_CODELET_RL_H

#include <stdint.h>
#include <starpu.h>

#include "util/signals.h"

/* Codelets cannot return errors: a failing task sets *failed (when not
 * NULL) and leaves its output undefined; the submitter checks it. */
struct halo_otf_args {
	int n[3];      /* the chunk shape the spectrum is for (z, y, x) */
	int *failed;
};

/* Buffers: PSF (STARPU_R, block of float), OTF (STARPU_W, vector of
 * 2 * n0 * n1 * (n2/2+1) floats: interleaved complex). */
extern struct starpu_codelet halo_otf_cl;

struct halo_rl_args {
	int iterations;
	int trim[3];   /* first voxel of the output inside the haloed image */
	int valid[3];  /* voxels of the result that lie in the volume; the rest
			* of the result block (edge padding) is set to 0 */
	int threads;   /* the most threads this task may use: it takes the
			* cores of idle CPU workers while no task waits */
	int *failed;
};

/* Buffers: haloed image (STARPU_R, block of float), OTF (STARPU_R, vector
 * for the image's shape), result (STARPU_W, block of float: a whole chunk). */
extern struct starpu_codelet halo_rl_cl;

#ifdef HALO_USE_CUDA
/* rl_warm, on one chosen CUDA worker: makes that worker's RL plans and
 * buffers for the shape in cl_arg (int[3], z, y, x) ahead of its first rl
 * task. Buffer: the OTF for that shape (STARPU_R), so that its copy on the
 * GPU is made too. A failure is left to the rl task to meet and report. */
extern struct starpu_codelet halo_rl_warm_cl;
#endif

/* The exact mode's half-iterations (whole-volume RL computed chunk by
 * chunk): forward turns the estimate with its halo into the chunk's ratio,
 * backward the ratio with its halo into the chunk's new estimate. off is
 * where the chunk starts inside the haloed block. */
struct halo_rl_half_args {
	int off[3];
	int *failed;
};

/* Exact mode submits its halves iterations ahead: once the run failed or
 * was interrupted they do nothing (Ctrl-C waited for 2 to 3 queued
 * iterations, longer than the signal's grace on a large volume). */
static inline int halo_rl_half_stopped(const struct halo_rl_half_args *a)
{
	return halo_interrupted() || (a->failed && __atomic_load_n(a->failed, __ATOMIC_RELAXED));
}

/* Buffers: haloed estimate (R, block), image chunk (R, block), OTF (R,
 * vector for the haloed shape), ratio chunk (W, block). */
extern struct starpu_codelet halo_rl_forward_cl;
/* Buffers: haloed ratio (R, block), OTF (R), estimate chunk (RW, block). */
extern struct starpu_codelet halo_rl_backward_cl;

/* Whether a CPU worker may take an RL task of `work` voxel-iterations
 * (haloed voxels times iterations; 1 iteration for a half) on a machine
 * with GPUs, given the time StarPU's model expects of it there (NaN: none
 * yet). StarPU's dmda sends a task whose model has no measurement for an
 * arch to that arch, to calibrate it; on a CPU+GPU machine that put a
 * seed-sized chunk (50 G voxel-iterations, half an hour on a core) on each
 * CPU worker while the GPU would have done it in 3 s. So a CPU calibrates
 * only on tasks up to HALO_RL_CPU_CALIBRATE_WORK, a few seconds on a core;
 * larger ones run on CPUs once CPU-only runs have measured their shape and
 * iterations (StarPU wants 10 measurements, STARPU_CALIBRATE_MINIMUM). */
#define HALO_RL_CPU_CALIBRATE_WORK 256e6
int halo_rl_cpu_may_run(double work, double expected);

/* From this many voxels in a chunk the GPU runs the ratio and the update
 * inside cuFFT's C2R transforms (store callbacks) unless
 * HALO_CUFFT_CALLBACKS says otherwise: on an H100 that was 1.14x faster
 * than kernels at 384x1152x1152 (the seed pipeline's haloed chunk) and
 * 0.89x as fast at 128x256x256. */
#define HALO_RL_STORE_CALLBACKS_MIN (1 << 28)
/* The RL steps a GPU runs inside cuFFT: the OTF products as load
 * callbacks, the ratio and the update as store callbacks. */
enum { HALO_RL_CB_LOAD = 1, HALO_RL_CB_STORE = 2 };
/* Those steps for a chunk of shape n, as HALO_CUFFT_CALLBACKS (env) says:
 * 0 none, 1 all, load, store; any other value or none, the store callbacks
 * from HALO_RL_STORE_CALLBACKS_MIN voxels and none below. */
int halo_rl_callbacks_choice(const int n[3], const char *env);

int halo_rl_forward_compute(const float *haloed, const int n[3], const float *otf,
			    const float *image, const int on[3], const int off[3], float *ratio);
int halo_rl_backward_compute(const float *haloed, const int n[3], const float *otf, float *est,
			     const int on[3], const int off[3]);

#ifdef HALO_USE_CUDA
void halo__rl_cuda(void *buffers[], void *cl_arg);
void halo__otf_cuda(void *buffers[], void *cl_arg);
void halo__rl_warm_cuda(void *buffers[], void *cl_arg);
void halo__rl_forward_cuda(void *buffers[], void *cl_arg);
void halo__rl_backward_cuda(void *buffers[], void *cl_arg);
/* How the GPU RL plans made so far in this process run: sets of plans with
 * the elementwise steps fused into cuFFT callbacks, sets that run them as
 * kernels, and the cuFFT error that made the last fused set fall back to
 * kernels (0: none did). HALO_CUFFT_CALLBACKS=1 asks for callbacks, =load
 * or =store for only the OTF products or only the ratio and update, =0
 * for kernels; by default, halo_rl_callbacks_choice. */
void halo_rl_cuda_plans(int *fused, int *kernels, int *last_error);
/* CUDA graphs of RL iterations captured so far, and captures that failed
 * (those plan sets launch every kernel; HALO_CUDA_GRAPHS=0 asks for that). */
void halo_rl_cuda_graphs(int *made, int *failed);
/* How the last plan set made runs those steps: "kernels", "callbacks",
 * "load callbacks" or "store callbacks". */
const char *halo_rl_cuda_path(void);
#endif

/* Number of floats in the spectrum of a real array of shape n. */
static inline size_t halo_otf_floats(const int n[3])
{
	return 2 * (size_t)n[0] * (size_t)n[1] * (size_t)(n[2] / 2 + 1);
}

/* The arithmetic, without StarPU, for tests and benchmarks. All arrays are
 * contiguous; psf has shape pn, otf and image shape n, out shape on. Return
 * 0, or -1 when out of memory. */
int halo_otf_compute(const float *psf, const int pn[3], const int n[3], float *otf);
/* out = image convolved with the PSF whose spectrum is otf (circular). */
int halo_convolve_compute(const float *image, const int n[3], const float *otf, float *out);
/* RL on up to nthreads threads; share, when not NULL, says before each
 * pass how many of them to use (see halo_fft_work's share). */
int halo_rl_compute(const float *image, const int n[3], const float *otf, int iterations,
		    const int trim[3], const int valid[3], float *out, const int on[3],
		    int nthreads, int (*share)(int max));

#endif
