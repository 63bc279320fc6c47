/* cuFFT callbacks that fuse RL's elementwise steps into the transforms (see
 * rl_cuda.cu): the C2R transforms load the spectrum already multiplied by
 * the OTF (or its conjugate) and store the ratio, or the updated estimate,
 * instead of their real output. The arithmetic is rl_math.h's, the same
 * functions the CPU codelet and its tests run.
 *
 * This file is compiled to LTO-IR, not to machine code: cuFFT links the
 * callbacks into its own kernels when a plan is made (JIT LTO), so they
 * are plain C++ __device__ functions with the exact signatures cuFFT
 * declares them with, looked up by name. */
#include <cufftXt.h>
#include <type_traits>

#include "codelets/rl_callbacks.h"
#include "codelets/rl_math.h"

static __device__ cufftComplex times_otf(const void *in, unsigned long long i, const void *info,
					 int conj)
{
	const struct halo_rl_cb_params *p = (const struct halo_rl_cb_params *)info;
	cufftComplex s = ((const cufftComplex *)in)[i];
	float2 h = p->otf[i];
	halo_rl_cmul(&s.x, &s.y, h.x, h.y, conj);
	return s;
}

__device__ cufftComplex HALO_RL_CB_LOAD_OTF(void *in, unsigned long long i, void *info, void *)
{
	return times_otf(in, i, info, 0);
}

__device__ cufftComplex HALO_RL_CB_LOAD_OTF_CONJ(void *in, unsigned long long i, void *info,
						  void *)
{
	return times_otf(in, i, info, 1);
}

/* The blurred estimate becomes the ratio in the transform's own output. */
__device__ void HALO_RL_CB_STORE_RATIO(void *out, unsigned long long i, cufftReal blurred,
				       void *info, void *)
{
	const struct halo_rl_cb_params *p = (const struct halo_rl_cb_params *)info;
	((float *)out)[i] = halo_rl_ratio(p->image[i], blurred);
}

/* The correction becomes the next estimate in the transform's output, one
 * of the estimate's two buffers, from the current estimate in the other.
 * Not updating in place keeps every callback idempotent, so nothing
 * depends on how often cuFFT stores an element. */
__device__ void HALO_RL_CB_STORE_UPDATE(void *out, unsigned long long i, cufftReal correction,
					void *info, void *)
{
	const struct halo_rl_cb_params *p = (const struct halo_rl_cb_params *)info;
	const float *est = out == p->est[0] ? p->est[1] : p->est[0];
	((float *)out)[i] = halo_rl_update(est[i], correction);
}

/* cuFFT finds the callbacks by name with these exact types. */
static_assert(std::is_same<decltype(&HALO_RL_CB_LOAD_OTF), cufftJITCallbackLoadC>::value &&
		      std::is_same<decltype(&HALO_RL_CB_LOAD_OTF_CONJ), cufftJITCallbackLoadC>::value,
	      "load callbacks must have cuFFT's LTO signature");
static_assert(std::is_same<decltype(&HALO_RL_CB_STORE_RATIO), cufftJITCallbackStoreR>::value &&
		      std::is_same<decltype(&HALO_RL_CB_STORE_UPDATE), cufftJITCallbackStoreR>::value,
	      "store callbacks must have cuFFT's LTO signature");
