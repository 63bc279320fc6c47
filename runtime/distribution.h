/* Who owns which chunk when halo runs on several MPI ranks. The array's
 * voxels are cut into a grid of p[0] x p[1] x p[2] = nranks contiguous
 * blocks, and a chunk belongs to the rank whose block holds its centre, so
 * chunks of different steps at the same place (a chunk, its rechunked or
 * filtered versions) share an owner and only halos cross ranks. The grid
 * is the factorisation of nranks whose cuts are smallest in area, among
 * those that give every rank some chunks. When none does (3 ranks over a
 * 2x2x2 chunk grid), the chunks are dealt out in C order instead: rank
 * r gets the r-th of nranks nearly equal runs of the flattened grid. */
#ifndef HALO_RUNTIME_DISTRIBUTION_H
#define HALO_RUNTIME_DISTRIBUTION_H

#include <stdint.h>

typedef struct halo_distribution {
	int nranks;
	int p[3];          /* ranks along z, y, x (block mode) */
	int linear;        /* runs of the flattened chunk grid instead */
	int64_t shape[3];  /* the array's voxels */
	int64_t nchunks[3], chunk[3]; /* the grid the linear mode deals out */
} halo_distribution_t;

/* nchunks: the chunk grid of the array (how finely it can be cut). */
void halo_distribution_make(const int64_t shape[3], const int64_t nchunks[3], int nranks,
			    halo_distribution_t *d);

/* The rank owning the block [origin, origin + dims) of the array. */
int halo_distribution_owner(const halo_distribution_t *d, const int64_t origin[3],
			    const int64_t dims[3]);

#endif
