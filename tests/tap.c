/* TAP output for the C tests (see tap.h). The plan is printed last, which
 * TAP allows, so tests need not count their checks in advance. */
#include "tests/tap.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_count, tap_failed;

static int tap_vreport(int cond, const char *fmt, va_list ap)
{
	tap_count++;
	if (!cond)
		tap_failed++;
	printf("%s %d - ", cond ? "ok" : "not ok", tap_count);
	vprintf(fmt, ap);
	putchar('\n');
	fflush(stdout);
	return cond;
}

int tap_ok(int cond, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = tap_vreport(cond != 0, fmt, ap);
	va_end(ap);
	return r;
}

int tap_int_eq(long long got, long long want, const char *what)
{
	return tap_ok(got == want, "%s: got %lld, want %lld", what, got, want);
}

int tap_str_eq(const char *got, const char *want, const char *what)
{
	int eq = got && want && strcmp(got, want) == 0;
	return tap_ok(eq, "%s: got \"%s\", want \"%s\"", what, got ? got : "(null)",
		      want ? want : "(null)");
}

int tap_near(double got, double want, double tol, const char *what)
{
	return tap_ok(fabs(got - want) <= tol, "%s: got %.9g, want %.9g (tol %.3g)", what,
		      got, want, tol);
}

void tap_skip(const char *why, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	tap_count++;
	printf("ok %d - ", tap_count);
	vprintf(fmt, ap);
	printf(" # SKIP %s\n", why);
	va_end(ap);
}

void tap_diag(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("# ");
	vprintf(fmt, ap);
	putchar('\n');
	va_end(ap);
}

int tap_done(void)
{
	printf("1..%d\n", tap_count);
	return tap_failed ? 1 : 0;
}
