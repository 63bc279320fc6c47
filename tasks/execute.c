/* Executing a plan on StarPU (see execute.h).
 *
 * The walk is demand-driven: output chunks (stores and scalar partials)
 * are visited in C order, or with z or y innermost (p->order, chosen by
 * halo_plan_memory), a rechunk's in tiles (halo_pnode_tiles), outputs
 * interleaved by progress, and each one submits the chunks it needs,
 * recursively, the first time they are needed. A chunk's handle is
 * registered when its producing task is submitted and unregistered
 * (starpu_data_unregister_submit) after the last task that reads it, so
 * only the region being worked on is resident; submission waits while
 * too many output chunks are in flight for the memory budget. Every task
 * of a failed run turns into a no-op (runtime/stream_tasks.c), and
 * outputs are committed only at the end. */
#include "config.h"
#include "tasks/execute.h"
#include "codelets/filter.h"
#include "codelets/gather.h"
#include "codelets/reduce.h"
#include "io/outdir.h"
#include "runtime/deconvolve.h"
#include "runtime/distribution.h"
#include "runtime/mpi.h"
#include "runtime/runtime.h"
#include "runtime/stream_job.h"
#include "runtime/trace.h"
#include "util/signals.h"
#include "util/util.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Per plan node: live chunk handles and what is left to read them. */
struct pstate {
	starpu_data_handle_t *h;
	int32_t *left;
	int64_t *lists[3];       /* scratch for input lists */
	int64_t next;            /* roots: chunks submitted so far */
	int64_t at[3];           /* roots: the next chunk to submit */
	int64_t tile[3];         /* roots: visited in tiles of this many chunks */
	int finite;              /* sources: RL reads them, refuse NaN and inf */
	int64_t fft_voxels;      /* sources: RL reads their values as they are,
				  * in FFTs of this size (halo_rl_range_check) */
	halo_output_t *output;   /* stores */
	halo_writer_t *writer;
	starpu_data_handle_t token; /* stores that must be written in order (TIFF) */
	starpu_data_handle_t buffer; /* from_buffer: the whole array */
	halo_overlap_kernel_t *kernel; /* map_overlap */
	struct halo_reduce_partial *partials; /* scalar reductions */
	int followed;            /* a reduction follows its chunks (follow) */
	starpu_data_handle_t *acc; /* reductions that follow: accumulators */
	int32_t *todo;           /* and the input chunks each awaits */
	halo_pnode_t *store;     /* and the store of their result */
};

struct exec {
	struct halo_stream_job job;
	halo_plan_t *plan;
	struct pstate *st;
	const halo_pnode_t *walked; /* a projection's input whose chunk its walk makes */
	int64_t tasks;
	int rank, ranks;          /* MPI: every rank walks the same graph */
	halo_distribution_t dist; /* who owns which chunk (runtime/distribution.h) */
	int64_t ref[3];           /* the array shape the distribution cuts */
};

/* The chunk after `at` in p's visiting order: p->order within a tile,
 * tiles in p->order (edge tiles cut at the grid's edge). */
static void tile_next(const halo_pnode_t *p, const int64_t tile[3], int64_t at[3])
{
	int64_t o[3], e[3];
	for (int d = 0; d < 3; d++) {
		o[d] = at[d] / tile[d] * tile[d];
		e[d] = o[d] + tile[d] < p->grid[d].nblocks ? o[d] + tile[d] : p->grid[d].nblocks;
	}
	for (int k = 2; k >= 0; k--) {
		int d = p->order[k];
		if (++at[d] < e[d])
			return;
		at[d] = o[d];
	}
	/* The tile is done: the next one's first chunk. */
	for (int k = 2; k >= 0; k--) {
		int d = p->order[k];
		at[d] = o[d] + tile[d];
		if (at[d] < p->grid[d].nblocks)
			return;
		at[d] = 0;
	}
}

/* Prefixes err with the step's name when the user named it. */
static int step_prefix(halo_error_t *err, const halo_expr_t *e)
{
	const char *name = halo_expr_step(e);
	return name ? halo_error_prefix(err, "step \"%s\"", name) : err->code;
}

/* Under mpirun every rank opens the sources itself (halo__mpi_differs):
 * each source is compared with rank 0's, and all fail together where one
 * differs. */
static int same_sources(const halo_plan_t *plan, halo_error_t *err)
{
	int rc = HALO_OK;
	for (int i = 0; i < plan->n; i++) {
		const halo_expr_t *e = plan->nodes[i]->expr;
		if (plan->nodes[i]->kind != HALO_PN_SOURCE || !e->reader)
			continue;
		if (halo__mpi_differs(halo__mpi_volume_hash(&e->info, 0)) && !rc) {
			rc = halo_error_set(err, HALO_EINVAL,
					    "%s: differs from rank 0's (shape, type or chunks): every "
					    "rank must read the same files", halo_reader_path(e->reader));
			step_prefix(err, e);
		}
	}
	return halo__mpi_agree(rc, err);
}

static size_t elsize(const halo_pnode_t *p)
{
	return halo_dtype_size((halo_dtype_t){p->expr->dtype, 0});
}

static void submitted(struct exec *x, struct starpu_task *t)
{
	x->tasks++;
	halo__stream_submit(t, &x->job);
}

static struct starpu_task *task_new(struct exec *x, struct starpu_codelet *cl, void *arg,
				    size_t arg_size)
{
	struct starpu_task *t = arg ? starpu_task_create() : NULL;
	if (!t) {
		free(arg);
		halo__stream_fail_nomem(&x->job);
		return NULL;
	}
	t->cl = cl;
	t->cl_arg = arg;
	t->cl_arg_size = arg_size;
	t->cl_arg_free = 1;
	/* A chunk's write goes ahead of the work queued on its worker where
	 * the scheduler queues by priority (dmdas, eager; not dmda): it frees
	 * the chunk. The progress line counts it computed once it may start. */
	if (cl == &halo__stream_write_cl) {
		t->priority = 1;
		t->prologue_callback_func = halo__stream_write_ready;
		t->prologue_callback_arg = arg;
	}
	return t;
}

static starpu_data_handle_t chunk(struct exec *x, halo_pnode_t *p, const int64_t j[3]);

static int64_t voxels(const halo_pnode_t *p)
{
	return p->expr->shape[0] * p->expr->shape[1] * p->expr->shape[2];
}

static int64_t nchunks(const halo_pnode_t *p)
{
	return p->grid[0].nblocks * p->grid[1].nblocks * p->grid[2].nblocks;
}

/* The array whose chunk grid the ranks share out: of those with a chunk
 * for every rank (else of all), the largest, and of those the coarsest
 * grid. Its chunks are the largest units of work, and those of finer
 * grids follow them. Another choice idles ranks: a TIFF input is one
 * chunk, and gave rank 0 all the work done on its rechunked copy. */
static int better_reference(const halo_pnode_t *p, const halo_pnode_t *than, int ranks)
{
	int64_t c = nchunks(p), b = nchunks(than);
	if ((c >= ranks) != (b >= ranks))
		return c >= ranks;
	if (voxels(p) != voxels(than))
		return voxels(p) > voxels(than);
	return c >= ranks ? c < b : c > b;
}

static const halo_pnode_t *reference_node(const halo_plan_t *plan, int ranks)
{
	const halo_pnode_t *big = plan->nodes[0];
	for (int i = 1; i < plan->n; i++)
		if (better_reference(plan->nodes[i], big, ranks))
			big = plan->nodes[i];
	return big;
}

/* The rank owning chunk j of p: where its block sits in the reference
 * array (arrays of other shapes, e.g. reductions along an axis, are
 * scaled onto it). */
static int owner(const struct exec *x, const halo_pnode_t *p, const int64_t j[3])
{
	if (x->ranks <= 1)
		return 0;
	int64_t origin[3], dims[3], valid[3], o[3], d[3];
	halo_pnode_block(p, j, origin, dims, valid);
	for (int a = 0; a < 3; a++) {
		double f = (double)x->ref[a] / (double)p->expr->shape[a];
		o[a] = (int64_t)((double)origin[a] * f);
		d[a] = (int64_t)((double)valid[a] * f);
		d[a] = d[a] > 0 ? d[a] : 1;
	}
	return halo_distribution_owner(&x->dist, o, d);
}

/* One read of chunk c of p is done: the handle goes after the last. */
static void release(struct exec *x, halo_pnode_t *p, const int64_t c[3])
{
	int64_t f = halo_pnode_flat(p, c);
	struct pstate *s = &x->st[p->id];
	if (--s->left[f] == 0 && s->h[f]) {
		starpu_data_unregister_submit(s->h[f]);
		s->h[f] = NULL;
	}
}

/* A source chunk of a distributed gather (runtime/gather_cells.c). */
struct cell_ctx {
	struct exec *x;
	halo_pnode_t *in;
};

static starpu_data_handle_t cell_source(void *ctx, const int64_t c[3], int64_t origin[3],
					int64_t dims[3], int *who)
{
	struct cell_ctx *cc = ctx;
	int64_t valid[3];
	halo_pnode_block(cc->in, c, origin, dims, valid);
	*who = owner(cc->x, cc->in, c);
	return chunk(cc->x, cc->in, c);
}

/* The gather of input k's chunks that p's chunk j reads into a block
 * covering [origin, origin + dims) of an array of dst_shape. */
static struct halo_gather_args gather_proto(struct exec *x, const halo_pnode_t *p, int k,
					    const int64_t origin[3], const int64_t dims[3],
					    const int64_t dst_shape[3], halo_dtype_kind_t dst_kind,
					    int boundary, double constant)
{
	const halo_pnode_t *in = p->in[k];
	struct halo_gather_args proto = {.src_kind = in->expr->dtype, .dst_kind = dst_kind,
					 .boundary = boundary, .constant = constant,
					 .factor = {1, 1, 1}, .failed = &x->job.kernel_failed};
	for (int d = 0; d < 3; d++) {
		proto.src_shape[d] = in->expr->shape[d];
		proto.dst_origin[d] = origin[d];
		proto.dst_dims[d] = dims[d];
		proto.dst_shape[d] = dst_shape[d];
	}
	return proto;
}

/* proto's arguments with the sources listed in lists, cnt (of input k of
 * p), in ga (allocated with extra bytes in front), and their handles in
 * src (nsrc of them, allocated). -1 when out of memory (the job failed). */
static int gather_sources(struct exec *x, halo_pnode_t *p, int k, int64_t *const lists[3],
			  const int64_t cnt[3], const struct halo_gather_args *proto, size_t extra,
			  void **ga_mem, starpu_data_handle_t **src)
{
	halo_pnode_t *in = p->in[k];
	int nsrc = (int)(cnt[0] * cnt[1] * cnt[2]);
	*ga_mem = calloc(1, extra + halo_gather_args_size(nsrc));
	*src = malloc((size_t)(nsrc > 0 ? nsrc : 1) * sizeof **src);
	if (!*ga_mem || !*src) {
		free(*ga_mem);
		free(*src);
		halo__stream_fail_nomem(&x->job);
		return -1;
	}
	struct halo_gather_args *ga = (struct halo_gather_args *)((char *)*ga_mem + extra);
	*ga = *proto;
	ga->nsrc = nsrc;
	int i = 0;
	HALO_FOR_BLOCKS(lists, cnt, c) {
		int64_t valid[3];
		halo_pnode_block(in, c, ga->src[i].origin, ga->src[i].dims, valid);
		(*src)[i++] = chunk(x, in, c);
	}
	return 0;
}

/* A gather task from input k's chunks that p's chunk j reads into dst,
 * which covers [origin, origin + dims) of an array of dst_shape. */
static void gather(struct exec *x, halo_pnode_t *p, int k, const int64_t j[3],
		   const int64_t origin[3], const int64_t dims[3], const int64_t dst_shape[3],
		   halo_dtype_kind_t dst_kind, int boundary, double constant, starpu_data_handle_t dst)
{
	halo_pnode_t *in = p->in[k];
	int64_t cnt[3], **lists = x->st[p->id].lists;
	halo_plan_inputs(p, k, j, lists, cnt);
	struct halo_gather_args proto =
		gather_proto(x, p, k, origin, dims, dst_shape, dst_kind, boundary, constant);
	halo_error_t e = {0};
	int rc = HALO_OK;
	x->tasks++;
	if (x->ranks > 1) {
		/* Several ranks: only the parts of the inputs that j needs
		 * cross them. */
		struct cell_ctx cc = {x, in};
		rc = halo__gather_cells_submit(&proto, in->grid, cell_source, &cc, owner(x, p, j), dst,
					       p->expr->name, j, &e);
	} else {
		void *ga;
		starpu_data_handle_t *src;
		if (gather_sources(x, p, k, lists, cnt, &proto, 0, &ga, &src))
			return;
		halo_trace_label(p->expr->name, j); /* the inputs relabelled */
		rc = halo__gather_submit(ga, src, dst, &e);
		free(src);
	}
	if (rc)
		halo__stream_fail(&x->job, &e);
	HALO_FOR_BLOCKS(lists, cnt, c)
		release(x, in, c);
}

static void read_source(struct exec *x, halo_pnode_t *p, const int64_t j[3],
			starpu_data_handle_t h)
{
	struct pstate *s = &x->st[p->id];
	if (s->buffer) {
		int64_t origin[3], dims[3], valid[3];
		halo_pnode_block(p, j, origin, dims, valid);
		struct halo_gather_args *ga = calloc(1, halo_gather_args_size(1));
		if (!ga) {
			halo__stream_fail_nomem(&x->job);
			return;
		}
		*ga = (struct halo_gather_args){.nsrc = 1, .src_kind = p->expr->dtype,
						.dst_kind = p->expr->dtype, .factor = {1, 1, 1},
						.failed = &x->job.kernel_failed};
		for (int d = 0; d < 3; d++) {
			ga->src_shape[d] = ga->dst_shape[d] = ga->src[0].dims[d] = p->expr->shape[d];
			ga->dst_origin[d] = origin[d];
			ga->dst_dims[d] = dims[d];
		}
		halo_error_t e = {0};
		x->tasks++;
		if (halo__gather_submit(ga, &s->buffer, h, &e))
			halo__stream_fail(&x->job, &e);
		return;
	}
	struct halo_stream_io_arg *ra = malloc(sizeof *ra);
	if (ra)
		*ra = (struct halo_stream_io_arg){.job = &x->job, .in = p->expr->reader,
						  .step = halo_expr_step(p->expr), .finite = s->finite,
						  .fft_voxels = s->fft_voxels,
						  .idx = {j[0], j[1], j[2]}};
	struct starpu_task *t = task_new(x, &halo__stream_read_cl, ra, sizeof *ra);
	if (!t)
		return;
	t->handles[0] = h;
	submitted(x, t);
}

static void fused(struct exec *x, halo_pnode_t *p, const int64_t j[3], starpu_data_handle_t h)
{
	starpu_data_handle_t *dh = malloc((size_t)(p->nin + 1) * sizeof *dh);
	enum starpu_data_access_mode *dm = malloc((size_t)(p->nin + 1) * sizeof *dm);
	struct starpu_task *t = dh && dm ? starpu_task_create() : NULL;
	if (!t) {
		free(dh);
		free(dm);
		halo__stream_fail_nomem(&x->job);
		return;
	}
	t->cl = &halo_elementwise_cl;
	t->cl_arg = &p->prog; /* the plan outlives its tasks */
	t->cl_arg_size = sizeof p->prog;
	for (int k = 0; k < p->nin; k++) {
		dh[k] = chunk(x, p->in[k], j);
		dm[k] = STARPU_R;
	}
	halo_trace_label(p->expr->name, j);
	dh[p->nin] = h;
	dm[p->nin] = STARPU_W;
	t->nbuffers = p->nin + 1;
	t->dyn_handles = dh;
	t->dyn_modes = dm;
	submitted(x, t);
	for (int k = 0; k < p->nin; k++)
		release(x, p->in[k], j);
}

static int uniform_submit(void *ctx, starpu_data_handle_t haloed, starpu_data_handle_t out,
			  const int trim[3], const int valid[3], int *failed, halo_error_t *err)
{
	const halo_expr_t *e = ctx;
	struct halo_filter_args *a = malloc(sizeof *a);
	if (!a)
		return halo_error_set(err, HALO_ENOMEM, "out of memory");
	a->failed = failed;
	for (int d = 0; d < 3; d++) {
		a->size[d] = d < 3 - e->ndim ? 1 : e->size;
		a->trim[d] = trim[d];
		a->valid[d] = valid[d];
	}
	if (HALO_TASK_INSERT(&halo_uniform_cl, STARPU_R, haloed, STARPU_W, out, STARPU_CL_ARGS, a,
			       sizeof *a, STARPU_NAME, "uniform", 0))
		return halo_error_set(err, HALO_ERUNTIME, "no StarPU worker can run the uniform filter");
	return HALO_OK;
}

/* Chunk j of a map_overlap with its halo: the region [a, b) of the input
 * (hd = b - a), where the chunk's own voxels start (trim) and how many of
 * them lie in the array (val). */
static void overlap_region(const halo_pnode_t *p, const int64_t j[3], int64_t a[3], int64_t b[3],
			   int64_t hd[3], int trim[3], int val[3])
{
	const halo_expr_t *e = p->expr;
	int64_t origin[3], dims[3], valid[3];
	halo_pnode_block(p, j, origin, dims, valid);
	for (int d = 0; d < 3; d++) {
		a[d] = origin[d] - e->depth[d];
		b[d] = origin[d] + valid[d] + e->depth[d];
		if (e->boundary == HALO_BOUNDARY_NONE) {
			a[d] = a[d] < 0 ? 0 : a[d];
			b[d] = b[d] > e->shape[d] ? e->shape[d] : b[d];
		}
		hd[d] = b[d] - a[d];
		trim[d] = (int)(origin[d] - a[d]);
		val[d] = (int)valid[d];
	}
}

/* Whether a fused program only loads and casts: values kept as they are
 * (but for rounding). */
static int casts(const struct halo_ew_prog *prog)
{
	for (int i = 0; i < prog->nops; i++)
		if (prog->ops[i].op != HALO_EWOP_LOAD && prog->ops[i].op != HALO_EWOP_CAST)
			return 0;
	return 1;
}

static void overlap(struct exec *x, halo_pnode_t *p, const int64_t j[3], starpu_data_handle_t h)
{
	const halo_expr_t *e = p->expr;
	int64_t a[3], b[3], hd[3];
	int trim[3], val[3];
	overlap_region(p, j, a, b, hd, trim, val);
	/* The haloed block is exactly the region: no padding. */
	starpu_data_handle_t haloed = halo__block_register(hd, sizeof(float), owner(x, p, j));
	/* dask pads in the type of map_overlap's input (its logical one: an
	 * astype to float that the plan bypassed still counts). */
	gather(x, p, 0, j, a, hd, b, HALO_F4, e->boundary,
	       halo_dtype_cast_unsafe(e->constant, e->in[0]->dtype), haloed);
	halo_error_t err = {0};
	struct pstate *s = &x->st[p->id];
	x->tasks++;
	if (s->kernel->submit(s->kernel->ctx, haloed, h, trim, val, &x->job.kernel_failed, &err)) {
		step_prefix(&err, e);
		halo__stream_fail(&x->job, &err);
	}
	starpu_data_unregister_submit(haloed);
}

/* A scalar reduction's partial, or a walked chunk of a projection's
 * input added: one less in flight, one more done (the progress line's). */
static void partial_done(void *arg)
{
	struct halo_stream_job *job = arg;
	starpu_pthread_mutex_lock(&job->lock);
	job->inflight--;
	job->partials++;
	starpu_pthread_cond_broadcast(&job->cond);
	starpu_pthread_mutex_unlock(&job->lock);
}

/* Adds input chunk c of p, a reduction along an axis, to chunk j's
 * accumulator (first: the first of its column, which sets it); walked:
 * c was walked for p (in->drives), and is in flight until added. */
static void reduce_add(struct exec *x, halo_pnode_t *p, const int64_t j[3], const int64_t c[3],
		       starpu_data_handle_t acc, int first, int walked)
{
	halo_pnode_t *in = p->in[0];
	struct halo_reduce_args *ra = malloc(sizeof *ra);
	if (ra) {
		int64_t io[3], idims[3];
		*ra = (struct halo_reduce_args){.fn = p->expr->red, .kind = in->expr->dtype,
						.axis = p->expr->axis, .first = first};
		halo_pnode_block(in, c, io, idims, ra->valid);
	}
	struct starpu_task *t = task_new(x, &halo_reduce_axis_cl, ra, sizeof *ra);
	if (!t)
		return;
	t->nbuffers = 2;
	t->handles[0] = chunk(x, in, c);
	t->modes[0] = STARPU_R;
	halo_trace_label(p->expr->name, j);
	t->handles[1] = acc;
	t->modes[1] = first ? STARPU_W : STARPU_RW;
	if (walked) {
		t->callback_func = partial_done;
		t->callback_arg = &x->job;
	}
	submitted(x, t);
	release(x, in, c);
}

/* The accumulator into the result's type, h. */
static void reduce_finish(struct exec *x, halo_pnode_t *p, starpu_data_handle_t acc,
			  starpu_data_handle_t h)
{
	struct halo_reduce_args *fa = malloc(sizeof *fa);
	if (fa)
		*fa = (struct halo_reduce_args){.fn = p->expr->red, .kind = p->expr->dtype,
						.count = (double)p->in[0]->expr->shape[p->expr->axis]};
	struct starpu_task *t = task_new(x, &halo_reduce_finish_cl, fa, sizeof *fa);
	if (t) {
		t->handles[0] = acc;
		t->handles[1] = h;
		submitted(x, t);
	}
	starpu_data_unregister_submit(acc);
}

/* Reduction along an axis: a chain of tasks over the input chunks along
 * it into a float64 accumulator, then one task to the result's type. */
static void reduce_axis(struct exec *x, halo_pnode_t *p, const int64_t j[3],
			starpu_data_handle_t h)
{
	int64_t origin[3], dims[3], valid[3], cnt[3], **lists = x->st[p->id].lists;
	halo_pnode_block(p, j, origin, dims, valid);
	starpu_data_handle_t acc = halo__block_register(dims, sizeof(double), owner(x, p, j));
	halo_plan_inputs(p, 0, j, lists, cnt);
	int first = 1;
	HALO_FOR_BLOCKS(lists, cnt, c) {
		reduce_add(x, p, j, c, acc, first, 0);
		first = 0;
	}
	reduce_finish(x, p, acc, h);
}

static void submit_root(struct exec *x, halo_pnode_t *p, const int64_t j[3]);

/* Chunk c of in, just made: the reductions that follow the walk add it
 * to its column, and store the column when it was the last. */
static void follow(struct exec *x, halo_pnode_t *in, const int64_t c[3])
{
	int walked = x->walked == in; /* the first to add it says so */
	for (int i = in->id + 1; i < x->plan->n; i++) {
		halo_pnode_t *p = x->plan->nodes[i];
		if (!p->follows || p->kind != HALO_PN_REDUCE || p->in[0] != in)
			continue;
		struct pstate *s = &x->st[i];
		int64_t j[3], origin[3], dims[3], valid[3];
		halo_pnode_column(p, c, j);
		int64_t f = halo_pnode_flat(p, j);
		halo_pnode_block(p, j, origin, dims, valid);
		int first = !s->acc[f];
		if (first) {
			s->acc[f] = halo__block_register(dims, sizeof(double), owner(x, p, j));
			s->todo[f] = (int32_t)in->grid[p->expr->axis].nblocks;
		}
		reduce_add(x, p, j, c, s->acc[f], first, walked);
		walked = 0;
		if (--s->todo[f])
			continue;
		s->h[f] = halo__block_register(dims, elsize(p), owner(x, p, j));
		halo_trace_label(p->expr->name, j);
		reduce_finish(x, p, s->acc[f], s->h[f]);
		s->acc[f] = NULL;
		/* The store's chunks it completes (through a rechunk, several
		 * columns may make one). */
		struct pstate *ss = &x->st[s->store->id];
		int64_t cnt[3];
		halo_pnode_stored_in(s->store, j, s->lists, cnt);
		HALO_FOR_BLOCKS(s->lists, cnt, js) {
			if (--ss->todo[halo_pnode_flat(s->store, js)])
				continue;
			ss->next++;
			submit_root(x, s->store, js);
		}
	}
}

/* Chunk j of p: its handle, with the task that fills it submitted. */
static starpu_data_handle_t chunk(struct exec *x, halo_pnode_t *p, const int64_t j[3])
{
	struct pstate *s = &x->st[p->id];
	int64_t f = halo_pnode_flat(p, j);
	if (s->h[f])
		return s->h[f];
	int64_t origin[3], dims[3], valid[3];
	halo_pnode_block(p, j, origin, dims, valid);
	starpu_data_handle_t h = halo__block_register(dims, elsize(p), owner(x, p, j));
	s->h[f] = h;
	halo_trace_label(p->expr->name, j);
	switch (p->kind) {
	case HALO_PN_SOURCE: read_source(x, p, j, h); break;
	case HALO_PN_FUSED: fused(x, p, j, h); break;
	case HALO_PN_GATHER:
		gather(x, p, 0, j, origin, dims, p->expr->shape, p->expr->dtype, HALO_BOUNDARY_NONE,
		       0, h);
		break;
	case HALO_PN_OVERLAP: overlap(x, p, j, h); break;
	case HALO_PN_REDUCE: reduce_axis(x, p, j, h); break;
	case HALO_PN_STORE: break;
	}
	if (s->followed)
		follow(x, p, j);
	return h;
}

static void inflight_add(struct halo_stream_job *job, int n)
{
	starpu_pthread_mutex_lock(&job->lock);
	job->inflight += n;
	starpu_pthread_mutex_unlock(&job->lock);
}

/* A store of RL's result, rechunked or not (TIFF's planes), checks it
 * (halo__rl_result_check). */
static int rl_result(const halo_pnode_t *in)
{
	while (in->kind == HALO_PN_GATHER && in->expr->dtype == in->in[0]->expr->dtype)
		in = in->in[0];
	return in->kind == HALO_PN_OVERLAP && in->expr->ov == HALO_OV_RICHARDSON_LUCY;
}

/* The write task of store p's chunk j, which it gathers from its input's
 * chunks (p->gathers), named by cnt and p's lists; NULL when out of memory
 * (the job failed). */
static struct starpu_task *store_gathered(struct exec *x, halo_pnode_t *p, const int64_t j[3],
					  int64_t cnt[3])
{
	struct pstate *s = &x->st[p->id];
	int64_t **lists = s->lists, origin[3], dims[3], valid[3];
	halo_plan_inputs(p, 0, j, lists, cnt);
	halo_pnode_block(p, j, origin, dims, valid);
	/* Converted to the output's type in the gather: the one conversion
	 * the write would make (a rechunk keeps its input's type). */
	halo_dtype_kind_t kind = halo_writer_info(s->writer)->dtype.kind;
	struct halo_gather_args proto = gather_proto(x, p, 0, origin, dims, p->expr->shape, kind,
						     HALO_BOUNDARY_NONE, 0);
	void *mem;
	starpu_data_handle_t *src;
	if (gather_sources(x, p, 0, lists, cnt, &proto, sizeof(struct halo_stream_io_arg), &mem,
			   &src))
		return NULL;
	struct halo_stream_io_arg *wa = mem;
	*wa = (struct halo_stream_io_arg){.job = &x->job, .out = s->writer, .from = kind,
					  .step = halo_expr_step(p->expr), .idx = {j[0], j[1], j[2]},
					  .rl_result = rl_result(p->in[0]),
					  .gather = (struct halo_gather_args *)(wa + 1)};
	/* No ordering token: TIFF stores do not gather (fuse_into_stores). */
	int nsrc = wa->gather->nsrc;
	enum starpu_data_access_mode *modes = malloc((size_t)(nsrc > 0 ? nsrc : 1) * sizeof *modes);
	struct starpu_task *t = modes ? task_new(x, &halo__stream_write_cl, wa, 0) : NULL;
	if (!t) {
		if (!modes) {
			free(wa);
			halo__stream_fail_nomem(&x->job);
		}
		free(modes);
		free(src);
		return NULL;
	}
	for (int i = 0; i < nsrc; i++)
		modes[i] = STARPU_R;
	t->nbuffers = nsrc;
	t->dyn_handles = src; /* StarPU frees dyn_handles and dyn_modes */
	t->dyn_modes = modes;
	t->callback_func = halo__stream_write_done;
	t->callback_arg = wa;
	return t;
}

/* Submits output chunk j of root p: a write, or a scalar partial. */
static void submit_root(struct exec *x, halo_pnode_t *p, const int64_t j[3])
{
	struct pstate *s = &x->st[p->id];
	if (p->drives) { /* made, its followers add it (follow) */
		if (!s->h[halo_pnode_flat(p, j)]) {
			inflight_add(&x->job, 1);
			x->walked = p;
			chunk(x, p, j);
			x->walked = NULL;
		}
		return;
	}
	halo_pnode_t *in = p->in[0];
	struct starpu_task *t;
	int64_t cnt[3]; /* a store that gathers: its inputs' block lists */
	if (p->gathers) {
		if (!(t = store_gathered(x, p, j, cnt)))
			return;
	} else if (p->kind == HALO_PN_STORE) {
		struct halo_stream_io_arg *wa = malloc(sizeof *wa);
		if (wa)
			*wa = (struct halo_stream_io_arg){.job = &x->job, .out = s->writer,
							  .from = in->expr->dtype, .step = halo_expr_step(p->expr),
							  .rl_result = rl_result(in), .idx = {j[0], j[1], j[2]}};
		t = task_new(x, &halo__stream_write_cl, wa, sizeof *wa);
		if (!t)
			return;
		t->nbuffers = s->token ? 2 : 1;
		t->handles[1] = s->token;
		t->modes[1] = STARPU_RW;
		t->callback_func = halo__stream_write_done;
		t->callback_arg = wa;
		t->handles[0] = chunk(x, in, j);
		t->modes[0] = STARPU_R;
	} else {
		/* A fused chain's program runs inside: its inputs are the task's. */
		const struct halo_ew_prog *prog = p->prog.nops ? &p->prog : NULL;
		struct halo_reduce_args *ra = malloc(sizeof *ra);
		if (ra) {
			int64_t o[3], dims[3];
			*ra = (struct halo_reduce_args){
				.fn = p->expr->red, .prog = prog,
				.kind = prog ? prog->ops[prog->nops - 1].kind : in->expr->dtype,
				.out = &s->partials[halo_pnode_flat(p, j)],
				.failed = &x->job.kernel_failed};
			halo_pnode_block(in, j, o, dims, ra->valid);
		}
		t = task_new(x, &halo_reduce_partial_cl, ra, sizeof *ra);
		if (!t)
			return;
		t->callback_func = partial_done;
		t->callback_arg = &x->job;
		t->nbuffers = p->nin;
		for (int k = 0; k < p->nin; k++) {
			t->handles[k] = chunk(x, p->in[k], j);
			t->modes[k] = STARPU_R;
		}
	}
	halo_trace_label(p->expr->name, j);
	inflight_add(&x->job, 1);
	x->tasks++;
	if (halo__stream_submit(t, &x->job))
		inflight_add(&x->job, -1);
	if (p->gathers) {
		HALO_FOR_BLOCKS(s->lists, cnt, c)
			release(x, in, c);
	} else {
		for (int k = 0; k < p->nin; k++)
			release(x, p->in[k], j);
	}
}

/* Store step i's path against the sources' and the earlier stores'. */
static int store_clashes(const halo_plan_t *plan, int i, halo_error_t *err)
{
	const halo_expr_t *e = plan->nodes[i]->expr;
	for (int k = 0; k < plan->n; k++) {
		const halo_expr_t *o = plan->nodes[k]->expr;
		const char *src = o->op == HALO_OP_SOURCE && o->reader ? halo_reader_path(o->reader)
								       : NULL;
		if (src && (halo_path_within(e->path, src) || halo_path_within(src, e->path)))
			return halo_error_set(err, HALO_EINVAL,
					      "step \"%s\": writing %s would change the input of "
					      "step \"%s\"", e->name, e->path, o->name);
		if (k >= i || o->op != HALO_OP_STORE)
			continue;
		/* However they are spelled ("./a.zarr"), and one inside the
		 * other: replacing the outer deletes it. */
		int in = halo_path_within(e->path, o->path), out = halo_path_within(o->path, e->path);
		if (in && out)
			return halo_error_set(err, HALO_EINVAL, "steps \"%s\" and \"%s\" both write %s",
					      o->name, e->name, e->path);
		if (in || out)
			return halo_error_set(err, HALO_EINVAL,
					      "steps \"%s\" and \"%s\" write %s and %s, one inside "
					      "the other", o->name, e->name, o->path, e->path);
	}
	return HALO_OK;
}

static int plan_depth(const halo_plan_t *plan);
static int depth_check(int deepest, halo_error_t *err);

int halo_plan_check(halo_plan_t *plan, uint64_t memory, halo_error_t *err)
{
	int rc = depth_check(plan_depth(plan), err);
	if (rc)
		return rc;
	for (int i = 0; i < plan->n; i++) {
		const halo_expr_t *e = plan->nodes[i]->expr;
		if (plan->nodes[i]->kind != HALO_PN_STORE)
			continue;
		rc = store_clashes(plan, i, err);
		if (!rc && (rc = halo_output_check(e->path, e->overwrite, err)))
			step_prefix(err, e);
		if (rc)
			return rc;
	}
	/* A limit the user set binds (runtime.c); halo's own is never under
	 * what the graph holds. */
	const char *env = getenv("STARPU_LIMIT_CPU_MEM");
	uint64_t front, per, outside;
	halo_plan_memory(plan, &front, &per, &outside);
	uint64_t held = per > outside ? per - outside : 1;
	uint64_t ceiling = !memory && env && *env ? strtoull(env, NULL, 10) << 20 : 0;
	char a[32], b[32], c[32];
	if (ceiling && ceiling < front + held)
		return halo_error_set(err, HALO_ENOMEM,
				      "the graph holds %s at once (%s of chunks shared by neighbouring "
				      "chunks%s, %s per output chunk in StarPU's buffers), more than "
				      "STARPU_LIMIT_CPU_MEM=%s MiB", halo__bytes(front + held, a, sizeof a),
				      halo__bytes(front, b, sizeof b),
				      plan->spectra ? " and of PSF spectra" : "",
				      halo__bytes(held, c, sizeof c), env);
	return HALO_OK;
}

static int open_outputs(struct exec *x, halo_error_t *err)
{
	halo_plan_t *plan = x->plan;
	for (int i = 0; i < plan->n; i++) {
		halo_pnode_t *p = plan->nodes[i];
		struct pstate *s = &x->st[p->id];
		const halo_expr_t *e = p->expr;
		int rc = HALO_OK;
		if (p->kind == HALO_PN_STORE) {
			if ((rc = store_clashes(plan, i, err)))
				return rc;
			/* Under MPI rank 0 creates the output; the others join
			 * and write their chunks into it (a TIFF: rank 0 writes
			 * it all). */
			if (x->rank == 0) {
				rc = halo_output_begin(e->path, e->overwrite, &s->output, err);
				if (!rc)
					rc = halo_writer_create(halo_output_tmp_path(s->output), &e->info,
								&e->wopts, &s->writer, err);
			}
			rc = halo__mpi_agree(rc, err);
			int tiff = e->wopts.format == HALO_FMT_TIFF;
			if (!rc && x->rank > 0)
				rc = halo_output_join(e->path, e->overwrite, !tiff, &s->output, err);
			if (!rc && x->rank > 0 && !tiff) {
				halo_writer_opts_t wo = e->wopts;
				wo.attach = 1;
				rc = halo_writer_create(halo_output_tmp_path(s->output), &e->info, &wo,
							&s->writer, err);
			}
			if (!rc && (tiff || halo_writer_ordered(s->writer))) {
				starpu_void_data_register(&s->token);
				halo__mpi_register(s->token, 0);
			}
		} else if (p->kind == HALO_PN_SOURCE && e->buffer) {
			starpu_block_data_register(&s->buffer, STARPU_MAIN_RAM, (uintptr_t)e->buffer,
						   (uint32_t)e->shape[2], (uint32_t)(e->shape[2] * e->shape[1]),
						   (uint32_t)e->shape[2], (uint32_t)e->shape[1],
						   (uint32_t)e->shape[0], elsize(p));
			halo__mpi_register(s->buffer, 0);
		} else if (p->kind == HALO_PN_OVERLAP) {
			if (e->ov == HALO_OV_RICHARDSON_LUCY) {
				/* Each task may take every core: while no task
				 * waits for a worker (few chunks, a tight budget, the
				 * end of a run), the running tasks share the idle
				 * workers' cores (see rl.c). */
				rc = halo_rl_kernel_create(e->psf, e->pn, e->iterations,
							   (int)starpu_cpu_worker_get_count(),
							   &s->kernel, err);
			} else {
				s->kernel = calloc(1, sizeof *s->kernel);
				if (!s->kernel)
					rc = halo_error_set(err, HALO_ENOMEM, "out of memory");
				else
					*s->kernel = (halo_overlap_kernel_t){.submit = uniform_submit,
									    .ctx = (void *)e};
			}
		} else if (p->kind == HALO_PN_REDUCE && e->axis < 0) {
			s->partials = calloc((size_t)p->nchunks, sizeof *s->partials);
			if (!s->partials)
				rc = halo_error_set(err, HALO_ENOMEM, "out of memory");
		}
		if (rc && (e->op == HALO_OP_STORE || e->op == HALO_OP_MAP_OVERLAP))
			step_prefix(err, e);
		/* Under MPI every rank goes through every step: a step that
		 * failed on one rank fails on all. */
		rc = halo__mpi_agree(rc, err);
		if (rc)
			return rc;
	}
	return HALO_OK;
}

/* OME-Zarr pyramids: each level from the previous one, once level 0 is
 * complete. */
static int write_pyramid(struct pstate *s, int levels, const halo_compute_opts_t *o,
			 halo_compute_stats_t *st, halo_error_t *err)
{
	const char *tmp = halo_output_tmp_path(s->output);
	for (int l = 1; l <= levels; l++) {
		char prev[4096];
		halo_writer_t *lw;
		halo_reader_t *r;
		snprintf(prev, sizeof prev, "%s/%d", tmp, l - 1);
		int rc = halo_reader_open(prev, &r, err);
		if (rc)
			return rc;
		rc = halo_writer_add_level(s->writer, l, &lw, err);
		if (!rc) {
			halo_stream_opts_t so = {.memory = o->memory, .quiet = o->quiet,
						 .label = "pyramid", .downsample = 2};
			halo_stream_stats_t ls = {0};
			rc = halo_stream_run(r, lw, &so, &ls, err);
			/* Its reads are of levels just written, not of inputs. */
			if (st) {
				st->chunks_written += ls.chunks_written;
				st->pyramid_chunks += ls.chunks_written;
				st->bytes_written += ls.bytes_written;
			}
		}
		halo_reader_close(r);
		if (rc)
			return rc;
	}
	return HALO_OK;
}

/* Each partial was computed on one rank and is zero on the others: a sum
 * gathers them all, its doubles as doubles and its integers as integers
 * (an int64's bits summed as a double are not kept: -0.0 + 0.0), two
 * collectives for each batch of partials (every rank takes the same). */
static void gather_partials(struct halo_reduce_partial *v, int64_t n)
{
	enum { BATCH = 256 };
	double d[3 * BATCH];
	int64_t i[3 * BATCH];
	for (int64_t f0 = 0; f0 < n && halo__mpi_ranks() > 1; f0 += BATCH) {
		int64_t m = n - f0 < BATCH ? n - f0 : BATCH;
		for (int64_t f = 0; f < m; f++) {
			const struct halo_reduce_partial *p = &v[f0 + f];
			d[3 * f] = p->sum, d[3 * f + 1] = p->min, d[3 * f + 2] = p->max;
			i[3 * f] = p->isum, i[3 * f + 1] = p->imin, i[3 * f + 2] = p->imax;
		}
		halo__mpi_sum(d, (size_t)(3 * m));
		halo__mpi_sum_i64(i, (size_t)(3 * m));
		for (int64_t f = 0; f < m; f++)
			v[f0 + f] = (struct halo_reduce_partial){d[3 * f], d[3 * f + 1], d[3 * f + 2],
								 i[3 * f], i[3 * f + 1], i[3 * f + 2]};
	}
}

static int finish_outputs(struct exec *x, const halo_compute_opts_t *o, halo_compute_stats_t *st,
			  halo_error_t *err)
{
	halo_plan_t *plan = x->plan;
	/* Every rank's chunks are written: rank 0 finishes the outputs alone
	 * (pyramids, metadata, the rename), the others let go of them. Every
	 * rank takes part in each collective below, failed or not. */
	halo__mpi_barrier();
	halo__mpi_distribute(0);
	int rc = HALO_OK;
	for (int i = 0; i < plan->n; i++) {
		halo_pnode_t *p = plan->nodes[i];
		struct pstate *s = &x->st[p->id];
		halo_expr_t *e = p->expr;
		if (p->kind == HALO_PN_REDUCE && e->axis < 0) {
			gather_partials(s->partials, p->nchunks);
			halo_dtype_kind_t kind = e->in[0]->dtype;
			struct halo_reduce_partial r = halo_reduce_partial_init(kind);
			for (int64_t f = 0; f < p->nchunks; f++)
				halo_reduce_combine(&r, &s->partials[f], kind);
			double count = (double)(e->in[0]->shape[0] * e->in[0]->shape[1] * e->in[0]->shape[2]);
			e->result = e->red == HALO_RED_SUM ? r.sum : e->red == HALO_RED_MIN ? r.min
				  : e->red == HALO_RED_MAX ? r.max : r.sum / count;
			e->result_i = e->red == HALO_RED_SUM ? r.isum : e->red == HALO_RED_MIN ? r.imin
												: r.imax;
			e->has_result = 1;
		}
		if (p->kind != HALO_PN_STORE || rc || x->rank != 0)
			continue;
		rc = e->wopts.pyramid ? write_pyramid(s, e->wopts.pyramid, o, st, err) : HALO_OK;
		if (!rc)
			rc = halo_writer_finish(s->writer, err);
		if (rc)
			step_prefix(err, e);
	}
	rc = halo__mpi_agree(rc, err);
	if (rc)
		return rc;
	/* Everything is complete: now the outputs appear, all or none. */
	halo_output_t **outs = malloc((size_t)plan->n * sizeof *outs);
	if (!outs)
		return halo__mpi_agree(halo_error_set(err, HALO_ENOMEM, "out of memory"), err);
	int n = 0;
	for (int i = 0; i < plan->n; i++) {
		struct pstate *s = &x->st[plan->nodes[i]->id];
		if (!s->output)
			continue;
		halo_writer_close(s->writer);
		s->writer = NULL;
		if (x->rank == 0) {
			outs[n++] = s->output;
		} else {
			if (!rc && (rc = halo_output_flush(s->output, err)))
				halo_error_replace(err, halo_output_tmp_path(s->output),
						   plan->nodes[i]->expr->path);
			halo_output_release(s->output);
		}
		s->output = NULL;
	}
	rc = halo__mpi_agree(rc, err); /* the other ranks' chunks are flushed */
	if (!rc && n)
		rc = halo_runtime_outputs_commit(outs, n, err);
	else if (rc)
		for (int i = 0; i < n; i++)
			halo_output_abort(outs[i]);
	free(outs);
	return halo__mpi_agree(rc, err);
}

static void exec_free(struct exec *x, halo_error_t *err, int *rc)
{
	if (!x->st)
		return;
	for (int i = 0; i < x->plan->n; i++) {
		struct pstate *s = &x->st[i];
		halo_pnode_t *p = x->plan->nodes[i];
		if (s->kernel) {
			halo_error_t kerr = {0};
			if (p->expr->ov == HALO_OV_RICHARDSON_LUCY) {
				if (halo_rl_kernel_destroy(s->kernel, &kerr) && !*rc) {
					*err = kerr;
					*rc = step_prefix(err, p->expr);
				}
			} else {
				free(s->kernel);
			}
		}
		if (s->token)
			starpu_data_unregister(s->token);
		if (s->buffer)
			starpu_data_unregister(s->buffer);
		halo_writer_close(s->writer);
		if (s->output && *rc) /* the user knows OUT, not its temporary name */
			halo_error_replace(err, halo_output_tmp_path(s->output), p->expr->path);
		halo_output_abort(s->output);
		free(s->h);
		free(s->left);
		free(s->partials);
		free(s->acc);
		free(s->todo);
		for (int d = 0; d < 3; d++)
			free(s->lists[d]);
	}
	free(x->st);
}

/* On an H100 beside 15 CPU workers, 72 chunks in flight ran at 0.62-0.64
 * of the CPUs' and the GPU's throughputs added, 20 chunks at 0.87, when
 * StarPU still pinned every chunk's host buffers (cudaHostAlloc,
 * serialised in the driver, stalled the GPU workers' own calls; halo no
 * longer lets it, and 72 stayed 1.07-1.14x slower in the last pinned
 * runs). A wide window pays only where it lets CPU workers compute: dmda
 * gives one a task when the GPUs' queues would take longer than it, so a
 * GPU more than cap/GPUs times faster than a CPU worker (the H100 was 311x
 * a Xeon core on rl) keeps every task whatever the window. halo-sim, with a
 * GPU 20x a core, needed the wide one: 34.3 s against 50.0 s. */
static int gpus_lead(uint64_t cap, uint64_t ncuda, double speedup)
{
	return ncuda && speedup >= (double)cap / (double)ncuda;
}

int halo__inflight_limit(uint64_t lim, uint64_t cap, uint64_t workers, uint64_t ncuda,
			 double speedup, int gpus_alone)
{
	if (ncuda && (gpus_alone || gpus_lead(cap, ncuda, speedup))) {
		uint64_t busy = workers + 4 + 4 * ncuda;
		busy = busy > 24 ? busy : 24;
		cap = cap < busy ? cap : busy;
	}
	uint64_t limit = lim < cap ? lim : cap;
	return limit < 1 ? 1 : (int)limit;
}

/* Output chunks in flight within the budget (per each, beyond the shared
 * front) and within StarPU's limit (held each of what it allocates). */
static uint64_t window(uint64_t budget, uint64_t front, uint64_t per, starpu_ssize_t ceiling,
		       uint64_t held)
{
	uint64_t lim = budget > front ? (budget - front) / per : 1;
	if (ceiling > 0 && ((uint64_t)ceiling - front) / held < lim)
		lim = ((uint64_t)ceiling - front) / held;
	return lim;
}

static int plan_execute(halo_plan_t *plan, const halo_compute_opts_t *o, halo_compute_stats_t *st,
			halo_error_t *err)
{
	struct exec x = {.plan = plan};
	struct halo_stream_job *job = &x.job;
	starpu_pthread_mutex_init(&job->lock, NULL);
	starpu_pthread_cond_init(&job->cond, NULL);
	int rc = HALO_OK;
	int64_t total = 0;
	/* First: a rank that failed alone below would leave the others
	 * waiting for it. */
	if (halo__mpi_ranks() > 1 && (rc = same_sources(plan, err)))
		goto out;
	x.st = calloc((size_t)plan->n, sizeof *x.st);
	if (!x.st) {
		rc = halo_error_set(err, HALO_ENOMEM, "out of memory");
		goto out;
	}
	for (int i = 0; i < plan->n; i++) {
		halo_pnode_t *p = plan->nodes[i];
		struct pstate *s = &x.st[i];
		s->h = calloc((size_t)p->nchunks, sizeof *s->h);
		s->left = malloc((size_t)p->nchunks * sizeof *s->left);
		int64_t most = 1;
		for (int k = 0; k < p->nin; k++)
			for (int d = 0; d < 3; d++)
				most = p->in[k]->grid[d].nblocks > most ? p->in[k]->grid[d].nblocks : most;
		/* A projection that follows and its store list each other's. */
		for (int k = 0; p->follows && k < plan->n; k++)
			for (int d = 0; d < 3; d++)
				most = plan->nodes[k]->grid[d].nblocks > most ? plan->nodes[k]->grid[d].nblocks
									     : most;
		for (int d = 0; d < 3; d++)
			s->lists[d] = malloc((size_t)most * sizeof *s->lists[d]);
		if (!s->h || !s->left || !s->lists[0] || !s->lists[1] || !s->lists[2]) {
			rc = halo_error_set(err, HALO_ENOMEM, "out of memory for %lld chunks",
					    (long long)p->nchunks);
			goto out;
		}
		memcpy(s->left, p->uses, (size_t)p->nchunks * sizeof *s->left);
		if (p->follows && p->kind == HALO_PN_REDUCE) {
			s->acc = calloc((size_t)p->nchunks, sizeof *s->acc);
			s->todo = calloc((size_t)p->nchunks, sizeof *s->todo);
			x.st[p->in[0]->id].followed = 1;
			if (!s->acc || !s->todo) {
				rc = halo_error_set(err, HALO_ENOMEM, "out of memory for %lld chunks",
						    (long long)p->nchunks);
				goto out;
			}
		}
		if (p->follows && p->kind == HALO_PN_STORE) {
			/* How many of the reduction's chunks each of its own needs. */
			x.st[halo_pnode_projection(p)->id].store = p;
			s->todo = malloc((size_t)p->nchunks * sizeof *s->todo);
			if (!s->todo) {
				rc = halo_error_set(err, HALO_ENOMEM, "out of memory for %lld chunks",
						    (long long)p->nchunks);
				goto out;
			}
			int64_t js[3];
			for (js[0] = 0; js[0] < p->grid[0].nblocks; js[0]++)
				for (js[1] = 0; js[1] < p->grid[1].nblocks; js[1]++)
					for (js[2] = 0; js[2] < p->grid[2].nblocks; js[2]++)
						s->todo[halo_pnode_flat(p, js)] =
							(int32_t)halo_pnode_stored_needs(p, js, s->lists);
		}
		total += p->root || p->drives ? p->nchunks : 0;
		if (halo_pnode_walks(p))
			halo_pnode_tiles(p, s->tile);
	}
	/* The sources an RL step reads, through any steps between (inputs
	 * come before their consumers in plan order); and those whose values
	 * it takes as they are, through rechunks and casts, whose range its
	 * FFTs bound (a middle chunk's: edge ones may be smaller). */
	for (int i = plan->n - 1; i >= 0; i--) {
		const halo_pnode_t *p = plan->nodes[i];
		int rl = p->kind == HALO_PN_OVERLAP && p->expr->ov == HALO_OV_RICHARDSON_LUCY;
		int64_t voxels = x.st[i].fft_voxels;
		if (rl) {
			int64_t j[3], a[3], b[3], hd[3];
			int trim[3], val[3];
			for (int d = 0; d < 3; d++)
				j[d] = (p->grid[d].nblocks - 1) / 2;
			overlap_region(p, j, a, b, hd, trim, val);
			voxels = hd[0] * hd[1] * hd[2];
			/* The constant pads the image in the same FFTs. */
			if (p->expr->boundary == HALO_BOUNDARY_CONSTANT &&
			    (rc = halo_rl_range_check(fabs(p->expr->constant), voxels,
						      "the boundary constant", err)))
				goto out;
		} else if (!(p->kind == HALO_PN_GATHER || (p->kind == HALO_PN_FUSED && casts(&p->prog)))) {
			voxels = 0;
		}
		/* NaN and inf do not pass a cast to integers (astype uint16 of
		 * a float source with NaN, then RL: as numpy, it runs). */
		if (!rl && !halo_dtype_is_float((halo_dtype_t){p->expr->dtype, 0}))
			continue;
		for (int k = 0; k < p->nin && (rl || x.st[i].finite); k++) {
			struct pstate *in = &x.st[p->in[k]->id];
			in->finite = 1;
			in->fft_voxels = voxels > in->fft_voxels ? voxels : in->fft_voxels;
		}
	}
	uint64_t budget = o->memory ? o->memory : halo_memory_default(), front, per, outside;
	halo_plan_memory(plan, &front, &per, &outside);
	/* Under StarPU's own limit a task whose buffers do not fit waits for
	 * memory that only later tasks would free: the run would hang. So
	 * the chunks in flight stay within it too, counting what StarPU
	 * allocates (not the kernels' work arrays or the store's buffer). */
	uint64_t held = per > outside ? per - outside : 1;
	starpu_ssize_t ceiling = starpu_memory_get_total(STARPU_MAIN_RAM);
	if (ceiling > 0 && (uint64_t)ceiling < front + held) {
		char a[32], b[32], c[32], d[32];
		rc = halo_error_set(err, HALO_ENOMEM,
				    "the graph holds %s at once (%s of chunks shared by neighbouring "
				    "chunks%s, %s per output chunk in StarPU's buffers), more than "
				    "StarPU's limit of %s (--memory or STARPU_LIMIT_CPU_MEM)",
				    halo__bytes(front + held, a, sizeof a), halo__bytes(front, b, sizeof b),
				    plan->spectra ? " and of PSF spectra" : "", halo__bytes(held, c, sizeof c),
				    halo__bytes((uint64_t)ceiling, d, sizeof d));
		goto out;
	}
	/* Enough in flight to keep every worker busy: tiny chunks need many,
	 * or the submitter sleeps and wakes for each one; more than about
	 * 32 MiB per worker only costs memory and cache. Of chunks larger
	 * than that, CPU workers need only one each and two more: every
	 * chunk buffer beyond is memory first touched in the run (rechunking
	 * 2 GiB into 128x512x512 chunks on 2 cores took 6.5 s with 12 in
	 * flight, 1.7 GB, against 3.1-3.8 s with 3-4). GPU runs keep the
	 * window measured on them. */
	uint64_t w = starpu_worker_get_count(), gpus = starpu_cuda_worker_get_count();
	uint64_t fewest = per > (32u << 20) && !gpus ? w + 2 : 4 * w + 4;
	uint64_t lim = window(budget, front, per, ceiling, held);
	/* Where the GPUs run the kernels, their work arrays are not in main
	 * memory: at the seed's chunks RL's alone held the window to about
	 * two chunks, and the GPU waited for each write before the next
	 * chunk's reads. */
	uint64_t gpu_lim = window(budget, front, per - halo_plan_gpu_work(plan), ceiling, held);
	uint64_t cap = w * (32u << 20) / per;
	cap = cap < fewest ? fewest : cap > 64 * w + 64 ? 64 * w + 64 : cap;
	uint64_t wide = cap;
	/* Checked before StarPU started (runtime/env.c). */
	const char *env = getenv("HALO_INFLIGHT");
	if (env && *env)
		cap = (uint64_t)strtol(env, NULL, 10);
	uint64_t ncuda = env && *env ? 0 : starpu_cuda_worker_get_count();
	/* HALO_GPUS_LEAD=0 leaves the CPU workers on compute tasks, to
	 * measure what sending them to I/O gains. */
	env = getenv("HALO_GPUS_LEAD");
	int lead = !env || strcmp(env, "0");
	halo_runtime_gpu_speedup_set(0);
	/* Several MPI ranks: cut the largest array of the graph into blocks,
	 * one per rank; from here until the outputs are finished every rank
	 * registers and submits the same things in the same order. */
	x.rank = halo__mpi_rank();
	x.ranks = halo__mpi_ranks();
	if (x.ranks > 1) {
		const halo_pnode_t *big = reference_node(plan, x.ranks);
		memcpy(x.ref, big->expr->shape, sizeof x.ref);
		halo_distribution_make(big->grid, x.ranks, &x.dist);
		halo__mpi_distribute(1);
	}
	rc = open_outputs(&x, err);
	/* The run's time includes the kernels' setup below. */
	double start = halo_now();
	/* The kernels' one-off setup, for the haloed shape of a middle chunk
	 * (edge chunks may be smaller). Under MPI every rank would have to
	 * do the same: left to the first chunks. */
	for (int i = 0; !rc && x.ranks == 1 && i < plan->n; i++) {
		halo_pnode_t *p = plan->nodes[i];
		halo_overlap_kernel_t *k = x.st[i].kernel;
		if (p->kind != HALO_PN_OVERLAP || !k->prepare)
			continue;
		int64_t j[3], a[3], b[3], hd[3];
		int trim[3], val[3];
		/* Interior where there are three blocks or more; of two, the
		 * first, which is full where the other may be an edge. */
		for (int d = 0; d < 3; d++)
			j[d] = (p->grid[d].nblocks - 1) / 2;
		overlap_region(p, j, a, b, hd, trim, val);
		rc = k->prepare(k->ctx, (int[3]){(int)hd[0], (int)hd[1], (int)hd[2]}, val, err);
		if (rc)
			step_prefix(err, p->expr);
	}
	if (rc)
		goto out;
	halo_progress_t progress;
	halo_progress_init(&progress, o->label ? o->label : "run", total, o->quiet);
	int64_t asked = 0;
	int halted = 0; /* stopped by a failure here or on another rank */
	for (;;) {
		/* The root furthest behind goes next, so outputs sharing inputs
		 * advance together and shared chunks are freed early. */
		halo_pnode_t *next = NULL;
		double least = 2;
		for (int i = 0; i < plan->n; i++) {
			halo_pnode_t *p = plan->nodes[i];
			double done = (double)x.st[i].next / (double)p->nchunks;
			if (halo_pnode_walks(p) && x.st[i].next < p->nchunks && done < least) {
				least = done;
				next = p;
			}
		}
		if (!next)
			break;
		/* The kernel notes the GPUs' speedup in prepare, or else at
		 * its first chunk. */
		double speedup = halo_runtime_gpu_speedup();
		halo_runtime_gpus_lead_set(lead && gpus_lead(wide, gpus, speedup));
		int gpus_run = halo_runtime_gpus_alone() || halo_runtime_gpus_lead();
		halo__stream_wait(job,
				  halo__inflight_limit(gpus_run ? gpu_lim : lim, cap, w, ncuda, speedup,
						       halo_runtime_gpus_alone()),
				  &progress);
		/* Other ranks wait for this one's data: under MPI the ranks stop
		 * together, at the same point of the walk, when any failed (or
		 * was interrupted); they ask each other every 16 output chunks. */
		if (x.ranks == 1 ? halo__stream_stopped(job)
				 : ++asked % 16 == 0 && halo__mpi_any(halo__stream_stopped(job))) {
			halted = 1;
			break;
		}
		struct pstate *s = &x.st[next->id];
		int64_t j[3] = {s->at[0], s->at[1], s->at[2]};
		s->next++;
		tile_next(next, s->tile, s->at);
		submit_root(&x, next, j);
	}
	/* A projection that follows the walk and missed a chunk would be
	 * stored with fill values where its columns are. A walk that
	 * stopped short has its cause, here or on the rank that failed. */
	for (int i = 0; i < plan->n && !halted && !halo__stream_stopped(job); i++)
		if (plan->nodes[i]->follows && plan->nodes[i]->kind == HALO_PN_STORE &&
		    x.st[i].next < plan->nodes[i]->nchunks) {
			halo_error_t e = {0};
			halo_error_set(&e, HALO_EINVAL, "internal error: step \"%s\": %lld of %lld "
				       "chunks made", plan->nodes[i]->expr->name,
				       (long long)x.st[i].next, (long long)plan->nodes[i]->nchunks);
			halo__stream_fail(job, &e);
		}
	/* Every chunk is submitted: the parked CPU workers may take what
	 * remains. */
	halo_runtime_gpus_lead_set(0);
	/* Handles whose readers were never submitted (the run stopped). */
	for (int i = 0; i < plan->n; i++)
		for (int64_t f = 0; f < plan->nodes[i]->nchunks; f++) {
			if (x.st[i].h[f]) {
				starpu_data_unregister_submit(x.st[i].h[f]);
				x.st[i].h[f] = NULL;
			}
			if (x.st[i].acc && x.st[i].acc[f]) {
				starpu_data_unregister_submit(x.st[i].acc[f]);
				x.st[i].acc[f] = NULL;
			}
		}
	halo__stream_wait(job, 1, &progress);
	starpu_task_wait_for_all();
	halo_progress_update(&progress, job->written + job->partials,
			     job->bytes_read + job->bytes_written);
	halo_progress_finish(&progress);
	if (st)
		*st = (halo_compute_stats_t){
			.tasks = x.tasks, .chunks_read = job->read, .chunks_written = job->written,
			.bytes_read = job->bytes_read, .bytes_written = job->bytes_written,
			.seconds = halo_now() - start,
		};
	rc = halo__stream_result(job, err);
	rc = halo__mpi_agree(rc, err);
	if (st && x.ranks > 1) {
		/* Each rank read and wrote its own chunks. */
		double io[4] = {(double)st->chunks_read, (double)st->chunks_written,
				(double)st->bytes_read, (double)st->bytes_written};
		halo__mpi_sum(io, 4);
		st->chunks_read = (int64_t)io[0];
		st->chunks_written = (int64_t)io[1];
		st->bytes_read = (uint64_t)io[2];
		st->bytes_written = (uint64_t)io[3];
	}
	/* A PSF spectrum that failed made its chunks garbage: commit nothing,
	 * on any rank. */
	int spectra_failed = 0;
	for (int i = 0; i < plan->n; i++)
		spectra_failed |= plan->nodes[i]->kind == HALO_PN_OVERLAP &&
				  plan->nodes[i]->expr->ov == HALO_OV_RICHARDSON_LUCY &&
				  halo_rl_kernel_failed(x.st[i].kernel);
	if (halo__mpi_any(spectra_failed) && !rc)
		rc = halo_error_set(err, HALO_ENOMEM, "out of memory computing a PSF spectrum%s",
				    x.ranks > 1 ? " (on some rank)" : "");
	if (!rc)
		rc = finish_outputs(&x, o, st, err);
	if (st)
		st->seconds = halo_now() - start;
out:
	halo_runtime_gpus_lead_set(0);
	halo__mpi_distribute(0);
	exec_free(&x, err, &rc);
	starpu_pthread_cond_destroy(&job->cond);
	starpu_pthread_mutex_destroy(&job->lock);
	return rc;
}

/* Submission recurses once per step between an output and its sources
 * (chunk, then the task that fills it, then its inputs' chunks), about
 * 9 KB of stack a step: a pipeline over ~900 steps deep overflowed the
 * main thread's 8 MB. Deep plans are submitted from a thread with a
 * stack to match. */
#define STACK_PER_STEP (128u << 10)
#define DEEPEST_PLAN 20000

struct deep_run {
	halo_plan_t *plan;
	const halo_compute_opts_t *o;
	halo_compute_stats_t *st;
	halo_error_t *err;
	int rc;
};

static void *deep_main(void *arg)
{
	struct deep_run *d = arg;
	d->rc = plan_execute(d->plan, d->o, d->st, d->err);
	return NULL;
}

/* The longest chain of steps from a source to an output; -1 when out of
 * memory. */
static int plan_depth(const halo_plan_t *plan)
{
	int *level = calloc((size_t)plan->n + 1, sizeof *level), deepest = 0;
	if (!level)
		return -1;
	for (int i = 0; i < plan->n; i++) { /* inputs come before their readers */
		const halo_pnode_t *p = plan->nodes[i];
		for (int k = 0; k < p->nin; k++)
			level[i] = level[p->in[k]->id] + 1 > level[i] ? level[p->in[k]->id] + 1 : level[i];
		deepest = level[i] > deepest ? level[i] : deepest;
	}
	free(level);
	return deepest;
}

static int depth_check(int deepest, halo_error_t *err)
{
	if (deepest < 0)
		return halo_error_set(err, HALO_ENOMEM, "out of memory planning the graph");
	if (deepest > DEEPEST_PLAN)
		return halo_error_set(err, HALO_EINVAL, "the pipeline is %d steps deep; halo runs "
				      "up to %d", deepest, DEEPEST_PLAN);
	return HALO_OK;
}

int halo_plan_execute(halo_plan_t *plan, const halo_compute_opts_t *o, halo_compute_stats_t *st,
		      halo_error_t *err)
{
	int deepest = plan_depth(plan);
	int rc = depth_check(deepest, err);
	if (rc)
		return rc;
#ifdef HALO_SIMULATE
	/* SimGrid's blocking calls work only in its own actors. */
	return plan_execute(plan, o, st, err);
#endif
	if (deepest < 64)
		return plan_execute(plan, o, st, err);
	struct deep_run d = {.plan = plan, .o = o, .st = st, .err = err};
	pthread_attr_t attr;
	pthread_t tid;
	int started = 0;
	if (pthread_attr_init(&attr) == 0) {
		started = pthread_attr_setstacksize(&attr, (size_t)(deepest + 64) * STACK_PER_STEP) ==
				  0 &&
			  pthread_create(&tid, &attr, deep_main, &d) == 0;
		pthread_attr_destroy(&attr);
	}
	if (!started)
		return halo_error_set(err, HALO_ENOMEM, "out of memory for a pipeline %d steps deep",
				      deepest);
	pthread_join(tid, NULL);
	return d.rc;
}

int halo_graph_compute(halo_graph_t *g, const halo_compute_opts_t *o, halo_compute_stats_t *st,
		       halo_error_t *err)
{
	halo_plan_t *plan;
	int rc = halo_plan_build(g, &plan, err);
	if (rc)
		return rc;
	rc = halo_plan_execute(plan, o, st, err);
	halo_plan_free(plan);
	return rc;
}
