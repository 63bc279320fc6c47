/* The arithmetic of halo's elementwise kernels, written once for the CPU and
 * CUDA implementations: nvcc compiles these as __host__ __device__ functions,
 * a C compiler as plain inline functions, so the CPU tests exercise exactly
 * the math the GPU runs. */
#ifndef HALO_ELEMENTWISE_MATH_H
#define HALO_ELEMENTWISE_MATH_H

#include "util/hd.h"

/* y = a * x + b, the map_blocks "scale/offset" kernel. */
HALO_HD static inline float halo_math_scale_offset(float x, float a, float b)
{
	return a * x + b;
}

#endif
