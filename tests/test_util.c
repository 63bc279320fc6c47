/* Error table and command-line value parsing. */
#include "config.h"
#include "halo.h"
#include "util/dtype.h"
#include "util/util.h"
#include "tests/tap.h"

#include <math.h>
#include <string.h>

static void test_errors(void)
{
	static const int codes[] = {
#define HALO__ERR_CODE(name, value, text) HALO_##name,
		HALO_ERRNO_MAP(HALO__ERR_CODE)
#undef HALO__ERR_CODE
	};
	size_t n = sizeof codes / sizeof codes[0];
	int distinct = 1;
	for (size_t i = 0; i < n; i++) {
		tap_ok(codes[i] < 0, "%s is negative (%d)", halo_err_name(codes[i]), codes[i]);
		for (size_t j = 0; j < i; j++)
			if (codes[i] == codes[j] ||
			    strcmp(halo_err_name(codes[i]), halo_err_name(codes[j])) == 0)
				distinct = 0;
	}
	tap_ok(distinct, "error codes and names are distinct");
	tap_str_eq(halo_err_name(HALO_EIO), "EIO", "name of HALO_EIO");
	tap_str_eq(halo_strerror(HALO_OK), "success", "strerror(HALO_OK)");
	tap_str_eq(halo_err_name(12345), "EUNKNOWN", "name of an unknown code");

	halo_error_t err = {0};
	int rc = halo_error_set(&err, HALO_EFORMAT, "chunk %d is %s", 7, "short");
	tap_int_eq(rc, HALO_EFORMAT, "halo_error_set returns its code");
	tap_str_eq(err.msg, "chunk 7 is short", "halo_error_set formats");
	halo_error_prefix(&err, "%s", "in.zarr");
	tap_str_eq(err.msg, "in.zarr: chunk 7 is short", "halo_error_prefix prepends");
	tap_int_eq(err.code, HALO_EFORMAT, "halo_error_prefix keeps the code");
	tap_int_eq(halo_error_set(NULL, HALO_EIO, "x"), HALO_EIO, "a NULL err is allowed");
}

static void test_parse_int(void)
{
	long v = -1;
	tap_ok(halo__parse_int("12", 0, 100, "--n", &v, NULL) == 0 && v == 12, "parse 12");
	halo_error_t err = {0};
	tap_int_eq(halo__parse_int("12x", 0, 100, "--n", &v, &err), HALO_EINVAL, "reject 12x");
	tap_str_eq(err.msg, "--n: '12x' is not an integer", "message for 12x");
	tap_int_eq(halo__parse_int("", 0, 100, "--n", &v, NULL), HALO_EINVAL, "reject empty");
	tap_int_eq(halo__parse_int("101", 0, 100, "--n", &v, &err), HALO_EINVAL, "reject 101");
	tap_str_eq(err.msg, "--n: 101 is out of range [0, 100]", "message for 101");
	tap_int_eq(halo__parse_int("-1", 0, 100, "--n", &v, NULL), HALO_EINVAL, "reject -1");
	tap_int_eq(halo__parse_int("99999999999999999999", 0, 100, "--n", &v, NULL),
		   HALO_EINVAL, "reject overflow");
}

static void test_parse_size(void)
{
	static const struct { const char *s; uint64_t v; } good[] = {
		{"1048576", 1048576}, {"2G", 2ull << 30}, {"512M", 512ull << 20},
		{"512MiB", 512ull << 20}, {"1.5g", 3ull << 29}, {"4k", 4096}, {"1T", 1ull << 40},
		{"100B", 100},
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		uint64_t v = 0;
		int rc = halo__parse_size(good[i].s, "--memory", &v, NULL);
		tap_ok(rc == 0 && v == good[i].v, "size '%s' = %llu (got %llu, rc %d)", good[i].s,
		       (unsigned long long)good[i].v, (unsigned long long)v, rc);
	}
	static const char *bad[] = {"", "G", "2X", "-1G", "2GG", "1e30T", "0", "0G", "0.4",
				    "0x10G", "1e3G"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		uint64_t v;
		tap_int_eq(halo__parse_size(bad[i], "--memory", &v, NULL), HALO_EINVAL, bad[i]);
	}
}

/* numpy 1.24 on x86, measured: a constant filled into uint32 (np.full,
 * dask's constant boundary) against the same values in a long array's
 * astype (halo_dtype_ftoi). */
static void test_constant_cast(void)
{
	static const struct {
		double v, scalar, array;
	} c[] = {{1e10, 1410065408, 0}, {5e9, 705032704, 0}, {-3e9, 1294967296, 2147483648.0},
		 {3e9, 3000000000.0, 3000000000.0}, {-1, 4294967295.0, 4294967295.0},
		 {4294967296.0, 0, 0}, {1e19, 0, 0}, {NAN, 0, 2147483648.0}, {INFINITY, 0, 0}};
	for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
		tap_ok(halo_dtype_cast_unsafe(c[i].v, HALO_U4) == c[i].scalar &&
			       (double)halo_dtype_ftoi(HALO_U4, c[i].v) == c[i].array,
		       "uint32 from %g: %.0f as a constant, %.0f in an array", c[i].v, c[i].scalar,
		       c[i].array);
	}
	tap_ok(halo_dtype_cast_unsafe(1e10, HALO_U2) == 0 && halo_dtype_cast_unsafe(-1, HALO_I4) == -1,
	       "other integer types: as in an array");
}

/* numpy 1.24 on x86, measured: astype from float64 to the 64-bit types. */
static void test_ftoi64(void)
{
	static const struct {
		double v;
		uint64_t u;
		int64_t i;
	} c[] = {{NAN, 1ull << 63, INT64_MIN},        {-1.0, UINT64_MAX, -1},
		 {-1.5, UINT64_MAX, -1},                {1e19, 10000000000000000000ull, INT64_MIN},
		 {2e19, 0, INT64_MIN},                  {-1e19, 1ull << 63, INT64_MIN},
		 {INFINITY, 0, INT64_MIN},              {-INFINITY, 1ull << 63, INT64_MIN},
		 {9223372036854775808.0, 1ull << 63, INT64_MIN}, {18446744073709551616.0, 0, INT64_MIN}};
	for (size_t i = 0; i < sizeof c / sizeof *c; i++)
		tap_ok((uint64_t)halo_dtype_ftoi(HALO_U8, c[i].v) == c[i].u &&
			       halo_dtype_ftoi(HALO_I8, c[i].v) == c[i].i,
		       "astype uint64 and int64 of %g", c[i].v);
}

/* Between integer types halo_dtype_convert is exact and saturates, where a
 * double in between would round 2^53 + 1. */
static void test_convert64(void)
{
	int64_t i8[] = {INT64_MAX, INT64_MIN, (1ll << 53) + 1, -1, 70000};
	uint64_t u8[5], back[5];
	halo_dtype_convert(i8, HALO_I8, u8, HALO_U8, 5);
	tap_ok(u8[0] == INT64_MAX && u8[1] == 0 && u8[2] == (1ull << 53) + 1 && u8[3] == 0 &&
		       u8[4] == 70000,
	       "int64 -> uint64: exact, negatives saturate to 0");
	uint64_t big[] = {UINT64_MAX, (1ull << 63) + 1, (1ull << 53) + 1, 0, 5};
	int64_t s[5];
	halo_dtype_convert(big, HALO_U8, s, HALO_I8, 5);
	tap_ok(s[0] == INT64_MAX && s[1] == INT64_MAX && s[2] == (1ll << 53) + 1 && s[3] == 0,
	       "uint64 -> int64: exact, saturates at INT64_MAX");
	uint16_t u2[5];
	halo_dtype_convert(i8, HALO_I8, u2, HALO_U2, 5);
	tap_ok(u2[0] == 65535 && u2[1] == 0 && u2[2] == 65535 && u2[3] == 0 && u2[4] == 65535,
	       "int64 -> uint16 saturates");
	int8_t i1[5];
	halo_dtype_convert(big, HALO_U8, i1, HALO_I1, 5);
	tap_ok(i1[0] == 127 && i1[1] == 127 && i1[3] == 0 && i1[4] == 5, "uint64 -> int8 saturates");
	halo_dtype_convert(u2, HALO_U2, back, HALO_U8, 5);
	tap_ok(back[0] == 65535 && back[1] == 0, "uint16 -> uint64");
	double d[] = {1e30, -1, NAN, 18446744073709551616.0, 12.5};
	halo_dtype_convert(d, HALO_F8, back, HALO_U8, 5);
	tap_ok(back[0] == UINT64_MAX && back[1] == 0 && back[2] == 0 && back[3] == UINT64_MAX &&
		       back[4] == 12,
	       "float64 -> uint64 rounds (ties to even) and saturates, NaN as 0");
	halo_dtype_convert(d, HALO_F8, s, HALO_I8, 5);
	tap_ok(s[0] == INT64_MAX && s[1] == -1 && s[2] == 0 && s[3] == INT64_MAX,
	       "float64 -> int64 saturates");
}

static void test_bytes(void)
{
	static const struct {
		uint64_t v;
		const char *s;
	} c[] = {{0, "0 B"},        {1, "1 B"},          {1023, "1023 B"},
		 {1024, "1 KiB"},   {1048576, "1 MiB"},  {343040, "335 KiB"},
		 {1048575, "1 MiB"}, {3 << 29, "1.5 GiB"}, {UINT64_MAX, "16 EiB"}};
	for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
		char buf[32];
		tap_ok(!strcmp(halo__bytes(c[i].v, buf, sizeof buf), c[i].s), "%llu bytes: '%s' (got '%s')",
		       (unsigned long long)c[i].v, c[i].s, buf);
	}
}

int main(void)
{
	test_bytes();
	test_errors();
	test_constant_cast();
	test_ftoi64();
	test_convert64();
	test_parse_int();
	test_parse_size();
	return tap_done();
}
