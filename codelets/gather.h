/* The gather codelet: assembles one destination chunk from the source
 * chunks that overlap it, converting the element type on the way and, for
 * pyramids, averaging factor x factor blocks. It is rechunk, astype and
 * downsample in one memory pass. Chunks are contiguous 3D blocks (z, y, x);
 * coordinates are global voxel indices of the two volumes. */
#ifndef HALO_CODELET_GATHER_H
#define HALO_CODELET_GATHER_H

#include <stdint.h>
#include <starpu.h>

#include "util/dtype.h"

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
	double fill;
	struct halo_gather_src src[]; /* nsrc entries, in buffer order */
};

static inline size_t halo_gather_args_size(int nsrc)
{
	return sizeof(struct halo_gather_args) + (size_t)nsrc * sizeof(struct halo_gather_src);
}

/* Buffers: nsrc sources (STARPU_R) then the destination (STARPU_W), all
 * block interfaces; cl_arg is a struct halo_gather_args. */
extern struct starpu_codelet halo_gather_cl;

/* The arithmetic, independent of StarPU: src[i] points at source chunk i. */
void halo_gather_run(const struct halo_gather_args *a, const void *const *src, void *dst);

#endif
