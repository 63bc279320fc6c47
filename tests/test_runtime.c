/* StarPU started from halo's options runs a real codelet correctly on 1 and
 * 2 CPU workers under the eager and dmda schedulers, starts exactly the
 * workers asked for, refuses an unknown scheduler cleanly, and leaves its
 * host buffers unpinned. */
#include "config.h"
#include "halo.h"
#include "codelets/scale.h"
#include "runtime/runtime.h"
#include "tests/tap.h"

#include <math.h>
#include <starpu.h>
#include <stdlib.h>
#include <string.h>

enum { NX = 33, NY = 17, NZ = 24, PARTS = 8 };

/* Two scale/offset passes over a block split along z: x -> 0.5*(2x+1) - 3. */
static void run_scale(int ncpu, const char *sched)
{
	halo_runtime_opts_t opts;
	halo_runtime_opts_init(&opts);
	opts.ncpu = ncpu;
	opts.ncuda = 0;
	opts.sched = sched;
	halo_runtime_t *rt = NULL;
	halo_error_t err = {0};
	if (!tap_ok(halo_runtime_init(&opts, &rt, &err) == HALO_OK, "init %d cpu, %s: %s",
		    ncpu, sched, err.msg))
		return;
	tap_int_eq(starpu_cpu_worker_get_count(), ncpu, "CPU workers started");
	tap_str_eq(halo_runtime_sched(rt), sched, "scheduler in use");

	size_t n = (size_t)NX * NY * NZ;
	float *data;
	starpu_malloc((void **)&data, n * sizeof *data);
	for (size_t i = 0; i < n; i++)
		data[i] = (float)(i % 1000) * 0.25f;
	starpu_data_handle_t h;
	starpu_block_data_register(&h, STARPU_MAIN_RAM, (uintptr_t)data, NX, NX * NY, NX, NY,
				   NZ, sizeof(float));
	struct starpu_data_filter f = {
		.filter_func = starpu_block_filter_depth_block,
		.nchildren = PARTS,
	};
	starpu_data_partition(h, &f);
	const struct halo_scale_args pass[2] = {{2.0f, 1.0f}, {0.5f, -3.0f}};
	int submit_failed = 0;
	for (int p = 0; p < 2; p++)
		for (int i = 0; i < PARTS; i++) {
			int rc = starpu_task_insert(&halo_scale_cl, STARPU_RW,
						    starpu_data_get_sub_data(h, 1, i), STARPU_VALUE,
						    &pass[p], sizeof pass[p], 0);
			submit_failed |= rc != 0;
		}
	tap_ok(!submit_failed, "tasks submitted");
	starpu_task_wait_for_all();
	starpu_data_unpartition(h, STARPU_MAIN_RAM);
	starpu_data_unregister(h);

	size_t bad = 0;
	double worst = 0;
	for (size_t i = 0; i < n; i++) {
		double want = (double)(i % 1000) * 0.25 - 2.5;
		double d = fabs((double)data[i] - want);
		if (d > 1e-5 * fabs(want) + 1e-6)
			bad++;
		if (d > worst)
			worst = d;
	}
	tap_ok(bad == 0, "%d cpu, %s: %zu wrong voxels of %zu (worst %.3g)", ncpu, sched, bad,
	       n, worst);
	starpu_free(data);
	halo_runtime_shutdown(rt);
}

static void test_bad_sched(void)
{
	halo_runtime_opts_t opts;
	halo_runtime_opts_init(&opts);
	opts.sched = "no-such-policy";
	halo_runtime_t *rt = (halo_runtime_t *)&opts; /* must be reset to NULL */
	halo_error_t err = {0};
	tap_int_eq(halo_runtime_init(&opts, &rt, &err), HALO_EINVAL, "unknown scheduler refused");
	tap_ok(rt == NULL, "no runtime returned on error");
	tap_ok(strstr(err.msg, "no-such-policy") && strstr(err.msg, "dmda"),
	       "message names the policy and the known ones: %s", err.msg);
	tap_ok(!strstr(err.msg, "heteroprio,") && !strstr(err.msg, " heteroprio"),
	       "and offers no heteroprio, which it refuses: %s", err.msg);
	opts.sched = "eager";
	opts.ncpu = 1;
	tap_ok(halo_runtime_init(&opts, &rt, &err) == HALO_OK,
	       "StarPU still starts after a refused scheduler");
	halo_runtime_shutdown(rt);
}

static void test_scheduler_list(void)
{
	const char *const *names = halo_sched_names();
	int eager = 0, dmda = 0, lws = 0;
	for (; *names; names++) {
		eager |= strcmp(*names, "eager") == 0;
		dmda |= strcmp(*names, "dmda") == 0;
		lws |= strcmp(*names, "lws") == 0;
	}
	tap_ok(eager && dmda && lws, "StarPU's policies include eager, dmda and lws");
}

/* A worker count as StarPU takes it: the option, else STARPU_NCUDA, else
 * -1 (all); a value StarPU would refuse counts as none. */
static void test_worker_count(void)
{
	unsetenv("STARPU_NCUDA");
	tap_int_eq(halo_runtime_worker_count(-1, "STARPU_NCUDA"), -1, "no option, no variable: all");
	setenv("STARPU_NCUDA", "3", 1);
	tap_int_eq(halo_runtime_worker_count(-1, "STARPU_NCUDA"), 3, "STARPU_NCUDA=3");
	tap_int_eq(halo_runtime_worker_count(0, "STARPU_NCUDA"), 0, "--ncuda 0 over STARPU_NCUDA");
	setenv("STARPU_NCUDA", "2x", 1);
	tap_int_eq(halo_runtime_worker_count(-1, "STARPU_NCUDA"), -1, "STARPU_NCUDA=2x: all");
	unsetenv("STARPU_NCUDA");
}

/* Where is STARPU_DISABLE_PINNING after a start and stop? NULL when unset.
 * Without a GPU StarPU pins nothing, so the variable is what can be seen. */
static const char *pinning_after(void)
{
	halo_runtime_opts_t opts;
	halo_runtime_opts_init(&opts);
	opts.ncpu = 1;
	halo_runtime_t *rt = NULL;
	halo_error_t err = {0};
	if (halo_runtime_init(&opts, &rt, &err) != HALO_OK)
		return "no start";
	halo_runtime_shutdown(rt);
	return getenv("STARPU_DISABLE_PINNING");
}

/* StarPU pins no host buffer unless the user asks for it. */
static void test_pinning(void)
{
	unsetenv("STARPU_DISABLE_PINNING");
	const char *v = pinning_after();
	tap_ok(v && !strcmp(v, "1"), "STARPU_DISABLE_PINNING=1 by default (%s)", v ? v : "unset");
	setenv("STARPU_DISABLE_PINNING", "0", 1);
	v = pinning_after();
	tap_ok(v && !strcmp(v, "0"), "the user's STARPU_DISABLE_PINNING=0 stays (%s)", v ? v : "unset");
	unsetenv("STARPU_DISABLE_PINNING");
}

int main(void)
{
	test_scheduler_list();
	test_worker_count();
	test_pinning();
	static const char *scheds[] = {"eager", "dmda"};
	for (int s = 0; s < 2; s++)
		for (int ncpu = 1; ncpu <= 2; ncpu++)
			run_scale(ncpu, scheds[s]);
	test_bad_sched();
	return tap_done();
}
