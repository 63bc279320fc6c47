/* The fused elementwise codelet (see elementwise.h). Registers hold a strip
 * of elements in one of three representations, float, double or int64
 * (every integer type, wrapped to its width after each step), so that a
 * chain of steps streams through L1-sized strips: one memory pass over the
 * chunk whatever the chain's length. */
#include "config.h"
#include "codelets/elementwise.h"
#include "util/dtype_scalar.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { STRIP = 256 };

typedef enum { R_F32, R_F64, R_I64 } rep_t;

static rep_t rep(halo_dtype_kind_t k)
{
	return k == HALO_F4 || k == HALO_F2 ? R_F32 : k == HALO_F8 ? R_F64 : R_I64;
}

/* numpy's integer arithmetic wraps modulo the type's width. A uint64 is
 * held by its bits, so it compares and converts as unsigned (step_i,
 * cast). */
static int64_t wrap(halo_dtype_kind_t k, uint64_t v)
{
	switch (k) {
	case HALO_U1: return (uint8_t)v;
	case HALO_U2: return (uint16_t)v;
	case HALO_U4: return (uint32_t)v;
	case HALO_I1: return (int8_t)v;
	case HALO_I2: return (int16_t)v;
	case HALO_I4: return (int32_t)v;
	case HALO_B1: return v != 0;
	default: return (int64_t)v;
	}
}

union reg {
	float f[STRIP];
	double d[STRIP];
	int64_t i[STRIP];
};

static void load(union reg *r, halo_dtype_kind_t k, const void *src, size_t n)
{
#define LOAD(T, field)                                   \
	for (size_t e = 0; e < n; e++)                   \
		r->field[e] = ((const T *)src)[e];
	switch (k) {
	case HALO_U1: LOAD(uint8_t, i); break;
	case HALO_U2: LOAD(uint16_t, i); break;
	case HALO_U4: LOAD(uint32_t, i); break;
	case HALO_U8: LOAD(uint64_t, i); break;
	case HALO_I1: LOAD(int8_t, i); break;
	case HALO_I2: LOAD(int16_t, i); break;
	case HALO_I4: LOAD(int32_t, i); break;
	case HALO_I8: LOAD(int64_t, i); break;
	case HALO_F4: LOAD(float, f); break;
	case HALO_F2:
		for (size_t e = 0; e < n; e++)
			r->f[e] = (float)halo_half_get(src, e);
		break;
	case HALO_B1:
		for (size_t e = 0; e < n; e++)
			r->i[e] = ((const uint8_t *)src)[e] != 0;
		break;
	case HALO_F8: LOAD(double, d); break;
	default: break;
	}
#undef LOAD
}

static void store(const union reg *r, halo_dtype_kind_t k, void *dst, size_t n)
{
#define STORE(T, field)                                  \
	for (size_t e = 0; e < n; e++)                   \
		((T *)dst)[e] = (T)r->field[e];
	switch (k) {
	case HALO_U1: STORE(uint8_t, i); break;
	case HALO_U2: STORE(uint16_t, i); break;
	case HALO_U4: STORE(uint32_t, i); break;
	case HALO_U8: STORE(uint64_t, i); break;
	case HALO_I1: STORE(int8_t, i); break;
	case HALO_I2: STORE(int16_t, i); break;
	case HALO_I4: STORE(int32_t, i); break;
	case HALO_I8: STORE(int64_t, i); break;
	case HALO_F4: STORE(float, f); break;
	case HALO_F2: /* exact: a cast to float16 rounded it (cast) */
		for (size_t e = 0; e < n; e++)
			halo_half_set(dst, e, r->f[e]);
		break;
	case HALO_B1:
		for (size_t e = 0; e < n; e++)
			((uint8_t *)dst)[e] = r->i[e] != 0;
		break;
	case HALO_F8: STORE(double, d); break;
	default: break;
	}
#undef STORE
}

static void cast(const union reg *a, halo_dtype_kind_t from, union reg *r, halo_dtype_kind_t to,
		 size_t n)
{
	rep_t rf = rep(from), rt = rep(to);
	int u8 = from == HALO_U8;
	for (size_t e = 0; e < n; e++) {
		if (to == HALO_F2) { /* rounded once, from the value itself */
			double v = rf == R_F32 ? a->f[e] : rf == R_F64 ? a->d[e]
				 : u8 ? (double)(uint64_t)a->i[e] : (double)a->i[e];
			r->f[e] = (float)halo_dtype_cast(v, HALO_F2);
			continue;
		}
		if (rf == R_I64) {
			int64_t x = a->i[e];
			if (rt == R_F32)
				r->f[e] = u8 ? (float)(uint64_t)x : (float)x;
			else if (rt == R_F64)
				r->d[e] = u8 ? (double)(uint64_t)x : (double)x;
			else
				r->i[e] = wrap(to, (uint64_t)x);
			continue;
		}
		double v = rf == R_F32 ? a->f[e] : a->d[e];
		if (rt == R_F32)
			r->f[e] = (float)v;
		else if (rt == R_F64)
			r->d[e] = v;
		else if (from == HALO_F2 && to == HALO_U4) /* numpy's through double */
			r->i[e] = (int64_t)halo_dtype_cast_unsafe(v, HALO_U4);
		else
			r->i[e] = halo_dtype_ftoi(to, v);
	}
}

/* One arithmetic step in representation T (float or double). */
#define FLOAT_STEP(T, field, SQRT, LOG1P, FABS)                                           \
	static void step_##field(const struct halo_ew_instr *in, const union reg *a,      \
				 const union reg *b, union reg *r, size_t n)              \
	{                                                                                 \
		T p0 = (T)in->p[0], p1 = (T)in->p[1];                                     \
		for (size_t e = 0; e < n; e++) {                                          \
			T x = a->field[e], y = b ? b->field[e] : 0, v = 0;                \
			switch (in->op) {                                                 \
			case HALO_EWOP_SCALE: v = x * p0; v = v + p1; break;              \
			case HALO_EWOP_CLIP: /* numpy's: a bound where equal (-0.0) */   \
				v = x > p0 || isnan(x) ? x : p0;                          \
				v = v < p1 || isnan(v) ? v : p1;                          \
				break;                                                    \
			case HALO_EWOP_ABS: v = FABS(x); break;                           \
			case HALO_EWOP_SQRT: v = SQRT(x); break;                          \
			case HALO_EWOP_LOG1P: v = LOG1P(x); break;                        \
			case HALO_EWOP_ADD: v = x + y; break;                             \
			case HALO_EWOP_SUB: v = x - y; break;                             \
			case HALO_EWOP_MUL: v = x * y; break;                             \
			case HALO_EWOP_DIV: v = x / y; break;                             \
			case HALO_EWOP_MAX: v = (x > y || isnan(x)) ? x : y; break;       \
			case HALO_EWOP_MIN: v = (x < y || isnan(x)) ? x : y; break;       \
			default: break;                                                   \
			}                                                                 \
			r->field[e] = v;                                                  \
		}                                                                         \
	}
FLOAT_STEP(float, f, sqrtf, log1pf, fabsf)
FLOAT_STEP(double, d, sqrt, log1p, fabs)
#undef FLOAT_STEP

/* A clip bound of int64: INT64_MAX reads as 2^63 in a double. */
static int64_t in_int64(double v)
{
	return v >= 9223372036854775808.0 ? INT64_MAX : (int64_t)v;
}

static void step_i(const struct halo_ew_instr *in, const union reg *a, const union reg *b,
		   union reg *r, size_t n)
{
	/* A uint64 compares unsigned; its bounds, values of uint64 (see
	 * halo_ew_result), may reach 2^63. */
	int u8 = in->kind == HALO_U8;
	int64_t lo = u8 ? (int64_t)(uint64_t)in->p[0] : in_int64(in->p[0]);
	int64_t hi = u8 ? (int64_t)(uint64_t)in->p[1] : in_int64(in->p[1]);
	for (size_t e = 0; e < n; e++) {
		int64_t x = a->i[e], y = b ? b->i[e] : 0;
		int less = u8 ? (uint64_t)x < (uint64_t)y : x < y;
		uint64_t v = 0;
		switch (in->op) {
		case HALO_EWOP_CLIP:
			if (u8) {
				uint64_t t = (uint64_t)x < (uint64_t)lo ? (uint64_t)lo : (uint64_t)x;
				v = t > (uint64_t)hi ? (uint64_t)hi : t;
			} else {
				int64_t t = x < lo ? lo : x;
				v = (uint64_t)(t > hi ? hi : t);
			}
			break;
		case HALO_EWOP_ABS: v = x < 0 && !u8 ? -(uint64_t)x : (uint64_t)x; break;
		case HALO_EWOP_ADD: v = (uint64_t)x + (uint64_t)y; break;
		case HALO_EWOP_SUB: v = (uint64_t)x - (uint64_t)y; break;
		case HALO_EWOP_MUL: v = (uint64_t)x * (uint64_t)y; break;
		case HALO_EWOP_MAX: v = (uint64_t)(less ? y : x); break;
		case HALO_EWOP_MIN: v = (uint64_t)(less ? x : y); break;
		default: break;
		}
		r->i[e] = wrap(in->kind, v);
	}
}

void halo_ew_run(const struct halo_ew_prog *p, const void *const *in, void *out, size_t n)
{
	union reg regs[HALO_EW_MAXOPS];
	halo_dtype_kind_t out_kind = p->ops[p->nops - 1].kind;
	for (size_t off = 0; off < n; off += STRIP) {
		size_t m = n - off < STRIP ? n - off : STRIP;
		for (int k = 0; k < p->nops; k++) {
			const struct halo_ew_instr *ins = &p->ops[k];
			union reg *r = &regs[k];
			const union reg *a = ins->op == HALO_EWOP_LOAD ? NULL : &regs[ins->a];
			const union reg *b = ins->op >= HALO_EWOP_ADD ? &regs[ins->b] : NULL;
			switch (ins->op) {
			case HALO_EWOP_LOAD:
				load(r, ins->kind, (const char *)in[ins->a] + off * halo_dtype_kind_size(ins->kind), m);
				break;
			case HALO_EWOP_CAST:
				cast(a, p->ops[ins->a].kind, r, ins->kind, m);
				break;
			default:
				switch (rep(ins->kind)) {
				case R_F32: step_f(ins, a, b, r, m); break;
				case R_F64: step_d(ins, a, b, r, m); break;
				case R_I64: step_i(ins, a, b, r, m); break;
				}
			}
		}
		store(&regs[p->nops - 1], out_kind, (char *)out + off * halo_dtype_kind_size(out_kind), m);
	}
}

static void elementwise_cpu(void *buffers[], void *cl_arg)
{
	const struct halo_ew_prog *p = cl_arg;
	const void *in[HALO_EW_MAXIN];
	for (int i = 0; i < p->nin; i++)
		in[i] = (const void *)STARPU_BLOCK_GET_PTR(buffers[i]);
	void *out = (void *)STARPU_BLOCK_GET_PTR(buffers[p->nin]);
	size_t n = (size_t)STARPU_BLOCK_GET_NX(buffers[p->nin]) * STARPU_BLOCK_GET_NY(buffers[p->nin]) *
		   STARPU_BLOCK_GET_NZ(buffers[p->nin]);
	halo_ew_run(p, in, out, n);
}

static struct starpu_perfmodel elementwise_model = {
	.type = STARPU_HISTORY_BASED, .symbol = "halo_elementwise",
};

struct starpu_codelet halo_elementwise_cl = {
	.cpu_funcs = {elementwise_cpu},
	.cpu_funcs_name = {"elementwise_cpu"},
	.nbuffers = STARPU_VARIABLE_NBUFFERS,
	.model = &elementwise_model,
	.name = "elementwise",
};
