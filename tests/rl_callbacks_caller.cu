/* For tests/test_callbacks: a kernel that calls RL's cuFFT callbacks
 * declared as cuFFT declares them (by name, with cuFFT's LTO callback
 * types), compiled to LTO-IR like the callbacks themselves. Linking it
 * with them is what cuFFT does when it makes a plan. */
#include <cufftXt.h>
#include <type_traits>

#include "codelets/rl_callbacks.h"

extern __device__ std::remove_pointer<cufftJITCallbackLoadC>::type HALO_RL_CB_LOAD_OTF;
extern __device__ std::remove_pointer<cufftJITCallbackLoadC>::type HALO_RL_CB_LOAD_OTF_CONJ;
extern __device__ std::remove_pointer<cufftJITCallbackStoreR>::type HALO_RL_CB_STORE_RATIO;
extern __device__ std::remove_pointer<cufftJITCallbackStoreR>::type HALO_RL_CB_STORE_UPDATE;

__global__ void halo_rl_callbacks_caller(void *in, void *out, void *info)
{
	cufftComplex a = HALO_RL_CB_LOAD_OTF(in, threadIdx.x, info, nullptr);
	cufftComplex b = HALO_RL_CB_LOAD_OTF_CONJ(in, threadIdx.x, info, nullptr);
	HALO_RL_CB_STORE_RATIO(out, threadIdx.x, a.x + b.y, info, nullptr);
	HALO_RL_CB_STORE_UPDATE(out, threadIdx.x, a.y + b.x, info, nullptr);
}
