/* CPU implementation and codelet definition of scale/offset (see scale.h).
 * The block may be a strided view (ldy, ldz larger than nx, nx*ny), so the
 * loops walk rows rather than assume one contiguous run. */
#include "config.h"
#include "codelets/scale.h"
#include "codelets/elementwise_math.h"

static struct starpu_perfmodel scale_model = {
	.type = STARPU_HISTORY_BASED,
	.symbol = "halo_scale",
};

struct starpu_codelet halo_scale_cl = {
	.cpu_funcs = {halo__scale_cpu},
	.cpu_funcs_name = {"halo__scale_cpu"},
#ifdef HALO_USE_CUDA
	.cuda_funcs = {halo__scale_cuda},
	.cuda_flags = {STARPU_CUDA_ASYNC},
#elif defined(HALO_SIMULATE)
	.cuda_funcs = {HALO_SIMULATED_CUDA},
#endif
	.nbuffers = 1,
	.modes = {STARPU_RW},
	.model = &scale_model,
	.name = "scale",
};

void halo__scale_cpu(void *buffers[], void *cl_arg)
{
	struct halo_scale_args args;
	starpu_codelet_unpack_args(cl_arg, &args);
	float *p = (float *)STARPU_BLOCK_GET_PTR(buffers[0]);
	unsigned nx = STARPU_BLOCK_GET_NX(buffers[0]);
	unsigned ny = STARPU_BLOCK_GET_NY(buffers[0]);
	unsigned nz = STARPU_BLOCK_GET_NZ(buffers[0]);
	unsigned ldy = STARPU_BLOCK_GET_LDY(buffers[0]);
	unsigned ldz = STARPU_BLOCK_GET_LDZ(buffers[0]);
	for (unsigned z = 0; z < nz; z++)
		for (unsigned y = 0; y < ny; y++) {
			float *row = p + (size_t)z * ldz + (size_t)y * ldy;
			for (unsigned x = 0; x < nx; x++)
				row[x] = halo_math_scale_offset(row[x], args.a, args.b);
		}
}
