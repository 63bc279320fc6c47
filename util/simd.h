/* HALO_SIMD_CLONES marks the elementwise loops between FFTs. GCC compiles
 * such a function twice, for x86-64-v3 (AVX2, 8 floats a vector) and for
 * the baseline (SSE2, 4), and the dynamic loader picks the one the CPU can
 * run, so one binary runs on any x86-64 and uses the wider vectors where it
 * can: about 5 % off RL on a 128x256x256 chunk on the 2-core Zen 4 CI
 * machine. The AVX2 version may fuse a complex product's a*b-c*d into FMAs,
 * so the last bit can differ between machines, as it does with FFTW's
 * measured plans. */
#ifndef HALO_SIMD_H
#define HALO_SIMD_H

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__CUDACC__)
#define HALO_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define HALO_SIMD_CLONES
#endif

#endif
