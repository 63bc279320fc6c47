/* The per-voxel rule of gather (gather.h), written once for the CUDA kernel
 * and the CPU tests that check it against the CPU implementation.
 *
 * Along each axis a table says, for every destination index, which source
 * chunk position (among the distinct source origins on that axis, in
 * listing order) holds it and at which offset, or -1 when no source does
 * (the boundary's constant, or padding). The tables are built on the host
 * by halo__gather_plan, so the boundary rule runs once per index instead
 * of once per voxel. */
#ifndef HALO_CODELET_GATHER_MATH_H
#define HALO_CODELET_GATHER_MATH_H

#include <stdint.h>

#include "util/dtype_scalar.h"
#include "util/hd.h"

struct halo_gather_plan {
	int64_t n[3];         /* destination block */
	int64_t limit[3];     /* voxels at or beyond get `fill` (padding) */
	const int64_t *pos[3], *off[3];
	int norig[3];
	const int64_t *dims;  /* 3 per source: its block dimensions */
	int src_kind, dst_kind;
	double fill;          /* padding beyond the destination volume */
	double outside;       /* where no source holds the voxel */
};

HALO_HD static inline void halo_gather_voxel(const struct halo_gather_plan *p,
					     const void *const *src, int64_t z, int64_t y, int64_t x,
					     void *dst)
{
	size_t i = (size_t)((z * p->n[1] + y) * p->n[2] + x);
	if (z >= p->limit[0] || y >= p->limit[1] || x >= p->limit[2]) {
		halo_dtype_store1(dst, i, p->dst_kind, p->fill);
		return;
	}
	int64_t a = p->pos[0][z], b = p->pos[1][y], c = p->pos[2][x];
	if (a < 0 || b < 0 || c < 0) {
		halo_dtype_store1(dst, i, p->dst_kind, p->outside);
		return;
	}
	int k = (int)((a * p->norig[1] + b) * p->norig[2] + c);
	const int64_t *d = p->dims + 3 * k;
	size_t si = (size_t)((p->off[0][z] * d[1] + p->off[1][y]) * d[2] + p->off[2][x]);
	halo_dtype_copy1(dst, i, p->dst_kind, src[k], si, p->src_kind);
}

#endif
