/* Element types: parsing, names, byte swapping and conversion (see dtype.h).
 * Conversion goes through a small double buffer, one switch per block
 * rather than per element, which keeps every pair of types correct with
 * two short loops while staying memory-bound on large chunks. */
#include "config.h"
#include "util/dtype.h"
#include "util/dtype_scalar.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static const struct {
	const char *name;
	char code;  /* numpy kind letter */
	int size;
} dtypes[HALO_DTYPE_COUNT] = {
	[HALO_U1] = {"uint8", 'u', 1},   [HALO_U2] = {"uint16", 'u', 2},
	[HALO_U4] = {"uint32", 'u', 4},  [HALO_U8] = {"uint64", 'u', 8},
	[HALO_I1] = {"int8", 'i', 1},    [HALO_I2] = {"int16", 'i', 2},
	[HALO_I4] = {"int32", 'i', 4},   [HALO_I8] = {"int64", 'i', 8},
	[HALO_F4] = {"float32", 'f', 4}, [HALO_F8] = {"float64", 'f', 8},
	[HALO_F2] = {"float16", 'f', 2}, [HALO_B1] = {"bool", 'b', 1},
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
			      "%s: unsupported dtype '%s' (supported: uint8 uint16 uint32 uint64 int8 "
			      "int16 int32 int64 float16 float32 float64 bool, or numpy's u1 u2 u4 "
			      "u8 i1 i2 i4 i8 f2 f4 f8 b1)",
			      what, s);
}

int halo_dtype_parse_output(const char *s, const char *what, halo_dtype_t *out,
			    halo_error_t *err)
{
	int rc = halo_dtype_parse(s, what, out, err);
	if (!rc && out->big_endian)
		return halo_error_set(err, HALO_EINVAL, "%s: '%s': halo writes little-endian arrays; "
				      "give the type without '>'", what, s);
	return rc;
}

size_t halo_dtype_size(halo_dtype_t dt)
{
	return (size_t)dtypes[dt.kind].size;
}

size_t halo_dtype_kind_size(halo_dtype_kind_t kind)
{
	return (size_t)dtypes[kind].size;
}

int halo_dtype_kind_is_int(halo_dtype_kind_t kind)
{
	return dtypes[kind].code != 'f';
}

int halo_dtype_kind_is_signed(halo_dtype_kind_t kind)
{
	return dtypes[kind].code == 'i';
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

/* The kind is a constant inside each case, so the compiler turns every
 * loop into a plain typed copy. */
#define EACH_KIND(k, stmt)                                                           \
	switch (k) {                                                                 \
	case HALO_U1: { const int K = HALO_U1; stmt; } break;                        \
	case HALO_U2: { const int K = HALO_U2; stmt; } break;                        \
	case HALO_U4: { const int K = HALO_U4; stmt; } break;                        \
	case HALO_U8: { const int K = HALO_U8; stmt; } break;                        \
	case HALO_I1: { const int K = HALO_I1; stmt; } break;                        \
	case HALO_I2: { const int K = HALO_I2; stmt; } break;                        \
	case HALO_I4: { const int K = HALO_I4; stmt; } break;                        \
	case HALO_I8: { const int K = HALO_I8; stmt; } break;                        \
	case HALO_F2: { const int K = HALO_F2; stmt; } break;                        \
	case HALO_B1: { const int K = HALO_B1; stmt; } break;                        \
	case HALO_F4: { const int K = HALO_F4; stmt; } break;                        \
	case HALO_F8: { const int K = HALO_F8; stmt; } break;                        \
	default: break;                                                              \
	}

static void load(const void *src, halo_dtype_kind_t k, double *d, size_t n)
{
	EACH_KIND(k, for (size_t i = 0; i < n; i++) d[i] = halo_dtype_load1(src, i, K))
}

static void store(const double *d, void *dst, halo_dtype_kind_t k, size_t n)
{
	EACH_KIND(k, for (size_t i = 0; i < n; i++) halo_dtype_store1(dst, i, K, d[i]))
}

static void loadi(const void *src, halo_dtype_kind_t k, int64_t *d, size_t n)
{
	EACH_KIND(k, for (size_t i = 0; i < n; i++) d[i] = halo_dtype_loadi(src, i, K))
}

static void storei(const int64_t *d, void *dst, halo_dtype_kind_t k, size_t n)
{
	EACH_KIND(k, for (size_t i = 0; i < n; i++) halo_dtype_storei(dst, i, K, d[i]))
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
	union {
		double f[1024];
		int64_t i[1024];
	} buf;
	/* exact (dtype_scalar.h) */
	int ints = halo_dtype_kind_is_int(skind) && halo_dtype_kind_is_int(dkind);
	const unsigned char *s = src;
	unsigned char *d = dst;
	/* When narrowing in place, walking forwards never overwrites unread
	 * input; widening in place is not supported (see dtype.h). */
	for (size_t done = 0; done < n;) {
		size_t m = n - done < 1024 ? n - done : 1024;
		if (ints) {
			loadi(s + done * ssize, skind, buf.i, m);
			storei(buf.i, d + done * dsize, dkind, m);
		} else {
			load(s + done * ssize, skind, buf.f, m);
			store(buf.f, d + done * dsize, dkind, m);
		}
		done += m;
	}
}

double halo_dtype_cast(double value, halo_dtype_kind_t kind)
{
	unsigned char one[8];
	double back;
	store(&value, one, kind, 1);
	load(one, kind, &back, 1);
	return back;
}

/* x86's truncating conversion to int32 (cvttsd2si): NaN and values out of
 * range give INT32_MIN. */
static int32_t cvt32(double v)
{
	return v >= -2147483648.0 && v < 2147483648.0 ? (int32_t)v : INT32_MIN;
}

static int64_t cvt64(double v)
{
	return v >= -9223372036854775808.0 && v < 9223372036854775808.0 ? (int64_t)v : INT64_MIN;
}

int64_t halo_dtype_ftoi(halo_dtype_kind_t kind, double v)
{
	switch (kind) {
	case HALO_U1: return (uint8_t)cvt32(v);
	case HALO_U2: return (uint16_t)cvt32(v);
	case HALO_I1: return (int8_t)cvt32(v);
	case HALO_I2: return (int16_t)cvt32(v);
	case HALO_I4: return cvt32(v);
	case HALO_U4: /* numpy's loop: the upper half shifted into int32's range */
		return v >= 2147483648.0 ? (uint32_t)cvt32(v - 2147483648.0) ^ 0x80000000u
					 : (uint32_t)cvt32(v);
	case HALO_I8: return cvt64(v);
	case HALO_B1: return v != 0;
	case HALO_U8: /* the same shift, one size up; the bits as int64 */
		return v >= 9223372036854775808.0
			       ? (int64_t)((uint64_t)cvt64(v - 9223372036854775808.0) ^ (1ull << 63))
			       : cvt64(v);
	default: return (int64_t)v;
	}
}

double halo_dtype_cast_unsafe(double value, halo_dtype_kind_t kind)
{
	if (kind == HALO_F8)
		return value;
	/* One scalar, which numpy converts by C's cast: on x86 through int64
	 * (cvttsd2si, INT64_MIN when out of range), then the low 32 bits; the
	 * array loop of halo_dtype_ftoi differs only for uint32. */
	if (kind == HALO_U4)
		return (double)(uint32_t)(value > -9223372036854775808.0 &&
						  value < 9223372036854775808.0
					  ? (int64_t)value
					  : INT64_MIN);
	if (kind == HALO_F4 || kind == HALO_F2)
		return halo_dtype_cast(value, kind); /* rounded to the float type */
	/* A 64-bit integer near its type's top, which a double rounds up to
	 * 2^64 or 2^63 (an integer boundary of -1, wrapped to 2^64 - 1 for a
	 * uint64 array), stands for itself: cast, it came out 0. */
	if ((kind == HALO_U8 && value == 18446744073709551616.0) ||
	    (kind == HALO_I8 && value == 9223372036854775808.0))
		return value;
	if (kind == HALO_U8)
		return (double)(uint64_t)halo_dtype_ftoi(kind, value);
	return (double)halo_dtype_ftoi(kind, value);
}

/* n copies of the element one of kind. */
static void repeat(void *dst, halo_dtype_kind_t kind, const unsigned char one[8], size_t n)
{
	size_t size = (size_t)dtypes[kind].size;
	unsigned char *d = dst;
	for (size_t i = 0; i < n; i++)
		memcpy(d + i * size, one, size);
}

void halo_dtype_fill(void *dst, halo_dtype_kind_t kind, double value, size_t n)
{
	unsigned char one[8];
	store(&value, one, kind, 1);
	repeat(dst, kind, one, n);
}

/* The kind of a fill's bits: uint64 for uint64, else int64. */
static halo_dtype_kind_t bits_kind(halo_dtype_kind_t kind)
{
	return kind == HALO_U8 ? HALO_U8 : HALO_I8;
}

/* One element of kind holding fill. */
static void fill_element(halo_fill_t fill, halo_dtype_kind_t kind, unsigned char out[8])
{
	if (halo_dtype_kind_is_int(kind))
		halo_dtype_convert(&fill.bits, bits_kind(kind), out, kind, 1);
	else
		halo_dtype_convert(&fill.value, HALO_F8, out, kind, 1);
}

halo_fill_t halo_fill_convert(halo_fill_t fill, halo_dtype_kind_t from, halo_dtype_kind_t to)
{
	unsigned char a[8], b[8];
	halo_fill_t r = {0, 0};
	fill_element(fill, from, a);
	halo_dtype_convert(a, from, b, to, 1);
	halo_dtype_convert(b, to, &r.value, HALO_F8, 1);
	if (halo_dtype_kind_is_int(to))
		halo_dtype_convert(b, to, &r.bits, bits_kind(to), 1);
	return r;
}

void halo_fill_store(void *dst, halo_dtype_kind_t kind, halo_fill_t fill, size_t n)
{
	unsigned char one[8];
	fill_element(fill, kind, one);
	repeat(dst, kind, one, n);
}

int halo_fill_only(const void *p, halo_dtype_kind_t kind, halo_fill_t fill, size_t n)
{
	unsigned char one[8];
	fill_element(fill, kind, one);
	size_t el = halo_dtype_kind_size(kind);
	/* Each element equal to the first, and the first to fill: one
	 * memcmp of the buffer against itself moved by an element. */
	return n == 0 || (memcmp(p, one, el) == 0 &&
			  memcmp(p, (const unsigned char *)p + el, (n - 1) * el) == 0);
}

/* m, or |v| where larger; a NaN compares false: ignored. */
static double larger(double m, double v)
{
	return fabs(v) > m ? fabs(v) : m;
}

double halo_dtype_max_abs(const void *p, halo_dtype_kind_t kind, size_t n)
{
	double m = 0;
	if (kind == HALO_F4)
		for (size_t i = 0; i < n; i++)
			m = larger(m, ((const float *)p)[i]);
	else if (kind == HALO_F8)
		for (size_t i = 0; i < n; i++)
			m = larger(m, ((const double *)p)[i]);
	else if (kind == HALO_F2)
		for (size_t i = 0; i < n; i++)
			m = larger(m, halo_half_get(p, i));
	return m;
}

int halo_dtype_all_finite(const void *p, halo_dtype_kind_t kind, size_t n)
{
	int ok = 1;
	if (kind == HALO_F4)
		for (size_t i = 0; i < n; i++)
			ok &= isfinite(((const float *)p)[i]) != 0;
	else if (kind == HALO_F8)
		for (size_t i = 0; i < n; i++)
			ok &= isfinite(((const double *)p)[i]) != 0;
	else if (kind == HALO_F2)
		for (size_t i = 0; i < n; i++)
			ok &= isfinite(halo_half_get(p, i)) != 0;
	return ok;
}
