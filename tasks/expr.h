/* Lazy array expressions, dask.array's model in C: each function adds one
 * node to a graph and returns it; nothing is read or computed until
 * halo_graph_compute(). A node knows its shape, element type and chunk
 * grid, which are checked when it is built, so a bad pipeline fails before
 * any work. Arrays have 1 to 3 dimensions; internally every array is 3D
 * with leading axes of length 1 (a 2D image is z = 1).
 *
 * Element types follow numpy's rules (see docs/pipeline.md): binary
 * kernels promote as numpy.result_type does, integer inputs to sqrt,
 * log1p and divide give floats, integer add/sub/mul wrap around. */
#ifndef HALO_TASKS_EXPR_H
#define HALO_TASKS_EXPR_H

#include <stdint.h>

#include "halo.h"
#include "codelets/reduce.h"
#include "io/volume.h"
#include "runtime/grid.h"
#include "util/dtype.h"

typedef enum halo_op {
	HALO_OP_SOURCE,   /* from_zarr, from_tiff, from_buffer */
	HALO_OP_RECHUNK,
	HALO_OP_ASTYPE,
	HALO_OP_MAP_BLOCKS,
	HALO_OP_MAP_OVERLAP,
	HALO_OP_REDUCE,
	HALO_OP_STORE,    /* to_zarr, to_tiff */
} halo_op_t;

/* map_blocks kernels: elementwise, one or two arrays of one chunk grid. */
typedef enum halo_ew {
	HALO_EW_SCALE,   /* x * scale + offset */
	HALO_EW_CLIP,    /* numpy.clip(x, lo, hi) */
	HALO_EW_ABS, HALO_EW_SQRT, HALO_EW_LOG1P,
	HALO_EW_ADD, HALO_EW_SUB, HALO_EW_MUL, HALO_EW_DIV, /* two arrays; div is true division */
	HALO_EW_MAXIMUM, HALO_EW_MINIMUM,                   /* two arrays; NaN propagates */
	HALO_EW_COUNT
} halo_ew_t;

/* map_overlap kernels: take the haloed float32 block, give the float32
 * chunk. */
typedef enum halo_ov { HALO_OV_RICHARDSON_LUCY, HALO_OV_UNIFORM } halo_ov_t;

typedef struct halo_graph halo_graph_t;
typedef struct halo_expr halo_expr_t;

/* Where a node's voxels lie, from the file its data comes from (internal
 * axes, right-aligned): what an OME-Zarr or TIFF output says. */
struct halo_space {
	int known;          /* 0: from no file (from_buffer), or a scalar */
	double voxel[3], origin[3];
	char unit[32];
};

struct halo_expr {
	int id;
	char name[64];     /* the step's name (pipeline) or "op-N" */
	int named;         /* name given by the user */
	halo_op_t op;
	halo_expr_t *in[2];
	int nin;
	int ndim;                 /* as the user sees it: 1..3 */
	int64_t shape[3];         /* internal 3D shape */
	struct halo_axis grid[3]; /* chunk grid (irregular allowed) */
	halo_dtype_kind_t dtype;
	int consumers;            /* nodes that take this one as input */
	int live;                 /* set by planning: an output needs it */
	struct halo_space space;  /* its first input's with one; a reduction
				   * along an axis drops that axis's */
	const halo_expr_t *mixed; /* the first step on its way whose two
				   * inputs' voxel sizes differ (NULL: none) */

	/* source */
	halo_reader_t *reader;    /* owned */
	const void *buffer;       /* borrowed */
	halo_volume_info_t info;  /* source: as read; store: as written */

	/* map_blocks */
	halo_ew_t ew;
	double p[2];

	/* map_overlap */
	halo_ov_t ov;
	int depth[3];
	int boundary;
	double constant;
	int iterations;
	int size;                 /* uniform filter width */
	float *psf;               /* owned, normalised */
	char *psf_path;           /* owned; the file it came from, if any */
	int pn[3];

	/* reduce; axis is internal (0..2) or -1 for all axes */
	halo_reduce_fn_t red;
	int axis;
	double result;            /* reduce to a scalar: set by compute */
	int64_t result_i;         /* the same, exact, of an integer dtype
				   * (uint64's bits) */
	int has_result;

	/* store */
	char *path;               /* owned */
	halo_writer_opts_t wopts;
	int overwrite;
};

halo_graph_t *halo_graph_new(void);
void halo_graph_free(halo_graph_t *g);
int halo_graph_count(const halo_graph_t *g);
halo_expr_t *halo_graph_node(const halo_graph_t *g, int i);
/* Names a node (pipeline step names); "" keeps "op-N". */
void halo_expr_set_name(halo_expr_t *e, const char *name);
const char *halo_op_name(const halo_expr_t *e);
/* The name errors should cite: a pipeline step's, or NULL for the nodes
 * halo builds itself (convert, deconvolve), whose "op-N" names mean
 * nothing to the user. */
const char *halo_expr_step(const halo_expr_t *e);

/* Sources. from_zarr and from_tiff open the file to read its metadata
 * (shape, dtype, chunks) and nothing else; sel: its channel and time
 * point (NULL: the only ones). */
int halo_from_zarr(halo_graph_t *g, const char *path, const halo_select_t *sel,
		   halo_expr_t **out, halo_error_t *err);
int halo_from_tiff(halo_graph_t *g, const char *path, const halo_select_t *sel,
		   halo_expr_t **out, halo_error_t *err);
/* A reader already open: the graph owns it from now on (also on failure). */
int halo_from_reader(halo_graph_t *g, halo_reader_t *r, halo_expr_t **out, halo_error_t *err);
/* data: C order, native byte order; borrowed until the graph is freed. */
int halo_from_buffer(halo_graph_t *g, const void *data, halo_dtype_kind_t dtype, int ndim,
		     const int64_t *shape, const int64_t *chunks, halo_expr_t **out,
		     halo_error_t *err);

/* chunks: ndim entries; -1 takes the whole axis, as in dask. */
int halo_rechunk(halo_graph_t *g, halo_expr_t *a, const int64_t *chunks, halo_expr_t **out,
		 halo_error_t *err);
int halo_astype(halo_graph_t *g, halo_expr_t *a, halo_dtype_kind_t dtype, halo_expr_t **out,
		halo_error_t *err);
/* b is the second array of a binary kernel, NULL otherwise; p are the
 * kernel's scalars (scale: scale, offset; clip: lo, hi); bit i of real
 * says p[i] was written as a float (1.0, not 1), which numpy's casting
 * tells apart. */
int halo_map_blocks(halo_graph_t *g, halo_ew_t fn, halo_expr_t *a, halo_expr_t *b,
		    const double p[2], int real, halo_expr_t **out, halo_error_t *err);

typedef struct halo_overlap_opts {
	halo_ov_t kernel;
	int depth[3];       /* per internal axis */
	int boundary;       /* enum halo_boundary */
	double constant;
	int iterations;     /* richardson_lucy */
	const char *psf;    /* richardson_lucy: TIFF or Zarr path, */
	halo_select_t psf_select; /* its channel and time point, */
	const char *where;  /* what a warning about it names first (a
			     * pipeline's file and step), or NULL; or: */
	const float *psf_data; /* a normalised PSF of shape pn, copied */
	int pn[3];
	int size;           /* uniform: filter width (odd) */
} halo_overlap_opts_t;

/* dask.array.map_overlap(f, a, depth, boundary, trim=True): the result
 * has a's shape; as in dask, blocks smaller than the depth are merged with
 * their neighbours first. The result is float32. */
int halo_map_overlap(halo_graph_t *g, halo_expr_t *a, const halo_overlap_opts_t *o,
		     halo_expr_t **out, halo_error_t *err);

/* axis: the user's axis (0..ndim-1), or -1 for a scalar. */
int halo_reduce(halo_graph_t *g, halo_expr_t *a, halo_reduce_fn_t fn, int axis,
		halo_expr_t **out, halo_error_t *err);

/* Stores a at path (Zarr, OME-Zarr or TIFF by wo->format). chunks: ndim
 * entries or NULL for a's first chunk sizes. dtype: the stored type, or
 * -1 for a's; unlike astype this conversion rounds to nearest and
 * saturates, which is what a float result written as integers needs. */
int halo_to_store(halo_graph_t *g, halo_expr_t *a, const char *path, const int64_t *chunks,
		  int dtype, const halo_writer_opts_t *wo, int overwrite, halo_expr_t **out,
		  halo_error_t *err);

/* Names for pipeline files and messages. */
int halo_ew_parse(const char *s, halo_ew_t *out);
const char *halo_ew_name(halo_ew_t fn);
int halo_ew_arity(halo_ew_t fn);
int halo_reduce_parse(const char *s, halo_reduce_fn_t *out);
const char *halo_reduce_name(halo_reduce_fn_t fn);
int halo_boundary_parse(const char *s, int *out);
const char *halo_boundary_name(int boundary);

/* numpy's result dtype of kernel fn on a (and b). */
int halo_ew_result(halo_ew_t fn, halo_dtype_kind_t a, halo_dtype_kind_t b, const double p[2],
		   int real);
/* numpy.result_type of two arrays. */
int halo_dtype_promote(halo_dtype_kind_t a, halo_dtype_kind_t b);

#endif
