/* A volume stored as a sequence of TIFF files, as microscopes and
 * tifffile's TiffSequence write them: one plane (or a stack of planes) per
 * file, the files in natural order (plane_2.tif before plane_10.tif).
 * Named by a folder holding them (and no Zarr), or by a glob pattern
 * ("scan/plane_*.tif", quoted for the shell). Every file must have the
 * first's plane size and sample type; the first's metadata give the voxel
 * size. A file is opened for each read, so reads of different files run
 * in parallel and a sequence of 100,000 files holds no descriptors. */
#ifndef HALO_IO_TIFFSEQ_H
#define HALO_IO_TIFFSEQ_H

#include <stdint.h>

#include "halo.h"
#include "io/tiff.h"

typedef struct halo_tiffseq halo_tiffseq_t;

/* Whether path names a TIFF sequence: a glob pattern that is no existing
 * file's name, or a folder without Zarr metadata. */
int halo_tiffseq_named(const char *path);

int halo_tiffseq_open(const char *path, halo_tiffseq_t **out, halo_error_t *err);
const halo_tiff_info_t *halo_tiffseq_info(const halo_tiffseq_t *s);
int64_t halo_tiffseq_files(const halo_tiffseq_t *s);

/* Reads planes [z0, z0 + nz) into buf, as halo_tiff_read_pages does.
 * Thread-safe. */
int halo_tiffseq_read_pages(halo_tiffseq_t *s, int64_t z0, int64_t nz, void *buf,
			    halo_error_t *err);

void halo_tiffseq_close(halo_tiffseq_t *s);

#endif
