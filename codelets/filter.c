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

int halo_uniform_run(float *block, const int64_t n[3], const int size[3])
{
	int64_t longest = n[0] > n[1] ? n[0] : n[1];
	longest = longest > n[2] ? longest : n[2];
	int biggest = size[0] > size[1] ? size[0] : size[1];
	biggest = biggest > size[2] ? biggest : size[2];
	double *line = malloc((size_t)(longest + biggest) * sizeof *line);
	if (!line)
		return -1;
	int64_t stride[3] = {n[1] * n[2], n[2], 1};
	for (int d = 0; d < 3; d++) {
		if (size[d] <= 1)
			continue;
		int r = size[d] / 2;
		int u = d == 0 ? 1 : 0, w = d == 2 ? 1 : 2;
		for (int64_t i = 0; i < n[u]; i++)
			for (int64_t j = 0; j < n[w]; j++) {
				float *p = block + i * stride[u] + j * stride[w];
				for (int64_t k = -r; k < n[d] + r; k++)
					line[k + r] = p[reflect(k, n[d]) * stride[d]];
				for (int64_t k = 0; k < n[d]; k++) {
					double s = 0;
					for (int q = 0; q < size[d]; q++)
						s += line[k + q];
					p[k * stride[d]] = (float)(s / size[d]);
				}
			}
	}
	free(line);
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
	if (!work || halo_uniform_run(memcpy(work, in, total * sizeof *work), n, a->size)) {
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
