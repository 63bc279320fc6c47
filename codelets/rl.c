/* CPU implementations of the otf and rl codelets on FFTW (see rl.h). An
 * iteration is two real-to-complex and two complex-to-real transforms with
 * the elementwise steps of rl_math.h fused into the loops between them, so
 * each step is one pass over memory. */
#include "config.h"
#include "codelets/rl.h"
#include "codelets/fft.h"
#include "codelets/rl_math.h"

#include <string.h>

static void otf_cpu(void *buffers[], void *cl_arg);
static void rl_cpu(void *buffers[], void *cl_arg);

static struct starpu_perfmodel otf_model = {.type = STARPU_HISTORY_BASED, .symbol = "halo_otf"};
static struct starpu_perfmodel rl_model = {.type = STARPU_HISTORY_BASED, .symbol = "halo_rl"};

struct starpu_codelet halo_otf_cl = {
	.cpu_funcs = {otf_cpu},
	.cpu_funcs_name = {"otf_cpu"},
	.nbuffers = 2,
	.modes = {STARPU_R, STARPU_W},
	.model = &otf_model,
	.name = "otf",
};

struct starpu_codelet halo_rl_cl = {
	.cpu_funcs = {rl_cpu},
	.cpu_funcs_name = {"rl_cpu"},
	.type = STARPU_FORKJOIN,
	.max_parallelism = INT_MAX,
	.nbuffers = 3,
	.modes = {STARPU_R, STARPU_R, STARPU_W},
	.model = &rl_model,
	.name = "rl",
};

static inline int wrap(int i, int n)
{
	int r = i % n;
	return r < 0 ? r + n : r;
}

int halo_otf_compute(const float *psf, const int pn[3], const int n[3], float *otf)
{
	struct halo_fft_work *w = halo_fft_work(n, 1);
	if (!w)
		return -1;
	memset(w->a, 0, w->nreal * sizeof *w->a);
	/* Circular placement: PSF voxel i goes to (i - pn//2) mod n, so the
	 * centre voxel sits at the origin (odd and even sizes alike). */
	for (int z = 0; z < pn[0]; z++)
		for (int y = 0; y < pn[1]; y++) {
			size_t dst = ((size_t)wrap(z - pn[0] / 2, n[0]) * (size_t)n[1] +
				      (size_t)wrap(y - pn[1] / 2, n[1])) * (size_t)n[2];
			const float *row = psf + ((size_t)z * pn[1] + (size_t)y) * pn[2];
			for (int x = 0; x < pn[2]; x++)
				w->a[dst + (size_t)wrap(x - pn[2] / 2, n[2])] += row[x];
		}
	halo_fft_r2c(w, w->a);
	float scale = 1.0f / (float)w->nreal;
	const float *s = (const float *)w->spec;
	for (size_t i = 0; i < 2 * w->ncplx; i++)
		otf[i] = s[i] * scale;
	return 0;
}

/* spec *= H (or conj(H)). */
static void apply_otf(struct halo_fft_work *w, const float *otf, int conj)
{
	float *s = (float *)w->spec;
	for (size_t i = 0; i < w->ncplx; i++)
		halo_rl_cmul(&s[2 * i], &s[2 * i + 1], otf[2 * i], otf[2 * i + 1], conj);
}

int halo_convolve_compute(const float *image, const int n[3], const float *otf, float *out)
{
	struct halo_fft_work *w = halo_fft_work(n, 1);
	if (!w)
		return -1;
	memcpy(w->a, image, w->nreal * sizeof *w->a);
	halo_fft_r2c(w, w->a);
	apply_otf(w, otf, 0);
	halo_fft_c2r(w, w->b);
	memcpy(out, w->b, w->nreal * sizeof *out);
	return 0;
}

int halo_rl_compute(const float *image, const int n[3], const float *otf, int iterations,
		    const int trim[3], const int valid[3], float *out, const int on[3],
		    int nthreads)
{
	struct halo_fft_work *w = halo_fft_work(n, nthreads);
	if (!w)
		return -1;
	float *est = w->a, *tmp = w->b;
	size_t N = w->nreal;
	memcpy(est, image, N * sizeof *est);
	for (int it = 0; it < iterations; it++) {
		halo_fft_r2c(w, est);
		apply_otf(w, otf, 0);
		halo_fft_c2r(w, tmp);
		for (size_t i = 0; i < N; i++)
			tmp[i] = halo_rl_ratio(image[i], tmp[i]);
		halo_fft_r2c(w, tmp);
		apply_otf(w, otf, 1);
		halo_fft_c2r(w, tmp);
		for (size_t i = 0; i < N; i++)
			est[i] = halo_rl_update(est[i], tmp[i]);
	}
	memset(out, 0, (size_t)on[0] * (size_t)on[1] * (size_t)on[2] * sizeof *out);
	for (int z = 0; z < valid[0]; z++)
		for (int y = 0; y < valid[1]; y++)
			memcpy(out + ((size_t)z * on[1] + (size_t)y) * on[2],
			       est + (((size_t)(z + trim[0]) * n[1] + (size_t)(y + trim[1])) * n[2] +
				      (size_t)trim[2]),
			       (size_t)valid[2] * sizeof *out);
	return 0;
}

static void block_shape(void *buf, int n[3])
{
	n[0] = (int)STARPU_BLOCK_GET_NZ(buf);
	n[1] = (int)STARPU_BLOCK_GET_NY(buf);
	n[2] = (int)STARPU_BLOCK_GET_NX(buf);
}

static void otf_cpu(void *buffers[], void *cl_arg)
{
	const struct halo_otf_args *a = cl_arg;
	int pn[3];
	block_shape(buffers[0], pn);
	if (halo_otf_compute((const float *)STARPU_BLOCK_GET_PTR(buffers[0]), pn, a->n,
			     (float *)STARPU_VECTOR_GET_PTR(buffers[1])) < 0 && a->failed)
		__atomic_store_n(a->failed, 1, __ATOMIC_RELAXED);
}

static void rl_cpu(void *buffers[], void *cl_arg)
{
	const struct halo_rl_args *a = cl_arg;
	int n[3], on[3];
	block_shape(buffers[0], n);
	block_shape(buffers[2], on);
	int nthreads = starpu_combined_worker_get_size();
	if (halo_rl_compute((const float *)STARPU_BLOCK_GET_PTR(buffers[0]), n,
			    (const float *)STARPU_VECTOR_GET_PTR(buffers[1]), a->iterations, a->trim,
			    a->valid, (float *)STARPU_BLOCK_GET_PTR(buffers[2]), on, nthreads) < 0 &&
	    a->failed)
		__atomic_store_n(a->failed, 1, __ATOMIC_RELAXED);
}
