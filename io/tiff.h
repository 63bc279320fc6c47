/* TIFF volumes through libtiff: one z slice per page, single-channel
 * images, strips or tiles, classic TIFF or BigTIFF. ImageJ's metadata
 * (spacing, unit, resolution) gives the voxel size. An ImageJ hyperstack
 * or OME-TIFF of several channels or time points is read one channel at
 * one time (halo_tiff_select).
 *
 * libtiff handles are not thread-safe, so a reader serialises its page reads
 * with a mutex; a writer appends pages strictly in order. */
#ifndef HALO_IO_TIFF_H
#define HALO_IO_TIFF_H

#include <stdint.h>

#include "halo.h"
#include "util/dtype.h"

typedef struct halo_tiff halo_tiff_t;

typedef struct halo_tiff_info {
	int ndim;            /* 2 for a single page, else 3 */
	int64_t shape[3];    /* pages, height, width */
	halo_dtype_t dtype;
	double voxel[3];     /* z, y, x; 1 when unknown */
	double origin[3];    /* z, y, x: where voxel 0 lies, in unit (ImageJ's
			      * origin); 0 when unknown */
	char unit[32];       /* as found ("micron", "um", ...), "" when unknown */
	int ome;             /* writer: OME-XML instead of ImageJ's metadata */
	int big_endian;      /* reader: the file's byte order */
	char compression[16]; /* reader: the first page's ("none", "deflate", ...) */
	int64_t channels, times; /* reader: a hyperstack's (shape[0] counts the
				  * slices of one); 0 where not given */
	char ome_order[4];   /* reader: an OME-TIFF's plane order ("ZCT"), "" for
			      * ImageJ's (CZT) */
	int64_t reduced;     /* reader: reduced-resolution pages left out */
	int guessed;         /* reader: the axes (bit d: z 1, y 2, x 4) whose size
			      * the file does not store while it stores
			      * another's: 1 taken, or x's for y */
} halo_tiff_info_t;

int halo_tiff_open(const char *path, halo_tiff_t **out, halo_error_t *err);
const halo_tiff_info_t *halo_tiff_info(const halo_tiff_t *t);

/* Reads the slices of one channel and time point of a hyperstack from
 * now on (the first's until then); both are within the counts. */
void halo_tiff_select(halo_tiff_t *t, int64_t channel, int64_t time);

/* Reads pages [z0, z0 + nz) into buf (nz * height * width elements, native
 * byte order). Thread-safe. */
int halo_tiff_read_pages(halo_tiff_t *t, int64_t z0, int64_t nz, void *buf,
			 halo_error_t *err);

/* Creates a TIFF for writing; BigTIFF when the pixel data exceed 4 GiB
 * minus room for the directories. info->unit, voxel and origin go into
 * ImageJ metadata, or tifffile's JSON description for the types ImageJ
 * lacks. */
int halo_tiff_create(const char *path, const halo_tiff_info_t *info, halo_tiff_t **out,
		     halo_error_t *err);

/* Appends pages [z0, z0 + nz); z0 must equal the number already written. */
int halo_tiff_write_pages(halo_tiff_t *t, int64_t z0, int64_t nz, const void *buf,
			  halo_error_t *err);

/* Closes t, flushing a writer; the error of a failed flush is returned. */
int halo_tiff_close(halo_tiff_t *t, halo_error_t *err);

#endif
