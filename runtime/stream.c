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
#include "io/scratch.h"
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
	const halo_stream_opts_t *opts;
	halo_dtype_kind_t result_kind; /* what the write tasks receive */
	int kernel_failed;             /* set by kernel tasks (out of memory) */
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
	halo_dtype_kind_t want = job->oi->dtype.kind;
	if (job->result_kind != want) {
		size_t n = (size_t)STARPU_BLOCK_GET_NX(buffers[0]) * STARPU_BLOCK_GET_NY(buffers[0]) *
			   STARPU_BLOCK_GET_NZ(buffers[0]);
		void *conv = halo_scratch(HALO_SCRATCH_CONVERT, n * halo_dtype_size(job->oi->dtype));
		if (!conv) {
			halo_error_set(&e, HALO_ENOMEM, "out of memory converting a chunk");
			job_fail(job, &e);
			return;
		}
		halo_dtype_convert(buf, job->result_kind, conv, want, n);
		buf = conv;
	}
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

/* The source region of output chunk j along axis d: [*a, *b) in input
 * coordinates, possibly beyond the volume when a halo is asked for. */
static void region(const struct job *job, int d, int64_t j, int64_t *a, int64_t *b)
{
	int64_t oc = job->oi->chunks[d], f = job->factor[d], n = job->ii->shape[d];
	const halo_stream_opts_t *o = job->opts;
	if (o->kernel) {
		int64_t end = (j + 1) * oc < n ? (j + 1) * oc : n;
		*a = j * oc - o->depth[d];
		*b = end + o->depth[d];
		if (o->boundary == HALO_BOUNDARY_NONE) {
			*a = *a < 0 ? 0 : *a;
			*b = *b > n ? n : *b;
		}
	} else {
		*a = j * oc * f;
		*b = (j + 1) * oc * f < n ? (j + 1) * oc * f : n;
	}
}

/* The input chunks (sorted, distinct) that output chunk j reads along axis
 * d; list has room for the axis's chunk count. Returns how many. */
static int64_t input_list(const struct job *job, int d, int64_t j, int64_t *list)
{
	int64_t a, b, ic = job->ii->chunks[d], n = job->ii->shape[d], count = 0;
	region(job, d, j, &a, &b);
	int64_t last = -1;
	int wraps = 0;
	for (int64_t g = a; g < b; g++) {
		int64_t m = halo_boundary_map(g, n, job->opts->kernel ? job->opts->boundary
								  : HALO_BOUNDARY_NONE);
		if (m < 0)
			continue;
		int64_t c = m / ic;
		if (c == last)
			continue;
		last = c;
		int seen = 0;
		for (int64_t i = 0; i < count && !seen; i++)
			seen = list[i] == c;
		if (!seen) {
			wraps |= count > 0 && c < list[count - 1];
			list[count++] = c;
		}
	}
	if (wraps) /* periodic and reflect halos revisit chunks out of order */
		for (int64_t i = 1; i < count; i++)
			for (int64_t k = i; k > 0 && list[k - 1] > list[k]; k--) {
				int64_t t = list[k];
				list[k] = list[k - 1];
				list[k - 1] = t;
			}
	return count;
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

/* The submitter's state: the two chunk grids, the live input handles and
 * how many output chunks still need each of them. */
struct stream {
	struct job job;
	int64_t ng[3], og[3];         /* input and output chunk grids */
	starpu_data_handle_t *inputs; /* per input chunk; NULL when not live */
	int32_t *consumers;           /* output chunks left to use each input */
	starpu_data_handle_t token;   /* orders writes when the output needs it */
	int64_t *lists[3];            /* scratch for input_list, one per axis */
};

static int64_t flat_index(const int64_t *grid, int64_t z, int64_t y, int64_t x)
{
	return (z * grid[1] + y) * grid[2] + x;
}

/* Counts, for every input chunk, the output chunks that read it. */
static int count_consumers(struct stream *s, halo_error_t *err)
{
	int64_t *count[3];
	int rc = HALO_OK;
	for (int d = 0; d < 3; d++)
		count[d] = calloc((size_t)s->ng[d], sizeof *count[d]);
	if (!count[0] || !count[1] || !count[2]) {
		rc = halo_error_set(err, HALO_ENOMEM, "out of memory planning chunks");
		goto out;
	}
	for (int d = 0; d < 3; d++)
		for (int64_t j = 0; j < s->og[d]; j++) {
			int64_t k = input_list(&s->job, d, j, s->lists[d]);
			for (int64_t i = 0; i < k; i++)
				count[d][s->lists[d][i]]++;
		}
	for (int64_t z = 0; z < s->ng[0]; z++)
		for (int64_t y = 0; y < s->ng[1]; y++)
			for (int64_t x = 0; x < s->ng[2]; x++)
				s->consumers[flat_index(s->ng, z, y, x)] =
					(int32_t)(count[0][z] * count[1][y] * count[2][x]);
out:
	for (int d = 0; d < 3; d++)
		free(count[d]);
	return rc;
}

static starpu_data_handle_t register_block(const halo_volume_info_t *info)
{
	starpu_data_handle_t h;
	uint32_t nx = (uint32_t)info->chunks[2], ny = (uint32_t)info->chunks[1];
	starpu_block_data_register(&h, -1, 0, nx, nx * ny, nx, ny, (uint32_t)info->chunks[0],
				   halo_dtype_size(info->dtype));
	return h;
}

/* The handle of input chunk idx, registering it and submitting its read
 * on first use. */
static starpu_data_handle_t input_handle(struct stream *s, const int64_t idx[3])
{
	int64_t flat = flat_index(s->ng, idx[0], idx[1], idx[2]);
	if (s->inputs[flat])
		return s->inputs[flat];
	starpu_data_handle_t h = register_block(s->job.ii);
	s->inputs[flat] = h;
	struct io_arg *ra = malloc(sizeof *ra);
	struct starpu_task *t = ra ? starpu_task_create() : NULL;
	if (!t) {
		free(ra);
		halo_error_t e;
		halo_error_set(&e, HALO_ENOMEM, "out of memory submitting tasks");
		job_fail(&s->job, &e);
		return h;
	}
	*ra = (struct io_arg){&s->job, {idx[0], idx[1], idx[2]}};
	t->cl = &read_cl;
	t->handles[0] = h;
	t->cl_arg = ra;
	t->cl_arg_size = sizeof *ra;
	t->cl_arg_free = 1;
	submit(t, &s->job);
	return h;
}

/* Submits gather and write for output chunk oidx, then releases the input
 * chunks this was the last consumer of. */
static void submit_output(struct stream *s, const int64_t oidx[3])
{
	struct job *job = &s->job;
	const halo_stream_opts_t *o = job->opts;
	const halo_volume_info_t *ii = job->ii, *oi = job->oi;
	int64_t cnt[3], a[3], b[3];
	for (int d = 0; d < 3; d++) {
		cnt[d] = input_list(job, d, oidx[d], s->lists[d]);
		region(job, d, oidx[d], &a[d], &b[d]);
	}
	int nsrc = (int)(cnt[0] * cnt[1] * cnt[2]);
	struct halo_gather_args *ga = calloc(1, halo_gather_args_size(nsrc));
	starpu_data_handle_t *dh = malloc((size_t)(nsrc + 1) * sizeof *dh);
	enum starpu_data_access_mode *dm = malloc((size_t)(nsrc + 1) * sizeof *dm);
	struct io_arg *wa = malloc(sizeof *wa);
	struct starpu_task *gt = starpu_task_create(), *wt = starpu_task_create();
	if (!ga || !dh || !dm || !wa || !gt || !wt) {
		free(ga); free(dh); free(dm); free(wa);
		if (gt) starpu_task_destroy(gt);
		if (wt) starpu_task_destroy(wt);
		halo_error_t e;
		halo_error_set(&e, HALO_ENOMEM, "out of memory submitting tasks");
		job_fail(job, &e);
		return;
	}
	/* Without a kernel the gather produces the output chunk itself; with
	 * one it produces the haloed float32 block the kernel reads. */
	halo_volume_info_t block = *oi;
	*ga = (struct halo_gather_args){
		.nsrc = nsrc, .src_kind = ii->dtype.kind, .dst_kind = oi->dtype.kind,
		.fill = oi->fill, .boundary = o->kernel ? o->boundary : HALO_BOUNDARY_NONE,
		.constant = o->constant,
	};
	for (int d = 0; d < 3; d++) {
		ga->src_shape[d] = ii->shape[d];
		ga->factor[d] = job->factor[d];
		if (o->kernel) {
			ga->dst_origin[d] = a[d];
			ga->dst_dims[d] = b[d] - a[d];
			ga->dst_shape[d] = b[d];
			block.chunks[d] = b[d] - a[d];
		} else {
			ga->dst_origin[d] = oidx[d] * oi->chunks[d];
			ga->dst_dims[d] = oi->chunks[d];
			ga->dst_shape[d] = oi->shape[d];
		}
	}
	if (o->kernel) {
		ga->dst_kind = HALO_F4;
		block.dtype = (halo_dtype_t){HALO_F4, 0};
	}
	int k = 0;
	for (int64_t iz = 0; iz < cnt[0]; iz++)
		for (int64_t iy = 0; iy < cnt[1]; iy++)
			for (int64_t ix = 0; ix < cnt[2]; ix++, k++) {
				int64_t iidx[3] = {s->lists[0][iz], s->lists[1][iy], s->lists[2][ix]};
				for (int d = 0; d < 3; d++) {
					ga->src[k].origin[d] = iidx[d] * ii->chunks[d];
					ga->src[k].dims[d] = ii->chunks[d];
				}
				dh[k] = input_handle(s, iidx);
				dm[k] = STARPU_R;
			}
	starpu_data_handle_t gh = register_block(&block);
	dh[nsrc] = gh;
	dm[nsrc] = STARPU_W;
	gt->cl = &halo_gather_cl;
	gt->nbuffers = nsrc + 1;
	gt->dyn_handles = dh;
	gt->dyn_modes = dm;
	gt->cl_arg = ga;
	gt->cl_arg_size = halo_gather_args_size(nsrc);
	gt->cl_arg_free = 1;
	submit(gt, job);

	for (int64_t iz = 0; iz < cnt[0]; iz++)
		for (int64_t iy = 0; iy < cnt[1]; iy++)
			for (int64_t ix = 0; ix < cnt[2]; ix++) {
				int64_t flat = flat_index(s->ng, s->lists[0][iz], s->lists[1][iy],
							  s->lists[2][ix]);
				if (--s->consumers[flat] == 0) {
					starpu_data_unregister_submit(s->inputs[flat]);
					s->inputs[flat] = NULL;
				}
			}

	starpu_data_handle_t oh = gh;
	if (o->kernel) {
		halo_volume_info_t result = *oi;
		result.dtype = (halo_dtype_t){HALO_F4, 0};
		oh = register_block(&result);
		int trim[3], valid[3];
		for (int d = 0; d < 3; d++) {
			int64_t start = oidx[d] * oi->chunks[d];
			int64_t end = start + oi->chunks[d] < oi->shape[d] ? start + oi->chunks[d] : oi->shape[d];
			trim[d] = (int)(start - a[d]);
			valid[d] = (int)(end - start);
		}
		halo_error_t e = {0};
		if (o->kernel->submit(o->kernel->ctx, gh, oh, trim, valid, &job->kernel_failed, &e))
			job_fail(job, &e);
		starpu_data_unregister_submit(gh);
	}

	*wa = (struct io_arg){job, {oidx[0], oidx[1], oidx[2]}};
	wt->cl = &write_cl;
	wt->nbuffers = s->token ? 2 : 1;
	wt->handles[0] = oh;
	wt->modes[0] = STARPU_R;
	wt->handles[1] = s->token;
	wt->modes[1] = STARPU_RW;
	wt->cl_arg = wa;
	wt->cl_arg_size = sizeof *wa;
	wt->cl_arg_free = 1;
	wt->callback_func = write_done;
	wt->callback_arg = wa;
	pthread_mutex_lock(&job->lock);
	job->inflight++;
	pthread_mutex_unlock(&job->lock);
	if (submit(wt, job)) {
		pthread_mutex_lock(&job->lock);
		job->inflight--;
		pthread_mutex_unlock(&job->lock);
	}
	starpu_data_unregister_submit(oh);
}

/* How many output chunks may be in flight within the memory budget: each
 * holds itself and, at worst, one input chunk. */
static int inflight_limit(const struct job *job, uint64_t memory)
{
	const halo_volume_info_t *ii = job->ii, *oi = job->oi;
	uint64_t per = (uint64_t)(oi->chunks[0] * oi->chunks[1] * oi->chunks[2]) *
			       halo_dtype_size(oi->dtype) +
		       (uint64_t)(ii->chunks[0] * ii->chunks[1] * ii->chunks[2]) *
			       halo_dtype_size(ii->dtype);
	if (job->opts->kernel) {
		/* The haloed block, the float32 result and the kernel's buffers
		 * (about three haloed blocks for RL). */
		uint64_t haloed = 4;
		for (int d = 0; d < 3; d++)
			haloed *= (uint64_t)(oi->chunks[d] + 2 * job->opts->depth[d]);
		per += 4 * haloed + (uint64_t)(oi->chunks[0] * oi->chunks[1] * oi->chunks[2]) * 4;
	}
	uint64_t budget = memory ? memory : default_memory();
	uint64_t limit = per ? budget / per : 1;
	uint64_t cap = 4 * (uint64_t)starpu_worker_get_count() + 4;
	if (limit > cap)
		limit = cap;
	return limit < 1 ? 1 : (int)limit;
}

int halo_stream_run(halo_reader_t *in, halo_writer_t *out, const halo_stream_opts_t *opts,
		    halo_stream_stats_t *stats, halo_error_t *err)
{
	int f = opts->downsample > 1 ? opts->downsample : 1;
	struct stream s = {
		.job = {.in = in, .out = out, .ii = halo_reader_info(in), .oi = halo_writer_info(out),
			.factor = {1, f, f}, .opts = opts},
	};
	s.job.result_kind = opts->kernel ? HALO_F4 : s.job.oi->dtype.kind;
	struct job *job = &s.job;
	pthread_mutex_init(&job->lock, NULL);
	pthread_cond_init(&job->cond, NULL);
	for (int d = 0; d < 3; d++) {
		s.ng[d] = nchunks(job->ii->shape[d], job->ii->chunks[d]);
		s.og[d] = nchunks(job->oi->shape[d], job->oi->chunks[d]);
	}
	int64_t nin = s.ng[0] * s.ng[1] * s.ng[2], nout = s.og[0] * s.og[1] * s.og[2];
	int rc = HALO_OK;
	s.inputs = calloc((size_t)nin, sizeof *s.inputs);
	s.consumers = calloc((size_t)nin, sizeof *s.consumers);
	for (int d = 0; d < 3; d++)
		s.lists[d] = calloc((size_t)s.ng[d] + 1, sizeof *s.lists[d]);
	if (!s.inputs || !s.consumers || !s.lists[0] || !s.lists[1] || !s.lists[2]) {
		rc = halo_error_set(err, HALO_ENOMEM, "out of memory for %lld chunks", (long long)nin);
		goto out;
	}
	if ((rc = count_consumers(&s, err)))
		goto out;
	int limit = inflight_limit(job, opts->memory);
	if (halo_writer_ordered(out))
		starpu_void_data_register(&s.token);
	halo_progress_t progress;
	halo_progress_init(&progress, opts->label ? opts->label : "stream", nout, opts->quiet);
	double start = halo_now();

	/* C order, so a region's input chunks are read once and freed early. */
	for (int64_t z = 0; z < s.og[0]; z++)
		for (int64_t y = 0; y < s.og[1]; y++)
			for (int64_t x = 0; x < s.og[2]; x++) {
				wait_inflight(job, limit, &progress);
				if (job_stopped(job))
					goto drain;
				submit_output(&s, (int64_t[3]){z, y, x});
			}
drain:
	/* Inputs whose consumers were never submitted (the job stopped). */
	for (int64_t i = 0; i < nin; i++)
		if (s.inputs[i])
			starpu_data_unregister_submit(s.inputs[i]);
	wait_inflight(job, 1, &progress);
	starpu_task_wait_for_all();
	if (s.token)
		starpu_data_unregister(s.token);
	halo_progress_update(&progress, job->written, job->bytes_read + job->bytes_written);
	halo_progress_finish(&progress);
	if (stats) {
		*stats = (halo_stream_stats_t){
			.chunks_written = job->written, .chunks_read = job->read,
			.bytes_read = job->bytes_read, .bytes_written = job->bytes_written,
			.seconds = halo_now() - start,
		};
	}
	if (job->failed) {
		*err = job->err;
		rc = job->err.code ? job->err.code : HALO_EIO;
	} else if (job->kernel_failed) {
		rc = halo_error_set(err, HALO_ENOMEM, "out of memory in a %s task",
				    opts->label ? opts->label : "compute");
	} else if (halo_interrupted()) {
		rc = halo_error_set(err, HALO_EINTR, "interrupted; nothing was written");
	}
out:
	free(s.inputs);
	free(s.consumers);
	for (int d = 0; d < 3; d++)
		free(s.lists[d]);
	pthread_cond_destroy(&job->cond);
	pthread_mutex_destroy(&job->lock);
	return rc;
}
