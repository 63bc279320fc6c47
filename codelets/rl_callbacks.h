/* What the cuFFT callbacks of the fused CUDA RL iteration read: one small
 * struct in device memory per worker and shape, filled by a one-thread
 * kernel at the start of each task (the image and OTF move between tasks;
 * a host-to-device copy from pageable memory would wait for the stream). */
#ifndef HALO_RL_CALLBACKS_H
#define HALO_RL_CALLBACKS_H

#include <cuda_runtime.h>

struct halo_rl_cb_params {
	const float2 *otf;    /* the PSF's spectrum scaled by 1/N (rl_math.h) */
	const float *image;   /* the observed haloed chunk */
	float *est[2];        /* the estimate's two buffers: each update
			       * reads one and writes the other */
};

#endif
