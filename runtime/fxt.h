/* Data transfers for halo's traces, read back from StarPU's FxT trace:
 * StarPU's profiling API keeps only per-link totals, while its FxT file
 * has each transfer (nodes, bytes, handle, start and end). Two user events
 * recorded at known starpu_timing_now() times map FxT's clock onto the
 * trace's. */
#ifndef HALO_RUNTIME_FXT_H
#define HALO_RUNTIME_FXT_H

#include <stddef.h>
#include <stdint.h>

#include "halo.h"

struct halo_transfer {
	double start, end; /* microseconds, on starpu_timing_now()'s clock */
	int src, dst;      /* memory nodes */
	uint64_t bytes;
	uintptr_t handle;  /* the StarPU handle's address */
	int prefetch;      /* 0 fetch, 1 prefetch, 2 idle prefetch */
};

/* The user event codes of the two clock marks. */
enum { HALO_FXT_MARK_BEGIN = 0x4a1001, HALO_FXT_MARK_END = 0x4a1002 };

/* 1 when this halo can read FxT files (StarPU built with FxT). */
int halo__fxt_available(void);

/* The FxT file StarPU wrote into dir (prof_file_USER_RANK). */
int halo__fxt_file(const char *dir, char *out, size_t len, halo_error_t *err);

/* Every completed transfer in dir's FxT file, in the order they ended;
 * mark_us: starpu_timing_now() when the marks were recorded. *out is
 * malloc'ed (NULL when there is none). */
int halo__fxt_transfers(const char *dir, const double mark_us[2], struct halo_transfer **out,
			size_t *count, halo_error_t *err);

#endif
