/* `halo graph dot|stats PIPELINE.json`: a pipeline's graph without running
 * it, as Graphviz DOT (the steps, or every chunk task with --tasks) or as
 * counts of tasks, edges and bytes. */
#include "config.h"
#include "cli/cli.h"
#include "runtime/runtime.h"
#include "io/fs.h"
#include "io/outdir.h"
#include "tasks/pipeline.h"
#include "tasks/plan.h"
#include "util/progress.h"
#include "util/util.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

static const char graph_help[] =
	"usage: halo graph dot PIPELINE.json [--tasks] [-o FILE]\n"
	"       halo graph stats PIPELINE.json [--json]\n\n"
	"dot prints the pipeline's graph in Graphviz DOT (render it with\n"
	"'dot -Tsvg'): its steps, steps no output needs in gray; with --tasks,\n"
	"every chunk of every step with its coordinates and the chunks it reads\n"
	"(stats' \"chunks\", and a node per partial of a reduction to a scalar,\n"
	"which stats does not count as chunks; a map_overlap chunk is two tasks:\n"
	"its halo and its kernel).\n"
	"stats prints the counts of steps, tasks, edges and bytes after culling\n"
	"and fusion, and how long building and lowering the graph took.\n\n"
	"  --tasks         dot: the chunk graph\n"
	"  -o FILE         dot: write to FILE instead of standard output ('-')\n"
	"  --json          stats: one JSON object\n";

enum { OPT_TASKS = 1400 };

static int stats(const halo_graph_t *g, const halo_plan_t *p, double seconds, int json)
{
	halo_plan_stats_t st;
	halo_plan_stats(p, &st);
	if (json) {
		printf("{\"steps\": %d, \"plan_nodes\": %d, \"tasks\": %lld, \"edges\": %lld, "
		       "\"chunks\": %lld, \"bytes\": %llu, \"build_seconds\": %.6f, \"tasks_by_kind\": {",
		       halo_graph_count(g), p->n, (long long)st.tasks, (long long)st.edges,
		       (long long)st.chunks, (unsigned long long)st.bytes, seconds);
		for (int k = 0; k <= HALO_PN_STORE; k++)
			printf("%s\"%s\": %lld", k ? ", " : "", halo_pn_kind_name((halo_pn_kind_t)k),
			       (long long)st.tasks_by_kind[k]);
		printf("}}\n");
		return HALO_EXIT_OK;
	}
	printf("steps:      %d (%d after culling and fusion)\n", halo_graph_count(g), p->n);
	printf("tasks:      %lld\n", (long long)st.tasks);
	for (int k = 0; k <= HALO_PN_STORE; k++)
		if (st.tasks_by_kind[k])
			printf("  %-12s %lld\n", halo_pn_kind_name((halo_pn_kind_t)k),
			       (long long)st.tasks_by_kind[k]);
	printf("edges:      %lld\n", (long long)st.edges);
	char all[32];
	printf("chunks:     %lld (%s in all)\n", (long long)st.chunks,
	       halo__bytes(st.bytes, all, sizeof all));
	printf("built in:   %.3f s\n", seconds);
	return HALO_EXIT_OK;
}

int halo_cli_graph(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"tasks", no_argument, NULL, OPT_TASKS},
		{"json", no_argument, NULL, HALO_OPT_JSON},
		{"help", no_argument, NULL, HALO_OPT_HELP},
		{NULL, 0, NULL, 0},
	};
	int c, status, tasks = 0, json = 0;
	const char *outfile = NULL;
	/* Under mpirun every rank reads the same files: rank 0 alone says
	 * what they hold (or writes -o), as halo info VOLUME does. */
	if (halo__runtime_launched_rank() > 0)
		return HALO_EXIT_OK;
	halo_cli_options_begin();
	halo_cli_options_short(":ho:");
	while ((c = halo_cli_next_option(argc, argv, "graph", longopts, graph_help, NULL,
					 &status)) != -1) {
		switch (c) {
		case HALO_CLI_DONE: return status;
		case OPT_TASKS: tasks = 1; break;
		case HALO_OPT_JSON: json = 1; break;
		case 'o': outfile = optarg; break;
		}
	}
	if (argc - optind != 2 || (strcmp(argv[optind], "dot") && strcmp(argv[optind], "stats"))) {
		halo_cli_usage_line("graph: needs 'dot' or 'stats' and a PIPELINE.json; see 'halo "
				    "graph --help'");
		return HALO_EXIT_USAGE;
	}
	int dot = strcmp(argv[optind], "dot") == 0;
	if (dot ? json : (tasks || outfile)) {
		halo_cli_usage_line("graph: %s applies to '%s' only; see 'halo graph --help'",
				    dot ? "--json" : tasks ? "--tasks" : "-o", dot ? "stats" : "dot");
		return HALO_EXIT_USAGE;
	}
	if (outfile && strcmp(outfile, "-") == 0)
		outfile = NULL; /* the usual name for standard output */
	halo_error_t err = {0};
	halo_graph_t *g = NULL;
	halo_plan_t *p = NULL;
	FILE *f = stdout;
	char tmp[4200] = ""; /* OUTFILE's temporary name, while there is one */
	double t0 = halo_now();
	status = HALO_EXIT_FAIL;
	if (halo_pipeline_load(argv[optind + 1], &g, &err))
		goto fail;
	if (halo_plan_build(g, &p, &err)) {
		halo_error_prefix(&err, "%s", argv[optind + 1]);
		goto fail;
	}
	if (outfile) { /* nor any file the pipeline reads or writes */
		const char **paths = halo_pipeline_paths(argv[optind + 1], g);
		for (int i = 0; paths && paths[i]; i++)
			if (halo_path_within(outfile, paths[i])) {
				halo_error_set(&err, HALO_EINVAL, "%s: -o would overwrite %s, which the "
					       "pipeline reads or writes", outfile, paths[i]);
				break;
			}
		if (!paths)
			halo_error_set(&err, HALO_ENOMEM, "out of memory");
		free(paths);
		if (!err.code && !halo_fs_replaceable_report(outfile, "digraph halo"))
			halo_error_set(&err, HALO_EEXIST, "%s: exists and is not a halo graph; halo "
				       "replaces only its own", outfile);
		if (err.code)
			goto fail;
	}
	double seconds = halo_now() - t0;
	if (!dot) {
		status = stats(g, p, seconds, json);
		goto done;
	}
	/* Written beside OUTFILE and renamed: no half-written file. */
	if (outfile) {
		if (!(f = halo_fs_tmp_open(outfile, tmp, sizeof tmp))) {
			f = stdout;
			tmp[0] = '\0';
			halo_error_set(&err, HALO_EIO, "%s: cannot create: %s", outfile, strerror(errno));
			goto fail;
		}
	}
	if (halo_graph_dot(g, p, tasks, f, &err))
		goto fail;
	if (f != stdout) {
		FILE *written = f;
		f = stdout;
		int bad = halo_fs_tmp_close(written, tmp, outfile);
		tmp[0] = '\0'; /* renamed into place, or removed */
		if (bad) {
			halo_error_set(&err, HALO_EIO, "%s: cannot write: %s", outfile, strerror(errno));
			goto fail;
		}
	}
	status = HALO_EXIT_OK;
	goto done;
fail:
	halo_cli_error(&err);
done:
	if (f != stdout)
		fclose(f);
	if (tmp[0])
		unlink(tmp);
	halo_plan_free(p);
	halo_graph_free(g);
	return status;
}
