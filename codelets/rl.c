/* CPU implementations of the otf and rl codelets on FFTW (see rl.h). An
 * iteration is two real-to-complex and two complex-to-real transforms with
 * the elementwise steps of rl_math.h fused into the loops between them, so
 * each step is one pass over memory. */
#include "config.h"
#include "codelets/rl.h"
#include "codelets/fft.h"
#include "codelets/rl_math.h"
#include "util/signals.h"

#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

static void otf_cpu(void *buffers[], void *cl_arg);
static void rl_cpu(void *buffers[], void *cl_arg);
static void forward_cpu(void *buffers[], void *cl_arg);
static void backward_cpu(void *buffers[], void *cl_arg);

static struct starpu_perfmodel otf_model = {.type = STARPU_HISTORY_BASED, .symbol = "halo_otf"};
static struct starpu_perfmodel rl_model = {.type = STARPU_HISTORY_BASED, .symbol = "halo_rl"};
static struct starpu_perfmodel forward_model = {.type = STARPU_HISTORY_BASED,
						.symbol = "halo_rl_forward"};
static struct starpu_perfmodel backward_model = {.type = STARPU_HISTORY_BASED,
						 .symbol = "halo_rl_backward"};

struct starpu_codelet halo_rl_forward_cl = {
	.cpu_funcs = {forward_cpu},
	.cpu_funcs_name = {"forward_cpu"},
	.nbuffers = 4,
	.modes = {STARPU_R, STARPU_R, STARPU_R, STARPU_W},
	.model = &forward_model,
	.name = "rl_forward",
};

struct starpu_codelet halo_rl_backward_cl = {
	.cpu_funcs = {backward_cpu},
	.cpu_funcs_name = {"backward_cpu"},
	.nbuffers = 3,
	.modes = {STARPU_R, STARPU_R, STARPU_RW},
	.model = &backward_model,
	.name = "rl_backward",
};

struct starpu_codelet halo_otf_cl = {
	.cpu_funcs = {otf_cpu},
	.cpu_funcs_name = {"otf_cpu"},
#ifdef HALO_USE_CUDA
	/* The spectrum is made where it is used: no OTF crosses the bus. */
	.cuda_funcs = {halo__otf_cuda},
#endif
	.nbuffers = 2,
	.modes = {STARPU_R, STARPU_W},
	.model = &otf_model,
	.name = "otf",
};

struct starpu_codelet halo_rl_cl = {
	.cpu_funcs = {rl_cpu},
	.cpu_funcs_name = {"rl_cpu"},
#ifdef HALO_USE_CUDA
	.cuda_funcs = {halo__rl_cuda},
	.cuda_flags = {STARPU_CUDA_ASYNC},
#endif
	.nbuffers = 3,
	.modes = {STARPU_R, STARPU_R, STARPU_W},
	.model = &rl_model,
	.name = "rl",
};

int halo_otf_compute(const float *psf, const int pn[3], const int n[3], float *otf)
{
	struct halo_fft_work *w = halo_fft_work(n, 1);
	if (!w)
		return -1;
	memset(w->a, 0, w->nreal * sizeof *w->a);
	for (int z = 0; z < pn[0]; z++)
		for (int y = 0; y < pn[1]; y++) {
			size_t dst = ((size_t)halo_otf_place(z, pn[0], n[0]) * (size_t)n[1] +
				      (size_t)halo_otf_place(y, pn[1], n[1])) * (size_t)n[2];
			const float *row = psf + ((size_t)z * pn[1] + (size_t)y) * pn[2];
			for (int x = 0; x < pn[2]; x++)
				w->a[dst + (size_t)halo_otf_place(x, pn[2], n[2])] += row[x];
		}
	halo_fft_r2c(w, w->a);
	float scale = 1.0f / (float)w->nreal;
	const float *s = (const float *)w->spec;
	for (size_t i = 0; i < 2 * w->ncplx; i++)
		otf[i] = s[i] * scale;
	return 0;
}

/* The elementwise steps, each over a range [lo, hi) so that a parallel
 * task can split them over its threads. */
enum rl_step { STEP_OTF, STEP_OTF_CONJ, STEP_RATIO, STEP_UPDATE };

struct step_job {
	enum rl_step step;
	float *x;            /* spectrum (OTF steps) or work array */
	const float *y;      /* OTF, image, or correction */
	float *est;          /* STEP_UPDATE's estimate */
	ptrdiff_t lo, hi;
};

static void *step_run(void *arg)
{
	struct step_job *j = arg;
	float *x = j->x;
	const float *y = j->y;
	switch (j->step) {
	case STEP_OTF:
	case STEP_OTF_CONJ:
		for (ptrdiff_t i = j->lo; i < j->hi; i++)
			halo_rl_cmul(&x[2 * i], &x[2 * i + 1], y[2 * i], y[2 * i + 1],
				     j->step == STEP_OTF_CONJ);
		break;
	case STEP_RATIO:
		for (ptrdiff_t i = j->lo; i < j->hi; i++)
			x[i] = halo_rl_ratio(y[i], x[i]);
		break;
	case STEP_UPDATE:
		for (ptrdiff_t i = j->lo; i < j->hi; i++)
			j->est[i] = halo_rl_update(j->est[i], x[i]);
		break;
	}
	return NULL;
}

/* Runs a step over n elements on nthreads threads (this one included).
 * Threads are started per step: a few tens of microseconds against
 * milliseconds of work, and nothing spins between steps to steal cores
 * from FFTW's threads. */
static void step(enum rl_step st, float *x, const float *y, float *est, ptrdiff_t n, int nthreads)
{
	enum { MAX_THREADS = 64 };
	if (nthreads > MAX_THREADS)
		nthreads = MAX_THREADS;
	struct step_job jobs[MAX_THREADS];
	pthread_t tid[MAX_THREADS];
	int started[MAX_THREADS] = {0};
	for (int t = 0; t < nthreads; t++)
		jobs[t] = (struct step_job){st, x, y, est, n * t / nthreads, n * (t + 1) / nthreads};
	for (int t = 1; t < nthreads; t++)
		started[t] = pthread_create(&tid[t], NULL, step_run, &jobs[t]) == 0;
	step_run(&jobs[0]);
	for (int t = 1; t < nthreads; t++) {
		if (started[t])
			pthread_join(tid[t], NULL);
		else
			step_run(&jobs[t]); /* no thread to be had: do it here */
	}
}

int halo_convolve_compute(const float *image, const int n[3], const float *otf, float *out)
{
	struct halo_fft_work *w = halo_fft_work(n, 1);
	if (!w)
		return -1;
	memcpy(w->a, image, w->nreal * sizeof *w->a);
	halo_fft_r2c(w, w->a);
	step(STEP_OTF, (float *)w->spec, otf, NULL, (ptrdiff_t)w->ncplx, 1);
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
	ptrdiff_t N = (ptrdiff_t)w->nreal;
	memcpy(est, image, (size_t)N * sizeof *est);
	ptrdiff_t nc = (ptrdiff_t)w->ncplx;
	float *spec = (float *)w->spec;
	/* After SIGINT the run is abandoned: stop within an iteration. */
	for (int it = 0; it < iterations && !halo_interrupted(); it++) {
		halo_fft_r2c(w, est);
		step(STEP_OTF, spec, otf, NULL, nc, nthreads);
		halo_fft_c2r(w, tmp);
		step(STEP_RATIO, tmp, image, NULL, N, nthreads);
		halo_fft_r2c(w, tmp);
		step(STEP_OTF_CONJ, spec, otf, NULL, nc, nthreads);
		halo_fft_c2r(w, tmp);
		step(STEP_UPDATE, tmp, NULL, est, N, nthreads);
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

/* w->b = the haloed block convolved (or correlated, conj) with the PSF. */
static struct halo_fft_work *half_transform(const float *haloed, const int n[3],
					    const float *otf, int conj)
{
	struct halo_fft_work *w = halo_fft_work(n, 1);
	if (!w)
		return NULL;
	memcpy(w->a, haloed, w->nreal * sizeof *w->a);
	halo_fft_r2c(w, w->a);
	step(conj ? STEP_OTF_CONJ : STEP_OTF, (float *)w->spec, otf, NULL, (ptrdiff_t)w->ncplx, 1);
	halo_fft_c2r(w, w->b);
	return w;
}

static inline size_t at(const int n[3], int z, int y, int x)
{
	return ((size_t)z * (size_t)n[1] + (size_t)y) * (size_t)n[2] + (size_t)x;
}

int halo_rl_forward_compute(const float *haloed, const int n[3], const float *otf,
			    const float *image, const int on[3], const int off[3], float *ratio)
{
	struct halo_fft_work *w = half_transform(haloed, n, otf, 0);
	if (!w)
		return -1;
	for (int z = 0; z < on[0]; z++)
		for (int y = 0; y < on[1]; y++)
			for (int x = 0; x < on[2]; x++)
				ratio[at(on, z, y, x)] = halo_rl_ratio(
					image[at(on, z, y, x)], w->b[at(n, z + off[0], y + off[1], x + off[2])]);
	return 0;
}

int halo_rl_backward_compute(const float *haloed, const int n[3], const float *otf, float *est,
			     const int on[3], const int off[3])
{
	struct halo_fft_work *w = half_transform(haloed, n, otf, 1);
	if (!w)
		return -1;
	for (int z = 0; z < on[0]; z++)
		for (int y = 0; y < on[1]; y++)
			for (int x = 0; x < on[2]; x++)
				est[at(on, z, y, x)] = halo_rl_update(
					est[at(on, z, y, x)], w->b[at(n, z + off[0], y + off[1], x + off[2])]);
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
	/* StarPU binds each worker to one core, and FFTW's threads and ours
	 * inherit the binding of the thread that starts them: to use idle
	 * workers' cores, widen this thread's binding to the process's for the
	 * task. */
	int nthreads = 1;
	cpu_set_t saved, all;
	int widened = 0;
	if (a->threads > 1 && pthread_getaffinity_np(pthread_self(), sizeof saved, &saved) == 0 &&
	    sched_getaffinity(getpid(), sizeof all, &all) == 0 &&
	    pthread_setaffinity_np(pthread_self(), sizeof all, &all) == 0) {
		nthreads = a->threads;
		widened = 1;
	}
	if (halo_rl_compute((const float *)STARPU_BLOCK_GET_PTR(buffers[0]), n,
			    (const float *)STARPU_VECTOR_GET_PTR(buffers[1]), a->iterations, a->trim,
			    a->valid, (float *)STARPU_BLOCK_GET_PTR(buffers[2]), on, nthreads) < 0 &&
	    a->failed)
		__atomic_store_n(a->failed, 1, __ATOMIC_RELAXED);
	if (widened)
		pthread_setaffinity_np(pthread_self(), sizeof saved, &saved);
}

static void forward_cpu(void *buffers[], void *cl_arg)
{
	const struct halo_rl_half_args *a = cl_arg;
	int n[3], on[3];
	block_shape(buffers[0], n);
	block_shape(buffers[3], on);
	if (halo_rl_forward_compute((const float *)STARPU_BLOCK_GET_PTR(buffers[0]), n,
				    (const float *)STARPU_VECTOR_GET_PTR(buffers[2]),
				    (const float *)STARPU_BLOCK_GET_PTR(buffers[1]), on, a->off,
				    (float *)STARPU_BLOCK_GET_PTR(buffers[3])) < 0 && a->failed)
		__atomic_store_n(a->failed, 1, __ATOMIC_RELAXED);
}

static void backward_cpu(void *buffers[], void *cl_arg)
{
	const struct halo_rl_half_args *a = cl_arg;
	int n[3], on[3];
	block_shape(buffers[0], n);
	block_shape(buffers[2], on);
	if (halo_rl_backward_compute((const float *)STARPU_BLOCK_GET_PTR(buffers[0]), n,
				     (const float *)STARPU_VECTOR_GET_PTR(buffers[1]),
				     (float *)STARPU_BLOCK_GET_PTR(buffers[2]), on, a->off) < 0 &&
	    a->failed)
		__atomic_store_n(a->failed, 1, __ATOMIC_RELAXED);
}
