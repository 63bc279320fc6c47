/* Per-thread scratch buffers for chunk I/O. Compressed chunks are read into
 * and encoded from buffers that each thread keeps and grows, rather than a
 * fresh malloc per chunk: multi-megabyte allocations come from mmap, and
 * their page faults cost as much as the compression itself. */
#ifndef HALO_IO_SCRATCH_H
#define HALO_IO_SCRATCH_H

#include <stddef.h>

enum {
	HALO_SCRATCH_FILE,
	HALO_SCRATCH_CODEC,
	HALO_SCRATCH_CONVERT,
	HALO_SCRATCH_ORDER, /* a transposed chunk, before its axes are put back */
	HALO_SCRATCH_INDEX, /* a shard's index */
	HALO_SCRATCH_SHARD, /* a shard's chunk, taken out of it to be written */
	HALO_SCRATCH_COUNT
};

/* A buffer of at least len bytes owned by the calling thread, valid until
 * its next call with the same slot; freed when the thread exits. NULL when
 * out of memory. */
void *halo_scratch(int slot, size_t len);

#endif
