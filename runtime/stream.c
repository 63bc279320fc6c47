/* Chunk streams on StarPU (see stream.h).
 *
 * Tasks: read (CPU: decode one stored input chunk into a StarPU-owned
 * block), gather (assemble a block from the input chunks it overlaps,
 * codelets/gather.c), the optional kernel (map_overlap's function, e.g.
 * RL), and write (CPU: encode and store one output chunk). StarPU owns
 * every chunk buffer (home node -1), which is what makes
 * starpu_data_unregister_submit safe and lets CUDA workers receive chunks
 * without extra copies.
 *
 * Codelets cannot return errors, so the first failing task records its
 * message in the job and every later task of the job turns into a no-op;
 * the submitter stops submitting as soon as it sees the failure. */
#include "config.h"
#include "runtime/stream.h"
#include "codelets/gather.h"
#include "io/scratch.h"
#include "runtime/grid.h"
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

static void fail_nomem(struct job *job)
{
	halo_error_t e;
	halo_error_set(&e, HALO_ENOMEM, "out of memory submitting tasks");
	job_fail(job, &e);
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

uint64_t halo_memory_default(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
	return pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size / 4 : (UINT64_C(1) << 30);
}

/* The submitter's state. Work is organised in units: a unit gathers its
 * source region from input chunks (and runs the kernel, if any). Without a
 * kernel, or when the compute blocks are the output chunks, a unit is an
 * output chunk and is written directly; otherwise units are compute blocks
 * (dask's rechunked blocks) and each output chunk is gathered from the
 * results of the blocks it overlaps. */
struct stream {
	struct job job;
	struct halo_axis in[3], out[3], unit[3];
	int two_level;
	starpu_data_handle_t *inputs;  /* per input chunk; NULL when not live */
	int32_t *input_uses;           /* units left to read each input chunk */
	starpu_data_handle_t *results; /* per unit, two-level only */
	int32_t *result_uses;          /* output chunks left to read each result */
	starpu_data_handle_t token;    /* orders writes when the output needs it */
	int64_t *lists[3];             /* scratch for input_list */
};

static int64_t flat(const struct halo_axis *g, const int64_t i[3])
{
	return (i[0] * g[1].nblocks + i[1]) * g[2].nblocks + i[2];
}

static int64_t count3(const struct halo_axis *g)
{
	return g[0].nblocks * g[1].nblocks * g[2].nblocks;
}

/* The source region of unit j along axis d: [*a, *b) in input coordinates,
 * beyond the volume where a halo is asked for. */
static void region(const struct stream *s, int d, int64_t j, int64_t *a, int64_t *b)
{
	const struct job *job = &s->job;
	const halo_stream_opts_t *o = job->opts;
	int64_t n = job->ii->shape[d], f = job->factor[d];
	int64_t start = s->unit[d].start[j], end = s->unit[d].start[j + 1];
	if (o->kernel) {
		*a = start - o->depth[d];
		*b = end + o->depth[d];
		if (o->boundary == HALO_BOUNDARY_NONE) {
			*a = *a < 0 ? 0 : *a;
			*b = *b > n ? n : *b;
		}
	} else {
		*a = start * f;
		*b = end * f < n ? end * f : n;
	}
}

/* The input chunks (sorted, distinct) that unit j reads along axis d.
 * Returns how many; list has room for every chunk of the axis. */
static int64_t input_list(const struct stream *s, int d, int64_t j, int64_t *list)
{
	const halo_stream_opts_t *o = s->job.opts;
	int64_t a, b, n = s->job.ii->shape[d], count = 0, last = -1;
	int boundary = o->kernel ? o->boundary : HALO_BOUNDARY_NONE, unsorted = 0;
	region(s, d, j, &a, &b);
	for (int64_t g = a; g < b; g++) {
		int64_t m = halo_boundary_map(g, n, boundary);
		if (m < 0)
			continue;
		int64_t c = halo_axis_find(&s->in[d], m);
		if (c == last)
			continue;
		last = c;
		int seen = 0;
		for (int64_t i = 0; i < count && !seen; i++)
			seen = list[i] == c;
		if (!seen) {
			unsorted |= count > 0 && c < list[count - 1];
			list[count++] = c;
		}
	}
	if (unsorted) /* periodic and reflect halos revisit chunks out of order */
		for (int64_t i = 1; i < count; i++)
			for (int64_t k = i; k > 0 && list[k - 1] > list[k]; k--) {
				int64_t t = list[k];
				list[k] = list[k - 1];
				list[k - 1] = t;
			}
	return count;
}

/* The units (a contiguous range) that output chunk j covers along axis d. */
static void unit_range(const struct stream *s, int d, int64_t j, int64_t *lo, int64_t *hi)
{
	*lo = halo_axis_find(&s->unit[d], s->out[d].start[j]);
	*hi = halo_axis_find(&s->unit[d], s->out[d].start[j + 1] - 1);
}

/* How many units read each input chunk, and (two-level) how many output
 * chunks read each unit's result: per axis, then as products. */
static int count_uses(struct stream *s, halo_error_t *err)
{
	int64_t *in_count[3] = {NULL, NULL, NULL}, *res_count[3] = {NULL, NULL, NULL};
	int rc = HALO_OK;
	for (int d = 0; d < 3; d++) {
		in_count[d] = calloc((size_t)s->in[d].nblocks, sizeof **in_count);
		res_count[d] = calloc((size_t)s->unit[d].nblocks, sizeof **res_count);
		if (!in_count[d] || !res_count[d]) {
			rc = halo_error_set(err, HALO_ENOMEM, "out of memory planning chunks");
			goto out;
		}
		for (int64_t j = 0; j < s->unit[d].nblocks; j++) {
			int64_t k = input_list(s, d, j, s->lists[d]);
			for (int64_t i = 0; i < k; i++)
				in_count[d][s->lists[d][i]]++;
		}
		for (int64_t j = 0; s->two_level && j < s->out[d].nblocks; j++) {
			int64_t lo, hi;
			unit_range(s, d, j, &lo, &hi);
			for (int64_t u = lo; u <= hi; u++)
				res_count[d][u]++;
		}
	}
	int64_t i[3];
	for (i[0] = 0; i[0] < s->in[0].nblocks; i[0]++)
		for (i[1] = 0; i[1] < s->in[1].nblocks; i[1]++)
			for (i[2] = 0; i[2] < s->in[2].nblocks; i[2]++)
				s->input_uses[flat(s->in, i)] =
					(int32_t)(in_count[0][i[0]] * in_count[1][i[1]] * in_count[2][i[2]]);
	for (i[0] = 0; s->two_level && i[0] < s->unit[0].nblocks; i[0]++)
		for (i[1] = 0; i[1] < s->unit[1].nblocks; i[1]++)
			for (i[2] = 0; i[2] < s->unit[2].nblocks; i[2]++)
				s->result_uses[flat(s->unit, i)] =
					(int32_t)(res_count[0][i[0]] * res_count[1][i[1]] * res_count[2][i[2]]);
out:
	for (int d = 0; d < 3; d++) {
		free(in_count[d]);
		free(res_count[d]);
	}
	return rc;
}

static starpu_data_handle_t register_block(const int64_t dims[3], size_t elsize)
{
	starpu_data_handle_t h;
	uint32_t nx = (uint32_t)dims[2], ny = (uint32_t)dims[1];
	starpu_block_data_register(&h, -1, 0, nx, nx * ny, nx, ny, (uint32_t)dims[0], elsize);
	return h;
}

/* The handle of input chunk idx, registered and read on first use. */
static starpu_data_handle_t input_handle(struct stream *s, const int64_t idx[3])
{
	int64_t f = flat(s->in, idx);
	if (s->inputs[f])
		return s->inputs[f];
	const halo_volume_info_t *ii = s->job.ii;
	starpu_data_handle_t h = register_block(ii->chunks, halo_dtype_size(ii->dtype));
	s->inputs[f] = h;
	struct io_arg *ra = malloc(sizeof *ra);
	struct starpu_task *t = ra ? starpu_task_create() : NULL;
	if (!t) {
		free(ra);
		fail_nomem(&s->job);
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

/* Submits a gather of the given sources into dst. */
static void submit_gather(struct job *job, struct halo_gather_args *ga,
			  starpu_data_handle_t *src, starpu_data_handle_t dst)
{
	int n = ga->nsrc;
	starpu_data_handle_t *dh = malloc((size_t)(n + 1) * sizeof *dh);
	enum starpu_data_access_mode *dm = malloc((size_t)(n + 1) * sizeof *dm);
	struct starpu_task *t = dh && dm ? starpu_task_create() : NULL;
	if (!t) {
		free(dh);
		free(dm);
		free(ga);
		fail_nomem(job);
		return;
	}
	for (int k = 0; k < n; k++) {
		dh[k] = src[k];
		dm[k] = STARPU_R;
	}
	dh[n] = dst;
	dm[n] = STARPU_W;
	t->cl = &halo_gather_cl;
	t->nbuffers = n + 1;
	t->dyn_handles = dh;
	t->dyn_modes = dm;
	t->cl_arg = ga;
	t->cl_arg_size = halo_gather_args_size(n);
	t->cl_arg_free = 1;
	submit(t, job);
}

/* Submits unit u: gather of its (haloed) region, then the kernel if any.
 * The result goes to `result` (a whole output chunk when single-level, the
 * unit's exact extent otherwise). */
static void submit_unit(struct stream *s, const int64_t u[3], starpu_data_handle_t result)
{
	struct job *job = &s->job;
	const halo_stream_opts_t *o = job->opts;
	const halo_volume_info_t *ii = job->ii, *oi = job->oi;
	int64_t cnt[3], a[3], b[3];
	for (int d = 0; d < 3; d++) {
		cnt[d] = input_list(s, d, u[d], s->lists[d]);
		region(s, d, u[d], &a[d], &b[d]);
	}
	int nsrc = (int)(cnt[0] * cnt[1] * cnt[2]);
	struct halo_gather_args *ga = calloc(1, halo_gather_args_size(nsrc));
	starpu_data_handle_t *src = malloc((size_t)(nsrc + 1) * sizeof *src);
	if (!ga || !src) {
		free(ga);
		free(src);
		fail_nomem(job);
		return;
	}
	*ga = (struct halo_gather_args){
		.nsrc = nsrc, .src_kind = ii->dtype.kind,
		.dst_kind = o->kernel ? HALO_F4 : oi->dtype.kind, .fill = oi->fill,
		.boundary = o->kernel ? o->boundary : HALO_BOUNDARY_NONE, .constant = o->constant,
	};
	for (int d = 0; d < 3; d++) {
		ga->src_shape[d] = ii->shape[d];
		ga->factor[d] = job->factor[d];
		if (o->kernel) {
			/* The haloed block is exactly the region: no padding. */
			ga->dst_origin[d] = a[d];
			ga->dst_dims[d] = b[d] - a[d];
			ga->dst_shape[d] = b[d];
		} else {
			ga->dst_origin[d] = u[d] * oi->chunks[d];
			ga->dst_dims[d] = oi->chunks[d];
			ga->dst_shape[d] = oi->shape[d];
		}
	}
	int k = 0;
	for (int64_t iz = 0; iz < cnt[0]; iz++)
		for (int64_t iy = 0; iy < cnt[1]; iy++)
			for (int64_t ix = 0; ix < cnt[2]; ix++, k++) {
				int64_t idx[3] = {s->lists[0][iz], s->lists[1][iy], s->lists[2][ix]};
				for (int d = 0; d < 3; d++) {
					ga->src[k].origin[d] = idx[d] * ii->chunks[d];
					ga->src[k].dims[d] = ii->chunks[d];
				}
				src[k] = input_handle(s, idx);
			}
	starpu_data_handle_t gathered = result;
	if (o->kernel)
		gathered = register_block(ga->dst_dims, sizeof(float));
	submit_gather(job, ga, src, gathered);

	/* Inputs this unit was the last reader of can go. */
	for (int64_t iz = 0; iz < cnt[0]; iz++)
		for (int64_t iy = 0; iy < cnt[1]; iy++)
			for (int64_t ix = 0; ix < cnt[2]; ix++) {
				int64_t idx[3] = {s->lists[0][iz], s->lists[1][iy], s->lists[2][ix]};
				int64_t f = flat(s->in, idx);
				if (--s->input_uses[f] == 0) {
					starpu_data_unregister_submit(s->inputs[f]);
					s->inputs[f] = NULL;
				}
			}
	free(src);
	if (!o->kernel)
		return;
	int trim[3], valid[3];
	for (int d = 0; d < 3; d++) {
		int64_t start = s->unit[d].start[u[d]], end = s->unit[d].start[u[d] + 1];
		trim[d] = (int)(start - a[d]);
		valid[d] = (int)(end - start);
	}
	halo_error_t e = {0};
	if (o->kernel->submit(o->kernel->ctx, gathered, result, trim, valid, &job->kernel_failed, &e))
		job_fail(job, &e);
	starpu_data_unregister_submit(gathered);
}

/* Two-level: the result of unit u, submitted on first use. */
static starpu_data_handle_t result_handle(struct stream *s, const int64_t u[3])
{
	int64_t f = flat(s->unit, u);
	if (!s->results[f]) {
		int64_t dims[3];
		for (int d = 0; d < 3; d++)
			dims[d] = s->unit[d].start[u[d] + 1] - s->unit[d].start[u[d]];
		s->results[f] = register_block(dims, sizeof(float));
		submit_unit(s, u, s->results[f]);
	}
	return s->results[f];
}

/* Two-level: output chunk j gathered from the unit results it overlaps. */
static void assemble_output(struct stream *s, const int64_t j[3], starpu_data_handle_t chunk)
{
	struct job *job = &s->job;
	const halo_volume_info_t *oi = job->oi;
	int64_t lo[3], hi[3];
	for (int d = 0; d < 3; d++)
		unit_range(s, d, j[d], &lo[d], &hi[d]);
	int nsrc = (int)((hi[0] - lo[0] + 1) * (hi[1] - lo[1] + 1) * (hi[2] - lo[2] + 1));
	struct halo_gather_args *ga = calloc(1, halo_gather_args_size(nsrc));
	starpu_data_handle_t *src = malloc((size_t)nsrc * sizeof *src);
	if (!ga || !src) {
		free(ga);
		free(src);
		fail_nomem(job);
		return;
	}
	*ga = (struct halo_gather_args){.nsrc = nsrc, .src_kind = HALO_F4, .dst_kind = HALO_F4};
	for (int d = 0; d < 3; d++) {
		ga->src_shape[d] = oi->shape[d];
		ga->dst_origin[d] = j[d] * oi->chunks[d];
		ga->dst_dims[d] = oi->chunks[d];
		ga->dst_shape[d] = oi->shape[d];
		ga->factor[d] = 1;
	}
	int k = 0;
	int64_t u[3];
	for (u[0] = lo[0]; u[0] <= hi[0]; u[0]++)
		for (u[1] = lo[1]; u[1] <= hi[1]; u[1]++)
			for (u[2] = lo[2]; u[2] <= hi[2]; u[2]++, k++) {
				for (int d = 0; d < 3; d++) {
					ga->src[k].origin[d] = s->unit[d].start[u[d]];
					ga->src[k].dims[d] = s->unit[d].start[u[d] + 1] - s->unit[d].start[u[d]];
				}
				src[k] = result_handle(s, u);
			}
	submit_gather(job, ga, src, chunk);
	for (u[0] = lo[0]; u[0] <= hi[0]; u[0]++)
		for (u[1] = lo[1]; u[1] <= hi[1]; u[1]++)
			for (u[2] = lo[2]; u[2] <= hi[2]; u[2]++) {
				int64_t f = flat(s->unit, u);
				if (--s->result_uses[f] == 0) {
					starpu_data_unregister_submit(s->results[f]);
					s->results[f] = NULL;
				}
			}
	free(src);
}

/* Output chunk j: computed (one or two levels), then written. */
static void submit_output(struct stream *s, const int64_t j[3])
{
	struct job *job = &s->job;
	const halo_volume_info_t *oi = job->oi;
	size_t elsize = job->opts->kernel ? sizeof(float) : halo_dtype_size(oi->dtype);
	starpu_data_handle_t chunk = register_block(oi->chunks, elsize);
	if (s->two_level)
		assemble_output(s, j, chunk);
	else
		submit_unit(s, j, chunk);

	struct io_arg *wa = malloc(sizeof *wa);
	struct starpu_task *wt = wa ? starpu_task_create() : NULL;
	if (!wt) {
		free(wa);
		fail_nomem(job);
		starpu_data_unregister_submit(chunk);
		return;
	}
	*wa = (struct io_arg){job, {j[0], j[1], j[2]}};
	wt->cl = &write_cl;
	wt->nbuffers = s->token ? 2 : 1;
	wt->handles[0] = chunk;
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
	starpu_data_unregister_submit(chunk);
}

/* How many output chunks may be in flight within the memory budget. */
static int inflight_limit(const struct stream *s, uint64_t memory)
{
	const struct job *job = &s->job;
	const halo_volume_info_t *ii = job->ii, *oi = job->oi;
	uint64_t per = (uint64_t)(oi->chunks[0] * oi->chunks[1] * oi->chunks[2]) *
			       halo_dtype_size(oi->dtype) +
		       (uint64_t)(ii->chunks[0] * ii->chunks[1] * ii->chunks[2]) *
			       halo_dtype_size(ii->dtype);
	if (job->opts->kernel) {
		/* The haloed block, the float32 result and the kernel's buffers
		 * (about three haloed blocks for RL), for the largest unit. */
		uint64_t haloed = 4;
		for (int d = 0; d < 3; d++) {
			int64_t big = 0;
			for (int64_t k = 0; k < s->unit[d].nblocks; k++) {
				int64_t len = s->unit[d].start[k + 1] - s->unit[d].start[k];
				big = len > big ? len : big;
			}
			haloed *= (uint64_t)(big + 2 * job->opts->depth[d]);
		}
		per += 4 * haloed + (uint64_t)(oi->chunks[0] * oi->chunks[1] * oi->chunks[2]) * 4;
	}
	uint64_t budget = memory ? memory : halo_memory_default();
	uint64_t limit = per ? budget / per : 1;
	uint64_t cap = 4 * (uint64_t)starpu_worker_get_count() + 4;
	if (limit > cap)
		limit = cap;
	return limit < 1 ? 1 : (int)limit;
}

static int plan(struct stream *s, halo_error_t *err)
{
	const struct job *job = &s->job;
	const halo_stream_opts_t *o = job->opts;
	for (int d = 0; d < 3; d++) {
		if (halo_axis_regular(&s->in[d], job->ii->shape[d], job->ii->chunks[d]) ||
		    halo_axis_regular(&s->out[d], job->oi->shape[d], job->oi->chunks[d]))
			return halo_error_set(err, HALO_ENOMEM, "out of memory planning chunks");
		if (!o->kernel) {
			if (halo_axis_regular(&s->unit[d], job->oi->shape[d], job->oi->chunks[d]))
				return halo_error_set(err, HALO_ENOMEM, "out of memory planning chunks");
			continue;
		}
		if (halo_axis_min_blocks(&s->unit[d], &s->out[d], o->depth[d]))
			return halo_error_set(err, HALO_EINVAL,
					      "a halo of %d voxels is deeper than the volume (%lld voxels "
					      "on axis %d)", o->depth[d], (long long)job->oi->shape[d], d);
		if (!halo_axis_equal(&s->unit[d], &s->out[d]))
			s->two_level = 1;
	}
	int64_t nin = count3(s->in), nunit = count3(s->unit);
	s->inputs = calloc((size_t)nin, sizeof *s->inputs);
	s->input_uses = calloc((size_t)nin, sizeof *s->input_uses);
	if (s->two_level) {
		s->results = calloc((size_t)nunit, sizeof *s->results);
		s->result_uses = calloc((size_t)nunit, sizeof *s->result_uses);
	}
	for (int d = 0; d < 3; d++)
		s->lists[d] = calloc((size_t)s->in[d].nblocks + 1, sizeof *s->lists[d]);
	if (!s->inputs || !s->input_uses || (s->two_level && (!s->results || !s->result_uses)) ||
	    !s->lists[0] || !s->lists[1] || !s->lists[2])
		return halo_error_set(err, HALO_ENOMEM, "out of memory for %lld chunks", (long long)nin);
	return count_uses(s, err);
}

static void stream_free(struct stream *s)
{
	free(s->inputs);
	free(s->input_uses);
	free(s->results);
	free(s->result_uses);
	for (int d = 0; d < 3; d++) {
		free(s->lists[d]);
		halo_axis_free(&s->in[d]);
		halo_axis_free(&s->out[d]);
		halo_axis_free(&s->unit[d]);
	}
}

int halo_stream_run(halo_reader_t *in, halo_writer_t *out, const halo_stream_opts_t *opts,
		    halo_stream_stats_t *stats, halo_error_t *err)
{
	int f = opts->downsample > 1 ? opts->downsample : 1;
	struct stream s = {
		.job = {.in = in, .out = out, .ii = halo_reader_info(in), .oi = halo_writer_info(out),
			.factor = {1, f, f}, .opts = opts},
	};
	struct job *job = &s.job;
	job->result_kind = opts->kernel ? HALO_F4 : job->oi->dtype.kind;
	pthread_mutex_init(&job->lock, NULL);
	pthread_cond_init(&job->cond, NULL);
	int rc = plan(&s, err);
	if (rc)
		goto out;
	int limit = inflight_limit(&s, opts->memory);
	if (halo_writer_ordered(out))
		starpu_void_data_register(&s.token);
	halo_progress_t progress;
	halo_progress_init(&progress, opts->label ? opts->label : "stream", count3(s.out), opts->quiet);
	double start = halo_now();

	/* C order, so a region's input chunks are read once and freed early. */
	int64_t j[3];
	for (j[0] = 0; j[0] < s.out[0].nblocks; j[0]++)
		for (j[1] = 0; j[1] < s.out[1].nblocks; j[1]++)
			for (j[2] = 0; j[2] < s.out[2].nblocks; j[2]++) {
				wait_inflight(job, limit, &progress);
				if (job_stopped(job))
					goto drain;
				submit_output(&s, j);
			}
drain:
	/* Handles whose readers were never submitted (the job stopped). */
	for (int64_t i = 0; i < count3(s.in); i++)
		if (s.inputs[i])
			starpu_data_unregister_submit(s.inputs[i]);
	for (int64_t i = 0; s.two_level && i < count3(s.unit); i++)
		if (s.results[i])
			starpu_data_unregister_submit(s.results[i]);
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
	stream_free(&s);
	pthread_cond_destroy(&job->cond);
	pthread_mutex_destroy(&job->lock);
	return rc;
}
