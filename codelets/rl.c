/* CPU implementations of the otf and rl codelets on FFTW (see rl.h). The
 * 3D transforms run as plane and column passes (fft.h) with the elementwise
 * steps of rl_math.h applied to each plane while it is in cache: an
 * iteration is four passes over memory. */
#include "config.h"
#include "codelets/rl.h"
#include "codelets/fft.h"
#include "codelets/rl_math.h"
#include "util/signals.h"
#include "util/simd.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

static void otf_cpu(void *buffers[], void *cl_arg);
static void rl_cpu(void *buffers[], void *cl_arg);
static void forward_cpu(void *buffers[], void *cl_arg);
static void backward_cpu(void *buffers[], void *cl_arg);

static int rl_can_execute(unsigned workerid, struct starpu_task *task, unsigned nimpl);

static struct starpu_perfmodel otf_model = {.type = STARPU_HISTORY_BASED, .symbol = "halo_otf"};
static uint32_t rl_footprint(struct starpu_task *task);
/* Keyed by the buffers' shapes and the iterations: a 100-iteration task
 * takes 5x a 20-iteration one of the same shape. */
static struct starpu_perfmodel rl_model = {.type = STARPU_HISTORY_BASED, .symbol = "halo_rl",
					   .footprint = rl_footprint};
static struct starpu_perfmodel forward_model = {.type = STARPU_HISTORY_BASED,
						.symbol = "halo_rl_forward"};
static struct starpu_perfmodel backward_model = {.type = STARPU_HISTORY_BASED,
						 .symbol = "halo_rl_backward"};

struct starpu_codelet halo_rl_forward_cl = {
	.cpu_funcs = {forward_cpu},
	.cpu_funcs_name = {"forward_cpu"},
	.can_execute = rl_can_execute,
#ifdef HALO_USE_CUDA
	.cuda_funcs = {halo__rl_forward_cuda},
	.cuda_flags = {STARPU_CUDA_ASYNC},
#elif defined(HALO_SIMULATE)
	.cuda_funcs = {HALO_SIMULATED_CUDA},
#endif
	.nbuffers = 4,
	.modes = {STARPU_R, STARPU_R, STARPU_R, STARPU_W},
	.model = &forward_model,
	.name = "rl_forward",
};

struct starpu_codelet halo_rl_backward_cl = {
	.cpu_funcs = {backward_cpu},
	.cpu_funcs_name = {"backward_cpu"},
	.can_execute = rl_can_execute,
#ifdef HALO_USE_CUDA
	.cuda_funcs = {halo__rl_backward_cuda},
	.cuda_flags = {STARPU_CUDA_ASYNC},
#elif defined(HALO_SIMULATE)
	.cuda_funcs = {HALO_SIMULATED_CUDA},
#endif
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
#elif defined(HALO_SIMULATE)
	.cuda_funcs = {HALO_SIMULATED_CUDA},
#endif
	.nbuffers = 2,
	.modes = {STARPU_R, STARPU_W},
	.model = &otf_model,
	.name = "otf",
};

struct starpu_codelet halo_rl_cl = {
	.cpu_funcs = {rl_cpu},
	.cpu_funcs_name = {"rl_cpu"},
	.can_execute = rl_can_execute,
#ifdef HALO_USE_CUDA
	.cuda_funcs = {halo__rl_cuda},
	.cuda_flags = {STARPU_CUDA_ASYNC},
#elif defined(HALO_SIMULATE)
	.cuda_funcs = {HALO_SIMULATED_CUDA},
#endif
	.nbuffers = 3,
	.modes = {STARPU_R, STARPU_R, STARPU_W},
	.model = &rl_model,
	.name = "rl",
};

#ifdef HALO_USE_CUDA
/* No model: it runs once per GPU, on the worker it is given. */
struct starpu_codelet halo_rl_warm_cl = {
	.cuda_funcs = {halo__rl_warm_cuda},
	.nbuffers = 1,
	.modes = {STARPU_R},
	.name = "rl_warm",
};
#endif

/* Plane callbacks: each gets the plane's index and its real values. */
struct plane_io {
	const float *src;     /* planes read (image, estimate, PSF) */
	float *dst;           /* planes written */
	const float *image;   /* RL's observed image */
	size_t plane;         /* n1 * n2 */
};

static void load_plane(void *arg, int z, float *buf)
{
	const struct plane_io *io = arg;
	memcpy(buf, io->src + (size_t)z * io->plane, io->plane * sizeof *buf);
}

static void store_plane(void *arg, int z, float *buf)
{
	const struct plane_io *io = arg;
	memcpy(io->dst + (size_t)z * io->plane, buf, io->plane * sizeof *buf);
}

HALO_SIMD_CLONES static void ratio_plane(void *arg, int z, float *buf)
{
	const struct plane_io *io = arg;
	const float *img = io->image + (size_t)z * io->plane;
#pragma omp simd
	for (size_t i = 0; i < io->plane; i++)
		buf[i] = halo_rl_ratio(img[i], buf[i]);
}

/* The estimate is updated, and buf takes its new values for the next
 * forward transform. */
HALO_SIMD_CLONES static void update_plane(void *arg, int z, float *buf)
{
	const struct plane_io *io = arg;
	float *est = io->dst + (size_t)z * io->plane;
#pragma omp simd
	for (size_t i = 0; i < io->plane; i++)
		buf[i] = est[i] = halo_rl_update(est[i], buf[i]);
}

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
	struct plane_io io = {.src = w->a, .plane = (size_t)n[1] * (size_t)n[2]};
	halo_fft_planes(w, HALO_FFT_FORWARD, 0, n[0], load_plane, &io);
	halo_fft_columns(w, NULL, 0);
	float scale = 1.0f / (float)w->nreal;
	size_t rows = (size_t)n[0] * (size_t)n[1];
	for (size_t r = 0; r < rows; r++) {
		const float *s = (const float *)(w->spec + r * (size_t)w->pitch);
		float *o = otf + 2 * r * (size_t)w->nh;
		for (int i = 0; i < 2 * w->nh; i++)
			o[i] = s[i] * scale;
	}
	return 0;
}

int halo_convolve_compute(const float *image, const int n[3], const float *otf, float *out)
{
	struct halo_fft_work *w = halo_fft_work(n, 1);
	if (!w)
		return -1;
	struct plane_io io = {.src = image, .dst = out, .plane = (size_t)n[1] * (size_t)n[2]};
	halo_fft_planes(w, HALO_FFT_FORWARD, 0, n[0], load_plane, &io);
	halo_fft_columns(w, otf, 0);
	halo_fft_planes(w, HALO_FFT_INVERSE, 0, n[0], store_plane, &io);
	return 0;
}

int halo_rl_compute(const float *image, const int n[3], const float *otf, int iterations,
		    const int trim[3], const int valid[3], float *out, const int on[3],
		    int nthreads, int (*share)(int max))
{
	struct halo_fft_work *w = halo_fft_work(n, nthreads);
	if (!w)
		return -1;
	w->share = share;
	float *est = w->a;
	struct plane_io io = {.src = image, .dst = est, .image = image,
			      .plane = (size_t)n[1] * (size_t)n[2]};
	/* The estimate starts as the image; each update pass rewrites it. */
	memcpy(est, image, w->nreal * sizeof *est);
	halo_fft_planes(w, HALO_FFT_FORWARD, 0, n[0], load_plane, &io);
	/* After SIGINT the run is abandoned: stop within an iteration. */
	for (int it = 0; it < iterations && !halo_interrupted(); it++) {
		int last = it == iterations - 1;
		halo_fft_columns(w, otf, 0);
		halo_fft_planes(w, HALO_FFT_INVERSE | HALO_FFT_FORWARD, 0, n[0], ratio_plane, &io);
		halo_fft_columns(w, otf, 1);
		halo_fft_planes(w, HALO_FFT_INVERSE | (last ? 0 : HALO_FFT_FORWARD), 0, n[0],
				update_plane, &io);
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

/* The exact mode's half-iterations: the haloed block is convolved with the
 * PSF (forward) or correlated with it (backward), and only the planes of
 * the chunk inside it are transformed back. Forward turns them into the
 * chunk's ratio, backward multiplies them into the chunk's estimate. */
struct half_io {
	struct plane_io io;
	const int *n, *on, *off;
	const float *image;   /* the chunk's image; NULL going backward */
	float *chunk;         /* forward: ratio; backward: estimate */
};

HALO_SIMD_CLONES static void half_window(void *arg, int z, float *buf)
{
	const struct half_io *h = arg;
	int cz = z - h->off[0];
	for (int y = 0; y < h->on[1]; y++) {
		size_t o = ((size_t)cz * h->on[1] + (size_t)y) * h->on[2];
		const float *b = buf + (size_t)(y + h->off[1]) * h->n[2] + h->off[2];
		float *c = h->chunk + o;
		if (h->image)
#pragma omp simd
			for (int x = 0; x < h->on[2]; x++)
				c[x] = halo_rl_ratio(h->image[o + x], b[x]);
		else
#pragma omp simd
			for (int x = 0; x < h->on[2]; x++)
				c[x] = halo_rl_update(c[x], b[x]);
	}
}

static int half_transform(const float *haloed, const int n[3], const float *otf,
			  struct half_io *h)
{
	struct halo_fft_work *w = halo_fft_work(n, 1);
	if (!w)
		return -1;
	h->io = (struct plane_io){.src = haloed, .plane = (size_t)n[1] * (size_t)n[2]};
	h->n = n;
	halo_fft_planes(w, HALO_FFT_FORWARD, 0, n[0], load_plane, &h->io);
	halo_fft_columns(w, otf, h->image == NULL);
	halo_fft_planes(w, HALO_FFT_INVERSE, h->off[0], h->off[0] + h->on[0], half_window, h);
	return 0;
}

int halo_rl_forward_compute(const float *haloed, const int n[3], const float *otf,
			    const float *image, const int on[3], const int off[3], float *ratio)
{
	struct half_io h = {.on = on, .off = off, .image = image, .chunk = ratio};
	return half_transform(haloed, n, otf, &h);
}

int halo_rl_backward_compute(const float *haloed, const int n[3], const float *otf, float *est,
			     const int on[3], const int off[3])
{
	struct half_io h = {.on = on, .off = off, .chunk = est};
	return half_transform(haloed, n, otf, &h);
}

static void block_shape(void *buf, int n[3])
{
	n[0] = (int)STARPU_BLOCK_GET_NZ(buf);
	n[1] = (int)STARPU_BLOCK_GET_NY(buf);
	n[2] = (int)STARPU_BLOCK_GET_NX(buf);
}

static uint32_t rl_footprint(struct starpu_task *task)
{
	const struct halo_rl_args *a = task->cl_arg;
	return starpu_hash_crc32c_be((uint32_t)a->iterations, starpu_task_data_footprint(task));
}

int halo_rl_callbacks_choice(const int n[3], const char *env)
{
	static const char *const values[] = {"0", "load", "store", "1"}; /* by mask */
	for (int mask = 0; env && mask < 4; mask++)
		if (!strcmp(env, values[mask]))
			return mask;
	return (double)n[0] * n[1] * n[2] >= HALO_RL_STORE_CALLBACKS_MIN ? HALO_RL_CB_STORE : 0;
}

int halo_rl_cpu_may_run(double work, double expected)
{
	return work <= HALO_RL_CPU_CALIBRATE_WORK || !isnan(expected);
}

static int rl_can_execute(unsigned workerid, struct starpu_task *task, unsigned nimpl)
{
	if (starpu_worker_get_type((int)workerid) != STARPU_CPU_WORKER ||
	    starpu_cuda_worker_get_count() == 0)
		return 1;
	starpu_data_handle_t h = STARPU_TASK_GET_HANDLE(task, 0);
	double work = (double)starpu_block_get_nx(h) * starpu_block_get_ny(h) *
		      starpu_block_get_nz(h);
	if (task->cl == &halo_rl_cl)
		work *= ((const struct halo_rl_args *)task->cl_arg)->iterations;
	if (work <= HALO_RL_CPU_CALIBRATE_WORK)
		return 1;
	struct starpu_perfmodel_arch *arch =
		starpu_worker_get_perf_archtype((int)workerid, task->sched_ctx);
	return halo_rl_cpu_may_run(work, starpu_task_expected_length(task, arch, nimpl));
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

/* CPU rl tasks executing now. */
static int rl_running;

/* How many threads a running rl task takes for its next pass. StarPU's
 * ready count is the tasks executing or waiting for a worker: when it is
 * no more than the rl tasks running, no task waits and the CPU workers
 * without one are idle, so the running tasks share every CPU worker's core
 * (the last tasks of a run, or fewer chunks than cores). Otherwise one. */
static int share_idle_cores(int max)
{
	int running = __atomic_load_n(&rl_running, __ATOMIC_RELAXED);
	if (running < 1 || starpu_task_nready() > running)
		return 1;
	int t = (int)starpu_cpu_worker_get_count() / running;
	return t < 1 ? 1 : t > max ? max : t;
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
	__atomic_add_fetch(&rl_running, 1, __ATOMIC_RELAXED);
	if (halo_rl_compute((const float *)STARPU_BLOCK_GET_PTR(buffers[0]), n,
			    (const float *)STARPU_VECTOR_GET_PTR(buffers[1]), a->iterations, a->trim,
			    a->valid, (float *)STARPU_BLOCK_GET_PTR(buffers[2]), on, nthreads,
			    share_idle_cores) < 0 &&
	    a->failed)
		__atomic_store_n(a->failed, 1, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&rl_running, 1, __ATOMIC_RELAXED);
	if (widened)
		pthread_setaffinity_np(pthread_self(), sizeof saved, &saved);
}

static void forward_cpu(void *buffers[], void *cl_arg)
{
	const struct halo_rl_half_args *a = cl_arg;
	if (halo_rl_half_stopped(a))
		return;
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
	if (halo_rl_half_stopped(a))
		return;
	int n[3], on[3];
	block_shape(buffers[0], n);
	block_shape(buffers[2], on);
	if (halo_rl_backward_compute((const float *)STARPU_BLOCK_GET_PTR(buffers[0]), n,
				     (const float *)STARPU_VECTOR_GET_PTR(buffers[1]),
				     (float *)STARPU_BLOCK_GET_PTR(buffers[2]), on, a->off) < 0 &&
	    a->failed)
		__atomic_store_n(a->failed, 1, __ATOMIC_RELAXED);
}
