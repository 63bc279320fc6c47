/* Chunked Richardson-Lucy on StarPU (see deconvolve.h): PSF loading and
 * checks, one OTF handle per haloed chunk shape, and the RL kernel plugged
 * into a chunk stream. */
#include "config.h"
#include "runtime/deconvolve.h"
#include "runtime/grid.h"
#include "runtime/mpi.h"
#include "runtime/runtime.h"
#include "runtime/trace.h"
#include "codelets/fft.h"
#include "codelets/gather.h"
#include "codelets/rl.h"
#include "io/fs.h"
#include "io/units.h"
#include "util/util.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A PSF measured at another spacing than the image blurs it by the wrong
 * amount: RL then sharpens too little or rings, with nothing to show it.
 * Said when both files give their voxel sizes and one differs by more
 * than 1 %. */
static void check_spacing(const char *path, const char *where, const halo_volume_info_t *p,
			  int image_ndim, const double image_voxel[3], const char *image_unit)
{
	if (!image_unit || !image_unit[0] || !p->unit[0])
		return;
	int from = 3 - (p->ndim < image_ndim ? p->ndim : image_ndim), differs = 0;
	double v[3];
	for (int d = 0; d < 3; d++) {
		v[d] = p->voxel[d];
		if (halo_unit_convert(&v[d], p->unit, image_unit))
			return;
		differs |= d >= from && fabs(v[d] - image_voxel[d]) > 0.01 * fabs(image_voxel[d]);
	}
	if (!differs || halo__runtime_launched_rank() != 0)
		return;
	char shown[PATH_MAX], a[96] = "", b[96] = "";
	for (int d = from, la = 0, lb = 0; d < 3; d++) {
		la += snprintf(a + la, sizeof a - (size_t)la, "%s%g", d > from ? "x" : "", v[d]);
		lb += snprintf(b + lb, sizeof b - (size_t)lb, "%s%g", d > from ? "x" : "",
			       image_voxel[d]);
	}
	fprintf(stderr, "halo: warning: %s%s%s: the PSF's voxels are %s %s, the image's %s %s: a "
			"PSF sampled otherwise than the image gives a wrong result (resample it)\n",
		where ? where : "", where ? ": " : "", halo__shown(path, shown, sizeof shown), a,
		image_unit, b, image_unit);
}

int halo_psf_load(const char *path, const halo_select_t *sel, const char *where, int image_ndim,
		  const double image_voxel[3], const char *image_unit, float **psf, int pn[3],
		  halo_error_t *err)
{
	halo_reader_t *r;
	*psf = NULL;
	int rc = halo_reader_open_at(path, sel, &r, err);
	if (rc)
		return rc;
	const halo_volume_info_t *info = halo_reader_info(r);
	size_t el = halo_dtype_size(info->dtype);
	size_t n = (size_t)(info->shape[0] * info->shape[1] * info->shape[2]);
	size_t chunk_n = (size_t)(info->chunks[0] * info->chunks[1] * info->chunks[2]);
	double *vol = NULL;
	unsigned char *chunk = NULL;
	/* A 2D image takes a 2D PSF (one plane) or a 3D one. */
	if ((info->ndim != 3 && !(info->ndim == 2 && image_ndim == 2)) || info->shape[0] < 1) {
		rc = halo_error_set(err, HALO_EINVAL, "%s: the PSF must be %s (it is %dD)", path,
				    image_ndim == 2 ? "2D or 3D" : "3D", info->ndim);
		goto out;
	}
	if (n > (size_t)1 << 28) {
		rc = halo_error_set(err, HALO_EINVAL, "%s: a PSF of %zu voxels is too large", path, n);
		goto out;
	}
	vol = malloc(n * sizeof *vol);
	chunk = malloc(chunk_n * el);
	double *row = malloc((size_t)info->chunks[2] * sizeof *row);
	if (!vol || !chunk || !row) {
		free(row);
		rc = halo_error_set(err, HALO_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	/* Read chunk by chunk; the PSF is small, so this is sequential. */
	for (int64_t cz = 0; cz * info->chunks[0] < info->shape[0] && !rc; cz++)
		for (int64_t cy = 0; cy * info->chunks[1] < info->shape[1] && !rc; cy++)
			for (int64_t cx = 0; cx * info->chunks[2] < info->shape[2] && !rc; cx++) {
				int64_t idx[3] = {cz, cy, cx};
				if ((rc = halo_reader_read_chunk(r, idx, chunk, err)))
					break;
				for (int64_t z = 0; z < info->chunks[0]; z++)
					for (int64_t y = 0; y < info->chunks[1]; y++) {
						int64_t gz = cz * info->chunks[0] + z, gy = cy * info->chunks[1] + y;
						int64_t gx = cx * info->chunks[2];
						if (gz >= info->shape[0] || gy >= info->shape[1])
							continue;
						int64_t nx = info->shape[2] - gx < info->chunks[2] ? info->shape[2] - gx
												    : info->chunks[2];
						halo_dtype_convert(chunk + (size_t)((z * info->chunks[1] + y) *
										     info->chunks[2]) * el,
								   info->dtype.kind, row, HALO_F8, (size_t)nx);
						memcpy(vol + (size_t)((gz * info->shape[1] + gy) * info->shape[2] + gx),
						       row, (size_t)nx * sizeof *row);
					}
			}
	free(row);
	if (rc)
		goto out;
	/* Summed as fractions of the largest value: a float64 PSF of huge
	 * values would overflow the sum (and normalise to zeros). */
	double sum = 0, whole = 0, big = 0, peak = 0, least = 0;
	size_t negative = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(vol[i])) {
			rc = halo_error_set(err, HALO_EINVAL, "%s: the PSF holds NaN or Inf", path);
			goto out;
		}
		big = fabs(vol[i]) > big ? fabs(vol[i]) : big;
		peak = vol[i] > peak ? vol[i] : peak;
		least = vol[i] < least ? vol[i] : least;
		negative += vol[i] < 0;
	}
	/* A background-subtracted bead dips below zero at its rim: RL's
	 * ratios then change sign and grow without bound (5 % of the peak
	 * below zero gave infinities everywhere in 20 iterations). Clipped,
	 * as deconvolution tools do, and said. */
	for (size_t i = 0; big > 0 && i < n; i++) {
		whole += vol[i] / big;
		vol[i] = vol[i] > 0 ? vol[i] / big : 0;
		sum += vol[i];
	}
	if (!(sum > 0)) {
		rc = halo_error_set(err, HALO_EINVAL, "%s: the PSF sums to %g; it must be positive",
				    path, whole * big);
		goto out;
	}
	char shown[PATH_MAX];
	if (negative && halo__runtime_launched_rank() == 0)
		fprintf(stderr, "halo: warning: %s: %zu negative value%s in the PSF (down to %.3g "
				"of its peak) set to 0, which RL needs\n",
			halo__shown(path, shown, sizeof shown), negative,
			negative == 1 ? "" : "s", least / peak);
	*psf = malloc(n * sizeof **psf);
	if (!*psf) {
		rc = halo_error_set(err, HALO_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		(*psf)[i] = (float)(vol[i] / sum);
	for (int d = 0; d < 3; d++)
		pn[d] = (int)info->shape[d];
	check_spacing(path, where, info, image_ndim, image_voxel, image_unit);
out:
	free(vol);
	free(chunk);
	halo_reader_close(r);
	return rc;
}

int halo_deconv_chunks_auto(const int64_t shape[3], const int depth[3],
			    const halo_deconv_machine_t *m, int64_t out[3])
{
	/* The executor counts per chunk in flight about 34 bytes per haloed
	 * voxel (the input, float32 and output chunks, and RL's 20 bytes: on
	 * a CPU the haloed image, the estimate, the half spectrum and the
	 * result) and keeps up to a quarter of the budget for the input
	 * layers that neighbours share (halo_plan_memory). A GPU holds per
	 * task the haloed image, result and spectrum handles, the codelet's
	 * estimate, work array and spectrum, and two cuFFT work areas (about
	 * 40 bytes), while StarPU prefetches the next tasks' data: 64 bytes
	 * per haloed voxel. */
	int ncpu = m->ncpu > 0 ? m->ncpu : 0, ngpu = m->ngpu > 0 ? m->ngpu : 0;
	double gpu_voxels = 0.9 * (double)m->gpu_bytes / 64.0, voxels;
	int64_t min_chunks;
	if (ngpu && m->gpu_gbs >= 4.0 * ncpu * HALO_CORE_GBS) {
		/* Two chunks in flight, so that one is read and written while
		 * the GPU works on the other. */
		voxels = 0.75 * (double)m->memory / 2.0 / 34.0;
		voxels = gpu_voxels < voxels ? gpu_voxels : voxels;
		min_chunks = 4 * (int64_t)ngpu;
	} else {
		/* A chunk in flight per worker within the budget, as the
		 * executor counts it (sized by RL's 16 bytes alone, auto's own
		 * chunks drew the warning that they exceed --memory). */
		voxels = 0.75 * (double)m->memory / (ncpu ? ncpu : 1) / 34.0;
		if (ngpu && gpu_voxels < voxels)
			voxels = gpu_voxels;
		min_chunks = 2 * (int64_t)((ncpu ? ncpu : 1) + ngpu);
	}
	return halo_chunks_auto(shape, depth, 1.0, (uint64_t)voxels, min_chunks, out);
}

void halo_deconv_chunks_fit_depth(int64_t chunks[3], const int64_t shape[3], const int depth[3])
{
	for (int d = 0; d < 3; d++) {
		if (chunks[d] >= shape[d] || chunks[d] + 2 * (int64_t)depth[d] >= INT_MAX / 4)
			continue;
		/* Neither more chunks (a sliver at the end) nor an axis below
		 * 4x the depth, as halo_chunks_auto promises (its multiples
		 * of 8 give way to the FFT's sizes here). */
		int64_t count = (shape[d] + chunks[d] - 1) / chunks[d];
		int64_t least = 4 * (int64_t)depth[d];
		for (int64_t c = chunks[d];
		     c >= 1 && c >= least && c >= chunks[d] - chunks[d] / 8 &&
		     (shape[d] + c - 1) / c == count;
		     c--) {
			int n = (int)(c + 2 * (int64_t)depth[d]);
			if (halo_fft_good_size(n, 1) == n) {
				chunks[d] = c;
				break;
			}
		}
	}
}

void halo_deconv_default_depth(const int64_t chunks[3], const int pn[3], int depth[3])
{
	for (int d = 0; d < 3; d++) {
		int64_t want = chunks[d] + 2 * (int64_t)pn[d];
		int good = want < INT_MAX / 4 ? halo_fft_good_size((int)want, 2) : 0;
		depth[d] = good ? (int)((good - chunks[d]) / 2) : pn[d];
	}
}

int halo_deconv_min_haloed(const halo_volume_info_t *out, const halo_deconv_opts_t *o,
			   int64_t min_haloed[3], halo_error_t *err)
{
	for (int d = 0; d < 3; d++) {
		struct halo_axis chunks = {0}, blocks = {0};
		if (halo_axis_regular(&chunks, out->shape[d], out->chunks[d]))
			return halo_error_set(err, HALO_ENOMEM, "out of memory");
		/* Blocks merged as map_overlap merges them; a depth deeper than
		 * the axis is refused later, where the graph is built. */
		const struct halo_axis *a = &chunks;
		if (!halo_axis_min_blocks(&blocks, &chunks, o->depth[d] ? o->depth[d] : 1))
			a = &blocks;
		min_haloed[d] = halo_axis_min_haloed(a, o->depth[d], o->boundary);
		halo_axis_free(&chunks);
		halo_axis_free(&blocks);
	}
	return HALO_OK;
}

int halo__otf_get(struct halo_otf_cache *c, const int n[3], int rank, starpu_data_handle_t *out,
		  halo_error_t *err)
{
	rank = rank < c->nranks ? rank : 0;
	for (int i = 0; i < c->count; i++)
		if (!memcmp(c->entries[i].n, n, sizeof c->entries[i].n) && c->entries[i].rank == rank) {
			*out = c->entries[i].handle;
			return HALO_OK;
		}
	if (c->count == c->cap) {
		int cap = c->cap ? 2 * c->cap : 8;
		struct halo_otf_entry *e = realloc(c->entries, (size_t)cap * sizeof *e);
		if (!e)
			return halo_error_set(err, HALO_ENOMEM, "out of memory");
		c->entries = e;
		c->cap = cap;
	}
	struct halo_otf_entry *e = &c->entries[c->count];
	memcpy(e->n, n, sizeof e->n);
	e->rank = rank;
	starpu_vector_data_register(&e->handle, -1, 0, (uint32_t)halo_otf_floats(n), sizeof(float));
	/* Under MPI each rank computes the spectra its tasks use: none crosses. */
	halo__mpi_register(e->handle, rank);
	struct halo_otf_args *args = malloc(sizeof *args);
	if (!args) {
		starpu_data_unregister_submit(e->handle);
		return halo_error_set(err, HALO_ENOMEM, "out of memory");
	}
	*args = (struct halo_otf_args){.n = {n[0], n[1], n[2]}, .failed = &c->failed};
	int rc = HALO_TASK_INSERT(&halo_otf_cl, STARPU_R, c->psf[rank], STARPU_W, e->handle,
				    STARPU_CL_ARGS, args, sizeof *args, STARPU_NAME, "otf", 0);
	if (rc) {
		starpu_data_unregister_submit(e->handle);
		return halo_error_set(err, HALO_ERUNTIME, "no StarPU worker can compute the PSF spectrum");
	}
	c->count++;
	*out = e->handle;
	return HALO_OK;
}

int halo__otf_cache_init(struct halo_otf_cache *c, const float *psf, const int pn[3],
			 halo_error_t *err)
{
	memset(c, 0, sizeof *c);
	size_t np = (size_t)pn[0] * pn[1] * pn[2];
	starpu_malloc((void **)&c->psf_copy, np * sizeof(float));
	if (!c->psf_copy)
		return halo_error_set(err, HALO_ENOMEM, "out of memory");
	memcpy(c->psf_copy, psf, np * sizeof(float));
	/* Every rank has the PSF: one read-only handle per rank, each owned
	 * by its rank, so that no rank sends it to another. */
	c->nranks = halo__mpi_active() ? halo__mpi_ranks() : 1;
	c->psf = calloc((size_t)c->nranks, sizeof *c->psf);
	if (!c->psf) {
		starpu_free(c->psf_copy);
		c->psf_copy = NULL;
		return halo_error_set(err, HALO_ENOMEM, "out of memory");
	}
	for (int r = 0; r < c->nranks; r++) {
		starpu_block_data_register(&c->psf[r], STARPU_MAIN_RAM, (uintptr_t)c->psf_copy,
					   (uint32_t)pn[2], (uint32_t)(pn[2] * pn[1]), (uint32_t)pn[2],
					   (uint32_t)pn[1], (uint32_t)pn[0], sizeof(float));
		halo__mpi_register(c->psf[r], r);
	}
	return HALO_OK;
}

int halo__otf_cache_release(struct halo_otf_cache *c)
{
	for (int i = 0; i < c->count; i++)
		starpu_data_unregister(c->entries[i].handle);
	int failed = __atomic_load_n(&c->failed, __ATOMIC_RELAXED);
	for (int r = 0; c->psf && r < c->nranks; r++)
		starpu_data_unregister(c->psf[r]);
	free(c->psf);
	starpu_free(c->psf_copy);
	free(c->entries);
	memset(c, 0, sizeof *c);
	return failed;
}

struct rl_ctx {
	struct halo_otf_cache otf;
	int iterations;
	int threads;
	int probed;    /* the GPU's speedup was noted */
};

/* A CPU worker's time for this rl task over a GPU worker's, by StarPU's
 * models; 0 when either is not known or a kind of worker is missing, and
 * infinite where no CPU worker may run it (a chunk too large to calibrate
 * on a core, halo_rl_cpu_may_run): the GPUs run every rl task then, as on
 * the seed's first run on a machine, where 15 CPU workers reading for a
 * GPU that was not known to lead took 87.7 s against 69.6 s with 4. */
static double rl_gpu_speedup(starpu_data_handle_t haloed, starpu_data_handle_t otf,
			     starpu_data_handle_t out, struct halo_rl_args *a)
{
	int cpu, gpu;
	if (starpu_worker_get_ids_by_type(STARPU_CPU_WORKER, &cpu, 1) < 1 ||
	    starpu_worker_get_ids_by_type(STARPU_CUDA_WORKER, &gpu, 1) < 1)
		return 0;
	struct starpu_task *t = starpu_task_create();
	t->cl = &halo_rl_cl;
	t->handles[0] = haloed;
	t->handles[1] = otf;
	t->handles[2] = out;
	t->cl_arg = a;
	t->cl_arg_size = sizeof *a;
	t->destroy = 0; /* never submitted: destroyed here */
	double tc = starpu_task_expected_length(t, starpu_worker_get_perf_archtype(cpu, 0), 0);
	double tg = starpu_task_expected_length(t, starpu_worker_get_perf_archtype(gpu, 0), 0);
	starpu_task_destroy(t);
	double work = (double)starpu_block_get_nx(haloed) * starpu_block_get_ny(haloed) *
		      starpu_block_get_nz(haloed) * a->iterations;
	if (!halo_rl_cpu_may_run(work, tc))
		return INFINITY;
	return tc > 0 && tg > 0 ? tc / tg : 0; /* NaN compares false */
}

static int rl_submit(void *ctx, starpu_data_handle_t haloed, starpu_data_handle_t out,
		     const int trim[3], const int valid[3], int *failed, halo_error_t *err)
{
	struct rl_ctx *c = ctx;
	int n[3] = {(int)starpu_block_get_nz(haloed), (int)starpu_block_get_ny(haloed),
		    (int)starpu_block_get_nx(haloed)};
	starpu_data_handle_t otf = NULL;
	int rc = halo__otf_get(&c->otf, n, halo__mpi_owner(out), &otf, err);
	if (rc)
		return rc;
	struct halo_rl_args *a = malloc(sizeof *a);
	if (!a)
		return halo_error_set(err, HALO_ENOMEM, "out of memory");
	*a = (struct halo_rl_args){.iterations = c->iterations, .threads = c->threads,
				   .failed = failed};
	memcpy(a->trim, trim, sizeof a->trim);
	memcpy(a->valid, valid, sizeof a->valid);
	if (!c->probed) {
		c->probed = 1;
		halo_runtime_gpu_speedup_set(rl_gpu_speedup(haloed, otf, out, a));
	}
	rc = HALO_TASK_INSERT(&halo_rl_cl, STARPU_R, haloed, STARPU_R, otf, STARPU_W, out,
				STARPU_CL_ARGS, a, sizeof *a, STARPU_NAME, "rl", 0);
	if (rc)
		return halo_error_set(err, HALO_ERUNTIME, "no StarPU worker can run Richardson-Lucy");
	return HALO_OK;
}

#ifdef HALO_USE_CUDA
/* The PSF's spectrum for the usual haloed shape, and every GPU worker's RL
 * plans and buffers (rl_warm), made and waited for before the first chunk
 * is read. Made among the first reads instead, each of their driver calls
 * queued behind the pinning of the reads' host buffers (cudaHostAlloc,
 * which the driver serialises, at about 0.65 ms per MiB; halo now pins
 * only where STARPU_DISABLE_PINNING=0 asks): on the H100 with 15 CPU
 * workers reading, the spectrum took 328 ms instead of 3, and every
 * chunk's RL waits for it. Skipped under MPI, where every rank must submit
 * the same tasks in the same order. */
static int rl_prepare(void *ctx, const int n[3], const int out[3], halo_error_t *err)
{
	struct rl_ctx *c = ctx;
	int ids[STARPU_NMAXWORKERS];
	int count = (int)starpu_worker_get_ids_by_type(STARPU_CUDA_WORKER, ids, STARPU_NMAXWORKERS);
	if (count < 1 || halo__mpi_active())
		return HALO_OK;
	starpu_data_handle_t otf;
	int rc = halo__otf_get(&c->otf, n, 0, &otf, err);
	for (int i = 0; !rc && i < count; i++) {
		int *shape = malloc(3 * sizeof *shape);
		if (!shape)
			break; /* an optimisation only: rl tasks make their own plans */
		memcpy(shape, n, 3 * sizeof *shape);
		struct starpu_task *t = starpu_task_create();
		t->cl = &halo_rl_warm_cl;
		t->handles[0] = otf;
		t->cl_arg = shape;
		t->cl_arg_free = 1;
		t->execute_on_a_specific_worker = 1;
		t->workerid = (unsigned)ids[i];
		t->name = "rl_warm";
		if (halo_task_submit(t) < 0)
			break;
	}
	/* Nothing else runs yet: the stream has submitted no task. */
	starpu_task_wait_for_all();
	/* The GPUs' speedup before the first read, so that the executor
	 * can keep the CPUs to the I/O from the start where they would run
	 * no RL (halo_runtime_gpus_lead). Handles never allocated. */
	starpu_data_handle_t h[2] = {NULL, NULL};
	const int *dims[2] = {n, out};
	for (int i = 0; !rc && i < 2; i++)
		starpu_block_data_register(&h[i], -1, 0, (uint32_t)dims[i][2],
					   (uint32_t)dims[i][2] * (uint32_t)dims[i][1], (uint32_t)dims[i][2],
					   (uint32_t)dims[i][1], (uint32_t)dims[i][0], sizeof(float));
	if (!rc && !c->probed) {
		struct halo_rl_args a = {.iterations = c->iterations, .threads = c->threads};
		c->probed = 1;
		halo_runtime_gpu_speedup_set(rl_gpu_speedup(h[0], otf, h[1], &a));
	}
	for (int i = 0; i < 2; i++)
		if (h[i])
			starpu_data_unregister(h[i]);
	return rc;
}
#endif

static void wisdom_path(char *out, size_t len)
{
	const char *env = getenv("HALO_FFTW_WISDOM");
	if (env) {
		snprintf(out, len, "%s", env);
		return;
	}
	const char *cache = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	char dir[4096];
	/* Folders made under a home or cache folder that exists, never the
	 * home itself (HOME may name one that is not there). */
	if (cache && *cache && halo_fs_is_dir(cache))
		snprintf(dir, sizeof dir, "%s/halo", cache);
	else if (home && *home && halo_fs_is_dir(home))
		snprintf(dir, sizeof dir, "%s/.cache/halo", home);
	else {
		out[0] = '\0';
		return;
	}
	if (halo_fs_mkdirs(dir, NULL) != HALO_OK) {
		out[0] = '\0';
		return;
	}
	snprintf(out, len, "%s/fftw-wisdom-f32", dir);
}

static void wisdom_load_once(void)
{
	char path[4096 + 32]; /* a folder's path and the file's name */
	wisdom_path(path, sizeof path);
	char shown[sizeof path];
	if (path[0] && halo_fft_init(path) != 0)
		fprintf(stderr, "halo: warning: %s is not an FFTW wisdom file; halo neither reads "
				"nor replaces it (FFTW plans afresh)\n",
			halo__shown(path, shown, sizeof shown));
}

void halo_fftw_wisdom_load(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, wisdom_load_once);
}

struct rl_kernel {
	halo_overlap_kernel_t kernel;
	struct rl_ctx ctx;
};

int halo_rl_kernel_create(const float *psf, const int pn[3], int iterations, int threads,
			  halo_overlap_kernel_t **out, halo_error_t *err)
{
	struct rl_kernel *k = calloc(1, sizeof *k);
	if (!k)
		return halo_error_set(err, HALO_ENOMEM, "out of memory");
	halo_fftw_wisdom_load();
	k->ctx = (struct rl_ctx){.iterations = iterations, .threads = threads > 1 ? threads : 1};
	int rc = halo__otf_cache_init(&k->ctx.otf, psf, pn, err);
	if (rc) {
		free(k);
		return rc;
	}
	k->kernel = (halo_overlap_kernel_t){.submit = rl_submit, .ctx = &k->ctx};
#ifdef HALO_USE_CUDA
	k->kernel.prepare = rl_prepare;
#endif
	*out = &k->kernel;
	return HALO_OK;
}

int halo_rl_kernel_failed(const halo_overlap_kernel_t *kernel)
{
	return kernel && __atomic_load_n(&((const struct rl_kernel *)kernel)->ctx.otf.failed,
					 __ATOMIC_RELAXED);
}

int halo_rl_kernel_destroy(halo_overlap_kernel_t *kernel, halo_error_t *err)
{
	if (!kernel)
		return HALO_OK;
	struct rl_kernel *k = (struct rl_kernel *)kernel;
	int failed = halo__otf_cache_release(&k->ctx.otf);
	halo_fft_save_wisdom();
	free(k);
	return failed ? halo_error_set(err, HALO_ENOMEM, "out of memory computing the PSF spectrum")
		      : HALO_OK;
}

int halo_rl_range_check(double max, int64_t fft_voxels, const char *what, halo_error_t *err)
{
	double limit = FLT_MAX / (double)(fft_voxels > 0 ? fft_voxels : 1);
	if (!(max > limit))
		return HALO_OK;
	return halo_error_set(err, HALO_EINVAL, "%s holds values up to %.3g: Richardson-Lucy's "
			      "float32 FFTs of %lld voxels overflow above about %.3g (to NaN); "
			      "rescale the data first", what, max, (long long)fft_voxels, limit);
}
