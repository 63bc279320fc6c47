/* Chunked Richardson-Lucy: map_overlap's RL kernel (the overlap mode,
 * used by graphs) and the exact mode. The PSF's spectrum is computed once
 * per haloed chunk shape by an otf task and shared read-only by all RL
 * tasks of that shape. */
#ifndef HALO_RUNTIME_DECONVOLVE_H
#define HALO_RUNTIME_DECONVOLVE_H

#include "halo.h"
#include "io/volume.h"
#include "runtime/kernel.h"
#include "runtime/stream.h"

#include <starpu.h>

typedef struct halo_deconv_opts {
	int iterations;
	int depth[3];
	int boundary;        /* enum halo_boundary */
	double constant;
	halo_stream_opts_t stream; /* memory, quiet, label */
} halo_deconv_opts_t;

/* Loads a PSF (TIFF or Zarr; sel: its channel and time point, as
 * halo_reader_open_at) as float32, normalised to sum 1, for an image
 * of image_ndim dimensions. Rejects a PSF that is not 3D (a 2D image also
 * takes a 2D one, as one plane), holds NaN or Inf, or sums to zero or
 * less. Warns when the PSF's voxel size differs from the image's
 * (image_voxel in image_unit, z, y, x; both files must give a unit),
 * naming where first (a pipeline's file and step) unless NULL. *psf
 * is malloc'ed; the caller frees it. */
int halo_psf_load(const char *path, const halo_select_t *sel, const char *where, int image_ndim,
		  const double image_voxel[3], const char *image_unit, float **psf, int pn[3],
		  halo_error_t *err);

/* The smallest haloed block along each axis for this volume, chunking and
 * depth: edge chunks are smaller, chunks thinner than the depth merge as
 * in map_overlap, boundary none clips at the faces. */
int halo_deconv_min_haloed(const halo_volume_info_t *out, const halo_deconv_opts_t *o,
			   int64_t min_haloed[3], halo_error_t *err);

/* What --chunks auto sizes RL's chunks for. */
typedef struct halo_deconv_machine {
	uint64_t memory;    /* the host memory budget (--memory) */
	int ncpu;           /* CPU workers that may run RL (0: GPUs alone) */
	int ngpu;           /* GPUs */
	uint64_t gpu_bytes; /* the smallest GPU's memory */
	double gpu_gbs;     /* the GPUs' peak memory bandwidths, added up, GB/s */
} halo_deconv_machine_t;

/* A core's share of a server's memory bandwidth, which bounds RL on CPUs
 * as the GPU's bounds it on GPUs: on the H100 machine (16 Xeon cores, a
 * measured copy of 101.7 GB/s) RL ran 34x faster on the GPU (3352 GB/s
 * peak) than on every core, and the bandwidths differ 33x. */
#define HALO_CORE_GBS 6.4

/* --chunks auto for overlap-mode RL. Where the GPUs would do 80 % of the
 * work or more (their bandwidth against HALO_CORE_GBS per CPU worker;
 * always with --ncpu 0), chunks are as large as the smallest GPU takes (64
 * bytes per haloed voxel in 90 % of it) while two stay in flight within
 * the host budget, at least four per GPU: fewer, larger chunks carry less
 * halo (on the seed's volume, chunks for every CPU worker would give the
 * GPU 1.4x the voxels). Otherwise every worker gets two chunks, each
 * fitting a CPU worker's share of the budget (16 bytes per haloed voxel)
 * and the GPU. See halo_chunks_auto for the shape rules. Chunks over
 * blosc's 2 GiB are stored in pieces (halo_zarr_chunks_fit). Returns 1
 * where even the smallest chunks it makes need more memory than the budget
 * gives them. */
int halo_deconv_chunks_auto(const int64_t shape[3], const int depth[3],
			    const halo_deconv_machine_t *m, int64_t out[3]);

/* With a depth fixed by the user, --chunks auto shrinks each chunked
 * axis's chunk (by at most an eighth, keeping the number of chunks and
 * 4x the depth) until the chunk with its halo on both sides has an
 * FFT-friendly size: a 152-voxel axis (8 x 19) made FFTW 1.7x slower per
 * voxel than 150. Axes in one chunk stay whole. */
void halo_deconv_chunks_fit_depth(int64_t chunks[3], const int64_t shape[3], const int depth[3]);

/* The default overlap depth: at least the PSF's size on each axis, grown
 * (by a few voxels) until a chunk of the given shape with its halo on both
 * sides has an FFT-friendly size (halo_fft_good_size): a larger halo only
 * brings the chunked result closer to whole-volume RL, while a haloed size
 * with a large prime factor makes every FFT several times slower. */
void halo_deconv_default_depth(const int64_t chunks[3], const int pn[3], int depth[3]);

/* map_overlap's Richardson-Lucy kernel for chunk streams and graphs:
 * each haloed chunk gets `iterations` RL iterations with the PSF's
 * spectrum for its shape (one otf task per shape). threads: the most
 * threads a task may use, on cores that no other task needs (see rl.c). */
int halo_rl_kernel_create(const float *psf, const int pn[3], int iterations, int threads,
			  halo_overlap_kernel_t **out, halo_error_t *err);
/* Waits for the kernel's tasks and frees it; fails when a spectrum could
 * not be computed. */
int halo_rl_kernel_destroy(halo_overlap_kernel_t *kernel, halo_error_t *err);
/* Whether a PSF spectrum of the kernel failed (out of memory): its
 * results are garbage, and no output may be committed. */
int halo_rl_kernel_failed(const halo_overlap_kernel_t *kernel);

/* RL's FFTs are unnormalised float32: a block whose values reach max,
 * transformed over fft_voxels voxels, overflows (to NaN in the result)
 * once max times fft_voxels passes float32's range. That block refused in
 * one line naming `what` (its file and chunk); HALO_OK below the limit. */
int halo_rl_range_check(double max, int64_t fft_voxels, const char *what, halo_error_t *err);

/* Exact mode: whole-volume RL computed chunk by chunk, exchanging halos
 * every half-iteration (forward: estimate -> ratio, backward: ratio ->
 * estimate), with the boundary rule at the volume's faces (not none).
 * Chunks are oi's (the output's); o->depth is ignored. Under several MPI
 * ranks each rank reads and writes the chunks it owns (out is NULL on
 * ranks that write nothing: a TIFF is written by rank 0) and only the halo
 * slabs cross ranks. */
int halo_deconvolve_exact(halo_reader_t *in, halo_writer_t *out, const halo_volume_info_t *oi,
			  const float *psf, const int pn[3], const halo_deconv_opts_t *o,
			  halo_stream_stats_t *stats, halo_error_t *err);

/* One PSF spectrum handle per FFT shape, computed on first use (internal to
 * runtime/). */
struct halo_otf_entry {
	int n[3];
	int rank;      /* the MPI rank that computes and uses it */
	starpu_data_handle_t handle;
};

struct halo_otf_cache {
	starpu_data_handle_t *psf; /* one per MPI rank (one in one process) */
	int nranks;
	float *psf_copy;
	struct halo_otf_entry *entries;
	int count, cap;
	int failed; /* set by otf tasks */
};

int halo__otf_cache_init(struct halo_otf_cache *c, const float *psf, const int pn[3],
			 halo_error_t *err);
int halo__otf_get(struct halo_otf_cache *c, const int n[3], int rank, starpu_data_handle_t *out,
		  halo_error_t *err);
/* Waits for the tasks using the handles and unregisters them; returns
 * whether a spectrum task failed, read once they are all done. */
int halo__otf_cache_release(struct halo_otf_cache *c);

/* Loads FFTW wisdom kept between runs (halo_fft_init) from
 * $HALO_FFTW_WISDOM, else $XDG_CACHE_HOME/halo/fftw-wisdom-f32, else
 * ~/.cache/halo/... (made where that home or cache folder exists), once
 * per process; says so where that file is not FFTW's, which is then left
 * alone. */
void halo_fftw_wisdom_load(void);

#endif
