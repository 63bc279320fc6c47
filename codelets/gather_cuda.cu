/* CUDA implementation of gather (gather.h) for the cases without
 * averaging: rechunking, type conversion and the haloed chunks of
 * map_overlap, so chunks read once stay on the GPU between the assembly and
 * the kernels that use them. The host builds the per-axis tables (as the
 * CPU does) and one launch applies gather_math.h's rule to every voxel. */
#include "config.h"

#include <starpu.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "codelets/gather.h"
}
#include "codelets/gather_math.h"

static __global__ void gather_kernel(struct halo_gather_plan p, const void *const *src, void *dst,
				     size_t total)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= total)
		return;
	int64_t x = (int64_t)(i % (size_t)p.n[2]), y = (int64_t)(i / (size_t)p.n[2] % (size_t)p.n[1]);
	int64_t z = (int64_t)(i / ((size_t)p.n[1] * (size_t)p.n[2]));
	halo_gather_voxel(&p, src, z, y, x, dst);
}

static const int64_t *rebase(const int64_t *q, const int64_t *from, char *to)
{
	return (const int64_t *)(to + ((const char *)q - (const char *)from));
}

extern "C" void halo__gather_cuda(void *buffers[], void *cl_arg)
{
	const struct halo_gather_args *a = (const struct halo_gather_args *)cl_arg;
	cudaStream_t stream = starpu_cuda_get_local_stream();
	size_t nspace = halo__gather_space(a);
	size_t ptrs = (size_t)(a->nsrc > 0 ? a->nsrc : 1) * sizeof(void *);
	size_t bytes = nspace * sizeof(int64_t) + ptrs;
	/* One upload: the tables, then the sources' device pointers. */
	char *host = (char *)malloc(bytes);
	if (!host) {
		halo_gather_fail(a);
		return;
	}
	int64_t *space = (int64_t *)host;
	struct halo_gather_plan p;
	halo__gather_plan(a, space, &p);
	void **src = (void **)(host + nspace * sizeof(int64_t));
	for (int i = 0; i < a->nsrc; i++)
		src[i] = (void *)STARPU_BLOCK_GET_PTR(buffers[i]);
	char *dev = NULL;
	if (cudaMallocAsync((void **)&dev, bytes, stream) != cudaSuccess) {
		(void)cudaGetLastError(); /* not the next task's error */
		free(host);
		halo_gather_fail(a);
		return;
	}
	/* From pageable memory the copy is staged before the call returns, so
	 * host can be freed at once. */
	cudaError_t rc = cudaMemcpyAsync(dev, host, bytes, cudaMemcpyHostToDevice, stream);
	for (int d = 0; d < 3; d++) {
		p.pos[d] = rebase(p.pos[d], space, dev);
		p.off[d] = rebase(p.off[d], space, dev);
	}
	p.dims = rebase(p.dims, space, dev);
	free(host);
	size_t total = (size_t)(a->dst_dims[0] * a->dst_dims[1] * a->dst_dims[2]);
	if (rc == cudaSuccess && total > 0) {
		gather_kernel<<<(unsigned)((total + 255) / 256), 256, 0, stream>>>(
			p, (const void *const *)(dev + nspace * sizeof(int64_t)),
			(void *)STARPU_BLOCK_GET_PTR(buffers[a->nsrc]), total);
		rc = cudaGetLastError(); /* a launch failure, e.g. no kernel for this GPU */
	}
	if (rc != cudaSuccess) {
		(void)cudaGetLastError();
		halo_gather_fail(a);
	}
	cudaFreeAsync(dev, stream);
}
