/* The split FFT passes of codelets/fft.c against FFTW's own 3D transform
 * and exact shifts: the PSF spectrum equals a 3D r2c plan's for odd and
 * even shapes; convolving with a displaced single voxel is a circular
 * shift for more shapes than one thread keeps plans for (the oldest are
 * dropped, the shared arrays grow and are reused by smaller shapes); RL on
 * two threads equals RL on one bit for bit; FFT-friendly sizes and the
 * default overlap depth made of them. */
#include "config.h"
#include "codelets/fft.h"
#include "codelets/rl.h"
#include "runtime/deconvolve.h"
#include "tests/tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static float *random_volume(size_t n, unsigned seed)
{
	float *v = malloc(n * sizeof *v);
	srand(seed);
	for (size_t i = 0; i < n; i++)
		v[i] = 1.0f + (float)rand() / (float)RAND_MAX;
	return v;
}

/* halo_otf_compute against fftwf_plan_dft_r2c_3d of the PSF placed by
 * hand: voxel (i, j, k) at ((i - p0/2) mod n0, ...), scaled by 1/N. */
static void check_otf(const int n[3], const int pn[3])
{
	size_t nreal = (size_t)n[0] * n[1] * n[2], nc = halo_otf_floats(n) / 2;
	size_t np = (size_t)pn[0] * pn[1] * pn[2];
	float *psf = random_volume(np, 7);
	float *placed = fftwf_alloc_real(nreal);
	fftwf_complex *want = fftwf_alloc_complex(nc);
	float *got = malloc(2 * nc * sizeof *got);
	memset(placed, 0, nreal * sizeof *placed);
	for (int z = 0; z < pn[0]; z++)
		for (int y = 0; y < pn[1]; y++)
			for (int x = 0; x < pn[2]; x++) {
				int zz = ((z - pn[0] / 2) % n[0] + n[0]) % n[0];
				int yy = ((y - pn[1] / 2) % n[1] + n[1]) % n[1];
				int xx = ((x - pn[2] / 2) % n[2] + n[2]) % n[2];
				placed[((size_t)zz * n[1] + yy) * n[2] + xx] +=
					psf[((size_t)z * pn[1] + y) * pn[2] + x];
			}
	fftwf_plan p = fftwf_plan_dft_r2c_3d(n[0], n[1], n[2], placed, want, FFTW_ESTIMATE);
	fftwf_execute(p);
	fftwf_destroy_plan(p);
	int rc = halo_otf_compute(psf, pn, n, got);
	double err = 0, scale = 0;
	for (size_t i = 0; i < nc; i++)
		for (int c = 0; c < 2; c++) {
			double w = want[i][c] / (double)nreal;
			err = fmax(err, fabs(got[2 * i + c] - w));
			scale = fmax(scale, fabs(w));
		}
	tap_ok(rc == 0 && err <= 1e-6 * scale,
	       "otf %dx%dx%d, PSF %dx%dx%d: equals FFTW's 3D transform (max error %.1e of %.1e)",
	       n[0], n[1], n[2], pn[0], pn[1], pn[2], err, scale);
	free(psf);
	free(got);
	fftwf_free(placed);
	fftwf_free(want);
}

/* A PSF that is one voxel at index 0 of a 3x3x3 box lands at (-1,-1,-1):
 * the convolution is the volume shifted, out[p] = in[p + 1]. */
static double shift_error(const int n[3])
{
	size_t nreal = (size_t)n[0] * n[1] * n[2];
	float psf[27] = {1};
	float *in = random_volume(nreal, (unsigned)(n[0] * 10000 + n[1] * 100 + n[2]));
	float *out = malloc(nreal * sizeof *out), *otf = malloc(halo_otf_floats(n) * sizeof *otf);
	double err = 1;
	if (halo_otf_compute(psf, (int[3]){3, 3, 3}, n, otf) == 0 &&
	    halo_convolve_compute(in, n, otf, out) == 0) {
		err = 0;
		for (int z = 0; z < n[0]; z++)
			for (int y = 0; y < n[1]; y++)
				for (int x = 0; x < n[2]; x++) {
					float want = in[(((size_t)(z + 1) % n[0]) * n[1] + (y + 1) % n[1]) * n[2] +
							(x + 1) % n[2]];
					err = fmax(err, fabs(out[((size_t)z * n[1] + y) * n[2] + x] - want));
				}
	}
	free(in);
	free(out);
	free(otf);
	return err;
}

static void check_shifts(void)
{
	/* 40 shapes, largest first so the arrays are reused by smaller ones,
	 * then the first ones again after they were dropped. */
	double worst = 0;
	int count = 0;
	for (int a = 9; a >= 6; a--)
		for (int b = 9; b >= 8; b--)
			for (int c = 12; c >= 8; c--, count++)
				worst = fmax(worst, shift_error((int[3]){a, b, c}));
	worst = fmax(worst, shift_error((int[3]){9, 9, 12}));
	worst = fmax(worst, shift_error((int[3]){1, 5, 7}));
	worst = fmax(worst, shift_error((int[3]){16, 20, 31}));
	tap_ok(worst <= 1e-5, "convolution with a displaced voxel shifts the volume, %d shapes "
	       "(plans dropped and remade, arrays grown): max error %.1e", count + 3, worst);
}

static void check_threads(const int n[3])
{
	size_t nreal = (size_t)n[0] * n[1] * n[2];
	float psf[125];
	for (int i = 0; i < 125; i++)
		psf[i] = 1.0f / 125;
	float *img = random_volume(nreal, 3), *otf = malloc(halo_otf_floats(n) * sizeof *otf);
	float *one = malloc(nreal * sizeof *one), *two = malloc(nreal * sizeof *two);
	int zero[3] = {0, 0, 0};
	int rc = halo_otf_compute(psf, (int[3]){5, 5, 5}, n, otf);
	rc |= halo_rl_compute(img, n, otf, 4, zero, n, one, n, 1, NULL);
	rc |= halo_rl_compute(img, n, otf, 4, zero, n, two, n, 2, NULL);
	tap_ok(rc == 0 && memcmp(one, two, nreal * sizeof *one) == 0,
	       "RL %dx%dx%d on 2 threads equals 1 thread bit for bit", n[0], n[1], n[2]);
	free(img);
	free(otf);
	free(one);
	free(two);
}

static void check_sizes(void)
{
	static const int cases[][3] = {
		/* n, step, want */
		{94, 2, 96}, {286, 2, 288}, {47, 1, 48}, {47, 2, 49}, {11, 2, 15},
		{97, 1, 98}, {1, 1, 1}, {256, 2, 256}, {1021, 2, 1029},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char what[64];
		snprintf(what, sizeof what, "good FFT size from %d in steps of %d", cases[i][0],
			 cases[i][1]);
		tap_int_eq(halo_fft_good_size(cases[i][0], cases[i][1]), cases[i][2], what);
	}
	int d[3];
	halo_deconv_default_depth((int64_t[3]){64, 256, 256}, (int[3]){15, 15, 15}, d);
	tap_ok(d[0] == 16 && d[1] == 16 && d[2] == 16,
	       "default depth, 64x256x256 chunks, 15^3 PSF: 16,16,16 (haloed 96x288x288, "
	       "not 94x286x286): %d,%d,%d", d[0], d[1], d[2]);
	halo_deconv_default_depth((int64_t[3]){10, 13, 12}, (int[3]){3, 5, 5}, d);
	tap_ok(d[0] == 3 && d[1] == 6 && d[2] == 6, "default depth, 10x13x12 chunks, 3x5x5 PSF: "
	       "3,6,6 (haloed 16x25x24): %d,%d,%d", d[0], d[1], d[2]);
}

int main(void)
{
	check_sizes();
	halo_fft_init(NULL);
	check_otf((int[3]){8, 10, 12}, (int[3]){3, 5, 4});
	check_otf((int[3]){7, 9, 11}, (int[3]){5, 4, 6});
	check_otf((int[3]){1, 6, 9}, (int[3]){1, 3, 3});
	check_otf((int[3]){5, 6, 7}, (int[3]){7, 7, 9}); /* larger than the volume: folds */
	check_shifts();
	check_threads((int[3]){13, 17, 22});
	check_threads((int[3]){16, 16, 16});
	return tap_done();
}
