/* What changes in halo-sim, the halo built on a StarPU with SimGrid
 * (configure --with-starpu-simgrid): StarPU runs no task there but
 * simulates a machine, CPUs and GPUs, from performance models recorded on
 * a real one (`halo bench --simulate`). config.h includes this file in
 * halo-sim's objects only. */
#ifndef HALO_RUNTIME_SIMULATE_H
#define HALO_RUNTIME_SIMULATE_H

/* Nothing real runs, so none of the real machine's extras are built. */
#undef HALO_USE_CUDA
#undef HALO_HAVE_MPI
#undef HALO_HAVE_FXT

/* A codelet's CUDA implementation: StarPU's simulation only needs to know
 * that one exists. */
#define HALO_SIMULATED_CUDA ((starpu_cuda_func_t)1)

#endif
