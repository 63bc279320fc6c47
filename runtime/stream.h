/* Chunk streams: read a volume chunk by chunk, assemble each output chunk
 * from the input chunks it overlaps (rechunk, type conversion, optional 2x
 * downsampling in y and x) and write it, all as StarPU tasks.
 *
 * Memory follows the chunks in flight, not the volume: input chunks are
 * registered when their read task is submitted and unregistered after their
 * last consumer, output chunks after their write, and submission waits while
 * too many output chunks are in flight. Output chunks are visited in C order
 * so that the input chunks of a region are read once and released early. */
#ifndef HALO_RUNTIME_STREAM_H
#define HALO_RUNTIME_STREAM_H

#include <stdint.h>

#include "halo.h"
#include "io/volume.h"

#include <starpu.h>

typedef struct halo_stream_opts {
	uint64_t memory;   /* bytes of chunks in flight; 0: a quarter of RAM */
	int downsample;    /* 1, or 2 for an OME pyramid level (y and x) */
	int quiet;         /* no progress line */
	const char *label; /* progress label, e.g. "convert" */
} halo_stream_opts_t;

typedef struct halo_stream_stats {
	int64_t chunks_written;
	int64_t chunks_read;
	uint64_t bytes_read;    /* decoded input bytes */
	uint64_t bytes_written; /* decoded output bytes */
	double seconds;
} halo_stream_stats_t;

/* The default memory budget for chunks in flight: a quarter of RAM. */
uint64_t halo_memory_default(void);

/* Runs one stream from in to out on the running StarPU. Returns the first
 * task error (naming the file and chunk), HALO_EINTR after SIGINT/SIGTERM,
 * or HALO_OK; in every case all tasks have finished on return. */
int halo_stream_run(halo_reader_t *in, halo_writer_t *out, const halo_stream_opts_t *opts,
		    halo_stream_stats_t *stats, halo_error_t *err);

#endif
