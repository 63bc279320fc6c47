/* The halo command: global options, then dispatch to one subcommand.
 * Exit status: 0 done, 1 failed (a one-line "halo: ..." message on stderr),
 * 2 usage error. Only this file's main() ends the process. */
#include "config.h"
#include "cli/cli.h"
#include "io/outdir.h"
#include "runtime/runtime.h"
#include "util/signals.h"

/* In halo-sim (StarPU built with SimGrid) this renames main() to
 * starpu_main(), which StarPU runs as a simulated process. */
#include <starpu.h>

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <string.h>
#include <unistd.h>

static const halo_cli_cmd_t commands[] = {
	{"bench", "measure halo over CPU/GPU configurations against numpy, scipy, CuPy, dask", halo_cli_bench},
	{"convert", "convert between TIFF, Zarr and OME-Zarr; rechunk; change dtype", halo_cli_convert},
	{"deconvolve", "Richardson-Lucy deconvolution of a volume, chunk by chunk with halos", halo_cli_deconvolve},
	{"demo", "deconvolve a built-in synthetic sample and report the error", halo_cli_demo},
	{"graph", "print a pipeline's graph (Graphviz DOT) or its task counts", halo_cli_graph},
	{"info", "describe halo, StarPU, the workers and the machine", halo_cli_info},
	{"run", "run a pipeline file (dask.array-like steps) over every core and GPU", halo_cli_run},
	{"trace", "summarise a trace recorded with --trace; critical path; compare two", halo_cli_trace},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
	fprintf(f, "usage: halo [--version] [--help] COMMAND [ARGS]\n\n"
		   "halo runs chunked array pipelines (first of all Richardson-Lucy\n"
		   "deconvolution of large volumes) on every CPU core and GPU through StarPU.\n\n"
		   "commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n'halo COMMAND --help' (or -h, or 'halo help COMMAND') describes a command's\n"
		   "options; an option's value follows it ('--ncpu 4') or an '=' ('--ncpu=4').\n");
}

static int dispatch(int argc, char **argv);

/* What a run stuck after Ctrl-C leaves is removed as it ends: its
 * temporary outputs (their count is returned) and its FxT folder. */
static int abandon(void)
{
	halo_runtime_abandon();
	return halo_outputs_abandon();
}

int main(int argc, char **argv)
{
	/* A run stuck after Ctrl-C (or SIGTERM) is ended without its
	 * temporary files (util/signals.h). */
	halo_signals_remember();
	halo_signals_on_stuck(abandon);
	/* A file over `ulimit -f` is then an error write() reports (EFBIG,
	 * named with its file), not a silent death that leaves temporary
	 * outputs behind. */
	signal(SIGXFSZ, SIG_IGN);
	/* Under an address-space limit (ulimit -v, a batch system's vmem)
	 * below the RAM each thread's malloc arena reserved 64 MiB of it:
	 * 200 MB of a 450 MB limit with 2 workers, and StarPU or FFTW
	 * asserted. */
	struct rlimit as;
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
	if (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY &&
	    (pages <= 0 || size <= 0 || (double)as.rlim_cur < (double)pages * (double)size))
		mallopt(M_ARENA_MAX, 1);
#ifdef HALO_SIMULATE
	/* halo-sim (halo bench --simulate's child) meets a model it lacks in
	 * StarPU's assertion, an abort: the bench says why, and no core
	 * file (hundreds of MB) is left behind. */
	struct rlimit core = {0, 0};
	if (getrlimit(RLIMIT_CORE, &core) == 0) {
		core.rlim_cur = 0;
		setrlimit(RLIMIT_CORE, &core);
	}
#endif
	halo_cli_command_set(argc, argv);
	int rc = dispatch(argc, argv);
	/* Results on a full disk or a closed pipe are lost: say so. */
	errno = 0;
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "halo: standard output: %s\n", errno ? strerror(errno) : "write error");
		return rc ? rc : HALO_EXIT_FAIL;
	}
	return rc;
}

static int dispatch(int argc, char **argv)
{
	/* Chunks and tasks are allocated and freed by the hundred thousand:
	 * keep freed memory in the heap instead of trimming it back to the
	 * kernel after each burst (a third of the per-task cost otherwise).
	 * Setting these turns off glibc's own raising of the mmap threshold,
	 * which would leave every chunk buffer over 128 KiB in fresh pages
	 * that fault on first touch and go back to the kernel on free: keep
	 * blocks up to glibc's maximum (32 MiB) in the heap too (a rechunk of
	 * planes into cubes took 27 % less time). */
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
	mallopt(M_TOP_PAD, 64 << 20);
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	/* Chunk files, StarPU's and FFTW's files: take what the hard limit on
	 * open files allows, as a soft limit of 1024 or less can run short. */
	struct rlimit nofile;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
		nofile.rlim_cur = nofile.rlim_max < 65536 ? nofile.rlim_max : 65536;
		setrlimit(RLIMIT_NOFILE, &nofile);
	}
	if (argc < 2) {
		halo_cli_usage_line("no command given; see 'halo --help'");
		return HALO_EXIT_USAGE;
	}
	const char *cmd = argv[1];
	int top = strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0 ||
		  strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0;
	if (top && argc > (strcmp(cmd, "help") == 0 ? 3 : 2)) {
		halo_cli_usage_line("unexpected argument '%s' after '%s'; see 'halo --help'",
				    argv[strcmp(cmd, "help") == 0 ? 3 : 2], cmd);
		return HALO_EXIT_USAGE;
	}
	if (strcmp(cmd, "help") == 0 && argc > 2 &&
	    strcmp(argv[2], "--help") && strcmp(argv[2], "-h")) {
		/* "halo help X" is "halo X --help"; "halo help --help" is help. */
		for (size_t i = 0; i < NCOMMANDS; i++)
			if (strcmp(argv[2], commands[i].name) == 0) {
				char *args[] = {argv[2], "--help", NULL};
				return commands[i].run(2, args);
			}
		halo_cli_usage_line("help: unknown command '%s'; see 'halo --help'", argv[2]);
		return HALO_EXIT_USAGE;
	}
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		usage(stdout);
		return HALO_EXIT_OK;
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
		printf("halo %s\n", halo_version_string());
		return HALO_EXIT_OK;
	}
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(cmd, commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	if (cmd[0] == '-')
		halo_cli_usage_line("unknown option '%s'; see 'halo --help'", cmd);
	else
		halo_cli_usage_line("unknown command '%s'; see 'halo --help'", cmd);
	return HALO_EXIT_USAGE;
}
