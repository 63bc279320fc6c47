/* Chunk compressors (see codec.h). blosc's contexts (blosc_*_ctx) are used
 * so that any StarPU worker can encode or decode without the library's
 * global lock; halo parallelises across chunks, so each call uses one
 * blosc thread unless its caller lends it idle cores. zlib and zstd get a
 * fresh stream per chunk, which costs little beside coding megabytes
 * (zstd's highest levels excepted: see the README). */
#include "config.h"
#include "io/codec.h"

#include <blosc.h>
#include <bzlib.h>
#include <isa-l/crc.h>
#include <limits.h>
#include <lz4.h>
#include <lzma.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

static _Thread_local int codec_threads = 1;

void halo_codec_threads(int n)
{
	codec_threads = n > 1 ? n : 1;
}

static const char *const cnames[] = {"lz4", "lz4hc", "blosclz", "zstd", "zlib"};

int halo_codec_blosc_cname_ok(const char *cname)
{
	for (size_t i = 0; i < sizeof cnames / sizeof cnames[0]; i++)
		if (strcmp(cname, cnames[i]) == 0)
			return blosc_compname_to_compcode(cname) >= 0 ? HALO_OK : HALO_EUNSUPPORTED;
	return HALO_EUNSUPPORTED;
}

const char *halo_codec_id_name(halo_codec_id_t id)
{
	static const char *const names[] = {NULL,  "blosc", "zlib", "gzip",
					    "zstd", "lz4",   "lzma", "bz2"};
	return names[id];
}

const char *halo_codec_level_key(halo_codec_id_t id)
{
	return id == HALO_CODEC_LZ4 ? "acceleration" : id == HALO_CODEC_LZMA ? "preset" : "level";
}

json_t *halo_codec_config(const halo_codec_t *codec)
{
	if (codec->id == HALO_CODEC_NONE)
		return json_null();
	if (codec->id == HALO_CODEC_BLOSC)
		return json_pack("{s:s, s:s, s:i, s:i, s:i}", "id", "blosc", "cname", codec->cname,
				 "clevel", codec->clevel, "shuffle", codec->shuffle, "blocksize",
				 codec->blocksize);
	if (codec->id == HALO_CODEC_LZMA) /* what halo writes: FORMAT_AUTO is read only */
		return json_pack("{s:s, s:i, s:i, s:I, s:n}", "id", "lzma", "format",
				 codec->format == 2 ? 2 : 1, "check", codec->check, "preset",
				 (json_int_t)codec->clevel | (codec->extreme ? LZMA_PRESET_EXTREME : 0),
				 "filters");
	return json_pack("{s:s, s:i}", "id", halo_codec_id_name(codec->id),
			 halo_codec_level_key(codec->id), codec->clevel);
}

int halo_codec_level_clamp(halo_codec_id_t id, long long level)
{
	long long lo = -1, hi = 9;
	if (id == HALO_CODEC_ZSTD)
		lo = ZSTD_minCLevel(), hi = ZSTD_maxCLevel();
	else if (id == HALO_CODEC_LZ4) /* an acceleration, which LZ4 clamps so */
		lo = 1, hi = 65537;
	else if (id == HALO_CODEC_LZMA)
		lo = 0;
	else if (id == HALO_CODEC_BZ2)
		lo = 1;
	return (int)(level < lo ? lo : level > hi ? hi : level);
}

int halo_codec_parse(const char *s, halo_codec_t *codec, halo_error_t *err)
{
	halo_codec_id_t id;
	if (strcmp(s, "none") == 0)
		id = HALO_CODEC_NONE;
	else if (strcmp(s, "gzip") == 0)
		id = HALO_CODEC_GZIP;
	else if (strcmp(s, "lzma") == 0)
		id = HALO_CODEC_LZMA;
	else if (strcmp(s, "bz2") == 0)
		id = HALO_CODEC_BZ2;
	else if (halo_codec_blosc_cname_ok(s) == HALO_OK)
		id = HALO_CODEC_BLOSC;
	else
		return halo_error_set(err, HALO_EINVAL, "--compressor: unknown '%s' (%s)", s,
				      HALO_CODEC_NAMES);
	/* A zstd input's level 19 means nothing to blosc. */
	if (id != codec->id)
		codec->clevel = 5;
	if (id == HALO_CODEC_BLOSC && codec->id != HALO_CODEC_BLOSC)
		codec->shuffle = 1, codec->blocksize = 0;
	if (id == HALO_CODEC_LZMA && codec->id != HALO_CODEC_LZMA)
		codec->format = 1, codec->check = -1, codec->extreme = 0; /* python's: .xz, CRC-64 */
	codec->id = id;
	if (id == HALO_CODEC_BLOSC)
		snprintf(codec->cname, sizeof codec->cname, "%s", s);
	return HALO_OK;
}

/* Room past the worst case for what other writers may add: a gzip
 * header's name and comment, zeros after it, zstd's skippable frames. */
#define SLACK (64 << 10)

size_t halo_codec_bound(const halo_codec_t *codec, size_t nbytes)
{
	switch (codec->id) {
	case HALO_CODEC_BLOSC: return nbytes + BLOSC_MAX_OVERHEAD;
	case HALO_CODEC_ZLIB:
	case HALO_CODEC_GZIP: return compressBound((uLong)nbytes) + SLACK;
	case HALO_CODEC_ZSTD: return ZSTD_compressBound(nbytes) + SLACK;
	case HALO_CODEC_LZ4: /* its size in 4 bytes, then LZ4's block */
		return nbytes <= LZ4_MAX_INPUT_SIZE ? 4 + (size_t)LZ4_compressBound((int)nbytes)
						    : 4 + nbytes + nbytes / 255 + 16;
	case HALO_CODEC_LZMA: return lzma_stream_buffer_bound(nbytes) + SLACK;
	case HALO_CODEC_BZ2: return nbytes + nbytes / 100 + 600 + SLACK; /* bzlib's bound */
	default: return nbytes;
	}
}

static int wrong_size(const char *file, size_t got, size_t nbytes, halo_error_t *err)
{
	return halo_error_set(err, HALO_EFORMAT, "%s: chunk decompresses to %zu bytes, expected %zu",
			      file, got, nbytes);
}

static int decode_blosc(const void *src, size_t len, void *dst, size_t nbytes, const char *file,
			halo_error_t *err)
{
	size_t got = 0, cbytes = 0, blocksize = 0;
	if (len < BLOSC_MIN_HEADER_LENGTH || blosc_cbuffer_validate(src, len, &got) < 0)
		return halo_error_set(err, HALO_EFORMAT, "%s: chunk is not valid blosc data", file);
	blosc_cbuffer_sizes(src, &got, &cbytes, &blocksize);
	if (got != nbytes || cbytes != len)
		return wrong_size(file, got, nbytes, err);
	int n = blosc_decompress_ctx(src, dst, nbytes, codec_threads);
	if (n < 0 || (size_t)n != nbytes)
		return halo_error_set(err, HALO_EFORMAT, "%s: chunk fails to decompress (corrupt)",
				      file);
	return HALO_OK;
}

/* Skips the zeros python's gzip skips after a member. */
static void skip_zeros(z_stream *s)
{
	while (s->avail_in && !*s->next_in)
		s->next_in++, s->avail_in--;
}

/* zlib's checks see the whole stream: the Adler-32 or CRC-32 at its end
 * and, for gzip, the length. */
static int decode_zlib(int gzip, const void *src, size_t len, void *dst, size_t nbytes,
		       const char *file, halo_error_t *err)
{
	const char *kind = gzip ? "gzip" : "zlib";
	z_stream s = {0};
	if (inflateInit2(&s, gzip ? 15 + 16 : 15) != Z_OK)
		return halo_error_set(err, HALO_ENOMEM, "%s: out of memory", file);
	s.next_in = (Bytef *)src;
	s.avail_in = (uInt)len;
	s.next_out = dst;
	s.avail_out = (uInt)nbytes;
	/* What python reads, halo reads: gzip members one after another as
	 * one, with zeros between and after them; anything after a zlib
	 * stream (its checksum has vouched for the data). Past nbytes, a
	 * little more room tells a chunk too large from a damaged tail. */
	unsigned char spill[64];
	int zr, over = 0;
	for (;;) {
		zr = inflate(&s, Z_FINISH);
		if (zr == Z_STREAM_END && gzip)
			skip_zeros(&s);
		if (zr == Z_STREAM_END && gzip && s.avail_in > 0 && inflateReset(&s) == Z_OK)
			continue;
		if (zr == Z_BUF_ERROR && s.avail_out == 0 && !over) {
			over = 1;
			s.next_out = spill;
			s.avail_out = sizeof spill;
			continue;
		}
		break;
	}
	int rc = HALO_OK;
	size_t got = over ? nbytes + sizeof spill - s.avail_out : nbytes - s.avail_out;
	if (got > nbytes)
		rc = halo_error_set(err, HALO_EFORMAT, "%s: chunk decompresses to more than %zu "
				    "bytes, its size", file, nbytes);
	else if (zr == Z_STREAM_END && got != nbytes)
		rc = wrong_size(file, got, nbytes, err);
	else if (zr == Z_MEM_ERROR)
		rc = halo_error_set(err, HALO_ENOMEM, "%s: out of memory", file);
	else if (zr == Z_BUF_ERROR || zr == Z_OK)
		rc = halo_error_set(err, HALO_EFORMAT, "%s: chunk is cut short (truncated %s data)",
				    file, kind);
	else if (zr == Z_NEED_DICT)
		rc = halo_error_set(err, HALO_EFORMAT, "%s: chunk needs a preset dictionary, which "
				    "Zarr has no place for", file);
	else if (zr != Z_STREAM_END)
		rc = halo_error_set(err, HALO_EFORMAT, "%s: chunk fails to decompress (corrupt %s "
				    "data: %s)", file, kind, s.msg ? s.msg : "unknown error");
	inflateEnd(&s);
	return rc;
}

static int decode_zstd(const void *src, size_t len, void *dst, size_t nbytes, const char *file,
		       halo_error_t *err)
{
	size_t n = ZSTD_decompress(dst, nbytes, src, len);
	if (!ZSTD_isError(n))
		return n == nbytes ? HALO_OK : wrong_size(file, n, nbytes, err);
	unsigned long long said = ZSTD_getFrameContentSize(src, len);
	if (said != ZSTD_CONTENTSIZE_ERROR && said != ZSTD_CONTENTSIZE_UNKNOWN && said > nbytes)
		return wrong_size(file, (size_t)said, nbytes, err);
	return halo_error_set(err, HALO_EFORMAT, "%s: chunk fails to decompress (corrupt zstd "
			      "data: %s)", file, ZSTD_getErrorName(n));
}

/* numcodecs' LZ4: the decoded size as 4 bytes little-endian, then one
 * LZ4 block. No checksum: a damaged block may decode to other values. */
static int decode_lz4(const unsigned char *src, size_t len, void *dst, size_t nbytes,
		      const char *file, halo_error_t *err)
{
	if (len < 4)
		return halo_error_set(err, HALO_EFORMAT, "%s: chunk is cut short (truncated lz4 data)",
				      file);
	uint32_t said = (uint32_t)src[0] | (uint32_t)src[1] << 8 | (uint32_t)src[2] << 16 |
			(uint32_t)src[3] << 24;
	if (said != nbytes)
		return wrong_size(file, said, nbytes, err);
	int n = len - 4 <= INT32_MAX ? LZ4_decompress_safe((const char *)src + 4, dst,
							   (int)(len - 4), (int)nbytes) : -1;
	if (n < 0 || (size_t)n != nbytes)
		return halo_error_set(err, HALO_EFORMAT, "%s: chunk fails to decompress (corrupt lz4 "
				      "data)", file);
	return HALO_OK;
}

/* lzma and bz2 chunks decode as python's lzma.decompress and
 * bz2.decompress read them: stream after stream, until one that is not
 * a stream at all, which is ignored with what follows it (a stream cut
 * short is an error). A stream writes into dst, then into a little more
 * room that tells a chunk too large. */
struct streams {
	unsigned char *dst;
	size_t nbytes, got; /* got: bytes of whole streams, or past nbytes */
	unsigned char spill[64];
};

/* Where output byte `done` goes: dst, then spill; *room its size. */
static unsigned char *next_out(struct streams *st, size_t done, size_t *room)
{
	if (done < st->nbytes) {
		*room = st->nbytes - done;
		return st->dst + done;
	}
	*room = sizeof st->spill;
	return st->spill;
}

static int streams_end(struct streams *st, const char *kind, int cut, const char *why,
		       const char *file, halo_error_t *err)
{
	if (st->got > st->nbytes)
		return halo_error_set(err, HALO_EFORMAT, "%s: chunk decompresses to more than %zu "
				      "bytes, its size", file, st->nbytes);
	if (cut)
		return halo_error_set(err, HALO_EFORMAT, "%s: chunk is cut short (truncated %s data)",
				      file, kind);
	if (why)
		return halo_error_set(err, HALO_EFORMAT, "%s: chunk fails to decompress (corrupt %s "
				      "data: %s)", file, kind, why);
	return st->got == st->nbytes ? HALO_OK : wrong_size(file, st->got, st->nbytes, err);
}

static const char *lzma_why(lzma_ret r)
{
	switch (r) {
	case LZMA_FORMAT_ERROR: return "not an lzma stream";
	case LZMA_OPTIONS_ERROR: return "unsupported options";
	case LZMA_DATA_ERROR: return "damaged";
	case LZMA_MEM_ERROR: return "out of memory";
	default: return "unknown error";
	}
}

static int decode_lzma(int format, const unsigned char *src, size_t len, void *dst,
		       size_t nbytes, const char *file, halo_error_t *err)
{
	struct streams st = {.dst = dst, .nbytes = nbytes};
	const char *why = NULL;
	int cut = 0;
	for (size_t at = 0, n = 0; at < len && !why && !cut && st.got <= nbytes; n++) {
		lzma_stream s = LZMA_STREAM_INIT;
		lzma_ret r = format == 2   ? lzma_alone_decoder(&s, UINT64_MAX)
			     : format == 1 ? lzma_stream_decoder(&s, UINT64_MAX, 0)
					   : lzma_auto_decoder(&s, UINT64_MAX, 0);
		if (r != LZMA_OK)
			return halo_error_set(err, HALO_ENOMEM, "%s: out of memory", file);
		s.next_in = src + at;
		s.avail_in = len - at;
		size_t done = st.got;
		while (r == LZMA_OK) {
			if (s.avail_out == 0)
				s.next_out = next_out(&st, done, &s.avail_out);
			size_t room = s.avail_out;
			r = lzma_code(&s, LZMA_FINISH);
			done += room - s.avail_out;
			if (done > nbytes)
				break;
		}
		at = len - s.avail_in;
		lzma_end(&s);
		if (r == LZMA_STREAM_END)
			st.got = done;
		else if (r == LZMA_BUF_ERROR && s.avail_in == 0)
			cut = 1;
		else if (r != LZMA_OK && n > 0)
			break; /* not a stream: ignored, as python does */
		else if (r != LZMA_OK)
			why = lzma_why(r);
		else
			st.got = done;
	}
	return streams_end(&st, "lzma", cut, why, file, err);
}

static int decode_bz2(const unsigned char *src, size_t len, void *dst, size_t nbytes,
		      const char *file, halo_error_t *err)
{
	struct streams st = {.dst = dst, .nbytes = nbytes};
	const char *why = NULL;
	int cut = 0;
	if (len > UINT_MAX) /* bzlib counts in unsigned int */
		return halo_error_set(err, HALO_EFORMAT, "%s: chunk of %zu bytes is larger than bz2 "
				      "takes", file, len);
	for (size_t at = 0, n = 0; at < len && !why && !cut && st.got <= nbytes; n++) {
		bz_stream s = {0};
		if (BZ2_bzDecompressInit(&s, 0, 0) != BZ_OK)
			return halo_error_set(err, HALO_ENOMEM, "%s: out of memory", file);
		s.next_in = (char *)src + at;
		s.avail_in = (unsigned)(len - at);
		size_t done = st.got;
		int r = BZ_OK;
		while (r == BZ_OK) {
			size_t room = 0;
			s.next_out = (char *)next_out(&st, done, &room);
			s.avail_out = room > UINT_MAX ? UINT_MAX : (unsigned)room;
			unsigned before = s.avail_out, in = s.avail_in;
			r = BZ2_bzDecompress(&s);
			done += before - s.avail_out;
			if (done > nbytes || (r == BZ_OK && s.avail_in == in && s.avail_out == before))
				break; /* too much output, or none and no input left */
		}
		at = len - s.avail_in;
		BZ2_bzDecompressEnd(&s);
		if (r == BZ_STREAM_END)
			st.got = done;
		else if (r == BZ_OK && done <= nbytes)
			cut = 1;
		else if (r != BZ_OK && n > 0)
			break; /* not a stream: ignored, as python does */
		else if (r != BZ_OK)
			why = r == BZ_MEM_ERROR ? "out of memory" : "damaged";
		else
			st.got = done;
	}
	return streams_end(&st, "bz2", cut, why, file, err);
}

uint32_t halo_codec_crc32c(const void *data, size_t len)
{
	/* ISA-L's iSCSI CRC is CRC32C before its final inversion, over int
	 * lengths. */
	const unsigned char *p = data;
	unsigned int crc = 0xffffffffu;
	while (len > 0) {
		int n = len > (1u << 30) ? 1 << 30 : (int)len;
		crc = crc32_iscsi((unsigned char *)p, n, crc);
		p += n;
		len -= (size_t)n;
	}
	return crc ^ 0xffffffffu;
}

int halo_codec_crc32c_check(const void *data, size_t *len, const char *file, halo_error_t *err)
{
	const unsigned char *p = data;
	if (*len < 4)
		return halo_error_set(err, HALO_EFORMAT, "%s: %zu bytes, too short for the CRC32C "
				      "that ends a chunk", file, *len);
	size_t n = *len - 4;
	uint32_t stored = (uint32_t)p[n] | (uint32_t)p[n + 1] << 8 | (uint32_t)p[n + 2] << 16 |
			  (uint32_t)p[n + 3] << 24;
	if (halo_codec_crc32c(p, n) != stored)
		return halo_error_set(err, HALO_EFORMAT, "%s: CRC32C checksum mismatch (the chunk "
				      "is damaged)", file);
	*len = n;
	return HALO_OK;
}

int halo_codec_decode(const halo_codec_t *codec, const void *src, size_t len, void *dst,
		      size_t nbytes, const char *file, halo_error_t *err)
{
	switch (codec->id) {
	case HALO_CODEC_BLOSC: return decode_blosc(src, len, dst, nbytes, file, err);
	case HALO_CODEC_ZLIB: return decode_zlib(0, src, len, dst, nbytes, file, err);
	case HALO_CODEC_GZIP: return decode_zlib(1, src, len, dst, nbytes, file, err);
	case HALO_CODEC_ZSTD: return decode_zstd(src, len, dst, nbytes, file, err);
	case HALO_CODEC_LZ4: return decode_lz4(src, len, dst, nbytes, file, err);
	case HALO_CODEC_LZMA: return decode_lzma(codec->format, src, len, dst, nbytes, file, err);
	case HALO_CODEC_BZ2: return decode_bz2(src, len, dst, nbytes, file, err);
	default: return halo_error_set(err, HALO_EINVAL, "%s: no compressor to decode", file);
	}
}

static int encode_zlib(int gzip, int level, const void *src, size_t nbytes, void *dst,
		       size_t cap, size_t *len, const char *file, halo_error_t *err)
{
	z_stream s = {0};
	/* gzip's header as python's gzip writes it for numcodecs: no name,
	 * no time */
	if (deflateInit2(&s, level, Z_DEFLATED, gzip ? 15 + 16 : 15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return halo_error_set(err, HALO_ENOMEM, "%s: out of memory", file);
	s.next_in = (Bytef *)src;
	s.avail_in = (uInt)nbytes;
	s.next_out = dst;
	s.avail_out = (uInt)cap;
	int zr = deflate(&s, Z_FINISH);
	*len = s.total_out;
	deflateEnd(&s);
	return zr == Z_STREAM_END ? HALO_OK
				  : halo_error_set(err, HALO_EIO, "%s: %s compression failed", file,
						   gzip ? "gzip" : "zlib");
}

/* python's lzma.compress: one .xz stream of one block, or a .lzma file */
static int encode_lzma(const halo_codec_t *codec, const void *src, size_t nbytes, void *dst,
		       size_t cap, size_t *len, const char *file, halo_error_t *err)
{
	lzma_ret r;
	size_t pos = 0;
	uint32_t preset = (uint32_t)codec->clevel | (codec->extreme ? LZMA_PRESET_EXTREME : 0);
	if (codec->format == 2) {
		lzma_options_lzma opt;
		lzma_stream s = LZMA_STREAM_INIT;
		r = lzma_lzma_preset(&opt, preset) ? LZMA_OPTIONS_ERROR : lzma_alone_encoder(&s, &opt);
		if (r == LZMA_OK) {
			s.next_in = src;
			s.avail_in = nbytes;
			s.next_out = dst;
			s.avail_out = cap;
			r = lzma_code(&s, LZMA_FINISH);
			pos = cap - s.avail_out;
		}
		lzma_end(&s);
		r = r == LZMA_STREAM_END ? LZMA_OK : r == LZMA_OK ? LZMA_BUF_ERROR : r;
	} else {
		r = lzma_easy_buffer_encode(preset, codec->check < 0 ? LZMA_CHECK_CRC64
								     : (lzma_check)codec->check,
					    NULL, src, nbytes, dst, &pos, cap);
	}
	*len = pos;
	return r == LZMA_OK ? HALO_OK
			    : halo_error_set(err, r == LZMA_MEM_ERROR ? HALO_ENOMEM : HALO_EIO,
					     "%s: lzma compression failed (%s)", file, lzma_why(r));
}

int halo_codec_encode(const halo_codec_t *codec, size_t elsize, const void *src, size_t nbytes,
		      void *dst, size_t *len, const char *file, halo_error_t *err)
{
	size_t cap = halo_codec_bound(codec, nbytes);
	switch (codec->id) {
	case HALO_CODEC_BLOSC: {
		int n = blosc_compress_ctx(codec->clevel, codec->shuffle, elsize, nbytes, src, dst, cap,
					   codec->cname, (size_t)codec->blocksize, codec_threads);
		*len = n > 0 ? (size_t)n : 0;
		return n > 0 ? HALO_OK
			     : halo_error_set(err, HALO_EIO, "%s: blosc compression failed", file);
	}
	case HALO_CODEC_ZLIB:
	case HALO_CODEC_GZIP:
		return encode_zlib(codec->id == HALO_CODEC_GZIP, codec->clevel, src, nbytes, dst, cap,
				   len, file, err);
	case HALO_CODEC_ZSTD: {
		/* Frames with their checksum: numcodecs writes none, so a
		 * damaged chunk decodes to wrong values unseen; every zstd
		 * reader checks one that is there. */
		ZSTD_CCtx *cx = ZSTD_createCCtx();
		if (!cx)
			return halo_error_set(err, HALO_ENOMEM, "%s: out of memory", file);
		size_t n = ZSTD_CCtx_setParameter(cx, ZSTD_c_compressionLevel, codec->clevel);
		if (!ZSTD_isError(n))
			n = ZSTD_CCtx_setParameter(cx, ZSTD_c_checksumFlag, 1);
		if (!ZSTD_isError(n))
			n = ZSTD_compress2(cx, dst, cap, src, nbytes);
		ZSTD_freeCCtx(cx);
		*len = ZSTD_isError(n) ? 0 : n;
		return ZSTD_isError(n) ? halo_error_set(err, HALO_EIO, "%s: zstd compression failed "
							"(%s)", file, ZSTD_getErrorName(n))
				       : HALO_OK;
	}
	case HALO_CODEC_LZ4: {
		int n = nbytes <= LZ4_MAX_INPUT_SIZE
			? LZ4_compress_fast(src, (char *)dst + 4, (int)nbytes, (int)(cap - 4),
					    codec->clevel) : 0;
		unsigned char *p = dst;
		for (int i = 0; i < 4; i++)
			p[i] = (unsigned char)(nbytes >> 8 * i);
		*len = n > 0 ? 4 + (size_t)n : 0;
		return n > 0 ? HALO_OK : halo_error_set(err, HALO_EIO, "%s: lz4 compression failed%s",
							file, nbytes > LZ4_MAX_INPUT_SIZE ?
							" (a chunk over LZ4's 2016 MiB)" : "");
	}
	case HALO_CODEC_LZMA: return encode_lzma(codec, src, nbytes, dst, cap, len, file, err);
	case HALO_CODEC_BZ2: {
		unsigned int n = cap > UINT_MAX ? UINT_MAX : (unsigned)cap;
		int r = nbytes <= UINT_MAX ? BZ2_bzBuffToBuffCompress(dst, &n, (char *)src,
								       (unsigned)nbytes, codec->clevel,
								       0, 0)
					   : BZ_PARAM_ERROR;
		*len = r == BZ_OK ? n : 0;
		return r == BZ_OK ? HALO_OK
				  : halo_error_set(err, r == BZ_MEM_ERROR ? HALO_ENOMEM : HALO_EIO,
						   "%s: bz2 compression failed", file);
	}
	default: return halo_error_set(err, HALO_EINVAL, "%s: no compressor to encode", file);
	}
}
