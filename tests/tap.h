/* A small TAP producer for halo's C tests. Each check prints one "ok" or
 * "not ok" line, with both operands on failure, and keeps going; it does not
 * depend on assert(), so NDEBUG builds test the same things. main() returns
 * tap_done(), which is non-zero when any check failed. */
#ifndef HALO_TAP_H
#define HALO_TAP_H

#include <stdint.h>

/* Returns cond != 0. */
int tap_ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int tap_int_eq(long long got, long long want, const char *what);
int tap_str_eq(const char *got, const char *want, const char *what);
/* |got - want| <= tol */
int tap_near(double got, double want, double tol, const char *what);
void tap_skip(const char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints the plan (1..N) and returns the exit status. */
int tap_done(void);

#endif
