/* Text helpers shared by the layers (see util.h). */
#include "config.h"
#include "util/util.h"

#include <stdio.h>
#include <string.h>

void halo__copy_utf8(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src);
	size_t n = strlen(dst);
	if (src[n]) {
		while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
			n--;
		dst[n] = '\0';
	}
}

const char *halo__dims(const int64_t v[3], int ndim, char *buf, size_t len)
{
	if (ndim < 1 || ndim > 3) {
		snprintf(buf, len, "a scalar");
		return buf;
	}
	size_t n = 0;
	buf[0] = '\0';
	for (int d = 3 - ndim; d < 3 && n < len; d++)
		n += (size_t)snprintf(buf + n, len - n, "%s%lld", d > 3 - ndim ? "x" : "",
				      (long long)v[d]);
	return buf;
}

const char *halo__bytes(uint64_t bytes, char *buf, size_t len)
{
	/* Binary, as --memory 512M and halo info's GiB count. */
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double v = (double)bytes;
	int u = 0;
	while (v >= 1023.5 && u < 6) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.3g %s" : "%.0f %s", v, units[u]);
	return buf;
}

const char *halo__bytes_f(double bytes, char *buf, size_t len)
{
	return halo__bytes(bytes >= 0x1p64 ? UINT64_MAX : bytes > 0 ? (uint64_t)bytes : 0, buf,
			   len);
}

const char *halo__shown(const char *s, char *buf, size_t len)
{
	snprintf(buf, len, "%s", s);
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return buf;
}
