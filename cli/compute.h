/* Running a graph for a command (see compute.c). */
#ifndef HALO_CLI_COMPUTE_H
#define HALO_CLI_COMPUTE_H

#include <stdint.h>

#include "io/volume.h"
#include "tasks/execute.h"
#include "tasks/plan.h"

/* Runs g as halo_graph_compute does, after a warning when the chunks that
 * stay resident and one output chunk in flight need more than o->memory,
 * which the run then exceeds (on rank 0 alone under mpirun; --quiet
 * silences progress, not warnings). */
int halo_cli_compute(halo_graph_t *g, const halo_compute_opts_t *o, halo_compute_stats_t *st,
		     halo_error_t *err);
/* The warning, when plan's resident chunks and one output chunk in flight
 * exceed memory (--memory, or 0 for the default budget). */
void halo_cli_warn_memory(halo_plan_t *plan, uint64_t memory);
/* A note on stderr when in's voxel size is known and the output format
 * out has no place for it (plain Zarr; keeps: what would keep it), or
 * when out keeps a z spacing that in does not store. */
void halo_cli_note_voxel(const char *in, const halo_volume_info_t *info, halo_format_t out,
			 const char *keeps);

#endif
