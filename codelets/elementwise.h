/* The fused elementwise codelet: a chain (or small tree) of map_blocks
 * kernels and astype steps over chunks of one grid, run as one task per
 * chunk in one memory pass, the way dask's blockwise fusion turns a chain
 * of elementwise steps into one task. The chain is a tiny register
 * program; each step computes in the element type numpy would use, so the
 * result equals numpy's step by step (float32 stays float32, integer add
 * wraps around). */
#ifndef HALO_CODELET_ELEMENTWISE_H
#define HALO_CODELET_ELEMENTWISE_H

#include <stddef.h>
#include <starpu.h>

#include "util/dtype.h"

enum { HALO_EW_MAXIN = 8, HALO_EW_MAXOPS = 48 };

typedef enum halo_ewop {
	HALO_EWOP_LOAD,   /* input a */
	HALO_EWOP_CAST,   /* register a to kind (numpy astype: float to int truncates) */
	HALO_EWOP_SCALE,  /* a * p0 + p1, two roundings as numpy */
	HALO_EWOP_CLIP,   /* numpy.clip(a, p0, p1) */
	HALO_EWOP_ABS, HALO_EWOP_SQRT, HALO_EWOP_LOG1P,
	HALO_EWOP_ADD, HALO_EWOP_SUB, HALO_EWOP_MUL, HALO_EWOP_DIV,
	HALO_EWOP_MAX, HALO_EWOP_MIN,
} halo_ewop_t;

/* Operands of one instruction are registers (earlier instructions' index)
 * of the instruction's own kind, except LOAD (an input) and CAST. */
struct halo_ew_instr {
	halo_ewop_t op;
	halo_dtype_kind_t kind; /* the result's element type */
	int a, b;
	double p[2];
};

/* The program's result is its last instruction. */
struct halo_ew_prog {
	int nin, nops;
	halo_dtype_kind_t in_kind[HALO_EW_MAXIN];
	struct halo_ew_instr ops[HALO_EW_MAXOPS];
};

/* Buffers: prog.nin inputs (STARPU_R) then the output (STARPU_W), block
 * interfaces of one shape; cl_arg is a struct halo_ew_prog. */
extern struct starpu_codelet halo_elementwise_cl;

/* The arithmetic, independent of StarPU: n elements of each input. */
void halo_ew_run(const struct halo_ew_prog *p, const void *const *in, void *out, size_t n);

#endif
