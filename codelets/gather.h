/* The gather codelet: assembles one destination chunk from the source
 * chunks that overlap it, converting the element type on the way and, for
 * pyramids, averaging factor x factor blocks. It is rechunk, astype and
 * downsample in one memory pass, and with a boundary rule it assembles the
 * haloed chunks of map_overlap. Chunks are contiguous 3D blocks (z, y, x);
 * coordinates are global voxel indices of the two volumes, and the
 * sources of one task are listed in z, y, x nesting order of their chunk
 * grid positions. */
#ifndef HALO_CODELET_GATHER_H
#define HALO_CODELET_GATHER_H

#include <stdint.h>
#include <starpu.h>

#include "util/dtype.h"

/* What lies beyond the source volume's faces, as in dask.array.overlap:
 * NONE: nothing (the destination is padding beyond dst_shape, or the caller
 * clipped the region); PERIODIC wraps; REFLECT mirrors including the edge
 * voxel (numpy's 'symmetric'); NEAREST repeats the edge; CONSTANT is the
 * value `constant`. */
enum halo_boundary {
	HALO_BOUNDARY_NONE, HALO_BOUNDARY_PERIODIC, HALO_BOUNDARY_REFLECT,
	HALO_BOUNDARY_NEAREST, HALO_BOUNDARY_CONSTANT,
};

/* Source index for global index g on an axis of n voxels, or -1 when the
 * boundary gives the constant. */
static inline int64_t halo_boundary_map(int64_t g, int64_t n, int boundary)
{
	if (g >= 0 && g < n)
		return g;
	switch (boundary) {
	case HALO_BOUNDARY_PERIODIC: {
		int64_t r = g % n;
		return r < 0 ? r + n : r;
	}
	case HALO_BOUNDARY_REFLECT: {
		int64_t r = g % (2 * n);
		if (r < 0)
			r += 2 * n;
		return r < n ? r : 2 * n - 1 - r;
	}
	case HALO_BOUNDARY_NEAREST:
		return g < 0 ? 0 : n - 1;
	default:
		return -1;
	}
}

struct halo_gather_src {
	int64_t origin[3]; /* first voxel of this source chunk */
	int64_t dims[3];   /* its block dimensions */
};

struct halo_gather_args {
	int nsrc;
	halo_dtype_kind_t src_kind, dst_kind;
	int64_t src_shape[3];  /* source volume; voxels beyond it are ignored */
	int64_t dst_origin[3]; /* first voxel of the destination chunk */
	int64_t dst_dims[3];   /* destination block dimensions */
	int64_t dst_shape[3];  /* destination volume; voxels beyond get fill */
	int factor[3];         /* dst voxel v covers src [v*f, v*f + f) */
	double fill;           /* padding beyond dst_shape */
	int boundary;          /* enum halo_boundary: beyond the source's faces */
	double constant;       /* HALO_BOUNDARY_CONSTANT's value */
	int *failed;           /* set when the task fails (out of memory, a GPU
				* error); may be NULL */
	struct halo_gather_src src[]; /* nsrc entries, in buffer order */
};

static inline size_t halo_gather_args_size(int nsrc)
{
	return sizeof(struct halo_gather_args) + (size_t)nsrc * sizeof(struct halo_gather_src);
}

/* The key of a's entries in gather's performance model (what its time
 * follows; see gather.c), for tasks that gather too. */
uint32_t halo_gather_footprint(const struct halo_gather_args *a);

/* Buffers: nsrc sources (STARPU_R) then the destination (STARPU_W), all
 * block interfaces; cl_arg is a struct halo_gather_args. */
extern struct starpu_codelet halo_gather_cl;

/* The arithmetic, independent of StarPU: src[i] points at source chunk i.
 * Returns 0, or -1 when out of memory (dst is then incomplete). */
int halo_gather_run(const struct halo_gather_args *a, const void *const *src, void *dst);

/* What a gather task does when it cannot complete: sets *a->failed. */
static inline void halo_gather_fail(const struct halo_gather_args *a)
{
	if (a->failed)
		__atomic_store_n(a->failed, 1, __ATOMIC_RELAXED);
}

/* The per-axis tables of gather_math.h for a gather that does not average
 * (factor 1): space holds halo__gather_space(a) int64 values, and p's
 * pointers point into it. */
struct halo_gather_plan;
size_t halo__gather_space(const struct halo_gather_args *a);
void halo__gather_plan(const struct halo_gather_args *a, int64_t *space,
		       struct halo_gather_plan *p);

#ifdef HALO_USE_CUDA
void halo__gather_cuda(void *buffers[], void *cl_arg);
#endif

#endif
