/* Command-line handling shared by the subcommands: the StarPU runtime
 * options and the one-line usage errors (exit 2) that a typo deserves. */
#include "config.h"
#include "cli/cli.h"
#include "io/fs.h"
#include "io/outdir.h"
#include "io/volume.h"
#include "runtime/mpi.h"
#include "runtime/runtime.h"
#include "util/signals.h"
#include "util/util.h"

#include <starpu.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int halo_cli_select_option(int time, const char *arg, halo_select_t *sel, halo_error_t *err)
{
	long v;
	char name[32];
	snprintf(name, sizeof name, "--%s%s", sel->prefix ? sel->prefix : "", time ? "time" : "channel");
	int rc = halo__parse_int(arg, 0, LONG_MAX, name, &v, err);
	if (!rc)
		*(time ? &sel->time : &sel->channel) = v;
	return rc;
}

/* Applies one runtime option to opts. Returns 1 if opt was a runtime option
 * (and 0 on success through *rc), 0 if it is not one of them. */
static int runtime_option(int opt, const char *arg, halo_runtime_opts_t *opts,
			  halo_error_t *err, int *rc)
{
	long v;
	*rc = HALO_OK;
	switch (opt) {
	case HALO_OPT_NCPU:
		/* StarPU's compiled-in limits: more would quietly be fewer. */
		*rc = halo__parse_int(arg, 0, STARPU_MAXCPUS, "--ncpu", &v, err);
		if (!*rc)
			opts->ncpu = (int)v;
		return 1;
	case HALO_OPT_NCUDA:
		*rc = halo__parse_int(arg, 0, STARPU_MAXCUDADEVS, "--ncuda", &v, err);
		if (!*rc)
			opts->ncuda = (int)v;
		return 1;
	case HALO_OPT_SCHED:
		if (!*arg)
			*rc = halo_error_set(err, HALO_EINVAL, "--sched: empty scheduler name");
		opts->sched = arg;
		return 1;
	case HALO_OPT_VERBOSE:
		opts->verbose = 1;
		return 1;
	case HALO_OPT_TRACE:
	case HALO_OPT_TRACE_FXT:
		if (!*arg)
			*rc = halo_error_set(err, HALO_EINVAL, "%s: empty file name",
					     opt == HALO_OPT_TRACE ? "--trace" : "--trace-fxt");
		if (opt == HALO_OPT_TRACE)
			opts->trace = arg;
		else
			opts->trace_fxt = arg;
		return 1;
	}
	return 0;
}

/* A --trace-fxt folder that is new, empty or halo's: StarPU's files
 * (trace.html, dag.dot, data.rec, ...) replaced a user's of those names. */
static int fxt_folder_check(const char *dir, halo_error_t *err)
{
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? HALO_OK
		       : halo_error_set(err, HALO_EINVAL, "--trace-fxt: '%s': %s", dir,
					errno == ENOTDIR ? "not a folder" : strerror(errno));
	int ours = 0, others = 0;
	for (struct dirent *e; (e = readdir(d));) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (!strcmp(e->d_name, HALO_FXT_MARK))
			ours = 1;
		else
			others = 1;
	}
	closedir(d);
	return others && !ours
	       ? halo_error_set(err, HALO_EEXIST, "--trace-fxt: '%s' holds files halo did not write; "
				"give a new or empty folder", dir)
	       : HALO_OK;
}

int halo_cli_trace_check(const halo_runtime_opts_t *o, const char *const *paths, halo_error_t *err)
{
	if (o->trace_fxt && fxt_folder_check(o->trace_fxt, err))
		return err->code;
	/* The trace would be a folder StarPU makes, or a file among its files. */
	if (o->trace && o->trace_fxt && halo_path_within(o->trace, o->trace_fxt))
		return halo_error_set(err, HALO_EINVAL, "--trace: '%s' %s --trace-fxt's folder '%s'; "
				      "give them separate places", o->trace,
				      halo_path_within(o->trace_fxt, o->trace) ? "is" : "lies inside",
				      o->trace_fxt);
	const char *opt[2] = {"--trace", "--trace-fxt"}, *val[2] = {o->trace, o->trace_fxt};
	for (int k = 0; k < 2; k++)
		for (int i = 0; val[k] && paths[i]; i++)
			if (halo_path_within(val[k], paths[i])) /* writing it would destroy that */
				return halo_error_set(err, HALO_EINVAL, "%s: '%s' %s %s, which this run "
						      "reads or writes", opt[k], val[k],
						      halo_path_within(paths[i], val[k]) ? "is"
										       : "lies inside",
						      paths[i]);
	return HALO_OK;
}

/* Prints "halo: LINE". Under mpirun every rank reads the same command
 * line and files, so most failures before the ranks connect are every
 * rank's: rank 0 says it, and mpirun ends the others when it exits (in
 * about 1 s here); after they connect the ranks agree, and only rank 0
 * comes here. Another rank waits 5 s for that end first (rank 0 may
 * start late on another node), and then, having failed on its own, says
 * so naming itself. A launcher that ends no job at a failed rank (srun
 * without --kill-on-bad-exit) gets a line from each. */
static void say(const char *line)
{
	int rank = halo__runtime_launched_rank();
	if (rank > 0) {
		struct timespec wait = {5, 0};
		while (nanosleep(&wait, &wait) != 0 && errno == EINTR && !halo_interrupted())
			;
		if (!halo_interrupted())
			fprintf(stderr, "halo: rank %d: %s\n", rank, line);
		return;
	}
	fprintf(stderr, "halo: %s\n", line);
}

void halo_cli_usage_line(const char *fmt, ...)
{
	char line[sizeof ((halo_error_t *)0)->msg];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	say(line);
}

/* Reports a getopt_long failure as one line on stderr and returns
 * HALO_EXIT_USAGE. c is what getopt_long returned (':' for a missing value
 * when the optstring starts with ':', '?' otherwise); bad is argv[optind-1]. */
static int usage_error(const char *cmd, int c, const char *bad)
{
	if (c == ':')
		halo_cli_usage_line("%s: option '%s' needs a value; see 'halo %s --help'", cmd, bad,
				    cmd);
	else
		halo_cli_usage_line("%s: unknown option '%s'; see 'halo %s --help'", cmd, bad, cmd);
	return HALO_EXIT_USAGE;
}

int halo_cli_empty_args(const char *cmd, char **args, int n)
{
	for (int i = 0; i < n; i++)
		if (!args[i][0]) {
			halo_cli_usage_line("%s: argument %d is an empty path; see 'halo %s --help'",
					    cmd, i + 1, cmd);
			return -1;
		}
	return 0;
}

int halo_cli_expanded_glob(const char *cmd, char **args, int n)
{
	for (int i = 0; i < 2; i++)
		if (i >= n || halo_fs_is_dir(args[i]) || !halo_fs_exists(args[i]) ||
		    !(halo_path_has_ext(args[i], ".tif") || halo_path_has_ext(args[i], ".tiff")))
			return 0;
	halo_cli_usage_line("%s: %d paths, from %s on: to read TIFF files as one volume, quote their "
			    "pattern ('DIR/plane_*.tif') or name their folder; see 'halo %s --help'",
			    cmd, n, args[0], cmd);
	return -1;
}

/* getopt_long's '?' covers an unknown option, a value given to a flag and
 * an ambiguous abbreviation; each gets its own line. `before` is optind
 * before the call: an unknown letter inside a cluster (-xy) leaves optind
 * where it was, so the letter itself (optopt) is named then. */
static int bad_option(const char *cmd, int c, char **argv, int before,
		      const struct option *longopts)
{
	const char *arg = argv[optind - 1];
	int long_arg = optind > before && strncmp(arg, "--", 2) == 0;
	if (c == '?' && !long_arg && optopt) {
		char letter[3] = {'-', (char)optopt, 0};
		/* A byte of a multibyte character: name the whole argument. */
		const char *whole = optind > before ? arg : argv[optind];
		return usage_error(cmd, c, (unsigned char)optopt < 128 ? letter : whole);
	}
	if (c != '?' || !long_arg)
		return usage_error(cmd, c, arg);
	const char *name = arg + 2, *eq = strchr(name, '=');
	size_t len = eq ? (size_t)(eq - name) : strlen(name);
	char matches[256] = "";
	const struct option *only = NULL;
	int nmatch = 0;
	for (const struct option *o = longopts; o->name; o++) {
		if (strncmp(o->name, name, len) != 0)
			continue;
		if (strlen(o->name) == len) { /* an exact match failed: it took a value */
			only = o;
			nmatch = 1;
			break;
		}
		size_t used = strlen(matches);
		snprintf(matches + used, sizeof matches - used, "%s--%s", nmatch ? ", " : "", o->name);
		only = o;
		nmatch++;
	}
	if (nmatch == 1 && eq && only->has_arg == no_argument) {
		halo_cli_usage_line("%s: option '--%s' takes no value; see 'halo %s --help'", cmd,
				    only->name, cmd);
		return HALO_EXIT_USAGE;
	}
	if (nmatch < 2)
		return usage_error(cmd, c, arg);
	halo_cli_usage_line("%s: option '--%.*s' is ambiguous: %s", cmd, (int)len, name, matches);
	return HALO_EXIT_USAGE;
}

static const char *shortopts = ":h";

void halo_cli_options_begin(void)
{
	optind = 1;
	opterr = 0;
	shortopts = ":h";
}

void halo_cli_options_short(const char *optstring)
{
	shortopts = optstring;
}

int halo_cli_next_option(int argc, char **argv, const char *cmd, const struct option *longopts,
			 const char *help, halo_runtime_opts_t *rt, int *status)
{
	halo_error_t err = {0};
	int c, rc;
	for (int before = optind; (c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1;
	     before = optind) {
		/* "-o=FILE", as "--ncpu=4" is written: getopt would name the
		 * file "=FILE". */
		if (optarg && c > 0 && c < 128 && optarg[0] == '=' && optind >= 1 &&
		    optarg == argv[optind - 1] + 2)
			optarg++;
		/* "--trace --quiet" lost its value, rather than naming a file
		 * "--quiet". */
		if (optarg && optind >= 2 && argv[optind - 1] == optarg && strncmp(optarg, "--", 2) == 0 &&
		    optarg[2] && c != '?' && c != ':') {
			halo_cli_usage_line("%s: option '%s' needs a value (got '%s'); see 'halo %s "
					    "--help'", cmd, argv[optind - 2], optarg, cmd);
			*status = HALO_EXIT_USAGE;
			return HALO_CLI_DONE;
		}
		if (rt && runtime_option(c, optarg, rt, &err, &rc)) {
			if (rc) {
				halo_cli_error(&err);
				*status = HALO_EXIT_FAIL;
				return HALO_CLI_DONE;
			}
			continue;
		}
		if (c == 'h' || c == HALO_OPT_HELP) {
			fputs(help, stdout);
			*status = HALO_EXIT_OK;
			return HALO_CLI_DONE;
		}
		if (c == '?' || c == ':') {
			*status = bad_option(cmd, c, argv, before, longopts);
			return HALO_CLI_DONE;
		}
		return c;
	}
	return -1;
}

static int command_argc;
static char **command_argv;

void halo_cli_command_set(int argc, char **argv)
{
	command_argc = argc;
	command_argv = argv;
}

int halo_cli_same_command(const char *file, halo_error_t *err)
{
	uint32_t h = 0;
	for (int i = 0; i < command_argc; i++)
		h = starpu_hash_crc32c_be_n(command_argv[i], strlen(command_argv[i]) + 1, h);
	void *text = NULL;
	size_t len = 0;
	if (file && halo_fs_read(file, &text, &len, NULL) == HALO_OK)
		h = starpu_hash_crc32c_be_n(text, len, h);
	free(text);
	int rc = !halo__mpi_differs(h)
		 ? HALO_OK
		 : halo_error_set(err, HALO_EINVAL, "its command line%s differs from rank 0's: "
				  "every rank must run the same command%s", file ? " or this file" : "",
				  file ? " on the same file" : "");
	if (rc && file)
		halo_error_prefix(err, "%s", file);
	return halo__mpi_agree(rc, err);
}

int halo_cli_finish(halo_runtime_t *rt, int status, const halo_error_t *failed)
{
	halo_error_t err = {0};
	if (halo_runtime_finish(rt, status == HALO_EXIT_OK ? NULL : failed, &err) &&
	    status == HALO_EXIT_OK) {
		/* Its outputs are in place by now: said, so that a rerun is
		 * not taken for the remedy. */
		size_t len = strlen(err.msg);
		snprintf(err.msg + len, sizeof err.msg - len, " (the run itself succeeded)");
		halo_cli_error(&err);
		status = HALO_EXIT_FAIL;
	}
	return status;
}

void halo_cli_error(const halo_error_t *err)
{
	/* One line, whatever a bad file put in the message (a parser's
	 * "near '...'" quotes its bytes): control characters become '?'. */
	char line[sizeof err->msg];
	say(halo__shown(err->msg[0] ? err->msg : halo_strerror(err->code), line, sizeof line));
}

int halo_cli_output_apart(const char *out, const char *in, const char *name, halo_error_t *err)
{
	if (strcmp(in, out) == 0 || halo_path_same(in, out))
		return halo_error_set(err, HALO_EINVAL, "%s: OUT is the same as %s", out, name);
	if (halo_path_within(out, in) || halo_path_within(in, out))
		return halo_error_set(err, HALO_EINVAL, "%s: OUT lies %s %s (%s)", out,
				      halo_path_within(out, in) ? "inside" : "around", name, in);
	return HALO_OK;
}
