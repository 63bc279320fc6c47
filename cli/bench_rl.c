/* `halo bench rl` measures the RL codelet itself, so it runs in a process
 * of its own per configuration (StarPU starts once per process) and times
 * each task from submission to completion after warm-up runs: StarPU's
 * start-up, CUDA's initialisation and FFT planning stay out of the figure,
 * as they stay out of the python peers' timings. */
#include "config.h"
#include "cli/bench.h"
#include "cli/cli.h"
#include "codelets/rl.h"
#include "runtime/deconvolve.h"
#include "runtime/trace.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>

enum { OPT_SHAPE = 1, OPT_PSF, OPT_ITER, OPT_REPEAT, OPT_WARMUP };

void bench_gaussian_psf(float *p, int n)
{
	double s = n / 6.0 > 0.5 ? n / 6.0 : 0.5;
	halo_cli_gaussian_psf(p, (int[3]){n, n, n}, (double[3]){s, s, s});
}

static int measure(const int n[3], int pn, int iterations, int warmup, int repeat,
		   double *times, halo_error_t *err)
{
	size_t nvox = (size_t)n[0] * n[1] * n[2];
	float *img = NULL, *psf = malloc((size_t)pn * pn * pn * sizeof *psf);
	starpu_malloc((void **)&img, nvox * sizeof *img);
	if (!img || !psf) {
		free(psf);
		starpu_free(img);
		return halo_error_set(err, HALO_ENOMEM, "out of memory");
	}
	uint64_t s = 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < nvox; i++) {
		s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
		img[i] = 100.0f + (float)((s * 2685821657736338717ull) >> 40) * 0x1.0p-24f * 40.0f;
	}
	bench_gaussian_psf(psf, pn);

	halo_overlap_kernel_t *k = NULL;
	int rc = halo_rl_kernel_create(psf, (int[3]){pn, pn, pn}, iterations,
				       (int)starpu_cpu_worker_get_count(), &k, err);
	free(psf);
	if (rc) {
		starpu_free(img);
		return rc;
	}
	starpu_data_handle_t in, out;
	starpu_block_data_register(&in, STARPU_MAIN_RAM, (uintptr_t)img, (uint32_t)n[2],
				   (uint32_t)(n[2] * n[1]), (uint32_t)n[2], (uint32_t)n[1],
				   (uint32_t)n[0], sizeof(float));
	starpu_block_data_register(&out, -1, 0, (uint32_t)n[2], (uint32_t)(n[2] * n[1]),
				   (uint32_t)n[2], (uint32_t)n[1], (uint32_t)n[0], sizeof(float));
	int failed = 0;
	for (int i = 0; !rc && i < warmup + repeat; i++) {
		double t0 = halo_now();
		rc = k->submit(k->ctx, in, out, (int[3]){0, 0, 0}, n, &failed, err);
		starpu_task_wait_for_all();
		if (!rc && failed)
			rc = halo_error_set(err, HALO_ENOMEM, "out of memory running the RL task");
		if (i >= warmup)
			times[i - warmup] = halo_now() - t0;
		if (i == warmup - 1) /* a trace shows the timed runs only */
			halo_trace_restart();
	}
	starpu_data_unregister(in);
	starpu_data_unregister(out);
	int rc2 = halo_rl_kernel_destroy(k, rc ? NULL : err);
	starpu_free(img);
	return rc ? rc : rc2;
}

int bench_rl_child(int argc, char **argv)
{
	static const char help[] = "usage: halo bench --rl-child --shape Z,Y,X --psf N "
				   "--iterations N --repeat N --warmup N [runtime options]\n";
	static const struct option longopts[] = {
		{"rl-child", no_argument, NULL, 'c'},
		{"shape", required_argument, NULL, OPT_SHAPE},
		{"psf", required_argument, NULL, OPT_PSF},
		{"iterations", required_argument, NULL, OPT_ITER},
		{"repeat", required_argument, NULL, OPT_REPEAT},
		{"warmup", required_argument, NULL, OPT_WARMUP},
		HALO_CLI_RUNTIME_OPTIONS,
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	halo_runtime_opts_t ro;
	halo_runtime_opts_init(&ro);
	halo_error_t err = {0};
	int64_t shape[3] = {64, 256, 256};
	long pn = 15, iterations = 20, repeat = 3, warmup = 1;
	int c, status, nshape, rc = 0;
	halo_cli_options_begin();
	while ((c = halo_cli_next_option(argc, argv, "bench", longopts, help, &ro, &status)) != -1) {
		if (c == HALO_CLI_DONE)
			return status;
		switch (c) {
		case OPT_SHAPE:
			rc = halo__parse_int_list(optarg, 3, 3, 1, "--shape", shape, &nshape, &err);
			break;
		case OPT_PSF:
			rc = halo__parse_int(optarg, 1, 1024, "--psf", &pn, &err);
			break;
		case OPT_ITER:
			rc = halo__parse_int(optarg, 1, 100000, "--iterations", &iterations, &err);
			break;
		case OPT_REPEAT:
			rc = halo__parse_int(optarg, 1, 64, "--repeat", &repeat, &err);
			break;
		case OPT_WARMUP:
			rc = halo__parse_int(optarg, 0, 64, "--warmup", &warmup, &err);
			break;
		}
		if (rc) {
			halo_cli_error(&err);
			return HALO_EXIT_FAIL;
		}
	}
	int n[3] = {(int)shape[0], (int)shape[1], (int)shape[2]};
	halo_runtime_t *rt;
	if (halo_runtime_init(&ro, &rt, &err)) {
		halo_cli_error(&err);
		return HALO_EXIT_FAIL;
	}
	double times[64];
	status = HALO_EXIT_OK;
	if (measure(n, (int)pn, (int)iterations, (int)warmup, (int)repeat, times, &err)) {
		halo_cli_error(&err);
		status = HALO_EXIT_FAIL;
	} else {
		printf("{\"times_s\": [");
		for (long i = 0; i < repeat; i++)
			printf("%s%.9g", i ? ", " : "", times[i]);
		printf("]");
#ifdef HALO_USE_CUDA
		int fused, kernels, last_error, graphs, graph_failures;
		halo_rl_cuda_plans(&fused, &kernels, &last_error);
		halo_rl_cuda_graphs(&graphs, &graph_failures);
		if (fused || kernels)
			printf(", \"cuda_rl\": \"%s\", \"cuda_graphs\": %d, \"cuda_graph_failures\": %d",
			       halo_rl_cuda_path(), graphs, graph_failures);
#endif
		printf("}\n");
	}
	return halo_cli_finish(rt, status, &err);
}
