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

/* Every file a run of g touches: file (the pipeline), what its steps read
 * (sources, PSFs) and what they write; NULL-terminated, malloc'd (the
 * strings are g's), or NULL when out of memory. */
const char **halo_pipeline_paths(const char *file, const halo_graph_t *g);

#endif
