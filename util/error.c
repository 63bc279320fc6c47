/* Error codes and messages shared by every layer of halo.
 *
 * Every fallible function returns a HALO_E* code and fills a halo_error_t
 * with one line of context; these helpers keep that a one-statement affair
 * and turn codes into names for messages and tests.
 */
#include "config.h"
#include "halo.h"
#include "util/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *halo_err_name(int code)
{
	switch (code) {
	case HALO_OK:
		return "OK";
#define HALO__ERR_NAME(name, value, text) \
	case HALO_##name:                 \
		return #name;
		HALO_ERRNO_MAP(HALO__ERR_NAME)
#undef HALO__ERR_NAME
	}
	return "EUNKNOWN";
}

const char *halo_strerror(int code)
{
	switch (code) {
	case HALO_OK:
		return "success";
#define HALO__ERR_TEXT(name, value, text) \
	case HALO_##name:                 \
		return text;
		HALO_ERRNO_MAP(HALO__ERR_TEXT)
#undef HALO__ERR_TEXT
	}
	return "unknown error";
}

int halo_error_set(halo_error_t *err, int code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
		va_end(ap);
		err->code = code;
	}
	return code;
}

int halo_error_prefix(halo_error_t *err, const char *fmt, ...)
{
	if (!err)
		return HALO_EINVAL;
	char prefix[HALO_ERROR_MSG_MAX];
	char old[HALO_ERROR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof old);
	/* Truncation keeps the start of the line, which names the file. */
	size_t n = strlen(prefix);
	if (n > sizeof err->msg - 3)
		n = sizeof err->msg - 3;
	memcpy(err->msg, prefix, n);
	memcpy(err->msg + n, ": ", 2);
	n += 2;
	size_t rest = strnlen(old, sizeof old - 1);
	if (rest > sizeof err->msg - 1 - n)
		rest = sizeof err->msg - 1 - n;
	memcpy(err->msg + n, old, rest);
	err->msg[n + rest] = '\0';
	return err->code;
}

void halo_error_replace(halo_error_t *err, const char *from, const char *to)
{
	if (!err || !*from)
		return;
	char out[HALO_ERROR_MSG_MAX];
	size_t n = 0, lf = strlen(from), lt = strlen(to);
	for (const char *p = err->msg; *p && n < sizeof out - 1;) {
		if (strncmp(p, from, lf) == 0) {
			size_t k = lt < sizeof out - 1 - n ? lt : sizeof out - 1 - n;
			memcpy(out + n, to, k);
			n += k;
			p += lf;
		} else {
			out[n++] = *p++;
		}
	}
	out[n] = '\0';
	memcpy(err->msg, out, n + 1);
}

const char *halo_version_string(void)
{
	return PACKAGE_VERSION;
}
