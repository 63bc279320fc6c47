/* Internals of chunk streams shared by stream.c (planning and submission)
 * and stream_tasks.c (the I/O tasks and the job's error and progress
 * state). Not for use outside runtime/. */
#ifndef HALO_RUNTIME_STREAM_JOB_H
#define HALO_RUNTIME_STREAM_JOB_H

#include <pthread.h>
#include <sched.h>
#include <starpu.h>

#include "codelets/gather.h"
#include "runtime/grid.h"
#include "runtime/stream.h"
#include "util/progress.h"

/* One stream's shared state: what it reads and writes, how far it got, and
 * the first error any of its tasks met. */
struct halo_stream_job {
	halo_reader_t *in;
	halo_writer_t *out;
	const halo_volume_info_t *ii, *oi;
	int factor[3];
	const halo_stream_opts_t *opts;
	int kernel_failed;             /* set by compute and gather tasks (out of memory, GPU errors) */
	starpu_pthread_mutex_t lock; /* StarPU's, so that a simulated run */
	starpu_pthread_cond_t cond;  /* (SimGrid) waits in simulated time */
	int inflight;
	int64_t written, read;
	int64_t computed;              /* output chunks ready to write (progress) */
	int64_t partials;              /* scalar reductions' per-chunk results (progress only) */
	uint64_t bytes_read, bytes_written;
	int failed;
	halo_error_t err;
};

/* cl_arg of read and write tasks (and write's callback argument). The
 * job holds the error state; the reader or writer is per task, so that a
 * graph with several sources and outputs shares one job. */
struct halo_stream_io_arg {
	struct halo_stream_job *job;
	halo_reader_t *in;
	halo_writer_t *out;
	halo_dtype_kind_t from; /* write: the element type of the block */
	const char *step;       /* graphs: the step named in errors, or NULL */
	int finite;             /* read: refuse NaN and infinities (RL's inputs) */
	int64_t fft_voxels;     /* read: RL's FFT size, for halo_rl_range_check (0: none) */
	int rl_result;          /* write: the block (or the gather's sources) is RL's result */
	int64_t idx[3];
	/* write: when set, the block is first gathered from the task's first
	 * gather->nsrc buffers (see halo__stream_write_cl). */
	struct halo_gather_args *gather;
};

/* read: decodes input chunk idx into its block (STARPU_W). write: encodes
 * and stores output chunk idx from its block (STARPU_R), converting to the
 * output type; a second buffer, when given, is an ordering token
 * (STARPU_RW) that serialises writes in submission order (TIFF pages).
 * With a gather, its buffers are instead the sources (STARPU_R each) of
 * the block it assembles in a scratch buffer. */
extern struct starpu_codelet halo__stream_read_cl, halo__stream_write_cl;
/* write's callback: one output chunk less in flight. */
void halo__stream_write_done(void *arg);
/* A write task's prologue: its chunk is computed, which the progress line
 * counts. Its write may wait behind a worker's queue of long tasks (dmda
 * queues them in order, without priorities), seconds where the RL tasks
 * are long, so writes alone made the line stand still, then jump. */
void halo__stream_write_ready(void *arg);

void halo__stream_fail(struct halo_stream_job *job, const halo_error_t *e);
void halo__stream_fail_nomem(struct halo_stream_job *job);
/* The job failed or SIGINT/SIGTERM arrived. */
int halo__stream_stopped(struct halo_stream_job *job);

/* Around an I/O task's reading or writing of `bytes`: lends it the cores
 * that would otherwise idle, as blosc threads (see stream_tasks.c). */
struct halo_io_lend {
	cpu_set_t saved;
	int widened;
};
void halo__io_begin(size_t bytes, struct halo_io_lend *l);
void halo__io_end(struct halo_io_lend *l);

/* The error of a run in which a compute or gather task failed (tasks
 * cannot say why: out of memory, or on a GPU a CUDA error). */
int halo__task_failed_error(halo_error_t *err);
/* A chunk's or voxel's position for messages: "Z,Y,X (z,y,x)", or "Y,X
 * (y,x)" in a 2D volume; returns buf. */
const char *halo__where(const int64_t at[3], int ndim, char *buf, size_t len);
/* The message for a non-finite voxel at `at` of path (value v) that RL
 * would read: the same words in overlap and exact mode. */
int halo__nonfinite_error(halo_error_t *err, const char *path, const int64_t at[3], int ndim,
			  double v);
/* The first NaN or infinity, in C order, among the voxels in [lo, hi)
 * (volume coordinates) of a float32 block of dims at origin: 1 with its
 * place in at and its value in *v, else 0. */
int halo__first_nonfinite(const float *block, const int64_t dims[3], const int64_t origin[3],
			  const int64_t lo[3], const int64_t hi[3], int64_t at[3], float *v);
/* RL's float32 result block of dims, at origin, written to path: fills
 * err and returns its code when a voxel in [lo, hi) (volume coordinates,
 * within the block) is NaN or infinite (float32 RL diverged), else 0. */
int halo__rl_result_check(const float *block, const int64_t dims[3], const int64_t origin[3],
			  const int64_t lo[3], const int64_t hi[3], int ndim, const char *path,
			  halo_error_t *err);
/* How a job ended, once its tasks are done: its first error, a failed
 * task, SIGINT/SIGTERM, or HALO_OK. */
int halo__stream_result(const struct halo_stream_job *job, halo_error_t *err);
/* starpu_task_submit, turning a refusal into the job's error (-1); 0 when
 * submitted, HALO_TASK_ELSEWHERE when another MPI rank runs it. */
int halo__stream_submit(struct starpu_task *t, struct halo_stream_job *job);
/* Waits until fewer than limit output chunks are in flight (or the job
 * stopped), redrawing the progress line meanwhile. */
void halo__stream_wait(struct halo_stream_job *job, int limit, halo_progress_t *p);

/* Registers a StarPU-owned contiguous 3D block (home node -1, allocated
 * on first write) of dims z, y, x; owner: the MPI rank that holds it when
 * the graph is distributed (runtime/mpi.h). */
starpu_data_handle_t halo__block_register(const int64_t dims[3], size_t elsize, int owner);

/* Submits a gather task of src[0..ga->nsrc) (read) into dst (written). ga
 * is malloc'ed and passes to StarPU, which frees it (freed here when the
 * submission fails). */
int halo__gather_submit(struct halo_gather_args *ga, const starpu_data_handle_t *src,
			starpu_data_handle_t dst, halo_error_t *err);

/* The gather of proto (the source's chunk grid: ax) when several MPI ranks
 * share the run: only the parts of source chunks the block needs cross
 * ranks (runtime/gather_cells.c). source(ctx, c, origin, dims, &owner)
 * returns source chunk c's handle, its extent and its owner; dst is
 * written on dst_owner; step and chunk label the tasks in traces. proto
 * is not taken over. */
typedef starpu_data_handle_t (*halo_cell_source_fn)(void *ctx, const int64_t c[3],
						    int64_t origin[3], int64_t dims[3], int *owner);
int halo__gather_cells_submit(const struct halo_gather_args *proto, const struct halo_axis ax[3],
			      halo_cell_source_fn source, void *ctx, int dst_owner,
			      starpu_data_handle_t dst, const char *step, const int64_t chunk[3],
			      halo_error_t *err);

#endif
