/* Parsing of command-line values (counts, sizes). Every parser rejects
 * trailing garbage and out-of-range values with a message naming the option,
 * because a silently truncated "--memory 2x" would be a wrong run, not an
 * error. */
#include "config.h"
#include "util/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int halo__parse_int(const char *s, long min, long max, const char *what,
		    long *out, halo_error_t *err)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (!*s || *end || isspace((unsigned char)*s))
		return halo_error_set(err, HALO_EINVAL, "%s: '%s' is not an integer", what, s);
	if (errno == ERANGE)
		return halo_error_set(err, HALO_EINVAL, "%s: %s is out of range [%ld, %ld]", what, s,
				      min, max);
	if (v < min || v > max)
		return halo_error_set(err, HALO_EINVAL, "%s: %ld is out of range [%ld, %ld]",
				      what, v, min, max);
	*out = v;
	return HALO_OK;
}

int halo__parse_size(const char *s, const char *what, uint64_t *out,
		     halo_error_t *err)
{
	char *end;
	errno = 0;
	/* Decimal only: strtod would also take hex (0x10G) and exponents. */
	if (!isdigit((unsigned char)*s) || strspn(s, "0123456789.") < strcspn(s, "KMGTkmgtiBb"))
		return halo_error_set(err, HALO_EINVAL, "%s: '%s' is not a size (e.g. 512M, 2G)",
				      what, s);
	double v = strtod(s, &end);
	unsigned shift = 0;
	switch (toupper((unsigned char)*end)) {
	case 'K': shift = 10; end++; break;
	case 'M': shift = 20; end++; break;
	case 'G': shift = 30; end++; break;
	case 'T': shift = 40; end++; break;
	}
	if (shift && *end == 'i')
		end++;
	if (toupper((unsigned char)*end) == 'B')
		end++;
	if (*end || errno == ERANGE || v < 0)
		return halo_error_set(err, HALO_EINVAL,
				      "%s: '%s' is not a size (e.g. 512M, 2G)", what, s);
	double bytes = v * (double)((uint64_t)1 << shift);
	if (bytes > 9.0e18)
		return halo_error_set(err, HALO_EINVAL, "%s: '%s' is too large", what, s);
	if (bytes < 1)
		return halo_error_set(err, HALO_EINVAL, "%s: '%s' is no memory at all", what, s);
	*out = (uint64_t)bytes;
	return HALO_OK;
}

int halo__parse_int_list(const char *s, int min_n, int max_n, long min, const char *what,
			 int64_t *out, int *n, halo_error_t *err)
{
	int count = 0;
	const char *p = s;
	while (1) {
		char *end;
		errno = 0;
		long long v = strtoll(p, &end, 10);
		if (end == p || errno == ERANGE || (*end && *end != ',') || isspace((unsigned char)*p))
			return halo_error_set(err, HALO_EINVAL, "%s: '%s' is not a list of integers like 64,256,256",
					      what, s);
		if (v < min)
			return halo_error_set(err, HALO_EINVAL, "%s: %lld must be at least %ld", what, v, min);
		if (v > INT32_MAX) /* sizes and depths: none is that large */
			return halo_error_set(err, HALO_EINVAL, "%s: %lld is too large", what, v);
		if (count == max_n)
			return halo_error_set(err, HALO_EINVAL, "%s: '%s' has more than %d values", what, s, max_n);
		out[count++] = v;
		if (!*end)
			break;
		p = end + 1;
	}
	if (count < min_n)
		return halo_error_set(err, HALO_EINVAL, "%s: '%s' needs %d values", what, s, min_n);
	*n = count;
	return HALO_OK;
}
