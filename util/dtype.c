/* Element types: parsing, names, byte swapping and conversion (see dtype.h).
 * Conversion goes through a small double buffer, one switch per block
 * rather than per element, which keeps every pair of types correct with
 * two short loops while staying memory-bound on large chunks. */
#include "config.h"
#include "util/dtype.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static const struct {
	const char *name;
	char code;  /* numpy kind letter */
	int size;
} dtypes[HALO_DTYPE_COUNT] = {
	[HALO_U1] = {"uint8", 'u', 1},   [HALO_U2] = {"uint16", 'u', 2},
	[HALO_U4] = {"uint32", 'u', 4},  [HALO_I1] = {"int8", 'i', 1},
	[HALO_I2] = {"int16", 'i', 2},   [HALO_I4] = {"int32", 'i', 4},
	[HALO_F4] = {"float32", 'f', 4}, [HALO_F8] = {"float64", 'f', 8},
};

int halo_dtype_parse(const char *s, const char *what, halo_dtype_t *out, halo_error_t *err)
{
	for (int k = 0; k < HALO_DTYPE_COUNT; k++)
		if (strcmp(s, dtypes[k].name) == 0) {
			out->kind = (halo_dtype_kind_t)k;
			out->big_endian = 0;
			return HALO_OK;
		}
	const char *p = s;
	int big = 0;
	if (*p == '<' || *p == '|' || *p == '=') {
		p++;
	} else if (*p == '>') {
		big = 1;
		p++;
	}
	if (p[0] && p[1] >= '1' && p[1] <= '8' && p[2] == '\0')
		for (int k = 0; k < HALO_DTYPE_COUNT; k++)
			if (dtypes[k].code == p[0] && dtypes[k].size == p[1] - '0') {
				out->kind = (halo_dtype_kind_t)k;
				out->big_endian = big && dtypes[k].size > 1;
				return HALO_OK;
			}
	return halo_error_set(err, HALO_EUNSUPPORTED,
			      "%s: unsupported dtype '%s' (supported: u1 u2 u4 i1 i2 i4 f4 f8)",
			      what, s);
}

size_t halo_dtype_size(halo_dtype_t dt)
{
	return (size_t)dtypes[dt.kind].size;
}

int halo_dtype_is_float(halo_dtype_t dt)
{
	return dtypes[dt.kind].code == 'f';
}

const char *halo_dtype_name(halo_dtype_t dt)
{
	return dtypes[dt.kind].name;
}

void halo_dtype_zarr_string(halo_dtype_t dt, char out[4])
{
	out[0] = dtypes[dt.kind].size == 1 ? '|' : dt.big_endian ? '>' : '<';
	out[1] = dtypes[dt.kind].code;
	out[2] = (char)('0' + dtypes[dt.kind].size);
	out[3] = '\0';
}

void halo_dtype_byteswap(void *p, size_t elsize, size_t n)
{
	unsigned char *b = p;
	switch (elsize) {
	case 2:
		for (size_t i = 0; i < n; i++) {
			uint16_t v;
			memcpy(&v, b + 2 * i, 2);
			v = __builtin_bswap16(v);
			memcpy(b + 2 * i, &v, 2);
		}
		break;
	case 4:
		for (size_t i = 0; i < n; i++) {
			uint32_t v;
			memcpy(&v, b + 4 * i, 4);
			v = __builtin_bswap32(v);
			memcpy(b + 4 * i, &v, 4);
		}
		break;
	case 8:
		for (size_t i = 0; i < n; i++) {
			uint64_t v;
			memcpy(&v, b + 8 * i, 8);
			v = __builtin_bswap64(v);
			memcpy(b + 8 * i, &v, 8);
		}
		break;
	}
}

static void load(const void *src, halo_dtype_kind_t k, double *d, size_t n)
{
	switch (k) {
	case HALO_U1: for (size_t i = 0; i < n; i++) d[i] = ((const uint8_t *)src)[i]; break;
	case HALO_U2: for (size_t i = 0; i < n; i++) d[i] = ((const uint16_t *)src)[i]; break;
	case HALO_U4: for (size_t i = 0; i < n; i++) d[i] = ((const uint32_t *)src)[i]; break;
	case HALO_I1: for (size_t i = 0; i < n; i++) d[i] = ((const int8_t *)src)[i]; break;
	case HALO_I2: for (size_t i = 0; i < n; i++) d[i] = ((const int16_t *)src)[i]; break;
	case HALO_I4: for (size_t i = 0; i < n; i++) d[i] = ((const int32_t *)src)[i]; break;
	case HALO_F4: for (size_t i = 0; i < n; i++) d[i] = ((const float *)src)[i]; break;
	case HALO_F8: memcpy(d, src, n * sizeof *d); break;
	default: break;
	}
}

/* Nearest integer (ties to even), clamped to [lo, hi]; NaN gives 0. */
static inline double to_int_range(double v, double lo, double hi)
{
	if (v != v)
		return 0;
	v = nearbyint(v);
	return v < lo ? lo : v > hi ? hi : v;
}

static void store(const double *d, void *dst, halo_dtype_kind_t k, size_t n)
{
	switch (k) {
	case HALO_U1: for (size_t i = 0; i < n; i++) ((uint8_t *)dst)[i] = (uint8_t)to_int_range(d[i], 0, UINT8_MAX); break;
	case HALO_U2: for (size_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = (uint16_t)to_int_range(d[i], 0, UINT16_MAX); break;
	case HALO_U4: for (size_t i = 0; i < n; i++) ((uint32_t *)dst)[i] = (uint32_t)to_int_range(d[i], 0, UINT32_MAX); break;
	case HALO_I1: for (size_t i = 0; i < n; i++) ((int8_t *)dst)[i] = (int8_t)to_int_range(d[i], INT8_MIN, INT8_MAX); break;
	case HALO_I2: for (size_t i = 0; i < n; i++) ((int16_t *)dst)[i] = (int16_t)to_int_range(d[i], INT16_MIN, INT16_MAX); break;
	case HALO_I4: for (size_t i = 0; i < n; i++) ((int32_t *)dst)[i] = (int32_t)to_int_range(d[i], INT32_MIN, INT32_MAX); break;
	case HALO_F4: for (size_t i = 0; i < n; i++) ((float *)dst)[i] = (float)d[i]; break;
	case HALO_F8: memcpy(dst, d, n * sizeof *d); break;
	default: break;
	}
}

void halo_dtype_convert(const void *src, halo_dtype_kind_t skind, void *dst,
			halo_dtype_kind_t dkind, size_t n)
{
	size_t ssize = (size_t)dtypes[skind].size, dsize = (size_t)dtypes[dkind].size;
	if (skind == dkind) {
		if (src != dst)
			memmove(dst, src, n * ssize);
		return;
	}
	double buf[1024];
	const unsigned char *s = src;
	unsigned char *d = dst;
	/* When narrowing in place, walking forwards never overwrites unread
	 * input; widening in place is not supported (see dtype.h). */
	for (size_t done = 0; done < n;) {
		size_t m = n - done < 1024 ? n - done : 1024;
		load(s + done * ssize, skind, buf, m);
		store(buf, d + done * dsize, dkind, m);
		done += m;
	}
}

void halo_dtype_fill(void *dst, halo_dtype_kind_t kind, double value, size_t n)
{
	unsigned char one[8];
	store(&value, one, kind, 1);
	size_t size = (size_t)dtypes[kind].size;
	unsigned char *d = dst;
	for (size_t i = 0; i < n; i++)
		memcpy(d + i * size, one, size);
}
