/* Volumes as the rest of halo sees them: a 3D chunked array (a 2D image is
 * a volume of depth 1), whatever its file format. Readers open Zarr v2/v3,
 * OME-Zarr (level 0) and TIFF; writers produce Zarr v2, OME-Zarr 0.4 (with
 * an optional pyramid) and TIFF. Chunks are read and written whole, in
 * native byte order; any thread may read any chunk. */
#ifndef HALO_IO_VOLUME_H
#define HALO_IO_VOLUME_H

#include <stdint.h>

#include "halo.h"
#include "io/units.h"
#include "util/dtype.h"
#include "io/zarr.h"

typedef enum { HALO_FMT_ZARR, HALO_FMT_OME_ZARR, HALO_FMT_TIFF } halo_format_t;

typedef struct halo_volume_info {
	int ndim;           /* as stored: 2 or 3 */
	int64_t shape[3];   /* z, y, x (z = 1 for an image) */
	int64_t chunks[3];  /* the chunk grid of the stored array */
	halo_dtype_t dtype;
	halo_fill_t fill;   /* value of missing chunks and of padding */
	double voxel[3];    /* physical size of a voxel, z, y, x */
	double origin[3];   /* physical position of voxel (0, 0, 0), z, y, x
			     * (OME-Zarr's translation, ImageJ's origin; 0
			     * when unknown) */
	char unit[32];      /* OME-NGFF unit name ("micrometer"), "" if unknown */
	int guessed;        /* a TIFF's axes whose size is not stored but taken
			     * (halo_tiff_info_t) */
} halo_volume_info_t;

typedef struct halo_reader halo_reader_t;

/* Opens path read-only: a TIFF file (.tif/.tiff or TIFF magic), a Zarr
 * array directory, or an OME-Zarr group (its first dataset is read). */
int halo_reader_open(const char *path, halo_reader_t **out, halo_error_t *err);

/* Which channel and time point to read of a Zarr array with axes before
 * z, y, x (OME-Zarr's "channel" and "time" axes; a plain array's last two
 * such axes, as OME orders them: t, c, z, y, x), or of an ImageJ
 * hyperstack or OME-TIFF; -1 where its axis must hold one value. first:
 * the first of each, whatever their number (a description of the file). */
typedef struct halo_select {
	int64_t channel, time;
	int first;
	int field; /* given as a pipeline's fields, not options: messages say so */
	const char *prefix; /* of the options' names: "psf-" for --psf-channel
			     * (a field's: "psf_"); NULL for none */
} halo_select_t;

/* halo_reader_open reading the channel and time point sel names (NULL:
 * the only ones). */
int halo_reader_open_at(const char *path, const halo_select_t *sel, halo_reader_t **out,
			halo_error_t *err);
const halo_volume_info_t *halo_reader_info(const halo_reader_t *r);
halo_format_t halo_reader_format(const halo_reader_t *r);
const char *halo_reader_path(const halo_reader_t *r);
/* An OME-Zarr input's "omero" rendering settings, of the channel read
 * alone; NULL where it has none. Borrowed until halo_reader_close. */
const json_t *halo_reader_omero(const halo_reader_t *r);
/* An OME-Zarr input's channel labels, from its "omero", when it has
 * several channels and each a label; NULL otherwise. Borrowed. */
const json_t *halo_reader_channel_names(const halo_reader_t *r);
/* User attributes (.zattrs) of a plain Zarr array input; NULL otherwise.
 * Borrowed until halo_reader_close. */
const json_t *halo_reader_attrs(const halo_reader_t *r);
/* The stored compression of a Zarr input; NULL for TIFF. */
const halo_codec_t *halo_reader_codec(const halo_reader_t *r);
/* How the volume is stored where that differs from halo_volume_info_t,
 * which describes the volume as halo reads it. */
typedef struct halo_stored {
	int64_t chunks[3];       /* a Zarr chunk may be larger than the array */
	int big_endian;          /* a TIFF's bytes (halo reads them native) */
	const char *compression; /* a TIFF's ("none", "deflate", ...); NULL for Zarr */
	int64_t files;           /* a TIFF sequence's files; else 0 */
	int64_t reduced;         /* a TIFF's reduced-resolution pages, left out */
	int64_t channels, times; /* along its channel and time axes (or 1) */
	int64_t shards[3];       /* a sharded Zarr v3 array's shard shape; else 0 */
	int crc32c;              /* Zarr v3 chunks that end in their CRC32C */
	int zarr_format;         /* 2 or 3; 0 for TIFF */
	const char *ome_version; /* an OME-Zarr's, as it says ("0.4"); else NULL */
	int ndim;                /* a Zarr array's axes and the order in which */
	int order[HALO_MAXDIM];  /* its chunks store them (identity: C order) */
} halo_stored_t;
void halo_reader_stored(const halo_reader_t *r, halo_stored_t *s);
/* Bytes a read of one chunk holds besides its buffer, in the reading
 * thread's scratch: a stored chunk larger than the array is read and
 * decoded whole (chunks of 200x1500x1500 over a 100x1000x1000 array: 900
 * MB, and up to as much for the file), else 0. */
uint64_t halo_reader_scratch_bytes(const halo_reader_t *r);
/* Reads chunk idx (z, y, x) into buf, which holds one whole chunk
 * (chunks[0]*chunks[1]*chunks[2] elements); parts beyond the volume's edge
 * hold the fill value or padding. */
int halo_reader_read_chunk(halo_reader_t *r, const int64_t idx[3], void *buf,
			   halo_error_t *err);
void halo_reader_close(halo_reader_t *r);

typedef struct halo_writer halo_writer_t;

typedef struct halo_writer_opts {
	halo_format_t format;
	halo_codec_t codec;  /* Zarr outputs */
	int pyramid;         /* OME-Zarr: extra levels, each 2x smaller in y, x */
	const json_t *attrs; /* plain Zarr: .zattrs to write (copied); may be NULL */
	int attach;          /* Zarr: another process created the output; write
			      * chunks into it, no metadata (MPI ranks > 0) */
	int ome_tiff;        /* TIFF: OME-XML, not ImageJ's metadata (an output
			      * named *.ome.tif: halo_path_ome_tiff) */
	const json_t *provenance; /* Zarr, OME-Zarr: what made the output (the
				   * command and its parameters), kept in its
				   * attributes as "halo" (copied); may be NULL */
	const json_t *omero; /* OME-Zarr: "omero" rendering settings (copied);
			      * may be NULL */
	int zarr_format;     /* Zarr, OME-Zarr: 3 writes Zarr v3 (OME-Zarr 0.5);
			      * else v2 (OME-Zarr 0.4) */
	int64_t inner[3];    /* Zarr v3: where set (z, y, x), the volume's chunks
			      * are shards of chunks of this shape, which
			      * divides them */
} halo_writer_opts_t;

/* Whether path ends in ext (".zarr"), in any case, before trailing '/'. */
int halo_path_has_ext(const char *path, const char *ext);
/* Guesses the output format from the name: .tif or .tiff is TIFF,
 * .ome.zarr is OME-Zarr, anything else Zarr. */
halo_format_t halo_format_from_path(const char *path);
/* Whether path names an OME-TIFF (.ome.tif, .ome.tiff), which Bio-Formats
 * reads as one: its description must be OME-XML. */
int halo_path_ome_tiff(const char *path);
/* An error for an output named as a format halo does not write (x.h5,
 * x.n5, x.png, ...), which would otherwise be written as a Zarr folder
 * under that name; HALO_OK otherwise. */
int halo_path_check_output(const char *path, halo_error_t *err);

/* Holds chunks (3 axes) of elsize-byte elements to
 * HALO_ZARR_MAX_CHUNK_BYTES for an output of format: Zarr's in pieces blosc
 * takes (halo_zarr_chunks_fit), TIFF's in fewer planes at a time, one at
 * least (pages have no such limit; memory stays near a chunk's worth).
 * Returns 1 where they changed. */
int halo_volume_chunks_fit(halo_format_t format, int64_t chunks[3], size_t elsize);

/* Zarr v3 shards of want (z, y, x; a 2D volume's z is 1) over chunks of a
 * volume of shape: inner gets the chunks cut to the shape, shards the
 * shards cut to the shape rounded up to whole chunks (what the store
 * holds and writes a task at a time; it may be chunks). Returns the axis
 * where want is no multiple of inner, else -1. */
int halo_volume_shards(const int64_t shape[3], const int64_t chunks[3], const int64_t want[3],
		       int64_t inner[3], int64_t shards[3]);

/* Creates the output at path (a temporary path from io/outdir.h). For TIFF
 * info->chunks[1..2] must equal the shape: TIFF is written in z slabs, in
 * order. */
int halo_writer_create(const char *path, const halo_volume_info_t *info,
		       const halo_writer_opts_t *opts, halo_writer_t **out, halo_error_t *err);
const halo_volume_info_t *halo_writer_info(const halo_writer_t *w);
/* The path given to halo_writer_create (errors replace it by the final). */
const char *halo_writer_path(const halo_writer_t *w);
/* Writes chunk idx from buf (one whole chunk, native order). Zarr: any
 * order, any thread. TIFF: z order, one thread at a time. */
int halo_writer_write_chunk(halo_writer_t *w, const int64_t idx[3], const void *buf,
			    halo_error_t *err);
/* 1 when chunks must be written in z order by one task at a time (TIFF). */
int halo_writer_ordered(const halo_writer_t *w);
/* OME-Zarr pyramids: level k's array path inside the output (k >= 1), and
 * its info (shape halved in y and x per level, rounded up). */
int halo_writer_level(const halo_writer_t *w, int level, char *path, size_t len,
		      halo_volume_info_t *info);
/* Creates level k's array; returns a writer for it owned by w. */
int halo_writer_add_level(halo_writer_t *w, int level, halo_writer_t **out, halo_error_t *err);
/* Finishes the output (OME metadata, TIFF flush). */
int halo_writer_finish(halo_writer_t *w, halo_error_t *err);
void halo_writer_close(halo_writer_t *w);


#endif
