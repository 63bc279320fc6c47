/* Block distribution of chunks over MPI ranks (see distribution.h). */
#include "config.h"
#include "runtime/distribution.h"

#include <math.h>

void halo_distribution_make(const struct halo_axis ref[3], int nranks, halo_distribution_t *d)
{
	*d = (halo_distribution_t){.nranks = nranks > 0 ? nranks : 1, .p = {1, 1, 1}, .ref = ref};
	double best_area = -1, best_load = -1;
	for (int p0 = d->nranks; p0 >= 1; p0--) {
		if (d->nranks % p0)
			continue;
		for (int p1 = d->nranks / p0; p1 >= 1; p1--) {
			if ((d->nranks / p0) % p1)
				continue;
			int p[3] = {p0, p1, d->nranks / p0 / p1};
			/* A cut across axis a has the area of the other two; the
			 * largest block has ceil(n/p) chunks along each axis. */
			double area = 0, load = 1;
			int fits = 1;
			for (int a = 0; a < 3; a++) {
				area += (double)(p[a] - 1) * (double)ref[(a + 1) % 3].n *
					(double)ref[(a + 2) % 3].n;
				load *= (double)((ref[a].nblocks + p[a] - 1) / p[a]);
				fits &= p[a] <= ref[a].nblocks;
			}
			/* The run takes as long as the busiest rank: the
			 * fewest chunks on it first, then the smallest cuts;
			 * ties go to cutting the slowest axis (z), which keeps
			 * each rank's part of the file contiguous. */
			if (fits && (best_load < 0 || load < best_load ||
				     (load == best_load && area < best_area))) {
				best_load = load;
				best_area = area;
				d->p[0] = p[0];
				d->p[1] = p[1];
				d->p[2] = p[2];
			}
		}
	}
	/* Runs of the flattened grid where no grid fits, or where they load
	 * the busiest rank a fifth less (27 chunks on 4 ranks: 7 against a
	 * grid's 12). */
	double total = (double)ref[0].nblocks * (double)ref[1].nblocks * (double)ref[2].nblocks;
	d->linear = best_load < 0 || 5 * ceil(total / d->nranks) < 4 * best_load;
	if (d->linear)
		d->p[0] = d->p[1] = d->p[2] = 1;
}

int halo_distribution_owner(const halo_distribution_t *d, const int64_t origin[3],
			    const int64_t dims[3])
{
	int64_t k[3];
	for (int a = 0; a < 3; a++)
		k[a] = halo_axis_find(&d->ref[a], origin[a] + dims[a] / 2);
	if (d->linear) {
		int64_t flat = (k[0] * d->ref[1].nblocks + k[1]) * d->ref[2].nblocks + k[2];
		int64_t total = d->ref[0].nblocks * d->ref[1].nblocks * d->ref[2].nblocks;
		return (int)(flat * d->nranks / total);
	}
	/* The block j whose chunks [j*n/p, (j+1)*n/p) hold chunk k. */
	int c[3];
	for (int a = 0; a < 3; a++)
		c[a] = (int)(((k[a] + 1) * d->p[a] - 1) / d->ref[a].nblocks);
	return (c[0] * d->p[1] + c[1]) * d->p[2] + c[2];
}
