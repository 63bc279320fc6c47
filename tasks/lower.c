/* Lowering an expression graph to a plan (see plan.h): culling, fusion of
 * elementwise chains, and the per-chunk input lists and use counts. */
#include "config.h"
#include "tasks/plan.h"
#include "runtime/runtime.h"
#include "util/signals.h"
#include "util/util.h"
#include "codelets/gather.h"
#include "codelets/rl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *halo_pn_kind_name(halo_pn_kind_t k)
{
	static const char *const names[] = {"read", "elementwise", "rechunk", "map_overlap",
					    "reduce", "write"};
	return names[k];
}

static int elementwise(const halo_expr_t *e)
{
	return e->op == HALO_OP_ASTYPE || e->op == HALO_OP_MAP_BLOCKS;
}

struct lower {
	halo_pnode_t **of;  /* per expression id: its plan node, if materialised */
	int *group;         /* per expression id: the fused chain's last step, or -1 */
	int *reg;           /* per expression id: its register in the program being compiled */
	halo_pnode_t *p;    /* the fused node being compiled */
	int failed;
};

/* An elementwise step computed inside the task of a later step. */
static int inlined(const struct lower *L, const halo_expr_t *e)
{
	return L->group[e->id] >= 0 && L->group[e->id] != e->id;
}

static int add_input(halo_pnode_t *p, halo_pnode_t *in)
{
	for (int i = 0; i < p->nin; i++)
		if (p->in[i] == in)
			return i;
	if (p->nin == HALO_EW_MAXIN)
		return -1;
	p->in[p->nin] = in;
	return p->nin++;
}

static int compile_step(struct lower *L, halo_expr_t *e);

static int emit(struct lower *L, halo_ewop_t op, halo_dtype_kind_t kind, int a, int b,
		const double *q)
{
	struct halo_ew_prog *g = &L->p->prog;
	if (a < 0 || b < -1 || g->nops == HALO_EW_MAXOPS) {
		L->failed = 1;
		return -1;
	}
	g->ops[g->nops] = (struct halo_ew_instr){.op = op, .kind = kind, .a = a, .b = b,
						 .p = {q ? q[0] : 0, q ? q[1] : 0}};
	return g->nops++;
}

static int cast_to(struct lower *L, int r, halo_dtype_kind_t kind)
{
	if (r < 0)
		return -1;
	if (L->p->prog.ops[r].kind == kind)
		return r;
	return emit(L, HALO_EWOP_CAST, kind, r, -1, NULL);
}

/* Compiles e (of the fused group) into the program; returns its register.
 * A step that feeds two others of the chain is computed once. */
static int compile(struct lower *L, halo_expr_t *e, int top)
{
	if (L->reg[e->id] >= 0)
		return L->reg[e->id];
	int r = -1;
	if (!top && !inlined(L, e)) {
		int i = add_input(L->p, L->of[e->id]);
		if (i < 0) {
			L->failed = 1;
			return -1;
		}
		L->p->prog.in_kind[i] = e->dtype;
		if (i >= L->p->prog.nin)
			L->p->prog.nin = i + 1;
		r = emit(L, HALO_EWOP_LOAD, e->dtype, i, -1, NULL);
	} else {
		r = compile_step(L, e);
	}
	return L->reg[e->id] = r;
}

static int compile_step(struct lower *L, halo_expr_t *e)
{
	int a = compile(L, e->in[0], 0);
	if (e->op == HALO_OP_ASTYPE)
		return cast_to(L, a, e->dtype);
	static const halo_ewop_t ops[HALO_EW_COUNT] = {
		[HALO_EW_SCALE] = HALO_EWOP_SCALE, [HALO_EW_CLIP] = HALO_EWOP_CLIP,
		[HALO_EW_ABS] = HALO_EWOP_ABS, [HALO_EW_SQRT] = HALO_EWOP_SQRT,
		[HALO_EW_LOG1P] = HALO_EWOP_LOG1P, [HALO_EW_ADD] = HALO_EWOP_ADD,
		[HALO_EW_SUB] = HALO_EWOP_SUB, [HALO_EW_MUL] = HALO_EWOP_MUL,
		[HALO_EW_DIV] = HALO_EWOP_DIV, [HALO_EW_MAXIMUM] = HALO_EWOP_MAX,
		[HALO_EW_MINIMUM] = HALO_EWOP_MIN,
	};
	/* numpy converts the operands to the result type, then computes. */
	a = cast_to(L, a, e->dtype);
	int b = -1;
	if (e->nin == 2)
		b = cast_to(L, compile(L, e->in[1], 0), e->dtype);
	return emit(L, ops[e->ew], e->dtype, a, b, e->p);
}

/* "a+b+c": the chain's steps in the order they were written. */
static void label_group(const struct lower *L, halo_graph_t *g, halo_pnode_t *p)
{
	for (int i = 0; i <= p->expr->id; i++) {
		const halo_expr_t *e = halo_graph_node(g, i);
		if (L->group[i] != p->expr->id)
			continue;
		char label[sizeof p->label + sizeof e->name + 2];
		snprintf(label, sizeof label, "%s%s%s", p->label, p->label[0] ? "+" : "", e->name);
		halo__copy_utf8(p->label, sizeof p->label, label); /* DOT wants whole characters */
	}
}

static int is_regular(const struct halo_axis *a)
{
	int64_t c = a->start[1] - a->start[0];
	for (int64_t k = 0; k + 1 < a->nblocks; k++)
		if (a->start[k + 1] - a->start[k] != c)
			return 0;
	return a->n - a->start[a->nblocks - 1] <= c;
}

void halo_pnode_block(const halo_pnode_t *p, const int64_t j[3], int64_t origin[3],
		      int64_t dims[3], int64_t valid[3])
{
	for (int d = 0; d < 3; d++) {
		const struct halo_axis *a = &p->grid[d];
		origin[d] = a->start[j[d]];
		valid[d] = a->start[j[d] + 1] - a->start[j[d]];
		dims[d] = p->padded[d] ? a->start[1] - a->start[0] : valid[d];
	}
}

/* The input axis of p's input that output axis od reads, for reductions
 * along an axis: the remaining input axes in order, right-aligned. */
static int input_axis(const halo_pnode_t *p, int od)
{
	if (p->kind != HALO_PN_REDUCE || p->expr->axis < 0)
		return od;
	int ax = p->expr->axis;
	if (od == 0)
		return -1;
	int rem[2], k = 0;
	for (int d = 0; d < 3; d++)
		if (d != ax)
			rem[k++] = d;
	return rem[od - 1];
}

void halo_pnode_column(const halo_pnode_t *p, const int64_t c[3], int64_t j[3])
{
	for (int od = 0; od < 3; od++) {
		int d = input_axis(p, od);
		j[od] = d < 0 ? 0 : c[d];
	}
}

/* Blocks of input k's axis d that p's chunk at block jd (of the matching
 * output axis) reads. */
static int64_t axis_list(const halo_pnode_t *p, int k, int d, int64_t jd, int64_t *list)
{
	const struct halo_axis *ia = &p->in[k]->grid[d];
	if (p->kind == HALO_PN_REDUCE && d == p->expr->axis) {
		for (int64_t i = 0; i < ia->nblocks; i++)
			list[i] = i;
		return ia->nblocks;
	}
	if (p->kind != HALO_PN_GATHER && p->kind != HALO_PN_OVERLAP && !p->gathers) {
		list[0] = jd;
		return 1;
	}
	int od = d; /* gather and overlap keep axes */
	int64_t lo = p->grid[od].start[jd], hi = p->grid[od].start[jd + 1];
	int boundary = HALO_BOUNDARY_NONE;
	if (p->kind == HALO_PN_OVERLAP) {
		const halo_expr_t *e = p->expr;
		lo -= e->depth[d];
		hi += e->depth[d];
		boundary = e->boundary;
		if (boundary == HALO_BOUNDARY_NONE) {
			lo = lo < 0 ? 0 : lo;
			hi = hi > e->shape[d] ? e->shape[d] : hi;
		}
	}
	return halo_axis_blocks_touched(ia, lo, hi, boundary, list);
}

void halo_plan_inputs(const halo_pnode_t *p, int k, const int64_t j[3], int64_t *lists[3],
		      int64_t cnt[3])
{
	int64_t jin[3] = {0, 0, 0};
	for (int od = 0; od < 3; od++) {
		int d = input_axis(p, od);
		if (d >= 0)
			jin[d] = j[od];
	}
	for (int d = 0; d < 3; d++)
		cnt[d] = axis_list(p, k, d, jin[d], lists[d]);
}

int64_t halo_pnode_tasks_per_chunk(const halo_pnode_t *p)
{
	if (p->kind == HALO_PN_OVERLAP)
		return 2;
	if (p->kind == HALO_PN_REDUCE && p->expr->axis >= 0)
		return p->in[0]->grid[p->expr->axis].nblocks + 1;
	return 1;
}

/* Use counts: per input axis, how many of p's tasks read each block; a
 * chunk's count is the product over its axes. */
static int count_uses(halo_pnode_t *p, halo_error_t *err)
{
	for (int k = 0; k < p->nin; k++) {
		halo_pnode_t *in = p->in[k];
		int64_t *count[3] = {NULL, NULL, NULL}, *list = NULL;
		int rc = HALO_OK;
		int64_t most = 1;
		for (int d = 0; d < 3; d++)
			most = in->grid[d].nblocks > most ? in->grid[d].nblocks : most;
		list = malloc((size_t)most * sizeof *list);
		for (int d = 0; d < 3; d++)
			count[d] = calloc((size_t)in->grid[d].nblocks, sizeof **count);
		if (!list || !count[0] || !count[1] || !count[2]) {
			rc = halo_error_set(err, HALO_ENOMEM, "out of memory planning chunks");
			goto out;
		}
		for (int od = 0; od < 3; od++) {
			int d = input_axis(p, od);
			if (d < 0)
				continue;
			for (int64_t jd = 0; jd < p->grid[od].nblocks; jd++) {
				int64_t n = axis_list(p, k, d, jd, list);
				for (int64_t i = 0; i < n; i++)
					count[d][list[i]]++;
			}
		}
		if (p->kind == HALO_PN_REDUCE && p->expr->axis >= 0)
			for (int64_t i = 0; i < in->grid[p->expr->axis].nblocks; i++)
				count[p->expr->axis][i] = 1;
		int64_t i[3], f = 0;
		for (i[0] = 0; i[0] < in->grid[0].nblocks; i[0]++)
			for (i[1] = 0; i[1] < in->grid[1].nblocks; i[1]++) {
				if (halo_interrupted()) { /* hundreds of millions of chunks */
					rc = halo_error_set(err, HALO_EINTR,
							    "interrupted; no output was written");
					goto out;
				}
				for (i[2] = 0; i[2] < in->grid[2].nblocks; i[2]++, f++)
					in->uses[f] += (int32_t)(count[0][i[0]] * count[1][i[1]] *
								 count[2][i[2]]);
			}
out:
		free(list);
		for (int d = 0; d < 3; d++)
			free(count[d]);
		if (rc)
			return rc;
	}
	return HALO_OK;
}

/* Whether a cast from kind `from` to float kind `to` leaves what a later
 * conversion to float32 gives as if converted directly: exact, or float32
 * itself. float16 rounds (2049 became 2048 in dask, not in halo), and
 * float64 rounds 64-bit integers, which float32 would round again. */
static int cast_transparent(halo_dtype_kind_t from, halo_dtype_kind_t to)
{
	if (to == HALO_F4)
		return 1;
	if (to == HALO_F8)
		return from != HALO_I8 && from != HALO_U8;
	return to == HALO_F2 && (from == HALO_F2 || from == HALO_U1 || from == HALO_I1 ||
				 from == HALO_B1);
}

/* map_overlap assembles its haloed blocks from any chunk grid and converts
 * to float32 on the way, so a rechunk, or a chain of casts to float types
 * (each exact or rounding once to float32: cast_transparent), that feeds
 * only map_overlap steps (or rechunks: reads_through) needs no task of its
 * own: one memory pass and one copy of every chunk less. The seed pipeline
 * (from_zarr, rechunk, astype float32, map_overlap) becomes read,
 * map_overlap, write. */
static int bypassable(const halo_pnode_t *q)
{
	if (q->kind == HALO_PN_GATHER)
		return 1;
	if (q->kind != HALO_PN_FUSED || q->prog.nin != 1)
		return 0;
	halo_dtype_kind_t kind = q->prog.in_kind[0];
	for (int k = 0; k < q->prog.nops; k++) {
		const struct halo_ew_instr *op = &q->prog.ops[k];
		if (op->op == HALO_EWOP_LOAD)
			continue;
		if (op->op != HALO_EWOP_CAST || halo_dtype_kind_is_int(op->kind) ||
		    !cast_transparent(kind, op->kind))
			return 0;
		kind = op->kind;
	}
	return 1;
}

/* p's tasks' grid, and what follows from it; -1 when out of memory. */
static int set_grid(halo_pnode_t *p, const struct halo_axis *grid)
{
	p->grid = grid;
	p->nchunks = grid[0].nblocks * grid[1].nblocks * grid[2].nblocks;
	for (int d = 0; d < 3; d++)
		p->padded[d] = is_regular(&grid[d]);
	free(p->uses);
	p->uses = calloc((size_t)p->nchunks, sizeof *p->uses);
	return p->uses ? 0 : -1;
}

static void node_free(halo_pnode_t *p)
{
	if (!p)
		return;
	free(p->uses);
	for (int d = 0; d < 3; d++)
		halo_axis_free(&p->thin[d]);
	free(p);
}

/* Whether r, a reader of q (bypassable), can read q's input instead:
 * map_overlap, or a rechunk of one cast, which the rechunk does as it
 * assembles (a float32 layer of uint16 chunks, rechunked into a TIFF's
 * pages, held the float32 layer besides the uint16 one). One cast only:
 * f64 -> f32 -> f64 in one step would skip a rounding. Not a rechunk of a
 * rechunk: the fine chunks an output chunk then needs at once can be
 * many more, each a StarPU handle of ~16 KiB (1x5x5 chunks rechunked to
 * 10x30x30, then 20x60x60: 55 MB of RSS, 75 MB without the middle one). */
static int reads_through(const halo_pnode_t *r, const halo_pnode_t *q)
{
	return r->kind == HALO_PN_OVERLAP ||
	       (r->kind == HALO_PN_GATHER && q->kind == HALO_PN_FUSED && q->prog.nops <= 2);
}

/* Removes q from the plan (its readers no longer use it). */
static void drop(halo_plan_t *plan, int i)
{
	node_free(plan->nodes[i]);
	memmove(plan->nodes + i, plan->nodes + i + 1, (size_t)(plan->n - i - 1) * sizeof *plan->nodes);
	plan->n--;
}

/* An elementwise chain read only by a reduction to a scalar runs inside
 * the reduction's task, row by row: its result is never stored (dask
 * fuses the chain into the reduction's per-chunk step the same way). */
static void fuse_into_reductions(halo_plan_t *plan)
{
	for (int i = 0; i < plan->n; i++) {
		halo_pnode_t *q = plan->nodes[i];
		/* Once: a chain too long for one program is cut into several
		 * fused nodes, and only the last one runs inside. */
		if (q->kind != HALO_PN_REDUCE || q->expr->axis >= 0 || q->prog.nops > 0 ||
		    q->in[0]->kind != HALO_PN_FUSED)
			continue;
		halo_pnode_t *f = q->in[0];
		int readers = 0;
		for (int k = 0; k < plan->n; k++)
			for (int m = 0; m < plan->nodes[k]->nin; m++)
				readers += plan->nodes[k]->in[m] == f;
		if (readers != 1)
			continue;
		q->prog = f->prog;
		q->nin = f->nin;
		memcpy(q->in, f->in, sizeof q->in);
		char label[2 * sizeof q->label + 2];
		snprintf(label, sizeof label, "%s+%s", f->label, q->label);
		halo__copy_utf8(q->label, sizeof q->label, label);
		for (int k = 0; k < plan->n; k++)
			if (plan->nodes[k] == f) {
				drop(plan, k);
				break;
			}
		i = -1; /* indices moved: start over */
	}
}

/* The only reader of q, or NULL when it has none or several. */
static halo_pnode_t *sole_reader(const halo_plan_t *plan, const halo_pnode_t *q)
{
	halo_pnode_t *r = NULL;
	for (int k = 0; k < plan->n; k++)
		for (int m = 0; m < plan->nodes[k]->nin; m++)
			if (plan->nodes[k]->in[m] == q) {
				if (r)
					return NULL;
				r = plan->nodes[k];
			}
	return r;
}

/* Chunks up to this size that a store writes straight from a rechunk are
 * assembled by the write task itself, in a buffer of its thread that the
 * encoder then reads from cache: no gather task, no block of their own,
 * one trip through memory less. Larger ones keep the rechunk's tasks (a
 * buffer per worker would outgrow --memory). */
#define STORE_GATHER_MAX ((uint64_t)16 << 20)

static void largest_dims(const halo_pnode_t *p, const int depth[3], int64_t big[3]);
static uint64_t largest_chunk(const halo_pnode_t *p, const int depth[3], size_t elsize);

/* A rechunk read by one Zarr store alone (halo convert's) becomes part of
 * it. Not a TIFF's: its writes go one at a time, in page order, and the
 * gathers are better done meanwhile, in parallel, by tasks of their own.
 * Nor under MPI, where a gather task brings the parts of a chunk across
 * ranks (runtime/gather_cells.c). */
static void fuse_into_stores(halo_plan_t *plan)
{
	if (halo__runtime_mpi_launched())
		return;
	for (int i = 0; i < plan->n; i++) {
		halo_pnode_t *q = plan->nodes[i];
		if (q->kind != HALO_PN_GATHER)
			continue;
		halo_pnode_t *store = sole_reader(plan, q);
		/* The chunk is assembled in the output's type: from a
		 * rechunk's, where the rechunk converts (a cast it reads
		 * through), lest a value be rounded twice in one step. */
		if (!store || store->kind != HALO_PN_STORE ||
		    (q->in[0]->expr->dtype != q->expr->dtype &&
		     store->expr->info.dtype.kind != q->expr->dtype) ||
		    store->expr->wopts.format == HALO_FMT_TIFF ||
		    largest_chunk(store, NULL, halo_dtype_size(store->expr->info.dtype)) >
			    STORE_GATHER_MAX)
			continue;
		store->in[0] = q->in[0];
		store->gathers = 1;
		char label[2 * sizeof q->label + 2];
		snprintf(label, sizeof label, "%s+%s", q->label, store->label);
		halo__copy_utf8(store->label, sizeof store->label, label);
		drop(plan, i);
		i--;
	}
}

/* A uniform filter whose depth along z covers its radius gives the same
 * voxels whatever its z-chunks. When only a rechunk to thinner z-chunks
 * reads it (a TIFF's 16 pages; through one-input elementwise steps), it
 * and those steps compute in slabs that thin, or as thin as 4 x its
 * depth allows (halos at most half the work): the rechunk's chunk then
 * needs a layer of slabs that thin instead of a layer of the filter's
 * thick chunks (1 GiB of uint16 in 64x256x256 chunks filtered into a
 * float32 TIFF held 1.07 GB of RSS at --memory 1G and 256M; now 0.72 and
 * 0.52 GB). -1 when out of memory. */
static int thin_for_rechunk(halo_plan_t *plan)
{
	for (int i = 0; i < plan->n; i++) {
		halo_pnode_t *p = plan->nodes[i];
		const halo_expr_t *e = p->expr;
		if (p->kind != HALO_PN_OVERLAP || e->ov != HALO_OV_UNIFORM || !is_regular(&p->grid[0]))
			continue;
		/* Only z's blocks change: its depth must cover the radius. */
		int exact = e->depth[0] >= e->size / 2;
		halo_pnode_t *chain[HALO_EW_MAXOPS + 2], *g = p;
		int n = 0;
		do {
			chain[n++] = g;
			g = sole_reader(plan, g);
		} while (g && g->kind == HALO_PN_FUSED && g->prog.nin == 1 && n < HALO_EW_MAXOPS + 1);
		if (!exact || !g || g->kind != HALO_PN_GATHER || !is_regular(&g->grid[0]))
			continue;
		int64_t want = g->grid[0].start[1] - g->grid[0].start[0];
		int64_t least = halo_chunks_auto_least(e->depth[0]);
		want *= (least + want - 1) / want;
		if (want >= p->grid[0].start[1] - p->grid[0].start[0])
			continue;
		for (int k = 0; k < n; k++) {
			halo_pnode_t *q = chain[k];
			struct halo_axis z = {0};
			if (halo_axis_regular(&z, q->grid[0].n, want) ||
			    halo_axis_min_blocks(&q->thin[0], &z, e->depth[0] ? e->depth[0] : 1) ||
			    halo_axis_copy(&q->thin[1], &q->grid[1]) ||
			    halo_axis_copy(&q->thin[2], &q->grid[2])) {
				halo_axis_free(&z);
				return -1;
			}
			halo_axis_free(&z);
			if (set_grid(q, q->thin))
				return -1;
		}
	}
	return 0;
}

static int bypass(halo_plan_t *plan)
{
	fuse_into_reductions(plan);
	for (int changed = 1; changed;) {
		changed = 0;
		for (int i = 0; i < plan->n; i++) {
			halo_pnode_t *q = plan->nodes[i];
			int readers = 0, others = 0;
			for (int k = 0; k < plan->n; k++)
				for (int m = 0; m < plan->nodes[k]->nin; m++)
					if (plan->nodes[k]->in[m] == q) {
						if (reads_through(plan->nodes[k], q))
							readers++;
						else
							others++;
					}
			if (!bypassable(q) || !readers || others)
				continue;
			for (int k = 0; k < plan->n; k++)
				if (plan->nodes[k]->in[0] == q)
					plan->nodes[k]->in[0] = q->in[0];
			drop(plan, i);
			changed = 1;
			break;
		}
	}
	if (thin_for_rechunk(plan))
		return -1;
	fuse_into_stores(plan);
	for (int i = 0; i < plan->n; i++)
		plan->nodes[i]->id = i;
	return 0;
}

halo_pnode_t *halo_pnode_projection(const halo_pnode_t *store)
{
	halo_pnode_t *r = store->in[0];
	return r->kind == HALO_PN_REDUCE ? r : r->in[0];
}

void halo_pnode_stored_in(const halo_pnode_t *store, const int64_t j[3], int64_t *lists[3],
			  int64_t cnt[3])
{
	const halo_pnode_t *p = halo_pnode_projection(store);
	for (int d = 0; d < 3; d++) {
		const struct halo_axis *a = &p->grid[d];
		if (store->in[0] == p && !store->gathers) {
			lists[d][0] = j[d];
			cnt[d] = 1;
		} else {
			cnt[d] = halo_axis_blocks_touched(&store->grid[d], a->start[j[d]],
							  a->start[j[d] + 1], HALO_BOUNDARY_NONE,
							  lists[d]);
		}
	}
}

int64_t halo_pnode_stored_needs(const halo_pnode_t *store, const int64_t js[3], int64_t *lists[3])
{
	int64_t cnt[3];
	const halo_pnode_t *p = halo_pnode_projection(store);
	halo_plan_inputs(store->in[0] == p ? store : store->in[0], 0, js, lists, cnt);
	return cnt[0] * cnt[1] * cnt[2];
}

/* A reduction along an axis that only a store reads (a projection)
 * follows the walk of the other outputs: each input chunk is added to
 * its column's accumulator when the walk makes it, and the column is
 * stored when its last chunk is in. Walked on its own, column by column,
 * it held every input chunk from its column's turn to the other outputs'
 * (projections along z and x beside a store: the whole volume). It needs
 * another output that reads its input (every step reads all of its
 * input's chunks); where none does, that input is walked for it (a
 * maximum along z of a filtered 512 MiB volume into a TIFF, the only
 * output, held the whole filtered volume, 2.7 GB). Under MPI, where the
 * ranks walk in step, or where another step reads that input too, the
 * first projection without one walks instead, and the others may follow
 * it. */
static int mark_followers(halo_plan_t *plan)
{
	int n = plan->n, rc = HALO_OK;
	char *cand = calloc((size_t)n, 1), *driven = calloc((size_t)n, 1);
	int *readers = calloc((size_t)n, sizeof *readers), *projs = calloc((size_t)n, sizeof *projs);
	if (!cand || !driven || !readers || !projs) {
		rc = HALO_ENOMEM;
		goto out;
	}
	for (int i = 0; i < n; i++)
		for (int k = 0; k < plan->nodes[i]->nin; k++)
			readers[plan->nodes[i]->in[k]->id]++;
	for (int i = 0; i < n; i++) {
		const halo_pnode_t *p = plan->nodes[i], *r = p->nin ? p->in[0] : NULL;
		if (p->kind != HALO_PN_STORE)
			continue;
		/* Through a rechunk that only it reads (a TIFF's whole planes). */
		if (r->kind == HALO_PN_GATHER && readers[r->id] == 1 && !p->gathers)
			r = r->in[0];
		cand[i] = r->kind == HALO_PN_REDUCE && r->expr->axis >= 0 && readers[r->id] == 1 &&
			  (p->expr->wopts.format != HALO_FMT_TIFF || p->nchunks == 1);
	}
	for (;;) {
		memset(driven, 0, (size_t)n);
		for (int i = n - 1; i >= 0; i--) {
			const halo_pnode_t *p = plan->nodes[i];
			driven[i] |= (p->root && !cand[i]) || p->drives;
			for (int k = 0; driven[i] && k < p->nin; k++)
				driven[p->in[k]->id] = 1;
		}
		/* An input is walked only where projections alone read it:
		 * another reader (a filter of it, itself projected) may make
		 * its chunks in another order, and a chunk made twice was
		 * added twice. */
		memset(projs, 0, (size_t)n * sizeof *projs);
		for (int i = 0; i < n; i++)
			if (cand[i])
				projs[halo_pnode_projection(plan->nodes[i])->in[0]->id]++;
		int walks = -1, undriven = -1;
		for (int i = n - 1; i >= 0; i--) {
			int in = cand[i] ? halo_pnode_projection(plan->nodes[i])->in[0]->id : -1;
			if (in < 0 || driven[in])
				continue;
			undriven = i;
			walks = readers[in] == projs[in] ? i : walks;
		}
		if (undriven < 0)
			break;
		if (walks >= 0 && !halo__runtime_mpi_launched())
			halo_pnode_projection(plan->nodes[walks])->in[0]->drives = 1;
		else
			cand[undriven] = 0;
	}
	for (int i = 0; i < n; i++)
		if (cand[i]) { /* the store, any rechunk between, the reduction */
			plan->nodes[i]->follows = plan->nodes[i]->in[0]->follows = 1;
			halo_pnode_projection(plan->nodes[i])->follows = 1;
		}
out:
	free(cand);
	free(driven);
	free(readers);
	free(projs);
	return rc;
}

/* StarPU 1.3 sizes a block as nx * ny * nz in 32 bits (block_interface.c)
 * and counts a vector's elements in 32 bits: a task's chunk, haloed, and
 * RL's spectrum of it must hold fewer than 2^32 elements, or its buffer
 * wraps to a few bytes and the codelet writes past it. */
static int check_blocks(const halo_plan_t *plan, halo_error_t *err)
{
	for (int i = 0; i < plan->n; i++) {
		const halo_pnode_t *p = plan->nodes[i];
		const halo_expr_t *e = p->expr;
		int overlap = p->kind == HALO_PN_OVERLAP;
		int64_t big[3];
		largest_dims(p, overlap ? e->depth : NULL, big);
		double n = (double)big[0] * (double)big[1] * (double)big[2];
		if (overlap && e->ov == HALO_OV_RICHARDSON_LUCY)
			n = 2.0 * (double)big[0] * (double)big[1] * (double)(big[2] / 2 + 1);
		if (n < 4294967296.0)
			continue;
		char dims[96];
		return halo_error_set(err, HALO_EINVAL, "step \"%s\": chunks of %s%s voxels, 2^32 or "
				      "more, which StarPU's chunk buffers cannot hold; rechunk smaller",
				      e->name, halo__dims(big, 3, dims, sizeof dims),
				      overlap ? " (with their halo)" : "");
	}
	return HALO_OK;
}

static halo_pn_kind_t kind_of(const halo_expr_t *e)
{
	switch (e->op) {
	case HALO_OP_SOURCE: return HALO_PN_SOURCE;
	case HALO_OP_RECHUNK: return HALO_PN_GATHER;
	case HALO_OP_MAP_OVERLAP: return HALO_PN_OVERLAP;
	case HALO_OP_REDUCE: return HALO_PN_REDUCE;
	case HALO_OP_STORE: return HALO_PN_STORE;
	default: return HALO_PN_FUSED;
	}
}

int halo_plan_build(halo_graph_t *g, halo_plan_t **out, halo_error_t *err)
{
	int n = halo_graph_count(g);
	halo_plan_t *plan = calloc(1, sizeof *plan);
	struct lower L = {.of = calloc((size_t)n + 1, sizeof *L.of),
			  .group = malloc(((size_t)n + 1) * sizeof *L.group),
			  .reg = malloc(((size_t)n + 1) * sizeof *L.reg)};
	char *needed = calloc((size_t)n + 1, 1);
	if (plan)
		plan->nodes = calloc((size_t)n + 1, sizeof *plan->nodes);
	int rc = HALO_OK;
	if (!plan || !plan->nodes || !L.of || !needed || !L.group || !L.reg) {
		rc = halo_error_set(err, HALO_ENOMEM, "out of memory planning the graph");
		goto out;
	}
	/* Steps halo added (rechunks before map_overlap and stores) and
	 * steps built from C without a name get one. */
	for (int i = 0; i < n; i++) {
		halo_expr_t *e = halo_graph_node(g, i);
		if (!e->name[0])
			snprintf(e->name, sizeof e->name, "%s-%d", halo_op_name(e), e->id);
	}
	/* Culling: only what a store or a scalar reduction needs. */
	for (int i = n - 1; i >= 0; i--) {
		halo_expr_t *e = halo_graph_node(g, i);
		if (e->op == HALO_OP_STORE || (e->op == HALO_OP_REDUCE && e->axis < 0))
			needed[i] = 1;
		if (!needed[i])
			continue;
		for (int k = 0; k < e->nin; k++)
			needed[e->in[k]->id] = 1;
	}
	/* Fusion, from the outputs back: an elementwise step joins the chain
	 * of its consumers when they are all elementwise and in one chain
	 * (dask's blockwise fusion); otherwise it ends a chain of its own. A
	 * step adds at most two loads, two casts and its operation to the
	 * chain's program, and one input besides the chain's first: a chain
	 * of CHAIN steps always fits one, and a longer one is cut (each cut
	 * costs a memory pass). */
	enum { CHAIN = HALO_EW_MAXOPS / 5 < HALO_EW_MAXIN - 1 ? HALO_EW_MAXOPS / 5 : HALO_EW_MAXIN - 1 };
	for (int i = n - 1; i >= 0; i--) {
		halo_expr_t *e = halo_graph_node(g, i);
		L.group[i] = -1;
		L.reg[i] = 0; /* here: the steps of the chain i ends */
		if (!needed[i] || !elementwise(e))
			continue;
		int joined = -2;
		for (int k = i + 1; k < n && joined != -1; k++) {
			const halo_expr_t *c = halo_graph_node(g, k);
			if (!needed[k] || (c->in[0] != e && (c->nin < 2 || c->in[1] != e)))
				continue;
			int grp = elementwise(c) ? L.group[k] : -1;
			joined = joined == -2 || joined == grp ? grp : -1;
		}
		L.group[i] = joined >= 0 && L.reg[joined] < CHAIN ? joined : i;
		L.reg[L.group[i]]++;
	}
	int roots = 0;
	for (int i = 0; i < n; i++) {
		halo_expr_t *e = halo_graph_node(g, i);
		e->live = needed[i];
		if (!needed[i] || inlined(&L, e))
			continue;
		halo_pnode_t *p = calloc(1, sizeof *p);
		if (!p) {
			rc = halo_error_set(err, HALO_ENOMEM, "out of memory planning the graph");
			goto out;
		}
		plan->nodes[plan->n] = p;
		p->id = plan->n++;
		p->kind = kind_of(e);
		p->expr = e;
		L.of[i] = p;
		if (p->kind == HALO_PN_FUSED) {
			L.p = p;
			for (int k = 0; k < n; k++)
				L.reg[k] = -1;
			compile(&L, e, 1);
			if (L.failed) {
				rc = halo_error_set(err, HALO_EUNSUPPORTED,
						    "step \"%s\": more than %d inputs or %d operations "
						    "in one elementwise chain", e->name, HALO_EW_MAXIN,
						    HALO_EW_MAXOPS);
				goto out;
			}
			label_group(&L, g, p);
		} else {
			for (int k = 0; k < e->nin; k++)
				add_input(p, L.of[e->in[k]->id]);
			snprintf(p->label, sizeof p->label, "%s", e->name);
		}
		p->root = p->kind == HALO_PN_STORE || (p->kind == HALO_PN_REDUCE && e->axis < 0);
		for (int d = 0; d < 3; d++)
			p->order[d] = d;
		roots += p->root;
		if (set_grid(p, p->kind == HALO_PN_REDUCE && e->axis < 0 ? p->in[0]->grid : e->grid)) {
			rc = halo_error_set(err, HALO_ENOMEM, "out of memory planning the graph");
			goto out;
		}
		if (p->kind == HALO_PN_REDUCE && e->axis < 0)
			memcpy(p->padded, p->in[0]->padded, sizeof p->padded);
	}
	if (!roots) {
		rc = halo_error_set(err, HALO_EINVAL,
				    "nothing to compute: no to_zarr, to_tiff or reduction to a scalar");
		goto out;
	}
	if (bypass(plan)) {
		rc = halo_error_set(err, HALO_ENOMEM, "out of memory planning the graph");
		goto out;
	}
	rc = check_blocks(plan, err);
	if (rc)
		goto out;
	for (int i = 0; i < plan->n; i++) {
		rc = count_uses(plan->nodes[i], err);
		if (rc)
			goto out;
	}
	if (mark_followers(plan))
		rc = halo_error_set(err, HALO_ENOMEM, "out of memory planning the graph");
out:
	free(L.of);
	free(L.group);
	free(L.reg);
	free(needed);
	if (rc) {
		halo_plan_free(plan);
		plan = NULL;
	}
	*out = plan;
	return rc;
}

void halo_plan_free(halo_plan_t *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->n; i++)
		node_free(p->nodes[i]);
	free(p->nodes);
	free(p);
}

void halo_plan_stats(const halo_plan_t *p, halo_plan_stats_t *st)
{
	memset(st, 0, sizeof *st);
	for (int i = 0; i < p->n; i++) {
		const halo_pnode_t *q = p->nodes[i];
		int64_t per = halo_pnode_tasks_per_chunk(q);
		st->tasks += per * q->nchunks;
		st->tasks_by_kind[q->kind] += per * q->nchunks;
		if (q->kind == HALO_PN_REDUCE && q->expr->axis < 0)
			continue; /* its "chunks" are partials, not arrays */
		st->chunks += q->nchunks;
		uint64_t bytes = halo_dtype_size((halo_dtype_t){q->expr->dtype, 0});
		for (int d = 0; d < 3; d++) {
			const struct halo_axis *a = &q->grid[d];
			bytes *= (uint64_t)(q->padded[d] ? a->nblocks * (a->start[1] - a->start[0]) : a->n);
		}
		st->bytes += bytes;
	}
	/* Edges: every read of a chunk by a task. */
	for (int i = 0; i < p->n; i++) {
		const halo_pnode_t *q = p->nodes[i];
		for (int64_t f = 0; f < q->nchunks; f++)
			st->edges += q->uses[f];
	}
}

/* The longest block of p's grid on each axis, with depth on both sides. */
static void largest_dims(const halo_pnode_t *p, const int depth[3], int64_t big[3])
{
	for (int d = 0; d < 3; d++) {
		big[d] = 0;
		for (int64_t k = 0; k < p->grid[d].nblocks; k++) {
			int64_t len = p->grid[d].start[k + 1] - p->grid[d].start[k];
			big[d] = len > big[d] ? len : big[d];
		}
		big[d] += 2 * (int64_t)(depth ? depth[d] : 0);
	}
}

static uint64_t largest_chunk(const halo_pnode_t *p, const int depth[3], size_t elsize)
{
	int64_t big[3];
	largest_dims(p, depth, big);
	return (uint64_t)elsize * (uint64_t)big[0] * (uint64_t)big[1] * (uint64_t)big[2];
}

/* The sum of f over the distinct haloed lengths of an axis's blocks (as
 * the executor's overlap_region cuts them): f(n) = n, or n / 2 + 1 for the
 * last axis, whose spectrum is half. -1 when out of memory. */
static int64_t haloed_lengths_sum(const struct halo_axis *a, int depth, int boundary, int half)
{
	int64_t *len = malloc((size_t)(a->nblocks > 0 ? a->nblocks : 1) * sizeof *len), sum = 0;
	if (!len)
		return -1;
	int n = 0;
	for (int64_t k = 0; k < a->nblocks; k++) {
		int64_t lo = a->start[k] - depth, hi = a->start[k + 1] + depth;
		if (boundary == HALO_BOUNDARY_NONE) {
			lo = lo < 0 ? 0 : lo;
			hi = hi > a->n ? a->n : hi;
		}
		int i = 0;
		while (i < n && len[i] != hi - lo)
			i++;
		if (i == n) {
			len[n++] = hi - lo;
			sum += half ? (hi - lo) / 2 + 1 : hi - lo;
		}
	}
	free(len);
	return sum;
}

uint64_t halo_spectra_bytes(const struct halo_axis ax[3], const int depth[3], int boundary)
{
	/* One spectrum of halo_otf_floats floats per distinct shape: a sum
	 * over every combination of per-axis lengths of their product, so
	 * the product of the per-axis sums. */
	uint64_t bytes = 2 * sizeof(float);
	for (int d = 0; d < 3; d++) {
		int64_t s = haloed_lengths_sum(&ax[d], depth[d], boundary, d == 2);
		if (s < 0)
			return 0;
		bytes *= (uint64_t)s;
	}
	return bytes;
}

/* When the executor's walk reaches each chunk: the walk takes the output
 * chunks in C order (several outputs side by side, by the fraction each
 * has done), and submits all an output chunk needs before the next, so
 * a chunk of any node is needed from the first output chunk that reads it
 * (through the nodes between) to the last. Output chunk k of n falls at
 * time k * T / n, T the most chunks of an output. A node's readers are a
 * product of per-axis block ranges, so these times are sums of per-axis
 * terms: first = first0 + sum of first[d][j_d], last likewise, the
 * per-axis terms the least (most) over the readers' blocks. A node read
 * by two nodes takes the least first and the most last of each term,
 * which may only widen the span. */
struct walk_time {
	double *first[3], *last[3];
	double first0, last0;
	int set;
};

/* Input k's times as p's chunks (times wp) read it, into q, whose arrays
 * have the input's block counts. */
static void walk_time_of_input(const halo_pnode_t *p, int k, const struct walk_time *wp,
			       struct walk_time *q, int64_t *list)
{
	const halo_pnode_t *in = p->in[k];
	int mapped[3] = {0, 0, 0};
	q->first0 = wp->first0;
	q->last0 = wp->last0;
	for (int d = 0; d < 3; d++)
		for (int64_t c = 0; c < in->grid[d].nblocks; c++)
			q->first[d][c] = HUGE_VAL, q->last[d][c] = -HUGE_VAL;
	for (int od = 0; od < 3; od++) {
		int d = input_axis(p, od);
		double lo = HUGE_VAL, hi = -HUGE_VAL;
		for (int64_t jd = 0; jd < p->grid[od].nblocks; jd++) {
			double f = wp->first[od][jd], l = wp->last[od][jd];
			lo = f < lo ? f : lo;
			hi = l > hi ? l : hi;
			if (d < 0)
				continue;
			mapped[d] = 1;
			int64_t n = axis_list(p, k, d, jd, list);
			for (int64_t s = 0; s < n; s++) {
				double *qf = &q->first[d][list[s]], *ql = &q->last[d][list[s]];
				*qf = f < *qf ? f : *qf;
				*ql = l > *ql ? l : *ql;
			}
		}
		if (d < 0) { /* an axis the input lacks: every block of it reads */
			q->first0 += lo;
			q->last0 += hi;
		}
	}
	/* The reduced axis: every block is read by the same chunks. */
	for (int d = 0; d < 3; d++)
		for (int64_t c = 0; !mapped[d] && c < in->grid[d].nblocks; c++)
			q->first[d][c] = q->last[d][c] = 0;
	q->set = 1;
}

/* A node read by several: the least first and the most last of each term. */
static void walk_time_merge(struct walk_time *dst, const struct walk_time *src,
			    const halo_pnode_t *node)
{
	for (int d = 0; d < 3; d++)
		for (int64_t c = 0; c < node->grid[d].nblocks; c++) {
			if (!dst->set || src->first[d][c] < dst->first[d][c])
				dst->first[d][c] = src->first[d][c];
			if (!dst->set || src->last[d][c] > dst->last[d][c])
				dst->last[d][c] = src->last[d][c];
		}
	dst->first0 = !dst->set || src->first0 < dst->first0 ? src->first0 : dst->first0;
	dst->last0 = !dst->set || src->last0 > dst->last0 ? src->last0 : dst->last0;
	dst->set = 1;
}

/* Time t (a fraction of the walk's T steps) as a step. */
static int64_t step_of(double t, int64_t T)
{
	return t < 0 ? 0 : t >= (double)T ? T - 1 : (int64_t)t;
}

/* Bytes held from step a to step b (one output chunk's own if a == b). */
static void hold(int64_t a, int64_t b, uint64_t bytes, int64_t *held, uint64_t *excl,
		 uint64_t *shared)
{
	if (a >= b) {
		excl[b] += bytes;
	} else {
		held[a] += (int64_t)bytes;
		held[b + 1] -= (int64_t)bytes;
		*shared += bytes;
	}
}

/* tp: per axis of p, the blocks of p one output chunk may hold; tin gets
 * the same for p's input k, per its axes. */
static void input_reach(const halo_pnode_t *p, int k, const uint64_t tp[3], uint64_t tin[3],
			int64_t *list)
{
	const halo_pnode_t *in = p->in[k];
	/* Along a reduced axis one chunk reads every block. */
	for (int d = 0; d < 3; d++)
		tin[d] = p->kind == HALO_PN_REDUCE && p->expr->axis == d
			 ? (uint64_t)in->grid[d].nblocks : 1;
	for (int od = 0; od < 3; od++) {
		int d = input_axis(p, od);
		if (d < 0)
			continue;
		/* tp consecutive blocks of p read the blocks one reads and
		 * those the next ones reach further, not tp times as many:
		 * chained halos widen the region, they do not multiply it. step:
		 * the most a block's first input block lies past the one
		 * before's (not the mean: a short last block lowers that). */
		int64_t most = 0, step = 1, first = 0;
		for (int64_t jd = 0; jd < p->grid[od].nblocks; jd++) {
			int64_t n = axis_list(p, k, d, jd, list);
			most = n > most ? n : most;
			if (n > 0 && jd > 0 && list[0] - first > step)
				step = list[0] - first;
			first = n > 0 ? list[0] : first;
		}
		uint64_t nb = (uint64_t)in->grid[d].nblocks;
		uint64_t t = (tp[od] - 1) * (uint64_t)step + (uint64_t)most;
		tin[d] = t < nb ? t : nb;
	}
}

/* Node q's chunks over the walk, as its readers read them (r[0..nr),
 * each reader's times of q's chunks): a chunk needed across several
 * output chunks is held from the first to the last, by any reader (added
 * to held, a difference array over the walk, and to shared); one needed
 * by a single output chunk only while it is in flight (added to that
 * output chunk's exclusive bytes). Two outputs that walk one input in
 * different orders hold it over both walks: the readers' first and last
 * are taken per chunk, not per axis, which would stretch every chunk's. */
static void hold_chunks(const halo_pnode_t *q, const struct walk_time *r, int nr, int64_t T,
			int64_t *held, uint64_t *excl, uint64_t *shared)
{
	size_t es = halo_dtype_size((halo_dtype_t){q->expr->dtype, 0});
	int64_t c[3];
	/* Hundreds of millions of chunks take minutes: Ctrl-C stops it. */
	for (c[0] = 0; c[0] < q->grid[0].nblocks; c[0]++)
		for (c[1] = 0; c[1] < q->grid[1].nblocks && !halo_interrupted(); c[1]++)
			for (c[2] = 0; c[2] < q->grid[2].nblocks; c[2]++) {
				double f = HUGE_VAL, l = -HUGE_VAL;
				for (int k = 0; k < nr; k++) {
					double a = r[k].first0, b = r[k].last0;
					for (int d = 0; d < 3; d++) {
						a += r[k].first[d][c[d]];
						b += r[k].last[d][c[d]];
					}
					if (a > b)
						continue; /* this reader reads it in no chunk */
					f = a < f ? a : f;
					l = b > l ? b : l;
				}
				if (f > l)
					continue; /* read by no chunk */
				int64_t origin[3], dims[3], valid[3];
				halo_pnode_block(q, c, origin, dims, valid);
				hold(step_of(f, T), step_of(l, T),
				     es * (uint64_t)(dims[0] * dims[1] * dims[2]), held, excl, shared);
			}
}

/* A store that follows the walk (store->follows) and the reduction it
 * stores: each of the reduction's chunks has a float64 accumulator from
 * its column's first input chunk to its last, as the other outputs' walk
 * (times wq of its input) makes them, then a result until the store's
 * chunks that read it have all theirs. -1 when out of memory. */
static int follower_memory(const halo_pnode_t *store, const struct walk_time *wq, int64_t T,
			   int64_t *held, uint64_t *excl, uint64_t *shared)
{
	const halo_pnode_t *p = halo_pnode_projection(store), *in = p->in[0];
	int64_t most = 1, *lists[3], cnt[3], j[3];
	for (int d = 0; d < 3; d++) {
		most = in->grid[d].nblocks > most ? in->grid[d].nblocks : most;
		most = store->grid[d].nblocks > most ? store->grid[d].nblocks : most;
	}
	for (int d = 0; d < 3; d++)
		lists[d] = malloc((size_t)most * sizeof *lists[d]);
	int64_t *done = malloc((size_t)p->nchunks * sizeof *done); /* a column's last step */
	int64_t *stored = calloc((size_t)store->nchunks, sizeof *stored);
	int rc = lists[0] && lists[1] && lists[2] && done && stored ? 0 : -1;
	size_t es = halo_dtype_size((halo_dtype_t){p->expr->dtype, 0});
	for (int pass = 0; !rc && pass < 3; pass++)
		for (int64_t f = 0; f < p->nchunks && !halo_interrupted(); f++) {
			int64_t origin[3], dims[3], valid[3];
			j[0] = f / (p->grid[1].nblocks * p->grid[2].nblocks);
			j[1] = f / p->grid[2].nblocks % p->grid[1].nblocks;
			j[2] = f % p->grid[2].nblocks;
			halo_pnode_block(p, j, origin, dims, valid);
			uint64_t n = (uint64_t)(dims[0] * dims[1] * dims[2]);
			if (pass == 0) {
				halo_plan_inputs(p, 0, j, lists, cnt);
				double first = wq->first0, last = wq->last0;
				for (int d = 0; d < 3; d++) {
					double lo = HUGE_VAL, hi = -HUGE_VAL;
					for (int64_t s = 0; s < cnt[d]; s++) {
						double a = wq->first[d][lists[d][s]];
						double b = wq->last[d][lists[d][s]];
						lo = a < lo ? a : lo;
						hi = b > hi ? b : hi;
					}
					first += lo;
					last += hi;
				}
				done[f] = step_of(last, T);
				hold(step_of(first, T), done[f], 8 * n, held, excl, shared);
				continue;
			}
			/* Pass 1: each store chunk's last step; pass 2: until then. */
			halo_pnode_stored_in(store, j, lists, cnt);
			int64_t until = done[f];
			HALO_FOR_BLOCKS(lists, cnt, js) {
				int64_t *t = &stored[halo_pnode_flat(store, js)];
				*t = pass == 1 && done[f] > *t ? done[f] : *t;
				until = *t > until ? *t : until;
			}
			if (pass == 2)
				hold(done[f], until, es * n, held, excl, shared);
		}
	for (int d = 0; d < 3; d++)
		free(lists[d]);
	free(done);
	free(stored);
	return rc;
}

/* q's arrays, for node's block counts: 0, or -1 when out of memory (what
 * was allocated is q's, for walk_time_release). */
static int walk_time_alloc(struct walk_time *q, const halo_pnode_t *node)
{
	int ok = 1;
	for (int d = 0; d < 3; d++) {
		size_t nb = (size_t)node->grid[d].nblocks;
		q->first[d] = malloc(nb * sizeof **q->first);
		q->last[d] = malloc(nb * sizeof **q->last);
		ok = ok && q->first[d] && q->last[d];
	}
	return ok ? 0 : -1;
}

static void walk_time_release(struct walk_time *q)
{
	for (int d = 0; d < 3; d++) {
		free(q->first[d]);
		free(q->last[d]);
	}
}

static void walk_time_free(struct walk_time *w, int n)
{
	for (int i = 0; w && i < n; i++)
		walk_time_release(&w[i]);
	free(w);
}

void halo_pnode_tiles(const halo_pnode_t *p, int64_t tile[3])
{
	for (int d = 0; d < 3; d++) {
		tile[d] = 1;
		if (!p->gathers)
			continue;
		const struct halo_axis *in = &p->in[0]->grid[d], *out = &p->grid[d];
		int64_t a = in->start[1] - in->start[0], b = out->start[1] - out->start[0];
		tile[d] = a > b ? (a + b - 1) / b : 1;
	}
}

/* A node's chunks as each of its readers reads them (hold_chunks), kept
 * apart per path from an output, as far as READERS_MOST of them: past
 * that, the last takes the others' per axis (a longer hold than any). */
struct readers {
	struct walk_time *w;
	int n;
};
#define READERS_MOST 8

/* Adds to r the times at which p, itself read at times s, reads its input
 * k's chunks. 0, or -1 when out of memory. */
static int add_reader(const halo_pnode_t *p, int k, const struct walk_time *s, struct readers *r,
		      int64_t *list)
{
	const halo_pnode_t *in = p->in[k];
	struct walk_time q = {0}, *more = NULL;
	if (walk_time_alloc(&q, in) ||
	    (r->n < READERS_MOST && !(more = realloc(r->w, (size_t)(r->n + 1) * sizeof *more)))) {
		walk_time_release(&q);
		return -1;
	}
	walk_time_of_input(p, k, s, &q, list);
	if (more) {
		r->w = more;
		r->w[r->n++] = q;
		return 0;
	}
	walk_time_merge(&r->w[r->n - 1], &q, in);
	walk_time_release(&q);
	return 0;
}

/* halo_plan_memory's figures for the roots' present orders. */
static void work_out(halo_plan_t *plan, uint64_t *front, uint64_t *per, uint64_t *outside)
{
	*front = 0;
	*per = 0;
	*outside = 0;
	plan->gpu_work = 0;
	plan->spectra = 0;
	int64_t T = 1, most = 1;
	for (int i = 0; i < plan->n; i++) {
		const halo_pnode_t *p = plan->nodes[i];
		T = halo_pnode_walks(p) && p->nchunks > T ? p->nchunks : T;
		for (int d = 0; d < 3; d++)
			most = p->grid[d].nblocks > most ? p->grid[d].nblocks : most;
	}
	/* times: per axis, how many of a node's blocks one output chunk may
	 * hold at once, since the executor submits all an output chunk needs
	 * before the next (a node with chunks smaller than its reader's counts
	 * as many times); the per-chunk costs below count their product. */
	struct walk_time *w = calloc((size_t)plan->n, sizeof *w);
	struct readers *rd = calloc((size_t)plan->n, sizeof *rd);
	uint64_t (*times)[3] = calloc((size_t)plan->n, sizeof *times); /* per axis */
	int64_t *held = calloc((size_t)T + 1, sizeof *held), *list = malloc((size_t)most * sizeof *list);
	uint64_t *excl = calloc((size_t)T, sizeof *excl), shared = 0, spectra = 0;
	int ok = w && rd && times && held && list && excl;
	for (int i = 0; ok && i < plan->n; i++)
		ok = walk_time_alloc(&w[i], plan->nodes[i]) == 0;
	/* Readers come after their inputs: outputs first. */
	for (int i = plan->n - 1; ok && i >= 0; i--) {
		const halo_pnode_t *p = plan->nodes[i];
		const halo_expr_t *e = p->expr;
		if (halo_pnode_walks(p)) {
			/* Its visiting order (halo_pnode_tiles), per axis: a
			 * tile's place among the tiles and a chunk's in its tile
			 * (edge tiles counted whole). */
			int64_t tile[3];
			halo_pnode_tiles(p, tile);
			double scale = (double)T / (double)p->nchunks, inner = scale;
			double outer = scale * (double)(tile[0] * tile[1] * tile[2]);
			for (int k = 2; k >= 0; k--) {
				int d = p->order[k];
				for (int64_t j = 0; j < p->grid[d].nblocks; j++)
					w[i].first[d][j] = w[i].last[d][j] =
						(double)(j / tile[d]) * outer + (double)(j % tile[d]) * inner;
				inner *= (double)tile[d];
				outer *= (double)((p->grid[d].nblocks + tile[d] - 1) / tile[d]);
			}
			w[i].first0 = w[i].last0 = 0;
			w[i].set = 1;
			times[i][0] = times[i][1] = times[i][2] = 1;
		}
		if (!w[i].set)
			continue; /* no output reads it */
		/* Its readers, after it, are done. */
		if (rd[i].n)
			hold_chunks(p, rd[i].w, rd[i].n, T, held, excl, &shared);
		uint64_t bytes = 0, apart = 0, gpu = 0;
		/* Every chunk is some task's input, counted there, but a
		 * store's, which is compressed into a buffer of its size
		 * (malloc'd: outside StarPU's limit). */
		if (p->kind == HALO_PN_STORE)
			apart += largest_chunk(p, NULL, halo_dtype_size((halo_dtype_t){e->dtype, 0}));
		/* A stored chunk larger than the array, decoded whole. */
		if (p->kind == HALO_PN_SOURCE && e->reader)
			apart += halo_reader_scratch_bytes(e->reader);
		/* A walked projection's input: its chunk, until added (no
		 * walked reader counts it). */
		if (p->drives)
			bytes += largest_chunk(p, NULL, halo_dtype_size((halo_dtype_t){e->dtype, 0}));
		/* And one it assembles into (a buffer of each worker's). */
		if (p->gathers)
			apart += largest_chunk(p, NULL, halo_dtype_size(e->info.dtype));
		if (p->kind == HALO_PN_REDUCE && e->axis >= 0)
			bytes += largest_chunk(p, NULL, sizeof(double)); /* the accumulator */
		/* The haloed block and the kernel's result are StarPU's; RL's
		 * three work arrays are FFTW's (and on a GPU worker not in
		 * main memory at all). */
		if (p->kind == HALO_PN_OVERLAP) {
			uint64_t haloed = largest_chunk(p, e->depth, sizeof(float));
			bytes += 2 * haloed;
			if (e->ov == HALO_OV_RICHARDSON_LUCY) {
				apart += 3 * haloed;
				gpu = 3 * haloed;
				/* And one PSF spectrum per haloed shape, all run. */
				spectra += halo_spectra_bytes(p->grid, e->depth, e->boundary);
			}
		}
		for (int d = 0; d < 3; d++)
			times[i][d] = times[i][d] ? times[i][d] : 1;
		uint64_t t = times[i][0] * times[i][1] * times[i][2];
		*per += (bytes + apart) * t;
		*outside += apart * t;
		plan->gpu_work += gpu * t;
		/* Its inputs, read when p is: a root in its walk, another
		 * node as each of its readers reads it (not the readers' times
		 * merged per axis, which would stretch every chunk's hold). */
		int walks = halo_pnode_walks(p);
		const struct walk_time *at = walks ? &w[i] : rd[i].w;
		int nat = walks ? 1 : rd[i].n;
		for (int k = 0; ok && k < p->nin; k++) {
			const halo_pnode_t *in = p->in[k];
			struct readers *r = &rd[in->id];
			for (int s = 0; ok && s < nat; s++) {
				ok = !add_reader(p, k, &at[s], r, list);
				if (ok)
					walk_time_merge(&w[in->id], &r->w[r->n - 1], in);
			}
			uint64_t reach[3];
			input_reach(p, k, times[i], reach, list);
			for (int d = 0; d < 3; d++)
				times[in->id][d] = reach[d] > times[in->id][d] ? reach[d] : times[in->id][d];
		}
		walk_time_free(rd[i].w, rd[i].n);
		rd[i] = (struct readers){NULL, 0};
	}
	for (int i = 0; ok && i < plan->n; i++)
		if (plan->nodes[i]->follows && plan->nodes[i]->kind == HALO_PN_STORE)
			ok = !follower_memory(plan->nodes[i],
					      &w[halo_pnode_projection(plan->nodes[i])->in[0]->id], T,
					      held, excl, &shared);
	if (ok && !halo_interrupted()) { /* (else the figures are cut short anyway) */
		int64_t now = 0;
		uint64_t most_excl = 0;
		for (int64_t f = 0; f < T; f++) {
			now += held[f];
			*front = (uint64_t)now > *front ? (uint64_t)now : *front;
			most_excl = excl[f] > most_excl ? excl[f] : most_excl;
		}
		/* Each output chunk also brings, on average, its share of
		 * the shared chunks. */
		*per += most_excl + shared / (uint64_t)T;
		*front += spectra;
		plan->spectra = spectra;
	} else {
		/* No room to work it out: as if every chunk were held. */
		*front = 0;
		for (int i = 0; i < plan->n; i++) {
			const int64_t *s = plan->nodes[i]->expr->shape;
			*front += halo_dtype_size((halo_dtype_t){plan->nodes[i]->expr->dtype, 0}) *
				  (uint64_t)(s[0] * s[1] * s[2]);
		}
	}
	walk_time_free(w, plan->n);
	for (int i = 0; rd && i < plan->n; i++)
		walk_time_free(rd[i].w, rd[i].n);
	free(rd);
	free(times);
	free(held);
	free(list);
	free(excl);
	if (!*per)
		*per = 1;
}

/* The array a root walks (a sum walks its input's chunks). */
static int walked_ndim(const halo_pnode_t *p)
{
	return (p->kind == HALO_PN_REDUCE ? p->in[0]->expr : p->expr)->ndim;
}

/* Roots of ndim dimensions walk with axis a innermost (-1: C order), but
 * TIFF stores, whose pages go in order. */
static void set_orders(halo_plan_t *plan, int a, int ndim)
{
	for (int i = 0; i < plan->n; i++) {
		halo_pnode_t *p = plan->nodes[i];
		if (!halo_pnode_walks(p) || walked_ndim(p) != ndim ||
		    (p->kind == HALO_PN_STORE && p->expr->wopts.format == HALO_FMT_TIFF))
			continue;
		for (int d = 0, k = 0; d < 3; d++)
			if (d != a || a < 0)
				p->order[k++] = d;
		if (a >= 0)
			p->order[2] = a;
	}
}

void halo_plan_memory(halo_plan_t *plan, uint64_t *front, uint64_t *per, uint64_t *outside)
{
	uint64_t ignored;
	outside = outside ? outside : &ignored;
	if (plan->per) {
		*front = plan->front;
		*per = plan->per;
		*outside = plan->outside;
		return;
	}
	work_out(plan, front, per, outside);
	/* Where the shared chunks matter (each pass walks every chunk of
	 * every node), the other axes innermost, per number of dimensions:
	 * the one that holds the least. */
	uint64_t gpu_work = plan->gpu_work, spectra = plan->spectra;
	for (int ndim = 3; ndim >= 2 && *front > *per && !halo_interrupted(); ndim--) {
		int best = -1, present = 0;
		for (int i = 0; i < plan->n; i++)
			present |= halo_pnode_walks(plan->nodes[i]) &&
				   walked_ndim(plan->nodes[i]) == ndim;
		for (int a = 3 - ndim; present && a < 2; a++) {
			uint64_t f, p, o;
			set_orders(plan, a, ndim);
			work_out(plan, &f, &p, &o);
			if (f + p < *front + *per) {
				*front = f, *per = p, *outside = o;
				gpu_work = plan->gpu_work, spectra = plan->spectra;
				best = a;
			} else {
				set_orders(plan, best, ndim);
			}
		}
	}
	plan->gpu_work = gpu_work;
	plan->spectra = spectra;
	plan->front = *front;
	plan->per = *per;
	plan->outside = *outside;
}

uint64_t halo_plan_gpu_work(halo_plan_t *plan)
{
	uint64_t front, per;
	halo_plan_memory(plan, &front, &per, NULL);
	return plan->gpu_work < per ? plan->gpu_work : 0;
}
