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
	int64_t chunks_read;    /* stored chunks decoded */
	int64_t chunks_written;
	uint64_t bytes_read, bytes_written;
	double seconds;
} halo_compute_stats_t;

/* Runs the plan of g: every store is written under a temporary name and
 * renamed into place when all tasks succeeded (nothing appears otherwise);
 * scalar reductions get their result in expr->result. On failure the
 * message names the step (and for I/O the file and chunk). */
int halo_plan_execute(halo_plan_t *plan, const halo_compute_opts_t *o, halo_compute_stats_t *st,
		      halo_error_t *err);

/* Lowers and executes g. */
int halo_graph_compute(halo_graph_t *g, const halo_compute_opts_t *o, halo_compute_stats_t *st,
		       halo_error_t *err);

#endif
