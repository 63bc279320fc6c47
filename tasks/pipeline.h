/* Pipeline files: the JSON form of a graph for `halo run` and `halo graph`
 * (the format is documented in docs/pipeline.md). */
#ifndef HALO_TASKS_PIPELINE_H
#define HALO_TASKS_PIPELINE_H

#include "halo.h"
#include "tasks/expr.h"

/* Parses file into a new graph (sources' metadata are read, nothing else).
 * Paths in the file are relative to its directory. Errors read
 * "FILE: step "NAME": problem". */
int halo_pipeline_load(const char *file, halo_graph_t **out, halo_error_t *err);

#endif
