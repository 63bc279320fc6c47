/* The uniform (box mean) filter, map_overlap's cheapest real kernel: what
 * scipy.ndimage.uniform_filter computes on the haloed block (mode
 * 'reflect' at the block's edges, one pass per axis), trimmed back to the
 * chunk. It lets pipelines smooth or background-subtract, and lets tests
 * check halos and boundaries against dask with a kernel they can run. */
#ifndef HALO_CODELET_FILTER_H
#define HALO_CODELET_FILTER_H

#include <stdint.h>
#include <starpu.h>

struct halo_filter_args {
	int size[3];  /* window per axis (odd; 1 leaves the axis alone) */
	int trim[3];  /* the chunk's first voxel inside the haloed block */
	int valid[3]; /* its voxels inside the array */
	int *failed;  /* set when out of memory */
};

/* buffers: haloed float32 block (R), chunk float32 block (W). */
extern struct starpu_codelet halo_uniform_cl;

/* The arithmetic: the filtered in (dims n, C order) into out, a buffer of
 * the same size. Returns -1 when out of memory. */
int halo_uniform_run(const float *in, float *out, const int64_t n[3], const int size[3]);

#endif
