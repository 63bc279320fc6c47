/* The machine as hwloc sees it: packages, NUMA nodes, cores, PUs and the
 * memory in the NUMA nodes, which on some VMs is far less than the
 * kernel's figure (StarPU is patched to count the larger).
 *
 * StarPU binds its workers with hwloc too, so halo's counts and StarPU's
 * placement agree. The topology is loaded once and kept for the process;
 * halo never changes it. */
#include "config.h"
#include "runtime/runtime.h"

#include <hwloc.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static pthread_once_t topo_once = PTHREAD_ONCE_INIT;
static halo_topology_t topo_cached;
static int topo_rc;

static int count_type(hwloc_topology_t t, hwloc_obj_type_t type)
{
	int n = hwloc_get_nbobjs_by_type(t, type);
	return n < 0 ? 0 : n;
}

static uint64_t kernel_ram(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
	return pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : 0;
}

static void topo_load(void)
{
	hwloc_topology_t t;
	if (hwloc_topology_init(&t) < 0 || hwloc_topology_load(t) < 0) {
		topo_rc = HALO_ERUNTIME;
		return;
	}
	halo_topology_t *o = &topo_cached;
	o->packages = count_type(t, HWLOC_OBJ_PACKAGE);
	o->numa_nodes = count_type(t, HWLOC_OBJ_NUMANODE);
	o->cores = count_type(t, HWLOC_OBJ_CORE);
	o->pus = count_type(t, HWLOC_OBJ_PU);
	o->numa_bytes = hwloc_get_root_obj(t)->total_memory;
	o->ram_bytes = kernel_ram();
	unsigned v = hwloc_get_api_version();
	snprintf(o->hwloc_version, sizeof o->hwloc_version, "%u.%u.%u",
		 v >> 16, (v >> 8) & 0xff, v & 0xff);
	hwloc_obj_t pkg = hwloc_get_obj_by_type(t, HWLOC_OBJ_PACKAGE, 0);
	const char *model = pkg ? hwloc_obj_get_info_by_name(pkg, "CPUModel") : NULL;
	/* CPUID pads its brand string with spaces. */
	snprintf(o->cpu_model, sizeof o->cpu_model, "%s", model ? model : "");
	for (size_t n = strlen(o->cpu_model); n > 0 && o->cpu_model[n - 1] == ' '; n--)
		o->cpu_model[n - 1] = '\0';
	hwloc_topology_destroy(t);
}

static long sim_value(const char *name)
{
#ifdef HALO_SIMULATE
	const char *v = getenv(name);
	return v ? atol(v) : 0;
#else
	(void)name;
	return 0;
#endif
}

long halo_machine_cores(void)
{
	long n = sim_value("HALO_SIM_CORES");
	if (n > 0)
		return n;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	int local, ranks = halo_node_ranks(&local), first;
	return ranks > 1 && n > 0 && n <= INT_MAX ? halo_node_share((int)n, local, ranks, &first) : n;
}

uint64_t halo_machine_ram(void)
{
	long sim = sim_value("HALO_SIM_RAM");
	if (sim > 0)
		return (uint64_t)sim;
	uint64_t ram = kernel_ram();
	pthread_once(&topo_once, topo_load);
	uint64_t numa = topo_rc ? 0 : topo_cached.numa_bytes;
	return numa > ram ? numa : ram;
}

uint64_t halo_machine_address_room(void)
{
	struct rlimit as;
	if (getrlimit(RLIMIT_AS, &as) != 0 || as.rlim_cur == RLIM_INFINITY)
		return 0;
	unsigned long long pages = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f) {
		if (fscanf(f, "%llu", &pages) != 1)
			pages = 0;
		fclose(f);
	}
	long size = sysconf(_SC_PAGE_SIZE);
	uint64_t used = (uint64_t)pages * (uint64_t)(size > 0 ? size : 4096);
	return (uint64_t)as.rlim_cur > used ? (uint64_t)as.rlim_cur - used : 1;
}

/* Under an address-space limit StarPU's allocations failed past it: it
 * asserted, or its workers spun retrying forever. */
uint64_t halo_machine_memory(void)
{
	int local;
	uint64_t ram = halo_machine_ram() / (uint64_t)halo_node_ranks(&local);
	uint64_t room = halo_machine_address_room();
	return !room ? ram : ram && ram < room ? ram : room;
}

int halo_topology_get(halo_topology_t *out, halo_error_t *err)
{
	pthread_once(&topo_once, topo_load);
	if (topo_rc)
		return halo_error_set(err, topo_rc, "hwloc could not read this machine's topology");
	*out = topo_cached;
	return HALO_OK;
}
