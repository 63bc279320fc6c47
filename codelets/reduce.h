/* Reduction codelets: sum, min, max and mean of a chunk to a scalar
 * partial (combined on the host), and along one axis into an accumulator
 * of 8-byte elements that a chain of tasks (one per chunk along the axis)
 * updates in order, then converts to the result's type. Floats accumulate
 * in float64, within 1e-7 of numpy's pairwise float32 sums; integers'
 * sums, minima and maxima in 64-bit integers, exactly as numpy's (sums
 * wrap around); means in float64, as numpy's. NaN propagates as in
 * numpy. */
#ifndef HALO_CODELET_REDUCE_H
#define HALO_CODELET_REDUCE_H

#include <stdint.h>
#include <starpu.h>

#include "codelets/elementwise.h"
#include "util/dtype.h"

typedef enum halo_reduce_fn { HALO_RED_SUM, HALO_RED_MIN, HALO_RED_MAX, HALO_RED_MEAN } halo_reduce_fn_t;

struct halo_reduce_partial {
	double sum, min, max;
	int64_t isum, imin, imax; /* integer kinds: uint64 bits for unsigned */
};

/* The empty partial of elements of kind. */
struct halo_reduce_partial halo_reduce_partial_init(halo_dtype_kind_t kind);

/* Whether reductions fn of elements of kind (or, for finish, giving
 * kind) accumulate in integers, and then whether unsigned. */
int halo_reduce_ints(halo_reduce_fn_t fn, halo_dtype_kind_t kind);
int halo_reduce_unsigned(halo_dtype_kind_t kind);

struct halo_reduce_args {
	halo_reduce_fn_t fn;
	halo_dtype_kind_t kind;  /* input element type */
	int64_t valid[3];        /* voxels of the input buffer inside the array */
	int axis;                /* axis reductions: the internal axis */
	int first;               /* the first chunk along the axis: initialise */
	double count;            /* finish: elements along the axis (mean) */
	struct halo_reduce_partial *out; /* scalar partials: where to put it */
	/* Scalar partials of an elementwise chain's result, computed row by
	 * row without storing it: the buffers are the program's inputs and
	 * kind its result type. NULL: one buffer, reduced as it is. */
	const struct halo_ew_prog *prog;
	int *failed;             /* set when the task cannot run (out of memory) */
};

/* buffers: input (R), or the program's inputs (R). Fills *args->out. */
extern struct starpu_codelet halo_reduce_partial_cl;
/* buffers: input (R), accumulator (W when first, else RW). */
extern struct starpu_codelet halo_reduce_axis_cl;
/* buffers: accumulator (R), result (W) of type args->kind. */
extern struct starpu_codelet halo_reduce_finish_cl;

/* Folds b into a (min, max, sum), partials of elements of kind. */
void halo_reduce_combine(struct halo_reduce_partial *a, const struct halo_reduce_partial *b,
			 halo_dtype_kind_t kind);

#endif
