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

/* The Chrome trace process whose tracks (one per link) hold the data
 * transfers; their events have "cat":"transfer". */
#define HALO_TRACE_TRANSFER_PID 1000
/* A link's tracks there: tid = HALO_TRACE_LANE_TIDS * lane +
 * HALO_TRACE_NODES * src + dst, lanes holding the transfers that overlap. */
#define HALO_TRACE_NODES 64
#define HALO_TRACE_LANE_TIDS (HALO_TRACE_NODES * HALO_TRACE_NODES)
/* A trace joined from several MPI ranks moves rank r's pids up by r times
 * this (and its worker ids by r * 1000, its task ids by r * 1e9). */
#define HALO_TRACE_RANK_PIDS 100000

/* Starts recording (turns StarPU's task profiling on). fxt: StarPU records
 * an FxT trace, from which halo_trace_end reads each data transfer. */
int halo_trace_begin(int fxt, halo_error_t *err);
/* Waits for every task and forgets what was recorded so far: the trace
 * holds what follows (halo bench rl traces its run after the warm-up). */
void halo_trace_restart(void);

/* The step and chunk that the tasks this thread submits next belong to
 * (chunk may be NULL). step is copied. */
void halo_trace_label(const char *step, const int64_t chunk[3]);

/* starpu_task_submit(t), recording t when a trace is active. Returns
 * StarPU's code (t is destroyed when it is negative), or
 * HALO_TASK_ELSEWHERE when another MPI rank runs it (runtime/mpi.h; t is
 * gone then too). */
enum { HALO_TASK_ELSEWHERE = 1 };
int halo_task_submit(struct starpu_task *t);

/* starpu_task_insert's arguments, submitted through halo_task_submit;
 * 0 also when another rank runs it. */
#define HALO_TASK_INSERT(cl, ...) halo__task_insert_built(starpu_task_build((cl), __VA_ARGS__))
int halo__task_insert_built(struct starpu_task *t);

/* Whether path may take a trace: absent, empty, or a trace halo wrote
 * (its first bytes say), never a user's other file. */
int halo_trace_replaceable(const char *path);

/* Marks the task running on the calling thread as skipped: it returned
 * without doing its work because the run had already failed or been
 * interrupted (a trace of a failed run shows how far it got). */
void halo_trace_skipped(void);

/* Waits for every task, writes the trace to path (atomically: a temporary
 * name renamed into place; NULL drops it), stops recording and frees it.
 * failed: the run's error, NULL when it succeeded; the trace says which.
 * stop (when not NULL) shuts StarPU down once the trace no longer needs it;
 * then, with fxt_dir, the data transfers are read from the FxT file StarPU
 * wrote there and added on tracks per link. */
int halo_trace_end(const char *path, const char *fxt_dir, const halo_error_t *failed,
		   void (*stop)(void *), void *stop_arg, halo_error_t *err);

/* Several MPI ranks: where rank r writes its part of the trace at path
 * (path with ".rankR" before its extension), and rank 0's joining of the
 * parts into path once every rank has written its own. */
void halo__trace_rank_path(const char *path, int rank, char *out, size_t len);
int halo__trace_merge(const char *path, int ranks, halo_error_t *err);

#endif
