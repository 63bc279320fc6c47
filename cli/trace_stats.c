/* Reading halo traces and their figures (see trace_stats.h). */
#include "config.h"
#include "cli/trace_stats.h"
#include "io/fs.h"
#include "util/util.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static double num(const json_t *o, const char *key, double dflt)
{
	const json_t *v = json_object_get(o, key);
	return json_is_number(v) ? json_number_value(v) : dflt;
}

/* An id (pid, tid): dflt unless an int's worth (casting 9e15 is undefined). */
static int inum(const json_t *o, const char *key, int dflt)
{
	double v = num(o, key, dflt);
	return v >= INT_MIN && v <= INT_MAX ? (int)v : dflt;
}

static int by_id(const void *a, const void *b)
{
	uint64_t x = ((const struct trace_task *)a)->id, y = ((const struct trace_task *)b)->id;
	return x < y ? -1 : x > y;
}

/* A link: its tracks' tid (runtime/trace.h's HALO_TRACE_LANE_TIDS) within
 * its rank's process (a trace joined from MPI ranks has one per rank). */
static int link_id(const json_t *e)
{
	int tid = inum(e, "tid", -1);
	return inum(e, "pid", 0) / HALO_TRACE_RANK_PIDS * HALO_TRACE_LANE_TIDS +
	       (tid < 0 ? tid : tid % HALO_TRACE_LANE_TIDS);
}

/* The data transfers (from FxT) sit on their own process's tracks, not
 * workers' (their cat, "transfer", may also be a step's name). */
static int is_transfer(const json_t *e)
{
	return inum(e, "pid", 0) % HALO_TRACE_RANK_PIDS == HALO_TRACE_TRANSFER_PID;
}

/* An integer field that fits an int, or dflt when absent; -1 as an error
 * when present but not such an integer. */
static int int_field(const json_t *o, const char *key, long dflt, long *out)
{
	const json_t *v = json_object_get(o, key);
	if (!v) {
		*out = dflt;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < INT_MIN || json_integer_value(v) > INT_MAX)
		return -1;
	*out = (long)json_integer_value(v);
	return 0;
}

/* Microseconds in 31 years: a time beyond it is no run halo recorded, and
 * sums of such times overflow to inf (which JSON cannot hold). */
#define MAX_US 1e15

static int sane_time(double v)
{
	return isfinite(v) && fabs(v) <= MAX_US;
}

int trace_load(const char *path, struct trace *tr, halo_error_t *err)
{
	memset(tr, 0, sizeof *tr);
	if (halo_fs_is_dir(path))
		return halo_error_set(err, HALO_EINVAL, "%s: a folder, not a trace", path);
	json_error_t je;
	tr->root = json_load_file(path, 0, &je);
	if (!tr->root) {
		if (je.line < 1) { /* jansson's "unable to open PATH: why": the why */
			const char *why = strrchr(je.text, ':');
			for (why = why ? why + 1 : je.text; *why == ' '; why++)
				;
			return halo_error_set(err, HALO_ENOENT, "%s: %s", path, why);
		}
		return halo_error_set(err, HALO_EFORMAT, "%s: not a trace: line %d: %s", path, je.line,
				      je.text);
	}
	json_t *events = json_object_get(tr->root, "traceEvents");
	json_t *other = json_object_get(tr->root, "otherData");
	const char *producer = json_string_value(json_object_get(other, "producer"));
	if (!json_is_array(events) || !producer || strncmp(producer, "halo ", 5) != 0) {
		trace_free(tr);
		return halo_error_set(err, HALO_EFORMAT, "%s: not a halo trace (no traceEvents written "
				      "by halo --trace)", path);
	}
	tr->makespan = num(other, "makespan_us", NAN);
	if (!sane_time(tr->makespan) || tr->makespan < 0) {
		trace_free(tr);
		return halo_error_set(err, HALO_EFORMAT, "%s: no valid makespan_us in otherData", path);
	}
	tr->scheduler = json_string_value(json_object_get(other, "scheduler"));
	/* Traces of halo before 0.1's outcome field were of any run; one
	 * that names an error failed. */
	tr->outcome = json_string_value(json_object_get(other, "outcome"));
	tr->error = json_string_value(json_object_get(other, "error"));
	tr->outcome = tr->outcome ? tr->outcome : tr->error ? "failed" : "ok";
	size_t nx = 0, nt = 0, ndeps = 0, i;
	json_t *e;
	json_array_foreach(events, i, e) {
		const char *ph = json_string_value(json_object_get(e, "ph"));
		if (ph && strcmp(ph, "X") == 0 && is_transfer(e)) {
			nt++;
		} else if (ph && strcmp(ph, "X") == 0) {
			nx++;
			ndeps += json_array_size(json_object_get(json_object_get(e, "args"), "deps"));
		}
	}
	tr->tasks = calloc(nx ? nx : 1, sizeof *tr->tasks);
	tr->deps = calloc(ndeps ? ndeps : 1, sizeof *tr->deps);
	tr->transfers = calloc(nt ? nt : 1, sizeof *tr->transfers);
	if (!tr->tasks || !tr->deps || !tr->transfers) {
		trace_free(tr);
		return halo_error_set(err, HALO_ENOMEM, "%s: out of memory", path);
	}
	size_t d = 0;
	json_array_foreach(events, i, e) {
		const char *ph = json_string_value(json_object_get(e, "ph"));
		if (!ph)
			continue;
		json_t *args = json_object_get(e, "args");
		const char *ename = json_string_value(json_object_get(e, "name"));
		if (strcmp(ph, "M") == 0 && ename && strcmp(ename, "thread_name") == 0 &&
		    inum(e, "pid", 0) % HALO_TRACE_RANK_PIDS == HALO_TRACE_TRANSFER_PID) {
			if (inum(e, "tid", -1) >= HALO_TRACE_LANE_TIDS) /* a link's later lanes */
				continue;
			struct trace_link *l = realloc(tr->links, (size_t)(tr->nlinks + 1) * sizeof *l);
			if (!l)
				continue;
			tr->links = l;
			l += tr->nlinks++;
			l->id = link_id(e);
			const char *name = json_string_value(json_object_get(args, "name"));
			halo__copy_utf8(l->name, sizeof l->name, name ? name : "?");
			continue;
		}
		if (strcmp(ph, "X") == 0 && is_transfer(e)) {
			struct trace_transfer *t = &tr->transfers[tr->ntransfers++];
			t->link = link_id(e);
			t->start = num(e, "ts", 0);
			t->end = t->start + num(e, "dur", 0);
			t->bytes = num(args, "bytes", 0);
			if (!sane_time(t->start) || !sane_time(t->end) || t->end < t->start ||
			    !(t->bytes >= 0 && t->bytes <= 1e18)) {
				trace_free(tr);
				return halo_error_set(err, HALO_EFORMAT, "%s: transfer event %zu has a "
						      "time, duration or size out of range", path, i);
			}
			t->step = ename ? ename : "data";
			continue;
		}
		if (strcmp(ph, "M") == 0 && ename && strcmp(ename, "thread_name") == 0) {
			struct trace_worker *w = realloc(tr->workers, (size_t)(tr->nworkers + 1) * sizeof *w);
			if (!w)
				continue;
			tr->workers = w;
			w += tr->nworkers++;
			memset(w, 0, sizeof *w);
			w->id = inum(e, "tid", -1);
			w->cuda = inum(e, "pid", 1) % HALO_TRACE_RANK_PIDS >= 2;
			const char *name = json_string_value(json_object_get(args, "name"));
			halo__copy_utf8(w->name, sizeof w->name, name ? name : "?");
			continue;
		}
		if (strcmp(ph, "X") != 0 || is_transfer(e))
			continue;
		struct trace_task *t = &tr->tasks[tr->n];
		json_t *id = json_object_get(args, "id"), *deps = json_object_get(args, "deps");
		double ts = num(e, "ts", NAN), dur = num(e, "dur", NAN);
		if (id && !json_is_integer(id)) {
			trace_free(tr);
			return halo_error_set(err, HALO_EFORMAT, "%s: task event %zu has an id that is "
					      "not an integer", path, i);
		}
		if (!id || !isfinite(ts) || !isfinite(dur) || !isfinite(ts + dur) ||
		    !json_is_array(deps)) {
			trace_free(tr);
			return halo_error_set(err, HALO_EFORMAT, "%s: task event %zu lacks id, ts, dur or deps",
					      path, i);
		}
		if (!sane_time(ts) || !sane_time(ts + dur)) {
			trace_free(tr);
			return halo_error_set(err, HALO_EFORMAT, "%s: task event %zu has a time beyond "
					      "31 years", path, i);
		}
		if (dur < 0 || json_integer_value(id) < 0) {
			trace_free(tr);
			return halo_error_set(err, HALO_EFORMAT, "%s: task event %zu has a negative %s",
					      path, i, dur < 0 ? "duration" : "id");
		}
		t->id = (uint64_t)json_integer_value(id);
		t->skipped = json_is_true(json_object_get(args, "skipped"));
		tr->skipped += (size_t)t->skipped;
		t->codelet = json_string_value(json_object_get(e, "name"));
		t->step = json_string_value(json_object_get(args, "step"));
		t->codelet = t->codelet ? t->codelet : "?";
		t->step = t->step ? t->step : "";
		long worker, tid, chunk[3] = {0};
		json_t *c = json_object_get(args, "chunk");
		int bad = int_field(e, "tid", -1, &tid) || int_field(args, "worker", tid, &worker) ||
			  worker < 0 || (c && json_array_size(c) != 3);
		for (size_t k = 0; !bad && k < json_array_size(c); k++) {
			const json_t *ck = json_array_get(c, k);
			bad = !json_is_integer(ck) || json_integer_value(ck) < 0;
			chunk[k] = bad ? 0 : (long)json_integer_value(ck);
		}
		size_t k;
		json_t *v;
		json_array_foreach(deps, k, v)
			bad |= !json_is_integer(v) || json_integer_value(v) < 0;
		if (bad) {
			trace_free(tr);
			return halo_error_set(err, HALO_EFORMAT, "%s: task event %zu has a worker, chunk "
					      "or dependency that is not a valid index", path, i);
		}
		t->worker = (int)worker;
		t->start = ts;
		t->end = ts + dur;
		t->submit = num(args, "submit", ts);
		t->ready = num(args, "ready", ts);
		/* Times count from the run's first submission: none is before. */
		if (ts < 0 || !(t->submit >= 0) || !(t->ready >= 0)) {
			trace_free(tr);
			return halo_error_set(err, HALO_EFORMAT, "%s: task event %zu has a negative time "
					      "(times count from the first submission)", path, i);
		}
		/* No estimate below a nanosecond: error ratios would overflow */
		double expected = num(args, "expected", -1);
		t->expected = expected >= 1e-3 && expected <= MAX_US ? expected : -1;
		if (c) {
			t->has_chunk = 1;
			for (int k2 = 0; k2 < 3; k2++)
				t->chunk[k2] = chunk[k2];
		}
		t->deps = tr->deps + d;
		json_array_foreach(deps, k, v)
			tr->deps[d++] = (uint64_t)json_integer_value(v);
		t->ndeps = json_array_size(deps);
		tr->n++;
	}
	double last = 0;
	for (size_t k = 0; k < tr->n; k++)
		last = tr->tasks[k].end > last ? tr->tasks[k].end : last;
	if (last > tr->makespan + 1) { /* halo's makespan is its last task's end */
		double makespan = tr->makespan;
		trace_free(tr);
		return halo_error_set(err, HALO_EFORMAT, "%s: makespan_us %.3f ends before the last "
				      "task (%.3f)", path, makespan, last);
	}
	qsort(tr->tasks, tr->n, sizeof *tr->tasks, by_id);
	for (size_t k = 1; k < tr->n; k++)
		if (tr->tasks[k].id == tr->tasks[k - 1].id) {
			uint64_t dup = tr->tasks[k].id;
			trace_free(tr);
			return halo_error_set(err, HALO_EFORMAT, "%s: two tasks have id %llu", path,
					      (unsigned long long)dup);
		}
	/* Tasks are numbered as submitted, after what they depend on: a
	 * dependency on a later task (itself, a cycle) is an edited trace,
	 * whose critical path would quietly leave it out. One on a task the
	 * trace lacks is kept out (bench forgets its warm-up's tasks). */
	for (size_t k = 0; k < tr->n; k++)
		for (size_t j = 0; j < tr->tasks[k].ndeps; j++)
			if (tr->tasks[k].deps[j] >= tr->tasks[k].id) {
				unsigned long long a = tr->tasks[k].id, b = tr->tasks[k].deps[j];
				trace_free(tr);
				return halo_error_set(err, HALO_EFORMAT, "%s: task %llu depends on task "
						      "%llu, which is not an earlier task (ids count in "
						      "submission order)", path, a, b);
			}
	for (size_t k = 0; k < tr->n; k++) {
		int w = 0;
		while (w < tr->nworkers && tr->workers[w].id != tr->tasks[k].worker)
			w++;
		/* A worker the trace names no thread for still worked. */
		if (w == tr->nworkers) {
			struct trace_worker *more = realloc(tr->workers, (size_t)(w + 1) * sizeof *more);
			if (!more) {
				trace_free(tr);
				return halo_error_set(err, HALO_ENOMEM, "%s: out of memory", path);
			}
			tr->workers = more;
			memset(&more[w], 0, sizeof *more);
			more[w].id = tr->tasks[k].worker;
			snprintf(more[w].name, sizeof more[w].name, "worker %d", more[w].id);
			tr->nworkers++;
		}
		tr->workers[w].busy += tr->tasks[k].end - tr->tasks[k].start;
	}
	return HALO_OK;
}

void trace_free(struct trace *tr)
{
	json_decref(tr->root);
	free(tr->tasks);
	free(tr->deps);
	free(tr->workers);
	free(tr->transfers);
	free(tr->links);
	memset(tr, 0, sizeof *tr);
}

static int cuda_of(const struct trace *tr, int worker)
{
	for (int w = 0; w < tr->nworkers; w++)
		if (tr->workers[w].id == worker)
			return tr->workers[w].cuda;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int by_total(const void *a, const void *b)
{
	double x = ((const struct trace_group *)a)->total, y = ((const struct trace_group *)b)->total;
	return x > y ? -1 : x < y;
}

/* numpy.percentile's default (linear interpolation) of sorted v. */
static double percentile(const double *v, size_t n, double q)
{
	double pos = q * (double)(n - 1);
	size_t lo = (size_t)pos;
	size_t hi = lo + 1 < n ? lo + 1 : lo;
	return v[lo] + (v[hi] - v[lo]) * (pos - (double)lo);
}

int trace_groups(const struct trace *tr, struct trace_group **out, size_t *n)
{
	struct trace_group *g = NULL;
	size_t ng = 0;
	double *durs = malloc((tr->n ? tr->n : 1) * sizeof *durs);
	if (!durs)
		return -1;
	for (size_t i = 0; i < tr->n; i++) {
		const struct trace_task *t = &tr->tasks[i];
		if (t->skipped)
			continue;
		int cuda = cuda_of(tr, t->worker);
		size_t k = 0;
		while (k < ng && (strcmp(g[k].codelet, t->codelet) != 0 || g[k].cuda != cuda))
			k++;
		if (k == ng) {
			struct trace_group *ng2 = realloc(g, (ng + 1) * sizeof *g);
			if (!ng2) {
				free(g);
				free(durs);
				return -1;
			}
			g = ng2;
			memset(&g[ng], 0, sizeof *g);
			g[ng].codelet = t->codelet;
			g[ng++].cuda = cuda;
		}
	}
	for (size_t k = 0; k < ng; k++) {
		size_t m = 0, nerr = 0;
		double err = 0;
		for (size_t i = 0; i < tr->n; i++) {
			const struct trace_task *t = &tr->tasks[i];
			if (t->skipped || strcmp(g[k].codelet, t->codelet) != 0 ||
			    cuda_of(tr, t->worker) != g[k].cuda)
				continue;
			double dur = t->end - t->start;
			durs[m++] = dur;
			g[k].total += dur;
			if (t->expected > 0) {
				err += fabs(dur - t->expected) / t->expected;
				nerr++;
			}
		}
		qsort(durs, m, sizeof *durs, cmp_double);
		g[k].count = m;
		g[k].mean = g[k].total / (double)m;
		g[k].p50 = percentile(durs, m, 0.5);
		g[k].p95 = percentile(durs, m, 0.95);
		g[k].model_error = nerr ? err / (double)nerr : -1;
	}
	free(durs);
	if (ng) /* g may be NULL then, which qsort must not get */
		qsort(g, ng, sizeof *g, by_total);
	*out = g;
	*n = ng;
	return 0;
}

static size_t index_of(const struct trace *tr, uint64_t id)
{
	size_t lo = 0, hi = tr->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (tr->tasks[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < tr->n && tr->tasks[lo].id == id ? lo : (size_t)-1;
}

double trace_critical_path(const struct trace *tr, size_t **path, size_t *len)
{
	*path = NULL;
	*len = 0;
	if (!tr->n)
		return 0;
	/* Producers have smaller ids (they were submitted first). */
	double *cp = malloc(tr->n * sizeof *cp);
	size_t *prev = malloc(tr->n * sizeof *prev);
	if (!cp || !prev) {
		free(cp);
		free(prev);
		return -1;
	}
	size_t best = 0;
	for (size_t i = 0; i < tr->n; i++) {
		const struct trace_task *t = &tr->tasks[i];
		cp[i] = 0;
		prev[i] = (size_t)-1;
		for (size_t k = 0; k < t->ndeps; k++) {
			size_t j = index_of(tr, t->deps[k]);
			if (j < i && cp[j] > cp[i]) {
				cp[i] = cp[j];
				prev[i] = j;
			}
		}
		cp[i] += t->end - t->start;
		if (cp[i] > cp[best])
			best = i;
	}
	size_t n = 0;
	for (size_t i = best; i != (size_t)-1; i = prev[i])
		n++;
	*path = malloc(n * sizeof **path);
	if (*path) {
		size_t k = n;
		for (size_t i = best; i != (size_t)-1; i = prev[i])
			(*path)[--k] = i;
		*len = n;
	}
	double length = cp[best];
	free(cp);
	free(prev);
	return length;
}

json_t *trace_summary_json(const struct trace *tr)
{
	json_t *o = json_object();
	json_object_set_new(o, "tasks", json_integer((json_int_t)tr->n));
	json_object_set_new(o, "makespan_us", json_real(tr->makespan));
	json_object_set_new(o, "scheduler", json_string(tr->scheduler ? tr->scheduler : ""));
	json_object_set_new(o, "outcome", json_string(tr->outcome));
	json_object_set_new(o, "error", tr->error ? json_string(tr->error) : json_null());
	json_object_set_new(o, "skipped_tasks", json_integer((json_int_t)tr->skipped));
	json_t *groups = json_array();
	struct trace_group *g;
	size_t ng;
	if (trace_groups(tr, &g, &ng) == 0) {
		for (size_t k = 0; k < ng; k++) {
			json_t *x = json_object();
			json_object_set_new(x, "codelet", json_string(g[k].codelet));
			json_object_set_new(x, "worker_kind", json_string(g[k].cuda ? "cuda" : "cpu"));
			json_object_set_new(x, "count", json_integer((json_int_t)g[k].count));
			json_object_set_new(x, "total_us", json_real(g[k].total));
			json_object_set_new(x, "mean_us", json_real(g[k].mean));
			json_object_set_new(x, "p50_us", json_real(g[k].p50));
			json_object_set_new(x, "p95_us", json_real(g[k].p95));
			json_object_set_new(x, "model_error", g[k].model_error >= 0 ? json_real(g[k].model_error)
										 : json_null());
			json_array_append_new(groups, x);
		}
		free(g);
	}
	json_object_set_new(o, "codelets", groups);
	json_t *workers = json_array();
	double busy = 0;
	for (int w = 0; w < tr->nworkers; w++) {
		const struct trace_worker *x = &tr->workers[w];
		double u = tr->makespan > 0 ? x->busy / tr->makespan : 0;
		busy += x->busy;
		json_t *j = json_object();
		json_object_set_new(j, "worker", json_integer(x->id));
		json_object_set_new(j, "name", json_string(x->name));
		json_object_set_new(j, "busy_us", json_real(x->busy));
		json_object_set_new(j, "utilisation", json_real(u));
		json_object_set_new(j, "idle_share", json_real(1 - u));
		json_array_append_new(workers, j);
	}
	json_object_set_new(o, "workers", workers);
	json_object_set_new(o, "work_us", json_real(busy));
	json_t *links = json_object_get(json_object_get(tr->root, "otherData"), "links");
	json_object_set_new(o, "links", links ? json_incref(links) : json_array());
	json_t *mpi = json_object_get(json_object_get(tr->root, "otherData"), "mpi");
	if (mpi)
		json_object_set(o, "mpi_bytes_sent", json_object_get(mpi, "bytes_sent"));
	return o;
}
