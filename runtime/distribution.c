/* Block distribution of chunks over MPI ranks (see distribution.h). */
#include "config.h"
#include "runtime/distribution.h"

void halo_distribution_make(const int64_t shape[3], const int64_t nchunks[3], int nranks,
			    halo_distribution_t *d)
{
	*d = (halo_distribution_t){.nranks = nranks > 0 ? nranks : 1, .p = {1, 1, 1}};
	for (int a = 0; a < 3; a++) {
		d->shape[a] = shape[a] > 0 ? shape[a] : 1;
		d->nchunks[a] = nchunks[a] > 0 ? nchunks[a] : 1;
		d->chunk[a] = (d->shape[a] + d->nchunks[a] - 1) / d->nchunks[a];
	}
	double best = -1;
	int best_fits = -1;
	for (int p0 = d->nranks; p0 >= 1; p0--) {
		if (d->nranks % p0)
			continue;
		for (int p1 = d->nranks / p0; p1 >= 1; p1--) {
			if ((d->nranks / p0) % p1)
				continue;
			int p[3] = {p0, p1, d->nranks / p0 / p1};
			/* A cut across axis a has the area of the other two. */
			double area = 0;
			int fits = 1;
			for (int a = 0; a < 3; a++) {
				area += (double)(p[a] - 1) * (double)d->shape[(a + 1) % 3] *
					(double)d->shape[(a + 2) % 3];
				fits &= p[a] <= nchunks[a];
			}
			/* Grids that leave no rank without chunks first; then the
			 * smallest cuts; ties go to cutting the slowest axis (z),
			 * which keeps each rank's part of the file contiguous. */
			if (fits > best_fits || (fits == best_fits && area < best)) {
				best_fits = fits;
				best = area;
				d->p[0] = p[0];
				d->p[1] = p[1];
				d->p[2] = p[2];
			}
		}
	}
	d->linear = !best_fits;
}

int halo_distribution_owner(const halo_distribution_t *d, const int64_t origin[3],
			    const int64_t dims[3])
{
	int c[3];
	if (d->linear) {
		int64_t flat = 0;
		for (int a = 0; a < 3; a++) {
			int64_t k = (origin[a] + dims[a] / 2) / d->chunk[a];
			flat = flat * d->nchunks[a] + (k < d->nchunks[a] ? k : d->nchunks[a] - 1);
		}
		int64_t total = d->nchunks[0] * d->nchunks[1] * d->nchunks[2];
		return (int)(flat * d->nranks / total);
	}
	for (int a = 0; a < 3; a++) {
		/* Twice the centre, to stay in integers. */
		int64_t centre2 = 2 * origin[a] + dims[a];
		int64_t k = centre2 * d->p[a] / (2 * d->shape[a]);
		c[a] = k < 0 ? 0 : k >= d->p[a] ? d->p[a] - 1 : (int)k;
	}
	return (c[0] * d->p[1] + c[1]) * d->p[2] + c[2];
}
