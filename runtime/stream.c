/* Chunk streams on StarPU (see stream.h).
 *
 * Three kinds of task: read (CPU: decode one stored input chunk into a
 * StarPU-owned block), gather (assemble one output chunk from its input
 * blocks, codelets/gather.c) and write (CPU: encode and store one output
 * chunk). StarPU owns every chunk buffer (home node -1), which is what makes
 * starpu_data_unregister_submit safe and lets CUDA workers receive chunks
 * later without extra copies.
 *
 * Codelets cannot return errors, so the first failing task records its
 * message in the job and every later task of the job turns into a no-op;
 * the submitter stops submitting as soon as it sees the failure. */
#include "config.h"
#include "runtime/stream.h"
#include "codelets/gather.h"
#include "util/progress.h"
#include "util/signals.h"

#include <errno.h>
#include <pthread.h>
#include <starpu.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct job {
	halo_reader_t *in;
	halo_writer_t *out;
	const halo_volume_info_t *ii, *oi;
	int factor[3];
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int inflight;
	int64_t written, read;
	uint64_t bytes_read, bytes_written;
	int failed;
	halo_error_t err;
};

struct io_arg {
	struct job *job;
	int64_t idx[3];
};

static void job_fail(struct job *job, const halo_error_t *e)
{
	pthread_mutex_lock(&job->lock);
	if (!job->failed) {
		job->failed = 1;
		job->err = *e;
	}
	pthread_cond_broadcast(&job->cond);
	pthread_mutex_unlock(&job->lock);
}

static int job_stopped(struct job *job)
{
	return __atomic_load_n(&job->failed, __ATOMIC_RELAXED) || halo_interrupted();
}

static void read_cpu(void *buffers[], void *cl_arg)
{
	struct io_arg *a = cl_arg;
	struct job *job = a->job;
	if (job_stopped(job))
		return;
	halo_error_t e = {0};
	void *buf = (void *)STARPU_BLOCK_GET_PTR(buffers[0]);
	if (halo_reader_read_chunk(job->in, a->idx, buf, &e)) {
		job_fail(job, &e);
		return;
	}
	size_t n = (size_t)STARPU_BLOCK_GET_NX(buffers[0]) * STARPU_BLOCK_GET_NY(buffers[0]) *
		   STARPU_BLOCK_GET_NZ(buffers[0]) * STARPU_BLOCK_GET_ELEMSIZE(buffers[0]);
	pthread_mutex_lock(&job->lock);
	job->read++;
	job->bytes_read += n;
	pthread_mutex_unlock(&job->lock);
}

static void write_cpu(void *buffers[], void *cl_arg)
{
	struct io_arg *a = cl_arg;
	struct job *job = a->job;
	if (job_stopped(job))
		return;
	halo_error_t e = {0};
	const void *buf = (const void *)STARPU_BLOCK_GET_PTR(buffers[0]);
	if (halo_writer_write_chunk(job->out, a->idx, buf, &e))
		job_fail(job, &e);
}

/* Runs on the worker after write_cpu: one output chunk less in flight. */
static void write_done(void *arg)
{
	struct io_arg *a = arg;
	struct job *job = a->job;
	const halo_volume_info_t *oi = job->oi;
	halo_dtype_t dt = oi->dtype;
	pthread_mutex_lock(&job->lock);
	job->inflight--;
	job->written++;
	job->bytes_written += (uint64_t)(oi->chunks[0] * oi->chunks[1] * oi->chunks[2]) *
			      halo_dtype_size(dt);
	pthread_cond_broadcast(&job->cond);
	pthread_mutex_unlock(&job->lock);
}

static struct starpu_perfmodel read_model = {.type = STARPU_HISTORY_BASED, .symbol = "halo_read"};
static struct starpu_perfmodel write_model = {.type = STARPU_HISTORY_BASED, .symbol = "halo_write"};

static struct starpu_codelet read_cl = {
	.cpu_funcs = {read_cpu},
	.nbuffers = 1,
	.modes = {STARPU_W},
	.model = &read_model,
	.name = "read",
};

/* The second buffer, when present, is an ordering token (TIFF pages must
 * be appended in order): STARPU_RW on one handle serialises the writes in
 * submission order. */
static struct starpu_codelet write_cl = {
	.cpu_funcs = {write_cpu},
	.nbuffers = STARPU_VARIABLE_NBUFFERS,
	.model = &write_model,
	.name = "write",
};

/* Output chunks j along one axis read input chunks lo..hi. */
static void input_range(const struct job *job, int d, int64_t j, int64_t *lo, int64_t *hi)
{
	int64_t oc = job->oi->chunks[d], ic = job->ii->chunks[d], f = job->factor[d];
	int64_t start = j * oc * f;
	int64_t end = (j + 1) * oc * f;
	if (end > job->ii->shape[d])
		end = job->ii->shape[d];
	*lo = start / ic;
	*hi = end > start ? (end - 1) / ic : *lo - 1;
}

static int64_t nchunks(int64_t shape, int64_t chunk)
{
	return (shape + chunk - 1) / chunk;
}

static int submit(struct starpu_task *t, struct job *job)
{
	int rc = starpu_task_submit(t);
	if (rc == 0)
		return 0;
	halo_error_t e;
	halo_error_set(&e, HALO_ERUNTIME, "no StarPU worker can run the %s task (%s)",
		       t->cl->name, strerror(-rc));
	job_fail(job, &e);
	return -1;
}

/* Waits until fewer than `limit` output chunks are in flight (or the job
 * stopped), redrawing the progress line meanwhile. */
static void wait_inflight(struct job *job, int limit, halo_progress_t *p)
{
	pthread_mutex_lock(&job->lock);
	while (job->inflight >= limit && !job->failed && !halo_interrupted()) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&job->cond, &job->lock, &ts);
		int64_t done = job->written;
		uint64_t bytes = job->bytes_read + job->bytes_written;
		pthread_mutex_unlock(&job->lock);
		halo_progress_update(p, done, bytes);
		pthread_mutex_lock(&job->lock);
	}
	pthread_mutex_unlock(&job->lock);
}

static uint64_t default_memory(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
	return pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size / 4 : (UINT64_C(1) << 30);
}

int halo_stream_run(halo_reader_t *in, halo_writer_t *out, const halo_stream_opts_t *opts,
		    halo_stream_stats_t *stats, halo_error_t *err)
{
	struct job job = {
		.in = in, .out = out,
		.ii = halo_reader_info(in), .oi = halo_writer_info(out),
		.factor = {1, opts->downsample > 1 ? opts->downsample : 1,
			   opts->downsample > 1 ? opts->downsample : 1},
	};
	pthread_mutex_init(&job.lock, NULL);
	pthread_cond_init(&job.cond, NULL);
	const halo_volume_info_t *ii = job.ii, *oi = job.oi;
	int64_t ng[3], og[3];
	for (int d = 0; d < 3; d++) {
		ng[d] = nchunks(ii->shape[d], ii->chunks[d]);
		og[d] = nchunks(oi->shape[d], oi->chunks[d]);
	}
	int64_t nin = ng[0] * ng[1] * ng[2], nout = og[0] * og[1] * og[2];
	size_t in_el = halo_dtype_size(ii->dtype), out_el = halo_dtype_size(oi->dtype);
	uint64_t in_bytes = (uint64_t)(ii->chunks[0] * ii->chunks[1] * ii->chunks[2]) * in_el;
	uint64_t out_bytes = (uint64_t)(oi->chunks[0] * oi->chunks[1] * oi->chunks[2]) * out_el;

	/* Consumers of each input chunk, so it is released after its last. */
	starpu_data_handle_t *handles = calloc((size_t)nin, sizeof *handles);
	int32_t *consumers = calloc((size_t)nin, sizeof *consumers);
	int64_t *count[3] = {calloc((size_t)ng[0], 8), calloc((size_t)ng[1], 8),
			     calloc((size_t)ng[2], 8)};
	int rc = HALO_OK;
	if (!handles || !consumers || !count[0] || !count[1] || !count[2]) {
		rc = halo_error_set(err, HALO_ENOMEM, "out of memory for %lld chunks", (long long)nin);
		goto out;
	}
	for (int d = 0; d < 3; d++)
		for (int64_t j = 0; j < og[d]; j++) {
			int64_t lo, hi;
			input_range(&job, d, j, &lo, &hi);
			for (int64_t i = lo; i <= hi && i < ng[d]; i++)
				count[d][i]++;
		}
	for (int64_t z = 0; z < ng[0]; z++)
		for (int64_t y = 0; y < ng[1]; y++)
			for (int64_t x = 0; x < ng[2]; x++)
				consumers[(z * ng[1] + y) * ng[2] + x] =
					(int32_t)(count[0][z] * count[1][y] * count[2][x]);

	/* Chunks in flight: each output chunk holds itself and, at worst, its
	 * share of the input chunks it overlaps. */
	uint64_t budget = opts->memory ? opts->memory : default_memory();
	uint64_t per = out_bytes + in_bytes;
	int limit = per ? (int)(budget / per) : 1;
	int workers = (int)starpu_worker_get_count();
	if (limit > 4 * workers + 4)
		limit = 4 * workers + 4;
	if (limit < 1)
		limit = 1;

	starpu_data_handle_t token = NULL;
	if (halo_writer_ordered(out))
		starpu_void_data_register(&token);
	halo_progress_t progress;
	halo_progress_init(&progress, opts->label ? opts->label : "stream", nout, opts->quiet);
	double start = halo_now();

	for (int64_t oz = 0; oz < og[0] && !job_stopped(&job); oz++)
		for (int64_t oy = 0; oy < og[1] && !job_stopped(&job); oy++)
			for (int64_t ox = 0; ox < og[2] && !job_stopped(&job); ox++) {
				int64_t oidx[3] = {oz, oy, ox}, lo[3], hi[3];
				wait_inflight(&job, limit, &progress);
				if (job_stopped(&job))
					break;
				for (int d = 0; d < 3; d++) {
					input_range(&job, d, oidx[d], &lo[d], &hi[d]);
					if (hi[d] >= ng[d])
						hi[d] = ng[d] - 1;
				}
				int nsrc = (int)((hi[0] - lo[0] + 1) * (hi[1] - lo[1] + 1) * (hi[2] - lo[2] + 1));
				if (nsrc < 0)
					nsrc = 0;
				struct halo_gather_args *ga = calloc(1, halo_gather_args_size(nsrc));
				starpu_data_handle_t *dh = malloc((size_t)(nsrc + 1) * sizeof *dh);
				enum starpu_data_access_mode *dm = malloc((size_t)(nsrc + 1) * sizeof *dm);
				if (!ga || !dh || !dm) {
					free(ga); free(dh); free(dm);
					halo_error_t e;
					halo_error_set(&e, HALO_ENOMEM, "out of memory submitting tasks");
					job_fail(&job, &e);
					break;
				}
				ga->nsrc = nsrc;
				ga->src_kind = ii->dtype.kind;
				ga->dst_kind = oi->dtype.kind;
				ga->fill = oi->fill;
				for (int d = 0; d < 3; d++) {
					ga->src_shape[d] = ii->shape[d];
					ga->dst_origin[d] = oidx[d] * oi->chunks[d];
					ga->dst_dims[d] = oi->chunks[d];
					ga->dst_shape[d] = oi->shape[d];
					ga->factor[d] = job.factor[d];
				}
				int k = 0;
				for (int64_t iz = lo[0]; iz <= hi[0]; iz++)
					for (int64_t iy = lo[1]; iy <= hi[1]; iy++)
						for (int64_t ix = lo[2]; ix <= hi[2]; ix++, k++) {
							int64_t flat = (iz * ng[1] + iy) * ng[2] + ix;
							int64_t iidx[3] = {iz, iy, ix};
							for (int d = 0; d < 3; d++) {
								ga->src[k].origin[d] = iidx[d] * ii->chunks[d];
								ga->src[k].dims[d] = ii->chunks[d];
							}
							if (!handles[flat]) {
								starpu_block_data_register(
									&handles[flat], -1, 0,
									(uint32_t)ii->chunks[2],
									(uint32_t)(ii->chunks[2] * ii->chunks[1]),
									(uint32_t)ii->chunks[2], (uint32_t)ii->chunks[1],
									(uint32_t)ii->chunks[0], in_el);
								struct io_arg *ra = malloc(sizeof *ra);
								*ra = (struct io_arg){&job, {iz, iy, ix}};
								struct starpu_task *rt = starpu_task_create();
								rt->cl = &read_cl;
								rt->handles[0] = handles[flat];
								rt->cl_arg = ra;
								rt->cl_arg_size = sizeof *ra;
								rt->cl_arg_free = 1;
								submit(rt, &job);
							}
							dh[k] = handles[flat];
							dm[k] = STARPU_R;
						}
				starpu_data_handle_t oh;
				starpu_block_data_register(&oh, -1, 0, (uint32_t)oi->chunks[2],
							   (uint32_t)(oi->chunks[2] * oi->chunks[1]),
							   (uint32_t)oi->chunks[2], (uint32_t)oi->chunks[1],
							   (uint32_t)oi->chunks[0], out_el);
				dh[nsrc] = oh;
				dm[nsrc] = STARPU_W;
				struct starpu_task *gt = starpu_task_create();
				gt->cl = &halo_gather_cl;
				gt->nbuffers = nsrc + 1;
				gt->dyn_handles = dh;
				gt->dyn_modes = dm;
				gt->cl_arg = ga;
				gt->cl_arg_size = halo_gather_args_size(nsrc);
				gt->cl_arg_free = 1;
				submit(gt, &job);
				for (int64_t iz = lo[0]; iz <= hi[0]; iz++)
					for (int64_t iy = lo[1]; iy <= hi[1]; iy++)
						for (int64_t ix = lo[2]; ix <= hi[2]; ix++) {
							int64_t flat = (iz * ng[1] + iy) * ng[2] + ix;
							if (--consumers[flat] == 0) {
								starpu_data_unregister_submit(handles[flat]);
								handles[flat] = NULL;
							}
						}
				struct io_arg *wa = malloc(sizeof *wa);
				*wa = (struct io_arg){&job, {oz, oy, ox}};
				struct starpu_task *wt = starpu_task_create();
				wt->cl = &write_cl;
				wt->nbuffers = token ? 2 : 1;
				wt->handles[0] = oh;
				wt->modes[0] = STARPU_R;
				wt->handles[1] = token;
				wt->modes[1] = STARPU_RW;
				wt->cl_arg = wa;
				wt->cl_arg_size = sizeof *wa;
				wt->cl_arg_free = 1;
				wt->callback_func = write_done;
				wt->callback_arg = wa;
				pthread_mutex_lock(&job.lock);
				job.inflight++;
				pthread_mutex_unlock(&job.lock);
				if (submit(wt, &job)) {
					pthread_mutex_lock(&job.lock);
					job.inflight--;
					pthread_mutex_unlock(&job.lock);
				}
				starpu_data_unregister_submit(oh);
			}
	/* Input chunks whose consumers were never submitted (the job stopped). */
	for (int64_t i = 0; i < nin; i++)
		if (handles[i])
			starpu_data_unregister_submit(handles[i]);
	wait_inflight(&job, 1, &progress);
	starpu_task_wait_for_all();
	if (token)
		starpu_data_unregister(token);
	halo_progress_update(&progress, job.written, job.bytes_read + job.bytes_written);
	halo_progress_finish(&progress);
	if (stats) {
		stats->chunks_written = job.written;
		stats->chunks_read = job.read;
		stats->bytes_read = job.bytes_read;
		stats->bytes_written = job.bytes_written;
		stats->seconds = halo_now() - start;
	}
	if (job.failed) {
		*err = job.err;
		rc = job.err.code ? job.err.code : HALO_EIO;
	} else if (halo_interrupted()) {
		rc = halo_error_set(err, HALO_EINTR, "interrupted; nothing was written");
	}
out:
	free(handles);
	free(consumers);
	for (int d = 0; d < 3; d++)
		free(count[d]);
	pthread_cond_destroy(&job.cond);
	pthread_mutex_destroy(&job.lock);
	return rc;
}
