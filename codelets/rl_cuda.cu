/* CUDA implementation of the rl codelet (see rl.h): cuFFT R2C/C2R plans and
 * device work buffers kept per worker thread and shape, bound to StarPU's
 * per-worker stream, so a task is a sequence of asynchronous launches with
 * no host round trip (STARPU_CUDA_ASYNC). An iteration is 2 R2C + 2 C2R
 * transforms and four small elementwise kernels whose arithmetic is
 * rl_math.h, the same functions the CPU implementation and its tests run. */
#include "config.h"

#include <cufft.h>
#include <pthread.h>
#include <starpu.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "codelets/rl.h"
}
#include "codelets/rl_math.h"

#define MAX_SHAPES 4

struct gpu_work {
	int n[3];
	size_t nreal, ncplx;
	float *est, *tmp;
	cufftComplex *spec;
	cufftHandle r2c, c2r;
	int ready;
};

struct gpu_cache {
	struct gpu_work work[MAX_SHAPES];
	int count;
};

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void work_free(struct gpu_work *w)
{
	if (!w->ready)
		return;
	cufftDestroy(w->r2c);
	cufftDestroy(w->c2r);
	cudaFree(w->est);
	cudaFree(w->tmp);
	cudaFree(w->spec);
	memset(w, 0, sizeof *w);
}

static void cache_free(void *v)
{
	struct gpu_cache *c = (struct gpu_cache *)v;
	for (int i = 0; i < c->count; i++)
		work_free(&c->work[i]);
	free(c);
}

static void make_key(void)
{
	pthread_key_create(&cache_key, cache_free);
}

/* The calling worker's plans and buffers for shape n; NULL on failure. */
static struct gpu_work *gpu_work_get(const int n[3], cudaStream_t stream)
{
	pthread_once(&cache_once, make_key);
	struct gpu_cache *c = (struct gpu_cache *)pthread_getspecific(cache_key);
	if (!c) {
		c = (struct gpu_cache *)calloc(1, sizeof *c);
		if (!c || pthread_setspecific(cache_key, c)) {
			free(c);
			return NULL;
		}
	}
	for (int i = 0; i < c->count; i++)
		if (!memcmp(c->work[i].n, n, sizeof c->work[i].n))
			return &c->work[i];
	if (c->count == MAX_SHAPES) {
		work_free(&c->work[0]);
		memmove(&c->work[0], &c->work[1], (MAX_SHAPES - 1) * sizeof c->work[0]);
		memset(&c->work[MAX_SHAPES - 1], 0, sizeof c->work[0]);
		c->count--;
	}
	struct gpu_work *w = &c->work[c->count];
	memcpy(w->n, n, sizeof w->n);
	w->nreal = (size_t)n[0] * n[1] * n[2];
	w->ncplx = (size_t)n[0] * n[1] * (n[2] / 2 + 1);
	if (cudaMalloc((void **)&w->est, w->nreal * sizeof(float)) != cudaSuccess ||
	    cudaMalloc((void **)&w->tmp, w->nreal * sizeof(float)) != cudaSuccess ||
	    cudaMalloc((void **)&w->spec, w->ncplx * sizeof(cufftComplex)) != cudaSuccess) {
		cudaFree(w->est);
		cudaFree(w->tmp);
		memset(w, 0, sizeof *w);
		return NULL;
	}
	if (cufftPlan3d(&w->r2c, n[0], n[1], n[2], CUFFT_R2C) != CUFFT_SUCCESS ||
	    cufftPlan3d(&w->c2r, n[0], n[1], n[2], CUFFT_C2R) != CUFFT_SUCCESS) {
		cudaFree(w->est);
		cudaFree(w->tmp);
		cudaFree(w->spec);
		memset(w, 0, sizeof *w);
		return NULL;
	}
	cufftSetStream(w->r2c, stream);
	cufftSetStream(w->c2r, stream);
	w->ready = 1;
	c->count++;
	return w;
}

static __global__ void otf_kernel(float2 *spec, const float2 *otf, size_t n, int conj)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n) {
		float2 s = spec[i], h = otf[i];
		halo_rl_cmul(&s.x, &s.y, h.x, h.y, conj);
		spec[i] = s;
	}
}

static __global__ void ratio_kernel(float *blurred, const float *image, size_t n)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		blurred[i] = halo_rl_ratio(image[i], blurred[i]);
}

static __global__ void update_kernel(float *est, const float *corr, size_t n)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		est[i] = halo_rl_update(est[i], corr[i]);
}

/* out (block on, whole chunk) = est trimmed at trim, zero outside valid. */
static __global__ void trim_kernel(float *out, int o0, int o1, int o2, const float *est, int n1,
				   int n2, int t0, int t1, int t2, int v0, int v1, int v2)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	size_t total = (size_t)o0 * o1 * o2;
	if (i >= total)
		return;
	int x = (int)(i % o2), y = (int)(i / o2 % o1), z = (int)(i / ((size_t)o1 * o2));
	out[i] = z < v0 && y < v1 && x < v2
			 ? est[((size_t)(z + t0) * n1 + (y + t1)) * n2 + (x + t2)]
			 : 0.0f;
}

static unsigned blocks_for(size_t n)
{
	return (unsigned)((n + 255) / 256);
}

/* One thread per PSF voxel; atomics because a PSF longer than the chunk
 * folds several voxels onto one. */
static __global__ void place_kernel(float *real, const float *psf, int p0, int p1, int p2, int n0,
				    int n1, int n2)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= (size_t)p0 * p1 * p2)
		return;
	int x = (int)(i % p2), y = (int)(i / p2 % p1), z = (int)(i / ((size_t)p1 * p2));
	size_t d = ((size_t)halo_otf_place(z, p0, n0) * n1 + halo_otf_place(y, p1, n1)) * n2 +
		   halo_otf_place(x, p2, n2);
	atomicAdd(&real[d], psf[i]);
}

static __global__ void scale_kernel(float *v, size_t n, float s)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		v[i] *= s;
}

/* The otf codelet on a GPU: the PSF placed circularly, one R2C transform,
 * scaled by 1/N as on the CPU (halo_otf_compute). It runs once per chunk
 * shape and memory node, so the plan is made and destroyed here and the
 * stream synchronised before returning. */
extern "C" void halo__otf_cuda(void *buffers[], void *cl_arg)
{
	const struct halo_otf_args *a = (const struct halo_otf_args *)cl_arg;
	cudaStream_t stream = starpu_cuda_get_local_stream();
	const int *n = a->n;
	int p0 = (int)STARPU_BLOCK_GET_NZ(buffers[0]), p1 = (int)STARPU_BLOCK_GET_NY(buffers[0]);
	int p2 = (int)STARPU_BLOCK_GET_NX(buffers[0]);
	const float *psf = (const float *)STARPU_BLOCK_GET_PTR(buffers[0]);
	cufftComplex *otf = (cufftComplex *)STARPU_VECTOR_GET_PTR(buffers[1]);
	size_t nreal = (size_t)n[0] * n[1] * n[2];
	float *real = NULL;
	cufftHandle plan;
	int ok = cudaMalloc((void **)&real, nreal * sizeof *real) == cudaSuccess;
	int planned = ok && cufftPlan3d(&plan, n[0], n[1], n[2], CUFFT_R2C) == CUFFT_SUCCESS;
	if (planned) {
		cufftSetStream(plan, stream);
		ok &= cudaMemsetAsync(real, 0, nreal * sizeof *real, stream) == cudaSuccess;
		size_t np = (size_t)p0 * p1 * p2;
		place_kernel<<<blocks_for(np), 256, 0, stream>>>(real, psf, p0, p1, p2, n[0], n[1],
								  n[2]);
		ok &= cufftExecR2C(plan, real, otf) == CUFFT_SUCCESS;
		size_t nc = 2 * (size_t)n[0] * n[1] * (n[2] / 2 + 1);
		scale_kernel<<<blocks_for(nc), 256, 0, stream>>>((float *)otf, nc,
								  1.0f / (float)nreal);
		ok &= cudaStreamSynchronize(stream) == cudaSuccess;
		ok &= cudaGetLastError() == cudaSuccess;
		cufftDestroy(plan);
	}
	cudaFree(real);
	if (!(ok && planned) && a->failed)
		__atomic_store_n(a->failed, 1, __ATOMIC_RELAXED);
}

extern "C" void halo__rl_cuda(void *buffers[], void *cl_arg)
{
	const struct halo_rl_args *a = (const struct halo_rl_args *)cl_arg;
	cudaStream_t stream = starpu_cuda_get_local_stream();
	int n[3] = {(int)STARPU_BLOCK_GET_NZ(buffers[0]), (int)STARPU_BLOCK_GET_NY(buffers[0]),
		    (int)STARPU_BLOCK_GET_NX(buffers[0])};
	int on[3] = {(int)STARPU_BLOCK_GET_NZ(buffers[2]), (int)STARPU_BLOCK_GET_NY(buffers[2]),
		     (int)STARPU_BLOCK_GET_NX(buffers[2])};
	const float *image = (const float *)STARPU_BLOCK_GET_PTR(buffers[0]);
	const float2 *otf = (const float2 *)STARPU_VECTOR_GET_PTR(buffers[1]);
	float *out = (float *)STARPU_BLOCK_GET_PTR(buffers[2]);
	struct gpu_work *w = gpu_work_get(n, stream);
	if (!w) {
		if (a->failed)
			__atomic_store_n(a->failed, 1, __ATOMIC_RELAXED);
		return;
	}
	size_t N = w->nreal, NC = w->ncplx;
	int ok = cudaMemcpyAsync(w->est, image, N * sizeof(float), cudaMemcpyDeviceToDevice,
				 stream) == cudaSuccess;
	for (int it = 0; ok && it < a->iterations; it++) {
		ok &= cufftExecR2C(w->r2c, w->est, w->spec) == CUFFT_SUCCESS;
		otf_kernel<<<blocks_for(NC), 256, 0, stream>>>((float2 *)w->spec, otf, NC, 0);
		ok &= cufftExecC2R(w->c2r, w->spec, w->tmp) == CUFFT_SUCCESS;
		ratio_kernel<<<blocks_for(N), 256, 0, stream>>>(w->tmp, image, N);
		ok &= cufftExecR2C(w->r2c, w->tmp, w->spec) == CUFFT_SUCCESS;
		otf_kernel<<<blocks_for(NC), 256, 0, stream>>>((float2 *)w->spec, otf, NC, 1);
		ok &= cufftExecC2R(w->c2r, w->spec, w->tmp) == CUFFT_SUCCESS;
		update_kernel<<<blocks_for(N), 256, 0, stream>>>(w->est, w->tmp, N);
	}
	size_t total = (size_t)on[0] * on[1] * on[2];
	trim_kernel<<<blocks_for(total), 256, 0, stream>>>(out, on[0], on[1], on[2], w->est, n[1],
							    n[2], a->trim[0], a->trim[1], a->trim[2],
							    a->valid[0], a->valid[1], a->valid[2]);
	ok &= cudaGetLastError() == cudaSuccess;
	if (!ok && a->failed)
		__atomic_store_n(a->failed, 1, __ATOMIC_RELAXED);
}
