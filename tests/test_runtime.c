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
	const char *mod = strstr(err.msg, "modular-{");
	tap_ok(mod && strstr(mod, "heteroprio-heft") && strstr(mod, ", heft,"),
	       "the modular-* policies named too: %s", err.msg);
	tap_ok(mod && !memmem(err.msg, (size_t)(mod - err.msg), "heteroprio", 10),
	       "and no heteroprio, which it refuses: %s", err.msg);
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

/* Ranks on one node split its cores and GPUs: contiguous runs that cover
 * them once, or where there are fewer than ranks, one each, shared. */
static void test_node_share(void)
{
	int first, covered = 0, ok = 1;
	for (int k = 0; k < 3; k++) {
		int n = halo_node_share(16, k, 3, &first);
		ok = ok && first == covered && n >= 5 && n <= 6;
		covered += n;
	}
	tap_ok(ok && covered == 16, "16 cores among 3 ranks: 5, 5, 6 in turn");
	int n = halo_node_share(2, 2, 3, &first);
	tap_ok(n == 1 && first == 0, "2 cores, rank 2 of 3: core 0 (got %d from %d)", n, first);
	tap_int_eq(halo_node_share(4, 0, 1, &first), 4, "one rank: all 4");
	tap_int_eq(halo_node_share(0, 1, 2, &first), 0, "no GPU: none");
	/* Ranks sharing GPUs split their memory: 5 ranks on 2 GPUs, 3 on
	 * GPU 0 (ranks 0, 2, 4 by halo_node_share) and 2 on GPU 1. */
	int on[2] = {0, 0};
	for (int k = 0; k < 5; k++) {
		halo_node_share(2, k, 5, &first);
		on[first]++;
	}
	tap_ok(halo_node_gpu_sharers(0, 2, 5) == on[0] && halo_node_gpu_sharers(1, 2, 5) == on[1] &&
		       on[0] == 3, "5 ranks on 2 GPUs: 3 and 2 share each, as halo_node_share deals them");
	tap_int_eq(halo_node_gpu_sharers(0, 1, 4), 4, "4 ranks on 1 GPU: 4 share it");
	tap_int_eq(halo_node_gpu_sharers(1, 4, 4), 1, "4 ranks on 4 GPUs: one each");
}

/* The ranks on this node, as each launcher says: Open MPI, MPICH's
 * hydra, Slurm's srun (its tasks per node compressed as "2(x3),1"). */
static int ranks_with(const char *const *vars, int *local)
{
	static const char *const all[] = {
		"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE",
		"MPI_LOCALRANKID", "MPI_LOCALNRANKS", "PMI_SIZE", "PMIX_RANK", "SLURM_LOCALID",
		"SLURM_NODEID", "SLURM_STEP_TASKS_PER_NODE", NULL};
	for (const char *const *v = all; *v; v++)
		unsetenv(*v);
	for (; *vars; vars += 2)
		setenv(vars[0], vars[1], 1);
	int n = halo_node_ranks(local);
	for (const char *const *v = all; *v; v++)
		unsetenv(*v);
	return n;
}

static void test_node_ranks(void)
{
	int local;
#ifndef HALO_HAVE_MPI
	tap_skip("halo built without StarPU-MPI", "ranks per node");
	return;
#endif
	static const char *const ompi[] = {"OMPI_COMM_WORLD_SIZE", "8",
					   "OMPI_COMM_WORLD_LOCAL_RANK", "3",
					   "OMPI_COMM_WORLD_LOCAL_SIZE", "4", NULL};
	tap_ok(ranks_with(ompi, &local) == 4 && local == 3, "Open MPI: rank 3 of 4 on the node");
	static const char *const hydra[] = {"PMI_SIZE", "4", "MPI_LOCALRANKID", "1",
					    "MPI_LOCALNRANKS", "2", NULL};
	tap_ok(ranks_with(hydra, &local) == 2 && local == 1, "hydra: rank 1 of 2 on the node");
	static const char *const slurm[] = {"PMIX_RANK", "7", "SLURM_LOCALID", "0",
					    "SLURM_NODEID", "3",
					    "SLURM_STEP_TASKS_PER_NODE", "2(x3),1", NULL};
	tap_ok(ranks_with(slurm, &local) == 1 && local == 0, "srun, node 3 of 2(x3),1: alone");
	static const char *const slurm2[] = {"PMIX_RANK", "5", "SLURM_LOCALID", "1",
					     "SLURM_NODEID", "2",
					     "SLURM_STEP_TASKS_PER_NODE", "2(x3),1", NULL};
	tap_ok(ranks_with(slurm2, &local) == 2 && local == 1, "srun, node 2 of 2(x3),1: 2 ranks");
	static const char *const bad[] = {"PMIX_RANK", "5", "SLURM_LOCALID", "1",
					  "SLURM_NODEID", "2", "SLURM_STEP_TASKS_PER_NODE", "2(x", NULL};
	tap_ok(ranks_with(bad, &local) == 1 && local == 0, "a list Slurm never writes: 1");
	static const char *const none[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "1",
					   "OMPI_COMM_WORLD_LOCAL_SIZE", "2", NULL};
	tap_ok(ranks_with(none, &local) == 1, "no MPI launch (no world size): 1");
}

int main(void)
{
	test_node_share();
	test_node_ranks();
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
