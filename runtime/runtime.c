/* StarPU's life cycle for one halo process.
 *
 * halo's options (--ncpu, --ncuda, --sched) become a starpu_conf; options the
 * user did not give are left to StarPU's defaults and STARPU_* environment
 * variables, so that people who know StarPU keep their habits. The scheduler
 * name is checked against StarPU's own list first because StarPU answers an
 * unknown name with a warning and a silent fallback, which would make a
 * benchmark of "heft" quietly measure something else.
 */
#include "config.h"
#include "runtime/runtime.h"
#include "runtime/trace.h"
#include "runtime/fxt.h"
#include "runtime/mpi.h"
#include "runtime/env.h"
#include "io/outdir.h"
#include "io/fs.h"
#include "util/signals.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <starpu.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef HALO_USE_CUDA
#include <cuda_runtime_api.h>
#endif
#ifdef HALO_HAVE_MPI
#include <mpi.h>
#include <starpu_mpi.h>
#endif

struct halo_runtime {
	char sched[64];
	char *trace; /* where to write the trace, or NULL */
	char *fxt;   /* where StarPU writes its FxT trace, or NULL */
	int fxt_tmp; /* fxt is halo's own folder, for the trace's transfers */
	int stopped; /* StarPU has been shut down */
	int mpi;     /* started under mpirun: StarPU-MPI, MPI initialised here */
	char *trace_final; /* rank 0 of several: the joined trace */
	int rank, ranks;
};

/* StarPU can only be initialised once at a time per process. */
static int runtime_active;
static int gpus_alone;

int halo_runtime_gpus_alone(void)
{
	return gpus_alone;
}

static double gpu_speedup;
static int gpus_lead;
static uint32_t io_mask[(STARPU_NMAXWORKERS + 31) / 32];
static unsigned io_mask_len;

/* The CPU workers for chunk I/O when gpus GPUs do the compute: a quarter
 * of the cores (1 to 8) and at least 4 per GPU. With one, an H100 waited
 * for reads and writes 37 % of a 20-iteration run of 64x256x256 chunks;
 * 4 kept it 82 % busy, and in halo-sim 4 for 8 of them took 0.97 s where
 * 8 took 0.51. */
static int io_worker_count(int gpus)
{
	long cores = halo_machine_cores();
	long n = cores >= 32 ? 8 : cores >= 8 ? cores / 4 : 1;
	return (int)(n > 4L * gpus ? n : 4L * gpus);
}

/* A StarPU 1.3 CPU worker with no task sleeps only while no data request
 * is pending on its memory node, which in a streaming run is never: the
 * CPU workers a GPU-led run leaves without work spun beside the I/O
 * workers and the GPU's, and on an H100 with 15 of them the run took 8 %
 * longer than with the I/O workers alone. Each is parked instead in a
 * task that waits until the mode ends; tasks are counted by generation
 * so that a mode ended and begun again parks afresh. */
static starpu_pthread_mutex_t park_lock = STARPU_PTHREAD_MUTEX_INITIALIZER;
static starpu_pthread_cond_t park_cond = STARPU_PTHREAD_COND_INITIALIZER;
static uintptr_t park_generation;

static void park_cpu(void *buffers[], void *arg)
{
	(void)buffers;
	starpu_pthread_mutex_lock(&park_lock);
	while (park_generation == (uintptr_t)arg)
		starpu_pthread_cond_wait(&park_cond, &park_lock);
	starpu_pthread_mutex_unlock(&park_lock);
}

static struct starpu_codelet park_cl = {
	.cpu_funcs = {park_cpu},
	.nbuffers = 0,
	.name = "park",
};

static int in_io_mask(int id)
{
	return (unsigned)id / 32 < io_mask_len && io_mask[id / 32] >> (id % 32) & 1;
}

static void park_idle_cpus(void)
{
#ifdef STARPU_SIMGRID
	return; /* simulated workers do not spin, and a parked one would need a model */
#endif
	/* Under MPI the tasks are rebuilt without their worker mask, so dmda
	 * could queue one behind a parked worker's park task: a deadlock. */
	if (halo__mpi_active())
		return;
	int ids[STARPU_NMAXWORKERS];
	int n = (int)starpu_worker_get_ids_by_type(STARPU_CPU_WORKER, ids, STARPU_NMAXWORKERS);
	starpu_pthread_mutex_lock(&park_lock);
	uintptr_t g = park_generation;
	starpu_pthread_mutex_unlock(&park_lock);
	for (int i = 0; i < n; i++) {
		if (in_io_mask(ids[i]))
			continue;
		struct starpu_task *t = starpu_task_create();
		if (!t)
			return; /* that worker spins: slower, not wrong */
		t->cl = &park_cl;
		t->cl_arg = (void *)g;
		t->execute_on_a_specific_worker = 1;
		t->workerid = (unsigned)ids[i];
		if (starpu_task_submit(t)) {
			t->destroy = 0;
			starpu_task_destroy(t);
		}
	}
}

static void unpark(void)
{
	starpu_pthread_mutex_lock(&park_lock);
	park_generation++;
	starpu_pthread_cond_broadcast(&park_cond);
	starpu_pthread_mutex_unlock(&park_lock);
}

void halo_runtime_gpus_lead_set(int lead)
{
	lead = lead && !gpus_alone && io_mask_len;
	if (lead && !gpus_lead)
		park_idle_cpus();
	else if (!lead && gpus_lead)
		unpark();
	gpus_lead = lead;
}

int halo_runtime_gpus_lead(void)
{
	return gpus_lead;
}

const uint32_t *halo__runtime_io_workers(unsigned *len)
{
	*len = io_mask_len;
	return io_mask;
}

void halo_runtime_gpu_speedup_set(double speedup)
{
	gpu_speedup = speedup;
}

double halo_runtime_gpu_speedup(void)
{
	return gpu_speedup;
}

void halo_runtime_opts_init(halo_runtime_opts_t *opts)
{
	memset(opts, 0, sizeof *opts);
	opts->ncpu = -1;
	opts->ncuda = -1;
}

const char *const *halo_sched_names(void)
{
	/* Built once; StarPU's table is static, so the names stay valid. */
	static const char *names[64];
	if (!names[0]) {
		struct starpu_sched_policy **p = starpu_sched_get_predefined_policies();
		size_t n = 0;
		for (; p && *p && n + 1 < sizeof names / sizeof names[0]; p++)
			names[n++] = (*p)->policy_name;
		names[n] = NULL;
	}
	return names;
}

static int sched_known(const char *name)
{
	for (const char *const *n = halo_sched_names(); *n; n++)
		if (strcmp(*n, name) == 0)
			return 1;
	return 0;
}

int halo_sched_check(const char *name, const char *source, halo_error_t *err)
{
	/* StarPU's heteroprio takes its priority buckets from the application
	 * (starpu_sched_ctx's init callback); without them it aborts on the
	 * first task a GPU could run (seen in halo-sim with a GPU). */
	if (strcmp(name, "heteroprio") == 0)
		return halo_error_set(err, HALO_EINVAL, "%s: heteroprio needs per-codelet priority "
				      "buckets, which halo does not set up; modular-heteroprio, dmda "
				      "or dmdas schedule halo's tasks", source);
	/* StarPU's test of its task-graph support starts a task only once
	 * the application says the graph is complete, which a streaming
	 * run never does: it spun forever. */
	if (strcmp(name, "graph_test") == 0)
		return halo_error_set(err, HALO_EINVAL, "%s: graph_test waits for the whole task "
				      "graph before it runs a task, which halo submits as it goes; "
				      "dmda, dmdas or lws schedule halo's tasks", source);
	if (sched_known(name))
		return HALO_OK;
	/* The modular-* variants are many: named once, after their prefix.
	 * heteroprio and graph_test, refused above, are not offered. */
	char list[400] = "", modular[400] = "";
	size_t len = 0, mlen = 0;
	for (const char *const *n = halo_sched_names(); *n; n++) {
		int mod = strncmp(*n, "modular-", 8) == 0;
		const char *shown = mod ? *n + 8 : *n;
		char *to = mod ? modular : list;
		size_t *at = mod ? &mlen : &len;
		if (strcmp(*n, "heteroprio") != 0 && strcmp(*n, "graph_test") != 0 &&
		    *at + strlen(shown) + 3 < sizeof list)
			*at += (size_t)snprintf(to + *at, sizeof list - *at, "%s%s", *at ? ", " : "",
						shown);
	}
	return halo_error_set(err, HALO_EINVAL, "%s: unknown scheduler '%.64s' (known: %s; "
			      "modular-{%s})", source, name, list, modular);
}

int halo__runtime_mpi_launched(void)
{
#ifdef HALO_HAVE_MPI
	return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
#else
	return 0;
#endif
}

int halo__runtime_launched_rank(void)
{
	if (!halo__runtime_mpi_launched())
		return 0;
	const char *r = getenv("OMPI_COMM_WORLD_RANK");
	r = r ? r : getenv("PMI_RANK");
	r = r ? r : getenv("PMIX_RANK");
	return r ? atoi(r) : 0;
}

int halo__runtime_launched_ranks(void)
{
	const char *n = getenv("OMPI_COMM_WORLD_SIZE");
	n = n ? n : getenv("PMI_SIZE");
	return n && atoi(n) > 1 ? atoi(n) : 1;
}

/* starpu_init, or under mpirun MPI and StarPU-MPI. halo initialises MPI
 * itself, with MPI_THREAD_MULTIPLE, so that its own collectives (the
 * run's outcome, scalar results) may run beside StarPU-MPI's thread.
 * Returns StarPU's code, or -EPROTO with err set. */
static int start(halo_runtime_t *rt, struct starpu_conf *conf, halo_error_t *err)
{
#ifdef HALO_HAVE_MPI
	if (halo__runtime_mpi_launched()) {
		int provided = 0;
		if (MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS) {
			halo_error_set(err, HALO_ERUNTIME, "MPI_Init_thread failed");
			return -EPROTO;
		}
		if (provided < MPI_THREAD_MULTIPLE) {
			MPI_Finalize();
			halo_error_set(err, HALO_ERUNTIME, "this MPI library does not support "
				       "MPI_THREAD_MULTIPLE, which halo needs beside StarPU-MPI");
			return -EPROTO;
		}
		MPI_Comm_rank(MPI_COMM_WORLD, &rt->rank);
		MPI_Comm_size(MPI_COMM_WORLD, &rt->ranks);
		int cores = halo__node_bind(), gpus = 0;
#ifdef HALO_USE_CUDA
		if (conf->ncuda != 0 && cudaGetDeviceCount(&gpus) != cudaSuccess)
			gpus = 0;
		conf->ncuda = halo__node_gpus_set(gpus, conf->ncuda);
		gpus = conf->ncuda >= 0 && conf->ncuda < gpus ? conf->ncuda : gpus;
#endif
		/* StarPU leaves a core to each GPU's thread and one to
		 * StarPU-MPI's, and starts no CPU worker where that is all
		 * of the rank's share. */
		if (cores && conf->ncpus == -1 && cores - gpus - 1 < 1)
			conf->ncpus = 1;
		/* A lone rank talks to no one: its communication thread need
		 * not keep a core of its own from the workers. */
		halo_topology_t topo;
		if (rt->ranks == 1 && conf->ncpus == -1 && !halo_topology_get(&topo, NULL))
			conf->ncpus = topo.cores - gpus > 1 ? topo.cores - gpus : 1;
		int rc = starpu_mpi_init_conf(NULL, NULL, 0, MPI_COMM_WORLD, conf);
		if (rc) {
			MPI_Finalize();
			return rc;
		}
		rt->mpi = 1;
		halo__mpi_set(rt->rank, rt->ranks);
		/* Temporary outputs are named after rank 0's run. */
		halo_output_set_run_id(halo__mpi_bcast_long(halo_output_run_id()));
		return rc;
	}
#endif
	(void)rt;
	(void)err;
	return starpu_init(conf);
}

/* A device's peak memory bandwidth in GB/s: memory clock x bus width x 2
 * (double data rate); 0 when CUDA does not say. */
static double peak_gbs(int dev)
{
	int khz = 0, bits = 0;
#ifdef HALO_USE_CUDA
	if (cudaDeviceGetAttribute(&khz, cudaDevAttrMemoryClockRate, dev) != cudaSuccess ||
	    cudaDeviceGetAttribute(&bits, cudaDevAttrGlobalMemoryBusWidth, dev) != cudaSuccess)
		return 0;
#endif
	(void)dev;
	return 2.0 * khz * 1e3 * (bits / 8.0) / 1e9;
}

int halo_runtime_worker_count(int given, const char *env)
{
	const char *v = getenv(env);
	if (given >= 0 || !v || !*v)
		return given;
	char *end;
	long n = strtol(v, &end, 10);
	return *end || n < 0 || n > INT_MAX ? -1 : (int)n;
}

int halo_runtime_gpu_memory(const halo_runtime_opts_t *opts, uint64_t *min_bytes, double *gbs)
{
	*min_bytes = 0;
	if (gbs)
		*gbs = 0;
	int used = 0;
#ifdef HALO_USE_CUDA
	int n = 0, want = halo_runtime_worker_count(opts->ncuda, "STARPU_NCUDA");
	if (want == 0 || cudaGetDeviceCount(&n) != cudaSuccess)
		n = 0;
	/* Several ranks on the node: this one's GPUs (halo_node_gpus), and
	 * its part of one that ranks share. */
	int local, ranks = halo_node_ranks(&local), first, share = halo_node_gpus(n, &first);
	int use = want > 0 ? (want < n ? want : n) : share;
	for (int i = 0; i < use; i++) {
		int d = (first + i) % n;
		struct cudaDeviceProp p;
		if (cudaGetDeviceProperties(&p, d) != cudaSuccess)
			continue;
		uint64_t mine = (uint64_t)p.totalGlobalMem / (uint64_t)halo_node_gpu_sharers(d, n, ranks);
		if (!used || mine < *min_bytes)
			*min_bytes = mine;
		if (gbs)
			*gbs += peak_gbs(d);
		used++;
	}
#endif
	(void)opts;
	return used;
}

/* Whether data can move between memory nodes: a GPU StarPU may use, or
 * StarPU's out-of-core swap to disk. Decided before StarPU starts, since
 * FxT must be on from the start. */
static int several_memory_nodes(const halo_runtime_opts_t *opts)
{
	uint64_t gpu_bytes;
	return getenv("STARPU_DISK_SWAP") || halo_runtime_gpu_memory(opts, &gpu_bytes, NULL) > 0;
}

/* StarPU keeps its performance models and bus calibration in the first
 * of $XDG_CACHE_HOME, $STARPU_HOME and $HOME that is set (StarPU 1.3's
 * order), under .starpu, and aborts when it cannot create them there.
 * halo takes the first of them, in that order, where .starpu can be
 * written (unsetting the ones before it, which StarPU would take); else
 * a private folder under $TMPDIR or /tmp; with none of those either, it
 * says so instead of letting StarPU abort. Writable means room for 4 KiB
 * too: on a full disk StarPU's first bus calibration asserted. */
static int writable_dir(const char *dir)
{
	if (!halo_fs_is_dir(dir) || access(dir, W_OK | X_OK) != 0)
		return 0;
	char probe[4200];
	snprintf(probe, sizeof probe, "%s/.halo-probe-%ld", dir, (long)getpid());
	int fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return 0;
	static const char zeros[4096];
	int ok = write(fd, zeros, sizeof zeros) == (ssize_t)sizeof zeros;
	ok &= close(fd) == 0;
	unlink(probe);
	return ok;
}

/* An empty bus calibration file (a disk that filled as StarPU wrote it)
 * made every later start assert: StarPU measures again without it. */
static void drop_empty_bus_files(const char *sampling)
{
	char bus[4200];
	snprintf(bus, sizeof bus, "%s/bus", sampling);
	DIR *d = opendir(bus);
	for (struct dirent *e; d && (e = readdir(d));) {
		char file[4500];
		struct stat st;
		snprintf(file, sizeof file, "%s/%s", bus, e->d_name);
		if (e->d_name[0] != '.' && lstat(file, &st) == 0 && S_ISREG(st.st_mode) && !st.st_size)
			unlink(file);
	}
	if (d)
		closedir(d);
}

static int starpu_home_fallback(halo_error_t *err)
{
	/* Where the user chose a folder for the models, it is that or an
	 * error: StarPU aborted on one it could not write. */
	const char *models = getenv("STARPU_PERF_MODEL_DIR");
	if (models && !*models) /* StarPU would take it for "/" */
		unsetenv("STARPU_PERF_MODEL_DIR");
	else if (models) {
		halo_fs_mkdirs(models, NULL);
		if (!writable_dir(models))
			return halo_error_set(err, HALO_ERUNTIME, "STARPU_PERF_MODEL_DIR=%s: not a folder "
					      "halo can write StarPU's performance models in (or full)",
					      models);
		drop_empty_bus_files(models);
		return HALO_OK;
	}
	const char *names[] = {"XDG_CACHE_HOME", "STARPU_HOME", "HOME"};
	char dir[4096];
	struct stat st;
	for (int i = 0; i < 3; i++) {
		const char *home = getenv(names[i]);
		if (!home || !*home)
			continue;
		/* Made now to find out whether it can be (StarPU would make it). */
		snprintf(dir, sizeof dir, "%s/.starpu", home);
		if ((mkdir(dir, 0777) == 0 || errno == EEXIST) && writable_dir(dir)) {
			for (int j = 0; j < i; j++)
				unsetenv(names[j]);
			snprintf(dir, sizeof dir, "%s/.starpu/sampling", home);
			drop_empty_bus_files(dir);
			return HALO_OK;
		}
	}
	/* In a shared folder such as /tmp the name must be this user's own
	 * folder, not a link or another user's folder (lstat: a link swapped
	 * in after a check would send StarPU's files elsewhere; in a sticky
	 * folder no one else can rename the user's own entry). */
	const char *tmps[] = {getenv("TMPDIR"), "/tmp"};
	int taken = 0;
	for (int i = 0; i < 2; i++) {
		if (!tmps[i] || !*tmps[i] || stat(tmps[i], &st) != 0 || !S_ISDIR(st.st_mode))
			continue;
		snprintf(dir, sizeof dir, "%s/halo-starpu-%ld", tmps[i], (long)getuid());
		mkdir(dir, 0700);
		if (lstat(dir, &st) != 0)
			continue;
		if (!S_ISDIR(st.st_mode) || st.st_uid != getuid()) {
			taken = 1;
			continue;
		}
		if ((st.st_mode & 077) && chmod(dir, 0700) != 0)
			continue;
		if (writable_dir(dir)) {
			unsetenv("XDG_CACHE_HOME");
			setenv("STARPU_HOME", dir, 1);
			strncat(dir, "/.starpu/sampling", sizeof dir - strlen(dir) - 1);
			drop_empty_bus_files(dir);
			return HALO_OK;
		}
	}
	return halo_error_set(err, HALO_ERUNTIME, "no writable folder with room for StarPU's "
			      "performance models ($XDG_CACHE_HOME, $STARPU_HOME or $HOME, then $TMPDIR "
			      "or /tmp%s); set STARPU_HOME to one",
			      taken ? ", where halo-starpu-UID is another user's or a link" : "");
}

/* StarPU aborts on a worker count it cannot read in its environment, even
 * one that an option overrides (starpu_conf_init reads them all). */
static int check_env_count(const char *name, halo_error_t *err)
{
	const char *v = getenv(name);
	if (!v)
		return HALO_OK;
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	/* More than StarPU is built for would quietly be fewer. */
	long most = strcmp(name, "STARPU_NCPU") == 0 ? STARPU_MAXCPUS : STARPU_MAXCUDADEVS;
	if (!*v || *end || errno || n < 0 || n > most)
		return halo_error_set(err, HALO_EINVAL, "%s='%s': not a number of workers (0 to %ld)",
				      name, v, most);
	return HALO_OK;
}

/* What asked for a worker count, in words: the option when given, else the
 * environment variable, else none. */
static void worker_ask(char *buf, size_t len, int given, const char *opt, const char *env,
		       const char *none)
{
	const char *v = getenv(env);
	if (given >= 0)
		snprintf(buf, len, "--%s %d", opt, given);
	else if (v)
		snprintf(buf, len, "%s=%.40s", env, v);
	else
		snprintf(buf, len, "%s", none);
}

int halo_runtime_devices_check(const halo_runtime_opts_t *opts, halo_error_t *err)
{
	int found = 0; /* every GPU there is, the other ranks' shares too */
#ifdef HALO_USE_CUDA
	if (cudaGetDeviceCount(&found) != cudaSuccess)
		found = 0;
#endif
	int ncpu = halo_runtime_worker_count(opts->ncpu, "STARPU_NCPU");
	int asked = halo_runtime_worker_count(opts->ncuda, "STARPU_NCUDA");
	if (ncpu == 0 && !found && asked != 0)
		return halo_error_set(err, HALO_ERUNTIME, "--ncpu 0 runs on GPUs alone, and there is "
				      "no GPU to run on");
	if (asked > found) {
		char g[64];
		worker_ask(g, sizeof g, opts->ncuda, "ncuda", "STARPU_NCUDA", "");
		return halo_error_set(err, HALO_ERUNTIME, "%s: there %s %d GPU%s to run on", g,
				      found == 1 ? "is" : "are", found, found == 1 ? "" : "s");
	}
	if (ncpu == 0 && asked == 0)
		return halo_error_set(err, HALO_EINVAL, "no worker: --ncpu 0 and --ncuda 0");
	return HALO_OK;
}

int halo_runtime_opts_check(const halo_runtime_opts_t *opts, halo_error_t *err)
{
	if (opts->ncpu < -1 || opts->ncuda < -1)
		return halo_error_set(err, HALO_EINVAL, "worker counts must be >= 0");
	/* Found now, not after the run it was to record. */
	const char *why = opts->trace ? halo_fs_uncreatable(opts->trace) : NULL;
	if (why)
		return halo_error_set(err, HALO_EINVAL, "--trace: '%s' cannot be written: %s",
				      opts->trace, why);
	if (opts->trace && !halo_trace_replaceable(opts->trace))
		return halo_error_set(err, HALO_EEXIST, "--trace: '%s' exists and is not a halo "
				      "trace; halo replaces only its own", opts->trace);
	/* Under mpirun each rank writes its part beside FILE first. */
	int ranks = halo__runtime_launched_ranks();
	for (int r = 0; opts->trace && ranks > 1 && r < ranks; r++) {
		char part[4096];
		halo__trace_rank_path(opts->trace, r, part, sizeof part);
		if (!halo_trace_replaceable(part))
			return halo_error_set(err, HALO_EEXIST, "--trace: '%s', where rank %d writes its "
					      "part, exists and is not a halo trace; halo replaces "
					      "only its own", part, r);
	}
	/* An option overrides its variable, which halo_runtime_init unsets. */
	int bad = opts->ncpu < 0 ? check_env_count("STARPU_NCPU", err) : HALO_OK;
	if (!bad && opts->ncuda < 0)
		bad = check_env_count("STARPU_NCUDA", err);
	if (bad)
		return bad;
	/* StarPU aborts when it cannot open its calibration files. */
	struct rlimit nofile;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < 64)
		return halo_error_set(err, HALO_EINVAL, "only %llu open files allowed (ulimit -n); "
				      "halo needs at least 64", (unsigned long long)nofile.rlim_cur);
	if (opts->sched)
		return halo_sched_check(opts->sched, "--sched", err);
	const char *env = getenv("STARPU_SCHED");
	return env && *env ? halo_sched_check(env, "STARPU_SCHED", err) : HALO_OK;
}

/* halo's own FxT folder (not --trace-fxt's) while it exists, for
 * halo_runtime_abandon: StarPU's file there grows while a stuck run's
 * buffers flush (5 GB in 60 s, measured). */
static char own_fxt[4096];

static void own_fxt_remove(void)
{
	if (own_fxt[0])
		halo_fs_remove_tree(own_fxt);
	own_fxt[0] = '\0';
}

void halo_runtime_memory_warn(uint64_t memory)
{
	uint64_t usable = halo_machine_memory();
	if (memory > usable && usable && halo__runtime_launched_rank() == 0) {
		char a[32], b[32];
		fprintf(stderr, "halo: warning: --memory %s is more than the %s this process can use "
				"(the RAM or a rank's share of it, or its address-space limit)\n",
			halo__bytes(memory, a, sizeof a), halo__bytes(usable, b, sizeof b));
	}
}

void halo_runtime_abandon(void)
{
	own_fxt_remove();
}

/* Under an address-space limit (ulimit -v, a batch system's vmem), less
 * than least left: StarPU failed to start its threads, or StarPU or FFTW
 * asserted on the first allocation that failed, a 30 % band of limits
 * over what halo's libraries take (its start itself took 56 to 123 MB). */
static int address_room_check(const char *when, uint64_t least, halo_error_t *err)
{
	uint64_t room = halo_machine_address_room();
	struct rlimit as;
	if (!room || room >= least || getrlimit(RLIMIT_AS, &as) != 0)
		return HALO_OK;
	char a[32], b[32];
	return halo_error_set(err, HALO_ENOMEM, "the address-space limit (ulimit -v, or a batch "
			      "system's vmem) of %s leaves %s %s, too little to run; raise it",
			      halo__bytes(as.rlim_cur, a, sizeof a), halo__bytes(room, b, sizeof b),
			      when);
}

/* A start that failed: its FxT folder of its own goes, with rt. Returns
 * rc. */
static int init_undo(halo_runtime_t *rt, int rc)
{
	own_fxt_remove();
	free(rt->fxt);
	free(rt);
	return rc;
}

/* FxT records into --trace-fxt's folder (a rank's own under mpirun), or,
 * for --trace where data moves between memories, into a temporary one. */
static int fxt_setup(halo_runtime_t *rt, const halo_runtime_opts_t *opts, halo_error_t *err)
{
	if (opts->trace_fxt) {
		/* Marked as halo's: StarPU's files there replace their
		 * namesakes, which only a folder of halo's may hold. */
		char mark[4096];
		snprintf(mark, sizeof mark, "%s/%s", opts->trace_fxt, HALO_FXT_MARK);
		static const char text[] = "halo --trace-fxt writes here and replaces its files\n";
		rt->fxt = strdup(opts->trace_fxt);
		if (!rt->fxt || halo_fs_mkdirs(opts->trace_fxt, err) ||
		    (!halo_fs_exists(mark) && halo_fs_write(mark, text, sizeof text - 1, err))) {
			return err && err->code ? halo_error_prefix(err, "--trace-fxt")
						: halo_error_set(err, HALO_EINVAL, "--trace-fxt: bad folder");
		}
	} else if (opts->trace && halo__fxt_available() && several_memory_nodes(opts)) {
		/* Only FxT records each data transfer; when there can be
		 * transfers, record it into a folder of halo's own. */
		const char *tmp = getenv("TMPDIR");
		char dir[4096];
		snprintf(dir, sizeof dir, "%s/halo-fxt-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (mkdtemp(dir) && (rt->fxt = strdup(dir))) {
			rt->fxt_tmp = 1;
			snprintf(own_fxt, sizeof own_fxt, "%s", dir);
		}
	}
	const char *mpi_rank = getenv("OMPI_COMM_WORLD_RANK");
	mpi_rank = mpi_rank ? mpi_rank : getenv("PMI_RANK");
	mpi_rank = mpi_rank ? mpi_rank : getenv("PMIX_RANK");
	if (rt->fxt && mpi_rank && !rt->fxt_tmp) {
		/* Under mpirun each rank keeps (and converts) its own FxT trace. */
		char dir[4096];
		snprintf(dir, sizeof dir, "%s/rank%s", rt->fxt, mpi_rank);
		free(rt->fxt);
		rt->fxt = strdup(dir);
		if (!rt->fxt || halo_fs_mkdirs(dir, err))
			return err && err->code ? err->code
						: halo_error_set(err, HALO_ENOMEM, "out of memory");
	}
	if (rt->fxt) {
		char prefix[4096];
		int n = snprintf(prefix, sizeof prefix, "%s/", rt->fxt);
		if (n < 0 || (size_t)n >= sizeof prefix)
			return halo_error_set(err, HALO_EINVAL, "--trace-fxt: folder name too long");
		setenv("STARPU_FXT_TRACE", "1", 1);
		setenv("STARPU_FXT_PREFIX", prefix, 1);
	}
	return HALO_OK;
}

/* StarPU's main-memory limit and pinning, through its variables. */
static void memory_env(const halo_runtime_opts_t *opts)
{
	/* StarPU caches chunk allocations in main memory only under a limit;
	 * without one every chunk costs fresh pages (page faults that took a
	 * third of a convert's time). The limit is a ceiling, not a target:
	 * halo's submitters keep far less in flight. */
	uint64_t mem = opts->memory, usable = halo_machine_memory();
	if (!mem)
		mem = usable ? usable / 2 : (UINT64_C(4) << 30);
	halo_runtime_memory_warn(opts->memory);
	if (mem < opts->memory_floor)
		mem = opts->memory_floor;
	char limit[32];
	snprintf(limit, sizeof limit, "%llu", (unsigned long long)(mem >> 20));
	setenv("STARPU_LIMIT_CPU_MEM", limit, opts->memory != 0);
	/* With GPUs StarPU pins each host buffer it allocates (cudaHostAlloc),
	 * in the thread that needs it, often the GPU worker's, which meanwhile
	 * starts nothing: about half a second per GB, serialised in the driver
	 * against every other CUDA call. Faster copies never repaid it on an H100:
	 * the seed's volume in 8 chunks (249 MB input chunks, 2 GB outputs) took
	 * 48.8 s pinned and 45.4 s not, its first RL at 4.2 s against 1.6 s
	 * (session 17), and 128 chunks of 16-32 MiB, reused from StarPU's cache,
	 * 2.39-2.45 s pinned and 2.15-2.17 s not, GPU alone (session 26,
	 * alternating; 1.94 s against 2.23 s in another call). So halo turns it
	 * off unless STARPU_DISABLE_PINNING is set (0 pins). */
	setenv("STARPU_DISABLE_PINNING", "1", 0);
}

/* The workers StarPU is to start: the options', then its variables'. */
static void workers_conf(struct starpu_conf *conf, const halo_runtime_t *rt,
			 const halo_runtime_opts_t *opts)
{
	starpu_conf_init(conf);
	conf->sched_policy_name = rt->sched;
	if (opts->ncpu >= 0)
		conf->ncpus = opts->ncpu;
#ifndef STARPU_SIMGRID /* a simulated machine has the cores its models say */
	/* StarPU starts them, several to a core, without a word. Several
	 * ranks on the node each have their share (said once). */
	int local, node_ranks = halo_node_ranks(&local);
	long pus = sysconf(_SC_NPROCESSORS_ONLN);
	/* Each rank's StarPU workers and MPI thread spin while they wait:
	 * ranks sharing a core slow each other down by far more than the
	 * share (3 ranks on 2 cores: 7.7 s where one process took 0.15 s). */
	if (pus > 0 && node_ranks > pus && halo__runtime_launched_rank() == 0)
		fprintf(stderr, "halo: warning: %d ranks on this node's %ld cores: ranks that share a "
			"core wait on each other's spinning workers; run %ld at most\n", node_ranks,
			pus, pus);
	else if (opts->ncpu > halo_machine_cores() && node_ranks > 1 &&
		 halo__runtime_launched_rank() == 0)
		fprintf(stderr, "halo: warning: --ncpu %d: each of this node's %d ranks has its share "
			"of its %ld cores (rank 0: %ld); the workers take turns on them\n",
			opts->ncpu, node_ranks, pus, halo_machine_cores());
	else if (opts->ncpu > halo_machine_cores() && node_ranks == 1)
		fprintf(stderr, "halo: warning: --ncpu %d: this machine has %ld cores; the workers "
			"take turns on them\n", opts->ncpu, halo_machine_cores());
#endif
	gpus_alone = opts->ncpu == 0 && opts->ncuda != 0;
	if (gpus_alone) {
		/* Within the cores the GPUs' own workers leave. */
		uint64_t bytes;
		int gpus = opts->ncuda > 0 ? opts->ncuda : halo_runtime_gpu_memory(opts, &bytes, NULL);
		int io = io_worker_count(gpus);
		long left = halo_machine_cores() - gpus;
		conf->ncpus = io < left ? io : left > 1 ? (int)left : 1;
	}
	if (opts->ncuda >= 0)
		conf->ncuda = opts->ncuda;
	/* starpu_conf_init() has already read STARPU_NCPU and friends into
	 * conf, so giving conf precedence lets explicit options win while the
	 * environment still fills in what the options leave open. */
	conf->precedence_over_environment_variables = 1;
	conf->nopencl = 0;
	conf->nmic = 0;
	conf->nmpi_ms = 0;

}

/* Once StarPU runs: the CPU workers that keep to I/O beside GPUs, the
 * GPUs asked for found, and the trace begun. */
static int started(halo_runtime_t *rt, const halo_runtime_opts_t *opts, halo_error_t *err)
{
	gpus_lead = 0;
	memset(io_mask, 0, sizeof io_mask);
	io_mask_len = 0;
	if (!gpus_alone && starpu_cuda_worker_get_count() > 0) {
		int ids[STARPU_NMAXWORKERS], io = io_worker_count((int)starpu_cuda_worker_get_count());
		int n = (int)starpu_worker_get_ids_by_type(STARPU_CPU_WORKER, ids, STARPU_NMAXWORKERS);
		n = n < io ? n : io;
		for (int i = 0; i < n; i++) {
			unsigned word = (unsigned)ids[i] / 32;
			io_mask[word] |= UINT32_C(1) << (ids[i] % 32);
			io_mask_len = word + 1 > io_mask_len ? word + 1 : io_mask_len;
		}
	}
	if (gpus_alone && starpu_cuda_worker_get_count() == 0) {
		return halo_error_set(err, HALO_ERUNTIME, "--ncpu 0 runs on GPUs alone, and StarPU "
				      "found no GPU to run on");
	}
	/* StarPU quietly starts fewer CUDA workers than asked for when the
	 * GPUs are not there; a run (or a benchmark labelled gpu=N) that asked
	 * for them must not go on without them. */
	const char *env_ncuda = getenv("STARPU_NCUDA");
	int asked = opts->ncuda >= 0 ? opts->ncuda : env_ncuda ? atoi(env_ncuda) : 0;
	if (asked > 0 && (int)starpu_cuda_worker_get_count() < asked) {
		int found = (int)starpu_cuda_worker_get_count();
		char g[64];
		worker_ask(g, sizeof g, opts->ncuda, "ncuda", "STARPU_NCUDA", "");
		return halo_error_set(err, HALO_ERUNTIME, "%s: StarPU found %d GPU%s to run on%s", g,
				      found, found == 1 ? "" : "s",
#ifdef HALO_USE_CUDA
				      ""
#else
				      " (this halo is built without CUDA)"
#endif
				      );
	}
	if (rt->ranks > 1 && !opts->distributed) {
		return halo_error_set(err, HALO_EUNSUPPORTED,
				      "this command runs in one process; under mpirun it does not "
				      "run on %d ranks yet", rt->ranks);
	}
	if (opts->trace) {
		char part[4096];
		if (rt->ranks > 1) { /* each rank its part; rank 0 joins them at the end */
			halo__trace_rank_path(opts->trace, rt->rank, part, sizeof part);
			unlink(part); /* left by an earlier run: rank 0 must not join it */
		}
		rt->trace = strdup(rt->ranks > 1 ? part : opts->trace);
		rt->trace_final = rt->ranks > 1 && rt->rank == 0 ? strdup(opts->trace) : NULL;
		if (!rt->trace || halo_trace_begin(rt->fxt != NULL, err))
			return halo_error_set(err, HALO_ENOMEM, "out of memory for the trace");
	}
	return HALO_OK;
}

int halo_runtime_init(const halo_runtime_opts_t *opts, halo_runtime_t **out,
		      halo_error_t *err)
{
	halo_runtime_opts_t defaults;
	if (!opts) {
		halo_runtime_opts_init(&defaults);
		opts = &defaults;
	}
	*out = NULL;
	if (runtime_active)
		return halo_error_set(err, HALO_ERUNTIME, "StarPU is already running in this process");
	int bad = halo_runtime_opts_check(opts, err);
	if (!bad)
		bad = starpu_home_fallback(err);
	if (bad)
		return bad;
	const char *sched = opts->sched ? opts->sched : getenv("STARPU_SCHED");
	if (!sched || !*sched)
		sched = "dmda";

	halo_runtime_t *rt = calloc(1, sizeof *rt);
	if (!rt)
		return halo_error_set(err, HALO_ENOMEM, "out of memory");
	snprintf(rt->sched, sizeof rt->sched, "%s", sched);

	/* StarPU's chatter (bus calibration notices, warnings about unused
	 * devices) would drown halo's one-line messages. */
	if (!opts->verbose)
		setenv("STARPU_SILENT", "1", 0);
	/* A StarPU built with FxT otherwise records a trace of every run into
	 * /tmp and costs a few microseconds per task; tracing is opt-in. */
	setenv("STARPU_FXT_TRACE", "0", 0);
	int rc = fxt_setup(rt, opts, err);
	if (rc)
		return init_undo(rt, rc);
	memory_env(opts);
	/* What an option sets, StarPU would still read from its variable
	 * (and abort on junk, or warn of an unknown scheduler twice). */
	if (opts->ncpu >= 0) {
		unsetenv("STARPU_NCPU");
		unsetenv("STARPU_NCPUS");
	}
	if (opts->ncuda >= 0)
		unsetenv("STARPU_NCUDA");
	if (opts->sched)
		unsetenv("STARPU_SCHED");
	if ((rc = halo__env_check(err)))
		return init_undo(rt, rc);

	struct starpu_conf conf;
	workers_conf(&conf, rt, opts);
	rt->ranks = 1;
	if (address_room_check("before StarPU starts", UINT64_C(128) << 20, err))
		return init_undo(rt, HALO_ENOMEM);
	rc = start(rt, &conf, err);
	if (rc) {
		init_undo(rt, rc);
		if (rc == -EPROTO)
			return HALO_ERUNTIME;
		if (rc == -ENODEV) {
			char c[64], g[64];
			worker_ask(c, sizeof c, opts->ncpu, "ncpu", "STARPU_NCPU", "all CPUs");
			worker_ask(g, sizeof g, opts->ncuda, "ncuda", "STARPU_NCUDA", "no GPU");
			return halo_error_set(err, HALO_ERUNTIME, "StarPU found no worker to run on (%s, %s)",
					      c, g);
		}
		return halo_error_set(err, HALO_ERUNTIME, "starpu_init failed: %s", strerror(-rc));
	}
	runtime_active = 1;
	/* Under mpirun the ranks stop together, or the others would wait in
	 * their first collective for the one that stopped. */
	int room_rc = address_room_check("once StarPU has started", UINT64_C(64) << 20, err);
	if (rt->ranks > 1)
		room_rc = halo__mpi_agree(room_rc, err);
	if (room_rc) {
		halo_runtime_shutdown(rt);
		return room_rc;
	}
	halo__hostmem_install();
	/* A rank's own failure here (its GPUs) stops the others too: they
	 * would wait for it in their next collective. */
	rc = started(rt, opts, err);
	if (rt->ranks > 1)
		rc = halo__mpi_agree(rc, err);
	if (rc) {
		halo_runtime_shutdown(rt);
		return rc;
	}
	*out = rt;
	return HALO_OK;
}

/* StarPU's FxT file (prof_file_USER_RANK) in dir, converted by
 * starpu_fxt_tool into paje.trace (for ViTE), tasks.rec, dag.dot, ... */
static int fxt_convert(const char *dir, halo_error_t *err)
{
	char file[4096];
	if (halo__fxt_file(dir, file, sizeof file, err))
		return HALO_ENOENT;
	fflush(NULL); /* or the child would write the parent's buffered output */
	pid_t pid = fork();
	if (pid == 0) {
		char log[4096];
		snprintf(log, sizeof log, "%s/starpu_fxt_tool.log", dir);
		if (!freopen(log, "w", stdout) || !freopen(log, "a", stderr))
			_exit(127);
		execl(HALO_STARPU_BINDIR "/starpu_fxt_tool", "starpu_fxt_tool", "-i", file, "-d", dir,
		      (char *)NULL);
		_exit(127);
	}
	int status = 0;
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		return halo_error_set(err, HALO_ERUNTIME,
				      "%s: starpu_fxt_tool could not convert the FxT trace (see "
				      "starpu_fxt_tool.log there)", dir);
	return HALO_OK;
}

/* MPI stays up past StarPU-MPI (which halo initialised it for) until
 * mpi_end. */
static void stop_starpu(void *arg)
{
	halo_runtime_t *rt = arg;
	starpu_task_wait_for_all();
#ifdef HALO_HAVE_MPI
	if (rt->mpi)
		starpu_mpi_shutdown();
	else
#endif
		starpu_shutdown();
	runtime_active = 0;
	rt->stopped = 1;
}

/* Every rank waits for rank 0 to be done (joining the trace's parts):
 * mpirun ends the whole job once a rank exits non-zero, and a failed
 * run's other ranks, exiting first, cut rank 0's join short (no trace,
 * and its parts left, in 5 of 16 runs). */
static void mpi_end(halo_runtime_t *rt)
{
#ifdef HALO_HAVE_MPI
	if (rt->mpi && rt->stopped) {
		MPI_Barrier(MPI_COMM_WORLD);
		MPI_Finalize();
		halo__mpi_set(0, 1);
		rt->mpi = 0;
	}
#else
	(void)rt;
#endif
}

int halo_runtime_finish(halo_runtime_t *rt, const halo_error_t *failed, halo_error_t *err)
{
	if (!rt)
		return HALO_OK;
	/* The trace shuts StarPU down itself once it has what it needs, then
	 * reads the transfers from the FxT file that StarPU flushes. Under
	 * mpirun an interrupt is its SIGTERM, and SIGKILL follows a second
	 * later: too soon to write and join the ranks' traces, so none is
	 * written rather than parts cut short left behind. */
	const char *trace = rt->ranks > 1 && halo_interrupted() ? NULL : rt->trace;
	int rc = rt->trace ? halo_trace_end(trace, rt->fxt, failed, stop_starpu, rt, err) : HALO_OK;
	if (!rc && trace && rt->trace_final)
		rc = halo__trace_merge(rt->trace_final, rt->ranks, err);
	free(rt->trace);
	free(rt->trace_final);
	rt->trace = rt->trace_final = NULL;
	char *fxt = rt->fxt;
	int convert = fxt && !rt->fxt_tmp;
	rt->fxt = NULL;
	if (!rt->stopped)
		stop_starpu(rt);
	mpi_end(rt);
	if (convert && !rc)
		rc = fxt_convert(fxt, err);
	own_fxt_remove();
	free(fxt);
	free(rt);
	return rc;
}

int halo_runtime_output_commit(halo_output_t *out, halo_error_t *err)
{
	return halo_runtime_outputs_commit(&out, 1, err);
}

int halo_runtime_outputs_commit(halo_output_t **outs, int n, halo_error_t *err)
{
	/* StarPU keeps its last idle worker polling for tasks in a busy loop,
	 * and replacing an output waits seconds on the filesystem (unlinking
	 * the old one): paused, that worker sleeps and leaves its core to the
	 * kernel's writeback. Measured on 2 cores: halo convert of 2 GiB with
	 * --overwrite, 4.63 s -> 3.27 s median, a CPU-second less
	 * (bench/README.md). */
	int paused = starpu_is_initialized();
	if (paused)
		starpu_pause();
	int rc = halo_outputs_commit(outs, n, err);
	if (paused)
		starpu_resume();
	return rc;
}

void halo_runtime_shutdown(halo_runtime_t *rt)
{
	if (!rt)
		return;
	halo_runtime_gpus_lead_set(0);
	starpu_task_wait_for_all();
	if (rt->trace)
		halo_trace_end(NULL, NULL, NULL, NULL, NULL, NULL); /* dropped: nobody asked to save it */
	free(rt->trace);
	free(rt->trace_final);
	if (!rt->stopped)
		stop_starpu(rt);
	mpi_end(rt);
	own_fxt_remove();
	free(rt->fxt);
	free(rt);
}

const char *halo_runtime_sched(const halo_runtime_t *rt)
{
	return rt->sched;
}

int halo_runtime_rank(const halo_runtime_t *rt)
{
	return rt ? rt->rank : 0;
}

int halo_runtime_ranks(const halo_runtime_t *rt)
{
	return rt ? rt->ranks : 1;
}

int halo_worker_pu(int worker)
{
	/* StarPU's bindid counts the PUs it sees, which under a restricted
	 * topology (halo__node_bind) are not the machine's. */
#ifdef STARPU_HAVE_HWLOC
	hwloc_cpuset_t set = starpu_worker_get_hwloc_cpuset(worker);
	int pu = set ? hwloc_bitmap_first(set) : -1;
	hwloc_bitmap_free(set);
	if (pu >= 0)
		return pu;
#endif
	return starpu_worker_get_bindid(worker);
}

int halo__runtime_workers(halo_worker_info_t **out, int *count, halo_error_t *err)
{
	int n = (int)starpu_worker_get_count();
	halo_worker_info_t *w = calloc((size_t)(n ? n : 1), sizeof *w);
	if (!w)
		return halo_error_set(err, HALO_ENOMEM, "out of memory");
	for (int i = 0; i < n; i++) {
		enum starpu_worker_archtype type = starpu_worker_get_type(i);
		w[i].id = i;
		w[i].is_cuda = type == STARPU_CUDA_WORKER;
		w[i].devid = starpu_worker_get_devid(i);
		const char *nobind = getenv("STARPU_WORKERS_NOBIND");
		w[i].bindid = nobind && atoi(nobind) ? -1 : halo_worker_pu(i);
		w[i].memory_node = (int)starpu_worker_get_memory_node((unsigned)i);
		starpu_ssize_t total = starpu_memory_get_total((unsigned)w[i].memory_node);
		w[i].memory_bytes = total > 0 ? (uint64_t)total : 0;
		starpu_worker_get_name(i, w[i].name, sizeof w[i].name);
		if (w[i].is_cuda)
			w[i].peak_gbs = peak_gbs(w[i].devid);
	}
	*out = w;
	*count = n;
	return HALO_OK;
}
