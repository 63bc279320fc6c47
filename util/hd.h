/* HALO_HD marks arithmetic written once for the CPU and CUDA: nvcc compiles
 * such functions as __host__ __device__, a C compiler as plain inline
 * functions, so the CPU tests exercise exactly the math the GPU runs. */
#ifndef HALO_HD_H
#define HALO_HD_H

#ifdef __CUDACC__
#define HALO_HD __host__ __device__
#else
#define HALO_HD
#endif

#endif
