/* One trace for a run on several MPI ranks. Each rank writes its own
 * (PATH.rankR.json); once the run is over, rank 0 waits for them and joins
 * them into PATH: every rank's processes keep their tracks, with the rank
 * in their names and their pids, worker ids and task ids moved into a
 * range of the rank's own, and the times lined up on the wall clock. The
 * bytes StarPU-MPI sent between ranks are in otherData.mpi. */
#include "config.h"
#include "runtime/trace.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { PID_STRIDE = HALO_TRACE_RANK_PIDS, WORKER_STRIDE = 1000 };
#define ID_STRIDE 1000000000.0

void halo__trace_rank_path(const char *path, int rank, char *out, size_t len)
{
	const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
	if (!dot || (slash && dot < slash))
		dot = path + strlen(path);
	snprintf(out, len, "%.*s.rank%d%s", (int)(dot - path), path, rank, dot);
}

static void shift_int(json_t *o, const char *key, json_int_t by)
{
	json_t *v = json_object_get(o, key);
	if (json_is_integer(v))
		json_integer_set(v, json_integer_value(v) + by);
}

/* Moves rank r's events into the merged trace. */
static void add_rank(json_t *events, json_t *doc, int r, double shift)
{
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(doc, "traceEvents"), i, e) {
		shift_int(e, "pid", (json_int_t)r * PID_STRIDE);
		json_t *ts = json_object_get(e, "ts");
		if (json_is_number(ts))
			json_object_set_new(e, "ts", json_real(json_number_value(ts) + shift));
		const char *ph = json_string_value(json_object_get(e, "ph"));
		const char *cat = json_string_value(json_object_get(e, "cat"));
		json_t *args = json_object_get(e, "args");
		int transfer = cat && !strcmp(cat, "transfer");
		if (ph && !strcmp(ph, "M")) {
			const char *name = json_string_value(json_object_get(args, "name"));
			char label[256];
			snprintf(label, sizeof label, "rank %d: %s", r, name ? name : "");
			json_object_set_new(args, "name", json_string(label));
		}
		if (!transfer && json_object_get(e, "tid") && ph && strcmp(ph, "C"))
			shift_int(e, "tid", (json_int_t)r * WORKER_STRIDE);
		if (ph && !strcmp(ph, "X") && !transfer) {
			shift_int(args, "worker", (json_int_t)r * WORKER_STRIDE);
			shift_int(args, "id", (json_int_t)(r * ID_STRIDE));
			size_t k;
			json_t *d;
			json_array_foreach(json_object_get(args, "deps"), k, d)
				json_integer_set(d, json_integer_value(d) + (json_int_t)(r * ID_STRIDE));
			json_object_set_new(args, "rank", json_integer(r));
		}
		if (ph && (!strcmp(ph, "s") || !strcmp(ph, "f")))
			shift_int(e, "id", (json_int_t)(r * ID_STRIDE));
		if (ph && !strcmp(ph, "X") && transfer && json_object_get(args, "producer"))
			shift_int(args, "producer", (json_int_t)(r * ID_STRIDE));
		json_array_append(events, e);
	}
}

int halo__trace_merge(const char *path, int ranks, halo_error_t *err)
{
	json_t **docs = calloc((size_t)ranks, sizeof *docs);
	if (!docs)
		return halo_error_set(err, HALO_ENOMEM, "out of memory merging the traces");
	char part[4096];
	int rc = HALO_OK;
	/* The other ranks finish about when this one does. */
	for (int r = 0; r < ranks && !rc; r++) {
		halo__trace_rank_path(path, r, part, sizeof part);
		for (int waited = 0; access(part, R_OK) != 0 && waited < 1200; waited++)
			nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
		json_error_t je;
		docs[r] = json_load_file(part, 0, &je);
		if (!docs[r])
			rc = halo_error_set(err, HALO_EIO, "%s: rank %d wrote no trace (%s)", part, r,
					    je.text);
	}
	double t0 = INFINITY, end = 0;
	for (int r = 0; r < ranks && !rc; r++) {
		json_t *o = json_object_get(docs[r], "otherData");
		double t = json_number_value(json_object_get(o, "t0_unix_us"));
		t0 = t < t0 ? t : t0;
	}
	json_t *events = json_array(), *links = json_array(), *makespans = json_array();
	json_int_t workers = 0;
	for (int r = 0; r < ranks && !rc; r++) {
		json_t *o = json_object_get(docs[r], "otherData");
		double shift = json_number_value(json_object_get(o, "t0_unix_us")) - t0;
		double span = json_number_value(json_object_get(o, "makespan_us"));
		end = shift + span > end ? shift + span : end;
		workers += json_integer_value(json_object_get(o, "workers"));
		json_array_append_new(makespans, json_real(span));
		size_t i;
		json_t *l;
		json_array_foreach(json_object_get(o, "links"), i, l) {
			json_object_set_new(l, "rank", json_integer(r));
			json_array_append(links, l);
		}
		add_rank(events, docs[r], r, shift);
	}
	if (!rc) {
		json_t *o0 = json_object_get(docs[0], "otherData");
		json_t *other = json_pack("{s:O, s:O, s:f, s:I, s:O, s:f, s:O, s:o}", "producer",
					  json_object_get(o0, "producer"), "scheduler",
					  json_object_get(o0, "scheduler"), "makespan_us", end, "workers",
					  workers, "links", links, "t0_unix_us", t0, "mpi",
					  json_object_get(o0, "mpi"), "rank_makespans_us", makespans);
		json_t *doc = json_pack("{s:s, s:o, s:o}", "displayTimeUnit", "ms", "otherData", other,
					"traceEvents", events);
		char tmp[4200];
		snprintf(tmp, sizeof tmp, "%s.halo-tmp-%ld", path, (long)getpid());
		if (!doc || json_dump_file(doc, tmp, JSON_COMPACT) != 0 || rename(tmp, path) != 0) {
			unlink(tmp);
			rc = halo_error_set(err, HALO_EIO, "%s: cannot write the trace", path);
		}
		json_decref(doc);
		events = links = makespans = NULL;
	}
	json_decref(events);
	json_decref(links);
	json_decref(makespans);
	for (int r = 0; r < ranks; r++) {
		json_decref(docs[r]);
		halo__trace_rank_path(path, r, part, sizeof part);
		if (!rc)
			unlink(part);
	}
	free(docs);
	return rc;
}
