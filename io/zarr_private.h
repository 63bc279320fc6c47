/* Internals shared by the Zarr files of io/ (metadata and chunk I/O). */
#ifndef HALO_IO_ZARR_PRIVATE_H
#define HALO_IO_ZARR_PRIVATE_H

#include "io/zarr.h"

#include <stdio.h>

struct halo_zarr {
	char *path;             /* array directory */
	halo_zarr_meta_t meta;
	size_t chunk_bytes;
	int writable;
	uint64_t serial;         /* unique among the arrays opened */
};

int halo__zarr_parse_v2(const json_t *root, const char *file, halo_zarr_meta_t *m,
			halo_error_t *err);
int halo__zarr_parse_v3(const json_t *root, const char *file, halo_zarr_meta_t *m,
			halo_error_t *err);
/* Refuses chunks over 2 GiB and more than HALO_MAX_CHUNKS chunks, naming
 * file; fills in blosc's default shuffle. */
int halo__zarr_check_sizes(halo_zarr_meta_t *m, const char *file, halo_error_t *err);
/* .zarray contents for m; the caller owns the result. */
json_t *halo__zarr_v2_json(const halo_zarr_meta_t *m);
/* zarr.json contents for m (v3, little-endian, "default" keys; a
 * sharded array's index at the end, with its CRC32C, as zarr-python
 * writes it). */
json_t *halo__zarr_v3_json(const halo_zarr_meta_t *m);

#endif
