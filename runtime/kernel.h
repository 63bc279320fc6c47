/* map_overlap kernels as the runtime submits them: a kernel turns the
 * haloed float32 block of a chunk into the chunk's float32 result with
 * one or more StarPU tasks (Richardson-Lucy: runtime/deconvolve.c; the
 * uniform filter: tasks/execute.c). */
#ifndef HALO_RUNTIME_KERNEL_H
#define HALO_RUNTIME_KERNEL_H

#include <starpu.h>

#include "halo.h"

/* submit: haloed is read, out written (its whole buffer); trim is where
 * the chunk's own voxels start inside the haloed block, valid how many of
 * them lie in the array. Tasks set *failed when out of memory. */
typedef struct halo_overlap_kernel {
	int (*submit)(void *ctx, starpu_data_handle_t haloed, starpu_data_handle_t out,
		      const int trim[3], const int valid[3], int *failed, halo_error_t *err);
	/* When set, called once before the stream reads anything, with the
	 * haloed and result shapes most chunks have: for one-off device setup
	 * that would otherwise queue behind the first reads, and StarPU's
	 * view of the GPUs' speedup (see rl_prepare). */
	int (*prepare)(void *ctx, const int haloed[3], const int out[3], halo_error_t *err);
	void *ctx;
} halo_overlap_kernel_t;

#endif
