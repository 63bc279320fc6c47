/* Computing a graph on the running StarPU: lowering to a plan, then
 * submitting its chunk tasks region by region with bounded memory, and
 * committing every output only when all of them are complete. */
#ifndef HALO_TASKS_EXECUTE_H
#define HALO_TASKS_EXECUTE_H

#include <stdint.h>

#include "halo.h"
#include "tasks/plan.h"

typedef struct halo_compute_opts {
	uint64_t memory;   /* bytes of chunks in flight; 0: a quarter of RAM */
	int quiet;         /* no progress line */
	const char *label; /* progress label */
} halo_compute_opts_t;

typedef struct halo_compute_stats {
	int64_t tasks;          /* StarPU tasks submitted */
	int64_t chunks_read;    /* input chunks decoded (not a pyramid's own levels) */
	int64_t chunks_written;
	uint64_t bytes_read, bytes_written;
	int64_t pyramid_chunks; /* of OME-Zarr pyramids, also in the counts above */
	double seconds;         /* pyramids and outputs' metadata included */
} halo_compute_stats_t;

/* Runs the plan of g: every store is written under a temporary name and
 * renamed into place when all tasks succeeded (nothing appears otherwise);
 * scalar reductions get their result in expr->result. On failure the
 * message names the step (and for I/O the file and chunk). */
int halo_plan_execute(halo_plan_t *plan, const halo_compute_opts_t *o, halo_compute_stats_t *st,
		      halo_error_t *err);

/* What halo_plan_execute would refuse before computing anything: a store
 * over an input or another store, an output that exists without overwrite
 * or whose folder is missing, a graph over a STARPU_LIMIT_CPU_MEM set by
 * hand (memory: --memory, which replaces it; 0 if not given). Nothing is
 * written. */
int halo_plan_check(halo_plan_t *plan, uint64_t memory, halo_error_t *err);

/* How many output chunks a run keeps in flight: at most lim (what the
 * memory budget holds) and cap (enough for the workers). With GPUs that
 * keep every compute task (speedup, a CPU worker's time over a GPU's, of
 * at least cap / ncuda; or --ncpu 0) no more than keeps the workers busy,
 * max(24, workers + 4 + 4 * ncuda): see execute.c. ncuda 0: no GPU, or
 * the number is fixed (HALO_INFLIGHT). */
int halo__inflight_limit(uint64_t lim, uint64_t cap, uint64_t workers, uint64_t ncuda,
			 double speedup, int gpus_alone);

/* Lowers and executes g. */
int halo_graph_compute(halo_graph_t *g, const halo_compute_opts_t *o, halo_compute_stats_t *st,
		       halo_error_t *err);

#endif
