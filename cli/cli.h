/* cli/: the halo command. One file per subcommand; this header is the table
 * that main.c dispatches on and the option handling they share. Subcommands
 * return an exit status and never exit: 0 done; 1 failed, including a bad
 * option value or bad input (one "halo: ..." line); 2 usage error (unknown
 * command or option, a missing value, wrong number of arguments). */
#ifndef HALO_CLI_H
#define HALO_CLI_H

#include <getopt.h>
#include <stdio.h>

#include "halo.h"

enum { HALO_EXIT_OK = 0, HALO_EXIT_FAIL = 1, HALO_EXIT_USAGE = 2 };

typedef struct halo_cli_cmd {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv); /* argv[0] is the command's name */
} halo_cli_cmd_t;

int halo_cli_info(int argc, char **argv);
int halo_cli_convert(int argc, char **argv);
int halo_cli_deconvolve(int argc, char **argv);
int halo_cli_demo(int argc, char **argv);
int halo_cli_run(int argc, char **argv);
int halo_cli_graph(int argc, char **argv);
int halo_cli_trace(int argc, char **argv);
int halo_cli_bench(int argc, char **argv);

/* Long options every StarPU-running command accepts; their values are
 * above 1000 so they never clash with a short option letter. */
enum {
	HALO_OPT_NCPU = 1001,
	HALO_OPT_NCUDA,
	HALO_OPT_SCHED,
	HALO_OPT_VERBOSE,
	HALO_OPT_HELP,
	HALO_OPT_JSON,
	HALO_OPT_TRACE,
	HALO_OPT_TRACE_FXT,
};

/* The workers' options, for every command that starts StarPU; commands
 * that run tasks take the trace options too (`halo info` runs none). */
#define HALO_CLI_WORKER_OPTIONS                                   \
	{"ncpu", required_argument, NULL, HALO_OPT_NCPU},         \
	{"ncuda", required_argument, NULL, HALO_OPT_NCUDA},       \
	{"sched", required_argument, NULL, HALO_OPT_SCHED},       \
	{"verbose", no_argument, NULL, HALO_OPT_VERBOSE}
#define HALO_CLI_RUNTIME_OPTIONS                                  \
	HALO_CLI_WORKER_OPTIONS,                                  \
	{"trace", required_argument, NULL, HALO_OPT_TRACE},       \
	{"trace-fxt", required_argument, NULL, HALO_OPT_TRACE_FXT}

#define HALO_CLI_WORKER_HELP                                                   \
	"  --ncpu N        CPU workers (default: all cores, or STARPU_NCPU)\n"     \
	"  --ncuda N       CUDA workers (default: all GPUs, or STARPU_NCUDA)\n"    \
	"  --sched NAME    StarPU scheduler: dmda (default), eager, lws, dmdas, ...\n" \
	"  --verbose       let StarPU print its own messages\n"
#define HALO_CLI_RUNTIME_HELP                                                  \
	HALO_CLI_WORKER_HELP                                                   \
	"  --trace FILE    record every task in FILE (Chrome trace JSON; see\n"  \
	"                  'halo trace --help')\n"                               \
	"  --trace-fxt DIR keep StarPU's own FxT trace in DIR, with its Paje\n"   \
	"                  conversion (paje.trace, for ViTE)\n"

/* --channel N (time 0) or --time N (time 1) into sel (io/volume.h). */
#define HALO_CLI_SELECT_HELP                                                    \
	"  --channel N, --time N which channel and time point of an input with more\n" \
	"                        (OME-Zarr's axes; a plain Zarr's before z, y, x\n"   \
	"                        as t, c; an ImageJ hyperstack's, an OME-TIFF's),\n"  \
	"                        from 0\n"
struct halo_select;
int halo_cli_select_option(int time, const char *arg, struct halo_select *sel, halo_error_t *err);

/* Steps through a command's options with getopt_long, handling what every
 * command shares: the runtime options (into *rt; rt NULL for a command that
 * starts no StarPU and takes none of them), -h/--help (prints help)
 * and unknown options or missing values (one usage line). Returns the next
 * command-specific option, -1 after the last, or HALO_CLI_DONE with *status
 * set when the command should return at once (help shown, or an error
 * reported: 2 for usage, 1 for a bad runtime option value). Call
 * halo_cli_options_begin() first. */
enum { HALO_CLI_DONE = -2 };
void halo_cli_options_begin(void);
/* After begin: the getopt short options of a command that has some
 * besides -h (e.g. ":ho:"); they must start with ":h". */
void halo_cli_options_short(const char *optstring);
int halo_cli_next_option(int argc, char **argv, const char *cmd, const struct option *longopts,
			 const char *help, halo_runtime_opts_t *rt, int *status);

/* OUT may not be an input (named as name: "IN", "PSF"), lie inside it or
 * hold it: one line in err and an error code; HALO_OK otherwise. */
int halo_cli_output_apart(const char *out, const char *in, const char *name, halo_error_t *err);
/* Refuses a --trace or --trace-fxt that names or lies inside one of paths
 * (NULL-terminated): the command's inputs and outputs. */
int halo_cli_trace_check(const halo_runtime_opts_t *o, const char *const *paths, halo_error_t *err);

/* An empty path among args (a variable that was not set, "$OUT"): one
 * line naming it and -1; 0 when none is empty. */
int halo_cli_empty_args(const char *cmd, char **args, int n);
/* More arguments than a command takes, the first two of them TIFF files:
 * a pattern the shell expanded, where halo reads a sequence of TIFF files
 * from the pattern itself. One line saying so and -1; else 0. */
int halo_cli_expanded_glob(const char *cmd, char **args, int n);

/* The command line, kept for halo_cli_same_command (main sets it). */
void halo_cli_command_set(int argc, char **argv);
/* Under mpirun: whether this rank runs rank 0's command (its arguments
 * and, when not NULL, the bytes of file, a pipeline). One with other
 * options (iterations, chunks, output, a pipeline's steps) hung, aborted in
 * StarPU-MPI, or wrote a mixed output. (Relative paths from another
 * working folder read other files: the inputs are compared themselves.)
 * Every rank calls it at the same point; all fail together
 * (halo__mpi_agree). */
int halo_cli_same_command(const char *file, halo_error_t *err);

/* Ends the run (halo_runtime_finish: traces written, StarPU stopped); a
 * failure there turns a successful status into 1, with one line. failed:
 * the run's error where status says it failed (its trace records it).
 * Returns the status. */
int halo_cli_finish(halo_runtime_t *rt, int status, const halo_error_t *failed);

/* A Gaussian PSF of pn voxels, centred on voxel pn//2, sum 1 (the demo's
 * and halo bench's). */
void halo_cli_gaussian_psf(float *p, const int pn[3], const double sigma[3]);

/* Prints "halo: MESSAGE" on stderr, one line. Under mpirun a rank other
 * than 0 waits 5 s first, in which mpirun ends it when rank 0 failed too,
 * and then names itself: "halo: rank R: MESSAGE". */
void halo_cli_error(const halo_error_t *err);

/* The same for a usage error: "halo: " and the formatted line (no newline
 * in fmt). */
void halo_cli_usage_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
