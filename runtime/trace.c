/* Task traces (see trace.h). Dependencies are derived at submission, in
 * submission order, exactly as StarPU derives its implicit ones: a task
 * that reads a handle depends on the last task submitted before it that
 * writes that handle. Times come from StarPU's task profiling, read in a
 * callback that wraps the task's own. */
#include "config.h"
#include "runtime/trace.h"
#include "io/fs.h"
#include "runtime/fxt.h"
#include "runtime/mpi.h"
#include "runtime/runtime.h"
#include "util/signals.h"
#include "util/util.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct rec {
	uint64_t id;
	struct starpu_task *task; /* valid until the callback returns */
	const char *codelet;
	char step[64];        /* a pipeline step's name (at most 63 bytes) */
	int64_t chunk[3];
	int has_chunk;
	double submit, ready, start, end, expected; /* microseconds; expected NaN if unknown */
	int worker;
	int skipped;     /* halo_trace_skipped */
	double mem_used; /* bytes in use on the worker's memory node at the end */
	uint32_t ndeps, nwh;
	uint64_t *deps;
	const void **wh; /* the handles it writes, to name the data transfers carry */
	int64_t gid;     /* MPI: the task's index in the run, the same on every rank */
	uint32_t nmpi;   /* MPI: the tagged data it reads and writes */
	struct mpi_ref {
		int64_t tag;
		double bytes;
		int written;
	} *mpi;
	void (*cb)(void *);
	void *cb_arg;
	struct rec *next;
};

/* Records live until the trace is written: they come from blocks of a
 * bump allocator (one malloc per megabyte, not two per task). */
struct block {
	struct block *next;
	size_t used, cap;
	max_align_t data[];
};

/* Last writer of each handle: open addressing on the handle's address. */
struct slot {
	const void *handle;
	uint64_t id;
};

static struct {
	pthread_mutex_t lock;
	int active;
	struct rec *head, *tail;
	uint64_t n;
	char step[64];
	int64_t chunk[3];
	int has_chunk;
	struct slot *slots;
	size_t cap, used;
	struct block *blocks;
	int fxt;          /* FxT records the transfers: clock marks taken */
	double mark_us[2];
} T = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Zeroed memory from the current block; the caller holds T.lock. */
static void *bump(size_t bytes)
{
	bytes = (bytes + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
	struct block *b = T.blocks;
	if (!b || b->cap - b->used < bytes) {
		size_t cap = bytes > (1u << 20) ? bytes : (1u << 20);
		b = malloc(sizeof *b + cap);
		if (!b)
			return NULL;
		*b = (struct block){.next = T.blocks, .cap = cap};
		T.blocks = b;
	}
	void *p = (char *)b->data + b->used;
	b->used += bytes;
	return memset(p, 0, bytes);
}

static int trace_active(void)
{
	return __atomic_load_n(&T.active, __ATOMIC_RELAXED);
}

static void mark(int which)
{
	T.mark_us[which] = starpu_timing_now();
	starpu_fxt_trace_user_event(which ? HALO_FXT_MARK_END : HALO_FXT_MARK_BEGIN);
}

int halo_trace_begin(int fxt, halo_error_t *err)
{
	T.cap = 1 << 12;
	T.slots = calloc(T.cap, sizeof *T.slots);
	if (!T.slots)
		return halo_error_set(err, HALO_ENOMEM, "out of memory for the trace");
	starpu_profiling_status_set(STARPU_PROFILING_ENABLE);
	T.fxt = fxt;
	if (fxt)
		mark(0);
	__atomic_store_n(&T.active, 1, __ATOMIC_RELAXED);
	return HALO_OK;
}

void halo_trace_label(const char *step, const int64_t chunk[3])
{
	if (!trace_active())
		return;
	pthread_mutex_lock(&T.lock);
	/* The trace must stay UTF-8 for its readers. */
	halo__copy_utf8(T.step, sizeof T.step, step ? step : "");
	T.has_chunk = chunk != NULL;
	if (chunk)
		memcpy(T.chunk, chunk, sizeof T.chunk);
	pthread_mutex_unlock(&T.lock);
}

static size_t slot_of(const void *h)
{
	uintptr_t x = (uintptr_t)h;
	x ^= x >> 17;
	x *= UINT64_C(0xed5ad4bb);
	x ^= x >> 11;
	return (size_t)x & (T.cap - 1);
}

static struct slot *find(const void *h)
{
	size_t i = slot_of(h);
	while (T.slots[i].handle && T.slots[i].handle != h)
		i = (i + 1) & (T.cap - 1);
	return &T.slots[i];
}

static int grow(void)
{
	struct slot *old = T.slots;
	size_t n = T.cap;
	struct slot *s = calloc(2 * n, sizeof *s);
	if (!s)
		return -1;
	T.slots = s;
	T.cap = 2 * n;
	for (size_t i = 0; i < n; i++)
		if (old[i].handle)
			*find(old[i].handle) = old[i];
	free(old);
	return 0;
}

static double us(const struct timespec *ts)
{
	return (double)ts->tv_sec * 1e6 + (double)ts->tv_nsec * 1e-3;
}

static void trace_cb(void *arg)
{
	struct rec *r = arg;
	struct starpu_task *t = r->task;
	struct starpu_profiling_task_info *pi = t->profiling_info;
	if (pi) {
		r->submit = us(&pi->submit_time);
		r->ready = us(&pi->push_start_time);
		r->start = us(&pi->start_time);
		r->end = us(&pi->end_time);
		r->worker = pi->workerid;
	}
	if (r->worker >= 0) {
		/* What the scheduler expected when it placed the task (dm*
		 * schedulers; none for eager and the like): asked of the model
		 * now, the estimate would already count this very run. */
		double e = t->predicted;
		r->expected = e > 0 && isfinite(e) ? e : NAN;
		unsigned node = starpu_worker_get_memory_node((unsigned)r->worker);
		starpu_ssize_t total = starpu_memory_get_total(node);
		starpu_ssize_t avail = starpu_memory_get_available(node);
		/* halo's own GPU buffers are counted too: avail may go below 0 */
		r->mem_used = total > 0 ? (double)(total - avail) : NAN;
	}
	r->task = NULL;
	if (r->cb)
		r->cb(r->cb_arg);
}

static int submit_traced(struct starpu_task *t)
{
	if (!trace_active())
		return starpu_task_submit(t);
	unsigned nb = STARPU_TASK_GET_NBUFFERS(t);
	pthread_mutex_lock(&T.lock);
	struct rec *r = bump(sizeof *r);
	uint64_t *deps = r && nb ? bump(nb * sizeof *deps) : NULL;
	const void **wh = deps && T.fxt ? bump(nb * sizeof *wh) : NULL;
	if (!r || (nb && !deps) || (nb && T.fxt && !wh)) {
		pthread_mutex_unlock(&T.lock);
		return starpu_task_submit(t); /* untraced rather than not run */
	}
	r->id = ++T.n;
	r->task = t;
	r->codelet = t->cl && t->cl->name ? t->cl->name : "task";
	memcpy(r->step, T.step, sizeof r->step);
	memcpy(r->chunk, T.chunk, sizeof r->chunk);
	r->has_chunk = T.has_chunk;
	r->worker = -1;
	r->expected = NAN;
	r->deps = deps;
	r->wh = wh;
	if (halo__mpi_active() && nb) {
		/* For the flows between ranks that a joined trace draws. */
		r->gid = halo__mpi_task_index() - 1;
		r->mpi = bump(nb * sizeof *r->mpi);
		for (unsigned i = 0; r->mpi && i < nb; i++) {
			starpu_data_handle_t h = STARPU_TASK_GET_HANDLE(t, i);
			enum starpu_data_access_mode m = STARPU_TASK_GET_MODE(t, i);
			int64_t tag = halo__mpi_tag(h);
			if (tag >= 0)
				r->mpi[r->nmpi++] = (struct mpi_ref){tag, (double)starpu_data_get_size(h),
								     (m & STARPU_W) != 0};
		}
	}
	for (unsigned i = 0; i < nb; i++) {
		starpu_data_handle_t h = STARPU_TASK_GET_HANDLE(t, i);
		enum starpu_data_access_mode m = STARPU_TASK_GET_MODE(t, i);
		if (T.used * 2 >= T.cap && grow() < 0)
			break;
		struct slot *s = find(h);
		if ((m & STARPU_R) && s->handle) {
			uint32_t k = 0;
			while (k < r->ndeps && r->deps[k] != s->id)
				k++;
			if (k == r->ndeps)
				r->deps[r->ndeps++] = s->id;
		}
		if (m & STARPU_W) {
			if (wh)
				wh[r->nwh++] = h;
			if (!s->handle)
				T.used++;
			s->handle = h;
			s->id = r->id;
		}
	}
	if (T.tail)
		T.tail->next = r;
	else
		T.head = r;
	T.tail = r;
	pthread_mutex_unlock(&T.lock);
	r->cb = t->callback_func;
	r->cb_arg = t->callback_arg;
	t->callback_func = trace_cb;
	t->callback_arg = r;
	return starpu_task_submit(t);
}

void halo_trace_skipped(void)
{
	struct starpu_task *t = trace_active() ? starpu_task_get_current() : NULL;
	if (t && t->callback_func == trace_cb)
		((struct rec *)t->callback_arg)->skipped = 1;
}

/* A task that could not be submitted: never run, freed here. */
static int refused(struct starpu_task *t, int rc)
{
	t->destroy = 0;
	starpu_task_destroy(t);
	return rc;
}

int halo_task_submit(struct starpu_task *t)
{
	int lead = halo_runtime_gpus_lead(), gpu = -1;
	if ((halo_runtime_gpus_alone() || lead) && t->cl && t->cl->cuda_funcs[0]) {
		/* Tasks a GPU can take go to the GPUs; the rest (reads,
		 * writes, pyramid averaging) to the CPU workers for I/O. */
		gpu = starpu_worker_get_by_type(STARPU_CUDA_WORKER, 0);
		if (gpu >= 0 && (!t->cl->can_execute || t->cl->can_execute((unsigned)gpu, t, 0)))
			t->where = STARPU_CUDA;
		else
			gpu = -1;
	}
	if (lead && gpu < 0 && t->cl && !t->execute_on_a_specific_worker)
		t->workerids = (uint32_t *)halo__runtime_io_workers(&t->workerids_len);
	if (!halo__mpi_active()) {
		int rc = submit_traced(t);
		return rc < 0 ? refused(t, rc) : rc;
	}
	struct halo_mpi_post post;
	t = halo__mpi_build(t, &post);
	int rc = post.failed ? -ENOMEM : t ? submit_traced(t) : HALO_TASK_ELSEWHERE;
	if (rc < 0 && t)
		refused(t, rc);
	halo__mpi_post(&post);
	return rc;
}

int halo__task_insert_built(struct starpu_task *t)
{
	if (!t)
		return -ENOMEM;
	int rc = halo_task_submit(t);
	return rc < 0 ? rc : 0;
}

/* ---- writing ---- */

struct ev {
	double t;
	int delta;
};

static int ev_cmp(const void *a, const void *b)
{
	double x = ((const struct ev *)a)->t, y = ((const struct ev *)b)->t;
	return x < y ? -1 : x > y;
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

/* Chrome trace processes: 1 for the CPU cores, 2 + n for CUDA device n. */
static int pid_of(int worker)
{
	if (worker < 0)
		return 0;
	return starpu_worker_get_type(worker) == STARPU_CUDA_WORKER
		       ? 2 + starpu_worker_get_devid(worker) : 1;
}

static double num(double v)
{
	return isfinite(v) ? v : -1;
}

static void write_events(FILE *f, struct rec **byid, uint64_t n, double base)
{
	int first = 1;
	unsigned long long flow = 0;
#define SEP() (first ? (first = 0, "") : ",\n")
	/* Tracks: a process per device, a thread per worker. */
	fprintf(f, "%s{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":1,\"args\":{\"name\":\"CPU cores\"}}",
		SEP());
	for (unsigned w = 0; w < starpu_worker_get_count(); w++) {
		char name[128];
		starpu_worker_get_name((int)w, name, sizeof name);
		int pid = pid_of((int)w);
		if (pid > 1)
			fprintf(f, "%s{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%d,\"args\":{\"name\":"
				   "\"CUDA %d\"}}", SEP(), pid, pid - 2);
		fprintf(f, "%s{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":%d,\"tid\":%u,\"args\":{\"name\":",
			SEP(), pid, w);
		char label[192];
		snprintf(label, sizeof label, "%s (PU %d)", name, halo_worker_pu((int)w));
		json_str(f, label);
		fprintf(f, "}}");
	}
	for (uint64_t i = 1; i <= n; i++) {
		const struct rec *r = byid[i];
		if (!r || r->worker < 0)
			continue;
		fprintf(f, "%s{\"ph\":\"X\",\"name\":", SEP());
		json_str(f, r->codelet);
		fprintf(f, ",\"cat\":");
		json_str(f, r->step[0] ? r->step : r->codelet);
		fprintf(f, ",\"pid\":%d,\"tid\":%d,\"ts\":%.3f,\"dur\":%.3f,\"args\":{\"id\":%llu,\"step\":",
			pid_of(r->worker), r->worker, r->start - base, r->end - r->start,
			(unsigned long long)r->id);
		json_str(f, r->step);
		if (r->has_chunk)
			fprintf(f, ",\"chunk\":[%lld,%lld,%lld]", (long long)r->chunk[0],
				(long long)r->chunk[1], (long long)r->chunk[2]);
		if (r->mpi) {
			fprintf(f, ",\"gid\":%lld,\"mpi\":[", (long long)r->gid);
			for (uint32_t k = 0; k < r->nmpi; k++)
				fprintf(f, "%s[%lld,%.0f,%d]", k ? "," : "", (long long)r->mpi[k].tag,
					r->mpi[k].bytes, r->mpi[k].written);
			fprintf(f, "]");
		}
		if (r->skipped)
			fprintf(f, ",\"skipped\":true");
		fprintf(f, ",\"worker\":%d,\"submit\":%.3f,\"ready\":%.3f,\"expected\":%.3f,\"deps\":[",
			r->worker, r->submit - base, r->ready - base, num(r->expected));
		for (uint32_t k = 0; k < r->ndeps; k++)
			fprintf(f, "%s%llu", k ? "," : "", (unsigned long long)r->deps[k]);
		fprintf(f, "]}}");
		/* Flow arrows from the producers. */
		for (uint32_t k = 0; k < r->ndeps; k++) {
			const struct rec *p = r->deps[k] <= n ? byid[r->deps[k]] : NULL;
			if (!p || p->worker < 0)
				continue;
			fprintf(f, "%s{\"ph\":\"s\",\"name\":\"data\",\"cat\":\"data\",\"id\":%llu,\"pid\":%d,"
				   "\"tid\":%d,\"ts\":%.3f}", SEP(), ++flow,
				pid_of(p->worker), p->worker, p->end - base);
			fprintf(f, "%s{\"ph\":\"f\",\"bp\":\"e\",\"name\":\"data\",\"cat\":\"data\",\"id\":%llu,"
				   "\"pid\":%d,\"tid\":%d,\"ts\":%.3f}", SEP(),
				flow, pid_of(r->worker), r->worker,
				r->start - base);
		}
		if (isfinite(r->mem_used))
			fprintf(f, "%s{\"ph\":\"C\",\"name\":\"memory in use (MB), node %u\",\"pid\":%d,"
				   "\"ts\":%.3f,\"args\":{\"MB\":%.3f}}", SEP(),
				starpu_worker_get_memory_node((unsigned)r->worker), pid_of(r->worker),
				r->end - base, r->mem_used / 1e6);
	}
	/* Tasks ready (pushed to the scheduler, not started) over time. */
	struct ev *evs = malloc(2 * (n + 1) * sizeof *evs);
	size_t ne = 0;
	for (uint64_t i = 1; evs && i <= n; i++)
		if (byid[i] && byid[i]->worker >= 0) {
			evs[ne++] = (struct ev){byid[i]->ready - base, 1};
			evs[ne++] = (struct ev){byid[i]->start - base, -1};
		}
	if (evs) {
		qsort(evs, ne, sizeof *evs, ev_cmp);
		int ready = 0;
		for (size_t i = 0; i < ne; i++) {
			ready += evs[i].delta;
			if (i + 1 < ne && evs[i + 1].t == evs[i].t)
				continue;
			fprintf(f, "%s{\"ph\":\"C\",\"name\":\"tasks ready\",\"pid\":1,\"ts\":%.3f,"
				   "\"args\":{\"tasks\":%d}}", SEP(), evs[i].t, ready);
		}
		free(evs);
	}
#undef SEP
}

static void write_other(FILE *f, double makespan, double base, const halo_error_t *failed)
{
	fprintf(f, "\"otherData\":{\"producer\":\"halo %s\",\"outcome\":\"%s\"", halo_version_string(),
		!failed ? "ok" : failed->code == HALO_EINTR || halo_interrupted() ? "interrupted" : "failed");
	if (failed && (failed->msg[0] || failed->code)) {
		fprintf(f, ",\"error\":");
		json_str(f, failed->msg[0] ? failed->msg : halo_strerror(failed->code));
	}
	fprintf(f, ",\"scheduler\":");
	struct starpu_sched_policy *policy = starpu_sched_ctx_get_sched_policy(0);
	const char *sched = policy ? policy->policy_name : "";
	json_str(f, sched ? sched : "");
	fprintf(f, ",\"makespan_us\":%.3f,\"workers\":%u,\"links\":[", makespan,
		starpu_worker_get_count());
	int nb = starpu_bus_get_count(), first = 1;
	for (int b = 0; b < nb; b++) {
		struct starpu_profiling_bus_info bi;
		if (starpu_bus_get_profiling_info(b, &bi) != 0 || bi.transfer_count == 0)
			continue;
		/* Not bi.total_time: that is how long the bus was profiled,
		 * not how long it moved data. */
		fprintf(f, "%s{\"src\":%d,\"dst\":%d,\"bytes\":%lld,\"transfers\":%d}",
			first ? "" : ",", starpu_bus_get_src(b), starpu_bus_get_dst(b),
			(long long)bi.transferred_bytes, bi.transfer_count);
		first = 0;
	}
	fprintf(f, "]");
	/* The wall-clock time of ts 0, to line up the traces of MPI ranks. */
	struct timespec rt;
	clock_gettime(CLOCK_REALTIME, &rt);
	fprintf(f, ",\"t0_unix_us\":%.3f", us(&rt) - (starpu_timing_now() - base));
	const double *bytes = halo__mpi_bytes();
	int n = halo__mpi_ranks();
	if (bytes && n > 1) {
		fprintf(f, ",\"mpi\":{\"rank\":%d,\"ranks\":%d,\"bytes_sent\":[", halo__mpi_rank(), n);
		for (int i = 0; i < n; i++) {
			fprintf(f, "%s[", i ? "," : "");
			for (int j = 0; j < n; j++)
				fprintf(f, "%s%.0f", j ? "," : "", bytes[i * n + j]);
			fprintf(f, "]");
		}
		fprintf(f, "]}");
	}
	fprintf(f, "}");
}

/* A memory node's name, taken while StarPU runs: "RAM", "CUDA 0", "disk". */
static void node_name(unsigned node, char *out, size_t len)
{
	switch (starpu_node_get_kind(node)) {
	case STARPU_CPU_RAM: snprintf(out, len, "node %u, RAM", node); break;
	case STARPU_CUDA_RAM:
		snprintf(out, len, "node %u, CUDA %d", node, starpu_memory_node_get_devid(node));
		break;
	case STARPU_DISK_RAM: snprintf(out, len, "node %u, disk", node); break;
	default: snprintf(out, len, "node %u", node); break;
	}
}

/* Who wrote a handle, and when: transfers are named after the task whose
 * result they carry (the last writer of the handle that had ended when the
 * transfer began; handles' addresses are reused over a run). */
struct writer {
	uintptr_t handle;
	double end;
	const struct rec *rec;
};

static int writer_cmp(const void *a, const void *b)
{
	const struct writer *x = a, *y = b;
	if (x->handle != y->handle)
		return x->handle < y->handle ? -1 : 1;
	return (x->end > y->end) - (x->end < y->end);
}

static const struct rec *producer(const struct writer *w, size_t n, uintptr_t h, double t)
{
	size_t lo = 0, hi = n; /* first entry with handle >= h */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (w[mid].handle < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	const struct rec *best = NULL;
	for (size_t i = lo; i < n && w[i].handle == h && w[i].end <= t + 1.0; i++)
		best = w[i].rec;
	return best;
}

static int transfer_cmp(const void *a, const void *b)
{
	double x = (*(const struct halo_transfer *const *)a)->start;
	double y = (*(const struct halo_transfer *const *)b)->start;
	return x < y ? -1 : x > y;
}

struct lane {
	int link, lane;
	double end; /* of its last transfer */
};

/* The first of link's lanes (tracks) free at start, made where none is:
 * transfers on one link overlap (several requests at once), and events on
 * one track must nest. Returns the lane, -1 when out of memory. */
static int lane_for(struct lane **lanes, size_t *n, int link, double start, double end)
{
	int best = -1, count = 0;
	for (size_t i = 0; i < *n; i++) {
		struct lane *l = &(*lanes)[i];
		if (l->link != link)
			continue;
		count++;
		if (l->end <= start && (best < 0 || l->lane < (*lanes)[best].lane))
			best = (int)i;
	}
	if (best >= 0) {
		(*lanes)[best].end = end;
		return (*lanes)[best].lane;
	}
	struct lane *more = realloc(*lanes, (*n + 1) * sizeof *more);
	if (!more)
		return -1;
	*lanes = more;
	more[(*n)++] = (struct lane){link, count, end};
	return count;
}

/* One track per link (src -> dst memory node) in a "data transfers"
 * process, and more where transfers on it overlap (HALO_TRACE_LANE_TIDS);
 * each transfer an X event named after the data it carries. */
static void write_transfers(FILE *f, const struct halo_transfer *t, size_t n, double base,
			    char (*names)[48], int nnodes)
{
	enum { PID = HALO_TRACE_TRANSFER_PID };
	size_t nw = 0, nlanes = 0;
	for (const struct rec *r = T.head; r; r = r->next)
		nw += r->worker >= 0 ? r->nwh : 0;
	struct writer *w = malloc((nw ? nw : 1) * sizeof *w);
	nw = 0;
	for (const struct rec *r = T.head; w && r; r = r->next)
		for (uint32_t k = 0; r->worker >= 0 && k < r->nwh; k++)
			w[nw++] = (struct writer){(uintptr_t)r->wh[k], r->end, r};
	if (w)
		qsort(w, nw, sizeof *w, writer_cmp);
	const struct halo_transfer **order = malloc((n ? n : 1) * sizeof *order);
	struct lane *lanes = NULL;
	for (size_t i = 0; order && i < n; i++)
		order[i] = &t[i];
	if (order)
		qsort(order, n, sizeof *order, transfer_cmp);
	fprintf(f, ",\n{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%d,"
		   "\"args\":{\"name\":\"data transfers\"}}", PID);
	static const char *const kinds[] = {"fetch", "prefetch", "idle prefetch"};
	for (size_t i = 0; order && i < n; i++) {
		const struct halo_transfer *x = order[i];
		int s = x->src, d = x->dst;
		if (s < 0 || d < 0 || s >= nnodes || d >= nnodes)
			continue;
		size_t before = nlanes;
		int link = s * HALO_TRACE_NODES + d;
		int lane = lane_for(&lanes, &nlanes, link, x->start, x->end);
		if (lane < 0)
			break;
		int tid = lane * HALO_TRACE_LANE_TIDS + link;
		if (nlanes > before) {
			fprintf(f, ",\n{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":%d,\"tid\":%d,"
				   "\"args\":{\"name\":\"%s -> %s", PID, tid, names[s], names[d]);
			if (lane)
				fprintf(f, " (%d)", lane + 1);
			fprintf(f, "\"}}");
		}
		const struct rec *p = w ? producer(w, nw, x->handle, x->start) : NULL;
		fprintf(f, ",\n{\"ph\":\"X\",\"name\":");
		json_str(f, p && p->step[0] ? p->step : "data");
		fprintf(f, ",\"cat\":\"transfer\",\"pid\":%d,\"tid\":%d,\"ts\":%.3f,\"dur\":%.3f,"
			   "\"args\":{\"bytes\":%llu,\"src\":%d,\"dst\":%d,\"kind\":\"%s\"",
			PID, tid, x->start - base, x->end - x->start,
			(unsigned long long)x->bytes, s, d,
			kinds[x->prefetch >= 0 && x->prefetch <= 2 ? x->prefetch : 0]);
		if (p) {
			fprintf(f, ",\"producer\":%llu,\"step\":", (unsigned long long)p->id);
			json_str(f, p->step);
			if (p->has_chunk)
				fprintf(f, ",\"chunk\":[%lld,%lld,%lld]", (long long)p->chunk[0],
					(long long)p->chunk[1], (long long)p->chunk[2]);
		}
		fprintf(f, "}}");
	}
	free(lanes);
	free(order);
	free(w);
}

static void trace_free(void)
{
	for (struct block *b = T.blocks, *next; b; b = next) {
		next = b->next;
		free(b);
	}
	T.blocks = NULL;
	free(T.slots);
	T.head = T.tail = NULL;
	T.slots = NULL;
	T.n = T.cap = T.used = 0;
	T.step[0] = '\0';
	T.has_chunk = 0;
	T.fxt = 0;
}

void halo_trace_restart(void)
{
	if (!trace_active())
		return;
	starpu_task_wait_for_all();
	int fxt = T.fxt;
	__atomic_store_n(&T.active, 0, __ATOMIC_RELAXED);
	trace_free();
	/* Enabling StarPU's profiling again zeroes its bus totals; the FxT
	 * reader keeps the last begin mark, and the transfers after it. */
	halo_trace_begin(fxt, NULL);
}

int halo_trace_replaceable(const char *path)
{
	/* halo's (runtime/trace.c and trace_merge.c write it so), not any
	 * Chrome trace */
	return halo_fs_replaceable_report(path, "\"otherData\":{\"producer\":\"halo ");
}

int halo_trace_end(const char *path, const char *fxt_dir, const halo_error_t *failed,
		   void (*stop)(void *), void *stop_arg, halo_error_t *err)
{
	if (!trace_active()) {
		if (stop)
			stop(stop_arg);
		return HALO_OK;
	}
	starpu_task_wait_for_all();
	if (T.fxt)
		mark(1);
	__atomic_store_n(&T.active, 0, __ATOMIC_RELAXED);
	if (!path) {
		trace_free();
		starpu_profiling_status_set(STARPU_PROFILING_DISABLE);
		if (stop)
			stop(stop_arg);
		return HALO_OK;
	}
	int rc = HALO_OK;
	struct rec **byid = calloc(T.n + 1, sizeof *byid);
	if (!byid) {
		trace_free();
		if (stop)
			stop(stop_arg);
		return halo_error_set(err, HALO_ENOMEM, "out of memory writing the trace");
	}
	double base = INFINITY, last = 0;
	for (struct rec *r = T.head; r; r = r->next) {
		byid[r->id] = r;
		if (r->worker >= 0) {
			base = r->submit < base ? r->submit : base;
			last = r->end > last ? r->end : last;
		}
	}
	if (!isfinite(base))
		base = last = 0;
	char names[HALO_TRACE_NODES][48];
	int nnodes = (int)starpu_memory_nodes_get_count();
	for (int i = 0; i < nnodes && i < HALO_TRACE_NODES; i++)
		node_name((unsigned)i, names[i], sizeof names[i]);
	char tmp[4200];
	FILE *f = halo_fs_tmp_open(path, tmp, sizeof tmp);
	if (!f)
		rc = halo_error_set(err, errno == ENOENT ? HALO_ENOENT : HALO_EIO, "%s: cannot create: %s",
				    path, strerror(errno));
	if (f) {
		/* Everything that asks StarPU comes before it stops: the
		 * transfers, last, are read from the FxT file it leaves. */
		fprintf(f, "{\"displayTimeUnit\":\"ms\",\n");
		write_other(f, last - base, base, failed);
		fprintf(f, ",\n\"traceEvents\":[\n");
		write_events(f, byid, T.n, base);
	}
	starpu_profiling_status_set(STARPU_PROFILING_DISABLE);
	if (stop)
		stop(stop_arg);
	if (f && fxt_dir && T.fxt) {
		struct halo_transfer *t = NULL;
		size_t nt = 0;
		halo_error_t ferr = {0};
		if (halo__fxt_transfers(fxt_dir, T.mark_us, &t, &nt, &ferr) == HALO_OK) {
			size_t kept = 0; /* none before the trace (re)started */
			for (size_t i = 0; i < nt; i++)
				if (t[i].start >= T.mark_us[0])
					t[kept++] = t[i];
			write_transfers(f, t, kept, base, names,
					nnodes < HALO_TRACE_NODES ? nnodes : HALO_TRACE_NODES);
		} else {
			/* The run succeeded: keep its trace, and say what is missing. */
			fprintf(f, ",\n{\"ph\":\"i\",\"s\":\"g\",\"ts\":0,\"pid\":%d,\"name\":",
				HALO_TRACE_TRANSFER_PID);
			char what[HALO_ERROR_MSG_MAX + 64];
			snprintf(what, sizeof what, "data transfers not recorded: %s", ferr.msg);
			json_str(f, what);
			fprintf(f, "}");
		}
		free(t);
	}
	/* Checked at the start too; a user's file put there meanwhile stays. */
	if (f && !halo_trace_replaceable(path)) {
		fclose(f);
		unlink(tmp);
		f = NULL;
		rc = halo_error_set(err, HALO_EEXIST, "--trace: '%s' became a file that is not a "
				    "halo trace during the run; not replaced", path);
	}
	if (f) {
		fprintf(f, "\n]}\n");
		if (halo_fs_tmp_close(f, tmp, path) != 0)
			rc = halo_error_set(err, halo_fs_errno_code(errno), "%s: cannot write the trace: %s",
					    path, strerror(errno));
	}
	free(byid);
	trace_free();
	return rc;
}
