/* Internal helpers shared by every layer: parsing of command-line values,
 * and text. Not part of the public API (names start with halo__). */
#ifndef HALO_UTIL_H
#define HALO_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "halo.h"

/* Parses a whole decimal integer in [min, max]; `what` names the value in
 * the error message ("--ncpu"). */
int halo__parse_int(const char *s, long min, long max, const char *what,
		    long *out, halo_error_t *err);

/* Parses a byte size with an optional K/M/G/T suffix (powers of 1024, an
 * optional trailing B or iB), e.g. "2G", "512MiB", "1048576". */
int halo__parse_size(const char *s, const char *what, uint64_t *out,
		     halo_error_t *err);

/* Parses "64,256,256": between min_n and max_n integers, each >= min. */
int halo__parse_int_list(const char *s, int min_n, int max_n, long min, const char *what,
			 int64_t *out, int *n, halo_error_t *err);

/* src into dst (len bytes), cut where it must be at a character, not
 * inside one: a cut UTF-8 sequence makes JSON writers refuse the string. */
void halo__copy_utf8(char *dst, size_t len, const char *src);

/* The last ndim of v: "ZxYxX", "YxX" for a 2D volume, "X", or "a scalar"
 * (ndim 0, or out of range); returns buf. */
const char *halo__dims(const int64_t v[3], int ndim, char *buf, size_t len);

/* bytes as "512 B", "3.2 KiB", "340 MiB", "1.5 GiB" (binary units, as
 * --memory takes them; three significant digits); returns buf. */
const char *halo__bytes(uint64_t bytes, char *buf, size_t len);
/* The same of a size reckoned in floating point (a product of sizes from
 * a file, which may pass 2^64: said as the most there is). */
const char *halo__bytes_f(double bytes, char *buf, size_t len);

/* s for a line of output: control characters (a newline in a file name)
 * become '?', so that a message stays one line; returns buf. */
const char *halo__shown(const char *s, char *buf, size_t len);

#endif
