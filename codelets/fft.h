/* FFTW3 (single precision) plans and work buffers for the CPU codelets.
 *
 * FFTW's planner is not thread-safe and planning with FFTW_MEASURE costs
 * up to seconds, so each worker thread keeps its plans and aligned buffers
 * per shape for the life of the process, the planner is made thread-safe
 * once, and wisdom is loaded from and saved to disk so later runs plan in
 * milliseconds. */
#ifndef HALO_FFT_H
#define HALO_FFT_H

#include <fftw3.h>
#include <stddef.h>

struct halo_fft_work {
	int n[3];              /* real shape z, y, x */
	size_t nreal, ncplx;   /* n0*n1*n2 and n0*n1*(n2/2+1) */
	float *a, *b;          /* real arrays of nreal */
	fftwf_complex *spec;   /* ncplx */
	fftwf_plan r2c, c2r;   /* planned a -> spec and spec -> b */
	int nthreads;
};

/* Makes FFTW's planner thread-safe and loads wisdom (once per process).
 * wisdom_file may be NULL for no wisdom. */
void halo_fft_init(const char *wisdom_file);

/* Saves the accumulated wisdom (best effort). */
void halo_fft_save_wisdom(void);

/* The calling thread's plans and buffers for shape n, made on first use;
 * NULL when out of memory. nthreads > 1 plans multi-threaded transforms. */
struct halo_fft_work *halo_fft_work(const int n[3], int nthreads);

/* Forward transform of in (an nreal array allocated like w->a) into w->spec,
 * and inverse of w->spec into out (destroys w->spec). */
void halo_fft_r2c(struct halo_fft_work *w, float *in);
void halo_fft_c2r(struct halo_fft_work *w, float *out);

#endif
