/* Lowering: an expression graph becomes a plan, the chunk-level task graph
 * in implicit form. Steps no output needs are culled; chains of
 * elementwise steps (astype, map_blocks) whose intermediates have one
 * consumer are fused into one plan node, one task per chunk. Each plan
 * node's tasks are one per chunk of its grid, and which chunks of its
 * inputs a task reads is computed on demand (a product of per-axis block
 * lists), so a graph of millions of tasks takes no memory beyond a use
 * count per chunk: the runtime walks the plan region by region and
 * registers each chunk when first needed, releasing it after its last
 * reader. */
#ifndef HALO_TASKS_PLAN_H
#define HALO_TASKS_PLAN_H

#include <stdint.h>
#include <stdio.h>

#include "codelets/elementwise.h"
#include "tasks/expr.h"

typedef enum halo_pn_kind {
	HALO_PN_SOURCE,  /* read a stored chunk (or copy from a buffer) */
	HALO_PN_FUSED,   /* elementwise program over same-grid chunks */
	HALO_PN_GATHER,  /* rechunk: assemble a chunk from those it overlaps */
	HALO_PN_OVERLAP, /* map_overlap: assemble the haloed chunk, run the kernel */
	HALO_PN_REDUCE,  /* to a scalar (a partial per input chunk) or along an axis */
	HALO_PN_STORE,   /* write a chunk */
} halo_pn_kind_t;

typedef struct halo_pnode halo_pnode_t;
struct halo_pnode {
	int id;
	halo_pn_kind_t kind;
	halo_expr_t *expr;        /* what it computes (a fused chain's last step) */
	halo_pnode_t *in[HALO_EW_MAXIN];
	int nin;
	char label[160];          /* step names; "a+b+c" for a fused chain */
	struct halo_ew_prog prog; /* FUSED; REDUCE to a scalar: a chain run inside (nops > 0) */
	const struct halo_axis *grid; /* its tasks' grid: expr's, the input's for a
				       * scalar, or thin */
	struct halo_axis thin[3]; /* its own grid of thinner z-chunks, if any */
	int64_t nchunks;
	int padded[3];            /* regular grid: buffers are whole chunks */
	int32_t *uses;            /* per chunk: tasks that read it */
	int root;                 /* an output: store or scalar reduction */
	int gathers;              /* STORE: assembles each chunk from its input's
				   * that it overlaps (a rechunk only it read) */
	int order[3];             /* roots: the walk's axes, outermost first
				   * (C order 0, 1, 2; see halo_plan_memory) */
	int follows;              /* a reduction along an axis and its store that
				   * other outputs' walk drives (halo_plan_build) */
	int drives;               /* walked, in order, for the projections that
				   * follow it where no output else makes it */
};

typedef struct halo_plan {
	halo_pnode_t **nodes;     /* inputs before consumers */
	int n;
	uint64_t front, per, outside; /* halo_plan_memory's, once worked out (per > 0) */
	uint64_t gpu_work;            /* halo_plan_gpu_work's, with them */
	uint64_t spectra;             /* RL's PSF spectra, in front */
} halo_plan_t;

int halo_plan_build(halo_graph_t *g, halo_plan_t **out, halo_error_t *err);
void halo_plan_free(halo_plan_t *p);

/* Whether the executor walks p's chunks in order: an output that follows
 * no other's walk, or a projection's input walked for it. */
static inline int halo_pnode_walks(const halo_pnode_t *p)
{
	return (p->root && !p->follows) || p->drives;
}

static inline int64_t halo_pnode_flat(const halo_pnode_t *p, const int64_t j[3])
{
	return (j[0] * p->grid[1].nblocks + j[1]) * p->grid[2].nblocks + j[2];
}

/* Chunk j of p (on its own grid): first voxel, buffer dims (a whole chunk
 * on regular grids, padded at the far edges) and voxels inside the array. */
void halo_pnode_block(const halo_pnode_t *p, const int64_t j[3], int64_t origin[3],
		      int64_t dims[3], int64_t valid[3]);

/* The chunks of input k that p's task for chunk j reads: per input axis,
 * cnt[d] block indices in lists[d] (each with room for that axis' blocks). */
void halo_plan_inputs(const halo_pnode_t *p, int k, const int64_t j[3], int64_t *lists[3],
		      int64_t cnt[3]);

/* The chunk of p, a reduction along an axis, that its input's chunk c
 * falls in. */
void halo_pnode_column(const halo_pnode_t *p, const int64_t c[3], int64_t j[3]);

/* Iterates the blocks c[3] of per-axis lists (halo_plan_inputs'). */
#define HALO_FOR_BLOCKS(lists, cnt, c)                                                      \
	for (int64_t s0 = 0; s0 < cnt[0]; s0++)                                             \
		for (int64_t s1 = 0; s1 < cnt[1]; s1++)                                     \
			for (int64_t s2 = 0, c[3]; s2 < cnt[2] &&                           \
			     (c[0] = lists[0][s0], c[1] = lists[1][s1], c[2] = lists[2][s2], 1); s2++)

/* A store that follows (p->follows): the reduction it stores, directly
 * or through a rechunk; the chunks of the store that chunk j of that
 * reduction goes into (lists as halo_plan_inputs'); and how many of the
 * reduction's chunks the store's chunk js needs. */
halo_pnode_t *halo_pnode_projection(const halo_pnode_t *store);
void halo_pnode_stored_in(const halo_pnode_t *store, const int64_t j[3], int64_t *lists[3],
			  int64_t cnt[3]);
int64_t halo_pnode_stored_needs(const halo_pnode_t *store, const int64_t js[3], int64_t *lists[3]);

/* A root's chunks are visited in tiles of tile[0] x tile[1] x tile[2]
 * (p->order within a tile, tiles in p->order): a store that rechunks, one
 * input chunk's worth ((1,2,2) of 128^3 from 64x256x256), so that an
 * input chunk's readers run together and it is freed after them; in C
 * order a row of input chunks stayed resident until the next row of
 * output chunks (a 2 GiB rechunk of a 128x1024x8192 volume peaked at 555
 * MB of RSS, 81 MB in tiles, in the same time). Else 1 x 1 x 1.
 * TIFF stores do not gather, and write in C order. */
void halo_pnode_tiles(const halo_pnode_t *p, int64_t tile[3]);

/* Tasks of p for chunk j (OVERLAP: gather and kernel; REDUCE along an
 * axis: one per chunk along it and a finish). */
int64_t halo_pnode_tasks_per_chunk(const halo_pnode_t *p);

typedef struct halo_plan_stats {
	int64_t tasks, edges, chunks;
	uint64_t bytes;           /* buffer bytes of every chunk of every node */
	int64_t tasks_by_kind[HALO_PN_STORE + 1];
} halo_plan_stats_t;

void halo_plan_stats(const halo_plan_t *p, halo_plan_stats_t *st);

/* Memory the walk needs, from the chunk grids: front, the chunks that
 * several output chunks need (halos, a rechunk's wide input chunks, the
 * chunks along a reduced axis), the most held at once from the first
 * output chunk that needs one, through the nodes between, to the last,
 * whatever the budget; and per, what each output chunk in flight adds
 * (the chunks only it needs, its share of the shared ones, haloed blocks
 * and kernel work space, accumulators, the store's buffer), each node's
 * own costs as many times as one output chunk needs its chunks. StarPU,
 * limited to the budget, waits forever for memory it lacks. Worked out
 * once per plan (each try walks every chunk of every node). outside (may be
 * NULL): the part of per that StarPU does not allocate (kernels' work
 * arrays, the store's buffer), which its limit does not bound.
 * It also chooses the roots' visiting order (p->order), per number of
 * dimensions: C order, or another axis innermost where that holds less.
 * A projection that walks (none other to follow, p->follows unset)
 * visits its input column by column, that axis innermost; shallow, wide
 * input chunks rechunked to cubes hold less with z innermost too. Those
 * that follow hold an accumulator per unfinished column, whichever order
 * the walk takes (z innermost finishes columns one at a time). */
void halo_plan_memory(halo_plan_t *p, uint64_t *front, uint64_t *per, uint64_t *outside);
/* The bytes of the PSF spectra RL keeps for a grid: one per distinct
 * haloed shape, up to 27 with boundary none. halo_plan_memory counts them
 * in front. 0 when out of memory. */
uint64_t halo_spectra_bytes(const struct halo_axis ax[3], const int depth[3], int boundary);
/* The part of halo_plan_memory's per that a GPU holds instead of the host
 * when it runs the kernels: their work arrays (RL's three). */
uint64_t halo_plan_gpu_work(halo_plan_t *p);
const char *halo_pn_kind_name(halo_pn_kind_t k);

/* Graphviz DOT: the expression graph, or (tasks) every chunk task with its
 * chunk coordinates and edges. */
int halo_graph_dot(const halo_graph_t *g, const halo_plan_t *p, int tasks, FILE *f,
		   halo_error_t *err);

#endif
