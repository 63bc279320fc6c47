/* Chunk streams on StarPU (see stream.h).
 *
 * Tasks: read (CPU: decode one stored input chunk into a StarPU-owned
 * block), gather (assemble a block from the input chunks it overlaps,
 * codelets/gather.c) and write (CPU: encode and store one output chunk). StarPU owns
 * every chunk buffer (home node -1), which is what makes
 * starpu_data_unregister_submit safe and lets CUDA workers receive chunks
 * without extra copies. This file plans and submits; the I/O tasks and the
 * job's error state are in stream_tasks.c. */
#include "config.h"
#include "runtime/stream.h"
#include "codelets/gather.h"
#include "runtime/grid.h"
#include "runtime/stream_job.h"
#include "runtime/trace.h"
#include "util/progress.h"

#include <errno.h>
#include <pthread.h>
#include <starpu.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The submitter's state: each output chunk is gathered from the input
 * chunks it overlaps, then written. */
struct stream {
	struct halo_stream_job job;
	struct halo_axis in[3], out[3];
	starpu_data_handle_t *inputs;  /* per input chunk; NULL when not live */
	int32_t *input_uses;           /* output chunks left to read each input chunk */
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

/* The source region of output chunk j along axis d: [*a, *b) in input
 * coordinates. */
static void region(const struct stream *s, int d, int64_t j, int64_t *a, int64_t *b)
{
	const struct halo_stream_job *job = &s->job;
	int64_t n = job->ii->shape[d], f = job->factor[d];
	*a = s->out[d].start[j] * f;
	*b = s->out[d].start[j + 1] * f < n ? s->out[d].start[j + 1] * f : n;
}

/* The input chunks (sorted, distinct) that output chunk j reads along axis
 * d. Returns how many; list has room for every chunk of the axis. */
static int64_t input_list(const struct stream *s, int d, int64_t j, int64_t *list)
{
	int64_t a, b;
	region(s, d, j, &a, &b);
	return halo_axis_blocks_touched(&s->in[d], a, b, HALO_BOUNDARY_NONE, list);
}

/* How many output chunks read each input chunk: per axis, then as
 * products. */
static int count_uses(struct stream *s, halo_error_t *err)
{
	int64_t *in_count[3] = {NULL, NULL, NULL};
	int rc = HALO_OK;
	for (int d = 0; d < 3; d++) {
		in_count[d] = calloc((size_t)s->in[d].nblocks, sizeof **in_count);
		if (!in_count[d]) {
			rc = halo_error_set(err, HALO_ENOMEM, "out of memory planning chunks");
			goto out;
		}
		for (int64_t j = 0; j < s->out[d].nblocks; j++) {
			int64_t k = input_list(s, d, j, s->lists[d]);
			for (int64_t i = 0; i < k; i++)
				in_count[d][s->lists[d][i]]++;
		}
	}
	int64_t i[3];
	for (i[0] = 0; i[0] < s->in[0].nblocks; i[0]++)
		for (i[1] = 0; i[1] < s->in[1].nblocks; i[1]++)
			for (i[2] = 0; i[2] < s->in[2].nblocks; i[2]++)
				s->input_uses[flat(s->in, i)] =
					(int32_t)(in_count[0][i[0]] * in_count[1][i[1]] * in_count[2][i[2]]);
out:
	for (int d = 0; d < 3; d++)
		free(in_count[d]);
	return rc;
}

/* The handle of input chunk idx, registered and read on first use. */
static starpu_data_handle_t input_handle(struct stream *s, const int64_t idx[3])
{
	int64_t f = flat(s->in, idx);
	if (s->inputs[f])
		return s->inputs[f];
	const halo_volume_info_t *ii = s->job.ii;
	starpu_data_handle_t h = halo__block_register(ii->chunks, halo_dtype_size(ii->dtype), 0);
	s->inputs[f] = h;
	struct halo_stream_io_arg *ra = malloc(sizeof *ra);
	struct starpu_task *t = ra ? starpu_task_create() : NULL;
	if (!t) {
		free(ra);
		halo__stream_fail_nomem(&s->job);
		return h;
	}
	*ra = (struct halo_stream_io_arg){.job = &s->job, .in = s->job.in, .idx = {idx[0], idx[1], idx[2]}};
	t->cl = &halo__stream_read_cl;
	t->handles[0] = h;
	t->cl_arg = ra;
	t->cl_arg_size = sizeof *ra;
	t->cl_arg_free = 1;
	halo__stream_submit(t, &s->job);
	return h;
}

/* Output chunk j: gathered from the input chunks it overlaps (converted,
 * downsampled), then written. */
static void submit_output(struct stream *s, const int64_t j[3])
{
	struct halo_stream_job *job = &s->job;
	const halo_volume_info_t *ii = job->ii, *oi = job->oi;
	int64_t cnt[3];
	halo_trace_label(job->opts->label, j);
	for (int d = 0; d < 3; d++)
		cnt[d] = input_list(s, d, j[d], s->lists[d]);
	int nsrc = (int)(cnt[0] * cnt[1] * cnt[2]);
	struct halo_gather_args *ga = calloc(1, halo_gather_args_size(nsrc));
	starpu_data_handle_t *src = malloc((size_t)nsrc * sizeof *src);
	if (!ga || !src) {
		free(ga);
		free(src);
		halo__stream_fail_nomem(job);
		return;
	}
	*ga = (struct halo_gather_args){.nsrc = nsrc, .src_kind = ii->dtype.kind,
					.dst_kind = oi->dtype.kind, .fill = oi->fill.value,
					.failed = &job->kernel_failed};
	for (int d = 0; d < 3; d++) {
		ga->src_shape[d] = ii->shape[d];
		ga->factor[d] = job->factor[d];
		ga->dst_origin[d] = j[d] * oi->chunks[d];
		ga->dst_dims[d] = oi->chunks[d];
		ga->dst_shape[d] = oi->shape[d];
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
	starpu_data_handle_t chunk = halo__block_register(oi->chunks, halo_dtype_size(oi->dtype), 0);
	halo_error_t e = {0};
	if (halo__gather_submit(ga, src, chunk, &e))
		halo__stream_fail(job, &e);

	/* Inputs this chunk was the last reader of can go. */
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

	struct halo_stream_io_arg *wa = malloc(sizeof *wa);
	struct starpu_task *wt = wa ? starpu_task_create() : NULL;
	if (!wt) {
		free(wa);
		halo__stream_fail_nomem(job);
		starpu_data_unregister_submit(chunk);
		return;
	}
	*wa = (struct halo_stream_io_arg){.job = job, .out = job->out, .from = oi->dtype.kind,
					   .idx = {j[0], j[1], j[2]}};
	wt->cl = &halo__stream_write_cl;
	wt->priority = 1; /* as in tasks/execute.c's task_new */
	wt->prologue_callback_func = halo__stream_write_ready;
	wt->prologue_callback_arg = wa;
	wt->nbuffers = s->token ? 2 : 1;
	wt->handles[0] = chunk;
	wt->modes[0] = STARPU_R;
	wt->handles[1] = s->token;
	wt->modes[1] = STARPU_RW;
	wt->cl_arg = wa;
	wt->cl_arg_size = sizeof *wa;
	wt->cl_arg_free = 1;
	wt->callback_func = halo__stream_write_done;
	wt->callback_arg = wa;
	starpu_pthread_mutex_lock(&job->lock);
	job->inflight++;
	starpu_pthread_mutex_unlock(&job->lock);
	if (halo__stream_submit(wt, job)) {
		starpu_pthread_mutex_lock(&job->lock);
		job->inflight--;
		starpu_pthread_mutex_unlock(&job->lock);
	}
	starpu_data_unregister_submit(chunk);
}

/* How many output chunks may be in flight within the memory budget and
 * StarPU's limit: each holds its block and the input chunks it reads, the
 * most along each axis (a pyramid level's chunk reads 2x2 of the level
 * before). Counting one input chunk each, the pyramid of a 64x512x512
 * volume under --memory 16M let 12 chunks into flight, 30 MB of buffers:
 * StarPU waited for memory forever. */
static int inflight_limit(struct stream *s, uint64_t memory)
{
	const struct halo_stream_job *job = &s->job;
	const halo_volume_info_t *ii = job->ii, *oi = job->oi;
	uint64_t nin = 1;
	for (int d = 0; d < 3; d++) {
		int64_t most = 1;
		for (int64_t j = 0; j < s->out[d].nblocks; j++) {
			int64_t n = input_list(s, d, j, s->lists[d]);
			most = n > most ? n : most;
		}
		nin *= (uint64_t)most;
	}
	uint64_t per = (uint64_t)(oi->chunks[0] * oi->chunks[1] * oi->chunks[2]) *
			       halo_dtype_size(oi->dtype) +
		       nin * (uint64_t)(ii->chunks[0] * ii->chunks[1] * ii->chunks[2]) *
			       halo_dtype_size(ii->dtype);
	uint64_t budget = memory ? memory : halo_memory_default();
	starpu_ssize_t ceiling = starpu_memory_get_total(STARPU_MAIN_RAM);
	if (ceiling > 0 && (uint64_t)ceiling < budget)
		budget = (uint64_t)ceiling;
	uint64_t limit = per ? budget / per : 1;
	uint64_t cap = 4 * (uint64_t)starpu_worker_get_count() + 4;
	if (limit > cap)
		limit = cap;
	return limit < 1 ? 1 : (int)limit;
}

static int plan(struct stream *s, halo_error_t *err)
{
	const struct halo_stream_job *job = &s->job;
	for (int d = 0; d < 3; d++)
		if (halo_axis_regular(&s->in[d], job->ii->shape[d], job->ii->chunks[d]) ||
		    halo_axis_regular(&s->out[d], job->oi->shape[d], job->oi->chunks[d]))
			return halo_error_set(err, HALO_ENOMEM, "out of memory planning chunks");
	int64_t nin = count3(s->in);
	s->inputs = calloc((size_t)nin, sizeof *s->inputs);
	s->input_uses = calloc((size_t)nin, sizeof *s->input_uses);
	for (int d = 0; d < 3; d++)
		s->lists[d] = calloc((size_t)s->in[d].nblocks + 1, sizeof *s->lists[d]);
	if (!s->inputs || !s->input_uses || !s->lists[0] || !s->lists[1] || !s->lists[2])
		return halo_error_set(err, HALO_ENOMEM, "out of memory for %lld chunks", (long long)nin);
	return count_uses(s, err);
}

static void stream_free(struct stream *s)
{
	free(s->inputs);
	free(s->input_uses);
	for (int d = 0; d < 3; d++) {
		free(s->lists[d]);
		halo_axis_free(&s->in[d]);
		halo_axis_free(&s->out[d]);
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
	struct halo_stream_job *job = &s.job;
	starpu_pthread_mutex_init(&job->lock, NULL);
	starpu_pthread_cond_init(&job->cond, NULL);
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
				halo__stream_wait(job, limit, &progress);
				if (halo__stream_stopped(job))
					goto drain;
				submit_output(&s, j);
			}
drain:
	/* Handles whose readers were never submitted (the job stopped). */
	for (int64_t i = 0; i < count3(s.in); i++)
		if (s.inputs[i])
			starpu_data_unregister_submit(s.inputs[i]);
	halo__stream_wait(job, 1, &progress);
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
	rc = halo__stream_result(job, err);
out:
	stream_free(&s);
	starpu_pthread_cond_destroy(&job->cond);
	starpu_pthread_mutex_destroy(&job->lock);
	return rc;
}
