/* One trace for a run on several MPI ranks. Each rank writes its own
 * (PATH.rankR.json); once the run is over, rank 0 waits for them and joins
 * them into PATH: every rank's processes keep their tracks, with the rank
 * in their names and their pids, worker ids and task ids moved into a
 * range of the rank's own, and the times lined up on the wall clock. The
 * bytes StarPU-MPI sent between ranks are in otherData.mpi. */
#include "config.h"
#include "runtime/trace.h"
#include "io/fs.h"

#include <errno.h>
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
	char insert[32];
	snprintf(insert, sizeof insert, ".rank%d", rank);
	halo_fs_insert_before_ext(path, insert, out, len);
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
		json_t *args = json_object_get(e, "args");
		/* Transfers are known by their process, not by their cat
		 * ("transfer"), which may also be a step's name. */
		json_int_t pid = json_integer_value(json_object_get(e, "pid")) % PID_STRIDE;
		int transfer = pid == HALO_TRACE_TRANSFER_PID;
		/* The rank's own clock, like ts. */
		json_t *v;
		if (ph && !strcmp(ph, "X") && !transfer)
			for (const char *const *k = (const char *const[]){"submit", "ready", NULL}; *k; k++)
				if (json_is_number(v = json_object_get(args, *k)))
					json_object_set_new(args, *k, json_real(json_number_value(v) + shift));
		if (ph && !strcmp(ph, "M")) {
			const char *name = json_string_value(json_object_get(args, "name"));
			char label[256];
			snprintf(label, sizeof label, "rank %d: %s", r, name ? name : "");
			json_object_set_new(args, "name", json_string(label));
		}
		/* Worker tracks take the rank into their ids; the transfer
		 * tracks stay apart already by their rank's pid. */
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

/* A task that wrote tagged data, for the flows between ranks. */
struct writer {
	int64_t tag, gid;
	json_t *event;
};

static int writer_cmp(const void *a, const void *b)
{
	const struct writer *x = a, *y = b;
	if (x->tag != y->tag)
		return x->tag < y->tag ? -1 : 1;
	return (x->gid > y->gid) - (x->gid < y->gid);
}

static json_int_t ival(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

/* A flow arrow from each task that wrote data on one rank to each task
 * that read that version on another: the version is the last write before
 * the reader in the run's task order, which every rank shares (gid). */
static json_int_t add_flows(json_t *events, json_int_t first_id)
{
	size_t n = 0, i, k;
	json_t *e, *ref;
	json_array_foreach(events, i, e)
		json_array_foreach(json_object_get(json_object_get(e, "args"), "mpi"), k, ref)
			n += json_integer_value(json_array_get(ref, 2)) != 0;
	struct writer *w = malloc((n ? n : 1) * sizeof *w);
	if (!w)
		return 0;
	n = 0;
	json_array_foreach(events, i, e) {
		json_t *args = json_object_get(e, "args");
		json_array_foreach(json_object_get(args, "mpi"), k, ref)
			if (json_integer_value(json_array_get(ref, 2)))
				w[n++] = (struct writer){json_integer_value(json_array_get(ref, 0)),
							 ival(args, "gid"), e};
	}
	qsort(w, n, sizeof *w, writer_cmp);
	json_int_t id = first_id, count = 0;
	size_t total = json_array_size(events);
	for (i = 0; i < total; i++) {
		e = json_array_get(events, i);
		json_t *args = json_object_get(e, "args");
		json_int_t gid = ival(args, "gid"), rank = ival(args, "rank");
		json_array_foreach(json_object_get(args, "mpi"), k, ref) {
			if (json_integer_value(json_array_get(ref, 2)))
				continue;
			int64_t tag = json_integer_value(json_array_get(ref, 0));
			size_t lo = 0, hi = n; /* the first writer of tag */
			while (lo < hi) {
				size_t mid = (lo + hi) / 2;
				if (w[mid].tag < tag || (w[mid].tag == tag && w[mid].gid < gid))
					lo = mid + 1;
				else
					hi = mid;
			}
			if (lo == 0 || w[lo - 1].tag != tag)
				continue;
			json_t *src = w[lo - 1].event, *sargs = json_object_get(src, "args");
			if (ival(sargs, "rank") == rank)
				continue;
			double end = json_number_value(json_object_get(src, "ts")) +
				     json_number_value(json_object_get(src, "dur"));
			json_array_append_new(events, json_pack(
				"{s:s, s:s, s:s, s:I, s:I, s:I, s:f, s:{s:f}}", "ph", "s", "name", "MPI",
				"cat", "mpi", "id", id, "pid", ival(src, "pid"), "tid", ival(src, "tid"),
				"ts", end, "args", "bytes", json_number_value(json_array_get(ref, 1))));
			json_array_append_new(events, json_pack(
				"{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:f}", "ph", "f", "bp", "e", "name",
				"MPI", "cat", "mpi", "id", id, "pid", ival(e, "pid"), "tid", ival(e, "tid"),
				"ts", json_number_value(json_object_get(e, "ts"))));
			id++;
			count++;
		}
	}
	free(w);
	return count;
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
		json_int_t flows = add_flows(events, (json_int_t)(ranks * ID_STRIDE) + 1);
		json_t *mpi0 = json_object_get(json_object_get(docs[0], "otherData"), "mpi");
		if (mpi0)
			json_object_set_new(mpi0, "flows", json_integer(flows));
		json_t *o0 = json_object_get(docs[0], "otherData");
		json_t *other = json_pack("{s:O, s:O, s:f, s:I, s:o, s:f, s:O, s:o}", "producer",
					  json_object_get(o0, "producer"), "scheduler",
					  json_object_get(o0, "scheduler"), "makespan_us", end, "workers",
					  workers, "links", links, "t0_unix_us", t0, "mpi",
					  json_object_get(o0, "mpi"), "rank_makespans_us", makespans);
		/* The run failed where a rank says so (the first rank's error). */
		for (int r = 0; other && r < ranks; r++) {
			json_t *o = json_object_get(docs[r], "otherData");
			const char *outcome = json_string_value(json_object_get(o, "outcome"));
			if (outcome && strcmp(outcome, "ok") != 0) {
				json_object_set(other, "outcome", json_object_get(o, "outcome"));
				if (json_object_get(o, "error"))
					json_object_set(other, "error", json_object_get(o, "error"));
				break;
			}
		}
		if (other && !json_object_get(other, "outcome"))
			json_object_set_new(other, "outcome", json_string("ok"));
		json_t *doc = json_pack("{s:s, s:o, s:o}", "displayTimeUnit", "ms", "otherData", other,
					"traceEvents", events);
		char tmp[4200];
		errno = ENOMEM;
		FILE *f = doc ? halo_fs_tmp_open(path, tmp, sizeof tmp) : NULL;
		int bad = !f || json_dumpf(doc, f, JSON_COMPACT) != 0;
		if (f && bad) {
			fclose(f);
			unlink(tmp);
		}
		if (bad || halo_fs_tmp_close(f, tmp, path) != 0)
			rc = halo_error_set(err, HALO_EIO, "%s: cannot write the trace: %s", path,
					    strerror(errno));
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
