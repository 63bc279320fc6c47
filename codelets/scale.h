/* The scale/offset codelet: y = a*x + b in place on a float32 3D block.
 * It is the smallest real codelet halo has, used by map_blocks and by the
 * runtime tests that check scheduling on 1..N workers. */
#ifndef HALO_CODELET_SCALE_H
#define HALO_CODELET_SCALE_H

#include <starpu.h>

struct halo_scale_args {
	float a, b;
};

/* One buffer, STARPU_RW, block interface of float; one struct
 * halo_scale_args passed with starpu_task_insert(..., STARPU_VALUE, &args,
 * sizeof args). */
extern struct starpu_codelet halo_scale_cl;

void halo__scale_cpu(void *buffers[], void *cl_arg);
#ifdef HALO_USE_CUDA
void halo__scale_cuda(void *buffers[], void *cl_arg);
#endif

#endif
