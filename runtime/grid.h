/* Partitions of one axis of a volume into blocks: the regular chunk grids
 * of stored arrays, and the irregular compute blocks that map_overlap uses
 * when a halo is deeper than a chunk (dask merges small chunks so that
 * every block is at least as deep as the halo; halo does the same, so its
 * results equal dask's). */
#ifndef HALO_RUNTIME_GRID_H
#define HALO_RUNTIME_GRID_H

#include <stdint.h>

struct halo_axis {
	int64_t n;        /* voxels on the axis */
	int64_t nblocks;
	int64_t *start;   /* nblocks + 1 entries; start[nblocks] == n */
};

/* Blocks of `chunk` voxels, the last one possibly shorter. */
int halo_axis_regular(struct halo_axis *a, int64_t n, int64_t chunk);

/* dask.array.overlap.ensure_minimum_chunksize: merges blocks of `from`
 * smaller than size into their neighbours so that every block holds at
 * least size voxels. Fails (returns -1) when the axis is shorter than size. */
int halo_axis_min_blocks(struct halo_axis *a, const struct halo_axis *from, int64_t size);

int halo_axis_equal(const struct halo_axis *a, const struct halo_axis *b);

/* dask.array.core.common_blockdim for two partitions of one axis: the one
 * with several blocks when the other has one, else the blocks between
 * every boundary of either. -1 when out of memory. */
int halo_axis_common(struct halo_axis *out, const struct halo_axis *a, const struct halo_axis *b);

/* dst becomes a copy of src; -1 when out of memory. */
int halo_axis_copy(struct halo_axis *dst, const struct halo_axis *src);

/* The block holding voxel g (0 <= g < n). */
int64_t halo_axis_find(const struct halo_axis *a, int64_t g);

/* The blocks (sorted, distinct) that voxels [lo, hi) fall in once mapped
 * into the axis by a boundary rule (enum halo_boundary; indices the rule
 * sends nowhere are skipped). list needs room for every block of the axis.
 * Returns how many. */
int64_t halo_axis_blocks_touched(const struct halo_axis *a, int64_t lo, int64_t hi, int boundary,
				 int64_t *list);

/* The shortest block of the axis once each block is widened by depth on
 * both sides (clipped to the axis under boundary none): the smallest FFT
 * a map_overlap over these blocks does along the axis. */
int64_t halo_axis_min_haloed(const struct halo_axis *a, int64_t depth, int boundary);

void halo_axis_free(struct halo_axis *a);

/* The smallest chunk along an axis that halo_chunks_auto picks for a halo
 * of depth voxels per side (before capping at the axis's length): 4 x the
 * depth, rounded up to a multiple of 8. */
static inline int64_t halo_chunks_auto_least(int depth)
{
	int64_t least = (4 * (int64_t)depth + 7) / 8 * 8;
	return least > 8 ? least : 8;
}

/* Chunks for map_overlap work (--chunks auto) on shape with a halo of
 * depth voxels per side: the largest whose haloed block, at
 * bytes_per_voxel (what one task holds per haloed voxel), fits per_task
 * bytes, split further until there are at least min_chunks chunks when
 * the volume allows. The largest axis is halved first, so chunks stay
 * near cubes; no axis goes below halo_chunks_auto_least (there the halo
 * would outweigh the chunk); sizes are multiples of 8, which FFTs like,
 * unless they cover a whole axis or a multiple of 8 would leave a last
 * chunk under half the others (then a size a little smaller that leaves
 * none). Returns 1 where even those smallest
 * chunks hold more than per_task bytes, else 0. */
int halo_chunks_auto(const int64_t shape[3], const int depth[3], double bytes_per_voxel,
		     uint64_t per_task, int64_t min_chunks, int64_t out[3]);

#endif
