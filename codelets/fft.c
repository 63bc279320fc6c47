/* Per-thread FFTW plans and buffers (see fft.h). Plans are executed with
 * FFTW's new-array interface on buffers that all come from fftwf_malloc, so
 * they share the alignment the plans were made with. */
#include "config.h"
#include "codelets/fft.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SHAPES 8

struct fft_cache {
	struct halo_fft_work work[MAX_SHAPES];
	int count;
};

static pthread_key_t cache_key;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static char *wisdom_path;
static pthread_mutex_t wisdom_lock = PTHREAD_MUTEX_INITIALIZER;

static void work_free(struct halo_fft_work *w)
{
	if (w->r2c)
		fftwf_destroy_plan(w->r2c);
	if (w->c2r)
		fftwf_destroy_plan(w->c2r);
	fftwf_free(w->a);
	fftwf_free(w->b);
	fftwf_free(w->spec);
	memset(w, 0, sizeof *w);
}

static void cache_free(void *v)
{
	struct fft_cache *c = v;
	for (int i = 0; i < c->count; i++)
		work_free(&c->work[i]);
	free(c);
}

static void init_key(void)
{
	pthread_key_create(&cache_key, cache_free);
	fftwf_make_planner_thread_safe();
	fftwf_init_threads();
}

void halo_fft_init(const char *wisdom_file)
{
	pthread_once(&init_once, init_key);
	pthread_mutex_lock(&wisdom_lock);
	if (wisdom_file && !wisdom_path) {
		wisdom_path = strdup(wisdom_file);
		fftwf_import_wisdom_from_filename(wisdom_file);
	}
	pthread_mutex_unlock(&wisdom_lock);
}

void halo_fft_save_wisdom(void)
{
	pthread_mutex_lock(&wisdom_lock);
	if (wisdom_path) {
		/* Written beside and renamed, so a concurrent run never reads a
		 * half-written file. */
		size_t n = strlen(wisdom_path) + 16;
		char *tmp = malloc(n);
		if (tmp) {
			snprintf(tmp, n, "%s.tmp", wisdom_path);
			if (fftwf_export_wisdom_to_filename(tmp))
				rename(tmp, wisdom_path);
			free(tmp);
		}
	}
	pthread_mutex_unlock(&wisdom_lock);
}

struct halo_fft_work *halo_fft_work(const int n[3], int nthreads)
{
	pthread_once(&init_once, init_key);
	struct fft_cache *c = pthread_getspecific(cache_key);
	if (!c) {
		c = calloc(1, sizeof *c);
		if (!c || pthread_setspecific(cache_key, c)) {
			free(c);
			return NULL;
		}
	}
	for (int i = 0; i < c->count; i++) {
		struct halo_fft_work *w = &c->work[i];
		if (w->n[0] == n[0] && w->n[1] == n[1] && w->n[2] == n[2] && w->nthreads == nthreads)
			return w;
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
	w->nreal = (size_t)n[0] * (size_t)n[1] * (size_t)n[2];
	w->ncplx = (size_t)n[0] * (size_t)n[1] * (size_t)(n[2] / 2 + 1);
	w->a = fftwf_alloc_real(w->nreal);
	w->b = fftwf_alloc_real(w->nreal);
	w->spec = fftwf_alloc_complex(w->ncplx);
	if (!w->a || !w->b || !w->spec) {
		work_free(w);
		return NULL;
	}
	fftwf_plan_with_nthreads(nthreads > 1 ? nthreads : 1);
	unsigned flags = FFTW_MEASURE;
	const char *planner = getenv("HALO_FFTW_PLANNER");
	if (planner && strcmp(planner, "estimate") == 0)
		flags = FFTW_ESTIMATE;
	else if (planner && strcmp(planner, "patient") == 0)
		flags = FFTW_PATIENT;
	/* Planning with FFTW_MEASURE overwrites the arrays; they hold nothing yet. */
	w->r2c = fftwf_plan_dft_r2c_3d(n[0], n[1], n[2], w->a, w->spec, flags);
	w->c2r = fftwf_plan_dft_c2r_3d(n[0], n[1], n[2], w->spec, w->b, flags);
	if (!w->r2c || !w->c2r) {
		work_free(w);
		return NULL;
	}
	c->count++;
	return w;
}

void halo_fft_r2c(struct halo_fft_work *w, float *in)
{
	fftwf_execute_dft_r2c(w->r2c, in, w->spec);
}

void halo_fft_c2r(struct halo_fft_work *w, float *out)
{
	fftwf_execute_dft_c2r(w->c2r, w->spec, out);
}
