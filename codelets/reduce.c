/* Reduction codelets (see reduce.h). */
#include "config.h"
#include "codelets/reduce.h"

#include <math.h>
#include <string.h>

static inline double at(const void *p, halo_dtype_kind_t k, size_t i)
{
	switch (k) {
	case HALO_U1: return ((const uint8_t *)p)[i];
	case HALO_U2: return ((const uint16_t *)p)[i];
	case HALO_U4: return ((const uint32_t *)p)[i];
	case HALO_I1: return ((const int8_t *)p)[i];
	case HALO_I2: return ((const int16_t *)p)[i];
	case HALO_I4: return ((const int32_t *)p)[i];
	case HALO_F4: return ((const float *)p)[i];
	default: return ((const double *)p)[i];
	}
}

/* NaN wins, as in numpy's minimum and maximum. */
static inline double nmax(double a, double b)
{
	return (a > b || isnan(a)) ? a : b;
}

static inline double nmin(double a, double b)
{
	return (a < b || isnan(a)) ? a : b;
}

void halo_reduce_combine(struct halo_reduce_partial *a, const struct halo_reduce_partial *b)
{
	a->sum += b->sum;
	a->min = nmin(a->min, b->min);
	a->max = nmax(a->max, b->max);
}

static void partial_cpu(void *buffers[], void *cl_arg)
{
	const struct halo_reduce_args *a = cl_arg;
	const void *p = (const void *)STARPU_BLOCK_GET_PTR(buffers[0]);
	size_t ldy = STARPU_BLOCK_GET_LDY(buffers[0]), ldz = STARPU_BLOCK_GET_LDZ(buffers[0]);
	struct halo_reduce_partial r = {0, INFINITY, -INFINITY};
	for (int64_t z = 0; z < a->valid[0]; z++)
		for (int64_t y = 0; y < a->valid[1]; y++) {
			size_t row = (size_t)z * ldz + (size_t)y * ldy;
			double s = 0;
			for (int64_t x = 0; x < a->valid[2]; x++) {
				double v = at(p, a->kind, row + (size_t)x);
				s += v;
				r.min = nmin(r.min, v);
				r.max = nmax(r.max, v);
			}
			r.sum += s;
		}
	*a->out = r;
}

static void axis_cpu(void *buffers[], void *cl_arg)
{
	const struct halo_reduce_args *a = cl_arg;
	const void *p = (const void *)STARPU_BLOCK_GET_PTR(buffers[0]);
	size_t ldy = STARPU_BLOCK_GET_LDY(buffers[0]), ldz = STARPU_BLOCK_GET_LDZ(buffers[0]);
	double *acc = (double *)STARPU_BLOCK_GET_PTR(buffers[1]);
	size_t aldy = STARPU_BLOCK_GET_LDY(buffers[1]);
	/* acc[i][j]: i, j are the remaining axes in order (u < w). */
	int u = a->axis == 0 ? 1 : 0, w = a->axis == 2 ? 1 : 2;
	for (int64_t i = 0; i < a->valid[u]; i++)
		for (int64_t j = 0; j < a->valid[w]; j++) {
			double r = a->fn == HALO_RED_MIN ? INFINITY : a->fn == HALO_RED_MAX ? -INFINITY : 0;
			if (!a->first)
				r = acc[(size_t)i * aldy + (size_t)j];
			for (int64_t k = 0; k < a->valid[a->axis]; k++) {
				int64_t c[3];
				c[a->axis] = k;
				c[u] = i;
				c[w] = j;
				double v = at(p, a->kind, (size_t)c[0] * ldz + (size_t)c[1] * ldy + (size_t)c[2]);
				r = a->fn == HALO_RED_MIN ? nmin(r, v) : a->fn == HALO_RED_MAX ? nmax(r, v) : r + v;
			}
			acc[(size_t)i * aldy + (size_t)j] = r;
		}
}

static void finish_cpu(void *buffers[], void *cl_arg)
{
	const struct halo_reduce_args *a = cl_arg;
	double *acc = (double *)STARPU_BLOCK_GET_PTR(buffers[0]);
	void *out = (void *)STARPU_BLOCK_GET_PTR(buffers[1]);
	size_t n = (size_t)STARPU_BLOCK_GET_NX(buffers[0]) * STARPU_BLOCK_GET_NY(buffers[0]) *
		   STARPU_BLOCK_GET_NZ(buffers[0]);
	if (a->fn == HALO_RED_MEAN)
		for (size_t i = 0; i < n; i++)
			acc[i] /= a->count;
	/* Exact for min, max and integer sums: a plain cast, not rounding. */
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
	.cpu_funcs = {partial_cpu}, .nbuffers = 1, .modes = {STARPU_R},
	.model = &partial_model, .name = "reduce",
};

struct starpu_codelet halo_reduce_axis_cl = {
	.cpu_funcs = {axis_cpu}, .nbuffers = STARPU_VARIABLE_NBUFFERS,
	.model = &axis_model, .name = "reduce_axis",
};

struct starpu_codelet halo_reduce_finish_cl = {
	.cpu_funcs = {finish_cpu}, .nbuffers = 2, .modes = {STARPU_RW, STARPU_W},
	.name = "reduce_finish",
};
