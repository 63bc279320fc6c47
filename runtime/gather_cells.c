/* The gather of one destination block on several MPI ranks (see
 * stream_job.h). The block is cut, axis by axis, into runs that one source
 * chunk fills in order (the boundary rule applied at the array's faces);
 * a cell of the block is filled, and converted to the destination type, by
 * the owner of its source chunk, and the owner of the block joins the
 * cells. So what crosses ranks is the part of each source chunk the block
 * needs (a halo slab), not the chunk. */
#include "config.h"
#include "runtime/stream_job.h"
#include "runtime/trace.h"

#include <stdlib.h>
#include <string.h>

/* Runs of positions [0, n) of an axis of the block starting at global o
 * whose voxels one source block holds: run k is [bounds[k], bounds[k+1])
 * with source block blk[k] (-1: the boundary's constant; -2: padding
 * beyond the destination, left to the join). Returns the count. */
static int axis_runs(const struct halo_axis *ax, int64_t o, int64_t n, int64_t limit,
		     int64_t src_n, int boundary, int64_t *bounds, int64_t *blk)
{
	int k = 0;
	int64_t prev_b = -3;
	for (int64_t t = 0; t < n; t++) {
		int64_t g = o + t, m, b;
		if (t >= limit) {
			m = -1;
			b = -2;
		} else {
			m = boundary == HALO_BOUNDARY_NONE ? (g >= 0 && g < src_n ? g : -1)
							   : halo_boundary_map(g, src_n, boundary);
			b = m < 0 ? -1 : halo_axis_find(ax, m);
		}
		/* A cell may map through the boundary in any order: it only
		 * needs one source chunk. */
		if (t == 0 || b != prev_b) {
			bounds[k] = t;
			blk[k] = b;
			k++;
		}
		prev_b = b;
	}
	bounds[k] = n;
	return k;
}

int halo__gather_cells_submit(const struct halo_gather_args *proto, const struct halo_axis ax[3],
			      halo_cell_source_fn source, void *ctx, int dst_owner,
			      starpu_data_handle_t dst, const char *step, const int64_t chunk[3],
			      halo_error_t *err)
{
	const int64_t *o = proto->dst_origin, *n = proto->dst_dims;
	int mapped = proto->boundary != HALO_BOUNDARY_NONE;
	int nr[3];
	int64_t *bounds[3] = {NULL, NULL, NULL}, *blk[3] = {NULL, NULL, NULL};
	int rc = HALO_OK;
	for (int d = 0; d < 3; d++) {
		bounds[d] = malloc((size_t)(n[d] + 1) * sizeof **bounds);
		blk[d] = malloc((size_t)(n[d] + 1) * sizeof **blk);
		if (!bounds[d] || !blk[d]) {
			rc = halo_error_set(err, HALO_ENOMEM, "out of memory submitting tasks");
			goto out;
		}
		/* Mapped blocks have no padding (as halo_gather_run). */
		int64_t limit = mapped ? n[d] : proto->dst_shape[d] - o[d];
		nr[d] = axis_runs(&ax[d], o[d], n[d], limit, proto->src_shape[d], proto->boundary,
				  bounds[d], blk[d]);
	}
	int most = nr[0] * nr[1] * nr[2], ncell = 0;
	struct halo_gather_args *join = calloc(1, halo_gather_args_size(most));
	starpu_data_handle_t *cells = malloc((size_t)(most ? most : 1) * sizeof *cells);
	if (!join || !cells) {
		free(join);
		free(cells);
		rc = halo_error_set(err, HALO_ENOMEM, "out of memory submitting tasks");
		goto out;
	}
	*join = *proto;
	join->src_kind = proto->dst_kind;
	join->boundary = HALO_BOUNDARY_NONE;
	memcpy(join->src_shape, proto->dst_shape, sizeof join->src_shape);
	size_t elsize = halo_dtype_size((halo_dtype_t){proto->dst_kind, 0});
	for (int i0 = 0; i0 < nr[0] && !rc; i0++)
		for (int i1 = 0; i1 < nr[1] && !rc; i1++)
			for (int i2 = 0; i2 < nr[2] && !rc; i2++) {
				int ii[3] = {i0, i1, i2}, pad = 0, inside = 1;
				int64_t c[3], co[3], cd[3];
				for (int d = 0; d < 3; d++) {
					c[d] = blk[d][ii[d]];
					pad |= c[d] == -2;
					inside &= c[d] >= 0;
					co[d] = o[d] + bounds[d][ii[d]];
					cd[d] = bounds[d][ii[d] + 1] - bounds[d][ii[d]];
				}
				if (pad)
					continue; /* the join fills padding */
				struct halo_gather_args *fa = calloc(1, halo_gather_args_size(1));
				if (!fa) {
					rc = halo_error_set(err, HALO_ENOMEM, "out of memory submitting tasks");
					break;
				}
				*fa = *proto;
				fa->nsrc = inside;
				memcpy(fa->dst_origin, co, sizeof co);
				memcpy(fa->dst_dims, cd, sizeof cd);
				for (int d = 0; d < 3; d++)
					fa->dst_shape[d] = co[d] + cd[d];
				/* Filled where its data lives: by the source chunk's
				 * owner, or (the boundary's constant) by the block's. */
				starpu_data_handle_t src = NULL;
				int who = dst_owner;
				if (inside)
					src = source(ctx, c, fa->src[0].origin, fa->src[0].dims, &who);
				starpu_data_handle_t cell = halo__block_register(cd, elsize, who);
				halo_trace_label(step, chunk); /* source() may have submitted */
				rc = halo__gather_submit(fa, &src, cell, err);
				cells[ncell] = cell;
				for (int d = 0; d < 3; d++) {
					join->src[ncell].origin[d] = co[d];
					join->src[ncell].dims[d] = cd[d];
				}
				ncell++;
			}
	join->nsrc = ncell;
	halo_trace_label(step, chunk);
	if (!rc)
		rc = halo__gather_submit(join, cells, dst, err);
	else
		free(join);
	for (int i = 0; i < ncell; i++)
		starpu_data_unregister_submit(cells[i]);
	free(cells);
out:
	for (int d = 0; d < 3; d++) {
		free(bounds[d]);
		free(blk[d]);
	}
	return rc;
}
