/* CUDA implementations of the otf, rl, rl_forward and rl_backward codelets
 * (see rl.h): cuFFT R2C/C2R plans and device work buffers kept per worker
 * thread and shape, bound to StarPU's per-worker stream, so a task is a
 * sequence of asynchronous launches with no host round trip
 * (STARPU_CUDA_ASYNC).
 *
 * An rl iteration is 2 R2C + 2 C2R transforms and nothing else: the two
 * C2R plans carry cuFFT callbacks (rl_callbacks.cu, linked into cuFFT's
 * kernels when the plan is made) that multiply the spectrum by the OTF as
 * it is loaded and store the ratio, or the next estimate, instead of the
 * transform's output, so the elementwise work costs no pass over device
 * memory of its own. The estimate alternates between two buffers, the
 * ratio taking whichever is free. An exact-mode half-iteration is one R2C,
 * one C2R loading the spectrum times the OTF, and a kernel that cuts the
 * chunk out of the result. That fused form is what HALO_CUFFT_CALLBACKS=1
 * asks for ("load" or "store" fuses only the OTF products, or only the
 * ratio and update). By default large chunks fuse the stores, and smaller
 * ones, or where cuFFT cannot link callbacks (no nvJitLink), run the
 * products, ratio and update as four small kernels
 * (halo_rl_callbacks_choice: cuFFT's kernels with callbacks linked in are
 * slower than its own, which only large transforms make up for). Either
 * way the arithmetic is rl_math.h, the functions the CPU implementation
 * and its tests run.
 *
 * An iteration is up to some twenty launches (cuFFT splits a 3D transform
 * into several kernels), whose gaps show on small chunks. So iterations
 * go in blocks of GRAPH_ITERATIONS captured once per worker and shape as
 * a CUDA graph, one launch each: on an H100, 20 iterations of 128x256x256
 * took 8.63 ms against 9.28 ms (HALO_CUDA_GRAPHS=0: every kernel launched,
 * as before); the same at 384x1152x1152. */
#include "config.h"

#include <cufft.h>
#include <cufftXt.h>
#include <pthread.h>
#include <starpu.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "codelets/rl.h"
#include "util/signals.h"
}
#include "codelets/rl_callbacks.h"
#include "codelets/rl_callbacks_fatbin.h"
#include "codelets/rl_math.h"

/* An exact-mode run has up to 8 haloed shapes (interior and edge chunks
 * per axis), overlap mode with --boundary none up to 27; with callbacks,
 * making a plan means linking them (JIT). The least recently used shape
 * goes first: the interior chunks' stays, where dropping the oldest made
 * a walk over more shapes than this replan nearly every chunk. */
#define MAX_SHAPES 16

/* Iterations per graph launch: even, so that the estimate ends in the
 * buffer it started in (store callbacks swap the two). */
#define GRAPH_ITERATIONS 10

/* Plans: R2C always; with callbacks C2R_FWD (times the OTF) and C2R_BWD
 * (times its conjugate), otherwise C2R and kernels. */
enum { R2C, C2R, C2R_FWD, C2R_BWD, NPLANS };

/* What the plans are for: whole RL iterations (rl), whose C2R transforms
 * also store the ratio and the next estimate, or the exact mode's
 * half-iterations (rl_forward, rl_backward), whose C2R output is windowed
 * into the chunk by a kernel. */
enum { WORK_RL, WORK_HALF, NKINDS };

#define LOAD_OTF HALO_RL_CB_NAME(HALO_RL_CB_LOAD_OTF)
#define LOAD_OTF_CONJ HALO_RL_CB_NAME(HALO_RL_CB_LOAD_OTF_CONJ)
static const char *const fused_callbacks[NKINDS][2][2] = {
	[WORK_RL] = {{LOAD_OTF, HALO_RL_CB_NAME(HALO_RL_CB_STORE_RATIO)},
		     {LOAD_OTF_CONJ, HALO_RL_CB_NAME(HALO_RL_CB_STORE_UPDATE)}},
	[WORK_HALF] = {{LOAD_OTF, NULL}, {LOAD_OTF_CONJ, NULL}},
};

struct gpu_work {
	int n[3];
	int device;            /* the GPU it is on */
	cudaStream_t stream;   /* the plans are bound to it */
	int kind;
	int want_cb;           /* HALO_RL_CB_* asked for (part of the cache key) */
	int cb;                /* HALO_RL_CB_* that cuFFT linked: want_cb or none */
	size_t nreal, ncplx;
	float *est, *tmp;      /* est: rl only */
	cufftComplex *spec;
	void *area;            /* one cuFFT work area for all plans: they run
				* one after another on the worker's stream */
	struct halo_rl_cb_params *params;
	void **info;           /* the callbacks' caller info, {params}: on the
				* heap, since cuFFT's docs do not say whether it
				* keeps the array or copies it, and entries move */
	size_t area_bytes;
	size_t accounted;      /* bytes told to StarPU's memory manager */
	unsigned node;         /* ... of this memory node */
	cufftHandle plan[NPLANS];
	int made[NPLANS];
	cudaGraphExec_t graph; /* rl: GRAPH_ITERATIONS iterations, once made */
	int graph_failed;      /* capture failed: launch kernels one by one */
};

struct gpu_cache {
	struct gpu_work work[MAX_SHAPES];
	int count;
};

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static int fused_plans, kernel_plans, last_fallback, last_cb, graphs_made, graphs_failed;

static void work_free(struct gpu_work *w)
{
	for (int i = 0; i < NPLANS; i++)
		if (w->made[i])
			cufftDestroy(w->plan[i]);
	if (w->graph)
		cudaGraphExecDestroy(w->graph);
	cudaFree(w->est);
	cudaFree(w->tmp);
	cudaFree(w->spec);
	cudaFree(w->area);
	cudaFree(w->params);
	free(w->info);
	memset(w, 0, sizeof *w);
}

/* At thread exit (StarPU shutting down) the accounting no longer matters,
 * so cache_free does not give the bytes back. */
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

/* Plan k of w, of type, without its own work area, with the named
 * callbacks (NULL for none); the largest work area is kept in *area.
 * Returns the cuFFT error, CUFFT_SUCCESS when made. */
static cufftResult plan_3d(struct gpu_work *w, int k, cufftType type, const char *load,
			   const char *store, size_t *area)
{
	cufftHandle *h = &w->plan[k];
	cufftResult r = cufftCreate(h);
	if (r != CUFFT_SUCCESS)
		return r;
	const void *fatbin = halo_rl_callbacks_fatbin;
	size_t fatbin_size = sizeof halo_rl_callbacks_fatbin;
	size_t size = 0;
	r = cufftSetAutoAllocation(*h, 0);
	/* cuFFT links LTO callbacks into the plan's kernels, so they are
	 * given before the plan is made. */
	if (r == CUFFT_SUCCESS && load)
		r = cufftXtSetJITCallback(*h, load, fatbin, fatbin_size, CUFFT_CB_LD_COMPLEX,
					  w->info);
	if (r == CUFFT_SUCCESS && store)
		r = cufftXtSetJITCallback(*h, store, fatbin, fatbin_size, CUFFT_CB_ST_REAL,
					  w->info);
	if (r == CUFFT_SUCCESS)
		r = cufftMakePlan3d(*h, w->n[0], w->n[1], w->n[2], type, &size);
	if (r != CUFFT_SUCCESS) {
		cufftDestroy(*h);
		return r;
	}
	w->made[k] = 1;
	if (size > *area)
		*area = size;
	return CUFFT_SUCCESS;
}

/* The fused plans, or else the plain ones; -1 when not even those. */
static int make_plans(struct gpu_work *w, cudaStream_t stream)
{
	size_t area = 0;
	if (plan_3d(w, R2C, CUFFT_R2C, NULL, NULL, &area) != CUFFT_SUCCESS)
		return -1;
	/* Half-iterations window the C2R output with a kernel of their own:
	 * no store callbacks there. */
	int want = w->kind == WORK_HALF ? w->want_cb & HALO_RL_CB_LOAD : w->want_cb;
	if (want) {
		const char *const(*cb)[2] = fused_callbacks[w->kind];
		const char *load[2] = {want & HALO_RL_CB_LOAD ? cb[0][0] : NULL,
				       want & HALO_RL_CB_LOAD ? cb[1][0] : NULL};
		const char *store[2] = {want & HALO_RL_CB_STORE ? cb[0][1] : NULL,
					want & HALO_RL_CB_STORE ? cb[1][1] : NULL};
		cufftResult r = plan_3d(w, C2R_FWD, CUFFT_C2R, load[0], store[0], &area);
		if (r == CUFFT_SUCCESS)
			r = plan_3d(w, C2R_BWD, CUFFT_C2R, load[1], store[1], &area);
		w->cb = r == CUFFT_SUCCESS ? want : 0;
		if (!w->cb) {
			__atomic_store_n(&last_fallback, (int)r, __ATOMIC_RELAXED);
			if (w->made[C2R_FWD])
				cufftDestroy(w->plan[C2R_FWD]);
			w->made[C2R_FWD] = 0;
		}
	}
	if (!w->cb && plan_3d(w, C2R, CUFFT_C2R, NULL, NULL, &area) != CUFFT_SUCCESS)
		return -1;
	if (cudaMalloc(&w->area, area ? area : 1) != cudaSuccess)
		return -1;
	w->area_bytes = area;
	for (int i = 0; i < NPLANS; i++)
		if (w->made[i] && (cufftSetWorkArea(w->plan[i], w->area) != CUFFT_SUCCESS ||
				   cufftSetStream(w->plan[i], stream) != CUFFT_SUCCESS))
			return -1;
	__atomic_add_fetch(w->cb ? &fused_plans : &kernel_plans, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&last_cb, w->cb, __ATOMIC_RELAXED);
	return 0;
}

/* The calling thread's cache, made at its first use; NULL when it cannot
 * be. */
static struct gpu_cache *cache_get(void)
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
	return c;
}

/* Frees c's least recently used entry, on its own GPU (one thread drives
 * them all under STARPU_CUDA_THREAD_PER_DEV=0); 0 when c holds none. */
static int cache_evict(struct gpu_cache *c)
{
	if (!c || !c->count)
		return 0;
	struct gpu_work *w = &c->work[0];
	int current = -1, device = w->device;
	cudaGetDevice(&current);
	if (device != current)
		cudaSetDevice(device);
	/* The previous task's launches may still use its plans and buffers. */
	cudaStreamSynchronize(w->stream);
	if (w->accounted)
		starpu_memory_deallocate(w->node, w->accounted);
	work_free(w);
	if (device != current && current >= 0)
		cudaSetDevice(current);
	memmove(&c->work[0], &c->work[1], (size_t)(c->count - 1) * sizeof c->work[0]);
	memset(&c->work[c->count - 1], 0, sizeof c->work[0]);
	c->count--;
	return 1;
}

/* w's buffers and plans for shape n on the current device; -1, with
 * nothing held, on failure. */
static int work_make(struct gpu_work *w, const int n[3], int kind, int want_cb,
		     cudaStream_t stream, int device)
{
	memcpy(w->n, n, sizeof w->n);
	w->stream = stream;
	w->kind = kind;
	w->want_cb = want_cb;
	w->device = device;
	w->nreal = (size_t)n[0] * n[1] * n[2];
	w->ncplx = (size_t)n[0] * n[1] * (n[2] / 2 + 1);
	if ((kind == WORK_RL &&
	     cudaMalloc((void **)&w->est, w->nreal * sizeof(float)) != cudaSuccess) ||
	    cudaMalloc((void **)&w->tmp, w->nreal * sizeof(float)) != cudaSuccess ||
	    cudaMalloc((void **)&w->spec, w->ncplx * sizeof(cufftComplex)) != cudaSuccess ||
	    cudaMalloc((void **)&w->params, sizeof *w->params) != cudaSuccess ||
	    !(w->info = (void **)malloc(sizeof *w->info))) {
		work_free(w);
		return -1;
	}
	*w->info = w->params;
	if (make_plans(w, stream) < 0) {
		work_free(w);
		return -1;
	}
	return 0;
}

/* The calling worker's plans and buffers of kind for shape n; NULL on
 * failure. */
static struct gpu_work *gpu_work_get(const int n[3], int kind, cudaStream_t stream)
{
	struct gpu_cache *c = cache_get();
	if (!c)
		return NULL;
	int worker = starpu_worker_get_id(), device = -1;
	cudaGetDevice(&device);
	unsigned node = worker >= 0 ? starpu_worker_get_memory_node((unsigned)worker) : 0;
	int want_cb = halo_rl_callbacks_choice(n, getenv("HALO_CUFFT_CALLBACKS"));
	for (int i = 0; i < c->count; i++)
		if (!memcmp(c->work[i].n, n, sizeof c->work[i].n) && c->work[i].kind == kind &&
		    c->work[i].want_cb == want_cb && c->work[i].stream == stream &&
		    c->work[i].device == device) {
			/* Kept in order of use, the latest last. */
			struct gpu_work hit = c->work[i];
			memmove(&c->work[i], &c->work[i + 1],
				(size_t)(c->count - 1 - i) * sizeof c->work[0]);
			c->work[c->count - 1] = hit;
			return &c->work[c->count - 1];
		}
	if (c->count == MAX_SHAPES)
		cache_evict(c);
	/* Each shape keeps 16-20 bytes a voxel here, beside the 90 % of the
	 * GPU StarPU fills with data: where a new shape finds no room, the
	 * shapes least recently used make it (a cudaMalloc failed is no
	 * sticky error). */
	struct gpu_work *w = &c->work[c->count];
	while (work_make(w, n, kind, want_cb, stream, device) < 0) {
		(void)cudaGetLastError();
		if (!cache_evict(c))
			return NULL;
		w = &c->work[c->count];
	}
	/* These buffers live beside StarPU's data on the GPU: counted in its
	 * memory manager, they make StarPU evict chunks sooner instead of
	 * filling the GPU up to its own limit (90 %) and leaving a later
	 * shape no room. OVERFLOW: never wait here, inside a task. */
	w->accounted = (w->est ? w->nreal * sizeof(float) : 0) + w->nreal * sizeof(float) +
		       w->ncplx * sizeof(cufftComplex) + w->area_bytes;
	w->node = node;
	if (worker < 0)
		w->accounted = 0;
	else
		starpu_memory_allocate(node, w->accounted, STARPU_MEMORY_OVERFLOW);
	c->count++;
	return w;
}

extern "C" void halo_rl_cuda_plans(int *fused, int *kernels, int *last_error)
{
	*fused = __atomic_load_n(&fused_plans, __ATOMIC_RELAXED);
	*kernels = __atomic_load_n(&kernel_plans, __ATOMIC_RELAXED);
	*last_error = __atomic_load_n(&last_fallback, __ATOMIC_RELAXED);
}

extern "C" void halo_rl_cuda_graphs(int *made, int *failed)
{
	*made = __atomic_load_n(&graphs_made, __ATOMIC_RELAXED);
	*failed = __atomic_load_n(&graphs_failed, __ATOMIC_RELAXED);
}

extern "C" const char *halo_rl_cuda_path(void)
{
	static const char *const names[] = {"kernels", "load callbacks", "store callbacks",
					    "callbacks"};
	return names[__atomic_load_n(&last_cb, __ATOMIC_RELAXED) & 3];
}

static __global__ void params_kernel(struct halo_rl_cb_params *p, const float2 *otf,
				     const float *image, float *est0, float *est1)
{
	p->otf = otf;
	p->image = image;
	p->est[0] = est0;
	p->est[1] = est1;
}

/* The OTF and the image come through the params, as for the callbacks, so
 * that a captured graph serves every task of its worker and shape. */
static __global__ void otf_kernel(float2 *spec, const struct halo_rl_cb_params *p, size_t n,
				  int conj)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n) {
		float2 s = spec[i], h = p->otf[i];
		halo_rl_cmul(&s.x, &s.y, h.x, h.y, conj);
		spec[i] = s;
	}
}

static __global__ void ratio_kernel(float *blurred, const struct halo_rl_cb_params *p, size_t n)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		blurred[i] = halo_rl_ratio(p->image[i], blurred[i]);
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
	int ok, planned;
	/* Outside StarPU's count, as the RL shapes' buffers: where they leave
	 * no room, they go, least recently used first. */
	struct gpu_cache *c = cache_get();
	for (;;) {
		ok = cudaMalloc((void **)&real, nreal * sizeof *real) == cudaSuccess;
		planned = ok && cufftPlan3d(&plan, n[0], n[1], n[2], CUFFT_R2C) == CUFFT_SUCCESS;
		if (planned)
			break;
		cudaFree(real);
		real = NULL;
		(void)cudaGetLastError();
		if (!cache_evict(c))
			break;
	}
	if (planned) {
		ok &= cufftSetStream(plan, stream) == CUFFT_SUCCESS;
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
	if (!(ok && planned)) {
		(void)cudaGetLastError(); /* not the next task's error */
		if (a->failed)
			__atomic_store_n(a->failed, 1, __ATOMIC_RELAXED);
	}
}

extern "C" void halo__rl_warm_cuda(void *buffers[], void *cl_arg)
{
	(void)buffers;
	/* A failure is the rl task's to meet and report, not a stale error
	 * for its cudaGetLastError. */
	if (!gpu_work_get((const int *)cl_arg, WORK_RL, starpu_cuda_get_local_stream()))
		(void)cudaGetLastError();
}

/* One RL iteration's launches on w's stream, from *est; other: the blurred
 * estimate, the ratio, the correction, and with store callbacks the next
 * estimate, which then swaps with *est. 0 when a cuFFT call failed. */
static int rl_iteration(struct gpu_work *w, float **est, float **other)
{
	int load = w->cb & HALO_RL_CB_LOAD, store = w->cb & HALO_RL_CB_STORE;
	cufftHandle fwd = w->plan[w->cb ? C2R_FWD : C2R], bwd = w->plan[w->cb ? C2R_BWD : C2R];
	size_t N = w->nreal, NC = w->ncplx;
	float2 *spec = (float2 *)w->spec;
	int ok = cufftExecR2C(w->plan[R2C], *est, w->spec) == CUFFT_SUCCESS;
	if (!load)
		otf_kernel<<<blocks_for(NC), 256, 0, w->stream>>>(spec, w->params, NC, 0);
	ok &= cufftExecC2R(fwd, w->spec, *other) == CUFFT_SUCCESS;
	if (!store)
		ratio_kernel<<<blocks_for(N), 256, 0, w->stream>>>(*other, w->params, N);
	ok &= cufftExecR2C(w->plan[R2C], *other, w->spec) == CUFFT_SUCCESS;
	if (!load)
		otf_kernel<<<blocks_for(NC), 256, 0, w->stream>>>(spec, w->params, NC, 1);
	ok &= cufftExecC2R(bwd, w->spec, *other) == CUFFT_SUCCESS;
	if (store) {
		float *t = *est;
		*est = *other;
		*other = t;
	} else {
		update_kernel<<<blocks_for(N), 256, 0, w->stream>>>(*est, *other, N);
	}
	return ok;
}

/* w's graph of GRAPH_ITERATIONS iterations, captured at its first use;
 * NULL where capture fails (cuFFT does not capture every kind of plan),
 * and then never tried again for w. Thread-local capture: other threads'
 * CUDA calls go on meanwhile. */
static cudaGraphExec_t rl_graph(struct gpu_work *w)
{
	if (w->graph || w->graph_failed)
		return w->graph;
	cudaGraph_t g = NULL;
	if (cudaStreamBeginCapture(w->stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess) {
		float *est = w->est, *other = w->tmp;
		int ok = 1;
		for (int i = 0; i < GRAPH_ITERATIONS; i++)
			ok &= rl_iteration(w, &est, &other);
		if (cudaStreamEndCapture(w->stream, &g) == cudaSuccess && ok && g &&
		    cudaGraphInstantiate(&w->graph, g, 0) != cudaSuccess)
			w->graph = NULL;
		if (g)
			cudaGraphDestroy(g);
	}
	if (!w->graph) {
		(void)cudaGetLastError();
		w->graph_failed = 1;
	}
	__atomic_add_fetch(w->graph ? &graphs_made : &graphs_failed, 1, __ATOMIC_RELAXED);
	return w->graph;
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
	struct gpu_work *w = gpu_work_get(n, WORK_RL, stream);
	if (!w) {
		(void)cudaGetLastError(); /* a failed cudaMalloc's: not the next task's */
		if (a->failed)
			__atomic_store_n(a->failed, 1, __ATOMIC_RELAXED);
		return;
	}
	int ok = cudaMemcpyAsync(w->est, image, w->nreal * sizeof(float),
				 cudaMemcpyDeviceToDevice, stream) == cudaSuccess;
	params_kernel<<<1, 1, 0, stream>>>(w->params, otf, image, w->est, w->tmp);
	float *est = w->est, *other = w->tmp;
	const char *graphs = getenv("HALO_CUDA_GRAPHS");
	cudaGraphExec_t g = a->iterations >= GRAPH_ITERATIONS && !(graphs && !strcmp(graphs, "0"))
				    ? rl_graph(w)
				    : NULL;
	int it = 0;
	/* After SIGINT the run is abandoned: stop launching iterations. */
	for (; ok && g && it + GRAPH_ITERATIONS <= a->iterations && !halo_interrupted();
	     it += GRAPH_ITERATIONS)
		ok &= cudaGraphLaunch(g, stream) == cudaSuccess;
	for (; ok && it < a->iterations && !halo_interrupted(); it++)
		ok &= rl_iteration(w, &est, &other);
	size_t total = (size_t)on[0] * on[1] * on[2];
	trim_kernel<<<blocks_for(total), 256, 0, stream>>>(out, on[0], on[1], on[2], est, n[1],
							    n[2], a->trim[0], a->trim[1], a->trim[2],
							    a->valid[0], a->valid[1], a->valid[2]);
	ok &= cudaGetLastError() == cudaSuccess;
	if (!ok && a->failed)
		__atomic_store_n(a->failed, 1, __ATOMIC_RELAXED);
}

/* The chunk's voxels of a half-iteration's convolved block: forward (image
 * given) the ratio, backward the estimate times the correction. */
static __global__ void window_kernel(float *chunk, int o0, int o1, int o2, const float *full,
				     int n1, int n2, int f0, int f1, int f2, const float *image)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= (size_t)o0 * o1 * o2)
		return;
	int x = (int)(i % o2), y = (int)(i / o2 % o1), z = (int)(i / ((size_t)o1 * o2));
	float v = full[((size_t)(z + f0) * n1 + (y + f1)) * n2 + (x + f2)];
	chunk[i] = image ? halo_rl_ratio(image[i], v) : halo_rl_update(chunk[i], v);
}

/* A half-iteration on a GPU (see rl.h): the haloed block convolved with
 * the PSF (forward) or correlated with it (backward), the OTF product in
 * the C2R's load callback or a kernel, then the chunk's window. */
static void half_cuda(void *haloed_buf, void *otf_buf, const float *image, void *chunk_buf,
		      const struct halo_rl_half_args *a, int backward)
{
	if (halo_rl_half_stopped(a))
		return;
	cudaStream_t stream = starpu_cuda_get_local_stream();
	int n[3] = {(int)STARPU_BLOCK_GET_NZ(haloed_buf), (int)STARPU_BLOCK_GET_NY(haloed_buf),
		    (int)STARPU_BLOCK_GET_NX(haloed_buf)};
	int on[3] = {(int)STARPU_BLOCK_GET_NZ(chunk_buf), (int)STARPU_BLOCK_GET_NY(chunk_buf),
		     (int)STARPU_BLOCK_GET_NX(chunk_buf)};
	const float *haloed = (const float *)STARPU_BLOCK_GET_PTR(haloed_buf);
	const float2 *otf = (const float2 *)STARPU_VECTOR_GET_PTR(otf_buf);
	float *chunk = (float *)STARPU_BLOCK_GET_PTR(chunk_buf);
	struct gpu_work *w = gpu_work_get(n, WORK_HALF, stream);
	if (!w) {
		(void)cudaGetLastError(); /* a failed cudaMalloc's: not the next task's */
		if (a->failed)
			__atomic_store_n(a->failed, 1, __ATOMIC_RELAXED);
		return;
	}
	/* A C2R transform may overwrite its input: the spectrum is w's own. */
	int ok = cufftExecR2C(w->plan[R2C], (cufftReal *)haloed, w->spec) == CUFFT_SUCCESS;
	params_kernel<<<1, 1, 0, stream>>>(w->params, otf, NULL, NULL, NULL);
	if (w->cb) {
		ok &= cufftExecC2R(w->plan[backward ? C2R_BWD : C2R_FWD], w->spec, w->tmp) ==
		      CUFFT_SUCCESS;
	} else {
		otf_kernel<<<blocks_for(w->ncplx), 256, 0, stream>>>((float2 *)w->spec, w->params,
								      w->ncplx, backward);
		ok &= cufftExecC2R(w->plan[C2R], w->spec, w->tmp) == CUFFT_SUCCESS;
	}
	size_t total = (size_t)on[0] * on[1] * on[2];
	window_kernel<<<blocks_for(total), 256, 0, stream>>>(chunk, on[0], on[1], on[2], w->tmp,
							      n[1], n[2], a->off[0], a->off[1],
							      a->off[2], backward ? NULL : image);
	ok &= cudaGetLastError() == cudaSuccess;
	if (!ok && a->failed)
		__atomic_store_n(a->failed, 1, __ATOMIC_RELAXED);
}

extern "C" void halo__rl_forward_cuda(void *buffers[], void *cl_arg)
{
	half_cuda(buffers[0], buffers[2], (const float *)STARPU_BLOCK_GET_PTR(buffers[1]),
		  buffers[3], (const struct halo_rl_half_args *)cl_arg, 0);
}

extern "C" void halo__rl_backward_cuda(void *buffers[], void *cl_arg)
{
	half_cuda(buffers[0], buffers[1], NULL, buffers[2],
		  (const struct halo_rl_half_args *)cl_arg, 1);
}
