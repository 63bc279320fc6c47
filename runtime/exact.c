/* Exact chunked deconvolution (see deconvolve.h): whole-volume
 * Richardson-Lucy computed chunk by chunk.
 *
 * For a PSF of n voxels per axis with centre c = n//2, the forward half of
 * an iteration needs the estimate on the chunk plus n-1-c voxels before and
 * c after (the boundary rule beyond the volume's faces), the backward half
 * the ratio with the halo mirrored; with an FFT of chunk + n - 1 voxels the
 * circular convolution is exact on the chunk, and so it stays when the size
 * is rounded up to a smooth one with more real halo after the chunk. Each half is one
 * gather (the halo exchange) and one task per chunk; StarPU's sequential
 * consistency orders them through the estimate and ratio handles, so
 * chunks move ahead as far as their neighbours allow, with no barrier per
 * iteration. Image, estimate and ratio chunks stay resident (the working
 * set is three float32 volumes); the image is read once, the estimate
 * written once. */
#include "config.h"
#include "codelets/fft.h"
#include "codelets/gather.h"
#include "codelets/rl.h"
#include "io/scratch.h"
#include "runtime/deconvolve.h"
#include "runtime/distribution.h"
#include "runtime/grid.h"
#include "runtime/mpi.h"
#include "runtime/stream_job.h"
#include "runtime/trace.h"
#include "util/progress.h"
#include "util/signals.h"
#include "util/util.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct exact {
	halo_reader_t *in;
	halo_writer_t *out;
	const halo_volume_info_t *ii, *oi;
	struct halo_axis grid[3];      /* the chunks: the output's */
	starpu_data_handle_t *image, *est, *ratio;
	int failed;                    /* set by any failed task */
	pthread_mutex_t lock;
	halo_error_t err;              /* first I/O error */
	int io_failed;
	int64_t *lists[3];
	int ranks;                     /* MPI ranks sharing the run */
	halo_distribution_t dist;      /* their blocks of chunks */
	halo_progress_t progress;      /* chunk-iterations: this rank's backward halves */
	int64_t done;
	int pn[3];                     /* the PSF's shape: a chunk's FFTs add pn - 1 */
};

struct unit_arg {
	struct exact *x;
	int64_t idx[3];
};

static void io_fail(struct exact *x, const halo_error_t *e)
{
	pthread_mutex_lock(&x->lock);
	if (!x->io_failed) {
		x->io_failed = 1;
		x->err = *e;
	}
	pthread_mutex_unlock(&x->lock);
	/* The halves already queued (iterations ahead) poll failed alone. */
	__atomic_store_n(&x->failed, 1, __ATOMIC_RELAXED);
}

static int stopped(struct exact *x)
{
	return __atomic_load_n(&x->io_failed, __ATOMIC_RELAXED) ||
	       __atomic_load_n(&x->failed, __ATOMIC_RELAXED) || halo_interrupted();
}

static void unit_extent(const struct exact *x, const int64_t idx[3], int64_t start[3],
			int64_t dims[3])
{
	for (int d = 0; d < 3; d++) {
		start[d] = x->grid[d].start[idx[d]];
		dims[d] = x->grid[d].start[idx[d] + 1] - start[d];
	}
}

/* The shape of a chunk's FFTs (dims with the PSF's halo, padded as
 * submit_half pads it) in fft; returns its voxels. */
static int64_t fft_shape(const int64_t dims[3], const int pn[3], int64_t fft[3])
{
	int64_t voxels = 1;
	for (int d = 0; d < 3; d++) {
		int64_t need = dims[d] + pn[d] - 1;
		fft[d] = need < INT_MAX / 4 ? halo_fft_good_size((int)need, 1) : need;
		voxels *= fft[d];
	}
	return voxels;
}

/* Reads the input chunks overlapping one chunk and assembles its float32
 * image, which is also the first estimate. */
static void load_cpu(void *buffers[], void *cl_arg)
{
	struct unit_arg *a = cl_arg;
	struct exact *x = a->x;
	if (stopped(x)) {
		halo_trace_skipped();
		return;
	}
	const halo_volume_info_t *ii = x->ii;
	int64_t start[3], dims[3], lo[3], hi[3];
	unit_extent(x, a->idx, start, dims);
	for (int d = 0; d < 3; d++) {
		lo[d] = start[d] / ii->chunks[d];
		hi[d] = (start[d] + dims[d] - 1) / ii->chunks[d];
	}
	int nsrc = (int)((hi[0] - lo[0] + 1) * (hi[1] - lo[1] + 1) * (hi[2] - lo[2] + 1));
	size_t chunk_bytes = (size_t)(ii->chunks[0] * ii->chunks[1] * ii->chunks[2]) *
			     halo_dtype_size(ii->dtype);
	struct halo_gather_args *ga = calloc(1, halo_gather_args_size(nsrc));
	const void **src = calloc((size_t)nsrc, sizeof *src);
	unsigned char *bufs = malloc((size_t)nsrc * chunk_bytes);
	halo_error_t e = {0};
	if (!ga || !src || !bufs) {
		halo_error_set(&e, HALO_ENOMEM, "out of memory reading the image");
		io_fail(x, &e);
		goto out;
	}
	*ga = (struct halo_gather_args){.nsrc = nsrc, .src_kind = ii->dtype.kind, .dst_kind = HALO_F4};
	int k = 0;
	int64_t c[3];
	struct halo_io_lend lend;
	halo__io_begin(chunk_bytes, &lend);
	for (c[0] = lo[0]; c[0] <= hi[0]; c[0]++)
		for (c[1] = lo[1]; c[1] <= hi[1]; c[1]++)
			for (c[2] = lo[2]; c[2] <= hi[2]; c[2]++, k++) {
				src[k] = bufs + (size_t)k * chunk_bytes;
				int rc = halo_reader_read_chunk(x->in, c, bufs + (size_t)k * chunk_bytes,
								&e);
				if (rc) {
					halo__io_end(&lend);
					io_fail(x, &e);
					goto out;
				}
				for (int d = 0; d < 3; d++) {
					ga->src[k].origin[d] = c[d] * ii->chunks[d];
					ga->src[k].dims[d] = ii->chunks[d];
				}
			}
	halo__io_end(&lend);
	for (int d = 0; d < 3; d++) {
		ga->src_shape[d] = ii->shape[d];
		ga->dst_origin[d] = start[d];
		ga->dst_dims[d] = dims[d];
		ga->dst_shape[d] = start[d] + dims[d];
		ga->factor[d] = 1;
	}
	float *image = (float *)STARPU_BLOCK_GET_PTR(buffers[0]);
	if (halo_gather_run(ga, src, image)) {
		halo_error_set(&e, HALO_ENOMEM, "out of memory reading the image");
		io_fail(x, &e);
		goto out;
	}
	/* As in overlap mode (runtime/stream_tasks.c), after the conversion:
	 * a float64 beyond float32's range is an infinity too. */
	size_t n = (size_t)(dims[0] * dims[1] * dims[2]);
	int64_t end[3] = {start[0] + dims[0], start[1] + dims[1], start[2] + dims[2]}, at[3];
	float bad;
	if (halo__first_nonfinite(image, dims, start, start, end, at, &bad)) {
		halo__nonfinite_error(&e, halo_reader_path(x->in), at, ii->ndim, bad);
		io_fail(x, &e);
		goto out;
	}
	int64_t fft[3], voxels = fft_shape(dims, x->pn, fft);
	char where[96], what[4200];
	snprintf(what, sizeof what, "%s: the chunk at %s", halo_reader_path(x->in),
		 halo__where(start, ii->ndim, where, sizeof where));
	if (halo_rl_range_check(halo_dtype_max_abs(image, HALO_F4, n), voxels, what, &e)) {
		io_fail(x, &e);
		goto out;
	}
	memcpy((void *)STARPU_BLOCK_GET_PTR(buffers[1]), image, n * sizeof(float));
out:
	free(ga);
	free(src);
	free(bufs);
}

/* Writes one chunk of the estimate as a whole output chunk. */
static void store_cpu(void *buffers[], void *cl_arg)
{
	struct unit_arg *a = cl_arg;
	struct exact *x = a->x;
	if (stopped(x)) {
		halo_trace_skipped();
		return;
	}
	const halo_volume_info_t *oi = x->oi;
	int64_t start[3], dims[3];
	unit_extent(x, a->idx, start, dims);
	size_t n = (size_t)(oi->chunks[0] * oi->chunks[1] * oi->chunks[2]);
	float *full = halo_scratch(HALO_SCRATCH_CONVERT, n * (sizeof(float) + 8));
	halo_error_t e = {0};
	if (!full) {
		halo_error_set(&e, HALO_ENOMEM, "out of memory writing a chunk");
		io_fail(x, &e);
		return;
	}
	const float *est = (const float *)STARPU_BLOCK_GET_PTR(buffers[0]);
	int64_t end[3] = {start[0] + dims[0], start[1] + dims[1], start[2] + dims[2]};
	if (halo__rl_result_check(est, dims, start, start, end, oi->ndim, halo_writer_path(x->out),
				  &e)) {
		io_fail(x, &e);
		return;
	}
	memset(full, 0, n * sizeof(float));
	for (int64_t z = 0; z < dims[0]; z++)
		for (int64_t y = 0; y < dims[1]; y++)
			memcpy(full + (size_t)((z * oi->chunks[1] + y) * oi->chunks[2]),
			       est + (size_t)((z * dims[1] + y) * dims[2]), (size_t)dims[2] * sizeof(float));
	void *buf = full;
	if (oi->dtype.kind != HALO_F4) {
		buf = full + n;
		halo_dtype_convert(full, HALO_F4, buf, oi->dtype.kind, n);
	}
	struct halo_io_lend lend;
	halo__io_begin(n * halo_dtype_size(oi->dtype), &lend);
	int rc = halo_writer_write_chunk(x->out, a->idx, buf, &e);
	halo__io_end(&lend);
	if (rc)
		io_fail(x, &e);
}

/* Every codelet has a model: a simulated run (halo-sim) needs one. */
static struct starpu_perfmodel load_model = {.type = STARPU_HISTORY_BASED, .symbol = "halo_load"};
static struct starpu_perfmodel store_model = {.type = STARPU_HISTORY_BASED, .symbol = "halo_store"};

static struct starpu_codelet load_cl = {
	.cpu_funcs = {load_cpu},
	.model = &load_model,
	.nbuffers = 2,
	.modes = {STARPU_W, STARPU_W},
	.name = "load",
};

static struct starpu_codelet store_cl = {
	.cpu_funcs = {store_cpu},
	.nbuffers = STARPU_VARIABLE_NBUFFERS,
	.model = &store_model,
	.name = "store",
};

static int64_t flat(const struct exact *x, const int64_t i[3])
{
	return (i[0] * x->grid[1].nblocks + i[1]) * x->grid[2].nblocks + i[2];
}

/* The MPI rank that owns chunk u (0 in one process). */
static int owner(const struct exact *x, const int64_t u[3])
{
	if (x->ranks <= 1)
		return 0;
	int64_t start[3], dims[3];
	unit_extent(x, u, start, dims);
	return halo_distribution_owner(&x->dist, start, dims);
}

/* A source chunk for a distributed halo exchange (gather_cells.c). */
struct cell_ctx {
	struct exact *x;
	starpu_data_handle_t *from;
};

static starpu_data_handle_t cell_source(void *ctx, const int64_t c[3], int64_t origin[3],
					int64_t dims[3], int *who)
{
	struct cell_ctx *cc = ctx;
	unit_extent(cc->x, c, origin, dims);
	*who = owner(cc->x, c);
	return cc->from[flat(cc->x, c)];
}

/* Submits the halo exchange of `from` around chunk u ([start - before,
 * end + after) per axis) and returns the haloed block's handle. */
static starpu_data_handle_t exchange(struct exact *x, starpu_data_handle_t *from,
				     const int64_t u[3], const int before[3], const int after[3],
				     int boundary, double constant, int64_t hdims[3], halo_error_t *err)
{
	int64_t start[3], dims[3], cnt[3];
	unit_extent(x, u, start, dims);
	struct halo_gather_args proto = {.src_kind = HALO_F4, .dst_kind = HALO_F4,
					 .boundary = boundary, .constant = constant,
					 .factor = {1, 1, 1}, .failed = &x->failed};
	for (int d = 0; d < 3; d++) {
		hdims[d] = dims[d] + before[d] + after[d];
		proto.src_shape[d] = x->oi->shape[d];
		proto.dst_origin[d] = start[d] - before[d];
		proto.dst_dims[d] = hdims[d];
		proto.dst_shape[d] = proto.dst_origin[d] + hdims[d];
	}
	starpu_data_handle_t h = halo__block_register(hdims, sizeof(float), owner(x, u));
	int rc;
	if (halo__mpi_active()) {
		/* Several ranks: only the halo slabs cross them. */
		struct cell_ctx cc = {x, from};
		rc = halo__gather_cells_submit(&proto, x->grid, cell_source, &cc, owner(x, u), h,
					       "exact exchange", u, err);
	} else {
		for (int d = 0; d < 3; d++)
			cnt[d] = halo_axis_blocks_touched(&x->grid[d], proto.dst_origin[d],
							  proto.dst_shape[d], boundary, x->lists[d]);
		int nsrc = (int)(cnt[0] * cnt[1] * cnt[2]);
		struct halo_gather_args *ga = calloc(1, halo_gather_args_size(nsrc));
		starpu_data_handle_t *src = malloc((size_t)(nsrc + 1) * sizeof *src);
		if (!ga || !src) {
			free(ga);
			free(src);
			starpu_data_unregister_submit(h);
			halo_error_set(err, HALO_ENOMEM, "out of memory submitting tasks");
			return NULL;
		}
		*ga = proto;
		ga->nsrc = nsrc;
		int k = 0;
		int64_t c[3];
		for (int64_t iz = 0; iz < cnt[0]; iz++)
			for (int64_t iy = 0; iy < cnt[1]; iy++)
				for (int64_t ix = 0; ix < cnt[2]; ix++, k++) {
					c[0] = x->lists[0][iz];
					c[1] = x->lists[1][iy];
					c[2] = x->lists[2][ix];
					unit_extent(x, c, ga->src[k].origin, ga->src[k].dims);
					src[k] = from[flat(x, c)];
				}
		rc = halo__gather_submit(ga, src, h, err);
		free(src);
	}
	if (rc) {
		starpu_data_unregister_submit(h);
		return NULL;
	}
	return h;
}

/* A chunk's iteration is done: the progress line moves (drawn by one
 * worker at a time; the others go on, but the last, whose count must be
 * drawn: it was lost when another worker held the line). */
static void half_done(void *arg)
{
	struct exact *x = arg;
	int64_t done = __atomic_add_fetch(&x->done, 1, __ATOMIC_RELAXED);
	if ((done == x->progress.total ? pthread_mutex_lock(&x->lock)
				       : pthread_mutex_trylock(&x->lock)) == 0) {
		halo_progress_update(&x->progress, done, 0);
		pthread_mutex_unlock(&x->lock);
	}
}

static int submit_half(struct exact *x, struct halo_otf_cache *otfs, int forward,
		       const int64_t u[3], const int before[3], const int after_min[3],
		       const halo_deconv_opts_t *o, halo_error_t *err)
{
	/* The transform is padded to a 2,3,5,7-smooth size (FFTW and cuFFT
	 * are several times slower on sizes such as 96 + 10 = 106 = 2 * 53)
	 * with more real halo after the chunk, which leaves the result exact. */
	int64_t hd[3], start[3], dims[3];
	int after[3];
	halo_trace_label(forward ? "exact forward" : "exact backward", u);
	unit_extent(x, u, start, dims);
	for (int d = 0; d < 3; d++) {
		int64_t need = dims[d] + before[d] + after_min[d];
		after[d] = after_min[d] + (halo_fft_good_size((int)need, 1) - (int)need);
	}
	starpu_data_handle_t h = exchange(x, forward ? x->est : x->ratio, u, before, after,
					  o->boundary,
					  forward ? o->constant : 1.0 /* the ratio beyond is 1 */, hd, err);
	if (!h)
		return err->code;
	int n[3] = {(int)hd[0], (int)hd[1], (int)hd[2]};
	starpu_data_handle_t otf;
	int rc = halo__otf_get(otfs, n, owner(x, u), &otf, err);
	struct halo_rl_half_args *args = rc ? NULL : malloc(sizeof *args);
	if (!rc && !args)
		rc = halo_error_set(err, HALO_ENOMEM, "out of memory");
	if (!rc) {
		*args = (struct halo_rl_half_args){.off = {before[0], before[1], before[2]},
						   .failed = &x->failed};
		int64_t f = flat(x, u);
		rc = forward ? HALO_TASK_INSERT(&halo_rl_forward_cl, STARPU_R, h, STARPU_R, x->image[f],
						  STARPU_R, otf, STARPU_W, x->ratio[f], STARPU_CL_ARGS,
						  args, sizeof *args, 0)
			     : HALO_TASK_INSERT(&halo_rl_backward_cl, STARPU_R, h, STARPU_R, otf,
						  STARPU_RW, x->est[f], STARPU_CL_ARGS, args,
						  sizeof *args, STARPU_CALLBACK_WITH_ARG_NFREE, half_done, x,
						  0);
		if (rc)
			rc = halo_error_set(err, HALO_ERUNTIME, "no StarPU worker can run Richardson-Lucy");
	}
	starpu_data_unregister_submit(h);
	return rc;
}

/* What exact mode cannot run, before anything is set up. */
static int check_run(const halo_volume_info_t *oi, const int pn[3], const halo_deconv_opts_t *o,
		     halo_error_t *err)
{
	if (o->boundary == HALO_BOUNDARY_NONE)
		return halo_error_set(err, HALO_EINVAL, "--boundary none has no exact whole-volume "
				      "meaning; use overlap mode or another boundary");
	int64_t big[3], fft[3];
	for (int d = 0; d < 3; d++)
		big[d] = oi->chunks[d] < oi->shape[d] ? oi->chunks[d] : oi->shape[d];
	int64_t unit = fft_shape(big, pn, fft);
	/* StarPU 1.3 sizes a block in 32 bits, and a vector (the spectrum):
	 * see check_blocks in tasks/lower.c. */
	if ((double)unit >= 4294967296.0 ||
	    2.0 * (double)fft[0] * (double)fft[1] * (double)(fft[2] / 2 + 1) >= 4294967296.0) {
		char dims[96];
		return halo_error_set(err, HALO_EINVAL, "chunks of %s voxels with their halo, 2^32 or "
				      "more, which StarPU's chunk buffers cannot hold; give smaller "
				      "--chunks", halo__dims(fft, 3, dims, sizeof dims));
	}
	/* The constant pads the estimate in the forward halves' FFTs. */
	if (o->boundary == HALO_BOUNDARY_CONSTANT &&
	    halo_rl_range_check(fabs(o->constant), unit, "the boundary constant", err))
		return err->code;
	return HALO_OK;
}

/* Each chunk's load (image and first estimate), registering its handles;
 * counts this rank's chunk-iterations for the progress line. */
static int submit_loads(struct exact *x, int iterations, halo_error_t *err)
{
	int rc = HALO_OK;
	int64_t u[3];
	for (u[0] = 0; u[0] < x->grid[0].nblocks; u[0]++)
		for (u[1] = 0; u[1] < x->grid[1].nblocks; u[1]++)
			for (u[2] = 0; u[2] < x->grid[2].nblocks; u[2]++) {
				int64_t s[3], dims[3], f = flat(x, u);
				unit_extent(x, u, s, dims);
				int who = owner(x, u);
				x->progress.total += (who == halo__mpi_rank()) * iterations;
				x->image[f] = halo__block_register(dims, sizeof(float), who);
				x->est[f] = halo__block_register(dims, sizeof(float), who);
				x->ratio[f] = halo__block_register(dims, sizeof(float), who);
				struct unit_arg *a = malloc(sizeof *a);
				if (!a) {
					rc = rc ? rc : halo_error_set(err, HALO_ENOMEM, "out of memory");
					continue;
				}
				*a = (struct unit_arg){x, {u[0], u[1], u[2]}};
				halo_trace_label("exact load", u);
				if (HALO_TASK_INSERT(&load_cl, STARPU_W, x->image[f], STARPU_W, x->est[f],
						     STARPU_CL_ARGS, a, sizeof *a, 0) && !rc)
					rc = halo_error_set(err, HALO_ERUNTIME,
							    "no StarPU worker can read chunks");
			}
	return rc;
}

/* Each chunk's store, in order behind token where there is one. */
static int submit_stores(struct exact *x, starpu_data_handle_t token, halo_error_t *err)
{
	int64_t u[3];
	for (u[0] = 0; u[0] < x->grid[0].nblocks; u[0]++)
		for (u[1] = 0; u[1] < x->grid[1].nblocks; u[1]++)
			for (u[2] = 0; u[2] < x->grid[2].nblocks; u[2]++) {
				struct unit_arg *a = malloc(sizeof *a);
				if (!a)
					return halo_error_set(err, HALO_ENOMEM, "out of memory");
				*a = (struct unit_arg){x, {u[0], u[1], u[2]}};
				struct starpu_task *t = starpu_task_create();
				t->cl = &store_cl;
				t->nbuffers = token ? 2 : 1;
				t->handles[0] = x->est[flat(x, u)];
				t->modes[0] = STARPU_R;
				t->handles[1] = token;
				t->modes[1] = STARPU_RW;
				t->cl_arg = a;
				t->cl_arg_size = sizeof *a;
				t->cl_arg_free = 1;
				halo_trace_label("exact store", u);
				if (halo_task_submit(t) < 0)
					return halo_error_set(err, HALO_ERUNTIME,
							      "no StarPU worker can write chunks");
			}
	return HALO_OK;
}

/* The run's error once its tasks are done: the first I/O error, a failed
 * task, or SIGINT/SIGTERM. */
static int outcome(const struct exact *x, int otf_failed, halo_error_t *err)
{
	if (x->io_failed) {
		*err = x->err;
		return x->err.code ? x->err.code : HALO_EIO;
	}
	if (x->failed || otf_failed)
		return halo__task_failed_error(err);
	if (halo_interrupted())
		return halo_error_set(err, HALO_EINTR, "interrupted; no output was written");
	return HALO_OK;
}

int halo_deconvolve_exact(halo_reader_t *in, halo_writer_t *out, const halo_volume_info_t *oi,
			  const float *psf, const int pn[3], const halo_deconv_opts_t *o,
			  halo_stream_stats_t *stats, halo_error_t *err)
{
	int rc = check_run(oi, pn, o, err);
	if (rc)
		return rc;
	struct exact x = {.in = in, .out = out, .ii = halo_reader_info(in), .oi = oi, .ranks = 1};
	pthread_mutex_init(&x.lock, NULL);
	struct halo_otf_cache otfs;
	int fb[3], fa[3];
	memcpy(x.pn, pn, sizeof x.pn);
	for (int d = 0; d < 3; d++) {
		fa[d] = pn[d] / 2;               /* forward: c after */
		fb[d] = pn[d] - 1 - fa[d];       /* forward: n-1-c before */
	}
	int64_t n = 1;
	for (int d = 0; d < 3; d++) {
		if (halo_axis_regular(&x.grid[d], x.oi->shape[d], x.oi->chunks[d]))
			rc = halo_error_set(err, HALO_ENOMEM, "out of memory");
		n *= x.grid[d].nblocks;
		x.lists[d] = calloc((size_t)x.grid[d].nblocks + 1, sizeof *x.lists[d]);
		if (!x.lists[d])
			rc = halo_error_set(err, HALO_ENOMEM, "out of memory");
	}
	/* Several MPI ranks: each owns a block of the chunks, and every rank
	 * registers and submits the same things in the same order. */
	if (halo__mpi_ranks() > 1) {
		x.ranks = halo__mpi_ranks();
		halo_distribution_make(x.grid, x.ranks, &x.dist);
		halo__mpi_distribute(1);
	}
	x.image = calloc((size_t)n, sizeof *x.image);
	x.est = calloc((size_t)n, sizeof *x.est);
	x.ratio = calloc((size_t)n, sizeof *x.ratio);
	if (!rc && (!x.image || !x.est || !x.ratio))
		rc = halo_error_set(err, HALO_ENOMEM, "out of memory");
	int otfs_made = !rc && !(rc = halo__otf_cache_init(&otfs, psf, pn, err));
	/* A rank that failed here leaves the others no partner for the
	 * collectives below: all stop together. */
	if (x.ranks > 1)
		rc = halo__mpi_agree(rc, err);
	if (rc) {
		if (otfs_made)
			halo__otf_cache_release(&otfs);
		goto out;
	}
	halo_fftw_wisdom_load();
	double t0 = halo_now();
	halo_progress_init(&x.progress, "deconvolve (exact)", 0, o->stream.quiet);
	x.progress.unit = "chunk-iterations";

	rc = submit_loads(&x, o->iterations, err);
	int64_t u[3];
	/* Under MPI the other ranks wait for this one's halos: the ranks stop
	 * together, between iterations, when any failed (or was interrupted). */
	for (int it = 0; it < o->iterations; it++) {
		int stop = rc || stopped(&x);
		if (x.ranks > 1)
			stop = halo__mpi_any(stop);
		if (stop)
			break;
		for (int half = 1; half >= 0 && !rc; half--)
			for (u[0] = 0; !rc && u[0] < x.grid[0].nblocks; u[0]++)
				for (u[1] = 0; !rc && u[1] < x.grid[1].nblocks; u[1]++)
					for (u[2] = 0; !rc && u[2] < x.grid[2].nblocks; u[2]++)
						rc = half ? submit_half(&x, &otfs, 1, u, fb, fa, o, err)
							  : submit_half(&x, &otfs, 0, u, fa, fb, o, err);
		/* Keep at most about two iterations of tasks queued, so memory
		 * for haloed blocks stays bounded. */
		if (it >= 2)
			starpu_task_wait_for_n_submitted((unsigned)(4 * 2 * n));
	}
	if (x.ranks > 1)
		rc = halo__mpi_agree(rc, err); /* the ranks go on to the stores together */
	starpu_data_handle_t token = NULL;
	if (!rc && (!out || halo_writer_ordered(out))) {
		/* TIFF pages in order (rank 0 writes them all under MPI) */
		starpu_void_data_register(&token);
		halo__mpi_register(token, 0);
	}
	if (!rc)
		rc = submit_stores(&x, token, err);
	starpu_task_wait_for_all();
	halo_progress_finish(&x.progress);
	if (token)
		starpu_data_unregister(token);
	int otf_failed = halo__otf_cache_release(&otfs);
	if (!rc)
		rc = outcome(&x, otf_failed, err);
	if (stats)
		*stats = (halo_stream_stats_t){.chunks_written = rc ? 0 : n, .seconds = halo_now() - t0};
	halo_fft_save_wisdom();
out:
	for (int64_t i = 0; i < n; i++) {
		if (x.image && x.image[i])
			starpu_data_unregister(x.image[i]);
		if (x.est && x.est[i])
			starpu_data_unregister(x.est[i]);
		if (x.ratio && x.ratio[i])
			starpu_data_unregister(x.ratio[i]);
	}
	halo__mpi_distribute(0);
	free(x.image);
	free(x.est);
	free(x.ratio);
	for (int d = 0; d < 3; d++) {
		free(x.lists[d]);
		halo_axis_free(&x.grid[d]);
	}
	pthread_mutex_destroy(&x.lock);
	return rc;
}
