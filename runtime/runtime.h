/* runtime/: everything that talks to StarPU and hwloc. This private header
 * extends the public runtime API in halo.h with what cli/ and tests need to
 * describe the machine. */
#ifndef HALO_RUNTIME_H
#define HALO_RUNTIME_H

#include <stdint.h>

#include "halo.h"

typedef struct halo_worker_info {
	int id;               /* StarPU worker id */
	int is_cuda;          /* 0: CPU core, 1: CUDA device */
	int devid;            /* CUDA device number, or CPU index */
	int bindid;           /* the OS index of the PU its thread is bound to; -1: none */
	int memory_node;      /* StarPU memory node the worker computes from */
	uint64_t memory_bytes;/* size of that memory node as StarPU sees it */
	char name[128];       /* StarPU's worker name, e.g. "CUDA 0 (H100 ...)" */
	double peak_gbs;      /* CUDA: the device's peak memory bandwidth in GB/s
			       * (memory clock x bus width x 2); 0 for CPUs */
} halo_worker_info_t;

/* Chunk buffers in huge pages, where StarPU would use plain malloc
 * (runtime/hostmem.c); called once StarPU runs. */
void halo__hostmem_install(void);

/* The machine's (OS) index of the first PU a worker is bound to. */
int halo_worker_pu(int worker);
/* Describes the workers the running StarPU started. *out is malloc'ed;
 * the caller frees. */
int halo__runtime_workers(halo_worker_info_t **out, int *count, halo_error_t *err);

/* How many processes mpirun (or srun) started, from their environment,
 * before MPI is initialised; 1 without one. */
int halo__runtime_launched_ranks(void);
/* This process's rank among them, from the same environment; 0 without
 * mpirun or without MPI support. */
int halo__runtime_launched_rank(void);
/* Whether halo runs on StarPU-MPI: started by mpirun (or srun with PMI)
 * and built with it. */
int halo__runtime_mpi_launched(void);

/* The ranks mpirun or srun started on this node and this one's index
 * among them (*local), from their environment; 1 and 0 without one
 * (runtime/node.c). */
int halo_node_ranks(int *local);
/* Rank local's share of n things (cores, GPUs) split among ranks: a
 * contiguous run of the count returned from *first, or where there are
 * fewer things than ranks, one, shared. */
int halo_node_share(int n, int local, int ranks, int *first);
/* Under mpirun, and unless a STARPU_WORKERS_* variable binds the
 * workers: binds the calling thread to this rank's share of the cores it
 * was given (of the node's where that is one core or none), shared among
 * the ranks of the node given the same, and tells StarPU to keep to it.
 * Every rank calls it, after MPI_Init and before StarPU starts. Returns
 * the cores bound to, 0 where it binds nothing. */
int halo__node_bind(void);
/* This rank's share of the node's gpus GPUs by the launcher's variables
 * (the budgets' estimate, before MPI starts): the count, from device
 * *first on (wrapping). All of them with one rank on the node or where
 * STARPU_WORKERS_CUDAID says which to use. */
int halo_node_gpus(int gpus, int *first);
/* Has StarPU open this rank's share of the GPUs it sees alike with other
 * ranks of the node first (STARPU_WORKERS_CUDAID). Returns the GPU
 * workers to start: want where given (>= 0), else the share. Every rank
 * calls it, after MPI_Init and before StarPU starts. */
int halo__node_gpus_set(int gpus, int want);
/* How many of ranks share GPU dev of gpus, where there are fewer GPUs
 * than ranks (halo_node_share's "one, shared"); 1 otherwise. */
int halo_node_gpu_sharers(int dev, int gpus, int ranks);

/* --ncpu 0 with GPUs: the compute runs on the GPUs alone. Reading and
 * writing chunks are CPU codelets, so a quarter of the cores (1 to 8, and
 * at least 4 per GPU) are started as CPU workers for them, and every task
 * whose codelet has a CUDA implementation is kept to the GPUs
 * (halo_task_submit). */
int halo_runtime_gpus_alone(void);

/* How many times faster than a CPU worker a GPU worker should run the
 * run's heaviest task, by StarPU's performance models (0: not known). The
 * kernel that submits that task (rl) notes it at its first chunk, and the
 * executor, on the same thread, sizes the chunks in flight by it. */
void halo_runtime_gpu_speedup_set(double speedup);
double halo_runtime_gpu_speedup(void);

/* CPUs and GPUs together where the GPUs do all the compute: StarPU's
 * models say a GPU runs the heaviest task so much faster than a CPU
 * worker that the CPUs would get none of it (the executor decides, with
 * the chunks in flight). Then a run goes as with --ncpu 0: tasks a GPU
 * can take go to the GPUs, and the I/O to as many CPU workers as --ncpu 0
 * starts; on the H100, 15 CPU workers reading at once queued the GPU's
 * first transfers behind their pinned allocations (StarPU then pinned
 * every host buffer) for half a second, and
 * gathers made on CPUs sent haloed blocks over PCIe (halo_task_submit). */
void halo_runtime_gpus_lead_set(int lead);
int halo_runtime_gpus_lead(void);
/* The CPU workers chunk I/O goes to then (a StarPU workerids mask). */
const uint32_t *halo__runtime_io_workers(unsigned *len);

/* A worker count as StarPU will take it: the option when given (>= 0),
 * else the environment variable env (STARPU_NCPU, STARPU_NCUDA), else -1
 * (StarPU's default: all). */
int halo_runtime_worker_count(int given, const char *env);

/* The GPUs StarPU would use with these options (--ncuda N: the first N
 * visible devices), asked of CUDA before StarPU starts: returns how many,
 * the smallest one's memory in *min_bytes (0 when none) and, when gbs is
 * not NULL, their peak memory bandwidths added up in *gbs (GB/s). */
int halo_runtime_gpu_memory(const halo_runtime_opts_t *opts, uint64_t *min_bytes, double *gbs);

/* Warns (rank 0) where --memory is more than this process can use:
 * halo_runtime_init does, for the commands that give it --memory. */
void halo_runtime_memory_warn(uint64_t memory);

/* Removes what the runtime keeps on disk for itself (the FxT folder of a
 * traced run), for a run ended while stuck (util/signals.h). */
void halo_runtime_abandon(void);

/* halo_output_commit and halo_outputs_commit (io/outdir.h) with StarPU's
 * workers paused, for when every task is done: see runtime.c for why. */
struct halo_output;
int halo_runtime_output_commit(struct halo_output *out, halo_error_t *err);
int halo_runtime_outputs_commit(struct halo_output **outs, int n, halo_error_t *err);

typedef struct halo_topology {
	int packages, numa_nodes, cores, pus;
	uint64_t ram_bytes;   /* the kernel's figure */
	uint64_t numa_bytes;  /* in hwloc's NUMA nodes: on some VMs far less */
	char hwloc_version[32];
	char cpu_model[128];  /* first package's CPUModel info, or "" */
} halo_topology_t;

/* Reads the machine's topology with hwloc. The topology is loaded once per
 * process and cached, since loading it costs milliseconds. */
int halo_topology_get(halo_topology_t *out, halo_error_t *err);

/* The file that marks a --trace-fxt folder as halo's. */
#define HALO_FXT_MARK ".halo-fxt"

/* The online CPUs and the memory in bytes, which the defaults (workers,
 * memory budgets) are worked out from. The memory is the kernel's figure,
 * or hwloc's NUMA nodes' where smaller, since StarPU never allocates more
 * main memory than those hold (on the H100 device machine, a VM: 15.7 of
 * its 126 GiB). In halo-sim they are the simulated machine's
 * (HALO_SIM_CORES, HALO_SIM_RAM from halo bench --simulate). The cores
 * are this rank's share where mpirun started several on the node. */
long halo_machine_cores(void);
uint64_t halo_machine_ram(void);
/* What this process may use, which budgets are worked out from: the RAM
 * (its share where mpirun started several ranks on the node), or the room
 * left under its address-space limit (ulimit -v, a batch
 * system's vmem) where that is less. */
uint64_t halo_machine_memory(void);
/* The address space left under RLIMIT_AS now, at least 1; 0 without a
 * limit. */
uint64_t halo_machine_address_room(void);

typedef struct halo_libraries {
	char starpu[32];
	int starpu_cuda, starpu_fxt, starpu_mpi; /* compiled into StarPU */
	int halo_cuda;                           /* halo's CUDA codelets built */
	char fftw[64], blosc[32], tiff[32], jansson[32], hwloc[32];
	char cufft[32], cuda_runtime[32], cuda_driver[32]; /* "" without CUDA */
} halo_libraries_t;

void halo__libraries_get(halo_libraries_t *out);

#endif
