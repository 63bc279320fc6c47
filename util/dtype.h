/* Element types of stored arrays and conversions between them.
 *
 * In memory halo keeps every array in native byte order; byte order only
 * matters at the file boundary, where io/ swaps as needed. Conversion to an
 * integer type rounds to nearest (ties to even, as numpy.rint) and saturates at the
 * type's range; NaN becomes 0. This is what a microscopist expects when a
 * float32 deconvolution result is written back as uint16, and unlike C's
 * cast it is never undefined. */
#ifndef HALO_DTYPE_H
#define HALO_DTYPE_H

#include <stddef.h>
#include <stdint.h>

#include "halo.h"

typedef enum halo_dtype_kind {
	/* Performance models key tasks by these values (the gather's
	 * footprint, bench/models): new kinds go last. */
	HALO_U1, HALO_U2, HALO_U4, HALO_I1, HALO_I2, HALO_I4, HALO_F4, HALO_F8, HALO_U8, HALO_I8,
	HALO_F2, HALO_B1, /* float16 and bool: stored, converted and reduced, not computed on */
	HALO_DTYPE_COUNT
} halo_dtype_kind_t;

typedef struct halo_dtype {
	halo_dtype_kind_t kind;
	int big_endian; /* byte order in the file; memory is always native */
} halo_dtype_t;

/* Accepts numpy/zarr v2 strings ("<u2", ">f4", "|u1", "u2") and names
 * ("uint16", "float32"). `what` names the value in the message. */
int halo_dtype_parse(const char *s, const char *what, halo_dtype_t *out, halo_error_t *err);

/* The same for a type halo is to write: native (little-endian) order only,
 * so that a '>' asked for is refused rather than ignored. */
int halo_dtype_parse_output(const char *s, const char *what, halo_dtype_t *out,
			    halo_error_t *err);

size_t halo_dtype_size(halo_dtype_t dt);
size_t halo_dtype_kind_size(halo_dtype_kind_t kind);
int halo_dtype_kind_is_int(halo_dtype_kind_t kind); /* bool too: 0 and 1 */
int halo_dtype_kind_is_signed(halo_dtype_kind_t kind); /* signed integers */
int halo_dtype_is_float(halo_dtype_t dt);
/* "uint16", "float32", ... */
const char *halo_dtype_name(halo_dtype_t dt);
/* zarr v2 string: "<u2", ">f4", "|u1" (one-byte types have no order). */
void halo_dtype_zarr_string(halo_dtype_t dt, char out[4]);

/* Reverses the byte order of n elements of size elsize, in place. */
void halo_dtype_byteswap(void *p, size_t elsize, size_t n);

/* Converts n native-order elements; between integer kinds exactly (64-bit
 * values too), otherwise through double. bool is 0 or 1, and a value
 * becomes true when it is not 0 (NaN too), as numpy's astype(bool). src and dst may be the same pointer
 * when the destination type is not wider than the source; otherwise they
 * must not overlap. */
void halo_dtype_convert(const void *src, halo_dtype_kind_t skind, void *dst,
			halo_dtype_kind_t dkind, size_t n);

/* value as a voxel of kind holds it: rounded to nearest, saturated, NaN
 * as 0 for integer kinds (the rules of halo_dtype_convert). */
double halo_dtype_cast(double value, halo_dtype_kind_t kind);

/* A float as numpy 1.24's astype turns it into the integer kind on x86
 * (where C leaves it undefined): truncated toward zero through a 32-bit
 * conversion, whose NaN and out-of-range results are INT32_MIN, then the
 * low bits kept; uint32 converts its upper half shifted down. The 64-bit
 * kinds do the same through a 64-bit conversion; uint64's bits come back
 * as an int64. */
int64_t halo_dtype_ftoi(halo_dtype_kind_t kind, double v);

/* value as numpy converts one scalar to kind, which is how numpy, and so
 * dask.array, pads an array with a constant: halo_dtype_ftoi for integer
 * kinds but uint32 (through int64: 1e10 gives 1410065408, where an array's
 * astype gives 0), float32 rounds. */
double halo_dtype_cast_unsafe(double value, halo_dtype_kind_t kind);

/* Fills n elements of dst with value converted to kind (same rounding and
 * saturation as halo_dtype_convert). */
void halo_dtype_fill(void *dst, halo_dtype_kind_t kind, double value, size_t n);

/* A fill value: as a double, and for integer kinds exactly (a uint64's
 * bits), which a double is not beyond 2^53. */
typedef struct halo_fill {
	double value;
	int64_t bits;
} halo_fill_t;

/* fill, of kind from, as kind to (the rules of halo_dtype_convert). */
halo_fill_t halo_fill_convert(halo_fill_t fill, halo_dtype_kind_t from, halo_dtype_kind_t to);

/* n elements of kind holding fill. */
void halo_fill_store(void *dst, halo_dtype_kind_t kind, halo_fill_t fill, size_t n);

/* Whether n elements of kind all hold fill, bit for bit (a -0.0 is no
 * fill of 0.0, nor another NaN of a NaN's: kept, they read back as they
 * were). */
int halo_fill_only(const void *p, halo_dtype_kind_t kind, halo_fill_t fill, size_t n);

/* Whether n elements of type kind hold no NaN or infinity (integers
 * always). */
int halo_dtype_all_finite(const void *p, halo_dtype_kind_t kind, size_t n);

/* The largest magnitude among n floats of kind (float16, float32 or
 * float64; NaN ignored); 0 for none, and for other kinds. */
double halo_dtype_max_abs(const void *p, halo_dtype_kind_t kind, size_t n);

#endif
