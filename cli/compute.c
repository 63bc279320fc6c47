/* Running a graph for a command (convert, deconvolve, run): the warning
 * when what must stay resident exceeds --memory, then the plan; the notes
 * when an output cannot keep the input's voxel size, or gets a z spacing
 * the input does not store. */
#include "config.h"
#include "cli/compute.h"
#include "io/volume.h"
#include "runtime/runtime.h"
#include "runtime/stream.h"
#include "tasks/plan.h"
#include "util/signals.h"
#include "util/util.h"

#include <limits.h>
#include <stdio.h>

void halo_cli_warn_memory(halo_plan_t *plan, uint64_t memory)
{
	/* The bound is exceeded rather than never met (StarPU would wait
	 * forever): a wide volume's layer of input chunks, which the halos
	 * of the next layer read, held 2.5 GB under --memory 1G, unsaid. */
	uint64_t front, per, budget = memory ? memory : halo_memory_default();
	halo_plan_memory(plan, &front, &per, NULL);
	if (front + per <= budget || halo_interrupted()) /* then the figures are cut short */
		return;
	/* An input's stored chunk larger than the array, decoded whole, is
	 * no chunk that the command's --chunks shrink. */
	uint64_t whole = 0;
	for (int i = 0; i < plan->n; i++)
		if (plan->nodes[i]->kind == HALO_PN_SOURCE && plan->nodes[i]->expr->reader) {
			uint64_t w = halo_reader_scratch_bytes(plan->nodes[i]->expr->reader);
			whole = w > whole ? w : whole;
		}
	/* The shared chunks are mostly layers along the walk's outer axis. */
	char a[32], b[32], c[32], d[32], why[128];
	if (2 * whole > per)
		snprintf(why, sizeof why, "%s of it reads and decodes a stored chunk of the input, larger "
			 "than the array, whole", halo__bytes(whole, d, sizeof d));
	else
		snprintf(why, sizeof why, "a larger budget, or smaller chunks%s, would fit it",
			 front > per ? " along the first axis" : "");
	char shared[128] = "";
	if (front) /* a plain copy shares none */
		snprintf(shared, sizeof shared, "%s of chunks shared by neighbouring chunks (halos, "
			 "rechunks) stay resident and ", halo__bytes(front, a, sizeof a));
	fprintf(stderr, "halo: warning: %seach output chunk in flight holds %s, more than %s %s; "
			"%s\n", shared, halo__bytes(per, b, sizeof b),
		memory ? "--memory" : "the default memory budget (a quarter of the memory it may use)",
		halo__bytes(budget, c, sizeof c), why);
}

void halo_cli_note_voxel(const char *in, const halo_volume_info_t *info, halo_format_t out,
			 const char *keeps)
{
	const double *v = info->voxel;
	char shown[PATH_MAX], size[96];
	/* A stack of planes with a pixel size, or a spacing without one:
	 * OME viewers take the sizes written as measured. (y taken from x
	 * alone is the convention of square pixels.) */
	int no_z = info->ndim == 3 && (info->guessed & 1), no_xy = (info->guessed & 6) == 6;
	if (out != HALO_FMT_ZARR && (no_z || no_xy)) {
		fprintf(stderr, "halo: note: %s stores no %s; the output's voxel is %gx%gx%g %s, "
				"taken as ImageJ takes it\n", halo__shown(in, shown, sizeof shown),
			no_z && no_xy ? "z spacing or pixel size" : no_z ? "z spacing" : "pixel size",
			v[0], v[1], v[2], info->unit);
		return;
	}
	if (out != HALO_FMT_ZARR || (!info->unit[0] && v[0] == 1 && v[1] == 1 && v[2] == 1))
		return;
	if (info->ndim < 3) /* as halo info shows a 2D image's */
		snprintf(size, sizeof size, "%gx%g", v[1], v[2]);
	else
		snprintf(size, sizeof size, "%gx%gx%g", v[0], v[1], v[2]);
	fprintf(stderr, "halo: note: %s's voxel size (%s%s%s) is not kept: a plain Zarr has no "
			"place for it (%s keeps it)\n", halo__shown(in, shown, sizeof shown), size,
		info->unit[0] ? " " : "", info->unit, keeps);
}

int halo_cli_compute(halo_graph_t *g, const halo_compute_opts_t *o, halo_compute_stats_t *st,
		     halo_error_t *err)
{
	halo_plan_t *plan;
	int rc = halo_plan_build(g, &plan, err);
	if (rc)
		return rc;
	if (halo__runtime_launched_rank() == 0)
		halo_cli_warn_memory(plan, o->memory);
	rc = halo_interrupted() ? halo_error_set(err, HALO_EINTR, "interrupted; no output was written")
				: halo_plan_execute(plan, o, st, err);
	halo_plan_free(plan);
	return rc;
}
