/* Per-thread FFTW plans and buffers, and the plane and column passes (see
 * fft.h). Plans are made once and executed with FFTW's new-array interface
 * on every plane and row: rows are padded to a multiple of four complex
 * values and every buffer comes from fftwf_malloc, so each array a plan
 * runs on has the alignment it was planned with. */
#include "config.h"
#include "codelets/fft.h"
#include "codelets/rl_math.h"
#include "io/fs.h"
#include "util/simd.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Plans are small, so many shapes are kept (a volume's edge chunks with
 * boundary none give up to 27 haloed shapes); the large arrays are one
 * pair per thread, sized for the largest shape seen, so a worker holds
 * one task's worth of them whatever the number of shapes. */
#define MAX_SHAPES 32
#define MAX_THREADS 64

struct fft_cache {
	struct halo_fft_work work[MAX_SHAPES];
	int count;
	float *a;
	fftwf_complex *spec;
	size_t cap_real, cap_cplx;
};

static pthread_key_t cache_key;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static char *wisdom_path;
static pthread_mutex_t wisdom_lock = PTHREAD_MUTEX_INITIALIZER;

static void work_free(struct halo_fft_work *w)
{
	fftwf_plan plans[] = {w->plane_r2c, w->plane_c2r, w->z_fwd, w->z_inv};
	for (size_t i = 0; i < sizeof plans / sizeof plans[0]; i++)
		if (plans[i])
			fftwf_destroy_plan(plans[i]);
	if (w->plane)
		for (int t = 0; t < w->nthreads; t++)
			fftwf_free(w->plane[t]);
	free(w->plane);
	memset(w, 0, sizeof *w);
}

static void cache_free(void *v)
{
	struct fft_cache *c = v;
	for (int i = 0; i < c->count; i++)
		work_free(&c->work[i]);
	fftwf_free(c->a);
	fftwf_free(c->spec);
	free(c);
}

static void init_key(void)
{
	pthread_key_create(&cache_key, cache_free);
	/* Besides multi-threaded plans, this creates FFTW's planner here, once:
	 * two workers planning first at the same time would race to make it. */
	fftwf_init_threads();
	fftwf_make_planner_thread_safe();
}

int halo_fft_good_size(int n, int step)
{
	for (int m = n > 1 ? n : 1; m <= 2 * n + step; m += step) {
		int r = m;
		for (int p = 2; p <= 7; p++)
			while (r % p == 0)
				r /= p;
		if (r == 1)
			return m;
	}
	return 0;
}

/* Whether path may be read and replaced as wisdom: missing, or a regular
 * file that is empty or begins as FFTW's export does. Anything else (a
 * user's file named by HALO_FFTW_WISDOM, /dev/null, a folder, /dev/full,
 * whose zeros FFTW's reader reads forever) is left alone. */
static int wisdom_file_ok(const char *path)
{
	return halo_fs_replaceable_report(path, "(fftw-");
}

/* The process's umask, read where reading it does not change it (umask()
 * would, for every thread at once): /proc/self/status, else 022. */
static mode_t current_umask(void)
{
	unsigned m = 022;
	char line[128];
	FILE *f = fopen("/proc/self/status", "r");
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "Umask: %o", &m) == 1)
			break;
	if (f)
		fclose(f);
	return (mode_t)m;
}

int halo_fft_init(const char *wisdom_file)
{
	pthread_once(&init_once, init_key);
	pthread_mutex_lock(&wisdom_lock);
	int rc = 0;
	if (wisdom_file && !wisdom_path) {
		if (wisdom_file_ok(wisdom_file)) {
			wisdom_path = strdup(wisdom_file);
			fftwf_import_wisdom_from_filename(wisdom_file);
		} else {
			rc = -1;
		}
	}
	pthread_mutex_unlock(&wisdom_lock);
	return rc;
}

void halo_fft_save_wisdom(void)
{
	pthread_mutex_lock(&wisdom_lock);
	if (wisdom_path && wisdom_file_ok(wisdom_path)) {
		/* Written beside under a name of its own and renamed, so that a
		 * concurrent run never reads a half-written file, nor two runs
		 * write into one. */
		size_t n = strlen(wisdom_path) + 8;
		char *tmp = malloc(n);
		int fd = -1;
		if (tmp) {
			snprintf(tmp, n, "%s.XXXXXX", wisdom_path);
			fd = mkstemp(tmp);
		}
		FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
		if (f) {
			fchmod(fd, 0666 & ~current_umask()); /* mkstemp's is 0600 */
			fftwf_export_wisdom_to_file(f);
			int ok = fflush(f) == 0 && !ferror(f);
			ok &= fclose(f) == 0;
			if (!ok || rename(tmp, wisdom_path) != 0)
				unlink(tmp);
		} else if (fd >= 0) {
			close(fd);
			unlink(tmp);
		}
		free(tmp);
	}
	pthread_mutex_unlock(&wisdom_lock);
}

static unsigned planner_flags(void)
{
	const char *planner = getenv("HALO_FFTW_PLANNER");
	if (planner && strcmp(planner, "estimate") == 0)
		return FFTW_ESTIMATE;
	if (planner && strcmp(planner, "patient") == 0)
		return FFTW_PATIENT;
	return FFTW_MEASURE;
}

/* Plans on the buffers they will run on (planning with FFTW_MEASURE
 * overwrites them; they hold nothing yet). */
static int make_plans(struct halo_fft_work *w)
{
	unsigned flags = planner_flags();
	int n0 = w->n[0], n1 = w->n[1], n2 = w->n[2];
	int plane[2] = {n1, n2}, spec_embed[2] = {n1, w->pitch};
	fftwf_complex *slab = (fftwf_complex *)w->plane[0];
	fftwf_plan_with_nthreads(1);
	w->plane_r2c = fftwf_plan_many_dft_r2c(2, plane, 1, w->plane[0], NULL, 1, 0, w->spec,
					       spec_embed, 1, 0, flags);
	w->plane_c2r = fftwf_plan_many_dft_c2r(2, plane, 1, w->spec, spec_embed, 1, 0,
					       w->plane[0], NULL, 1, 0, flags);
	/* A slab holds rows y-rows of each plane side by side: n0 rows of
	 * rows * pitch values, transformed along z for each row's nh values. */
	fftwf_iodim z = {n0, w->rows * w->pitch, w->rows * w->pitch};
	fftwf_iodim vec[2] = {{w->rows, w->pitch, w->pitch}, {w->nh, 1, 1}};
	w->z_fwd = fftwf_plan_guru_dft(1, &z, 2, vec, slab, slab, FFTW_FORWARD, flags);
	w->z_inv = fftwf_plan_guru_dft(1, &z, 2, vec, slab, slab, FFTW_BACKWARD, flags);
	return w->plane_r2c && w->plane_c2r && w->z_fwd && w->z_inv ? 0 : -1;
}

/* Makes the thread's arrays hold at least nreal reals and ncplx complex
 * values. fftwf_malloc gives every allocation the same SIMD alignment, so
 * plans made on the old arrays run on the new ones. */
static int grow(struct fft_cache *c, size_t nreal, size_t ncplx)
{
	if (nreal > c->cap_real) {
		fftwf_free(c->a);
		c->cap_real = 0;
		if (!(c->a = fftwf_alloc_real(nreal)))
			return -1;
		c->cap_real = nreal;
	}
	if (ncplx > c->cap_cplx) {
		fftwf_free(c->spec);
		c->cap_cplx = 0;
		if (!(c->spec = fftwf_alloc_complex(ncplx)))
			return -1;
		c->cap_cplx = ncplx;
	}
	return 0;
}

struct halo_fft_work *halo_fft_work(const int n[3], int nthreads)
{
	pthread_once(&init_once, init_key);
	if (nthreads < 1)
		nthreads = 1;
	if (nthreads > MAX_THREADS)
		nthreads = MAX_THREADS;
	struct fft_cache *c = pthread_getspecific(cache_key);
	if (!c) {
		c = calloc(1, sizeof *c);
		if (!c || pthread_setspecific(cache_key, c)) {
			free(c);
			return NULL;
		}
	}
	size_t nreal = (size_t)n[0] * (size_t)n[1] * (size_t)n[2];
	int pitch = ((n[2] / 2 + 1) + 3) & ~3;
	if (grow(c, nreal, (size_t)n[0] * (size_t)n[1] * (size_t)pitch))
		return NULL;
	for (int i = 0; i < c->count; i++) {
		struct halo_fft_work *w = &c->work[i];
		if (w->n[0] == n[0] && w->n[1] == n[1] && w->n[2] == n[2] &&
		    w->nthreads == nthreads) {
			w->a = c->a;
			w->spec = c->spec;
			w->share = NULL;
			return w;
		}
	}
	/* A full cache drops its oldest shape. */
	if (c->count == MAX_SHAPES) {
		work_free(&c->work[0]);
		memmove(&c->work[0], &c->work[1], (MAX_SHAPES - 1) * sizeof c->work[0]);
		memset(&c->work[MAX_SHAPES - 1], 0, sizeof c->work[0]);
		c->count--;
	}
	struct halo_fft_work *w = &c->work[c->count];
	memcpy(w->n, n, sizeof w->n);
	w->nthreads = nthreads;
	w->nh = n[2] / 2 + 1;
	w->pitch = pitch;
	w->nreal = nreal;
	w->a = c->a;
	w->spec = c->spec;
	w->plane = calloc((size_t)nthreads, sizeof *w->plane);
	/* Each thread's buffer holds a real plane or a slab of columns: n0
	 * pieces of rows y-rows (rows * pitch complex values). Several rows
	 * make each piece a longer contiguous run (1 KiB at 128x256x256 with
	 * one row), which copies faster: 4 rows took that shape's RL from
	 * 1.044 to 1.005 s on 2 cores (medians of 18). Slabs stay within
	 * 640 KiB, about a core's L2, and each thread gets two at least. */
	size_t row_bytes = (size_t)n[0] * (size_t)pitch * sizeof(fftwf_complex);
	w->rows = 1;
	for (int r = 4; r > 1 && w->rows == 1; r--)
		if (n[1] % r == 0 && r * row_bytes <= 640 << 10 && n[1] / r >= 2 * nthreads)
			w->rows = r;
	size_t plane = (size_t)n[1] * (size_t)n[2],
	       slab = 2 * (size_t)n[0] * (size_t)w->rows * (size_t)pitch;
	w->plane_floats = plane > slab ? plane : slab;
	if (!w->plane || !(w->plane[0] = fftwf_alloc_real(w->plane_floats)) || make_plans(w)) {
		work_free(w);
		return NULL;
	}
	c->count++;
	return w;
}

/* Runs job(t) for t < nt, job 0 on this thread, nt as w->share says.
 * Threads are started per pass: tens of microseconds against milliseconds
 * of work, and nothing spins between passes. */
struct pass {
	struct halo_fft_work *w;
	int t, nt;
	int *next;   /* the next plane or row to take, shared by the threads */
	void (*job)(const struct pass *);
	/* plane passes */
	int flags, z0, z1;
	halo_fft_plane_fn fn;
	void *arg;
	/* column passes */
	const float *otf;
	int conj;
};

static void *pass_run(void *p)
{
	const struct pass *ps = p;
	ps->job(ps);
	return NULL;
}

static void pass_all(struct pass first)
{
	struct halo_fft_work *w = first.w;
	int nt = w->share ? w->share(w->nthreads) : w->nthreads;
	nt = nt < 1 ? 1 : nt > w->nthreads ? w->nthreads : nt;
	for (int t = 1; t < nt; t++)
		if (!w->plane[t] && !(w->plane[t] = fftwf_alloc_real(w->plane_floats)))
			nt = t; /* out of memory: fewer threads */
	first.nt = nt;
	int next = 0;
	first.next = &next;
	struct pass jobs[MAX_THREADS];
	pthread_t tid[MAX_THREADS];
	int started[MAX_THREADS] = {0};
	for (int t = 1; t < nt; t++) {
		jobs[t] = first;
		jobs[t].t = t;
		started[t] = pthread_create(&tid[t], NULL, pass_run, &jobs[t]) == 0;
	}
	pass_run(&first); /* t is 0 */
	for (int t = 1; t < nt; t++) {
		if (started[t])
			pthread_join(tid[t], NULL);
		else
			pass_run(&jobs[t]); /* no thread to be had: do it here */
	}
}

static void planes_job(const struct pass *p)
{
	struct halo_fft_work *w = p->w;
	size_t plane_spec = (size_t)w->n[1] * (size_t)w->pitch;
	float *buf = w->plane[p->t];
	/* Planes are taken one at a time rather than in fixed shares, so a
	 * thread slowed by a busy core does fewer (shared machines). */
	for (int z; (z = p->z0 + __atomic_fetch_add(p->next, 1, __ATOMIC_RELAXED)) < p->z1;) {
		fftwf_complex *s = w->spec + (size_t)z * plane_spec;
		if (p->flags & HALO_FFT_INVERSE)
			fftwf_execute_dft_c2r(w->plane_c2r, s, buf);
		p->fn(p->arg, z, buf);
		if (p->flags & HALO_FFT_FORWARD)
			fftwf_execute_dft_r2c(w->plane_r2c, buf, s);
	}
}

void halo_fft_planes(struct halo_fft_work *w, int flags, int z0, int z1, halo_fft_plane_fn fn,
		     void *arg)
{
	pass_all((struct pass){.w = w, .job = planes_job, .flags = flags, .z0 = z0, .z1 = z1,
				.fn = fn, .arg = arg});
}

/* One row of a column pass's spectrum times the PSF's spectrum h, or its
 * conjugate. */
HALO_SIMD_CLONES static void times_otf(float *s, const float *h, int nh, int conj)
{
	/* Two loops so that each inlines a constant conj. */
	if (conj)
#pragma omp simd
		for (int x = 0; x < nh; x++)
			halo_rl_cmul(&s[2 * x], &s[2 * x + 1], h[2 * x], h[2 * x + 1], 1);
	else
#pragma omp simd
		for (int x = 0; x < nh; x++)
			halo_rl_cmul(&s[2 * x], &s[2 * x + 1], h[2 * x], h[2 * x + 1], 0);
}

static void columns_job(const struct pass *p)
{
	struct halo_fft_work *w = p->w;
	int n0 = w->n[0], n1 = w->n[1], nh = w->nh;
	size_t plane_spec = (size_t)n1 * (size_t)w->pitch;
	fftwf_complex *slab = (fftwf_complex *)w->plane[p->t];
	int rows = w->rows;
	/* A plane's rows y-rows, the padding between them included */
	size_t srow = (size_t)rows * (size_t)w->pitch;
	size_t copy = (srow - (size_t)(w->pitch - nh)) * sizeof *slab;
	for (int j; (j = __atomic_fetch_add(p->next, 1, __ATOMIC_RELAXED)) < n1 / rows;) {
		int y = j * rows;
		/* The y-rows' columns are n0 pieces a plane apart: transformed
		 * in a contiguous copy, they stay in cache, where FFTW would copy
		 * them through its own buffers anyway (1.3x faster z transforms
		 * on 128x256x256). */
		fftwf_complex *row = w->spec + (size_t)y * (size_t)w->pitch;
		for (int z = 0; z < n0; z++)
			memcpy(slab + (size_t)z * srow, row + (size_t)z * plane_spec, copy);
		fftwf_execute_dft(w->z_fwd, slab, slab);
		for (int z = 0; p->otf && z < n0; z++)
			for (int r = 0; r < rows; r++)
				times_otf((float *)(slab + (size_t)z * srow + (size_t)r * w->pitch),
					  p->otf + 2 * ((size_t)z * (size_t)n1 + (size_t)(y + r)) * (size_t)nh,
					  nh, p->conj);
		if (p->otf)
			fftwf_execute_dft(w->z_inv, slab, slab);
		for (int z = 0; z < n0; z++)
			memcpy(row + (size_t)z * plane_spec, slab + (size_t)z * srow, copy);
	}
}

void halo_fft_columns(struct halo_fft_work *w, const float *otf, int conj)
{
	pass_all((struct pass){.w = w, .job = columns_job, .otf = otf, .conj = conj});
}
