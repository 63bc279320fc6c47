/* The I/O tasks of chunk streams and the job state they share with the
 * submitter (see stream_job.h). Codelets cannot return errors, so the first
 * failing task records its message in the job and every later task of the
 * job turns into a no-op; the submitter stops as soon as it sees it. */
#include "config.h"
#include "runtime/stream_job.h"
#include "io/scratch.h"
#include "io/zarr.h"
#include "runtime/deconvolve.h"
#include "runtime/mpi.h"
#include "runtime/runtime.h"
#include "runtime/trace.h"
#include "util/signals.h"

#include <pthread.h>
#include <sched.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void halo__stream_fail(struct halo_stream_job *job, const halo_error_t *e)
{
	starpu_pthread_mutex_lock(&job->lock);
	if (!job->failed) {
		job->failed = 1;
		job->err = *e;
	}
	starpu_pthread_cond_broadcast(&job->cond);
	starpu_pthread_mutex_unlock(&job->lock);
}

int halo__task_failed_error(halo_error_t *err)
{
	return halo_error_set(err, HALO_ENOMEM, "a task failed: out of memory%s",
			      starpu_cuda_worker_get_count() ? " or a GPU error" : "");
}

int halo__stream_result(const struct halo_stream_job *job, halo_error_t *err)
{
	if (job->failed) {
		*err = job->err;
		return job->err.code ? job->err.code : HALO_EIO;
	}
	if (job->kernel_failed)
		return halo__task_failed_error(err);
	if (halo_interrupted())
		return halo_error_set(err, HALO_EINTR, "interrupted; no output was written");
	return HALO_OK;
}

int halo__stream_stopped(struct halo_stream_job *job)
{
	return __atomic_load_n(&job->failed, __ATOMIC_RELAXED) ||
	       __atomic_load_n(&job->kernel_failed, __ATOMIC_RELAXED) || halo_interrupted();
}

/* I/O tasks executing now. */
static int io_running;

/* A chunk's compression or decompression takes blosc threads (the other
 * codecs and TIFF use one thread, and lent cores idle) only where
 * cores would idle: when the GPUs lead (the CPU workers only read and
 * write, the others are parked) or run alone (the cores beside the I/O
 * workers are no workers at all), or when nothing but I/O is ready (a
 * run's last writes). The cores are shared among the I/O tasks running,
 * and a thread gets at least 8 MiB: on an H100 the last 2 GB chunk of the
 * seed pipeline took 1.9 s to compress and write in one thread, while 15
 * cores waited. */
void halo__io_begin(size_t bytes, struct halo_io_lend *l)
{
	int running = __atomic_add_fetch(&io_running, 1, __ATOMIC_RELAXED);
	l->widened = 0;
	/* Most chunks are too small for a second thread: no system call, no
	 * StarPU lock for them (a pipeline may have 100,000). */
	size_t most = bytes / (8u << 20);
	if (most < 2)
		return;
	int gpus = halo_runtime_gpus_lead() || halo_runtime_gpus_alone();
	if (!gpus && starpu_task_nready() > running)
		return;
	/* Blosc's threads inherit this worker's binding to one core: they
	 * get the process's cores but the GPU workers'. */
	cpu_set_t set;
	if (sched_getaffinity(getpid(), sizeof set, &set) != 0)
		return;
	int ids[STARPU_NMAXWORKERS];
	int n = (int)starpu_worker_get_ids_by_type(STARPU_CUDA_WORKER, ids, STARPU_NMAXWORKERS);
	for (int i = 0; i < n; i++) {
		int pu = halo_worker_pu(ids[i]);
		if (pu >= 0 && pu < CPU_SETSIZE)
			CPU_CLR(pu, &set);
	}
	int cores = gpus ? CPU_COUNT(&set) : (int)starpu_cpu_worker_get_count();
	int threads = cores / running;
	threads = (size_t)threads > most ? (int)most : threads;
	if (threads < 2 || pthread_getaffinity_np(pthread_self(), sizeof l->saved, &l->saved) ||
	    pthread_setaffinity_np(pthread_self(), sizeof set, &set))
		return;
	l->widened = 1;
	halo_codec_threads(threads);
}

void halo__io_end(struct halo_io_lend *l)
{
	if (l->widened) {
		halo_codec_threads(1);
		pthread_setaffinity_np(pthread_self(), sizeof l->saved, &l->saved);
	}
	__atomic_sub_fetch(&io_running, 1, __ATOMIC_RELAXED);
}

static size_t block_bytes(void *buf)
{
	return (size_t)STARPU_BLOCK_GET_NX(buf) * STARPU_BLOCK_GET_NY(buf) *
	       STARPU_BLOCK_GET_NZ(buf) * STARPU_BLOCK_GET_ELEMSIZE(buf);
}

const char *halo__where(const int64_t at[3], int ndim, char *buf, size_t len)
{
	if (ndim == 2)
		snprintf(buf, len, "%lld,%lld (y,x)", (long long)at[1], (long long)at[2]);
	else
		snprintf(buf, len, "%lld,%lld,%lld (z,y,x)", (long long)at[0], (long long)at[1],
			 (long long)at[2]);
	return buf;
}

int halo__nonfinite_error(halo_error_t *err, const char *path, const int64_t at[3], int ndim,
			  double v)
{
	char where[96];
	return halo_error_set(err, HALO_EINVAL, "%s: the voxel at %s holds %s, which RL cannot "
			      "deconvolve", path, halo__where(at, ndim, where, sizeof where),
			      isnan(v) ? "NaN" : "an infinity (in float32)");
}

/* Negative values, or one voxel some 10^7 times its neighbours (whose
 * blurred values float32's rounding in the FFTs then outweighs), push
 * blurred values below the ratio's floor, which makes them 1e12-fold, and
 * RL runs away to infinity and NaN; an integer output would have made
 * those 0 without a word. */
int halo__first_nonfinite(const float *block, const int64_t dims[3], const int64_t origin[3],
			  const int64_t lo[3], const int64_t hi[3], int64_t at[3], float *v)
{
	for (int64_t z = lo[0]; z < hi[0]; z++)
		for (int64_t y = lo[1]; y < hi[1]; y++) {
			const float *row = block + ((z - origin[0]) * dims[1] + (y - origin[1])) * dims[2] +
					   (lo[2] - origin[2]);
			if (halo_dtype_all_finite(row, HALO_F4, (size_t)(hi[2] - lo[2])))
				continue;
			size_t x = 0;
			while (isfinite(row[x]))
				x++;
			at[0] = z, at[1] = y, at[2] = lo[2] + (int64_t)x;
			*v = row[x];
			return 1;
		}
	return 0;
}

int halo__rl_result_check(const float *block, const int64_t dims[3], const int64_t origin[3],
			  const int64_t lo[3], const int64_t hi[3], int ndim, const char *path,
			  halo_error_t *err)
{
	int64_t at[3];
	float v;
	if (!halo__first_nonfinite(block, dims, origin, lo, hi, at, &v))
		return 0;
	char where[96];
	return halo_error_set(err, HALO_EINVAL, "%s: RL's result at the voxel %s is %s: RL diverged "
			      "in float32, as it does on negative values or where some voxels are "
			      "millions of times brighter than their neighbours", path,
			      halo__where(at, ndim, where, sizeof where), isnan(v) ? "NaN" : "infinite");
}

/* What RL would read of a chunk buffer of dims cd from origin: the part
 * inside the array (an edge chunk's rest holds the fill value, NaN in
 * many float arrays, which no voxel of the array is). Sets *bad to the
 * buffer index of the first NaN or infinity (-1: none) and *max to the
 * largest magnitude. */
static void scan_inside(const void *buf, halo_dtype_kind_t kind, const int64_t cd[3],
			const int64_t origin[3], const int64_t shape[3], int64_t *bad, double *max)
{
	size_t es = halo_dtype_kind_size(kind);
	int64_t in[3];
	for (int d = 0; d < 3; d++)
		in[d] = shape[d] - origin[d] < cd[d] ? shape[d] - origin[d] : cd[d];
	*bad = -1;
	*max = 0;
	for (int64_t z = 0; z < in[0]; z++)
		for (int64_t y = 0; y < in[1]; y++) {
			int64_t row = (z * cd[1] + y) * cd[2];
			const unsigned char *p = (const unsigned char *)buf + (size_t)row * es;
			if (*bad < 0 && !halo_dtype_all_finite(p, kind, (size_t)in[2]))
				for (int64_t x = 0; *bad < 0; x++)
					if (!halo_dtype_all_finite(p + (size_t)x * es, kind, 1))
						*bad = row + x;
			double m = halo_dtype_max_abs(p, kind, (size_t)in[2]);
			*max = m > *max ? m : *max;
		}
}

static void read_cpu(void *buffers[], void *cl_arg)
{
	struct halo_stream_io_arg *a = cl_arg;
	struct halo_stream_job *job = a->job;
	if (halo__stream_stopped(job)) {
		halo_trace_skipped();
		return;
	}
	halo_error_t e = {0};
	void *buf = (void *)STARPU_BLOCK_GET_PTR(buffers[0]);
	size_t n = block_bytes(buffers[0]);
	struct halo_io_lend lend;
	halo__io_begin(n, &lend);
	int rc = halo_reader_read_chunk(a->in, a->idx, buf, &e);
	halo__io_end(&lend);
	/* NaN and infinities spread through RL's convolutions to every voxel
	 * in reach, and its floor on the ratio's denominator turned a NaN into
	 * 1e12-fold garbage instead. */
	const halo_volume_info_t *info = halo_reader_info(a->in);
	halo_dtype_t dt = info->dtype;
	/* Integers are finite, and cannot reach float32's range times any
	 * chunk's voxels. */
	if (!rc && (a->finite || a->fft_voxels) && halo_dtype_is_float(dt)) {
		int64_t cd[3] = {STARPU_BLOCK_GET_NZ(buffers[0]), STARPU_BLOCK_GET_NY(buffers[0]),
				 STARPU_BLOCK_GET_NX(buffers[0])}, origin[3], bad;
		for (int d = 0; d < 3; d++)
			origin[d] = a->idx[d] * info->chunks[d];
		double max;
		scan_inside(buf, dt.kind, cd, origin, info->shape, &bad, &max);
		char where[96], what[4200];
		if (a->finite && bad >= 0) {
			int64_t at[3] = {origin[0] + bad / (cd[1] * cd[2]),
					 origin[1] + bad / cd[2] % cd[1], origin[2] + bad % cd[2]};
			double v;
			halo_dtype_convert((const unsigned char *)buf + (size_t)bad * halo_dtype_size(dt),
					   dt.kind, &v, HALO_F8, 1);
			rc = halo__nonfinite_error(&e, halo_reader_path(a->in), at, info->ndim, v);
		} else if (a->fft_voxels) {
			snprintf(what, sizeof what, "%s: the chunk at %s", halo_reader_path(a->in),
				 halo__where(origin, info->ndim, where, sizeof where));
			rc = halo_rl_range_check(max, a->fft_voxels, what, &e);
		}
	}
	if (rc) {
		if (a->step)
			halo_error_prefix(&e, "step \"%s\"", a->step);
		halo__stream_fail(job, &e);
		return;
	}
	starpu_pthread_mutex_lock(&job->lock);
	job->read++;
	job->bytes_read += n;
	starpu_pthread_mutex_unlock(&job->lock);
}

/* A write's error, naming a graph's step. */
static void write_fail(const struct halo_stream_io_arg *a, halo_error_t *e)
{
	if (a->step)
		halo_error_prefix(e, "step \"%s\"", a->step);
	halo__stream_fail(a->job, e);
}

static void write_cpu(void *buffers[], void *cl_arg)
{
	struct halo_stream_io_arg *a = cl_arg;
	struct halo_stream_job *job = a->job;
	if (halo__stream_stopped(job)) {
		halo_trace_skipped();
		return;
	}
	halo_error_t e = {0};
	const halo_volume_info_t *oi = halo_writer_info(a->out);
	halo_dtype_kind_t want = oi->dtype.kind;
	const void *buf;
	size_t bytes;
	int64_t origin[3];
	for (int d = 0; d < 3; d++)
		origin[d] = a->idx[d] * oi->chunks[d];
	if (a->gather) {
		const struct halo_gather_args *g = a->gather;
		bytes = (size_t)(g->dst_dims[0] * g->dst_dims[1] * g->dst_dims[2]) *
			halo_dtype_size(oi->dtype);
		/* RL's blocks are checked before the gather converts them,
		 * each where this chunk takes it (a block may feed hundreds). */
		for (int i = 0; a->rl_result && i < g->nsrc; i++) {
			int64_t lo[3], hi[3];
			for (int d = 0; d < 3; d++) {
				const struct halo_gather_src *s = &g->src[i];
				int64_t a0 = g->dst_origin[d] * g->factor[d];
				int64_t a1 = (g->dst_origin[d] + g->dst_dims[d]) * g->factor[d];
				lo[d] = s->origin[d] > a0 ? s->origin[d] : a0;
				hi[d] = s->origin[d] + s->dims[d] < a1 ? s->origin[d] + s->dims[d] : a1;
				hi[d] = hi[d] > lo[d] ? hi[d] : lo[d];
			}
			if (halo__rl_result_check((const float *)STARPU_BLOCK_GET_PTR(buffers[i]),
						  g->src[i].dims, g->src[i].origin, lo, hi,
						  oi->ndim, halo_writer_path(a->out), &e)) {
				write_fail(a, &e);
				return;
			}
		}
		/* On the heap, as in gather_cpu. */
		const void **src = malloc((size_t)(g->nsrc > 0 ? g->nsrc : 1) * sizeof *src);
		for (int i = 0; src && i < g->nsrc; i++)
			src[i] = (const void *)STARPU_BLOCK_GET_PTR(buffers[i]);
		void *block = src ? halo_scratch(HALO_SCRATCH_CONVERT, bytes) : NULL;
		int bad = !block || halo_gather_run(g, src, block);
		free(src);
		if (bad) {
			halo_error_set(&e, HALO_ENOMEM, "out of memory assembling a chunk");
			halo__stream_fail(job, &e);
			return;
		}
		buf = block;
	} else {
		buf = (const void *)STARPU_BLOCK_GET_PTR(buffers[0]);
		bytes = block_bytes(buffers[0]);
		int64_t dims[3] = {STARPU_BLOCK_GET_NZ(buffers[0]), STARPU_BLOCK_GET_NY(buffers[0]),
				   STARPU_BLOCK_GET_NX(buffers[0])}, end[3];
		for (int d = 0; d < 3; d++)
			end[d] = origin[d] + dims[d];
		if (a->rl_result && halo__rl_result_check(buf, dims, origin, origin, end, oi->ndim,
							  halo_writer_path(a->out), &e)) {
			write_fail(a, &e);
			return;
		}
		if (a->from != want) {
			size_t n = bytes / halo_dtype_size((halo_dtype_t){a->from, 0});
			void *conv = halo_scratch(HALO_SCRATCH_CONVERT, n * halo_dtype_size(oi->dtype));
			if (!conv) {
				halo_error_set(&e, HALO_ENOMEM, "out of memory converting a chunk");
				halo__stream_fail(job, &e);
				return;
			}
			halo_dtype_convert(buf, a->from, conv, want, n);
			buf = conv;
		}
	}
	struct halo_io_lend lend;
	halo__io_begin(bytes, &lend);
	int rc = halo_writer_write_chunk(a->out, a->idx, buf, &e);
	halo__io_end(&lend);
	if (rc)
		write_fail(a, &e);
}

void halo__stream_write_ready(void *arg)
{
	struct halo_stream_job *job = ((struct halo_stream_io_arg *)arg)->job;
	starpu_pthread_mutex_lock(&job->lock);
	job->computed++;
	starpu_pthread_mutex_unlock(&job->lock);
}

/* Runs on the worker after write_cpu: one output chunk less in flight,
 * and one more written unless the run stopped (the progress line counted
 * a failed run's skipped writes as done). */
void halo__stream_write_done(void *arg)
{
	struct halo_stream_io_arg *a = arg;
	struct halo_stream_job *job = a->job;
	const halo_volume_info_t *oi = halo_writer_info(a->out);
	halo_dtype_t dt = oi->dtype;
	int wrote = !halo__stream_stopped(job);
	starpu_pthread_mutex_lock(&job->lock);
	job->inflight--;
	job->written += wrote;
	job->bytes_written += (uint64_t)wrote * (uint64_t)(oi->chunks[0] * oi->chunks[1] *
							      oi->chunks[2]) * halo_dtype_size(dt);
	starpu_pthread_cond_broadcast(&job->cond);
	starpu_pthread_mutex_unlock(&job->lock);
}

static struct starpu_perfmodel read_model = {.type = STARPU_HISTORY_BASED, .symbol = "halo_read"};
/* A write that gathers reads as many chunks as its output overlaps, and
 * StarPU's default footprint would hash every one's shape: an entry for
 * nearly every chunk at a volume's edges, as gather's model had. Keyed
 * instead as a gather is (its output's shape and types, how short its
 * rows are), apart from plain writes. */
static uint32_t write_footprint(struct starpu_task *task)
{
	const struct halo_stream_io_arg *a = task->cl_arg;
	return a->gather ? ~halo_gather_footprint(a->gather) : starpu_task_data_footprint(task);
}

static struct starpu_perfmodel write_model = {.type = STARPU_HISTORY_BASED, .symbol = "halo_write",
					      .footprint = write_footprint};

struct starpu_codelet halo__stream_read_cl = {
	.cpu_funcs = {read_cpu},
	.nbuffers = 1,
	.modes = {STARPU_W},
	.model = &read_model,
	.name = "read",
};

/* The second buffer, when present, is an ordering token (TIFF pages must
 * be appended in order): STARPU_RW on one handle serialises the writes in
 * submission order. */
struct starpu_codelet halo__stream_write_cl = {
	.cpu_funcs = {write_cpu},
	.nbuffers = STARPU_VARIABLE_NBUFFERS,
	.model = &write_model,
	.name = "write",
};

int halo__stream_submit(struct starpu_task *t, struct halo_stream_job *job)
{
	const char *name = t->cl->name;
	int rc = halo_task_submit(t);
	if (rc >= 0)
		return rc;
	halo_error_t e;
	halo_error_set(&e, HALO_ERUNTIME, "no StarPU worker can run the %s task (%s)", name,
		       strerror(-rc));
	halo__stream_fail(job, &e);
	return -1;
}

void halo__stream_fail_nomem(struct halo_stream_job *job)
{
	halo_error_t e;
	halo_error_set(&e, HALO_ENOMEM, "out of memory submitting tasks");
	halo__stream_fail(job, &e);
}

/* Waits until fewer than `limit` output chunks are in flight (or the job
 * stopped), redrawing the progress line meanwhile. */
void halo__stream_wait(struct halo_stream_job *job, int limit, halo_progress_t *p)
{
	starpu_pthread_mutex_lock(&job->lock);
	while (job->inflight >= limit && !job->failed && !halo_interrupted()) {
#ifdef HALO_SIMULATE
		/* Simulated time: nothing to redraw meanwhile (and SimGrid
		 * 3.32's timed wait can lose the mutex). */
		starpu_pthread_cond_wait(&job->cond, &job->lock);
#else
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		starpu_pthread_cond_timedwait(&job->cond, &job->lock, &ts);
#endif
		int64_t done = (job->computed > job->written ? job->computed : job->written) +
			       job->partials;
		uint64_t bytes = job->bytes_read + job->bytes_written;
		starpu_pthread_mutex_unlock(&job->lock);
		halo_progress_update(p, done, bytes);
		starpu_pthread_mutex_lock(&job->lock);
	}
	starpu_pthread_mutex_unlock(&job->lock);
}

uint64_t halo_memory_default(void)
{
	uint64_t ram = halo_machine_memory();
	return ram ? ram / 4 : (UINT64_C(1) << 30);
}


starpu_data_handle_t halo__block_register(const int64_t dims[3], size_t elsize, int owner)
{
	starpu_data_handle_t h;
	uint32_t nx = (uint32_t)dims[2], ny = (uint32_t)dims[1];
	starpu_block_data_register(&h, -1, 0, nx, nx * ny, nx, ny, (uint32_t)dims[0], elsize);
	halo__mpi_register(h, owner);
	return h;
}

int halo__gather_submit(struct halo_gather_args *ga, const starpu_data_handle_t *src,
			starpu_data_handle_t dst, halo_error_t *err)
{
	int n = ga->nsrc;
	starpu_data_handle_t *dh = malloc((size_t)(n + 1) * sizeof *dh);
	enum starpu_data_access_mode *dm = malloc((size_t)(n + 1) * sizeof *dm);
	struct starpu_task *t = dh && dm ? starpu_task_create() : NULL;
	if (!t) {
		free(dh);
		free(dm);
		free(ga);
		return halo_error_set(err, HALO_ENOMEM, "out of memory submitting tasks");
	}
	for (int k = 0; k < n; k++) {
		dh[k] = src[k];
		dm[k] = STARPU_R;
	}
	dh[n] = dst;
	dm[n] = STARPU_W;
	t->cl = &halo_gather_cl;
	t->nbuffers = n + 1;
	t->dyn_handles = dh; /* StarPU frees dyn_handles, dyn_modes and cl_arg */
	t->dyn_modes = dm;
	t->cl_arg = ga;
	t->cl_arg_size = halo_gather_args_size(n);
	t->cl_arg_free = 1;
	int rc = halo_task_submit(t); /* on failure it frees ga and the handle arrays */
	if (rc < 0) {
		return halo_error_set(err, HALO_ERUNTIME, "no StarPU worker can run the gather task (%s)",
				      strerror(-rc));
	}
	return HALO_OK;
}
