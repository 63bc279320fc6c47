/* Zarr array metadata: parsing .zarray (v2) and zarr.json (v3), writing
 * .zarray. Every rejection names the file and the field, because a user
 * facing "unsupported array" cannot tell which of a dozen fields to fix. */
#include "config.h"
#include "io/zarr_private.h"
#include "io/json.h"
#include "util/dtype_scalar.h"
#include "util/util.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int field_error(halo_error_t *err, const char *file, const char *field,
		       const char *problem)
{
	return halo_error_set(err, HALO_EFORMAT, "%s: field '%s' %s", file, field, problem);
}

static int parse_int_list(const json_t *arr, const char *file, const char *field,
			  int64_t *out, int *n, int min_value, halo_error_t *err)
{
	if (!json_is_array(arr))
		return field_error(err, file, field, arr ? "is not a list" : "is missing");
	size_t len = json_array_size(arr);
	if (len > HALO_MAXDIM)
		return field_error(err, file, field, "has too many dimensions (at most 8)");
	for (size_t i = 0; i < len; i++) {
		const json_t *v = json_array_get(arr, i);
		if (!json_is_integer(v) || json_integer_value(v) < min_value)
			return field_error(err, file, field, min_value > 0
					   ? "must hold positive integers"
					   : "must hold non-negative integers");
		out[i] = json_integer_value(v);
	}
	*n = (int)len;
	return HALO_OK;
}

/* Zarr v3 gives a float's fill as its IEEE 754 bits in hex, "0x7fc00000"
 * for a float32 NaN. Returns 0 when s is not that. */
static int parse_hex_float(const char *s, halo_zarr_meta_t *m)
{
	size_t digits = 2 * halo_dtype_size(m->dtype);
	if (strncmp(s, "0x", 2) != 0 || strlen(s + 2) != digits || strspn(s + 2,
	    "0123456789abcdefABCDEF") != digits || !halo_dtype_is_float(m->dtype))
		return 0;
	uint64_t bits = strtoull(s + 2, NULL, 16);
	if (digits == 4) {
		uint16_t b = (uint16_t)bits;
		m->fill.value = halo_half_get(&b, 0);
	} else if (digits == 8) {
		uint32_t b = (uint32_t)bits;
		float f;
		memcpy(&f, &b, sizeof f);
		m->fill.value = f;
	} else {
		double d;
		memcpy(&d, &bits, sizeof d);
		m->fill.value = d;
	}
	return 1;
}

/* A 64-bit integer type's fill exactly, from a JSON integer or digits
 * beyond int64 (marked, io/json.h): 1, or -1 where it is out of the
 * type's range; 0 where v is no integer literal. */
static int exact_int(const json_t *v, halo_dtype_kind_t kind, int64_t *bits)
{
	if (json_is_integer(v)) {
		*bits = json_integer_value(v);
		return kind != HALO_U8 || *bits >= 0 ? 1 : -1;
	}
	const char *tok = halo_json_marked_token(v);
	const char *digits = tok && *tok == '-' ? tok + 1 : tok;
	if (!tok || !*digits || strspn(digits, "0123456789") != strlen(digits))
		return 0;
	if (kind != HALO_U8 || digits != tok)
		return -1; /* a marked integer is beyond int64 */
	errno = 0;
	*bits = (int64_t)strtoull(tok, NULL, 10);
	return errno == 0 ? 1 : -1;
}

static int parse_fill(const json_t *v, const char *file, halo_zarr_meta_t *m,
		      halo_error_t *err)
{
	double *f = &m->fill.value;
	m->fill_null = 0;
	if (!v || json_is_null(v)) {
		*f = 0;
		m->fill_null = 1;
	} else if (json_is_number(v)) {
		*f = json_number_value(v);
	} else if (json_is_boolean(v)) {
		*f = json_is_true(v);
	} else if (halo_json_marked_number(v, f)) {
		/* a bare NaN or Infinity, as python's json writes them, or
		 * a number beyond int64 or double */
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		if (strcmp(s, "NaN") == 0)
			*f = NAN;
		else if (strcmp(s, "Infinity") == 0)
			*f = INFINITY;
		else if (strcmp(s, "-Infinity") == 0)
			*f = -INFINITY;
		else if (!parse_hex_float(s, m))
			return field_error(err, file, "fill_value", "is not a number");
	} else {
		return field_error(err, file, "fill_value", "is not a number");
	}
	if (halo_dtype_is_float(m->dtype))
		return HALO_OK;
	/* An integer type's fill must be one of its values: rounding 1.5 or
	 * saturating -5 would fill missing chunks with a value the file does
	 * not hold. A 64-bit type's is taken exactly, past a double's 2^53. */
	halo_dtype_kind_t k = m->dtype.kind;
	int wide = k == HALO_I8 || k == HALO_U8, exact = wide ? exact_int(v, k, &m->fill.bits) : 0;
	if (exact > 0)
		return HALO_OK;
	/* Otherwise a float: 2^63 and 2^64 saturate to the type's largest
	 * values, which a double rounds to them, so they are kept out here. */
	double top = k == HALO_U8 ? 18446744073709551616.0 : 9223372036854775808.0;
	if (exact < 0 || halo_dtype_cast(*f, k) != *f || (wide && *f >= top))
		return halo_error_set(err, HALO_EFORMAT, "%s: field 'fill_value' is not a value of "
				      "type %s", file, halo_dtype_name(m->dtype));
	m->fill = halo_fill_convert((halo_fill_t){*f, 0}, HALO_F8, k);
	return HALO_OK;
}

static int parse_blosc(const json_t *c, const char *file, const char *field,
		       int v3, halo_codec_t *codec, halo_error_t *err)
{
	/* What is left out takes numcodecs' defaults (lz4, 5, byte shuffle),
	 * as python reads it; decoding needs none of it. */
	const json_t *name = json_object_get(c, "cname");
	const char *cname = name ? json_string_value(name) : "lz4";
	const json_t *clevel = json_object_get(c, "clevel");
	const json_t *shuffle = json_object_get(c, "shuffle");
	const json_t *blocksize = json_object_get(c, "blocksize");
	codec->id = HALO_CODEC_BLOSC;
	if (!cname || halo_codec_blosc_cname_ok(cname) != HALO_OK)
		return halo_error_set(err, HALO_EUNSUPPORTED,
				      "%s: field '%s' has unsupported blosc cname '%s'", file,
				      field, cname ? cname : "(missing)");
	snprintf(codec->cname, sizeof codec->cname, "%s", cname);
	if (clevel && (!json_is_integer(clevel) || json_integer_value(clevel) < 0 ||
		       json_integer_value(clevel) > 9))
		return field_error(err, file, field, "needs clevel 0..9");
	codec->clevel = clevel ? (int)json_integer_value(clevel) : 5;
	if (!shuffle) {
		codec->shuffle = 1;
	} else if (v3 && json_is_string(shuffle)) {
		const char *s = json_string_value(shuffle);
		codec->shuffle = strcmp(s, "noshuffle") == 0 ? 0
			       : strcmp(s, "shuffle") == 0 ? 1
			       : strcmp(s, "bitshuffle") == 0 ? 2 : -2;
	} else {
		json_int_t v = json_is_integer(shuffle) ? json_integer_value(shuffle) : -2;
		codec->shuffle = v >= -1 && v <= 2 ? (int)v : -2;
	}
	/* numcodecs' -1 (AUTOSHUFFLE) means bit shuffle for 1-byte types and
	 * byte shuffle otherwise; it is resolved when the typesize is known. */
	if (codec->shuffle < -1 || codec->shuffle > 2)
		return field_error(err, file, field, "has an unknown shuffle");
	json_int_t bs = json_is_integer(blocksize) ? json_integer_value(blocksize) : 0;
	if (bs < 0 || bs > INT32_MAX)
		return field_error(err, file, field, "has a blocksize out of range");
	codec->blocksize = (int)bs;
	return HALO_OK;
}

/* numcodecs' Zlib, GZip, Zstd, LZ4 and BZ2, and v3's gzip and zstd. Decoding
 * takes no level (lz4: acceleration), so whatever python reads is read
 * (no level, 1.0, "1", 99); an output that keeps the codec takes the
 * level clamped to the codec's range, else numcodecs' default, 1. zstd's
 * checksum flag is in its frames too. */
static void parse_level(const json_t *c, halo_codec_id_t id, halo_codec_t *codec)
{
	const json_t *level = json_object_get(c, halo_codec_level_key(id));
	codec->id = id;
	codec->clevel = json_is_integer(level) ? halo_codec_level_clamp(id, json_integer_value(level))
					       : 1;
}

/* numcodecs' LZMA: python's lzma.compress arguments. A raw stream (format
 * 3) needs its filter chain spelled out, which halo does not read; the
 * filters of an .xz stream are in the stream, and an output that keeps
 * the codec is written with the preset alone. */
static int parse_lzma(const json_t *c, const char *file, const char *field, halo_codec_t *codec,
		      halo_error_t *err)
{
	const json_t *format = json_object_get(c, "format"), *check = json_object_get(c, "check");
	json_int_t f = format ? (json_is_integer(format) ? json_integer_value(format) : -1) : 1;
	json_int_t k = check ? (json_is_integer(check) ? json_integer_value(check) : -2) : -1;
	if (f == 3)
		return halo_error_set(err, HALO_EUNSUPPORTED, "%s: field '%s': lzma's raw format (3) "
				      "is not supported (1, .xz, and 2, .lzma, are)", file, field);
	if (f < 0 || f > 2)
		return field_error(err, file, field, "has an lzma format other than 0, 1 or 2");
	/* python's lzma.CHECK_NONE, _CRC32, _CRC64, _SHA256, as liblzma numbers them */
	if (k != -1 && k != 0 && k != 1 && k != 4 && k != 10)
		return field_error(err, file, field, "has an lzma check other than -1, 0, 1, 4 or 10");
	const json_t *preset = json_object_get(c, "preset");
	codec->id = HALO_CODEC_LZMA;
	codec->format = (int)f;
	codec->check = (int)k;
	/* python's default preset, 6, and lzma.PRESET_EXTREME's flag */
	json_int_t pv = json_is_integer(preset) ? json_integer_value(preset) : 6;
	codec->clevel = halo_codec_level_clamp(HALO_CODEC_LZMA, pv & 0x1f);
	codec->extreme = (pv & 0x80000000) != 0;
	return HALO_OK;
}

/* A compressor's configuration: blosc's, lzma's, or another's level. */
static int parse_codec(const json_t *c, const char *file, const char *field, int v3,
		       halo_codec_id_t id, halo_codec_t *codec, halo_error_t *err)
{
	if (id == HALO_CODEC_BLOSC)
		return parse_blosc(c, file, field, v3, codec, err);
	if (id == HALO_CODEC_LZMA)
		return parse_lzma(c, file, field, codec, err);
	parse_level(c, id, codec);
	return HALO_OK;
}

/* The compressor named id (numcodecs' id, v3's codec name), or NONE. */
static halo_codec_id_t codec_named(const char *id)
{
	for (halo_codec_id_t c = HALO_CODEC_BLOSC; c < HALO_CODEC_COUNT; c++)
		if (id && strcmp(id, halo_codec_id_name(c)) == 0)
			return c;
	return HALO_CODEC_NONE;
}

/* v3's bytes codec: the byte order of elements of size bytes, which
 * one-byte types may leave out. */
static int parse_endian(const json_t *conf, const char *file, const char *field, size_t size,
			int *big, halo_error_t *err)
{
	const json_t *ev = json_object_get(conf, "endian");
	const char *endian = json_string_value(ev);
	if (ev && (!endian || (strcmp(endian, "big") && strcmp(endian, "little"))))
		return field_error(err, file, field, "is not \"little\" or \"big\"");
	if (!ev && size > 1)
		return field_error(err, file, field, "is missing (a type of several bytes needs it)");
	*big = endian && strcmp(endian, "big") == 0 && size > 1;
	return HALO_OK;
}

/* v3's transpose codec: its order composed with those of the transposes
 * before it. zarr-python's first v3 releases wrote "C" or "F". */
static int parse_transpose(const json_t *conf, const char *file, halo_zarr_meta_t *m,
			   halo_error_t *err)
{
	const json_t *o = json_object_get(conf, "order");
	const char *s = json_string_value(o);
	int n = m->ndim, t[HALO_MAXDIM], seen[HALO_MAXDIM] = {0}, prev[HALO_MAXDIM];
	if (s && (!strcmp(s, "C") || !strcmp(s, "F"))) {
		for (int i = 0; i < n; i++)
			t[i] = s[0] == 'C' ? i : n - 1 - i;
	} else {
		if (!json_is_array(o) || json_array_size(o) != (size_t)n)
			return field_error(err, file, "codecs.transpose.order",
					   "is not a permutation of the array's axes");
		for (int i = 0; i < n; i++) {
			const json_t *v = json_array_get(o, (size_t)i);
			json_int_t a = json_is_integer(v) ? json_integer_value(v) : -1;
			if (a < 0 || a >= n || seen[a]++)
				return field_error(err, file, "codecs.transpose.order",
						   "is not a permutation of the array's axes");
			t[i] = (int)a;
		}
	}
	memcpy(prev, m->order, sizeof prev);
	for (int i = 0; i < n; i++)
		m->order[i] = prev[t[i]];
	return HALO_OK;
}

static int parse_chain(const json_t *codecs, const char *file, const char *field, int outer,
		       halo_zarr_meta_t *m, halo_error_t *err);

/* sharding_indexed: the chunk grid's chunks become shards of inner
 * chunks, which halo reads one at a time. Its index must be of a size
 * known beforehand: bytes, then optionally crc32c. */
static int parse_sharding(const json_t *conf, const char *file, halo_zarr_meta_t *m,
			  halo_error_t *err)
{
	int n, rc;
	int64_t inner[HALO_MAXDIM];
	if ((rc = parse_int_list(json_object_get(conf, "chunk_shape"), file,
				 "codecs.sharding_indexed.chunk_shape", inner, &n, 1, err)))
		return rc;
	if (n != m->ndim)
		return field_error(err, file, "codecs.sharding_indexed.chunk_shape",
				   "has a different length than 'shape'");
	for (int d = 0; d < n; d++)
		if (m->chunks[d] % inner[d])
			return field_error(err, file, "codecs.sharding_indexed.chunk_shape",
					   "does not divide the shard shape (chunk_grid's chunk_shape)");
	m->shard.on = 1;
	memcpy(m->shard.shape, m->chunks, sizeof m->shard.shape);
	memcpy(m->chunks, inner, sizeof m->chunks);
	const json_t *lv = json_object_get(conf, "index_location");
	const char *loc = json_string_value(lv);
	if (lv && (!loc || (strcmp(loc, "start") && strcmp(loc, "end"))))
		return field_error(err, file, "codecs.sharding_indexed.index_location",
				   "is not \"start\" or \"end\"");
	m->shard.index_at_start = loc && !strcmp(loc, "start");
	const json_t *ic = json_object_get(conf, "index_codecs");
	size_t nic = json_array_size(ic);
	const char *first = json_string_value(json_object_get(json_array_get(ic, 0), "name"));
	const char *second = json_string_value(json_object_get(json_array_get(ic, 1), "name"));
	if (!first || strcmp(first, "bytes") || nic > 2 || (nic == 2 && (!second ||
	    strcmp(second, "crc32c"))))
		return halo_error_set(err, HALO_EUNSUPPORTED, "%s: field 'codecs.sharding_indexed."
				      "index_codecs' is not supported (bytes, then optionally crc32c)",
				      file);
	if ((rc = parse_endian(json_object_get(json_array_get(ic, 0), "configuration"), file,
			       "codecs.sharding_indexed.index_codecs.bytes.endian", 8,
			       &m->shard.index_big_endian, err)))
		return rc;
	m->shard.index_crc32c = nic == 2;
	return parse_chain(json_object_get(conf, "codecs"), file, "codecs.sharding_indexed.codecs",
			   0, m, err);
}

/* A v3 codec list, in the order its codecs apply on writing: transposes,
 * one array-to-bytes codec (bytes, or at the top sharding_indexed, with
 * its own list inside), one compressor, crc32c. */
static int parse_chain(const json_t *codecs, const char *file, const char *field, int outer,
		       halo_zarr_meta_t *m, halo_error_t *err)
{
	if (!json_is_array(codecs) || json_array_size(codecs) == 0)
		return field_error(err, file, field, "is missing or empty");
	enum { ARRAY, BYTES, COMPRESSED, DONE } stage = ARRAY;
	int rc;
	m->codec.id = HALO_CODEC_NONE;
	for (size_t i = 0; i < json_array_size(codecs); i++) {
		const json_t *c = json_array_get(codecs, i);
		const char *name = json_string_value(json_object_get(c, "name"));
		const json_t *conf = json_object_get(c, "configuration");
		/* zarr-python 3 names numcodecs' own "numcodecs.zlib" and so on */
		int numcodecs = name && !strncmp(name, "numcodecs.", 10);
		halo_codec_id_t cid = codec_named(numcodecs ? name + 10 : name);
		if (!name) {
			return field_error(err, file, field, "holds a codec without a name");
		} else if (stage == ARRAY && !strcmp(name, "transpose")) {
			if ((rc = parse_transpose(conf, file, m, err)))
				return rc;
		} else if (stage == ARRAY && !strcmp(name, "bytes")) {
			int big;
			if ((rc = parse_endian(conf, file, "codecs.bytes.endian",
					       halo_dtype_size(m->dtype), &big, err)))
				return rc;
			m->dtype.big_endian = big;
			stage = BYTES;
		} else if (stage == ARRAY && outer && i == 0 && !strcmp(name, "sharding_indexed")) {
			if ((rc = parse_sharding(conf, file, m, err)))
				return rc;
			stage = DONE;
		} else if (stage == BYTES && (numcodecs ? cid != HALO_CODEC_NONE
						    : cid == HALO_CODEC_BLOSC || cid == HALO_CODEC_GZIP ||
						      cid == HALO_CODEC_ZSTD)) {
			if ((rc = parse_codec(conf, file, "codecs.blosc", 1, cid, &m->codec, err)))
				return rc;
			stage = COMPRESSED;
		} else if ((stage == BYTES || stage == COMPRESSED) && !strcmp(name, "crc32c")) {
			m->crc32c = 1;
			stage = DONE;
		} else {
			return halo_error_set(err, HALO_EUNSUPPORTED,
					      "%s: codec '%s' is not supported here (field '%s' takes "
					      "transposes, bytes, one of blosc, gzip, zstd or "
					      "numcodecs' zlib, lz4, lzma, bz2, then crc32c%s)", file,
					      name, field,
					      outer ? "; or sharding_indexed alone" : "");
		}
	}
	if (stage == ARRAY)
		return field_error(err, file, field, "has no 'bytes' codec");
	return HALO_OK;
}

int halo__zarr_check_sizes(halo_zarr_meta_t *m, const char *file, halo_error_t *err)
{
	if (m->ndim == 0)
		return halo_error_set(err, HALO_EUNSUPPORTED, "%s: 0-dimensional arrays are not supported", file);
	/* In floating point, so that no product of huge sizes wraps around. */
	double bytes = (double)halo_dtype_size(m->dtype), count = 1;
	for (int d = 0; d < m->ndim; d++) {
		bytes *= (double)m->chunks[d];
		count *= ceil((double)m->shape[d] / (double)m->chunks[d]);
	}
	char shown[32], limit[32];
	halo__bytes(HALO_ZARR_MAX_CHUNK_BYTES, limit, sizeof limit);
	if (bytes > (double)HALO_ZARR_MAX_CHUNK_BYTES)
		return halo_error_set(err, HALO_EUNSUPPORTED,
				      "%s: a chunk holds %s, more than blosc's limit of %s", file,
				      halo__bytes_f(bytes, shown, sizeof shown), limit);
	/* Each chunk costs the planner a few bytes: beyond this, memory. */
	if (count > (double)HALO_MAX_CHUNKS)
		return halo_error_set(err, HALO_EUNSUPPORTED,
				      "%s: %.3g chunks, more than halo's limit of %lld; the chunks are "
				      "too small for the shape", file, count, (long long)HALO_MAX_CHUNKS);
	/* A shard's index has 16 bytes per inner chunk, read whole. */
	double inner = 1;
	for (int d = 0; m->shard.on && d < m->ndim; d++)
		inner *= (double)(m->shard.shape[d] / m->chunks[d]);
	if (inner * 16 > (double)HALO_ZARR_MAX_CHUNK_BYTES)
		return halo_error_set(err, HALO_EUNSUPPORTED,
				      "%s: a shard holds %.3g chunks, whose index is more than "
				      "halo's limit of %s", file, inner, limit);
	if (m->codec.shuffle == -1)
		m->codec.shuffle = halo_dtype_size(m->dtype) == 1 ? 2 : 1;
	m->transposed = 0;
	for (int i = 0; i < m->ndim; i++)
		m->transposed |= m->order[i] != i;
	return HALO_OK;
}

int halo__zarr_parse_v2(const json_t *root, const char *file, halo_zarr_meta_t *m,
			halo_error_t *err)
{
	int rc, n;
	if (!json_is_object(root))
		return halo_error_set(err, HALO_EFORMAT, "%s: not a JSON object", file);
	const json_t *fmt = json_object_get(root, "zarr_format");
	if (!json_is_integer(fmt) || json_integer_value(fmt) != 2)
		return field_error(err, file, "zarr_format", "is not 2");
	m->zarr_format = 2;
	if ((rc = parse_int_list(json_object_get(root, "shape"), file, "shape", m->shape,
				 &m->ndim, 0, err)))
		return rc;
	if ((rc = parse_int_list(json_object_get(root, "chunks"), file, "chunks", m->chunks, &n,
				 1, err)))
		return rc;
	if (n != m->ndim)
		return field_error(err, file, "chunks", "has a different length than 'shape'");
	const char *dtype = json_string_value(json_object_get(root, "dtype"));
	if (!dtype)
		return field_error(err, file, "dtype", json_object_get(root, "dtype")
				   ? "is not a simple type string" : "is missing");
	char what[1100];
	snprintf(what, sizeof what, "%s: field 'dtype'", file);
	if ((rc = halo_dtype_parse(dtype, what, &m->dtype, err)))
		return rc;
	const json_t *ov = json_object_get(root, "order");
	const char *order = json_string_value(ov);
	if (!order)
		return field_error(err, file, "order", ov ? "is not \"C\" or \"F\"" : "is missing");
	if (strcmp(order, "C") != 0 && strcmp(order, "F") != 0)
		return field_error(err, file, "order", "is not \"C\" or \"F\"");
	/* F order: a chunk's first axis varies fastest */
	for (int i = 0; i < m->ndim; i++)
		m->order[i] = order[0] == 'F' ? m->ndim - 1 - i : i;
	/* compressor, filters and fill_value may be null but not missing, as
	 * python zarr requires: a .zarray without them was not written by a
	 * Zarr library, and its chunks may not be what a default says. */
	static const char *const required[] = {"compressor", "filters", "fill_value"};
	for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
		if (!json_object_get(root, required[i]))
			return field_error(err, file, required[i], "is missing (null if none)");
	const json_t *filters = json_object_get(root, "filters");
	if (!json_is_null(filters)) {
		if (!json_is_array(filters))
			return field_error(err, file, "filters", "is not a list");
		if (json_array_size(filters) > 0) {
			const char *id = json_string_value(json_object_get(json_array_get(filters, 0), "id"));
			return halo_error_set(err, HALO_EUNSUPPORTED,
					      "%s: filter '%s' is not supported (field 'filters')",
					      file, id ? id : "?");
		}
	}
	const json_t *comp = json_object_get(root, "compressor");
	if (json_is_null(comp)) {
		m->codec.id = HALO_CODEC_NONE;
	} else {
		const char *id = json_string_value(json_object_get(comp, "id"));
		if (!json_is_object(comp))
			return field_error(err, file, "compressor", "is not an object or null");
		if (!id)
			return field_error(err, file, "compressor", "has no 'id' string");
		halo_codec_id_t cid = codec_named(id);
		if (cid == HALO_CODEC_NONE)
			return halo_error_set(err, HALO_EUNSUPPORTED,
					      "%s: compressor '%s' is not supported (blosc, zlib, gzip, "
					      "zstd, lz4, lzma, bz2)", file, id);
		if ((rc = parse_codec(comp, file, "compressor", 0, cid, &m->codec, err)))
			return rc;
	}
	const json_t *sep = json_object_get(root, "dimension_separator");
	m->separator = '.';
	if (sep && !json_is_null(sep)) {
		const char *s = json_string_value(sep);
		if (!s || (strcmp(s, ".") != 0 && strcmp(s, "/") != 0))
			return field_error(err, file, "dimension_separator", "is not '.' or '/'");
		m->separator = s[0];
	}
	if ((rc = parse_fill(json_object_get(root, "fill_value"), file, m, err)))
		return rc;
	return halo__zarr_check_sizes(m, file, err);
}

int halo__zarr_parse_v3(const json_t *root, const char *file, halo_zarr_meta_t *m,
			halo_error_t *err)
{
	int rc, n;
	if (!json_is_object(root))
		return halo_error_set(err, HALO_EFORMAT, "%s: not a JSON object", file);
	const json_t *fmt = json_object_get(root, "zarr_format");
	if (!json_is_integer(fmt) || json_integer_value(fmt) != 3)
		return field_error(err, file, "zarr_format", "is not 3");
	m->zarr_format = 3;
	const char *node = json_string_value(json_object_get(root, "node_type"));
	if (!node || strcmp(node, "array") != 0)
		return halo_error_set(err, HALO_EFORMAT, "%s: node_type is '%s', not an array",
				      file, node ? node : "(missing)");
	if ((rc = parse_int_list(json_object_get(root, "shape"), file, "shape", m->shape,
				 &m->ndim, 0, err)))
		return rc;
	const json_t *grid = json_object_get(root, "chunk_grid");
	const char *gname = json_string_value(json_object_get(grid, "name"));
	if (!gname || strcmp(gname, "regular") != 0)
		return halo_error_set(err, HALO_EUNSUPPORTED,
				      "%s: chunk_grid '%s' is not supported (only regular)", file,
				      gname ? gname : "(missing)");
	if ((rc = parse_int_list(json_object_get(json_object_get(grid, "configuration"),
						 "chunk_shape"),
				 file, "chunk_grid.configuration.chunk_shape", m->chunks, &n, 1,
				 err)))
		return rc;
	if (n != m->ndim)
		return field_error(err, file, "chunk_shape", "has a different length than 'shape'");
	const char *dtype = json_string_value(json_object_get(root, "data_type"));
	char what[1100];
	snprintf(what, sizeof what, "%s: field 'data_type'", file);
	if (!dtype)
		return field_error(err, file, "data_type", "is missing");
	if ((rc = halo_dtype_parse(dtype, what, &m->dtype, err)))
		return rc;

	const json_t *enc = json_object_get(root, "chunk_key_encoding");
	const char *ename = json_string_value(json_object_get(enc, "name"));
	if (!ename)
		return field_error(err, file, "chunk_key_encoding", "is missing or has no name");
	const json_t *sepv = json_object_get(json_object_get(enc, "configuration"), "separator");
	const char *esep = json_string_value(sepv);
	if (sepv && (!esep || strlen(esep) != 1))
		return field_error(err, file, "chunk_key_encoding", "separator is not '.' or '/'");
	if (strcmp(ename, "v2") == 0) {
		m->v3_default_keys = 0;
		m->separator = esep ? esep[0] : '.';
	} else if (strcmp(ename, "default") == 0) {
		m->v3_default_keys = 1;
		m->separator = esep ? esep[0] : '/';
	} else {
		return halo_error_set(err, HALO_EUNSUPPORTED,
				      "%s: chunk_key_encoding '%s' is not supported", file, ename);
	}
	if (m->separator != '.' && m->separator != '/')
		return field_error(err, file, "chunk_key_encoding", "separator is not '.' or '/'");

	const json_t *st = json_object_get(root, "storage_transformers");
	if (st && !json_is_array(st))
		return field_error(err, file, "storage_transformers", "is not a list");
	if (json_array_size(st) > 0)
		return halo_error_set(err, HALO_EUNSUPPORTED, "%s: storage_transformers are not "
				      "supported", file);
	for (int i = 0; i < m->ndim; i++)
		m->order[i] = i;
	if ((rc = parse_chain(json_object_get(root, "codecs"), file, "codecs", 1, m, err)))
		return rc;
	/* The v3 spec: a member not known here must be refused unless it says
	 * it may be ignored ({"must_understand": false}). */
	static const char *const known[] = {"zarr_format", "node_type", "shape", "data_type",
		"chunk_grid", "chunk_key_encoding", "fill_value", "codecs", "attributes",
		"storage_transformers", "dimension_names"};
	const char *key;
	const json_t *val;
	json_object_foreach((json_t *)root, key, val) {
		size_t k = 0;
		while (k < sizeof known / sizeof known[0] && strcmp(key, known[k]) != 0)
			k++;
		if (k == sizeof known / sizeof known[0] &&
		    !json_is_false(json_object_get(val, "must_understand")))
			return halo_error_set(err, HALO_EUNSUPPORTED, "%s: field '%s' is an extension "
					      "halo does not understand", file, key);
	}
	/* null as a whole, as zarr-python accepts (and icechunk writes): none */
	const json_t *names = json_object_get(root, "dimension_names");
	if (names && !json_is_null(names)) {
		int ok = json_is_array(names) && json_array_size(names) == (size_t)m->ndim;
		for (size_t i = 0; ok && i < json_array_size(names); i++)
			ok = json_is_string(json_array_get(names, i)) ||
			     json_is_null(json_array_get(names, i));
		if (!ok)
			return field_error(err, file, "dimension_names",
					   "is not a list of a name (or null) per axis");
	}
	const json_t *fill = json_object_get(root, "fill_value");
	if (!fill || json_is_null(fill))
		return field_error(err, file, "fill_value", "is missing (Zarr v3 has no null fill)");
	if ((rc = parse_fill(fill, file, m, err)))
		return rc;
	return halo__zarr_check_sizes(m, file, err);
}

json_t *halo_zarr_fill_json(halo_fill_t fill, halo_dtype_t dtype)
{
	double v = fill.value;
	if (!halo_dtype_is_float(dtype) && dtype.kind == HALO_B1)
		return json_boolean(fill.bits != 0);
	if (!halo_dtype_is_float(dtype) && dtype.kind == HALO_U8 && fill.bits < 0) {
		char digits[24]; /* beyond jansson's integers: written bare */
		snprintf(digits, sizeof digits, "%llu", (unsigned long long)(uint64_t)fill.bits);
		return halo_json_marked(digits);
	}
	if (!halo_dtype_is_float(dtype))
		return json_integer(fill.bits);
	if (isnan(v))
		return json_string("NaN");
	if (isinf(v))
		return json_string(v > 0 ? "Infinity" : "-Infinity");
	return json_real(v);
}

json_t *halo__zarr_v2_json(const halo_zarr_meta_t *m)
{
	char dt[4];
	halo_dtype_zarr_string(m->dtype, dt);
	json_t *shape = json_array(), *chunks = json_array();
	for (int d = 0; d < m->ndim; d++) {
		json_array_append_new(shape, json_integer(m->shape[d]));
		json_array_append_new(chunks, json_integer(m->chunks[d]));
	}
	json_t *comp = halo_codec_config(&m->codec);
	json_t *fill = m->fill_null ? json_null() : halo_zarr_fill_json(m->fill, m->dtype);
	char sep[2] = {m->separator, 0};
	return json_pack("{s:i, s:o, s:o, s:s, s:o, s:o, s:s, s:n, s:s}", "zarr_format", 2,
			 "shape", shape, "chunks", chunks, "dtype", dt, "compressor", comp,
			 "fill_value", fill, "order", "C", "filters", "dimension_separator", sep);
}

/* A compressor as a v3 codec: blosc's shuffle by name, with its typesize */
static json_t *v3_codec(const halo_codec_t *c, size_t elsize)
{
	static const char *const shuffles[] = {"noshuffle", "shuffle", "bitshuffle"};
	if (c->id == HALO_CODEC_BLOSC)
		return json_pack("{s:s, s:{s:s, s:i, s:s, s:i, s:i}}", "name", "blosc",
				 "configuration", "cname", c->cname, "clevel", c->clevel, "shuffle",
				 shuffles[c->shuffle], "typesize", (int)elsize, "blocksize",
				 c->blocksize);
	if (c->id == HALO_CODEC_ZSTD)
		return json_pack("{s:s, s:{s:i, s:b}}", "name", "zstd", "configuration", "level",
				 c->clevel, "checksum", 1);
	return json_pack("{s:s, s:{s:i}}", "name", "gzip", "configuration", "level", c->clevel);
}

json_t *halo__zarr_v3_json(const halo_zarr_meta_t *m)
{
	static const char *const axes[3] = {"z", "y", "x"};
	const int64_t *grid = m->shard.on ? m->shard.shape : m->chunks;
	json_t *shape = json_array(), *gridj = json_array(), *inner = json_array();
	json_t *names = json_array();
	for (int d = 0; d < m->ndim; d++) {
		json_array_append_new(shape, json_integer(m->shape[d]));
		json_array_append_new(gridj, json_integer(grid[d]));
		json_array_append_new(inner, json_integer(m->chunks[d]));
		json_array_append_new(names, d < m->ndim - 3 ? json_null()
							: json_string(axes[3 - m->ndim + d]));
	}
	json_t *codecs = json_pack("[{s:s, s:{s:s}}]", "name", "bytes", "configuration", "endian",
				   "little");
	if (m->codec.id != HALO_CODEC_NONE)
		json_array_append_new(codecs, v3_codec(&m->codec, halo_dtype_size(m->dtype)));
	if (m->shard.on)
		codecs = json_pack("[{s:s, s:{s:o, s:o, s:[{s:s, s:{s:s}}, {s:s}], s:s}}]", "name",
				   "sharding_indexed", "configuration", "chunk_shape", inner, "codecs",
				   codecs, "index_codecs", "name", "bytes", "configuration", "endian",
				   "little", "name", "crc32c", "index_location", "end");
	else
		json_decref(inner);
	return json_pack("{s:i, s:s, s:o, s:s, s:{s:s, s:{s:o}}, s:{s:s, s:{s:s}}, s:o, s:o, "
			 "s:o, s:o}", "zarr_format", 3, "node_type", "array", "shape", shape,
			 "data_type", halo_dtype_name(m->dtype), "chunk_grid", "name", "regular",
			 "configuration", "chunk_shape", gridj, "chunk_key_encoding", "name",
			 "default", "configuration", "separator", "/", "fill_value",
			 halo_zarr_fill_json(m->fill, m->dtype), "codecs", codecs, "attributes",
			 m->attrs ? halo_json_strict_copy(m->attrs) : json_object(), "dimension_names", names);
}

int halo_zarr_v3_codec_ok(const halo_codec_t *codec)
{
	return codec->id == HALO_CODEC_NONE || codec->id == HALO_CODEC_BLOSC ||
	       codec->id == HALO_CODEC_GZIP || codec->id == HALO_CODEC_ZSTD;
}
