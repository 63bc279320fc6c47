/* Ranks that mpirun or srun starts on one node share its cores, GPUs and
 * memory. StarPU 1.3 binds every rank's CPU workers from the node's first
 * core on and opens its GPUs from the first on, so two ranks of a node
 * worked on the same cores and the same GPU while the others idled, and
 * each took the memory budget of a whole node. Each rank gets its own
 * slice of them instead, unless the user bound the workers himself. */
#include "config.h"
#include "runtime/mpi.h"
#include "runtime/runtime.h"

#include <hwloc.h>
#ifdef HALO_USE_CUDA
#include <cuda_runtime.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A non-negative integer variable, or -1. */
static int env_count(const char *name)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return -1;
	char *end;
	long n = strtol(v, &end, 10);
	return *end || n < 0 || n > 1 << 20 ? -1 : (int)n;
}

/* Slurm's tasks per node, as in SLURM_STEP_TASKS_PER_NODE: "2(x3),1" is
 * 2 tasks on each of the first three nodes and 1 on the fourth. */
static int slurm_tasks_on(const char *list, int node)
{
	const char *p = list;
	while (p && *p) {
		char *end;
		long tasks = strtol(p, &end, 10), times = 1;
		if (end == p || tasks <= 0)
			return -1;
		if (strncmp(end, "(x", 2) == 0) {
			times = strtol(end + 2, &end, 10);
			if (times <= 0 || *end != ')')
				return -1;
			end++;
		}
		if (node < times)
			return tasks > 1 << 20 ? -1 : (int)tasks;
		node -= (int)times;
		p = *end == ',' ? end + 1 : NULL;
	}
	return -1;
}

int halo_node_ranks(int *local)
{
	*local = 0;
	if (!halo__runtime_mpi_launched())
		return 1;
	/* Open MPI, MPICH's hydra, then Slurm's own launch (srun --mpi=pmix). */
	static const char *const vars[][2] = {
		{"OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"},
		{"MPI_LOCALRANKID", "MPI_LOCALNRANKS"},
	};
	int rank = -1, size = -1;
	for (size_t i = 0; i < sizeof vars / sizeof *vars && size < 0; i++) {
		rank = env_count(vars[i][0]);
		size = rank < 0 ? -1 : env_count(vars[i][1]);
	}
	if (size < 0 && (rank = env_count("SLURM_LOCALID")) >= 0) {
		int node = env_count("SLURM_NODEID");
		size = node < 0 ? -1 : slurm_tasks_on(getenv("SLURM_STEP_TASKS_PER_NODE"), node);
	}
	if (size < 1 || rank >= size)
		return 1;
	*local = rank;
	return size;
}

int halo_node_share(int n, int local, int ranks, int *first)
{
	*first = 0;
	if (n <= 0)
		return 0;
	if (ranks <= 1)
		return n;
	if (n < ranks) {
		*first = local % n;
		return 1;
	}
	*first = (int)((long)local * n / ranks);
	return (int)((long)(local + 1) * n / ranks) - *first;
}

/* Whether the user chose where StarPU's workers run. */
static int bound_by_user(const char *const *vars)
{
	for (; *vars; vars++) {
		const char *v = getenv(*vars);
		if (v && *v)
			return 1;
	}
	return 0;
}

int halo__node_bind(void)
{
	static const char *const cpu_vars[] = {"STARPU_WORKERS_CPUID", "STARPU_WORKERS_COREID",
					       "STARPU_WORKERS_GETBIND", "STARPU_WORKERS_NOBIND",
					       NULL};
	if (halo__runtime_launched_ranks() < 2)
		return 0;
	hwloc_topology_t t;
	hwloc_bitmap_t mask = hwloc_bitmap_alloc(), set = hwloc_bitmap_alloc();
	int loaded = !hwloc_topology_init(&t) && !hwloc_topology_load(t), count = 0;
	/* The cores this rank was given (srun --cpus-per-task, mpirun
	 * --bind-to socket, taskset), where that is more than one: Open MPI
	 * binds each of two ranks or fewer to a core of its own by default,
	 * which would leave the rest of the node idle; that is taken as
	 * the whole node. The ranks given the same cores share them out. */
	if (loaded && mask && set && hwloc_get_cpubind(t, mask, HWLOC_CPUBIND_THREAD) == 0)
		hwloc_bitmap_and(mask, mask, hwloc_get_root_obj(t)->cpuset);
	if (loaded && mask && hwloc_get_nbobjs_inside_cpuset_by_type(t, mask, HWLOC_OBJ_CORE) < 2)
		hwloc_bitmap_copy(mask, hwloc_get_root_obj(t)->cpuset);
	char *key = NULL;
	if (loaded && mask && hwloc_bitmap_asprintf(&key, mask) < 0)
		key = NULL;
	int index, peers = halo__mpi_node_peers(key ? key : "", &index); /* every rank */
	free(key);
	if (loaded && mask && set && !bound_by_user(cpu_vars)) {
		int first, n = hwloc_get_nbobjs_inside_cpuset_by_type(t, mask, HWLOC_OBJ_CORE);
		count = halo_node_share(n, index, peers, &first);
		for (int i = first; i < first + count; i++)
			hwloc_bitmap_or(set, set, hwloc_get_obj_inside_cpuset_by_type(
							  t, mask, HWLOC_OBJ_CORE, (unsigned)i)->cpuset);
		/* StarPU then sees only these cores (its topology restricted
		 * to the main thread's binding): its workers, its MPI thread
		 * and its GPUs' threads all keep to them. */
		if (count && hwloc_set_cpubind(t, set, HWLOC_CPUBIND_THREAD) == 0)
			setenv("STARPU_WORKERS_GETBIND", "1", 1);
		else
			count = 0;
	}
	hwloc_bitmap_free(mask);
	hwloc_bitmap_free(set);
	if (loaded)
		hwloc_topology_destroy(t);
	return count;
}

int halo_node_gpus(int gpus, int *first)
{
	int local, ranks = halo_node_ranks(&local);
	const char *own = getenv("STARPU_WORKERS_CUDAID");
	*first = 0;
	if (ranks < 2 || gpus < 2 || (own && *own))
		return gpus;
	return halo_node_share(gpus, local, ranks, first);
}

int halo_node_gpu_sharers(int dev, int gpus, int ranks)
{
	if (gpus <= 0 || ranks <= gpus || dev < 0 || dev >= gpus)
		return 1;
	return ranks / gpus + (dev < ranks % gpus);
}

/* Where ranks share a GPU, each StarPU may fill only its part of it: each
 * would take 90 % of the whole, and the second's allocations failed. A
 * limit the user set wins. */
static void gpu_memory_share(int gpus, int peers)
{
#ifdef HALO_USE_CUDA
	const char *all = getenv("STARPU_LIMIT_CUDA_MEM");
	if (all && *all)
		return;
	for (int d = 0; d < gpus; d++) {
		char name[48], value[32];
		snprintf(name, sizeof name, "STARPU_LIMIT_CUDA_%d_MEM", d);
		struct cudaDeviceProp p;
		const char *set = getenv(name);
		if ((set && *set) || cudaGetDeviceProperties(&p, d) != cudaSuccess)
			continue;
		/* StarPU keeps a tenth of the GPU free for what it does not
		 * count (cuFFT's work areas) only where no limit is set. */
		snprintf(value, sizeof value, "%llu",
			 (unsigned long long)(p.totalGlobalMem >> 20) * 9 / 10 /
				 (unsigned)halo_node_gpu_sharers(d, gpus, peers));
		setenv(name, value, 1);
	}
#else
	(void)gpus;
	(void)peers;
#endif
}

int halo__node_gpus_set(int gpus, int want)
{
	/* The ranks that see the same GPUs share them out; where the
	 * launcher gave each its own (CUDA_VISIBLE_DEVICES per task), each
	 * keeps its own. */
	const char *visible = getenv("CUDA_VISIBLE_DEVICES"), *own = getenv("STARPU_WORKERS_CUDAID");
	int index, peers = halo__mpi_node_peers(visible ? visible : "", &index); /* every rank */
	if (peers < 2 || (own && *own))
		return want;
	if (peers > gpus && want != 0)
		gpu_memory_share(gpus, peers);
	if (gpus < 2)
		return want;
	int first, count = halo_node_share(gpus, index, peers, &first);
	/* This rank's GPUs first; the others after them, for a --ncuda
	 * that asks for more. */
	char list[512];
	size_t len = 0;
	for (int i = 0; i < gpus && len + 12 < sizeof list; i++)
		len += (size_t)snprintf(list + len, sizeof list - len, "%s%d", i ? " " : "",
					(first + i) % gpus);
	setenv("STARPU_WORKERS_CUDAID", list, 1);
	return want >= 0 ? want : count;
}
