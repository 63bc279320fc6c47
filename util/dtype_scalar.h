/* One element's conversion between halo's element types, written once for
 * the CPU (util/dtype.c's loops) and the CUDA gather kernel: values go
 * through double, or between integer types through int64 (exact);
 * conversion to an integer type rounds to nearest (ties to even) and
 * saturates, NaN becomes 0 (see dtype.h). */
#ifndef HALO_DTYPE_SCALAR_H
#define HALO_DTYPE_SCALAR_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "util/dtype.h"
#include "util/hd.h"

/* float16 through the compiler's own type: CUDA's __half, GCC's and
 * Clang's _Float16; both round to nearest even, as numpy does. */
#ifdef __CUDACC__
#include <cuda_fp16.h>
HALO_HD static inline double halo_half_get(const void *p, size_t i)
{
	return __half2float(((const __half *)p)[i]);
}
HALO_HD static inline void halo_half_set(void *p, size_t i, double v)
{
	((__half *)p)[i] = __double2half(v);
}
#else
__extension__ typedef _Float16 halo_half_t;
static inline double halo_half_get(const void *p, size_t i)
{
	return ((const halo_half_t *)p)[i];
}
static inline void halo_half_set(void *p, size_t i, double v)
{
	((halo_half_t *)p)[i] = (halo_half_t)v;
}
#endif

/* float16 and float32 and float64 */
HALO_HD static inline int halo_dtype_float_kind(int kind)
{
	return kind == HALO_F4 || kind == HALO_F8 || kind == HALO_F2;
}

HALO_HD static inline double halo_dtype_load1(const void *p, size_t i, int kind)
{
	switch (kind) {
	case HALO_U1: return ((const uint8_t *)p)[i];
	case HALO_U2: return ((const uint16_t *)p)[i];
	case HALO_U4: return ((const uint32_t *)p)[i];
	case HALO_U8: return (double)((const uint64_t *)p)[i];
	case HALO_I1: return ((const int8_t *)p)[i];
	case HALO_I2: return ((const int16_t *)p)[i];
	case HALO_I4: return ((const int32_t *)p)[i];
	case HALO_I8: return (double)((const int64_t *)p)[i];
	case HALO_F2: return halo_half_get(p, i);
	case HALO_B1: return ((const uint8_t *)p)[i] != 0;
	case HALO_F4: return ((const float *)p)[i];
	default: return ((const double *)p)[i];
	}
}

/* Nearest integer (ties to even), clamped to [lo, hi]; NaN gives 0. */
HALO_HD static inline double halo_dtype_to_int(double v, double lo, double hi)
{
	if (v != v)
		return 0;
	v = nearbyint(v);
	return v < lo ? lo : v > hi ? hi : v;
}

HALO_HD static inline void halo_dtype_store1(void *p, size_t i, int kind, double v)
{
	switch (kind) {
	case HALO_U1: ((uint8_t *)p)[i] = (uint8_t)halo_dtype_to_int(v, 0, UINT8_MAX); break;
	case HALO_U2: ((uint16_t *)p)[i] = (uint16_t)halo_dtype_to_int(v, 0, UINT16_MAX); break;
	case HALO_U4: ((uint32_t *)p)[i] = (uint32_t)halo_dtype_to_int(v, 0, UINT32_MAX); break;
	case HALO_U8: { /* 2^64 itself is a double, but no uint64 */
		double r = halo_dtype_to_int(v, 0, 18446744073709551616.0);
		((uint64_t *)p)[i] = r >= 18446744073709551616.0 ? UINT64_MAX : (uint64_t)r;
		break;
	}
	case HALO_I1: ((int8_t *)p)[i] = (int8_t)halo_dtype_to_int(v, INT8_MIN, INT8_MAX); break;
	case HALO_I2: ((int16_t *)p)[i] = (int16_t)halo_dtype_to_int(v, INT16_MIN, INT16_MAX); break;
	case HALO_I4: ((int32_t *)p)[i] = (int32_t)halo_dtype_to_int(v, INT32_MIN, INT32_MAX); break;
	case HALO_I8: {
		double r = halo_dtype_to_int(v, -9223372036854775808.0, 9223372036854775808.0);
		((int64_t *)p)[i] = r >= 9223372036854775808.0 ? INT64_MAX : (int64_t)r;
		break;
	}
	case HALO_F4: ((float *)p)[i] = (float)v; break;
	case HALO_F2: halo_half_set(p, i, v); break;
	case HALO_B1: ((uint8_t *)p)[i] = v != 0; break;
	default: ((double *)p)[i] = v; break;
	}
}

/* Between integer kinds a double would round 64-bit values above 2^53,
 * so they go through int64, saturating the same way: a uint64 above
 * INT64_MAX loads as INT64_MAX, which saturates every narrower kind. */
HALO_HD static inline int64_t halo_dtype_loadi(const void *p, size_t i, int kind)
{
	switch (kind) {
	case HALO_U1: return ((const uint8_t *)p)[i];
	case HALO_U2: return ((const uint16_t *)p)[i];
	case HALO_U4: return ((const uint32_t *)p)[i];
	case HALO_U8: {
		uint64_t v = ((const uint64_t *)p)[i];
		return v > INT64_MAX ? INT64_MAX : (int64_t)v;
	}
	case HALO_I1: return ((const int8_t *)p)[i];
	case HALO_I2: return ((const int16_t *)p)[i];
	case HALO_I4: return ((const int32_t *)p)[i];
	case HALO_B1: return ((const uint8_t *)p)[i] != 0;
	default: return ((const int64_t *)p)[i];
	}
}

HALO_HD static inline int64_t halo_dtype_clampi(int64_t v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

HALO_HD static inline void halo_dtype_storei(void *p, size_t i, int kind, int64_t v)
{
	switch (kind) {
	case HALO_U1: ((uint8_t *)p)[i] = (uint8_t)halo_dtype_clampi(v, 0, UINT8_MAX); break;
	case HALO_U2: ((uint16_t *)p)[i] = (uint16_t)halo_dtype_clampi(v, 0, UINT16_MAX); break;
	case HALO_U4: ((uint32_t *)p)[i] = (uint32_t)halo_dtype_clampi(v, 0, UINT32_MAX); break;
	case HALO_U8: ((uint64_t *)p)[i] = v < 0 ? 0 : (uint64_t)v; break;
	case HALO_I1: ((int8_t *)p)[i] = (int8_t)halo_dtype_clampi(v, INT8_MIN, INT8_MAX); break;
	case HALO_I2: ((int16_t *)p)[i] = (int16_t)halo_dtype_clampi(v, INT16_MIN, INT16_MAX); break;
	case HALO_I4: ((int32_t *)p)[i] = (int32_t)halo_dtype_clampi(v, INT32_MIN, INT32_MAX); break;
	case HALO_B1: ((uint8_t *)p)[i] = v != 0; break;
	default: ((int64_t *)p)[i] = v; break;
	}
}

/* Element si of src (skind) into element di of dst (dkind). */
HALO_HD static inline void halo_dtype_copy1(void *dst, size_t di, int dkind, const void *src,
					    size_t si, int skind)
{
	if (skind == dkind && skind == HALO_U8) /* loadi would clamp it */
		((uint64_t *)dst)[di] = ((const uint64_t *)src)[si];
	else if (!halo_dtype_float_kind(skind) && !halo_dtype_float_kind(dkind))
		halo_dtype_storei(dst, di, dkind, halo_dtype_loadi(src, si, skind));
	else
		halo_dtype_store1(dst, di, dkind, halo_dtype_load1(src, si, skind));
}

#endif
