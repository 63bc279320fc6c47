/* Reading a halo trace (runtime/trace.c writes it; docs/trace.md) and the
 * figures `halo trace` prints: per codelet and worker kind, per worker,
 * per link, and the critical path. */
#ifndef HALO_CLI_TRACE_STATS_H
#define HALO_CLI_TRACE_STATS_H

#include <jansson.h>
#include <stdint.h>

#include "halo.h"
#include "runtime/trace.h"

struct trace_task {
	uint64_t id;
	const char *codelet, *step; /* borrowed from the JSON */
	int worker;
	int64_t chunk[3];
	int has_chunk;
	int skipped; /* did no work: the run had already failed or been interrupted */
	double submit, ready, start, end, expected; /* us; expected < 0: unknown */
	size_t ndeps;
	const uint64_t *deps;
};

struct trace_worker {
	int id, cuda;
	char name[128];
	double busy;
};

/* One data transfer (traces recorded where data moves between memory
 * nodes): on track `link` (tid), named after the step whose data it is. */
struct trace_transfer {
	int link;
	double start, end, bytes;
	const char *step; /* borrowed */
};

struct trace_link {
	int id;
	char name[96]; /* "node 0, RAM -> node 1, CUDA 0" */
};

struct trace {
	json_t *root;
	struct trace_transfer *transfers;
	size_t ntransfers;
	struct trace_link *links;
	int nlinks;
	struct trace_task *tasks; /* sorted by id */
	size_t n;
	uint64_t *deps;           /* storage for every task's deps */
	struct trace_worker *workers;
	int nworkers;
	double makespan;
	const char *scheduler;
	const char *outcome, *error; /* "ok", "failed" or "interrupted"; error or NULL */
	size_t skipped;              /* tasks that did no work */
};

/* Loads and checks a trace; a file that is not JSON, or JSON that is not a
 * halo trace, is an error naming the file. */
int trace_load(const char *path, struct trace *tr, halo_error_t *err);
void trace_free(struct trace *tr);

/* Per codelet and worker kind. */
struct trace_group {
	const char *codelet; /* the trace's own string: valid while it is loaded */
	int cuda;
	size_t count;
	double total, mean, p50, p95;
	double model_error; /* mean |measured - expected| / expected; < 0: no estimates */
};

/* Groups sorted by total time, largest first; *out is malloc'ed. Skipped
 * tasks are left out: their microseconds would pass for the codelet's. */
int trace_groups(const struct trace *tr, struct trace_group **out, size_t *n);

/* The longest chain of dependent tasks by duration: its length (us) and
 * the tasks on it, first to last (*path malloc'ed). */
double trace_critical_path(const struct trace *tr, size_t **path, size_t *len);

/* Summary of one trace as JSON (what `halo trace summary --json` prints). */
json_t *trace_summary_json(const struct trace *tr);

#endif
