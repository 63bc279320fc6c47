/* Task traces: every StarPU task halo submits, with its step and chunk,
 * the worker that ran it, its submission, ready, start and end times,
 * the performance model's expected duration, and the tasks it waited for
 * (the last writers of the data it reads, as StarPU's implicit
 * dependencies order them). Written as Chrome Trace Event JSON
 * (docs/trace.md), which Perfetto and chrome://tracing open and
 * `halo trace` summarises.
 *
 * Every halo task goes through halo_task_submit(), which records it when a
 * trace is active and costs one branch otherwise. */
#ifndef HALO_RUNTIME_TRACE_H
#define HALO_RUNTIME_TRACE_H

#include <stdint.h>
#include <starpu.h>

#include "halo.h"

/* Starts recording (turns StarPU's task profiling on). */
int halo_trace_begin(halo_error_t *err);
int halo_trace_active(void);

/* The step and chunk that the tasks this thread submits next belong to
 * (chunk may be NULL). step is copied. */
void halo_trace_label(const char *step, const int64_t chunk[3]);

/* starpu_task_submit(t), recording t when a trace is active. Returns
 * StarPU's code. */
int halo_task_submit(struct starpu_task *t);

/* starpu_task_insert's arguments, submitted through halo_task_submit. */
#define HALO_TASK_INSERT(cl, ...) halo__task_insert_built(starpu_task_build((cl), __VA_ARGS__))
int halo__task_insert_built(struct starpu_task *t);

/* Waits for every task, writes the trace to path (atomically: a temporary
 * name renamed into place; NULL drops it), stops recording and frees it. */
int halo_trace_end(const char *path, halo_error_t *err);

#endif
