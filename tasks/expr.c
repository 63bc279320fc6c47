/* Array expressions (see expr.h): building and checking nodes, and numpy's
 * element type rules. */
#include "config.h"
#include "tasks/expr.h"
#include "codelets/gather.h"
#include "io/zarr.h"
#include "runtime/deconvolve.h"
#include "util/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct halo_graph {
	halo_expr_t **nodes;
	int n, cap;
};

halo_graph_t *halo_graph_new(void)
{
	return calloc(1, sizeof(halo_graph_t));
}

void halo_graph_free(halo_graph_t *g)
{
	if (!g)
		return;
	for (int i = 0; i < g->n; i++) {
		halo_expr_t *e = g->nodes[i];
		halo_reader_close(e->reader);
		free(e->psf);
		free(e->psf_path);
		free(e->path);
		for (int d = 0; d < 3; d++)
			halo_axis_free(&e->grid[d]);
		free(e);
	}
	free(g->nodes);
	free(g);
}

int halo_graph_count(const halo_graph_t *g)
{
	return g->n;
}

halo_expr_t *halo_graph_node(const halo_graph_t *g, int i)
{
	return g->nodes[i];
}

void halo_expr_set_name(halo_expr_t *e, const char *name)
{
	if (name && *name) {
		snprintf(e->name, sizeof e->name, "%s", name);
		e->named = 1;
	}
}

const char *halo_expr_step(const halo_expr_t *e)
{
	return e->named ? e->name : NULL;
}

const char *halo_op_name(const halo_expr_t *e)
{
	switch (e->op) {
	case HALO_OP_SOURCE:
		return e->buffer ? "from_buffer"
		       : halo_reader_format(e->reader) == HALO_FMT_TIFF ? "from_tiff" : "from_zarr";
	case HALO_OP_RECHUNK: return "rechunk";
	case HALO_OP_ASTYPE: return "astype";
	case HALO_OP_MAP_BLOCKS: return "map_blocks";
	case HALO_OP_MAP_OVERLAP: return "map_overlap";
	case HALO_OP_REDUCE: return halo_reduce_name(e->red);
	case HALO_OP_STORE: return e->wopts.format == HALO_FMT_TIFF ? "to_tiff" : "to_zarr";
	}
	return "?";
}

static halo_expr_t *node_add(halo_graph_t *g, halo_op_t op, halo_expr_t *a, halo_expr_t *b,
			     halo_error_t *err)
{
	if (g->n == g->cap) {
		int cap = g->cap ? 2 * g->cap : 16;
		halo_expr_t **nodes = realloc(g->nodes, (size_t)cap * sizeof *nodes);
		if (!nodes) {
			halo_error_set(err, HALO_ENOMEM, "out of memory building the graph");
			return NULL;
		}
		g->nodes = nodes;
		g->cap = cap;
	}
	halo_expr_t *e = calloc(1, sizeof *e);
	if (!e) {
		halo_error_set(err, HALO_ENOMEM, "out of memory building the graph");
		return NULL;
	}
	e->id = g->n;
	e->op = op;
	e->axis = -1;
	e->in[0] = a;
	e->in[1] = b;
	e->nin = b ? 2 : a ? 1 : 0;
	for (int i = 0; i < e->nin; i++)
		e->in[i]->consumers++;
	if (a) {
		e->ndim = a->ndim;
		memcpy(e->shape, a->shape, sizeof e->shape);
		e->dtype = a->dtype;
		e->space = a->space;
		e->mixed = a->mixed;
	}
	if (b) {
		const struct halo_space *x = &e->space, *y = &b->space;
		if (!x->known)
			e->space = *y;
		else if (y->known && !e->mixed &&
			 (memcmp(x->voxel, y->voxel, sizeof x->voxel) || strcmp(x->unit, y->unit)))
			e->mixed = e;
		e->mixed = e->mixed ? e->mixed : b->mixed;
	}
	g->nodes[g->n++] = e;
	return e;
}

static int grid_copy(halo_expr_t *e, const halo_expr_t *a, halo_error_t *err)
{
	for (int d = 0; d < 3; d++)
		if (halo_axis_copy(&e->grid[d], &a->grid[d]))
			return halo_error_set(err, HALO_ENOMEM, "out of memory building the graph");
	return HALO_OK;
}

/* The walk keeps a handle and a use count per chunk: as for a Zarr source,
 * more chunks than that mean chunks too small to be worth a task each. */
static int chunk_count_check(double count, const char *what, halo_error_t *err)
{
	if (count <= (double)HALO_MAX_CHUNKS)
		return HALO_OK;
	return halo_error_set(err, HALO_EINVAL, "%.3g chunks%s, more than halo's limit of %lld; the "
			      "chunks are too small for the shape", count, what,
			      (long long)HALO_MAX_CHUNKS);
}

static int grid_regular(halo_expr_t *e, const int64_t chunks[3], halo_error_t *err)
{
	char what[96];
	double count = 1;
	for (int d = 0; d < 3; d++)
		count *= ceil((double)e->shape[d] / (double)chunks[d]);
	snprintf(what, sizeof what, " of %lldx%lldx%lld", (long long)chunks[0], (long long)chunks[1],
		 (long long)chunks[2]);
	if (chunk_count_check(count, what, err))
		return err->code;
	for (int d = 0; d < 3; d++)
		if (halo_axis_regular(&e->grid[d], e->shape[d], chunks[d]))
			return halo_error_set(err, HALO_ENOMEM, "out of memory building the graph");
	return HALO_OK;
}

/* want_tiff: 1 TIFF only, 0 Zarr only. */
static int source_from_reader(halo_graph_t *g, const char *path, const halo_select_t *sel,
			      int want_tiff, halo_expr_t **out, halo_error_t *err)
{
	halo_reader_t *r;
	int rc = halo_reader_open_at(path, sel, &r, err);
	if (rc)
		return rc;
	int is_tiff = halo_reader_format(r) == HALO_FMT_TIFF;
	if (is_tiff != want_tiff) {
		halo_reader_close(r);
		return halo_error_set(err, HALO_EINVAL, "%s: is %s; use %s", path,
				      is_tiff ? "a TIFF file" : "not a TIFF file",
				      is_tiff ? "from_tiff" : "from_zarr");
	}
	return halo_from_reader(g, r, out, err);
}

int halo_from_reader(halo_graph_t *g, halo_reader_t *r, halo_expr_t **out, halo_error_t *err)
{
	halo_expr_t *e = node_add(g, HALO_OP_SOURCE, NULL, NULL, err);
	if (!e) {
		halo_reader_close(r);
		return HALO_ENOMEM;
	}
	e->reader = r;
	e->info = *halo_reader_info(r);
	e->space.known = 1;
	memcpy(e->space.voxel, e->info.voxel, sizeof e->space.voxel);
	memcpy(e->space.origin, e->info.origin, sizeof e->space.origin);
	memcpy(e->space.unit, e->info.unit, sizeof e->space.unit);
	e->ndim = e->info.ndim;
	memcpy(e->shape, e->info.shape, sizeof e->shape);
	e->dtype = e->info.dtype.kind;
	*out = e;
	return grid_regular(e, e->info.chunks, err);
}

int halo_from_zarr(halo_graph_t *g, const char *path, const halo_select_t *sel,
		   halo_expr_t **out, halo_error_t *err)
{
	return source_from_reader(g, path, sel, 0, out, err);
}

int halo_from_tiff(halo_graph_t *g, const char *path, const halo_select_t *sel,
		   halo_expr_t **out, halo_error_t *err)
{
	return source_from_reader(g, path, sel, 1, out, err);
}

/* ndim user values (leading axes first) into 3 internal ones. */
static void to3(int ndim, const int64_t *v, int64_t fill, int64_t out[3])
{
	for (int d = 0; d < 3; d++)
		out[d] = d < 3 - ndim ? fill : v[d - (3 - ndim)];
}

int halo_from_buffer(halo_graph_t *g, const void *data, halo_dtype_kind_t dtype, int ndim,
		     const int64_t *shape, const int64_t *chunks, halo_expr_t **out,
		     halo_error_t *err)
{
	if (ndim < 1 || ndim > 3)
		return halo_error_set(err, HALO_EINVAL, "from_buffer: %d dimensions (1 to 3)", ndim);
	int64_t s[3], c[3];
	to3(ndim, shape, 1, s);
	to3(ndim, chunks, 1, c);
	for (int d = 0; d < 3; d++)
		if (s[d] < 1 || c[d] < 1)
			return halo_error_set(err, HALO_EINVAL, "from_buffer: shape and chunks must be >= 1");
	halo_expr_t *e = node_add(g, HALO_OP_SOURCE, NULL, NULL, err);
	if (!e)
		return HALO_ENOMEM;
	e->buffer = data;
	e->ndim = ndim;
	e->dtype = dtype;
	memcpy(e->shape, s, sizeof s);
	e->info = (halo_volume_info_t){.ndim = ndim, .dtype = {dtype, 0}, .voxel = {1, 1, 1}};
	memcpy(e->info.shape, s, sizeof s);
	memcpy(e->info.chunks, c, sizeof c);
	*out = e;
	return grid_regular(e, c, err);
}

/* a itself when its blocks are grid's, else a rechunk of a to grid (a
 * copy of it: irregular blocks, as map_overlap's merge and unified
 * chunks give). */
static int rechunk_to(halo_graph_t *g, halo_expr_t *a, const struct halo_axis grid[3],
		      halo_expr_t **out, halo_error_t *err)
{
	int same = 1;
	for (int d = 0; d < 3; d++)
		same &= halo_axis_equal(&grid[d], &a->grid[d]);
	*out = a;
	if (same)
		return HALO_OK;
	if (chunk_count_check((double)grid[0].nblocks * (double)grid[1].nblocks *
			      (double)grid[2].nblocks, " (the inputs' common blocks)", err))
		return err->code;
	halo_expr_t *r = node_add(g, HALO_OP_RECHUNK, a, NULL, err);
	if (!r)
		return HALO_ENOMEM;
	*out = r;
	for (int d = 0; d < 3; d++)
		if (halo_axis_copy(&r->grid[d], &grid[d]))
			return halo_error_set(err, HALO_ENOMEM, "out of memory building the graph");
	return HALO_OK;
}

/* A full reduction's scalar is a result to print, not an array, and a
 * store writes a file and holds none (its chunks were never computed into
 * data a step can read): no step takes either as input. */
static int arrays_only(const halo_expr_t *a, const halo_expr_t *b, const char *what,
		       halo_error_t *err)
{
	const halo_expr_t *in[2] = {a, b};
	for (int i = 0; i < 2; i++) {
		if (!in[i])
			continue;
		const char *name = in[i]->name[0] ? in[i]->name : halo_op_name(in[i]);
		if (in[i]->ndim == 0)
			return halo_error_set(err, HALO_EINVAL, "%s: its input \"%s\" is a scalar (a "
					      "reduction over every axis), not an array", what, name);
		if (in[i]->op == HALO_OP_STORE)
			return halo_error_set(err, HALO_EINVAL, "%s: its input \"%s\" writes %s and "
					      "gives no array; read that step's input instead", what,
					      name, in[i]->path);
	}
	return HALO_OK;
}

int halo_rechunk(halo_graph_t *g, halo_expr_t *a, const int64_t *chunks, halo_expr_t **out,
		 halo_error_t *err)
{
	if (arrays_only(a, NULL, "rechunk", err))
		return err->code;
	int64_t c[3];
	to3(a->ndim, chunks, 1, c);
	for (int d = 0; d < 3; d++) {
		if (c[d] == -1) /* as dask: the whole axis */
			c[d] = a->shape[d];
		if (c[d] < 1)
			return halo_error_set(err, HALO_EINVAL, "chunks must be >= 1 (or -1: the whole axis)");
		if (c[d] > a->shape[d])
			c[d] = a->shape[d];
	}
	/* StarPU's blocks index a plane with 32 bits (a Zarr source's chunks
	 * stay within blosc's 2 GiB anyway). */
	if ((double)c[1] * (double)c[2] > (double)UINT32_MAX)
		return halo_error_set(err, HALO_EINVAL, "rechunk: chunks of %lldx%lld voxels per plane, "
				      "more than 2^32, which a chunk task cannot address",
				      (long long)c[1], (long long)c[2]);
	halo_expr_t *e = node_add(g, HALO_OP_RECHUNK, a, NULL, err);
	if (!e)
		return HALO_ENOMEM;
	*out = e;
	return grid_regular(e, c, err);
}

int halo_astype(halo_graph_t *g, halo_expr_t *a, halo_dtype_kind_t dtype, halo_expr_t **out,
		halo_error_t *err)
{
	if (arrays_only(a, NULL, "astype", err))
		return err->code;
	halo_expr_t *e = node_add(g, HALO_OP_ASTYPE, a, NULL, err);
	if (!e)
		return HALO_ENOMEM;
	e->dtype = dtype;
	*out = e;
	return grid_copy(e, a, err);
}

/* numpy.result_type for two arrays of halo's types. */
int halo_dtype_promote(halo_dtype_kind_t a, halo_dtype_kind_t b)
{
	if (a == b)
		return a;
	int fa = !halo_dtype_kind_is_int(a), fb = !halo_dtype_kind_is_int(b);
	if (fa && fb)
		return HALO_F8;
	if (fa || fb) {
		halo_dtype_kind_t f = fa ? a : b, i = fa ? b : a;
		/* float32 holds 16-bit integers exactly; wider ones need float64. */
		return f == HALO_F8 || halo_dtype_kind_size(i) >= 4 ? HALO_F8 : HALO_F4;
	}
	static const halo_dtype_kind_t u[] = {[1] = HALO_U1, [2] = HALO_U2, [4] = HALO_U4, [8] = HALO_U8};
	static const halo_dtype_kind_t i[] = {[1] = HALO_I1, [2] = HALO_I2, [4] = HALO_I4, [8] = HALO_I8};
	int sa = halo_dtype_kind_is_signed(a), sb = halo_dtype_kind_is_signed(b);
	size_t na = halo_dtype_kind_size(a), nb = halo_dtype_kind_size(b);
	if (sa == sb)
		return (sa ? i : u)[na > nb ? na : nb];
	/* Mixed signs: a signed type wider than the unsigned one, else the
	 * next size up; nothing holds both uint64 and a signed type. */
	size_t nu = sa ? nb : na, ni = sa ? na : nb;
	if (ni > nu)
		return i[ni];
	return nu == 8 ? HALO_F8 : i[2 * nu];
}

/* A JSON integer's value (within int64, so within +-2^63 as a double). */
static int integral(double v)
{
	return fabs(v) <= 9223372036854775808.0 && v == floor(v);
}

static int fits(double v, halo_dtype_kind_t k)
{
	/* uint64's: the last double below 2^64; int64's: 2^63, which is what
	 * JSON's integers up to INT64_MAX read as (the kernel clamps it) */
	static const double lo[HALO_DTYPE_COUNT] = {
		[HALO_I1] = -128, [HALO_I2] = -32768, [HALO_I4] = -2147483648.0,
		[HALO_I8] = -9223372036854775808.0};
	static const double hi[HALO_DTYPE_COUNT] = {
		[HALO_U1] = 255, [HALO_U2] = 65535, [HALO_U4] = 4294967295.0,
		[HALO_U8] = 18446744073709549568.0, [HALO_I1] = 127, [HALO_I2] = 32767,
		[HALO_I4] = 2147483647.0, [HALO_I8] = 9223372036854775808.0};
	return v >= lo[k] && v <= hi[k];
}

/* The type numpy 1.x gives an integer Python scalar beside an integer
 * array of kind k: the smallest that holds it, signed beside a signed
 * array or when negative (an integral bound, so within 64 bits). */
static int scalar_type(double v, halo_dtype_kind_t k)
{
	int sign = v < 0 || halo_dtype_kind_is_signed(k);
	static const halo_dtype_kind_t u[] = {HALO_U1, HALO_U2, HALO_U4, HALO_U8};
	static const halo_dtype_kind_t i[] = {HALO_I1, HALO_I2, HALO_I4, HALO_I8};
	int n = 0;
	while (n < 3 && !fits(v, sign ? i[n] : u[n]))
		n++;
	return sign ? i[n] : u[n];
}

/* numpy 1.x's min_scalar_type of a Python float: float32 strictly
 * within +-3.4e38 (its test, a little inside float32's range), else
 * float64. */
static int float_scalar_type(double v)
{
	return fabs(v) < 3.4e38 || !isfinite(v) ? HALO_F4 : HALO_F8;
}

int halo_ew_result(halo_ew_t fn, halo_dtype_kind_t a, halo_dtype_kind_t b, const double p[2],
		   int real)
{
	switch (fn) {
	case HALO_EW_SCALE:
		/* A Python float scalar keeps a float array's type, unless
		 * numpy's cut takes it for float64 (float_scalar_type), and turns
		 * an integer array into float64. */
		if (halo_dtype_kind_is_int(a) || float_scalar_type(p[0]) == HALO_F8 || float_scalar_type(p[1]) == HALO_F8)
			return HALO_F8;
		return a;
	case HALO_EW_CLIP: {
		/* numpy 1.x value-based casting: a bound of a higher kind than
		 * the array (a float beside integers) takes its default type,
		 * float64; otherwise each bound counts as the narrowest type
		 * holding its value. */
		int floats = (real & 3) || !integral(p[0]) || !integral(p[1]);
		if (halo_dtype_kind_is_int(a) && floats)
			return HALO_F8;
		int t = a;
		for (int i = 0; i < 2; i++) {
			int m;
			if ((real >> i & 1) || !integral(p[i]))
				m = float_scalar_type(p[i]);
			else if (halo_dtype_kind_is_int(a) && fits(p[i], (halo_dtype_kind_t)t))
				continue;
			else /* signed beside a signed array, or when negative */
				m = scalar_type(p[i], halo_dtype_kind_is_int(a) ? (halo_dtype_kind_t)t : HALO_U1);
			t = halo_dtype_promote((halo_dtype_kind_t)t, (halo_dtype_kind_t)m);
		}
		return t;
	}
	case HALO_EW_ABS:
		return a;
	case HALO_EW_SQRT:
	case HALO_EW_LOG1P:
		/* numpy picks the smallest float loop holding the integers; halo's
		 * kernels do not compute in float16, so 8-bit inputs give float32. */
		if (!halo_dtype_kind_is_int(a))
			return a;
		return halo_dtype_kind_size(a) >= 4 ? HALO_F8 : HALO_F4;
	case HALO_EW_DIV: {
		int t = halo_dtype_promote(a, b);
		return halo_dtype_kind_is_int((halo_dtype_kind_t)t) ? HALO_F8 : t;
	}
	default:
		return halo_dtype_promote(a, b);
	}
}

static int grids_equal(const halo_expr_t *a, const halo_expr_t *b)
{
	for (int d = 0; d < 3; d++)
		if (!halo_axis_equal(&a->grid[d], &b->grid[d]))
			return 0;
	return 1;
}

int halo_map_blocks(halo_graph_t *g, halo_ew_t fn, halo_expr_t *a, halo_expr_t *b,
		    const double p[2], int real, halo_expr_t **out, halo_error_t *err)
{
	if (arrays_only(a, b, halo_ew_name(fn), err))
		return err->code;
	int arity = halo_ew_arity(fn);
	if ((arity == 2) != (b != NULL))
		return halo_error_set(err, HALO_EINVAL, "kernel %s takes %d array%s", halo_ew_name(fn),
				      arity, arity == 2 ? "s" : "");
	if (b && memcmp(a->shape, b->shape, sizeof a->shape) != 0) {
		char sa[72], sb[72];
		return halo_error_set(err, HALO_EINVAL, "kernel %s: shapes differ (%s and %s)",
				      halo_ew_name(fn), halo__dims(a->shape, a->ndim, sa, sizeof sa),
				      halo__dims(b->shape, b->ndim, sb, sizeof sb));
	}
	/* numpy computes float16 in float32, rounding after every step, and
	 * gives bool arithmetic its own rules (+ is or, - an error): halo
	 * stores both, and computes neither. */
	const halo_expr_t *in[2] = {a, b};
	for (int i = 0; i < 2 && in[i]; i++)
		if (in[i]->dtype == HALO_F2 || in[i]->dtype == HALO_B1)
			return halo_error_set(err, HALO_EUNSUPPORTED,
					      "kernel %s of %s: halo's kernels take no float16 or bool "
					      "arrays; add an astype step", halo_ew_name(fn),
					      halo_dtype_name((halo_dtype_t){in[i]->dtype, 0}));
	double q[2] = {p ? p[0] : 0, p ? p[1] : 0};
	if (fn == HALO_EW_SCALE && !p)
		q[0] = 1;
	int t = halo_ew_result(fn, a->dtype, b ? b->dtype : a->dtype, q, real);
	if (b && !grids_equal(a, b)) {
		/* As dask's unify_chunks: both rechunked to the common blocks. */
		struct halo_axis common[3] = {{0}};
		for (int d = 0; d < 3; d++)
			if (halo_axis_common(&common[d], &a->grid[d], &b->grid[d])) {
				for (int k = 0; k <= d; k++)
					halo_axis_free(&common[k]);
				return halo_error_set(err, HALO_ENOMEM, "out of memory building the graph");
			}
		int rc = rechunk_to(g, a, common, &a, err);
		if (!rc)
			rc = rechunk_to(g, b, common, &b, err);
		for (int d = 0; d < 3; d++)
			halo_axis_free(&common[d]);
		if (rc)
			return rc;
	}
	halo_expr_t *e = node_add(g, HALO_OP_MAP_BLOCKS, a, b, err);
	if (!e)
		return HALO_ENOMEM;
	if (b && b->ndim > e->ndim)
		e->ndim = b->ndim; /* (Y,X) with (1,Y,X): (1,Y,X), as numpy broadcasts */
	e->ew = fn;
	e->p[0] = q[0];
	e->p[1] = q[1];
	e->dtype = (halo_dtype_kind_t)t;
	*out = e;
	return grid_copy(e, a, err);
}

int halo_map_overlap(halo_graph_t *g, halo_expr_t *a, const halo_overlap_opts_t *o,
		     halo_expr_t **out, halo_error_t *err)
{
	if (arrays_only(a, NULL, "map_overlap", err))
		return err->code;
	float *psf = NULL;
	int pn[3] = {0, 0, 0};
	for (int d = 0; d < 3; d++) {
		if (o->depth[d] < 0)
			return halo_error_set(err, HALO_EINVAL, "depth must be >= 0");
		if (o->depth[d] > a->shape[d] && o->boundary != HALO_BOUNDARY_NONE)
			return halo_error_set(err, HALO_EINVAL,
					      "a depth of %d is larger than the array (%lld on axis %d)",
					      o->depth[d], (long long)a->shape[d], d - (3 - a->ndim));
	}
	if (o->kernel == HALO_OV_RICHARDSON_LUCY) {
		if (o->iterations < 1)
			return halo_error_set(err, HALO_EINVAL, "iterations must be >= 1");
		if (o->psf_data) {
			size_t np = (size_t)o->pn[0] * o->pn[1] * o->pn[2];
			psf = malloc(np * sizeof *psf);
			if (!psf)
				return halo_error_set(err, HALO_ENOMEM, "out of memory");
			memcpy(psf, o->psf_data, np * sizeof *psf);
			memcpy(pn, o->pn, sizeof pn);
		} else if (!o->psf) {
			return halo_error_set(err, HALO_EINVAL, "richardson_lucy needs a psf");
		} else {
			int rc = halo_psf_load(o->psf, &o->psf_select, o->where, a->ndim,
					       a->space.voxel, a->space.known ? a->space.unit : NULL,
					       &psf, pn, err);
			if (rc)
				return rc;
		}
	} else if (o->size < 1 || o->size % 2 == 0) {
		return halo_error_set(err, HALO_EINVAL, "uniform: size must be odd and >= 1");
	}

	/* dask's ensure_minimum_chunksize: blocks at least as deep as the halo. */
	halo_expr_t *src;
	struct halo_axis merged[3] = {{0}};
	for (int d = 0; d < 3; d++) {
		if (halo_axis_min_blocks(&merged[d], &a->grid[d], o->depth[d] ? o->depth[d] : 1)) {
			for (int k = 0; k < d; k++)
				halo_axis_free(&merged[k]);
			free(psf);
			return halo_error_set(err, HALO_EINVAL, "a depth of %d is deeper than the array "
					      "(%lld on axis %d)", o->depth[d], (long long)a->shape[d],
					      d - (3 - a->ndim));
		}
	}
	int rc = rechunk_to(g, a, merged, &src, err);
	for (int d = 0; d < 3; d++)
		halo_axis_free(&merged[d]);
	if (rc) {
		free(psf);
		return rc;
	}
	halo_expr_t *e = node_add(g, HALO_OP_MAP_OVERLAP, src, NULL, err);
	if (!e) {
		free(psf);
		return HALO_ENOMEM;
	}
	e->dtype = HALO_F4;
	e->ov = o->kernel;
	memcpy(e->depth, o->depth, sizeof e->depth);
	e->boundary = o->boundary;
	e->constant = o->constant;
	e->iterations = o->iterations;
	e->size = o->size;
	e->psf = psf;
	e->psf_path = o->psf && !o->psf_data ? strdup(o->psf) : NULL; /* an input too */
	memcpy(e->pn, pn, sizeof pn);
	*out = e;
	rc = grid_copy(e, src, err);
	if (rc)
		return rc;
	if (psf) {
		for (int d = 0; d < 3; d++) {
			int64_t h = halo_axis_min_haloed(&e->grid[d], o->depth[d], e->boundary);
			if (pn[d] > h && d < 3 - e->ndim)
				return halo_error_set(err, HALO_EINVAL,
						      "the PSF (%dx%dx%d) has %d planes; a %dD array "
						      "needs a PSF of one plane", pn[0], pn[1], pn[2],
						      pn[d], e->ndim);
			if (pn[d] > h)
				return halo_error_set(err, HALO_EINVAL,
						      "the PSF (%dx%dx%d) is larger than the smallest "
						      "haloed chunk (%lld on axis %d); use larger chunks or "
						      "depth", pn[0], pn[1], pn[2], (long long)h,
						      d - (3 - e->ndim));
		}
	}
	return HALO_OK;
}

int halo_reduce(halo_graph_t *g, halo_expr_t *a, halo_reduce_fn_t fn, int axis,
		halo_expr_t **out, halo_error_t *err)
{
	if (arrays_only(a, NULL, halo_reduce_name(fn), err))
		return err->code;
	if (axis < -1 || axis >= a->ndim)
		return halo_error_set(err, HALO_EINVAL, "axis %d out of range for a %dD array", axis,
				      a->ndim);
	if (a->ndim == 1)
		axis = -1; /* the only axis: a scalar, as numpy */
	halo_expr_t *e = node_add(g, HALO_OP_REDUCE, a, NULL, err);
	if (!e)
		return HALO_ENOMEM;
	e->red = fn;
	*out = e;
	/* numpy's: a sum of integers is int64 or uint64 (of bools int64;
	 * halo adds in double, exact to 2^53), a mean of integers float64 */
	if (fn == HALO_RED_SUM && halo_dtype_kind_is_int(a->dtype))
		e->dtype = halo_dtype_kind_is_signed(a->dtype) || a->dtype == HALO_B1 ? HALO_I8
										: HALO_U8;
	else if (fn == HALO_RED_MEAN)
		e->dtype = a->dtype == HALO_F4 || a->dtype == HALO_F2 ? a->dtype : HALO_F8;
	if (axis < 0) {
		e->ndim = 0;
		e->space.known = 0;
		return HALO_OK;
	}
	/* The remaining axes, in order, right-aligned in 3D. */
	int in_axis = axis + 3 - a->ndim;
	e->axis = in_axis;
	e->ndim = a->ndim - 1 ? a->ndim - 1 : 1;
	e->space.voxel[0] = 1;
	e->space.origin[0] = 0;
	int k = 2;
	for (int d = 2; d >= 0; d--) {
		if (d == in_axis)
			continue;
		e->space.voxel[k] = a->space.voxel[d];
		e->space.origin[k] = a->space.origin[d];
		e->shape[k] = a->shape[d];
		if (halo_axis_copy(&e->grid[k--], &a->grid[d]))
			return halo_error_set(err, HALO_ENOMEM, "out of memory building the graph");
	}
	e->shape[0] = 1;
	return halo_axis_regular(&e->grid[0], 1, 1) ? halo_error_set(err, HALO_ENOMEM, "out of memory")
						     : HALO_OK;
}

int halo_to_store(halo_graph_t *g, halo_expr_t *a, const char *path, const int64_t *chunks,
		  int dtype, const halo_writer_opts_t *wo, int overwrite, halo_expr_t **out,
		  halo_error_t *err)
{
	if (a->op == HALO_OP_STORE)
		return arrays_only(a, NULL, wo->format == HALO_FMT_TIFF ? "to_tiff" : "to_zarr",
				 err);
	if (a->ndim == 0)
		return halo_error_set(err, HALO_EINVAL, "a scalar cannot be stored");
	if (a->ndim == 1)
		return halo_error_set(err, HALO_EUNSUPPORTED, "1D arrays cannot be stored (2D and 3D can)");
	int64_t c[3];
	if (chunks) {
		to3(a->ndim, chunks, 1, c);
	} else {
		for (int d = 0; d < 3; d++)
			c[d] = a->grid[d].start[1] - a->grid[d].start[0];
	}
	if (wo->format == HALO_FMT_TIFF) {
		/* TIFF is written in whole pages. */
		c[1] = a->shape[1];
		c[2] = a->shape[2];
		if (!chunks)
			c[0] = a->shape[0] < 16 ? a->shape[0] : 16;
	}
	uint64_t bytes = halo_dtype_size((halo_dtype_t){a->dtype, 0});
	if (dtype >= 0 && halo_dtype_size((halo_dtype_t){(halo_dtype_kind_t)dtype, 0}) > bytes)
		bytes = halo_dtype_size((halo_dtype_t){(halo_dtype_kind_t)dtype, 0});
	size_t elsize = bytes;
	for (int d = 0; d < 3; d++) {
		if (c[d] < 1)
			return halo_error_set(err, HALO_EINVAL, "chunks must be >= 1");
		c[d] = c[d] > a->shape[d] ? a->shape[d] : c[d];
	}
	/* The input's chunks, where no chunks are given, are stored in
	 * pieces blosc takes (as halo deconvolve does); given ones are
	 * kept or refused. TIFF has no blosc: large pages go fewer at a
	 * time, one at least, however large. */
	if (wo->format == HALO_FMT_TIFF || !chunks)
		halo_volume_chunks_fit(wo->format, c, elsize);
	for (int d = 0; d < 3; d++)
		bytes *= (uint64_t)c[d];
	char shown[32], limit[32];
	if (wo->format != HALO_FMT_TIFF && bytes > HALO_ZARR_MAX_CHUNK_BYTES)
		return halo_error_set(err, HALO_EINVAL, "%s: chunks of %lldx%lldx%lld hold %s, "
				      "more than blosc's limit of %s (give smaller chunks)", path,
				      (long long)c[0], (long long)c[1], (long long)c[2],
				      halo__bytes(bytes, shown, sizeof shown),
				      halo__bytes(HALO_ZARR_MAX_CHUNK_BYTES, limit, sizeof limit));
	/* Levels past a 1x1 plane would repeat it. */
	int64_t plane = a->shape[1] > a->shape[2] ? a->shape[1] : a->shape[2];
	int useful = 0;
	while (useful < 30 && ((int64_t)1 << useful) < plane)
		useful++;
	if (wo->pyramid > useful)
		return halo_error_set(err, HALO_EINVAL, "%s: %d pyramid levels, but a %lldx%lld plane "
				      "halves to 1x1 after %d level%s", path, wo->pyramid,
				      (long long)a->shape[1],
				      (long long)a->shape[2], useful, useful == 1 ? "" : "s");
	/* The writer needs its regular grid: rechunk when a's differs. */
	int same = 1;
	for (int d = 0; d < 3; d++) {
		struct halo_axis r = {0};
		if (halo_axis_regular(&r, a->shape[d], c[d]))
			return halo_error_set(err, HALO_ENOMEM, "out of memory");
		same &= halo_axis_equal(&r, &a->grid[d]);
		halo_axis_free(&r);
	}
	if (!same) {
		int64_t uc[3];
		for (int d = 0; d < a->ndim; d++)
			uc[d] = c[3 - a->ndim + d];
		int rc = halo_rechunk(g, a, uc, &a, err);
		if (rc)
			return rc;
	}
	halo_expr_t *e = node_add(g, HALO_OP_STORE, a, NULL, err);
	if (!e)
		return HALO_ENOMEM;
	e->path = strdup(path);
	if (!e->path)
		return halo_error_set(err, HALO_ENOMEM, "out of memory");
	e->wopts = *wo;
	e->overwrite = overwrite;
	e->info = (halo_volume_info_t){.ndim = a->ndim,
				       .dtype = {dtype < 0 ? a->dtype : (halo_dtype_kind_t)dtype, 0},
				       .voxel = {1, 1, 1}};
	memcpy(e->info.shape, a->shape, sizeof e->info.shape);
	memcpy(e->info.chunks, c, sizeof c);
	/* The voxel size and unit that OME-Zarr needs, from the source. */
	if (a->space.known) {
		memcpy(e->info.voxel, a->space.voxel, sizeof e->info.voxel);
		memcpy(e->info.origin, a->space.origin, sizeof e->info.origin);
		memcpy(e->info.unit, a->space.unit, sizeof e->info.unit);
	}
	*out = e;
	return grid_copy(e, a, err);
}

static const char *const ew_names[HALO_EW_COUNT] = {
	[HALO_EW_SCALE] = "scale", [HALO_EW_CLIP] = "clip", [HALO_EW_ABS] = "abs",
	[HALO_EW_SQRT] = "sqrt", [HALO_EW_LOG1P] = "log1p", [HALO_EW_ADD] = "add",
	[HALO_EW_SUB] = "sub", [HALO_EW_MUL] = "mul", [HALO_EW_DIV] = "div",
	[HALO_EW_MAXIMUM] = "maximum", [HALO_EW_MINIMUM] = "minimum",
};

int halo_ew_parse(const char *s, halo_ew_t *out)
{
	for (int i = 0; i < HALO_EW_COUNT; i++)
		if (strcmp(s, ew_names[i]) == 0) {
			*out = (halo_ew_t)i;
			return 0;
		}
	return -1;
}

const char *halo_ew_name(halo_ew_t fn)
{
	return ew_names[fn];
}

int halo_ew_arity(halo_ew_t fn)
{
	return fn >= HALO_EW_ADD ? 2 : 1;
}

static const char *const red_names[] = {"sum", "min", "max", "mean"};

int halo_reduce_parse(const char *s, halo_reduce_fn_t *out)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, red_names[i]) == 0) {
			*out = (halo_reduce_fn_t)i;
			return 0;
		}
	return -1;
}

const char *halo_reduce_name(halo_reduce_fn_t fn)
{
	return red_names[fn];
}

static const char *const boundary_names[] = {
	[HALO_BOUNDARY_NONE] = "none", [HALO_BOUNDARY_PERIODIC] = "periodic",
	[HALO_BOUNDARY_REFLECT] = "reflect", [HALO_BOUNDARY_NEAREST] = "nearest",
	[HALO_BOUNDARY_CONSTANT] = "constant",
};

const char *halo_boundary_name(int b)
{
	return boundary_names[b];
}

int halo_boundary_parse(const char *s, int *out)
{
	for (int i = 0; i < 5; i++)
		if (strcmp(s, boundary_names[i]) == 0) {
			*out = i;
			return 0;
		}
	return -1;
}
