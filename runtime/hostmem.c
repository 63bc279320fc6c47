/* Host buffers for StarPU's data, in transparent huge pages.
 *
 * Every chunk buffer StarPU allocates in main memory comes through these
 * hooks. A buffer of 2 MiB or more is aligned to 2 MiB and advised
 * MADV_HUGEPAGE before anything touches it, so that first touches fault
 * once per 2 MiB instead of once per 4 KiB page: where faults are dear (a
 * VM's cost ~20 us each) rechunking 2 GiB of planes into cubes on 2 cores
 * took 1.47 s against 1.82 s. Where the kernel has THP off, the advice is
 * ignored; HALO_HUGEPAGES=0 turns it off for halo (a kernel that compacts
 * memory to find huge pages can stall a fault). Installed after
 * starpu_init, and only where StarPU would itself have used posix_memalign
 * and free: its pinning off (halo's default; pinned buffers are
 * cudaHostAlloc's), one NUMA node (on several, StarPU binds each buffer to
 * its node with hwloc), and no simulation
 * (SimGrid's StarPU folds its buffers onto one file). */
#include "config.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <starpu.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#ifndef STARPU_SIMGRID
#define HUGE_PAGE ((size_t)2 << 20)

static int host_alloc(unsigned node, void **a, size_t n, int flags)
{
	(void)node;
	(void)flags;
	size_t align = n >= HUGE_PAGE ? HUGE_PAGE : 64; /* 64: any SIMD load */
	if (posix_memalign(a, align, n ? n : 1))
		return -ENOMEM;
#ifdef MADV_HUGEPAGE
	if (align == HUGE_PAGE)
		madvise(*a, n, MADV_HUGEPAGE);
#endif
	return 0;
}

static int host_free(unsigned node, void *a, size_t n, int flags)
{
	(void)node;
	(void)n;
	(void)flags;
	free(a);
	return 0;
}

void halo__hostmem_install(void)
{
	const char *pin = getenv("STARPU_DISABLE_PINNING"), *huge = getenv("HALO_HUGEPAGES");
	if (pin && atoi(pin) != 0 && starpu_memory_nodes_get_numa_count() == 1 &&
	    !(huge && strcmp(huge, "0") == 0))
		starpu_malloc_set_hooks(host_alloc, host_free);
}
#else
void halo__hostmem_install(void)
{
}
#endif
