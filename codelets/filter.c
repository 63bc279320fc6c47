/* The uniform filter codelet (see filter.h). */
#include "config.h"
#include "codelets/filter.h"

#include <stdlib.h>
#include <string.h>

/* scipy.ndimage's 'reflect' (d c b a | a b c d | d c b a). */
static int64_t reflect(int64_t i, int64_t n)
{
	int64_t p = 2 * n;
	i %= p;
	if (i < 0)
		i += p;
	return i < n ? i : p - 1 - i;
}

/* One pass along z or y: each output row is the mean of the size rows
 * around it, whole rows at a time (the additions vectorise, and the rows
 * stream through the cache, where gathering a column voxel by voxel
 * strode through it), each window's sum in float64 in window order. rows:
 * the rows along the axis; len: a row's voxels; step: from row to row. */
static void rows_pass(const float *src, float *dst, int64_t rows, int64_t len, int64_t step,
		      int size, double *acc)
{
	int r = size / 2;
	for (int64_t k = 0; k < rows; k++) {
		for (int64_t i = 0; i < len; i++)
			acc[i] = 0;
		for (int q = 0; q < size; q++) {
			const float *row = src + reflect(k + q - r, rows) * step;
#pragma omp simd
			for (int64_t i = 0; i < len; i++)
				acc[i] += row[i];
		}
		float *out = dst + k * step;
#pragma omp simd
		for (int64_t i = 0; i < len; i++)
			out[i] = (float)(acc[i] / size);
	}
}

int halo_uniform_run(const float *in, float *out, const int64_t n[3], const int size[3])
{
	int64_t plane = n[1] * n[2], lx = 2 * n[2] + size[2];
	double *acc = malloc((size_t)(plane > lx ? plane : lx) * sizeof *acc);
	float *copy = malloc((size_t)plane * sizeof *copy);
	if (!acc || !copy) {
		free(acc);
		free(copy);
		return -1;
	}
	const float *cur = in;
	if (size[0] > 1) {
		rows_pass(in, out, n[0], plane, plane, size[0], acc);
		cur = out;
	}
	if (size[1] > 1) {
		for (int64_t z = 0; z < n[0]; z++) {
			const float *src = cur + z * plane;
			if (cur == out)
				src = memcpy(copy, src, (size_t)plane * sizeof *copy);
			rows_pass(src, out + z * plane, n[1], n[2], n[2], size[1], acc);
		}
		cur = out;
	}
	if (size[2] > 1) {
		/* Along x, a row padded by reflection into line, then the
		 * same sums over shifted copies of it. */
		int r = size[2] / 2;
		double *line = acc + n[2];
		for (int64_t y = 0; y < n[0] * n[1]; y++) {
			const float *src = cur + y * n[2];
			for (int64_t k = 0; k < r; k++) {
				line[r - 1 - k] = src[reflect(-1 - k, n[2])];
				line[r + n[2] + k] = src[reflect(n[2] + k, n[2])];
			}
#pragma omp simd
			for (int64_t k = 0; k < n[2]; k++)
				line[k + r] = src[k];
			for (int64_t k = 0; k < n[2]; k++)
				acc[k] = 0;
			for (int q = 0; q < size[2]; q++)
#pragma omp simd
				for (int64_t k = 0; k < n[2]; k++)
					acc[k] += line[k + q];
			float *dst = out + y * n[2];
#pragma omp simd
			for (int64_t k = 0; k < n[2]; k++)
				dst[k] = (float)(acc[k] / size[2]);
		}
		cur = out;
	}
	if (cur == in)
		memcpy(out, in, (size_t)(n[0] * plane) * sizeof *out);
	free(acc);
	free(copy);
	return 0;
}

static void uniform_cpu(void *buffers[], void *cl_arg)
{
	const struct halo_filter_args *a = cl_arg;
	const float *in = (const float *)STARPU_BLOCK_GET_PTR(buffers[0]);
	int64_t n[3] = {STARPU_BLOCK_GET_NZ(buffers[0]), STARPU_BLOCK_GET_NY(buffers[0]),
			STARPU_BLOCK_GET_NX(buffers[0])};
	float *out = (float *)STARPU_BLOCK_GET_PTR(buffers[1]);
	int64_t on[3] = {STARPU_BLOCK_GET_NZ(buffers[1]), STARPU_BLOCK_GET_NY(buffers[1]),
			 STARPU_BLOCK_GET_NX(buffers[1])};
	size_t total = (size_t)(n[0] * n[1] * n[2]);
	float *work = malloc(total * sizeof *work);
	if (!work || halo_uniform_run(in, work, n, a->size)) {
		free(work);
		__atomic_store_n(a->failed, 1, __ATOMIC_RELAXED);
		return;
	}
	memset(out, 0, (size_t)(on[0] * on[1] * on[2]) * sizeof *out);
	for (int z = 0; z < a->valid[0]; z++)
		for (int y = 0; y < a->valid[1]; y++)
			memcpy(out + ((int64_t)z * on[1] + y) * on[2],
			       work + ((int64_t)(z + a->trim[0]) * n[1] + y + a->trim[1]) * n[2] + a->trim[2],
			       (size_t)a->valid[2] * sizeof *out);
	free(work);
}

static struct starpu_perfmodel uniform_model = {.type = STARPU_HISTORY_BASED, .symbol = "halo_uniform"};

struct starpu_codelet halo_uniform_cl = {
	.cpu_funcs = {uniform_cpu}, .nbuffers = 2, .modes = {STARPU_R, STARPU_W},
	.model = &uniform_model, .name = "uniform",
};
