/* Command-line handling shared by the subcommands: the StarPU runtime
 * options and the one-line usage errors (exit 2) that a typo deserves. */
#include "config.h"
#include "cli/cli.h"
#include "util/util.h"


int halo_cli_runtime_option(int opt, const char *arg, halo_runtime_opts_t *opts,
			    halo_error_t *err, int *rc)
{
	long v;
	*rc = HALO_OK;
	switch (opt) {
	case HALO_OPT_NCPU:
		*rc = halo__parse_int(arg, 0, 4096, "--ncpu", &v, err);
		if (!*rc)
			opts->ncpu = (int)v;
		return 1;
	case HALO_OPT_NCUDA:
		*rc = halo__parse_int(arg, 0, 64, "--ncuda", &v, err);
		if (!*rc)
			opts->ncuda = (int)v;
		return 1;
	case HALO_OPT_SCHED:
		opts->sched = arg;
		return 1;
	case HALO_OPT_VERBOSE:
		opts->verbose = 1;
		return 1;
	case HALO_OPT_TRACE:
		opts->trace = arg;
		return 1;
	case HALO_OPT_TRACE_FXT:
		opts->trace_fxt = arg;
		return 1;
	}
	return 0;
}

int halo_cli_usage_error(const char *cmd, int c, const char *bad)
{
	if (c == ':')
		fprintf(stderr, "halo: %s: option '%s' needs a value; see 'halo %s --help'\n",
			cmd, bad, cmd);
	else
		fprintf(stderr, "halo: %s: unknown option '%s'; see 'halo %s --help'\n",
			cmd, bad, cmd);
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
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		if (halo_cli_runtime_option(c, optarg, rt, &err, &rc)) {
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
			*status = halo_cli_usage_error(cmd, c, argv[optind - 1]);
			return HALO_CLI_DONE;
		}
		return c;
	}
	return -1;
}

int halo_cli_finish(halo_runtime_t *rt, int status)
{
	halo_error_t err = {0};
	if (halo_runtime_finish(rt, &err) && status == HALO_EXIT_OK) {
		halo_cli_error(&err);
		status = HALO_EXIT_FAIL;
	}
	return status;
}

void halo_cli_error(const halo_error_t *err)
{
	fprintf(stderr, "halo: %s\n", err->msg[0] ? err->msg : halo_strerror(err->code));
}
