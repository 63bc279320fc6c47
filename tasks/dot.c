/* Graphviz output of a graph (halo graph dot): the expression graph, as
 * dask.visualize draws a high-level graph, or every chunk of the plan with
 * the chunks it reads. */
#include "config.h"
#include "tasks/plan.h"

#include <stdlib.h>

static void shape_str(const halo_expr_t *e, char *buf, size_t len)
{
	if (e->ndim == 0) {
		snprintf(buf, len, "scalar");
		return;
	}
	int n = 0;
	for (int d = 3 - e->ndim; d < 3; d++)
		n += snprintf(buf + n, len - (size_t)n, "%s%lld", n ? "x" : "", (long long)e->shape[d]);
}

/* The first chunk's shape; "(irregular)" after it where the others, but
 * the last along an axis, are not all alike (merged or unified chunks). */
static void chunk_str(const halo_expr_t *e, char *buf, size_t len)
{
	int n = 0, irregular = 0;
	for (int d = 3 - e->ndim; d < 3; d++) {
		const struct halo_axis *a = &e->grid[d];
		int64_t first = a->start[1] - a->start[0];
		for (int64_t i = 1; i + 1 < a->nblocks; i++)
			irregular |= a->start[i + 1] - a->start[i] != first;
		n += snprintf(buf + n, len - (size_t)n, "%s%lld", n ? "x" : "", (long long)first);
	}
	if (irregular)
		snprintf(buf + n, len - (size_t)n, " (irregular)");
}

/* A chunk's index as the array's dimensions count it: "(3,2,2)", "(0,3)";
 * a scalar's partial sums by their input's chunk, in 3D. */
static const char *index_str(const halo_pnode_t *q, const int64_t j[3], char *buf, size_t len)
{
	int n = snprintf(buf, len, "("), nd = q->expr->ndim ? q->expr->ndim : 3;
	for (int d = 3 - nd; d < 3; d++)
		n += snprintf(buf + n, len - (size_t)n, "%s%lld", d > 3 - nd ? "," : "", (long long)j[d]);
	snprintf(buf + n, len - (size_t)n, ")");
	return buf;
}

static int expr_graph(const halo_graph_t *g, FILE *f)
{
	fprintf(f, "digraph halo {\n  rankdir=TB;\n  node [shape=box, fontname=\"Helvetica\"];\n");
	for (int i = 0; i < halo_graph_count(g); i++) {
		const halo_expr_t *e = halo_graph_node(g, i);
		char shape[64], chunks[80] = "";
		shape_str(e, shape, sizeof shape);
		if (e->ndim)
			chunk_str(e, chunks, sizeof chunks);
		fprintf(f, "  e%d [label=\"%s\\n%s", e->id, e->name, halo_op_name(e));
		if (e->op == HALO_OP_MAP_BLOCKS)
			fprintf(f, " %s", halo_ew_name(e->ew));
		if (e->op == HALO_OP_MAP_OVERLAP)
			fprintf(f, " %s", e->ov == HALO_OV_RICHARDSON_LUCY ? "richardson_lucy" : "uniform");
		fprintf(f, "\\n%s %s", shape, halo_dtype_name((halo_dtype_t){e->dtype, 0}));
		if (e->ndim)
			fprintf(f, "\\nchunks %s", chunks);
		fprintf(f, "\"%s];\n", e->live ? "" : ", style=dashed, color=gray");
		for (int k = 0; k < e->nin; k++)
			fprintf(f, "  e%d -> e%d;\n", e->in[k]->id, e->id);
	}
	fprintf(f, "}\n");
	return 0;
}

static int task_graph(const halo_plan_t *p, FILE *f)
{
	int64_t most = 1;
	for (int i = 0; i < p->n; i++)
		for (int d = 0; d < 3; d++)
			most = p->nodes[i]->grid[d].nblocks > most ? p->nodes[i]->grid[d].nblocks : most;
	int64_t *lists[3];
	for (int d = 0; d < 3; d++)
		lists[d] = malloc((size_t)most * sizeof *lists[d]);
	if (!lists[0] || !lists[1] || !lists[2]) {
		for (int d = 0; d < 3; d++)
			free(lists[d]);
		return -1;
	}
	fprintf(f, "digraph halo_tasks {\n  rankdir=TB;\n  node [shape=box, fontname=\"Helvetica\", "
		   "fontsize=10];\n");
	for (int i = 0; i < p->n; i++) {
		const halo_pnode_t *q = p->nodes[i];
		fprintf(f, "  subgraph cluster_%d {\n    label=\"%s (%s)\";\n", q->id, q->label,
			halo_pn_kind_name(q->kind));
		int64_t j[3];
		char idx[80];
		for (j[0] = 0; j[0] < q->grid[0].nblocks; j[0]++)
			for (j[1] = 0; j[1] < q->grid[1].nblocks; j[1]++)
				for (j[2] = 0; j[2] < q->grid[2].nblocks; j[2]++)
					fprintf(f, "    p%d_%lld [label=\"%s %s\"];\n", q->id,
						(long long)halo_pnode_flat(q, j), halo_pn_kind_name(q->kind),
						index_str(q, j, idx, sizeof idx));
		fprintf(f, "  }\n");
		for (int k = 0; k < q->nin; k++)
			for (j[0] = 0; j[0] < q->grid[0].nblocks; j[0]++)
				for (j[1] = 0; j[1] < q->grid[1].nblocks; j[1]++)
					for (j[2] = 0; j[2] < q->grid[2].nblocks; j[2]++) {
						int64_t cnt[3], s[3];
						halo_plan_inputs(q, k, j, lists, cnt);
						for (s[0] = 0; s[0] < cnt[0]; s[0]++)
							for (s[1] = 0; s[1] < cnt[1]; s[1]++)
								for (s[2] = 0; s[2] < cnt[2]; s[2]++) {
									int64_t c[3] = {lists[0][s[0]], lists[1][s[1]],
											lists[2][s[2]]};
									fprintf(f, "  p%d_%lld -> p%d_%lld;\n",
										q->in[k]->id,
										(long long)halo_pnode_flat(q->in[k], c),
										q->id, (long long)halo_pnode_flat(q, j));
								}
					}
	}
	fprintf(f, "}\n");
	for (int d = 0; d < 3; d++)
		free(lists[d]);
	return 0;
}

int halo_graph_dot(const halo_graph_t *g, const halo_plan_t *p, int tasks, FILE *f,
		   halo_error_t *err)
{
	if ((tasks ? task_graph(p, f) : expr_graph(g, f)) < 0)
		return halo_error_set(err, HALO_ENOMEM, "out of memory writing the graph");
	return HALO_OK;
}
