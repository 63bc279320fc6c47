/* 3D real FFTs for the CPU codelets, split into passes over z-planes and
 * y-rows so that the elementwise arithmetic runs while the data is in
 * cache (FFTW3, single precision).
 *
 * A 3D transform is 2D transforms of the z-planes and 1D transforms along
 * z. halo runs them as separate passes instead of one 3D plan: a plane pass
 * takes a plane's spectrum back to real values, hands the plane (about the
 * size of a core's L2 cache) to a callback (RL's ratio or update), and
 * transforms it forward again before moving on; a column pass transforms a
 * y-row of columns along z, multiplies by the PSF's spectrum and transforms
 * back. A Richardson-Lucy iteration is then four passes over memory instead
 * of four 3D transforms plus four elementwise sweeps (1.2-1.4x faster on
 * 128x256x256), and each pass splits over threads by planes or rows.
 *
 * FFTW's planner is not thread-safe and planning with FFTW_MEASURE costs up
 * to seconds, so each worker thread keeps its plans per shape for the life
 * of the process (and one set of large arrays for all its shapes), the
 * planner is made thread-safe once, and wisdom is loaded from and saved to
 * disk so later runs plan in milliseconds. */
#ifndef HALO_FFT_H
#define HALO_FFT_H

#include <fftw3.h>
#include <stddef.h>

struct halo_fft_work {
	int n[3];              /* real shape z, y, x */
	int nh;                /* n2/2+1: complex values per spectrum row */
	int pitch;             /* nh rounded up so rows and planes stay aligned */
	size_t nreal;          /* n0*n1*n2 */
	float *a;              /* a real array of nreal for the caller */
	fftwf_complex *spec;   /* the spectrum, n0*n1 rows of pitch values;
				* a and spec are the thread's, shared by all
				* its shapes: valid until its next
				* halo_fft_work() */
	float **plane;         /* per thread: a real n1*n2 plane, or a column
				 * pass's slab of n0 pieces of rows*pitch values
				 * (plane_floats; made on a thread's first
				 * pass) */
	size_t plane_floats;
	int rows;              /* y-rows per column-pass slab (divides n1) */
	int nthreads;          /* at most this many threads per pass */
	/* When set, called before each pass: how many threads it may use
	 * (1..max), so that a task takes cores that fall idle while it runs.
	 * halo_fft_work() clears it. */
	int (*share)(int max);
	fftwf_plan plane_r2c, plane_c2r, z_fwd, z_inv;
};

/* The smallest m >= n with m - n a multiple of step whose prime factors
 * are all 2, 3, 5 or 7: sizes FFTW (and cuFFT) transform fastest. A prime
 * size such as 47 costs several times more than 48 (0 when none up to
 * 2n). */
int halo_fft_good_size(int n, int step);

/* Makes FFTW's planner thread-safe and loads wisdom (once per process).
 * wisdom_file may be NULL for no wisdom. Returns -1 where wisdom_file is
 * not a wisdom file (exists, but is not a regular file empty or written
 * by FFTW): it is then neither read nor replaced. */
int halo_fft_init(const char *wisdom_file);

/* Saves the accumulated wisdom (best effort). */
void halo_fft_save_wisdom(void);

/* The calling thread's plans and buffers for shape n, made on first use;
 * NULL when out of memory. Passes run on up to nthreads threads (the
 * caller's included; see share). */
struct halo_fft_work *halo_fft_work(const int n[3], int nthreads);

/* Called for each plane z of a plane pass with that plane's real values
 * (n1*n2, contiguous) in buf; it may read and rewrite them. */
typedef void (*halo_fft_plane_fn)(void *arg, int z, float *buf);

enum {
	HALO_FFT_INVERSE = 1, /* plane z of the spectrum -> buf before fn */
	HALO_FFT_FORWARD = 2, /* buf -> plane z of the spectrum after fn */
};

/* A plane pass over planes z0 <= z < z1. Without HALO_FFT_INVERSE, fn
 * fills buf; an inverse pass leaves the spectrum's planes undefined. */
void halo_fft_planes(struct halo_fft_work *w, int flags, int z0, int z1, halo_fft_plane_fn fn,
		     void *arg);

/* A column pass: the transform along z, then the spectrum times otf
 * (interleaved complex, n0*n1*nh, the layout of a 3D r2c transform), or
 * its conjugate when conj is 1, then the inverse transform along z. With
 * otf NULL, only the forward transform: the spectrum is then the 3D
 * transform of what the plane pass put in. */
void halo_fft_columns(struct halo_fft_work *w, const float *otf, int conj);

#endif
