/* Zarr arrays on the local filesystem: v2 read and write, v3 read.
 *
 * There is no usable C Zarr library in Debian, so this is Zarr on the
 * compression libraries (io/codec.h) and jansson, following what python
 * zarr 2.13 writes (no filters, "." or "/" chunk keys, edge chunks stored
 * full size) and the v3 specification (transpose, crc32c and
 * sharding_indexed codecs). A chunk is read or written whole, in native byte order, by any
 * thread at once: an open array holds no mutable state after opening.
 *
 * Writers create arrays inside a temporary output directory (io/outdir.h)
 * that is renamed into place when everything is written, so a failed or
 * interrupted run leaves no half-written output. */
#ifndef HALO_IO_ZARR_H
#define HALO_IO_ZARR_H

#include <stdint.h>

#include <jansson.h>

#include "halo.h"
#include "io/codec.h"
#include "util/dtype.h"

#define HALO_MAXDIM 8
/* The most chunks an array may have: the planner keeps a few bytes per
 * chunk, and past this a chunk grid is a mistake rather than a volume. */
#define HALO_MAX_CHUNKS ((int64_t)1 << 28)
/* The most bytes a chunk may hold: blosc and zlib keep sizes in 32-bit
 * ints. */
#define HALO_ZARR_MAX_CHUNK_BYTES ((uint64_t)INT32_MAX - 64)

typedef struct halo_zarr_meta {
	int zarr_format;              /* 2 or 3 */
	int ndim;
	int64_t shape[HALO_MAXDIM];
	int64_t chunks[HALO_MAXDIM];
	halo_dtype_t dtype;
	halo_codec_t codec;
	char separator;               /* '.' or '/' */
	int v3_default_keys;          /* v3 "default" encoding: keys start "c/" */
	/* A chunk's bytes hold its axes in this order, outermost first:
	 * order[i] is the array axis stored i-th (v2's "F" order, v3's
	 * transpose codec); transposed is 0 where it is 0, 1, 2, ... */
	int order[HALO_MAXDIM];
	int transposed;
	int crc32c;                   /* v3: a chunk's bytes end in their CRC32C */
	/* v3 sharding_indexed: the chunks above are stored shard[] at a
	 * time in one file, with an index of where each one is. */
	struct halo_zarr_shard {
		int on;
		int64_t shape[HALO_MAXDIM];
		int index_at_start;   /* else at the end */
		int index_big_endian;
		int index_crc32c;
	} shard;
	halo_fill_t fill;             /* fill_value; NaN allowed for floats */
	int fill_null;                /* fill_value was null (read as 0) */
	json_t *attrs;                /* .zattrs (v2) or attributes (v3); owned */
} halo_zarr_meta_t;

/* A fill value as zarr's JSON writes it: an integer for integer types,
 * "NaN", "Infinity" or "-Infinity" where JSON has no number. */
json_t *halo_zarr_fill_json(halo_fill_t fill, halo_dtype_t dtype);

typedef struct halo_zarr halo_zarr_t;

/* Opens an array for reading. path is an array directory (.zarray or
 * zarr.json with node_type array). Fails with one message naming path and
 * the field at fault. *out is owned by the caller (halo_zarr_close). */
int halo_zarr_open(const char *path, halo_zarr_t **out, halo_error_t *err);

/* Metadata of an open array; borrowed until halo_zarr_close. */
const halo_zarr_meta_t *halo_zarr_meta(const halo_zarr_t *z);
const char *halo_zarr_path(const halo_zarr_t *z);

/* Bytes of one whole chunk in memory. */
size_t halo_zarr_chunk_bytes(const halo_zarr_t *z);

/* Reads chunk idx[0..ndim) into buf (halo_zarr_chunk_bytes() bytes, native
 * byte order). A missing chunk file reads as the fill value. */
int halo_zarr_read_chunk(const halo_zarr_t *z, const int64_t *idx, void *buf,
			 halo_error_t *err);

/* Creates a new array directory at path (its parent must exist) and writes
 * its metadata: v2's .zarray, and meta->attrs as .zattrs when not NULL, or
 * v3's zarr.json (meta->zarr_format 3, optionally sharded). */
int halo_zarr_create(const char *path, const halo_zarr_meta_t *meta, halo_zarr_t **out,
		     halo_error_t *err);
/* Writes chunks into an array another process created (MPI ranks > 0):
 * nothing is written on disk here. */
int halo_zarr_attach(const char *path, const halo_zarr_meta_t *meta, halo_zarr_t **out,
		     halo_error_t *err);

/* Compresses and writes chunk idx from buf (native order, full chunk size:
 * the part beyond the array's edge should hold the fill value). Thread-safe
 * for distinct chunks. A sharded array is written a shard at a time: idx
 * and buf are a shard's, and its chunks wholly beyond the array's edge are
 * left out of it. */
int halo_zarr_write_chunk(const halo_zarr_t *z, const int64_t *idx, const void *buf,
			  halo_error_t *err);

void halo_zarr_close(halo_zarr_t *z);

/* Whether codec has a Zarr v3 codec: none, blosc, gzip, zstd. */
int halo_zarr_v3_codec_ok(const halo_codec_t *codec);

/* Fills meta with a v2 array description: given dtype, shape and chunks,
 * blosc lz4 with byte shuffle, "/" separator, fill 0. */
void halo_zarr_meta_init(halo_zarr_meta_t *meta, int ndim, const int64_t *shape,
			 const int64_t *chunks, halo_dtype_t dtype);

/* Shrinks chunks (3 axes) of elsize-byte elements until one holds at
 * most HALO_ZARR_MAX_CHUNK_BYTES, halving the largest axis, rounded up: a
 * computation's chunks stored in pieces blosc takes (an odd axis's last
 * piece then spans two computed chunks, which works, at the cost of one
 * more read). Returns 1 where they changed. */
int halo_zarr_chunks_fit(int64_t chunks[3], size_t elsize);

#endif
