/* One element's conversion between halo's element types, written once for
 * the CPU (util/dtype.c's loops) and the CUDA gather kernel: values go
 * through double; conversion to an integer type rounds to nearest (ties to
 * even) and saturates, NaN becomes 0 (see dtype.h). */
#ifndef HALO_DTYPE_SCALAR_H
#define HALO_DTYPE_SCALAR_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "util/dtype.h"
#include "util/hd.h"

HALO_HD static inline double halo_dtype_load1(const void *p, size_t i, int kind)
{
	switch (kind) {
	case HALO_U1: return ((const uint8_t *)p)[i];
	case HALO_U2: return ((const uint16_t *)p)[i];
	case HALO_U4: return ((const uint32_t *)p)[i];
	case HALO_I1: return ((const int8_t *)p)[i];
	case HALO_I2: return ((const int16_t *)p)[i];
	case HALO_I4: return ((const int32_t *)p)[i];
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
	case HALO_I1: ((int8_t *)p)[i] = (int8_t)halo_dtype_to_int(v, INT8_MIN, INT8_MAX); break;
	case HALO_I2: ((int16_t *)p)[i] = (int16_t)halo_dtype_to_int(v, INT16_MIN, INT16_MAX); break;
	case HALO_I4: ((int32_t *)p)[i] = (int32_t)halo_dtype_to_int(v, INT32_MIN, INT32_MAX); break;
	case HALO_F4: ((float *)p)[i] = (float)v; break;
	default: ((double *)p)[i] = v; break;
	}
}

#endif
