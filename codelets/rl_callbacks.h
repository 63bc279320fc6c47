/* What the cuFFT callbacks of the fused CUDA RL iteration read: one small
 * struct in device memory per worker and shape, filled by a one-thread
 * kernel at the start of each task (the image and OTF move between tasks;
 * a host-to-device copy from pageable memory would wait for the stream). */
#ifndef HALO_RL_CALLBACKS_H
#define HALO_RL_CALLBACKS_H

#include <cuda_runtime.h>

/* The callbacks' names: rl_callbacks.cu defines them, rl_cuda.cu gives
 * them to cuFFT as strings, and tests/test_callbacks links them the way
 * cuFFT does, so that a name or a signature out of step fails a test
 * rather than a plan on a GPU. */
#define HALO_RL_CB_LOAD_OTF halo_rl_cb_load_otf
#define HALO_RL_CB_LOAD_OTF_CONJ halo_rl_cb_load_otf_conj
#define HALO_RL_CB_STORE_RATIO halo_rl_cb_store_ratio
#define HALO_RL_CB_STORE_UPDATE halo_rl_cb_store_update
#define HALO_RL_CB_NAME(f) HALO_RL_CB_STRING(f)
#define HALO_RL_CB_STRING(f) #f

struct halo_rl_cb_params {
	const float2 *otf;    /* the PSF's spectrum scaled by 1/N (rl_math.h) */
	const float *image;   /* the observed haloed chunk */
	float *est[2];        /* the estimate's two buffers: each update
			       * reads one and writes the other */
};

#endif
