/* Who owns which chunk when halo runs on several MPI ranks. The chunk
 * grid of a reference array is cut into p[0] x p[1] x p[2] = nranks
 * contiguous blocks of chunks, as even in count along each axis as can be
 * (block j of p along an axis of n chunks starts at chunk j*n/p), and any
 * block of voxels (a chunk of any step) belongs to the rank whose block
 * holds the reference chunk at its centre, so chunks of different steps
 * at the same place (a chunk, its rechunked or filtered versions) share
 * an owner and only halos cross ranks. The grid is the factorisation of
 * nranks whose busiest rank has the fewest chunks, then whose cuts are
 * smallest in area, among those that give every rank some chunks. When
 * none does (3 ranks over a 2x2x2 chunk grid), or where that busiest rank
 * would have a quarter more chunks than an even share, the chunks are
 * dealt out in C order instead: rank r gets the r-th of nranks nearly
 * equal runs of the flattened grid. */
#ifndef HALO_RUNTIME_DISTRIBUTION_H
#define HALO_RUNTIME_DISTRIBUTION_H

#include "runtime/grid.h"

#include <stdint.h>

typedef struct halo_distribution {
	int nranks;
	int p[3];                    /* ranks along z, y, x (block mode) */
	int linear;                  /* runs of the flattened chunk grid instead */
	const struct halo_axis *ref; /* the reference array's chunk grid, 3 axes */
} halo_distribution_t;

/* ref: the chunk grid of the reference array (how finely it can be cut),
 * which must outlive d. */
void halo_distribution_make(const struct halo_axis ref[3], int nranks, halo_distribution_t *d);

/* The rank owning the block [origin, origin + dims) of the array. */
int halo_distribution_owner(const halo_distribution_t *d, const int64_t origin[3],
			    const int64_t dims[3]);

#endif
