/* CPU implementation of gather (see gather.h). Copies go row by row: a row
 * of a source chunk clipped to the destination is one contiguous run in both
 * buffers, so the type conversion loop streams. Averaging accumulates in
 * float64, since sums of many uint16 values overflow float32's mantissa. */
#include "config.h"
#include "codelets/gather.h"
#include "codelets/gather_math.h"

#include <stdlib.h>
#include <string.h>

static void gather_cpu(void *buffers[], void *cl_arg);

/* A gather's time follows what it writes (the destination's shape and
 * types, the averaging factor) and, up to about 3x, how short the rows it
 * copies are: keyed by those, the last as a power of two. StarPU's default
 * footprint hashes every source's shape, which made an entry for nearly
 * every chunk at a volume's edges: 19,445 in this model after a few
 * thousand runs, which StarPU parses at every start and writes back at
 * every exit (0.14 s of a 0.19 s halo convert). A new symbol leaves those
 * entries behind. */
uint32_t halo_gather_footprint(const struct halo_gather_args *a)
{
	int64_t run = a->dst_dims[2];
	for (int i = 0; i < a->nsrc; i++)
		run = a->src[i].dims[2] < run ? a->src[i].dims[2] : run;
	int64_t row_log2 = 0;
	while (run > 1) {
		run >>= 1;
		row_log2++;
	}
	int64_t key[9] = {a->dst_dims[0], a->dst_dims[1], a->dst_dims[2], a->src_kind,
			  a->dst_kind, a->factor[0], a->factor[1], a->factor[2], row_log2};
	return starpu_hash_crc32c_be_n(key, sizeof key, 0);
}

static uint32_t gather_footprint(struct starpu_task *task)
{
	return halo_gather_footprint(task->cl_arg);
}

static struct starpu_perfmodel gather_model = {
	.type = STARPU_HISTORY_BASED,
	.symbol = "halo_gather_dst",
	.footprint = gather_footprint,
};

/* Averaging (pyramid levels) has no CUDA implementation. */
static int gather_can_execute(unsigned worker, struct starpu_task *task, unsigned nimpl)
{
	(void)nimpl;
	if (starpu_worker_get_type((int)worker) != STARPU_CUDA_WORKER)
		return 1;
	const struct halo_gather_args *a = task->cl_arg;
	return a->factor[0] == 1 && a->factor[1] == 1 && a->factor[2] == 1;
}

struct starpu_codelet halo_gather_cl = {
	.can_execute = gather_can_execute,
	.cpu_funcs = {gather_cpu},
	.cpu_funcs_name = {"gather_cpu"},
#ifdef HALO_USE_CUDA
	.cuda_funcs = {halo__gather_cuda},
	.cuda_flags = {STARPU_CUDA_ASYNC},
#elif defined(HALO_SIMULATE)
	.cuda_funcs = {HALO_SIMULATED_CUDA},
#endif
	.nbuffers = STARPU_VARIABLE_NBUFFERS,
	.model = &gather_model,
	.name = "gather",
};

static inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

static void fill_padding(const struct halo_gather_args *a, unsigned char *dst, size_t dsize)
{
	const int64_t *o = a->dst_origin, *n = a->dst_dims, *s = a->dst_shape;
	int64_t vz = min64(n[0], s[0] - o[0]), vy = min64(n[1], s[1] - o[1]);
	int64_t vx = min64(n[2], s[2] - o[2]);
	for (int64_t z = 0; z < n[0]; z++)
		for (int64_t y = 0; y < n[1]; y++) {
			int64_t from = z < vz && y < vy ? max64(vx, 0) : 0;
			if (from < n[2])
				halo_dtype_fill(dst + (size_t)((z * n[1] + y) * n[2] + from) * dsize,
						a->dst_kind, a->fill, (size_t)(n[2] - from));
		}
}

static void copy_direct(const struct halo_gather_args *a, const void *const *src, void *dst)
{
	halo_dtype_t sdt = {a->src_kind, 0}, ddt = {a->dst_kind, 0};
	size_t ssize = halo_dtype_size(sdt), dsize = halo_dtype_size(ddt);
	const int64_t *o = a->dst_origin, *n = a->dst_dims;
	for (int i = 0; i < a->nsrc; i++) {
		const struct halo_gather_src *s = &a->src[i];
		int64_t lo[3], hi[3];
		for (int d = 0; d < 3; d++) {
			lo[d] = max64(o[d], s->origin[d]);
			hi[d] = min64(min64(o[d] + n[d], s->origin[d] + s->dims[d]),
				      min64(a->src_shape[d], a->dst_shape[d]));
		}
		if (lo[0] >= hi[0] || lo[1] >= hi[1] || lo[2] >= hi[2])
			continue;
		for (int64_t z = lo[0]; z < hi[0]; z++)
			for (int64_t y = lo[1]; y < hi[1]; y++) {
				size_t si = (size_t)(((z - s->origin[0]) * s->dims[1] + (y - s->origin[1])) *
							     s->dims[2] + (lo[2] - s->origin[2]));
				size_t di = (size_t)(((z - o[0]) * n[1] + (y - o[1])) * n[2] + (lo[2] - o[2]));
				halo_dtype_convert((const unsigned char *)src[i] + si * ssize, a->src_kind,
						   (unsigned char *)dst + di * dsize, a->dst_kind,
						   (size_t)(hi[2] - lo[2]));
			}
	}
}

/* The voxels [lo, hi) of source s that the destination block averages;
 * 0 when there are none. */
static int averaged(const struct halo_gather_args *a, const struct halo_gather_src *s,
		    int64_t lo[3], int64_t hi[3])
{
	const int64_t *o = a->dst_origin, *n = a->dst_dims;
	for (int d = 0; d < 3; d++) {
		lo[d] = max64(o[d] * a->factor[d], s->origin[d]);
		hi[d] = min64(min64((o[d] + n[d]) * a->factor[d], s->origin[d] + s->dims[d]),
			      a->src_shape[d]);
	}
	return lo[0] < hi[0] && lo[1] < hi[1] && lo[2] < hi[2];
}

/* How many source voxels destination voxel (z, y, x) of the block averages:
 * fewer at the source's far edges; 0 or less beyond them. */
static int64_t averaged_count(const struct halo_gather_args *a, int64_t z, int64_t y, int64_t x)
{
	const int64_t *o = a->dst_origin, *sh = a->src_shape;
	const int *f = a->factor;
	return min64(f[0], sh[0] - (o[0] + z) * f[0]) * min64(f[1], sh[1] - (o[1] + y) * f[1]) *
	       min64(f[2], sh[2] - (o[2] + x) * f[2]);
}

/* The nearest integer to sum / c, ties to even, as a double mean's rint. */
__extension__ typedef __int128 wide_t;
static wide_t nearest(wide_t sum, int64_t c)
{
	wide_t q = sum / c, r = sum % c, sign = sum < 0 ? -1 : 1;
	wide_t twice = 2 * (r < 0 ? -r : r);
	if (twice > c || (twice == c && (q & 1)))
		q += sign;
	return q;
}

/* The mean of 64-bit integers into their own type, exactly: a double holds
 * 53 bits, and a mean near 2^64 came out as the type's maximum. */
static int average_wide(const struct halo_gather_args *a, const void *const *src, void *dst)
{
	int sign = a->src_kind == HALO_I8;
	const int64_t *o = a->dst_origin, *n = a->dst_dims;
	const int *f = a->factor;
	size_t count = (size_t)(n[0] * n[1] * n[2]);
	wide_t *sum = calloc(count, sizeof *sum);
	if (!sum)
		return -1;
	for (int i = 0; i < a->nsrc; i++) {
		const struct halo_gather_src *s = &a->src[i];
		int64_t lo[3], hi[3];
		if (!averaged(a, s, lo, hi))
			continue;
		for (int64_t z = lo[0]; z < hi[0]; z++)
			for (int64_t y = lo[1]; y < hi[1]; y++) {
				size_t si = (size_t)(((z - s->origin[0]) * s->dims[1] + (y - s->origin[1])) *
							     s->dims[2] + (lo[2] - s->origin[2]));
				const int64_t *is = (const int64_t *)src[i] + si;
				const uint64_t *us = (const uint64_t *)src[i] + si;
				wide_t *out = sum + ((z / f[0] - o[0]) * n[1] + (y / f[1] - o[1])) * n[2];
				for (int64_t x = lo[2]; x < hi[2]; x++)
					out[x / f[2] - o[2]] += sign ? (wide_t)is[x - lo[2]]
								     : (wide_t)us[x - lo[2]];
			}
	}
	for (int64_t z = 0; z < n[0]; z++)
		for (int64_t y = 0; y < n[1]; y++)
			for (int64_t x = 0; x < n[2]; x++) {
				size_t k = (size_t)((z * n[1] + y) * n[2] + x);
				int64_t c = averaged_count(a, z, y, x);
				if (c <= 0)
					halo_dtype_convert(&a->fill, HALO_F8, (int64_t *)dst + k,
							   a->dst_kind, 1);
				else if (sign)
					((int64_t *)dst)[k] = (int64_t)nearest(sum[k], c);
				else
					((uint64_t *)dst)[k] = (uint64_t)nearest(sum[k], c);
			}
	free(sum);
	return 0;
}

static int average(const struct halo_gather_args *a, const void *const *src, void *dst)
{
	if ((a->src_kind == HALO_I8 || a->src_kind == HALO_U8) && a->dst_kind == a->src_kind)
		return average_wide(a, src, dst);
	halo_dtype_t sdt = {a->src_kind, 0}, ddt = {a->dst_kind, 0};
	size_t ssize = halo_dtype_size(sdt), dsize = halo_dtype_size(ddt);
	const int64_t *o = a->dst_origin, *n = a->dst_dims;
	const int *f = a->factor;
	size_t count = (size_t)(n[0] * n[1] * n[2]);
	double *sum = calloc(count, sizeof *sum);
	double *row = malloc((size_t)a->src[0].dims[2] * sizeof *row);
	if (!sum || !row) {
		free(sum);
		free(row);
		return -1;
	}
	for (int i = 0; i < a->nsrc; i++) {
		const struct halo_gather_src *s = &a->src[i];
		int64_t lo[3], hi[3];
		if (!averaged(a, s, lo, hi))
			continue;
		for (int64_t z = lo[0]; z < hi[0]; z++)
			for (int64_t y = lo[1]; y < hi[1]; y++) {
				size_t si = (size_t)(((z - s->origin[0]) * s->dims[1] + (y - s->origin[1])) *
							     s->dims[2] + (lo[2] - s->origin[2]));
				halo_dtype_convert((const unsigned char *)src[i] + si * ssize, a->src_kind,
						   row, HALO_F8, (size_t)(hi[2] - lo[2]));
				double *out = sum + ((z / f[0] - o[0]) * n[1] + (y / f[1] - o[1])) * n[2];
				for (int64_t x = lo[2]; x < hi[2]; x++)
					out[x / f[2] - o[2]] += row[x - lo[2]];
			}
	}
	/* Each destination voxel averages the source voxels that exist. */
	for (int64_t z = 0; z < n[0]; z++)
		for (int64_t y = 0; y < n[1]; y++) {
			double *r = sum + (z * n[1] + y) * n[2];
			for (int64_t x = 0; x < n[2]; x++) {
				int64_t c = averaged_count(a, z, y, x);
				r[x] = c > 0 ? r[x] / (double)c : a->fill;
			}
			halo_dtype_convert(r, HALO_F8, (unsigned char *)dst + (size_t)(z * n[1] + y) * n[2] * dsize,
					   a->dst_kind, (size_t)n[2]);
		}
	free(row);
	free(sum);
	return 0;
}

static int reaches_outside(const struct halo_gather_args *a)
{
	for (int d = 0; d < 3; d++)
		if (a->dst_origin[d] < 0 || a->dst_origin[d] + a->dst_dims[d] > a->src_shape[d])
			return 1;
	return 0;
}

/* The distinct source chunk origins along axis d, in listing order, with
 * each one's extent (sources may differ in size, e.g. at the volume's edge). */
static int axis_origins(const struct halo_gather_args *a, int d, int64_t *out, int64_t *extent)
{
	int n = 0;
	for (int i = 0; i < a->nsrc; i++) {
		int seen = 0;
		for (int j = 0; j < n && !seen; j++)
			seen = out[j] == a->src[i].origin[d];
		if (!seen) {
			extent[n] = a->src[i].dims[d];
			out[n++] = a->src[i].origin[d];
		}
	}
	return n;
}

size_t halo__gather_space(const struct halo_gather_args *a)
{
	const int64_t *n = a->dst_dims;
	return (size_t)(2 * (n[0] + n[1] + n[2])) + 5 * (size_t)a->nsrc + 2;
}

void halo__gather_plan(const struct halo_gather_args *a, int64_t *space,
		       struct halo_gather_plan *p)
{
	const int64_t *o = a->dst_origin, *n = a->dst_dims;
	/* Past the source's faces the boundary rule says where a voxel comes
	 * from; without one (or inside) a voxel is the source's own. */
	int mapped = a->boundary != HALO_BOUNDARY_NONE && reaches_outside(a);
	*p = (struct halo_gather_plan){.src_kind = a->src_kind, .dst_kind = a->dst_kind,
				       .fill = a->fill, .outside = mapped ? a->constant : a->fill};
	int64_t *dims = space, *origins = dims + 3 * a->nsrc, *extent = origins + a->nsrc + 1;
	int64_t *t = extent + a->nsrc + 1;
	for (int i = 0; i < a->nsrc; i++)
		memcpy(dims + 3 * i, a->src[i].dims, sizeof a->src[i].dims);
	p->dims = dims;
	for (int d = 0; d < 3; d++) {
		int64_t *pos = t, *off = t + n[d];
		t += 2 * n[d];
		p->n[d] = n[d];
		p->limit[d] = mapped ? n[d] : min64(n[d], a->dst_shape[d] - o[d]);
		p->norig[d] = axis_origins(a, d, origins, extent);
		for (int64_t i = 0; i < n[d]; i++) {
			/* Unmapped, a block may lie at negative coordinates (the
			 * cells of a distributed gather): any source holding g. */
			int64_t g = o[d] + i;
			int64_t m = mapped ? halo_boundary_map(g, a->src_shape[d], a->boundary) : g;
			int some = mapped ? m >= 0 : g < a->src_shape[d];
			pos[i] = -1;
			off[i] = 0;
			for (int j = 0; some && j < p->norig[d]; j++)
				if (m >= origins[j] && m < origins[j] + extent[j]) {
					pos[i] = j;
					off[i] = m - origins[j];
				}
		}
		p->pos[d] = pos;
		p->off[d] = off;
	}
}

/* Haloed regions that reach past the source's faces: each destination
 * index maps through the boundary rule to a source chunk and an offset,
 * per axis, so the inner loop is two table lookups per voxel. */
static int copy_mapped(const struct halo_gather_args *a, const void *const *src, void *dst)
{
	halo_dtype_t sdt = {a->src_kind, 0}, ddt = {a->dst_kind, 0};
	size_t ssize = halo_dtype_size(sdt), dsize = halo_dtype_size(ddt);
	const int64_t *n = a->dst_dims;
	int64_t *space = malloc(halo__gather_space(a) * sizeof *space);
	if (!space)
		return -1;
	struct halo_gather_plan p;
	halo__gather_plan(a, space, &p);
	const int64_t *const *pos = p.pos, *const *off = p.off;
	for (int64_t z = 0; z < n[0]; z++)
		for (int64_t y = 0; y < n[1]; y++) {
			unsigned char *row = (unsigned char *)dst + (size_t)((z * n[1] + y) * n[2]) * dsize;
			if (pos[0][z] < 0 || pos[1][y] < 0) {
				halo_dtype_fill(row, a->dst_kind, a->constant, (size_t)n[2]);
				continue;
			}
			for (int64_t x = 0; x < n[2];) {
				/* A run of voxels that are consecutive in one source
				 * row (or all constant) is converted in one call. */
				int64_t end = x + 1;
				int constant = pos[2][x] < 0;
				if (constant)
					while (end < n[2] && pos[2][end] < 0)
						end++;
				else
					while (end < n[2] && pos[2][end] == pos[2][x] &&
					       off[2][end] == off[2][end - 1] + 1)
						end++;
				if (constant) {
					halo_dtype_fill(row + (size_t)x * dsize, a->dst_kind, a->constant,
							(size_t)(end - x));
				} else {
					int k = (int)((pos[0][z] * p.norig[1] + pos[1][y]) * p.norig[2] +
						      pos[2][x]);
					const struct halo_gather_src *s = &a->src[k];
					size_t si = (size_t)((off[0][z] * s->dims[1] + off[1][y]) * s->dims[2] +
							     off[2][x]);
					halo_dtype_convert((const unsigned char *)src[k] + si * ssize, a->src_kind,
							   row + (size_t)x * dsize, a->dst_kind, (size_t)(end - x));
				}
				x = end;
			}
		}
	free(space);
	return 0;
}

int halo_gather_run(const struct halo_gather_args *a, const void *const *src, void *dst)
{
	if (a->boundary != HALO_BOUNDARY_NONE && reaches_outside(a))
		return copy_mapped(a, src, dst);
	halo_dtype_t ddt = {a->dst_kind, 0};
	if (a->factor[0] == 1 && a->factor[1] == 1 && a->factor[2] == 1)
		copy_direct(a, src, dst);
	else if (a->nsrc > 0 && average(a, src, dst))
		return -1;
	fill_padding(a, dst, halo_dtype_size(ddt));
	return 0;
}

static void gather_cpu(void *buffers[], void *cl_arg)
{
	const struct halo_gather_args *a = cl_arg;
	/* On the heap: a rechunk to whole axes reads up to millions of
	 * chunks, more pointers than a worker's stack holds. */
	const void **src = malloc((size_t)(a->nsrc > 0 ? a->nsrc : 1) * sizeof *src);
	for (int i = 0; src && i < a->nsrc; i++)
		src[i] = (const void *)STARPU_BLOCK_GET_PTR(buffers[i]);
	if (!src || halo_gather_run(a, src, (void *)STARPU_BLOCK_GET_PTR(buffers[a->nsrc])))
		halo_gather_fail(a);
	free(src);
}
