/* `halo trace summary|critical-path|compare`: what a trace recorded with
 * --trace says about a run: where the time went per codelet and worker,
 * how busy each worker was, what moved over each link, the longest chain
 * of dependent tasks, and two runs side by side. */
#include "config.h"
#include "cli/cli.h"
#include "runtime/runtime.h"
#include "io/outdir.h"
#include "cli/trace_html.h"
#include "io/fs.h"
#include "cli/trace_stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char trace_help[] =
	"usage: halo trace summary FILE [--json]\n"
	"       halo trace critical-path FILE [--json]\n"
	"       halo trace compare A B [--json]\n"
	"       halo trace html FILE -o REPORT.html\n\n"
	"FILE is a trace written by --trace (run, deconvolve, convert, demo, bench):\n"
	"Chrome Trace Event JSON, which Perfetto (ui.perfetto.dev) and\n"
	"chrome://tracing open.\n"
	"summary: per codelet and worker kind the count, total, mean, p50 and p95\n"
	"duration and the mean error of StarPU's performance model; per worker the\n"
	"utilisation and idle share; bytes and transfers per link; the makespan.\n"
	"critical-path: the longest chain of dependent tasks, how far the makespan\n"
	"is above it and above the work/workers bound, and the tasks on it.\n"
	"compare: the figures of two traces side by side, with B/A ratios.\n"
	"html: one self-contained HTML file (works offline): a Gantt chart by worker\n"
	"with zoom, utilisation over time, and the summary tables.\n\n"
	"  --json          one JSON object instead of tables\n"
	"  -o FILE         html: the report to write ('-': standard output)\n";

/* A trace of a run that failed or was interrupted says so first (after
 * lead, "" or which of two it is). */
static void print_outcome(const char *lead, const struct trace *tr)
{
	if (strcmp(tr->outcome, "ok") == 0)
		return;
	int stopped = strcmp(tr->outcome, "interrupted") == 0;
	/* The error line of a stopped run begins with the word again. */
	const char *why = tr->error && stopped && !strncmp(tr->error, "interrupted", 11)
				  ? tr->error + 11 + strspn(tr->error + 11, ";, ")
				  : tr->error;
	printf("%sthe run %s%s%s; %zu task%s did no work after that (left out of the codelet "
	       "figures)\n", lead, stopped ? "was interrupted" : tr->outcome, why && *why ? ": " : "",
	       why ? why : "", tr->skipped, tr->skipped == 1 ? "" : "s");
}

static void print_summary(const char *path, const struct trace *tr)
{
	printf("%s: %zu tasks, makespan %.3f ms, scheduler %s, %d workers\n", path, tr->n,
	       tr->makespan / 1e3, tr->scheduler ? tr->scheduler : "?", tr->nworkers);
	print_outcome("", tr);
	struct trace_group *g;
	size_t ng;
	if (trace_groups(tr, &g, &ng) == 0) {
		printf("\n%-16s %-5s %8s %11s %10s %10s %10s %10s\n", "codelet", "kind", "count",
		       "total ms", "mean ms", "p50 ms", "p95 ms", "model err");
		for (size_t k = 0; k < ng; k++) {
			printf("%-16s %-5s %8zu %11.3f %10.4f %10.4f %10.4f ", g[k].codelet,
			       g[k].cuda ? "cuda" : "cpu", g[k].count, g[k].total / 1e3, g[k].mean / 1e3,
			       g[k].p50 / 1e3, g[k].p95 / 1e3);
			if (g[k].model_error >= 0)
				printf("%9.0f%%\n", 100 * g[k].model_error);
			else
				printf("%10s\n", "-");
		}
		free(g);
	}
	printf("\n%-32s %11s %12s %8s\n", "worker", "busy ms", "utilisation", "idle");
	for (int w = 0; w < tr->nworkers; w++) {
		double u = tr->makespan > 0 ? tr->workers[w].busy / tr->makespan : 0;
		printf("%-32s %11.3f %11.1f%% %7.1f%%\n", tr->workers[w].name, tr->workers[w].busy / 1e3,
		       100 * u, 100 * (1 - u));
	}
	json_t *mpi = json_object_get(json_object_get(tr->root, "otherData"), "mpi");
	json_t *sent = json_object_get(mpi, "bytes_sent");
	if (json_array_size(sent) > 1) {
		printf("\n%-16s %12s\n", "MPI", "MB sent");
		size_t a, b;
		json_t *row, *v;
		json_array_foreach(sent, a, row)
			json_array_foreach(row, b, v)
				if (json_number_value(v) > 0) {
					char name[64];
					snprintf(name, sizeof name, "rank %zu -> %zu", a, b);
					printf("%-16s %12.3f\n", name, json_number_value(v) / 1e6);
				}
	}
	json_t *links = json_object_get(json_object_get(tr->root, "otherData"), "links");
	if (!json_array_size(links)) {
		printf("\nlinks: no transfers (every task ran in host memory)\n");
		return;
	}
	printf("\n%-16s %12s %10s\n", "link", "MB", "transfers");
	size_t i;
	json_t *l;
	json_array_foreach(links, i, l) {
		char name[32];
		snprintf(name, sizeof name, "node %d -> %d",
			 (int)json_integer_value(json_object_get(l, "src")),
			 (int)json_integer_value(json_object_get(l, "dst")));
		printf("%-16s %12.3f %10lld\n", name,
		       (double)json_integer_value(json_object_get(l, "bytes")) / 1e6,
		       (long long)json_integer_value(json_object_get(l, "transfers")));
	}
}

static json_t *critical_json(const struct trace *tr, int with_tasks)
{
	size_t *path, len;
	double cp = trace_critical_path(tr, &path, &len);
	double work = 0;
	for (size_t i = 0; i < tr->n; i++)
		work += tr->tasks[i].end - tr->tasks[i].start;
	double bound = tr->nworkers ? work / tr->nworkers : 0;
	json_t *o = json_object();
	json_object_set_new(o, "critical_path_us", json_real(cp));
	json_object_set_new(o, "makespan_us", json_real(tr->makespan));
	json_object_set_new(o, "work_us", json_real(work));
	json_object_set_new(o, "workers", json_integer(tr->nworkers));
	json_object_set_new(o, "work_bound_us", json_real(bound));
	/* No ratio without tasks (null, as compare's). */
	json_object_set_new(o, "makespan_over_path", cp > 0 ? json_real(tr->makespan / cp) : json_null());
	json_object_set_new(o, "makespan_over_bound",
			    bound > 0 ? json_real(tr->makespan / bound) : json_null());
	if (with_tasks) {
		json_t *tasks = json_array();
		for (size_t k = 0; k < len; k++) {
			const struct trace_task *t = &tr->tasks[path[k]];
			json_t *x = json_object();
			json_object_set_new(x, "id", json_integer((json_int_t)t->id));
			json_object_set_new(x, "codelet", json_string(t->codelet));
			json_object_set_new(x, "step", json_string(t->step));
			if (t->has_chunk)
				json_object_set_new(x, "chunk", json_pack("[III]", (json_int_t)t->chunk[0],
									  (json_int_t)t->chunk[1],
									  (json_int_t)t->chunk[2]));
			json_object_set_new(x, "worker", json_integer(t->worker));
			json_object_set_new(x, "duration_us", json_real(t->end - t->start));
			json_array_append_new(tasks, x);
		}
		json_object_set_new(o, "tasks", tasks);
	}
	free(path);
	return o;
}

/* A ratio, "1.23x", or "n/a" where there is none (JSON null: a path or
 * bound of 0), as the HTML report's "-". */
static const char *times(const json_t *v, char *buf, size_t len)
{
	if (json_is_number(v))
		snprintf(buf, len, "%.2fx", json_number_value(v));
	else
		snprintf(buf, len, "n/a");
	return buf;
}

static void print_critical(const char *path, const struct trace *tr, const json_t *o)
{
	double cp = json_real_value(json_object_get(o, "critical_path_us"));
	json_t *tasks = json_object_get(o, "tasks");
	if (!tr->n) {
		printf("%s: no tasks (makespan %.3f ms)\n", path, tr->makespan / 1e3);
		print_outcome("", tr);
		return;
	}
	char over_path[32], over_bound[32];
	printf("%s: critical path %.3f ms over %zu tasks; makespan %.3f ms is %s the path and "
	       "%s the work/workers bound (%.3f ms of work on %d workers)\n", path, cp / 1e3,
	       json_array_size(tasks), tr->makespan / 1e3,
	       times(json_object_get(o, "makespan_over_path"), over_path, sizeof over_path),
	       times(json_object_get(o, "makespan_over_bound"), over_bound, sizeof over_bound),
	       json_real_value(json_object_get(o, "work_us")) / 1e3, tr->nworkers);
	print_outcome("", tr);
	printf("\n%8s  %-14s %-20s %-14s %6s %10s\n", "id", "codelet", "step", "chunk", "worker", "ms");
	size_t i;
	json_t *x;
	json_array_foreach(tasks, i, x) {
		char chunk[48] = "";
		json_t *c = json_object_get(x, "chunk");
		if (c)
			snprintf(chunk, sizeof chunk, "(%lld,%lld,%lld)",
				 (long long)json_integer_value(json_array_get(c, 0)),
				 (long long)json_integer_value(json_array_get(c, 1)),
				 (long long)json_integer_value(json_array_get(c, 2)));
		printf("%8lld  %-14s %-20s %-14s %6lld %10.4f\n",
		       (long long)json_integer_value(json_object_get(x, "id")),
		       json_string_value(json_object_get(x, "codelet")),
		       json_string_value(json_object_get(x, "step")), chunk,
		       (long long)json_integer_value(json_object_get(x, "worker")),
		       json_real_value(json_object_get(x, "duration_us")) / 1e3);
	}
}

/* The figures compared: makespan, work, critical path, and per codelet
 * total and mean time. */
static json_t *figures(const struct trace *tr)
{
	json_t *o = json_object();
	json_t *c = critical_json(tr, 0);
	json_object_set_new(o, "makespan_us", json_real(tr->makespan));
	json_object_set_new(o, "tasks", json_integer((json_int_t)tr->n));
	json_object_set(o, "work_us", json_object_get(c, "work_us"));
	json_object_set(o, "critical_path_us", json_object_get(c, "critical_path_us"));
	json_decref(c);
	struct trace_group *g;
	size_t ng;
	if (trace_groups(tr, &g, &ng) == 0) {
		for (size_t k = 0; k < ng; k++) {
			char key[96];
			snprintf(key, sizeof key, "%s/%s total_us", g[k].codelet, g[k].cuda ? "cuda" : "cpu");
			json_object_set_new(o, key, json_real(g[k].total));
			snprintf(key, sizeof key, "%s/%s mean_us", g[k].codelet, g[k].cuda ? "cuda" : "cpu");
			json_object_set_new(o, key, json_real(g[k].mean));
		}
		free(g);
	}
	return o;
}

/* The tasks per codelet of tr (skipped ones too: the graph run), at most
 * max codelets; returns how many. */
static size_t codelet_counts(const struct trace *tr, const char **names, size_t *counts,
			     size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < tr->n; i++) {
		size_t k = 0;
		while (k < n && strcmp(names[k], tr->tasks[i].codelet))
			k++;
		if (k == n && n < max) {
			names[n] = tr->tasks[i].codelet;
			counts[n++] = 0;
		}
		if (k < n)
			counts[k]++;
	}
	return n;
}

static size_t count_of(const char *const *names, const size_t *counts, size_t n,
		       const char *name)
{
	for (size_t k = 0; k < n; k++)
		if (!strcmp(names[k], name))
			return counts[k];
	return 0;
}

/* Whether a and b ran the same graph, as far as their tasks per codelet
 * tell; where not, what differs ("rl 8 against 12, ...") into what. */
static int same_graph(const struct trace *a, const struct trace *b, char *what, size_t len)
{
	const char *names[2][64];
	size_t counts[2][64], n[2] = {codelet_counts(a, names[0], counts[0], 64),
				      codelet_counts(b, names[1], counts[1], 64)};
	int same = 1;
	*what = '\0';
	/* a's codelets, then those of b's that a lacks */
	for (int side = 0; side < 2; side++)
		for (size_t i = 0; i < n[side]; i++) {
			const char *name = names[side][i];
			size_t x = count_of(names[0], counts[0], n[0], name),
			       y = count_of(names[1], counts[1], n[1], name);
			if (x == y || (side && x))
				continue;
			if (strlen(what) + 64 < len)
				snprintf(what + strlen(what), len - strlen(what), "%s%s %zu against %zu",
					 same ? "" : ", ", name, x, y);
			same = 0;
		}
	return same;
}

static void set_outcome(json_t *o, const char *side, const struct trace *tr)
{
	char key[32];
	snprintf(key, sizeof key, "outcome_%s", side);
	json_object_set_new(o, key, json_string(tr->outcome));
	snprintf(key, sizeof key, "error_%s", side);
	json_object_set_new(o, key, tr->error ? json_string(tr->error) : json_null());
	snprintf(key, sizeof key, "skipped_tasks_%s", side);
	json_object_set_new(o, key, json_integer((json_int_t)tr->skipped));
}

static json_t *compare_json(const struct trace *a, const struct trace *b)
{
	json_t *fa = figures(a), *fb = figures(b), *rows = json_array();
	const char *key;
	json_t *v;
	json_object_foreach(fa, key, v) {
		json_t *w = json_object_get(fb, key);
		double x = json_number_value(v), y = w ? json_number_value(w) : NAN;
		json_t *r = json_object();
		json_object_set_new(r, "figure", json_string(key));
		json_object_set_new(r, "a", json_real(x));
		json_object_set_new(r, "b", isfinite(y) ? json_real(y) : json_null());
		json_object_set_new(r, "b_over_a", isfinite(y) && x > 0 ? json_real(y / x) : json_null());
		json_array_append_new(rows, r);
	}
	json_object_foreach(fb, key, v) {
		if (json_object_get(fa, key))
			continue;
		json_array_append_new(rows, json_pack("{s:s,s:n,s:f,s:n}", "figure", key, "a", "b",
						      json_number_value(v), "b_over_a"));
	}
	json_decref(fa);
	json_decref(fb);
	json_t *o = json_object();
	json_object_set_new(o, "scheduler_a", json_string(a->scheduler ? a->scheduler : ""));
	json_object_set_new(o, "scheduler_b", json_string(b->scheduler ? b->scheduler : ""));
	set_outcome(o, "a", a);
	set_outcome(o, "b", b);
	char differs[512];
	int same = same_graph(a, b, differs, sizeof differs);
	json_object_set_new(o, "same_graph", json_boolean(same));
	if (!same)
		json_object_set_new(o, "graph_difference", json_string(differs));
	json_object_set_new(o, "figures", rows);
	return o;
}

static void print_compare(const char *pa, const char *pb, const struct trace *a,
			  const struct trace *b, const json_t *o)
{
	printf("A: %s (%s)\nB: %s (%s)\n", pa, json_string_value(json_object_get(o, "scheduler_a")),
	       pb, json_string_value(json_object_get(o, "scheduler_b")));
	print_outcome("A: ", a);
	print_outcome("B: ", b);
	if (!json_is_true(json_object_get(o, "same_graph")))
		printf("A and B ran different task graphs (tasks per codelet: %s): their figures "
		       "compare different work\n",
		       json_string_value(json_object_get(o, "graph_difference")));
	printf("\n%-32s %14s %14s %8s\n", "figure", "A", "B", "B/A");
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(o, "figures"), i, r) {
		const char *fig = json_string_value(json_object_get(r, "figure"));
		int us = strstr(fig, "_us") != NULL;
		double scale = us ? 1e-3 : 1;
		char name[64];
		snprintf(name, sizeof name, "%s", fig);
		char *p = strstr(name, "_us");
		if (p)
			strcpy(p, " ms");
		/* "critical_path ms" reads "critical path ms"; a codelet's name
		 * (before its '/') is kept as it is. */
		for (char *u = name; !strchr(name, '/') && (u = strchr(u, '_'));)
			*u = ' ';
		printf("%-32s", name);
		json_t *vals[2] = {json_object_get(r, "a"), json_object_get(r, "b")};
		for (int k = 0; k < 2; k++) {
			if (json_is_number(vals[k]))
				printf(strcmp(fig, "tasks") ? " %14.3f" : " %14.0f",
				       json_number_value(vals[k]) * scale);
			else
				printf(" %14s", "-");
		}
		json_t *ratio = json_object_get(r, "b_over_a");
		if (json_is_number(ratio))
			printf(" %7.2fx\n", json_number_value(ratio));
		else
			printf(" %8s\n", "-");
	}
}

static int print_json(json_t *o)
{
	int rc = json_dumpf(o, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
	printf("\n");
	json_decref(o);
	return rc == 0 ? HALO_EXIT_OK : HALO_EXIT_FAIL;
}

int halo_cli_trace(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"json", no_argument, NULL, HALO_OPT_JSON},
		{"help", no_argument, NULL, HALO_OPT_HELP},
		{NULL, 0, NULL, 0},
	};
	int c, status, json = 0;
	const char *report = NULL;
	/* Under mpirun every rank reads the same files: rank 0 alone says
	 * what they hold (or writes -o), as halo info VOLUME does. */
	if (halo__runtime_launched_rank() > 0)
		return HALO_EXIT_OK;
	halo_cli_options_begin();
	halo_cli_options_short(":ho:");
	while ((c = halo_cli_next_option(argc, argv, "trace", longopts, trace_help, NULL,
					 &status)) != -1) {
		if (c == HALO_CLI_DONE)
			return status;
		if (c == HALO_OPT_JSON)
			json = 1;
		if (c == 'o')
			report = optarg;
	}
	int nargs = argc - optind;
	const char *cmd = nargs > 0 ? argv[optind] : "";
	int want = strcmp(cmd, "compare") == 0 ? 3 : 2;
	if (strcmp(cmd, "html") == 0 && nargs == 2 && !report) {
		halo_cli_usage_line("trace: html needs -o REPORT.html; see 'halo trace --help'");
		return HALO_EXIT_USAGE;
	}
	if (report && strcmp(cmd, "html") != 0 && nargs == want) {
		halo_cli_usage_line("trace: -o applies to html only; see 'halo trace --help'");
		return HALO_EXIT_USAGE;
	}
	int known = !strcmp(cmd, "summary") || !strcmp(cmd, "critical-path") ||
		    !strcmp(cmd, "compare") || !strcmp(cmd, "html");
	if (known && nargs != want) {
		halo_cli_usage_line("trace: %s takes %d trace%s, got %d; see 'halo trace --help'", cmd,
				    want - 1, want == 2 ? "" : "s", nargs - 1);
		return HALO_EXIT_USAGE;
	}
	if (!known || (strcmp(cmd, "html") == 0) != (report != NULL)) {
		if (!known && *cmd)
			halo_cli_usage_line("trace: unknown subcommand '%s' (summary, critical-path, "
					    "compare, html); see 'halo trace --help'", cmd);
		else
			halo_cli_usage_line("trace: needs 'summary FILE', 'critical-path FILE', "
					    "'compare A B' or 'html FILE -o REPORT'; see 'halo trace "
					    "--help'");
		return HALO_EXIT_USAGE;
	}
	if (json && report) {
		halo_cli_usage_line("trace: html writes a report, not JSON; see 'halo trace --help'");
		return HALO_EXIT_USAGE;
	}
	halo_error_t err = {0};
	struct trace a = {0}, b = {0};
	status = HALO_EXIT_FAIL;
	int to_stdout = report && strcmp(report, "-") == 0; /* as graph dot's -o */
	if (report && !to_stdout && halo_path_within(report, argv[optind + 1])) {
		halo_error_set(&err, HALO_EINVAL, "%s: -o would overwrite the trace", report);
		halo_cli_error(&err);
		return status;
	}
	const char *why = report && !to_stdout && !halo_fs_is_dir(report)
				  ? halo_fs_uncreatable(report) : NULL;
	if (why) {
		halo_error_set(&err, HALO_EINVAL, "%s: cannot be written here: %s", report, why);
		halo_cli_error(&err);
		return status;
	}
	if (report && !to_stdout && !halo_fs_is_dir(report) &&
	    !halo_fs_replaceable_report(report, "<title>halo trace</title>")) {
		halo_error_set(&err, HALO_EEXIST, "%s: exists and is not a halo report; halo replaces "
			       "only its own", report);
		halo_cli_error(&err);
		return status;
	}
	if (trace_load(argv[optind + 1], &a, &err) ||
	    (want == 3 && trace_load(argv[optind + 2], &b, &err))) {
		halo_cli_error(&err);
		goto done;
	}
	if (strcmp(cmd, "summary") == 0) {
		if (json) {
			status = print_json(trace_summary_json(&a));
		} else {
			print_summary(argv[optind + 1], &a);
			status = HALO_EXIT_OK;
		}
	} else if (strcmp(cmd, "html") == 0) {
		json_t *o = critical_json(&a, 1);
		json_object_set_new(o, "length", json_integer((json_int_t)json_array_size(
							  json_object_get(o, "tasks"))));
		json_object_del(o, "tasks");
		if (trace_html_write(&a, argv[optind + 1], o, to_stdout ? NULL : report, &err))
			halo_cli_error(&err);
		else
			status = HALO_EXIT_OK;
		json_decref(o);
	} else if (strcmp(cmd, "critical-path") == 0) {
		json_t *o = critical_json(&a, 1);
		if (json) {
			status = print_json(o);
		} else {
			print_critical(argv[optind + 1], &a, o);
			json_decref(o);
			status = HALO_EXIT_OK;
		}
	} else {
		json_t *o = compare_json(&a, &b);
		if (json) {
			status = print_json(o);
		} else {
			print_compare(argv[optind + 1], argv[optind + 2], &a, &b, o);
			json_decref(o);
			status = HALO_EXIT_OK;
		}
	}
done:
	trace_free(&a);
	trace_free(&b);
	return status;
}
