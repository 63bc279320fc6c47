/* The environment, checked before StarPU starts. StarPU 1.3 aborts with a
 * backtrace on a variable it reads as a number and cannot parse
 * (STARPU_LIMIT_CPU_MEM=abc), even where an option of halo's overrides it;
 * the names below are those StarPU 1.3.10 reads with starpu_get_env_number
 * and starpu_get_env_float_default, without their STARPU_ prefix, sorted.
 * halo's own HALO_* knobs are checked too, rather than ignored when bad. */
#include "config.h"
#include "runtime/env.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

static const char *const whole[] = {
	"BACKOFF_MAX", "BACKOFF_MIN", "BUS_CALIBRATE", "BUS_STATS", "CALIBRATE",
	"CALIBRATE_MINIMUM", "CATCH_SIGNALS", "CHECK_ENTIRE_PLATFORM", "COMM_STATS",
	"CUDA_PIPELINE", "CUDA_THREAD_PER_DEV", "CUDA_THREAD_PER_WORKER", "DIDUSE_BARRIER",
	"DISABLE_ASYNCHRONOUS_COPY", "DISABLE_ASYNCHRONOUS_CUDA_COPY",
	"DISABLE_ASYNCHRONOUS_MIC_COPY", "DISABLE_ASYNCHRONOUS_MPI_MS_COPY",
	"DISABLE_ASYNCHRONOUS_OPENCL_COPY", "DISABLE_KERNELS", "DISABLE_PINNING",
	"DISK_SWAP_SIZE", "DISPLAY_BINDINGS", "ENABLE_CUDA_GPU_GPU_DIRECT", "FXT_TRACE",
	"GENERATE_TRACE", "GLOBAL_ARBITER", "HISTORY_MAX_ERROR", "LIMIT_BANDWIDTH",
	"LIMIT_CPU_MEM", "LIMIT_CPU_NUMA_MEM", "LIMIT_CUDA_MEM", "LIMIT_MAX_SUBMITTED_TASKS",
	"LIMIT_MIN_SUBMITTED_TASKS", "LIMIT_OPENCL_MEM", "MAIN_THREAD_BIND",
	"MAIN_THREAD_COREID", "MAIN_THREAD_CPUID", "MALLOC_SIMULATION_FOLD", "MAX_MEMORY_USE",
	"MAX_PRIO", "MAX_WORKERSIZE", "MEMORY_STATS", "MINIMUM_AVAILABLE_MEM",
	"MINIMUM_CLEAN_BUFFERS", "MIN_PRIO", "MIN_WORKERSIZE", "MPI_CACHE", "MPI_CACHE_STATS",
	"MPI_COOP_SENDS", "MPI_DEBUG_LEVEL_MAX", "MPI_DEBUG_LEVEL_MIN",
	"MPI_DRIVER_CALL_FREQUENCY", "MPI_DRIVER_TASK_FREQUENCY", "MPI_FAKE_RANK",
	"MPI_FAKE_SIZE", "MPI_MASTER_NODE", "MPI_NDETACHED_SEND", "MPI_NOBIND",
	"MPI_NREADY_PROCESS", "MPI_PRIORITIES", "MPI_THREAD_COREID", "MPI_THREAD_CPUID",
	"NCPU", "NCPUS", "NCUDA", "NMIC", "NMICTHREADS", "NMPIMSTHREADS", "NMPI_MS",
	"NOPENCL", "NTASKS_THRESHOLD", "NTHREADS_PER_CORE", "NWORKER_PER_CUDA",
	"OPENCL_ONLY_ON_CPUS", "OPENCL_ON_CPUS", "OPENCL_PIPELINE", "PCI_FLAT",
	"PERF_MODEL_HOMOGENEOUS_CPU", "PERF_MODEL_HOMOGENEOUS_CUDA",
	"PERF_MODEL_HOMOGENEOUS_MIC", "PERF_MODEL_HOMOGENEOUS_MPI_MS",
	"PERF_MODEL_HOMOGENEOUS_OPENCL", "PREFETCH", "RESERVE_NCPU",
	"SCHED_GRAPH_TEST_DESCENDANTS", "SCHED_READY", "SCHED_SORTED_ABOVE",
	"SCHED_SORTED_BELOW", "SILENT", "SIMGRID", "SIMGRID_CUDA_MALLOC_COST",
	"SIMGRID_CUDA_QUEUE_COST", "SIMGRID_FETCHING_INPUT_COST", "SIMGRID_SCHED_COST",
	"SIMGRID_TASK_SUBMIT_COST", "SIMGRID_TRANSFER_COST", "SINGLE_COMBINED_WORKER",
	"STATS", "SYNTHESIZE_ARITY_COMBINED_WORKER", "TARGET_AVAILABLE_MEM",
	"TARGET_CLEAN_BUFFERS", "TASK_BREAK_ON_EXEC", "TASK_BREAK_ON_POP",
	"TASK_BREAK_ON_PUSH", "TASK_BREAK_ON_SCHED", "TASK_PROGRESS", "TRACE_BUFFER_SIZE",
	"USE_NUMA", "WATCHDOG_CRASH", "WATCHDOG_DELAY", "WORKERS_GETBIND", "WORKERS_NOBIND",
	"WORKER_TREE",
};

static const char *const real[] = {
	"EXP_LEN_THRESHOLD", "IDLE_POWER", "SCHED_ALPHA", "SCHED_BETA", "SCHED_GAMMA",
	"WINDOW_TIME_SIZE",
};

static int by_name(const void *key, const void *item)
{
	return strcmp(key, *(const char *const *)item);
}

static int listed(const char *name, const char *const *names, size_t n)
{
	return bsearch(name, names, n, sizeof *names, by_name) != NULL;
}

/* STARPU_LIMIT_CUDA_<n>_MEM and STARPU_LIMIT_CPU_NUMA_<n>_MEM. */
static int per_device_limit(const char *name)
{
	const char *heads[] = {"LIMIT_CUDA_", "LIMIT_CPU_NUMA_"};
	for (int i = 0; i < 2; i++) {
		size_t k = strlen(heads[i]);
		if (strncmp(name, heads[i], k))
			continue;
		const char *p = name + k;
		while (isdigit((unsigned char)*p))
			p++;
		return p > name + k && !strcmp(p, "_MEM");
	}
	return 0;
}

static int is_in(const char *v, long lo, long hi)
{
	char *end;
	long n = strtol(v, &end, 10);
	return *v && !*end && n >= lo && n <= hi;
}

/* As StarPU reads them: an empty value is 0. */
static int is_whole(const char *v)
{
	return !*v || is_in(v, 0, LONG_MAX);
}

static int is_real(const char *v)
{
	char *end;
	strtof(v, &end);
	return !*end;
}

/* STARPU_WORKERS_CPUID's list: numbers or ranges (N-M, N-), by spaces or
 * commas; StarPU asserts where its first entry is not a number. */
static int is_cpu_list(const char *v)
{
	char *end;
	int n = 0;
	while (*v) {
		strtol(v, &end, 10);
		if (end == v)
			return 0;
		v = end;
		if (*v == '-') {
			strtol(++v, &end, 10);
			v = end;
		}
		while (*v == ' ' || *v == ',')
			v++;
		n++;
	}
	return n > 0;
}

static int halo_knobs_check(halo_error_t *err)
{
	static const struct {
		const char *name, *want;
		long lo, hi;       /* a whole number in [lo, hi]; or */
		const char *words; /* one of these, '|'-separated */
	} knobs[] = {
		{"HALO_INFLIGHT", "a number of chunks (1 to 1048576)", 1, 1 << 20, NULL},
		{"HALO_GPUS_LEAD", "0 or 1", 0, 1, NULL},
		{"HALO_HUGEPAGES", "0 or 1", 0, 1, NULL},
		{"HALO_SYNC", "0 or 1", 0, 1, NULL},
		{"HALO_INTERRUPT_GRACE", "seconds (0 to 86400)", 0, 86400, NULL},
		{"HALO_FFTW_PLANNER", "estimate, measure or patient", 0, 0, "|estimate|measure|patient|"},
		{"HALO_CUFFT_CALLBACKS", "0, load, store or 1", 0, 0, "|0|load|store|1|"},
		{"HALO_CUDA_GRAPHS", "0 or 1", 0, 1, NULL},
	};
	for (size_t i = 0; i < sizeof knobs / sizeof *knobs; i++) {
		const char *v = getenv(knobs[i].name);
		if (!v || !*v)
			continue;
		int ok;
		if (knobs[i].words) {
			char word[64];
			snprintf(word, sizeof word, "|%s|", v);
			ok = !strchr(v, '|') && strstr(knobs[i].words, word);
		} else {
			ok = is_in(v, knobs[i].lo, knobs[i].hi);
		}
		if (!ok)
			return halo_error_set(err, HALO_EINVAL, "%s='%.40s': not %s", knobs[i].name, v,
					      knobs[i].want);
	}
	return HALO_OK;
}

int halo__env_check(halo_error_t *err)
{
	int rc = halo_knobs_check(err);
	if (rc)
		return rc;
	for (char **e = environ; e && *e; e++) {
		if (strncmp(*e, "STARPU_", 7))
			continue;
		const char *eq = strchr(*e, '=');
		char name[128];
		if (!eq || (size_t)(eq - *e) >= sizeof name)
			continue;
		memcpy(name, *e, (size_t)(eq - *e));
		name[eq - *e] = '\0';
		const char *v = eq + 1, *want = NULL, *short_name = name + 7;
		if (listed(short_name, whole, sizeof whole / sizeof *whole) ||
		    per_device_limit(short_name) || !strcmp(short_name, "WATCHDOG_TIMEOUT"))
			want = is_whole(v) ? NULL : "a whole number, 0 or more";
		else if (listed(short_name, real, sizeof real / sizeof *real))
			want = is_real(v) ? NULL : "a number";
		else if (!strcmp(short_name, "WORKERS_CPUID") || !strcmp(short_name, "WORKERS_COREID"))
			want = is_cpu_list(v) ? NULL : "a list of CPU numbers (0,2,4 or 0-7)";
		if (want)
			return halo_error_set(err, HALO_EINVAL, "%s='%.40s': StarPU needs %s there",
					      name, v, want);
	}
	return HALO_OK;
}
