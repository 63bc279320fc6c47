/* Axis partitions (see grid.h). */
#include "config.h"
#include "runtime/grid.h"
#include "codelets/gather.h"

#include <stdlib.h>
#include <string.h>

static int alloc_starts(struct halo_axis *a, int64_t nblocks)
{
	a->start = malloc((size_t)(nblocks + 1) * sizeof *a->start);
	a->nblocks = nblocks;
	return a->start ? 0 : -1;
}

int halo_axis_regular(struct halo_axis *a, int64_t n, int64_t chunk)
{
	a->n = n;
	if (alloc_starts(a, (n + chunk - 1) / chunk) < 0)
		return -1;
	for (int64_t i = 0; i < a->nblocks; i++)
		a->start[i] = i * chunk;
	a->start[a->nblocks] = n;
	return 0;
}

int halo_axis_min_blocks(struct halo_axis *a, const struct halo_axis *from, int64_t size)
{
	int64_t nb = from->nblocks, smallest = INT64_MAX;
	for (int64_t i = 0; i < nb; i++) {
		int64_t c = from->start[i + 1] - from->start[i];
		smallest = c < smallest ? c : smallest;
	}
	a->n = from->n;
	if (size <= smallest) {
		if (alloc_starts(a, nb) < 0)
			return -1;
		memcpy(a->start, from->start, (size_t)(nb + 1) * sizeof *a->start);
		return 0;
	}
	/* The same walk as dask 2022.12: a too-small block joins the blocks
	 * before it, and a long run is split so the remainder reaches size. */
	int64_t *sizes = malloc((size_t)(nb + 1) * sizeof *sizes), count = 0, acc = 0;
	if (!sizes)
		return -1;
	for (int64_t i = 0; i < nb; i++) {
		int64_t c = from->start[i + 1] - from->start[i];
		if (c < size) {
			if (acc > size + (size - c)) {
				sizes[count++] = acc - (size - c);
				acc = size;
			} else {
				acc += c;
			}
		}
		if (acc >= size) {
			sizes[count++] = acc;
			acc = 0;
		}
		if (c >= size)
			acc += c;
	}
	if (acc >= size)
		sizes[count++] = acc;
	else if (count > 0)
		sizes[count - 1] += acc;
	else {
		free(sizes);
		return -1;
	}
	if (alloc_starts(a, count) < 0) {
		free(sizes);
		return -1;
	}
	a->start[0] = 0;
	for (int64_t i = 0; i < count; i++)
		a->start[i + 1] = a->start[i] + sizes[i];
	free(sizes);
	return 0;
}

int64_t halo_axis_min_haloed(const struct halo_axis *a, int64_t depth, int boundary)
{
	int64_t best = INT64_MAX;
	for (int64_t k = 0; k < a->nblocks; k++) {
		int64_t lo = a->start[k] - depth, hi = a->start[k + 1] + depth;
		if (boundary == HALO_BOUNDARY_NONE) {
			lo = lo < 0 ? 0 : lo;
			hi = hi > a->n ? a->n : hi;
		}
		best = hi - lo < best ? hi - lo : best;
	}
	return best;
}

int halo_axis_equal(const struct halo_axis *a, const struct halo_axis *b)
{
	return a->n == b->n && a->nblocks == b->nblocks &&
	       memcmp(a->start, b->start, (size_t)(a->nblocks + 1) * sizeof *a->start) == 0;
}

int64_t halo_axis_find(const struct halo_axis *a, int64_t g)
{
	int64_t lo = 0, hi = a->nblocks - 1;
	while (lo < hi) {
		int64_t mid = (lo + hi + 1) / 2;
		if (a->start[mid] <= g)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

/* Adds c to the sorted list of count blocks unless it holds it; returns
 * the new count. Blocks mostly come in order: appended. */
static int64_t add_sorted(int64_t *list, int64_t count, int64_t c)
{
	int64_t lo = 0, hi = count;
	if (count && list[count - 1] < c) {
		lo = count;
	} else {
		while (lo < hi) {
			int64_t mid = lo + (hi - lo) / 2;
			if (list[mid] < c)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < count && list[lo] == c)
			return count;
		memmove(&list[lo + 1], &list[lo], (size_t)(count - lo) * sizeof *list);
	}
	list[lo] = c;
	return count + 1;
}

int64_t halo_axis_blocks_touched(const struct halo_axis *a, int64_t lo, int64_t hi, int boundary,
				 int64_t *list)
{
	/* A run of blocks at a time, not a voxel (a rechunk to a whole axis
	 * of 10^5 chunks went voxel by voxel: seconds to plan). Within a
	 * tile [t n, t n + n) of the line the boundary maps g to the axis
	 * with a slope of 1, -1 (reflect's mirrored copies) or 0 (nearest's
	 * edges), or to nothing (constant, none). */
	int64_t count = 0, n = a->n;
	for (int64_t g = lo; g < hi && n > 0;) {
		int64_t t = g >= 0 ? g / n : -((n - 1 - g) / n);
		int64_t end = (t + 1) * n < hi ? (t + 1) * n : hi;
		int64_t m = halo_boundary_map(g, n, boundary);
		if (m < 0) {
			g = end;
			continue;
		}
		int64_t c = halo_axis_find(a, m);
		int slope = t == 0 || boundary == HALO_BOUNDARY_PERIODIC ? 1
			    : boundary == HALO_BOUNDARY_REFLECT ? ((t & 1) ? -1 : 1) : 0;
		int64_t run = slope > 0 ? a->start[c + 1] - m : slope < 0 ? m - a->start[c] + 1 : end - g;
		g += run < end - g ? run : end - g;
		count = add_sorted(list, count, c);
	}
	return count;
}

void halo_axis_free(struct halo_axis *a)
{
	free(a->start);
	a->start = NULL;
	a->nblocks = 0;
}

int halo_axis_common(struct halo_axis *out, const struct halo_axis *a, const struct halo_axis *b)
{
	if (a->nblocks == 1 && b->nblocks > 1)
		return halo_axis_copy(out, b);
	if (b->nblocks == 1 || halo_axis_equal(a, b))
		return halo_axis_copy(out, a);
	out->n = a->n;
	if (alloc_starts(out, a->nblocks + b->nblocks) < 0)
		return -1;
	int64_t i = 0, j = 0, k = 0;
	while (i <= a->nblocks || j <= b->nblocks) {
		int64_t x = i <= a->nblocks ? a->start[i] : INT64_MAX;
		int64_t y = j <= b->nblocks ? b->start[j] : INT64_MAX;
		int64_t m = x < y ? x : y;
		out->start[k++] = m;
		i += x == m;
		j += y == m;
	}
	out->nblocks = k - 1;
	return 0;
}

int halo_axis_copy(struct halo_axis *dst, const struct halo_axis *src)
{
	size_t bytes = (size_t)(src->nblocks + 1) * sizeof *src->start;
	dst->n = src->n;
	dst->nblocks = src->nblocks;
	dst->start = malloc(bytes);
	if (!dst->start)
		return -1;
	memcpy(dst->start, src->start, bytes);
	return 0;
}

/* Whether chunks of c along an axis of n end in one under half of c. */
static int sliver(int64_t n, int64_t c)
{
	int64_t last = n % c;
	return last != 0 && 2 * last < c;
}

int halo_chunks_auto(const int64_t shape[3], const int depth[3], double bytes_per_voxel,
		     uint64_t per_task, int64_t min_chunks, int64_t out[3])
{
	int64_t floor[3];
	for (int d = 0; d < 3; d++) {
		out[d] = shape[d];
		floor[d] = halo_chunks_auto_least(depth[d]);
		floor[d] = floor[d] < shape[d] ? floor[d] : shape[d];
	}
	for (;;) {
		double haloed = bytes_per_voxel;
		int64_t n = 1;
		for (int d = 0; d < 3; d++) {
			haloed *= (double)(out[d] + 2 * (int64_t)depth[d]);
			n *= (shape[d] + out[d] - 1) / out[d];
		}
		if (haloed <= (double)per_task && n >= min_chunks)
			return 0;
		int best = -1;
		for (int d = 0; d < 3; d++)
			if (out[d] > floor[d] && (best < 0 || out[d] > out[best]))
				best = d;
		if (best < 0) /* as small as is sensible */
			return haloed > (double)per_task;
		/* About twice the chunks along the axis: a multiple of 8, unless
		 * that leaves a sliver (100 in 32s ends in 4, which carries a
		 * whole halo), where the nearest size a little smaller that
		 * leaves none does instead (4 of 25). */
		int64_t s = shape[best], parts = 2 * ((s + out[best] - 1) / out[best]);
		int64_t even = (s + parts - 1) / parts, half = (even + 7) / 8 * 8;
		for (int64_t c = even; sliver(s, half) && c >= 1 && 4 * c >= 3 * even; c--)
			half = c;
		if (sliver(s, half))
			half = (even + 7) / 8 * 8;
		out[best] = half > floor[best] ? (half < out[best] ? half : floor[best]) : floor[best];
	}
}
