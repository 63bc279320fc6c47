/* The compressors of Zarr chunks: blosc (c-blosc), zlib and gzip (zlib),
 * zstd (libzstd), lz4 (liblz4), lzma (liblzma), bz2 (libbz2), each framed
 * as numcodecs and the Zarr v3 codecs frame it,
 * so that a chunk python zarr wrote decodes here and the reverse. Every
 * call is thread-safe: nothing is shared between calls. */
#ifndef HALO_IO_CODEC_H
#define HALO_IO_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "halo.h"

typedef enum {
	HALO_CODEC_NONE, HALO_CODEC_BLOSC, HALO_CODEC_ZLIB, HALO_CODEC_GZIP, HALO_CODEC_ZSTD,
	HALO_CODEC_LZ4, HALO_CODEC_LZMA, HALO_CODEC_BZ2, HALO_CODEC_COUNT
} halo_codec_id_t;

typedef struct halo_codec {
	halo_codec_id_t id;
	char cname[16];  /* blosc: lz4, lz4hc, blosclz, zstd, zlib */
	int clevel;      /* blosc, zlib, gzip: 0..9; zstd: its own levels;
			    lz4: its acceleration (1 and up); lzma: its preset
			    0..9; bz2: 1..9 */
	int shuffle;     /* blosc: 0 none, 1 byte, 2 bit */
	int blocksize;   /* blosc: 0 automatic */
	int format;      /* lzma: python's lzma.FORMAT_XZ (1) or FORMAT_ALONE (2);
			    read, FORMAT_AUTO (0) too */
	int check;       /* lzma: python's lzma.CHECK_*, -1 the format's default */
	int extreme;     /* lzma: the preset has lzma.PRESET_EXTREME */
} halo_codec_t;

/* What halo writes unless told otherwise: zarr-python 2's default. */
#define HALO_CODEC_DEFAULT ((halo_codec_t){.id = HALO_CODEC_BLOSC, .cname = "lz4", .clevel = 5, \
					   .shuffle = 1})

/* What halo_codec_parse takes, for messages. */
#define HALO_CODEC_NAMES "none, lz4, lz4hc, blosclz, zstd, zlib (blosc), gzip, lzma, bz2"

/* Sets codec from a name given by the user (HALO_CODEC_NAMES). A codec of
 * another kind than before gets level 5; blosc keeps its shuffle. */
int halo_codec_parse(const char *s, halo_codec_t *codec, halo_error_t *err);

/* numcodecs' id: "blosc", "zlib", "gzip", "zstd", "lz4", "lzma", "bz2";
 * NULL for none. */
const char *halo_codec_id_name(halo_codec_id_t id);

/* The name numcodecs gives clevel for a non-blosc codec: "level", lz4's
 * "acceleration" or lzma's "preset". */
const char *halo_codec_level_key(halo_codec_id_t id);

/* numcodecs' config of codec, {"id": "blosc", "cname": ...}, as .zarray
 * holds it; null for none. */
json_t *halo_codec_config(const halo_codec_t *codec);

/* level within the levels of zlib and gzip (-1..9), zstd, lzma (0..9) or
 * bz2 (1..9), or lz4's accelerations (1..65537). */
int halo_codec_level_clamp(halo_codec_id_t id, long long level);

/* HALO_OK when c-blosc knows this compressor name. */
int halo_codec_blosc_cname_ok(const char *cname);

/* The most bytes nbytes can encode to (a file larger than this is not one
 * of codec's chunks of nbytes). */
size_t halo_codec_bound(const halo_codec_t *codec, size_t nbytes);

/* Decodes len bytes of src (codec is not none) into exactly nbytes at dst; anything else (a
 * corrupt or truncated chunk, one of another size) is an error naming
 * file. */
int halo_codec_decode(const halo_codec_t *codec, const void *src, size_t len, void *dst,
		      size_t nbytes, const char *file, halo_error_t *err);

/* Encodes nbytes of elsize-byte elements at src (codec is not none) into dst, which holds
 * halo_codec_bound() bytes; *len is the encoded size. */
int halo_codec_encode(const halo_codec_t *codec, size_t elsize, const void *src, size_t nbytes,
		      void *dst, size_t *len, const char *file, halo_error_t *err);

/* The CRC32C (Castagnoli) of len bytes, as Zarr v3's crc32c codec and
 * iSCSI define it. */
uint32_t halo_codec_crc32c(const void *data, size_t len);

/* Checks the CRC32C that ends *len bytes of data (Zarr v3's crc32c codec)
 * and takes its 4 bytes off *len; a mismatch is an error naming file. */
int halo_codec_crc32c_check(const void *data, size_t *len, const char *file, halo_error_t *err);

/* Blosc threads for the chunks the calling thread encodes or decodes from
 * now on (default 1): a caller whose cores would otherwise idle lends them
 * to one large chunk. The other codecs use one thread. */
void halo_codec_threads(int n);

#endif
