/* Reduction codelets (see reduce.h). */
#include "config.h"
#include "codelets/reduce.h"

#include "util/dtype_scalar.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* NaN wins, as in numpy's minimum and maximum. */
static inline double nmax(double a, double b)
{
	return (a > b || isnan(a)) ? a : b;
}

static inline double nmin(double a, double b)
{
	return (a < b || isnan(a)) ? a : b;
}

int halo_reduce_ints(halo_reduce_fn_t fn, halo_dtype_kind_t kind)
{
	return fn != HALO_RED_MEAN && halo_dtype_kind_is_int(kind);
}

int halo_reduce_unsigned(halo_dtype_kind_t kind)
{
	return halo_dtype_kind_is_int(kind) && !halo_dtype_kind_is_signed(kind) && kind != HALO_B1;
}

/* The integers' identities: uint64's minimum starts at all ones. */
static int64_t identity_i(halo_reduce_fn_t fn, int uns)
{
	if (fn == HALO_RED_MIN)
		return uns ? -1 : INT64_MAX;
	if (fn == HALO_RED_MAX)
		return uns ? 0 : INT64_MIN;
	return 0;
}

static inline int64_t add_i(int64_t a, int64_t b)
{
	return (int64_t)((uint64_t)a + (uint64_t)b); /* numpy's sums wrap */
}

static inline int64_t min_i(int64_t a, int64_t b, int uns)
{
	return (uns ? (uint64_t)b < (uint64_t)a : b < a) ? b : a;
}

static inline int64_t max_i(int64_t a, int64_t b, int uns)
{
	return (uns ? (uint64_t)b > (uint64_t)a : b > a) ? b : a;
}

struct halo_reduce_partial halo_reduce_partial_init(halo_dtype_kind_t kind)
{
	int uns = halo_reduce_unsigned(kind);
	return (struct halo_reduce_partial){0, INFINITY, -INFINITY, 0,
					    identity_i(HALO_RED_MIN, uns),
					    identity_i(HALO_RED_MAX, uns)};
}

void halo_reduce_combine(struct halo_reduce_partial *a, const struct halo_reduce_partial *b,
			 halo_dtype_kind_t kind)
{
	int uns = halo_reduce_unsigned(kind);
	a->sum += b->sum;
	a->min = nmin(a->min, b->min);
	a->max = nmax(a->max, b->max);
	a->isum = add_i(a->isum, b->isum);
	a->imin = min_i(a->imin, b->imin, uns);
	a->imax = max_i(a->imax, b->imax, uns);
}

/* n integers of kind as int64 (uint64's bits as they are). */
static void load_ints(const void *p, halo_dtype_kind_t kind, int64_t *v, size_t n)
{
	if (kind == HALO_U8)
		memcpy(v, p, n * sizeof *v);
	else
		halo_dtype_convert(p, kind, v, HALO_I8, n);
}

enum { PIECE = 1024 };

/* An integer of kind (its int64 bits) as a double, as halo_dtype_load1
 * reads it. */
static double as_double(int64_t v, int uns)
{
	return uns ? (double)(uint64_t)v : (double)v;
}

/* Integers in one pass: exact in int64 and, for means, summed in double
 * too; the double minimum and maximum follow from the exact ones. */
static void partial_row(struct halo_reduce_partial *r, const void *p, halo_dtype_kind_t kind,
			size_t n)
{
	double s = 0;
	if (!halo_dtype_kind_is_int(kind)) {
		for (size_t x = 0; x < n; x++) {
			double v = halo_dtype_load1(p, x, kind);
			s += v;
			r->min = nmin(r->min, v);
			r->max = nmax(r->max, v);
		}
		r->sum += s;
		return;
	}
	int uns = halo_reduce_unsigned(kind);
	int64_t v[PIECE];
	size_t es = halo_dtype_kind_size(kind);
	for (size_t x0 = 0; x0 < n; x0 += PIECE) {
		size_t m = n - x0 < PIECE ? n - x0 : PIECE;
		load_ints((const unsigned char *)p + x0 * es, kind, v, m);
		for (size_t x = 0; x < m; x++) {
			s += as_double(v[x], uns);
			r->isum = add_i(r->isum, v[x]);
			r->imin = min_i(r->imin, v[x], uns);
			r->imax = max_i(r->imax, v[x], uns);
		}
	}
	r->sum += s;
	if (n) {
		r->min = nmin(r->min, as_double(r->imin, uns));
		r->max = nmax(r->max, as_double(r->imax, uns));
	}
}

static void partial_cpu(void *buffers[], void *cl_arg)
{
	const struct halo_reduce_args *a = cl_arg;
	const struct halo_ew_prog *prog = a->prog;
	size_t ldy = STARPU_BLOCK_GET_LDY(buffers[0]), ldz = STARPU_BLOCK_GET_LDZ(buffers[0]);
	struct halo_reduce_partial r = halo_reduce_partial_init(a->kind);
	double *row = prog ? malloc((size_t)a->valid[2] * sizeof *row) : NULL;
	if (prog && !row) {
		/* No partial a result could take for the chunk's. */
		if (a->failed)
			__atomic_store_n(a->failed, 1, __ATOMIC_RELAXED);
		return;
	}
	for (int64_t z = 0; z < a->valid[0]; z++)
		for (int64_t y = 0; y < a->valid[1]; y++) {
			size_t off = (size_t)z * ldz + (size_t)y * ldy;
			if (!prog) {
				const char *p = (const char *)STARPU_BLOCK_GET_PTR(buffers[0]);
				partial_row(&r, p + off * halo_dtype_kind_size(a->kind), a->kind, (size_t)a->valid[2]);
				continue;
			}
			const void *in[HALO_EW_MAXIN];
			for (int k = 0; k < prog->nin; k++)
				in[k] = (const char *)STARPU_BLOCK_GET_PTR(buffers[k]) +
					off * halo_dtype_kind_size(prog->in_kind[k]);
			halo_ew_run(prog, in, row, (size_t)a->valid[2]);
			partial_row(&r, row, a->kind, (size_t)a->valid[2]);
		}
	free(row);
	*a->out = r;
}

static double identity(halo_reduce_fn_t fn)
{
	return fn == HALO_RED_MIN ? INFINITY : fn == HALO_RED_MAX ? -INFINITY : 0;
}

/* The same in integers. */
static void combine_row_i(int64_t *acc, const int64_t *v, size_t n, halo_reduce_fn_t fn, int uns)
{
	for (size_t j = 0; j < n; j++)
		acc[j] = fn == HALO_RED_MIN ? min_i(acc[j], v[j], uns)
		       : fn == HALO_RED_MAX ? max_i(acc[j], v[j], uns)
					    : add_i(acc[j], v[j]);
}

/* acc[j] = fn(acc[j], v[j]) for a row. */
static void combine_row(double *acc, const double *v, size_t n, halo_reduce_fn_t fn)
{
	if (fn == HALO_RED_MIN) {
#pragma omp simd
		for (size_t j = 0; j < n; j++)
			acc[j] = nmin(acc[j], v[j]);
	} else if (fn == HALO_RED_MAX) {
#pragma omp simd
		for (size_t j = 0; j < n; j++)
			acc[j] = nmax(acc[j], v[j]);
	} else {
#pragma omp simd
		for (size_t j = 0; j < n; j++)
			acc[j] += v[j];
	}
}

/* Row by row in memory order: along z or y, each input row combines into
 * a row of the accumulator, so every element still takes its values in
 * axis order (the same results), but the rows stream through the cache,
 * where walking each element's column strode a plane at a time (a 128^3
 * float32 chunk along z, in a pipeline on 2 cores: 6.3 ms before, 4.1 ms
 * so). Along x, rows reduce to one value each. Rows are converted to
 * float64, or int64 (halo_reduce_ints), in pieces of PIECE. */
static void axis_cpu(void *buffers[], void *cl_arg)
{
	const struct halo_reduce_args *a = cl_arg;
	const unsigned char *p = (const unsigned char *)STARPU_BLOCK_GET_PTR(buffers[0]);
	size_t ldy = STARPU_BLOCK_GET_LDY(buffers[0]), ldz = STARPU_BLOCK_GET_LDZ(buffers[0]);
	size_t es = halo_dtype_size((halo_dtype_t){a->kind, 0});
	double *acc = (double *)STARPU_BLOCK_GET_PTR(buffers[1]);
	int64_t *acci = (int64_t *)STARPU_BLOCK_GET_PTR(buffers[1]);
	size_t aldy = STARPU_BLOCK_GET_LDY(buffers[1]);
	int ints = halo_reduce_ints(a->fn, a->kind), uns = halo_reduce_unsigned(a->kind);
	/* acc[i][j]: i, j are the remaining axes in order (u < w). */
	int u = a->axis == 0 ? 1 : 0, w = a->axis == 2 ? 1 : 2;
	if (a->first)
		for (int64_t i = 0; i < a->valid[u]; i++)
			for (int64_t j = 0; j < a->valid[w]; j++) {
				size_t at = (size_t)i * aldy + (size_t)j;
				if (ints)
					acci[at] = identity_i(a->fn, uns);
				else
					acc[at] = identity(a->fn);
			}
	double v[PIECE];
	int64_t vi[PIECE];
	for (int64_t z = 0; z < a->valid[0]; z++)
		for (int64_t y = 0; y < a->valid[1]; y++) {
			const unsigned char *row = p + ((size_t)z * ldz + (size_t)y * ldy) * es;
			size_t at = (size_t)(a->axis == 0 ? y : z) * aldy + (a->axis == 2 ? (size_t)y : 0);
			for (int64_t x0 = 0; x0 < a->valid[2]; x0 += PIECE) {
				size_t m = (size_t)(a->valid[2] - x0 < PIECE ? a->valid[2] - x0 : PIECE);
				if (ints)
					load_ints(row + (size_t)x0 * es, a->kind, vi, m);
				else
					halo_dtype_convert(row + (size_t)x0 * es, a->kind, v, HALO_F8, m);
				/* along x, each value into the row's one element */
				size_t each = a->axis == 2 ? 1 : m;
				for (size_t x = 0; x < m; x += each) {
					size_t to = at + (a->axis == 2 ? 0 : (size_t)x0);
					if (ints)
						combine_row_i(acci + to, vi + x, each, a->fn, uns);
					else
						combine_row(acc + to, v + x, each, a->fn);
				}
			}
		}
}

static void finish_cpu(void *buffers[], void *cl_arg)
{
	const struct halo_reduce_args *a = cl_arg;
	double *acc = (double *)STARPU_BLOCK_GET_PTR(buffers[0]);
	void *out = (void *)STARPU_BLOCK_GET_PTR(buffers[1]);
	size_t n = (size_t)STARPU_BLOCK_GET_NX(buffers[0]) * STARPU_BLOCK_GET_NY(buffers[0]) *
		   STARPU_BLOCK_GET_NZ(buffers[0]);
	if (halo_reduce_ints(a->fn, a->kind)) { /* exact: in the kind's range */
		halo_dtype_convert(acc, halo_reduce_unsigned(a->kind) ? HALO_U8 : HALO_I8, out,
				   a->kind, n);
		return;
	}
	if (a->fn == HALO_RED_MEAN)
		for (size_t i = 0; i < n; i++)
			acc[i] /= a->count;
	/* Exact for min and max: a plain cast, not rounding. */
	switch (a->kind) {
	case HALO_F4:
		for (size_t i = 0; i < n; i++)
			((float *)out)[i] = (float)acc[i];
		break;
	case HALO_F8:
		memcpy(out, acc, n * sizeof(double));
		break;
	default:
		halo_dtype_convert(acc, HALO_F8, out, a->kind, n);
	}
}

static struct starpu_perfmodel partial_model = {.type = STARPU_HISTORY_BASED, .symbol = "halo_reduce"};
static struct starpu_perfmodel axis_model = {.type = STARPU_HISTORY_BASED, .symbol = "halo_reduce_axis"};

struct starpu_codelet halo_reduce_partial_cl = {
	.cpu_funcs = {partial_cpu}, .nbuffers = STARPU_VARIABLE_NBUFFERS,
	.model = &partial_model, .name = "reduce",
};

struct starpu_codelet halo_reduce_axis_cl = {
	.cpu_funcs = {axis_cpu}, .nbuffers = STARPU_VARIABLE_NBUFFERS,
	.model = &axis_model, .name = "reduce_axis",
};

static struct starpu_perfmodel finish_model = {.type = STARPU_HISTORY_BASED,
					       .symbol = "halo_reduce_finish"};

struct starpu_codelet halo_reduce_finish_cl = {
	.cpu_funcs = {finish_cpu}, .nbuffers = 2, .modes = {STARPU_RW, STARPU_W},
	.model = &finish_model, .name = "reduce_finish",
};
