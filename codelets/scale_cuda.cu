/* CUDA implementation of scale/offset (see scale.h): one thread per voxel of
 * a possibly strided block, launched on StarPU's per-worker stream so the
 * task completes asynchronously (STARPU_CUDA_ASYNC). */
#include "config.h"
#include <starpu.h>

extern "C" {
#include "codelets/scale.h"
}
#include "codelets/elementwise_math.h"

static __global__ void scale_kernel(float *p, unsigned nx, unsigned ny, unsigned nz,
				    unsigned ldy, unsigned ldz, float a, float b)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	size_t n = (size_t)nx * ny * nz;
	if (i >= n)
		return;
	unsigned x = (unsigned)(i % nx);
	unsigned y = (unsigned)((i / nx) % ny);
	unsigned z = (unsigned)(i / ((size_t)nx * ny));
	float *v = p + (size_t)z * ldz + (size_t)y * ldy + x;
	*v = halo_math_scale_offset(*v, a, b);
}

extern "C" void halo__scale_cuda(void *buffers[], void *cl_arg)
{
	struct halo_scale_args args;
	starpu_codelet_unpack_args(cl_arg, &args);
	float *p = (float *)STARPU_BLOCK_GET_PTR(buffers[0]);
	unsigned nx = STARPU_BLOCK_GET_NX(buffers[0]);
	unsigned ny = STARPU_BLOCK_GET_NY(buffers[0]);
	unsigned nz = STARPU_BLOCK_GET_NZ(buffers[0]);
	unsigned ldy = STARPU_BLOCK_GET_LDY(buffers[0]);
	unsigned ldz = STARPU_BLOCK_GET_LDZ(buffers[0]);
	size_t n = (size_t)nx * ny * nz;
	if (n == 0)
		return;
	unsigned threads = 256;
	unsigned blocks = (unsigned)((n + threads - 1) / threads);
	scale_kernel<<<blocks, threads, 0, starpu_cuda_get_local_stream()>>>(
		p, nx, ny, nz, ldy, ldz, args.a, args.b);
	cudaError_t status = cudaGetLastError();
	if (status != cudaSuccess)
		STARPU_CUDA_REPORT_ERROR(status);
}
