/* `halo run PIPELINE.json`: executes a pipeline file (docs/pipeline.md) on
 * every CPU core and GPU; outputs appear only when all of them are
 * complete, and scalar reductions are printed as "STEP: VALUE". */
#include "config.h"
#include "cli/cli.h"
#include "cli/compute.h"
#include "runtime/runtime.h"
#include "tasks/execute.h"
#include "tasks/pipeline.h"
#include "util/signals.h"
#include "util/util.h"

#include <jansson.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char run_help[] =
	"usage: halo run PIPELINE.json [options]\n\n"
	"Runs a pipeline file: named steps (from_zarr, from_tiff, rechunk, astype,\n"
	"map_blocks, map_overlap, sum/min/max/mean, to_zarr, to_tiff) that mirror\n"
	"dask.array; see docs/pipeline.md. Steps no output needs are skipped, chains\n"
	"of elementwise steps run as one task per chunk, and chunks stream through\n"
	"memory region by region. Outputs are written under temporary names and\n"
	"appear only when every output is complete; inputs are never modified.\n\n"
	"  --memory SIZE   bound on chunks in flight, e.g. 2G (default: RAM/4)\n"
	"  --dry-run       check the pipeline and print its plan; compute nothing\n"
	"  --json          print the results and statistics as one JSON object\n"
	"  --quiet         no progress line or summary\n" HALO_CLI_RUNTIME_HELP;

enum { OPT_MEMORY = 1300, OPT_DRY_RUN, OPT_QUIET };

static void print_plan(halo_plan_t *p)
{
	halo_plan_stats_t st;
	halo_plan_stats(p, &st);
	for (int i = 0; i < p->n; i++) {
		const halo_pnode_t *q = p->nodes[i];
		printf("  %-12s %-24s %lld chunk%s\n", halo_pn_kind_name(q->kind), q->label,
		       (long long)q->nchunks, q->nchunks == 1 ? "" : "s");
	}
	uint64_t front, per;
	halo_plan_memory(p, &front, &per, NULL);
	char a[32], b[32], c[32];
	printf("plan: %d nodes, %lld tasks, %lld edges, %lld chunks (%s)\n", p->n,
	       (long long)st.tasks, (long long)st.edges, (long long)st.chunks,
	       halo__bytes(st.bytes, c, sizeof c));
	printf("memory: %s per output chunk in flight, %s shared by neighbouring chunks\n",
	       halo__bytes(per, a, sizeof a), halo__bytes(front, b, sizeof b));
}

/* as a value of kind (float16, float32 or float64) */
static int reads_back(const char *text, double x, halo_dtype_kind_t kind)
{
	return halo_dtype_cast(strtod(text, NULL), kind) == x;
}

/* x in "%.*e" form with the fewest digits that read back as x, the one
 * nearest x when several do: at a power of two the nearest decimal of a
 * length may not read back while its neighbour does (2^-24 is
 * 5.960464477539063e-08). */
static void shortest(double x, halo_dtype_kind_t kind, char *sci, size_t len)
{
	for (int p = 0; p <= 16; p++) {
		snprintf(sci, len, "%.*e", p, x);
		if (reads_back(sci, x, kind))
			return;
		/* The neighbours of its last digit: M +- 1 units of 10^(E - p). */
		long long m = 0;
		for (const char *c = sci; *c && *c != 'e'; c++)
			if (isdigit((unsigned char)*c))
				m = m * 10 + (*c - '0');
		int e = atoi(strchr(sci, 'e') + 1) - p;
		char best[64] = "";
		long double gap = 0;
		for (int s = -1; s <= 1; s += 2) {
			char cand[64];
			snprintf(cand, sizeof cand, "%s%llde%d", x < 0 ? "-" : "", m + s, e);
			long double d = fabsl(strtold(cand, NULL) - (long double)x);
			if (m + s > 0 && reads_back(cand, x, kind) && (!best[0] || d < gap)) {
				/* as "%.*e" writes it: d.ddde+XX */
				char dg[32];
				int nd = snprintf(dg, sizeof dg, "%lld", m + s), ex = e + nd - 1;
				snprintf(best, sizeof best, "%s%c%s%se%c%02d", x < 0 ? "-" : "", dg[0],
					 nd > 1 ? "." : "", dg + 1, ex < 0 ? '-' : '+', abs(ex));
				gap = d;
			}
		}
		if (best[0]) {
			snprintf(sci, len, "%s", best);
			return;
		}
	}
	snprintf(sci, len, "%.16e", x);
}

/* The shortest text that reads back as the result (as numpy prints it):
 * of a float32 for float32 results, of a float64 otherwise. NaN and the
 * infinities as numpy writes them; in JSON, which has no such numbers, as
 * the strings "nan", "inf", "-inf". */
static void print_value(FILE *f, const halo_expr_t *e, int json)
{
	/* As numpy types them (the node's type): a sum of integers is an
	 * integer, a mean of float32 a float32 and of integers a float64. A
	 * float32 result over float32's range is an infinity, as numpy's. */
	halo_dtype_kind_t kind = e->dtype;
	if (kind == HALO_B1) {
		fputs(e->result_i ? (json ? "true" : "True") : (json ? "false" : "False"), f);
		return;
	}
	if (halo_dtype_kind_is_int(kind)) { /* exact, uint64's bits as such */
		if (kind == HALO_U8)
			fprintf(f, "%llu", (unsigned long long)(uint64_t)e->result_i);
		else
			fprintf(f, "%lld", (long long)e->result_i);
		return;
	}
	double v = halo_dtype_cast(e->result, kind);
	if (isnan(v) || isinf(v)) {
		const char *t = isnan(v) ? "nan" : v > 0 ? "inf" : "-inf";
		fprintf(f, json ? "\"%s\"" : "%s", t);
		return;
	}
	/* The fewest significant digits that read back as the same value
	 * (as a float32 for float32 results, ...), then laid out as numpy does:
	 * positionally for 1e-4 <= |v| < 1e16 (123456790.0, not the float's
	 * exact 123456792), else as 1.5e-05. */
	char sci[64], digits[32], out[96];
	shortest(v, kind, sci, sizeof sci);
	const char *mark = strchr(sci, 'e');
	int exp10 = atoi(mark + 1), n = 0, k = 0;
	for (const char *c = sci; c < mark; c++)
		if (isdigit((unsigned char)*c))
			digits[n++] = *c;
	while (n > 1 && digits[n - 1] == '0')
		n--;
	if (signbit(v))
		out[k++] = '-';
	if (v == 0 || (fabs(v) >= 1e-4 && fabs(v) < 1e16)) {
		/* Digit i of the number has weight 10^(exp10 - i). */
		int last = n - 1 - exp10 > 1 ? n - 1 - exp10 : 1;
		for (int w = exp10 > 0 ? exp10 : 0; w >= -last; w--) {
			int i = exp10 - w;
			out[k++] = i >= 0 && i < n ? digits[i] : '0';
			if (w == 0)
				out[k++] = '.';
		}
	} else {
		out[k++] = digits[0];
		if (n > 1) {
			out[k++] = '.';
			for (int i = 1; i < n; i++)
				out[k++] = digits[i];
		}
		k += snprintf(out + k, sizeof out - (size_t)k, "e%c%02d", exp10 < 0 ? '-' : '+',
			      abs(exp10));
	}
	out[k] = '\0';
	fputs(out, f);
}

/* The trace must not land on the pipeline file or on any file it reads
 * (sources, PSFs) or writes. */
static int check_trace(const halo_runtime_opts_t *ro, const char *file, const halo_graph_t *g,
		       halo_error_t *err)
{
	const char **paths = halo_pipeline_paths(file, g);
	if (!paths)
		return halo_error_set(err, HALO_ENOMEM, "out of memory");
	int rc = halo_cli_trace_check(ro, paths, err);
	free(paths);
	return rc;
}

static const char *voxel_text(const halo_expr_t *e, char *buf, size_t len)
{
	const struct halo_space *s = &e->space;
	int n = e->ndim < 1 ? 1 : e->ndim, at = 0;
	for (int d = 3 - n; d < 3 && at >= 0 && (size_t)at < len; d++)
		at += snprintf(buf + at, len - (size_t)at, "%s%g", d > 3 - n ? "x" : "", s->voxel[d]);
	if (at >= 0 && (size_t)at < len)
		snprintf(buf + at, len - (size_t)at, " %s", s->unit[0] ? s->unit : "(no unit)");
	return buf;
}

/* The step the user named that e comes from (e itself, or what halo put
 * after it: the rechunks that unify two inputs' chunks). */
static const halo_expr_t *named(const halo_expr_t *e)
{
	while (!e->named && e->nin == 1)
		e = e->in[0];
	return e;
}

/* A step of two inputs with different voxel sizes gives its outputs the
 * first's (as they are listed): said once per such step that an output
 * comes from, since the other's was as likely meant. */
static void warn_mixed(const halo_graph_t *g)
{
	const halo_expr_t *said[16];
	int nsaid = 0;
	for (int i = 0; i < halo_graph_count(g); i++) {
		const halo_expr_t *e = halo_graph_node(g, i), *m = e->op == HALO_OP_STORE ? e->mixed : NULL;
		int k = 0;
		while (k < nsaid && said[k] != m)
			k++;
		if (!m || k < nsaid)
			continue;
		if (nsaid < 16)
			said[nsaid++] = m;
		char a[160], b[160];
		fprintf(stderr, "halo: warning: step \"%s\" combines inputs of different voxel sizes "
				"(\"%s\": %s; \"%s\": %s); its outputs take the first's\n", m->name,
			named(m->in[0])->name, voxel_text(m->in[0], a, sizeof a), named(m->in[1])->name,
			voxel_text(m->in[1], b, sizeof b));
	}
}

/* A source whose file does not store a z spacing (a stack of planes) or
 * a pixel size, stored into an OME-Zarr or a TIFF, which write the sizes
 * taken as measured: the note convert and deconvolve give. Nodes come
 * after their inputs, so one pass forward finds what each source reaches. */
static void note_guessed(const halo_graph_t *g)
{
	int n = halo_graph_count(g);
	char *reached = malloc((size_t)(n ? n : 1));
	for (int i = 0; reached && i < n; i++) {
		const halo_expr_t *src = halo_graph_node(g, i);
		if (!src->reader || !halo_reader_info(src->reader)->guessed)
			continue;
		memset(reached, 0, (size_t)n);
		reached[i] = 1;
		for (int j = i + 1; j < n; j++) {
			const halo_expr_t *e = halo_graph_node(g, j);
			for (int k = 0; k < e->nin; k++)
				reached[j] |= reached[e->in[k]->id];
			if (reached[j] && e->op == HALO_OP_STORE && e->wopts.format != HALO_FMT_ZARR) {
				halo_cli_note_voxel(halo_reader_path(src->reader),
						    halo_reader_info(src->reader), e->wopts.format, NULL);
				break;
			}
		}
	}
	free(reached);
}

/* A map_overlap whose depth falls short of its kernel's reach on an axis
 * of several chunks gives values near the chunks' edges that depend on
 * the chunks, as dask.array.map_overlap does (halo keeps that parity):
 * said once per step. */
static void warn_shallow(const halo_graph_t *g)
{
	for (int i = 0; i < halo_graph_count(g); i++) {
		const halo_expr_t *e = halo_graph_node(g, i);
		if (e->op != HALO_OP_MAP_OVERLAP)
			continue;
		int uniform = e->ov == HALO_OV_UNIFORM;
		for (int d = 3 - e->ndim; d < 3; d++) {
			int reach = uniform ? e->size / 2 : e->pn[d] / 2;
			if (e->depth[d] >= reach || e->grid[d].nblocks < 2)
				continue;
			fprintf(stderr, "halo: warning: step \"%s\": depth %d along axis %d is less than "
					"the %s's reach of %d: values near the chunks' edges depend on "
					"the chunks (as in dask.array.map_overlap)\n", named(e)->name,
				e->depth[d], d - (3 - e->ndim), uniform ? "uniform filter" : "PSF", reach);
			break;
		}
	}
}

/* What a run, or a dry run, says of its plan before computing; notes: the
 * note on sizes the sources do not store too. */
static void warn_plan(const halo_graph_t *g, halo_plan_t *plan, uint64_t memory, int notes)
{
	warn_mixed(g);
	warn_shallow(g);
	if (notes)
		note_guessed(g);
	halo_cli_warn_memory(plan, memory);
}

int halo_cli_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		HALO_CLI_RUNTIME_OPTIONS,
		{"memory", required_argument, NULL, OPT_MEMORY},
		{"dry-run", no_argument, NULL, OPT_DRY_RUN},
		{"json", no_argument, NULL, HALO_OPT_JSON},
		{"quiet", no_argument, NULL, OPT_QUIET},
		{"help", no_argument, NULL, HALO_OPT_HELP},
		{NULL, 0, NULL, 0},
	};
	halo_runtime_opts_t rt_opts;
	halo_runtime_opts_init(&rt_opts);
	halo_error_t err = {0};
	uint64_t memory = 0;
	int dry = 0, json = 0, quiet = 0, c, status;
	halo_cli_options_begin();
	while ((c = halo_cli_next_option(argc, argv, "run", longopts, run_help, &rt_opts, &status)) != -1) {
		switch (c) {
		case HALO_CLI_DONE: return status;
		case OPT_MEMORY:
			if (halo__parse_size(optarg, "--memory", &memory, &err)) {
				halo_cli_error(&err);
				return HALO_EXIT_FAIL;
			}
			break;
		case OPT_DRY_RUN: dry = 1; break;
		case HALO_OPT_JSON: json = 1; break;
		case OPT_QUIET: quiet = 1; break;
		}
	}
	if (argc - optind != 1) {
		halo_cli_usage_line("run: needs one PIPELINE.json; see 'halo run --help'");
		return HALO_EXIT_USAGE;
	}
	if (halo_cli_empty_args("run", argv + optind, 1))
		return HALO_EXIT_USAGE;
	if (dry && json) {
		halo_cli_usage_line("run: --json reports a run and --dry-run runs nothing; 'halo graph "
				    "stats --json' describes the plan");
		return HALO_EXIT_USAGE;
	}
	if (dry && (rt_opts.trace || rt_opts.trace_fxt)) {
		halo_cli_usage_line("run: --%s records a run and --dry-run runs nothing",
				    rt_opts.trace ? "trace" : "trace-fxt");
		return HALO_EXIT_USAGE;
	}
	rt_opts.memory = memory;
	rt_opts.distributed = 1; /* under mpirun the ranks share the graph */
	halo_graph_t *g = NULL;
	halo_plan_t *plan = NULL;
	halo_runtime_t *rt = NULL;
	halo_compute_stats_t st = {0};
	status = HALO_EXIT_FAIL;
	if (halo_pipeline_load(argv[optind], &g, &err) || check_trace(&rt_opts, argv[optind], g, &err))
		goto fail;
	if (halo_plan_build(g, &plan, &err)) {
		halo_error_prefix(&err, "%s", argv[optind]);
		goto fail;
	}
	/* A dry run starts no StarPU, but what it would start with is checked. */
	if (dry && (halo_runtime_opts_check(&rt_opts, &err) ||
		    halo_runtime_devices_check(&rt_opts, &err)))
		goto fail;
	/* Before StarPU starts for a run too, as convert and deconvolve:
	 * nothing, not a trace, is left of a run refused. */
	if (halo_plan_check(plan, memory, &err)) {
		halo_error_prefix(&err, "%s", argv[optind]);
		goto fail;
	}
	if (dry) {
		/* Under mpirun every rank has the same plan: one prints it. */
		if (halo__runtime_launched_rank() == 0) {
			halo_runtime_memory_warn(memory); /* as the run's start says it */
			warn_plan(g, plan, memory, !quiet);
			print_plan(plan);
		}
		status = HALO_EXIT_OK;
		goto done;
	}
	/* Below what the halos and one chunk in flight need StarPU could never
	 * allocate a task's buffers: it may hold that much (with room). */
	uint64_t front, per;
	halo_plan_memory(plan, &front, &per, NULL);
	rt_opts.memory_floor = 2 * (front + per);
	if (halo_runtime_init(&rt_opts, &rt, &err))
		goto fail;
	halo_signals_install();
	/* Under mpirun rank 0 speaks for all (the ranks agree on the outcome). */
	int speaker = halo_runtime_rank(rt) == 0;
	if (halo_runtime_ranks(rt) > 1 && halo_cli_same_command(argv[optind], &err)) {
		status = HALO_EXIT_FAIL;
		if (!speaker)
			goto done;
		goto fail;
	}
	if (speaker)
		warn_plan(g, plan, memory, !quiet && !json);
	halo_compute_opts_t co = {.memory = memory, .quiet = quiet || json || !speaker,
				  .label = "run"};
	if (halo_plan_execute(plan, &co, &st, &err)) {
		if (!speaker) {
			status = HALO_EXIT_FAIL;
			goto done;
		}
		if (err.code != HALO_EINTR)
			halo_error_prefix(&err, "%s", argv[optind]);
		goto fail;
	}
	if (!speaker) {
		status = HALO_EXIT_OK;
		goto done;
	}
	if (json) {
		printf("{\"results\": {");
		int k = 0;
		for (int i = 0; i < halo_graph_count(g); i++) {
			const halo_expr_t *e = halo_graph_node(g, i);
			if (!e->has_result)
				continue;
			json_t *js = json_string(e->name);
			char *name = js ? json_dumps(js, JSON_ENCODE_ANY) : NULL;
			printf("%s%s: ", k++ ? ", " : "", name ? name : "\"?\"");
			free(name);
			json_decref(js);
			print_value(stdout, e, 1);
		}
		printf("}, \"tasks\": %lld, \"chunks_read\": %lld, \"chunks_written\": %lld, "
		       "\"bytes_read\": %llu, \"bytes_written\": %llu, \"seconds\": %.6f}\n",
		       (long long)st.tasks, (long long)st.chunks_read, (long long)st.chunks_written,
		       (unsigned long long)st.bytes_read, (unsigned long long)st.bytes_written, st.seconds);
	} else {
		for (int i = 0; i < halo_graph_count(g); i++) {
			const halo_expr_t *e = halo_graph_node(g, i);
			if (!e->has_result)
				continue;
			printf("%s: ", e->name);
			print_value(stdout, e, 0);
			printf("\n");
		}
		if (!quiet)
			fprintf(stderr, "run: %s: %lld task%s, %lld chunk%s read, %lld written in "
					"%.2f s\n", argv[optind], (long long)st.tasks,
				st.tasks == 1 ? "" : "s", (long long)st.chunks_read,
				st.chunks_read == 1 ? "" : "s", (long long)st.chunks_written,
				st.seconds);
	}
	status = HALO_EXIT_OK;
	goto done;
fail:
	halo_cli_error(&err);
done:
	halo_plan_free(plan);
	status = halo_cli_finish(rt, status, &err);
	halo_graph_free(g);
	return status;
}
