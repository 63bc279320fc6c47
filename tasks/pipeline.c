/* Pipeline files (docs/pipeline.md): a JSON list of named steps, each an
 * expression over earlier steps, parsed into a graph. Every message names
 * the file, the step and the field at fault; unknown fields are errors, so
 * that a misspelt option is never silently ignored. */
#include "config.h"
#include "tasks/pipeline.h"
#include "codelets/gather.h"
#include "io/fs.h"
#include "io/outdir.h"

#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ctx {
	const char *file;
	char dir[4096];
	halo_graph_t *g;
	halo_error_t *err;
	const char *step;
	json_t *obj;
};

__attribute__((format(printf, 3, 4)))
static int fail(struct ctx *c, int code, const char *fmt, ...)
{
	char msg[HALO_ERROR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (c->step)
		return halo_error_set(c->err, code, "%s: step \"%s\": %s", c->file, c->step, msg);
	return halo_error_set(c->err, code, "%s: %s", c->file, msg);
}

/* A lower layer's message, prefixed with the file and step. */
static int wrap(struct ctx *c, int rc)
{
	if (rc)
		halo_error_prefix(c->err, "%s: step \"%s\"", c->file, c->step);
	return rc;
}

#define DTYPES "uint8, uint16, uint32, uint64, int8, int16, int32, int64, float16, float32, " \
	       "float64, bool, or numpy's codes such as <f4"

static json_t *field(struct ctx *c, const char *name)
{
	return json_object_get(c->obj, name);
}

static int get_string(struct ctx *c, const char *name, int required, const char **out)
{
	json_t *v = field(c, name);
	if (!v) {
		if (required)
			return fail(c, HALO_EINVAL, "missing field \"%s\"", name);
		return HALO_OK;
	}
	if (!json_is_string(v))
		return fail(c, HALO_EINVAL, "field \"%s\" must be a string", name);
	*out = json_string_value(v);
	return HALO_OK;
}

static int get_number(struct ctx *c, const char *name, double *out)
{
	json_t *v = field(c, name);
	if (!v)
		return HALO_OK;
	if (!json_is_number(v))
		return fail(c, HALO_EINVAL, "field \"%s\" must be a number", name);
	*out = json_number_value(v);
	return HALO_OK;
}

/* 1 when field name is written as a float (1.0), which numpy types
 * differently from an integer (1). */
static int is_real(struct ctx *c, const char *name)
{
	return json_is_real(field(c, name));
}

static int get_int(struct ctx *c, const char *name, long min, long max, long *out)
{
	json_t *v = field(c, name);
	if (!v)
		return HALO_OK;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return fail(c, HALO_EINVAL, "field \"%s\" must be an integer from %ld to %ld", name, min,
			    max);
	*out = (long)json_integer_value(v);
	return HALO_OK;
}

static int get_bool(struct ctx *c, const char *name, int *out)
{
	json_t *v = field(c, name);
	if (!v)
		return HALO_OK;
	if (!json_is_boolean(v))
		return fail(c, HALO_EINVAL, "field \"%s\" must be true or false", name);
	*out = json_is_true(v);
	return HALO_OK;
}

/* An integer, or a list of one per axis of an ndim array. */
/* Sizes and depths: at most INT32_MAX, so no cast to int wraps. */
static int int_ok(const json_t *x, long min)
{
	return json_is_integer(x) && json_integer_value(x) >= min &&
	       json_integer_value(x) <= INT32_MAX;
}

static int get_ints(struct ctx *c, const char *name, int ndim, long min, int64_t out[3], int *given)
{
	json_t *v = field(c, name);
	*given = 0;
	if (!v)
		return HALO_OK;
	int scalar = !json_is_array(v);
	if (!scalar && (int)json_array_size(v) != ndim)
		return fail(c, HALO_EINVAL, "field \"%s\" must be an integer or a list of %d integers",
			    name, ndim);
	for (int d = 0; d < ndim; d++) {
		json_t *x = scalar ? v : json_array_get(v, (size_t)d);
		if (!int_ok(x, min) || (min < 0 && json_integer_value(x) == 0)) {
			if (min < 0) /* chunks: -1 is dask's whole axis */
				return fail(c, HALO_EINVAL, "field \"%s\"%s must hold sizes from 1 to %d, "
					    "or -1 for the whole axis", name, scalar ? "" : " (a list)",
					    INT32_MAX);
			return fail(c, HALO_EINVAL, "field \"%s\"%s must hold integers from %ld to %d",
				    name, scalar ? "" : " (a list)", min, INT32_MAX);
		}
		out[d] = json_integer_value(x);
	}
	*given = 1;
	return HALO_OK;
}

static int get_path(struct ctx *c, const char *name, char *out, size_t len)
{
	const char *p = NULL;
	int rc = get_string(c, name, 1, &p);
	if (rc)
		return rc;
	if (!*p)
		return fail(c, HALO_EINVAL, "field \"%s\" is empty", name);
	int n = p[0] == '/' || !c->dir[0] ? snprintf(out, len, "%s", p)
					  : snprintf(out, len, "%s/%s", c->dir, p);
	if (n < 0 || (size_t)n >= len)
		return fail(c, HALO_EINVAL, "field \"%s\": the path is too long", name);
	return HALO_OK;
}

/* The earlier step a field names. */
static int get_input(struct ctx *c, const char *name, json_t *names, halo_expr_t **out)
{
	const char *s = NULL;
	int rc = get_string(c, name, 1, &s);
	if (rc)
		return rc;
	json_t *id = json_object_get(names, s);
	if (!id)
		return fail(c, HALO_EINVAL, "field \"%s\": no earlier step is named \"%s\"", name, s);
	*out = halo_graph_node(c->g, (int)json_integer_value(id));
	return HALO_OK;
}

static int check_fields(struct ctx *c, const char *const *allowed)
{
	const char *key;
	json_t *v;
	json_object_foreach(c->obj, key, v) {
		int ok = strcmp(key, "name") == 0 || strcmp(key, "op") == 0;
		for (int i = 0; allowed[i] && !ok; i++)
			ok = strcmp(key, allowed[i]) == 0;
		if (!ok)
			return fail(c, HALO_EINVAL, "unknown field \"%s\"", key);
	}
	return HALO_OK;
}

/* An integer as numpy 1.x puts it in an array of kind k, as dask pads
 * with it: modulo 2^bits in an integer array (4294967301 pads a uint16
 * array with 5), where going through a double would saturate. */
static double integer_as(json_int_t v, halo_dtype_kind_t k)
{
	switch (k) {
	case HALO_U1: return (double)(uint8_t)v;
	case HALO_U2: return (double)(uint16_t)v;
	case HALO_U4: return (double)(uint32_t)v;
	case HALO_U8: return (double)(uint64_t)v;
	case HALO_I1: return (double)(int8_t)(uint8_t)v;
	case HALO_I2: return (double)(int16_t)(uint16_t)v;
	case HALO_I4: return (double)(int32_t)(uint32_t)v;
	default: return (double)v;
	}
}

static int parse_overlap(struct ctx *c, json_t *names, halo_expr_t **out)
{
	static const char *const allowed[] = {"input", "kernel", "depth", "boundary", "constant",
					      "iterations", "psf", "psf_channel", "psf_time", "size",
					      NULL};
	halo_expr_t *a;
	const char *kernel = NULL, *boundary = "reflect", *psf = NULL;
	int rc = check_fields(c, allowed);
	if (!rc)
		rc = get_input(c, "input", names, &a);
	if (!rc)
		rc = get_string(c, "kernel", 1, &kernel);
	halo_overlap_opts_t o = {0};
	json_t *b = field(c, "boundary");
	if (!rc && json_is_number(b)) {
		/* dask: a number is a constant boundary of that value */
		boundary = "constant";
		o.constant = json_number_value(b);
		if (field(c, "constant"))
			return fail(c, HALO_EINVAL, "a numeric boundary is the constant; drop \"constant\"");
	} else if (!rc && b && !json_is_string(b)) {
		rc = fail(c, HALO_EINVAL, "field \"boundary\" must be a name or a number");
	} else if (!rc) {
		rc = get_string(c, "boundary", 0, &boundary);
	}
	if (rc)
		return rc;
	if (strcmp(kernel, "richardson_lucy") == 0)
		o.kernel = HALO_OV_RICHARDSON_LUCY;
	else if (strcmp(kernel, "uniform") == 0)
		o.kernel = HALO_OV_UNIFORM;
	else
		return fail(c, HALO_EINVAL, "unknown kernel \"%s\" (richardson_lucy, uniform)", kernel);
	if (halo_boundary_parse(boundary, &o.boundary))
		return fail(c, HALO_EINVAL,
			    "unknown boundary \"%s\" (reflect, periodic, nearest, constant, none)", boundary);
	if (field(c, "constant") && o.boundary != HALO_BOUNDARY_CONSTANT)
		return fail(c, HALO_EINVAL, "\"constant\" applies to boundary \"constant\", not "
			    "\"%s\"", boundary);
	rc = get_number(c, "constant", &o.constant);
	if (rc)
		return rc;
	json_t *k = json_is_number(b) ? b : field(c, "constant");
	if (json_is_integer(k))
		o.constant = integer_as(json_integer_value(k), a->dtype);
	int64_t depth[3] = {0, 0, 0};
	int given;
	rc = get_ints(c, "depth", a->ndim, 0, depth, &given);
	if (rc)
		return rc;
	if (!given)
		return fail(c, HALO_EINVAL, "missing field \"depth\"");
	for (int d = 0; d < 3; d++)
		o.depth[d] = d < 3 - a->ndim ? 0 : (int)depth[d - (3 - a->ndim)];
	long iterations = 0, size = 0;
	if (o.kernel == HALO_OV_RICHARDSON_LUCY) {
		char path[4096];
		iterations = 10;
		rc = get_int(c, "iterations", 1, 100000, &iterations);
		if (!rc)
			rc = get_path(c, "psf", path, sizeof path);
		long pc = -1, pt = -1;
		if (!rc)
			rc = get_int(c, "psf_channel", 0, LONG_MAX, &pc);
		if (!rc)
			rc = get_int(c, "psf_time", 0, LONG_MAX, &pt);
		if (rc)
			return rc;
		o.psf_select = (halo_select_t){.channel = pc, .time = pt, .field = 1, .prefix = "psf_"};
		char where[4300];
		snprintf(where, sizeof where, "%s: step \"%s\"", c->file, c->step);
		o.where = where;
		if (field(c, "size"))
			return fail(c, HALO_EINVAL, "field \"size\" is for the uniform kernel");
		psf = path;
		o.iterations = (int)iterations;
		o.psf = psf;
		return wrap(c, halo_map_overlap(c->g, a, &o, out, c->err));
	}
	if (field(c, "psf") || field(c, "iterations") || field(c, "psf_channel") ||
	    field(c, "psf_time"))
		return fail(c, HALO_EINVAL, "fields \"psf\", \"psf_channel\", \"psf_time\" and "
			    "\"iterations\" are for richardson_lucy");
	size = 3;
	rc = get_int(c, "size", 1, 1001, &size);
	if (rc)
		return rc;
	o.size = (int)size;
	return wrap(c, halo_map_overlap(c->g, a, &o, out, c->err));
}

static int parse_store(struct ctx *c, const char *op, json_t *names, halo_expr_t **out)
{
	static const char *const zarr_fields[] = {"input", "path", "chunks", "dtype", "compressor",
						  "clevel", "shuffle", "ome", "pyramid", "overwrite",
						  "zarr_format", "shards", NULL};
	static const char *const tiff_fields[] = {"input", "path", "dtype", "overwrite", NULL};
	int tiff = strcmp(op, "to_tiff") == 0;
	halo_expr_t *a;
	char path[4096];
	int rc = check_fields(c, tiff ? tiff_fields : zarr_fields);
	if (!rc)
		rc = get_input(c, "input", names, &a);
	if (!rc)
		rc = get_path(c, "path", path, sizeof path);
	if (rc)
		return rc;
	for (int i = 0; i < halo_graph_count(c->g); i++) {
		const halo_expr_t *e = halo_graph_node(c->g, i);
		if (e->reader && (halo_path_within(path, halo_reader_path(e->reader)) ||
				  halo_path_within(halo_reader_path(e->reader), path)))
			return fail(c, HALO_EINVAL, "writing %s would change the input of step \"%s\"",
				    path, e->name);
	}
	halo_writer_opts_t wo = {.codec = HALO_CODEC_DEFAULT};
	int ome = 0, overwrite = 0, given = 0, sharded = 0;
	long clevel = 5, pyramid = 0, zarr_format = 0;
	int64_t chunks[3], shards[3];
	const char *compressor = NULL, *shuffle = NULL, *dtname = NULL;
	halo_dtype_t dt = {(halo_dtype_kind_t)0, 0};
	rc = get_string(c, "dtype", 0, &dtname);
	if (!rc && dtname && halo_dtype_parse(dtname, "dtype", &dt, NULL))
		return fail(c, HALO_EINVAL, "unknown dtype \"%s\" (%s)", dtname, DTYPES);
	if (!rc && dtname && dt.big_endian) /* astype's is a type; this one is stored */
		return fail(c, HALO_EINVAL, "dtype \"%s\": halo writes little-endian arrays; give the "
			    "type without '>'", dtname);
	if (!rc)
		rc = get_bool(c, "overwrite", &overwrite);
	if (!rc && a->ndim > 0)
		rc = get_ints(c, "chunks", a->ndim, -1, chunks, &given);
	for (int d = 0; !rc && given && d < a->ndim; d++) /* -1: the whole axis, as in rechunk */
		if (chunks[d] == -1)
			chunks[d] = a->shape[3 - a->ndim + d];
	if (!rc && a->ndim > 0 && !json_is_null(field(c, "shards"))) /* null: none, as in zarr */
		rc = get_ints(c, "shards", a->ndim, 1, shards, &sharded);
	if (!rc)
		rc = get_int(c, "zarr_format", 2, 3, &zarr_format);
	if (!rc)
		rc = get_bool(c, "ome", &ome);
	if (!rc)
		rc = get_int(c, "clevel", 0, 9, &clevel);
	if (!rc)
		rc = get_int(c, "pyramid", 0, 10, &pyramid);
	if (!rc)
		rc = get_string(c, "compressor", 0, &compressor);
	if (!rc)
		rc = get_string(c, "shuffle", 0, &shuffle);
	if (rc)
		return rc;
	halo_error_t e2 = {0};
	if (halo_path_check_output(path, &e2))
		return fail(c, HALO_EINVAL, "field \"path\": %s", e2.msg);
	if (tiff) {
		wo.format = HALO_FMT_TIFF;
		wo.ome_tiff = halo_path_ome_tiff(path);
		if (halo_path_has_ext(path, ".zarr"))
			return fail(c, HALO_EINVAL, "field \"path\": \"%s\" is a Zarr name; use to_zarr", path);
	} else {
		wo.format = halo_format_from_path(path);
		if (wo.format == HALO_FMT_TIFF)
			return fail(c, HALO_EINVAL, "field \"path\": \"%s\" is a TIFF name; use to_tiff", path);
		if (!ome && field(c, "ome") && wo.format == HALO_FMT_OME_ZARR)
			return fail(c, HALO_EINVAL, "field \"ome\" is false but \"%s\" is an OME-Zarr "
				    "name; drop the field or rename the output", path);
		if (ome)
			wo.format = HALO_FMT_OME_ZARR;
	}
	if (pyramid && wo.format != HALO_FMT_OME_ZARR)
		return fail(c, HALO_EINVAL, "field \"pyramid\" needs an OME-Zarr output (\"ome\": true "
			    "or a .ome.zarr path)");
	wo.pyramid = (int)pyramid;
	if (compressor && halo_codec_parse(compressor, &wo.codec, c->err))
		return fail(c, HALO_EINVAL, "unknown compressor \"%s\" (%s)", compressor,
			    HALO_CODEC_NAMES);
	wo.codec.clevel = halo_codec_level_clamp(wo.codec.id, clevel); /* bz2: 1..9 */
	if (shuffle) {
		static const char *const modes[] = {"none", "byte", "bit"};
		int m = -1;
		for (int i = 0; i < 3; i++)
			if (strcmp(shuffle, modes[i]) == 0)
				m = i;
		if (m < 0)
			return fail(c, HALO_EINVAL, "unknown shuffle \"%s\" (none, byte, bit)", shuffle);
		wo.codec.shuffle = m;
	}
	if (compressor && wo.codec.id == HALO_CODEC_NONE && (field(c, "clevel") || shuffle))
		return fail(c, HALO_EINVAL, "fields \"clevel\" and \"shuffle\" apply to compressed "
			    "chunks; \"compressor\": \"none\" stores chunks uncompressed");
	if (wo.codec.id != HALO_CODEC_BLOSC && shuffle)
		return fail(c, HALO_EINVAL, "field \"shuffle\" applies to blosc; the compressor is "
			    "\"%s\"", compressor);
	wo.zarr_format = zarr_format ? (int)zarr_format : sharded ? 3 : 2;
	if (sharded && wo.zarr_format != 3)
		return fail(c, HALO_EINVAL, "field \"shards\": Zarr v2 has no shards; they need "
			    "\"zarr_format\": 3");
	if (wo.zarr_format == 3 && !halo_zarr_v3_codec_ok(&wo.codec))
		return fail(c, HALO_EINVAL, "Zarr v3 has no %s codec (blosc's, gzip, zstd or none)",
			    halo_codec_id_name(wo.codec.id));
	/* Shards of the chunks (given, or the input's): the store's chunks
	 * are the shards. */
	int64_t in3[3], want3[3] = {1, 1, 1}, shard3[3];
	for (int d = 0, off = 3 - a->ndim; sharded && d < 3; d++) {
		in3[d] = d < off ? 1 : given ? chunks[d - off] : a->grid[d].start[1] - a->grid[d].start[0];
		want3[d] = d < off ? 1 : shards[d - off];
	}
	int bad = sharded ? halo_volume_shards(a->shape, in3, want3, wo.inner, shard3) : -1;
	if (bad >= 0)
		return fail(c, HALO_EINVAL, "field \"shards\": %lld is not a multiple of the chunks' "
			    "%lld along axis %d", (long long)want3[bad], (long long)wo.inner[bad],
			    bad - (3 - a->ndim));
	for (int d = 3 - a->ndim; sharded && d < 3; d++)
		shards[d - (3 - a->ndim)] = shard3[d];
	return wrap(c, halo_to_store(c->g, a, path, sharded ? shards : given ? chunks : NULL,
				     dtname ? (int)dt.kind : -1, &wo, overwrite, out, c->err));
}

static int parse_step(struct ctx *c, const char *op, json_t *names, halo_expr_t **out)
{
	int rc;
	halo_expr_t *a = NULL, *b = NULL;
	halo_reduce_fn_t red;
	if (strcmp(op, "from_zarr") == 0 || strcmp(op, "from_tiff") == 0) {
		static const char *const allowed[] = {"path", "channel", "time", NULL};
		char path[4096];
		long channel = -1, time = -1;
		rc = check_fields(c, allowed);
		if (!rc)
			rc = get_path(c, "path", path, sizeof path);
		if (!rc)
			rc = get_int(c, "channel", 0, LONG_MAX, &channel);
		if (!rc)
			rc = get_int(c, "time", 0, LONG_MAX, &time);
		if (rc)
			return rc;
		halo_select_t sel = {.channel = channel, .time = time, .field = 1};
		rc = op[5] == 'z' ? halo_from_zarr(c->g, path, &sel, out, c->err)
				  : halo_from_tiff(c->g, path, &sel, out, c->err);
		return wrap(c, rc);
	}
	if (strcmp(op, "rechunk") == 0) {
		static const char *const allowed[] = {"input", "chunks", NULL};
		int64_t chunks[3];
		int given;
		rc = check_fields(c, allowed);
		if (!rc)
			rc = get_input(c, "input", names, &a);
		if (!rc)
			rc = get_ints(c, "chunks", a->ndim, -1, chunks, &given);
		if (rc)
			return rc;
		if (!given)
			return fail(c, HALO_EINVAL, "missing field \"chunks\"");
		return wrap(c, halo_rechunk(c->g, a, chunks, out, c->err));
	}
	if (strcmp(op, "astype") == 0) {
		static const char *const allowed[] = {"input", "dtype", NULL};
		const char *name = NULL;
		halo_dtype_t dt;
		rc = check_fields(c, allowed);
		if (!rc)
			rc = get_input(c, "input", names, &a);
		if (!rc)
			rc = get_string(c, "dtype", 1, &name);
		if (rc)
			return rc;
		if (halo_dtype_parse(name, "dtype", &dt, NULL))
			return fail(c, HALO_EINVAL, "unknown dtype \"%s\" (%s)", name, DTYPES);
		return wrap(c, halo_astype(c->g, a, dt.kind, out, c->err));
	}
	if (strcmp(op, "map_blocks") == 0) {
		static const char *const allowed[] = {"input", "inputs", "kernel", "scale", "offset",
						      "lo", "hi", NULL};
		const char *kernel = NULL;
		halo_ew_t fn;
		rc = check_fields(c, allowed);
		if (!rc)
			rc = get_string(c, "kernel", 1, &kernel);
		if (rc)
			return rc;
		if (halo_ew_parse(kernel, &fn))
			return fail(c, HALO_EINVAL, "unknown kernel \"%s\" (scale, clip, abs, sqrt, log1p, "
				    "add, sub, mul, div, maximum, minimum)", kernel);
		if (halo_ew_arity(fn) == 2) {
			json_t *in = field(c, "inputs");
			if (field(c, "input") || !json_is_array(in) || json_array_size(in) != 2 ||
			    !json_is_string(json_array_get(in, 0)) || !json_is_string(json_array_get(in, 1)))
				return fail(c, HALO_EINVAL, "kernel %s needs \"inputs\": a list of two "
					    "step names", kernel);
			json_t *ia = json_object_get(names, json_string_value(json_array_get(in, 0)));
			json_t *ib = json_object_get(names, json_string_value(json_array_get(in, 1)));
			if (!ia || !ib)
				return fail(c, HALO_EINVAL, "field \"inputs\": no earlier step is named \"%s\"",
					    json_string_value(json_array_get(in, ia ? 1 : 0)));
			a = halo_graph_node(c->g, (int)json_integer_value(ia));
			b = halo_graph_node(c->g, (int)json_integer_value(ib));
		} else {
			if (field(c, "inputs"))
				return fail(c, HALO_EINVAL, "kernel %s takes one \"input\"", kernel);
			rc = get_input(c, "input", names, &a);
			if (rc)
				return rc;
		}
		double p[2] = {0, 0};
		if (fn == HALO_EW_SCALE) {
			p[0] = 1;
			rc = get_number(c, "scale", &p[0]);
			if (!rc)
				rc = get_number(c, "offset", &p[1]);
		} else if (fn == HALO_EW_CLIP) {
			if (!field(c, "lo") || !field(c, "hi"))
				return fail(c, HALO_EINVAL, "kernel clip needs \"lo\" and \"hi\"");
			rc = get_number(c, "lo", &p[0]);
			if (!rc)
				rc = get_number(c, "hi", &p[1]);
		}
		if (rc)
			return rc;
		if ((fn != HALO_EW_SCALE && (field(c, "scale") || field(c, "offset"))) ||
		    (fn != HALO_EW_CLIP && (field(c, "lo") || field(c, "hi"))))
			return fail(c, HALO_EINVAL, "kernel %s takes no such parameter", kernel);
		int real = fn == HALO_EW_CLIP ? is_real(c, "lo") | is_real(c, "hi") << 1 : 0;
		return wrap(c, halo_map_blocks(c->g, fn, a, b, p, real, out, c->err));
	}
	if (strcmp(op, "map_overlap") == 0)
		return parse_overlap(c, names, out);
	if (halo_reduce_parse(op, &red) == 0) {
		static const char *const allowed[] = {"input", "axis", NULL};
		long axis = -1;
		rc = check_fields(c, allowed);
		if (!rc)
			rc = get_input(c, "input", names, &a);
		if (!rc && a->ndim == 0 && field(c, "axis"))
			return fail(c, HALO_EINVAL, "\"axis\": the input is a scalar, which has none");
		/* Negative axes count from the last, as numpy's. */
		if (!rc)
			rc = get_int(c, "axis", -a->ndim, a->ndim - 1, &axis);
		if (rc)
			return rc;
		if (field(c, "axis") && axis < 0)
			axis += a->ndim;
		return wrap(c, halo_reduce(c->g, a, red, (int)axis, out, c->err));
	}
	if (strcmp(op, "to_zarr") == 0 || strcmp(op, "to_tiff") == 0)
		return parse_store(c, op, names, out);
	return fail(c, HALO_EINVAL, "unknown op \"%s\" (from_zarr, from_tiff, rechunk, astype, "
		    "map_blocks, map_overlap, sum, min, max, mean, to_zarr, to_tiff)", op);
}

int halo_pipeline_load(const char *file, halo_graph_t **out, halo_error_t *err)
{
	*out = NULL;
	struct ctx c = {.file = file, .err = err};
	json_error_t je;
	if (halo_fs_is_dir(file))
		return halo_error_set(err, HALO_EINVAL, "%s: is a folder, not a pipeline file", file);
	json_t *root = json_load_file(file, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		/* jansson's "unable to open FILE: why" names the file twice. */
		if (je.line < 1 && access(file, R_OK) != 0)
			return halo_error_set(err, errno == ENOENT ? HALO_ENOENT : HALO_EIO, "%s: %s",
					      file, strerror(errno));
		if (je.line < 1)
			return halo_error_set(err, HALO_ENOENT, "%s: %s", file, je.text);
		return halo_error_set(err, HALO_EFORMAT, "%s: line %d, column %d: %s", file, je.line,
				      je.column,
				      /* jansson names its own flag */
				      strstr(je.text, "JSON_ALLOW_NUL") ? "\\u0000 is not allowed"
									: je.text);
	}
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s", file);
	snprintf(c.dir, sizeof c.dir, "%s", dirname(tmp));
	json_t *names = json_object();
	c.g = halo_graph_new();
	int rc = HALO_OK;
	json_t *steps = json_is_object(root) ? json_object_get(root, "steps") : NULL;
	if (!names || !c.g) {
		rc = halo_error_set(err, HALO_ENOMEM, "out of memory");
		goto out;
	}
	if (!json_is_array(steps)) {
		rc = fail(&c, HALO_EINVAL, "expected an object with \"steps\": a list of steps");
		goto out;
	}
	if (json_array_size(steps) == 0) {
		rc = fail(&c, HALO_EINVAL, "\"steps\" is empty: nothing to compute");
		goto out;
	}
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v) {
		if (strcmp(key, "steps") != 0 && strcmp(key, "version") != 0 &&
		    strcmp(key, "description") != 0) {
			rc = fail(&c, HALO_EINVAL, "unknown field \"%s\"", key);
			goto out;
		}
		/* A later format would say so: a file halo cannot know is refused. */
		if (!strcmp(key, "version") && !(json_is_number(v) && json_number_value(v) == 1)) {
			rc = fail(&c, HALO_EINVAL, "\"version\" is 1, the only version of this format");
			goto out;
		}
		if (!strcmp(key, "description") && !json_is_string(v)) {
			rc = fail(&c, HALO_EINVAL, "\"description\" is not a string");
			goto out;
		}
	}
	size_t i;
	json_t *step;
	json_array_foreach(steps, i, step) {
		c.step = NULL;
		if (!json_is_object(step)) {
			rc = fail(&c, HALO_EINVAL, "step %zu is not an object", i + 1);
			goto out;
		}
		c.obj = step;
		json_t *name = json_object_get(step, "name");
		if (!json_is_string(name) || !*json_string_value(name)) {
			rc = fail(&c, HALO_EINVAL, "step %zu: %s \"name\" (a string, not empty)", i + 1,
				  !name ? "missing" : json_is_string(name) ? "an empty" : "a non-string");
			goto out;
		}
		c.step = json_string_value(name);
		if (strlen(c.step) >= sizeof(((halo_expr_t *)0)->name)) {
			rc = fail(&c, HALO_EINVAL, "the name is longer than 63 bytes");
			goto out;
		}
		/* Names go into one-line errors and DOT labels. */
		for (const char *q = c.step; *q; q++)
			if ((unsigned char)*q < 0x20 || *q == '"' || *q == '\\' || *q == 0x7f) {
				c.step = NULL;
				rc = fail(&c, HALO_EINVAL, "step %zu: a name may not hold control "
					  "characters, quotes or backslashes", i + 1);
				goto out;
			}
		if (json_object_get(names, c.step)) {
			rc = fail(&c, HALO_EINVAL, "a step of this name comes earlier");
			goto out;
		}
		const char *op = NULL;
		rc = get_string(&c, "op", 1, &op);
		if (rc)
			goto out;
		halo_expr_t *e;
		rc = parse_step(&c, op, names, &e);
		if (rc)
			goto out;
		halo_expr_set_name(e, c.step);
		json_object_set_new(names, c.step, json_integer(e->id));
	}
	/* A PSF is an input too: no step may write over it. */
	for (int k = 0; k < halo_graph_count(c.g); k++) {
		const halo_expr_t *m = halo_graph_node(c.g, k);
		for (int j = 0; m->psf_path && j < halo_graph_count(c.g); j++) {
			const halo_expr_t *e = halo_graph_node(c.g, j);
			if (e->op == HALO_OP_STORE && e->path &&
			    (halo_path_within(e->path, m->psf_path) ||
			     halo_path_within(m->psf_path, e->path))) {
				c.step = m->name;
				rc = fail(&c, HALO_EINVAL, "step \"%s\" writes %s, which would change this "
					  "step's psf", e->name, e->path);
				goto out;
			}
		}
	}
out:
	json_decref(names);
	json_decref(root);
	if (rc) {
		halo_graph_free(c.g);
		return rc;
	}
	*out = c.g;
	return HALO_OK;
}

const char **halo_pipeline_paths(const char *file, const halo_graph_t *g)
{
	int n = halo_graph_count(g), k = 0;
	const char **paths = malloc((size_t)(3 * n + 2) * sizeof *paths);
	if (!paths)
		return NULL;
	paths[k++] = file;
	for (int i = 0; i < n; i++) {
		const halo_expr_t *e = halo_graph_node(g, i);
		if (e->reader)
			paths[k++] = halo_reader_path(e->reader);
		if (e->path)
			paths[k++] = e->path;
		if (e->psf_path)
			paths[k++] = e->psf_path;
	}
	paths[k] = NULL;
	return paths;
}
