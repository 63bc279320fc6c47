/* The CUDA side of the RL codelet. Everywhere: the arithmetic the GPU
 * kernels run (codelets/rl_math.h, compiled here by the C compiler) gives
 * what an independent complex/real computation gives, zeros included, and
 * the CUDA gather's per-voxel rule gives what the CPU gather gives; the
 * RL task on a CPU worker equals halo_rl_compute for even and odd shapes,
 * trimmed and untrimmed. With a CUDA device, the same task pinned to a GPU
 * worker gives the CPU's chunk to 1e-4 (max relative), with the
 * elementwise steps fused into cuFFT callbacks and as separate kernels,
 * in CUDA graphs and launched one by one;
 * without one those checks are skipped, saying so. The exact mode's
 * half-iteration tasks are checked the same way. */
#include "config.h"
#include "halo.h"
#include "codelets/gather.h"
#include "codelets/gather_math.h"
#include "codelets/rl.h"
#include "codelets/rl_math.h"
#include "tests/tap.h"

#include <complex.h>
#include <math.h>
#include <starpu.h>
#include <stdlib.h>
#include <string.h>

static void math_checks(void)
{
	const float in[][4] = {{1.5f, -2.0f, 0.25f, 3.0f}, {0, 1, -1, 0}, {-3, 0.5f, 2, -2}};
	int bad = 0;
	for (size_t k = 0; k < sizeof in / sizeof in[0]; k++)
		for (int cj = 0; cj < 2; cj++) {
			float re = in[k][0], im = in[k][1];
			halo_rl_cmul(&re, &im, in[k][2], in[k][3], cj);
			double complex h = in[k][2] + in[k][3] * I;
			double complex want = (in[k][0] + in[k][1] * I) * (cj ? conj(h) : h);
			bad += fabs(re - creal(want)) > 1e-6 || fabs(im - cimag(want)) > 1e-6;
		}
	tap_int_eq(bad, 0, "rl_math: spectrum times OTF and times its conjugate");
	tap_near(halo_rl_ratio(6.0f, 3.0f), 2.0, 1e-7, "rl_math: ratio = image / blurred");
	tap_ok(halo_rl_ratio(0.0f, 0.0f) == 0.0f, "rl_math: 0 / 0 gives 0, not NaN");
	float r = halo_rl_ratio(1.0f, -1e-3f);
	tap_ok(isfinite(r) && r == 1.0f / HALO_RL_EPS, "rl_math: blurred below eps divides by eps");
	tap_near(halo_rl_update(2.5f, 0.4f), 1.0, 1e-7, "rl_math: estimate times correction");
	/* Placement: the centre voxel pn//2 lands on 0, the rest wraps like
	 * numpy's roll(-(pn//2)); a PSF longer than the axis folds. */
	bad = 0;
	for (int pn = 1; pn <= 9; pn++)
		for (int n = 1; n <= 12; n++)
			for (int i = 0; i < pn; i++) {
				int want = ((i - pn / 2) % n + n) % n;
				bad += halo_otf_place(i, pn, n) != want;
			}
	tap_int_eq(bad, 0, "rl_math: circular PSF placement, centre at the origin");
}

/* The CUDA gather kernel's rule (gather_math.h), run voxel by voxel on
 * the CPU, gives exactly what the CPU gather gives: a haloed chunk reaching
 * past every face under each boundary, uint16 -> float32 and float32 ->
 * uint8 (rounding, saturation), and a clipped destination with padding. */
static int first_worker(enum starpu_worker_archtype type);

/* The gather task pinned to a GPU worker: dst (n elements of size) or NULL
 * when it could not run. */
static void *gather_on_gpu(int cuda, const struct halo_gather_args *a, const void *const *src,
			   size_t n, size_t size)
{
	struct starpu_data_descr descr[9];
	for (int k = 0; k < a->nsrc; k++) {
		const int64_t *d = a->src[k].dims;
		size_t es = halo_dtype_size((halo_dtype_t){a->src_kind, 0});
		starpu_block_data_register(&descr[k].handle, STARPU_MAIN_RAM, (uintptr_t)src[k],
					   (uint32_t)d[2], (uint32_t)(d[2] * d[1]), (uint32_t)d[2],
					   (uint32_t)d[1], (uint32_t)d[0], es);
		descr[k].mode = STARPU_R;
	}
	const int64_t *dd = a->dst_dims;
	starpu_block_data_register(&descr[a->nsrc].handle, -1, 0, (uint32_t)dd[2],
				   (uint32_t)(dd[2] * dd[1]), (uint32_t)dd[2], (uint32_t)dd[1],
				   (uint32_t)dd[0], size);
	descr[a->nsrc].mode = STARPU_W;
	size_t asz = halo_gather_args_size(a->nsrc);
	void *copy = malloc(asz);
	memcpy(copy, a, asz);
	int rc = starpu_task_insert(&halo_gather_cl, STARPU_DATA_MODE_ARRAY, descr, a->nsrc + 1,
				    STARPU_CL_ARGS, copy, asz, STARPU_EXECUTE_ON_WORKER, cuda, 0);
	void *out = malloc(n * size);
	if (rc == 0) {
		starpu_data_acquire(descr[a->nsrc].handle, STARPU_R);
		memcpy(out, starpu_data_get_local_ptr(descr[a->nsrc].handle), n * size);
		starpu_data_release(descr[a->nsrc].handle);
	}
	for (int k = 0; k <= a->nsrc; k++)
		starpu_data_unregister(descr[k].handle);
	return rc == 0 ? out : (free(out), NULL);
}

static void gather_checks(void)
{
	enum { NSRC = 8 };
	const int64_t shape[3] = {7, 9, 11}, cs[3] = {4, 5, 6};
	uint16_t *chunks[NSRC];
	float *fchunks[NSRC];
	struct halo_gather_args *a = calloc(1, halo_gather_args_size(NSRC));
	a->nsrc = NSRC;
	memcpy(a->src_shape, shape, sizeof a->src_shape);
	for (int k = 0; k < NSRC; k++) {
		int64_t g[3] = {k >> 2, (k >> 1) & 1, k & 1};
		for (int d = 0; d < 3; d++) {
			a->src[k].origin[d] = g[d] * cs[d];
			a->src[k].dims[d] = cs[d];
		}
		chunks[k] = malloc(4 * 5 * 6 * sizeof **chunks);
		fchunks[k] = malloc(4 * 5 * 6 * sizeof **fchunks);
		for (int i = 0; i < 4 * 5 * 6; i++) {
			chunks[k][i] = (uint16_t)(k * 1000 + i * 7);
			fchunks[k][i] = (float)(k * 60 + i) * 0.37f - 20.0f;
		}
	}
	const struct {
		int boundary, src_kind, dst_kind;
		int64_t origin[3], dims[3], dst_shape[3];
	} cases[] = {
		{HALO_BOUNDARY_PERIODIC, HALO_U2, HALO_F4, {-2, -3, 3}, {11, 14, 12}, {7, 9, 11}},
		{HALO_BOUNDARY_REFLECT, HALO_U2, HALO_F4, {-3, 4, -7}, {12, 9, 20}, {7, 9, 11}},
		{HALO_BOUNDARY_NEAREST, HALO_F4, HALO_U1, {-1, -2, -2}, {9, 13, 15}, {7, 9, 11}},
		{HALO_BOUNDARY_CONSTANT, HALO_F4, HALO_F4, {2, -4, 5}, {8, 10, 9}, {7, 9, 11}},
		{HALO_BOUNDARY_NONE, HALO_U2, HALO_F4, {1, 2, 3}, {5, 6, 7}, {7, 9, 11}},
		{HALO_BOUNDARY_NONE, HALO_F4, HALO_U2, {4, 5, 6}, {4, 5, 6}, {6, 8, 10}},
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		a->boundary = cases[c].boundary;
		a->src_kind = (halo_dtype_kind_t)cases[c].src_kind;
		a->dst_kind = (halo_dtype_kind_t)cases[c].dst_kind;
		a->constant = 3.5;
		a->fill = 9;
		a->factor[0] = a->factor[1] = a->factor[2] = 1;
		memcpy(a->dst_origin, cases[c].origin, sizeof a->dst_origin);
		memcpy(a->dst_dims, cases[c].dims, sizeof a->dst_dims);
		memcpy(a->dst_shape, cases[c].dst_shape, sizeof a->dst_shape);
		size_t n = (size_t)(a->dst_dims[0] * a->dst_dims[1] * a->dst_dims[2]);
		double *cpu = calloc(n, sizeof *cpu), *rule = calloc(n, sizeof *rule);
		const void *src[NSRC];
		for (int k = 0; k < NSRC; k++)
			src[k] = a->src_kind == HALO_U2 ? (const void *)chunks[k] : (const void *)fchunks[k];
		halo_gather_run(a, src, cpu);
		int64_t *space = malloc(halo__gather_space(a) * sizeof *space);
		struct halo_gather_plan p;
		halo__gather_plan(a, space, &p);
		for (int64_t z = 0; z < a->dst_dims[0]; z++)
			for (int64_t y = 0; y < a->dst_dims[1]; y++)
				for (int64_t x = 0; x < a->dst_dims[2]; x++)
					halo_gather_voxel(&p, src, z, y, x, rule);
		size_t size = halo_dtype_size((halo_dtype_t){a->dst_kind, 0});
		tap_ok(memcmp(cpu, rule, n * size) == 0,
		       "gather_math: the GPU's per-voxel rule equals the CPU gather, case %zu "
		       "(boundary %d, %d -> %d)", c, a->boundary, a->src_kind, a->dst_kind);
		int cuda = first_worker(STARPU_CUDA_WORKER);
		void *gpu = cuda >= 0 ? gather_on_gpu(cuda, a, src, n, size) : NULL;
		if (cuda < 0)
			tap_skip("no CUDA device on this machine", "gather on a GPU worker, case %zu", c);
		else
			tap_ok(gpu && memcmp(cpu, gpu, n * size) == 0,
			       "gather on a GPU worker equals the CPU gather, case %zu", c);
		free(gpu);
		free(space);
		free(cpu);
		free(rule);
	}
	/* An averaging gather whose sums do not fit in memory reports it
	 * (before, it returned with the destination unwritten). */
	a->boundary = HALO_BOUNDARY_NONE;
	a->src_kind = HALO_U2;
	a->dst_kind = HALO_U2;
	for (int d = 0; d < 3; d++) {
		a->factor[d] = 2;
		a->dst_origin[d] = 0;
		a->dst_dims[d] = a->dst_shape[d] = (int64_t)1 << 15;
	}
	const void *src[NSRC];
	for (int k = 0; k < NSRC; k++)
		src[k] = chunks[k];
	tap_ok(halo_gather_run(a, src, NULL) == -1,
	       "an averaging gather out of memory returns -1, and writes nothing");
	for (int k = 0; k < NSRC; k++) {
		free(chunks[k]);
		free(fchunks[k]);
	}
	free(a);
}

static int first_worker(enum starpu_worker_archtype type)
{
	for (unsigned i = 0; i < starpu_worker_get_count(); i++)
		if (starpu_worker_get_type((int)i) == type)
			return (int)i;
	return -1;
}

/* Every value of HALO_CUFFT_CALLBACKS: kernels, all callbacks, load only,
 * store only. */
static const char *const cb_paths[] = {"0", "1", "load", "store"};

/* A contiguous float block of shape n, in main memory at p, or with no
 * home (p NULL) for StarPU to allocate where a task writes it. */
static void float_block(starpu_data_handle_t *h, const float *p, const int n[3])
{
	starpu_block_data_register(h, p ? STARPU_MAIN_RAM : -1, (uintptr_t)p, (uint32_t)n[2],
				   (uint32_t)(n[2] * n[1]), (uint32_t)n[2], (uint32_t)n[1],
				   (uint32_t)n[0], sizeof(float));
}

static float *run_on(int worker, starpu_data_handle_t img, starpu_data_handle_t otf,
		     const int on[3], const struct halo_rl_args *a)
{
	starpu_data_handle_t out;
	float_block(&out, NULL, on);
	struct halo_rl_args *copy = malloc(sizeof *copy); /* StarPU frees it */
	*copy = *a;
	int rc = starpu_task_insert(&halo_rl_cl, STARPU_R, img, STARPU_R, otf, STARPU_W, out,
				    STARPU_CL_ARGS, copy, sizeof *copy, STARPU_EXECUTE_ON_WORKER,
				    worker, 0);
	size_t n = (size_t)on[0] * on[1] * on[2];
	float *res = malloc(n * sizeof *res);
	if (rc == 0 && res) {
		starpu_data_acquire(out, STARPU_R);
		memcpy(res, starpu_data_get_local_ptr(out), n * sizeof *res);
		starpu_data_release(out);
	}
	starpu_data_unregister(out);
	return rc == 0 ? res : (free(res), NULL);
}

static double max_rel(const float *a, const float *b, size_t n)
{
	double d = 0, m = 0;
	for (size_t i = 0; i < n; i++) {
		d = fmax(d, fabs((double)a[i] - b[i]));
		m = fmax(m, fabs((double)b[i]));
	}
	return m > 0 ? d / m : d;
}

/* The otf codelet pinned to a GPU worker against halo_otf_compute's want. */
static void otf_on_gpu(int cuda, const float *psf, const int pn[3], const int n[3],
		       const float *want)
{
	starpu_data_handle_t hp, ho;
	float_block(&hp, psf, pn);
	size_t nf = halo_otf_floats(n);
	starpu_vector_data_register(&ho, -1, 0, (uint32_t)nf, sizeof(float));
	int failed = 0;
	struct halo_otf_args *a = malloc(sizeof *a);
	*a = (struct halo_otf_args){.n = {n[0], n[1], n[2]}, .failed = &failed};
	int rc = starpu_task_insert(&halo_otf_cl, STARPU_R, hp, STARPU_W, ho, STARPU_CL_ARGS, a,
				    sizeof *a, STARPU_EXECUTE_ON_WORKER, cuda, 0);
	double d = INFINITY;
	if (rc == 0) {
		starpu_data_acquire(ho, STARPU_R);
		d = max_rel(starpu_data_get_local_ptr(ho), want, nf);
		starpu_data_release(ho);
	}
	tap_ok(rc == 0 && !failed && d <= 1e-5, "PSF spectrum on a GPU = CPU to 1e-5 (%.1e), %dx%dx%d",
	       d, n[0], n[1], n[2]);
	starpu_data_unregister(hp);
	starpu_data_unregister(ho);
}

/* One shape: image n, PSF pn, output on at trim, iterations it. */
static void compare(const int n[3], const int pn[3], const int trim[3], const int on[3], int it)
{
	size_t nv = (size_t)n[0] * n[1] * n[2], np = (size_t)pn[0] * pn[1] * pn[2];
	size_t no = (size_t)on[0] * on[1] * on[2];
	float *img, *otf, *psf = malloc(np * sizeof *psf), *ref = malloc(no * sizeof *ref);
	starpu_malloc((void **)&img, nv * sizeof *img);
	starpu_malloc((void **)&otf, halo_otf_floats(n) * sizeof *otf);
	double sum = 0;
	for (size_t i = 0; i < np; i++)
		sum += psf[i] = (float)(1.0 + (i * 7919 % 13)) * (i % 3 ? 1.0f : 0.3f);
	for (size_t i = 0; i < np; i++)
		psf[i] = (float)(psf[i] / sum);
	for (size_t i = 0; i < nv; i++)
		img[i] = i % 17 ? (float)((i * 2654435761u) % 1000) * 0.1f + 5.0f : 0.0f;
	int valid[3] = {on[0], on[1], on[2]};
	halo_otf_compute(psf, pn, n, otf);
	halo_rl_compute(img, n, otf, it, trim, valid, ref, on, 1, NULL);

	starpu_data_handle_t hi, ho;
	float_block(&hi, img, n);
	starpu_vector_data_register(&ho, STARPU_MAIN_RAM, (uintptr_t)otf,
				    (uint32_t)halo_otf_floats(n), sizeof(float));
	struct halo_rl_args a = {.iterations = it, .threads = 1};
	memcpy(a.trim, trim, sizeof a.trim);
	memcpy(a.valid, valid, sizeof a.valid);
	int cuda = first_worker(STARPU_CUDA_WORKER);
	if (cuda >= 0)
		otf_on_gpu(cuda, psf, pn, n, otf);
	float *cpu = run_on(first_worker(STARPU_CPU_WORKER), hi, ho, on, &a);
	/* Every GPU path: the elementwise steps as kernels (the default), in
	 * cuFFT's callbacks, and half of them in each. */
	float *gpu[5] = {NULL};
	for (int p = 0; p < 4 && cuda >= 0; p++) {
		setenv("HALO_CUFFT_CALLBACKS", cb_paths[p], 1);
		gpu[p] = run_on(cuda, hi, ho, on, &a);
	}
	unsetenv("HALO_CUFFT_CALLBACKS");
	/* ... and the kernels launched one by one, not as CUDA graphs. */
	setenv("HALO_CUDA_GRAPHS", "0", 1);
	gpu[4] = cuda >= 0 ? run_on(cuda, hi, ho, on, &a) : NULL;
	unsetenv("HALO_CUDA_GRAPHS");
	char what[160];
	snprintf(what, sizeof what, "%dx%dx%d, PSF %dx%dx%d, %d iterations, out %dx%dx%d", n[0],
		 n[1], n[2], pn[0], pn[1], pn[2], it, on[0], on[1], on[2]);
	if (tap_ok(cpu != NULL, "RL task ran on a CPU worker: %s", what)) {
		double r = max_rel(cpu, ref, no);
		tap_ok(r <= 1e-6, "CPU task = halo_rl_compute (%.1e): %s", r, what);
	}
	if (cuda < 0)
		tap_skip("no CUDA device on this machine", "RL on a GPU worker: %s", what);
	else if (tap_ok(gpu[0] != NULL, "RL task ran on a GPU worker: %s", what)) {
		static const char *const names[] = {"kernels", "callbacks", "load callbacks",
						    "store callbacks", "kernels, no graphs"};
		for (int p = 0; p < 5; p++) {
			double g = gpu[p] && cpu ? max_rel(gpu[p], cpu, no) : INFINITY;
			tap_ok(g <= 1e-4, "GPU with %s = CPU to 1e-4 (%.1e): %s", names[p], g, what);
		}
	}
	starpu_data_unregister(hi);
	starpu_data_unregister(ho);
	starpu_free(img);
	starpu_free(otf);
	free(psf);
	free(ref);
	for (int p = 0; p < 5; p++)
		free(gpu[p]);
	free(cpu);
}

#ifdef HALO_USE_CUDA
/* rl_warm (deconvolve runs it on each GPU before the first read) makes the
 * worker's plan set for a shape, and the rl task that follows uses it:
 * one plan set more after the warm task, none after the rl task, whose
 * result is still the CPU's. */
static void warm_checks(void)
{
	int cuda = first_worker(STARPU_CUDA_WORKER);
	if (cuda < 0) {
		tap_skip("no CUDA device on this machine", "rl_warm makes the plans rl uses");
		return;
	}
	int n[3] = {20, 30, 36}, pn[3] = {5, 5, 5};
	size_t nv = (size_t)n[0] * n[1] * n[2], np = (size_t)pn[0] * pn[1] * pn[2];
	float *img, *otf, psf[125];
	starpu_malloc((void **)&img, nv * sizeof *img);
	starpu_malloc((void **)&otf, halo_otf_floats(n) * sizeof *otf);
	for (size_t i = 0; i < np; i++)
		psf[i] = (float)(1 + i % 4) / 311.0f; /* sums to 1 */
	for (size_t i = 0; i < nv; i++)
		img[i] = (float)((i * 40503u) % 977) + 1.0f;
	halo_otf_compute(psf, pn, n, otf);
	starpu_data_handle_t hi, ho;
	float_block(&hi, img, n);
	starpu_vector_data_register(&ho, STARPU_MAIN_RAM, (uintptr_t)otf,
				    (uint32_t)halo_otf_floats(n), sizeof(float));
	int f0, k0, e, f1, k1, f2, k2;
	halo_rl_cuda_plans(&f0, &k0, &e);
	int *shape = malloc(sizeof n); /* StarPU frees it */
	memcpy(shape, n, sizeof n);
	int rc = starpu_task_insert(&halo_rl_warm_cl, STARPU_R, ho, STARPU_CL_ARGS, shape,
				    sizeof n, STARPU_EXECUTE_ON_WORKER, cuda, 0);
	starpu_task_wait_for_all();
	halo_rl_cuda_plans(&f1, &k1, &e);
	tap_ok(rc == 0 && f1 + k1 == f0 + k0 + 1, "rl_warm made one plan set (%d before, %d after)",
	       f0 + k0, f1 + k1);
	struct halo_rl_args a = {.iterations = 8, .threads = 1, .valid = {n[0], n[1], n[2]}};
	float *gpu = run_on(cuda, hi, ho, n, &a), *cpu = run_on(first_worker(STARPU_CPU_WORKER),
								 hi, ho, n, &a);
	halo_rl_cuda_plans(&f2, &k2, &e);
	double d = gpu && cpu ? max_rel(gpu, cpu, nv) : INFINITY;
	tap_ok(f2 + k2 == f1 + k1 && d <= 1e-4,
	       "the rl task after it made no plans (%d sets) and = CPU to 1e-4 (%.1e)", f2 + k2, d);
	starpu_data_unregister(hi);
	starpu_data_unregister(ho);
	starpu_free(img);
	starpu_free(otf);
	free(gpu);
	free(cpu);
}
#endif

/* One exact-mode half-iteration task pinned to worker (-1: none): the
 * chunk it leaves (forward: the ratio; backward: est0 times the
 * correction), or NULL when it could not run. */
static float *half_on(int worker, int forward, const float *haloed, const int n[3],
		      starpu_data_handle_t otf, const float *image, const float *est0,
		      const int on[3], const int off[3])
{
	if (worker < 0)
		return NULL;
	size_t nc = (size_t)on[0] * on[1] * on[2];
	float *chunk = malloc(nc * sizeof *chunk);
	memcpy(chunk, forward ? image : est0, nc * sizeof *chunk); /* forward overwrites it */
	starpu_data_handle_t hh, hc, hi = NULL;
	float_block(&hh, haloed, n);
	float_block(&hc, chunk, on);
	int failed = 0;
	struct halo_rl_half_args *a = malloc(sizeof *a);
	*a = (struct halo_rl_half_args){.off = {off[0], off[1], off[2]}, .failed = &failed};
	int rc;
	if (forward) {
		float_block(&hi, image, on);
		rc = starpu_task_insert(&halo_rl_forward_cl, STARPU_R, hh, STARPU_R, hi, STARPU_R,
					otf, STARPU_W, hc, STARPU_CL_ARGS, a, sizeof *a,
					STARPU_EXECUTE_ON_WORKER, worker, 0);
	} else {
		rc = starpu_task_insert(&halo_rl_backward_cl, STARPU_R, hh, STARPU_R, otf, STARPU_RW,
					hc, STARPU_CL_ARGS, a, sizeof *a, STARPU_EXECUTE_ON_WORKER,
					worker, 0);
	}
	starpu_task_wait_for_all();
	starpu_data_unregister(hh);
	starpu_data_unregister(hc);
	if (hi)
		starpu_data_unregister(hi);
	if (rc || failed) {
		free(chunk);
		return NULL;
	}
	return chunk;
}

/* The exact mode's half-iterations: on a CPU worker exactly
 * halo_rl_forward/backward_compute, on a GPU worker the same to 1e-4,
 * with the OTF product in cuFFT's load callback and as a kernel. */
static void compare_half(const int n[3], const int pn[3], const int on[3], const int off[3])
{
	size_t nv = (size_t)n[0] * n[1] * n[2], np = (size_t)pn[0] * pn[1] * pn[2];
	size_t nc = (size_t)on[0] * on[1] * on[2];
	float *haloed = malloc(nv * sizeof *haloed), *psf = malloc(np * sizeof *psf), *otf;
	float *image = malloc(nc * sizeof *image), *est = malloc(nc * sizeof *est);
	float *ratio = malloc(nc * sizeof *ratio), *next = malloc(nc * sizeof *next);
	starpu_malloc((void **)&otf, halo_otf_floats(n) * sizeof *otf);
	for (size_t i = 0; i < np; i++)
		psf[i] = 1.0f / (float)np * (i % 5 ? 1.2f : 0.2f);
	for (size_t i = 0; i < nv; i++)
		haloed[i] = (float)((i * 2654435761u) % 997) * 0.01f + 1.0f;
	for (size_t i = 0; i < nc; i++) {
		image[i] = i % 11 ? (float)(i * 40503u % 503) * 0.02f : 0.0f;
		est[i] = next[i] = (float)(i * 7919u % 89) * 0.05f + 0.5f;
	}
	halo_otf_compute(psf, pn, n, otf);
	halo_rl_forward_compute(haloed, n, otf, image, on, off, ratio);
	halo_rl_backward_compute(haloed, n, otf, next, on, off);
	starpu_data_handle_t ho;
	starpu_vector_data_register(&ho, STARPU_MAIN_RAM, (uintptr_t)otf,
				    (uint32_t)halo_otf_floats(n), sizeof(float));
	int cpu = first_worker(STARPU_CPU_WORKER), cuda = first_worker(STARPU_CUDA_WORKER);
	char what[160];
	snprintf(what, sizeof what, "haloed %dx%dx%d, chunk %dx%dx%d at %d,%d,%d", n[0], n[1], n[2],
		 on[0], on[1], on[2], off[0], off[1], off[2]);
	for (int forward = 1; forward >= 0; forward--) {
		const char *dir = forward ? "forward" : "backward";
		const float *want = forward ? ratio : next;
		float *c = half_on(cpu, forward, haloed, n, ho, image, est, on, off);
		tap_ok(c && max_rel(c, want, nc) == 0, "exact %s task on a CPU worker = halo_rl_%s_compute: %s",
		       dir, dir, what);
		free(c);
		if (cuda < 0) {
			tap_skip("no CUDA device on this machine", "exact %s on a GPU worker: %s", dir,
				 what);
			continue;
		}
		/* A half-iteration has no store callbacks: "store" runs kernels. */
		for (int p = 0; p < 4; p++) {
			setenv("HALO_CUFFT_CALLBACKS", cb_paths[p], 1);
			float *g = half_on(cuda, forward, haloed, n, ho, image, est, on, off);
			unsetenv("HALO_CUFFT_CALLBACKS");
			double d = g ? max_rel(g, want, nc) : INFINITY;
			tap_ok(d <= 1e-4, "exact %s on a GPU worker (HALO_CUFFT_CALLBACKS=%s) = CPU to "
			       "1e-4 (%.1e): %s", dir, cb_paths[p], d, what);
			free(g);
		}
	}
	starpu_data_unregister(ho);
	starpu_free(otf);
	free(haloed);
	free(psf);
	free(image);
	free(est);
	free(ratio);
	free(next);
}

/* A CPU worker takes an RL task too large to calibrate on (a seed-sized
 * chunk) only where no GPU could run it; small ones always. */
static void cpu_calibration_checks(void)
{
	tap_ok(halo_rl_cpu_may_run(HALO_RL_CPU_CALIBRATE_WORK, NAN) &&
		       !halo_rl_cpu_may_run(2 * HALO_RL_CPU_CALIBRATE_WORK, NAN) &&
		       halo_rl_cpu_may_run(2 * HALO_RL_CPU_CALIBRATE_WORK, 30.0),
	       "a CPU calibrates RL on small tasks only; measured shapes run at any size");
	const int store = HALO_RL_CB_STORE, all = HALO_RL_CB_LOAD | HALO_RL_CB_STORE;
	tap_ok(halo_rl_callbacks_choice((int[3]){128, 256, 256}, NULL) == 0 &&
		       halo_rl_callbacks_choice((int[3]){384, 1152, 1152}, NULL) == store &&
		       halo_rl_callbacks_choice((int[3]){384, 1152, 1152}, "") == store &&
		       halo_rl_callbacks_choice((int[3]){384, 1152, 1152}, "yes") == store &&
		       halo_rl_callbacks_choice((int[3]){8, 8, 8}, "store") == store &&
		       halo_rl_callbacks_choice((int[3]){8, 8, 8}, "load") == HALO_RL_CB_LOAD &&
		       halo_rl_callbacks_choice((int[3]){384, 1152, 1152}, "0") == 0 &&
		       halo_rl_callbacks_choice((int[3]){8, 8, 8}, "1") == all,
	       "GPU RL fuses the stores from 2^28 voxels unless HALO_CUFFT_CALLBACKS says");
	starpu_data_handle_t h[3];
	/* An odd shape and count, so that no model on disk has measured it. */
	starpu_block_data_register(&h[0], -1, 0, 1151, 1151 * 1153, 1151, 1153, 383, sizeof(float));
	starpu_vector_data_register(&h[1], -1, 0, 1, sizeof(float));
	starpu_block_data_register(&h[2], -1, 0, 1024, 1024 * 1024, 1024, 1024, 256, sizeof(float));
	struct halo_rl_args a = {.iterations = 97, .threads = 1};
	struct starpu_task *t = starpu_task_create();
	t->cl = &halo_rl_cl;
	t->cl_arg = &a;
	t->cl_arg_size = sizeof a;
	t->destroy = 0;
	for (int i = 0; i < 3; i++)
		STARPU_TASK_SET_HANDLE(t, h[i], i);
	int cpu = first_worker(STARPU_CPU_WORKER), gpus = (int)starpu_cuda_worker_get_count();
	int can = cpu >= 0 && starpu_worker_can_execute_task((unsigned)cpu, t, 0);
	tap_ok(can == (gpus == 0),
	       "an uncalibrated 383x1153x1151 chunk, 97 iterations: %s a CPU worker (%d GPUs)",
	       can ? "runs on" : "is kept off", gpus);
	starpu_task_destroy(t);
	for (int i = 0; i < 3; i++)
		starpu_data_unregister(h[i]);
}

int main(void)
{
	math_checks();
	halo_runtime_opts_t opts;
	halo_runtime_opts_init(&opts);
	opts.ncpu = 1;
#ifndef HALO_USE_CUDA
	opts.ncuda = 0; /* halo's RL codelet has no CUDA implementation here */
#endif
	halo_runtime_t *rt = NULL;
	halo_error_t err = {0};
	if (!tap_ok(halo_runtime_init(&opts, &rt, &err) == HALO_OK, "runtime starts: %s", err.msg))
		return tap_done();
	gather_checks();
	cpu_calibration_checks();
	compare((int[3]){16, 24, 32}, (int[3]){5, 7, 3}, (int[3]){0, 0, 0}, (int[3]){16, 24, 32}, 10);
	compare((int[3]){17, 23, 31}, (int[3]){4, 6, 5}, (int[3]){3, 2, 5}, (int[3]){9, 15, 21}, 25);
	compare((int[3]){64, 96, 80}, (int[3]){15, 15, 15}, (int[3]){7, 7, 7}, (int[3]){50, 82, 66},
		5);
	compare_half((int[3]){20, 26, 31}, (int[3]){5, 7, 6}, (int[3]){10, 12, 14},
		     (int[3]){4, 6, 7});
	compare_half((int[3]){32, 40, 48}, (int[3]){9, 9, 9}, (int[3]){17, 25, 33},
		     (int[3]){8, 7, 6});
#ifdef HALO_USE_CUDA
	warm_checks();
	int fused, kernels, last_error;
	halo_rl_cuda_plans(&fused, &kernels, &last_error);
	if (first_worker(STARPU_CUDA_WORKER) < 0)
		tap_skip("no CUDA device on this machine", "cuFFT links RL's callbacks");
	else
		tap_ok(fused > 0 && last_error == 0,
		       "cuFFT links RL's callbacks: %d fused plan sets, %d with kernels, "
		       "last cuFFT error %d", fused, kernels, last_error);
	/* compare's runs of 10 and 25 iterations: at least the plain plans
	 * (kernels) capture; cuFFT may refuse some plans with callbacks. */
	int graphs, graph_failures;
	halo_rl_cuda_graphs(&graphs, &graph_failures);
	if (first_worker(STARPU_CUDA_WORKER) < 0)
		tap_skip("no CUDA device on this machine", "RL iterations run as CUDA graphs");
	else
		tap_ok(graphs > 0, "RL iterations run as CUDA graphs: %d captured, %d captures failed",
		       graphs, graph_failures);
#endif
	halo_runtime_shutdown(rt);
	return tap_done();
}
