/* Ranks that mpirun or srun starts on one node share its cores, GPUs and
 * memory. StarPU 1.3 binds every rank's CPU workers from the node's first
 * core on and opens its GPUs from the first on, so two ranks of a node
 * worked on the same cores and the same GPU while the others idled, and
 * each took the memory budget of a whole node. Each rank gets its own
 * slice of them instead, unless the user bound the workers himself. */
#include "config.h"
#include "runtime/runtime.h"

#include <hwloc.h>
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
	int local, ranks = halo_node_ranks(&local);
	if (ranks < 2 || bound_by_user(cpu_vars))
		return 0;
	hwloc_topology_t t;
	if (hwloc_topology_init(&t))
		return 0;
	hwloc_bitmap_t set = hwloc_bitmap_alloc();
	int count = 0;
	if (set && !hwloc_topology_load(t)) {
		int first, n = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE);
		count = halo_node_share(n, local, ranks, &first);
		for (int i = first; i < first + count; i++)
			hwloc_bitmap_or(set, set, hwloc_get_obj_by_type(t, HWLOC_OBJ_CORE, (unsigned)i)->cpuset);
		/* StarPU then sees only these cores (its topology restricted
		 * to the main thread's binding): its workers, its MPI thread
		 * and its GPUs' threads all keep to them. */
		if (count && hwloc_set_cpubind(t, set, HWLOC_CPUBIND_THREAD) == 0)
			setenv("STARPU_WORKERS_GETBIND", "1", 1);
		else
			count = 0;
	}
	hwloc_bitmap_free(set);
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

int halo__node_gpus_set(int gpus, int want)
{
	int first, count = halo_node_gpus(gpus, &first);
	if (count == gpus)
		return want;
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
