/* The elementwise arithmetic of Richardson-Lucy, written once for the CPU
 * (FFTW) and CUDA (cuFFT) implementations. With H the PSF's spectrum scaled
 * by 1/N (so that irfft(rfft(x) * H) is the convolution without a separate
 * normalisation pass), one iteration is
 *
 *     ratio    = image / max(irfft(rfft(estimate) * H), eps)
 *     estimate = estimate * irfft(rfft(ratio) * conj(H))
 *
 * These helpers are the only arithmetic between the FFTs; the CPU tests run
 * them with the same inputs and expectations as the GPU kernels. */
#ifndef HALO_RL_MATH_H
#define HALO_RL_MATH_H

#include "codelets/elementwise_math.h"

/* The smallest denominator: below it the blurred estimate is treated as
 * zero, which keeps zeros in the image from producing NaN or Inf. */
#define HALO_RL_EPS 1e-12f

/* Where voxel i of a PSF of pn voxels lands, along one axis of n, when the
 * PSF is placed circularly with its centre voxel (pn//2) at the origin:
 * (i - pn//2) mod n (odd and even sizes alike; a PSF longer than n folds). */
HALO_HD static inline int halo_otf_place(int i, int pn, int n)
{
	int r = (i - pn / 2) % n;
	return r < 0 ? r + n : r;
}

/* (re, im) *= (hr, hi), or by its conjugate when conj is 1. */
HALO_HD static inline void halo_rl_cmul(float *re, float *im, float hr, float hi, int conj)
{
	float r = *re, i = *im;
	if (conj)
		hi = -hi;
	*re = r * hr - i * hi;
	*im = r * hi + i * hr;
}

/* ratio = image / max(blurred, eps); an image of 0 gives 0. */
HALO_HD static inline float halo_rl_ratio(float image, float blurred)
{
	return image / (blurred > HALO_RL_EPS ? blurred : HALO_RL_EPS);
}

/* The multiplicative update, exactly as the reference formulation (no
 * clamping, so results match whole-volume RL to float precision). */
HALO_HD static inline float halo_rl_update(float estimate, float correction)
{
	return estimate * correction;
}

#endif
